//! Observability end to end against the real binary: `sys/metrics` in both formats (the text
//! format checked by the reference parser, Python's `prometheus_client`), counters that move
//! with traffic, the gauges that follow the seal state, who may read metrics, request ids on
//! log lines and no secret in the log at the most verbose level, `sys/in-flight-req`,
//! `sys/host-info` and `sys/config/state/sanitized`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Server, http, raw};
use serde_json::{Value, json};

/// The venv `scripts/install-peers.sh` fills (it pins `prometheus-client`).
fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.build/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/install-peers.sh",
        python.display()
    );
    python
}

/// Parsed samples: `(name, labels, value)`.
struct Scrape {
    families: serde_json::Map<String, Value>,
    samples: Vec<(String, serde_json::Map<String, Value>, f64)>,
}

impl Scrape {
    /// Parses `text` with `prometheus_client.parser`; panics with its message if it refuses.
    fn parse(text: &str) -> Scrape {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support_prometheus/parse.py");
        let mut child = Command::new(python())
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "prometheus_client refused the exposition: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let samples = v["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s[0].as_str().unwrap().to_owned(),
                    s[1].as_object().unwrap().clone(),
                    s[2].as_f64().unwrap_or(f64::NAN),
                )
            })
            .collect();
        Scrape {
            families: v["families"].as_object().unwrap().clone(),
            samples,
        }
    }

    /// The value of the sample `name` whose labels include every pair of `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).and_then(Value::as_str) == Some(*v))
            })
            .map(|(_, _, v)| *v)
    }

    fn value_or_zero(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels).unwrap_or(0.0)
    }
}

