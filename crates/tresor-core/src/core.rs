//! The server's state machine: uninitialized → sealed → unsealed (active), and back to sealed.
//!
//! `Core` owns the barrier and, while unsealed, the [`Active`] state (token store, cluster
//! identity). Sealing drops `Active` and the barrier's keyring, so no key material stays in
//! memory. State transitions are serialised by one async mutex; request handling only takes a
//! cheap read lock to clone the `Arc<Active>`.

use std::sync::{Arc, RwLock, Weak};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tresor_sdk::secret::{SecretBytes, SecretString};
use tresor_storage::Backend;

use crate::barrier::{Barrier, KeyStatus};
use crate::error::{CoreError, CoreResult};
use crate::expiration::{ExpirationManager, LeaseOptions, TimerQueue};
use crate::mount::{EngineRegistry, MountKind, MountTables};
use crate::policy_store::PolicyStore;
use crate::random;
use crate::seal::{self, InitRequest, SealConfig, SealKind, UnsealProgress};
use crate::token::TokenStore;
use crate::token::entry::{TokenEntry, now_ns};
use crate::version;

pub(crate) const CLUSTER_INFO_PATH: &str = "core/cluster/info";

/// Shares shorter than this cannot be a share of a 32-byte key; OpenBao uses the same bound.
const MIN_KEY_LEN: usize = 16;
/// A share of a 32-byte key is 33 bytes (the x coordinate is appended).
const MAX_KEY_LEN: usize = seal::KEY_LEN + 1;

/// Settings the core takes from the server configuration.
#[derive(Debug, Clone, Default)]
pub struct CoreOptions {
    /// `cluster_name` from the config; a random `vault-cluster-…` name otherwise.
    pub cluster_name: Option<String>,
    /// The secrets engines this build can mount (the binary passes `tresor-builtin`'s).
    pub engines: Vec<Arc<dyn tresor_sdk::engine::EngineFactory>>,
    /// The auth methods this build can mount (the binary passes `tresor-builtin`'s).
    pub auth_methods: Vec<Arc<dyn tresor_sdk::auth::AuthMethodFactory>>,
    /// The expiration manager's pacing and the revocation pause switch.
    pub leases: LeaseOptions,
    /// Audit devices declared in the config file (`audit "<type>" "<path>" { … }`).
    pub audit_devices: Vec<crate::audit::DeviceSpec>,
    /// `unsafe_allow_api_audit_creation`: `sys/audit/:path` may create devices.
    pub allow_api_audit_creation: bool,
    /// `allow_audit_log_prefixing`: `sys/audit/:path` may set a `prefix` option.
    pub allow_audit_log_prefixing: bool,
    /// The configured auto-unseal seal (`seal "transit"`, `seal "static"`); `None`: Shamir.
    pub seal: Option<Arc<dyn crate::seal::AutoSeal>>,
    /// The old seal of a migration away from an auto seal (its stanza says `disabled`).
    pub migration_seal: Option<Arc<dyn crate::seal::AutoSeal>>,
    /// The shared backend's HA lock (`ha_enabled`): unsealing makes this node a standby
    /// until it holds the lock (see [`crate::ha`]). `None`: a single node.
    pub ha: Option<Arc<dyn tresor_storage::ha::HaLock>>,
}

/// The cluster's identity, created at initialisation and stored under the barrier.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClusterInfo {
    pub name: String,
    pub id: String,
}

/// What exists only while unsealed.
#[derive(Debug)]
pub struct Active {
    pub tokens: TokenStore,
    pub policies: PolicyStore,
    pub mounts: MountTables,
    pub cluster: ClusterInfo,
    pub expiration: Arc<ExpirationManager>,
    pub identity: crate::identity::IdentityStore,
    /// Rate-limit quotas, checked per request from memory.
    pub quotas: crate::quotas::QuotaStore,
    /// Password policies (`sys/policies/password/*`).
    pub password_policies: crate::password_policy::PasswordPolicyStore,
    /// The enabled audit devices.
    pub audit: crate::audit::AuditBroker,
    /// Serialises unwrap and rewrap, so a wrapped response is handed out at most once.
    pub wrapping: Mutex<()>,
}

