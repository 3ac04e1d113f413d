//! `tidy/secret-id` and the once-a-minute run of the same work: remove expired secret ids,
//! secret ids whose role is gone, accessor indexes that point nowhere, and spent markers older
//! than a day.
//!
//! OpenBao starts the work in the background and answers 202 at once; Tresor does the work
//! before answering (the storage view it is given lives only as long as the request), then
//! answers the same 202 and warning. One tidy runs at a time; a second one meanwhile gets
//! OpenBao's "already in progress" warning.

use std::sync::atomic::{AtomicBool, Ordering};

use tresor_sdk::engine::{EngineResult, Response};
use tresor_sdk::storage::Storage;

use super::AppRole;
use super::secret_id::{self, AccessorEntry, Entry, SPENT_KEEP_NS, Spent, SpentReason};
use super::store;

/// What one tidy removed (logged).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tidied {
    pub expired: usize,
    pub orphaned: usize,
    pub dangling_accessors: usize,
    pub old_spent_markers: usize,
}

/// Clears the running flag however the run ends.
struct Running<'a>(&'a AtomicBool);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

pub(super) async fn endpoint(m: &AppRole, storage: &dyn Storage) -> EngineResult<Option<Response>> {
    Ok(Some(match run(m, storage).await? {
        None => Response {
            warnings: vec!["Tidy operation already in progress.".into()],
            ..Response::default()
        },
        Some(_) => Response {
            status_override: Some(202),
            warnings: vec!["Tidy operation successfully started. Any information from the operation will be printed to OpenBao's server logs.".into()],
            ..Response::default()
        },
    }))
}

/// One tidy; `None` when another one is running.
pub(super) async fn run(m: &AppRole, storage: &dyn Storage) -> EngineResult<Option<Tidied>> {
    if m.tidying.swap(true, Ordering::SeqCst) {
        return Ok(None);
    }
    let _running = Running(&m.tidying);
    let hasher = m.hasher(storage).await?;
    let now = m.now();
    let roles = store::roles_by_uid(storage).await?;
    let mut done = Tidied::default();

    for dir in storage.list(store::SECRET_PREFIX).await? {
        let uid = dir.trim_end_matches('/');
        let live = roles.contains_key(uid);
        for hmac in storage
            .list(&format!("{}{dir}", store::SECRET_PREFIX))
            .await?
        {
            let key = secret_id::entry_key(uid, &hmac);
            let _guard = m.secret_locks.lock(&key).await;
            let Some(entry) = store::read::<Entry>(storage, &key).await? else {
                continue;
            };
            if !live {
                secret_id::remove(storage, hasher, uid, &hmac, &entry, None).await?;
                done.orphaned += 1;
            } else if entry.expired(now) {
                let spent = Spent {
                    reason: SpentReason::Expired,
                    at_ns: entry.expiration_ns,
                };
                secret_id::remove(storage, hasher, uid, &hmac, &entry, Some(spent)).await?;
                done.expired += 1;
            }
        }
    }

    for dir in storage.list(store::SPENT_PREFIX).await? {
        let uid = dir.trim_end_matches('/');
        let live = roles.contains_key(uid);
        for hmac in storage
            .list(&format!("{}{dir}", store::SPENT_PREFIX))
            .await?
        {
            let key = secret_id::spent_key(uid, &hmac);
            let old = match store::read::<Spent>(storage, &key).await? {
                Some(spent) => now.saturating_sub(spent.at_ns) > SPENT_KEEP_NS,
                None => false,
            };
            if !live || old {
                storage.delete(&key).await?;
                done.old_spent_markers += 1;
            }
        }
    }

    // Secret ids and their accessors are written and deleted together, so an accessor that
    // points nowhere means an interrupted older write; OpenBao sweeps these too.
    for accessor_hash in storage.list(store::ACCESSOR_PREFIX).await? {
        let key = format!("{}{accessor_hash}", store::ACCESSOR_PREFIX);
        let Some(index) = store::read::<AccessorEntry>(storage, &key).await? else {
            continue;
        };
        let entry_key = secret_id::entry_key(&index.role_uid, &index.secret_id_hmac);
        let _guard = m.secret_locks.lock(&entry_key).await;
        if storage.get(&entry_key).await?.is_none() {
            storage.delete(&key).await?;
            done.dangling_accessors += 1;
        }
    }

    if done != Tidied::default() {
        tracing::info!(
            expired = done.expired,
            orphaned = done.orphaned,
            dangling_accessors = done.dangling_accessors,
            old_spent_markers = done.old_spent_markers,
            "approle: tidied secret ids"
        );
    }
    Ok(Some(done))
}
