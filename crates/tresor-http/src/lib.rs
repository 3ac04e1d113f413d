//! Tresor's HTTP layer: the Vault/OpenBao wire format over the core.
//!
//! # Layout
//! - [`router`]: the axum router; one fallback handler receives every `/v1/…` request, because
//!   Vault routes by mount table and accepts a custom `LIST` method.
//! - `request`: parsing of method, path, query, token headers and bounded JSON bodies.
//! - `response`: the response envelope, sys top-level mirroring, 204s, exact headers.
//! - `error`: [`ApiError`], the `{"errors":[…]}` envelope, and the mapping from `CoreError`.
//! - `dispatch`: unauthenticated sys paths, the sealed check, authentication, routing.
//! - `audit`: the HTTP half of the audit hook (the per-request scope, the response line).
//! - `sys`: the `sys/*` handlers (health, seal, init, keys, leader, audit, rekey, …).
//!
//! Only this crate knows status codes; the core reports errors as `CoreError`.

mod audit;
mod dispatch;
mod error;
mod request;
mod response;
mod sys;
mod wrap;

use std::sync::Arc;

use axum::Router;
use tresor_core::Core;

pub use error::ApiError;

/// Vault's default limit on request bodies (32 MiB); larger bodies get 413.
pub const DEFAULT_MAX_REQUEST_SIZE: usize = 32 * 1024 * 1024;

/// What every request handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub core: Arc<Core>,
    pub max_request_size: usize,
}

impl AppState {
    pub fn new(core: Arc<Core>) -> Self {
        Self {
            core,
            max_request_size: DEFAULT_MAX_REQUEST_SIZE,
        }
    }
}

/// Settings of one listener that change what the dispatcher serves; each listener's router
/// carries its own as a request extension (`axum::Extension`). Absent means the defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerOptions {
    /// Serve the legacy unauthenticated `sys/rekey/*` endpoints
    /// (`disable_unauthed_rekey_endpoints = false`); off by default, as in OpenBao ≥ 2.5.
    pub unauthed_rekey: bool,
}

/// The complete HTTP application.
pub fn router(state: AppState) -> Router {
    Router::new().fallback(dispatch::handle).with_state(state)
}
