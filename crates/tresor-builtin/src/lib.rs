//! Tresor's built-in secrets engines and auth methods, written against `tresor-sdk` only so each one can be
//! tested alone with any [`tresor_sdk::storage::Storage`].
//!
//! # Layout
//! - [`secrets`]: the secrets engines and [`secrets::factories`]'s list of their factories.
//!   - `secrets::kv`: KV version 1 (passthrough) and version 2 (versioned), mount types `kv`
//!     and `kv-v2`, with the in-place v1 → v2 upgrade. Its storage layout is documented in
//!     `secrets::kv::layout`.
//!   - `secrets::cubbyhole`: per-token scratch space, mount type `cubbyhole`.
//!   - `secrets::transit`: encryption as a service, mount type `transit` (docs/transit.md).
//!   - `secrets::database`: dynamic and static PostgreSQL credentials, mount type `database`
//!     (docs/database.md).
//! - [`clock`]: the [`clock::Clock`] engines read time from (tests substitute their own), and
//!   Go-compatible RFC 3339 / duration formatting.
//! - `common`: helpers shared by engines: request field parsing with Vault's weak typing and
//!   null-as-absent rule, path checks, JSON merge patch, recursive scan, per-key locks.
//!
//! - [`auth`]: the auth methods and [`auth::auth_methods`]'s list of their factories;
//!   `auth::token_fields` parses the `token_*` role parameters they all share.

pub mod auth;
pub mod clock;
mod common;
pub mod secrets;

pub use auth::auth_methods;
pub use secrets::factories;
