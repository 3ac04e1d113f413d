//! The `azure_keyvault` source: every secret of one Azure Key Vault whose name starts with
//! `secret_prefix`, read with `tresor-azure`'s [`KeyVaultClient`] and the
//! [`DefaultCredential`](tresor_azure::DefaultCredential) chain configured from the process
//! environment (workload identity, client secret, managed identity, Azure CLI).
//!
//! Names: the prefix is matched case-insensitively (Key Vault names are case-insensitive) and
//! stripped; the rest is lowercased (`env-GHCR-TOKEN` under `env-` is `ghcr-token`). A secret
//! named exactly the prefix is skipped with a warning. A disabled secret (`enabled: false`)
//! cannot be read and is skipped with a warning naming it; so is one deleted between the list
//! and the read. Any other failure — no credential gave a token (the message lists each
//! credential's reason), a 403, the vault unreachable — fails the source, and the run writes
//! nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tresor_azure::{CredentialOptions, Env, KeyVaultClient, KeyVaultError, KeyVaultOptions};

use super::{Entry, Loaded, Source, SourceError};
use crate::config::AzureKeyvaultConfig;

#[derive(Debug)]
pub struct AzureKeyVaultSource {
    client: KeyVaultClient,
    /// Lowercased.
    prefix: String,
}

#[derive(Debug, thiserror::Error)]
pub enum NewError {
    #[error("reading ca_file {}: {source}", path.display())]
    CaFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    KeyVault(#[from] KeyVaultError),
}

/// The options a config gives `tresor-azure`: its CA for both the vault and the token
/// endpoint, and the challenge-resource check. Shared with `doctor`.
pub fn options(
    config: &AzureKeyvaultConfig,
    base: &Path,
) -> Result<(CredentialOptions, KeyVaultOptions), NewError> {
    let ca_pem = match &config.ca_file {
        None => None,
        Some(f) => {
            let path = base.join(f);
            Some(
                std::fs::read_to_string(&path)
                    .map_err(|source| NewError::CaFile { path, source })?,
            )
        }
    };
    let credential = CredentialOptions {
        ca_pem: ca_pem.clone(),
        ..CredentialOptions::default()
    };
    let vault = KeyVaultOptions {
        ca_pem,
        verify_challenge_resource: config.verify_challenge_resource,
        ..KeyVaultOptions::default()
    };
    Ok((credential, vault))
}

impl AzureKeyVaultSource {
    /// The client and its credential chain, from `env` (the process environment in the
    /// binary). No request is made here: the chain is tried at load time.
    pub fn new(
        config: &AzureKeyvaultConfig,
        base: &Path,
        env: &Env,
    ) -> Result<AzureKeyVaultSource, NewError> {
        let (credential, vault) = options(config, base)?;
        let client =
            KeyVaultClient::with_default_credential(&config.vault_url, env, &credential, vault)?;
        Ok(AzureKeyVaultSource {
            client,
            prefix: config.secret_prefix().to_ascii_lowercase(),
        })
    }

    fn error(&self, source: KeyVaultError) -> SourceError {
        SourceError::Azure {
            vault_url: self.client.vault_url().to_owned(),
            source: Box::new(source),
        }
    }
}

/// The target name of a Key Vault secret name: `None` when it does not start with `prefix`
/// (lowercase).
pub fn map_name(kv_name: &str, prefix: &str) -> Option<String> {
    let lower = kv_name.to_ascii_lowercase();
    lower.strip_prefix(prefix).map(str::to_owned)
}

#[async_trait]
impl Source for AzureKeyVaultSource {
    fn describe(&self) -> String {
        format!(
            "azure_keyvault {} (secret_prefix {:?})",
            self.client.vault_url(),
            self.prefix
        )
    }

    async fn load(&self) -> Result<Loaded, SourceError> {
        let listed = self
            .client
            .list_secrets()
            .await
            .map_err(|e| self.error(e))?;
        let vault = self.client.vault_url();
        let mut warnings = Vec::new();
        let mut by_name: BTreeMap<String, Entry> = BTreeMap::new();
        for props in listed {
            let Some(name) = map_name(&props.name, &self.prefix) else {
                continue;
            };
            if name.is_empty() {
                warnings.push(format!(
                    "azure_keyvault {vault}: secret {} is named exactly the prefix: skipped",
                    props.name
                ));
                continue;
            }
            if props.enabled == Some(false) {
                warnings.push(format!(
                    "azure_keyvault {vault}: secret {} is disabled (enabled: false, its value cannot be read): skipped",
                    props.name
                ));
                continue;
            }
            let secret = match self.client.get_secret(&props.name, None).await {
                Ok(s) => s,
                Err(e) if e.is_not_found() => {
                    warnings.push(format!(
                        "azure_keyvault {vault}: secret {} was deleted while the run read the vault: skipped",
                        props.name
                    ));
                    continue;
                }
                Err(e) => return Err(self.error(e)),
            };
            let origin = format!("azure_keyvault {vault}secrets/{}", props.name);
            if let Some(earlier) = by_name.get(&name) {
                return Err(SourceError::Collision {
                    name,
                    first: earlier.origin.clone(),
                    second: origin,
                });
            }
            by_name.insert(
                name.clone(),
                Entry {
                    name,
                    value: secret.value,
                    origin,
                },
            );
        }
        Ok(Loaded {
            entries: by_name.into_values().collect(),
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_is_matched_case_insensitively_and_stripped() {
        assert_eq!(
            map_name("env-ghcr-token", "env-").as_deref(),
            Some("ghcr-token")
        );
        assert_eq!(
            map_name("ENV-GHCR-Token", "env-").as_deref(),
            Some("ghcr-token")
        );
        assert_eq!(map_name("other-secret", "env-"), None);
        assert_eq!(map_name("env-", "env-").as_deref(), Some(""));
    }

    #[test]
    fn an_empty_prefix_takes_every_name() {
        assert_eq!(
            map_name("env-ghcr-token", "").as_deref(),
            Some("env-ghcr-token")
        );
        assert_eq!(map_name("Other", "").as_deref(), Some("other"));
    }
}
