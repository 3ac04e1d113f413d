//! Unseal progress: the shares submitted so far, until the threshold is reached.

use tresor_sdk::secret::SecretBytes;

use crate::random;

/// Shares collected by `sys/unseal`. Zeroized when reset or dropped (via `SecretBytes`).
#[derive(Debug, Default)]
pub struct UnsealProgress {
    shares: Vec<SecretBytes>,
    /// Identifies one unseal attempt to the operators taking part; empty when no attempt runs.
    nonce: String,
}

impl UnsealProgress {
    pub fn progress(&self) -> usize {
        self.shares.len()
    }

    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// Adds a share; a share already submitted in this attempt does not count twice.
    pub fn add(&mut self, share: SecretBytes) {
        if self.shares.is_empty() {
            self.nonce = random::uuid();
        }
        if !self.shares.contains(&share) {
            self.shares.push(share);
        }
    }

    pub fn shares(&self) -> &[SecretBytes] {
        &self.shares
    }

    pub fn reset(&mut self) {
        self.shares.clear();
        self.nonce.clear();
    }
}
