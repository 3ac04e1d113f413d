//! The transit engine over raw HTTP: the rotation cycle with exact statuses, convergent
//! encryption, ciphertexts made outside Tresor, and signatures/HMACs of every type verified
//! by independent libraries (ed25519-dalek; ring for ECDSA, RSA and HMAC).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use aes_gcm::aead::{Aead, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{Server, raw};
use ring::signature::{self, UnparsedPublicKey};
use serde_json::{Value, json};

const ROOT: &str = "root";

fn b64(data: &[u8]) -> String {
    B64.encode(data)
}

async fn post(server: &Server, path: &str, body: Value) -> (u16, Value) {
    raw(
        server,
        "POST",
        &format!("transit/{path}"),
        Some(ROOT),
        Some(body),
    )
    .await
}

async fn ok(server: &Server, path: &str, body: Value) -> Value {
    let (status, reply) = post(server, path, body).await;
    assert_eq!(status, 200, "{path}: {reply}");
    reply["data"].clone()
}

async fn get(server: &Server, path: &str) -> Value {
    let (status, reply) = raw(server, "GET", &format!("transit/{path}"), Some(ROOT), None).await;
    assert_eq!(status, 200, "{path}: {reply}");
    reply["data"].clone()
}

fn start() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    (dir, server)
}

async fn mount(server: &Server) {
    let (status, reply) = raw(
        server,
        "POST",
        "sys/mounts/transit",
        Some(ROOT),
        Some(json!({ "type": "transit" })),
    )
    .await;
    assert_eq!(status, 204, "{reply}");
}

fn sig_body(sig: &str) -> Vec<u8> {
    let (_, body) = sig
        .strip_prefix("vault:v")
        .unwrap()
        .split_once(':')
        .unwrap();
    B64.decode(body).unwrap()
}

