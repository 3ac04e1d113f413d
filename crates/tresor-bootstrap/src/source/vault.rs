//! The `vault` source: every secret below `<mount>/<path>` of a KV v2 mount on another Vault,
//! OpenBao or Tresor, listed recursively. A secret's name is its path below `path`
//! (`apps/team/db` under `path: apps/` is `team/db`) and its value is its `value` field, the
//! shape the target is written in.
//!
//! Other shapes, decided: a secret with a string `value` and other fields is imported from
//! `value`, and the run warns that the other fields (named, never shown) were ignored; a
//! secret without a string `value` is skipped with a warning naming its fields; a secret
//! whose current version is deleted or destroyed is skipped with a warning. None of these
//! fail the run: migrating many secrets should not stop at the first odd one, and each is
//! named in the output.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tresor_sdk::secret::SecretString;

use super::{Entry, Loaded, Source, SourceError};
use crate::config::VaultSourceConfig;
use crate::kv::{Client, KvError};

#[derive(Debug)]
pub struct VaultSource {
    client: Client,
    mount: String,
    /// `""` or ending in `/`.
    path: String,
}

impl VaultSource {
    /// Reads the token from `token_env` now: a missing variable is a config error.
    pub fn new(config: &VaultSourceConfig, base: &Path) -> Result<VaultSource, NewError> {
        let token = std::env::var(&config.token_env)
            .ok()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| NewError::MissingToken {
                env: config.token_env.clone(),
            })?;
        let ca: Option<PathBuf> = config.ca_cert.as_ref().map(|c| base.join(c));
        let client = Client::new(&config.address, SecretString::new(token), ca.as_deref())?;
        let trimmed = config.path.trim_matches('/');
        Ok(VaultSource {
            client,
            mount: config.mount().trim_matches('/').to_owned(),
            path: if trimmed.is_empty() {
                String::new()
            } else {
                format!("{trimmed}/")
            },
        })
    }

    fn shown(&self, key: &str) -> String {
        format!("{}/{}/{key}", self.client.address(), self.mount)
    }

    fn error(&self, source: KvError) -> SourceError {
        SourceError::Vault {
            address: self.client.address(),
            source,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NewError {
    #[error("the token variable {env} is not set")]
    MissingToken { env: String },
    #[error(transparent)]
    Kv(#[from] KvError),
}

#[async_trait]
impl Source for VaultSource {
    fn describe(&self) -> String {
        format!("vault {}", self.shown(&self.path))
    }

    async fn load(&self) -> Result<Loaded, SourceError> {
        let mut leaves = Vec::new();
        let mut folders = vec![self.path.clone()];
        while let Some(folder) = folders.pop() {
            let keys = self
                .client
                .list(&self.mount, &folder)
                .await
                .map_err(|e| self.error(e))?;
            for key in keys {
                let full = format!("{folder}{key}");
                if key.ends_with('/') {
                    folders.push(full);
                } else {
                    leaves.push(full);
                }
            }
        }
        leaves.sort();
        let mut loaded = Loaded::default();
        for leaf in leaves {
            let fields = self
                .client
                .read(&self.mount, &leaf, 0)
                .await
                .map_err(|e| self.error(e))?;
            let shown = self.shown(&leaf);
            let Some(mut fields) = fields else {
                loaded.warnings.push(format!(
                    "{shown}: skipped: its current version is deleted or destroyed"
                ));
                continue;
            };
            let value = fields.strings.remove("value");
            let mut others: Vec<String> = fields.strings.into_keys().collect();
            others.extend(fields.others);
            others.sort();
            let Some(value) = value else {
                loaded.warnings.push(format!(
                    "{shown}: skipped: no string field `value` (fields: {})",
                    others.join(", ")
                ));
                continue;
            };
            if !others.is_empty() {
                loaded.warnings.push(format!(
                    "{shown}: imported `value`; other fields ignored: {}",
                    others.join(", ")
                ));
            }
            let name = leaf
                .strip_prefix(self.path.as_str())
                .unwrap_or(&leaf)
                .to_owned();
            loaded.entries.push(Entry {
                name,
                value,
                origin: format!("vault {shown}"),
            });
        }
        Ok(loaded)
    }
}
