//! KV v2 `data/`: writes, reads of versions, check-and-set, PATCH, soft delete of the latest
//! version, `delete_version_after`, and `subkeys/`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::Harness;
use tresor_sdk::engine::Operation;

#[tokio::test]
async fn write_then_read_latest_and_specific_versions() {
    let kv = Harness::kv_v2();
    let w1 = kv.put("foo", json!({"a": "1"})).await;
    w1.assert_status(200);
    assert_eq!(w1.data()["version"], 1);
    assert_eq!(w1.data()["destroyed"], false);
    assert_eq!(w1.data()["deletion_time"], "");
    assert_eq!(w1.data()["custom_metadata"], json!(null));
    assert_eq!(w1.data()["created_time"], "2024-01-02T03:04:05.123456789Z");

    kv.clock.advance(Duration::from_secs(1));
    kv.put("foo", json!({"a": "2", "nested": {"x": [1, 2]}}))
        .await
        .assert_status(200);

    let latest = kv.read("data/foo").await;
    latest.assert_status(200);
    assert_eq!(
        latest.data()["data"],
        json!({"a": "2", "nested": {"x": [1, 2]}})
    );
    assert_eq!(latest.data()["metadata"]["version"], 2);
    assert_eq!(
        latest.data()["metadata"]["created_time"],
        "2024-01-02T03:04:06.123456789Z"
    );

    let v1 = kv
        .call_q(Operation::Read, "data/foo", &[("version", "1")])
        .await;
    assert_eq!(v1.data()["data"], json!({"a": "1"}));
    assert_eq!(v1.data()["metadata"]["version"], 1);

    // version=0 means latest; an unknown version is a plain 404.
    let v0 = kv
        .call_q(Operation::Read, "data/foo", &[("version", "0")])
        .await;
    assert_eq!(v0.data()["metadata"]["version"], 2);
    kv.call_q(Operation::Read, "data/foo", &[("version", "9")])
        .await
        .assert_status(404);
    kv.read("data/missing").await.assert_status(404);
    kv.call_q(Operation::Read, "data/foo", &[("version", "abc")])
        .await
        .assert_status(400);
}

#[tokio::test]
async fn write_is_create_when_absent_update_when_present() {
    let kv = Harness::kv_v2();
    let req = kv.request(Operation::Update, "data/foo", json!({"data": {}}), &[]);
    assert_eq!(
        kv.engine.exists(&req, &kv.storage).await.unwrap(),
        Some(false)
    );
    kv.put("foo", json!({})).await.assert_status(200);
    assert_eq!(
        kv.engine.exists(&req, &kv.storage).await.unwrap(),
        Some(true)
    );
    let meta_req = kv.request(Operation::Update, "metadata/foo", json!({}), &[]);
    assert_eq!(
        kv.engine.exists(&meta_req, &kv.storage).await.unwrap(),
        Some(true)
    );
    let config_req = kv.request(Operation::Update, "config", json!({}), &[]);
    assert_eq!(
        kv.engine.exists(&config_req, &kv.storage).await.unwrap(),
        None
    );
    // An empty data map is a valid version.
    assert_eq!(kv.read("data/foo").await.data()["data"], json!({}));
}

#[tokio::test]
async fn check_and_set() {
    let kv = Harness::kv_v2();
    // cas 0: only if the key has no version.
    kv.write("data/k", json!({"data": {"v": 1}, "options": {"cas": 0}}))
        .await
        .assert_status(200);
    kv.write("data/k", json!({"data": {"v": 2}, "options": {"cas": 0}}))
        .await
        .assert_error(
            400,
            "check-and-set parameter did not match the current version",
        );
    kv.write("data/k", json!({"data": {"v": 2}, "options": {"cas": 5}}))
        .await
        .assert_error(
            400,
            "check-and-set parameter did not match the current version",
        );
    // Weakly typed, as Go decodes it.
    kv.write("data/k", json!({"data": {"v": 2}, "options": {"cas": "1"}}))
        .await
        .assert_status(200);
    kv.write("data/k", json!({"data": {"v": 3}, "options": {"cas": "x"}}))
        .await
        .assert_error(400, "error parsing check-and-set parameter");
    kv.write("data/k", json!({"data": {"v": 3}, "options": {"cas": 2}}))
        .await
        .assert_status(200);
    // options: null and cas: null are absent.
    kv.write("data/k", json!({"data": {"v": 4}, "options": null}))
        .await
        .assert_status(200);
    kv.write(
        "data/k",
        json!({"data": {"v": 5}, "options": {"cas": null}}),
    )
    .await
    .assert_status(200);
    assert_eq!(kv.read("data/k").await.data()["metadata"]["version"], 5);
}

