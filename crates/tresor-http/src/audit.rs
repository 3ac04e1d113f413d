//! The HTTP side of the audit hook: every request past the raw unauthenticated endpoints runs
//! inside an audit [`Scope`]; the core writes its request line when the request reaches
//! authorisation, and [`finish`] writes the response line for whatever answer goes out.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::Value;
use tresor_core::audit::{ResponseInfo, Scope};
use tresor_core::logical::LogicalResponse;

use crate::AppState;
use crate::error::ApiError;

/// Keeps the core's answer for the response line (only when a device will record it), so the
/// hot path never re-parses the body it just serialised. Takes the answer once it has been
/// serialised for the client, so nothing is copied.
pub fn stash(response: LogicalResponse) {
    let Some(scope) = tresor_core::audit::current_scope() else {
        return;
    };
    if !scope.auditing() {
        return;
    }
    scope.stash_response(ResponseInfo {
        data: response.data,
        auth: response.auth,
        lease_id: Some(response.lease_id).filter(|l| !l.is_empty()),
        wrap_info: None,
        warnings: response.warnings,
    });
}

/// What the request was, for the lines the core did not write.
pub struct Seen {
    pub path: String,
    pub operation: Option<tresor_sdk::engine::Operation>,
    pub list: bool,
    pub wrapped: bool,
}

/// Writes the response line (and the request line if the request never reached the core's
/// hook, e.g. an unknown token). Fails closed: when no device records it, the answer is a 500.
pub async fn finish(
    state: &AppState,
    scope: &Scope,
    seen: &Seen,
    answer: Result<Response, ApiError>,
) -> Response {
    let error = answer.as_ref().err().map(message);
    if !scope.request_logged()
        && let Some(op) = seen.operation
        && let Err(err) = state
            .core
            .audit_unlogged_request(scope, &seen.path, op, None, error.as_deref())
            .await
    {
        return ApiError::from(err).into_response();
    }
    if !scope.auditing() {
        return answer.unwrap_or_else(IntoResponse::into_response);
    }
    let (response, info) = match answer {
        Err(err) => (err.into_response(), ResponseInfo::default()),
        Ok(response) => match scope.take_stashed().filter(|_| !seen.wrapped) {
            Some(info) => (response, info),
            None => read_back(response).await,
        },
    };
    if scope
        .log_response(&info, seen.list, error.as_deref())
        .await
        .is_err()
    {
        return ApiError::from(tresor_core::CoreError::Internal(
            "no audit device could record the response".to_owned(),
        ))
        .into_response();
    }
    response
}

fn message(err: &ApiError) -> String {
    if err.errors.is_empty() {
        err.status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
    } else {
        err.errors.join(", ")
    }
}

/// The answer's envelope fields, read back from a body already built (sys handlers, wrapped
/// answers); the body is put back unchanged.
async fn read_back(response: Response) -> (Response, ResponseInfo) {
    let (parts, body) = response.into_parts();
    let Ok(collected) = body.collect().await else {
        return (
            Response::from_parts(parts, Body::empty()),
            ResponseInfo::default(),
        );
    };
    let bytes = collected.to_bytes();
    let mut info = ResponseInfo::default();
    if let Ok(Value::Object(mut envelope)) = serde_json::from_slice::<Value>(&bytes) {
        if let Some(Value::Object(data)) = envelope.remove("data") {
            info.data = Some(data);
        }
        info.auth = envelope.remove("auth").filter(|a| !a.is_null());
        info.wrap_info = envelope.remove("wrap_info").filter(|w| !w.is_null());
        info.lease_id = envelope
            .remove("lease_id")
            .and_then(|l| l.as_str().map(str::to_owned))
            .filter(|l| !l.is_empty());
        if let Some(Value::Array(w)) = envelope.remove("warnings") {
            info.warnings = w
                .into_iter()
                .filter_map(|w| w.as_str().map(str::to_owned))
                .collect();
        }
    }
    (Response::from_parts(parts, Body::from(bytes)), info)
}
