//! `tresor operator migrate` with the real binary and the real PostgreSQL on 127.0.0.1:5432:
//! a server's data moved embedded → postgresql → embedded and read back decrypted after each
//! move, and the refusals (a running server on the source, bad files, the migration lock,
//! one store named twice). Each test has its own `migrate_*` database.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use common::{BIN, Server, raw};
use serde_json::{Value, json};
use tresor_storage::test_db::TestDb;
use tresor_storage::{Backend, EmbeddedBackend, PostgresqlBackend, PostgresqlOptions};

/// A database of the test's own, with what these tests ask of it.
struct Db(TestDb);

impl std::ops::Deref for Db {
    type Target = TestDb;
    fn deref(&self) -> &TestDb {
        &self.0
    }
}

impl Db {
    async fn new() -> Db {
        Db(TestDb::new("migrate").await)
    }

    /// The store as the backend sees it (table `tresor_kv_store`).
    /// (Under its own application_name: the command takes sessions named `tresor` for a
    /// running server's.)
    async fn backend(&self) -> PostgresqlBackend {
        let mut options = PostgresqlOptions::new(self.url());
        options.application_name = "migrate-test".to_owned();
        PostgresqlBackend::open(options).await.unwrap()
    }

    /// Waits until no session named `tresor` is left in the database (a stopped server's
    /// sessions end a moment after it exits).
    fn wait_for_no_server(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let out = Command::new("psql")
                .args(["-h", "127.0.0.1", "-U", "postgres", "-d", &self.name, "-qAtc"])
                .arg("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'tresor'")
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).trim() == "0" {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server's sessions linger"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Rows in `tresor_kv_store`, or `None` when the table does not exist.
    async fn rows(&self) -> Option<i64> {
        let psql = |sql: &str| {
            let out = Command::new("psql")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-d",
                    &self.name,
                    "-qAtc",
                    sql,
                ])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        if psql("SELECT to_regclass('tresor_kv_store') IS NULL") == "t" {
            return None;
        }
        Some(
            psql("SELECT count(*) FROM tresor_kv_store")
                .parse()
                .unwrap(),
        )
    }
}

fn embedded_stanza(path: &Path) -> String {
    format!("\"embedded\" {{\n  path = \"{}\"\n}}", path.display())
}

fn postgresql_stanza(db: &Db) -> String {
    format!(
        "\"postgresql\" {{\n  connection_url = \"{}\"\n  ha_enabled = \"true\"\n}}",
        db.url()
    )
}

/// A migration file in `dir` (a new name each call).
fn migration_file(dir: &Path, source: &str, destination: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let path = dir.join(format!("migrate-{}.hcl", N.fetch_add(1, Ordering::SeqCst)));
    std::fs::write(
        &path,
        format!(
            "storage_source {source}\n\nstorage_destination {destination}\n\ncluster_addr = \"https://127.0.0.1:8201\"\n"
        ),
    )
    .unwrap();
    path
}

/// `tresor operator migrate -config=FILE [extra…]`.
fn migrate(config: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .args(["operator", "migrate"])
        .arg(format!("-config={}", config.display()))
        .args(extra)
        .env_remove("TRESOR_PG_CONNECTION_URL")
        .env_remove("VAULT_PG_CONNECTION_URL")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_migrated(out: &Output) {
    assert!(
        out.status.success(),
        "migrate failed: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        stderr(out)
    );
    assert!(
        stdout(out).contains("Success! All of the keys have been migrated."),
        "{}",
        stdout(out)
    );
}

fn assert_refused(out: &Output, code: i32, needle: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
    assert!(
        stderr(out).contains(needle),
        "expected {needle:?} in: {}",
        stderr(out)
    );
    assert!(!stdout(out).contains("Success"), "{}", stdout(out));
}

fn server_config(dir: &Path, name: &str, storage: &str) -> String {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "storage {storage}\n\nlistener \"tcp\" {{\n  address     = \"127.0.0.1:0\"\n  tls_disable = true\n}}\n"
        ),
    )
    .unwrap();
    format!("-config={}", path.display())
}

