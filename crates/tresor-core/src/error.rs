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
    /// Missing, unknown or expired token. Deliberately says nothing more.
    #[error("permission denied")]
    PermissionDenied,
    /// A valid token whose policies do not grant the request (OpenBao words this one as a
    /// one-item multi-error; the HTTP layer keeps that wording for client compatibility).
    #[error("permission denied")]
    Forbidden,
    /// [`CoreError::Forbidden`] with the reason (which rule, which capability, which
    /// policies), for mounts whose `verbose_denials` is on.
    #[error("permission denied: {0}")]
    ForbiddenBecause(String),
    /// A refusal with its reason (a failed login binding), already worded for the caller
    /// according to the mount's `verbose_denials`; `status` is 400 or 403.
    #[error("{message}")]
    Denied { status: u16, message: String },
    /// `auth/token/lookup` of an unknown token: 403 `bad token`, as in OpenBao.
    #[error("bad token")]
    BadToken,
    /// 404 with an empty error list.
    #[error("not found")]
    NotFound,
    /// 404: no mount or handler serves this path.
    #[error("no handler for route {0:?}. route entry not found.")]
    NoHandler(String),
    /// A rekey operation was refused; the HTTP layer words it for the API family.
    #[error("{0}")]
    Rekey(crate::rekey::RekeyError),
    /// 405.
    #[error("unsupported operation")]
    UnsupportedOperation,
    /// 404: the mount exists but serves no such path.
    #[error("unsupported path")]
    UnsupportedPath,
    /// The auto-unseal seal could not encrypt or decrypt; the message names the seal and says
    /// why (it holds no key material). 500, shown to the caller.
    #[error("{0}")]
    Seal(String),
    /// The configured seal does not match the one the store was initialised with: the
    /// server refuses to start.
    #[error("{0}")]
    SealMismatch(String),
    /// 502: an upstream system failed.
    #[error("{0}")]
    Upstream(String),
    /// 500 with a reason the caller may see (an engine's operation on an external system
    /// failed; OpenBao answers these as internal errors that carry their reason).
    #[error("{0}")]
    EngineFailed(String),
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

impl From<tresor_sdk::storage::StorageViewError> for CoreError {
    fn from(err: tresor_sdk::storage::StorageViewError) -> Self {
        match err {
            tresor_sdk::storage::StorageViewError::Sealed => CoreError::Sealed,
            tresor_sdk::storage::StorageViewError::InvalidKey(k) => {
                CoreError::InvalidRequest(format!("invalid path {k:?}"))
            }
            other => CoreError::Internal(other.to_string()),
        }
    }
}

impl From<tresor_sdk::engine::EngineError> for CoreError {
    fn from(err: tresor_sdk::engine::EngineError) -> Self {
        use tresor_sdk::engine::EngineError as E;
        match err {
            E::NotFound => CoreError::NotFound,
            E::InvalidRequest(m) => CoreError::InvalidRequest(m),
            E::UnsupportedPath => CoreError::UnsupportedPath,
            E::UnsupportedOperation => CoreError::UnsupportedOperation,
            E::PermissionDenied => CoreError::Forbidden,
            E::Denied(d) => CoreError::Denied {
                status: d.status,
                message: d.message(true),
            },
            E::Upstream(m) => CoreError::Upstream(m),
            E::Failed(m) => CoreError::EngineFailed(m),
            E::Storage(s) => s.into(),
            E::Internal(m) => CoreError::Internal(m),
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
