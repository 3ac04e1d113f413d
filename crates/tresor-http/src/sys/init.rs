//! `sys/init`: `GET` tells whether the server is initialised; `PUT`/`POST` initialises it and
//! returns the unseal key shares and the root token — the only time they are ever shown.

use axum::response::Response;
use base64::Engine;
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use tresor_core::seal::InitRequest;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{ApiRequest, Operation};
use crate::response::json_response;

#[derive(Deserialize)]
struct InitBody {
    secret_shares: Option<i64>,
    secret_threshold: Option<i64>,
    pgp_keys: Option<Vec<String>>,
    root_token_pgp_key: Option<String>,
    recovery_shares: Option<i64>,
    recovery_threshold: Option<i64>,
    recovery_pgp_keys: Option<Vec<String>>,
    stored_shares: Option<i64>,
}

pub async fn handle(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    match request.operation {
        Operation::Read => Ok(json_response(
            StatusCode::OK,
            &json!({ "initialized": state.core.is_initialized() }),
        )),
        Operation::Update => initialize(state, request).await,
        _ => Err(ApiError::method_not_allowed()),
    }
}

async fn initialize(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let body: InitBody = request.json_go()?;
    let init = InitRequest {
        secret_shares: body.secret_shares.unwrap_or(0),
        secret_threshold: body.secret_threshold.unwrap_or(0),
        pgp_keys: body.pgp_keys.unwrap_or_default(),
        root_token_pgp_key: body.root_token_pgp_key.unwrap_or_default(),
        recovery_shares: body.recovery_shares.unwrap_or(0),
        recovery_threshold: body.recovery_threshold.unwrap_or(0),
        recovery_pgp_keys: body.recovery_pgp_keys.unwrap_or_default(),
        stored_shares: body.stored_shares.unwrap_or(0),
    };
    let result = state.core.initialize(&init).await?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let keys: Vec<String> = result
        .keys
        .iter()
        .map(|k| hex::encode(k.expose()))
        .collect();
    let keys_base64: Vec<String> = result.keys.iter().map(|k| b64.encode(k.expose())).collect();
    let mut body = json!({
        "keys": keys,
        "keys_base64": keys_base64,
        "root_token": result.root_token.expose(),
    });
    // As OpenBao: present only when recovery shares were made (omitempty).
    if !result.recovery_keys.is_empty()
        && let Some(obj) = body.as_object_mut()
    {
        let hex_keys: Vec<String> = result
            .recovery_keys
            .iter()
            .map(|k| hex::encode(k.expose()))
            .collect();
        let b64_keys: Vec<String> = result
            .recovery_keys
            .iter()
            .map(|k| b64.encode(k.expose()))
            .collect();
        obj.insert("recovery_keys".into(), hex_keys.into());
        obj.insert("recovery_keys_base64".into(), b64_keys.into());
    }
    Ok(json_response(StatusCode::OK, &body))
}
