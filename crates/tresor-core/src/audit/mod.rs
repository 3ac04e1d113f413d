//! Audit devices: every request that reaches authorisation, and its response, recorded as one
//! JSON line each in Vault's format, with secrets HMAC'd under each device's own salt.
//!
//! # Layout
//! - `options`: a device's `options` map (type-specific target, format flags), Go's wording
//!   for bad values.
//! - `sink`: where lines go (file, stdout, discard, TCP/UDP socket); reopen on `SIGHUP`.
//! - `socket`: a socket device's writer thread (bounded waits, reconnects).
//! - `hash`: the per-device salt (an HMAC-SHA256 key precomputed at load) and hashing of
//!   JSON values.
//! - `entry`: the line format.
//! - `scope`: the per-request record (a task-local) that the core's authorisation and the HTTP
//!   layer's answer write through.
//! - this file: the device table (`core/audit`, salts at `audit/<uuid>/salt`, both below the
//!   barrier), config-declared devices, enable/disable/list/hash, and the core's hooks.
//!
//! Fail closed: when devices are enabled and none records a request line, the request is
//! refused before any handler runs; when none records the response line, the answer is
//! replaced by a 500.

mod entry;
mod hash;
mod options;
mod rendered;
mod scope;
mod sink;
mod socket;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tresor_sdk::engine::Operation;
use tresor_sdk::secret::SecretBytes;

use crate::barrier::{Barrier, BarrierOp};
use crate::core::{Active, Core};
use crate::error::{CoreError, CoreResult};
use crate::mount::MountKind;
use crate::random;
use crate::token::TokenEntry;

pub use entry::{AuthInfo, MountFields, RequestInfo, ResponseInfo};
pub use hash::Salt;
pub use options::{DeviceOptions, Format, Target};
pub use scope::{AuditFailed, Scope, current as current_scope};

/// The device table, below the barrier.
const TABLE_PATH: &str = "core/audit";

/// A device as declared in the config file or sent to `sys/audit/:path`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceSpec {
    /// Without or with the trailing slash; stored with it.
    pub path: String,
    pub device_type: String,
    pub description: String,
    pub options: BTreeMap<String, String>,
    pub local: bool,
}

/// One row of the persisted table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TableEntry {
    pub path: String,
    #[serde(rename = "type")]
    pub device_type: String,
    pub description: String,
    pub options: BTreeMap<String, String>,
    pub local: bool,
    pub uuid: String,
    pub accessor: String,
    /// Declared in the config file: created and removed with it, never by the API.
    #[serde(default)]
    pub from_config: bool,
}

/// An enabled device.
#[derive(Debug)]
pub struct Device {
    pub entry: TableEntry,
    pub options: DeviceOptions,
    pub(crate) salt: Salt,
    sink: sink::Sink,
}

impl Device {
    /// Writes a line; a failure is logged (never with the line) and reported as `false`.
    async fn write(&self, line: Vec<u8>) -> bool {
        self.outcome(self.sink.write(line).await)
    }

    /// Writes a held request line and its response line together (see [`Sink::write_pair`]).
    async fn write_pair(&self, request: Vec<u8>, response: Vec<u8>) -> bool {
        self.outcome(self.sink.write_pair(request, response).await)
    }

    fn outcome(&self, written: std::io::Result<()>) -> bool {
        match written {
            Ok(()) => true,
            Err(err) => {
                crate::metrics::incr(&crate::metrics::global().audit_device_failure);
                tracing::error!(path = %self.entry.path, error = %err, "audit device failed to write");
                false
            }
        }
    }

    pub fn hash(&self, input: &str) -> String {
        self.salt.hash(input)
    }
}

/// The enabled devices. Requests take a snapshot (`Arc` clone); changes are serialised.
#[derive(Debug)]
pub struct AuditBroker {
    barrier: Arc<Barrier>,
    devices: RwLock<Arc<[Arc<Device>]>>,
    changes: tokio::sync::Mutex<()>,
}

