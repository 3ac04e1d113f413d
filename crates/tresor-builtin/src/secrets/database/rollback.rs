//! Rollback records: what to undo if a role was created but its lease never persisted.
//!
//! `rollback/<id>` is written before `CREATE ROLE` and deleted by the core in the commit that
//! persists the lease. A record still present later means one of: the request is still in
//! flight; the server crashed between the two; registration failed and so did the core's
//! immediate revocation. The sweep drops the role (the role's rollback statements, else its
//! revocation statements, else the default drop), then deletes the record.
//!
//! When is a record safe to roll back? A record written by another process: at once (that
//! process is gone; this is a single-node server). A record of this process: only once it is
//! older than [`IN_FLIGHT_LIMIT`], which no request can outlive (pool wait + statement
//! timeout), so an in-flight issue, including one on an engine instance that a tune replaced
//! meanwhile, is never undone under its feet.

use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tresor_sdk::engine::{EngineError, EngineResult};
use tresor_sdk::storage::Storage;

use super::Inner;
use super::creds;
use crate::clock::Clock as _;

pub(crate) const PREFIX: &str = "rollback/";

/// Longer than any issue can take: 30 s pool wait + 5 s connect + 30 s statements, doubled.
pub(crate) const IN_FLIGHT_LIMIT: Duration = Duration::from_secs(130);

/// This process's identity, so records left by a previous (crashed) process are recognised.
pub(crate) fn process_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        super::username::random_alphanumeric(16).unwrap_or_else(|_| {
            format!(
                "pid{}-{}",
                std::process::id(),
                crate::clock::SystemClock.now()
            )
        })
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub username: String,
    pub db_name: String,
    pub role: String,
    /// The statements that undo the creation; empty means the default drop.
    #[serde(default)]
    pub statements: Vec<String>,
    pub process: String,
    pub created_ns: i64,
}

impl Record {
    pub(crate) fn new(
        username: &str,
        db_name: &str,
        role: &str,
        statements: Vec<String>,
        now_ns: i64,
    ) -> Self {
        Self {
            username: username.to_owned(),
            db_name: db_name.to_owned(),
            role: role.to_owned(),
            statements,
            process: process_id().to_owned(),
            created_ns: now_ns,
        }
    }
}

/// Writes a record durably and returns its storage key.
pub(crate) async fn record(storage: &dyn Storage, record: Record) -> EngineResult<String> {
    let id = super::username::random_alphanumeric(24).map_err(EngineError::Internal)?;
    let key = format!("{PREFIX}{id}");
    let bytes = serde_json::to_vec(&record).map_err(|e| EngineError::Internal(e.to_string()))?;
    storage.put(&key, &bytes).await?;
    Ok(key)
}

/// Rolls back every record that is safe to roll back; returns how many were undone.
pub(crate) async fn sweep(inner: &Inner, storage: &dyn Storage) -> usize {
    let keys = match storage.list(PREFIX).await {
        Ok(keys) => keys,
        Err(err) => {
            tracing::warn!(error = %err, "database rollback: cannot list records");
            return 0;
        }
    };
    let now = inner.clock.now();
    let limit = i64::try_from(IN_FLIGHT_LIMIT.as_nanos()).unwrap_or(i64::MAX);
    let mut undone = 0;
    for id in keys.iter().filter(|k| !k.ends_with('/')) {
        let key = format!("{PREFIX}{id}");
        let record: Record = match storage.get(&key).await {
            Ok(Some(raw)) => match serde_json::from_slice(raw.expose()) {
                Ok(r) => r,
                Err(err) => {
                    tracing::warn!(key = %key, error = %err, "database rollback: malformed record dropped");
                    let _ = storage.delete(&key).await;
                    continue;
                }
            },
            // Deleted meanwhile: its lease was persisted.
            Ok(None) => continue,
            Err(err) => {
                tracing::warn!(key = %key, error = %err, "database rollback: cannot read record");
                continue;
            }
        };
        let ours = record.process == process_id();
        if ours && now.saturating_sub(record.created_ns) < limit {
            continue;
        }
        match undo(inner, storage, &record).await {
            Ok(()) => {
                if let Err(err) = storage.delete(&key).await {
                    tracing::warn!(key = %key, error = %err, "database rollback: cannot delete record");
                    continue;
                }
                tracing::info!(username = %record.username, config = %record.db_name, role = %record.role,
                    "database rollback: dropped a role whose lease was never persisted");
                undone += 1;
            }
            Err(err) => {
                tracing::warn!(username = %record.username, config = %record.db_name, error = %err,
                    "database rollback failed; will retry");
            }
        }
    }
    undone
}

async fn undo(inner: &Inner, storage: &dyn Storage, record: &Record) -> EngineResult<()> {
    let connection = inner.connection(storage, &record.db_name).await?;
    creds::drop_user(&connection, &record.username, &record.statements).await
}
