//! Kill -9 test: every write the embedded backend acknowledged is on disk, whenever the process
//! dies.
//!
//! # Layout
//! The parent test re-runs this very test binary as a child with `TRESOR_CRASH_CHILD_DB` set,
//! selecting `child_writer` or `child_concurrent_writer`. The child writes forever and prints
//! `acked ...` after each acknowledged put; the parent SIGKILLs it mid-stream, reopens the file
//! and checks every acked key. Without the env var the child tests return at once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tresor_storage::{Backend, EmbeddedBackend};

const DB_ENV: &str = "TRESOR_CRASH_CHILD_DB";
const ACKS_BEFORE_KILL: usize = 300;
const CHILD_MAX_WRITES: u64 = 100_000;
const CHILD_TASKS: u64 = 16;

/// Varies the length too, so a torn page cannot pass for a correct value.
fn value_for(id: &str) -> Vec<u8> {
    let n = id.len() + id.bytes().map(usize::from).sum::<usize>();
    format!("value-of-{id};").repeat(n % 50 + 1).into_bytes()
}

fn print_ack(id: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "acked {id}").unwrap();
    out.flush().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn child_writer() {
    let Ok(path) = std::env::var(DB_ENV) else {
        return;
    };
    let backend = EmbeddedBackend::open(path).unwrap();
    for n in 0..CHILD_MAX_WRITES {
        let id = n.to_string();
        backend
            .put(&format!("k/{id}"), value_for(&id))
            .await
            .unwrap();
        print_ack(&id);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn child_concurrent_writer() {
    let Ok(path) = std::env::var(DB_ENV) else {
        return;
    };
    let backend = Arc::new(EmbeddedBackend::open(path).unwrap());
    let tasks: Vec<_> = (0..CHILD_TASKS)
        .map(|task| {
            let backend = Arc::clone(&backend);
            tokio::spawn(async move {
                for n in 0..CHILD_MAX_WRITES / CHILD_TASKS {
                    let id = format!("{task}-{n}");
                    backend
                        .put(&format!("k/{id}"), value_for(&id))
                        .await
                        .unwrap();
                    print_ack(&id);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// The name libtest gives `function` of this module: `--exact` needs its whole path
/// (`crash::child_writer` while this file is a module of the `backends` test binary).
fn test_name(function: &str) -> String {
    match module_path!().split_once("::") {
        Some((_crate, module)) => format!("{module}::{function}"),
        None => function.to_owned(),
    }
}

/// Runs `child_test` as a writer on `db`, SIGKILLs it after enough acks, returns the acked ids.
async fn kill_child_mid_write(child_test: &str, db: &Path) -> Vec<String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &test_name(child_test),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DB_ENV, db)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    let read_acks = async {
        while acked.len() < ACKS_BEFORE_KILL {
            let Some(line) = lines.next_line().await.unwrap() else {
                panic!("child exited after {} acks", acked.len());
            };
            if let Some(id) = line.strip_prefix("acked ") {
                acked.push(id.to_owned());
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), read_acks)
        .await
        .expect("child did not ack enough writes in time");
    // SIGKILL on Unix: no destructor, no flush, no clean shutdown.
    child.kill().await.unwrap();
    acked
}

async fn assert_acked_writes_present(db: &Path, acked: &[String]) {
    let backend = EmbeddedBackend::open(db).unwrap();
    for id in acked {
        let got = backend.get(&format!("k/{id}")).await.unwrap();
        assert_eq!(
            got,
            Some(value_for(id)),
            "acked write k/{id} lost or corrupted"
        );
    }
    backend.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tresor.redb");
    let start = Instant::now();
    let acked = kill_child_mid_write("child_writer", &db).await;
    let killed = start.elapsed();
    assert_acked_writes_present(&db, &acked).await;
    println!(
        "sequential: {} acks, killed after {killed:?}, verified after {:?}",
        acked.len(),
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn group_committed_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tresor.redb");
    let start = Instant::now();
    let acked = kill_child_mid_write("child_concurrent_writer", &db).await;
    let killed = start.elapsed();
    let writers: std::collections::HashSet<_> =
        acked.iter().filter_map(|id| id.split('-').next()).collect();
    assert!(
        writers.len() > 1,
        "acks came from several concurrent writers: {writers:?}"
    );
    assert_acked_writes_present(&db, &acked).await;
    println!(
        "concurrent: {} acks from {} writers, killed after {killed:?}, verified after {:?}",
        acked.len(),
        writers.len(),
        start.elapsed()
    );
}
