//! The mount and auth tables, and the router that maps a request path to a mounted engine.
//!
//! # Layout
//! - `entry`: [`MountEntry`], its config, path validation.
//! - `table`: the persisted tables and their mutations (enable, disable, tune, remount).
//! - `periodic`: the once-a-minute ticker that calls every engine's `periodic` while unsealed.
//! - `router`: longest-prefix routing over an immutable snapshot, swapped on every change so
//!   the request path takes no lock beyond an `Arc` clone.

mod entry;
pub(crate) mod periodic;
mod router;
mod table;

pub use entry::{MountConfig, MountEntry, MountKind, normalise_mount_path};
pub use router::{Mounted, RouteTable};
pub(crate) use table::delete_prefix;
pub use table::{EnableRequest, EngineRegistry, MountTables, SYSTEM_DEFAULT_TTL, TuneRequest};
