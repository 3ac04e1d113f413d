//! `sys/policies/password/*`: password policy CRUD, LIST and `…/:name/generate`.
//!
//! Paths as OpenBao routes them: `sys/policies/password/` (LIST), `…/<name>/generate` (GET),
//! `…/<name>` (PUT/POST, GET, DELETE); a name may contain `/` and is kept as written (no
//! lowercasing, unlike ACL policies).

use axum::response::Response;
use serde_json::{Map, Value, json};
use tresor_core::password_policy::Generated;
use tresor_core::{CoreError, params};

use crate::AppState;
use crate::error::ApiError;
use crate::request::{ApiRequest, Operation};
use crate::response::{envelope, json_response, no_content};
use crate::sys::allow_logical;

pub const PREFIX: &str = "sys/policies/password/";

/// Routes a path under [`PREFIX`] (or the prefix without its slash).
pub async fn handle(
    state: &AppState,
    request: &ApiRequest,
    data: &Map<String, Value>,
) -> Result<Response, ApiError> {
    let rest = request
        .path
        .strip_prefix(PREFIX)
        .unwrap_or_default()
        .to_owned();
    if rest.is_empty() {
        return list(state, request).await;
    }
    if let Some(name) = rest.strip_suffix("/generate")
        && !name.is_empty()
    {
        return generate(state, request, name).await;
    }
    one(state, request, data, &rest).await
}

async fn list(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    allow_logical(request, &[Operation::List])?;
    let names = state.core.active()?.password_policies.list().await?;
    if names.is_empty() {
        return Err(ApiError::bare(http::StatusCode::NOT_FOUND));
    }
    let mut out = Map::new();
    out.insert("keys".into(), json!(names));
    Ok(json_response(http::StatusCode::OK, &envelope(out, false)))
}

/// OpenBao answers these endpoints with coded errors, worded as one-item Go multi-errors.
fn coded(status: http::StatusCode, message: &str) -> ApiError {
    ApiError::new(status, format!("1 error occurred:\n\t* {message}\n\n"))
}

fn missing() -> ApiError {
    coded(http::StatusCode::NOT_FOUND, "policy does not exist")
}

/// The core's refusals (`invalid password policy: …`) as OpenBao's coded 400s.
fn refusal(err: CoreError) -> ApiError {
    match err {
        CoreError::InvalidRequest(m) => coded(http::StatusCode::BAD_REQUEST, &m),
        other => other.into(),
    }
}

async fn generate(
    state: &AppState,
    request: &ApiRequest,
    name: &str,
) -> Result<Response, ApiError> {
    allow_logical(request, &[Operation::Read])?;
    let store = &state.core.active()?.password_policies;
    match store.generate(name).await.map_err(refusal)? {
        Generated::Missing => Err(missing()),
        Generated::Password(password) => {
            let mut out = Map::new();
            out.insert("password".into(), json!(password.expose()));
            Ok(json_response(http::StatusCode::OK, &envelope(out, false)))
        }
    }
}

async fn one(
    state: &AppState,
    request: &ApiRequest,
    data: &Map<String, Value>,
    name: &str,
) -> Result<Response, ApiError> {
    let store = &state.core.active()?.password_policies;
    match request.operation {
        Operation::Read => {
            let text = store
                .read(name)
                .await
                .map_err(refusal)?
                .ok_or_else(missing)?;
            let mut out = Map::new();
            out.insert("policy".into(), json!(text));
            Ok(json_response(http::StatusCode::OK, &envelope(out, false)))
        }
        Operation::Update => {
            let text = params::string(data, "policy")?.unwrap_or_default();
            store.write(name, &text).await.map_err(refusal)?;
            Ok(no_content())
        }
        Operation::Delete => {
            store.delete(name).await.map_err(refusal)?;
            Ok(no_content())
        }
        _ => Err(ApiError::unsupported_operation()),
    }
}
