//! The default store: one redb file, written through a single group-committing writer thread.
//!
//! # Layout
//! - Writes (`put`, `delete`, `transaction`) become a [`WriteRequest`] sent to one dedicated
//!   writer thread. An fsync costs milliseconds, so instead of one commit per write the writer
//!   takes every request already queued (up to [`MAX_BATCH`]), applies them in one redb write
//!   transaction and commits once: many concurrent writers share one fsync. A request is
//!   acknowledged only after that commit returned, so an acked write is on disk.
//! - Reads run on the caller's thread in their own read transaction: redb read transactions are
//!   cheap snapshots that never wait for the writer, so routing them through the writer would
//!   only add latency.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;

use async_trait::async_trait;
use redb::{Database, Durability, ReadableDatabase, TableDefinition, WriteTransaction};
use tokio::sync::oneshot;

use crate::list::immediate_children;
use crate::{Backend, StorageError, TxnOp, validate_key};

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("entries");

/// Most requests folded into one commit, so one huge burst cannot delay its first ack forever.
const MAX_BATCH: usize = 1024;

/// Why a batch could not be committed as it stands.
enum BatchFailure {
    /// One request's ops failed to apply; the rest of the batch is fine without it.
    Request { index: usize, error: StorageError },
    /// The transaction itself failed: every request of the batch gets this message.
    All(String),
}

/// All of one caller's ops, applied atomically, and where to report the outcome.
struct WriteRequest {
    ops: Vec<TxnOp>,
    ack: oneshot::Sender<Result<(), StorageError>>,
}

pub struct EmbeddedBackend {
    path: String,
    /// `None` once closed. Readers hold the read lock for the whole (synchronous) read so that
    /// `close` can wait for them and really release the file before it returns.
    db: RwLock<Option<Arc<Database>>>,
    /// `None` once closed; dropping it is what tells the writer to finish and exit.
    requests: RwLock<Option<Sender<WriteRequest>>>,
    /// Resolves when the writer thread exits, so `close` can wait without blocking the runtime.
    writer_done: Mutex<Option<oneshot::Receiver<()>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    commits: Arc<AtomicU64>,
}

impl std::fmt::Debug for EmbeddedBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBackend")
            .field("path", &self.path)
            .field("commits", &self.commit_count())
            .finish_non_exhaustive()
    }
}

/// How the store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// The most memory, in bytes, the page cache may take in the process (redb's cache is given
    /// [`redb_cache_budget`] of it). Pages beyond it are read from the file again (the OS page
    /// cache usually still has them), so this bounds the store's share of RSS, not what it can
    /// hold.
    pub cache_size: usize,
}

/// How much resident memory each byte of redb's page-cache budget costs: redb counts a cached
/// 4 KiB page as 4,096 bytes, but each is an `Arc<[u8]>` allocation of 4,112 bytes, which the
/// allocator serves from its 5,120-byte size class, plus the cache's index and eviction queue.
/// Measured: RSS after loading 300,000 secrets was 380 MiB with a 256 MiB budget and 205 MiB
/// with 128 MiB, 1.37 MiB per MiB; 7/5 leaves a margin.
const RESIDENT_PER_CACHED_BYTE: (usize, usize) = (7, 5);

/// The budget handed to redb for a `cache_size` of memory: `cache_size` ÷ 1.4 (see
/// `RESIDENT_PER_CACHED_BYTE`), so the cache's resident memory, not its payload, stays within
/// what the operator configured.
pub fn redb_cache_budget(cache_size: usize) -> usize {
    let (resident, counted) = RESIDENT_PER_CACHED_BYTE;
    cache_size / resident * counted
}

impl EmbeddedOptions {
    /// 256 MiB: redb's own default of 1 GiB lets a store of a million secrets hold over a GB
    /// of cache that a restart shows it never needed.
    pub const DEFAULT_CACHE_SIZE: usize = 256 << 20;
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            cache_size: Self::DEFAULT_CACHE_SIZE,
        }
    }
}

