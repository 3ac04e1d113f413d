//! Transit: export formats, backup/restore, BYOK import (wrapping key, RSA-OAEP + AES-KWP),
//! automatic rotation through `periodic`, random and hash.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::support;

use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit};
use serde_json::json;
use support::{Harness, b64, unb64};

#[tokio::test]
async fn export_formats_and_rules() {
    use p256::pkcs8::DecodePublicKey;
    let h = Harness::transit();
    h.write("keys/secret", json!({})).await.assert_status(200);
    h.read("export/encryption-key/secret")
        .await
        .assert_error(400, "private key material is not exportable");
    h.read("export/wat/secret")
        .await
        .assert_error(400, "invalid export type: wat");
    h.read("export/encryption-key/none")
        .await
        .assert_status(404);

    h.write("keys/ec", json!({ "type": "ecdsa-p256" }))
        .await
        .assert_status(200);
    // Public keys are exportable whatever the key's setting.
    let public = h.read("export/public-key/ec/latest").await;
    public.assert_status(200);
    let pem = public.data()["keys"]["1"].as_str().unwrap();
    p256::PublicKey::from_public_key_pem(pem).unwrap();
    h.read("export/signing-key/ec")
        .await
        .assert_error(400, "private key material is not exportable");

    h.write("keys/ec/config", json!({ "exportable": true }))
        .await
        .assert_status(200);
    let signing = h.read("export/signing-key/ec/v1").await;
    signing.assert_status(200);
    let sec1 = signing.data()["keys"]["1"].as_str().unwrap();
    assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"), "{sec1}");
    let secret = p256::SecretKey::from_sec1_pem(sec1).unwrap();
    assert_eq!(
        secret.public_key(),
        p256::PublicKey::from_public_key_pem(pem).unwrap()
    );
    h.read("export/encryption-key/ec")
        .await
        .assert_error(400, "encryption not supported for the key");
    h.read("export/signing-key/ec/7")
        .await
        .assert_error(400, "version does not exist or cannot be found");
    h.read("export/signing-key/ec/x")
        .await
        .assert_error(400, "invalid key version");

    // Exportability cannot be turned off again.
    let c = h
        .write("keys/ec/config", json!({ "exportable": false }))
        .await;
    assert_eq!(c.data()["exportable"], true);
}

#[tokio::test]
async fn backup_and_restore() {
    let h = Harness::transit();
    h.write("keys/k", json!({ "exportable": true }))
        .await
        .assert_status(200);
    h.read("backup/k")
        .await
        .assert_error(400, "plaintext backup is disallowed on the policy");
    h.write(
        "keys/k/config",
        json!({ "allow_plaintext_backup": true, "deletion_allowed": true }),
    )
    .await
    .assert_status(200);
    let ct = h
        .write("encrypt/k", json!({ "plaintext": b64(b"keep me") }))
        .await
        .data()["ciphertext"]
        .clone();
    let backup = h.read("backup/k").await.data()["backup"]
        .as_str()
        .unwrap()
        .to_owned();

    h.write("restore", json!({ "backup": backup }))
        .await
        .assert_error(400, "key \"k\" already exists");
    h.delete("keys/k").await.assert_status(204);
    h.write("restore", json!({ "backup": backup }))
        .await
        .assert_status(204);
    let d = h.write("decrypt/k", json!({ "ciphertext": ct })).await;
    assert_eq!(d.data()["plaintext"], b64(b"keep me"));

    // Restore under another name; a corrupt backup writes nothing.
    h.write("restore/copy", json!({ "backup": backup }))
        .await
        .assert_status(204);
    assert_eq!(
        h.write("decrypt/copy", json!({ "ciphertext": ct }))
            .await
            .data()["plaintext"],
        b64(b"keep me")
    );
    let before = h.storage.snapshot();
    h.write(
        "restore/x",
        json!({ "backup": b64(b"{\"format\":\"nope\"}") }),
    )
    .await
    .assert_status(400);
    h.write("restore/x", json!({ "backup": "@@@" }))
        .await
        .assert_status(400);
    h.write("restore/x", json!({}))
        .await
        .assert_error(400, "'backup' must be supplied");
    assert_eq!(before, h.storage.snapshot());
}

/// Wraps `target` for import exactly as Vault documents it.
fn wrap_for_import(wrapping_pem: &str, target: &[u8]) -> String {
    use rsa::pkcs8::DecodePublicKey;
    let wrapping = rsa::RsaPublicKey::from_public_key_pem(wrapping_pem).unwrap();
    let ephemeral: [u8; 32] = rand_bytes();
    let oaep = wrapping
        .encrypt(
            &mut rand_core::OsRng,
            rsa::Oaep::new::<sha2::Sha256>(),
            &ephemeral,
        )
        .unwrap();
    let kwp = aes_kw::KekAes256::from(ephemeral)
        .wrap_with_padding_vec(target)
        .unwrap();
    let mut blob = oaep;
    blob.extend(kwp);
    b64(&blob)
}

fn rand_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut out).unwrap();
    out
}

