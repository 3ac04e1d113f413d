//! docs/ha-operations.md, checked as written: its SQL prepares the database (a role of the
//! test's own with only the four privileges on the two tables), its node configuration starts
//! three TLS nodes (node 3 from the shared file without `api_addr`, with `BAO_API_ADDR`, as the
//! guide offers), its `TRESOR_PG_CONNECTION_URL` line connects them, and the cluster behaves as
//! the guide says: nodes started before the init notice it, one active node and two standbys,
//! requests through a standby forwarded to the active node over https against
//! `ha_forwarding_tls_ca_cert`, a 307 when asked, `sys/seal` refused on a standby, fail-over
//! within 5 s of a kill -9, and `sys/step-down` sent to a standby. The compose file's node
//! configuration and the transit seal block are parsed. Only host names, ports and file paths
//! are replaced; a change to the guide's blocks that breaks them fails here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Server;
use common::ha::{self, active_of, free_port, health, health_becomes, knows_leader, send};
use serde_json::{Value, json};
use tresor_storage::test_db::TestDb as Db;

fn guide() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ha-operations.md"),
    )
    .unwrap()
}

/// The guide's fenced code blocks whose info string is `lang`.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(info) = line.strip_prefix("```") {
            match current.take() {
                None => current = Some((info.trim().to_owned(), String::new())),
                Some((info, body)) => {
                    if info == lang {
                        found.push(body);
                    }
                }
            }
            continue;
        }
        if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    found
}

/// `text` with `from` replaced by `to`, which must occur in it.
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the guide's block has no {from:?}:\n{text}"
    );
    text.replace(from, to)
}

/// `text` with the word `word` (not part of a longer identifier) replaced by `to`.
fn replace_word(text: &str, word: &str, to: &str) -> String {
    let ident = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let mut out = String::new();
    let mut rest = text;
    // The character before `rest` in `text`.
    let mut previous: Option<char> = None;
    while let Some(at) = rest.find(word) {
        let before = rest[..at].chars().last().or(previous);
        let after = rest[at + word.len()..].chars().next();
        out.push_str(&rest[..at]);
        out.push_str(if ident(before) || ident(after) {
            word
        } else {
            to
        });
        previous = word.chars().last();
        rest = &rest[at + word.len()..];
    }
    out.push_str(rest);
    out
}

/// The guide's role, dropped (after its database) when the test ends, even on failure.
struct Role(String);

impl Drop for Role {
    fn drop(&mut self) {
        for sql in [
            format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.0),
            format!("DROP ROLE IF EXISTS \"{}\"", self.0),
        ] {
            let _ = std::process::Command::new("psql")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-qAtc",
                ])
                .arg(sql)
                .status();
        }
    }
}

