//! `rotate-root/:name`: changes the configured admin's password in PostgreSQL and stores only
//! the new one.
//!
//! As for static roles, the new password is persisted as pending before `ALTER ROLE`; the
//! config keeps the old one as current until PostgreSQL has accepted the change. An
//! interrupted rotation is finished (the pending password applied again) the next time
//! rotate-root runs or when the engine starts: to apply it, Tresor connects with the current
//! password, and if PostgreSQL refuses that login, with the pending one.

use tresor_sdk::engine::{EngineError, EngineResult, Response};
use tresor_sdk::secret::SecretString;
use tresor_sdk::storage::Storage;

use super::Inner;
use super::config::{self, Connection, StoredConfig};
use super::statements::{self, ident, literal};

fn failed(message: impl std::fmt::Display) -> EngineError {
    EngineError::Failed(format!("unable to rotate root credentials: {message}"))
}

/// `POST rotate-root/:name`.
pub(crate) async fn rotate(
    inner: &Inner,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    let _guard = inner.config_locks.lock(name).await;
    let stored = config::load(storage, name)
        .await?
        .ok_or_else(|| config::not_found(name))?;
    apply(inner, storage, name, stored).await?;
    Ok(None)
}

/// Finishes a rotation a crash interrupted, if any (called when the engine starts).
pub(crate) async fn finish_pending(
    inner: &Inner,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<()> {
    let _guard = inner.config_locks.lock(name).await;
    let Some(stored) = config::load(storage, name).await? else {
        return Ok(());
    };
    if stored.pending_password.is_some() {
        apply(inner, storage, name, stored).await?;
    }
    Ok(())
}

async fn apply(
    inner: &Inner,
    storage: &dyn Storage,
    name: &str,
    mut stored: StoredConfig,
) -> EngineResult<()> {
    let current = Connection::build(stored.clone()).map_err(failed)?;
    if current.username.is_empty() {
        return Err(failed("no username in configuration"));
    }
    let (new_password, fresh) = match &stored.pending_password {
        Some(p) => (p.clone(), false),
        None => {
            let p = inner.password(&stored.password_policy).await?;
            stored.pending_password = Some(p.clone());
            config::save(storage, name, &stored).await?;
            (p, true)
        }
    };
    let in_statements = if current.scram {
        SecretString::new(postgres_protocol::password::scram_sha_256(
            new_password.expose().as_bytes(),
        ))
    } else {
        new_password.clone()
    };
    let list = if stored.root_rotation_statements.is_empty() {
        vec![format!(
            "ALTER ROLE {} WITH PASSWORD {}",
            ident(&current.username),
            literal(in_statements.expose())
        )]
    } else {
        statements::render_all(
            &stored.root_rotation_statements,
            &[
                ("name", &current.username),
                ("username", &current.username),
                ("password", in_statements.expose()),
            ],
        )
    };
    let sql = SecretString::new(statements::batch(&list));
    // A fresh pool: the cached one may hold connections, but a rotation must prove it can log in.
    let mut conn = match current.pool.get().await {
        Ok(conn) => conn,
        Err(first) if !fresh => {
            // PostgreSQL may already hold the pending password.
            let mut with_pending = stored.clone();
            with_pending.password = new_password.clone();
            let retry = Connection::build(with_pending).map_err(failed)?;
            match retry.pool.get().await {
                Ok(conn) => conn,
                Err(_) => return Err(failed(first)),
            }
        }
        Err(err) => {
            stored.pending_password = None;
            config::save(storage, name, &stored).await?;
            return Err(failed(err));
        }
    };
    match conn.batch_retrying(sql.expose()).await {
        Ok(()) => {
            super::crash_failpoint("ROTATE_ROOT");
            drop(conn);
            stored.password = new_password;
            stored.pending_password = None;
            config::save(storage, name, &stored).await?;
            inner.forget_connection(name);
            Ok(())
        }
        Err(err) => {
            if fresh && err.is_definite() {
                stored.pending_password = None;
                config::save(storage, name, &stored).await?;
            }
            Err(failed(err.message(current.target(), Some(&in_statements))))
        }
    }
}
