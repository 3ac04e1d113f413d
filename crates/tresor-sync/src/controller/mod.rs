//! `tresor sync run`: the in-cluster controller.
//!
//! Watches the ESO, VSO and `TresorSecret` kinds (all namespaces or `--namespace`s), keeps a
//! cache of them, and renders one resource per reconcile through the same engine and write
//! path as `sync once`, with the store/auth/connection it refers to taken from the cache. A
//! resource is reconciled when it is first seen, when its spec (generation) or ESO's
//! `force-sync` annotation changes, when an object it refers to changes, on its refresh
//! interval, and after a failure with exponential backoff. Only the replica holding the
//! Lease reconciles; the others keep their caches warm and wait.
//!
//! Rotation: writes go through `apply::apply_with` with one `RateLimiter` for the
//! controller's life, so a changed Secret restarts its `rolloutRestartTargets` once; a restart
//! over the limit is deferred (never waited for in the loop) and the resource re-queued for
//! when the limiter allows it. Dynamic resources are not rendered on an interval: each keeps
//! a `dynamic::DynamicState` and is ticked (`dynamic::tick`: resume, renew, re-issue, restart,
//! revoke) when its lease schedule is due, with a client logged in once per resource
//! (`Engine::lease_client`) whose token also issues its credentials; a deleted
//! `VaultDynamicSecret` with `revoke: true` has its leases revoked (`dynamic::release`).
//!
//! # Layout
//! - `kinds`: the watched kinds, where they are served, the object key.
//! - `watch`: kube-rs watchers feeding the loop; `cache`: the objects and their references.
//! - `queue`: each resource's next due time; `refresh`: refresh intervals, or the lease
//!   schedule of a dynamic resource; `backoff`: retry delays.
//! - `reconcile`: one static resource through the engine and `apply_with` (writes, restarts,
//!   the catch-up of a pending restart); this module: the loop, the per-resource state
//!   (backoff, pending restart, lease lifecycle) and the dynamic ticks; `hooks`: the log
//!   lines after a write or restart, and what of a restart is still pending.
//! - `status`: the Ready condition and each kind's status; `events`: Kubernetes Events.
//! - `lease`: leader election through a `coordination.k8s.io/v1` Lease.
//! - `metrics`, `http`: the Prometheus metrics and their endpoint; `log`: stderr lines.

pub mod backoff;
pub mod cache;
pub mod events;
pub mod hooks;
pub mod http;
pub mod kinds;
pub mod lease;
pub mod log;
pub mod metrics;
pub mod queue;
pub mod reconcile;
pub mod refresh;
pub mod status;
pub mod watch;

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use tokio::sync::{mpsc, watch as signal};

use crate::cli::{EXIT_ERROR, EXIT_FAILED, RunArgs};
use crate::engine::Options;

use self::backoff::Backoff;
use self::cache::{Cache, Entry};
use self::kinds::{KindInfo, ObjKey};
use self::metrics::Metrics;
use self::queue::DueQueue;
use self::reconcile::Written;
use self::status::{Extra, Verdict};
use crate::dynamic::{self, DynamicState, DynamicTarget};
use crate::engine::Engine;
use crate::model::Resource;
use crate::rollout::{OverLimit, RateLimiter, RolloutConfig, TargetReport};
use crate::secret::{HASH_ANNOTATION, LeaseInfo};
use crate::vault::VaultClient;

/// Everything `sync run` needs, read from its flags and environment.
#[derive(Debug)]
pub struct Settings {
    pub namespaces: Vec<String>,
    /// Off: this replica reconciles without a Lease.
    pub leader_election: bool,
    pub lease_name: String,
    pub lease_namespace: String,
    pub identity: String,
    pub timing: lease::Timing,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub metrics_address: Option<String>,
    pub options: Options,
    /// One restart per workload per interval, across reconciles.
    pub restart_min_interval: Duration,
    pub revoke_old_after: Duration,
}

fn flag_duration(flag: &str, text: &str) -> Result<Duration, String> {
    let d = flag_duration_or_zero(flag, text)?;
    if d.is_zero() {
        return Err(format!("--{flag} must be positive"));
    }
    Ok(d)
}

