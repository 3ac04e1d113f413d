//! HA on `storage "postgresql"`: three real `tresor` processes on different ports sharing one
//! database of the real PostgreSQL on 127.0.0.1:5432 (its own database `ha_<random>`, dropped
//! at the end). One becomes active, the others are standbys (sys/health 429, sys/leader,
//! 307 to the active node when asked not to forward, forwarding otherwise); kill -9 of the active node → another takes over within 5 s and
//! serves what was written; step-down hands over; `pg_terminate_backend` of the active node's
//! sessions → it stops serving. Throughout, every node is asked to write in rounds, and no
//! round may see two nodes accept a write.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::ha::{call, health, one_active, plain, start_node};
use serde_json::{Value, json};
use tresor_storage::test_db::{TestDb as Db, superuser as connect};

/// Every `interval`, asks every node at once to write (without following redirects), and
/// records how many accepted in each round.
struct Watch {
    stop: Arc<AtomicBool>,
    /// Rounds in which a node accepted the write.
    served: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<Vec<usize>>,
}

fn watch_writers(addrs: Vec<String>, token: String) -> Watch {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let served = Arc::new(AtomicU32::new(0));
    let counter = served.clone();
    let task = tokio::spawn(async move {
        let client = plain();
        let mut rounds = Vec::new();
        let mut round = 0u64;
        while !flag.load(Ordering::SeqCst) {
            round += 1;
            let writes = addrs.iter().map(|addr| {
                let (client, token) = (&client, token.as_str());
                async move {
                    let body = json!({ "data": { "round": round, "by": addr } });
                    let answer = call(
                        client,
                        addr,
                        "PUT",
                        "secret/data/watch",
                        Some(token),
                        Some(body),
                    )
                    .await;
                    matches!(answer, Some((200, _, _)))
                }
            });
            let accepted = futures_join_all(writes).await;
            let n = accepted.into_iter().filter(|a| *a).count();
            if n > 0 {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            rounds.push(n);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        rounds
    });
    Watch { stop, served, task }
}

impl Watch {
    /// Waits until the watch has seen `more` further rounds with an accepted write.
    async fn sees_writes(&self, more: u32) {
        let target = self.served.load(Ordering::SeqCst) + more;
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.served.load(Ordering::SeqCst) < target {
            assert!(
                Instant::now() < deadline,
                "the watch saw no accepted write within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Runs every future at once; answers in order.
async fn futures_join_all<F: Future<Output = bool>>(futures: impl Iterator<Item = F>) -> Vec<bool> {
    let handles: Vec<_> = futures.map(Box::pin).collect();
    let mut out = Vec::new();
    // Polled together: each is a request on its own connection.
    let mut pending: Vec<_> = handles.into_iter().map(Some).collect();
    let mut results: Vec<Option<bool>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *result = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(results.into_iter().map(|r| r.unwrap_or(false)));
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_one_active_fail_over_within_5s_step_down_and_never_two_writers() {
    let db = Db::new("ha_it").await;
    let dir = tempfile::tempdir().unwrap();
    let client = plain();

    // Initialise through the first node, then start the others on the same database.
    let mut nodes = vec![start_node(&db, dir.path(), 0)];
    let (status, init, _) = call(
        &client,
        &nodes[0].addr,
        "PUT",
        "sys/init",
        None,
        Some(json!({"secret_shares": 1, "secret_threshold": 1})),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{init}");
    let key = init["keys_base64"][0].as_str().unwrap().to_owned();
    let root = init["root_token"].as_str().unwrap().to_owned();
    nodes.push(start_node(&db, dir.path(), 1));
    nodes.push(start_node(&db, dir.path(), 2));
    for node in &nodes {
        let (status, body, _) = call(
            &client,
            &node.addr,
            "PUT",
            "sys/unseal",
            None,
            Some(json!({ "key": key })),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["sealed"], false, "{body}");
    }

    // One active, two standbys, all unsealed.
    let a = one_active(&client, &nodes, Duration::from_secs(10)).await;
    for (i, node) in nodes.iter().enumerate() {
        // A standby learns who the leader is within its retry interval (0.5 s).
        let deadline = Instant::now() + Duration::from_secs(2);
        let leader = loop {
            let (_, leader, _) = call(&client, &node.addr, "GET", "sys/leader", None, None)
                .await
                .unwrap();
            if leader["leader_address"] != "" || Instant::now() > deadline {
                break leader;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(leader["ha_enabled"], true, "{leader}");
        assert_eq!(leader["is_self"], i == a, "{leader}");
        assert_eq!(leader["leader_address"], nodes[a].addr.as_str(), "{leader}");
        let port: u16 = nodes[a].addr.rsplit(':').next().unwrap().parse().unwrap();
        assert_eq!(
            leader["leader_cluster_address"],
            format!("https://127.0.0.1:{}", port + 1),
            "{leader}"
        );
        if i != a {
            let (status, body, _) = call(&client, &node.addr, "GET", "sys/health", None, None)
                .await
                .unwrap();
            assert_eq!(status, 429, "{body}");
            assert_eq!(body["standby"], true, "{body}");
            assert_eq!(body["sealed"], false, "{body}");
            assert!(body["cluster_id"].is_string(), "{body}");
            for query in ["standbyok=true", "standbyok"] {
                let (status, _, _) = call(
                    &client,
                    &node.addr,
                    "GET",
                    &format!("sys/health?{query}"),
                    None,
                    None,
                )
                .await
                .unwrap();
                assert_eq!(status, 200, "{query}");
            }
            let (status, _, _) = call(
                &client,
                &node.addr,
                "GET",
                "sys/health?perfstandbyok=true",
                None,
                None,
            )
            .await
            .unwrap();
            assert_eq!(status, 429, "a standby is not a performance standby");
            let (_, seal, _) = call(&client, &node.addr, "GET", "sys/seal-status", None, None)
                .await
                .unwrap();
            assert_eq!(seal["sealed"], false, "{seal}");
        }
    }

    // Writes through the active node; a standby redirects (307, same path and query) and a
    // client that follows redirects gets the answer.
    let active = nodes[a].addr.clone();
    let (status, body, _) = call(
        &client,
        &active,
        "POST",
        "sys/mounts/secret",
        Some(&root),
        Some(json!({"type": "kv", "options": {"version": "2"}})),
    )
    .await
    .unwrap();
    assert_eq!(status, 204, "{body}");
    let (status, body, _) = call(
        &client,
        &active,
        "PUT",
        "secret/data/one",
        Some(&root),
        Some(json!({"data": {"v": "before fail-over"}})),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let standby = &nodes[(a + 1) % 3].addr;
    let (status, _, location) = call(
        &client,
        standby,
        "GET",
        "secret/data/one?version=1",
        Some(&root),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 307);
    assert_eq!(
        location.as_deref(),
        Some(format!("{active}/v1/secret/data/one?version=1").as_str())
    );
    let (status, _, _) = call(
        &client,
        standby,
        "PUT",
        "secret/data/one",
        Some(&root),
        Some(json!({"data": {"v": "through a standby"}})),
    )
    .await
    .unwrap();
    assert_eq!(status, 307, "a standby never writes itself");
    // Without the header, a standby forwards to the active node.
    let follow = common::http();
    let read = follow
        .get(format!("{standby}/v1/secret/data/one"))
        .header("X-Vault-Token", &root)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["data"]["data"]["v"], "before fail-over");

    // sys/ha-status on the active node lists the three.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body, _) = call(&client, &active, "GET", "sys/ha-status", Some(&root), None)
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        let listed = body["data"]["nodes"].as_array().unwrap().clone();
        if listed.len() == 3 {
            let actives: Vec<_> = listed.iter().filter(|n| n["active_node"] == true).collect();
            assert_eq!(actives.len(), 1, "{body}");
            assert_eq!(actives[0]["api_address"], active.as_str(), "{body}");
            assert!(listed.iter().all(|n| n["last_echo"].is_string()), "{body}");
            assert_eq!(body["nodes"], body["data"]["nodes"], "mirrored at the top");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ha-status never listed 3 nodes: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // From here on, every node is asked to write in rounds.
    let watch = watch_writers(nodes.iter().map(|n| n.addr.clone()).collect(), root.clone());

    watch.sees_writes(5).await;

    // kill -9 the active node: another one serves within 5 s, with what was written.
    nodes[a].server.take().unwrap().kill9();
    let killed = Instant::now();
    let b = loop {
        let mut found = None;
        for (i, node) in nodes.iter().enumerate() {
            if node.server.is_some() && health(&client, &node.addr).await == Some(200) {
                found = Some(i);
            }
        }
        if let Some(i) = found {
            break i;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "no node took over within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let took_over = killed.elapsed();
    eprintln!("take-over after kill -9: {took_over:?}");
    assert!(
        took_over <= Duration::from_secs(5),
        "take-over took {took_over:?}"
    );
    let (status, body, _) = call(
        &client,
        &nodes[b].addr,
        "GET",
        "secret/data/one",
        Some(&root),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["data"]["v"], "before fail-over");
    let (status, body, _) = call(
        &client,
        &nodes[b].addr,
        "PUT",
        "secret/data/two",
        Some(&root),
        Some(json!({"data": {"v": "after fail-over"}})),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let c = (0..3).find(|i| *i != a && *i != b).unwrap();
    let (_, leader, _) = call(&client, &nodes[c].addr, "GET", "sys/leader", None, None)
        .await
        .unwrap();
    assert_eq!(leader["is_self"], false, "{leader}");
    assert_eq!(one_active(&client, &nodes, Duration::from_secs(5)).await, b);
    watch.sees_writes(5).await;

    // Step-down (sudo) hands over to the remaining standby.
    let (status, body, _) = call(
        &client,
        &nodes[b].addr,
        "PUT",
        "sys/step-down",
        Some(&root),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        one_active(&client, &nodes, Duration::from_secs(5)).await,
        c,
        "the other standby took over"
    );
    let (status, body, _) = call(
        &client,
        &nodes[c].addr,
        "GET",
        "secret/data/two",
        Some(&root),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["data"]["v"], "after fail-over");
    watch.sees_writes(5).await;

    // The active node's sessions killed in PostgreSQL: it stops serving at once, and a node
    // (possibly itself, later) serves again with everything written so far.
    let admin = connect(&db.name).await;
    let terminated = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1 AND datname = current_database()",
            &[&nodes[c].app],
        )
        .await
        .unwrap();
    assert!(!terminated.is_empty());
    let cut = Instant::now();
    loop {
        if health(&client, &nodes[c].addr).await == Some(429) {
            break;
        }
        assert!(
            cut.elapsed() < Duration::from_secs(2),
            "the node whose sessions were killed kept serving as active"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let d = one_active(&client, &nodes, Duration::from_secs(10)).await;
    eprintln!(
        "after the cut, node {d} (cut: {c}) active after {:?}",
        cut.elapsed()
    );
    let (status, body, _) = call(
        &client,
        &nodes[d].addr,
        "GET",
        "secret/data/one",
        Some(&root),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["data"]["v"], "before fail-over");
    // A write succeeds again somewhere before the watch ends.
    let deadline = Instant::now() + Duration::from_secs(5);
    while call(
        &client,
        &nodes[d].addr,
        "PUT",
        "secret/data/three",
        Some(&root),
        Some(json!({"data": {"v": 3}})),
    )
    .await
    .map(|(s, _, _)| s)
        != Some(200)
    {
        assert!(Instant::now() < deadline, "no write accepted after the cut");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    watch.sees_writes(5).await;
    watch.stop.store(true, Ordering::SeqCst);
    let rounds = watch.task.await.unwrap();
    let served = rounds.iter().filter(|n| **n == 1).count();
    eprintln!("{} write rounds, {served} with one writer", rounds.len());
    assert!(
        rounds.iter().all(|n| *n <= 1),
        "two nodes accepted writes in the same round: {rounds:?}"
    );
    assert!(
        served >= 20,
        "the watch saw too few accepted writes: {rounds:?}"
    );
}