#[tokio::test]
async fn cas_required_on_the_mount_and_on_a_key() {
    let kv = Harness::kv_v2();
    kv.write("config", json!({"cas_required": true}))
        .await
        .assert_status(204);
    kv.put("a", json!({"x": 1}))
        .await
        .assert_error(400, "check-and-set parameter required for this call");
    kv.write("data/a", json!({"data": {"x": 1}, "options": {"cas": 0}}))
        .await
        .assert_status(200);
    kv.write("config", json!({"cas_required": false}))
        .await
        .assert_status(204);

    kv.write("metadata/b", json!({"cas_required": true}))
        .await
        .assert_status(204);
    kv.put("b", json!({"x": 1}))
        .await
        .assert_error(400, "check-and-set parameter required for this call");
    kv.write("data/b", json!({"data": {"x": 1}, "options": {"cas": 0}}))
        .await
        .assert_status(200);
    kv.patch("data/b", json!({"data": {"y": 1}}))
        .await
        .assert_error(400, "check-and-set parameter required for this call");
    kv.patch("data/b", json!({"data": {"y": 1}, "options": {"cas": 1}}))
        .await
        .assert_status(200);
    kv.put("c", json!({"x": 1})).await.assert_status(200);
}

#[tokio::test]
async fn write_refuses_missing_or_non_object_data() {
    let kv = Harness::kv_v2();
    kv.write("data/k", json!({}))
        .await
        .assert_error(400, "no data provided");
    kv.write("data/k", json!({"data": null}))
        .await
        .assert_error(400, "no data provided");
    for bad in [json!("s"), json!([1]), json!(5), json!(true)] {
        let reply = kv.write("data/k", json!({ "data": bad })).await;
        reply.assert_status(400);
        assert!(reply.errors()[0].contains("field \"data\""), "{reply:?}");
    }
    kv.write("data/k", json!({"data": {}, "options": "x"}))
        .await
        .assert_status(400);
    kv.write("data/", json!({"data": {}}))
        .await
        .assert_error(400, "cannot write to a path ending in '/'");
    kv.write("data/k/", json!({"data": {}}))
        .await
        .assert_error(400, "cannot write to a path ending in '/'");
    assert!(kv.storage.keys().is_empty());
}

#[tokio::test]
async fn patch_merges_into_a_new_version() {
    let kv = Harness::kv_v2();
    kv.put(
        "p",
        json!({"a": "1", "n": {"x": "1", "y": "2"}, "del": "z"}),
    )
    .await;
    let reply = kv
        .patch(
            "data/p",
            json!({"data": {"a": "2", "n": {"y": null, "z": "3"}, "del": null, "new": [1, 2]}}),
        )
        .await;
    reply.assert_status(200);
    assert_eq!(reply.data()["version"], 2);
    assert_eq!(
        kv.read("data/p").await.data()["data"],
        json!({"a": "2", "n": {"x": "1", "z": "3"}, "new": [1, 2]})
    );
    // The old version is intact.
    let v1 = kv
        .call_q(Operation::Read, "data/p", &[("version", "1")])
        .await;
    assert_eq!(v1.data()["data"]["del"], "z");
}

#[tokio::test]
async fn patch_errors() {
    let kv = Harness::kv_v2();
    kv.patch("data/none", json!({"data": {"a": 1}}))
        .await
        .assert_status(404);
    kv.put("p", json!({"a": 1})).await;
    kv.patch("data/p", json!({}))
        .await
        .assert_error(400, "no data provided");
    kv.patch("data/p", json!({"data": null}))
        .await
        .assert_error(400, "no data provided");
    kv.patch("data/p", json!({"data": "x"}))
        .await
        .assert_status(400);
    kv.patch("data/p", json!({"data": {"a": 2}, "options": {"cas": 7}}))
        .await
        .assert_error(
            400,
            "check-and-set parameter did not match the current version",
        );
    let mut req = kv.request(Operation::Patch, "data/p", json!({"data": {"a": 2}}), &[]);
    req.content_type = Some("application/json".into());
    kv.send(req).await.assert_error(
        400,
        "PATCH requires Content-Type of application/merge-patch+json, provided application/json",
    );
    let mut req = kv.request(Operation::Patch, "data/p", json!({"data": {"a": 2}}), &[]);
    req.content_type = Some("application/merge-patch+json; charset=utf-8".into());
    kv.send(req).await.assert_status(200);

    // Patching a deleted latest version: 404 with the flat version metadata.
    kv.delete("data/p").await.assert_status(204);
    let reply = kv.patch("data/p", json!({"data": {"a": 3}})).await;
    reply.assert_status(404);
    assert_eq!(reply.data()["version"], 2);
    assert_ne!(reply.data()["deletion_time"], "");
    assert!(reply.data().get("data").is_none());
}

