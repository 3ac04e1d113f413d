//! For tests (feature `test-db`): a PostgreSQL database of a test's own on the real server at
//! 127.0.0.1:5432 (user `postgres`, trust auth), dropped with its sessions when the test ends,
//! even on failure. Shared by this crate's unit and integration tests and by the `tresor`
//! crate's integration tests, so the setup exists once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: a database that cannot be made fails the test"
)]

use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug)]
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    /// A fresh UTF-8 database named `<prefix>_<pid>_<n>_<nanos>`, unique across test binaries
    /// running side by side.
    pub async fn new(prefix: &str) -> TestDb {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "{prefix}_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            nanos % 100_000
        );
        superuser("postgres")
            .await
            .batch_execute(&format!(
                "CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"
            ))
            .await
            .unwrap();
        TestDb { name }
    }

    /// Its connection URL, without a query string (tests append their own).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    /// A superuser session in this database (not one of a backend's).
    pub async fn admin(&self) -> tokio_postgres::Client {
        superuser(&self.name).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let status = std::process::Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-qAtc",
            ])
            .arg(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("could not drop database {}: {status:?}", self.name);
        }
    }
}

/// A session as `postgres` in database `dbname`.
pub async fn superuser(dbname: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port=5432 user=postgres dbname={dbname}"),
        tokio_postgres::NoTls,
    )
    .await
    .expect("PostgreSQL on 127.0.0.1:5432 (user postgres, trust)");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}
