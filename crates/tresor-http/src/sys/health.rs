//! `sys/health`: load balancers and orchestrators probe this, so every documented status code
//! and query parameter of Vault's is honoured, and `HEAD` gets the same status with no body.

use axum::response::Response;
use http::StatusCode;
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{ApiRequest, Operation, parse_bool};
use crate::response::{head_only, json_response};
use crate::sys::allow;

/// The status codes to answer with, after the query parameters are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Codes {
    active: StatusCode,
    standby: StatusCode,
    sealed: StatusCode,
    uninit: StatusCode,
    standby_ok: bool,
}

impl Codes {
    fn from_query(request: &ApiRequest) -> Result<Self, ApiError> {
        let code = |name: &str, default: u16| -> Result<StatusCode, ApiError> {
            match request.query_value(name) {
                None => StatusCode::from_u16(default)
                    .map_err(|_| ApiError::bare(StatusCode::BAD_REQUEST)),
                Some(v) => v
                    .parse::<u16>()
                    .ok()
                    .and_then(|n| StatusCode::from_u16(n).ok())
                    .ok_or_else(|| ApiError::bare(StatusCode::BAD_REQUEST)),
            }
        };
        let flag = |name: &str| -> Result<bool, ApiError> {
            match request.query_value(name) {
                None => Ok(false),
                Some(v) => parse_bool(v).ok_or_else(|| ApiError::bare(StatusCode::BAD_REQUEST)),
            }
        };
        Ok(Self {
            active: code("activecode", 200)?,
            standby: code("standbycode", 429)?,
            sealed: code("sealedcode", 503)?,
            uninit: code("uninitcode", 501)?,
            standby_ok: flag("standbyok")?,
        })
    }
}

pub fn handle(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    allow(request, &[Operation::Read, Operation::Head])?;
    let codes = Codes::from_query(request)?;
    let health = state.core.health();
    // Like OpenBao, `drsecondarycode`, `performancestandbycode` and `perfstandbyok` are not
    // read at all: there is no replication and no performance standby to report.
    let status = if !health.initialized {
        codes.uninit
    } else if health.sealed {
        codes.sealed
    } else if health.standby && !codes.standby_ok {
        codes.standby
    } else {
        codes.active
    };
    if request.operation == Operation::Head {
        return Ok(head_only(status));
    }
    let replication = if health.sealed { "unknown" } else { "disabled" };
    let mut body = json!({
        "initialized": health.initialized,
        "sealed": health.sealed,
        "standby": health.standby,
        // OpenBao omits this, but vaultrs's health response requires it.
        "performance_standby": false,
        "replication_performance_mode": replication,
        "replication_dr_mode": replication,
        "server_time_utc": health.server_time_utc,
        "version": health.version,
    });
    if let (Some(cluster), Some(obj)) = (health.cluster, body.as_object_mut()) {
        obj.insert("cluster_name".into(), cluster.name.into());
        obj.insert("cluster_id".into(), cluster.id.into());
    }
    Ok(json_response(status, &body))
}
