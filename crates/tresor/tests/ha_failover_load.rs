//! HA fail-over under write load (issue 13's acceptance): three real `tresor` processes on
//! different ports sharing one PostgreSQL database, writer tasks that keep writing distinct
//! KV v2 keys and retry against whichever node is active, and three faults:
//! - kill -9 of the active node: another node is active within 5 s;
//! - `pg_terminate_backend` of the active node's sessions (twice): no two nodes ever write at
//!   the same moment;
//! - PostgreSQL itself going away, twice (a fast restart, then a crash held down longer than
//!   the lock's TTL): the cluster serves writes again without operator action. That
//!   PostgreSQL is a private cluster the test creates (`initdb`, `pg_ctl`) on a port of its
//!   own, so the machine's shared PostgreSQL, which other tests use, is never restarted.
//!
//! After each fault every write that got a 2xx is read back with its exact value through the
//! active node. Each test prints (run with `--nocapture`) the fail-over time (fault to a node
//! answering `sys/health` 200) and the unavailability the writers saw (the longest stretch
//! without an acknowledged write), prefixed `haload:`.
//!
//! Two checks stand for "never two writers", and either fails if two nodes accepted writes
//! in overlapping windows:
//! - a witness inside PostgreSQL: a statement trigger on the KV table records, for every write
//!   statement, the writing session's `application_name` (which names the node) and the
//!   node the lock row names at that instant (read in a fresh snapshot). A node that writes
//!   while another holds the lock, or while nobody does, shows up as a mismatch. It sees the
//!   actual writer even when a standby forwards a request instead of redirecting it.
//! - a check-and-set register: writers pinned to each node (following redirects from there)
//!   increment one KV v2 key with `cas`; every acknowledged version must be acknowledged
//!   once, in real-time order (a write acknowledged before another was sent has the lower
//!   version), and read back with its value. Two nodes both serving `cas = n` would both
//!   answer version n + 1.
//!
//! Both checks were seen to fail (hundreds of witness mismatches, dozens of versions
//! acknowledged twice) with the fence statement made to always pass and the holder made
//! deaf to the loss of its lock session.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ha::{Node, call, health, one_active, plain, start_node_at};
use serde_json::{Value, json};
use tresor_storage::test_db::TestDb;

/// How long one poll waits before looking again (polling with a deadline, never a sleep
/// that stands for "it has happened by now").
const POLL: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------------------
// Test plumbing: one test at a time, ports, a cluster.