fn salt_path(uuid: &str) -> String {
    format!("audit/{uuid}/salt")
}

fn with_slash(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    format!("{trimmed}/")
}

impl AuditBroker {
    /// Loads the table at unseal and reconciles it with the config file: declared devices
    /// missing from the table are added, config devices no longer declared are removed, and
    /// changed declarations replace the stored ones (keeping their salt).
    pub(crate) async fn load(barrier: Arc<Barrier>, declared: &[DeviceSpec]) -> CoreResult<Self> {
        let mut table: Vec<TableEntry> = match barrier.get(TABLE_PATH).await? {
            Some(raw) => serde_json::from_slice(raw.expose())?,
            None => Vec::new(),
        };
        let mut ops = Vec::new();
        let before = table.clone();
        table.retain(|e| {
            let keep = !e.from_config || declared.iter().any(|d| with_slash(&d.path) == e.path);
            if !keep {
                ops.push(BarrierOp::Delete {
                    path: salt_path(&e.uuid),
                });
            }
            keep
        });
        for spec in declared {
            // Validated here too: a bad config device must stop the unseal, not log nothing.
            options::parse(&spec.device_type, &spec.options).map_err(|e| {
                CoreError::InvalidRequest(format!(
                    "audit device {:?} in the config: {e}",
                    spec.path
                ))
            })?;
            let path = with_slash(&spec.path);
            match table.iter_mut().find(|e| e.path == path) {
                Some(existing) => {
                    existing.device_type.clone_from(&spec.device_type);
                    existing.description.clone_from(&spec.description);
                    existing.options.clone_from(&spec.options);
                    existing.local = spec.local;
                    existing.from_config = true;
                }
                None => {
                    let entry = new_entry(spec, true);
                    ops.push(BarrierOp::Put {
                        path: salt_path(&entry.uuid),
                        value: SecretBytes::from(random::bytes(hash::SALT_LEN)),
                    });
                    table.push(entry);
                }
            }
        }
        if table != before {
            ops.push(BarrierOp::Put {
                path: TABLE_PATH.to_owned(),
                value: SecretBytes::from(serde_json::to_vec(&table)?),
            });
        }
        if !ops.is_empty() {
            barrier.transaction(ops).await?;
        }
        let mut devices = Vec::with_capacity(table.len());
        for entry in table {
            let device = open_device(&barrier, entry).await?;
            // A device that cannot open now keeps trying on every write: requests are refused
            // (fail closed) until it can, rather than the unseal failing.
            if let Err(err) = device.sink.reopen() {
                tracing::error!(path = %device.entry.path, error = %err, "audit device cannot open its destination");
            }
            devices.push(Arc::new(device));
        }
        Ok(Self {
            barrier,
            devices: RwLock::new(devices.into()),
            changes: tokio::sync::Mutex::new(()),
        })
    }

    /// The enabled devices, for one request.
    pub fn devices(&self) -> Arc<[Arc<Device>]> {
        self.devices
            .read()
            .map(|d| Arc::clone(&d))
            .unwrap_or_else(|_| Arc::from(Vec::new()))
    }

    pub fn list(&self) -> Vec<TableEntry> {
        self.devices().iter().map(|d| d.entry.clone()).collect()
    }

