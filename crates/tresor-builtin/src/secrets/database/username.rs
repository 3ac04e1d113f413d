//! `username_template`: the subset of Go's `text/template` that Vault's username templates use.
//!
//! Supported: text with `{{ … }}` actions (and `{{-`/`-}}` whitespace trimming), pipelines
//! (`.RoleName | truncate 8`), parenthesised sub-pipelines, string (`"…"`, `` `…` ``) and
//! integer literals, the fields `.RoleName` and `.DisplayName`, and Vault's template functions
//! `random`, `truncate`, `truncate_sha256`, `uppercase`, `lowercase`, `replace`, `sha256`,
//! `base64`, `unix_time`, `unix_time_millis`, `timestamp`, `uuid` and Go's `printf` (with
//! `%s`, `%d`, `%v` and `%%`). As in Go, a piped value becomes the last argument. Not
//! supported: `if`/`range`/`with`, variables, other fields.

use base64::Engine as _;
use ring::rand::SecureRandom as _;

/// Vault's default PostgreSQL username template: 63 bytes is PostgreSQL's name limit.
pub(crate) const DEFAULT_TEMPLATE: &str = r#"{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}"#;

/// What a template may refer to.
#[derive(Debug, Clone, Default)]
pub(crate) struct Data {
    pub role_name: String,
    pub display_name: String,
}

/// A parsed template, checked once when a config is written and again when it is used.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Action(Pipeline),
}

#[derive(Debug, Clone)]
struct Pipeline(Vec<Command>);

#[derive(Debug, Clone)]
struct Command(Vec<Term>);

#[derive(Debug, Clone)]
enum Term {
    Field(String),
    Str(String),
    Int(i64),
    Func(String),
    Sub(Pipeline),
}

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Str(String),
    Int(i64),
}

impl Val {
    fn into_string(self) -> String {
        match self {
            Val::Str(s) => s,
            Val::Int(i) => i.to_string(),
        }
    }
}

const FUNCTIONS: [&str; 13] = [
    "random",
    "truncate",
    "truncate_sha256",
    "uppercase",
    "lowercase",
    "replace",
    "sha256",
    "base64",
    "unix_time",
    "unix_time_millis",
    "timestamp",
    "uuid",
    "printf",
];

impl Template {
    pub(crate) fn parse(source: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        let mut trim_next_text = false;
        while let Some(open) = rest.find("{{") {
            let mut text = rest.get(..open).unwrap_or("");
            let mut inner_start = open + 2;
            if rest.get(inner_start..).is_some_and(|r| r.starts_with("- ")) {
                text = text.trim_end();
                inner_start += 1;
            }
            if trim_next_text {
                text = text.trim_start();
            }
            if !text.is_empty() {
                parts.push(Part::Text(text.to_owned()));
            }
            let after = rest.get(inner_start..).unwrap_or("");
            let close = find_close(after).ok_or("unclosed action")?;
            let mut inner = after.get(..close).unwrap_or("");
            trim_next_text = false;
            if inner.ends_with(" -") {
                inner = inner.get(..inner.len() - 1).unwrap_or("");
                trim_next_text = true;
            }
            let tokens = tokenize(inner)?;
            let mut pos = 0;
            let pipeline = parse_pipeline(&tokens, &mut pos)?;
            if pos != tokens.len() {
                return Err("unexpected token in action".to_owned());
            }
            parts.push(Part::Action(pipeline));
            rest = after.get(close + 2..).unwrap_or("");
        }
        let text = if trim_next_text {
            rest.trim_start()
        } else {
            rest
        };
        if !text.is_empty() {
            parts.push(Part::Text(text.to_owned()));
        }
        Ok(Self { parts })
    }

    /// Renders the template; `now` is Unix nanoseconds.
    pub(crate) fn render(&self, data: &Data, now: i64) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Action(p) => out.push_str(&eval_pipeline(p, data, now)?.into_string()),
            }
        }
        Ok(out)
    }
}

