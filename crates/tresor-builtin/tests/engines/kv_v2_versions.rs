//! KV v2 `delete/`, `undelete/`, `destroy/` and pruning beyond `max_versions`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::support;

use serde_json::{Value, json};
use support::Harness;
use tresor_sdk::engine::Operation;

async fn version_status(kv: &Harness, key: &str, version: u64) -> u16 {
    kv.call_q(
        Operation::Read,
        &format!("data/{key}"),
        &[("version", &version.to_string())],
    )
    .await
    .status
}

async fn metadata(kv: &Harness, key: &str) -> Value {
    let reply = kv.read(&format!("metadata/{key}")).await;
    reply.assert_status(200);
    reply.data().clone()
}

#[tokio::test]
async fn delete_undelete_destroy_versions() {
    let kv = Harness::kv_v2();
    for i in 1..=4 {
        kv.put("v", json!({ "i": i })).await;
    }
    kv.write("delete/v", json!({"versions": [1, "2"]}))
        .await
        .assert_status(204);
    assert_eq!(version_status(&kv, "v", 1).await, 404);
    assert_eq!(version_status(&kv, "v", 2).await, 404);
    assert_eq!(version_status(&kv, "v", 3).await, 200);

    // Comma-separated strings are accepted, as Vault's TypeCommaIntSlice.
    kv.write("undelete/v", json!({"versions": "1,2"}))
        .await
        .assert_status(204);
    assert_eq!(version_status(&kv, "v", 1).await, 200);
    assert_eq!(
        kv.call_q(Operation::Read, "data/v", &[("version", "2")])
            .await
            .data()["data"],
        json!({"i": 2})
    );

    kv.write("destroy/v", json!({"versions": [2]}))
        .await
        .assert_status(204);
    let destroyed = kv
        .call_q(Operation::Read, "data/v", &[("version", "2")])
        .await;
    destroyed.assert_status(404);
    assert_eq!(destroyed.data()["metadata"]["destroyed"], true);
    assert_eq!(destroyed.data()["data"], json!(null));
    // The data is gone from storage; the metadata remembers the version.
    assert!(!kv.storage.keys().iter().any(|k| k == "v2/versions/v/2"));
    assert_eq!(metadata(&kv, "v").await["versions"]["2"]["destroyed"], true);

    // Undelete cannot bring back a destroyed version; delete of it is a no-op.
    kv.write("undelete/v", json!({"versions": [2]}))
        .await
        .assert_status(204);
    assert_eq!(version_status(&kv, "v", 2).await, 404);
    kv.write("delete/v", json!({"versions": [2, 99, -1]}))
        .await
        .assert_status(204);
    assert_eq!(
        metadata(&kv, "v").await["versions"]["2"]["deletion_time"],
        ""
    );

    // A destroyed, previously deleted version keeps its deletion time.
    kv.write("delete/v", json!({"versions": [1]})).await;
    kv.write("destroy/v", json!({"versions": [1]})).await;
    let v1 = &metadata(&kv, "v").await["versions"]["1"];
    assert_eq!(v1["destroyed"], true);
    assert_ne!(v1["deletion_time"], "");
}

#[tokio::test]
async fn version_lists_are_required() {
    let kv = Harness::kv_v2();
    kv.put("v", json!({"a": 1})).await;
    kv.write("delete/v", json!({}))
        .await
        .assert_error(400, "No version number provided");
    kv.write("undelete/v", json!({"versions": []}))
        .await
        .assert_error(400, "No version number provided");
    kv.write("destroy/v", json!({}))
        .await
        .assert_error(400, "no version number provided");
    let bad = kv.write("delete/v", json!({"versions": [1, "x"]})).await;
    bad.assert_status(400);
    assert!(
        bad.errors()[0]
            .starts_with("Field validation failed: error converting input for field \"versions\"")
    );
    // Unknown keys are a silent no-op.
    kv.write("delete/none", json!({"versions": [1]}))
        .await
        .assert_status(204);
    kv.write("destroy/none", json!({"versions": [1]}))
        .await
        .assert_status(204);
    kv.write("undelete/none", json!({"versions": [1]}))
        .await
        .assert_status(204);
    assert!(!kv.storage.keys().iter().any(|k| k.contains("none")));
}

