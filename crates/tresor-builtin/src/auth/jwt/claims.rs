//! Claims: looking one up (a plain name, or a JSON pointer when it starts with `/`), matching
//! a role's `bound_claims` (exact values or globs, a scalar or a list on either side),
//! `claim_mappings` into metadata, the `groups_claim` list, and the user claim.
//!
//! Every failure carries OpenBao's wording (the summary) and a detail naming the claim and
//! the offending value. Claim values are identity data (a repository, a ref, a subject), never
//! credentials, but they come from the caller: details quote them escaped and shortened.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A claim looked up as OpenBao's `getClaim` does: `/a/b` is a JSON pointer, anything else a
/// top-level name. A single-string `aud` reads as a one-element list.
pub(crate) fn get(claims: &Map<String, Value>, claim: &str) -> Option<Value> {
    let value = if claim.starts_with('/') {
        pointer(claims, claim)?
    } else {
        claims.get(claim)?
    };
    if value.is_null() {
        return None;
    }
    if claim == "aud"
        && let Value::String(s) = value
    {
        return Some(Value::Array(vec![Value::String(s.clone())]));
    }
    Some(value.clone())
}

/// RFC 6901 on the claims object (`~1` is `/`, `~0` is `~`); array indexes are decimal.
fn pointer<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('/').skip(1);
    let first = unescape(parts.next()?);
    let mut current = claims.get(&first)?;
    for part in parts {
        let key = unescape(part);
        current = match current {
            Value::Object(m) => m.get(&key)?,
            Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

fn unescape(part: &str) -> String {
    part.replace("~1", "/").replace("~0", "~")
}

/// A claim or bound value reduced to what OpenBao compares: strings, bools, and numbers as
/// Go's `getClaim` renders a JSON number from a token (truncated to an integer).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scalar {
    Str(String),
    Bool(bool),
    Num(String),
}

impl Scalar {
    fn from_claim(v: &Value) -> Option<Scalar> {
        Some(match v {
            Value::String(s) => Scalar::Str(s.clone()),
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Number(n) => Scalar::Num(match n.as_i64() {
                Some(i) => i.to_string(),
                #[allow(clippy::cast_possible_truncation, reason = "Go's int(float64)")]
                None => (n.as_f64().unwrap_or(0.0).trunc() as i64).to_string(),
            }),
            _ => return None,
        })
    }

    fn from_bound(v: &Value) -> Option<Scalar> {
        Some(match v {
            Value::String(s) => Scalar::Str(s.clone()),
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Number(n) => Scalar::Num(n.to_string()),
            _ => return None,
        })
    }

    fn show(&self) -> String {
        match self {
            Scalar::Str(s) => shown(s),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Num(n) => n.clone(),
        }
    }
}

/// OpenBao's `normalizeList`: a scalar is a one-element list, a list stays one; `None` for
/// maps and nulls.
fn list(v: &Value, scalar: fn(&Value) -> Option<Scalar>) -> Option<Vec<Option<Scalar>>> {
    match v {
        Value::Array(items) => Some(items.iter().map(scalar).collect()),
        Value::String(_) | Value::Bool(_) | Value::Number(_) => Some(vec![scalar(v)]),
        _ => None,
    }
}

/// A value the caller sent, fit for a log line and an error detail: control characters
/// escaped, at most 128 characters.
pub(crate) fn shown(value: &str) -> String {
    let escaped: String = value.chars().flat_map(char::escape_debug).collect();
    if escaped.chars().count() > 128 {
        let cut: String = escaped.chars().take(128).collect();
        format!("{cut}…")
    } else {
        escaped
    }
}

/// A failed claim check: OpenBao's message and the detail naming the claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClaimError {
    pub(crate) summary: String,
    pub(crate) detail: String,
}

impl ClaimError {
    fn new(summary: String, detail: String) -> Self {
        Self { summary, detail }
    }
}

