//! Transit: key lifecycle, encrypt/decrypt/rewrap/datakey, batches, derivation and
//! convergent encryption — with ciphertexts checked by an independent AEAD implementation
//! (RustCrypto `aes-gcm`/`chacha20poly1305`; the engine uses ring).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::support;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use serde_json::{Value, json};
use support::{Harness, b64, hkdf_sha256, unb64};

async fn exportable(h: &Harness, name: &str, key_type: &str) {
    h.write(
        &format!("keys/{name}"),
        json!({ "type": key_type, "exportable": true }),
    )
    .await
    .assert_status(200);
}

async fn export_key(h: &Harness, name: &str, version: u32) -> Vec<u8> {
    let r = h
        .read(&format!("export/encryption-key/{name}/{version}"))
        .await;
    r.assert_status(200);
    unb64(r.data()["keys"][version.to_string()].as_str().unwrap())
}

fn split(ciphertext: &str) -> (u32, Vec<u8>) {
    let rest = ciphertext.strip_prefix("vault:v").unwrap();
    let (v, body) = rest.split_once(':').unwrap();
    (v.parse().unwrap(), unb64(body))
}

#[tokio::test]
async fn create_read_list_and_defaults() {
    let h = Harness::transit();
    let r = h.write("keys/k1", json!({})).await;
    r.assert_status(200);
    let d = r.data();
    assert_eq!(d["type"], "aes256-gcm96");
    assert_eq!(d["latest_version"], 1);
    assert_eq!(d["min_decryption_version"], 1);
    assert_eq!(d["min_encryption_version"], 0);
    assert_eq!(d["min_available_version"], 0);
    assert_eq!(d["deletion_allowed"], false);
    assert_eq!(d["supports_encryption"], true);
    assert_eq!(d["supports_signing"], false);
    // Symmetric key versions show their creation time in Unix seconds, as Vault does.
    assert_eq!(d["keys"]["1"], json!(support::START / 1_000_000_000));

    let again = h
        .write("keys/k1", json!({ "type": "chacha20-poly1305" }))
        .await;
    again.assert_status(200);
    assert_eq!(again.data()["type"], "aes256-gcm96", "existing key is kept");
    assert_eq!(
        again.body["warnings"],
        Value::Null,
        "OpenBao 2.7 adds no warning"
    );

    h.write("keys/k2", json!({ "type": "chacha20-poly1305" }))
        .await
        .assert_status(200);
    let list = h.list("keys/").await;
    list.assert_status(200);
    assert_eq!(list.data()["keys"], json!(["k1", "k2"]));
    h.read("keys/missing").await.assert_status(404);
}

#[tokio::test]
async fn rotate_rewrap_and_min_decryption_version() {
    let h = Harness::transit();
    h.write("keys/k", json!({})).await.assert_status(200);
    let pt = b64(b"the eagle lands at midnight");
    let v1 = h.write("encrypt/k", json!({ "plaintext": pt })).await;
    v1.assert_status(200);
    let ct1 = v1.data()["ciphertext"].as_str().unwrap().to_owned();
    assert!(ct1.starts_with("vault:v1:"));
    assert_eq!(v1.data()["key_version"], 1);

    let rotated = h.write("keys/k/rotate", json!({})).await;
    rotated.assert_status(200);
    assert_eq!(rotated.data()["latest_version"], 2);

    // The old ciphertext still decrypts.
    let d = h.write("decrypt/k", json!({ "ciphertext": ct1 })).await;
    d.assert_status(200);
    assert_eq!(d.data()["plaintext"], pt);

    // Rewrap moves it to v2 without exposing the plaintext.
    let rw = h.write("rewrap/k", json!({ "ciphertext": ct1 })).await;
    rw.assert_status(200);
    let ct2 = rw.data()["ciphertext"].as_str().unwrap().to_owned();
    assert!(ct2.starts_with("vault:v2:"));
    assert_eq!(rw.data()["key_version"], 2);

    let cfg = h
        .write("keys/k/config", json!({ "min_decryption_version": 2 }))
        .await;
    cfg.assert_status(200);
    assert_eq!(cfg.data()["min_decryption_version"], 2);

    h.write("decrypt/k", json!({ "ciphertext": ct1 }))
        .await
        .assert_error(
            400,
            "ciphertext or signature version is disallowed by policy (too old)",
        );
    let d2 = h.write("decrypt/k", json!({ "ciphertext": ct2 })).await;
    d2.assert_status(200);
    assert_eq!(d2.data()["plaintext"], pt);

    // Versions below min_decryption_version are archived, as in OpenBao: not listed, and
    // not usable for encryption either.
    assert_eq!(cfg.data()["keys"].as_object().unwrap().len(), 1);
    h.write("encrypt/k", json!({ "plaintext": pt, "key_version": 1 }))
        .await
        .assert_error(400, "no such key version");
    h.write("keys/k/config", json!({ "min_decryption_version": 1 }))
        .await
        .assert_status(200);
    let old = h
        .write("encrypt/k", json!({ "plaintext": pt, "key_version": 1 }))
        .await;
    assert!(
        old.data()["ciphertext"]
            .as_str()
            .unwrap()
            .starts_with("vault:v1:")
    );
    h.write("encrypt/k", json!({ "plaintext": pt, "key_version": 3 }))
        .await
        .assert_error(
            400,
            "requested version for encryption is higher than the latest key version",
        );
    h.write("keys/k/config", json!({ "min_encryption_version": 2 }))
        .await
        .assert_status(200);
    h.write("encrypt/k", json!({ "plaintext": pt, "key_version": 1 }))
        .await
        .assert_error(
            400,
            "requested version for encryption is less than the minimum encryption key version",
        );
}