/// The tests of this file run one at a time: each runs three servers under load, and the
/// fail-over bound one asserts must not depend on another test's servers competing for the
/// machine's two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A free port from this file's range, 18200-18299. Steps of two: a node reports the port
/// after its own as its cluster address.
fn port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(18200);
    loop {
        let p = NEXT.fetch_add(2, Ordering::SeqCst);
        assert!(p < 18300, "no free port left in 18200-18299");
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

fn since(t0: Instant, t: Instant) -> String {
    format!("{:.3}s", t.saturating_duration_since(t0).as_secs_f64())
}

/// Three initialised, unsealed nodes on `url` (a database of its own), one active, with a
/// KV v2 engine at `secret/`.
struct Cluster {
    nodes: Vec<Node>,
    root: String,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start(url: &str) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("haload-")
            .tempdir()
            .unwrap();
        let client = plain();
        // Initialised through the first node before the others start (a node reads whether
        // the store is initialised when it starts).
        let mut nodes = vec![start_node_at(url, dir.path(), 0, port())];
        let (status, init, _) = call(
            &client,
            &nodes[0].addr,
            "PUT",
            "sys/init",
            None,
            Some(json!({"secret_shares": 1, "secret_threshold": 1})),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{init}");
        let key = init["keys_base64"][0].as_str().unwrap().to_owned();
        let root = init["root_token"].as_str().unwrap().to_owned();
        nodes.push(start_node_at(url, dir.path(), 1, port()));
        nodes.push(start_node_at(url, dir.path(), 2, port()));
        for node in &nodes {
            let (status, body, _) = call(
                &client,
                &node.addr,
                "PUT",
                "sys/unseal",
                None,
                Some(json!({ "key": key })),
            )
            .await
            .unwrap();
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["sealed"], false, "{body}");
        }
        let a = one_active(&client, &nodes, Duration::from_secs(15)).await;
        let (status, body, _) = call(
            &client,
            &nodes[a].addr,
            "POST",
            "sys/mounts/secret",
            Some(&root),
            Some(json!({"type": "kv", "options": {"version": "2"}})),
        )
        .await
        .unwrap();
        assert_eq!(status, 204, "{body}");
        Cluster {
            nodes,
            root,
            _dir: dir,
        }
    }

    fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.addr.clone()).collect()
    }

    fn index_of(&self, addr: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.addr == addr)
    }

    /// The server logs, for failure messages.
    fn logs(&self) -> String {
        let mut out = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if let Some(server) = &node.server {
                let log = server.log_text();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                out.push_str(&format!("--- node {i} ({}), last lines:\n", node.addr));
                for line in tail.into_iter().rev() {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// After a fault at `t0`: polls until some node answers `sys/health` 200, not counting
/// `old` until it has been seen not active (a node whose sessions were cut may answer 200
/// for a moment before it notices). Returns the node and when it was seen.
async fn next_active(
    cluster: &Cluster,
    old: Option<usize>,
    t0: Instant,
    within: Duration,
) -> (usize, Instant) {
    let client = plain();
    let mut old_demoted = old.is_none();
    loop {
        for (i, node) in cluster.nodes.iter().enumerate() {
            if node.server.is_none() {
                continue;
            }
            let status = health(&client, &node.addr).await;
            if Some(i) == old && status != Some(200) {
                old_demoted = true;
            }
            if status == Some(200) && (Some(i) != old || old_demoted) {
                return (i, Instant::now());
            }
        }
        assert!(
            t0.elapsed() < within,
            "no node active within {within:?} of the fault\n{}",
            cluster.logs()
        );
        tokio::time::sleep(POLL).await;
    }
}

// ---------------------------------------------------------------------------------------
// A client for the whole cluster.

/// What one node answered in the end (after following redirects).
struct Answer {
    status: u16,
    body: Value,
    /// The node whose answer this is.
    node: String,
    sent: Instant,
    done: Instant,
}

/// A Vault client that knows every node: it sends to the active node (found through
/// `sys/leader`'s `is_self`), follows 307s itself, and retries what a fail-over explains
/// (no answer, 429, 5xx) against whichever node is active then. It works the same whether
/// standbys redirect or forward. A pinned client always starts at its own node.
#[derive(Clone)]
struct ClusterClient {
    http: reqwest::Client,
    nodes: Arc<Vec<String>>,
    token: String,
    active: Arc<Mutex<Option<String>>>,
    pinned: Option<String>,
}

/// Statuses a fail-over explains: a standby's 429, 500 (a write the lock's fence refused,
/// storage unreachable), 502-504 (no active node known, a forward that failed).
fn transient(status: u16) -> bool {
    status == 429 || (500..=504).contains(&status)
}

impl ClusterClient {
    fn new(nodes: Vec<String>, token: &str) -> Self {
        let _ = common::http();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        Self {
            http,
            nodes: Arc::new(nodes),
            token: token.to_owned(),
            active: Arc::new(Mutex::new(None)),
            pinned: None,
        }
    }

    fn pinned_to(&self, addr: &str) -> Self {
        Self {
            pinned: Some(addr.to_owned()),
            active: Arc::new(Mutex::new(None)),
            ..self.clone()
        }
    }

    fn known_active(&self) -> Option<String> {
        self.active.lock().unwrap().clone()
    }

    fn set_active(&self, addr: Option<String>) {
        *self.active.lock().unwrap() = addr;
    }

    /// The node whose `sys/leader` says `is_self`, if one does now.
    async fn find_active(&self) -> Option<String> {
        for addr in self.nodes.iter() {
            if let Some((200, body, _)) =
                call(&self.http, addr, "GET", "sys/leader", None, None).await
                && body["is_self"] == true
            {
                self.set_active(Some(addr.clone()));
                return Some(addr.clone());
            }
        }
        None
    }

    /// One try, following up to three redirects. `Err`: no node gave an answer.
    async fn once(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer, String> {
        let start = match &self.pinned {
            Some(addr) => addr.clone(),
            None => match self.known_active() {
                Some(addr) => addr,
                None => self.find_active().await.ok_or("no active node")?,
            },
        };
        let mut url = format!("{start}/v1/{path}");
        for _ in 0..4 {
            let node = origin(&url);
            let mut req = self
                .http
                .request(method.parse().unwrap(), &url)
                .header("X-Vault-Token", &self.token);
            if let Some(b) = body {
                req = req.json(b);
            }
            let sent = Instant::now();
            let resp = match req.send().await {
                Ok(resp) => resp,
                Err(err) => {
                    self.forget(&node);
                    return Err(format!("{node}: {err}"));
                }
            };
            let status = resp.status().as_u16();
            if status == 307 {
                let Some(location) = resp.headers().get("location") else {
                    return Err(format!("{node}: 307 without Location"));
                };
                url = location.to_str().unwrap().to_owned();
                continue;
            }
            let text = match resp.text().await {
                Ok(text) => text,
                Err(err) => {
                    self.forget(&node);
                    return Err(format!("{node}: {err}"));
                }
            };
            let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
            if transient(status) {
                self.forget(&node);
            }
            return Ok(Answer {
                status,
                body,
                node,
                sent,
                done: Instant::now(),
            });
        }
        Err(format!("redirected more than 3 times from {start}"))
    }

    fn forget(&self, node: &str) {
        let mut active = self.active.lock().unwrap();
        if active.as_deref() == Some(node) {
            *active = None;
        }
    }

    /// Retries until an answer a fail-over does not explain, or `stop` (then `None`).
    /// Counts the tries that failed in `failed`.
    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        stop: &AtomicBool,
        failed: &AtomicU64,
    ) -> Option<Answer> {
        loop {
            match self.once(method, path, body).await {
                Ok(answer) if !transient(answer.status) => return Some(answer),
                Ok(_) | Err(_) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            if stop.load(Ordering::SeqCst) {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// `http://host:port` of a URL.
fn origin(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    format!("http://{authority}")
}

// ---------------------------------------------------------------------------------------
// The write load.

/// A write that got a 2xx.
#[derive(Clone, Debug)]
struct Ack {
    key: String,
    value: String,
    /// The node that answered 2xx.
    node: String,
    sent: Instant,
    done: Instant,
}

/// A check-and-set write of the register that got a 2xx.
#[derive(Clone, Debug)]
struct CasAck {
    cas: u64,
    version: u64,
    value: String,
    node: String,
    sent: Instant,
    done: Instant,
}

const REGISTER: &str = "register";

struct Load {
    stop: Arc<AtomicBool>,
    acks: Arc<Mutex<Vec<Ack>>>,
    cas_acks: Arc<Mutex<Vec<CasAck>>>,
    /// Answers no fail-over explains (a 4xx, a wrong body): the test fails on them.
    errors: Arc<Mutex<Vec<String>>>,
    failed_tries: Arc<AtomicU64>,
    register_writers: usize,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// `writers` tasks writing distinct keys through `client`, and one check-and-set
    /// register writer pinned to each of `register_pins`.
    fn start(client: &ClusterClient, writers: usize, register_pins: &[String]) -> Load {
        let load = Load {
            stop: Arc::new(AtomicBool::new(false)),
            acks: Arc::default(),
            cas_acks: Arc::default(),
            errors: Arc::default(),
            failed_tries: Arc::default(),
            register_writers: register_pins.len(),
            tasks: Vec::new(),
        };
        let nonce = std::process::id();
        let mut tasks = Vec::new();
        for w in 0..writers {
            let (client, stop, acks, errors, failed) = (
                client.clone(),
                load.stop.clone(),
                load.acks.clone(),
                load.errors.clone(),
                load.failed_tries.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let key = format!("load/w{w}/k{n}");
                    let value = format!("{nonce}-{w}-{n}");
                    let body = json!({ "data": { "v": value } });
                    let path = format!("secret/data/{key}");
                    match client
                        .request("PUT", &path, Some(&body), &stop, &failed)
                        .await
                    {
                        None => break,
                        Some(a) if a.status == 200 => acks.lock().unwrap().push(Ack {
                            key,
                            value,
                            node: a.node,
                            sent: a.sent,
                            done: a.done,
                        }),
                        Some(a) => {
                            errors.lock().unwrap().push(format!(
                                "write {key} via {}: {} {}",
                                a.node, a.status, a.body
                            ));
                            break;
                        }
                    }
                    n += 1;
                }
            }));
        }
        for (r, pin) in register_pins.iter().enumerate() {
            let (client, stop, acks, errors, failed) = (
                client.pinned_to(pin),
                load.stop.clone(),
                load.cas_acks.clone(),
                load.errors.clone(),
                load.failed_tries.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let error = |e: String| errors.lock().unwrap().push(e);
                let mut cas = None;
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let current = match cas {
                        Some(c) => c,
                        None => match register_version(&client, &stop, &failed).await {
                            Ok(Some(v)) => v,
                            Ok(None) => break,
                            Err(e) => {
                                error(e);
                                break;
                            }
                        },
                    };
                    n += 1;
                    let value = format!("{nonce}-r{r}-{n}");
                    let body = json!({ "options": { "cas": current }, "data": { "v": value } });
                    let path = format!("secret/data/{REGISTER}");
                    match client
                        .request("PUT", &path, Some(&body), &stop, &failed)
                        .await
                    {
                        None => break,
                        Some(a) if a.status == 200 => {
                            let Some(version) = a.body["data"]["version"].as_u64() else {
                                error(format!("register write: no version in {}", a.body));
                                break;
                            };
                            acks.lock().unwrap().push(CasAck {
                                cas: current,
                                version,
                                value,
                                node: a.node,
                                sent: a.sent,
                                done: a.done,
                            });
                            cas = Some(version);
                        }
                        // Another writer got there first: read the version again.
                        Some(a)
                            if a.status == 400 && a.body.to_string().contains("check-and-set") =>
                        {
                            cas = None;
                        }
                        Some(a) => {
                            error(format!(
                                "register write via {}: {} {}",
                                a.node, a.status, a.body
                            ));
                            break;
                        }
                    }
                }
            }));
        }
        Load { tasks, ..load }
    }

    fn acked(&self) -> usize {
        self.acks.lock().unwrap().len()
    }

    fn cas_acked(&self) -> usize {
        self.cas_acks.lock().unwrap().len()
    }

    fn assert_no_errors(&self, cluster: &Cluster) {
        let errors = self.errors.lock().unwrap();
        assert!(
            errors.is_empty(),
            "writers got answers no fail-over explains: {errors:?}\n{}",
            cluster.logs()
        );
    }

    /// Polls until `n` more writes (and, with register writers, `n / 10` more register
    /// writes) are acknowledged from now.
    async fn wait_for(&self, cluster: &Cluster, n: usize, within: Duration, what: &str) {
        let (target, cas_target) = (
            self.acked() + n,
            self.cas_acked() + if self.register_writers > 0 { n / 10 } else { 0 },
        );
        let deadline = Instant::now() + within;
        while self.acked() < target || self.cas_acked() < cas_target {
            self.assert_no_errors(cluster);
            assert!(
                Instant::now() < deadline,
                "{what}: fewer than {n} acknowledged writes within {within:?} ({} + {} register)\n{}",
                self.acked(),
                self.cas_acked(),
                cluster.logs()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    async fn stop(self, cluster: &Cluster) -> (Vec<Ack>, Vec<CasAck>, u64) {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.unwrap();
        }
        let errors = self.errors.lock().unwrap().clone();
        assert!(
            errors.is_empty(),
            "writers got answers no fail-over explains: {errors:?}\n{}",
            cluster.logs()
        );
        let acks = self.acks.lock().unwrap().clone();
        let cas = self.cas_acks.lock().unwrap().clone();
        (acks, cas, self.failed_tries.load(Ordering::Relaxed))
    }
}

/// The register's current version (0 before its first write); `Ok(None)` once stopped.
async fn register_version(
    client: &ClusterClient,
    stop: &AtomicBool,
    failed: &AtomicU64,
) -> Result<Option<u64>, String> {
    let path = format!("secret/metadata/{REGISTER}");
    match client.request("GET", &path, None, stop, failed).await {
        None => Ok(None),
        Some(a) if a.status == 404 => Ok(Some(0)),
        Some(a) if a.status == 200 => a.body["data"]["current_version"]
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("register metadata without current_version: {}", a.body)),
        Some(a) => Err(format!(
            "register metadata via {}: {} {}",
            a.node, a.status, a.body
        )),
    }
}

/// The register keeps every version, so that each acknowledged one can be read back.
async fn keep_register_versions(client: &ClusterClient) {
    let (stop, failed) = (AtomicBool::new(false), AtomicU64::new(0));
    let answer = client
        .request(
            "POST",
            &format!("secret/metadata/{REGISTER}"),
            Some(&json!({ "max_versions": 100_000 })),
            &stop,
            &failed,
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 204, "{}", answer.body);
}

/// Reads `path` until an answer a fail-over does not explain, for at most 30 s.
async fn read(client: &ClusterClient, path: &str) -> Answer {
    let (stop, failed) = (AtomicBool::new(false), AtomicU64::new(0));
    tokio::time::timeout(
        Duration::from_secs(30),
        client.request("GET", path, None, &stop, &failed),
    )
    .await
    .unwrap_or_else(|_| panic!("no node answered GET {path} within 30 s"))
    .unwrap()
}

/// Reads every acknowledged key back (eight at a time); returns what is missing or different.
async fn read_back(client: &ClusterClient, acks: &[Ack]) -> Vec<String> {
    let chunks: Vec<Vec<Ack>> = acks
        .chunks(acks.len().div_ceil(8).max(1))
        .map(<[Ack]>::to_vec)
        .collect();
    let mut tasks = Vec::new();
    for chunk in chunks {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut problems = Vec::new();
            for ack in chunk {
                let a = read(&client, &format!("secret/data/{}", ack.key)).await;
                let got = &a.body["data"]["data"]["v"];
                if a.status != 200 || got != ack.value.as_str() {
                    problems.push(format!(
                        "{} (acknowledged by {}): expected {:?}, read {} {}",
                        ack.key, ack.node, ack.value, a.status, a.body
                    ));
                }
            }
            problems
        }));
    }
    let mut problems = Vec::new();
    for task in tasks {
        problems.extend(task.await.unwrap());
    }
    problems
}

