//! The Key Vault secrets REST API (api-version 7.5 by default; any 7.4 or later).
//!
//! Every request first goes out without a token (and, for a `PUT`, without its body); the
//! vault's 401 challenge names the tenant and resource, the credential is asked for a token
//! for `<resource>/.default` in that tenant, and the token is cached until shortly before it
//! expires (5 minutes, or half its lifetime when shorter). A 401 to a request that carried a
//! token drops the cached token and tries once more. 408/429/5xx and transport errors are
//! retried as [`RetryPolicy`] says, honouring `Retry-After`. Lists follow `nextLink`, which
//! must stay on the vault's own scheme, host and port (a token is sent with it).
//!
//! Secret values are [`SecretString`]s; no error, log or `Debug` holds a value or a token.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use tresor_sdk::secret::{SecretBytes, SecretString};

use crate::challenge::{self, Challenge, ChallengeError};
use crate::credential::{CredentialError, TokenCredential};
use crate::http;
use crate::retry::{RetryPolicy, retry_after, retryable_status};

/// The api-version sent when [`KeyVaultOptions::api_version`] is not changed.
pub const DEFAULT_API_VERSION: &str = "7.5";
/// Lists stop after this many pages (a vault of 25 × 4000 secrets), in case a server loops.
const MAX_PAGES: usize = 4000;

/// How a [`KeyVaultClient`] talks to the vault.
#[derive(Debug, Clone)]
pub struct KeyVaultOptions {
    /// `api-version` (7.4 or later).
    pub api_version: String,
    /// A CA (PEM) trusted instead of the system's roots (tests).
    pub ca_pem: Option<String>,
    pub retry: RetryPolicy,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The challenge's resource must be a parent domain of the vault's host
    /// (`vault.azure.net` for `x.vault.azure.net`), so a look-alike URL cannot obtain a token
    /// for another resource. Off only for tests against a vault on `127.0.0.1`.
    pub verify_challenge_resource: bool,
    /// `maxresults` of list pages (1–25; `None`: the service's default of 25).
    pub max_page_size: Option<u32>,
    /// How long `delete_secret` and `recover_deleted_secret` wait for the operation to show.
    pub poll_timeout: Duration,
    pub poll_interval: Duration,
}

impl Default for KeyVaultOptions {
    fn default() -> Self {
        Self {
            api_version: DEFAULT_API_VERSION.to_owned(),
            ca_pem: None,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            verify_challenge_resource: true,
            max_page_size: None,
            poll_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// Why a Key Vault operation failed. Texts hold the operation, the status, Azure's error code
/// and message; never a secret value or a token.
#[derive(Debug, thiserror::Error)]
pub enum KeyVaultError {
    #[error(
        "invalid secret name {0:?}: Key Vault secret names are 1 to 127 letters, digits and hyphens"
    )]
    InvalidName(String),
    #[error("invalid secret version {0:?}: a version is letters and digits")]
    InvalidVersion(String),
    #[error("invalid vault URL {url}: {reason}")]
    InvalidVaultUrl { url: String, reason: String },
    #[error("{op}: not found ({code}): {message}")]
    NotFound {
        op: String,
        code: String,
        message: String,
    },
    #[error("{op}: forbidden ({code}): {message}")]
    Forbidden {
        op: String,
        code: String,
        message: String,
    },
    #[error("{op}: unauthorized ({code}): {message}")]
    Unauthorized {
        op: String,
        code: String,
        message: String,
    },
    #[error("{op}: conflict ({code}): {message}")]
    Conflict {
        op: String,
        code: String,
        message: String,
    },
    #[error("{op}: bad request ({code}): {message}")]
    BadRequest {
        op: String,
        code: String,
        message: String,
    },
    #[error("{op}: Key Vault answered {status} ({code}) after {attempts} attempt(s): {message}")]
    Status {
        op: String,
        status: u16,
        code: String,
        message: String,
        attempts: u32,
    },
    #[error(
        "{op}: Key Vault answered {status} and asked to retry after {wait:?}, longer than the {max:?} this client waits"
    )]
    RetryAfterTooLong {
        op: String,
        status: u16,
        wait: Duration,
        max: Duration,
    },
    #[error("{op}: {message} (after {attempts} attempt(s))")]
    Transport {
        op: String,
        message: String,
        attempts: u32,
    },
    #[error("{op}: {error}")]
    Challenge {
        op: String,
        #[source]
        error: ChallengeError,
    },
    #[error(
        "{op}: the challenge's resource {resource} is not a parent domain of the vault's host {host} (set verify_challenge_resource off only for a test vault)"
    )]
    ChallengeResource {
        op: String,
        resource: String,
        host: String,
    },
    #[error("{op}: no token: {error}")]
    Credential {
        op: String,
        #[source]
        error: CredentialError,
    },
    #[error("{op}: refused to follow nextLink to {link}: it leaves the vault {vault}")]
    ForeignNextLink {
        op: String,
        link: String,
        vault: String,
    },
    #[error("{op}: unexpected answer: {message}")]
    InvalidResponse { op: String, message: String },
    #[error("{op}: still not visible after {waited:?}")]
    PollTimeout { op: String, waited: Duration },
}

