//! The transit secrets engine (mount type `transit`): encryption as a service.
//!
//! Follows Vault's documented transit API (OpenBao's where they differ). Key material is
//! stored only through the mount's [`Storage`] view, so under the barrier, and leaves it
//! in the clear only through `export` of an exportable key or a plaintext backup of a key
//! that allows one.
//!
//! # Layout
//! - `keytype`: the key types and what each supports.
//! - `material`: one version's parsed key material (and which crypto library does what).
//! - `policy`: a named key (settings + versions), in memory and as stored.
//! - `store`: the parsed-key cache with per-key write locks (no storage read per request).
//! - `ciphertext`: the `vault:v<N>:` format.
//! - `crypt`: symmetric/RSA encryption and decryption with a keyring.
//! - `digest`: the hash algorithms (`sha2-256`, `sha3-512`, …) for hash, HMAC and signing.
//! - `batch`: `batch_input` parsing and Vault's per-item results and status codes.
//! - `req`: request-field helpers.
//! - Endpoint families: `keys` (CRUD, config, rotate, trim), `encrypt` (encrypt, decrypt,
//!   rewrap), `datakey`, `hmac`, `sign` (sign, verify), `export`, `backup` (backup, restore),
//!   `byok` (wrapping_key, import, import_version), `random` (random, hash), `periodic`
//!   (automatic rotation), `settings` (`config/keys`, `cache-config`).

mod backup;
mod batch;
mod byok;
mod ciphertext;
mod crypt;
mod datakey;
mod digest;
mod encrypt;
mod export;
mod hmac;
mod keys;
mod keytype;
mod material;
mod periodic;
mod policy;
mod random;
mod req;
mod settings;
mod sign;
mod store;

use std::sync::Arc;

use async_trait::async_trait;
use tresor_sdk::engine::{
    EngineError, EngineFactory, EngineResult, MountInfo, Operation, Request, Response, SecretEngine,
};
use tresor_sdk::storage::Storage;

use crate::clock::{Clock, SystemClock};

/// Builds transit engines. The clock is injectable so tests can make rotation periods elapse.
#[derive(Debug, Clone)]
pub struct TransitFactory {
    clock: Arc<dyn Clock>,
}

impl Default for TransitFactory {
    fn default() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }
}

impl TransitFactory {
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self { clock }
    }
}

impl EngineFactory for TransitFactory {
    fn types(&self) -> &[&'static str] {
        &["transit"]
    }

    fn build(&self, _mount: &MountInfo) -> EngineResult<Arc<dyn SecretEngine>> {
        Ok(Arc::new(Transit {
            clock: self.clock.clone(),
            keys: store::KeyStore::default(),
            wrapping: tokio::sync::Mutex::new(None),
        }))
    }
}

/// One mounted transit engine. Its key cache lives as long as the mount is loaded; the core
/// drops the instance when the server seals.
#[derive(Debug)]
pub struct Transit {
    clock: Arc<dyn Clock>,
    keys: store::KeyStore,
    /// The BYOK wrapping key, loaded or created on first use.
    wrapping: tokio::sync::Mutex<Option<Arc<byok::WrappingKey>>>,
}

/// Vault's `GenericNameRegex`: word characters, with `-` and `.` allowed inside.
pub(crate) fn valid_name(name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = name.chars();
    let (Some(first), Some(last)) = (chars.next(), name.chars().last()) else {
        return false;
    };
    word(first) && word(last) && name.chars().all(|c| word(c) || c == '-' || c == '.')
}

fn name_or_404(name: &str) -> EngineResult<&str> {
    if valid_name(name) {
        Ok(name)
    } else {
        Err(EngineError::UnsupportedPath)
    }
}

fn is_write(op: Operation) -> bool {
    matches!(op, Operation::Create | Operation::Update)
}

