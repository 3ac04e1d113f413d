//! The persisted mount and auth tables and every change to them.
//!
//! Each table is one record under the barrier (`core/mounts`, `core/auth`). A change writes the
//! whole table in one storage write, then swaps the routing snapshot: readers never see a
//! half-applied change, and a crash leaves either the old or the new table.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::Mutex;
use tresor_sdk::auth::AuthMethodFactory;
use tresor_sdk::engine::{EngineFactory, MountInfo};

use super::entry::{MountConfig, MountEntry, MountKind, normalise_mount_path};
use super::router::{Mounted, RouteTable};
use crate::barrier::{Barrier, BarrierOp, BarrierView};
use crate::error::{CoreError, CoreResult};
use crate::password_policy::PasswordPolicyStore;
use crate::random;

/// Vault's system-wide default and maximum lease TTL: 768h.
pub const SYSTEM_DEFAULT_TTL: Duration = Duration::from_secs(768 * 3600);

/// Paths no secrets engine may be mounted at or under.
const RESERVED_SECRET_PREFIXES: [&str; 4] = ["sys/", "auth/", "cubbyhole/", "identity/"];

/// The secrets engine and auth method types the core can build, by mount type.
#[derive(Debug, Default)]
pub struct EngineRegistry {
    factories: HashMap<&'static str, Arc<dyn EngineFactory>>,
    auth: HashMap<&'static str, Arc<dyn AuthMethodFactory>>,
}

impl EngineRegistry {
    pub fn new(
        factories: Vec<Arc<dyn EngineFactory>>,
        auth_methods: Vec<Arc<dyn AuthMethodFactory>>,
    ) -> Self {
        let mut map = HashMap::new();
        for f in factories {
            for t in f.types() {
                map.insert(*t, f.clone());
            }
        }
        let mut auth = HashMap::new();
        for f in auth_methods {
            for t in f.types() {
                auth.insert(*t, f.clone());
            }
        }
        Self {
            factories: map,
            auth,
        }
    }

    pub fn factory(&self, engine_type: &str) -> Option<&Arc<dyn EngineFactory>> {
        self.factories.get(engine_type)
    }

    pub fn auth_factory(&self, method_type: &str) -> Option<&Arc<dyn AuthMethodFactory>> {
        self.auth.get(method_type)
    }
}

/// What `sys/mounts/:path` (POST) asks for, already decoded.
#[derive(Debug, Clone, Default)]
pub struct EnableRequest {
    pub engine_type: String,
    pub description: String,
    pub config: MountConfig,
    /// `None` when the caller sent `options: null` (shown back as `null`, as OpenBao does).
    pub options: Option<BTreeMap<String, String>>,
    pub local: bool,
    pub seal_wrap: bool,
}

/// What `sys/mounts/:path/tune` (POST) asks to change; `None` leaves a setting alone.
#[derive(Debug, Clone, Default)]
pub struct TuneRequest {
    pub default_lease_ttl: Option<u64>,
    pub max_lease_ttl: Option<u64>,
    pub description: Option<String>,
    pub options: Option<BTreeMap<String, String>>,
    pub listing_visibility: Option<String>,
    /// Auth mounts only (the HTTP layer refuses it elsewhere).
    pub token_type: Option<String>,
}

#[derive(Debug)]
pub struct MountTables {
    barrier: Arc<Barrier>,
    registry: Arc<EngineRegistry>,
    secrets: RwLock<Arc<RouteTable>>,
    auth: RwLock<Arc<RouteTable>>,
    /// Serialises changes; routing never takes it.
    changes: Mutex<()>,
    /// Finished remounts by migration id (source, target), for `sys/remount/status/:id`.
    migrations: std::sync::Mutex<HashMap<String, (String, String)>>,
}

fn builtin_entry(path: &str, engine_type: &str, description: &str, kind: MountKind) -> MountEntry {
    MountEntry {
        path: path.to_owned(),
        engine_type: engine_type.to_owned(),
        description: description.to_owned(),
        uuid: random::uuid(),
        accessor: accessor_for(engine_type, kind),
        config: MountConfig::default(),
        options: None,
        local: engine_type == "cubbyhole",
        seal_wrap: engine_type == "system",
    }
}

fn accessor_for(engine_type: &str, kind: MountKind) -> String {
    let suffix = hex::encode(random::bytes(4));
    match kind {
        MountKind::Secret => format!("{engine_type}_{suffix}"),
        MountKind::Auth => format!("auth_{engine_type}_{suffix}"),
    }
}