fn flag_duration_or_zero(flag: &str, text: &str) -> Result<Duration, String> {
    let nanos =
        tresor_sdk::duration::parse_str(text).map_err(|e| format!("--{flag} {text:?}: {e}"))?;
    if nanos < 0 {
        return Err(format!("--{flag} must not be negative"));
    }
    tresor_sdk::duration::to_std(nanos).map_err(|e| format!("--{flag} {text:?}: {e}"))
}

/// A suffix unique to this process: replicas sharing a host name (or a restarted pod) never
/// share a holder identity.
fn random_suffix() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_i64(tresor_sdk::timestamp::now_nanos());
    format!("{:08x}", h.finish() & 0xffff_ffff)
}

fn default_identity() -> String {
    let host = std::env::var("POD_NAME")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|v| !v.is_empty()))
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "tresor-sync".to_owned());
    format!("{host}_{}", random_suffix())
}

fn default_lease_namespace() -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                .ok()
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
        })
        .unwrap_or_else(|| "default".to_owned())
}

impl Settings {
    pub fn from_args(args: &RunArgs) -> Result<Settings, String> {
        let timing = lease::Timing {
            lease_duration: flag_duration("lease-duration", &args.lease_duration)?,
            renew_deadline: flag_duration("renew-deadline", &args.renew_deadline)?,
            retry_period: flag_duration("retry-period", &args.retry_period)?,
        };
        if timing.renew_deadline >= timing.lease_duration
            || timing.retry_period >= timing.renew_deadline
        {
            return Err(
                "--retry-period < --renew-deadline < --lease-duration is required (a leader must renew before others may take over)"
                    .into(),
            );
        }
        let options = crate::cli::engine_options(&args.connection, "default")?;
        Ok(Settings {
            namespaces: args.namespaces.clone(),
            leader_election: !args.no_leader_election,
            lease_name: args.lease_name.clone(),
            lease_namespace: args
                .lease_namespace
                .clone()
                .unwrap_or_else(default_lease_namespace),
            identity: args.identity.clone().unwrap_or_else(default_identity),
            timing,
            backoff_base: flag_duration("backoff-base", &args.backoff_base)?,
            backoff_max: flag_duration("backoff-max", &args.backoff_max)?,
            metrics_address: Some(args.metrics_address.clone())
                .filter(|a| a != "off" && !a.is_empty()),
            options,
            restart_min_interval: flag_duration_or_zero(
                "restart-min-interval",
                &args.restart_min_interval,
            )?,
            revoke_old_after: flag_duration_or_zero("revoke-old-after", &args.revoke_old_after)?,
        })
    }
}

/// The version of a kind the cluster serves, preferred first (ESO: `v1`, else `v1beta1`).
async fn served_version(client: &kube::Client, info: &KindInfo) -> &'static str {
    for version in info.versions {
        let api: Api<DynamicObject> =
            Api::all_with(client.clone(), &watch::api_resource(info, version));
        match api.list(&ListParams::default().limit(1)).await {
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            _ => return version,
        }
    }
    info.versions.first().copied().unwrap_or("v1")
}

