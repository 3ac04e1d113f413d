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

use crate::common;

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
#[path = "../compat/process.rs"]
#[allow(dead_code, reason = "only the dev OpenBao server is used here")]
mod process;

#[path = "../../../tresor-azure/tests/support/mod.rs"]
mod azure_support;

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
        .env_remove("AZURE_CLIENT_ID")
        .env_remove("AZURE_TENANT_ID")
        .env_remove("AZURE_CLIENT_SECRET")
        .env_remove("AZURE_FEDERATED_TOKEN_FILE")
        .env_remove("AZURE_AUTHORITY_HOST")
        .env_remove("AZURE_POD_IDENTITY_AUTHORITY_HOST")
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
            "sources:\n  - dotenv: {files: [.env]}\n  - azure_keyvault: {vault_url: \"https://kv.vault.azure.net/\", ca_file: missing-ca.pem}\n",
            "sources[1] (azure_keyvault): reading ca_file missing-ca.pem",
        ),
        (
            "sources:\n  - azure_keyvault: {vault_url: \"http://kv.vault.azure.net/\"}\n",
            "Key Vault is only reached over https",
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
    assert!(
        !out.contains("azure"),
        "no azure_keyvault source, no Azure report: {out}"
    );

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
/// under `tresor lint`, and its embedded config is one `tresor bootstrap` accepts: the run gets
/// as far as reading the (unreachable) example vault, a source failure.
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
    // No `az` on PATH, no managed identity endpoint: nothing outside the test is asked.
    let bin = dir.path().join("empty-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let imds = format!("http://127.0.0.1:{}", azure_support::closed_port());
    let o = bootstrap_env(
        dir.path(),
        &server,
        &["run", "--config", "bootstrap.yaml", "--dry-run"],
        &[
            ("PATH", bin.to_str().unwrap()),
            ("AZURE_POD_IDENTITY_AUTHORITY_HOST", &imds),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = stderr(&o);
    assert!(
        err.contains("source azure_keyvault https://example-kv.vault.azure.net/"),
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

// ---- the azure_keyvault source, against the FAKE Azure Key Vault + Entra ID ----

/// The environment of a run against the fake: the fake as authority host, no managed identity
/// endpoint (a closed port), no `az` on PATH; `extra` adds the credential's variables.
/// Everything else is cleared, so only what a test gives reaches the credential chain.
fn azure_env(dir: &Path, fake: &azure_support::FakeAzure) -> Vec<(String, String)> {
    let bin = dir.join("empty-bin");
    std::fs::create_dir_all(&bin).unwrap();
    vec![
        ("PATH".into(), bin.display().to_string()),
        ("AZURE_AUTHORITY_HOST".into(), fake.url.clone()),
        (
            "AZURE_POD_IDENTITY_AUTHORITY_HOST".into(),
            format!("http://127.0.0.1:{}", azure_support::closed_port()),
        ),
    ]
}

fn bootstrap_azure(
    dir: &Path,
    server: &Server,
    fake: &azure_support::FakeAzure,
    args: &[&str],
    extra: &[(&str, &str)],
) -> Output {
    Command::new(BIN)
        .arg("bootstrap")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("HOME", dir)
        .env("VAULT_ADDR", &server.addr)
        .env("VAULT_TOKEN", ROOT)
        .envs(azure_env(dir, fake))
        .envs(extra.iter().copied())
        .output()
        .unwrap()
}

/// The client-secret credential's variables (the Secrets Officer of the fake's tenant).
const CLIENT_SECRET_ENV: [(&str, &str); 3] = [
    ("AZURE_TENANT_ID", azure_support::TENANT),
    ("AZURE_CLIENT_ID", azure_support::OFFICER),
    ("AZURE_CLIENT_SECRET", azure_support::OFFICER_SECRET),
];

/// A Key Vault client of the fake as the Secrets Officer, to arrange secrets.
fn officer(fake: &azure_support::FakeAzure) -> tresor_azure::KeyVaultClient {
    let credential = tresor_azure::ClientSecretCredential::new(
        azure_support::TENANT,
        azure_support::OFFICER,
        tresor_sdk::secret::SecretString::new(azure_support::OFFICER_SECRET.to_owned()),
        &fake.credential_options(),
        &tresor_azure::Env::default(),
    )
    .unwrap();
    tresor_azure::KeyVaultClient::new(
        &fake.vault_url,
        std::sync::Arc::new(credential),
        fake.vault_options(),
    )
    .unwrap()
}

async fn kv_set(kv: &tresor_azure::KeyVaultClient, name: &str, value: &str) {
    kv.set_secret(
        name,
        &tresor_sdk::secret::SecretString::new(value.to_owned()),
        None,
    )
    .await
    .unwrap();
}

/// Sets a disabled secret: the Key Vault `PUT /secrets/{name}` with `attributes.enabled:
/// false` (the client's `set_secret` sends no attributes), with an Officer token.
async fn kv_set_disabled(fake: &azure_support::FakeAzure, name: &str, value: &str) {
    use tresor_azure::TokenCredential;
    let credential = tresor_azure::ClientSecretCredential::new(
        azure_support::TENANT,
        azure_support::OFFICER,
        tresor_sdk::secret::SecretString::new(azure_support::OFFICER_SECRET.to_owned()),
        &fake.credential_options(),
        &tresor_azure::Env::default(),
    )
    .unwrap();
    let token = credential
        .get_token(
            "https://vault.azure.net/.default",
            Some(azure_support::TENANT),
        )
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(fake.ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let resp = http
        .put(format!("{}secrets/{name}?api-version=7.4", fake.vault_url))
        .bearer_auth(token.token.expose())
        .json(&json!({"value": value, "attributes": {"enabled": false}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

fn azure_source(fake: &azure_support::FakeAzure, prefix: Option<&str>) -> String {
    let prefix = prefix
        .map(|p| format!(", secret_prefix: \"{p}\""))
        .unwrap_or_default();
    format!(
        "  - azure_keyvault: {{vault_url: \"{}\", ca_file: ca.pem, verify_challenge_resource: false{prefix}}}\n",
        fake.vault_url
    )
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

/// Paging (more secrets than one 25-secret page), the default `env-` prefix (other names
/// left out), a disabled secret skipped with the reason and never read, a later source
/// winning over `.env`, a rotation at Key Vault propagating on the next run, an explicit
/// `secret_prefix: ""` taking every name — with client-secret credentials — and no value,
/// client secret or token in any output.
#[tokio::test]
async fn the_azure_keyvault_source_pages_filters_by_prefix_skips_disabled_and_propagates_rotations()
{
    let (dir, server) = start();
    let d = dir.path();
    let fake = azure_support::FakeAzure::start(d);
    write(d, "ca.pem", &fake.ca_pem);
    let kv = officer(&fake);
    for i in 0..30 {
        kv_set(
            &kv,
            &format!("env-app-{i:02}"),
            &format!("MARKER-kv-{i:02}"),
        )
        .await;
    }
    kv_set(&kv, "env-shared", "MARKER-kv-shared").await;
    kv_set(&kv, "unrelated", "MARKER-kv-unrelated").await;
    kv_set_disabled(&fake, "env-disabled", "MARKER-kv-disabled").await;
    write(
        d,
        ".env",
        "SHARED=MARKER-dotenv-shared\nONLY_DOTENV=MARKER-dotenv-only\n",
    );
    let config = format!(
        "target: {{path_prefix: \"\"}}\nsources:\n  - dotenv: {{files: [.env]}}\n{}required: [app-00, shared]\n",
        azure_source(&fake, None)
    );
    write(d, "bootstrap.yaml", &config);
    fake.clear_requests().await;

    let mut outputs = Vec::new();
    let args = ["run", "--config", "bootstrap.yaml", "--format", "json"];
    let o = bootstrap_azure(d, &server, &fake, &args, &CLIENT_SECRET_ENV);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    outputs.push(text(&o));
    let report = json_of(&o);
    let mut expected: Vec<(String, String)> = (0..30)
        .map(|i| (format!("app-{i:02}"), "created".to_owned()))
        .collect();
    expected.push(("only-dotenv".into(), "created".into()));
    expected.push(("shared".into(), "created".into()));
    assert_eq!(actions(&report), expected);
    let shared = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "shared")
        .unwrap();
    assert!(
        shared["origin"]
            .as_str()
            .unwrap()
            .starts_with("azure_keyvault https://127.0.0.1:"),
        "{shared}"
    );
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("secret env-disabled is disabled") && warnings.contains("skipped"),
        "{warnings}"
    );
    assert_eq!(
        value(&server, "app-07").await,
        Some(("MARKER-kv-07".into(), 1))
    );
    assert_eq!(
        value(&server, "shared").await,
        Some(("MARKER-kv-shared".into(), 1)),
        "the later source (Key Vault) wins over .env"
    );
    assert_eq!(value(&server, "unrelated").await, None);
    assert_eq!(value(&server, "env-app-00").await, None);

    let requests = fake.requests().await;
    let kv_reqs: Vec<&Value> = requests
        .iter()
        .filter(|r| r["server"] == "keyvault" && r["status"] == 200)
        .collect();
    let pages = kv_reqs
        .iter()
        .filter(|r| r["method"] == "GET" && r["path"] == "/secrets")
        .count();
    assert!(pages >= 2, "34 secrets are two pages of 25: {kv_reqs:?}");
    assert!(
        !kv_reqs.iter().any(|r| r["path"] == "/secrets/env-disabled"),
        "a disabled secret is never read"
    );
    assert!(
        !kv_reqs.iter().any(|r| r["path"] == "/secrets/unrelated"),
        "a secret outside the prefix is never read"
    );

    // A rotation at Key Vault propagates; the rest is unchanged.
    kv_set(&kv, "env-app-03", "MARKER-kv-03-rotated").await;
    let o = bootstrap_azure(d, &server, &fake, &args, &CLIENT_SECRET_ENV);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    outputs.push(text(&o));
    let report = json_of(&o);
    assert_eq!(report["summary"]["updated"], 1, "{report}");
    assert_eq!(report["summary"]["unchanged"], 31, "{report}");
    assert_eq!(
        value(&server, "app-03").await,
        Some(("MARKER-kv-03-rotated".into(), 2))
    );

    // `secret_prefix: ""`: every enabled name, unchanged (a dry run).
    write(
        d,
        "bootstrap.yaml",
        &format!(
            "target: {{path_prefix: \"\"}}\nsources:\n{}",
            azure_source(&fake, Some(""))
        ),
    );
    let o = bootstrap_azure(
        d,
        &server,
        &fake,
        &[
            "run",
            "--config",
            "bootstrap.yaml",
            "--dry-run",
            "--format",
            "json",
        ],
        &CLIENT_SECRET_ENV,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    outputs.push(text(&o));
    let names: Vec<String> = actions(&json_of(&o)).into_iter().map(|(n, _)| n).collect();
    for n in [
        "env-app-00",
        "env-shared",
        "unrelated",
        "ghcr-token",
        "ghcr-username",
    ] {
        assert!(names.contains(&n.to_owned()), "{n}: {names:?}");
    }
    assert!(!names.contains(&"env-disabled".to_owned()), "{names:?}");
    let o = bootstrap_azure(
        d,
        &server,
        &fake,
        &["run", "--config", "bootstrap.yaml", "--dry-run"],
        &CLIENT_SECRET_ENV,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    outputs.push(text(&o));

    let all = outputs.join("\n");
    for marker in ["MARKER", azure_support::OFFICER_SECRET, ROOT] {
        assert!(!all.contains(marker), "{marker} leaked:\n{all}");
    }
}

/// Workload identity as the webhook wires it (client id, tenant, a projected federated
/// token file, the authority host): the run reads the vault through the client-assertion
/// exchange, and `doctor` reports the credential's token and the prerequisites as healthy.
#[tokio::test]
async fn workload_identity_through_a_federated_token_file_imports_and_doctor_is_healthy() {
    let (dir, server) = start();
    let d = dir.path();
    let fake = azure_support::FakeAzure::start(d);
    write(d, "ca.pem", &fake.ca_pem);
    let jwt = fake.federated_token(azure_support::SUBJECT).await;
    write(d, "azure-identity-token", &jwt);
    let token_file = d.join("azure-identity-token");
    let env = [
        ("AZURE_TENANT_ID", azure_support::TENANT),
        ("AZURE_CLIENT_ID", azure_support::FEDERATED),
        ("AZURE_FEDERATED_TOKEN_FILE", token_file.to_str().unwrap()),
    ];
    write(
        d,
        "bootstrap.yaml",
        &format!(
            "target: {{path_prefix: \"\"}}\nsources:\n{}required: [ghcr-token, ghcr-username]\n",
            azure_source(&fake, Some(""))
        ),
    );
    fake.clear_requests().await;
    let o = bootstrap_azure(
        d,
        &server,
        &fake,
        &["run", "--config", "bootstrap.yaml"],
        &env,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut all = text(&o);
    assert_eq!(
        value(&server, "ghcr-token").await,
        Some(("fake-ghcr-token-v2".into(), 1))
    );
    assert_eq!(
        value(&server, "ghcr-username").await,
        Some(("fake-ghcr-user".into(), 1))
    );
    let requests = fake.requests().await;
    let exchange = requests
        .iter()
        .find(|r| r["server"] == "entra" && r["status"] == 200)
        .unwrap_or_else(|| panic!("no token request: {requests:?}"));
    assert_eq!(
        exchange["client_id"],
        azure_support::FEDERATED,
        "{exchange}"
    );

    let o = bootstrap_azure(
        d,
        &server,
        &fake,
        &["doctor", "--config", "bootstrap.yaml"],
        &env,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = stdout(&o);
    assert!(out.contains("azure_keyvault https://127.0.0.1:"), "{out}");
    assert!(out.contains(": healthy"), "{out}");
    assert!(
        out.contains("ok    WorkloadIdentityCredential: gave a token"),
        "{out}"
    );
    assert!(out.contains("role-assignment"), "{out}");
    all.push_str(&text(&o));
    for secret in ["fake-ghcr-token", "fake-ghcr-user", jwt.as_str(), ROOT] {
        assert!(!all.contains(secret), "{secret} leaked:\n{all}");
    }
}

/// No credential: the run fails as a source failure (exit 1) whose message gives every
/// credential's reason, before anything is written; `doctor` says the same and prints the
/// workload identity fixes, exiting 1. A wrong client secret is a failure too, without the
/// secret in it.
#[tokio::test]
async fn a_credential_chain_failure_lists_every_reason_writes_nothing_and_doctor_shows_fixes() {
    let (dir, server) = start();
    let d = dir.path();
    let fake = azure_support::FakeAzure::start(d);
    write(d, "ca.pem", &fake.ca_pem);
    write(d, ".env", "PLAIN=MARKER-dotenv-plain\n");
    write(
        d,
        "bootstrap.yaml",
        &format!(
            "target: {{path_prefix: \"\"}}\nsources:\n  - dotenv: {{files: [.env]}}\n{}",
            azure_source(&fake, Some(""))
        ),
    );
    let o = bootstrap_azure(
        d,
        &server,
        &fake,
        &["run", "--config", "bootstrap.yaml"],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = stderr(&o);
    for credential in [
        "WorkloadIdentityCredential",
        "ClientSecretCredential",
        "ManagedIdentityCredential",
        "AzureCliCredential",
    ] {
        assert!(err.contains(credential), "{credential}: {}", text(&o));
    }
    assert!(err.contains("AZURE_FEDERATED_TOKEN_FILE"), "{}", text(&o));
    assert!(err.contains("source azure_keyvault"), "{}", text(&o));
    assert_eq!(value(&server, "plain").await, None, "nothing is written");
    let mut all = text(&o);

    let wrong = [
        ("AZURE_TENANT_ID", azure_support::TENANT),
        ("AZURE_CLIENT_ID", azure_support::OFFICER),
        ("AZURE_CLIENT_SECRET", "MARKER-wrong-client-secret"),
    ];
    let o = bootstrap_azure(
        d,
        &server,
        &fake,
        &["run", "--config", "bootstrap.yaml"],
        &wrong,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stderr(&o).contains("ClientSecretCredential"),
        "{}",
        text(&o)
    );
    assert_eq!(value(&server, "plain").await, None, "nothing is written");
    all.push_str(&text(&o));

    let o = bootstrap_azure(
        d,
        &server,
        &fake,
        &["doctor", "--config", "bootstrap.yaml"],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = stdout(&o);
    assert!(out.contains(": UNHEALTHY"), "{out}");
    assert!(
        out.contains("ok      token"),
        "the target checks still run: {out}"
    );
    assert!(out.contains("FAIL  wi.pod-label"), "{out}");
    assert!(
        out.contains("fix: label the pod template azure.workload.identity/use"),
        "{out}"
    );
    assert!(out.contains("wi.service-account-annotation"), "{out}");
    all.push_str(&text(&o));
    let o = bootstrap_azure(
        d,
        &server,
        &fake,
        &["doctor", "--config", "bootstrap.yaml", "--format", "json"],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let report = json_of(&o);
    assert_eq!(report["ok"], false);
    assert_eq!(report["azure"][0]["healthy"], false, "{report}");
    all.push_str(&text(&o));
    for marker in ["MARKER", ROOT] {
        assert!(!all.contains(marker), "{marker} leaked:\n{all}");
    }
}