#[tokio::test]
async fn byok_import_of_an_existing_aes_key_decrypts_old_rows_then_rotates() {
    let h = Harness::transit();
    let wk = h.read("wrapping_key").await;
    wk.assert_status(200);
    let pem = wk.data()["public_key"].as_str().unwrap().to_owned();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    // The wrapping key is stable.
    assert_eq!(
        h.read("wrapping_key").await.data()["public_key"],
        pem.as_str()
    );

    // A row encrypted "the old way": AES-256-GCM with a random nonce, stored as nonce ‖ ct ‖ tag.
    let master: [u8; 32] = rand_bytes();
    let nonce: [u8; 12] = rand_bytes();
    let sealed = aes_gcm::Aes256Gcm::new_from_slice(&master)
        .unwrap()
        .encrypt((&nonce).into(), b"ghp_token_value".as_slice())
        .unwrap();
    let mut row = nonce.to_vec();
    row.extend(sealed);

    h.write(
        "keys/master/import",
        json!({ "ciphertext": wrap_for_import(&pem, &master), "allow_rotation": true }),
    )
    .await
    .assert_status(204);
    let key = h.read("keys/master").await;
    assert_eq!(key.data()["imported_key"], true);
    assert_eq!(key.data()["imported_key_allow_rotation"], true);
    let old = format!("vault:v1:{}", b64(&row));
    let d = h
        .write("decrypt/master", json!({ "ciphertext": old }))
        .await;
    d.assert_status(200);
    assert_eq!(d.data()["plaintext"], b64(b"ghp_token_value"));

    h.write("keys/master/rotate", json!({}))
        .await
        .assert_status(200);
    let rw = h.write("rewrap/master", json!({ "ciphertext": old })).await;
    let new = rw.data()["ciphertext"].as_str().unwrap().to_owned();
    assert!(new.starts_with("vault:v2:"));
    h.write("keys/master/config", json!({ "min_decryption_version": 2 }))
        .await
        .assert_status(200);
    h.write("decrypt/master", json!({ "ciphertext": old }))
        .await
        .assert_status(400);
    assert_eq!(
        h.write("decrypt/master", json!({ "ciphertext": new }))
            .await
            .data()["plaintext"],
        b64(b"ghp_token_value")
    );

    // Importing over an existing key is refused; import_version adds a version.
    h.write("keys/master/import", json!({ "ciphertext": wrap_for_import(&pem, &master) }))
        .await
        .assert_error(400, "the import path cannot be used with an existing key; use import-version to rotate an existing imported key");
    h.write(
        "keys/master/import_version",
        json!({ "ciphertext": wrap_for_import(&pem, &master) }),
    )
    .await
    .assert_status(204);
    assert_eq!(h.read("keys/master").await.data()["latest_version"], 3);

    // An imported key without allow_rotation cannot be rotated.
    h.write(
        "keys/fixed/import",
        json!({ "ciphertext": wrap_for_import(&pem, &master) }),
    )
    .await
    .assert_status(204);
    h.write("keys/fixed/rotate", json!({})).await.assert_error(
        400,
        "imported key fixed does not allow rotation within Vault",
    );

    // Bad imports write nothing.
    let before = h.storage.snapshot();
    h.write("keys/bad/import", json!({ "ciphertext": b64(&[0u8; 600]) }))
        .await
        .assert_status(400);
    h.write("keys/bad/import", json!({ "ciphertext": b64(&[0u8; 10]) }))
        .await
        .assert_error(400, "provided ciphertext is too short");
    h.write(
        "keys/bad/import",
        json!({ "ciphertext": wrap_for_import(&pem, &master[..20]) }),
    )
    .await
    .assert_error(
        400,
        "error importing key: invalid key size: expected 32 bytes",
    );
    h.write(
        "keys/bad/import",
        json!({ "ciphertext": wrap_for_import(&pem, &master), "hash_function": "MD5" }),
    )
    .await
    .assert_error(400, "unknown hash function: MD5");
    h.write(
        "keys/bad/import",
        json!({ "ciphertext": wrap_for_import(&pem, &master), "type": "blowfish" }),
    )
    .await
    .assert_error(400, "unknown key type: blowfish");
    assert_eq!(before, h.storage.snapshot());
}

