//! `delete/`, `undelete/` and `destroy/<path>` with `versions: [..]`.
//!
//! Versions that do not exist (or are already destroyed) are skipped silently, and a key that
//! does not exist is a 204, as in OpenBao.

use tresor_sdk::engine::{EngineError, EngineResult, Request, Response};
use tresor_sdk::storage::{Storage, ViewOp};

use super::model::deletion_time;
use super::{KvV2, store};
use crate::common::fields;

/// The `versions` field as positive version numbers; none given is a 400 with OpenBao's
/// wording for each endpoint.
fn requested_versions(req: &Request, missing: &str) -> EngineResult<Vec<u64>> {
    let versions = fields::int_slice(req, "versions")?;
    if versions.is_empty() {
        return Err(EngineError::InvalidRequest(missing.into()));
    }
    // Non-positive numbers name no version (OpenBao converts them to huge unsigned ones).
    Ok(versions
        .into_iter()
        .filter_map(|v| u64::try_from(v).ok())
        .filter(|v| *v > 0)
        .collect())
}

/// Soft-deletes the listed versions (sets `deletion_time` to now).
pub(crate) async fn delete(
    engine: &KvV2,
    req: &Request,
    storage: &dyn Storage,
    path: &str,
) -> EngineResult<Option<Response>> {
    let versions = requested_versions(req, "No version number provided")?;
    let _guard = engine.locks.lock(path).await;
    let Some(mut meta) = store::load_meta(storage, path).await? else {
        return Ok(None);
    };
    let now = engine.now();
    let mut changed = false;
    for v in versions {
        if let Some(vm) = meta.versions.get_mut(&v)
            && !vm.destroyed
            && !vm.is_deleted(now)
        {
            vm.deletion = Some(now);
            changed = true;
        }
    }
    save_if_changed(storage, path, &meta, changed).await
}

/// Restores soft-deleted versions. A restored version gets a fresh automatic deletion time
/// when `delete_version_after` applies, as in OpenBao.
pub(crate) async fn undelete(
    engine: &KvV2,
    req: &Request,
    storage: &dyn Storage,
    path: &str,
) -> EngineResult<Option<Response>> {
    let versions = requested_versions(req, "No version number provided")?;
    let config = store::load_config(storage).await?;
    let _guard = engine.locks.lock(path).await;
    let Some(mut meta) = store::load_meta(storage, path).await? else {
        return Ok(None);
    };
    let auto_deletion = deletion_time(engine.now(), &config, &meta)?;
    let mut changed = false;
    for v in versions {
        if let Some(vm) = meta.versions.get_mut(&v)
            && !vm.destroyed
        {
            vm.deletion = auto_deletion;
            changed = true;
        }
    }
    save_if_changed(storage, path, &meta, changed).await
}

/// Permanently removes the listed versions' data; their metadata stays, marked `destroyed`.
pub(crate) async fn destroy(
    engine: &KvV2,
    req: &Request,
    storage: &dyn Storage,
    path: &str,
) -> EngineResult<Option<Response>> {
    let versions = requested_versions(req, "no version number provided")?;
    let _guard = engine.locks.lock(path).await;
    let Some(mut meta) = store::load_meta(storage, path).await? else {
        return Ok(None);
    };
    let mut ops: Vec<ViewOp> = Vec::new();
    for v in versions {
        if let Some(vm) = meta.versions.get_mut(&v)
            && !vm.destroyed
        {
            vm.destroyed = true;
            ops.push(store::delete_version(path, v));
        }
    }
    if !ops.is_empty() {
        ops.push(store::put_meta(path, &meta)?);
        storage.transaction(ops).await?;
    }
    Ok(None)
}

/// Persists `meta` in one transaction when an operation changed it; answers 204 either way.
async fn save_if_changed(
    storage: &dyn Storage,
    path: &str,
    meta: &super::model::KeyMetadata,
    changed: bool,
) -> EngineResult<Option<Response>> {
    if changed {
        storage
            .transaction(vec![store::put_meta(path, meta)?])
            .await?;
    }
    Ok(None)
}
