//! Leases through the real binary: tokens with a TTL as leases over HTTP, expiry by the timer,
//! revocation after a restart of leases that expired while the server was down, the pause
//! switch (config key and environment variable), and hvac's lease API.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, raw};
use serde_json::{Value, json};

async fn create_token(server: &Server, token: &str, body: Value) -> String {
    let (status, reply) = raw(server, "POST", "auth/token/create", Some(token), Some(body)).await;
    assert_eq!(status, 200, "{reply}");
    reply["auth"]["client_token"].as_str().unwrap().to_owned()
}

/// The token leases under `auth/token/create/` (the dev root token is one of them).
async fn token_leases(server: &Server, root: &str) -> Vec<String> {
    let (status, reply) = raw(
        server,
        "LIST",
        "sys/leases/lookup/auth/token/create/",
        Some(root),
        None,
    )
    .await;
    match status {
        404 => Vec::new(),
        200 => reply["data"]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect(),
        other => panic!("{other}: {reply}"),
    }
}

async fn authenticated(server: &Server, token: &str) -> bool {
    let (status, _) = raw(server, "GET", "auth/token/lookup-self", Some(token), None).await;
    status == 200
}

async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn persistent_dev_args(dir: &Path) -> Vec<String> {
    vec![
        "server".into(),
        "-dev".into(),
        "-dev-listen-address=127.0.0.1:0".into(),
        "-dev-root-token-id=root".into(),
        format!("-dev-store=embedded:{}", dir.join("dev.redb").display()),
    ]
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_with_a_ttl_is_a_lease_revoked_by_the_timer() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), "root");
    let before = token_leases(&server, "root").await;
    assert_eq!(before.len(), 1, "the dev root token's lease: {before:?}");
    let short = create_token(
        &server,
        "root",
        json!({"ttl": "1s", "policies": ["default"]}),
    )
    .await;
    let after = token_leases(&server, "root").await;
    assert_eq!(after.len(), 2);
    let id = after.iter().find(|k| !before.contains(k)).unwrap();
    let lease_id = format!("auth/token/create/{id}");
    let (status, lookup) = raw(
        &server,
        "PUT",
        "sys/leases/lookup",
        Some("root"),
        Some(json!({"lease_id": lease_id})),
    )
    .await;
    assert_eq!(status, 200, "{lookup}");
    assert_eq!(lookup["data"]["id"], json!(lease_id));
    assert_eq!(lookup["data"]["path"], json!("auth/token/create"));
    // The lease id carries the token's hash, never the token.
    assert!(!lease_id.contains(&short));
    // Nobody presents the token: the timer revokes it and its lease.
    eventually(
        Duration::from_secs(10),
        "the token lease is revoked",
        || async { token_leases(&server, "root").await.len() == 1 },
    )
    .await;
    assert!(!authenticated(&server, &short).await);
    let (status, _) = raw(
        &server,
        "PUT",
        "sys/leases/lookup",
        Some("root"),
        Some(json!({"lease_id": lease_id})),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_that_expired_while_down_are_revoked_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let args = persistent_dev_args(dir.path());
    let server = Server::start(&as_strs(&args), dir.path());
    let short = create_token(&server, "root", json!({"ttl": "1s"})).await;
    let long = create_token(&server, "root", json!({"ttl": "1h"})).await;
    assert_eq!(token_leases(&server, "root").await.len(), 3);
    let expired_by = Instant::now() + Duration::from_secs(1);
    assert!(server.terminate().success());
    // Stay down until the short token has expired.
    tokio::time::sleep(
        expired_by.saturating_duration_since(Instant::now()) + Duration::from_millis(200),
    )
    .await;

    let server = Server::start(&as_strs(&args), dir.path());
    eventually(
        Duration::from_secs(10),
        "the expired token is revoked",
        || async { token_leases(&server, "root").await.len() == 2 },
    )
    .await;
    assert!(!authenticated(&server, &short).await);
    assert!(authenticated(&server, &long).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pause_switch_keeps_expired_tokens_until_lifted() {
    let dir = tempfile::tempdir().unwrap();
    let args = persistent_dev_args(dir.path());
    let server = Server::start_with_env(
        &as_strs(&args),
        &[("TRESOR_LEASE_REVOCATION_PAUSED", "1")],
        dir.path(),
    );
    let short = create_token(&server, "root", json!({"ttl": "1s"})).await;
    assert_eq!(token_leases(&server, "root").await.len(), 2);
    // Expired tokens are refused at once, paused or not...
    eventually(Duration::from_secs(10), "the token expires", || async {
        !authenticated(&server, &short).await
    })
    .await;
    // ...but nothing is revoked while paused (given time the timer would have used).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(token_leases(&server, "root").await.len(), 2);
    assert!(server.log_text().contains("lease revocation is paused"));
    assert!(server.terminate().success());

    // Restarted without the switch: the expired token's lease goes.
    let server = Server::start(&as_strs(&args), dir.path());
    eventually(
        Duration::from_secs(10),
        "revoked once the pause is lifted",
        || async { token_leases(&server, "root").await.len() == 1 },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pause_switch_is_read_from_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::embedded_config(dir.path());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("lease_revocation_paused = true\n");
    std::fs::write(&config, text).unwrap();
    let server = Server::start(
        &["server", &format!("-config={}", config.display())],
        dir.path(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log_text().contains("lease revocation is paused") {
        assert!(Instant::now() < deadline, "{}", server.log_text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn hvac_drives_the_lease_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), "root");
    common::run_hvac_script(&server, "leases.py");
}
