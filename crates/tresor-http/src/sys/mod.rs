//! Handlers for the `sys/` backend.

pub mod health;
pub mod init;
pub mod keys;
pub mod leader;
pub mod seal;

use crate::error::ApiError;
use crate::request::{ApiRequest, Operation};

/// 405 unless the request's operation is one of `allowed`.
pub(crate) fn allow(request: &ApiRequest, allowed: &[Operation]) -> Result<(), ApiError> {
    if allowed.contains(&request.operation) {
        Ok(())
    } else {
        Err(ApiError::method_not_allowed())
    }
}