/// What the check-and-set register shows: every acknowledged write is version `cas + 1`,
/// no version is acknowledged twice, versions follow real time (a write acknowledged
/// before another was sent has a lower version), and each reads back with its value.
async fn check_register(client: &ClusterClient, acks: &[CasAck]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut by_version: BTreeMap<u64, Vec<&CasAck>> = BTreeMap::new();
    for ack in acks {
        if ack.version != ack.cas + 1 {
            problems.push(format!(
                "cas {} acknowledged as version {} by {}",
                ack.cas, ack.version, ack.node
            ));
        }
        by_version.entry(ack.version).or_default().push(ack);
    }
    for (version, twice) in by_version.iter().filter(|(_, a)| a.len() > 1) {
        problems.push(format!(
            "version {version} acknowledged {} times: {:?}",
            twice.len(),
            twice
                .iter()
                .map(|a| (&a.node, &a.value))
                .collect::<Vec<_>>()
        ));
    }
    let mut by_sent: Vec<&CasAck> = acks.iter().collect();
    by_sent.sort_by_key(|a| a.sent);
    let mut by_done: Vec<&CasAck> = acks.iter().collect();
    by_done.sort_by_key(|a| a.done);
    let (mut i, mut highest): (usize, Option<&CasAck>) = (0, None);
    for ack in by_sent {
        while i < by_done.len() && by_done[i].done < ack.sent {
            if highest.is_none_or(|h| by_done[i].version > h.version) {
                highest = Some(by_done[i]);
            }
            i += 1;
        }
        if let Some(h) = highest
            && h.version >= ack.version
        {
            problems.push(format!(
                "version {} (by {}) was acknowledged before version {} (by {}) was sent",
                h.version, h.node, ack.version, ack.node
            ));
        }
    }
    for ack in acks {
        let a = read(
            client,
            &format!("secret/data/{REGISTER}?version={}", ack.version),
        )
        .await;
        if a.status != 200 || a.body["data"]["data"]["v"] != ack.value.as_str() {
            problems.push(format!(
                "register version {} (acknowledged by {}): expected {:?}, read {} {}",
                ack.version, ack.node, ack.value, a.status, a.body
            ));
        }
    }
    problems
}

