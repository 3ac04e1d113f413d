//! KV v2's stored records and their JSON renderings.
//!
//! Records are stored as JSON (see `layout`). Times are Unix nanoseconds; the wire form is
//! Go's RFC3339Nano, with `""` for "never" exactly as OpenBao prints an unset timestamp.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tresor_sdk::engine::{EngineError, EngineResult};

use crate::clock::{UnixNanos, go_duration, rfc3339_nano};

/// Versions kept per key when neither the key nor the mount says otherwise.
pub(crate) const DEFAULT_MAX_VERSIONS: u32 = 10;

/// Mount-wide settings (`<mount>/config`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Config {
    #[serde(default)]
    pub max_versions: u32,
    #[serde(default)]
    pub cas_required: bool,
    #[serde(default)]
    pub metadata_cas_required: bool,
    /// Seconds; 0 = unset, negative = disabled for every key (stored as -1, as OpenBao does).
    #[serde(default)]
    pub delete_version_after: i64,
}

impl Config {
    pub(crate) fn delete_version_after_disabled(&self) -> bool {
        self.delete_version_after < 0
    }

    pub(crate) fn to_json(&self) -> Map<String, Value> {
        object(json!({
            "max_versions": self.max_versions,
            "cas_required": self.cas_required,
            "metadata_cas_required": self.metadata_cas_required,
            "delete_version_after": go_duration(self.delete_version_after),
        }))
    }
}

/// One version's bookkeeping; its data lives in a separate record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VersionMeta {
    pub created: UnixNanos,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion: Option<UnixNanos>,
    #[serde(default)]
    pub destroyed: bool,
}

impl VersionMeta {
    /// Soft-deleted: a deletion time that has been reached. A future deletion time (from
    /// `delete_version_after`) leaves the version readable until then. (OpenBao compares
    /// with a strict `<`; at nanosecond resolution the difference is only that a version
    /// deleted "now" reads as deleted now, even on a clock that has not ticked.)
    pub(crate) fn is_deleted(&self, now: UnixNanos) -> bool {
        self.deletion.is_some_and(|d| d <= now)
    }

    pub(crate) fn is_readable(&self, now: UnixNanos) -> bool {
        !self.destroyed && !self.is_deleted(now)
    }
}

/// One key's metadata (`metadata/<path>`), which exists from the first data or metadata write
/// until `DELETE metadata/<path>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyMetadata {
    #[serde(default)]
    pub current_version: u64,
    /// OpenBao's sliding-window bound: 0 until the first pruning, then the oldest kept version.
    #[serde(default)]
    pub oldest_version: u64,
    /// Bumped by every metadata write or patch (OpenBao's `metadata_cas`), not by data writes.
    #[serde(default)]
    pub current_metadata_version: u64,
    #[serde(default)]
    pub created_time: Option<UnixNanos>,
    #[serde(default)]
    pub updated_time: Option<UnixNanos>,
    #[serde(default)]
    pub max_versions: u32,
    #[serde(default)]
    pub cas_required: bool,
    #[serde(default)]
    pub metadata_cas_required: bool,
    /// Seconds, ≥ 0; 0 = use the mount's setting.
    #[serde(default)]
    pub delete_version_after: i64,
    #[serde(default)]
    pub custom_metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub versions: BTreeMap<u64, VersionMeta>,
}

impl KeyMetadata {
    /// Metadata created by a metadata write, before any version exists (ESO's PushSecret).
    pub(crate) fn created_by_metadata_write(now: UnixNanos) -> Self {
        Self {
            created_time: Some(now),
            updated_time: Some(now),
            current_metadata_version: 1,
            ..Self::default()
        }
    }

    /// Appends a version and slides the max-versions window, as OpenBao's `AddVersion`:
    /// the effective limit is the larger of the key's and the mount's `max_versions`
    /// (10 when both are 0). Returns the new version number and the versions dropped, whose
    /// data must be deleted in the same transaction.
    pub(crate) fn add_version(
        &mut self,
        created: UnixNanos,
        deletion: Option<UnixNanos>,
        config_max_versions: u32,
    ) -> (u64, Vec<u64>) {
        self.current_version += 1;
        let version = self.current_version;
        self.versions.insert(
            version,
            VersionMeta {
                created,
                deletion,
                destroyed: false,
            },
        );
        self.updated_time = Some(created);
        if self.created_time.is_none() {
            self.created_time = Some(created);
        }
        let max = match self.max_versions.max(config_max_versions) {
            0 => DEFAULT_MAX_VERSIONS,
            n => n,
        };
        let mut pruned = Vec::new();
        if self.current_version - self.oldest_version >= u64::from(max) {
            let last_to_delete = self.current_version - u64::from(max);
            let dropped: Vec<u64> = self
                .versions
                .range(..=last_to_delete)
                .map(|(n, _)| *n)
                .collect();
            for n in dropped {
                self.versions.remove(&n);
                pruned.push(n);
            }
            self.oldest_version = last_to_delete + 1;
        }
        (version, pruned)
    }

