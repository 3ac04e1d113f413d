//! Dynamic credentials: `creds/:role` creates a PostgreSQL role with a lease; the lease's
//! renewal moves its `VALID UNTIL`, its revocation drops it.
//!
//! Order of an issue, for crash safety: a rollback record is durable *before* the role is
//! committed (the creation statements run in an explicit transaction while the record is
//! written, and `COMMIT` waits for both); the core deletes it in the same commit that persists
//! the lease (`LeaseSpec::rollback_key`). A crash in between leaves the record, and the engine's
//! rollback sweep drops the role (`rollback`). Credentials are therefore handed out only
//! once their lease is persisted, and no role outlives both its record and its lease.
//!
//! Nothing here takes an engine-wide lock: issues and revocations on one config run
//! concurrently up to its pool size.

use serde_json::{Map, Value, json};
use tresor_sdk::engine::{
    EngineError, EngineResult, Lease, LeaseRenewal, LeaseSpec, Request, Response,
};
use tresor_sdk::secret::SecretString;
use tresor_sdk::storage::Storage;

use super::config::Connection;
use super::pool::{Committed, Pooled, QueryError};
use super::statements::{self, ident, literal};
use super::username::Data;
use super::{Inner, roles, rollback};

/// Vault adds this much to `VALID UNTIL` beyond the lease, so the role never expires before
/// the lease that revokes it.
const VALID_UNTIL_GRACE_SECS: i64 = 5;

/// `VALID UNTIL` as Vault writes it: Go's `2006-01-02 15:04:05-0700`, UTC.
pub(crate) fn expiration_text(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}+0000",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => "infinity".to_owned(),
    }
}

/// The password as the statements receive it: a SCRAM verifier when the config says so.
fn statement_password(connection: &Connection, password: &SecretString) -> SecretString {
    if connection.scram {
        SecretString::new(postgres_protocol::password::scram_sha_256(
            password.expose().as_bytes(),
        ))
    } else {
        password.clone()
    }
}

/// `GET creds/:role`.
pub(crate) async fn issue(
    inner: &Inner,
    request: &Request,
    storage: &dyn Storage,
    role_name: &str,
) -> EngineResult<Option<Response>> {
    let role = roles::load(storage, role_name)
        .await?
        .ok_or_else(|| EngineError::InvalidRequest(format!("unknown role: {role_name}")))?;
    let connection = inner.connection(storage, &role.db_name).await?;
    connection.check_allowed(role_name)?;
    if role.creation_statements.is_empty() {
        return Err(EngineError::Failed("empty creation statements".to_owned()));
    }
    // The TTL the core will grant: the role's (or the mount's default), capped by the role's
    // maximum (or the mount's). VALID UNTIL follows it.
    let mount = &request.mount;
    let wanted = if role.default_ttl > 0 {
        role.default_ttl
    } else {
        mount.default_lease_ttl.as_secs()
    };
    let cap = if role.max_ttl > 0 {
        role.max_ttl.min(mount.max_lease_ttl.as_secs())
    } else {
        mount.max_lease_ttl.as_secs()
    };
    let ttl = wanted.min(cap);
    let now_ns = inner.clock.now();
    let now = now_ns / 1_000_000_000;
    let expiration = expiration_text(
        now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX / 2))
            .saturating_add(VALID_UNTIL_GRACE_SECS),
    );
    let username = connection
        .username_template
        .render(
            &Data {
                role_name: role_name.to_owned(),
                display_name: request.display_name.clone(),
            },
            now_ns,
        )
        .and_then(|u| statements::check_name(&u).map(|()| u))
        .map_err(|e| EngineError::Failed(format!("unable to generate username: {e}")))?;
    let policy = role
        .credential_config
        .get("password_policy")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .unwrap_or(&connection.stored.password_policy)
        .to_owned();
    let password = inner.password(&policy).await?;
    let in_statements = statement_password(&connection, &password);

    let undo = if role.rollback_statements.is_empty() {
        role.revocation_statements.clone()
    } else {
        role.rollback_statements.clone()
    };
    let record = rollback::Record::new(&username, &role.db_name, role_name, undo, now_ns);
    let creation = SecretString::new(statements::batch(&statements::render_all(
        &role.creation_statements,
        &[
            ("name", &username),
            ("username", &username),
            ("password", in_statements.expose()),
            ("expiration", &expiration),
        ],
    )));
    let fail = |err: QueryError| {
        EngineError::Failed(err.message(connection.target(), Some(&in_statements)))
    };
    let mut conn = connection.pool.get().await?;
    // The statements run in an explicit transaction while the rollback record is being made
    // durable; COMMIT is sent once the record is on disk. So the role exists (is committed)
    // only once its record is, without the record's fsync adding to the request's latency,
    // and without waiting for the statements' answer before sending COMMIT. If anything fails
    // before COMMIT, PostgreSQL rolls back (also when Tresor dies: the connection drops).
    let open = SecretString::new(format!("BEGIN;\n{}", creation.expose()));
    let rollback_key = match conn
        .commit_after(open.expose(), rollback::record(storage, record))
        .await
    {
        Committed::Done(key) => key,
        Committed::NotStarted(err) => return Err(fail(err)),
        Committed::GateFailed(err) => return Err(err),
        Committed::Failed(key, err) => {
            if err.is_definite() {
                // PostgreSQL refused: nothing was committed, nothing to undo.
                let _ = storage.delete(&key).await;
            }
            // Otherwise the commit may have happened: the record stays for the rollback sweep.
            return Err(fail(err));
        }
    };
    drop(conn);

    super::crash_failpoint("CREATE");

    let mut internal = Map::new();
    internal.insert("username".into(), json!(username));
    internal.insert("role".into(), json!(role_name));
    internal.insert("db_name".into(), json!(role.db_name));
    let mut data = Map::new();
    data.insert("password".into(), json!(password.expose()));
    data.insert("username".into(), json!(username));
    Ok(Some(Response {
        data: Some(data),
        lease: Some(LeaseSpec {
            // What the role asks for: the core applies the same caps (and warns as OpenBao
            // does when the maximum cuts the TTL short), so the lease ends with VALID UNTIL.
            ttl: std::time::Duration::from_secs(role.default_ttl),
            max_ttl: std::time::Duration::from_secs(role.max_ttl),
            renewable: true,
            managed: true,
            internal,
            rollback_key: Some(rollback_key),
        }),
        ..Response::default()
    }))
}

