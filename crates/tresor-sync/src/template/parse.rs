//! Template source → tree: actions split out of the text (with trim markers and comments),
//! each action's tokens, then pipelines and `if` blocks.

use super::{Arg, Cmd, MAX_DEPTH, MAX_TEMPLATE_BYTES, Node, Pipeline, Result, Template, err};

/// Parses `text`; `name` is used in errors.
pub fn parse(name: &str, text: &str) -> Result<Template> {
    if text.len() > MAX_TEMPLATE_BYTES {
        return err(format!(
            "template {name}: larger than {MAX_TEMPLATE_BYTES} bytes"
        ));
    }
    let items = split(name, text)?;
    let mut parser = Parser { name, items, at: 0 };
    let (nodes, end) = parser.block(0)?;
    if let Some((kw, line)) = end {
        return err(format!("template {name}:{line}: unexpected {{{{{kw}}}}}"));
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
            '$' => return fail("variables ($) are not supported".into()),
            ':' | '=' => return fail("variable declarations are not supported".into()),
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
}

/// What ended a block: `else` (with the rest of its tokens) or `end`, and the line.
type BlockEnd = Option<(String, usize)>;

impl Parser<'_> {
    fn fail<T>(&self, line: usize, m: impl std::fmt::Display) -> Result<T> {
        err(format!("template {}:{line}: {m}", self.name))
    }

    /// Nodes up to an `{{else…}}` or `{{end}}` (returned) or the end of the source.
    fn block(&mut self, depth: usize) -> Result<(Vec<Node>, BlockEnd)> {
        if depth > MAX_DEPTH {
            return err(format!(
                "template {}: nested deeper than {MAX_DEPTH} levels",
                self.name
            ));
        }
        let mut nodes = Vec::new();
        while let Some(item) = self.items.get_mut(self.at) {
            self.at += 1;
            match item {
                Item::Text(t) => nodes.push(Node::Text(std::mem::take(t))),
                Item::Action(line, toks) => {
                    let line = *line;
                    let toks = std::mem::take(toks);
                    match toks.first() {
                        Some(Tok::Ident(kw)) if kw == "end" => {
                            if toks.len() > 1 {
                                return self.fail(line, "unexpected tokens after end");
                            }
                            return Ok((nodes, Some(("end".into(), line))));
                        }
                        Some(Tok::Ident(kw)) if kw == "else" => {
                            // Keep the tokens after `else` (an `if …` chain) for the caller.
                            self.at -= 1;
                            if let Some(Item::Action(_, slot)) = self.items.get_mut(self.at) {
                                *slot = toks;
                            }
                            self.at += 1;
                            return Ok((nodes, Some(("else".into(), line))));
                        }
                        Some(Tok::Ident(kw)) if kw == "if" => {
                            let cond = self.pipeline(line, toks.get(1..).unwrap_or(&[]), depth)?;
                            nodes.push(self.if_block(line, cond, depth)?);
                        }
                        Some(Tok::Ident(kw))
                            if matches!(
                                kw.as_str(),
                                "range"
                                    | "with"
                                    | "define"
                                    | "template"
                                    | "block"
                                    | "break"
                                    | "continue"
                            ) =>
                        {
                            return self.fail(line, format!("{{{{{kw}}}}} is not supported"));
                        }
                        _ => nodes.push(Node::Action(self.pipeline(line, &toks, depth)?)),
                    }
                }
            }
        }
        Ok((nodes, None))
    }

    fn if_block(&mut self, line: usize, cond: Pipeline, depth: usize) -> Result<Node> {
        let mut branches = Vec::new();
        let mut cond = cond;
        loop {
            let (body, end) = self.block(depth + 1)?;
            branches.push((cond, body));
            match end {
                Some((kw, _)) if kw == "end" => {
                    return Ok(Node::If {
                        branches,
                        otherwise: Vec::new(),
                    });
                }
                Some((_, else_line)) => {
                    let toks = match self.items.get_mut(self.at.saturating_sub(1)) {
                        Some(Item::Action(_, t)) => std::mem::take(t),
                        _ => Vec::new(),
                    };
                    match toks.get(1) {
                        None => {
                            let (otherwise, end) = self.block(depth + 1)?;
                            if !matches!(&end, Some((kw, _)) if kw == "end") {
                                return self.fail(else_line, "else without end");
                            }
                            return Ok(Node::If {
                                branches,
                                otherwise,
                            });
                        }
                        Some(Tok::Ident(kw)) if kw == "if" => {
                            cond = self.pipeline(else_line, toks.get(2..).unwrap_or(&[]), depth)?;
                        }
                        Some(_) => return self.fail(else_line, "unexpected tokens after else"),
                    }
                }
                None => return self.fail(line, "if without end"),
            }
        }
    }

    fn pipeline(&self, line: usize, toks: &[Tok], depth: usize) -> Result<Pipeline> {
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
                    args.push(Arg::Sub(self.pipeline(line, inner, depth + 1)?));
                }
                Tok::Close => return self.fail(line, "unexpected )"),
                Tok::Field(path) => args.push(Arg::Field(path.clone())),
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
        Ok(Pipeline { line, cmds })
    }
}