/// The longest stretch without an acknowledged write that ends after `t0`:
/// (its start, its end).
fn longest_gap(acks: &[Ack], t0: Instant) -> (Instant, Instant) {
    let mut done: Vec<Instant> = acks.iter().map(|a| a.done).collect();
    done.sort();
    let mut best = (t0, t0);
    for pair in done.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if b > t0 && b - a > best.1 - best.0 {
            best = (a, b);
        }
    }
    best
}

/// The unavailability the writers saw around the fault at `t0`, in words.
fn unavailability(acks: &[Ack], t0: Instant) -> String {
    let (from, to) = longest_gap(acks, t0);
    let before = acks.iter().filter(|a| a.done <= t0).count();
    format!(
        "writers saw no acknowledged write for {:.3}s (from {} to {} relative to the fault); {} writes acknowledged ({before} before the fault, {} after)",
        (to - from).as_secs_f64(),
        relative(t0, from),
        relative(t0, to),
        acks.len(),
        acks.len() - before,
    )
}

/// `t` relative to `t0`: `+1.234s` or `-0.012s`.
fn relative(t0: Instant, t: Instant) -> String {
    if t >= t0 {
        format!("+{:.3}s", (t - t0).as_secs_f64())
    } else {
        format!("-{:.3}s", (t0 - t).as_secs_f64())
    }
}

