//! `PATCH data/<path>`: a JSON merge patch (RFC 7396) of the latest version, written as a new
//! version. The key must exist and its latest version must be readable.

use serde_json::{Map, Value};
use tresor_sdk::engine::{EngineError, EngineResult, Request, Response};
use tresor_sdk::storage::Storage;

use super::data::{cas_option, commit_new_version, data_object, flat_not_found};
use super::{KvV2, check_cas, check_merge_patch, store};
use crate::common::merge_patch;

pub(crate) async fn patch(
    engine: &KvV2,
    req: &Request,
    storage: &dyn Storage,
    path: &str,
) -> EngineResult<Option<Response>> {
    check_merge_patch(req)?;
    let patch = match req.data.get("data") {
        None | Some(Value::Null) => {
            return Err(EngineError::InvalidRequest("no data provided".into()));
        }
        Some(value) => data_object(value)?,
    };
    let cas = cas_option(req)?;

    let _guard = engine.locks.lock(path).await;
    let mut meta = store::load_meta(storage, path)
        .await?
        .ok_or(EngineError::NotFound)?;
    let config = store::load_config(storage).await?;
    check_cas(cas, &config, &meta)?;
    let current = meta.current_version;
    let latest = meta.versions.get(&current).ok_or(EngineError::NotFound)?;
    if !latest.is_readable(engine.now()) {
        return Ok(Some(flat_not_found(&meta, current)));
    }
    let mut merged = Value::Object(store::load_version(storage, path, current).await?);
    merge_patch::apply(&mut merged, &Value::Object(patch.clone()));
    let merged = match merged {
        Value::Object(map) => map,
        // A patch that is an object always yields an object; keep the type honest anyway.
        _ => Map::new(),
    };
    let response = commit_new_version(engine, storage, path, &mut meta, &config, &merged).await?;
    Ok(Some(response))
}
