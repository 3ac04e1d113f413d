//! Rate-limit quotas (`sys/quotas/rate-limit/:name`, `sys/quotas/config`).
//!
//! # Layout
//! - `limiter`: one quota's per-client buckets ([`Decision`]).
//! - this module: the persisted records (below the barrier, under `sys/quotas/`), the
//!   in-memory [`QuotaSet`] built from them, and [`QuotaStore`], which swaps a new set in on
//!   every change. Checking a request reads the current set (one `Arc` clone) and takes one
//!   bucket lock: no storage read on the request path.
//!
//! Which quota applies is Vault's rule: the most specific one wins. A role quota on the
//! request's auth mount, then a quota on the exact path suffix within the mount, then a
//! suffix glob (`data/app*`), longest first, then the mount's own quota, then the global one.

mod api;
mod limiter;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

pub use limiter::Decision;
use limiter::Limiter;

use crate::barrier::Barrier;
use crate::error::{CoreError, CoreResult};

const QUOTA_PREFIX: &str = "sys/quotas/rate-limit/";
const CONFIG_PATH: &str = "sys/quotas/config";

/// The paths no rate-limit quota applies to until an operator sets the list (Vault's).
pub const DEFAULT_EXEMPT_PATHS: &[&str] = &[
    "sys/generate-recovery-token/attempt",
    "sys/generate-recovery-token/update",
    "sys/generate-root/attempt",
    "sys/generate-root/update",
    "sys/health",
    "sys/seal-status",
    "sys/unseal",
];

/// One rate-limit quota, as stored and as `sys/quotas/rate-limit/:name` reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimitQuota {
    pub name: String,
    /// The API path of the mount (`secret/`, `auth/approle/`); empty for a global quota.
    pub mount_path: String,
    /// Within the mount, without a trailing slash; may end in `*` (a prefix glob).
    pub path_suffix: String,
    pub role: String,
    pub rate: f64,
    pub interval_secs: u64,
    pub block_interval_secs: u64,
    pub inheritable: bool,
}

impl RateLimitQuota {
    /// `path` as Vault reads it back: mount path and suffix joined.
    pub fn path(&self) -> String {
        format!("{}{}", self.mount_path, self.path_suffix)
    }

    fn limiter(&self) -> Limiter {
        Limiter::new(
            self.rate,
            Duration::from_secs(self.interval_secs.max(1)),
            (self.block_interval_secs > 0).then(|| Duration::from_secs(self.block_interval_secs)),
        )
    }
}

/// `sys/quotas/config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaConfig {
    pub enable_rate_limit_audit_logging: bool,
    pub enable_rate_limit_response_headers: bool,
    pub rate_limit_exempt_paths: Vec<String>,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            enable_rate_limit_audit_logging: false,
            enable_rate_limit_response_headers: false,
            rate_limit_exempt_paths: DEFAULT_EXEMPT_PATHS
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
        }
    }
}

/// What a write of `sys/quotas/rate-limit/:name` asks for, already decoded; the mount part of
/// `path` is resolved by the caller, which knows the mount tables.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaSpec {
    pub mount_path: String,
    pub path_suffix: String,
    pub role: String,
    pub rate: f64,
    pub interval_secs: u64,
    pub block_interval_secs: u64,
    pub inheritable: bool,
}

/// A request as a quota sees it.
#[derive(Debug, Clone, Copy)]
pub struct QuotaRequest<'a> {
    /// The API path, without `/v1/`.
    pub path: &'a str,
    /// The API path of the mount serving it (`secret/`, `auth/approle/`, `sys/`), if any.
    pub mount_path: Option<&'a str>,
    pub client: IpAddr,
}

/// The refusal or the headers a checked request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaOutcome {
    pub decision: Decision,
    /// `sys/quotas/config`'s `enable_rate_limit_response_headers`.
    pub response_headers: bool,
}

#[derive(Debug)]
struct ActiveQuota {
    record: RateLimitQuota,
    limiter: Limiter,
}

/// Everything a request check needs, immutable; replaced as a whole on any change.
#[derive(Debug, Default)]
pub struct QuotaSet {
    config: QuotaConfig,
    exempt: HashSet<String>,
    by_name: BTreeMap<String, Arc<ActiveQuota>>,
    /// (mount path, path suffix) → quota, for every quota without a role.
    by_scope: HashMap<(String, String), Arc<ActiveQuota>>,
    /// Whether any quota has a glob suffix, so the common case skips the glob walk.
    has_globs: bool,
}

