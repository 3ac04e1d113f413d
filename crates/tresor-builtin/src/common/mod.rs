//! Helpers shared by the built-in engines.
//!
//! # Layout
//! - [`fields`]: reading request fields with Vault's weak typing (`"5"` is an int, `"true"` a
//!   bool) and the rule that JSON `null` means "absent".
//! - [`duration`]: Vault's duration inputs (`90`, `"90"`, `"1h30m"`, `"2d"`).
//! - [`keypath`]: checks on request paths (`..`, `.`, empty segments, NUL → 400).
//! - [`merge_patch`]: RFC 7396 JSON merge patch.
//! - [`scan`]: OpenBao's recursive SCAN over a storage prefix, in its exact order.
//! - [`passthrough`]: the unversioned read/write/delete/list shared by KV v1 and cubbyhole.

pub(crate) mod duration;
pub(crate) mod fields;
pub(crate) mod keypath;
pub(crate) mod merge_patch;
pub(crate) mod passthrough;
pub(crate) mod scan;
