//! `PATCH metadata/<path>`: a JSON merge patch of the key's settings. `null` resets a field to
//! its default (and, inside `custom_metadata`, removes that entry); absent fields are kept.
//! The key must exist.

use serde_json::{Map, Value};
use tresor_sdk::engine::{EngineError, EngineResult, Request, Response};
use tresor_sdk::storage::Storage;

use super::metadata::{check_metadata_cas, mandate_warnings, warnings_response};
use super::{KvV2, check_merge_patch, custom_metadata, store};
use crate::common::fields::{self, Wording, conversion_error};

const PATCHABLE: [&str; 5] = [
    "max_versions",
    "cas_required",
    "metadata_cas_required",
    "delete_version_after",
    "custom_metadata",
];

/// One field of the patch: absent, reset (`null`), or set.
#[derive(Debug, Clone, PartialEq)]
enum Change<T> {
    Keep,
    Reset,
    Set(T),
}

impl<T> Change<T> {
    fn apply(self, target: &mut T)
    where
        T: Default,
    {
        match self {
            Change::Keep => {}
            Change::Reset => *target = T::default(),
            Change::Set(v) => *target = v,
        }
    }

    fn set_value(&self) -> Option<&T> {
        match self {
            Change::Set(v) => Some(v),
            Change::Keep | Change::Reset => None,
        }
    }
}

/// Reads a field of the patch body, converting set values with `convert`.
fn change<T>(
    req: &Request,
    name: &str,
    convert: impl FnOnce(&Value) -> Result<T, String>,
) -> EngineResult<Change<T>> {
    match req.data.get(name) {
        None => Ok(Change::Keep),
        Some(Value::Null) => Ok(Change::Reset),
        Some(v) => convert(v)
            .map(Change::Set)
            .map_err(|r| conversion_error(name, &r, Wording::Body)),
    }
}

pub(crate) async fn patch(
    engine: &KvV2,
    req: &Request,
    storage: &dyn Storage,
    path: &str,
) -> EngineResult<Option<Response>> {
    check_merge_patch(req)?;
    if !PATCHABLE.iter().any(|f| fields::present_for_patch(req, f)) {
        return Ok(None);
    }
    if path.is_empty() {
        return Err(EngineError::InvalidRequest("missing path".into()));
    }
    let max_versions = change(req, "max_versions", |v| {
        let n = fields::to_int(v)?;
        u32::try_from(n).map_err(|_| "max_versions must be between 0 and 4294967295".to_owned())
    })?;
    let cas_required = change(req, "cas_required", fields::to_bool)?;
    let metadata_cas_required = change(req, "metadata_cas_required", fields::to_bool)?;
    let delete_version_after = change(req, "delete_version_after", |v| {
        fields::to_duration(v, false)
    })?;
    let custom = change(req, "custom_metadata", |v| match v {
        Value::Object(m) => Ok(m.clone()),
        other => Err(format!("expected a map, got {}", fields::kind(other))),
    })?;
    if let Change::Set(raw) = &custom {
        custom_metadata::parse(raw, true)?;
    }
    let metadata_cas = fields::int(req, "metadata_cas", Wording::Body)?;
    let config = store::load_config(storage).await?;

    let _guard = engine.locks.lock(path).await;
    let mut meta = store::load_meta(storage, path)
        .await?
        .ok_or(EngineError::NotFound)?;
    check_metadata_cas(&config, &meta, metadata_cas)?;
    let warnings = mandate_warnings(
        &config,
        cas_required.set_value().copied(),
        metadata_cas_required.set_value().copied(),
    );

    max_versions.apply(&mut meta.max_versions);
    cas_required.apply(&mut meta.cas_required);
    metadata_cas_required.apply(&mut meta.metadata_cas_required);
    delete_version_after.apply(&mut meta.delete_version_after);
    match custom {
        Change::Keep => {}
        Change::Reset => meta.custom_metadata.clear(),
        Change::Set(raw) => merge_custom(&mut meta.custom_metadata, &raw)?,
    }
    meta.current_metadata_version += 1;
    meta.updated_time = Some(engine.now());
    storage
        .transaction(vec![store::put_meta(path, &meta)?])
        .await?;
    Ok(warnings_response(warnings))
}

/// Merges a `custom_metadata` patch entry by entry: `null` removes, anything else sets.
fn merge_custom(
    target: &mut std::collections::BTreeMap<String, String>,
    patch: &Map<String, Value>,
) -> EngineResult<()> {
    let converted = custom_metadata::parse(patch, true)?;
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        }
    }
    target.extend(converted);
    Ok(())
}