fn internal_str<'a>(lease: &'a Lease, key: &str) -> EngineResult<&'a str> {
    lease
        .internal
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| EngineError::Internal(format!("lease has no {key} in its internal data")))
}

/// The role's statements for renewal or revocation; a role deleted since the issue counts as
/// one with none (the defaults apply), as in Vault.
async fn role_of(storage: &dyn Storage, lease: &Lease) -> EngineResult<Option<roles::Role>> {
    match lease.internal.get("role").and_then(Value::as_str) {
        Some(name) => roles::load(storage, name).await,
        None => Ok(None),
    }
}

/// Extends `VALID UNTIL` to the renewed lease's end (plus Vault's grace).
pub(crate) async fn renew(
    inner: &Inner,
    lease: &Lease,
    storage: &dyn Storage,
) -> EngineResult<LeaseRenewal> {
    let username = internal_str(lease, "username")?;
    let db_name = internal_str(lease, "db_name")?;
    let role = role_of(storage, lease).await?;
    let connection = inner.connection(storage, db_name).await?;
    let now = inner.clock.now() / 1_000_000_000;
    let expiration = expiration_text(
        now.saturating_add(i64::try_from(lease.ttl.as_secs()).unwrap_or(i64::MAX / 2))
            .saturating_add(VALID_UNTIL_GRACE_SECS),
    );
    let custom = role.map(|r| r.renew_statements).unwrap_or_default();
    let statements = if custom.is_empty() {
        vec![format!(
            "ALTER ROLE {} VALID UNTIL {}",
            ident(username),
            literal(&expiration)
        )]
    } else {
        statements::render_all(
            &custom,
            &[
                ("name", username),
                ("username", username),
                ("expiration", &expiration),
            ],
        )
    };
    let mut conn = connection.pool.get().await?;
    conn.batch(&statements::batch(&statements))
        .await
        .map_err(|e| EngineError::Failed(e.message(connection.target(), None)))?;
    Ok(LeaseRenewal::default())
}

/// A renewal without an increment gets the role's current `default_ttl` (0: the mount's
/// default), as Vault's database backend answers; a role deleted since keeps the lease's TTL.
pub(crate) async fn renewal_default_ttl(
    lease: &Lease,
    storage: &dyn Storage,
) -> EngineResult<Option<std::time::Duration>> {
    Ok(role_of(storage, lease)
        .await?
        .map(|role| std::time::Duration::from_secs(role.default_ttl)))
}

