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

/// The request headers OpenBao passes through to its built-in mounts (shown in their config).
fn passthrough_headers(engine_type: &str) -> Option<[&'static str; 1]> {
    match engine_type {
        "system" => Some(["Accept"]),
        "identity" => Some(["Authorization"]),
        _ => None,
    }
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
        c.insert("token_type".into(), json!(shown_token_type(entry)));
    }
    if let Some(headers) = passthrough_headers(&entry.engine_type)
        && let Some(c) = config.as_object_mut()
    {
        c.insert("passthrough_request_headers".into(), json!(headers));
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

/// The lease TTLs of a mount being enabled, with OpenBao's messages for bad values.
fn enable_ttls(config: &Map<String, Value>, kind: MountKind) -> Result<MountConfig, ApiError> {
    let parse = |key: &str, label: &str| -> Result<u64, ApiError> {
        match ttl_field(config, key) {
            Ok(v) => Ok(v.unwrap_or(0)),
            Err(_) => {
                let raw = params::get(config, key)
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
                let raw = raw.unwrap_or_default();
                Err(ApiError::bad_request(format!(
                    "unable to parse {label} TTL of {raw}: time: invalid duration {raw:?}"
                )))
            }
        }
    };
    let default_lease_ttl = parse("default_lease_ttl", "default")?;
    let max_lease_ttl = parse("max_lease_ttl", "max")?;
    if max_lease_ttl > 0 && default_lease_ttl > max_lease_ttl {
        return Err(ApiError::bad_request(
            "given default lease TTL greater than given max lease TTL",
        ));
    }
    Ok(MountConfig {
        default_lease_ttl,
        max_lease_ttl,
        force_no_cache: params::boolean(config, "force_no_cache")?.unwrap_or(false),
        listing_visibility: listing_visibility(config)?.unwrap_or_default(),
        // Validated for every mount, kept only where it means something, as OpenBao does.
        token_type: token_type(config)?
            .filter(|_| kind == MountKind::Auth)
            .unwrap_or_default(),
    })
}

/// `token_type` of an auth mount: which tokens its logins get.
fn token_type(data: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match params::string(data, "token_type")? {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(Some("default-service".to_owned())),
        Some(v) if tresor_core::token::TOKEN_TYPES.contains(&v.as_str()) => Ok(Some(v)),
        Some(_) => Err(ApiError::bad_request("invalid value for 'token_type'")),
    }
}

/// The token type an auth mount shows (`default-service` until tuned).
fn shown_token_type(entry: &MountEntry) -> &str {
    if entry.config.token_type.is_empty() {
        "default-service"
    } else {
        &entry.config.token_type
    }
}

/// `listing_visibility`: `unauth`, `hidden` or empty (the default).
fn listing_visibility(data: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match params::string(data, "listing_visibility")? {
        None => Ok(None),
        Some(v) if matches!(v.as_str(), "" | "unauth" | "hidden") => Ok(Some(v)),
        Some(v) => Err(ApiError::bad_request(format!(
            "invalid listing_visibility {v:?}"
        ))),
    }
}

fn ttl_field(data: &Map<String, Value>, key: &str) -> Result<Option<u64>, ApiError> {
    // "system" means "the default" in Vault's tune API; an empty string (what `bao secrets
    // tune` sends for flags not given) leaves the setting alone.
    match params::get(data, key).and_then(Value::as_str) {
        Some("system") => return Ok(Some(0)),
        Some("") => return Ok(None),
        _ => {}
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
        // `bao write sys/mounts/x type=kv options=version=2` sends one "k=v,k2=v2" string.
        Some(Value::String(text)) => text
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|pair| {
                pair.split_once('=')
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "invalid options entry {pair:?}: expected key=value"
                        ))
                    })
            })
            .collect::<Result<_, _>>()
            .map(Some),
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
        // Vault's Go client (and so `bao auth tune`) tunes auth methods through
        // `sys/mounts/auth/:path/tune`: the mount path names the auth table there.
        if let (MountKind::Secret, Some(auth_mount)) = (kind, mount.strip_prefix("auth/")) {
            return tune(state, request, MountKind::Auth, auth_mount, data).await;
        }
        return tune(state, request, kind, mount, data).await;
    }
    if rest.is_empty() && request.operation == Operation::Delete {
        return Err(ApiError::unsupported_path());
    }
    match request.operation {
        Operation::List => Err(ApiError::unsupported_path()),
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
                config: enable_ttls(&config, kind)?,

                options: match data.get("options") {
                    Some(Value::Null) => None,
                    None => Some(BTreeMap::new()),
                    Some(_) => options_field(data)?,
                },
                local: params::boolean(data, "local")?.unwrap_or(false),
                seal_wrap: params::boolean(data, "seal_wrap")?.unwrap_or(false),
            };
            active.mounts.enable(kind, rest, enable).await?;
            Ok(no_content())
        }
        Operation::Delete => {
            // Revokes a secrets mount's leases first, as Vault does.
            state.core.disable_mount(kind, rest).await?;
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
                let shown = if kind == MountKind::Auth {
                    format!("auth/{path}")
                } else {
                    path.clone()
                };
                ApiError::bad_request(format!("cannot fetch sysview for path {shown:?}"))
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
                out.insert("token_type".into(), json!(shown_token_type(&mounted.entry)));
            }
            if let Some(headers) = passthrough_headers(&mounted.entry.engine_type) {
                out.insert("passthrough_request_headers".into(), json!(headers));
            }
            Ok(json_response(http::StatusCode::OK, &envelope(out, true)))
        }
        Operation::Update => {
            let tune = TuneRequest {
                default_lease_ttl: ttl_field(data, "default_lease_ttl")?,
                max_lease_ttl: ttl_field(data, "max_lease_ttl")?,
                description: params::string(data, "description")?,
                options: options_field(data)?,
                listing_visibility: listing_visibility(data)?,
                token_type: tune_token_type(kind, &path, data)?,
            };
            let warnings = active.mounts.tune(kind, &path, tune).await?;
            if warnings.is_empty() {
                return Ok(no_content());
            }
            let response = tresor_core::logical::LogicalResponse {
                warnings,
                ..Default::default()
            };
            Ok(crate::response::logical_response(response, &request.path))
        }
        _ => Err(ApiError::unsupported_operation()),
    }
}

