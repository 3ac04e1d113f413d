//! Static roles: `static-roles/:name`, `static-creds/:name`, `rotate-role/:name`, and their
//! rotation on a period or a cron schedule.
//!
//! A static role manages the password of an existing PostgreSQL user. Stored at
//! `static-role/<name>` with the current password (under the barrier; never shown by a role
//! read). A rotation first persists the new password as *pending*, then runs `ALTER ROLE`,
//! then makes it current: a crash at any point leaves either nothing changed or a pending
//! password that the next attempt applies again (setting a password twice is harmless), so
//! Tresor never loses the password PostgreSQL holds. A refusal from PostgreSQL (nothing was
//! applied) clears the pending password; a lost connection keeps it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tresor_sdk::engine::{EngineError, EngineResult, Operation, Request, Response};
use tresor_sdk::secret::SecretString;
use tresor_sdk::storage::Storage;

use super::config::{Connection, statement_list};
use super::schedule::Schedule;
use super::statements::{self, ident, literal};
use super::{Inner, roles, secret_serde};
use crate::clock::rfc3339_nano;
use crate::common::fields;

pub(crate) const PREFIX: &str = "static-role/";

/// Vault's queue tick: the shortest rotation period it accepts.
const MIN_ROTATION_PERIOD: i64 = 5;
/// Vault's smallest rotation window.
const MIN_ROTATION_WINDOW: i64 = 3600;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Pending {
    #[serde(with = "secret_serde")]
    pub password: SecretString,
    pub started_ns: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct StaticRole {
    pub db_name: String,
    pub username: String,
    /// Seconds; 0 when a schedule is used.
    #[serde(default)]
    pub rotation_period: u64,
    #[serde(default)]
    pub rotation_schedule: String,
    #[serde(default)]
    pub rotation_window: u64,
    #[serde(default)]
    pub rotation_statements: Vec<String>,
    #[serde(default = "password_type")]
    pub credential_type: String,
    #[serde(default)]
    pub credential_config: Map<String, Value>,
    #[serde(with = "secret_serde")]
    pub password: SecretString,
    /// Unix nanoseconds of the last rotation Tresor applied; 0 before the first.
    #[serde(default)]
    pub last_rotation_ns: i64,
    #[serde(default)]
    pub pending: Option<Pending>,
}

fn password_type() -> String {
    "password".to_owned()
}

impl StaticRole {
    /// When the next rotation is due (Unix seconds); `None` for a schedule that never fires.
    pub(crate) fn next_rotation(&self, now: i64) -> Option<i64> {
        let last = self.last_rotation_ns / 1_000_000_000;
        if self.rotation_period > 0 {
            return Some(
                last.saturating_add(i64::try_from(self.rotation_period).unwrap_or(i64::MAX / 2)),
            );
        }
        let schedule = Schedule::parse(&self.rotation_schedule).ok()?;
        let due = schedule.next(last)?;
        let window = i64::try_from(self.rotation_window).unwrap_or(0);
        if window > 0 && now > due.saturating_add(window) {
            // The window was missed: wait for the next scheduled time.
            return schedule.next(now);
        }
        Some(due)
    }
}

pub(crate) async fn load(storage: &dyn Storage, name: &str) -> EngineResult<Option<StaticRole>> {
    match storage.get(&format!("{PREFIX}{name}")).await? {
        Some(raw) => serde_json::from_slice(raw.expose())
            .map(Some)
            .map_err(|e| EngineError::Internal(format!("stored static role is malformed: {e}"))),
        None => Ok(None),
    }
}

async fn save(storage: &dyn Storage, name: &str, role: &StaticRole) -> EngineResult<()> {
    let bytes = zeroize::Zeroizing::new(
        serde_json::to_vec(role).map_err(|e| EngineError::Internal(e.to_string()))?,
    );
    storage.put(&format!("{PREFIX}{name}"), &bytes).await?;
    Ok(())
}

pub(crate) async fn exists(storage: &dyn Storage, name: &str) -> EngineResult<bool> {
    Ok(storage.get(&format!("{PREFIX}{name}")).await?.is_some())
}

/// `POST static-roles/:name`.
pub(crate) async fn write(
    inner: &Inner,
    request: &Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    let _guard = inner.role_locks.lock(name).await;
    if roles::exists(storage, name).await? {
        return Err(EngineError::InvalidRequest(
            "Role and Static Role names must be unique".to_owned(),
        ));
    }
    let existing = load(storage, name).await?;
    let create = existing.is_none();
    let mut role = existing.unwrap_or_else(|| StaticRole {
        credential_type: password_type(),
        ..StaticRole::default()
    });
    if let Some(db) = fields::string(request, "db_name")? {
        role.db_name = db;
    }
    if role.db_name.is_empty() {
        return Err(EngineError::InvalidRequest(
            "database name is a required field".to_owned(),
        ));
    }
    let username = fields::string(request, "username")?.unwrap_or_default();
    if username.is_empty() && create {
        return Err(EngineError::InvalidRequest(
            "username is a required field to create a static account".to_owned(),
        ));
    }
    if !role.username.is_empty() && role.username != username {
        return Err(EngineError::InvalidRequest(
            "cannot update static account username".to_owned(),
        ));
    }
    statements::check_name(&username)
        .map_err(|e| EngineError::InvalidRequest(format!("invalid username: {e}")))?;
    role.username = username;

    let period = fields::duration(request, "rotation_period", false)?;
    let schedule = fields::string(request, "rotation_schedule")?.filter(|s| !s.is_empty());
    let window = fields::duration(request, "rotation_window", false)?;
    match (&period, &schedule) {
        (Some(_), Some(_)) => {
            return Err(EngineError::InvalidRequest(
                "mutually exclusive fields rotation_period and rotation_schedule were both \
                 specified; only one of them can be provided"
                    .to_owned(),
            ));
        }
        (None, None) if create => {
            // OpenBao's wording (Vault's: "one of rotation_schedule or rotation_period must
            // be provided to create a static account").
            return Err(EngineError::InvalidRequest(
                "rotation_period is required to create static accounts".to_owned(),
            ));
        }
        _ => {}
    }
    if let Some(period) = period {
        if period < MIN_ROTATION_PERIOD {
            return Err(EngineError::InvalidRequest(format!(
                "rotation_period must be {MIN_ROTATION_PERIOD} seconds or more"
            )));
        }
        if window.is_some() {
            return Err(EngineError::InvalidRequest(
                "rotation_window is invalid with use of rotation_period".to_owned(),
            ));
        }
        role.rotation_period = u64::try_from(period).unwrap_or(0);
        role.rotation_schedule.clear();
        role.rotation_window = 0;
    }
    if let Some(spec) = schedule {
        Schedule::parse(&spec).map_err(|e| {
            EngineError::InvalidRequest(format!("could not parse rotation_schedule: {e}"))
        })?;
        role.rotation_schedule = spec;
        role.rotation_period = 0;
        if let Some(window) = window {
            if window < MIN_ROTATION_WINDOW {
                return Err(EngineError::InvalidRequest(format!(
                    "rotation_window is invalid: rotation_window must be {MIN_ROTATION_WINDOW} \
                     seconds or more"
                )));
            }
            role.rotation_window = u64::try_from(window).unwrap_or(0);
        }
    } else if window.is_some() && role.rotation_schedule.is_empty() {
        return Err(EngineError::InvalidRequest(
            "rotation_window is invalid with use of rotation_period".to_owned(),
        ));
    }
    if let Some(statements) = statement_list(request, "rotation_statements")? {
        role.rotation_statements = statements;
    } else if request.operation == Operation::Create {
        role.rotation_statements.clear();
    }
    roles::credential_fields(
        request,
        &mut role.credential_type,
        &mut role.credential_config,
    )?;

    if create {
        // The account's password is rotated at once, so Tresor knows it from the start.
        let connection = inner.connection(storage, &role.db_name).await?;
        connection.check_allowed(name)?;
        let role = rotate_locked(inner, storage, name, role, &connection, true).await?;
        inner.reschedule(name, &role);
    } else {
        save(storage, name, &role).await?;
        inner.reschedule(name, &role);
    }
    Ok(None)
}

/// `GET static-roles/:name`.
pub(crate) async fn read(storage: &dyn Storage, name: &str) -> EngineResult<Option<Response>> {
    let role = load(storage, name).await?.ok_or(EngineError::NotFound)?;
    let mut data = Map::new();
    if !role.credential_config.is_empty() {
        data.insert(
            "credential_config".into(),
            Value::Object(role.credential_config.clone()),
        );
    }
    data.insert("credential_type".into(), json!(role.credential_type));
    data.insert("db_name".into(), json!(role.db_name));
    if role.last_rotation_ns > 0 {
        data.insert(
            "last_vault_rotation".into(),
            json!(rfc3339_nano(role.last_rotation_ns)),
        );
    }
    rotation_fields(&role, &mut data);
    data.insert(
        "rotation_statements".into(),
        json!(role.rotation_statements),
    );
    data.insert("username".into(), json!(role.username));
    Ok(Some(Response::with_data(data)))
}

fn rotation_fields(role: &StaticRole, data: &mut Map<String, Value>) {
    if role.rotation_period > 0 {
        data.insert("rotation_period".into(), json!(role.rotation_period));
    } else {
        data.insert("rotation_schedule".into(), json!(role.rotation_schedule));
        if role.rotation_window > 0 {
            data.insert("rotation_window".into(), json!(role.rotation_window));
        }
    }
}

pub(crate) async fn delete(
    inner: &Inner,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    let _guard = inner.role_locks.lock(name).await;
    storage.delete(&format!("{PREFIX}{name}")).await?;
    inner.unschedule(name);
    Ok(None)
}

pub(crate) async fn list(storage: &dyn Storage) -> EngineResult<Option<Response>> {
    super::list_keys(storage, PREFIX).await
}

/// `GET static-creds/:name`: the current password, when it was set, and how long it lives.
pub(crate) async fn creds(
    inner: &Inner,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    let unknown = || EngineError::InvalidRequest(format!("unknown role: {name}"));
    let mut role = load(storage, name).await?.ok_or_else(unknown)?;
    let connection = inner.connection(storage, &role.db_name).await?;
    connection.check_allowed(name)?;
    if role.pending.is_some() {
        // A rotation was interrupted: finish it before handing out a password that PostgreSQL
        // may no longer accept.
        let _guard = inner.role_locks.lock(name).await;
        role = load(storage, name).await?.ok_or_else(unknown)?;
        if role.pending.is_some() {
            role = rotate_locked(inner, storage, name, role, &connection, false).await?;
            inner.reschedule(name, &role);
        }
    }
    let now_ns = inner.clock.now();
    let now = now_ns / 1_000_000_000;
    // Seconds to the next rotation, rounded as OpenBao shows them (a rotation that just
    // happened with a 1h period shows 3600, not 3599).
    let ttl = role.next_rotation(now).map_or(0, |next| {
        let next_ns = i128::from(next) * 1_000_000_000
            + i128::from(role.last_rotation_ns.rem_euclid(1_000_000_000));
        let left_ns = next_ns - i128::from(now_ns);
        i64::try_from((left_ns + 500_000_000).div_euclid(1_000_000_000))
            .unwrap_or(0)
            .max(0)
    });
    let mut data = Map::new();
    data.insert(
        "last_vault_rotation".into(),
        json!(rfc3339_nano(role.last_rotation_ns)),
    );
    data.insert("password".into(), json!(role.password.expose()));
    rotation_fields(&role, &mut data);
    data.insert("ttl".into(), json!(ttl));
    data.insert("username".into(), json!(role.username));
    Ok(Some(Response::with_data(data)))
}

/// `POST rotate-role/:name`.
pub(crate) async fn rotate_now(
    inner: &Inner,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    rotate(inner, storage, name).await?.ok_or_else(|| {
        EngineError::InvalidRequest("no static role found for role name".to_owned())
    })?;
    Ok(None)
}

/// Rotates `name` (or applies its pending password); `None` when it does not exist.
pub(crate) async fn rotate(
    inner: &Inner,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<StaticRole>> {
    let _guard = inner.role_locks.lock(name).await;
    let Some(role) = load(storage, name).await? else {
        inner.unschedule(name);
        return Ok(None);
    };
    let connection = inner.connection(storage, &role.db_name).await?;
    connection.check_allowed(name)?;
    let role = rotate_locked(inner, storage, name, role, &connection, false).await?;
    inner.reschedule(name, &role);
    Ok(Some(role))
}

/// The rotation itself; the caller holds the role's lock. `creating`: the role is not stored
/// yet, and a refused rotation leaves nothing behind.
async fn rotate_locked(
    inner: &Inner,
    storage: &dyn Storage,
    name: &str,
    mut role: StaticRole,
    connection: &Connection,
    creating: bool,
) -> EngineResult<StaticRole> {
    // `fresh`: the password was made by this call, so PostgreSQL cannot hold it unless this
    // call's ALTER ROLE went through.
    let (new_password, fresh) = match &role.pending {
        Some(pending) => (pending.password.clone(), false),
        None => {
            let policy = role
                .credential_config
                .get("password_policy")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
                .unwrap_or(&connection.stored.password_policy)
                .to_owned();
            let password = inner.password(&policy).await?;
            role.pending = Some(Pending {
                password: password.clone(),
                started_ns: inner.clock.now(),
            });
            // Durable before PostgreSQL hears of it.
            save(storage, name, &role).await?;
            (password, true)
        }
    };
    let in_statements = if connection.scram {
        SecretString::new(postgres_protocol::password::scram_sha_256(
            new_password.expose().as_bytes(),
        ))
    } else {
        new_password.clone()
    };
    let list = if role.rotation_statements.is_empty() {
        vec![format!(
            "ALTER ROLE {} WITH PASSWORD {}",
            ident(&role.username),
            literal(in_statements.expose())
        )]
    } else {
        statements::render_all(
            &role.rotation_statements,
            &[
                ("name", &role.username),
                ("username", &role.username),
                ("password", in_statements.expose()),
            ],
        )
    };
    let sql = SecretString::new(statements::batch(&list));
    // OpenBao nests the plugin's multi-error inside its own.
    let failed = |message: String| {
        EngineError::Failed(format!(
            "error setting credentials: 1 error occurred:\n\t* {message}\n\n"
        ))
    };
    let mut conn = match connection.pool.get().await {
        Ok(conn) => conn,
        Err(err) => {
            if fresh {
                forget_pending(storage, name, &mut role, creating).await?;
            }
            return Err(failed(err.to_string()));
        }
    };
    match conn.batch_retrying(sql.expose()).await {
        Ok(()) => {
            super::crash_failpoint("ROTATE");
            role.password = new_password;
            role.pending = None;
            role.last_rotation_ns = inner.clock.now();
            save(storage, name, &role).await?;
            Ok(role)
        }
        Err(err) => {
            // A refusal means nothing was applied; after a lost connection the outcome is
            // unknown and the pending password stays, to be applied again.
            if fresh && err.is_definite() {
                forget_pending(storage, name, &mut role, creating).await?;
            }
            Err(failed(
                err.message(connection.target(), Some(&in_statements)),
            ))
        }
    }
}

async fn forget_pending(
    storage: &dyn Storage,
    name: &str,
    role: &mut StaticRole,
    creating: bool,
) -> EngineResult<()> {
    role.pending = None;
    if creating {
        storage.delete(&format!("{PREFIX}{name}")).await?;
    } else {
        save(storage, name, role).await?;
    }
    Ok(())
}
