//! What the expiration manager does: register, look up, list, renew and revoke leases.
//!
//! Every operation reads the lease from storage: the in-memory queue only says *when* to look
//! at a lease, so a lease the background loader has not reached yet works like any other.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tresor_sdk::engine::{Lease, LeaseSpec, MountInfo};
use tresor_sdk::secret::SecretBytes;

use super::entry::{
    ID_PREFIX, LeaseEntry, PendingRevocation, SecretLease, entry_path, token_index_folder,
    token_index_path, token_of_lease_id, valid_lease_id,
};
use super::rate::backoff;
use crate::barrier::BarrierOp;
use crate::core::{Active, Core};
use crate::error::{CoreError, CoreResult};
use crate::logical::LogicalResponse;
use crate::mount::{MountKind, Mounted};
use crate::random;
use crate::token::entry::{now_ns, rfc3339};

const NANOS: i64 = 1_000_000_000;

/// What `sys/leases/lookup` shows.
pub type LeaseLookup = Map<String, Value>;

/// How a revocation request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// Done (or there was nothing to revoke).
    Revoked,
    /// Handed to the expiration manager (`sync: false`).
    Queued,
}

/// A lease registered for a response.
#[derive(Debug, Clone)]
pub struct Registered {
    pub lease_id: String,
    pub ttl: u64,
    pub warnings: Vec<String>,
}

fn secs_to_ns(secs: u64) -> i64 {
    i64::try_from(secs)
        .unwrap_or(i64::MAX / NANOS)
        .saturating_mul(NANOS)
}

/// Go's `time.Duration` string for whole seconds (`1h0m0s`, `5m0s`, `30s`), as Vault's
/// TTL warnings print it.
pub(crate) fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

fn capped_warning(wanted: u64, max: u64) -> String {
    format!(
        "TTL of {:?} exceeded the effective max_ttl of {:?}; TTL value is capped accordingly",
        go_duration(wanted),
        go_duration(max)
    )
}

fn missing_lease_id() -> CoreError {
    CoreError::InvalidRequest("lease_id must be specified".to_owned())
}

fn engine_lease(entry: &LeaseEntry, secret: &SecretLease, info: Arc<MountInfo>, ttl: u64) -> Lease {
    Lease {
        id: entry.id.clone(),
        path: secret.path.clone(),
        internal: secret.internal.clone(),
        issue_time: entry.issue_ns / NANOS,
        expire_time: entry.expire_ns.map(|e| e / NANOS),
        ttl: Duration::from_secs(ttl),
        mount: info,
    }
}

impl Core {
    async fn read_lease(&self, lease_id: &str) -> CoreResult<Option<LeaseEntry>> {
        if !valid_lease_id(lease_id) {
            return Ok(None);
        }
        match self.barrier().get(&entry_path(lease_id)).await? {
            Some(raw) => Ok(Some(serde_json::from_slice(raw.expose())?)),
            None => Ok(None),
        }
    }

    fn mount_by_uuid(active: &Active, uuid: &str) -> Option<Arc<Mounted>> {
        active
            .mounts
            .table(MountKind::Secret)
            .all()
            .find(|m| m.entry.uuid == uuid)
            .cloned()
    }

