//! `sys/mounts`, `sys/auth`, their `tune`, `sys/remount` and `sys/internal/ui/mounts`.

use std::collections::BTreeMap;

use axum::response::Response;
use serde_json::{Map, Value, json};
use tresor_core::mount::{
    EnableRequest, MountConfig, MountEntry, MountKind, SYSTEM_DEFAULT_TTL, TuneRequest,
};
use tresor_core::params;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{ApiRequest, Operation};
use crate::response::{envelope, json_response, no_content};
use crate::sys::allow_logical;

fn kind_of(path: &str) -> MountKind {
    if path.starts_with("sys/auth") {
        MountKind::Auth
    } else {
        MountKind::Secret
    }
}

/// The builtin types that have no plugin version or deprecation status in OpenBao's listing.
fn is_core_type(engine_type: &str) -> bool {
    matches!(engine_type, "system" | "cubbyhole" | "identity" | "token")
}

/// One mount as `sys/mounts` shows it; vaultrs requires every one of these keys.
pub fn mount_json(entry: &MountEntry, kind: MountKind) -> Value {
    let mut config = json!({
        "default_lease_ttl": entry.config.default_lease_ttl,
        "force_no_cache": entry.config.force_no_cache,
        "max_lease_ttl": entry.config.max_lease_ttl,
    });
    if kind == MountKind::Auth
        && let Some(c) = config.as_object_mut()
    {
        c.insert("token_type".into(), json!("default-service"));
    }
    let mut v = json!({
        "accessor": entry.accessor,
        "config": config,
        "description": entry.description,
        "external_entropy_access": false,
        "local": entry.local,
        "options": entry.options,
        "plugin_version": "",
        "running_plugin_version": format!("v{}+builtin.tresor", env!("CARGO_PKG_VERSION")),
        "running_sha256": "",
        "seal_wrap": entry.seal_wrap,
        "type": entry.engine_type,
        "uuid": entry.uuid,
    });
    if !is_core_type(&entry.engine_type)
        && let Some(o) = v.as_object_mut()
    {
        o.insert("deprecation_status".into(), json!("supported"));
    }
    v
}

fn table_map(state: &AppState, kind: MountKind) -> Result<Map<String, Value>, ApiError> {
    let active = state.core.active()?;
    Ok(active
        .mounts
        .table(kind)
        .all()
        .map(|m| (m.entry.path.clone(), mount_json(&m.entry, kind)))
        .collect())
}

pub fn list(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    allow_logical(request, &[Operation::Read])?;
    let data = table_map(state, kind_of(&request.path))?;
    Ok(json_response(http::StatusCode::OK, &envelope(data, true)))
}

fn ttl_field(data: &Map<String, Value>, key: &str) -> Result<Option<u64>, ApiError> {
    // "system" means "the default" in Vault's tune API.
    if params::get(data, key).and_then(Value::as_str) == Some("system") {
        return Ok(Some(0));
    }
    Ok(params::duration_secs(data, key)?)
}

fn options_field(data: &Map<String, Value>) -> Result<Option<BTreeMap<String, String>>, ApiError> {
    match params::get(data, "options") {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                    )
                })
                .collect(),
        )),
        Some(_) => Err(ApiError::bad_request("options must be a map of strings")),
    }
}

/// `sys/mounts/:path`, `sys/mounts/:path/tune` and the same under `sys/auth/`.
pub async fn one(
    state: &AppState,
    request: &ApiRequest,
    data: &Map<String, Value>,
) -> Result<Response, ApiError> {
    let kind = kind_of(&request.path);
    let prefix = if kind == MountKind::Auth {
        "sys/auth/"
    } else {
        "sys/mounts/"
    };
    let rest = request.path.trim_start_matches(prefix);
    let active = state.core.active()?;
    if let Some(mount) = rest
        .strip_suffix("/tune")
        .or_else(|| rest.strip_suffix("/tune/"))
    {
        return tune(state, request, kind, mount, data).await;
    }
    match request.operation {
        Operation::Read => {
            let path =
                tresor_core::mount::normalise_mount_path(rest).map_err(ApiError::bad_request)?;
            let table = active.mounts.table(kind);
            let mounted = table.get(&path).ok_or_else(|| {
                ApiError::bad_request(match kind {
                    MountKind::Secret => format!("No secret engine mount at {path}"),
                    MountKind::Auth => format!("No auth engine at {path}"),
                })
            })?;
            let Value::Object(data) = mount_json(&mounted.entry, kind) else {
                return Err(ApiError::bad_request("mount has no data"));
            };
            Ok(json_response(http::StatusCode::OK, &envelope(data, true)))
        }
        Operation::Update => {
            let config = match params::get(data, "config") {
                None => Map::new(),
                Some(Value::Object(c)) => c.clone(),
                Some(_) => return Err(ApiError::bad_request("config must be a map")),
            };
            let enable = EnableRequest {
                engine_type: params::string(data, "type")?.unwrap_or_default(),
                description: params::string(data, "description")?.unwrap_or_default(),
                config: MountConfig {
                    default_lease_ttl: ttl_field(&config, "default_lease_ttl")?.unwrap_or(0),
                    max_lease_ttl: ttl_field(&config, "max_lease_ttl")?.unwrap_or(0),
                    force_no_cache: params::boolean(&config, "force_no_cache")?.unwrap_or(false),
                },
                options: options_field(data)?.unwrap_or_default(),
                local: params::boolean(data, "local")?.unwrap_or(false),
                seal_wrap: params::boolean(data, "seal_wrap")?.unwrap_or(false),
            };
            active.mounts.enable(kind, rest, enable).await?;
            Ok(no_content())
        }
        Operation::Delete => {
            active.mounts.disable(kind, rest).await?;
            Ok(no_content())
        }
        _ => Err(ApiError::unsupported_operation()),
    }
}

