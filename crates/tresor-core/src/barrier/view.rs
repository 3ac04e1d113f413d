//! A barrier view: the [`Storage`] an engine gets, confined to its mount's prefix.
//!
//! Keys are relative to the prefix. The view refuses any key that could be read as leaving
//! it (`..`, empty segments, a leading `/`) rather than normalising it: a normalising rule is
//! one more thing every backend would have to agree on, a refusal is not.

use std::sync::Arc;

use async_trait::async_trait;
use tresor_sdk::secret::SecretBytes;
use tresor_sdk::storage::{Storage, StorageViewError, ViewOp};
use tresor_storage::StorageError;

use super::{Barrier, BarrierError, BarrierOp};

/// Plaintext storage under `prefix`, encrypted by the barrier below.
#[derive(Debug, Clone)]
pub struct BarrierView {
    barrier: Arc<Barrier>,
    prefix: String,
}

impl BarrierView {
    /// A view of everything under `prefix`; a missing trailing `/` is added, so the view over
    /// `logical/abc` cannot see `logical/abcd/...`.
    pub fn new(barrier: Arc<Barrier>, prefix: impl Into<String>) -> Self {
        let mut prefix = prefix.into();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Self { barrier, prefix }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The full barrier path of a key, after checking it is a plain relative key.
    pub(crate) fn path(&self, key: &str) -> Result<String, StorageViewError> {
        check_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    /// Turns a barrier error into the engine-facing one, with paths made relative again.
    fn map_err(&self, err: BarrierError, key: &str) -> StorageViewError {
        let relative = |path: &str| path.strip_prefix(&self.prefix).unwrap_or(key).to_owned();
        match err {
            BarrierError::Sealed => StorageViewError::Sealed,
            BarrierError::Integrity { path } => StorageViewError::Integrity(relative(&path)),
            BarrierError::UnknownTerm(_) | BarrierError::Malformed => {
                StorageViewError::Integrity(key.to_owned())
            }
            BarrierError::ReservedPath(path)
            | BarrierError::Storage(StorageError::InvalidKey(path)) => {
                StorageViewError::InvalidKey(relative(&path))
            }
            other => StorageViewError::Backend(other.to_string()),
        }
    }
}

/// A key is one or more non-empty segments, none of them `.` or `..`, without NUL.
fn check_key(key: &str) -> Result<(), StorageViewError> {
    // Bytes, not `char`s: every storage access checks its key, and '/' and NUL are ASCII.
    let bytes = key.as_bytes();
    let valid = !bytes.is_empty()
        && !bytes.contains(&0)
        && bytes
            .split(|b| *b == b'/')
            .all(|segment| !matches!(segment, b"" | b"." | b".."));
    if valid {
        Ok(())
    } else {
        Err(StorageViewError::InvalidKey(key.to_owned()))
    }
}

/// A list prefix is empty (the whole view) or a key, optionally ending in `/`.
fn check_list_prefix(prefix: &str) -> Result<(), StorageViewError> {
    match prefix.strip_suffix('/').unwrap_or(prefix) {
        "" if prefix.is_empty() => Ok(()),
        rest => check_key(rest).map_err(|_| StorageViewError::InvalidKey(prefix.to_owned())),
    }
}

#[async_trait]
impl Storage for BarrierView {
    async fn get(&self, key: &str) -> Result<Option<SecretBytes>, StorageViewError> {
        let path = self.path(key)?;
        self.barrier
            .get(&path)
            .await
            .map_err(|e| self.map_err(e, key))
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StorageViewError> {
        let path = self.path(key)?;
        self.barrier
            .put(&path, value)
            .await
            .map_err(|e| self.map_err(e, key))
    }

    async fn delete(&self, key: &str) -> Result<(), StorageViewError> {
        let path = self.path(key)?;
        self.barrier
            .delete(&path)
            .await
            .map_err(|e| self.map_err(e, key))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageViewError> {
        check_list_prefix(prefix)?;
        let path = format!("{}{prefix}", self.prefix);
        self.barrier
            .list(&path)
            .await
            .map_err(|e| self.map_err(e, prefix))
    }

    async fn transaction(&self, ops: Vec<ViewOp>) -> Result<(), StorageViewError> {
        let mut barrier_ops = Vec::with_capacity(ops.len());
        for op in ops {
            barrier_ops.push(match op {
                ViewOp::Put { key, value } => BarrierOp::Put {
                    path: self.path(&key)?,
                    value,
                },
                ViewOp::Delete { key } => BarrierOp::Delete {
                    path: self.path(&key)?,
                },
            });
        }
        self.barrier
            .transaction(barrier_ops)
            .await
            .map_err(|e| self.map_err(e, ""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tresor_storage::{Backend, MemoryBackend};

    async fn view(prefix: &str) -> (Arc<MemoryBackend>, Arc<Barrier>, BarrierView) {
        let backend = Arc::new(MemoryBackend::new());
        let barrier = Arc::new(Barrier::new(backend.clone()));
        let root = SecretBytes::copy_from(&[9u8; 32]);
        barrier.initialize(&root).await.unwrap();
        barrier.unseal(&root).await.unwrap();
        let view = BarrierView::new(barrier.clone(), prefix);
        (backend, barrier, view)
    }

    #[tokio::test]
    async fn keys_are_relative_to_the_prefix() {
        let (backend, barrier, view) = view("logical/abc").await;
        assert_eq!(view.prefix(), "logical/abc/");
        view.put("foo/bar", b"v").await.unwrap();
        assert!(backend.get("logical/abc/foo/bar").await.unwrap().is_some());
        assert_eq!(
            barrier
                .get("logical/abc/foo/bar")
                .await
                .unwrap()
                .unwrap()
                .expose(),
            b"v"
        );
        assert_eq!(view.get("foo/bar").await.unwrap().unwrap().expose(), b"v");
        assert_eq!(view.list("").await.unwrap(), vec!["foo/"]);
        assert_eq!(view.list("foo/").await.unwrap(), vec!["bar"]);
        view.delete("foo/bar").await.unwrap();
        assert!(view.get("foo/bar").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_view_cannot_reach_outside_its_prefix() {
        let (_backend, barrier, view) = view("logical/abc/").await;
        barrier
            .put("logical/abcd/secret", b"neighbour")
            .await
            .unwrap();
        barrier
            .put("logical/other/secret", b"other mount")
            .await
            .unwrap();
        barrier.put("core/cluster", b"core").await.unwrap();

        assert_eq!(view.list("").await.unwrap(), Vec::<String>::new());
        for key in [
            "../other/secret",
            "../abcd/secret",
            "/core/cluster",
            "a/../../other/secret",
        ] {
            assert!(
                matches!(view.get(key).await, Err(StorageViewError::InvalidKey(_))),
                "{key}"
            );
        }
        // A key that merely starts like the neighbour's prefix stays inside this view.
        assert!(view.get("d/secret").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn malformed_keys_are_rejected_everywhere() {
        let (backend, _barrier, view) = view("logical/abc/").await;
        let bad = ["", "/a", "a/", "a//b", "..", "a/..", "./a", "a/./b", "a\0b"];
        for key in bad {
            let invalid =
                |r: Result<(), StorageViewError>| matches!(r, Err(StorageViewError::InvalidKey(_)));
            assert!(invalid(view.get(key).await.map(|_| ())), "get {key:?}");
            assert!(invalid(view.put(key, b"x").await), "put {key:?}");
            assert!(invalid(view.delete(key).await), "delete {key:?}");
            let op = ViewOp::Put {
                key: key.to_owned(),
                value: SecretBytes::copy_from(b"x"),
            };
            assert!(invalid(view.transaction(vec![op]).await), "txn {key:?}");
        }
        for prefix in ["/", "//", "../", "a//", "/a/"] {
            assert!(
                matches!(
                    view.list(prefix).await,
                    Err(StorageViewError::InvalidKey(_))
                ),
                "list {prefix:?}"
            );
        }
        // Nothing was written by any refused call.
        assert_eq!(
            backend.list("logical/").await.unwrap(),
            Vec::<String>::new()
        );
    }

    #[tokio::test]
    async fn transactions_are_confined_and_atomic() {
        let (backend, _barrier, view) = view("logical/abc/").await;
        view.put("old", b"1").await.unwrap();
        let ops = vec![
            ViewOp::Put {
                key: "new".into(),
                value: SecretBytes::copy_from(b"2"),
            },
            ViewOp::Delete { key: "old".into() },
            ViewOp::Put {
                key: "../escape".into(),
                value: SecretBytes::copy_from(b"3"),
            },
        ];
        assert!(matches!(
            view.transaction(ops).await,
            Err(StorageViewError::InvalidKey(_))
        ));
        assert!(view.get("new").await.unwrap().is_none());
        assert!(view.get("old").await.unwrap().is_some());

        let ops = vec![
            ViewOp::Put {
                key: "new".into(),
                value: SecretBytes::copy_from(b"2"),
            },
            ViewOp::Delete { key: "old".into() },
        ];
        view.transaction(ops).await.unwrap();
        assert_eq!(view.list("").await.unwrap(), vec!["new"]);
        assert!(backend.get("logical/abc/new").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn errors_are_mapped_for_engines() {
        let (backend, barrier, view) = view("logical/abc/").await;
        view.put("k", b"v").await.unwrap();
        let mut raw = backend.get("logical/abc/k").await.unwrap().unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        backend.put("logical/abc/k", raw).await.unwrap();
        match view.get("k").await {
            Err(StorageViewError::Integrity(key)) => assert_eq!(key, "k"),
            other => panic!("expected integrity error, got {other:?}"),
        }
        barrier.seal();
        assert!(matches!(view.get("k").await, Err(StorageViewError::Sealed)));
        assert!(matches!(
            view.put("k", b"v").await,
            Err(StorageViewError::Sealed)
        ));
        assert!(matches!(view.list("").await, Err(StorageViewError::Sealed)));
    }

    #[tokio::test]
    async fn a_root_view_cannot_touch_the_keyring() {
        let (_backend, _barrier, view) = view("").await;
        assert_eq!(view.prefix(), "");
        assert!(matches!(
            view.get("core/keyring").await,
            Err(StorageViewError::InvalidKey(_))
        ));
        assert!(matches!(
            view.put("core/keyring", b"x").await,
            Err(StorageViewError::InvalidKey(_))
        ));
    }
}
