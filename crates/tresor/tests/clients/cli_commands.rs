//! The `tresor` CLI's token, policy, secrets and auth commands against a real dev server:
//! the requests they make take effect, and their JSON/YAML/`-field` output has the shape of
//! Vault's Go client. (Output byte for byte against `bao` is the differential suite's job:
//! `compat/scenarios/cli_tresor_*.json`.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use common::{BIN, Server, scratch_home};

const ROOT: &str = "cli-root";

fn start() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    (dir, server)
}

fn command(server: &Server, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("HOME", scratch_home())
        .env("VAULT_ADDR", &server.addr)
        .env("VAULT_TOKEN", ROOT)
        .env_remove("TRESOR_ADDR")
        .env_remove("TRESOR_TOKEN")
        .env_remove("BAO_ADDR")
        .env_remove("BAO_TOKEN")
        .env_remove("VAULT_FORMAT")
        .stdin(Stdio::null());
    cmd
}

fn run(server: &Server, args: &[&str]) -> Output {
    command(server, args).output().unwrap()
}

/// Runs and requires exit 0; returns stdout.
fn ok(server: &Server, args: &[&str]) -> String {
    let o = run(server, args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json_of(server: &Server, args: &[&str]) -> Value {
    serde_json::from_str(&ok(server, args)).unwrap()
}

#[test]
fn tokens_are_created_looked_up_renewed_and_revoked() {
    let (_dir, server) = start();
    let created = json_of(
        &server,
        &[
            "token",
            "create",
            "-policy=default",
            "-ttl=1h",
            "-metadata=team=x",
            "-format=json",
        ],
    );
    // The Go client's `api.Secret`: no `mount_type`, an `auth` block with its fields.
    assert!(created.get("mount_type").is_none());
    let auth = &created["auth"];
    assert_eq!(auth["token_policies"], json!(["default"]));
    assert_eq!(auth["metadata"], json!({"team": "x"}));
    assert_eq!(auth["lease_duration"], json!(3600));
    let token = auth["client_token"].as_str().unwrap().to_owned();
    let accessor = auth["accessor"].as_str().unwrap().to_owned();

    let table = ok(&server, &["token", "lookup", &token]);
    assert!(
        table.starts_with("Key                 Value\n---                 -----\n"),
        "{table}"
    );
    assert!(
        table.contains("\nmeta                map[team:x]\n"),
        "{table}"
    );
    assert!(
        table.contains("\npolicies            [default]\n"),
        "{table}"
    );
    assert!(table.contains("\ncreation_ttl        1h\n"), "{table}");

    assert_eq!(
        ok(
            &server,
            &[
                "token",
                "lookup",
                "-accessor",
                "-field=display_name",
                &accessor
            ]
        ),
        "token"
    );
    let yaml = ok(
        &server,
        &["token", "lookup", "-format=yaml", "-field=policies", &token],
    );
    assert_eq!(yaml, "- default\n");

    let renewed = json_of(
        &server,
        &["token", "renew", "-format=json", "-increment=30m", &token],
    );
    assert_eq!(renewed["auth"]["lease_duration"], json!(1800));

    assert_eq!(
        ok(
            &server,
            &["token", "capabilities", &token, "auth/token/lookup-self"]
        ),
        "read\n"
    );
    assert_eq!(
        ok(&server, &["token", "capabilities", &token, "sys/mounts"]),
        "deny\n"
    );

    assert_eq!(
        ok(&server, &["token", "revoke", "-accessor", &accessor]),
        "Success! Revoked token (if it existed)\n"
    );
    assert_eq!(
        run(&server, &["token", "lookup", &token]).status.code(),
        Some(2)
    );
}

#[test]
fn policies_are_written_from_stdin_read_as_yaml_listed_and_deleted() {
    let (_dir, server) = start();
    let mut child = command(&server, &["policy", "write", "App", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"path \"secret/*\" {\n  capabilities = [\"read\"]\n}\n")
        .unwrap();
    let written = child.wait_with_output().unwrap();
    assert_eq!(written.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&written.stdout),
        "Success! Uploaded policy: app\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&written.stderr),
        "Policy name was converted from \"App\" to \"app\"\n"
    );
    assert_eq!(
        ok(&server, &["policy", "read", "-format=yaml", "app"]),
        "policy: |\n  path \"secret/*\" {\n    capabilities = [\"read\"]\n  }\n"
    );
    assert_eq!(ok(&server, &["policy", "list"]), "app\ndefault\nroot\n");
    assert_eq!(
        json_of(&server, &["policy", "list", "-format=json"]),
        json!(["app", "default", "root"])
    );
    assert_eq!(
        ok(&server, &["policy", "delete", "app"]),
        "Success! Deleted policy: app\n"
    );
    let gone = run(&server, &["policy", "read", "app"]);
    assert_eq!(gone.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&gone.stderr),
        "No policy named: app\n"
    );
}

#[test]
fn secrets_engines_are_enabled_tuned_moved_and_disabled() {
    let (_dir, server) = start();
    assert_eq!(
        ok(
            &server,
            &[
                "secrets",
                "enable",
                "-path=kvx",
                "-version=2",
                "-description=mine",
                "kv"
            ]
        ),
        "Success! Enabled the kv secrets engine at: kvx/\n"
    );
    let mounts = json_of(&server, &["secrets", "list", "-format=json"]);
    assert_eq!(mounts["kvx/"]["type"], "kv");
    assert_eq!(mounts["kvx/"]["options"], json!({"version": "2"}));
    assert_eq!(mounts["kvx/"]["description"], "mine");

    assert_eq!(
        ok(
            &server,
            &[
                "secrets",
                "tune",
                "-default-lease-ttl=30m",
                "-max-lease-ttl=3h",
                "kvx"
            ]
        ),
        "Success! Tuned the secrets engine at: kvx/\n"
    );
    let tune = json_of(&server, &["read", "-format=json", "sys/mounts/kvx/tune"]);
    assert_eq!(tune["data"]["default_lease_ttl"], json!(1800));
    assert_eq!(tune["data"]["max_lease_ttl"], json!(10800));

    let table = ok(&server, &["secrets", "list"]);
    assert!(
        table.starts_with("Path          Type         Accessor"),
        "{table}"
    );
    assert!(
        table.contains("\nkvx/          kv           kv_"),
        "{table}"
    );

    let moved = ok(&server, &["secrets", "move", "kvx", "kvy"]);
    assert!(
        moved.contains("Success! Finished moving secrets engine kvx/ to kvy/"),
        "{moved}"
    );
    let mounts = json_of(&server, &["secrets", "list", "-format=json"]);
    assert!(mounts.get("kvx/").is_none());
    assert_eq!(mounts["kvy/"]["description"], "mine");

    assert_eq!(
        ok(&server, &["secrets", "disable", "kvy"]),
        "Success! Disabled the secrets engine (if it existed) at: kvy/\n"
    );
    let refused = run(&server, &["secrets", "enable", "no-such-engine"]);
    assert_eq!(refused.status.code(), Some(2));
}

#[test]
fn auth_methods_are_listed_and_tuned() {
    let (_dir, server) = start();
    let auths = json_of(&server, &["auth", "list", "-format=json"]);
    assert_eq!(auths["token/"]["type"], "token");
    assert_eq!(
        ok(
            &server,
            &[
                "auth",
                "tune",
                "-default-lease-ttl=1h",
                "-description=tokens",
                "token"
            ]
        ),
        "Success! Tuned the auth method at: token/\n"
    );
    let auths = json_of(&server, &["auth", "list", "-format=json"]);
    assert_eq!(auths["token/"]["config"]["default_lease_ttl"], json!(3600));
    assert_eq!(auths["token/"]["description"], "tokens");
    assert_eq!(
        run(&server, &["auth", "disable", "token"]).status.code(),
        Some(2)
    );
}
