//! The interface between the core's router and a secrets engine.
//!
//! An engine is a unit: it receives a [`Request`] (already authenticated, authorised and routed
//! to its mount, with the path made relative to the mount) and the mount's [`Storage`] view, and
//! returns a [`Response`]. It never sees tokens, other mounts, or the barrier.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::storage::{Storage, StorageViewError};

/// What a request asks for. `Create` and `Update` are both PUT/POST on the wire; the router
/// turns a write into `Create` when the engine's existence check says the target is absent,
/// so policies can grant one without the other, as in Vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Read,
    Create,
    Update,
    Patch,
    Delete,
    List,
    /// OpenBao's recursive listing (`SCAN` method or `?scan=true`).
    Scan,
}

impl Operation {
    /// The ACL capability this operation needs.
    pub fn capability(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Patch => "patch",
            Operation::Delete => "delete",
            Operation::List => "list",
            Operation::Scan => "scan",
        }
    }
}

/// The mount a request was routed to, as the engine may need to know it.
#[derive(Debug, Clone, Default)]
pub struct MountInfo {
    /// The mount path with a trailing slash, e.g. `secret/`.
    pub path: String,
    /// The engine type as mounted (`kv`, `kv-v2`, `cubbyhole`, …).
    pub engine_type: String,
    /// `options` from the mount table (e.g. `version = "2"` for KV).
    pub options: BTreeMap<String, String>,
    pub default_lease_ttl: Duration,
    pub max_lease_ttl: Duration,
    /// The mount's accessor (`auth_kubernetes_1a2b3c4d`): identity aliases name their mount by it.
    pub accessor: String,
    /// The server's named password policies (`None` outside a server, e.g. in unit tests).
    pub passwords: Option<Arc<dyn crate::password::PasswordPolicies>>,
}

/// One request, routed to an engine.
#[derive(Debug, Clone)]
pub struct Request {
    pub operation: Operation,
    /// The path relative to the mount, without a leading slash (may be empty).
    pub path: String,
    /// The decoded JSON body (an empty map when there was none).
    pub data: Map<String, Value>,
    /// Query parameters, in order, percent-decoded.
    pub query: Vec<(String, String)>,
    /// The request's `Content-Type`, for engines that accept more than one (KV's merge patch).
    pub content_type: Option<String>,
    pub mount: Arc<MountInfo>,
    /// A stable, non-secret identifier of the calling token (its salted hash), for engines whose
    /// data is per token (cubbyhole). Never the token itself. Empty on unauthenticated paths.
    pub client_token_key: String,
    /// The calling token's display name (`token`, `root`, `approle`, `token-myapp`), for
    /// engines that name what they create after the caller (the database engine's username
    /// template). Not secret; empty on unauthenticated paths.
    pub display_name: String,
    /// The client's address, for CIDR bindings (AppRole's `secret_id_bound_cidrs`); `None`
    /// when the transport does not tell (in-process tests).
    pub remote_addr: Option<IpAddr>,
}

impl Request {
    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A lease attached to a response (dynamic secrets, or KV v1's `ttl` hint).
///
/// A *managed* lease is registered by the core's expiration manager: it gets a lease id
/// (`<mount path><request path>/<random id>`), is persisted under the barrier, and the engine
/// is called back through [`SecretEngine::renew_lease`] and [`SecretEngine::revoke_lease`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseSpec {
    /// The TTL the engine asks for; zero means the mount's default lease TTL. The core caps it
    /// by `max_ttl` and by the mount's (or the system's) maximum.
    pub ttl: Duration,
    /// The lease's own ceiling, counted from issue time (e.g. a role's `max_ttl`); zero means
    /// only the mount's (or the system's) maximum applies.
    pub max_ttl: Duration,
    pub renewable: bool,
    /// Whether the core registers it with the expiration manager (false for KV v1's hint,
    /// which only reports a duration).
    pub managed: bool,
    /// What the engine needs later to renew or revoke the secret (a username, a role name).
    /// Stored under the barrier with the lease and handed back in [`Lease::internal`]; never
    /// shown to clients.
    pub internal: Map<String, Value>,
    /// A key in the engine's own storage view that the core deletes in the same storage
    /// transaction that persists the lease record. An engine that creates something outside
    /// the server (a database role) writes a rollback record there *before* creating it; once
    /// the lease exists, the lease owns the cleanup and the record goes with one commit. A
    /// record that survives (a crash between the two) tells the engine what to undo. If the
    /// lease cannot be registered, the core calls [`SecretEngine::revoke_lease`] at once and,
    /// when that succeeds, deletes the record itself.
    pub rollback_key: Option<String>,
}

/// A managed lease as the core hands it back to its engine for renewal or revocation.
#[derive(Debug, Clone)]
pub struct Lease {
    /// `<mount path><request path>/<random id>`, e.g. `database/creds/app/AbCd…`.
    pub id: String,
    /// The request path (relative to the mount) that issued the secret.
    pub path: String,
    /// [`LeaseSpec::internal`] as the engine returned it (or last replaced it on renewal).
    pub internal: Map<String, Value>,
    /// Unix seconds.
    pub issue_time: i64,
    /// Unix seconds; `None` for a lease that never expires.
    pub expire_time: Option<i64>,
    /// The TTL granted by the core for this renewal (already capped by the maximum), or the
    /// lease's current TTL on revocation.
    pub ttl: Duration,
    /// The mount the lease belongs to, as it is mounted now.
    pub mount: Arc<MountInfo>,
}

/// What an engine answers to a renewal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseRenewal {
    /// A TTL lower than the one granted, when the engine cannot extend that far; `None` accepts
    /// the granted TTL.
    pub ttl: Option<Duration>,
    /// Replaces the lease's internal data when set.
    pub internal: Option<Map<String, Value>>,
}