impl KeyVaultError {
    /// The HTTP status the vault answered, when it did.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::NotFound { .. } => Some(404),
            Self::Forbidden { .. } => Some(403),
            Self::Unauthorized { .. } => Some(401),
            Self::Conflict { .. } => Some(409),
            Self::BadRequest { .. } => Some(400),
            Self::Status { status, .. } | Self::RetryAfterTooLong { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

/// A secret's metadata (what lists return).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretProperties {
    pub name: String,
    /// `None` in list results of `list_secrets` (the latest version is implied).
    pub version: Option<String>,
    pub id: String,
    pub enabled: Option<bool>,
    /// Unix seconds.
    pub created: Option<i64>,
    pub updated: Option<i64>,
    pub content_type: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Set for secrets backing a Key Vault certificate.
    pub managed: bool,
}

/// A secret with its value. `Debug` shows the metadata, never the value.
#[derive(Debug, Clone)]
pub struct Secret {
    pub properties: SecretProperties,
    pub value: SecretString,
}

/// A soft-deleted secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedSecret {
    pub properties: SecretProperties,
    pub recovery_id: Option<String>,
    pub deleted_date: Option<i64>,
    pub scheduled_purge_date: Option<i64>,
}

#[derive(Deserialize, Default)]
struct RawAttributes {
    enabled: Option<bool>,
    created: Option<i64>,
    updated: Option<i64>,
}

#[derive(Deserialize)]
struct RawBundle {
    id: String,
    #[serde(default)]
    value: Option<SecretString>,
    #[serde(default)]
    attributes: Option<RawAttributes>,
    #[serde(default, rename = "contentType")]
    content_type: Option<String>,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    managed: Option<bool>,
    #[serde(default, rename = "recoveryId")]
    recovery_id: Option<String>,
    #[serde(default, rename = "deletedDate")]
    deleted_date: Option<i64>,
    #[serde(default, rename = "scheduledPurgeDate")]
    scheduled_purge_date: Option<i64>,
}

#[derive(Deserialize)]
struct RawPage {
    #[serde(default)]
    value: Vec<RawBundle>,
    #[serde(default, rename = "nextLink")]
    next_link: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawError {
    #[serde(default)]
    error: Option<RawErrorBody>,
}

#[derive(Deserialize, Default)]
struct RawErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Checks a secret name as Key Vault does: `^[0-9a-zA-Z-]{1,127}$`.
pub fn validate_name(name: &str) -> Result<(), KeyVaultError> {
    if (1..=127).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        Ok(())
    } else {
        Err(KeyVaultError::InvalidName(name.chars().take(200).collect()))
    }
}

