//! The database secrets engine (mount type `database`), PostgreSQL only
//! (`postgresql-database-plugin` semantics). See `docs/database.md`.
//!
//! # Layout
//! - `config`: connection configs (`config/:name`, `reset/:name`) and their validation.
//! - `pool`: one connection pool per config over `tokio-postgres`, with failure messages that
//!   name the connection and never the password.
//! - `roles`: dynamic roles (`roles/:name`).
//! - `creds`: `creds/:role` (issue), lease renewal and revocation, the default drop.
//! - `static_roles`: `static-roles/:name`, `static-creds/:name`, `rotate-role/:name`, and
//!   crash-safe rotation (pending password persisted first).
//! - `schedule`: cron expressions for `rotation_schedule`.
//! - `rotate_root`: `rotate-root/:name`, crash-safe like static rotation.
//! - `statements`: splitting, `{{…}}` substitution and SQL quoting.
//! - `username`: `username_template` (a Go-template subset with Vault's functions).
//! - `password`: password generation (Vault's default policy, or a named password policy
//!   asked of the core).
//! - `rollback`: records written before `CREATE ROLE`, and the sweep that undoes orphans.
//!
//! Storage (the mount's view): `config/<name>`, `role/<name>`, `static-role/<name>`,
//! `rollback/<id>`.
//!
//! Concurrency: no engine-wide lock. Configs are cached with their pools (rebuilt when the
//! config is written, reset or its root password rotated); static roles and configs are
//! locked one name at a time for rotations. A background task (started by the core through
//! `start_background`) sweeps rollback records right after unseal and every 30 s, finishes
//! interrupted root rotations, and rotates static roles when they are due.

mod config;
mod creds;
mod password;
mod pool;
mod roles;
mod rollback;
mod rotate_root;
mod schedule;
mod statements;
mod static_roles;
mod username;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tresor_sdk::engine::{
    EngineError, EngineFactory, EngineResult, Lease, LeaseRenewal, MountInfo, Operation, Request,
    Response, SecretEngine,
};
use tresor_sdk::locks::KeyLocks;
use tresor_sdk::storage::Storage;

use crate::clock::{Clock, SystemClock};
use config::Connection;

/// How often the rollback sweep runs after its first round.
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);
/// The first sweep's delay after start: long enough for unseal to finish.
const FIRST_SWEEP_DELAY: Duration = Duration::from_millis(200);
/// When a background rotation fails, the next attempt.
const ROTATION_RETRY_SECS: i64 = 10;

/// Builds database engines.
#[derive(Debug, Clone)]
pub struct DatabaseFactory {
    clock: Arc<dyn Clock>,
}

impl Default for DatabaseFactory {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
        }
    }
}

impl EngineFactory for DatabaseFactory {
    fn types(&self) -> &[&'static str] {
        &["database"]
    }

    fn build(&self, mount: &MountInfo) -> EngineResult<Arc<dyn SecretEngine>> {
        Ok(Arc::new(Database {
            inner: Arc::new(Inner {
                clock: self.clock.clone(),
                passwords: mount.passwords.clone(),
                connections: RwLock::new(HashMap::new()),
                generation: AtomicU64::new(0),
                config_locks: KeyLocks::default(),
                role_locks: KeyLocks::default(),
                due: Mutex::new(HashMap::new()),
                wake: Arc::new(Notify::new()),
            }),
        }))
    }
}

/// One mounted database engine.
#[derive(Debug)]
pub struct Database {
    inner: Arc<Inner>,
}

/// The engine's state, shared with its background task (which holds it weakly).
#[derive(Debug)]
pub(crate) struct Inner {
    clock: Arc<dyn Clock>,
    /// The server's named password policies (from the mount info at build time).
    passwords: Option<Arc<dyn tresor_sdk::password::PasswordPolicies>>,
    /// Checked configs with their pools, by config name.
    connections: RwLock<HashMap<String, Arc<Connection>>>,
    /// Bumped by every invalidation, so a config read before a write is not cached after it.
    generation: AtomicU64,
    config_locks: KeyLocks,
    role_locks: KeyLocks,
    /// Static roles by name → when their next rotation is due (Unix seconds).
    due: Mutex<HashMap<String, i64>>,
    wake: Arc<Notify>,
}

