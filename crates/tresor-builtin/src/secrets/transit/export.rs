//! `export/:type/:name[/:version]`: key material in the formats Vault uses.
//!
//! The only way key material leaves the barrier in the clear (with plaintext backups),
//! and only for keys created or configured `exportable` (public keys excepted).

use p256::pkcs8::{EncodePublicKey, LineEnding};
use ring::signature::KeyPair;
use rsa::pkcs1::EncodeRsaPrivateKey;
use serde_json::{Map, Value, json};
use tresor_sdk::engine::{EngineError, EngineResult, Response};
use tresor_sdk::storage::Storage;
use zeroize::Zeroizing;

use super::Transit;
use super::material::{Material, base64_std};
use super::policy::{KeyRing, KeyVersion};
use super::req::{bad, object, respond};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExportType {
    Encryption,
    Signing,
    Hmac,
    Public,
}

fn internal(e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(format!("encoding key: {e}"))
}

/// Go's `pem.EncodeToMemory` of PKCS#1 (`RSA PRIVATE KEY`), trailing newline included.
fn rsa_private(key: &rsa::RsaPrivateKey) -> EngineResult<Zeroizing<String>> {
    key.to_pkcs1_pem(LineEnding::LF).map_err(internal)
}

fn encode(ring: &KeyRing, entry: &KeyVersion, kind: ExportType) -> EngineResult<Zeroizing<String>> {
    let key_type = ring.meta.key_type;
    let unknown = || {
        bad(format!(
            "unknown key type {} for export type {}",
            key_type.name(),
            kind_name(kind)
        ))
    };
    Ok(match (kind, &entry.material) {
        (ExportType::Hmac, Material::Hmac { raw }) => Zeroizing::new(base64_std(raw)),
        (ExportType::Hmac, _) => Zeroizing::new(base64_std(&entry.hmac_key)),
        (ExportType::Encryption, Material::Aead { raw, .. }) => Zeroizing::new(base64_std(raw)),
        (ExportType::Encryption | ExportType::Signing, Material::Rsa(key)) => rsa_private(key)?,
        (ExportType::Signing, Material::Ed25519 { seed, pair }) => {
            // Go's ed25519.PrivateKey: seed ‖ public key.
            let mut full = Zeroizing::new(seed.to_vec());
            full.extend_from_slice(pair.public_key().as_ref());
            Zeroizing::new(base64_std(&full))
        }
        (ExportType::Signing, Material::P256(key)) => {
            let secret = p256::SecretKey::from(key.as_nonzero_scalar());
            trimmed(secret.to_sec1_pem(LineEnding::LF).map_err(internal)?)
        }
        (ExportType::Signing, Material::P384(key)) => {
            let secret = p384::SecretKey::from(key.as_nonzero_scalar());
            trimmed(secret.to_sec1_pem(LineEnding::LF).map_err(internal)?)
        }
        (ExportType::Public, Material::Ed25519 { pair, .. }) => {
            Zeroizing::new(base64_std(pair.public_key().as_ref()))
        }
        (ExportType::Public, Material::P256(key)) => trimmed(Zeroizing::new(
            key.verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .map_err(internal)?,
        )),
        (ExportType::Public, Material::P384(key)) => trimmed(Zeroizing::new(
            key.verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .map_err(internal)?,
        )),
        (ExportType::Public, Material::Rsa(key)) => Zeroizing::new(
            key.to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .map_err(internal)?,
        ),
        _ => return Err(unknown()),
    })
}

/// ECDSA PEM blocks are trimmed by OpenBao (`strings.TrimSpace`), RSA ones are not.
fn trimmed(pem: Zeroizing<String>) -> Zeroizing<String> {
    Zeroizing::new(pem.trim_end().to_owned())
}

fn kind_name(kind: ExportType) -> &'static str {
    match kind {
        ExportType::Encryption => "encryption-key",
        ExportType::Signing => "signing-key",
        ExportType::Hmac => "hmac-key",
        ExportType::Public => "public-key",
    }
}

pub(crate) async fn export(
    transit: &Transit,
    storage: &dyn Storage,
    kind: &str,
    name: &str,
    version: Option<&str>,
) -> EngineResult<Option<Response>> {
    let kind = match kind {
        "encryption-key" => ExportType::Encryption,
        "signing-key" => ExportType::Signing,
        "hmac-key" => ExportType::Hmac,
        "public-key" => ExportType::Public,
        other => return Err(bad(format!("invalid export type: {other}"))),
    };
    let Some(ring) = transit.keys.get(storage, name).await? else {
        return Err(EngineError::NotFound);
    };
    let key_type = ring.meta.key_type;
    if !ring.meta.exportable && kind != ExportType::Public {
        return Err(bad("private key material is not exportable"));
    }
    match kind {
        ExportType::Encryption if !key_type.supports_encryption() => {
            return Err(bad("encryption not supported for the key"));
        }
        ExportType::Signing if !key_type.supports_signing() => {
            return Err(bad("signing not supported for the key"));
        }
        ExportType::Public if !key_type.is_asymmetric() => {
            return Err(bad(format!(
                "unknown key type {} for export type public-key",
                key_type.name()
            )));
        }
        _ => {}
    }
    let mut keys = Map::new();
    match version.filter(|v| !v.is_empty()) {
        None => {
            for (v, entry) in ring.live_versions() {
                keys.insert(
                    v.to_string(),
                    Value::String(encode(&ring, entry, kind)?.to_string()),
                );
            }
        }
        Some(text) => {
            let number = if text == "latest" {
                ring.meta.latest_version
            } else {
                text.trim_start_matches('v')
                    .parse::<u32>()
                    .map_err(|_| bad("invalid key version"))?
            };
            if number < ring.meta.min_decryption_version {
                return Err(bad(
                    "version for export is below minimum decryption version",
                ));
            }
            let entry = ring
                .versions
                .get(&number)
                .ok_or_else(|| bad("version does not exist or cannot be found"))?;
            keys.insert(
                number.to_string(),
                Value::String(encode(&ring, entry, kind)?.to_string()),
            );
        }
    }
    respond(object(json!({
        "name": ring.meta.name,
        "type": key_type.name(),
        "keys": keys,
    })))
}