    /// `sys/audit/:path` (write). Errors are worded as OpenBao's.
    pub async fn enable(&self, spec: &DeviceSpec) -> CoreResult<()> {
        let _guard = self.changes.lock().await;
        let path = with_slash(&spec.path);
        if path == "/" {
            return Err(CoreError::InvalidRequest(
                "backend path must be specified".to_owned(),
            ));
        }
        let current = self.devices();
        if current
            .iter()
            .any(|d| d.entry.path.starts_with(&path) || path.starts_with(&d.entry.path))
        {
            return Err(CoreError::InvalidRequest("path already in use".to_owned()));
        }
        let parsed =
            options::parse(&spec.device_type, &spec.options).map_err(CoreError::InvalidRequest)?;
        let entry = new_entry(spec, false);
        let salt = SecretBytes::from(random::bytes(hash::SALT_LEN));
        let device = Device {
            salt: Salt::new(&salt),
            sink: new_sink(&parsed.target)?,
            options: parsed,
            entry: entry.clone(),
        };
        if spec.options.get("skip_test").map(String::as_str) != Some("true") {
            test_device(&device).await?;
        }
        let mut table: Vec<TableEntry> = current.iter().map(|d| d.entry.clone()).collect();
        table.push(entry.clone());
        self.barrier
            .transaction(vec![
                BarrierOp::Put {
                    path: salt_path(&entry.uuid),
                    value: salt,
                },
                BarrierOp::Put {
                    path: TABLE_PATH.to_owned(),
                    value: SecretBytes::from(serde_json::to_vec(&table)?),
                },
            ])
            .await?;
        let mut next: Vec<Arc<Device>> = current.iter().cloned().collect();
        next.push(Arc::new(device));
        self.replace(next);
        tracing::info!(path = %entry.path, device_type = %entry.device_type, "enabled audit device");
        Ok(())
    }

    /// `sys/audit/:path` (delete). Disabling a device that does not exist succeeds, as in
    /// OpenBao; a config-declared device cannot be disabled through the API.
    pub async fn disable(&self, path: &str) -> CoreResult<()> {
        let _guard = self.changes.lock().await;
        let path = with_slash(path);
        if path == "/" {
            return Err(CoreError::InvalidRequest(
                "audit device path must be specified".to_owned(),
            ));
        }
        let current = self.devices();
        let Some(gone) = current.iter().find(|d| d.entry.path == path) else {
            return Ok(());
        };
        if gone.entry.from_config {
            return Err(CoreError::InvalidRequest(
                "cannot disable configuration-managed audit device".to_owned(),
            ));
        }
        let next: Vec<Arc<Device>> = current
            .iter()
            .filter(|d| d.entry.path != path)
            .cloned()
            .collect();
        let table: Vec<TableEntry> = next.iter().map(|d| d.entry.clone()).collect();
        self.barrier
            .transaction(vec![
                BarrierOp::Delete {
                    path: salt_path(&gone.entry.uuid),
                },
                BarrierOp::Put {
                    path: TABLE_PATH.to_owned(),
                    value: SecretBytes::from(serde_json::to_vec(&table)?),
                },
            ])
            .await?;
        self.replace(next);
        tracing::info!(path = %path, "disabled audit device");
        Ok(())
    }

    /// `sys/audit-hash/:path`.
    pub fn hash(&self, path: &str, input: &str) -> CoreResult<String> {
        let path = with_slash(path);
        self.devices()
            .iter()
            .find(|d| d.entry.path == path)
            .map(|d| d.hash(input))
            .ok_or_else(|| CoreError::InvalidRequest(format!("unknown audit backend {path:?}")))
    }

    /// `SIGHUP`: every file device reopens its path (log rotation). Failures are logged; the
    /// device retries on its next write.
    pub fn reopen(&self) {
        for device in self.devices().iter() {
            if let Err(err) = device.sink.reopen() {
                tracing::error!(path = %device.entry.path, error = %err, "audit device cannot reopen its destination");
            }
        }
    }

    fn replace(&self, next: Vec<Arc<Device>>) {
        if let Ok(mut slot) = self.devices.write() {
            *slot = next.into();
        }
    }
}

fn new_entry(spec: &DeviceSpec, from_config: bool) -> TableEntry {
    TableEntry {
        path: with_slash(&spec.path),
        device_type: spec.device_type.clone(),
        description: spec.description.clone(),
        options: spec.options.clone(),
        local: spec.local,
        uuid: random::uuid(),
        accessor: format!(
            "audit_{}_{}",
            spec.device_type,
            hex::encode(random::bytes(4))
        ),
        from_config,
    }
}

