//! The token store: who may call the API.
//!
//! Tokens are bearer credentials, so the store never persists one: entries live under the
//! salted HMAC of the token (`sys/token/id/<hmac>`), and lookups go through an in-memory cache
//! keyed the same way. Looking a token up by its keyed hash also means no secret is ever
//! compared byte by byte, so the lookup takes the same time whatever the token.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ring::hmac;
use serde::{Deserialize, Serialize};
use tresor_sdk::secret::SecretString;

use crate::barrier::Barrier;
use crate::error::{CoreError, CoreResult};
use crate::random;

const SALT_PATH: &str = "sys/token/salt";
const ID_PREFIX: &str = "sys/token/id/";
const ACCESSOR_PREFIX: &str = "sys/token/accessor/";

/// Length of the random part of a token: 33 base62 characters carry 196 bits of entropy.
const TOKEN_RANDOM_LEN: usize = 33;
/// OpenBao's service-token prefix; clients only treat it as opaque.
const TOKEN_PREFIX: &str = "s.";

/// What the server knows about a token. Never holds the token itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenEntry {
    pub accessor: String,
    pub policies: Vec<String>,
    pub path: String,
    pub display_name: String,
    /// Unix seconds.
    pub creation_time: i64,
}

impl TokenEntry {
    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }
}

/// Token lookups and creation over the barrier.
#[derive(Debug)]
pub struct TokenStore {
    barrier: Arc<Barrier>,
    /// HMAC key for token ids and accessors; generated once, stored under the barrier.
    salt: hmac::Key,
    cache: RwLock<HashMap<String, Arc<TokenEntry>>>,
}

impl TokenStore {
    /// Loads (or, on first unseal, creates) the salt. Entries are loaded lazily on lookup.
    pub async fn open(barrier: Arc<Barrier>) -> CoreResult<Self> {
        let salt_bytes = match barrier.get(SALT_PATH).await? {
            Some(s) => s,
            None => {
                let fresh = tresor_sdk::secret::SecretBytes::new(random::bytes(32));
                barrier.put(SALT_PATH, fresh.expose()).await?;
                fresh
            }
        };
        let salt = hmac::Key::new(hmac::HMAC_SHA256, salt_bytes.expose());
        Ok(Self {
            barrier,
            salt,
            cache: RwLock::new(HashMap::new()),
        })
    }

    fn hash(&self, value: &str) -> String {
        hex::encode(hmac::sign(&self.salt, value.as_bytes()).as_ref())
    }

    /// Creates a root token (policy `root`, no TTL). `id` lets `--dev-root-token-id` choose it.
    pub async fn create_root(&self, id: Option<&str>) -> CoreResult<SecretString> {
        let token = match id {
            Some(id) if !id.is_empty() => SecretString::from(id),
            _ => SecretString::new(format!(
                "{TOKEN_PREFIX}{}",
                random::base62(TOKEN_RANDOM_LEN)
            )),
        };
        let entry = TokenEntry {
            accessor: random::base62(24),
            policies: vec!["root".to_owned()],
            path: "auth/token/root".to_owned(),
            display_name: "root".to_owned(),
            creation_time: time::OffsetDateTime::now_utc().unix_timestamp(),
        };
        let id_hash = self.hash(token.expose());
        let record = serde_json::to_vec(&entry)?;
        self.barrier
            .transaction(vec![
                crate::barrier::BarrierOp::Put {
                    path: format!("{ID_PREFIX}{id_hash}"),
                    value: record.into(),
                },
                crate::barrier::BarrierOp::Put {
                    path: format!("{ACCESSOR_PREFIX}{}", self.hash(&entry.accessor)),
                    value: id_hash.clone().into_bytes().into(),
                },
            ])
            .await?;
        self.cache_insert(id_hash, Arc::new(entry));
        Ok(token)
    }

    fn cache_insert(&self, id_hash: String, entry: Arc<TokenEntry>) {
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(id_hash, entry);
        }
    }

    /// The entry for `token`, or `PermissionDenied` when it is unknown.
    pub async fn lookup(&self, token: &str) -> CoreResult<Arc<TokenEntry>> {
        if token.is_empty() {
            return Err(CoreError::PermissionDenied);
        }
        let id_hash = self.hash(token);
        if let Some(hit) = self
            .cache
            .read()
            .ok()
            .and_then(|c| c.get(&id_hash).cloned())
        {
            return Ok(hit);
        }
        let Some(raw) = self.barrier.get(&format!("{ID_PREFIX}{id_hash}")).await? else {
            return Err(CoreError::PermissionDenied);
        };
        let entry: Arc<TokenEntry> = Arc::new(serde_json::from_slice(raw.expose())?);
        self.cache_insert(id_hash, entry.clone());
        Ok(entry)
    }
}
