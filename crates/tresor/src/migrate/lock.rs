//! The migration lock: OpenBao's `core/migration` key in the source store, holding
//! `{"start": "<RFC 3339 time>"}` while a migration copies from it. A server refuses to start
//! on a store that holds it, and a second migration refuses to start from it.
//!
//! It is stored raw (below the barrier, like `core/seal-config`): the migration has no keys
//! to encrypt it, and the server must read it before it is unsealed.

use serde::{Deserialize, Serialize};
use tresor_storage::{Backend, StorageError};

/// OpenBao's key (`storageMigrationLock`); never copied to the destination.
pub const KEY: &str = "core/migration";

/// What the lock holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// When the migration started (RFC 3339, nanoseconds: two locks written by two runs
    /// differ, which is how the command recognises its own lock in another store).
    pub start: String,
}

impl Status {
    /// Whether `value` holds this very lock.
    pub fn is(&self, value: &[u8]) -> bool {
        serde_json::from_slice::<Self>(value).is_ok_and(|other| &other == self)
    }
}

/// The lock in `backend`, if any. A value that is not the lock's JSON still counts as a lock:
/// something wrote that key, and starting over it would be a guess.
pub async fn read(backend: &dyn Backend) -> Result<Option<Status>, StorageError> {
    Ok(backend.get(KEY).await?.map(|value| {
        serde_json::from_slice(&value).unwrap_or_else(|_| Status {
            start: "unknown".to_owned(),
        })
    }))
}

/// Writes a fresh lock and returns it.
pub async fn set(backend: &dyn Backend) -> Result<Status, StorageError> {
    let status = Status {
        start: tresor_sdk::timestamp::rfc3339_nano(tresor_sdk::timestamp::now_nanos()),
    };
    let value = serde_json::to_vec(&status)
        .map_err(|e| StorageError::Io(format!("encoding the migration lock: {e}")))?;
    backend.put(KEY, value).await?;
    Ok(status)
}

/// Removes the lock (nothing to do when there is none).
pub async fn clear(backend: &dyn Backend) -> Result<(), StorageError> {
    backend.delete(KEY).await
}

/// The server's start-up check, as OpenBao's: a store being migrated from must not be served
/// (writes the migration has already passed would be lost in the destination).
pub async fn refuse_to_serve(backend: &dyn Backend) -> anyhow::Result<()> {
    match read(backend).await {
        Ok(None) => Ok(()),
        Ok(Some(status)) => anyhow::bail!(
            "storage migration in progress (started: {}): the server does not start until it completes; \
             if no migration is running, clear the lock with 'tresor operator migrate -reset -config=FILE'",
            status.start
        ),
        Err(e) => Err(anyhow::Error::new(e).context("reading the storage migration lock")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use tresor_storage::MemoryBackend;

    use super::*;

    #[tokio::test]
    async fn a_set_lock_stops_the_server_until_it_is_cleared() {
        let backend = MemoryBackend::new();
        refuse_to_serve(&backend).await.unwrap();
        let status = set(&backend).await.unwrap();
        assert_eq!(read(&backend).await.unwrap(), Some(status.clone()));
        let err = refuse_to_serve(&backend).await.unwrap_err().to_string();
        assert!(err.contains("migration in progress"), "{err}");
        assert!(err.contains(&status.start), "{err}");
        assert!(err.contains("-reset"), "{err}");
        clear(&backend).await.unwrap();
        refuse_to_serve(&backend).await.unwrap();
    }

    #[tokio::test]
    async fn openbaos_lock_value_is_understood() {
        let backend = MemoryBackend::new();
        backend
            .put(KEY, br#"{"start":"2026-12-07T09:00:00Z"}"#.to_vec())
            .await
            .unwrap();
        assert_eq!(
            read(&backend).await.unwrap().unwrap().start,
            "2026-12-07T09:00:00Z"
        );
    }
}
