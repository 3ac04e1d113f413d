//! Bring your own key: `wrapping_key`, `keys/:name/import`, `keys/:name/import_version`.
//!
//! As Vault documents: the mount has one RSA-4096 wrapping key. The caller makes an
//! ephemeral AES-256 key, wraps the target key with it using AES-KWP (RFC 5649), encrypts
//! the ephemeral key with RSA-OAEP (SHA-256 unless `hash_function` says otherwise) under
//! the wrapping key, and sends `base64(oaep ‖ kwp)`. Symmetric and HMAC keys travel as raw
//! bytes, asymmetric ones as PKCS#8 DER.

use std::sync::Arc;

use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::json;
use tresor_sdk::engine::{EngineError, EngineResult, Request, Response};
use tresor_sdk::storage::Storage;
use zeroize::Zeroizing;

use super::Transit;
use super::keys::NewKey;
use super::keytype::KeyType;
use super::material::{Material, Secret, base64_decode};
use super::policy::{StoredKey, StoredVersion};
use super::req::{self, bad, object, respond};
use super::store::material_error;

const WRAPPING_KEY_PATH: &str = "config/wrapping-key";
/// RSA-4096: the OAEP block that carries the ephemeral key is 512 bytes.
const WRAPPING_BITS: usize = 4096;
const ENCRYPTED_KEY_BYTES: usize = WRAPPING_BITS / 8;

/// The mount's BYOK wrapping key.
pub(crate) struct WrappingKey {
    key: rsa::RsaPrivateKey,
}

impl std::fmt::Debug for WrappingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WrappingKey([redacted])")
    }
}

async fn wrapping(transit: &Transit, storage: &dyn Storage) -> EngineResult<Arc<WrappingKey>> {
    let mut slot = transit.wrapping.lock().await;
    if let Some(key) = slot.as_ref() {
        return Ok(key.clone());
    }
    let key = match storage.get(WRAPPING_KEY_PATH).await? {
        Some(der) => rsa::RsaPrivateKey::from_pkcs8_der(der.expose())
            .map_err(|e| EngineError::Internal(format!("stored wrapping key: {e}")))?,
        None => {
            let key = tokio::task::spawn_blocking(|| {
                rsa::RsaPrivateKey::new(&mut rand_core::OsRng, WRAPPING_BITS)
            })
            .await
            .map_err(|e| EngineError::Internal(format!("key generation task: {e}")))?
            .map_err(|e| EngineError::Internal(format!("wrapping key generation: {e}")))?;
            let der = key
                .to_pkcs8_der()
                .map_err(|e| EngineError::Internal(format!("encoding wrapping key: {e}")))?;
            storage.put(WRAPPING_KEY_PATH, der.as_bytes()).await?;
            key
        }
    };
    let key = Arc::new(WrappingKey { key });
    *slot = Some(key.clone());
    Ok(key)
}

pub(crate) async fn wrapping_key(
    transit: &Transit,
    storage: &dyn Storage,
) -> EngineResult<Option<Response>> {
    let key = wrapping(transit, storage).await?;
    let pem = key
        .key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| EngineError::Internal(format!("encoding wrapping key: {e}")))?;
    respond(object(json!({ "public_key": pem })))
}

fn oaep(hash: &str) -> EngineResult<rsa::Oaep> {
    Ok(match hash {
        "SHA1" => rsa::Oaep::new::<sha1::Sha1>(),
        "SHA224" => rsa::Oaep::new::<sha2::Sha224>(),
        "SHA256" => rsa::Oaep::new::<sha2::Sha256>(),
        "SHA384" => rsa::Oaep::new::<sha2::Sha384>(),
        "SHA512" => rsa::Oaep::new::<sha2::Sha512>(),
        other => return Err(bad(format!("unknown hash function: {other}"))),
    })
}

/// Unwraps `base64(oaep(ephemeral) ‖ kwp(target))` into the target key's bytes.
async fn unwrap_import(
    transit: &Transit,
    request: &Request,
    storage: &dyn Storage,
) -> EngineResult<Secret> {
    let hash = req::string(request, "hash_function")?.unwrap_or_else(|| "SHA256".into());
    let padding = oaep(&hash)?;
    if req::string(request, "public_key")?.is_some_and(|p| !p.is_empty()) {
        return Err(bad("importing public keys only is not supported"));
    }
    let text = req::string_or_default(request, "ciphertext")?;
    if text.is_empty() {
        return Err(bad("the field ciphertext must be set"));
    }
    let blob =
        base64_decode(&text).ok_or_else(|| bad("error decoding ciphertext: invalid base64"))?;
    if blob.len() <= ENCRYPTED_KEY_BYTES {
        return Err(bad("provided ciphertext is too short"));
    }
    let (wrapped_ephemeral, wrapped_target) = blob.split_at(ENCRYPTED_KEY_BYTES);
    let wrapping = wrapping(transit, storage).await?;
    let ephemeral = Zeroizing::new(
        wrapping
            .key
            .decrypt_blinded(&mut rand_core::OsRng, padding, wrapped_ephemeral)
            .map_err(|_| bad("crypto/rsa: decryption error"))?,
    );
    if ephemeral.len() != 32 {
        return Err(bad("expected ephemeral AES key to be 256-bit"));
    }
    let mut kek_bytes = [0u8; 32];
    kek_bytes.copy_from_slice(&ephemeral);
    let kek = aes_kw::KekAes256::from(kek_bytes);
    zeroize::Zeroize::zeroize(&mut kek_bytes);
    let target = kek
        .unwrap_with_padding_vec(wrapped_target)
        .map_err(|_| bad("failed to unwrap the key: integrity check failed"))?;
    Ok(Zeroizing::new(target))
}

