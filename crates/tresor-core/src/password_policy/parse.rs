//! Password policy text (HCL or JSON) to a [`PasswordPolicy`], with OpenBao's checks and
//! messages (`internal/helper/random`: `ParsePolicy`, `validateConfig`).
//!
//! The document is read the way HCL1 + mapstructure read it in OpenBao: `length` is an
//! integer (a float is truncated; other types are refused), unknown top-level keys and unknown
//! keys inside a rule are ignored, and each `rule "<type>" { … }` block is one rule whose only
//! known type is `charset` (`charset` string, `min-chars` integer). HCL is read with
//! `hcl-edit` (HCL2): a literal `${` or `%{` in a charset must be written `$${` / `%%{`.

use hcl_edit::expr::Expression;
use hcl_edit::structure::{Block, Structure};
use serde_json::{Map, Value};

/// One `rule "charset"`: at least `min_chars` characters of the password come from `charset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharsetRule {
    /// As written (duplicates kept; only membership matters).
    pub charset: Vec<char>,
    pub min_chars: i64,
}

/// A parsed and validated password policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub length: i64,
    pub rules: Vec<CharsetRule>,
    /// Every rule's characters, deduplicated and sorted: what passwords are drawn from.
    pub charset: Vec<char>,
}

/// Why a policy text was refused, worded as OpenBao words it (without the
/// `invalid password policy: ` prefix the endpoint adds).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn err(message: impl Into<String>) -> ParseError {
    ParseError(message.into())
}

/// The document before interpretation: `length` and the rules as `(type, data)` pairs.
struct RawDocument {
    length: Option<Value>,
    rules: Vec<Value>,
}

impl PasswordPolicy {
    /// Parses and validates `text` as OpenBao's `random.ParsePolicy` does.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let raw = if text.trim_start().starts_with('{') {
            json_document(text)?
        } else {
            hcl_document(text)?
        };
        let length = match &raw.length {
            None | Some(Value::Null) => 0,
            Some(v) => integer(v, "length").map_err(|e| {
                err(format!(
                    "failed to decode configuration: decoding failed due to the following error(s):\n\n{e}"
                ))
            })?,
        };
        let mut rules = Vec::with_capacity(raw.rules.len());
        for rule in &raw.rules {
            rules.push(parse_rule(rule).map_err(|e| err(format!("unable to parse rules: {e}")))?);
        }
        let policy = Self {
            length,
            charset: charset_of(&rules),
            rules,
        };
        policy.validate()?;
        Ok(policy)
    }

    /// The sum of every rule's `min-chars`.
    pub fn min_length(&self) -> i64 {
        self.rules
            .iter()
            .fold(0i64, |sum, r| sum.saturating_add(r.min_chars))
    }

    /// OpenBao's `validateConfig`: its errors joined as go-multierror prints them.
    pub(crate) fn validate(&self) -> Result<(), ParseError> {
        let mut errors = Vec::new();
        let min = self.min_length();
        if self.length <= 0 {
            errors.push("length must be > 0".to_owned());
        } else if self.length < min {
            errors.push(format!(
                "specified rules require at least {min} characters but {} is specified",
                self.length
            ));
        }
        if self.charset.is_empty() {
            errors.push("no charset specified".to_owned());
        } else if self.charset.iter().any(|c| !printable(*c)) {
            errors.push("non-printable character in charset".to_owned());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(err(multierror(&errors)))
        }
    }
}

/// go-multierror's default format.
fn multierror(errors: &[String]) -> String {
    let points: Vec<String> = errors.iter().map(|e| format!("* {e}")).collect();
    if errors.len() == 1 {
        format!("1 error occurred:\n\t{}\n\n", points.join("\n\t"))
    } else {
        format!(
            "{} errors occurred:\n\t{}\n\n",
            errors.len(),
            points.join("\n\t")
        )
    }
}

/// Go's `unicode.IsPrint`, as far as it can be told without Unicode category tables: no
/// control characters, no space but U+0020, no format characters, no private-use code points,
/// no noncharacters.
fn printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = u32::from(c);
    let format = matches!(
        u,
        0xAD | 0x600..=0x605
            | 0x61C
            | 0x6DD
            | 0x70F
            | 0x890..=0x891
            | 0x8E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    );
    let private = matches!(u, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD);
    let nonchar = (0xFDD0..=0xFDEF).contains(&u) || (u & 0xFFFE) == 0xFFFE;
    !(format || private || nonchar)
}