fn validate_version(version: &str) -> Result<(), KeyVaultError> {
    if !version.is_empty()
        && version.len() <= 64
        && version.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        Ok(())
    } else {
        Err(KeyVaultError::InvalidVersion(
            version.chars().take(100).collect(),
        ))
    }
}

struct CachedToken {
    tenant: String,
    scope: String,
    token: SecretString,
    refresh_at: Instant,
}

/// A client of one vault.
pub struct KeyVaultClient {
    vault: url::Url,
    credential: Arc<dyn TokenCredential>,
    http: reqwest::Client,
    options: KeyVaultOptions,
    challenge: std::sync::Mutex<Option<Challenge>>,
    /// Held while a token is fetched, so concurrent requests wait for one token request.
    token: tokio::sync::Mutex<Option<CachedToken>>,
}

impl std::fmt::Debug for KeyVaultClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVaultClient")
            .field("vault", &self.vault.as_str())
            .field("api_version", &self.options.api_version)
            .field("credential", &self.credential)
            .finish_non_exhaustive()
    }
}

enum Body {
    None,
    Json(SecretBytes),
}

impl KeyVaultClient {
    /// A client of the vault at `vault_url` (`https://<name>.vault.azure.net/`).
    pub fn new(
        vault_url: &str,
        credential: Arc<dyn TokenCredential>,
        options: KeyVaultOptions,
    ) -> Result<Self, KeyVaultError> {
        let invalid = |reason: &str| KeyVaultError::InvalidVaultUrl {
            url: vault_url.to_owned(),
            reason: reason.to_owned(),
        };
        let mut vault = url::Url::parse(vault_url).map_err(|e| invalid(&e.to_string()))?;
        if vault.scheme() != "https" {
            return Err(invalid(
                "Key Vault is only reached over https (bearer tokens are never sent in clear)",
            ));
        }
        if vault.host_str().is_none() {
            return Err(invalid("no host"));
        }
        if !vault.username().is_empty() || vault.password().is_some() {
            return Err(invalid("user information is not allowed"));
        }
        vault.set_path("/");
        vault.set_query(None);
        vault.set_fragment(None);
        let http =
            http::client(options.ca_pem.as_deref(), options.timeout).map_err(|e| invalid(&e))?;
        Ok(Self {
            vault,
            credential,
            http,
            options,
            challenge: std::sync::Mutex::new(None),
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// A client authenticating with the [`DefaultCredential`](crate::DefaultCredential) chain configured from `env`
    /// (`Env::process()` in a binary).
    pub fn with_default_credential(
        vault_url: &str,
        env: &crate::Env,
        credential_options: &crate::CredentialOptions,
        options: KeyVaultOptions,
    ) -> Result<Self, KeyVaultError> {
        let credential = Arc::new(crate::DefaultCredential::from_env(env, credential_options));
        Self::new(vault_url, credential, options)
    }

    /// The vault's URL, with a trailing `/`.
    pub fn vault_url(&self) -> &str {
        self.vault.as_str()
    }

    fn url(&self, segments: &[&str]) -> url::Url {
        self.url_with(segments, &[])
    }

    fn url_with(&self, segments: &[&str], query: &[(&'static str, String)]) -> url::Url {
        let mut url = self.vault.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.clear();
            path.extend(segments);
        }
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("api-version", &self.options.api_version);
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        url
    }

    /// Every secret's metadata (the latest version of each), through all pages.
    pub async fn list_secrets(&self) -> Result<Vec<SecretProperties>, KeyVaultError> {
        let url = self.url_with(&["secrets"], &self.page_query());
        self.list_all("list secrets", url)
            .await
            .map(|v| v.into_iter().map(|(p, _)| p).collect())
    }

    /// Every version of one secret.
    pub async fn list_secret_versions(
        &self,
        name: &str,
    ) -> Result<Vec<SecretProperties>, KeyVaultError> {
        validate_name(name)?;
        let url = self.url_with(&["secrets", name, "versions"], &self.page_query());
        self.list_all(&format!("list versions of secret {name}"), url)
            .await
            .map(|v| v.into_iter().map(|(p, _)| p).collect())
    }

    /// Every soft-deleted secret.
    pub async fn list_deleted_secrets(&self) -> Result<Vec<DeletedSecret>, KeyVaultError> {
        let url = self.url_with(&["deletedsecrets"], &self.page_query());
        self.list_all("list deleted secrets", url)
            .await
            .map(|v| v.into_iter().map(|(_, d)| d).collect())
    }

    /// A secret's value: the latest version, or `version`.
    pub async fn get_secret(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Secret, KeyVaultError> {
        validate_name(name)?;
        // The latest version is `secrets/{name}/` (trailing slash), as the official clients ask.
        let url = match version {
            Some(v) => {
                validate_version(v)?;
                self.url(&["secrets", name, v])
            }
            None => self.url(&["secrets", name, ""]),
        };
        let op = format!("get secret {name}");
        let bytes = self
            .call(&op, reqwest::Method::GET, url, Body::None)
            .await?;
        let raw = parse_bundle(&op, &bytes)?;
        let value = raw
            .value
            .clone()
            .ok_or_else(|| KeyVaultError::InvalidResponse {
                op: op.clone(),
                message: "the secret bundle has no value".to_owned(),
            })?;
        Ok(Secret {
            properties: properties(&raw),
            value,
        })
    }

    /// Sets a secret (a new version); returns the new version's metadata.
    pub async fn set_secret(
        &self,
        name: &str,
        value: &SecretString,
        content_type: Option<&str>,
    ) -> Result<SecretProperties, KeyVaultError> {
        validate_name(name)?;
        #[derive(serde::Serialize)]
        struct SetBody<'a> {
            value: &'a str,
            #[serde(rename = "contentType", skip_serializing_if = "Option::is_none")]
            content_type: Option<&'a str>,
        }
        let op = format!("set secret {name}");
        let body = serde_json::to_vec(&SetBody {
            value: value.expose(),
            content_type,
        })
        .map_err(|e| KeyVaultError::InvalidResponse {
            op: op.clone(),
            message: format!("encoding the request: {e}"),
        })?;
        let url = self.url(&["secrets", name]);
        let bytes = self
            .call(
                &op,
                reqwest::Method::PUT,
                url,
                Body::Json(SecretBytes::new(body)),
            )
            .await?;
        Ok(properties(&parse_bundle(&op, &bytes)?))
    }

    /// Soft-deletes a secret (all its versions) and waits until the deletion shows among the
    /// deleted secrets.
    pub async fn delete_secret(&self, name: &str) -> Result<DeletedSecret, KeyVaultError> {
        validate_name(name)?;
        let op = format!("delete secret {name}");
        let bytes = self
            .call(
                &op,
                reqwest::Method::DELETE,
                self.url(&["secrets", name]),
                Body::None,
            )
            .await?;
        let deleted = deleted(&parse_bundle(&op, &bytes)?);
        if deleted.recovery_id.is_some() {
            self.poll_until_found(&op, self.url(&["deletedsecrets", name]))
                .await?;
        }
        Ok(deleted)
    }

    /// A soft-deleted secret's metadata.
    pub async fn get_deleted_secret(&self, name: &str) -> Result<DeletedSecret, KeyVaultError> {
        validate_name(name)?;
        let op = format!("get deleted secret {name}");
        let bytes = self
            .call(
                &op,
                reqwest::Method::GET,
                self.url(&["deletedsecrets", name]),
                Body::None,
            )
            .await?;
        Ok(deleted(&parse_bundle(&op, &bytes)?))
    }

    /// Recovers a soft-deleted secret and waits until it can be read again.
    pub async fn recover_deleted_secret(
        &self,
        name: &str,
    ) -> Result<SecretProperties, KeyVaultError> {
        validate_name(name)?;
        let op = format!("recover secret {name}");
        let bytes = self
            .call(
                &op,
                reqwest::Method::POST,
                self.url(&["deletedsecrets", name, "recover"]),
                Body::None,
            )
            .await?;
        let props = properties(&parse_bundle(&op, &bytes)?);
        self.poll_until_found(&op, self.url(&["secrets", name, ""]))
            .await?;
        Ok(props)
    }

    /// Permanently deletes a soft-deleted secret.
    pub async fn purge_deleted_secret(&self, name: &str) -> Result<(), KeyVaultError> {
        validate_name(name)?;
        self.call(
            &format!("purge secret {name}"),
            reqwest::Method::DELETE,
            self.url(&["deletedsecrets", name]),
            Body::None,
        )
        .await
        .map(|_| ())
    }

    fn page_query(&self) -> Vec<(&'static str, String)> {
        self.options
            .max_page_size
            .map(|n| vec![("maxresults", n.to_string())])
            .unwrap_or_default()
    }

    async fn poll_until_found(&self, op: &str, url: url::Url) -> Result<(), KeyVaultError> {
        let started = Instant::now();
        loop {
            match self
                .call(op, reqwest::Method::GET, url.clone(), Body::None)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
            if started.elapsed() >= self.options.poll_timeout {
                return Err(KeyVaultError::PollTimeout {
                    op: op.to_owned(),
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(self.options.poll_interval).await;
        }
    }

    async fn list_all(
        &self,
        op: &str,
        first: url::Url,
    ) -> Result<Vec<(SecretProperties, DeletedSecret)>, KeyVaultError> {
        let mut out = Vec::new();
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(KeyVaultError::InvalidResponse {
                    op: op.to_owned(),
                    message: format!("more than {MAX_PAGES} pages"),
                });
            }
            let bytes = self.call(op, reqwest::Method::GET, url, Body::None).await?;
            let page: RawPage =
                serde_json::from_slice(&bytes).map_err(|e| KeyVaultError::InvalidResponse {
                    op: op.to_owned(),
                    message: format!("the list page does not parse: {e}"),
                })?;
            out.extend(page.value.iter().map(|raw| (properties(raw), deleted(raw))));
            if let Some(link) = page.next_link.filter(|l| !l.is_empty()) {
                next = Some(self.same_vault(op, &link)?);
            }
        }
        Ok(out)
    }

    /// A `nextLink`, if it stays on the vault's scheme, host and port.
    fn same_vault(&self, op: &str, link: &str) -> Result<url::Url, KeyVaultError> {
        let foreign = || KeyVaultError::ForeignNextLink {
            op: op.to_owned(),
            link: link.chars().take(200).collect(),
            vault: self.vault.to_string(),
        };
        let url = url::Url::parse(link).map_err(|_| foreign())?;
        if url.scheme() == self.vault.scheme()
            && url.host_str() == self.vault.host_str()
            && url.port_or_known_default() == self.vault.port_or_known_default()
            && url.username().is_empty()
            && url.password().is_none()
        {
            Ok(url)
        } else {
            Err(foreign())
        }
    }

    /// The token to send, when a challenge has been seen.
    async fn token(&self, op: &str) -> Result<Option<SecretString>, KeyVaultError> {
        let challenge = self.challenge.lock().ok().and_then(|c| c.clone());
        let Some(challenge) = challenge else {
            return Ok(None);
        };
        let mut cached = self.token.lock().await;
        if let Some(c) = cached.as_ref()
            && c.tenant == challenge.tenant
            && c.scope == challenge.scope
            && Instant::now() < c.refresh_at
        {
            return Ok(Some(c.token.clone()));
        }
        let token = self
            .credential
            .get_token(&challenge.scope, Some(&challenge.tenant))
            .await
            .map_err(|error| KeyVaultError::Credential {
                op: op.to_owned(),
                error,
            })?;
        let now = Instant::now();
        let lifetime = token.expires_at.saturating_duration_since(now);
        let margin = Duration::from_secs(300).min(lifetime / 2);
        *cached = Some(CachedToken {
            tenant: challenge.tenant,
            scope: challenge.scope,
            token: token.token.clone(),
            refresh_at: now + lifetime.saturating_sub(margin),
        });
        Ok(Some(token.token))
    }

    async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    fn accept_challenge(&self, op: &str, header: Option<&str>) -> Result<(), KeyVaultError> {
        let challenge = challenge::parse(header.unwrap_or_default()).map_err(|error| {
            KeyVaultError::Challenge {
                op: op.to_owned(),
                error: if header.is_none() {
                    ChallengeError::Missing
                } else {
                    error
                },
            }
        })?;
        if self.options.verify_challenge_resource {
            let resource_host = url::Url::parse(&challenge.resource)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default();
            let host = self.vault.host_str().unwrap_or_default();
            let ok = !resource_host.is_empty()
                && (host == resource_host || host.ends_with(&format!(".{resource_host}")));
            if !ok {
                return Err(KeyVaultError::ChallengeResource {
                    op: op.to_owned(),
                    resource: challenge.resource,
                    host: host.to_owned(),
                });
            }
        }
        if let Ok(mut c) = self.challenge.lock() {
            *c = Some(challenge);
        }
        Ok(())
    }

    /// One operation: the challenge, the token, retries. The body of a successful answer.
    async fn call(
        &self,
        op: &str,
        method: reqwest::Method,
        url: url::Url,
        body: Body,
    ) -> Result<Vec<u8>, KeyVaultError> {
        let policy = self.options.retry;
        let mut retries = 0u32;
        let mut reauthenticated = false;
        loop {
            let token = self.token(op).await?;
            let sent_token = token.is_some();
            let mut request = self.http.request(method.clone(), url.clone());
            match (&token, &body) {
                (Some(t), Body::Json(b)) => {
                    request = request
                        .bearer_auth(t.expose())
                        .header("content-type", "application/json")
                        .body(b.expose().to_vec());
                }
                (Some(t), Body::None) => request = request.bearer_auth(t.expose()),
                // Unauthenticated: only to learn the challenge, so without the secret.
                (None, Body::Json(_)) => {
                    request = request
                        .header("content-type", "application/json")
                        .body(Vec::new());
                }
                (None, Body::None) => {}
            }
            drop(token);
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    if retries < policy.max_retries {
                        tokio::time::sleep(policy.backoff(retries)).await;
                        retries += 1;
                        continue;
                    }
                    return Err(KeyVaultError::Transport {
                        op: op.to_owned(),
                        message: http::describe(&e),
                        attempts: retries + 1,
                    });
                }
            };
            let status = response.status().as_u16();
            if status == 401 && !(sent_token && reauthenticated) {
                let header = response
                    .headers()
                    .get(reqwest::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                if !sent_token {
                    // First contact: the challenge says which tenant and resource to ask for.
                    self.accept_challenge(op, header.as_deref())?;
                } else {
                    // The token was refused (revoked, or the vault moved tenant): once more
                    // with a fresh one.
                    if header.is_some() {
                        self.accept_challenge(op, header.as_deref())?;
                    }
                    self.forget_token().await;
                    reauthenticated = true;
                }
                continue;
            }
            if retryable_status(status) && retries < policy.max_retries {
                let wait = retry_after(response.headers(), SystemTime::now())
                    .unwrap_or_else(|| policy.backoff(retries));
                if wait > policy.max_retry_after {
                    return Err(KeyVaultError::RetryAfterTooLong {
                        op: op.to_owned(),
                        status,
                        wait,
                        max: policy.max_retry_after,
                    });
                }
                tokio::time::sleep(wait).await;
                retries += 1;
                continue;
            }
            let bytes = http::body(response)
                .await
                .map_err(|message| KeyVaultError::Transport {
                    op: op.to_owned(),
                    message,
                    attempts: retries + 1,
                })?;
            if (200..300).contains(&status) {
                return Ok(bytes);
            }
            return Err(error(op, status, &bytes, retries + 1));
        }
    }
}

fn error(op: &str, status: u16, bytes: &[u8], attempts: u32) -> KeyVaultError {
    let raw: RawError = serde_json::from_slice(bytes).unwrap_or_default();
    let body = raw.error.unwrap_or_default();
    let code = if body.code.is_empty() {
        format!("HTTP {status}")
    } else {
        body.code
    };
    // Azure's 403 message spans lines (caller, action, resource); one line reads better.
    let message: String = body
        .message
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
        .chars()
        .take(1000)
        .collect();
    let op = op.to_owned();
    match status {
        400 => KeyVaultError::BadRequest { op, code, message },
        401 => KeyVaultError::Unauthorized { op, code, message },
        403 => KeyVaultError::Forbidden { op, code, message },
        404 => KeyVaultError::NotFound { op, code, message },
        409 => KeyVaultError::Conflict { op, code, message },
        _ => KeyVaultError::Status {
            op,
            status,
            code,
            message,
            attempts,
        },
    }
}

fn parse_bundle(op: &str, bytes: &[u8]) -> Result<RawBundle, KeyVaultError> {
    // The error names where parsing failed, never the (secret-holding) text.
    serde_json::from_slice(bytes).map_err(|e| KeyVaultError::InvalidResponse {
        op: op.to_owned(),
        message: format!(
            "the secret bundle does not parse (line {}, column {})",
            e.line(),
            e.column()
        ),
    })
}

/// Name and version from an id `https://<vault>/secrets/<name>[/<version>]` (or
/// `/deletedsecrets/<name>`).
fn split_id(id: &str) -> (String, Option<String>) {
    let segments: Vec<String> = url::Url::parse(id)
        .ok()
        .and_then(|u| u.path_segments().map(|s| s.map(str::to_owned).collect()))
        .unwrap_or_default();
    let name = segments.get(1).cloned().unwrap_or_default();
    let version = segments.get(2).filter(|v| !v.is_empty()).cloned();
    (name, version)
}

fn properties(raw: &RawBundle) -> SecretProperties {
    let (name, version) = split_id(&raw.id);
    let attributes = raw.attributes.as_ref();
    SecretProperties {
        name,
        version,
        id: raw.id.clone(),
        enabled: attributes.and_then(|a| a.enabled),
        created: attributes.and_then(|a| a.created),
        updated: attributes.and_then(|a| a.updated),
        content_type: raw.content_type.clone(),
        tags: raw.tags.clone().unwrap_or_default(),
        managed: raw.managed.unwrap_or(false),
    }
}

fn deleted(raw: &RawBundle) -> DeletedSecret {
    DeletedSecret {
        properties: properties(raw),
        recovery_id: raw.recovery_id.clone(),
        deleted_date: raw.deleted_date,
        scheduled_purge_date: raw.scheduled_purge_date,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_key_vault_allows_them() {
        assert!(validate_name("ghcr-token").is_ok());
        assert!(validate_name("A1-b2").is_ok());
        assert!(validate_name(&"a".repeat(127)).is_ok());
        for bad in ["", "ghcr_token", "a.b", "a/b", "ü", "a b", &"a".repeat(128)] {
            assert!(
                matches!(validate_name(bad), Err(KeyVaultError::InvalidName(_))),
                "{bad:?}"
            );
        }
        assert!(validate_version("0123abcdef").is_ok());
        assert!(validate_version("../x").is_err());
    }

    #[test]
    fn ids_split_into_name_and_version() {
        assert_eq!(
            split_id("https://v.vault.azure.net/secrets/db/0a1b"),
            ("db".to_owned(), Some("0a1b".to_owned()))
        );
        assert_eq!(
            split_id("https://v.vault.azure.net/secrets/db"),
            ("db".to_owned(), None)
        );
        assert_eq!(
            split_id("https://v.vault.azure.net/deletedsecrets/db"),
            ("db".to_owned(), None)
        );
    }
}