/// The answer of `sys/seal-status` and `sys/unseal`, independent of the wire format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealStatus {
    /// The barrier seal's type (the stored one once initialised, else the configured one).
    pub seal_type: crate::seal::SealKind,
    /// An auto-unseal seal: `threshold`/`shares` describe the recovery key shares.
    pub recovery_seal: bool,
    /// Why the last auto-unseal attempt failed, while the server is sealed because of it.
    pub seal_error: Option<String>,
    /// A seal migration waits for `sys/unseal` with `migrate`.
    pub migration: bool,
    pub initialized: bool,
    pub sealed: bool,
    pub threshold: u8,
    pub shares: u8,
    pub progress: usize,
    pub nonce: String,
    pub version: String,
    pub cluster: Option<ClusterInfo>,
    pub storage_type: &'static str,
}

/// The answer of `sys/health` before status-code selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthStatus {
    pub initialized: bool,
    pub sealed: bool,
    pub standby: bool,
    pub server_time_utc: i64,
    pub version: String,
    pub cluster: Option<ClusterInfo>,
}

/// What `sys/init` hands back exactly once.
#[derive(Debug)]
pub struct InitResult {
    /// Unseal key shares (Shamir seal); empty with an auto-unseal seal.
    pub keys: Vec<SecretBytes>,
    /// Recovery key shares (auto-unseal seal); empty with the Shamir seal.
    pub recovery_keys: Vec<SecretBytes>,
    pub root_token: SecretString,
}

#[derive(Debug)]
pub struct Core {
    barrier: Arc<Barrier>,
    pub(crate) options: CoreOptions,
    registry: Arc<EngineRegistry>,
    /// Cached copy of `core/seal-config`; `None` until initialised.
    pub(crate) seal_config: RwLock<Option<SealConfig>>,
    /// Cached copy of `core/recovery-config` (auto-unseal seals only).
    pub(crate) recovery_config: RwLock<Option<SealConfig>>,
    /// Why the last auto-unseal attempt failed; cleared when one succeeds.
    pub(crate) seal_error: RwLock<Option<String>>,
    /// Seal migration mode, decided at start from the stored and configured seals.
    pub(crate) migration: seal::SealMigration,
    /// Serialises init, unseal and seal; holds the shares collected so far.
    pub(crate) transition: Mutex<UnsealProgress>,
    active: RwLock<Option<Arc<Active>>>,
    pub(crate) generate_root: crate::generate_root::GenerateRoot,
    /// Rekey attempts. Lock order: `rekeys` before `transition`.
    pub(crate) rekeys: crate::rekey::Rekeys,
    /// Lets background tasks (lease expiry) hold the core without keeping it alive.
    self_ref: Weak<Core>,
    /// HA mode (a shared backend with a lock); `None` for a single node.
    pub(crate) ha: Option<crate::ha::Ha>,
}

impl Core {
    pub async fn new(backend: Arc<dyn Backend>, options: CoreOptions) -> CoreResult<Arc<Self>> {
        let config = seal::read_config(backend.as_ref()).await?;
        let recovery = seal::read_recovery_config(backend.as_ref()).await?;
        let migration = seal::plan_migration(
            backend.as_ref(),
            config.as_ref(),
            options.seal.as_deref(),
            options.migration_seal.as_deref(),
        )
        .await?;
        let registry = Arc::new(EngineRegistry::new(
            options.engines.clone(),
            options.auth_methods.clone(),
        ));
        let ha = options.ha.clone().map(crate::ha::Ha::new);
        Ok(Arc::new_cyclic(|weak| Self {
            ha,
            barrier: Arc::new(Barrier::new(backend)),
            options,
            registry,
            seal_config: RwLock::new(config),
            recovery_config: RwLock::new(recovery),
            seal_error: RwLock::new(None),
            migration,
            transition: Mutex::new(UnsealProgress::default()),
            active: RwLock::new(None),
            generate_root: crate::generate_root::GenerateRoot::default(),
            rekeys: crate::rekey::Rekeys::default(),
            self_ref: weak.clone(),
        }))
    }