#[tokio::test]
async fn delete_latest_and_read_a_deleted_version() {
    let kv = Harness::kv_v2();
    kv.put("d", json!({"a": 1})).await;
    kv.put("d", json!({"a": 2})).await;
    kv.clock.advance(Duration::from_millis(5));
    kv.delete("data/d").await.assert_status(204);
    kv.clock.advance(Duration::from_millis(5));

    let reply = kv.read("data/d").await;
    reply.assert_status(404);
    assert_eq!(reply.data()["data"], json!(null));
    assert_eq!(reply.data()["metadata"]["version"], 2);
    assert_eq!(
        reply.data()["metadata"]["deletion_time"],
        "2024-01-02T03:04:05.128456789Z"
    );
    assert_eq!(reply.data()["metadata"]["destroyed"], false);
    // Version 1 is still readable.
    let v1 = kv
        .call_q(Operation::Read, "data/d", &[("version", "1")])
        .await;
    v1.assert_status(200);
    // Deleting again changes nothing, nor does deleting what does not exist.
    let before = kv.storage.snapshot();
    kv.delete("data/d").await.assert_status(204);
    kv.delete("data/none").await.assert_status(204);
    assert_eq!(kv.storage.snapshot(), before);
}

#[tokio::test]
async fn delete_version_after_expires_versions() {
    let kv = Harness::kv_v2();
    kv.write("metadata/t", json!({"delete_version_after": "1h"}))
        .await;
    let w = kv.put("t", json!({"a": 1})).await;
    assert_eq!(w.data()["deletion_time"], "2024-01-02T04:04:05.123456789Z");
    kv.read("data/t").await.assert_status(200);
    kv.clock.advance(Duration::from_secs(3601));
    let gone = kv.read("data/t").await;
    gone.assert_status(404);
    assert_eq!(
        gone.data()["metadata"]["deletion_time"],
        "2024-01-02T04:04:05.123456789Z"
    );

    // The smaller of the mount's and the key's setting applies.
    kv.write("config", json!({"delete_version_after": "10m"}))
        .await;
    let w = kv.put("t", json!({"a": 2})).await;
    let created = w.data()["created_time"].as_str().unwrap().to_owned();
    assert_eq!(created, "2024-01-02T04:04:06.123456789Z");
    assert_eq!(w.data()["deletion_time"], "2024-01-02T04:14:06.123456789Z");

    // Negative on the mount disables it everywhere.
    kv.write("config", json!({"delete_version_after": -5}))
        .await;
    assert_eq!(
        kv.read("config").await.data()["delete_version_after"],
        "-1s"
    );
    assert_eq!(
        kv.put("t", json!({"a": 3})).await.data()["deletion_time"],
        ""
    );
}

#[tokio::test]
async fn subkeys_strip_values_to_a_depth() {
    let kv = Harness::kv_v2();
    kv.put(
        "sk",
        json!({"a": 1, "b": {"c": {"d": 1, "e": {}}, "f": [1, {"g": 1}]}, "h": {}}),
    )
    .await;
    let all = kv.read("subkeys/sk").await;
    all.assert_status(200);
    assert_eq!(
        all.data()["subkeys"],
        json!({"a": null, "b": {"c": {"d": null, "e": null}, "f": null}, "h": null})
    );
    assert_eq!(all.data()["metadata"]["version"], 1);
    let one = kv
        .call_q(Operation::Read, "subkeys/sk", &[("depth", "1")])
        .await;
    assert_eq!(
        one.data()["subkeys"],
        json!({"a": null, "b": null, "h": null})
    );
    let two = kv
        .call_q(Operation::Read, "subkeys/sk", &[("depth", "2")])
        .await;
    assert_eq!(
        two.data()["subkeys"],
        json!({"a": null, "b": {"c": null, "f": null}, "h": null})
    );
    kv.call_q(Operation::Read, "subkeys/sk", &[("version", "5")])
        .await
        .assert_status(404);
    kv.read("subkeys/none").await.assert_status(404);
    kv.delete("data/sk").await;
    let deleted = kv.read("subkeys/sk").await;
    deleted.assert_status(404);
    assert_eq!(deleted.data()["subkeys"], json!(null));
    assert_ne!(deleted.data()["metadata"]["deletion_time"], "");
}

