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
    let mut paths = params::string_list(data, "paths")?.unwrap_or_default();
    if let Some(p) = params::string(data, "path")? {
        paths.push(p);
    }
    if paths.is_empty() {
        return Err(ApiError::bad_request("missing paths"));
    }
    let active = state.core.active()?;
    let policies = match request.path.as_str() {
        "sys/capabilities-self" => caller.resolved.entry.policies.clone(),
        "sys/capabilities" => {
            let token = params::string(data, "token")?.unwrap_or_default();
            let found = active
                .tokens
                .lookup(&token)
                .await?
                .ok_or_else(ApiError::permission_denied)?;
            found.entry.policies.clone()
        }
        _ => {
            let accessor = params::string(data, "accessor")?.unwrap_or_default();
            let found = active
                .tokens
                .lookup_accessor(&accessor)
                .await?
                .ok_or_else(|| ApiError::bad_request("invalid accessor"))?;
            found.entry.policies.clone()
        }
    };
    let acl = active.policies.acl(&policies).await?;
    let mut out = Map::new();
    for path in &paths {
        let path = path.trim_start_matches('/');
        out.insert(path.to_owned(), json!(acl.capabilities(path)));
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
