//! `sys/capabilities`, `sys/capabilities-self`, `sys/capabilities-accessor`: what a token may
//! do on given paths.

use axum::response::Response;
use serde_json::{Map, Value, json};
use tresor_core::authz::Caller;
use tresor_core::params;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{ApiRequest, Operation};
use crate::response::{envelope, json_response};
use crate::sys::allow_logical;

pub async fn handle(
    state: &AppState,
    request: &ApiRequest,
    caller: &Caller,
    data: &Map<String, Value>,
) -> Result<Response, ApiError> {
    allow_logical(request, &[Operation::Update])?;
    // `paths` wins over `path`; either may be a list or a comma-separated string.
    let paths = match params::string_list(data, "paths")? {
        Some(p) if !p.is_empty() => p,
        _ => params::string_list(data, "path")?.unwrap_or_default(),
    };
    if paths.is_empty() {
        return Err(ApiError::bad_request("paths must be supplied"));
    }
    let active = state.core.active()?;
    let policies = match request.path.as_str() {
        "sys/capabilities-self" => caller.resolved.entry.policies.clone(),
        "sys/capabilities" => {
            let token = params::string(data, "token")?.unwrap_or_default();
            if token.is_empty() {
                return Err(ApiError::new(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "1 error occurred:\n\t* no token found\n\n",
                ));
            }
            let found =
                active.tokens.lookup(&token).await?.ok_or_else(|| {
                    ApiError::bad_request("1 error occurred:\n\t* invalid token\n\n")
                })?;
            found.entry.policies.clone()
        }
        _ => {
            let accessor = params::string(data, "accessor")?.unwrap_or_default();
            if accessor.is_empty() {
                return Err(ApiError::bad_request("missing accessor"));
            }
            let found = active
                .tokens
                .lookup_accessor(&accessor)
                .await?
                .ok_or_else(|| {
                    ApiError::bad_request("1 error occurred:\n\t* invalid accessor\n\n")
                })?;
            found.entry.policies.clone()
        }
    };
    let acl = active.policies.acl(&policies).await?;
    let mut out = Map::new();
    // Answers are keyed by the path as given; the ACL ignores a leading slash.
    for path in &paths {
        out.insert(
            path.clone(),
            json!(acl.capabilities(path.trim_start_matches('/'))),
        );
    }
    if paths.len() == 1
        && let Some(first) = paths.first()
    {
        out.insert(
            "capabilities".into(),
            json!(acl.capabilities(first.trim_start_matches('/'))),
        );
    }
    Ok(json_response(http::StatusCode::OK, &envelope(out, true)))
}
