//! Structural comparison of two (already normalised) answers into a list of mismatches.
//!
//! JSON is compared recursively: same keys, same JSON types, same array lengths, same
//! values. Text (CLI output) is compared line by line; a table line whose label is the same
//! on both sides reports the label, so a deliberate difference can name it.

use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use super::cli::CliOutcome;
use super::http::{Body, HttpOutcome};
use super::jsonpath::{Seg, render};
use super::normalise::table_line;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Status,
    ExitCode,
    ContentType,
    /// The `Location` header (redirects).
    Location,
    /// Which rate-limit headers came (`Retry-After`, `X-Ratelimit-*`).
    RateLimitHeaders,
    /// One side JSON, the other text or empty.
    BodyFormat,
    MissingKeyInTresor,
    ExtraKeyInTresor,
    Type,
    Length,
    Value,
    /// A CLI output line that is not a `Label value` pair on both sides.
    Line,
    /// One side gave no HTTP answer at all.
    NoAnswer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The answer as a whole (status, exit code, header, body format).
    Whole,
    /// `stream` is `body` or `stdout` (CLI JSON output).
    Json {
        stream: &'static str,
        path: Vec<Seg>,
    },
    Label {
        stream: &'static str,
        label: String,
    },
    Line {
        stream: &'static str,
        number: usize,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Whole => f.write_str("response"),
            Location::Json { stream, path } => write!(f, "{stream} {}", render(path)),
            Location::Label { stream, label } => write!(f, "{stream} label {label:?}"),
            Location::Line { stream, number } => write!(f, "{stream} line {number}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Mismatch {
    pub kind: Kind,
    pub location: Location,
    /// None: absent on that side.
    pub openbao: Option<Value>,
    pub tresor: Option<Value>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line per mismatch: control characters (multi-line Go errors) are escaped.
        let one_line = |v: Option<&Value>| {
            let s = shown(v);
            if s.contains(char::is_control) {
                format!("{:?}", s)
            } else {
                s
            }
        };
        write!(
            f,
            "{:?} at {}: OpenBao {} / Tresor {}",
            self.kind,
            self.location,
            one_line(self.openbao.as_ref()),
            one_line(self.tresor.as_ref())
        )
    }
}