/// Go's `%q` for the claim names OpenBao quotes in its errors.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Checks every `bound_claims` entry against the token's claims (OpenBao's
/// `validateBoundClaims`): each bound claim must be present and one of its values must match
/// one of the claim's values. `glob` makes `*` match any run of characters.
pub(crate) fn check_bound(
    bound: &Map<String, Value>,
    glob: bool,
    claims: &Map<String, Value>,
) -> Result<(), ClaimError> {
    let summary = |inner: String| format!("error validating claims: {inner}");
    for (claim, expected) in bound {
        let Some(actual) = get(claims, claim) else {
            return Err(ClaimError::new(
                summary(format!("claim {} is missing", go_quote(claim))),
                format!(
                    "claim '{}' is missing from the token, and bound_claims requires it",
                    shown(claim)
                ),
            ));
        };
        let Some(actual_values) = list(&actual, Scalar::from_claim) else {
            return Err(ClaimError::new(
                summary("received claim is not a string, bool, int or list".to_owned()),
                format!(
                    "claim '{}' is a {}, not a string, bool, number or list",
                    shown(claim),
                    crate::common::fields::kind(&actual)
                ),
            ));
        };
        let Some(expected_values) = list(expected, Scalar::from_bound) else {
            return Err(ClaimError::new(
                summary("bound claim is not a string, bool, int or list".to_owned()),
                format!(
                    "bound_claims['{}'] is not a string, bool, number or list",
                    shown(claim)
                ),
            ));
        };
        let found = expected_values.iter().flatten().any(|exp| {
            actual_values.iter().flatten().any(|act| match (exp, act) {
                (Scalar::Str(pattern), Scalar::Str(value)) if glob => glob_match(pattern, value),
                _ if glob => false,
                (e, a) => e == a,
            })
        });
        if !found {
            let actual_shown: Vec<String> = actual_values
                .iter()
                .map(|v| {
                    v.as_ref()
                        .map_or_else(|| "<not a scalar>".to_owned(), Scalar::show)
                })
                .collect();
            let expected_shown: Vec<String> = expected_values
                .iter()
                .map(|v| {
                    v.as_ref()
                        .map_or_else(|| "<not a scalar>".to_owned(), Scalar::show)
                })
                .collect();
            let value = if actual_shown.len() == 1 {
                format!("value '{}'", actual_shown.concat())
            } else {
                format!("values [{}]", actual_shown.join(", "))
            };
            return Err(ClaimError::new(
                summary(format!(
                    "claim {} does not match any associated bound claim values",
                    go_quote(claim)
                )),
                format!(
                    "claim '{}' {value} does not match bound_claims{} [{}]",
                    shown(claim),
                    if glob { " (glob)" } else { "" },
                    expected_shown.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// `ryanuber/go-glob`: `*` matches any run of characters (none included); nothing else is
/// special.
pub(crate) fn glob_match(pattern: &str, subject: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == subject;
    };
    if parts.len() == 1 {
        return pattern == subject;
    }
    let Some(mut rest) = subject.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = rest.get(i + part.len()..).unwrap_or(""),
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// The identity claims of a login: the alias name (the user claim), the metadata from
/// `claim_mappings` plus `role`, and the group names from `groups_claim`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) user: String,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) groups: Vec<String>,
}

/// OpenBao's `createIdentity` for a role.
pub(crate) fn identity(
    claims: &Map<String, Value>,
    role_name: &str,
    user_claim: &str,
    user_claim_json_pointer: bool,
    mappings: &BTreeMap<String, String>,
    groups_claim: &str,
) -> Result<Identity, ClaimError> {
    let raw = if user_claim_json_pointer {
        get(claims, user_claim)
    } else {
        claims.get(user_claim).filter(|v| !v.is_null()).cloned()
    };
    let Some(raw) = raw else {
        return Err(ClaimError::new(
            format!("claim {} not found in token", go_quote(user_claim)),
            format!("user_claim '{}' is not in the token", shown(user_claim)),
        ));
    };
    let Value::String(user) = raw else {
        return Err(ClaimError::new(
            format!(
                "claim {} could not be converted to string",
                go_quote(user_claim)
            ),
            format!(
                "user_claim '{}' is a {}, not a string",
                shown(user_claim),
                crate::common::fields::kind(&raw)
            ),
        ));
    };
    let mut metadata = BTreeMap::new();
    for (source, target) in mappings {
        if let Some(value) = get(claims, source) {
            let Value::String(s) = value else {
                return Err(ClaimError::new(
                    format!("error converting claim '{source}' to string"),
                    format!(
                        "claim_mappings source '{}' is a {}, not a string",
                        shown(source),
                        crate::common::fields::kind(&value)
                    ),
                ));
            };
            metadata.insert(target.clone(), s);
        }
    }
    metadata.insert("role".to_owned(), role_name.to_owned());
    let mut groups = Vec::new();
    if !groups_claim.is_empty() {
        let Some(raw) = get(claims, groups_claim) else {
            return Err(ClaimError::new(
                format!(
                    "failed to fetch groups: {} claim not found in token",
                    go_quote(groups_claim)
                ),
                format!("groups_claim '{}' is not in the token", shown(groups_claim)),
            ));
        };
        let items = match &raw {
            Value::Array(items) => items.clone(),
            Value::String(_) | Value::Bool(_) | Value::Number(_) => vec![raw.clone()],
            _ => {
                return Err(ClaimError::new(
                    format!(
                        "{} claim could not be converted to string list",
                        go_quote(groups_claim)
                    ),
                    format!(
                        "groups_claim '{}' is a {}, not a list of strings",
                        shown(groups_claim),
                        crate::common::fields::kind(&raw)
                    ),
                ));
            }
        };
        for item in items {
            let Value::String(group) = item else {
                return Err(ClaimError::new(
                    "value in groups claim could not be parsed as string".to_owned(),
                    format!(
                        "groups_claim '{}' holds a {}, not a string",
                        shown(groups_claim),
                        crate::common::fields::kind(&item)
                    ),
                ));
            };
            if !group.is_empty() {
                groups.push(group);
            }
        }
    }
    Ok(Identity {
        user,
        metadata,
        groups,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn globs_match_like_go_glob() {
        assert!(glob_match("*", ""));
        assert!(glob_match("refs/heads/*", "refs/heads/main"));
        assert!(glob_match("refs/*/main", "refs/heads/main"));
        assert!(!glob_match("refs/heads/*", "refs/tags/v1"));
        assert!(glob_match("*-prod", "app-prod"));
        assert!(glob_match("a*b*c", "abc"));
        assert!(!glob_match("a*b*c", "acb"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(!glob_match("", "x"));
    }

    #[test]
    fn string_bound_claims_match_scalars_and_lists() {
        let c = claims(json!({"ref": "refs/heads/main", "teams": ["a", "b"], "n": 42, "ok": true}));
        let bound = |v: Value| v.as_object().cloned().unwrap();
        assert!(check_bound(&bound(json!({"ref": "refs/heads/main"})), false, &c).is_ok());
        assert!(check_bound(&bound(json!({"ref": ["x", "refs/heads/main"]})), false, &c).is_ok());
        assert!(check_bound(&bound(json!({"teams": "b"})), false, &c).is_ok());
        assert!(check_bound(&bound(json!({"n": 42, "ok": true})), false, &c).is_ok());
        let err = check_bound(&bound(json!({"ref": ["refs/heads/dev"]})), false, &c).unwrap_err();
        assert_eq!(
            err.summary,
            "error validating claims: claim \"ref\" does not match any associated bound claim values"
        );
        assert_eq!(
            err.detail,
            "claim 'ref' value 'refs/heads/main' does not match bound_claims [refs/heads/dev]"
        );
        let err = check_bound(&bound(json!({"workflow": "ci"})), false, &c).unwrap_err();
        assert_eq!(
            err.summary,
            "error validating claims: claim \"workflow\" is missing"
        );
        assert!(err.detail.contains("'workflow' is missing"));
        // A string is not a glob unless the role says so.
        assert!(check_bound(&bound(json!({"ref": "refs/heads/*"})), false, &c).is_err());
    }

    #[test]
    fn glob_bound_claims_match_patterns() {
        let c = claims(json!({"repository": "org/app", "ref": "refs/heads/release-1"}));
        let bound =
            json!({"repository": "org/*", "ref": ["refs/heads/main", "refs/heads/release-*"]});
        assert!(check_bound(bound.as_object().unwrap(), true, &c).is_ok());
        let bound = json!({"repository": "other/*"});
        let err = check_bound(bound.as_object().unwrap(), true, &c).unwrap_err();
        assert_eq!(
            err.detail,
            "claim 'repository' value 'org/app' does not match bound_claims (glob) [other/*]"
        );
    }

    #[test]
    fn json_pointers_reach_nested_claims() {
        let c = claims(json!({"ctx": {"repo/x": {"ref": "main"}, "list": ["a", "b"]}}));
        assert_eq!(get(&c, "/ctx/repo~1x/ref"), Some(json!("main")));
        assert_eq!(get(&c, "/ctx/list/1"), Some(json!("b")));
        assert_eq!(get(&c, "/ctx/missing"), None);
        assert_eq!(get(&claims(json!({"aud": "x"})), "aud"), Some(json!(["x"])));
    }

    #[test]
    fn claim_mappings_and_groups_build_the_identity() {
        let c = claims(json!({
            "sub": "repo:org/app", "repository": "org/app", "ctx": {"env": "prod"},
            "groups": ["ops", "", "dev"], "n": 3
        }));
        let mappings = BTreeMap::from([
            ("repository".to_owned(), "repo".to_owned()),
            ("/ctx/env".to_owned(), "env".to_owned()),
            ("absent".to_owned(), "nothing".to_owned()),
        ]);
        let id = identity(&c, "ci", "sub", false, &mappings, "groups").unwrap();
        assert_eq!(id.user, "repo:org/app");
        assert_eq!(
            id.metadata,
            BTreeMap::from([
                ("repo".to_owned(), "org/app".to_owned()),
                ("env".to_owned(), "prod".to_owned()),
                ("role".to_owned(), "ci".to_owned()),
            ])
        );
        assert_eq!(id.groups, ["ops", "dev"]);
        let err = identity(&c, "ci", "email", false, &BTreeMap::new(), "").unwrap_err();
        assert_eq!(err.summary, "claim \"email\" not found in token");
        let err = identity(&c, "ci", "n", false, &BTreeMap::new(), "").unwrap_err();
        assert_eq!(err.summary, "claim \"n\" could not be converted to string");
        let bad = BTreeMap::from([("n".to_owned(), "num".to_owned())]);
        let err = identity(&c, "ci", "sub", false, &bad, "").unwrap_err();
        assert_eq!(err.summary, "error converting claim 'n' to string");
        let err = identity(&c, "ci", "sub", false, &BTreeMap::new(), "teams").unwrap_err();
        assert_eq!(
            err.summary,
            "failed to fetch groups: \"teams\" claim not found in token"
        );
        // The user claim is a plain name unless user_claim_json_pointer is set.
        assert!(identity(&c, "ci", "/ctx/env", false, &BTreeMap::new(), "").is_err());
        assert_eq!(
            identity(&c, "ci", "/ctx/env", true, &BTreeMap::new(), "")
                .unwrap()
                .user,
            "prod"
        );
    }

    #[test]
    fn shown_values_are_escaped_and_bounded() {
        assert_eq!(shown("a\nb"), "a\\nb");
        assert_eq!(shown(&"x".repeat(200)).chars().count(), 129);
    }
}
