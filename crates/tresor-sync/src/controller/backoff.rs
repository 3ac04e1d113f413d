//! Exponential backoff for a failing resource: `base`, then doubling, capped at `max`; reset
//! by a success. Deterministic (no jitter): one controller retries each resource on its own
//! schedule, so there is no herd to spread out.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max: max.max(base),
            failures: 0,
        }
    }

    /// The wait before the next attempt after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let shift = self.failures.min(30);
        self.failures = self.failures.saturating_add(1);
        self.base
            .checked_mul(1u32 << shift)
            .map_or(self.max, |d| d.min(self.max))
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let delays: Vec<u64> = (0..6).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
        assert_eq!(b.failures(), 6);
        b.reset();
        assert_eq!(b.failures(), 0);
        assert_eq!(b.next_delay(), Duration::from_secs(1));
    }

    #[test]
    fn never_overflows() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(300));
        for _ in 0..100 {
            assert!(b.next_delay() <= Duration::from_secs(300));
        }
        assert_eq!(b.next_delay(), Duration::from_secs(300));
        // A cap below the base is the base.
        let mut small = Backoff::new(Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(small.next_delay(), Duration::from_secs(2));
        assert_eq!(small.next_delay(), Duration::from_secs(2));
    }
}