async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Runs the controller until SIGTERM/SIGINT (exit 0, the Lease released) or a lost
/// leadership (exit 1: a replica that stopped leading restarts with fresh state).
pub async fn run(settings: Settings) -> ExitCode {
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "Error: no Kubernetes cluster ({})",
                crate::apply::kube_reason(&e)
            );
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let metrics = Arc::new(Metrics::default());
    let mut tasks = Vec::new();
    if let Some(address) = &settings.metrics_address {
        let listener = match tokio::net::TcpListener::bind(address).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("Error: listening on {address} for metrics: {e}");
                return ExitCode::from(EXIT_ERROR);
            }
        };
        if let Ok(local) = listener.local_addr() {
            log::info(&format!("metrics on http://{local}/metrics"));
        }
        tasks.push(tokio::spawn(http::serve(listener, metrics.clone())));
    }

    let (stop_tx, stop_rx) = signal::channel(false);
    let stopper = stop_tx.clone();
    tasks.push(tokio::spawn(async move {
        wait_for_stop().await;
        log::info("stopping (signal)");
        let _ = stopper.send(true);
    }));

    let elector = Arc::new(lease::Elector::new(
        client.clone(),
        &settings.lease_namespace,
        &settings.lease_name,
        &settings.identity,
        settings.timing,
    ));
    // Without election this replica leads from the start; the sender is kept so the loop's
    // `changed()` waits instead of failing.
    let (lead_tx, lead_rx) = signal::channel(!settings.leader_election);
    let mut kept_sender = None;
    let election = if settings.leader_election {
        Some(tokio::spawn(elector.clone().run(lead_tx, stop_rx.clone())))
    } else {
        kept_sender = Some(lead_tx);
        None
    };
    log::info(&format!(
        "identity {}; {}; watching {}",
        settings.identity,
        if settings.leader_election {
            format!("Lease {}/{}", settings.lease_namespace, settings.lease_name)
        } else {
            "leader election off".to_owned()
        },
        if settings.namespaces.is_empty() {
            "all namespaces".to_owned()
        } else {
            settings.namespaces.join(", ")
        }
    ));

    let (tx, rx) = mpsc::channel(1024);
    let mut pending = HashSet::new();
    for info in kinds::ALL {
        let version = served_version(&client, &info).await;
        let scopes: Vec<Option<String>> = if info.namespaced && !settings.namespaces.is_empty() {
            settings.namespaces.iter().cloned().map(Some).collect()
        } else {
            vec![None]
        };
        for scope in scopes {
            pending.insert(watch::scope_name(&info, scope.as_deref()));
            tasks.push(tokio::spawn(watch::run(
                client.clone(),
                info,
                version,
                scope,
                tx.clone(),
            )));
        }
    }

    let dynamic = dynamic::Settings {
        schedule: dynamic::Schedule {
            revoke_old_after: settings.revoke_old_after,
            ..dynamic::Schedule::default()
        },
        rollout: RolloutConfig {
            over_limit: OverLimit::Defer,
        },
    };
    let mut controller = Controller {
        client,
        limiter: RateLimiter::new(settings.restart_min_interval),
        // Never wait inside a reconcile: a restart over the limit is deferred and its
        // resource re-queued for the time the limiter gives.
        rollout: RolloutConfig {
            over_limit: OverLimit::Defer,
        },
        dynamic,
        settings,
        metrics,
        cache: Cache::default(),
        states: HashMap::new(),
        queue: DueQueue::default(),
        pending,
        secret_tx: tx,
        secret_watchers: HashMap::new(),
        targets: HashMap::new(),
    };
    let code = controller.run_loop(rx, lead_rx, stop_rx).await;
    for (_, watcher) in controller.secret_watchers.drain() {
        watcher.abort();
    }
    // Lost leadership or a signal: stop electing (a leader releases the Lease), then go.
    let _ = stop_tx.send(true);
    if let Some(election) = election {
        let _ = election.await;
    }
    drop(kept_sender);
    for t in tasks {
        t.abort();
    }
    code
}

/// What the controller remembers about a rendering resource between reconciles.
#[derive(Debug)]
struct ResState {
    backoff: Backoff,
    /// The last verdict reported (to record Events on transitions only).
    last: Option<(bool, String)>,
    /// The content hash whose rollout restart was deferred or failed: the next reconcile
    /// restarts the targets for it even though the Secret is unchanged by then.
    restart_pending: Option<String>,
    /// A dynamic resource's lease lifecycle (`dynamic::tick`).
    dynamic: Option<DynamicState>,
    /// The client a dynamic resource's leases are issued, renewed and revoked with (its own
    /// login, kept so that one token holds them; dropped after a failed tick to log in anew).
    vault: Option<VaultClient>,
}

impl ResState {
    fn new(base: Duration, max: Duration) -> ResState {
        ResState {
            backoff: Backoff::new(base, max),
            last: None,
            restart_pending: None,
            dynamic: None,
            vault: None,
        }
    }
}

/// A successful reconcile, static or dynamic, in the terms the loop reports.
#[derive(Debug, Default)]
struct Done {
    /// The Secret's namespace and name (`None`: nothing written, ESO `creationPolicy: None`).
    secret: Option<(String, String)>,
    content_hash: Option<String>,
    lease: Option<LeaseInfo>,
    written: Option<Written>,
    restarts: Vec<TargetReport>,
    /// A dynamic resource: when its lease schedule is next due.
    lease_due: Option<Duration>,
    /// The Secret's resourceVersion after this reconcile, when known.
    resource_version: Option<String>,
}

