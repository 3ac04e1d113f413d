//! Transit: sign/verify for every asymmetric type and HMAC, each checked by an
//! independent implementation (ed25519-dalek for Ed25519; ring for ECDSA, RSA and HMAC,
//! where the engine uses RustCrypto).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::support;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, UnparsedPublicKey};
use serde_json::json;
use support::{Harness, b64, hkdf_sha256, unb64};

fn body(sig: &str, jws: bool) -> Vec<u8> {
    let (_, body) = sig
        .strip_prefix("vault:v")
        .unwrap()
        .split_once(':')
        .unwrap();
    if jws {
        URL_SAFE_NO_PAD.decode(body).unwrap()
    } else {
        unb64(body)
    }
}

async fn make(h: &Harness, name: &str, key_type: &str) -> serde_json::Value {
    let r = h
        .write(
            &format!("keys/{name}"),
            json!({ "type": key_type, "exportable": true }),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.data()["supports_signing"], true);
    r.data()["keys"]["1"].clone()
}

async fn sign(h: &Harness, path: &str, body: serde_json::Value) -> String {
    let r = h.write(path, body).await;
    r.assert_status(200);
    r.data()["signature"].as_str().unwrap().to_owned()
}

/// Asserts that `verify` answers 200 with `valid` as `expected` for `body`.
async fn assert_verify(h: &Harness, path: &str, body: serde_json::Value, expected: bool) {
    let r = h.write(path, body.clone()).await;
    r.assert_status(200);
    assert_eq!(r.data()["valid"].as_bool(), Some(expected), "{path} {body}");
}

const MSG: &[u8] = b"transfer 100 to alice";

#[tokio::test]
async fn ed25519_signatures_verify_with_ed25519_dalek_and_back() {
    use ed25519_dalek::{Signer, Verifier};
    let h = Harness::transit();
    let key = make(&h, "ed", "ed25519").await;
    assert_eq!(key["name"], "ed25519");
    let public: [u8; 32] = unb64(key["public_key"].as_str().unwrap())
        .try_into()
        .unwrap();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();

    let sig = sign(&h, "sign/ed", json!({ "input": b64(MSG) })).await;
    assert!(sig.starts_with("vault:v1:"));
    let raw: [u8; 64] = body(&sig, false).try_into().unwrap();
    vk.verify(MSG, &ed25519_dalek::Signature::from_bytes(&raw))
        .unwrap();
    assert_verify(
        &h,
        "verify/ed",
        json!({ "input": b64(MSG), "signature": sig }),
        true,
    )
    .await;
    assert_verify(
        &h,
        "verify/ed",
        json!({ "input": b64(b"other"), "signature": sig }),
        false,
    )
    .await;

    // A signature made outside with the exported key verifies in Tresor.
    let exported = h.read("export/signing-key/ed/1").await.data()["keys"]["1"]
        .as_str()
        .unwrap()
        .to_owned();
    let full = unb64(&exported);
    assert_eq!(full.len(), 64, "Go's ed25519.PrivateKey: seed ‖ public");
    let sk = ed25519_dalek::SigningKey::from_bytes(&full[..32].try_into().unwrap());
    assert_eq!(&full[32..], vk.as_bytes());
    let outside = sk.sign(b"made outside");
    let sig = format!("vault:v1:{}", b64(&outside.to_bytes()));
    assert_verify(
        &h,
        "verify/ed",
        json!({ "input": b64(b"made outside"), "signature": sig }),
        true,
    )
    .await;
}

fn ec_point(pem: &str, p384: bool) -> Vec<u8> {
    use p256::pkcs8::DecodePublicKey;
    if p384 {
        p384::PublicKey::from_public_key_pem(pem)
            .unwrap()
            .to_sec1_bytes()
            .to_vec()
    } else {
        p256::PublicKey::from_public_key_pem(pem)
            .unwrap()
            .to_sec1_bytes()
            .to_vec()
    }
}

