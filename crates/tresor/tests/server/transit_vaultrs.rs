//! The transit engine over real HTTP: vaultrs for every operation it has, raw requests where
//! the exact body or status matters, and the worked example of docs/transit.md (the seeds'
//! "master key that must never rotate" imported, rotated and retired).
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
use common::{Server, raw, vault_client};
use serde_json::json;
use vaultrs::api::transit::KeyType;
use vaultrs::api::transit::OutputFormat;
use vaultrs::api::transit::requests::{
    CreateKeyRequest, DataKeyType, DecryptDataRequest, EncryptDataRequest, ExportKeyType,
    ExportVersion, ImportKeyRequest, RandomBytesSource, UpdateKeyConfigurationRequest,
};
use vaultrs::api::transit::responses::ReadKeyData;
use vaultrs::client::VaultClient;
use vaultrs::error::ClientError;
use vaultrs::transit::{data, generate, key};

const ROOT: &str = "root";
const MOUNT: &str = "transit";

fn b64(data: &[u8]) -> String {
    B64.encode(data)
}

async fn start() -> (tempfile::TempDir, Server, VaultClient) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let client = vault_client(&server.addr, ROOT);
    vaultrs::sys::mount::enable(&client, MOUNT, "transit", None)
        .await
        .unwrap();
    (dir, server, client)
}

