//! Walking the source and copying its entries: raw bytes, below the barrier, so neither side
//! is ever decrypted and no unseal key is needed.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::task::JoinSet;
use tresor_storage::{Backend, StorageError, TxnOp};

use super::lock;
use super::progress::Progress;

/// Keys never copied, as OpenBao: the migration's own lock, and `core/lock` (Vault's HA lock
/// key in backends that keep it among the data; Tresor's postgresql HA lock lives in its own
/// table and is never listed).
pub const SKIPPED: &[&str] = &[lock::KEY, "core/lock"];

/// How many entries one write carries: one commit (one fsync for the embedded store, one
/// round trip for PostgreSQL) per chunk instead of per key.
const CHUNK: usize = 64;

/// Every key of `source` that sorts at or after `start`, sorted, without [`SKIPPED`]. Lists up
/// to `max_parallel` folders at once; a folder whose keys all sort before `start` is not
/// listed at all. Once `stop` is set, returns what it has (the caller copies nothing then).
pub async fn list_keys(
    source: Arc<dyn Backend>,
    start: &str,
    max_parallel: usize,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<Vec<String>, StorageError> {
    let mut pending = vec![String::new()];
    let mut running = JoinSet::new();
    let mut keys = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        while running.len() < max_parallel
            && let Some(folder) = pending.pop()
        {
            let source = Arc::clone(&source);
            running.spawn(async move {
                let children = source.list(&folder).await;
                (folder, children)
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (folder, children) =
            joined.map_err(|e| StorageError::Io(format!("a listing task failed: {e}")))?;
        for child in children? {
            if child.is_empty() {
                continue;
            }
            let full = format!("{folder}{child}");
            if full.ends_with('/') {
                if may_hold_keys_from(&full, start) {
                    pending.push(full);
                }
            } else if full.as_str() >= start && !SKIPPED.contains(&full.as_str()) {
                keys.push(full);
                progress.listed(1);
            }
        }
    }
    keys.sort_unstable();
    Ok(keys)
}

/// Whether a key below `folder` (which ends in `/`) can sort at or after `start`. Every such
/// key starts with `folder`: unless `start` does too, they all compare with `start` as
/// `folder` does.
fn may_hold_keys_from(folder: &str, start: &str) -> bool {
    start.starts_with(folder) || folder >= start
}

/// Why the copy stopped part-way. The storage error's text is kept (it says what went wrong:
/// a lost connection, a full disk) with every key of the failed chunk replaced by `<key>`:
/// some backends name the key in their errors, and key paths are never printed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("reading the source failed: {0}")]
    Read(String),
    #[error("writing the destination failed: {0}")]
    Write(String),
    #[error("a copy task failed: {0}")]
    Task(String),
}

/// `error`'s text without any of `keys` (longest first, so a key that extends another is
/// replaced whole).
fn scrubbed(error: &StorageError, keys: &[String]) -> String {
    let mut text = error.to_string();
    let mut keys: Vec<&String> = keys.iter().collect();
    keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
    for key in keys {
        text = text.replace(key.as_str(), "<key>");
    }
    text
}

/// Copies `keys` from `source` to `destination` with `max_parallel` workers, each taking the
/// next chunk of keys in order. Stops (after the chunks in flight) at the first error or when
/// `stop` is set. A key gone from the source since it was listed is skipped.
pub async fn copy(
    source: Arc<dyn Backend>,
    destination: Arc<dyn Backend>,
    keys: Arc<Vec<String>>,
    max_parallel: usize,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
) -> Result<(), CopyError> {
    let next = Arc::new(AtomicUsize::new(0));
    let failure: Arc<Mutex<Option<CopyError>>> = Arc::new(Mutex::new(None));
    let mut workers = JoinSet::new();
    for _ in 0..max_parallel.min(keys.len().div_ceil(CHUNK)).max(1) {
        let (source, destination) = (Arc::clone(&source), Arc::clone(&destination));
        let (keys, next, progress) = (Arc::clone(&keys), Arc::clone(&next), Arc::clone(&progress));
        let (stop, failure) = (Arc::clone(&stop), Arc::clone(&failure));
        workers.spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let first = next.fetch_add(1, Ordering::SeqCst).saturating_mul(CHUNK);
                let Some(chunk) = keys.get(first..keys.len().min(first.saturating_add(CHUNK)))
                else {
                    break;
                };
                if chunk.is_empty() {
                    break;
                }
                if let Err(e) = copy_chunk(&*source, &*destination, chunk, &progress).await {
                    stop.store(true, Ordering::SeqCst);
                    failure
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get_or_insert(e);
                    break;
                }
            }
        });
    }
    while let Some(joined) = workers.join_next().await {
        if let Err(e) = joined {
            stop.store(true, Ordering::SeqCst);
            failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert(CopyError::Task(e.to_string()));
        }
    }
    let failure = failure
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    failure.map_or(Ok(()), Err)
}

