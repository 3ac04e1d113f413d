//! The lease lifecycle of dynamic secrets (`VaultDynamicSecret`, a `TresorSecret` with one
//! dynamic database role): renew the lease at `renewalPercent` of its TTL; when a renewal can
//! no longer extend it (the server granted less than asked: the lease is at its max TTL), or it
//! failed, or the lease ran out, re-issue credentials through the engine, write the Secret,
//! restart its rollout targets, and revoke the old lease only once the consumers were
//! restarted and a grace period (`revoke_old_after`) has passed.
//!
//! Two halves: [`next_action`], a pure function of the state and the time, unit-tested; and
//! [`tick`], which carries out what it says over a [`VaultClient`] and a `kube::Client` until
//! there is nothing left to do now, and says when to call it again. The state lives in memory
//! ([`DynamicState`]) and on the Secret, in annotations without any value
//! (`tresor.dev/lease-id`, `tresor.dev/lease-expires`, `tresor.dev/lease-ttl`): a restarted
//! controller resumes from them and `sys/leases/lookup`.
//!
//! VSO fields: `renewalPercent` (default 67, at most 90, as VSO clamps it), `revoke` (revoke
//! the lease when the resource is deleted: [`release`]); `allowStaticCreds` is refused by name.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::apply::{self, kube_reason};
use crate::engine::{Engine, Options};
use crate::model::{Manifests, Resource};
use crate::rollout::{Outcome, RateLimiter, RestartRequest, RolloutConfig, TargetReport};
use crate::secret::{
    HASH_ANNOTATION, LEASE_EXPIRES_ANNOTATION, LEASE_ID_ANNOTATION, LEASE_RETIRED_ANNOTATION,
    LEASE_TTL_ANNOTATION, rfc3339,
};
use crate::vault::{FetchError, VaultClient};

pub const DEFAULT_RENEWAL_PERCENT: u32 = 67;
/// VSO's upper bound for `renewalPercent`.
pub const MAX_RENEWAL_PERCENT: u32 = 90;
pub const DEFAULT_REVOKE_OLD_AFTER: Duration = Duration::from_secs(30);
/// How long to wait before retrying the restart that holds back an old lease's revocation.
const RESTART_RETRY: i64 = 10_000;
/// How long to wait before retrying a revocation the server refused for another reason than
/// the lease being gone.
const REVOKE_RETRY: i64 = 10_000;
/// The most actions one [`tick`] carries out (it stops at a wait anyway).
const MAX_ACTIONS_PER_TICK: usize = 8;

/// The lease the Secret's credentials hold. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub id: String,
    /// The TTL it was issued with (s): what each renewal asks for.
    pub ttl: u64,
    /// When the current duration was granted (the issue or the last renewal).
    pub granted_at: i64,
    /// The duration granted then (s).
    pub duration: u64,
    pub renewable: bool,
    /// The last renewal granted less than it asked for, or failed: it cannot be extended.
    pub exhausted: bool,
}

impl Lease {
    pub fn expires_at(&self) -> i64 {
        self.granted_at
            .saturating_add(i64::try_from(self.duration).unwrap_or(i64::MAX / 2_000) * 1000)
    }

    /// When the renewal is due: `percent` of the granted duration after it was granted.
    pub fn renew_at(&self, percent: u32) -> i64 {
        let ms = i64::try_from(self.duration).unwrap_or(i64::MAX / 2_000) * 1000;
        self.granted_at
            .saturating_add(ms.saturating_mul(i64::from(percent)) / 100)
    }
}

/// A lease whose credentials were replaced, waiting for its revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retired {
    pub lease_id: String,
    /// When it ends by itself (then there is nothing left to revoke).
    pub expires_at: i64,
    /// When to revoke it; `None` while its consumers have not been restarted.
    pub revoke_at: Option<i64>,
    /// When to try the held-back restart again.
    pub retry_restart_at: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DynamicState {
    pub lease: Option<Lease>,
    pub retired: Vec<Retired>,
    /// The Secret's [`LEASE_RETIRED_ANNOTATION`] as last read or written (`None`: absent).
    pub recorded_retired: Option<String>,
    /// The Secret's annotations have been read (a restarted controller resumes from them).
    pub resumed: bool,
}

