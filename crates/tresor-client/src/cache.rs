//! [`CachedStore`]: a read-through cache in front of any [`SecretStore`].
//!
//! - `get` serves a value read less than `ttl` ago from memory; otherwise it reads through
//!   (one read per name at a time: concurrent callers wait for the same read).
//! - With `refresh_interval`, a background task re-reads every cached name at that interval,
//!   so rotations are picked up without callers ever waiting (a failed refresh is logged and
//!   the old value is kept until its `ttl` runs out; a secret that is gone is dropped).
//! - [`CachedStore::refresh_on_auth_error`]: the application's downstream service refused the
//!   secret (401/403); the secret is read again now, unless another caller already re-read it
//!   since this call began (so a burst of 401s costs one read).
//! - [`CachedStore::invalidate`]: forget one name; the next `get` reads through.
//! - `set`/`rotate` write through and cache what they wrote; `delete` forgets the name.
//!
//! Values stay [`SecretString`]s; `Debug` lists names and versions only.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tresor_sdk::secret::SecretString;

use crate::error::SecretStoreError;
use crate::store::{Provider, Rotation, Secret, SecretStore, Version};

/// How long values are served from memory and how often they are refreshed.
#[derive(Debug, Clone)]
pub struct CacheOptions {
    /// A value older than this is read again on `get` (5 minutes by default).
    pub ttl: Duration,
    /// Every cached name is re-read in the background at this interval (`None`: only on
    /// expiry). By default half the TTL.
    pub refresh_interval: Option<Duration>,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(300),
            refresh_interval: Some(Duration::from_secs(150)),
        }
    }
}

/// What a forced re-read found.
#[derive(Debug, Clone)]
pub struct Refreshed {
    pub secret: Secret,
    /// The version differs from the one cached before (a rotation was picked up).
    pub changed: bool,
}

/// Counters, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// `get`s answered from memory.
    pub hits: u64,
    /// Reads through to the store (misses, expiries, forced and background refreshes).
    pub reads: u64,
}

struct Entry {
    secret: Secret,
    fetched: Instant,
    /// The version this read replaced (for [`Refreshed::changed`] when reads coalesce).
    replaced: Option<Version>,
}

/// One name's cached value; its lock makes reads of one name single-flight.
#[derive(Default)]
struct Slot {
    entry: tokio::sync::Mutex<Option<Entry>>,
}

struct Inner {
    store: Arc<dyn SecretStore>,
    options: CacheOptions,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    hits: AtomicU64,
    reads: AtomicU64,
}

/// A read-through cache over a [`SecretStore`]; itself a [`SecretStore`]. Dropping it stops
/// the background refresh.
pub struct CachedStore {
    inner: Arc<Inner>,
    refresher: Option<tokio::task::AbortHandle>,
}

impl std::fmt::Debug for CachedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.inner.slots().keys().cloned().collect();
        f.debug_struct("CachedStore")
            .field("store", &self.inner.store)
            .field("options", &self.inner.options)
            .field("names", &names)
            .finish()
    }
}

impl Drop for CachedStore {
    fn drop(&mut self) {
        if let Some(task) = &self.refresher {
            task.abort();
        }
    }
}

impl Inner {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Slot>>> {
        // Poisoned only by a panic elsewhere; the map itself is whole.
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn slot(&self, name: &str) -> Arc<Slot> {
        self.slots().entry(name.to_owned()).or_default().clone()
    }

    /// Reads `name` through into `entry`; a secret that is gone empties it.
    async fn read(
        &self,
        name: &str,
        entry: &mut Option<Entry>,
    ) -> Result<Secret, SecretStoreError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        match self.store.get(name).await {
            Ok(secret) => {
                let replaced = entry.take().map(|e| e.secret.version.clone());
                *entry = Some(Entry {
                    secret: secret.clone(),
                    fetched: Instant::now(),
                    replaced,
                });
                Ok(secret)
            }
            Err(e) => {
                if e.is_not_found() {
                    *entry = None;
                }
                Err(e)
            }
        }
    }

    async fn refresh_all(&self) {
        let slots: Vec<(String, Arc<Slot>)> = self
            .slots()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (name, slot) in slots {
            let mut entry = slot.entry.lock().await;
            if entry.is_none() {
                continue;
            }
            if let Err(e) = self.read(&name, &mut entry).await {
                tracing::warn!(name = %name, error = %e, "secret cache: background refresh failed; the cached value is kept until it expires");
            }
        }
    }
}