async fn tune(
    state: &AppState,
    request: &ApiRequest,
    kind: MountKind,
    mount: &str,
    data: &Map<String, Value>,
) -> Result<Response, ApiError> {
    let active = state.core.active()?;
    let path = tresor_core::mount::normalise_mount_path(mount).map_err(ApiError::bad_request)?;
    match request.operation {
        Operation::Read => {
            let table = active.mounts.table(kind);
            let mounted = table.get(&path).ok_or_else(|| {
                ApiError::bad_request(format!("cannot fetch sysview for path {path:?}"))
            })?;
            let effective = |secs: u64| {
                if secs == 0 {
                    SYSTEM_DEFAULT_TTL.as_secs()
                } else {
                    secs
                }
            };
            let mut out = Map::new();
            out.insert(
                "default_lease_ttl".into(),
                json!(effective(mounted.entry.config.default_lease_ttl)),
            );
            out.insert("description".into(), json!(mounted.entry.description));
            out.insert(
                "force_no_cache".into(),
                json!(mounted.entry.config.force_no_cache),
            );
            out.insert(
                "max_lease_ttl".into(),
                json!(effective(mounted.entry.config.max_lease_ttl)),
            );
            if let Some(options) = mounted.entry.options.as_ref().filter(|o| !o.is_empty()) {
                out.insert("options".into(), json!(options));
            }
            if kind == MountKind::Auth {
                out.insert("token_type".into(), json!("default-service"));
            }
            Ok(json_response(http::StatusCode::OK, &envelope(out, true)))
        }
        Operation::Update => {
            let tune = TuneRequest {
                default_lease_ttl: ttl_field(data, "default_lease_ttl")?,
                max_lease_ttl: ttl_field(data, "max_lease_ttl")?,
                description: params::string(data, "description")?,
                options: options_field(data)?,
            };
            let warnings = active.mounts.tune(kind, &path, tune).await?;
            if warnings.is_empty() {
                return Ok(no_content());
            }
            let response = tresor_core::logical::LogicalResponse {
                warnings,
                ..Default::default()
            };
            Ok(crate::response::logical_response(&response, &request.path))
        }
        _ => Err(ApiError::unsupported_operation()),
    }
}

/// `sys/remount`. The move is immediate (storage is keyed by the mount's uuid), but the answer
/// keeps OpenBao's shape: a migration id and a note.
pub async fn remount(
    state: &AppState,
    request: &ApiRequest,
    data: &Map<String, Value>,
) -> Result<Response, ApiError> {
    allow_logical(request, &[Operation::Update])?;
    let from = params::string(data, "from")?.unwrap_or_default();
    let to = params::string(data, "to")?.unwrap_or_default();
    if from.is_empty() || to.is_empty() {
        return Err(ApiError::bad_request(
            "both 'from' and 'to' must be specified",
        ));
    }
    state.core.active()?.mounts.remount(&from, &to).await?;
    let mut out = Map::new();
    out.insert("migration_id".into(), json!(tresor_core::random::uuid()));
    let mut response = tresor_core::logical::LogicalResponse::data(out);
    response
        .warnings
        .push("Mount move has completed.".to_owned());
    Ok(crate::response::logical_response(&response, "sys/remount"))
}

/// `sys/internal/ui/mounts[/:path]`: the mounts a token can reach; the `vault kv` CLI reads a
/// mount's `options.version` here to choose between the KV v1 and v2 APIs.
pub async fn ui_mounts(
    state: &AppState,
    request: &ApiRequest,
    token: Option<&str>,
    path: &str,
) -> Result<Response, ApiError> {
    allow_logical(request, &[Operation::Read])?;
    let active = state.core.active()?;
    let resolved = state.core.resolve_token(&active, token).await?;
    let acl = active.policies.acl(&resolved.entry.policies).await?;
    let reachable = |mount_path: &str| tresor_core::authz::reaches(&acl, mount_path);
    let reachable_path = |p: &str| tresor_core::authz::reaches(&acl, p);
    if path.is_empty() {
        let pick = |kind: MountKind, prefix: &str| -> Map<String, Value> {
            active
                .mounts
                .table(kind)
                .all()
                .filter(|m| reachable(&format!("{prefix}{}", m.entry.path)))
                .map(|m| (m.entry.path.clone(), mount_json(&m.entry, kind)))
                .collect()
        };
        let mut data = Map::new();
        data.insert("auth".into(), Value::Object(pick(MountKind::Auth, "auth/")));
        data.insert("secret".into(), Value::Object(pick(MountKind::Secret, "")));
        return Ok(json_response(http::StatusCode::OK, &envelope(data, false)));
    }
    let table = active.mounts.table(MountKind::Secret);
    let Some((mounted, _)) = table.route(path) else {
        return Err(ApiError::bad_request(format!(
            "no matching mount for path {path:?}"
        )));
    };
    if !reachable_path(path) {
        return Err(ApiError::permission_denied());
    }
    let mut v = mount_json(&mounted.entry, MountKind::Secret);
    if let Some(o) = v.as_object_mut() {
        o.insert("path".into(), json!(mounted.entry.path));
    }
    let Value::Object(data) = v else {
        return Err(ApiError::bad_request("mount has no data"));
    };
    Ok(json_response(http::StatusCode::OK, &envelope(data, false)))
}
