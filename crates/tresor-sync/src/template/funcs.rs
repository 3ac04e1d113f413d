//! The template functions: Go's built-ins that ESO/VSO templates use (`printf`, `eq`, `ne`,
//! `not`, `and`, `or`, `len`, `index`) and sprig's (`b64enc`, `b64dec`, `toJson`, `fromJson`,
//! `upper`, `lower`, `trim`, `trimPrefix`, `trimSuffix`, `quote`, `squote`, `toString`,
//! `default`, `replace`, `contains`, `hasPrefix`, `hasSuffix`, `indent`, `nindent`, `get`).
//!
//! Where sprig swallows an error and returns something (`b64dec` of bad input returns the
//! error text, `fromJson` of bad JSON an empty map), these return an error instead: a Secret
//! holding an error message in place of a credential is worse than a failed sync. Every
//! result is bounded by [`super::MAX_OUTPUT_BYTES`] before it is built. Error messages name
//! functions and types, never values.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use zeroize::Zeroizing;

use super::{MAX_OUTPUT_BYTES, Value};

const NAMES: &[&str] = &[
    "printf",
    "eq",
    "ne",
    "not",
    "and",
    "or",
    "len",
    "index",
    "b64enc",
    "b64dec",
    "toJson",
    "fromJson",
    "upper",
    "lower",
    "trim",
    "trimPrefix",
    "trimSuffix",
    "quote",
    "squote",
    "toString",
    "default",
    "replace",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "indent",
    "nindent",
    "get",
    "empty",
];

pub fn exists(name: &str) -> bool {
    NAMES.contains(&name)
}

type R = Result<Value, String>;

static NULL: Value = Value::Null;

/// The `i`th argument (callers check the count first).
fn at(a: &[Value], i: usize) -> &Value {
    a.get(i).unwrap_or(&NULL)
}

fn arity(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn string<'a>(name: &str, v: &'a Value) -> Result<&'a str, String> {
    match v {
        Value::Str(s) => Ok(s.as_str()),
        other => Err(format!(
            "{name}: expected a string, got {}",
            other.type_name()
        )),
    }
}

fn bounded(name: &str, len: usize) -> Result<(), String> {
    if len > MAX_OUTPUT_BYTES {
        return Err(format!(
            "{name}: result larger than {MAX_OUTPUT_BYTES} bytes"
        ));
    }
    Ok(())
}

fn int(name: &str, v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("{name}: expected an integer")),
        other => Err(format!(
            "{name}: expected an integer, got {}",
            other.type_name()
        )),
    }
}