    /// Registers the managed lease an engine returned for a request served at `relative` on
    /// `mounted`, owned by the token `owner` (its id hash). The TTL is capped by the lease's
    /// own maximum and the mount's (or the system's).
    pub(crate) async fn register_secret_lease(
        &self,
        active: &Active,
        mounted: &Mounted,
        relative: &str,
        owner: &str,
        spec: &LeaseSpec,
    ) -> CoreResult<Registered> {
        let info = &mounted.info;
        let mount_max = info.max_lease_ttl.as_secs();
        let cap = if spec.max_ttl.is_zero() {
            mount_max
        } else {
            spec.max_ttl.as_secs().min(mount_max)
        };
        let wanted = if spec.ttl.is_zero() {
            info.default_lease_ttl.as_secs()
        } else {
            spec.ttl.as_secs()
        };
        let mut warnings = Vec::new();
        let ttl = if wanted > cap {
            warnings.push(capped_warning(wanted, cap));
            cap
        } else {
            wanted
        };
        let relative = relative.trim_end_matches('/');
        let request_path = format!("{}{relative}", mounted.entry.path);
        let lease_id = format!(
            "{}/{}",
            request_path.trim_end_matches('/'),
            random::base62(24)
        );
        let now = now_ns();
        let expire = now.saturating_add(secs_to_ns(ttl));
        let record = LeaseEntry {
            id: lease_id.clone(),
            token: owner.to_owned(),
            secret: Some(SecretLease {
                mount_uuid: mounted.entry.uuid.clone(),
                path: relative.to_owned(),
                request_path,
                internal: spec.internal.clone(),
            }),
            issue_ns: now,
            expire_ns: Some(expire),
            last_renewal_ns: None,
            ttl_secs: ttl,
            max_ttl_secs: spec.max_ttl.as_secs(),
            renewable: spec.renewable,
            revocation: None,
        };
        self.barrier()
            .transaction(vec![
                BarrierOp::Put {
                    path: entry_path(&lease_id),
                    value: serde_json::to_vec(&record)?.into(),
                },
                BarrierOp::Put {
                    path: token_index_path(owner, &lease_id),
                    value: SecretBytes::new(lease_id.clone().into_bytes()),
                },
            ])
            .await?;
        active.expiration.queue.schedule(expire, &lease_id);
        Ok(Registered {
            lease_id,
            ttl,
            warnings,
        })
    }

    /// `sys/leases/lookup`.
    pub async fn lease_lookup(&self, lease_id: &str) -> CoreResult<LeaseLookup> {
        let active = self.active()?;
        if lease_id.is_empty() {
            return Err(missing_lease_id());
        }
        if lease_id.split('/').any(|segment| segment == "..") {
            return Err(CoreError::InvalidRequest(format!(
                "failed to read lease entry {lease_id}: relative paths not supported"
            )));
        }
        let invalid = || CoreError::InvalidRequest("invalid lease".to_owned());
        let record = self.read_lease(lease_id).await?.ok_or_else(invalid)?;
        let now = now_ns();
        if let Some(hash) = token_of_lease_id(lease_id) {
            let token = active.tokens.peek(hash).await?.ok_or_else(invalid)?;
            let mut data = Map::new();
            data.insert("id".into(), json!(lease_id));
            data.insert("issue_time".into(), rfc3339(token.created_ns));
            data.insert(
                "expire_time".into(),
                token.expire_ns.map_or(Value::Null, rfc3339),
            );
            data.insert(
                "last_renewal".into(),
                token.last_renewal_ns.map_or(Value::Null, rfc3339),
            );
            data.insert("path".into(), json!(token.path));
            data.insert("renewable".into(), json!(token.renewable));
            data.insert("ttl".into(), json!(token.ttl_secs(now)));
            return Ok(data);
        }
        let mut data = Map::new();
        data.insert("id".into(), json!(lease_id));
        data.insert("issue_time".into(), rfc3339(record.issue_ns));
        data.insert(
            "expire_time".into(),
            record.expire_ns.map_or(Value::Null, rfc3339),
        );
        data.insert(
            "last_renewal".into(),
            record.last_renewal_ns.map_or(Value::Null, rfc3339),
        );
        if let Some(secret) = &record.secret {
            data.insert("path".into(), json!(secret.request_path));
        }
        data.insert("renewable".into(), json!(record.renewable));
        let ttl = record.expire_ns.map_or(0, |e| ((e - now).max(0)) / NANOS);
        data.insert("ttl".into(), json!(ttl));
        // Tresor's addition: a revocation that failed and is being retried stays visible.
        if let Some(pending) = &record.revocation {
            data.insert("revocation_pending".into(), json!(true));
            data.insert("revocation_attempts".into(), json!(pending.attempts));
            data.insert("revocation_error".into(), json!(pending.last_error));
        }
        Ok(data)
    }

