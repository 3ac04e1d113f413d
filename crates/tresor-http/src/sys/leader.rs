//! `sys/leader` (unauthenticated), and the HA endpoints `sys/ha-status` and `sys/step-down`.

use axum::response::Response;
use http::StatusCode;
use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{ApiRequest, Operation};
use crate::response::{envelope, json_response, no_content};
use crate::sys::{allow, allow_logical};

/// Without HA: `{"ha_enabled": false}` only. With HA: whether this node is the active one and
/// the active node's addresses (`is_self` and the addresses are always present, so clients
/// that require them, such as vaultrs, read a standby's answer too).
pub fn handle(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    allow(request, &[Operation::Read])?;
    let status = state.core.leader_status()?;
    if !status.ha_enabled {
        return Ok(json_response(
            StatusCode::OK,
            &json!({ "ha_enabled": false }),
        ));
    }
    let mut body = json!({
        "ha_enabled": true,
        "is_self": status.is_self,
        "leader_address": status.leader_address,
        "leader_cluster_address": status.leader_cluster_address,
        "performance_standby": false,
        "performance_standby_last_remote_wal": 0,
    });
    if let (Some(at), Some(obj)) = (status.active_time, body.as_object_mut()) {
        obj.insert(
            "active_time".into(),
            Value::String(at.format(&Rfc3339).unwrap_or_default()),
        );
    }
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET sys/ha-status`: Vault's `nodes` list (hostname, api_address, cluster_address,
/// active_node, last_echo, version).
pub async fn ha_status(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    allow_logical(request, &[Operation::Read])?;
    let nodes = state.core.ha_nodes().await?;
    let nodes: Vec<Value> = nodes
        .into_iter()
        .map(|n| {
            let echo = time::OffsetDateTime::from_unix_timestamp_nanos(
                i128::from(n.last_echo_ms) * 1_000_000,
            )
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok());
            json!({
                "hostname": n.advert.hostname,
                "api_address": n.advert.api_addr,
                "cluster_address": n.advert.cluster_addr,
                "active_node": n.active,
                "last_echo": echo,
                "version": n.advert.version,
            })
        })
        .collect();
    let mut data = Map::new();
    data.insert("nodes".into(), Value::Array(nodes));
    Ok(json_response(StatusCode::OK, &envelope(data, true)))
}

/// `PUT|POST sys/step-down` (sudo): the active node hands over; 204.
pub async fn step_down(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    allow_logical(request, &[Operation::Update])?;
    state.core.step_down().await?;
    Ok(no_content())
}
