//! Encryption and decryption with a key version, as Vault's keysutil does it.
//!
//! Symmetric ciphertexts are `nonce (12 B) ‖ ciphertext ‖ tag (16 B)`; a derived key is
//! HKDF-SHA256(key, salt = none, info = context); convergent encryption (scheme 3) derives
//! 32 more bytes as an HMAC key and takes the nonce from HMAC-SHA256(that key, plaintext).
//! RSA keys encrypt with OAEP-SHA256 and no label.

use ring::aead::{Aad, LessSafeKey, Nonce};
use ring::hkdf;
use ring::hmac;
use zeroize::Zeroizing;

use super::ciphertext;
use super::keytype::KeyType;
use super::material::{
    Material, NONCE_LEN, Secret, base64_decode, base64_std, prepare_aead, random_bytes,
};
use super::policy::{KeyRing, KeyVersion};

/// Why one item (of a batch, or the single request) failed. `User` errors are 400s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ItemError {
    User(String),
    Internal(String),
}

impl ItemError {
    pub(crate) fn user(m: impl Into<String>) -> Self {
        Self::User(m.into())
    }
    pub(crate) fn message(&self) -> &str {
        match self {
            Self::User(m) | Self::Internal(m) => m,
        }
    }
}

pub(crate) const TOO_OLD: &str =
    "ciphertext or signature version is disallowed by policy (too old)";
const MISSING_CONTEXT: &str = "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key";

/// Go's wording for a base64 error, which clients see in batch results.
pub(crate) fn base64_error(text: &str) -> String {
    use base64::Engine as _;
    match base64::engine::general_purpose::STANDARD.decode(text) {
        Err(base64::DecodeError::InvalidByte(at, _))
        | Err(base64::DecodeError::InvalidLastSymbol(at, _)) => {
            format!("illegal base64 data at input byte {at}")
        }
        _ => format!(
            "illegal base64 data at input byte {}",
            text.len().saturating_sub(1)
        ),
    }
}

/// An item's base64 `input`, decoded; bad base64 is the item's error, worded as OpenBao.
pub(crate) fn decode_input(input: &str) -> Result<Vec<u8>, ItemError> {
    base64_decode(input).ok_or_else(|| {
        ItemError::User(format!(
            "unable to decode input as base64: {}",
            base64_error(input)
        ))
    })
}

pub(crate) fn decode_b64(text: &str) -> Result<Secret, ItemError> {
    base64_decode(text)
        .map(Zeroizing::new)
        .ok_or_else(|| ItemError::User(base64_error(text)))
}

/// An HKDF output length, for ring.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-SHA256 with no salt, as Vault's `Kdf_hkdf_sha256`.
pub(crate) fn hkdf_sha256(key: &[u8], context: &[u8], len: usize) -> Result<Secret, ItemError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(key);
    let info = [context];
    let okm = prk
        .expand(&info, Len(len))
        .map_err(|_| ItemError::Internal("key derivation failed".into()))?;
    let mut out = Zeroizing::new(vec![0u8; len]);
    okm.fill(&mut out)
        .map_err(|_| ItemError::Internal("key derivation failed".into()))?;
    Ok(out)
}

/// The Ed25519 key pair of a derived Ed25519 key for `context`: the seed is
/// HKDF-SHA256(key, salt = none, info = context), as Vault feeds the HKDF stream to
/// `ed25519.GenerateKey`.
pub(crate) fn derived_ed25519(
    seed: &[u8],
    context: &[u8],
) -> Result<ring::signature::Ed25519KeyPair, ItemError> {
    if context.is_empty() {
        return Err(ItemError::user(MISSING_CONTEXT));
    }
    let derived = hkdf_sha256(seed, context, 32)?;
    ring::signature::Ed25519KeyPair::from_seed_unchecked(&derived)
        .map_err(|_| ItemError::Internal("error deriving key".into()))
}

impl KeyRing {
    /// The version an encryption (or signing) uses: 0 means the latest.
    pub(crate) fn encryption_version(&self, requested: i64) -> Result<u32, ItemError> {
        let latest = i64::from(self.meta.latest_version);
        let version = match requested {
            0 => latest,
            v if v < 0 => {
                return Err(ItemError::user(
                    "requested version for encryption is negative",
                ));
            }
            v if v > latest => {
                return Err(ItemError::user(
                    "requested version for encryption is higher than the latest key version",
                ));
            }
            v if v < i64::from(self.meta.min_encryption_version) => {
                return Err(ItemError::user(
                    "requested version for encryption is less than the minimum encryption key version",
                ));
            }
            v => v,
        };
        u32::try_from(version).map_err(|_| ItemError::user("invalid key version"))
    }

