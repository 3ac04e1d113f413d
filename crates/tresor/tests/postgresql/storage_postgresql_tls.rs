//! The real binary on `storage "postgresql"` over TLS (`sslmode=verify-full`) to a private
//! PostgreSQL cluster that accepts TCP only over TLS: init, unseal, a KV v2 write and read,
//! and every one of the server's sessions encrypted. The cluster is
//! `tresor-storage/tests/support/tls_postgres.rs`'s; prints SKIPPED without `initdb`,
//! `pg_ctl` or `openssl`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

#[path = "../../../tresor-storage/tests/support/tls_postgres.rs"]
mod tls_postgres;

use common::{Server, raw};
use serde_json::json;
use tls_postgres::cluster;

/// This file's cluster port (18500-18599 belong to the TLS tests).
const PORT: u16 = 18520;

#[tokio::test(flavor = "multi_thread")]
async fn a_server_on_postgresql_over_verify_full_tls_writes_and_reads_a_kv_secret() {
    let Some(pg) = cluster("a_server_on_postgresql_over_verify_full_tls…", PORT) else {
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("pgtls-server-")
        .tempdir_in("/tmp")
        .unwrap();
    let url = pg.url(
        "localhost",
        &format!(
            "sslmode=verify-full&sslrootcert={}&application_name=pgtls_server",
            pg.file("ca.pem")
        ),
    );
    let config = dir.path().join("tresor.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"postgresql\" {{\n  connection_url = \"{url}\"\n  max_parallel = \"8\"\n}}\n\n\
             listener \"tcp\" {{\n  address     = \"127.0.0.1:0\"\n  tls_disable = true\n}}\n"
        ),
    )
    .unwrap();
    let server = Server::start(
        &["server", &format!("-config={}", config.display())],
        dir.path(),
    );

    let (status, init) = raw(
        &server,
        "PUT",
        "sys/init",
        None,
        Some(json!({"secret_shares": 1, "secret_threshold": 1})),
    )
    .await;
    assert_eq!(status, 200, "{init}");
    let key = init["keys"][0].as_str().unwrap().to_owned();
    let root = init["root_token"].as_str().unwrap().to_owned();
    let (status, unsealed) = raw(
        &server,
        "PUT",
        "sys/unseal",
        None,
        Some(json!({"key": key})),
    )
    .await;
    assert_eq!((status, &unsealed["sealed"]), (200, &json!(false)));
    let (status, body) = raw(
        &server,
        "POST",
        "sys/mounts/secret",
        Some(&root),
        Some(json!({"type": "kv", "options": {"version": "2"}})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = raw(
        &server,
        "POST",
        "secret/data/app",
        Some(&root),
        Some(json!({"data": {"password": "over-tls"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = raw(&server, "GET", "secret/data/app", Some(&root), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["data"]["password"], "over-tls");

    let admin = pg.admin().await;
    let row = admin
        .query_one(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) \
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.application_name = 'pgtls_server'",
            &[],
        )
        .await
        .unwrap();
    let (encrypted, plain): (i64, i64) = (row.get(0), row.get(1));
    assert!(encrypted >= 1, "the server's sessions: {encrypted}");
    assert_eq!(plain, 0, "a session of the server without TLS");
    assert!(
        !server.log_text().contains(tls_postgres::PASSWORD),
        "the password is in the log"
    );
}
