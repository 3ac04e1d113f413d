//! Timestamps on the wire: Go's `time.RFC3339Nano` in UTC (`2024-01-02T03:04:05.123456789Z`,
//! trailing zeros of the fraction dropped, and the `.` with them when nothing is left), which
//! is what OpenBao emits and what the `time` crate's `Rfc3339` produces for a UTC instant.
//!
//! Formatted by hand because it is on the hot path: every KV v2 read carries one, every audit
//! line one, every request registered in flight one; going through `core::fmt` cost more than
//! the rest of those steps.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch, now (saturating far outside `i64`'s years 1677–2262).
pub fn now_nanos() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

/// `nanos` since the Unix epoch as RFC 3339 in UTC with Go's trimmed nanoseconds.
pub fn rfc3339_nano(nanos: i64) -> String {
    let mut out = Vec::with_capacity(30);
    write_rfc3339_nano(nanos, &mut out);
    // Only ASCII digits and separators were written.
    String::from_utf8(out).unwrap_or_default()
}

/// [`rfc3339_nano`] appended to `out` (the audit lines write one straight into the line).
pub fn write_rfc3339_nano(nanos: i64, out: &mut Vec<u8>) {
    let secs = nanos.div_euclid(1_000_000_000);
    let fraction = u32::try_from(nanos.rem_euclid(1_000_000_000)).unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let of_day = u32::try_from(secs.rem_euclid(86_400)).unwrap_or(0);
    let (year, month, day) = civil_from_days(days);

    // Years before 1 or after 9999 do not fit RFC 3339; i64 nanoseconds never reach them.
    out.extend_from_slice(&digits::<4>(
        u32::try_from(year.clamp(0, 9999)).unwrap_or(0),
    ));
    out.push(b'-');
    out.extend_from_slice(&digits::<2>(month));
    out.push(b'-');
    out.extend_from_slice(&digits::<2>(day));
    out.push(b'T');
    out.extend_from_slice(&digits::<2>(of_day / 3600));
    out.push(b':');
    out.extend_from_slice(&digits::<2>(of_day / 60 % 60));
    out.push(b':');
    out.extend_from_slice(&digits::<2>(of_day % 60));
    if fraction != 0 {
        let nine = digits::<9>(fraction);
        let kept = nine.iter().rposition(|d| *d != b'0').map_or(0, |i| i + 1);
        out.push(b'.');
        out.extend_from_slice(nine.get(..kept).unwrap_or_default());
    }
    out.push(b'Z');
}

/// `n` as exactly `N` decimal digits (leading zeros; higher digits dropped).
fn digits<const N: usize>(mut n: u32) -> [u8; N] {
    let mut out = [b'0'; N];
    for slot in out.iter_mut().rev() {
        // `n % 10` is below 10, so the cast cannot truncate.
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out
}

/// (year, month 1–12, day 1–31) of a day count since 1970-01-01, in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_rfc3339_nano_trimming() {
        assert_eq!(rfc3339_nano(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_nano(1_500_000_000), "1970-01-01T00:00:01.5Z");
        assert_eq!(
            rfc3339_nano(1_764_068_073_477_956_378),
            "2025-11-25T10:54:33.477956378Z"
        );
        assert_eq!(rfc3339_nano(1_000_000_010), "1970-01-01T00:00:01.00000001Z");
        assert_eq!(rfc3339_nano(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(
            rfc3339_nano(951_782_400 * 1_000_000_000),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn agrees_with_the_time_crate_over_the_whole_range() {
        use time::OffsetDateTime;
        use time::format_description::well_known::Rfc3339;
        // A deterministic walk over instants from 1677 to 2262 with all kinds of fractions.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let nanos = x as i64;
            let nanos = match x % 4 {
                0 => nanos - nanos % 1_000_000_000,
                1 => nanos - nanos % 1_000,
                _ => nanos,
            };
            let expected = OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
                .ok()
                .and_then(|t| t.format(&Rfc3339).ok());
            let Some(expected) = expected else { continue };
            assert_eq!(rfc3339_nano(nanos), expected, "nanos {nanos}");
        }
    }

    #[test]
    fn now_is_after_2020() {
        assert!(now_nanos() > 1_577_836_800 * 1_000_000_000);
    }
}