/// `token_type` in a tune, with OpenBao's refusals: auth mounts only, and not the token store.
fn tune_token_type(
    kind: MountKind,
    path: &str,
    data: &Map<String, Value>,
) -> Result<Option<String>, ApiError> {
    if params::get(data, "token_type").is_none() {
        return Ok(None);
    }
    if kind != MountKind::Auth {
        return Err(ApiError::bad_request(
            "'token_type' can only be modified on auth mounts",
        ));
    }
    if path == "token/" {
        return Err(ApiError::bad_request(
            "'token_type' cannot be set for 'token' or 'ns_token' auth mounts",
        ));
    }
    token_type(data)
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
            "both 'from' and 'to' path must be specified as a string",
        ));
    }
    let (id, lease_warnings) = state.core.remount_mount(&from, &to).await?;
    let mut out = Map::new();
    out.insert("migration_id".into(), json!(id));
    let mut response = tresor_core::logical::LogicalResponse::data(out);
    response
        .warnings
        .push("Mount move has completed.".to_owned());
    response.warnings.extend(lease_warnings);
    Ok(crate::response::logical_response(response, "sys/remount"))
}

/// `sys/internal/ui/mounts[/:path]`: the mounts a token can reach; the `vault kv` CLI reads a
/// mount's `options.version` here to choose between the KV v1 and v2 APIs. As in OpenBao, the
/// listing needs no token (it then shows only mounts marked for unauthenticated listing, which
/// Tresor has none of), and a mount is shown when any of the token's rules reaches into it.
pub async fn ui_mounts(
    state: &AppState,
    request: &ApiRequest,
    token: Option<&str>,
    path: &str,
) -> Result<Response, ApiError> {
    if request.operation != Operation::Read {
        return Err(ApiError::new(
            http::StatusCode::METHOD_NOT_ALLOWED,
            "unsupported operation",
        ));
    }
    let active = state.core.active()?;
    let acl = match state
        .core
        .resolve_token(&active, token, request.remote_addr)
        .await
    {
        Ok(resolved) => Some(active.policies.acl(&resolved.entry.policies).await?),
        Err(tresor_core::CoreError::PermissionDenied) => None,
        Err(other) => return Err(other.into()),
    };
    let reaches = |p: &str| acl.as_ref().is_some_and(|a| a.has_access_under(p));
    if path.is_empty() && acl.is_none() {
        // Without a token: only mounts marked for unauthenticated listing, in short form.
        let pick = |kind: MountKind| -> Map<String, Value> {
            active
                .mounts
                .table(kind)
                .all()
                .filter(|m| m.entry.config.listing_visibility == "unauth")
                .map(|m| {
                    let short = json!({
                        "description": m.entry.description,
                        "options": m.entry.options,
                        "type": m.entry.engine_type,
                    });
                    (m.entry.path.clone(), short)
                })
                .collect()
        };
        let mut data = Map::new();
        data.insert("auth".into(), Value::Object(pick(MountKind::Auth)));
        data.insert("secret".into(), Value::Object(pick(MountKind::Secret)));
        return Ok(json_response(http::StatusCode::OK, &envelope(data, false)));
    }
    if path.is_empty() {
        let pick = |kind: MountKind, prefix: &str| -> Map<String, Value> {
            active
                .mounts
                .table(kind)
                .all()
                .filter(|m| reaches(&format!("{prefix}{}", m.entry.path)))
                .map(|m| (m.entry.path.clone(), mount_json(&m.entry, kind)))
                .collect()
        };
        let mut data = Map::new();
        data.insert("auth".into(), Value::Object(pick(MountKind::Auth, "auth/")));
        data.insert("secret".into(), Value::Object(pick(MountKind::Secret, "")));
        return Ok(json_response(http::StatusCode::OK, &envelope(data, false)));
    }
    let preflight = || {
        let shown = if path.ends_with('/') {
            path.to_owned()
        } else {
            format!("{path}/")
        };
        ApiError::new(
            http::StatusCode::FORBIDDEN,
            format!(
                "preflight capability check returned 403, please ensure client's policies grant \
                 access to path {shown:?}"
            ),
        )
    };
    if acl.is_none() {
        return Err(ApiError::permission_denied());
    }
    let (kind, prefix, table_path) = match path.strip_prefix("auth/") {
        Some(rest) => (MountKind::Auth, "auth/", rest),
        None => (MountKind::Secret, "", path),
    };
    let table = active.mounts.table(kind);
    let Some((mounted, _)) = table.route(table_path) else {
        return Err(preflight());
    };
    if !reaches(&format!("{prefix}{}", mounted.entry.path)) {
        return Err(preflight());
    }
    let mut v = mount_json(&mounted.entry, kind);
    if let Some(o) = v.as_object_mut() {
        o.insert("path".into(), json!(mounted.entry.path));
    }
    let Value::Object(data) = v else {
        return Err(ApiError::bad_request("mount has no data"));
    };
    Ok(json_response(http::StatusCode::OK, &envelope(data, false)))
}

/// `sys/remount/status/:id`: Tresor's moves finish before `sys/remount` answers, so every known
/// migration reports success.
pub fn remount_status(
    state: &AppState,
    request: &ApiRequest,
    id: &str,
) -> Result<Response, ApiError> {
    allow_logical(request, &[Operation::Read])?;
    let (from, to) = state
        .core
        .active()?
        .mounts
        .migration(id)
        .ok_or_else(|| ApiError::bare(http::StatusCode::NOT_FOUND))?;
    let mut out = Map::new();
    out.insert("migration_id".into(), json!(id));
    out.insert(
        "migration_info".into(),
        json!({ "source_mount": from, "target_mount": to, "status": "success" }),
    );
    Ok(json_response(http::StatusCode::OK, &envelope(out, false)))
}
