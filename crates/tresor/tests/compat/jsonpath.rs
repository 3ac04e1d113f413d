//! The small JSONPath subset the scenario, normalisation and difference files use.
//!
//! `$` is the root (optional: `keys[0]` means `$.keys[0]`), `.key` or `["key"]` a member, `[3]`
//! an array element, `.*` any member, `[*]` any element, `..key` that key at any depth.
//! Concrete paths (what the comparer reports) only ever hold members and indices.

use std::fmt;

use serde_json::Value;

/// One step of a concrete path into a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Renders a concrete path the way patterns are written, so a reported path can be pasted
/// into DIFFERENCES.md or normalise.json as is.
pub fn render(path: &[Seg]) -> String {
    let mut out = String::from("$");
    for seg in path {
        match seg {
            Seg::Key(k) if is_plain_key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Key(k) => {
                out.push_str("[\"");
                out.push_str(k);
                out.push_str("\"]");
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn is_plain_key(k: &str) -> bool {
    !k.is_empty() && !k.contains(['.', '[', ']', '"', '*'])
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PatSeg {
    Key(String),
    Index(usize),
    AnyKey,
    AnyIndex,
    /// `..`: zero or more segments of any kind.
    Descend,
}

/// A parsed path pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    segs: Vec<PatSeg>,
    text: String,
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("bad JSON path {text:?}: {why}");
        let mut rest = text.strip_prefix('$').unwrap_or(text);
        let owned;
        if !rest.is_empty() && !rest.starts_with(['.', '[']) {
            owned = format!(".{rest}");
            rest = &owned;
        }
        let mut segs = Vec::new();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("..") {
                segs.push(PatSeg::Descend);
                // `..key`: the key follows without its own dot.
                rest = after;
                let (key, tail) = split_key(rest);
                if key.is_empty() {
                    return Err(bad("`..` must be followed by a key"));
                }
                segs.push(if key == "*" {
                    PatSeg::AnyKey
                } else {
                    PatSeg::Key(key.to_owned())
                });
                rest = tail;
            } else if let Some(after) = rest.strip_prefix('.') {
                let (key, tail) = split_key(after);
                if key.is_empty() {
                    return Err(bad("empty key after `.`"));
                }
                segs.push(if key == "*" {
                    PatSeg::AnyKey
                } else {
                    PatSeg::Key(key.to_owned())
                });
                rest = tail;
            } else if let Some(after) = rest.strip_prefix('[') {
                let close = after.find(']').ok_or_else(|| bad("unclosed `[`"))?;
                let inner = &after[..close];
                segs.push(if inner == "*" {
                    PatSeg::AnyIndex
                } else if let Some(quoted) =
                    inner.strip_prefix('"').and_then(|s| s.strip_suffix('"'))
                {
                    PatSeg::Key(quoted.to_owned())
                } else {
                    PatSeg::Index(inner.parse().map_err(|_| bad("index is not a number"))?)
                });
                rest = &after[close + 1..];
            } else {
                return Err(bad("expected `.` or `[`"));
            }
        }
        Ok(Self {
            segs,
            text: text.to_owned(),
        })
    }

    pub fn matches(&self, path: &[Seg]) -> bool {
        matches_from(&self.segs, path)
    }

    /// The value at this path; only for patterns without wildcards (captures).
    pub fn get<'a>(&self, mut value: &'a Value) -> Option<&'a Value> {
        for seg in &self.segs {
            value = match seg {
                PatSeg::Key(k) => value.get(k)?,
                PatSeg::Index(i) => value.get(*i)?,
                PatSeg::AnyKey | PatSeg::AnyIndex | PatSeg::Descend => return None,
            };
        }
        Some(value)
    }
}

/// Splits `key.rest` / `key[rest` into the key and what follows it.
fn split_key(s: &str) -> (&str, &str) {
    let end = s.find(['.', '[']).unwrap_or(s.len());
    (&s[..end], &s[end..])
}

fn matches_from(pattern: &[PatSeg], path: &[Seg]) -> bool {
    let Some((first, rest)) = pattern.split_first() else {
        return path.is_empty();
    };
    if *first == PatSeg::Descend {
        return (0..=path.len()).any(|skip| matches_from(rest, &path[skip..]));
    }
    let Some((seg, path_rest)) = path.split_first() else {
        return false;
    };
    let here = match (first, seg) {
        (PatSeg::Key(p), Seg::Key(k)) => p == k,
        (PatSeg::Index(p), Seg::Index(i)) => p == i,
        (PatSeg::AnyKey, Seg::Key(_)) | (PatSeg::AnyIndex, Seg::Index(_)) => true,
        _ => false,
    };
    here && matches_from(rest, path_rest)
}

/// `*` matches any run of characters; everything else matches itself. Used for request
/// scopes and expected values, which are short.
pub fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|i| rest.is_char_boundary(*i))
                .any(|i| glob(tail, &rest[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &[&str]) -> Vec<Seg> {
        s.iter()
            .map(|p| match p.parse() {
                Ok(i) => Seg::Index(i),
                Err(_) => Seg::Key((*p).to_owned()),
            })
            .collect()
    }

    #[test]
    fn patterns_match_concrete_paths() {
        let p = |s| Pattern::parse(s).unwrap();
        assert!(p("$.keys[*]").matches(&path(&["keys", "2"])));
        assert!(!p("$.keys[*]").matches(&path(&["keys"])));
        assert!(p("keys[0]").matches(&path(&["keys", "0"])));
        assert!(p("$..install_time").matches(&path(&["install_time"])));
        assert!(p("$..install_time").matches(&path(&["data", "install_time"])));
        assert!(p("$.data.*").matches(&path(&["data", "term"])));
        assert!(p("$[\"a.b\"]").matches(&path(&["a.b"])));
        assert_eq!(render(&path(&["data", "a.b", "1"])), "$.data[\"a.b\"][1]");
        assert!(Pattern::parse("$.a[").is_err());
    }

    #[test]
    fn globs() {
        assert!(glob("2.7.2+tresor.*", "2.7.2+tresor.0.1.0"));
        assert!(!glob("2.7.2+tresor.*", "2.7.2"));
        assert!(glob("*", ""));
        assert!(glob("bao operator init*", "bao operator init -format=json"));
    }
}
