//! Types shared by Tresor's core and its secrets engines and auth methods.
//!
//! # Layout
//! - [`locks`]: [`locks::KeyLocks`], striped async locks for read-modify-write steps on one key.
//! - [`secret`]: zeroizing containers for key material, tokens and secret values; their
//!   `Debug` prints `[redacted]`, and equality is constant-time.
//! - [`duration`]: the one parser for Vault-style durations (`"1h30m"`, `"90"`, `"7d"`, numbers).
//! - [`engine`]: the [`engine::SecretEngine`] trait, [`engine::Request`], [`engine::Response`],
//!   [`engine::EngineError`], and the factory the core uses to build engines per mount; the
//!   lease interface: [`engine::LeaseSpec`] (what a response asks for), [`engine::Lease`] (what
//!   the core hands back to `renew_lease`/`revoke_lease`), [`engine::LeaseRenewal`].
//! - [`auth`]: the [`auth::AuthMethod`] trait (login paths are unauthenticated; a login
//!   answers with an [`auth::Login`]: who logged in and the role's [`auth::TokenSettings`];
//!   the core issues the token), its factory, and renewal checks.
//! - [`password`]: [`password::PasswordPolicies`], how an engine asks the core for a password
//!   from a named password policy (handed to engines in [`engine::MountInfo::passwords`]).
//! - [`json`]: JSON written by hand for the hot paths, byte for byte what `serde_json` writes.
//! - [`timestamp`]: the one RFC 3339 formatter (Go's `RFC3339Nano`, UTC) for the wire and audit
//!   lines, and the current time in Unix nanoseconds.
//! - [`storage`]: the [`storage::Storage`] view an engine reads and writes through (already
//!   encrypted by the barrier and scoped to the engine's mount), and its error type.
//!
//! Engines and auth methods depend on this crate only, never on `tresor-core`: an engine is a unit that takes a
//! request and a storage view, so it can be tested alone.

pub mod auth;
pub mod duration;
pub mod engine;
pub mod json;
pub mod locks;
pub mod password;
pub mod secret;
pub mod storage;
pub mod timestamp;