/// The resource that writes a Secret, and the Secret's resourceVersion as that resource's
/// last reconcile left it: a watch event with another version is someone else's change.
#[derive(Debug)]
struct Target {
    key: ObjKey,
    version: Option<String>,
}

/// Unix milliseconds from now, as a duration (0 when past).
fn until_millis(at: i64) -> Duration {
    let left = at.saturating_sub(crate::secret::now_millis());
    Duration::from_millis(u64::try_from(left).unwrap_or(0))
}

struct Controller {
    client: kube::Client,
    /// One restart per workload per `--restart-min-interval`, kept across reconciles.
    limiter: RateLimiter,
    rollout: RolloutConfig,
    dynamic: dynamic::Settings,
    settings: Settings,
    metrics: Arc<Metrics>,
    cache: Cache,
    states: HashMap<ObjKey, ResState>,
    queue: DueQueue,
    /// Watch scopes whose first list has not completed: no reconcile before they have, or a
    /// resource would fail for a store not listed yet.
    pending: HashSet<String>,
    /// For the watchers of managed Secrets, started per namespace as resources appear there.
    secret_tx: mpsc::Sender<watch::Msg>,
    secret_watchers: HashMap<String, tokio::task::JoinHandle<()>>,
    /// Managed Secrets `(namespace, name)` → the resource that writes them.
    targets: HashMap<(String, String), Target>,
}

