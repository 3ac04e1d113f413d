//! `sys/config/state/sanitized`: the server configuration with everything that could hold a
//! secret removed (built once at start by the binary, see `tresor_config::ServerConfig::
//! sanitized`). A plain logical read: the ACL decides (OpenBao does not require `sudo`).

use axum::response::Response;
use http::StatusCode;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{ApiRequest, Operation};
use crate::response::{envelope, json_response};

pub fn sanitized(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    super::allow_logical(request, &[Operation::Read])?;
    let data = state.observability.sanitized_config.clone();
    Ok(json_response(StatusCode::OK, &envelope(data, false)))
}