// ---------------------------------------------------------------------------------------
// The witness inside PostgreSQL.

/// A statement trigger on the KV table: for every write statement, the writing session's
/// `application_name` (`ha_node_<n>`) and the `api_addr` of the node the lock row names at
/// that instant. plpgsql runs each statement of a volatile function in a fresh snapshot
/// under READ COMMITTED, so `holder` is the lock as committed when the write ran, not as it
/// was when the writer's transaction began.
const WITNESS: &str = "
CREATE TABLE haload_witness (
    seq    bigserial PRIMARY KEY,
    writer text NOT NULL,
    holder text,
    at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE FUNCTION haload_witness() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO haload_witness (writer, holder)
    VALUES (current_setting('application_name'),
            (SELECT ha_value::json ->> 'api_addr' FROM tresor_ha_locks WHERE ha_key = 'core/lock'));
    RETURN NULL;
END
$$;
CREATE TRIGGER haload_witness AFTER INSERT OR UPDATE OR DELETE ON tresor_kv_store
    FOR EACH STATEMENT EXECUTE FUNCTION haload_witness();
";

/// What the witness saw: write statements per node, and every write made by a node the
/// lock did not name at that instant.
struct Witnessed {
    by_node: BTreeMap<String, u64>,
    violations: Vec<String>,
}

async fn witnessed(admin: &tokio_postgres::Client, cluster: &Cluster) -> Witnessed {
    let apps: HashMap<&str, &str> = cluster
        .nodes
        .iter()
        .map(|n| (n.app.as_str(), n.addr.as_str()))
        .collect();
    let rows = admin
        .query(
            "SELECT seq, writer, holder, at::text FROM haload_witness ORDER BY seq",
            &[],
        )
        .await
        .unwrap();
    let mut by_node = BTreeMap::new();
    let mut violations = Vec::new();
    for row in rows {
        let (seq, writer, holder, at): (i64, String, Option<String>, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let addr = apps.get(writer.as_str()).copied();
        *by_node
            .entry(addr.unwrap_or(&writer).to_owned())
            .or_insert(0) += 1;
        if addr.is_none() || holder.as_deref() != addr {
            violations.push(format!(
                "#{seq} at {at}: {writer} ({addr:?}) wrote while the lock named {holder:?}"
            ));
        }
    }
    Witnessed {
        by_node,
        violations,
    }
}

fn assert_witness(w: &Witnessed, cluster: &Cluster, writers_at_least: usize) {
    assert!(
        w.violations.is_empty(),
        "{} write statements by a node that did not hold the lock, e.g. {:?}\n{}",
        w.violations.len(),
        &w.violations[..w.violations.len().min(10)],
        cluster.logs()
    );
    assert!(
        w.by_node.len() >= writers_at_least,
        "the witness saw writes from {:?} only",
        w.by_node
    );
}

// ---------------------------------------------------------------------------------------
// A private PostgreSQL cluster, for the restart test.

/// Where `initdb` and `pg_ctl` are: `TRESOR_PG_BINDIR`, else the newest
/// `/usr/lib/postgresql/<version>/bin` that has both.
fn pg_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TRESOR_PG_BINDIR") {
        return Some(dir.into());
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// A PostgreSQL cluster of the test's own in `/tmp/haload-pg-*`, listening on 127.0.0.1 at
/// `port` (trust authentication, user `postgres`); stopped and removed when dropped.
/// PostgreSQL refuses to run as root, so as root (CI) every command runs as the `postgres`
/// OS user through `runuser`, in a directory that user owns.
struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

/// How the restart test takes PostgreSQL away.
#[derive(Debug, Clone, Copy)]
enum Outage {
    /// `pg_ctl restart -m fast`: sessions ended, a shutdown checkpoint, started again at
    /// once; the lock row is usually still valid when PostgreSQL is back.
    FastRestart,
    /// `pg_ctl stop -m immediate` (no checkpoint: the next start recovers from the WAL, as
    /// after a crash), down for [`CRASH_DOWNTIME`] (longer than the lock's TTL, so every
    /// lock row has lapsed when PostgreSQL is back), then started.
    Crash,
}

/// How long the crash outage lasts: longer than the lock's 3 s TTL.
const CRASH_DOWNTIME: Duration = Duration::from_secs(5);

impl PrivatePostgres {
    fn start(bin: PathBuf, port: u16) -> PrivatePostgres {
        let dir = tempfile::Builder::new()
            .prefix("haload-pg-")
            .tempdir_in("/tmp")
            .unwrap();
        let uid = Command::new("id").arg("-u").output().unwrap();
        let as_postgres = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        if as_postgres {
            let chown = Command::new("chown")
                .arg("postgres:")
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(chown.success(), "chown postgres {}", dir.path().display());
        }
        let pg = PrivatePostgres {
            bin,
            dir,
            port,
            as_postgres,
        };
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        pg.pg_ctl(&["start", "-o", &pg.options()]);
        pg
    }

    /// The server's options: its port, its socket directory, TCP on 127.0.0.1 only.
    fn options(&self) -> String {
        format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        )
    }

    /// Takes PostgreSQL away and brings it back; returns once it accepts connections.
    fn outage(&self, outage: Outage) {
        match outage {
            Outage::FastRestart => self.pg_ctl(&["-m", "fast", "restart"]),
            Outage::Crash => {
                self.pg_ctl(&["-m", "immediate", "stop"]);
                // The outage's length is what is tested, not a wait for something to happen.
                std::thread::sleep(CRASH_DOWNTIME);
                self.pg_ctl(&["start", "-o", &self.options()]);
            }
        }
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("postgresql.log")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e} (runuser needed when run as root)"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}\n{}\n{}\nlog:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.log()).unwrap_or_default()
        );
    }

    /// `pg_ctl <args>`, waiting (`-w`) up to 60 s for it to finish.
    fn pg_ctl(&self, args: &[&str]) {
        let (data, log) = (self.data(), self.log().display().to_string());
        let mut all = vec!["-D", &data, "-l", &log, "-w", "-t", "60"];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all);
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    async fn connect(&self, database: &str) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(
            &format!(
                "host=127.0.0.1 port={} user=postgres dbname={database}",
                self.port
            ),
            tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}

