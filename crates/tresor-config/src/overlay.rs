//! `tresor server -dev -config=FILE`: the file laid over dev mode's own configuration, the
//! way OpenBao's `Config.Merge` lays it (`internal/command/server/config.go`, and
//! `SharedConfig.Merge` in `internal/helper/configutil/merge.go`).

use crate::model::{ServerConfig, StorageConfig};

/// A config file read for `-dev`: like a normal file, but the storage block is optional
/// (without one, dev mode's in-memory store stays). Build it with [`crate::load_overlay`] or
/// [`crate::parse_overlay`], apply it with [`ServerConfig::overlaid`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    /// The file's `storage` block, if it has one.
    pub storage: Option<StorageConfig>,
    /// Every other setting of the file. Its `storage` is a placeholder: the overlay's own
    /// `storage` says whether the file named one.
    pub(crate) rest: ServerConfig,
}

impl Overlay {
    /// The file's listeners, in file order.
    pub fn listeners(&self) -> &[crate::ListenerConfig] {
        &self.rest.listeners
    }

    /// The file's `seal` blocks.
    pub fn seals(&self) -> &[crate::SealStanza] {
        &self.rest.seals
    }
}

impl ServerConfig {
    /// `self` (dev mode's configuration) with `file` laid over it, by OpenBao's rules:
    /// listeners, audit devices and seals are appended (dev mode's listener stays first); a
    /// storage, telemetry block, address, name, log level or format the file sets replaces
    /// dev mode's; switches are on if either turns them on; lease TTLs take the longer of the
    /// two.
    pub fn overlaid(self, file: Overlay) -> ServerConfig {
        let Overlay { storage, rest: f } = file;
        let mut listeners = self.listeners;
        listeners.extend(f.listeners);
        let mut audit_devices = self.audit_devices;
        audit_devices.extend(f.audit_devices);
        let mut seals = self.seals;
        seals.extend(f.seals);
        ServerConfig {
            storage: storage.unwrap_or(self.storage),
            listeners,
            api_addr: f.api_addr.or(self.api_addr),
            cluster_addr: f.cluster_addr.or(self.cluster_addr),
            disable_clustering: self.disable_clustering || f.disable_clustering,
            ha_forwarding_tls_ca_cert: f
                .ha_forwarding_tls_ca_cert
                .or(self.ha_forwarding_tls_ca_cert),
            cluster_name: f.cluster_name.or(self.cluster_name),
            disable_mlock: self.disable_mlock || f.disable_mlock,
            ui: self.ui || f.ui,
            log_level: f.log_level.or(self.log_level),
            default_lease_ttl: self.default_lease_ttl.max(f.default_lease_ttl),
            max_lease_ttl: self.max_lease_ttl.max(f.max_lease_ttl),
            lease_revocation_paused: self.lease_revocation_paused || f.lease_revocation_paused,
            audit_devices,
            unsafe_allow_api_audit_creation: self.unsafe_allow_api_audit_creation
                || f.unsafe_allow_api_audit_creation,
            allow_audit_log_prefixing: self.allow_audit_log_prefixing
                || f.allow_audit_log_prefixing,
            log_format: f.log_format.or(self.log_format),
            telemetry: f.telemetry.or(self.telemetry),
            seals,
        }
    }
}
