//! A latency histogram made of atomics only: recording is a handful of relaxed atomic adds, no
//! lock and no allocation, so it can sit on every request and every storage call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in milliseconds (go-metrics and OpenBao report timers in ms).
/// From 0.1 ms (a cached read) to 10 s (a slow database revocation); `+Inf` is implicit.
pub const BUCKETS_MS: [f64; 16] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
    10000.0,
];

/// The bucket bounds in nanoseconds, for comparing without floating point on the hot path.
const BUCKETS_NS: [u64; 16] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

#[derive(Debug)]
pub struct Histogram {
    /// Non-cumulative counts per bucket; the last slot is `+Inf`.
    buckets: [AtomicU64; BUCKETS_NS.len() + 1],
    count: AtomicU64,
    sum_ns: AtomicU64,
    /// Sum of squared microseconds, for the JSON format's standard deviation. Microseconds keep
    /// it far from overflow (a 10 s sample adds 1e14; u64 holds 1.8e19).
    sum_sq_us: AtomicU64,
    min_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
            sum_sq_us: AtomicU64::new(0),
            min_ns: AtomicU64::new(u64::MAX),
            max_ns: AtomicU64::new(0),
        }
    }
}

/// A consistent-enough copy of a histogram (each field read once; a sample recorded while
/// copying may be in some fields and not others, which scrapes tolerate).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// Cumulative counts, one per entry of [`BUCKETS_MS`] (the `+Inf` bucket is `count`).
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub sum_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub stddev_ms: f64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let slot = BUCKETS_NS
            .iter()
            .position(|&bound| ns <= bound)
            .unwrap_or(BUCKETS_NS.len());
        if let Some(bucket) = self.buckets.get(slot) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
        let us = ns / 1_000;
        self.sum_sq_us
            .fetch_add(us.saturating_mul(us), Ordering::Relaxed);
        self.min_ns.fetch_min(ns, Ordering::Relaxed);
        self.max_ns.fetch_max(ns, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0u64;
        let cumulative = self
            .buckets
            .iter()
            .take(BUCKETS_NS.len())
            .map(|b| {
                running = running.saturating_add(b.load(Ordering::Relaxed));
                running
            })
            .collect();
        let count = self.count.load(Ordering::Relaxed);
        let sum_ms = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e6;
        let min_ns = self.min_ns.load(Ordering::Relaxed);
        let max_ns = self.max_ns.load(Ordering::Relaxed);
        let stddev_ms = if count > 1 {
            let n = count as f64;
            let mean_us = sum_ms * 1e3 / n;
            let sq = self.sum_sq_us.load(Ordering::Relaxed) as f64;
            // Sample variance, as go-metrics' AggregateSample computes it.
            let var = (sq - n * mean_us * mean_us) / (n - 1.0);
            var.max(0.0).sqrt() / 1e3
        } else {
            0.0
        };
        HistogramSnapshot {
            cumulative,
            count,
            sum_ms,
            min_ms: if count == 0 { 0.0 } else { min_ns as f64 / 1e6 },
            max_ms: max_ns as f64 / 1e6,
            stddev_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_land_in_the_first_bucket_whose_bound_covers_them() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(50)); // ≤ 0.1 ms
        h.observe(Duration::from_micros(100)); // exactly 0.1 ms: still the first bucket
        h.observe(Duration::from_millis(3)); // ≤ 5 ms
        h.observe(Duration::from_secs(60)); // beyond every bound: +Inf only
        let s = h.snapshot();
        assert_eq!(s.count, 4);
        assert_eq!(s.cumulative.first(), Some(&2));
        // 2.5 ms bucket (index 4) still holds 2, the 5 ms one (index 5) holds 3.
        assert_eq!(s.cumulative.get(4), Some(&2));
        assert_eq!(s.cumulative.get(5), Some(&3));
        assert_eq!(s.cumulative.last(), Some(&3));
        assert!((s.min_ms - 0.05).abs() < 1e-9);
        assert!((s.max_ms - 60_000.0).abs() < 1e-6);
        assert!((s.sum_ms - (0.05 + 0.1 + 3.0 + 60_000.0)).abs() < 1e-6);
    }

    #[test]
    fn an_empty_histogram_reports_zeroes() {
        let s = Histogram::default().snapshot();
        assert_eq!(s.count, 0);
        assert_eq!(s.min_ms, 0.0);
        assert_eq!(s.max_ms, 0.0);
        assert_eq!(s.stddev_ms, 0.0);
        assert!(s.cumulative.iter().all(|&c| c == 0));
    }

    #[test]
    fn stddev_matches_the_sample_standard_deviation() {
        let h = Histogram::default();
        for ms in [2u64, 4, 4, 4, 5, 5, 7, 9] {
            h.observe(Duration::from_millis(ms));
        }
        let s = h.snapshot();
        // mean 5, sum of squared deviations 32, n-1 = 7.
        assert!((s.stddev_ms - (32.0f64 / 7.0).sqrt()).abs() < 1e-6, "{s:?}");
    }
}
