//! Unversioned secret storage: each path holds one JSON object. Shared by KV v1 and
//! cubbyhole, which differ only in the storage prefix (`v1/` or the caller's token key) and in
//! KV v1's `ttl` hint.

use serde_json::{Map, Value};
use tresor_sdk::engine::{EngineError, EngineResult, Response};
use tresor_sdk::storage::Storage;

use super::keypath;
use super::scan;

/// Reads the object at `path` under `prefix`. A trailing `/` names no key: `None`.
pub(crate) async fn read(
    storage: &dyn Storage,
    prefix: &str,
    path: &str,
) -> EngineResult<Option<Map<String, Value>>> {
    keypath::check(path)?;
    if path.is_empty() || path.ends_with('/') {
        return Ok(None);
    }
    let Some(raw) = storage.get(&format!("{prefix}{path}")).await? else {
        return Ok(None);
    };
    decode_object(raw.expose()).map(Some)
}

/// Decodes a stored object; the error never quotes the bytes.
pub(crate) fn decode_object(raw: &[u8]) -> EngineResult<Map<String, Value>> {
    serde_json::from_slice(raw)
        .map_err(|_| EngineError::Internal("stored secret is not a JSON object".into()))
}

/// Writes `data` to `path` under `prefix` exactly as sent: a secret's keys are free-form data,
/// so a JSON `null` value is stored and read back (null-as-absent applies only to an
/// endpoint's known parameters).
pub(crate) async fn write(
    storage: &dyn Storage,
    prefix: &str,
    path: &str,
    data: &Map<String, Value>,
) -> EngineResult<()> {
    keypath::check(path)?;
    check_writable(path)?;
    if data.is_empty() {
        return Err(EngineError::InvalidRequest("missing data fields".into()));
    }
    let bytes = serde_json::to_vec(data)
        .map_err(|_| EngineError::Internal("json encoding failed".into()))?;
    storage.put(&format!("{prefix}{path}"), &bytes).await?;
    Ok(())
}

/// The checks Vault makes before any write: a key must be named and must not be a folder.
pub(crate) fn check_writable(path: &str) -> EngineResult<()> {
    if path.is_empty() {
        return Err(EngineError::InvalidRequest("missing path".into()));
    }
    if path.ends_with('/') {
        return Err(EngineError::InvalidRequest(
            "cannot write to a path ending in '/'".into(),
        ));
    }
    Ok(())
}

/// Deletes `path`; deleting what is not there succeeds, as in Vault.
pub(crate) async fn delete(storage: &dyn Storage, prefix: &str, path: &str) -> EngineResult<()> {
    keypath::check(path)?;
    if path.is_empty() || path.ends_with('/') {
        return Ok(());
    }
    storage.delete(&format!("{prefix}{path}")).await?;
    Ok(())
}

/// Whether `path` holds a secret (the router's create/update distinction).
pub(crate) async fn exists(storage: &dyn Storage, prefix: &str, path: &str) -> EngineResult<bool> {
    if keypath::check(path).is_err() || path.is_empty() || path.ends_with('/') {
        return Ok(false);
    }
    Ok(storage.get(&format!("{prefix}{path}")).await?.is_some())
}

/// LIST: immediate children, folders with a trailing `/`; 404 when there are none.
pub(crate) async fn list(
    storage: &dyn Storage,
    prefix: &str,
    path: &str,
) -> EngineResult<Response> {
    let path = keypath::as_prefix(path);
    keypath::check(&path)?;
    let keys = storage.list(&format!("{prefix}{path}")).await?;
    if keys.is_empty() {
        return Err(EngineError::NotFound);
    }
    Ok(Response::list(keys))
}

/// SCAN: every key below `path`, relative to it. An empty result is a 200 with no `keys`,
/// as OpenBao answers (unlike LIST's 404).
pub(crate) async fn scan(
    storage: &dyn Storage,
    prefix: &str,
    path: &str,
) -> EngineResult<Response> {
    let path = keypath::as_prefix(path);
    keypath::check(&path)?;
    let keys = scan::scan(storage, &format!("{prefix}{path}")).await?;
    Ok(list_or_empty(keys))
}

/// `{"keys": [...]}`, or `{}` when there are none (OpenBao's `ListResponse`).
pub(crate) fn list_or_empty(keys: Vec<String>) -> Response {
    if keys.is_empty() {
        Response::with_data(Map::new())
    } else {
        Response::list(keys)
    }
}
