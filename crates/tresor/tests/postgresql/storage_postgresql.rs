//! The real binary on `storage "postgresql"` against the real PostgreSQL on 127.0.0.1:5432:
//! init, unseal, a KV v2 secret, a restart (the URL now from `TRESOR_PG_CONNECTION_URL`), the
//! secret read back, and the table holding no plaintext. Each test has its own database.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use std::path::Path;

use common::{BIN, Server, raw};
use serde_json::json;
use tresor_storage::test_db::{TestDb as Db, superuser as connect};

fn write_config(dir: &Path, storage_body: &str) -> String {
    let path = dir.join("tresor.hcl");
    std::fs::write(
        &path,
        format!(
            "storage \"postgresql\" {{\n{storage_body}\n}}\n\nlistener \"tcp\" {{\n  address     = \"127.0.0.1:0\"\n  tls_disable = true\n}}\n"
        ),
    )
    .unwrap();
    format!("-config={}", path.display())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kv_secret_survives_a_restart_on_postgresql_and_the_table_holds_only_ciphertext() {
    let db = Db::new("pgstore_it").await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "  connection_url = \"{}\"\n  table = \"tresor_it\"\n  max_parallel = \"16\"",
            db.url()
        ),
    );
    let server = Server::start(&["server", &config], dir.path());

    let (status, seal) = raw(&server, "GET", "sys/seal-status", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(seal["storage_type"], "postgresql");
    assert_eq!(seal["initialized"], false);
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
    // Distinctive enough that finding it anywhere in the table can only mean plaintext.
    let plaintext = format!("pl41ntext-marker-{}", db.name);
    let (status, body) = raw(
        &server,
        "POST",
        "secret/data/app/db",
        Some(&root),
        Some(json!({"data": {"password": plaintext}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = raw(&server, "GET", "secret/data/app/db", Some(&root), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["data"]["password"], plaintext.as_str());
    assert!(server.terminate().success());

    // Restarted with the URL only in the environment.
    let config = write_config(dir.path(), "  table = \"tresor_it\"");
    let server = Server::start_with_env(
        &["server", &config],
        &[("TRESOR_PG_CONNECTION_URL", &db.url())],
        dir.path(),
    );
    let (_, seal) = raw(&server, "GET", "sys/seal-status", None, None).await;
    assert_eq!(seal["sealed"], true);
    assert_eq!(seal["initialized"], true);
    assert_eq!(seal["storage_type"], "postgresql");
    let (status, _) = raw(
        &server,
        "PUT",
        "sys/unseal",
        None,
        Some(json!({"key": key})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = raw(&server, "GET", "secret/data/app/db", Some(&root), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["data"]["password"], plaintext.as_str());
    let (status, body) = raw(&server, "LIST", "secret/metadata/app", Some(&root), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["keys"], json!(["db"]));

    // Straight from the table: rows exist, none holds the secret or the root token.
    let client = connect(&db.name).await;
    let rows: i64 = client
        .query_one("SELECT count(*) FROM tresor_it", &[])
        .await
        .unwrap()
        .get(0);
    assert!(rows > 5, "{rows} rows");
    for needle in [plaintext.as_str(), root.as_str()] {
        let found: i64 = client
            .query_one(
                "SELECT count(*) FROM tresor_it WHERE position(convert_to($1, 'UTF8') IN value) > 0 \
                 OR strpos(path || key, $1) > 0",
                &[&needle],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(found, 0, "{needle} found in the table");
    }
    // The version record is under the mount's barrier view, as ciphertext (version byte 1).
    let versions: Vec<Vec<u8>> = client
        .query(
            "SELECT value FROM tresor_it WHERE path LIKE 'logical/%' AND path NOT LIKE '%/metadata/%'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!versions.is_empty());
    assert!(versions.iter().all(|v| v.first() == Some(&1)));
}

/// What `tresor server` prints when it refuses to start, within 30 s.
fn refused(config: &str, env: &[(&str, &str)], home: &Path) -> String {
    let mut child = std::process::Command::new(BIN)
        .args(["server", config])
        .env("HOME", home)
        .env_remove("TRESOR_PG_CONNECTION_URL")
        .env_remove("VAULT_PG_CONNECTION_URL")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not refuse to start");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_refuses_ha_without_api_addr_a_missing_url_hostile_tables_and_never_prints_the_password()
 {
    let db = Db::new("pgstore_it").await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();

    let config = write_config(
        home,
        &format!(
            "  connection_url = \"{}\"\n  ha_enabled = \"true\"\n  ha_table = \"locks\"",
            db.url()
        ),
    );
    let stderr = refused(&config, &[], home);
    assert!(
        stderr.contains("ha_enabled = true needs api_addr"),
        "{stderr}"
    );

    let config = write_config(home, "  table = \"t\"");
    let stderr = refused(&config, &[], home);
    assert!(stderr.contains("TRESOR_PG_CONNECTION_URL"), "{stderr}");

    let config = write_config(
        home,
        &format!(
            "  connection_url = \"{}\"\n  table = \"kv; DROP TABLE x\"",
            db.url()
        ),
    );
    let stderr = refused(&config, &[], home);
    assert!(stderr.contains("not a valid table name"), "{stderr}");

    let config = write_config(home, "");
    let stderr = refused(
        &config,
        &[(
            "VAULT_PG_CONNECTION_URL",
            "postgres://postgres:Sw0rdfish-pw@127.0.0.1:1/x?connect_timeout=2",
        )],
        home,
    );
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
    assert!(!stderr.contains("Sw0rdfish"), "{stderr}");

    // Nothing was created by any refused start.
    let tables: i64 = connect(&db.name)
        .await
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 0);
}