impl MountTables {
    /// Loads both tables at unseal, creating the built-in mounts on first use.
    pub async fn load(barrier: Arc<Barrier>, registry: Arc<EngineRegistry>) -> CoreResult<Self> {
        let tables = Self {
            barrier,
            registry,
            secrets: RwLock::new(Arc::new(RouteTable::default())),
            auth: RwLock::new(Arc::new(RouteTable::default())),
            changes: Mutex::new(()),
            migrations: std::sync::Mutex::new(HashMap::new()),
        };
        for kind in [MountKind::Secret, MountKind::Auth] {
            let entries = match tables.barrier.get(kind.table_path()).await? {
                Some(raw) => {
                    let mut entries = serde_json::from_slice::<Vec<MountEntry>>(raw.expose())?;
                    // Stores created before the identity store existed gain its mount.
                    if kind == MountKind::Secret
                        && !entries.iter().any(|e| e.engine_type == "identity")
                    {
                        entries.push(builtin_entry(
                            "identity/",
                            "identity",
                            "identity store",
                            kind,
                        ));
                        tables.persist(kind, &entries).await?;
                    }
                    entries
                }
                None => {
                    let defaults = match kind {
                        MountKind::Secret => {
                            let mut defaults = vec![builtin_entry(
                                "sys/",
                                "system",
                                "system endpoints used for control, policy and debugging",
                                kind,
                            )];
                            defaults.push(builtin_entry(
                                "identity/",
                                "identity",
                                "identity store",
                                kind,
                            ));
                            // A build without the cubbyhole engine (some unit tests) simply has no
                            // cubbyhole mount.
                            if tables.registry.factory("cubbyhole").is_some() {
                                defaults.push(builtin_entry(
                                    "cubbyhole/",
                                    "cubbyhole",
                                    "per-token private secret storage",
                                    kind,
                                ));
                            }
                            defaults
                        }
                        MountKind::Auth => {
                            vec![builtin_entry(
                                "token/",
                                "token",
                                "token based credentials",
                                kind,
                            )]
                        }
                    };
                    tables.persist(kind, &defaults).await?;
                    defaults
                }
            };
            let mut mounted = Vec::with_capacity(entries.len());
            for entry in entries {
                mounted.push(tables.instantiate(entry, kind).await?);
            }
            tables.swap(kind, RouteTable::new(mounted));
        }
        Ok(tables)
    }

    async fn persist(&self, kind: MountKind, entries: &[MountEntry]) -> CoreResult<()> {
        self.barrier
            .put(kind.table_path(), &serde_json::to_vec(entries)?)
            .await?;
        Ok(())
    }

    fn swap(&self, kind: MountKind, table: RouteTable) {
        let slot = match kind {
            MountKind::Secret => &self.secrets,
            MountKind::Auth => &self.auth,
        };
        if let Ok(mut s) = slot.write() {
            *s = Arc::new(table);
        }
    }

    pub fn table(&self, kind: MountKind) -> Arc<RouteTable> {
        let slot = match kind {
            MountKind::Secret => &self.secrets,
            MountKind::Auth => &self.auth,
        };
        slot.read().map(|t| t.clone()).unwrap_or_default()
    }

    fn mount_info(&self, entry: &MountEntry) -> MountInfo {
        let ttl = |secs: u64| {
            if secs == 0 {
                SYSTEM_DEFAULT_TTL
            } else {
                Duration::from_secs(secs)
            }
        };
        MountInfo {
            path: entry.path.clone(),
            engine_type: entry.engine_type.clone(),
            options: entry.options.clone().unwrap_or_default(),
            default_lease_ttl: ttl(entry.config.default_lease_ttl),
            max_lease_ttl: ttl(entry.config.max_lease_ttl),
            accessor: entry.accessor.clone(),
            passwords: Some(Arc::new(PasswordPolicyStore::new(self.barrier.clone()))),
        }
    }

