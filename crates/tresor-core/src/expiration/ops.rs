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
    ID_PREFIX, LeaseEntry, SecretLease, entry_path, token_index_path, token_of_lease_id,
    valid_lease_id,
};
use crate::barrier::BarrierOp;
use crate::core::{Active, Core};
use crate::error::{CoreError, CoreResult};
use crate::logical::LogicalResponse;
use crate::mount::{MountKind, Mounted};
use crate::random;
use crate::token::entry::{now_ns, rfc3339};

pub(super) const NANOS: i64 = 1_000_000_000;

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
/// Whose a secret lease is: revoking that token revokes the lease.
#[derive(Debug, Clone, Default)]
pub struct LeaseOwner {
    /// The token's id hash: the requester's, or a batch token's parent's (a batch token is not
    /// stored, so nothing would revoke leases indexed under it). `None` for an orphan batch
    /// token: the lease then ends by its TTL only, which is capped by the token's expiry.
    pub token: Option<String>,
    /// A batch token's expiry (unix ns): the lease cannot outlive it.
    pub expire_ns: Option<i64>,
}

impl LeaseOwner {
    /// The owner of the leases a request made with `resolved` creates.
    pub fn of(resolved: &crate::token::Resolved) -> Self {
        if resolved.entry.batch {
            Self {
                token: resolved.entry.parent.clone(),
                expire_ns: resolved.entry.expire_ns,
            }
        } else {
            Self {
                token: Some(resolved.id_hash.clone()),
                expire_ns: None,
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Registered {
    pub lease_id: String,
    pub ttl: u64,
    pub warnings: Vec<String>,
}

pub(super) fn secs_to_ns(secs: u64) -> i64 {
    i64::try_from(secs)
        .unwrap_or(i64::MAX / NANOS)
        .saturating_mul(NANOS)
}

/// OpenBao words a capped secret lease (on issue and on renewal) with Vault's
/// `humanDuration`: `TTL of "2h" exceeded the effective max_ttl of "1h"; …` (checked against
/// OpenBao 2.7.2's database engine).
fn capped_warning(wanted: u64, max: u64) -> String {
    use tresor_sdk::duration::format_human;
    crate::token::capped_warning("TTL", &format_human(wanted), &format_human(max))
}

pub(super) fn missing_lease_id() -> CoreError {
    CoreError::InvalidRequest("lease_id must be specified".to_owned())
}

pub(super) fn engine_lease(
    entry: &LeaseEntry,
    secret: &SecretLease,
    info: Arc<MountInfo>,
    ttl: u64,
) -> Lease {
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
    pub(super) async fn read_lease(&self, lease_id: &str) -> CoreResult<Option<LeaseEntry>> {
        if !valid_lease_id(lease_id) {
            return Ok(None);
        }
        match self.barrier().get(&entry_path(lease_id)).await? {
            Some(raw) => Ok(Some(serde_json::from_slice(raw.expose())?)),
            None => Ok(None),
        }
    }

    pub(super) fn mount_by_uuid(active: &Active, uuid: &str) -> Option<Arc<Mounted>> {
        active
            .mounts
            .table(MountKind::Secret)
            .all()
            .find(|m| m.entry.uuid == uuid)
            .cloned()
    }

    /// Registers the managed lease an engine returned for a request served at `relative` on
    /// `mounted`, owned by `owner` (see [`LeaseOwner`]). The TTL is capped by the lease's
    /// own maximum and the mount's (or the system's), and by the owner's expiry when the
    /// owner is a batch token (whose leases nothing else would end with it).
    pub(crate) async fn register_secret_lease(
        &self,
        active: &Active,
        mounted: &Mounted,
        relative: &str,
        owner: &LeaseOwner,
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
        let cap = match owner.expire_ns {
            Some(end) => {
                cap.min(u64::try_from((end - now_ns()).max(0) / 1_000_000_000).unwrap_or(0))
            }
            None => cap,
        };
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
            token: owner.token.clone().unwrap_or_default(),
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
        let mut ops = vec![BarrierOp::Put {
            path: entry_path(&lease_id),
            value: serde_json::to_vec(&record)?.into(),
        }];
        if let Some(token) = &owner.token {
            ops.push(BarrierOp::Put {
                path: token_index_path(token, &lease_id),
                value: SecretBytes::new(lease_id.clone().into_bytes()),
            });
        }
        // The engine's rollback record goes in the same commit: from now on the lease owns
        // the cleanup, and there is no moment where both or neither would undo the secret.
        if let Some(key) = &spec.rollback_key {
            ops.push(BarrierOp::Delete {
                path: mounted.view.path(key)?,
            });
        }
        self.barrier().transaction(ops).await?;
        active.expiration.queue.schedule(expire, &lease_id);
        Ok(Registered {
            lease_id,
            ttl,
            warnings,
        })
    }

    /// Undoes a secret whose lease could not be registered (best effort): the engine revokes it
    /// as if the lease had ended, and its rollback record is deleted once that worked. If the
    /// revocation fails too, the record stays and the engine's own rollback finds it later.
    pub(crate) async fn revoke_unregistered(
        &self,
        engine: &Arc<dyn tresor_sdk::engine::SecretEngine>,
        mounted: &Mounted,
        relative: &str,
        spec: &LeaseSpec,
    ) {
        let now = now_ns();
        let lease = Lease {
            id: String::new(),
            path: relative.trim_end_matches('/').to_owned(),
            internal: spec.internal.clone(),
            issue_time: now / NANOS,
            expire_time: Some(now / NANOS),
            ttl: Duration::ZERO,
            mount: mounted.info.clone(),
        };
        match engine.revoke_lease(&lease, mounted.view.as_ref()).await {
            Ok(()) => {
                if let Some(key) = &spec.rollback_key {
                    use tresor_sdk::storage::Storage as _;
                    if let Err(err) = mounted.view.delete(key).await {
                        tracing::warn!(mount = %mounted.entry.path, error = %err,
                            "could not delete the rollback record of an unregistered secret");
                    }
                }
            }
            Err(err) => {
                tracing::error!(mount = %mounted.entry.path, path = %relative, error = %err,
                    "a secret whose lease could not be registered could not be revoked either; \
                     the engine's rollback will retry");
            }
        }
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
            // A token's times live in its entry, the single source of them.
            let token = active.tokens.peek(hash).await?.ok_or_else(invalid)?;
            return Ok(lookup_data(
                lease_id,
                LeaseTimes {
                    issue_ns: token.created_ns,
                    expire_ns: token.expire_ns,
                    last_renewal_ns: token.last_renewal_ns,
                },
                Some(&token.path),
                token.renewable,
                now,
            ));
        }
        let mut data = lookup_data(
            lease_id,
            LeaseTimes {
                issue_ns: record.issue_ns,
                expire_ns: record.expire_ns,
                last_renewal_ns: record.last_renewal_ns,
            },
            record.secret.as_ref().map(|s| s.request_path.as_str()),
            record.renewable,
            now,
        );
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
        let wanted = match increment.filter(|i| *i > 0) {
            Some(i) => i,
            None => {
                let probe = engine_lease(&record, &secret, mounted.info.clone(), record.ttl_secs);
                match engine
                    .renewal_default_ttl(&probe, mounted.view.as_ref())
                    .await?
                {
                    Some(d) if d.is_zero() => mounted.info.default_lease_ttl.as_secs(),
                    Some(d) => d.as_secs(),
                    None => record.ttl_secs,
                }
            }
        };
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

/// When a lease was issued, expires and was last renewed (Unix nanoseconds).
struct LeaseTimes {
    issue_ns: i64,
    expire_ns: Option<i64>,
    last_renewal_ns: Option<i64>,
}

/// The fields `sys/leases/lookup` answers, whether a token entry or a lease record keeps them.
fn lookup_data(
    lease_id: &str,
    times: LeaseTimes,
    path: Option<&str>,
    renewable: bool,
    now: i64,
) -> LeaseLookup {
    let mut data = Map::new();
    data.insert("id".into(), json!(lease_id));
    data.insert("issue_time".into(), rfc3339(times.issue_ns));
    data.insert(
        "expire_time".into(),
        times.expire_ns.map_or(Value::Null, rfc3339),
    );
    data.insert(
        "last_renewal".into(),
        times.last_renewal_ns.map_or(Value::Null, rfc3339),
    );
    if let Some(path) = path {
        data.insert("path".into(), json!(path));
    }
    data.insert("renewable".into(), json!(renewable));
    let ttl = times.expire_ns.map_or(0, |e| (e - now).max(0) / NANOS);
    data.insert("ttl".into(), json!(ttl));
    data
}
