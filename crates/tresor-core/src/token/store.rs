//! The token store: creation, lookup (cached), renewal, revocation with its cascade.
//!
//! Storage layout, all under the barrier:
//! - `sys/token/salt`: the HMAC key for ids and accessors;
//! - `sys/token/id/<hmac(token)>`: the [`TokenEntry`];
//! - `sys/token/accessor/<hmac(accessor)>`: `{accessor, id_hash}`;
//! - `sys/token/parent/<parent id hash>/<child id hash>`: the child index revocation walks;
//! - `sys/expire/id/<creation path>/<id hash>`: the token's lease record (see
//!   [`crate::expiration`]), written in the same transaction as the entry.
//!
//! Expiry is the expiration manager's: a token with a TTL is queued in its timer when created
//! or renewed. A lookup still refuses an expired token on the spot, and hands it to the timer.
//!
//! Looking a token up by its keyed hash means no secret is ever compared byte by byte.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ring::hmac;
use serde::{Deserialize, Serialize};
use tresor_sdk::secret::{SecretBytes, SecretString};

use super::batch;
use super::entry::{TokenEntry, now_ns};
use crate::barrier::{Barrier, BarrierOp};
use crate::error::{CoreError, CoreResult};
use crate::expiration::{LeaseEntry, TimerQueue, token_lease_id};
use crate::memo::{self, Digits, Memo};
use crate::random;
use tresor_sdk::locks::KeyLocks;

const SALT_PATH: &str = "sys/token/salt";
const ID_PREFIX: &str = "sys/token/id/";
const ACCESSOR_PREFIX: &str = "sys/token/accessor/";
const PARENT_PREFIX: &str = "sys/token/parent/";
const LEASE_PREFIX: &str = "sys/expire/id/";
/// The root token `sys/init` creates is not a lease (as in Vault): nothing registers it.
const INIT_ROOT_PATH: &str = "auth/token/root";

/// 33 base62 characters: 196 bits of entropy.
const TOKEN_RANDOM_LEN: usize = 33;
/// OpenBao's service-token prefix; clients treat tokens as opaque.
pub const TOKEN_PREFIX: &str = "s.";

#[derive(Debug, Serialize, Deserialize)]
struct AccessorRecord {
    accessor: String,
    id_hash: String,
}

/// A token that was found, with the key that names it in storage.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub id_hash: String,
    pub entry: Arc<TokenEntry>,
}

#[derive(Debug)]
pub struct TokenStore {
    barrier: Arc<Barrier>,
    salt: hmac::Key,
    cache: RwLock<HashMap<String, Arc<TokenEntry>>>,
    /// The salted hashes of tokens found lately, by a keyed SipHash of the token.
    hashes: Memo,
    /// The expiration manager's timer queue, shared: tokens schedule their own expiry.
    queue: Arc<TimerQueue>,
    /// Serialises `update` and revocation of one token (striped by id hash), so a renewal
    /// racing the expiry timer or a revocation can never write back a revoked token.
    locks: KeyLocks,
}

const STRIPES: usize = 64;

/// Hex digits as text (they are ASCII, so this never fails).
fn digits_text(digits: &Digits) -> String {
    std::str::from_utf8(digits).map_or_else(|_| String::new(), str::to_owned)
}

impl TokenStore {
    /// Loads (or, on first unseal, creates) the salt. Entries load lazily on lookup.
    pub async fn open(barrier: Arc<Barrier>, queue: Arc<TimerQueue>) -> CoreResult<Self> {
        let salt_bytes = match barrier.get(SALT_PATH).await? {
            Some(s) => s,
            None => {
                let fresh = SecretBytes::new(random::bytes(32));
                barrier.put(SALT_PATH, fresh.expose()).await?;
                fresh
            }
        };
        let salt = hmac::Key::new(hmac::HMAC_SHA256, salt_bytes.expose());
        Ok(Self {
            barrier,
            salt,
            cache: RwLock::new(HashMap::new()),
            hashes: Memo::new(),
            queue,
            locks: KeyLocks::with_stripes(STRIPES),
        })
    }