async fn open_device(barrier: &Barrier, entry: TableEntry) -> CoreResult<Device> {
    let parsed = options::parse(&entry.device_type, &entry.options)
        .map_err(|e| CoreError::Internal(format!("stored audit device {}: {e}", entry.path)))?;
    let salt = match barrier.get(&salt_path(&entry.uuid)).await? {
        Some(salt) => salt,
        None => {
            let salt = SecretBytes::from(random::bytes(hash::SALT_LEN));
            barrier.put(&salt_path(&entry.uuid), salt.expose()).await?;
            salt
        }
    };
    Ok(Device {
        salt: Salt::new(&salt),
        sink: new_sink(&parsed.target)?,
        options: parsed,
        entry,
    })
}

fn new_sink(target: &Target) -> CoreResult<sink::Sink> {
    sink::Sink::new(target.clone())
        .map_err(|e| CoreError::Internal(format!("cannot start an audit device writer: {e}")))
}

/// Vault's test probe at enable time: a request line for `sys/audit/test`. A device that
/// cannot write it is refused (400), with OpenBao's wording.
async fn test_device(device: &Device) -> CoreResult<()> {
    // A socket connects when the line is written, as OpenBao's does (its errors then come
    // back as that write's); a file is opened first, for OpenBao's "sanity check" wording.
    let is_socket = matches!(device.options.target, Target::Socket { .. });
    if !is_socket && let Err(err) = device.sink.open().await {
        return Err(CoreError::InvalidRequest(match &device.options.target {
            Target::File { path, .. } => format!(
                "sanity check failed; unable to open {:?} for writing: {err}",
                path.display().to_string()
            ),
            _ => format!("audit backend failed test message: {err}"),
        }));
    }
    let h = entry::Hasher {
        salt: &device.salt,
        format: &device.options.format,
    };
    let auth = AuthInfo::default();
    let request = RequestInfo {
        id: random::uuid(),
        operation: "update",
        path: "sys/audit/test".to_owned(),
        ..RequestInfo::default()
    };
    let ids = entry::caller_ids(&h, &auth);
    let a = entry::render_auth(&auth, &ids);
    let r = entry::render_request(&h, &request, &auth, &ids);
    let line = entry::line(&device.options.format, "request", &a, &r, None, None);
    device.sink.write(line).await.map_err(|err| {
        CoreError::InvalidRequest(format!("audit backend failed test message: {err}"))
    })
}

fn operation_name(op: Operation) -> &'static str {
    match op {
        Operation::Read => "read",
        Operation::Create => "create",
        Operation::Update => "update",
        Operation::Patch => "patch",
        Operation::Delete => "delete",
        Operation::List => "list",
        Operation::Scan => "scan",
    }
}

