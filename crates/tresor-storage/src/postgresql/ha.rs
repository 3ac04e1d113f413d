//! The HA lock: a row in `ha_table` with an expiry on PostgreSQL's clock, renewed by its
//! holder, and a fence that makes every write of the holder check that row.
//!
//! Why a row with a TTL rather than a session-level advisory lock (`pg_advisory_lock` on a
//! dedicated connection):
//! - An advisory lock lives as long as PostgreSQL believes its session does. After a network
//!   partition or a frozen (SIGSTOP, swapped-out) holder, PostgreSQL only drops the session
//!   when TCP keepalives give up, by default after hours: no fail-over in the meantime. A row
//!   expires after [`LOCK_TTL`] whatever happened to its holder.
//! - An advisory lock is released the instant its session dies (`pg_terminate_backend`), but
//!   the holder's writes travel on other pooled connections and learn nothing of it: for a
//!   while two nodes would both believe they are active. A row can be checked (and
//!   share-locked) inside each write transaction, which an advisory lock held by another
//!   session cannot.
//! - Both survive a PostgreSQL restart the same way: the holder's renewal fails and it steps
//!   down; a row keeps its expiry across the restart, so the old holder's identity is simply
//!   no longer renewed and the row lapses.
//!
//! The fence: while this node holds the lock, every write is one block
//! `BEGIN; <fence>; <writes>; COMMIT`, where the fence reads the lock row `FOR KEY SHARE` and
//! divides by zero unless the row names this holder and has not expired. So a write commits
//! only while its holder's lock is valid, and a node taking the lock over (a `DELETE` of the
//! expired row, which conflicts with `KEY SHARE`) waits until the write has committed or
//! rolled back: a write is never interleaved with the take-over. The holder's renewal is an
//! `UPDATE` that changes no key column, so it does not wait for its own writes.
//!
//! Timing ([`LOCK_TTL`], [`RENEW_INTERVAL`], [`RETRY_INTERVAL`]): the holder renews every
//! second; a lock not renewed lapses 3 s after its last renewal; standbys try every half
//! second. A killed active node is therefore replaced about 3.5 s after its last renewal, at
//! most; OpenBao uses 15 s, 5 s and 1 s. The holder gives up by itself (its backend refuses
//! its writes, its core steps down) as soon as a renewal fails, finds the row gone, or cannot
//! finish before the lock would lapse, or when its lock connection ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_postgres::Client;

use super::connection::describe;
use super::pool::Pool;
use super::schema::{TableName, ensure_with};
use crate::StorageError;
use crate::ha::{HaLock, HaNode, NodeAdvert};

/// The HA table when the config names none.
pub const DEFAULT_HA_TABLE: &str = "tresor_ha_locks";
/// How long a lock lives after its last renewal.
pub const LOCK_TTL: Duration = Duration::from_secs(3);
/// How often the holder renews.
pub const RENEW_INTERVAL: Duration = Duration::from_secs(1);
/// How often a standby tries to take the lock.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(500);
/// How long a node's presence record lives after its last announcement.
const NODE_TTL: Duration = Duration::from_secs(10);
/// The renewal must have finished this long before the lock would lapse: PostgreSQL computes
/// the expiry when it runs the statement, a little after it was sent.
const SAFETY_MARGIN: Duration = Duration::from_millis(300);
/// The lock row's key (Vault's name for it).
pub(super) const LOCK_KEY: &str = "core/lock";
/// Presence records: `node/<node id>`.
const NODE_PREFIX: &str = "node/";

/// The lock table's definition: Vault's `vault_ha_locks` columns.
pub fn create_ha_table(table: &TableName) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (\n  \
           ha_key      TEXT COLLATE \"C\" NOT NULL,\n  \
           ha_identity TEXT COLLATE \"C\" NOT NULL,\n  \
           ha_value    TEXT COLLATE \"C\",\n  \
           valid_until TIMESTAMP WITH TIME ZONE NOT NULL,\n  \
           PRIMARY KEY (ha_key)\n\
         )"
    )
}

