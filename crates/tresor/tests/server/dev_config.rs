//! `tresor server -dev -config=FILE`: the file laid over dev mode, as OpenBao merges them (its
//! listeners added after the dev listener, its storage instead of the in-memory store).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Server, listener_addr, raw};
use serde_json::json;

const ROOT: &str = "dev-config-root";

/// A self-signed certificate for 127.0.0.1 in `dir`: (cert, key).
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    common::self_signed(dir, "IP:127.0.0.1,DNS:localhost")
}

fn dev_with(config: &Path, dir: &Path) -> Server {
    Server::start(
        &[
            "server",
            "-dev",
            "-dev-listen-address=127.0.0.1:0",
            &format!("-dev-root-token-id={ROOT}"),
            &format!("-config={}", config.display()),
        ],
        dir,
    )
}

async fn health(client: &reqwest::Client, base: &str) -> serde_json::Value {
    let response = client
        .get(format!("{base}/v1/sys/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "initialised, unsealed, active");
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dev_server_also_serves_the_tls_listener_of_its_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let config = dir.path().join("extra.hcl");
    std::fs::write(
        &config,
        format!(
            "listener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n}}\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let server = dev_with(&config, dir.path());
    // The dev listener comes first, plain HTTP, as in OpenBao.
    assert!(server.addr.starts_with("http://"), "{}", server.addr);
    let tls_addr = listener_addr(&server, 2);
    assert!(
        server.stdout_text().contains(&format!(
            "Listener 2: tcp (addr: \"{tls_addr}\", tls: \"enabled\")"
        )),
        "{}",
        server.stdout_text()
    );

    let plain = common::http();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let tls = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let tls_base = format!("https://{tls_addr}");
    assert_eq!(health(&plain, &server.addr).await["sealed"], json!(false));
    assert_eq!(health(&tls, &tls_base).await["sealed"], json!(false));

    // One core behind both: a secret written on one listener is read on the other, with the
    // dev root token.
    let written = tls
        .post(format!("{tls_base}/v1/secret/data/both"))
        .header("X-Vault-Token", ROOT)
        .json(&json!({"data": {"via": "tls"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(written.status(), 200);
    let (status, read) = raw(&server, "GET", "secret/data/both", Some(ROOT), None).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["data"]["data"], json!({"via": "tls"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_storage_of_the_config_file_replaces_the_in_memory_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("dev.redb");
    let config = dir.path().join("store.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"embedded\" {{\n  path = \"{}\"\n}}\n",
            store.display()
        ),
    )
    .unwrap();
    let server = dev_with(&config, dir.path());
    assert!(
        server.stdout_containing("Storage").contains("embedded"),
        "{}",
        server.stdout_text()
    );
    let (status, written) = raw(
        &server,
        "POST",
        "secret/data/kept",
        Some(ROOT),
        Some(json!({"data": {"survives": "restart"}})),
    )
    .await;
    assert_eq!(status, 200, "{written}");
    assert!(server.terminate().success());
    assert!(store.exists(), "the file's store was used");

    // A restart reopens the same store (and unseals it with the dev key kept beside it): the
    // secret is still there, so it never lived in memory only.
    let again = dev_with(&config, dir.path());
    let (status, read) = raw(&again, "GET", "secret/data/kept", Some(ROOT), None).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["data"]["data"], json!({"survives": "restart"}));
}

#[test]
fn two_stores_named_at_once_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("store.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"embedded\" {{\n  path = \"{}\"\n}}\n",
            dir.path().join("a.redb").display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tresor"))
        .args(["server", "-dev", "-dev-listen-address=127.0.0.1:0"])
        .arg(format!(
            "-dev-store=embedded:{}",
            dir.path().join("b.redb").display()
        ))
        .arg(format!("-config={}", config.display()))
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("both name a store"), "{stderr}");
}

#[test]
fn a_seal_block_is_refused_with_dev() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("seal.hcl");
    std::fs::write(
        &config,
        "seal \"static\" {\n  current_key_id = \"k1\"\n  current_key = \"env://TRESOR_TEST_NO_SUCH_KEY\"\n}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tresor"))
        .args(["server", "-dev", "-dev-listen-address=127.0.0.1:0"])
        .arg(format!("-config={}", config.display()))
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("seal blocks cannot be combined with -dev"),
        "{stderr}"
    );
}