pub(crate) async fn import(
    transit: &Transit,
    request: &Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    if request.data.contains_key("convergent_encryption") {
        return Err(bad(
            "import cannot be used on keys with convergent encryption enabled",
        ));
    }
    let derived = req::bool(request, "derived")?.unwrap_or(false);
    let type_name = req::string(request, "type")?.unwrap_or_else(|| "aes256-gcm96".into());
    let exportable = req::bool(request, "exportable")?.unwrap_or(false);
    let allow_plaintext_backup = req::bool(request, "allow_plaintext_backup")?.unwrap_or(false);
    let auto_rotate_period = req::duration(request, "auto_rotate_period")?.unwrap_or(0);
    let allow_rotation = req::bool(request, "allow_rotation")?.unwrap_or(false);
    if auto_rotate_period > 0 && !allow_rotation {
        return Err(bad(
            "allow_rotation must be set to true if auto-rotation is enabled",
        ));
    }
    if auto_rotate_period != 0 && auto_rotate_period < 3600 {
        return Err(bad(
            "auto rotate period must be 0 to disable or at least an hour",
        ));
    }
    let key_type = KeyType::parse(&type_name.to_lowercase())
        .ok_or_else(|| bad(format!("unknown key type: {type_name}")))?;
    let new = NewKey {
        key_type,
        derived,
        convergent: false,
        exportable,
        allow_plaintext_backup,
        auto_rotate_period,
        key_size: 0,
    };
    new.validate()?;
    if transit.keys.get(storage, name).await?.is_some() {
        return Err(bad(
            "the import path cannot be used with an existing key; use import-version to rotate an existing imported key",
        ));
    }
    let bytes = unwrap_import(transit, request, storage).await?;
    let material = Material::from_import(key_type, bytes, derived)
        .map_err(|e| bad(format!("error importing key: {}", e)))?;
    let _guard = transit.keys.lock(name).await;
    if transit.keys.read_stored(storage, name).await?.is_some() {
        return Err(bad(
            "the import path cannot be used with an existing key; use import-version to rotate an existing imported key",
        ));
    }
    let mut meta = new.meta(name);
    meta.imported_key = true;
    meta.allow_imported_key_rotation = allow_rotation;
    if key_type == KeyType::Hmac
        && let Material::Hmac { raw } = &material
    {
        meta.key_size = raw.len();
    }
    let mut stored = StoredKey::new(meta);
    stored.push(
        StoredVersion::from_material(&material, transit.clock.now()).map_err(material_error)?,
    );
    transit.keys.save(storage, &stored).await?;
    Ok(None)
}

pub(crate) async fn import_version(
    transit: &Transit,
    request: &Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    if req::int(request, "version")?.is_some_and(|v| v != 0) {
        return Err(bad(
            "updating the private part of an existing version is not supported",
        ));
    }
    let Some(existing) = transit.keys.get(storage, name).await? else {
        return Err(bad(format!(
            "no key found with name {name}; to import a new key, use the import/ endpoint"
        )));
    };
    if !existing.meta.imported_key {
        return Err(bad(
            "the import_version endpoint can only be used with an imported key",
        ));
    }
    if existing.meta.convergent_encryption {
        return Err(bad(
            "import_version cannot be used on keys with convergent encryption enabled",
        ));
    }
    let bytes = unwrap_import(transit, request, storage).await?;
    let material = Material::from_import(existing.meta.key_type, bytes, existing.meta.derived)
        .map_err(|e| bad(format!("error importing key: {}", e)))?;
    let (_guard, mut stored) = transit
        .keys
        .lock_existing(storage, name, || {
            bad(format!(
                "no key found with name {name}; to import a new key, use the import/ endpoint"
            ))
        })
        .await?;
    stored.push(
        StoredVersion::from_material(&material, transit.clock.now()).map_err(material_error)?,
    );
    transit.keys.save(storage, &stored).await?;
    Ok(None)
}
