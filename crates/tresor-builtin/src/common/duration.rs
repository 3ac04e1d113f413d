//! Parsing of duration inputs the way Vault's `parseutil.ParseDurationSecond` does.
//!
//! Accepted: a JSON number of seconds (fractions truncated), a string of whole seconds
//! (`"90"`), a day count (`"2d"`), or a Go duration string (`"1h30m"`, `"1.5h"`, `"500ms"`).
//! The result is whole seconds, truncated toward zero, as Vault's `TypeDurationSecond` stores.

use serde_json::Value;

/// Parses a duration value into whole seconds. The error says what was wrong without
/// echoing the input (callers add the field name).
pub(crate) fn parse_seconds(value: &Value) -> Result<i64, String> {
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i)
            } else if let Some(f) = n.as_f64() {
                float_seconds(f)
            } else {
                Err("number out of range".to_owned())
            }
        }
        Value::String(s) => parse_str(s.trim()),
        Value::Bool(_) => Err("expected a duration, got a bool".to_owned()),
        Value::Null => Ok(0),
        Value::Array(_) | Value::Object(_) => Err("expected a duration".to_owned()),
    }
}

fn float_seconds(f: f64) -> Result<i64, String> {
    if f.is_finite() && f.abs() < 9.2e18 {
        // `as` truncates toward zero, which is what Go's int(d.Seconds()) does.
        #[allow(clippy::cast_possible_truncation, reason = "range checked above")]
        Ok(f.trunc() as i64)
    } else {
        Err("number out of range".to_owned())
    }
}

fn parse_str(s: &str) -> Result<i64, String> {
    if s.is_empty() {
        return Ok(0);
    }
    if let Some(days) = s.strip_suffix('d') {
        let days: i64 = days.parse().map_err(|_| "invalid duration".to_owned())?;
        return days
            .checked_mul(86_400)
            .ok_or_else(|| "duration out of range".to_owned());
    }
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs);
    }
    let nanos = parse_go_duration(s).ok_or_else(|| "invalid duration".to_owned())?;
    i64::try_from(nanos / 1_000_000_000).map_err(|_| "duration out of range".to_owned())
}

/// Go's `time.ParseDuration`: an optional sign, then one or more `<decimal><unit>` pairs.
/// Returns nanoseconds.
fn parse_go_duration(s: &str) -> Option<i128> {
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..)?),
        Some(b'+') => (false, s.get(1..)?),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, tail) = after.split_at(unit_len);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        total = total.checked_add(decimal_times(number, scale)?)?;
        rest = tail;
    }
    Some(if negative { -total } else { total })
}

/// `number * scale` for a decimal like `1.5`, exactly (the fraction is truncated to whole
/// nanoseconds, as Go does).
fn decimal_times(number: &str, scale: i128) -> Option<i128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let whole: i128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut value = whole.checked_mul(scale)?;
    let mut place = scale;
    for digit in fraction.chars() {
        place /= 10;
        let d = i128::from(digit.to_digit(10)?);
        value = value.checked_add(d.checked_mul(place)?)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_vault_duration_forms() {
        assert_eq!(parse_seconds(&json!(90)), Ok(90));
        assert_eq!(parse_seconds(&json!(1.9)), Ok(1));
        assert_eq!(parse_seconds(&json!("90")), Ok(90));
        assert_eq!(parse_seconds(&json!("1h")), Ok(3600));
        assert_eq!(parse_seconds(&json!("1h30m")), Ok(5400));
        assert_eq!(parse_seconds(&json!("1.5s")), Ok(1));
        assert_eq!(parse_seconds(&json!("1.5h")), Ok(5400));
        assert_eq!(parse_seconds(&json!("500ms")), Ok(0));
        assert_eq!(parse_seconds(&json!("2d")), Ok(172_800));
        assert_eq!(parse_seconds(&json!("-1s")), Ok(-1));
        assert_eq!(parse_seconds(&json!("0")), Ok(0));
        assert_eq!(parse_seconds(&json!("")), Ok(0));
        assert!(parse_seconds(&json!("xx")).is_err());
        assert!(parse_seconds(&json!("1x")).is_err());
        assert!(parse_seconds(&json!("h")).is_err());
        assert!(parse_seconds(&json!(true)).is_err());
    }
}
