//! `sys/in-flight-req`: the requests being served, keyed by request id (the id their audit
//! lines and log lines carry). OpenBao answers with the bare map, no envelope. A token with
//! `read` on the path is needed unless the listener sets `inflight_requests_logging {
//! unauthenticated_in_flight_requests_access = true }`.

use axum::response::Response;
use http::StatusCode;
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{ApiRequest, Operation};
use crate::response::json_response;

/// The raw handler for listeners that allow it without a token: GET only, bare 405 otherwise.
pub fn unauthenticated(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    super::allow(request, &[Operation::Read])?;
    Ok(answer(state))
}

/// The logical read, after the ACL check.
pub fn read(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    super::allow_logical(request, &[Operation::Read])?;
    Ok(answer(state))
}

fn answer(state: &AppState) -> Response {
    let map = state.observability.in_flight.snapshot();
    json_response(StatusCode::OK, &Value::Object(map))
}
