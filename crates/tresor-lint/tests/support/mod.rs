#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code,
    reason = "test helpers outside #[test] functions"
)]

use tresor_lint::yaml::Limits;
use tresor_lint::{Config, Report, lint_sources};

pub fn report_with(files: &[(&str, &str)], config: &Config) -> Report {
    lint_sources(
        files
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect(),
        config,
        Limits::default(),
    )
}

pub fn report(files: &[(&str, &str)]) -> Report {
    report_with(files, &Config::default())
}

/// `(rule, line, column, severity)` of every finding, in order.
pub fn findings(files: &[(&str, &str)]) -> Vec<(String, u32, u32, String)> {
    summarise(&report(files))
}

pub fn summarise(r: &Report) -> Vec<(String, u32, u32, String)> {
    assert!(
        r.problems.is_empty(),
        "unexpected problems: {:?}",
        r.problems
    );
    r.findings
        .iter()
        .map(|f| {
            (
                f.rule.to_owned(),
                f.pos.line,
                f.pos.col,
                f.severity.as_str().to_owned(),
            )
        })
        .collect()
}

/// The rule ids found in one file.
pub fn rules_of(text: &str) -> Vec<String> {
    findings(&[("m.yaml", text)])
        .into_iter()
        .map(|f| f.0)
        .collect()
}

pub fn f(rule: &str, line: u32, col: u32, sev: &str) -> (String, u32, u32, String) {
    (rule.to_owned(), line, col, sev.to_owned())
}