    /// `LIST sys/leases/lookup/<prefix>`: the lease ids and folders directly under `prefix`
    /// (which ends in `/` or is empty). No keys: 404.
    pub async fn lease_list(&self, prefix: &str) -> CoreResult<Vec<String>> {
        self.active()?;
        let bare = prefix.trim_end_matches('/');
        if !bare.is_empty() && !valid_lease_id(bare) {
            return Err(CoreError::NotFound);
        }
        let folder = if bare.is_empty() {
            ID_PREFIX.to_owned()
        } else {
            format!("{ID_PREFIX}{bare}/")
        };
        let keys = self.barrier().list(&folder).await?;
        if keys.is_empty() {
            return Err(CoreError::NotFound);
        }
        Ok(keys)
    }

    /// `sys/leases/renew`: a new TTL of `increment` (default: the TTL last granted) from now,
    /// capped by the lease's maximum and the mount's, counted from issue time.
    pub async fn lease_renew(
        &self,
        lease_id: &str,
        increment: Option<u64>,
    ) -> CoreResult<LogicalResponse> {
        let active = self.active()?;
        if lease_id.is_empty() {
            return Err(missing_lease_id());
        }
        let not_found = || CoreError::InvalidRequest("lease not found".to_owned());
        let _guard = active.expiration.lock(lease_id).await;
        let mut record = self.read_lease(lease_id).await?.ok_or_else(not_found)?;
        if token_of_lease_id(lease_id).is_some() || record.secret.is_none() {
            return Err(CoreError::InvalidRequest(
                "tokens cannot be renewed through this endpoint".to_owned(),
            ));
        }
        if record.revocation.is_some() {
            return Err(CoreError::InvalidRequest(
                "lease is being revoked and cannot be renewed".to_owned(),
            ));
        }
        let now = now_ns();
        if record.expire_ns.is_some_and(|e| e <= now) {
            return Err(CoreError::InvalidRequest("lease expired".to_owned()));
        }
        if !record.renewable {
            return Err(CoreError::InvalidRequest(
                "lease is not renewable".to_owned(),
            ));
        }
        let Some(secret) = record.secret.clone() else {
            return Err(not_found());
        };
        let mounted = Self::mount_by_uuid(&active, &secret.mount_uuid).ok_or_else(not_found)?;
        let Some(engine) = mounted.engine.clone() else {
            return Err(not_found());
        };
        let mount_max = mounted.info.max_lease_ttl.as_secs();
        let cap = if record.max_ttl_secs > 0 {
            record.max_ttl_secs.min(mount_max)
        } else {
            mount_max
        };
        let elapsed = u64::try_from((now - record.issue_ns).max(0) / NANOS).unwrap_or(0);
        let remaining = cap.saturating_sub(elapsed);
        if remaining == 0 {
            return Err(CoreError::InvalidRequest(
                "past the max TTL, cannot renew".to_owned(),
            ));
        }
        let wanted = increment.filter(|i| *i > 0).unwrap_or(record.ttl_secs);
        let mut warnings = Vec::new();
        let mut ttl = wanted;
        if ttl > remaining {
            warnings.push(capped_warning(wanted, remaining));
            ttl = remaining;
        }
        let lease = engine_lease(&record, &secret, mounted.info.clone(), ttl);
        let renewal = engine.renew_lease(&lease, mounted.view.as_ref()).await?;
        if let Some(lower) = renewal.ttl {
            ttl = ttl.min(lower.as_secs());
        }
        if let (Some(internal), Some(s)) = (renewal.internal, record.secret.as_mut()) {
            s.internal = internal;
        }
        let old_expire = record.expire_ns;
        let expire = now.saturating_add(secs_to_ns(ttl));
        record.expire_ns = Some(expire);
        record.last_renewal_ns = Some(now);
        record.ttl_secs = ttl;
        self.barrier()
            .put(&entry_path(lease_id), &serde_json::to_vec(&record)?)
            .await?;
        active
            .expiration
            .queue
            .reschedule(old_expire, expire, lease_id);
        Ok(LogicalResponse {
            lease_id: lease_id.to_owned(),
            renewable: true,
            lease_duration: ttl,
            warnings,
            ..LogicalResponse::default()
        })
    }