impl Inner {
    /// A password from the named policy (`""`: Vault's default policy).
    pub(crate) async fn password(
        &self,
        policy: &str,
    ) -> EngineResult<tresor_sdk::secret::SecretString> {
        password::generate(self.passwords.as_deref(), policy).await
    }

    /// The config `name` with its pool, from the cache or storage. A missing config is the
    /// OpenBao 500 `failed to find entry for connection with name`.
    pub(crate) async fn connection(
        &self,
        storage: &dyn Storage,
        name: &str,
    ) -> EngineResult<Arc<Connection>> {
        if let Some(c) = self
            .connections
            .read()
            .ok()
            .and_then(|m| m.get(name).cloned())
        {
            return Ok(c);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let stored = config::load(storage, name)
            .await?
            .ok_or_else(|| config::not_found(name))?;
        let connection = Arc::new(Connection::build(stored).map_err(|e| {
            EngineError::Failed(format!("invalid connection config {name:?}: {e}"))
        })?);
        if let Ok(mut map) = self.connections.write()
            && self.generation.load(Ordering::SeqCst) == generation
        {
            map.insert(name.to_owned(), connection.clone());
        }
        Ok(connection)
    }

    /// Drops the cached config and pool (its idle connections close); loans finish normally.
    pub(crate) fn forget_connection(&self, name: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut map) = self.connections.write()
            && let Some(old) = map.remove(name)
        {
            old.pool.close_idle();
        }
    }

    pub(crate) fn reschedule(&self, name: &str, role: &static_roles::StaticRole) {
        let now = self.clock.now() / 1_000_000_000;
        let due = if role.pending.is_some() {
            Some(now)
        } else {
            role.next_rotation(now)
        };
        if let Ok(mut map) = self.due.lock() {
            match due {
                Some(d) => {
                    map.insert(name.to_owned(), d);
                }
                None => {
                    map.remove(name);
                }
            }
        }
        self.wake.notify_one();
    }

    pub(crate) fn unschedule(&self, name: &str) {
        if let Ok(mut map) = self.due.lock() {
            map.remove(name);
        }
    }

    fn retry_later(&self, name: &str) {
        let at = self.clock.now() / 1_000_000_000 + ROTATION_RETRY_SECS;
        if let Ok(mut map) = self.due.lock()
            && let Some(d) = map.get_mut(name)
        {
            *d = at;
        }
    }

