//! Template source → tree: actions split out of the text (with trim markers and comments),
//! each action's tokens, then pipelines (with their variable declarations) and the
//! `if`/`with`/`range` blocks. Variables are checked here, as Go's parser checks them: using
//! one that is not in scope is a parse error.

use super::{Arg, Cmd, MAX_DEPTH, MAX_TEMPLATE_BYTES, Node, Pipeline, Result, Template, err};

/// Parses `text`; `name` is used in errors.
pub fn parse(name: &str, text: &str) -> Result<Template> {
    if text.len() > MAX_TEMPLATE_BYTES {
        return err(format!(
            "template {name}: larger than {MAX_TEMPLATE_BYTES} bytes"
        ));
    }
    let items = split(name, text)?;
    let mut parser = Parser {
        name,
        items,
        at: 0,
        vars: Vec::new(),
        range_depth: 0,
    };
    let (nodes, end) = parser.block(0)?;
    match end {
        Closer::Eof => {}
        Closer::End(line) => return err(format!("template {name}:{line}: unexpected {{{{end}}}}")),
        Closer::Else(line, _) => {
            return err(format!("template {name}:{line}: unexpected {{{{else}}}}"));
        }
    }
    Ok(Template {
        name: name.to_owned(),
        nodes,
    })
}

/// A piece of the source: text, or an action's tokens with its line.
#[derive(Debug)]
enum Item {
    Text(String),
    Action(usize, Vec<Tok>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Pipe,
    Open,
    Close,
    Field(Vec<String>),
    /// `.a.b` right after `)`: fields of the parenthesised pipeline's value.
    Chain(Vec<String>),
    Str(String),
    Int(i64),
    Float(f64),
    Ident(String),
    /// `$name.a.b` (`$` alone: empty name).
    Var(String, Vec<String>),
    /// `:=`
    Declare,
    /// `=`
    Assign,
    Comma,
}

fn line_of(text: &str, byte: usize) -> usize {
    text.get(..byte).map_or(1, |s| s.matches('\n').count() + 1)
}

fn split(name: &str, text: &str) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    let mut trim_next = false;
    while !rest.is_empty() {
        let Some(open) = rest.find("{{") else {
            let t = if trim_next { rest.trim_start() } else { rest };
            items.push(Item::Text(t.to_owned()));
            break;
        };
        let (before, after) = rest.split_at(open);
        let mut inner = after.get(2..).unwrap_or("");
        let trim_left = inner.starts_with("- ")
            || inner.starts_with("-\t")
            || inner.starts_with("-\n")
            || inner.starts_with("-\r");
        let mut t = if trim_next {
            before.trim_start()
        } else {
            before
        };
        if trim_left {
            t = t.trim_end();
            inner = inner.get(1..).unwrap_or("");
        }
        if !t.is_empty() {
            items.push(Item::Text(t.to_owned()));
        }
        let line = line_of(text, offset + open);
        let body_start = offset + open + (after.len() - inner.len());
        // The action ends at the first `}}` outside a string literal.
        let end = find_close(inner).ok_or_else(|| {
            super::TemplateError(format!("template {name}:{line}: unclosed action"))
        })?;
        let mut body = inner.get(..end).unwrap_or("");
        trim_next = false;
        if body.ends_with(" -") || body.ends_with("\t-") || body.ends_with("\n-") {
            body = body.get(..body.len() - 1).unwrap_or("");
            trim_next = true;
        }
        let trimmed = body.trim();
        if trimmed.starts_with("/*") {
            if !trimmed.ends_with("*/") {
                return err(format!("template {name}:{line}: unclosed comment"));
            }
        } else {
            items.push(Item::Action(line, lex(name, line, body)?));
        }
        let consumed = (body_start - offset) + end + 2;
        offset += consumed;
        rest = rest.get(consumed..).unwrap_or("");
    }
    Ok(items)
}

