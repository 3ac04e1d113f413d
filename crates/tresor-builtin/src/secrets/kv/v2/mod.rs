//! KV version 2: versioned secrets with metadata.
//!
//! # Layout
//! - `routes`: path → endpoint, and OpenBao's 404-with-warning answers for other paths.
//! - `model`: stored records (config, key metadata, version metadata) and their JSON.
//! - `store`: loading records and encoding writes as transaction ops.
//! - `config`: `config` read/write.
//! - `data`: `data/<path>` read, write (with CAS), soft delete of the latest version.
//! - `patch`: `data/<path>` PATCH (JSON merge patch on the latest version).
//! - `versions`: `delete/`, `undelete/`, `destroy/` of listed versions.
//! - `metadata`: `metadata/<path>` read, write, delete; `custom_metadata` validation.
//! - `metadata_patch`: `metadata/<path>` PATCH.
//! - `listing`: LIST and SCAN on `metadata/` and `detailed-metadata/`, `after`/`limit` paging.
//! - `subkeys`: `subkeys/<path>` (the data's shape without its values).
//!
//! Every handler that writes validates everything first, then commits all its changes in one
//! storage transaction: a failed request writes nothing, and a reader never sees half of one.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use tresor_sdk::engine::{EngineError, EngineResult, Operation, Request, Response, SecretEngine};
use tresor_sdk::storage::Storage;

use super::layout::V1_PREFIX;
use super::{Version, upgrade};
use crate::clock::Clock;
use crate::common::keypath;
use tresor_sdk::locks::KeyLocks;

mod config;
mod custom_metadata;
mod data;
mod listing;
mod meta_cache;
mod metadata;
mod metadata_patch;
pub(crate) mod model;
mod patch;
mod routes;
pub(crate) mod store;
mod subkeys;
mod versions;

use routes::Route;

/// The KV v2 engine of one mount.
#[derive(Debug)]
pub struct KvV2 {
    clock: Arc<dyn Clock>,
    /// Serialises read-modify-write sequences per secret path (and `config`).
    locks: KeyLocks,
    /// Decoded metadata of the keys read lately (see `meta_cache`).
    meta: meta_cache::MetaCache,
}

impl KvV2 {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            locks: KeyLocks::default(),
            meta: meta_cache::MetaCache::default(),
        }
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now()
    }
}

#[async_trait]
impl SecretEngine for KvV2 {
    /// Reads and lists only look storage up.
    fn pure_reads(&self) -> bool {
        true
    }

    async fn handle(&self, req: &Request, storage: &dyn Storage) -> EngineResult<Option<Response>> {
        // Every write below goes through this view, so the metadata cache forgets what it
        // changes.
        let storage: &dyn Storage = &meta_cache::Invalidating {
            inner: storage,
            cache: &self.meta,
        };
        let op = req.operation;
        keypath::check_write_target(op, &req.path)?;
        // Vault's HTTP layer appends the slash to LIST/SCAN paths before routing.
        let path = match op {
            Operation::List | Operation::Scan => keypath::as_prefix(&req.path),
            _ => req.path.clone(),
        };
        let route = routes::route(&path);
        if let Some(secret_path) = secret_path(route) {
            keypath::check(secret_path)?;
        }
        match (route, op) {
            (Route::Config, Operation::Read) => config::read(storage).await,
            (Route::Config, Operation::Create | Operation::Update) => {
                config::write(self, req, storage).await
            }
            (Route::Data(p), Operation::Read) => data::read(self, req, storage, p).await,
            (Route::Data(p), Operation::Create | Operation::Update) => {
                data::write(self, req, storage, p).await
            }
            (Route::Data(p), Operation::Delete) => data::delete_latest(self, storage, p).await,
            (Route::Data(p), Operation::Patch) => patch::patch(self, req, storage, p).await,
            (Route::Metadata(p), Operation::Read) => metadata::read(self, storage, p).await,
            (Route::Metadata(p), Operation::Create | Operation::Update) => {
                metadata::write(self, req, storage, p).await
            }
            (Route::Metadata(p), Operation::Delete) => metadata::delete(self, storage, p).await,
            (Route::Metadata(p), Operation::Patch) => {
                metadata_patch::patch(self, req, storage, p).await
            }
            (Route::Metadata(p), Operation::List) => listing::list(req, storage, p, false).await,
            (Route::Metadata(p), Operation::Scan) => listing::scan(storage, p, false).await,
            (Route::DetailedMetadata(p), Operation::List) => {
                listing::list(req, storage, p, true).await
            }
            (Route::DetailedMetadata(p), Operation::Scan) => listing::scan(storage, p, true).await,
            (Route::Delete(p), Operation::Create | Operation::Update) => {
                versions::delete(self, req, storage, p).await
            }
            (Route::Undelete(p), Operation::Create | Operation::Update) => {
                versions::undelete(self, req, storage, p).await
            }
            (Route::Destroy(p), Operation::Create | Operation::Update) => {
                versions::destroy(self, req, storage, p).await
            }
            (Route::Subkeys(p), Operation::Read) => subkeys::read(self, req, storage, p).await,
            (Route::BareRoot, _) => Ok(Some(routes::bare_root())),
            (Route::Invalid, op) => Ok(Some(routes::invalid_path(op))),
            _ => Err(EngineError::UnsupportedOperation),
        }
    }

