//! YAML streams into JSON values, through `tresor-lint`'s bounded parser (saphyr-parser
//! events, aliases shared and never copied, alias bombs and deep nesting refused) and then
//! into the resource types with `serde_json`.
//!
//! Scalars are typed with YAML 1.2's core schema, as Kubernetes' own decoder does for
//! manifests: plain `null`/`~`/empty → null, `true`/`false` → booleans, integers and floats →
//! numbers, everything else (and every quoted or block scalar) → a string.

use serde_json::{Map, Number, Value};
use tresor_lint::yaml::{Kind, Limits, NodeId, Style, Yaml};

/// How many JSON nodes one file may expand into (aliases included): manifests are small;
/// this keeps an alias-heavy file from costing memory the parser itself did not spend.
pub const MAX_EXPANDED_NODES: u64 = 1_000_000;

#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    #[error("line {line}: {message}")]
    Parse { line: u32, message: String },
    #[error("the document expands to more than {MAX_EXPANDED_NODES} nodes")]
    TooLarge,
}

/// Every non-empty document of a YAML (or JSON) stream, with the line it starts on.
pub fn documents(text: &str) -> Result<Vec<(u32, Value)>, YamlError> {
    let limits = Limits {
        max_alias_nodes: MAX_EXPANDED_NODES,
        ..Limits::default()
    };
    let yaml = Yaml::parse(text, limits).map_err(|e| YamlError::Parse {
        line: e.pos().line,
        message: e.to_string(),
    })?;
    let mut budget = MAX_EXPANDED_NODES;
    let mut out = Vec::new();
    for doc in &yaml.docs {
        let Some(root) = doc.root else { continue };
        let value = to_json(&yaml, root, &mut budget, 0)?;
        if !value.is_null() {
            out.push((doc.start_line, value));
        }
    }
    Ok(out)
}

fn to_json(yaml: &Yaml, id: NodeId, budget: &mut u64, depth: usize) -> Result<Value, YamlError> {
    *budget = budget.checked_sub(1).ok_or(YamlError::TooLarge)?;
    // The parser refuses nesting past 200 levels; aliases cannot form cycles in YAML.
    if depth > 256 {
        return Err(YamlError::TooLarge);
    }
    let Some(node) = yaml.node(id) else {
        return Ok(Value::Null);
    };
    Ok(match node.kind {
        Kind::Scalar => scalar(yaml.str(id).unwrap_or(""), node.style),
        Kind::Seq => Value::Array(
            yaml.seq(id)
                .iter()
                .map(|&item| to_json(yaml, item, budget, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Kind::Map => {
            let mut map = Map::new();
            for &(k, v) in yaml.entries(id).iter() {
                let key = match yaml.node(k).map(|n| n.kind) {
                    Some(Kind::Scalar) => yaml.str(k).unwrap_or("").to_owned(),
                    // Complex keys do not occur in Kubernetes objects.
                    _ => continue,
                };
                let value = to_json(yaml, v, budget, depth + 1)?;
                map.insert(key, value);
            }
            Value::Object(map)
        }
    })
}

fn scalar(text: &str, style: Style) -> Value {
    if style != Style::Plain {
        return Value::String(text.to_owned());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = integer(text) {
        return Value::Number(n);
    }
    if looks_like_float(text)
        && let Ok(f) = text.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(text.to_owned())
}

fn integer(text: &str) -> Option<Number> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let parsed = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<i64>().ok()
    } else {
        None
    }?;
    Some(Number::from(if neg { -parsed } else { parsed }))
}

/// YAML 1.2 core floats: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` (the
/// infinities and NaN stay strings: JSON cannot hold them).
fn looks_like_float(text: &str) -> bool {
    let t = text.trim_start_matches(['-', '+']);
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let mantissa_ok = {
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        (!int.is_empty() || !frac.is_empty())
            && int.bytes().all(|b| b.is_ascii_digit())
            && frac.bytes().all(|b| b.is_ascii_digit())
            && (mantissa.contains('.') || exponent.is_some())
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.trim_start_matches(['-', '+']);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_follow_the_core_schema() {
        let docs = documents(
            "a: 1\nb: '1'\nc: true\nd: ~\ne: 1.5\nf: v1\ng: \"true\"\nh: 0x1F\ni: 1e3\nj: .inf\n",
        )
        .unwrap();
        assert_eq!(
            docs[0].1,
            json!({"a":1,"b":"1","c":true,"d":null,"e":1.5,"f":"v1","g":"true","h":31,"i":1000.0,"j":".inf"})
        );
    }

    #[test]
    fn multi_document_streams_skip_empty_documents() {
        let docs = documents("---\na: 1\n---\n---\n# only a comment\n---\nb: [x, y]\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].1, json!({"b":["x","y"]}));
        assert_eq!(docs[1].0, 6);
    }

    #[test]
    fn anchors_and_merge_keys_resolve() {
        let docs = documents("base: &b {x: 1}\nuse: *b\nmerged:\n  <<: *b\n  y: 2\n").unwrap();
        assert_eq!(
            docs[0].1,
            json!({"base":{"x":1},"use":{"x":1},"merged":{"y":2,"x":1}})
        );
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(documents(&text).is_err());
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = documents("a: 1\nb: [unclosed\n").unwrap_err().to_string();
        assert!(err.starts_with("line "), "{err}");
    }
}
