//! A small interpreter for the subset of Go's `text/template` (with sprig-like functions) that
//! ESO's template engine v2 and VSO's transformations are written in.
//!
//! Supported: text and `{{ … }}` actions with `{{-`/`-}}` whitespace trimming and
//! `{{/* comments */}}`; pipelines (`a | f | g x`); fields (`.key`, `.a.b`, `.`); string
//! (`"…"` with Go escapes, `` `raw` ``), number and boolean literals, `nil`; parenthesised
//! pipelines; `if`/`else if`/`else`/`end`; the functions in [`funcs`]. A missing map key is an
//! error (ESO runs its templates with `missingkey=error`), and so is an unknown function, named.
//! Not supported (an error naming it): variables (`$x`), `range`, `with`, `define`/`template`/
//! `block`.
//!
//! Hostile templates are bounded: [`MAX_TEMPLATE_BYTES`] of source, [`MAX_DEPTH`] levels of
//! nesting, [`MAX_OUTPUT_BYTES`] of output per template and [`MAX_WORK_BYTES`] of values
//! produced by functions per render. Strings the interpreter holds are zeroized on drop.

mod funcs;
mod parse;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use zeroize::Zeroizing;

pub use funcs::from_json;
pub use parse::parse;

/// The largest template source accepted.
pub const MAX_TEMPLATE_BYTES: usize = 256 * 1024;
/// Nesting of parentheses and `if` blocks.
pub const MAX_DEPTH: usize = 64;
/// The most output one template may produce (a Kubernetes Secret holds at most 1 MiB).
pub const MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// The most bytes all function results of one render may add up to.
pub const MAX_WORK_BYTES: usize = 64 * 1024 * 1024;

/// A template error; it names positions, keys and functions, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

pub type Result<T> = std::result::Result<T, TemplateError>;

fn err<T>(message: impl Into<String>) -> Result<T> {
    Err(TemplateError(message.into()))
}