/// The schedule's knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Renew at this percentage of the granted duration (VSO's `renewalPercent`).
    pub renewal_percent: u32,
    /// Re-issue instead of renewing once less than this is left of the lease.
    pub min_remaining: Duration,
    /// How long after its consumers restarted an old lease is revoked.
    pub revoke_old_after: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            renewal_percent: DEFAULT_RENEWAL_PERCENT,
            min_remaining: Duration::ZERO,
            revoke_old_after: DEFAULT_REVOKE_OLD_AFTER,
        }
    }
}

impl Schedule {
    /// VSO's `renewalPercent`: unset or 0 is the default; above 90 is 90.
    pub fn with_renewal_percent(mut self, percent: Option<u32>) -> Schedule {
        self.renewal_percent = match percent {
            None | Some(0) => DEFAULT_RENEWAL_PERCENT,
            Some(p) => p.min(MAX_RENEWAL_PERCENT),
        };
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// No lease is known: issue credentials.
    Issue,
    /// Extend the lease by `increment` seconds.
    Renew {
        increment: u64,
    },
    /// Replace the credentials (the reason is safe to print).
    Reissue {
        reason: String,
    },
    /// Retry the restart that holds back old leases' revocation.
    RestartConsumers,
    Revoke {
        lease_id: String,
    },
    /// Nothing to do before this time (Unix ms).
    Wait {
        until: i64,
    },
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// Drops retired leases that ended by themselves: nothing is left to revoke.
pub fn prune(state: &mut DynamicState, now: i64) {
    state.retired.retain(|r| r.expires_at > now);
}

/// What to do at `now`, in this order: revoke a retired lease that is due; issue when there
/// is no lease; re-issue a lease that ended, cannot be extended, or has less than
/// `min_remaining` left; retry a held-back restart; renew (or, not renewable, re-issue) at
/// `renewal_percent`; else wait for the earliest of those times.
pub fn next_action(state: &DynamicState, now: i64, schedule: &Schedule) -> Action {
    if let Some(r) = state
        .retired
        .iter()
        .find(|r| r.expires_at > now && r.revoke_at.is_some_and(|t| t <= now))
    {
        return Action::Revoke {
            lease_id: r.lease_id.clone(),
        };
    }
    let Some(lease) = &state.lease else {
        return Action::Issue;
    };
    let expires = lease.expires_at();
    if now >= expires {
        return Action::Reissue {
            reason: "the lease ended".into(),
        };
    }
    if lease.exhausted {
        return Action::Reissue {
            reason: "the lease cannot be extended (its max TTL is near)".into(),
        };
    }
    let reissue_at = expires.saturating_sub(ms(schedule.min_remaining));
    if now >= reissue_at {
        return Action::Reissue {
            reason: format!(
                "less than {}s of the lease is left",
                schedule.min_remaining.as_secs()
            ),
        };
    }
    let held = state
        .retired
        .iter()
        .filter(|r| r.expires_at > now && r.revoke_at.is_none())
        .map(|r| r.retry_restart_at)
        .min();
    if held.is_some_and(|t| t <= now) {
        return Action::RestartConsumers;
    }
    let renew_at = lease.renew_at(schedule.renewal_percent);
    if now >= renew_at {
        return if lease.renewable {
            Action::Renew {
                increment: lease.ttl.max(1),
            }
        } else {
            Action::Reissue {
                reason: "the lease is not renewable".into(),
            }
        };
    }
    let mut until = renew_at.min(reissue_at);
    for r in state.retired.iter().filter(|r| r.expires_at > now) {
        until = until.min(r.revoke_at.unwrap_or(r.retry_restart_at));
    }
    Action::Wait { until }
}

/// What [`tick`] runs for: the resource, and the inputs its engine pass needs (its
/// VaultAuth/VaultConnection or store, the options with address and token).
#[derive(Debug, Clone, Copy)]
pub struct DynamicTarget<'a> {
    pub manifests: &'a Manifests,
    pub options: &'a Options,
    pub resource: &'a Resource,
}

/// Settings of the effectful part.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `min_remaining` and `revoke_old_after`; the percentage comes from the resource.
    pub schedule: Schedule,
    pub rollout: RolloutConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DynamicError {
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Failed(String),
}

/// One thing a tick did (safe to print: ids and reasons, never values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Resumed {
        lease_id: String,
    },
    /// A retired lease read back from the Secret, still to be revoked.
    ResumedRetired {
        lease_id: String,
    },
    Issued {
        lease_id: String,
    },
    Reissued {
        old: String,
        new: String,
        reason: String,
    },
    Renewed {
        lease_id: String,
        asked: u64,
        granted: u64,
    },
    RenewFailed {
        lease_id: String,
        reason: String,
    },
    Restarts(Vec<TargetReport>),
    Revoked {
        lease_id: String,
    },
    RevokeFailed {
        lease_id: String,
        reason: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    pub events: Vec<Event>,
    /// When to call [`tick`] again (Unix ms).
    pub next_at: i64,
}