    /// Builds the engine and view for an entry. Types the core serves itself get no engine.
    async fn instantiate(&self, entry: MountEntry, kind: MountKind) -> CoreResult<Arc<Mounted>> {
        let info = Arc::new(self.mount_info(&entry));
        let view = Arc::new(BarrierView::new(
            self.barrier.clone(),
            entry.storage_prefix(kind),
        ));
        let mut method = None;
        let engine = match (kind, entry.engine_type.as_str()) {
            (MountKind::Secret, "system" | "identity") | (MountKind::Auth, "token") => None,
            (MountKind::Secret, t) => {
                let factory = self.registry.factory(t).ok_or_else(|| {
                    CoreError::Internal(format!(
                        "mount {} has type {t:?}, which this build lacks",
                        entry.path
                    ))
                })?;
                let engine = factory.build(&info).map_err(engine_setup_error)?;
                engine
                    .initialize(view.as_ref())
                    .await
                    .map_err(engine_setup_error)?;
                // Weak: the engine's background work ends with the mount (disable, rebuild, seal).
                let weak_view: std::sync::Weak<BarrierView> = Arc::downgrade(&view);
                engine.start_background(weak_view);
                Some(engine)
            }
            (MountKind::Auth, t) => {
                let factory = self.registry.auth_factory(t).ok_or_else(|| {
                    CoreError::Internal(format!(
                        "auth mount {} has type {t:?}, which this build lacks",
                        entry.path
                    ))
                })?;
                let built = factory.build(&info).map_err(engine_setup_error)?;
                built
                    .initialize(view.as_ref())
                    .await
                    .map_err(engine_setup_error)?;
                method = Some(built);
                None
            }
        };
        Ok(Arc::new(Mounted {
            entry,
            kind,
            engine,
            method,
            view,
            info,
        }))
    }

    fn entries(&self, kind: MountKind) -> Vec<MountEntry> {
        let mut entries: Vec<MountEntry> =
            self.table(kind).all().map(|m| m.entry.clone()).collect();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        entries
    }

    /// `sys/mounts/:path` or `sys/auth/:path` POST.
    pub async fn enable(
        &self,
        kind: MountKind,
        path: &str,
        request: EnableRequest,
    ) -> CoreResult<()> {
        let _guard = self.changes.lock().await;
        let path = normalise_mount_path(path).map_err(CoreError::InvalidRequest)?;
        if kind == MountKind::Auth && request.engine_type == "token" {
            return Err(CoreError::InvalidRequest(
                "token credential backend cannot be instantiated".to_owned(),
            ));
        }
        if request.engine_type.is_empty() {
            return Err(CoreError::InvalidRequest(
                "backend type must be specified as a string".to_owned(),
            ));
        }
        if kind == MountKind::Secret && RESERVED_SECRET_PREFIXES.iter().any(|r| path.starts_with(r))
        {
            return Err(CoreError::InvalidRequest(format!("cannot mount {path:?}")));
        }
        let mut entries = self.entries(kind);
        if let Some(clash) = entries
            .iter()
            .find(|e| path.starts_with(&e.path) || e.path.starts_with(&path))
        {
            return Err(CoreError::InvalidRequest(format!(
                "path is already in use at {}",
                clash.path
            )));
        }
        let (engine_type, mut options) = match request.engine_type.as_str() {
            "kv-v2" => (
                "kv".to_owned(),
                Some(BTreeMap::from([("version".to_owned(), "2".to_owned())])),
            ),
            other => (other.to_owned(), None),
        };
        if matches!(
            engine_type.as_str(),
            "cubbyhole" | "system" | "token" | "identity"
        ) {
            return Err(CoreError::InvalidRequest(format!(
                "mount type of {engine_type:?} is not mountable"
            )));
        }
        let known = match kind {
            MountKind::Secret => self.registry.factory(&engine_type).is_some(),
            MountKind::Auth => self.registry.auth_factory(&engine_type).is_some(),
        };
        if !known {
            return Err(CoreError::InvalidRequest(format!(
                "plugin not found in the catalog: {}",
                request.engine_type
            )));
        }
        if let Some(given) = request.options {
            options.get_or_insert_with(BTreeMap::new).extend(given);
        }
        check_ttls(
            request.config.default_lease_ttl,
            request.config.max_lease_ttl,
        )?;
        let entry = MountEntry {
            path,
            engine_type: engine_type.clone(),
            description: request.description,
            uuid: random::uuid(),
            accessor: accessor_for(&engine_type, kind),
            config: request.config,
            options,
            local: request.local,
            seal_wrap: request.seal_wrap,
        };
        let mounted = self.instantiate(entry.clone(), kind).await?;
        entries.push(entry);
        self.persist(kind, &entries).await?;
        let mut all: Vec<Arc<Mounted>> = self.table(kind).all().cloned().collect();
        all.push(mounted);
        self.swap(kind, RouteTable::new(all));
        Ok(())
    }

