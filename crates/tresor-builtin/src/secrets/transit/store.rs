//! The parsed-key cache in front of the mount's storage.
//!
//! Encrypt and decrypt must not read storage or parse keys per request: a [`KeyRing`] is
//! loaded once and shared as an `Arc`. Every write to a key happens under that key's lock,
//! persists first, then replaces the cache entry, so readers see either the old or the new
//! ring, never a half-written one. A cache miss also takes the lock, so a slow loader cannot
//! put back a ring older than one a writer just stored. The engine instance (and with it
//! the cache) is dropped when the server seals.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokio::sync::MutexGuard;
use tresor_sdk::engine::{EngineError, EngineResult};
use tresor_sdk::storage::Storage;

use super::material::MaterialError;
use super::policy::{KeyRing, StoredKey};
use tresor_sdk::locks::KeyLocks;

pub(crate) const POLICY_PREFIX: &str = "policy/";

pub(crate) fn material_error(e: MaterialError) -> EngineError {
    match e {
        MaterialError::Invalid(m) => EngineError::InvalidRequest(m),
        MaterialError::Internal(m) => EngineError::Internal(m),
    }
}

#[derive(Debug, Default)]
pub(crate) struct KeyStore {
    cache: RwLock<HashMap<String, Arc<KeyRing>>>,
    locks: KeyLocks,
}

impl KeyStore {
    fn cached(&self, name: &str) -> Option<Arc<KeyRing>> {
        self.cache.read().ok()?.get(name).cloned()
    }

    fn cache_put(&self, name: &str, ring: Option<Arc<KeyRing>>) {
        if let Ok(mut cache) = self.cache.write() {
            match ring {
                Some(r) => {
                    cache.insert(name.to_owned(), r);
                }
                None => {
                    cache.remove(name);
                }
            }
        }
    }

    /// The key, from the cache or (once) from storage.
    pub(crate) async fn get(
        &self,
        storage: &dyn Storage,
        name: &str,
    ) -> EngineResult<Option<Arc<KeyRing>>> {
        if let Some(ring) = self.cached(name) {
            return Ok(Some(ring));
        }
        let _guard = self.lock(name).await;
        if let Some(ring) = self.cached(name) {
            return Ok(Some(ring));
        }
        let Some(stored) = self.read_stored(storage, name).await? else {
            return Ok(None);
        };
        let ring = Arc::new(stored.load().map_err(material_error)?);
        self.cache_put(name, Some(ring.clone()));
        Ok(Some(ring))
    }

    /// The per-key write lock. Hold it across read-modify-write sequences.
    pub(crate) async fn lock(&self, name: &str) -> MutexGuard<'_, ()> {
        self.locks.lock(name).await
    }

    /// Takes the key's lock and reads its stored form, for a read-modify-write of a key that
    /// must exist; `not_found` is the error when it does not. Hold the guard until written.
    pub(crate) async fn lock_existing(
        &self,
        storage: &dyn Storage,
        name: &str,
        not_found: impl FnOnce() -> EngineError,
    ) -> EngineResult<(MutexGuard<'_, ()>, StoredKey)> {
        let guard = self.lock(name).await;
        let stored = self
            .read_stored(storage, name)
            .await?
            .ok_or_else(not_found)?;
        Ok((guard, stored))
    }

    /// The stored form, read from storage (callers hold the key's lock when they modify it).
    pub(crate) async fn read_stored(
        &self,
        storage: &dyn Storage,
        name: &str,
    ) -> EngineResult<Option<StoredKey>> {
        let Some(raw) = storage.get(&format!("{POLICY_PREFIX}{name}")).await? else {
            return Ok(None);
        };
        StoredKey::from_bytes(raw.expose())
            .map(Some)
            .map_err(|e| EngineError::Internal(e.to_string()))
    }

    /// Persists `stored` and replaces the cached ring. The caller holds the key's lock.
    pub(crate) async fn save(
        &self,
        storage: &dyn Storage,
        stored: &StoredKey,
    ) -> EngineResult<Arc<KeyRing>> {
        let ring = Arc::new(stored.load().map_err(material_error)?);
        let bytes = stored.to_bytes().map_err(material_error)?;
        let name = &stored.meta.name;
        storage
            .put(&format!("{POLICY_PREFIX}{name}"), &bytes)
            .await?;
        self.cache_put(name, Some(ring.clone()));
        Ok(ring)
    }

    /// Deletes the key. The caller holds the key's lock.
    pub(crate) async fn remove(&self, storage: &dyn Storage, name: &str) -> EngineResult<()> {
        storage.delete(&format!("{POLICY_PREFIX}{name}")).await?;
        self.cache_put(name, None);
        Ok(())
    }

    pub(crate) async fn list(&self, storage: &dyn Storage) -> EngineResult<Vec<String>> {
        Ok(storage.list(POLICY_PREFIX).await?)
    }
}
