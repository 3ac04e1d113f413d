//! The postgresql backend against the real PostgreSQL on 127.0.0.1:5432 (user `postgres`,
//! trust): every test makes its own database `pgstore_<random>` and drops it at the end, also
//! when the test fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tresor_storage::conformance::test_suite;
use tresor_storage::test_db::{TestDb, superuser};
use tresor_storage::{Backend, PostgresqlBackend, PostgresqlOptions, StorageError, TxnOp};

/// A database of the test's own (see `tresor_storage::test_db`), and the backend over it.
struct Db(TestDb);

impl std::ops::Deref for Db {
    type Target = TestDb;
    fn deref(&self) -> &TestDb {
        &self.0
    }
}

impl Db {
    async fn new() -> Db {
        Db(TestDb::new("pgstore").await)
    }

    async fn open(&self) -> PostgresqlBackend {
        PostgresqlBackend::open(PostgresqlOptions::new(self.url()))
            .await
            .unwrap()
    }
}

/// The backend's sessions in `db` (they identify as `application_name = tresor`).
async fn backend_pids(admin: &tokio_postgres::Client, db: &str) -> Vec<i32> {
    admin
        .query(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'tresor'",
            &[&db],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn postgresql_backend_meets_the_contract() {
    let db = Db::new().await;
    let backend = db.open().await;
    assert_eq!(backend.storage_type(), "postgresql");
    test_suite(&backend).await;
    // Twice on the same table: the suite must not trip over its own earlier run.
    test_suite(&backend).await;
    backend.close().await.unwrap();
    assert!(matches!(
        backend.get("anything").await,
        Err(StorageError::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_table_is_created_with_the_documented_layout_and_values_are_bytes() {
    let db = Db::new().await;
    let backend = db.open().await;
    backend
        .put("logical/abc/secret", vec![0, 159, 146, 150, 255])
        .await
        .unwrap();
    backend.put("top", b"t".to_vec()).await.unwrap();
    let admin = db.admin().await;
    let columns: Vec<(String, String, String)> = admin
        .query(
            "SELECT column_name::text, data_type::text, coalesce(collation_name::text, '') \
             FROM information_schema.columns WHERE table_name = 'tresor_kv_store' \
             ORDER BY ordinal_position",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let expected = [
        ("path", "text", "C"),
        ("key", "text", "C"),
        ("value", "bytea", ""),
    ];
    assert_eq!(
        columns,
        expected.map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    );
    let primary_key: String = admin
        .query_one(
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index \
             WHERE indrelid = 'tresor_kv_store'::regclass AND indisprimary",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(primary_key.ends_with("(path, key)"), "{primary_key}");
    let rows: Vec<(String, String, Vec<u8>)> = admin
        .query(
            "SELECT path, key, value FROM tresor_kv_store ORDER BY path",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        rows,
        [
            (String::new(), "top".to_owned(), b"t".to_vec()),
            (
                "logical/abc/".to_owned(),
                "secret".to_owned(),
                vec![0, 159, 146, 150, 255]
            ),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_starting_at_once_create_the_table_once() {
    let db = Db::new().await;
    let url = db.url();
    let mut opening = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let url = url.clone();
        opening.spawn(async move { PostgresqlBackend::open(PostgresqlOptions::new(url)).await });
    }
    let mut opened = Vec::new();
    while let Some(result) = opening.join_next().await {
        opened.push(result.unwrap().expect("every concurrent open succeeds"));
    }
    opened[0].put("k", b"v".to_vec()).await.unwrap();
    for backend in &opened {
        assert_eq!(backend.get("k").await.unwrap(), Some(b"v".to_vec()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_with_an_op_postgresql_refuses_writes_nothing() {
    let db = Db::new().await;
    let backend = db.open().await;
    backend.put("txn/pre", b"old".to_vec()).await.unwrap();
    backend.put("txn/b", b"old b".to_vec()).await.unwrap();
    // The database itself refuses one row, in the middle of the block.
    db.admin()
        .await
        .batch_execute(
            "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF NEW.key = 'poison' THEN RAISE EXCEPTION 'refused by the test trigger'; END IF;
               RETURN NEW;
             END $$;
             CREATE TRIGGER refuse_poison BEFORE INSERT OR UPDATE ON tresor_kv_store
               FOR EACH ROW EXECUTE FUNCTION refuse_poison();",
        )
        .await
        .unwrap();
    let put = |key: &str, value: &[u8]| TxnOp::Put {
        key: key.to_owned(),
        value: value.to_vec(),
    };
    let err = backend
        .transaction(vec![
            put("txn/a", b"a"),
            put("txn/b", b"new b"),
            TxnOp::Delete {
                key: "txn/pre".to_owned(),
            },
            put("txn/poison", b"p"),
            put("txn/c", b"c"),
        ])
        .await
        .unwrap_err();
    match &err {
        StorageError::Io(message) => {
            assert!(message.contains("refused by the test trigger"), "{message}")
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert_eq!(backend.get("txn/a").await.unwrap(), None);
    assert_eq!(backend.get("txn/b").await.unwrap(), Some(b"old b".to_vec()));
    assert_eq!(backend.get("txn/pre").await.unwrap(), Some(b"old".to_vec()));
    assert_eq!(backend.get("txn/c").await.unwrap(), None);
    assert_eq!(backend.list("txn/").await.unwrap(), ["b", "pre"]);

    // The connection that saw the refusal is fine, and a good block still commits whole.
    backend
        .transaction(vec![put("txn/a", b"a"), put("txn/c", b"c")])
        .await
        .unwrap();
    assert_eq!(backend.list("txn/").await.unwrap(), ["a", "b", "c", "pre"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_errors_never_show_the_password() {
    let db = Db::new().await;
    let password = "Hunter2-S3cret!pw";
    let encoded = "Hunter2-S3cret%21pw";
    let cases = [
        // PostgreSQL refuses the login (this server trusts TCP logins, so the refusal is for
        // the role, the nearest to a wrong password it can give).
        format!(
            "postgres://no_such_role_{}:{encoded}@127.0.0.1:5432/{}",
            std::process::id(),
            db.name
        ),
        format!("postgres://postgres:{encoded}@127.0.0.1:5432/pgstore_no_such_database"),
        // Nothing listens there.
        format!("postgres://postgres:{encoded}@127.0.0.1:1/{}", db.name),
        // Unparsable.
        format!(
            "postgres://postgres:{encoded}@127.0.0.1:notaport/{}",
            db.name
        ),
        format!(
            "host=127.0.0.1 port=1 user=postgres password='{password}' dbname={}",
            db.name
        ),
        format!("host=127.0.0.1 user=postgres password={password} bogus=1"),
    ];
    for url in cases {
        let err = PostgresqlBackend::open(PostgresqlOptions::new(url.clone()))
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, StorageError::Open { .. }), "{url}: {err:?}");
        for secret in [password, encoded, "Hunter2"] {
            assert!(!message.contains(secret), "{url}: {message}");
            assert!(!format!("{err:?}").contains(secret), "{url}: {err:?}");
        }
        eprintln!("{message}");
    }

    // At run time: the backend is open, then its database stops taking connections.
    let url = format!("postgres://postgres:{encoded}@127.0.0.1:5432/{}", db.name);
    let backend = PostgresqlBackend::open(PostgresqlOptions::new(url))
        .await
        .unwrap();
    assert!(!format!("{backend:?}").contains("Hunter2"), "{backend:?}");
    backend.put("k", b"v".to_vec()).await.unwrap();
    let sup = superuser("postgres").await;
    sup.batch_execute(&format!(
        "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS false",
        db.name
    ))
    .await
    .unwrap();
    sup.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
        &[&db.name],
    )
    .await
    .unwrap();
    let err = backend.get("k").await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, StorageError::Io(_)), "{err:?}");
    assert!(
        message.contains("not currently accepting connections"),
        "{message}"
    );
    assert!(!message.contains("Hunter2"), "{message}");
    sup.batch_execute(&format!(
        "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS true",
        db.name
    ))
    .await
    .unwrap();
    // And it recovers by itself once the database is back.
    assert_eq!(backend.get("k").await.unwrap(), Some(b"v".to_vec()));
}

#[tokio::test(flavor = "multi_thread")]
async fn terminated_connections_are_replaced_and_no_operation_fails() {
    let db = Db::new().await;
    let backend = Arc::new(db.open().await);
    let admin = db.admin().await;
    // Several connections open and idle at once.
    let mut busy = tokio::task::JoinSet::new();
    for i in 0..8 {
        let backend = backend.clone();
        busy.spawn(async move {
            backend
                .put(&format!("r/{i}"), vec![u8::try_from(i).unwrap()])
                .await
                .unwrap();
        });
    }
    while busy.join_next().await.is_some() {}
    let before: HashSet<i32> = backend_pids(&admin, &db.name).await.into_iter().collect();
    assert!(!before.is_empty());

    for round in 0..3 {
        let ended: Vec<bool> = admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND application_name = 'tresor'",
                &[&db.name],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(
            !ended.is_empty() && ended.iter().all(|e| *e),
            "round {round}"
        );
        // Straight away, before the client side may even have noticed.
        assert_eq!(backend.get("r/3").await.unwrap(), Some(vec![3]));
        backend
            .put(&format!("after/{round}"), b"x".to_vec())
            .await
            .unwrap();
        backend
            .transaction(vec![
                TxnOp::Put {
                    key: format!("after/{round}/t"),
                    value: b"t".to_vec(),
                },
                TxnOp::Delete {
                    key: "r/0".to_owned(),
                },
            ])
            .await
            .unwrap();
        assert!(backend.list("r/").await.unwrap().contains(&"7".to_owned()));
        let mut concurrent = tokio::task::JoinSet::new();
        for i in 1..8 {
            let backend = backend.clone();
            concurrent.spawn(async move { backend.get(&format!("r/{i}")).await });
        }
        while let Some(result) = concurrent.join_next().await {
            assert!(result.unwrap().unwrap().is_some(), "round {round}");
        }
    }

    // A session ended in the middle of an operation: each write waits behind a lock, its
    // session is terminated, the write goes through on a new connection once the lock is
    // gone.
    // Its own session: pg_stat_activity is read once per transaction, so the session that
    // holds the lock would never see the writes arrive.
    let locker = db.admin().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE tresor_kv_store IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let mut waiting = tokio::task::JoinSet::new();
    for i in 0..4 {
        let backend = backend.clone();
        waiting.spawn(async move { backend.put(&format!("mid/{i}"), b"m".to_vec()).await });
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let blocked = loop {
        let pids: Vec<i32> = admin
            .query(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 \
                 AND application_name = 'tresor' AND wait_event_type = 'Lock'",
                &[&db.name],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        if pids.len() == 4 {
            break pids;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "writes waiting: {pids:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid",
            &[&blocked],
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    locker.batch_execute("COMMIT").await.unwrap();
    while let Some(result) = waiting.join_next().await {
        result
            .unwrap()
            .expect("a write whose session was terminated is retried");
    }
    assert_eq!(backend.list("mid/").await.unwrap(), ["0", "1", "2", "3"]);

    let after: HashSet<i32> = backend_pids(&admin, &db.name).await.into_iter().collect();
    assert!(!after.is_empty());
    assert!(after.iter().all(|pid| !blocked.contains(pid)));
    assert!(
        after.is_disjoint(&before),
        "no terminated session is in use: {before:?} / {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn max_parallel_bounds_the_connections() {
    let db = Db::new().await;
    let mut options = PostgresqlOptions::new(db.url());
    options.max_parallel = 3;
    let backend = Arc::new(PostgresqlBackend::open(options).await.unwrap());
    backend.put("k", b"v".to_vec()).await.unwrap();
    // Every write waits behind a lock held elsewhere, so each one in flight holds a
    // connection.
    let admin = db.admin().await;
    let locker = db.admin().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE tresor_kv_store IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let mut writers = tokio::task::JoinSet::new();
    for i in 0..12 {
        let backend = backend.clone();
        writers.spawn(async move { backend.put(&format!("w/{i}"), b"w".to_vec()).await });
    }
    // Wait until three writes are blocked, then give the other nine time to (wrongly) open
    // connections of their own.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while backend_pids(&admin, &db.name).await.len() < 3 {
        assert!(std::time::Instant::now() < deadline, "writes never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let open = backend_pids(&admin, &db.name).await.len();
    assert_eq!(open, 3, "connections while 12 writes wait");
    locker.batch_execute("COMMIT").await.unwrap();
    while let Some(result) = writers.join_next().await {
        result.unwrap().unwrap();
    }
    assert_eq!(backend.list("w/").await.unwrap().len(), 12);
    assert!(backend_pids(&admin, &db.name).await.len() <= 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_table_names_are_refused_before_any_sql() {
    let db = Db::new().await;
    for table in [
        "kv; DROP TABLE pg_class",
        "kv\"; DROP TABLE x; --",
        "a.b.c",
        "1kv",
        "",
    ] {
        let mut options = PostgresqlOptions::new(db.url());
        options.table = table.to_owned();
        let err = PostgresqlBackend::open(options).await.unwrap_err();
        assert!(
            err.to_string().contains("not a valid table name"),
            "{table:?}: {err}"
        );
    }
    let tables: i64 = db
        .admin()
        .await
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 0);

    // A schema-qualified name and a reserved word are fine, and stay apart.
    let admin = db.admin().await;
    admin.batch_execute("CREATE SCHEMA tresor").await.unwrap();
    let mut options = PostgresqlOptions::new(db.url());
    options.table = "tresor.select".to_owned();
    let a = PostgresqlBackend::open(options).await.unwrap();
    let b = db.open().await;
    a.put("k", b"a".to_vec()).await.unwrap();
    assert_eq!(b.get("k").await.unwrap(), None);
    assert_eq!(a.table().to_string(), "\"tresor\".\"select\"");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_table_of_another_shape_is_refused_at_open() {
    let db = Db::new().await;
    let admin = db.admin().await;
    // Vault's own layout: parent_path is NOT NULL and Tresor never fills it.
    admin
        .batch_execute(
            "CREATE TABLE tresor_kv_store (parent_path TEXT COLLATE \"C\" NOT NULL, \
             path TEXT COLLATE \"C\", key TEXT COLLATE \"C\", value BYTEA, \
             PRIMARY KEY (path, key))",
        )
        .await
        .unwrap();
    let err = PostgresqlBackend::open(PostgresqlOptions::new(db.url()))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a Tresor storage table"), "{err}");
    assert!(err.contains("column parent_path is NOT NULL"), "{err}");

    // Text compared by the database's collation would break listing ranges.
    admin
        .batch_execute(
            "CREATE TABLE other (path TEXT COLLATE \"POSIX\" NOT NULL, key TEXT COLLATE \"C\" NOT NULL, \
             value BYTEA NOT NULL, PRIMARY KEY (path, key))",
        )
        .await
        .unwrap();
    let mut options = PostgresqlOptions::new(db.url());
    options.table = "other".to_owned();
    let err = PostgresqlBackend::open(options)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("column path is text (collation \"POSIX\")"),
        "{err}"
    );
}

/// A PostgreSQL of the test's own (the machine's `initdb`), on a free port, that checks
/// passwords with SCRAM (the shared server trusts every login, so it cannot refuse a wrong
/// password) and that a test may stop and restart (the shared one is everyone's). Stopped and
/// deleted when dropped.
struct PrivateCluster {
    dir: std::path::PathBuf,
    bin: std::path::PathBuf,
    port: u16,
}

impl PrivateCluster {
    const ADMIN_PASSWORD: &str = "Adm1n-pw-for-test";

    fn start() -> PrivateCluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's server binaries under /usr/lib/postgresql")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("initdb under /usr/lib/postgresql/*/bin");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("pgstore-cluster-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pwfile = dir.join("pw");
        std::fs::write(&pwfile, Self::ADMIN_PASSWORD).unwrap();
        let cluster = PrivateCluster { dir, bin, port };
        // initdb refuses to run as root: as root, run the cluster as `postgres`.
        cluster.chown_to_runner();
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.data(),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                &format!("--pwfile={}", pwfile.display()),
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
        );
        cluster.pg_ctl("start");
        cluster
    }

    /// `pg_ctl start`, `stop` (fast: sessions are ended, as in a restart) or `restart`.
    fn pg_ctl(&self, action: &str) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log").display().to_string();
        let data = self.data();
        let mut args = vec!["-D", data.as_str(), "-w", "-m", "fast"];
        if action != "stop" {
            args.extend(["-o", options.as_str(), "-l", log.as_str()]);
        }
        args.push(action);
        self.run("pg_ctl", &args);
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn as_root() -> bool {
        std::process::Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout.trim_ascii() == b"0")
            .unwrap_or(false)
    }

    fn chown_to_runner(&self) {
        if Self::as_root() {
            let status = std::process::Command::new("chown")
                .args(["-R", "postgres"])
                .arg(&self.dir)
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let program = self.bin.join(tool);
        let mut command = if Self::as_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            std::process::Command::new(&program)
        };
        let output = command.args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{tool} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn url(&self, password: &str) -> String {
        format!(
            "postgres://postgres:{password}@127.0.0.1:{}/postgres",
            self.port
        )
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let program = self.bin.join("pg_ctl");
        let data = self.data();
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let _ = if Self::as_root() {
            std::process::Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&program)
                .args(args)
                .output()
        } else {
            std::process::Command::new(&program).args(args).output()
        };
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_refused_and_never_shown() {
    let cluster = PrivateCluster::start();
    let wrong = "Wr0ng-Pa$$:w/rd@x";
    let encoded = "Wr0ng-Pa%24%24%3Aw%2Frd%40x";
    for url in [
        cluster.url(encoded),
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres password='{}'",
            cluster.port,
            wrong.replace('\'', "\\'")
        ),
    ] {
        let err = PostgresqlBackend::open(PostgresqlOptions::new(url.clone()))
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("password authentication failed"),
            "{url}: {message}"
        );
        for shown in [message, format!("{err:?}")] {
            for secret in [wrong, encoded, "Wr0ng"] {
                assert!(!shown.contains(secret), "{url}: {shown}");
            }
        }
    }

    // The right password works, so the refusals above were about the password.
    let backend = PostgresqlBackend::open(PostgresqlOptions::new(
        cluster.url(PrivateCluster::ADMIN_PASSWORD),
    ))
    .await
    .unwrap();
    backend.put("k", b"v".to_vec()).await.unwrap();

    // The password changes under a running backend: its next connection is refused, and the
    // error does not show the password it used.
    let (admin, connection) = tokio_postgres::connect(
        &cluster.url(PrivateCluster::ADMIN_PASSWORD),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    admin
        .batch_execute("ALTER ROLE postgres PASSWORD 'Another-pw-2'")
        .await
        .unwrap();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'tresor'",
            &[],
        )
        .await
        .unwrap();
    let err = backend.get("k").await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, StorageError::Io(_)), "{err:?}");
    assert!(
        message.contains("password authentication failed"),
        "{message}"
    );
    assert!(
        !message.contains(PrivateCluster::ADMIN_PASSWORD),
        "{message}"
    );
    assert!(!message.contains("Adm1n"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_backend_rides_out_a_postgresql_restart_and_an_outage() {
    let cluster = PrivateCluster::start();
    let backend = Arc::new(
        PostgresqlBackend::open(PostgresqlOptions::new(
            cluster.url(PrivateCluster::ADMIN_PASSWORD),
        ))
        .await
        .unwrap(),
    );
    // A few connections open and idle.
    let mut writes = tokio::task::JoinSet::new();
    for i in 0..6 {
        let backend = backend.clone();
        writes.spawn(async move { backend.put(&format!("k/{i}"), vec![i]).await });
    }
    while let Some(result) = writes.join_next().await {
        result.unwrap().unwrap();
    }

    // A restart: every pooled connection is dead; the next operations still succeed.
    cluster.pg_ctl("restart");
    assert_eq!(backend.get("k/2").await.unwrap(), Some(vec![2]));
    backend.put("after-restart", b"x".to_vec()).await.unwrap();
    assert_eq!(backend.list("k/").await.unwrap().len(), 6);

    // An outage: operations fail with the reason (never the password) while it lasts...
    cluster.pg_ctl("stop");
    let err = backend.get("k/2").await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, StorageError::Io(_)), "{err:?}");
    assert!(message.contains("Connection refused"), "{message}");
    assert!(!message.contains("Adm1n"), "{message}");
    // ...and work again once PostgreSQL is back, without reopening the backend.
    cluster.pg_ctl("start");
    assert_eq!(backend.get("k/2").await.unwrap(), Some(vec![2]));
    assert_eq!(
        backend.get("after-restart").await.unwrap(),
        Some(b"x".to_vec())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_named_counts_other_backends_sessions_in_the_same_database_only() {
    let db = Db::new().await;
    let other_db = Db::new().await;
    let mut options = PostgresqlOptions::new(db.url());
    options.application_name = "tresor-probe".to_owned();
    let probe = PostgresqlBackend::open(options.clone()).await.unwrap();
    // None counted, once sessions that just ended (a connection's close reaches PostgreSQL a
    // moment after the client drops it) are gone: a wrong count stays and fails at the deadline.
    let settles_to_zero = |name: &'static str| {
        let probe = &probe;
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let n = probe.sessions_named(name).await.unwrap();
                if n == 0 {
                    return;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{n} {name} sessions linger"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    settles_to_zero("tresor").await;
    // Its own idle sessions are not counted.
    assert_eq!(probe.sessions_named("tresor-probe").await.unwrap(), 0);

    // A server's backend elsewhere does not count; one on this database does.
    let elsewhere = other_db.open().await;
    elsewhere.put("k", b"v".to_vec()).await.unwrap();
    settles_to_zero("tresor").await;
    let server = db.open().await;
    server.put("k", b"v".to_vec()).await.unwrap();
    assert!(probe.sessions_named("tresor").await.unwrap() >= 1);
    server.close().await.unwrap();
    // Closing drops the idle sessions; PostgreSQL forgets them a moment later.
    settles_to_zero("tresor").await;
    // A URL's own application_name wins over the option.
    options.connection_url = format!("{}?application_name=custom", db.url());
    let custom = PostgresqlBackend::open(options).await.unwrap();
    assert!(probe.sessions_named("custom").await.unwrap() >= 1);
    custom.close().await.unwrap();
    probe.close().await.unwrap();
    elsewhere.close().await.unwrap();
}