    /// Replaces the mount at `old_path` with `entry` (tuned, or moved to `entry.path`): builds
    /// its engine, persists the table, then swaps the routing snapshot.
    async fn replace_entry(
        &self,
        kind: MountKind,
        table: &RouteTable,
        old_path: &str,
        entry: MountEntry,
    ) -> CoreResult<()> {
        let mounted = self.instantiate(entry.clone(), kind).await?;
        let entries: Vec<MountEntry> = self
            .entries(kind)
            .into_iter()
            .map(|e| if e.path == old_path { entry.clone() } else { e })
            .collect();
        self.persist(kind, &entries).await?;
        let routes = table
            .all()
            .filter(|m| m.entry.path != old_path)
            .cloned()
            .chain([mounted]);
        self.swap(kind, RouteTable::new(routes));
        Ok(())
    }

    /// `sys/mounts/:path` DELETE: removes the mount and every value it stored. Disabling a
    /// path where nothing is mounted succeeds, as in Vault.
    pub async fn disable(&self, kind: MountKind, path: &str) -> CoreResult<Option<MountEntry>> {
        let _guard = self.changes.lock().await;
        let path = normalise_mount_path(path).map_err(CoreError::InvalidRequest)?;
        let protected = match kind {
            MountKind::Secret => {
                ["sys/", "cubbyhole/", "identity/"].contains(&path.as_str())
                    || path.starts_with("auth/")
            }
            MountKind::Auth => path == "token/",
        };
        if protected {
            return Err(CoreError::InvalidRequest(match kind {
                MountKind::Auth => "token credential backend cannot be disabled".to_owned(),
                MountKind::Secret => format!("cannot unmount {path:?}"),
            }));
        }
        let table = self.table(kind);
        let Some(gone) = table.get(&path).cloned() else {
            return Ok(None);
        };
        let remaining: Vec<MountEntry> = self
            .entries(kind)
            .into_iter()
            .filter(|e| e.path != path)
            .collect();
        // Unroute first, then forget the data: a request racing the disable sees 404, never a
        // half-deleted mount.
        self.persist(kind, &remaining).await?;
        self.swap(
            kind,
            RouteTable::new(table.all().filter(|m| m.entry.path != path).cloned()),
        );
        delete_prefix(&self.barrier, &gone.entry.storage_prefix(kind)).await?;
        Ok(Some(gone.entry.clone()))
    }

    /// `sys/mounts/:path/tune` POST.
    /// Returns warnings for the caller (an in-place KV upgrade announces itself, as in Vault).
    pub async fn tune(
        &self,
        kind: MountKind,
        path: &str,
        request: TuneRequest,
    ) -> CoreResult<Vec<String>> {
        let mut warnings = Vec::new();
        let _guard = self.changes.lock().await;
        let path = normalise_mount_path(path).map_err(CoreError::InvalidRequest)?;
        if kind == MountKind::Secret && ["sys/", "cubbyhole/", "identity/"].contains(&path.as_str())
        {
            let param = if request.default_lease_ttl.is_some() {
                "default_lease_ttl"
            } else if request.max_lease_ttl.is_some() {
                "max_lease_ttl"
            } else if request.options.is_some() {
                "options"
            } else {
                "description"
            };
            return Err(CoreError::InvalidRequest(format!(
                "cannot tune parameter {param} of {path}"
            )));
        }
        let table = self.table(kind);
        let current = table
            .get(&path)
            .cloned()
            .ok_or_else(|| no_mount(kind, &path))?;
        let mut entry = current.entry.clone();
        if let Some(d) = request.default_lease_ttl {
            entry.config.default_lease_ttl = d;
        }
        if let Some(m) = request.max_lease_ttl {
            entry.config.max_lease_ttl = m;
        }
        check_ttls(entry.config.default_lease_ttl, entry.config.max_lease_ttl)?;
        if let Some(d) = request.description {
            entry.description = d;
        }
        if let Some(v) = request.listing_visibility {
            entry.config.listing_visibility = v;
        }
        if let Some(t) = request.token_type {
            entry.config.token_type = t;
        }
        if let Some(new_options) = request.options {
            let old = entry.options.clone().unwrap_or_default();
            let mut merged = old.clone();
            merged.extend(new_options);
            if merged != old {
                let from = old.get("version").map_or("1", String::as_str);
                let to = merged.get("version").map_or("1", String::as_str);
                if entry.engine_type == "kv" && from != to {
                    warnings.push(format!(
                        "Upgrading mount from version {from} to version {to}. This mount will be \
                         unavailable for a brief period and will resume service shortly."
                    ));
                }
                if let Some(engine) = &current.engine {
                    engine
                        .options_changed(&old, &merged, current.view.as_ref())
                        .await
                        .map_err(engine_setup_error)?;
                }
                entry.options = Some(merged);
            }
        }
        self.replace_entry(kind, &table, &path, entry).await?;
        Ok(warnings)
    }

