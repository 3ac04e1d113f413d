//! Time as engines see it, and its wire formats.
//!
//! KV v2 timestamps go out as Go's `time.RFC3339Nano` (trailing zeros of the fraction dropped,
//! always UTC `Z`) and durations as Go's `time.Duration.String()`, because clients parse and
//! compare these strings exactly as OpenBao emits them.

use std::fmt::Debug;

/// Nanoseconds since the Unix epoch, UTC. `i64` covers the years 1677–2262.
pub type UnixNanos = i64;

/// A source of the current time. Engines take one so tests can move time forward (KV v2's
/// `delete_version_after` makes versions disappear once their deletion time has passed).
pub trait Clock: Send + Sync + Debug {
    fn now(&self) -> UnixNanos;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixNanos {
        tresor_sdk::timestamp::now_nanos()
    }
}

/// Go's `t.UTC().Format(time.RFC3339Nano)`; the formatter is shared with the core.
pub use tresor_sdk::timestamp::rfc3339_nano;

/// Formats a whole number of seconds like Go's `time.Duration.String()`: `0s`, `45s`,
/// `1m30s`, `1h0m0s`, `-1s`.
pub fn go_duration(seconds: i64) -> String {
    if seconds == 0 {
        return "0s".to_owned();
    }
    let sign = if seconds < 0 { "-" } else { "" };
    let total = seconds.unsigned_abs();
    let (hours, minutes, secs) = (total / 3600, (total % 3600) / 60, total % 60);
    if hours > 0 {
        format!("{sign}{hours}h{minutes}m{secs}s")
    } else if minutes > 0 {
        format!("{sign}{minutes}m{secs}s")
    } else {
        format!("{sign}{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(45), "45s");
        assert_eq!(go_duration(90), "1m30s");
        assert_eq!(go_duration(3600), "1h0m0s");
        assert_eq!(go_duration(3601), "1h0m1s");
        assert_eq!(go_duration(-1), "-1s");
        assert_eq!(go_duration(12_319), "3h25m19s");
    }
}
