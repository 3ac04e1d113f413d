//! `data/<path>`: read a version, write a new one (with check-and-set), soft-delete the latest.

use serde_json::{Map, Value};
use tresor_sdk::engine::{EngineError, EngineResult, Request, Response};
use tresor_sdk::storage::Storage;

use super::model::{KeyMetadata, deletion_time};
use super::{KvV2, check_cas, store};
use crate::common::fields::{self, Wording, conversion_error};
use crate::common::passthrough::check_writable;

/// A version a read found: the response body so far (its `metadata`) and the version's data.
pub(crate) struct Found {
    pub body: Map<String, Value>,
    pub data: Map<String, Value>,
}

/// Finds the version a read asks for (`?version=N`, else the latest). A deleted or destroyed
/// version is answered here: a 404 whose body still carries `<field>: null` and the version's
/// metadata, which clients read `deletion_time`/`destroyed` from.
pub(crate) async fn find_version(
    engine: &KvV2,
    req: &Request,
    storage: &dyn Storage,
    path: &str,
    field: &str,
) -> EngineResult<Result<Found, Response>> {
    let requested = fields::int(req, "version", Wording::Validated)?.unwrap_or(0);
    let meta = engine
        .meta
        .load(storage, path)
        .await?
        .ok_or(EngineError::NotFound)?;
    let version = if requested > 0 {
        requested.unsigned_abs()
    } else {
        meta.current_version
    };
    let vm = meta.versions.get(&version).ok_or(EngineError::NotFound)?;
    let mut body = Map::new();
    body.insert(
        "metadata".into(),
        Value::Object(meta.version_json(version, vm)),
    );
    if !vm.is_readable(engine.now()) {
        body.insert(field.into(), Value::Null);
        return Ok(Err(Response {
            data: Some(body),
            status_override: Some(404),
            ..Response::default()
        }));
    }
    let data = store::load_version(storage, path, version).await?;
    Ok(Ok(Found { body, data }))
}

/// Reads the latest version, or `?version=N`.
pub(crate) async fn read(
    engine: &KvV2,
    req: &Request,
    storage: &dyn Storage,
    path: &str,
) -> EngineResult<Option<Response>> {
    match find_version(engine, req, storage, path, "data").await? {
        Err(gone) => Ok(Some(gone)),
        Ok(Found { mut body, data }) => {
            body.insert("data".into(), Value::Object(data));
            Ok(Some(Response::with_data(body)))
        }
    }
}

/// Writes `data` as a new version. `options.cas` must match the current version when given
/// (0: only if the key has no version), and is mandatory under `cas_required`.
pub(crate) async fn write(
    engine: &KvV2,
    req: &Request,
    storage: &dyn Storage,
    path: &str,
) -> EngineResult<Option<Response>> {
    check_writable(path)?;
    let data = fields::map(req, "data")?
        .ok_or_else(|| EngineError::InvalidRequest("no data provided".into()))?;
    let cas = cas_option(req)?;

    let _guard = engine.locks.lock(path).await;
    let config = store::load_config(storage).await?;
    // From the metadata cache: under the key's lock it is what storage holds (see meta_cache).
    let mut meta = engine
        .meta
        .load(storage, path)
        .await?
        .map(|m| KeyMetadata::clone(&m))
        .unwrap_or_default();
    check_cas(cas, &config, &meta)?;
    let response = commit_new_version(engine, storage, path, &mut meta, &config, &data).await?;
    Ok(Some(response))
}

/// Adds `data` as the next version of `meta`, pruning beyond `max_versions`, in one
/// transaction; answers with the new version's metadata.
pub(crate) async fn commit_new_version(
    engine: &KvV2,
    storage: &dyn Storage,
    path: &str,
    meta: &mut KeyMetadata,
    config: &super::model::Config,
    data: &Map<String, Value>,
) -> EngineResult<Response> {
    let now = engine.now();
    let deletion = deletion_time(now, config, meta)?;
    let (version, pruned) = meta.add_version(now, deletion, config.max_versions);
    let mut ops = vec![
        store::put_version(path, version, data)?,
        store::put_meta(path, meta)?,
    ];
    ops.extend(pruned.iter().map(|n| store::delete_version(path, *n)));
    let before = engine.meta.before_write(path);
    storage.transaction(ops).await?;
    engine.meta.remember_written(path, meta.clone(), before);
    let vm = meta.versions.get(&version).cloned().unwrap_or_default();
    Ok(Response::with_data(meta.version_json(version, &vm)))
}

/// `options.cas`, converted as Go's weak decoding does (`"1"` and `1.0` are 1).
pub(crate) fn cas_option(req: &Request) -> EngineResult<Option<i64>> {
    let Some(options) = fields::map(req, "options")? else {
        return Ok(None);
    };
    match options.get("cas") {
        None | Some(Value::Null) => Ok(None),
        Some(raw) => fields::to_weak_int(raw).map(Some).map_err(|_| {
            EngineError::InvalidRequest("error parsing check-and-set parameter".into())
        }),
    }
}

/// `DELETE data/<path>`: marks the latest version deleted. Nothing to delete is still a 204.
pub(crate) async fn delete_latest(
    engine: &KvV2,
    storage: &dyn Storage,
    path: &str,
) -> EngineResult<Option<Response>> {
    let _guard = engine.locks.lock(path).await;
    let Some(mut meta) = store::load_meta(storage, path).await? else {
        return Ok(None);
    };
    let now = engine.now();
    let current = meta.current_version;
    let Some(latest) = meta.versions.get_mut(&current) else {
        return Ok(None);
    };
    if latest.destroyed || latest.is_deleted(now) {
        return Ok(None);
    }
    latest.deletion = Some(now);
    storage
        .transaction(vec![store::put_meta(path, &meta)?])
        .await?;
    Ok(None)
}

/// Refuses a `data` field that is not an object (used by PATCH, whose wording differs).
pub(crate) fn data_object(value: &Value) -> EngineResult<&Map<String, Value>> {
    value.as_object().ok_or_else(|| {
        conversion_error(
            "data",
            &format!("expected a map, got {}", fields::kind(value)),
            Wording::Validated,
        )
    })
}

/// The flat version metadata OpenBao sends with a PATCH's 404 on a deleted version.
pub(crate) fn flat_not_found(meta: &KeyMetadata, version: u64) -> Response {
    let vm = meta.versions.get(&version).cloned().unwrap_or_default();
    Response {
        data: Some(meta.version_json(version, &vm)),
        status_override: Some(404),
        ..Response::default()
    }
}
