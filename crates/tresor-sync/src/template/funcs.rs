//! The template functions: Go's built-ins that ESO/VSO templates use (`printf`, `print`,
//! `println`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `not`, `and`, `or` — the last two short-circuit
//! in the interpreter —, `len`, `index`) and sprig's most used ones: strings (`upper`, `lower`,
//! `title`, `trim`, `trimAll`, `trimPrefix`, `trimSuffix`, `nospace`, `replace`, `repeat`,
//! `substr`, `trunc`, `contains`, `hasPrefix`, `hasSuffix`, `quote`, `squote`, `cat`, `indent`,
//! `nindent`, `toString`, `split`, `splitList`, `join`, `sortAlpha`, `regexMatch`,
//! `regexReplaceAll`), encodings (`b64enc`, `b64dec`, `toJson`, `toPrettyJson`, `toRawJson`,
//! `fromJson` and their `must…` forms, `sha256sum`, `sha512sum`), defaults and logic
//! (`default`, `empty`, `coalesce`, `ternary`, `fail`), collections (`list`, `dict`, `get`,
//! `hasKey`, `keys`, `first`, `last`) and integer arithmetic (`add`, `add1`, `sub`, `mul`,
//! `div`, `mod`, `max`, `min`, `atoi`, `int`, `int64`, `float64`).
//!
//! Where sprig swallows an error and returns something (`b64dec` of bad input returns the
//! error text, `fromJson` of bad JSON an empty map, `atoi` of text 0), these return an error
//! instead: a Secret holding an error message in place of a credential is worse than a failed
//! sync. Every result is bounded by [`super::MAX_OUTPUT_BYTES`] before it is built. Error
//! messages name functions and types, never values (`fail`'s message is not shown either: it
//! is often built from the data).
//!
//! ESO's own helpers and the sprig functions that are not here fail at parse time with their
//! name and the reason ([`refused`]): PKCS#12/PEM/JWK conversions, `rsaDecrypt`, YAML, random
//! values and clocks (which would change the Secret on every sync), key generation.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use zeroize::Zeroizing;

use super::{MAX_OUTPUT_BYTES, Value};

const NAMES: &[&str] = &[
    // Go's built-ins
    "printf",
    "print",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "not",
    "and",
    "or",
    "len",
    "index",
    // sprig: encodings
    "b64enc",
    "b64dec",
    "toJson",
    "toPrettyJson",
    "toRawJson",
    "mustToJson",
    "mustToPrettyJson",
    "mustToRawJson",
    "fromJson",
    "mustFromJson",
    "sha256sum",
    "sha512sum",
    // sprig: strings
    "upper",
    "lower",
    "title",
    "trim",
    "trimAll",
    "trimPrefix",
    "trimSuffix",
    "nospace",
    "quote",
    "squote",
    "cat",
    "toString",
    "replace",
    "repeat",
    "substr",
    "trunc",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "indent",
    "nindent",
    "split",
    "splitList",
    "join",
    "sortAlpha",
    "regexMatch",
    "regexReplaceAll",
    // sprig: defaults, logic, collections, numbers
    "default",
    "empty",
    "coalesce",
    "ternary",
    "fail",
    "list",
    "dict",
    "get",
    "hasKey",
    "keys",
    "first",
    "last",
    "add",
    "add1",
    "sub",
    "mul",
    "div",
    "mod",
    "max",
    "min",
    "atoi",
    "int",
    "int64",
    "float64",
];

