//! The differential compatibility suite: Tresor against the real OpenBao.
//!
//! Files beside this one:
//! - `scenarios/*.json`: one scenario per file (format in `model.rs`). Adding an endpoint's
//!   scenarios means dropping files here; no code changes.
//! - `normalise.json`: the one reviewed list of values that legitimately differ between any
//!   two servers (ids, tokens, keys, timestamps), replaced on both sides before comparing.
//! - `DIFFERENCES.md`: the deliberate differences between OpenBao and Tresor, each with its
//!   reason; nothing else is forgiven.
//! - `fakes.rs`: the fake Kubernetes API server a scenario can ask for (`kube_apiserver`).
//! - `postgres.rs`: the PostgreSQL fixtures a scenario can ask for (`postgres`): a database
//!   and admin role per server in the real PostgreSQL (`TRESOR_COMPAT_PG`, default
//!   127.0.0.1:5432), dropped afterwards; users the servers leave behind fail the scenario.
//!
//! Environment: `TRESOR_BAO_BIN` (the `bao` binary; default `.build/venv/bin/bao`),
//! `TRESOR_COMPAT_SCENARIOS` (comma-separated name substrings: run only those),
//! `TRESOR_COMPAT_JOBS` (scenarios at once; default 4), `TRESOR_COMPAT_VERBOSE` (print every
//! step's answers side by side, for writing scenarios), `TRESOR_COMPAT_BOTH_OPENBAO` (run
//! OpenBao on both sides: a new scenario must pass against itself, which shows that it is
//! deterministic and its normalisation complete, before Tresor implements the endpoint).

mod cli;
mod compare;
mod differences;
mod fakes;
mod http;
mod jsonpath;
mod model;
mod normalise;
mod postgres;
mod process;
mod report;
mod runner;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use differences::Differences;
use normalise::Normaliser;
use runner::Context;

/// Writes straight to stderr: libtest captures `eprintln!` of passing tests, and each
/// scenario's result line should show as it finishes.
pub(crate) fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Runs every scenario (or the `TRESOR_COMPAT_SCENARIOS` subset) and panics with every
/// failure's report if any step mismatched.
pub async fn run_all() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat");
    let bao = match process::bao_binary() {
        Ok(b) => b,
        Err(message) => panic!("{message}"),
    };
    let load = || -> Result<_, String> {
        let scenarios = model::load_all(&here.join("scenarios"))?;
        let normaliser = Normaliser::load(&here.join("normalise.json"))?;
        let differences = Differences::load(&here.join("DIFFERENCES.md"))?;
        for d in &differences.entries {
            if !d.scenario.contains('*') && !scenarios.iter().any(|s| s.name == d.scenario) {
                return Err(format!(
                    "DIFFERENCES.md names scenario {:?}, which does not exist",
                    d.scenario
                ));
            }
        }
        Ok((scenarios, normaliser, differences))
    };
    let (scenarios, normaliser, differences) = load().unwrap_or_else(|e| panic!("{e}"));
    let filter: Option<Vec<String>> = std::env::var("TRESOR_COMPAT_SCENARIOS")
        .ok()
        .filter(|f| !f.trim().is_empty())
        .map(|f| f.split(',').map(|s| s.trim().to_owned()).collect());
    let selected: Vec<Arc<model::Scenario>> = scenarios
        .into_iter()
        .filter(|s| {
            filter
                .as_ref()
                .is_none_or(|f| f.iter().any(|part| s.name.contains(part.as_str())))
        })
        .map(Arc::new)
        .collect();
    assert!(!selected.is_empty(), "no scenario selected");
    let jobs = std::env::var("TRESOR_COMPAT_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or(4usize)
        .max(1);

    let ctx = Arc::new(Context {
        bao,
        normaliser,
        differences,
        client: http::client(),
        verbose: std::env::var_os("TRESOR_COMPAT_VERBOSE").is_some(),
        both_openbao: std::env::var_os("TRESOR_COMPAT_BOTH_OPENBAO").is_some(),
    });
    let started = Instant::now();
    let limit = Arc::new(tokio::sync::Semaphore::new(jobs));
    let mut tasks = tokio::task::JoinSet::new();
    // CLI steps are the slowest (a process per step and side): start those scenarios first
    // so they do not end up alone at the tail of the run.
    let mut ordered = selected.clone();
    ordered.sort_by_key(|s| std::cmp::Reverse(s.cli_steps()));
    for scenario in &ordered {
        let (ctx, scenario, limit) = (ctx.clone(), scenario.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            runner::run(ctx, scenario).await
        });
    }
    let mut failures = Vec::new();
    let mut steps = 0;
    while let Some(joined) = tasks.join_next().await {
        let outcome = match joined {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("a scenario task panicked: {e}"));
                continue;
            }
        };
        steps += outcome.steps;
        let verdict = if outcome.failures.is_empty() {
            "ok".to_owned()
        } else {
            format!("FAILED ({} failing steps)", outcome.failures.len())
        };
        say(&format!(
            "compat scenario {:<28} {:>3} steps  {:>5.1}s  {verdict}",
            outcome.name,
            outcome.steps,
            outcome.elapsed.as_secs_f64()
        ));
        failures.extend(outcome.failures);
    }
    // A deliberate difference nothing needed any more is stale; only a full run can tell.
    if filter.is_none() {
        for d in ctx.differences.entries.iter().filter(|d| d.uses() == 0) {
            failures.push(format!(
                "DIFFERENCES.md entry forgave nothing (stale? remove it): {}",
                d.describe()
            ));
        }
    }
    say(&format!(
        "compat: {} scenarios, {steps} steps, {:.1}s, {} failures",
        selected.len(),
        started.elapsed().as_secs_f64(),
        failures.len()
    ));
    if !failures.is_empty() {
        panic!(
            "{} compatibility failures:\n\n{}",
            failures.len(),
            failures.join("\n\n")
        );
    }
}
