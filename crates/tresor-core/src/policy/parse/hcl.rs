//! HCL policies, read with `hcl-edit` (as `tresor-config` reads config files) so every mistake
//! can name its line.
//!
//! Vault parses policies with HCL1; `hcl-edit` speaks HCL2, which accepts every policy written
//! in the documented style. HCL1-only spellings (a block opened and continued on one line,
//! `allowed_parameters { "k" = [] }` without `=`, a repeated key) are syntax errors here.

use std::ops::Range;

use hcl_edit::Span;
use hcl_edit::expr::{Expression, ObjectKey, UnaryOperator};
use hcl_edit::structure::{Attribute, Block, Structure};
use serde_json::{Map, Number, Value};

use super::{Entry, RawRule, rule};
use crate::policy::error::{PolicyError, PolicyErrorKind};

pub(super) fn parse(text: &str) -> Result<Vec<RawRule>, PolicyError> {
    let body = hcl_edit::parser::parse_body(text).map_err(|err| {
        PolicyError::new(
            Some(err.location().line()),
            PolicyErrorKind::Syntax {
                message: format!("column {}: {}", err.location().column(), err.message()),
            },
        )
    })?;
    let lines = Lines::new(text);
    let mut rules = Vec::new();
    for structure in body.iter() {
        match structure {
            Structure::Block(block) if block.ident.as_str() == "path" => {
                rules.push(path_block(&lines, block)?);
            }
            Structure::Block(block) => {
                return Err(PolicyError::new(
                    Some(lines.line_of_span(block.ident.span())),
                    PolicyErrorKind::UnknownKey {
                        key: block.ident.as_str().to_owned(),
                        place: "at the top level".to_owned(),
                    },
                ));
            }
            Structure::Attribute(attr) => top_level_attribute(&lines, attr)?,
        }
    }
    Ok(rules)
}

/// Vault accepts (and ignores) a top-level `name`; `path = …` is a misplaced block.
fn top_level_attribute(lines: &Lines, attr: &Attribute) -> Result<(), PolicyError> {
    let line = Some(lines.line_of_span(attr.key.span()));
    match attr.key.as_str() {
        "name" => match &attr.value {
            Expression::String(_) => Ok(()),
            other => Err(PolicyError::new(
                line,
                PolicyErrorKind::WrongType {
                    key: "name".to_owned(),
                    place: "at the top level".to_owned(),
                    expected: "a string",
                    found: describe(other),
                },
            )),
        },
        "path" => Err(PolicyError::new(
            line,
            PolicyErrorKind::PathShape {
                found: "an attribute".to_owned(),
            },
        )),
        key => Err(PolicyError::new(
            line,
            PolicyErrorKind::UnknownKey {
                key: key.to_owned(),
                place: "at the top level".to_owned(),
            },
        )),
    }
}

fn path_block(lines: &Lines, block: &Block) -> Result<RawRule, PolicyError> {
    let line = lines.line_of_span(block.ident.span());
    let [label] = block.labels.as_slice() else {
        return Err(PolicyError::new(
            Some(line),
            PolicyErrorKind::PathShape {
                found: format!("{} labels", block.labels.len()),
            },
        ));
    };
    let pattern = label.as_str().to_owned();
    let mut entries = Vec::new();
    for structure in block.body.iter() {
        match structure {
            Structure::Attribute(attr) => {
                let line = lines.line_of_span(attr.key.span());
                let key = attr.key.as_str().to_owned();
                let value = to_json(&attr.value).map_err(|found| {
                    PolicyError::new(
                        Some(line),
                        PolicyErrorKind::WrongType {
                            key: key.clone(),
                            place: format!("in path {pattern:?}"),
                            expected: "a literal value (string, number, boolean, list or object)",
                            found,
                        },
                    )
                })?;
                entries.push(Entry {
                    key,
                    line: Some(line),
                    value,
                });
            }
            // Nested blocks: OpenBao's `control_group` (unsupported), a key written as a block
            // (HCL1 allowed `allowed_parameters { … }`), or a mistake.
            Structure::Block(inner) => {
                let key = inner.ident.as_str();
                let line = Some(lines.line_of_span(inner.ident.span()));
                let place = format!("in path {pattern:?}");
                return Err(rule::check_key(key, &place, line).err().unwrap_or_else(|| {
                    PolicyError::new(
                        line,
                        PolicyErrorKind::WrongType {
                            key: key.to_owned(),
                            place,
                            expected: "written as `key = value`",
                            found: "a block",
                        },
                    )
                }));
            }
        }
    }
    Ok(RawRule {
        pattern,
        line: Some(line),
        entries,
    })
}