    pub(crate) fn custom_metadata_json(&self) -> Value {
        if self.custom_metadata.is_empty() {
            Value::Null
        } else {
            Value::Object(
                self.custom_metadata
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            )
        }
    }

    /// A version's metadata as data writes, patches and reads report it.
    pub(crate) fn version_json(&self, version: u64, vm: &VersionMeta) -> Map<String, Value> {
        object(json!({
            "version": version,
            "created_time": rfc3339_nano(vm.created),
            "deletion_time": vm.deletion.map(rfc3339_nano).unwrap_or_default(),
            "destroyed": vm.destroyed,
            "custom_metadata": self.custom_metadata_json(),
        }))
    }

    /// The full metadata, as `GET metadata/<path>` and detailed listings report it.
    pub(crate) fn to_json(&self) -> Map<String, Value> {
        let versions: Map<String, Value> = self
            .versions
            .iter()
            .map(|(n, vm)| {
                (
                    n.to_string(),
                    json!({
                        "created_time": rfc3339_nano(vm.created),
                        "deletion_time": vm.deletion.map(rfc3339_nano).unwrap_or_default(),
                        "destroyed": vm.destroyed,
                    }),
                )
            })
            .collect();
        object(json!({
            "versions": versions,
            "current_version": self.current_version,
            "current_metadata_version": self.current_metadata_version,
            "oldest_version": self.oldest_version,
            "created_time": self.created_time.map(rfc3339_nano).unwrap_or_default(),
            "updated_time": self.updated_time.map(rfc3339_nano).unwrap_or_default(),
            "max_versions": self.max_versions,
            "cas_required": self.cas_required,
            "metadata_cas_required": self.metadata_cas_required,
            "delete_version_after": go_duration(self.delete_version_after),
            "custom_metadata": self.custom_metadata_json(),
        }))
    }
}

/// When a version written at `created` is deleted automatically, if ever: the smaller of the
/// key's and the mount's non-zero `delete_version_after` (OpenBao's `deletionTime`), unless the
/// mount disabled it.
pub(crate) fn deletion_time(
    created: UnixNanos,
    config: &Config,
    meta: &KeyMetadata,
) -> EngineResult<Option<UnixNanos>> {
    if config.delete_version_after_disabled() {
        return Ok(None);
    }
    let (mount, key) = (config.delete_version_after, meta.delete_version_after);
    let after = match (mount, key) {
        (0, 0) => return Ok(None),
        (0, k) => k,
        (m, 0) => m,
        (m, k) => m.min(k),
    };
    after
        .checked_mul(1_000_000_000)
        .and_then(|nanos| created.checked_add(nanos))
        .map(Some)
        .ok_or_else(|| {
            EngineError::InvalidRequest("error setting deletion_time: out of range".into())
        })
}

/// `json!` of an object literal, as a map. Non-objects (never produced here) become empty.
pub(crate) fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slides_like_openbao() {
        let mut meta = KeyMetadata {
            max_versions: 2,
            ..KeyMetadata::default()
        };
        assert_eq!(meta.add_version(1, None, 0), (1, vec![]));
        assert_eq!(meta.oldest_version, 0);
        assert_eq!(meta.add_version(2, None, 0), (2, vec![]));
        assert_eq!(meta.oldest_version, 1);
        assert_eq!(meta.add_version(3, None, 0), (3, vec![1]));
        assert_eq!(meta.add_version(4, None, 0), (4, vec![2]));
        assert_eq!(meta.oldest_version, 3);
        assert_eq!(
            meta.versions.keys().copied().collect::<Vec<_>>(),
            vec![3, 4]
        );
    }

    #[test]
    fn larger_of_key_and_mount_limit_wins() {
        let mut meta = KeyMetadata {
            max_versions: 2,
            ..KeyMetadata::default()
        };
        for i in 1..=6 {
            meta.add_version(i, None, 5);
        }
        assert_eq!(meta.versions.len(), 5);
        assert_eq!(meta.oldest_version, 2);
    }

    #[test]
    fn shrinking_the_limit_drops_several_versions_at_once() {
        let mut meta = KeyMetadata::default();
        for i in 1..=5 {
            meta.add_version(i, None, 0);
        }
        meta.max_versions = 2;
        let (_, pruned) = meta.add_version(6, None, 0);
        assert_eq!(pruned, vec![1, 2, 3, 4]);
        assert_eq!(meta.oldest_version, 5);
    }

    #[test]
    fn deletion_time_takes_the_smaller_setting() {
        let config = Config {
            delete_version_after: 100,
            ..Config::default()
        };
        let meta = KeyMetadata {
            delete_version_after: 10,
            ..KeyMetadata::default()
        };
        assert_eq!(
            deletion_time(0, &config, &meta).ok(),
            Some(Some(10_000_000_000))
        );
        let disabled = Config {
            delete_version_after: -1,
            ..Config::default()
        };
        assert_eq!(deletion_time(0, &disabled, &meta).ok(), Some(None));
        assert_eq!(
            deletion_time(0, &Config::default(), &KeyMetadata::default()).ok(),
            Some(None)
        );
    }
}