/// The `}}` closing an action, skipping string literals that may contain one.
fn find_close(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes.get(i) {
            Some(b'"') => {
                i += 1;
                while i < bytes.len() && bytes.get(i) != Some(&b'"') {
                    if bytes.get(i) == Some(&b'\\') {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            Some(b'`') => {
                i += 1;
                while i < bytes.len() && bytes.get(i) != Some(&b'`') {
                    i += 1;
                }
                i += 1;
            }
            Some(b'}') if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Field(String),
    Str(String),
    Int(i64),
    Ident(String),
    Pipe,
    Open,
    Close,
}

fn tokenize(s: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            c if c.is_whitespace() => i += 1,
            '|' => {
                tokens.push(Token::Pipe);
                i += 1;
            }
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            '.' => {
                let name: String = chars
                    .iter()
                    .skip(i + 1)
                    .take_while(|c| c.is_alphanumeric() || **c == '_')
                    .collect();
                if name.is_empty() {
                    return Err("'.' must name a field".to_owned());
                }
                i += 1 + name.chars().count();
                tokens.push(Token::Field(name));
            }
            '"' => {
                let mut value = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated string".to_owned()),
                        Some('"') => break,
                        Some('\\') => {
                            let escaped = match chars.get(i + 1) {
                                Some('n') => '\n',
                                Some('t') => '\t',
                                Some(&other) => other,
                                None => return Err("unterminated string".to_owned()),
                            };
                            value.push(escaped);
                            i += 2;
                        }
                        Some(&other) => {
                            value.push(other);
                            i += 1;
                        }
                    }
                }
                i += 1;
                tokens.push(Token::Str(value));
            }
            '`' => {
                let value: String = chars
                    .iter()
                    .skip(i + 1)
                    .take_while(|c| **c != '`')
                    .collect();
                if chars.get(i + 1 + value.chars().count()) != Some(&'`') {
                    return Err("unterminated raw string".to_owned());
                }
                i += 2 + value.chars().count();
                tokens.push(Token::Str(value));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let text: String = chars
                    .iter()
                    .skip(i)
                    .enumerate()
                    .take_while(|(n, c)| c.is_ascii_digit() || (*n == 0 && **c == '-'))
                    .map(|(_, c)| *c)
                    .collect();
                i += text.chars().count();
                let n = text
                    .parse::<i64>()
                    .map_err(|_| format!("bad number {text:?}"))?;
                tokens.push(Token::Int(n));
            }
            c if c.is_alphabetic() || c == '_' => {
                let name: String = chars
                    .iter()
                    .skip(i)
                    .take_while(|c| c.is_alphanumeric() || **c == '_')
                    .collect();
                i += name.chars().count();
                tokens.push(Token::Ident(name));
            }
            other => return Err(format!("unexpected character {other:?}")),
        }
    }
    Ok(tokens)
}

fn parse_pipeline(tokens: &[Token], pos: &mut usize) -> Result<Pipeline, String> {
    let mut commands = vec![parse_command(tokens, pos)?];
    while tokens.get(*pos) == Some(&Token::Pipe) {
        *pos += 1;
        commands.push(parse_command(tokens, pos)?);
    }
    Ok(Pipeline(commands))
}

fn parse_command(tokens: &[Token], pos: &mut usize) -> Result<Command, String> {
    let mut terms = Vec::new();
    while let Some(token) = tokens.get(*pos) {
        let term = match token {
            Token::Pipe | Token::Close => break,
            Token::Field(f) => {
                if f != "RoleName" && f != "DisplayName" {
                    return Err(format!("unknown field .{f}"));
                }
                Term::Field(f.clone())
            }
            Token::Str(s) => Term::Str(s.clone()),
            Token::Int(i) => Term::Int(*i),
            Token::Ident(name) => {
                if !FUNCTIONS.contains(&name.as_str()) {
                    return Err(format!("function {name:?} not defined"));
                }
                Term::Func(name.clone())
            }
            Token::Open => {
                *pos += 1;
                let sub = parse_pipeline(tokens, pos)?;
                if tokens.get(*pos) != Some(&Token::Close) {
                    return Err("unclosed '('".to_owned());
                }
                Term::Sub(sub)
            }
        };
        terms.push(term);
        *pos += 1;
    }
    if terms.is_empty() {
        return Err("missing value for command".to_owned());
    }
    Ok(Command(terms))
}

fn eval_pipeline(pipeline: &Pipeline, data: &Data, now: i64) -> Result<Val, String> {
    let mut piped: Option<Val> = None;
    for command in &pipeline.0 {
        piped = Some(eval_command(command, piped.take(), data, now)?);
    }
    piped.ok_or_else(|| "empty pipeline".to_owned())
}

fn eval_command(
    command: &Command,
    piped: Option<Val>,
    data: &Data,
    now: i64,
) -> Result<Val, String> {
    let mut terms = command.0.iter();
    let Some(first) = terms.next() else {
        return Err("empty command".to_owned());
    };
    let Term::Func(name) = first else {
        if command.0.len() > 1 || piped.is_some() {
            return Err("can't give argument to non-function".to_owned());
        }
        return eval_term(first, data, now);
    };
    let mut args = terms
        .map(|t| eval_term(t, data, now))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(p) = piped {
        args.push(p);
    }
    call(name, args, now)
}

fn eval_term(term: &Term, data: &Data, now: i64) -> Result<Val, String> {
    Ok(match term {
        Term::Field(f) if f == "RoleName" => Val::Str(data.role_name.clone()),
        Term::Field(_) => Val::Str(data.display_name.clone()),
        Term::Str(s) => Val::Str(s.clone()),
        Term::Int(i) => Val::Int(*i),
        Term::Func(name) => call(name, Vec::new(), now)?,
        Term::Sub(p) => eval_pipeline(p, data, now)?,
    })
}

