//! A named key: its settings and its versions (the keyring), in memory and as stored.
//!
//! Stored at `policy/<name>` in the mount's view (so under the barrier) as JSON whose key
//! bytes are base64; the serialised buffer is zeroized after use. In memory a [`KeyRing`]
//! holds every version's material parsed and ready, so requests never parse or read storage.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::keytype::KeyType;
use super::material::{Material, MaterialError, Secret, random_bytes};

/// Vault's current convergent encryption scheme: the nonce is an HMAC of the plaintext under
/// a key derived with the encryption key.
pub(crate) const CONVERGENT_VERSION: u32 = 3;

/// Settings of a key, everything but the key material.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub name: String,
    #[serde(rename = "type")]
    pub key_type: KeyType,
    pub derived: bool,
    pub convergent_encryption: bool,
    pub convergent_version: u32,
    pub exportable: bool,
    pub allow_plaintext_backup: bool,
    pub deletion_allowed: bool,
    pub min_decryption_version: u32,
    pub min_encryption_version: u32,
    pub min_available_version: u32,
    pub latest_version: u32,
    /// Seconds; 0 disables automatic rotation.
    pub auto_rotate_period: i64,
    pub imported_key: bool,
    pub allow_imported_key_rotation: bool,
    /// HMAC key size in bytes (type `hmac` only).
    #[serde(default)]
    pub key_size: usize,
    /// When the latest version was made (Unix nanoseconds), for automatic rotation.
    pub last_rotated: i64,
}

/// One stored version: the key (format per [`Material::to_raw`]) and the HMAC key Vault
/// gives every version.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredVersion {
    pub creation_time: i64,
    #[serde(with = "b64")]
    pub key: Secret,
    #[serde(with = "b64")]
    pub hmac_key: Secret,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct StoredKey {
    #[serde(flatten)]
    pub meta: Meta,
    pub keys: BTreeMap<u32, StoredVersion>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// A key version ready for use. Its `Debug` shows no key bytes.
pub(crate) struct KeyVersion {
    pub creation_time: i64,
    pub material: Material,
    pub hmac_key: Secret,
}

impl std::fmt::Debug for KeyVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVersion")
            .field("creation_time", &self.creation_time)
            .field("material", &self.material)
            .field("hmac_key", &"[redacted]")
            .finish()
    }
}

/// A key with all of its versions parsed.
#[derive(Debug)]
pub(crate) struct KeyRing {
    pub meta: Meta,
    pub versions: BTreeMap<u32, KeyVersion>,
}

impl StoredVersion {
    /// A fresh version of `meta`'s type.
    pub(crate) fn generate(meta: &Meta, now: i64) -> Result<Self, MaterialError> {
        let material = Material::generate(meta.key_type, meta.derived, meta.key_size.max(32))?;
        Ok(Self {
            creation_time: now,
            key: material.to_raw()?,
            hmac_key: random_bytes(32)?,
        })
    }

    pub(crate) fn from_material(material: &Material, now: i64) -> Result<Self, MaterialError> {
        Ok(Self {
            creation_time: now,
            key: material.to_raw()?,
            hmac_key: random_bytes(32)?,
        })
    }
}

impl StoredKey {
    pub(crate) fn new(meta: Meta) -> Self {
        Self {
            meta,
            keys: BTreeMap::new(),
        }
    }

    /// Appends `version` as the new latest version.
    pub(crate) fn push(&mut self, version: StoredVersion) {
        self.meta.latest_version = self.meta.latest_version.saturating_add(1);
        self.meta.last_rotated = version.creation_time;
        if self.meta.min_decryption_version == 0 {
            self.meta.min_decryption_version = 1;
        }
        self.keys.insert(self.meta.latest_version, version);
    }

    pub(crate) fn to_bytes(&self) -> Result<Secret, MaterialError> {
        serde_json::to_vec(self)
            .map(Zeroizing::new)
            .map_err(|e| MaterialError::Internal(format!("encoding key: {e}")))
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, MaterialError> {
        serde_json::from_slice(bytes)
            .map_err(|e| MaterialError::Invalid(format!("decoding key: {e}")))
    }

    /// Parses every version.
    pub(crate) fn load(&self) -> Result<KeyRing, MaterialError> {
        let mut versions = BTreeMap::new();
        for (number, stored) in &self.keys {
            let material =
                Material::from_raw(self.meta.key_type, stored.key.clone(), self.meta.derived)?;
            versions.insert(
                *number,
                KeyVersion {
                    creation_time: stored.creation_time,
                    material,
                    hmac_key: stored.hmac_key.clone(),
                },
            );
        }
        Ok(KeyRing {
            meta: self.meta.clone(),
            versions,
        })
    }
}

/// Base64 (standard, padded) for key bytes in the stored JSON.
mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let text = Zeroizing::new(STANDARD.encode(bytes));
        s.serialize_str(&text)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Zeroizing<Vec<u8>>, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        STANDARD
            .decode(text.as_bytes())
            .map(Zeroizing::new)
            .map_err(serde::de::Error::custom)
    }
}