fn find_close(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or(0);
        match quote {
            Some(q) => {
                if b == b'\\' && q == b'"' {
                    i += 1;
                } else if b == q {
                    quote = None;
                }
            }
            None => {
                if b == b'"' || b == b'`' {
                    quote = Some(b);
                } else if b == b'}' && bytes.get(i + 1) == Some(&b'}') {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

/// Letters, digits and `_` from `*i` on (an identifier or field name).
fn ident_at(chars: &[char], i: &mut usize) -> String {
    let start = *i;
    while chars
        .get(*i)
        .is_some_and(|c| c.is_alphanumeric() || *c == '_')
    {
        *i += 1;
    }
    chars.get(start..*i).unwrap_or(&[]).iter().collect()
}

fn lex(name: &str, line: usize, body: &str) -> Result<Vec<Tok>> {
    let fail = |m: String| err(format!("template {name}:{line}: {m}"));
    let chars: Vec<char> = body.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            '(' => {
                toks.push(Tok::Open);
                i += 1;
            }
            ')' => {
                toks.push(Tok::Close);
                i += 1;
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return fail("unterminated string".into());
                    };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let Some(&e) = chars.get(i) else {
                                return fail("unterminated string".into());
                            };
                            i += 1;
                            match e {
                                'n' => s.push('\n'),
                                't' => s.push('\t'),
                                'r' => s.push('\r'),
                                '\\' => s.push('\\'),
                                '"' => s.push('"'),
                                '\'' => s.push('\''),
                                'a' => s.push('\u{7}'),
                                'b' => s.push('\u{8}'),
                                'f' => s.push('\u{c}'),
                                'v' => s.push('\u{b}'),
                                'x' | 'u' | 'U' => {
                                    let n = match e {
                                        'x' => 2,
                                        'u' => 4,
                                        _ => 8,
                                    };
                                    let hex: String = chars.iter().skip(i).take(n).collect();
                                    i += n;
                                    let code = u32::from_str_radix(&hex, 16)
                                        .ok()
                                        .filter(|_| hex.len() == n);
                                    match code.and_then(char::from_u32) {
                                        Some(ch) => s.push(ch),
                                        None => return fail("bad escape in string".into()),
                                    }
                                }
                                other => {
                                    return fail(format!("unknown escape \\{other} in string"));
                                }
                            }
                        }
                        '\n' => return fail("newline in string".into()),
                        c => s.push(c),
                    }
                }
                toks.push(Tok::Str(s));
            }
            '`' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return fail("unterminated raw string".into());
                    };
                    i += 1;
                    if c == '`' {
                        break;
                    }
                    s.push(c);
                }
                toks.push(Tok::Str(s));
            }
            '.' if !chars.get(i + 1).is_some_and(char::is_ascii_digit) => {
                let mut path = Vec::new();
                while chars.get(i) == Some(&'.') {
                    i += 1;
                    let start = i;
                    while chars
                        .get(i)
                        .is_some_and(|c| c.is_alphanumeric() || *c == '_')
                    {
                        i += 1;
                    }
                    let key: String = chars.get(start..i).unwrap_or(&[]).iter().collect();
                    if key.is_empty() {
                        if path.is_empty() && chars.get(i).is_none_or(|c| *c != '.') {
                            break;
                        }
                        return fail("bad field syntax".into());
                    }
                    path.push(key);
                }
                let chained = i > 0
                    && toks.last() == Some(&Tok::Close)
                    && chars.get(i.saturating_sub(
                        path.iter().map(|k| k.chars().count() + 1).sum::<usize>() + 1,
                    )) == Some(&')');
                if chained && !path.is_empty() {
                    toks.push(Tok::Chain(path));
                } else {
                    toks.push(Tok::Field(path));
                }
            }
            '$' => {
                i += 1;
                let name = ident_at(&chars, &mut i);
                let mut path = Vec::new();
                while chars.get(i) == Some(&'.') {
                    i += 1;
                    let key = ident_at(&chars, &mut i);
                    if key.is_empty() {
                        return fail("bad variable syntax".into());
                    }
                    path.push(key);
                }
                toks.push(Tok::Var(name, path));
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            '=' => {
                toks.push(Tok::Assign);
                i += 1;
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => {
                let start = i;
                i += 1;
                while chars.get(i).is_some_and(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-')
                }) {
                    i += 1;
                }
                let text: String = chars.get(start..i).unwrap_or(&[]).iter().collect();
                let clean = text.replace('_', "");
                if let Ok(n) = clean.parse::<i64>() {
                    toks.push(Tok::Int(n));
                } else if let Some(n) = clean
                    .strip_prefix("0x")
                    .and_then(|h| i64::from_str_radix(h, 16).ok())
                {
                    toks.push(Tok::Int(n));
                } else if let Ok(f) = clean.parse::<f64>()
                    && f.is_finite()
                {
                    toks.push(Tok::Float(f));
                } else {
                    return fail(format!("bad number syntax: {text:?}"));
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_')
                {
                    i += 1;
                }
                let word: String = chars.get(start..i).unwrap_or(&[]).iter().collect();
                toks.push(Tok::Ident(word));
            }
            '\'' => return fail("character constants are not supported".into()),
            other => return fail(format!("unexpected {other:?} in action")),
        }
    }
    Ok(toks)
}

