//! The timer queue: every lease that will expire, ordered by expiry time.
//!
//! One ordered set of `(expire time, lease id)`; the timer task sleeps until the first entry is
//! due. Entries may be stale (a lease renewed or revoked since it was queued): whoever pops an
//! entry re-reads the lease from storage and acts on what it finds, so a stale entry costs one
//! read, never a wrong revocation. Renewals insert the new time (and remove the old one when
//! known), so a lease is never revoked later than its current expiry.

use std::collections::BTreeSet;
use std::sync::Mutex;

use tokio::sync::Notify;

/// `(expire time in unix nanoseconds, lease id)`. The lease id is boxed without spare capacity:
/// with 100,000 outstanding leases this set is most of the manager's memory.
type Key = (i64, Box<str>);

/// Token leases are named under `auth/` (no secrets mount may be), which is how the queue
/// tells them apart for the token gauge without a scan.
const TOKEN_PREFIX: &str = "auth/";

#[derive(Debug, Default)]
struct Entries {
    set: BTreeSet<Key>,
    /// Entries whose lease id is a token's, kept with every insert and removal.
    tokens: usize,
}

impl Entries {
    fn insert(&mut self, key: Key) {
        let token = key.1.starts_with(TOKEN_PREFIX);
        if self.set.insert(key) && token {
            self.tokens += 1;
        }
    }

    fn remove(&mut self, key: &Key) {
        if self.set.remove(key) && key.1.starts_with(TOKEN_PREFIX) {
            self.tokens = self.tokens.saturating_sub(1);
        }
    }

    fn pop_first(&mut self) -> Option<Key> {
        let key = self.set.pop_first()?;
        if key.1.starts_with(TOKEN_PREFIX) {
            self.tokens = self.tokens.saturating_sub(1);
        }
        Some(key)
    }
}

/// What the metrics gauges read from the queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub total: usize,
    /// Entries for token leases.
    pub tokens: usize,
    /// Entries due within one hour, and within a day.
    pub within_hour: usize,
    pub within_day: usize,
}

#[derive(Debug, Default)]
pub struct TimerQueue {
    set: Mutex<Entries>,
    /// Woken when an entry is inserted before the current head, or on pause/stop changes.
    pub(crate) changed: Notify,
}