impl QuotaSet {
    fn build(config: QuotaConfig, quotas: Vec<Arc<ActiveQuota>>) -> Self {
        let exempt = config.rate_limit_exempt_paths.iter().cloned().collect();
        let mut set = QuotaSet {
            config,
            exempt,
            ..QuotaSet::default()
        };
        for quota in quotas {
            if quota.record.role.is_empty() {
                set.has_globs |= quota.record.path_suffix.ends_with('*');
                set.by_scope.insert(
                    (
                        quota.record.mount_path.clone(),
                        quota.record.path_suffix.clone(),
                    ),
                    Arc::clone(&quota),
                );
            }
            set.by_name.insert(quota.record.name.clone(), quota);
        }
        set
    }

    /// The most specific quota for the request (role quotas are not applied: see the docs).
    fn find(&self, request: &QuotaRequest<'_>) -> Option<&Arc<ActiveQuota>> {
        if self.by_scope.is_empty() {
            return None;
        }
        let lookup =
            |mount: &str, suffix: &str| self.by_scope.get(&(mount.to_owned(), suffix.to_owned()));
        if let Some(mount) = request.mount_path {
            let suffix = request
                .path
                .strip_prefix(mount.trim_end_matches('/'))
                .unwrap_or("")
                .trim_start_matches('/')
                .trim_end_matches('/');
            if !suffix.is_empty()
                && let Some(q) = lookup(mount, suffix)
            {
                return Some(q);
            }
            if self.has_globs {
                for end in (0..=suffix.len()).rev() {
                    if let Some(prefix) = suffix.get(..end)
                        && let Some(q) = lookup(mount, &format!("{prefix}*"))
                    {
                        return Some(q);
                    }
                }
            }
            if let Some(q) = lookup(mount, "") {
                return Some(q);
            }
        }
        lookup("", "")
    }
}

/// The quotas of an unsealed server: persisted below the barrier, checked from memory.
#[derive(Debug)]
pub struct QuotaStore {
    barrier: Arc<Barrier>,
    current: RwLock<Arc<QuotaSet>>,
    /// Serialises changes (read-modify-write of the set); checks never take it.
    changes: Mutex<()>,
}

impl QuotaStore {
    /// Loads every quota and the config at unseal.
    pub async fn open(barrier: Arc<Barrier>) -> CoreResult<Self> {
        let config = match barrier.get(CONFIG_PATH).await? {
            Some(raw) => serde_json::from_slice(raw.expose())?,
            None => QuotaConfig::default(),
        };
        let mut quotas = Vec::new();
        for name in barrier.list(QUOTA_PREFIX).await? {
            let path = format!("{QUOTA_PREFIX}{name}");
            if let Some(raw) = barrier.get(&path).await? {
                let record: RateLimitQuota = serde_json::from_slice(raw.expose())?;
                quotas.push(Arc::new(ActiveQuota {
                    limiter: record.limiter(),
                    record,
                }));
            }
        }
        Ok(Self {
            barrier,
            current: RwLock::new(Arc::new(QuotaSet::build(config, quotas))),
            changes: Mutex::new(()),
        })
    }

    fn snapshot(&self) -> Arc<QuotaSet> {
        self.current
            .read()
            .map(|set| Arc::clone(&set))
            .unwrap_or_default()
    }

    fn swap(&self, set: QuotaSet) {
        if let Ok(mut slot) = self.current.write() {
            *slot = Arc::new(set);
        }
    }

    /// Checks a request against the quota that applies to it; `None` when none does (or the
    /// path is exempt).
    pub fn check(&self, request: &QuotaRequest<'_>) -> Option<QuotaOutcome> {
        let set = self.snapshot();
        if set.by_scope.is_empty() || set.exempt.contains(request.path.trim_end_matches('/')) {
            return None;
        }
        let quota = set.find(request)?;
        Some(QuotaOutcome {
            decision: quota.limiter.take(request.client),
            response_headers: set.config.enable_rate_limit_response_headers,
        })
    }

    pub fn config(&self) -> QuotaConfig {
        self.snapshot().config.clone()
    }

