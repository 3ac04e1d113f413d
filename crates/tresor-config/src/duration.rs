//! Durations as Vault writes them.
//!
//! Vault (`parseutil.ParseDurationSecond`) takes a bare integer as seconds and anything else as
//! a Go duration ("768h", "1h30m", "1.5h", "250ms") plus its own `d` for days. We accept the
//! same, minus negative values, which make no sense for TTLs.

use std::time::Duration;

/// A duration string we could not read; the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: {reason}; expected e.g. \"768h\", \"1h30m\", \"45s\" or a number of seconds"
)]
pub struct InvalidDuration {
    pub input: String,
    pub reason: &'static str,
}

const NANOS_PER_SECOND: u128 = 1_000_000_000;

const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", NANOS_PER_SECOND),
    ("m", 60 * NANOS_PER_SECOND),
    ("h", 3_600 * NANOS_PER_SECOND),
    ("d", 86_400 * NANOS_PER_SECOND),
];

/// Parses `"768h"`, `"30m"`, `"45s"`, `"1h30m"`, `"1.5h"`, `"7d"` or `"3600"` (seconds).
pub fn parse_duration(input: &str) -> Result<Duration, InvalidDuration> {
    let fail = |reason| InvalidDuration {
        input: input.to_owned(),
        reason,
    };
    let text = input.trim();
    if text.is_empty() {
        return Err(fail("it is empty"));
    }
    if text.starts_with('-') {
        return Err(fail("it is negative"));
    }
    let text = text.strip_prefix('+').unwrap_or(text);
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = text.parse::<u64>().map_err(|_| fail("it is too large"))?;
        return Ok(Duration::from_secs(seconds));
    }

    let mut nanos: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let (number, after_number) = split_number(rest).ok_or_else(|| fail("expected a number"))?;
        let unit_len = after_number
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after_number.len());
        let (unit, after_unit) = after_number.split_at(unit_len);
        if unit.is_empty() {
            return Err(fail("a number is missing its unit (h, m, s, ...)"));
        }
        let per_unit = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|&(_, per_unit)| per_unit)
            .ok_or_else(|| fail("unknown unit; use d, h, m, s, ms, us or ns"))?;
        let component = number
            .nanos(per_unit)
            .ok_or_else(|| fail("it is too large"))?;
        nanos = nanos
            .checked_add(component)
            .ok_or_else(|| fail("it is too large"))?;
        rest = after_unit;
    }

    let seconds = u64::try_from(nanos / NANOS_PER_SECOND).map_err(|_| fail("it is too large"))?;
    let subsec = u32::try_from(nanos % NANOS_PER_SECOND).map_err(|_| fail("it is too large"))?;
    Ok(Duration::new(seconds, subsec))
}

/// `whole.fraction` as written, kept as digits so "1.5h" is exact rather than via floats.
struct Number<'a> {
    whole: &'a str,
    fraction: &'a str,
}

impl Number<'_> {
    fn nanos(&self, per_unit: u128) -> Option<u128> {
        let whole = if self.whole.is_empty() {
            0
        } else {
            self.whole.parse::<u128>().ok()?
        };
        let mut total = whole.checked_mul(per_unit)?;
        // Digits beyond the 18th cannot matter: even a day is under 10^14 ns.
        let mut scale = per_unit;
        for digit in self.fraction.chars().take(18) {
            scale /= 10;
            total = total.checked_add(u128::from(digit.to_digit(10)?) * scale)?;
        }
        Some(total)
    }
}

fn split_number(text: &str) -> Option<(Number<'_>, &str)> {
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
    (!whole.is_empty() || !fraction.is_empty()).then_some((Number { whole, fraction }, rest))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_table() {
        let cases: &[(&str, Duration)] = &[
            ("768h", Duration::from_secs(768 * 3600)),
            ("30m", Duration::from_secs(30 * 60)),
            ("45s", Duration::from_secs(45)),
            ("1h30m", Duration::from_secs(5400)),
            ("1h30m15s", Duration::from_secs(5415)),
            ("3600", Duration::from_secs(3600)),
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("7d", Duration::from_secs(7 * 86_400)),
            ("1.5h", Duration::from_secs(5400)),
            (".5s", Duration::from_millis(500)),
            ("250ms", Duration::from_millis(250)),
            ("10us", Duration::from_micros(10)),
            ("10µs", Duration::from_micros(10)),
            ("7ns", Duration::from_nanos(7)),
            ("  90s ", Duration::from_secs(90)),
            ("+5m", Duration::from_secs(300)),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_duration(input).as_ref(), Ok(expected), "{input:?}");
        }
    }

    #[test]
    fn bad_durations_say_why() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("-5s", "negative"),
            ("1h30", "missing its unit"),
            ("5x", "unknown unit"),
            ("5 m", "unknown unit"),
            ("h", "expected a number"),
            ("1.2.3s", "missing its unit"),
            ("99999999999999999999", "too large"),
            ("99999999999999999999h", "too large"),
        ];
        for (input, reason) in cases {
            let err = parse_duration(input).expect_err(input);
            assert!(err.to_string().contains(reason), "{input:?}: {err}");
        }
    }
}
