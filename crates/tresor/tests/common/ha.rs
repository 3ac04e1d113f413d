//! HA clusters for the integration tests: real `tresor` processes sharing one PostgreSQL
//! database (`storage "postgresql"` with `ha_enabled`), and the raw HTTP calls the HA tests
//! make to one node at a time.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tresor_storage::test_db::TestDb;

use super::Server;

/// One node: its process (gone once killed), its address, and the `application_name` its
/// sessions carry (to find them in `pg_stat_activity`).
pub struct Node {
    pub server: Option<Server>,
    pub addr: String,
    pub app: String,
}

/// A port the kernel says is free now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Node `n` on a free port, on the shared PostgreSQL's database `db`.
pub fn start_node(db: &TestDb, dir: &Path, n: usize) -> Node {
    start_node_at(&db.url(), dir, n, free_port())
}

/// Node `n` listening on `port`, with `url` (a `postgres://…/database` URL without a query)
/// as its storage; its sessions are named `ha_node_<n>`.
pub fn start_node_at(url: &str, dir: &Path, n: usize, port: u16) -> Node {
    let app = format!("ha_node_{n}");
    let config = dir.join(format!("node{n}.hcl"));
    std::fs::write(
        &config,
        format!(
            "storage \"postgresql\" {{\n  connection_url = \"{url}?sslmode=disable&application_name={app}\"\n  ha_enabled = \"true\"\n  ha_table = \"tresor_ha_locks\"\n}}\n\nlistener \"tcp\" {{\n  address     = \"127.0.0.1:{port}\"\n  tls_disable = true\n}}\n\napi_addr = \"http://127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    let server = Server::start(&["server", &format!("-config={}", config.display())], dir);
    assert_eq!(server.addr, format!("http://127.0.0.1:{port}"));
    Node {
        addr: server.addr.clone(),
        server: Some(server),
        app,
    }
}

/// A client that does not follow redirects: what a node itself answers.
pub fn plain() -> reqwest::Client {
    let _ = super::http();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
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
    let mut req = client
        .request(method.parse().unwrap(), format!("{addr}/v1/{path}"))
        .header("X-Vault-No-Request-Forwarding", "true");
    if let Some(t) = token {
        req = req.header("X-Vault-Token", t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.ok()?;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    let text = resp.text().await.ok()?;
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
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
