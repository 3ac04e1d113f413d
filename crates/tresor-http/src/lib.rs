//! Tresor's HTTP layer: the Vault/OpenBao wire format over the core.
//!
//! # Layout
//! - [`router`]: the axum router; one fallback handler receives every `/v1/…` request, because
//!   Vault routes by mount table and accepts a custom `LIST` method.
//! - `request`: parsing of method, path, query, token headers and bounded JSON bodies.
//! - `response`: the response envelope, sys top-level mirroring, 204s, exact headers.
//! - `error`: [`ApiError`], the `{"errors":[…]}` envelope, and the mapping from `CoreError`.
//! - `dispatch`: unauthenticated sys paths, the HA standby's hand-off, the sealed check,
//!   authentication, routing.
//! - `forward`: an HA standby's request forwarding to the active node (and its 307 fallback),
//!   and the sealed client address the active node reads from a forwarded request.
//! - `audit`: the HTTP half of the audit hook (the per-request scope, the response line).
//! - `inflight`: the requests being served (`sys/in-flight-req`, the in-flight gauge).
//! - `observe`: what every request gets on arrival: its id, the log span carrying it, its
//!   in-flight entry, and its latency in the metrics registry.
//! - `sys`: the `sys/*` handlers (health, seal, init, keys, leader and HA, audit, rekey, metrics,
//!   host-info, in-flight-req, config/state, …).
//!
//! Only this crate knows status codes; the core reports errors as `CoreError`.

mod audit;
mod dispatch;
mod error;
mod forward;
mod inflight;
mod observe;
mod request;
mod response;
mod sys;
mod wrap;

use std::sync::Arc;

use axum::Router;
use tresor_core::Core;

pub use error::ApiError;
pub use forward::{FORWARD_TIMEOUT, Forwarding};

/// Vault's default limit on request bodies (32 MiB); larger bodies get 413.
pub const DEFAULT_MAX_REQUEST_SIZE: usize = 32 * 1024 * 1024;

/// What every request handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub core: Arc<Core>,
    pub max_request_size: usize,
    /// Telemetry settings, the in-flight requests and the sanitized configuration.
    pub observability: Arc<Observability>,
    /// How an HA standby forwards requests to the active node; `None`: it answers 307
    /// instead (`disable_clustering`, or no HA).
    pub forwarding: Option<Forwarding>,
}

impl AppState {
    pub fn new(core: Arc<Core>) -> Self {
        Self {
            core,
            max_request_size: DEFAULT_MAX_REQUEST_SIZE,
            observability: Arc::new(Observability::default()),
            forwarding: None,
        }
    }
}

/// The server-wide state behind `sys/metrics`, `sys/in-flight-req` and
/// `sys/config/state/sanitized`.
#[derive(Debug, Default)]
pub struct Observability {
    /// `telemetry { prometheus_retention_time }`; `None` (no telemetry block, or a zero
    /// retention) turns the Prometheus format off, as in OpenBao.
    pub prometheus_retention: Option<std::time::Duration>,
    /// The configuration as `sys/config/state/sanitized` shows it.
    pub sanitized_config: serde_json::Map<String, serde_json::Value>,
    /// The requests being served.
    pub in_flight: inflight::InFlight,
}

/// Settings of one listener that change what the dispatcher serves; each listener's router
/// carries its own as a request extension (`axum::Extension`). Absent means the defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerOptions {
    /// Serve the legacy unauthenticated `sys/rekey/*` endpoints
    /// (`disable_unauthed_rekey_endpoints = false`); off by default, as in OpenBao ≥ 2.5.
    pub unauthed_rekey: bool,
    /// Serve the unauthenticated `sys/generate-root/*` endpoints
    /// (`disable_unauthed_generate_root_endpoints = false`); off by default, as in OpenBao
    /// ≥ 2.5.3.
    pub unauthed_generate_root: bool,
    /// `telemetry { unauthenticated_metrics_access = true }`: `sys/metrics` without a token.
    pub unauthenticated_metrics: bool,
    /// `inflight_requests_logging { unauthenticated_in_flight_requests_access = true }`:
    /// `sys/in-flight-req` without a token.
    pub unauthenticated_in_flight: bool,
}

/// The complete HTTP application.
pub fn router(state: AppState) -> Router {
    Router::new().fallback(dispatch::handle).with_state(state)
}
