//! In-memory backend: for `--dev` and tests. Nothing survives the process.

use std::collections::BTreeMap;
use std::sync::RwLock;

use async_trait::async_trait;

use crate::list::immediate_children;
use crate::{Backend, StorageError, TxnOp, validate_key};

#[derive(Debug, Default)]
pub struct MemoryBackend {
    entries: RwLock<BTreeMap<String, Vec<u8>>>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    fn poisoned() -> StorageError {
        StorageError::Io("in-memory store lock poisoned".to_owned())
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        validate_key(key)?;
        let entries = self.entries.read().map_err(|_| Self::poisoned())?;
        Ok(entries.get(key).cloned())
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        validate_key(key)?;
        let mut entries = self.entries.write().map_err(|_| Self::poisoned())?;
        entries.insert(key.to_owned(), value);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        validate_key(key)?;
        let mut entries = self.entries.write().map_err(|_| Self::poisoned())?;
        entries.remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let entries = self.entries.read().map_err(|_| Self::poisoned())?;
        let keys = entries
            .range(prefix.to_owned()..)
            .map(|(k, _)| k.as_str())
            .take_while(|k| k.starts_with(prefix));
        Ok(immediate_children(prefix, keys))
    }

    async fn transaction(&self, ops: Vec<TxnOp>) -> Result<(), StorageError> {
        // Validate everything first so a bad op leaves the store untouched.
        for op in &ops {
            match op {
                TxnOp::Put { key, .. } | TxnOp::Delete { key } => validate_key(key)?,
            }
        }
        let mut entries = self.entries.write().map_err(|_| Self::poisoned())?;
        for op in ops {
            match op {
                TxnOp::Put { key, value } => {
                    entries.insert(key, value);
                }
                TxnOp::Delete { key } => {
                    entries.remove(&key);
                }
            }
        }
        Ok(())
    }

    fn storage_type(&self) -> &'static str {
        "inmem"
    }
}