    /// A version that is still loaded. As in OpenBao, versions below
    /// `min_decryption_version` are archived: unusable for anything until the minimum drops.
    pub(crate) fn version(&self, version: u32) -> Result<&KeyVersion, ItemError> {
        if version < self.meta.min_decryption_version {
            return Err(ItemError::user("no such key version"));
        }
        self.versions
            .get(&version)
            .ok_or_else(|| ItemError::user("no such key version"))
    }

    /// The loaded versions (those at or above `min_decryption_version`).
    pub(crate) fn live_versions(&self) -> impl Iterator<Item = (&u32, &KeyVersion)> {
        self.versions.range(self.meta.min_decryption_version..)
    }

    /// Checks a version read from a ciphertext or signature against the policy.
    pub(crate) fn decryption_version(&self, version: u32) -> Result<&KeyVersion, ItemError> {
        if version > self.meta.latest_version {
            return Err(ItemError::user("invalid ciphertext: version is too new"));
        }
        if version < self.meta.min_decryption_version {
            return Err(ItemError::user(TOO_OLD));
        }
        self.version(version)
    }

    /// The encryption key (and, for convergent keys, the nonce HMAC key) of a version.
    fn symmetric_keys(
        &self,
        entry: &KeyVersion,
        context: &[u8],
        with_hmac: bool,
    ) -> Result<(Option<Secret>, Option<Secret>), ItemError> {
        let Material::Aead { raw, .. } = &entry.material else {
            return Err(ItemError::Internal("not a symmetric key".into()));
        };
        if !self.meta.derived {
            return Ok((None, None));
        }
        if context.is_empty() {
            return Err(ItemError::user(MISSING_CONTEXT));
        }
        let enc_len = self.meta.key_type.aead_key_len().unwrap_or(32);
        let total = if with_hmac { enc_len + 32 } else { enc_len };
        let derived = hkdf_sha256(raw, context, total)?;
        let enc = Zeroizing::new(derived.get(..enc_len).unwrap_or_default().to_vec());
        let mac =
            with_hmac.then(|| Zeroizing::new(derived.get(enc_len..).unwrap_or_default().to_vec()));
        Ok((Some(enc), mac))
    }