#[tokio::test]
async fn ecdsa_signatures_verify_with_ring() {
    for (key_type, p384) in [("ecdsa-p256", false), ("ecdsa-p384", true)] {
        let h = Harness::transit();
        let key = make(&h, "ec", key_type).await;
        assert_eq!(key["name"], if p384 { "P-384" } else { "P-256" });
        let point = ec_point(key["public_key"].as_str().unwrap(), p384);

        // Default: SHA-256 digest, ASN.1 DER.
        let sig = sign(&h, "sign/ec", json!({ "input": b64(MSG) })).await;
        let alg: &dyn signature::VerificationAlgorithm = if p384 {
            &signature::ECDSA_P384_SHA256_ASN1
        } else {
            &signature::ECDSA_P256_SHA256_ASN1
        };
        UnparsedPublicKey::new(alg, &point)
            .verify(MSG, &body(&sig, false))
            .unwrap();
        assert_verify(
            &h,
            "verify/ec",
            json!({ "input": b64(MSG), "signature": sig }),
            true,
        )
        .await;

        // JWS marshaling with SHA-384 in the path.
        let sig = sign(
            &h,
            "sign/ec/sha2-384",
            json!({ "input": b64(MSG), "marshaling_algorithm": "jws" }),
        )
        .await;
        let alg: &dyn signature::VerificationAlgorithm = if p384 {
            &signature::ECDSA_P384_SHA384_FIXED
        } else {
            &signature::ECDSA_P256_SHA384_ASN1
        };
        if p384 {
            UnparsedPublicKey::new(alg, &point)
                .verify(MSG, &body(&sig, true))
                .unwrap();
        } else {
            // ring has no fixed-width P-256/SHA-384 verifier: re-encode r ‖ s as DER.
            let fixed = p256::ecdsa::Signature::from_slice(&body(&sig, true)).unwrap();
            UnparsedPublicKey::new(alg, &point)
                .verify(MSG, fixed.to_der().as_bytes())
                .unwrap();
        }
        assert_verify(
            &h,
            "verify/ec/sha2-384",
            json!({ "input": b64(MSG), "signature": sig, "marshaling_algorithm": "jws" }),
            true,
        )
        .await;

        // Prehashed: the input is the digest.
        let digest = ring::digest::digest(&ring::digest::SHA256, MSG);
        let sig = sign(
            &h,
            "sign/ec",
            json!({ "input": b64(digest.as_ref()), "prehashed": true }),
        )
        .await;
        let alg: &dyn signature::VerificationAlgorithm = if p384 {
            &signature::ECDSA_P384_SHA256_ASN1
        } else {
            &signature::ECDSA_P256_SHA256_ASN1
        };
        UnparsedPublicKey::new(alg, &point)
            .verify(MSG, &body(&sig, false))
            .unwrap();
        assert_verify(
            &h,
            "verify/ec",
            json!({ "input": b64(b"tampered"), "signature": sig }),
            false,
        )
        .await;
    }
}

fn rsa_pkcs1_der(pem: &str) -> Vec<u8> {
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;
    rsa::RsaPublicKey::from_public_key_pem(pem)
        .unwrap()
        .to_pkcs1_der()
        .unwrap()
        .as_bytes()
        .to_vec()
}

#[tokio::test]
async fn rsa_signatures_verify_with_ring() {
    for key_type in ["rsa-2048", "rsa-3072", "rsa-4096"] {
        let h = Harness::transit();
        let key = make(&h, "rsa", key_type).await;
        assert_eq!(key["name"], key_type);
        let der = rsa_pkcs1_der(key["public_key"].as_str().unwrap());

        let sig = sign(
            &h,
            "sign/rsa",
            json!({ "input": b64(MSG), "signature_algorithm": "pkcs1v15" }),
        )
        .await;
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &der)
            .verify(MSG, &body(&sig, false))
            .unwrap();
        assert_verify(
            &h,
            "verify/rsa",
            json!({ "input": b64(MSG), "signature": sig, "signature_algorithm": "pkcs1v15" }),
            true,
        )
        .await;

        // PSS with salt length = hash length (what ring verifies).
        let sig = sign(
            &h,
            "sign/rsa/sha2-512",
            json!({ "input": b64(MSG), "salt_length": "hash" }),
        )
        .await;
        UnparsedPublicKey::new(&signature::RSA_PSS_2048_8192_SHA512, &der)
            .verify(MSG, &body(&sig, false))
            .unwrap();
        assert_verify(
            &h,
            "verify/rsa/sha2-512",
            json!({ "input": b64(MSG), "signature": sig }),
            true,
        )
        .await;

        // Default PSS uses the maximum salt length, as Go's PSSSaltLengthAuto; still verifies.
        let sig = sign(&h, "sign/rsa", json!({ "input": b64(MSG) })).await;
        assert_verify(
            &h,
            "verify/rsa",
            json!({ "input": b64(MSG), "signature": sig }),
            true,
        )
        .await;
        assert_verify(
            &h,
            "verify/rsa",
            json!({ "input": b64(b"x"), "signature": sig }),
            false,
        )
        .await;
    }
}

