//! `sys/audit` (list), `sys/audit/:path` (enable, disable) and `sys/audit-hash/:path`, worded
//! as OpenBao's sys backend words them.

use std::collections::BTreeMap;

use axum::response::Response;
use serde_json::{Map, Value, json};
use tresor_core::audit::DeviceSpec;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{ApiRequest, Operation};
use crate::response::{logical_response, no_content};
use crate::sys::allow_logical;

/// `sys/audit`: every enabled device by path.
pub fn list(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    allow_logical(request, &[Operation::Read])?;
    let mut data = Map::new();
    for entry in state.core.active()?.audit.list() {
        data.insert(
            entry.path.clone(),
            json!({
                "path": entry.path,
                "type": entry.device_type,
                "description": entry.description,
                "options": entry.options,
                "local": entry.local,
            }),
        );
    }
    Ok(logical_response(
        tresor_core::logical::LogicalResponse::data(data),
        &request.path,
    ))
}

/// `sys/audit/:path`: write enables, delete disables.
pub async fn one(
    state: &AppState,
    request: &ApiRequest,
    data: &Map<String, Value>,
) -> Result<Response, ApiError> {
    allow_logical(request, &[Operation::Update, Operation::Delete])?;
    let path = request.path.trim_start_matches("sys/audit/");
    let active = state.core.active()?;
    if request.operation == Operation::Delete {
        active.audit.disable(path).await?;
        return Ok(no_content());
    }
    if !state.core.api_audit_creation_allowed() {
        return Err(ApiError::bad_request(
            "cannot enable audit device via API; use declarative, config-based audit device management instead",
        ));
    }
    let spec = DeviceSpec {
        path: path.to_owned(),
        device_type: text(data, "type")?,
        description: text(data, "description")?,
        options: options(data)?,
        local: tresor_core::params::boolean(data, "local")?.unwrap_or(false),
    };
    if spec.options.contains_key("prefix") && !state.core.api_audit_prefix_allowed() {
        return Err(ApiError::bad_request("audit log prefixing is not allowed"));
    }
    active.audit.enable(&spec).await?;
    Ok(no_content())
}

/// `sys/audit-hash/:path`: the device's HMAC of `input`.
pub fn hash(
    state: &AppState,
    request: &ApiRequest,
    data: &Map<String, Value>,
) -> Result<Response, ApiError> {
    allow_logical(request, &[Operation::Update])?;
    let path = request.path.trim_start_matches("sys/audit-hash/");
    let input = scalar(data.get("input")).unwrap_or_default();
    if input.is_empty() {
        return Err(ApiError::bad_request("the \"input\" parameter is empty"));
    }
    let hash = state.core.active()?.audit.hash(path, &input)?;
    let mut out = Map::new();
    out.insert("hash".into(), Value::String(hash));
    Ok(logical_response(
        tresor_core::logical::LogicalResponse::data(out),
        &request.path,
    ))
}

/// A string field; scalars are taken as their text, as OpenBao's field decoding does.
fn text(data: &Map<String, Value>, key: &str) -> Result<String, ApiError> {
    match data.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(v) => scalar(Some(v)).ok_or_else(|| field_error(key, "expected string")),
    }
}

fn scalar(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `options`: a map of strings (scalar values are taken as their text).
fn options(data: &Map<String, Value>) -> Result<BTreeMap<String, String>, ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "Field validation failed: error converting input for field \"options\": invalid key pair at index 0 in field \"options\"",
        )
    };
    match data.get("options") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| scalar(Some(v)).map(|v| (k.clone(), v)).ok_or_else(invalid))
            .collect(),
        Some(_) => Err(invalid()),
    }
}

fn field_error(key: &str, what: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Field validation failed: error converting input for field {key:?}: {what}"
    ))
}