#[tokio::test]
async fn keys_with_unicode_spaces_and_deep_nesting() {
    let kv = Harness::kv_v2();
    let deep = (0..40)
        .map(|i| format!("level{i}"))
        .collect::<Vec<_>>()
        .join("/");
    for key in [
        "sp ace",
        "ünïcödé/ключ",
        "emoji/🔑",
        deep.as_str(),
        "a..b",
        "..x",
    ] {
        kv.put(key, json!({"k": key})).await.assert_status(200);
        let reply = kv.read(&format!("data/{key}")).await;
        reply.assert_status(200);
        assert_eq!(reply.data()["data"]["k"], key);
    }
    assert_eq!(
        kv.list("metadata/ünïcödé").await.data()["keys"],
        json!(["ключ"])
    );
    let parent = deep.rsplit_once('/').unwrap().0;
    assert_eq!(
        kv.list(&format!("metadata/{parent}")).await.data()["keys"],
        json!(["level39"])
    );
}

#[tokio::test]
async fn a_key_and_a_folder_of_the_same_name_coexist() {
    let kv = Harness::kv_v2();
    kv.put("a", json!({"v": "a"})).await;
    kv.put("a/1", json!({"v": "a/1"})).await;
    kv.put("a/1/1", json!({"v": "a/1/1"})).await;
    for _ in 0..2 {
        kv.put("a", json!({"v": "a"})).await;
    }
    assert_eq!(kv.read("data/a").await.data()["data"]["v"], "a");
    assert_eq!(kv.read("data/a/1").await.data()["data"]["v"], "a/1");
    assert_eq!(kv.read("data/a/1/1").await.data()["data"]["v"], "a/1/1");
    kv.write("metadata/a", json!({})).await.assert_status(204);
    kv.delete("metadata/a").await.assert_status(204);
    assert_eq!(kv.read("data/a/1").await.data()["data"]["v"], "a/1");
}

#[tokio::test]
async fn paths_that_are_no_endpoint() {
    let kv = Harness::kv_v2();
    for (op, path, command) in [
        (Operation::Read, "foo", "get"),
        (Operation::Update, "foo", "put"),
        (Operation::Delete, "foo", "delete"),
        (Operation::List, "", "list"),
        (Operation::Scan, "", "scan"),
        (Operation::Read, "config/", "get"),
    ] {
        let reply = kv.call(op, path, json!(null)).await;
        reply.assert_status(404);
        assert_eq!(reply.data(), &json!(null));
        let warning = reply.body["warnings"][0].as_str().unwrap();
        assert!(warning.ends_with(&format!("use 'bao kv {command}' for this operation.")));
    }
    let root = kv.read("data").await;
    root.assert_status(404);
    assert_eq!(
        root.body["warnings"],
        json!(["Non-listing operations on the root of a K/V v2 mount are not supported."])
    );
    kv.read("data/").await.assert_status(404);
    for (op, path) in [
        (Operation::Update, "delete/"),
        (Operation::Update, "config/"),
        (Operation::Update, "metadata/x/"),
        (Operation::Patch, "data/x/"),
    ] {
        kv.call(op, path, json!({"versions": [1], "data": {}}))
            .await
            .assert_error(400, "cannot write to a path ending in '/'");
    }
    kv.delete("data/x/").await.assert_status(204);
    kv.list("data/").await.assert_status(405);
    kv.delete("config").await.assert_status(405);
    kv.read("delete/x").await.assert_status(405);
    kv.write("subkeys/x", json!({})).await.assert_status(405);
    kv.read("detailed-metadata/x").await.assert_status(405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_cas_writers_cannot_both_win() {
    let kv = Arc::new(Harness::kv_v2());
    for round in 0..20u64 {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let kv = kv.clone();
                tokio::spawn(async move {
                    kv.write(
                        "data/race",
                        json!({"data": {"writer": i}, "options": {"cas": round}}),
                    )
                    .await
                    .status
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.unwrap());
        }
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "round {round}: {statuses:?}"
        );
        assert_eq!(statuses.iter().filter(|s| **s == 400).count(), 7);
    }
    assert_eq!(kv.read("metadata/race").await.data()["current_version"], 20);
}
