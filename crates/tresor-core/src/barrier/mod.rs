//! The encryption barrier: the one way stored data goes in and out.
//!
//! Everything persisted passes through [`Barrier`], which encrypts it with the keyring's
//! active term before the physical backend sees it; the backend only ever holds ciphertext.
//! While sealed the keyring is not in memory at all, so every data operation fails with
//! [`BarrierError::Sealed`].
//!
//! - [`aead`]: the ciphertext format (AES-256-GCM bound to term and path).
//! - [`keyring`]: the versioned data keys, stored encrypted under the root key.
//! - [`view`]: a prefix-confined [`tresor_sdk::storage::Storage`] for engines.

pub mod aead;
pub mod keyring;
pub mod view;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use tresor_sdk::secret::SecretBytes;
use tresor_storage::{Backend, StorageError, TxnOp};

pub use keyring::Keyring;
pub use view::BarrierView;

/// Where the keyring lives, encrypted under the root key. Reserved: data operations refuse it
/// so nothing above the barrier can overwrite or read the keys.
pub const KEYRING_PATH: &str = "core/keyring";

/// The header term of values encrypted directly under the root key rather than a keyring term.
pub const ROOT_KEY_TERM: u32 = 0;

/// Why a barrier operation failed. Messages name paths and terms, never values or key bytes.
#[derive(Debug, thiserror::Error)]
pub enum BarrierError {
    #[error("Vault is sealed")]
    Sealed,
    #[error("barrier is already initialized")]
    AlreadyInitialized,
    #[error("barrier is not initialized")]
    NotInitialized,
    #[error("invalid root key: the keyring could not be decrypted")]
    InvalidRootKey,
    #[error("key must be {expected} bytes, got {actual}")]
    InvalidKeyLength { expected: usize, actual: usize },
    #[error("stored value at {path} failed integrity check")]
    Integrity { path: String },
    #[error("stored value was encrypted with unknown key term {0}")]
    UnknownTerm(u32),
    #[error("value is not a barrier ciphertext")]
    Malformed,
    #[error("keyring is corrupt: {0}")]
    KeyringCorrupt(&'static str),
    #[error("path {0} is reserved for the barrier")]
    ReservedPath(String),
    #[error("no key term left to rotate to")]
    TermOverflow,
    #[error("system random number generator failed")]
    Random,
    #[error("encryption failed")]
    EncryptionFailed,
    #[error("storage backend error: {0}")]
    Storage(#[from] StorageError),
}

/// The active key term, as reported by `sys/key-status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyStatus {
    pub term: u32,
    pub install_time: OffsetDateTime,
    /// Encryptions under this term since unseal. Nonces are random 96-bit values, so a term
    /// should be rotated well before 2^32 encryptions (NIST SP 800-38D's bound).
    pub encryptions: u64,
}

/// One write in an atomic [`Barrier::transaction`].
#[derive(Debug)]
pub enum BarrierOp {
    Put { path: String, value: SecretBytes },
    Delete { path: String },
}

/// The unsealed state: dropping it (seal) drops and wipes every key.
struct Unsealed {
    keyring: Keyring,
    /// Counts nonces drawn under the active term, successful write or not.
    encryptions: AtomicU64,
}

impl Unsealed {
    fn new(keyring: Keyring) -> Arc<Self> {
        Arc::new(Self {
            keyring,
            encryptions: AtomicU64::new(0),
        })
    }

    fn encrypt(&self, path: &str, plaintext: &[u8]) -> Result<Vec<u8>, BarrierError> {
        let (term, key) = self.keyring.active()?;
        self.encryptions.fetch_add(1, Ordering::Relaxed);
        aead::encrypt(key.key(), term, path, plaintext)
    }

    fn decrypt(&self, path: &str, ciphertext: &[u8]) -> Result<SecretBytes, BarrierError> {
        let term = aead::term_of(ciphertext).map_err(|_| BarrierError::Integrity {
            path: path.to_owned(),
        })?;
        let key = self
            .keyring
            .term(term)
            .ok_or(BarrierError::UnknownTerm(term))?;
        aead::decrypt(key.key(), path, ciphertext)
    }
}

/// Encrypts on the way down, decrypts on the way up.
pub struct Barrier {
    backend: Arc<dyn Backend>,
    state: RwLock<Option<Arc<Unsealed>>>,
    /// Serialises initialize, unseal and rotate: two concurrent rotations would both persist a
    /// term `n + 1` with different keys, and values written under the loser would be lost.
    lifecycle: tokio::sync::Mutex<()>,
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("backend", &self.backend)
            .field("sealed", &self.is_sealed())
            .finish_non_exhaustive()
    }
}

