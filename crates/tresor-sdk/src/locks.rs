//! Striped async locks, one stripe per hash of a key.
//!
//! Read-modify-write steps on one key must not interleave: two KV v2 writers of one key must
//! not both pass the same CAS check, a transit key update must not race another, a token
//! renewal must not write back a token a revocation just deleted, a lease retry must not
//! resurrect a record an API call just removed. The storage transaction makes each write
//! atomic; the lock makes the read and the write one step. Stripes bound memory; unrelated
//! keys rarely share one.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use tokio::sync::{Mutex, MutexGuard};

/// Stripes when nothing else is asked for.
pub const DEFAULT_STRIPES: usize = 256;

#[derive(Debug)]
pub struct KeyLocks {
    stripes: Vec<Mutex<()>>,
    /// Never used in practice: `stripes` is never empty. It lets `lock` avoid a panic path.
    spare: Mutex<()>,
}

impl Default for KeyLocks {
    fn default() -> Self {
        Self::with_stripes(DEFAULT_STRIPES)
    }
}

impl KeyLocks {
    /// `stripes` locks (at least one).
    pub fn with_stripes(stripes: usize) -> Self {
        Self {
            stripes: (0..stripes.max(1)).map(|_| Mutex::new(())).collect(),
            spare: Mutex::new(()),
        }
    }

    /// The lock of `key`'s stripe, held until the guard is dropped.
    pub async fn lock(&self, key: &str) -> MutexGuard<'_, ()> {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let count = self.stripes.len() as u64;
        let index = usize::try_from(hasher.finish() % count.max(1)).unwrap_or(0);
        self.stripes.get(index).unwrap_or(&self.spare).lock().await
    }
}
