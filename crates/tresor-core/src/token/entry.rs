//! What the server knows about a token. Never the token itself.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// A stored token entry, keyed by the salted HMAC of the token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenEntry {
    pub accessor: String,
    /// Sorted, de-duplicated; `["root"]` for root tokens.
    pub policies: Vec<String>,
    /// The parent's id hash; `None` for orphans.
    #[serde(default)]
    pub parent: Option<String>,
    pub path: String,
    #[serde(default)]
    pub meta: Option<BTreeMap<String, String>>,
    pub display_name: String,
    /// Remaining uses; 0 means unlimited.
    #[serde(default)]
    pub num_uses: i64,
    /// Unix nanoseconds.
    pub created_ns: i64,
    /// The TTL given at creation, in seconds (0: none).
    #[serde(default)]
    pub creation_ttl: u64,
    #[serde(default)]
    pub explicit_max_ttl: u64,
    #[serde(default)]
    pub period: u64,
    #[serde(default)]
    pub renewable: bool,
    /// Unix nanoseconds at which the token stops working; `None` never expires.
    #[serde(default)]
    pub expire_ns: Option<i64>,
    #[serde(default)]
    pub last_renewal_ns: Option<i64>,
    /// The TTL granted by the last renewal, in seconds (0: never renewed).
    #[serde(default)]
    pub last_ttl: u64,
    #[serde(default)]
    pub role: Option<String>,
    /// The identity entity the token acts for (tokens from an auth method's login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    /// CIDR blocks the token may be used from (a role's `token_bound_cidrs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bound_cidrs: Vec<String>,
    /// Set on tokens issued by an auth method's login: what its renewal check needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<LoginRecord>,
    /// A batch token: never stored (the token itself carries this entry, encrypted), no
    /// accessor, not renewable, not revocable, no cubbyhole (see `token::batch`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub batch: bool,
}

/// What a login token remembers of the login, for the method's renewal check.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoginRecord {
    /// The auth mount's accessor (survives a move of the mount).
    pub mount_accessor: String,
    /// The policies the method granted (before `default` was added).
    #[serde(default)]
    pub policies: Vec<String>,
    /// The method's own renewal data (a role name, a secret-id accessor); never a secret.
    #[serde(default)]
    pub internal: Map<String, Value>,
}

pub(crate) fn now_ns() -> i64 {
    tresor_sdk::timestamp::now_nanos()
}

pub(crate) fn rfc3339(ns: i64) -> Value {
    Value::String(tresor_sdk::timestamp::rfc3339_nano(ns))
}

impl TokenEntry {
    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }

    /// `service` or `batch`, as Vault names token types.
    pub fn token_type(&self) -> &'static str {
        if self.batch { "batch" } else { "service" }
    }

    pub fn is_orphan(&self) -> bool {
        self.parent.is_none()
    }

    pub fn expired_at(&self, now: i64) -> bool {
        self.expire_ns.is_some_and(|e| e <= now)
    }

    /// Remaining lifetime in whole seconds (0 when it never expires).
    pub fn ttl_secs(&self, now: i64) -> i64 {
        self.expire_ns
            .map_or(0, |e| ((e - now).max(0)) / 1_000_000_000)
    }

    /// The `data` of `auth/token/lookup*`. `id` is the token when the caller presented it,
    /// empty for lookups by accessor.
    pub fn lookup_data(&self, id: &str) -> Map<String, Value> {
        let now = now_ns();
        let mut data = json!({
            "accessor": self.accessor,
            "creation_time": self.created_ns / 1_000_000_000,
            "creation_ttl": self.creation_ttl,
            "display_name": self.display_name,
            "entity_id": self.entity_id.as_deref().unwrap_or_default(),
            "expire_time": self.expire_ns.map_or(Value::Null, rfc3339),
            "explicit_max_ttl": self.explicit_max_ttl,
            "id": id,
            "issue_time": rfc3339(self.created_ns),
            "meta": self.meta,
            "num_uses": self.num_uses,
            "orphan": self.is_orphan(),
            "path": self.path,
            "policies": self.policies,
            "renewable": self.renewable,
            "ttl": self.ttl_secs(now),
            "type": self.token_type(),
        });
        if let Some(obj) = data.as_object_mut() {
            // OpenBao's lookup of the root token minted by init shows neither of these.
            if self.path == "auth/token/root" {
                obj.remove("issue_time");
                obj.remove("renewable");
            }
            // A role's TTL limits stay on the role: the token shows none of its own.
            if self.role.is_some() {
                obj.insert("explicit_max_ttl".into(), json!(0));
            }
            if let Some(r) = self.last_renewal_ns {
                obj.insert("last_renewal".into(), rfc3339(r));
                obj.insert("last_renewal_time".into(), json!(r / 1_000_000_000));
            }
            if self.period > 0 && self.role.is_none() {
                obj.insert("period".into(), json!(self.period));
            }
            if let Some(role) = &self.role {
                obj.insert("role".into(), json!(role));
            }
            if !self.bound_cidrs.is_empty() {
                obj.insert("bound_cidrs".into(), json!(self.bound_cidrs));
            }
        }
        match data {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    /// The `auth` block returned when a token is created or renewed.
    pub fn auth_block(&self, token: &str, lease_duration: u64) -> Value {
        json!({
            "client_token": token,
            "accessor": self.accessor,
            "policies": self.policies,
            "token_policies": self.policies,
            "metadata": self.meta,
            "lease_duration": lease_duration,
            "renewable": self.renewable,
            "entity_id": self.entity_id.as_deref().unwrap_or_default(),
            "token_type": self.token_type(),
            "orphan": self.is_orphan(),
            "mfa_requirement": null,
            "num_uses": self.num_uses,
        })
    }
}
