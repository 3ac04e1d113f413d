//! KV v2 `metadata/` read/write/patch/delete, `custom_metadata`, metadata check-and-set, and
//! `config`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::support;

use std::time::Duration;

use serde_json::json;
use support::Harness;
use tresor_sdk::engine::Operation;

#[tokio::test]
async fn metadata_before_any_version_eso_push_secret() {
    let kv = Harness::kv_v2();
    kv.write(
        "metadata/pushed",
        json!({"custom_metadata": {"managed-by": "external-secrets"}}),
    )
    .await
    .assert_status(204);
    let meta = kv.read("metadata/pushed").await;
    meta.assert_status(200);
    assert_eq!(meta.data()["current_version"], 0);
    assert_eq!(meta.data()["current_metadata_version"], 1);
    assert_eq!(meta.data()["versions"], json!({}));
    assert_eq!(
        meta.data()["custom_metadata"],
        json!({"managed-by": "external-secrets"})
    );
    kv.read("data/pushed").await.assert_status(404);

    // ESO then writes with cas = current_version (0).
    let w = kv
        .write(
            "data/pushed",
            json!({"data": {"k": "v"}, "options": {"cas": 0}}),
        )
        .await;
    w.assert_status(200);
    assert_eq!(w.data()["version"], 1);
    assert_eq!(
        w.data()["custom_metadata"],
        json!({"managed-by": "external-secrets"})
    );
    let read = kv.read("data/pushed").await;
    assert_eq!(
        read.data()["metadata"]["custom_metadata"]["managed-by"],
        "external-secrets"
    );
}

#[tokio::test]
async fn metadata_write_sets_fields_and_bumps_the_metadata_version() {
    let kv = Harness::kv_v2();
    kv.put("m", json!({"a": 1})).await;
    let before = kv.read("metadata/m").await;
    assert_eq!(before.data()["current_metadata_version"], 0);
    kv.clock.advance(Duration::from_secs(2));
    kv.write(
        "metadata/m",
        json!({"max_versions": "4", "cas_required": "true", "delete_version_after": 90,
               "custom_metadata": {"n": 5, "b": true, "s": "x"}}),
    )
    .await
    .assert_status(204);
    let meta = kv.read("metadata/m").await;
    let d = meta.data();
    assert_eq!(d["max_versions"], 4);
    assert_eq!(d["cas_required"], true);
    assert_eq!(d["delete_version_after"], "1m30s");
    assert_eq!(d["custom_metadata"], json!({"n": "5", "b": "1", "s": "x"}));
    assert_eq!(d["current_metadata_version"], 1);
    assert_eq!(d["created_time"], "2024-01-02T03:04:05.123456789Z");
    assert_eq!(d["updated_time"], "2024-01-02T03:04:07.123456789Z");

    // No settable field: a no-op 204 that writes nothing.
    let snapshot = kv.storage.snapshot();
    kv.write("metadata/m", json!({})).await.assert_status(204);
    kv.write(
        "metadata/m",
        json!({"metadata_cas": 1, "custom_metadata": null}),
    )
    .await
    .assert_status(204);
    assert_eq!(kv.storage.snapshot(), snapshot);

    // An empty custom_metadata clears it (reported as null).
    kv.write("metadata/m", json!({"custom_metadata": {}}))
        .await
        .assert_status(204);
    assert_eq!(
        kv.read("metadata/m").await.data()["custom_metadata"],
        json!(null)
    );
}