    pub async fn set_config(&self, config: QuotaConfig) -> CoreResult<()> {
        let _guard = self.changes.lock().await;
        self.barrier
            .put(CONFIG_PATH, &serde_json::to_vec(&config)?)
            .await?;
        let current = self.snapshot();
        let quotas = current.by_name.values().cloned().collect();
        self.swap(QuotaSet::build(config, quotas));
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<RateLimitQuota> {
        self.snapshot().by_name.get(name).map(|q| q.record.clone())
    }

    pub fn names(&self) -> Vec<String> {
        self.snapshot().by_name.keys().cloned().collect()
    }

    /// Creates or replaces a quota. Another quota with the same scope is an error, worded as
    /// OpenBao words it.
    pub async fn put(&self, name: &str, spec: QuotaSpec) -> CoreResult<()> {
        let _guard = self.changes.lock().await;
        let current = self.snapshot();
        if let Some(other) = current.by_name.values().find(|q| {
            q.record.name != name
                && q.record.mount_path == spec.mount_path
                && q.record.path_suffix == spec.path_suffix
                && q.record.role == spec.role
        }) {
            return Err(CoreError::InvalidRequest(format!(
                "quota rule with similar properties exists under the name {:?}",
                other.record.name
            )));
        }
        let record = RateLimitQuota {
            name: name.to_owned(),
            mount_path: spec.mount_path,
            path_suffix: spec.path_suffix,
            role: spec.role,
            rate: spec.rate,
            interval_secs: spec.interval_secs,
            block_interval_secs: spec.block_interval_secs,
            inheritable: spec.inheritable,
        };
        self.barrier
            .put(
                &format!("{QUOTA_PREFIX}{name}"),
                &serde_json::to_vec(&record)?,
            )
            .await?;
        let mut quotas: Vec<_> = current
            .by_name
            .values()
            .filter(|q| q.record.name != name)
            .cloned()
            .collect();
        quotas.push(Arc::new(ActiveQuota {
            limiter: record.limiter(),
            record,
        }));
        self.swap(QuotaSet::build(current.config.clone(), quotas));
        Ok(())
    }

    pub async fn delete(&self, name: &str) -> CoreResult<()> {
        let _guard = self.changes.lock().await;
        self.barrier
            .delete(&format!("{QUOTA_PREFIX}{name}"))
            .await?;
        let current = self.snapshot();
        let quotas = current
            .by_name
            .values()
            .filter(|q| q.record.name != name)
            .cloned()
            .collect();
        self.swap(QuotaSet::build(current.config.clone(), quotas));
        Ok(())
    }

    /// A mount was disabled: its quotas go with it, as in Vault.
    pub async fn mount_disabled(&self, mount_path: &str) -> CoreResult<()> {
        let doomed: Vec<String> = self
            .snapshot()
            .by_name
            .values()
            .filter(|q| q.record.mount_path == mount_path)
            .map(|q| q.record.name.clone())
            .collect();
        for name in doomed {
            self.delete(&name).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;

    fn quota(name: &str, mount: &str, suffix: &str) -> Arc<ActiveQuota> {
        let record = RateLimitQuota {
            name: name.to_owned(),
            mount_path: mount.to_owned(),
            path_suffix: suffix.to_owned(),
            role: String::new(),
            rate: 1.0,
            interval_secs: 1,
            block_interval_secs: 0,
            inheritable: false,
        };
        Arc::new(ActiveQuota {
            limiter: record.limiter(),
            record,
        })
    }

    fn found(set: &QuotaSet, path: &str, mount: Option<&str>) -> Option<String> {
        set.find(&QuotaRequest {
            path,
            mount_path: mount,
            client: IpAddr::from([127, 0, 0, 1]),
        })
        .map(|q| q.record.name.clone())
    }

    #[test]
    fn the_most_specific_quota_wins() {
        let set = QuotaSet::build(
            QuotaConfig::default(),
            vec![
                quota("global", "", ""),
                quota("kv", "secret/", ""),
                quota("app", "secret/", "data/app"),
                quota("team", "secret/", "data/team*"),
                quota("t", "secret/", "data/t*"),
            ],
        );
        let kv = Some("secret/");
        assert_eq!(found(&set, "secret/data/app", kv).unwrap(), "app");
        assert_eq!(found(&set, "secret/data/app/", kv).unwrap(), "app");
        assert_eq!(
            found(&set, "secret/data/app/deeper", kv).unwrap(),
            "kv",
            "an exact suffix is not a prefix"
        );
        assert_eq!(found(&set, "secret/data/team-a/x", kv).unwrap(), "team");
        assert_eq!(found(&set, "secret/data/tx", kv).unwrap(), "t");
        assert_eq!(found(&set, "secret/metadata/x", kv).unwrap(), "kv");
        assert_eq!(found(&set, "secret", kv).unwrap(), "kv");
        assert_eq!(
            found(&set, "cubbyhole/x", Some("cubbyhole/")).unwrap(),
            "global"
        );
        assert_eq!(found(&set, "nowhere/x", None).unwrap(), "global");
        let none = QuotaSet::build(QuotaConfig::default(), vec![quota("kv", "secret/", "")]);
        assert_eq!(found(&none, "cubbyhole/x", Some("cubbyhole/")), None);
    }
}
