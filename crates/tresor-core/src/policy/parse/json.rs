//! JSON policies: `{"path": {"secret/*": {"capabilities": ["read"]}}}`.
//!
//! HCL1's JSON reader also takes `"path"` as a list of such objects, so we do too. Only syntax
//! errors carry a line: `serde_json` keeps no positions in parsed values. Unlike HCL1, which
//! tolerates some malformed JSON (a missing closing brace), we require well-formed JSON.

use serde_json::{Map, Value};

use super::{Entry, RawRule, describe};
use crate::policy::error::{PolicyError, PolicyErrorKind};

const TOP: &str = "at the top level";

pub(super) fn parse(text: &str) -> Result<Vec<RawRule>, PolicyError> {
    let document: Value = serde_json::from_str(text).map_err(|err| {
        PolicyError::new(
            Some(err.line()).filter(|&line| line > 0),
            PolicyErrorKind::Syntax {
                message: format!("column {}: {}", err.column(), classify(&err)),
            },
        )
    })?;
    let Value::Object(top) = document else {
        return Err(wrong_type("policy", TOP, "an object", &document));
    };
    let mut rules = Vec::new();
    for (key, value) in top {
        match key.as_str() {
            "name" if value.is_string() => {}
            "name" => return Err(wrong_type("name", TOP, "a string", &value)),
            "path" => match value {
                Value::Object(paths) => read_paths(paths, &mut rules)?,
                Value::Array(list) => {
                    for item in list {
                        match item {
                            Value::Object(paths) => read_paths(paths, &mut rules)?,
                            other => {
                                return Err(wrong_type("path", TOP, "an object of paths", &other));
                            }
                        }
                    }
                }
                other => return Err(wrong_type("path", TOP, "an object of paths", &other)),
            },
            _ => {
                return Err(PolicyError::new(
                    None,
                    PolicyErrorKind::UnknownKey {
                        key,
                        place: TOP.to_owned(),
                    },
                ));
            }
        }
    }
    Ok(rules)
}

fn read_paths(paths: Map<String, Value>, rules: &mut Vec<RawRule>) -> Result<(), PolicyError> {
    for (pattern, body) in paths {
        let Value::Object(body) = body else {
            let place = format!("in path {pattern:?}");
            return Err(wrong_type("path", &place, "an object", &body));
        };
        let entries = body
            .into_iter()
            .map(|(key, value)| Entry {
                key,
                line: None,
                value,
            })
            .collect();
        rules.push(RawRule {
            pattern,
            line: None,
            entries,
        });
    }
    Ok(())
}

fn wrong_type(key: &str, place: &str, expected: &'static str, found: &Value) -> PolicyError {
    PolicyError::new(
        None,
        PolicyErrorKind::WrongType {
            key: key.to_owned(),
            place: place.to_owned(),
            expected,
            found: describe(found),
        },
    )
}

/// `serde_json`'s message without its own " at line L column C" suffix (we say it first).
fn classify(err: &serde_json::Error) -> String {
    let message = err.to_string();
    match message.rfind(" at line ") {
        Some(cut) => message.get(..cut).unwrap_or(&message).to_owned(),
        None => message,
    }
}
