//! The parsed configuration, as plain data the binary can act on.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

/// Where a listener binds when its block has no `address`, as in Vault.
pub const DEFAULT_LISTEN_ADDRESS: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 8200));

/// A whole server configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub storage: StorageConfig,
    /// In file order. May be empty: whether that is acceptable is the binary's call.
    pub listeners: Vec<ListenerConfig>,
    /// `api_addr`: where clients reach this node (standbys forward to the active node's).
    /// `BAO_API_ADDR` / `VAULT_API_ADDR` override it: see [`ServerConfig::with_address_env`].
    pub api_addr: Option<String>,
    /// `cluster_addr` (Vault's name): the address this node reports for node-to-node traffic
    /// (`sys/leader`'s `leader_cluster_address`, `sys/ha-status`). `None`: derived as Vault
    /// does, from `api_addr` (see `docs/storage-postgresql.md`). `BAO_CLUSTER_ADDR` /
    /// `VAULT_CLUSTER_ADDR` override it.
    pub cluster_addr: Option<String>,
    /// `disable_clustering` (Vault's name): HA standbys answer 307 to the active node instead
    /// of forwarding requests to it, and no cluster address is reported. The top level's
    /// setting, else the `storage` block's (as OpenBao reads it), else `false`.
    pub disable_clustering: bool,
    /// `ha_forwarding_tls_ca_cert` (Tresor's own): a PEM file of the CA certificates a
    /// standby trusts for the active node's `https` `api_addr` when it forwards a request;
    /// `None`: the system's roots.
    pub ha_forwarding_tls_ca_cert: Option<PathBuf>,
    pub cluster_name: Option<String>,
    pub disable_mlock: bool,
    pub ui: bool,
    /// Lower-cased and normalised to `tracing`'s names (`trace`, `debug`, `info`, `warn`,
    /// `error`), so Vault's spellings such as `warning` or `err` can be fed straight to a filter.
    pub log_level: Option<String>,
    pub default_lease_ttl: Option<Duration>,
    pub max_lease_ttl: Option<Duration>,
    /// `lease_revocation_paused = true`: the expiration manager revokes nothing on its own
    /// (expired tokens are still refused). For restoring a backup without revoking what it
    /// holds; the binary also honours `TRESOR_LEASE_REVOCATION_PAUSED=1`.
    pub lease_revocation_paused: bool,
    /// `audit "<type>" "<path>" { … }` blocks, in file order.
    pub audit_devices: Vec<AuditDeviceConfig>,
    /// `unsafe_allow_api_audit_creation = true`: `sys/audit/:path` may enable devices (OpenBao
    /// refuses otherwise, dev mode included).
    pub unsafe_allow_api_audit_creation: bool,
    /// `allow_audit_log_prefixing = true`: the API may set a device's `prefix` option.
    pub allow_audit_log_prefixing: bool,
    /// `log_format`: how the server writes its log lines.
    pub log_format: Option<LogFormat>,
    /// The top-level `telemetry { … }` block; `None` when the file has none.
    pub telemetry: Option<TelemetryConfig>,
    /// `seal "<type>"` blocks, in file order: at most one active seal and one disabled one
    /// (the seal being migrated away from).
    pub seals: Vec<SealStanza>,
}

/// `log_format = "standard" | "json"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event (Vault's default).
    Standard,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Vault's spellings (case-insensitive); `None` for anything else.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "standard" | "" => Some(Self::Standard),
            "json" => Some(Self::Json),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Json => "json",
        }
    }
}

/// The top-level `telemetry` block. Only the keys Tresor acts on are kept; see
/// `docs/observability.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// `prometheus_retention_time` (24h when the block does not set it, as in OpenBao). Zero
    /// turns the Prometheus format of `sys/metrics` off.
    pub prometheus_retention_time: std::time::Duration,
    /// `disable_hostname`: parsed; Tresor never prefixes metric names with the host name (as
    /// OpenBao does not when Prometheus is its only sink), so it changes nothing.
    pub disable_hostname: bool,
}

