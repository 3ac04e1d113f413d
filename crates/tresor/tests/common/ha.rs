//! HA clusters for the integration tests: real `tresor` processes sharing one PostgreSQL
//! database (`storage "postgresql"` with `ha_enabled`), and the raw HTTP calls the HA tests
//! make to one node at a time: [`call`] asks a standby not to forward (what the node itself
//! does), [`send`] is what a client sees (a standby forwards it to the active node).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tresor_storage::test_db::TestDb;

use super::Server;

/// One node: its process (gone once killed), its address, and the `application_name` its
/// sessions carry (to find them in `pg_stat_activity`).
pub struct Node {
    pub server: Option<Server>,
    pub addr: String,
    pub app: String,
}

/// A free port for a node, from 18600-18799, the range of these helpers. Not one the kernel
/// picks (`127.0.0.1:0`): between closing that probe and the node binding the port, any
/// socket on the machine (another test's client connection, a PostgreSQL session) may be given
/// the same ephemeral port, and the node fails with "address already in use" — seen once the
/// HA tests shared a binary with others. Nothing below the ephemeral range (32768-) is handed
/// out behind our back. Steps of two: a node reports the port after its own as its cluster
/// address.
pub fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(18_600);
    loop {
        let port = NEXT.fetch_add(2, Ordering::SeqCst);
        assert!(port < 18_800, "no free port left in 18600-18799");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Node `n` on a free port, on the shared PostgreSQL's database `db`.
pub fn start_node(db: &TestDb, dir: &Path, n: usize) -> Node {
    start_node_at(&db.url(), dir, n, free_port())
}

/// Node `n` listening on `port`, with `url` (a `postgres://…/database` URL without a query)
/// as its storage; its sessions are named `ha_node_<n>`.
pub fn start_node_at(url: &str, dir: &Path, n: usize, port: u16) -> Node {
    let app = format!("ha_node_{n}");
    let config = write_config(
        dir,
        &app,
        url,
        port,
        "  ha_table = \"tresor_ha_locks\"\n",
        "",
        "",
    );
    let server = start(&config, dir);
    assert_eq!(server.addr, format!("http://127.0.0.1:{port}"));
    Node {
        addr: server.addr.clone(),
        server: Some(server),
        app,
    }
}

/// `<dir>/<name>.hcl`: HA on `url` (a `postgres://…/database` URL without a query; the
/// sessions are named `name`), a plain-HTTP listener on `port` and `api_addr` there, with
/// `storage`, `listener` and `extra` lines added to the storage block, the listener block and
/// the top level (more settings, a seal stanza, more listeners).
pub fn write_config(
    dir: &Path,
    name: &str,
    url: &str,
    port: u16,
    storage: &str,
    listener: &str,
    extra: &str,
) -> PathBuf {
    let path = dir.join(format!("{name}.hcl"));
    std::fs::write(
        &path,
        format!(
            "storage \"postgresql\" {{\n  connection_url = \"{url}?sslmode=disable&application_name={name}\"\n  ha_enabled = \"true\"\n{storage}}}\n\nlistener \"tcp\" {{\n  address     = \"127.0.0.1:{port}\"\n  tls_disable = true\n{listener}}}\n\napi_addr = \"http://127.0.0.1:{port}\"\n{extra}"
        ),
    )
    .unwrap();
    path
}

/// `tresor server -config=<config>`, logging into `dir`.
pub fn start(config: &Path, dir: &Path) -> Server {
    Server::start(&["server", &format!("-config={}", config.display())], dir)
}

/// A client that does not follow redirects: what a node itself answers. Gives up after 5 s.
pub fn plain() -> reqwest::Client {
    plain_with(Duration::from_secs(5), None)
}

/// A client that does not follow redirects, gives up after `timeout`, and trusts only the
/// certificates of `ca_pem` when given (else the system's roots).
pub fn plain_with(timeout: Duration, ca_pem: Option<&[u8]>) -> reqwest::Client {
    let _ = super::http();
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout);
    if let Some(pem) = ca_pem {
        builder = builder.tls_certs_only(reqwest::Certificate::from_pem_bundle(pem).unwrap());
    }
    builder.build().unwrap()
}

