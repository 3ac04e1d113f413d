//! `sys/leader`: Tresor runs one node per store for now, so HA is reported as disabled.

use axum::response::Response;
use http::StatusCode;
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{ApiRequest, Operation};
use crate::response::json_response;
use crate::sys::allow;

pub fn handle(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    allow(request, &[Operation::Read])?;
    let _ = state;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "ha_enabled": false }),
    ))
}
