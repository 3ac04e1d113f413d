//! One behavioural contract for every [`Backend`], so a new backend is "done" when it passes.
//!
//! # Layout
//! [`test_suite`] runs every check under a fresh unique prefix and deletes what it wrote, so it
//! can run against a backend that other tests (or a live server) share.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test-suite code"
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Backend, StorageError, TxnOp};

/// Asserts the whole [`Backend`] contract against `backend`. Panics on the first violation.
pub async fn test_suite(backend: &dyn Backend) {
    let root = unique_root();
    let p = format!("{root}/");

    missing_keys_read_as_none(backend, &p).await;
    values_round_trip(backend, &p).await;
    overwrite_replaces(backend, &p).await;
    delete_removes_and_tolerates_missing(backend, &p).await;
    list_returns_immediate_children(backend, &root).await;
    transaction_applies_ops_in_order(backend, &p).await;
    invalid_keys_are_rejected_and_write_nothing(backend, &p).await;
    unusual_characters_are_ordinary_keys(backend, &p).await;

    cleanup(backend, &p).await;
    assert!(
        backend.list(&p).await.unwrap().is_empty(),
        "cleanup left keys under {p}"
    );
}

/// A prefix no other run uses, even across processes sharing one store.
fn unique_root() -> String {
    static RUN: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let run = RUN.fetch_add(1, Ordering::Relaxed);
    format!("conformance-{}-{nanos}-{run}", std::process::id())
}

async fn missing_keys_read_as_none(b: &dyn Backend, p: &str) {
    assert_eq!(b.get(&format!("{p}missing")).await.unwrap(), None);
    assert_eq!(b.get(&format!("{p}missing/deeper")).await.unwrap(), None);
}

async fn values_round_trip(b: &dyn Backend, p: &str) {
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let binary: Vec<u8> = (0..=255).collect();
    let cases: [(&str, Vec<u8>); 4] = [
        ("rt/plain", b"hello".to_vec()),
        ("rt/empty", Vec::new()),
        ("rt/big", big),
        ("rt/binary", binary),
    ];
    for (name, value) in cases {
        let key = format!("{p}{name}");
        b.put(&key, value.clone()).await.unwrap();
        let got = b.get(&key).await.unwrap();
        assert_eq!(
            got.as_deref(),
            Some(value.as_slice()),
            "round trip of {key}"
        );
    }
}

async fn overwrite_replaces(b: &dyn Backend, p: &str) {
    let key = format!("{p}ow/key");
    b.put(&key, b"first".to_vec()).await.unwrap();
    b.put(&key, b"second, longer".to_vec()).await.unwrap();
    assert_eq!(b.get(&key).await.unwrap(), Some(b"second, longer".to_vec()));
    b.put(&key, b"3".to_vec()).await.unwrap();
    assert_eq!(b.get(&key).await.unwrap(), Some(b"3".to_vec()));
}

async fn delete_removes_and_tolerates_missing(b: &dyn Backend, p: &str) {
    let key = format!("{p}del/key");
    let sibling = format!("{p}del/sibling");
    b.put(&key, b"v".to_vec()).await.unwrap();
    b.put(&sibling, b"s".to_vec()).await.unwrap();
    b.delete(&key).await.unwrap();
    assert_eq!(b.get(&key).await.unwrap(), None);
    assert_eq!(b.get(&sibling).await.unwrap(), Some(b"s".to_vec()));
    b.delete(&key).await.unwrap();
    b.delete(&format!("{p}del/never-existed")).await.unwrap();
}

async fn list_returns_immediate_children(b: &dyn Backend, root: &str) {
    let p = format!("{root}/ls/");
    // Inserted out of order on purpose: the result must still be sorted.
    for name in [
        "zeta", "foo", "foo/a", "foo/b/c", "bar/x", "bar/y/z", "alpha", "food",
    ] {
        b.put(&format!("{p}{name}"), b"v".to_vec()).await.unwrap();
    }
    assert_eq!(
        b.list(&p).await.unwrap(),
        ["alpha", "bar/", "foo", "foo/", "food", "zeta"],
        "immediate children, folders once with '/', sorted"
    );
    assert_eq!(b.list(&format!("{p}foo/")).await.unwrap(), ["a", "b/"]);
    assert_eq!(b.list(&format!("{p}bar/y/")).await.unwrap(), ["z"]);
    // A prefix that ends mid-segment matches by string prefix, like Vault.
    assert_eq!(
        b.list(&format!("{p}fo")).await.unwrap(),
        ["o", "o/", "od"],
        "partial-segment prefix"
    );
    assert!(b.list(&format!("{p}nothing/")).await.unwrap().is_empty());
    assert!(b.list(&format!("{p}zz")).await.unwrap().is_empty());
    // Without the trailing '/', the folder itself is the only child.
    assert_eq!(b.list(&format!("{root}/ls")).await.unwrap(), ["/"]);

    let top = b.list("").await.unwrap();
    assert!(
        top.contains(&format!("{root}/")),
        "empty prefix lists {root}/ in {top:?}"
    );
    assert!(top.is_sorted(), "empty prefix result is sorted: {top:?}");
    let mut deduped = top.clone();
    deduped.dedup();
    assert_eq!(deduped, top, "empty prefix lists each child once");
}