/// A value as differences match it: strings bare, anything else as JSON, absence as `<absent>`.
pub fn shown(value: Option<&Value>) -> String {
    match value {
        None => "<absent>".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn whole(kind: Kind, openbao: Value, tresor: Value) -> Mismatch {
    Mismatch {
        kind,
        location: Location::Whole,
        openbao: Some(openbao),
        tresor: Some(tresor),
    }
}

pub fn http(openbao: &HttpOutcome, tresor: &HttpOutcome, content: bool) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let (
        HttpOutcome::Answered {
            status: s1,
            content_type: c1,
            location: l1,
            rate_limit_headers: r1,
            body: b1,
        },
        HttpOutcome::Answered {
            status: s2,
            content_type: c2,
            location: l2,
            rate_limit_headers: r2,
            body: b2,
        },
    ) = (openbao, tresor)
    else {
        // Two transport failures (e.g. both reset an oversized upload) count as alike: the
        // error text is the client's, not the server's.
        if let (HttpOutcome::Failed(_), HttpOutcome::Failed(_)) = (openbao, tresor) {
            return out;
        }
        out.push(whole(
            Kind::NoAnswer,
            Value::String(describe(openbao)),
            Value::String(describe(tresor)),
        ));
        return out;
    };
    if s1 != s2 {
        // Answers with different statuses differ in every detail; listing each key would
        // bury the one line that matters (both bodies are shown side by side anyway).
        out.push(whole(Kind::Status, Value::from(*s1), Value::from(*s2)));
        return out;
    }
    if !content {
        return out;
    }
    if c1 != c2 {
        out.push(whole(
            Kind::ContentType,
            c1.clone().map_or(Value::Null, Value::String),
            c2.clone().map_or(Value::Null, Value::String),
        ));
    }
    if r1 != r2 {
        out.push(whole(
            Kind::RateLimitHeaders,
            Value::from(r1.clone()),
            Value::from(r2.clone()),
        ));
    }
    if l1 != l2 {
        out.push(whole(
            Kind::Location,
            l1.clone().map_or(Value::Null, Value::String),
            l2.clone().map_or(Value::Null, Value::String),
        ));
    }
    match (b1, b2) {
        (Body::Empty, Body::Empty) => {}
        (Body::Json(a), Body::Json(b)) => json(a, b, "body", &mut Vec::new(), &mut out),
        (Body::Text(a), Body::Text(b)) => text(a, b, "body", &mut out),
        (a, b) => out.push(whole(
            Kind::BodyFormat,
            Value::String(body_format(a)),
            Value::String(body_format(b)),
        )),
    }
    out
}

fn describe(outcome: &HttpOutcome) -> String {
    match outcome {
        HttpOutcome::Answered { status, .. } => format!("HTTP {status}"),
        HttpOutcome::Failed(e) => format!("no answer: {e}"),
    }
}

fn body_format(body: &Body) -> String {
    match body {
        Body::Empty => "empty".into(),
        Body::Json(_) => "JSON".into(),
        Body::Text(t) => format!("text {t:?}"),
    }
}

/// CLI outcomes whose stdout/stderr are already normalised.
pub fn cli(openbao: &CliOutcome, tresor: &CliOutcome, content: bool) -> Vec<Mismatch> {
    let mut out = Vec::new();
    if openbao.exit != tresor.exit {
        // As for HTTP statuses: the outputs are shown side by side, not listed line by line.
        out.push(whole(
            Kind::ExitCode,
            Value::from(openbao.exit),
            Value::from(tresor.exit),
        ));
        return out;
    }
    if !content {
        return out;
    }
    match (as_json(&openbao.stdout), as_json(&tresor.stdout)) {
        (Some(a), Some(b)) => json(&a, &b, "stdout", &mut Vec::new(), &mut out),
        _ => text(&openbao.stdout, &tresor.stdout, "stdout", &mut out),
    }
    text(&openbao.stderr, &tresor.stderr, "stderr", &mut out);
    out
}

/// CLI output with `-format=json` is a JSON document; anything else is text.
pub fn as_json(text: &str) -> Option<Value> {
    let trimmed = text.trim();
    if !trimmed.starts_with(['{', '[']) {
        return None;
    }
    serde_json::from_str(trimmed).ok()
}

fn json(a: &Value, b: &Value, stream: &'static str, path: &mut Vec<Seg>, out: &mut Vec<Mismatch>) {
    let at = |path: &Vec<Seg>| Location::Json {
        stream,
        path: path.clone(),
    };
    match (a, b) {
        (Value::Object(ma), Value::Object(mb)) => {
            for (k, va) in ma {
                path.push(Seg::Key(k.clone()));
                match mb.get(k) {
                    Some(vb) => json(va, vb, stream, path, out),
                    None => out.push(Mismatch {
                        kind: Kind::MissingKeyInTresor,
                        location: at(path),
                        openbao: Some(va.clone()),
                        tresor: None,
                    }),
                }
                path.pop();
            }
            for (k, vb) in mb.iter().filter(|(k, _)| !ma.contains_key(*k)) {
                path.push(Seg::Key(k.clone()));
                out.push(Mismatch {
                    kind: Kind::ExtraKeyInTresor,
                    location: at(path),
                    openbao: None,
                    tresor: Some(vb.clone()),
                });
                path.pop();
            }
        }
        (Value::Array(la), Value::Array(lb)) => {
            if la.len() != lb.len() {
                out.push(Mismatch {
                    kind: Kind::Length,
                    location: at(path),
                    openbao: Some(Value::from(la.len())),
                    tresor: Some(Value::from(lb.len())),
                });
            }
            for (i, (va, vb)) in la.iter().zip(lb).enumerate() {
                path.push(Seg::Index(i));
                json(va, vb, stream, path, out);
                path.pop();
            }
        }
        _ if type_name(a) != type_name(b) => out.push(Mismatch {
            kind: Kind::Type,
            location: at(path),
            openbao: Some(a.clone()),
            tresor: Some(b.clone()),
        }),
        _ if a != b => out.push(Mismatch {
            kind: Kind::Value,
            location: at(path),
            openbao: Some(a.clone()),
            tresor: Some(b.clone()),
        }),
        _ => {}
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn text(a: &str, b: &str, stream: &'static str, out: &mut Vec<Mismatch>) {
    let la: Vec<&str> = a.lines().collect();
    let lb: Vec<&str> = b.lines().collect();
    for i in 0..la.len().max(lb.len()) {
        let (x, y) = (la.get(i).copied(), lb.get(i).copied());
        if x == y {
            continue;
        }
        let labelled = match (x.and_then(table_line), y.and_then(table_line)) {
            (Some((l1, v1)), Some((l2, v2))) if l1 == l2 => Some((l1, v1, v2)),
            _ => None,
        };
        out.push(match (labelled, x, y) {
            (Some((label, v1, v2)), Some(x), Some(y)) => Mismatch {
                kind: Kind::Value,
                location: Location::Label {
                    stream,
                    label: label.to_owned(),
                },
                openbao: Some(Value::String(x[v1..].to_owned())),
                tresor: Some(Value::String(y[v2..].to_owned())),
            },
            _ => Mismatch {
                kind: Kind::Line,
                location: Location::Line {
                    stream,
                    number: i + 1,
                },
                openbao: x.map(|s| Value::String(s.to_owned())),
                tresor: y.map(|s| Value::String(s.to_owned())),
            },
        });
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn answer(status: u16, body: Value) -> HttpOutcome {
        HttpOutcome::Answered {
            status,
            content_type: Some("application/json".into()),
            location: None,
            rate_limit_headers: Vec::new(),
            body: Body::Json(body),
        }
    }

    fn kinds(m: &[Mismatch]) -> Vec<(Kind, String)> {
        m.iter().map(|m| (m.kind, m.location.to_string())).collect()
    }

    #[test]
    fn json_shape_and_values_are_compared() {
        let a = answer(200, json!({"a": 1, "b": [1, 2], "c": "x", "gone": true}));
        let b = answer(200, json!({"a": "1", "b": [1], "c": "y", "new": null}));
        assert_eq!(
            kinds(&http(&a, &b, true)),
            vec![
                (Kind::Type, "body $.a".to_owned()),
                (Kind::Length, "body $.b".to_owned()),
                (Kind::Value, "body $.c".to_owned()),
                (Kind::MissingKeyInTresor, "body $.gone".to_owned()),
                (Kind::ExtraKeyInTresor, "body $.new".to_owned()),
            ]
        );
    }

    #[test]
    fn compare_false_checks_only_the_status() {
        let a = answer(200, json!({"a": 1}));
        let b = answer(200, json!({"b": 2}));
        assert!(http(&a, &b, false).is_empty());
        let c = answer(400, json!({"a": 1}));
        assert_eq!(
            kinds(&http(&a, &c, false)),
            vec![(Kind::Status, "response".to_owned())]
        );
    }

    #[test]
    fn table_lines_report_their_label() {
        let a = CliOutcome {
            exit: 0,
            stdout: "Key    Value\nVersion    2.7.2\n".into(),
            stderr: String::new(),
        };
        let b = CliOutcome {
            stdout: "Key    Value\nVersion    2.7.2+tresor.0.1.0\n".into(),
            ..a.clone()
        };
        let m = cli(&a, &b, true);
        assert_eq!(
            kinds(&m),
            vec![(Kind::Value, "stdout label \"Version\"".to_owned())]
        );
        assert_eq!(shown(m[0].tresor.as_ref()), "2.7.2+tresor.0.1.0");
    }
}