#[tokio::test]
async fn default_max_versions_keeps_ten() {
    let kv = Harness::kv_v2();
    for i in 1..=11 {
        kv.put("ten", json!({ "i": i })).await;
    }
    let meta = metadata(&kv, "ten").await;
    assert_eq!(meta["current_version"], 11);
    assert_eq!(meta["oldest_version"], 2);
    let versions: Vec<u64> = meta["versions"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.parse().unwrap())
        .collect();
    assert_eq!(versions.len(), 10);
    assert!(!versions.contains(&1));
    assert_eq!(version_status(&kv, "ten", 1).await, 404);
    assert!(!kv.storage.keys().iter().any(|k| k == "v2/versions/ten/1"));
    assert_eq!(
        kv.storage
            .keys()
            .iter()
            .filter(|k| k.starts_with("v2/versions/ten/"))
            .count(),
        10
    );
}

#[tokio::test]
async fn key_max_versions_prunes_and_the_larger_limit_wins() {
    let kv = Harness::kv_v2();
    kv.write("metadata/pr", json!({"max_versions": 2}))
        .await
        .assert_status(204);
    for i in 1..=4 {
        kv.put("pr", json!({ "i": i })).await;
    }
    let meta = metadata(&kv, "pr").await;
    assert_eq!(meta["oldest_version"], 3);
    assert_eq!(meta["versions"].as_object().unwrap().len(), 2);
    assert_eq!(version_status(&kv, "pr", 2).await, 404);
    assert_eq!(version_status(&kv, "pr", 3).await, 200);

    // OpenBao takes the larger of the key's and the mount's max_versions.
    kv.write("config", json!({"max_versions": 3})).await;
    kv.write("metadata/mx", json!({"max_versions": 1})).await;
    for i in 1..=5 {
        kv.put("mx", json!({ "i": i })).await;
    }
    let meta = metadata(&kv, "mx").await;
    assert_eq!(meta["versions"].as_object().unwrap().len(), 3);
    assert_eq!(meta["oldest_version"], 3);
    assert_eq!(
        kv.storage
            .keys()
            .iter()
            .filter(|k| k.starts_with("v2/versions/mx/"))
            .count(),
        3
    );
}

#[tokio::test]
async fn lowering_max_versions_prunes_on_the_next_write() {
    let kv = Harness::kv_v2();
    for i in 1..=6 {
        kv.put("low", json!({ "i": i })).await;
    }
    kv.write("metadata/low", json!({"max_versions": 2})).await;
    // Metadata writes never touch versions.
    assert_eq!(
        metadata(&kv, "low").await["versions"]
            .as_object()
            .unwrap()
            .len(),
        6
    );
    kv.put("low", json!({"i": 7})).await;
    let meta = metadata(&kv, "low").await;
    assert_eq!(
        meta["versions"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["6", "7"]
    );
    assert_eq!(
        kv.storage
            .keys()
            .iter()
            .filter(|k| k.starts_with("v2/versions/low/"))
            .count(),
        2
    );
}

#[tokio::test]
async fn undelete_restarts_delete_version_after() {
    let kv = Harness::kv_v2();
    kv.write("metadata/u", json!({"delete_version_after": "30s"}))
        .await;
    kv.put("u", json!({"a": 1})).await;
    kv.clock.advance(std::time::Duration::from_secs(60));
    assert_eq!(version_status(&kv, "u", 1).await, 404);
    kv.write("undelete/u", json!({"versions": [1]})).await;
    assert_eq!(version_status(&kv, "u", 1).await, 200);
    assert_eq!(
        metadata(&kv, "u").await["versions"]["1"]["deletion_time"],
        "2024-01-02T03:05:35.123456789Z"
    );
}