#[tokio::test]
async fn hmac_verifies_with_ring_and_verify_endpoint() {
    let h = Harness::transit();
    h.write(
        "keys/h",
        json!({ "type": "hmac", "exportable": true, "key_size": 64 }),
    )
    .await
    .assert_status(200);
    h.write("keys/a", json!({ "exportable": true }))
        .await
        .assert_status(200);
    for name in ["h", "a"] {
        let key = unb64(
            h.read(&format!("export/hmac-key/{name}/1")).await.data()["keys"]["1"]
                .as_str()
                .unwrap(),
        );
        for (alg, ring_alg) in [
            ("sha2-256", ring::hmac::HMAC_SHA256),
            ("sha2-512", ring::hmac::HMAC_SHA512),
        ] {
            let r = h
                .write(&format!("hmac/{name}/{alg}"), json!({ "input": b64(MSG) }))
                .await;
            r.assert_status(200);
            let mac = r.data()["hmac"].as_str().unwrap().to_owned();
            ring::hmac::verify(
                &ring::hmac::Key::new(ring_alg, &key),
                MSG,
                &body(&mac, false),
            )
            .unwrap();
            assert_verify(
                &h,
                &format!("verify/{name}/{alg}"),
                json!({ "input": b64(MSG), "hmac": mac }),
                true,
            )
            .await;
            assert_verify(
                &h,
                &format!("verify/{name}/{alg}"),
                json!({ "input": b64(b"no"), "hmac": mac }),
                false,
            )
            .await;
        }
    }
    // Batch HMAC with references.
    let r = h
        .write("hmac/h", json!({ "batch_input": [{ "input": b64(b"1"), "reference": "x" }, { "input": "!!", "reference": "y" }] }))
        .await;
    r.assert_status(200);
    assert_eq!(r.data()["batch_results"][0]["reference"], "x");
    assert!(
        r.data()["batch_results"][0]["hmac"]
            .as_str()
            .unwrap()
            .starts_with("vault:v1:")
    );
    assert_eq!(r.data()["batch_results"][1]["reference"], "y");
    assert!(
        r.data()["batch_results"][1]["error"]
            .as_str()
            .unwrap()
            .starts_with("unable to decode input as base64")
    );
    h.write("hmac/h/md5", json!({ "input": b64(MSG) }))
        .await
        .assert_error(400, "unsupported algorithm \"md5\"");
}

