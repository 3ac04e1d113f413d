//! Loading and encoding KV v2 records. Writes are returned as [`ViewOp`]s so each handler
//! can commit everything it changes in one transaction.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tresor_sdk::engine::{EngineError, EngineResult};
use tresor_sdk::secret::SecretBytes;
use tresor_sdk::storage::{Storage, ViewOp};

use super::model::{Config, KeyMetadata};
use crate::secrets::kv::layout::{CONFIG_KEY, meta_key, version_key};

/// Whether `path` can name a key at all: the root and folder paths (`a/`) never hold one.
pub(crate) fn names_a_key(path: &str) -> bool {
    !path.is_empty() && !path.ends_with('/')
}

pub(crate) async fn load_config(storage: &dyn Storage) -> EngineResult<Config> {
    Ok(load(storage, CONFIG_KEY, "config")
        .await?
        .unwrap_or_default())
}

/// The metadata of `path`, or `None` if the key does not exist (or `path` names a folder).
pub(crate) async fn load_meta(
    storage: &dyn Storage,
    path: &str,
) -> EngineResult<Option<KeyMetadata>> {
    if !names_a_key(path) {
        return Ok(None);
    }
    load(storage, &meta_key(path), "metadata").await
}

/// The data of one version. Metadata said it exists, so its absence is an internal error.
pub(crate) async fn load_version(
    storage: &dyn Storage,
    path: &str,
    version: u64,
) -> EngineResult<Map<String, Value>> {
    load(storage, &version_key(path, version), "version data")
        .await?
        .ok_or_else(|| EngineError::Internal("could not find version data".into()))
}

async fn load<T: DeserializeOwned>(
    storage: &dyn Storage,
    key: &str,
    what: &str,
) -> EngineResult<Option<T>> {
    let Some(raw) = storage.get(key).await? else {
        return Ok(None);
    };
    // The serde error is dropped: for version data it could quote the secret. Validated as
    // UTF-8 once, whole, and parsed as text: parsing bytes validates each string on its own,
    // which cost a KV v2 read more than the rest of the parse's string handling.
    std::str::from_utf8(raw.expose())
        .ok()
        .and_then(|text| serde_json::from_str(text).ok())
        .map(Some)
        .ok_or_else(|| EngineError::Internal(format!("stored {what} is malformed")))
}

fn encode<T: Serialize>(value: &T) -> EngineResult<SecretBytes> {
    serde_json::to_vec(value)
        .map(SecretBytes::new)
        .map_err(|_| EngineError::Internal("json encoding failed".into()))
}

pub(crate) fn put_config(config: &Config) -> EngineResult<ViewOp> {
    Ok(ViewOp::Put {
        key: CONFIG_KEY.to_owned(),
        value: encode(config)?,
    })
}

pub(crate) fn put_meta(path: &str, meta: &KeyMetadata) -> EngineResult<ViewOp> {
    Ok(ViewOp::Put {
        key: meta_key(path),
        value: encode(meta)?,
    })
}

pub(crate) fn delete_meta(path: &str) -> ViewOp {
    ViewOp::Delete {
        key: meta_key(path),
    }
}

pub(crate) fn put_version(
    path: &str,
    version: u64,
    data: &Map<String, Value>,
) -> EngineResult<ViewOp> {
    // Written by `tresor_sdk::json` (byte for byte serde_json's output): serde_json's string
    // escaping was the largest single cost of a KV v2 write.
    let mut value = Vec::new();
    tresor_sdk::json::write_map(&mut value, data);
    Ok(ViewOp::Put {
        key: version_key(path, version),
        value: SecretBytes::new(value),
    })
}

/// Stores already-encoded version data (the v1 → v2 upgrade moves bytes as they are).
pub(crate) fn put_version_bytes(path: &str, version: u64, data: SecretBytes) -> ViewOp {
    ViewOp::Put {
        key: version_key(path, version),
        value: data,
    }
}

pub(crate) fn delete_version(path: &str, version: u64) -> ViewOp {
    ViewOp::Delete {
        key: version_key(path, version),
    }
}