#[async_trait]
impl SecretEngine for Transit {
    async fn handle(
        &self,
        request: &Request,
        storage: &dyn Storage,
    ) -> EngineResult<Option<Response>> {
        let segments: Vec<&str> = request.path.split('/').collect();
        let op = request.operation;
        match segments.as_slice() {
            ["keys"] | ["keys", ""] if op == Operation::List => keys::list(self, storage).await,
            ["keys", name] => {
                let name = name_or_404(name)?;
                match op {
                    Operation::Read => keys::read(self, request, storage, name).await,
                    Operation::Create | Operation::Update => {
                        keys::create(self, request, storage, name).await
                    }
                    Operation::Delete => keys::delete(self, storage, name).await,
                    _ => Err(EngineError::UnsupportedOperation),
                }
            }
            ["keys", name, action] => {
                let name = name_or_404(name)?;
                if !is_write(op) {
                    return Err(EngineError::UnsupportedOperation);
                }
                match *action {
                    "config" => keys::config(self, request, storage, name).await,
                    "rotate" => keys::rotate(self, request, storage, name).await,
                    "trim" => keys::trim(self, request, storage, name).await,
                    "import" => byok::import(self, request, storage, name).await,
                    "import_version" => byok::import_version(self, request, storage, name).await,
                    _ => Err(EngineError::UnsupportedPath),
                }
            }
            ["encrypt", name] => {
                let name = name_or_404(name)?;
                write_only(op)?;
                encrypt::encrypt(self, request, storage, name).await
            }
            ["decrypt", name] => {
                let name = name_or_404(name)?;
                write_only(op)?;
                encrypt::decrypt(self, request, storage, name).await
            }
            ["rewrap", name] => {
                let name = name_or_404(name)?;
                write_only(op)?;
                encrypt::rewrap(self, request, storage, name).await
            }
            ["datakey", kind, name] => {
                let name = name_or_404(name)?;
                write_only(op)?;
                datakey::datakey(self, request, storage, kind, name).await
            }
            ["hmac", name] | ["hmac", name, _] => {
                let name = name_or_404(name)?;
                write_only(op)?;
                hmac::hmac(self, request, storage, name, segments.get(2).copied()).await
            }
            ["sign", name] | ["sign", name, _] => {
                let name = name_or_404(name)?;
                write_only(op)?;
                sign::sign(self, request, storage, name, segments.get(2).copied()).await
            }
            ["verify", name] | ["verify", name, _] => {
                let name = name_or_404(name)?;
                write_only(op)?;
                sign::verify(self, request, storage, name, segments.get(2).copied()).await
            }
            ["export", kind, name] | ["export", kind, name, _] => {
                let name = name_or_404(name)?;
                if op != Operation::Read {
                    return Err(EngineError::UnsupportedOperation);
                }
                export::export(self, storage, kind, name, segments.get(3).copied()).await
            }
            ["backup", name] => {
                let name = name_or_404(name)?;
                if op != Operation::Read {
                    return Err(EngineError::UnsupportedOperation);
                }
                backup::backup(self, storage, name).await
            }
            ["restore"] => {
                write_only(op)?;
                backup::restore(self, request, storage, None).await
            }
            ["restore", name] => {
                let name = name_or_404(name)?;
                write_only(op)?;
                backup::restore(self, request, storage, Some(name)).await
            }
            ["config", "keys"] => match op {
                Operation::Read | Operation::Create | Operation::Update => {
                    settings::keys_config(request, storage).await
                }
                _ => Err(EngineError::UnsupportedOperation),
            },
            ["cache-config"] => match op {
                Operation::Read | Operation::Create | Operation::Update => {
                    settings::cache_config(request, storage).await
                }
                _ => Err(EngineError::UnsupportedOperation),
            },
            ["wrapping_key"] => {
                if op != Operation::Read {
                    return Err(EngineError::UnsupportedOperation);
                }
                byok::wrapping_key(self, storage).await
            }
            ["random"] | ["random", _] | ["random", _, _] => {
                write_only(op)?;
                random::random(request, segments.get(1).copied(), segments.get(2).copied())
            }
            ["hash"] | ["hash", _] => {
                write_only(op)?;
                random::hash(request, segments.get(1).copied())
            }
            _ => Err(EngineError::UnsupportedPath),
        }
    }

    /// Encrypt upserts: a write to `encrypt/<name>` for a missing key is a `create`.
    async fn exists(&self, request: &Request, storage: &dyn Storage) -> EngineResult<Option<bool>> {
        let segments: Vec<&str> = request.path.split('/').collect();
        match segments.as_slice() {
            ["encrypt", name] if valid_name(name) => {
                Ok(Some(self.keys.get(storage, name).await?.is_some()))
            }
            _ => Ok(None),
        }
    }

    async fn periodic(&self, storage: &dyn Storage) -> EngineResult<()> {
        periodic::rotate_due(self, storage).await
    }
}

fn write_only(op: Operation) -> EngineResult<()> {
    if is_write(op) {
        Ok(())
    } else {
        Err(EngineError::UnsupportedOperation)
    }
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn names_follow_vault_generic_name_regex() {
        assert!(valid_name("a"));
        assert!(valid_name("my-key.v2_x"));
        assert!(!valid_name(""));
        assert!(!valid_name(".."));
        assert!(!valid_name("-a"));
        assert!(!valid_name("a-"));
        assert!(!valid_name("a b"));
        assert!(!valid_name("a%2e"));
    }
}
