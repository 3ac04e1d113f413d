//! `sys/wrapping/{wrap,unwrap,lookup,rewrap}` (the core keeps the wrapped responses; see
//! `tresor_core::wrapping`).
//!
//! `lookup` needs no token; `unwrap` takes the wrapping token either as the caller's own
//! token (no ACL check: its single use is the unwrap itself; a token that is not a wrapping
//! token is "not valid") or as `token` in the body (the caller is then authorised as for any
//! request).

use axum::response::Response;
use serde_json::{Map, Value};
use tresor_sdk::engine::Operation as SdkOperation;
use tresor_sdk::secret::SecretString;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{ApiRequest, Operation};
use crate::response::{envelope, json_response, request_id};

/// The wrapping endpoints, when `path` is one of them.
pub fn endpoint(path: &str) -> Option<&'static str> {
    match path {
        "sys/wrapping/wrap" => Some("wrap"),
        "sys/wrapping/unwrap" => Some("unwrap"),
        "sys/wrapping/lookup" => Some("lookup"),
        "sys/wrapping/rewrap" => Some("rewrap"),
        _ => None,
    }
}

fn body_token(data: &Map<String, Value>) -> Result<Option<SecretString>, ApiError> {
    match data.get("token") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(SecretString::from(s.as_str()))),
        Some(_) => Err(ApiError::bad_request("token must be a string")),
    }
}

pub async fn handle(
    state: &AppState,
    request: &ApiRequest,
    which: &str,
) -> Result<Response, ApiError> {
    let lookup_read = which == "lookup" && request.operation == Operation::Read;
    if request.operation != Operation::Update && !lookup_read {
        return Err(ApiError::unsupported_operation());
    }
    let data = request.data()?;
    let header_token = request.token.as_ref().map(|t| t.expose());
    match which {
        "lookup" => {
            let token = match (body_token(&data)?, request.token.clone()) {
                (Some(t), _) | (None, Some(t)) => t,
                (None, None) => {
                    return Err(ApiError::new(
                        http::StatusCode::FORBIDDEN,
                        "error validating wrapping token: token is empty",
                    ));
                }
            };
            let info = state.core.wrapping_lookup(&token).await?;
            Ok(json_response(http::StatusCode::OK, &envelope(info, false)))
        }
        "unwrap" => {
            let token = match body_token(&data)? {
                // A body token with no caller token is the caller's own, as in OpenBao.
                Some(t) if header_token.is_none() => t,
                Some(t) => {
                    authorize_caller(state, request, &data).await?;
                    t
                }
                // The caller's own token is the wrapping token: no ACL check (its single use
                // is this unwrap), and anything else is "not valid", as in OpenBao.
                None => request.token.clone().ok_or_else(not_valid)?,
            };
            let mut response = state.core.unwrap(&token).await?;
            if let Some(obj) = response.as_object_mut() {
                obj.insert("request_id".into(), Value::String(request_id()));
            }
            Ok(json_response(http::StatusCode::OK, &response))
        }
        "rewrap" => {
            authorize_caller(state, request, &data).await?;
            let token = body_token(&data)?.ok_or_else(not_valid)?;
            let info = state.core.rewrap(&token).await?;
            Ok(crate::wrap::wrapped_envelope(info))
        }
        _ => {
            authorize_caller(state, request, &data).await?;
            if request.wrap_ttl.is_none() {
                return Err(ApiError::bad_request(
                    "endpoint requires response wrapping to be used",
                ));
            }
            // The dispatcher wraps this answer (the request carries a wrap TTL).
            Ok(json_response(http::StatusCode::OK, &envelope(data, false)))
        }
    }
}

/// The caller's own token, authorised for an update of the wrapping endpoint it called.
async fn authorize_caller(
    state: &AppState,
    request: &ApiRequest,
    data: &Map<String, Value>,
) -> Result<(), ApiError> {
    state
        .core
        .authorize(
            request.token.as_ref().map(|t| t.expose()),
            request.remote_addr,
            &request.path,
            SdkOperation::Update,
            Some(data),
        )
        .await?;
    Ok(())
}

fn not_valid() -> ApiError {
    ApiError::bad_request("wrapping token is not valid or does not exist")
}
