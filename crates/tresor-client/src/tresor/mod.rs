//! The `tresor` provider: Tresor (or Vault, OpenBao) over the Vault HTTP API. Each name is a
//! KV v2 secret at `<mount>/data/<path_prefix><name>` holding `{"value": "<secret>"}`, the
//! shape `tresor bootstrap` writes.
//!
//! - `get`: `GET <mount>/data/<path>` → `data.data.value`, version `data.metadata.version`.
//! - `set`: `POST <mount>/data/<path> {"data": {"value": …}}` → the new version.
//! - `delete`: `DELETE <mount>/metadata/<path>`: every version and the metadata, for good.
//! - `rotate`: reads the current version (`GET <mount>/data/<path>`; a latest version that
//!   was soft-deleted still counts), then writes with `options.cas` set to it, so a writer in
//!   between makes the rotation fail with [`SecretStoreError::Conflict`]; the previous version
//!   stays readable by number.

mod api;
mod auth;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tresor_sdk::secret::{SecretBytes, SecretString};

pub use auth::{AuthStatus, DEFAULT_KUBERNETES_TOKEN_FILE, JwtSource, TresorAuth};

use crate::error::SecretStoreError;
use crate::store::{Provider, Rotation, Secret, SecretStore, Version, validate_name};
use api::{Answer, Api, PROVIDER};
use auth::Session;

/// Secrets in a KV v2 mount of a Tresor/Vault/OpenBao server. Dropping it stops the token
/// renewal task.
pub struct TresorStore {
    api: Arc<Api>,
    session: Arc<Session>,
    mount: String,
    path_prefix: String,
    renewal: Option<tokio::task::AbortHandle>,
}

impl std::fmt::Debug for TresorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TresorStore")
            .field("address", &self.api.address())
            .field("mount", &self.mount)
            .field("path_prefix", &self.path_prefix)
            .field("auth", &self.session.status())
            .finish_non_exhaustive()
    }
}

impl Drop for TresorStore {
    fn drop(&mut self) {
        if let Some(task) = &self.renewal {
            task.abort();
        }
    }
}

/// Builds a [`TresorStore`].
#[derive(Debug)]
pub struct TresorStoreBuilder {
    address: String,
    auth: Option<TresorAuth>,
    mount: String,
    path_prefix: String,
    ca_pem: Option<String>,
    timeout: Duration,
    renew_fraction: f64,
    renew: bool,
}

impl TresorStore {
    /// `address`: `http(s)://host:port` of the server (`VAULT_ADDR`).
    pub fn builder(address: impl Into<String>) -> TresorStoreBuilder {
        TresorStoreBuilder {
            address: address.into(),
            auth: None,
            mount: "secret".to_owned(),
            path_prefix: String::new(),
            ca_pem: None,
            timeout: Duration::from_secs(30),
            renew_fraction: 2.0 / 3.0,
            renew: true,
        }
    }

    /// Logins, renewals and the token's TTL so far.
    pub fn auth_status(&self) -> AuthStatus {
        self.session.status()
    }

    /// The KV path of a name (below `<mount>/data/`).
    fn path(&self, name: &str) -> Result<String, SecretStoreError> {
        validate_name(Provider::Tresor, name)?;
        Ok(format!("{}{name}", self.path_prefix))
    }