async fn get_text(server: &Server, path: &str, token: Option<&str>) -> (u16, String, String) {
    let mut req = http().get(server.url(path));
    if let Some(t) = token {
        req = req.header("X-Vault-Token", t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, resp.text().await.unwrap())
}

async fn prometheus(server: &Server, token: Option<&str>) -> Scrape {
    let (status, content_type, text) =
        get_text(server, "sys/metrics?format=prometheus", token).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    Scrape::parse(&text)
}

fn write_config(dir: &Path, extra: &str, listener_extra: &str) -> PathBuf {
    let path = dir.join("tresor.hcl");
    std::fs::write(
        &path,
        format!(
            "storage \"embedded\" {{ path = \"{}\" }}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n{listener_extra}}}\n{extra}",
            dir.join("data.redb").display()
        ),
    )
    .unwrap();
    path
}

fn start_config(dir: &Path, config: &Path, extra_args: &[&str], env: &[(&str, &str)]) -> Server {
    let mut args = vec!["server".to_owned(), format!("-config={}", config.display())];
    args.extend(extra_args.iter().map(|a| (*a).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_with_env(&args, env, dir)
}

/// `sys/init` (one share) and `sys/unseal`; returns the root token.
async fn init_unseal(server: &Server) -> String {
    let (s, init) = raw(
        server,
        "PUT",
        "sys/init",
        None,
        Some(json!({"secret_shares": 1, "secret_threshold": 1})),
    )
    .await;
    assert_eq!(s, 200, "{init}");
    let key = init["keys"][0].as_str().unwrap().to_owned();
    let (s, b) = raw(server, "PUT", "sys/unseal", None, Some(json!({"key": key}))).await;
    assert_eq!((s, &b["sealed"]), (200, &json!(false)), "{b}");
    init["root_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_output_parses_and_counters_move_with_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), "root");
    // Dev mode serves metrics without a token, as OpenBao's does.
    let before = prometheus(&server, None).await;
    for (name, kind) in [
        ("vault_core_handle_request", "histogram"),
        ("vault_route", "histogram"),
        ("vault_barrier_get", "histogram"),
        ("vault_barrier_put", "histogram"),
        ("vault_core_unsealed", "gauge"),
        ("vault_core_active", "gauge"),
        ("vault_expire_num_leases", "gauge"),
        ("vault_token_count", "gauge"),
        ("vault_core_in_flight_requests", "gauge"),
        ("vault_audit_log_request_failure", "counter"),
        ("vault_expire_revoke_failure", "counter"),
    ] {
        assert_eq!(
            before.families.get(name).and_then(Value::as_str),
            Some(kind),
            "{name} in {:?}",
            before.families
        );
    }
    assert_eq!(before.value("vault_core_unsealed", &[]), Some(1.0));
    assert_eq!(before.value("vault_core_active", &[]), Some(1.0));

    let read_labels = [("mount", "secret/"), ("operation", "read")];
    let (s, _) = raw(
        &server,
        "POST",
        "secret/data/metrics-test",
        Some("root"),
        Some(json!({"data": {"k": "v"}})),
    )
    .await;
    assert_eq!(s, 200);
    for _ in 0..3 {
        let (s, _) = raw(
            &server,
            "GET",
            "secret/data/metrics-test",
            Some("root"),
            None,
        )
        .await;
        assert_eq!(s, 200);
    }
    let (s, _) = raw(
        &server,
        "POST",
        "auth/token/create",
        Some("root"),
        Some(json!({"ttl": "1h"})),
    )
    .await;
    assert_eq!(s, 200);

    let after = prometheus(&server, None).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        after.value_or_zero(name, labels) - before.value_or_zero(name, labels)
    };
    assert_eq!(moved("vault_route_count", &read_labels), 3.0);
    assert_eq!(
        moved(
            "vault_route_count",
            &[("mount", "secret/"), ("operation", "update")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "vault_route_count",
            &[("mount", "auth/token/"), ("operation", "update")]
        ),
        1.0
    );
    assert!(moved("vault_core_handle_request_count", &[]) >= 5.0);
    // The KV write and the token creation each stored something (a put or a transaction).
    assert!(
        moved("vault_barrier_transaction_count", &[]) + moved("vault_barrier_put_count", &[])
            >= 2.0
    );
    assert!(moved("vault_barrier_get_count", &[]) >= 1.0);
    // The histogram is cumulative: the +Inf bucket is the count.
    assert_eq!(
        after.value(
            "vault_route_bucket",
            &[("mount", "secret/"), ("operation", "read"), ("le", "+Inf")]
        ),
        after.value("vault_route_count", &read_labels)
    );
    assert!(after.value_or_zero("vault_route_sum", &read_labels) > 0.0);
    assert!(after.value_or_zero("vault_token_count", &[]) >= 1.0);
    assert!(after.value_or_zero("vault_expire_num_leases", &[]) >= 1.0);
    assert!(
        after.value_or_zero("vault_expire_leases_by_expiration", &[("expiring", "24h")]) >= 1.0
    );

    // The JSON summary: go-metrics' InmemSink shape, as OpenBao returns it by default.
    let (status, content_type, text) = get_text(&server, "sys/metrics", None).await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let summary: Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&String> = summary.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["Counters", "Gauges", "Points", "Samples", "Timestamp"]
    );
    assert!(
        summary["Timestamp"]
            .as_str()
            .unwrap()
            .ends_with(" +0000 UTC")
    );
    let unsealed = summary["Gauges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["Name"] == "vault.core.unsealed")
        .unwrap();
    assert_eq!(unsealed["Value"], 1.0);
    assert!(unsealed["Labels"].is_object());
    let route = summary["Samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["Name"] == "vault.route"
                && s["Labels"] == json!({"mount": "secret/", "operation": "read"})
        })
        .unwrap();
    for key in ["Count", "Rate", "Sum", "Min", "Max", "Mean", "Stddev"] {
        assert!(route[key].is_number(), "{key} in {route}");
    }
    assert_eq!(route["Count"], 3);
    for counter in summary["Counters"].as_array().unwrap() {
        let mut keys: Vec<&String> = counter.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "Count", "Labels", "Max", "Mean", "Min", "Name", "Rate", "Stddev", "Sum"
            ]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_need_a_token_and_prometheus_needs_a_telemetry_block() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "", "");
    let server = start_config(dir.path(), &config, &[], &[]);
    let root = init_unseal(&server).await;

    let (s, _, body) = get_text(&server, "sys/metrics", None).await;
    assert_eq!(s, 403, "{body}");
    let (s, _, _) = get_text(&server, "sys/metrics", Some(&root)).await;
    assert_eq!(s, 200);
    let (s, content_type, body) =
        get_text(&server, "sys/metrics?format=prometheus", Some(&root)).await;
    assert_eq!(
        (s, content_type.as_str(), body.as_str()),
        (400, "text/plain", "prometheus is not enabled")
    );
    let (s, content_type, body) = get_text(&server, "sys/metrics?format=yaml", Some(&root)).await;
    assert_eq!(
        (s, content_type.as_str(), body.as_str()),
        (400, "text/plain", "metric response format \"yaml\" unknown")
    );

    // A policy with read on sys/metrics is enough; without it, 403.
    let (s, _) = raw(
        &server,
        "PUT",
        "sys/policies/acl/metrics",
        Some(&root),
        Some(json!({"policy": "path \"sys/metrics\" { capabilities = [\"read\"] }"})),
    )
    .await;
    assert_eq!(s, 204);
    let token = |policies: Value| {
        let server = &server;
        let root = root.clone();
        async move {
            let (s, b) = raw(
                server,
                "POST",
                "auth/token/create",
                Some(&root),
                Some(json!({"policies": policies})),
            )
            .await;
            assert_eq!(s, 200, "{b}");
            b["auth"]["client_token"].as_str().unwrap().to_owned()
        }
    };
    let reader = token(json!(["metrics"])).await;
    let other = token(json!(["default"])).await;
    assert_eq!(get_text(&server, "sys/metrics", Some(&reader)).await.0, 200);
    assert_eq!(get_text(&server, "sys/metrics", Some(&other)).await.0, 403);
    assert_eq!(
        get_text(&server, "sys/in-flight-req", Some(&other)).await.0,
        403
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listener_can_serve_metrics_and_in_flight_requests_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "telemetry {\n  prometheus_retention_time = \"1h\"\n  disable_hostname = true\n}\n",
        "  telemetry {\n    unauthenticated_metrics_access = true\n  }\n  inflight_requests_logging {\n    unauthenticated_in_flight_requests_access = true\n  }\n",
    );
    let server = start_config(dir.path(), &config, &[], &[]);
    // Uninitialised (hence sealed): the raw handlers answer anyway, and say so.
    let scrape = prometheus(&server, None).await;
    assert_eq!(scrape.value("vault_core_unsealed", &[]), Some(0.0));
    assert_eq!(scrape.value("vault_core_active", &[]), Some(0.0));
    let root = init_unseal(&server).await;
    assert_eq!(
        prometheus(&server, None)
            .await
            .value("vault_core_unsealed", &[]),
        Some(1.0)
    );

    let (s, in_flight) = raw(&server, "GET", "sys/in-flight-req", None, None).await;
    assert_eq!(s, 200, "{in_flight}");
    let entries = in_flight.as_object().unwrap();
    // This very request is in flight while it is answered.
    let (id, mine) = entries
        .iter()
        .find(|(_, e)| e["request_path"] == "/v1/sys/in-flight-req")
        .unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(mine["request_method"], "GET");
    assert!(
        mine["client_remote_address"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(mine["client_id"], "");
    assert!(mine["start_time"].as_str().unwrap().ends_with('Z'));
    // Only GET on the raw handlers.
    let (s, b) = raw(&server, "POST", "sys/metrics", None, Some(json!({}))).await;
    assert_eq!((s, b), (405, json!({"errors": []})));
    let (s, b) = raw(&server, "DELETE", "sys/in-flight-req", None, None).await;
    assert_eq!((s, b), (405, json!({"errors": []})));

    // Sealing is seen at the next scrape.
    let (s, _) = raw(&server, "PUT", "sys/seal", Some(&root), None).await;
    assert_eq!(s, 204);
    assert_eq!(
        prometheus(&server, None)
            .await
            .value("vault_core_unsealed", &[]),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zero_retention_turns_the_prometheus_format_off() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "telemetry {\n  prometheus_retention_time = 0\n}\n",
        "",
    );
    let server = start_config(dir.path(), &config, &[], &[]);
    let root = init_unseal(&server).await;
    let (s, _, body) = get_text(&server, "sys/metrics?format=prometheus", Some(&root)).await;
    assert_eq!((s, body.as_str()), (400, "prometheus is not enabled"));
}

/// Every JSON log line, parsed.
fn json_lines(server: &Server) -> Vec<Value> {
    server
        .log_text()
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn log_lines_carry_the_request_id_and_never_a_secret_or_token() {
    let dir = tempfile::tempdir().unwrap();
    let root = "root-token-obs-7d1c9e";
    let server = Server::start(
        &[
            "server",
            "-dev",
            "-dev-listen-address=127.0.0.1:0",
            &format!("-dev-root-token-id={root}"),
            "-log-level=trace",
            "-log-format=json",
        ],
        dir.path(),
    );
    let secret = "kv-secret-value-3f9a8b";
    let (s, _) = raw(
        &server,
        "POST",
        "secret/data/app",
        Some(root),
        Some(json!({"data": {"password": secret}})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, read) = raw(&server, "GET", "secret/data/app", Some(root), None).await;
    assert_eq!(
        (s, &read["data"]["data"]["password"]),
        (200, &json!(secret))
    );
    let read_id = read["request_id"].as_str().unwrap().to_owned();

    // An AppRole login: its secret id and the token it issues must not be logged either.
    let (s, _) = raw(
        &server,
        "POST",
        "sys/auth/approle",
        Some(root),
        Some(json!({"type": "approle"})),
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = raw(
        &server,
        "POST",
        "auth/approle/role/app",
        Some(root),
        Some(json!({"token_policies": ["default"]})),
    )
    .await;
    assert_eq!(s, 204);
    let (_, role) = raw(
        &server,
        "GET",
        "auth/approle/role/app/role-id",
        Some(root),
        None,
    )
    .await;
    let role_id = role["data"]["role_id"].as_str().unwrap().to_owned();
    let (_, sid) = raw(
        &server,
        "POST",
        "auth/approle/role/app/secret-id",
        Some(root),
        None,
    )
    .await;
    let secret_id = sid["data"]["secret_id"].as_str().unwrap().to_owned();
    let (s, login) = raw(
        &server,
        "POST",
        "auth/approle/login",
        None,
        Some(json!({"role_id": role_id, "secret_id": secret_id})),
    )
    .await;
    assert_eq!(s, 200, "{login}");
    let client_token = login["auth"]["client_token"].as_str().unwrap().to_owned();
    let (s, _) = raw(
        &server,
        "GET",
        "auth/token/lookup-self",
        Some(&client_token),
        None,
    )
    .await;
    assert_eq!(s, 200);
    // A denied request and a malformed one are logged too, with their ids.
    let (s, _) = raw(&server, "GET", "secret/data/app", Some(&client_token), None).await;
    assert_eq!(s, 403);

    // The request's debug line is there, under the id the envelope carries.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let lines = loop {
        let lines = json_lines(&server);
        let logged = lines.iter().any(|l| {
            l["span"]["id"] == json!(read_id) && l["fields"]["message"] == "request answered"
        });
        if logged || std::time::Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let answered: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "request answered")
        .collect();
    assert!(
        answered
            .iter()
            .any(|l| l["span"]["id"] == json!(read_id) && l["fields"]["mount"] == "secret/"),
        "no answered line for {read_id}"
    );
    // Every line logged while serving a request names the request.
    for line in &answered {
        assert!(
            line["span"]["name"] == "request" && line["span"]["id"].is_string(),
            "{line}"
        );
    }
    assert!(answered.len() >= 8, "{}", answered.len());

    let log = server.log_text();
    for (what, value) in [
        ("the KV secret", secret),
        ("the root token", root),
        ("the AppRole secret id", secret_id.as_str()),
        ("the issued token", client_token.as_str()),
    ] {
        assert!(
            !log.contains(value),
            "{what} appears in the trace-level log"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_format_comes_from_flags_environment_or_config() {
    let dir = tempfile::tempdir().unwrap();
    // The environment (Vault's name) asks for JSON.
    let server = Server::start_with_env(
        &[
            "server",
            "-dev",
            "-dev-listen-address=127.0.0.1:0",
            "-dev-root-token-id=root",
            "-log-level=debug",
        ],
        &[("VAULT_LOG_FORMAT", "json")],
        dir.path(),
    );
    let (_, b) = raw(&server, "GET", "sys/mounts", Some("root"), None).await;
    let id = b["request_id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !server.log_text().contains(&id) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        json_lines(&server)
            .iter()
            .any(|l| l["span"]["id"] == json!(id))
    );
    drop(server);

    // The config file says standard, the flag beats it... and a config-only JSON format works.
    let config = write_config(
        dir.path(),
        "log_format = \"json\"\nlog_level = \"debug\"\n",
        "",
    );
    let server = start_config(dir.path(), &config, &[], &[]);
    let (s, _) = raw(&server, "GET", "sys/seal-status", None, None).await;
    assert_eq!(s, 200);
    assert!(!json_lines(&server).is_empty(), "{}", server.log_text());
    drop(server);
    let server = start_config(dir.path(), &config, &["-log-format=standard"], &[]);
    let root = init_unseal(&server).await;
    let (_, b) = raw(&server, "GET", "sys/mounts", Some(&root), None).await;
    let id = b["request_id"].as_str().unwrap().to_owned();
    let needle = format!("request{{id={id}}}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !server.log_text().contains(&needle) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let log = server.log_text();
    assert!(log.contains(&needle), "{log}");
    assert!(json_lines(&server).is_empty(), "{log}");

    // A bad format is refused at start.
    let out = Command::new(common::BIN)
        .args([
            "server",
            "-dev",
            "-dev-listen-address=127.0.0.1:0",
            "-log-format=xml",
        ])
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid log format \"xml\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn host_info_and_the_sanitized_config_have_openbaos_shape_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let audit_log = dir.path().join("audit.log");
    let config = write_config(
        dir.path(),
        &format!(
            "telemetry {{ prometheus_retention_time = \"2h\" }}\ncluster_name = \"obs\"\naudit \"file\" \"main/\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
            audit_log.display()
        ),
        "",
    );
    let server = start_config(dir.path(), &config, &[], &[]);
    let root = init_unseal(&server).await;

    let (s, info) = raw(&server, "GET", "sys/host-info", Some(&root), None).await;
    assert_eq!(s, 200, "{info}");
    let data = info["data"].as_object().unwrap();
    let mut keys: Vec<&String> = data.keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["cpu", "cpu_times", "disk", "host", "memory", "timestamp"]
    );
    assert!(info["warnings"].is_null(), "{info}");
    let cpu = &data["cpu"][0];
    for k in [
        "cpu",
        "vendorId",
        "family",
        "model",
        "stepping",
        "physicalId",
        "coreId",
        "cores",
        "modelName",
        "mhz",
        "cacheSize",
        "flags",
        "microcode",
    ] {
        assert!(cpu.get(k).is_some(), "cpu.{k}");
    }
    for k in [
        "hostname",
        "uptime",
        "bootTime",
        "procs",
        "os",
        "platform",
        "platformFamily",
        "platformVersion",
        "kernelVersion",
        "kernelArch",
        "virtualizationSystem",
        "virtualizationRole",
        "hostid",
    ] {
        assert!(data["host"].get(k).is_some(), "host.{k}");
    }
    assert!(data["memory"]["total"].as_u64().unwrap() > 0);
    assert!(data["memory"]["used"].as_u64().unwrap() <= data["memory"]["total"].as_u64().unwrap());

    let (s, sanitized) = raw(
        &server,
        "GET",
        "sys/config/state/sanitized",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(s, 200, "{sanitized}");
    let d = &sanitized["data"];
    assert_eq!(d["cluster_name"], "obs");
    assert_eq!(
        d["storage"],
        json!({"type": "embedded", "redirect_addr": "", "cluster_addr": "", "disable_clustering": false})
    );
    assert_eq!(
        d["audits"],
        json!([{"path": "main/", "type": "file", "description": ""}])
    );
    assert_eq!(
        d["telemetry"]["prometheus_retention_time"],
        7_200_000_000_000u64
    );
    assert_eq!(d["listeners"][0]["type"], "tcp");
    // No data is mirrored at the top level (OpenBao does not for this path).
    assert!(sanitized.get("storage").is_none());
    let text = sanitized.to_string();
    assert!(
        !text.contains("data.redb"),
        "the store's path is hidden: {text}"
    );
    assert!(
        !text.contains(audit_log.to_str().unwrap()),
        "the audit file is hidden: {text}"
    );

    // The in-flight id is the request's audit id.
    let (s, in_flight) = raw(&server, "GET", "sys/in-flight-req", Some(&root), None).await;
    assert_eq!(s, 200);
    let (id, _) = in_flight
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, e)| e["request_path"] == "/v1/sys/in-flight-req")
        .unwrap();
    let audit = std::fs::read_to_string(&audit_log).unwrap();
    assert!(
        audit.lines().any(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["request"]["id"] == json!(id) && v["request"]["path"] == "sys/in-flight-req"
        }),
        "no audit line with id {id}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_formats_headers_and_queries_are_answered_safely() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), "root");
    // A format with quotes, a newline and markup is echoed quoted, in plain text.
    let (s, content_type, body) =
        get_text(&server, "sys/metrics?format=%22%0A%3Cscript%3E", None).await;
    assert_eq!(
        (s, content_type.as_str(), body.as_str()),
        (
            400,
            "text/plain",
            "metric response format \"\\\"\\n<script>\" unknown"
        )
    );
    // An empty format is the default one.
    let (s, content_type, _) = get_text(&server, "sys/metrics?format=", None).await;
    assert_eq!((s, content_type.as_str()), (200, "application/json"));
    // A long garbage Accept header changes nothing.
    let resp = http()
        .get(server.url("sys/metrics"))
        .header("Accept", "x".repeat(8000))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(serde_json::from_str::<Value>(&resp.text().await.unwrap()).is_ok());
    // A forged X-Forwarded-For is shown as sent, inside a well-formed JSON string.
    let forged = "1.2.3.4\", \"injected\": \"x";
    let resp = http()
        .get(server.url("sys/in-flight-req"))
        .header("X-Vault-Token", "root")
        .header("X-Forwarded-For", forged)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let map: Value = resp.json().await.unwrap();
    let entry = map
        .as_object()
        .unwrap()
        .values()
        .find(|e| e["request_path"] == "/v1/sys/in-flight-req")
        .unwrap();
    assert_eq!(entry["client_remote_address"], forged);
    assert!(entry.get("injected").is_none());
    // Query parameters and a body on the reads are ignored.
    let (s, _) = raw(
        &server,
        "GET",
        "sys/host-info?cpu=0&disk=%2F",
        Some("root"),
        Some(json!({"x": "y".repeat(10_000)})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = raw(
        &server,
        "GET",
        "sys/config/state/sanitized?storage=1",
        Some("root"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    // A path under host-info that is not host-info.
    let (s, _) = raw(&server, "GET", "sys/host-info/extra", Some("root"), None).await;
    assert_eq!(s, 404);
}