/// The fence statement: `$1` the lock key, `$2` the holder's identity. `count(*)` is 0 when
/// the row is not this holder's or has lapsed, and `1 / 0` is SQLSTATE 22012.
pub(super) fn fence_sql(ha_table: &TableName) -> String {
    format!(
        "SELECT 1 / count(*) FROM (SELECT 1 FROM {ha_table} \
         WHERE ha_key = $1 AND ha_identity = $2 AND valid_until > now() FOR KEY SHARE) AS held"
    )
}

/// Whether a write error is the fence refusing it.
pub(super) fn is_fence_refusal(err: &tokio_postgres::Error) -> bool {
    err.as_db_error()
        .is_some_and(|db| db.code().code() == "22012")
}

/// Where the backend's writes stand, shared by the backend and its lock.
#[derive(Debug)]
pub(super) struct Fence {
    mode: RwLock<Mode>,
    held: watch::Sender<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Mode {
    /// Sealed: writes go unfenced (`sys/init`, unseal-time writes), as in Vault.
    Open,
    /// An unsealed standby: every write is refused.
    Standby,
    /// This node holds the lock under this identity: writes are fenced by it.
    Held(Arc<str>),
}

impl Fence {
    fn new() -> Self {
        Self {
            mode: RwLock::new(Mode::Open),
            held: watch::Sender::new(false),
        }
    }

    pub(super) fn mode(&self) -> Mode {
        self.mode.read().map_or(Mode::Standby, |m| m.clone())
    }

    fn set(&self, mode: Mode) {
        let held = matches!(mode, Mode::Held(_));
        if let Ok(mut m) = self.mode.write() {
            *m = mode;
        }
        self.held.send_replace(held);
    }

    /// The lock held as `identity` is gone: refuse writes from now on and tell the core.
    /// A late report about an earlier tenure changes nothing.
    pub(super) fn lose(&self, identity: &str, why: &str) {
        let lost = match self.mode.write() {
            Ok(mut m) if matches!(&*m, Mode::Held(id) if &**id == identity) => {
                *m = Mode::Standby;
                true
            }
            _ => false,
        };
        if lost {
            tracing::warn!(reason = why, "lost the HA lock: this node stops writing");
            self.held.send_replace(false);
        }
    }
}

pub(super) fn new_fence() -> Arc<Fence> {
    Arc::new(Fence::new())
}

/// The lock's own session: a dedicated connection, separate from the pool so that a busy
/// pool never delays a renewal.
struct Session {
    client: Client,
    /// Turns `true` when the connection ends.
    ended: watch::Receiver<bool>,
}

/// The `postgresql` backend's [`HaLock`].
pub struct PostgresqlHa {
    pool: Arc<Pool>,
    table: TableName,
    advert: NodeAdvert,
    advert_json: String,
    fence: Arc<Fence>,
    session: tokio::sync::Mutex<Option<Session>>,
    heartbeat: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// `release` could not delete this node's row (PostgreSQL unreachable, typically the
    /// very failure that lost the lock): the next call that reaches PostgreSQL deletes it,
    /// so that after a PostgreSQL restart the other nodes need not wait for it to lapse.
    stale_row: AtomicBool,
    self_ref: std::sync::Weak<PostgresqlHa>,
}

impl std::fmt::Debug for PostgresqlHa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresqlHa")
            .field("table", &self.table)
            .field("advert", &self.advert)
            .finish_non_exhaustive()
    }
}

impl PostgresqlHa {
    pub(super) async fn open(
        pool: Arc<Pool>,
        table: TableName,
        advert: NodeAdvert,
        fence: Arc<Fence>,
        client: &Client,
    ) -> Result<Arc<Self>, String> {
        ensure_with(client, &table, &create_ha_table(&table))
            .await
            .map_err(|e| format!("creating table {table}: {}", describe(&e)))?;
        let advert_json =
            serde_json::to_string(&advert).map_err(|e| format!("encoding the node: {e}"))?;
        Ok(Arc::new_cyclic(|weak| Self {
            pool,
            table,
            advert,
            advert_json,
            fence,
            session: tokio::sync::Mutex::new(None),
            heartbeat: Mutex::new(None),
            stale_row: AtomicBool::new(false),
            self_ref: weak.clone(),
        }))
    }