    /// `sys/leases/revoke`. An unknown lease is a no-op, as in Vault. With `sync: false` the
    /// revocation is handed to the expiration manager (and so honours the pause switch).
    pub async fn lease_revoke(&self, lease_id: &str, sync: bool) -> CoreResult<RevokeOutcome> {
        let active = self.active()?;
        if lease_id.is_empty() {
            return Err(missing_lease_id());
        }
        // A token's revocation is internal and quick: done now even with `sync: false`
        // (answered 202 all the same), so it never waits on the pause switch.
        if !sync && token_of_lease_id(lease_id).is_some() {
            self.revoke_explicit(&active, lease_id, false)
                .await
                .map_err(CoreError::Internal)?;
            return Ok(RevokeOutcome::Queued);
        }
        if !sync {
            let _guard = active.expiration.lock(lease_id).await;
            if let Some(mut record) = self.read_lease(lease_id).await? {
                if token_of_lease_id(lease_id).is_none() && record.revocation.is_none() {
                    record.revocation = Some(PendingRevocation {
                        attempts: 0,
                        last_error: None,
                    });
                    self.barrier()
                        .put(&entry_path(lease_id), &serde_json::to_vec(&record)?)
                        .await?;
                }
                active.expiration.queue.schedule(now_ns(), lease_id);
            }
            return Ok(RevokeOutcome::Queued);
        }
        self.revoke_explicit(&active, lease_id, false)
            .await
            .map_err(|msg| {
                CoreError::InvalidRequest(format!(
                    "failed to revoke lease {lease_id}: {msg}; the revocation stays pending and is retried"
                ))
            })?;
        Ok(RevokeOutcome::Revoked)
    }

    /// `sys/leases/revoke-prefix/:prefix` and `revoke-force/:prefix`. A prefix that names one
    /// lease exactly revokes that lease; otherwise it is a folder (`/` is appended). `force`
    /// removes leases whose engine fails to revoke them (the engine's target may live on).
    pub async fn lease_revoke_prefix(&self, prefix: &str, force: bool) -> CoreResult<()> {
        let active = self.active()?;
        let bare = prefix.trim_end_matches('/');
        if bare.is_empty() {
            return Ok(());
        }
        if !valid_lease_id(bare) {
            return Ok(());
        }
        if !prefix.ends_with('/') && self.read_lease(bare).await?.is_some() {
            return self
                .revoke_explicit(&active, bare, force)
                .await
                .map_err(|msg| {
                    CoreError::InvalidRequest(format!("failed to revoke lease {bare}: {msg}"))
                });
        }
        let ids = self.lease_ids_under(&format!("{bare}/")).await?;
        let total = ids.len();
        let mut failed = 0usize;
        for id in ids {
            if self.revoke_explicit(&active, &id, force).await.is_err() {
                failed += 1;
            }
        }
        if failed > 0 {
            return Err(CoreError::InvalidRequest(format!(
                "failed to revoke {failed} of {total} leases under {bare:?}; they stay pending and are retried"
            )));
        }
        Ok(())
    }

    /// `revoke-prefix` with `sync: false`: checked now (503 when sealed), run in the background.
    pub fn lease_revoke_prefix_background(&self, prefix: &str, force: bool) -> CoreResult<()> {
        self.active()?;
        let weak = self.weak();
        let prefix = prefix.to_owned();
        drop(tokio::spawn(async move {
            let Some(core) = weak.upgrade() else {
                return;
            };
            if let Err(e) = core.lease_revoke_prefix(&prefix, force).await {
                tracing::warn!(prefix, error = %e, "background prefix revocation incomplete");
            }
        }));
        Ok(())
    }

