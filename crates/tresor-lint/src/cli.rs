//! `tresor lint`: arguments and the run, for the `tresor` binary to mount as a sub-command.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{self, Config};
use crate::input::{self, Ignore};
use crate::lint::{self, Options, Report};
use crate::model::Severity;
use crate::output::{self, Format};
use crate::rules::{RULES, doc_link, rule};

/// Exit codes: 0 clean, 1 findings at or above `--fail-on`, 2 usage or input errors.
pub const EXIT_FINDINGS: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    Error,
    Warning,
    Note,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

/// Guardrail linter for Kubernetes manifests and Helm output: inline secrets, SealedSecrets,
/// unresolved Secret and store references, tokens in manifests.
#[derive(Debug, Clone, clap::Args)]
pub struct LintArgs {
    /// Files or directories (recursive: .yaml, .yml, .json); `-` reads stdin
    /// (`helm template … | tresor lint -`). Default: the config's roots, else `.`.
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Exit 1 when a finding is at or above this severity.
    #[arg(long = "fail-on", value_enum, default_value = "error")]
    pub fail_on: FailOn,
    /// Skip paths matching this glob (repeatable; .tresorignore syntax).
    #[arg(long = "exclude", value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Config file (default: ./.tresor-lint.yaml when present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Ignore ./.tresor-lint.yaml.
    #[arg(long = "no-config")]
    pub no_config: bool,
    /// Print a rule's documentation and exit.
    #[arg(long, value_name = "RULE")]
    pub explain: Option<String>,
    /// List the rules and exit.
    #[arg(long = "list-rules")]
    pub list_rules: bool,
    /// Colour in human output.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: Color,
    /// Refuse inputs larger than this many bytes.
    #[arg(long = "max-file-size", value_name = "BYTES", default_value_t = lint::DEFAULT_MAX_FILE_SIZE)]
    pub max_file_size: u64,
    /// Refuse inputs that hold more than this many nodes (scalars and collections).
    #[arg(long = "max-nodes", value_name = "N", default_value_t = crate::yaml::DEFAULT_MAX_NODES)]
    pub max_nodes: u64,
    /// Refuse inputs with a flow collection (`[…]`, `{…}`, a JSON document) of more than this
    /// many entries, nested ones included.
    #[arg(long = "max-flow-items", value_name = "N", default_value_t = crate::yaml::DEFAULT_MAX_FLOW_ITEMS)]
    pub max_flow_items: u64,
}

fn explain(id: &str, docs_url: Option<&str>) -> Result<String, String> {
    let r = rule(id).ok_or_else(|| {
        let ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        format!("unknown rule {id:?}; rules: {}", ids.join(", "))
    })?;
    Ok(format!(
        "{}  (default severity: {})\n  {}\n\n{}\n\nDocs: {}\nSuppress with a reason: # tresor-lint: allow {} reason=\"…\"\n",
        r.id,
        r.severity.as_str(),
        r.summary,
        wrap(r.explain, 88),
        doc_link(r.id, docs_url),
        r.id
    ))
}

fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out
}

/// Loads the config: `--config`, else `./.tresor-lint.yaml` unless `--no-config`.
fn load_config(args: &LintArgs) -> Result<Config, String> {
    if let Some(path) = &args.config {
        return Config::load(path).map_err(|e| e.to_string());
    }
    let default = Path::new(config::FILE_NAME);
    if !args.no_config && default.is_file() {
        return Config::load(default).map_err(|e| e.to_string());
    }
    Ok(Config::default())
}

/// Whether the report fails the run at the given threshold.
pub fn fails(report: &Report, fail_on: FailOn) -> bool {
    let threshold = match fail_on {
        FailOn::Error => Severity::Error,
        FailOn::Warning => Severity::Warning,
        FailOn::Note => Severity::Note,
        FailOn::Never => return false,
    };
    report.findings.iter().any(|f| f.severity >= threshold)
}

/// Runs `tresor lint` and returns its exit code.
pub fn run(args: LintArgs) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.list_rules {
        for r in RULES {
            let _ = writeln!(out, "{:<30} {:<8} {}", r.id, r.severity.as_str(), r.summary);
        }
        return ExitCode::SUCCESS;
    }
    if let Some(id) = &args.explain {
        // The config may say where the docs are read (`docs_url`).
        let config = match load_config(&args) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("tresor lint: {e}");
                return ExitCode::from(EXIT_ERROR);
            }
        };
        return match explain(id, config.docs_url.as_deref()) {
            Ok(text) => {
                let _ = write!(out, "{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("tresor lint: {e}");
                ExitCode::from(EXIT_ERROR)
            }
        };
    }
    let config = match load_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tresor lint: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let mut excludes = config.exclude.clone();
    excludes.extend(args.exclude.iter().cloned());
    excludes.extend(input::read_ignore_file(Path::new(".")));
    let excludes = match Ignore::new(&excludes) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("tresor lint: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let mut paths = args.paths.clone();
    paths.extend(config.roots.iter().cloned());
    if paths.is_empty() {
        paths.push(PathBuf::from("."));
    }
    let options = Options {
        max_file_size: args.max_file_size,
        limits: crate::yaml::Limits {
            max_nodes: args.max_nodes,
            max_flow_items: args.max_flow_items,
            ..crate::yaml::Limits::default()
        },
    };
    let report = lint::lint_paths(&paths, &excludes, &config, options);
    let color = match args.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let rendered = match args.format {
        Format::Human => output::human(&report, color),
        Format::Json => output::json(&report) + "\n",
        Format::Sarif => output::sarif(&report) + "\n",
    };
    // Human output puts input errors on stderr too, so a pipeline's log shows them.
    if args.format != Format::Human {
        for p in &report.problems {
            eprintln!(
                "tresor lint: {}{}",
                if p.file.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", p.file)
                },
                p.message
            );
        }
    }
    let _ = out.write_all(rendered.as_bytes());
    let _ = out.flush();
    if !report.problems.is_empty() {
        ExitCode::from(EXIT_ERROR)
    } else if fails(&report, args.fail_on) {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_explains_itself() {
        for r in RULES {
            let text = explain(r.id, None).unwrap();
            assert!(
                text.contains(r.id) && text.contains(&format!("Docs: docs/lint.md#{}\n", r.id)),
                "{text}"
            );
            let text = explain(r.id, Some("https://docs.test/lint.md")).unwrap();
            assert!(
                text.contains(&format!("Docs: https://docs.test/lint.md#{}\n", r.id)),
                "{text}"
            );
        }
        assert!(explain("nope", None).is_err());
    }
}
