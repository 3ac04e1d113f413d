//! High availability: several nodes share one backend and exactly one of them, the active
//! node, serves; the others are standbys. The backend itself holds the lock that says which
//! node is active (only `postgresql` has one: [`crate::postgresql::PostgresqlHa`]).
//!
//! The lock is more than an election: while a node holds it, every write it sends is checked
//! against it inside the storage transaction (a fence), so a node that lost the lock, even
//! one that has not noticed yet, cannot commit a write.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::StorageError;

/// What a node tells the others about itself: held in the lock while it is active (so a
/// standby can name the leader) and in its presence record (for `sys/ha-status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAdvert {
    /// Random per process start.
    pub node_id: String,
    /// `api_addr`: where clients reach this node.
    pub api_addr: String,
    /// `cluster_addr` (derived from `api_addr` as Vault does; no cluster port listens yet).
    pub cluster_addr: String,
    pub hostname: String,
    pub version: String,
}

/// One node of `sys/ha-status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaNode {
    pub advert: NodeAdvert,
    /// It holds the lock now.
    pub active: bool,
    /// When it last announced itself, Unix milliseconds on the backend's clock.
    pub last_echo_ms: i64,
}

/// The lock of one HA cluster, as one node sees it.
#[async_trait]
pub trait HaLock: Send + Sync + std::fmt::Debug + 'static {
    /// This node.
    fn advert(&self) -> &NodeAdvert;

    /// Tries once to take the lock. `Ok(true)`: this node holds it now, keeps it alive in
    /// the background, and the backend's writes are fenced by it.
    async fn try_acquire(&self) -> Result<bool, StorageError>;

    /// Whether this node holds the lock. Turns `false` the moment the lock is lost (the
    /// renewal failed or found the lock taken, its connection ended, a fenced write was
    /// refused) or released; by then the backend already refuses this node's writes.
    fn watch_held(&self) -> watch::Receiver<bool>;

    /// Gives the lock up (best effort: a lock that cannot be deleted expires).
    async fn release(&self);

    /// The node holding the lock now, if any.
    async fn leader(&self) -> Result<Option<NodeAdvert>, StorageError>;

    /// Records that this node is alive (for [`HaLock::nodes`]); called every few seconds.
    async fn announce(&self) -> Result<(), StorageError>;

    /// The nodes that announced themselves recently.
    async fn nodes(&self) -> Result<Vec<HaNode>, StorageError>;

    /// `true`: this node is an unsealed standby and the backend refuses its writes; `false`:
    /// it is sealed, and writes (`sys/init`, unseal-time writes) go through unfenced, as in
    /// Vault. Ignored while the lock is held.
    fn set_standby(&self, standby: bool);
}
