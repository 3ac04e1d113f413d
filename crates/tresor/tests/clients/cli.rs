//! The `tresor` CLI against a real server: operator init/unseal/seal/status, exit codes, output
//! formats, and the Vault-style environment variables and single-dash flags.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use std::process::{Command, Output};

use common::{BIN, Server, embedded_config, scratch_home};

fn tresor(args: &[&str], addr: &str, token: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("HOME", scratch_home())
        .env_remove("TRESOR_ADDR")
        .env_remove("TRESOR_TOKEN")
        .env("VAULT_ADDR", addr);
    match token {
        Some(t) => cmd.env("VAULT_TOKEN", t),
        None => cmd.env_remove("VAULT_TOKEN"),
    };
    cmd.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn operator_init_unseal_status_seal_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let config = embedded_config(dir.path());
    let server = Server::start(
        &["server", &format!("-config={}", config.display())],
        dir.path(),
    );
    let addr = server.addr.as_str();

    let status = tresor(&["operator", "init", "-status"], addr, None);
    assert_eq!(status.status.code(), Some(2), "not initialised → exit 2");

    let init = tresor(
        &[
            "operator",
            "init",
            "-key-shares=3",
            "-key-threshold=2",
            "-format=json",
        ],
        addr,
        None,
    );
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let init: serde_json::Value = serde_json::from_slice(&init.stdout).unwrap();
    assert_eq!(init["unseal_keys_b64"].as_array().unwrap().len(), 3);
    assert_eq!(init["unseal_threshold"], 2);
    let root = init["root_token"].as_str().unwrap().to_owned();
    let key = |i: usize| init["unseal_keys_b64"][i].as_str().unwrap().to_owned();

    let sealed = tresor(&["status"], addr, None);
    assert_eq!(sealed.status.code(), Some(2), "sealed → exit 2");
    let table = stdout(&sealed);
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Sealed", "true"]),
        "{table}"
    );
    assert!(table.contains("Unseal Progress"), "{table}");

    let first = tresor(&["operator", "unseal", &key(2)], addr, None);
    assert!(first.status.success());
    assert!(
        stdout(&first)
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Unseal", "Progress", "1/2"])
    );
    let second = tresor(&["operator", "unseal", "-format=json", &key(0)], addr, None);
    let body: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(body["sealed"], false);

    let unsealed = tresor(&["operator", "status"], addr, None);
    assert_eq!(unsealed.status.code(), Some(0));
    assert!(stdout(&unsealed).contains("Cluster ID"));

    // Sealing needs a token: without one the server says 403 and the CLI exits 2, as vault does.
    let refused = tresor(&["operator", "seal"], addr, None);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("permission denied"));
    let sealed = tresor(&["operator", "seal"], addr, Some(&root));
    assert!(sealed.status.success());
    assert_eq!(tresor(&["status"], addr, None).status.code(), Some(2));
}

#[test]
fn unseal_key_can_come_from_stdin_and_bad_keys_fail_with_the_servers_message() {
    let dir = tempfile::tempdir().unwrap();
    let config = embedded_config(dir.path());
    let server = Server::start(
        &["server", &format!("-config={}", config.display())],
        dir.path(),
    );
    let init = tresor(
        &[
            "operator",
            "init",
            "-key-shares=1",
            "-key-threshold=1",
            "-format=json",
        ],
        &server.addr,
        None,
    );
    let init: serde_json::Value = serde_json::from_slice(&init.stdout).unwrap();
    let key = init["unseal_keys_hex"][0].as_str().unwrap().to_owned();

    let bad = tresor(&["operator", "unseal", "zz"], &server.addr, None);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("'key' must be a valid hex or base64 string")
    );

    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(["operator", "unseal", "-address", &server.addr])
        .env("HOME", scratch_home())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{key}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        tresor(&["status"], &server.addr, None).status.code(),
        Some(0)
    );
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    let out = tresor(&["status"], "http://127.0.0.1:9", None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("could not reach http://127.0.0.1:9/v1/sys/seal-status")
    );
}

#[test]
fn a_misspelt_config_key_stops_the_server_naming_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.hcl");
    std::fs::write(
        &config,
        "storage \"inmem\" {}\n\nlistener \"tcp\" {\n  adress = \"127.0.0.1:0\"\n}\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["server", &format!("-config={}", config.display())])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(":4:") && err.contains("adress") && err.contains("address"),
        "{err}"
    );
}

#[test]
fn a_config_without_a_listener_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("nolistener.hcl");
    std::fs::write(&config, "storage \"inmem\" {}\n").unwrap();
    let out = Command::new(BIN)
        .args(["server", &format!("-config={}", config.display())])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("listener"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn version_prints_the_tresor_and_api_versions() {
    let out = Command::new(BIN).arg("version").output().unwrap();
    assert!(out.status.success());
    assert!(stdout(&out).starts_with(&format!("Tresor v{}", env!("CARGO_PKG_VERSION"))));
}
