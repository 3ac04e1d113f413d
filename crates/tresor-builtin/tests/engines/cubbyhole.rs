//! Cubbyhole: per-token isolation and OpenBao's cubbyhole responses.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::support;

use serde_json::json;
use support::Harness;
use tresor_builtin::secrets::cubbyhole;
use tresor_sdk::engine::Operation;

#[tokio::test]
async fn read_write_delete_list() {
    let cb = Harness::cubbyhole();
    cb.write("foo", json!({"a": "b", "ttl": "1h"}))
        .await
        .assert_status(204);
    let reply = cb.read("foo").await;
    reply.assert_status(200);
    assert_eq!(reply.data(), &json!({"a": "b", "ttl": "1h"}));
    // No lease information, unlike KV v1.
    assert_eq!(reply.body["lease_duration"], 0);
    cb.write("d/x", json!({"a": 1})).await.assert_status(204);
    assert_eq!(cb.list("").await.data()["keys"], json!(["d/", "foo"]));
    assert_eq!(cb.list("d").await.data()["keys"], json!(["x"]));
    cb.list("nope").await.assert_status(404);
    cb.delete("foo").await.assert_status(204);
    cb.read("foo").await.assert_status(404);
    cb.delete("nope").await.assert_status(204);
    assert_eq!(cb.storage.keys(), vec!["token-a/d/x"]);
}

#[tokio::test]
async fn tokens_never_see_each_other() {
    let mut cb = Harness::cubbyhole();
    cb.write("shared-name", json!({"owner": "a"})).await;
    cb.token = "token-b".into();
    cb.read("shared-name").await.assert_status(404);
    cb.list("").await.assert_status(404);
    let req = cb.request(Operation::Update, "shared-name", json!({"x": 1}), &[]);
    assert_eq!(
        cb.engine.exists(&req, &cb.storage).await.unwrap(),
        Some(false)
    );
    cb.write("shared-name", json!({"owner": "b"})).await;
    assert_eq!(cb.read("shared-name").await.data()["owner"], "b");
    cb.token = "token-a".into();
    assert_eq!(cb.read("shared-name").await.data()["owner"], "a");
    cb.delete("shared-name").await;
    cb.token = "token-b".into();
    assert_eq!(cb.read("shared-name").await.data()["owner"], "b");
    assert_eq!(cubbyhole::storage_prefix("token-b").unwrap(), "token-b/");
}

#[tokio::test]
async fn errors() {
    let mut cb = Harness::cubbyhole();
    cb.write("k", json!({}))
        .await
        .assert_error(400, "missing data fields");
    cb.read("").await.assert_error(400, "missing path");
    cb.write("", json!({"a": 1}))
        .await
        .assert_error(400, "cannot write to a path ending in '/'");
    cb.write("k/", json!({"a": 1}))
        .await
        .assert_error(400, "cannot write to a path ending in '/'");
    cb.write("a/../b", json!({"a": 1}))
        .await
        .assert_error(400, "relative paths not supported");
    cb.scan("").await.assert_status(405);
    cb.patch("k", json!({"a": 1})).await.assert_status(405);
    // A token key that could escape its prefix is refused; no key at all is a 403.
    cb.token = "a/b".into();
    cb.read("k").await.assert_status(500);
    cb.token = "..".into();
    cb.read("k").await.assert_status(500);
    cb.token = String::new();
    cb.read("k").await.assert_status(403);
    assert!(cb.storage.keys().is_empty());
}
