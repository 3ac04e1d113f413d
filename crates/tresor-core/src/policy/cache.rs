//! Compiled ACLs cached per policy set, so a request costs one map lookup instead of a
//! compilation.
//!
//! The key is the sorted, deduplicated list of policy names with its hash computed once
//! ([`PolicySetKey`]); a token can keep its key, so a lookup hashes one `u64` and compares
//! names only on a hit. Any policy write or delete calls [`AclCache::clear`]: policies change
//! rarely, and tracking which sets contain which policy is not worth its complexity. A
//! generation counter keeps an ACL compiled from pre-change policies from being cached after
//! the clear that should have removed it.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, PoisonError, RwLock};

use time::OffsetDateTime;

use super::acl::Acl;

/// A policy set, normalised and pre-hashed.
#[derive(Debug, Clone)]
pub struct PolicySetKey {
    names: Arc<[String]>,
    hash: u64,
}

impl PolicySetKey {
    /// Sorts and deduplicates `names` (order and repeats do not change an ACL).
    pub fn new<S: AsRef<str>>(names: &[S]) -> PolicySetKey {
        let mut sorted: Vec<String> = names.iter().map(|n| n.as_ref().to_owned()).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let mut hasher = DefaultHasher::new();
        sorted.hash(&mut hasher);
        PolicySetKey {
            names: sorted.into(),
            hash: hasher.finish(),
        }
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }
}

impl PartialEq for PolicySetKey {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
            && (Arc::ptr_eq(&self.names, &other.names) || self.names == other.names)
    }
}

impl Eq for PolicySetKey {}

impl Hash for PolicySetKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// Above this many sets the cache starts over, bounding memory whatever tokens exist.
const DEFAULT_CAPACITY: usize = 4096;

#[derive(Debug)]
pub struct AclCache {
    inner: RwLock<Inner>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Inner {
    /// Bumped by every `clear`.
    generation: u64,
    acls: HashMap<PolicySetKey, Arc<Acl>>,
}

impl Default for AclCache {
    fn default() -> Self {
        AclCache::with_capacity(DEFAULT_CAPACITY)
    }
}

impl AclCache {
    pub fn new() -> AclCache {
        AclCache::default()
    }

    /// A cache holding at most `capacity` policy sets (at least one).
    pub fn with_capacity(capacity: usize) -> AclCache {
        AclCache {
            inner: RwLock::new(Inner::default()),
            capacity: capacity.max(1),
        }
    }

    /// The cached ACL for `key`, unless absent or past a rule expiration.
    pub fn get(&self, key: &PolicySetKey) -> Option<Arc<Acl>> {
        // A poisoned lock only means a panic elsewhere mid-update of a cache; the map is
        // still a valid map, so keep serving from it.
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let acl = inner.acls.get(key)?;
        if let Some(until) = acl.valid_until()
            && OffsetDateTime::now_utc() > until
        {
            return None;
        }
        Some(Arc::clone(acl))
    }

    /// The current generation; pass it to [`AclCache::insert`] with an ACL built after
    /// reading it.
    pub fn generation(&self) -> u64 {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .generation
    }

    /// Caches `acl` for `key` unless the cache was cleared since `generation` was read (the
    /// ACL may then reflect old policies). Returns the ACL either way.
    pub fn insert(&self, key: PolicySetKey, acl: Acl, generation: u64) -> Arc<Acl> {
        let acl = Arc::new(acl);
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if inner.generation == generation {
            if inner.acls.len() >= self.capacity && !inner.acls.contains_key(&key) {
                inner.acls.clear();
            }
            inner.acls.insert(key, Arc::clone(&acl));
        }
        acl
    }

    /// The cached ACL, or one built by `build` (from the policies as they are now) and cached.
    pub fn get_or_try_insert_with<E>(
        &self,
        key: &PolicySetKey,
        build: impl FnOnce(&[String]) -> Result<Acl, E>,
    ) -> Result<Arc<Acl>, E> {
        if let Some(acl) = self.get(key) {
            return Ok(acl);
        }
        let generation = self.generation();
        let acl = build(key.names())?;
        Ok(self.insert(key.clone(), acl, generation))
    }

    /// Forgets every ACL; call on any policy change.
    pub fn clear(&self) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.generation = inner.generation.wrapping_add(1);
        inner.acls.clear();
    }

    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .acls
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    #[test]
    fn keys_ignore_order_and_repeats() {
        let a = PolicySetKey::new(&["b", "a", "b"]);
        let b = PolicySetKey::new(&["a", "b"]);
        assert_eq!(a, b);
        assert_eq!(a.names(), ["a", "b"]);
        assert_ne!(a, PolicySetKey::new(&["a"]));
    }

    #[test]
    fn caches_until_cleared() {
        let cache = AclCache::new();
        let key = PolicySetKey::new(&["default"]);
        let mut builds = 0;
        for _ in 0..3 {
            cache
                .get_or_try_insert_with(&key, |_| {
                    builds += 1;
                    Ok::<_, Infallible>(Acl::new(&[]))
                })
                .unwrap();
        }
        assert_eq!(builds, 1);
        cache.clear();
        assert!(cache.get(&key).is_none());
    }

    #[test]
    fn a_build_racing_a_clear_is_not_cached() {
        let cache = AclCache::new();
        let key = PolicySetKey::new(&["p"]);
        let generation = cache.generation();
        cache.clear();
        cache.insert(key.clone(), Acl::new(&[]), generation);
        assert!(cache.get(&key).is_none());
    }

    #[test]
    fn capacity_bounds_memory() {
        let cache = AclCache::with_capacity(2);
        for name in ["a", "b", "c"] {
            let generation = cache.generation();
            cache.insert(PolicySetKey::new(&[name]), Acl::new(&[]), generation);
        }
        assert!(cache.len() <= 2);
    }
}
