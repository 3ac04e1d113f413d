//! `keys/:name` (create, read, delete), LIST `keys/`, `keys/:name/config`, `rotate`, `trim`.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tresor_sdk::engine::{EngineError, EngineResult, Request, Response};
use tresor_sdk::storage::Storage;

use super::Transit;
use super::batch::single_error;
use super::crypt::derived_ed25519;
use super::keytype::KeyType;
use super::material::{Material, base64_decode, base64_std};
use super::policy::{CONVERGENT_VERSION, KeyRing, Meta, StoredKey, StoredVersion};
use super::req::{self, bad, object, respond};
use super::store::material_error;
use crate::clock::rfc3339_nano;

const MIN_ROTATE_PERIOD: i64 = 3600;
const ROTATE_PERIOD_ERROR: &str = "auto rotate period must be 0 to disable or at least an hour";

/// What a new key is made with.
#[derive(Debug, Clone)]
pub(crate) struct NewKey {
    pub key_type: KeyType,
    pub derived: bool,
    pub convergent: bool,
    pub exportable: bool,
    pub allow_plaintext_backup: bool,
    pub auto_rotate_period: i64,
    pub key_size: usize,
}

impl NewKey {
    pub(crate) fn meta(&self, name: &str) -> Meta {
        Meta {
            name: name.to_owned(),
            key_type: self.key_type,
            derived: self.derived,
            convergent_encryption: self.convergent,
            convergent_version: if self.convergent {
                CONVERGENT_VERSION
            } else {
                0
            },
            exportable: self.exportable,
            allow_plaintext_backup: self.allow_plaintext_backup,
            deletion_allowed: false,
            min_decryption_version: 1,
            min_encryption_version: 0,
            min_available_version: 0,
            latest_version: 0,
            auto_rotate_period: self.auto_rotate_period,
            imported_key: false,
            allow_imported_key_rotation: false,
            key_size: self.key_size,
            last_rotated: 0,
        }
    }

    /// Keysutil's checks on a new key's settings.
    pub(crate) fn validate(&self) -> EngineResult<()> {
        if self.convergent && !self.derived {
            return Err(bad(
                "convergent encryption requires derivation to be enabled",
            ));
        }
        if self.derived && !self.key_type.supports_derivation() {
            return Err(bad(format!(
                "key derivation and convergent encryption not supported for keys of type {}",
                self.key_type.name()
            )));
        }
        if self.convergent && self.key_type.aead_key_len().is_none() {
            return Err(bad(format!(
                "convergent encryption not supported for keys of type {}",
                self.key_type.name()
            )));
        }
        Ok(())
    }
}

/// Generates a new version off the async executor (RSA generation takes a while).
pub(crate) async fn generate_version(meta: &Meta, now: i64) -> EngineResult<StoredVersion> {
    let meta = meta.clone();
    tokio::task::spawn_blocking(move || StoredVersion::generate(&meta, now))
        .await
        .map_err(|e| EngineError::Internal(format!("key generation task: {e}")))?
        .map_err(material_error)
}

/// Creates the key unless it exists. Returns the key and whether it was created.
pub(crate) async fn create_key(
    transit: &Transit,
    storage: &dyn Storage,
    name: &str,
    new: &NewKey,
) -> EngineResult<(Arc<KeyRing>, bool)> {
    new.validate()?;
    let _guard = transit.keys.lock(name).await;
    if let Some(stored) = transit.keys.read_stored(storage, name).await? {
        let ring = Arc::new(stored.load().map_err(material_error)?);
        return Ok((ring, false));
    }
    let mut stored = StoredKey::new(new.meta(name));
    let version = generate_version(&stored.meta, transit.clock.now()).await?;
    stored.push(version);
    let ring = transit.keys.save(storage, &stored).await?;
    Ok((ring, true))
}

pub(crate) async fn list(
    transit: &Transit,
    storage: &dyn Storage,
) -> EngineResult<Option<Response>> {
    let keys = transit.keys.list(storage).await?;
    if keys.is_empty() {
        return Err(EngineError::NotFound);
    }
    Ok(Some(Response::list(keys)))
}