/// An engine's answer. `None` from [`SecretEngine::handle`] means 204 No Content.
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub data: Option<Map<String, Value>>,
    pub warnings: Vec<String>,
    pub lease: Option<LeaseSpec>,
    /// Answer with this HTTP status and the full envelope instead of 200 (KV v2 answers a read
    /// of a deleted version with 404 and its metadata, and real clients depend on that).
    pub status_override: Option<u16>,
    /// A successful login (auth methods only): the core issues the token.
    pub auth: Option<crate::auth::Login>,
}

impl Response {
    pub fn with_data(data: Map<String, Value>) -> Self {
        Self {
            data: Some(data),
            ..Self::default()
        }
    }

    /// The answer to a LIST: `{"keys": [...]}`.
    pub fn list(keys: Vec<String>) -> Self {
        let mut data = Map::new();
        data.insert(
            "keys".into(),
            Value::Array(keys.into_iter().map(Value::String).collect()),
        );
        Self::with_data(data)
    }
}

/// Why an engine refused or failed a request. Messages go to the caller: never put secret
/// values in them.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// 404 with an empty error list (a missing secret, an empty LIST).
    #[error("not found")]
    NotFound,
    /// 400: the request is malformed or conflicts with the current state.
    #[error("{0}")]
    InvalidRequest(String),
    /// 404 `no handler for route`: the path means nothing to this engine.
    #[error("unsupported path")]
    UnsupportedPath,
    /// 405: the path exists, but not for this operation.
    #[error("unsupported operation")]
    UnsupportedOperation,
    /// 403 from the engine itself (e.g. a CAS policy on the mount).
    #[error("permission denied")]
    PermissionDenied,
    /// A refusal that names the binding that failed (a login whose service account is not
    /// bound to the role). The caller sees the detail only where the mount allows it.
    #[error("{0}")]
    Denied(Denial),
    /// 502: an upstream system (a database) failed; the message says which and how.
    #[error("{0}")]
    Upstream(String),
    /// 500 whose message the caller sees: an operation the engine drives failed and OpenBao
    /// answers it as an internal error with its reason (a statement PostgreSQL refused, a
    /// connection that was refused). The message must name the target, never a secret.
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Storage(#[from] StorageViewError),
    /// 500: an unexpected failure inside the engine; logged, not shown in full to the caller.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type EngineResult<T> = Result<T, EngineError>;

/// Why a login or request was refused, in two levels of detail. `summary` is the short,
/// Vault-worded reason every caller may see (`service account namespace not authorized`);
/// `detail` names the binding and the offending (non-secret) value, for callers of mounts
/// with `verbose_denials` on and for the server log. Neither may hold a token, a JWT, a
/// secret id or any other credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// 400 or 403, as Vault answers the same refusal.
    pub status: u16,
    pub summary: String,
    pub detail: String,
}

impl Denial {
    pub fn forbidden(summary: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            status: 403,
            summary: summary.into(),
            detail: detail.into(),
        }
    }

    pub fn bad_request(summary: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            status: 400,
            summary: summary.into(),
            detail: detail.into(),
        }
    }

    /// The message for a caller: with the detail when `verbose`, the summary alone otherwise.
    pub fn message(&self, verbose: bool) -> String {
        if verbose && !self.detail.is_empty() {
            format!("{}: {}", self.summary, self.detail)
        } else {
            self.summary.clone()
        }
    }
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message(true))
    }
}

impl From<Denial> for EngineError {
    fn from(denial: Denial) -> Self {
        EngineError::Denied(denial)
    }
}

