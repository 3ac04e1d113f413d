//! The one parser for durations as Vault reads them (`parseutil.ParseDurationSecond`).
//!
//! Every place that reads a TTL — request parameters, engine fields, policy rules, the config
//! file — goes through this module, so `"1h30m"` means the same everywhere:
//! - a JSON number is seconds (a fraction is truncated, as Go's `time.Duration(f) * time.Second`);
//! - a string of digits (optionally signed) is seconds;
//! - `"<integer>d"` is days (Vault's extension; only as a whole-number suffix, as in Vault);
//! - anything else is a Go duration (`time.ParseDuration`): an optional sign, then one or more
//!   `<decimal><unit>` with units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`; fractions are exact
//!   (kept as digits, never floats) and truncated to whole nanoseconds.
//!
//! Values are nanoseconds as `i128`, signed: Go accepts negative durations, and each caller
//! decides what a negative or zero value means for its field.

use serde_json::Value;

pub const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// Why a duration could not be read. The message never echoes the input: callers decide
/// whether the input may be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("it is empty")]
    Empty,
    #[error("expected a number")]
    ExpectedNumber,
    #[error("a number is missing its unit (h, m, s, ...)")]
    MissingUnit,
    #[error("unknown unit; use d, h, m, s, ms, us or ns")]
    UnknownUnit,
    #[error("it is too large")]
    OutOfRange,
    #[error("expected a duration such as \"90m\" or a number of seconds")]
    WrongType,
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn parse_go(input: &str) -> Result<i128, DurationError> {
    let (negative, mut rest) = match input.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, input.strip_prefix('+').unwrap_or(input)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(if input.is_empty() {
            DurationError::Empty
        } else {
            DurationError::ExpectedNumber
        });
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let (whole, fraction, after) = split_number(rest).ok_or(DurationError::ExpectedNumber)?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after_unit) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(DurationError::MissingUnit);
        }
        let per_unit = unit_nanos(unit).ok_or(DurationError::UnknownUnit)?;
        let component =
            decimal_times(whole, fraction, per_unit).ok_or(DurationError::OutOfRange)?;
        total = total
            .checked_add(component)
            .ok_or(DurationError::OutOfRange)?;
        rest = after_unit;
    }
    Ok(if negative { -total } else { total })
}

/// Vault's string form: empty is zero, digits are seconds, `<n>d` is days, else Go's form.
pub fn parse_str(input: &str) -> Result<i128, DurationError> {
    if input.is_empty() {
        return Ok(0);
    }
    let unsigned = input
        .strip_prefix('-')
        .or_else(|| input.strip_prefix('+'))
        .unwrap_or(input);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = input
            .parse::<i64>()
            .map_err(|_| DurationError::OutOfRange)?;
        return Ok(i128::from(seconds) * NANOS_PER_SECOND);
    }
    if let Some(days) = input.strip_suffix('d') {
        let days = days
            .parse::<i64>()
            .map_err(|_| DurationError::ExpectedNumber)?;
        return Ok(i128::from(days) * 86_400 * NANOS_PER_SECOND);
    }
    parse_go(input)
}

/// Vault's JSON forms: a number of seconds, a string as [`parse_str`], `null` as zero.
pub fn parse_value(value: &Value) -> Result<i128, DurationError> {
    match value {
        Value::Null => Ok(0),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i128::from(i) * NANOS_PER_SECOND)
            } else if let Some(u) = n.as_u64() {
                Ok(i128::from(u) * NANOS_PER_SECOND)
            } else {
                let f = n.as_f64().ok_or(DurationError::OutOfRange)?;
                if !f.is_finite() || f.abs() >= 9.2e18 {
                    return Err(DurationError::OutOfRange);
                }
                #[allow(clippy::cast_possible_truncation, reason = "range checked above")]
                let seconds = f.trunc() as i64;
                Ok(i128::from(seconds) * NANOS_PER_SECOND)
            }
        }
        Value::String(s) => parse_str(s),
        Value::Bool(_) | Value::Array(_) | Value::Object(_) => Err(DurationError::WrongType),
    }
}

/// Whole seconds of a nanosecond count, truncated toward zero (Go's `int(d.Seconds())`).
pub fn whole_seconds(nanos: i128) -> Result<i64, DurationError> {
    i64::try_from(nanos / NANOS_PER_SECOND).map_err(|_| DurationError::OutOfRange)
}

/// A non-negative nanosecond count as a [`std::time::Duration`].
pub fn to_std(nanos: i128) -> Result<std::time::Duration, DurationError> {
    let secs = u64::try_from(nanos / NANOS_PER_SECOND).map_err(|_| DurationError::OutOfRange)?;
    let subsec = u32::try_from(nanos % NANOS_PER_SECOND).map_err(|_| DurationError::OutOfRange)?;
    Ok(std::time::Duration::new(secs, subsec))
}

/// Whole seconds as Go's `time.Duration.String()` writes them (`1h0m0s`, `5m0s`, `45s`, `0s`):
/// what Vault's client sends for duration flags and what its TTL warnings print.
pub fn format_go(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// Whole seconds with zero components dropped (`768h`, `1h30m`, `1h1s`, `0s`): Vault's
/// `humanDurationInt`, used in CLI tables and token messages.
pub fn format_human(secs: u64) -> String {
    if secs == 0 {
        return "0s".to_owned();
    }
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    for (value, unit) in [(h, 'h'), (m, 'm'), (s, 's')] {
        if value > 0 {
            out.push_str(&value.to_string());
            out.push(unit);
        }
    }
    out
}

fn unit_nanos(unit: &str) -> Option<i128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SECOND,
        "m" => 60 * NANOS_PER_SECOND,
        "h" => 3_600 * NANOS_PER_SECOND,
        _ => return None,
    })
}

