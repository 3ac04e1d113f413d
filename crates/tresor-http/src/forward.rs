//! Request forwarding: what an HA standby does with a request it does not answer itself.
//!
//! A standby proxies the request to the active node's `api_addr` over HTTP(S) and returns the
//! active node's answer unchanged (status, headers, body). OpenBao forwards over its cluster
//! port (gRPC with mutual TLS from certificates the cluster makes itself); Tresor sends the
//! request to the same API every client uses, so nothing else listens and the active node
//! serves a forwarded request exactly as a direct one (authorisation, audit, quotas).
//!
//! - The client's address: the standby adds it to `X-Forwarded-For`, and sends it sealed by
//!   the barrier ([`CLIENT_HEADER`], bound to the method and URI, valid 60 s). Only a node
//!   holding the cluster's keyring can make that header, so the active node takes the client
//!   address from it (for CIDR-bound tokens, quotas, audit) and from nothing else.
//! - Falls back to Vault's 307 (`respondStandby`) when forwarding is off (`disable_clustering`),
//!   when the client asked for it (`X-Vault-No-Request-Forwarding`), or when the request was
//!   forwarded to this node already (`X-Vault-Internal-No-Request-Forwarding`: no loops).
//! - Never hangs: connecting is bounded by the client the server builds, the whole exchange by
//!   [`FORWARD_TIMEOUT`], and a forward is abandoned as soon as this node stops seeing that
//!   node as the active one (it died, stepped down, or this node took over).
//! - Failures are Vault's `{"errors":[…]}`: 503 when the active node could not be reached
//!   (nothing was sent), 502 when the exchange broke after the request may have reached it,
//!   504 when it took longer than [`FORWARD_TIMEOUT`]. After a 502 or 504 a write may or may
//!   not have been applied.
//! - Tokens and bodies are never logged; a failure is logged with the active node's address.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};

use crate::AppState;
use crate::error::ApiError;

/// The longest a forwarded request may take, answer included: OpenBao's default
/// `max_request_duration`.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(90);
/// How often a forward in flight checks that its target is still the active node.
const LEADER_CHECK: Duration = Duration::from_millis(250);

/// Vault's client header asking a standby to redirect instead of forwarding.
const NO_FORWARDING: &str = "x-vault-no-request-forwarding";
/// OpenBao's internal header: a request that must not be forwarded again.
const INTERNAL_NO_FORWARDING: &str = "x-vault-internal-no-request-forwarding";
/// The client's address, sealed by the standby's barrier (base64url, no padding).
pub const CLIENT_HEADER: &str = "x-tresor-forwarded-client";

/// How a standby reaches the active node. Absent from [`AppState`] when forwarding is off.
#[derive(Debug, Clone)]
pub struct Forwarding {
    /// Built by the server: connect timeout, no redirects, the CA it trusts for an `https`
    /// `api_addr` (`ha_forwarding_tls_ca_cert`, else the system's roots).
    client: reqwest::Client,
}

impl Forwarding {
    pub fn new(client: reqwest::Client) -> Self {
        Self { client }
    }
}

/// What a standby keeps of a request before parsing it, to send it on.
#[derive(Debug)]
pub(crate) struct Captured {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
}

/// The standby's answer to a request it does not serve itself.
pub(crate) async fn standby(
    state: &AppState,
    captured: Captured,
    body: bytes::Bytes,
    client: Option<SocketAddr>,
) -> Response {
    let Some(leader) = state.core.leader_api_addr() else {
        return no_active_node();
    };
    let forwarding = match &state.forwarding {
        Some(f)
            if !captured.headers.contains_key(NO_FORWARDING)
                && !captured.headers.contains_key(INTERNAL_NO_FORWARDING) =>
        {
            f
        }
        _ => return redirect(&leader, &captured.uri),
    };
    let Some(target) = target(&leader, &captured.uri) else {
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the active node's api_addr is not a URL",
        )
        .into_response();
    };
    let headers = outgoing_headers(state, &captured, client);
    let send = forwarding
        .client
        .request(captured.method.clone(), target)
        .headers(headers)
        .body(body)
        .send();
    let exchange = async {
        let answer = send.await?;
        let status = answer.status();
        let headers = answer.headers().clone();
        let body = answer.bytes().await?;
        Ok::<_, reqwest::Error>((status, headers, body))
    };
    let outcome = tokio::select! {
        outcome = tokio::time::timeout(FORWARD_TIMEOUT, exchange) => outcome,
        () = leader_gone(state, &leader) => {
            tracing::warn!(active = %leader, "the active node changed while a request was forwarded to it");
            return failure(
                StatusCode::BAD_GATEWAY,
                format!("the active node {leader} stopped being active while the request was forwarded to it; the request may or may not have been applied"),
            );
        }
    };
    match outcome {
        Ok(Ok((status, headers, body))) => answer(status, &headers, body),
        Ok(Err(err)) if err.is_connect() => {
            tracing::warn!(active = %leader, error = %chain(&err), "cannot reach the active node to forward a request");
            failure(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "cannot reach the active node {leader} to forward the request: {}",
                    chain(&err)
                ),
            )
        }
        Ok(Err(err)) => {
            tracing::warn!(active = %leader, error = %chain(&err), "forwarding a request to the active node failed");
            failure(
                StatusCode::BAD_GATEWAY,
                format!(
                    "forwarding the request to the active node {leader} failed; it may or may not have been applied: {}",
                    chain(&err)
                ),
            )
        }
        Err(_) => {
            tracing::warn!(active = %leader, "the active node did not answer a forwarded request in time");
            failure(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "the active node {leader} did not answer the forwarded request within {} s; it may or may not have been applied",
                    FORWARD_TIMEOUT.as_secs()
                ),
            )
        }
    }
}