// ---------------------------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_the_active_node_under_write_load_fails_over_within_5s_and_keeps_every_acknowledged_write()
 {
    let _serial = SERIAL.lock().await;
    let db = TestDb::new("haload").await;
    let mut cluster = Cluster::start(&db.url()).await;
    let admin = db.admin().await;
    admin.batch_execute(WITNESS).await.unwrap();
    let client = ClusterClient::new(cluster.addrs(), &cluster.root);
    let load = Load::start(&client, 4, &[]);
    load.wait_for(&cluster, 100, Duration::from_secs(20), "before the kill")
        .await;

    let a = one_active(&plain(), &cluster.nodes, Duration::from_secs(5)).await;
    cluster.nodes[a].server.take().unwrap().kill9();
    let t0 = Instant::now();
    let (b, seen) = next_active(&cluster, None, t0, Duration::from_secs(15)).await;
    let failover = seen - t0;
    load.wait_for(
        &cluster,
        100,
        Duration::from_secs(20),
        "after the fail-over",
    )
    .await;
    let (acks, _, failed) = load.stop(&cluster).await;

    let new_addr = &cluster.nodes[b].addr;
    let first_on_new = acks
        .iter()
        .filter(|ack| ack.done > t0 && &ack.node == new_addr)
        .map(|ack| ack.done)
        .min()
        .unwrap();
    let by_killed = acks
        .iter()
        .filter(|ack| ack.node == cluster.nodes[a].addr)
        .count();
    eprintln!(
        "haload: kill -9: node {b} active {:.3}s after node {a} was killed; first write acknowledged by it {} after the kill; {}; {by_killed} acknowledged by the killed node; {failed} failed tries retried",
        failover.as_secs_f64(),
        since(t0, first_on_new),
        unavailability(&acks, t0),
    );
    assert!(
        failover <= Duration::from_secs(5),
        "take-over took {failover:?}"
    );
    assert!(
        by_killed > 0,
        "no write was acknowledged by the killed node"
    );

    let problems = read_back(&client, &acks).await;
    assert!(
        problems.is_empty(),
        "{} of {} acknowledged writes are missing or different after the fail-over: {:?}",
        problems.len(),
        acks.len(),
        &problems[..problems.len().min(10)]
    );
    let w = witnessed(&admin, &cluster).await;
    eprintln!(
        "haload: kill -9: write statements per node: {:?}; {} by a node the lock did not name",
        w.by_node,
        w.violations.len()
    );
    assert_witness(&w, &cluster, 2);
}