fn charset_of(rules: &[CharsetRule]) -> Vec<char> {
    let mut all: Vec<char> = rules
        .iter()
        .flat_map(|r| r.charset.iter().copied())
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// One rule: `{"<type>": [data, …]}` (HCL1's shape) or `{"<type>": data}` (JSON's).
fn parse_rule(rule: &Value) -> Result<CharsetRule, String> {
    let Value::Object(map) = rule else {
        return Err("unable to get rule info: rule is empty".to_owned());
    };
    let Some((rule_type, data)) = map.iter().next() else {
        return Err("unable to get rule info: rule is empty".to_owned());
    };
    let not_blocks = |v: &Value| {
        format!(
            "unable to get rule info: unable to get rule data: '' source data must be an array or slice, got {}",
            go_kind(v)
        )
    };
    let data = match data {
        Value::Array(items) => match items.first() {
            Some(Value::Object(first)) => first.clone(),
            Some(other) => return Err(not_blocks(other)),
            None => return Err("unable to get rule info: rule info cannot be empty".to_owned()),
        },
        Value::Object(obj) => obj.clone(),
        other => return Err(not_blocks(other)),
    };
    if rule_type != "charset" {
        return Err(format!(
            "unable to parse rule {rule_type}: unrecognized rule type {rule_type}"
        ));
    }
    charset_rule(&data).map_err(|e| {
        format!(
            "unable to parse rule charset: failed to parse charset restriction: decoding failed due to the following error(s):\n\n{e}"
        )
    })
}

fn charset_rule(data: &Map<String, Value>) -> Result<CharsetRule, String> {
    let charset = match data.get("charset") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.chars().collect(),
        Some(other) => {
            return Err(format!(
                "'charset' source data must be an array or slice, got {}",
                go_kind(other)
            ));
        }
    };
    let min_chars = match data.get("min-chars") {
        None | Some(Value::Null) => 0,
        Some(v) => integer(v, "min-chars")?,
    };
    Ok(CharsetRule { charset, min_chars })
}

/// mapstructure's decoding of a value into a Go `int`: integers as they are, floats
/// truncated, anything else refused with its message.
fn integer(value: &Value, key: &str) -> Result<i64, String> {
    match value {
        Value::Number(n) => Ok(n
            .as_i64()
            .or_else(|| n.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
            .or_else(|| n.as_f64().map(|f| f as i64))
            .unwrap_or(0)),
        other => Err(format!(
            "'{key}' expected type 'int', got unconvertible type '{}'",
            go_kind(other)
        )),
    }
}

fn go_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn json_document(text: &str) -> Result<RawDocument, ParseError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| err(format!("unable to decode: {e}")))?;
    let Value::Object(mut map) = value else {
        return Err(err("unable to decode: the document is not an object"));
    };
    let rules = match map.remove("rule") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(Value::Object(obj)) => obj
            .into_iter()
            .map(|(k, v)| Value::Object(Map::from_iter([(k, v)])))
            .collect(),
        Some(_) => {
            return Err(err(
                "unable to retrieve rules: 'rule' must be a list of objects",
            ));
        }
    };
    Ok(RawDocument {
        length: map.remove("length"),
        rules,
    })
}

fn hcl_document(text: &str) -> Result<RawDocument, ParseError> {
    let body = hcl_edit::parser::parse_body(text).map_err(|e| {
        err(format!(
            "unable to decode: At {}:{}: {}",
            e.location().line(),
            e.location().column(),
            e.message()
        ))
    })?;
    let mut length = None;
    let mut rules = Vec::new();
    for structure in body.iter() {
        match structure {
            Structure::Attribute(attr) => {
                let value = literal(&attr.value).map_err(|found| {
                    err(format!(
                        "unable to decode: {:?} must be a literal value, not {found}",
                        attr.key.as_str()
                    ))
                })?;
                match attr.key.as_str() {
                    "length" => length = Some(value),
                    "rule" => match value {
                        Value::Array(items) => rules.extend(items),
                        other => rules.push(other),
                    },
                    _ => {}
                }
            }
            Structure::Block(block) if block.ident.as_str() == "rule" => {
                rules.push(block_value(block)?);
            }
            Structure::Block(block) if block.ident.as_str() == "length" => {
                length = Some(Value::Array(vec![block_body(block)?]));
            }
            Structure::Block(_) => {}
        }
    }
    Ok(RawDocument { length, rules })
}

/// HCL1's view of `rule "a" "b" { body }`: `{"a": [{"b": [body]}]}`; without labels, the body.
fn block_value(block: &Block) -> Result<Value, ParseError> {
    let mut value = block_body(block)?;
    for label in block.labels.iter().rev() {
        value = Value::Object(Map::from_iter([(
            label.as_str().to_owned(),
            Value::Array(vec![value]),
        )]));
    }
    Ok(value)
}

fn block_body(block: &Block) -> Result<Value, ParseError> {
    let mut map = Map::new();
    for structure in block.body.iter() {
        match structure {
            Structure::Attribute(attr) => {
                let value = literal(&attr.value).map_err(|found| {
                    err(format!(
                        "unable to decode: {:?} must be a literal value, not {found}",
                        attr.key.as_str()
                    ))
                })?;
                map.insert(attr.key.as_str().to_owned(), value);
            }
            Structure::Block(inner) => {
                let value = block_value(inner)?;
                map.insert(inner.ident.as_str().to_owned(), Value::Array(vec![value]));
            }
        }
    }
    Ok(Value::Object(map))
}

