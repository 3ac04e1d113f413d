//! `login {role_id, secret_id}` and the renewal check of the tokens it issued.
//!
//! Every refusal keeps OpenBao's wording as its summary (`invalid role or secret ID`, `source
//! address "…" unauthorized …`), so a mount with `verbose_denials=false` answers exactly as
//! OpenBao does, and adds a detail naming what failed: the role id matches no role, the
//! secret id expired at a given time or has no uses left, the client address is outside a
//! named CIDR list. Neither ever holds the secret id.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value, json};
use tresor_sdk::auth::{Alias, Login, LoginRenewal, RenewDecision};
use tresor_sdk::engine::{Denial, EngineError, EngineResult, Request, Response};
use tresor_sdk::secret::SecretString;
use tresor_sdk::storage::{Storage, ViewOp};
use zeroize::Zeroizing;

use super::secret_id::{self, Entry, Spent, SpentReason};
use super::store::{self, Role};
use super::{AppRole, cidr, schema};
use crate::clock::rfc3339_nano;

/// OpenBao's answer to every unknown role id or secret id.
const INVALID: &str = "invalid role or secret ID";

fn invalid(detail: impl Into<String>) -> EngineError {
    Denial::bad_request(INVALID, detail).into()
}

fn client(req: &Request) -> EngineResult<IpAddr> {
    // Only in-process callers lack an address; OpenBao fails the same way.
    req.remote_addr
        .ok_or_else(|| EngineError::Internal("failed to get connection information".into()))
}