#[tokio::test]
async fn trim_and_delete() {
    let h = Harness::transit();
    h.write("keys/k", json!({})).await.assert_status(200);
    h.write("keys/k/rotate", json!({})).await.assert_status(200);
    h.write("keys/k/rotate", json!({})).await.assert_status(200);
    h.write("keys/k/trim", json!({ "min_available_version": 2 }))
        .await
        .assert_error(
            400,
            "minimum available version cannot be set when minimum encryption version is not set",
        );
    h.write(
        "keys/k/config",
        json!({ "min_encryption_version": 3, "min_decryption_version": 2 }),
    )
    .await
    .assert_status(200);
    let t = h
        .write("keys/k/trim", json!({ "min_available_version": 2 }))
        .await;
    t.assert_status(200);
    assert_eq!(t.data()["min_available_version"], 2);
    assert_eq!(t.data()["keys"].as_object().unwrap().len(), 2);
    h.write("keys/k/trim", json!({ "min_available_version": 1 }))
        .await
        .assert_error(400, "minimum available version cannot be decremented");

    h.delete("keys/k").await.assert_error(
        400,
        "error deleting policy k: deletion is not allowed for this key",
    );
    h.write("keys/k/config", json!({ "deletion_allowed": true }))
        .await
        .assert_status(200);
    h.delete("keys/k").await.assert_status(204);
    h.read("keys/k").await.assert_status(404);
    assert!(h.storage.keys().iter().all(|k| !k.starts_with("policy/")));
}

#[tokio::test]
async fn encrypt_upserts_only_on_create() {
    let h = Harness::transit();
    // The harness turns a write into `create` when `exists` says the key is absent.
    let r = h
        .write(
            "encrypt/new",
            json!({ "plaintext": b64(b"x"), "type": "chacha20-poly1305" }),
        )
        .await;
    r.assert_status(200);
    assert_eq!(h.read("keys/new").await.data()["type"], "chacha20-poly1305");

    // An `update` (a caller without `create`) on a missing key is refused.
    let req = h.request(
        tresor_sdk::engine::Operation::Update,
        "encrypt/other",
        json!({ "plaintext": b64(b"x") }),
        &[],
    );
    let reply = support::render(h.engine.handle(&req, &h.storage).await);
    reply.assert_error(400, "encryption key not found");
    h.write(
        "encrypt/bad",
        json!({ "plaintext": b64(b"x"), "type": "ecdsa-p256" }),
    )
    .await
    .assert_error(400, "key type ecdsa-p256 not supported for this operation");
    h.write(
        "encrypt/bad",
        json!({ "plaintext": b64(b"x"), "type": "nope" }),
    )
    .await
    .assert_error(400, "unknown key type nope");
    assert!(h.storage.raw("policy/bad").is_none());
}

