//! `role/` (LIST), `role/:name` (create, read, update, delete) and `role/:name/role-id`.

use std::borrow::Cow;

use serde_json::{Map, Value, json};
use tresor_sdk::duration::format_go;
use tresor_sdk::engine::{EngineError, EngineResult, Operation, Request, Response};
use tresor_sdk::storage::Storage;

use super::store::{self, MAX_HMAC_INPUT, Role};
use super::{AppRole, cidr, go_error, schema, secret_id, status_error};
use crate::auth::token_fields;

/// LIST `role/`: role names, with OpenBao's `after` / `limit` paging.
pub(super) async fn list(req: &Request, storage: &dyn Storage) -> EngineResult<Option<Response>> {
    let names: Vec<String> = storage
        .list(store::ROLE_PREFIX)
        .await?
        .into_iter()
        .filter(|n| !n.ends_with('/'))
        .collect();
    Ok(Some(Response::list(page(req, names)?)))
}

/// OpenBao's `ListPage`: keys after `after` (which need not exist), at most `limit` of them
/// (zero or negative: all). An empty answer is a 404, as for every LIST.
pub(super) fn page(req: &Request, keys: Vec<String>) -> EngineResult<Vec<String>> {
    let after = schema::string(req, "after")?.unwrap_or_default();
    let limit = schema::int(req, "limit")?.unwrap_or(0);
    let mut keys: Vec<String> = keys
        .into_iter()
        .filter(|k| after.is_empty() || k.as_str() > after.as_str())
        .collect();
    if limit > 0 {
        keys.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    if keys.is_empty() {
        return Err(EngineError::NotFound);
    }
    Ok(keys)
}

pub(super) async fn handle(
    m: &AppRole,
    req: &Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    match req.operation {
        Operation::Read => read(storage, name).await,
        Operation::Delete => delete(m, storage, name).await,
        _ => write(m, req, storage, name).await,
    }
}

async fn read(storage: &dyn Storage, name: &str) -> EngineResult<Option<Response>> {
    let Some(role) = store::load_role(storage, name).await? else {
        return Err(EngineError::NotFound);
    };
    let mut data = Map::new();
    data.insert("bind_secret_id".into(), json!(role.bind_secret_id));
    data.insert(
        "secret_id_bound_cidrs".into(),
        json!(role.secret_id_bound_cidrs),
    );
    data.insert("secret_id_num_uses".into(), json!(role.secret_id_num_uses));
    data.insert("secret_id_ttl".into(), json!(role.secret_id_ttl));
    data.insert("local_secret_ids".into(), json!(role.local_secret_ids));
    token_fields::write(&role.token, &mut data);
    data.insert(
        "token_strictly_bind_ip".into(),
        json!(role.token_strictly_bind_ip),
    );
    if role.period != 0 {
        data.insert("period".into(), json!(role.period));
    }
    if !role.policies.is_empty() {
        data.insert("policies".into(), json!(role.policies));
    }
    let mut response = Response::with_data(data);
    if !role.has_constraint() {
        response.warnings.push(
            "Role does not have any constraints set on it. Updates to this role will require a constraint to be set"
                .into(),
        );
    }
    Ok(Some(response))
}

async fn delete(m: &AppRole, storage: &dyn Storage, name: &str) -> EngineResult<Option<Response>> {
    let name = name.to_lowercase();
    let _guard = m.role_locks.lock(&name).await;
    let Some(role) = store::load_role(storage, &name).await? else {
        return Ok(None);
    };
    // The role and its index go first: from then on no login can reach its secret ids, and a
    // role created again under this name gets a new uid, so leftovers stay unreachable even if
    // removing them is interrupted (tidy finishes the job).
    let hasher = m.hasher(storage).await?;
    store::delete_role(storage, hasher, &role).await?;
    secret_id::flush(m, storage, &role).await?;
    Ok(None)
}

/// `role/:name` create or update, in OpenBao's order of checks (so the first error a request
/// gets is the one OpenBao would give).
async fn write(
    m: &AppRole,
    req: &Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    if name.len() > MAX_HMAC_INPUT {
        return Err(EngineError::InvalidRequest(format!(
            "role_name is longer than maximum of {MAX_HMAC_INPUT} bytes"
        )));
    }
    let name = name.to_lowercase();
    let _guard = m.role_locks.lock(&name).await;
    let existing = store::load_role(storage, &name).await?;
    let creating = existing.is_none();
    if creating && req.operation != Operation::Create {
        // The existence check said the role was there; it has gone since.
        return Err(status_error(
            404,
            format!("role name {name:?} doesn't exist"),
        ));
    }
    let mut role = match existing {
        Some(role) => role,
        None => Role::new(&name)?,
    };
    let mut warnings = Vec::new();

    // `default-service` / `default-batch` mean nothing on a role; OpenBao adjusts them.
    let mut token_req = Cow::Borrowed(req);
    if let Some(t) = schema::string(req, "token_type")? {
        let adjusted = match t.as_str() {
            "default-service" => Some("service"),
            "default-batch" => Some("batch"),
            _ => None,
        };
        if let Some(to) = adjusted {
            token_req
                .to_mut()
                .data
                .insert("token_type".into(), Value::String(to.into()));
            warnings.push(format!("{t} has no useful meaning; adjusting to {to}"));
        }
    }
    apply_token_fields(&mut role, &token_req)?;

    if let Some(local) = schema::boolean(req, "local_secret_ids")? {
        if !creating {
            return Err(EngineError::InvalidRequest(
                "local_secret_ids can only be modified during role creation".into(),
            ));
        }
        role.local_secret_ids = local;
    }
    let previous_role_id = role.role_id.clone();
    match schema::string(req, "role_id")? {
        Some(id) => role.role_id = id,
        None if creating => role.role_id = store::uuid()?,
        None => {}
    }
    if role.role_id.is_empty() {
        return Err(EngineError::InvalidRequest(
            "invalid role_id supplied, or failed to generate a role_id".into(),
        ));
    }
    if let Some(b) = schema::boolean(req, "bind_secret_id")? {
        role.bind_secret_id = b;
    }
    let cidrs = match schema::list(req, "secret_id_bound_cidrs")? {
        Some(list) => Some(list),
        None => schema::list(req, "bound_cidr_list")?,
    };
    if let Some(list) = cidrs {
        role.secret_id_bound_cidrs = Some(list);
    }
    cidr::validate_blocks(role.bound_cidrs())
        .map_err(|e| go_error(format!("failed to validate CIDR blocks: {e}")))?;
    if let Some(n) = schema::int(req, "secret_id_num_uses")? {
        role.secret_id_num_uses = n;
    }
    if role.secret_id_num_uses < 0 {
        return Err(EngineError::InvalidRequest(
            "secret_id_num_uses cannot be negative".into(),
        ));
    }
    if let Some(s) = schema::secs(req, "secret_id_ttl")? {
        role.secret_id_ttl = s;
    }
    track_deprecated(&mut role, req)?;

    let mount_max = req.mount.max_lease_ttl.as_secs();
    if role.period > mount_max {
        return Err(EngineError::InvalidRequest(format!(
            "period of {:?} is greater than the backend's maximum lease TTL of {:?}",
            format_go(role.period),
            format_go(mount_max)
        )));
    }
    if role.token.max_ttl > mount_max {
        warnings.push("token_max_ttl is greater than the backend mount's maximum TTL value; issued tokens' max TTL value will be truncated".into());
    }
    save(m, storage, &role, &previous_role_id).await?;
    Ok((!warnings.is_empty()).then(|| Response {
        warnings,
        ..Response::default()
    }))
}

/// The `token_*` fields through the shared parser, with OpenBao's wording for a bad
/// `token_bound_cidrs` and its `token_strictly_bind_ip` (which AppRole roles also take).
pub(super) fn apply_token_fields(role: &mut Role, req: &Request) -> EngineResult<()> {
    if let Some(list) = schema::list(req, "token_bound_cidrs")? {
        cidr::parse_addrs(&list).map_err(EngineError::InvalidRequest)?;
    }
    token_fields::apply(&mut role.token, req, &["policies", "period"])?;
    role.token.bound_cidrs = cidr::sockaddr_form(&role.token.bound_cidrs);
    if let Some(b) = schema::boolean(req, "token_strictly_bind_ip")? {
        role.token_strictly_bind_ip = b;
    }
    if role.token_strictly_bind_ip && !role.token.bound_cidrs.is_empty() {
        return Err(EngineError::InvalidRequest(
            "'token_strictly_bind_ip' conflicts with 'token_bound_cidrs'; set only one".into(),
        ));
    }
    Ok(())
}

/// OpenBao's `UpgradeValue` for the deprecated `policies` and `period`: the old field is shown
/// on reads while it was written last (with the new one, or alone), and cleared when only the
/// new one is written. The token settings themselves came from `token_fields::apply`.
fn track_deprecated(role: &mut Role, req: &Request) -> EngineResult<()> {
    match (
        schema::present(req, "token_policies"),
        schema::list(req, "policies")?,
    ) {
        (false, Some(_)) | (true, Some(_)) => role.policies = role.token.policies.clone(),
        (true, None) => role.policies.clear(),
        (false, None) => {}
    }
    match (
        schema::present(req, "token_period"),
        schema::secs(req, "period")?,
    ) {
        (false, Some(_)) | (true, Some(_)) => role.period = role.token.period,
        (true, None) => role.period = 0,
        (false, None) => {}
    }
    Ok(())
}

/// Stores a role after OpenBao's last checks: it must bind something, and its role id must not
/// belong to another role. The role-id lock makes the check and the claim one step.
pub(super) async fn save(
    m: &AppRole,
    storage: &dyn Storage,
    role: &Role,
    previous_role_id: &str,
) -> EngineResult<()> {
    if !role.has_constraint() {
        return Err(go_error(
            "at least one constraint should be enabled on the role",
        ));
    }
    let hasher = m.hasher(storage).await?;
    let _claim = m
        .role_id_locks
        .lock(&hasher.hash(store::Hashed::RoleId, &role.role_id))
        .await;
    if let Some(owner) = store::role_name_by_id(storage, hasher, &role.role_id).await?
        && owner != role.name
    {
        return Err(go_error("role_id already in use"));
    }
    store::save_role(storage, hasher, role, previous_role_id).await
}

/// `role/:name/role-id`: read it, or set a custom one.
pub(super) async fn role_id(
    m: &AppRole,
    req: &Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    if req.operation == Operation::Read {
        let Some(role) = store::load_role(storage, name).await? else {
            return Err(EngineError::NotFound);
        };
        let mut data = Map::new();
        data.insert("role_id".into(), json!(role.role_id));
        return Ok(Some(Response::with_data(data)));
    }
    let name = name.to_lowercase();
    let _guard = m.role_locks.lock(&name).await;
    let Some(mut role) = store::load_role(storage, &name).await? else {
        return Err(EngineError::UnsupportedPath);
    };
    let previous = role.role_id.clone();
    role.role_id = schema::string(req, "role_id")?.unwrap_or_default();
    if role.role_id.is_empty() {
        return Err(EngineError::InvalidRequest("missing role_id".into()));
    }
    save(m, storage, &role, &previous).await?;
    Ok(None)
}
