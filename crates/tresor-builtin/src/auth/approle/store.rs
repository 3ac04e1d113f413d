//! Where an AppRole mount keeps its data, and the keyed hash that keeps credentials out of it.
//!
//! ```text
//! hmac-key                             32 random bytes: the mount's HMAC key (under the barrier)
//! role/<name>                          a role (name lowercased): settings, role_id, uid
//! role-id/<hmac(role_id)>              → {name}: login finds the role without a scan
//! secret-id/<role uid>/<hmac(secret)>  a secret id's properties (never the secret id itself)
//! accessor/<hmac(accessor)>            → {role_uid, secret_id_hmac}
//! spent/<role uid>/<hmac(secret)>      a used-up or tidied secret id, kept a day so a later
//!                                      login can say why it fails
//! ```
//!
//! A secret id is stored only as its HMAC under the mount's random key, so neither the
//! storage nor a copy of it reveals one, and a login finds the entry by the HMAC of what the
//! client sent: no secret is ever compared byte by byte. Each role has a random `uid` that
//! names its secret-id directory: a role deleted and created again under the same name gets a
//! new uid, so a secret id that survived the deletion (a crash between the two steps) can never
//! log in to the new role; tidy removes such orphans.

use std::collections::BTreeMap;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use tresor_sdk::auth::TokenSettings;
use tresor_sdk::engine::{EngineError, EngineResult};
use tresor_sdk::secret::SecretBytes;
use tresor_sdk::storage::{Storage, ViewOp};

pub(super) const HMAC_KEY: &str = "hmac-key";
pub(super) const ROLE_PREFIX: &str = "role/";
pub(super) const ROLE_ID_PREFIX: &str = "role-id/";
pub(super) const SECRET_PREFIX: &str = "secret-id/";
pub(super) const ACCESSOR_PREFIX: &str = "accessor/";
pub(super) const SPENT_PREFIX: &str = "spent/";

/// OpenBao's limit on what it hashes (role names, secret ids): longer values are refused.
pub(super) const MAX_HMAC_INPUT: usize = 4096;

/// The mount's HMAC key, loaded once per unseal (the instance is dropped when sealing).
#[derive(Debug)]
pub(super) struct Hasher {
    key: SecretBytes,
}

/// What a hash is of: each kind gets its own domain, so a role id and a secret id with the same
/// text never share a hash.
#[derive(Debug, Clone, Copy)]
pub(super) enum Hashed {
    RoleId,
    SecretId,
    Accessor,
}

impl Hasher {
    /// Loads the mount's key, or creates it on first use.
    pub(super) async fn load_or_create(storage: &dyn Storage) -> EngineResult<Self> {
        if let Some(key) = storage.get(HMAC_KEY).await? {
            if key.len() != 32 {
                return Err(EngineError::Internal(
                    "the AppRole HMAC key has the wrong length".into(),
                ));
            }
            return Ok(Self { key });
        }
        let mut fresh = zeroize::Zeroizing::new(vec![0u8; 32]);
        SystemRandom::new()
            .fill(&mut fresh)
            .map_err(|_| EngineError::Internal("random generator failed".into()))?;
        storage.put(HMAC_KEY, &fresh).await?;
        Ok(Self {
            key: SecretBytes::copy_from(&fresh),
        })
    }

    /// Hex HMAC-SHA256 of `value` in the domain `kind`.
    pub(super) fn hash(&self, kind: Hashed, value: &str) -> String {
        let label: &[u8] = match kind {
            Hashed::RoleId => b"role-id\0",
            Hashed::SecretId => b"secret-id\0",
            Hashed::Accessor => b"accessor\0",
        };
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.key.expose());
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(label);
        ctx.update(value.as_bytes());
        hex::encode(ctx.sign().as_ref())
    }
}

