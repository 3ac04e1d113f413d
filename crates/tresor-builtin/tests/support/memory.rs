//! An in-memory [`Storage`] with the core's view semantics: keys are checked like the
//! barrier view checks them, `list` returns immediate children sorted with folders once and
//! ending in `/`, and `transaction` applies all or nothing. It counts writes so tests can
//! assert "one transaction per operation" and can be made to fail.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use tresor_sdk::secret::SecretBytes;
use tresor_sdk::storage::{Storage, StorageViewError, ViewOp};

#[derive(Debug, Default)]
pub struct MemStorage {
    map: Mutex<BTreeMap<String, Vec<u8>>>,
    pub transactions: AtomicUsize,
    pub single_writes: AtomicUsize,
    /// When set, every write fails with a backend error (and changes nothing).
    pub fail_writes: AtomicBool,
}

fn check_key(key: &str) -> Result<(), StorageViewError> {
    let ok = !key.is_empty()
        && !key.contains('\0')
        && key.split('/').all(|s| !matches!(s, "" | "." | ".."));
    if ok {
        Ok(())
    } else {
        Err(StorageViewError::InvalidKey(key.to_owned()))
    }
}

impl MemStorage {
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        self.map.lock().unwrap().clone()
    }

    pub fn keys(&self) -> Vec<String> {
        self.map.lock().unwrap().keys().cloned().collect()
    }

    pub fn raw(&self, key: &str) -> Option<Vec<u8>> {
        self.map.lock().unwrap().get(key).cloned()
    }

    pub fn insert_raw(&self, key: &str, value: &[u8]) {
        self.map
            .lock()
            .unwrap()
            .insert(key.to_owned(), value.to_vec());
    }

    fn check_writable(&self) -> Result<(), StorageViewError> {
        if self.fail_writes.load(Ordering::SeqCst) {
            Err(StorageViewError::Backend("injected failure".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Storage for MemStorage {
    async fn get(&self, key: &str) -> Result<Option<SecretBytes>, StorageViewError> {
        check_key(key)?;
        // A real backend suspends here; yielding lets concurrent requests interleave, so a
        // missing lock around read-modify-write shows up in tests.
        tokio::task::yield_now().await;
        Ok(self
            .map
            .lock()
            .unwrap()
            .get(key)
            .map(|v| SecretBytes::copy_from(v)))
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StorageViewError> {
        check_key(key)?;
        self.check_writable()?;
        self.single_writes.fetch_add(1, Ordering::SeqCst);
        self.map
            .lock()
            .unwrap()
            .insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageViewError> {
        check_key(key)?;
        self.check_writable()?;
        self.single_writes.fetch_add(1, Ordering::SeqCst);
        self.map.lock().unwrap().remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageViewError> {
        if !prefix.is_empty() {
            check_key(prefix.strip_suffix('/').unwrap_or(prefix))?;
        }
        let map = self.map.lock().unwrap();
        let mut out = BTreeSet::new();
        for key in map.keys().filter(|k| k.starts_with(prefix)) {
            let rest = &key[prefix.len()..];
            match rest.find('/') {
                Some(i) => out.insert(rest[..=i].to_owned()),
                None => out.insert(rest.to_owned()),
            };
        }
        Ok(out.into_iter().collect())
    }

    async fn transaction(&self, ops: Vec<ViewOp>) -> Result<(), StorageViewError> {
        for op in &ops {
            match op {
                ViewOp::Put { key, .. } | ViewOp::Delete { key } => check_key(key)?,
            }
        }
        self.check_writable()?;
        self.transactions.fetch_add(1, Ordering::SeqCst);
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