async fn transaction_applies_ops_in_order(b: &dyn Backend, p: &str) {
    let a = format!("{p}txn/a");
    let gone = format!("{p}txn/gone");
    let twice = format!("{p}txn/twice");
    let pre = format!("{p}txn/pre-existing");
    b.put(&pre, b"old".to_vec()).await.unwrap();
    b.transaction(vec![
        TxnOp::Put {
            key: a.clone(),
            value: b"a".to_vec(),
        },
        TxnOp::Put {
            key: gone.clone(),
            value: b"g".to_vec(),
        },
        TxnOp::Delete { key: gone.clone() },
        TxnOp::Put {
            key: twice.clone(),
            value: b"1".to_vec(),
        },
        TxnOp::Put {
            key: twice.clone(),
            value: b"2".to_vec(),
        },
        TxnOp::Delete { key: pre.clone() },
    ])
    .await
    .unwrap();
    assert_eq!(b.get(&a).await.unwrap(), Some(b"a".to_vec()));
    assert_eq!(
        b.get(&gone).await.unwrap(),
        None,
        "put then delete in one txn"
    );
    assert_eq!(
        b.get(&twice).await.unwrap(),
        Some(b"2".to_vec()),
        "last put wins"
    );
    assert_eq!(b.get(&pre).await.unwrap(), None);
    b.transaction(Vec::new()).await.unwrap();
}

async fn invalid_keys_are_rejected_and_write_nothing(b: &dyn Backend, p: &str) {
    let with_nul = format!("{p}bad\0key");
    for key in ["", with_nul.as_str()] {
        let err = b.put(key, b"v".to_vec()).await.unwrap_err();
        assert!(
            matches!(err, StorageError::InvalidKey(_)),
            "put {key:?}: {err:?}"
        );
        let err = b.delete(key).await.unwrap_err();
        assert!(
            matches!(err, StorageError::InvalidKey(_)),
            "delete {key:?}: {err:?}"
        );
        let err = b.get(key).await.unwrap_err();
        assert!(
            matches!(err, StorageError::InvalidKey(_)),
            "get {key:?}: {err:?}"
        );
    }
    assert!(
        !b.list(p)
            .await
            .unwrap()
            .iter()
            .any(|k| k.starts_with("bad")),
        "a rejected put wrote nothing"
    );

    let ok = format!("{p}rejected-txn/ok");
    let err = b
        .transaction(vec![
            TxnOp::Put {
                key: ok.clone(),
                value: b"v".to_vec(),
            },
            TxnOp::Put {
                key: with_nul.clone(),
                value: b"v".to_vec(),
            },
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::InvalidKey(_)), "txn: {err:?}");
    assert_eq!(
        b.get(&ok).await.unwrap(),
        None,
        "txn with an invalid key wrote nothing"
    );
    let err = b
        .transaction(vec![
            TxnOp::Put {
                key: ok.clone(),
                value: b"v".to_vec(),
            },
            TxnOp::Delete { key: String::new() },
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::InvalidKey(_)), "txn: {err:?}");
    assert_eq!(
        b.get(&ok).await.unwrap(),
        None,
        "txn with an invalid delete wrote nothing"
    );
}

async fn unusual_characters_are_ordinary_keys(b: &dyn Backend, p: &str) {
    let dir = format!("{p}uni/");
    let names = [
        "clé secrète",
        "日本語/キー",
        "emoji 🔑",
        "tab\there",
        "trailing space ",
    ];
    for name in names {
        let key = format!("{dir}{name}");
        b.put(&key, name.as_bytes().to_vec()).await.unwrap();
        assert_eq!(
            b.get(&key).await.unwrap(),
            Some(name.as_bytes().to_vec()),
            "{key:?}"
        );
    }
    let mut expected = vec![
        "clé secrète",
        "emoji 🔑",
        "tab\there",
        "trailing space ",
        "日本語/",
    ];
    expected.sort_unstable();
    assert_eq!(b.list(&dir).await.unwrap(), expected);
    assert_eq!(b.list(&format!("{dir}日本語/")).await.unwrap(), ["キー"]);
}

/// Deletes every key under `prefix`, walking folders depth-first.
async fn cleanup(b: &dyn Backend, prefix: &str) {
    let mut pending = vec![prefix.to_owned()];
    while let Some(dir) = pending.pop() {
        for child in b.list(&dir).await.unwrap() {
            let path = format!("{dir}{child}");
            if child.ends_with('/') {
                pending.push(path);
            } else {
                b.delete(&path).await.unwrap();
            }
        }
    }
}