impl TelemetryConfig {
    pub const DEFAULT_PROMETHEUS_RETENTION: std::time::Duration =
        std::time::Duration::from_secs(24 * 3600);
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            prometheus_retention_time: Self::DEFAULT_PROMETHEUS_RETENTION,
            disable_hostname: false,
        }
    }
}

/// A listener's `telemetry` and `inflight_requests_logging` blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerTelemetry {
    /// `telemetry { unauthenticated_metrics_access = true }`: `sys/metrics` needs no token on
    /// this listener.
    pub unauthenticated_metrics_access: bool,
    /// `inflight_requests_logging { unauthenticated_in_flight_requests_access = true }`:
    /// `sys/in-flight-req` needs no token on this listener.
    pub unauthenticated_in_flight_requests_access: bool,
}

/// One `seal "<type>"` block, its values as strings (OpenBao's reading); see `docs/seal.md`.
#[derive(Clone, PartialEq, Eq)]
pub struct SealStanza {
    /// `transit` or `static`.
    pub seal_type: String,
    /// `disabled = "true"`: the old seal of a seal migration.
    pub disabled: bool,
    /// Every other key, e.g. `address`, `key_name`, `current_key`.
    pub options: std::collections::BTreeMap<String, String>,
    /// Where the block starts, for error messages.
    pub line: usize,
}

/// Keys whose values may be secrets: a token, or a literal key.
const SECRET_SEAL_KEYS: &[&str] = &["token", "current_key", "previous_key"];

// Hand-written so that logging the config never shows the transit token or a literal key.
impl fmt::Debug for SealStanza {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options: std::collections::BTreeMap<&str, &str> = self
            .options
            .iter()
            .map(|(k, v)| {
                let shown = if SECRET_SEAL_KEYS.contains(&k.as_str()) {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("SealStanza")
            .field("seal_type", &self.seal_type)
            .field("disabled", &self.disabled)
            .field("options", &options)
            .finish()
    }
}

/// One declared audit device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditDeviceConfig {
    pub device_type: String,
    pub path: String,
    pub description: String,
    pub local: bool,
    /// Vault's options map (`file_path`, `mode`, `log_raw`, `address`, …), as strings.
    pub options: std::collections::BTreeMap<String, String>,
}

/// A migration file (`tresor operator migrate -config=FILE`): where to copy from and to.
/// Neither store is `inmem` (the parser refuses it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationConfig {
    /// The `storage_source` block.
    pub source: StorageConfig,
    /// The `storage_destination` block.
    pub destination: StorageConfig,
    /// Accepted so Vault's files carry over; Vault needs it only for a raft destination.
    pub cluster_addr: Option<String>,
}

/// The physical store named by the `storage` block.
#[derive(Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// The default single-file store.
    Embedded {
        path: PathBuf,
        /// `cache_size`: the most memory, in bytes, the store keeps as page cache
        /// ([`StorageConfig::DEFAULT_CACHE_SIZE`] unless the block sets it).
        cache_size: u64,
    },
    /// Nothing survives a restart; for development and tests.
    Inmem,
    /// A table in PostgreSQL, with Vault's `storage "postgresql"` settings. Defaults (table
    /// name, pool sizes) are the storage crate's: `None` means "not set in the file".
    Postgresql {
        /// `None`: the server takes `TRESOR_PG_CONNECTION_URL` (or Vault's
        /// `VAULT_PG_CONNECTION_URL`) at start. Holds the password: never logged.
        connection_url: Option<String>,
        table: Option<String>,
        /// The most storage operations (so connections) in flight at once; at least 1.
        max_parallel: Option<u64>,
        max_idle_connections: Option<u64>,
        /// `ha_enabled`: several nodes share the table, one active (holding a lock row in
        /// `ha_table`) and the others standbys; needs `api_addr`.
        ha_enabled: bool,
        ha_table: Option<String>,
    },
}

impl StorageConfig {
    /// The embedded store's page cache when `cache_size` is not set: 256 MiB.
    pub const DEFAULT_CACHE_SIZE: u64 = 256 << 20;
    /// The smallest `cache_size` accepted: 1 MiB (a bare `256`, meant as MiB, is refused).
    pub const MIN_CACHE_SIZE: u64 = 1 << 20;

