//! What is persisted for a lease, and where.
//!
//! Storage layout (under the barrier):
//! - `sys/expire/id/<lease id>`: the [`LeaseEntry`]. Lease ids contain `/`, so listing
//!   `sys/expire/id/<prefix>` is `LIST sys/leases/lookup/<prefix>` with no scan.
//! - `sys/expire/token/<owner token id hash>/<sha256(lease id)>`: the lease id, for secret
//!   leases only: revoking a token finds its leases by listing one folder.
//!
//! A token's own lease (`auth/token/create/<id hash>`) is a small record naming the token; the
//! token entry (`sys/token/id/<id hash>`) stays the single source of its times, so a token
//! renewal writes one record, as before.

use ring::digest;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub(crate) const ID_PREFIX: &str = "sys/expire/id/";
pub(crate) const TOKEN_INDEX_PREFIX: &str = "sys/expire/token/";

/// One lease as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LeaseEntry {
    pub id: String,
    /// The id hash of the token the lease belongs to (for a token lease: the token itself).
    /// Never the token.
    pub token: String,
    /// `None` for a token's own lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretLease>,
    /// Unix nanoseconds. Token leases read their times from the token entry instead.
    #[serde(default)]
    pub issue_ns: i64,
    #[serde(default)]
    pub expire_ns: Option<i64>,
    #[serde(default)]
    pub last_renewal_ns: Option<i64>,
    /// The TTL last granted, in seconds.
    #[serde(default)]
    pub ttl_secs: u64,
    /// The lease's own ceiling from issue time, in seconds (0: only the mount's applies).
    #[serde(default)]
    pub max_ttl_secs: u64,
    #[serde(default)]
    pub renewable: bool,
    /// Set once a revocation was asked for (expiry, token revocation, an API call) but did not
    /// succeed yet: the lease is revoked regardless of its expiry time, retried with backoff.
    #[serde(default)]
    pub revocation: Option<PendingRevocation>,
}

/// The engine's side of a secret lease.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SecretLease {
    /// The mount's uuid: leases follow their mount through a remount.
    pub mount_uuid: String,
    /// The request path relative to the mount.
    pub path: String,
    /// The full request path (`database/creds/app`), as shown by lookup.
    pub request_path: String,
    #[serde(default)]
    pub internal: Map<String, Value>,
}

/// A revocation that has not succeeded yet.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingRevocation {
    pub attempts: u32,
    /// The engine's last error (engine messages never hold secret values).
    #[serde(default)]
    pub last_error: Option<String>,
}

pub(crate) fn entry_path(lease_id: &str) -> String {
    format!("{ID_PREFIX}{lease_id}")
}

/// Index key of a secret lease under its token.
pub(crate) fn token_index_path(token_hash: &str, lease_id: &str) -> String {
    let digest = digest::digest(&digest::SHA256, lease_id.as_bytes());
    format!(
        "{TOKEN_INDEX_PREFIX}{token_hash}/{}",
        hex::encode(digest.as_ref())
    )
}

pub(crate) fn token_index_folder(token_hash: &str) -> String {
    format!("{TOKEN_INDEX_PREFIX}{token_hash}/")
}

/// The lease id of a token: its creation path and its id hash (never the token), as in Vault.
pub fn token_lease_id(token_path: &str, id_hash: &str) -> String {
    format!("{}/{id_hash}", token_path.trim_end_matches('/'))
}

/// Lease ids under `auth/` belong to tokens; their last segment is the token's id hash.
pub(crate) fn token_of_lease_id(lease_id: &str) -> Option<&str> {
    if !lease_id.starts_with("auth/") {
        return None;
    }
    lease_id.rsplit('/').next().filter(|s| !s.is_empty())
}

/// A lease id is a relative storage key: non-empty segments, no `.`/`..`, no NUL.
pub(crate) fn valid_lease_id(lease_id: &str) -> bool {
    !lease_id.is_empty()
        && !lease_id.contains('\0')
        && lease_id
            .split('/')
            .all(|segment| !matches!(segment, "" | "." | ".."))
}

impl LeaseEntry {
    /// A token's own lease record.
    pub fn for_token(lease_id: String, id_hash: &str) -> Self {
        Self {
            id: lease_id,
            token: id_hash.to_owned(),
            secret: None,
            issue_ns: 0,
            expire_ns: None,
            last_renewal_ns: None,
            ttl_secs: 0,
            max_ttl_secs: 0,
            renewable: false,
            revocation: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lease_ids_name_the_creation_path_and_hash() {
        let id = token_lease_id("auth/token/create/role/sfx", "abc");
        assert_eq!(id, "auth/token/create/role/sfx/abc");
        assert_eq!(token_of_lease_id(&id), Some("abc"));
        assert_eq!(token_of_lease_id("database/creds/app/xyz"), None);
    }

    #[test]
    fn lease_ids_must_be_plain_relative_keys() {
        assert!(valid_lease_id("a/b/c"));
        for bad in ["", "/a", "a//b", "a/../b", "a/./b", "a/", "a\0b"] {
            assert!(!valid_lease_id(bad), "{bad:?}");
        }
    }
}