    /// A request with the session's token; a 403 with a token that no longer looks itself up
    /// logs in again once (login methods) and retries.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<SecretBytes>,
        op: &'static str,
        name: &str,
    ) -> Result<Answer, SecretStoreError> {
        let (token, generation) = self.session.token();
        let answer = self
            .api
            .send(method.clone(), path, Some(&token), body.clone(), op, name)
            .await?;
        if answer.status != 403 || !self.session.can_login() {
            return Ok(answer);
        }
        match self.session.lookup_self().await {
            Err(e) if e.is_permission_denied() => {
                tracing::info!(
                    "secret store: the Vault token was refused and no longer looks itself up; logging in again"
                );
                self.session.relogin_after(generation).await?;
                let (token, _) = self.session.token();
                self.api
                    .send(method, path, Some(&token), body, op, name)
                    .await
            }
            _ => Ok(answer),
        }
    }

    /// The current version of `path`, also when the latest version is soft-deleted (Vault
    /// answers 404 with the metadata then).
    async fn current_version(&self, path: &str, name: &str) -> Result<u64, SecretStoreError> {
        let answer = self
            .call(
                reqwest::Method::GET,
                &format!("{}/data/{path}", self.mount),
                None,
                "rotate",
                name,
            )
            .await?;
        #[derive(Deserialize)]
        struct Body {
            data: Option<Meta>,
        }
        #[derive(Deserialize)]
        struct Meta {
            metadata: Option<Metadata>,
        }
        #[derive(Deserialize)]
        struct Metadata {
            version: u64,
        }
        let version = |answer: &Answer| {
            api::parse::<Body>(&answer.body, "the read answer")
                .ok()
                .and_then(|b| b.data)
                .and_then(|d| d.metadata)
                .map(|m| m.version)
        };
        match answer.status {
            200..=299 | 404 => version(&answer).ok_or_else(|| {
                if answer.status == 404 {
                    api::status_error("rotate", name, &answer)
                } else {
                    invalid("rotate", name, "no data.metadata.version".to_owned())
                }
            }),
            _ => Err(api::status_error("rotate", name, &answer)),
        }
    }

    async fn write(
        &self,
        path: &str,
        name: &str,
        value: &SecretString,
        cas: Option<u64>,
        op: &'static str,
    ) -> Result<Version, SecretStoreError> {
        #[derive(serde::Serialize)]
        struct Data<'a> {
            value: &'a str,
        }
        #[derive(serde::Serialize)]
        struct Options {
            cas: u64,
        }
        #[derive(serde::Serialize)]
        struct Write<'a> {
            data: Data<'a>,
            #[serde(skip_serializing_if = "Option::is_none")]
            options: Option<Options>,
        }
        let body = serde_json::to_vec(&Write {
            data: Data {
                value: value.expose(),
            },
            options: cas.map(|cas| Options { cas }),
        })
        .map_err(|e| invalid(op, name, format!("encoding the write: {:?}", e.classify())))?;
        let answer = self
            .call(
                reqwest::Method::POST,
                &format!("{}/data/{path}", self.mount),
                Some(SecretBytes::new(body)),
                op,
                name,
            )
            .await?;
        if !(200..300).contains(&answer.status) {
            return Err(api::status_error(op, name, &answer));
        }
        #[derive(Deserialize)]
        struct Body {
            data: Option<Written>,
        }
        #[derive(Deserialize)]
        struct Written {
            version: u64,
        }
        api::parse::<Body>(&answer.body, "the write answer")
            .map_err(|m| invalid(op, name, m))?
            .data
            .map(|w| Version(w.version.to_string()))
            .ok_or_else(|| invalid(op, name, "no data.version".to_owned()))
    }
}

fn invalid(op: &'static str, name: &str, message: String) -> SecretStoreError {
    SecretStoreError::InvalidResponse {
        provider: PROVIDER,
        op,
        name: name.to_owned(),
        message,
    }
}

impl TresorStoreBuilder {
    pub fn auth(mut self, auth: TresorAuth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Shorthand for `auth(TresorAuth::Token(token))`.
    pub fn token(self, token: SecretString) -> Self {
        self.auth(TresorAuth::Token(token))
    }

    /// The KV v2 mount (`secret` by default).
    pub fn mount(mut self, mount: impl Into<String>) -> Self {
        self.mount = mount.into();
        self
    }

    /// Put before every name, as given (`apps/console/` → `apps/console/<name>`; no `/` is
    /// added). Empty means no prefix.
    pub fn path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.path_prefix = prefix.into();
        self
    }