    /// An embedded store at `path` with the default cache.
    pub fn embedded(path: impl Into<PathBuf>) -> Self {
        Self::Embedded {
            path: path.into(),
            cache_size: Self::DEFAULT_CACHE_SIZE,
        }
    }
}

// Hand-written so that logging the config never leaks the database password embedded in
// `connection_url`.
impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Embedded { path, cache_size } => f
                .debug_struct("Embedded")
                .field("path", path)
                .field("cache_size", cache_size)
                .finish(),
            Self::Inmem => f.write_str("Inmem"),
            Self::Postgresql {
                connection_url: _,
                table,
                max_parallel,
                max_idle_connections,
                ha_enabled,
                ha_table,
            } => f
                .debug_struct("Postgresql")
                .field("connection_url", &"<redacted>")
                .field("table", table)
                .field("max_parallel", max_parallel)
                .field("max_idle_connections", max_idle_connections)
                .field("ha_enabled", ha_enabled)
                .field("ha_table", ha_table)
                .finish(),
        }
    }
}

/// One `listener "tcp"` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    pub address: SocketAddr,
    /// `cluster_address` (Vault's name): where Vault binds its cluster port. Tresor binds
    /// nothing there (standbys forward over the API address); its port is the port of the
    /// derived `cluster_addr` when `cluster_addr` is not set.
    pub cluster_address: Option<SocketAddr>,
    /// `None` only when the block says `tls_disable = true`.
    pub tls: Option<TlsFiles>,
    /// Maximum request body in bytes. `None` means "use the server default", which is also what
    /// Vault does for an explicit `0`.
    pub max_request_size: Option<usize>,
    /// How long a client may take over each phase of a connection, and how many connections
    /// the listener holds at once.
    pub limits: ListenerLimits,
    /// `disable_unauthed_rekey_endpoints` (default `true`, as in OpenBao ≥ 2.5): whether the
    /// legacy unauthenticated `sys/rekey/*` endpoints are refused on this listener.
    pub disable_unauthed_rekey_endpoints: bool,
    /// `disable_unauthed_generate_root_endpoints` (default `true`, as in OpenBao ≥ 2.5.3):
    /// whether the unauthenticated `sys/generate-root/*` endpoints are refused on this
    /// listener (anyone could otherwise cancel an operator's root token generation).
    pub disable_unauthed_generate_root_endpoints: bool,
    /// Unauthenticated access to `sys/metrics` and `sys/in-flight-req` on this listener.
    pub telemetry: ListenerTelemetry,
}

/// Time and connection limits of one listener: a slow or stalled client cannot hold a
/// connection (or a task, or a file descriptor) for ever. Defaults are OpenBao's; as there,
/// `0` in the file means "the default" for every timeout but `http_write_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// `http_read_header_timeout` (10s): from the first byte of a request (or from accepting
    /// the connection, or from the start of a TLS handshake) to the end of its headers.
    pub read_header_timeout: Duration,
    /// `http_read_timeout` (30s): to read a request's whole body, counted from its headers.
    pub read_timeout: Duration,
    /// `http_write_timeout` (none): to write a response. `None` leaves it unbounded in total,
    /// but a write that makes no progress at all is still cut after the idle timeout.
    pub write_timeout: Option<Duration>,
    /// `http_idle_timeout` (5m): how long a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// `max_request_duration` (90s): how long one request may run, body read included.
    pub max_request_duration: Duration,
    /// `max_connections` (Tresor's own key; none by default): connections the listener holds
    /// at once. Beyond it, new connections wait in the kernel's backlog until one closes.
    pub max_connections: Option<usize>,
}

impl ListenerLimits {
    pub const DEFAULT_READ_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
    pub const DEFAULT_MAX_REQUEST_DURATION: Duration = Duration::from_secs(90);
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            read_header_timeout: Self::DEFAULT_READ_HEADER_TIMEOUT,
            read_timeout: Self::DEFAULT_READ_TIMEOUT,
            write_timeout: None,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            max_request_duration: Self::DEFAULT_MAX_REQUEST_DURATION,
            max_connections: None,
        }
    }
}

/// The PEM files a TLS listener serves; load them with [`crate::load_tls`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}
