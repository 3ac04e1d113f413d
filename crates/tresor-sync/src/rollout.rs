//! Rollout restarts: when a Secret's content changes, the workloads that consume it
//! (`rolloutRestartTargets`) are restarted the way `kubectl rollout restart` does it — one
//! strategic-merge patch of `spec.template.metadata.annotations` setting
//! `kubectl.kubernetes.io/restartedAt` — plus `tresor.dev/restarted-for`, which records the
//! content hash each Secret had when it restarted the workload, so a repeated run, a second
//! controller or `tresor sync status` can tell whether the consumers saw the last change.
//!
//! `tresor.dev/restarted-for` holds `<secret>=<content hash>` entries, comma-separated, one per
//! Secret that restarted the workload: a Deployment fed by two Secrets must not look stale for
//! one because the other restarted it last.
//!
//! Rules:
//! - a Secret whose content changed (`changed`) restarts each target whose entry for it is not
//!   its current hash (an entry equal to it means another run or controller did it already);
//! - an unchanged Secret restarts a target only when the target has an entry for it that is
//!   stale (an earlier restart was deferred or failed): catching up, never a first restart.
//!   So a Secret created for the first time restarts nothing (VSO's rule: workloads that start
//!   after it read it; pods waiting for it start when it appears);
//! - several Secrets changing in one pass restart a target once (one patch, every entry);
//! - at most one restart per target per `min_interval` (the target's own `restartedAt`, from
//!   whoever restarted it, counts): a restart over the limit is deferred, or waited for;
//! - only `Deployment`, `StatefulSet` and `DaemonSet` (apps/v1); others, `argo.Rollout`
//!   included, fail by name. A missing target is a named failure, not an error of the pass
//!   (both only when a change needs the restart: an idle pass reports nothing about them).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};

use crate::apply::kube_reason;
use crate::model::vso::RolloutRestartTarget;
use crate::secret::rfc3339;

/// What `kubectl rollout restart` sets (and `kubectl rollout history` shows).
pub const RESTARTED_AT_ANNOTATION: &str = "kubectl.kubernetes.io/restartedAt";
/// `<secret>=<content hash>,…`: the content each Secret had when it restarted the workload.
pub const RESTARTED_FOR_ANNOTATION: &str = "tresor.dev/restarted-for";

/// The workload kinds a restart can patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl WorkloadKind {
    /// The kind of a `rolloutRestartTargets` entry; anything else is refused by name.
    pub fn parse(kind: &str) -> Result<WorkloadKind, String> {
        match kind {
            "Deployment" => Ok(WorkloadKind::Deployment),
            "StatefulSet" => Ok(WorkloadKind::StatefulSet),
            "DaemonSet" => Ok(WorkloadKind::DaemonSet),
            "argo.Rollout" => Err(
                "kind argo.Rollout is not supported (Deployment, StatefulSet or DaemonSet)".into(),
            ),
            other => Err(format!(
                "kind {other:?} is not supported (Deployment, StatefulSet or DaemonSet)"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
        }
    }

    fn api_resource(self) -> ApiResource {
        ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", self.as_str()))
    }
}

/// A workload in a namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetKey {
    pub namespace: String,
    pub kind: String,
    pub name: String,
}

impl std::fmt::Display for TargetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// One restart per target per `min_interval`. Times are Unix milliseconds; the limiter
/// remembers its own restarts and also honours a target's `restartedAt` set by anyone else.
#[derive(Debug, Clone, Default)]
pub struct RateLimiter {
    min_interval: Duration,
    last: HashMap<TargetKey, i64>,
}

impl RateLimiter {
    pub fn new(min_interval: Duration) -> RateLimiter {
        RateLimiter {
            min_interval,
            last: HashMap::new(),
        }
    }

    pub fn min_interval(&self) -> Duration {
        self.min_interval
    }

