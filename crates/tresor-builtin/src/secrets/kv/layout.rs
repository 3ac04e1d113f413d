//! Where KV keeps things in its mount's storage view.
//!
//! ```text
//! v1/<path>                 KV v1: the secret, a JSON object, exactly as written
//! v2/config                 KV v2: mount-wide settings (model::Config, JSON)
//! v2/meta/<path>            KV v2: one key's metadata and version list (model::KeyMetadata, JSON)
//! v2/versions/<path>/<n>    KV v2: the data of version n of <path>, a JSON object
//! ```
//!
//! Why this shape:
//! - v1 and v2 live under different top-level prefixes, so no user path can collide with
//!   engine records, and the v1 → v2 upgrade is "move everything from `v1/` into `v2/`", which
//!   can resume after a crash by looking at what is left under `v1/`.
//! - `v2/meta/` mirrors the user's tree, so LIST on `metadata/` is one storage list.
//! - Version data is apart from metadata so a read loads one version, not all ten. The layout
//!   `<path>/<n>` is unambiguous: the last segment is always the version number, so version
//!   `n` of `a` (`a/n`) and any version of a secret named `a/n` (`a/n/m`) are different keys.
//! - Every logical operation is one storage transaction over these keys, so a reader never
//!   sees metadata pointing at a version whose data is missing, or the reverse.

pub(crate) const V1_PREFIX: &str = "v1/";
pub(crate) const CONFIG_KEY: &str = "v2/config";
pub(crate) const META_PREFIX: &str = "v2/meta/";
const VERSIONS_PREFIX: &str = "v2/versions/";

pub(crate) fn v1_key(path: &str) -> String {
    format!("{V1_PREFIX}{path}")
}

pub(crate) fn meta_key(path: &str) -> String {
    format!("{META_PREFIX}{path}")
}

pub(crate) fn version_key(path: &str, version: u64) -> String {
    format!("{VERSIONS_PREFIX}{path}/{version}")
}
