//! Batch tokens: the token *is* its entry, encrypted by the barrier, so issuing one writes
//! nothing and costs no fsync (what CI jobs and short-lived workloads need at scale).
//!
//! Format: `b.` ‖ base64url(barrier ciphertext of a compact JSON [`Claims`]), the ciphertext
//! bound to [`CONTEXT`] the way stored values are bound to their path. A token therefore
//! opens only on this cluster, only while its keyring term exists, and any change to it
//! fails authentication. As in Vault a batch token has no accessor, cannot be renewed or
//! revoked, has no cubbyhole, and dies with its parent (a non-orphan batch token's parent
//! must still resolve). Unlike OpenBao, a batch token from a login also dies with the auth
//! mount that issued it (the core checks the mount accessor on every use).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Map;

use super::entry::{LoginRecord, TokenEntry};
use crate::barrier::{Barrier, BarrierError};
use crate::error::CoreResult;

/// OpenBao's batch-token prefix (its service tokens are `s.`, as ours).
pub const BATCH_PREFIX: &str = "b.";

/// What the ciphertext is bound to. Not a stored path: nothing is ever written there.
const CONTEXT: &str = "sys/token/batch";

/// The entry as a batch token carries it. Short names keep tokens short: they travel in
/// every request header.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    #[serde(rename = "p")]
    policies: Vec<String>,
    /// The parent's id hash (never the parent token).
    #[serde(rename = "pa", default, skip_serializing_if = "Option::is_none")]
    parent: Option<String>,
    #[serde(rename = "pt")]
    path: String,
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    meta: Option<BTreeMap<String, String>>,
    #[serde(rename = "d")]
    display_name: String,
    /// Unix nanoseconds.
    #[serde(rename = "c")]
    created_ns: i64,
    /// Seconds; batch tokens always expire.
    #[serde(rename = "t")]
    ttl: u64,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    entity_id: Option<String>,
    #[serde(rename = "b", default, skip_serializing_if = "Vec::is_empty")]
    bound_cidrs: Vec<String>,
    /// The issuing auth mount's accessor, for login tokens.
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    mount_accessor: Option<String>,
}

/// The token for `entry`. Fields a batch token cannot have (accessor, use count, period,
/// explicit max TTL, renewal state) are not carried.
pub fn encode(barrier: &Barrier, entry: &TokenEntry) -> CoreResult<String> {
    let claims = Claims {
        policies: entry.policies.clone(),
        parent: entry.parent.clone(),
        path: entry.path.clone(),
        meta: entry.meta.clone(),
        display_name: entry.display_name.clone(),
        created_ns: entry.created_ns,
        ttl: entry.creation_ttl,
        role: entry.role.clone(),
        entity_id: entry.entity_id.clone(),
        bound_cidrs: entry.bound_cidrs.clone(),
        mount_accessor: entry.login.as_ref().map(|l| l.mount_accessor.clone()),
    };
    let sealed = barrier.seal_detached(CONTEXT, &serde_json::to_vec(&claims)?)?;
    Ok(format!("{BATCH_PREFIX}{}", URL_SAFE_NO_PAD.encode(sealed)))
}