/// A value templates see: the data map's strings, and what `fromJson` builds.
#[derive(Clone)]
pub enum Value {
    Str(Zeroizing<String>),
    Int(i64),
    Float(f64),
    Bool(bool),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
    Null,
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values are secrets: only their shape.
        f.write_str(self.type_name())
    }
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(Zeroizing::new(s.into()))
    }

    /// A map of strings: the data context of ESO templates.
    pub fn string_map<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
        Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::str(v)))
                .collect(),
        )
    }

    fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Bool(_) => "bool",
            Value::List(_) => "list",
            Value::Map(_) => "map",
            Value::Null => "nil",
        }
    }

    /// Go's truth: false, 0, nil and empty strings and collections are false.
    fn truthy(&self) -> bool {
        match self {
            Value::Str(s) => !s.is_empty(),
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Bool(b) => *b,
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Null => false,
        }
    }

    /// Go's `%v`.
    fn write_to(&self, out: &mut String) {
        match self {
            Value::Str(s) => out.push_str(s),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => {
                let _ = write!(out, "{f}");
            }
            Value::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            Value::Null => out.push_str("<nil>"),
            Value::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    item.write_to(out);
                }
                out.push(']');
            }
            Value::Map(map) => {
                out.push_str("map[");
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.write_to(out);
                }
                out.push(']');
            }
        }
    }

    fn to_text(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::new());
        self.write_to(&mut out);
        out
    }

    /// A rough size, for the work budget.
    fn weight(&self) -> usize {
        match self {
            Value::Str(s) => s.len(),
            Value::List(l) => l.iter().map(Value::weight).sum::<usize>() + 1,
            Value::Map(m) => m.iter().map(|(k, v)| k.len() + v.weight()).sum::<usize>() + 1,
            _ => 8,
        }
    }
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If {
        branches: Vec<(Pipeline, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
}

#[derive(Debug, Clone)]
struct Pipeline {
    /// 1-based line of the action, for errors.
    line: usize,
    cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
struct Cmd {
    args: Vec<Arg>,
}

#[derive(Debug, Clone)]
enum Arg {
    /// `.a.b`; empty: `.` itself.
    Field(Vec<String>),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    Ident(String),
    Sub(Pipeline),
    /// `(pipeline).a.b`
    Chain(Pipeline, Vec<String>),
}

impl Template {
    /// Renders with `dot` as the data (`.`).
    pub fn render(&self, dot: &Value) -> Result<Zeroizing<String>> {
        let mut exec = Exec {
            name: &self.name,
            out: Zeroizing::new(String::new()),
            work: 0,
        };
        exec.nodes(&self.nodes, dot)?;
        Ok(exec.out)
    }

    /// The name errors refer to it by.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Parses and renders in one step.
pub fn render(name: &str, text: &str, dot: &Value) -> Result<Zeroizing<String>> {
    parse(name, text)?.render(dot)
}

struct Exec<'a> {
    name: &'a str,
    out: Zeroizing<String>,
    work: usize,
}

impl Exec<'_> {
    fn fail<T>(&self, line: usize, message: impl std::fmt::Display) -> Result<T> {
        err(format!("template {}:{line}: {message}", self.name))
    }

    fn nodes(&mut self, nodes: &[Node], dot: &Value) -> Result<()> {
        for node in nodes {
            match node {
                Node::Text(text) => self.emit(text, 0)?,
                Node::Action(p) => {
                    let value = self.pipeline(p, dot)?;
                    let text = value.to_text();
                    self.emit(&text, p.line)?;
                }
                Node::If {
                    branches,
                    otherwise,
                } => {
                    let mut taken = false;
                    for (cond, body) in branches {
                        if self.pipeline(cond, dot)?.truthy() {
                            self.nodes(body, dot)?;
                            taken = true;
                            break;
                        }
                    }
                    if !taken {
                        self.nodes(otherwise, dot)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn emit(&mut self, text: &str, line: usize) -> Result<()> {
        if self.out.len() + text.len() > MAX_OUTPUT_BYTES {
            return self.fail(line, format!("output larger than {MAX_OUTPUT_BYTES} bytes"));
        }
        self.out.push_str(text);
        Ok(())
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Value) -> Result<Value> {
        let mut piped: Option<Value> = None;
        for cmd in &p.cmds {
            piped = Some(self.cmd(cmd, dot, piped, p.line)?);
        }
        Ok(piped.unwrap_or(Value::Null))
    }

    fn cmd(&mut self, cmd: &Cmd, dot: &Value, piped: Option<Value>, line: usize) -> Result<Value> {
        let Some((first, rest)) = cmd.args.split_first() else {
            return self.fail(line, "empty command");
        };
        if let Arg::Ident(name) = first {
            let mut args = Vec::with_capacity(rest.len() + 1);
            for arg in rest {
                args.push(self.arg(arg, dot, line)?);
            }
            if let Some(v) = piped {
                args.push(v);
            }
            return self.call(name, args, line);
        }
        if !rest.is_empty() {
            return self.fail(line, "can't give an argument to a non-function");
        }
        if piped.is_some() {
            return self.fail(line, "can't pipe a value into a non-function");
        }
        self.arg(first, dot, line)
    }

    fn arg(&mut self, arg: &Arg, dot: &Value, line: usize) -> Result<Value> {
        Ok(match arg {
            Arg::Field(path) => self.field(dot, path, line)?,
            Arg::Str(s) => Value::str(s.clone()),
            Arg::Int(i) => Value::Int(*i),
            Arg::Float(f) => Value::Float(*f),
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Nil => Value::Null,
            Arg::Ident(name) => self.call(name, Vec::new(), line)?,
            Arg::Sub(p) => self.pipeline(p, dot)?,
            Arg::Chain(p, path) => {
                let value = self.pipeline(p, dot)?;
                self.field(&value, path, line)?
            }
        })
    }

    fn field(&self, dot: &Value, path: &[String], line: usize) -> Result<Value> {
        let mut current = dot;
        for key in path {
            match current {
                Value::Map(map) => match map.get(key) {
                    Some(v) => current = v,
                    None => return self.fail(line, format!("map has no entry for key {key:?}")),
                },
                other => {
                    return self.fail(
                        line,
                        format!("can't evaluate field {key} in type {}", other.type_name()),
                    );
                }
            }
        }
        Ok(current.clone())
    }

    fn call(&mut self, name: &str, args: Vec<Value>, line: usize) -> Result<Value> {
        let value = match funcs::call(name, args) {
            Ok(v) => v,
            Err(message) => return self.fail(line, message),
        };
        self.work = self.work.saturating_add(value.weight());
        if self.work > MAX_WORK_BYTES {
            return self.fail(
                line,
                format!("functions produced more than {MAX_WORK_BYTES} bytes"),
            );
        }
        Ok(value)
    }
}
