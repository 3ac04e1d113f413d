//! The three renderings of a report: human (`file:line:col`, coloured on a terminal), JSON,
//! and SARIF 2.1.0. None of them can print a value: a finding holds only a redacted hint.

use serde_json::{Value, json};

use crate::lint::Report;
use crate::model::{Finding, Severity};
use crate::rules::{RULES, doc_link, help_uri};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
    Sarif,
}

fn paint(color: bool, code: &str, s: &str) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_owned()
    }
}

fn sev_color(s: Severity) -> &'static str {
    match s {
        Severity::Error => "1;31",
        Severity::Warning => "1;33",
        Severity::Note => "1;36",
    }
}

pub fn human(report: &Report, color: bool) -> String {
    let mut out = String::new();
    for p in &report.problems {
        let loc = match p.pos {
            Some(pos) => format!("{}:{}:{}", p.file, pos.line, pos.col),
            None if p.file.is_empty() => "tresor lint".to_owned(),
            None => p.file.clone(),
        };
        out.push_str(&format!(
            "{}: {}: {}\n",
            paint(color, "1", &loc),
            paint(color, "1;31", "fatal"),
            p.message
        ));
    }
    for f in &report.findings {
        out.push_str(&human_line(report, f, color));
        out.push('\n');
    }
    let count = |s| report.findings.iter().filter(|f| f.severity == s).count();
    out.push_str(&format!(
        "{} file(s), {} resource(s): {} error(s), {} warning(s), {} note(s){}{}\n",
        report.files.len(),
        report.resource_count(),
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Note),
        if report.suppressed > 0 {
            format!(", {} suppressed", report.suppressed)
        } else {
            String::new()
        },
        if report.problems.is_empty() {
            String::new()
        } else {
            format!(", {} input(s) not linted", report.problems.len())
        }
    ));
    out
}

fn human_line(report: &Report, f: &Finding, color: bool) -> String {
    let loc = format!("{}:{}:{}", report.file_name(f), f.pos.line, f.pos.col);
    let sev = format!("{}[{}]", f.severity.as_str(), f.rule);
    let mut line = format!(
        "{}: {} {}",
        paint(color, "1", &loc),
        paint(color, sev_color(f.severity), &sev),
        f.message
    );
    if let Some(h) = &f.hint {
        line.push_str(&paint(color, "2", &format!(" [value: {h}]")));
    }
    if let Some(src) = helm_source(report, f) {
        line.push_str(&paint(color, "2", &format!(" (helm: {src})")));
    }
    line
}

fn helm_source<'a>(report: &'a Report, f: &Finding) -> Option<&'a str> {
    report
        .files
        .get(f.file)
        .and_then(|file| f.resource.and_then(|r| file.resources.get(r)))
        .and_then(|r| r.helm_source.as_deref())
}

fn resource_json(report: &Report, f: &Finding) -> Value {
    report
        .files
        .get(f.file)
        .and_then(|file| f.resource.and_then(|r| file.resources.get(r)))
        .map_or(Value::Null, |r| {
            json!({
                "apiVersion": r.api_version,
                "kind": r.kind,
                "name": r.name,
                "namespace": r.namespace,
            })
        })
}

pub fn json(report: &Report) -> String {
    let findings: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            json!({
                "rule": f.rule,
                "severity": f.severity.as_str(),
                "message": f.message,
                "file": report.file_name(f),
                "line": f.pos.line,
                "column": f.pos.col,
                "resource": resource_json(report, f),
                "hint": f.hint,
                "helm_source": helm_source(report, f),
                "doc": doc_link(f.rule, report.docs_url.as_deref()),
            })
        })
        .collect();
    let problems: Vec<Value> = report
        .problems
        .iter()
        .map(|p| {
            json!({
                "file": p.file,
                "line": p.pos.map(|p| p.line),
                "column": p.pos.map(|p| p.col),
                "message": p.message,
            })
        })
        .collect();
    let count = |s| report.findings.iter().filter(|f| f.severity == s).count();
    let doc = json!({
        "tool": "tresor-lint",
        "version": env!("CARGO_PKG_VERSION"),
        "findings": findings,
        "errors": problems,
        "summary": {
            "files": report.files.len(),
            "resources": report.resource_count(),
            "errors": count(Severity::Error),
            "warnings": count(Severity::Warning),
            "notes": count(Severity::Note),
            "suppressed": report.suppressed,
        }
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    }
}

/// A relative URI for a file name (SARIF wants URI references; stdin gets a fixed name).
fn artifact_uri(name: &str) -> String {
    let name = name.strip_prefix("./").unwrap_or(name);
    let mut out = String::new();
    for b in name.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char);
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub fn sarif(report: &Report) -> String {
    let docs_url = report.docs_url.as_deref();
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            let mut rule = json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": { "text": r.summary },
                "fullDescription": { "text": r.explain },
                "help": {
                    "text": format!("{}\n\nDocs: {}", r.explain, doc_link(r.id, docs_url))
                },
                "defaultConfiguration": { "level": sarif_level(r.severity) },
            });
            // SARIF wants an absolute helpUri: only with the config's docs_url.
            if let (Some(uri), Some(obj)) = (help_uri(r.id, docs_url), rule.as_object_mut()) {
                obj.insert("helpUri".to_owned(), Value::String(uri));
            }
            rule
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let index = RULES.iter().position(|r| r.id == f.rule).unwrap_or(0);
            let mut text = f.message.clone();
            if let Some(h) = &f.hint {
                text.push_str(&format!(" [value: {h}]"));
            }
            let mut result = json!({
                "ruleId": f.rule,
                "ruleIndex": index,
                "level": sarif_level(f.severity),
                "message": { "text": text },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": artifact_uri(report.file_name(f)) },
                        "region": { "startLine": f.pos.line.max(1), "startColumn": f.pos.col.max(1) }
                    }
                }],
                "partialFingerprints": {
                    "tresorLint/v1": format!("{}:{}:{}", f.rule, report.file_name(f), f.message)
                }
            });
            let resource = resource_json(report, f);
            if !resource.is_null()
                && let Some(obj) = result.as_object_mut()
            {
                obj.insert("properties".to_owned(), json!({ "resource": resource }));
            }
            result
        })
        .collect();
    let notifications: Vec<Value> = report
        .problems
        .iter()
        .map(|p| {
            let mut n = json!({
                "level": "error",
                "message": { "text": p.message },
            });
            if !p.file.is_empty()
                && let Some(obj) = n.as_object_mut()
            {
                let mut loc = json!({ "artifactLocation": { "uri": artifact_uri(&p.file) } });
                if let (Some(pos), Some(l)) = (p.pos, loc.as_object_mut()) {
                    l.insert(
                        "region".to_owned(),
                        json!({ "startLine": pos.line.max(1), "startColumn": pos.col.max(1) }),
                    );
                }
                obj.insert("locations".to_owned(), json!([{ "physicalLocation": loc }]));
            }
            n
        })
        .collect();
    let mut driver = json!({
        "name": "tresor-lint",
        "version": env!("CARGO_PKG_VERSION"),
        "rules": rules,
    });
    if let (Some(base), Some(obj)) = (docs_url, driver.as_object_mut()) {
        obj.insert("informationUri".to_owned(), Value::String(base.to_owned()));
    }
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": driver },
            "columnKind": "unicodeCodePoints",
            "invocations": [{
                "executionSuccessful": report.problems.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }]
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
