//! The decoded metadata of the keys a mount read lately.
//!
//! Every read of `data/<path>` needs the key's metadata (which version is current, whether it
//! is deleted) before it can load the version: a second storage lookup, a second decryption and
//! a JSON parse that grows with the number of versions kept. The metadata is small, changes only
//! through this engine, and is read far more often than written, so the engine keeps it decoded.
//! It holds no secret: the versions' data is never cached.
//!
//! Staying right:
//! - Every write the engine makes goes through [`Invalidating`], which forgets the metadata of
//!   every key a write touches once the write has returned (committed or not). `initialize` and
//!   `options_changed` (the v1 → v2 upgrade) forget everything.
//! - A read that missed loads from storage and remembers what it loaded only if no write to
//!   the same stripe of keys returned meanwhile (an epoch per stripe, compared under the map's
//!   lock): a load that raced a write could hold the metadata from before it.
//! - A write of `data/<path>` (and the check of whether the key exists that decides between the
//!   `create` and `update` capability) starts from the cached metadata, under the key's lock, as
//!   a read would. Once the transaction of a new version (a write or a PATCH) commits, the
//!   metadata it wrote is remembered ([`MetaCache::remember_written`]), but only if that write
//!   was the only one to touch the key's stripe since it began: a key written again and again (a
//!   rotation) is not parsed from storage again.
//! - Only the active node serves and writes (a standby forwards), and a node that becomes active
//!   builds its engines afresh, so no other writer can change the storage under this cache.
//!
//! Bounded: at most [`MAX_ENTRIES`] keys per mount; when full it starts over.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tresor_sdk::engine::EngineResult;
use tresor_sdk::secret::SecretBytes;
use tresor_sdk::storage::{Storage, StorageViewError, ViewOp};

use super::model::KeyMetadata;
use super::store;
use crate::secrets::kv::layout::META_PREFIX;

/// Keys remembered per mount (a few hundred bytes each; more with many versions).
const MAX_ENTRIES: usize = 4096;

/// Stripes of keys sharing an epoch (8 KiB of counters per mount). A write's metadata is kept
/// only if no other write touched its stripe while it committed: with 63 other writes committing
/// meanwhile (64 clients on a disk's group commit), 64 stripes would keep about a third of them
/// ((63/64)^63), 1,024 about 94 %.
const STRIPES: usize = 1024;

pub(crate) struct MetaCache {
    entries: Mutex<HashMap<String, Arc<KeyMetadata>>>,
    /// Bumped, under the map's lock, by every write that touches a key of the stripe.
    epochs: [AtomicU64; STRIPES],
    stripe_of: RandomState,
}

impl std::fmt::Debug for MetaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaCache").finish_non_exhaustive()
    }
}

impl Default for MetaCache {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            epochs: std::array::from_fn(|_| AtomicU64::new(0)),
            stripe_of: RandomState::new(),
        }
    }
}

impl MetaCache {
    /// The metadata of `path`, from the cache or from storage (`None`: no such key).
    pub(crate) async fn load(
        &self,
        storage: &dyn Storage,
        path: &str,
    ) -> EngineResult<Option<Arc<KeyMetadata>>> {
        if let Ok(entries) = self.entries.lock()
            && let Some(hit) = entries.get(path)
        {
            return Ok(Some(Arc::clone(hit)));
        }
        let epoch = self.epoch(path);
        let Some(loaded) = store::load_meta(storage, path).await? else {
            return Ok(None);
        };
        let loaded = Arc::new(loaded);
        if let Ok(mut entries) = self.entries.lock()
            && epoch.is_some()
            && self.epoch(path) == epoch
        {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(path.to_owned(), Arc::clone(&loaded));
        }
        Ok(Some(loaded))
    }

    /// Taken before a write's transaction, for [`Self::remember_written`].
    pub(crate) fn before_write(&self, path: &str) -> Option<u64> {
        self.epoch(path)
    }

