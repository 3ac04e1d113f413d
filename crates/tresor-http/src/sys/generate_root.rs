//! `sys/generate-root/attempt` and `sys/generate-root/update`: unauthenticated, as in Vault —
//! the unseal-key quorum is the authorisation. (OpenBao 2.5+ turns these off by default; see
//! the compatibility notes.)

use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use tresor_core::generate_root::GenerateRootStatus;
use tresor_sdk::secret::SecretString;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{ApiRequest, Operation};
use crate::response::{json_response, no_content};
use crate::sys::allow;
use crate::sys::seal::decode_key;

fn status_json(status: &GenerateRootStatus) -> serde_json::Value {
    json!({
        "started": status.started,
        "nonce": status.nonce,
        "progress": status.progress,
        "required": status.required,
        "complete": status.complete,
        "encoded_token": status.encoded_token,
        "encoded_root_token": status.encoded_token,
        "pgp_fingerprint": "",
        "otp": status.otp.clone().unwrap_or_default(),
        "otp_length": status.otp_length,
    })
}

#[derive(Deserialize)]
struct StartBody {
    otp: Option<String>,
    pgp_key: Option<String>,
}

pub async fn attempt(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let status = match request.operation {
        Operation::Read => state.core.generate_root_read().await?,
        Operation::Update => {
            let body: StartBody = request.json_go()?;
            if body.pgp_key.is_some_and(|k| !k.is_empty()) {
                return Err(ApiError::bad_request(
                    "pgp_key is not supported by Tresor yet; use the one-time pad",
                ));
            }
            if body.otp.is_some_and(|o| !o.is_empty()) {
                return Err(ApiError::bad_request(
                    "a caller-supplied otp is not accepted: the server generates it and returns it once",
                ));
            }
            state.core.generate_root_start().await?
        }
        Operation::Delete => {
            state.core.generate_root_cancel().await?;
            return Ok(no_content());
        }
        _ => return Err(ApiError::method_not_allowed()),
    };
    Ok(json_response(http::StatusCode::OK, &status_json(&status)))
}

#[derive(Deserialize)]
struct UpdateBody {
    key: Option<SecretString>,
    nonce: Option<String>,
}

pub async fn update(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    allow(request, &[Operation::Update])?;
    let body: UpdateBody = request.json_go()?;
    let key = body
        .key
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::bad_request("'key' must be specified in request body as JSON"))?;
    let nonce = body.nonce.unwrap_or_default();
    let status = state
        .core
        .generate_root_update(decode_key(key.expose())?, &nonce)
        .await?;
    Ok(json_response(http::StatusCode::OK, &status_json(&status)))
}
