//! `max_request_duration` never leaves a change half-made: a request whose client got the
//! 503 still runs to completion. One listener with a deadline shorter than any write, one
//! without, on the same server: writes sent to the first answer 503 (or, on a fast machine,
//! in time; an RSA-4096 key generation always answers 503), and the second then sees every
//! one of them whole — KV v2 data and metadata, policies
//! (the ACL cache follows the stored text), tokens and mounts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use std::time::{Duration, Instant};

use common::{Server, http};
use serde_json::{Value, json};

/// The second listener's fixed port (this test's range: 18400-18499).
const STEADY_PORT: u16 = 18_417;

async fn call(
    base: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http()
        .request(method.parse().unwrap(), format!("{base}/v1/{path}"))
        .header("X-Vault-Token", token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Polls `check` until it holds (the detached handler finishes on its own time).
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_past_its_deadline_still_finishes_its_change_whole() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("deadline.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"embedded\" {{ path = \"{}\" }}\n\
             listener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n  max_request_duration = \"1ms\"\n}}\n\
             listener \"tcp\" {{\n  address = \"127.0.0.1:{STEADY_PORT}\"\n  tls_disable = true\n}}\n",
            dir.path().join("data.redb").display()
        ),
    )
    .unwrap();
    let server = Server::start(
        &["server", &format!("-config={}", config.display())],
        dir.path(),
    );
    let hasty = server.addr.clone();
    let steady = format!("http://127.0.0.1:{STEADY_PORT}");

    let (s, init) = call(
        &steady,
        "PUT",
        "sys/init",
        "",
        Some(json!({"secret_shares": 1, "secret_threshold": 1})),
    )
    .await;
    assert_eq!(s, 200, "{init}");
    let key = init["keys"][0].as_str().unwrap().to_owned();
    let root = init["root_token"].as_str().unwrap().to_owned();
    let (s, _) = call(&steady, "PUT", "sys/unseal", "", Some(json!({"key": key}))).await;
    assert_eq!(s, 200);
    let (s, b) = call(
        &steady,
        "POST",
        "sys/mounts/secret",
        &root,
        Some(json!({"type": "kv", "options": {"version": "2"}})),
    )
    .await;
    assert_eq!(s, 204, "{b}");

    // The hasty listener refuses to wait: these answer 503 unless the machine is fast.
    for i in 0..10 {
        let (s, _) = call(
            &hasty,
            "POST",
            &format!("secret/data/k{i}"),
            &root,
            Some(json!({"data": {"v": i}})),
        )
        .await;
        assert!(s == 200 || s == 503, "{s}");
    }
    // A fast machine can read, seal and commit a small write inside 1ms; generating an
    // RSA-4096 key it cannot (two primes of 2048 bits take far longer anywhere), so at least
    // this request is cut short whatever the machine.
    let (s, b) = call(
        &steady,
        "POST",
        "sys/mounts/transit",
        &root,
        Some(json!({"type": "transit"})),
    )
    .await;
    assert_eq!(s, 204, "{b}");
    let (s, _) = call(
        &hasty,
        "POST",
        "transit/keys/slow",
        &root,
        Some(json!({"type": "rsa-4096"})),
    )
    .await;
    assert_eq!(s, 503, "an RSA-4096 key was generated within 1ms");
    eventually("the RSA-4096 key generated", async || {
        let (s, b) = call(&steady, "GET", "transit/keys/slow", &root, None).await;
        s == 200 && b["data"]["type"] == "rsa-4096" && b["data"]["latest_version"] == 1
    })
    .await;
    // Every write happened, data and metadata alike.
    for i in 0..10 {
        eventually(&format!("k{i} written"), async || {
            let (s, b) = call(&steady, "GET", &format!("secret/data/k{i}"), &root, None).await;
            s == 200 && b["data"]["data"]["v"] == i && b["data"]["metadata"]["version"] == 1
        })
        .await;
        let (s, meta) = call(
            &steady,
            "GET",
            &format!("secret/metadata/k{i}"),
            &root,
            None,
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(meta["data"]["current_version"], 1, "{meta}");
    }

    // Policies: the ACL cache must follow a policy write the client saw time out.
    let (s, _) = call(
        &steady,
        "PUT",
        "sys/policies/acl/reader",
        &root,
        Some(json!({"policy": "path \"secret/data/k1\" { capabilities = [\"read\"] }"})),
    )
    .await;
    assert_eq!(s, 204);
    let (s, created) = call(
        &steady,
        "POST",
        "auth/token/create",
        &root,
        Some(json!({"policies": ["reader"]})),
    )
    .await;
    assert_eq!(s, 200);
    let reader = created["auth"]["client_token"].as_str().unwrap().to_owned();
    // The ACL is computed and cached.
    assert_eq!(
        call(&steady, "GET", "secret/data/k1", &reader, None)
            .await
            .0,
        200
    );
    for round in 0..5 {
        let grant = if round % 2 == 0 { "deny" } else { "read" };
        let (s, _) = call(
            &hasty,
            "PUT",
            "sys/policies/acl/reader",
            &root,
            Some(json!({"policy": format!("path \"secret/data/k1\" {{ capabilities = [\"{grant}\"] }}")})),
        )
        .await;
        assert!(s == 204 || s == 503, "{s}");
        let want = if grant == "deny" { 403 } else { 200 };
        eventually(
            &format!("round {round}: the {grant} policy enforced"),
            async || {
                call(&steady, "GET", "secret/data/k1", &reader, None)
                    .await
                    .0
                    == want
            },
        )
        .await;
    }

    // Tokens and mounts created through the hasty listener exist whole.
    let (_, before) = call(&steady, "LIST", "auth/token/accessors", &root, None).await;
    let before = before["data"]["keys"].as_array().unwrap().len();
    for _ in 0..5 {
        let (s, _) = call(&hasty, "POST", "auth/token/create", &root, Some(json!({}))).await;
        assert!(s == 200 || s == 503, "{s}");
    }
    eventually("five more tokens", async || {
        let (_, after) = call(&steady, "LIST", "auth/token/accessors", &root, None).await;
        after["data"]["keys"].as_array().unwrap().len() == before + 5
    })
    .await;
    for i in 0..3 {
        let (s, _) = call(
            &hasty,
            "POST",
            &format!("sys/mounts/m{i}"),
            &root,
            Some(json!({"type": "kv", "options": {"version": "2"}})),
        )
        .await;
        assert!(s == 204 || s == 503, "{s}");
    }
    for i in 0..3 {
        eventually(&format!("mount m{i} routed"), async || {
            call(
                &steady,
                "POST",
                &format!("m{i}/data/x"),
                &root,
                Some(json!({"data": {"a": 1}})),
            )
            .await
            .0 == 200
        })
        .await;
    }
}
