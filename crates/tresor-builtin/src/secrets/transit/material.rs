//! One key version's secret material, parsed once and kept ready for use.
//!
//! Which library does what, and why (one library per job):
//! - ring: AES-GCM and ChaCha20-Poly1305 (the hot path; constant-time, hardware AES), HKDF
//!   for derived keys, Ed25519 signing, HMAC-SHA256 for convergent nonces, and the system
//!   random generator.
//! - RustCrypto `p256`/`p384`: ECDSA, because Vault signs a digest chosen by the caller
//!   (`hash_algorithm`, `prehashed`), and ring only signs messages it hashes itself.
//! - RustCrypto `rsa`: key generation (ring cannot generate RSA keys), OAEP, PSS and
//!   PKCS#1 v1.5. Its private-key operations are subject to RUSTSEC-2023-0071 (a timing side
//!   channel, "Marvin"); transit always uses the blinded variants and docs/transit.md says
//!   to prefer AEAD keys for encryption.
//! - RustCrypto `hmac` with `sha2`/`sha3`: the `hmac` and `hash` endpoints, because Vault
//!   offers SHA-224 and SHA-3 there, which ring lacks.
//!
//! Every raw key lives in a [`Secret`] (zeroized on drop); the parsed `p256`, `p384` and
//! `rsa` keys zeroize themselves on drop. ring's prepared AEAD and Ed25519 keys do not
//! expose their memory for zeroizing; they live only as long as the cache entry.

use std::fmt;

use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use ring::aead::{self, LessSafeKey, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair};
use zeroize::Zeroizing;

use super::keytype::KeyType;

/// Raw key bytes, zeroized on drop.
pub(crate) type Secret = Zeroizing<Vec<u8>>;

/// Length of the AEAD nonce (96 bits) and tag for every symmetric type transit offers.
pub(crate) const NONCE_LEN: usize = 12;
pub(crate) const TAG_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub(crate) enum MaterialError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Internal(String),
}

/// The material of one key version, ready to use.
pub(crate) enum Material {
    /// A symmetric AEAD key; `prepared` is the expanded key schedule for non-derived keys.
    Aead {
        raw: Secret,
        prepared: Option<Box<LessSafeKey>>,
    },
    Hmac {
        raw: Secret,
    },
    Ed25519 {
        seed: Secret,
        pair: Ed25519KeyPair,
    },
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Rsa(Box<rsa::RsaPrivateKey>),
}

impl fmt::Debug for Material {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Material([redacted])")
    }
}

pub(crate) fn random_bytes(len: usize) -> Result<Secret, MaterialError> {
    let mut out = Zeroizing::new(vec![0u8; len]);
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| MaterialError::Internal("random generator failed".into()))?;
    Ok(out)
}

pub(crate) fn aead_algorithm(key_type: KeyType) -> Option<&'static aead::Algorithm> {
    match key_type {
        KeyType::Aes128Gcm96 => Some(&aead::AES_128_GCM),
        KeyType::Aes256Gcm96 => Some(&aead::AES_256_GCM),
        KeyType::ChaCha20Poly1305 => Some(&aead::CHACHA20_POLY1305),
        _ => None,
    }
}

/// Prepares an AEAD key from raw bytes of the right length.
pub(crate) fn prepare_aead(key_type: KeyType, raw: &[u8]) -> Result<LessSafeKey, MaterialError> {
    let alg = aead_algorithm(key_type)
        .ok_or_else(|| MaterialError::Internal("not an AEAD key type".into()))?;
    UnboundKey::new(alg, raw)
        .map(LessSafeKey::new)
        .map_err(|_| MaterialError::Invalid("invalid key length".into()))
}