impl EmbeddedBackend {
    /// Opens the database file at `path` with the default options, creating the file (not its
    /// directory) if missing.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        Self::open_with(path, EmbeddedOptions::default())
    }

    /// Opens the database file at `path`, creating the file (not its directory) if missing.
    pub fn open_with(
        path: impl AsRef<Path>,
        options: EmbeddedOptions,
    ) -> Result<Self, StorageError> {
        let path = path.as_ref();
        let display = path.display().to_string();
        let open_error = |reason: String| StorageError::Open {
            path: display.clone(),
            reason,
        };
        // redb would say only "No such file or directory"; name the missing directory instead.
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
            && !parent.is_dir()
        {
            return Err(open_error(format!(
                "parent directory {} does not exist",
                parent.display()
            )));
        }
        let db = Database::builder()
            .set_cache_size(redb_cache_budget(options.cache_size))
            .create(path)
            .map_err(|e| match e {
                // redb holds an exclusive lock on the file while it is open.
                redb::DatabaseError::DatabaseAlreadyOpen => StorageError::InUse {
                    path: display.clone(),
                },
                e => open_error(e.to_string()),
            })?;
        // Create the table up front so reads never have to handle a missing table.
        let txn = db
            .begin_write()
            .map_err(|e| open_error(format!("begin write transaction: {e}")))?;
        txn.open_table(TABLE)
            .map_err(|e| open_error(format!("create table: {e}")))?;
        txn.commit()
            .map_err(|e| open_error(format!("commit table creation: {e}")))?;

        let db = Arc::new(db);
        let commits = Arc::new(AtomicU64::new(0));
        let (requests, receiver) = mpsc::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let writer = {
            let db = Arc::clone(&db);
            let commits = Arc::clone(&commits);
            std::thread::Builder::new()
                .name("tresor-storage-writer".to_owned())
                .spawn(move || {
                    run_writer(&db, &receiver, &commits);
                    // The receiver may be gone (backend dropped without close); nothing to tell.
                    let _ = done_tx.send(());
                })
                .map_err(|e| open_error(format!("start writer thread: {e}")))?
        };
        Ok(Self {
            path: display,
            db: RwLock::new(Some(db)),
            requests: RwLock::new(Some(requests)),
            writer_done: Mutex::new(Some(done_rx)),
            writer: Mutex::new(Some(writer)),
            commits,
        })
    }

    /// How many write transactions have been committed (fsynced) since open. Fewer commits than
    /// writes means group commit batched them.
    pub fn commit_count(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Bytes redb's page cache holds right now, as redb counts them (never more than
    /// [`redb_cache_budget`] of the configured `cache_size`); 0 once closed, and always 0 unless this crate's `cache-metrics` feature
    /// is on (its tests turn it on).
    pub fn cache_used_bytes(&self) -> usize {
        match self.db.read() {
            Ok(db) => db.as_ref().map_or(0, |db| db.cache_stats().used_bytes()),
            Err(_) => 0,
        }
    }

    fn poisoned<T>(_: PoisonError<T>) -> StorageError {
        StorageError::Io("embedded store lock poisoned".to_owned())
    }

    /// Runs `read` against a fresh snapshot of the table.
    fn read<T>(
        &self,
        what: &str,
        read: impl FnOnce(&redb::ReadOnlyTable<&str, &[u8]>) -> Result<T, redb::StorageError>,
    ) -> Result<T, StorageError> {
        let db = self.db.read().map_err(Self::poisoned)?;
        let db = db.as_ref().ok_or(StorageError::Closed)?;
        let txn = db
            .begin_read()
            .map_err(|e| StorageError::Io(format!("{what}: begin read transaction: {e}")))?;
        let table = txn
            .open_table(TABLE)
            .map_err(|e| StorageError::Io(format!("{what}: open table: {e}")))?;
        read(&table).map_err(|e| StorageError::Io(format!("{what}: {e}")))
    }

    /// Hands `ops` to the writer and waits until they are committed.
    async fn write(&self, ops: Vec<TxnOp>) -> Result<(), StorageError> {
        // Validate here so a bad key fails before it can touch a shared batch.
        for op in &ops {
            validate_key(op_key(op))?;
        }
        if ops.is_empty() {
            return Ok(());
        }
        let (ack, acked) = oneshot::channel();
        {
            let requests = self.requests.read().map_err(Self::poisoned)?;
            let requests = requests.as_ref().ok_or(StorageError::Closed)?;
            requests
                .send(WriteRequest { ops, ack })
                .map_err(|_| StorageError::Closed)?;
        }
        acked.await.map_err(|_| {
            StorageError::Io("embedded writer stopped before acknowledging the write".to_owned())
        })?
    }

    /// Stops the writer (after it drained its queue) and joins it. Safe to call twice.
    fn stop_writer(&self) -> Option<oneshot::Receiver<()>> {
        // Dropping the only sender makes the writer's `recv` fail once the queue is empty.
        drop(
            self.requests
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        self.writer_done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn join_writer(&self) {
        let handle = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle
            && handle.join().is_err()
        {
            tracing::error!(path = %self.path, "embedded storage writer thread panicked");
        }
    }
}

impl Drop for EmbeddedBackend {
    fn drop(&mut self) {
        // Joining here blocks only while the writer commits what is already queued.
        drop(self.stop_writer());
        self.join_writer();
    }
}

fn op_key(op: &TxnOp) -> &str {
    match op {
        TxnOp::Put { key, .. } | TxnOp::Delete { key } => key,
    }
}

fn run_writer(db: &Database, requests: &Receiver<WriteRequest>, commits: &AtomicU64) {
    while let Ok(first) = requests.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        commit_batch(db, batch, commits);
    }
}

/// Commits `batch` in one transaction and acks every request.
///
/// Per-request atomicity: redb refuses an ephemeral savepoint once the transaction has opened a
/// table, so savepoints between requests are not available. Instead, when one request's ops fail
/// to apply, the whole transaction is dropped (aborted) and the batch is replayed without that
/// request. Keys are validated before requests are queued, so this only happens for a value
/// over redb's 3 GiB limit or an I/O error (which then fails the replay's transaction for all):
/// a rare path, replayed at most once per request.
fn commit_batch(db: &Database, mut batch: Vec<WriteRequest>, commits: &AtomicU64) {
    while !batch.is_empty() {
        match apply_batch(db, &batch) {
            Ok(txn) => {
                let result = txn.commit().map_err(|e| format!("commit: {e}"));
                if result.is_ok() {
                    commits.fetch_add(1, Ordering::Relaxed);
                }
                for request in batch {
                    // A caller that stopped waiting no longer needs the outcome.
                    let _ = request.ack.send(result.clone().map_err(StorageError::Io));
                }
                return;
            }
            Err(BatchFailure::Request { index, error }) => {
                if index < batch.len() {
                    let _ = batch.remove(index).ack.send(Err(error));
                } else {
                    // Cannot happen (the index comes from `batch`); failing all beats looping.
                    fail_all(batch, "internal error: failed request not in batch");
                    return;
                }
            }
            Err(BatchFailure::All(message)) => {
                fail_all(batch, &message);
                return;
            }
        }
    }
}

fn fail_all(batch: Vec<WriteRequest>, message: &str) {
    for request in batch {
        let _ = request.ack.send(Err(StorageError::Io(message.to_owned())));
    }
}

/// Applies every request of `batch` to a new write transaction, left uncommitted.
fn apply_batch(db: &Database, batch: &[WriteRequest]) -> Result<WriteTransaction, BatchFailure> {
    let mut txn = db
        .begin_write()
        .map_err(|e| BatchFailure::All(format!("begin write transaction: {e}")))?;
    // The default already, but the ack promise depends on it, so say it.
    txn.set_durability(Durability::Immediate)
        .map_err(|e| BatchFailure::All(format!("set durability: {e}")))?;
    {
        let mut table = txn
            .open_table(TABLE)
            .map_err(|e| BatchFailure::All(format!("open table: {e}")))?;
        for (index, request) in batch.iter().enumerate() {
            for op in &request.ops {
                let applied = match op {
                    TxnOp::Put { key, value } => table.insert(key.as_str(), value.as_slice()),
                    TxnOp::Delete { key } => table.remove(key.as_str()),
                };
                if let Err(e) = applied {
                    let what = match op {
                        TxnOp::Put { .. } => "put",
                        TxnOp::Delete { .. } => "delete",
                    };
                    return Err(BatchFailure::Request {
                        index,
                        error: StorageError::Io(format!("{what} {:?}: {e}", op_key(op))),
                    });
                }
            }
        }
    }
    Ok(txn)
}

#[async_trait]
impl Backend for EmbeddedBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        validate_key(key)?;
        self.read("get", |table| {
            Ok(table.get(key)?.map(|value| value.value().to_vec()))
        })
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        self.write(vec![TxnOp::Put {
            key: key.to_owned(),
            value,
        }])
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.write(vec![TxnOp::Delete {
            key: key.to_owned(),
        }])
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let keys = self.read("list", |table| {
            let mut keys = Vec::new();
            for entry in table.range::<&str>(prefix..)? {
                let (key, _) = entry?;
                let key = key.value();
                if !key.starts_with(prefix) {
                    break;
                }
                keys.push(key.to_owned());
            }
            Ok(keys)
        })?;
        Ok(immediate_children(prefix, keys.iter().map(String::as_str)))
    }

    async fn transaction(&self, ops: Vec<TxnOp>) -> Result<(), StorageError> {
        self.write(ops).await
    }

    fn storage_type(&self) -> &'static str {
        "embedded"
    }

    async fn close(&self) -> Result<(), StorageError> {
        if let Some(done) = self.stop_writer() {
            // Err only means the thread ended without signalling (it panicked): join reports it.
            let _ = done.await;
        }
        self.join_writer();
        // Waits for in-flight reads (they hold the read lock), so the file is released on return.
        let db = self.db.write().map_err(Self::poisoned)?.take();
        if let Some(db) = db
            && let Ok(db) = Arc::try_unwrap(db)
        {
            db.close()
                .map_err(|e| StorageError::Io(format!("close database: {e}")))?;
        }
        Ok(())
    }
}
