//! The postgresql backend over TLS, against a private PostgreSQL cluster each test starts
//! with `ssl = on`, a test CA and server certificate made here with the `openssl` CLI, and a
//! pg_hba.conf that has only `hostssl` lines for TCP (as a managed PostgreSQL that forces TLS).
//!
//! The server certificate names `localhost` only, so connecting to `localhost` passes
//! `verify-full` and connecting to `127.0.0.1` is a wrong host name.
//!
//! Needs `initdb`/`pg_ctl` (`TRESOR_PG_BINDIR`, else the newest `/usr/lib/postgresql/*/bin`)
//! and `openssl`; prints SKIPPED and passes without them. As root (CI) PostgreSQL runs as the
//! `postgres` OS user through `runuser`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

#[path = "../support/tls_postgres.rs"]
mod tls_postgres;

use tls_postgres::{PASSWORD, cluster};
use tresor_storage::ha::{HaLock, NodeAdvert};
use tresor_storage::{Backend, HaOptions, PostgresqlBackend, PostgresqlOptions, TxnOp};

/// Ports of this file's clusters (18500-18599 belong to these tests).
const PORT_HAPPY: u16 = 18510;
const PORT_REFUSALS: u16 = 18511;

fn options(url: String, table: &str, application_name: &str) -> PostgresqlOptions {
    let mut options = PostgresqlOptions::new(url);
    options.table = table.to_owned();
    options.application_name = application_name.to_owned();
    options
}

async fn open_err(url: String) -> String {
    let err = PostgresqlBackend::open(options(url, "tresor_refused", "pgtls_refused"))
        .await
        .expect_err("the connection must be refused")
        .to_string();
    assert!(!err.contains(PASSWORD), "the password leaked: {err}");
    println!("refused as expected: {err}");
    err
}

