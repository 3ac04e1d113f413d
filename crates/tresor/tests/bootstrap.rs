//! `tresor bootstrap run` and `doctor` through the real binary, against a real `tresor` dev server
//! (the target) and, for the `vault` source, the real OpenBao: every rule of issue 16 §1 —
//! sanitised names, prefixes, fixtures, ownership records, foreign values and the CAS race,
//! `required`, idempotence, dry runs, output formats and exit codes — plus that no value ever
//! reaches stdout or stderr, and that the example CronJob lints clean.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod common;

/// OpenBao for the `vault` source is started as the differential suite starts it
/// (`compat/process.rs`). That module names the server kind through `super::model`, the
/// scenario model, which this test does not need: this is the same two-variant enum.
mod model {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[allow(dead_code, reason = "only the dev server is used here")]
    pub enum ServerKind {
        Dev,
        Fresh,
    }
}
#[path = "compat/process.rs"]
#[allow(dead_code, reason = "only the dev OpenBao server is used here")]
mod process;

use std::path::Path;
use std::process::{Command, Output};

use common::{BIN, Server, raw};
use serde_json::{Value, json};

/// The dev server's root token: distinctive, so the leak test can look for it too.
const ROOT: &str = "root-token-marker-7c1e";

fn start() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    (dir, server)
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// Runs `tresor bootstrap <args>` in `dir` with VAULT_ADDR/VAULT_TOKEN for `server` and
/// `env` on top; nothing else of the Vault environment is inherited.
fn bootstrap_env(dir: &Path, server: &Server, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .arg("bootstrap")
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env_remove("TRESOR_ADDR")
        .env_remove("TRESOR_TOKEN")
        .env_remove("BAO_ADDR")
        .env_remove("BAO_TOKEN")
        .env_remove("VAULT_CACERT")
        .env("VAULT_ADDR", &server.addr)
        .env("VAULT_TOKEN", ROOT)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn bootstrap(dir: &Path, server: &Server, args: &[&str]) -> Output {
    bootstrap_env(dir, server, args, &[])
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `run --format json`, insisting on `code`; the parsed report.
fn run_json(dir: &Path, server: &Server, extra: &[&str], code: i32) -> Value {
    let mut args = vec!["run", "--config", "bootstrap.yaml", "--format", "json"];
    args.extend_from_slice(extra);
    let o = bootstrap(dir, server, &args);
    assert_eq!(o.status.code(), Some(code), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
}

/// name → action of a report.
fn actions(report: &Value) -> Vec<(String, String)> {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_owned(),
                i["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// The `value` field of `secret/<path>` (None when absent) and its current version.
async fn value(server: &Server, path: &str) -> Option<(String, u64)> {
    let (status, body) = raw(
        server,
        "GET",
        &format!("secret/data/{path}"),
        Some(ROOT),
        None,
    )
    .await;
    if status == 404 {
        return None;
    }
    assert_eq!(status, 200, "{body}");
    Some((
        body["data"]["data"]["value"].as_str().unwrap().to_owned(),
        body["data"]["metadata"]["version"].as_u64().unwrap(),
    ))
}

/// `custom_metadata` of `secret/<path>`.
async fn custom_metadata(server: &Server, path: &str) -> Value {
    let (status, body) = raw(
        server,
        "GET",
        &format!("secret/metadata/{path}"),
        Some(ROOT),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["custom_metadata"].clone()
}

/// Someone else's write (no ownership record).
async fn put(server: &Server, path: &str, v: &str) {
    let (status, body) = raw(
        server,
        "POST",
        &format!("secret/data/{path}"),
        Some(ROOT),
        Some(json!({ "data": { "value": v } })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

const PLAIN_CONFIG: &str =
    "target: {path_prefix: \"\"}\nsources:\n  - dotenv: {files: [.env, .env.local]}\n";

#[tokio::test]
async fn dotenv_keys_are_imported_sanitised_with_a_record_and_a_second_run_writes_nothing() {
    let (dir, server) = start();
    let d = dir.path();
    write(
        d,
        ".env",
        "# registry\nGHCR_TOKEN=tok-first\nexport GHCR_USERNAME='octo cat'\r\nAPP.DB_URL=\"line1\\nline2\" # comment\nEMPTY=\n",
    );
    write(d, ".env.local", "GHCR_TOKEN=tok-local-wins\n");
    write(
        d,
        "bootstrap.yaml",
        &format!("{PLAIN_CONFIG}required: [ghcr-token, ghcr-username]\n"),
    );

    let first = bootstrap(d, &server, &["run", "--config", "bootstrap.yaml"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let out = stdout(&first);
    assert!(out.contains("ghcr-token"), "{out}");
    assert!(out.contains(".env.local:1 (GHCR_TOKEN)"), "{out}");
    assert!(out.contains("  created          4\n"), "{out}");
    // stderr is a pipe here: no progress line.
    assert!(!stderr(&first).contains("bootstrap:"), "{}", text(&first));
    assert!(!stderr(&first).contains('\r'), "{}", text(&first));

    assert_eq!(
        value(&server, "ghcr-token").await,
        Some(("tok-local-wins".into(), 1))
    );
    assert_eq!(
        value(&server, "ghcr-username").await,
        Some(("octo cat".into(), 1))
    );
    assert_eq!(
        value(&server, "app-db-url").await,
        Some(("line1\nline2".into(), 1))
    );
    assert_eq!(value(&server, "empty").await, Some((String::new(), 1)));
    let meta = custom_metadata(&server, "ghcr-token").await;
    assert_eq!(meta["tresor-bootstrap-version"], "1");
    assert_eq!(meta["tresor-bootstrap-origin"], "source");

    let second = run_json(d, &server, &[], 0);
    assert_eq!(
        actions(&second),
        pairs(&[
            ("app-db-url", "unchanged"),
            ("empty", "unchanged"),
            ("ghcr-token", "unchanged"),
            ("ghcr-username", "unchanged")
        ])
    );
    assert_eq!(second["summary"]["unchanged"], 4);
    assert_eq!(second["summary"]["created"], 0);
    for name in ["ghcr-token", "ghcr-username", "app-db-url", "empty"] {
        assert_eq!(
            value(&server, name).await.unwrap().1,
            1,
            "{name} got a new version"
        );
    }
}

#[tokio::test]
async fn an_absent_path_prefix_takes_the_default_and_an_explicit_empty_one_means_none() {
    let (dir, server) = start();
    let d = dir.path();
    write(d, ".env", "A_KEY=a\n");
    write(
        d,
        "bootstrap.yaml",
        "sources:\n  - dotenv: {files: [.env]}\n",
    );
    let report = run_json(d, &server, &[], 0);
    assert_eq!(report["items"][0]["path"], "secret/bootstrap/a-key");
    assert_eq!(
        value(&server, "bootstrap/a-key").await,
        Some(("a".into(), 1))
    );

    write(
        d,
        "bootstrap.yaml",
        "target:\n  path_prefix: \"\"\nsources:\n  - dotenv: {files: [.env]}\n",
    );
    let report = run_json(d, &server, &[], 0);
    assert_eq!(report["items"][0]["path"], "secret/a-key");
    assert_eq!(report["target"]["path_prefix"], "");
    assert_eq!(value(&server, "a-key").await, Some(("a".into(), 1)));

    write(
        d,
        "bootstrap.yaml",
        "target:\n  path_prefix:\nsources:\n  - dotenv: {files: [.env]}\n",
    );
    let o = bootstrap(d, &server, &["run", "--config", "bootstrap.yaml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(stderr(&o).contains("cannot be null"), "{}", text(&o));
}

#[tokio::test]
async fn fixtures_fill_only_empty_keys_and_real_values_replace_them_and_propagate_rotations() {
    let (dir, server) = start();
    let d = dir.path();
    put(&server, "taken", "someone-elses").await;
    write(d, ".env", "");
    write(
        d,
        "bootstrap.yaml",
        "target: {path_prefix: \"\"}\nsources:\n  - dotenv: {files: [.env]}\nfixtures:\n  new-one: placeholder-new\n  taken: placeholder-taken\n",
    );
    let first = run_json(d, &server, &[], 0);
    assert_eq!(
        actions(&first),
        pairs(&[("new-one", "fixture"), ("taken", "unchanged")])
    );
    assert_eq!(first["items"][0]["origin"], "fixture");
    assert_eq!(
        value(&server, "new-one").await,
        Some(("placeholder-new".into(), 1))
    );
    assert_eq!(
        value(&server, "taken").await,
        Some(("someone-elses".into(), 1))
    );
    assert_eq!(
        custom_metadata(&server, "new-one").await["tresor-bootstrap-origin"],
        "fixture"
    );

    // Still no real value: the fixture stays, nothing is written.
    let again = run_json(d, &server, &[], 0);
    assert_eq!(
        actions(&again),
        pairs(&[("new-one", "missing"), ("taken", "unchanged")])
    );
    assert_eq!(again["summary"]["missing"], 1);
    assert_eq!(value(&server, "new-one").await.unwrap().1, 1);

    // A real value replaces the fixture.
    write(d, ".env", "NEW_ONE=real-1\n");
    let real = run_json(d, &server, &[], 0);
    assert_eq!(actions(&real)[0], ("new-one".into(), "updated".into()));
    assert_eq!(value(&server, "new-one").await, Some(("real-1".into(), 2)));
    let meta = custom_metadata(&server, "new-one").await;
    assert_eq!(meta["tresor-bootstrap-version"], "2");
    assert_eq!(meta["tresor-bootstrap-origin"], "source");

    // A rotation at the source propagates to the importer's own value.
    write(d, ".env", "NEW_ONE=real-2\n");
    let rotated = run_json(d, &server, &[], 0);
    assert_eq!(actions(&rotated)[0], ("new-one".into(), "updated".into()));
    assert_eq!(value(&server, "new-one").await, Some(("real-2".into(), 3)));
}

#[tokio::test]
async fn a_foreign_value_is_never_overwritten_whether_unrecorded_or_newer_than_ours() {
    let (dir, server) = start();
    let d = dir.path();
    put(&server, "theirs", "their-value").await;
    write(d, ".env", "THEIRS=our-value\nOURS=ours-1\n");
    write(
        d,
        "bootstrap.yaml",
        PLAIN_CONFIG.replace(", .env.local", "").as_str(),
    );
    let first = run_json(d, &server, &[], 0);
    assert_eq!(
        actions(&first),
        pairs(&[("ours", "created"), ("theirs", "skipped-foreign")])
    );
    assert!(
        first["items"][1]["note"]
            .as_str()
            .unwrap()
            .contains("no tresor-bootstrap record"),
        "{first}"
    );
    assert_eq!(
        value(&server, "theirs").await,
        Some(("their-value".into(), 1))
    );

    // Someone writes over our value: version 2 is newer than our recorded 1.
    put(&server, "ours", "edited-by-hand").await;
    write(d, ".env", "THEIRS=our-value\nOURS=ours-2\n");
    let second = run_json(d, &server, &[], 0);
    assert_eq!(
        actions(&second),
        pairs(&[("ours", "skipped-foreign"), ("theirs", "skipped-foreign")])
    );
    assert!(
        second["items"][0]["note"]
            .as_str()
            .unwrap()
            .contains("later version"),
        "{second}"
    );
    assert_eq!(
        value(&server, "ours").await,
        Some(("edited-by-hand".into(), 2))
    );
    assert_eq!(second["summary"]["skipped_foreign"], 2);
}

#[tokio::test]
async fn a_write_between_our_read_and_our_cas_write_wins_and_is_reported_skipped_foreign() {
    let (dir, server) = start();
    let d = dir.path();
    write(d, ".env", "RACE_UPDATE=ours-1\n");
    write(
        d,
        "bootstrap.yaml",
        PLAIN_CONFIG.replace(", .env.local", "").as_str(),
    );
    run_json(d, &server, &[], 0);
    assert_eq!(
        value(&server, "race-update").await,
        Some(("ours-1".into(), 1))
    );

    // The failpoint runs between the importer's read and its CAS write: a real concurrent
    // writer (the tresor CLI) gets in first, on both an existing key and a new one.
    write(
        d,
        ".env",
        "RACE_UPDATE=ours-2\nRACE_CREATE=ours-new\nCALM=calm\n",
    );
    let writer = format!(
        "case \"$TRESOR_BOOTSTRAP_KEY\" in race-*) \"{BIN}\" kv put \"secret/$TRESOR_BOOTSTRAP_KEY\" value=concurrent-writer >/dev/null 2>&1;; esac"
    );
    let o = bootstrap_env(
        d,
        &server,
        &["run", "--config", "bootstrap.yaml", "--format", "json"],
        &[("TRESOR_FAILPOINT_BOOTSTRAP_BEFORE_WRITE", &writer)],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        actions(&report),
        pairs(&[
            ("calm", "created"),
            ("race-create", "skipped-foreign"),
            ("race-update", "skipped-foreign")
        ])
    );
    assert!(
        report["items"][1]["note"]
            .as_str()
            .unwrap()
            .contains("during this run"),
        "{report}"
    );
    assert_eq!(
        value(&server, "race-create").await,
        Some(("concurrent-writer".into(), 1))
    );
    assert_eq!(
        value(&server, "race-update").await,
        Some(("concurrent-writer".into(), 2))
    );
    // Our record still names version 1: version 2 is theirs from now on.
    assert_eq!(
        custom_metadata(&server, "race-update").await["tresor-bootstrap-version"],
        "1"
    );
    assert!(
        custom_metadata(&server, "race-create")
            .await
            .get("tresor-bootstrap-version")
            .is_none_or(Value::is_null)
    );
}

#[tokio::test]
async fn unmet_required_names_exit_1_before_anything_is_written_listing_them() {
    let (dir, server) = start();
    let d = dir.path();
    write(
        d,
        ".env",
        "OTHER=would-be-written\nGHCR_TOKEN=placeholder-ghcr-token\n",
    );
    write(
        d,
        "bootstrap.yaml",
        "target: {path_prefix: \"\"}\nsources:\n  - dotenv: {files: [.env]}\nfixtures: {ghcr-token: placeholder-ghcr-token, free: placeholder-free}\nrequired: [ghcr-token, ghcr-username, other]\n",
    );
    let o = bootstrap(d, &server, &["run", "--config", "bootstrap.yaml"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stderr(&o).contains("required secrets missing or still equal to their fixture: ghcr-token, ghcr-username; nothing was written"),
        "{}",
        text(&o)
    );
    let report = run_json(d, &server, &[], 1);
    assert_eq!(
        report["unmet_required"],
        json!(["ghcr-token", "ghcr-username"])
    );
    assert_eq!(report["exit_code"], 1);
    for name in ["other", "free", "ghcr-token"] {
        assert_eq!(value(&server, name).await, None, "{name} was written");
    }
    // Also in a dry run: the rule is checked before any plan.
    let o = bootstrap(
        d,
        &server,
        &["run", "--config", "bootstrap.yaml", "--dry-run"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

#[tokio::test]
async fn a_dry_run_prints_names_and_actions_and_writes_nothing() {
    let (dir, server) = start();
    let d = dir.path();
    put(&server, "foreign", "x").await;
    write(d, ".env", "NEW_KEY=dry-value-1\nFOREIGN=dry-value-2\n");
    write(
        d,
        "bootstrap.yaml",
        "target: {path_prefix: \"\"}\nsources:\n  - dotenv: {files: [.env]}\nfixtures: {fix: dry-fixture}\n",
    );
    let o = bootstrap(
        d,
        &server,
        &["run", "--config", "bootstrap.yaml", "--dry-run"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("Plan (dry run: nothing was written)"),
        "{out}"
    );
    for line in [
        "new-key  created",
        "foreign  skipped-foreign",
        "fix      fixture",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
    assert!(
        !out.contains("dry-value") && !out.contains("dry-fixture"),
        "{out}"
    );
    let report = run_json(d, &server, &["--dry-run"], 0);
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["summary"]["created"], 1);
    assert_eq!(value(&server, "new-key").await, None);
    assert_eq!(value(&server, "fix").await, None);
    assert_eq!(value(&server, "foreign").await, Some(("x".into(), 1)));
}

#[tokio::test]
async fn collisions_and_malformed_lines_fail_the_run_with_the_originals_or_the_line() {
    let (dir, server) = start();
    let d = dir.path();
    write(d, ".env", "GHCR_TOKEN=a\n");
    write(d, ".env.local", "OK=1\nghcr.token=b\n");
    write(d, "bootstrap.yaml", PLAIN_CONFIG);
    let o = bootstrap(d, &server, &["run", "--config", "bootstrap.yaml"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stderr(&o).contains(
            ".env:1 (GHCR_TOKEN) and .env.local:2 (ghcr.token) both become the name \"ghcr-token\""
        ),
        "{}",
        text(&o)
    );
    write(d, ".env.local", "OK=1\nBAD=\"unterminated\n");
    let o = bootstrap(d, &server, &["run", "--config", "bootstrap.yaml"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stderr(&o).contains(".env.local:2: a double-quoted value is never closed"),
        "{}",
        text(&o)
    );
    assert_eq!(value(&server, "ok").await, None);
}

#[tokio::test]
async fn config_and_usage_errors_exit_2() {
    let (dir, server) = start();
    let d = dir.path();
    write(d, ".env", "A=1\n");
    let cases: &[(&str, &str)] = &[
        (
            "target:\n  mount: secret\n  pathprefix: x\n",
            "bootstrap.yaml: unknown field `pathprefix`, expected one of address, token, mount, path_prefix, ca_cert at line 3, column 3",
        ),
        (
            "sources:\n  - dotenv: {files: [.env]}\n  - azure_keyvault: {vault_url: \"https://kv.vault.azure.net/\", secret_prefix: \"\"}\n",
            "sources[1]: the azure_keyvault source is not available yet",
        ),
        (
            "sources:\n  - vault: {address: \"http://127.0.0.1:1\", token_env: TRESOR_TEST_UNSET_TOKEN}\n",
            "the token variable TRESOR_TEST_UNSET_TOKEN is not set",
        ),
    ];
    for (config, expected) in cases {
        write(d, "bootstrap.yaml", config);
        let o = bootstrap(d, &server, &["run", "--config", "bootstrap.yaml"]);
        assert_eq!(o.status.code(), Some(2), "{config}: {}", text(&o));
        assert!(stderr(&o).contains(expected), "{expected}: {}", text(&o));
    }
    let o = bootstrap(d, &server, &["run"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = bootstrap(d, &server, &["run", "--config", "missing.yaml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(value(&server, "bootstrap/a").await, None);
}

/// Writes `{"value": v}` (and `extra` fields) at `secret/<path>` of OpenBao.
async fn bao_put(addr: &str, path: &str, data: Value) {
    let resp = common::http()
        .post(format!("{addr}/v1/secret/data/{path}"))
        .header("X-Vault-Token", "root")
        .json(&json!({ "data": data }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
}

fn start_openbao(dir: &Path) -> process::ServerProcess {
    use process::{Flavor, bao_binary, start};
    let bao = bao_binary().unwrap_or_else(|e| panic!("{e}"));
    start(Flavor::OpenBao, model::ServerKind::Dev, &bao, dir, "", "")
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn the_vault_source_imports_a_kv_v2_tree_from_openbao_and_a_later_source_wins() {
    let (dir, server) = start();
    let d = dir.path();
    let bao_dir = tempfile::tempdir().unwrap();
    let bao = start_openbao(bao_dir.path());
    bao_put(
        &bao.addr,
        "apps/ghcr-token",
        json!({"value": "from-openbao"}),
    )
    .await;
    bao_put(
        &bao.addr,
        "apps/team/db",
        json!({"value": "db-value", "user": "u", "port": 5432}),
    )
    .await;
    bao_put(&bao.addr, "apps/no-value", json!({"password": "p"})).await;
    bao_put(&bao.addr, "elsewhere/z", json!({"value": "not-imported"})).await;
    write(d, ".env", "GHCR_TOKEN=from-dotenv\nONLY_DOTENV=d\n");
    write(
        d,
        "bootstrap.yaml",
        &format!(
            "target: {{path_prefix: \"imported/\"}}\nsources:\n  - dotenv: {{files: [.env]}}\n  - vault: {{address: \"{}\", token_env: SRC_TOKEN, mount: secret, path: apps/}}\n",
            bao.addr
        ),
    );
    let o = bootstrap_env(
        d,
        &server,
        &["run", "--config", "bootstrap.yaml", "--format", "json"],
        &[("SRC_TOKEN", "root")],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\nopenbao log:\n{}",
        text(&o),
        bao.log_tail()
    );
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        actions(&report),
        pairs(&[
            ("ghcr-token", "created"),
            ("only-dotenv", "created"),
            ("team/db", "created")
        ])
    );
    assert_eq!(
        report["items"][0]["origin"],
        format!("vault {}/secret/apps/ghcr-token", bao.addr)
    );
    assert_eq!(
        value(&server, "imported/ghcr-token").await,
        Some(("from-openbao".into(), 1))
    );
    assert_eq!(
        value(&server, "imported/team/db").await,
        Some(("db-value".into(), 1))
    );
    assert_eq!(value(&server, "imported/z").await, None);
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("apps/team/db: imported `value`; other fields ignored: port, user"),
        "{warnings}"
    );
    assert!(
        warnings.contains("apps/no-value: skipped: no string field `value` (fields: password)"),
        "{warnings}"
    );
    assert!(stderr(&o).contains("warning: "), "{}", text(&o));

    // A wrong source token fails the run (exit 1) before anything is written.
    write(d, ".env", "FRESH=1\n");
    let o = bootstrap_env(
        d,
        &server,
        &["run", "--config", "bootstrap.yaml"],
        &[("SRC_TOKEN", "wrong")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("HTTP 403"), "{}", text(&o));
    assert_eq!(value(&server, "imported/fresh").await, None);
}

#[tokio::test]
async fn doctor_checks_the_target_and_names_the_fix() {
    let (dir, server) = start();
    let d = dir.path();
    write(d, "bootstrap.yaml", "target: {path_prefix: apps/}\n");
    let o = bootstrap(d, &server, &["doctor", "--config", "bootstrap.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = stdout(&o);
    for check in [
        "reachable",
        "unsealed",
        "token",
        "kv-v2-mount",
        "capabilities",
    ] {
        assert!(out.contains(&format!("ok      {check}")), "{check}: {out}");
    }
    assert!(out.contains("skipped azure-credentials"), "{out}");
    assert!(out.contains("not available yet"), "{out}");

    // A token whose policy only reads: capabilities fail, with the policy to grant.
    let (s, b) = raw(
        &server,
        "PUT",
        "sys/policies/acl/reader",
        Some(ROOT),
        Some(json!({"policy": "path \"secret/*\" { capabilities = [\"read\"] }\npath \"sys/internal/ui/mounts/*\" { capabilities = [\"read\"] }"})),
    )
    .await;
    assert!(s == 204 || s == 200, "{b}");
    let (_, created) = raw(
        &server,
        "POST",
        "auth/token/create",
        Some(ROOT),
        Some(json!({"policies": ["reader"]})),
    )
    .await;
    let reader = created["auth"]["client_token"].as_str().unwrap().to_owned();
    let o = bootstrap_env(
        d,
        &server,
        &["doctor", "--config", "bootstrap.yaml", "--format", "json"],
        &[("VAULT_TOKEN", &reader)],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let caps = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "capabilities")
        .unwrap();
    assert_eq!(caps["verdict"], "failed", "{report}");
    assert!(
        caps["detail"]
            .as_str()
            .unwrap()
            .contains("create on secret/data/apps/"),
        "{report}"
    );
    assert!(
        caps["fix"]
            .as_str()
            .unwrap()
            .contains("path \"secret/data/apps/*\""),
        "{report}"
    );

    // A KV v1 mount, a bad token, an unreachable server.
    raw(
        &server,
        "POST",
        "sys/mounts/old",
        Some(ROOT),
        Some(json!({"type": "kv", "options": {"version": "1"}})),
    )
    .await;
    write(d, "v1.yaml", "target: {mount: old}\n");
    let o = bootstrap(d, &server, &["doctor", "--config", "v1.yaml"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stdout(&o).contains("FAILED  kv-v2-mount        old/ is a kv mount (version 1), not KV v2"),
        "{}",
        text(&o)
    );
    let o = bootstrap_env(
        d,
        &server,
        &["doctor", "--config", "bootstrap.yaml"],
        &[("VAULT_TOKEN", "not-a-token")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stdout(&o).contains("FAILED  token"), "{}", text(&o));
    let o = bootstrap_env(
        d,
        &server,
        &["doctor", "--config", "bootstrap.yaml"],
        &[("VAULT_ADDR", "http://127.0.0.1:1")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stdout(&o).contains("FAILED  reachable"), "{}", text(&o));
}

#[tokio::test]
async fn no_value_or_token_ever_appears_in_stdout_stderr_or_errors() {
    let (dir, server) = start();
    let d = dir.path();
    let bao_dir = tempfile::tempdir().unwrap();
    let bao = start_openbao(bao_dir.path());
    bao_put(
        &bao.addr,
        "src/one",
        json!({"value": "MARKER-bao-value-1", "other": "MARKER-bao-other"}),
    )
    .await;
    bao_put(
        &bao.addr,
        "src/nov",
        json!({"password": "MARKER-bao-novalue"}),
    )
    .await;
    put(&server, "foreign", "MARKER-foreign-existing").await;
    write(
        d,
        ".env",
        "PLAIN=MARKER-dotenv-1\nFOREIGN=MARKER-dotenv-foreign\nQUOTED=\"MARKER-dotenv-2\"\n",
    );
    let config = format!(
        "target: {{path_prefix: \"\"}}\nsources:\n  - dotenv: {{files: [.env]}}\n  - vault: {{address: \"{}\", token_env: SRC_TOKEN, path: src/}}\nfixtures: {{fix: MARKER-fixture-1, plain: MARKER-fixture-2}}\nrequired: [plain]\n",
        bao.addr
    );
    write(d, "bootstrap.yaml", &config);
    let env = [("SRC_TOKEN", "root")];
    let mut outputs = Vec::new();
    let mut go = |args: &[&str], expect: i32| {
        let o = bootstrap_env(d, &server, args, &env);
        assert_eq!(o.status.code(), Some(expect), "{args:?}: {}", text(&o));
        outputs.push(text(&o));
    };
    go(&["run", "--config", "bootstrap.yaml", "--dry-run"], 0);
    go(&["run", "--config", "bootstrap.yaml"], 0);
    go(
        &["run", "--config", "bootstrap.yaml", "--format", "json"],
        0,
    );
    go(&["doctor", "--config", "bootstrap.yaml"], 0);
    // A rotation, then required failures (equal to the fixture; malformed; collision).
    write(d, ".env", "PLAIN=MARKER-dotenv-rotated\n");
    go(&["run", "--config", "bootstrap.yaml"], 0);
    write(d, ".env", "PLAIN=MARKER-fixture-2\n");
    go(
        &["run", "--config", "bootstrap.yaml", "--format", "json"],
        1,
    );
    write(d, ".env", "PLAIN='MARKER-dotenv-malformed' trailing\n");
    go(&["run", "--config", "bootstrap.yaml"], 1);
    write(d, ".env", "PLAIN=MARKER-dotenv-3\nplain=MARKER-dotenv-4\n");
    go(
        &["run", "--config", "bootstrap.yaml", "--format", "json"],
        1,
    );
    write(d, ".env", "MARKER-not-a-key\n");
    go(&["run", "--config", "bootstrap.yaml"], 1);
    // A config error on a line holding a fixture.
    write(
        d,
        "bootstrap.yaml",
        &format!("{config}fixtures2: {{x: MARKER-config}}\n"),
    );
    go(&["run", "--config", "bootstrap.yaml"], 2);
    write(
        d,
        "bootstrap.yaml",
        "target:\n  token: [\"MARKER-config-token\"]\n",
    );
    go(
        &["run", "--config", "bootstrap.yaml", "--format", "json"],
        2,
    );

    let all = outputs.join("\n");
    assert!(all.contains("plain"), "{all}");
    for marker in ["MARKER", ROOT] {
        assert!(!all.contains(marker), "{marker} leaked:\n{all}");
    }
    // The values did arrive.
    assert_eq!(
        value(&server, "one").await,
        Some(("MARKER-bao-value-1".into(), 1))
    );
    assert_eq!(
        value(&server, "plain").await,
        Some(("MARKER-dotenv-rotated".into(), 2))
    );
}

/// The example CronJob (Workload Identity wiring, ConfigMap with the config) stays clean
/// under `tresor lint`, and its embedded config is one `tresor bootstrap` accepts — today
/// refusing only its azure_keyvault source, which is not available yet.
#[tokio::test]
async fn the_example_cronjob_lints_clean_and_carries_a_valid_config() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tresor-bootstrap/deploy");
    let o = Command::new(BIN)
        .args(["lint", "--fail-on", "note", "--config"])
        .arg(deploy.join(".tresor-lint.yaml"))
        .arg(deploy.join("cronjob.yaml"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let manifest = std::fs::read_to_string(deploy.join("cronjob.yaml")).unwrap();
    assert!(
        manifest.contains("azure.workload.identity/client-id:"),
        "{manifest}"
    );
    assert!(
        manifest.contains("azure.workload.identity/use: \"true\""),
        "{manifest}"
    );
    // The ConfigMap's `bootstrap.yaml: |` block, dedented.
    let mut lines = manifest
        .lines()
        .skip_while(|l| l.trim() != "bootstrap.yaml: |");
    lines.next().unwrap();
    let config: String = lines
        .take_while(|l| l.starts_with("    ") || l.is_empty())
        .map(|l| format!("{}\n", l.get(4..).unwrap_or("")))
        .collect();
    assert!(config.contains("azure_keyvault"), "{config}");
    let (dir, server) = start();
    write(dir.path(), "bootstrap.yaml", &config);
    let o = bootstrap(
        dir.path(),
        &server,
        &["run", "--config", "bootstrap.yaml", "--dry-run"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        stderr(&o).contains("the azure_keyvault source is not available yet"),
        "{}",
        text(&o)
    );
}

/// On a terminal the run draws a progress line on stderr (and clears it); the other tests run
/// with stderr piped and check that nothing is drawn. Python's `pty.spawn` gives the run a
/// terminal and copies what it draws.
#[tokio::test]
async fn a_progress_line_is_drawn_only_on_a_terminal() {
    let (dir, server) = start();
    let d = dir.path();
    write(d, ".env", "A=1\nB=2\n");
    write(
        d,
        "bootstrap.yaml",
        PLAIN_CONFIG.replace(", .env.local", "").as_str(),
    );
    let o = Command::new("python3")
        .args([
            "-c",
            "import pty, sys; sys.exit(pty.spawn(sys.argv[1:]) >> 8)",
        ])
        .arg(BIN)
        .args(["bootstrap", "run", "--config", "bootstrap.yaml"])
        .current_dir(d)
        .env("HOME", d)
        .env("VAULT_ADDR", &server.addr)
        .env("VAULT_TOKEN", ROOT)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let drawn = stdout(&o);
    assert!(
        drawn.contains("\r\x1b[2Kbootstrap: reading dotenv .env"),
        "{drawn:?}"
    );
    assert!(
        drawn.contains("bootstrap: planning [------------------------------] 0/2"),
        "{drawn:?}"
    );
    assert!(
        drawn.contains("bootstrap: writing [------------------------------] 0/2"),
        "{drawn:?}"
    );
    assert!(drawn.contains("created          2"), "{drawn:?}");
    assert_eq!(value(&server, "a").await, Some(("1".into(), 1)));
}