/// The entry a batch token carries, expired or not; `None` for anything that is not a
/// batch token this cluster issued (a forged, truncated or foreign token is simply unknown).
pub fn decode(barrier: &Barrier, token: &str) -> CoreResult<Option<TokenEntry>> {
    let Some(body) = token.strip_prefix(BATCH_PREFIX) else {
        return Ok(None);
    };
    let Ok(sealed) = URL_SAFE_NO_PAD.decode(body) else {
        return Ok(None);
    };
    let plaintext = match barrier.open_detached(CONTEXT, &sealed) {
        Ok(p) => p,
        Err(BarrierError::Sealed) => return Err(BarrierError::Sealed.into()),
        Err(_) => return Ok(None),
    };
    let Ok(claims) = serde_json::from_slice::<Claims>(plaintext.expose()) else {
        return Ok(None);
    };
    let expire_ns = claims.created_ns.saturating_add(
        i64::try_from(claims.ttl)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000_000),
    );
    Ok(Some(TokenEntry {
        accessor: String::new(),
        policies: claims.policies,
        parent: claims.parent,
        path: claims.path,
        meta: claims.meta,
        display_name: claims.display_name,
        num_uses: 0,
        created_ns: claims.created_ns,
        creation_ttl: claims.ttl,
        explicit_max_ttl: 0,
        period: 0,
        renewable: false,
        expire_ns: Some(expire_ns),
        last_renewal_ns: None,
        last_ttl: 0,
        role: claims.role,
        entity_id: claims.entity_id,
        bound_cidrs: claims.bound_cidrs,
        login: claims.mount_accessor.map(|mount_accessor| LoginRecord {
            mount_accessor,
            policies: Vec::new(),
            internal: Map::new(),
        }),
        batch: true,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use std::sync::Arc;

    use tresor_sdk::secret::SecretBytes;
    use tresor_storage::MemoryBackend;

    use super::*;

    async fn barrier() -> Barrier {
        let b = Barrier::new(Arc::new(MemoryBackend::new()));
        let key = SecretBytes::new(vec![7u8; 32]);
        b.initialize(&key).await.unwrap();
        b.unseal(&key).await.unwrap();
        b
    }

    fn entry() -> TokenEntry {
        TokenEntry {
            accessor: "ignored".into(),
            policies: vec!["default".into(), "p1".into()],
            parent: Some("abc".into()),
            path: "auth/token/create".into(),
            meta: Some(BTreeMap::from([("k".into(), "v".into())])),
            display_name: "token".into(),
            num_uses: 0,
            created_ns: 1_000_000_000_000,
            creation_ttl: 60,
            explicit_max_ttl: 0,
            period: 0,
            renewable: false,
            expire_ns: None,
            last_renewal_ns: None,
            last_ttl: 0,
            role: None,
            entity_id: Some("ent".into()),
            bound_cidrs: vec!["10.0.0.0/8".into()],
            login: None,
            batch: true,
        }
    }

    #[tokio::test]
    async fn a_batch_token_round_trips_its_entry() {
        let b = barrier().await;
        let token = encode(&b, &entry()).unwrap();
        assert!(token.starts_with(BATCH_PREFIX));
        let back = decode(&b, &token).unwrap().unwrap();
        assert_eq!(back.policies, ["default", "p1"]);
        assert_eq!(back.parent.as_deref(), Some("abc"));
        assert_eq!(back.meta, entry().meta);
        assert_eq!(back.entity_id.as_deref(), Some("ent"));
        assert_eq!(back.bound_cidrs, ["10.0.0.0/8"]);
        assert_eq!(back.expire_ns, Some(1_000_000_000_000 + 60_000_000_000));
        assert!(back.batch && !back.renewable && back.accessor.is_empty());
    }

    #[tokio::test]
    async fn tampered_truncated_or_foreign_tokens_are_unknown() {
        let b = barrier().await;
        let token = encode(&b, &entry()).unwrap();
        // Flip one character of the ciphertext.
        let mut chars: Vec<char> = token.chars().collect();
        let i = chars.len() / 2;
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        assert!(decode(&b, &tampered).unwrap().is_none());
        assert!(decode(&b, &token[..token.len() - 4]).unwrap().is_none());
        assert!(decode(&b, "b.!!!").unwrap().is_none());
        assert!(decode(&b, "b.").unwrap().is_none());
        assert!(decode(&b, "s.whatever").unwrap().is_none());
        // Another cluster (another keyring) cannot open it.
        let other = barrier().await;
        other.rotate().await.unwrap();
        let foreign = encode(&other, &entry()).unwrap();
        assert!(decode(&b, &foreign).unwrap().is_none());
    }

    #[tokio::test]
    async fn a_batch_token_survives_key_rotation_but_not_sealing() {
        let b = barrier().await;
        let token = encode(&b, &entry()).unwrap();
        b.rotate().await.unwrap();
        assert!(decode(&b, &token).unwrap().is_some());
        b.seal();
        assert!(decode(&b, &token).is_err());
    }
}