struct Parser<'a> {
    name: &'a str,
    items: Vec<Item>,
    at: usize,
    /// Variables in scope (without `$`), innermost last; `$` itself is always in scope.
    vars: Vec<String>,
    /// How many `range` bodies enclose the current position (`break`/`continue` need one).
    range_depth: usize,
}

/// What ended a block.
enum Closer {
    Eof,
    /// `{{end}}`, at this line.
    End(usize),
    /// `{{else …}}`, at this line, with the tokens after `else`.
    Else(usize, Vec<Tok>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    If,
    With,
    Range,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::If => "if",
            Kind::With => "with",
            Kind::Range => "range",
        }
    }
}

impl Parser<'_> {
    fn fail<T>(&self, line: usize, m: impl std::fmt::Display) -> Result<T> {
        err(format!("template {}:{line}: {m}", self.name))
    }

    /// Nodes up to an `{{else…}}` or `{{end}}` (returned) or the end of the source.
    fn block(&mut self, depth: usize) -> Result<(Vec<Node>, Closer)> {
        if depth > MAX_DEPTH {
            return err(format!(
                "template {}: nested deeper than {MAX_DEPTH} levels",
                self.name
            ));
        }
        let mut nodes = Vec::new();
        while let Some(item) = self.items.get_mut(self.at) {
            self.at += 1;
            let (line, toks) = match item {
                Item::Text(t) => {
                    nodes.push(Node::Text(std::mem::take(t)));
                    continue;
                }
                Item::Action(line, toks) => (*line, std::mem::take(toks)),
            };
            let rest = toks.get(1..).unwrap_or(&[]);
            let keyword = match toks.first() {
                Some(Tok::Ident(kw)) => kw.as_str(),
                _ => "",
            };
            match keyword {
                "end" => {
                    if !rest.is_empty() {
                        return self.fail(line, "unexpected tokens after end");
                    }
                    return Ok((nodes, Closer::End(line)));
                }
                "else" => return Ok((nodes, Closer::Else(line, rest.to_vec()))),
                "if" => nodes.push(self.control(Kind::If, line, rest, depth)?),
                "with" => nodes.push(self.control(Kind::With, line, rest, depth)?),
                "range" => nodes.push(self.control(Kind::Range, line, rest, depth)?),
                "break" | "continue" => {
                    if self.range_depth == 0 {
                        return self.fail(line, format!("{{{{{keyword}}}}} outside {{{{range}}}}"));
                    }
                    if !rest.is_empty() {
                        return self.fail(line, format!("unexpected tokens after {keyword}"));
                    }
                    nodes.push(if keyword == "break" {
                        Node::Break(line)
                    } else {
                        Node::Continue(line)
                    });
                }
                "define" | "template" | "block" => {
                    return self.fail(line, format!("{{{{{keyword}}}}} is not supported"));
                }
                _ => nodes.push(Node::Action(self.pipeline(line, &toks, depth, 1)?)),
            }
        }
        Ok((nodes, Closer::Eof))
    }

    /// An `if`, `with` or `range` block; the variables it declares end with it.
    fn control(&mut self, kind: Kind, line: usize, toks: &[Tok], depth: usize) -> Result<Node> {
        let mark = self.vars.len();
        let node = self.control_scoped(kind, line, toks, depth);
        self.vars.truncate(mark);
        node
    }

    fn control_scoped(
        &mut self,
        kind: Kind,
        line: usize,
        toks: &[Tok],
        depth: usize,
    ) -> Result<Node> {
        let word = kind.word();
        let most_vars = if kind == Kind::Range { 2 } else { 1 };
        let mut cond = self.pipeline(line, toks, depth, most_vars)?;
        let mut branches = Vec::new();
        loop {
            // Variables declared in a body end with it (the condition's stay for the others).
            let scope = self.vars.len();
            if kind == Kind::Range {
                self.range_depth += 1;
            }
            let body = self.block(depth + 1);
            if kind == Kind::Range {
                self.range_depth -= 1;
            }
            self.vars.truncate(scope);
            let (body, end) = body?;
            branches.push((cond, body));
            let else_line = match end {
                Closer::End(_) => return Ok(self.node(kind, branches, Vec::new())),
                Closer::Eof => return self.fail(line, format!("{word} without end")),
                Closer::Else(else_line, rest) if !rest.is_empty() => {
                    // `else if` chains an `if`, `else with` a `with`; `range` has neither.
                    match rest.first() {
                        Some(Tok::Ident(w)) if w == word && kind != Kind::Range => {
                            cond =
                                self.pipeline(else_line, rest.get(1..).unwrap_or(&[]), depth, 1)?;
                            continue;
                        }
                        _ => return self.fail(else_line, "unexpected tokens after else"),
                    }
                }
                Closer::Else(else_line, _) => else_line,
            };
            let scope = self.vars.len();
            let otherwise = self.block(depth + 1);
            self.vars.truncate(scope);
            let (otherwise, end) = otherwise?;
            return match end {
                Closer::End(_) => Ok(self.node(kind, branches, otherwise)),
                Closer::Eof => self.fail(else_line, format!("{word} without end")),
                Closer::Else(l, _) => self.fail(l, format!("expected end; found else in {word}")),
            };
        }
    }

    fn node(
        &self,
        kind: Kind,
        mut branches: Vec<(Pipeline, Vec<Node>)>,
        otherwise: Vec<Node>,
    ) -> Node {
        match kind {
            Kind::If => Node::If {
                branches,
                otherwise,
            },
            Kind::With => Node::With {
                branches,
                otherwise,
            },
            Kind::Range => {
                // A range has exactly one branch (no `else range`).
                let (pipe, body) = branches.remove(0);
                Node::Range {
                    pipe,
                    body,
                    otherwise,
                }
            }
        }
    }

    /// A pipeline with an optional declaration (`$x :=`, or up to `most_vars` variables
    /// `$k, $v :=`) or assignment (`$x =`). The declared variables come into scope after it.
    fn pipeline(
        &mut self,
        line: usize,
        toks: &[Tok],
        depth: usize,
        most_vars: usize,
    ) -> Result<Pipeline> {
        let (decl, assign, rest) = match toks {
            [Tok::Var(a, pa), Tok::Declare | Tok::Assign, rest @ ..] if pa.is_empty() => {
                (vec![a.clone()], toks.get(1) == Some(&Tok::Assign), rest)
            }
            [
                Tok::Var(a, pa),
                Tok::Comma,
                Tok::Var(b, pb),
                Tok::Declare,
                rest @ ..,
            ] if pa.is_empty() && pb.is_empty() => {
                if most_vars < 2 {
                    return self.fail(line, "too many declarations");
                }
                (vec![a.clone(), b.clone()], false, rest)
            }
            _ => (Vec::new(), false, toks),
        };
        if decl.iter().any(String::is_empty) {
            return self.fail(line, "can't declare or assign $");
        }
        if assign && let Some(name) = decl.first() {
            self.check_var(line, name)?;
        }
        let cmds = self.cmds(line, rest, depth)?;
        if !assign {
            self.vars.extend(decl.iter().cloned());
        }
        Ok(Pipeline {
            line,
            decl,
            assign,
            cmds,
        })
    }

    fn check_var(&self, line: usize, name: &str) -> Result<()> {
        if name.is_empty() || self.vars.iter().any(|v| v == name) {
            return Ok(());
        }
        self.fail(line, format!("undefined variable \"${name}\""))
    }

    fn cmds(&self, line: usize, toks: &[Tok], depth: usize) -> Result<Vec<Cmd>> {
        if depth > MAX_DEPTH {
            return self.fail(line, format!("nested deeper than {MAX_DEPTH} levels"));
        }
        let mut cmds = Vec::new();
        let mut args = Vec::new();
        let mut i = 0;
        while let Some(tok) = toks.get(i) {
            i += 1;
            match tok {
                Tok::Pipe => {
                    if args.is_empty() {
                        return self.fail(line, "missing command before |");
                    }
                    cmds.push(Cmd {
                        args: std::mem::take(&mut args),
                    });
                }
                Tok::Open => {
                    // Find the matching parenthesis.
                    let start = i;
                    let mut level = 1usize;
                    while let Some(t) = toks.get(i) {
                        match t {
                            Tok::Open => level += 1,
                            Tok::Close => {
                                level -= 1;
                                if level == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                        i += 1;
                    }
                    if level != 0 {
                        return self.fail(line, "unclosed (");
                    }
                    let inner = toks.get(start..i).unwrap_or(&[]);
                    i += 1;
                    args.push(Arg::Sub(Pipeline {
                        line,
                        decl: Vec::new(),
                        assign: false,
                        cmds: self.cmds(line, inner, depth + 1)?,
                    }));
                }
                Tok::Close => return self.fail(line, "unexpected )"),
                Tok::Field(path) => args.push(Arg::Field(path.clone())),
                Tok::Var(name, path) => {
                    self.check_var(line, name)?;
                    args.push(Arg::Var(name.clone(), path.clone()));
                }
                Tok::Declare | Tok::Assign => {
                    return self.fail(line, "unexpected := or = (a declaration starts the action)");
                }
                Tok::Comma => return self.fail(line, "unexpected , in command"),
                Tok::Chain(path) => match args.pop() {
                    Some(Arg::Sub(p)) => args.push(Arg::Chain(p, path.clone())),
                    _ => return self.fail(line, "unexpected field after )"),
                },
                Tok::Str(s) => args.push(Arg::Str(s.clone())),
                Tok::Int(n) => args.push(Arg::Int(*n)),
                Tok::Float(f) => args.push(Arg::Float(*f)),
                Tok::Ident(word) => args.push(match word.as_str() {
                    "true" => Arg::Bool(true),
                    "false" => Arg::Bool(false),
                    "nil" => Arg::Nil,
                    name => {
                        if let Some(why) = super::funcs::refused(name) {
                            return self.fail(
                                line,
                                format!("function {name:?} is not supported by tresor sync: {why}"),
                            );
                        }
                        if !super::funcs::exists(name) {
                            return self.fail(line, format!("function {name:?} not defined"));
                        }
                        Arg::Ident(name.to_owned())
                    }
                }),
            }
        }
        if args.is_empty() {
            return self.fail(
                line,
                if cmds.is_empty() {
                    "missing value for command"
                } else {
                    "missing command after |"
                },
            );
        }
        cmds.push(Cmd { args });
        Ok(cmds)
    }
}