fn int_arg(name: &str, v: Option<&Val>) -> Result<usize, String> {
    match v {
        Some(Val::Int(i)) if *i >= 0 => usize::try_from(*i).map_err(|e| e.to_string()),
        Some(Val::Int(_)) => Err(format!("{name}: negative length")),
        _ => Err(format!("{name}: expected an integer argument")),
    }
}

fn str_arg(name: &str, v: Option<&Val>) -> Result<String, String> {
    match v {
        Some(v) => Ok(v.clone().into_string()),
        None => Err(format!("{name}: missing argument")),
    }
}

fn arity(name: &str, args: &[Val], n: usize) -> Result<(), String> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ))
    }
}

fn call(name: &str, args: Vec<Val>, now: i64) -> Result<Val, String> {
    let a0 = args.first();
    let a1 = args.get(1);
    let a2 = args.get(2);
    Ok(Val::Str(match name {
        "random" => {
            arity(name, &args, 1)?;
            random_alphanumeric(int_arg(name, a0)?)?
        }
        "truncate" => {
            arity(name, &args, 2)?;
            let n = int_arg(name, a0)?;
            str_arg(name, a1)?.chars().take(n).collect()
        }
        "truncate_sha256" => {
            arity(name, &args, 2)?;
            let n = int_arg(name, a0)?;
            let s = str_arg(name, a1)?;
            if s.chars().count() <= n {
                s
            } else {
                let keep = n.saturating_sub(8);
                let head: String = s.chars().take(keep).collect();
                let tail: String = s.chars().skip(keep).collect();
                let digest =
                    hex::encode(ring::digest::digest(&ring::digest::SHA256, tail.as_bytes()));
                format!("{head}{}", digest.get(..8).unwrap_or(""))
            }
        }
        "uppercase" => {
            arity(name, &args, 1)?;
            str_arg(name, a0)?.to_uppercase()
        }
        "lowercase" => {
            arity(name, &args, 1)?;
            str_arg(name, a0)?.to_lowercase()
        }
        "replace" => {
            arity(name, &args, 3)?;
            let find = str_arg(name, a0)?;
            let with = str_arg(name, a1)?;
            str_arg(name, a2)?.replace(&find, &with)
        }
        "sha256" => {
            arity(name, &args, 1)?;
            hex::encode(ring::digest::digest(
                &ring::digest::SHA256,
                str_arg(name, a0)?.as_bytes(),
            ))
        }
        "base64" => {
            arity(name, &args, 1)?;
            base64::engine::general_purpose::STANDARD.encode(str_arg(name, a0)?)
        }
        "unix_time" => {
            arity(name, &args, 0)?;
            return Ok(Val::Int(now / 1_000_000_000));
        }
        "unix_time_millis" => {
            arity(name, &args, 0)?;
            return Ok(Val::Int(now / 1_000_000));
        }
        "timestamp" => {
            arity(name, &args, 1)?;
            go_layout(&str_arg(name, a0)?, now)?
        }
        "uuid" => {
            arity(name, &args, 0)?;
            random_uuid()?
        }
        "printf" => printf(&args)?,
        other => return Err(format!("function {other:?} not defined")),
    }))
}

fn printf(args: &[Val]) -> Result<String, String> {
    let Some(Val::Str(format)) = args.first() else {
        return Err("printf: the format must be a string".to_owned());
    };
    let mut values = args.iter().skip(1);
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('s' | 'v' | 'd') => match values.next() {
                Some(v) => out.push_str(&v.clone().into_string()),
                None => out.push_str("%!s(MISSING)"),
            },
            Some(other) => return Err(format!("printf: unsupported verb %{other}")),
            None => out.push_str("%!(NOVERB)"),
        }
    }
    Ok(out)
}

