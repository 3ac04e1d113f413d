//! `sys/policy` (legacy) and `sys/policies/acl`: ACL policy CRUD.

use axum::response::Response;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tresor_core::params;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{ApiRequest, Operation};
use crate::response::{envelope, json_response, no_content};
use crate::sys::allow_logical;

pub async fn list_legacy(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    allow_logical(request, &[Operation::Read, Operation::List])?;
    let names = state.core.active()?.policies.list().await?;
    let mut data = Map::new();
    data.insert("keys".into(), json!(names));
    data.insert("policies".into(), json!(names));
    Ok(json_response(http::StatusCode::OK, &envelope(data, true)))
}

pub async fn list_acl(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    allow_logical(request, &[Operation::List])?;
    let names = state.core.active()?.policies.list().await?;
    let mut data = Map::new();
    data.insert("keys".into(), json!(names));
    Ok(json_response(http::StatusCode::OK, &envelope(data, false)))
}

/// Policy names are case-insensitive: Vault lowercases them.
fn name_of(path: &str, prefix: &str) -> Result<String, ApiError> {
    let name = path.trim_start_matches(prefix).trim_end_matches('/');
    if name.is_empty() || name.contains('/') {
        return Err(ApiError::bad_request("policy name must be provided"));
    }
    Ok(name.to_lowercase())
}

fn policy_text(data: &Map<String, Value>, legacy: bool) -> Result<String, ApiError> {
    let text = params::string(data, "policy")?
        .or(if legacy {
            params::string(data, "rules")?
        } else {
            None
        })
        .ok_or_else(|| ApiError::bad_request("'policy' parameter not supplied or empty"))?;
    Ok(text)
}

pub async fn legacy(
    state: &AppState,
    request: &ApiRequest,
    data: &Map<String, Value>,
) -> Result<Response, ApiError> {
    let name = name_of(&request.path, "sys/policy/")?;
    let store = &state.core.active()?.policies;
    match request.operation {
        Operation::Read => {
            let stored = store
                .read(&name)
                .await?
                .ok_or_else(|| ApiError::bare(http::StatusCode::NOT_FOUND))?;
            let mut out = Map::new();
            out.insert("name".into(), json!(stored.name));
            out.insert("rules".into(), json!(stored.policy));
            Ok(json_response(http::StatusCode::OK, &envelope(out, true)))
        }
        Operation::Update => {
            store.write(&name, &policy_text(data, true)?, None).await?;
            Ok(no_content())
        }
        Operation::Delete => {
            store.delete(&name).await?;
            Ok(no_content())
        }
        _ => Err(ApiError::unsupported_operation()),
    }
}

pub async fn acl(
    state: &AppState,
    request: &ApiRequest,
    data: &Map<String, Value>,
) -> Result<Response, ApiError> {
    let name = name_of(&request.path, "sys/policies/acl/")?;
    let store = &state.core.active()?.policies;
    match request.operation {
        Operation::Read => {
            let stored = store
                .read(&name)
                .await?
                .ok_or_else(|| ApiError::bare(http::StatusCode::NOT_FOUND))?;
            let modified =
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(stored.modified_ns))
                    .ok()
                    .and_then(|t| t.format(&Rfc3339).ok())
                    .unwrap_or_default();
            let mut out = Map::new();
            out.insert("allow_slashes_in_identity_templates".into(), json!(false));
            out.insert("allow_wildcards_in_identity_templates".into(), json!(false));
            out.insert("cas_required".into(), json!(stored.cas_required));
            out.insert("modified".into(), json!(modified));
            out.insert("name".into(), json!(stored.name));
            out.insert("policy".into(), json!(stored.policy));
            out.insert("version".into(), json!(stored.version));
            Ok(json_response(http::StatusCode::OK, &envelope(out, false)))
        }
        Operation::Update => {
            let cas = params::integer(data, "cas")?;
            let cas = match cas {
                None | Some(-1) => None,
                Some(v) => Some(
                    u64::try_from(v)
                        .map_err(|_| ApiError::bad_request("cas must not be negative"))?,
                ),
            };
            store.write(&name, &policy_text(data, false)?, cas).await?;
            Ok(no_content())
        }
        Operation::Delete => {
            store.delete(&name).await?;
            Ok(no_content())
        }
        _ => Err(ApiError::unsupported_operation()),
    }
}
