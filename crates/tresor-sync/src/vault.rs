//! A small client for the Vault API Tresor speaks: KV v1/v2 reads, database credentials, and
//! token or Kubernetes logins, over `reqwest` (rustls with ring). Every failure is a
//! [`FetchError`] whose text is safe to print: it names paths, mounts, roles and properties,
//! and repeats the server's reason for a denial (OpenBao's and Tresor's reasons name policies
//! and paths), never a value. Response bodies are held in zeroizing buffers and the parsed
//! JSON is scrubbed when dropped ([`SecretJson`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use tresor_sdk::secret::SecretString;
use zeroize::{Zeroize, Zeroizing};

/// The most bytes of one response body.
const MAX_BODY: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("Tresor is sealed")]
    Sealed,
    #[error("permission denied on {path}{}", hint.as_deref().map(|h| format!(" ({h})")).unwrap_or_default())]
    PermissionDenied { path: String, hint: Option<String> },
    #[error("no secret at {path}")]
    NotFound { path: String },
    #[error("{0}")]
    Extract(#[from] crate::extract::ExtractError),
    #[error("Kubernetes login to auth/{mount}/login as role {role:?} failed: {reason}")]
    Login {
        mount: String,
        role: String,
        reason: String,
    },
    #[error("cannot reach {address}: {reason}")]
    Unreachable { address: String, reason: String },
    #[error("{path}: HTTP {status}: {message}")]
    Http {
        path: String,
        status: u16,
        message: String,
    },
    #[error("{0}")]
    Config(String),
}

/// A secret's JSON, scrubbed (every string zeroized) when dropped; `Debug` shows only keys.
pub struct SecretJson(pub Map<String, Value>);

impl std::fmt::Debug for SecretJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Drop for SecretJson {
    fn drop(&mut self) {
        for v in self.0.values_mut() {
            scrub(v);
        }
    }
}

fn scrub(v: &mut Value) {
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::Object(m) => m.values_mut().for_each(scrub),
        _ => {}
    }
}

/// A response's `data`, plus lease fields (dynamic credentials).
#[derive(Debug)]
pub struct Read {
    pub data: SecretJson,
    pub lease_id: String,
    pub lease_duration: u64,
    pub renewable: bool,
}

/// What `sys/leases/renew` granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRenewal {
    pub lease_id: String,
    pub lease_duration: u64,
    pub renewable: bool,
}

/// What `sys/leases/lookup` says of a lease (RFC 3339 times as the server writes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseLookup {
    pub id: String,
    pub issue_time: String,
    pub expire_time: String,
    /// Seconds left.
    pub ttl: u64,
    pub renewable: bool,
}

/// Where and how to connect.
#[derive(Debug, Clone, Default)]
pub struct Endpoint {
    pub address: String,
    /// PEM of extra CA certificates.
    pub ca_pem: Option<Vec<u8>>,
    pub skip_verify: bool,
    /// `X-Vault-Namespace`.
    pub namespace: Option<String>,
}

#[derive(Debug, Clone)]
pub struct VaultClient {
    http: reqwest::Client,
    endpoint: Endpoint,
    token: Option<SecretString>,
}

/// HTTP clients shared by the Vault clients of one `once` run or one controller, one per TLS
/// setting (extra CA bundle, `skipTLSVerify`): their connections and TLS sessions are kept and
/// reused across resources and reconciles, instead of one new connection (and handshake) per
/// reconcile. Cloning shares the pool; a default pool is empty. Clients of different tokio
/// runtimes must not share one (a pooled connection belongs to the runtime it was made on).
#[derive(Clone, Default)]
pub struct HttpPool(Arc<Mutex<HashMap<TlsSettings, reqwest::Client>>>);

/// What tells two pooled HTTP clients apart: the extra CA bundle (PEM) and `skipTLSVerify`.
type TlsSettings = (Option<Vec<u8>>, bool);

