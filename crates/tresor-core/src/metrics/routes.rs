//! Latency per mount point and operation.
//!
//! A map from mount point to one histogram per operation. Requests only take the read lock
//! (the map changes when a mount is first seen); the number of mount points kept is bounded,
//! so a stream of requests to ever-new paths cannot grow it without end.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use super::exposition::{Series, SeriesValue};
use super::histogram::Histogram;

/// The operations requests are labelled with, as Vault names them.
pub const OPERATIONS: [&str; 8] = [
    "read", "create", "update", "patch", "delete", "list", "scan", "head",
];

/// Mount points kept with their own label; beyond this, requests count under `other`.
const MAX_MOUNTS: usize = 1000;

/// The label for requests past [`MAX_MOUNTS`].
const OVERFLOW: &str = "other";

type PerOperation = [Histogram; OPERATIONS.len()];

#[derive(Debug, Default)]
pub struct RouteFamily {
    mounts: RwLock<HashMap<Box<str>, Arc<PerOperation>>>,
}

impl RouteFamily {
    /// Records one request to `mount` (a mount point such as `secret/` or `auth/token/`).
    /// An operation not in [`OPERATIONS`] is not recorded.
    pub fn observe(&self, mount: &str, operation: &str, elapsed: Duration) {
        let Some(index) = OPERATIONS.iter().position(|o| *o == operation) else {
            return;
        };
        let existing = self
            .mounts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(mount)
            .cloned();
        let per_op = match existing {
            Some(p) => p,
            None => self.insert(mount),
        };
        if let Some(h) = per_op.get(index) {
            h.observe(elapsed);
        }
    }

    fn insert(&self, mount: &str) -> Arc<PerOperation> {
        let mut map = self.mounts.write().unwrap_or_else(PoisonError::into_inner);
        let key = if map.len() >= MAX_MOUNTS && !map.contains_key(mount) {
            OVERFLOW
        } else {
            mount
        };
        map.entry(key.into())
            .or_insert_with(|| Arc::new(std::array::from_fn(|_| Histogram::default())))
            .clone()
    }

    /// One series per mount and operation that saw a request, sorted for stable output.
    pub fn series(&self) -> Vec<Series> {
        let map = self.mounts.read().unwrap_or_else(PoisonError::into_inner);
        let mut mounts: Vec<_> = map.iter().collect();
        mounts.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = Vec::new();
        for (mount, per_op) in mounts {
            for (op, h) in OPERATIONS.iter().zip(per_op.iter()) {
                let snapshot = h.snapshot();
                if snapshot.count == 0 {
                    continue;
                }
                out.push(Series {
                    labels: vec![
                        ("mount", mount.to_string()),
                        ("operation", (*op).to_owned()),
                    ],
                    value: SeriesValue::Histogram(snapshot),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mount_and_operation_gets_its_own_series() {
        let f = RouteFamily::default();
        f.observe("secret/", "read", Duration::from_millis(1));
        f.observe("secret/", "read", Duration::from_millis(1));
        f.observe("secret/", "update", Duration::from_millis(1));
        f.observe("auth/token/", "create", Duration::from_millis(1));
        f.observe("secret/", "bogus", Duration::from_millis(1));
        let series = f.series();
        let count = |mount: &str, op: &str| {
            series
                .iter()
                .find(|s| {
                    s.labels.contains(&("mount", mount.to_owned()))
                        && s.labels.contains(&("operation", op.to_owned()))
                })
                .map(|s| match &s.value {
                    SeriesValue::Histogram(h) => h.count,
                    _ => 0,
                })
        };
        assert_eq!(series.len(), 3);
        assert_eq!(count("secret/", "read"), Some(2));
        assert_eq!(count("secret/", "update"), Some(1));
        assert_eq!(count("auth/token/", "create"), Some(1));
    }

    #[test]
    fn mounts_beyond_the_bound_share_one_label() {
        let f = RouteFamily::default();
        for i in 0..MAX_MOUNTS + 5 {
            f.observe(&format!("m{i}/"), "read", Duration::from_millis(1));
        }
        let series = f.series();
        assert_eq!(series.len(), MAX_MOUNTS + 1);
        let other = series
            .iter()
            .find(|s| s.labels.contains(&("mount", OVERFLOW.to_owned())))
            .map(|s| match &s.value {
                SeriesValue::Histogram(h) => h.count,
                _ => 0,
            });
        assert_eq!(other, Some(5));
    }
}