fn postgresql_server_stanza(db: &Db) -> String {
    format!("\"postgresql\" {{\n  connection_url = \"{}\"\n}}", db.url())
}

async fn ok(server: &Server, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
    let (status, reply) = raw(server, method, path, Some(token), body).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {reply}"
    );
    reply
}

/// Initialises and unseals with one key share: (unseal key, root token).
async fn init(server: &Server) -> (String, String) {
    let (status, init) = raw(
        server,
        "PUT",
        "sys/init",
        None,
        Some(json!({"secret_shares": 1, "secret_threshold": 1})),
    )
    .await;
    assert_eq!(status, 200, "{init}");
    let key = init["keys"][0].as_str().unwrap().to_owned();
    unseal(server, &key).await;
    (key, init["root_token"].as_str().unwrap().to_owned())
}

async fn unseal(server: &Server, key: &str) {
    let (status, reply) = raw(server, "PUT", "sys/unseal", None, Some(json!({"key": key}))).await;
    assert_eq!((status, &reply["sealed"]), (200, &json!(false)), "{reply}");
}

/// KV v2 secrets with several versions (one soft-deleted), a KV v1 secret, a policy, a token
/// holding it, and a transit key (rotated) with a ciphertext: returns the token and ciphertext.
async fn write_data(server: &Server, root: &str) -> (String, String) {
    ok(
        server,
        "POST",
        "sys/mounts/secret",
        root,
        Some(json!({"type": "kv", "options": {"version": "2"}})),
    )
    .await;
    ok(
        server,
        "POST",
        "sys/mounts/kv1",
        root,
        Some(json!({"type": "kv"})),
    )
    .await;
    ok(
        server,
        "POST",
        "sys/mounts/transit",
        root,
        Some(json!({"type": "transit"})),
    )
    .await;
    for version in 1..=3 {
        ok(
            server,
            "POST",
            "secret/data/app/db",
            root,
            Some(json!({"data": {"password": format!("pw-{version}"), "user": "app"}})),
        )
        .await;
    }
    ok(
        server,
        "POST",
        "secret/data/app/api",
        root,
        Some(json!({"data": {"key": "k-1"}})),
    )
    .await;
    ok(
        server,
        "POST",
        "secret/data/app/api",
        root,
        Some(json!({"data": {"key": "k-2"}})),
    )
    .await;
    ok(
        server,
        "POST",
        "secret/delete/app/api",
        root,
        Some(json!({"versions": [1]})),
    )
    .await;
    for i in 0..40 {
        ok(
            server,
            "POST",
            &format!("secret/data/team/{i:02}/cfg"),
            root,
            Some(json!({"data": {"n": i, "blob": "x".repeat(i * 50)}})),
        )
        .await;
    }
    ok(server, "POST", "kv1/plain", root, Some(json!({"a": "b"}))).await;
    ok(
        server,
        "PUT",
        "sys/policies/acl/reader",
        root,
        Some(json!({"policy": "path \"secret/data/app/*\" { capabilities = [\"read\"] }"})),
    )
    .await;
    let token = ok(
        server,
        "POST",
        "auth/token/create",
        root,
        Some(json!({"policies": ["reader"], "ttl": "24h", "display_name": "migrated"})),
    )
    .await;
    let token = token["auth"]["client_token"].as_str().unwrap().to_owned();
    ok(server, "POST", "transit/keys/k", root, None).await;
    ok(server, "POST", "transit/keys/k/rotate", root, None).await;
    let ct = ok(
        server,
        "POST",
        "transit/encrypt/k",
        root,
        Some(json!({"plaintext": "aGVsbG8gbWlncmF0aW9u"})),
    )
    .await;
    (token, ct["data"]["ciphertext"].as_str().unwrap().to_owned())
}