pub(crate) async fn create(
    transit: &Transit,
    request: &Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    let type_name = req::string(request, "type")?.unwrap_or_else(|| "aes256-gcm96".into());
    let derived = req::bool(request, "derived")?.unwrap_or(false);
    let convergent = req::bool(request, "convergent_encryption")?.unwrap_or(false);
    let exportable = req::bool(request, "exportable")?.unwrap_or(false);
    let allow_plaintext_backup = req::bool(request, "allow_plaintext_backup")?.unwrap_or(false);
    let auto_rotate_period = req::duration(request, "auto_rotate_period")?.unwrap_or(0);
    let key_size = req::int(request, "key_size")?.unwrap_or(0);
    if auto_rotate_period != 0 && auto_rotate_period < MIN_ROTATE_PERIOD {
        return Err(bad(ROTATE_PERIOD_ERROR));
    }
    if !derived && convergent {
        return Err(bad(
            "convergent encryption requires derivation to be enabled",
        ));
    }
    let key_type =
        KeyType::parse(&type_name).ok_or_else(|| bad(format!("unknown key type {type_name}")))?;
    if key_size != 0 {
        if key_type != KeyType::Hmac {
            return Err(bad(format!(
                "key_size is not valid for algorithm {}",
                key_type.name()
            )));
        }
        if !(32..=512).contains(&key_size) {
            return Err(bad(format!("invalid key_size {key_size}")));
        }
    }
    let new = NewKey {
        key_type,
        derived,
        convergent,
        exportable,
        allow_plaintext_backup,
        auto_rotate_period,
        key_size: usize::try_from(key_size).unwrap_or(0),
    };
    // OpenBao 2.7 answers with the existing key's settings, without a warning.
    let (ring, _created) = create_key(transit, storage, name, &new).await?;
    respond(format_key(&ring)?)
}

pub(crate) async fn read(
    transit: &Transit,
    request: &Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    let Some(ring) = transit.keys.get(storage, name).await? else {
        return Err(EngineError::NotFound);
    };
    // A derived Ed25519 key's public key depends on the context.
    let context = match req::string(request, "context")?.filter(|c| !c.is_empty()) {
        Some(c) => base64_decode(&c).ok_or_else(|| bad("failed to base64-decode context"))?,
        None => Vec::new(),
    };
    respond(format_key_for(&ring, &context)?)
}

/// The key as Vault's `formatKeyPolicy` shows it.
pub(crate) fn format_key(ring: &KeyRing) -> EngineResult<Map<String, Value>> {
    format_key_for(ring, &[])
}

