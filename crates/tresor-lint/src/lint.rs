//! The run: read, parse and check one input at a time, keeping of each only what the
//! cross-file rules and the output need; then the cross-file rules, inline suppressions, sort.

use std::path::PathBuf;

use crate::config::Config;
use crate::input;
use crate::model::{File, Finding, Parsed, extract_resources};
use crate::rules::{self, Ctx, INVALID_SUPPRESSION, refs};
use crate::source::scan_comments;
use crate::yaml::{Limits, Pos, Yaml};

/// Default cap on one input's size: far above any rendered chart, far below what would
/// exhaust memory once parsed.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 32 * 1024 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub limits: Limits,
    pub max_file_size: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            limits: Limits::default(),
            max_file_size: DEFAULT_MAX_FILE_SIZE,
        }
    }
}

/// An input that could not be linted (unreadable, too large, not YAML): exit code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub pos: Option<Pos>,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub files: Vec<File>,
    pub findings: Vec<Finding>,
    pub problems: Vec<Problem>,
    /// Findings silenced by `# tresor-lint: allow` comments.
    pub suppressed: usize,
    /// The config's `docs_url`, for the rule links of the outputs.
    pub docs_url: Option<String>,
}

impl Report {
    pub fn resource_count(&self) -> usize {
        self.files.iter().map(|f| f.resources.len()).sum()
    }

    pub fn file_name(&self, finding: &Finding) -> &str {
        self.files.get(finding.file).map_or("", |f| f.name.as_str())
    }
}

/// Lints files and directories (and `-`, stdin). Files are read, parsed and checked one at a
/// time: memory holds one file's text and tree, plus the reference index and the findings.
pub fn lint_paths(
    paths: &[PathBuf],
    excludes: &input::Ignore,
    config: &Config,
    options: Options,
) -> Report {
    let mut problems = Vec::new();
    let files = match input::collect(paths, excludes) {
        Ok(f) => f,
        Err(e) => {
            problems.push(Problem {
                file: String::new(),
                pos: None,
                message: e.to_string(),
            });
            Vec::new()
        }
    };
    let mut linter = Linter::new(config, options.limits);
    for path in files {
        match input::read(&path, options.max_file_size) {
            Ok(text) => linter.add(input::display(&path), text),
            Err(e) => problems.push(Problem {
                file: input::display(&path),
                pos: None,
                message: e.to_string(),
            }),
        }
    }
    let mut report = linter.finish();
    // Unreadable inputs first, then unparsable ones, each in input order.
    problems.append(&mut report.problems);
    report.problems = problems;
    report
}

/// Lints in-memory sources (`(name, text)`), as one set.
pub fn lint_sources(sources: Vec<(String, String)>, config: &Config, limits: Limits) -> Report {
    let mut linter = Linter::new(config, limits);
    for (name, text) in sources {
        linter.add(name, text);
    }
    linter.finish()
}

/// One run, fed a file at a time. Each file is parsed, its own rules run (inline
/// credentials, tokens, allow-comment problems), its references are indexed, and its text and
/// tree are dropped; [`Linter::finish`] runs the cross-file rules over the index and applies
/// the allow comments.
#[derive(Debug)]
pub struct Linter<'c> {
    config: &'c Config,
    limits: Limits,
    files: Vec<File>,
    findings: Vec<Finding>,
    problems: Vec<Problem>,
    index: refs::Index,
}

impl<'c> Linter<'c> {
    pub fn new(config: &'c Config, limits: Limits) -> Self {
        Linter {
            config,
            limits,
            files: Vec::new(),
            findings: Vec::new(),
            problems: Vec::new(),
            index: refs::Index::default(),
        }
    }

    /// Lints one file; its text is dropped before this returns.
    pub fn add(&mut self, name: String, text: String) {
        let yaml = match Yaml::parse(&text, self.limits) {
            Ok(yaml) => yaml,
            Err(e) => {
                self.problems.push(Problem {
                    file: name,
                    pos: Some(e.pos()),
                    message: e.to_string(),
                });
                return;
            }
        };
        let comments = scan_comments(&text);
        let file = File {
            name,
            resources: extract_resources(&yaml, &comments.helm_sources),
            suppressions: comments.suppressions,
        };
        let src = Parsed::new(text, yaml);
        let fi = self.files.len();
        let mut ctx = Ctx::new(fi, &file, &src, self.config);
        rules::inline::check(&mut ctx);
        rules::tokens::check(&mut ctx);
        suppression_problems(&mut ctx, &comments.malformed);
        refs::index(&ctx, &mut self.index);
        let findings = ctx.findings;
        self.findings.extend(findings);
        self.files.push(file);
    }

    pub fn finish(self) -> Report {
        let mut findings = self.findings;
        findings.extend(refs::check(&self.index, &self.files, self.config));
        drop(self.index);
        let before = findings.len();
        findings.retain(|f| !suppressed(&self.files, f));
        let suppressed = before - findings.len();
        findings.sort_by(|a, b| {
            (a.file, a.pos, a.rule, &a.message).cmp(&(b.file, b.pos, b.rule, &b.message))
        });
        findings.dedup_by(|a, b| {
            a.file == b.file && a.pos == b.pos && a.rule == b.rule && a.message == b.message
        });
        Report {
            files: self.files,
            findings,
            problems: self.problems,
            suppressed,
            docs_url: self.config.docs_url.clone(),
        }
    }
}

fn suppression_problems(ctx: &mut Ctx<'_>, malformed: &[(Pos, String)]) {
    for (pos, message) in malformed {
        ctx.emit(
            INVALID_SUPPRESSION,
            None,
            None,
            *pos,
            message.clone(),
            None,
            false,
        );
    }
    let file = ctx.file;
    for s in &file.suppressions {
        let pos = Pos {
            line: s.line,
            col: s.col,
        };
        for r in &s.rules {
            if rules::rule(r).is_none() {
                ctx.emit(
                    INVALID_SUPPRESSION,
                    None,
                    None,
                    pos,
                    format!(
                        "tresor-lint allow comment names unknown rule {r:?}; it suppresses nothing"
                    ),
                    None,
                    false,
                );
            }
        }
        if s.reason.is_none() {
            ctx.emit(
                INVALID_SUPPRESSION,
                None,
                None,
                pos,
                "tresor-lint allow comment has no reason=\"…\"; it suppresses nothing".to_owned(),
                None,
                false,
            );
        }
    }
}

/// Whether an allow comment covers a finding: on its line (trailing, or alone on the line
/// above it) or on the line where its value starts (`key: |` of a block scalar whose content
/// holds the finding), or on its resource (alone on the line(s) above the resource's first
/// line, or trailing the resource's first line or its `kind:` line).
fn suppressed(files: &[File], f: &Finding) -> bool {
    if f.rule == INVALID_SUPPRESSION {
        return false;
    }
    let Some(file) = files.get(f.file) else {
        return false;
    };
    let resource = f.resource.and_then(|i| file.resources.get(i));
    file.suppressions.iter().any(|s| {
        if s.reason.is_none() || !s.rules.iter().any(|r| r == f.rule) {
            return false;
        }
        if s.own_line {
            let Some(target) = s.next_content_line else {
                return false;
            };
            target == f.pos.line
                || f.value_line == Some(target)
                || resource.is_some_and(|r| r.start_line == target)
        } else {
            s.line == f.pos.line
                || f.value_line == Some(s.line)
                || resource.is_some_and(|r| r.start_line == s.line || r.kind_line == s.line)
        }
    })
}
