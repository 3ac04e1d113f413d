//! Seals: how the root key is protected at rest and recovered at unseal.
//!
//! Key hierarchy with the Shamir seal: the *unseal key* (split into shares, never stored)
//! encrypts the *root key* (stored at `core/root-key`); the root key encrypts the barrier's
//! keyring; keyring terms encrypt every value. Sealing forgets all of them.
//!
//! With an auto-unseal seal ([`AutoSeal`]: `transit`, `static`) the seal itself wraps the root
//! key (`core/sealed-root-key`), so the server unseals without operators. Operators hold
//! *recovery key* shares instead: the recovery key is wrapped by the seal too
//! (`core/recovery-key`) and authorises generate-root and recovery rekeys, but it cannot
//! decrypt anything.
//!
//! Seal migration ([`migrate`]) moves a store from one seal to another (Shamir ↔ auto,
//! auto → auto) in one storage transaction, driven by `sys/unseal` with `migrate`.
//!
//! The seal configurations (`core/seal-config`, `core/recovery-config`) are the only records
//! stored in plaintext: they must be read before any key exists, and hold only the seal type,
//! share count and threshold.

mod auto;
mod config;
mod migrate;
mod progress;
mod static_key;
mod unseal;

pub use auto::{AutoSeal, SealError, SealKind};
pub(crate) use config::split_limits;
pub use config::{InitConfig, InitRequest, SealConfig};
pub(crate) use migrate::{SealMigration, plan as plan_migration};
pub use progress::UnsealProgress;
pub use static_key::{StaticKey, StaticSeal};
pub use unseal::has_sealed_root_key;

use tresor_sdk::secret::SecretBytes;
use tresor_storage::Backend;

use crate::barrier::aead;
use crate::error::{CoreError, CoreResult};
use crate::shamir;

pub(crate) const SEAL_CONFIG_PATH: &str = "core/seal-config";
pub(crate) const ROOT_KEY_PATH: &str = "core/root-key";
/// The root key wrapped by an auto-unseal seal (OpenBao's "stored keys").
pub(crate) const SEALED_ROOT_KEY_PATH: &str = "core/sealed-root-key";
pub(crate) const RECOVERY_CONFIG_PATH: &str = "core/recovery-config";
/// The recovery key wrapped by the auto-unseal seal.
pub(crate) const RECOVERY_KEY_PATH: &str = "core/recovery-key";

/// Size of the unseal and root keys (AES-256).
pub(crate) const KEY_LEN: usize = 32;

pub(crate) async fn read_config(backend: &dyn Backend) -> CoreResult<Option<SealConfig>> {
    read_config_at(backend, SEAL_CONFIG_PATH).await
}

pub(crate) async fn read_recovery_config(backend: &dyn Backend) -> CoreResult<Option<SealConfig>> {
    read_config_at(backend, RECOVERY_CONFIG_PATH).await
}

async fn read_config_at(backend: &dyn Backend, path: &str) -> CoreResult<Option<SealConfig>> {
    match backend.get(path).await? {
        None => Ok(None),
        Some(raw) => Ok(Some(serde_json::from_slice(&raw)?)),
    }
}

/// Splits a fresh unseal key into the shares handed to operators. With one share the share is
/// the key itself, as in Vault.
pub(crate) fn split_unseal_key(
    unseal_key: &SecretBytes,
    config: &SealConfig,
) -> CoreResult<Vec<SecretBytes>> {
    if config.secret_shares == 1 {
        return Ok(vec![unseal_key.clone()]);
    }
    shamir::split(
        unseal_key.expose(),
        usize::from(config.secret_shares),
        usize::from(config.secret_threshold),
    )
    .map_err(|e| CoreError::Internal(format!("splitting the unseal key failed: {e}")))
}

/// Recombines collected shares into the unseal key.
pub(crate) fn combine_shares(
    shares: &[SecretBytes],
    config: &SealConfig,
) -> CoreResult<SecretBytes> {
    if config.secret_threshold == 1 {
        return shares.first().cloned().ok_or_else(|| {
            CoreError::Internal("unseal attempted with no shares collected".to_owned())
        });
    }
    let parts: Vec<&[u8]> = shares.iter().map(SecretBytes::expose).collect();
    shamir::combine(&parts).map_err(|e| {
        CoreError::InvalidRequest(format!(
            "invalid key: failed to compute combined key: {}",
            combine_failure(&e)
        ))
    })
}

/// Why shares did not combine, in the words of OpenBao's Shamir package where they differ.
pub(crate) fn combine_failure(err: &shamir::ShamirError) -> String {
    match err {
        shamir::ShamirError::ShareLengthMismatch => "all parts must be the same length".to_owned(),
        shamir::ShamirError::DuplicateShare => "duplicate part detected".to_owned(),
        other => other.to_string(),
    }
}

/// Encrypts the root key under the unseal key, bound to its storage path.
pub(crate) fn wrap_root_key(
    unseal_key: &SecretBytes,
    root_key: &SecretBytes,
) -> CoreResult<Vec<u8>> {
    aead::encrypt(unseal_key, 0, ROOT_KEY_PATH, root_key.expose())
        .map_err(|e| CoreError::Internal(format!("encrypting the root key failed: {e}")))
}

/// Decrypts the stored root key; a wrong unseal key is the caller's fault (400), as in Vault.
pub(crate) fn unwrap_root_key(unseal_key: &SecretBytes, wrapped: &[u8]) -> CoreResult<SecretBytes> {
    aead::decrypt(unseal_key, ROOT_KEY_PATH, wrapped).map_err(|_| {
        CoreError::InvalidRequest(
            "unable to retrieve stored keys: invalid key: failed to decrypt keys from storage: \
             cipher: message authentication failed"
                .to_owned(),
        )
    })
}