fn format_key_for(ring: &KeyRing, context: &[u8]) -> EngineResult<Map<String, Value>> {
    let meta = &ring.meta;
    let kt = meta.key_type;
    let mut data = object(json!({
        "name": meta.name,
        "type": kt.name(),
        "derived": meta.derived,
        "deletion_allowed": meta.deletion_allowed,
        "min_available_version": meta.min_available_version,
        "min_decryption_version": meta.min_decryption_version,
        "min_encryption_version": meta.min_encryption_version,
        "latest_version": meta.latest_version,
        "exportable": meta.exportable,
        "allow_plaintext_backup": meta.allow_plaintext_backup,
        "supports_encryption": kt.supports_encryption(),
        "supports_decryption": kt.supports_encryption(),
        "supports_signing": kt.supports_signing(),
        "supports_derivation": kt.supports_derivation(),
        "auto_rotate_period": meta.auto_rotate_period,
        "imported_key": meta.imported_key,
        "soft_deleted": false,
    }));
    if meta.key_size != 0 {
        data.insert("key_size".into(), json!(meta.key_size));
    }
    if meta.imported_key {
        data.insert(
            "imported_key_allow_rotation".into(),
            json!(meta.allow_imported_key_rotation),
        );
    }
    if meta.derived {
        data.insert("kdf".into(), json!("hkdf_sha256"));
        data.insert(
            "convergent_encryption".into(),
            json!(meta.convergent_encryption),
        );
        if meta.convergent_encryption {
            data.insert(
                "convergent_encryption_version".into(),
                // OpenBao 2.7 keeps the scheme per version and shows -1 for the key.
                json!(-1),
            );
        }
    }
    if kt.aead_key_len().is_some() {
        let keys: Map<String, Value> = ring
            .live_versions()
            .map(|(v, entry)| {
                (
                    v.to_string(),
                    json!(entry.creation_time.div_euclid(1_000_000_000)),
                )
            })
            .collect();
        data.insert("keys".into(), Value::Object(keys));
    } else if kt.is_asymmetric() {
        let mut keys = Map::new();
        for (v, entry) in ring.live_versions() {
            let public_key = match &entry.material {
                Material::Ed25519 { seed, .. } if meta.derived => {
                    if context.is_empty() {
                        None
                    } else {
                        use ring::signature::KeyPair;
                        let pair = derived_ed25519(seed, context).map_err(single_error)?;
                        Some(base64_std(pair.public_key().as_ref()))
                    }
                }
                material => material.public_key_display().map_err(material_error)?,
            };
            let curve = match kt {
                KeyType::EcdsaP256 => "P-256",
                KeyType::EcdsaP384 => "P-384",
                other => other.name(),
            };
            keys.insert(
                v.to_string(),
                json!({
                    "name": curve,
                    "public_key": public_key.unwrap_or_default(),
                    "certificate_chain": "",
                    "creation_time": rfc3339_nano(entry.creation_time),
                }),
            );
        }
        data.insert("keys".into(), Value::Object(keys));
    }
    Ok(data)
}

pub(crate) async fn delete(
    transit: &Transit,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    let (_guard, stored) = transit
        .keys
        .lock_existing(storage, name, || {
            bad(format!(
                "error deleting policy {name}: could not delete key; not found"
            ))
        })
        .await?;
    if !stored.meta.deletion_allowed {
        return Err(bad(format!(
            "error deleting policy {name}: deletion is not allowed for this key"
        )));
    }
    transit.keys.remove(storage, name).await?;
    Ok(None)
}

pub(crate) async fn config(
    transit: &Transit,
    request: &Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    // Parse everything before taking the lock, so a bad field changes nothing.
    let min_decryption = req::int(request, "min_decryption_version")?;
    let min_encryption = req::int(request, "min_encryption_version")?;
    let deletion_allowed = req::bool(request, "deletion_allowed")?;
    let exportable = req::bool(request, "exportable")?;
    let allow_plaintext_backup = req::bool(request, "allow_plaintext_backup")?;
    let auto_rotate_period = req::duration(request, "auto_rotate_period")?;

    let (_guard, mut stored) = transit
        .keys
        .lock_existing(storage, name, || {
            bad(format!("no existing key named {name} could be found"))
        })
        .await?;
    let meta = &mut stored.meta;
    let latest = i64::from(meta.latest_version);
    let mut warnings = Vec::new();
    if let Some(mut v) = min_decryption {
        if v < 0 {
            return Err(bad("min decryption version cannot be negative"));
        }
        if v == 0 {
            v = 1;
            warnings.push("since Vault 0.3 (prior to the OpenBao fork), transit key numbering starts at 1; forcing minimum to 1".to_owned());
        }
        if v != i64::from(meta.min_decryption_version) {
            if v > latest {
                return Err(bad(format!(
                    "cannot set min decryption version of {v}, latest key version is {latest}"
                )));
            }
            meta.min_decryption_version = u32::try_from(v).unwrap_or(u32::MAX);
        }
    }
    if let Some(v) = min_encryption {
        if v < 0 {
            return Err(bad("min encryption version cannot be negative"));
        }
        if v != i64::from(meta.min_encryption_version) {
            if v > latest {
                return Err(bad(format!(
                    "cannot set min encryption version of {v}, latest key version is {latest}"
                )));
            }
            meta.min_encryption_version = u32::try_from(v).unwrap_or(u32::MAX);
        }
    }
    if meta.min_encryption_version > 0 && meta.min_encryption_version < meta.min_decryption_version
    {
        return Err(bad(format!(
            "cannot set min encryption/decryption values; min encryption version of {} must be greater than or equal to min decryption version of {}",
            meta.min_encryption_version, meta.min_decryption_version
        )));
    }
    if let Some(allowed) = deletion_allowed {
        meta.deletion_allowed = allowed;
    }
    if meta.min_decryption_version == 0 {
        meta.min_decryption_version = 1;
    }
    // Exportability and plaintext backup can be turned on, never off again.
    if exportable == Some(true) {
        meta.exportable = true;
    }
    if allow_plaintext_backup == Some(true) {
        meta.allow_plaintext_backup = true;
    }
    if let Some(period) = auto_rotate_period {
        if period != 0 && period < MIN_ROTATE_PERIOD {
            return Err(bad(ROTATE_PERIOD_ERROR));
        }
        meta.auto_rotate_period = period;
    }
    if meta.min_available_version > meta.min_encryption_version {
        return Err(bad(
            "min encryption version should not be less than min available version",
        ));
    }
    if meta.min_available_version > meta.min_decryption_version {
        return Err(bad(
            "min decryption version should not be less then min available version",
        ));
    }
    let ring = transit.keys.save(storage, &stored).await?;
    let mut response = Response::with_data(format_key(&ring)?);
    response.warnings = warnings;
    Ok(Some(response))
}

