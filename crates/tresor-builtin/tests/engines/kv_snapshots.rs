//! Exact JSON of key KV v2 responses, on the real clock, with timestamps normalised. These
//! shapes were taken from OpenBao 2.7.2 (`bao server -dev`) and must not drift.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::support;

use serde_json::{Value, json};
use support::{Harness, normalise_times};
use tresor_builtin::secrets::kv::KvFactory;
use tresor_sdk::engine::{EngineFactory, Operation};

/// A KV v2 harness on the system clock, as a server runs it.
fn real_clock_kv() -> Harness {
    let mut kv = Harness::kv_v2();
    kv.factory = KvFactory::default();
    kv.engine = kv.factory.build(&kv.mount).unwrap();
    kv
}

async fn snapshot(kv: &Harness, op: Operation, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let reply = kv.send(kv.request(op, path, Value::Null, query)).await;
    let mut body = reply.body.clone();
    normalise_times(&mut body);
    (reply.status, body)
}

#[tokio::test]
async fn v2_read_write_and_metadata_shapes() {
    let kv = real_clock_kv();
    let write = kv
        .write(
            "data/app",
            json!({"data": {"user": "admin", "n": {"x": 1}}}),
        )
        .await;
    let mut body = write.body.clone();
    normalise_times(&mut body);
    assert_eq!(
        body["data"],
        json!({"created_time": "<time>", "custom_metadata": null, "deletion_time": "",
               "destroyed": false, "version": 1})
    );

    let (status, read) = snapshot(&kv, Operation::Read, "data/app", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        read["data"],
        json!({
            "data": {"n": {"x": 1}, "user": "admin"},
            "metadata": {"created_time": "<time>", "custom_metadata": null,
                         "deletion_time": "", "destroyed": false, "version": 1}
        })
    );
    assert_eq!(read["lease_duration"], 0);

    kv.write(
        "metadata/app",
        json!({"custom_metadata": {"owner": "ops"}, "max_versions": 5}),
    )
    .await;
    let (status, meta) = snapshot(&kv, Operation::Read, "metadata/app", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        meta["data"],
        json!({
            "cas_required": false,
            "created_time": "<time>",
            "current_metadata_version": 1,
            "current_version": 1,
            "custom_metadata": {"owner": "ops"},
            "delete_version_after": "0s",
            "max_versions": 5,
            "metadata_cas_required": false,
            "oldest_version": 0,
            "updated_time": "<time>",
            "versions": {"1": {"created_time": "<time>", "deletion_time": "", "destroyed": false}}
        })
    );
}

#[tokio::test]
async fn deleted_and_destroyed_version_reads_are_404_with_metadata() {
    let kv = real_clock_kv();
    kv.put("gone", json!({"a": 1})).await;
    kv.put("gone", json!({"a": 2})).await;
    kv.delete("data/gone").await.assert_status(204);
    let (status, deleted) = snapshot(&kv, Operation::Read, "data/gone", &[]).await;
    assert_eq!(status, 404);
    assert_eq!(
        deleted["data"],
        json!({
            "data": null,
            "metadata": {"created_time": "<time>", "custom_metadata": null,
                         "deletion_time": "<time>", "destroyed": false, "version": 2}
        })
    );
    assert!(deleted.get("errors").is_none());

    kv.write("destroy/gone", json!({"versions": [1]})).await;
    let (status, destroyed) =
        snapshot(&kv, Operation::Read, "data/gone", &[("version", "1")]).await;
    assert_eq!(status, 404);
    assert_eq!(
        destroyed["data"],
        json!({
            "data": null,
            "metadata": {"created_time": "<time>", "custom_metadata": null,
                         "deletion_time": "", "destroyed": true, "version": 1}
        })
    );
}

#[tokio::test]
async fn config_subkeys_and_listing_shapes() {
    let kv = real_clock_kv();
    kv.put("dir/s", json!({"a": {"b": 1}, "c": 2})).await;
    let (_, config) = snapshot(&kv, Operation::Read, "config", &[]).await;
    assert_eq!(
        config["data"],
        json!({"cas_required": false, "delete_version_after": "0s", "max_versions": 0,
               "metadata_cas_required": false})
    );
    let (_, subkeys) = snapshot(&kv, Operation::Read, "subkeys/dir/s", &[]).await;
    assert_eq!(
        subkeys["data"],
        json!({
            "metadata": {"created_time": "<time>", "custom_metadata": null,
                         "deletion_time": "", "destroyed": false, "version": 1},
            "subkeys": {"a": {"b": null}, "c": null}
        })
    );
    let (_, list) = snapshot(&kv, Operation::List, "metadata/", &[]).await;
    assert_eq!(list["data"], json!({"keys": ["dir/"]}));
    let (_, detailed) = snapshot(&kv, Operation::List, "detailed-metadata/dir", &[]).await;
    assert_eq!(detailed["data"]["keys"], json!(["s"]));
    assert_eq!(
        detailed["data"]["key_info"]["s"]["versions"],
        json!({"1": {"created_time": "<time>", "deletion_time": "", "destroyed": false}})
    );
}
