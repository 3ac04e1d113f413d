//! `sys/rotate` and `sys/key-status`: the barrier keyring's terms.

use axum::response::Response;
use http::StatusCode;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{ApiRequest, Operation};
use crate::response::{envelope, json_response, no_content};
use crate::sys::allow_logical;

pub async fn rotate(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    allow_logical(request, &[Operation::Update])?;
    state.core.rotate().await?;
    Ok(no_content())
}

pub fn status(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    allow_logical(request, &[Operation::Read])?;
    let key = state.core.key_status()?;
    let mut data = Map::new();
    data.insert("term".into(), Value::from(key.term));
    data.insert(
        "install_time".into(),
        Value::String(key.install_time.format(&Rfc3339).unwrap_or_default()),
    );
    data.insert("encryptions".into(), Value::from(key.encryptions));
    Ok(json_response(StatusCode::OK, &envelope(data, true)))
}
