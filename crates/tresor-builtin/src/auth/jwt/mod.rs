//! The JWT/OIDC auth method: `sys/auth` types `jwt` and `oidc` (one implementation, as in
//! OpenBao), following OpenBao's `builtin/credential/jwt` API.
//!
//! # Layout
//! - `config`: `config` read/write, the stored [`config::JwtConfig`] and the key source built
//!   from it ([`config::Loaded`], cached here until the next config write).
//! - `role`: `role/:name` CRUD and `LIST role`.
//! - `keys`: PEM and JWK public keys, the JWS algorithms, signature checks (ring).
//! - `jwks`: static keys or a fetched JWKS (from `jwks_url` or OIDC discovery), cached and
//!   refetched (rate-limited) on an unknown `kid`.
//! - `fetch`: the HTTP client (rustls + ring, the configured CA) and bounded JSON reads.
//! - `token`: parsing a compact JWS, refusing `none`/`HS*`, the registered claims and leeways.
//! - `claims`: claim lookup (JSON pointers), bound claims (exact and glob), claim mappings,
//!   groups, the user claim.
//! - `login`: `login {role, jwt}`.
//! - `oidc`: the browser flow, `oidc/auth_url` and `oidc/callback` (auth code + PKCE, state
//!   and nonce, single-use pending logins kept in memory for 10 minutes).
//!
//! Storage (the mount's view): `config`, `role/<name>`. The client secret is stored under the
//! barrier and never returned. No JWT, code, verifier or nonce is stored or logged.

mod claims;
mod config;
mod fetch;
mod jwks;
mod keys;
mod login;
mod oidc;
mod role;
mod token;

use std::sync::Arc;

use async_trait::async_trait;
use tresor_sdk::auth::{AuthMethod, AuthMethodFactory, LoginRenewal, RenewDecision};
use tresor_sdk::engine::{EngineError, EngineResult, MountInfo, Operation, Request, Response};
use tresor_sdk::storage::Storage;

use crate::clock::{Clock, SystemClock};
use config::Loaded;

/// Builds the method for mounts of type `jwt` and `oidc`.
#[derive(Debug, Default)]
pub(crate) struct JwtFactory;

impl AuthMethodFactory for JwtFactory {
    fn types(&self) -> &[&'static str] {
        &["jwt", "oidc"]
    }

    fn build(&self, _mount: &MountInfo) -> EngineResult<Arc<dyn AuthMethod>> {
        Ok(Arc::new(JwtAuth::new(Arc::new(SystemClock))))
    }
}

/// The cached configuration: `None` until loaded; the inner `Err` is a configuration whose
/// keys cannot be set up (kept so every login does not re-parse it).
type Cache = Option<Result<Arc<Loaded>, String>>;

/// One mounted JWT/OIDC method.
#[derive(Debug)]
pub(crate) struct JwtAuth {
    clock: Arc<dyn Clock>,
    cache: tokio::sync::RwLock<Cache>,
    pending: oidc::Pending,
}

impl JwtAuth {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            cache: tokio::sync::RwLock::new(None),
            pending: oidc::Pending::default(),
        }
    }

    /// Unix nanoseconds.
    pub(crate) fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The configuration with its key source; `None` when the mount is not configured.
    pub(crate) async fn loaded(&self, storage: &dyn Storage) -> EngineResult<Cache> {
        if let Some(cached) = self.cache.read().await.as_ref() {
            return Ok(Some(cached.clone()));
        }
        let mut cache = self.cache.write().await;
        if let Some(cached) = cache.as_ref() {
            return Ok(Some(cached.clone()));
        }
        let Some(config) = config::load(storage).await? else {
            return Ok(None);
        };
        let built = Loaded::build(config).map(Arc::new);
        *cache = Some(built.clone());
        Ok(Some(built))
    }

    async fn write_config(
        &self,
        req: &Request,
        storage: &dyn Storage,
    ) -> EngineResult<Option<Response>> {
        let existing = config::load(storage).await?;
        let (config, response) = config::write(req, existing.as_ref()).await?;
        let bytes = serde_json::to_vec(&config)
            .map_err(|e| EngineError::Internal(format!("encoding the jwt config: {e}")))?;
        // Hold the cache lock across the write so no login caches the old config after it.
        let mut cache = self.cache.write().await;
        storage.put(config::CONFIG_KEY, &bytes).await?;
        *cache = Some(Loaded::build(config).map(Arc::new));
        Ok(response)
    }
}

