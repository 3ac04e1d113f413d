//! The one entry point for `/v1/…`: the order of checks is Vault's.
//!
//! 0. Rate-limit quotas (`sys::quotas::check`), from the URI and the client address (and the
//!    login role in the body, for auth mounts with role quotas).
//! 1. Unauthenticated `sys/` endpoints (health, seal-status, init, unseal, leader, generate-root,
//!    and the legacy `sys/rekey/*` where the listener enables them) answer first, sealed or not.
//!    On an HA standby, everything but the endpoints about this node (`STANDBY_LOCAL`) is
//!    forwarded to the active node (`forward`), or redirected to it with a 307.
//! 2. Everything else answers 503 while sealed.
//! 3. Then the token and the ACL are checked (403), inside the core, for `sys/` and logical
//!    paths alike.
//! 4. Then the path is routed; an unknown path is a 404.

use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::AppState;
use crate::error::ApiError;
use crate::request::ApiRequest;
use crate::response::no_content;

use crate::sys;

pub async fn handle(State(state): State<AppState>, request: http::Request<Body>) -> Response {
    // Every line logged while serving the request carries its id; the id is also its audit id
    // and its envelope's `request_id`.
    let id = crate::response::new_request_id();
    let span = tracing::info_span!("request", id = %id);
    serve(state, request, id).instrument(span).await
}

async fn serve(state: AppState, mut request: http::Request<Body>, id: String) -> Response {
    let started = Instant::now();
    // A request a standby forwarded: the client's address is the one the standby sealed, if
    // this node's barrier opens it (only nodes of this cluster can make one); the header
    // itself goes no further.
    if request
        .headers()
        .contains_key(crate::forward::CLIENT_HEADER)
    {
        let client = if state.core.is_standby() {
            None
        } else {
            crate::forward::forwarded_client(&state, &request)
        };
        request.headers_mut().remove(crate::forward::CLIENT_HEADER);
        if let Some(client) = client {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(client));
        }
    }
    let _in_flight = crate::observe::register(&state, &id, &request);
    // Rate-limit quotas apply before anything else, as in OpenBao: from the URI alone, or,
    // when the request's auth mount has role quotas, with the login role read from its body.
    let (quota_headers, request) = match crate::request::quota_path(&request) {
        Some((path, client)) => {
            let (request, role) = if state.core.quota_needs_role(&path) {
                match login_role(&state, &path, request).await {
                    Ok(resolved) => resolved,
                    Err(err) => return err.into_response(),
                }
            } else {
                (request, String::new())
            };
            match sys::quotas::check(&state, &path, client, &role) {
                sys::quotas::Checked::Refused(response, message) => {
                    audit_refusal(&state, request, id, &message).await;
                    return response;
                }
                sys::quotas::Checked::Allowed(headers) => (headers, request),
            }
        }
        None => (None, request),
    };
    let mut response = answer(&state, request, id, started).await;
    if let Some(headers) = quota_headers {
        response.headers_mut().extend(headers);
    }
    response
}

/// `enable_rate_limit_audit_logging`: a request refused by a quota leaves a request line with
/// no caller and the refusal as its error, as in OpenBao. The 429 is decided already, so a
/// device that cannot record the line is logged, not answered (OpenBao only warns too).
async fn audit_refusal(state: &AppState, request: http::Request<Body>, id: String, error: &str) {
    if !state
        .core
        .quota_config()
        .is_ok_and(|c| c.enable_rate_limit_audit_logging)
    {
        return;
    }
    let Ok(parsed) = ApiRequest::parse(request, state.max_request_size).await else {
        return;
    };
    let Ok(operation) = parsed.sdk_operation() else {
        return;
    };
    let scope = tresor_core::audit::Scope::new(id, None, parsed.remote_socket);
    let data = parsed.data().ok();
    if let Err(err) = state
        .core
        .audit_unlogged_request(&scope, &parsed.path, operation, data.as_ref(), Some(error))
        .await
    {
        tracing::warn!(
            error = %err,
            "failed to audit log a request refused by a rate limit quota"
        );
    }
}

/// Reads the body (bounded as every body is: 413 beyond `max_request_size`) to resolve the
/// login role for role quotas, and puts it back for the request's own parsing. A body that is
/// not a JSON object resolves no role, as in OpenBao.
async fn login_role(
    state: &AppState,
    path: &str,
    request: http::Request<Body>,
) -> Result<(http::Request<Body>, String), ApiError> {
    let (parts, body) = request.into_parts();
    let bytes = crate::request::read_bounded(body, state.max_request_size).await?;
    let role = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(data)) => state.core.quota_login_role(path, &data).await,
        _ => String::new(),
    };
    Ok((http::Request::from_parts(parts, Body::from(bytes)), role))
}

