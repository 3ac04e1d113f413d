//! Changing a KV mount's `version` option: v1 → v2 upgrades in place; v2 → v1 is refused.
//!
//! The upgrade moves each `v1/<path>` to version 1 of `<path>` (OpenBao's shape: current and
//! oldest version 1, created now). It walks the v1 tree folder by folder and commits bounded
//! batches, each one transaction that writes the v2 records and deletes the v1 ones, so memory
//! stays bounded, nothing is ever half-moved, and an interrupted upgrade resumes from what is
//! left under `v1/` (the v2 engine's `initialize` checks).

use std::collections::BTreeMap;

use tresor_sdk::engine::{EngineError, EngineResult};
use tresor_sdk::storage::{Storage, ViewOp};

use super::Version;
use super::layout::v1_key;
use super::v2::model::KeyMetadata;
use super::v2::store;
use crate::clock::Clock;
use crate::common::passthrough::decode_object;

/// Keys per transaction: large enough to amortise a commit, small enough to bound memory and
/// the size of one write batch.
const BATCH: usize = 64;

/// Validates an options change and runs the upgrade when it goes from v1 to v2. `current` is
/// the version of the engine being told (a `kv-v2` mount may carry no `version` option).
pub(crate) async fn options_changed(
    current: Version,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
    storage: &dyn Storage,
    clock: &dyn Clock,
) -> EngineResult<()> {
    let old_version = match old.get("version").map(String::as_str) {
        Some("2") => Version::V2,
        Some("" | "1") => Version::V1,
        _ => current,
    };
    let new_version = match new.get("version").map(String::as_str) {
        None => old_version,
        Some("" | "1") => Version::V1,
        Some("2") => Version::V2,
        Some(other) => {
            return Err(EngineError::InvalidRequest(format!(
                "invalid version provided: {other}"
            )));
        }
    };
    match (old_version, new_version) {
        (Version::V2, Version::V1) => Err(EngineError::InvalidRequest(
            "cannot downgrade mount from version 2".into(),
        )),
        (Version::V1, Version::V2) => run(storage, clock).await.map(|_| ()),
        _ => Ok(()),
    }
}

/// Moves every v1 secret into the v2 layout; returns how many were moved.
pub(crate) async fn run(storage: &dyn Storage, clock: &dyn Clock) -> EngineResult<usize> {
    let config = store::load_config(storage).await?;
    let mut moved = 0;
    let mut frontier = vec![String::new()];
    while let Some(folder) = frontier.pop() {
        let mut leaves = Vec::new();
        for entry in storage.list(&v1_key(&folder)).await? {
            let path = format!("{folder}{entry}");
            if entry.ends_with('/') {
                frontier.push(path);
            } else {
                leaves.push(path);
            }
        }
        for batch in leaves.chunks(BATCH) {
            moved += migrate_batch(storage, clock, &config, batch).await?;
        }
    }
    // Counts only: paths are not secret, but logs have no need of them.
    tracing::info!(
        keys = moved,
        "KV mount upgraded from version 1 to version 2"
    );
    Ok(moved)
}

async fn migrate_batch(
    storage: &dyn Storage,
    clock: &dyn Clock,
    config: &super::v2::model::Config,
    paths: &[String],
) -> EngineResult<usize> {
    let now = clock.now();
    let mut ops = Vec::with_capacity(paths.len() * 3);
    let mut moved = 0;
    for path in paths {
        let Some(raw) = storage.get(&v1_key(path)).await? else {
            continue;
        };
        // Refuse to carry anything that is not a JSON object into v2, where reads expect one.
        decode_object(raw.expose())?;
        let (mut meta, max) = match store::load_meta(storage, path).await? {
            // A v2 key of the same name can only exist if the mount was written as v2 before
            // the upgrade finished; the v1 value then becomes its newest version.
            Some(existing) => (existing, config.max_versions),
            // OpenBao adds the first version with a window of 1, leaving oldest_version = 1.
            None => (KeyMetadata::default(), 1),
        };
        let (version, pruned) = meta.add_version(now, None, max);
        ops.push(store::put_version_bytes(path, version, raw));
        ops.push(store::put_meta(path, &meta)?);
        ops.extend(pruned.iter().map(|n| store::delete_version(path, *n)));
        ops.push(ViewOp::Delete { key: v1_key(path) });
        moved += 1;
    }
    if !ops.is_empty() {
        storage.transaction(ops).await?;
    }
    Ok(moved)
}