    /// Loads every static role's due time, and finishes interrupted root rotations.
    async fn start(&self, storage: &dyn Storage) {
        match storage.list(config::PREFIX).await {
            Ok(names) => {
                for name in names.iter().filter(|n| !n.ends_with('/')) {
                    if let Err(err) = rotate_root::finish_pending(self, storage, name).await {
                        tracing::warn!(config = %name, error = %err, "could not finish an interrupted root rotation");
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "database engine: cannot list configs"),
        }
        match storage.list(static_roles::PREFIX).await {
            Ok(names) => {
                for name in names.iter().filter(|n| !n.ends_with('/')) {
                    match static_roles::load(storage, name).await {
                        Ok(Some(role)) => self.reschedule(name, &role),
                        Ok(None) => {}
                        Err(err) => {
                            tracing::warn!(role = %name, error = %err, "cannot load static role")
                        }
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "database engine: cannot list static roles"),
        }
    }

    /// Rotates every static role that is due; returns when the next one is (Unix seconds).
    async fn rotate_due(&self, storage: &dyn Storage) -> Option<i64> {
        let now = self.clock.now() / 1_000_000_000;
        let due: Vec<String> = self
            .due
            .lock()
            .map(|m| {
                m.iter()
                    .filter(|(_, d)| **d <= now)
                    .map(|(n, _)| n.clone())
                    .collect()
            })
            .unwrap_or_default();
        for name in due {
            match static_roles::rotate(self, storage, &name).await {
                Ok(_) => tracing::debug!(role = %name, "static role rotated"),
                Err(err) => {
                    tracing::warn!(role = %name, error = %err, "static role rotation failed; will retry");
                    self.retry_later(&name);
                }
            }
        }
        self.due.lock().ok().and_then(|m| m.values().min().copied())
    }
}

/// The background task: holds the engine's state and its storage only weakly across waits,
/// and ends when either is gone (mount disabled or rebuilt, server sealed).
async fn background(inner: Weak<Inner>, storage: Weak<dyn Storage>, wake: Arc<Notify>) {
    tokio::time::sleep(FIRST_SWEEP_DELAY).await;
    {
        let (Some(inner), Some(storage)) = (inner.upgrade(), storage.upgrade()) else {
            return;
        };
        inner.start(storage.as_ref()).await;
    }
    let mut next_sweep = tokio::time::Instant::now();
    loop {
        let wait = {
            let (Some(inner), Some(storage)) = (inner.upgrade(), storage.upgrade()) else {
                return;
            };
            if tokio::time::Instant::now() >= next_sweep {
                rollback::sweep(&inner, storage.as_ref()).await;
                next_sweep = tokio::time::Instant::now() + SWEEP_INTERVAL;
            }
            let next_rotation = inner.rotate_due(storage.as_ref()).await;
            let until_sweep = next_sweep.saturating_duration_since(tokio::time::Instant::now());
            match next_rotation {
                Some(at) => {
                    let now = inner.clock.now() / 1_000_000_000;
                    let secs = u64::try_from(at.saturating_sub(now)).unwrap_or(0);
                    until_sweep.min(Duration::from_secs(secs))
                }
                None => until_sweep,
            }
        };
        // A due time in the past (a failed rotation keeps its slot until retry_later moved it)
        // still waits a little, so a broken role cannot spin.
        let wait = wait.max(Duration::from_millis(100));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = wake.notified() => {}
        }
    }
}

/// Tests of crash safety (debug builds only): with `TRESOR_FAILPOINT_DATABASE_CRASH_AFTER_<point>`
/// set, the process aborts right after PostgreSQL accepted a change and before Tresor recorded
/// its outcome: `CREATE` (a role committed, its lease not yet written), `ROTATE` (a static
/// role's `ALTER ROLE` applied, the new password still pending), `ROTATE_ROOT` (likewise for
/// the admin). Release builds contain none of this.
pub(crate) fn crash_failpoint(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os(format!("TRESOR_FAILPOINT_DATABASE_CRASH_AFTER_{point}")).is_some() {
        tracing::error!(point, "failpoint: aborting before the outcome is recorded");
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

/// Vault's `GenericNameRegex`; anything else is not a path this engine serves (404).
fn name_or_404(name: &str) -> EngineResult<&str> {
    if crate::secrets::transit::valid_name(name) {
        Ok(name)
    } else {
        Err(EngineError::UnsupportedPath)
    }
}

/// A LIST answer of the keys under `prefix`; none is a 404, as in Vault.
pub(crate) async fn list_keys(
    storage: &dyn Storage,
    prefix: &str,
) -> EngineResult<Option<Response>> {
    let keys: Vec<String> = storage
        .list(prefix)
        .await?
        .into_iter()
        .filter(|k| !k.ends_with('/'))
        .collect();
    if keys.is_empty() {
        return Err(EngineError::NotFound);
    }
    Ok(Some(Response::list(keys)))
}

fn write_only(op: Operation) -> EngineResult<()> {
    if config::is_write(op) {
        Ok(())
    } else {
        Err(EngineError::UnsupportedOperation)
    }
}

#[async_trait]
impl SecretEngine for Database {
    async fn handle(
        &self,
        request: &Request,
        storage: &dyn Storage,
    ) -> EngineResult<Option<Response>> {
        let inner = self.inner.as_ref();
        let op = request.operation;
        let segments: Vec<&str> = request.path.split('/').collect();
        match segments.as_slice() {
            ["config" | "roles" | "static-roles"] | ["config" | "roles" | "static-roles", ""]
                if op == Operation::List =>
            {
                match segments.first() {
                    Some(&"config") => config::list(storage).await,
                    Some(&"roles") => roles::list(storage).await,
                    _ => static_roles::list(storage).await,
                }
            }
            ["config", name] => {
                let name = name_or_404(name)?;
                match op {
                    Operation::Read => config::read(storage, name).await,
                    Operation::Create | Operation::Update => {
                        config::write(inner, request, storage, name).await
                    }
                    Operation::Delete => config::delete(inner, storage, name).await,
                    _ => Err(EngineError::UnsupportedOperation),
                }
            }
            ["reset", name] => {
                let name = name_or_404(name)?;
                write_only(op)?;
                config::reset(inner, storage, name).await
            }
            ["rotate-root", name] => {
                let name = name_or_404(name)?;
                write_only(op)?;
                rotate_root::rotate(inner, storage, name).await
            }
            ["roles", name] => {
                let name = name_or_404(name)?;
                match op {
                    Operation::Read => roles::read(storage, name).await,
                    Operation::Create | Operation::Update => {
                        roles::write(request, storage, name).await
                    }
                    Operation::Delete => roles::delete(storage, name).await,
                    _ => Err(EngineError::UnsupportedOperation),
                }
            }
            ["creds", name] => {
                let name = name_or_404(name)?;
                if op != Operation::Read {
                    return Err(EngineError::UnsupportedOperation);
                }
                creds::issue(inner, request, storage, name).await
            }
            ["static-roles", name] => {
                let name = name_or_404(name)?;
                match op {
                    Operation::Read => static_roles::read(storage, name).await,
                    Operation::Create | Operation::Update => {
                        static_roles::write(inner, request, storage, name).await
                    }
                    Operation::Delete => static_roles::delete(inner, storage, name).await,
                    _ => Err(EngineError::UnsupportedOperation),
                }
            }
            ["static-creds", name] => {
                let name = name_or_404(name)?;
                if op != Operation::Read {
                    return Err(EngineError::UnsupportedOperation);
                }
                static_roles::creds(inner, storage, name).await
            }
            ["rotate-role", name] => {
                let name = name_or_404(name)?;
                write_only(op)?;
                static_roles::rotate_now(inner, storage, name).await
            }
            _ => Err(EngineError::UnsupportedPath),
        }
    }

    async fn exists(&self, request: &Request, storage: &dyn Storage) -> EngineResult<Option<bool>> {
        let segments: Vec<&str> = request.path.split('/').collect();
        match segments.as_slice() {
            ["config", name] if crate::secrets::transit::valid_name(name) => {
                config::exists(storage, name).await.map(Some)
            }
            ["roles", name] if crate::secrets::transit::valid_name(name) => {
                roles::exists(storage, name).await.map(Some)
            }
            ["static-roles", name] if crate::secrets::transit::valid_name(name) => {
                static_roles::exists(storage, name).await.map(Some)
            }
            _ => Ok(None),
        }
    }

    async fn renew_lease(
        &self,
        lease: &Lease,
        storage: &dyn Storage,
    ) -> EngineResult<LeaseRenewal> {
        creds::renew(&self.inner, lease, storage).await
    }

    async fn renewal_default_ttl(
        &self,
        lease: &Lease,
        storage: &dyn Storage,
    ) -> EngineResult<Option<Duration>> {
        creds::renewal_default_ttl(lease, storage).await
    }

    async fn revoke_lease(&self, lease: &Lease, storage: &dyn Storage) -> EngineResult<()> {
        creds::revoke(&self.inner, lease, storage).await
    }

    fn start_background(&self, storage: Weak<dyn Storage>) {
        let inner = Arc::downgrade(&self.inner);
        let wake = self.inner.wake.clone();
        tokio::spawn(background(inner, storage, wake));
    }
}

/// Serde for secrets inside stored records (under the barrier): plain strings in JSON.
pub(crate) mod secret_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use tresor_sdk::secret::SecretString;

    pub(crate) fn serialize<S: Serializer>(value: &SecretString, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(value.expose())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
        SecretString::deserialize(d)
    }

    pub(crate) mod option {
        use serde::{Deserialize, Deserializer, Serializer};
        use tresor_sdk::secret::SecretString;

        pub(crate) fn serialize<S: Serializer>(
            value: &Option<SecretString>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match value {
                Some(v) => s.serialize_some(v.expose()),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<SecretString>, D::Error> {
            Option::<SecretString>::deserialize(d)
        }
    }
}
