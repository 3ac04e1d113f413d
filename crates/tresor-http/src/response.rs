//! Successful answers in Vault's wire format.
//!
//! Real clients are strict: hvac compares `Content-Type` to `application/json` exactly, and
//! vaultrs fails when an envelope key is missing, so every key is always present.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use rand::Rng;
use serde_json::{Map, Value};
use tresor_core::logical::LogicalResponse;

/// Serialises `value` with the headers every Vault answer carries.
pub fn json_response(status: StatusCode, value: &Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    with_headers(status, Body::from(body))
}

/// 204 No Content; OpenBao still sends the JSON content type, so do we.
pub fn no_content() -> Response {
    with_headers(StatusCode::NO_CONTENT, Body::empty())
}

/// Status and headers only (HEAD answers).
pub fn head_only(status: StatusCode) -> Response {
    with_headers(status, Body::empty())
}

fn with_headers(status: StatusCode, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A request id in UUID form. Drawn from the thread-local RNG: it must be unique, not secret,
/// and a syscall per request would cost more than the rest of a cached read.
pub fn request_id() -> String {
    // Inside an audited request the envelope carries the id its audit lines carry.
    if let Some(scope) = tresor_core::audit::current_scope() {
        return scope.id().to_owned();
    }
    new_request_id()
}

/// A fresh request id.
pub fn new_request_id() -> String {
    uuid::Builder::from_random_bytes(rand::rng().random())
        .into_uuid()
        .to_string()
}

/// The logical response envelope; for `sys/*` paths the data keys are also copied to the top
/// level, as Vault's `HTTPSysInjector` does.
pub fn envelope(data: Map<String, Value>, mirror_at_top_level: bool) -> Value {
    logical_envelope(LogicalResponse::data(data), mirror_at_top_level)
}

/// The full envelope of a logical response: every key always present. Takes the response by
/// value: on the hot read path the data is moved, not copied.
pub fn logical_envelope(response: LogicalResponse, mirror_at_top_level: bool) -> Value {
    let mut out = Map::new();
    if mirror_at_top_level && let Some(data) = &response.data {
        for (k, v) in data {
            out.insert(k.clone(), v.clone());
        }
    }
    out.insert("request_id".into(), Value::String(request_id()));
    out.insert("lease_id".into(), Value::String(response.lease_id));
    out.insert("renewable".into(), Value::Bool(response.renewable));
    out.insert(
        "lease_duration".into(),
        Value::from(response.lease_duration),
    );
    out.insert(
        "data".into(),
        response.data.map_or(Value::Null, Value::Object),
    );
    out.insert("wrap_info".into(), Value::Null);
    let warnings = if response.warnings.is_empty() {
        Value::Null
    } else {
        Value::Array(response.warnings.into_iter().map(Value::String).collect())
    };
    out.insert("warnings".into(), warnings);
    out.insert("auth".into(), response.auth.unwrap_or(Value::Null));
    Value::Object(out)
}

/// Serialises a logical response (200, or its status override), mirroring data keys at the
/// top level on the sys paths where Vault does.
pub fn logical_response(response: LogicalResponse, path: &str) -> Response {
    let status = response
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    json_response(status, &logical_envelope(response, mirrors_data(path)))
}

/// The `sys/` paths whose data Vault also copies to the top level (its `injectDataIntoTopRoutes`;
/// entries ending in `/` cover the whole subtree).
const MIRRORED: &[&str] = &[
    "sys/audit",
    "sys/audit/",
    "sys/audit-hash/",
    "sys/auth",
    "sys/auth/",
    "sys/config/cors",
    "sys/config/auditing/request-headers/",
    "sys/config/auditing/request-headers",
    "sys/capabilities",
    "sys/capabilities-accessor",
    "sys/capabilities-self",
    "sys/ha-status",
    "sys/key-status",
    "sys/mounts",
    "sys/mounts/",
    "sys/policy",
    "sys/policy/",
    "sys/rekey/backup",
    "sys/rekey/recovery-key-backup",
    "sys/remount",
    "sys/rotate",
    "sys/wrapping/wrap",
];

pub fn mirrors_data(path: &str) -> bool {
    MIRRORED.iter().any(|m| {
        if m.ends_with('/') {
            path.starts_with(m)
        } else {
            path == *m
        }
    })
}
