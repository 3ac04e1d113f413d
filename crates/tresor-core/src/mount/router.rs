//! Longest-prefix routing from a request path to a mounted engine.

use std::collections::HashMap;
use std::sync::Arc;

use tresor_sdk::auth::AuthMethod;
use tresor_sdk::engine::{MountInfo, SecretEngine};

use super::entry::{MountEntry, MountKind};
use crate::barrier::BarrierView;

/// A mount ready to serve: its entry, its engine instance and its storage view.
#[derive(Debug)]
pub struct Mounted {
    pub entry: MountEntry,
    pub kind: MountKind,
    /// `None` for mounts the core serves itself (`sys/`, `token/`) and for auth methods.
    pub engine: Option<Arc<dyn SecretEngine>>,
    /// The auth method of an auth mount other than `token/`.
    pub method: Option<Arc<dyn AuthMethod>>,
    pub view: Arc<BarrierView>,
    pub info: Arc<MountInfo>,
}

/// An immutable snapshot of one table's mounts, keyed by path (with trailing slash).
///
/// Hashed with foldhash rather than SipHash: every request routes a few times, each a handful
/// of lookups, and SipHash was most of their cost. Flooding is no concern here: the keys are
/// the operator's mounts, and a client's path only looks them up.
#[derive(Debug, Default)]
pub struct RouteTable {
    mounts: HashMap<String, Arc<Mounted>, foldhash::fast::RandomState>,
}

impl RouteTable {
    pub fn new(mounts: impl IntoIterator<Item = Arc<Mounted>>) -> Self {
        Self {
            mounts: mounts
                .into_iter()
                .map(|m| (m.entry.path.clone(), m))
                .collect(),
        }
    }

    /// The mount owning `path` and the path relative to it. `secret` and `secret/x` both route
    /// to `secret/`. Only prefixes ending at a `/` are tried, longest first: a handful of hash
    /// lookups, whatever the number of mounts.
    pub fn route<'p>(&self, path: &'p str) -> Option<(Arc<Mounted>, &'p str)> {
        if !path.ends_with('/') {
            let mut whole = String::with_capacity(path.len() + 1);
            whole.push_str(path);
            whole.push('/');
            if let Some(m) = self.mounts.get(&whole) {
                return Some((m.clone(), ""));
            }
        }
        let mut end = path.len();
        // Bytes, not `char`s: '/' is ASCII, and a byte search is several times cheaper.
        while let Some(slash) = path
            .as_bytes()
            .get(..end)
            .and_then(|p| p.iter().rposition(|b| *b == b'/'))
        {
            let prefix = path.get(..=slash)?;
            if let Some(m) = self.mounts.get(prefix) {
                return Some((m.clone(), path.get(slash + 1..).unwrap_or("")));
            }
            end = slash;
        }
        None
    }

    pub fn get(&self, path: &str) -> Option<&Arc<Mounted>> {
        self.mounts.get(path)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Mounted>> {
        self.mounts.values()
    }

    /// The mount with this accessor (which survives a move of the mount), if still mounted.
    pub fn by_accessor(&self, accessor: &str) -> Option<&Arc<Mounted>> {
        self.all().find(|m| m.entry.accessor == accessor)
    }
}
