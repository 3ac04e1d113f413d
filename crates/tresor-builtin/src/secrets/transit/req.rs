//! Request-field helpers shared by transit's endpoints.

use serde_json::{Map, Value};
use tresor_sdk::engine::{EngineError, EngineResult, Request, Response};

use crate::common::fields;

pub(crate) fn string(req: &Request, name: &str) -> EngineResult<Option<String>> {
    fields::string(req, name)
}

pub(crate) fn string_or_default(req: &Request, name: &str) -> EngineResult<String> {
    Ok(fields::string(req, name)?.unwrap_or_default())
}

pub(crate) fn int(req: &Request, name: &str) -> EngineResult<Option<i64>> {
    fields::int(req, name, fields::Wording::Body)
}

pub(crate) fn bool(req: &Request, name: &str) -> EngineResult<Option<bool>> {
    fields::bool(req, name)
}

pub(crate) fn duration(req: &Request, name: &str) -> EngineResult<Option<i64>> {
    fields::duration(req, name, false)
}

pub(crate) fn bad(message: impl Into<String>) -> EngineError {
    EngineError::InvalidRequest(message.into())
}

pub(crate) fn respond(data: Map<String, Value>) -> EngineResult<Option<Response>> {
    Ok(Some(Response::with_data(data)))
}

/// Builds a JSON object from `json!`, which is always an object here.
pub(crate) fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
