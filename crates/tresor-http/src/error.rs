//! API errors and their wire form: `{"errors":[…]}` with Vault's status codes.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use tresor_core::CoreError;

use crate::response::json_response;

/// An error answer. Messages are safe to show to the caller: they never hold secret values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub errors: Vec<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            errors: vec![message.into()],
        }
    }

    /// An error with an empty list, as Vault answers 404 and 405.
    pub fn bare(status: StatusCode) -> Self {
        Self {
            status,
            errors: Vec::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn permission_denied() -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission denied")
    }

    pub fn method_not_allowed() -> Self {
        Self::bare(StatusCode::METHOD_NOT_ALLOWED)
    }

    /// 405 from a logical backend (sys or an engine): OpenBao words it as a Go multi-error.
    pub fn unsupported_operation() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "1 error occurred:\n\t* unsupported operation\n\n",
        )
    }

    /// 404 from inside a logical backend: the mount exists but has no such path.
    pub fn unsupported_path() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "1 error occurred:\n\t* unsupported path\n\n",
        )
    }

    pub fn no_handler(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("no handler for route {path:?}. route entry not found."),
        )
    }
}

impl From<CoreError> for ApiError {
    fn from(err: CoreError) -> Self {
        match err {
            CoreError::Sealed => Self::new(StatusCode::SERVICE_UNAVAILABLE, "Vault is sealed"),
            CoreError::NotInitialized => Self::bad_request("Vault is not initialized"),
            CoreError::AlreadyInitialized => Self::bad_request("Vault is already initialized"),
            CoreError::InvalidRequest(msg) => Self::bad_request(msg),
            CoreError::PermissionDenied => Self::permission_denied(),
            // OpenBao words ACL denials as a one-item Go multi-error; hvac and the Go client
            // only look at the status, but keep the text identical for scripts that grep it.
            CoreError::Forbidden => Self::new(
                StatusCode::FORBIDDEN,
                "1 error occurred:\n\t* permission denied\n\n",
            ),
            // The same one-item multi-error, the reason after "permission denied": tools that
            // look for the phrase still find it.
            CoreError::ForbiddenBecause(reason) => Self::new(
                StatusCode::FORBIDDEN,
                format!("1 error occurred:\n\t* permission denied: {reason}\n\n"),
            ),
            CoreError::BadToken => Self::new(StatusCode::FORBIDDEN, "bad token"),
            CoreError::Denied { status, message } => Self::new(
                StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
                message,
            ),
            CoreError::NotFound => Self::bare(StatusCode::NOT_FOUND),
            CoreError::NoHandler(path) => Self::no_handler(&path),
            // The rekey handlers word these per API family before they get here.
            CoreError::Rekey(err) => Self::bad_request(err.to_string()),
            CoreError::UnsupportedOperation => Self::unsupported_operation(),
            CoreError::UnsupportedPath => Self::unsupported_path(),
            CoreError::Upstream(msg) => Self::new(StatusCode::BAD_GATEWAY, msg),
            // The seal's failure names the seal and the reason, never key material.
            CoreError::Seal(msg) | CoreError::SealMismatch(msg) => {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, msg)
            }
            // Worded as OpenBao wraps a backend's error: a one-item Go multi-error.
            CoreError::EngineFailed(msg) => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("1 error occurred:\n\t* {msg}\n\n"),
            ),
            CoreError::Internal(detail) => {
                // The detail may name storage paths or backend state: log it, answer generically.
                tracing::error!(error = %detail, "internal error");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, &serde_json::json!({ "errors": self.errors }))
    }
}
