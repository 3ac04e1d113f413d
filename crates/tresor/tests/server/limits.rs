//! Listener limits (slow clients, stalled TLS handshakes, the connection limit) and
//! rate-limit quotas, against the real binary.
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
use std::time::{Duration, Instant};

use common::Server;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Stalled connections per kind (partial headers, partial body).
const STALLED_PER_KIND: usize = 1000;

/// Makes sure this process (and the server it spawns) may open enough sockets: raises the
/// soft limit on open files to the hard limit with `prlimit` when it is too low.
fn ensure_open_files(needed: u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let Some(line) = limits.lines().find(|l| l.starts_with("Max open files")) else {
        return;
    };
    let fields: Vec<&str> = line.split_whitespace().collect();
    let soft: u64 = fields[3].parse().unwrap_or(u64::MAX);
    let hard = fields[4];
    if soft >= needed {
        return;
    }
    let status = Command::new("prlimit")
        .args([
            "--pid",
            &std::process::id().to_string(),
            &format!("--nofile={hard}:{hard}"),
        ])
        .status()
        .expect("prlimit runs");
    assert!(status.success(), "could not raise the open-file limit");
}

fn config_server(dir: &Path, listener_extra: &str) -> Server {
    let config = dir.join("limits.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"inmem\" {{}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n{listener_extra}}}\n"
        ),
    )
    .unwrap();
    Server::start(&["server", &format!("-config={}", config.display())], dir)
}

fn host_port(server: &Server) -> String {
    server
        .addr
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .to_owned()
}

/// Reads until the peer closes (EOF or reset) or `deadline`; returns what was read and
/// whether the connection was closed.
async fn read_until_closed(stream: &mut TcpStream, deadline: Instant) -> (Vec<u8>, bool) {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return (received, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (received, true),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

async fn seal_status_answers(client: &reqwest::Client, server: &Server) {
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        client.get(server.url("sys/seal-status")).send(),
    )
    .await
    .expect("the server answers within 5 s while stalled clients wait")
    .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_clients_are_closed_after_the_timeouts_while_others_are_served() {
    ensure_open_files(4 * STALLED_PER_KIND as u64 + 512);
    let dir = tempfile::tempdir().unwrap();
    let server = config_server(
        dir.path(),
        "  http_read_header_timeout = \"2s\"\n  http_read_timeout = \"2s\"\n  http_idle_timeout = \"3s\"\n",
    );
    let addr = host_port(&server);
    let client = common::http();
    let started = Instant::now();

    // Half send headers that never end; half send whole headers and part of the body.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..2 * STALLED_PER_KIND {
        let addr = addr.clone();
        tasks.spawn(async move {
            let partial_body = i % 2 == 1;
            let mut stream = TcpStream::connect(&addr).await.unwrap();
            let sent = if partial_body {
                "PUT /v1/secret/x HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":"
            } else {
                "GET /v1/sys/seal-status HTTP/1.1\r\nHost: t\r\nX-Partial: "
            };
            stream.write_all(sent.as_bytes()).await.unwrap();
            let connected = Instant::now();
            let (received, closed) =
                read_until_closed(&mut stream, connected + Duration::from_secs(30)).await;
            (partial_body, received, closed, connected.elapsed())
        });
    }

    // While they all wait, the server keeps answering.
    for _ in 0..5 {
        seal_status_answers(&client, &server).await;
    }

    let mut closed_headers = 0;
    let mut closed_bodies = 0;
    while let Some(joined) = tasks.join_next().await {
        let (partial_body, received, closed, after) = joined.unwrap();
        assert!(closed, "a stalled connection was still open after 30 s");
        assert!(
            after >= Duration::from_millis(1500),
            "closed too early ({after:?})"
        );
        if partial_body {
            let text = String::from_utf8_lossy(&received);
            assert!(
                text.starts_with("HTTP/1.1 408"),
                "a stalled body gets a 408 before the close: {text:?}"
            );
            assert!(text.contains("http_read_timeout"), "{text}");
            closed_bodies += 1;
        } else {
            assert!(received.is_empty(), "no answer to half a request");
            closed_headers += 1;
        }
    }
    assert_eq!(closed_headers, STALLED_PER_KIND);
    assert_eq!(closed_bodies, STALLED_PER_KIND);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    seal_status_answers(&client, &server).await;
}

#[tokio::test]
async fn idle_keep_alive_and_silent_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = config_server(
        dir.path(),
        "  http_read_header_timeout = \"1s\"\n  http_idle_timeout = \"2s\"\n",
    );
    let addr = host_port(&server);

    // Connected and silent: the header timeout, counted from the accept.
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    // One whole request, then idle: the idle timeout.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut silent, started + Duration::from_secs(10)).await;
    assert!(closed);
    let silent_after = started.elapsed();
    let (answer, closed) = read_until_closed(&mut idle, started + Duration::from_secs(10)).await;
    assert!(closed);
    let idle_after = started.elapsed();
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    assert!(
        silent_after >= Duration::from_millis(900) && silent_after < Duration::from_secs(5),
        "{silent_after:?}"
    );
    assert!(
        idle_after >= Duration::from_millis(1900) && idle_after < Duration::from_secs(8),
        "the idle timeout, not the header timeout, applies between requests: {idle_after:?}"
    );
}