    /// The earliest time `target` may be restarted (≤ `now`: at once). `observed` is the
    /// target's own last restart (its `restartedAt`), when it has one.
    pub fn ready_at(&self, target: &TargetKey, observed: Option<i64>, now: i64) -> i64 {
        let interval = i64::try_from(self.min_interval.as_millis()).unwrap_or(i64::MAX / 4);
        let last = self
            .last
            .get(target)
            .copied()
            .into_iter()
            .chain(observed)
            .max();
        match last {
            // A restart "in the future" (a skewed clock) counts as now.
            Some(t) => t.min(now).saturating_add(interval),
            None => now,
        }
    }

    pub fn record(&mut self, target: TargetKey, at: i64) {
        self.last.insert(target, at);
    }
}

/// What to do when a restart is over the rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverLimit {
    /// Report it as deferred; the caller retries later (the controller).
    Defer,
    /// Wait until it may happen when that is at most `max` away, else defer (one-shot runs,
    /// `tresor sync once`, which has no later pass of its own).
    Wait { max: Duration },
}

#[derive(Debug, Clone)]
pub struct RolloutConfig {
    pub over_limit: OverLimit,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        RolloutConfig {
            over_limit: OverLimit::Defer,
        }
    }
}

/// The default minimum interval between two restarts of one workload.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(30);

/// A Secret's part in a restart pass.
#[derive(Debug, Clone)]
pub struct RestartRequest {
    pub namespace: String,
    /// The Secret's name.
    pub secret: String,
    /// Its content hash now (in the cluster).
    pub hash: String,
    /// Whether this pass changed its content.
    pub changed: bool,
    pub targets: Vec<RolloutRestartTarget>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Patched now.
    Restarted,
    /// Its entries already name the current hashes (another run or controller did it).
    AlreadyRestarted,
    /// Nothing changed and no earlier restart is pending.
    NotNeeded,
    /// Over the rate limit: may be restarted from this time (Unix ms) on.
    Deferred { ready_at: i64 },
    /// Named reason (missing target, unsupported kind, denied patch…).
    Failed(String),
}

/// The result for one workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetReport {
    pub target: TargetKey,
    /// The Secrets it was (or would have been) restarted for.
    pub secrets: Vec<String>,
    pub outcome: Outcome,
}

impl std::fmt::Display for TargetReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secrets = self.secrets.join(", ");
        match &self.outcome {
            Outcome::Restarted => write!(f, "restarted {} (Secret {secrets})", self.target),
            Outcome::AlreadyRestarted => {
                write!(f, "{} already restarted for Secret {secrets}", self.target)
            }
            Outcome::NotNeeded => write!(f, "{}: no restart needed", self.target),
            Outcome::Deferred { ready_at } => write!(
                f,
                "restart of {} deferred until {} (rate limit)",
                self.target,
                rfc3339(ready_at / 1000)
            ),
            Outcome::Failed(reason) => write!(f, "restart of {} failed: {reason}", self.target),
        }
    }
}

