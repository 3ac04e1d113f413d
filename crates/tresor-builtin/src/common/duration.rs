//! Engine fields that hold a duration, read through the shared parser (`tresor_sdk::duration`).
//!
//! Accepted: a JSON number of seconds (fractions truncated), a string of whole seconds
//! (`"90"`), a day count (`"2d"`), or a Go duration string (`"1h30m"`, `"1.5h"`, `"500ms"`).
//! The result is whole seconds, truncated toward zero, as Vault's `TypeDurationSecond` stores.

use serde_json::Value;
use tresor_sdk::duration::{self, DurationError};

/// Parses a duration value into whole seconds. The error says what was wrong without
/// echoing the input (callers add the field name).
pub(crate) fn parse_seconds(value: &Value) -> Result<i64, String> {
    let trimmed;
    let value = match value {
        Value::String(s) if s.trim().len() != s.len() => {
            trimmed = Value::String(s.trim().to_owned());
            &trimmed
        }
        other => other,
    };
    duration::parse_value(value)
        .and_then(duration::whole_seconds)
        .map_err(|e| {
            match e {
                DurationError::OutOfRange => "duration out of range",
                DurationError::WrongType => "expected a duration",
                _ => "invalid duration",
            }
            .to_owned()
        })
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
