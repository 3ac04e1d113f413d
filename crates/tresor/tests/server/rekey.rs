//! Rekeying the unseal key shares against the real binary: `sys/rotate/root/*` end to end,
//! verification, cancel, errors, restart, crash safety, the legacy `sys/rekey/*` endpoints and
//! their listener option, and `tresor operator rekey`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{Server, embedded_config, raw};
use serde_json::{Value, json};

/// `sys/init` with `n` shares and threshold `t`: (hex keys, root token).
async fn init(server: &Server, n: u8, t: u8) -> (Vec<String>, String) {
    let (status, body) = raw(
        server,
        "PUT",
        "sys/init",
        None,
        Some(json!({"secret_shares": n, "secret_threshold": t})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (
        strings(&body["keys"]),
        body["root_token"].as_str().unwrap().to_owned(),
    )
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

/// Submits `keys` to `sys/unseal`; returns the last answer.
async fn unseal(server: &Server, keys: &[String]) -> (u16, Value) {
    let mut last = (0, Value::Null);
    for k in keys {
        last = raw(server, "PUT", "sys/unseal", None, Some(json!({"key": k}))).await;
        if last.0 != 200 {
            break;
        }
    }
    last
}

async fn seal_status(server: &Server) -> Value {
    raw(server, "GET", "sys/seal-status", None, None).await.1
}

async fn seal(server: &Server, root: &str) {
    let (status, body) = raw(server, "PUT", "sys/seal", Some(root), None).await;
    assert_eq!(status, 204, "{body}");
}

/// Starts an authenticated rekey; returns its nonce.
async fn start(server: &Server, root: &str, n: u8, t: u8, verify: bool) -> String {
    let (status, body) = raw(
        server,
        "PUT",
        "sys/rotate/root/init",
        Some(root),
        Some(json!({"secret_shares": n, "secret_threshold": t, "require_verification": verify})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["started"], true);
    body["data"]["nonce"].as_str().unwrap().to_owned()
}

/// Submits current shares until the rekey completes; returns the completing answer's data.
async fn update_all(server: &Server, root: &str, nonce: &str, keys: &[String]) -> Value {
    for (i, k) in keys.iter().enumerate() {
        let (status, body) = raw(
            server,
            "PUT",
            "sys/rotate/root/update",
            Some(root),
            Some(json!({"key": k, "nonce": nonce})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        if i + 1 < keys.len() {
            assert_eq!(body["data"]["progress"], i + 1, "{body}");
            assert_eq!(body["data"]["started"], true);
        } else {
            assert_eq!(body["data"]["complete"], true, "{body}");
            return body["data"].clone();
        }
    }
    unreachable!("no keys given")
}

fn tresor_cli(server: &Server, token: &str, args: &[&str]) -> std::process::Output {
    Command::new(common::BIN)
        .args(args)
        .env("VAULT_ADDR", &server.addr)
        .env("VAULT_TOKEN", token)
        .env("HOME", common::scratch_home())
        .output()
        .unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn config_server(dir: &Path) -> Server {
    let config = embedded_config(dir);
    Server::start(&["server", &format!("-config={}", config.display())], dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn rekey_3_of_5_to_2_of_3_then_only_the_new_keys_unseal_even_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = config_server(dir.path());
    let (old, root) = init(&server, 5, 3).await;
    assert_eq!(unseal(&server, &old[..3]).await.1["sealed"], false);
    let (status, body) = raw(
        &server,
        "PUT",
        "sys/mounts/kv",
        Some(&root),
        Some(json!({"type": "kv"})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = raw(
        &server,
        "PUT",
        "kv/app",
        Some(&root),
        Some(json!({"password": "kept"})),
    )
    .await;
    assert_eq!(status, 204);

    let (status, body) = raw(&server, "GET", "sys/rotate/root/init", Some(&root), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"],
        json!({"started": false, "t": 0, "n": 0, "required": 3})
    );
    let nonce = start(&server, &root, 3, 2, false).await;
    let done = update_all(&server, &root, &nonce, &old[1..4]).await;
    let new = strings(&done["keys"]);
    assert_eq!(new.len(), 3);
    assert_eq!(strings(&done["keys_base64"]).len(), 3);
    assert_eq!(done["nonce"], nonce.as_str());
    assert_eq!(done["verification_required"], false);
    assert!(new.iter().all(|k| !old.contains(k)));

    let status = seal_status(&server).await;
    assert_eq!(
        (status["n"].clone(), status["t"].clone()),
        (json!(3), json!(2))
    );
    let (_, body) = raw(&server, "GET", "sys/rotate/root/init", Some(&root), None).await;
    assert_eq!(body["data"]["started"], false, "the attempt is over");
    assert_eq!(body["data"]["required"], 2);

    // Sealed: two old shares (now a full quorum by count) no longer unseal.
    seal(&server, &root).await;
    let (status, body) = unseal(&server, &old[..2]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(seal_status(&server).await["sealed"], true);
    let (_, body) = unseal(&server, &new[1..3]).await;
    assert_eq!(body["sealed"], false, "{body}");
    let (_, body) = raw(&server, "GET", "kv/app", Some(&root), None).await;
    assert_eq!(body["data"]["password"], "kept", "the keyring is unchanged");

    // After kill -9 and restart, the store still wants the new keys.
    server.kill9();
    let server = config_server(dir.path());
    let status = seal_status(&server).await;
    assert_eq!(
        (status["n"].clone(), status["t"].clone()),
        (json!(3), json!(2))
    );
    assert_eq!(unseal(&server, &old[2..4]).await.0, 400);
    let (_, body) = unseal(&server, &[new[2].clone(), new[0].clone()]).await;
    assert_eq!(body["sealed"], false, "{body}");
    let (_, body) = raw(&server, "GET", "kv/app", Some(&root), None).await;
    assert_eq!(body["data"]["password"], "kept");
}

#[tokio::test(flavor = "multi_thread")]
async fn verification_installs_the_new_keys_only_once_a_threshold_of_them_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), "root-v");
    let root = "root-v";
    // The dev server has one share; rekey it to 3/2 with verification.
    let (_, status) = raw(&server, "GET", "sys/seal-status", None, None).await;
    assert_eq!(status["n"], 1);
    let (status, body) = raw(&server, "GET", "sys/rotate/root/verify", Some(root), None).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0], "no rotation configuration found");

    let dev_key = server
        .stdout_containing("Unseal Key:")
        .lines()
        .find_map(|l| l.trim().strip_prefix("Unseal Key: ").map(str::to_owned))
        .expect("the dev banner prints the unseal key");
    let nonce = start(&server, root, 3, 2, true).await;
    let (status, body) = raw(&server, "GET", "sys/rotate/root/verify", Some(root), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["started"], false);
    let done = update_all(&server, root, &nonce, std::slice::from_ref(&dev_key)).await;
    assert_eq!(done["verification_required"], true);
    let vnonce = done["verification_nonce"].as_str().unwrap().to_owned();
    assert!(!vnonce.is_empty() && vnonce != nonce);
    let new = strings(&done["keys"]);

    // Not active yet: the seal configuration is still 1/1.
    assert_eq!(seal_status(&server).await["n"], 1);
    let (status, body) = raw(
        &server,
        "PUT",
        "sys/rotate/root/update",
        Some(root),
        Some(json!({"key": dev_key, "nonce": nonce})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["errors"][0],
        format!(
            "rotation already finished; verification must be performed; nonce for the verification operation is \"{vnonce}\""
        )
    );
    let verify = |key: &str, nonce: &str| {
        let server = &server;
        let body = json!({"key": key, "nonce": nonce});
        async move {
            raw(
                server,
                "PUT",
                "sys/rotate/root/verify",
                Some(root),
                Some(body),
            )
            .await
        }
    };
    let (status, body) = verify(&new[0], "wrong").await;
    assert_eq!(status, 400);
    assert!(body["errors"][0].as_str().unwrap().contains(&vnonce));
    let (status, body) = verify(&new[0], &vnonce).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["progress"], 1);
    let (status, _) = verify(&new[0], &vnonce).await;
    assert_eq!(status, 400, "the same new share twice");

    // Restarting the verification forgets progress and changes the nonce.
    let (status, body) = raw(
        &server,
        "DELETE",
        "sys/rotate/root/verify",
        Some(root),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["progress"], 0);
    let vnonce2 = body["data"]["nonce"].as_str().unwrap().to_owned();
    assert_ne!(vnonce2, vnonce);

    // Two shares that do not combine into the new key: refused, nonce rotated, attempt kept.
    let (status, _) = verify(&new[0], &vnonce2).await;
    assert_eq!(status, 200);
    let mut wrong = hex::decode(&new[1]).unwrap();
    wrong[0] ^= 1;
    let (status, body) = verify(&hex::encode(&wrong), &vnonce2).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["errors"][0],
        "rotation verification failed; incorrect key shares supplied"
    );
    let (_, body) = raw(&server, "GET", "sys/rotate/root/verify", Some(root), None).await;
    let vnonce3 = body["data"]["nonce"].as_str().unwrap().to_owned();
    assert_ne!(vnonce3, vnonce2);
    assert_eq!(seal_status(&server).await["n"], 1);

    verify(&new[2], &vnonce3).await;
    let (status, body) = verify(&new[1], &vnonce3).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!({"complete": true, "nonce": vnonce3}));
    let status = seal_status(&server).await;
    assert_eq!(
        (status["n"].clone(), status["t"].clone()),
        (json!(3), json!(2))
    );
    seal(&server, root).await;
    // The old single share no longer opens anything: with a new share it does not combine.
    assert_eq!(unseal(&server, &[dev_key, new[0].clone()]).await.0, 400);
    assert_eq!(unseal(&server, &new[..2]).await.1["sealed"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_keeps_the_old_keys_at_every_stage_and_sealing_forgets_the_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let server = config_server(dir.path());
    let (old, root) = init(&server, 3, 2).await;
    unseal(&server, &old[..2]).await;

    // Cancel with progress.
    let nonce = start(&server, &root, 2, 2, false).await;
    let (status, body) = raw(
        &server,
        "PUT",
        "sys/rotate/root/update",
        Some(&root),
        Some(json!({"key": old[0], "nonce": nonce})),
    )
    .await;
    assert_eq!((status, body["data"]["progress"].clone()), (200, json!(1)));
    let (status, _) = raw(&server, "DELETE", "sys/rotate/root/init", Some(&root), None).await;
    assert_eq!(status, 204);
    let (status, body) = raw(
        &server,
        "PUT",
        "sys/rotate/root/update",
        Some(&root),
        Some(json!({"key": old[1], "nonce": nonce})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0], "no rotation in progress");

    // Cancel during verification: the new shares never become valid.
    let nonce = start(&server, &root, 2, 2, true).await;
    let done = update_all(&server, &root, &nonce, &old[1..3]).await;
    let new = strings(&done["keys"]);
    let (status, _) = raw(&server, "DELETE", "sys/rotate/root/init", Some(&root), None).await;
    assert_eq!(status, 204);
    assert_eq!(seal_status(&server).await["n"], 3);

    // Sealing forgets an attempt in progress.
    start(&server, &root, 2, 2, false).await;
    seal(&server, &root).await;
    assert_eq!(unseal(&server, &new).await.0, 400);
    assert_eq!(unseal(&server, &old[..2]).await.1["sealed"], false);
    let (_, body) = raw(&server, "GET", "sys/rotate/root/init", Some(&root), None).await;
    assert_eq!(body["data"]["started"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_nonce_duplicate_and_invalid_keys_are_refused_with_openbaos_words() {
    let dir = tempfile::tempdir().unwrap();
    let server = config_server(dir.path());
    let (old, root) = init(&server, 3, 2).await;
    unseal(&server, &old[..2]).await;
    let update = |key: String, nonce: String| {
        let server = &server;
        let root = root.clone();
        async move {
            raw(
                server,
                "PUT",
                "sys/rotate/root/update",
                Some(&root),
                Some(json!({"key": key, "nonce": nonce})),
            )
            .await
        }
    };
    let (status, body) = update(old[0].clone(), "x".into()).await;
    assert_eq!(
        (status, body["errors"][0].clone()),
        (400, json!("no rotation in progress"))
    );
    let nonce = start(&server, &root, 3, 2, false).await;
    let (status, body) = raw(
        &server,
        "PUT",
        "sys/rotate/root/init",
        Some(&root),
        Some(json!({"secret_shares": 3, "secret_threshold": 2})),
    )
    .await;
    assert_eq!(
        (status, body["errors"][0].clone()),
        (400, json!("rotation already in progress"))
    );
    let (status, body) = update(old[0].clone(), "wrong".into()).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["errors"][0],
        format!("incorrect nonce supplied; nonce for rotation is \"{nonce}\"")
    );
    let (status, body) = update("not a key!".into(), nonce.clone()).await;
    assert_eq!(
        (status, body["errors"][0].clone()),
        (400, json!("'key' must be a valid hex or base64 string"))
    );
    assert_eq!(update(old[0].clone(), nonce.clone()).await.0, 200);
    let (status, body) = update(old[0].clone(), nonce.clone()).await;
    assert_eq!(
        (status, body["errors"][0].clone()),
        (
            400,
            json!("given key has already been provided during this rotation")
        )
    );
    // A well-formed share (its own x coordinate) of no key: the quorum does not unwrap the
    // root key.
    let mut bytes = hex::decode(&old[1]).unwrap();
    bytes[0] ^= 1;
    let stranger = hex::encode(&bytes);
    let (status, body) = update(stranger, nonce.clone()).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["errors"][0],
        "failed to read root key: invalid key: failed to decrypt keys from storage: cipher: message authentication failed"
    );
    // The attempt survives with no progress; the right shares still complete it.
    let (_, body) = raw(&server, "GET", "sys/rotate/root/init", Some(&root), None).await;
    assert_eq!(
        (
            body["data"]["started"].clone(),
            body["data"]["progress"].clone()
        ),
        (json!(true), json!(0))
    );
    let done = update_all(&server, &root, &nonce, &old[1..3]).await;
    assert_eq!(strings(&done["keys"]).len(), 3);

    // Configuration errors.
    for (n, t, msg) in [
        (3, 5, "threshold cannot be larger than shares"),
        (
            3,
            1,
            "threshold must be greater than one for multiple shares",
        ),
        (256, 2, "shares must be less than 256"),
        (0, 0, "shares must be at least one"),
    ] {
        let (status, body) = raw(
            &server,
            "PUT",
            "sys/rotate/root/init",
            Some(&root),
            Some(json!({"secret_shares": n, "secret_threshold": t})),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(
            body["errors"][0],
            format!("invalid rotate seal configuration: {msg}")
        );
    }
    let (status, body) = raw(
        &server,
        "PUT",
        "sys/rotate/root/init",
        Some(&root),
        Some(json!({"secret_shares": 2, "secret_threshold": 2, "pgp_keys": ["a", "b"]})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .contains("not supported"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rotate_endpoints_need_a_token_with_the_right_policy_but_no_sudo() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), "root-acl");
    let root = "root-acl";
    let policy = r#"path "sys/rotate/root/*" { capabilities = ["read", "update", "delete"] }"#;
    let (status, _) = raw(
        &server,
        "PUT",
        "sys/policies/acl/rekeyer",
        Some(root),
        Some(json!({"policy": policy})),
    )
    .await;
    assert_eq!(status, 204);
    let (_, body) = raw(
        &server,
        "POST",
        "auth/token/create",
        Some(root),
        Some(json!({"policies": ["rekeyer"]})),
    )
    .await;
    let rekeyer = body["auth"]["client_token"].as_str().unwrap().to_owned();
    let (_, body) = raw(
        &server,
        "POST",
        "auth/token/create",
        Some(root),
        Some(json!({"policies": ["default"]})),
    )
    .await;
    let nobody = body["auth"]["client_token"].as_str().unwrap().to_owned();

    assert_eq!(
        raw(&server, "GET", "sys/rotate/root/init", None, None)
            .await
            .0,
        403
    );
    assert_eq!(
        raw(&server, "GET", "sys/rotate/root/init", Some(&nobody), None)
            .await
            .0,
        403
    );
    let (status, body) = raw(&server, "GET", "sys/rotate/root/init", Some(&rekeyer), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = raw(
        &server,
        "PUT",
        "sys/rotate/root/init",
        Some(&rekeyer),
        Some(json!({"secret_shares": 1, "secret_threshold": 1})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        raw(
            &server,
            "DELETE",
            "sys/rotate/root/init",
            Some(&rekeyer),
            None
        )
        .await
        .0,
        204
    );
    let (status, body) = raw(
        &server,
        "GET",
        "sys/rotate/root/backup",
        Some(&rekeyer),
        None,
    )
    .await;
    assert_eq!(
        (status, body["errors"][0].clone()),
        (400, json!("no backed-up keys found"))
    );
}

/// A config with two listeners on free ports: the first with the defaults, the second with
/// the legacy unauthenticated rekey endpoints enabled.
fn two_listener_server(dir: &Path) -> (Server, String) {
    let path = dir.join("two.hcl");
    std::fs::write(
        &path,
        "storage \"inmem\" {}\n\nlistener \"tcp\" {\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n}\n\nlistener \"tcp\" {\n  address = \"127.0.0.2:0\"\n  tls_disable = true\n  disable_unauthed_rekey_endpoints = false\n}\n",
    )
    .unwrap();
    let server = Server::start(&["server", &format!("-config={}", path.display())], dir);
    let banner = server.stdout_containing("Listener 2:");
    let second = banner
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Listener 2: tcp (addr: \"")
                .and_then(|r| r.split('"').next())
                .map(|a| format!("http://{a}"))
        })
        .expect("the banner names the second listener");
    (server, second)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_legacy_endpoints_are_off_by_default_and_served_where_the_listener_enables_them() {
    let dir = tempfile::tempdir().unwrap();
    let (server, enabled_addr) = two_listener_server(dir.path());
    let (old, root) = init(&server, 3, 2).await;

    // Sealed: both listeners' paths answer 503 or the raw status.
    let (status, _) = raw(&server, "GET", "sys/rekey/init", None, None).await;
    assert_eq!(status, 503);
    unseal(&server, &old[..2]).await;
    for (method, path) in [
        ("GET", "sys/rekey/init"),
        ("PUT", "sys/rekey/init"),
        ("DELETE", "sys/rekey/init"),
        ("PUT", "sys/rekey/update"),
        ("GET", "sys/rekey/verify"),
    ] {
        let (status, body) = raw(&server, method, path, None, None).await;
        assert_eq!(status, 405, "{method} {path}: {body}");
        assert_eq!(body["errors"][0], "unsupported operation");
    }

    // The second listener serves them without a token.
    let enabled = Server {
        child: Command::new("true").spawn().unwrap(),
        addr: enabled_addr,
        log: server.log.clone(),
        stdout_lines: Default::default(),
    };
    let (status, body) = raw(&enabled, "GET", "sys/rekey/init", None, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["required"], 2);
    let (status, body) = raw(
        &enabled,
        "PUT",
        "sys/rekey/init",
        None,
        Some(json!({"secret_shares": 2, "secret_threshold": 2})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let nonce = body["nonce"].as_str().unwrap().to_owned();
    // The authenticated attempt is a separate one.
    let (_, body) = raw(&server, "GET", "sys/rotate/root/init", Some(&root), None).await;
    assert_eq!(body["data"]["started"], false);
    let (status, body) = raw(
        &enabled,
        "PUT",
        "sys/rekey/update",
        None,
        Some(json!({"key": old[0], "nonce": "nope"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["errors"][0],
        format!("incorrect nonce supplied; nonce for this rekey operation is \"{nonce}\"")
    );
    let (status, body) = raw(
        &enabled,
        "PUT",
        "sys/rekey/update",
        None,
        Some(json!({"key": "abcd", "nonce": nonce})),
    )
    .await;
    assert_eq!(
        (status, body["errors"][0].clone()),
        (400, json!("key is shorter than minimum 16 bytes"))
    );
    raw(
        &enabled,
        "PUT",
        "sys/rekey/update",
        None,
        Some(json!({"key": old[0], "nonce": nonce})),
    )
    .await;
    let (status, body) = raw(
        &enabled,
        "PUT",
        "sys/rekey/update",
        None,
        Some(json!({"key": old[2], "nonce": nonce})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["complete"], true);
    let new = strings(&body["keys"]);
    assert_eq!(new.len(), 2);
    seal(&server, &root).await;
    assert_eq!(unseal(&server, &new).await.1["sealed"], false);
}

/// Runs one rekey with verification whose final `verify` crashes the server at `point`;
/// returns (old keys, new keys) and leaves the server dead.
async fn crash_during_install(dir: &Path, point: &str) -> (Vec<String>, Vec<String>) {
    let config = embedded_config(dir);
    let args = ["server".to_owned(), format!("-config={}", config.display())];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with_env(&args, &[(point, "1")], dir);
    let (old, root) = init(&server, 3, 2).await;
    unseal(&server, &old[..2]).await;
    let nonce = start(&server, &root, 2, 2, true).await;
    let done = update_all(&server, &root, &nonce, &old[..2]).await;
    let new = strings(&done["keys"]);
    let vnonce = done["verification_nonce"].as_str().unwrap().to_owned();
    raw(
        &server,
        "PUT",
        "sys/rotate/root/verify",
        Some(&root),
        Some(json!({"key": new[0], "nonce": vnonce})),
    )
    .await;
    let answer = common::http()
        .put(server.url("sys/rotate/root/verify"))
        .header("X-Vault-Token", &root)
        .json(&json!({"key": new[1], "nonce": vnonce}))
        .send()
        .await;
    assert!(
        answer.is_err(),
        "the failpoint ends the process before it answers"
    );
    let mut server = server;
    assert!(!server.child.wait().unwrap().success());
    (old, new)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_while_installing_leaves_a_store_that_exactly_one_key_set_unseals() {
    // Before the commit: the old shares stay valid.
    let dir = tempfile::tempdir().unwrap();
    let (old, new) =
        crash_during_install(dir.path(), "TRESOR_FAILPOINT_REKEY_CRASH_BEFORE_COMMIT").await;
    let server = config_server(dir.path());
    assert_eq!(seal_status(&server).await["n"], 3);
    assert_eq!(unseal(&server, &new).await.0, 400);
    assert_eq!(unseal(&server, &old[1..3]).await.1["sealed"], false);
    drop(server);

    // After the commit: the new shares (handed out before verification) are the valid ones.
    let dir = tempfile::tempdir().unwrap();
    let (old, new) =
        crash_during_install(dir.path(), "TRESOR_FAILPOINT_REKEY_CRASH_AFTER_COMMIT").await;
    let server = config_server(dir.path());
    let status = seal_status(&server).await;
    assert_eq!(
        (status["n"].clone(), status["t"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(unseal(&server, &old[..2]).await.0, 400);
    assert_eq!(unseal(&server, &new).await.1["sealed"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn tresor_operator_rekey_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let server = config_server(dir.path());
    let (old, root) = init(&server, 3, 2).await;
    unseal(&server, &old[..2]).await;

    let out = tresor_cli(&server, &root, &["operator", "rekey", "-status"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).contains("Started    false"),
        "{}",
        stdout(&out)
    );

    let out = tresor_cli(&server, &root, &["operator", "rekey", "-nonce=x", &old[0]]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("No rekey is in progress"));

    let out = tresor_cli(
        &server,
        &root,
        &[
            "operator",
            "rekey",
            "-init",
            "-key-shares=4",
            "-key-threshold=3",
            "-format=json",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            status["n"].clone(),
            status["t"].clone(),
            status["required"].clone()
        ),
        (json!(4), json!(3), json!(2))
    );
    let nonce = status["nonce"].as_str().unwrap().to_owned();

    let out = tresor_cli(
        &server,
        &root,
        &["operator", "rekey", &format!("-nonce={nonce}"), &old[0]],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).contains("Progress                 1/2"),
        "{}",
        stdout(&out)
    );

    // The last share from stdin.
    let mut child = Command::new(common::BIN)
        .args(["operator", "rekey", &format!("-nonce={nonce}"), "-"])
        .env("VAULT_ADDR", &server.addr)
        .env("VAULT_TOKEN", &root)
        .env("HOME", common::scratch_home())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}\n", old[2]).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let new: Vec<String> = text
        .lines()
        .filter_map(|l| {
            l.split_once(": ")
                .filter(|(k, _)| k.starts_with("Key "))
                .map(|(_, v)| v.to_owned())
        })
        .collect();
    assert_eq!(new.len(), 4, "{text}");
    assert!(
        text.contains("rekeyed to 4 key shares and a key threshold of 3"),
        "{text}"
    );

    let out = tresor_cli(&server, &root, &["operator", "rekey", "-cancel"]);
    assert!(stdout(&out).contains("Success! Canceled rekeying (if it was started)"));

    seal(&server, &root).await;
    // The CLI prints base64 shares; sys/unseal takes either encoding.
    assert_eq!(unseal(&server, &new[1..4]).await.1["sealed"], false);
}
