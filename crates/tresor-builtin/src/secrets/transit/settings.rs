//! Mount-wide settings: `config/keys` (`disable_upsert`) and `cache-config` (`size`).
//!
//! Tresor keeps every key of a mount parsed in memory (see `store`), so the cache size is
//! accepted, validated and stored for clients that set it, but does not bound anything.

use serde::{Deserialize, Serialize};
use serde_json::json;
use tresor_sdk::engine::{EngineError, EngineResult, Operation, Request, Response};
use tresor_sdk::storage::Storage;

use super::req::{self, bad, object, respond};

const KEYS_CONFIG_PATH: &str = "config/keys";
const CACHE_CONFIG_PATH: &str = "config/cache";
/// OpenBao's smallest non-zero cache size.
const MIN_CACHE_SIZE: i64 = 10;

#[derive(Debug, Default, Serialize, Deserialize)]
struct KeysConfig {
    disable_upsert: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheConfig {
    size: i64,
}

async fn load<T: Default + for<'de> Deserialize<'de>>(
    storage: &dyn Storage,
    path: &str,
) -> EngineResult<T> {
    match storage.get(path).await? {
        Some(raw) => serde_json::from_slice(raw.expose())
            .map_err(|e| EngineError::Internal(format!("decoding {path}: {e}"))),
        None => Ok(T::default()),
    }
}

async fn save<T: Serialize>(storage: &dyn Storage, path: &str, value: &T) -> EngineResult<()> {
    let bytes = serde_json::to_vec(value).map_err(|e| EngineError::Internal(e.to_string()))?;
    Ok(storage.put(path, &bytes).await?)
}

/// Whether `encrypt` may create missing keys (read only on the create path).
pub(crate) async fn upsert_allowed(storage: &dyn Storage) -> EngineResult<bool> {
    Ok(!load::<KeysConfig>(storage, KEYS_CONFIG_PATH)
        .await?
        .disable_upsert)
}

pub(crate) async fn keys_config(
    request: &Request,
    storage: &dyn Storage,
) -> EngineResult<Option<Response>> {
    let mut config: KeysConfig = load(storage, KEYS_CONFIG_PATH).await?;
    if request.operation != Operation::Read {
        if let Some(disable) = req::bool(request, "disable_upsert")? {
            config.disable_upsert = disable;
        }
        save(storage, KEYS_CONFIG_PATH, &config).await?;
    }
    respond(object(json!({ "disable_upsert": config.disable_upsert })))
}

pub(crate) async fn cache_config(
    request: &Request,
    storage: &dyn Storage,
) -> EngineResult<Option<Response>> {
    if request.operation == Operation::Read {
        let config: CacheConfig = load(storage, CACHE_CONFIG_PATH).await?;
        return respond(object(json!({ "size": config.size })));
    }
    let size = req::int(request, "size")?.unwrap_or(0);
    if size != 0 && size < MIN_CACHE_SIZE {
        return Err(bad(format!(
            "size must be 0 or a value greater or equal to {MIN_CACHE_SIZE}"
        )));
    }
    save(storage, CACHE_CONFIG_PATH, &CacheConfig { size }).await?;
    respond(object(json!({ "size": size })))
}
