//! The rules of token creation (`auth/token/create`, `create-orphan`, `create/:role`), as Vault
//! applies them: policies a subset of the parent's (or of the role's), `no_parent` and a chosen
//! `id` only for root or sudo callers, TTLs capped by explicit and system maxima.

use serde_json::{Map, Value};
use tresor_sdk::secret::SecretString;

use super::entry::{TokenEntry, now_ns};
use super::roles::{TokenRole, normalise_policies};
use super::store::{Resolved, TokenStore};
use crate::error::{CoreError, CoreResult};
use crate::mount::SYSTEM_DEFAULT_TTL;
use crate::params;

/// Who asks, and with which privileges on the creation path.
#[derive(Debug)]
pub struct CreateContext<'a> {
    pub parent: &'a Resolved,
    /// The caller is root or holds `sudo` on the path it called.
    pub privileged: bool,
    /// Called through `create-orphan`.
    pub orphan_path: bool,
    pub role: Option<&'a TokenRole>,
    /// The token auth mount's tuned TTLs in seconds (0: the system's 768h).
    pub mount_default_ttl: u64,
    pub mount_max_ttl: u64,
}

/// The created token and what the response needs.
#[derive(Debug)]
pub struct Created {
    pub token: SecretString,
    pub resolved: Resolved,
    pub lease_duration: u64,
    pub warnings: Vec<String>,
}

