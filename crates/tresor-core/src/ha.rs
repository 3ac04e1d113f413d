//! High availability: several nodes on one shared backend (`storage "postgresql"` with
//! `ha_enabled`), one active, the others standbys.
//!
//! A node unseals as usual, but in HA mode unsealing only loads the keyring: the node is a
//! standby, whose backend refuses writes, and a background task tries to take the backend's
//! lock ([`tresor_storage::ha::HaLock`]) every [`RETRY_INTERVAL`]. The node that takes it
//! reloads the keyring and loads what unsealing loads on a single node (mounts, tokens,
//! policies, identity, quotas, audit devices; leases in the background), then serves. When
//! the lock is lost the backend already refuses this node's writes (its fence), and the task
//! drops the active state at once: the node is a standby again and tries again after
//! [`LOST_BACKOFF`], so that another node takes over first. `sys/step-down` releases the
//! lock and waits [`STEP_DOWN_BACKOFF`] before trying again. Sealing an active node releases
//! the lock.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;
use tresor_storage::ha::{HaLock, HaNode, NodeAdvert};

use crate::core::{ClusterInfo, Core};
use crate::error::{CoreError, CoreResult};

/// How often a standby tries to take the lock (and refreshes who the leader is).
pub const RETRY_INTERVAL: Duration = Duration::from_millis(500);
/// How often a node records that it is alive, for `sys/ha-status`.
const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(2);
/// A node that lost the lock waits this long before trying again, so that a standby that
/// was not in trouble takes over.
pub const LOST_BACKOFF: Duration = Duration::from_secs(2);
/// After `sys/step-down`, as in Vault (which waits 10 s), long enough for another node.
pub const STEP_DOWN_BACKOFF: Duration = Duration::from_secs(5);

/// The barrier context of a forwarded request's client address (never a storage key).
const FORWARDED_CLIENT_CONTEXT: &str = "core/ha/forwarded-client";
/// How long a sealed client address is accepted after the standby made it.
const FORWARDED_CLIENT_VALIDITY_SECS: i64 = 60;

/// What a standby seals for the active node: the client's address, bound to one request.
#[derive(serde::Serialize, serde::Deserialize)]
struct ForwardedClient {
    client: std::net::SocketAddr,
    method: String,
    uri: String,
    /// Unix seconds when the standby sealed it.
    at: i64,
}

/// Where an HA node stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HaMode {
    Sealed,
    /// Unsealed (keyring loaded), not serving.
    Standby,
    /// Holds the lock and serves.
    Active,
}

/// What `sys/leader` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderStatus {
    pub ha_enabled: bool,
    pub is_self: bool,
    /// When this node became active (only on the active node).
    pub active_time: Option<time::OffsetDateTime>,
    /// The active node's `api_addr`; empty when none is known.
    pub leader_address: String,
    pub leader_cluster_address: String,
}

/// The HA state of a core (present only with an HA backend).
#[derive(Debug)]
pub(crate) struct Ha {
    pub lock: Arc<dyn HaLock>,
    mode: RwLock<HaMode>,
    /// The active node as last seen (this node's own advert while active).
    leader: RwLock<Option<NodeAdvert>>,
    /// The cluster identity, read at unseal: a standby reports it too.
    cluster: RwLock<Option<ClusterInfo>>,
    active_since: RwLock<Option<time::OffsetDateTime>>,
    /// No attempt to take the lock before this instant.
    backoff_until: RwLock<Option<Instant>>,
    /// Bumped at each unseal, so the task of an earlier unseal ends.
    generation: std::sync::atomic::AtomicU64,
}