    /// Remembers `meta` as the metadata of `path` after a transaction that wrote it committed
    /// through [`Invalidating`] (which forgot `path`, bumping its stripe once). Anything else
    /// that touched the stripe since `before` — another write, a `clear` — and `meta` is not
    /// kept: the next read loads from storage.
    pub(crate) fn remember_written(&self, path: &str, meta: KeyMetadata, before: Option<u64>) {
        let Some(before) = before else {
            return;
        };
        // Compared under the map's lock, which `forget` bumps epochs under.
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if self.epoch(path) != Some(before.wrapping_add(1)) {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(path.to_owned(), Arc::new(meta));
    }

    fn stripe(&self, path: &str) -> Option<&AtomicU64> {
        let n = usize::try_from(self.stripe_of.hash_one(path) % STRIPES as u64).ok()?;
        self.epochs.get(n)
    }

    /// `None` never matches: a load whose stripe is unknown is not remembered.
    fn epoch(&self, path: &str) -> Option<u64> {
        self.stripe(path).map(|e| e.load(Ordering::Acquire))
    }

    /// Forgets the metadata of the keys whose storage keys are `keys` (others are ignored).
    fn forget<'k>(&self, keys: impl Iterator<Item = &'k str>) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        for path in keys.filter_map(|k| k.strip_prefix(META_PREFIX)) {
            if let Some(epoch) = self.stripe(path) {
                epoch.fetch_add(1, Ordering::AcqRel);
            }
            entries.remove(path);
        }
    }

    /// Forgets everything (after an upgrade rewrote the mount's records).
    pub(crate) fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            for epoch in &self.epochs {
                epoch.fetch_add(1, Ordering::AcqRel);
            }
            entries.clear();
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }
}

/// The mount's storage as the engine writes it: every write, once returned, makes the cache
/// forget the metadata it touched.
pub(crate) struct Invalidating<'a> {
    pub inner: &'a dyn Storage,
    pub cache: &'a MetaCache,
}

