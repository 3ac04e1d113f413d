//! Turning a secret's JSON data into Secret values the way ESO's Vault provider does:
//!
//! - `remoteRef.property` unset: the whole secret, JSON-encoded.
//! - set: the top-level key of that exact name first (so `a.b` may be a key with a dot), else
//!   a path of keys separated by dots (`\.` for a literal dot; a number indexes an array), as
//!   gjson reads it. A string value is used as is; numbers and booleans as their text; objects
//!   and arrays JSON-encoded; null as empty.
//! - `dataFrom.extract`: every top-level key (of the object at `property`, when set), each
//!   value typed as above.
//!
//! JSON is encoded as Go's `encoding/json` does (keys sorted, `<`, `>`, `&` escaped), so the
//! bytes match what ESO would write. Errors name the property, never a value.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Value};
use tresor_sdk::secret::SecretBytes;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("property {0:?} not found")]
    MissingProperty(String),
    #[error("property {0:?} is not an object (dataFrom.extract needs key/value pairs)")]
    NotAnObject(String),
}

/// `remoteRef.property` of `data`.
pub fn property(
    data: &Map<String, Value>,
    property: Option<&str>,
) -> Result<SecretBytes, ExtractError> {
    let property = property.filter(|p| !p.is_empty());
    let Some(property) = property else {
        let mut out = String::new();
        go_json_object(data, &mut out);
        return Ok(SecretBytes::new(out.into_bytes()));
    };
    if let Some(v) = data.get(property) {
        return Ok(typed(v));
    }
    lookup(data, property)
        .map(typed)
        .ok_or_else(|| ExtractError::MissingProperty(property.to_owned()))
}

/// `dataFrom.extract` of `data`: key → value.
pub fn flatten(
    data: &Map<String, Value>,
    property: Option<&str>,
) -> Result<BTreeMap<String, SecretBytes>, ExtractError> {
    let object = match property.filter(|p| !p.is_empty()) {
        None => data,
        Some(p) => match data.get(p).or_else(|| lookup(data, p)) {
            Some(Value::Object(m)) => m,
            Some(_) => return Err(ExtractError::NotAnObject(p.to_owned())),
            None => return Err(ExtractError::MissingProperty(p.to_owned())),
        },
    };
    Ok(object.iter().map(|(k, v)| (k.clone(), typed(v))).collect())
}

/// A value as Secret bytes: strings as they are, the rest as their JSON (null: empty).
pub fn typed(v: &Value) -> SecretBytes {
    match v {
        Value::String(s) => SecretBytes::copy_from(s.as_bytes()),
        Value::Null => SecretBytes::new(Vec::new()),
        other => {
            let mut out = String::new();
            go_json(other, &mut out);
            SecretBytes::new(out.into_bytes())
        }
    }
}

/// A gjson-style dotted path.
fn lookup<'a>(data: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut segments = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            '.' => segments.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    segments.push(current);
    let (first, rest) = segments.split_first()?;
    let mut value = data.get(first.as_str())?;
    for segment in rest {
        value = match value {
            Value::Object(m) => m.get(segment.as_str())?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// Go's `encoding/json` encoding.
pub fn go_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => go_json_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json(item, out);
            }
            out.push(']');
        }
        Value::Object(m) => go_json_object(m, out),
    }
}

fn go_json_object(m: &Map<String, Value>, out: &mut String) {
    let sorted: BTreeMap<&String, &Value> = m.iter().collect();
    out.push('{');
    for (i, (k, v)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        go_json_string(k, out);
        out.push(':');
        go_json(v, out);
    }
    out.push('}');
}

fn go_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use serde_json::json;

    fn data(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn text(b: SecretBytes) -> String {
        String::from_utf8(b.expose().to_vec()).unwrap()
    }

    #[test]
    fn property_forms() {
        let d = data(json!({
            "value": "ghp_x",
            "a.b": "literal-dot",
            "a": {"b": "nested", "n": 3, "list": ["x", "y"], "obj": {"z": true, "<": 1}},
            "port": 5432,
            "on": false,
            "none": null
        }));
        assert_eq!(text(property(&d, Some("value")).unwrap()), "ghp_x");
        // An exact top-level key wins over the path.
        assert_eq!(text(property(&d, Some("a.b")).unwrap()), "literal-dot");
        assert_eq!(text(property(&d, Some("a.n")).unwrap()), "3");
        assert_eq!(text(property(&d, Some("a.list.1")).unwrap()), "y");
        assert_eq!(
            text(property(&d, Some("a.obj")).unwrap()),
            r#"{"\u003c":1,"z":true}"#
        );
        assert_eq!(text(property(&d, Some("port")).unwrap()), "5432");
        assert_eq!(text(property(&d, Some("on")).unwrap()), "false");
        assert_eq!(text(property(&d, Some("none")).unwrap()), "");
        assert_eq!(
            property(&d, Some("a.missing")).unwrap_err(),
            ExtractError::MissingProperty("a.missing".into())
        );
        assert_eq!(
            property(&d, Some("value.deeper")).unwrap_err().to_string(),
            "property \"value.deeper\" not found"
        );
    }

    #[test]
    fn escaped_dots_name_one_key() {
        let d = data(json!({"tls": {"ca.crt": "PEM"}}));
        assert_eq!(text(property(&d, Some(r"tls.ca\.crt")).unwrap()), "PEM");
    }

    #[test]
    fn no_property_is_the_whole_secret_as_go_json() {
        let d = data(json!({"username": "u", "password": "p&q", "a": 1}));
        assert_eq!(
            text(property(&d, None).unwrap()),
            r#"{"a":1,"password":"p\u0026q","username":"u"}"#
        );
    }

    #[test]
    fn flatten_types_values_like_eso() {
        let d = data(json!({"user": "u", "port": 5432, "tags": ["a"], "cfg": {"x": {"y": 1}}}));
        let flat = flatten(&d, None).unwrap();
        let got: BTreeMap<_, _> = flat.into_iter().map(|(k, v)| (k, text(v))).collect();
        assert_eq!(got["user"], "u");
        assert_eq!(got["port"], "5432");
        assert_eq!(got["tags"], r#"["a"]"#);
        assert_eq!(got["cfg"], r#"{"x":{"y":1}}"#);
        let inner = flatten(&d, Some("cfg")).unwrap();
        assert_eq!(text(inner.into_iter().next().unwrap().1), r#"{"y":1}"#);
        assert_eq!(
            flatten(&d, Some("user")).unwrap_err(),
            ExtractError::NotAnObject("user".into())
        );
        assert_eq!(
            flatten(&d, Some("nope")).unwrap_err(),
            ExtractError::MissingProperty("nope".into())
        );
    }
}