impl Controller {
    async fn run_loop(
        &mut self,
        mut rx: mpsc::Receiver<watch::Msg>,
        mut lead_rx: signal::Receiver<bool>,
        mut stop_rx: signal::Receiver<bool>,
    ) -> ExitCode {
        let mut leading = false;
        loop {
            if *stop_rx.borrow() {
                return ExitCode::SUCCESS;
            }
            // Everything the watchers sent first: a reconcile sees the newest objects.
            while let Ok(msg) = rx.try_recv() {
                self.handle(msg).await;
            }
            let now_leading = *lead_rx.borrow();
            if now_leading != leading {
                self.metrics.set_leader(now_leading);
                if !now_leading {
                    log::warn("no longer the leader: exiting so that a fresh replica takes over");
                    return ExitCode::from(EXIT_FAILED);
                }
                leading = true;
                // A new leader renders everything once (its predecessor's schedule is gone).
                let now = Instant::now();
                let due: Vec<ObjKey> = self.cache.producers().map(|e| e.key.clone()).collect();
                for key in due {
                    self.queue.sooner(&key, now);
                }
            }
            if leading
                && self.pending.is_empty()
                && let Some(key) = self.queue.pop_due(Instant::now())
            {
                self.reconcile(&key).await;
                continue;
            }
            let next = if leading && self.pending.is_empty() {
                self.queue.next()
            } else {
                None
            };
            let sleep = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => self.handle(msg).await,
                    // Unreachable while the controller holds a sender (for Secret watchers).
                    None => return ExitCode::SUCCESS,
                },
                () = sleep => {}
                _ = lead_rx.changed() => {}
                _ = stop_rx.changed() => {}
            }
        }
    }

    async fn handle(&mut self, msg: watch::Msg) {
        let now = Instant::now();
        match msg {
            watch::Msg::Listed { scope } => {
                self.pending.remove(&scope);
            }
            watch::Msg::Secret {
                namespace,
                name,
                version,
            } => self.secret_event(namespace, name, version),
            watch::Msg::Upsert(entry) => {
                let entry = *entry;
                let key = entry.key.clone();
                if let Err(reason) = &entry.resource {
                    log::warn(&format!("{key}: {reason}"));
                }
                let produces = key.kind.produces();
                let previous = self.cache.insert(entry);
                if produces {
                    self.track_target(&key);
                }
                let Some(current) = self.cache.get(&key) else {
                    return;
                };
                if produces {
                    let changed = match &previous {
                        Some(p) => p.trigger() != current.trigger(),
                        None => true,
                    };
                    if changed {
                        if let Some(s) = self.states.get_mut(&key) {
                            s.backoff.reset();
                            // A new spec (or force-sync) of a dynamic resource: new
                            // credentials, the old lease retired as in a rotation.
                            if let Some(lease) = s.dynamic.as_mut().and_then(|d| d.lease.as_mut()) {
                                lease.exhausted = true;
                            }
                        }
                        self.queue.set(&key, now);
                    }
                    self.metrics.set_resources(self.cache.counts());
                } else if previous.is_none_or(|p| p.generation != current.generation) {
                    for dependent in self.cache.dependents(&key) {
                        self.queue.sooner(&dependent, now);
                    }
                }
            }
            watch::Msg::Remove(key) => {
                let removed = self.cache.remove(&key);
                if key.kind.produces() {
                    self.targets.retain(|_, t| t.key != key);
                    if let (Some(state), Some(entry)) = (self.states.remove(&key), removed) {
                        self.release(&entry, state).await;
                    }
                    self.queue.remove(&key);
                    self.metrics.forget(&key);
                    self.metrics.set_resources(self.cache.counts());
                } else {
                    for dependent in self.cache.dependents(&key) {
                        self.queue.sooner(&dependent, now);
                    }
                }
            }
        }
    }

    /// Registers the Secret a rendering resource writes, and watches its namespace's managed
    /// Secrets from then on.
    fn track_target(&mut self, key: &ObjKey) {
        let Some(target) = self.cache.get(key).and_then(|e| self.target_of(e)) else {
            return;
        };
        if !self.secret_watchers.contains_key(&target.0) {
            let watcher = tokio::spawn(watch::run_secrets(
                self.client.clone(),
                target.0.clone(),
                self.secret_tx.clone(),
            ));
            self.secret_watchers.insert(target.0.clone(), watcher);
        }
        if self.targets.get(&target).is_some_and(|t| t.key == *key) {
            return;
        }
        // A resource now writing another Secret (a new target name) lets go of its old one.
        self.targets.retain(|_, v| v.key != *key);
        self.targets.entry(target).or_insert_with(|| Target {
            key: key.clone(),
            version: None,
        });
    }

    /// The Secret (namespace, name) a rendering resource writes.
    fn target_of(&self, entry: &Entry) -> Option<(String, String)> {
        entry
            .resource
            .as_ref()
            .ok()?
            .target_secret(&self.settings.options.default_namespace)
    }

    /// Two resources must not write one Secret (they would undo each other's writes): the
    /// first one seen keeps it, the others fail until it lets go (`once` refuses such a pair
    /// outright).
    fn claimed_by_another(&self, entry: &Entry) -> Option<String> {
        let target = self.target_of(entry)?;
        let holder = self.targets.get(&target)?;
        (holder.key != entry.key && self.cache.get(&holder.key).is_some()).then(|| {
            format!(
                "Secret {}/{} is also the target of {}, which writes it",
                target.0, target.1, holder.key
            )
        })
    }

    /// A managed Secret changed or went away. If that was not this controller's own write,
    /// its resource is reconciled now rather than at its next refresh: the Secret is put back
    /// (a deleted dynamic Secret gets new credentials, its values being kept nowhere else).
    fn secret_event(&mut self, namespace: String, name: String, version: Option<String>) {
        let Some(target) = self.targets.get_mut(&(namespace, name)) else {
            return;
        };
        if version.is_some() && version == target.version {
            return;
        }
        let deleted = version.is_none();
        target.version = version;
        let key = target.key.clone();
        let Some(entry) = self.cache.get(&key) else {
            return;
        };
        // A dynamic Secret's values are kept nowhere else, so an edit cannot be undone (and its
        // lease annotations move with each renewal): only its deletion is acted on.
        if !deleted && entry.resource.as_ref().is_ok_and(Resource::is_dynamic) {
            return;
        }
        if deleted
            && let Some(lease) = self
                .states
                .get_mut(&key)
                .and_then(|s| s.dynamic.as_mut())
                .and_then(|d| d.lease.as_mut())
        {
            lease.exhausted = true;
        }
        log::info(&format!(
            "{key}: its Secret was {} outside tresor sync; reconciling now",
            if deleted { "deleted" } else { "changed" }
        ));
        self.queue.sooner(&key, Instant::now());
    }

    /// A deleted dynamic resource with VSO's `revoke: true`: its current and retired leases
    /// are revoked (with the client that holds them; logged in again if it was dropped).
    async fn release(&mut self, entry: &Entry, state: ResState) {
        let revoke =
            matches!(&entry.resource, Ok(Resource::VaultDynamicSecret(s)) if s.spec.revoke);
        let Some(mut dynamic) = state.dynamic.filter(|_| revoke) else {
            return;
        };
        if dynamic.lease.is_none() && dynamic.retired.is_empty() {
            return;
        }
        let vault = match (
            state.vault,
            &entry.resource,
            self.cache.manifests_for(entry),
        ) {
            (Some(v), _, _) => v,
            (None, Ok(resource), Some(manifests)) => {
                let engine = Engine::new(
                    &manifests,
                    &self.settings.options,
                    Some(self.client.clone()),
                );
                match engine.lease_client(resource).await {
                    Ok(v) => v,
                    Err(reason) => {
                        log::warn(&format!(
                            "{}: deleted; its leases cannot be revoked ({reason}): they expire by themselves",
                            entry.key
                        ));
                        return;
                    }
                }
            }
            _ => return,
        };
        for event in dynamic::release(&vault, &mut dynamic, true).await {
            log_dynamic(&entry.key, &event);
        }
    }

    /// One tick of a dynamic resource's lease lifecycle, in the terms of a reconcile.
    async fn tick(&mut self, entry: &Entry) -> Result<Done, String> {
        let resource = match &entry.resource {
            Ok(r) => r,
            Err(reason) => return Err(format!("the resource does not parse: {reason}")),
        };
        let Some(manifests) = self.cache.manifests_for(entry) else {
            return Err("the resource does not parse".into());
        };
        let (base, max) = (self.settings.backoff_base, self.settings.backoff_max);
        let state = self
            .states
            .entry(entry.key.clone())
            .or_insert_with(|| ResState::new(base, max));
        let vault = match &state.vault {
            Some(v) => v.clone(),
            None => {
                let engine = Engine::new(
                    &manifests,
                    &self.settings.options,
                    Some(self.client.clone()),
                );
                let v = engine.lease_client(resource).await?;
                state.vault = Some(v.clone());
                v
            }
        };
        // The passes that issue credentials use the token of this login: the leases they
        // create are renewed and revoked by the identity that holds them.
        let mut options = self.settings.options.clone();
        if let Some(token) = vault.token() {
            options.token = Some(token.clone());
        }
        let target = DynamicTarget {
            manifests: &manifests,
            options: &options,
            resource,
        };
        let lifecycle = state.dynamic.get_or_insert_with(DynamicState::default);
        let report = match dynamic::tick(
            &vault,
            &self.client,
            target,
            lifecycle,
            &mut self.limiter,
            &self.dynamic,
        )
        .await
        {
            Ok(r) => r,
            Err(e) => {
                // A token that expired or was revoked fails everything: log in anew.
                state.vault = None;
                return Err(e.to_string());
            }
        };
        let mut done = Done {
            secret: resource.target_secret(&options.default_namespace),
            lease: lifecycle.lease.as_ref().map(|l| LeaseInfo {
                lease_id: l.id.clone(),
                duration_secs: l.duration,
                renewable: l.renewable,
            }),
            written: Some(Written::Unchanged),
            lease_due: Some(until_millis(report.next_at)),
            ..Done::default()
        };
        for event in &report.events {
            match event {
                dynamic::Event::Issued { .. } => done.written = Some(Written::Created),
                dynamic::Event::Reissued { .. } => done.written = Some(Written::Updated),
                dynamic::Event::Restarts(reports) => done.restarts.extend(reports.iter().cloned()),
                _ => {}
            }
            log_dynamic(&entry.key, event);
        }
        if done.written != Some(Written::Unchanged)
            && let Some((ns, name)) = &done.secret
        {
            let secrets: Api<k8s_openapi::api::core::v1::Secret> =
                Api::namespaced(self.client.clone(), ns);
            if let Ok(Some(s)) = secrets.get_opt(name).await {
                done.resource_version = s.metadata.resource_version;
                done.content_hash = s
                    .metadata
                    .annotations
                    .and_then(|mut a| a.remove(HASH_ANNOTATION));
            }
        }
        Ok(done)
    }

    /// One static reconcile (fetch, render, write, restart) in the terms the loop reports.
    async fn render(&mut self, entry: &Entry) -> Result<Done, String> {
        let pending = self
            .states
            .get(&entry.key)
            .and_then(|s| s.restart_pending.clone());
        let synced = reconcile::reconcile(
            &self.client,
            &self.settings.options,
            &self.cache,
            entry,
            reconcile::Rollout {
                limiter: &mut self.limiter,
                config: &self.rollout,
                pending_hash: pending.as_deref(),
            },
        )
        .await?;
        let Some(secret) = synced.secret else {
            return Ok(Done::default());
        };
        Ok(Done {
            content_hash: secret.annotations.get(HASH_ANNOTATION).cloned(),
            lease: secret.leases.first().cloned(),
            secret: Some((secret.namespace, secret.name)),
            written: Some(synced.written),
            restarts: synced.restarts,
            lease_due: None,
            resource_version: synced.resource_version,
        })
    }

    async fn reconcile(&mut self, key: &ObjKey) {
        let Some(entry) = self.cache.get(key).cloned() else {
            return;
        };
        let started = Instant::now();
        // A Secret freed by its first writer's deletion goes to the next resource naming it.
        self.track_target(key);
        let result = if let Some(reason) = self.claimed_by_another(&entry) {
            Err(reason)
        } else if entry.resource.as_ref().is_ok_and(Resource::is_dynamic) {
            self.tick(&entry).await
        } else {
            self.render(&entry).await
        };
        let took = started.elapsed();
        let (base, max) = (self.settings.backoff_base, self.settings.backoff_max);
        let previous = self
            .states
            .get(key)
            .and_then(|s| s.last.clone())
            .or_else(|| {
                status::ready_condition(&entry.status).map(|(ready, _, message)| (ready, message))
            });
        let mut extra = Extra {
            generation: entry.generation,
            ..Extra::default()
        };
        let verdict;
        let mut next;
        match result {
            Ok(done) => {
                self.metrics.sync_done(key, true, took);
                let written = done.written.unwrap_or(Written::Skipped);
                let secret_id = done
                    .secret
                    .as_ref()
                    .filter(|_| done.written.is_some())
                    .map(|(ns, name)| format!("Secret {ns}/{name}"));
                let changed = matches!(written, Written::Created | Written::Updated);
                if let Some((ns, name)) = &done.secret {
                    if let Some(target) = self.targets.get_mut(&(ns.clone(), name.clone()))
                        && target.key == *key
                        && done.resource_version.is_some()
                    {
                        target.version = done.resource_version.clone();
                    }
                    extra.secret_name = Some(name.clone());
                    extra.content_hash = done.content_hash.clone();
                    extra.lease = done.lease.clone();
                    if changed {
                        let created = written == Written::Created;
                        self.metrics.secret_written(key.kind, created);
                        hooks::secret_changed(&entry, ns, name, created);
                    }
                }
                hooks::restarts(&entry, &done.restarts);
                let message = match (&secret_id, written) {
                    (Some(id), Written::Created) => format!("{id} created"),
                    (Some(id), Written::Updated) => format!("{id} updated"),
                    (Some(id), _) => format!("{id} is in sync"),
                    (None, _) => "rendered; nothing written (creationPolicy None)".to_owned(),
                };
                // The condition's message stays put while the Secret is in sync, so a
                // refresh that changed nothing writes no status.
                verdict = Verdict::success(
                    key.kind,
                    match &secret_id {
                        Some(id) => format!("{id} synced"),
                        None => message.clone(),
                    },
                );
                if changed || previous.as_ref().is_none_or(|(ready, _)| !ready) {
                    events::record(
                        &self.client,
                        &entry,
                        events::Type::Normal,
                        "Synced",
                        &message,
                        &self.settings.identity,
                    )
                    .await;
                }
                let state = self
                    .states
                    .entry(key.clone())
                    .or_insert_with(|| ResState::new(base, max));
                state.backoff.reset();
                next = match entry
                    .resource
                    .as_ref()
                    .map(|r| refresh::next_refresh(r, done.lease_due))
                {
                    Ok(Ok(interval)) => interval,
                    Ok(Err(reason)) => {
                        log::warn(&format!(
                            "{key}: {reason}; refreshing every {}s",
                            refresh::DEFAULT_INTERVAL.as_secs()
                        ));
                        Some(refresh::DEFAULT_INTERVAL)
                    }
                    Err(_) => None,
                };
                // A dynamic resource's lifecycle retries its own held-back restarts.
                if done.lease_due.is_none() {
                    let (ready_at, pending) = hooks::pending(&done.restarts);
                    state.restart_pending = if pending {
                        done.content_hash.clone()
                    } else {
                        None
                    };
                    // A deferred restart: back when the limiter allows it, not before.
                    if let Some(at) = ready_at {
                        let due = until_millis(at);
                        next = Some(next.map_or(due, |n| n.min(due)));
                    }
                }
            }
            Err(message) => {
                self.metrics.sync_done(key, false, took);
                verdict = Verdict::failure(key.kind, message);
                let state = self
                    .states
                    .entry(key.clone())
                    .or_insert_with(|| ResState::new(base, max));
                let delay = state.backoff.next_delay();
                log::warn(&format!(
                    "{key}: sync failed (attempt {}, retry in {:.1}s): {}",
                    state.backoff.failures(),
                    delay.as_secs_f64(),
                    verdict.message
                ));
                if previous.as_ref() != Some(&(false, verdict.message.clone())) {
                    events::record(
                        &self.client,
                        &entry,
                        events::Type::Warning,
                        "SyncFailed",
                        &verdict.message,
                        &self.settings.identity,
                    )
                    .await;
                }
                next = Some(delay);
            }
        }
        if let Some(s) = self.states.get_mut(key) {
            s.last = Some((verdict.ready, verdict.message.clone()));
        }
        self.write_status(&entry, &verdict, &extra).await;
        match next {
            Some(d) => self.queue.set(key, Instant::now() + d),
            None => self.queue.remove(key),
        }
    }

    async fn write_status(&mut self, entry: &Entry, verdict: &Verdict, extra: &Extra) {
        let now = k8s_openapi::jiff::Timestamp::now();
        let seconds = now.as_second();
        let now_text = k8s_openapi::jiff::Timestamp::from_second(seconds)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| now.to_string());
        let Some(patch) = status::next_status(
            entry.key.kind,
            &entry.status,
            verdict,
            extra,
            &now_text,
            seconds,
        ) else {
            return;
        };
        let info = entry.key.kind.info();
        let version = entry.api_version.rsplit('/').next().unwrap_or("v1");
        let ar = watch::api_resource(&info, version);
        let api: Api<DynamicObject> = if info.namespaced {
            Api::namespaced_with(self.client.clone(), &entry.key.namespace, &ar)
        } else {
            Api::all_with(self.client.clone(), &ar)
        };
        match api
            .patch_status(
                &entry.key.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(updated) => {
                // Until the watch delivers it, the cache holds what we wrote.
                if let Some(cached) = self.cache.get_mut(&entry.key) {
                    cached.status = updated.data.get("status").cloned().unwrap_or_default();
                }
            }
            Err(e) => log::warn(&format!(
                "{}: writing its status: {}",
                entry.key,
                crate::apply::kube_reason(&e)
            )),
        }
    }
}