/// Literal HCL values as JSON values, so the rule reader handles both formats alike. Anything
/// that would need evaluation (variables, templates, calls) is refused with its description.
fn to_json(expr: &Expression) -> Result<Value, &'static str> {
    literal_json(expr, "a template (interpolation is not supported)")
}

/// A literal HCL value as JSON (also the password policy reader's); anything needing evaluation
/// is refused with its description, a template with `template`, the caller's hint.
pub(crate) fn literal_json(
    expr: &Expression,
    template: &'static str,
) -> Result<Value, &'static str> {
    let inner = |e: &Expression| literal_json(e, template);
    Ok(match expr {
        Expression::Null(_) => Value::Null,
        Expression::Bool(b) => Value::Bool(*b.value()),
        Expression::Number(n) => number(n.value()).ok_or("a number out of range")?,
        Expression::String(s) => Value::String(s.value().clone()),
        Expression::Array(array) => {
            Value::Array(array.iter().map(inner).collect::<Result<_, _>>()?)
        }
        Expression::Object(object) => {
            let mut map = Map::new();
            for (key, value) in object.iter() {
                let key = match key {
                    ObjectKey::Ident(ident) => ident.as_str().to_owned(),
                    ObjectKey::Expression(Expression::String(s)) => s.value().clone(),
                    ObjectKey::Expression(_) => return Err("an object key that is not a string"),
                };
                map.insert(key, inner(value.expr())?);
            }
            Value::Object(map)
        }
        Expression::Parenthesis(paren) => inner(paren.inner())?,
        Expression::UnaryOp(op) if *op.operator.value() == UnaryOperator::Neg => {
            match inner(&op.expr)? {
                Value::Number(n) => negate(&n).ok_or("a number out of range")?,
                _ => return Err("an expression"),
            }
        }
        Expression::StringTemplate(_) | Expression::HeredocTemplate(_) => return Err(template),
        other => return Err(describe(other)),
    })
}

fn number(n: &hcl_edit::Number) -> Option<Value> {
    if let Some(u) = n.as_u64() {
        Some(Value::Number(u.into()))
    } else if let Some(i) = n.as_i64() {
        Some(Value::Number(i.into()))
    } else {
        n.as_f64().and_then(Number::from_f64).map(Value::Number)
    }
}

fn negate(n: &Number) -> Option<Value> {
    if let Some(i) = n.as_i64() {
        i.checked_neg().map(|v| Value::Number(v.into()))
    } else {
        n.as_f64()
            .and_then(|f| Number::from_f64(-f))
            .map(Value::Number)
    }
}

fn describe(expr: &Expression) -> &'static str {
    match expr {
        Expression::Null(_) => "null",
        Expression::Bool(_) => "a boolean",
        Expression::Number(_) => "a number",
        Expression::String(_) => "a string",
        Expression::Array(_) => "a list",
        Expression::Object(_) => "an object",
        Expression::StringTemplate(_) | Expression::HeredocTemplate(_) => {
            "a template (interpolation is not supported)"
        }
        // Usually a forgotten pair of quotes: `capabilities = [read]`.
        Expression::Variable(_) => "an unquoted word",
        _ => "an expression",
    }
}

/// Byte offsets (what `hcl-edit` spans give) to 1-based lines.
struct Lines {
    /// Byte offset of every `\n`, ascending.
    newlines: Vec<usize>,
}

impl Lines {
    fn new(source: &str) -> Self {
        let newlines = source
            .bytes()
            .enumerate()
            .filter_map(|(offset, byte)| (byte == b'\n').then_some(offset))
            .collect();
        Self { newlines }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.newlines.partition_point(|&newline| newline < offset) + 1
    }

    /// Spans are present on parsed input; line 1 is a harmless fallback.
    fn line_of_span(&self, span: Option<Range<usize>>) -> usize {
        span.map_or(1, |span| self.line_of(span.start))
    }
}

#[cfg(test)]
mod tests {
    use super::Lines;

    #[test]
    fn offsets_map_to_one_based_lines() {
        let lines = Lines::new("ab\ncd\n\nef");
        assert_eq!(lines.line_of(0), 1);
        assert_eq!(lines.line_of(2), 1);
        assert_eq!(lines.line_of(3), 2);
        assert_eq!(lines.line_of(7), 4);
        assert_eq!(lines.line_of_span(None), 1);
    }
}