    /// Encrypts `plaintext` and formats the result as `vault:v<N>:…`.
    pub(crate) fn encrypt(
        &self,
        requested_version: i64,
        context: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<(String, u32), ItemError> {
        self.encrypt_with_nonce(requested_version, context, aad, plaintext, None)
    }

    /// As [`KeyRing::encrypt`], with a fresh random nonce drawn by the caller (a batch draws
    /// all of its nonces in one call to the OS generator). Ignored by convergent keys.
    pub(crate) fn encrypt_with_nonce(
        &self,
        requested_version: i64,
        context: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        random_nonce: Option<[u8; NONCE_LEN]>,
    ) -> Result<(String, u32), ItemError> {
        let key_type = self.meta.key_type;
        if !key_type.supports_encryption() {
            return Err(ItemError::User(format!(
                "message encryption not supported for key type {}",
                key_type.name()
            )));
        }
        let version = self.encryption_version(requested_version)?;
        let entry = self.version(version)?;
        let body = match &entry.material {
            Material::Rsa(key) => {
                let public = key.to_public_key();
                public
                    .encrypt(
                        &mut rand_core::OsRng,
                        rsa::Oaep::new::<sha2::Sha256>(),
                        plaintext,
                    )
                    // The only failure for a valid key is a plaintext too long for OAEP: the
                    // caller's mistake (OpenBao reports it as a 500).
                    .map_err(|e| {
                        ItemError::User(format!("failed to RSA encrypt the plaintext: {e}"))
                    })?
            }
            Material::Aead { prepared, .. } => {
                let convergent = self.meta.convergent_encryption;
                let (derived, mac_key) = self.symmetric_keys(entry, context, convergent)?;
                let nonce_bytes: [u8; NONCE_LEN] = match &mac_key {
                    Some(mac_key) => {
                        let tag =
                            hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, mac_key), plaintext);
                        let mut n = [0u8; NONCE_LEN];
                        n.copy_from_slice(tag.as_ref().get(..NONCE_LEN).unwrap_or(&[0; NONCE_LEN]));
                        n
                    }
                    None => match random_nonce {
                        Some(n) => n,
                        None => {
                            let random = random_bytes(NONCE_LEN)
                                .map_err(|e| ItemError::Internal(e.to_string()))?;
                            let mut n = [0u8; NONCE_LEN];
                            n.copy_from_slice(&random);
                            n
                        }
                    },
                };
                match (prepared, derived) {
                    (_, Some(derived)) => {
                        let key = prepare_aead(key_type, &derived)
                            .map_err(|e| ItemError::Internal(e.to_string()))?;
                        seal(&key, nonce_bytes, aad, plaintext)?
                    }
                    (Some(key), None) => seal(key, nonce_bytes, aad, plaintext)?,
                    (None, None) => return Err(ItemError::Internal("key not prepared".into())),
                }
            }
            _ => {
                return Err(ItemError::User(format!(
                    "message encryption not supported for key type {}",
                    key_type.name()
                )));
            }
        };
        Ok((ciphertext::format(version, &base64_std(&body)), version))
    }

    /// Decrypts a `vault:v<N>:…` ciphertext; returns the plaintext and the version used.
    pub(crate) fn decrypt(
        &self,
        context: &[u8],
        aad: &[u8],
        value: &str,
    ) -> Result<(Secret, u32), ItemError> {
        let key_type = self.meta.key_type;
        if !key_type.supports_encryption() {
            return Err(ItemError::User(format!(
                "message decryption not supported for key type {}",
                key_type.name()
            )));
        }
        let (version, body) =
            ciphertext::parse(value).map_err(|e| ItemError::User(e.to_string()))?;
        let entry = self.decryption_version(version)?;
        let decoded = base64_decode(body)
            .ok_or_else(|| ItemError::user("invalid ciphertext: could not decode base64"))?;
        let plain = match &entry.material {
            Material::Rsa(key) => Zeroizing::new(
                key.decrypt_blinded(
                    &mut rand_core::OsRng,
                    rsa::Oaep::new::<sha2::Sha256>(),
                    &decoded,
                )
                .map_err(|_| {
                    ItemError::user(
                        "failed to RSA decrypt the ciphertext: crypto/rsa: decryption error",
                    )
                })?,
            ),
            Material::Aead { prepared, .. } => {
                let (derived, _) = self.symmetric_keys(entry, context, false)?;
                match (prepared, derived) {
                    (_, Some(derived)) => {
                        let key = prepare_aead(key_type, &derived)
                            .map_err(|e| ItemError::Internal(e.to_string()))?;
                        open(&key, key_type, aad, &decoded)?
                    }
                    (Some(key), None) => open(key, key_type, aad, &decoded)?,
                    (None, None) => return Err(ItemError::Internal("key not prepared".into())),
                }
            }
            _ => {
                return Err(ItemError::User(format!(
                    "message decryption not supported for key type {}",
                    key_type.name()
                )));
            }
        };
        Ok((plain, version))
    }
}

/// `nonce ‖ ciphertext ‖ tag`, in one allocation.
fn seal(
    key: &LessSafeKey,
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, ItemError> {
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + super::material::TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            out.get_mut(NONCE_LEN..).unwrap_or_default(),
        )
        .map_err(|_| ItemError::Internal("encryption failed".into()))?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

fn open(
    key: &LessSafeKey,
    key_type: KeyType,
    aad: &[u8],
    data: &[u8],
) -> Result<Secret, ItemError> {
    let (Some(nonce), Some(body)) = (data.get(..NONCE_LEN), data.get(NONCE_LEN..)) else {
        return Err(ItemError::user("invalid ciphertext length"));
    };
    let mut nonce_bytes = [0u8; NONCE_LEN];
    nonce_bytes.copy_from_slice(nonce);
    let mut buffer = Zeroizing::new(body.to_vec());
    let failed = || {
        ItemError::user(match key_type {
            KeyType::ChaCha20Poly1305 => "chacha20poly1305: message authentication failed",
            _ => "cipher: message authentication failed",
        })
    };
    let len = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(aad),
            &mut buffer,
        )
        .map_err(|_| failed())?
        .len();
    buffer.truncate(len);
    Ok(buffer)
}