/// 16 random bytes in the 8-4-4-4-12 hex form of Go's `uuid.GenerateUUID`, which is what
/// OpenBao hands out as role ids, secret ids and accessors.
pub(super) fn uuid() -> EngineResult<String> {
    let mut b = [0u8; 16];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| EngineError::Internal("random generator failed".into()))?;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        h.get(0..8).unwrap_or_default(),
        h.get(8..12).unwrap_or_default(),
        h.get(12..16).unwrap_or_default(),
        h.get(16..20).unwrap_or_default(),
        h.get(20..32).unwrap_or_default()
    ))
}

fn yes() -> bool {
    true
}

/// A role as stored. Durations are whole seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Role {
    /// Lowercased, as OpenBao stores roles created since 1.x.
    pub name: String,
    /// The login identifier (not a secret: half of the credential pair, like a user name).
    pub role_id: String,
    /// Random; names this role's secret-id directory (see the module comment).
    pub uid: String,
    #[serde(default = "yes")]
    pub bind_secret_id: bool,
    /// `None` until set (OpenBao reads it back as `null`), `Some` after any write of it.
    #[serde(default)]
    pub secret_id_bound_cidrs: Option<Vec<String>>,
    #[serde(default)]
    pub secret_id_num_uses: i64,
    #[serde(default)]
    pub secret_id_ttl: u64,
    /// Kept and reported as OpenBao does; Tresor has no replication, so every secret id is local.
    #[serde(default)]
    pub local_secret_ids: bool,
    #[serde(default)]
    pub token: TokenSettings,
    /// OpenBao's `token_strictly_bind_ip`: bind each token to the login's client address.
    #[serde(default)]
    pub token_strictly_bind_ip: bool,
    /// The deprecated `policies` field, shown on reads while it was the last one written.
    #[serde(default)]
    pub policies: Vec<String>,
    /// The deprecated `period` field, likewise.
    #[serde(default)]
    pub period: u64,
}

impl Role {
    pub(super) fn new(name: &str) -> EngineResult<Self> {
        let mut uid = [0u8; 16];
        SystemRandom::new()
            .fill(&mut uid)
            .map_err(|_| EngineError::Internal("random generator failed".into()))?;
        Ok(Self {
            name: name.to_owned(),
            role_id: String::new(),
            uid: hex::encode(uid),
            bind_secret_id: true,
            secret_id_bound_cidrs: None,
            secret_id_num_uses: 0,
            secret_id_ttl: 0,
            local_secret_ids: false,
            token: TokenSettings::default(),
            token_strictly_bind_ip: false,
            policies: Vec::new(),
            period: 0,
        })
    }

    pub(super) fn bound_cidrs(&self) -> &[String] {
        self.secret_id_bound_cidrs.as_deref().unwrap_or_default()
    }

    /// OpenBao refuses to store a role that nothing binds: at least a secret id or a CIDR list.
    pub(super) fn has_constraint(&self) -> bool {
        self.bind_secret_id || !self.bound_cidrs().is_empty() || !self.token.bound_cidrs.is_empty()
    }

    /// Where this role's secret ids live.
    pub(super) fn secret_dir(&self) -> String {
        format!("{SECRET_PREFIX}{}/", self.uid)
    }
}

/// The role-id index entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RoleIdEntry {
    name: String,
}

fn decode<T: for<'de> Deserialize<'de>>(key: &str, bytes: &SecretBytes) -> EngineResult<T> {
    serde_json::from_slice(bytes.expose())
        .map_err(|e| EngineError::Internal(format!("stored record {key} is malformed: {e}")))
}

pub(super) fn encode<T: Serialize>(value: &T) -> EngineResult<SecretBytes> {
    serde_json::to_vec(value)
        .map(SecretBytes::new)
        .map_err(|e| EngineError::Internal(format!("encoding a record: {e}")))
}

pub(super) async fn read<T: for<'de> Deserialize<'de>>(
    storage: &dyn Storage,
    key: &str,
) -> EngineResult<Option<T>> {
    match storage.get(key).await? {
        Some(bytes) => decode(key, &bytes).map(Some),
        None => Ok(None),
    }
}

fn role_key(name: &str) -> String {
    format!("{ROLE_PREFIX}{}", name.to_lowercase())
}

