//! Tresor's server configuration: the Vault-shaped HCL file, and the TLS files it names.
//!
//! # Layout
//! - [`parse`] / [`load`]: HCL text or a file to a [`ServerConfig`]; the only entry points.
//! - [`parse_overlay`] / [`load_overlay`]: a file for `-dev -config`, where storage is optional;
//!   `overlay` lays it over dev mode's configuration ([`ServerConfig::overlaid`], OpenBao's merge).
//! - [`parse_migration`] / [`load_migration`]: a migration file for `tresor operator migrate`
//!   ([`MigrationConfig`]: `storage_source` and `storage_destination`, each read as a
//!   `storage` block).
//! - `model`: the plain data the binary acts on ([`ServerConfig`], [`StorageConfig`],
//!   [`ListenerConfig`] with its [`ListenerLimits`], [`TlsFiles`]).
//! - `parse` (module): the top level of the file and the rules shared by every section; its
//!   children `storage`, `listener`, `audit`, `telemetry` and `seal` read one block type each;
//!   `migration` reads a migration file's top level.
//! - `sanitized`: [`ServerConfig::sanitized`], the configuration as `sys/config/state/sanitized`
//!   shows it (OpenBao's keys, nothing secret).
//! - `value`: reading one attribute as a string, boolean, integer or duration, with Vault's
//!   tolerance for quoted booleans and numbers.
//! - [`duration`]: Vault's duration syntax (`"768h"`, `"1h30m"`, bare seconds).
//! - [`size`]: Vault's byte sizes (`"256MiB"`, `"1GB"`, bare bytes).
//! - `env`: [`ServerConfig::with_address_env`], `BAO_API_ADDR` / `BAO_CLUSTER_ADDR` (and
//!   Vault's `VAULT_` names) over the file's `api_addr` / `cluster_addr`, as in OpenBao.
//! - `error`: [`ConfigError`] (where) and [`Problem`] (what).
//! - `lines`, `suggest`, `unsupported`: byte offset to line number, "did you mean",
//!   and the Vault settings Tresor deliberately rejects.
//! - `tls`: [`load_tls`], PEM files to a `rustls` server config on the `ring` provider.
//!
//! # Strictness
//! Unlike Vault, an unknown key or block is an error naming its line: a misspelt
//! `tls_disable` must not silently leave a listener doing something the operator did not ask
//! for.

pub mod duration;
mod env;
mod error;
mod lines;
mod model;
mod overlay;
mod parse;
mod sanitized;
pub mod size;
mod suggest;
mod tls;
mod unsupported;
mod value;

use std::path::Path;

pub use duration::{InvalidDuration, parse_duration};
pub use env::{API_ADDR_VARIABLES, CLUSTER_ADDR_VARIABLES};
pub use error::{ConfigError, Problem};
pub use model::{
    AuditDeviceConfig, DEFAULT_LISTEN_ADDRESS, ListenerConfig, ListenerLimits, ListenerTelemetry,
    LogFormat, MigrationConfig, SealStanza, ServerConfig, StorageConfig, TelemetryConfig, TlsFiles,
};
pub use overlay::Overlay;
pub use size::{InvalidSize, parse_size};
pub use tls::load_tls;

/// Parses config text. Errors carry a line number but no file name; see [`load`] for that.
pub fn parse(source: &str) -> Result<ServerConfig, ConfigError> {
    parse::parse_source(source).map_err(|located| located.in_file(None))
}

/// Reads and parses a config file; errors read `path:line: ...`.
pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
    let source = read_source(path)?;
    parse::parse_source(&source).map_err(|located| located.in_file(Some(path.to_path_buf())))
}

/// Parses config text meant for `-dev` (see [`Overlay`]): the storage block may be left out.
pub fn parse_overlay(source: &str) -> Result<Overlay, ConfigError> {
    parse::parse_overlay(source).map_err(|located| located.in_file(None))
}

/// Reads a config file meant for `-dev` (see [`Overlay`]); errors read `path:line: ...`.
pub fn load_overlay(path: &Path) -> Result<Overlay, ConfigError> {
    let source = read_source(path)?;
    parse::parse_overlay(&source).map_err(|located| located.in_file(Some(path.to_path_buf())))
}

/// Parses a migration file's text (`storage_source`, `storage_destination`, `cluster_addr`).
pub fn parse_migration(source: &str) -> Result<MigrationConfig, ConfigError> {
    parse::parse_migration(source).map_err(|located| located.in_file(None))
}

/// Reads a migration file for `tresor operator migrate`; errors read `path:line: ...`.
pub fn load_migration(path: &Path) -> Result<MigrationConfig, ConfigError> {
    let source = read_source(path)?;
    parse::parse_migration(&source).map_err(|located| located.in_file(Some(path.to_path_buf())))
}

fn read_source(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}
