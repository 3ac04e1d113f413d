//! Auto-unseal seals: something outside the store (a transit key on another server, a static
//! key handed to the process) wraps the root key, so the server can unseal itself at start.
//!
//! The core only sees [`AutoSeal`]: encrypt and decrypt a key. The static seal lives next to
//! this file; the transit seal speaks HTTP and lives in the binary (this crate knows no HTTP).

use std::fmt;

use serde::{Deserialize, Serialize};
use tresor_sdk::secret::SecretBytes;

/// Which seal protects the root key; stored as the `type` of `core/seal-config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SealKind {
    /// Unseal key shares held by operators.
    #[default]
    Shamir,
    /// A transit key on another Vault/OpenBao/Tresor server.
    Transit,
    /// A 32-byte key given to the process (file, environment variable or literal).
    Static,
}

impl SealKind {
    /// The name in `sys/seal-status` (`type`) and in the config (`seal "<name>"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shamir => "shamir",
            Self::Transit => "transit",
            Self::Static => "static",
        }
    }

    pub fn is_auto(self) -> bool {
        self != Self::Shamir
    }
}

impl fmt::Display for SealKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a seal could not encrypt or decrypt: which seal (type and where its key is, never the
/// key or a token) and what went wrong, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{seal}: {reason}")]
pub struct SealError {
    pub seal: String,
    pub reason: String,
}

/// A seal that wraps keys without operators.
#[async_trait::async_trait]
pub trait AutoSeal: Send + Sync + fmt::Debug {
    fn kind(&self) -> SealKind;
    /// Names the seal for logs and errors, e.g. `transit seal (key "unseal" at
    /// http://10.0.0.1:8200/v1/transit)`. Holds no secret.
    fn describe(&self) -> String;
    /// Encrypts `plaintext`; `purpose` (the storage path the result goes to) is bound to the
    /// ciphertext where the mechanism allows it.
    async fn encrypt(&self, plaintext: &SecretBytes, purpose: &str) -> Result<Vec<u8>, SealError>;
    /// Decrypts what [`AutoSeal::encrypt`] produced for the same `purpose`.
    async fn decrypt(&self, blob: &[u8], purpose: &str) -> Result<SecretBytes, SealError>;
}
