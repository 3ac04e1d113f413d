//! Sources: where secrets come from. Each one is a [`Source`]; `cli` builds them from the
//! config, and the plan merges what they return (a later source wins on the same name).
//!
//! `dotenv` (`.env` files), `vault` (another Vault/OpenBao/Tresor) and `azure_keyvault` (over
//! crate `tresor-azure`, credentials from the process environment).

pub mod azure;
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
    /// Shown after the source's description, which names the vault.
    #[error("{source}")]
    Azure {
        vault_url: String,
        /// Boxed: `KeyVaultError` is large.
        source: Box<tresor_azure::KeyVaultError>,
    },
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
    #[error("sources[{index}] (azure_keyvault): {source}")]
    Azure {
        index: usize,
        source: azure::NewError,
    },
    #[error("sources[{index}] (vault): {source}")]
    Vault {
        index: usize,
        source: vault::NewError,
    },
}

/// Builds the configured sources; relative `.env` paths are taken from `base` (the config
/// file's directory). Tokens of `vault` sources are read from their variables now; the Azure
/// credential chain is configured from the process environment now and tried at load time.
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
            SourceConfig::AzureKeyvault(a) => out.push(Box::new(
                azure::AzureKeyVaultSource::new(a, base, &tresor_azure::Env::process())
                    .map_err(|source| BuildError::Azure { index, source })?,
            )),
        }
    }
    Ok(out)
}