fn api_error(err: ClientError) -> (u16, Vec<String>) {
    match err {
        ClientError::APIError { code, errors } => (code, errors),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// The application's table before the migration: each row is AES-256-GCM under the master
/// key, stored as nonce ‖ ciphertext ‖ tag (as the seeds' token vault does).
fn legacy_rows(master: &[u8; 32], tokens: &[&str]) -> Vec<Vec<u8>> {
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(master).unwrap();
    tokens
        .iter()
        .enumerate()
        .map(|(i, token)| {
            let mut nonce = [0u8; 12];
            nonce[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            let mut row = nonce.to_vec();
            row.extend(cipher.encrypt((&nonce).into(), token.as_bytes()).unwrap());
            row
        })
        .collect()
}

/// BYOK wrapping as Vault documents it: RSA-OAEP-SHA256(ephemeral AES-256 key) ‖
/// AES-KWP(ephemeral, target key).
fn wrap_for_import(wrapping_pem: &str, target: &[u8]) -> String {
    use rsa::pkcs8::DecodePublicKey;
    let wrapping = rsa::RsaPublicKey::from_public_key_pem(wrapping_pem).unwrap();
    let mut ephemeral = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut ephemeral);
    let mut blob = wrapping
        .encrypt(
            &mut rand_core::OsRng,
            rsa::Oaep::new::<sha2::Sha256>(),
            &ephemeral,
        )
        .unwrap();
    blob.extend(
        aes_kw::KekAes256::from(ephemeral)
            .wrap_with_padding_vec(target)
            .unwrap(),
    );
    b64(&blob)
}

#[tokio::test]
async fn the_master_key_that_must_never_rotate_becomes_rotatable() {
    let (_dir, server, client) = start().await;
    let master = [0x42u8; 32];
    let tokens = ["ghp_github_pat", "xoxb-slack-bot", "AKIA-bedrock-key"];
    let rows = legacy_rows(&master, &tokens);

    // 1. Import the existing 32-byte key (BYOK).
    let (status, wk) = raw(&server, "GET", "transit/wrapping_key", Some(ROOT), None).await;
    assert_eq!(status, 200);
    let pem = wk["data"]["public_key"].as_str().unwrap();
    key::import(
        &client,
        MOUNT,
        "agent-tokens",
        Some(
            ImportKeyRequest::builder()
                .ciphertext(wrap_for_import(pem, &master))
                .key_type(KeyType::Aes256Gcm96)
                .allow_rotation(true),
        ),
    )
    .await
    .unwrap();

    // 2. Rows encrypted the old way decrypt as `vault:v1:` ciphertexts.
    let old: Vec<String> = rows
        .iter()
        .map(|r| format!("vault:v1:{}", b64(r)))
        .collect();
    for (ct, token) in old.iter().zip(tokens) {
        let plain = data::decrypt(&client, MOUNT, "agent-tokens", ct, None)
            .await
            .unwrap();
        assert_eq!(B64.decode(plain.plaintext).unwrap(), token.as_bytes());
    }

    // 3. Rotate, then 4. rewrap every row.
    key::rotate(&client, MOUNT, "agent-tokens").await.unwrap();
    let mut new = Vec::new();
    for ct in &old {
        let rewrapped = data::rewrap(&client, MOUNT, "agent-tokens", ct, None)
            .await
            .unwrap();
        assert!(rewrapped.ciphertext.starts_with("vault:v2:"));
        new.push(rewrapped.ciphertext);
    }

    // 5. Retire the old key version.
    key::update(
        &client,
        MOUNT,
        "agent-tokens",
        Some(UpdateKeyConfigurationRequest::builder().min_decryption_version(2u64)),
    )
    .await
    .unwrap();
    for ct in &old {
        let err = data::decrypt(&client, MOUNT, "agent-tokens", ct, None)
            .await
            .unwrap_err();
        assert_eq!(
            api_error(err),
            (
                400,
                vec![
                    "ciphertext or signature version is disallowed by policy (too old)".to_owned()
                ]
            )
        );
    }
    for (ct, token) in new.iter().zip(tokens) {
        let plain = data::decrypt(&client, MOUNT, "agent-tokens", ct, None)
            .await
            .unwrap();
        assert_eq!(B64.decode(plain.plaintext).unwrap(), token.as_bytes());
    }
    let read = key::read(&client, MOUNT, "agent-tokens").await.unwrap();
    assert_eq!(read.min_decryption_version, 2);
}

#[tokio::test]
async fn every_operation_through_vaultrs() {
    let (_dir, server, client) = start().await;
    key::create(
        &client,
        MOUNT,
        "k",
        Some(
            CreateKeyRequest::builder()
                .exportable(true)
                .allow_plaintext_backup(true),
        ),
    )
    .await
    .unwrap();
    let read = key::read(&client, MOUNT, "k").await.unwrap();
    assert!(read.exportable && read.supports_encryption);
    assert!(matches!(read.keys, ReadKeyData::Symmetric(ref m) if m.contains_key("1")));
    assert_eq!(
        key::list(&client, MOUNT).await.unwrap().keys,
        vec!["k".to_owned()]
    );

    let plaintext = b64(b"hello transit");
    let ct = data::encrypt(
        &client,
        MOUNT,
        "k",
        &plaintext,
        Some(EncryptDataRequest::builder().associated_data(b64(b"aad"))),
    )
    .await
    .unwrap()
    .ciphertext;
    let pt = data::decrypt(
        &client,
        MOUNT,
        "k",
        &ct,
        Some(DecryptDataRequest::builder().associated_data(b64(b"aad"))),
    )
    .await
    .unwrap();
    assert_eq!(pt.plaintext, plaintext);

    // The exported key decrypts a Tresor ciphertext outside Tresor.
    let exported = key::export(
        &client,
        MOUNT,
        "k",
        ExportKeyType::EncryptionKey,
        ExportVersion::Latest,
    )
    .await
    .unwrap();
    let raw_key = B64.decode(&exported.keys["1"]).unwrap();
    let blob = B64.decode(ct.strip_prefix("vault:v1:").unwrap()).unwrap();
    let opened = aes_gcm::Aes256Gcm::new_from_slice(&raw_key)
        .unwrap()
        .decrypt(
            (&blob[..12]).into(),
            aes_gcm::aead::Payload {
                msg: &blob[12..],
                aad: b"aad",
            },
        )
        .unwrap();
    assert_eq!(opened, b"hello transit");

    let dk = generate::data_key(&client, MOUNT, "k", DataKeyType::Plaintext, None)
        .await
        .unwrap();
    assert_eq!(B64.decode(dk.plaintext.unwrap()).unwrap().len(), 32);
    let mac = generate::hmac(&client, MOUNT, "k", &plaintext, None)
        .await
        .unwrap();
    assert!(mac.hmac.starts_with("vault:v1:"));
    let random = generate::random_bytes(
        &client,
        MOUNT,
        OutputFormat::Hex,
        RandomBytesSource::Platform,
        None,
    )
    .await
    .unwrap();
    assert_eq!(random.random_bytes.len(), 64);
    let sum = generate::hash(&client, MOUNT, &b64(b"abc"), None)
        .await
        .unwrap();
    assert_eq!(
        sum.sum,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );

    key::create(
        &client,
        MOUNT,
        "signer",
        Some(CreateKeyRequest::builder().key_type(KeyType::Ed25519)),
    )
    .await
    .unwrap();
    let sig = data::sign(&client, MOUNT, "signer", &plaintext, None)
        .await
        .unwrap()
        .signature;
    assert!(
        data::verify(
            &client,
            MOUNT,
            "signer",
            &plaintext,
            Some(
                vaultrs::api::transit::requests::VerifySignedDataRequest::builder()
                    .signature(sig.clone())
            )
        )
        .await
        .unwrap()
        .valid
    );

    let backup = key::backup(&client, MOUNT, "k").await.unwrap().backup;
    key::update(
        &client,
        MOUNT,
        "k",
        Some(UpdateKeyConfigurationRequest::builder().deletion_allowed(true)),
    )
    .await
    .unwrap();
    key::delete(&client, MOUNT, "k").await.unwrap();
    assert_eq!(
        api_error(key::read(&client, MOUNT, "k").await.unwrap_err()).0,
        404
    );
    key::restore(&client, MOUNT, &backup, None).await.unwrap();
    assert_eq!(
        data::decrypt(
            &client,
            MOUNT,
            "k",
            &ct,
            Some(DecryptDataRequest::builder().associated_data(b64(b"aad")))
        )
        .await
        .unwrap()
        .plaintext,
        plaintext
    );

    key::rotate(&client, MOUNT, "k").await.unwrap();
    key::update(
        &client,
        MOUNT,
        "k",
        Some(
            UpdateKeyConfigurationRequest::builder()
                .min_decryption_version(2u64)
                .min_encryption_version(2u64),
        ),
    )
    .await
    .unwrap();
    key::trim(&client, MOUNT, "k", 2).await.unwrap();
    let (status, body) = raw(&server, "GET", "transit/keys/k", Some(ROOT), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["min_available_version"], 2);
    assert_eq!(body["data"]["keys"].as_object().unwrap().len(), 1);
}

#[tokio::test]
async fn raw_http_batches_statuses_and_upsert_capabilities() {
    let (_dir, server, _client) = start().await;
    // A batch with a bad item: 400, per-item error, good results kept.
    let (status, body) = raw(
        &server,
        "POST",
        "transit/encrypt/batch",
        Some(ROOT),
        Some(json!({ "batch_input": [
            { "plaintext": b64(b"a"), "reference": "first" },
            { "plaintext": "***", "reference": "second" },
        ]})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let results = body["data"]["batch_results"].as_array().unwrap();
    assert!(
        results[0]["ciphertext"]
            .as_str()
            .unwrap()
            .starts_with("vault:v1:")
    );
    assert_eq!(results[0]["reference"], "first");
    assert!(results[1]["error"].is_string());
    assert_eq!(results[1]["reference"], "second");

    // LIST over HTTP, and a missing key's read.
    let (status, body) = raw(&server, "LIST", "transit/keys", Some(ROOT), None).await;
    assert_eq!(
        (status, body["data"]["keys"].clone()),
        (200, json!(["batch"]))
    );
    let (status, _) = raw(&server, "GET", "transit/keys/none", Some(ROOT), None).await;
    assert_eq!(status, 404);

    // Upsert needs `create`: a token with only `update` cannot make a key by encrypting.
    let (status, _) = raw(
        &server,
        "POST",
        "sys/policies/acl/enc-update",
        Some(ROOT),
        Some(json!({ "policy": "path \"transit/encrypt/*\" { capabilities = [\"update\"] }" })),
    )
    .await;
    assert_eq!(status, 204);
    let (_, token) = raw(
        &server,
        "POST",
        "auth/token/create",
        Some(ROOT),
        Some(json!({ "policies": ["enc-update"] })),
    )
    .await;
    let token = token["auth"]["client_token"].as_str().unwrap().to_owned();
    let (status, _) = raw(
        &server,
        "POST",
        "transit/encrypt/fresh",
        Some(&token),
        Some(json!({ "plaintext": b64(b"x") })),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = raw(
        &server,
        "POST",
        "transit/encrypt/batch",
        Some(&token),
        Some(json!({ "plaintext": b64(b"x") })),
    )
    .await;
    assert_eq!(status, 200, "an existing key only needs update");
    let (status, _) = raw(
        &server,
        "POST",
        "transit/encrypt/fresh",
        Some(ROOT),
        Some(json!({ "plaintext": b64(b"x") })),
    )
    .await;
    assert_eq!(status, 200, "root may create");

    // Hostile input over HTTP: clean 4xx with the errors envelope.
    for (path, body) in [
        ("transit/decrypt/batch", json!({ "ciphertext": "vault:v0" })),
        ("transit/keys/x", json!({ "type": "des" })),
        ("transit/datakey/plaintext/batch", json!({ "bits": 99999 })),
        ("transit/random/999999999", json!({})),
    ] {
        let (status, reply) = raw(&server, "POST", path, Some(ROOT), Some(body)).await;
        assert_eq!(status, 400, "{path}: {reply}");
        assert!(
            reply["errors"].as_array().is_some_and(|e| !e.is_empty()),
            "{path}: {reply}"
        );
    }
    let (status, _) = raw(
        &server,
        "POST",
        "transit/keys/a%2F..%2Fb",
        Some(ROOT),
        Some(json!({})),
    )
    .await;
    assert!((400..500).contains(&status));
}