/// Functions ESO templates may call that tresor sync deliberately does not offer, with why.
/// Refused when the template is parsed, so nothing is fetched for a template that cannot work.
const REFUSED: &[(&[&str], &str)] = &[
    (
        &[
            "pkcs12key",
            "pkcs12keyPass",
            "pkcs12cert",
            "pkcs12certPass",
            "pemToPkcs12",
            "pemToPkcs12Pass",
            "fullPemToPkcs12",
            "fullPemToPkcs12Pass",
            "pemTruststoreToPKCS12",
            "pemTruststoreToPKCS12Pass",
        ],
        "ESO's PKCS#12 helpers are not implemented (store the PEM parts as separate keys)",
    ),
    (
        &[
            "filterPEM",
            "filterCertChain",
            "jwkPublicKeyPem",
            "jwkPrivateKeyPem",
        ],
        "ESO's PEM and JWK helpers are not implemented (store the parts as separate keys)",
    ),
    (&["rsaDecrypt"], "ESO's rsaDecrypt is not implemented"),
    (
        &["toYaml", "fromYaml", "mustToYaml", "mustFromYaml"],
        "YAML functions are not implemented (toJson and fromJson are)",
    ),
    (
        &[
            "randAlphaNum",
            "randAlpha",
            "randNumeric",
            "randAscii",
            "randBytes",
            "randInt",
            "uuidv4",
            "shuffle",
        ],
        "random values would change the Secret, and restart its consumers, on every sync",
    ),
    (
        &[
            "now",
            "date",
            "dateInZone",
            "date_in_zone",
            "dateModify",
            "date_modify",
            "mustDateModify",
            "toDate",
            "mustToDate",
            "unixEpoch",
            "ago",
            "duration",
            "durationRound",
            "htmlDate",
            "htmlDateInZone",
        ],
        "time functions are not implemented (the current time would change the Secret on every sync)",
    ),
    (
        &[
            "genPrivateKey",
            "genCA",
            "genCAWithKey",
            "genSelfSignedCert",
            "genSelfSignedCertWithKey",
            "genSignedCert",
            "genSignedCertWithKey",
            "buildCustomCert",
            "derivePassword",
            "bcrypt",
            "htpasswd",
            "encryptAES",
            "decryptAES",
        ],
        "key generation and encryption functions are not implemented (use a Tresor secrets engine)",
    ),
    (
        &["sha1sum", "adler32sum"],
        "not implemented (sha256sum and sha512sum are)",
    ),
    (
        &["env", "expandenv"],
        "ESO removes them from its templates too: a template cannot read the controller's environment",
    ),
];