    /// `data/` and `metadata/` writes are `create` when the key has no metadata yet, as in
    /// OpenBao; every other endpoint has no existence check (writes are `update`).
    async fn exists(&self, req: &Request, storage: &dyn Storage) -> EngineResult<Option<bool>> {
        match routes::route(&req.path) {
            Route::Data(p) | Route::Metadata(p) => {
                if keypath::check(p).is_err() {
                    return Ok(Some(false));
                }
                Ok(Some(self.meta.load(storage, p).await?.is_some()))
            }
            _ => Ok(None),
        }
    }

    /// Finishes an upgrade from v1 that was interrupted (anything left under `v1/`).
    async fn initialize(&self, storage: &dyn Storage) -> EngineResult<()> {
        if !storage.list(V1_PREFIX).await?.is_empty() {
            let result = upgrade::run(storage, self.clock.as_ref()).await;
            self.meta.clear();
            result?;
        }
        Ok(())
    }

    async fn options_changed(
        &self,
        old: &BTreeMap<String, String>,
        new: &BTreeMap<String, String>,
        storage: &dyn Storage,
    ) -> EngineResult<()> {
        let result =
            upgrade::options_changed(Version::V2, old, new, storage, self.clock.as_ref()).await;
        self.meta.clear();
        result
    }
}

fn secret_path(route: Route<'_>) -> Option<&str> {
    match route {
        Route::Data(p)
        | Route::Metadata(p)
        | Route::DetailedMetadata(p)
        | Route::Delete(p)
        | Route::Undelete(p)
        | Route::Destroy(p)
        | Route::Subkeys(p) => Some(p),
        Route::Config | Route::BareRoot | Route::Invalid => None,
    }
}

/// PATCH bodies must be JSON merge patches. OpenBao's HTTP layer answers any other
/// Content-Type with 415 before routing; the engine repeats the check (as a 400, the SDK has
/// no 415) in case a caller skipped it. No header at all is accepted (engine-level callers).
pub(crate) fn check_merge_patch(req: &Request) -> EngineResult<()> {
    const MERGE_PATCH: &str = "application/merge-patch+json";
    let Some(content_type) = &req.content_type else {
        return Ok(());
    };
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if media == MERGE_PATCH {
        Ok(())
    } else {
        Err(EngineError::InvalidRequest(format!(
            "PATCH requires Content-Type of {MERGE_PATCH}, provided {media}"
        )))
    }
}

/// The KV v2 check-and-set rule shared by write and patch: a given `cas` must equal the
/// current version (0 = the key has no version); without one, `cas_required` on the mount or
/// key refuses the write.
pub(crate) fn check_cas(
    cas: Option<i64>,
    config: &model::Config,
    meta: &model::KeyMetadata,
) -> EngineResult<()> {
    match cas {
        Some(cas) if u64::try_from(cas).ok() == Some(meta.current_version) => Ok(()),
        Some(_) => Err(EngineError::InvalidRequest(
            "check-and-set parameter did not match the current version".into(),
        )),
        None if config.cas_required || meta.cas_required => Err(EngineError::InvalidRequest(
            "check-and-set parameter required for this call".into(),
        )),
        None => Ok(()),
    }
}