#[tokio::test]
async fn every_symmetric_type_interoperates_with_an_independent_implementation() {
    for key_type in ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305"] {
        let h = Harness::transit();
        exportable(&h, "k", key_type).await;
        let key = export_key(&h, "k", 1).await;
        let plaintext = b"interop plaintext".to_vec();
        let aad = b"row-17".to_vec();

        // Tresor → independent library.
        let r = h
            .write(
                "encrypt/k",
                json!({ "plaintext": b64(&plaintext), "associated_data": b64(&aad) }),
            )
            .await;
        r.assert_status(200);
        let (version, blob) = split(r.data()["ciphertext"].as_str().unwrap());
        assert_eq!(version, 1);
        let (nonce, body) = blob.split_at(12);
        let opened = independent_open(key_type, &key, nonce, body, &aad);
        assert_eq!(opened, plaintext, "{key_type}");

        // Independent library → Tresor.
        let nonce = [7u8; 12];
        let mut blob = nonce.to_vec();
        blob.extend(independent_seal(
            key_type,
            &key,
            &nonce,
            b"made outside",
            &aad,
        ));
        let ct = format!("vault:v1:{}", b64(&blob));
        let d = h
            .write(
                "decrypt/k",
                json!({ "ciphertext": ct, "associated_data": b64(&aad) }),
            )
            .await;
        d.assert_status(200);
        assert_eq!(
            unb64(d.data()["plaintext"].as_str().unwrap()),
            b"made outside"
        );

        // Wrong associated data fails authentication.
        h.write(
            "decrypt/k",
            json!({ "ciphertext": ct, "associated_data": b64(b"other") }),
        )
        .await
        .assert_status(400);
    }
}

fn independent_open(key_type: &str, key: &[u8], nonce: &[u8], body: &[u8], aad: &[u8]) -> Vec<u8> {
    let payload = Payload { msg: body, aad };
    match key_type {
        "aes128-gcm96" => aes_gcm::Aes128Gcm::new_from_slice(key)
            .unwrap()
            .decrypt(nonce.into(), payload)
            .unwrap(),
        "aes256-gcm96" => aes_gcm::Aes256Gcm::new_from_slice(key)
            .unwrap()
            .decrypt(nonce.into(), payload)
            .unwrap(),
        _ => chacha20poly1305::ChaCha20Poly1305::new_from_slice(key)
            .unwrap()
            .decrypt(nonce.into(), payload)
            .unwrap(),
    }
}

fn independent_seal(key_type: &str, key: &[u8], nonce: &[u8], msg: &[u8], aad: &[u8]) -> Vec<u8> {
    let payload = Payload { msg, aad };
    match key_type {
        "aes128-gcm96" => aes_gcm::Aes128Gcm::new_from_slice(key)
            .unwrap()
            .encrypt(nonce.into(), payload)
            .unwrap(),
        "aes256-gcm96" => aes_gcm::Aes256Gcm::new_from_slice(key)
            .unwrap()
            .encrypt(nonce.into(), payload)
            .unwrap(),
        _ => chacha20poly1305::ChaCha20Poly1305::new_from_slice(key)
            .unwrap()
            .encrypt(nonce.into(), payload)
            .unwrap(),
    }
}

#[tokio::test]
async fn derived_keys_use_hkdf_sha256_of_the_context() {
    let h = Harness::transit();
    h.write("keys/d", json!({ "derived": true, "exportable": true }))
        .await
        .assert_status(200);
    let read = h.read("keys/d").await;
    assert_eq!(read.data()["kdf"], "hkdf_sha256");
    let key = export_key(&h, "d", 1).await;
    let ctx = b"tenant-42";
    let r = h
        .write(
            "encrypt/d",
            json!({ "plaintext": b64(b"hi"), "context": b64(ctx) }),
        )
        .await;
    r.assert_status(200);
    let (_, blob) = split(r.data()["ciphertext"].as_str().unwrap());

    // Independent HKDF-SHA256(salt = none, ikm = key, info = context).
    let hk = hkdf_sha256(&key, ctx);
    let (nonce, body) = blob.split_at(12);
    let plain = aes_gcm::Aes256Gcm::new_from_slice(&hk)
        .unwrap()
        .decrypt(nonce.into(), body)
        .unwrap();
    assert_eq!(plain, b"hi");

    h.write("encrypt/d", json!({ "plaintext": b64(b"hi") }))
        .await
        .assert_error(400, "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key");
    h.write(
        "decrypt/d",
        json!({ "ciphertext": r.data()["ciphertext"], "context": b64(b"other") }),
    )
    .await
    .assert_error(400, "cipher: message authentication failed");
}