async fn copy_chunk(
    source: &dyn Backend,
    destination: &dyn Backend,
    chunk: &[String],
    progress: &Progress,
) -> Result<(), CopyError> {
    let mut ops = Vec::with_capacity(chunk.len());
    let mut bytes = 0u64;
    for key in chunk {
        let value = source
            .get(key)
            .await
            .map_err(|e| CopyError::Read(scrubbed(&e, chunk)))?;
        if let Some(value) = value {
            bytes = bytes.saturating_add(value.len() as u64);
            ops.push(TxnOp::Put {
                key: key.clone(),
                value,
            });
        }
    }
    let (written, vanished) = (ops.len() as u64, (chunk.len() - ops.len()) as u64);
    destination
        .transaction(ops)
        .await
        .map_err(|e| CopyError::Write(scrubbed(&e, chunk)))?;
    progress.copied(written, bytes, vanished);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use tresor_storage::MemoryBackend;

    use super::*;

    async fn store(keys: &[&str]) -> Arc<dyn Backend> {
        let backend = MemoryBackend::new();
        for key in keys {
            backend
                .put(key, format!("value of {key}").into_bytes())
                .await
                .unwrap();
        }
        Arc::new(backend)
    }

    const KEYS: &[&str] = &[
        "core/seal-config",
        "core/keyring",
        "core/migration",
        "core/lock",
        "a-b",
        "a/x",
        "a/y/z",
        "a0",
        "logical/1234/data/one",
        "logical/1234/data/two",
        "logical/5678/x",
        "sys/token/id/abc",
    ];

    #[tokio::test]
    async fn every_key_but_the_locks_is_listed_in_order() {
        let source = store(KEYS).await;
        let progress = Progress::silent();
        let keys = list_keys(source, "", 3, &progress, &AtomicBool::new(false))
            .await
            .unwrap();
        let mut expected: Vec<&str> = KEYS
            .iter()
            .copied()
            .filter(|k| !SKIPPED.contains(k))
            .collect();
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(progress.snapshot().listed, expected.len() as u64);
    }

    #[tokio::test]
    async fn start_keeps_the_keys_at_or_after_it() {
        let source = store(KEYS).await;
        for start in ["logical/1234/data/t", "logical/", "a/y", "b", "zzz", "a/x"] {
            let keys = list_keys(
                Arc::clone(&source),
                start,
                2,
                &Progress::silent(),
                &AtomicBool::new(false),
            )
            .await
            .unwrap();
            let mut expected: Vec<&str> = KEYS
                .iter()
                .copied()
                .filter(|k| !SKIPPED.contains(k) && *k >= start)
                .collect();
            expected.sort_unstable();
            assert_eq!(keys, expected, "start {start:?}");
        }
    }

    #[test]
    fn errors_never_name_a_key_of_the_chunk() {
        let chunk = vec!["logical/ab".to_owned(), "logical/abc/secret".to_owned()];
        let error = StorageError::Io(
            "put \"logical/abc/secret\": value too large; also logical/ab".to_owned(),
        );
        assert_eq!(
            scrubbed(&error, &chunk),
            "storage I/O failed: put \"<key>\": value too large; also <key>"
        );
    }

    #[test]
    fn a_folder_is_skipped_only_when_all_its_keys_sort_before_start() {
        assert!(may_hold_keys_from("logical/", "logical/1234"));
        assert!(may_hold_keys_from("logical/", ""));
        assert!(may_hold_keys_from("sys/", "logical/"));
        assert!(!may_hold_keys_from("core/", "logical/"));
        assert!(may_hold_keys_from("a/", "a"));
        assert!(!may_hold_keys_from("a/", "a0"));
    }

    #[tokio::test]
    async fn copy_writes_every_listed_key_with_its_bytes() {
        let many: Vec<String> = (0..300).map(|i| format!("logical/m/{i:04}")).collect();
        let names: Vec<&str> = KEYS
            .iter()
            .copied()
            .chain(many.iter().map(String::as_str))
            .collect();
        let source = store(&names).await;
        let destination: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let progress = Arc::new(Progress::silent());
        let keys = Arc::new(
            list_keys(
                Arc::clone(&source),
                "",
                4,
                &progress,
                &AtomicBool::new(false),
            )
            .await
            .unwrap(),
        );
        copy(
            Arc::clone(&source),
            Arc::clone(&destination),
            Arc::clone(&keys),
            4,
            Arc::clone(&progress),
            Arc::new(AtomicBool::new(false)),
        )
        .await
        .unwrap();
        let snapshot = progress.snapshot();
        assert_eq!(snapshot.copied, keys.len() as u64);
        let mut bytes = 0;
        for key in keys.iter() {
            let value = destination.get(key).await.unwrap().unwrap();
            assert_eq!(value, format!("value of {key}").into_bytes());
            bytes += value.len() as u64;
        }
        assert_eq!(snapshot.bytes, bytes);
        for skipped in SKIPPED {
            assert_eq!(destination.get(skipped).await.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn a_set_stop_flag_copies_nothing_more() {
        let source = store(KEYS).await;
        let destination: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let keys = Arc::new(
            list_keys(
                Arc::clone(&source),
                "",
                1,
                &Progress::silent(),
                &AtomicBool::new(false),
            )
            .await
            .unwrap(),
        );
        let progress = Arc::new(Progress::silent());
        copy(
            source,
            Arc::clone(&destination),
            keys,
            2,
            Arc::clone(&progress),
            Arc::new(AtomicBool::new(true)),
        )
        .await
        .unwrap();
        assert_eq!(progress.snapshot().copied, 0);
        assert!(destination.list("").await.unwrap().is_empty());
        let stopped = list_keys(
            store(KEYS).await,
            "",
            1,
            &Progress::silent(),
            &AtomicBool::new(true),
        )
        .await
        .unwrap();
        assert!(stopped.is_empty());
    }

    #[tokio::test]
    async fn a_failed_write_stops_the_copy_with_the_reason() {
        let source = store(KEYS).await;
        // A closed embedded store refuses every write with `Closed`.
        let dir = tempfile::tempdir().unwrap();
        let destination = Arc::new(
            tresor_storage::EmbeddedBackend::open(dir.path().join("closed.redb")).unwrap(),
        );
        destination.close().await.unwrap();
        let keys = Arc::new(
            list_keys(
                Arc::clone(&source),
                "",
                1,
                &Progress::silent(),
                &AtomicBool::new(false),
            )
            .await
            .unwrap(),
        );
        let err = copy(
            source,
            destination,
            keys,
            2,
            Arc::new(Progress::silent()),
            Arc::new(AtomicBool::new(false)),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, CopyError::Write(text) if text == "storage is closed"),
            "{err:?}"
        );
    }
}
