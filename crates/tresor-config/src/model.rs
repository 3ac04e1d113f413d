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
    pub api_addr: Option<String>,
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
}

/// The physical store named by the `storage` block.
#[derive(Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// The default single-file store.
    Embedded { path: PathBuf },
    /// Nothing survives a restart; for development and tests.
    Inmem,
    /// Parsed so Vault-style configs validate, although the backend may not exist yet.
    /// `max_parallel` is accepted and ignored.
    Postgresql {
        connection_url: String,
        table: Option<String>,
        ha_enabled: bool,
    },
}

// Hand-written so that logging the config never leaks the database password embedded in
// `connection_url`.
impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Embedded { path } => f.debug_struct("Embedded").field("path", path).finish(),
            Self::Inmem => f.write_str("Inmem"),
            Self::Postgresql {
                connection_url: _,
                table,
                ha_enabled,
            } => f
                .debug_struct("Postgresql")
                .field("connection_url", &"<redacted>")
                .field("table", table)
                .field("ha_enabled", ha_enabled)
                .finish(),
        }
    }
}

/// One `listener "tcp"` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    pub address: SocketAddr,
    /// `None` only when the block says `tls_disable = true`.
    pub tls: Option<TlsFiles>,
    /// Maximum request body in bytes. `None` means "use the server default", which is also what
    /// Vault does for an explicit `0`.
    pub max_request_size: Option<usize>,
    /// `disable_unauthed_rekey_endpoints` (default `true`, as in OpenBao ≥ 2.5): whether the
    /// legacy unauthenticated `sys/rekey/*` endpoints are refused on this listener.
    pub disable_unauthed_rekey_endpoints: bool,
}

/// The PEM files a TLS listener serves; load them with [`crate::load_tls`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}