impl Barrier {
    /// A sealed barrier over `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Self {
            backend,
            state: RwLock::new(None),
            lifecycle: tokio::sync::Mutex::new(()),
        }
    }

    /// The physical backend, for the few records that must be readable before unseal.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub async fn is_initialized(&self) -> Result<bool, BarrierError> {
        Ok(self.backend.get(KEYRING_PATH).await?.is_some())
    }

    /// Creates the keyring (term 1) and stores it encrypted under `root_key`. Stays sealed.
    pub async fn initialize(&self, root_key: &SecretBytes) -> Result<(), BarrierError> {
        let _lifecycle = self.lifecycle.lock().await;
        if self.is_initialized().await? {
            return Err(BarrierError::AlreadyInitialized);
        }
        let keyring = Keyring::new(root_key.clone())?;
        self.persist(&keyring).await
    }

    /// Loads the keyring with `root_key`. When already unsealed the key is still checked
    /// against storage, so success always means the key is right, but the loaded keyring
    /// (and its encryption count) is kept.
    pub async fn unseal(&self, root_key: &SecretBytes) -> Result<(), BarrierError> {
        let _lifecycle = self.lifecycle.lock().await;
        let stored = self
            .backend
            .get(KEYRING_PATH)
            .await?
            .ok_or(BarrierError::NotInitialized)?;
        let plaintext = aead::decrypt(root_key, KEYRING_PATH, &stored)
            .map_err(|_| BarrierError::InvalidRootKey)?;
        let keyring = Keyring::from_bytes(plaintext.expose())?;
        if !bool::from(keyring.root_key().expose().ct_eq(root_key.expose())) {
            return Err(BarrierError::KeyringCorrupt(
                "stored root key does not match",
            ));
        }
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.is_none() {
            *state = Some(Unsealed::new(keyring));
        }
        Ok(())
    }

    /// Reads the keyring again with the root key in memory, replacing the loaded one. A
    /// standby taking over calls it: the node that was active may have added terms
    /// (`sys/rotate`) since this one unsealed. Fails (and keeps the loaded keyring) when the
    /// stored keyring is no longer under this root key (a root key rotated elsewhere).
    pub async fn reload_keyring(&self) -> Result<(), BarrierError> {
        let root_key = self.unsealed()?.keyring.root_key().clone();
        self.reload_keyring_with(&root_key).await
    }

    /// As [`Barrier::reload_keyring`], with another root key: a standby taking over after the
    /// active node rotated the root key of an auto seal (the seal unwraps the new one).
    /// Only an unsealed barrier reloads; the key is checked as [`Barrier::unseal`] checks it.
    pub async fn reload_keyring_with(&self, root_key: &SecretBytes) -> Result<(), BarrierError> {
        let _lifecycle = self.lifecycle.lock().await;
        self.unsealed()?;
        let stored = self
            .backend
            .get(KEYRING_PATH)
            .await?
            .ok_or(BarrierError::NotInitialized)?;
        let plaintext = aead::decrypt(root_key, KEYRING_PATH, &stored)
            .map_err(|_| BarrierError::InvalidRootKey)?;
        let keyring = Keyring::from_bytes(plaintext.expose())?;
        if !bool::from(keyring.root_key().expose().ct_eq(root_key.expose())) {
            return Err(BarrierError::KeyringCorrupt(
                "stored root key does not match",
            ));
        }
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = Some(Unsealed::new(keyring));
        Ok(())
    }

    /// Forgets the keyring. Operations already in flight finish with the keys they hold;
    /// the keys are wiped when the last of them drops.
    pub fn seal(&self) {
        self.state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    pub fn is_sealed(&self) -> bool {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }

    pub async fn get(&self, path: &str) -> Result<Option<SecretBytes>, BarrierError> {
        let _timer = crate::metrics::time_barrier(crate::metrics::StorageOp::Get);
        check_path(path)?;
        self.unsealed()?;
        let Some(ciphertext) = self.backend.get(path).await? else {
            return Ok(None);
        };
        // The keyring is taken after the read: a value written under a term rotated in while
        // the read was in flight is then guaranteed to find its key.
        self.unsealed()?.decrypt(path, &ciphertext).map(Some)
    }

    pub async fn put(&self, path: &str, plaintext: &[u8]) -> Result<(), BarrierError> {
        let _timer = crate::metrics::time_barrier(crate::metrics::StorageOp::Put);
        check_path(path)?;
        let ciphertext = self.unsealed()?.encrypt(path, plaintext)?;
        Ok(self.backend.put(path, ciphertext).await?)
    }

    pub async fn delete(&self, path: &str) -> Result<(), BarrierError> {
        let _timer = crate::metrics::time_barrier(crate::metrics::StorageOp::Delete);
        check_path(path)?;
        self.unsealed()?;
        Ok(self.backend.delete(path).await?)
    }

    /// Encrypts a value that is handed out instead of stored (a batch token), bound to
    /// `context` the way stored values are bound to their path. The keyring term is in the
    /// header, so the value opens as long as that term is in the keyring (rotation keeps old
    /// terms).
    pub fn seal_detached(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, BarrierError> {
        check_path(context)?;
        self.unsealed()?.encrypt(context, plaintext)
    }

    /// Opens what [`Barrier::seal_detached`] produced for the same `context`.
    pub fn open_detached(
        &self,
        context: &str,
        ciphertext: &[u8],
    ) -> Result<SecretBytes, BarrierError> {
        check_path(context)?;
        self.unsealed()?.decrypt(context, ciphertext)
    }

    /// Immediate children of `prefix` (keys are not secret, so nothing is decrypted).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, BarrierError> {
        let _timer = crate::metrics::time_barrier(crate::metrics::StorageOp::List);
        self.unsealed()?;
        Ok(self.backend.list(prefix).await?)
    }

    /// Encrypts every op first, then applies them in one backend transaction: all or nothing.
    pub async fn transaction(&self, ops: Vec<BarrierOp>) -> Result<(), BarrierError> {
        let _timer = crate::metrics::time_barrier(crate::metrics::StorageOp::Transaction);
        let state = self.unsealed()?;
        let mut txn = Vec::with_capacity(ops.len());
        for op in ops {
            txn.push(match op {
                BarrierOp::Put { path, value } => {
                    check_path(&path)?;
                    let value = state.encrypt(&path, value.expose())?;
                    TxnOp::Put { key: path, value }
                }
                BarrierOp::Delete { path } => {
                    check_path(&path)?;
                    TxnOp::Delete { key: path }
                }
            });
        }
        drop(state);
        Ok(self.backend.transaction(txn).await?)
    }

    /// Adds a new key term and makes it active. The keyring is persisted before the term is
    /// used: a crash in between loses nothing, whereas the other order could leave values
    /// encrypted under a key that was never stored.
    pub async fn rotate(&self) -> Result<KeyStatus, BarrierError> {
        let _lifecycle = self.lifecycle.lock().await;
        let mut keyring = self.unsealed()?.keyring.clone();
        keyring.rotate()?;
        self.persist(&keyring).await?;
        let next = Unsealed::new(keyring);
        let status = status_of(&next)?;
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        // Sealed meanwhile: the new term is stored and the next unseal picks it up.
        if state.is_some() {
            *state = Some(next);
        }
        Ok(status)
    }

    /// Re-encrypts the keyring under `new_root` and writes it in **one** backend transaction
    /// with `extra` (the records that make the new root key recoverable), then uses it. A
    /// crash leaves the old keyring and records or the new ones, never a mix.
    pub async fn replace_root_key(
        &self,
        new_root: &SecretBytes,
        extra: Vec<TxnOp>,
    ) -> Result<(), BarrierError> {
        let _lifecycle = self.lifecycle.lock().await;
        let keyring = self.unsealed()?.keyring.with_root_key(new_root.clone())?;
        let plaintext = keyring.to_bytes()?;
        let ciphertext = aead::encrypt(
            keyring.root_key(),
            ROOT_KEY_TERM,
            KEYRING_PATH,
            plaintext.expose(),
        )?;
        let mut ops = vec![TxnOp::Put {
            key: KEYRING_PATH.to_owned(),
            value: ciphertext,
        }];
        ops.extend(extra);
        self.backend.transaction(ops).await?;
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.is_some() {
            *state = Some(Unsealed::new(keyring));
        }
        Ok(())
    }

    pub fn key_status(&self) -> Result<KeyStatus, BarrierError> {
        status_of(&*self.unsealed()?)
    }

    fn unsealed(&self) -> Result<Arc<Unsealed>, BarrierError> {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(BarrierError::Sealed)
    }

    async fn persist(&self, keyring: &Keyring) -> Result<(), BarrierError> {
        let plaintext = keyring.to_bytes()?;
        let ciphertext = aead::encrypt(
            keyring.root_key(),
            ROOT_KEY_TERM,
            KEYRING_PATH,
            plaintext.expose(),
        )?;
        Ok(self.backend.put(KEYRING_PATH, ciphertext).await?)
    }
}

fn status_of(state: &Unsealed) -> Result<KeyStatus, BarrierError> {
    let (term, key) = state.keyring.active()?;
    Ok(KeyStatus {
        term,
        install_time: key.install_time(),
        encryptions: state.encryptions.load(Ordering::Relaxed),
    })
}

fn check_path(path: &str) -> Result<(), BarrierError> {
    if path == KEYRING_PATH {
        return Err(BarrierError::ReservedPath(path.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
