//! Running one scenario: a fresh OpenBao and a fresh Tresor of the scenario's kind, every
//! step replayed against both, answers normalised, compared, and forgiven only by
//! DIFFERENCES.md.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::cli::{self, CliOutcome};
use super::compare;
use super::differences::Differences;
use super::fakes::KubeApiserver;
use super::http::{self, Body, HttpOutcome};
use super::jsonpath::Pattern;
use super::model::{Action, ClientKind, Scenario, ServerKind, Step, Vars};
use super::normalise::{Normaliser, table_line};
use super::postgres::Postgres;
use super::process::{self, Flavor, ServerProcess};
use super::report;

/// Shared by every scenario of a run.
#[derive(Debug)]
pub struct Context {
    pub bao: PathBuf,
    pub normaliser: Normaliser,
    pub differences: Differences,
    pub client: reqwest::Client,
    /// `TRESOR_COMPAT_VERBOSE`: print every step's answers, for writing new scenarios.
    pub verbose: bool,
    /// `TRESOR_COMPAT_BOTH_OPENBAO`: run OpenBao on the Tresor side too, to check that new
    /// scenarios (and their normalisation) are deterministic before Tresor implements them.
    pub both_openbao: bool,
}

#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    pub steps: usize,
    pub elapsed: Duration,
    /// One rendered report per failed step (or a setup error).
    pub failures: Vec<String>,
}

/// One side of the comparison: its server, variables and CLI home directory.
struct Side {
    server: ServerProcess,
    vars: Vars,
    home: PathBuf,
}

pub async fn run(ctx: Arc<Context>, scenario: Arc<Scenario>) -> Outcome {
    let started = Instant::now();
    let mut outcome = Outcome {
        name: scenario.name.clone(),
        steps: scenario.steps.len(),
        elapsed: Duration::ZERO,
        failures: Vec::new(),
    };
    // The directory outlives both servers (declared first, dropped last).
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            outcome.failures.push(format!("tempdir: {e}"));
            return outcome;
        }
    };
    // A fake both servers talk to, started first so its variables exist for every step.
    let fake = match &scenario.kube_apiserver {
        None => None,
        Some(seed) => match KubeApiserver::start(&ctx.bao, dir.path(), seed) {
            Ok(f) => Some(f),
            Err(e) => {
                outcome
                    .failures
                    .push(format!("scenario {}: {e}", scenario.name));
                outcome.elapsed = started.elapsed();
                return outcome;
            }
        },
    };
    // PostgreSQL fixtures, dropped (after the servers) at the end of this function.
    let postgres = if scenario.postgres {
        match tokio::task::block_in_place(Postgres::create) {
            Ok(pg) => Some(pg),
            Err(e) => {
                outcome.failures.push(format!(
                    "scenario {}: PostgreSQL fixtures: {e}",
                    scenario.name
                ));
                outcome.elapsed = started.elapsed();
                return outcome;
            }
        }
    } else {
        None
    };
    match start_both(
        &ctx,
        scenario.server,
        dir.path().to_path_buf(),
        &scenario.listener,
        &scenario.config,
    )
    .await
    {
        Ok((mut openbao, mut tresor)) => {
            if let Some(fake) = &fake {
                openbao.vars.extend(fake.vars.clone());
                tresor.vars.extend(fake.vars.clone());
            }
            if let Some(pg) = &postgres {
                openbao.vars.extend(pg.vars(Flavor::OpenBao));
                tresor.vars.extend(pg.vars(Flavor::Tresor));
            }
            for step in &scenario.steps {
                match run_step(&ctx, &scenario, step, &mut openbao, &mut tresor).await {
                    Ok(None) => {}
                    Ok(Some(failure)) => outcome.failures.push(failure),
                    Err(fatal) => {
                        // Later steps depend on this one (captures): stop here.
                        outcome.failures.push(format!(
                            "scenario {}, step {}: {fatal}\n  (remaining steps skipped)\n--- OpenBao log\n{}\n--- Tresor log\n{}",
                            scenario.name,
                            step.number,
                            openbao.server.log_tail(),
                            tresor.server.log_tail()
                        ));
                        break;
                    }
                }
            }
            if let Some(pg) = &postgres
                && let Err(e) = no_users_left(&ctx, pg, &openbao, &tresor).await
            {
                outcome
                    .failures
                    .push(format!("scenario {}: {e}", scenario.name));
            }
        }
        Err(e) => outcome
            .failures
            .push(format!("scenario {}: {e}", scenario.name)),
    }
    if let Some(pg) = postgres {
        tokio::task::block_in_place(move || drop(pg));
    }
    // Every body the fake saw must satisfy the Kubernetes schemas, whichever server sent it.
    if let Some(fake) = &fake {
        let violations = fake.violations();
        if !violations.is_empty() {
            outcome.failures.push(format!(
                "scenario {}: the fake Kubernetes API server saw bodies that violate the Kubernetes schemas:\n{}",
                scenario.name,
                violations.join("\n")
            ));
        }
    }
    outcome.elapsed = started.elapsed();
    outcome
}