impl TimerQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `lease_id` to be looked at when `expire_ns` comes.
    pub fn schedule(&self, expire_ns: i64, lease_id: &str) {
        let earliest = {
            let Ok(mut set) = self.set.lock() else {
                return;
            };
            let head = set.set.first().map(|(t, _)| *t);
            set.insert((expire_ns, lease_id.into()));
            head.is_none_or(|h| expire_ns < h)
        };
        if earliest {
            self.changed.notify_one();
        }
    }

    /// Replaces a known earlier entry (a renewal) with a new time.
    pub fn reschedule(&self, old_ns: Option<i64>, new_ns: i64, lease_id: &str) {
        if let Some(old) = old_ns {
            self.remove(old, lease_id);
        }
        self.schedule(new_ns, lease_id);
    }

    pub fn remove(&self, expire_ns: i64, lease_id: &str) {
        if let Ok(mut set) = self.set.lock() {
            set.remove(&(expire_ns, Box::<str>::from(lease_id)));
        }
    }

    /// The earliest expiry time queued.
    pub fn next_due(&self) -> Option<i64> {
        self.set.lock().ok()?.set.first().map(|(t, _)| *t)
    }

    /// Takes up to `max` entries due at or before `now_ns`, earliest first.
    pub fn pop_due(&self, now_ns: i64, max: usize) -> Vec<String> {
        let Ok(mut set) = self.set.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while out.len() < max {
            match set.set.first() {
                Some((t, _)) if *t <= now_ns => {}
                _ => break,
            }
            if let Some((_, id)) = set.pop_first() {
                out.push(id.into_string());
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.set.lock().map_or(0, |s| s.set.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets everything (sealing).
    pub fn clear(&self) {
        if let Ok(mut set) = self.set.lock() {
            *set = Entries::default();
        }
    }

    /// Counts for the metrics gauges. The token count is kept as entries come and go; the
    /// "expiring" counts walk only the entries due within a day (a range of the ordered set).
    pub fn counts(&self, now_ns: i64) -> QueueCounts {
        const HOUR_NS: i64 = 3_600 * 1_000_000_000;
        let Ok(set) = self.set.lock() else {
            return QueueCounts::default();
        };
        let hour = now_ns.saturating_add(HOUR_NS);
        let day = now_ns.saturating_add(24 * HOUR_NS);
        let mut within_hour = 0;
        let mut within_day = 0;
        for (t, _) in set.set.iter().take_while(|(t, _)| *t < day) {
            within_day += 1;
            if *t < hour {
                within_hour += 1;
            }
        }
        QueueCounts {
            total: set.set.len(),
            tokens: set.tokens,
            within_hour,
            within_day,
        }
    }

    /// Bytes an entry costs for a lease id of `id_len` bytes: the set's element (16-byte boxed
    /// str and 8-byte time), its share of B-tree node overhead (nodes hold up to 11 elements
    /// plus edges and lengths: about a third more), and the heap copy of the id rounded up to
    /// the allocator's 16-byte granularity.
    pub fn approx_entry_bytes(id_len: usize) -> usize {
        let element = std::mem::size_of::<Key>();
        let node_overhead = element / 3 + 8;
        let heap = id_len.div_ceil(16) * 16;
        element + node_overhead + heap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_due_entries_in_time_order_and_keeps_later_ones() {
        let q = TimerQueue::new();
        q.schedule(30, "c");
        q.schedule(10, "a");
        q.schedule(20, "b");
        q.schedule(100, "late");
        assert_eq!(q.next_due(), Some(10));
        assert_eq!(q.pop_due(30, 10), vec!["a", "b", "c"]);
        assert_eq!(q.len(), 1);
        assert!(q.pop_due(99, 10).is_empty());
    }

    #[test]
    fn pop_due_respects_the_batch_limit() {
        let q = TimerQueue::new();
        for i in 0..10 {
            q.schedule(i, &format!("l{i}"));
        }
        assert_eq!(q.pop_due(100, 3).len(), 3);
        assert_eq!(q.len(), 7);
    }

    #[test]
    fn reschedule_moves_a_lease_to_its_new_time() {
        let q = TimerQueue::new();
        q.schedule(10, "a");
        q.reschedule(Some(10), 50, "a");
        assert_eq!(q.len(), 1);
        assert!(q.pop_due(20, 10).is_empty());
        assert_eq!(q.pop_due(50, 10), vec!["a"]);
    }

    #[test]
    fn counts_follow_token_entries_and_expiry_horizons() {
        let hour = 3_600 * 1_000_000_000i64;
        let q = TimerQueue::new();
        q.schedule(10, "auth/token/create/aaa");
        q.schedule(10, "auth/token/create/aaa"); // the same entry twice counts once
        q.schedule(2 * hour, "auth/approle/login/bbb");
        q.schedule(30 * hour, "secret/creds/x/ccc");
        let c = q.counts(0);
        assert_eq!(
            c,
            QueueCounts {
                total: 3,
                tokens: 2,
                within_hour: 1,
                within_day: 2
            }
        );
        q.remove(2 * hour, "auth/approle/login/bbb");
        assert_eq!(q.pop_due(10, 10), vec!["auth/token/create/aaa"]);
        let c = q.counts(0);
        assert_eq!((c.total, c.tokens), (1, 0));
        q.schedule(5, "auth/token/create/ddd");
        q.clear();
        assert_eq!(q.counts(0), QueueCounts::default());
    }

    #[test]
    fn an_entry_for_a_token_lease_stays_small() {
        // `auth/token/create/` plus a 64-hex-digit id hash.
        let bytes = TimerQueue::approx_entry_bytes("auth/token/create/".len() + 64);
        assert!(bytes <= 160, "{bytes}");
    }
}
