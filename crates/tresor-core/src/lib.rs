//! Tresor's core: everything between the HTTP layer and the physical backend.
//!
//! # Layout
//! - [`core`]: the server state machine (uninitialised → sealed → unsealed) and its entry points.
//! - [`ha`]: HA mode on a shared backend with a lock: standby after unseal, promotion when
//!   the lock is taken, demotion the moment it is lost, step-down.
//! - [`barrier`]: AES-256-GCM encryption of every stored value under a versioned keyring;
//!   the storage path is bound as associated data.
//! - [`seal`]: the seals: Shamir (unseal key shares, the wrapped root key, unseal progress) and
//!   auto-unseal ([`seal::AutoSeal`], the `static` seal, stored keys, recovery keys).
//! - [`rekey`]: replacing the unseal key shares (`sys/rotate/root/*`, legacy `sys/rekey/*`) or
//!   the recovery key shares (`sys/rotate/recovery/*`, legacy `sys/rekey-recovery-key/*`):
//!   in-memory attempts, the new key installed in one storage transaction.
//! - [`shamir`]: Shamir secret sharing over GF(2^8).
//! - [`token`]: the token store (salted-HMAC keyed entries, cached lookups) and `auth/token/*`.
//! - [`policy`]: HCL/JSON ACL policies and their compiled matcher; [`policy_store`]: stored
//!   policies and the per-policy-set ACL cache.
//! - [`password_policy`]: password policies (`sys/policies/password/*`): their language,
//!   validation and generator, their store, and the handle engines generate passwords with.
//! - [`authz`]: authentication and authorisation of every request.
//! - [`expiration`]: the expiration manager: leases (secrets and tokens) persisted under the
//!   barrier, a timer queue, background loading at unseal, paced and retried revocation.
//! - [`mount`]: mount and auth tables, the router, the engine registry.
//! - [`identity`]: entities, aliases and groups; the entity behind a login; policy templating
//!   (`{{identity.entity.…}}`) and the policies an entity's groups add.
//! - [`logical`]: serving non-`sys/` requests through the router.
//! - [`login`]: requests to auth methods; turning a method's [`tresor_sdk::auth::Login`] into a
//!   token; renewal limits from the method; `verbose_denials`.
//! - [`quotas`]: rate-limit quotas: persisted below the barrier, loaded at unseal, checked
//!   per request from an in-memory set with one bucket per client address.
//! - [`params`]: Vault-style parameter decoding (durations, string lists).
//! - [`wrapping`]: response wrapping: single-use wrapping tokens, the response in their
//!   cubbyhole, unwrap / lookup / rewrap.
//! - [`audit`]: audit devices (file, socket), the per-device salted HMAC, the device table,
//!   and the request hook that fails closed.
//! - [`metrics`]: the process-wide counters and latency histograms, the state gauges read at
//!   scrape time, and the Prometheus and JSON renderings of `sys/metrics`.
//! - [`error`]: [`CoreError`], the one error type callers see.
//!
//! This crate knows nothing of HTTP or Vault's JSON; `tresor-http` maps [`CoreError`] to
//! status codes.

pub mod audit;
pub mod authz;
pub mod barrier;
pub mod core;
pub mod error;
pub mod expiration;
pub mod generate_root;
pub mod ha;
pub mod identity;
pub mod logical;
pub mod login;
pub(crate) mod memo;
pub mod metrics;
pub mod mount;
pub mod params;
pub mod password_policy;
pub mod policy;
pub mod policy_store;
pub mod quotas;
pub mod random;
pub mod rekey;
pub mod seal;
pub mod shamir;
pub mod token;
pub mod version;
pub mod wrapping;

pub use crate::core::{
    Active, ClusterInfo, Core, CoreOptions, HealthStatus, InitResult, SealStatus,
};
pub use error::{CoreError, CoreResult};
