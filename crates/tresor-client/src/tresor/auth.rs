//! Authentication for the tresor provider and keeping the token alive.
//!
//! - token: the given token; at start `auth/token/lookup-self` learns its TTL and whether it
//!   is renewable.
//! - kubernetes / jwt: `POST auth/<mount>/login {"role", "jwt"}`; the JWT is read again (from
//!   its file) at every login, so a projected service-account token that the kubelet rotates
//!   keeps working.
//!
//! A background task (see [`Session::next_step`]) renews the token with
//! `auth/token/renew-self` at a fraction (2/3 by default) of its TTL, asking for the TTL it
//! was issued with. When the token is not renewable, or a renewal comes back shorter than
//! asked (the max TTL is near), the next step is a new login instead, at the same fraction of
//! what is left; a token given as such cannot log in again, so for it the task ends with a
//! warning. Failures are retried with a capped backoff. A request refused with 403 while the
//! token no longer looks itself up (it expired while the process was suspended, or was
//! revoked) logs in again once and is retried (login methods only).

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tresor_sdk::secret::{SecretBytes, SecretString};

use super::api::{self, Api, PROVIDER};
use crate::error::SecretStoreError;

/// How the tresor provider authenticates.
#[derive(Debug, Clone)]
pub enum TresorAuth {
    /// A token (`VAULT_TOKEN`).
    Token(SecretString),
    /// Kubernetes auth: `auth/<mount>/login` with `role` and the service-account JWT read from
    /// `token_file` at each login.
    Kubernetes {
        mount: String,
        role: String,
        token_file: PathBuf,
    },
    /// JWT auth: `auth/<mount>/login` with `role` and the JWT.
    Jwt {
        mount: String,
        role: String,
        jwt: JwtSource,
    },
}

/// Where a JWT comes from.
#[derive(Debug, Clone)]
pub enum JwtSource {
    Value(SecretString),
    /// Read at every login (a projected token the platform rotates).
    File(PathBuf),
}

/// The default service-account token path in a Kubernetes pod.
pub const DEFAULT_KUBERNETES_TOKEN_FILE: &str =
    "/var/run/secrets/kubernetes.io/serviceaccount/token";

impl TresorAuth {
    pub(crate) fn method(&self) -> &'static str {
        match self {
            Self::Token(_) => "token",
            Self::Kubernetes { .. } => "kubernetes",
            Self::Jwt { .. } => "jwt",
        }
    }

    fn can_login(&self) -> bool {
        !matches!(self, Self::Token(_))
    }
}

/// What the renewal machinery has done so far (for health endpoints and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthStatus {
    /// `token`, `kubernetes` or `jwt`.
    pub method: &'static str,
    /// Successful logins (0 for a token method).
    pub logins: u64,
    /// Successful `renew-self` calls.
    pub renewals: u64,
    /// The token's TTL when last obtained or renewed; `None`: it does not expire.
    pub ttl: Option<Duration>,
    pub renewable: bool,
}

#[derive(Debug, Clone, Copy)]
struct Lease {
    obtained: Instant,
    /// False for a token without a TTL (a root token): nothing to renew.
    expires: bool,
    ttl: Duration,
    /// The TTL the token was issued with (what renewals ask for).
    base_ttl: Duration,
    renewable: bool,
    /// A renewal gave less than asked: the max TTL is near, renewing again is pointless.
    capped: bool,
    failures: u32,
}

/// What the background task does next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Renew,
    Login,
}

#[derive(Debug)]
pub(crate) struct Session {
    api: std::sync::Arc<Api>,
    auth: TresorAuth,
    token: Mutex<SecretString>,
    lease: Mutex<Lease>,
    /// Bumped at every login, so concurrent refusals lead to one login.
    generation: AtomicU64,
    logins: AtomicU64,
    renewals: AtomicU64,
    login_lock: tokio::sync::Mutex<()>,
    fraction: f64,
}

#[derive(Deserialize)]
struct AuthBody {
    auth: Option<AuthData>,
}

#[derive(Deserialize)]
struct AuthData {
    #[serde(default)]
    client_token: Option<SecretString>,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    renewable: bool,
}

#[derive(Deserialize)]
struct LookupBody {
    data: Option<LookupData>,
}

