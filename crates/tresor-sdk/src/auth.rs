//! The interface between the core and an auth method (Kubernetes, JWT/OIDC, AppRole, …).
//!
//! An auth method is mounted under `auth/<path>/` like a secrets engine is mounted under its
//! path, and it serves its configuration and role endpoints through the same [`Request`] /
//! [`Response`] types. What differs is login: a login path (declared by
//! [`AuthMethod::unauthenticated_paths`]) is reached without a token and without an ACL check,
//! and the method answers with a [`Response::auth`] naming who logged in and the role's token
//! settings. The core, never the method, creates the token, its lease and the identity entity.
//!
//! Refusals name the binding that failed through [`EngineError::Denied`]: the core shows the
//! detail to the caller when the mount's `verbose_denials` option is on (the default) and
//! always writes it to the server log.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::engine::{EngineResult, MountInfo, Request, Response};
use crate::storage::Storage;

/// The token a role's logins get: Vault's common `token_*` role parameters (tokenutil).
/// Durations are whole seconds; zero means "not set" (the mount's or the system's value
/// applies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSettings {
    #[serde(default)]
    pub policies: Vec<String>,
    #[serde(default)]
    pub ttl: u64,
    #[serde(default)]
    pub max_ttl: u64,
    #[serde(default)]
    pub explicit_max_ttl: u64,
    #[serde(default)]
    pub period: u64,
    /// Uses before the token is revoked; zero is unlimited.
    #[serde(default)]
    pub num_uses: u64,
    /// CIDR blocks (`10.0.0.0/8`, or a single address) the token may be used from.
    #[serde(default)]
    pub bound_cidrs: Vec<String>,
    /// `default`, `service`, `batch`, `default-service` or `default-batch`.
    #[serde(default = "default_token_type")]
    pub token_type: String,
    #[serde(default)]
    pub no_default_policy: bool,
}

fn default_token_type() -> String {
    "default".to_owned()
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            policies: Vec::new(),
            ttl: 0,
            max_ttl: 0,
            explicit_max_ttl: 0,
            period: 0,
            num_uses: 0,
            bound_cidrs: Vec::new(),
            token_type: default_token_type(),
            no_default_policy: false,
        }
    }
}

/// The identity an auth method vouches for: the alias of an identity entity. Its name is
/// unique within the mount (a service account uid, a JWT `sub`, an AppRole role id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alias {
    pub name: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// A successful login, as the method reports it. The core turns it into a token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Login {
    /// Shown as the token's `display_name`, prefixed with the mount path by the core
    /// (`kubernetes-default-app`).
    pub display_name: String,
    /// The `auth.metadata` of the response and the token's `meta`. Never secret values.
    pub metadata: BTreeMap<String, String>,
    pub alias: Alias,
    /// Names of external groups the identity belongs to (a JWT's `groups_claim`).
    pub group_aliases: Vec<String>,
    pub token: TokenSettings,
    /// Whether the token may be renewed (true for every built-in method).
    pub renewable: bool,
    /// What the method needs to decide a later renewal (a role name, a secret-id accessor).
    /// Stored under the barrier with the token; never shown to clients.
    pub internal: Map<String, Value>,
}

/// A token issued by this method's login, handed back to [`AuthMethod::renew`].
#[derive(Debug, Clone)]
pub struct LoginRenewal {
    /// The policies the token was issued with (as the method returned them).
    pub policies: Vec<String>,
    pub metadata: BTreeMap<String, String>,
    pub internal: Map<String, Value>,
    pub mount: Arc<MountInfo>,
}

/// What an auth method answers when one of its tokens is renewed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenewDecision {
    /// The role's current TTL and max TTL (seconds, zero = unset); the renewal is capped by
    /// them as in Vault, so shortening a role's TTL shortens renewals of existing tokens.
    pub ttl: u64,
    pub max_ttl: u64,
    pub period: u64,
}

impl RenewDecision {
    /// The decision of a role that still exists: its current token settings apply.
    pub fn from_settings(settings: &TokenSettings) -> Self {
        Self {
            ttl: settings.ttl,
            max_ttl: settings.max_ttl,
            period: settings.period,
        }
    }
}

