//! Passwords from the server's named password policies (`sys/policies/password/:name`).
//!
//! The core implements [`PasswordPolicies`] and hands it to every engine it builds through
//! [`crate::engine::MountInfo::passwords`]; an engine that generates credentials (the database
//! engine) asks it for a password when a config or role names a `password_policy`, as Vault's
//! plugins call `SystemView.GeneratePasswordFromPolicy`.

use async_trait::async_trait;

use crate::secret::SecretString;

/// Why no password came out of a named policy. The message is OpenBao's system-view wording
/// (`no password policy found`, `stored password policy is invalid: …`); it never holds a
/// password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PasswordPolicyError(pub String);

/// The message OpenBao's system view gives for a policy that does not exist.
pub const NO_SUCH_POLICY: &str = "no password policy found";

/// Generates passwords from the named policies the server stores.
#[async_trait]
pub trait PasswordPolicies: Send + Sync + std::fmt::Debug {
    /// A fresh password satisfying every rule of the policy `name`.
    async fn generate(&self, name: &str) -> Result<SecretString, PasswordPolicyError>;
}
