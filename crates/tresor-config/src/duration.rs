//! Durations as Vault writes them.
//!
//! Vault (`parseutil.ParseDurationSecond`) takes a bare integer as seconds and anything else as
//! a Go duration ("768h", "1h30m", "1.5h", "250ms") plus its own `<n>d` for days. The config
//! accepts the same (the shared parser in `tresor_sdk::duration`), minus negative values, which
//! make no sense for TTLs, and with surrounding blanks ignored.

use std::time::Duration;

use tresor_sdk::duration::{self, DurationError};

/// A duration string we could not read; the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: {reason}; expected e.g. \"768h\", \"1h30m\", \"45s\" or a number of seconds"
)]
pub struct InvalidDuration {
    pub input: String,
    pub reason: &'static str,
}

/// Parses `"768h"`, `"30m"`, `"45s"`, `"1h30m"`, `"1.5h"`, `"7d"` or `"3600"` (seconds), through
/// the one shared parser ([`tresor_sdk::duration`]); surrounding blanks are ignored.
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
    let nanos = duration::parse_str(text).map_err(|e| fail(reason(e)))?;
    duration::to_std(nanos).map_err(|e| fail(reason(e)))
}

fn reason(error: DurationError) -> &'static str {
    match error {
        DurationError::Empty => "it is empty",
        DurationError::ExpectedNumber => "expected a number",
        DurationError::MissingUnit => "a number is missing its unit (h, m, s, ...)",
        DurationError::UnknownUnit => "unknown unit; use d, h, m, s, ms, us or ns",
        DurationError::OutOfRange => "it is too large",
        DurationError::WrongType => "expected a duration",
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    /// The forms themselves are tested once, in `tresor_sdk::duration`; this checks what the
    /// config adds: blanks ignored, the result as a `Duration`.
    #[test]
    fn config_durations() {
        let cases: &[(&str, Duration)] = &[
            ("768h", Duration::from_secs(768 * 3600)),
            ("3600", Duration::from_secs(3600)),
            ("7d", Duration::from_secs(7 * 86_400)),
            ("250ms", Duration::from_millis(250)),
            ("  90s ", Duration::from_secs(90)),
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