#[tokio::test]
async fn rotation_cycle_convergence_and_outside_ciphertexts() {
    let (_dir, server) = start();
    mount(&server).await;
    ok(&server, "keys/k", json!({ "exportable": true })).await;
    let pt = b64(b"row data");
    let v1 = ok(&server, "encrypt/k", json!({ "plaintext": pt })).await["ciphertext"].clone();
    ok(&server, "keys/k/rotate", json!({})).await;
    assert_eq!(
        ok(&server, "decrypt/k", json!({ "ciphertext": v1 })).await["plaintext"],
        pt.as_str()
    );
    let v2 = ok(&server, "rewrap/k", json!({ "ciphertext": v1 })).await["ciphertext"].clone();
    assert!(v2.as_str().unwrap().starts_with("vault:v2:"));
    ok(
        &server,
        "keys/k/config",
        json!({ "min_decryption_version": 2 }),
    )
    .await;
    let (status, reply) = post(&server, "decrypt/k", json!({ "ciphertext": v1 })).await;
    assert_eq!(status, 400);
    assert_eq!(
        reply["errors"][0],
        "ciphertext or signature version is disallowed by policy (too old)"
    );
    assert_eq!(
        ok(&server, "decrypt/k", json!({ "ciphertext": v2 })).await["plaintext"],
        pt.as_str()
    );

    // A ciphertext built outside Tresor from the exported key decrypts.
    let key = B64
        .decode(
            get(&server, "export/encryption-key/k/2").await["keys"]["2"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let nonce = [9u8; 12];
    let mut blob = nonce.to_vec();
    blob.extend(
        aes_gcm::Aes256Gcm::new_from_slice(&key)
            .unwrap()
            .encrypt((&nonce).into(), b"outside".as_slice())
            .unwrap(),
    );
    let outside = format!("vault:v2:{}", b64(&blob));
    assert_eq!(
        ok(&server, "decrypt/k", json!({ "ciphertext": outside })).await["plaintext"],
        b64(b"outside")
    );

    // Convergent encryption: equal plaintext and context, equal ciphertext.
    ok(
        &server,
        "keys/c",
        json!({ "derived": true, "convergent_encryption": true }),
    )
    .await;
    let ctx = b64(b"tenant-1");
    let a = ok(
        &server,
        "encrypt/c",
        json!({ "plaintext": pt, "context": ctx }),
    )
    .await["ciphertext"]
        .clone();
    let b = ok(
        &server,
        "encrypt/c",
        json!({ "plaintext": pt, "context": ctx }),
    )
    .await["ciphertext"]
        .clone();
    let other = ok(
        &server,
        "encrypt/c",
        json!({ "plaintext": pt, "context": b64(b"tenant-2") }),
    )
    .await["ciphertext"]
        .clone();
    assert_eq!(a, b);
    assert_ne!(a, other);
}

#[tokio::test]
async fn signatures_and_hmacs_verify_with_independent_libraries() {
    use ed25519_dalek::Verifier;
    use p256::pkcs8::DecodePublicKey;
    let (_dir, server) = start();
    mount(&server).await;
    let msg = b"approve deploy 42";
    let input = b64(msg);

    ok(&server, "keys/ed", json!({ "type": "ed25519" })).await;
    let public = B64
        .decode(
            get(&server, "keys/ed").await["keys"]["1"]["public_key"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&public.try_into().unwrap()).unwrap();
    let sig = ok(&server, "sign/ed", json!({ "input": input })).await["signature"]
        .as_str()
        .unwrap()
        .to_owned();
    vk.verify(
        msg,
        &ed25519_dalek::Signature::from_slice(&sig_body(&sig)).unwrap(),
    )
    .unwrap();

    for (name, key_type, alg) in [
        ("p256", "ecdsa-p256", &signature::ECDSA_P256_SHA256_ASN1),
        ("p384", "ecdsa-p384", &signature::ECDSA_P384_SHA256_ASN1),
    ] {
        ok(
            &server,
            &format!("keys/{name}"),
            json!({ "type": key_type }),
        )
        .await;
        let pem = get(&server, &format!("keys/{name}")).await["keys"]["1"]["public_key"]
            .as_str()
            .unwrap()
            .to_owned();
        let point = if name == "p256" {
            p256::PublicKey::from_public_key_pem(&pem)
                .unwrap()
                .to_sec1_bytes()
                .to_vec()
        } else {
            p384::PublicKey::from_public_key_pem(&pem)
                .unwrap()
                .to_sec1_bytes()
                .to_vec()
        };
        let sig =
            ok(&server, &format!("sign/{name}"), json!({ "input": input })).await["signature"]
                .as_str()
                .unwrap()
                .to_owned();
        UnparsedPublicKey::new(alg, &point)
            .verify(msg, &sig_body(&sig))
            .unwrap();
    }

    for key_type in ["rsa-2048", "rsa-3072", "rsa-4096"] {
        use rsa::pkcs1::EncodeRsaPublicKey;
        ok(
            &server,
            &format!("keys/{key_type}"),
            json!({ "type": key_type }),
        )
        .await;
        let pem = get(&server, &format!("export/public-key/{key_type}/1")).await["keys"]["1"]
            .as_str()
            .unwrap()
            .to_owned();
        let der = rsa::RsaPublicKey::from_public_key_pem(&pem)
            .unwrap()
            .to_pkcs1_der()
            .unwrap();
        let sig = ok(
            &server,
            &format!("sign/{key_type}"),
            json!({ "input": input, "signature_algorithm": "pkcs1v15" }),
        )
        .await["signature"]
            .as_str()
            .unwrap()
            .to_owned();
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, der.as_bytes())
            .verify(msg, &sig_body(&sig))
            .unwrap();
        let pss = ok(
            &server,
            &format!("sign/{key_type}"),
            json!({ "input": input, "salt_length": "hash" }),
        )
        .await["signature"]
            .as_str()
            .unwrap()
            .to_owned();
        UnparsedPublicKey::new(&signature::RSA_PSS_2048_8192_SHA256, der.as_bytes())
            .verify(msg, &sig_body(&pss))
            .unwrap();
    }

    ok(
        &server,
        "keys/mac",
        json!({ "type": "hmac", "key_size": 32, "exportable": true }),
    )
    .await;
    let key = B64
        .decode(
            get(&server, "export/hmac-key/mac/1").await["keys"]["1"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let mac = ok(&server, "hmac/mac", json!({ "input": input })).await["hmac"]
        .as_str()
        .unwrap()
        .to_owned();
    ring::hmac::verify(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
        msg,
        &sig_body(&mac),
    )
    .unwrap();
    assert_eq!(
        ok(
            &server,
            "verify/mac",
            json!({ "input": input, "hmac": mac })
        )
        .await["valid"],
        true
    );
}
