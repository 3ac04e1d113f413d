//! The whole life of a server over real HTTP with a real client (vaultrs): init → unseal with 3
//! of 5 shares → seal → unseal with another 3 → sealed answers 503 → kill -9 → restart → unseal.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use std::time::{Duration, Instant};

use common::{Server, embedded_config, vault_client};
use vaultrs::sys::ServerStatus;

#[tokio::test(flavor = "multi_thread")]
async fn init_unseal_seal_unseal_cycle_with_vaultrs() {
    let dir = tempfile::tempdir().unwrap();
    let config = embedded_config(dir.path());
    let server = Server::start(
        &["server", &format!("-config={}", config.display())],
        dir.path(),
    );
    let anon = vault_client(&server.addr, "");

    assert!(matches!(
        vaultrs::sys::status(&anon).await.unwrap(),
        ServerStatus::UNINITIALIZED
    ));
    let init = vaultrs::sys::start_initialization(&anon, 5, 3, None)
        .await
        .unwrap();
    assert_eq!(init.keys.len(), 5);
    assert_eq!(init.keys_base64.len(), 5);
    assert!(matches!(
        vaultrs::sys::status(&anon).await.unwrap(),
        ServerStatus::SEALED
    ));

    // Sealed: a secret path answers 503.
    let http = common::http();
    let sealed = http
        .get(server.url("secret/data/x"))
        .header("X-Vault-Token", &init.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(sealed.status(), 503);

    // Unseal with shares 1, 3 and 5 (hex).
    for (i, idx) in [0usize, 2, 4].into_iter().enumerate() {
        let r = vaultrs::sys::unseal(&anon, Some(init.keys[idx].clone()), None, None)
            .await
            .unwrap();
        assert_eq!(r.threshold, 3);
        assert_eq!(r.n_shares, 5);
        assert_eq!(r.sealed, i < 2, "sealed after {} shares", i + 1);
        assert_eq!(r.progress, if i < 2 { i as u64 + 1 } else { 0 });
    }
    let health = vaultrs::sys::health(&anon).await.unwrap();
    assert!(health.initialized && !health.sealed && !health.standby);
    assert!(health.cluster_name.is_some());

    // Seal with the root token; unseal again with a different subset, base64 this time.
    let root = vault_client(&server.addr, &init.root_token);
    vaultrs::sys::seal(&root).await.unwrap();
    assert!(matches!(
        vaultrs::sys::status(&anon).await.unwrap(),
        ServerStatus::SEALED
    ));
    for idx in [1usize, 3, 0] {
        vaultrs::sys::unseal(&anon, Some(init.keys_base64[idx].clone()), None, None)
            .await
            .unwrap();
    }
    assert!(matches!(
        vaultrs::sys::status(&anon).await.unwrap(),
        ServerStatus::OK
    ));

    // A bad token cannot seal.
    let intruder = vault_client(&server.addr, "s.not-a-real-token");
    match vaultrs::sys::seal(&intruder).await {
        Err(vaultrs::error::ClientError::APIError { code, errors }) => {
            assert_eq!(code, 403);
            assert_eq!(errors, vec!["permission denied".to_owned()]);
        }
        other => panic!("expected 403, got {other:?}"),
    }
    assert!(matches!(
        vaultrs::sys::status(&anon).await.unwrap(),
        ServerStatus::OK
    ));
}

/// Rotations are acknowledged writes of the keyring; after kill -9 every one of them is there,
/// and data written under every term still decrypts.
#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_writes_survive_kill_9_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = embedded_config(dir.path());
    let config_arg = format!("-config={}", config.display());
    let server = Server::start(&["server", &config_arg], dir.path());
    let anon = vault_client(&server.addr, "");
    let init = vaultrs::sys::start_initialization(&anon, 3, 2, None)
        .await
        .unwrap();
    for key in &init.keys[..2] {
        vaultrs::sys::unseal(&anon, Some(key.clone()), None, None)
            .await
            .unwrap();
    }
    let http = common::http();
    for _ in 0..5 {
        let r = http
            .put(server.url("sys/rotate"))
            .header("X-Vault-Token", &init.root_token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    server.kill9();

    let started = Instant::now();
    let server = Server::start(&["server", &config_arg], dir.path());
    let anon = vault_client(&server.addr, "");
    assert!(matches!(
        vaultrs::sys::status(&anon).await.unwrap(),
        ServerStatus::SEALED
    ));
    let listening_after = started.elapsed();
    for key in &init.keys[1..] {
        vaultrs::sys::unseal(&anon, Some(key.clone()), None, None)
            .await
            .unwrap();
    }
    let unsealed_after = started.elapsed();
    eprintln!(
        "restart of a sealed server with an existing store: answering after {listening_after:?}, unsealed after {unsealed_after:?}"
    );
    let status: serde_json::Value = http
        .get(server.url("sys/key-status"))
        .header("X-Vault-Token", &init.root_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        status["data"]["term"], 6,
        "1 initial term + 5 acknowledged rotations"
    );
    // The root token (written under term 1) still authenticates.
    assert!(matches!(
        vaultrs::sys::status(&vault_client(&server.addr, &init.root_token))
            .await
            .unwrap(),
        ServerStatus::OK
    ));
    // A generous sanity bound only; the measured figure goes in the notes, not in an assertion.
    assert!(listening_after < Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_shuts_down_cleanly_and_the_store_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let config = embedded_config(dir.path());
    let config_arg = format!("-config={}", config.display());
    let server = Server::start(&["server", &config_arg], dir.path());
    let anon = vault_client(&server.addr, "");
    let init = vaultrs::sys::start_initialization(&anon, 1, 1, None)
        .await
        .unwrap();
    vaultrs::sys::unseal(&anon, Some(init.keys[0].clone()), None, None)
        .await
        .unwrap();
    let log = server.log.clone();
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("shutdown complete"), "{log}");

    let server = Server::start(&["server", &config_arg], dir.path());
    let anon = vault_client(&server.addr, "");
    let r = vaultrs::sys::unseal(&anon, Some(init.keys_base64[0].clone()), None, None)
        .await
        .unwrap();
    assert!(!r.sealed);
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_server_starts_unsealed_with_the_chosen_root_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), "dev-root");
    let root = vault_client(&server.addr, "dev-root");
    let health = vaultrs::sys::health(&root).await.unwrap();
    assert!(health.initialized && !health.sealed);
    let stdout = server.stdout_containing("Root Token:");
    assert!(stdout.contains("Root Token: dev-root"), "{stdout}");
    assert!(stdout.contains("Unseal Key: "), "{stdout}");
    // The root token works, and the log holds neither it nor the unseal key.
    vaultrs::sys::seal(&root).await.unwrap();
    let key_line = stdout
        .lines()
        .find(|l| l.starts_with("Unseal Key: "))
        .unwrap();
    let key = key_line.trim_start_matches("Unseal Key: ").to_owned();
    let anon = vault_client(&server.addr, "");
    assert!(
        !vaultrs::sys::unseal(&anon, Some(key.clone()), None, None)
            .await
            .unwrap()
            .sealed
    );
    let log = server.log_text();
    assert!(
        !log.contains(&key) && !log.contains("dev-root"),
        "secrets leaked into the log:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn persistent_dev_store_unseals_itself_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!(
        "-dev-store=embedded:{}",
        dir.path().join("dev.redb").display()
    );
    let args = [
        "server",
        "-dev",
        "-dev-listen-address=127.0.0.1:0",
        "-dev-root-token-id=persist",
        store.as_str(),
    ];
    let server = Server::start(&args, dir.path());
    let http = common::http();
    let rotate = http
        .put(server.url("sys/rotate"))
        .header("X-Vault-Token", "persist")
        .send()
        .await
        .unwrap();
    assert_eq!(rotate.status(), 204);
    assert!(server.terminate().success());

    let server = Server::start(&args, dir.path());
    let status: serde_json::Value = http
        .get(server.url("sys/key-status"))
        .header("X-Vault-Token", "persist")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["data"]["term"], 2);
}