#[tokio::test]
async fn convergent_encryption_is_deterministic_per_plaintext_and_context() {
    let h = Harness::transit();
    h.write(
        "keys/c",
        json!({ "derived": true, "convergent_encryption": true }),
    )
    .await
    .assert_status(200);
    let enc = |pt: &'static [u8], ctx: &'static [u8]| {
        let h = &h;
        async move {
            let r = h
                .write(
                    "encrypt/c",
                    json!({ "plaintext": b64(pt), "context": b64(ctx) }),
                )
                .await;
            r.assert_status(200);
            r.data()["ciphertext"].as_str().unwrap().to_owned()
        }
    };
    let a = enc(b"same", b"ctx-1").await;
    assert_eq!(a, enc(b"same", b"ctx-1").await);
    assert_ne!(a, enc(b"same", b"ctx-2").await);
    assert_ne!(a, enc(b"different", b"ctx-1").await);
    let d = h
        .write(
            "decrypt/c",
            json!({ "ciphertext": a, "context": b64(b"ctx-1") }),
        )
        .await;
    assert_eq!(d.data()["plaintext"], b64(b"same"));
    assert_eq!(
        h.read("keys/c").await.data()["convergent_encryption_version"],
        -1
    );

    h.write("keys/x", json!({ "convergent_encryption": true }))
        .await
        .assert_error(
            400,
            "convergent encryption requires derivation to be enabled",
        );
}

