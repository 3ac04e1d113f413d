//! Successful answers in Vault's wire format.
//!
//! Real clients are strict: hvac compares `Content-Type` to `application/json` exactly, and
//! vaultrs fails when an envelope key is missing, so every key is always present.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use rand::Rng;
use serde_json::{Map, Value};

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
    uuid::Builder::from_random_bytes(rand::rng().random())
        .into_uuid()
        .to_string()
}

/// The logical response envelope; for `sys/*` paths the data keys are also copied to the top
/// level, as Vault's `HTTPSysInjector` does.
pub fn envelope(data: Map<String, Value>, mirror_at_top_level: bool) -> Value {
    let mut out = Map::new();
    if mirror_at_top_level {
        for (k, v) in &data {
            out.insert(k.clone(), v.clone());
        }
    }
    out.insert("request_id".into(), Value::String(request_id()));
    out.insert("lease_id".into(), Value::String(String::new()));
    out.insert("renewable".into(), Value::Bool(false));
    out.insert("lease_duration".into(), Value::from(0));
    out.insert("data".into(), Value::Object(data));
    out.insert("wrap_info".into(), Value::Null);
    out.insert("warnings".into(), Value::Null);
    out.insert("auth".into(), Value::Null);
    Value::Object(out)
}