    /// The lease id of a token (`auth/token/create/<id hash>`), if it is a lease at all.
    fn lease_id_of(entry: &TokenEntry, id_hash: &str) -> Option<String> {
        (entry.path != INIT_ROOT_PATH).then(|| token_lease_id(&entry.path, id_hash))
    }

    /// Queues the token's expiry in the expiration manager's timer.
    fn schedule_expiry(&self, id_hash: &str, entry: &TokenEntry) {
        if let (Some(expire), Some(lease_id)) = (entry.expire_ns, Self::lease_id_of(entry, id_hash))
        {
            self.queue.schedule(expire, &lease_id);
        }
    }

    /// The storage name of a token or accessor.
    pub fn hash(&self, value: &str) -> String {
        let mut digits = [0u8; 64];
        memo::hmac_hex(&self.salt, value, &mut digits);
        digits_text(&digits)
    }

    pub fn new_token_id() -> SecretString {
        SecretString::new(format!(
            "{TOKEN_PREFIX}{}",
            random::base62(TOKEN_RANDOM_LEN)
        ))
    }

    pub fn new_accessor() -> String {
        random::base62(24)
    }

    /// Persists a new entry for `token` (and its accessor and parent index) in one transaction.
    pub async fn insert(&self, token: &str, entry: TokenEntry) -> CoreResult<Resolved> {
        let id_hash = self.hash(token);
        if self
            .barrier
            .get(&format!("{ID_PREFIX}{id_hash}"))
            .await?
            .is_some()
        {
            return Err(CoreError::InvalidRequest(
                "cannot create a token with a duplicate ID".to_owned(),
            ));
        }
        let accessor = AccessorRecord {
            accessor: entry.accessor.clone(),
            id_hash: id_hash.clone(),
        };
        let mut ops = vec![
            BarrierOp::Put {
                path: format!("{ID_PREFIX}{id_hash}"),
                value: serde_json::to_vec(&entry)?.into(),
            },
            BarrierOp::Put {
                path: format!("{ACCESSOR_PREFIX}{}", self.hash(&entry.accessor)),
                value: serde_json::to_vec(&accessor)?.into(),
            },
        ];
        if let Some(parent) = &entry.parent {
            ops.push(BarrierOp::Put {
                path: format!("{PARENT_PREFIX}{parent}/{id_hash}"),
                value: Vec::new().into(),
            });
        }
        // The lease record goes in the same transaction: one commit (one fsync), not two.
        if let Some(lease_id) = Self::lease_id_of(&entry, &id_hash) {
            ops.push(BarrierOp::Put {
                path: format!("{LEASE_PREFIX}{lease_id}"),
                value: serde_json::to_vec(&LeaseEntry::for_token(lease_id, &id_hash))?.into(),
            });
        }
        self.barrier.transaction(ops).await?;
        self.schedule_expiry(&id_hash, &entry);
        let entry = Arc::new(entry);
        self.cache_put(&id_hash, Some(entry.clone()));
        Ok(Resolved { id_hash, entry })
    }

    fn cache_put(&self, id_hash: &str, entry: Option<Arc<TokenEntry>>) {
        if let Ok(mut cache) = self.cache.write() {
            match entry {
                Some(e) => cache.insert(id_hash.to_owned(), e),
                None => cache.remove(id_hash),
            };
        }
    }