#[tokio::test]
async fn h2_connections_that_stall_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = config_server(
        dir.path(),
        "  http_read_header_timeout = \"1s\"\n  http_idle_timeout = \"2s\"\n",
    );
    let addr = host_port(&server);
    // The h2 preface and an empty SETTINGS frame, then nothing: no request ever starts.
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let started = Instant::now();
    let (received, closed) =
        read_until_closed(&mut stream, started + Duration::from_secs(10)).await;
    assert!(closed, "the h2 connection was not closed");
    assert!(!received.is_empty(), "the server spoke h2 (its SETTINGS)");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_stalled_tls_handshake_is_cut_at_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::self_signed(dir.path(), "IP:127.0.0.1");
    let config = dir.path().join("tls.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"inmem\" {{}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n  http_read_header_timeout = \"1s\"\n}}\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let server = Server::start(
        &["server", &format!("-config={}", config.display())],
        dir.path(),
    );
    let mut stream = TcpStream::connect(host_port(&server)).await.unwrap();
    // The first bytes of a ClientHello record, then silence.
    stream.write_all(&[0x16, 0x03, 0x01, 0x00]).await.unwrap();
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut stream, started + Duration::from_secs(10)).await;
    assert!(closed, "the stalled handshake was not cut");
    let after = started.elapsed();
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(5),
        "{after:?}"
    );
}

#[tokio::test]
async fn max_request_duration_answers_503_for_a_request_that_runs_too_long() {
    // The body read timeout is longer than the request's own limit: the request limit wins.
    let dir = tempfile::tempdir().unwrap();
    let server = config_server(
        dir.path(),
        "  http_read_timeout = \"30s\"\n  max_request_duration = \"1s\"\n",
    );
    let mut stream = TcpStream::connect(host_port(&server)).await.unwrap();
    stream
        .write_all(b"PUT /v1/sys/init HTTP/1.1\r\nHost: t\r\nContent-Length: 50\r\n\r\n{")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("max_request_duration"), "{text}");
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn the_connection_limit_holds_new_connections_until_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let server = config_server(
        dir.path(),
        "  max_connections = 3\n  http_read_header_timeout = \"60s\"\n",
    );
    let addr = host_port(&server);
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        // A complete request on each, so each is surely accepted before the next step.
        stream
            .write_all(b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(stream);
    }
    // A fourth connection is not served while three are held...
    let mut waiting = TcpStream::connect(&addr).await.unwrap();
    waiting
        .write_all(b"GET /v1/sys/seal-status HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let early = tokio::time::timeout(Duration::from_millis(700), waiting.read(&mut buf)).await;
    assert!(early.is_err(), "a connection over the limit was served");
    // ...and is served as soon as one of them closes.
    drop(held.pop());
    let n = tokio::time::timeout(Duration::from_secs(5), waiting.read(&mut buf))
        .await
        .expect("served once a slot is free")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
}

async fn write(client: &reqwest::Client, server: &Server, path: &str, body: serde_json::Value) {
    let response = client
        .put(server.url(path))
        .header("X-Vault-Token", "root")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert_eq!(status, 204, "{path}: {}", response.text().await.unwrap());
}