/// `whole.fraction` as written, and the text after it; `None` when there is no digit.
fn split_number(text: &str) -> Option<(&str, &str, &str)> {
    let whole_len = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (whole, rest) = text.split_at(whole_len);
    let (fraction, rest) = match rest.strip_prefix('.') {
        Some(after_dot) => {
            let len = after_dot
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after_dot.len());
            after_dot.split_at(len)
        }
        None => ("", rest),
    };
    (!whole.is_empty() || !fraction.is_empty()).then_some((whole, fraction, rest))
}

/// `whole.fraction * per_unit` exactly; digits beyond the 18th cannot matter (an hour is
/// under 10^13 ns).
fn decimal_times(whole: &str, fraction: &str, per_unit: i128) -> Option<i128> {
    let whole: i128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut total = whole.checked_mul(per_unit)?;
    let mut scale = per_unit;
    for digit in fraction.chars().take(18) {
        scale /= 10;
        total = total.checked_add(i128::from(digit.to_digit(10)?) * scale)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const S: i128 = NANOS_PER_SECOND;

    /// The one table: every form any caller accepts, and what it means.
    #[test]
    fn vault_duration_forms() {
        let cases: &[(&str, i128)] = &[
            ("", 0),
            ("0", 0),
            ("0s", 0),
            ("90", 90 * S),
            ("-1", -S),
            ("+5m", 300 * S),
            ("768h", 768 * 3600 * S),
            ("30m", 1800 * S),
            ("45s", 45 * S),
            ("1h30m", 5400 * S),
            ("1h30m15s", 5415 * S),
            ("1.5h", 5400 * S),
            (".5s", S / 2),
            ("1.5s", 3 * S / 2),
            ("250ms", 250_000_000),
            ("10us", 10_000),
            ("10µs", 10_000),
            ("10μs", 10_000),
            ("7ns", 7),
            ("2d", 2 * 86_400 * S),
            ("-1s", -S),
            ("-1h30m", -5400 * S),
        ];
        for (input, nanos) in cases {
            assert_eq!(parse_str(input), Ok(*nanos), "{input:?}");
        }
    }

    #[test]
    fn bad_durations_say_why() {
        let cases: &[(&str, DurationError)] = &[
            ("h", DurationError::ExpectedNumber),
            ("-", DurationError::ExpectedNumber),
            ("1h30", DurationError::MissingUnit),
            ("1.2.3s", DurationError::MissingUnit),
            ("5x", DurationError::UnknownUnit),
            ("5 m", DurationError::UnknownUnit),
            ("1d12h", DurationError::UnknownUnit),
            ("1.5d", DurationError::ExpectedNumber),
            ("xd", DurationError::ExpectedNumber),
            ("abc", DurationError::ExpectedNumber),
            ("99999999999999999999", DurationError::OutOfRange),
            (
                "99999999999999999999999999999999999999h",
                DurationError::OutOfRange,
            ),
        ];
        for (input, error) in cases {
            assert_eq!(parse_str(input), Err(*error), "{input:?}");
        }
        assert_eq!(parse_go(""), Err(DurationError::Empty));
    }

    #[test]
    fn formatting() {
        for (secs, go, human) in [
            (0, "0s", "0s"),
            (45, "45s", "45s"),
            (120, "2m0s", "2m"),
            (300, "5m0s", "5m"),
            (3600, "1h0m0s", "1h"),
            (3601, "1h0m1s", "1h1s"),
            (5400, "1h30m0s", "1h30m"),
            (5430, "1h30m30s", "1h30m30s"),
            (2_764_800, "768h0m0s", "768h"),
        ] {
            assert_eq!(format_go(secs), go, "{secs}");
            assert_eq!(format_human(secs), human, "{secs}");
            // What is written parses back to the same duration.
            assert_eq!(parse_str(go), Ok(i128::from(secs) * S), "{go}");
            assert_eq!(parse_str(human), Ok(i128::from(secs) * S), "{human}");
        }
    }

    #[test]
    fn json_forms() {
        assert_eq!(parse_value(&json!(90)), Ok(90 * S));
        assert_eq!(parse_value(&json!(1.9)), Ok(S));
        assert_eq!(parse_value(&json!(-1.9)), Ok(-S));
        assert_eq!(parse_value(&json!(null)), Ok(0));
        assert_eq!(parse_value(&json!("2m")), Ok(120 * S));
        assert_eq!(parse_value(&json!(1e300)), Err(DurationError::OutOfRange));
        assert_eq!(parse_value(&json!(true)), Err(DurationError::WrongType));
        assert_eq!(parse_value(&json!([1])), Err(DurationError::WrongType));
        assert_eq!(whole_seconds(S * 3 / 2), Ok(1));
        assert_eq!(whole_seconds(-S * 3 / 2), Ok(-1));
        assert_eq!(
            to_std(S + 5),
            Ok(std::time::Duration::from_nanos(1_000_000_005))
        );
        assert_eq!(to_std(-1), Err(DurationError::OutOfRange));
    }
}