/// Everything `write_data` wrote, decrypted and read back through the API (fields that are
/// per-request, such as lease ids and request ids, left out).
async fn snapshot(server: &Server, root: &str, token: &str, ciphertext: &str) -> Value {
    let mut out = serde_json::Map::new();
    for version in 1..=3 {
        let r = ok(
            server,
            "GET",
            &format!("secret/data/app/db?version={version}"),
            root,
            None,
        )
        .await;
        out.insert(format!("db v{version}"), r["data"].clone());
    }
    let (status, r) = raw(
        server,
        "GET",
        "secret/data/app/api?version=1",
        Some(root),
        None,
    )
    .await;
    out.insert("api v1".into(), json!([status, r["data"]]));
    out.insert(
        "api".into(),
        ok(server, "GET", "secret/data/app/api", root, None).await["data"].clone(),
    );
    for i in 0..40 {
        out.insert(
            format!("team {i}"),
            ok(
                server,
                "GET",
                &format!("secret/data/team/{i:02}/cfg"),
                root,
                None,
            )
            .await["data"]
                .clone(),
        );
    }
    out.insert(
        "db metadata".into(),
        ok(server, "GET", "secret/metadata/app/db", root, None).await["data"].clone(),
    );
    out.insert(
        "team list".into(),
        ok(server, "LIST", "secret/metadata/team", root, None).await["data"].clone(),
    );
    out.insert(
        "kv1".into(),
        ok(server, "GET", "kv1/plain", root, None).await["data"].clone(),
    );
    out.insert(
        "policy".into(),
        ok(server, "GET", "sys/policies/acl/reader", root, None).await["data"].clone(),
    );
    let mut me = ok(server, "GET", "auth/token/lookup-self", token, None).await["data"].clone();
    // Counts down while the test runs.
    me.as_object_mut().unwrap().remove("ttl");
    out.insert("token".into(), me);
    out.insert(
        "token reads".into(),
        ok(server, "GET", "secret/data/app/db", token, None).await["data"]["data"].clone(),
    );
    let (status, _) = raw(server, "GET", "kv1/plain", Some(token), None).await;
    out.insert("token denied".into(), json!(status));
    out.insert(
        "transit key".into(),
        ok(server, "GET", "transit/keys/k", root, None).await["data"].clone(),
    );
    out.insert(
        "decrypted".into(),
        ok(
            server,
            "POST",
            "transit/decrypt/k",
            root,
            Some(json!({"ciphertext": ciphertext})),
        )
        .await["data"]
            .clone(),
    );
    let mounts = ok(server, "GET", "sys/mounts", root, None).await["data"].clone();
    let mut mounts: Vec<(String, Value)> = mounts
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), json!([v["type"], v["uuid"], v["accessor"]])))
        .collect();
    mounts.sort_by(|a, b| a.0.cmp(&b.0));
    out.insert("mounts".into(), json!(mounts));
    Value::Object(out)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_moved_embedded_to_postgresql_and_back_reads_everything_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::new().await;
    let first = dir.path().join("first.redb");
    let second = dir.path().join("second.redb");

    let server = Server::start(
        &[
            "server",
            &server_config(dir.path(), "embedded.hcl", &embedded_stanza(&first)),
        ],
        dir.path(),
    );
    let (key, root) = init(&server).await;
    let (token, ciphertext) = write_data(&server, &root).await;
    let before = snapshot(&server, &root, &token, &ciphertext).await;
    assert_eq!(before["db v2"]["data"]["password"], "pw-2");
    assert_eq!(before["decrypted"]["plaintext"], "aGVsbG8gbWlncmF0aW9u");
    assert_eq!(before["token denied"], 403);
    assert!(server.terminate().success());
    let keys_in_first = count_embedded(&first).await;

    // embedded → postgresql
    let config = migration_file(
        dir.path(),
        &embedded_stanza(&first),
        &postgresql_stanza(&db),
    );
    let out = migrate(&config, &[]);
    assert_migrated(&out);
    let report = stderr(&out);
    assert!(
        report.contains(&format!("copied {keys_in_first} keys (")),
        "{report}"
    );
    // Counts only: no key path reaches the output.
    for path in ["core/", "logical/", "sys/", "auth/"] {
        assert!(!report.contains(path), "{path} in {report}");
        assert!(!stdout(&out).contains(path), "{path} in {}", stdout(&out));
    }
    assert_eq!(db.rows().await, Some(keys_in_first as i64));
    // The source is left as it was (an embedded source gets no lock key).
    assert_eq!(count_embedded(&first).await, keys_in_first);

    let server = Server::start(
        &[
            "server",
            &server_config(dir.path(), "pg.hcl", &postgresql_server_stanza(&db)),
        ],
        dir.path(),
    );
    let (_, seal) = raw(&server, "GET", "sys/seal-status", None, None).await;
    assert_eq!(
        (&seal["storage_type"], &seal["initialized"]),
        (&json!("postgresql"), &json!(true))
    );
    unseal(&server, &key).await;
    assert_eq!(snapshot(&server, &root, &token, &ciphertext).await, before);
    // While it runs, the postgresql store is refused as a source.
    let config = migration_file(
        dir.path(),
        &postgresql_stanza(&db),
        &embedded_stanza(&second),
    );
    assert_refused(
        &migrate(&config, &[]),
        2,
        "the source store is in use by a running server; stop it first",
    );
    assert!(!second.exists());
    assert!(server.terminate().success());
    db.wait_for_no_server();

    // postgresql → a new embedded file
    let config = migration_file(
        dir.path(),
        &postgresql_stanza(&db),
        &embedded_stanza(&second),
    );
    let out = migrate(&config, &["-max-parallel=3"]);
    assert_migrated(&out);
    assert!(
        stderr(&out).contains(&format!("copied {keys_in_first} keys (")),
        "{}",
        stderr(&out)
    );
    // The migration lock was set in the postgresql source and removed again.
    let pg = db.backend().await;
    assert_eq!(pg.get("core/migration").await.unwrap(), None);
    pg.close().await.unwrap();
    assert_eq!(count_embedded(&second).await, keys_in_first);

    let server = Server::start(
        &[
            "server",
            &server_config(dir.path(), "second.hcl", &embedded_stanza(&second)),
        ],
        dir.path(),
    );
    unseal(&server, &key).await;
    assert_eq!(snapshot(&server, &root, &token, &ciphertext).await, before);
    // The moved store keeps working: a new version on top of the migrated ones.
    ok(
        &server,
        "POST",
        "secret/data/app/db",
        &root,
        Some(json!({"data": {"password": "pw-4"}})),
    )
    .await;
    let r = ok(&server, "GET", "secret/data/app/db", &root, None).await;
    assert_eq!(r["data"]["metadata"]["version"], 4);
    assert!(server.terminate().success());
}

