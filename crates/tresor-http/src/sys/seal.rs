//! `sys/seal-status`, `sys/unseal` and `sys/seal`.

use axum::response::Response;
use base64::Engine;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tresor_core::SealStatus;
use tresor_sdk::secret::{SecretBytes, SecretString};

use crate::AppState;
use crate::error::ApiError;
use crate::request::{ApiRequest, Operation};
use crate::response::{json_response, no_content};
use crate::sys::allow;

/// Build date reported as `commit_date`, as OpenBao does; set by the build script.
const COMMIT_DATE: &str = env!("TRESOR_COMMIT_DATE");

pub fn seal_status_json(status: &SealStatus) -> Value {
    let mut body = json!({
        "type": status.seal_type.as_str(),
        "initialized": status.initialized,
        "sealed": status.sealed,
        "t": status.threshold,
        "n": status.shares,
        "progress": status.progress,
        "nonce": status.nonce,
        "recovery_seal": status.recovery_seal,
        "version": status.version,
        "commit_date": COMMIT_DATE,
        "migration": status.migration,
        "storage_type": status.storage_type,
    });
    let Some(obj) = body.as_object_mut() else {
        return body;
    };
    if let Some(cluster) = &status.cluster {
        obj.insert("cluster_name".into(), cluster.name.clone().into());
        obj.insert("cluster_id".into(), cluster.id.clone().into());
    }
    if status.recovery_seal {
        // OpenBao's recovery shares are always Shamir shares.
        obj.insert("recovery_seal_type".into(), "shamir".into());
    }
    // OpenBao keeps `warnings` (omitempty) for compatibility; Tresor says there why an
    // auto-unseal seal left the server sealed.
    if let Some(error) = &status.seal_error {
        obj.insert("warnings".into(), json!([error]));
    }
    body
}

pub async fn status(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    allow(request, &[Operation::Read])?;
    let status = state.core.seal_status().await;
    Ok(json_response(StatusCode::OK, &seal_status_json(&status)))
}

#[derive(Deserialize)]
struct UnsealBody {
    key: Option<SecretString>,
    reset: Option<bool>,
    migrate: Option<bool>,
}

pub async fn unseal(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    allow(request, &[Operation::Update])?;
    let body: UnsealBody = request.json_go()?;
    let status = if body.reset == Some(true) {
        state.core.unseal_reset().await?
    } else {
        let key = body.key.filter(|k| !k.is_empty()).ok_or_else(|| {
            ApiError::bad_request(
                "'key' must be specified in request body as JSON, or 'reset' set to true",
            )
        })?;
        state
            .core
            .unseal_with(decode_key(key.expose())?, body.migrate == Some(true))
            .await?
    };
    Ok(json_response(StatusCode::OK, &seal_status_json(&status)))
}

/// Unseal keys arrive as hex (`keys`) or base64 (`keys_base64`); hex is tried first, as in
/// OpenBao, because every hex string of even length is also valid base64.
pub(crate) fn decode_key(key: &str) -> Result<SecretBytes, ApiError> {
    if let Ok(bytes) = hex::decode(key) {
        return Ok(SecretBytes::new(bytes));
    }
    base64::engine::general_purpose::STANDARD
        .decode(key)
        .map(SecretBytes::new)
        .map_err(|_| ApiError::bad_request("'key' must be a valid hex or base64 string"))
}

/// `sys/seal`: method first, then "already sealed" (a no-op needing no token), then `sudo`.
pub async fn seal(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    allow(request, &[Operation::Update])?;
    // The body carries nothing, but OpenBao still decodes it: malformed JSON is a 400.
    let _: serde::de::IgnoredAny = request.json()?;
    if state.core.is_sealed() {
        return Ok(no_content());
    }
    if state.core.is_standby() {
        // OpenBao's answer (`sealInitCommon`): a standby has no token store to check the
        // token against, so it refuses rather than seal on an unchecked token.
        return Err(ApiError::new(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            "vault cannot seal when in standby mode; please restart instead",
        ));
    }
    let token = request.token.as_ref().map(|t| t.expose());
    state
        .core
        .authorize(
            token,
            request.remote_addr,
            "sys/seal",
            tresor_sdk::engine::Operation::Update,
            None,
        )
        .await?;
    state.core.seal_now().await;
    Ok(no_content())
}
