//! Barrier behaviour as seen from above (the API) and below (the raw backend contents).

use std::sync::Arc;

use proptest::prelude::*;
use tresor_sdk::secret::SecretBytes;
use tresor_storage::{Backend, MemoryBackend};

use super::*;

fn root_key() -> SecretBytes {
    SecretBytes::copy_from(&[0x42; 32])
}

async fn unsealed() -> (Arc<MemoryBackend>, Barrier) {
    let backend = Arc::new(MemoryBackend::new());
    let barrier = Barrier::new(backend.clone());
    barrier.initialize(&root_key()).await.unwrap();
    barrier.unseal(&root_key()).await.unwrap();
    (backend, barrier)
}

/// Every (key, value) the backend holds, found by walking `list` from the root.
async fn dump(backend: &MemoryBackend) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut folders = vec![String::new()];
    while let Some(folder) = folders.pop() {
        for child in backend.list(&folder).await.unwrap() {
            let key = format!("{folder}{child}");
            if child.ends_with('/') {
                folders.push(key);
            } else {
                let value = backend.get(&key).await.unwrap().unwrap();
                out.push((key, value));
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

#[tokio::test]
async fn values_round_trip() {
    let (_backend, barrier) = unsealed().await;
    barrier.put("secret/a", b"hello").await.unwrap();
    barrier.put("secret/empty", b"").await.unwrap();
    assert_eq!(
        barrier.get("secret/a").await.unwrap().unwrap().expose(),
        b"hello"
    );
    assert_eq!(
        barrier.get("secret/empty").await.unwrap().unwrap().expose(),
        b""
    );
    assert!(barrier.get("secret/missing").await.unwrap().is_none());
    assert_eq!(barrier.list("secret/").await.unwrap(), vec!["a", "empty"]);
    barrier.delete("secret/a").await.unwrap();
    assert!(barrier.get("secret/a").await.unwrap().is_none());
}

#[tokio::test]
async fn the_backend_never_sees_plaintext() {
    let (backend, barrier) = unsealed().await;
    let plaintext = b"correct horse battery staple";
    barrier.put("secret/one", plaintext).await.unwrap();
    barrier
        .transaction(vec![BarrierOp::Put {
            path: "secret/two".into(),
            value: SecretBytes::copy_from(plaintext),
        }])
        .await
        .unwrap();
    barrier.rotate().await.unwrap();
    barrier.put("secret/three", plaintext).await.unwrap();

    let stored = dump(&backend).await;
    assert_eq!(stored.len(), 4, "three values and the keyring");
    let keyring = barrier.unsealed().unwrap().keyring.clone();
    let mut forbidden: Vec<Vec<u8>> = vec![plaintext.to_vec(), root_key().expose().to_vec()];
    for term in keyring.terms() {
        forbidden.push(keyring.term(term).unwrap().key().expose().to_vec());
    }
    for (key, value) in &stored {
        for secret in &forbidden {
            assert!(
                !contains(value, secret),
                "{key} holds plaintext or key bytes"
            );
        }
        // Even the keyring's JSON structure is hidden.
        assert!(!contains(value, b"active_term"));
    }
}

#[tokio::test]
async fn initialize_refuses_twice_and_leaves_the_barrier_sealed() {
    let backend = Arc::new(MemoryBackend::new());
    let barrier = Barrier::new(backend);
    assert!(!barrier.is_initialized().await.unwrap());
    assert!(matches!(
        barrier.initialize(&SecretBytes::copy_from(&[1; 16])).await,
        Err(BarrierError::InvalidKeyLength {
            expected: 32,
            actual: 16
        })
    ));
    assert!(matches!(
        barrier.unseal(&root_key()).await,
        Err(BarrierError::NotInitialized)
    ));
    barrier.initialize(&root_key()).await.unwrap();
    assert!(barrier.is_initialized().await.unwrap());
    assert!(barrier.is_sealed());
    assert!(matches!(
        barrier.initialize(&root_key()).await,
        Err(BarrierError::AlreadyInitialized)
    ));
    let raw = barrier.backend().get(KEYRING_PATH).await.unwrap().unwrap();
    assert_eq!(aead::term_of(&raw).unwrap(), ROOT_KEY_TERM);
}

#[tokio::test]
async fn sealed_barrier_refuses_every_data_operation() {
    let (_backend, barrier) = unsealed().await;
    barrier.put("secret/a", b"v").await.unwrap();
    barrier.seal();
    assert!(barrier.is_sealed());
    assert!(matches!(
        barrier.get("secret/a").await,
        Err(BarrierError::Sealed)
    ));
    assert!(matches!(
        barrier.put("secret/a", b"w").await,
        Err(BarrierError::Sealed)
    ));
    assert!(matches!(
        barrier.delete("secret/a").await,
        Err(BarrierError::Sealed)
    ));
    assert!(matches!(
        barrier.list("secret/").await,
        Err(BarrierError::Sealed)
    ));
    assert!(matches!(
        barrier.transaction(vec![]).await,
        Err(BarrierError::Sealed)
    ));
    assert!(matches!(barrier.rotate().await, Err(BarrierError::Sealed)));
    assert!(matches!(barrier.key_status(), Err(BarrierError::Sealed)));

    barrier.unseal(&root_key()).await.unwrap();
    assert_eq!(
        barrier.get("secret/a").await.unwrap().unwrap().expose(),
        b"v"
    );
}

#[tokio::test]
async fn wrong_root_key_is_rejected_and_the_barrier_stays_sealed() {
    let (_backend, barrier) = unsealed().await;
    barrier.seal();
    for wrong in [
        SecretBytes::copy_from(&[0x43; 32]),
        SecretBytes::copy_from(&[0x42; 31]),
    ] {
        assert!(matches!(
            barrier.unseal(&wrong).await,
            Err(BarrierError::InvalidRootKey)
        ));
        assert!(barrier.is_sealed());
    }
    barrier.unseal(&root_key()).await.unwrap();
    assert!(!barrier.is_sealed());
}

#[tokio::test]
async fn unseal_is_idempotent_but_still_checks_the_key() {
    let (_backend, barrier) = unsealed().await;
    barrier.put("secret/a", b"v").await.unwrap();
    barrier.unseal(&root_key()).await.unwrap();
    assert_eq!(
        barrier.key_status().unwrap().encryptions,
        1,
        "state was kept"
    );
    let wrong = SecretBytes::copy_from(&[0; 32]);
    assert!(matches!(
        barrier.unseal(&wrong).await,
        Err(BarrierError::InvalidRootKey)
    ));
    assert!(!barrier.is_sealed());
}

#[tokio::test]
async fn the_keyring_path_is_reserved() {
    let (_backend, barrier) = unsealed().await;
    assert!(matches!(
        barrier.get(KEYRING_PATH).await,
        Err(BarrierError::ReservedPath(_))
    ));
    assert!(matches!(
        barrier.put(KEYRING_PATH, b"x").await,
        Err(BarrierError::ReservedPath(_))
    ));
    assert!(matches!(
        barrier.delete(KEYRING_PATH).await,
        Err(BarrierError::ReservedPath(_))
    ));
    let op = BarrierOp::Delete {
        path: KEYRING_PATH.into(),
    };
    assert!(matches!(
        barrier.transaction(vec![op]).await,
        Err(BarrierError::ReservedPath(_))
    ));
}

#[tokio::test]
async fn a_value_copied_to_another_path_does_not_decrypt() {
    let (backend, barrier) = unsealed().await;
    barrier.put("secret/a", b"for a only").await.unwrap();
    let raw = backend.get("secret/a").await.unwrap().unwrap();
    backend.put("secret/b", raw).await.unwrap();
    match barrier.get("secret/b").await {
        Err(BarrierError::Integrity { path }) => assert_eq!(path, "secret/b"),
        other => panic!("expected integrity error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_relabelled_term_does_not_decrypt() {
    let (backend, barrier) = unsealed().await;
    barrier.rotate().await.unwrap();
    barrier.put("secret/a", b"under term 2").await.unwrap();
    let mut raw = backend.get("secret/a").await.unwrap().unwrap();
    assert_eq!(aead::term_of(&raw).unwrap(), 2);
    raw[1..5].copy_from_slice(&1u32.to_be_bytes());
    backend.put("secret/a", raw.clone()).await.unwrap();
    assert!(matches!(
        barrier.get("secret/a").await,
        Err(BarrierError::Integrity { .. })
    ));

    raw[1..5].copy_from_slice(&9u32.to_be_bytes());
    backend.put("secret/a", raw).await.unwrap();
    assert!(matches!(
        barrier.get("secret/a").await,
        Err(BarrierError::UnknownTerm(9))
    ));
}

#[tokio::test]
async fn rotation_keeps_old_values_and_persists_across_seal() {
    let (backend, barrier) = unsealed().await;
    barrier.put("secret/old", b"old").await.unwrap();
    let before = barrier.key_status().unwrap();
    assert_eq!((before.term, before.encryptions), (1, 1));

    let after = barrier.rotate().await.unwrap();
    assert_eq!(after.term, 2);
    assert_eq!(after.encryptions, 0);
    assert!(after.install_time >= before.install_time);
    barrier.put("secret/new", b"new").await.unwrap();
    assert_eq!(barrier.key_status().unwrap().encryptions, 1);

    let term_at = |key: &'static str| {
        let backend = backend.clone();
        async move { aead::term_of(&backend.get(key).await.unwrap().unwrap()).unwrap() }
    };
    assert_eq!(term_at("secret/old").await, 1);
    assert_eq!(term_at("secret/new").await, 2);

    barrier.seal();
    barrier.unseal(&root_key()).await.unwrap();
    let status = barrier.key_status().unwrap();
    assert_eq!(status.term, 2);
    assert_eq!(status.install_time, after.install_time);
    assert_eq!(status.encryptions, 0, "counted since unseal");
    assert_eq!(
        barrier.get("secret/old").await.unwrap().unwrap().expose(),
        b"old"
    );
    assert_eq!(
        barrier.get("secret/new").await.unwrap().unwrap().expose(),
        b"new"
    );

    // A barrier built fresh over the same storage sees the rotated keyring too.
    let fresh = Barrier::new(backend.clone());
    fresh.unseal(&root_key()).await.unwrap();
    assert_eq!(fresh.key_status().unwrap().term, 2);
    assert_eq!(
        fresh.get("secret/old").await.unwrap().unwrap().expose(),
        b"old"
    );
}

#[tokio::test]
async fn transactions_apply_all_or_nothing() {
    let (backend, barrier) = unsealed().await;
    barrier.put("t/old", b"old").await.unwrap();
    // The backend refuses the NUL key after the first ops were encrypted: nothing lands.
    let failing = vec![
        BarrierOp::Put {
            path: "t/a".into(),
            value: SecretBytes::copy_from(b"a"),
        },
        BarrierOp::Delete {
            path: "t/old".into(),
        },
        BarrierOp::Put {
            path: "t/\0".into(),
            value: SecretBytes::copy_from(b"x"),
        },
    ];
    assert!(matches!(
        barrier.transaction(failing).await,
        Err(BarrierError::Storage(_))
    ));
    assert_eq!(barrier.list("t/").await.unwrap(), vec!["old"]);

    let ok = vec![
        BarrierOp::Put {
            path: "t/a".into(),
            value: SecretBytes::copy_from(b"a"),
        },
        BarrierOp::Put {
            path: "t/b".into(),
            value: SecretBytes::copy_from(b"b"),
        },
        BarrierOp::Delete {
            path: "t/old".into(),
        },
    ];
    barrier.transaction(ok).await.unwrap();
    assert_eq!(barrier.list("t/").await.unwrap(), vec!["a", "b"]);
    assert_eq!(barrier.get("t/b").await.unwrap().unwrap().expose(), b"b");
    assert_eq!(
        aead::term_of(&backend.get("t/b").await.unwrap().unwrap()).unwrap(),
        1
    );
}

#[tokio::test]
async fn concurrent_rotations_never_lose_a_term() {
    let (_backend, barrier) = unsealed().await;
    let barrier = Arc::new(barrier);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.rotate().await.unwrap();
            barrier.put(&format!("c/{i}"), b"v").await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(barrier.key_status().unwrap().term, 9);
    barrier.seal();
    barrier.unseal(&root_key()).await.unwrap();
    for i in 0..8 {
        assert!(barrier.get(&format!("c/{i}")).await.unwrap().is_some());
    }
}

#[test]
fn debug_output_hides_keys() {
    let rt = runtime();
    let (_backend, barrier) = rt.block_on(unsealed());
    let shown = format!("{barrier:?}");
    assert!(shown.contains("sealed: false"));
    let key = barrier
        .unsealed()
        .unwrap()
        .keyring
        .active()
        .unwrap()
        .1
        .key()
        .clone();
    assert!(!shown.contains(&format!("{:?}", key.expose())));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn flipping_any_stored_byte_is_detected(
        plaintext in proptest::collection::vec(any::<u8>(), 0..64),
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let rt = runtime();
        let (backend, barrier) = rt.block_on(unsealed());
        rt.block_on(barrier.put("secret/x", &plaintext)).unwrap();
        let mut raw = rt.block_on(backend.get("secret/x")).unwrap().unwrap();
        let at = position.index(raw.len());
        raw[at] ^= flip;
        rt.block_on(backend.put("secret/x", raw)).unwrap();
        let result = rt.block_on(barrier.get("secret/x"));
        // Bytes 1..5 are the term: a change there names a term the keyring lacks.
        if (1..5).contains(&at) {
            prop_assert!(
                matches!(result, Err(BarrierError::UnknownTerm(_) | BarrierError::Integrity { .. })),
                "{:?}", result
            );
        } else {
            prop_assert!(matches!(result, Err(BarrierError::Integrity { .. })), "{:?}", result);
        }
    }

    #[test]
    fn arbitrary_paths_and_values_round_trip(
        entries in proptest::collection::btree_map(
            "data/[a-z0-9_-]{1,8}(/[a-z0-9_.-]{1,8}){0,3}",
            proptest::collection::vec(any::<u8>(), 0..256),
            1..8,
        ),
    ) {
        let rt = runtime();
        let (backend, barrier) = rt.block_on(unsealed());
        for (path, value) in &entries {
            rt.block_on(barrier.put(path, value)).unwrap();
        }
        for (path, value) in &entries {
            let got = rt.block_on(barrier.get(path)).unwrap();
            prop_assert_eq!(got.as_ref().map(SecretBytes::expose), Some(value.as_slice()));
            let raw = rt.block_on(backend.get(path)).unwrap().unwrap();
            prop_assert_eq!(raw.len(), value.len() + aead::OVERHEAD);
        }
    }
}