impl Core {
    /// The request hook: writes the request line for the request being served (once), with
    /// the caller when known. Fails closed: `Err` when devices are enabled and none wrote.
    #[allow(
        clippy::too_many_arguments,
        reason = "the request line's parts, each from a different place"
    )]
    pub(crate) async fn audit_request(
        &self,
        active: &Active,
        caller: Option<&TokenEntry>,
        allowed: Option<bool>,
        path: &str,
        operation: Operation,
        data: Option<&Map<String, Value>>,
        error: Option<&str>,
    ) -> CoreResult<()> {
        let Some(scope) = scope::current() else {
            return Ok(());
        };
        self.audit_request_in(
            &scope, active, caller, allowed, path, operation, data, error,
        )
        .await
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "the request line's parts, each from a different place"
    )]
    async fn audit_request_in(
        &self,
        scope: &Scope,
        active: &Active,
        caller: Option<&TokenEntry>,
        allowed: Option<bool>,
        path: &str,
        operation: Operation,
        data: Option<&Map<String, Value>>,
        error: Option<&str>,
    ) -> CoreResult<()> {
        if scope.request_logged() {
            return Ok(());
        }
        let devices = active.audit.devices();
        let (auth, request, pure) = if devices.is_empty() {
            (AuthInfo::default(), RequestInfo::default(), false)
        } else {
            let mut auth = caller.map(auth_info).unwrap_or_default();
            auth.allowed = allowed;
            let (mount, pure_reads) = mount_fields(active, path);
            let request = RequestInfo {
                operation: operation_name(operation),
                mount,
                path: path.to_owned(),
                data: data.cloned(),
                ..RequestInfo::default()
            };
            // A request that changes nothing may have its line written with the response line
            // (see `Scope::log_request`). Spending a use of a limited-use token is a change.
            let pure = pure_reads
                && matches!(
                    operation,
                    Operation::Read | Operation::List | Operation::Scan
                )
                && caller.is_none_or(|c| c.num_uses == 0);
            (auth, request, pure)
        };
        scope
            .log_request(devices, auth, request, error, pure)
            .await
            .map_err(|e| CoreError::Internal(e.to_string()))
    }

    /// The request hook for requests refused before authorisation could name a caller (an
    /// unknown token): called by the HTTP layer when the core never wrote the request line.
    pub async fn audit_unlogged_request(
        &self,
        scope: &Scope,
        path: &str,
        operation: Operation,
        data: Option<&Map<String, Value>>,
        error: Option<&str>,
    ) -> CoreResult<()> {
        let Ok(active) = self.active() else {
            return Ok(());
        };
        self.audit_request_in(scope, &active, None, None, path, operation, data, error)
            .await
    }

    /// `SIGHUP`: reopen every audit device's destination.
    pub fn reopen_audit_devices(&self) {
        if let Ok(active) = self.active() {
            active.audit.reopen();
        }
    }

    /// Whether `sys/audit/:path` may create devices (`unsafe_allow_api_audit_creation`).
    pub fn api_audit_creation_allowed(&self) -> bool {
        self.options.allow_api_audit_creation
    }

    /// Whether `sys/audit/:path` may set a `prefix` option (`allow_audit_log_prefixing`).
    pub fn api_audit_prefix_allowed(&self) -> bool {
        self.options.allow_audit_log_prefixing
    }
}

fn auth_info(entry: &TokenEntry) -> AuthInfo {
    let issue = crate::token::entry::rfc3339(entry.created_ns / 1_000_000_000 * 1_000_000_000);
    AuthInfo {
        client_token: None,
        accessor: Some(entry.accessor.clone()).filter(|a| !a.is_empty()),
        display_name: entry.display_name.clone(),
        policies: entry.policies.clone(),
        token_policies: entry.policies.clone(),
        identity_policies: Vec::new(),
        allowed: None,
        metadata: entry.meta.clone(),
        entity_id: entry.entity_id.clone().unwrap_or_default(),
        entity_created: false,
        token_type: if entry.batch { "batch" } else { "service" },
        token_ttl: entry.creation_ttl,
        token_issue_time: issue.as_str().map(str::to_owned),
    }
}

/// The mount a request path belongs to, as the audit line names it, and whether its engine's
/// reads are pure ([`tresor_sdk::engine::SecretEngine::pure_reads`]; never for auth methods and
/// the core's own paths).
fn mount_fields(active: &Active, path: &str) -> (MountFields, bool) {
    if let Some(rest) = path.strip_prefix("auth/") {
        if let Some((mounted, _)) = active.mounts.table(MountKind::Auth).route(rest) {
            let fields = MountFields {
                point: format!("auth/{}", mounted.entry.path),
                mount_type: mounted.entry.engine_type.clone(),
                accessor: mounted.entry.accessor.clone(),
                class: "auth",
            };
            return (fields, false);
        }
        return (MountFields::default(), false);
    }
    match active.mounts.table(MountKind::Secret).route(path) {
        Some((mounted, _)) => (
            MountFields {
                point: mounted.entry.path.clone(),
                mount_type: mounted.entry.engine_type.clone(),
                accessor: mounted.entry.accessor.clone(),
                class: "secret",
            },
            mounted.engine.as_ref().is_some_and(|e| e.pure_reads()),
        ),
        None if path == "sys" || path.starts_with("sys/") => {
            (scope::system_mount(String::new()), false)
        }
        None => (MountFields::default(), false),
    }
}
