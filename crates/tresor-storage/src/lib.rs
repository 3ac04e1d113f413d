//! Tresor's physical storage layer: opaque bytes under string keys.
//!
//! # Layout
//! - [`Backend`]: the trait every physical store implements (get, put, delete, list, atomic
//!   transaction). Backends never see plaintext: the barrier in `tresor-core` encrypts every
//!   value before it reaches them.
//! - [`memory`]: an in-memory backend for `--dev` and tests.
//! - [`embedded`]: the default single-file store on redb, with group commit.
//! - [`postgresql`]: one table in PostgreSQL (`path`/`key`/`value`, primary key `(path, key)`),
//!   over a bounded pool of `tokio-postgres` connections; lists through the primary key's
//!   index only, runs a transaction as one `BEGIN … COMMIT` block; counts a server's sessions
//!   by `application_name` for `tresor operator migrate`; with `ha_enabled`, the HA lock
//!   (`postgresql::PostgresqlHa`: a row with a TTL in `ha_table`) fences every write.
//! - [`ha`]: the [`ha::HaLock`] trait the core elects its active node with.
//! - `list`: Vault's `List` semantics, shared by every backend.
//! - `conformance` (feature `conformance`): one test suite every backend must pass.
//! - `test_db` (feature `test-db`, and this crate's unit tests): a PostgreSQL database of a
//!   test's own.
//!
//! # Key semantics (shared by all backends)
//! Keys are non-empty UTF-8 strings separated by `/`. `list(prefix)` returns the immediate
//! children of `prefix`, sorted, with sub-folders once each and ending in `/`, exactly like
//! Vault's physical `List`.

use async_trait::async_trait;

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(any(test, feature = "test-db"))]
pub mod test_db;

pub mod embedded;
pub mod ha;
mod list;
pub mod memory;
pub mod postgresql;

pub use embedded::{EmbeddedBackend, EmbeddedOptions};
pub use memory::MemoryBackend;
pub use postgresql::{
    DEFAULT_APPLICATION_NAME, HaOptions, PostgresqlBackend, PostgresqlHa, PostgresqlOptions,
};

/// Why a physical storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid storage key {0:?}")]
    InvalidKey(String),
    #[error("could not open storage at {path}: {reason}")]
    Open { path: String, reason: String },
    /// Another process (or another handle in this one) holds the store open: for the embedded
    /// file, redb's exclusive lock. Told apart from [`StorageError::Open`] so that tools
    /// working on a stopped server's store (`tresor operator migrate`) can say so.
    #[error("could not open storage at {path}: it is in use by another process")]
    InUse { path: String },
    #[error("storage I/O failed: {0}")]
    Io(String),
    #[error("storage is closed")]
    Closed,
}

/// One write in an atomic [`Backend::transaction`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    Put { key: String, value: Vec<u8> },
    Delete { key: String },
}

/// A physical store of opaque bytes.
///
/// A write (`put`, `delete`, `transaction`) returns only once it is durable: for the embedded
/// backend that means fsynced. Reads see every acknowledged write.
#[async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug + 'static {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError>;
    /// Deleting a missing key succeeds.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError>;
    /// Applies every op, in order, or none of them.
    async fn transaction(&self, ops: Vec<TxnOp>) -> Result<(), StorageError>;
    /// The name reported as `storage_type` in `sys/seal-status` (`inmem`, `embedded`, ...).
    fn storage_type(&self) -> &'static str;
    /// Finishes pending writes and releases the store; later calls fail with `Closed`.
    async fn close(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

/// Checks a key against the shared key rules.
pub fn validate_key(key: &str) -> Result<(), StorageError> {
    if key.is_empty() || key.contains('\0') {
        return Err(StorageError::InvalidKey(key.to_owned()));
    }
    Ok(())
}
