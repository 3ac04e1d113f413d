//! Rendering a failed step: the request, the mismatches, and both answers side by side.

use super::cli::CliOutcome;
use super::compare::Mismatch;
use super::http::{Body, HttpOutcome};

/// Widest a column gets; longer lines wrap so nothing is cut off.
const MAX_COLUMN: usize = 72;
/// Longest an answer gets before the rest is elided (a runaway body must not flood the log).
const MAX_LINES: usize = 120;

pub fn http_answer(outcome: &HttpOutcome) -> String {
    match outcome {
        HttpOutcome::Failed(e) => format!("no answer: {e}"),
        HttpOutcome::Answered {
            status,
            content_type,
            location,
            rate_limit_headers,
            body,
        } => {
            let body = match body {
                Body::Empty => "(empty body)".to_owned(),
                Body::Json(v) => serde_json::to_string_pretty(v).unwrap_or_default(),
                Body::Text(t) => format!("(text) {t}"),
            };
            let mut location = location
                .as_deref()
                .map(|l| format!("Location: {l}\n"))
                .unwrap_or_default();
            for name in rate_limit_headers {
                location.push_str(&format!("{name}: (present)\n"));
            }
            format!(
                "HTTP {status}\nContent-Type: {}\n{location}\n{body}",
                content_type.as_deref().unwrap_or("(none)")
            )
        }
    }
}

pub fn cli_answer(outcome: &CliOutcome) -> String {
    format!(
        "exit {}\n--- stdout\n{}\n--- stderr\n{}",
        outcome.exit, outcome.stdout, outcome.stderr
    )
}

pub fn step_failure(
    scenario: &str,
    step: usize,
    request: &str,
    note: &str,
    mismatches: &[Mismatch],
    openbao: &str,
    tresor: &str,
) -> String {
    let mut out = format!("scenario {scenario}, step {step}: {request}\n");
    if !note.is_empty() {
        out.push_str(&format!("  ({note})\n"));
    }
    for m in mismatches {
        out.push_str(&format!("  - {m}\n"));
    }
    out.push_str(&side_by_side(openbao, tresor));
    out
}

pub fn side_by_side(left: &str, right: &str) -> String {
    let wrap = |text: &str| -> Vec<String> {
        let mut lines: Vec<String> = text
            .lines()
            .flat_map(|line| {
                let chars: Vec<char> = line.chars().collect();
                if chars.is_empty() {
                    return vec![String::new()];
                }
                chars
                    .chunks(MAX_COLUMN)
                    .map(|c| c.iter().collect())
                    .collect()
            })
            .collect();
        if lines.len() > MAX_LINES {
            let more = lines.len() - MAX_LINES;
            lines.truncate(MAX_LINES);
            lines.push(format!("… {more} more lines"));
        }
        lines
    };
    let (l, r) = (wrap(left), wrap(right));
    let width = l
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0)
        .max("OpenBao (normalised)".len());
    let mut out = format!(
        "    {:<width$} │ {}\n    {} ┼ {}\n",
        "OpenBao (normalised)",
        "Tresor (normalised)",
        "─".repeat(width),
        "─".repeat(20)
    );
    for i in 0..l.len().max(r.len()) {
        let a = l.get(i).map_or("", String::as_str);
        let b = r.get(i).map_or("", String::as_str);
        let mark = if a == b { "│" } else { "≠" };
        out.push_str(&format!("    {a:<width$} {mark} {b}\n"));
    }
    out
}
