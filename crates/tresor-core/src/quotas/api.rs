//! The core's quota entry points: checking a request (hot path: the mount table and the
//! quota set are both in memory) and the `sys/quotas/*` operations, with OpenBao's
//! validation and wording.

use std::net::IpAddr;

use serde_json::{Map, Value};

use super::{QuotaConfig, QuotaOutcome, QuotaRequest, QuotaSpec, RateLimitQuota};
use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::mount::MountKind;
use crate::params;

impl Core {
    /// The rate-limit decision for a request, or `None` when no quota applies (or sealed).
    /// `role` is what [`Core::quota_login_role`] resolved (empty when nothing was resolved).
    pub fn check_rate_limit(&self, path: &str, client: IpAddr, role: &str) -> Option<QuotaOutcome> {
        let active = self.active().ok()?;
        if !active.quotas.any() {
            // The common case: no quota, so no second routing of the path (and no copy of the
            // mount's path) per request.
            return None;
        }
        let mount = mount_of(self, path);
        active.quotas.check(&QuotaRequest {
            path,
            mount_path: mount.as_deref(),
            role,
            client,
        })
    }

    /// Whether the request needs its login role resolved before the quota check: its mount
    /// is an auth method with role quotas (OpenBao's `ResolveRoleForQuotas`). Cheap: memory
    /// only; callers read the body only when this says so.
    pub fn quota_needs_role(&self, path: &str) -> bool {
        let Ok(active) = self.active() else {
            return false;
        };
        path.starts_with("auth/")
            && mount_of(self, path).is_some_and(|mount| active.quotas.needs_role(&mount))
    }

    /// The login role of a request body, for role quotas, as the auth method resolves it
    /// (OpenBao asks the method with `ResolveRoleOperation` on `login`, whatever the path).
    /// Empty when the method cannot tell (no role, an unknown one, a malformed body).
    pub async fn quota_login_role(&self, path: &str, data: &Map<String, Value>) -> String {
        let Ok(active) = self.active() else {
            return String::new();
        };
        let Some(rest) = path.strip_prefix("auth/") else {
            return String::new();
        };
        let Some((mounted, _)) = active.mounts.table(MountKind::Auth).route(rest) else {
            return String::new();
        };
        let Some(method) = mounted.method.as_ref() else {
            return String::new();
        };
        match method.resolve_role(data, mounted.view.as_ref()).await {
            Ok(Some(role)) => role,
            Ok(None) => String::new(),
            Err(err) => {
                tracing::debug!(mount = %mounted.entry.path, error = %err, "no login role for the quota check");
                String::new()
            }
        }
    }

    pub fn rate_limit_quota(&self, name: &str) -> CoreResult<Option<RateLimitQuota>> {
        Ok(self.active()?.quotas.get(name))
    }

    pub fn rate_limit_quota_names(&self) -> CoreResult<Vec<String>> {
        Ok(self.active()?.quotas.names())
    }

    pub async fn delete_rate_limit_quota(&self, name: &str) -> CoreResult<()> {
        self.active()?.quotas.delete(name).await
    }

    pub fn quota_config(&self) -> CoreResult<QuotaConfig> {
        Ok(self.active()?.quotas.config())
    }

    /// `sys/quotas/config` write: every field absent from the request is reset to its zero
    /// value, as OpenBao's handler does.
    pub async fn write_quota_config(&self, data: &Map<String, Value>) -> CoreResult<()> {
        let config = QuotaConfig {
            enable_rate_limit_audit_logging: boolean(data, "enable_rate_limit_audit_logging")?
                .unwrap_or(false),
            enable_rate_limit_response_headers: boolean(
                data,
                "enable_rate_limit_response_headers",
            )?
            .unwrap_or(false),
            rate_limit_exempt_paths: string_slice(data, "rate_limit_exempt_paths")?,
        };
        self.active()?.quotas.set_config(config).await
    }