/// Go's reference-time layout for the common tokens (`2006`, `01`, `02`, `15`, `04`, `05`),
/// in UTC; everything else is copied.
fn go_layout(layout: &str, now: i64) -> Result<String, String> {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(now))
        .map_err(|e| e.to_string())?;
    let tokens = [
        ("2006", format!("{:04}", t.year())),
        ("01", format!("{:02}", u8::from(t.month()))),
        ("02", format!("{:02}", t.day())),
        ("15", format!("{:02}", t.hour())),
        ("04", format!("{:02}", t.minute())),
        ("05", format!("{:02}", t.second())),
    ];
    // One left-to-right scan: a value already written is never read as a token again.
    let mut out = String::new();
    let mut rest = layout;
    'scan: while !rest.is_empty() {
        for (token, value) in &tokens {
            if let Some(after) = rest.strip_prefix(token) {
                out.push_str(value);
                rest = after;
                continue 'scan;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    Ok(out)
}

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `n` characters drawn uniformly from `[A-Za-z0-9]` with the system CSPRNG.
pub(crate) fn random_alphanumeric(n: usize) -> Result<String, String> {
    super::password::random_from(ALPHANUMERIC, n)
}

fn random_uuid() -> Result<String, String> {
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| "the system random source failed".to_owned())?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        h.get(..8).unwrap_or(""),
        h.get(8..12).unwrap_or(""),
        h.get(12..16).unwrap_or(""),
        h.get(16..20).unwrap_or(""),
        h.get(20..).unwrap_or("")
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const NOW: i64 = 1_700_000_000_123_456_789;

    fn render(template: &str, role: &str, display: &str) -> Result<String, String> {
        Template::parse(template)?.render(
            &Data {
                role_name: role.to_owned(),
                display_name: display.to_owned(),
            },
            NOW,
        )
    }

    #[test]
    fn the_default_template_has_vaults_shape() {
        let name = render(DEFAULT_TEMPLATE, "readonly-app", "token-myapp-very-long").unwrap();
        let parts: Vec<&str> = name.split('-').collect();
        // v - token - my - readonly - <random 20> - <unix seconds>
        assert!(name.starts_with("v-token-my-readonly-"), "{name}");
        assert_eq!(parts.last().copied(), Some("1700000000"));
        let random = parts.get(parts.len() - 2).unwrap();
        assert_eq!(random.len(), 20);
        assert!(random.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(name.len() <= 63);
        let other = render(DEFAULT_TEMPLATE, "readonly-app", "token-myapp-very-long").unwrap();
        assert_ne!(name, other, "random part must differ");
    }

    #[test]
    fn long_inputs_are_truncated_to_63() {
        let name = render(DEFAULT_TEMPLATE, &"r".repeat(100), &"d".repeat(100)).unwrap();
        assert_eq!(name.len(), 51);
        let name = render(
            r#"{{ printf "%s-%s" .RoleName (random 60) | truncate 63 }}"#,
            "role",
            "",
        )
        .unwrap();
        assert_eq!(name.len(), 63);
    }

    #[test]
    fn functions_pipe_the_value_as_last_argument() {
        assert_eq!(render("{{.RoleName | uppercase}}", "ab", "").unwrap(), "AB");
        assert_eq!(render("{{.RoleName | lowercase}}", "AB", "").unwrap(), "ab");
        assert_eq!(
            render(r#"{{.RoleName | replace "-" "_"}}"#, "a-b-c", "").unwrap(),
            "a_b_c"
        );
        assert_eq!(
            render("{{truncate 2 .RoleName}}", "abcdef", "").unwrap(),
            "ab"
        );
        assert_eq!(render("{{unix_time}}", "", "").unwrap(), "1700000000");
        assert_eq!(
            render("{{unix_time_millis}}", "", "").unwrap(),
            "1700000000123"
        );
        assert_eq!(
            render(r#"{{timestamp "2006-01-02T15:04:05"}}"#, "", "").unwrap(),
            "2023-11-14T22:13:20"
        );
        assert_eq!(render("{{.RoleName | base64}}", "ab", "").unwrap(), "YWI=");
        assert_eq!(
            render("{{.RoleName | sha256 | truncate 8}}", "ab", "").unwrap(),
            "fb8e20fc"
        );
        assert_eq!(
            render("{{ .RoleName | truncate_sha256 10 }}", "short", "").unwrap(),
            "short"
        );
        let t = render(
            "{{ .RoleName | truncate_sha256 10 }}",
            "averyveryverylongname",
            "",
        )
        .unwrap();
        assert_eq!(t.len(), 10);
        assert!(t.starts_with("av"));
        assert_eq!(render("{{uuid}}", "", "").unwrap().len(), 36);
        assert_eq!(render("x {{- .RoleName -}} y", "r", "").unwrap(), "xry");
        assert_eq!(render(r#"{{printf "%d%%" 5}}"#, "", "").unwrap(), "5%");
    }

    #[test]
    fn bad_templates_are_refused_at_parse_time() {
        for bad in [
            "{{.Nope}}",
            "{{nosuchfunc}}",
            "{{ .RoleName",
            "{{ \"open }}",
            "{{ ( .RoleName }}",
            "{{ }}",
            "{{ .RoleName .DisplayName }}",
        ] {
            let parsed = Template::parse(bad);
            let rendered = parsed.and_then(|t| t.render(&Data::default(), NOW));
            assert!(rendered.is_err(), "{bad:?} should fail");
        }
        assert!(render("{{truncate \"x\" .RoleName}}", "r", "").is_err());
        assert!(render("{{random}}", "r", "").is_err());
    }
}