impl std::fmt::Debug for HttpPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpPool").finish_non_exhaustive()
    }
}

/// Logins kept across the passes of one controller (or `once` run), by connection and identity:
/// without it every refresh of every resource would log in again, and each Kubernetes login
/// costs a TokenRequest (an API call) and leaves a new token behind in the server until its TTL
/// runs out. A login is reused for two thirds of its token's TTL (at most an hour), then
/// replaced; [`LoginPool::forget`] drops one whose pass failed, so a revoked token is replaced
/// at the next attempt.
#[derive(Clone, Default)]
pub struct LoginPool(Arc<Mutex<HashMap<String, (VaultClient, std::time::Instant)>>>);

impl std::fmt::Debug for LoginPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginPool").finish_non_exhaustive()
    }
}

/// The longest a login is reused, whatever its TTL.
const MAX_LOGIN_REUSE: Duration = Duration::from_secs(3600);

impl LoginPool {
    /// The login kept under `key`, if still fresh.
    pub fn get(&self, key: &str) -> Option<VaultClient> {
        let mut pool = self.0.lock().ok()?;
        match pool.get(key) {
            Some((client, until)) if *until > std::time::Instant::now() => Some(client.clone()),
            Some(_) => {
                pool.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `client`, logged in with a token valid for `ttl_secs` (0: no expiry).
    pub fn put(&self, key: &str, client: &VaultClient, ttl_secs: u64) {
        let reuse = if ttl_secs == 0 {
            MAX_LOGIN_REUSE
        } else {
            Duration::from_secs(ttl_secs.saturating_mul(2) / 3).min(MAX_LOGIN_REUSE)
        };
        if reuse.is_zero() {
            return;
        }
        if let Ok(mut pool) = self.0.lock() {
            pool.retain(|_, (_, until)| *until > std::time::Instant::now());
            pool.insert(
                key.to_owned(),
                (client.clone(), std::time::Instant::now() + reuse),
            );
        }
    }

    pub fn forget(&self, key: &str) {
        if let Ok(mut pool) = self.0.lock() {
            pool.remove(key);
        }
    }

    /// How many logins are kept (tests).
    pub fn len(&self) -> usize {
        self.0.lock().map(|p| p.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Distinct TLS settings kept at once; more (a cluster with that many CA bundles) start over.
const MAX_POOLED: usize = 32;

impl HttpPool {
    fn client(&self, endpoint: &Endpoint) -> Result<reqwest::Client, FetchError> {
        let key = (endpoint.ca_pem.clone(), endpoint.skip_verify);
        if let Some(client) = self.0.lock().ok().and_then(|p| p.get(&key).cloned()) {
            return Ok(client);
        }
        let client = build_http(endpoint)?;
        if let Ok(mut pool) = self.0.lock() {
            if pool.len() >= MAX_POOLED {
                pool.clear();
            }
            pool.insert(key, client.clone());
        }
        Ok(client)
    }
}

fn build_http(endpoint: &Endpoint) -> Result<reqwest::Client, FetchError> {
    // The `tresor` binary installs ring as rustls' provider; tests and other callers of
    // the library may not have.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10));
    if let Some(pem) = &endpoint.ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|_| {
            FetchError::Config(format!(
                "the CA bundle for {} is not valid PEM",
                endpoint.address
            ))
        })?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if endpoint.skip_verify {
        builder = builder.danger_accept_invalid_certs(true);
    }
    builder
        .build()
        .map_err(|e| FetchError::Config(format!("building the HTTP client: {e}")))
}

impl VaultClient {
    /// A client with an HTTP client of its own.
    pub fn new(endpoint: Endpoint) -> Result<VaultClient, FetchError> {
        let http = build_http(&endpoint)?;
        Ok(Self::with_http(endpoint, http))
    }

    /// A client whose connections come from `pool`.
    pub fn pooled(endpoint: Endpoint, pool: &HttpPool) -> Result<VaultClient, FetchError> {
        let http = pool.client(&endpoint)?;
        Ok(Self::with_http(endpoint, http))
    }

    fn with_http(endpoint: Endpoint, http: reqwest::Client) -> VaultClient {
        VaultClient {
            http,
            endpoint: Endpoint {
                address: endpoint.address.trim_end_matches('/').to_owned(),
                ..endpoint
            },
            token: None,
        }
    }

    pub fn address(&self) -> &str {
        &self.endpoint.address
    }

    pub fn set_token(&mut self, token: SecretString) {
        self.token = Some(token);
    }

    /// The token it sends (set, or obtained by a login).
    pub fn token(&self) -> Option<&SecretString> {
        self.token.as_ref()
    }

    /// `GET /v1/<path>`.
    pub async fn read(&self, path: &str) -> Result<Read, FetchError> {
        self.request(reqwest::Method::GET, path, None).await
    }

    /// `PUT /v1/<path>` with a JSON body (VSO's dynamic secrets with `params`).
    pub async fn write(&self, path: &str, body: &Map<String, Value>) -> Result<Read, FetchError> {
        self.request(reqwest::Method::PUT, path, Some(body)).await
    }

    /// A KV secret's data: v1 `<path>`, v2 `<path>` (already with `/data/`) and `?version=`.
    pub async fn kv(
        &self,
        path: &str,
        v2: bool,
        version: Option<&str>,
    ) -> Result<SecretJson, FetchError> {
        let full = match version.filter(|v| !v.is_empty()) {
            Some(v) if v2 => {
                if !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(FetchError::Config(format!(
                        "version {v:?} of {path} is not a number"
                    )));
                }
                format!("{path}?version={v}")
            }
            _ => path.to_owned(),
        };
        let mut read = self.read(&full).await?;
        if !v2 {
            return Ok(SecretJson(std::mem::take(&mut read.data.0)));
        }
        match read.data.0.get_mut("data") {
            Some(Value::Object(inner)) => Ok(SecretJson(std::mem::take(inner))),
            // A deleted or destroyed version: data is null.
            _ => Err(FetchError::NotFound { path: full.clone() }),
        }
    }

    /// `PUT sys/leases/renew`: extends a lease by `increment` seconds. The server caps the
    /// answer at the lease's max TTL, so a `lease_duration` below `increment` means the lease
    /// cannot be extended further (see `dynamic`).
    pub async fn renew_lease(
        &self,
        lease_id: &str,
        increment_secs: u64,
    ) -> Result<LeaseRenewal, FetchError> {
        let mut body = Map::new();
        body.insert("lease_id".into(), Value::String(lease_id.to_owned()));
        body.insert("increment".into(), Value::from(increment_secs));
        let json = self
            .send(reqwest::Method::PUT, "sys/leases/renew", Some(&body))
            .await?;
        Ok(LeaseRenewal {
            lease_id: json
                .0
                .get("lease_id")
                .and_then(Value::as_str)
                .unwrap_or(lease_id)
                .to_owned(),
            lease_duration: json
                .0
                .get("lease_duration")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            renewable: json
                .0
                .get("renewable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// `PUT sys/leases/lookup`: a lease's times (no secret in the answer).
    pub async fn lookup_lease(&self, lease_id: &str) -> Result<LeaseLookup, FetchError> {
        let mut body = Map::new();
        body.insert("lease_id".into(), Value::String(lease_id.to_owned()));
        let read = self
            .request(reqwest::Method::PUT, "sys/leases/lookup", Some(&body))
            .await?;
        let data = &read.data.0;
        let text = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        Ok(LeaseLookup {
            id: text("id"),
            issue_time: text("issue_time"),
            expire_time: text("expire_time"),
            ttl: data.get("ttl").and_then(Value::as_u64).unwrap_or(0),
            renewable: data
                .get("renewable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// `PUT sys/leases/revoke` (synchronous: the engine's revocation has run when it returns).
    pub async fn revoke_lease(&self, lease_id: &str) -> Result<(), FetchError> {
        let mut body = Map::new();
        body.insert("lease_id".into(), Value::String(lease_id.to_owned()));
        self.send(reqwest::Method::PUT, "sys/leases/revoke", Some(&body))
            .await
            .map(|_| ())
    }

    /// Logs in through a Kubernetes auth mount and keeps the token; returns its TTL in seconds
    /// (`auth.lease_duration`, 0 when it has none).
    pub async fn login_kubernetes(
        &mut self,
        mount: &str,
        role: &str,
        jwt: &SecretString,
    ) -> Result<u64, FetchError> {
        let mount = mount.trim_matches('/');
        let path = format!("auth/{mount}/login");
        let mut body = Map::new();
        body.insert("role".into(), Value::String(role.to_owned()));
        body.insert("jwt".into(), Value::String(jwt.expose().to_owned()));
        let result = self.send(reqwest::Method::POST, &path, Some(&body)).await;
        if let Some(Value::String(s)) = body.get_mut("jwt") {
            s.zeroize();
        }
        let login_error = |reason: String| FetchError::Login {
            mount: mount.to_owned(),
            role: role.to_owned(),
            reason,
        };
        let json = match result {
            Ok(json) => json,
            Err(FetchError::Sealed) => return Err(FetchError::Sealed),
            Err(FetchError::PermissionDenied { hint, .. }) => {
                return Err(login_error(format!(
                    "permission denied{}",
                    hint.map(|h| format!(" ({h})")).unwrap_or_default()
                )));
            }
            Err(FetchError::Http {
                status, message, ..
            }) => return Err(login_error(format!("HTTP {status}: {message}"))),
            Err(other) => return Err(other),
        };
        let token = json
            .0
            .get("auth")
            .and_then(|a| a.get("client_token"))
            .and_then(Value::as_str)
            .ok_or_else(|| login_error("the response holds no client token".into()))?;
        self.token = Some(SecretString::new(token.to_owned()));
        Ok(json
            .0
            .get("auth")
            .and_then(|a| a.get("lease_duration"))
            .and_then(Value::as_u64)
            .unwrap_or(0))
    }

    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Map<String, Value>>,
    ) -> Result<Read, FetchError> {
        let mut json = self.send(method, path, body).await?;
        let lease_id = json
            .0
            .get("lease_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let lease_duration = json
            .0
            .get("lease_duration")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let renewable = json
            .0
            .get("renewable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let data = match json.0.get_mut("data") {
            Some(Value::Object(m)) => std::mem::take(m),
            _ => {
                return Err(FetchError::NotFound {
                    path: path.to_owned(),
                });
            }
        };
        Ok(Read {
            data: SecretJson(data),
            lease_id,
            lease_duration,
            renewable,
        })
    }

    /// One request: the whole JSON body on 2xx, a classified error otherwise.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Map<String, Value>>,
    ) -> Result<SecretJson, FetchError> {
        let shown = path.split('?').next().unwrap_or(path).to_owned();
        let url = format!(
            "{}/v1/{}",
            self.endpoint.address,
            path.trim_start_matches('/')
        );
        let mut req = self.http.request(method, &url);
        if let Some(token) = &self.token {
            req = req.header("X-Vault-Token", token.expose());
        }
        if let Some(ns) = self.endpoint.namespace.as_deref().filter(|n| !n.is_empty()) {
            req = req.header("X-Vault-Namespace", ns);
        }
        if let Some(body) = body {
            let bytes = Zeroizing::new(
                serde_json::to_vec(body)
                    .map_err(|e| FetchError::Config(format!("encoding the request: {e}")))?,
            );
            req = req
                .header("Content-Type", "application/json")
                .body(bytes.to_vec());
        }
        let mut resp = req.send().await.map_err(|e| FetchError::Unreachable {
            address: self.endpoint.address.clone(),
            reason: reqwest_reason(&e),
        })?;
        let status = resp.status().as_u16();
        let mut bytes = Zeroizing::new(Vec::new());
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > MAX_BODY {
                        return Err(FetchError::Http {
                            path: shown,
                            status,
                            message: format!("response larger than {MAX_BODY} bytes"),
                        });
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(FetchError::Unreachable {
                        address: self.endpoint.address.clone(),
                        reason: reqwest_reason(&e),
                    });
                }
            }
        }
        // A 204 (a revocation) has no body.
        if (200..300).contains(&status) && bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(SecretJson(Map::new()));
        }
        let json: Option<Map<String, Value>> = serde_json::from_slice(&bytes).ok();
        if (200..300).contains(&status) {
            return json.map(SecretJson).ok_or_else(|| FetchError::Http {
                path: shown,
                status,
                message: "the response is not a JSON object".into(),
            });
        }
        let errors: Vec<String> = json
            .as_ref()
            .and_then(|j| j.get("errors"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let text = errors.join("; ");
        if let Some(mut j) = json {
            j.values_mut().for_each(scrub);
        }
        Err(classify(status, &shown, &text))
    }
}

fn reqwest_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        // The source chain says why (refused, DNS, TLS); it holds no secret.
        let mut reason = String::from("connection failed");
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            reason = format!("connection failed: {s}");
            source = s.source();
        }
        reason
    } else {
        e.to_string()
    }
}

/// Maps a failed response to its reason. The server's text is kept only for denials and
/// unexpected statuses, trimmed: Vault's errors name paths and policies, never values.
pub fn classify(status: u16, path: &str, errors: &str) -> FetchError {
    let clean = errors
        .replace("1 error occurred:", "")
        .replace(['\n', '\t'], " ")
        .replace("* ", "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let clean: String = clean.chars().take(300).collect();
    match status {
        503 if clean.to_ascii_lowercase().contains("sealed") => FetchError::Sealed,
        403 => {
            let hint = clean
                .split_once("permission denied")
                .map(|(_, rest)| rest.trim_start_matches([':', ' ']).to_owned())
                .filter(|h| !h.is_empty())
                .or_else(|| {
                    (!clean.is_empty() && clean != "permission denied").then(|| clean.clone())
                });
            FetchError::PermissionDenied {
                path: path.to_owned(),
                hint,
            }
        }
        404 => FetchError::NotFound {
            path: path.to_owned(),
        },
        _ => FetchError::Http {
            path: path.to_owned(),
            status,
            message: if clean.is_empty() {
                "no error text".into()
            } else {
                clean
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_classified_with_safe_reasons() {
        assert_eq!(
            classify(503, "secret/data/x", "Vault is sealed").to_string(),
            "Tresor is sealed"
        );
        assert_eq!(
            classify(
                403,
                "secret/data/x",
                "1 error occurred:\n\t* permission denied\n\n"
            )
            .to_string(),
            "permission denied on secret/data/x"
        );
        assert_eq!(
            classify(
                403,
                "secret/data/x",
                "1 error occurred:\n\t* permission denied: no policy of the token (default, ci) grants read on secret/data/x\n\n"
            )
            .to_string(),
            "permission denied on secret/data/x (no policy of the token (default, ci) grants read on secret/data/x)"
        );
        assert_eq!(
            classify(404, "secret/data/x", "").to_string(),
            "no secret at secret/data/x"
        );
        assert_eq!(
            classify(500, "db/creds/app", "internal error").to_string(),
            "db/creds/app: HTTP 500: internal error"
        );
    }

    #[test]
    fn secret_json_debug_shows_keys_only() {
        let mut m = Map::new();
        m.insert("password".into(), Value::String("hunter2".into()));
        let shown = format!("{:?}", SecretJson(m));
        assert!(
            shown.contains("password") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