/// Every key of an embedded file, recursively.
async fn embedded_keys(path: &Path) -> Vec<String> {
    let backend = EmbeddedBackend::open(path).unwrap();
    let keys = all_keys(&backend).await;
    backend.close().await.unwrap();
    keys
}

async fn count_embedded(path: &Path) -> usize {
    embedded_keys(path).await.len()
}

async fn all_keys(backend: &dyn Backend) -> Vec<String> {
    let mut keys = Vec::new();
    let mut folders = vec![String::new()];
    while let Some(folder) = folders.pop() {
        for child in backend.list(&folder).await.unwrap() {
            let full = format!("{folder}{child}");
            if full.ends_with('/') {
                folders.push(full);
            } else {
                keys.push(full);
            }
        }
    }
    keys.sort();
    keys
}

/// An embedded file holding `keys` (each key's value is its own name).
async fn embedded_store(path: &Path, keys: &[&str]) {
    let backend = EmbeddedBackend::open(path).unwrap();
    for key in keys {
        backend.put(key, key.as_bytes().to_vec()).await.unwrap();
    }
    backend.close().await.unwrap();
}

const RAW_KEYS: &[&str] = &[
    "core/seal-config",
    "core/keyring",
    "core/lock",
    "logical/aaa/one",
    "logical/bbb/two",
    "logical/bbb/x/three",
    "sys/token/id/abc",
    "sys/policy/reader",
];