/// Why `name` is deliberately not offered, if it is one of [`REFUSED`].
pub fn refused(name: &str) -> Option<&'static str> {
    REFUSED
        .iter()
        .find(|(names, _)| names.contains(&name))
        .map(|(_, why)| *why)
}

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
            for v in rest {
                if equal(name, first, v)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" => {
            arity(name, a, 2)?;
            Ok(Value::Bool(!equal(name, at(a, 0), at(a, 1))?))
        }
        "lt" | "le" | "gt" | "ge" => {
            arity(name, a, 2)?;
            let order = compare(name, at(a, 0), at(a, 1))?;
            Ok(Value::Bool(match name {
                "lt" => order.is_lt(),
                "le" => order.is_le(),
                "gt" => order.is_gt(),
                _ => order.is_ge(),
            }))
        }
        "print" | "println" => {
            let mut out = Zeroizing::new(String::new());
            for (i, v) in a.iter().enumerate() {
                // Go's Sprint puts a space between operands when neither is a string;
                // Sprintln always does.
                let strings = matches!(v, Value::Str(_))
                    || i.checked_sub(1)
                        .is_some_and(|p| matches!(a.get(p), Some(Value::Str(_))));
                if i > 0 && (name == "println" || !strings) {
                    out.push(' ');
                }
                v.write_to(&mut out);
                bounded(name, out.len())?;
            }
            if name == "println" {
                out.push('\n');
            }
            Ok(Value::Str(out))
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
        "toJson" | "toPrettyJson" | "toRawJson" | "mustToJson" | "mustToPrettyJson"
        | "mustToRawJson" => {
            arity(name, a, 1)?;
            let style = JsonStyle {
                pretty: name.ends_with("PrettyJson"),
                escape_html: !name.ends_with("RawJson"),
            };
            let mut out = Zeroizing::new(String::new());
            to_json(at(a, 0), &mut out, 0, style)?;
            Ok(Value::Str(out))
        }
        "fromJson" | "mustFromJson" => {
            arity(name, a, 1)?;
            let s = string(name, at(a, 0))?;
            let parsed: serde_json::Value = serde_json::from_str(s).map_err(|e| {
                format!(
                    "{name}: invalid JSON at line {} column {}",
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
        "title" => map_str(name, a, title),
        "nospace" => map_str(name, a, |s| {
            s.chars().filter(|c| !c.is_whitespace()).collect()
        }),
        "trimAll" => {
            arity(name, a, 2)?;
            let (cutset, s) = (at(a, 0).to_text(), at(a, 1).to_text());
            Ok(Value::str(s.trim_matches(|c| cutset.contains(c))))
        }
        "cat" => {
            let mut out = Zeroizing::new(String::new());
            for (i, v) in a.iter().filter(|v| !matches!(v, Value::Null)).enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                v.write_to(&mut out);
                bounded(name, out.len())?;
            }
            Ok(Value::Str(out))
        }
        "repeat" => {
            arity(name, a, 2)?;
            let n = usize::try_from(int(name, at(a, 0))?)
                .map_err(|_| format!("{name}: negative count"))?;
            let s = at(a, 1).to_text();
            bounded(name, s.len().saturating_mul(n))?;
            Ok(Value::str(s.repeat(n)))
        }
        "substr" => {
            arity(name, a, 3)?;
            let (start, end) = (int(name, at(a, 0))?, int(name, at(a, 1))?);
            let s = at(a, 2).to_text();
            let len = s.len() as i64;
            // sprig's rules: a negative start means from 0; an end past the text or negative
            // means to its end. Offsets are bytes, as in Go.
            let start = start.max(0);
            let end = if end < 0 || end > len { len } else { end };
            if start > end {
                return Ok(Value::str(""));
            }
            let part = s
                .get(start as usize..end as usize)
                .ok_or("substr: the offsets do not fall on character boundaries")?;
            Ok(Value::str(part))
        }
        "trunc" => {
            arity(name, a, 2)?;
            let n = int(name, at(a, 0))?;
            let s = at(a, 1).to_text();
            let len = s.len() as i64;
            // sprig: a negative count keeps the end of the text.
            let range = if n >= 0 {
                0..n.min(len) as usize
            } else {
                (len + n).max(0) as usize..len as usize
            };
            let part = s
                .get(range)
                .ok_or("trunc: the offset does not fall on a character boundary")?;
            Ok(Value::str(part))
        }
        "split" | "splitList" => {
            arity(name, a, 2)?;
            let (sep, s) = (at(a, 0).to_text(), at(a, 1).to_text());
            if sep.is_empty() {
                return Err(format!("{name}: empty separator"));
            }
            let parts = s.split(sep.as_str()).map(Value::str);
            Ok(if name == "split" {
                // sprig's split gives a dict keyed _0, _1, …
                Value::Map(
                    parts
                        .enumerate()
                        .map(|(i, v)| (format!("_{i}"), v))
                        .collect(),
                )
            } else {
                Value::List(parts.collect())
            })
        }
        "join" => {
            arity(name, a, 2)?;
            let sep = at(a, 0).to_text();
            let items = list(name, at(a, 1))?;
            let mut out = Zeroizing::new(String::new());
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&sep);
                }
                v.write_to(&mut out);
                bounded(name, out.len())?;
            }
            Ok(Value::Str(out))
        }
        "sortAlpha" => {
            arity(name, a, 1)?;
            let mut items: Vec<Zeroizing<String>> =
                list(name, at(a, 0))?.iter().map(Value::to_text).collect();
            items.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            Ok(Value::List(items.into_iter().map(Value::Str).collect()))
        }
        "regexMatch" | "regexReplaceAll" => {
            let want = if name == "regexMatch" { 2 } else { 3 };
            arity(name, a, want)?;
            let re = regex::RegexBuilder::new(&at(a, 0).to_text())
                .size_limit(1 << 20)
                .build()
                .map_err(|_| format!("{name}: invalid regular expression"))?;
            let s = at(a, 1).to_text();
            if name == "regexMatch" {
                return Ok(Value::Bool(re.is_match(&s)));
            }
            let replacement = at(a, 2).to_text();
            let out = re.replace_all(&s, replacement.as_str());
            bounded(name, out.len())?;
            Ok(Value::str(out.into_owned()))
        }
        "sha256sum" | "sha512sum" => {
            use sha2::Digest as _;
            arity(name, a, 1)?;
            let s = at(a, 0).to_text();
            let digest = if name == "sha256sum" {
                sha2::Sha256::digest(s.as_bytes()).to_vec()
            } else {
                sha2::Sha512::digest(s.as_bytes()).to_vec()
            };
            let mut out = String::with_capacity(digest.len() * 2);
            for b in digest {
                let _ = write!(out, "{b:02x}");
            }
            Ok(Value::str(out))
        }
        "coalesce" => Ok(a
            .iter()
            .find(|v| v.truthy())
            .cloned()
            .unwrap_or(Value::Null)),
        "ternary" => {
            arity(name, a, 3)?;
            Ok(if at(a, 2).truthy() {
                at(a, 0).clone()
            } else {
                at(a, 1).clone()
            })
        }
        "fail" => Err(
            "fail was called by the template (its message is not shown: it may hold a value)"
                .into(),
        ),
        "list" => Ok(Value::List(a.to_vec())),
        "dict" => {
            let mut map = BTreeMap::new();
            for pair in a.chunks(2) {
                let key = at(pair, 0).to_text().to_string();
                // sprig: a key without a value maps to "".
                map.insert(key, pair.get(1).cloned().unwrap_or_else(|| Value::str("")));
            }
            Ok(Value::Map(map))
        }
        "hasKey" => {
            arity(name, a, 2)?;
            match at(a, 0) {
                Value::Map(m) => Ok(Value::Bool(m.contains_key(at(a, 1).to_text().as_str()))),
                other => Err(format!("hasKey: expected a map, got {}", other.type_name())),
            }
        }
        "keys" => {
            // Sorted (sprig's order is Go's random map order; sorted is stable across syncs).
            let mut keys: Vec<&String> = Vec::new();
            for v in a {
                match v {
                    Value::Map(m) => keys.extend(m.keys()),
                    other => {
                        return Err(format!("keys: expected a map, got {}", other.type_name()));
                    }
                }
            }
            keys.sort();
            Ok(Value::List(
                keys.into_iter().map(|k| Value::str(k.clone())).collect(),
            ))
        }
        "first" | "last" => {
            arity(name, a, 1)?;
            let items = list(name, at(a, 0))?;
            let item = if name == "first" {
                items.first()
            } else {
                items.last()
            };
            Ok(item.cloned().unwrap_or(Value::Null))
        }
        "add" | "mul" => {
            let mut acc: i64 = if name == "add" { 0 } else { 1 };
            for v in a {
                let n = to_int(name, v)?;
                acc = if name == "add" {
                    acc.checked_add(n)
                } else {
                    acc.checked_mul(n)
                }
                .ok_or_else(|| format!("{name}: integer overflow"))?;
            }
            Ok(Value::Int(acc))
        }
        "add1" => {
            arity(name, a, 1)?;
            let n = to_int(name, at(a, 0))?;
            Ok(Value::Int(
                n.checked_add(1).ok_or("add1: integer overflow")?,
            ))
        }
        "sub" | "div" | "mod" => {
            arity(name, a, 2)?;
            let (x, y) = (to_int(name, at(a, 0))?, to_int(name, at(a, 1))?);
            let result = match name {
                "sub" => x.checked_sub(y),
                "div" => x.checked_div(y),
                _ => x.checked_rem(y),
            };
            Ok(Value::Int(result.ok_or_else(|| {
                format!("{name}: division by zero or integer overflow")
            })?))
        }
        "max" | "min" => {
            let (first, rest) = a
                .split_first()
                .ok_or_else(|| format!("{name}: missing arguments"))?;
            let mut acc = to_int(name, first)?;
            for v in rest {
                let n = to_int(name, v)?;
                acc = if name == "max" {
                    acc.max(n)
                } else {
                    acc.min(n)
                };
            }
            Ok(Value::Int(acc))
        }
        "atoi" => {
            arity(name, a, 1)?;
            let s = at(a, 0).to_text();
            s.trim()
                .parse()
                .map(Value::Int)
                .map_err(|_| "atoi: the value is not an integer".into())
        }
        "int" | "int64" => {
            arity(name, a, 1)?;
            Ok(Value::Int(to_int(name, at(a, 0))?))
        }
        "float64" => {
            arity(name, a, 1)?;
            Ok(Value::Float(match at(a, 0) {
                Value::Int(i) => *i as f64,
                Value::Float(f) => *f,
                Value::Bool(b) => f64::from(u8::from(*b)),
                Value::Null => 0.0,
                Value::Str(s) => s
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .ok_or("float64: the value is not a number")?,
                other => return Err(format!("float64 of a {}", other.type_name())),
            }))
        }
        other => Err(format!("function {other:?} not defined")),
    }
}

