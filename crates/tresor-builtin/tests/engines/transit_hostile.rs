//! Transit: malformed, oversized and hostile input gets a clean 4xx and writes nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::support;

use serde_json::{Value, json};
use support::{Harness, b64, unb64};
use tresor_sdk::engine::Operation;

async fn ready() -> Harness {
    let h = Harness::transit();
    h.write("keys/k", json!({})).await.assert_status(200);
    h
}

#[tokio::test]
async fn malformed_ciphertexts_are_400s() {
    let h = ready().await;
    let good = h
        .write("encrypt/k", json!({ "plaintext": b64(b"x") }))
        .await
        .data()["ciphertext"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = good.strip_prefix("vault:v1:").unwrap();
    let cases = [
        ("nope", "invalid ciphertext: no prefix"),
        ("vault:1:AAAA", "invalid ciphertext: no prefix"),
        ("vault:v1", "invalid ciphertext: wrong number of fields"),
        (
            "vault:vX:AAAA",
            "invalid ciphertext: version number could not be decoded",
        ),
        (
            "vault:v-1:AAAA",
            "invalid ciphertext: version number could not be decoded",
        ),
        (
            "vault:v99999999999999999999:AAAA",
            "invalid ciphertext: version number could not be decoded",
        ),
        ("vault:v2:AAAA", "invalid ciphertext: version is too new"),
        (
            "vault:v1:!!!!",
            "invalid ciphertext: could not decode base64",
        ),
        ("vault:v1:AAAA", "invalid ciphertext length"),
        (
            "vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "cipher: message authentication failed",
        ),
    ];
    for (ct, message) in cases {
        h.write("decrypt/k", json!({ "ciphertext": ct }))
            .await
            .assert_error(400, message);
    }
    // Version 0 means 1 (Vault's earliest keys were numbered from zero).
    let v0 = format!("vault:v0:{body}");
    assert_eq!(
        h.write("decrypt/k", json!({ "ciphertext": v0 }))
            .await
            .data()["plaintext"],
        b64(b"x")
    );
    h.write("decrypt/k", json!({}))
        .await
        .assert_error(400, "missing ciphertext to decrypt");
    h.write("decrypt/none", json!({ "ciphertext": good }))
        .await
        .assert_error(400, "encryption key not found");
    h.write("decrypt/k", json!({ "ciphertext": good, "context": "%%%" }))
        .await
        .assert_status(400);
}

#[tokio::test]
async fn malformed_requests_write_nothing() {
    let h = ready().await;
    let before = h.storage.snapshot();
    let cases: Vec<(&str, Value)> = vec![
        ("keys/t", json!({ "type": "rot13" })),
        ("keys/t", json!({ "type": "hmac", "key_size": 100_000 })),
        ("keys/t", json!({ "key_size": 64 })),
        ("keys/t", json!({ "derived": "maybe" })),
        ("keys/t", json!({ "type": ["aes256-gcm96"] })),
        ("keys/t", json!({ "auto_rotate_period": "forever" })),
        ("keys/t", json!({ "type": "rsa-2048", "derived": true })),
        ("keys/k/config", json!({ "min_decryption_version": 5 })),
        ("keys/k/config", json!({ "min_decryption_version": -1 })),
        ("keys/k/config", json!({ "min_encryption_version": "x" })),
        ("keys/k/config", json!({ "auto_rotate_period": 5 })),
        ("keys/none/config", json!({ "deletion_allowed": true })),
        ("keys/none/rotate", json!({})),
        ("keys/k/trim", json!({})),
        ("encrypt/k", json!({})),
        ("encrypt/k", json!({ "plaintext": { "nested": true } })),
        ("encrypt/k", json!({ "plaintext": "not base64" })),
        (
            "encrypt/k",
            json!({ "plaintext": b64(b"x"), "key_version": -1 }),
        ),
        (
            "encrypt/k",
            json!({ "plaintext": b64(b"x"), "key_version": "1.5" }),
        ),
        ("encrypt/k", json!({ "batch_input": [] })),
        ("encrypt/k", json!({ "batch_input": "nope" })),
        ("encrypt/k", json!({ "batch_input": [1, 2] })),
        (
            "encrypt/k",
            json!({ "batch_input": [{ "plaintext": [1] }] }),
        ),
        ("datakey/plaintext/k", json!({ "bits": 7 })),
        ("datakey/plaintext/k", json!({ "bits": "lots" })),
        ("hmac/k", json!({})),
        ("sign/k", json!({ "input": b64(b"x") })),
        ("keys/k/import", json!({ "ciphertext": "AAAA" })),
    ];
    for (path, body) in cases {
        let r = h.write(path, body.clone()).await;
        assert!((400..500).contains(&r.status), "{path} {body}: {r:?}");
        assert!(!r.errors().is_empty() || r.status == 400, "{path}: {r:?}");
    }
    assert_eq!(
        before,
        h.storage.snapshot(),
        "a failed request wrote something"
    );
}

#[tokio::test]
async fn hostile_names_and_paths_do_not_route() {
    let h = ready().await;
    for path in [
        "keys/../k",
        "keys/..",
        "keys/a/b/c",
        "keys/.hidden",
        "keys/k%2F..",
        "encrypt/..",
        "encrypt/a b",
        "export/encryption-key/../k",
        "keys/k/unknown",
        "nothing/here",
    ] {
        let r = h.write(path, json!({ "plaintext": b64(b"x") })).await;
        assert!((400..500).contains(&r.status), "{path}: {r:?}");
    }
    assert_eq!(h.storage.keys(), vec!["policy/k".to_owned()]);
    // Wrong operations on real paths are 405s.
    h.call(Operation::Read, "encrypt/k", Value::Null)
        .await
        .assert_status(405);
    h.call(Operation::Delete, "keys/k/rotate", Value::Null)
        .await
        .assert_status(405);
}

#[tokio::test]
async fn huge_batches_are_refused_before_any_work() {
    let h = ready().await;
    let items: Vec<Value> = (0..25_001).map(|_| json!({ "plaintext": "" })).collect();
    let r = h.write("encrypt/k", json!({ "batch_input": items })).await;
    r.assert_error(
        400,
        "batch input has 25001 items; at most 25000 are allowed",
    );
    // A large plaintext is fine (the HTTP layer bounds the body size).
    let big = vec![0u8; 1 << 20];
    let r = h
        .write("encrypt/k", json!({ "plaintext": b64(&big) }))
        .await;
    r.assert_status(200);
}

#[tokio::test]
async fn errors_never_echo_secret_input() {
    let h = ready().await;
    let secret = "c3VwZXJzZWNyZXQ=!";
    for path in ["encrypt/k", "decrypt/k", "hmac/k"] {
        let r = h
            .write(
                path,
                json!({ "plaintext": secret, "ciphertext": secret, "input": secret }),
            )
            .await;
        let text = r.body.to_string();
        assert!(
            !text.contains("c3VwZXJzZWNyZXQ"),
            "{path} echoed input: {text}"
        );
    }
}

#[tokio::test]
async fn debug_output_of_the_engine_shows_no_key_material() {
    let h = Harness::transit();
    h.write("keys/k", json!({ "exportable": true }))
        .await
        .assert_status(200);
    h.write("encrypt/k", json!({ "plaintext": b64(b"warm the cache") }))
        .await
        .assert_status(200);
    let debug = format!("{:?}", h.engine);
    for kind in ["encryption-key", "hmac-key"] {
        let exported = h.read(&format!("export/{kind}/k/1")).await.data()["keys"]["1"]
            .as_str()
            .unwrap()
            .to_owned();
        let bytes = unb64(&exported);
        // Neither the base64 form nor Rust's `[1, 2, …]` rendering of the first bytes.
        let rendered = format!("{:?}", &bytes[..6]);
        let prefix = rendered.trim_end_matches(']');
        assert!(!debug.contains(&exported), "{kind} in Debug output");
        assert!(
            !debug.contains(prefix),
            "{kind} bytes in Debug output: {debug}"
        );
    }
    assert!(debug.contains("[redacted]"));
}

#[tokio::test]
async fn absurd_signing_parameters_are_clean_errors() {
    let h = Harness::transit();
    h.write("keys/r", json!({ "type": "rsa-2048" }))
        .await
        .assert_status(200);
    let sig = h
        .write("sign/r", json!({ "input": b64(b"m") }))
        .await
        .data()["signature"]
        .as_str()
        .unwrap()
        .to_owned();
    for salt in ["100000", "9223372036854775807", "-5", "x"] {
        let s = h
            .write("sign/r", json!({ "input": b64(b"m"), "salt_length": salt }))
            .await;
        assert_eq!(s.status, 400, "sign salt {salt}: {s:?}");
        let v = h
            .write(
                "verify/r",
                json!({ "input": b64(b"m"), "signature": sig, "salt_length": salt }),
            )
            .await;
        assert!(
            v.status == 400 || v.data()["valid"] == false,
            "verify salt {salt}: {v:?}"
        );
    }
    // Garbage signatures of every shape are simply invalid.
    for body in ["", "AA==", &"A".repeat(4096)] {
        let v = h
            .write(
                "verify/r",
                json!({ "input": b64(b"m"), "signature": format!("vault:v1:{body}") }),
            )
            .await;
        assert!(v.status == 400 || v.data()["valid"] == false, "{v:?}");
    }
    h.write("keys/e", json!({ "type": "ecdsa-p384" }))
        .await
        .assert_status(200);
    for marshaling in ["asn1", "jws"] {
        let v = h
            .write(
                "verify/e",
                json!({ "input": b64(b"m"), "signature": "vault:v1:AAAA", "marshaling_algorithm": marshaling }),
            )
            .await;
        assert_eq!(v.data()["valid"], false, "{v:?}");
    }
    // A short "digest" is a small number to Go's ECDSA: signed like OpenBao, not refused.
    let short = h
        .write("sign/e", json!({ "input": b64(b"m"), "prehashed": true }))
        .await;
    short.assert_status(200);
    let v = h
        .write(
            "verify/e",
            json!({ "input": b64(b"m"), "prehashed": true, "signature": short.data()["signature"] }),
        )
        .await;
    assert_eq!(v.data()["valid"], true);
}

#[tokio::test]
async fn rsa_plaintext_too_long_for_oaep_is_a_400() {
    let h = Harness::transit();
    h.write("keys/r", json!({ "type": "rsa-2048" }))
        .await
        .assert_status(200);
    // OAEP-SHA256 with a 2048-bit key carries at most 190 bytes.
    h.write("encrypt/r", json!({ "plaintext": b64(&[1u8; 190]) }))
        .await
        .assert_status(200);
    let r = h
        .write("encrypt/r", json!({ "plaintext": b64(&[1u8; 191]) }))
        .await;
    r.assert_status(400);
    assert!(r.errors()[0].starts_with("failed to RSA encrypt the plaintext"));
}
