//! `X-Vault-Wrap-TTL`: any successful answer with data or auth is replaced by a wrapping
//! token's `wrap_info` (the core stores the original answer in that token's cubbyhole).

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::response::json_response;

/// The envelope of a wrapped answer: no data, no auth, only `wrap_info`.
pub fn wrapped_envelope(wrap_info: Value) -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "request_id": "",
            "lease_id": "",
            "renewable": false,
            "lease_duration": 0,
            "data": null,
            "wrap_info": wrap_info,
            "warnings": null,
            "auth": null,
        }),
    )
}

/// Wraps `response` when it is a 200 with data or auth; anything else (204s, errors) passes
/// through unwrapped, as in Vault.
pub async fn wrap(
    state: &AppState,
    response: Response,
    ttl: u64,
    creation_path: &str,
) -> Result<Response, ApiError> {
    if response.status() != StatusCode::OK {
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map_err(|e| {
            ApiError::from(tresor_core::CoreError::Internal(format!(
                "reading a response to wrap: {e}"
            )))
        })?
        .to_bytes();
    let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(Response::from_parts(parts, Body::from(bytes)));
    };
    let has = |key: &str| value.get(key).is_some_and(|v| !v.is_null());
    if !has("data") && !has("auth") {
        return Ok(Response::from_parts(parts, Body::from(bytes)));
    }
    let wrapped_accessor = value
        .get("auth")
        .and_then(|a| a.get("accessor"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let info = state
        .core
        .wrap_response(&value, ttl, creation_path, wrapped_accessor)
        .await?;
    Ok(wrapped_envelope(info))
}