    fn error(&self, what: &str, err: &tokio_postgres::Error) -> StorageError {
        StorageError::Io(format!(
            "HA lock ({what}) on PostgreSQL {}: {}",
            self.pool.target(),
            describe(err)
        ))
    }

    /// Runs `op` on the lock's session, opening one if there is none or it died.
    async fn with_session<T, F>(&self, what: &str, op: F) -> Result<T, StorageError>
    where
        F: AsyncFnOnce(&Client) -> Result<T, tokio_postgres::Error>,
    {
        let mut slot = self.session.lock().await;
        if slot.as_ref().is_none_or(|s| s.client.is_closed()) {
            let (client, ended) = self.pool.connect_watched().await.map_err(|reason| {
                StorageError::Io(format!(
                    "HA lock ({what}): cannot connect to PostgreSQL {}: {reason}",
                    self.pool.target()
                ))
            })?;
            *slot = Some(Session { client, ended });
        }
        let Some(session) = slot.as_ref() else {
            return Err(StorageError::Closed);
        };
        let outcome = tokio::time::timeout(LOCK_TTL, op(&session.client)).await;
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => {
                if session.client.is_closed() {
                    *slot = None;
                }
                Err(self.error(what, &err))
            }
            Err(_) => {
                // A session that does not answer is dropped: the next call opens another.
                *slot = None;
                Err(StorageError::Io(format!(
                    "HA lock ({what}): PostgreSQL {} did not answer within {}s",
                    self.pool.target(),
                    LOCK_TTL.as_secs()
                )))
            }
        }
    }

    fn millis(d: Duration) -> i64 {
        i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
    }

    /// Keeps the lock held as `identity` alive until it is lost or released.
    async fn heartbeat(
        weak: std::sync::Weak<Self>,
        identity: Arc<str>,
        mut ended: watch::Receiver<bool>,
        mut lapses_at: Instant,
    ) {
        loop {
            let next = Instant::now() + RENEW_INTERVAL;
            tokio::select! {
                _ = ended.wait_for(|e| *e) => {
                    if let Some(ha) = weak.upgrade() {
                        ha.fence.lose(&identity, "the lock's PostgreSQL connection ended");
                    }
                    return;
                }
                () = tokio::time::sleep_until(next) => {}
            }
            let Some(ha) = weak.upgrade() else { return };
            if !matches!(ha.fence.mode(), Mode::Held(id) if id == identity) {
                return;
            }
            let sent = Instant::now();
            let deadline = lapses_at.checked_sub(SAFETY_MARGIN).unwrap_or(sent);
            let table = &ha.table;
            let id = identity.clone();
            let renewal = ha.with_session("renew", async move |c: &Client| {
                c.execute(
                    &format!(
                        "UPDATE {table} SET valid_until = now() + $3::bigint * interval '1 millisecond' \
                         WHERE ha_key = $1 AND ha_identity = $2 AND valid_until > now()"
                    ),
                    &[&LOCK_KEY, &&*id, &Self::millis(LOCK_TTL)],
                )
                .await
            });
            match tokio::time::timeout_at(deadline, renewal).await {
                Ok(Ok(1)) => lapses_at = sent + LOCK_TTL,
                Ok(Ok(_)) => {
                    ha.fence.lose(&identity, "the lock row was taken or lapsed");
                    return;
                }
                Ok(Err(err)) => {
                    ha.fence.lose(&identity, &err.to_string());
                    return;
                }
                Err(_) => {
                    ha.fence
                        .lose(&identity, "no renewal before the lock would lapse");
                    return;
                }
            }
        }
    }

    /// Deletes every lock row of this node's tenures (its node id, any suffix).
    async fn delete_own_rows(&self, what: &str) -> Result<u64, StorageError> {
        let table = &self.table;
        let node = format!("{}/%", self.advert.node_id);
        self.with_session(what, async move |c: &Client| {
            c.execute(
                &format!("DELETE FROM {table} WHERE ha_key = $1 AND ha_identity LIKE $2"),
                &[&LOCK_KEY, &node],
            )
            .await
        })
        .await
    }

    /// The row a failed `release` left, deleted now if PostgreSQL answers. Never while this
    /// node holds the lock: the row would be its current one.
    async fn clear_stale_row(&self) {
        if !self.stale_row.load(Ordering::Acquire) || matches!(self.fence.mode(), Mode::Held(_)) {
            return;
        }
        if let Ok(n) = self.delete_own_rows("release").await {
            self.stale_row.store(false, Ordering::Release);
            if n > 0 {
                tracing::info!("released the HA lock lost while PostgreSQL was unreachable");
            }
        }
    }

    fn stop_heartbeat(&self) {
        if let Ok(mut slot) = self.heartbeat.lock()
            && let Some(task) = slot.take()
        {
            task.abort();
        }
    }
}