/// Resolves once this node no longer sees `leader` as the active node.
async fn leader_gone(state: &AppState, leader: &str) {
    loop {
        tokio::time::sleep(LEADER_CHECK).await;
        if !state.core.is_standby() || state.core.leader_api_addr().as_deref() != Some(leader) {
            return;
        }
    }
}

fn no_active_node() -> Response {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "no active Vault instance found",
    )
    .into_response()
}

fn failure(status: StatusCode, message: String) -> Response {
    ApiError::new(status, message).into_response()
}

/// An error and its causes on one line (reqwest's own message omits "connection refused").
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `scheme://authority` of the active node's `api_addr`, with the request's path and query.
fn target(leader: &str, uri: &Uri) -> Option<String> {
    let parsed = leader.parse::<Uri>().ok()?;
    let authority = parsed.authority()?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    Some(format!(
        "{}://{}{path}",
        parsed.scheme_str().unwrap_or("https"),
        authority.as_str()
    ))
}

/// Vault's answer of a standby that does not forward (`respondStandby`): 307 to the same
/// path and query on the active node's `api_addr`. A 307 keeps the method and body; hvac
/// (requests), vaultrs (reqwest) and the Go client follow it keeping `X-Vault-Token`.
pub(crate) fn redirect_to_leader(state: &AppState, uri: &Uri) -> Response {
    match state.core.leader_api_addr() {
        Some(leader) => redirect(&leader, uri),
        None => no_active_node(),
    }
}

fn redirect(leader: &str, uri: &Uri) -> Response {
    let Some(location) = target(leader, uri) else {
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the active node's api_addr is not a URL",
        )
        .into_response();
    };
    let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
    match HeaderValue::from_str(&location) {
        Ok(location) => {
            response
                .headers_mut()
                .insert(http::header::LOCATION, location);
            response
        }
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the redirect location is not a valid header",
        )
        .into_response(),
    }
}

/// Headers that belong to one connection (RFC 9110 §7.6.1), and those the HTTP client sets
/// itself: never copied either way.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

/// The client's headers (token included: the active node authorises the request), minus the
/// connection's own, plus `X-Forwarded-For`, the sealed client address and the no-loop mark.
fn outgoing_headers(
    state: &AppState,
    captured: &Captured,
    client: Option<SocketAddr>,
) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(captured.headers.len() + 3);
    for (name, value) in &captured.headers {
        if hop_by_hop(name) || name.as_str() == "x-forwarded-for" || name.as_str() == CLIENT_HEADER
        {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    if let Some(client) = client {
        let earlier: Vec<&str> = captured
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let mut chain = earlier.join(", ");
        if !chain.is_empty() {
            chain.push_str(", ");
        }
        chain.push_str(&client.ip().to_string());
        if let Ok(value) = HeaderValue::from_str(&chain) {
            headers.insert("x-forwarded-for", value);
        }
        let uri = captured.uri.path_and_query().map_or("/", |p| p.as_str());
        if let Some(sealed) =
            state
                .core
                .seal_forwarded_client(client, captured.method.as_str(), uri)
            && let Ok(value) = HeaderValue::from_str(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed),
            )
        {
            headers.insert(CLIENT_HEADER, value);
        }
    }
    headers.insert(INTERNAL_NO_FORWARDING, HeaderValue::from_static("true"));
    headers
}

/// The active node's answer as it came: status, headers (but the connection's own), body.
fn answer(status: StatusCode, headers: &HeaderMap, body: bytes::Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let out = response.headers_mut();
    for (name, value) in headers {
        if !hop_by_hop(name) {
            out.append(name.clone(), value.clone());
        }
    }
    response
}

/// On the node that serves a request: the client address a standby forwarded it for, when
/// the request carries a sealed address this cluster's barrier opens, for this method and
/// URI, made within the last minute. `None` otherwise (the connection's address stands).
pub(crate) fn forwarded_client(
    state: &AppState,
    request: &http::Request<Body>,
) -> Option<SocketAddr> {
    let value = request.headers().get(CLIENT_HEADER)?.to_str().ok()?;
    let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value)
        .ok()?;
    let uri = request.uri().path_and_query().map_or("/", |p| p.as_str());
    state
        .core
        .open_forwarded_client(&sealed, request.method().as_str(), uri)
}