/// A literal HCL value as JSON (the ACL policy reader's); a template gets a hint on writing
/// `${` and `%{` literally.
fn literal(expr: &Expression) -> Result<Value, &'static str> {
    crate::policy::literal_json(expr, "a template (write a literal ${ as $${ and %{ as %%{)")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const DOC_EXAMPLE: &str = r#"
length = 20
rule "charset" {
  charset = "abcdefghijklmnopqrstuvwxyz"
  min-chars = 1
}
rule "charset" {
  charset = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
  min-chars = 1
}
rule "charset" {
  charset = "0123456789"
  min-chars = 1
}
rule "charset" {
  charset = "!@#$%^&*"
  min-chars = 1
}
"#;

    fn message(text: &str) -> String {
        PasswordPolicy::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn the_documented_example_parses() {
        let p = PasswordPolicy::parse(DOC_EXAMPLE).unwrap();
        assert_eq!(p.length, 20);
        assert_eq!(p.rules.len(), 4);
        assert_eq!(p.rules[3].charset, "!@#$%^&*".chars().collect::<Vec<_>>());
        assert_eq!(p.rules[3].min_chars, 1);
        assert_eq!(p.charset.len(), 26 + 26 + 10 + 8);
        assert!(p.charset.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn json_policies_parse_in_both_rule_shapes() {
        let list = r#"{"length": 8, "rule": [{"charset": {"charset": "ab", "min-chars": 2}},
                        {"charset": [{"charset": "cd"}]}]}"#;
        let p = PasswordPolicy::parse(list).unwrap();
        assert_eq!(p.length, 8);
        assert_eq!(p.rules.len(), 2);
        assert_eq!(p.charset, vec!['a', 'b', 'c', 'd']);
        let object = r#"{"length": 8, "rule": {"charset": {"charset": "xyz"}}}"#;
        assert_eq!(
            PasswordPolicy::parse(object).unwrap().charset,
            vec!['x', 'y', 'z']
        );
    }

    #[test]
    fn charsets_are_deduplicated_and_sorted() {
        let p = PasswordPolicy::parse(
            "length = 10\nrule \"charset\" {\n charset = \"cbaabc\"\n}\nrule \"charset\" {\n charset = \"dcb\"\n min-chars = 2\n}\n",
        )
        .unwrap();
        assert_eq!(p.charset, vec!['a', 'b', 'c', 'd']);
        assert_eq!(p.min_length(), 2);
    }

    #[test]
    fn unknown_keys_are_ignored_and_floats_truncated() {
        let p = PasswordPolicy::parse(
            "length = 12.9\nfoo = \"bar\"\nrule \"charset\" {\n charset = \"ab\"\n other = 1\n}\n",
        )
        .unwrap();
        assert_eq!(p.length, 12);
    }

    #[test]
    fn validation_messages_are_openbaos() {
        assert_eq!(
            message(""),
            "2 errors occurred:\n\t* length must be > 0\n\t* no charset specified\n\n"
        );
        assert_eq!(
            message("length = 4\nrule \"charset\" {\n charset = \"ab\"\n min-chars = 5\n}\n"),
            "1 error occurred:\n\t* specified rules require at least 5 characters but 4 is specified\n\n"
        );
        assert_eq!(
            message("length = 10\nrule \"charset\" {\n charset = \"\"\n min-chars = 1\n}\n"),
            "1 error occurred:\n\t* no charset specified\n\n"
        );
        assert_eq!(
            message("length = 10\nrule \"charset\" {\n charset = \"a\\tb\"\n}\n"),
            "1 error occurred:\n\t* non-printable character in charset\n\n"
        );
        assert_eq!(
            message("length = 10\nrule \"foo\" {\n charset = \"ab\"\n}\n"),
            "unable to parse rules: unable to parse rule foo: unrecognized rule type foo"
        );
        assert_eq!(
            message("length = \"10\"\nrule \"charset\" {\n charset = \"ab\"\n}\n"),
            "failed to decode configuration: decoding failed due to the following error(s):\n\n'length' expected type 'int', got unconvertible type 'string'"
        );
        assert!(
            message("length = 10\nrule \"charset\" {\n min-chars = \"x\"\n}\n")
                .contains("'min-chars' expected type 'int', got unconvertible type 'string'")
        );
        assert!(message("length = {").starts_with("unable to decode: At 1:"));
        assert!(message("{\"length\": ").starts_with("unable to decode: "));
        assert!(message("length = \"${x}\"").starts_with("unable to decode: "));
    }

    #[test]
    fn printable_follows_go_for_common_cases() {
        for c in ['a', ' ', '~', 'é', '€', '日'] {
            assert!(printable(c), "{c:?}");
        }
        for c in [
            '\t', '\n', '\u{7f}', '\u{a0}', '\u{200b}', '\u{e000}', '\u{feff}',
        ] {
            assert!(!printable(c), "{c:?}");
        }
    }
}
