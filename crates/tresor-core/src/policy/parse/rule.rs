//! One path block's entries to a [`PathRule`], in the order and with the quirks of OpenBao's
//! `parsePaths`: keys are checked first, then types, then the pattern, then the legacy
//! `policy` and the capabilities — and a rule that (explicitly or via `policy = "deny"`)
//! denies stops there, so its parameter and TTL settings are neither validated nor kept.

use serde_json::Value;

use super::{Entry, RawRule, describe, values};
use crate::policy::error::{PolicyError, PolicyErrorKind};
use crate::policy::model::{Capabilities, Capability, ParameterMap, PathRule, Permissions};

/// Keys of a path block that Tresor implements.
const KEYS: &[&str] = &[
    "capabilities",
    "policy",
    "comment",
    "required_parameters",
    "allowed_parameters",
    "denied_parameters",
    "min_wrapping_ttl",
    "max_wrapping_ttl",
    "expiration",
];

/// Keys OpenBao accepts whose effect Tresor lacks. Each restricts access (MFA, control-group
/// approval, page sizes, list filtering), so ignoring one would widen what the rule grants.
const UNSUPPORTED: &[&str] = &[
    "mfa_methods",
    "control_group",
    "pagination_limit",
    "list_scan_response_keys_filter_path",
];

/// `Err` for a key a path block may not contain.
pub(super) fn check_key(key: &str, place: &str, line: Option<usize>) -> Result<(), PolicyError> {
    if KEYS.contains(&key) {
        Ok(())
    } else if UNSUPPORTED.contains(&key) {
        Err(PolicyError::new(
            line,
            PolicyErrorKind::Unsupported {
                key: key.to_owned(),
                place: place.to_owned(),
            },
        ))
    } else {
        Err(PolicyError::new(
            line,
            PolicyErrorKind::UnknownKey {
                key: key.to_owned(),
                place: place.to_owned(),
            },
        ))
    }
}

/// The typed fields of a path block, before interpretation.
#[derive(Default)]
struct Fields {
    capabilities: Vec<(String, Option<usize>)>,
    policy: Option<(String, Option<usize>)>,
    required: Vec<String>,
    allowed: Option<(ParameterMap, Option<usize>)>,
    denied: Option<(ParameterMap, Option<usize>)>,
    min_ttl: Option<(Value, Option<usize>)>,
    max_ttl: Option<(Value, Option<usize>)>,
    expiration: Option<(String, Option<usize>)>,
}

pub(super) fn build(raw: RawRule) -> Result<PathRule, PolicyError> {
    let RawRule {
        pattern: key,
        line,
        entries,
    } = raw;
    let place = format!("in path {key:?}");
    for entry in &entries {
        check_key(&entry.key, &place, entry.line)?;
    }
    let templated = values::templated(&key).map_err(|()| {
        PolicyError::new(
            line,
            PolicyErrorKind::UnbalancedTemplate {
                pattern: key.clone(),
            },
        )
    })?;
    let fields = read_fields(entries, &place)?;

    let expiration = match &fields.expiration {
        Some((text, at)) if !text.is_empty() => {
            Some(values::absolute_time(text).ok_or_else(|| {
                invalid(
                    *at,
                    &key,
                    "expiration",
                    "expected an RFC 3339 time".to_owned(),
                )
            })?)
        }
        _ => None,
    };

    // Paths in Vault start after the `/` of the API path.
    let pattern = key.strip_prefix('/').unwrap_or(&key).to_owned();
    if pattern.contains("+*") {
        return Err(PolicyError::new(
            line,
            PolicyErrorKind::PlusStar { pattern },
        ));
    }

    // The legacy `policy` adds its capability set after the listed ones; `deny` replaces them.
    let mut names = fields.capabilities;
    if let Some((legacy, at)) = fields.policy {
        let implied: &[&str] = match legacy.as_str() {
            "deny" => {
                names.clear();
                &["deny"]
            }
            "read" => &["read", "list"],
            "write" => &["create", "read", "update", "delete", "list"],
            "sudo" => &["create", "read", "update", "delete", "list", "sudo"],
            _ => {
                return Err(PolicyError::new(
                    at,
                    PolicyErrorKind::InvalidLegacyPolicy {
                        pattern: key,
                        value: legacy,
                    },
                ));
            }
        };
        names.extend(implied.iter().map(|name| ((*name).to_owned(), at)));
    }

    let mut capabilities = Capabilities::NONE;
    for (name, at) in names {
        match Capability::from_name(&name) {
            // Deny ends the rule: nothing after it is read, not even later capabilities.
            Some(Capability::Deny) => {
                return Ok(PathRule {
                    pattern,
                    line,
                    permissions: Permissions {
                        capabilities: Capabilities::DENY,
                        ..Permissions::default()
                    },
                    templated,
                    expiration,
                });
            }
            Some(capability) => capabilities.insert(capability),
            None => {
                return Err(PolicyError::new(
                    at,
                    PolicyErrorKind::UnknownCapability {
                        pattern: key,
                        capability: name,
                    },
                ));
            }
        }
    }

    let ttl = |field: Option<(Value, Option<usize>)>, name: &'static str| match field {
        Some((value, at)) => {
            values::ttl(&value).map_err(|message| invalid(at, &key, name, message))
        }
        None => Ok(None),
    };
    let min_wrapping_ttl = ttl(fields.min_ttl, "min_wrapping_ttl")?;
    let max_wrapping_ttl = ttl(fields.max_ttl, "max_wrapping_ttl")?;
    if let (Some(min), Some(max)) = (min_wrapping_ttl, max_wrapping_ttl)
        && max < min
    {
        return Err(PolicyError::new(
            line,
            PolicyErrorKind::WrappingTtlOrder { pattern: key },
        ));
    }

    Ok(PathRule {
        pattern,
        line,
        permissions: Permissions {
            capabilities,
            required_parameters: fields.required,
            allowed_parameters: fields.allowed.map(|(map, _)| map).unwrap_or_default(),
            denied_parameters: fields.denied.map(|(map, _)| map).unwrap_or_default(),
            min_wrapping_ttl,
            max_wrapping_ttl,
        },
        templated,
        expiration,
    })
}