fn check_supported(resource: &Resource) -> Result<(), DynamicError> {
    match resource {
        Resource::VaultDynamicSecret(r) if r.spec.allow_static_creds => {
            Err(DynamicError::Unsupported(format!(
                "VaultDynamicSecret {}: allowStaticCreds is not supported (use a TresorSecret with database.staticRole)",
                r.metadata.name
            )))
        }
        r if r.is_dynamic() => Ok(()),
        r => Err(DynamicError::Unsupported(format!(
            "{} {} issues no lease",
            r.kind(),
            r.meta().name
        ))),
    }
}

fn renewal_percent(resource: &Resource) -> Option<u32> {
    match resource {
        Resource::VaultDynamicSecret(r) => r.spec.renewal_percent,
        _ => None,
    }
}

/// Runs what the schedule says until it says wait (or [`MAX_ACTIONS_PER_TICK`]).
/// `vault` renews, looks up and revokes leases: it must be allowed `sys/leases/*` on the
/// resource's leases (the identity the engine issues them with, or an operator's).
pub async fn tick(
    vault: &VaultClient,
    kube: &kube::Client,
    target: DynamicTarget<'_>,
    state: &mut DynamicState,
    limiter: &mut RateLimiter,
    settings: &Settings,
) -> Result<TickReport, DynamicError> {
    check_supported(target.resource)?;
    let schedule = settings
        .schedule
        .with_renewal_percent(renewal_percent(target.resource));
    let (namespace, secret_name) = target
        .resource
        .target_secret(&target.options.default_namespace)
        .ok_or_else(|| DynamicError::Unsupported("the resource renders no Secret".into()))?;
    let secrets: Api<Secret> = Api::namespaced(kube.clone(), &namespace);
    let mut report = TickReport::default();
    if !state.resumed {
        resume(vault, &secrets, &secret_name, state, &mut report).await?;
    }
    for _ in 0..MAX_ACTIONS_PER_TICK {
        let now = crate::secret::now_millis();
        prune(state, now);
        match next_action(state, now, &schedule) {
            Action::Wait { until } => {
                record_retired(&secrets, &secret_name, state).await?;
                report.next_at = until;
                return Ok(report);
            }
            Action::Issue => {
                issue(kube, target, state, limiter, settings, None, &mut report).await?;
            }
            Action::Reissue { reason } => {
                issue(
                    kube,
                    target,
                    state,
                    limiter,
                    settings,
                    Some(reason),
                    &mut report,
                )
                .await?;
            }
            Action::Renew { increment } => {
                renew(vault, &secrets, &secret_name, state, increment, &mut report).await?;
            }
            Action::RestartConsumers => {
                restart_held(
                    kube,
                    &secrets,
                    target,
                    state,
                    limiter,
                    settings,
                    &mut report,
                )
                .await?;
            }
            Action::Revoke { lease_id } => {
                revoke_retired(vault, state, &lease_id, now, &mut report).await;
            }
        }
    }
    record_retired(&secrets, &secret_name, state).await?;
    report.next_at = crate::secret::now_millis();
    Ok(report)
}