#[derive(Deserialize)]
struct LookupData {
    #[serde(default)]
    ttl: u64,
    #[serde(default)]
    renewable: bool,
    #[serde(default)]
    creation_ttl: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere while it was held; the data (a token, a
    // lease) is still whole.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Session {
    /// Logs in (or looks the token up) once; the store fails to build when this fails.
    pub async fn start(
        api: std::sync::Arc<Api>,
        auth: TresorAuth,
        fraction: f64,
    ) -> Result<Self, SecretStoreError> {
        let token = match &auth {
            TresorAuth::Token(t) => t.clone(),
            _ => SecretString::default(),
        };
        let session = Self {
            api,
            auth,
            token: Mutex::new(token),
            lease: Mutex::new(Lease {
                obtained: Instant::now(),
                expires: false,
                ttl: Duration::ZERO,
                base_ttl: Duration::ZERO,
                renewable: false,
                capped: false,
                failures: 0,
            }),
            generation: AtomicU64::new(0),
            logins: AtomicU64::new(0),
            renewals: AtomicU64::new(0),
            login_lock: tokio::sync::Mutex::new(()),
            fraction,
        };
        if session.auth.can_login() {
            session.login().await?;
        } else {
            session.lookup_self().await?;
        }
        Ok(session)
    }

    pub fn token(&self) -> (SecretString, u64) {
        (
            lock(&self.token).clone(),
            self.generation.load(Ordering::SeqCst),
        )
    }

    pub fn can_login(&self) -> bool {
        self.auth.can_login()
    }

    pub fn status(&self) -> AuthStatus {
        let lease = *lock(&self.lease);
        AuthStatus {
            method: self.auth.method(),
            logins: self.logins.load(Ordering::SeqCst),
            renewals: self.renewals.load(Ordering::SeqCst),
            ttl: lease.expires.then_some(lease.ttl),
            renewable: lease.renewable,
        }
    }

    fn login_error(&self, message: String) -> SecretStoreError {
        let mount = match &self.auth {
            TresorAuth::Token(_) => "token".to_owned(),
            TresorAuth::Kubernetes { mount, .. } | TresorAuth::Jwt { mount, .. } => mount.clone(),
        };
        SecretStoreError::Login {
            provider: PROVIDER,
            method: self.auth.method(),
            mount,
            message,
        }
    }

    fn jwt(&self) -> Result<(String, String, SecretString), SecretStoreError> {
        let read = |path: &PathBuf| {
            std::fs::read_to_string(path)
                .map(|s| SecretString::from(s.trim()))
                .map_err(|e| {
                    self.login_error(format!("reading the JWT from {}: {e}", path.display()))
                })
        };
        match &self.auth {
            TresorAuth::Token(_) => Err(self.login_error(
                "a token method cannot log in again; give a new VAULT_TOKEN".to_owned(),
            )),
            TresorAuth::Kubernetes {
                mount,
                role,
                token_file,
            } => Ok((mount.clone(), role.clone(), read(token_file)?)),
            TresorAuth::Jwt { mount, role, jwt } => Ok((
                mount.clone(),
                role.clone(),
                match jwt {
                    JwtSource::Value(v) => v.clone(),
                    JwtSource::File(path) => read(path)?,
                },
            )),
        }
    }

    /// `POST auth/<mount>/login {"role", "jwt"}`.
    pub async fn login(&self) -> Result<(), SecretStoreError> {
        let (mount, role, jwt) = self.jwt()?;
        #[derive(serde::Serialize)]
        struct Login<'a> {
            role: &'a str,
            jwt: &'a str,
        }
        let body = serde_json::to_vec(&Login {
            role: &role,
            jwt: jwt.expose(),
        })
        .map_err(|e| self.login_error(format!("encoding the login: {:?}", e.classify())))?;
        let answer = self
            .api
            .send(
                reqwest::Method::POST,
                &format!("auth/{mount}/login"),
                None,
                Some(SecretBytes::new(body)),
                "login",
                &role,
            )
            .await
            .map_err(|e| self.login_error(e.to_string()))?;
        if !(200..300).contains(&answer.status) {
            return Err(self.login_error(format!(
                "role {role}: the server answered {}: {}",
                answer.status,
                api::errors(&answer.body)
            )));
        }
        let auth = api::parse::<AuthBody>(&answer.body, "the login answer")
            .map_err(|e| self.login_error(e))?
            .auth
            .ok_or_else(|| self.login_error("the login answer has no auth".to_owned()))?;
        let token = auth
            .client_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| self.login_error("the login answer has no client_token".to_owned()))?;
        let ttl = Duration::from_secs(auth.lease_duration);
        *lock(&self.token) = token;
        *lock(&self.lease) = Lease {
            obtained: Instant::now(),
            expires: !ttl.is_zero(),
            ttl,
            base_ttl: ttl,
            renewable: auth.renewable,
            capped: false,
            failures: 0,
        };
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.logins.fetch_add(1, Ordering::SeqCst);
        tracing::debug!(method = self.auth.method(), mount = %mount, role = %role, ttl = ?ttl, "secret store: logged in");
        Ok(())
    }

    /// Logs in again unless another task already did since `generation`.
    pub async fn relogin_after(&self, generation: u64) -> Result<(), SecretStoreError> {
        let _guard = self.login_lock.lock().await;
        if self.generation.load(Ordering::SeqCst) != generation {
            return Ok(());
        }
        self.login().await
    }

    /// `GET auth/token/lookup-self`: the token's TTL and renewability. A refusal is a
    /// [`SecretStoreError::PermissionDenied`].
    pub async fn lookup_self(&self) -> Result<(), SecretStoreError> {
        let (token, _) = self.token();
        let answer = self
            .api
            .send(
                reqwest::Method::GET,
                "auth/token/lookup-self",
                Some(&token),
                None,
                "lookup-self",
                "token",
            )
            .await?;
        if !(200..300).contains(&answer.status) {
            return Err(api::status_error("lookup-self", "token", &answer));
        }
        let data = api::parse::<LookupBody>(&answer.body, "the lookup-self answer")
            .map_err(|message| SecretStoreError::InvalidResponse {
                provider: PROVIDER,
                op: "lookup-self",
                name: "token".to_owned(),
                message,
            })?
            .data
            .ok_or_else(|| SecretStoreError::InvalidResponse {
                provider: PROVIDER,
                op: "lookup-self",
                name: "token".to_owned(),
                message: "no data".to_owned(),
            })?;
        let ttl = Duration::from_secs(data.ttl);
        let mut lease = lock(&self.lease);
        lease.obtained = Instant::now();
        lease.expires = !ttl.is_zero();
        lease.ttl = ttl;
        lease.base_ttl = if data.creation_ttl > 0 {
            Duration::from_secs(data.creation_ttl)
        } else {
            ttl
        };
        lease.renewable = data.renewable;
        Ok(())
    }

    /// `POST auth/token/renew-self {"increment": <the TTL the token was issued with>}`.
    pub async fn renew(&self) -> Result<(), SecretStoreError> {
        let (token, _) = self.token();
        let base = lock(&self.lease).base_ttl;
        let body = serde_json::json!({"increment": format!("{}s", base.as_secs())});
        let answer = self
            .api
            .send(
                reqwest::Method::POST,
                "auth/token/renew-self",
                Some(&token),
                Some(SecretBytes::new(body.to_string().into_bytes())),
                "renew-self",
                "token",
            )
            .await?;
        if !(200..300).contains(&answer.status) {
            return Err(api::status_error("renew-self", "token", &answer));
        }
        let auth = api::parse::<AuthBody>(&answer.body, "the renew-self answer")
            .ok()
            .and_then(|b| b.auth)
            .ok_or_else(|| SecretStoreError::InvalidResponse {
                provider: PROVIDER,
                op: "renew-self",
                name: "token".to_owned(),
                message: "no auth in the answer".to_owned(),
            })?;
        let ttl = Duration::from_secs(auth.lease_duration);
        {
            let mut lease = lock(&self.lease);
            lease.obtained = Instant::now();
            // Less than asked: the max TTL caps it (0: the token is at its end). `expires`
            // stays as it was: a token that expired is not one that never expires.
            lease.capped = ttl < lease.base_ttl;
            lease.ttl = ttl;
            lease.renewable = auth.renewable;
            lease.failures = 0;
        }
        self.renewals.fetch_add(1, Ordering::SeqCst);
        tracing::debug!(method = self.auth.method(), ttl = ?ttl, "secret store: token renewed");
        Ok(())
    }

    /// When and what to do next; `None`: nothing (a token that does not expire, or one that
    /// can be neither renewed nor replaced).
    pub fn next_step(&self) -> Option<(Instant, Step)> {
        let lease = *lock(&self.lease);
        if !lease.expires {
            return None;
        }
        let step = if lease.renewable && !lease.capped {
            Step::Renew
        } else if self.auth.can_login() {
            Step::Login
        } else {
            return None;
        };
        let mut at = lease.obtained + lease.ttl.mul_f64(self.fraction);
        if lease.failures > 0 {
            // 1 s, 2 s, 4 s … 30 s after the failure, so a server that is down is not hammered.
            let backoff =
                Duration::from_secs(1 << lease.failures.min(5)).min(Duration::from_secs(30));
            at = Instant::now() + backoff;
        }
        Some((at, step))
    }

    fn failed(&self) {
        let mut lease = lock(&self.lease);
        lease.failures = lease.failures.saturating_add(1);
    }

    /// The background task: renews or logs in again until there is nothing left to do. It
    /// holds a strong reference; the store aborts it when dropped.
    pub async fn keep_alive(self: std::sync::Arc<Self>) {
        loop {
            let Some((at, step)) = self.next_step() else {
                let lease = *lock(&self.lease);
                if lease.expires {
                    tracing::warn!(
                        method = self.auth.method(),
                        "secret store: the Vault token can no longer be renewed (not renewable or near its max TTL) and a token method cannot log in again; it expires in {:?}",
                        (lease.obtained + lease.ttl).saturating_duration_since(Instant::now())
                    );
                }
                return;
            };
            tokio::time::sleep_until(at.into()).await;
            let result = match step {
                Step::Renew => match self.renew().await {
                    Ok(()) => Ok(()),
                    Err(e) if self.can_login() => {
                        tracing::warn!(error = %e, "secret store: token renewal failed; logging in again");
                        let generation = self.generation.load(Ordering::SeqCst);
                        self.relogin_after(generation).await
                    }
                    Err(e) => Err(e),
                },
                Step::Login => {
                    let generation = self.generation.load(Ordering::SeqCst);
                    self.relogin_after(generation).await
                }
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "secret store: keeping the Vault token alive failed; retrying");
                self.failed();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(auth: TresorAuth, lease: Lease) -> Session {
        Session {
            api: std::sync::Arc::new(
                Api::new("http://127.0.0.1:1", None, Duration::from_secs(1)).unwrap(),
            ),
            auth,
            token: Mutex::new(SecretString::from("t")),
            lease: Mutex::new(lease),
            generation: AtomicU64::new(0),
            logins: AtomicU64::new(0),
            renewals: AtomicU64::new(0),
            login_lock: tokio::sync::Mutex::new(()),
            fraction: 0.5,
        }
    }

    fn lease(ttl: u64, renewable: bool, capped: bool) -> Lease {
        Lease {
            obtained: Instant::now(),
            expires: ttl > 0,
            ttl: Duration::from_secs(ttl),
            base_ttl: Duration::from_secs(60),
            renewable,
            capped,
            failures: 0,
        }
    }

    fn jwt() -> TresorAuth {
        TresorAuth::Jwt {
            mount: "jwt".into(),
            role: "r".into(),
            jwt: JwtSource::Value(SecretString::from("j")),
        }
    }

    fn token() -> TresorAuth {
        TresorAuth::Token(SecretString::from("t"))
    }

    #[test]
    fn renew_at_the_fraction_while_renewals_give_the_full_ttl() {
        let s = session(jwt(), lease(60, true, false));
        let (at, step) = s.next_step().unwrap();
        assert_eq!(step, Step::Renew);
        let wait = at.saturating_duration_since(Instant::now());
        assert!(
            wait > Duration::from_secs(29) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
    }

    #[test]
    fn log_in_again_when_capped_or_not_renewable_and_a_token_method_gives_up() {
        assert_eq!(
            session(jwt(), lease(60, true, true)).next_step().unwrap().1,
            Step::Login
        );
        assert_eq!(
            session(jwt(), lease(60, false, false))
                .next_step()
                .unwrap()
                .1,
            Step::Login
        );
        assert!(
            session(token(), lease(60, true, true))
                .next_step()
                .is_none()
        );
        assert!(
            session(token(), lease(60, false, false))
                .next_step()
                .is_none()
        );
        // A token without a TTL (root): nothing to do.
        assert!(
            session(token(), lease(0, false, false))
                .next_step()
                .is_none()
        );
    }

    #[test]
    fn failures_back_off_from_now() {
        let mut l = lease(3600, true, false);
        l.failures = 3;
        let (at, step) = session(jwt(), l).next_step().unwrap();
        assert_eq!(step, Step::Renew);
        let wait = at.saturating_duration_since(Instant::now());
        assert!(
            wait > Duration::from_secs(7) && wait <= Duration::from_secs(8),
            "{wait:?}"
        );
    }

    #[test]
    fn debug_of_the_auth_settings_is_redacted() {
        let text = format!(
            "{:?} {:?}",
            TresorAuth::Token(SecretString::from("hvs.secret-token")),
            TresorAuth::Jwt {
                mount: "jwt".into(),
                role: "r".into(),
                jwt: JwtSource::Value(SecretString::from("eyJ.secret.jwt")),
            }
        );
        assert!(
            !text.contains("secret-token") && !text.contains("secret.jwt"),
            "{text}"
        );
    }
}