fn read_fields(entries: Vec<Entry>, place: &str) -> Result<Fields, PolicyError> {
    let mut fields = Fields::default();
    for Entry { key, line, value } in entries {
        let wrong = |expected: &'static str, found: &Value| {
            PolicyError::new(
                line,
                PolicyErrorKind::WrongType {
                    key: key.clone(),
                    place: place.to_owned(),
                    expected,
                    found: describe(found),
                },
            )
        };
        match key.as_str() {
            "capabilities" => {
                let list =
                    string_list(value).map_err(|found| wrong("a list of strings", &found))?;
                fields.capabilities = list.into_iter().map(|name| (name, line)).collect();
            }
            "required_parameters" => {
                fields.required =
                    string_list(value).map_err(|found| wrong("a list of strings", &found))?;
            }
            "policy" => match value {
                Value::String(s) => fields.policy = Some((s, line)),
                other => return Err(wrong("a string", &other)),
            },
            "expiration" => match value {
                Value::String(s) => fields.expiration = Some((s, line)),
                other => return Err(wrong("a string", &other)),
            },
            "comment" => match value {
                Value::String(_) | Value::Null => {}
                other => return Err(wrong("a string", &other)),
            },
            "allowed_parameters" | "denied_parameters" => {
                let map = parameter_map(value)
                    .map_err(|found| wrong("an object of lists, e.g. { \"key\" = [] }", &found))?;
                if key == "allowed_parameters" {
                    fields.allowed = Some((map, line));
                } else {
                    fields.denied = Some((map, line));
                }
            }
            "min_wrapping_ttl" => fields.min_ttl = Some((value, line)),
            "max_wrapping_ttl" => fields.max_ttl = Some((value, line)),
            // `check_key` has refused everything else already.
            _ => {}
        }
    }
    Ok(fields)
}

/// A list of strings; `Err` carries the offending value for the message.
fn string_list(value: Value) -> Result<Vec<String>, Value> {
    match value {
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(other),
            })
            .collect(),
        other => Err(other),
    }
}

/// `{ "key" = [values…] }` with keys lowercased, as Vault stores them.
fn parameter_map(value: Value) -> Result<ParameterMap, Value> {
    let Value::Object(object) = value else {
        return Err(value);
    };
    let mut map = ParameterMap::with_capacity(object.len());
    for (name, values) in object {
        let Value::Array(values) = values else {
            return Err(values);
        };
        map.insert(name.to_lowercase(), values);
    }
    Ok(map)
}

fn invalid(line: Option<usize>, pattern: &str, key: &'static str, message: String) -> PolicyError {
    PolicyError::new(
        line,
        PolicyErrorKind::InvalidValue {
            pattern: pattern.to_owned(),
            key,
            message,
        },
    )
}
