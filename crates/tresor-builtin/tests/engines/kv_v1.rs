//! KV v1: read/write/delete/list/scan, the `ttl` hint, and mount version selection.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use support::Harness;
use tresor_builtin::secrets::kv::KvFactory;
use tresor_sdk::engine::{EngineFactory, MountInfo, Operation};

#[tokio::test]
async fn write_read_delete_any_object() {
    let kv = Harness::kv(&[]);
    let secret = json!({"a": "b", "n": 1, "nested": {"list": [1, "two", null]}, "t": true});
    kv.write("foo", secret.clone()).await.assert_status(204);
    let reply = kv.read("foo").await;
    reply.assert_status(200);
    assert_eq!(reply.data(), &secret);
    assert_eq!(reply.body["renewable"], false);
    // No ttl field: the mount's default lease TTL, as OpenBao reports it.
    assert_eq!(reply.body["lease_duration"], 2_764_800);
    kv.write("foo", json!({"replaced": true}))
        .await
        .assert_status(204);
    assert_eq!(kv.read("foo").await.data(), &json!({"replaced": true}));
    kv.delete("foo").await.assert_status(204);
    kv.read("foo").await.assert_status(404);
    kv.delete("foo").await.assert_status(204);
    kv.read("").await.assert_status(404);
    kv.read("dir/").await.assert_status(404);
}

#[tokio::test]
async fn ttl_hint_becomes_the_lease_duration() {
    let kv = Harness::kv(&[("version", "1")]);
    for (body, expected) in [
        (json!({"a": 1, "ttl": "1h"}), 3600),
        (json!({"a": 1, "ttl": 30}), 30),
        (json!({"a": 1, "ttl": "xx"}), 2_764_800),
        (json!({"a": 1, "lease": "2m"}), 120),
        (json!({"a": 1, "ttl": "90", "lease": "2m"}), 90),
    ] {
        kv.write("t", body.clone()).await.assert_status(204);
        let reply = kv.read("t").await;
        assert_eq!(reply.body["lease_duration"], expected, "{body}");
        assert_eq!(reply.data(), &body, "the ttl stays part of the secret");
    }
    let req = kv.request(Operation::Read, "t", json!(null), &[]);
    let response = kv.engine.handle(&req, &kv.storage).await.unwrap().unwrap();
    let lease = response.lease.unwrap();
    assert!(!lease.managed && !lease.renewable);
    assert_eq!(lease.ttl, Duration::from_secs(90));
}

#[tokio::test]
async fn write_errors_and_nulls() {
    let kv = Harness::kv(&[]);
    kv.write("k", json!({}))
        .await
        .assert_error(400, "missing data fields");
    // A secret's keys are free-form data: a null value is stored and read back as written.
    kv.write("k", json!({"a": null})).await.assert_status(204);
    assert_eq!(kv.read("k").await.data(), &json!({"a": null}));
    kv.write("k", json!({"a": null, "b": 1}))
        .await
        .assert_status(204);
    assert_eq!(kv.read("k").await.data(), &json!({"a": null, "b": 1}));
    kv.write("", json!({"a": 1}))
        .await
        .assert_error(400, "cannot write to a path ending in '/'");
    kv.write("dir/", json!({"a": 1}))
        .await
        .assert_error(400, "cannot write to a path ending in '/'");
    kv.patch("k", json!({"a": 2})).await.assert_status(405);
}

#[tokio::test]
async fn list_and_scan() {
    let kv = Harness::kv(&[]);
    for key in ["bar", "baz", "dir/x", "dir/sub/y", "foo", "ünï code/k"] {
        kv.write(key, json!({"k": key})).await.assert_status(204);
    }
    assert_eq!(
        kv.list("").await.data()["keys"],
        json!(["bar", "baz", "dir/", "foo", "ünï code/"])
    );
    assert_eq!(kv.list("dir").await.data()["keys"], json!(["sub/", "x"]));
    assert_eq!(kv.list("dir/").await.data()["keys"], json!(["sub/", "x"]));
    kv.list("nope").await.assert_status(404);
    kv.list("foo").await.assert_status(404);
    assert_eq!(
        kv.scan("").await.data()["keys"],
        json!(["bar", "baz", "foo", "ünï code/k", "dir/x", "dir/sub/y"])
    );
    assert_eq!(kv.scan("dir").await.data()["keys"], json!(["x", "sub/y"]));
    let empty = kv.scan("nope").await;
    empty.assert_status(200);
    assert_eq!(empty.data(), &json!({}));
}

#[tokio::test]
async fn create_versus_update() {
    let kv = Harness::kv(&[]);
    let req = kv.request(Operation::Update, "c", json!({"a": 1}), &[]);
    assert_eq!(
        kv.engine.exists(&req, &kv.storage).await.unwrap(),
        Some(false)
    );
    kv.write("c", json!({"a": 1})).await;
    assert_eq!(
        kv.engine.exists(&req, &kv.storage).await.unwrap(),
        Some(true)
    );
}

#[tokio::test]
async fn v1_paths_are_plain_keys() {
    // On a v1 mount "data/x" and "metadata/x" are ordinary secrets.
    let kv = Harness::kv(&[]);
    kv.write("data/x", json!({"a": 1})).await.assert_status(204);
    kv.write("metadata/x", json!({"b": 2}))
        .await
        .assert_status(204);
    assert_eq!(kv.read("data/x").await.data(), &json!({"a": 1}));
    assert_eq!(
        kv.list("").await.data()["keys"],
        json!(["data/", "metadata/"])
    );
}

#[test]
fn factory_types_and_versions() {
    let factory = KvFactory::default();
    assert_eq!(factory.types(), &["kv", "kv-v2"]);
    assert_eq!(
        factory.default_options("kv-v2"),
        BTreeMap::from([("version".to_owned(), "2".to_owned())])
    );
    assert!(factory.default_options("kv").is_empty());
    let build = |engine_type: &str, version: Option<&str>| {
        let mut options = BTreeMap::new();
        if let Some(v) = version {
            options.insert("version".to_owned(), v.to_owned());
        }
        factory.build(&MountInfo {
            engine_type: engine_type.into(),
            options,
            ..MountInfo::default()
        })
    };
    assert!(format!("{:?}", build("kv", None).unwrap()).starts_with("KvV1"));
    assert!(format!("{:?}", build("kv", Some("")).unwrap()).starts_with("KvV1"));
    assert!(format!("{:?}", build("kv", Some("2")).unwrap()).starts_with("KvV2"));
    assert!(format!("{:?}", build("kv-v2", None).unwrap()).starts_with("KvV2"));
    let err = build("kv", Some("3")).unwrap_err();
    assert_eq!(err.to_string(), "invalid version provided: 3");
    let all = tresor_builtin::factories();
    let types: Vec<&str> = all.iter().flat_map(|f| f.types().iter().copied()).collect();
    assert_eq!(types, ["kv", "kv-v2", "cubbyhole", "transit", "database"]);
}
