//! The expiration manager: every managed lease and every token created through
//! `auth/token/create*` is a lease, persisted under the barrier, revoked when it expires.
//!
//! # Layout
//! - `entry`: [`LeaseEntry`] and the storage layout (`sys/expire/id/…`, the by-token index).
//! - `queue`: [`TimerQueue`], `(expire time, lease id)` in order; one timer task sleeps until
//!   the earliest. No periodic scan.
//! - `rate`: the token bucket that paces automatic revocations, and the retry backoff.
//! - `ops`: registration, lookup, list, renew, counters and the pause switch.
//! - `revoke`: revocation (one lease, by prefix, by token, on expiry, on mount disable), tidy.
//! - `tasks`: the background loader (streams leases into the queue after unseal, while the
//!   server already serves) and the timer task.
//!
//! # Behaviour worth knowing
//! - Unseal starts the loader and returns: nothing proportional to the number of leases
//!   happens before the server answers. A lease not loaded yet still works for lookup, renew
//!   and revoke, which always read storage.
//! - Automatic revocations (expiry, retries) run at most
//!   [`LeaseOptions::revocations_per_second`] per second: leases that expired while the server
//!   was down are revoked at that pace, not all at once.
//! - A failed revocation is never dropped: the lease is marked pending in storage, retried
//!   with exponential backoff ([`LeaseOptions::retry_base`] doubling up to
//!   [`LeaseOptions::retry_max`]), logged, counted, and shown by `sys/leases/lookup`.
//! - [`LeaseOptions::revocation_paused`] (config `lease_revocation_paused`, env
//!   `TRESOR_LEASE_REVOCATION_PAUSED`) stops every automatic revocation: expired tokens are
//!   still refused, but nothing is deleted until the pause is lifted. Explicit requests
//!   (`sys/leases/revoke*`, `auth/token/revoke*`) still act: an operator asked for them.

mod entry;
mod ops;
mod queue;
mod rate;
mod revoke;
mod tasks;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tresor_sdk::locks::KeyLocks;

pub use entry::{LeaseEntry, PendingRevocation, SecretLease, token_lease_id};
pub use ops::{LeaseLookup, LeaseOwner, RevokeOutcome};
pub use queue::TimerQueue;

/// Lock stripes for per-lease serialisation.
const STRIPES: usize = 64;

/// Revocations per second the timer performs at most (burst: as many at once).
pub const DEFAULT_REVOCATIONS_PER_SECOND: u32 = 200;

/// How the expiration manager paces itself; from the server configuration.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// Pause every automatic revocation (e.g. while restoring a backup).
    pub revocation_paused: bool,
    pub revocations_per_second: u32,
    /// Delay before the first retry of a failed revocation; doubled per further failure.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Test hook: the background loader waits for one permit before it starts, so a test can
    /// observe the server serving before any lease is loaded. `None` in production.
    #[doc(hidden)]
    pub load_gate: Option<Arc<tokio::sync::Semaphore>>,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        Self {
            revocation_paused: false,
            revocations_per_second: DEFAULT_REVOCATIONS_PER_SECOND,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(600),
            load_gate: None,
        }
    }
}

/// Counters for operators (and the metrics endpoint to come).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseStats {
    /// Entries in the timer queue (leases with an expiry, loaded so far).
    pub queued: usize,
    /// The background load after unseal has finished.
    pub loaded: bool,
    /// Leases loaded from storage by the background loader.
    pub loaded_count: u64,
    pub revoked_total: u64,
    /// Revocation attempts that failed (each retry counts).
    pub revocation_failures_total: u64,
    /// Leases whose revocation failed and waits for a retry.
    pub pending_revocations: u64,
    pub paused: bool,
}

/// The unsealed state of the expiration manager. Dropped (and its tasks stopped) on seal.
#[derive(Debug)]
pub struct ExpirationManager {
    pub(crate) queue: Arc<TimerQueue>,
    pub(crate) options: LeaseOptions,
    paused: AtomicBool,
    stopped: AtomicBool,
    loaded: AtomicBool,
    loaded_count: AtomicU64,
    revoked_total: AtomicU64,
    failures_total: AtomicU64,
    /// Leases whose revocation failed and waits for a retry (a set: the loader and a live
    /// failure may both report the same lease).
    pending: std::sync::Mutex<std::collections::HashSet<Box<str>>>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Serialises work on one lease (a timer retry racing an API revocation must not write
    /// back a record the other just deleted): striped by a hash of the lease id.
    locks: KeyLocks,
}

impl ExpirationManager {
    pub fn new(queue: Arc<TimerQueue>, options: LeaseOptions) -> Self {
        Self {
            queue,
            paused: AtomicBool::new(options.revocation_paused),
            options,
            stopped: AtomicBool::new(false),
            loaded: AtomicBool::new(false),
            loaded_count: AtomicU64::new(0),
            revoked_total: AtomicU64::new(0),
            failures_total: AtomicU64::new(0),
            pending: std::sync::Mutex::new(std::collections::HashSet::new()),
            tasks: std::sync::Mutex::new(Vec::new()),
            locks: KeyLocks::with_stripes(STRIPES),
        }
    }

    /// The lock that serialises work on `lease_id`.
    pub(crate) async fn lock(&self, lease_id: &str) -> tokio::sync::MutexGuard<'_, ()> {
        self.locks.lock(lease_id).await
    }

    pub fn stats(&self) -> LeaseStats {
        LeaseStats {
            queued: self.queue.len(),
            loaded: self.loaded.load(Ordering::Acquire),
            loaded_count: self.loaded_count.load(Ordering::Relaxed),
            revoked_total: self.revoked_total.load(Ordering::Relaxed),
            revocation_failures_total: self.failures_total.load(Ordering::Relaxed),
            pending_revocations: self.pending.lock().map_or(0, |p| p.len() as u64),
            paused: self.is_paused(),
        }
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Pauses or resumes automatic revocation at run time.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
        if paused {
            tracing::warn!("lease revocation paused: expired leases are kept until resumed");
        } else {
            tracing::info!("lease revocation resumed");
        }
        self.queue.changed.notify_one();
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    pub(crate) fn add_task(&self, handle: tokio::task::JoinHandle<()>) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push(handle);
        }
    }

    /// Stops the loader and the timer (sealing). In-flight revocations are cut at their next
    /// await; what they did not finish is still in storage and picked up at the next unseal.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.queue.changed.notify_waiters();
        self.queue.changed.notify_one();
        if let Ok(mut tasks) = self.tasks.lock() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
        self.queue.clear();
    }

    pub(crate) fn count_revoked(&self) {
        self.revoked_total.fetch_add(1, Ordering::Relaxed);
    }

    /// A failed revocation attempt; `lease` is marked pending until resolved.
    pub(crate) fn count_failure(&self, lease: Option<&str>) {
        self.failures_total.fetch_add(1, Ordering::Relaxed);
        if let Some(id) = lease {
            self.mark_pending(id);
        }
    }

    pub(crate) fn mark_pending(&self, lease_id: &str) {
        if let Ok(mut p) = self.pending.lock() {
            p.insert(lease_id.into());
        }
    }

    pub(crate) fn pending_resolved(&self, lease_id: &str) {
        if let Ok(mut p) = self.pending.lock() {
            p.remove(lease_id);
        }
    }

    pub(crate) fn mark_loaded(&self) {
        self.loaded.store(true, Ordering::Release);
    }

    pub(crate) fn add_loaded(&self, n: u64) {
        self.loaded_count.fetch_add(n, Ordering::Relaxed);
    }
}

impl Drop for ExpirationManager {
    fn drop(&mut self) {
        self.stop();
    }
}
