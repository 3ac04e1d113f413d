//! Sources: where secrets come from. Each one is a [`Source`]; `cli` builds them from the
//! config, and the plan merges what they return (a later source wins on the same name).
//!
//! `dotenv` and `vault` are here. `azure_keyvault` is accepted by the config parser and plugs
//! in as one more `Source` once the Azure Key Vault client (crate `tresor-azure`) lands; until
//! then [`build`] refuses a config that uses it.

pub mod dotenv;
pub mod vault;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tresor_sdk::secret::SecretString;

use crate::config::SourceConfig;
use crate::kv::KvError;

/// One secret from a source.
#[derive(Debug)]
pub struct Entry {
    /// The name below the target's prefix.
    pub name: String,
    pub value: SecretString,
    /// Where it was read, for diagnostics: `.env:3 (GHCR_TOKEN)`, `vault http://…/secret/apps/x`.
    pub origin: String,
}

/// What a source returned.
#[derive(Debug, Default)]
pub struct Loaded {
    pub entries: Vec<Entry>,
    /// Things the run should mention (never a value): skipped secrets, ignored fields.
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {reason}", file.display())]
    Malformed {
        file: PathBuf,
        line: usize,
        reason: dotenv::Malformed,
    },
    #[error("{first} and {second} both become the name {name:?}")]
    Collision {
        name: String,
        first: String,
        second: String,
    },
    #[error("vault source {address}: {source}")]
    Vault { address: String, source: KvError },
}

/// A place secrets are read from.
#[async_trait]
pub trait Source: Send + Sync + std::fmt::Debug {
    /// A one-line description for messages (no secrets): `dotenv .env, .env.local`.
    fn describe(&self) -> String;
    /// Reads every secret. Names must be unique within one source.
    async fn load(&self) -> Result<Loaded, SourceError>;
}

/// Why a config's sources cannot be built (a config error: exit 2).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "sources[{index}]: the azure_keyvault source is not available yet: the Azure Key Vault client and credential chain are still being written (issue 16 §2–3); remove it from the config or import from a .env file or a Vault server for now"
    )]
    AzureNotAvailable { index: usize },
    #[error("sources[{index}] (vault): {source}")]
    Vault {
        index: usize,
        source: vault::NewError,
    },
}

/// Builds the configured sources; relative `.env` paths are taken from `base` (the config
/// file's directory). Tokens of `vault` sources are read from their variables at load time.
pub fn build(configs: &[SourceConfig], base: &Path) -> Result<Vec<Box<dyn Source>>, BuildError> {
    let mut out: Vec<Box<dyn Source>> = Vec::new();
    for (index, config) in configs.iter().enumerate() {
        match config {
            SourceConfig::Dotenv(d) => {
                out.push(Box::new(dotenv::DotenvSource::new(&d.files, base)))
            }
            SourceConfig::Vault(v) => out.push(Box::new(
                vault::VaultSource::new(v, base)
                    .map_err(|source| BuildError::Vault { index, source })?,
            )),
            SourceConfig::AzureKeyvault(_) => return Err(BuildError::AzureNotAvailable { index }),
        }
    }
    Ok(out)
}