/// A list argument.
fn list<'a>(name: &str, v: &'a Value) -> Result<&'a [Value], String> {
    match v {
        Value::List(items) => Ok(items),
        other => Err(format!(
            "{name}: expected a list, got {}",
            other.type_name()
        )),
    }
}

/// sprig's toInt64 (numbers, numeric text, booleans, nil as 0), but text that is not a
/// number is an error rather than 0.
fn to_int(name: &str, v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Float(f) if f.is_finite() && f.abs() < 9.2e18 => Ok(f.trunc() as i64),
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::Null => Ok(0),
        Value::Str(s) => {
            let t = s.trim();
            t.parse::<i64>()
                .ok()
                .or_else(|| {
                    t.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite() && f.abs() < 9.2e18)
                        .map(|f| f.trunc() as i64)
                })
                .ok_or_else(|| format!("{name}: the value is not a number"))
        }
        other => Err(format!(
            "{name}: expected a number, got {}",
            other.type_name()
        )),
    }
}

/// Go's `strings.Title`: the first letter of each word upper-cased.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut at_start = true;
    for c in s.chars() {
        out.extend(if at_start {
            c.to_uppercase().collect::<Vec<_>>()
        } else {
            vec![c]
        });
        // Go's separators: ASCII other than letters, digits and `_`; Unicode white space.
        at_start = if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            c.is_whitespace()
        };
    }
    out
}

