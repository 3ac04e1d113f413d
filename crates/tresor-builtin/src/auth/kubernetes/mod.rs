//! The Kubernetes auth method (`sys/auth` type `kubernetes`): service accounts log in with
//! their JWT, which the Kubernetes API server confirms through a TokenReview.
//!
//! Follows OpenBao's plugin API (`config`, `role/<name>`, `LIST role`, `login`), storage
//! layout and refusal texts; see `docs/auth-kubernetes.md` for the troubleshooting table.
//!
//! # Layout
//! - `config`: `config` (API server, CA, reviewer JWT, `pem_keys`, issuer) and the pod's own
//!   service account files.
//! - `role`: `role/<name>` CRUD and `LIST role`, name/namespace bindings with globs.
//! - `selector`: `bound_service_account_namespace_selector` (label selectors).
//! - `jwt`: the login JWT's claims, read before anything vouches for them.
//! - `keys`: `pem_keys` (public keys and certificates) and signature checks.
//! - `review`: the TokenReview and namespace client (reqwest + rustls, the configured CA only).
//! - `login`: the login flow.
//! - `denials`: every refusal, in OpenBao's words plus the binding that failed.

mod config;
mod denials;
mod jwt;
mod keys;
mod login;
mod review;
mod role;
mod selector;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use tresor_sdk::auth::{AuthMethod, AuthMethodFactory, LoginRenewal, RenewDecision};
use tresor_sdk::engine::{
    Denial, EngineError, EngineResult, MountInfo, Operation, Request, Response,
};
use tresor_sdk::storage::Storage;

pub use config::{DEFAULT_SERVICE_ACCOUNT_DIR, SERVICE_ACCOUNT_DIR_ENV};

use crate::clock::{Clock, SystemClock};

/// Builds Kubernetes auth methods. The service account directory (where a pod's `token` and
/// `ca.crt` are mounted) is [`DEFAULT_SERVICE_ACCOUNT_DIR`] unless the environment variable
/// [`SERVICE_ACCOUNT_DIR_ENV`] names another.
#[derive(Debug, Clone)]
pub struct KubernetesFactory {
    service_account_dir: PathBuf,
    clock: Arc<dyn Clock>,
}

impl Default for KubernetesFactory {
    fn default() -> Self {
        let dir = std::env::var_os(SERVICE_ACCOUNT_DIR_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SERVICE_ACCOUNT_DIR));
        Self::new(dir, Arc::new(SystemClock))
    }
}

impl KubernetesFactory {
    pub fn new(service_account_dir: impl Into<PathBuf>, clock: Arc<dyn Clock>) -> Self {
        Self {
            service_account_dir: service_account_dir.into(),
            clock,
        }
    }
}

impl AuthMethodFactory for KubernetesFactory {
    fn types(&self) -> &[&'static str] {
        &["kubernetes"]
    }

    fn build(&self, _mount: &MountInfo) -> EngineResult<Arc<dyn AuthMethod>> {
        Ok(Arc::new(KubernetesAuth {
            local: config::LocalFiles::new(self.service_account_dir.clone()),
            clock: self.clock.clone(),
            clients: review::Clients::default(),
            writes: tokio::sync::Mutex::new(()),
        }))
    }
}

/// One mounted Kubernetes auth method.
#[derive(Debug)]
pub struct KubernetesAuth {
    local: config::LocalFiles,
    clock: Arc<dyn Clock>,
    /// The HTTP client for the current CA, reused between logins.
    clients: review::Clients,
    /// Serialises config and role writes (each is a read-modify-write); logins only read.
    writes: tokio::sync::Mutex<()>,
}

fn role_name(path: &str) -> Option<&str> {
    path.strip_prefix("role/").filter(|n| role::valid_name(n))
}

#[async_trait]
impl AuthMethod for KubernetesAuth {
    fn unauthenticated_paths(&self) -> &'static [&'static str] {
        &["login"]
    }

    /// OpenBao's `pathResolveRole`: the login's `role`, as sent, when it exists.
    async fn resolve_role(
        &self,
        data: &serde_json::Map<String, Value>,
        storage: &dyn Storage,
    ) -> EngineResult<Option<String>> {
        let Some(Value::String(name)) = data.get("role") else {
            return Ok(None);
        };
        if name.is_empty() || name.split('/').any(|segment| segment == "..") {
            return Ok(None);
        }
        Ok(role::load(storage, name).await?.map(|_| name.clone()))
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
                Read => config::read(storage).await,
                Create | Update => {
                    let _guard = self.writes.lock().await;
                    config::write(request, storage, &self.local).await
                }
                _ => Err(EngineError::UnsupportedOperation),
            },
            "role" | "role/" => match op {
                List => role::list(request, storage).await,
                _ => Err(EngineError::UnsupportedOperation),
            },
            "login" => match op {
                Create | Update => login::login(self, request, storage).await,
                _ => Err(EngineError::UnsupportedOperation),
            },
            path => {
                let Some(name) = role_name(path) else {
                    return Err(EngineError::UnsupportedPath);
                };
                match op {
                    Read => role::read(storage, name).await,
                    Create | Update => {
                        let _guard = self.writes.lock().await;
                        role::write(request, storage, name).await
                    }
                    Delete => {
                        let _guard = self.writes.lock().await;
                        role::delete(storage, name).await
                    }
                    _ => Err(EngineError::UnsupportedOperation),
                }
            }
        }
    }

    async fn exists(&self, request: &Request, storage: &dyn Storage) -> EngineResult<Option<bool>> {
        match role_name(&request.path) {
            Some(name) => Ok(Some(role::load(storage, name).await?.is_some())),
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
            .and_then(Value::as_str)
            .unwrap_or_default();
        if name.is_empty() {
            return Err(EngineError::Internal(
                "failed to fetch role_name during renewal".into(),
            ));
        }
        let Some(role) = role::load(storage, name).await? else {
            // OpenBao answers this with a 500 too (the plugin's error is not a user error).
            return Err(Denial {
                status: 500,
                summary: format!("role {name} does not exist during renewal"),
                detail: format!(
                    "the role '{name}' this token logged in with was deleted; log in again with an existing role"
                ),
            }
            .into());
        };
        Ok(RenewDecision::from_settings(&role.token))
    }
}
