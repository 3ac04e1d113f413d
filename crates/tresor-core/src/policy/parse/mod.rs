//! From policy text to [`PathRule`]s.
//!
//! Two front ends, one back end: [`hcl`] and [`json`] each turn the document into
//! [`RawRule`]s (a pattern plus its key/value entries as JSON values, with lines where known),
//! and [`rule`] applies OpenBao's `parsePaths` to them, so both formats accept and refuse the
//! same things with the same messages. Like HCL1 (which Vault uses for both), a document whose
//! first non-blank character is `{` is JSON.

mod hcl;
mod json;
mod rule;
mod values;

pub(crate) use hcl::literal_json;

use serde_json::Value;

use super::error::PolicyError;
use super::model::PathRule;

/// One `path` block before interpretation.
#[derive(Debug)]
struct RawRule {
    pattern: String,
    line: Option<usize>,
    entries: Vec<Entry>,
}

/// `key = value` inside a path block.
#[derive(Debug)]
struct Entry {
    key: String,
    line: Option<usize>,
    value: Value,
}

pub(super) fn parse_document(text: &str) -> Result<Vec<PathRule>, PolicyError> {
    let raw_rules = if text.trim_start().starts_with('{') {
        json::parse(text)?
    } else {
        hcl::parse(text)?
    };
    let mut rules = Vec::with_capacity(raw_rules.len());
    for raw in raw_rules {
        rules.push(rule::build(raw)?);
    }
    Ok(rules)
}

/// How an unexpected value is described in errors.
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
