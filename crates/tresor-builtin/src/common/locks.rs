//! Striped async locks, one stripe per hash of a key.
//!
//! KV v2 writes are read-modify-write (read the metadata, check CAS, write the new version):
//! two concurrent writers of one key must not both pass the same CAS check. The storage
//! transaction makes each write atomic; the lock makes the read and the write one step.
//! Stripes bound memory; unrelated keys rarely share one.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use tokio::sync::{Mutex, MutexGuard};

const STRIPES: usize = 256;

#[derive(Debug)]
pub(crate) struct KeyLocks {
    stripes: Vec<Mutex<()>>,
    /// Never used in practice: `stripes` always has [`STRIPES`] entries. It lets `lock` avoid
    /// a panic path if that ever changed.
    spare: Mutex<()>,
}

impl Default for KeyLocks {
    fn default() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            spare: Mutex::new(()),
        }
    }
}

impl KeyLocks {
    pub(crate) async fn lock(&self, key: &str) -> MutexGuard<'_, ()> {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let index = usize::try_from(hasher.finish() % STRIPES as u64).unwrap_or(0);
        self.stripes.get(index).unwrap_or(&self.spare).lock().await
    }
}