#[tokio::test]
async fn sign_and_verify_batches_and_errors() {
    let h = Harness::transit();
    make(&h, "ed", "ed25519").await;
    let r = h
        .write(
            "sign/ed",
            json!({ "batch_input": [
                { "input": b64(b"a"), "reference": "1" },
                { "input": "%%", "reference": "2" },
            ]}),
        )
        .await;
    r.assert_status(200);
    let res = r.data()["batch_results"].as_array().unwrap().clone();
    assert_eq!(res[0]["reference"], "1");
    assert!(res[1]["error"].is_string());
    let v = h
        .write(
            "verify/ed",
            json!({ "batch_input": [
                { "input": b64(b"a"), "signature": res[0]["signature"], "reference": "ok" },
                { "input": b64(b"b"), "signature": res[0]["signature"], "reference": "bad" },
            ]}),
        )
        .await;
    v.assert_status(200);
    assert_eq!(v.data()["batch_results"][0]["valid"], true);
    assert_eq!(v.data()["batch_results"][1]["valid"], false);
    assert_eq!(v.data()["batch_results"][1]["reference"], "bad");

    h.write("keys/aes", json!({})).await.assert_status(200);
    h.write("sign/aes", json!({ "input": b64(MSG) }))
        .await
        .assert_error(400, "key type aes256-gcm96 does not support signing");
    h.write("sign/nope", json!({ "input": b64(MSG) }))
        .await
        .assert_error(400, "signing key not found");
    h.write("verify/ed", json!({ "input": b64(MSG) }))
        .await
        .assert_error(
            400,
            "neither a 'signature' nor an 'hmac' were given to verify",
        );
    h.write(
        "verify/ed",
        json!({ "input": b64(MSG), "signature": "vault:v1:AA", "hmac": "vault:v1:AA" }),
    )
    .await
    // Both given: OpenBao 2.7 checks the signature.
    .assert_error(400, "invalid base64 signature value");
    h.write(
        "verify/ed",
        json!({ "input": b64(MSG), "signature": "vault:v7:AA" }),
    )
    .await
    .assert_error(400, "invalid signature: version is too new");
    h.write(
        "sign/ed",
        json!({ "input": b64(MSG), "marshaling_algorithm": "xml" }),
    )
    .await
    .assert_error(400, "invalid marshaling type \"xml\"");
}

#[tokio::test]
async fn derived_ed25519_keys_sign_with_a_per_context_key() {
    use ed25519_dalek::Verifier;
    let h = Harness::transit();
    h.write(
        "keys/dk",
        json!({ "type": "ed25519", "derived": true, "exportable": true }),
    )
    .await
    .assert_status(200);
    assert_eq!(
        h.read("keys/dk").await.data()["keys"]["1"]["public_key"],
        ""
    );
    let ctx = b"tenant-7";
    let r = h
        .write("sign/dk", json!({ "input": b64(MSG), "context": b64(ctx) }))
        .await;
    r.assert_status(200);
    let sig = r.data()["signature"].as_str().unwrap().to_owned();
    let public = unb64(r.data()["public_key"].as_str().unwrap());

    // Independently: seed = HKDF-SHA256(stored seed, info = context).
    let exported = unb64(
        h.read("export/signing-key/dk/1").await.data()["keys"]["1"]
            .as_str()
            .unwrap(),
    );
    let seed: [u8; 32] = exported[..32].try_into().unwrap();
    let sk = ed25519_dalek::SigningKey::from_bytes(&hkdf_sha256(&seed, ctx));
    assert_eq!(sk.verifying_key().as_bytes().as_slice(), public.as_slice());
    let raw: [u8; 64] = body(&sig, false).try_into().unwrap();
    sk.verifying_key()
        .verify(MSG, &ed25519_dalek::Signature::from_bytes(&raw))
        .unwrap();
    let read = h
        .call_q(
            tresor_sdk::engine::Operation::Read,
            "keys/dk",
            &[("context", &b64(ctx))],
        )
        .await;
    assert_eq!(read.data()["keys"]["1"]["public_key"], b64(&public));

    assert_verify(
        &h,
        "verify/dk",
        json!({ "input": b64(MSG), "signature": sig, "context": b64(ctx) }),
        true,
    )
    .await;
    assert_verify(
        &h,
        "verify/dk",
        json!({ "input": b64(MSG), "signature": sig, "context": b64(b"other") }),
        false,
    )
    .await;
    h.write("sign/dk", json!({ "input": b64(MSG) }))
        .await
        .assert_status(400);
    h.write("keys/no", json!({ "type": "ecdsa-p256", "derived": true }))
        .await
        .assert_error(
            400,
            "key derivation and convergent encryption not supported for keys of type ecdsa-p256",
        );
    h.write(
        "keys/no",
        json!({ "type": "ed25519", "derived": true, "convergent_encryption": true }),
    )
    .await
    .assert_error(
        400,
        "convergent encryption not supported for keys of type ed25519",
    );
}
