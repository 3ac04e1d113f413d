//! Reading one attribute's value as the type its key wants, with Vault's leniency: HCL1 configs
//! routinely quote booleans and numbers (`tls_disable = "true"`, `max_parallel = "128"`), and
//! Vault accepts them, so we do too.

use std::time::Duration;

use hcl_edit::Span;
use hcl_edit::expr::{Expression, UnaryOperator};
use hcl_edit::structure::Attribute;

use crate::duration::parse_duration;
use crate::error::{Located, Problem};
use crate::lines::Lines;
use crate::size::parse_size;

/// An attribute plus what is needed to report on it.
pub(crate) struct Value<'a> {
    pub(crate) attr: &'a Attribute,
    pub(crate) lines: &'a Lines,
}

impl Value<'_> {
    pub(crate) fn key(&self) -> &str {
        self.attr.key.as_str()
    }

    pub(crate) fn line(&self) -> usize {
        self.lines.line_of_span(self.attr.value.span())
    }

    pub(crate) fn string(&self) -> Result<String, Located> {
        match &self.attr.value {
            Expression::String(s) => Ok(s.value().clone()),
            other => Err(self.wrong_type("a string", other)),
        }
    }

    /// `true`/`false`, Go's `strconv.ParseBool` spellings in a string, or the numbers 0 and 1.
    pub(crate) fn boolean(&self) -> Result<bool, Located> {
        const EXPECTED: &str = "a boolean (true or false)";
        match &self.attr.value {
            Expression::Bool(b) => Ok(*b.value()),
            Expression::String(s) => match s.value().as_str() {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
                "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
                other => {
                    Err(self.invalid(format!("{other:?} is not a boolean; use true or false")))
                }
            },
            Expression::Number(n) => match n.value().as_u64() {
                Some(1) => Ok(true),
                Some(0) => Ok(false),
                _ => {
                    Err(self.invalid(format!("{} is not a boolean; use true or false", n.value())))
                }
            },
            other => Err(self.wrong_type(EXPECTED, other)),
        }
    }

    /// A non-negative integer, bare or quoted.
    pub(crate) fn unsigned(&self) -> Result<u64, Located> {
        const EXPECTED: &str = "a whole number";
        match &self.attr.value {
            Expression::Number(n) => {
                let number = n.value();
                number.as_u64().ok_or_else(|| {
                    if number.as_f64().is_some_and(|f| f < 0.0) {
                        self.invalid("must not be negative".to_owned())
                    } else {
                        self.invalid(format!("{number} is not a whole number"))
                    }
                })
            }
            Expression::String(s) => {
                let text = s.value().trim();
                if text.starts_with('-') {
                    return Err(self.invalid("must not be negative".to_owned()));
                }
                text.parse::<u64>()
                    .map_err(|_| self.invalid(format!("{text:?} is not a whole number")))
            }
            Expression::UnaryOp(op)
                if *op.operator.value() == UnaryOperator::Neg && op.expr.is_number() =>
            {
                Err(self.invalid("must not be negative".to_owned()))
            }
            other => Err(self.wrong_type(EXPECTED, other)),
        }
    }

    /// A bare integer of seconds, or a duration string (see [`parse_duration`]).
    pub(crate) fn duration(&self) -> Result<Duration, Located> {
        match &self.attr.value {
            Expression::Number(_) | Expression::UnaryOp(_) => {
                self.unsigned().map(Duration::from_secs)
            }
            Expression::String(s) => {
                parse_duration(s.value()).map_err(|e| self.invalid(e.to_string()))
            }
            other => {
                Err(self.wrong_type("a duration such as \"768h\" or a number of seconds", other))
            }
        }
    }

    /// A size in bytes: a bare integer, or a string with a unit (see [`parse_size`]).
    pub(crate) fn size(&self) -> Result<u64, Located> {
        match &self.attr.value {
            Expression::Number(_) | Expression::UnaryOp(_) => self.unsigned(),
            Expression::String(s) => parse_size(s.value()).map_err(|e| self.invalid(e.to_string())),
            other => Err(self.wrong_type("a size such as \"256MiB\" or a number of bytes", other)),
        }
    }

    pub(crate) fn invalid(&self, message: String) -> Located {
        Located::new(
            self.line(),
            Problem::InvalidValue {
                key: self.key().to_owned(),
                message,
            },
        )
    }

    fn wrong_type(&self, expected: &'static str, found: &Expression) -> Located {
        Located::new(
            self.line(),
            Problem::WrongType {
                key: self.key().to_owned(),
                expected,
                found: describe(found),
            },
        )
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
        // Usually a forgotten pair of quotes: `address = localhost`.
        Expression::Variable(_) => "an unquoted word",
        _ => "an expression",
    }
}