    /// The stored entry, expired or not (for the expiration manager and lease lookups).
    pub async fn peek(&self, id_hash: &str) -> CoreResult<Option<Arc<TokenEntry>>> {
        let cached = self.cache.read().ok().and_then(|c| c.get(id_hash).cloned());
        if let Some(e) = cached {
            return Ok(Some(e));
        }
        // Filled under the token's lock: a revocation (which deletes the entry and clears the
        // cache under the same lock) cannot slip between this read and the insert and leave a
        // revoked token cached, where it would keep authenticating.
        let _guard = self.locks.lock(id_hash).await;
        let found = self.read_uncached(id_hash).await?;
        if let Some(e) = &found {
            self.cache_put(id_hash, Some(e.clone()));
        }
        Ok(found)
    }

    /// The stored entry without filling the cache: the lease loader reads every token once at
    /// unseal, and caching them all would cost a full entry of memory per outstanding lease.
    pub async fn read_uncached(&self, id_hash: &str) -> CoreResult<Option<Arc<TokenEntry>>> {
        if let Some(e) = self.cache.read().ok().and_then(|c| c.get(id_hash).cloned()) {
            return Ok(Some(e));
        }
        let Some(raw) = self.barrier.get(&format!("{ID_PREFIX}{id_hash}")).await? else {
            return Ok(None);
        };
        Ok(Some(Arc::new(serde_json::from_slice(raw.expose())?)))
    }

    /// Finds a live token by id hash. An expired one is reported absent at once and handed to
    /// the expiration manager, which revokes it (unless revocation is paused).
    pub async fn get_by_hash(&self, id_hash: &str) -> CoreResult<Option<Arc<TokenEntry>>> {
        let Some(entry) = self.peek(id_hash).await? else {
            return Ok(None);
        };
        let now = now_ns();
        if entry.expired_at(now) {
            if let Some(lease_id) = Self::lease_id_of(&entry, id_hash) {
                self.queue.schedule(now, &lease_id);
            }
            return Ok(None);
        }
        Ok(Some(entry))
    }

    /// Finds a live token; `None` when unknown or expired.
    pub async fn lookup(&self, token: &str) -> CoreResult<Option<Resolved>> {
        if token.is_empty() {
            return Ok(None);
        }
        if token.starts_with(batch::BATCH_PREFIX) {
            return self.lookup_batch(token).await;
        }
        // The token's hash from the memo when it was found before (see `crate::memo`).
        let mut digits = [0u8; 64];
        let computed = self.hashes.hmac(&self.salt, token, &mut digits);
        let id_hash = digits_text(&digits);
        let found = self.get_by_hash(&id_hash).await?;
        if found.is_some()
            && let Some(memo_id) = computed
        {
            self.hashes.put(memo_id, &digits);
        }
        Ok(found.map(|entry| Resolved { id_hash, entry }))
    }

    /// A batch token is live while it has not expired and its parent (if any) is live.
    async fn lookup_batch(&self, token: &str) -> CoreResult<Option<Resolved>> {
        let Some(entry) = batch::decode(&self.barrier, token)? else {
            return Ok(None);
        };
        if entry.expired_at(now_ns()) {
            return Ok(None);
        }
        if let Some(parent) = &entry.parent
            && self.get_by_hash(parent).await?.is_none()
        {
            return Ok(None);
        }
        Ok(Some(Resolved {
            id_hash: self.hash(token),
            entry: Arc::new(entry),
        }))
    }

    /// Issues a batch token for `entry`: nothing is stored (see [`batch`]).
    pub fn issue_batch(&self, mut entry: TokenEntry) -> CoreResult<(SecretString, Resolved)> {
        entry.batch = true;
        entry.accessor.clear();
        entry.renewable = false;
        let token = SecretString::new(batch::encode(&self.barrier, &entry)?);
        let id_hash = self.hash(token.expose());
        Ok((
            token,
            Resolved {
                id_hash,
                entry: Arc::new(entry),
            },
        ))
    }