/// `<secret>=<hash>,…` → secret → hash. Malformed entries are dropped.
pub fn parse_restarted_for(value: &str) -> BTreeMap<String, String> {
    value
        .split(',')
        .filter_map(|e| e.trim().split_once('='))
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

pub fn format_restarted_for(entries: &BTreeMap<String, String>) -> String {
    entries
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// What a pass must do for one target, given its entries (pure: tested below).
fn needs_restart(entries: &BTreeMap<String, String>, req: &RestartRequest) -> Option<bool> {
    match entries.get(&req.secret) {
        Some(h) if *h == req.hash => None,
        Some(_) => Some(true),
        None if req.changed => Some(true),
        None => Some(false),
    }
}

/// Restarts every target the requests name, as the rules above say: one GET per target, and
/// one patch per target that needs it.
pub async fn restart(
    client: &kube::Client,
    requests: &[RestartRequest],
    limiter: &mut RateLimiter,
    config: &RolloutConfig,
) -> Vec<TargetReport> {
    // Group by workload: several Secrets changing restart it once.
    let mut by_target: BTreeMap<TargetKey, Vec<&RestartRequest>> = BTreeMap::new();
    let mut reports = Vec::new();
    for req in requests {
        for t in &req.targets {
            let key = TargetKey {
                namespace: req.namespace.clone(),
                kind: t.kind.clone(),
                name: t.name.clone(),
            };
            by_target.entry(key).or_default().push(req);
        }
    }
    for (key, reqs) in by_target {
        let secrets: Vec<String> = reqs.iter().map(|r| r.secret.clone()).collect();
        let outcome = restart_one(client, &key, &reqs, limiter, config).await;
        reports.push(TargetReport {
            target: key,
            secrets,
            outcome,
        });
    }
    reports
}

/// A target's pod-template annotations and resourceVersion, or a named failure.
pub async fn read_target(
    client: &kube::Client,
    key: &TargetKey,
) -> Result<(BTreeMap<String, String>, Option<String>), String> {
    let kind = WorkloadKind::parse(&key.kind)?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &key.namespace, &kind.api_resource());
    let obj = api
        .get_opt(&key.name)
        .await
        .map_err(|e| kube_reason(&e))?
        .ok_or_else(|| format!("{key} not found"))?;
    let annotations = obj
        .data
        .pointer("/spec/template/metadata/annotations")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    Ok((annotations, obj.metadata.resource_version))
}

/// A `restartedAt` value in Unix milliseconds (kubectl writes RFC 3339 with an offset).
pub fn parse_time_millis(text: &str) -> Option<i64> {
    text.parse::<k8s_openapi::jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

async fn restart_one(
    client: &kube::Client,
    key: &TargetKey,
    reqs: &[&RestartRequest],
    limiter: &mut RateLimiter,
    config: &RolloutConfig,
) -> Outcome {
    // Without a change there is nothing to report about a target that cannot be read: the
    // resource's mistake is named when a change needs the restart.
    let any_changed = reqs.iter().any(|r| r.changed);
    let failed = |reason: String| {
        if any_changed {
            Outcome::Failed(reason)
        } else {
            Outcome::NotNeeded
        }
    };
    let kind = match WorkloadKind::parse(&key.kind) {
        Ok(k) => k,
        Err(reason) => return failed(reason),
    };
    // A conflicting write between our read and our patch (another controller): read again,
    // once; its restart may already be the one we wanted.
    for attempt in 0..2 {
        let (annotations, resource_version) = match read_target(client, key).await {
            Ok(t) => t,
            Err(reason) => return failed(reason),
        };
        let mut entries = annotations
            .get(RESTARTED_FOR_ANNOTATION)
            .map(|v| parse_restarted_for(v))
            .unwrap_or_default();
        let due: Vec<&&RestartRequest> = reqs
            .iter()
            .filter(|r| needs_restart(&entries, r) == Some(true))
            .collect();
        if due.is_empty() {
            let all_current = reqs.iter().all(|r| needs_restart(&entries, r).is_none());
            return if all_current {
                Outcome::AlreadyRestarted
            } else {
                Outcome::NotNeeded
            };
        }
        let observed = annotations
            .get(RESTARTED_AT_ANNOTATION)
            .and_then(|t| parse_time_millis(t));
        let mut now = crate::secret::now_millis();
        let ready_at = limiter.ready_at(key, observed, now);
        if ready_at > now {
            let wait = Duration::from_millis(u64::try_from(ready_at - now).unwrap_or(0));
            match config.over_limit {
                OverLimit::Wait { max } if wait <= max => {
                    tokio::time::sleep(wait).await;
                    now = crate::secret::now_millis();
                }
                _ => return Outcome::Deferred { ready_at },
            }
        }
        for r in &due {
            entries.insert(r.secret.clone(), r.hash.clone());
        }
        let mut patch = json!({
            "spec": {"template": {"metadata": {"annotations": {
                RESTARTED_AT_ANNOTATION: rfc3339(now / 1000),
                RESTARTED_FOR_ANNOTATION: format_restarted_for(&entries),
            }}}}
        });
        // The resourceVersion read is a precondition: a concurrent restart makes this a 409.
        if let (Some(rv), Some(obj)) = (resource_version, patch.as_object_mut()) {
            obj.insert("metadata".into(), json!({"resourceVersion": rv}));
        }
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &key.namespace, &kind.api_resource());
        match api
            .patch(
                &key.name,
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await
        {
            Ok(_) => {
                limiter.record(key.clone(), now);
                return Outcome::Restarted;
            }
            Err(kube::Error::Api(s)) if s.code == 409 && attempt == 0 => continue,
            Err(e) => return Outcome::Failed(kube_reason(&e)),
        }
    }
    Outcome::Failed(format!("{key} kept changing under the restart patch"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;

    fn key(name: &str) -> TargetKey {
        TargetKey {
            namespace: "apps".into(),
            kind: "Deployment".into(),
            name: name.into(),
        }
    }

    #[test]
    fn the_limiter_allows_one_restart_per_interval_per_target() {
        let mut l = RateLimiter::new(Duration::from_secs(30));
        assert_eq!(l.ready_at(&key("web"), None, 1_000), 1_000);
        l.record(key("web"), 1_000);
        assert_eq!(l.ready_at(&key("web"), None, 2_000), 31_000);
        assert_eq!(l.ready_at(&key("web"), None, 31_000), 31_000);
        // Other targets are not held back.
        assert_eq!(l.ready_at(&key("api"), None, 2_000), 2_000);
        // A restart by someone else (the target's restartedAt) counts too.
        assert_eq!(l.ready_at(&key("api"), Some(1_500), 2_000), 31_500);
        // The later of the two wins.
        assert_eq!(l.ready_at(&key("web"), Some(500), 2_000), 31_000);
        // A restartedAt in the future (clock skew) does not hold a target back forever.
        assert_eq!(l.ready_at(&key("api"), Some(999_999), 2_000), 32_000);
        // No interval: never held back.
        let mut none = RateLimiter::new(Duration::ZERO);
        none.record(key("web"), 1_000);
        assert_eq!(none.ready_at(&key("web"), None, 1_000), 1_000);
    }

    #[test]
    fn kinds_other_than_the_apps_workloads_are_refused_by_name() {
        assert_eq!(
            WorkloadKind::parse("StatefulSet"),
            Ok(WorkloadKind::StatefulSet)
        );
        assert!(
            WorkloadKind::parse("argo.Rollout")
                .unwrap_err()
                .contains("argo.Rollout is not supported")
        );
        assert!(
            WorkloadKind::parse("CronJob")
                .unwrap_err()
                .contains("CronJob")
        );
    }

    #[test]
    fn entries_round_trip_and_decide_the_restart() {
        let e = parse_restarted_for("web-db=sha256:aa,web-config=sha256:bb, junk ,=x");
        assert_eq!(e.len(), 2);
        assert_eq!(
            format_restarted_for(&e),
            "web-config=sha256:bb,web-db=sha256:aa"
        );
        let req = |secret: &str, hash: &str, changed: bool| RestartRequest {
            namespace: "apps".into(),
            secret: secret.into(),
            hash: hash.into(),
            changed,
            targets: Vec::new(),
        };
        // Current entry: nothing to do, changed or not (another run did it).
        assert_eq!(needs_restart(&e, &req("web-db", "sha256:aa", true)), None);
        // Changed content: restart.
        assert_eq!(
            needs_restart(&e, &req("web-db", "sha256:cc", true)),
            Some(true)
        );
        assert_eq!(
            needs_restart(&e, &req("other", "sha256:cc", true)),
            Some(true)
        );
        // Unchanged, stale entry: an earlier restart is pending: catch up.
        assert_eq!(
            needs_restart(&e, &req("web-db", "sha256:cc", false)),
            Some(true)
        );
        // Unchanged and never restarted for it (a Secret just created): nothing.
        assert_eq!(
            needs_restart(&e, &req("other", "sha256:cc", false)),
            Some(false)
        );
    }

    #[test]
    fn restarted_at_parses_kubectl_offsets() {
        assert_eq!(
            parse_time_millis("2026-01-02T03:04:05Z"),
            parse_time_millis("2026-01-02T05:04:05+02:00")
        );
        assert_eq!(parse_time_millis("yesterday"), None);
        assert_eq!(
            parse_time_millis(&rfc3339(1_700_000_000)),
            Some(1_700_000_000_000)
        );
    }
}
