//! `sys/policy` (legacy) and `sys/policies/acl`: ACL policy CRUD.

use axum::response::Response;
use base64::Engine;
use serde_json::{Map, Value, json};
use tresor_core::params;
use tresor_core::policy_store::StoredPolicy;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{ApiRequest, Operation};
use crate::response::{envelope, json_response, logical_response, no_content};
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

/// Policy names are case-insensitive: Vault lowercases them. A name may contain `/`.
fn name_of(path: &str, prefix: &str) -> Result<String, ApiError> {
    let name = path.trim_start_matches(prefix).trim_end_matches('/');
    if name.is_empty() {
        return Err(ApiError::bad_request("policy name must be provided"));
    }
    Ok(name.to_lowercase())
}

/// The policy text: `policy` (or legacy `rules`), which may also arrive base64-encoded.
/// Returns the text and whether the deprecated `rules` field was used.
fn policy_text(data: &Map<String, Value>, legacy: bool) -> Result<(String, bool), ApiError> {
    let given = |key: &str| -> Result<Option<String>, ApiError> {
        Ok(params::string(data, key)?.filter(|t| !t.is_empty()))
    };
    let (text, from_rules) = match given("policy")? {
        Some(t) => (t, false),
        None if legacy => match given("rules")? {
            Some(t) => (t, true),
            None => {
                return Err(ApiError::bad_request(
                    "'policy' parameter not supplied or empty",
                ));
            }
        },
        None => {
            return Err(ApiError::bad_request(
                "'policy' parameter not supplied or empty",
            ));
        }
    };
    // As in Vault: a body that is valid base64 of UTF-8 text is decoded first.
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    Ok((decoded.unwrap_or(text), from_rules))
}

fn rfc3339(ns: i64) -> String {
    tresor_sdk::timestamp::rfc3339_nano(ns)
}

/// The fields OpenBao returns for a stored policy (the built-in `root` has no `modified`).
fn policy_fields(stored: &StoredPolicy, text_key: &str) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("allow_slashes_in_identity_templates".into(), json!(false));
    out.insert("allow_wildcards_in_identity_templates".into(), json!(false));
    out.insert("cas_required".into(), json!(stored.cas_required));
    if stored.name != "root" {
        out.insert("modified".into(), json!(rfc3339(stored.modified_ns)));
    }
    out.insert("name".into(), json!(stored.name));
    out.insert(text_key.into(), json!(stored.policy));
    out.insert("version".into(), json!(stored.version));
    out
}

async fn write(
    state: &AppState,
    request: &ApiRequest,
    data: &Map<String, Value>,
    name: &str,
    legacy: bool,
) -> Result<Response, ApiError> {
    let store = &state.core.active()?.policies;
    let (text, from_rules) = policy_text(data, legacy)?;
    let cas = if legacy {
        None
    } else {
        params::integer(data, "cas")?
    };
    store.write(name, &text, cas).await?;
    if from_rules {
        let response = tresor_core::logical::LogicalResponse {
            warnings: vec!["'rules' is deprecated, please use 'policy' instead".to_owned()],
            ..Default::default()
        };
        return Ok(logical_response(response, &request.path));
    }
    Ok(no_content())
}

/// Where a policy endpoint lives and how it speaks: the legacy `sys/policy/:name` calls the
/// text `rules` and mirrors data at the top level; `sys/policies/acl/:name` does neither.
#[derive(Clone, Copy)]
struct Flavour {
    prefix: &'static str,
    text_key: &'static str,
    legacy: bool,
}

const LEGACY: Flavour = Flavour {
    prefix: "sys/policy/",
    text_key: "rules",
    legacy: true,
};
const ACL: Flavour = Flavour {
    prefix: "sys/policies/acl/",
    text_key: "policy",
    legacy: false,
};

async fn one(
    state: &AppState,
    request: &ApiRequest,
    data: &Map<String, Value>,
    flavour: Flavour,
) -> Result<Response, ApiError> {
    let name = name_of(&request.path, flavour.prefix)?;
    let store = &state.core.active()?.policies;
    match request.operation {
        Operation::Read => {
            let stored = store
                .read(&name)
                .await?
                .ok_or_else(|| ApiError::bare(http::StatusCode::NOT_FOUND))?;
            let body = envelope(policy_fields(&stored, flavour.text_key), flavour.legacy);
            Ok(json_response(http::StatusCode::OK, &body))
        }
        Operation::Update => write(state, request, data, &name, flavour.legacy).await,
        Operation::Delete => {
            store.delete(&name).await?;
            Ok(no_content())
        }
        _ => Err(ApiError::unsupported_operation()),
    }
}

pub async fn legacy(
    state: &AppState,
    request: &ApiRequest,
    data: &Map<String, Value>,
) -> Result<Response, ApiError> {
    one(state, request, data, LEGACY).await
}

pub async fn acl(
    state: &AppState,
    request: &ApiRequest,
    data: &Map<String, Value>,
) -> Result<Response, ApiError> {
    one(state, request, data, ACL).await
}
