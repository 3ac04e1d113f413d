//! Running the `bao` CLI (the Go `api` client that ESO and VSO are built on) against one
//! server.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use super::model::{CliStep, Vars, fill};

/// A CLI call that hangs (e.g. waiting for input) fails the step instead of the whole run.
const CLI_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct CliOutcome {
    pub exit: i64,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `bao ARGS` with only `HOME` (a scratch directory, so no token helper file is read or
/// written), `PATH`, `BAO_ADDR`, `BAO_MAX_RETRIES` and the step's `env`: nothing leaks in from
/// the test's environment (a developer's BAO_TOKEN, VAULT_ADDR, …).
pub async fn run(
    bao: &Path,
    home: &Path,
    addr: &str,
    step: &CliStep,
    vars: &Vars,
) -> Result<CliOutcome, String> {
    let args = step
        .args
        .iter()
        .map(|a| fill(a, vars))
        .collect::<Result<Vec<_>, _>>()?;
    let mut command = tokio::process::Command::new(bao);
    command
        .args(&args)
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("BAO_ADDR", addr)
        // The client retries 5xx answers (e.g. 503 while sealed) twice with a second of
        // backoff; the final answer is the same, only slower.
        .env("BAO_MAX_RETRIES", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in &step.env {
        command.env(name, fill(value, vars)?);
    }
    let child = command.spawn().map_err(|e| format!("starting bao: {e}"))?;
    let output = tokio::time::timeout(CLI_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("bao {} did not finish in {CLI_TIMEOUT:?}", args.join(" ")))?
        .map_err(|e| format!("running bao: {e}"))?;
    Ok(CliOutcome {
        exit: output.status.code().map_or(-1, i64::from),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}
