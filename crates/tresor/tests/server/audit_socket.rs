//! Socket audit devices against the real binary: a collector in the test (TCP or UDP)
//! receives the lines and parses them; `prefix`, `elide_list_responses` and
//! `hmac_accessor = false` as they appear on the wire; a peer that closes its connection
//! (reconnect), a peer that goes away (fail closed when it is the only device, served when a
//! file device records the request), and a peer that comes back.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, raw};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio::sync::watch;

const ROOT: &str = "audit-socket-root-9a41";

/// What the collector was told to do with its connections.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Serve; the number changes to drop every open connection (the listener stays).
    Serve(u32),
    /// Close the listener and every connection.
    Stop,
}

/// A TCP or UDP peer that keeps every line it receives.
struct Collector {
    addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    order: watch::Sender<Order>,
    /// The listener (or UDP socket) and each connection count one while open.
    open: Arc<AtomicUsize>,
}

/// Decrements a count when dropped (when a task ends, whichever way).
struct Open(Arc<AtomicUsize>);

impl Open {
    fn new(count: &Arc<AtomicUsize>) -> Open {
        count.fetch_add(1, Ordering::SeqCst);
        Open(Arc::clone(count))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Collector {
    async fn tcp(bind: &str) -> Collector {
        let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (order, mut orders) = watch::channel(Order::Serve(0));
        let sink = Arc::clone(&lines);
        let open = Arc::new(AtomicUsize::new(0));
        let listening = Open::new(&open);
        let count = Arc::clone(&open);
        tokio::spawn(async move {
            let _listening = listening;
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { break };
                        let sink = Arc::clone(&sink);
                        let mut orders = orders.clone();
                        let at = *orders.borrow_and_update();
                        let connected = Open::new(&count);
                        tokio::spawn(async move {
                            let _connected = connected;
                            let mut reader = tokio::io::BufReader::new(stream).lines();
                            loop {
                                tokio::select! {
                                    line = reader.next_line() => match line {
                                        Ok(Some(line)) => sink.lock().unwrap().push(line),
                                        _ => break,
                                    },
                                    changed = orders.changed() => {
                                        if changed.is_err() || *orders.borrow() != at {
                                            break;
                                        }
                                    }
                                }
                            }
                        });
                    }
                    changed = orders.changed() => {
                        if changed.is_err() || *orders.borrow() == Order::Stop {
                            break;
                        }
                    }
                }
            }
        });
        Collector {
            addr,
            lines,
            order,
            open,
        }
    }

    async fn udp() -> Collector {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (order, mut orders) = watch::channel(Order::Serve(0));
        let sink = Arc::clone(&lines);
        let open = Arc::new(AtomicUsize::new(0));
        let listening = Open::new(&open);
        tokio::spawn(async move {
            let _listening = listening;
            let mut buf = vec![0u8; 65536];
            loop {
                tokio::select! {
                    got = socket.recv(&mut buf) => {
                        let Ok(n) = got else { break };
                        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                        let mut sink = sink.lock().unwrap();
                        sink.extend(text.lines().map(str::to_owned));
                    }
                    changed = orders.changed() => {
                        if changed.is_err() || *orders.borrow() == Order::Stop {
                            break;
                        }
                    }
                }
            }
        });
        Collector {
            addr,
            lines,
            order,
            open,
        }
    }

    /// Waits until only `n` of the listener and its connections are open.
    async fn wait_open(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.open.load(Ordering::SeqCst) != n {
            assert!(Instant::now() < deadline, "the collector did not close");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Drops every open connection; the listener keeps accepting.
    async fn drop_connections(&self) {
        self.order.send_modify(|o| {
            if let Order::Serve(n) = o {
                *o = Order::Serve(*n + 1);
            }
        });
        self.wait_open(1).await;
    }

    /// Closes the listener and every connection.
    async fn stop(&self) {
        let _ = self.order.send(Order::Stop);
        self.wait_open(0).await;
    }

    fn address(&self) -> String {
        self.addr.to_string()
    }

    fn text(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The parsed lines, each with `prefix` removed (a line without it fails the test).
    fn entries(&self, prefix: &str) -> Vec<Value> {
        self.text()
            .iter()
            .map(|l| {
                let body = l
                    .strip_prefix(prefix)
                    .unwrap_or_else(|| panic!("line without prefix {prefix:?}: {l}"));
                serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))
            })
            .collect()
    }

    /// Waits for the request and response lines of the request with id `id`.
    async fn pair(&self, prefix: &str, id: &str) -> (Value, Value) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let entries = self.entries(prefix);
            let find = |t: &str| {
                entries
                    .iter()
                    .find(|e| e["type"] == t && e["request"]["id"] == id)
                    .cloned()
            };
            if let (Some(req), Some(resp)) = (find("request"), find("response")) {
                return (req, resp);
            }
            assert!(
                Instant::now() < deadline,
                "no request/response pair for {id} in {:?}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn enable(server: &Server, token: &str, name: &str, kind: &str, options: Value) {
    let (s, b) = raw(
        server,
        "PUT",
        &format!("sys/audit/{name}"),
        Some(token),
        Some(json!({"type": kind, "options": options})),
    )
    .await;
    assert_eq!(s, 204, "enable {name}: {b}");
}

/// A KV write's request id (the envelope's `request_id` is the audit id).
async fn kv_write(server: &Server, token: &str, path: &str, value: &str) -> (u16, String) {
    let (s, b) = raw(
        server,
        "POST",
        &format!("secret/data/{path}"),
        Some(token),
        Some(json!({"data": {"v": value}})),
    )
    .await;
    (s, b["request_id"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_and_udp_socket_devices_record_every_request_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let tcp = Collector::tcp("127.0.0.1:0").await;
    let udp = Collector::udp().await;
    enable(
        &server,
        ROOT,
        "tcp",
        "socket",
        json!({"address": tcp.address()}),
    )
    .await;
    enable(
        &server,
        ROOT,
        "udp",
        "socket",
        json!({"address": udp.address(), "socket_type": "udp"}),
    )
    .await;

    let secret = "socket-secret-51d3";
    let (s, id) = kv_write(&server, ROOT, "app", secret).await;
    assert_eq!(s, 200);
    for (name, collector) in [("tcp", &tcp), ("udp", &udp)] {
        let (req, resp) = collector.pair("", &id).await;
        assert_eq!(req["request"]["path"], "secret/data/app", "{name}");
        assert_eq!(req["request"]["operation"], "create", "{name}");
        assert_eq!(resp["response"]["mount_type"], "kv", "{name}");
        let hashed = req["request"]["data"]["data"]["v"].as_str().unwrap();
        assert!(hashed.starts_with("hmac-sha256:"), "{name}: {hashed}");
        // The device's own salt: sys/audit-hash reproduces the logged value.
        let (_, h) = raw(
            &server,
            "POST",
            &format!("sys/audit-hash/{name}"),
            Some(ROOT),
            Some(json!({"input": secret})),
        )
        .await;
        assert_eq!(h["data"]["hash"], hashed, "{name}");
        // The enable-time test line reached the peer too.
        assert!(
            collector
                .entries("")
                .iter()
                .any(|e| e["request"]["path"] == "sys/audit/test"),
            "{name}"
        );
        for line in collector.text() {
            assert!(!line.contains(secret), "{name} carries the secret: {line}");
            assert!(
                !line.contains(ROOT),
                "{name} carries the root token: {line}"
            );
        }
    }
}

/// A config server that allows API audit creation and prefixes, initialised and unsealed.
async fn config_server(dir: &Path) -> (Server, String) {
    let config = dir.join("tresor.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"embedded\" {{ path = \"{}\" }}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n}}\nunsafe_allow_api_audit_creation = true\nallow_audit_log_prefixing = true\n",
            dir.join("data.redb").display()
        ),
    )
    .unwrap();
    let args = ["server".to_owned(), format!("-config={}", config.display())];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&args, dir);
    let (s, init) = raw(
        &server,
        "PUT",
        "sys/init",
        None,
        Some(json!({"secret_shares": 1, "secret_threshold": 1})),
    )
    .await;
    assert_eq!(s, 200, "{init}");
    let key = init["keys"][0].as_str().unwrap().to_owned();
    let root = init["root_token"].as_str().unwrap().to_owned();
    let (s, _) = raw(
        &server,
        "PUT",
        "sys/unseal",
        None,
        Some(json!({"key": key})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = raw(
        &server,
        "POST",
        "sys/mounts/secret",
        Some(&root),
        Some(json!({"type": "kv", "options": {"version": "2"}})),
    )
    .await;
    assert_eq!(s, 204, "{b}");
    (server, root)
}

#[tokio::test(flavor = "multi_thread")]
async fn prefix_elided_list_responses_and_readable_accessors_on_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let (server, root) = config_server(dir.path()).await;
    let tcp = Collector::tcp("127.0.0.1:0").await;
    let prefix = "TRESOR-AUDIT ";
    enable(
        &server,
        &root,
        "siem",
        "socket",
        json!({
            "address": tcp.address(),
            "prefix": prefix,
            "elide_list_responses": "true",
            "hmac_accessor": "false",
        }),
    )
    .await;
    // A device without the options, for contrast.
    let plain = Collector::tcp("127.0.0.1:0").await;
    enable(
        &server,
        &root,
        "plain",
        "socket",
        json!({"address": plain.address()}),
    )
    .await;

    for key in ["a", "b", "c"] {
        assert_eq!(kv_write(&server, &root, key, "x").await.0, 200);
    }
    let (s, list) = raw(&server, "LIST", "secret/metadata/", Some(&root), None).await;
    assert_eq!(s, 200, "{list}");
    let list_id = list["request_id"].as_str().unwrap().to_owned();
    // The answer itself is not elided; only the log is.
    assert_eq!(list["data"]["keys"], json!(["a", "b", "c"]));
    let (_, resp) = tcp.pair(prefix, &list_id).await;
    assert_eq!(resp["response"]["data"]["keys"], 3, "{resp}");
    let (_, resp) = plain.pair("", &list_id).await;
    let keys = resp["response"]["data"]["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    assert!(keys[0].as_str().unwrap().starts_with("hmac-sha256:"));

    // hmac_accessor = false: the caller's and the new token's accessors are readable; the
    // tokens themselves are still hashed.
    let (s, created) = raw(
        &server,
        "POST",
        "auth/token/create",
        Some(&root),
        Some(json!({"policies": ["default"]})),
    )
    .await;
    assert_eq!(s, 200);
    let id = created["request_id"].as_str().unwrap().to_owned();
    let accessor = created["auth"]["accessor"].as_str().unwrap();
    let token = created["auth"]["client_token"].as_str().unwrap();
    let (s, me) = raw(&server, "GET", "auth/token/lookup-self", Some(&root), None).await;
    assert_eq!(s, 200);
    let root_accessor = me["data"]["accessor"].as_str().unwrap();
    let (req, resp) = tcp.pair(prefix, &id).await;
    assert_eq!(req["auth"]["accessor"], root_accessor);
    assert_eq!(resp["response"]["auth"]["accessor"], accessor);
    let logged_token = resp["response"]["auth"]["client_token"].as_str().unwrap();
    assert!(logged_token.starts_with("hmac-sha256:"), "{logged_token}");
    let (req, resp) = plain.pair("", &id).await;
    assert!(
        req["auth"]["accessor"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    assert!(
        resp["response"]["auth"]["accessor"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    for line in tcp.text().iter().chain(plain.text().iter()) {
        assert!(!line.contains(token), "a token in the clear: {line}");
    }
    // Every line on the prefixed device carries the prefix (entries() checks it).
    assert!(tcp.entries(prefix).len() >= 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_socket_peer_that_goes_away_fails_requests_closed_unless_another_device_records_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let tcp = Collector::tcp("127.0.0.1:0").await;
    let addr = tcp.address();
    let log = dir.path().join("audit.log");
    enable(
        &server,
        ROOT,
        "tcp",
        "socket",
        json!({"address": addr, "write_timeout": "1s"}),
    )
    .await;
    enable(
        &server,
        ROOT,
        "file",
        "file",
        json!({"file_path": log.to_str().unwrap()}),
    )
    .await;
    let (s, id) = kv_write(&server, ROOT, "one", "1").await;
    assert_eq!(s, 200);
    tcp.pair("", &id).await;

    // The collector restarts its connections: the device notices and reconnects, and the
    // next line arrives on a new connection.
    tcp.drop_connections().await;
    let (s, id) = kv_write(&server, ROOT, "two", "2").await;
    assert_eq!(s, 200);
    tcp.pair("", &id).await;

    // The peer goes away: the file device still records, so requests are served.
    tcp.stop().await;
    let (s, id) = kv_write(&server, ROOT, "three", "3").await;
    assert_eq!(s, 200);
    let file = std::fs::read_to_string(&log).unwrap();
    assert!(file.contains(&id));
    assert!(!tcp.text().iter().any(|l| l.contains(&id)));

    // With the socket the only device, requests are refused (fail closed), quickly.
    let (s, b) = raw(&server, "DELETE", "sys/audit/file", Some(ROOT), None).await;
    assert_eq!(s, 204, "{b}");
    let started = Instant::now();
    let (s, b) = raw(
        &server,
        "POST",
        "secret/data/four",
        Some(ROOT),
        Some(json!({"data": {"v": "4"}})),
    )
    .await;
    assert_eq!((s, b), (500, json!({"errors": ["internal error"]})));
    assert!(started.elapsed() < Duration::from_secs(5));
    // The refused write never reached the engine. (This read is refused too.)
    let (s, _) = raw(&server, "GET", "secret/data/four", Some(ROOT), None).await;
    assert_eq!(s, 500);
    // Unaudited endpoints still answer.
    let (s, _) = raw(&server, "GET", "sys/health", None, None).await;
    assert_eq!(s, 200);

    // The peer comes back on the same address: requests are recorded and served again.
    let back = Collector::tcp(&addr).await;
    let (s, b) = raw(&server, "GET", "secret/data/four", Some(ROOT), None).await;
    assert_eq!(s, 404, "the refused write did not happen: {b}");
    let (s, id) = kv_write(&server, ROOT, "five", "5").await;
    assert_eq!(s, 200);
    back.pair("", &id).await;
}
