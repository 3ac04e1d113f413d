//! `sys/quotas/config`, `sys/quotas/rate-limit` (LIST) and `sys/quotas/rate-limit/:name`;
//! and the rate-limit check every `/v1/` request passes before its body is read.

use std::net::IpAddr;

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Map, Value, json};
use tresor_core::quotas::QuotaOutcome;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{ApiRequest, Operation};
use crate::response::{envelope, json_response, no_content};
use crate::sys::allow_logical;

/// Which quota endpoint a `sys/` path names, if any.
pub fn endpoint(path: &str) -> Option<Endpoint<'_>> {
    match path {
        "sys/quotas/config" => Some(Endpoint::Config),
        "sys/quotas/rate-limit" | "sys/quotas/rate-limit/" => Some(Endpoint::List),
        _ => path
            .strip_prefix("sys/quotas/rate-limit/")
            .filter(|name| valid_name(name))
            .map(Endpoint::One),
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Endpoint<'a> {
    Config,
    List,
    One(&'a str),
}

/// OpenBao's `GenericNameRegex`: word characters, with `-` and `.` inside.
fn valid_name(name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let (Some(first), Some(last)) = (name.chars().next(), name.chars().last()) else {
        return false;
    };
    word(first) && word(last) && name.chars().all(|c| word(c) || c == '-' || c == '.')
}

pub async fn handle(
    state: &AppState,
    request: &ApiRequest,
    endpoint: Endpoint<'_>,
    data: &Map<String, Value>,
) -> Result<Response, ApiError> {
    let core = &state.core;
    match endpoint {
        Endpoint::Config => {
            allow_logical(request, &[Operation::Read, Operation::Update])?;
            if request.operation == Operation::Update {
                core.write_quota_config(data).await?;
                return Ok(no_content());
            }
            let config = core.quota_config()?;
            let mut out = Map::new();
            out.insert(
                "enable_rate_limit_audit_logging".into(),
                json!(config.enable_rate_limit_audit_logging),
            );
            out.insert(
                "enable_rate_limit_response_headers".into(),
                json!(config.enable_rate_limit_response_headers),
            );
            out.insert(
                "rate_limit_exempt_paths".into(),
                json!(config.rate_limit_exempt_paths),
            );
            Ok(json_response(StatusCode::OK, &envelope(out, false)))
        }
        Endpoint::List => {
            allow_logical(request, &[Operation::List])?;
            let names = core.rate_limit_quota_names()?;
            if names.is_empty() {
                return Err(ApiError::bare(StatusCode::NOT_FOUND));
            }
            let mut out = Map::new();
            out.insert("keys".into(), json!(names));
            Ok(json_response(StatusCode::OK, &envelope(out, false)))
        }
        Endpoint::One(name) => {
            allow_logical(
                request,
                &[Operation::Read, Operation::Update, Operation::Delete],
            )?;
            match request.operation {
                Operation::Update => {
                    core.write_rate_limit_quota(name, data).await?;
                    Ok(no_content())
                }
                Operation::Delete => {
                    core.delete_rate_limit_quota(name).await?;
                    Ok(no_content())
                }
                _ => {
                    let Some(quota) = core.rate_limit_quota(name)? else {
                        return Err(ApiError::bare(StatusCode::NOT_FOUND));
                    };
                    let mut out = Map::new();
                    out.insert("type".into(), json!("rate-limit"));
                    out.insert("name".into(), json!(quota.name));
                    out.insert("path".into(), json!(quota.path()));
                    out.insert("role".into(), json!(quota.role));
                    out.insert("rate".into(), go_float(quota.rate));
                    out.insert("interval".into(), json!(quota.interval_secs));
                    out.insert("block_interval".into(), json!(quota.block_interval_secs));
                    out.insert("inheritable".into(), json!(quota.inheritable));
                    Ok(json_response(StatusCode::OK, &envelope(out, false)))
                }
            }
        }
    }
}

/// A float as Go's JSON encoder writes it: a whole number without a fraction.
fn go_float(value: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53: integers up to here are exact
    if value.fract() == 0.0 && value.abs() < EXACT {
        // Exact by the check above.
        json!(value as i64)
    } else {
        json!(value)
    }
}

/// The rate-limit check, before the body is parsed (as OpenBao's HTTP wrapper does): a 429
/// to send, or the headers to add to the response when they are enabled. `role` is the login
/// role resolved from the body when the mount has role quotas (empty otherwise).
pub enum Checked {
    /// The 429, and its error message (for the audit line).
    Refused(Response, String),
    Allowed(Option<HeaderMap>),
}

pub fn check(state: &AppState, path: &str, client: Option<IpAddr>, role: &str) -> Checked {
    // Without an address (in-process calls) there is no bucket to charge; OpenBao refuses
    // such a request with a 500, which no real listener can produce.
    let Some(client) = client else {
        return Checked::Allowed(None);
    };
    let Some(outcome) = state.core.check_rate_limit(path, client, role) else {
        return Checked::Allowed(None);
    };
    // Every rate-limit header, Retry-After included, only with
    // `enable_rate_limit_response_headers`, as in OpenBao.
    let headers = outcome.response_headers.then(|| headers(&outcome));
    if outcome.decision.allowed {
        return Checked::Allowed(headers);
    }
    let message = format!("request path {path:?}: rate limit quota exceeded");
    let mut response =
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, message.clone()).into_response();
    if let Some(headers) = headers {
        response.headers_mut().extend(headers);
    }
    Checked::Refused(response, message)
}

/// OpenBao's headers: the bucket's numbers whenever it was consulted, and `Retry-After` with
/// a refusal; a client already blocked gets `Retry-After` alone.
fn headers(outcome: &QuotaOutcome) -> HeaderMap {
    let d = &outcome.decision;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: u64| {
        headers.insert(name, HeaderValue::from(value));
    };
    if !d.blocked {
        set("x-ratelimit-limit", d.limit);
        set("x-ratelimit-remaining", d.remaining);
        set("x-ratelimit-reset", d.reset_secs);
    }
    if !d.allowed {
        set("retry-after", d.retry_after_secs);
    }
    headers
}