    /// Every lease id under `prefix` (a folder ending in `/`), depth first.
    async fn lease_ids_under(&self, prefix: &str) -> CoreResult<Vec<String>> {
        let mut out = Vec::new();
        let mut pending = vec![prefix.to_owned()];
        while let Some(folder) = pending.pop() {
            for child in self.barrier().list(&format!("{ID_PREFIX}{folder}")).await? {
                let full = format!("{folder}{child}");
                if full.ends_with('/') {
                    pending.push(full);
                } else {
                    out.push(full);
                }
            }
        }
        Ok(out)
    }

    /// Revokes one lease now because someone asked (API, prefix, mount disable). Token leases
    /// revoke their token (and its children). `Err` carries the engine's message.
    async fn revoke_explicit(
        &self,
        active: &Active,
        lease_id: &str,
        force: bool,
    ) -> Result<(), String> {
        if let Some(hash) = token_of_lease_id(lease_id) {
            self.revoke(active, hash).await.map_err(|e| e.to_string())?;
            self.barrier()
                .delete(&entry_path(lease_id))
                .await
                .map_err(|e| e.to_string())?;
            return Ok(());
        }
        let _guard = active.expiration.lock(lease_id).await;
        self.revoke_secret_locked(active, lease_id, force, false)
            .await
    }

    /// Deletes a secret lease's records and queue entry.
    async fn forget_lease(&self, active: &Active, record: &LeaseEntry) -> CoreResult<()> {
        self.barrier()
            .transaction(vec![
                BarrierOp::Delete {
                    path: entry_path(&record.id),
                },
                BarrierOp::Delete {
                    path: token_index_path(&record.token, &record.id),
                },
            ])
            .await?;
        if let Some(e) = record.expire_ns {
            active.expiration.queue.remove(e, &record.id);
        }
        Ok(())
    }

    /// Asks the engine to revoke a secret lease. Success (or a mount that no longer exists:
    /// nothing left to revoke) deletes the lease. Failure marks it pending in storage, logs,
    /// counts, and queues a retry with backoff; the message is returned.
    pub(crate) async fn revoke_secret(
        &self,
        active: &Active,
        lease_id: &str,
    ) -> Result<(), String> {
        let _guard = active.expiration.lock(lease_id).await;
        self.revoke_secret_locked(active, lease_id, false, false)
            .await
    }