#[async_trait]
impl HaLock for PostgresqlHa {
    fn advert(&self) -> &NodeAdvert {
        &self.advert
    }

    async fn try_acquire(&self) -> Result<bool, StorageError> {
        if matches!(self.fence.mode(), Mode::Held(_)) {
            return Ok(true);
        }
        self.clear_stale_row().await;
        // A fresh identity per tenure: a write still in flight from an earlier tenure of this
        // same node fails its fence too.
        let identity: Arc<str> = format!(
            "{}/{:016x}",
            self.advert.node_id,
            u64::from_le_bytes(random_bytes())
        )
        .into();
        let table = &self.table;
        let sent = Instant::now();
        let (id, value) = (identity.clone(), self.advert_json.as_str());
        let taken = self
            .with_session("acquire", async move |c: &Client| {
                // A lapsed lock is deleted first. DELETE waits for the writes that still hold
                // the row `KEY SHARE` (the old holder's fenced writes) and re-checks the expiry
                // after them.
                c.execute(
                    &format!("DELETE FROM {table} WHERE ha_key = $1 AND valid_until < now()"),
                    &[&LOCK_KEY],
                )
                .await?;
                c.execute(
                    &format!(
                        "INSERT INTO {table} (ha_key, ha_identity, ha_value, valid_until) \
                         VALUES ($1, $2, $3, now() + $4::bigint * interval '1 millisecond') \
                         ON CONFLICT (ha_key) DO NOTHING"
                    ),
                    &[&LOCK_KEY, &&*id, &value, &Self::millis(LOCK_TTL)],
                )
                .await
            })
            .await?;
        if taken != 1 {
            return Ok(false);
        }
        // The session the heartbeat watches is the one that took the lock.
        let Some(ended) = self.session.lock().await.as_ref().map(|s| s.ended.clone()) else {
            return Ok(false);
        };
        self.stop_heartbeat();
        self.fence.set(Mode::Held(identity.clone()));
        let task = tokio::spawn(Self::heartbeat(
            self.self_ref.clone(),
            identity,
            ended,
            sent + LOCK_TTL,
        ));
        if let Ok(mut slot) = self.heartbeat.lock() {
            *slot = Some(task);
        }
        tracing::info!("acquired the HA lock");
        Ok(true)
    }

    fn watch_held(&self) -> watch::Receiver<bool> {
        self.fence.held.subscribe()
    }

    async fn release(&self) {
        let identity = match self.fence.mode() {
            Mode::Held(id) => Some(id),
            _ => None,
        };
        self.stop_heartbeat();
        self.fence.set(Mode::Standby);
        let table = &self.table;
        // Deletes the row of this tenure, or (after a loss) of any tenure of this node that
        // has not lapsed yet, so another node need not wait for it.
        let outcome = match identity {
            Some(id) => {
                self.with_session("release", async move |c: &Client| {
                    c.execute(
                        &format!("DELETE FROM {table} WHERE ha_key = $1 AND ha_identity = $2"),
                        &[&LOCK_KEY, &&*id],
                    )
                    .await
                })
                .await
            }
            None => self.delete_own_rows("release").await,
        };
        self.stale_row.store(outcome.is_err(), Ordering::Release);
        match outcome {
            Ok(n) if n > 0 => tracing::info!("released the HA lock"),
            Ok(_) => {}
            Err(err) => tracing::warn!(
                error = %err,
                "could not release the HA lock; deleting it once PostgreSQL answers, or it lapses"
            ),
        }
    }

