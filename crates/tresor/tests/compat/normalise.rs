//! The one reviewed list of what legitimately differs between any two servers (random ids,
//! tokens, keys, timestamps, build data), applied to both sides before comparing.
//!
//! A JSON rule replaces the value at a path by a placeholder of the same JSON type (a
//! non-empty string by `"<name>"`, a number by 0, a boolean by false; an empty string stays
//! empty and null stays null, since "set" versus "unset" is a real difference). It never adds
//! or removes a key, so a key missing on one side is still reported.
//! A text rule does the same for CLI output: `literal` replaces a (variable-filled) string
//! anywhere, `label` replaces the value column of a `Label  value` / `Label: value` line. A
//! `literal` rule with `"in_json": true` also replaces its string inside every JSON string
//! value (each server's own value of a variable, e.g. its PostgreSQL database name inside a
//! connection URL or an error message); the JSON key and type stay.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::jsonpath::{Pattern, Seg, glob};
use super::model::{Vars, fill};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    json: Vec<JsonRuleFile>,
    text: Vec<TextRuleFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRuleFile {
    path: String,
    /// Only for steps whose request key (see `Step::request_key`) matches this glob.
    request: Option<String>,
    placeholder: String,
    why: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextRuleFile {
    label: Option<String>,
    literal: Option<String>,
    /// Replaces the word (up to whitespace) that follows this marker, wherever it appears.
    word_after: Option<String>,
    /// `literal` rules only: also inside JSON string values.
    #[serde(default)]
    in_json: bool,
    request: Option<String>,
    placeholder: String,
    why: String,
}

#[derive(Debug)]
struct JsonRule {
    path: Pattern,
    request: Option<String>,
    placeholder: String,
}

#[derive(Debug)]
enum TextMatch {
    Label(String),
    Literal(String),
    WordAfter(String),
}

#[derive(Debug)]
struct TextRule {
    what: TextMatch,
    in_json: bool,
    request: Option<String>,
    placeholder: String,
}

#[derive(Debug)]
pub struct Normaliser {
    json: Vec<JsonRule>,
    text: Vec<TextRule>,
}

impl Normaliser {
    pub fn load(file: &Path) -> Result<Self, String> {
        let at = |e: String| format!("{}: {e}", file.display());
        let text = std::fs::read_to_string(file).map_err(|e| at(e.to_string()))?;
        let raw: File = serde_json::from_str(&text).map_err(|e| at(e.to_string()))?;
        let json = raw
            .json
            .into_iter()
            .map(|r| {
                if r.why.trim().is_empty() {
                    return Err(at(format!("rule {} has no `why`", r.path)));
                }
                Ok(JsonRule {
                    path: Pattern::parse(&r.path).map_err(at)?,
                    request: r.request,
                    placeholder: r.placeholder,
                })
            })
            .collect::<Result<_, _>>()?;
        let text = raw
            .text
            .into_iter()
            .map(|r| {
                let what = match (r.label, r.literal, r.word_after) {
                    (Some(l), None, None) => TextMatch::Label(l),
                    (None, Some(l), None) => TextMatch::Literal(l),
                    (None, None, Some(m)) => TextMatch::WordAfter(m),
                    _ => {
                        return Err(at(
                            "a text rule has exactly one of label, literal, word_after".into(),
                        ));
                    }
                };
                if r.why.trim().is_empty() {
                    return Err(at(format!("text rule {what:?} has no `why`")));
                }
                if r.in_json && !matches!(what, TextMatch::Literal(_)) {
                    return Err(at(format!(
                        "text rule {what:?}: in_json is for literal rules"
                    )));
                }
                Ok(TextRule {
                    what,
                    in_json: r.in_json,
                    request: r.request,
                    placeholder: r.placeholder,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { json, text })
    }

    pub fn json(&self, value: &mut Value, request: &str, vars: &Vars) {
        let rules: Vec<&JsonRule> = self
            .json
            .iter()
            .filter(|r| in_scope(r.request.as_deref(), request))
            .collect();
        walk(value, &mut Vec::new(), &rules);
        let literals: Vec<(String, &str)> = self
            .text
            .iter()
            .filter(|r| r.in_json && in_scope(r.request.as_deref(), request))
            .filter_map(|r| match &r.what {
                TextMatch::Literal(l) => fill(l, vars)
                    .ok()
                    .filter(|l| !l.is_empty())
                    .map(|l| (l, r.placeholder.as_str())),
                TextMatch::Label(_) | TextMatch::WordAfter(_) => None,
            })
            .collect();
        if !literals.is_empty() {
            replace_in_strings(value, &literals);
        }
    }

    pub fn text(&self, text: &str, request: &str, vars: &Vars) -> String {
        let rules: Vec<&TextRule> = self
            .text
            .iter()
            .filter(|r| in_scope(r.request.as_deref(), request))
            .collect();
        let mut out = text.to_owned();
        for rule in &rules {
            if let TextMatch::Literal(literal) = &rule.what
                && let Ok(literal) = fill(literal, vars)
                && !literal.is_empty()
            {
                out = out.replace(&literal, &rule.placeholder);
            }
            if let TextMatch::WordAfter(marker) = &rule.what {
                out = replace_word_after(&out, marker, &rule.placeholder);
            }
        }
        let lines: Vec<String> = out
            .split('\n')
            .map(|line| {
                let Some((label, value_at)) = table_line(line) else {
                    return line.to_owned();
                };
                let rule = rules.iter().find(|r| match &r.what {
                    TextMatch::Label(pattern) => glob(pattern, label),
                    TextMatch::Literal(_) | TextMatch::WordAfter(_) => false,
                });
                match rule {
                    Some(rule) if value_at < line.len() => {
                        format!("{}{}", &line[..value_at], rule.placeholder)
                    }
                    _ => line.to_owned(),
                }
            })
            .collect();
        lines.join("\n")
    }
}

/// Replaces each literal inside every string of `value` (keys are left alone).
fn replace_in_strings(value: &mut Value, literals: &[(String, &str)]) {
    match value {
        Value::String(s) => {
            for (literal, placeholder) in literals {
                if s.contains(literal.as_str()) {
                    *s = s.replace(literal.as_str(), placeholder);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| replace_in_strings(v, literals)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|v| replace_in_strings(v, literals)),
        _ => {}
    }
}

/// Replaces the whitespace-delimited word after each occurrence of `marker`.
fn replace_word_after(text: &str, marker: &str, placeholder: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        let (before, after) = rest.split_at(at + marker.len());
        out.push_str(before);
        let end = after.find(char::is_whitespace).unwrap_or(after.len());
        out.push_str(placeholder);
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn in_scope(scope: Option<&str>, request: &str) -> bool {
    scope.is_none_or(|s| glob(s, request))
}

fn walk(value: &mut Value, path: &mut Vec<Seg>, rules: &[&JsonRule]) {
    if let Some(rule) = rules.iter().find(|r| r.path.matches(path)) {
        replace_scalars(value, &rule.placeholder);
        return;
    }
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                path.push(Seg::Key(k.clone()));
                walk(v, path, rules);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                path.push(Seg::Index(i));
                walk(v, path, rules);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Keeps the JSON type, object keys and array lengths; see the module comment.
fn replace_scalars(value: &mut Value, placeholder: &str) {
    match value {
        Value::String(s) if !s.is_empty() => *s = placeholder.to_owned(),
        Value::Number(_) => *value = Value::from(0),
        Value::Bool(_) => *value = Value::Bool(false),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| replace_scalars(v, placeholder)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|v| replace_scalars(v, placeholder)),
        _ => {}
    }
}

/// Splits a CLI table line (`Seal Type    shamir`, `Unseal Key 1: abc`) into its label and the
/// byte offset where the value starts. Labels are single-spaced, so the first `: ` or run of
/// two spaces ends the label.
pub fn table_line(line: &str) -> Option<(&str, usize)> {
    if line.starts_with(' ') || line.is_empty() {
        return None;
    }
    let colon = line.find(": ");
    let spaces = line.find("  ");
    let end = match (colon, spaces) {
        (Some(c), Some(s)) => c.min(s),
        (Some(c), None) => c,
        (None, Some(s)) => s,
        (None, None) => return None,
    };
    let label = &line[..end];
    let value_at = end + line[end..].find(|c: char| c != ' ' && c != ':')?;
    Some((label, value_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lines_split_into_label_and_value() {
        assert_eq!(
            table_line("Seal Type       shamir"),
            Some(("Seal Type", 16))
        );
        assert_eq!(table_line("Unseal Key 1: abc"), Some(("Unseal Key 1", 14)));
        assert_eq!(table_line("plain sentence here"), None);
        assert_eq!(table_line("    indented"), None);
    }

    #[test]
    fn placeholders_keep_types_and_emptiness() {
        let mut v = serde_json::json!({"a": "x", "b": 5, "c": "", "d": null, "e": ["p", "q"]});
        let rule = JsonRule {
            path: Pattern::parse("$.*").unwrap(),
            request: None,
            placeholder: "<p>".into(),
        };
        walk(&mut v, &mut Vec::new(), &[&rule]);
        assert_eq!(
            v,
            serde_json::json!({"a": "<p>", "b": 0, "c": "", "d": null, "e": ["<p>", "<p>"]})
        );
    }
}