    /// [`Core::revoke_secret`] with the lease's lock held; `force` removes the lease even when
    /// its engine fails; `expiring` (the timer) revokes only a lease that is due, and puts one
    /// renewed meanwhile back in the queue.
    async fn revoke_secret_locked(
        &self,
        active: &Active,
        lease_id: &str,
        force: bool,
        expiring: bool,
    ) -> Result<(), String> {
        // Re-read under the lock: another revocation or a renewal may have happened meanwhile.
        let mut record = match self.read_lease(lease_id).await {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        };
        if expiring && record.revocation.is_none() {
            match record.expire_ns {
                None => return Ok(()),
                Some(e) if e > now_ns() => {
                    active.expiration.queue.schedule(e, lease_id);
                    return Ok(());
                }
                Some(_) => {}
            }
        }
        let Some(secret) = record.secret.clone() else {
            return Ok(());
        };
        let result = match Self::mount_by_uuid(active, &secret.mount_uuid) {
            Some(mounted) => match &mounted.engine {
                Some(engine) => {
                    let ttl = record.ttl_secs;
                    let lease = engine_lease(&record, &secret, mounted.info.clone(), ttl);
                    engine
                        .revoke_lease(&lease, mounted.view.as_ref())
                        .await
                        .map_err(|e| e.to_string())
                }
                None => Ok(()),
            },
            None => Ok(()),
        };
        match result {
            Ok(()) => {
                self.forget_lease(active, &record)
                    .await
                    .map_err(|e| e.to_string())?;
                active.expiration.pending_resolved(lease_id);
                active.expiration.count_revoked();
                Ok(())
            }
            Err(msg) if force => {
                tracing::warn!(
                    lease_id,
                    error = %msg,
                    "revoke-force: lease removed although its engine could not revoke it"
                );
                self.forget_lease(active, &record)
                    .await
                    .map_err(|e| e.to_string())?;
                active.expiration.pending_resolved(lease_id);
                Ok(())
            }
            Err(msg) => {
                let attempts = record.revocation.as_ref().map_or(0, |p| p.attempts) + 1;
                record.revocation = Some(PendingRevocation {
                    attempts,
                    last_error: Some(msg.clone()),
                });
                if let Ok(bytes) = serde_json::to_vec(&record)
                    && let Err(e) = self.barrier().put(&entry_path(&record.id), &bytes).await
                {
                    tracing::error!(lease_id = %record.id, error = %e, "could not record a failed revocation");
                }
                let options = &active.expiration.options;
                let delay = backoff(attempts, options.retry_base, options.retry_max);
                active.expiration.count_failure(Some(lease_id));
                let retry_at = now_ns()
                    .saturating_add(i64::try_from(delay.as_nanos()).unwrap_or(i64::MAX / 2));
                active.expiration.queue.schedule(retry_at, &record.id);
                tracing::warn!(
                    lease_id = %record.id,
                    attempts,
                    retry_in_ms = delay.as_millis() as u64,
                    error = %msg,
                    "lease revocation failed; it stays pending and will be retried"
                );
                Err(msg)
            }
        }
    }

    /// Revokes the secret leases a (just revoked) token owned. A lease whose engine fails stays
    /// pending and is retried: it never silently outlives its token.
    pub(crate) async fn revoke_token_leases(
        &self,
        active: &Active,
        id_hash: &str,
    ) -> CoreResult<()> {
        let folder = token_index_folder(id_hash);
        for key in self.barrier().list(&folder).await? {
            let path = format!("{folder}{key}");
            let Some(raw) = self.barrier().get(&path).await? else {
                continue;
            };
            let lease_id = String::from_utf8_lossy(raw.expose()).into_owned();
            match self.read_lease(&lease_id).await? {
                Some(_) => {
                    // A failure is recorded, logged and retried inside.
                    let _ = self.revoke_secret(active, &lease_id).await;
                }
                None => self.barrier().delete(&path).await?,
            }
        }
        Ok(())
    }

    /// The timer's work on one due lease: revoke it if it really is expired (or pending),
    /// otherwise put it back at its current expiry.
    pub(crate) async fn expire_lease(&self, active: &Active, lease_id: &str) {
        let now = now_ns();
        if let Some(hash) = token_of_lease_id(lease_id) {
            match active.tokens.peek(hash).await {
                Ok(None) => {
                    let _ = self.barrier().delete(&entry_path(lease_id)).await;
                }
                Ok(Some(token)) => match token.expire_ns {
                    Some(e) if e > now => active.expiration.queue.schedule(e, lease_id),
                    None => {}
                    Some(_) => match self.revoke(active, hash).await {
                        Ok(()) => {
                            let _ = self.barrier().delete(&entry_path(lease_id)).await;
                            active.expiration.count_revoked();
                            tracing::debug!(lease_id, "expired token revoked");
                        }
                        Err(e) => self.retry_later(active, lease_id, &e.to_string()),
                    },
                },
                Err(e) => self.retry_later(active, lease_id, &e.to_string()),
            }
            return;
        }
        let _guard = active.expiration.lock(lease_id).await;
        // Failures are recorded, logged and rescheduled inside.
        let _ = self
            .revoke_secret_locked(active, lease_id, false, true)
            .await;
    }

