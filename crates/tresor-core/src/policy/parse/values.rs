//! Scalar formats inside path rules, read as OpenBao reads them: wrapping TTLs
//! (`parseutil.ParseDurationSecond`), `expiration` (`parseutil.ParseAbsoluteTime`) and the
//! `{{…}}` balance check on templated patterns (`identitytpl`, validity-check mode).

use std::time::Duration;

use serde_json::Value;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};
use tresor_sdk::duration::{self, DurationError};

/// A TTL: a number of seconds (number or numeric string), `"<n>d"`, or a Go duration
/// (`"90m"`, `"1h30m"`, `"1.5h"`), read by the shared parser. Zero and negative values parse
/// (Go accepts them) but mean "unset", as Vault only enforces TTLs greater than zero.
pub(super) fn ttl(value: &Value) -> Result<Option<Duration>, String> {
    let nanos = duration::parse_value(value).map_err(|e| match (e, value) {
        (DurationError::WrongType, _) => e.to_string(),
        (_, Value::String(s)) => format!("time: invalid duration {s:?}"),
        _ => "duration out of range".to_owned(),
    })?;
    if nanos <= 0 {
        return Ok(None);
    }
    duration::to_std(nanos)
        .map(Some)
        .map_err(|_| "duration out of range".to_owned())
}

/// RFC 3339 (`2006-01-02T15:04:05Z`, optional fraction, `Z` or `±hh:mm`), or Unix seconds.
pub(super) fn absolute_time(input: &str) -> Option<OffsetDateTime> {
    if let Ok(seconds) = input.parse::<i64>() {
        return OffsetDateTime::from_unix_timestamp(seconds).ok();
    }
    rfc3339(input)
}

fn rfc3339(input: &str) -> Option<OffsetDateTime> {
    let bytes = input.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let text = input.get(range)?;
        text.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| text.parse().ok())
            .flatten()
    };
    let at = |i: usize| bytes.get(i).copied();
    if at(4) != Some(b'-') || at(7) != Some(b'-') || at(10) != Some(b'T') {
        return None;
    }
    if at(13) != Some(b':') || at(16) != Some(b':') {
        return None;
    }
    let year = i32::try_from(digits(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(digits(5..7)?).ok()?).ok()?;
    let day = u8::try_from(digits(8..10)?).ok()?;
    let hour = u8::try_from(digits(11..13)?).ok()?;
    let minute = u8::try_from(digits(14..16)?).ok()?;
    let second = u8::try_from(digits(17..19)?).ok()?;
    let mut rest = input.get(19..)?;
    let mut nanos: u32 = 0;
    if let Some(after_dot) = rest.strip_prefix('.') {
        let len = after_dot
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after_dot.len());
        if len == 0 {
            return None;
        }
        let (fraction, after) = after_dot.split_at(len);
        let mut scale = 100_000_000;
        for digit in fraction.chars().take(9) {
            nanos += digit.to_digit(10)? * scale;
            scale /= 10;
        }
        rest = after;
    }
    let offset = match rest {
        "Z" => UtcOffset::UTC,
        _ => {
            let sign: i8 = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes().get(3) != Some(&b':') {
                return None;
            }
            let hours = i8::try_from(rest.get(1..3)?.parse::<u8>().ok()?).ok()?;
            let minutes = i8::try_from(rest.get(4..6)?.parse::<u8>().ok()?).ok()?;
            UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()?
        }
    };
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms_nano(hour, minute, second, nanos).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

/// Whether the pattern uses `{{…}}` templating; `Err` when the braces do not balance.
pub(super) fn templated(pattern: &str) -> Result<bool, ()> {
    let mut pieces = pattern.split("{{");
    if pieces.next().is_some_and(|first| first.contains("}}")) {
        return Err(());
    }
    let mut templated = false;
    for piece in pieces {
        if piece.matches("}}").count() != 1 {
            return Err(());
        }
        templated = true;
    }
    Ok(templated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secs(value: Value) -> Option<f64> {
        ttl(&value)
            .ok()
            .flatten()
            .map(|d: Duration| d.as_secs_f64())
    }

    #[test]
    fn ttls_read_like_parse_duration_second() {
        assert_eq!(secs(json!("90m")), Some(5400.0));
        assert_eq!(secs(json!("1h30m")), Some(5400.0));
        assert_eq!(secs(json!("1.5h")), Some(5400.0));
        assert_eq!(secs(json!("300ms")), Some(0.3));
        assert_eq!(secs(json!("60")), Some(60.0));
        assert_eq!(secs(json!(60)), Some(60.0));
        // parseutil: `time.Duration(f) * time.Second` truncates the float to whole seconds.
        assert_eq!(secs(json!(1.5)), Some(1.0));
        assert_eq!(secs(json!("2d")), Some(172_800.0));
        assert_eq!(secs(json!("0")), None);
        assert_eq!(secs(json!("-5s")), None);
        assert_eq!(secs(json!("")), None);
        for bad in ["zz", "1x", "1.5d", "h", "1h1d", "."] {
            assert!(ttl(&json!(bad)).is_err(), "{bad}");
        }
        assert!(ttl(&json!(true)).is_err());
    }

    #[test]
    fn absolute_times() {
        let t = absolute_time("2006-01-02T15:04:05Z").map(OffsetDateTime::unix_timestamp);
        assert_eq!(t, Some(1_136_214_245));
        let t = absolute_time("2006-01-02T15:04:05.5+01:00").map(OffsetDateTime::unix_timestamp);
        assert_eq!(t, Some(1_136_210_645));
        assert_eq!(
            absolute_time("1136214245").map(OffsetDateTime::unix_timestamp),
            Some(1_136_214_245)
        );
        for bad in [
            "2006-01-02",
            "2006-13-02T15:04:05Z",
            "2006-01-02T15:04:05",
            "soon",
        ] {
            assert!(absolute_time(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn template_balance() {
        assert_eq!(templated("secret/foo"), Ok(false));
        assert_eq!(templated("secret/{{identity.entity.id}}/*"), Ok(true));
        assert_eq!(templated("secret/{{a}}/{{b}}"), Ok(true));
        assert!(templated("secret/{{a").is_err());
        assert!(templated("secret/a}}").is_err());
        assert!(templated("secret/{{a}}}}").is_err());
    }
}