/// Kills every session of `app` in the database `admin` is connected to; returns how many.
async fn terminate_sessions(admin: &tokio_postgres::Client, app: &str) -> usize {
    admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1 AND datname = current_database()",
            &[&app],
        )
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread")]
async fn pg_terminate_backend_of_the_active_node_under_write_load_never_lets_two_nodes_write() {
    let _serial = SERIAL.lock().await;
    let db = TestDb::new("haload").await;
    let cluster = Cluster::start(&db.url()).await;
    let admin = db.admin().await;
    admin.batch_execute(WITNESS).await.unwrap();
    let client = ClusterClient::new(cluster.addrs(), &cluster.root);
    keep_register_versions(&client).await;
    let load = Load::start(&client, 3, &cluster.addrs());
    load.wait_for(&cluster, 100, Duration::from_secs(20), "before the cut")
        .await;

    let mut cuts = Vec::new();
    for round in 0..2 {
        let a = one_active(&plain(), &cluster.nodes, Duration::from_secs(10)).await;
        let killed = terminate_sessions(&admin, &cluster.nodes[a].app).await;
        assert!(killed > 0, "node {a} had no session to terminate");
        let t0 = Instant::now();
        let (b, seen) = next_active(&cluster, Some(a), t0, Duration::from_secs(15)).await;
        load.wait_for(
            &cluster,
            100,
            Duration::from_secs(20),
            &format!("after cut {round}"),
        )
        .await;
        cuts.push((a, b, killed, t0, seen - t0));
    }
    let (acks, cas_acks, failed) = load.stop(&cluster).await;

    for (round, (a, b, killed, t0, failover)) in cuts.iter().enumerate() {
        let end = cuts.get(round + 1).map_or(Instant::now(), |c| c.3);
        let window: Vec<Ack> = acks.iter().filter(|ack| ack.done < end).cloned().collect();
        eprintln!(
            "haload: pg_terminate_backend #{round}: {killed} sessions of node {a} killed; node {b} active {:.3}s later; {}",
            failover.as_secs_f64(),
            unavailability(&window, *t0),
        );
    }
    let per_node = |nodes: Vec<&String>| {
        let mut count: BTreeMap<usize, usize> = BTreeMap::new();
        for n in nodes {
            *count.entry(cluster.index_of(n).unwrap()).or_default() += 1;
        }
        count
    };
    eprintln!(
        "haload: pg_terminate_backend: {} writes and {} register writes acknowledged (by node: {:?} and {:?}); {failed} failed tries retried",
        acks.len(),
        cas_acks.len(),
        per_node(acks.iter().map(|a| &a.node).collect()),
        per_node(cas_acks.iter().map(|a| &a.node).collect()),
    );

    let problems = read_back(&client, &acks).await;
    assert!(
        problems.is_empty(),
        "{} of {} acknowledged writes are missing or different: {:?}",
        problems.len(),
        acks.len(),
        &problems[..problems.len().min(10)]
    );
    let register = check_register(&client, &cas_acks).await;
    let w = witnessed(&admin, &cluster).await;
    eprintln!(
        "haload: pg_terminate_backend: write statements per node: {:?}; {} by a node the lock did not name; {} register anomalies",
        w.by_node,
        w.violations.len(),
        register.len()
    );
    assert!(
        register.is_empty(),
        "the check-and-set register shows two writers or a lost write: {:?}",
        &register[..register.len().min(10)]
    );
    // Two cuts: at least two nodes were active in turn while the load ran.
    assert_witness(&w, &cluster, 2);
    let distinct: HashSet<usize> = cuts.iter().flat_map(|c| [c.0, c.1]).collect();
    assert!(distinct.len() >= 2, "{cuts:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgresql_restart_under_write_load_the_cluster_recovers_by_itself() {
    let _serial = SERIAL.lock().await;
    let Some(bin) = pg_bin_dir() else {
        eprintln!(
            "haload: SKIPPED postgresql_restart_under_write_load: no initdb and pg_ctl under /usr/lib/postgresql/*/bin (set TRESOR_PG_BINDIR)"
        );
        return;
    };
    let pg = Arc::new(PrivatePostgres::start(bin, port()));
    pg.connect("postgres")
        .await
        .batch_execute("CREATE DATABASE haload_restart ENCODING 'UTF8' TEMPLATE template0")
        .await
        .unwrap();
    let cluster = Cluster::start(&pg.url("haload_restart")).await;
    let admin = pg.connect("haload_restart").await;
    admin.batch_execute(WITNESS).await.unwrap();
    drop(admin);
    let client = ClusterClient::new(cluster.addrs(), &cluster.root);
    keep_register_versions(&client).await;
    let load = Load::start(&client, 3, &cluster.addrs());
    load.wait_for(&cluster, 100, Duration::from_secs(20), "before the restart")
        .await;

    let mut rounds = Vec::new();
    for outage in [Outage::FastRestart, Outage::Crash] {
        let a = one_active(&plain(), &cluster.nodes, Duration::from_secs(10)).await;
        let t0 = Instant::now();
        let restarting = {
            let pg = pg.clone();
            tokio::task::spawn_blocking(move || {
                pg.outage(outage);
                Instant::now()
            })
        };
        let (b, seen) = next_active(&cluster, Some(a), t0, Duration::from_secs(40)).await;
        let ready = restarting.await.unwrap();
        load.wait_for(
            &cluster,
            100,
            Duration::from_secs(30),
            &format!("after {outage:?}"),
        )
        .await;
        rounds.push((outage, a, b, t0, ready, seen));
    }
    let (acks, cas_acks, failed) = load.stop(&cluster).await;

    for (round, (outage, a, b, t0, ready, seen)) in rounds.iter().enumerate() {
        let end = rounds.get(round + 1).map_or(Instant::now(), |r| r.3);
        let window: Vec<Ack> = acks.iter().filter(|ack| ack.done < end).cloned().collect();
        let first_after = window
            .iter()
            .filter(|ack| ack.sent > *ready)
            .map(|ack| ack.done)
            .min()
            .unwrap();
        eprintln!(
            "haload: PostgreSQL {outage:?}: PostgreSQL accepted connections again after {}; node {b} (node {a} was active) active after {} ({} relative to PostgreSQL being back); the first write sent after that was acknowledged after {}; {}",
            since(*t0, *ready),
            since(*t0, *seen),
            relative(*ready, *seen),
            since(*t0, first_after),
            unavailability(&window, *t0),
        );
        assert!(
            first_after - *ready <= Duration::from_secs(15),
            "{outage:?}: writes succeeded again only {:?} after PostgreSQL was back",
            first_after - *ready
        );
    }
    eprintln!(
        "haload: PostgreSQL restarts: {} writes and {} register writes acknowledged; {failed} failed tries retried",
        acks.len(),
        cas_acks.len()
    );

    let problems = read_back(&client, &acks).await;
    assert!(
        problems.is_empty(),
        "{} of {} acknowledged writes are missing or different after the restart: {:?}",
        problems.len(),
        acks.len(),
        &problems[..problems.len().min(10)]
    );
    let register = check_register(&client, &cas_acks).await;
    let admin = pg.connect("haload_restart").await;
    let w = witnessed(&admin, &cluster).await;
    eprintln!(
        "haload: PostgreSQL restart: write statements per node: {:?}; {} by a node the lock did not name; {} register anomalies",
        w.by_node,
        w.violations.len(),
        register.len()
    );
    assert!(
        register.is_empty(),
        "the check-and-set register shows two writers or a lost write: {:?}",
        &register[..register.len().min(10)]
    );
    assert_witness(&w, &cluster, 1);
    drop(cluster);
}