#[tokio::test(flavor = "multi_thread")]
async fn start_copies_only_the_keys_at_or_after_it_and_the_ha_lock_key_is_never_copied() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.redb");
    embedded_store(&source, RAW_KEYS).await;

    let all = dir.path().join("all.redb");
    let out = migrate(
        &migration_file(
            dir.path(),
            &embedded_stanza(&source),
            &embedded_stanza(&all),
        ),
        &[],
    );
    assert_migrated(&out);
    let expected: Vec<String> = RAW_KEYS
        .iter()
        .filter(|k| **k != "core/lock")
        .map(|k| (*k).to_owned())
        .collect();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(embedded_keys(&all).await, expected_sorted);
    let copied = EmbeddedBackend::open(&all).unwrap();
    for key in &expected {
        assert_eq!(
            copied.get(key).await.unwrap(),
            Some(key.as_bytes().to_vec())
        );
    }
    copied.close().await.unwrap();

    let tail = dir.path().join("tail.redb");
    let out = migrate(
        &migration_file(
            dir.path(),
            &embedded_stanza(&source),
            &embedded_stanza(&tail),
        ),
        &["-start=logical/bbb"],
    );
    assert_migrated(&out);
    assert!(stderr(&out).contains("copied 4 keys ("), "{}", stderr(&out));
    assert_eq!(
        embedded_keys(&tail).await,
        [
            "logical/bbb/two",
            "logical/bbb/x/three",
            "sys/policy/reader",
            "sys/token/id/abc"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_server_on_the_embedded_source_stops_the_migration_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::new().await;
    let data = dir.path().join("data.redb");
    let server = Server::start(
        &[
            "server",
            &server_config(dir.path(), "embedded.hcl", &embedded_stanza(&data)),
        ],
        dir.path(),
    );
    init(&server).await;

    let out = migrate(
        &migration_file(dir.path(), &embedded_stanza(&data), &postgresql_stanza(&db)),
        &[],
    );
    assert_refused(
        &out,
        2,
        "the source store is in use by a running server; stop it first",
    );
    assert_eq!(db.rows().await, None, "the destination was not even opened");

    // And an embedded destination held by a server is refused the same way.
    let other = dir.path().join("other.redb");
    embedded_store(&other, RAW_KEYS).await;
    let out = migrate(
        &migration_file(
            dir.path(),
            &embedded_stanza(&other),
            &embedded_stanza(&data),
        ),
        &[],
    );
    assert_refused(
        &out,
        2,
        "the destination store is in use by a running server; stop it first",
    );
    assert!(server.terminate().success());

    // Stopped, the same migration runs.
    let out = migrate(
        &migration_file(dir.path(), &embedded_stanza(&data), &postgresql_stanza(&db)),
        &[],
    );
    assert_migrated(&out);
    assert!(db.rows().await.unwrap() > 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_migration_files_are_refused_with_their_line_and_nothing_is_copied() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.redb");
    embedded_store(&source, RAW_KEYS).await;
    let dest = dir.path().join("dest.redb");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };

    let only_source = write(
        "only-source.hcl",
        &format!("storage_source {}\n", embedded_stanza(&source)),
    );
    assert_refused(
        &migrate(&only_source, &[]),
        1,
        "only-source.hcl:1: no storage_destination block",
    );

    let twice = write(
        "twice.hcl",
        &format!(
            "storage_source {}\nstorage_destination {}\nstorage_destination {}\n",
            embedded_stanza(&source),
            embedded_stanza(&dest),
            embedded_stanza(&dest)
        ),
    );
    assert_refused(
        &migrate(&twice, &[]),
        1,
        "more than one storage_destination block (the first is on line 4)",
    );

    let typo = write(
        "typo.hcl",
        &format!(
            "storage_source {}\nstorage_destination \"embedded\" {{\n  paht = \"{}\"\n}}\n",
            embedded_stanza(&source),
            dest.display()
        ),
    );
    assert_refused(
        &migrate(&typo, &[]),
        1,
        "typo.hcl:5: unknown key \"paht\" in storage_destination \"embedded\"",
    );

    let inmem = write(
        "inmem.hcl",
        &format!(
            "storage_source {}\nstorage_destination \"inmem\" {{}}\n",
            embedded_stanza(&source)
        ),
    );
    assert_refused(
        &migrate(&inmem, &[]),
        1,
        "inmem.hcl:4: storage_destination \"inmem\" cannot be migrated",
    );

    let same = migration_file(
        dir.path(),
        &embedded_stanza(&source),
        &embedded_stanza(&dir.path().join(".").join("source.redb")),
    );
    assert_refused(
        &migrate(&same, &[]),
        2,
        "storage_source and storage_destination are the same file",
    );

    let missing = migration_file(
        dir.path(),
        &embedded_stanza(&dir.path().join("nope.redb")),
        &embedded_stanza(&dest),
    );
    assert_refused(&migrate(&missing, &[]), 2, "nope.redb does not exist");
    assert!(!dir.path().join("nope.redb").exists());

    let unreachable = migration_file(
        dir.path(),
        &embedded_stanza(&source),
        "\"postgresql\" {\n  connection_url = \"postgres://tresor:hunter2-secret@127.0.0.1:1/db?connect_timeout=2\"\n}",
    );
    let out = migrate(&unreachable, &[]);
    assert_refused(&out, 2, "opening storage_destination");
    assert!(!stderr(&out).contains("hunter2"), "{}", stderr(&out));

    let out = migrate(&only_source, &["-max-parallel=0"]);
    assert_refused(&out, 1, "-max-parallel must be at least 1");

    assert!(!dest.exists(), "no refusal created the destination");
    assert_eq!(
        embedded_keys(&source).await.len(),
        RAW_KEYS.len(),
        "the source is untouched"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_postgresql_migration_lock_stops_servers_and_migrations_until_reset() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::new().await;
    let pg = db.backend().await;
    for key in RAW_KEYS {
        pg.put(key, key.as_bytes().to_vec()).await.unwrap();
    }
    // As a migration that died would leave it (OpenBao's format).
    pg.put(
        "core/migration",
        br#"{"start":"2026-12-07T09:00:00Z"}"#.to_vec(),
    )
    .await
    .unwrap();

    let dest = dir.path().join("dest.redb");
    let config = migration_file(dir.path(), &postgresql_stanza(&db), &embedded_stanza(&dest));
    let out = migrate(&config, &[]);
    assert_refused(
        &out,
        2,
        "a storage migration from this source is in progress (started: 2026-12-07T09:00:00Z)",
    );
    assert!(stderr(&out).contains("-reset"), "{}", stderr(&out));

    // A server on the locked store refuses to start, naming the way out.
    let server_config = server_config(dir.path(), "pg.hcl", &postgresql_server_stanza(&db));
    let refused = Command::new(BIN)
        .args(["server", &server_config])
        .env("HOME", dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let text = stderr(&refused);
    assert!(
        text.contains("storage migration in progress (started: 2026-12-07T09:00:00Z)"),
        "{text}"
    );
    assert!(text.contains("tresor operator migrate -reset"), "{text}");
    db.wait_for_no_server();

    let out = migrate(&config, &["-reset"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Success! Migration lock reset"),
        "{}",
        stdout(&out)
    );
    assert_eq!(pg.get("core/migration").await.unwrap(), None);
    assert!(!dest.exists(), "-reset copies nothing");

    let out = migrate(&config, &[]);
    assert_migrated(&out);
    assert_eq!(
        pg.get("core/migration").await.unwrap(),
        None,
        "the lock is removed after the copy"
    );
    let mut expected: Vec<String> = RAW_KEYS
        .iter()
        .filter(|k| **k != "core/lock")
        .map(|k| (*k).to_owned())
        .collect();
    expected.sort();
    assert_eq!(embedded_keys(&dest).await, expected);

    // Into a destination that already holds data: copied, with a warning.
    let out = migrate(&config, &[]);
    assert_migrated(&out);
    assert!(
        stderr(&out).contains("Warning: the destination already holds data"),
        "{}",
        stderr(&out)
    );

    // The same table named twice, with URLs spelled differently: refused, lock removed.
    let alias = format!(
        "\"postgresql\" {{\n  connection_url = \"host=127.0.0.1 port=5432 user=postgres dbname={} sslmode=disable\"\n  table = \"tresor_kv_store\"\n}}",
        db.name
    );
    let out = migrate(
        &migration_file(dir.path(), &postgresql_stanza(&db), &alias),
        &[],
    );
    assert_refused(
        &out,
        2,
        "storage_source and storage_destination are the same store",
    );
    assert_eq!(pg.get("core/migration").await.unwrap(), None);
    assert_eq!(all_keys(&pg).await.len(), RAW_KEYS.len());
    pg.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_that_fails_part_way_says_how_far_it_got_and_that_the_destination_is_partial() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::new().await;
    let source = dir.path().join("source.redb");
    let names: Vec<String> = (0..1000)
        .map(|i| format!("logical/m/{:02}/k{i:04}", i % 7))
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    embedded_store(&source, &refs).await;
    // The destination table as Tresor would create it, and a trigger that fails every write
    // once 300 rows are in: a destination that breaks half-way.
    db.backend().await.close().await.unwrap();
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", &db.name, "-qAtc"])
        .arg(
            "CREATE FUNCTION full_up() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               IF (SELECT count(*) FROM tresor_kv_store) >= 300 THEN \
                 RAISE EXCEPTION 'destination full (test)'; \
               END IF; RETURN NEW; END $$; \
             CREATE TRIGGER full_up BEFORE INSERT ON tresor_kv_store \
               FOR EACH ROW EXECUTE FUNCTION full_up();",
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let out = migrate(
        &migration_file(
            dir.path(),
            &embedded_stanza(&source),
            &postgresql_stanza(&db),
        ),
        &["-max-parallel=2"],
    );
    assert_refused(&out, 2, "destination full (test)");
    let text = stderr(&out);
    let copied = db.rows().await.unwrap();
    // Each chunk of 64 keys is one transaction: the chunk that hit the trigger left nothing.
    assert!((64..1000).contains(&copied), "{copied} rows");
    assert_eq!(copied % 64, 0, "{copied} rows");
    assert!(
        text.contains(&format!(
            "copied {copied} of 1000 keys before the failure: the destination is partial"
        )),
        "{text}"
    );
    assert!(!text.contains("logical/"), "{text}");

    // Without the trigger, running it again finishes the job.
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", &db.name, "-qAtc"])
        .arg("DROP TRIGGER full_up ON tresor_kv_store")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = migrate(
        &migration_file(
            dir.path(),
            &embedded_stanza(&source),
            &postgresql_stanza(&db),
        ),
        &[],
    );
    assert_migrated(&out);
    assert_eq!(db.rows().await, Some(1000));
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_the_copy_removes_the_lock_and_says_the_destination_is_partial() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::new().await;
    db.backend().await.close().await.unwrap();
    // 200,000 entries of 200 bytes: several seconds of copying.
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", &db.name, "-qAtc"])
        .arg(
            "INSERT INTO tresor_kv_store SELECT 'logical/m/' || (i % 2000) || '/', 'k' || i, \
             convert_to(repeat('x', 200), 'UTF8') FROM generate_series(1, 200000) i",
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let dest = dir.path().join("dest.redb");
    let config = migration_file(dir.path(), &postgresql_stanza(&db), &embedded_stanza(&dest));
    let child = Command::new(BIN)
        .args(["operator", "migrate"])
        .arg(format!("-config={}", config.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(!stdout(&out).contains("Success"), "{}", stdout(&out));
    let copied = count_embedded(&dest).await;
    if copied == 0 {
        assert!(
            text.contains("interrupted before anything was copied"),
            "{text}"
        );
    } else {
        assert!(
            copied < 200_000,
            "the copy finished before the signal: make it longer"
        );
        assert!(
            text.contains(&format!(
                "interrupted after copying {copied} of 200000 keys: the destination is partial"
            )),
            "{text}"
        );
    }
    let pg = db.backend().await;
    assert_eq!(
        pg.get("core/migration").await.unwrap(),
        None,
        "the lock is removed"
    );
    pg.close().await.unwrap();
}
