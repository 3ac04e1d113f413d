//! A small interpreter for the subset of Go's `text/template` (with sprig-like functions) that
//! ESO's template engine v2 and VSO's transformations are written in.
//!
//! Supported: text and `{{ … }}` actions with `{{-`/`-}}` whitespace trimming and
//! `{{/* comments */}}`; pipelines (`a | f | g x`); fields (`.key`, `.a.b`, `.`); variables
//! (`{{ $x := pipeline }}`, `{{ $x = pipeline }}`, `$` for the data, `$x.a.b`), scoped as Go
//! scopes them (to the end of the enclosing `if`/`with`/`range`); string (`"…"` with Go
//! escapes, `` `raw` ``), number and boolean literals, `nil`; parenthesised pipelines;
//! `if`/`else if`/`else`, `with`/`else with`/`else`, `range` (over lists, maps in sorted key
//! order as Go does, and integers; `$v :=` or `$k, $v :=`; `{{ else }}` when empty;
//! `{{ break }}`/`{{ continue }}`); the functions in [`funcs`]. A missing map key is an error
//! (ESO runs its templates with `missingkey=error`), and so are an unknown function and an
//! undefined variable, named. Not supported (an error naming it): `define`/`template`/`block`.
//!
//! Hostile templates are bounded: [`MAX_TEMPLATE_BYTES`] of source, [`MAX_DEPTH`] levels of
//! nesting, [`MAX_OUTPUT_BYTES`] of output per template, [`MAX_RANGE_ITERATIONS`] loop
//! iterations per render and [`MAX_WORK_BYTES`] of values produced by functions or copied out
//! of fields and variables per render. Strings the interpreter holds are zeroized on drop.

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
/// Nesting of parentheses and `if`/`with`/`range` blocks.
pub const MAX_DEPTH: usize = 64;
/// The most output one template may produce (a Kubernetes Secret holds at most 1 MiB).
pub const MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// The most bytes all function results and values read out of fields and variables of one
/// render may add up to (a loop that copies a large value on every pass runs out of this).
pub const MAX_WORK_BYTES: usize = 64 * 1024 * 1024;
/// The most `range` iterations of one render, all loops together (nested loops multiply).
pub const MAX_RANGE_ITERATIONS: usize = 100_000;

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

    /// About the bytes a copy of the value takes, for the work budget: every value counts
    /// its own size (so a list of empty lists is not free), strings their text too.
    fn weight(&self) -> usize {
        const NODE: usize = std::mem::size_of::<Value>();
        match self {
            Value::Str(s) => NODE + s.len(),
            Value::List(l) => NODE + l.iter().map(Value::weight).sum::<usize>(),
            Value::Map(m) => {
                NODE + m
                    .iter()
                    .map(|(k, v)| k.len() + NODE + v.weight())
                    .sum::<usize>()
            }
            _ => NODE,
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
    /// Prints the pipeline's value, unless it declares or assigns a variable.
    Action(Pipeline),
    If {
        branches: Vec<(Pipeline, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
    /// `with`/`else with`: the first non-empty value becomes dot for its body.
    With {
        branches: Vec<(Pipeline, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
    Range {
        /// Its `decl` names the element (one variable) or key and element (two).
        pipe: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    Break(usize),
    Continue(usize),
}

#[derive(Debug, Clone)]
struct Pipeline {
    /// 1-based line of the action, for errors.
    line: usize,
    /// `$x :=` (or `$k, $v :=` in `range`): the variables declared, without the `$`.
    decl: Vec<String>,
    /// `$x =`: assigns the (single) variable in `decl` instead of declaring it.
    assign: bool,
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
    /// `$name.a.b` (`$` itself has the empty name).
    Var(String, Vec<String>),
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
    /// Renders with `dot` as the data (`.`, and `$`).
    pub fn render(&self, dot: &Value) -> Result<Zeroizing<String>> {
        let mut exec = Exec {
            name: &self.name,
            out: Zeroizing::new(String::new()),
            work: 0,
            iterations: 0,
            root: dot,
            vars: Vec::new(),
        };
        match exec.nodes(&self.nodes, dot)? {
            Flow::Next => Ok(exec.out),
            // The parser allows break/continue only inside range.
            Flow::Break(line) | Flow::Continue(line) => {
                exec.fail(line, "break or continue outside range")
            }
        }
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

/// How a list of nodes ended: normally, or at a `break`/`continue` (with its line) that the
/// enclosing `range` acts on.
enum Flow {
    Next,
    Break(usize),
    Continue(usize),
}

struct Exec<'a> {
    name: &'a str,
    out: Zeroizing<String>,
    work: usize,
    iterations: usize,
    /// `$`: the data the render started with.
    root: &'a Value,
    /// The variables declared and in scope, innermost last.
    vars: Vec<(String, Value)>,
}

impl Exec<'_> {
    fn fail<T>(&self, line: usize, message: impl std::fmt::Display) -> Result<T> {
        err(format!("template {}:{line}: {message}", self.name))
    }

    fn nodes(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow> {
        for node in nodes {
            let flow = match node {
                Node::Text(text) => {
                    self.emit(text, 0)?;
                    Flow::Next
                }
                Node::Action(p) => {
                    let value = self.pipeline(p, dot)?;
                    if p.decl.is_empty() {
                        let text = value.to_text();
                        self.emit(&text, p.line)?;
                    }
                    Flow::Next
                }
                Node::If {
                    branches,
                    otherwise,
                } => {
                    // Variables declared in the conditions and bodies end with the `if`.
                    let mark = self.vars.len();
                    let flow = self.if_or_with(branches, otherwise, dot, false);
                    self.vars.truncate(mark);
                    flow?
                }
                Node::With {
                    branches,
                    otherwise,
                } => {
                    let mark = self.vars.len();
                    let flow = self.if_or_with(branches, otherwise, dot, true);
                    self.vars.truncate(mark);
                    flow?
                }
                Node::Range {
                    pipe,
                    body,
                    otherwise,
                } => {
                    let mark = self.vars.len();
                    let flow = self.range(pipe, body, otherwise, dot);
                    self.vars.truncate(mark);
                    flow?
                }
                Node::Break(line) => Flow::Break(*line),
                Node::Continue(line) => Flow::Continue(*line),
            };
            if !matches!(flow, Flow::Next) {
                return Ok(flow);
            }
        }
        Ok(Flow::Next)
    }

    fn if_or_with(
        &mut self,
        branches: &[(Pipeline, Vec<Node>)],
        otherwise: &[Node],
        dot: &Value,
        with: bool,
    ) -> Result<Flow> {
        for (cond, body) in branches {
            let value = self.pipeline(cond, dot)?;
            if value.truthy() {
                return if with {
                    self.nodes(body, &value)
                } else {
                    self.nodes(body, dot)
                };
            }
        }
        self.nodes(otherwise, dot)
    }

    fn range(
        &mut self,
        pipe: &Pipeline,
        body: &[Node],
        otherwise: &[Node],
        dot: &Value,
    ) -> Result<Flow> {
        // The declared variables name the elements, not the collection.
        let collection = self.cmds(pipe, dot)?;
        let line = pipe.line;
        let mut empty = true;
        let mut each = |exec: &mut Self, key: Value, item: &Value| -> Result<bool> {
            empty = false;
            exec.iterations += 1;
            if exec.iterations > MAX_RANGE_ITERATIONS {
                return exec.fail(
                    line,
                    format!("more than {MAX_RANGE_ITERATIONS} range iterations"),
                );
            }
            let mark = exec.vars.len();
            if !pipe.decl.is_empty() {
                exec.charge(item.weight(), line)?;
            }
            match pipe.decl.as_slice() {
                [] => {}
                [elem] => exec.vars.push((elem.clone(), item.clone())),
                [k, elem, ..] => {
                    exec.vars.push((k.clone(), key));
                    exec.vars.push((elem.clone(), item.clone()));
                }
            }
            let flow = exec.nodes(body, item);
            exec.vars.truncate(mark);
            Ok(!matches!(flow?, Flow::Break(_)))
        };
        match &collection {
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if !each(self, Value::Int(i as i64), item)? {
                        break;
                    }
                }
            }
            Value::Map(map) => {
                // BTreeMap order is byte order of the keys: Go's sorted map keys.
                for (k, item) in map {
                    if !each(self, Value::str(k.clone()), item)? {
                        break;
                    }
                }
            }
            Value::Int(n) => {
                if pipe.decl.len() > 1 {
                    return self.fail(line, "can't use two variables to range over an integer");
                }
                for i in 0..*n {
                    let v = Value::Int(i);
                    if !each(self, v.clone(), &v)? {
                        break;
                    }
                }
            }
            Value::Null => {}
            other => {
                return self.fail(
                    line,
                    format!("range can't iterate over a {}", other.type_name()),
                );
            }
        }
        if empty {
            return self.nodes(otherwise, dot);
        }
        Ok(Flow::Next)
    }

    fn emit(&mut self, text: &str, line: usize) -> Result<()> {
        if self.out.len() + text.len() > MAX_OUTPUT_BYTES {
            return self.fail(line, format!("output larger than {MAX_OUTPUT_BYTES} bytes"));
        }
        self.out.push_str(text);
        Ok(())
    }

    /// Runs the pipeline and binds its declaration or assignment, if any.
    fn pipeline(&mut self, p: &Pipeline, dot: &Value) -> Result<Value> {
        let value = self.cmds(p, dot)?;
        if let Some(name) = p.decl.first() {
            if p.assign {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = value.clone(),
                    // The parser checks this; kept for safety.
                    None => return self.fail(p.line, format!("undefined variable \"${name}\"")),
                }
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn cmds(&mut self, p: &Pipeline, dot: &Value) -> Result<Value> {
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
            if name == "and" || name == "or" {
                return self.and_or(name == "and", rest, dot, piped, line);
            }
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

    /// Go's `and`/`or` stop at the first argument that decides the result, so
    /// `and .a (index .a "k")` does not evaluate the second argument when the first is empty.
    fn and_or(
        &mut self,
        and: bool,
        args: &[Arg],
        dot: &Value,
        piped: Option<Value>,
        line: usize,
    ) -> Result<Value> {
        let name = if and { "and" } else { "or" };
        if args.is_empty() && piped.is_none() {
            return self.fail(line, format!("{name}: missing arguments"));
        }
        let mut last = Value::Null;
        for arg in args {
            last = self.arg(arg, dot, line)?;
            if last.truthy() != and {
                return Ok(last);
            }
        }
        Ok(piped.unwrap_or(last))
    }

    fn arg(&mut self, arg: &Arg, dot: &Value, line: usize) -> Result<Value> {
        Ok(match arg {
            Arg::Field(path) => self.field(dot, path, line)?,
            Arg::Var(name, path) => {
                let root = if name.is_empty() {
                    Some(self.root)
                } else {
                    self.vars
                        .iter()
                        .rev()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v)
                };
                let Some(root) = root else {
                    return self.fail(line, format!("undefined variable \"${name}\""));
                };
                let (value, weight) = match walk(root, path) {
                    Ok(value) => {
                        let weight = value.weight();
                        self.check_budget(weight, line)?;
                        (value.clone(), weight)
                    }
                    Err(message) => return self.fail(line, message),
                };
                self.work += weight;
                value
            }
            Arg::Str(s) => Value::str(s.clone()),
            Arg::Int(i) => Value::Int(*i),
            Arg::Float(f) => Value::Float(*f),
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Nil => Value::Null,
            Arg::Ident(name) => self.call(name, Vec::new(), line)?,
            Arg::Sub(p) => self.cmds(p, dot)?,
            Arg::Chain(p, path) => {
                let value = self.cmds(p, dot)?;
                self.field(&value, path, line)?
            }
        })
    }

    fn field(&mut self, dot: &Value, path: &[String], line: usize) -> Result<Value> {
        let value = match walk(dot, path) {
            Ok(v) => v,
            Err(message) => return self.fail(line, message),
        };
        // Every copy out of the data counts, checked before the copy is made: a loop copying
        // a large value each pass is bounded.
        self.charge(value.weight(), line)?;
        Ok(value.clone())
    }

    fn check_budget(&self, weight: usize, line: usize) -> Result<()> {
        if self.work.saturating_add(weight) > MAX_WORK_BYTES {
            return self.fail(
                line,
                format!("functions and copies produced more than {MAX_WORK_BYTES} bytes"),
            );
        }
        Ok(())
    }

    fn charge(&mut self, weight: usize, line: usize) -> Result<()> {
        self.check_budget(weight, line)?;
        self.work = self.work.saturating_add(weight);
        Ok(())
    }

    fn call(&mut self, name: &str, args: Vec<Value>, line: usize) -> Result<Value> {
        let value = match funcs::call(name, args) {
            Ok(v) => v,
            Err(message) => return self.fail(line, message),
        };
        self.charge(value.weight(), line)?;
        Ok(value)
    }
}

/// The value at `path` under `value` (Go's field chain on maps).
fn walk<'v>(value: &'v Value, path: &[String]) -> std::result::Result<&'v Value, String> {
    let mut current = value;
    for key in path {
        match current {
            Value::Map(map) => match map.get(key) {
                Some(v) => current = v,
                None => return Err(format!("map has no entry for key {key:?}")),
            },
            other => {
                return Err(format!(
                    "can't evaluate field {key} in type {}",
                    other.type_name()
                ));
            }
        }
    }
    Ok(current)
}
