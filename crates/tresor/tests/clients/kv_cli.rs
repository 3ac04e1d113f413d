//! `tresor kv …` against a real dev server: get, put, patch, delete, undelete, destroy, list,
//! metadata get/put/delete, rollback and enable-versioning, with `-mount`, `-version`, `-cas`,
//! `-field` and `-format=json`; exit codes and output checked, results verified over HTTP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use std::process::{Command, Output};

use common::{BIN, Server};
use serde_json::{Value, json};

const ROOT: &str = "root";
const CAS_MISMATCH: &str = "check-and-set parameter did not match the current version";

fn start() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    (dir, server)
}

/// Runs `tresor kv <args>` with the Vault environment pointing at `server`.
fn kv(server: &Server, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("kv")
        .args(args)
        .env("HOME", common::scratch_home())
        .env_remove("TRESOR_ADDR")
        .env_remove("TRESOR_TOKEN")
        .env_remove("BAO_ADDR")
        .env_remove("BAO_TOKEN")
        .env("VAULT_ADDR", &server.addr)
        .env("VAULT_TOKEN", ROOT)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs the command and insists on exit 0, returning stdout.
fn ok(server: &Server, args: &[&str]) -> String {
    let o = kv(server, args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "kv {args:?}\nstdout:\n{}\nstderr:\n{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// Runs the command with `-format=json` and parses its stdout.
fn ok_json(server: &Server, args: &[&str]) -> Value {
    let mut with_format = vec!["-format=json"];
    with_format.extend_from_slice(args);
    let text = ok(server, &with_format);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// Whether a table has a row whose whitespace-separated cells are exactly `cells`.
fn has_row(table: &str, cells: &[&str]) -> bool {
    table
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == cells)
}

fn assert_row(table: &str, cells: &[&str]) {
    assert!(has_row(table, cells), "no row {cells:?} in:\n{table}");
}

/// A raw API request as root, for setting up and for checking what the CLI did.
fn api(server: &Server, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut req = common::http()
            .request(method.parse().unwrap(), server.url(path))
            .header("X-Vault-Token", ROOT);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, body)
    })
}