/// Runs the guide's SQL for a role and database both named `name` (the database exists
/// already: `TestDb` made it).
async fn prepare(db: &Db, sql: &str) {
    let sql = replace_word(sql, "tresor", &db.name);
    let (server_part, database_part) = sql
        .split_once(&format!("\\connect {}\n", db.name))
        .expect("the guide's SQL connects to the new database");
    let superuser = tresor_storage::test_db::superuser("postgres").await;
    for statement in server_part.split(';').map(str::trim) {
        if statement.starts_with("CREATE ROLE") {
            superuser.batch_execute(statement).await.unwrap();
        } else if !statement.is_empty() {
            assert!(
                statement.starts_with("CREATE DATABASE") && statement.contains("'UTF8'"),
                "{statement}"
            );
        }
    }
    db.admin().await.batch_execute(database_part).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_three_node_guide_works_as_written() {
    let text = guide();
    let hcl = blocks(&text, "hcl");
    let db = Db::new("hadocs_guide").await;
    let _role = Role(db.name.clone());
    prepare(&db, &blocks(&text, "sql")[0]).await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::self_signed(dir.path(), "IP:127.0.0.1");
    let pem = std::fs::read(&cert).unwrap();
    let client = ha::plain_with(Duration::from_secs(10), Some(&pem));

    // The connection URL of /etc/tresor/tresor.env, for this test's role and database.
    let url_line = blocks(&text, "sh")
        .iter()
        .flat_map(|b| b.lines().map(str::to_owned).collect::<Vec<_>>())
        .find(|l| l.starts_with("TRESOR_PG_CONNECTION_URL="))
        .expect("the guide's tresor.env");
    let url = replaced(
        url_line.trim_start_matches("TRESOR_PG_CONNECTION_URL="),
        "tresor:a-long-random-password@db.internal:5432/tresor",
        &format!("{0}:a-long-random-password@127.0.0.1:5432/{0}", db.name),
    );
    // The guide's CA file is not here, and this PostgreSQL's certificate names no
    // `127.0.0.1`: encrypted without checking (verify-full is tested in
    // storage_postgresql_tls.rs against a PostgreSQL with a certificate of the test's own).
    let url = replaced(
        &url,
        "sslmode=verify-full&sslrootcert=/etc/tresor/tls/pg-ca.crt",
        "sslmode=require",
    );

    // /etc/tresor/tresor.hcl of tresor-1, with this machine's ports and files.
    let node1 = hcl
        .iter()
        .find(|b| b.contains("api_addr     = \"https://tresor-1.internal:8200\""))
        .expect("the guide's tresor-1 configuration");
    let ports = [free_port(), free_port(), free_port()];
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("https://127.0.0.1:{p}"))
        .collect();
    let local = |port: u16| {
        let c = replaced(node1, "\"0.0.0.0:8200\"", &format!("\"127.0.0.1:{port}\""));
        let c = replaced(
            &c,
            "/etc/tresor/tls/tresor.crt",
            &cert.display().to_string(),
        );
        let c = replaced(&c, "/etc/tresor/tls/tresor.key", &key.display().to_string());
        replaced(&c, "/etc/tresor/tls/ca.crt", &cert.display().to_string())
    };
    let mut configs = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let file = local(*port);
        let line = file
            .lines()
            .find(|l| l.starts_with("api_addr"))
            .unwrap()
            .to_owned();
        let file = match i {
            0 => replaced(&file, "https://tresor-1.internal:8200", &urls[0]),
            // "On tresor-2.internal, the same file with:" its own api_addr block.
            1 => {
                let own = hcl
                    .iter()
                    .find(|b| b.trim() == "api_addr = \"https://tresor-2.internal:8200\"")
                    .expect("the guide's tresor-2 api_addr");
                replaced(
                    &file,
                    &line,
                    &replaced(own.trim(), "https://tresor-2.internal:8200", &urls[1]),
                )
            }
            // The shared file without api_addr; BAO_API_ADDR in the environment.
            _ => {
                assert!(
                    text.contains("`BAO_API_ADDR`"),
                    "the guide offers BAO_API_ADDR"
                );
                replaced(&file, &format!("{line}\n"), "")
            }
        };
        let path = dir.path().join(format!("tresor-{}.hcl", i + 1));
        std::fs::write(&path, &file).unwrap();
        configs.push(path);
    }

    // The compose file's node configuration and the transit seal block are valid too.
    let compose = hcl
        .iter()
        .find(|b| b.contains("tls_disable") && b.contains("ha_enabled"))
        .expect("the compose file's tresor-1.hcl");
    tresor_config::parse(compose).unwrap();
    let seal = hcl
        .iter()
        .find(|b| b.starts_with("seal \"transit\""))
        .expect("the guide's transit seal");
    let sealed = tresor_config::parse(&format!("{}\n{seal}", local(ports[0]))).unwrap();
    assert_eq!(sealed.seals.len(), 1);

    // "The nodes may start in any order, before or after the initialisation."
    let mut nodes: Vec<Option<Server>> = Vec::new();
    for (i, config) in configs.iter().enumerate() {
        let mut env = vec![("TRESOR_PG_CONNECTION_URL", url.as_str())];
        if i == 2 {
            env.push(("BAO_API_ADDR", urls[2].as_str()));
        }
        let server = Server::start_with_env(
            &["server", &format!("-config={}", config.display())],
            &env,
            dir.path(),
        );
        assert_eq!(server.addr, urls[i]);
        nodes.push(Some(server));
    }
    for url in &urls {
        health_becomes(&client, url, 501, Duration::from_secs(5)).await;
    }
    // tresor operator init -key-shares=5 -key-threshold=3, through tresor-1.
    let (status, _, init) = send(
        &client,
        &urls[0],
        "PUT",
        "sys/init",
        None,
        Some(json!({"secret_shares": 5, "secret_threshold": 3})),
    )
    .await;
    assert_eq!(status, 200, "{init}");
    let keys: Vec<String> = init["keys_base64"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let root = init["root_token"].as_str().unwrap().to_owned();
    let unseal = async |addr: &str| {
        for key in &keys[..3] {
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
    };
    unseal(&urls[0]).await;
    health_becomes(&client, &urls[0], 200, Duration::from_secs(5)).await;
    // The others noticed the init without a restart: sealed (503), then standbys.
    for url in &urls[1..] {
        health_becomes(&client, url, 503, Duration::from_secs(5)).await;
        unseal(url).await;
        health_becomes(&client, url, 429, Duration::from_secs(5)).await;
    }
    let leader = knows_leader(&client, &urls[1], &urls[0]).await;
    assert_eq!(leader["is_self"], false, "{leader}");
    knows_leader(&client, &urls[2], &urls[0]).await;

    // Any node: a standby forwards over https, trusting ha_forwarding_tls_ca_cert.
    let (status, _, body) = send(
        &client,
        &urls[1],
        "POST",
        "sys/mounts/secret",
        Some(&root),
        Some(json!({"type": "kv", "options": {"version": "2"}})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, _, body) = send(
        &client,
        &urls[2],
        "PUT",
        "secret/data/app",
        Some(&root),
        Some(json!({"data": {"password": "s3cret"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let read = async |addr: &str| -> (u16, Value) {
        let (status, _, body) =
            send(&client, addr, "GET", "secret/data/app", Some(&root), None).await;
        (status, body)
    };
    let (status, body) = read(&urls[1]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["data"]["password"], "s3cret", "{body}");
    // Redirects instead, when the client asks.
    let (status, _, location) = ha::call(
        &client,
        &urls[2],
        "GET",
        "secret/data/app",
        Some(&root),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 307);
    assert_eq!(
        location.as_deref(),
        Some(format!("{}/v1/secret/data/app", urls[0]).as_str())
    );
    // sys/ha-status through a standby: the three nodes at their api_addr.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, body) =
            send(&client, &urls[2], "GET", "sys/ha-status", Some(&root), None).await;
        assert_eq!(status, 200, "{body}");
        let mut seen: Vec<String> = body["data"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["api_address"].as_str().unwrap().to_owned())
            .collect();
        seen.sort();
        let mut expected = urls.clone();
        expected.sort();
        if seen == expected {
            break;
        }
        assert!(Instant::now() < deadline, "ha-status: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Taking a standby out: sys/seal there is refused.
    let (status, _, body) = send(&client, &urls[1], "PUT", "sys/seal", Some(&root), None).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(health(&client, &urls[1]).await, Some(429));

    // 7. The active node dies: another is active within 5 s and serves what was written.
    let killed = Instant::now();
    nodes[0].take().unwrap().kill9();
    let rest = [urls[1].as_str(), urls[2].as_str()];
    let new = 1 + active_of(&client, &rest, Duration::from_secs(5)).await;
    let took = killed.elapsed();
    eprintln!(
        "kill -9 of the active node: node {} active after {took:?}",
        new + 1
    );
    assert!(took <= Duration::from_secs(5), "{took:?}");
    let other = 3 - new;
    knows_leader(&client, &urls[other], &urls[new]).await;
    let (status, body) = read(&urls[other]).await;
    assert_eq!(status, 200, "through the other standby: {body}");
    assert_eq!(body["data"]["data"]["password"], "s3cret", "{body}");

    // 8. Step-down, sent to the standby: the active node steps down.
    let (status, _, body) = send(
        &client,
        &urls[other],
        "PUT",
        "sys/step-down",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    health_becomes(&client, &urls[other], 200, Duration::from_secs(5)).await;
    assert_eq!(health(&client, &urls[new]).await, Some(429));
}

#[test]
fn replace_word_keeps_longer_identifiers() {
    assert_eq!(
        replace_word(
            "GRANT CONNECT ON DATABASE tresor TO tresor;\nON tresor_kv_store, x_tresor",
            "tresor",
            "db"
        ),
        "GRANT CONNECT ON DATABASE db TO db;\nON tresor_kv_store, x_tresor"
    );
}