impl Material {
    /// A fresh random key of `key_type`. RSA generation is slow; callers run it off the
    /// async executor.
    pub(crate) fn generate(
        key_type: KeyType,
        derived: bool,
        hmac_key_size: usize,
    ) -> Result<Self, MaterialError> {
        let raw = match key_type {
            KeyType::Hmac => random_bytes(hmac_key_size)?,
            KeyType::Ed25519 => random_bytes(32)?,
            KeyType::EcdsaP256 => {
                let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
                return Ok(Self::P256(key));
            }
            KeyType::EcdsaP384 => {
                let key = p384::ecdsa::SigningKey::random(&mut rand_core::OsRng);
                return Ok(Self::P384(key));
            }
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                let bits = key_type.rsa_bits().unwrap_or(2048);
                let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, bits)
                    .map_err(|e| MaterialError::Internal(format!("RSA key generation: {e}")))?;
                return Ok(Self::Rsa(Box::new(key)));
            }
            other => random_bytes(other.aead_key_len().unwrap_or(32))?,
        };
        Self::from_raw(key_type, raw, derived)
    }

    /// Rebuilds material from its stored form (see [`Material::to_raw`]).
    pub(crate) fn from_raw(
        key_type: KeyType,
        raw: Secret,
        derived: bool,
    ) -> Result<Self, MaterialError> {
        match key_type {
            KeyType::Aes128Gcm96 | KeyType::Aes256Gcm96 | KeyType::ChaCha20Poly1305 => {
                if Some(raw.len()) != key_type.aead_key_len() {
                    return Err(MaterialError::Invalid(format!(
                        "invalid key size: expected {} bytes",
                        key_type.aead_key_len().unwrap_or(32)
                    )));
                }
                let prepared = if derived {
                    None
                } else {
                    Some(Box::new(prepare_aead(key_type, &raw)?))
                };
                Ok(Self::Aead { raw, prepared })
            }
            KeyType::Hmac => {
                if !(32..=512).contains(&raw.len()) {
                    return Err(MaterialError::Invalid("invalid key size".into()));
                }
                Ok(Self::Hmac { raw })
            }
            KeyType::Ed25519 => {
                let pair = Ed25519KeyPair::from_seed_unchecked(&raw)
                    .map_err(|_| MaterialError::Invalid("invalid ed25519 seed".into()))?;
                Ok(Self::Ed25519 { seed: raw, pair })
            }
            KeyType::EcdsaP256 => p256::ecdsa::SigningKey::from_slice(&raw)
                .map(Self::P256)
                .map_err(|_| MaterialError::Invalid("invalid P-256 private key".into())),
            KeyType::EcdsaP384 => p384::ecdsa::SigningKey::from_slice(&raw)
                .map(Self::P384)
                .map_err(|_| MaterialError::Invalid("invalid P-384 private key".into())),
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                let key = rsa::RsaPrivateKey::from_pkcs8_der(&raw)
                    .map_err(|_| MaterialError::Invalid("invalid RSA private key".into()))?;
                use rsa::traits::PublicKeyParts;
                if Some(key.size() * 8) != key_type.rsa_bits() {
                    return Err(MaterialError::Invalid(format!(
                        "invalid RSA key size: expected {} bits",
                        key_type.rsa_bits().unwrap_or(0)
                    )));
                }
                Ok(Self::Rsa(Box::new(key)))
            }
        }
    }

    /// Parses a key as Vault's BYOK import sends it: raw bytes for symmetric and HMAC keys,
    /// PKCS#8 DER for asymmetric ones.
    pub(crate) fn from_import(
        key_type: KeyType,
        bytes: Secret,
        derived: bool,
    ) -> Result<Self, MaterialError> {
        let bad = |what: &str| {
            MaterialError::Invalid(format!("error parsing {what} key: invalid PKCS#8 key"))
        };
        match key_type {
            KeyType::Ed25519 => {
                let info = p256::pkcs8::PrivateKeyInfo::try_from(bytes.as_slice())
                    .map_err(|_| bad("ed25519"))?;
                // Ed25519's PKCS#8 body is an OCTET STRING holding the 32-byte seed.
                let seed = match info.private_key {
                    [0x04, 0x20, rest @ ..] if rest.len() == 32 => Zeroizing::new(rest.to_vec()),
                    _ => return Err(bad("ed25519")),
                };
                Self::from_raw(key_type, seed, derived)
            }
            KeyType::EcdsaP256 => p256::ecdsa::SigningKey::from_pkcs8_der(&bytes)
                .map(Self::P256)
                .map_err(|_| bad("P-256")),
            KeyType::EcdsaP384 => p384::ecdsa::SigningKey::from_pkcs8_der(&bytes)
                .map(Self::P384)
                .map_err(|_| bad("P-384")),
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                Self::from_raw(key_type, bytes, derived)
            }
            _ => Self::from_raw(key_type, bytes, derived),
        }
    }

    /// The stored form: raw key bytes, the Ed25519 seed, the EC scalar, or RSA PKCS#8 DER.
    pub(crate) fn to_raw(&self) -> Result<Secret, MaterialError> {
        Ok(match self {
            Self::Aead { raw, .. } | Self::Hmac { raw } => raw.clone(),
            Self::Ed25519 { seed, .. } => seed.clone(),
            Self::P256(key) => Zeroizing::new(key.to_bytes().to_vec()),
            Self::P384(key) => Zeroizing::new(key.to_bytes().to_vec()),
            Self::Rsa(key) => {
                let doc = key
                    .to_pkcs8_der()
                    .map_err(|e| MaterialError::Internal(format!("encoding RSA key: {e}")))?;
                Zeroizing::new(doc.as_bytes().to_vec())
            }
        })
    }

    /// The public key as Vault shows it in a key read: base64 for Ed25519, PEM (with the
    /// trailing newline Go's encoder writes) for ECDSA and RSA. `None` for symmetric keys.
    pub(crate) fn public_key_display(&self) -> Result<Option<String>, MaterialError> {
        let pem_err = |e: String| MaterialError::Internal(format!("encoding public key: {e}"));
        Ok(match self {
            Self::Ed25519 { pair, .. } => Some(base64_std(pair.public_key().as_ref())),
            Self::P256(key) => Some(
                key.verifying_key()
                    .to_public_key_pem(LineEnding::LF)
                    .map_err(|e| pem_err(e.to_string()))?,
            ),
            Self::P384(key) => Some(
                key.verifying_key()
                    .to_public_key_pem(LineEnding::LF)
                    .map_err(|e| pem_err(e.to_string()))?,
            ),
            Self::Rsa(key) => Some(
                key.to_public_key()
                    .to_public_key_pem(LineEnding::LF)
                    .map_err(|e| pem_err(e.to_string()))?,
            ),
            Self::Aead { .. } | Self::Hmac { .. } => None,
        })
    }
}

pub(crate) fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// Like [`base64_decode`], for secrets: the output is zeroized on drop.
pub(crate) fn base64_decode_secret(text: &str) -> Option<Secret> {
    base64_decode(text).map(Zeroizing::new)
}