    /// `sys/quotas/rate-limit/:name` write.
    pub async fn write_rate_limit_quota(
        &self,
        name: &str,
        data: &Map<String, Value>,
    ) -> CoreResult<()> {
        let active = self.active()?;
        // Fields are converted first (OpenBao's framework does it before the handler runs).
        let rate = rate(data)?;
        let interval = duration_secs(data, "interval")?;
        let block = duration_secs(data, "block_interval")?;
        let inheritable = boolean(data, "inheritable")?;
        if rate <= 0.0 || !rate.is_finite() {
            return Err(invalid("'rate' is invalid"));
        }
        let path = sanitize(&params::string(data, "path")?.unwrap_or_default());
        let (mount_path, path_suffix) = if path.is_empty() {
            (String::new(), String::new())
        } else {
            let Some(mount) = mount_of(self, &path) else {
                return Err(invalid(&format!("invalid mount path {path:?}")));
            };
            let suffix = path
                .strip_prefix(&mount)
                .unwrap_or("")
                .trim_end_matches('/')
                .to_owned();
            (mount, suffix)
        };
        let role = params::string(data, "role")?.unwrap_or_default();
        if !role.is_empty() {
            if !path_suffix.is_empty() {
                return Err(invalid(
                    "Quotas cannot contain both a path suffix and a role. If a role is provided, path must be a valid auth mount with a concept of roles",
                ));
            }
            let auth = mount_path
                .strip_prefix("auth/")
                .filter(|rest| !rest.is_empty())
                .and_then(|rest| active.mounts.table(MountKind::Auth).get(rest).cloned());
            match auth {
                None => {
                    return Err(invalid(&format!(
                        "Mount path {mount_path:?} is not a valid auth method and therefore unsuitable for use with role-based quotas"
                    )));
                }
                // The token store has no login roles to resolve.
                Some(m) if m.method.is_none() => {
                    return Err(invalid(&format!(
                        "Mount path {mount_path:?} does not support use with role-based quotas"
                    )));
                }
                Some(_) => {}
            }
        }
        let inheritable = inheritable.unwrap_or(mount_path.is_empty());
        active
            .quotas
            .put(
                name,
                QuotaSpec {
                    mount_path,
                    path_suffix,
                    role,
                    rate,
                    // OpenBao: an interval of 0 is one second.
                    interval_secs: interval.max(1),
                    block_interval_secs: block,
                    inheritable,
                },
            )
            .await
    }
}

fn invalid(message: &str) -> CoreError {
    CoreError::InvalidRequest(message.to_owned())
}

/// The API path of the mount serving `path` (`secret/`, `auth/approle/`, `sys/`).
fn mount_of(core: &Core, path: &str) -> Option<String> {
    let active = core.active().ok()?;
    if let Some(rest) = path.strip_prefix("auth/") {
        let (mounted, _) = active.mounts.table(MountKind::Auth).route(rest)?;
        return Some(format!("auth/{}", mounted.entry.path));
    }
    let (mounted, _) = active.mounts.table(MountKind::Secret).route(path)?;
    Some(mounted.entry.path.clone())
}

/// OpenBao's `sanitizePath`: no leading slash, a trailing one unless empty.
fn sanitize(path: &str) -> String {
    let trimmed = path.trim().trim_start_matches('/');
    if trimmed.is_empty() || trimmed.ends_with('/') || trimmed.ends_with('*') {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/")
    }
}

/// OpenBao's wording for a field its framework could not convert.
fn field_error(key: &str, reason: &str) -> CoreError {
    CoreError::InvalidRequest(format!(
        "Field validation failed: error converting input for field {key:?}: {reason}"
    ))
}

/// `rate` as a float: a JSON number, a numeric string or a boolean (1 or 0), as Vault's
/// weakly typed `TypeFloat` reads it.
fn rate(data: &Map<String, Value>) -> CoreResult<f64> {
    let bad = || {
        field_error(
            "rate",
            "'' cannot parse value as 'float64': strconv.ParseFloat: invalid syntax",
        )
    };
    match params::get(data, "rate") {
        None => Ok(0.0),
        Some(Value::Number(n)) => n.as_f64().ok_or_else(bad),
        Some(Value::Bool(b)) => Ok(if *b { 1.0 } else { 0.0 }),
        Some(Value::String(s)) => s.trim().parse::<f64>().map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

/// A `TypeBool` field, with OpenBao's wording when it is not one.
fn boolean(data: &Map<String, Value>, key: &str) -> CoreResult<Option<bool>> {
    params::boolean(data, key).map_err(|_| {
        field_error(
            key,
            "'' cannot parse value as 'bool': strconv.ParseBool: invalid syntax",
        )
    })
}

/// A `TypeStringSlice` field: an array, or a single value as a one-item list (a comma in
/// a string is not a separator here).
fn string_slice(data: &Map<String, Value>, key: &str) -> CoreResult<Vec<String>> {
    let one = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(field_error(
            key,
            "could not parse value as a list of strings",
        )),
    };
    match params::get(data, key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(one).collect(),
        Some(other) => Ok(vec![one(other)?]),
    }
}

/// A `TypeDurationSecond` field in whole seconds; negative values are refused as OpenBao's
/// framework refuses them.
fn duration_secs(data: &Map<String, Value>, key: &str) -> CoreResult<u64> {
    let secs = match params::get(data, key) {
        None => return Ok(0),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(secs) => secs,
            // Go truncates a fractional number of seconds.
            None => n
                .as_f64()
                .map(|f| f as i64)
                .ok_or_else(|| field_error(key, "could not parse duration from input"))?,
        },
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.is_empty() {
                return Ok(0);
            }
            let nanos = tresor_sdk::duration::parse_str(s)
                .map_err(|_| field_error(key, &format!("time: invalid duration {s:?}")))?;
            tresor_sdk::duration::whole_seconds(nanos)
                .map_err(|_| field_error(key, &format!("time: invalid duration {s:?}")))?
        }
        Some(_) => return Err(field_error(key, "could not parse duration from input")),
    };
    u64::try_from(secs)
        .map_err(|_| field_error(key, &format!("cannot provide negative value '{secs}'")))
}
