//! Behaviour specific to the embedded (redb) backend: persistence, group commit, lifecycle.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::sync::Arc;
use std::time::Instant;

use tresor_storage::{Backend, EmbeddedBackend, StorageError, TxnOp};

#[tokio::test(flavor = "multi_thread")]
async fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tresor.redb");
    let backend = EmbeddedBackend::open(&path).unwrap();
    assert_eq!(backend.storage_type(), "embedded");
    backend.put("a/one", b"1".to_vec()).await.unwrap();
    backend.put("a/gone", b"x".to_vec()).await.unwrap();
    backend
        .transaction(vec![
            TxnOp::Put {
                key: "b/two".into(),
                value: b"2".to_vec(),
            },
            TxnOp::Delete {
                key: "a/gone".into(),
            },
        ])
        .await
        .unwrap();
    backend.close().await.unwrap();

    let reopened = EmbeddedBackend::open(&path).unwrap();
    assert_eq!(reopened.get("a/one").await.unwrap(), Some(b"1".to_vec()));
    assert_eq!(reopened.get("b/two").await.unwrap(), Some(b"2".to_vec()));
    assert_eq!(reopened.get("a/gone").await.unwrap(), None);
    assert_eq!(reopened.list("").await.unwrap(), ["a/", "b/"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_without_close_keeps_acknowledged_writes_and_releases_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tresor.redb");
    let backend = EmbeddedBackend::open(&path).unwrap();
    backend.put("k", b"v".to_vec()).await.unwrap();
    drop(backend);
    let reopened = EmbeddedBackend::open(&path).unwrap();
    assert_eq!(reopened.get("k").await.unwrap(), Some(b"v".to_vec()));
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_writes_are_all_acknowledged_and_group_committed() {
    const WRITES: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tresor.redb");
    let backend = Arc::new(EmbeddedBackend::open(&path).unwrap());
    let commits_before = backend.commit_count();

    let start = Instant::now();
    let barrier = Arc::new(tokio::sync::Barrier::new(WRITES));
    let tasks: Vec<_> = (0..WRITES)
        .map(|i| {
            let backend = Arc::clone(&backend);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                backend
                    .put(&format!("c/{i:03}"), i.to_string().into_bytes())
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let elapsed = start.elapsed();
    let commits = backend.commit_count() - commits_before;
    println!("{WRITES} concurrent puts: {commits} commits in {elapsed:?}");
    assert!(commits >= 1);
    assert!(
        commits < WRITES as u64,
        "group commit should batch concurrent writes: {commits} commits for {WRITES} writes"
    );
    Arc::into_inner(backend).unwrap().close().await.unwrap();

    let reopened = EmbeddedBackend::open(&path).unwrap();
    for i in 0..WRITES {
        let value = reopened.get(&format!("c/{i:03}")).await.unwrap();
        assert_eq!(value, Some(i.to_string().into_bytes()), "c/{i:03}");
    }
    assert_eq!(reopened.list("c/").await.unwrap().len(), WRITES);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_request_does_not_fail_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(EmbeddedBackend::open(dir.path().join("tresor.redb")).unwrap());
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let backend = Arc::clone(&backend);
            tokio::spawn(async move {
                let key = if i % 4 == 0 {
                    format!("bad\0{i}")
                } else {
                    format!("ok/{i}")
                };
                (i, backend.put(&key, vec![1]).await)
            })
        })
        .collect();
    for task in tasks {
        let (i, result) = task.await.unwrap();
        if i % 4 == 0 {
            assert!(
                matches!(result, Err(StorageError::InvalidKey(_))),
                "{i}: {result:?}"
            );
        } else {
            result.unwrap();
            assert_eq!(
                backend.get(&format!("ok/{i}")).await.unwrap(),
                Some(vec![1])
            );
        }
    }
}

#[test]
fn opening_under_a_missing_directory_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("tresor.redb");
    let err = EmbeddedBackend::open(&path).unwrap_err();
    let StorageError::Open {
        path: reported,
        reason,
    } = &err
    else {
        panic!("expected StorageError::Open, got {err:?}");
    };
    assert_eq!(reported, &path.display().to_string());
    assert!(
        reason.contains("no-such-dir"),
        "reason names the missing directory: {reason}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert!(
        !path.parent().unwrap().exists(),
        "open must not create directories"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_held_open_is_reported_as_in_use_until_it_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tresor.redb");
    let first = EmbeddedBackend::open(&path).unwrap();
    let err = EmbeddedBackend::open(&path).unwrap_err();
    assert!(
        matches!(&err, StorageError::InUse { path: p } if p == &path.display().to_string()),
        "{err:?}"
    );
    assert!(err.to_string().contains("in use"), "{err}");
    first.close().await.unwrap();
    EmbeddedBackend::open(&path).unwrap().close().await.unwrap();
}

fn closed<T>(result: &Result<T, StorageError>) -> bool {
    matches!(result, Err(StorageError::Closed))
}

#[tokio::test(flavor = "multi_thread")]
async fn operations_after_close_fail_with_closed() {
    let dir = tempfile::tempdir().unwrap();
    let backend = EmbeddedBackend::open(dir.path().join("tresor.redb")).unwrap();
    backend.put("k", b"v".to_vec()).await.unwrap();
    backend.close().await.unwrap();
    backend.close().await.unwrap();

    assert!(closed(&backend.get("k").await));
    assert!(closed(&backend.list("").await));
    assert!(closed(&backend.put("k", b"v".to_vec()).await));
    assert!(closed(&backend.delete("k").await));
    let txn = backend
        .transaction(vec![TxnOp::Delete { key: "k".into() }])
        .await;
    assert!(closed(&txn));
}

#[tokio::test(flavor = "multi_thread")]
async fn close_finishes_writes_already_queued() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tresor.redb");
    let backend = Arc::new(EmbeddedBackend::open(&path).unwrap());
    let writers: Vec<_> = (0..50)
        .map(|i| {
            let backend = Arc::clone(&backend);
            tokio::spawn(async move { (i, backend.put(&format!("q/{i}"), vec![7]).await) })
        })
        .collect();
    backend.close().await.unwrap();
    let mut acked = Vec::new();
    for writer in writers {
        let (i, result) = writer.await.unwrap();
        match result {
            Ok(()) => acked.push(i),
            Err(StorageError::Closed) => {}
            Err(e) => panic!("q/{i}: unexpected {e:?}"),
        }
    }
    drop(backend);
    let reopened = EmbeddedBackend::open(&path).unwrap();
    for i in acked {
        assert_eq!(
            reopened.get(&format!("q/{i}")).await.unwrap(),
            Some(vec![7]),
            "q/{i}"
        );
    }
}

/// Writes 8 MiB in 4 KiB values and reads them all back; returns the page cache's size then.
async fn cache_after_reading_8_mib(cache_size: usize) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tresor.redb");
    let options = tresor_storage::EmbeddedOptions { cache_size };
    let backend = EmbeddedBackend::open_with(&path, options).unwrap();
    let value = vec![7u8; 4096];
    for chunk in 0..16 {
        let ops = (0..128)
            .map(|i| TxnOp::Put {
                key: format!("k/{chunk}-{i}"),
                value: value.clone(),
            })
            .collect();
        backend.transaction(ops).await.unwrap();
    }
    backend.close().await.unwrap();
    // Reopened: the cache starts empty and only reads fill it.
    let backend = EmbeddedBackend::open_with(&path, options).unwrap();
    for chunk in 0..16 {
        for i in 0..128 {
            let got = backend.get(&format!("k/{chunk}-{i}")).await.unwrap();
            assert_eq!(got.as_deref(), Some(value.as_slice()));
        }
    }
    let used = backend.cache_used_bytes();
    backend.close().await.unwrap();
    used
}

#[tokio::test(flavor = "multi_thread")]
async fn the_configured_cache_size_bounds_redbs_page_cache() {
    const MIB: usize = 1 << 20;
    let small = cache_after_reading_8_mib(MIB).await;
    let budget = tresor_storage::embedded::redb_cache_budget(MIB);
    assert!(budget < MIB, "redb gets less than the memory: {budget}");
    assert!(
        small > 0 && small <= budget,
        "a 1 MiB cache (redb budget {budget}) holds {small} bytes"
    );
    let large = cache_after_reading_8_mib(64 * MIB).await;
    assert!(
        large > 4 * MIB,
        "a 64 MiB cache holds only {large} bytes after reading 8 MiB"
    );
    assert_eq!(
        tresor_storage::EmbeddedOptions::default().cache_size,
        256 * MIB
    );
}