/// Adds a new version to a stored key (the caller holds the key's lock).
pub(crate) async fn rotate_stored(
    transit: &Transit,
    storage: &dyn Storage,
    stored: &mut StoredKey,
) -> EngineResult<Arc<KeyRing>> {
    if stored.meta.imported_key && !stored.meta.allow_imported_key_rotation {
        return Err(bad(format!(
            "imported key {} does not allow rotation within Vault",
            stored.meta.name
        )));
    }
    let version = generate_version(&stored.meta, transit.clock.now()).await?;
    stored.push(version);
    transit.keys.save(storage, stored).await
}

pub(crate) async fn rotate(
    transit: &Transit,
    _request: &Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    let (_guard, mut stored) = transit
        .keys
        .lock_existing(storage, name, || bad("key not found"))
        .await?;
    let ring = rotate_stored(transit, storage, &mut stored).await?;
    respond(format_key(&ring)?)
}

pub(crate) async fn trim(
    transit: &Transit,
    request: &Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    let wanted = req::int(request, "min_available_version")?;
    let (_guard, mut stored) = transit
        .keys
        .lock_existing(storage, name, || bad("invalid key name"))
        .await?;
    let Some(wanted) = wanted else {
        return Err(bad("missing min_available_version"));
    };
    let meta = &stored.meta;
    let message = if wanted < i64::from(meta.min_available_version) {
        Some("minimum available version cannot be decremented")
    } else if meta.min_encryption_version == 0 {
        Some("minimum available version cannot be set when minimum encryption version is not set")
    } else if meta.min_decryption_version == 0 {
        Some("minimum available version cannot be set when minimum decryption version is not set")
    } else if wanted > i64::from(meta.min_encryption_version) {
        Some("minimum available version cannot be greater than minmum encryption version")
    } else if wanted > i64::from(meta.min_decryption_version) {
        Some("minimum available version cannot be greater than minimum decryption version")
    } else if wanted < 0 {
        Some("minimum available version cannot be negative")
    } else if wanted == 0 {
        Some("minimum available version should be positive")
    } else {
        None
    };
    if let Some(message) = message {
        return Err(bad(message));
    }
    let floor = u32::try_from(wanted).unwrap_or(u32::MAX);
    stored.meta.min_available_version = floor;
    stored.keys.retain(|v, _| *v >= floor);
    let ring = transit.keys.save(storage, &stored).await?;
    respond(format_key(&ring)?)
}