    pub(crate) fn weak(&self) -> Weak<Core> {
        self.self_ref.clone()
    }

    pub fn barrier(&self) -> &Arc<Barrier> {
        &self.barrier
    }

    pub fn storage_type(&self) -> &'static str {
        self.barrier.backend().storage_type()
    }

    fn seal_config(&self) -> Option<SealConfig> {
        self.seal_config.read().ok().and_then(|c| *c)
    }

    pub(crate) fn seal_config_value(&self) -> Option<SealConfig> {
        self.seal_config()
    }

    pub fn is_initialized(&self) -> bool {
        self.seal_config().is_some()
    }

    /// The unsealed state, or `Sealed`.
    pub fn active(&self) -> CoreResult<Arc<Active>> {
        self.active
            .read()
            .ok()
            .and_then(|a| a.clone())
            .ok_or(CoreError::Sealed)
    }

    /// Sealed: no keyring. An HA standby is unsealed without an active state.
    pub fn is_sealed(&self) -> bool {
        self.active().is_err() && !self.is_standby()
    }

    /// The cluster identity: the active state's, or a standby's.
    fn cluster_info(&self, active: Option<&Arc<Active>>) -> Option<ClusterInfo> {
        active
            .map(|a| a.cluster.clone())
            .or_else(|| self.standby_cluster())
    }

    pub async fn seal_status(&self) -> SealStatus {
        let progress = self.transition.lock().await;
        self.status_with(&progress)
    }

    pub(crate) fn status_with(&self, progress: &UnsealProgress) -> SealStatus {
        let config = self.seal_config();
        let active = self.active().ok();
        let migration = self.migration_pending();
        // During a migration OpenBao reports the new seal's type, with the shares the
        // operators hold (those of the old seal, which the new one keeps) as t/n.
        let seal_type = match config {
            Some(c) if !migration => c.kind,
            _ => self.configured_seal_kind(),
        };
        // With an auto-unseal seal, operators hold recovery shares: those are what t/n count.
        let quorum = match self.migration_from() {
            Some(SealKind::Shamir) => config,
            Some(_) => self.recovery_config_value(),
            None if seal_type.is_auto() => self.recovery_config_value(),
            None => config,
        };
        let sealed = active.is_none() && !self.is_standby();
        SealStatus {
            migration,
            seal_type,
            recovery_seal: seal_type.is_auto(),
            seal_error: if sealed {
                self.seal_error.read().ok().and_then(|e| e.clone())
            } else {
                None
            },
            initialized: config.is_some(),
            sealed,
            threshold: quorum.map_or(0, |c| c.secret_threshold),
            shares: quorum.map_or(0, |c| c.secret_shares),
            progress: progress.progress(),
            nonce: progress.nonce().to_owned(),
            version: version::reported_version(),
            cluster: self.cluster_info(active.as_ref()),
            storage_type: self.storage_type(),
        }
    }

    pub fn health(&self) -> HealthStatus {
        let active = self.active().ok();
        HealthStatus {
            initialized: self.is_initialized(),
            sealed: active.is_none() && !self.is_standby(),
            // OpenBao reports a sealed node as standby: it cannot serve as the active node.
            standby: active.is_none(),
            server_time_utc: time::OffsetDateTime::now_utc().unix_timestamp(),
            version: version::reported_version(),
            cluster: self.cluster_info(active.as_ref()),
        }
    }

    /// `sys/init`: creates the keys, the keyring and the root token, then leaves the server
    /// sealed. The seal configuration is written last, so a crash part-way leaves a store that
    /// still reads as uninitialised and can be initialised again.
    ///
    /// With an auto-unseal seal the server then unseals itself, as OpenBao does; if that fails
    /// the keys are still returned (they are shown only once) and unsealing is retried in the
    /// background.
    pub async fn initialize(&self, request: &InitRequest) -> CoreResult<InitResult> {
        let result = self
            .initialize_with_root_token(request, None, false)
            .await?;
        if self.seal_config().is_some_and(|c| c.kind.is_auto()) {
            self.start_auto_unseal().await;
        }
        Ok(result)
    }

    /// As [`Core::initialize`], with a chosen root token id (for `--dev-root-token-id`).
    /// `dev`: the root token looks like OpenBao's dev root token (made by `auth/token/create`).
    pub async fn initialize_with_root_token(
        &self,
        request: &InitRequest,
        root_token_id: Option<&str>,
        dev: bool,
    ) -> CoreResult<InitResult> {
        let mut progress = self.transition.lock().await;
        // OpenBao checks the parameters before the state.
        let init = request.validate_for(self.configured_seal_kind())?;
        if self.is_initialized() {
            return Err(CoreError::AlreadyInitialized);
        }
        // HA: the store is shared; another node may have initialised it, or be doing so.
        let ha_locked = self.begin_ha_init().await?;
        let outcome = self
            .initialize_locked(&mut progress, init, root_token_id, dev)
            .await;
        self.end_ha_init(ha_locked).await;
        outcome
    }

    /// The body of [`Core::initialize_with_root_token`], with `transition` held (and, in HA
    /// mode, the HA lock).
    async fn initialize_locked(
        &self,
        progress: &mut UnsealProgress,
        init: seal::InitConfig,
        root_token_id: Option<&str>,
        dev: bool,
    ) -> CoreResult<InitResult> {
        let config = init.barrier;
        self.wipe_aborted_init().await?;

        let root_key = SecretBytes::new(random::bytes(seal::KEY_LEN));
        self.barrier.initialize(&root_key).await?;
        let keys = match self.options.seal.as_ref().filter(|_| config.kind.is_auto()) {
            Some(auto) => {
                let sealed = auto
                    .encrypt(&root_key, seal::SEALED_ROOT_KEY_PATH)
                    .await
                    .map_err(|e| CoreError::Seal(e.to_string()))?;
                self.barrier
                    .backend()
                    .put(seal::SEALED_ROOT_KEY_PATH, sealed)
                    .await?;
                Vec::new()
            }
            None => {
                let unseal_key = SecretBytes::new(random::bytes(seal::KEY_LEN));
                let keys = seal::split_unseal_key(&unseal_key, &config)?;
                let wrapped = seal::wrap_root_key(&unseal_key, &root_key)?;
                self.barrier
                    .backend()
                    .put(seal::ROOT_KEY_PATH, wrapped)
                    .await?;
                keys
            }
        };

        self.barrier.unseal(&root_key).await?;
        let setup = self.first_unseal_setup(root_token_id, dev).await;
        self.barrier.seal();
        let root_token = setup?;

        // The seal configuration goes last, in one transaction with the recovery records: a
        // crash before it leaves a store that reads as uninitialised.
        let (mut ops, recovery_keys) = match init.recovery {
            Some(recovery) => self.recovery_records(&recovery).await?,
            None => (Vec::new(), Vec::new()),
        };
        ops.push(tresor_storage::TxnOp::Put {
            key: seal::SEAL_CONFIG_PATH.to_owned(),
            value: serde_json::to_vec(&config)?,
        });
        failpoint("TRESOR_FAILPOINT_INIT_CRASH_BEFORE_SEAL_CONFIG");
        self.barrier.backend().transaction(ops).await?;
        if let Ok(mut c) = self.recovery_config.write() {
            *c = init.recovery;
        }
        if let Ok(mut c) = self.seal_config.write() {
            *c = Some(config);
        }
        progress.reset();
        tracing::info!(
            seal = config.kind.as_str(),
            shares = config.secret_shares,
            threshold = config.secret_threshold,
            recovery_shares = init.recovery.map(|r| r.secret_shares),
            "initialized"
        );
        Ok(InitResult {
            keys,
            recovery_keys,
            root_token,
        })
    }

    /// Creates what an initialised barrier holds from the start.
    async fn first_unseal_setup(
        &self,
        root_token_id: Option<&str>,
        dev: bool,
    ) -> CoreResult<SecretString> {
        let cluster = ClusterInfo {
            name: self
                .options
                .cluster_name
                .clone()
                .unwrap_or_else(|| format!("vault-cluster-{}", hex::encode(random::bytes(4)))),
            id: random::uuid(),
        };
        self.barrier
            .put(CLUSTER_INFO_PATH, &serde_json::to_vec(&cluster)?)
            .await?;
        PolicyStore::open(self.barrier.clone()).await?;
        MountTables::load(self.barrier.clone(), self.registry.clone()).await?;
        // Nothing expires during initialisation: this queue is dropped unread.
        let tokens = TokenStore::open(self.barrier.clone(), Arc::new(TimerQueue::new())).await?;
        if dev {
            create_root_token(&tokens, root_token_id, "auth/token/create", "token").await
        } else {
            create_root_token(&tokens, root_token_id, "auth/token/root", "root").await
        }
    }

    /// A crash during an earlier `sys/init` can leave keys without a seal configuration. They
    /// protect nothing (no one ever received the shares), so they are removed before starting over.
    async fn wipe_aborted_init(&self) -> CoreResult<()> {
        let backend = self.barrier.backend();
        let mut pending = vec![String::new()];
        let mut doomed = Vec::new();
        while let Some(prefix) = pending.pop() {
            for child in backend.list(&prefix).await? {
                let full = format!("{prefix}{child}");
                if full.ends_with('/') {
                    pending.push(full);
                } else {
                    doomed.push(tresor_storage::TxnOp::Delete { key: full });
                }
            }
        }
        if !doomed.is_empty() {
            tracing::warn!(
                entries = doomed.len(),
                "removing leftovers of an interrupted initialization"
            );
            backend.transaction(doomed).await?;
        }
        Ok(())
    }

    /// `sys/unseal` with one key share (already decoded from hex or base64).
    pub async fn unseal(&self, key: SecretBytes) -> CoreResult<SealStatus> {
        self.unseal_with(key, false).await
    }

    /// `sys/unseal`, with its `migrate` flag: required while a seal migration is pending,
    /// refused otherwise (OpenBao's words).
    pub async fn unseal_with(&self, key: SecretBytes, migrate: bool) -> CoreResult<SealStatus> {
        let mut progress = self.transition.lock().await;
        if self.ha.is_some() && self.seal_config().is_none() {
            // HA: another node may have initialised the shared store since this one started.
            self.reload_seal_configs().await?;
        }
        let Some(barrier_config) = self.seal_config() else {
            return Err(CoreError::NotInitialized);
        };
        if !self.is_sealed() {
            return Ok(self.status_with(&progress));
        }
        // Once the migration is done (a disabled stanza left in the configuration), OpenBao
        // still accepts `migrate`; unsealing then goes the ordinary way.
        if migrate && !self.in_migration_mode() {
            return Err(CoreError::InvalidRequest(
                "can't perform a seal migration, no migration seal found".to_owned(),
            ));
        }
        let migrating = self.migration_from();
        if !migrate && migrating.is_some() {
            return Err(CoreError::InvalidRequest(
                "migrate option not provided and seal migration is pending".to_owned(),
            ));
        }
        // The shares are the old seal's while migrating: unseal key shares leaving Shamir,
        // recovery shares leaving an auto seal.
        let (config, recovery_shares) = match migrating {
            Some(SealKind::Shamir) => (barrier_config, false),
            Some(_) => (
                self.recovery_config_value()
                    .ok_or(CoreError::NotInitialized)?,
                true,
            ),
            None => (
                self.quorum_config().ok_or(CoreError::NotInitialized)?,
                barrier_config.kind.is_auto(),
            ),
        };
        if recovery_shares && config.secret_threshold == 0 {
            return Err(CoreError::InvalidRequest(
                "this server has no recovery keys: it unseals through its seal only".to_owned(),
            ));
        }
        if key.len() < MIN_KEY_LEN {
            return Err(CoreError::InvalidRequest(format!(
                "invalid key: key is shorter than minimum {MIN_KEY_LEN} bytes"
            )));
        }
        if key.len() > MAX_KEY_LEN {
            return Err(CoreError::InvalidRequest(format!(
                "invalid key: key is longer than maximum {MAX_KEY_LEN} bytes"
            )));
        }
        progress.add(key);
        if progress.progress() < usize::from(config.secret_threshold) {
            return Ok(self.status_with(&progress));
        }
        let outcome = if migrating == Some(SealKind::Shamir) {
            self.migrate_to_auto(progress.shares(), &config).await
        } else if migrating.is_some() {
            self.migrate_from_auto(progress.shares(), &config).await
        } else if barrier_config.kind.is_auto() {
            self.unseal_with_recovery_shares(progress.shares(), &config)
                .await
        } else {
            self.try_unseal(progress.shares(), &config).await
        };
        // Whatever happened, this attempt is over: the shares are forgotten.
        progress.reset();
        outcome?;
        Ok(self.status_with(&progress))
    }

    async fn try_unseal(&self, shares: &[SecretBytes], config: &SealConfig) -> CoreResult<()> {
        let unseal_key = seal::combine_shares(shares, config)?;
        let wrapped = self
            .barrier
            .backend()
            .get(seal::ROOT_KEY_PATH)
            .await?
            .ok_or_else(|| CoreError::Internal("root key missing from storage".to_owned()))?;
        let root_key = seal::unwrap_root_key(&unseal_key, &wrapped)?;
        self.unseal_with_root_key(&root_key).await
    }

    /// Loads the keyring with the root key and starts the active state.
    pub(crate) async fn unseal_with_root_key(&self, root_key: &SecretBytes) -> CoreResult<()> {
        self.barrier.unseal(root_key).await.map_err(|e| match e {
            crate::barrier::BarrierError::InvalidRootKey => {
                CoreError::InvalidRequest("unable to retrieve stored keys: invalid key".to_owned())
            }
            other => other.into(),
        })?;
        let outcome = if self.ha.is_some() {
            // HA: a standby until the lock is taken; the active state loads then.
            self.enter_standby().await
        } else {
            self.activate().await.map(|_| tracing::info!("unsealed"))
        };
        if outcome.is_err() {
            self.barrier.seal();
        }
        outcome
    }

    /// Loads and installs the active state (unseal on a single node; take-over in HA mode).
    pub(crate) async fn activate(&self) -> CoreResult<Arc<Active>> {
        let active = self.load_active().await?;
        // The periodic ticker holds only a weak reference: sealing ends it.
        let active = crate::mount::periodic::started(Arc::new(active));
        if let Ok(mut slot) = self.active.write() {
            *slot = Some(active.clone());
        }
        // Leases load in the background: unseal returns without waiting for them.
        self.start_expiration(&active);
        Ok(active)
    }

    /// Removes the active state (HA step-down); the caller stops its tasks.
    pub(crate) fn take_active(&self) -> Option<Arc<Active>> {
        self.active.write().ok().and_then(|mut slot| slot.take())
    }

    /// Re-reads the seal and recovery configurations (HA take-over: another node may have
    /// rekeyed).
    pub(crate) async fn reload_seal_configs(&self) -> CoreResult<()> {
        let backend = self.barrier.backend().clone();
        let config = seal::read_config(backend.as_ref()).await?;
        let recovery = seal::read_recovery_config(backend.as_ref()).await?;
        if let Ok(mut c) = self.seal_config.write() {
            *c = config;
        }
        if let Ok(mut c) = self.recovery_config.write() {
            *c = recovery;
        }
        Ok(())
    }

    async fn load_active(&self) -> CoreResult<Active> {
        let raw =
            self.barrier.get(CLUSTER_INFO_PATH).await?.ok_or_else(|| {
                CoreError::Internal("cluster info missing from storage".to_owned())
            })?;
        let cluster: ClusterInfo = serde_json::from_slice(raw.expose())?;
        let queue = Arc::new(TimerQueue::new());
        let tokens = TokenStore::open(self.barrier.clone(), queue.clone()).await?;
        let policies = PolicyStore::open(self.barrier.clone()).await?;
        let mounts = MountTables::load(self.barrier.clone(), self.registry.clone()).await?;
        let expiration = Arc::new(ExpirationManager::new(queue, self.options.leases.clone()));
        let identity = crate::identity::IdentityStore::open(self.barrier.clone()).await?;
        let quotas = crate::quotas::QuotaStore::open(self.barrier.clone()).await?;
        let audit =
            crate::audit::AuditBroker::load(self.barrier.clone(), &self.options.audit_devices)
                .await?;
        Ok(Active {
            audit,
            tokens,
            policies,
            mounts,
            cluster,
            expiration,
            identity,
            quotas,
            password_policies: crate::password_policy::PasswordPolicyStore::new(
                self.barrier.clone(),
            ),
            wrapping: Mutex::new(()),
        })
    }

    /// `sys/unseal` with `reset: true`: forgets the shares submitted so far.
    pub async fn unseal_reset(&self) -> CoreResult<SealStatus> {
        let mut progress = self.transition.lock().await;
        if !self.is_sealed() && self.is_initialized() {
            return Err(CoreError::InvalidRequest("vault is unsealed".to_owned()));
        }
        progress.reset();
        Ok(self.status_with(&progress))
    }

    /// Seals the server: drops the active state and every key. Callers authorise first
    /// (`sys/seal` needs `sudo`).
    pub async fn seal_now(&self) {
        // Rekey attempts hold shares and a root key: they go too (lock order: rekeys first).
        let mut rekeys = self.rekeys.lock_all().await;
        rekeys.clear();
        let mut progress = self.transition.lock().await;
        let previous = self.active.write().ok().and_then(|mut slot| slot.take());
        // The expiration tasks stop before the keys go: nothing is revoked half-sealed.
        if let Some(active) = previous {
            active.expiration.stop();
        }
        // HA: an active node releases the lock so that a standby takes over now.
        self.leave_ha().await;
        self.barrier.seal();
        progress.reset();
        tracing::info!("sealed");
    }

    /// Installs a rekeyed unseal key: the root key wrapped under it and the new seal
    /// configuration are written in one storage transaction, so a crash leaves either the old
    /// pair or the new one. Called with the rekey attempts locked (lock order: rekeys, then
    /// transition).
    pub(crate) async fn install_unseal_key(
        &self,
        unseal_key: &SecretBytes,
        root_key: &SecretBytes,
        config: SealConfig,
    ) -> CoreResult<()> {
        let _transition = self.transition.lock().await;
        self.active()?;
        let wrapped = seal::wrap_root_key(unseal_key, root_key)?;
        let record = serde_json::to_vec(&config)?;
        crash_failpoint("BEFORE_COMMIT");
        self.barrier
            .backend()
            .transaction(vec![
                tresor_storage::TxnOp::Put {
                    key: seal::ROOT_KEY_PATH.to_owned(),
                    value: wrapped,
                },
                tresor_storage::TxnOp::Put {
                    key: seal::SEAL_CONFIG_PATH.to_owned(),
                    value: record,
                },
            ])
            .await?;
        crash_failpoint("AFTER_COMMIT");
        if let Ok(mut c) = self.seal_config.write() {
            *c = Some(config);
        }
        tracing::info!(
            shares = config.secret_shares,
            threshold = config.secret_threshold,
            "unseal key rekeyed"
        );
        Ok(())
    }

    /// A root key rotation on an auto-unseal seal (a quorum of recovery shares was checked):
    /// a new root key, the keyring re-encrypted under it and the new root key wrapped by the
    /// seal are written in one transaction (`Barrier::replace_root_key`), so a crash leaves
    /// the old pair or the new one. OpenBao writes them one after the other.
    pub(crate) async fn rotate_auto_root_key(&self) -> CoreResult<()> {
        let _transition = self.transition.lock().await;
        self.active()?;
        let new_root = SecretBytes::new(random::bytes(seal::KEY_LEN));
        let wrapped = self
            .seal_encrypt(&new_root, seal::SEALED_ROOT_KEY_PATH)
            .await?;
        crash_failpoint("BEFORE_COMMIT");
        self.barrier
            .replace_root_key(
                &new_root,
                vec![tresor_storage::TxnOp::Put {
                    key: seal::SEALED_ROOT_KEY_PATH.to_owned(),
                    value: wrapped,
                }],
            )
            .await?;
        crash_failpoint("AFTER_COMMIT");
        tracing::info!("root key rotated with recovery keys");
        Ok(())
    }

    /// `sys/rotate`: adds a keyring term used for every new write.
    pub async fn rotate(&self) -> CoreResult<KeyStatus> {
        let _guard = self.transition.lock().await;
        self.active()?;
        Ok(self.barrier.rotate().await?)
    }

    /// `sys/key-status`.
    pub fn key_status(&self) -> CoreResult<KeyStatus> {
        Ok(self.barrier.key_status()?)
    }

    /// Dev mode: initialise with one share, unseal, and return the share and root token.
    pub async fn dev_bootstrap(&self, root_token_id: Option<&str>) -> CoreResult<InitResult> {
        let request = InitRequest {
            secret_shares: 1,
            secret_threshold: 1,
            ..Default::default()
        };
        let result = self
            .initialize_with_root_token(&request, root_token_id, true)
            .await?;
        let key = result
            .keys
            .first()
            .cloned()
            .ok_or_else(|| CoreError::Internal("init returned no key".to_owned()))?;
        self.unseal(key).await?;
        let active = self.active()?;
        if self.registry.factory("kv").is_some() {
            let request = crate::mount::EnableRequest {
                engine_type: "kv-v2".to_owned(),
                description: "key/value secret storage".to_owned(),
                ..Default::default()
            };
            active
                .mounts
                .enable(MountKind::Secret, "secret", request)
                .await?;
        }
        Ok(result)
    }
}

