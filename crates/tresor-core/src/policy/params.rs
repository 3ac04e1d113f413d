//! Request-parameter constraints (`required_parameters`, `allowed_parameters`,
//! `denied_parameters`), checked exactly in the order and with the quirks of OpenBao's
//! `AllowOperation`:
//!
//! - required names are lowercased and looked up in the request as-is;
//! - a request without parameters passes the allowed/denied checks;
//! - a `"*"` denied key denies any parameter, whatever its value list says;
//! - denied wins over allowed; an allowed map of just `"*"` allows everything;
//! - request keys are lowercased to look up constraints;
//! - an empty value list matches any value; string values match with a leading and/or trailing
//!   `*` glob (a lone `"*"` matches only `"*"`).
//!
//! One deliberate difference: OpenBao compares numbers by Go type (request numbers arrive as
//! `json.Number`, policy numbers as `int`/`float64`), so a number in a policy never matches a
//! number in a request — `denied_parameters = { n = [5] }` lets `n = 5` through. We compare
//! numbers by value.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::acl::DenyReason;
use super::model::Permissions;

pub(crate) fn check(
    permissions: &Permissions,
    data: Option<&Map<String, Value>>,
) -> Result<(), DenyReason> {
    for name in &permissions.required_parameters {
        let present = data.is_some_and(|data| data.contains_key(&*lower(name)));
        if !present {
            return Err(DenyReason::MissingRequiredParameter(name.clone()));
        }
    }
    let Some(data) = data.filter(|data| !data.is_empty()) else {
        return Ok(());
    };

    let denied = &permissions.denied_parameters;
    if !denied.is_empty() {
        if denied.contains_key("*") {
            return Err(DenyReason::DeniedParameter("*".to_owned()));
        }
        for (name, value) in data {
            if let Some(values) = denied.get(&*lower(name))
                && value_in_list(value, values)
            {
                return Err(DenyReason::DeniedParameter(name.clone()));
            }
        }
    }

    let allowed = &permissions.allowed_parameters;
    if allowed.is_empty() {
        return Ok(());
    }
    let allow_all = allowed.contains_key("*");
    if allow_all && allowed.len() == 1 {
        return Ok(());
    }
    for (name, value) in data {
        match allowed.get(&*lower(name)) {
            None if !allow_all => return Err(DenyReason::ParameterNotAllowed(name.clone())),
            Some(values) if !value_in_list(value, values) => {
                return Err(DenyReason::ParameterNotAllowed(name.clone()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Lowercases only when needed: request keys are almost always lowercase already.
fn lower(name: &str) -> Cow<'_, str> {
    if name.chars().any(char::is_uppercase) {
        Cow::Owned(name.to_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

/// An empty list stands for every value.
fn value_in_list(value: &Value, list: &[Value]) -> bool {
    list.is_empty() || list.iter().any(|item| value_matches(item, value))
}

fn value_matches(item: &Value, value: &Value) -> bool {
    match (item, value) {
        (Value::String(item), Value::String(value)) => globbed_match(item, value),
        (Value::Number(a), Value::Number(b)) => numbers_equal(a, b),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| deep_equal(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, x)| b.get(k).is_some_and(|y| deep_equal(x, y)))
        }
        (a, b) => a == b,
    }
}

/// Structural equality inside lists and objects: no globbing, numbers by value.
fn deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers_equal(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| deep_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, p)| y.get(k).is_some_and(|q| deep_equal(p, q)))
        }
        (x, y) => x == y,
    }
}

fn numbers_equal(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    match (a.as_i128(), b.as_i128()) {
        (Some(x), Some(y)) => x == y,
        _ => a.as_f64().zip(b.as_f64()).is_some_and(|(x, y)| x == y),
    }
}

/// Vault's `strutil.GlobbedStringsMatch`.
pub(crate) fn globbed_match(item: &str, value: &str) -> bool {
    if item.len() < 2 {
        return value == item;
    }
    match (item.strip_prefix('*'), item.strip_suffix('*')) {
        (Some(rest), Some(_)) => value.contains(rest.strip_suffix('*').unwrap_or(rest)),
        (Some(suffix), None) => value.ends_with(suffix),
        (None, Some(prefix)) => value.starts_with(prefix),
        (None, None) => value == item,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_like_vault() {
        assert!(globbed_match("foo-*", "foo-bar"));
        assert!(!globbed_match("foo-*", "xfoo-bar"));
        assert!(globbed_match("*-bar", "foo-bar"));
        assert!(globbed_match("*mid*", "amidb"));
        assert!(globbed_match("**", "anything"));
        assert!(globbed_match("*", "*"));
        assert!(!globbed_match("*", "anything"), "a lone * is literal");
        assert!(globbed_match("", ""));
        assert!(globbed_match("exact", "exact"));
        assert!(!globbed_match("exact", "exactly"));
    }

    #[test]
    fn values_match_by_type() {
        use serde_json::json;
        assert!(value_matches(&json!(false), &json!(false)));
        assert!(!value_matches(&json!(false), &json!("false")));
        assert!(value_matches(&json!(5), &json!(5.0)));
        assert!(!value_matches(&json!(5), &json!("5")));
        assert!(value_matches(&json!(null), &json!(null)));
        assert!(!value_matches(&json!("x"), &json!(null)));
        assert!(value_matches(&json!(["a", 1]), &json!(["a", 1.0])));
        assert!(
            !value_matches(&json!(["a*"]), &json!(["ab"])),
            "no globs inside lists"
        );
    }
}
