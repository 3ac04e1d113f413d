//! `metadata/<path>`: read, write (before or after any version exists) and delete (the key
//! and every version, permanently).
//!
//! Writes honour OpenBao's metadata check-and-set: `metadata_cas` must equal
//! `current_metadata_version` when given, and is required under `metadata_cas_required`.

use std::collections::BTreeMap;

use tresor_sdk::engine::{EngineError, EngineResult, Request, Response};
use tresor_sdk::storage::Storage;

use super::model::{Config, KeyMetadata};
use super::{KvV2, config, custom_metadata, store};
use crate::common::fields::{self, Wording};
use crate::common::passthrough::check_writable;

pub(crate) async fn read(
    engine: &KvV2,
    storage: &dyn Storage,
    path: &str,
) -> EngineResult<Option<Response>> {
    let meta = engine
        .meta
        .load(storage, path)
        .await?
        .ok_or(EngineError::NotFound)?;
    Ok(Some(Response::with_data(meta.to_json())))
}

/// The settable metadata fields of a write.
struct Settings {
    max_versions: Option<u32>,
    cas_required: Option<bool>,
    metadata_cas_required: Option<bool>,
    delete_version_after: Option<i64>,
    custom_metadata: Option<BTreeMap<String, String>>,
}

impl Settings {
    fn parse(req: &Request) -> EngineResult<Self> {
        Ok(Self {
            max_versions: config::max_versions(req)?,
            cas_required: fields::bool(req, "cas_required")?,
            metadata_cas_required: fields::bool(req, "metadata_cas_required")?,
            delete_version_after: fields::duration(req, "delete_version_after", false)?,
            custom_metadata: fields::map(req, "custom_metadata")?
                .map(|raw| custom_metadata::parse(&raw, false))
                .transpose()?,
        })
    }

    fn is_empty(&self) -> bool {
        self.max_versions.is_none()
            && self.cas_required.is_none()
            && self.metadata_cas_required.is_none()
            && self.delete_version_after.is_none()
            && self.custom_metadata.is_none()
    }

    fn apply(self, meta: &mut KeyMetadata) {
        if let Some(v) = self.max_versions {
            meta.max_versions = v;
        }
        if let Some(v) = self.cas_required {
            meta.cas_required = v;
        }
        if let Some(v) = self.metadata_cas_required {
            meta.metadata_cas_required = v;
        }
        if let Some(v) = self.delete_version_after {
            meta.delete_version_after = v;
        }
        if let Some(v) = self.custom_metadata {
            meta.custom_metadata = v;
        }
    }
}

/// Warnings OpenBao adds when a key tries to relax what the mount mandates.
pub(crate) fn mandate_warnings(
    config: &Config,
    cas_required: Option<bool>,
    metadata_cas_required: Option<bool>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if cas_required == Some(false) && config.cas_required {
        warnings.push(
            "\"cas_required\" set to false, but is mandated by backend config. This value will be ignored."
                .to_owned(),
        );
    }
    if metadata_cas_required == Some(false) && config.metadata_cas_required {
        warnings.push(
            "\"metadata_cas_required\" set to false, but is mandated by backend config. This value will be ignored."
                .to_owned(),
        );
    }
    warnings
}

/// Checks `metadata_cas` against an existing key's metadata version.
pub(crate) fn check_metadata_cas(
    config: &Config,
    meta: &KeyMetadata,
    metadata_cas: Option<i64>,
) -> EngineResult<()> {
    if (meta.metadata_cas_required || config.metadata_cas_required) && metadata_cas.is_none() {
        return Err(EngineError::InvalidRequest(
            "metadata check-and-set parameter required for this call".into(),
        ));
    }
    match metadata_cas {
        Some(cas) if u64::try_from(cas).ok() != Some(meta.current_metadata_version) => {
            Err(EngineError::InvalidRequest(
                "metadata check-and-set parameter does not match the current version".into(),
            ))
        }
        _ => Ok(()),
    }
}

/// Creates or updates the key's metadata without creating a version. No settable field given
/// is a no-op 204.
pub(crate) async fn write(
    engine: &KvV2,
    req: &Request,
    storage: &dyn Storage,
    path: &str,
) -> EngineResult<Option<Response>> {
    check_writable(path)?;
    let settings = Settings::parse(req)?;
    let metadata_cas = fields::int(req, "metadata_cas", Wording::Body)?;
    if settings.is_empty() {
        return Ok(None);
    }
    let config = store::load_config(storage).await?;
    let warnings = mandate_warnings(
        &config,
        settings.cas_required,
        settings.metadata_cas_required,
    );

    let _guard = engine.locks.lock(path).await;
    let now = engine.now();
    let mut meta = match store::load_meta(storage, path).await? {
        None => {
            if config.metadata_cas_required && metadata_cas.is_none() {
                return Err(EngineError::InvalidRequest(
                    "metadata check-and-set parameter required for this call".into(),
                ));
            }
            if metadata_cas.is_some_and(|cas| cas != 0) {
                return Err(EngineError::InvalidRequest(
                    "metadata_cas must be 0 when creating new metadata".into(),
                ));
            }
            KeyMetadata::created_by_metadata_write(now)
        }
        Some(mut meta) => {
            check_metadata_cas(&config, &meta, metadata_cas)?;
            meta.current_metadata_version += 1;
            meta.updated_time = Some(now);
            meta
        }
    };
    settings.apply(&mut meta);
    storage
        .transaction(vec![store::put_meta(path, &meta)?])
        .await?;
    Ok(warnings_response(warnings))
}

/// 200 with only warnings, or 204.
pub(crate) fn warnings_response(warnings: Vec<String>) -> Option<Response> {
    (!warnings.is_empty()).then(|| Response {
        warnings,
        ..Response::default()
    })
}

/// Deletes the key's metadata and every version's data in one transaction.
pub(crate) async fn delete(
    engine: &KvV2,
    storage: &dyn Storage,
    path: &str,
) -> EngineResult<Option<Response>> {
    let _guard = engine.locks.lock(path).await;
    let Some(meta) = store::load_meta(storage, path).await? else {
        return Ok(None);
    };
    let mut ops: Vec<_> = meta
        .versions
        .keys()
        .map(|v| store::delete_version(path, *v))
        .collect();
    ops.push(store::delete_meta(path));
    storage.transaction(ops).await?;
    Ok(None)
}
