//! The per-resource "next due" time: each rendering resource has at most one pending
//! reconcile, at the time its refresh interval, its backoff, a change or a hook asked for.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use super::kinds::ObjKey;

#[derive(Debug, Default)]
pub struct DueQueue {
    order: BTreeSet<(Instant, ObjKey)>,
    due: HashMap<ObjKey, Instant>,
}

impl DueQueue {
    /// Sets the key's next reconcile to `at`, replacing what was pending.
    pub fn set(&mut self, key: &ObjKey, at: Instant) {
        if let Some(old) = self.due.insert(key.clone(), at) {
            self.order.remove(&(old, key.clone()));
        }
        self.order.insert((at, key.clone()));
    }

    /// Moves the key's next reconcile to `at` if that is sooner (or nothing was pending).
    pub fn sooner(&mut self, key: &ObjKey, at: Instant) {
        match self.due.get(key) {
            Some(old) if *old <= at => {}
            _ => self.set(key, at),
        }
    }

    pub fn remove(&mut self, key: &ObjKey) {
        if let Some(old) = self.due.remove(key) {
            self.order.remove(&(old, key.clone()));
        }
    }

    /// When the key is due, if anything is pending for it.
    pub fn due(&self, key: &ObjKey) -> Option<Instant> {
        self.due.get(key).copied()
    }

    /// The earliest pending time.
    pub fn next(&self) -> Option<Instant> {
        self.order.first().map(|(at, _)| *at)
    }

    /// Takes the earliest key due at `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<ObjKey> {
        let (at, key) = self.order.first()?.clone();
        if at > now {
            return None;
        }
        self.order.remove(&(at, key.clone()));
        self.due.remove(&key);
        Some(key)
    }

    pub fn len(&self) -> usize {
        self.due.len()
    }

    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use std::time::Duration;

    use super::super::kinds::Kind;
    use super::*;

    #[test]
    fn one_pending_time_per_key_earliest_first() {
        let now = Instant::now();
        let a = ObjKey::new(Kind::ExternalSecret, "ns", "a");
        let b = ObjKey::new(Kind::TresorSecret, "ns", "b");
        let mut q = DueQueue::default();
        q.set(&a, now + Duration::from_secs(10));
        q.set(&b, now + Duration::from_secs(5));
        q.set(&a, now + Duration::from_secs(20));
        assert_eq!(q.len(), 2);
        assert_eq!(q.next(), Some(now + Duration::from_secs(5)));
        q.sooner(&a, now + Duration::from_secs(30));
        assert_eq!(q.due(&a), Some(now + Duration::from_secs(20)));
        q.sooner(&a, now + Duration::from_secs(1));
        assert_eq!(q.due(&a), Some(now + Duration::from_secs(1)));
        assert_eq!(q.pop_due(now), None);
        assert_eq!(q.pop_due(now + Duration::from_secs(6)), Some(a.clone()));
        assert_eq!(q.pop_due(now + Duration::from_secs(6)), Some(b.clone()));
        assert!(q.is_empty());
        q.set(&a, now);
        q.remove(&a);
        assert_eq!(q.next(), None);
    }
}
