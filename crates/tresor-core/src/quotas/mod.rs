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
//! request's auth mount (the role the auth method resolves from the login body), then a quota
//! on the exact path suffix within the mount, then a suffix glob (`data/app*`), longest
//! first, then the mount's own quota, then the global one.
//!
//! Exempt paths match as OpenBao's path manager matches them: every entry is a prefix (a
//! trailing `*` is dropped), a leading `!` makes an exception, and the longest matching entry
//! decides.

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

    fn limiter(&self) -> Arc<Limiter> {
        Arc::new(Limiter::new(
            self.rate,
            Duration::from_secs(self.interval_secs.max(1)),
            (self.block_interval_secs > 0).then(|| Duration::from_secs(self.block_interval_secs)),
        ))
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
    /// The login role the auth method resolved from the body, when the mount has role
    /// quotas (empty otherwise).
    pub role: &'a str,
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
    /// Shared with the quota's next version when only its mount path changes (a remount).
    limiter: Arc<Limiter>,
}

/// Everything a request check needs, immutable; replaced as a whole on any change.
#[derive(Debug, Default)]
pub struct QuotaSet {
    config: QuotaConfig,
    exempt: Exempt,
    by_name: BTreeMap<String, Arc<ActiveQuota>>,
    /// (mount path, path suffix) → quota, for every quota without a role.
    by_scope: HashMap<(String, String), Arc<ActiveQuota>>,
    /// (auth mount path, role) → quota.
    by_role: HashMap<(String, String), Arc<ActiveQuota>>,
    /// The mounts with role quotas: only their requests need the role resolved.
    role_mounts: HashSet<String>,
    /// Whether any quota has a glob suffix, so the common case skips the glob walk.
    has_globs: bool,
}

/// `rate_limit_exempt_paths`, matched as OpenBao's `pathmanager.HasPath`: the longest entry
/// that is a prefix of the path decides; `!` entries are exceptions.
#[derive(Debug, Default)]
struct Exempt {
    /// (prefix, exception), longest prefix first.
    entries: Vec<(String, bool)>,
}

impl Exempt {
    fn new(paths: &[String]) -> Self {
        let mut entries: Vec<(String, bool)> = Vec::new();
        for path in paths {
            if path.is_empty() {
                continue;
            }
            let (path, exception) = match path.strip_prefix('!') {
                Some(rest) => (rest, true),
                None => (path.as_str(), false),
            };
            let prefix = path.strip_suffix('*').unwrap_or(path).to_owned();
            // A later entry for the same prefix replaces an earlier one, as a radix insert.
            entries.retain(|(p, _)| *p != prefix);
            entries.push((prefix, exception));
        }
        entries.sort_by_key(|e| std::cmp::Reverse(e.0.len()));
        Self { entries }
    }

    fn contains(&self, path: &str) -> bool {
        self.entries
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            .is_some_and(|(_, exception)| !exception)
    }
}