/// How many of `application_name`'s sessions use TLS, and how many do not.
async fn sessions_by_tls(admin: &tokio_postgres::Client, application_name: &str) -> (i64, i64) {
    let row = admin
        .query_one(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) \
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.application_name = $1",
            &[&application_name],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

async fn round_trip(backend: &PostgresqlBackend) {
    backend.put("tls/a", b"one".to_vec()).await.unwrap();
    backend
        .transaction(vec![
            TxnOp::Put {
                key: "tls/b".to_owned(),
                value: b"two".to_vec(),
            },
            TxnOp::Put {
                key: "tls/sub/c".to_owned(),
                value: b"three".to_vec(),
            },
            TxnOp::Delete {
                key: "tls/a".to_owned(),
            },
        ])
        .await
        .unwrap();
    assert_eq!(backend.get("tls/a").await.unwrap(), None);
    assert_eq!(backend.get("tls/b").await.unwrap(), Some(b"two".to_vec()));
    assert_eq!(backend.list("tls/").await.unwrap(), ["b", "sub/"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_full_require_and_client_certificates_connect_and_every_session_is_encrypted() {
    let Some(pg) = cluster("verify_full_…", PORT_HAPPY) else {
        return;
    };
    let admin = pg.admin().await;
    admin
        .batch_execute("CREATE ROLE certuser LOGIN SUPERUSER")
        .await
        .unwrap();
    let ca = pg.file("ca.pem");

    // verify-full with the right CA: the backend and its HA lock session, all over TLS.
    let url = pg.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let (backend, lock) = PostgresqlBackend::open_ha(
        options(url, "tresor_full", "pgtls_full"),
        HaOptions {
            table: "tresor_full_lock".to_owned(),
            advert: NodeAdvert {
                node_id: "pgtls-a".to_owned(),
                api_addr: "http://a:8200".to_owned(),
                cluster_addr: "https://a:8201".to_owned(),
                hostname: "a".to_owned(),
                version: "test".to_owned(),
            },
        },
    )
    .await
    .unwrap();
    assert!(lock.try_acquire().await.unwrap());
    round_trip(&backend).await;
    let (encrypted, plain) = sessions_by_tls(&admin, "pgtls_full").await;
    assert_eq!(plain, 0, "every session of the backend uses TLS");
    assert!(
        encrypted >= 2,
        "the pool's and the lock's sessions: {encrypted}"
    );
    lock.release().await;
    backend.close().await.unwrap();

    // The key=value form says the same.
    let kv = format!(
        "host=localhost port={} user=postgres password={PASSWORD} dbname=postgres \
         sslmode=verify-full sslrootcert='{ca}'",
        pg.port
    );
    let backend = PostgresqlBackend::open(options(kv, "tresor_kv", "pgtls_kv"))
        .await
        .unwrap();
    round_trip(&backend).await;
    assert_eq!(sessions_by_tls(&admin, "pgtls_kv").await.1, 0);
    backend.close().await.unwrap();

    // require without a CA: encrypted, nothing checked (the host name is wrong too).
    let backend = PostgresqlBackend::open(options(
        pg.url("127.0.0.1", "sslmode=require"),
        "tresor_require",
        "pgtls_require",
    ))
    .await
    .unwrap();
    round_trip(&backend).await;
    let (encrypted, plain) = sessions_by_tls(&admin, "pgtls_require").await;
    assert!(encrypted >= 1 && plain == 0, "{encrypted} {plain}");
    backend.close().await.unwrap();

    // No sslmode: prefer, so TLS when the server offers it.
    let backend = PostgresqlBackend::open(options(
        pg.url("127.0.0.1", "connect_timeout=10"),
        "tresor_prefer",
        "pgtls_prefer",
    ))
    .await
    .unwrap();
    round_trip(&backend).await;
    assert_eq!(sessions_by_tls(&admin, "pgtls_prefer").await.1, 0);
    backend.close().await.unwrap();

    // A Unix socket: PostgreSQL offers no TLS there, and the default (prefer) goes on plain.
    let socket = format!(
        "host={} port={} user=postgres dbname=postgres",
        pg.dir.path().display(),
        pg.port
    );
    let backend = PostgresqlBackend::open(options(socket, "tresor_socket", "pgtls_socket"))
        .await
        .unwrap();
    round_trip(&backend).await;
    backend.close().await.unwrap();

    // allow: the plain attempt is refused by pg_hba.conf, the TLS one gets in.
    let backend = PostgresqlBackend::open(options(
        pg.url("127.0.0.1", "sslmode=allow"),
        "tresor_allow",
        "pgtls_allow",
    ))
    .await
    .unwrap();
    round_trip(&backend).await;
    backend.close().await.unwrap();

    // verify-ca checks the chain, not the name: 127.0.0.1 is fine.
    let backend = PostgresqlBackend::open(options(
        pg.url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}")),
        "tresor_ca",
        "pgtls_ca",
    ))
    .await
    .unwrap();
    round_trip(&backend).await;
    backend.close().await.unwrap();

    // A client certificate logs in as `certuser` (pg_hba.conf: `cert`, no password).
    let url = format!(
        "postgres://certuser@localhost:{}/postgres?sslmode=verify-full&sslrootcert={ca}\
         &sslcert={}&sslkey={}",
        pg.port,
        pg.file("client.pem"),
        pg.file("client.key"),
    );
    let backend = PostgresqlBackend::open(options(url, "tresor_cert", "pgtls_cert"))
        .await
        .unwrap();
    round_trip(&backend).await;
    let who: String = admin
        .query_one(
            "SELECT usename::text FROM pg_stat_activity WHERE application_name = 'pgtls_cert' LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(who, "certuser");
    backend.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_names_unknown_cas_and_plain_connections_are_refused_with_clear_errors() {
    let Some(pg) = cluster("wrong_names_…", PORT_REFUSALS) else {
        return;
    };
    let ca = pg.file("ca.pem");
    let other = pg.file("other-ca.pem");

    let err = open_err(pg.url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await;
    assert!(
        err.contains("not valid for name") && err.contains("sslmode=verify-full"),
        "wrong host name: {err}"
    );

    let err = open_err(pg.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={other}"),
    ))
    .await;
    assert!(
        err.contains("not signed by a CA in sslrootcert")
            && err.contains(&format!("sslrootcert={other}")),
        "unknown CA: {err}"
    );

    // require with sslrootcert checks the chain, as libpq.
    let err = open_err(pg.url("localhost", &format!("sslmode=require&sslrootcert={other}"))).await;
    assert!(
        err.contains("UnknownIssuer"),
        "require + sslrootcert: {err}"
    );

    let err = open_err(pg.url("localhost", "sslmode=disable")).await;
    assert!(
        err.contains("no pg_hba.conf entry")
            && err.contains("the server wants TLS")
            && err.contains("sslmode=disable"),
        "disable against hostssl only: {err}"
    );

    let err = open_err(pg.url("localhost", "sslmode=verify-full")).await;
    assert!(err.contains("needs sslrootcert"), "{err}");

    let missing = pg.file("missing-ca.pem");
    let err = open_err(pg.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={missing}"),
    ))
    .await;
    assert!(err.contains(&format!("sslrootcert {missing}")), "{err}");

    let err = open_err(pg.url(
        "localhost",
        &format!(
            "sslmode=verify-full&sslrootcert={ca}&sslcert={}",
            pg.file("client.pem")
        ),
    ))
    .await;
    assert!(err.contains("sslcert is set but sslkey is not"), "{err}");

    // The key file where a certificate is expected.
    let err = open_err(pg.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", pg.file("ca.key")),
    ))
    .await;
    assert!(
        err.contains("holds no PEM certificate") || err.contains("sslrootcert"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unknown_sslmode_is_refused_before_any_connection() {
    // Port 1: nothing is ever contacted; the value is refused while parsing.
    for url in [
        format!("postgres://u:{PASSWORD}@localhost:1/db?sslmode=verify_full"),
        format!("host=localhost port=1 user=u password={PASSWORD} sslmode=on"),
    ] {
        let err = open_err(url).await;
        assert!(
            err.contains("is not one of disable, allow, prefer, require, verify-ca, verify-full"),
            "{err}"
        );
    }
}
