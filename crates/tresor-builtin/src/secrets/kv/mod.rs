//! The KV secrets engine, versions 1 and 2.
//!
//! # Layout
//! - [`KvFactory`]: mount types `kv` (version from `options.version`, default 1) and `kv-v2`
//!   (default version 2).
//! - `v1`: the unversioned passthrough engine.
//! - `v2`: the versioned engine (data, metadata, delete/undelete/destroy, config, subkeys,
//!   LIST/SCAN with OpenBao's detailed metadata and paging).
//! - `upgrade`: the v1 → v2 in-place upgrade run from `options_changed`.
//! - `layout`: the storage key layout both versions share.

use std::collections::BTreeMap;
use std::sync::Arc;

use tresor_sdk::engine::{EngineError, EngineFactory, EngineResult, MountInfo, SecretEngine};

use crate::clock::{Clock, SystemClock};

mod layout;
mod upgrade;
mod v1;
mod v2;

pub use v1::KvV1;
pub use v2::KvV2;

/// Builds KV engines. The clock is injectable so tests can control `delete_version_after`.
#[derive(Debug, Clone)]
pub struct KvFactory {
    clock: Arc<dyn Clock>,
}

impl Default for KvFactory {
    fn default() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }
}

impl KvFactory {
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self { clock }
    }
}

/// A KV mount's version, from its type and options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V1,
    V2,
}

impl Version {
    /// `options.version` wins; without it `kv-v2` is version 2 and `kv` version 1. OpenBao
    /// accepts exactly "", "1" and "2".
    pub(crate) fn of(engine_type: &str, options: &BTreeMap<String, String>) -> EngineResult<Self> {
        match options.get("version").map(String::as_str) {
            None if engine_type == "kv-v2" => Ok(Version::V2),
            None | Some("" | "1") => Ok(Version::V1),
            Some("2") => Ok(Version::V2),
            Some(other) => Err(EngineError::InvalidRequest(format!(
                "invalid version provided: {other}"
            ))),
        }
    }
}

impl EngineFactory for KvFactory {
    fn types(&self) -> &[&'static str] {
        &["kv", "kv-v2"]
    }

    fn build(&self, mount: &MountInfo) -> EngineResult<Arc<dyn SecretEngine>> {
        Ok(match Version::of(&mount.engine_type, &mount.options)? {
            Version::V1 => Arc::new(KvV1::new(self.clock.clone())),
            Version::V2 => Arc::new(KvV2::new(self.clock.clone())),
        })
    }

    fn default_options(&self, engine_type: &str) -> BTreeMap<String, String> {
        let mut options = BTreeMap::new();
        if engine_type == "kv-v2" {
            options.insert("version".to_owned(), "2".to_owned());
        }
        options
    }
}
