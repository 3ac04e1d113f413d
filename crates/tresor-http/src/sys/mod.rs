//! Handlers for the `sys/` backend.

pub mod audit;
pub mod capabilities;
pub mod config_state;
pub mod generate_root;
pub mod health;
pub mod host_info;
pub mod in_flight;
pub mod init;
pub mod keys;
pub mod leader;
pub mod leases;
pub mod metrics;
pub mod mounts;
pub mod password_policy;
pub mod policy;
pub mod quotas;
pub mod rekey;
pub mod seal;
pub mod wrapping;

use axum::response::Response;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{ApiRequest, Operation};

/// 405 unless the request's operation is one of `allowed` (raw handlers: empty error list).
pub(crate) fn allow(request: &ApiRequest, allowed: &[Operation]) -> Result<(), ApiError> {
    if allowed.contains(&request.operation) {
        Ok(())
    } else {
        Err(ApiError::method_not_allowed())
    }
}

/// 405 unless the operation is one of `allowed`, worded as OpenBao's logical sys backend does.
pub(crate) fn allow_logical(request: &ApiRequest, allowed: &[Operation]) -> Result<(), ApiError> {
    if allowed.contains(&request.operation) {
        Ok(())
    } else {
        Err(ApiError::unsupported_operation())
    }
}

/// Every `sys/` path that needs a token: authorised by the core's ACL first (with `sudo` where
/// Vault requires it), then routed.
pub async fn authenticated(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let path = request.path.as_str();
    let token = request.token.as_ref().map(|t| t.expose());
    if let Some(rest) = path.strip_prefix("sys/internal/ui/mounts") {
        // Vault serves this to any valid token and filters by what the token may reach.
        return mounts::ui_mounts(state, request, token, rest.trim_start_matches('/')).await;
    }
    let op = request.sdk_operation()?;
    let data = request.data()?;
    let caller = state
        .core
        .authorize(token, request.remote_addr, path, op, Some(&data))
        .await?;
    // LIST paths end in '/': only the listable endpoints are named that way here, so a LIST of
    // anything else is an unsupported path, as in OpenBao.
    if let Some(endpoint) = leases::endpoint(path) {
        return leases::handle(state, request, endpoint, &data).await;
    }
    if let Some(endpoint) = quotas::endpoint(path) {
        return quotas::handle(state, request, endpoint, &data).await;
    }
    if let Some((target, endpoint)) = rekey::rotate_endpoint(path) {
        return rekey::rotate(state, request, target, endpoint, &data).await;
    }
    match path {
        "sys/rotate" | "sys/rotate/keyring" => keys::rotate(state, request).await,
        "sys/rekey/backup" => rekey::backup(state, request).await,
        "sys/key-status" => keys::status(state, request),
        "sys/ha-status" => leader::ha_status(state, request).await,
        "sys/step-down" => leader::step_down(state, request).await,
        "sys/metrics" => metrics::read(state, request),
        "sys/in-flight-req" => in_flight::read(state, request),
        "sys/host-info" | "sys/host-info/" => host_info::read(state, request).await,
        "sys/config/state/sanitized" => config_state::sanitized(state, request),
        "sys/mounts" | "sys/auth" => mounts::list(state, request),
        "sys/audit" => audit::list(state, request),
        p if p.starts_with("sys/audit/") && !p.ends_with('/') => {
            audit::one(state, request, &data).await
        }
        p if p.starts_with("sys/audit-hash/") && !p.ends_with('/') => {
            audit::hash(state, request, &data)
        }
        "sys/remount" => mounts::remount(state, request, &data).await,
        p if p.starts_with("sys/remount/status/") && !p.ends_with('/') => {
            mounts::remount_status(state, request, p.trim_start_matches("sys/remount/status/"))
        }
        "sys/policy" | "sys/policy/" => policy::list_legacy(state, request).await,
        "sys/policies/acl/" | "sys/policies/acl" => policy::list_acl(state, request).await,
        p if p.starts_with(password_policy::PREFIX) || p == "sys/policies/password" => {
            password_policy::handle(state, request, &data).await
        }
        "sys/capabilities" | "sys/capabilities-self" | "sys/capabilities-accessor" => {
            capabilities::handle(state, request, &caller, &data).await
        }
        p if p.starts_with("sys/mounts/") || p.starts_with("sys/auth/") => {
            mounts::one(state, request, &data).await
        }
        p if p.starts_with("sys/policy/") && !p.ends_with('/') => {
            policy::legacy(state, request, &data).await
        }
        p if p.starts_with("sys/policies/acl/") && !p.ends_with('/') => {
            policy::acl(state, request, &data).await
        }
        _ => Err(ApiError::unsupported_path()),
    }
}
