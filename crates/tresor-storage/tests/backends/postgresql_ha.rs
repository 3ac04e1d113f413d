//! The postgresql HA lock against the real PostgreSQL on 127.0.0.1:5432: one holder at a
//! time, the fence on writes, loss on a killed session, take-over after the TTL. Each test
//! makes its own database `ha_<random>` and drops it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tresor_storage::ha::{HaLock, NodeAdvert};
use tresor_storage::test_db::{TestDb, superuser};
use tresor_storage::{Backend, HaOptions, PostgresqlBackend, PostgresqlHa, PostgresqlOptions};

/// A database of the test's own (see `tresor_storage::test_db`), and nodes over it.
struct Db(TestDb);

impl std::ops::Deref for Db {
    type Target = TestDb;
    fn deref(&self) -> &TestDb {
        &self.0
    }
}

impl Db {
    async fn new() -> Db {
        Db(TestDb::new("ha_st").await)
    }

    /// A node: its backend and its lock; `app` names its sessions in `pg_stat_activity`.
    async fn node(&self, app: &str) -> (Arc<PostgresqlBackend>, Arc<PostgresqlHa>) {
        let url = format!(
            "postgres://postgres@127.0.0.1:5432/{}?application_name={app}",
            self.name
        );
        let (backend, lock) = PostgresqlBackend::open_ha(
            PostgresqlOptions::new(url),
            HaOptions {
                table: "tresor_ha_locks".to_owned(),
                advert: NodeAdvert {
                    node_id: app.to_owned(),
                    api_addr: format!("http://{app}:8200"),
                    cluster_addr: format!("https://{app}:8201"),
                    hostname: app.to_owned(),
                    version: "test".to_owned(),
                },
            },
        )
        .await
        .unwrap();
        (Arc::new(backend), lock)
    }
}

async fn eventually<F: AsyncFn() -> bool>(what: &str, within: Duration, check: F) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_holder_at_a_time_standbys_cannot_write_and_a_released_lock_is_taken_at_once() {
    let db = Db::new().await;
    let (a_store, a) = db.node("node_a").await;
    let (b_store, b) = db.node("node_b").await;

    // Sealed nodes write unfenced (sys/init); standbys refuse every write.
    a_store.put("core/x", b"sealed".to_vec()).await.unwrap();
    a.set_standby(true);
    b.set_standby(true);
    let err = b_store.put("core/x", b"b".to_vec()).await.unwrap_err();
    assert!(err.to_string().contains("standby"), "{err}");

    assert!(a.try_acquire().await.unwrap());
    assert!(*a.watch_held().borrow());
    assert!(!b.try_acquire().await.unwrap());
    assert_eq!(
        b.leader().await.unwrap().unwrap().api_addr,
        "http://node_a:8200"
    );
    a_store.put("core/x", b"a".to_vec()).await.unwrap();
    a_store.delete("core/y").await.unwrap();
    assert_eq!(b_store.get("core/x").await.unwrap().unwrap(), b"a");
    assert!(b_store.put("core/x", b"b".to_vec()).await.is_err());

    a.announce().await.unwrap();
    b.announce().await.unwrap();
    let nodes = b.nodes().await.unwrap();
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    assert!(
        nodes
            .iter()
            .any(|n| n.advert.node_id == "node_a" && n.active)
    );
    assert!(
        nodes
            .iter()
            .any(|n| n.advert.node_id == "node_b" && !n.active)
    );

    // Several renewals pass without losing it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(*a.watch_held().borrow());
    a_store.put("core/x", b"a2".to_vec()).await.unwrap();

    a.release().await;
    assert!(!*a.watch_held().borrow());
    assert!(a_store.put("core/x", b"late".to_vec()).await.is_err());
    assert!(b.try_acquire().await.unwrap());
    b_store.put("core/x", b"b".to_vec()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_row_fails_the_holders_next_write_and_a_killed_session_loses_the_lock() {
    let db = Db::new().await;
    let admin = superuser(&db.name).await;
    let (a_store, a) = db.node("node_a").await;
    let (b_store, b) = db.node("node_b").await;
    a.set_standby(true);
    b.set_standby(true);
    assert!(a.try_acquire().await.unwrap());
    a_store.put("k", b"1".to_vec()).await.unwrap();

    // Someone else's identity in the row: the fence refuses A's write inside PostgreSQL, and
    // A knows at once.
    admin
        .execute(
            "UPDATE tresor_ha_locks SET ha_identity = 'intruder' WHERE ha_key = 'core/lock'",
            &[],
        )
        .await
        .unwrap();
    let err = a_store.put("k", b"2".to_vec()).await.unwrap_err();
    assert!(
        err.to_string().contains("no longer holds the HA lock"),
        "{err}"
    );
    assert!(!*a.watch_held().borrow());
    assert_eq!(b_store.get("k").await.unwrap().unwrap(), b"1");
    admin
        .execute(
            "DELETE FROM tresor_ha_locks WHERE ha_key = 'core/lock'",
            &[],
        )
        .await
        .unwrap();

    // Killing the holder's sessions loses the lock at once (no write needed); the row stays
    // until it lapses, then another node takes it.
    assert!(a.try_acquire().await.unwrap());
    let mut held = a.watch_held();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'node_a' AND datname = current_database()",
            &[],
        )
        .await
        .unwrap();
    let killed = Instant::now();
    tokio::time::timeout(Duration::from_secs(1), held.wait_for(|h| !*h))
        .await
        .expect("the holder notices within a second")
        .unwrap();
    assert!(a_store.put("k", b"3".to_vec()).await.is_err());
    eventually(
        "B takes the lapsed lock",
        Duration::from_secs(5),
        async || b.try_acquire().await.unwrap(),
    )
    .await;
    assert!(killed.elapsed() < Duration::from_secs(5));
    b_store.put("k", b"4".to_vec()).await.unwrap();
    assert!(!a.try_acquire().await.unwrap());
    assert_eq!(a.leader().await.unwrap().unwrap().node_id, "node_b");
}