/// An auth method mounted at some `auth/<path>/`.
#[async_trait]
pub trait AuthMethod: Send + Sync + std::fmt::Debug {
    /// Paths (relative to the mount) served without a token and without an ACL check: the
    /// login endpoints. An entry ending in `*` matches by prefix.
    fn unauthenticated_paths(&self) -> &'static [&'static str];

    /// Handles one request: configuration and roles (authorised by the core first), or a
    /// login (unauthenticated). A login answers with [`Response::auth`] set.
    async fn handle(
        &self,
        request: &Request,
        storage: &dyn Storage,
    ) -> EngineResult<Option<Response>>;

    /// Whether the target of a write exists, to tell `create` from `update` (as for engines).
    async fn exists(&self, request: &Request, storage: &dyn Storage) -> EngineResult<Option<bool>> {
        let _ = (request, storage);
        Ok(None)
    }

    /// Called once when the method is mounted (and on every unseal).
    async fn initialize(&self, storage: &dyn Storage) -> EngineResult<()> {
        let _ = storage;
        Ok(())
    }

    /// Decides a renewal of a token this method issued: an error (for instance
    /// [`crate::engine::EngineError::Denied`] when the role is gone or its policies changed)
    /// refuses it. The default allows it with no role limits.
    async fn renew(
        &self,
        login: &LoginRenewal,
        storage: &dyn Storage,
    ) -> EngineResult<RenewDecision> {
        let _ = (login, storage);
        Ok(RenewDecision::default())
    }

    /// The login role a login body names, for role-based rate-limit quotas (OpenBao's
    /// `ResolveRoleOperation`): `None` when the method has no roles or the body names no
    /// existing one. Called before the login itself, so it must not change anything.
    async fn resolve_role(
        &self,
        data: &serde_json::Map<String, serde_json::Value>,
        storage: &dyn Storage,
    ) -> EngineResult<Option<String>> {
        let _ = (data, storage);
        Ok(None)
    }

    /// Called by the core about once a minute while unsealed (tidying expired secret ids).
    async fn periodic(&self, storage: &dyn Storage) -> EngineResult<()> {
        let _ = storage;
        Ok(())
    }
}

/// Builds auth method instances of one type from a mount's settings.
pub trait AuthMethodFactory: Send + Sync + std::fmt::Debug {
    /// The `sys/auth` types this factory builds (`["jwt", "oidc"]`).
    fn types(&self) -> &[&'static str];
    /// Builds the method for a mount; `InvalidRequest` for bad options.
    fn build(&self, mount: &MountInfo) -> EngineResult<Arc<dyn AuthMethod>>;
}

/// Policy names as Vault keeps them on a token: trimmed, lowercased, sorted, de-duplicated, no
/// empties. The one implementation for the core (tokens, roles) and the auth methods.
pub fn normalise_policies(policies: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = policies
        .into_iter()
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether `path` (relative to the mount) is one of `patterns` (an entry ending in `*`
/// matches by prefix).
pub fn path_matches(patterns: &[&str], path: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => path == *p,
    })
}

/// Parses a CIDR block or a bare address (`10.0.0.0/8`, `127.0.0.1`, `::1`), as Vault's
/// `parseutil.ParseAddrs` does. The error names the item, which is an address, not a secret.
pub fn parse_cidr(item: &str) -> Result<IpNet, String> {
    let item = item.trim();
    if let Ok(net) = item.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    item.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("invalid CIDR block or address {item:?}"))
}

/// Whether `ip` falls in one of `cidrs` (an empty list binds nothing: every address passes).
/// Unparseable entries never match, so a corrupted binding fails closed. An unknown client
/// address (`None`) passes only an empty list.
pub fn cidrs_allow(cidrs: &[String], ip: Option<IpAddr>) -> bool {
    if cidrs.is_empty() {
        return true;
    }
    let Some(ip) = ip else {
        return false;
    };
    // An IPv4 client reached over an IPv6 socket shows up as ::ffff:a.b.c.d.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    cidrs
        .iter()
        .filter_map(|c| parse_cidr(c).ok())
        .any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthenticated_paths_match_exactly_or_by_prefix() {
        let patterns = ["login", "oidc/callback", "login/*"];
        assert!(path_matches(&patterns, "login"));
        assert!(path_matches(&patterns, "login/alice"));
        assert!(path_matches(&patterns, "oidc/callback"));
        assert!(!path_matches(&patterns, "oidc/callbackx"));
        assert!(!path_matches(&patterns, "role/login"));
        assert!(!path_matches(&patterns, "logi"));
    }

    #[test]
    fn cidr_bindings_match_blocks_and_single_addresses() {
        let list = vec!["10.0.0.0/8".to_owned(), "192.168.1.7".to_owned()];
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert!(cidrs_allow(&list, ip("10.1.2.3")));
        assert!(cidrs_allow(&list, ip("192.168.1.7")));
        assert!(cidrs_allow(&list, ip("::ffff:10.9.9.9")));
        assert!(!cidrs_allow(&list, ip("192.168.1.8")));
        assert!(!cidrs_allow(&list, None));
        assert!(cidrs_allow(&[], None));
        assert!(!cidrs_allow(&["not-a-cidr".to_owned()], ip("10.0.0.1")));
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert_eq!(parse_cidr("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
    }

    #[test]
    fn token_settings_default_to_vaults_defaults_when_deserialised() {
        let parsed: TokenSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(parsed.token_type, "default");
        assert_eq!(parsed.ttl, 0);
        assert!(parsed.policies.is_empty());
    }
}
