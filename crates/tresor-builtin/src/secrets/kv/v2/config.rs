//! `config`: mount-wide `max_versions`, `cas_required`, `metadata_cas_required` and
//! `delete_version_after`.

use tresor_sdk::engine::{EngineError, EngineResult, Request, Response};
use tresor_sdk::storage::Storage;

use super::{KvV2, store};
use crate::common::fields::{self, Wording};

/// The lock stripe name for config writes; no secret path can contain a NUL.
const CONFIG_LOCK: &str = "\0config";

pub(crate) async fn read(storage: &dyn Storage) -> EngineResult<Option<Response>> {
    let config = store::load_config(storage).await?;
    Ok(Some(Response::with_data(config.to_json())))
}

/// Updates the fields given; none given is a no-op 204, as in OpenBao.
pub(crate) async fn write(
    engine: &KvV2,
    req: &Request,
    storage: &dyn Storage,
) -> EngineResult<Option<Response>> {
    let max_versions = max_versions(req)?;
    let cas_required = fields::bool(req, "cas_required")?;
    let metadata_cas_required = fields::bool(req, "metadata_cas_required")?;
    // Signed: a negative value disables automatic deletion for every key.
    let delete_version_after = fields::duration(req, "delete_version_after", true)?;
    if max_versions.is_none()
        && cas_required.is_none()
        && metadata_cas_required.is_none()
        && delete_version_after.is_none()
    {
        return Ok(None);
    }

    let _guard = engine.locks.lock(CONFIG_LOCK).await;
    let mut config = store::load_config(storage).await?;
    if let Some(v) = max_versions {
        config.max_versions = v;
    }
    if let Some(v) = cas_required {
        config.cas_required = v;
    }
    if let Some(v) = metadata_cas_required {
        config.metadata_cas_required = v;
    }
    if let Some(v) = delete_version_after {
        config.delete_version_after = v.max(-1);
    }
    storage
        .transaction(vec![store::put_config(&config)?])
        .await?;
    Ok(None)
}

/// `max_versions` as a `u32`. OpenBao wraps negative values to 4294967295; we refuse them.
pub(crate) fn max_versions(req: &Request) -> EngineResult<Option<u32>> {
    fields::int(req, "max_versions", Wording::Body)?
        .map(|v| {
            u32::try_from(v).map_err(|_| {
                EngineError::InvalidRequest("max_versions must be between 0 and 4294967295".into())
            })
        })
        .transpose()
}