fn metadata(server: &Server, path: &str) -> Value {
    let (status, body) = api(server, "GET", &format!("secret/metadata/{path}"), None);
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

fn enable_kv1(server: &Server, mount: &str) {
    let (status, body) = api(
        server,
        "POST",
        &format!("sys/mounts/{mount}"),
        Some(json!({"type": "kv", "options": {"version": "1"}})),
    );
    assert_eq!(status, 204, "{body}");
}

#[test]
fn put_and_get_with_mount_version_field_and_json_output() {
    let (_dir, server) = start();
    let put = ok(&server, &["put", "secret/app/db", "user=alice", "pass=s1"]);
    assert!(put.contains("secret/data/app/db"), "{put}");
    assert_row(&put, &["version", "1"]);
    assert_row(&put, &["destroyed", "false"]);
    // -mount names the same secret.
    let put = ok(
        &server,
        &["put", "-mount=secret", "app/db", "user=alice", "pass=s2"],
    );
    assert_row(&put, &["version", "2"]);

    let get = ok(&server, &["get", "secret/app/db"]);
    assert_row(&get, &["pass", "s2"]);
    assert_row(&get, &["user", "alice"]);
    assert_row(&get, &["version", "2"]);
    let get = ok(&server, &["get", "-mount=secret", "app/db"]);
    assert_row(&get, &["pass", "s2"]);

    let json = ok_json(&server, &["get", "secret/app/db"]);
    assert_eq!(json["data"]["data"], json!({"user": "alice", "pass": "s2"}));
    assert_eq!(json["data"]["metadata"]["version"], 2);
    assert_eq!(json["data"]["metadata"]["deletion_time"], "");

    // -field prints the bare value; with -version, that version's.
    assert_eq!(
        ok(&server, &["get", "-field=pass", "secret/app/db"]).trim_end(),
        "s2"
    );
    assert_eq!(
        ok(
            &server,
            &[
                "get",
                "-version=1",
                "-field=pass",
                "-mount=secret",
                "app/db"
            ]
        )
        .trim_end(),
        "s1"
    );
    let table = ok(&server, &["get", "-version=1", "secret/app/db"]);
    assert_row(&table, &["pass", "s1"]);
    assert_row(&table, &["version", "1"]);
    let json = ok_json(&server, &["get", "-version=1", "secret/app/db"]);
    assert_eq!(json["data"]["data"]["pass"], "s1");

    // A missing field is an error naming it; a missing secret exits 2.
    let missing = kv(&server, &["get", "-field=nope", "secret/app/db"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("nope"), "{}", stderr(&missing));
    assert!(stdout(&missing).is_empty());
    let absent = kv(&server, &["get", "secret/app/none"]);
    assert_eq!(absent.status.code(), Some(2));
    assert!(
        stderr(&absent).contains("No value found at secret/data/app/none"),
        "{}",
        stderr(&absent)
    );
    let absent = kv(&server, &["get", "-version=9", "secret/app/db"]);
    assert_eq!(absent.status.code(), Some(2));

    // Values from files, with `key=@file`.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cert.pem");
    std::fs::write(&file, "-----BEGIN X-----\nabc\n").unwrap();
    ok(
        &server,
        &[
            "put",
            "secret/app/tls",
            &format!("cert=@{}", file.display()),
        ],
    );
    let (_, body) = api(&server, "GET", "secret/data/app/tls", None);
    assert_eq!(body["data"]["data"]["cert"], "-----BEGIN X-----\nabc\n");
}

#[test]
fn put_with_cas_succeeds_only_on_the_current_version() {
    let (_dir, server) = start();
    let first = ok(&server, &["put", "-cas=0", "secret/c", "v=1"]);
    assert_row(&first, &["version", "1"]);
    let conflict = kv(&server, &["put", "-cas=0", "secret/c", "v=x"]);
    assert_ne!(conflict.status.code(), Some(0));
    assert!(
        stderr(&conflict).contains(CAS_MISMATCH),
        "{}",
        stderr(&conflict)
    );
    let second = ok(&server, &["put", "-cas=1", "secret/c", "v=2"]);
    assert_row(&second, &["version", "2"]);
    let stale = kv(&server, &["put", "-cas=1", "secret/c", "v=x"]);
    assert_ne!(stale.status.code(), Some(0));
    assert!(stderr(&stale).contains(CAS_MISMATCH));
    assert_eq!(metadata(&server, "c")["current_version"], 2);
    assert_eq!(
        ok(&server, &["get", "-field=v", "secret/c"]).trim_end(),
        "2"
    );
}

#[test]
fn patch_merges_fields_into_a_new_version() {
    let (_dir, server) = start();
    ok(&server, &["put", "secret/p", "user=alice", "pass=s1"]);
    let patched = ok(&server, &["patch", "secret/p", "pass=s2", "extra=x"]);
    assert_row(&patched, &["version", "2"]);
    let (_, body) = api(&server, "GET", "secret/data/p", None);
    assert_eq!(
        body["data"]["data"],
        json!({"user": "alice", "pass": "s2", "extra": "x"})
    );
    let with_cas = ok(
        &server,
        &["patch", "-cas=2", "-mount=secret", "p", "more=y"],
    );
    assert_row(&with_cas, &["version", "3"]);
    let stale = kv(&server, &["patch", "-cas=1", "secret/p", "no=pe"]);
    assert_ne!(stale.status.code(), Some(0));
    assert!(stderr(&stale).contains(CAS_MISMATCH), "{}", stderr(&stale));
    let json = ok_json(&server, &["patch", "secret/p", "last=z"]);
    assert_eq!(json["data"]["version"], 4);
    // Patching nothing fails and creates nothing.
    let missing = kv(&server, &["patch", "secret/none", "a=b"]);
    assert_ne!(missing.status.code(), Some(0));
    assert_eq!(
        api(&server, "GET", "secret/metadata/none", None).0,
        404,
        "nothing created"
    );
    assert_eq!(metadata(&server, "p")["current_version"], 4);
}

#[test]
fn delete_undelete_and_destroy_versions() {
    let (_dir, server) = start();
    for v in ["s1", "s2", "s3"] {
        ok(&server, &["put", "secret/d", &format!("pass={v}")]);
    }
    // delete without -versions soft-deletes the latest.
    let deleted = ok(&server, &["delete", "secret/d"]);
    assert!(deleted.starts_with("Success! Data deleted"), "{deleted}");
    let meta = metadata(&server, "d");
    assert_ne!(meta["versions"]["3"]["deletion_time"], "");
    assert_eq!(meta["versions"]["2"]["deletion_time"], "");
    // Reading the deleted latest shows its metadata but no data.
    let latest = ok(&server, &["get", "secret/d"]);
    assert_row(&latest, &["version", "3"]);
    assert!(!latest.contains("s3"), "{latest}");
    let json = ok_json(&server, &["get", "secret/d"]);
    assert_eq!(json["data"]["data"], Value::Null);
    assert_ne!(json["data"]["metadata"]["deletion_time"], "");

    ok(&server, &["delete", "-versions=1,2", "secret/d"]);
    let meta = metadata(&server, "d");
    assert_ne!(meta["versions"]["1"]["deletion_time"], "");
    assert_ne!(meta["versions"]["2"]["deletion_time"], "");

    let undeleted = ok(&server, &["undelete", "-versions=1,3", "secret/d"]);
    assert!(undeleted.contains("Success!"), "{undeleted}");
    assert_eq!(
        ok(&server, &["get", "-version=1", "-field=pass", "secret/d"]).trim_end(),
        "s1"
    );
    assert_eq!(
        ok(&server, &["get", "-field=pass", "secret/d"]).trim_end(),
        "s3"
    );
    let meta = metadata(&server, "d");
    assert_ne!(meta["versions"]["2"]["deletion_time"], "", "still deleted");

    let destroyed = ok(&server, &["destroy", "-versions=2", "-mount=secret", "d"]);
    assert!(destroyed.contains("Success!"), "{destroyed}");
    ok(&server, &["undelete", "-versions=2", "secret/d"]);
    let meta = metadata(&server, "d");
    assert_eq!(meta["versions"]["2"]["destroyed"], true);
    let gone = kv(&server, &["get", "-version=2", "-field=pass", "secret/d"]);
    assert_ne!(gone.status.code(), Some(0));
    assert!(!stdout(&gone).contains("s2"));
}

#[test]
fn list_shows_keys_and_folders_and_exits_2_when_empty() {
    let (_dir, server) = start();
    let empty = kv(&server, &["list", "secret/"]);
    assert_eq!(empty.status.code(), Some(2));
    assert!(
        stderr(&empty).contains("No value found at secret/metadata/"),
        "{}",
        stderr(&empty)
    );
    for path in ["app/a", "app/b", "app/sub/c", "top"] {
        ok(&server, &["put", &format!("secret/{path}"), "k=v"]);
    }
    let table = ok(&server, &["list", "secret/"]);
    assert_eq!(
        table.lines().collect::<Vec<_>>(),
        vec!["Keys", "----", "app/", "top"]
    );
    let table = ok(&server, &["list", "secret/app"]);
    assert_eq!(
        table.lines().skip(2).collect::<Vec<_>>(),
        vec!["a", "b", "sub/"]
    );
    assert_eq!(
        ok_json(&server, &["list", "-mount=secret", "app/sub"]),
        json!(["c"])
    );
    assert_eq!(
        kv(&server, &["list", "secret/app/none"]).status.code(),
        Some(2)
    );
}

#[test]
fn metadata_put_get_and_delete() {
    let (_dir, server) = start();
    ok(&server, &["put", "secret/m", "v=1"]);
    let put = ok(
        &server,
        &[
            "metadata",
            "put",
            "-max-versions=7",
            "-cas-required=true",
            "-delete-version-after=1h",
            "-custom-metadata=owner=alice",
            "-custom-metadata=team=a",
            "secret/m",
        ],
    );
    assert!(put.contains("secret/metadata/m"), "{put}");
    let meta = metadata(&server, "m");
    assert_eq!(meta["max_versions"], 7);
    assert_eq!(meta["cas_required"], true);
    assert_eq!(meta["delete_version_after"], "1h0m0s");
    assert_eq!(
        meta["custom_metadata"],
        json!({"owner": "alice", "team": "a"})
    );

    let json = ok_json(&server, &["metadata", "get", "secret/m"]);
    assert_eq!(json["data"]["current_version"], 1);
    assert_eq!(json["data"]["custom_metadata"]["owner"], "alice");
    assert_eq!(json["data"]["versions"]["1"]["destroyed"], false);
    let table = ok(&server, &["metadata", "get", "-mount=secret", "m"]);
    assert_row(&table, &["max_versions", "7"]);
    assert_row(&table, &["current_version", "1"]);
    assert_row(&table, &["cas_required", "true"]);

    // cas_required now refuses a put without -cas.
    let refused = kv(&server, &["put", "secret/m", "v=2"]);
    assert_ne!(refused.status.code(), Some(0));
    assert!(
        stderr(&refused).contains("check-and-set parameter required for this call"),
        "{}",
        stderr(&refused)
    );
    ok(&server, &["put", "-cas=1", "secret/m", "v=2"]);

    // Metadata for a key with no versions yet (External Secrets Operator's PushSecret).
    ok(
        &server,
        &[
            "metadata",
            "put",
            "-custom-metadata=pushed=yes",
            "secret/fresh",
        ],
    );
    let fresh = metadata(&server, "fresh");
    assert_eq!(fresh["current_version"], 0);
    assert_eq!(fresh["custom_metadata"], json!({"pushed": "yes"}));
    assert_eq!(kv(&server, &["get", "secret/fresh"]).status.code(), Some(2));

    let deleted = ok(&server, &["metadata", "delete", "secret/m"]);
    assert!(deleted.contains("secret/metadata/m"), "{deleted}");
    assert_eq!(api(&server, "GET", "secret/metadata/m", None).0, 404);
    assert_eq!(
        kv(&server, &["metadata", "get", "secret/m"]).status.code(),
        Some(2)
    );
    assert_eq!(kv(&server, &["get", "secret/m"]).status.code(), Some(2));
}

#[test]
fn rollback_writes_the_old_data_as_a_new_version() {
    let (_dir, server) = start();
    ok(&server, &["put", "secret/r", "pass=s1", "user=alice"]);
    ok(&server, &["put", "secret/r", "pass=s2"]);
    ok(&server, &["put", "secret/r", "pass=s3"]);
    let rolled = ok(&server, &["rollback", "-version=1", "secret/r"]);
    assert_row(&rolled, &["version", "4"]);
    let (_, body) = api(&server, "GET", "secret/data/r", None);
    assert_eq!(body["data"]["data"], json!({"pass": "s1", "user": "alice"}));
    assert_eq!(body["data"]["metadata"]["version"], 4);
    let (_, v3) = api(&server, "GET", "secret/data/r?version=3", None);
    assert_eq!(v3["data"]["data"], json!({"pass": "s3"}), "history kept");
    let json = ok_json(&server, &["rollback", "-version=2", "-mount=secret", "r"]);
    assert_eq!(json["data"]["version"], 5);
    assert_eq!(
        ok(&server, &["get", "-field=pass", "secret/r"]).trim_end(),
        "s2"
    );

    // Rolling back to a destroyed version fails and writes nothing.
    ok(&server, &["destroy", "-versions=3", "secret/r"]);
    let refused = kv(&server, &["rollback", "-version=3", "secret/r"]);
    assert_ne!(refused.status.code(), Some(0));
    assert_eq!(metadata(&server, "r")["current_version"], 5);
}

#[test]
fn kv1_mounts_are_detected_and_enable_versioning_upgrades_them() {
    let (_dir, server) = start();
    enable_kv1(&server, "legacy");
    let put = ok(&server, &["put", "legacy/app/db", "user=alice", "ttl=1h"]);
    assert!(
        put.contains("Success! Data written to: legacy/app/db"),
        "{put}"
    );
    ok(&server, &["put", "-mount=legacy", "app/api", "token=t"]);
    let (_, raw) = api(&server, "GET", "legacy/app/db", None);
    assert_eq!(
        raw["data"],
        json!({"user": "alice", "ttl": "1h"}),
        "v1 layout"
    );

    let get = ok(&server, &["get", "legacy/app/db"]);
    assert_row(&get, &["user", "alice"]);
    assert!(!get.contains("version"), "no v2 metadata: {get}");
    let json = ok_json(&server, &["get", "legacy/app/db"]);
    assert_eq!(json["data"], json!({"user": "alice", "ttl": "1h"}));
    assert_eq!(json["lease_duration"], 3600);
    assert_eq!(
        ok(&server, &["get", "-field=user", "legacy/app/db"]).trim_end(),
        "alice"
    );
    assert_eq!(
        ok_json(&server, &["list", "legacy/app"]),
        json!(["api", "db"])
    );
    // v2-only commands refuse a v1 mount.
    for args in [
        &["patch", "legacy/app/db", "user=bob"][..],
        &["rollback", "-version=1", "legacy/app/db"],
    ] {
        let refused = kv(&server, args);
        assert_ne!(refused.status.code(), Some(0), "{args:?}");
        assert!(stderr(&refused).contains(args[0]), "{}", stderr(&refused));
    }
    ok(&server, &["delete", "legacy/app/api"]);
    assert_eq!(api(&server, "GET", "legacy/app/api", None).0, 404);

    let tuned = ok(&server, &["enable-versioning", "legacy/"]);
    assert!(
        tuned.contains("Success! Tuned the secrets engine at: legacy/"),
        "{tuned}"
    );
    let (_, mount) = api(&server, "GET", "sys/internal/ui/mounts/legacy", None);
    assert_eq!(mount["data"]["options"]["version"], "2");
    // Now a v2 mount: the old data is version 1.
    let get = ok(&server, &["get", "legacy/app/db"]);
    assert_row(&get, &["version", "1"]);
    assert_row(&get, &["user", "alice"]);
    let put = ok(&server, &["put", "legacy/app/db", "user=carol"]);
    assert_row(&put, &["version", "2"]);
    assert_eq!(
        ok(
            &server,
            &["get", "-version=1", "-field=user", "legacy/app/db"]
        )
        .trim_end(),
        "alice"
    );
    assert_eq!(
        ok(&server, &["get", "-field=user", "legacy/app/db"]).trim_end(),
        "carol"
    );
    let rolled = ok(&server, &["rollback", "-version=1", "legacy/app/db"]);
    assert_row(&rolled, &["version", "3"]);
    assert_eq!(ok_json(&server, &["list", "legacy/app"]), json!(["db"]));
}

/// Vault's CLI exits 1 for local errors (bad flags or arguments) and 2 for errors the server
/// (or the engine's state) reports; `vault kv` and `bao kv` follow that for every command.
#[test]
fn server_side_failures_exit_2_as_vault_does() {
    let (_dir, server) = start();
    enable_kv1(&server, "legacy");
    ok(&server, &["put", "legacy/x", "a=b"]);
    ok(&server, &["put", "secret/e", "v=1"]);
    ok(&server, &["destroy", "-versions=1", "secret/e"]);
    ok(&server, &["put", "secret/e", "v=2"]);
    ok(&server, &["put", "secret/gone", "v=1"]);
    ok(&server, &["delete", "secret/gone"]);
    let cases: [&[&str]; 7] = [
        &["put", "-cas=0", "secret/e", "v=x"],
        &["patch", "-cas=9", "secret/e", "v=x"],
        &["patch", "secret/none", "a=b"],
        &["rollback", "-version=1", "secret/e"],
        &["get", "-field=v", "secret/gone"],
        &["patch", "legacy/x", "a=c"],
        &["rollback", "-version=1", "legacy/x"],
    ];
    // Every case is run, and all wrong exit codes reported together.
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|args| {
            let o = kv(&server, args);
            (o.status.code() != Some(2)).then(|| {
                format!(
                    "kv {} → exit {:?}, stderr: {}",
                    args.join(" "),
                    o.status.code(),
                    stderr(&o).trim()
                )
            })
        })
        .collect();
    assert!(wrong.is_empty(), "expected exit 2:\n{}", wrong.join("\n"));
    assert_eq!(metadata(&server, "e")["current_version"], 2);
}

/// `vault kv rollback` to a deleted or destroyed version says so ("Cannot roll back to a
/// version that has been deleted"); a bare "404 Not Found" does not tell the user why.
#[test]
fn rollback_to_a_destroyed_version_says_why_it_cannot() {
    let (_dir, server) = start();
    ok(&server, &["put", "secret/r", "v=1"]);
    ok(&server, &["put", "secret/r", "v=2"]);
    ok(&server, &["destroy", "-versions=1", "secret/r"]);
    let refused = kv(&server, &["rollback", "-version=1", "secret/r"]);
    assert_ne!(refused.status.code(), Some(0));
    let message = stderr(&refused).to_lowercase();
    assert!(
        message.contains("roll back")
            && (message.contains("deleted") || message.contains("destroyed")),
        "{message}"
    );
    assert_eq!(metadata(&server, "r")["current_version"], 2);
}