/// The role a login's `role_id` belongs to, for role quotas (OpenBao's
/// `pathLoginResolveRole`): `None` for a missing or unknown role id, or a deleted role.
pub(super) async fn resolve_role(
    m: &AppRole,
    data: &Map<String, serde_json::Value>,
    storage: &dyn Storage,
) -> EngineResult<Option<String>> {
    let role_id = match data.get("role_id") {
        Some(serde_json::Value::String(s)) => s.trim().to_owned(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => return Ok(None),
    };
    if role_id.is_empty() {
        return Ok(None);
    }
    let hasher = m.hasher(storage).await?;
    let Some(name) = store::role_name_by_id(storage, hasher, &role_id).await? else {
        return Ok(None);
    };
    Ok(store::load_role(storage, &name).await?.map(|_| name))
}

pub(super) async fn login(
    m: &AppRole,
    req: &Request,
    storage: &dyn Storage,
) -> EngineResult<Option<Response>> {
    let role_id = schema::string(req, "role_id")?.unwrap_or_default();
    let role_id = role_id.trim();
    if role_id.is_empty() {
        return Err(EngineError::InvalidRequest("missing role_id".into()));
    }
    let hasher = m.hasher(storage).await?;
    let Some(name) = store::role_name_by_id(storage, hasher, role_id).await? else {
        return Err(invalid(
            "no role has the role_id that was sent (read it from role/<name>/role-id)",
        ));
    };
    let Some(role) = store::load_role(storage, &name).await? else {
        return Err(invalid(format!(
            "the role_id belongs to role '{name}', which no longer exists"
        )));
    };

    let mut metadata = BTreeMap::new();
    let mut token_cidrs = role.token.bound_cidrs.clone();
    let mut internal = Map::new();
    internal.insert("role_name".into(), json!(role.name));
    if role.bind_secret_id {
        let spent = spend_secret_id(m, req, storage, &role).await?;
        if !spent.token_bound_cidrs.is_empty() {
            token_cidrs = cidr::sockaddr_form(&spent.token_bound_cidrs);
        }
        internal.insert("secret_id_accessor".into(), json!(spent.accessor));
        metadata = spent.metadata;
    } else {
        check_role_cidrs(req, &role)?;
    }
    metadata.insert("role_name".into(), role.name.clone());

    let mut token = role.token.clone();
    token.bound_cidrs = token_cidrs;
    if role.token_strictly_bind_ip {
        token.bound_cidrs = vec![client(req)?.to_string()];
    }
    Ok(Some(Response {
        auth: Some(Login {
            // The core prefixes the mount path: `approle`, as in Vault.
            display_name: String::new(),
            metadata: metadata.clone(),
            alias: Alias {
                name: role.role_id.clone(),
                metadata,
            },
            group_aliases: Vec::new(),
            token,
            renewable: true,
            internal,
        }),
        ..Response::default()
    }))
}

/// The role's `secret_id_bound_cidrs` against the client address.
fn check_role_cidrs(req: &Request, role: &Role) -> EngineResult<()> {
    let bound = role.bound_cidrs();
    if bound.is_empty() {
        return Ok(());
    }
    let ip = client(req)?;
    if cidr::allows(bound, ip) {
        return Ok(());
    }
    Err(Denial::bad_request(
        format!(
            "source address {:?} unauthorized by CIDR restrictions on the role",
            ip.to_string()
        ),
        format!(
            "client address {ip} is not in role '{}''s secret_id_bound_cidrs {}",
            role.name,
            cidr::shown(bound)
        ),
    )
    .into())
}

/// Checks the secret id the request presents and spends one of its uses (the last use deletes
/// it), all under its lock so two logins cannot both spend the same last use. Every check
/// comes before the spend: a refused login costs nothing.
async fn spend_secret_id(
    m: &AppRole,
    req: &Request,
    storage: &dyn Storage,
    role: &Role,
) -> EngineResult<Entry> {
    let raw = Zeroizing::new(schema::string(req, "secret_id")?.unwrap_or_default());
    let secret = SecretString::new(raw.trim().to_owned());
    if secret.is_empty() {
        return Err(EngineError::InvalidRequest("missing secret_id".into()));
    }
    let hasher = m.hasher(storage).await?;
    let hmac = secret_id::secret_hmac(hasher, &secret).map_err(|e| {
        EngineError::InvalidRequest(format!("failed to create HMAC of secret_id: {e}"))
    })?;
    let key = secret_id::entry_key(&role.uid, &hmac);
    let _guard = m.secret_locks.lock(&key).await;
    let Some(mut entry) = store::read::<Entry>(storage, &key).await? else {
        return Err(invalid(why_absent(storage, role, &hmac).await?));
    };
    let now = m.now();
    if entry.expired(now) {
        return Err(invalid(format!(
            "the secret id for role '{}' expired at {}",
            role.name,
            rfc3339_nano(entry.expiration_ns)
        )));
    }
    if !cidr::subset(role.bound_cidrs(), &entry.cidr_list) {
        return Err(Denial::bad_request(
            cidr::subset_error(role.bound_cidrs(), &entry.cidr_list),
            format!(
                "role '{}''s secret_id_bound_cidrs changed after this secret id was issued; issue a new secret id",
                role.name
            ),
        )
        .into());
    }
    if !entry.cidr_list.is_empty() {
        let ip = client(req)?;
        if !cidr::allows(&entry.cidr_list, ip) {
            // OpenBao words this two ways, by whether the secret id has a use limit.
            let how = if entry.num_uses == 0 { "through" } else { "by" };
            return Err(Denial::bad_request(
                format!(
                    "source address {:?} unauthorized {how} CIDR restrictions on the secret ID",
                    ip.to_string()
                ),
                format!(
                    "client address {ip} is not in the secret id's cidr_list {}",
                    cidr::shown(&entry.cidr_list)
                ),
            )
            .into());
        }
    }
    check_role_cidrs(req, role)?;

    match entry.num_uses {
        0 => {}
        1 => {
            let spent = Spent {
                reason: SpentReason::UsedUp,
                at_ns: now,
            };
            secret_id::remove(storage, hasher, &role.uid, &hmac, &entry, Some(spent)).await?;
        }
        _ => {
            entry.num_uses -= 1;
            entry.last_updated_ns = now;
            storage
                .transaction(vec![ViewOp::Put {
                    key,
                    value: store::encode(&entry)?,
                }])
                .await?;
        }
    }
    Ok(entry)
}

/// The detail for a secret id the role does not have: used up or tidied (a spent marker
/// remembers that for a day), or never issued / destroyed.
async fn why_absent(storage: &dyn Storage, role: &Role, hmac: &str) -> EngineResult<String> {
    let spent = store::read::<Spent>(storage, &secret_id::spent_key(&role.uid, hmac)).await?;
    Ok(match spent {
        Some(Spent {
            reason: SpentReason::UsedUp,
            at_ns,
        }) => format!(
            "the secret id for role '{}' has no uses left (its last use was at {})",
            role.name,
            rfc3339_nano(at_ns)
        ),
        Some(Spent {
            reason: SpentReason::Expired,
            at_ns,
        }) => format!(
            "the secret id for role '{}' expired at {}",
            role.name,
            rfc3339_nano(at_ns)
        ),
        None => format!(
            "role '{}' has no such secret id (it was never issued to this role, or was destroyed)",
            role.name
        ),
    })
}

/// A token from this method asks for renewal: its role must still exist, and the role's
/// current TTLs apply (OpenBao's `pathLoginRenew`).
pub(super) async fn renew(
    login: &LoginRenewal,
    storage: &dyn Storage,
) -> EngineResult<RenewDecision> {
    let name = login
        .internal
        .get("role_name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name.is_empty() {
        return Err(EngineError::Internal(
            "failed to fetch role_name during renewal".into(),
        ));
    }
    let Some(role) = store::load_role(storage, name).await? else {
        return Err(Denial::bad_request(
            // OpenBao's expiration manager prefixes this with `failed to renew entry: `; that
            // wrapping is the core's, for every method.
            format!("role {name:?} does not exist during renewal"),
            format!(
                "the AppRole role '{name}' was deleted after this token was issued; log in again with a role that exists"
            ),
        )
        .into());
    };
    Ok(RenewDecision::from_settings(&role.token))
}
