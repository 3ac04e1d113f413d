//! Revocation: one lease, by prefix, by token, on expiry (the timer's work), on mount
//! disable, and tidy. Work on one lease is serialised by the manager's striped lock and
//! re-reads the record under it, so a retry never writes back what another path deleted.

use super::entry::{
    ID_PREFIX, LeaseEntry, PendingRevocation, entry_path, token_index_folder, token_index_path,
    token_of_lease_id, valid_lease_id,
};
use super::ops::{RevokeOutcome, engine_lease, missing_lease_id};
use super::rate::backoff;
use crate::barrier::BarrierOp;
use crate::core::{Active, Core};
use crate::error::{CoreError, CoreResult};
use crate::mount::MountKind;
use crate::token::entry::now_ns;

impl Core {
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
        let mut ops = vec![BarrierOp::Delete {
            path: entry_path(&record.id),
        }];
        // An orphan batch token's lease has no owner, and so no index entry.
        if !record.token.is_empty() {
            ops.push(BarrierOp::Delete {
                path: token_index_path(&record.token, &record.id),
            });
        }
        self.barrier().transaction(ops).await?;
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

    /// The work of `sys/leases/tidy`, awaited: (stale records removed, orphaned leases queued).
    pub async fn tidy_leases_now(&self) -> CoreResult<(usize, usize)> {
        let active = self.active()?;
        self.tidy_leases(&active).await
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
            if record.revocation.is_none()
                && !record.token.is_empty()
                && active.tokens.peek(&record.token).await?.is_none()
            {
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
    /// (or an auth method's tokens) are revoked first; if one cannot be revoked the mount
    /// stays (and the lease is retried).
    pub async fn disable_mount(
        &self,
        kind: MountKind,
        path: &str,
    ) -> CoreResult<Option<crate::mount::MountEntry>> {
        let active = self.active()?;
        if let Ok(normalised) = crate::mount::normalise_mount_path(path)
            && let Some(mounted) = active.mounts.table(kind).get(&normalised)
        {
            match kind {
                MountKind::Secret => self.revoke_mount_leases(&normalised).await?,
                // Every token an auth method issued has its lease under `auth/<path>`: they
                // die with the method, as in Vault. The token store's own mount cannot be
                // disabled, so this never reaches `auth/token/`.
                MountKind::Auth if mounted.method.is_some() => {
                    self.revoke_mount_leases(&format!("auth/{normalised}"))
                        .await?;
                }
                MountKind::Auth => {}
            }
        }
        let disabled = active.mounts.disable(kind, path).await?;
        if let Some(entry) = &disabled {
            // As in Vault, a mount's quotas go with it.
            let api_path = match kind {
                MountKind::Secret => entry.path.clone(),
                MountKind::Auth => format!("auth/{}", entry.path),
            };
            active.quotas.mount_disabled(&api_path).await?;
        }
        Ok(disabled)
    }

    /// `sys/remount`. As in Vault, moving a secrets engine revokes its leases: their ids name
    /// the old path, so nothing could find them by prefix any more. The move happens first, so
    /// a refused move revokes nothing; the leases still reach their engine (they name it by
    /// uuid). A revocation that fails stays pending and is retried; the answer warns of it.
    pub async fn remount_mount(&self, from: &str, to: &str) -> CoreResult<(String, Vec<String>)> {
        let active = self.active()?;
        let id = active.mounts.remount(from, to).await?;
        let mut warnings = Vec::new();
        // The mount's rate-limit quotas follow it, as in OpenBao (`HandleRemount`).
        if let (Ok(old), Ok(new)) = (
            crate::mount::normalise_mount_path(from),
            crate::mount::normalise_mount_path(to),
        ) && let Err(err) = active.quotas.mount_moved(&old, &new).await
        {
            tracing::warn!(mount = %old, error = %err, "quotas of a moved mount not updated");
            warnings.push(format!(
                "the rate-limit quotas of {old} could not be moved to {new}: {err}"
            ));
        }
        if let Ok(old) = crate::mount::normalise_mount_path(from)
            && let Err(err) = self.revoke_mount_leases(&old).await
        {
            tracing::warn!(mount = %old, error = %err, "leases of a moved mount not all revoked yet");
            warnings.push(format!(
                "the leases issued under {old} are being revoked in the background: {err}"
            ));
        }
        Ok((id, warnings))
    }
}