impl QuotaSet {
    fn build(config: QuotaConfig, quotas: Vec<Arc<ActiveQuota>>) -> Self {
        let exempt = Exempt::new(&config.rate_limit_exempt_paths);
        let mut set = QuotaSet {
            config,
            exempt,
            ..QuotaSet::default()
        };
        for quota in quotas {
            if !quota.record.role.is_empty() {
                set.role_mounts.insert(quota.record.mount_path.clone());
                set.by_role.insert(
                    (quota.record.mount_path.clone(), quota.record.role.clone()),
                    Arc::clone(&quota),
                );
            } else {
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

    /// Whether any quota applies to anything.
    fn is_empty(&self) -> bool {
        self.by_scope.is_empty() && self.by_role.is_empty()
    }

    /// The most specific quota for the request.
    fn find(&self, request: &QuotaRequest<'_>) -> Option<&Arc<ActiveQuota>> {
        if self.is_empty() {
            return None;
        }
        let lookup =
            |mount: &str, suffix: &str| self.by_scope.get(&(mount.to_owned(), suffix.to_owned()));
        if let Some(mount) = request.mount_path {
            if !request.role.is_empty()
                && let Some(q) = self
                    .by_role
                    .get(&(mount.to_owned(), request.role.to_owned()))
            {
                return Some(q);
            }
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

    /// Whether any quota is defined: without one, a request's check needs no mount lookup.
    pub fn any(&self) -> bool {
        !self.snapshot().is_empty()
    }

    /// Checks a request against the quota that applies to it; `None` when none does (or the
    /// path is exempt).
    pub fn check(&self, request: &QuotaRequest<'_>) -> Option<QuotaOutcome> {
        let set = self.snapshot();
        if set.is_empty() || set.exempt.contains(request.path) {
            return None;
        }
        let quota = set.find(request)?;
        Some(QuotaOutcome {
            decision: quota.limiter.take(request.client),
            response_headers: set.config.enable_rate_limit_response_headers,
        })
    }

    /// Whether a request to `mount_path` needs its login role resolved: some quota on that
    /// mount names a role (OpenBao's `QueryResolveRoleQuotas`).
    pub fn needs_role(&self, mount_path: &str) -> bool {
        self.snapshot().role_mounts.contains(mount_path)
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

    /// A mount moved (`sys/remount`): its quotas follow it, as OpenBao's `HandleRemount` does
    /// (every quota on the mount: with or without a path suffix or a role). Each moved record
    /// is stored again under its name with the new mount path, so the move survives a restart.
    pub async fn mount_moved(&self, from: &str, to: &str) -> CoreResult<()> {
        let _guard = self.changes.lock().await;
        let current = self.snapshot();
        let mut quotas = Vec::with_capacity(current.by_name.len());
        let mut ops = Vec::new();
        for quota in current.by_name.values() {
            if quota.record.mount_path != from {
                quotas.push(Arc::clone(quota));
                continue;
            }
            let mut record = quota.record.clone();
            record.mount_path = to.to_owned();
            ops.push(crate::barrier::BarrierOp::Put {
                path: format!("{QUOTA_PREFIX}{}", record.name),
                value: tresor_sdk::secret::SecretBytes::from(serde_json::to_vec(&record)?),
            });
            // The buckets move with the quota: a remount is no reason to forgive clients.
            quotas.push(Arc::new(ActiveQuota {
                limiter: Arc::clone(&quota.limiter),
                record,
            }));
        }
        if ops.is_empty() {
            return Ok(());
        }
        self.barrier.transaction(ops).await?;
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
        found_role(set, path, mount, "")
    }

    fn found_role(set: &QuotaSet, path: &str, mount: Option<&str>, role: &str) -> Option<String> {
        set.find(&QuotaRequest {
            path,
            mount_path: mount,
            role,
            client: IpAddr::from([127, 0, 0, 1]),
        })
        .map(|q| q.record.name.clone())
    }

    fn role_quota(name: &str, mount: &str, role: &str) -> Arc<ActiveQuota> {
        let q = quota(name, mount, "");
        let mut record = q.record.clone();
        record.role = role.to_owned();
        Arc::new(ActiveQuota {
            limiter: record.limiter(),
            record,
        })
    }

    #[test]
    fn a_role_quota_wins_on_its_mount_for_its_role_only() {
        let set = QuotaSet::build(
            QuotaConfig::default(),
            vec![
                quota("mount", "auth/approle/", ""),
                quota("login", "auth/approle/", "login"),
                role_quota("app", "auth/approle/", "app"),
            ],
        );
        let m = Some("auth/approle/");
        let path = "auth/approle/login";
        assert_eq!(found_role(&set, path, m, "app").unwrap(), "app");
        assert_eq!(found_role(&set, path, m, "other").unwrap(), "login");
        assert_eq!(found_role(&set, path, m, "").unwrap(), "login");
        assert_eq!(
            found_role(&set, "auth/approle/role/x", m, "").unwrap(),
            "mount"
        );
        assert!(set.role_mounts.contains("auth/approle/"));
        // A role quota alone still makes the set non-empty.
        let only = QuotaSet::build(
            QuotaConfig::default(),
            vec![role_quota("app", "auth/approle/", "app")],
        );
        assert_eq!(found_role(&only, path, m, "app").unwrap(), "app");
        assert_eq!(found_role(&only, path, m, "b"), None);
    }

    #[test]
    fn exempt_paths_match_as_prefixes_with_exceptions() {
        let exempt = Exempt::new(&[
            "sys/health".to_owned(),
            "secret/data/open*".to_owned(),
            "secret/".to_owned(),
            "!secret/data/closed".to_owned(),
            String::new(),
        ]);
        assert!(exempt.contains("sys/health"));
        assert!(exempt.contains("sys/healthz"), "a prefix, glob or not");
        assert!(exempt.contains("secret/data/open/x"));
        assert!(exempt.contains("secret/data/x"));
        assert!(!exempt.contains("secret/data/closed"));
        assert!(!exempt.contains("secret/data/closed/deeper"));
        assert!(!exempt.contains("sys/mounts"));
        assert!(!exempt.contains("secret"), "shorter than the entry");
        assert!(!Exempt::new(&[]).contains("sys/health"));
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
