//! `custom_metadata`: user key/value strings on a key, with OpenBao's limits.
//!
//! Values are converted to strings the way Go's weak decoding does (`5` → `"5"`, `true` →
//! `"1"`); maps and lists are refused. These are descriptive labels, not secrets, so errors
//! may name the keys (OpenBao's do).

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use tresor_sdk::engine::{EngineError, EngineResult};

use crate::common::fields;

const MAX_KEYS: usize = 64;
const MAX_KEY_LEN: usize = 128;
const MAX_VALUE_LEN: usize = 512;
const PREFIX: &str = "custom_metadata validation failed";

/// Converts and validates a `custom_metadata` object. With `skip_nulls` (PATCH), `null`
/// entries are left out: they mean "remove this key", not "set it to empty".
pub(crate) fn parse(
    raw: &Map<String, Value>,
    skip_nulls: bool,
) -> EngineResult<BTreeMap<String, String>> {
    let mut parsed = BTreeMap::new();
    for (key, value) in raw {
        let text = match value {
            Value::Null if skip_nulls => continue,
            Value::Null => String::new(),
            other => fields::to_string(other).map_err(|_| {
                EngineError::InvalidRequest(format!(
                    "{PREFIX}: expected type 'string', got unconvertible type '{}'",
                    fields::kind(other)
                ))
            })?,
        };
        parsed.insert(key.clone(), text);
    }
    validate(&parsed)?;
    Ok(parsed)
}

/// OpenBao's checks, with all problems reported at once in go-multierror's format.
fn validate(map: &BTreeMap<String, String>) -> EngineResult<()> {
    let mut errors = Vec::new();
    if map.len() > MAX_KEYS {
        errors.push(format!(
            "{PREFIX}: payload must contain at most {MAX_KEYS} keys, provided {}",
            map.len()
        ));
        return Err(multierror(&errors));
    }
    for (key, value) in map {
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            errors.push(format!(
                "{PREFIX}: length of key {key:?} is {} but must be 0 < len(key) <= {MAX_KEY_LEN}",
                key.len()
            ));
        }
        if value.is_empty() || value.len() > MAX_VALUE_LEN {
            errors.push(format!(
                "{PREFIX}: length of value for key {key:?} is {} but must be 0 < len(value) <= {MAX_VALUE_LEN}",
                value.len()
            ));
        }
        if !printable(key) {
            errors.push(format!(
                "{PREFIX}: key {key:?} ({key}) contains unprintable characters"
            ));
        }
        if !printable(value) {
            errors.push(format!(
                "{PREFIX}: value for key {key:?} contains unprintable characters"
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(multierror(&errors))
    }
}

/// Go's `unicode.IsPrint` on every rune: no control characters, and no spaces but U+0020.
fn printable(s: &str) -> bool {
    s.chars()
        .all(|c| c == ' ' || !(c.is_control() || c.is_whitespace()))
}

/// go-multierror's `Error()` text, which OpenBao returns verbatim.
fn multierror(errors: &[String]) -> EngineError {
    let header = if errors.len() == 1 {
        "1 error occurred:".to_owned()
    } else {
        format!("{} errors occurred:", errors.len())
    };
    let body: String = errors.iter().map(|e| format!("\n\t* {e}")).collect();
    EngineError::InvalidRequest(format!("{header}{body}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn converts_scalars_weakly() {
        let parsed = parse(&map(json!({"n": 5, "b": true, "s": "x", "f": 1.5})), false).unwrap();
        assert_eq!(parsed.get("n").map(String::as_str), Some("5"));
        assert_eq!(parsed.get("b").map(String::as_str), Some("1"));
        assert_eq!(parsed.get("f").map(String::as_str), Some("1.5"));
    }

    #[test]
    fn refuses_what_openbao_refuses() {
        assert!(parse(&map(json!({"o": {"a": 1}})), false).is_err());
        let err = parse(&map(json!({"s": ""})), false)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "1 error occurred:\n\t* custom_metadata validation failed: length of value for key \"s\" is 0 but must be 0 < len(value) <= 512\n\n"
        );
        let many: Map<String, Value> = (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(parse(&many, false).is_err());
        assert!(parse(&map(json!({"k": "a\tb"})), false).is_err());
        assert!(parse(&map(json!({"k": null})), true).unwrap().is_empty());
    }
}