/// One request as a client sends it (a standby forwards it to the active node): status,
/// headers, JSON body or `Null`. Fails the test if the node cannot be reached.
pub async fn send(
    client: &reqwest::Client,
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, HeaderMap, Value) {
    request(client, addr, method, path, token, body, true)
        .await
        .unwrap_or_else(|err| panic!("{method} {addr}/v1/{path}: {err}"))
}

async fn request(
    client: &reqwest::Client,
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    forward: bool,
) -> Result<(u16, HeaderMap, Value), reqwest::Error> {
    let mut req = client.request(method.parse().unwrap(), format!("{addr}/v1/{path}"));
    if !forward {
        req = req.header("X-Vault-No-Request-Forwarding", "true");
    }
    if let Some(t) = token {
        req = req.header("X-Vault-Token", t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await?;
    Ok((
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    ))
}

/// One request to one node: (status, JSON body or `Null`, `Location`), or `None` when the
/// node could not be reached or did not answer in time. What the node itself does: the
/// request carries Vault's `X-Vault-No-Request-Forwarding`, so a standby that forwards
/// requests redirects (307) this one instead.
pub async fn call(
    client: &reqwest::Client,
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Option<(u16, Value, Option<String>)> {
    let (status, headers, body) = request(client, addr, method, path, token, body, false)
        .await
        .ok()?;
    let location = headers
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    Some((status, body, location))
}

/// `sys/health`'s status on one node (200 active, 429 standby, 503 sealed).
pub async fn health(client: &reqwest::Client, addr: &str) -> Option<u16> {
    call(client, addr, "GET", "sys/health", None, None)
        .await
        .map(|(s, _, _)| s)
}

/// Polls until exactly one live node answers sys/health 200 and every other live one 429;
/// returns the active node's index.
pub async fn one_active(client: &reqwest::Client, nodes: &[Node], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let mut active = Vec::new();
        let mut settled = true;
        for (i, node) in nodes.iter().enumerate() {
            if node.server.is_none() {
                continue;
            }
            match health(client, &node.addr).await {
                Some(200) => active.push(i),
                Some(429) => {}
                _ => settled = false,
            }
        }
        if settled && active.len() == 1 {
            return active[0];
        }
        assert!(
            Instant::now() < deadline,
            "no single active node within {within:?} (active: {active:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until `addr` answers sys/health with `status`.
pub async fn health_becomes(client: &reqwest::Client, addr: &str, status: u16, within: Duration) {
    let deadline = Instant::now() + within;
    while health(client, addr).await != Some(status) {
        assert!(
            Instant::now() < deadline,
            "{addr} did not answer sys/health {status} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until one of `addrs` answers sys/health 200 and the others 429; its index.
pub async fn active_of(client: &reqwest::Client, addrs: &[&str], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let mut codes = Vec::new();
        for addr in addrs {
            codes.push(health(client, addr).await);
        }
        let active: Vec<usize> = (0..addrs.len())
            .filter(|i| codes[*i] == Some(200))
            .collect();
        if active.len() == 1 && codes.iter().all(|c| matches!(c, Some(200 | 429))) {
            return active[0];
        }
        assert!(
            Instant::now() < deadline,
            "no single active node within {within:?}: {codes:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until `addr`'s sys/leader names `leader` (a standby learns it within 0.5 s); the
/// answer.
pub async fn knows_leader(client: &reqwest::Client, addr: &str, leader: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, _, body) = send(client, addr, "GET", "sys/leader", None, None).await;
        if body["leader_address"] == leader {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{addr} never named {leader} as the leader: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `sys/init` with one Shamir share: (the share, the root token).
pub async fn init_shamir(client: &reqwest::Client, addr: &str) -> (String, String) {
    let (status, _, init) = send(
        client,
        addr,
        "PUT",
        "sys/init",
        None,
        Some(json!({"secret_shares": 1, "secret_threshold": 1})),
    )
    .await;
    assert_eq!(status, 200, "{init}");
    (
        init["keys_base64"][0].as_str().unwrap().to_owned(),
        init["root_token"].as_str().unwrap().to_owned(),
    )
}

/// `sys/unseal` with `key`, which must leave the node unsealed.
pub async fn unseal(client: &reqwest::Client, addr: &str, key: &str) {
    let (status, _, body) = send(
        client,
        addr,
        "PUT",
        "sys/unseal",
        None,
        Some(json!({ "key": key })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sealed"], false, "{body}");
}