async fn status_of(client: &reqwest::Client, server: &Server, path: &str) -> reqwest::Response {
    client
        .get(server.url(path))
        .header("X-Vault-Token", "root")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_rate_limit_quota_answers_429_with_retry_after_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), "root");
    let client = common::http();
    write(
        &client,
        &server,
        "sys/quotas/rate-limit/global",
        json!({"rate": 3, "interval": "2s"}),
    )
    .await;
    let mut refused = None;
    for _ in 0..4 {
        let response = status_of(&client, &server, "sys/mounts").await;
        if response.status() == 429 {
            refused = Some(response);
            break;
        }
        assert_eq!(response.status(), 200);
    }
    let refused = refused.expect("the fourth request within 2 s is refused");
    // As in OpenBao: no rate-limit header at all unless the config enables them.
    assert!(refused.headers().get("retry-after").is_none());
    assert!(refused.headers().get("x-ratelimit-limit").is_none());
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(
        body,
        json!({"errors": ["request path \"sys/mounts\": rate limit quota exceeded"]})
    );
    // Exempt paths are never limited.
    assert_eq!(
        status_of(&client, &server, "sys/health").await.status(),
        200
    );
    // The window reopens after the interval.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = status_of(&client, &server, "sys/mounts").await.status();
        if status == 200 {
            break;
        }
        assert_eq!(status, 429);
        assert!(Instant::now() < deadline, "still limited after 5 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // With response headers enabled, every limited answer carries them.
    write(
        &client,
        &server,
        "sys/quotas/config",
        json!({"enable_rate_limit_response_headers": true}),
    )
    .await;
    write(
        &client,
        &server,
        "sys/quotas/rate-limit/global",
        json!({"rate": 100, "interval": "1m"}),
    )
    .await;
    let response = status_of(&client, &server, "sys/mounts").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-ratelimit-limit"], "100");
    assert_eq!(response.headers()["x-ratelimit-remaining"], "99");
    assert!(response.headers().contains_key("x-ratelimit-reset"));
    assert!(response.headers().get("retry-after").is_none());
    // ... and a refusal then says when to come back.
    write(
        &client,
        &server,
        "sys/quotas/rate-limit/global",
        json!({"rate": 1, "interval": "2s"}),
    )
    .await;
    let mut refused = None;
    for _ in 0..2 {
        let response = status_of(&client, &server, "sys/mounts").await;
        if response.status() == 429 {
            refused = Some(response);
            break;
        }
    }
    let refused = refused.expect("the second request within 2 s is refused");
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry <= 2, "{retry}");
    assert_eq!(refused.headers()["x-ratelimit-limit"], "1");
}

#[tokio::test]
async fn a_mount_quota_does_not_touch_other_mounts_and_a_path_quota_wins_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), "root");
    let client = common::http();
    write(
        &client,
        &server,
        "sys/quotas/rate-limit/kv",
        json!({"rate": 1, "interval": "1h", "path": "secret/"}),
    )
    .await;
    write(
        &client,
        &server,
        "sys/quotas/rate-limit/app",
        json!({"rate": 100, "interval": "1h", "path": "secret/data/app*"}),
    )
    .await;
    assert_eq!(
        status_of(&client, &server, "secret/data/x").await.status(),
        404
    );
    assert_eq!(
        status_of(&client, &server, "secret/data/x").await.status(),
        429
    );
    // Under the path quota, and on other mounts: not limited.
    for _ in 0..5 {
        assert_eq!(
            status_of(&client, &server, "secret/data/app/one")
                .await
                .status(),
            404
        );
        assert_eq!(
            status_of(&client, &server, "cubbyhole/x").await.status(),
            404
        );
        assert_eq!(
            status_of(&client, &server, "sys/mounts").await.status(),
            200
        );
    }
    // Disabling the mount removes its quotas.
    let response = client
        .delete(server.url("sys/mounts/secret"))
        .header("X-Vault-Token", "root")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let response = client
        .request(
            reqwest::Method::from_bytes(b"LIST").unwrap(),
            server.url("sys/quotas/rate-limit"),
        )
        .header("X-Vault-Token", "root")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404, "no quota left");
}

#[tokio::test]
async fn quotas_survive_a_restart_below_the_barrier() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.redb");
    let args = [
        "server".to_owned(),
        "-dev".to_owned(),
        "-dev-listen-address=127.0.0.1:0".to_owned(),
        "-dev-root-token-id=root".to_owned(),
        format!("-dev-store=embedded:{}", store.display()),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&args, dir.path());
    let client = common::http();
    write(
        &client,
        &server,
        "sys/quotas/rate-limit/kept",
        json!({"rate": 7.5, "interval": 90, "block_interval": "2m", "path": "cubbyhole"}),
    )
    .await;
    server.terminate();
    let server = Server::start(&args, dir.path());
    let response = status_of(&client, &server, "sys/quotas/rate-limit/kept").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["data"],
        json!({
            "type": "rate-limit", "name": "kept", "path": "cubbyhole/", "role": "",
            "rate": 7.5, "interval": 90, "block_interval": 120, "inheritable": false
        })
    );
}