pub fn call(name: &str, args: Vec<Value>) -> R {
    let a = args.as_slice();
    match name {
        "printf" => printf(a),
        "eq" => {
            let (first, rest) = a.split_first().ok_or("eq: missing arguments")?;
            if rest.is_empty() {
                return Err("eq: missing argument for comparison".into());
            }
            Ok(Value::Bool(rest.iter().any(|v| same(first, v))))
        }
        "ne" => {
            arity(name, a, 2)?;
            Ok(Value::Bool(!same(at(a, 0), at(a, 1))))
        }
        "not" => {
            arity(name, a, 1)?;
            Ok(Value::Bool(!at(a, 0).truthy()))
        }
        "and" => {
            let last = a.iter().find(|v| !v.truthy()).or(a.last());
            last.cloned().ok_or_else(|| "and: missing arguments".into())
        }
        "or" => {
            let first = a.iter().find(|v| v.truthy()).or(a.last());
            first.cloned().ok_or_else(|| "or: missing arguments".into())
        }
        "len" => {
            arity(name, a, 1)?;
            let n = match at(a, 0) {
                Value::Str(s) => s.len(),
                Value::List(l) => l.len(),
                Value::Map(m) => m.len(),
                other => return Err(format!("len of type {}", other.type_name())),
            };
            Ok(Value::Int(n as i64))
        }
        "empty" => {
            arity(name, a, 1)?;
            Ok(Value::Bool(!at(a, 0).truthy()))
        }
        "index" => {
            let (mut current, keys) = a.split_first().ok_or("index: missing arguments")?;
            for key in keys {
                current = match (current, key) {
                    (Value::Map(m), Value::Str(k)) => m.get(k.as_str()).ok_or_else(|| {
                        format!("index: map has no entry for key {:?}", k.as_str())
                    })?,
                    (Value::List(l), k) => {
                        let i = int("index", k)?;
                        usize::try_from(i)
                            .ok()
                            .and_then(|i| l.get(i))
                            .ok_or_else(|| format!("index: index {i} out of range"))?
                    }
                    (other, _) => {
                        return Err(format!(
                            "index: can't index item of type {}",
                            other.type_name()
                        ));
                    }
                };
            }
            Ok(current.clone())
        }
        "get" => {
            arity(name, a, 2)?;
            match at(a, 0) {
                Value::Map(m) => Ok(m
                    .get(string(name, at(a, 1))?)
                    .cloned()
                    .unwrap_or_else(|| Value::str(""))),
                other => Err(format!("get: expected a map, got {}", other.type_name())),
            }
        }
        "b64enc" => {
            arity(name, a, 1)?;
            let s = at(a, 0).to_text();
            bounded(name, s.len().div_ceil(3) * 4)?;
            Ok(Value::Str(Zeroizing::new(
                base64::engine::general_purpose::STANDARD.encode(s.as_bytes()),
            )))
        }
        "b64dec" => {
            arity(name, a, 1)?;
            let s = at(a, 0).to_text();
            let bytes = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(s.as_bytes())
                    .map_err(|_| "b64dec: the value is not valid base64".to_owned())?,
            );
            match String::from_utf8(bytes.to_vec()) {
                Ok(text) => Ok(Value::str(text)),
                Err(e) => {
                    let mut raw = e.into_bytes();
                    zeroize::Zeroize::zeroize(&mut raw);
                    Err("b64dec: the decoded value is not UTF-8 text".into())
                }
            }
        }
        "toJson" => {
            arity(name, a, 1)?;
            let mut out = Zeroizing::new(String::new());
            to_json(at(a, 0), &mut out, 0)?;
            Ok(Value::Str(out))
        }
        "fromJson" => {
            arity(name, a, 1)?;
            let s = string(name, at(a, 0))?;
            let parsed: serde_json::Value = serde_json::from_str(s).map_err(|e| {
                format!(
                    "fromJson: invalid JSON at line {} column {}",
                    e.line(),
                    e.column()
                )
            })?;
            Ok(from_json(parsed))
        }
        "upper" => map_str(name, a, |s| s.to_uppercase()),
        "lower" => map_str(name, a, |s| s.to_lowercase()),
        "trim" => map_str(name, a, |s| s.trim().to_owned()),
        "toString" => {
            arity(name, a, 1)?;
            Ok(Value::Str(at(a, 0).to_text()))
        }
        "trimPrefix" | "trimSuffix" | "contains" | "hasPrefix" | "hasSuffix" => {
            arity(name, a, 2)?;
            let affix = at(a, 0).to_text();
            let s = at(a, 1).to_text();
            Ok(match name {
                "trimPrefix" => Value::str(s.strip_prefix(affix.as_str()).unwrap_or(&s)),
                "trimSuffix" => Value::str(s.strip_suffix(affix.as_str()).unwrap_or(&s)),
                "contains" => Value::Bool(s.contains(affix.as_str())),
                "hasPrefix" => Value::Bool(s.starts_with(affix.as_str())),
                _ => Value::Bool(s.ends_with(affix.as_str())),
            })
        }
        "quote" | "squote" => {
            let mut out = Zeroizing::new(String::new());
            for (i, v) in a.iter().filter(|v| !matches!(v, Value::Null)).enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                let text = v.to_text();
                bounded(name, out.len() + text.len() * 4 + 2)?;
                if name == "quote" {
                    go_quote(&text, &mut out);
                } else {
                    out.push('\'');
                    out.push_str(&text);
                    out.push('\'');
                }
            }
            Ok(Value::Str(out))
        }
        "default" => {
            let (fallback, given) = match a {
                [fallback] => (fallback, None),
                [fallback, given] => (fallback, Some(given)),
                _ => {
                    return Err(format!(
                        "wrong number of args for default: want 1 or 2 got {}",
                        a.len()
                    ));
                }
            };
            Ok(match given {
                Some(v) if v.truthy() => v.clone(),
                _ => fallback.clone(),
            })
        }
        "replace" => {
            arity(name, a, 3)?;
            let (old, new, s) = (at(a, 0).to_text(), at(a, 1).to_text(), at(a, 2).to_text());
            if old.is_empty() {
                return Err("replace: the string to replace is empty".into());
            }
            let count = s.matches(old.as_str()).count();
            let len = s.len() - count * old.len() + count * new.len();
            bounded(name, len)?;
            Ok(Value::str(s.replace(old.as_str(), &new)))
        }
        "indent" | "nindent" => {
            arity(name, a, 2)?;
            let n = usize::try_from(int(name, at(a, 0))?)
                .map_err(|_| format!("{name}: negative width"))?;
            let s = at(a, 1).to_text();
            let lines = s.matches('\n').count() + 1;
            bounded(name, s.len().saturating_add(n.saturating_mul(lines)) + 1)?;
            let pad = " ".repeat(n);
            let mut out = Zeroizing::new(String::with_capacity(s.len() + n * lines + 1));
            if name == "nindent" {
                out.push('\n');
            }
            out.push_str(&pad);
            for c in s.chars() {
                out.push(c);
                if c == '\n' {
                    out.push_str(&pad);
                }
            }
            Ok(Value::Str(out))
        }
        other => Err(format!("function {other:?} not defined")),
    }
}