    pub async fn lookup_accessor(&self, accessor: &str) -> CoreResult<Option<Resolved>> {
        let Some(raw) = self
            .barrier
            .get(&format!("{ACCESSOR_PREFIX}{}", self.hash(accessor)))
            .await?
        else {
            return Ok(None);
        };
        let record: AccessorRecord = serde_json::from_slice(raw.expose())?;
        Ok(self
            .get_by_hash(&record.id_hash)
            .await?
            .map(|entry| Resolved {
                id_hash: record.id_hash,
                entry,
            }))
    }

    /// Replaces an entry (renewal, use count, orphaning); a new expiry is queued.
    pub async fn update(&self, id_hash: &str, entry: TokenEntry) -> CoreResult<Arc<TokenEntry>> {
        let _guard = self.locks.lock(id_hash).await;
        let path = format!("{ID_PREFIX}{id_hash}");
        if self.barrier.get(&path).await?.is_none() {
            // Revoked meanwhile: writing it back would resurrect it.
            return Err(CoreError::InvalidRequest("token not found".to_owned()));
        }
        self.barrier
            .put(&path, &serde_json::to_vec(&entry)?)
            .await?;
        self.schedule_expiry(id_hash, &entry);
        let entry = Arc::new(entry);
        self.cache_put(id_hash, Some(entry.clone()));
        Ok(entry)
    }

    /// Counts one use of a limited-use token and returns the entry as it stands after the use
    /// (so `lookup-self` shows the remaining count, as in Vault), and whether this was the last
    /// use. The caller then revokes the token at once (with its leases): the current request
    /// goes through, the next one is refused.
    pub async fn consume_use(&self, resolved: &Resolved) -> CoreResult<(Arc<TokenEntry>, bool)> {
        let mut next = (*resolved.entry).clone();
        if next.num_uses <= 0 {
            return Ok((resolved.entry.clone(), false));
        }
        next.num_uses -= 1;
        if next.num_uses == 0 {
            // Report "-1" uses left like Vault does for a token spent by this very request.
            next.num_uses = -1;
            return Ok((Arc::new(next), true));
        }
        Ok((self.update(&resolved.id_hash, next).await?, false))
    }

    /// Revokes a token and, recursively, every child that is not an orphan. Returns the id
    /// hashes revoked (so the caller can drop per-token data such as cubbyholes).
    pub async fn revoke_tree(&self, id_hash: &str) -> CoreResult<Vec<String>> {
        let mut revoked = Vec::new();
        let mut pending = vec![id_hash.to_owned()];
        while let Some(current) = pending.pop() {
            for child in self
                .barrier
                .list(&format!("{PARENT_PREFIX}{current}/"))
                .await?
            {
                pending.push(child.trim_end_matches('/').to_owned());
            }
            self.revoke_one(&current).await?;
            revoked.push(current);
        }
        Ok(revoked)
    }