/// The role name in `role/<name>`, if the path is one (OpenBao's name pattern).
fn role_name(path: &str) -> Option<&str> {
    path.strip_prefix(role::ROLE_PREFIX)
        .filter(|n| role::valid_name(n))
}

#[async_trait]
impl AuthMethod for JwtAuth {
    fn unauthenticated_paths(&self) -> &'static [&'static str] {
        &["login", "oidc/auth_url", "oidc/callback"]
    }

    /// OpenBao's `pathResolveRole`: the login's `role` (or the configured `default_role`),
    /// as sent, when the mount is configured and the role exists.
    async fn resolve_role(
        &self,
        data: &serde_json::Map<String, serde_json::Value>,
        storage: &dyn Storage,
    ) -> EngineResult<Option<String>> {
        let Some(config) = config::load(storage).await? else {
            return Ok(None);
        };
        // A `role` that is not a string fails OpenBao's field validation: no role at all
        // (not the default one).
        let mut name = match data.get("role") {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(serde_json::Value::Bool(b)) => b.to_string(),
            Some(_) => return Ok(None),
        };
        if name.is_empty() {
            name.clone_from(&config.default_role);
        }
        if name.is_empty() || !role::valid_name(&name.to_lowercase()) {
            return Ok(None);
        }
        Ok(role::load(storage, &name.to_lowercase())
            .await?
            .map(|_| name))
    }

    async fn handle(
        &self,
        request: &Request,
        storage: &dyn Storage,
    ) -> EngineResult<Option<Response>> {
        use Operation::{Create, Delete, List, Read, Update};
        let op = request.operation;
        match request.path.as_str() {
            "config" => match op {
                Read => match config::load(storage).await? {
                    Some(c) => Ok(Some(config::read(&c).await)),
                    None => Err(EngineError::NotFound),
                },
                Create | Update => self.write_config(request, storage).await,
                _ => Err(EngineError::UnsupportedOperation),
            },
            "role" | "role/" => match op {
                List => role::list(storage).await,
                _ => Err(EngineError::UnsupportedOperation),
            },
            "login" => match op {
                Create | Update => login::login(self, request, storage).await,
                _ => Err(EngineError::UnsupportedOperation),
            },
            "oidc/auth_url" => match op {
                Create | Update => oidc::auth_url(self, request, storage).await,
                _ => Err(EngineError::UnsupportedOperation),
            },
            "oidc/callback" => match op {
                Read | Create | Update => oidc::callback(self, request, storage).await,
                _ => Err(EngineError::UnsupportedOperation),
            },
            path => {
                let Some(name) = role_name(path) else {
                    return Err(EngineError::UnsupportedPath);
                };
                let name = name.to_lowercase();
                match op {
                    Read => match role::load(storage, &name).await? {
                        Some(r) => Ok(Some(role::read(&r))),
                        None => Err(EngineError::NotFound),
                    },
                    Create | Update => role::write(request, storage, &name).await,
                    Delete => role::delete(storage, &name).await,
                    _ => Err(EngineError::UnsupportedOperation),
                }
            }
        }
    }

    async fn exists(&self, request: &Request, storage: &dyn Storage) -> EngineResult<Option<bool>> {
        match role_name(&request.path) {
            Some(name) => Ok(Some(
                role::load(storage, &name.to_lowercase()).await?.is_some(),
            )),
            None => Ok(None),
        }
    }

    async fn renew(
        &self,
        login: &LoginRenewal,
        storage: &dyn Storage,
    ) -> EngineResult<RenewDecision> {
        let name = login
            .internal
            .get("role")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        if name.is_empty() {
            return Err(EngineError::InvalidRequest(
                "failed to fetch role_name during renewal".to_owned(),
            ));
        }
        let Some(role) = role::load(storage, name).await? else {
            return Err(EngineError::InvalidRequest(format!(
                "role {name} does not exist during renewal"
            )));
        };
        Ok(RenewDecision::from_settings(&role.token))
    }
}

#[cfg(test)]
mod tests;