    /// A CA (PEM) trusted instead of the system's roots.
    pub fn ca_pem(mut self, pem: impl Into<String>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Per-request timeout (30 s by default).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// At which fraction of its TTL the token is renewed (or replaced): 2/3 by default; at
    /// least 0.1 and at most 0.9.
    pub fn renew_fraction(mut self, fraction: f64) -> Self {
        self.renew_fraction = fraction;
        self
    }

    /// Off: no background renewal (the token lives as long as it was issued for).
    pub fn renew_in_background(mut self, renew: bool) -> Self {
        self.renew = renew;
        self
    }

    /// Logs in (or looks the token up), then starts the renewal task. Must run inside a Tokio
    /// runtime.
    pub async fn build(self) -> Result<TresorStore, SecretStoreError> {
        let auth = self.auth.ok_or_else(|| {
            SecretStoreError::Config(
                "tresor: no authentication (a token, or a kubernetes or jwt login)".to_owned(),
            )
        })?;
        let mount = self.mount.trim_matches('/').to_owned();
        if !crate::store::valid_vault_path(&mount) {
            return Err(SecretStoreError::Config(format!(
                "tresor: invalid KV mount {:?}",
                crate::error::shown(&self.mount)
            )));
        }
        if let TresorAuth::Kubernetes { mount: m, .. } | TresorAuth::Jwt { mount: m, .. } = &auth
            && !crate::store::valid_vault_path(m.trim_matches('/'))
        {
            return Err(SecretStoreError::Config(format!(
                "tresor: invalid auth mount {:?}",
                crate::error::shown(m)
            )));
        }
        let auth = match auth {
            TresorAuth::Kubernetes {
                mount,
                role,
                token_file,
            } => TresorAuth::Kubernetes {
                mount: mount.trim_matches('/').to_owned(),
                role,
                token_file,
            },
            TresorAuth::Jwt { mount, role, jwt } => TresorAuth::Jwt {
                mount: mount.trim_matches('/').to_owned(),
                role,
                jwt,
            },
            token => token,
        };
        if !self.path_prefix.is_empty()
            && !crate::store::valid_vault_path(&format!("{}x", self.path_prefix))
        {
            return Err(SecretStoreError::Config(format!(
                "tresor: invalid path prefix {:?}: segments of letters, digits, '-', '_' and '.', ending in '/' or not",
                crate::error::shown(&self.path_prefix)
            )));
        }
        if !(0.1..=0.9).contains(&self.renew_fraction) {
            return Err(SecretStoreError::Config(format!(
                "tresor: renew fraction {} is outside 0.1 to 0.9",
                self.renew_fraction
            )));
        }
        let api = Arc::new(
            Api::new(&self.address, self.ca_pem.as_deref(), self.timeout)
                .map_err(|e| SecretStoreError::Config(format!("tresor: {e}")))?,
        );
        let session = Arc::new(Session::start(api.clone(), auth, self.renew_fraction).await?);
        let renewal = self
            .renew
            .then(|| tokio::spawn(session.clone().keep_alive()).abort_handle());
        tracing::info!(
            address = api.address(),
            mount = %mount,
            path_prefix = %self.path_prefix,
            auth = session.status().method,
            "secret store: tresor"
        );
        Ok(TresorStore {
            api,
            session,
            mount,
            path_prefix: self.path_prefix,
            renewal,
        })
    }
}

#[async_trait]
impl SecretStore for TresorStore {
    fn provider(&self) -> Provider {
        Provider::Tresor
    }

    async fn get(&self, name: &str) -> Result<Secret, SecretStoreError> {
        let path = self.path(name)?;
        let answer = self
            .call(
                reqwest::Method::GET,
                &format!("{}/data/{path}", self.mount),
                None,
                "get",
                name,
            )
            .await?;
        if !(200..300).contains(&answer.status) {
            return Err(api::status_error("get", name, &answer));
        }
        #[derive(Deserialize)]
        struct Body {
            data: Option<Read>,
        }
        #[derive(Deserialize)]
        struct Read {
            data: Option<Value>,
            metadata: Option<Metadata>,
        }
        #[derive(Deserialize)]
        struct Value {
            value: Option<SecretString>,
        }
        #[derive(Deserialize)]
        struct Metadata {
            version: u64,
        }
        let read = api::parse::<Body>(
            &answer.body,
            "the KV v2 read answer (a string `value` field is expected)",
        )
        .map_err(|m| invalid("get", name, m))?
        .data
        .ok_or_else(|| invalid("get", name, "no data".to_owned()))?;
        let value = read.data.and_then(|d| d.value).ok_or_else(|| {
            invalid(
                "get",
                name,
                "the secret has no `value` field (this client reads {\"value\": …} secrets, as tresor bootstrap writes them)".to_owned(),
            )
        })?;
        let version = read
            .metadata
            .map(|m| Version(m.version.to_string()))
            .ok_or_else(|| invalid("get", name, "no metadata.version".to_owned()))?;
        Ok(Secret { value, version })
    }

    async fn set(&self, name: &str, value: &SecretString) -> Result<Version, SecretStoreError> {
        let path = self.path(name)?;
        self.write(&path, name, value, None, "set").await
    }

    async fn delete(&self, name: &str) -> Result<(), SecretStoreError> {
        let path = self.path(name)?;
        let answer = self
            .call(
                reqwest::Method::DELETE,
                &format!("{}/metadata/{path}", self.mount),
                None,
                "delete",
                name,
            )
            .await?;
        if (200..300).contains(&answer.status) {
            Ok(())
        } else {
            Err(api::status_error("delete", name, &answer))
        }
    }

    async fn rotate(
        &self,
        name: &str,
        new_value: &SecretString,
    ) -> Result<Rotation, SecretStoreError> {
        let path = self.path(name)?;
        let previous = self.current_version(&path, name).await?;
        let current = self
            .write(&path, name, new_value, Some(previous), "rotate")
            .await?;
        Ok(Rotation {
            previous: Version(previous.to_string()),
            current,
        })
    }
}
