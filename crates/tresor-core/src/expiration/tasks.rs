//! The expiration manager's two tasks, started at unseal and aborted at seal.
//!
//! - The loader walks `sys/expire/id/` in the background and queues every lease with an expiry.
//!   Unseal does not wait for it: the server serves while it runs, and it yields regularly so
//!   requests are not starved.
//! - The timer sleeps until the earliest queued expiry (or until woken by an earlier insert or
//!   a pause change), then expires due leases through a token bucket.
//!
//! Both hold only a `Weak<Core>` between steps, so a sealed or dropped core ends them.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::ExpirationManager;
use super::entry::{ID_PREFIX, LeaseEntry, token_of_lease_id};
use super::rate::TokenBucket;
use crate::core::{Active, Core};
use crate::token::entry::now_ns;

/// Leases loaded between two yields to the scheduler.
const LOAD_CHUNK: usize = 128;
/// Due leases taken from the queue at once.
const EXPIRE_BATCH: usize = 64;

/// The unsealed state, if the manager that started this task is still the live one.
fn live(weak: &Weak<Core>, manager: &Weak<ExpirationManager>) -> Option<(Arc<Core>, Arc<Active>)> {
    let manager = manager.upgrade()?;
    if manager.is_stopped() {
        return None;
    }
    let core = weak.upgrade()?;
    let active = core.active().ok()?;
    if !Arc::ptr_eq(&active.expiration, &manager) {
        return None;
    }
    Some((core, active))
}

impl Core {
    /// Starts the loader and the timer for a freshly unsealed state.
    pub(crate) fn start_expiration(&self, active: &Arc<Active>) {
        let manager = Arc::downgrade(&active.expiration);
        let loader = tokio::spawn(load_leases(self.weak(), manager.clone()));
        let timer = tokio::spawn(run_timer(self.weak(), manager));
        active.expiration.add_task(loader);
        active.expiration.add_task(timer);
    }
}

async fn load_leases(weak: Weak<Core>, manager: Weak<ExpirationManager>) {
    let gate = manager.upgrade().and_then(|m| m.options.load_gate.clone());
    if let Some(gate) = gate
        && let Ok(permit) = gate.acquire_owned().await
    {
        permit.forget();
    }
    let started = Instant::now();
    let mut folders = vec![String::new()];
    let mut loaded = 0u64;
    while let Some(folder) = folders.pop() {
        let Some((core, _)) = live(&weak, &manager) else {
            return;
        };
        let children = match core.barrier().list(&format!("{ID_PREFIX}{folder}")).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "loading leases failed; expiry of unloaded leases waits for the next unseal");
                return;
            }
        };
        drop(core);
        for chunk in children.chunks(LOAD_CHUNK) {
            let Some((core, active)) = live(&weak, &manager) else {
                return;
            };
            let mut leases = 0;
            for child in chunk {
                let id = format!("{folder}{child}");
                if id.ends_with('/') {
                    folders.push(id);
                    continue;
                }
                load_one(&core, &active, &id).await;
                leases += 1;
            }
            loaded += leases;
            active.expiration.add_loaded(leases);
            drop((core, active));
            tokio::task::yield_now().await;
        }
    }
    migrate_token_leases(&weak, &manager).await;
    if let Some(m) = manager.upgrade() {
        m.mark_loaded();
    }
    tracing::info!(
        leases = loaded,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "leases loaded"
    );
}

/// Queues one stored lease by its expiry; a lease whose revocation is pending is due now.
async fn load_one(core: &Core, active: &Active, lease_id: &str) {
    let queue = &active.expiration.queue;
    if let Some(hash) = token_of_lease_id(lease_id) {
        match active.tokens.read_uncached(hash).await {
            Ok(Some(token)) => {
                if let Some(e) = token.expire_ns {
                    queue.schedule(e, lease_id);
                }
            }
            // The token is gone: the record is stale; the timer cleans it up.
            Ok(None) => queue.schedule(now_ns(), lease_id),
            Err(e) => tracing::warn!(lease_id, error = %e, "could not load a token lease"),
        }
        return;
    }
    let raw = match core
        .barrier()
        .get(&super::entry::entry_path(lease_id))
        .await
    {
        Ok(Some(raw)) => raw,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(lease_id, error = %e, "could not load a lease");
            return;
        }
    };
    match serde_json::from_slice::<LeaseEntry>(raw.expose()) {
        Ok(record) if record.revocation.is_some() => {
            if record.revocation.as_ref().is_some_and(|p| p.attempts > 0) {
                active.expiration.mark_pending(lease_id);
            }
            queue.schedule(now_ns(), lease_id);
        }
        Ok(record) => {
            if let Some(e) = record.expire_ns {
                queue.schedule(e, lease_id);
            }
        }
        Err(e) => tracing::error!(lease_id, error = %e, "stored lease is malformed"),
    }
}