/// Go's `%q` of a string slice: `["a" "b"]`.
fn go_quoted(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

fn display_name(requested: Option<String>) -> String {
    match requested {
        None => "token".to_owned(),
        Some(name) if name.is_empty() => "token".to_owned(),
        Some(name) => {
            let cleaned: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            format!("token-{}", cleaned.trim_matches('-'))
        }
    }
}

/// Whether the request makes a batch token: the role's `token_type` decides, except that
/// `default-*` roles take the request's `type` when there is one (Vault's rules). A batch
/// token cannot have what would need it stored (a use count, a period, an explicit max TTL).
fn is_batch(role: Option<&TokenRole>, data: &Map<String, Value>) -> CoreResult<bool> {
    let requested = params::string(data, "type")?.unwrap_or_default();
    let chosen = match role.map(TokenRole::token_type) {
        Some("service") => "service",
        Some("batch") => "batch",
        Some("default-batch") if requested.is_empty() => "batch",
        _ => requested.as_str(),
    };
    match chosen {
        "" | "service" => Ok(false),
        "batch" => {
            let nonzero = |key: &str| -> CoreResult<bool> {
                Ok(params::duration_secs(data, key)
                    .map_err(|_| {
                        CoreError::InvalidRequest(format!("'{key}' value could not be parsed"))
                    })?
                    .unwrap_or(0)
                    != 0)
            };
            let bad = if nonzero("explicit_max_ttl")? {
                Some("explicit_max_ttl")
            } else if params::integer(data, "num_uses")?.unwrap_or(0) != 0 {
                Some("num_uses")
            } else if nonzero("period")? {
                Some("period")
            } else {
                None
            };
            match bad {
                Some(field) => Err(CoreError::InvalidRequest(format!(
                    "batch tokens cannot have {field:?} set"
                ))),
                None => Ok(true),
            }
        }
        _ => Err(CoreError::InvalidRequest(
            "invalid 'token_type' value".to_owned(),
        )),
    }
}

pub async fn create_token(
    store: &TokenStore,
    ctx: CreateContext<'_>,
    data: &Map<String, Value>,
) -> CoreResult<Created> {
    let parent = &ctx.parent.entry;
    let batch = is_batch(ctx.role, data)?;
    let mut num_uses = params::integer(data, "num_uses")?.unwrap_or(0);
    if num_uses < 0 {
        return Err(CoreError::InvalidRequest(
            "number of uses cannot be negative".to_owned(),
        ));
    }
    let no_parent = params::boolean(data, "no_parent")?.unwrap_or(false);
    if no_parent && !ctx.privileged {
        return Err(CoreError::InvalidRequest(
            "root or sudo privileges required to create orphan token".to_owned(),
        ));
    }
    let custom_id = params::string(data, "id")?.filter(|s| !s.is_empty());
    if custom_id.is_some() && !ctx.privileged {
        return Err(CoreError::InvalidRequest(
            "root or sudo privileges required to specify token id".to_owned(),
        ));
    }
    let no_default = params::boolean(data, "no_default_policy")?.unwrap_or(false)
        || ctx.role.is_some_and(|r| r.token_no_default_policy);
    // A single string is one policy name, commas and all, as OpenBao reads it.
    let requested = match params::get(data, "policies") {
        Some(Value::String(one)) => Some(normalise_policies(vec![one.clone()])),
        _ => params::string_list(data, "policies")?.map(normalise_policies),
    };

    let mut policies = match (&requested, ctx.role) {
        (Some(p), _) => p.clone(),
        (None, Some(role)) if !role.allowed_policies.is_empty() => role.allowed_policies.clone(),
        (None, _) => parent.policies.clone(),
    };
    if let Some(role) = ctx.role {
        let mut allowed = role.allowed_policies.clone();
        allowed.push("default".to_owned());
        let mut with_default = policies.clone();
        if !no_default {
            with_default.push("default".to_owned());
        }
        let with_default = normalise_policies(with_default);
        if !role.allowed_policies.is_empty() && !with_default.iter().all(|p| allowed.contains(p)) {
            return Err(CoreError::InvalidRequest(format!(
                "token policies ({}) must be subset of the role's allowed policies ({}) or glob policies ([])",
                go_quoted(&with_default),
                go_quoted(&normalise_policies(allowed))
            )));
        }
        if let Some(bad) = with_default
            .iter()
            .find(|p| role.disallowed_policies.contains(p))
        {
            return Err(CoreError::InvalidRequest(format!(
                "token policy {bad:?} is disallowed by this role"
            )));
        }
    } else if !parent.is_root() {
        let subset = policies
            .iter()
            .all(|p| p == "default" || parent.policies.contains(p));
        if !subset {
            return Err(CoreError::InvalidRequest(
                "child policies must be subset of parent".to_owned(),
            ));
        }
    }
    if policies.iter().any(|p| p == "root") && !parent.is_root() {
        return Err(CoreError::InvalidRequest(
            "root tokens may not be created without parent token being root".to_owned(),
        ));
    }
    if batch && policies.iter().any(|p| p == "root") {
        // Batch tokens cannot be revoked, so none may be root.
        return Err(CoreError::InvalidRequest(
            "batch tokens cannot be root tokens".to_owned(),
        ));
    }
    if policies.iter().any(|p| p == "root") {
        policies = vec!["root".to_owned()];
    } else if !no_default {
        policies.push("default".to_owned());
    }
    let policies = normalise_policies(policies);
    let is_root_token = policies == ["root"];

    let ttl = params::duration_secs(data, "ttl")?.or(params::duration_secs(data, "lease")?);
    let mut explicit_max = params::duration_secs(data, "explicit_max_ttl")?.unwrap_or(0);
    let mut period = params::duration_secs(data, "period")?.unwrap_or(0);
    if let Some(role) = ctx.role {
        if role.token_explicit_max_ttl > 0
            && (explicit_max == 0 || role.token_explicit_max_ttl < explicit_max)
        {
            explicit_max = role.token_explicit_max_ttl;
        }
        if role.token_period > 0 {
            period = role.token_period;
        }
    }
    if period > 0 && !ctx.privileged && ctx.role.is_none() {
        return Err(CoreError::InvalidRequest(
            "root or sudo privileges required to create periodic token".to_owned(),
        ));
    }
    let mut renewable = params::boolean(data, "renewable")?.unwrap_or(true) && !batch;
    if let Some(role) = ctx.role {
        renewable = renewable && role.renewable;
        if role.token_num_uses > 0 && (num_uses == 0 || role.token_num_uses < num_uses) {
            num_uses = role.token_num_uses;
        }
    }

    // The effective TTL: period wins; else the request, else the system default; root
    // tokens without a TTL never expire.
    let or_system = |secs: u64| {
        if secs == 0 {
            SYSTEM_DEFAULT_TTL.as_secs()
        } else {
            secs
        }
    };
    let mount_max = or_system(ctx.mount_max_ttl);
    let mut warnings = Vec::new();
    let mut effective = if period > 0 {
        period
    } else {
        match ttl {
            Some(t) if t > 0 => t,
            _ if is_root_token => 0,
            _ => or_system(ctx.mount_default_ttl).min(mount_max),
        }
    };
    if period == 0 && effective > mount_max {
        warnings.push(super::capped_warning(
            "TTL",
            &super::human_duration(effective),
            &super::human_duration(mount_max),
        ));
        effective = mount_max;
    }
    if explicit_max > 0 && (effective == 0 || effective > explicit_max) {
        if effective > 0 {
            let what = if period > 0 { "period" } else { "TTL" };
            warnings.push(super::capped_warning(
                what,
                &super::human_duration(effective),
                &super::human_duration(explicit_max),
            ));
        }
        effective = explicit_max;
    }
    if effective == 0 {
        renewable = false;
    }

    let orphan = no_parent || ctx.orphan_path || ctx.role.is_some_and(|r| r.orphan);
    let now = now_ns();
    let path = match ctx.role {
        Some(role) if role.path_suffix.is_empty() => format!("auth/token/create/{}", role.name),
        Some(role) => format!("auth/token/create/{}/{}", role.name, role.path_suffix),
        None if ctx.orphan_path => "auth/token/create-orphan".to_owned(),
        None => "auth/token/create".to_owned(),
    };
    let entry = TokenEntry {
        accessor: TokenStore::new_accessor(),
        policies,
        parent: if orphan {
            None
        } else {
            Some(ctx.parent.id_hash.clone())
        },
        path,
        meta: params::string_map(data, "meta")?.filter(|m| !m.is_empty()),
        display_name: display_name(params::string(data, "display_name")?),
        num_uses,
        created_ns: now,
        creation_ttl: effective,
        explicit_max_ttl: explicit_max,
        period,
        renewable,
        expire_ns: (effective > 0)
            .then(|| now.saturating_add((effective as i64).saturating_mul(1_000_000_000))),
        last_renewal_ns: None,
        last_ttl: 0,
        role: ctx.role.map(|r| r.name.clone()),
        entity_id: None,
        bound_cidrs: Vec::new(),
        login: None,
        batch,
    };
    if batch {
        // The auth block shows the use count the role asked for, as OpenBao's does, but a
        // batch token carries none: nothing could count its uses.
        let (token, resolved) = store.issue_batch(entry)?;
        return Ok(Created {
            token,
            resolved,
            lease_duration: effective,
            warnings,
        });
    }
    let token = match custom_id {
        Some(id) => SecretString::new(id),
        None => TokenStore::new_token_id(),
    };
    let resolved = store.insert(token.expose(), entry).await?;
    Ok(Created {
        token,
        resolved,
        lease_duration: effective,
        warnings,
    })
}

/// Renews a token: a new TTL from now, capped by its explicit max TTL (from creation) and the
/// system maximum; periodic tokens go back to their period. Returns the new TTL and a warning
/// when the request was capped.
///
/// `login` carries a login token's limits from its auth method (role TTL, role or mount max
/// TTL, role period; see `Core::login_renewal_limits`): the TTL defaults to the role's and the
/// maximum counts from the token's creation, as Vault's `LeaseExtend` does.
pub async fn renew_token(
    store: &TokenStore,
    target: &Resolved,
    increment: Option<u64>,
    login: Option<(u64, u64, u64)>,
) -> CoreResult<(std::sync::Arc<TokenEntry>, u64, Option<String>)> {
    let entry = &target.entry;
    if !entry.renewable {
        return Err(CoreError::InvalidRequest(
            "lease is not renewable".to_owned(),
        ));
    }
    let now = now_ns();
    let period = login.map_or(
        entry.period,
        |(_, _, p)| if p > 0 { p } else { entry.period },
    );
    let wanted = if period > 0 {
        period
    } else if let Some((role_ttl, _, _)) = login {
        increment.filter(|i| *i > 0).unwrap_or(role_ttl)
    } else {
        // Without an increment the token gets the TTL it was last given, as in Vault.
        increment
            .filter(|i| *i > 0)
            .unwrap_or(if entry.last_ttl > 0 {
                entry.last_ttl
            } else {
                entry.creation_ttl
            })
    };
    let mut ttl = wanted;
    let mut warning = None;
    let limit = match (entry.explicit_max_ttl, login) {
        (explicit, Some((_, max, _))) if period == 0 => {
            Some(if explicit > 0 { explicit.min(max) } else { max })
        }
        (explicit, _) if explicit > 0 => Some(explicit),
        _ if period == 0 => Some(SYSTEM_DEFAULT_TTL.as_secs()),
        _ => None,
    };
    if let Some(max) = limit {
        let elapsed = u64::try_from((now - entry.created_ns).max(0) / 1_000_000_000).unwrap_or(0);
        let remaining = max.saturating_sub(elapsed);
        if ttl > remaining {
            ttl = remaining;
            warning = Some(super::capped_warning(
                "TTL",
                &super::human_duration(wanted),
                &super::human_duration(remaining),
            ));
        }
    }
    let mut next = (**entry).clone();
    next.expire_ns = Some(now.saturating_add((ttl as i64).saturating_mul(1_000_000_000)));
    next.last_renewal_ns = Some(now);
    next.last_ttl = ttl;
    let updated = store.update(&target.id_hash, next).await?;
    Ok((updated, ttl, warning))
}