#[tokio::test]
async fn metadata_write_validation() {
    let kv = Harness::kv_v2();
    for (body, fragment) in [
        (
            json!({"custom_metadata": {"o": {"a": 1}}}),
            "custom_metadata validation failed",
        ),
        (
            json!({"custom_metadata": {"s": ""}}),
            "length of value for key \"s\" is 0",
        ),
        (json!({"custom_metadata": "x"}), "field \"custom_metadata\""),
        (
            json!({"delete_version_after": -5}),
            "cannot provide negative value '-5'",
        ),
        (
            json!({"delete_version_after": "soon"}),
            "field \"delete_version_after\"",
        ),
        (json!({"max_versions": 1.5}), "field \"max_versions\""),
        (
            json!({"max_versions": -1}),
            "max_versions must be between 0 and 4294967295",
        ),
        (json!({"cas_required": "yes"}), "field \"cas_required\""),
    ] {
        let reply = kv.write("metadata/v", body.clone()).await;
        reply.assert_status(400);
        assert!(reply.errors()[0].contains(fragment), "{body}: {reply:?}");
    }
    let many: serde_json::Map<String, serde_json::Value> =
        (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
    kv.write("metadata/v", json!({"custom_metadata": many}))
        .await
        .assert_error(
            400,
            "1 error occurred:\n\t* custom_metadata validation failed: payload must contain at most 64 keys, provided 65\n\n",
        );
    kv.write("metadata/", json!({"max_versions": 1}))
        .await
        .assert_error(400, "cannot write to a path ending in '/'");
    assert!(kv.storage.keys().is_empty());
}

#[tokio::test]
async fn custom_metadata_round_trip_through_writes_and_listings() {
    let kv = Harness::kv_v2();
    let labels = json!({"owner": "team-a", "ünï": "çödé", "space key": "v a l"});
    kv.write(
        "metadata/app/cfg",
        json!({ "custom_metadata": labels.clone() }),
    )
    .await;
    kv.put("app/cfg", json!({"x": 1})).await;
    assert_eq!(
        kv.read("metadata/app/cfg").await.data()["custom_metadata"],
        labels
    );
    assert_eq!(
        kv.read("data/app/cfg").await.data()["metadata"]["custom_metadata"],
        labels
    );
    let detailed = kv.list("detailed-metadata/app").await;
    assert_eq!(
        detailed.data()["key_info"]["cfg"]["custom_metadata"],
        labels
    );
}

#[tokio::test]
async fn metadata_patch() {
    let kv = Harness::kv_v2();
    kv.patch("metadata/none", json!({"max_versions": 5}))
        .await
        .assert_status(404);
    kv.write(
        "metadata/p",
        json!({"custom_metadata": {"managed-by": "eso", "keep": "1"}, "max_versions": 5,
               "delete_version_after": "2h"}),
    )
    .await;
    kv.patch(
        "metadata/p",
        json!({"custom_metadata": {"managed-by": null, "new": 7}}),
    )
    .await
    .assert_status(204);
    let d = kv.read("metadata/p").await.data().clone();
    assert_eq!(d["custom_metadata"], json!({"keep": "1", "new": "7"}));
    assert_eq!(d["max_versions"], 5);
    assert_eq!(d["current_metadata_version"], 2);

    // null resets a field to its default.
    kv.patch(
        "metadata/p",
        json!({"max_versions": null, "delete_version_after": null}),
    )
    .await
    .assert_status(204);
    let d = kv.read("metadata/p").await.data().clone();
    assert_eq!(d["max_versions"], 0);
    assert_eq!(d["delete_version_after"], "0s");
    assert_eq!(d["custom_metadata"], json!({"keep": "1", "new": "7"}));

    kv.patch("metadata/p", json!({"custom_metadata": null}))
        .await
        .assert_status(204);
    assert_eq!(
        kv.read("metadata/p").await.data()["custom_metadata"],
        json!(null)
    );

    // Nothing patchable: no-op, no write.
    let snapshot = kv.storage.snapshot();
    kv.patch("metadata/p", json!({"unknown": 1}))
        .await
        .assert_status(204);
    kv.patch("metadata/p", json!({"delete_version_after": -1}))
        .await
        .assert_status(400);
    kv.patch("metadata/p", json!({"custom_metadata": {"x": ""}}))
        .await
        .assert_status(400);
    let mut wrong = kv.request(
        Operation::Patch,
        "metadata/p",
        json!({"max_versions": 1}),
        &[],
    );
    wrong.content_type = Some("application/json".into());
    kv.send(wrong).await.assert_status(400);
    assert_eq!(kv.storage.snapshot(), snapshot);
}

#[tokio::test]
async fn metadata_check_and_set() {
    let kv = Harness::kv_v2();
    kv.write("metadata/mc", json!({"metadata_cas_required": true}))
        .await
        .assert_status(204);
    kv.write("metadata/mc", json!({"max_versions": 3}))
        .await
        .assert_error(
            400,
            "metadata check-and-set parameter required for this call",
        );
    kv.write("metadata/mc", json!({"max_versions": 3, "metadata_cas": 5}))
        .await
        .assert_error(
            400,
            "metadata check-and-set parameter does not match the current version",
        );
    kv.write("metadata/mc", json!({"max_versions": 3, "metadata_cas": 1}))
        .await
        .assert_status(204);
    kv.patch("metadata/mc", json!({"max_versions": 4}))
        .await
        .assert_error(
            400,
            "metadata check-and-set parameter required for this call",
        );
    kv.patch("metadata/mc", json!({"max_versions": 4, "metadata_cas": 2}))
        .await
        .assert_status(204);
    assert_eq!(
        kv.read("metadata/mc").await.data()["current_metadata_version"],
        3
    );
    kv.write(
        "metadata/new",
        json!({"max_versions": 3, "metadata_cas": 1}),
    )
    .await
    .assert_error(400, "metadata_cas must be 0 when creating new metadata");
    kv.write(
        "metadata/new",
        json!({"max_versions": 3, "metadata_cas": 0}),
    )
    .await
    .assert_status(204);
}

#[tokio::test]
async fn mount_mandates_produce_warnings() {
    let kv = Harness::kv_v2();
    kv.write(
        "config",
        json!({"cas_required": true, "metadata_cas_required": true}),
    )
    .await;
    let reply = kv
        .write(
            "metadata/w",
            json!({"cas_required": false, "metadata_cas": 0}),
        )
        .await;
    reply.assert_status(200);
    assert_eq!(reply.data(), &json!(null));
    assert_eq!(
        reply.body["warnings"],
        json!([
            "\"cas_required\" set to false, but is mandated by backend config. This value will be ignored."
        ])
    );
}

#[tokio::test]
async fn metadata_delete_removes_every_version() {
    let kv = Harness::kv_v2();
    for i in 0..3 {
        kv.put("gone", json!({ "i": i })).await;
    }
    kv.put("gone/child", json!({"c": 1})).await;
    kv.delete("metadata/gone").await.assert_status(204);
    kv.read("metadata/gone").await.assert_status(404);
    kv.read("data/gone").await.assert_status(404);
    assert_eq!(
        kv.storage.keys(),
        vec!["v2/meta/gone/child", "v2/versions/gone/child/1"]
    );
    assert_eq!(
        kv.read("data/gone/child").await.data()["data"],
        json!({"c": 1})
    );
    // Deleting again is fine; writing again starts at version 1.
    kv.delete("metadata/gone").await.assert_status(204);
    assert_eq!(kv.put("gone", json!({})).await.data()["version"], 1);
}

#[tokio::test]
async fn config_read_and_write() {
    let kv = Harness::kv_v2();
    let defaults = kv.read("config").await;
    assert_eq!(
        defaults.data(),
        &json!({"cas_required": false, "delete_version_after": "0s", "max_versions": 0,
                "metadata_cas_required": false})
    );
    kv.write(
        "config",
        json!({"max_versions": 3, "cas_required": true, "delete_version_after": "3h25m19s"}),
    )
    .await
    .assert_status(204);
    assert_eq!(
        kv.read("config").await.data(),
        &json!({"cas_required": true, "delete_version_after": "3h25m19s", "max_versions": 3,
                "metadata_cas_required": false})
    );
    kv.write("config", json!({"delete_version_after": "0s"}))
        .await;
    assert_eq!(kv.read("config").await.data()["delete_version_after"], "0s");
    kv.write("config", json!({"max_versions": "x"}))
        .await
        .assert_status(400);
    kv.write("config", json!({})).await.assert_status(204);
    assert_eq!(kv.read("config").await.data()["max_versions"], 3);
}
