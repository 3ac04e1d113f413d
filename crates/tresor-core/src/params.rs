//! Decoding request parameters the way Vault's field types do: durations as `"1h"`, `"90s"`,
//! `"3600"` or `3600`; string lists as JSON arrays or comma-separated strings; JSON `null` as
//! absent.

use serde_json::{Map, Value};

use crate::error::{CoreError, CoreResult};

fn bad(key: &str, what: &str) -> CoreError {
    CoreError::InvalidRequest(format!("invalid value for {key:?}: expected {what}"))
}

/// The value of `key`, with JSON `null` treated as absent.
pub fn get<'a>(data: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    data.get(key).filter(|v| !v.is_null())
}

/// A Go-style duration string (`1h30m`, `45s`, `1.5h`, `500ms`, `7d`) or a number of seconds.
pub fn duration_secs(data: &Map<String, Value>, key: &str) -> CoreResult<Option<u64>> {
    match get(data, key) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad(key, "a non-negative duration")),
        Some(Value::String(s)) => parse_duration(s)
            .map(Some)
            .ok_or_else(|| bad(key, "a duration such as \"1h\"")),
        Some(_) => Err(bad(key, "a duration")),
    }
}

/// Parses `"90"`, `"1h30m"`, `"1.5h"`, `"250ms"`, `"7d"` into whole seconds (rounded down), through
/// the shared parser; `None` for a malformed or negative duration.
pub fn parse_duration(input: &str) -> Option<u64> {
    let nanos = tresor_sdk::duration::parse_str(input.trim()).ok()?;
    u64::try_from(tresor_sdk::duration::whole_seconds(nanos).ok()?).ok()
}

/// A list of strings: a JSON array of strings, or one comma-separated string.
pub fn string_list(data: &Map<String, Value>, key: &str) -> CoreResult<Option<Vec<String>>> {
    match get(data, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
        )),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad(key, "a list of strings"))
            })
            .collect::<CoreResult<Vec<_>>>()
            .map(Some),
        Some(_) => Err(bad(key, "a list of strings")),
    }
}

pub fn string(data: &Map<String, Value>, key: &str) -> CoreResult<Option<String>> {
    match get(data, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(bad(key, "a string")),
    }
}

/// A boolean, also accepting Go's string spellings.
pub fn boolean(data: &Map<String, Value>, key: &str) -> CoreResult<Option<bool>> {
    match get(data, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) => match s.as_str() {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(Some(true)),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(Some(false)),
            _ => Err(bad(key, "a boolean")),
        },
        Some(_) => Err(bad(key, "a boolean")),
    }
}

pub fn integer(data: &Map<String, Value>, key: &str) -> CoreResult<Option<i64>> {
    match get(data, key) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| bad(key, "an integer")),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| bad(key, "an integer")),
        Some(_) => Err(bad(key, "an integer")),
    }
}

/// A map of strings to strings (token `meta`, custom metadata).
pub fn string_map(
    data: &Map<String, Value>,
    key: &str,
) -> CoreResult<Option<std::collections::BTreeMap<String, String>>> {
    match get(data, key) {
        None => Ok(None),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(bad(key, "a map of strings")),
            })
            .collect::<CoreResult<_>>()
            .map(Some),
        Some(_) => Err(bad(key, "a map of strings")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_in_every_form_vault_accepts() {
        // The forms are tested in `tresor_sdk::duration`; here: whole seconds, no negatives.
        assert_eq!(parse_duration(" 1.5h "), Some(5400));
        assert_eq!(parse_duration("500ms"), Some(0));
        assert_eq!(parse_duration(""), Some(0));
        for bad in ["h", "1x", "-1h", "1h-", "abc"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        let data = json!({"a": 60, "b": "2m", "c": null, "d": [1], "e": -5})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(duration_secs(&data, "a").unwrap(), Some(60));
        assert_eq!(duration_secs(&data, "b").unwrap(), Some(120));
        assert_eq!(duration_secs(&data, "c").unwrap(), None);
        assert!(duration_secs(&data, "d").is_err());
        assert!(duration_secs(&data, "e").is_err());
    }

    #[test]
    fn string_lists_come_as_arrays_or_comma_strings() {
        let data = json!({"a": "x, y,,z", "b": ["p", "q"], "c": [1]})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(string_list(&data, "a").unwrap().unwrap(), ["x", "y", "z"]);
        assert_eq!(string_list(&data, "b").unwrap().unwrap(), ["p", "q"]);
        assert!(string_list(&data, "c").is_err());
    }
}