/// Creates a root token: policy `root`, no TTL, an orphan.
pub(crate) async fn create_root_token(
    tokens: &TokenStore,
    id: Option<&str>,
    path: &str,
    display_name: &str,
) -> CoreResult<SecretString> {
    let token = match id {
        Some(id) if !id.is_empty() => SecretString::from(id),
        _ => TokenStore::new_token_id(),
    };
    let entry = TokenEntry {
        accessor: TokenStore::new_accessor(),
        policies: vec!["root".to_owned()],
        parent: None,
        path: path.to_owned(),
        meta: None,
        display_name: display_name.to_owned(),
        num_uses: 0,
        created_ns: now_ns(),
        creation_ttl: 0,
        explicit_max_ttl: 0,
        period: 0,
        renewable: false,
        expire_ns: None,
        last_renewal_ns: None,
        last_ttl: 0,
        role: None,
        entity_id: None,
        bound_cidrs: Vec::new(),
        login: None,
        batch: false,
    };
    tokens.insert(token.expose(), entry).await?;
    Ok(token)
}

/// Tests of crash safety (debug builds only): with `TRESOR_FAILPOINT_REKEY_CRASH_<point>` set,
/// the process aborts at that point of installing a rekeyed unseal key: `BEFORE_COMMIT` (new
/// key made, nothing written) or `AFTER_COMMIT` (written, not yet answered). Release builds
/// contain none of this.
fn crash_failpoint(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os(format!("TRESOR_FAILPOINT_REKEY_CRASH_{point}")).is_some() {
        tracing::error!(
            point,
            "failpoint: aborting while installing a rekeyed unseal key"
        );
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

/// As [`crash_failpoint`], for `sys/init`: with `TRESOR_FAILPOINT_INIT_CRASH_BEFORE_SEAL_CONFIG`
/// set, the process aborts after the keys and the barrier's first records are written and
/// before the final seal-configuration transaction (debug builds only).
fn failpoint(variable: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os(variable).is_some() {
        tracing::error!(variable, "failpoint: aborting during initialization");
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = variable;
}