fn map_str(name: &str, a: &[Value], f: impl Fn(&str) -> String) -> R {
    arity(name, a, 1)?;
    let s = at(a, 0).to_text();
    let out = f(&s);
    bounded(name, out.len())?;
    Ok(Value::str(out))
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => x.as_str() == y.as_str(),
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => (*x as f64) == *y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Null, Value::Null) => true,
        _ => false,
    }
}

/// Go's `strconv.Quote`, for printable text: `"`, `\`, and control characters escaped.
fn go_quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `encoding/json` of the value (map keys sorted, HTML characters escaped as Go does).
fn to_json(v: &Value, out: &mut String, depth: usize) -> Result<(), String> {
    if depth > 64 {
        return Err("toJson: nested too deep".into());
    }
    bounded("toJson", out.len())?;
    match v {
        Value::Str(s) => json_string(s, out),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => {
            let _ = write!(out, "{f}");
        }
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Null => out.push_str("null"),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                to_json(item, out, depth + 1)?;
            }
            out.push(']');
        }
        Value::Map(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(k, out);
                out.push(':');
                to_json(item, out, depth + 1)?;
            }
            out.push('}');
        }
    }
    bounded("toJson", out.len())
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Go escapes these for embedding in HTML.
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

pub fn from_json(v: serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::str(s),
        serde_json::Value::Array(items) => Value::List(items.into_iter().map(from_json).collect()),
        serde_json::Value::Object(map) => Value::Map(
            map.into_iter()
                .map(|(k, v)| (k, from_json(v)))
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%s`, `%v`, `%d`, `%q`, `%t`, `%x`, `%%`.
/// Too few arguments, too many, or another verb is an error (Go would print `%!s(MISSING)`
/// into the Secret).
fn printf(a: &[Value]) -> R {
    let (format, args) = a.split_first().ok_or("printf: missing format")?;
    let format = format.to_text();
    let mut out = Zeroizing::new(String::new());
    let mut args = args.iter();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let verb = chars.next().ok_or("printf: the format ends with %")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = args
            .next()
            .ok_or_else(|| format!("printf: missing argument for %{verb}"))?;
        match verb {
            's' | 'v' => arg.write_to(&mut out),
            'd' => match arg {
                Value::Int(i) => {
                    let _ = write!(out, "{i}");
                }
                other => return Err(format!("printf: %d of a {}", other.type_name())),
            },
            't' => match arg {
                Value::Bool(b) => {
                    let _ = write!(out, "{b}");
                }
                other => return Err(format!("printf: %t of a {}", other.type_name())),
            },
            'q' => go_quote(&arg.to_text(), &mut out),
            'x' => match arg {
                Value::Int(i) => {
                    let _ = write!(out, "{i:x}");
                }
                other => {
                    for b in other.to_text().bytes() {
                        let _ = write!(out, "{b:02x}");
                    }
                }
            },
            other => return Err(format!("printf: verb %{other} is not supported")),
        }
        bounded("printf", out.len())?;
    }
    if args.next().is_some() {
        return Err("printf: more arguments than verbs".into());
    }
    Ok(Value::Str(out))
}