    async fn leader(&self) -> Result<Option<NodeAdvert>, StorageError> {
        // A standby (this node after losing the lock, backing off) asks every half second.
        self.clear_stale_row().await;
        let table = &self.table;
        let value: Option<String> = self
            .with_session("leader", async move |c: &Client| {
                let row = c
                    .query_opt(
                        &format!(
                            "SELECT ha_value FROM {table} WHERE ha_key = $1 AND valid_until > now()"
                        ),
                        &[&LOCK_KEY],
                    )
                    .await?;
                row.map(|r| r.try_get::<_, Option<String>>(0))
                    .transpose()
                    .map(Option::flatten)
            })
            .await?;
        Ok(value.and_then(|v| serde_json::from_str(&v).ok()))
    }

    async fn announce(&self) -> Result<(), StorageError> {
        let table = &self.table;
        let key = format!("{NODE_PREFIX}{}", self.advert.node_id);
        let (id, value) = (self.advert.node_id.as_str(), self.advert_json.as_str());
        self.with_session("announce", async move |c: &Client| {
            c.execute(
                &format!(
                    "INSERT INTO {table} (ha_key, ha_identity, ha_value, valid_until) \
                     VALUES ($1, $2, $3, now() + $4::bigint * interval '1 millisecond') \
                     ON CONFLICT (ha_key) DO UPDATE \
                     SET ha_value = EXCLUDED.ha_value, valid_until = EXCLUDED.valid_until"
                ),
                &[&key, &id, &value, &Self::millis(NODE_TTL)],
            )
            .await?;
            // Nodes that went away (each process start is a new node) do not pile up.
            c.execute(
                &format!(
                    "DELETE FROM {table} WHERE ha_key LIKE $1 \
                     AND valid_until < now() - interval '1 minute'"
                ),
                &[&format!("{NODE_PREFIX}%")],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn nodes(&self) -> Result<Vec<HaNode>, StorageError> {
        let table = &self.table;
        let ttl = Self::millis(NODE_TTL);
        let rows = self
            .with_session("nodes", async move |c: &Client| {
                c.query(
                    &format!(
                        "SELECT ha_key, ha_value, \
                         (extract(epoch FROM valid_until) * 1000)::bigint - $1::bigint \
                         FROM {table} WHERE valid_until > now() ORDER BY ha_key"
                    ),
                    &[&ttl],
                )
                .await
            })
            .await?;
        let mut leader: Option<NodeAdvert> = None;
        let mut nodes = Vec::new();
        for row in rows {
            let key: String = row.try_get(0).unwrap_or_default();
            let value: Option<String> = row.try_get(1).unwrap_or_default();
            let echo: i64 = row.try_get(2).unwrap_or_default();
            let Some(advert) = value.and_then(|v| serde_json::from_str::<NodeAdvert>(&v).ok())
            else {
                continue;
            };
            if key == LOCK_KEY {
                leader = Some(advert);
            } else if key.starts_with(NODE_PREFIX) {
                nodes.push(HaNode {
                    advert,
                    active: false,
                    last_echo_ms: echo,
                });
            }
        }
        for node in &mut nodes {
            node.active = leader
                .as_ref()
                .is_some_and(|l| l.node_id == node.advert.node_id);
        }
        Ok(nodes)
    }

    fn set_standby(&self, standby: bool) {
        if matches!(self.fence.mode(), Mode::Held(_)) {
            return;
        }
        self.fence
            .set(if standby { Mode::Standby } else { Mode::Open });
    }
}

impl Drop for PostgresqlHa {
    fn drop(&mut self) {
        self.stop_heartbeat();
    }
}

/// Eight random bytes for a tenure's identity (uniqueness, not secrecy: the identity is in
/// the table for anyone to read).
fn random_bytes() -> [u8; 8] {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish().to_le_bytes()
}
