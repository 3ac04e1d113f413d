//! HA node behaviour on `storage "postgresql"` with real `tresor` processes sharing one
//! database of the real PostgreSQL (each test its own, `haforward_<random>`): request
//! forwarding from a standby to the active node (vaultrs and hvac reading and writing through
//! a standby, the answer passed on unchanged, the client's address carried for CIDR bindings,
//! the 307 fallbacks, a 5xx and no hang when the active node dies or freezes mid-forward),
//! `cluster_addr` and `cluster_address`, `sys/seal` on a standby, a node started before
//! `sys/init`, a take-over after a root key rotation with an auto seal, and
//! `tresor operator step-down`.
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
use std::time::{Duration, Instant};

use common::ha::{
    self, active_of, free_port, health, health_becomes, init_shamir, knows_leader, send, start,
    unseal,
};
use common::{BIN, Server};
use serde_json::{Value, json};
use tresor_storage::test_db::TestDb as Db;

/// One node's configuration: HA on the test's database, a listener on `port`, `api_addr`
/// there, and `extra` lines (top-level settings, a seal stanza, more listeners).
fn node_config(db: &Db, dir: &Path, name: &str, port: u16, extra: &str) -> PathBuf {
    node_config_with(db, dir, name, port, "", extra)
}

/// As [`node_config`], with `listener` lines in the first listener block.
fn node_config_with(
    db: &Db,
    dir: &Path,
    name: &str,
    port: u16,
    listener: &str,
    extra: &str,
) -> PathBuf {
    ha::write_config(dir, name, &db.url(), port, "", listener, extra)
}

/// A client that shows what a node itself answers (no redirects followed), patient enough
/// for a forward that waits for a frozen active node.
fn plain() -> reqwest::Client {
    ha::plain_with(Duration::from_secs(30), None)
}