/// A secrets engine mounted at some path.
#[async_trait]
pub trait SecretEngine: Send + Sync + std::fmt::Debug {
    /// Handles one request. `Ok(None)` is answered with 204.
    async fn handle(
        &self,
        request: &Request,
        storage: &dyn Storage,
    ) -> EngineResult<Option<Response>>;

    /// Whether this engine's reads, lists and scans change nothing: no storage write, no
    /// effect outside. Then the audit hook may hold such a request's line and write it with
    /// the response line, in one write, still before any answer leaves (a device that cannot
    /// write refuses the answer as before). `false` unless the engine knows it: a read that
    /// creates something (database credentials) must be recorded before it happens.
    fn pure_reads(&self) -> bool {
        false
    }

    /// Whether the target of a write exists, so the router can tell `create` from `update`.
    /// `None` (the default) means the engine makes no such distinction: writes are `update`.
    async fn exists(&self, request: &Request, storage: &dyn Storage) -> EngineResult<Option<bool>> {
        let _ = (request, storage);
        Ok(None)
    }

    /// Called once when the engine is mounted (and on every unseal), with its own storage.
    async fn initialize(&self, storage: &dyn Storage) -> EngineResult<()> {
        let _ = storage;
        Ok(())
    }

    /// Renews a managed lease this engine issued (`sys/leases/renew`). The core has already
    /// checked that the lease exists, is renewable, and capped the TTL; the engine extends
    /// whatever it created (e.g. a database role's validity). The default refuses with 400
    /// `lease is not renewable`.
    async fn renew_lease(
        &self,
        lease: &Lease,
        storage: &dyn Storage,
    ) -> EngineResult<LeaseRenewal> {
        let _ = (lease, storage);
        Err(EngineError::InvalidRequest(
            "lease is not renewable".to_owned(),
        ))
    }

    /// The TTL a renewal without an `increment` asks for, as the engine's backend decides it in
    /// Vault (the database engine: the role's *current* `default_ttl`). `Some(0)` means the
    /// mount's default; `None` (the default) keeps the TTL the lease was last granted.
    async fn renewal_default_ttl(
        &self,
        lease: &Lease,
        storage: &dyn Storage,
    ) -> EngineResult<Option<Duration>> {
        let _ = (lease, storage);
        Ok(None)
    }

    /// Revokes a managed lease this engine issued: on expiry, on `sys/leases/revoke*`, when its
    /// token is revoked, or when the mount is disabled. A target that is already gone (a user
    /// dropped by hand) must be reported as `Ok`: it counts as revoked. An error makes the core
    /// retry later with backoff; the message is logged and shown on lookup, so it must not hold
    /// secret values. The default does nothing.
    async fn revoke_lease(&self, lease: &Lease, storage: &dyn Storage) -> EngineResult<()> {
        let _ = (lease, storage);
        Ok(())
    }

    /// Called when a tune changes the mount's options (KV's v1 → v2 upgrade). The engine
    /// instance is rebuilt from the new options afterwards.
    async fn options_changed(
        &self,
        old: &BTreeMap<String, String>,
        new: &BTreeMap<String, String>,
        storage: &dyn Storage,
    ) -> EngineResult<()> {
        let _ = (old, new, storage);
        Ok(())
    }

    /// Called right after the engine is built and initialised (on mount, on unseal, and when
    /// a tune rebuilds it), with a weak handle on its storage view. An engine that needs timely
    /// background work (rolling back what a crash left half done, rotating passwords on a
    /// schedule of seconds) spawns its own task here. The task must hold only weak references
    /// (to the view and to the engine's own state) across its waits, and end when either is
    /// gone: the core drops both when the mount is disabled, rebuilt or the server seals.
    fn start_background(&self, storage: Weak<dyn Storage>) {
        let _ = storage;
    }

    /// Called by the core about once a minute while unsealed, for background work such as
    /// transit's automatic key rotation. Errors are logged by the caller.
    async fn periodic(&self, storage: &dyn Storage) -> EngineResult<()> {
        let _ = storage;
        Ok(())
    }
}

/// Builds engine instances of one type from a mount's settings.
pub trait EngineFactory: Send + Sync + std::fmt::Debug {
    /// The mount types this factory builds (`["kv", "kv-v2"]`).
    fn types(&self) -> &[&'static str];
    /// Builds the engine for a mount; `InvalidRequest` for bad options.
    fn build(&self, mount: &MountInfo) -> EngineResult<Arc<dyn SecretEngine>>;
    /// Options the mount table should store for a fresh mount of `engine_type` (e.g. `kv-v2`
    /// stores `version = "2"`).
    fn default_options(&self, engine_type: &str) -> BTreeMap<String, String> {
        let _ = engine_type;
        BTreeMap::new()
    }
}
