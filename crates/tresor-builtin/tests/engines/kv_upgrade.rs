//! The in-place KV v1 → v2 upgrade (`options.version` 1 → 2) and its refusals.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::support;

use std::sync::atomic::Ordering;

use serde_json::json;
use support::Harness;
use tresor_builtin::secrets::kv::KvFactory;
use tresor_sdk::engine::EngineFactory;

#[tokio::test]
async fn existing_data_becomes_version_one() {
    let mut kv = Harness::kv(&[]);
    let keys: Vec<String> = (0..150)
        .map(|i| format!("f{}/k{i}", i % 3))
        .chain(["top".to_owned(), "ünï code/deep/er/k".to_owned()])
        .collect();
    for key in &keys {
        kv.write(key, json!({"k": key, "ttl": "1h"}))
            .await
            .assert_status(204);
    }
    let before = kv.storage.transactions.load(Ordering::SeqCst);
    kv.tune(&[("version", "2")]).await.unwrap();
    // Bounded batches: three folders of 50 (one batch each) plus the two other leaves.
    let batches = kv.storage.transactions.load(Ordering::SeqCst) - before;
    assert!((3..=6).contains(&batches), "{batches} transactions");

    for key in &keys {
        let reply = kv.read(&format!("data/{key}")).await;
        reply.assert_status(200);
        assert_eq!(reply.data()["data"], json!({"k": key, "ttl": "1h"}));
        assert_eq!(reply.data()["metadata"]["version"], 1);
    }
    let meta = kv.read("metadata/top").await;
    assert_eq!(meta.data()["current_version"], 1);
    assert_eq!(meta.data()["oldest_version"], 1);
    assert_eq!(meta.data()["current_metadata_version"], 0);
    assert!(kv.storage.keys().iter().all(|k| !k.starts_with("v1/")));
    assert_eq!(
        kv.list("metadata").await.data()["keys"],
        json!(["f0/", "f1/", "f2/", "top", "ünï code/"])
    );
    // The upgraded keys behave as any v2 key.
    let w = kv
        .write("data/top", json!({"data": {"n": 2}, "options": {"cas": 1}}))
        .await;
    assert_eq!(w.data()["version"], 2);
}

#[tokio::test]
async fn version_changes_that_are_refused_or_no_ops() {
    let mut v2 = Harness::kv_v2();
    let err = v2.tune(&[("version", "1")]).await.unwrap_err();
    assert_eq!(err.to_string(), "cannot downgrade mount from version 2");
    let err = v2.tune(&[("version", "3")]).await.unwrap_err();
    assert_eq!(err.to_string(), "invalid version provided: 3");
    v2.tune(&[("version", "2")]).await.unwrap();

    let mut v1 = Harness::kv(&[]);
    v1.write("k", json!({"a": 1})).await;
    let snapshot = v1.storage.snapshot();
    v1.tune(&[("version", "1")]).await.unwrap();
    v1.tune(&[("other", "x")]).await.unwrap();
    assert_eq!(v1.storage.snapshot(), snapshot);
}

#[tokio::test]
async fn an_interrupted_upgrade_resumes_on_initialize() {
    let kv = Harness::kv(&[]);
    for key in ["a", "b/c"] {
        kv.write(key, json!({"k": key})).await;
    }
    // The tune's upgrade fails at its first batch: nothing moves.
    kv.storage.fail_writes.store(true, Ordering::SeqCst);
    let old = kv.mount.options.clone();
    let new = [("version".to_owned(), "2".to_owned())].into();
    assert!(
        kv.engine
            .options_changed(&old, &new, &kv.storage)
            .await
            .is_err()
    );
    kv.storage.fail_writes.store(false, Ordering::SeqCst);
    assert_eq!(kv.storage.keys(), vec!["v1/a", "v1/b/c"]);

    // The mount comes back as v2 (say after a restart): initialize finishes the move.
    let v2 = KvFactory::default()
        .build(&tresor_sdk::engine::MountInfo {
            engine_type: "kv".into(),
            options: new,
            ..Default::default()
        })
        .unwrap();
    v2.initialize(&kv.storage).await.unwrap();
    assert!(kv.storage.keys().iter().all(|k| k.starts_with("v2/")));
    assert_eq!(kv.storage.keys().len(), 4);
    // Initialising again is a no-op.
    let snapshot = kv.storage.snapshot();
    v2.initialize(&kv.storage).await.unwrap();
    assert_eq!(kv.storage.snapshot(), snapshot);
}

#[tokio::test]
async fn empty_mount_upgrades_trivially() {
    let mut kv = Harness::kv(&[]);
    kv.tune(&[("version", "2")]).await.unwrap();
    assert!(kv.storage.keys().is_empty());
    kv.put("x", json!({"a": 1})).await.assert_status(200);
}