/// The JSON body without what differs between two answers to the same request.
fn comparable(mut body: Value) -> Value {
    if let Some(obj) = body.as_object_mut() {
        obj.remove("request_id");
    }
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_forwards_every_request_to_the_active_node_and_returns_its_answer() {
    let db = Db::new("haforward_fw").await;
    let dir = tempfile::tempdir().unwrap();
    let client = plain();
    let (p0, p1, p2, p1_v6) = (free_port(), free_port(), free_port(), free_port());
    let n0 = start(
        &node_config(
            &db,
            dir.path(),
            "fw_node0",
            p0,
            "cluster_addr = \"https://node-0.example:9999\"\n",
        ),
        dir.path(),
    );
    let (key, root) = init_shamir(&client, &n0.addr).await;
    // node 1 also listens on [::1], so that a client reaches it from another address than the
    // one it reaches the active node from (127.0.0.1); its cluster port is its listener's.
    let n1 = start(
        &node_config_with(
            &db,
            dir.path(),
            "fw_node1",
            p1,
            &format!(
                "  cluster_address = \"127.0.0.1:{}\"\n",
                p1.saturating_sub(7)
            ),
            &format!(
                "listener \"tcp\" {{\n  address     = \"[::1]:{p1_v6}\"\n  tls_disable = true\n}}\n"
            ),
        ),
        dir.path(),
    );
    // node 2 does not forward: Vault's disable_clustering.
    let n2 = start(
        &node_config(
            &db,
            dir.path(),
            "fw_node2",
            p2,
            "disable_clustering = true\n",
        ),
        dir.path(),
    );
    unseal(&client, &n0.addr, &key).await;
    health_becomes(&client, &n0.addr, 200, Duration::from_secs(10)).await;
    unseal(&client, &n1.addr, &key).await;
    unseal(&client, &n2.addr, &key).await;
    let (active, standby, redirecting) = (n0.addr.clone(), n1.addr.clone(), n2.addr.clone());
    let standby_v6 = format!("http://[::1]:{p1_v6}");
    health_becomes(&client, &standby, 429, Duration::from_secs(10)).await;
    health_becomes(&client, &redirecting, 429, Duration::from_secs(10)).await;

    // sys/leader names the active node's cluster_addr as configured.
    let leader = knows_leader(&client, &standby, &active).await;
    assert_eq!(leader["is_self"], false, "{leader}");
    assert_eq!(
        leader["leader_cluster_address"], "https://node-0.example:9999",
        "{leader}"
    );

    // Writes and reads through the standby: answered by the active node, not redirected.
    let (status, _, body) = send(
        &client,
        &standby,
        "POST",
        "sys/mounts/secret",
        Some(&root),
        Some(json!({"type": "kv", "options": {"version": "2"}})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, headers, body) = send(
        &client,
        &standby,
        "PUT",
        "secret/data/one",
        Some(&root),
        Some(json!({"data": {"v": "through the standby"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(body["data"]["version"], 1, "{body}");

    // The same read through the standby and directly: same status, content type and body.
    for (path, token) in [
        ("secret/data/one", root.as_str()),
        ("secret/data/missing", root.as_str()),
        ("secret/data/one", "not-a-token"),
        ("sys/mounts", root.as_str()),
    ] {
        let (s1, h1, b1) = send(&client, &standby, "GET", path, Some(token), None).await;
        let (s2, h2, b2) = send(&client, &active, "GET", path, Some(token), None).await;
        assert_eq!(s1, s2, "{path}: {b1} / {b2}");
        assert_eq!(h1.get("content-type"), h2.get("content-type"), "{path}");
        assert_eq!(comparable(b1), comparable(b2), "{path}");
    }
    let (status, _, body) = send(
        &client,
        &standby,
        "GET",
        "secret/data/one",
        Some("not-a-token"),
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["errors"].is_array(), "{body}");

    // sys/ha-status through the standby: forwarded; each node's cluster address as set.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, body) =
            send(&client, &standby, "GET", "sys/ha-status", Some(&root), None).await;
        assert_eq!(status, 200, "{body}");
        let nodes = body["data"]["nodes"].as_array().unwrap().clone();
        if nodes.len() == 3 {
            let cluster = |api: &str| {
                nodes
                    .iter()
                    .find(|n| n["api_address"] == api)
                    .map(|n| n["cluster_address"].clone())
                    .unwrap()
            };
            assert_eq!(cluster(&active), "https://node-0.example:9999");
            assert_eq!(
                cluster(&standby),
                format!("https://127.0.0.1:{}", p1.saturating_sub(7))
            );
            assert_eq!(cluster(&redirecting), "", "disable_clustering reports none");
            break;
        }
        assert!(Instant::now() < deadline, "ha-status: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A real client through the standby: vaultrs.
    let vaultrs = common::vault_client(&standby, &root);
    let mut data = std::collections::HashMap::new();
    data.insert("user", "vaultrs");
    vaultrs::kv2::set(&vaultrs, "secret", "vaultrs", &data)
        .await
        .unwrap();
    let read: std::collections::HashMap<String, String> =
        vaultrs::kv2::read(&vaultrs, "secret", "vaultrs")
            .await
            .unwrap();
    assert_eq!(read["user"], "vaultrs");
    let (_, _, direct) = send(
        &client,
        &active,
        "GET",
        "secret/data/vaultrs",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(direct["data"]["data"]["user"], "vaultrs", "{direct}");

    // hvac through the standby.
    run_hvac(
        &standby,
        &root,
        "c.secrets.kv.v2.create_or_update_secret(path='hvac', secret={'user': 'hvac'}, mount_point='secret')\n\
         r = c.secrets.kv.v2.read_secret_version(path='hvac', mount_point='secret', raise_on_deleted_version=True)\n\
         assert r['data']['data'] == {'user': 'hvac'}, r\n\
         assert 'secret/' in c.sys.list_mounted_secrets_engines()['data'], 'mounts'\n\
         l = c.sys.read_leader_status()\n\
         assert l['is_self'] is False, l\n",
    );
    let (_, _, direct) = send(
        &client,
        &active,
        "GET",
        "secret/data/hvac",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(direct["data"]["data"]["user"], "hvac", "{direct}");

    // The client's own address reaches the active node: a token bound to ::1 works through
    // the standby reached over ::1, and not from 127.0.0.1.
    for (method, path, body) in [
        ("POST", "sys/auth/approle", json!({"type": "approle"})),
        (
            "POST",
            "auth/approle/role/v6",
            json!({"token_bound_cidrs": ["::1/128"], "secret_id_bound_cidrs": ["::1/128"], "token_policies": ["default"]}),
        ),
    ] {
        let (status, _, answer) =
            send(&client, &active, method, path, Some(&root), Some(body)).await;
        assert!(status == 204 || status == 200, "{path}: {answer}");
    }
    let (_, _, role) = send(
        &client,
        &active,
        "GET",
        "auth/approle/role/v6/role-id",
        Some(&root),
        None,
    )
    .await;
    let role_id = role["data"]["role_id"].as_str().unwrap().to_owned();
    let (_, _, secret) = send(
        &client,
        &active,
        "POST",
        "auth/approle/role/v6/secret-id",
        Some(&root),
        None,
    )
    .await;
    let secret_id = secret["data"]["secret_id"].as_str().unwrap().to_owned();
    let login = json!({"role_id": role_id, "secret_id": secret_id});
    let (status, _, body) = send(
        &client,
        &active,
        "POST",
        "auth/approle/login",
        None,
        Some(login.clone()),
    )
    .await;
    assert!(
        status == 400 || status == 403,
        "from 127.0.0.1 the secret id is refused: {status} {body}"
    );
    let (status, _, body) = send(
        &client,
        &standby_v6,
        "POST",
        "auth/approle/login",
        None,
        Some(login),
    )
    .await;
    assert_eq!(status, 200, "from ::1 through the standby: {body}");
    let bound = body["auth"]["client_token"].as_str().unwrap().to_owned();
    let (status, _, body) = send(
        &client,
        &standby_v6,
        "GET",
        "auth/token/lookup-self",
        Some(&bound),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = send(
        &client,
        &standby,
        "GET",
        "auth/token/lookup-self",
        Some(&bound),
        None,
    )
    .await;
    assert_eq!(status, 403, "through the standby from 127.0.0.1: {body}");
    // A made-up client address is not believed.
    let forged = client
        .get(format!("{active}/v1/auth/token/lookup-self"))
        .header("X-Vault-Token", &bound)
        .header(
            "X-Tresor-Forwarded-Client",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )
        .header("X-Forwarded-For", "::1")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);

    // The 307 fallbacks: the client asks for it; a node with disable_clustering.
    let asked = client
        .get(format!("{standby}/v1/secret/data/one?version=1"))
        .header("X-Vault-Token", &root)
        .header("X-Vault-No-Request-Forwarding", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 307);
    assert_eq!(
        asked.headers()["location"],
        format!("{active}/v1/secret/data/one?version=1").as_str()
    );
    let (status, headers, _) = send(
        &client,
        &redirecting,
        "GET",
        "secret/data/one",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(status, 307);
    assert_eq!(
        headers["location"],
        format!("{active}/v1/secret/data/one").as_str()
    );

    // sys/seal on a standby: OpenBao's refusal, and the node stays unsealed.
    let (status, _, body) = send(&client, &standby, "PUT", "sys/seal", Some(&root), None).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        body["errors"][0],
        "vault cannot seal when in standby mode; please restart instead"
    );
    assert_eq!(health(&client, &standby).await, Some(429));

    // The token never reaches the logs of either node.
    for server in [&n0, &n1] {
        let log = server.log_text();
        assert!(!log.contains(&root), "a token in a log:\n{log}");
        assert!(!log.contains(&bound), "a token in a log:\n{log}");
    }
    drop(n2);
}

/// Runs Python `body` with `c`, an hvac client for `addr` and `token`; it must finish.
fn run_hvac(addr: &str, token: &str, body: &str) {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.build/venv/bin/python");
    assert!(python.exists(), "{} is missing", python.display());
    let script = format!(
        "import sys, hvac\nc = hvac.Client(url=sys.argv[1], token=sys.argv[2])\n{body}print('ok')\n"
    );
    let out = Command::new(&python)
        .args(["-c", &script, addr, token])
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "hvac: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_or_frozen_active_node_gives_a_5xx_envelope_not_a_hang() {
    let db = Db::new("haforward_dead").await;
    let dir = tempfile::tempdir().unwrap();
    let client = plain();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut nodes: Vec<Option<Server>> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let config = node_config(&db, dir.path(), &format!("dead_node{i}"), *port, "");
        nodes.push(Some(start(&config, dir.path())));
    }
    let addrs: Vec<String> = nodes
        .iter()
        .map(|n| n.as_ref().unwrap().addr.clone())
        .collect();
    let (key, root) = init_shamir(&client, &addrs[0]).await;
    for addr in &addrs {
        unseal(&client, addr, &key).await;
    }
    let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    let a = active_of(&client, &refs, Duration::from_secs(10)).await;
    let s = (a + 1) % 3;
    knows_leader(&client, &addrs[s], &addrs[a]).await;
    let (status, _, body) = send(
        &client,
        &addrs[s],
        "POST",
        "sys/mounts/secret",
        Some(&root),
        Some(json!({"type": "kv", "options": {"version": "2"}})),
    )
    .await;
    assert_eq!(status, 204, "{body}");

    // Frozen mid-forward (SIGSTOP): the forward is abandoned once the standby no longer sees
    // that node as active (its lock lapses within 3 s), with a 502 envelope.
    let pid = nodes[a].as_ref().unwrap().child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let asked = Instant::now();
    let (status, _, body) = send(
        &client,
        &addrs[s],
        "PUT",
        "secret/data/frozen",
        Some(&root),
        Some(json!({"data": {"v": 1}})),
    )
    .await;
    let took = asked.elapsed();
    eprintln!("forward to a frozen active node answered {status} after {took:?}");
    assert_eq!(status, 502, "{body}");
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .contains("may or may not have been applied"),
        "{body}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(
        Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    nodes[a].take().unwrap().kill9();

    // A new active node among the two others; then it dies (kill -9) and a request forwarded
    // before the survivor notices gets a 503 at once (nothing was sent).
    let live: Vec<usize> = (0..3).filter(|i| *i != a).collect();
    let live_refs: Vec<&str> = live.iter().map(|i| addrs[*i].as_str()).collect();
    let b = live[active_of(&client, &live_refs, Duration::from_secs(10)).await];
    let c = live.iter().copied().find(|i| *i != b).unwrap();
    knows_leader(&client, &addrs[c], &addrs[b]).await;
    nodes[b].take().unwrap().kill9();
    let asked = Instant::now();
    let (status, _, body) = send(
        &client,
        &addrs[c],
        "GET",
        "secret/data/frozen",
        Some(&root),
        None,
    )
    .await;
    let took = asked.elapsed();
    eprintln!("forward to a dead active node answered {status} after {took:?}");
    assert_eq!(status, 503, "{body}");
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .starts_with(&format!("cannot reach the active node {}", addrs[b])),
        "{body}"
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
    // And the survivor takes over and serves.
    health_becomes(&client, &addrs[c], 200, Duration::from_secs(10)).await;
    drop(nodes);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_started_before_init_joins_without_a_restart_and_never_initialises_again() {
    let db = Db::new("haforward_init").await;
    let dir = tempfile::tempdir().unwrap();
    let client = plain();
    let n0 = start(
        &node_config(&db, dir.path(), "init_node0", free_port(), ""),
        dir.path(),
    );
    let n1 = start(
        &node_config(&db, dir.path(), "init_node1", free_port(), ""),
        dir.path(),
    );
    let (_, _, status) = send(&client, &n1.addr, "GET", "sys/seal-status", None, None).await;
    assert_eq!(status["initialized"], false, "{status}");

    let (key, root) = init_shamir(&client, &n0.addr).await;
    unseal(&client, &n0.addr, &key).await;
    health_becomes(&client, &n0.addr, 200, Duration::from_secs(10)).await;
    let (status, _, body) = send(
        &client,
        &n0.addr,
        "POST",
        "sys/mounts/secret",
        Some(&root),
        Some(json!({"type": "kv", "options": {"version": "2"}})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, _, body) = send(
        &client,
        &n0.addr,
        "PUT",
        "secret/data/kept",
        Some(&root),
        Some(json!({"data": {"v": "kept"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // The other node sees the initialisation by itself.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, _, status) = send(&client, &n1.addr, "GET", "sys/seal-status", None, None).await;
        if status["initialized"] == true {
            assert_eq!(status["sealed"], true, "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // sys/init there is refused: it never wipes the initialised store.
    let (status, _, body) = send(
        &client,
        &n1.addr,
        "PUT",
        "sys/init",
        None,
        Some(json!({"secret_shares": 1, "secret_threshold": 1})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    unseal(&client, &n1.addr, &key).await;
    health_becomes(&client, &n1.addr, 429, Duration::from_secs(5)).await;
    knows_leader(&client, &n1.addr, &n0.addr).await;
    let (status, _, body) = send(
        &client,
        &n1.addr,
        "GET",
        "secret/data/kept",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["data"]["v"], "kept");

    // It takes over when the active node steps down, with the CLI; without sudo it is refused.
    let (status, _, body) = send(
        &client,
        &n0.addr,
        "POST",
        "auth/token/create",
        Some(&root),
        Some(json!({"policies": ["default"]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let plain_token = body["auth"]["client_token"].as_str().unwrap().to_owned();
    let refused = cli(&["operator", "step-down"], &n0.addr, &plain_token);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("permission denied"),
        "{refused:?}"
    );
    assert_eq!(health(&client, &n0.addr).await, Some(200));
    let stepped = cli(&["operator", "step-down"], &n0.addr, &root);
    assert!(stepped.status.success(), "{stepped:?}");
    assert_eq!(
        String::from_utf8_lossy(&stepped.stdout).trim(),
        format!("Success! Stepped down: {}", n0.addr)
    );
    health_becomes(&client, &n1.addr, 200, Duration::from_secs(5)).await;
    assert_eq!(health(&client, &n0.addr).await, Some(429));
    let (status, _, body) = send(
        &client,
        &n1.addr,
        "GET",
        "secret/data/kept",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

fn cli(args: &[&str], addr: &str, token: &str) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("HOME", common::scratch_home())
        .env_remove("TRESOR_ADDR")
        .env_remove("TRESOR_TOKEN")
        .env("VAULT_ADDR", addr)
        .env("VAULT_TOKEN", token)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_takes_over_after_the_root_key_was_rotated_with_an_auto_seal() {
    let db = Db::new("haforward_rot").await;
    let dir = tempfile::tempdir().unwrap();
    let client = plain();
    let key_file = dir.path().join("static.key");
    std::fs::write(&key_file, [7u8; 32]).unwrap();
    let seal = format!(
        "seal \"static\" {{\n  current_key_id = \"k1\"\n  current_key    = \"file://{}\"\n}}\n",
        key_file.display()
    );
    // Both start before sys/init: the second unseals itself once the first initialised.
    let n0 = start(
        &node_config(&db, dir.path(), "rot_node0", free_port(), &seal),
        dir.path(),
    );
    let n1 = start(
        &node_config(&db, dir.path(), "rot_node1", free_port(), &seal),
        dir.path(),
    );
    let (status, _, init) = send(
        &client,
        &n0.addr,
        "PUT",
        "sys/init",
        None,
        Some(json!({"recovery_shares": 1, "recovery_threshold": 1})),
    )
    .await;
    assert_eq!(status, 200, "{init}");
    let recovery = init["recovery_keys_base64"][0].as_str().unwrap().to_owned();
    let root = init["root_token"].as_str().unwrap().to_owned();
    let addrs = [n0.addr.as_str(), n1.addr.as_str()];
    let a = active_of(&client, &addrs, Duration::from_secs(15)).await;
    let s = 1 - a;
    knows_leader(&client, addrs[s], addrs[a]).await;
    let (status, _, body) = send(
        &client,
        addrs[s],
        "POST",
        "sys/mounts/secret",
        Some(&root),
        Some(json!({"type": "kv", "options": {"version": "2"}})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, _, body) = send(
        &client,
        addrs[a],
        "PUT",
        "secret/data/before",
        Some(&root),
        Some(json!({"data": {"v": "before the rotation"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Rotate the root key on the active node, with the recovery share.
    let (status, _, body) = send(
        &client,
        addrs[a],
        "PUT",
        "sys/rotate/root/init",
        Some(&root),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let nonce = body["data"]["nonce"].as_str().unwrap().to_owned();
    let (status, _, body) = send(
        &client,
        addrs[a],
        "PUT",
        "sys/rotate/root/update",
        Some(&root),
        Some(json!({"key": recovery, "nonce": nonce})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["complete"], true, "{body}");

    // The standby takes over after a step-down, and serves what was written.
    let (status, _, body) =
        send(&client, addrs[a], "PUT", "sys/step-down", Some(&root), None).await;
    assert_eq!(status, 204, "{body}");
    health_becomes(&client, addrs[s], 200, Duration::from_secs(5)).await;
    let (status, _, body) = send(
        &client,
        addrs[s],
        "GET",
        "secret/data/before",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["data"]["v"], "before the rotation");
    let (status, _, body) = send(
        &client,
        addrs[s],
        "PUT",
        "secret/data/after",
        Some(&root),
        Some(json!({"data": {"v": "after"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // And back: the node that rotated takes over again and reads the new write.
    let (status, _, body) =
        send(&client, addrs[s], "PUT", "sys/step-down", Some(&root), None).await;
    assert_eq!(status, 204, "{body}");
    health_becomes(&client, addrs[a], 200, Duration::from_secs(8)).await;
    let (status, _, body) = send(
        &client,
        addrs[a],
        "GET",
        "secret/data/after",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarding_to_an_https_api_addr_trusts_only_the_configured_ca() {
    let db = Db::new("haforward_tls").await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::self_signed(dir.path(), "IP:127.0.0.1");
    let pem = std::fs::read(&cert).unwrap();
    let client = ha::plain_with(Duration::from_secs(30), Some(&pem));
    // Every node serves the same certificate over TLS; the first two trust it for forwarding,
    // the third trusts only the system's roots.
    let mut nodes = Vec::new();
    for (i, trust) in [true, true, false].into_iter().enumerate() {
        let port = free_port();
        let path = dir.path().join(format!("tls_node{i}.hcl"));
        std::fs::write(
            &path,
            format!(
                "storage \"postgresql\" {{\n  connection_url = \"postgres://postgres@127.0.0.1:5432/{}?sslmode=disable&application_name=tls_node{i}\"\n  ha_enabled = \"true\"\n}}\nlistener \"tcp\" {{\n  address       = \"127.0.0.1:{port}\"\n  tls_cert_file = \"{}\"\n  tls_key_file  = \"{}\"\n}}\napi_addr = \"https://127.0.0.1:{port}\"\n{}",
                db.name,
                cert.display(),
                key.display(),
                if trust {
                    format!("ha_forwarding_tls_ca_cert = \"{}\"\n", cert.display())
                } else {
                    String::new()
                }
            ),
        )
        .unwrap();
        nodes.push(start(&path, dir.path()));
    }
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    assert!(addrs[0].starts_with("https://"), "{addrs:?}");
    let (key, root) = init_shamir(&client, &addrs[0]).await;
    unseal(&client, &addrs[0], &key).await;
    health_becomes(&client, &addrs[0], 200, Duration::from_secs(10)).await;
    for addr in &addrs[1..] {
        unseal(&client, addr, &key).await;
        health_becomes(&client, addr, 429, Duration::from_secs(10)).await;
        knows_leader(&client, addr, &addrs[0]).await;
    }
    let (status, _, body) = send(&client, &addrs[1], "GET", "sys/mounts", Some(&root), None).await;
    assert_eq!(status, 200, "through a standby that trusts the CA: {body}");
    let (status, _, body) = send(&client, &addrs[2], "GET", "sys/mounts", Some(&root), None).await;
    assert_eq!(status, 503, "through a standby that does not: {body}");
    let message = body["errors"][0].as_str().unwrap();
    assert!(
        message.starts_with(&format!("cannot reach the active node {}", addrs[0]))
            && message.to_lowercase().contains("certificate"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn generate_root_through_a_standby_runs_on_the_active_node() {
    let db = Db::new("haforward_genroot").await;
    let dir = tempfile::tempdir().unwrap();
    let client = plain();
    // The raw generate-root endpoints, served without a token where the listener allows it.
    let open = "  disable_unauthed_generate_root_endpoints = false\n";
    let n0 = start(
        &node_config_with(&db, dir.path(), "genroot_node0", free_port(), open, ""),
        dir.path(),
    );
    let n1 = start(
        &node_config_with(&db, dir.path(), "genroot_node1", free_port(), open, ""),
        dir.path(),
    );
    let (key, root) = init_shamir(&client, &n0.addr).await;
    unseal(&client, &n0.addr, &key).await;
    health_becomes(&client, &n0.addr, 200, Duration::from_secs(10)).await;
    unseal(&client, &n1.addr, &key).await;
    health_becomes(&client, &n1.addr, 429, Duration::from_secs(10)).await;
    let (active, standby) = (n0.addr.as_str(), n1.addr.as_str());
    knows_leader(&client, standby, active).await;

    // Started through the standby: the attempt lives on the active node.
    let (status, _, started) = send(
        &client,
        standby,
        "PUT",
        "sys/generate-root/attempt",
        None,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["started"], true, "{started}");
    let otp = started["otp"].as_str().unwrap().to_owned();
    let nonce = started["nonce"].as_str().unwrap().to_owned();
    let (status, _, direct) = send(
        &client,
        active,
        "GET",
        "sys/generate-root/attempt",
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{direct}");
    assert_eq!(direct["nonce"], nonce.as_str(), "{direct}");
    assert_eq!(direct["progress"], 0, "{direct}");
    // Asked not to forward, the standby redirects to the active node instead.
    let (status, location) = match ha::call(
        &client,
        standby,
        "GET",
        "sys/generate-root/attempt",
        None,
        None,
    )
    .await
    {
        Some((status, _, location)) => (status, location),
        None => panic!("the standby did not answer"),
    };
    assert_eq!(status, 307);
    assert_eq!(
        location.as_deref(),
        Some(format!("{active}/v1/sys/generate-root/attempt").as_str())
    );

    // Finished through the standby with the unseal key: a root token that works.
    let (status, _, done) = send(
        &client,
        standby,
        "PUT",
        "sys/generate-root/update",
        None,
        Some(json!({"key": key, "nonce": nonce})),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["complete"], true, "{done}");
    let token =
        tresor_core::generate_root::decode_token(done["encoded_token"].as_str().unwrap(), &otp)
            .unwrap();
    assert_ne!(token, root);
    let (status, _, body) = send(
        &client,
        standby,
        "GET",
        "auth/token/lookup-self",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["policies"], json!(["root"]), "{body}");
    // Cancelled through the standby: gone from the active node.
    let (status, _, body) = send(
        &client,
        standby,
        "DELETE",
        "sys/generate-root/attempt",
        None,
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, _, body) = send(
        &client,
        active,
        "GET",
        "sys/generate-root/attempt",
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["started"], false, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_racing_sys_init_leave_exactly_one_initialisation() {
    // Several rounds: which node wins, and whether the loser meets the lock or the finished
    // initialisation, varies from round to round.
    for round in 0..3 {
        let db = Db::new("haforward_race").await;
        let dir = tempfile::tempdir().unwrap();
        let client = plain();
        let nodes = [
            start(
                &node_config(&db, dir.path(), "race_node0", free_port(), ""),
                dir.path(),
            ),
            start(
                &node_config(&db, dir.path(), "race_node1", free_port(), ""),
                dir.path(),
            ),
        ];
        let addrs = [nodes[0].addr.as_str(), nodes[1].addr.as_str()];
        // Different share counts, to tell whose initialisation was stored.
        let asked = [(1u64, 1u64), (2, 2)];
        let init = |i: usize| {
            send(
                &client,
                addrs[i],
                "PUT",
                "sys/init",
                None,
                Some(json!({"secret_shares": asked[i].0, "secret_threshold": asked[i].1})),
            )
        };
        let (a, b) = tokio::join!(init(0), init(1));
        let answers = [(a.0, a.2), (b.0, b.2)];
        eprintln!(
            "round {round}: sys/init answered {} and {}",
            answers[0].0, answers[1].0
        );
        let winners: Vec<usize> = (0..2).filter(|i| answers[*i].0 == 200).collect();
        assert_eq!(winners.len(), 1, "exactly one initialisation: {answers:?}");
        let (w, l) = (winners[0], 1 - winners[0]);
        let (status, refusal) = &answers[l];
        assert_eq!(*status, 400, "{refusal}");
        let message = refusal["errors"][0].as_str().unwrap();
        assert!(
            message == "Vault is already initialized"
                || message.starts_with("another node holds the HA lock"),
            "{message}"
        );
        let won = &answers[w].1;
        let keys: Vec<String> = won["keys_base64"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(keys.len() as u64, asked[w].0, "{won}");
        let root = won["root_token"].as_str().unwrap().to_owned();

        // Both nodes see the winner's seal configuration, and its shares unseal both.
        for addr in addrs {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let (_, _, seal) = send(&client, addr, "GET", "sys/seal-status", None, None).await;
                if seal["initialized"] == true {
                    assert_eq!(seal["n"], asked[w].0, "{addr}: {seal}");
                    assert_eq!(seal["t"], asked[w].1, "{addr}: {seal}");
                    break;
                }
                assert!(Instant::now() < deadline, "{addr}: {seal}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            for key in &keys {
                let (status, _, body) = send(
                    &client,
                    addr,
                    "PUT",
                    "sys/unseal",
                    None,
                    Some(json!({ "key": key })),
                )
                .await;
                assert_eq!(status, 200, "{body}");
            }
        }
        let active = active_of(&client, &addrs, Duration::from_secs(10)).await;
        let standby = addrs[1 - active];
        knows_leader(&client, standby, addrs[active]).await;
        // The winner's root token works on the stored data, through either node.
        let (status, _, body) = send(
            &client,
            standby,
            "POST",
            "sys/mounts/secret",
            Some(&root),
            Some(json!({"type": "kv", "options": {"version": "2"}})),
        )
        .await;
        assert_eq!(status, 204, "{body}");
        let (status, _, body) = send(
            &client,
            addrs[active],
            "GET",
            "sys/mounts",
            Some(&root),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(body["data"]["secret/"].is_object(), "{body}");
        // The other node takes over (a step-down sent to it is forwarded) and opens the same
        // keyring: one initialisation, shared.
        let (status, _, body) =
            send(&client, standby, "PUT", "sys/step-down", Some(&root), None).await;
        assert_eq!(status, 204, "{body}");
        health_becomes(&client, standby, 200, Duration::from_secs(5)).await;
        let (status, _, body) =
            send(&client, standby, "GET", "sys/mounts", Some(&root), None).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["data"]["secret/"].is_object(), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn addresses_from_the_environment_and_disable_clustering_in_the_storage_block() {
    let db = Db::new("haforward_env").await;
    let dir = tempfile::tempdir().unwrap();
    let client = plain();
    let (p0, p1) = (free_port(), free_port());
    // Node 0: the file's api_addr is wrong; BAO_API_ADDR wins over it and over
    // VAULT_API_ADDR; VAULT_CLUSTER_ADDR sets the cluster address.
    let config0 = node_config(&db, dir.path(), "env_node0", p0, "");
    let text = std::fs::read_to_string(&config0).unwrap().replace(
        &format!("api_addr = \"http://127.0.0.1:{p0}\""),
        "api_addr = \"http://127.0.0.1:1\"",
    );
    std::fs::write(&config0, text).unwrap();
    let api0 = format!("http://127.0.0.1:{p0}");
    let n0 = Server::start_with_env(
        &["server", &format!("-config={}", config0.display())],
        &[
            ("BAO_API_ADDR", api0.as_str()),
            ("VAULT_API_ADDR", "http://127.0.0.1:2"),
            ("VAULT_CLUSTER_ADDR", "https://node-0.example:8301"),
        ],
        dir.path(),
    );
    assert_eq!(
        n0.addr, api0,
        "the banner shows the address from the environment"
    );
    // Node 1: no api_addr in the file at all, BAO_API_ADDR instead; disable_clustering in its
    // storage block, so it redirects rather than forwards and reports no cluster address
    // (BAO_CLUSTER_ADDR notwithstanding, as in OpenBao).
    let config1 = ha::write_config(
        dir.path(),
        "env_node1",
        &db.url(),
        p1,
        "  disable_clustering = \"true\"\n",
        "",
        "",
    );
    let text = std::fs::read_to_string(&config1)
        .unwrap()
        .replace(&format!("api_addr = \"http://127.0.0.1:{p1}\"\n"), "");
    assert!(!text.contains("api_addr"), "{text}");
    std::fs::write(&config1, text).unwrap();
    let api1 = format!("http://127.0.0.1:{p1}");
    let n1 = Server::start_with_env(
        &["server", &format!("-config={}", config1.display())],
        &[
            ("BAO_API_ADDR", api1.as_str()),
            ("BAO_CLUSTER_ADDR", "https://node-1.example:8301"),
        ],
        dir.path(),
    );
    assert_eq!(n1.addr, api1);

    let (key, root) = init_shamir(&client, &n0.addr).await;
    unseal(&client, &n0.addr, &key).await;
    health_becomes(&client, &n0.addr, 200, Duration::from_secs(10)).await;
    unseal(&client, &n1.addr, &key).await;
    health_becomes(&client, &n1.addr, 429, Duration::from_secs(10)).await;
    let leader = knows_leader(&client, &n1.addr, &api0).await;
    assert_eq!(
        leader["leader_cluster_address"], "https://node-0.example:8301",
        "{leader}"
    );
    // The storage block's disable_clustering: a 307 to the active node, not a forward.
    let (status, headers, _) =
        send(&client, &n1.addr, "GET", "sys/mounts", Some(&root), None).await;
    assert_eq!(status, 307);
    assert_eq!(
        headers["location"],
        format!("{api0}/v1/sys/mounts").as_str()
    );
    let (_, _, config) = send(
        &client,
        &n0.addr,
        "GET",
        "sys/config/state/sanitized",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(config["data"]["api_addr"], api0.as_str(), "{config}");
    assert_eq!(
        config["data"]["cluster_addr"], "https://node-0.example:8301",
        "{config}"
    );
    // sys/ha-status: each node as its environment named it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, body) =
            send(&client, &n0.addr, "GET", "sys/ha-status", Some(&root), None).await;
        assert_eq!(status, 200, "{body}");
        let nodes = body["data"]["nodes"].as_array().unwrap().clone();
        if nodes.len() == 2 {
            let cluster = |api: &str| {
                nodes
                    .iter()
                    .find(|n| n["api_address"] == api)
                    .map(|n| n["cluster_address"].clone())
                    .unwrap_or_else(|| panic!("no node {api}: {body}"))
            };
            assert_eq!(cluster(&api0), "https://node-0.example:8301");
            assert_eq!(cluster(&api1), "", "disable_clustering reports none");
            break;
        }
        assert!(Instant::now() < deadline, "ha-status: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_auto_unseal_node_that_refused_a_second_init_still_unseals_itself() {
    let db = Db::new("haforward_reinit").await;
    let dir = tempfile::tempdir().unwrap();
    let client = plain();
    let key_file = dir.path().join("static.key");
    std::fs::write(&key_file, [9u8; 32]).unwrap();
    let seal = format!(
        "seal \"static\" {{\n  current_key_id = \"k1\"\n  current_key    = \"file://{}\"\n}}\n",
        key_file.display()
    );
    let n0 = start(
        &node_config(&db, dir.path(), "reinit_node0", free_port(), &seal),
        dir.path(),
    );
    let n1 = start(
        &node_config(&db, dir.path(), "reinit_node1", free_port(), &seal),
        dir.path(),
    );
    let init = json!({"recovery_shares": 1, "recovery_threshold": 1});
    let (status, _, body) = send(
        &client,
        &n0.addr,
        "PUT",
        "sys/init",
        None,
        Some(init.clone()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The same init on the other node at once, before its own watch notices: refused, and
    // that refusal is how it learns the store is initialised.
    let (status, _, body) = send(&client, &n1.addr, "PUT", "sys/init", None, Some(init)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0], "Vault is already initialized", "{body}");
    let addrs = [n0.addr.as_str(), n1.addr.as_str()];
    active_of(&client, &addrs, Duration::from_secs(5)).await;
}
