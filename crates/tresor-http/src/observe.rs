//! What every request gets on arrival, before anything can fail: an id (the one its audit
//! lines, its envelope's `request_id`, its log lines and its `sys/in-flight-req` entry all
//! carry), a log span holding that id, and an in-flight entry; and, once answered, its latency
//! in the metrics registry.

use std::time::Duration;

use axum::body::Body;

use crate::AppState;
use crate::inflight::{Client, Registered};
use crate::request::Operation;

/// The client as `sys/in-flight-req` shows it: the first `X-Forwarded-For` value when present
/// (as OpenBao), else the connection's address and port.
fn client(request: &http::Request<Body>) -> Client {
    if let Some(forwarded) = request
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        return Client::Forwarded(forwarded.to_owned());
    }
    request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(Client::Unknown, |c| Client::Socket(c.0))
}

/// Lists the request in `sys/in-flight-req` until the guard is dropped.
pub fn register<'a>(
    state: &'a AppState,
    id: &str,
    request: &http::Request<Body>,
) -> Registered<'a> {
    state
        .observability
        .in_flight
        .register(id, client(request), request.uri(), request.method())
}

/// The operation label of `vault.route`.
pub fn operation_label(operation: Operation) -> &'static str {
    match operation {
        Operation::Read => "read",
        Operation::Head => "head",
        Operation::Update => "update",
        Operation::Scan => "scan",
        Operation::Delete => "delete",
        Operation::List => "list",
        Operation::Patch => "patch",
    }
}

/// Records an answered request (past the raw unauthenticated endpoints) and logs it at debug
/// level. The path is not logged: a few API paths carry a token accessor or a lease id.
pub fn record(state: &AppState, path: &str, operation: Operation, status: u16, elapsed: Duration) {
    let registry = tresor_core::metrics::global();
    registry.handle_request.observe(elapsed);
    let op = operation_label(operation);
    let mount = state.core.metrics_mount(path);
    if let Some(mount) = &mount {
        registry.routes.observe(mount, op, elapsed);
    }
    tracing::debug!(
        operation = op,
        mount = mount.as_deref().unwrap_or(""),
        status,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "request answered"
    );
}
