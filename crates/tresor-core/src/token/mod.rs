//! Tokens: the store, the entry model, and the `auth/token/*` endpoints.
//!
//! # Layout
//! - `batch`: batch tokens (the encrypted entry is the token; nothing is stored).
//! - `entry`: [`TokenEntry`] and its wire forms (lookup data, auth block).
//! - `store`: [`TokenStore`]: salted-HMAC keyed persistence, cache, revocation cascade.
//! - `create`: the rules for creating a token (policies subset of the parent's, TTLs, roles).
//! - `roles`: token roles (`auth/token/roles/:name`).
//! - `endpoints`: the `auth/token/*` request handlers.

pub mod batch;
pub(crate) mod create;
pub(crate) mod endpoints;
pub mod entry;
pub(crate) mod roles;
pub mod store;

pub use entry::TokenEntry;
pub use store::{Resolved, TokenStore};

/// The token types a token role or an auth mount may name (`default-*`: the role's or the
/// request's choice, falling back to that type).
pub const TOKEN_TYPES: [&str; 4] = ["service", "batch", "default-service", "default-batch"];

/// Formats seconds the way Vault's messages do: `2h`, `1h30m`, `45s`.
pub(crate) use tresor_sdk::duration::format_human as human_duration;

/// Vault's warning when a requested TTL (or period) is cut to a maximum. Each caller formats the
/// durations as OpenBao does at that place (`1h` for tokens, `1h0m0s` for leases).
pub(crate) fn capped_warning(what: &str, wanted: &str, max: &str) -> String {
    format!(
        "{what} of {wanted:?} exceeded the effective max_ttl of {max:?}; {what} value is capped accordingly"
    )
}
