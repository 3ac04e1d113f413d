//! The one entry point for `/v1/…`: the order of checks is Vault's.
//!
//! 1. Unauthenticated `sys/` endpoints (health, seal-status, init, unseal, leader) answer first,
//!    sealed or not.
//! 2. Everything else answers 503 while sealed (`authenticate` reports `Sealed`).
//! 3. Then the token is checked: 403 when missing or unknown.
//! 4. Then the path is routed; an unknown path is a 404.

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;
use crate::request::ApiRequest;
use crate::response::no_content;
use crate::sys;

pub async fn handle(State(state): State<AppState>, request: http::Request<Body>) -> Response {
    match route(&state, request).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn route(state: &AppState, request: http::Request<Body>) -> Result<Response, ApiError> {
    let request = ApiRequest::parse(request, state.max_request_size).await?;
    match request.path.as_str() {
        "sys/health" => return sys::health::handle(state, &request),
        "sys/seal-status" => return sys::seal::status(state, &request).await,
        "sys/init" => return sys::init::handle(state, &request).await,
        "sys/unseal" => return sys::seal::unseal(state, &request).await,
        "sys/leader" => return sys::leader::handle(state, &request),
        // Sealing a sealed server is a no-op that needs no token, as in OpenBao.
        "sys/seal" if state.core.is_sealed() => return Ok(no_content()),
        _ => {}
    }

    let caller = state
        .core
        .authenticate(request.token.as_ref().map(|t| t.expose()))
        .await?;
    match request.path.as_str() {
        "sys/seal" => sys::seal::seal(state, &caller, &request).await,
        "sys/rotate" => sys::keys::rotate(state, &caller, &request).await,
        "sys/key-status" => sys::keys::status(state, &caller, &request),
        path => Err(ApiError::no_handler(path)),
    }
}