    /// `sys/remount`: moves a secrets mount to a new path. Storage is keyed by the mount's uuid,
    /// so nothing but the table changes.
    /// Returns the migration id.
    pub async fn remount(&self, from: &str, to: &str) -> CoreResult<String> {
        let _guard = self.changes.lock().await;
        let from = normalise_mount_path(from).map_err(CoreError::InvalidRequest)?;
        let to = normalise_mount_path(to).map_err(CoreError::InvalidRequest)?;
        let kind = MountKind::Secret;
        if ["sys/", "cubbyhole/", "identity/"].contains(&from.as_str()) || from.starts_with("auth/")
        {
            return Err(CoreError::InvalidRequest(format!(
                "cannot remount {from:?}"
            )));
        }
        let table = self.table(kind);
        let current = table
            .get(&from)
            .cloned()
            .ok_or_else(|| CoreError::InvalidRequest(format!("no matching mount at {from:?}")))?;
        if ["sys/", "cubbyhole/", "identity/"].contains(&from.as_str()) {
            return Err(CoreError::InvalidRequest(format!(
                "cannot remount {from:?}"
            )));
        }
        if RESERVED_SECRET_PREFIXES.iter().any(|r| to.starts_with(r)) {
            return Err(CoreError::InvalidRequest(format!(
                "cannot remount to destination {to}"
            )));
        }
        // The source itself counts: moving a mount onto itself (or under itself) is refused.
        if let Some(clash) = table
            .all()
            .find(|m| to.starts_with(&m.entry.path) || m.entry.path.starts_with(&to))
        {
            return Err(CoreError::InvalidRequest(format!(
                "path already in use at {:?}",
                clash.entry.path
            )));
        }
        let mut entry = current.entry.clone();
        entry.path = to.clone();
        self.replace_entry(kind, &table, &from, entry).await?;
        let id = random::uuid();
        if let Ok(mut m) = self.migrations.lock() {
            m.insert(id.clone(), (from, to));
        }
        Ok(id)
    }

    /// A finished remount's source and target, by migration id.
    pub fn migration(&self, id: &str) -> Option<(String, String)> {
        self.migrations.lock().ok().and_then(|m| m.get(id).cloned())
    }
}

fn no_mount(kind: MountKind, path: &str) -> CoreError {
    match kind {
        MountKind::Secret => CoreError::InvalidRequest(format!(
            "tune of path {path:?} failed: no mount entry found"
        )),
        MountKind::Auth => CoreError::InvalidRequest(format!(
            "tune of path \"auth/{path}\" failed: no mount entry found"
        )),
    }
}

fn check_ttls(default: u64, max: u64) -> CoreResult<()> {
    let effective_max = if max == 0 {
        SYSTEM_DEFAULT_TTL.as_secs()
    } else {
        max
    };
    if default > effective_max {
        return Err(CoreError::InvalidRequest(format!(
            "backend max lease TTL of {effective_max} would be less than backend default lease TTL of {default}"
        )));
    }
    Ok(())
}

fn engine_setup_error(err: tresor_sdk::engine::EngineError) -> CoreError {
    match err {
        tresor_sdk::engine::EngineError::InvalidRequest(m) => CoreError::InvalidRequest(m),
        other => CoreError::Internal(other.to_string()),
    }
}

/// Deletes every value under `prefix`, in bounded batches so a huge mount does not build one
/// giant transaction.
pub(crate) async fn delete_prefix(barrier: &Barrier, prefix: &str) -> CoreResult<()> {
    const BATCH: usize = 512;
    let mut pending = vec![prefix.to_owned()];
    let mut batch = Vec::new();
    while let Some(dir) = pending.pop() {
        for child in barrier.list(&dir).await? {
            let full = format!("{dir}{child}");
            if full.ends_with('/') {
                pending.push(full);
            } else {
                batch.push(BarrierOp::Delete { path: full });
                if batch.len() >= BATCH {
                    barrier.transaction(std::mem::take(&mut batch)).await?;
                }
            }
        }
    }
    if !batch.is_empty() {
        barrier.transaction(batch).await?;
    }
    Ok(())
}