fn map_str(name: &str, a: &[Value], f: impl Fn(&str) -> String) -> R {
    arity(name, a, 1)?;
    let s = at(a, 0).to_text();
    let out = f(&s);
    bounded(name, out.len())?;
    Ok(Value::str(out))
}

/// Go's `eq` on basic values: same kinds compare; integers and floats compare as numbers (Go
/// would refuse int against float64, but `fromJson` numbers are integers here and float64 in
/// Go, so refusing would break templates that work in ESO); nil equals only nil; other mixes
/// are Go's "incompatible types for comparison".
fn equal(name: &str, a: &Value, b: &Value) -> Result<bool, String> {
    Ok(match (a, b) {
        (Value::Str(x), Value::Str(y)) => x.as_str() == y.as_str(),
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Null, other) | (other, Value::Null) => matches!(other, Value::Null),
        (Value::List(_) | Value::Map(_), _) | (_, Value::List(_) | Value::Map(_)) => {
            return Err(format!(
                "{name}: non-comparable types {} and {}",
                a.type_name(),
                b.type_name()
            ));
        }
        _ => compare(name, a, b)?.is_eq(),
    })
}

/// Go's `lt` family: strings by bytes, numbers by value; anything else is an error.
fn compare(name: &str, a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    let number = |v: &Value| match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    };
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Ok(x.as_bytes().cmp(y.as_bytes())),
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        _ => match (number(a), number(b)) {
            (Some(x), Some(y)) => x
                .partial_cmp(&y)
                .ok_or_else(|| format!("{name}: NaN is not comparable")),
            _ if std::mem::discriminant(a) == std::mem::discriminant(b) => Err(format!(
                "{name}: invalid type for comparison: {}",
                a.type_name()
            )),
            _ => Err(format!(
                "{name}: incompatible types for comparison: {} and {}",
                a.type_name(),
                b.type_name()
            )),
        },
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

/// How `to_json` writes: `toJson` (compact, HTML characters escaped), `toPrettyJson` (Go's
/// `MarshalIndent` with two spaces), `toRawJson` (HTML characters as they are).
#[derive(Clone, Copy)]
struct JsonStyle {
    pretty: bool,
    escape_html: bool,
}

/// Go's `encoding/json` of the value (map keys sorted, HTML characters escaped as Go does).
fn to_json(v: &Value, out: &mut String, depth: usize, style: JsonStyle) -> Result<(), String> {
    if depth > 64 {
        return Err("toJson: nested too deep".into());
    }
    bounded("toJson", out.len())?;
    let newline = |out: &mut String, depth: usize| {
        if style.pretty {
            out.push('\n');
            for _ in 0..depth {
                out.push_str("  ");
            }
        }
    };
    match v {
        Value::Str(s) => json_string(s, out, style.escape_html),
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
                newline(out, depth + 1);
                to_json(item, out, depth + 1, style)?;
            }
            if !items.is_empty() {
                newline(out, depth);
            }
            out.push(']');
        }
        Value::Map(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                json_string(k, out, style.escape_html);
                out.push(':');
                if style.pretty {
                    out.push(' ');
                }
                to_json(item, out, depth + 1, style)?;
            }
            if !map.is_empty() {
                newline(out, depth);
            }
            out.push('}');
        }
    }
    bounded("toJson", out.len())
}

fn json_string(s: &str, out: &mut String, escape_html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Go escapes these for embedding in HTML (toRawJson does not).
            '<' if escape_html => out.push_str("\\u003c"),
            '>' if escape_html => out.push_str("\\u003e"),
            '&' if escape_html => out.push_str("\\u0026"),
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
