//! The storage an engine sees: plaintext in, plaintext out, scoped to its own mount.
//!
//! Implementations live in `tresor-core` (a view over the barrier with a key prefix); engines
//! only ever name this trait, so they cannot reach another mount's data or the barrier itself.

use async_trait::async_trait;

use crate::secret::SecretBytes;

/// Why a storage operation failed. The messages never contain values.
#[derive(Debug, thiserror::Error)]
pub enum StorageViewError {
    /// The server is sealed: no keys are in memory, so nothing can be read or written.
    #[error("Vault is sealed")]
    Sealed,
    /// The key is not a valid storage key (empty segment, `..`, NUL, ...).
    #[error("invalid storage key: {0}")]
    InvalidKey(String),
    /// The physical backend failed; the detail is logged by the layer that saw it.
    #[error("storage backend error: {0}")]
    Backend(String),
    /// A stored value failed authentication (tampered or moved); this is never expected.
    #[error("stored value at {0} failed integrity check")]
    Integrity(String),
}

/// One write inside an atomic [`Storage::transaction`].
#[derive(Debug)]
pub enum ViewOp {
    Put { key: String, value: SecretBytes },
    Delete { key: String },
}

/// Plaintext key-value storage scoped to one mount.
#[async_trait]
pub trait Storage: Send + Sync {
    async fn get(&self, key: &str) -> Result<Option<SecretBytes>, StorageViewError>;
    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StorageViewError>;
    async fn delete(&self, key: &str) -> Result<(), StorageViewError>;
    /// Immediate children of `prefix`, sorted; sub-folders end with `/`.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageViewError>;
    /// Applies every op or none.
    async fn transaction(&self, ops: Vec<ViewOp>) -> Result<(), StorageViewError>;
}