async fn run_timer(weak: Weak<Core>, manager: Weak<ExpirationManager>) {
    let rate = manager
        .upgrade()
        .map_or(super::DEFAULT_REVOCATIONS_PER_SECOND, |m| {
            m.options.revocations_per_second
        });
    let mut bucket = TokenBucket::new(rate, Instant::now());
    loop {
        let Some(m) = manager.upgrade() else {
            return;
        };
        if m.is_stopped() {
            return;
        }
        let queue = m.queue.clone();
        let paused = m.is_paused();
        drop(m);
        // Registered before looking at the queue, so a wake-up in between is not lost.
        let notified = queue.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let now = now_ns();
        let wait = if paused {
            None
        } else {
            match queue.next_due() {
                None => None,
                Some(t) if t > now => Some(Duration::from_nanos((t - now) as u64)),
                Some(_) => Some(Duration::ZERO),
            }
        };
        match wait {
            None => {
                notified.await;
                continue;
            }
            Some(d) if !d.is_zero() => {
                tokio::select! {
                    () = tokio::time::sleep(d) => {}
                    () = &mut notified => {}
                }
                continue;
            }
            Some(_) => {}
        }
        let due = queue.pop_due(now, EXPIRE_BATCH);
        let mut rest = due.into_iter();
        while let Some(id) = rest.next() {
            if let Err(wait) = bucket.try_take(Instant::now()) {
                tokio::time::sleep(wait).await;
                let _ = bucket.try_take(Instant::now());
            }
            let Some((core, active)) = live(&weak, &manager) else {
                return;
            };
            if active.expiration.is_paused() {
                // Put this one and the rest back: nothing is revoked while paused.
                let now = now_ns();
                queue.schedule(now, &id);
                for other in rest.by_ref() {
                    queue.schedule(now, &other);
                }
                break;
            }
            core.expire_lease(&active, &id).await;
        }
    }
}

/// Marks a store whose tokens all have lease records.
const MIGRATED_MARKER: &str = "sys/expire/tokens-migrated";

/// Stores written before tokens were leases hold tokens without a lease record, which the
/// timer would never see. Once per store, in the background like the rest of the load: give
/// each such token its record and queue its expiry.
async fn migrate_token_leases(weak: &Weak<Core>, manager: &Weak<ExpirationManager>) {
    let Some((core, _)) = live(weak, manager) else {
        return;
    };
    match core.barrier().get(MIGRATED_MARKER).await {
        Ok(None) => {}
        Ok(Some(_)) => return,
        Err(e) => {
            tracing::warn!(error = %e, "could not check the token lease migration");
            return;
        }
    }
    let hashes = match core.barrier().list(TOKEN_ID_PREFIX).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "could not list tokens for the lease migration");
            return;
        }
    };
    drop(core);
    let mut migrated = 0u64;
    for chunk in hashes.chunks(LOAD_CHUNK) {
        let Some((core, active)) = live(weak, manager) else {
            return;
        };
        for hash in chunk {
            let Ok(Some(token)) = active.tokens.read_uncached(hash).await else {
                continue;
            };
            if token.path == "auth/token/root" {
                continue;
            }
            let lease_id = super::entry::token_lease_id(&token.path, hash);
            let path = super::entry::entry_path(&lease_id);
            if matches!(core.barrier().get(&path).await, Ok(None)) {
                let record = LeaseEntry::for_token(lease_id.clone(), hash);
                let Ok(bytes) = serde_json::to_vec(&record) else {
                    continue;
                };
                if core.barrier().put(&path, &bytes).await.is_ok() {
                    migrated += 1;
                    if let Some(e) = token.expire_ns {
                        active.expiration.queue.schedule(e, &lease_id);
                    }
                }
            }
        }
        drop((core, active));
        tokio::task::yield_now().await;
    }
    if let Some((core, _)) = live(weak, manager)
        && core.barrier().put(MIGRATED_MARKER, b"1").await.is_ok()
        && migrated > 0
    {
        tracing::info!(
            tokens = migrated,
            "gave tokens from before leases their lease records"
        );
    }
}

const TOKEN_ID_PREFIX: &str = "sys/token/id/";
