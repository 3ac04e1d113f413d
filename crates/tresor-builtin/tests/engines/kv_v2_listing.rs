//! KV v2 LIST and SCAN on `metadata/` and `detailed-metadata/`, with `after`/`limit` paging.

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
use tresor_sdk::engine::Operation;

async fn tree() -> Harness {
    let kv = Harness::kv_v2();
    for key in [
        "t/a", "t/b", "t/b/c", "t/b/d/e", "t/sp ace", "t/ünï", "t/z", "x/y", "top",
    ] {
        kv.put(key, json!({"v": key})).await.assert_status(200);
    }
    kv.write(
        "metadata/t/onlymeta",
        json!({"custom_metadata": {"a": "b"}}),
    )
    .await;
    kv
}

#[tokio::test]
async fn list_immediate_children_with_folders() {
    let kv = tree().await;
    let reply = kv.list("metadata/t").await;
    reply.assert_status(200);
    assert_eq!(
        reply.data()["keys"],
        json!(["a", "b", "b/", "onlymeta", "sp ace", "z", "ünï"])
    );
    // With or without the trailing slash, and at the root.
    assert_eq!(kv.list("metadata/t/").await.data(), reply.data());
    assert_eq!(
        kv.list("metadata").await.data()["keys"],
        json!(["t/", "top", "x/"])
    );
    assert_eq!(
        kv.list("metadata/").await.data()["keys"],
        json!(["t/", "top", "x/"])
    );
    // Nothing there (or a leaf): 404.
    kv.list("metadata/nope").await.assert_status(404);
    kv.list("metadata/top").await.assert_status(404);
    // Soft-deleted and destroyed keys are still listed; metadata-deleted ones are not.
    kv.delete("data/t/a").await;
    kv.write("destroy/t/z", json!({"versions": [1]})).await;
    kv.delete("metadata/t/sp ace").await;
    assert_eq!(
        kv.list("metadata/t").await.data()["keys"],
        json!(["a", "b", "b/", "onlymeta", "z", "ünï"])
    );
}

#[tokio::test]
async fn list_paging_with_after_and_limit() {
    let kv = tree().await;
    let page = |query: &'static [(&'static str, &'static str)]| {
        let kv = &kv;
        async move { kv.call_q(Operation::List, "metadata/t", query).await }
    };
    assert_eq!(
        page(&[("after", "b"), ("limit", "2")]).await.data()["keys"],
        json!(["b/", "onlymeta"])
    );
    assert_eq!(
        page(&[("limit", "2")]).await.data()["keys"],
        json!(["a", "b"])
    );
    assert_eq!(
        page(&[("limit", "-3")]).await.data()["keys"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    assert_eq!(
        page(&[("limit", "0")]).await.data()["keys"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    // `after` need not exist; bytes compare, so "ünï" sorts after "zz".
    assert_eq!(
        page(&[("after", "zz")]).await.data()["keys"],
        json!(["ünï"])
    );
    page(&[("after", "ünï")]).await.assert_status(404);
    let bad = page(&[("limit", "x")]).await;
    bad.assert_status(400);
    assert!(bad.errors()[0].contains("field \"limit\""));
    // Walking pages visits every key once.
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let reply = kv
            .call_q(
                Operation::List,
                "metadata/t",
                &[("after", &after), ("limit", "3")],
            )
            .await;
        if reply.status == 404 {
            break;
        }
        let keys: Vec<String> = serde_json::from_value(reply.data()["keys"].clone()).unwrap();
        after = keys.last().unwrap().clone();
        seen.extend(keys);
    }
    assert_eq!(seen, ["a", "b", "b/", "onlymeta", "sp ace", "z", "ünï"]);
}

#[tokio::test]
async fn detailed_metadata_list() {
    let kv = tree().await;
    let reply = kv
        .call_q(Operation::List, "detailed-metadata/t", &[("limit", "3")])
        .await;
    reply.assert_status(200);
    assert_eq!(reply.data()["keys"], json!(["a", "b", "b/"]));
    let info = reply.data()["key_info"].as_object().unwrap();
    assert_eq!(info.len(), 3);
    assert_eq!(info["a"]["current_version"], 1);
    assert_eq!(info["a"]["versions"]["1"]["destroyed"], false);
    // OpenBao joins "t/" and "b/" to "t/b": the folder reports the same-named key's metadata.
    assert_eq!(info["b/"], info["b"]);
    let nested = kv.list("detailed-metadata/t/b").await;
    assert_eq!(nested.data()["keys"], json!(["c", "d/"]));
    assert_eq!(nested.data()["key_info"]["d/"], json!({}));
    assert_eq!(
        kv.list("detailed-metadata/t").await.data()["key_info"]["onlymeta"]["custom_metadata"],
        json!({"a": "b"})
    );
    kv.list("detailed-metadata/nope").await.assert_status(404);
}

#[tokio::test]
async fn scan_is_recursive_in_openbao_order() {
    let kv = tree().await;
    let reply = kv.scan("metadata/t").await;
    reply.assert_status(200);
    assert_eq!(
        reply.data()["keys"],
        json!(["a", "b", "onlymeta", "sp ace", "z", "ünï", "b/c", "b/d/e"])
    );
    // From the root: leaves first, then the folders last-pushed-first.
    assert_eq!(
        kv.scan("metadata").await.data()["keys"],
        json!([
            "top",
            "x/y",
            "t/a",
            "t/b",
            "t/onlymeta",
            "t/sp ace",
            "t/z",
            "t/ünï",
            "t/b/c",
            "t/b/d/e"
        ])
    );
    // Paging parameters are ignored by SCAN.
    let limited = kv
        .call_q(Operation::Scan, "metadata/t", &[("limit", "1")])
        .await;
    assert_eq!(limited.data(), reply.data());
    // An empty subtree is a 200 with no keys (unlike LIST).
    let empty = kv.scan("metadata/nope").await;
    empty.assert_status(200);
    assert_eq!(empty.data(), &json!({}));
    // data/ does not scan.
    kv.scan("data/t").await.assert_status(405);
}

#[tokio::test]
async fn detailed_metadata_scan() {
    let kv = tree().await;
    let reply = kv.scan("detailed-metadata/t/b").await;
    assert_eq!(reply.data()["keys"], json!(["c", "d/e"]));
    let info = reply.data()["key_info"].as_object().unwrap();
    assert_eq!(info.keys().collect::<Vec<_>>(), vec!["c", "d/e"]);
    assert_eq!(info["d/e"]["current_version"], 1);
}