/// A line per lease event (ids and reasons, never a value).
fn log_dynamic(key: &ObjKey, event: &dynamic::Event) {
    use dynamic::Event as E;
    match event {
        E::Resumed { lease_id } => log::info(&format!("{key}: resumed lease {lease_id}")),
        E::ResumedRetired { lease_id } => log::info(&format!(
            "{key}: resumed retired lease {lease_id} (to be revoked)"
        )),
        E::Issued { lease_id } => log::info(&format!("{key}: issued lease {lease_id}")),
        E::Reissued { old, new, reason } => log::info(&format!(
            "{key}: re-issued ({reason}): lease {new} replaces {old}"
        )),
        E::Renewed {
            lease_id,
            asked,
            granted,
        } => log::info(&format!(
            "{key}: renewed lease {lease_id} ({granted}s of {asked}s asked)"
        )),
        E::RenewFailed { lease_id, reason } => log::warn(&format!(
            "{key}: renewing lease {lease_id} failed: {reason}"
        )),
        // Logged with the other restarts.
        E::Restarts(_) => {}
        E::Revoked { lease_id } => log::info(&format!("{key}: revoked lease {lease_id}")),
        E::RevokeFailed { lease_id, reason } => log::warn(&format!(
            "{key}: revoking lease {lease_id} failed: {reason}"
        )),
    }
}