/// Drops the lease's role.
pub(crate) async fn revoke(
    inner: &Inner,
    lease: &Lease,
    storage: &dyn Storage,
) -> EngineResult<()> {
    let username = internal_str(lease, "username")?;
    let db_name = internal_str(lease, "db_name")?;
    let role = role_of(storage, lease).await?;
    let connection = inner.connection(storage, db_name).await?;
    let custom = role.map(|r| r.revocation_statements).unwrap_or_default();
    drop_user(&connection, username, &custom).await
}

/// Removes `username` from PostgreSQL with the role's statements, or by default: end its
/// sessions and drop it, in one transaction (one round trip). A role that still owns objects
/// or holds privileges in this database (`DROP ROLE` refused with SQLSTATE 2BP01) is then
/// dropped the long way, again in one transaction: end its sessions, hand what it owns to
/// the admin (`REASSIGN OWNED`), drop its privileges (`DROP OWNED`), drop it. Most roles hold
/// nothing, so most revocations cost PostgreSQL little more than the `DROP ROLE` itself.
///
/// Ending another role's sessions and `REASSIGN`/`DROP OWNED` need the role's privileges: a
/// superuser (or a member of `pg_signal_backend`) has them; a `CREATEROLE` admin is refused
/// (SQLSTATE 42501) and, from then on, first makes itself a member of the role
/// (`GRANT … TO CURRENT_USER`, which `CREATEROLE` allows), in the same transaction. A role
/// that is already gone counts as dropped.
pub(crate) async fn drop_user(
    connection: &Connection,
    username: &str,
    custom: &[String],
) -> EngineResult<()> {
    let target = connection.target();
    let fail = |e: QueryError| EngineError::Failed(e.message(target, None));
    let mut conn = connection.pool.get().await?;
    if !custom.is_empty() {
        let sql = statements::batch(&statements::render_all(
            custom,
            &[("name", username), ("username", username)],
        ));
        return match conn.batch(&sql).await {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some("42704") && !role_exists(&conn, username).await? => Ok(()),
            Err(e) => Err(fail(e)),
        };
    }
    let mut owns = false;
    loop {
        let join = connection.pool.needs_membership();
        let sql = default_revocation(username, join, owns);
        match conn.batch(&sql).await {
            Ok(()) => return Ok(()),
            Err(e) if e.code() == Some("42704") && !role_exists(&conn, username).await? => {
                return Ok(());
            }
            Err(e) if e.code() == Some("42501") && !join => connection.pool.set_needs_membership(),
            Err(e) if e.code() == Some("2BP01") && !owns => owns = true,
            Err(e) => return Err(fail(e)),
        }
    }
}

/// The default revocation as one batch: [join the role,] end its sessions, [reassign and drop
/// what it owns,] drop it. Sessions are found through `pg_stat_get_activity` by role oid, not
/// through the `pg_stat_activity` view, whose joins cost PostgreSQL more than the `DROP ROLE`
/// on a busy server; the `regrole` cast fails with 42704 when the role is already gone.
fn default_revocation(username: &str, join: bool, owns: bool) -> String {
    let user = ident(username);
    let mut list = Vec::with_capacity(5);
    if join {
        list.push(format!("GRANT {user} TO CURRENT_USER"));
    }
    list.push(format!(
        "SELECT pg_terminate_backend(a.pid) FROM pg_stat_get_activity(NULL::integer) a \
         WHERE a.usesysid = {}::regrole AND a.pid <> pg_backend_pid()",
        literal(&user)
    ));
    if owns {
        list.push(format!("REASSIGN OWNED BY {user} TO CURRENT_USER"));
        list.push(format!("DROP OWNED BY {user}"));
    }
    list.push(format!("DROP ROLE {user}"));
    statements::batch(&list)
}

async fn role_exists(conn: &Pooled, username: &str) -> EngineResult<bool> {
    let rows = conn
        .client()?
        .query("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&username])
        .await
        .map_err(|e| EngineError::Failed(format!("failed to execute query: {e}")))?;
    Ok(!rows.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_until_uses_vaults_layout() {
        assert_eq!(expiration_text(1_700_000_000), "2023-11-14 22:13:20+0000");
    }
}
