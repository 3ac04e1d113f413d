//! Audit devices over real HTTP against the real binary: what is logged, what is hashed,
//! `sys/audit-hash`, per-device salts, `log_raw`, fail-closed, `SIGHUP` reopening, devices
//! declared in the config file, and API creation refused without the unsafe flag.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, raw};
use serde_json::{Value, json};

const ROOT: &str = "audit-root-token-5c1f";

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

async fn enable_file(server: &Server, name: &str, options: Value) -> (u16, Value) {
    raw(
        server,
        "PUT",
        &format!("sys/audit/{name}"),
        Some(ROOT),
        Some(json!({"type": "file", "options": options})),
    )
    .await
}

/// Polls `check` until it holds (no fixed sleeps).
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scripted_session_is_audited_without_any_plaintext_secret_or_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let log = dir.path().join("audit.log");
    let (s, b) = enable_file(&server, "file", json!({"file_path": log.to_str().unwrap()})).await;
    assert_eq!(s, 204, "{b}");

    // Set-up by root: AppRole, a policy, transit.
    for (path, body) in [
        ("sys/auth/approle", json!({"type": "approle"})),
        ("sys/mounts/transit", json!({"type": "transit"})),
        (
            "sys/policies/acl/app",
            json!({"policy": "path \"secret/data/*\" { capabilities = [\"create\", \"update\", \"read\"] }\npath \"transit/encrypt/*\" { capabilities = [\"update\"] }"}),
        ),
        ("auth/approle/role/app", json!({"token_policies": ["app"]})),
        ("transit/keys/k", json!({})),
    ] {
        let (s, b) = raw(&server, "POST", path, Some(ROOT), Some(body)).await;
        assert!(s == 204 || s == 200, "{path}: {s} {b}");
    }
    let (_, b) = raw(
        &server,
        "GET",
        "auth/approle/role/app/role-id",
        Some(ROOT),
        None,
    )
    .await;
    let role_id = b["data"]["role_id"].as_str().unwrap().to_owned();
    let (_, b) = raw(
        &server,
        "POST",
        "auth/approle/role/app/secret-id",
        Some(ROOT),
        None,
    )
    .await;
    let secret_id = b["data"]["secret_id"].as_str().unwrap().to_owned();

    // The session: login, KV write and read, transit encrypt, a denied request.
    let (s, login) = raw(
        &server,
        "POST",
        "auth/approle/login",
        None,
        Some(json!({"role_id": role_id, "secret_id": secret_id})),
    )
    .await;
    assert_eq!(s, 200, "{login}");
    let token = login["auth"]["client_token"].as_str().unwrap().to_owned();
    let accessor = login["auth"]["accessor"].as_str().unwrap().to_owned();
    let secret = "plaintext-secret-7d0c2b";
    let (s, _) = raw(
        &server,
        "POST",
        "secret/data/app",
        Some(&token),
        Some(json!({"data": {"password": secret, "port": 5432}})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, read) = raw(&server, "GET", "secret/data/app", Some(&token), None).await;
    assert_eq!(s, 200);
    let read_id = read["request_id"].as_str().unwrap().to_owned();
    let transit_plain = "dHJhbnNpdC1wbGFpbnRleHQtOWU0"; // base64 of a marker
    let (s, enc) = raw(
        &server,
        "POST",
        "transit/encrypt/k",
        Some(&token),
        Some(json!({"plaintext": transit_plain})),
    )
    .await;
    assert_eq!(s, 200, "{enc}");
    let ciphertext = enc["data"]["ciphertext"].as_str().unwrap().to_owned();
    let (s, _) = raw(&server, "GET", "sys/mounts", Some(&token), None).await;
    assert_eq!(s, 403);
    let (s, _) = raw(&server, "GET", "secret/data/app", Some("not-a-token"), None).await;
    assert_eq!(s, 403);
    // Raw unauthenticated endpoints are not audited.
    raw(&server, "GET", "sys/health", None, None).await;
    raw(&server, "GET", "sys/seal-status", None, None).await;

    let text = std::fs::read_to_string(&log).unwrap();
    for plain in [
        secret,
        ROOT,
        &token,
        &accessor,
        &secret_id,
        &role_id,
        transit_plain,
        &ciphertext,
        "not-a-token",
    ] {
        assert!(!text.contains(plain), "the audit log holds {plain:?}");
    }
    let entries = lines(&log);
    assert!(!entries.iter().any(|e| e["request"]["path"] == "sys/health"));
    assert!(
        !entries
            .iter()
            .any(|e| e["request"]["path"] == "sys/seal-status")
    );

    // Every request has one request line and one response line with the same id.
    let mut by_id: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for e in &entries {
        assert!(e["time"].as_str().unwrap().ends_with('Z'));
        by_id
            .entry(e["request"]["id"].as_str().unwrap().to_owned())
            .or_default()
            .push(e["type"].as_str().unwrap());
    }
    for (id, kinds) in &by_id {
        if entries
            .iter()
            .any(|e| e["request"]["id"] == id.as_str() && e["request"]["path"] == "sys/audit/test")
        {
            continue; // the enable-time probe has no response
        }
        assert_eq!(kinds, &["request", "response"], "request {id}");
    }
    // The envelope's request_id is the audit id.
    assert!(by_id.contains_key(&read_id));

    let find = |path: &str, kind: &str| -> Vec<&Value> {
        entries
            .iter()
            .filter(|e| e["request"]["path"] == path && e["type"] == kind)
            .collect()
    };
    // Login: request without a caller; response with the new token, hashed.
    let login_resp = find("auth/approle/login", "response")[0];
    let hashed_token = login_resp["auth"]["client_token"].as_str().unwrap();
    assert!(hashed_token.starts_with("hmac-sha256:"));
    assert!(
        login_resp["response"]["auth"]["accessor"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    assert_eq!(login_resp["request"]["mount_type"], "approle");
    assert_eq!(login_resp["request"]["mount_class"], "auth");
    assert!(
        find("auth/approle/login", "request")[0]["request"]["data"]["secret_id"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );

    // KV write: strings hashed, numbers readable; the caller is the login token.
    let write = entries
        .iter()
        .find(|e| {
            e["request"]["path"] == "secret/data/app"
                && e["type"] == "request"
                && e["request"]["operation"] == "create"
        })
        .unwrap();
    assert_eq!(write["request"]["data"]["data"]["port"], 5432);
    assert!(
        write["request"]["data"]["data"]["password"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    assert_eq!(write["auth"]["client_token"], hashed_token);
    assert_eq!(write["request"]["client_token"], hashed_token);
    assert_eq!(write["auth"]["policies"], json!(["app", "default"]));
    assert_eq!(write["auth"]["token_type"], "service");
    assert_eq!(write["auth"]["policy_results"]["allowed"], true);
    assert_eq!(write["request"]["mount_type"], "kv");
    assert_eq!(write["request"]["remote_address"], "127.0.0.1");
    let read_resp = find("secret/data/app", "response")
        .into_iter()
        .find(|e| e["request"]["id"] == read_id.as_str())
        .unwrap();
    assert_eq!(read_resp["response"]["data"]["data"]["port"], 5432);
    assert_eq!(
        read_resp["response"]["data"]["data"]["password"],
        write["request"]["data"]["data"]["password"]
    );

    // The denied request is logged, with its error, both ways.
    let denied = find("sys/mounts", "request");
    let denied = denied.last().unwrap();
    assert_eq!(denied["error"], "permission denied");
    assert_eq!(denied["auth"]["policy_results"]["allowed"], false);
    assert!(
        find("sys/mounts", "response").last().unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("permission denied")
    );
    // So is a request with an unknown token.
    let unknown = entries
        .iter()
        .filter(|e| e["request"]["path"] == "secret/data/app" && e["error"].is_string())
        .count();
    assert_eq!(unknown, 2, "request and response of the unknown-token read");
    // Transit: the plaintext and the ciphertext are hashed.
    let enc_resp = find("transit/encrypt/k", "response")[0];
    assert!(
        enc_resp["response"]["data"]["ciphertext"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_hash_reproduces_a_logged_hmac_and_each_device_has_its_own_salt() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let a = dir.path().join("a.log");
    let b = dir.path().join("b.log");
    assert_eq!(
        enable_file(&server, "a", json!({"file_path": a.to_str().unwrap()}))
            .await
            .0,
        204
    );
    assert_eq!(
        enable_file(&server, "b", json!({"file_path": b.to_str().unwrap()}))
            .await
            .0,
        204
    );
    let secret = "hash-me-0a9f";
    let (s, _) = raw(
        &server,
        "POST",
        "secret/data/h",
        Some(ROOT),
        Some(json!({"data": {"v": secret}})),
    )
    .await;
    assert_eq!(s, 200);

    let (s, ha) = raw(
        &server,
        "POST",
        "sys/audit-hash/a",
        Some(ROOT),
        Some(json!({"input": secret})),
    )
    .await;
    assert_eq!(s, 200, "{ha}");
    let (_, hb) = raw(
        &server,
        "POST",
        "sys/audit-hash/b",
        Some(ROOT),
        Some(json!({"input": secret})),
    )
    .await;
    let ha = ha["data"]["hash"].as_str().unwrap().to_owned();
    let hb = hb["data"]["hash"].as_str().unwrap().to_owned();
    assert!(ha.starts_with("hmac-sha256:"));
    assert_ne!(ha, hb, "two devices hash the same input differently");

    let logged = |path: &Path| {
        lines(path)
            .into_iter()
            .find(|e| e["request"]["path"] == "secret/data/h" && e["type"] == "request")
            .unwrap()["request"]["data"]["data"]["v"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(logged(&a), ha);
    assert_eq!(logged(&b), hb);

    // The root token is hashed the same way.
    let (_, root_hash) = raw(
        &server,
        "POST",
        "sys/audit-hash/a",
        Some(ROOT),
        Some(json!({"input": ROOT})),
    )
    .await;
    let first = &lines(&a)[1];
    assert_eq!(first["auth"]["client_token"], root_hash["data"]["hash"]);

    let (s, e) = raw(
        &server,
        "POST",
        "sys/audit-hash/nope",
        Some(ROOT),
        Some(json!({"input": "x"})),
    )
    .await;
    assert_eq!(
        (s, e),
        (400, json!({"errors": ["unknown audit backend \"nope/\""]}))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_raw_device_logs_values_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let log = dir.path().join("raw.log");
    let opts = json!({"file_path": log.to_str().unwrap(), "log_raw": "true"});
    assert_eq!(enable_file(&server, "raw", opts).await.0, 204);
    raw(
        &server,
        "POST",
        "secret/data/r",
        Some(ROOT),
        Some(json!({"data": {"v": "visible-3e1"}})),
    )
    .await;
    let entries = lines(&log);
    let req = entries
        .iter()
        .find(|e| e["request"]["path"] == "secret/data/r" && e["type"] == "request")
        .unwrap();
    assert_eq!(req["request"]["data"]["data"]["v"], "visible-3e1");
    assert_eq!(req["auth"]["client_token"], ROOT);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn requests_are_refused_while_no_device_can_write_and_sighup_follows_a_rotated_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let logs = dir.path().join("logs");
    let log = logs.join("audit.log");
    assert_eq!(
        enable_file(&server, "file", json!({"file_path": log.to_str().unwrap()}))
            .await
            .0,
        204
    );
    let pid = server.child.id().to_string();
    let hup = || {
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap();
    };

    // Rotation: rename, SIGHUP, the new file gets the new lines.
    let rotated = logs.join("audit.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    hup();
    eventually("a new audit file after SIGHUP", async || {
        raw(&server, "GET", "secret/data/x", Some(ROOT), None).await;
        log.exists() && !lines(&log).is_empty()
    })
    .await;
    let rotated_len = std::fs::read_to_string(&rotated).unwrap().len();
    raw(&server, "GET", "secret/data/x", Some(ROOT), None).await;
    assert_eq!(
        std::fs::read_to_string(&rotated).unwrap().len(),
        rotated_len
    );

    // Fail closed: the directory is replaced by a plain file, so the path cannot be opened.
    std::fs::remove_dir_all(&logs).unwrap();
    std::fs::write(&logs, b"not a directory").unwrap();
    hup();
    eventually("requests refused with 500", async || {
        raw(&server, "GET", "secret/data/x", Some(ROOT), None)
            .await
            .0
            == 500
    })
    .await;
    let (s, b) = raw(
        &server,
        "POST",
        "secret/data/y",
        Some(ROOT),
        Some(json!({"data": {"a": "b"}})),
    )
    .await;
    assert_eq!((s, b), (500, json!({"errors": ["internal error"]})));
    // Nothing was written: the request never reached the engine.
    std::fs::remove_file(&logs).unwrap();
    let (s, _) = raw(&server, "GET", "secret/data/y", Some(ROOT), None).await;
    assert_eq!(
        s, 404,
        "the refused write did not happen; the device writes again"
    );
    assert!(log.exists());
}

/// A read by a limited-use token spends a use, so its request line is written before it goes
/// on (not held for the response line as other KV reads are): a read refused because no device
/// can write leaves the token's uses as they were.
#[tokio::test(flavor = "multi_thread")]
async fn a_read_refused_for_want_of_a_device_spends_no_use_of_a_limited_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let logs = dir.path().join("logs");
    let log = logs.join("audit.log");
    let (s, b) = enable_file(&server, "file", json!({"file_path": log.to_str().unwrap()})).await;
    assert_eq!(s, 204, "{b}");
    let (s, _) = raw(
        &server,
        "POST",
        "secret/data/x",
        Some(ROOT),
        Some(json!({"data": {"a": "b"}})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, created) = raw(
        &server,
        "POST",
        "auth/token/create",
        Some(ROOT),
        Some(json!({"num_uses": 2})),
    )
    .await;
    assert_eq!(s, 200, "{created}");
    let limited = created["auth"]["client_token"].as_str().unwrap().to_owned();

    // No device can write: the directory is replaced by a plain file.
    std::fs::remove_dir_all(&logs).unwrap();
    std::fs::write(&logs, b"not a directory").unwrap();
    std::process::Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    eventually("requests refused with 500", async || {
        raw(&server, "GET", "secret/data/x", Some(ROOT), None)
            .await
            .0
            == 500
    })
    .await;
    let (s, _) = raw(&server, "GET", "secret/data/x", Some(&limited), None).await;
    assert_eq!(s, 500);

    // The device writes again: both uses are still there.
    std::fs::remove_file(&logs).unwrap();
    for use_ in 1..=2 {
        let (s, b) = raw(&server, "GET", "secret/data/x", Some(&limited), None).await;
        assert_eq!(s, 200, "use {use_}: {b}");
        assert_eq!(b["data"]["data"]["a"], "b");
    }
    let (s, _) = raw(&server, "GET", "secret/data/x", Some(&limited), None).await;
    assert_eq!(s, 403, "two uses, then the token is gone");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_declared_device_is_there_after_restart_and_api_creation_needs_the_unsafe_flag() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("declared.log");
    let config = dir.path().join("tresor.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"embedded\" {{ path = \"{}\" }}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n}}\naudit \"file\" \"declared/\" {{\n  description = \"from config\"\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
            dir.path().join("data.redb").display(),
            log.display()
        ),
    )
    .unwrap();
    let args = ["server".to_owned(), format!("-config={}", config.display())];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&args, dir.path());
    let (s, init) = raw(
        &server,
        "PUT",
        "sys/init",
        None,
        Some(json!({"secret_shares": 1, "secret_threshold": 1})),
    )
    .await;
    assert_eq!(s, 200);
    let key = init["keys"][0].as_str().unwrap().to_owned();
    let root = init["root_token"].as_str().unwrap().to_owned();
    raw(
        &server,
        "PUT",
        "sys/unseal",
        None,
        Some(json!({"key": key})),
    )
    .await;

    let (s, list) = raw(&server, "GET", "sys/audit", Some(&root), None).await;
    assert_eq!(s, 200);
    assert_eq!(
        list["data"]["declared/"],
        json!({"path": "declared/", "type": "file", "description": "from config", "local": false, "options": {"file_path": log.to_str().unwrap()}})
    );
    let (s, b) = raw(
        &server,
        "PUT",
        "sys/audit/other",
        Some(&root),
        Some(json!({"type": "file", "options": {"file_path": "discard"}})),
    )
    .await;
    assert_eq!(
        (s, b),
        (
            400,
            json!({"errors": ["cannot enable audit device via API; use declarative, config-based audit device management instead"]})
        )
    );
    let (s, b) = raw(&server, "DELETE", "sys/audit/declared", Some(&root), None).await;
    assert_eq!(
        (s, b),
        (
            400,
            json!({"errors": ["cannot disable configuration-managed audit device"]})
        )
    );
    let (_, h1) = raw(
        &server,
        "POST",
        "sys/audit-hash/declared",
        Some(&root),
        Some(json!({"input": "x"})),
    )
    .await;

    drop(server);
    let server = Server::start(&args, dir.path());
    raw(
        &server,
        "PUT",
        "sys/unseal",
        None,
        Some(json!({"key": key})),
    )
    .await;
    let (_, list) = raw(&server, "GET", "sys/audit", Some(&root), None).await;
    assert!(list["data"]["declared/"].is_object(), "{list}");
    // The salt was persisted: the same input hashes the same after restart.
    let (_, h2) = raw(
        &server,
        "POST",
        "sys/audit-hash/declared",
        Some(&root),
        Some(json!({"input": "x"})),
    )
    .await;
    assert_eq!(h1["data"]["hash"], h2["data"]["hash"]);
    assert!(
        lines(&log)
            .iter()
            .any(|e| e["request"]["path"] == "sys/audit-hash/declared")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn enabling_checks_the_device_and_disabling_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let log = dir.path().join("p.log");
    assert_eq!(
        enable_file(&server, "p", json!({"file_path": log.to_str().unwrap()}))
            .await
            .0,
        204
    );
    let (s, b) = enable_file(&server, "p", json!({"file_path": "discard"})).await;
    assert_eq!((s, b), (400, json!({"errors": ["path already in use"]})));
    let (s, b) = enable_file(&server, "q", json!({})).await;
    assert_eq!((s, b), (400, json!({"errors": ["file_path is required"]})));
    let (s, b) = raw(
        &server,
        "PUT",
        "sys/audit/q",
        Some(ROOT),
        Some(json!({"type": "nope"})),
    )
    .await;
    assert_eq!(
        (s, b),
        (400, json!({"errors": ["unknown backend type: \"nope\""]}))
    );
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"").unwrap();
    let (s, b) = enable_file(
        &server,
        "q",
        json!({"file_path": blocker.join("x.log").to_str().unwrap()}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        b["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("sanity check failed; unable to open"),
        "{b}"
    );
    let (s, _) = raw(&server, "DELETE", "sys/audit/unknown", Some(ROOT), None).await;
    assert_eq!(s, 204);
    let (s, _) = raw(&server, "DELETE", "sys/audit/p", Some(ROOT), None).await;
    assert_eq!(s, 204);
    let (_, list) = raw(&server, "GET", "sys/audit", Some(ROOT), None).await;
    assert_eq!(list["data"], json!({}));
}
