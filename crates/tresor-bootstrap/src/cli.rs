//! `tresor bootstrap`: arguments and the run, for the `tresor` binary to mount as a
//! sub-command (as it mounts `tresor lint`).
//!
//! Exit codes: 0 success; 1 a failed rule (`required`) or a failed source or write; 2 a usage
//! or config error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;

use crate::config::Config;
use crate::doctor::{self, Verdict};
use crate::plan::Action;
use crate::progress::Progress;
use crate::run::{self, Report, RunError};

pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}

/// Import secrets from .env files, Azure Key Vault and other Vault servers into a KV v2 mount.
#[derive(Debug, Clone, clap::Args)]
pub struct BootstrapArgs {
    #[command(subcommand)]
    pub command: BootstrapCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum BootstrapCommand {
    /// Import: write what the sources hold into the target, by the rules in docs/bootstrap.md.
    Run(RunArgs),
    /// Check the target (reachable, unsealed, token, KV v2 mount, policy) and, for an
    /// azure_keyvault source, the Azure credential chain and workload identity.
    Doctor(DoctorArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The config file (YAML).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Print the plan (names and actions, never values) and write nothing.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DoctorArgs {
    /// The config file (YAML).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
}

/// Runs `tresor bootstrap …` and returns its exit code.
pub fn run(args: BootstrapArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tresor bootstrap: starting the runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    match args.command {
        BootstrapCommand::Run(a) => runtime.block_on(run_command(a)),
        BootstrapCommand::Doctor(a) => runtime.block_on(doctor_command(a)),
    }
}

fn load(path: &Path) -> Result<(Config, PathBuf), String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok((config, base))
}

/// Prints an error: to stderr, and as `{"error": …}` on stdout for `--format json`.
fn fail(format: Format, code: u8, message: &str, extra: serde_json::Value) -> ExitCode {
    eprintln!("tresor bootstrap: {message}");
    if format == Format::Json {
        let mut body = json!({ "error": message, "exit_code": code });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        println!("{body}");
    }
    ExitCode::from(code)
}

async fn run_command(args: RunArgs) -> ExitCode {
    let (config, base) = match load(&args.config) {
        Ok(c) => c,
        Err(e) => return fail(args.format, EXIT_USAGE, &e, json!({})),
    };
    let mut progress = Progress::for_stderr();
    let result = run::run(&config, &base, args.dry_run, &mut progress).await;
    progress.finish();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            let (code, extra) = match &e {
                RunError::Config(_) => (EXIT_USAGE, json!({})),
                RunError::Source { .. } => (EXIT_FAILED, json!({})),
                RunError::Required(names) => (EXIT_FAILED, json!({ "unmet_required": names })),
            };
            return fail(args.format, code, &e.to_string(), extra);
        }
    };
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let out = match args.format {
        Format::Human => human(&report),
        Format::Json => format!("{}\n", json_report(&report)),
    };
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    if report.count(Action::Failed) > 0 {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

/// The per-name table and the summary; names, actions and origins only.
pub fn human(report: &Report) -> String {
    let mut out = String::new();
    if report.dry_run {
        out.push_str("Plan (dry run: nothing was written)\n\n");
    }
    let width = report
        .items
        .iter()
        .map(|i| i.name.len())
        .max()
        .unwrap_or(0)
        .max(4);
    out.push_str(&format!("{:<width$}  {:<15}  ORIGIN\n", "NAME", "ACTION"));
    for i in &report.items {
        out.push_str(&format!(
            "{:<width$}  {:<15}  {}",
            i.name,
            i.action.as_str(),
            i.origin
        ));
        if let Some(n) = &i.note {
            out.push_str(&format!("  ({n})"));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "\nSummary: {} → {}/{}{}\n",
        report.address,
        report.mount,
        report.path_prefix,
        if report.dry_run { " (dry run)" } else { "" }
    ));
    for a in Action::ALL {
        let n = report.count(a);
        if a == Action::Failed && n == 0 {
            continue;
        }
        out.push_str(&format!("  {:<16} {n}\n", a.as_str()));
    }
    out
}

pub fn json_report(report: &Report) -> serde_json::Value {
    let summary: serde_json::Map<String, serde_json::Value> = Action::ALL
        .iter()
        .map(|a| (a.as_str().replace('-', "_"), json!(report.count(*a))))
        .collect();
    json!({
        "dry_run": report.dry_run,
        "target": {
            "address": report.address,
            "mount": report.mount,
            "path_prefix": report.path_prefix,
        },
        "items": report.items,
        "summary": summary,
        "warnings": report.warnings,
    })
}

async fn doctor_command(args: DoctorArgs) -> ExitCode {
    let (config, base) = match load(&args.config) {
        Ok(c) => c,
        Err(e) => return fail(args.format, EXIT_USAGE, &e, json!({})),
    };
    let target = match run::target_client(&config, &base) {
        Ok(t) => t,
        Err(e) => return fail(args.format, EXIT_USAGE, &e.to_string(), json!({})),
    };
    let checks = doctor::checks(&config, &target).await;
    let azure = doctor::azure_reports(&config, &base, &tresor_azure::Env::process()).await;
    let failed =
        checks.iter().any(|c| c.verdict == Verdict::Failed) || azure.iter().any(|a| !a.healthy());
    match args.format {
        Format::Json => {
            let azure: Vec<serde_json::Value> = azure
                .iter()
                .map(|a| {
                    json!({
                        "source": a.index,
                        "vault_url": a.vault_url,
                        "healthy": a.healthy(),
                        "report": match &a.report {
                            Ok(r) => r.to_string(),
                            Err(e) => e.clone(),
                        },
                    })
                })
                .collect();
            println!(
                "{}",
                json!({ "target": target.address(), "checks": checks, "azure": azure, "ok": !failed })
            )
        }
        Format::Human => {
            println!("Target {}", target.address());
            for c in &checks {
                let mark = match c.verdict {
                    Verdict::Ok => "ok     ",
                    Verdict::Failed => "FAILED ",
                    Verdict::Skipped => "skipped",
                };
                println!("  {mark} {:<18} {}", c.name, c.detail);
                if let Some(fix) = &c.fix {
                    println!("          fix: {fix}");
                }
            }
            for a in &azure {
                println!(
                    "\nsources[{}] azure_keyvault {}: {}",
                    a.index,
                    a.vault_url,
                    if a.healthy() { "healthy" } else { "UNHEALTHY" }
                );
                match &a.report {
                    Ok(r) => print!("{r}"),
                    Err(e) => println!("  FAIL  options: {e}"),
                }
            }
        }
    }
    if failed {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}