    /// Revokes one token only; its children become orphans (`revoke-orphan`).
    pub async fn revoke_orphan(&self, id_hash: &str) -> CoreResult<()> {
        for child in self
            .barrier
            .list(&format!("{PARENT_PREFIX}{id_hash}/"))
            .await?
        {
            let child = child.trim_end_matches('/');
            if let Some(entry) = self.get_by_hash(child).await? {
                let mut orphan = (*entry).clone();
                orphan.parent = None;
                match self.update(child, orphan).await {
                    // Revoked meanwhile: nothing left to orphan.
                    Ok(_) | Err(CoreError::InvalidRequest(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.revoke_one(id_hash).await
    }

    async fn revoke_one(&self, id_hash: &str) -> CoreResult<()> {
        let _guard = self.locks.lock(id_hash).await;
        let raw = self.barrier.get(&format!("{ID_PREFIX}{id_hash}")).await?;
        let mut ops = vec![BarrierOp::Delete {
            path: format!("{ID_PREFIX}{id_hash}"),
        }];
        let mut queued = None;
        if let Some(raw) = raw {
            let entry: TokenEntry = serde_json::from_slice(raw.expose())?;
            ops.push(BarrierOp::Delete {
                path: format!("{ACCESSOR_PREFIX}{}", self.hash(&entry.accessor)),
            });
            if let Some(parent) = &entry.parent {
                ops.push(BarrierOp::Delete {
                    path: format!("{PARENT_PREFIX}{parent}/{id_hash}"),
                });
            }
            if let Some(lease_id) = Self::lease_id_of(&entry, id_hash) {
                ops.push(BarrierOp::Delete {
                    path: format!("{LEASE_PREFIX}{lease_id}"),
                });
                queued = entry.expire_ns.map(|e| (e, lease_id));
            }
        }
        for child in self
            .barrier
            .list(&format!("{PARENT_PREFIX}{id_hash}/"))
            .await?
        {
            ops.push(BarrierOp::Delete {
                path: format!("{PARENT_PREFIX}{id_hash}/{child}"),
            });
        }
        self.barrier.transaction(ops).await?;
        self.cache_put(id_hash, None);
        if let Some((expire, lease_id)) = queued {
            self.queue.remove(expire, &lease_id);
        }
        Ok(())
    }

    /// Every accessor (for `auth/token/accessors`).
    pub async fn accessors(&self) -> CoreResult<Vec<String>> {
        let mut out = Vec::new();
        for key in self.barrier.list(ACCESSOR_PREFIX).await? {
            if let Some(raw) = self.barrier.get(&format!("{ACCESSOR_PREFIX}{key}")).await? {
                let record: AccessorRecord = serde_json::from_slice(raw.expose())?;
                out.push(record.accessor);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use tresor_storage::MemoryBackend;

    use super::*;

    async fn store() -> TokenStore {
        let barrier = Barrier::new(Arc::new(MemoryBackend::new()));
        let key = SecretBytes::copy_from(&[7; 32]);
        barrier.initialize(&key).await.unwrap();
        barrier.unseal(&key).await.unwrap();
        TokenStore::open(Arc::new(barrier), Arc::new(TimerQueue::new()))
            .await
            .unwrap()
    }

    fn entry(accessor: &str) -> TokenEntry {
        serde_json::from_value(serde_json::json!({
            "accessor": accessor, "policies": ["default"], "path": "auth/token/create",
            "display_name": "token", "created_ns": now_ns(),
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_found_token_is_remembered_by_its_hash_and_a_made_up_one_is_not() {
        let tokens = store().await;
        let created = tokens.insert("s.alpha", entry("acc-a")).await.unwrap();
        for _ in 0..3 {
            let found = tokens.lookup("s.alpha").await.unwrap().unwrap();
            assert_eq!(found.id_hash, created.id_hash);
            assert_eq!(found.id_hash, tokens.hash("s.alpha"));
        }
        assert_eq!(tokens.hashes.len(), 1);
        for made_up in ["s.beta", "s.gamma", "s.alphA"] {
            assert!(tokens.lookup(made_up).await.unwrap().is_none());
        }
        assert_eq!(tokens.hashes.len(), 1, "unknown tokens are not remembered");
    }

    #[tokio::test]
    async fn a_revoked_token_stops_working_although_its_hash_is_remembered() {
        let tokens = store().await;
        let created = tokens.insert("s.alpha", entry("acc-a")).await.unwrap();
        assert!(tokens.lookup("s.alpha").await.unwrap().is_some());
        assert_eq!(tokens.hashes.len(), 1);
        tokens.revoke_orphan(&created.id_hash).await.unwrap();
        assert!(tokens.lookup("s.alpha").await.unwrap().is_none());
        // The same token id issued again (as `auth/token/create` with an `id` may) is found
        // through the remembered hash, which names the new entry.
        let again = tokens.insert("s.alpha", entry("acc-b")).await.unwrap();
        let found = tokens.lookup("s.alpha").await.unwrap().unwrap();
        assert_eq!(found.id_hash, again.id_hash);
        assert_eq!(found.entry.accessor, "acc-b");
    }
}
