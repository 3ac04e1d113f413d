//! Reading request fields the way Vault's framework does.
//!
//! Vault merges query parameters into the field data of GET/LIST/DELETE requests and converts
//! values weakly (`"5"` is an int, `"true"` a bool). JSON `null` counts as absent (hvac sends
//! nulls for every unset argument). Errors name the field and the expected type, never the
//! value: a value sent to the wrong field may be a secret.

use serde_json::{Map, Value};
use tresor_sdk::engine::{EngineError, EngineResult, Request};

use super::duration;

/// The field's value: from the body if present and not `null`, else from the query string.
pub(crate) fn get(req: &Request, name: &str) -> Option<Value> {
    match req.data.get(name) {
        Some(Value::Null) | None => req.query_value(name).map(|v| Value::String(v.to_owned())),
        Some(v) => Some(v.clone()),
    }
}

/// Whether the field was sent with any value, `null` included (PATCH treats `null` as
/// "reset", so it must see it).
pub(crate) fn present_for_patch(req: &Request, name: &str) -> bool {
    req.data.contains_key(name) || req.query_value(name).is_some()
}

/// How a conversion error is worded: OpenBao prefixes errors for fields it validates up front
/// (query parameters such as `version`, `limit`, `depth`, and `versions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wording {
    Body,
    Validated,
}

pub(crate) fn conversion_error(name: &str, reason: &str, wording: Wording) -> EngineError {
    let prefix = match wording {
        Wording::Body => "",
        Wording::Validated => "Field validation failed: ",
    };
    EngineError::InvalidRequest(format!(
        "{prefix}error converting input for field \"{name}\": {reason}"
    ))
}

pub(crate) fn int(req: &Request, name: &str, wording: Wording) -> EngineResult<Option<i64>> {
    get(req, name)
        .map(|v| to_int(&v).map_err(|r| conversion_error(name, &r, wording)))
        .transpose()
}

pub(crate) fn bool(req: &Request, name: &str) -> EngineResult<Option<bool>> {
    get(req, name)
        .map(|v| to_bool(&v).map_err(|r| conversion_error(name, &r, Wording::Body)))
        .transpose()
}

pub(crate) fn string(req: &Request, name: &str) -> EngineResult<Option<String>> {
    get(req, name)
        .map(|v| to_string(&v).map_err(|r| conversion_error(name, &r, Wording::Validated)))
        .transpose()
}

pub(crate) fn map(req: &Request, name: &str) -> EngineResult<Option<Map<String, Value>>> {
    get(req, name)
        .map(|v| match v {
            Value::Object(m) => Ok(m),
            other => Err(conversion_error(
                name,
                &format!("expected a map, got {}", kind(&other)),
                Wording::Body,
            )),
        })
        .transpose()
}

/// A duration in whole seconds; `allow_negative` is false for the fields Vault declares as
/// `TypeDurationSecond` (negative values are refused), true for `TypeSignedDurationSecond`.
pub(crate) fn duration(
    req: &Request,
    name: &str,
    allow_negative: bool,
) -> EngineResult<Option<i64>> {
    get(req, name)
        .map(|v| {
            to_duration(&v, allow_negative).map_err(|r| conversion_error(name, &r, Wording::Body))
        })
        .transpose()
}

pub(crate) fn to_duration(v: &Value, allow_negative: bool) -> Result<i64, String> {
    let secs = duration::parse_seconds(v)?;
    if secs < 0 && !allow_negative {
        return Err(format!("cannot provide negative value '{secs}'"));
    }
    Ok(secs)
}

/// A comma-separated or array list of ints (`TypeCommaIntSlice`): `[1, "2"]`, `"1,2"`, `3`.
pub(crate) fn int_slice(req: &Request, name: &str) -> EngineResult<Vec<i64>> {
    let Some(value) = get(req, name) else {
        return Ok(Vec::new());
    };
    let err = |r: String| conversion_error(name, &r, Wording::Validated);
    match &value {
        Value::Array(items) => items.iter().map(|i| to_int(i).map_err(err)).collect(),
        Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<i64>()
                    .map_err(|_| err("cannot parse value as 'int'".into()))
            })
            .collect(),
        other => to_int(other).map(|i| vec![i]).map_err(err),
    }
}