pub(super) async fn load_role(storage: &dyn Storage, name: &str) -> EngineResult<Option<Role>> {
    read(storage, &role_key(name)).await
}

/// The name of the role `role_id` belongs to, through the index.
pub(super) async fn role_name_by_id(
    storage: &dyn Storage,
    hasher: &Hasher,
    role_id: &str,
) -> EngineResult<Option<String>> {
    let key = format!("{ROLE_ID_PREFIX}{}", hasher.hash(Hashed::RoleId, role_id));
    Ok(read::<RoleIdEntry>(storage, &key).await?.map(|e| e.name))
}

/// Writes `role` and moves its role-id index from `previous_role_id` in one transaction.
pub(super) async fn save_role(
    storage: &dyn Storage,
    hasher: &Hasher,
    role: &Role,
    previous_role_id: &str,
) -> EngineResult<()> {
    let mut ops = vec![ViewOp::Put {
        key: role_key(&role.name),
        value: encode(role)?,
    }];
    if previous_role_id != role.role_id {
        if !previous_role_id.is_empty() {
            ops.push(ViewOp::Delete {
                key: format!(
                    "{ROLE_ID_PREFIX}{}",
                    hasher.hash(Hashed::RoleId, previous_role_id)
                ),
            });
        }
        ops.push(ViewOp::Put {
            key: format!(
                "{ROLE_ID_PREFIX}{}",
                hasher.hash(Hashed::RoleId, &role.role_id)
            ),
            value: encode(&RoleIdEntry {
                name: role.name.clone(),
            })?,
        });
    }
    storage.transaction(ops).await?;
    Ok(())
}

/// Removes the role and its role-id index in one transaction (its secret ids go next).
pub(super) async fn delete_role(
    storage: &dyn Storage,
    hasher: &Hasher,
    role: &Role,
) -> EngineResult<()> {
    storage
        .transaction(vec![
            ViewOp::Delete {
                key: role_key(&role.name),
            },
            ViewOp::Delete {
                key: format!(
                    "{ROLE_ID_PREFIX}{}",
                    hasher.hash(Hashed::RoleId, &role.role_id)
                ),
            },
        ])
        .await?;
    Ok(())
}

/// Every stored role's uid, for tidy to tell live secret-id directories from orphans.
pub(super) async fn roles_by_uid(storage: &dyn Storage) -> EngineResult<BTreeMap<String, Role>> {
    let mut out = BTreeMap::new();
    for name in storage.list(ROLE_PREFIX).await? {
        if name.ends_with('/') {
            continue;
        }
        if let Some(role) = load_role(storage, &name).await? {
            out.insert(role.uid.clone(), role);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_have_gos_shape_and_differ() {
        let a = uuid().unwrap();
        let b = uuid().unwrap();
        assert_ne!(a, b);
        let parts: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
        assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }

    #[test]
    fn hashes_are_keyed_and_separated_by_kind() {
        let h1 = Hasher {
            key: SecretBytes::copy_from(&[1u8; 32]),
        };
        let h2 = Hasher {
            key: SecretBytes::copy_from(&[2u8; 32]),
        };
        let a = h1.hash(Hashed::SecretId, "s");
        assert_eq!(a.len(), 64);
        assert_eq!(a, h1.hash(Hashed::SecretId, "s"));
        assert_ne!(a, h2.hash(Hashed::SecretId, "s"), "another mount's key");
        assert_ne!(a, h1.hash(Hashed::RoleId, "s"), "another kind");
        assert_ne!(a, h1.hash(Hashed::SecretId, "t"));
    }

    #[test]
    fn a_role_without_any_binding_has_no_constraint() {
        let mut role = Role::new("r").unwrap();
        assert!(role.has_constraint());
        role.bind_secret_id = false;
        assert!(!role.has_constraint());
        role.secret_id_bound_cidrs = Some(vec![]);
        assert!(!role.has_constraint());
        role.token.bound_cidrs = vec!["10.0.0.0/8".into()];
        assert!(role.has_constraint());
    }
}
