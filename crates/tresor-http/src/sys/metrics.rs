//! `sys/metrics`: telemetry in OpenBao's two formats.
//!
//! Without `format` (and without a Prometheus `Accept` header) the answer is the JSON summary
//! of go-metrics' in-memory sink; `format=prometheus` is the Prometheus text format, available
//! only when the configuration enables it (a `telemetry` block with a non-zero
//! `prometheus_retention_time`, or dev mode), as in OpenBao. Neither is wrapped in an
//! envelope. A token with `read` on `sys/metrics` is needed unless the listener sets
//! `telemetry { unauthenticated_metrics_access = true }`.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use tresor_core::metrics::{self, Family};

use crate::AppState;
use crate::error::ApiError;
use crate::request::{ApiRequest, Operation};

const PROMETHEUS: &str = "prometheus";
/// The content type of the text format, version 0.0.4 (what OpenBao sends).
const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The raw handler used when the listener allows unauthenticated access: GET only, and a
/// bare 405 otherwise (OpenBao's `handleMetricsUnauthenticated`).
pub fn unauthenticated(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    super::allow(request, &[Operation::Read])?;
    Ok(answer(state, request))
}

/// The logical `sys/metrics` read, after the ACL check.
pub fn read(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    super::allow_logical(request, &[Operation::Read])?;
    Ok(answer(state, request))
}

/// `format` from the query, else from the `Accept` headers: an OpenMetrics first value, or
/// any value naming `prometheus/telemetry`, asks for the text format.
fn format(request: &ApiRequest) -> String {
    if let Some(f) = request.query_value("format").filter(|f| !f.is_empty()) {
        return f.to_owned();
    }
    let openmetrics = request
        .accept
        .first()
        .is_some_and(|a| a.starts_with("application/openmetrics-text"));
    if openmetrics
        || request
            .accept
            .iter()
            .any(|a| a.contains("prometheus/telemetry"))
    {
        return PROMETHEUS.to_owned();
    }
    String::new()
}

fn answer(state: &AppState, request: &ApiRequest) -> Response {
    match format(request).as_str() {
        PROMETHEUS => {
            if state.observability.prometheus_retention.is_none() {
                return text(
                    StatusCode::BAD_REQUEST,
                    "text/plain",
                    "prometheus is not enabled".into(),
                );
            }
            text(
                StatusCode::OK,
                PROMETHEUS_CONTENT_TYPE,
                metrics::prometheus_text(&families(state)),
            )
        }
        "" => {
            let registry = metrics::global();
            let body = metrics::inmem_json(&families(state), &go_timestamp(), registry.uptime());
            text(
                StatusCode::OK,
                "application/json",
                serde_json::to_string(&body).unwrap_or_else(|_| "{}".to_owned()),
            )
        }
        other => text(
            StatusCode::BAD_REQUEST,
            "text/plain",
            format!("metric response format {other:?} unknown"),
        ),
    }
}

/// The core's families plus the HTTP layer's own gauge.
fn families(state: &AppState) -> Vec<Family> {
    let mut out = state.core.metric_families();
    out.push(Family::single_gauge(
        "vault.core.in_flight_requests",
        "Requests being served right now.",
        state.observability.in_flight.len() as f64,
    ));
    out
}

/// The start of the current 10-second interval, as Go prints a UTC time
/// (`2006-01-02 15:04:05 +0000 UTC`), which is how go-metrics stamps its summary.
fn go_timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    let start = now.unix_timestamp() - now.unix_timestamp().rem_euclid(10);
    let at = time::OffsetDateTime::from_unix_timestamp(start).unwrap_or(now);
    let format = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] +0000 UTC"
    );
    at.format(&format).unwrap_or_default()
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_go_timestamp_is_a_10_second_boundary_in_go_layout() {
        let t = go_timestamp();
        // e.g. 2026-12-06 23:35:20 +0000 UTC
        assert_eq!(t.len(), "2026-12-06 23:35:20 +0000 UTC".len(), "{t}");
        assert!(t.ends_with("0 +0000 UTC"), "{t}");
    }
}