impl CachedStore {
    /// A cache over `store`; with a `refresh_interval`, starts the refresh task (inside a
    /// Tokio runtime).
    pub fn new(store: Arc<dyn SecretStore>, options: CacheOptions) -> Self {
        let inner = Arc::new(Inner {
            store,
            options,
            slots: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            reads: AtomicU64::new(0),
        });
        let refresher = inner.options.refresh_interval.map(|every| {
            let weak = Arc::downgrade(&inner);
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(every.max(Duration::from_millis(10)));
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticks.tick().await;
                loop {
                    ticks.tick().await;
                    let Some(inner) = weak.upgrade() else { return };
                    inner.refresh_all().await;
                }
            })
            .abort_handle()
        });
        Self { inner, refresher }
    }

    pub fn store(&self) -> &Arc<dyn SecretStore> {
        &self.inner.store
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.inner.hits.load(Ordering::Relaxed),
            reads: self.inner.reads.load(Ordering::Relaxed),
        }
    }

    /// Forgets `name`: the next `get` reads through.
    pub fn invalidate(&self, name: &str) {
        self.inner.slots().remove(name);
    }

    /// Forgets every name.
    pub fn invalidate_all(&self) {
        self.inner.slots().clear();
    }

    /// Call this when the service the secret is for answered 401/403: the secret was probably
    /// rotated. Reads it again now (unless another caller did since this call began) and says
    /// whether the version changed, so the caller knows whether retrying can help.
    ///
    /// ```no_run
    /// # use tresor_client::{CachedStore, SecretStore};
    /// # async fn call_console(token: &str) -> Result<u16, ()> { Ok(200) }
    /// # async fn demo(cache: &CachedStore) -> Result<(), Box<dyn std::error::Error>> {
    /// let token = cache.get("instance-abc123").await?;
    /// let mut status = call_console(token.value.expose()).await.unwrap_or(500);
    /// if status == 401 || status == 403 {
    ///     let fresh = cache.refresh_on_auth_error("instance-abc123").await?;
    ///     if fresh.changed {
    ///         status = call_console(fresh.secret.value.expose()).await.unwrap_or(500);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn refresh_on_auth_error(&self, name: &str) -> Result<Refreshed, SecretStoreError> {
        let asked = Instant::now();
        self.inner.store.validate_name(name)?;
        let slot = self.inner.slot(name);
        let mut entry = slot.entry.lock().await;
        let before = entry.as_ref().map(|e| e.secret.version.clone());
        if let Some(e) = entry.as_ref()
            && e.fetched >= asked
        {
            // Another caller re-read it while this one waited: that read is fresh enough.
            return Ok(Refreshed {
                secret: e.secret.clone(),
                changed: e.replaced.as_ref() != Some(&e.secret.version),
            });
        }
        let result = self.inner.read(name, &mut entry).await;
        drop(entry);
        if result.as_ref().is_err_and(SecretStoreError::is_not_found) {
            self.invalidate(name);
        }
        let secret = result?;
        Ok(Refreshed {
            changed: before.as_ref() != Some(&secret.version),
            secret,
        })
    }
}

#[async_trait]
impl SecretStore for CachedStore {
    fn provider(&self) -> Provider {
        self.inner.store.provider()
    }

    async fn get(&self, name: &str) -> Result<Secret, SecretStoreError> {
        self.inner.store.validate_name(name)?;
        let slot = self.inner.slot(name);
        let mut entry = slot.entry.lock().await;
        if let Some(e) = entry.as_ref()
            && e.fetched.elapsed() < self.inner.options.ttl
        {
            self.inner.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(e.secret.clone());
        }
        let result = self.inner.read(name, &mut entry).await;
        drop(entry);
        if result.as_ref().is_err_and(SecretStoreError::is_not_found) {
            self.invalidate(name);
        }
        result
    }

    async fn set(&self, name: &str, value: &SecretString) -> Result<Version, SecretStoreError> {
        self.inner.store.validate_name(name)?;
        let slot = self.inner.slot(name);
        let mut entry = slot.entry.lock().await;
        let version = self.inner.store.set(name, value).await?;
        // noop persists nothing, so its cache must not pretend it did.
        *entry = (self.provider() != Provider::Noop).then(|| Entry {
            secret: Secret {
                value: value.clone(),
                version: version.clone(),
            },
            fetched: Instant::now(),
            replaced: entry.as_ref().map(|e| e.secret.version.clone()),
        });
        Ok(version)
    }

    async fn delete(&self, name: &str) -> Result<(), SecretStoreError> {
        self.inner.store.validate_name(name)?;
        let slot = self.inner.slot(name);
        let mut entry = slot.entry.lock().await;
        let result = self.inner.store.delete(name).await;
        *entry = None;
        drop(entry);
        self.invalidate(name);
        result
    }

    async fn rotate(
        &self,
        name: &str,
        new_value: &SecretString,
    ) -> Result<Rotation, SecretStoreError> {
        self.inner.store.validate_name(name)?;
        let slot = self.inner.slot(name);
        let mut entry = slot.entry.lock().await;
        match self.inner.store.rotate(name, new_value).await {
            Ok(rotation) => {
                *entry = (self.provider() != Provider::Noop).then(|| Entry {
                    secret: Secret {
                        value: new_value.clone(),
                        version: rotation.current.clone(),
                    },
                    fetched: Instant::now(),
                    replaced: Some(rotation.previous.clone()),
                });
                Ok(rotation)
            }
            Err(e) => {
                // A lost race (or anything else): what is cached may be stale now.
                *entry = None;
                Err(e)
            }
        }
    }
}