async fn answer(
    state: &AppState,
    request: http::Request<Body>,
    id: String,
    started: Instant,
) -> Response {
    let listener = request
        .extensions()
        .get::<crate::ListenerOptions>()
        .copied()
        .unwrap_or_default();
    let uri = request.uri().clone();
    // An HA standby keeps what it needs to send the request on (only a standby pays for it).
    let captured = state.core.is_standby().then(|| crate::forward::Captured {
        method: request.method().clone(),
        uri: uri.clone(),
        headers: request.headers().clone(),
    });
    let request = match ApiRequest::parse(request, state.max_request_size).await {
        Ok(r) => r,
        Err(err) => return err.into_response(),
    };
    if state.core.is_standby() && !stays_local(&request, listener) {
        // An HA standby serves only the unauthenticated sys endpoints that describe or
        // change this node; the active node answers the rest (and audits them).
        return match captured {
            Some(captured) => {
                let ApiRequest {
                    body,
                    remote_socket,
                    ..
                } = request;
                crate::forward::standby(state, captured, body, remote_socket).await
            }
            // Became a standby while the request was read: Vault's 307.
            None => crate::forward::redirect_to_leader(state, &uri),
        };
    }
    if is_raw(&request, listener) {
        // Raw unauthenticated endpoints are not audited, as in OpenBao.
        return match route(state, request, listener).await {
            Ok(response) => response,
            Err(err) => err.into_response(),
        };
    }
    let operation = request.operation;
    let scope = tresor_core::audit::Scope::new(id, request.token.clone(), request.remote_socket);
    let seen = crate::audit::Seen {
        path: request.path.clone(),
        operation: request.sdk_operation().ok(),
        list: request.operation == crate::request::Operation::List,
        wrapped: request.wrap_ttl.is_some(),
    };
    let wrap = request.wrap_ttl.map(|ttl| (ttl, request.path.clone()));
    let answer = scope
        .clone()
        .run(async {
            match (route(state, request, listener).await, wrap) {
                (Ok(response), Some((ttl, path))) => {
                    crate::wrap::wrap(state, response, ttl, &path).await
                }
                (other, _) => other,
            }
        })
        .await;
    let response = crate::audit::finish(state, &scope, &seen, answer).await;
    crate::observe::record(
        state,
        &seen.path,
        operation,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// OpenBao serves these with raw HTTP handlers, outside its logical router (and its audit).
const RAW: [&str; 14] = [
    "sys/health",
    "sys/seal-status",
    "sys/init",
    "sys/unseal",
    "sys/seal",
    "sys/leader",
    "sys/generate-root/attempt",
    "sys/generate-root/update",
    "sys/rekey/init",
    "sys/rekey/update",
    "sys/rekey/verify",
    "sys/rekey-recovery-key/init",
    "sys/rekey-recovery-key/update",
    "sys/rekey-recovery-key/verify",
];

/// What an HA standby answers itself, as OpenBao's standbys do: the endpoints about this
/// node and its seal. The other raw endpoints (generate-root, the legacy rekey) work on the
/// active node's state, so OpenBao forwards them (`handleForwardIfStandby`), and so does Tresor.
const STANDBY_LOCAL: [&str; 6] = [
    "sys/health",
    "sys/seal-status",
    "sys/init",
    "sys/unseal",
    "sys/seal",
    "sys/leader",
];

fn stays_local(request: &ApiRequest, listener: crate::ListenerOptions) -> bool {
    let bare = if request.operation == crate::request::Operation::List {
        request.path.trim_end_matches('/')
    } else {
        request.path.as_str()
    };
    STANDBY_LOCAL.contains(&bare) || unauthenticated(bare, listener)
}

fn is_raw(request: &ApiRequest, listener: crate::ListenerOptions) -> bool {
    let bare = if request.operation == crate::request::Operation::List {
        request.path.trim_end_matches('/')
    } else {
        request.path.as_str()
    };
    RAW.contains(&bare) || unauthenticated(bare, listener)
}

/// `sys/metrics` and `sys/in-flight-req` on a listener that serves them without a token: raw
/// handlers then, as in OpenBao (not audited, answered sealed or not).
fn unauthenticated(path: &str, listener: crate::ListenerOptions) -> bool {
    (path == "sys/metrics" && listener.unauthenticated_metrics)
        || (path == "sys/in-flight-req" && listener.unauthenticated_in_flight)
}

async fn route(
    state: &AppState,
    mut request: ApiRequest,
    listener: crate::ListenerOptions,
) -> Result<Response, ApiError> {
    // Raw endpoints: a LIST method is a 405 there, but `?list=true` is simply ignored.
    // Only a LIST gained its trailing slash from parsing; `sys/health/` asked as such is not the
    // raw endpoint (OpenBao sends it to the logical sys backend).
    let bare = if request.operation == crate::request::Operation::List {
        request.path.trim_end_matches('/')
    } else {
        request.path.as_str()
    };
    if unauthenticated(bare, listener) {
        // As for the other raw endpoints, `?list=true` is not a LIST here.
        if request.list_from_query {
            request.operation = crate::request::Operation::Read;
        }
        return if bare == "sys/metrics" {
            sys::metrics::unauthenticated(state, &request)
        } else {
            sys::in_flight::unauthenticated(state, &request)
        };
    }
    if RAW.contains(&bare) {
        let legacy_rekey =
            bare.starts_with("sys/rekey/") || bare.starts_with("sys/rekey-recovery-key/");
        if bare.starts_with("sys/generate-root/") && !listener.unauthed_generate_root {
            // OpenBao ≥ 2.5.3 registers no raw handler then: its logical sys backend
            // answers, without asking for a token (the paths are unauthenticated there).
            state.core.active()?;
            return Err(ApiError::new(
                http::StatusCode::METHOD_NOT_ALLOWED,
                "unsupported operation",
            ));
        }
        if legacy_rekey && !listener.unauthed_rekey {
            // OpenBao ≥ 2.5 registers no raw handler then: its logical sys backend answers,
            // without asking for a token, with a plain (not multi-error) message. It knows
            // `sys/rekey/*` (405) but has no `sys/rekey-recovery-key/*` path at all (404).
            state.core.active()?;
            if bare.starts_with("sys/rekey-recovery-key/") {
                return Err(ApiError::new(
                    http::StatusCode::NOT_FOUND,
                    "unsupported path",
                ));
            }
            return Err(ApiError::new(
                http::StatusCode::METHOD_NOT_ALLOWED,
                "unsupported operation",
            ));
        }
        if request.list_from_query {
            request.operation = crate::request::Operation::Read;
        }
        request.path = bare.to_owned();
        if legacy_rekey {
            sys::rekey::legacy_patch_check(&request)?;
        }
        return match request.path.as_str() {
            "sys/health" => sys::health::handle(state, &request),
            "sys/seal-status" => sys::seal::status(state, &request).await,
            "sys/init" => sys::init::handle(state, &request).await,
            "sys/unseal" => sys::seal::unseal(state, &request).await,
            "sys/leader" => sys::leader::handle(state, &request),
            "sys/generate-root/attempt" => sys::generate_root::attempt(state, &request).await,
            "sys/generate-root/update" => sys::generate_root::update(state, &request).await,
            "sys/rekey/init" | "sys/rekey-recovery-key/init" => {
                sys::rekey::legacy_init(state, &request).await
            }
            "sys/rekey/update" | "sys/rekey-recovery-key/update" => {
                sys::rekey::legacy_update(state, &request).await
            }
            "sys/rekey/verify" | "sys/rekey-recovery-key/verify" => {
                sys::rekey::legacy_verify(state, &request).await
            }
            _ => sys::seal::seal(state, &request).await,
        };
    }
    if matches!(
        request.operation,
        crate::request::Operation::Update | crate::request::Operation::Patch
    ) && request.path.ends_with('/')
    {
        return Err(ApiError::bad_request(
            "cannot write to a path ending in '/'",
        ));
    }
    if let Some(which) = sys::wrapping::endpoint(&request.path) {
        return sys::wrapping::handle(state, &request, which).await;
    }
    if request.path == "sys" || request.path.starts_with("sys/") {
        return sys::authenticated(state, &request).await;
    }
    if request.operation == crate::request::Operation::Patch {
        // OpenBao checks this in its HTTP layer, before routing, for every PATCH.
        let ct = request.content_type.as_deref().unwrap_or_default();
        let media = ct.split(';').next().unwrap_or_default().trim();
        if !media.eq_ignore_ascii_case("application/merge-patch+json") {
            return Err(ApiError::new(
                http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "PATCH requires Content-Type of application/merge-patch+json, provided {ct}"
                ),
            ));
        }
    }
    let logical = tresor_core::logical::LogicalRequest {
        operation: request.sdk_operation()?,
        path: request.path.clone(),
        data: request.data()?,
        query: request.query.clone(),
        content_type: request.content_type.clone(),
        token: request.token.clone(),
        remote_addr: request.remote_addr,
        wrap_ttl: request.wrap_ttl,
    };
    let patch = logical.operation == tresor_sdk::engine::Operation::Patch;
    let outcome = match state.core.handle_logical(logical).await {
        // OpenBao answers a PATCH of something missing with a bare 404 and no body at all.
        Err(tresor_core::CoreError::NotFound) if patch => {
            return Ok(crate::response::head_only(http::StatusCode::NOT_FOUND));
        }
        other => other?,
    };
    match outcome {
        Some(response) => {
            let answer = crate::response::logical_response_ref(&response, &request.path);
            crate::audit::stash(response);
            Ok(answer)
        }
        None => Ok(no_content()),
    }
}
