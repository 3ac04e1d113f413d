//! The core's error type: what went wrong, in words an operator can act on.
//!
//! `tresor-core` knows nothing of HTTP; `tresor-http` maps each variant to a status code.

use crate::barrier::BarrierError;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The barrier is sealed; only the unauthenticated `sys/` endpoints work.
    #[error("Vault is sealed")]
    Sealed,
    #[error("Vault is not initialized")]
    NotInitialized,
    #[error("Vault is already initialized")]
    AlreadyInitialized,
    /// The caller sent something we cannot act on; the message says what.
    #[error("{0}")]
    InvalidRequest(String),
    /// Missing, unknown or insufficient token. Deliberately says nothing more.
    #[error("permission denied")]
    PermissionDenied,
    /// A failure inside the server (storage, corrupted state). The message is for logs; the
    /// HTTP layer answers 500 without echoing details that could help an attacker.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<BarrierError> for CoreError {
    fn from(err: BarrierError) -> Self {
        match err {
            BarrierError::Sealed => CoreError::Sealed,
            other => CoreError::Internal(other.to_string()),
        }
    }
}

impl From<tresor_storage::StorageError> for CoreError {
    fn from(err: tresor_storage::StorageError) -> Self {
        CoreError::Internal(err.to_string())
    }
}

impl From<serde_json::Error> for CoreError {
    fn from(err: serde_json::Error) -> Self {
        // Only ever raised when decoding our own stored records, never caller input.
        CoreError::Internal(format!("stored record is malformed: {err}"))
    }
}

pub type CoreResult<T> = Result<T, CoreError>;
