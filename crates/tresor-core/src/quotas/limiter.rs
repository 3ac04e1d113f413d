//! One rate-limit quota's buckets: one per client address, as Vault keeps them.
//!
//! Each bucket is a fixed window that opens at the client's first request: `rate` requests
//! (rounded to a whole number, as Vault's `go-limiter` store does) per `interval`, counted
//! from there in whole intervals. A client over its limit with a `block_interval` is refused
//! outright until the block ends. Buckets of clients not seen for a while are swept when the
//! map grows, on the request path, so no task runs per quota.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Buckets idle this long are dropped by a sweep (Vault's stale age).
const STALE_AGE: Duration = Duration::from_secs(3 * 60);
/// A sweep runs at most this often, and only when the map holds more than [`SWEEP_ABOVE`].
const SWEEP_EVERY: Duration = Duration::from_secs(60);
const SWEEP_ABOVE: usize = 1024;

/// What one request's check found: whether it may proceed, and the numbers for the
/// `X-RateLimit-*` and `Retry-After` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The client was already blocked: no bucket was consulted, so OpenBao sends only
    /// `Retry-After`, without the `X-Ratelimit-*` numbers.
    pub blocked: bool,
    /// Requests per interval.
    pub limit: u64,
    pub remaining: u64,
    /// Whole seconds until the client's window resets, rounded down as Vault does.
    pub reset_secs: u64,
    /// For a refusal: whole seconds until the client may try again (the window's reset, or
    /// the end of its block), rounded down as OpenBao rounds it.
    pub retry_after_secs: u64,
}

#[derive(Debug)]
struct Bucket {
    window_start: Instant,
    taken: u64,
    last_seen: Instant,
    blocked_until: Option<Instant>,
}

#[derive(Debug)]
struct Buckets {
    by_client: HashMap<IpAddr, Bucket>,
    last_sweep: Instant,
}

#[derive(Debug)]
pub struct Limiter {
    limit: u64,
    interval: Duration,
    block: Option<Duration>,
    buckets: Mutex<Buckets>,
}

impl Limiter {
    pub fn new(rate: f64, interval: Duration, block: Option<Duration>) -> Self {
        // `rate` is validated positive and finite before it gets here; rounding as Vault does
        // can give 0 for a rate below 0.5, which then refuses every request, also as Vault.
        let limit = if rate.is_finite() && rate > 0.0 {
            // Within u64 range for any rate a caller could mean; saturates beyond.
            rate.round() as u64
        } else {
            0
        };
        Self {
            limit,
            interval: interval.max(Duration::from_nanos(1)),
            block,
            buckets: Mutex::new(Buckets {
                by_client: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    pub fn take(&self, client: IpAddr) -> Decision {
        self.take_at(client, Instant::now())
    }

    fn take_at(&self, client: IpAddr, now: Instant) -> Decision {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.by_client.len() > SWEEP_ABOVE
            && now.duration_since(buckets.last_sweep) >= SWEEP_EVERY
        {
            buckets.by_client.retain(|_, b| {
                now.duration_since(b.last_seen) < STALE_AGE
                    || b.blocked_until.is_some_and(|until| until > now)
            });
            buckets.last_sweep = now;
        }
        let bucket = buckets.by_client.entry(client).or_insert(Bucket {
            window_start: now,
            taken: 0,
            last_seen: now,
            blocked_until: None,
        });
        bucket.last_seen = now;
        if let Some(until) = bucket.blocked_until {
            if until > now {
                let left = until.duration_since(now).as_secs();
                return Decision {
                    allowed: false,
                    blocked: true,
                    limit: self.limit,
                    remaining: 0,
                    reset_secs: left,
                    retry_after_secs: left,
                };
            }
            bucket.blocked_until = None;
        }
        // Move the window forward by whole intervals.
        let elapsed = now.duration_since(bucket.window_start);
        if elapsed >= self.interval {
            let periods = elapsed.as_nanos() / self.interval.as_nanos();
            let advance = self
                .interval
                .saturating_mul(u32::try_from(periods).unwrap_or(u32::MAX));
            bucket.window_start += advance;
            bucket.taken = 0;
        }
        let reset_at = bucket.window_start + self.interval;
        let allowed = bucket.taken < self.limit;
        if allowed {
            bucket.taken += 1;
        }
        let reset_secs = reset_at.duration_since(now).as_secs();
        let mut retry_after_secs = reset_secs;
        if !allowed && let Some(block) = self.block {
            bucket.blocked_until = Some(now + block);
            // OpenBao measures the block's end from a clock that has already moved on, so a
            // whole-second block reads one second short (30s → 29).
            retry_after_secs = block.saturating_sub(Duration::from_nanos(1)).as_secs();
        }
        Decision {
            allowed,
            blocked: false,
            limit: self.limit,
            remaining: self.limit.saturating_sub(bucket.taken),
            reset_secs,
            retry_after_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_client_gets_rate_requests_per_interval_and_then_waits_for_the_next_window() {
        let limiter = Limiter::new(2.0, Duration::from_secs(10), None);
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let first = limiter.take_at(ip(1), at(0));
        assert_eq!((first.allowed, first.limit, first.remaining), (true, 2, 1));
        assert!(limiter.take_at(ip(1), at(1)).allowed);
        let refused = limiter.take_at(ip(1), at(2));
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.reset_secs, 9, "just under 10 s left, rounded down");
        assert_eq!(refused.retry_after_secs, 9);
        // Another client has its own bucket.
        assert!(limiter.take_at(ip(2), at(3)).allowed);
        assert!(limiter.take_at(ip(1), at(10_000)).allowed);
    }

    #[test]
    fn a_block_interval_refuses_a_client_until_it_ends() {
        let limiter = Limiter::new(1.0, Duration::from_secs(1), Some(Duration::from_secs(30)));
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        assert!(limiter.take_at(ip(1), at(0)).allowed);
        let refused = limiter.take_at(ip(1), at(0));
        assert!(!refused.allowed);
        assert!(!refused.blocked, "this refusal consulted the bucket");
        assert_eq!(refused.retry_after_secs, 29);
        assert_eq!(refused.reset_secs, 1, "the window's own reset");
        let blocked = limiter.take_at(ip(1), at(5));
        assert!(!blocked.allowed, "still blocked after the window");
        assert!(blocked.blocked);
        assert_eq!(blocked.retry_after_secs, 25);
        assert!(limiter.take_at(ip(1), at(31)).allowed);
    }
}