impl Ha {
    pub(crate) fn new(lock: Arc<dyn HaLock>) -> Self {
        Self {
            lock,
            mode: RwLock::new(HaMode::Sealed),
            leader: RwLock::new(None),
            cluster: RwLock::new(None),
            active_since: RwLock::new(None),
            backoff_until: RwLock::new(None),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub(crate) fn mode(&self) -> HaMode {
        self.mode.read().map_or(HaMode::Sealed, |m| *m)
    }

    fn set_mode(&self, mode: HaMode) {
        if let Ok(mut m) = self.mode.write() {
            *m = mode;
        }
        // Standby: the backend refuses writes; sealed: writes go unfenced (sys/init).
        match mode {
            HaMode::Sealed => self.lock.set_standby(false),
            HaMode::Standby => self.lock.set_standby(true),
            HaMode::Active => {}
        }
    }

    pub(crate) fn cluster(&self) -> Option<ClusterInfo> {
        self.cluster.read().ok().and_then(|c| c.clone())
    }

    fn set_leader(&self, leader: Option<NodeAdvert>) {
        if let Ok(mut l) = self.leader.write() {
            *l = leader;
        }
    }

    fn leader(&self) -> Option<NodeAdvert> {
        self.leader.read().ok().and_then(|l| l.clone())
    }

    fn back_off(&self, wait: Duration) {
        if let Ok(mut b) = self.backoff_until.write() {
            *b = Some(Instant::now() + wait);
        }
    }

    fn may_try(&self) -> bool {
        self.backoff_until
            .read()
            .ok()
            .and_then(|b| *b)
            .is_none_or(|until| Instant::now() >= until)
    }
}

impl Core {
    fn ha(&self) -> Option<&Ha> {
        self.ha.as_ref()
    }

    /// Whether this node runs in HA mode.
    pub fn ha_enabled(&self) -> bool {
        self.ha.is_some()
    }

    /// An unsealed standby: it serves only the unauthenticated `sys/` endpoints and sends
    /// everything else to the active node.
    pub fn is_standby(&self) -> bool {
        self.ha().is_some_and(|ha| ha.mode() == HaMode::Standby)
    }

    /// The cluster identity of an unsealed standby.
    pub(crate) fn standby_cluster(&self) -> Option<ClusterInfo> {
        self.ha()
            .filter(|ha| ha.mode() == HaMode::Standby)
            .and_then(Ha::cluster)
    }

    /// The active node's `api_addr` as this node last saw it.
    pub fn leader_api_addr(&self) -> Option<String> {
        self.ha()
            .and_then(Ha::leader)
            .map(|l| l.api_addr)
            .filter(|a| !a.is_empty())
    }

    /// A standby forwarding a request: the client's address sealed by the barrier, bound to
    /// the request's method and URI, so that the active node (the only other holder of the
    /// keyring) can trust it. `None` without HA or while sealed.
    pub fn seal_forwarded_client(
        &self,
        client: std::net::SocketAddr,
        method: &str,
        uri: &str,
    ) -> Option<Vec<u8>> {
        self.ha()?;
        let record = ForwardedClient {
            client,
            method: method.to_owned(),
            uri: uri.to_owned(),
            at: time::OffsetDateTime::now_utc().unix_timestamp(),
        };
        let plaintext = serde_json::to_vec(&record).ok()?;
        self.barrier()
            .seal_detached(FORWARDED_CLIENT_CONTEXT, &plaintext)
            .ok()
    }

    /// The active node: the client address a standby sealed for this method and URI within
    /// the last minute; `None` for anything else (forged, replayed on another request, stale).
    pub fn open_forwarded_client(
        &self,
        sealed: &[u8],
        method: &str,
        uri: &str,
    ) -> Option<std::net::SocketAddr> {
        self.ha()?;
        let plaintext = self
            .barrier()
            .open_detached(FORWARDED_CLIENT_CONTEXT, sealed)
            .ok()?;
        let record: ForwardedClient = serde_json::from_slice(plaintext.expose()).ok()?;
        let age = time::OffsetDateTime::now_utc().unix_timestamp() - record.at;
        (record.method == method
            && record.uri == uri
            && (-FORWARDED_CLIENT_VALIDITY_SECS..=FORWARDED_CLIENT_VALIDITY_SECS).contains(&age))
        .then_some(record.client)
    }

    /// `sys/leader`.
    pub fn leader_status(&self) -> CoreResult<LeaderStatus> {
        let Some(ha) = self.ha() else {
            return Ok(LeaderStatus {
                ha_enabled: false,
                is_self: false,
                active_time: None,
                leader_address: String::new(),
                leader_cluster_address: String::new(),
            });
        };
        let mode = ha.mode();
        if mode == HaMode::Sealed {
            return Err(CoreError::Sealed);
        }
        let leader = ha.leader();
        Ok(LeaderStatus {
            ha_enabled: true,
            is_self: mode == HaMode::Active,
            active_time: if mode == HaMode::Active {
                ha.active_since.read().ok().and_then(|t| *t)
            } else {
                None
            },
            leader_address: leader
                .as_ref()
                .map(|l| l.api_addr.clone())
                .unwrap_or_default(),
            leader_cluster_address: leader.map(|l| l.cluster_addr).unwrap_or_default(),
        })
    }

    /// `sys/ha-status`: the nodes that announced themselves recently.
    pub async fn ha_nodes(&self) -> CoreResult<Vec<HaNode>> {
        self.active()?;
        let Some(ha) = self.ha() else {
            return Err(CoreError::InvalidRequest(
                "this node is not in HA mode (storage ha_enabled is not set)".to_owned(),
            ));
        };
        Ok(ha.lock.nodes().await?)
    }

    /// `sys/step-down`: the active node releases the lock and becomes a standby; another
    /// node takes over. Without HA, or on a standby, nothing happens (as in Vault).
    pub async fn step_down(&self) -> CoreResult<()> {
        let Some(ha) = self.ha() else { return Ok(()) };
        if ha.mode() != HaMode::Active {
            return Ok(());
        }
        tracing::info!("stepping down: releasing the HA lock");
        ha.back_off(STEP_DOWN_BACKOFF);
        self.demote();
        ha.lock.release().await;
        Ok(())
    }

    /// Called by unseal in HA mode, with the keyring loaded: this node becomes a standby and
    /// its HA task starts.
    pub(crate) async fn enter_standby(&self) -> CoreResult<()> {
        let Some(ha) = self.ha() else { return Ok(()) };
        let cluster = match self.barrier().get(crate::core::CLUSTER_INFO_PATH).await? {
            Some(raw) => serde_json::from_slice::<ClusterInfo>(raw.expose())?,
            None => {
                return Err(CoreError::Internal(
                    "cluster info missing from storage".to_owned(),
                ));
            }
        };
        if let Ok(mut c) = ha.cluster.write() {
            *c = Some(cluster);
        }
        ha.set_mode(HaMode::Standby);
        let generation = ha
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        tokio::spawn(run(self.weak(), generation));
        tracing::info!("unsealed as a standby: waiting for the HA lock");
        Ok(())
    }

    /// Called by seal: an active node gives the lock up.
    pub(crate) async fn leave_ha(&self) {
        let Some(ha) = self.ha() else { return };
        let was = ha.mode();
        ha.set_mode(HaMode::Sealed);
        ha.set_leader(None);
        if was == HaMode::Active {
            ha.lock.release().await;
            // Released sets the fence to standby; sealed writes go unfenced again.
            ha.lock.set_standby(false);
        }
    }

    /// Takes over after the lock was acquired: the keyring and the seal configuration may
    /// have changed on the node that was active, and nothing loaded before is trusted.
    async fn promote(&self) -> CoreResult<()> {
        let Some(ha) = self.ha() else { return Ok(()) };
        let _transition = self.transition.lock().await;
        if ha.mode() != HaMode::Standby {
            return Err(CoreError::Sealed);
        }
        let started = std::time::Instant::now();
        self.reload_seal_configs().await?;
        self.reload_keyring_for_take_over().await?;
        let active = self.activate().await?;
        ha.set_mode(HaMode::Active);
        ha.set_leader(Some(ha.lock.advert().clone()));
        if let Ok(mut t) = ha.active_since.write() {
            *t = Some(time::OffsetDateTime::now_utc());
        }
        drop(active);
        tracing::info!(
            load_ms = started.elapsed().as_secs_f64() * 1000.0,
            "this node is now the active node"
        );
        Ok(())
    }

    /// The keyring as the node that was active left it. With an auto seal, that node may have
    /// rotated the root key (`sys/rotate/root`): the loaded root key no longer opens the
    /// keyring, and the seal unwraps the new one from `core/sealed-root-key`, as an unseal
    /// would. (A Shamir rekey keeps the root key; only its wrapping changes.)
    async fn reload_keyring_for_take_over(&self) -> CoreResult<()> {
        match self.barrier().reload_keyring().await {
            Err(crate::barrier::BarrierError::InvalidRootKey) if self.options.seal.is_some() => {
                let root_key = self.stored_key(crate::seal::SEALED_ROOT_KEY_PATH).await?;
                self.barrier().reload_keyring_with(&root_key).await?;
                tracing::info!(
                    "the root key was rotated on the node that was active: took the new one from the seal"
                );
                Ok(())
            }
            other => Ok(other?),
        }
    }

    /// HA: `sys/init` on a shared store. Another node may have initialised it since this
    /// node read the seal configuration at start, so it is read again; and the HA lock is held
    /// while initialising, so two nodes never initialise (or wipe an interrupted
    /// initialisation) at once. Returns whether the lock was taken (release it with
    /// [`Core::end_ha_init`]). Called with `transition` held.
    pub(crate) async fn begin_ha_init(&self) -> CoreResult<bool> {
        let Some(ha) = self.ha() else {
            return Ok(false);
        };
        self.reload_seal_configs().await?;
        if self.is_initialized() {
            return Err(CoreError::AlreadyInitialized);
        }
        if !ha.lock.try_acquire().await? {
            return Err(CoreError::InvalidRequest(
                "another node holds the HA lock: it is initialising the cluster, or the cluster is already initialised".to_owned(),
            ));
        }
        // Read once more under the lock: a node that finished initialising just before.
        if let Err(err) = self.reload_seal_configs().await {
            self.end_ha_init(true).await;
            return Err(err);
        }
        if self.is_initialized() {
            self.end_ha_init(true).await;
            return Err(CoreError::AlreadyInitialized);
        }
        Ok(true)
    }

    /// Releases the lock [`Core::begin_ha_init`] took; sealed writes go unfenced again.
    pub(crate) async fn end_ha_init(&self, locked: bool) {
        let Some(ha) = self.ha() else { return };
        if locked {
            ha.lock.release().await;
            ha.lock.set_standby(false);
        }
    }

    /// HA: a node started before `sys/init` learns, within [`RETRY_INTERVAL`], that another
    /// node initialised the shared store, and can then be unsealed (an auto seal unseals it
    /// at once) and become a standby or the active node, without a restart.
    pub fn watch_for_initialisation(&self) {
        if self.ha.is_none() || self.is_initialized() {
            return;
        }
        let weak = self.weak();
        tokio::spawn(async move {
            let mut unreachable = false;
            loop {
                tokio::time::sleep(RETRY_INTERVAL).await;
                let Some(core) = weak.upgrade() else { return };
                if core.is_initialized() {
                    // Another request read the new seal configuration first (a refused second
                    // sys/init, a sys/unseal): an auto seal must still unseal this node. A
                    // no-op on the node that initialised (unsealed already).
                    if core.options.seal.is_some() {
                        core.start_auto_unseal().await;
                    }
                    return;
                }
                match core.refresh_initialised().await {
                    Ok(true) => {
                        tracing::info!("the cluster was initialised by another node");
                        if core.options.seal.is_some() {
                            core.start_auto_unseal().await;
                        }
                        return;
                    }
                    Ok(false) => unreachable = false,
                    Err(err) if !unreachable => {
                        unreachable = true;
                        tracing::warn!(error = %err, "cannot read the seal configuration; retrying");
                    }
                    Err(_) => {}
                }
            }
        });
    }

    /// HA, not initialised as far as this node knows: reads the seal configuration again;
    /// `true` when the store is initialised now.
    pub(crate) async fn refresh_initialised(&self) -> CoreResult<bool> {
        if self.ha.is_none() {
            return Ok(self.is_initialized());
        }
        let _transition = self.transition.lock().await;
        if !self.is_initialized() {
            self.reload_seal_configs().await?;
        }
        Ok(self.is_initialized())
    }

    /// Drops the active state at once (in-flight requests finish with what they hold; their
    /// writes are refused by the backend already).
    fn demote(&self) {
        let Some(ha) = self.ha() else { return };
        if ha.mode() != HaMode::Active {
            return;
        }
        ha.set_mode(HaMode::Standby);
        ha.set_leader(None);
        if let Ok(mut t) = ha.active_since.write() {
            *t = None;
        }
        if let Some(active) = self.take_active() {
            active.expiration.stop();
        }
        tracing::warn!("this node is a standby now");
    }
}

/// The HA task of one unseal: tries for the lock while standby, watches it while active.
async fn run(weak: std::sync::Weak<Core>, generation: u64) {
    let mut announced: Option<Instant> = None;
    // While PostgreSQL is unreachable every attempt fails: say so once, not twice a second.
    let mut unreachable = false;
    loop {
        let Some(core) = weak.upgrade() else { return };
        let Some(ha) = core.ha() else { return };
        if ha.generation.load(std::sync::atomic::Ordering::SeqCst) != generation
            || ha.mode() == HaMode::Sealed
        {
            return;
        }
        if announced.is_none_or(|at| at.elapsed() >= ANNOUNCE_INTERVAL) {
            if let Err(err) = ha.lock.announce().await {
                tracing::debug!(error = %err, "could not announce this node");
            }
            announced = Some(Instant::now());
        }
        match ha.mode() {
            HaMode::Sealed => return,
            HaMode::Standby => {
                let mut acquired = false;
                if ha.may_try() {
                    match ha.lock.try_acquire().await {
                        Ok(taken) => {
                            if unreachable {
                                tracing::info!("the HA lock is reachable again");
                            }
                            unreachable = false;
                            acquired = taken;
                        }
                        Err(err) if !unreachable => {
                            unreachable = true;
                            tracing::warn!(error = %err, "cannot reach the HA lock; retrying");
                        }
                        Err(err) => tracing::debug!(error = %err, "cannot reach the HA lock"),
                    }
                }
                if acquired {
                    if let Err(err) = core.promote().await {
                        tracing::error!(error = %err, "could not take over as the active node; releasing the HA lock");
                        ha.lock.release().await;
                        ha.back_off(LOST_BACKOFF);
                    }
                    continue;
                }
                match ha.lock.leader().await {
                    Ok(leader) => ha.set_leader(leader),
                    Err(err) => tracing::debug!(error = %err, "cannot read the leader"),
                }
                drop(core);
                tokio::time::sleep(RETRY_INTERVAL).await;
            }
            HaMode::Active => {
                let mut held = ha.lock.watch_held();
                let lock = ha.lock.clone();
                drop(core);
                let lost = tokio::select! {
                    _ = held.wait_for(|h| !*h) => true,
                    () = tokio::time::sleep(ANNOUNCE_INTERVAL) => false,
                };
                if !lost {
                    continue;
                }
                let Some(core) = weak.upgrade() else { return };
                let Some(ha) = core.ha() else { return };
                if ha.mode() == HaMode::Active {
                    // Lost, not released: step down now and let another node take over.
                    core.demote();
                    ha.back_off(LOST_BACKOFF);
                    lock.release().await;
                }
            }
        }
    }
}