/// The retired leases as [`LEASE_RETIRED_ANNOTATION`] holds them.
pub fn encode_retired(retired: &[Retired]) -> String {
    retired
        .iter()
        .map(|r| {
            format!(
                "{};{};{};{}",
                r.lease_id,
                r.expires_at,
                r.revoke_at
                    .map_or_else(|| "-".to_owned(), |t| t.to_string()),
                r.retry_restart_at
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// What [`encode_retired`] wrote; malformed entries (an annotation edited by hand) are
/// skipped, as is `current`, the lease the Secret's credentials belong to.
pub fn decode_retired(text: &str, current: Option<&str>) -> Vec<Retired> {
    text.split(',')
        .filter_map(|entry| {
            let mut parts = entry.trim().split(';');
            let lease_id = parts.next()?.to_owned();
            let expires_at = parts.next()?.parse().ok()?;
            let revoke_at = match parts.next()? {
                "-" => None,
                t => Some(t.parse().ok()?),
            };
            let retry_restart_at = parts.next()?.parse().ok()?;
            let valid = parts.next().is_none()
                && !lease_id.is_empty()
                && lease_id
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b',' && b != b';')
                && Some(lease_id.as_str()) != current;
            valid.then_some(Retired {
                lease_id,
                expires_at,
                revoke_at,
                retry_restart_at,
            })
        })
        .collect()
}

/// Writes the retired leases onto the Secret when they differ from what it holds (a metadata
/// patch; the content hash leaves lease annotations out, so nothing restarts), or removes the
/// annotation when none is left.
async fn record_retired(
    secrets: &Api<Secret>,
    secret_name: &str,
    state: &mut DynamicState,
) -> Result<(), DynamicError> {
    let want = (!state.retired.is_empty()).then(|| encode_retired(&state.retired));
    if want == state.recorded_retired {
        return Ok(());
    }
    let value = match &want {
        Some(text) => serde_json::Value::String(text.clone()),
        None => serde_json::Value::Null,
    };
    let patch = json!({"metadata": {"annotations": {LEASE_RETIRED_ANNOTATION: value}}});
    secrets
        .patch(secret_name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| {
            DynamicError::Failed(format!(
                "recording the retired leases on Secret {secret_name}: {}",
                kube_reason(&e)
            ))
        })?;
    state.recorded_retired = want;
    Ok(())
}

/// Reads the lease from the Secret's annotations and the server (`sys/leases/lookup`).
async fn resume(
    vault: &VaultClient,
    secrets: &Api<Secret>,
    secret_name: &str,
    state: &mut DynamicState,
    report: &mut TickReport,
) -> Result<(), DynamicError> {
    let current = secrets.get_opt(secret_name).await.map_err(|e| {
        DynamicError::Failed(format!("reading Secret {secret_name}: {}", kube_reason(&e)))
    })?;
    state.resumed = true;
    let Some(annotations) = current.and_then(|s| s.metadata.annotations) else {
        return Ok(());
    };
    if let Some(text) = annotations.get(LEASE_RETIRED_ANNOTATION) {
        let current = annotations.get(LEASE_ID_ANNOTATION).map(String::as_str);
        // As read: an entry dropped as malformed makes the next record rewrite it.
        state.recorded_retired = Some(text.clone());
        for retired in decode_retired(text, current) {
            if state.retired.iter().all(|r| r.lease_id != retired.lease_id) {
                report.events.push(Event::ResumedRetired {
                    lease_id: retired.lease_id.clone(),
                });
                state.retired.push(retired);
            }
        }
    }
    let Some(id) = annotations
        .get(LEASE_ID_ANNOTATION)
        .filter(|id| !id.is_empty() && !id.contains(','))
    else {
        return Ok(());
    };
    // Gone (revoked, expired) or unreadable: issue anew.
    let Ok(found) = vault.lookup_lease(id).await else {
        return Ok(());
    };
    if found.ttl == 0 {
        return Ok(());
    }
    let ttl = annotations
        .get(LEASE_TTL_ANNOTATION)
        .and_then(|t| t.parse().ok())
        .unwrap_or(found.ttl);
    state.lease = Some(Lease {
        id: id.clone(),
        ttl,
        granted_at: crate::secret::now_millis(),
        duration: found.ttl,
        renewable: found.renewable,
        exhausted: false,
    });
    report.events.push(Event::Resumed {
        lease_id: id.clone(),
    });
    Ok(())
}

/// Issues credentials through the engine (only this resource), writes the Secret, restarts
/// its targets when the content changed, and retires the old lease.
async fn issue(
    kube: &kube::Client,
    target: DynamicTarget<'_>,
    state: &mut DynamicState,
    limiter: &mut RateLimiter,
    settings: &Settings,
    reason: Option<String>,
    report: &mut TickReport,
) -> Result<(), DynamicError> {
    let only = Manifests {
        resources: target
            .manifests
            .resources
            .iter()
            .filter(|r| r.target_secret("").is_none())
            .cloned()
            .chain(std::iter::once(target.resource.clone()))
            .collect(),
        skipped: 0,
    };
    let mut engine = Engine::new(&only, target.options, Some(kube.clone()));
    let outcome = engine.run().await;
    if !outcome.failures.is_empty() {
        let reasons: Vec<String> = outcome.failures.iter().map(ToString::to_string).collect();
        return Err(DynamicError::Failed(reasons.join("; ")));
    }
    let Some(desired) = outcome.secrets.first() else {
        return Err(DynamicError::Failed(
            "the resource rendered no Secret".into(),
        ));
    };
    let [lease] = desired.leases.as_slice() else {
        return Err(DynamicError::Unsupported(format!(
            "{}: the lifecycle handles exactly one dynamic lease per Secret; it holds {}",
            desired.origin,
            desired.leases.len()
        )));
    };
    let issued_at = crate::secret::now_millis();
    let applied = apply::apply_with(
        kube,
        std::slice::from_ref(desired),
        limiter,
        &settings.rollout,
    )
    .await;
    if let Some(failed) = applied.failed.first() {
        // The new credentials reached nobody: nothing may keep them alive.
        return Err(DynamicError::Failed(format!(
            "{failed} (the new lease {} is left to expire)",
            lease.lease_id
        )));
    }
    // The write replaced the Secret's lease annotations, the retired list's included.
    state.recorded_retired = None;
    let restarted = applied
        .restarts
        .iter()
        .all(|r| !matches!(r.outcome, Outcome::Failed(_) | Outcome::Deferred { .. }));
    if !applied.restarts.is_empty() {
        report
            .events
            .push(Event::Restarts(applied.restarts.clone()));
    }
    let new = Lease {
        id: lease.lease_id.clone(),
        ttl: lease.duration_secs,
        granted_at: issued_at,
        duration: lease.duration_secs,
        renewable: lease.renewable,
        exhausted: false,
    };
    match state.lease.replace(new) {
        Some(old) => {
            state.retired.push(Retired {
                lease_id: old.id.clone(),
                expires_at: old.expires_at(),
                revoke_at: restarted.then(|| issued_at + ms(settings.schedule.revoke_old_after)),
                retry_restart_at: issued_at + RESTART_RETRY,
            });
            report.events.push(Event::Reissued {
                old: old.id,
                new: lease.lease_id.clone(),
                reason: reason.unwrap_or_default(),
            });
        }
        None => report.events.push(Event::Issued {
            lease_id: lease.lease_id.clone(),
        }),
    }
    Ok(())
}

async fn renew(
    vault: &VaultClient,
    secrets: &Api<Secret>,
    secret_name: &str,
    state: &mut DynamicState,
    increment: u64,
    report: &mut TickReport,
) -> Result<(), DynamicError> {
    let Some(lease) = state.lease.as_mut() else {
        return Ok(());
    };
    let now = crate::secret::now_millis();
    match vault.renew_lease(&lease.id, increment).await {
        Ok(granted) => {
            lease.granted_at = now;
            lease.duration = granted.lease_duration;
            lease.renewable = granted.renewable;
            // Less than asked: the max TTL capped it; the next step is a re-issue.
            lease.exhausted = granted.lease_duration < increment || granted.lease_duration == 0;
            report.events.push(Event::Renewed {
                lease_id: lease.id.clone(),
                asked: increment,
                granted: granted.lease_duration,
            });
            let expires = rfc3339(lease.expires_at() / 1000);
            let patch = json!({"metadata": {"annotations": {LEASE_EXPIRES_ANNOTATION: expires}}});
            secrets
                .patch(secret_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| {
                    DynamicError::Failed(format!(
                        "recording the renewal on Secret {secret_name}: {}",
                        kube_reason(&e)
                    ))
                })?;
        }
        Err(e) => {
            // Past its max TTL, revoked, or refused: replace the credentials.
            lease.exhausted = true;
            report.events.push(Event::RenewFailed {
                lease_id: lease.id.clone(),
                reason: e.to_string(),
            });
        }
    }
    Ok(())
}

/// Retries the restart that holds back retired leases; on success their grace starts.
async fn restart_held(
    kube: &kube::Client,
    secrets: &Api<Secret>,
    target: DynamicTarget<'_>,
    state: &mut DynamicState,
    limiter: &mut RateLimiter,
    settings: &Settings,
    report: &mut TickReport,
) -> Result<(), DynamicError> {
    let (namespace, secret_name) = target
        .resource
        .target_secret(&target.options.default_namespace)
        .unwrap_or_default();
    let hash = secrets
        .get_opt(&secret_name)
        .await
        .map_err(|e| DynamicError::Failed(kube_reason(&e)))?
        .and_then(|s| s.metadata.annotations)
        .and_then(|mut a| a.remove(HASH_ANNOTATION))
        .unwrap_or_default();
    let request = RestartRequest {
        namespace,
        secret: secret_name,
        hash,
        changed: true,
        targets: target.resource.rollout_targets().to_vec(),
    };
    let reports = crate::rollout::restart(kube, &[request], limiter, &settings.rollout).await;
    let now = crate::secret::now_millis();
    let done = reports
        .iter()
        .all(|r| !matches!(r.outcome, Outcome::Failed(_) | Outcome::Deferred { .. }));
    for r in state.retired.iter_mut().filter(|r| r.revoke_at.is_none()) {
        if done {
            r.revoke_at = Some(now + ms(settings.schedule.revoke_old_after));
        } else {
            r.retry_restart_at = now + RESTART_RETRY;
        }
    }
    report.events.push(Event::Restarts(reports));
    Ok(())
}

fn gone(e: &FetchError) -> bool {
    match e {
        FetchError::NotFound { .. } => true,
        FetchError::Http {
            status: 400,
            message,
            ..
        } => {
            let m = message.to_ascii_lowercase();
            m.contains("invalid lease") || m.contains("not found") || m.contains("expired")
        }
        _ => false,
    }
}

async fn revoke_retired(
    vault: &VaultClient,
    state: &mut DynamicState,
    lease_id: &str,
    now: i64,
    report: &mut TickReport,
) {
    match vault.revoke_lease(lease_id).await {
        Ok(()) => {
            state.retired.retain(|r| r.lease_id != lease_id);
            report.events.push(Event::Revoked {
                lease_id: lease_id.to_owned(),
            });
        }
        Err(e) if gone(&e) => state.retired.retain(|r| r.lease_id != lease_id),
        Err(e) => {
            for r in state.retired.iter_mut().filter(|r| r.lease_id == lease_id) {
                r.revoke_at = Some(now + REVOKE_RETRY);
            }
            report.events.push(Event::RevokeFailed {
                lease_id: lease_id.to_owned(),
                reason: e.to_string(),
            });
        }
    }
}

/// The resource was deleted: with VSO's `revoke: true`, revoke its current lease and any
/// retired one still alive; without, leave them to expire.
pub async fn release(vault: &VaultClient, state: &mut DynamicState, revoke: bool) -> Vec<Event> {
    let mut events = Vec::new();
    if !revoke {
        return events;
    }
    let ids: Vec<String> = state
        .lease
        .take()
        .map(|l| l.id)
        .into_iter()
        .chain(state.retired.drain(..).map(|r| r.lease_id))
        .collect();
    for id in ids {
        match vault.revoke_lease(&id).await {
            Ok(()) => events.push(Event::Revoked { lease_id: id }),
            Err(e) if gone(&e) => {}
            Err(e) => events.push(Event::RevokeFailed {
                lease_id: id,
                reason: e.to_string(),
            }),
        }
    }
    events
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        clippy::panic,
        reason = "tests"
    )]
    use super::*;

    #[test]
    fn retired_leases_survive_the_round_trip_through_the_annotation() {
        let retired = vec![
            Retired {
                lease_id: "database/creds/app/old1".into(),
                expires_at: 1_800_000_000_000,
                revoke_at: Some(1_700_000_003_000),
                retry_restart_at: 1_700_000_005_000,
            },
            Retired {
                lease_id: "database/creds/app/old2".into(),
                expires_at: 1_800_000_000_500,
                revoke_at: None,
                retry_restart_at: 1_700_000_009_000,
            },
        ];
        let text = encode_retired(&retired);
        assert_eq!(decode_retired(&text, None), retired);
        // The current lease is never retired; malformed entries are skipped.
        let edited = format!("{text},garbage,a;b;c;d,x;1;2;3;4,{};1;-;2", "bad id");
        assert_eq!(
            decode_retired(&edited, Some("database/creds/app/old2")),
            retired[..1]
        );
        assert!(decode_retired("", None).is_empty());
    }

    fn lease(granted_at: i64, duration: u64) -> Lease {
        Lease {
            id: "database/creds/app/1".into(),
            ttl: 3,
            granted_at,
            duration,
            renewable: true,
            exhausted: false,
        }
    }

    fn with(lease: Lease) -> DynamicState {
        DynamicState {
            lease: Some(lease),
            retired: Vec::new(),
            recorded_retired: None,
            resumed: true,
        }
    }

    #[test]
    fn no_lease_is_an_issue() {
        assert_eq!(
            next_action(&DynamicState::default(), 0, &Schedule::default()),
            Action::Issue
        );
    }

    #[test]
    fn renews_at_the_renewal_percent_of_the_granted_duration() {
        let s = Schedule::default();
        let state = with(lease(10_000, 3));
        // 67 % of 3 s after 10 s.
        assert_eq!(
            next_action(&state, 10_000, &s),
            Action::Wait { until: 12_010 }
        );
        assert_eq!(
            next_action(&state, 12_009, &s),
            Action::Wait { until: 12_010 }
        );
        assert_eq!(
            next_action(&state, 12_010, &s),
            Action::Renew { increment: 3 }
        );
        let half = s.with_renewal_percent(Some(50));
        assert_eq!(
            next_action(&state, 10_000, &half),
            Action::Wait { until: 11_500 }
        );
        // VSO's bounds: 0 is the default, above 90 is 90.
        assert_eq!(s.with_renewal_percent(Some(0)).renewal_percent, 67);
        assert_eq!(s.with_renewal_percent(Some(150)).renewal_percent, 90);
    }

    #[test]
    fn an_exhausted_ended_or_unrenewable_lease_is_reissued() {
        let s = Schedule::default();
        let mut l = lease(0, 3);
        l.exhausted = true;
        assert!(matches!(
            next_action(&with(l), 100, &s),
            Action::Reissue { .. }
        ));
        assert!(matches!(
            next_action(&with(lease(0, 3)), 3_000, &s),
            Action::Reissue { .. }
        ));
        let mut l = lease(0, 3);
        l.renewable = false;
        assert_eq!(
            next_action(&with(l.clone()), 100, &s),
            Action::Wait { until: 2_010 }
        );
        assert!(matches!(
            next_action(&with(l), 2_010, &s),
            Action::Reissue { .. }
        ));
        // Below the remaining threshold: re-issue rather than renew.
        let near = Schedule {
            min_remaining: Duration::from_secs(2),
            ..s
        };
        assert_eq!(
            next_action(&with(lease(0, 3)), 0, &near),
            Action::Wait { until: 1_000 }
        );
        assert!(matches!(
            next_action(&with(lease(0, 3)), 1_000, &near),
            Action::Reissue { .. }
        ));
    }

    #[test]
    fn an_old_lease_is_revoked_only_after_its_restart_and_the_grace() {
        let s = Schedule::default();
        let mut state = with(lease(0, 60));
        state.retired.push(Retired {
            lease_id: "old".into(),
            expires_at: 50_000,
            revoke_at: None,
            retry_restart_at: 10_000,
        });
        // Restart not done: no revocation, a retry of the restart when due.
        assert_eq!(
            next_action(&state, 5_000, &s),
            Action::Wait { until: 10_000 }
        );
        assert_eq!(next_action(&state, 10_000, &s), Action::RestartConsumers);
        // Restarted at 12 s: revoked 30 s later, not before.
        state.retired[0].revoke_at = Some(42_000);
        // (The renewal at 67 % of 60 s comes first.)
        assert_eq!(
            next_action(&state, 12_000, &s),
            Action::Wait { until: 40_200 }
        );
        assert_eq!(
            next_action(&state, 42_000, &s),
            Action::Revoke {
                lease_id: "old".into()
            }
        );
        // A lease that ended by itself is not revoked: pruned.
        let mut late = state.clone();
        prune(&mut late, 50_000);
        assert!(late.retired.is_empty());
        assert_eq!(
            next_action(&state, 50_000, &s),
            Action::Renew { increment: 3 }
        );
    }

    #[test]
    fn the_lifecycle_of_a_short_lease_renews_then_reissues_before_its_max_ttl() {
        // default_ttl 3 s, max_ttl 8 s, renewalPercent 67: a server-side model of the cap.
        let s = Schedule::default();
        let max_end = 8_000;
        let mut state = with(lease(0, 3));
        let mut now = 0;
        let mut renewals = 0;
        loop {
            match next_action(&state, now, &s) {
                Action::Wait { until } => now = until,
                Action::Renew { increment } => {
                    let l = state.lease.as_mut().unwrap();
                    let left = ((max_end - now) / 1000).max(0) as u64;
                    let granted = increment.min(left);
                    l.granted_at = now;
                    l.duration = granted;
                    l.exhausted = granted < increment;
                    renewals += 1;
                }
                Action::Reissue { .. } => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(renewals, 3);
        assert!(now < max_end, "re-issued at {now} ms, before the max TTL");
    }
}