/// `TypeCommaStringSlice`: a JSON array of strings (numbers printed as Go would), or one
/// string split at commas; items are trimmed and empty ones dropped. `None` when absent.
#[allow(dead_code, reason = "the auth methods that use it land next")]
pub(crate) fn string_list(req: &Request, name: &str) -> EngineResult<Option<Vec<String>>> {
    let Some(value) = get(req, name) else {
        return Ok(None);
    };
    let err = |r: String| conversion_error(name, &r, Wording::Body);
    let items: Vec<String> = match &value {
        Value::Array(items) => items
            .iter()
            .map(|i| to_string(i).map_err(err))
            .collect::<EngineResult<_>>()?,
        Value::String(s) => s.split(',').map(str::to_owned).collect(),
        other => vec![to_string(other).map_err(err)?],
    };
    Ok(Some(
        items
            .into_iter()
            .map(|i| i.trim().to_owned())
            .filter(|i| !i.is_empty())
            .collect(),
    ))
}

/// `TypeInt`: an integral JSON number, or a string holding one. Fractions are refused, as Go's
/// `strconv.ParseInt` on a `json.Number` refuses them.
pub(crate) fn to_int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| "cannot parse value as 'int'".to_owned()),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| "cannot parse value as 'int'".to_owned()),
        Value::Bool(b) => Ok(i64::from(*b)),
        other => Err(format!("expected an int, got {}", kind(other))),
    }
}

/// Go's `mapstructure.WeakDecode` into an int, used for KV's `options.cas`: floats truncate,
/// an empty string is 0, bools are 0/1.
pub(crate) fn to_weak_int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && f.abs() < 9.2e18)
                    .map(|f| {
                        #[allow(clippy::cast_possible_truncation, reason = "range checked")]
                        let i = f.trunc() as i64;
                        i
                    })
            })
            .ok_or_else(|| "number out of range".to_owned()),
        Value::String(s) if s.is_empty() => Ok(0),
        Value::String(s) => s.parse().map_err(|_| "not an int".to_owned()),
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::Null => Ok(0),
        other => Err(format!("expected an int, got {}", kind(other))),
    }
}

/// `TypeBool`: a bool, a string `strconv.ParseBool` accepts, or a number (non-zero is true).
pub(crate) fn to_bool(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
            _ => Err("cannot parse value as 'bool'".to_owned()),
        },
        Value::Number(n) => Ok(n.as_f64().is_some_and(|f| f != 0.0)),
        other => Err(format!("expected a bool, got {}", kind(other))),
    }
}

/// `TypeString`: strings, and numbers/bools printed as Go would.
pub(crate) fn to_string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(if *b { "1" } else { "0" }.to_owned()),
        other => Err(format!("expected a string, got {}", kind(other))),
    }
}

/// The JSON type of a value, for error messages that must not include the value itself.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn weak_conversions() {
        assert_eq!(to_int(&json!("4")), Ok(4));
        assert!(to_int(&json!(1.5)).is_err());
        assert_eq!(to_weak_int(&json!(2.7)), Ok(2));
        assert_eq!(to_weak_int(&json!("")), Ok(0));
        assert!(to_weak_int(&json!("x")).is_err());
        assert_eq!(to_bool(&json!("true")), Ok(true));
        assert_eq!(to_bool(&json!(0)), Ok(false));
        assert!(to_bool(&json!("yes")).is_err());
        assert_eq!(to_string(&json!(true)), Ok("1".into()));
        assert_eq!(to_string(&json!(1.5)), Ok("1.5".into()));
    }
}