#[async_trait]
impl Storage for Invalidating<'_> {
    async fn get(&self, key: &str) -> Result<Option<SecretBytes>, StorageViewError> {
        self.inner.get(key).await
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StorageViewError> {
        let result = self.inner.put(key, value).await;
        self.cache.forget(std::iter::once(key));
        result
    }

    async fn delete(&self, key: &str) -> Result<(), StorageViewError> {
        let result = self.inner.delete(key).await;
        self.cache.forget(std::iter::once(key));
        result
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageViewError> {
        self.inner.list(prefix).await
    }

    async fn transaction(&self, ops: Vec<ViewOp>) -> Result<(), StorageViewError> {
        let keys: Vec<String> = ops
            .iter()
            .filter_map(|op| match op {
                ViewOp::Put { key, .. } | ViewOp::Delete { key } => {
                    key.starts_with(META_PREFIX).then(|| key.clone())
                }
            })
            .collect();
        let result = self.inner.transaction(ops).await;
        self.cache.forget(keys.iter().map(String::as_str));
        result
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// What runs in the middle of a `get`.
    type Hook = Box<dyn FnOnce(&Mem) + Send>;

    /// Plain storage, plus a hook that runs in the middle of a `get`: a write that commits
    /// while a read's load is in flight.
    #[derive(Default)]
    struct Mem {
        map: Mutex<BTreeMap<String, Vec<u8>>>,
        during_get: Mutex<Option<Hook>>,
    }

    #[async_trait]
    impl Storage for Mem {
        async fn get(&self, key: &str) -> Result<Option<SecretBytes>, StorageViewError> {
            let value = self.map.lock().unwrap().get(key).cloned();
            let hook = self.during_get.lock().unwrap().take();
            if let Some(hook) = hook {
                hook(self);
            }
            Ok(value.map(|v| SecretBytes::copy_from(&v)))
        }
        async fn put(&self, key: &str, value: &[u8]) -> Result<(), StorageViewError> {
            self.map.lock().unwrap().insert(key.into(), value.to_vec());
            Ok(())
        }
        async fn delete(&self, key: &str) -> Result<(), StorageViewError> {
            self.map.lock().unwrap().remove(key);
            Ok(())
        }
        async fn list(&self, _prefix: &str) -> Result<Vec<String>, StorageViewError> {
            Ok(Vec::new())
        }
        async fn transaction(&self, ops: Vec<ViewOp>) -> Result<(), StorageViewError> {
            let mut map = self.map.lock().unwrap();
            for op in ops {
                match op {
                    ViewOp::Put { key, value } => {
                        map.insert(key, value.expose().to_vec());
                    }
                    ViewOp::Delete { key } => {
                        map.remove(&key);
                    }
                }
            }
            Ok(())
        }
    }

    fn meta(current: u64) -> KeyMetadata {
        KeyMetadata {
            current_version: current,
            ..KeyMetadata::default()
        }
    }

    /// The current version the cache gives for `path` (which must exist).
    async fn current(cache: &MetaCache, storage: &dyn Storage, path: &str) -> u64 {
        cache
            .load(storage, path)
            .await
            .unwrap()
            .unwrap()
            .current_version
    }

    async fn write(storage: &dyn Storage, cache: &MetaCache, path: &str, current: u64) {
        let view = Invalidating {
            inner: storage,
            cache,
        };
        view.transaction(vec![store::put_meta(path, &meta(current)).unwrap()])
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_write_through_the_engine_view_is_seen_by_the_next_read() {
        let storage = Mem::default();
        let cache = MetaCache::default();
        assert!(cache.load(&storage, "a").await.unwrap().is_none());
        write(&storage, &cache, "a", 1).await;
        assert_eq!(current(&cache, &storage, "a").await, 1);
        assert_eq!(cache.len(), 1, "a found key is remembered");
        write(&storage, &cache, "a", 2).await;
        assert_eq!(current(&cache, &storage, "a").await, 2);
        // Deleting the metadata (DELETE metadata/<path>) forgets it too.
        let view = Invalidating {
            inner: &storage,
            cache: &cache,
        };
        view.delete(&crate::secrets::kv::layout::meta_key("a"))
            .await
            .unwrap();
        assert!(cache.load(&storage, "a").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_load_that_raced_a_write_is_not_remembered() {
        let storage = Mem::default();
        let cache = Arc::new(MetaCache::default());
        write(&storage, &cache, "a", 1).await;
        // The read loads version 1, and a write of version 2 commits before the load returns.
        let racing = Arc::clone(&cache);
        *storage.during_get.lock().unwrap() = Some(Box::new(move |s: &Mem| {
            // What `Invalidating::transaction` does once the write commits.
            let key = crate::secrets::kv::layout::meta_key("a");
            let value = store::put_meta("a", &meta(2)).unwrap();
            let ViewOp::Put { value, .. } = value else {
                unreachable!()
            };
            s.map
                .lock()
                .unwrap()
                .insert(key.clone(), value.expose().to_vec());
            racing.forget(std::iter::once(key.as_str()));
        }));
        let first = cache.load(&storage, "a").await.unwrap().unwrap();
        assert_eq!(first.current_version, 1, "the read raced the write");
        assert_eq!(cache.len(), 0, "what it loaded may be stale: not kept");
        assert_eq!(current(&cache, &storage, "a").await, 2);
    }

    #[tokio::test]
    async fn a_committed_write_is_remembered_unless_another_write_came_between() {
        let storage = Mem::default();
        let cache = MetaCache::default();
        // Alone: remembered, and the next read needs no storage lookup.
        let before = cache.before_write("a");
        write(&storage, &cache, "a", 1).await;
        cache.remember_written("a", meta(1), before);
        assert_eq!(cache.len(), 1);
        storage.map.lock().unwrap().clear();
        assert_eq!(
            current(&cache, &storage, "a").await,
            1,
            "served from the cache"
        );
        // Another write to the key committed after this one: not remembered.
        let before = cache.before_write("a");
        write(&storage, &cache, "a", 2).await;
        write(&storage, &cache, "a", 3).await;
        cache.remember_written("a", meta(2), before);
        assert_eq!(cache.len(), 0, "version 2's metadata is stale");
        assert_eq!(current(&cache, &storage, "a").await, 3);
        cache.clear();
        // A write that did not go through the engine's view (nothing forgotten): not kept.
        let before = cache.before_write("b");
        cache.remember_written("b", meta(1), before);
        assert_eq!(cache.len(), 0);
        // An upgrade's `clear` after the write committed: not kept.
        let before = cache.before_write("c");
        write(&storage, &cache, "c", 1).await;
        cache.clear();
        cache.remember_written("c", meta(1), before);
        assert_eq!(cache.len(), 0);
    }

    #[tokio::test]
    async fn a_write_to_another_key_does_not_forget_this_one() {
        let storage = Mem::default();
        let cache = MetaCache::default();
        write(&storage, &cache, "a", 1).await;
        write(&storage, &cache, "b", 1).await;
        cache.load(&storage, "a").await.unwrap();
        cache.load(&storage, "b").await.unwrap();
        write(&storage, &cache, "b", 2).await;
        assert_eq!(cache.len(), 1);
        cache.clear();
        assert_eq!(cache.len(), 0);
    }

    #[tokio::test]
    async fn the_cache_stays_bounded() {
        let storage = Mem::default();
        let cache = MetaCache::default();
        for i in 0..MAX_ENTRIES + 10 {
            let path = format!("k{i}");
            storage
                .put(&crate::secrets::kv::layout::meta_key(&path), b"{}")
                .await
                .unwrap();
            cache.load(&storage, &path).await.unwrap();
        }
        assert!(cache.len() <= MAX_ENTRIES, "{} entries", cache.len());
    }
}