    /// A storage failure while expiring: try again later, never drop.
    fn retry_later(&self, active: &Active, lease_id: &str, error: &str) {
        let delay = active.expiration.options.retry_base.saturating_mul(4);
        let at = now_ns().saturating_add(i64::try_from(delay.as_nanos()).unwrap_or(i64::MAX / 2));
        active.expiration.count_failure(None);
        active.expiration.queue.schedule(at, lease_id);
        tracing::warn!(lease_id, error, "could not expire lease; retrying");
    }

    /// `sys/leases/tidy`: in the background, removes lease records whose token is gone and
    /// queues the revocation of secret leases whose owner token no longer exists.
    pub fn lease_tidy(&self) -> CoreResult<()> {
        let active = self.active()?;
        let weak = self.weak();
        let handle = tokio::spawn(async move {
            let Some(core) = weak.upgrade() else {
                return;
            };
            match core.tidy_leases(&active).await {
                Ok((removed, orphaned)) => tracing::info!(
                    stale_records_removed = removed,
                    orphaned_leases_queued = orphaned,
                    "lease tidy finished"
                ),
                Err(e) => tracing::warn!(error = %e, "lease tidy failed"),
            }
        });
        drop(handle);
        Ok(())
    }

    async fn tidy_leases(&self, active: &Active) -> CoreResult<(usize, usize)> {
        let (mut removed, mut orphaned) = (0, 0);
        for id in self.lease_ids_under("").await? {
            if active.expiration.is_stopped() {
                break;
            }
            if let Some(hash) = token_of_lease_id(&id) {
                if active.tokens.peek(hash).await?.is_none() {
                    self.barrier().delete(&entry_path(&id)).await?;
                    removed += 1;
                }
                continue;
            }
            let _guard = active.expiration.lock(&id).await;
            let Some(mut record) = self.read_lease(&id).await? else {
                continue;
            };
            if record.revocation.is_none() && active.tokens.peek(&record.token).await?.is_none() {
                record.revocation = Some(PendingRevocation {
                    attempts: 0,
                    last_error: None,
                });
                self.barrier()
                    .put(&entry_path(&id), &serde_json::to_vec(&record)?)
                    .await?;
                active.expiration.queue.schedule(now_ns(), &id);
                orphaned += 1;
            }
        }
        Ok((removed, orphaned))
    }

    /// Revokes every lease issued under a secrets mount (before the mount is disabled).
    pub async fn revoke_mount_leases(&self, mount_path: &str) -> CoreResult<()> {
        let prefix = format!("{}/", mount_path.trim_matches('/'));
        self.lease_revoke_prefix(&prefix, false).await
    }

    /// `sys/mounts/:path` (or `sys/auth/:path`) DELETE. As in Vault, a secrets mount's leases
    /// are revoked first; if one cannot be revoked the mount stays (and the lease is retried).
    pub async fn disable_mount(
        &self,
        kind: MountKind,
        path: &str,
    ) -> CoreResult<Option<crate::mount::MountEntry>> {
        let active = self.active()?;
        if kind == MountKind::Secret
            && let Ok(normalised) = crate::mount::normalise_mount_path(path)
            && active.mounts.table(kind).get(&normalised).is_some()
        {
            self.revoke_mount_leases(&normalised).await?;
        }
        active.mounts.disable(kind, path).await
    }

    /// The expiration manager's counters; `None` while sealed.
    pub fn lease_stats(&self) -> Option<super::LeaseStats> {
        self.active().ok().map(|a| a.expiration.stats())
    }

    /// Pauses or resumes automatic lease revocation at run time (the config key and env var
    /// set it at start).
    pub fn set_lease_revocation_paused(&self, paused: bool) -> CoreResult<()> {
        self.active()?.expiration.set_paused(paused);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_matches_go_formatting() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(45), "45s");
        assert_eq!(go_duration(300), "5m0s");
        assert_eq!(go_duration(3600), "1h0m0s");
        assert_eq!(go_duration(5430), "1h30m30s");
    }
}