#[tokio::test]
async fn byok_import_of_an_ecdsa_key_in_pkcs8() {
    use p256::ecdsa::signature::Verifier;
    use p256::pkcs8::EncodePrivateKey;
    let h = Harness::transit();
    let pem = h.read("wrapping_key").await.data()["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let der = secret.to_pkcs8_der().unwrap();
    h.write(
        "keys/ec/import",
        json!({ "type": "ecdsa-p256", "ciphertext": wrap_for_import(&pem, der.as_bytes()) }),
    )
    .await
    .assert_status(204);
    let sig = h
        .write("sign/ec", json!({ "input": b64(b"m") }))
        .await
        .data()["signature"]
        .as_str()
        .unwrap()
        .to_owned();
    let raw = unb64(sig.strip_prefix("vault:v1:").unwrap());
    let vk = p256::ecdsa::VerifyingKey::from(secret.public_key());
    vk.verify(b"m", &p256::ecdsa::Signature::from_der(&raw).unwrap())
        .unwrap();
}

#[tokio::test]
async fn periodic_rotates_keys_whose_period_elapsed() {
    let h = Harness::transit();
    h.write("keys/auto", json!({ "auto_rotate_period": "1h" }))
        .await
        .assert_status(200);
    h.write("keys/manual", json!({})).await.assert_status(200);
    assert_eq!(h.read("keys/auto").await.data()["auto_rotate_period"], 3600);
    h.engine.periodic(&h.storage).await.unwrap();
    assert_eq!(
        h.read("keys/auto").await.data()["latest_version"],
        1,
        "not due yet"
    );

    h.clock.advance(Duration::from_secs(3599));
    h.engine.periodic(&h.storage).await.unwrap();
    assert_eq!(h.read("keys/auto").await.data()["latest_version"], 1);
    h.clock.advance(Duration::from_secs(1));
    h.engine.periodic(&h.storage).await.unwrap();
    assert_eq!(
        h.read("keys/auto").await.data()["latest_version"],
        2,
        "due after an hour"
    );
    h.engine.periodic(&h.storage).await.unwrap();
    assert_eq!(
        h.read("keys/auto").await.data()["latest_version"],
        2,
        "period restarts"
    );
    assert_eq!(h.read("keys/manual").await.data()["latest_version"], 1);

    h.write("keys/x", json!({ "auto_rotate_period": "10m" }))
        .await
        .assert_error(
            400,
            "auto rotate period must be 0 to disable or at least an hour",
        );
    h.write("keys/auto/config", json!({ "auto_rotate_period": 0 }))
        .await
        .assert_status(200);
    h.clock.advance(Duration::from_secs(7200));
    h.engine.periodic(&h.storage).await.unwrap();
    assert_eq!(
        h.read("keys/auto").await.data()["latest_version"],
        2,
        "disabled"
    );
}

#[tokio::test]
async fn random_and_hash() {
    let h = Harness::transit();
    let r = h.write("random/16", json!({})).await;
    r.assert_status(200);
    assert_eq!(unb64(r.data()["random_bytes"].as_str().unwrap()).len(), 16);
    let r = h.write("random/seal/8", json!({ "format": "hex" })).await;
    assert_eq!(r.data()["random_bytes"].as_str().unwrap().len(), 16);
    let r = h
        .write("random", json!({ "bytes": 4, "format": "hex" }))
        .await;
    assert_eq!(r.data()["random_bytes"].as_str().unwrap().len(), 8);
    h.write("random/99999999", json!({}))
        .await
        .assert_status(400);
    h.write("random", json!({ "format": "bin" }))
        .await
        .assert_status(400);
    h.write("random/moon/8", json!({})).await.assert_status(400);

    let abc = b64(b"abc");
    let sum = |alg: &'static str| {
        let h = &h;
        let abc = abc.clone();
        async move {
            h.write(&format!("hash/{alg}"), json!({ "input": abc }))
                .await
                .data()["sum"]
                .clone()
        }
    };
    assert_eq!(
        sum("sha2-256").await,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        sum("sha3-256").await,
        "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"
    );
    assert_eq!(
        sum("sha2-224").await,
        "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"
    );
    let b = h
        .write(
            "hash",
            json!({ "input": abc, "format": "base64", "algorithm": "sha2-512" }),
        )
        .await;
    assert_eq!(unb64(b.data()["sum"].as_str().unwrap()).len(), 64);
    h.write("hash/md5", json!({ "input": abc }))
        .await
        .assert_error(400, "unsupported algorithm md5");
    h.write("hash", json!({}))
        .await
        .assert_error(400, "input missing");
}

#[tokio::test]
async fn config_keys_disables_upsert_and_cache_config_is_validated() {
    let h = Harness::transit();
    assert_eq!(h.read("config/keys").await.data()["disable_upsert"], false);
    let r = h
        .write("config/keys", json!({ "disable_upsert": true }))
        .await;
    assert_eq!(r.data()["disable_upsert"], true);
    h.write("encrypt/new", json!({ "plaintext": b64(b"x") }))
        .await
        .assert_error(400, "encryption key not found");
    assert!(h.storage.raw("policy/new").is_none());
    h.write("config/keys", json!({ "disable_upsert": false }))
        .await
        .assert_status(200);
    h.write("encrypt/new", json!({ "plaintext": b64(b"x") }))
        .await
        .assert_status(200);

    assert_eq!(h.read("cache-config").await.data()["size"], 0);
    h.write("cache-config", json!({ "size": 5 }))
        .await
        .assert_error(400, "size must be 0 or a value greater or equal to 10");
    assert_eq!(
        h.write("cache-config", json!({ "size": 50 })).await.data()["size"],
        50
    );
    assert_eq!(h.read("cache-config").await.data()["size"], 50);
}
