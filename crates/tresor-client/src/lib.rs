//! The library applications use for their secrets (issue 16 §4; seed 002's Console pattern):
//! one [`SecretStore`] trait, three providers chosen by `SECRET_STORE_PROVIDER`, and a
//! read-through cache.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tresor_client::SecretStoreError> {
//! use std::sync::Arc;
//! use tresor_client::{CacheOptions, CachedStore, SecretStore};
//!
//! let store = tresor_client::from_env().await?; // SECRET_STORE_PROVIDER=tresor|azure-keyvault|noop
//! let cache = CachedStore::new(store, CacheOptions::default());
//! let db_uri = cache.get("instance-abc123-dburi").await?; // Secret { value: SecretString, version }
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`store`]: the [`SecretStore`] trait (get / set / delete / rotate by name), [`Secret`],
//!   [`Version`], [`Rotation`], [`Provider`] and each provider's name rules.
//! - [`tresor`]: the `tresor` provider — the Vault HTTP API over reqwest/rustls (ring), a KV v2
//!   mount and path prefix, `{"value": …}` per name; token, Kubernetes or JWT login and the
//!   background renewal (`tresor/auth.rs`), Vault's errors (`tresor/api.rs`).
//! - [`azure`]: the `azure-keyvault` provider over `tresor_azure::KeyVaultClient`.
//! - [`noop`]: warns on every call, persists nothing.
//! - [`cache`]: [`CachedStore`], the read-through cache with periodic refresh, `invalidate` and
//!   `refresh_on_auth_error`.
//! - [`config`]: the provider and its settings from environment variables.
//! - [`error`](mod@error): [`SecretStoreError`].
//!
//! No error, log line or `Debug` output holds a secret value, a token or a JWT: values are
//! [`SecretString`]s (zeroized on drop, `Debug` redacted)
//! and parse errors name a position, never the text (serde quotes values).

pub mod azure;
pub mod cache;
pub mod config;
pub mod error;
pub mod noop;
pub mod store;
pub mod tresor;

pub use azure::{AzureKeyVaultStore, AzureKeyVaultStoreBuilder};
pub use cache::{CacheOptions, CacheStats, CachedStore, Refreshed};
pub use config::{EnvOverrides, from_env, from_env_with, provider_from_env};
pub use error::SecretStoreError;
pub use noop::NoopStore;
pub use store::{Provider, Rotation, Secret, SecretStore, Version, validate_name};
pub use tresor::{AuthStatus, JwtSource, TresorAuth, TresorStore, TresorStoreBuilder};
pub use tresor_sdk::secret::SecretString;