/// At the end of a postgres scenario: every database mount's leases are revoked by prefix on
/// both servers (which must drop every user they created), then no user the servers created
/// may be left in PostgreSQL.
async fn no_users_left(
    ctx: &Context,
    pg: &Postgres,
    openbao: &Side,
    tresor: &Side,
) -> Result<(), String> {
    let mut problems = Vec::new();
    for (label, side) in [("OpenBao", openbao), ("Tresor", tresor)] {
        if let Err(e) = revoke_database_leases(&ctx.client, &side.server.addr).await {
            problems.push(format!("{label}: {e}"));
        }
    }
    let left = tokio::task::block_in_place(|| pg.leftover_users())?;
    if !left.is_empty() {
        problems.push(format!(
            "PostgreSQL users left after revoking every database lease (a server did not drop \
             what it created): {}",
            left.join(", ")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// `sys/leases/revoke-prefix/<mount>` (synchronous) for every mount of type `database`.
async fn revoke_database_leases(client: &reqwest::Client, addr: &str) -> Result<(), String> {
    let mounts: Value = client
        .get(format!("{addr}/v1/sys/mounts"))
        .header("X-Vault-Token", "root")
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("{addr}: listing mounts: {e}"))?
        .json()
        .await
        .map_err(|e| format!("{addr}: listing mounts: {e}"))?;
    let paths = mounts["data"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, m)| m["type"] == "database")
        .map(|(path, _)| path.trim_end_matches('/').to_owned());
    for path in paths {
        let answer = client
            .put(format!("{addr}/v1/sys/leases/revoke-prefix/{path}"))
            .header("X-Vault-Token", "root")
            .send()
            .await
            .map_err(|e| format!("{addr}: revoke-prefix {path}: {e}"))?;
        if !answer.status().is_success() {
            return Err(format!(
                "{addr}: revoke-prefix {path}: HTTP {} {}",
                answer.status(),
                answer.text().await.unwrap_or_default()
            ));
        }
    }
    Ok(())
}

/// Both servers start at once; server start-up is most of a scenario's time.
async fn start_both(
    ctx: &Context,
    kind: ServerKind,
    dir: PathBuf,
    listener: &str,
    config: &str,
) -> Result<(Side, Side), String> {
    let side = |label: Flavor| {
        // The Tresor side runs OpenBao too with TRESOR_COMPAT_BOTH_OPENBAO.
        let flavor = if ctx.both_openbao {
            Flavor::OpenBao
        } else {
            label
        };
        let bao = ctx.bao.clone();
        let dir = dir.join(label.label());
        let listener = listener.to_owned();
        let config = config.to_owned();
        tokio::task::spawn_blocking(move || -> Result<Side, String> {
            std::fs::create_dir_all(dir.join("home")).map_err(|e| e.to_string())?;
            let server = process::start(flavor, kind, &bao, &dir, &listener, &config)
                .map_err(|e| format!("{} did not start: {e}", label.label()))?;
            let mut vars = Vars::new();
            vars.insert("addr".into(), server.addr.clone());
            if kind == ServerKind::Dev {
                vars.insert("root_token".into(), "root".into());
            }
            Ok(Side {
                server,
                vars,
                home: dir.join("home"),
            })
        })
    };
    let (a, b) = tokio::join!(side(Flavor::OpenBao), side(Flavor::Tresor));
    let a = a.map_err(|e| e.to_string())??;
    let b = b.map_err(|e| e.to_string())??;
    Ok((a, b))
}

/// `Ok(None)`: the step passed; `Ok(Some(report))`: it failed; `Err`: the scenario cannot go on.
async fn run_step(
    ctx: &Context,
    scenario_def: &Scenario,
    step: &Step,
    openbao: &mut Side,
    tresor: &mut Side,
) -> Result<Option<String>, String> {
    let scenario = scenario_def.name.as_str();
    let request = step.request_key();
    let (mismatches, expectation, answers, captured) = match &step.action {
        Action::Http(h) => {
            let (a, b) = tokio::join!(
                http::send(&ctx.client, &openbao.server.addr, h, &openbao.vars),
                http::send(&ctx.client, &tresor.server.addr, h, &tresor.vars),
            );
            let (a, b) = (a?, b?);
            let status = |o: &HttpOutcome| match o {
                HttpOutcome::Answered { status, .. } => i64::from(*status),
                HttpOutcome::Failed(_) => -1,
            };
            let expectation = expectation("status", step.expect, status(&a), status(&b));
            let (na, nb) = (
                normalise_http(ctx, &a, &request, &openbao.vars),
                normalise_http(ctx, &b, &request, &tresor.vars),
            );
            let mismatches = compare::http(&na, &nb, step.compare);
            let answers = (report::http_answer(&na), report::http_answer(&nb));
            let captured = (capture_http(step, &a), capture_http(step, &b));
            (mismatches, expectation, answers, captured)
        }
        Action::Cli(c) => {
            let (a, b) = tokio::join!(
                cli::run(
                    &ctx.bao,
                    &openbao.home,
                    &openbao.server.addr,
                    c,
                    &openbao.vars
                ),
                cli::run(
                    tresor_cli(&ctx.bao, scenario_def.client),
                    &tresor.home,
                    &tresor.server.addr,
                    c,
                    &tresor.vars
                ),
            );
            let (a, b) = (a?, b?);
            let expectation = expectation("exit code", step.expect, a.exit, b.exit);
            let (na, nb) = (
                normalise_cli(ctx, &a, &request, &openbao.vars),
                normalise_cli(ctx, &b, &request, &tresor.vars),
            );
            let mismatches = compare::cli(&na, &nb, step.compare);
            let answers = (report::cli_answer(&na), report::cli_answer(&nb));
            let captured = (capture_cli(step, &a), capture_cli(step, &b));
            (mismatches, expectation, answers, captured)
        }
    };
    let mismatches = ctx
        .differences
        .filter(scenario, step.number, &request, mismatches);
    if ctx.verbose {
        super::say(&report::step_failure(
            scenario,
            step.number,
            &step.describe(),
            &step.note,
            &mismatches,
            &answers.0,
            &answers.1,
        ));
    }
    let failure = if mismatches.is_empty() && expectation.is_none() {
        None
    } else {
        let mut text = report::step_failure(
            scenario,
            step.number,
            &step.describe(),
            &step.note,
            &mismatches,
            &answers.0,
            &answers.1,
        );
        if let Some(e) = expectation {
            text.insert_str(0, &format!("{e}\n"));
        }
        Some(text)
    };
    match captured {
        (Ok(a), Ok(b)) => {
            openbao.vars.extend(a);
            tresor.vars.extend(b);
            Ok(failure)
        }
        (Err(e), _) => Err(format!(
            "capture from OpenBao failed: {e}\n{}",
            failure.unwrap_or_default()
        )),
        (_, Err(e)) => Err(format!(
            "capture from Tresor failed: {e}\n{}",
            failure.unwrap_or_default()
        )),
    }
}

/// The CLI run against Tresor: `bao`, or Tresor's own for `"client": "own"` scenarios.
fn tresor_cli(bao: &std::path::Path, client: ClientKind) -> &std::path::Path {
    match client {
        ClientKind::Bao => bao,
        ClientKind::Own => std::path::Path::new(env!("CARGO_BIN_EXE_tresor")),
    }
}

/// Both servers must give the expected status / exit code when the step names one.
fn expectation(what: &str, expected: Option<i64>, openbao: i64, tresor: i64) -> Option<String> {
    let expected = expected?;
    (openbao != expected || tresor != expected).then(|| {
        format!("expected {what} {expected}: OpenBao gave {openbao}, Tresor gave {tresor}")
    })
}

fn normalise_http(ctx: &Context, outcome: &HttpOutcome, request: &str, vars: &Vars) -> HttpOutcome {
    let mut out = outcome.clone();
    if let HttpOutcome::Answered { body, .. } = &mut out {
        match body {
            Body::Json(v) => ctx.normaliser.json(v, request, vars),
            Body::Text(t) => *t = ctx.normaliser.text(t, request, vars),
            Body::Empty => {}
        }
    }
    out
}

fn normalise_cli(ctx: &Context, outcome: &CliOutcome, request: &str, vars: &Vars) -> CliOutcome {
    let stdout = match compare::as_json(&outcome.stdout) {
        Some(mut v) => {
            ctx.normaliser.json(&mut v, request, vars);
            serde_json::to_string_pretty(&v).unwrap_or_default()
        }
        None => ctx.normaliser.text(&outcome.stdout, request, vars),
    };
    CliOutcome {
        exit: outcome.exit,
        stdout,
        stderr: ctx.normaliser.text(&outcome.stderr, request, vars),
    }
}

/// Captures read the raw (not normalised) answer: they feed later requests.
fn capture_http(step: &Step, outcome: &HttpOutcome) -> Result<Vars, String> {
    if step.capture.is_empty() {
        return Ok(Vars::new());
    }
    match outcome {
        HttpOutcome::Answered {
            body: Body::Json(v),
            ..
        } => capture_json(step, v),
        other => Err(format!(
            "the answer has no JSON body: {}",
            report::http_answer(other)
        )),
    }
}

fn capture_cli(step: &Step, outcome: &CliOutcome) -> Result<Vars, String> {
    let mut vars = Vars::new();
    if !step.capture.is_empty() {
        let json = compare::as_json(&outcome.stdout)
            .ok_or_else(|| format!("stdout is not JSON:\n{}", outcome.stdout))?;
        vars = capture_json(step, &json)?;
    }
    for (var, label) in &step.capture_label {
        let value = outcome
            .stdout
            .lines()
            .find_map(|line| match table_line(line) {
                Some((l, at)) if l == label => Some(line[at..].trim_end().to_owned()),
                _ => None,
            })
            .ok_or_else(|| format!("no line labelled {label:?} in stdout:\n{}", outcome.stdout))?;
        vars.insert(var.clone(), value);
    }
    Ok(vars)
}

fn capture_json(step: &Step, json: &Value) -> Result<Vars, String> {
    let mut vars = Vars::new();
    for (var, path) in &step.capture {
        let value = Pattern::parse(path)?
            .get(json)
            .ok_or_else(|| format!("nothing at {path} for {{{{{var}}}}}"))?;
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        vars.insert(var.clone(), text);
    }
    Ok(vars)
}