#[tokio::test]
async fn batch_with_a_bad_item_reports_per_item_and_keeps_good_results() {
    let h = Harness::transit();
    h.write("keys/b", json!({})).await.assert_status(200);
    let r = h
        .write(
            "encrypt/b",
            json!({ "batch_input": [
                { "plaintext": b64(b"one"), "reference": "r1" },
                { "plaintext": "not base64!", "reference": "r2" },
                { "plaintext": b64(b"three"), "reference": "r3" },
            ]}),
        )
        .await;
    r.assert_status(400);
    let results = r.data()["batch_results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["reference"], "r1");
    assert!(
        results[0]["ciphertext"]
            .as_str()
            .unwrap()
            .starts_with("vault:v1:")
    );
    assert_eq!(results[1]["reference"], "r2");
    assert_eq!(results[1]["error"], "illegal base64 data at input byte 3");
    assert!(results[1].get("ciphertext").is_none());
    assert_eq!(results[2]["reference"], "r3");

    // partial_failure_response_code overrides the status when something succeeded.
    let p = h
        .write(
            "encrypt/b",
            json!({ "partial_failure_response_code": 207, "batch_input": [
                { "plaintext": b64(b"one") }, { "plaintext": "%%%" },
            ]}),
        )
        .await;
    p.assert_status(207);

    // Decrypt batch: good results kept, the bad one reported.
    let good = results[0]["ciphertext"].clone();
    let d = h
        .write(
            "decrypt/b",
            json!({ "batch_input": [
                { "ciphertext": good, "reference": "a" },
                { "ciphertext": "vault:v9:AAAA", "reference": "b" },
            ]}),
        )
        .await;
    d.assert_status(400);
    let dr = d.data()["batch_results"].as_array().unwrap();
    assert_eq!(dr[0]["plaintext"], b64(b"one"));
    assert_eq!(dr[0]["reference"], "a");
    assert_eq!(dr[1]["error"], "invalid ciphertext: version is too new");

    // All good: 200 and every reference echoed.
    let ok = h
        .write(
            "encrypt/b",
            json!({ "batch_input": [{ "plaintext": b64(b"x"), "reference": "only" }] }),
        )
        .await;
    ok.assert_status(200);
    assert_eq!(ok.data()["batch_results"][0]["reference"], "only");

    // Context in some items but not others is refused outright.
    h.write(
        "encrypt/b",
        json!({ "batch_input": [{ "plaintext": b64(b"x"), "context": b64(b"c") }, { "plaintext": b64(b"y") }] }),
    )
    .await
    .assert_error(400, "context should be set either in all the request blocks or in none");
}

#[tokio::test]
async fn datakeys() {
    let h = Harness::transit();
    h.write("keys/dk", json!({})).await.assert_status(200);
    for (bits, len) in [(128, 16), (256, 32), (512, 64)] {
        let r = h
            .write("datakey/plaintext/dk", json!({ "bits": bits }))
            .await;
        r.assert_status(200);
        let plain = r.data()["plaintext"].as_str().unwrap().to_owned();
        assert_eq!(unb64(&plain).len(), len);
        let d = h
            .write(
                "decrypt/dk",
                json!({ "ciphertext": r.data()["ciphertext"] }),
            )
            .await;
        assert_eq!(d.data()["plaintext"], plain);
    }
    let w = h.write("datakey/wrapped/dk", json!({})).await;
    w.assert_status(200);
    assert!(w.data().get("plaintext").is_none());
    assert!(
        w.data()["ciphertext"]
            .as_str()
            .unwrap()
            .starts_with("vault:v1:")
    );
    h.write("datakey/plaintext/dk", json!({ "bits": 1u64 << 40 }))
        .await
        .assert_error(400, "invalid bit length");
    h.write("datakey/other/dk", json!({}))
        .await
        .assert_error(400, "Invalid path, must be 'plaintext' or 'wrapped'");
    h.write("datakey/plaintext/none", json!({}))
        .await
        .assert_error(400, "encryption key not found");
}

#[tokio::test]
async fn rsa_keys_encrypt_with_oaep_sha256() {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    let h = Harness::transit();
    exportable(&h, "r", "rsa-2048").await;
    let r = h
        .write("encrypt/r", json!({ "plaintext": b64(b"rsa secret") }))
        .await;
    r.assert_status(200);
    let ct = r.data()["ciphertext"].as_str().unwrap().to_owned();
    let d = h.write("decrypt/r", json!({ "ciphertext": ct })).await;
    assert_eq!(d.data()["plaintext"], b64(b"rsa secret"));

    // The exported PKCS#1 key decrypts it outside Tresor.
    let pem = h.read("export/encryption-key/r/1").await.data()["keys"]["1"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let key = rsa::RsaPrivateKey::from_pkcs1_pem(&pem).unwrap();
    let (_, blob) = split(&ct);
    let plain = key
        .decrypt(rsa::Oaep::new::<sha2::Sha256>(), &blob)
        .unwrap();
    assert_eq!(plain, b"rsa secret");
    h.write(
        "encrypt/r",
        json!({ "plaintext": b64(b"x"), "associated_data": b64(b"a") }),
    )
    .await
    .assert_error(
        400,
        "'[0].associated_data' provided for non-AEAD cipher suite rsa-2048",
    );
}

#[tokio::test]
async fn key_material_is_only_in_the_view_and_the_cache_follows_writes() {
    let h = Harness::transit();
    exportable(&h, "k", "aes256-gcm96").await;
    let key = export_key(&h, "k", 1).await;
    // The engine stores the key in its view (the barrier encrypts it below); the storage
    // entry is the only copy outside memory.
    assert_eq!(h.storage.keys(), vec!["policy/k".to_owned()]);
    let _ = key;
    // A rotation is visible to the next encrypt immediately (cache replaced on write).
    h.write("keys/k/rotate", json!({})).await.assert_status(200);
    let r = h
        .write("encrypt/k", json!({ "plaintext": b64(b"z") }))
        .await;
    assert!(
        r.data()["ciphertext"]
            .as_str()
            .unwrap()
            .starts_with("vault:v2:")
    );
    let data: Value = serde_json::from_slice(&h.storage.raw("policy/k").unwrap()).unwrap();
    assert_eq!(data["latest_version"], 2);
}

#[tokio::test]
async fn every_batch_item_gets_its_own_random_nonce() {
    let h = Harness::transit();
    h.write("keys/n", json!({})).await.assert_status(200);
    let items: Vec<Value> = (0..64)
        .map(|_| json!({ "plaintext": b64(b"same") }))
        .collect();
    let r = h.write("encrypt/n", json!({ "batch_input": items })).await;
    r.assert_status(200);
    let nonces: std::collections::BTreeSet<Vec<u8>> = r.data()["batch_results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| split(item["ciphertext"].as_str().unwrap()).1[..12].to_vec())
        .collect();
    assert_eq!(nonces.len(), 64, "a nonce was reused within a batch");
    // And across requests.
    let again = h
        .write("encrypt/n", json!({ "plaintext": b64(b"same") }))
        .await;
    let nonce = split(again.data()["ciphertext"].as_str().unwrap()).1[..12].to_vec();
    assert!(!nonces.contains(&nonce));
}
