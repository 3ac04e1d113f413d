//! Bounded retries: which answers are worth another try, and how long to wait before it.
//!
//! 408, 429, 500, 502, 503, 504 and transport errors (connection refused or reset, timeouts)
//! are retried up to [`RetryPolicy::max_retries`] times. The wait is the server's
//! `retry-after-ms` / `x-ms-retry-after-ms` (milliseconds) or `Retry-After` (seconds or an
//! HTTP-date) when it gives one, else exponential backoff from
//! [`RetryPolicy::initial_delay`], doubling, capped at [`RetryPolicy::max_delay`]. A server
//! asking for a wait longer than [`RetryPolicy::max_retry_after`] is not waited for: the
//! error is returned with the wait it asked for.

use std::time::{Duration, SystemTime};

/// How often and how long to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (so `max_retries + 1` attempts at most).
    pub max_retries: u32,
    /// The first backoff when the server names no wait.
    pub initial_delay: Duration,
    /// The longest backoff when the server names no wait.
    pub max_delay: Duration,
    /// The longest wait honoured when the server names one.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// Four retries, 0.8 s doubling to at most 30 s; a `Retry-After` up to 60 s is honoured.
    fn default() -> Self {
        Self {
            max_retries: 4,
            initial_delay: Duration::from_millis(800),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// The backoff before retry number `retry` (0-based) when the server named no wait.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX);
        self.initial_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

/// Whether an HTTP status is worth retrying.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// The wait a response asks for: `retry-after-ms`, `x-ms-retry-after-ms`, then
/// `Retry-After` (delta-seconds, or an HTTP-date relative to `now`; a date in the past is no
/// wait). `None` when no header is present or none parses.
pub fn retry_after(headers: &reqwest::header::HeaderMap, now: SystemTime) -> Option<Duration> {
    for name in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(ms) = headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            return Some(Duration::from_millis(ms));
        }
    }
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    parse_retry_after(value, now)
}

/// `Retry-After`'s value: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        // 1445412483 is Wed, 21 Oct 2015 07:28:03 GMT
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:03 GMT", now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past is no wait"
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_millis(250)));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            max_retries: 10,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(1),
        };
        let waits: Vec<_> = (0..5).map(|r| p.backoff(r).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 500, 500]);
        assert_eq!(p.backoff(u32::MAX), Duration::from_millis(500));
        assert!(retryable_status(429) && retryable_status(503) && !retryable_status(403));
    }
}
