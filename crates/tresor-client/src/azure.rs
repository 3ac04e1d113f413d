//! The `azure-keyvault` provider over [`tresor_azure::KeyVaultClient`] (the Key Vault REST
//! API, the 401 challenge, retries, and the `DefaultAzureCredential`-like chain).

use std::sync::Arc;

use async_trait::async_trait;
use tresor_azure::{
    CredentialOptions, Env, KeyVaultClient, KeyVaultError, KeyVaultOptions, TokenCredential,
};
use tresor_sdk::secret::SecretString;

use crate::error::SecretStoreError;
use crate::store::{Provider, Rotation, Secret, SecretStore, Version, validate_name};

/// Secrets in one Azure Key Vault, by Key Vault name (`^[0-9a-zA-Z-]{1,127}$`).
///
/// `delete` soft-deletes (every version, recoverable for the vault's retention period); setting
/// the same name again before it is purged is a 409 Conflict from Key Vault, unless the store
/// was built with [`AzureKeyVaultStoreBuilder::purge_on_delete`]. `rotate` reads the current
/// version (not found: [`SecretStoreError::NotFound`]) and sets a new one; Key Vault has no
/// conditional write, so a concurrent writer between the two is not detected.
#[derive(Debug)]
pub struct AzureKeyVaultStore {
    client: KeyVaultClient,
    content_type: Option<String>,
    purge_on_delete: bool,
}

/// Builds an [`AzureKeyVaultStore`].
#[derive(Debug)]
pub struct AzureKeyVaultStoreBuilder {
    vault_url: String,
    credential: Option<Arc<dyn TokenCredential>>,
    env: Option<Env>,
    credential_options: CredentialOptions,
    options: KeyVaultOptions,
    content_type: Option<String>,
    purge_on_delete: bool,
}

impl AzureKeyVaultStore {
    /// `vault_url`: `https://<name>.vault.azure.net/`.
    pub fn builder(vault_url: impl Into<String>) -> AzureKeyVaultStoreBuilder {
        AzureKeyVaultStoreBuilder {
            vault_url: vault_url.into(),
            credential: None,
            env: None,
            credential_options: CredentialOptions::default(),
            options: KeyVaultOptions::default(),
            content_type: None,
            purge_on_delete: false,
        }
    }

    /// A store over an existing client.
    pub fn from_client(client: KeyVaultClient) -> Self {
        Self {
            client,
            content_type: None,
            purge_on_delete: false,
        }
    }

    pub fn vault_url(&self) -> &str {
        self.client.vault_url()
    }
}

impl AzureKeyVaultStoreBuilder {
    /// The credential to use; without one, the default chain (workload identity, client
    /// secret, managed identity, Azure CLI) configured from the environment.
    pub fn credential(mut self, credential: Arc<dyn TokenCredential>) -> Self {
        self.credential = Some(credential);
        self
    }

    /// The environment the default chain reads (`Env::process()` when not given).
    pub fn env(mut self, env: Env) -> Self {
        self.env = Some(env);
        self
    }

    pub fn credential_options(mut self, options: CredentialOptions) -> Self {
        self.credential_options = options;
        self
    }

    pub fn options(mut self, options: KeyVaultOptions) -> Self {
        self.options = options;
        self
    }

    /// The `contentType` written with every value (none by default).
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Purge after soft-deleting, so the name can be set again at once (needs the purge
    /// permission: Key Vault Secrets Officer has it).
    pub fn purge_on_delete(mut self, purge: bool) -> Self {
        self.purge_on_delete = purge;
        self
    }

    pub fn build(self) -> Result<AzureKeyVaultStore, SecretStoreError> {
        let config = |e: KeyVaultError| SecretStoreError::Config(e.to_string());
        let client = match self.credential {
            Some(credential) => KeyVaultClient::new(&self.vault_url, credential, self.options),
            None => KeyVaultClient::with_default_credential(
                &self.vault_url,
                &self.env.unwrap_or_else(Env::process),
                &self.credential_options,
                self.options,
            ),
        }
        .map_err(config)?;
        tracing::info!(vault = client.vault_url(), "secret store: azure key vault");
        Ok(AzureKeyVaultStore {
            client,
            content_type: self.content_type,
            purge_on_delete: self.purge_on_delete,
        })
    }
}

/// Key Vault's not-found and refusals become the provider-independent variants; the rest
/// keeps Azure's error (its text names the operation, status, code and message only).
fn map(name: &str, op: &'static str, e: KeyVaultError) -> SecretStoreError {
    match e {
        KeyVaultError::NotFound { .. } => SecretStoreError::NotFound {
            provider: "azure-keyvault",
            name: name.to_owned(),
        },
        KeyVaultError::Forbidden { code, message, .. } => SecretStoreError::PermissionDenied {
            provider: "azure-keyvault",
            op,
            name: name.to_owned(),
            status: 403,
            message: format!("{code}: {message}"),
        },
        KeyVaultError::Unauthorized { code, message, .. } => SecretStoreError::PermissionDenied {
            provider: "azure-keyvault",
            op,
            name: name.to_owned(),
            status: 401,
            message: format!("{code}: {message}"),
        },
        KeyVaultError::Conflict { code, message, .. } => SecretStoreError::Conflict {
            provider: "azure-keyvault",
            op,
            name: name.to_owned(),
            message: format!("{code}: {message}"),
        },
        other => SecretStoreError::KeyVault(other),
    }
}

fn version_of(props: &tresor_azure::SecretProperties) -> Version {
    Version(props.version.clone().unwrap_or_default())
}

#[async_trait]
impl SecretStore for AzureKeyVaultStore {
    fn provider(&self) -> Provider {
        Provider::AzureKeyVault
    }

    async fn get(&self, name: &str) -> Result<Secret, SecretStoreError> {
        validate_name(Provider::AzureKeyVault, name)?;
        let secret = self
            .client
            .get_secret(name, None)
            .await
            .map_err(|e| map(name, "get", e))?;
        Ok(Secret {
            version: version_of(&secret.properties),
            value: secret.value,
        })
    }

    async fn set(&self, name: &str, value: &SecretString) -> Result<Version, SecretStoreError> {
        validate_name(Provider::AzureKeyVault, name)?;
        self.client
            .set_secret(name, value, self.content_type.as_deref())
            .await
            .map(|p| version_of(&p))
            .map_err(|e| map(name, "set", e))
    }

    async fn delete(&self, name: &str) -> Result<(), SecretStoreError> {
        validate_name(Provider::AzureKeyVault, name)?;
        self.client
            .delete_secret(name)
            .await
            .map_err(|e| map(name, "delete", e))?;
        if self.purge_on_delete {
            self.client
                .purge_deleted_secret(name)
                .await
                .map_err(|e| map(name, "purge", e))?;
        }
        Ok(())
    }

    async fn rotate(
        &self,
        name: &str,
        new_value: &SecretString,
    ) -> Result<Rotation, SecretStoreError> {
        validate_name(Provider::AzureKeyVault, name)?;
        let previous = self
            .client
            .get_secret(name, None)
            .await
            .map_err(|e| map(name, "rotate", e))?;
        let current = self
            .client
            .set_secret(name, new_value, self.content_type.as_deref())
            .await
            .map_err(|e| map(name, "rotate", e))?;
        Ok(Rotation {
            previous: version_of(&previous.properties),
            current: version_of(&current),
        })
    }
}
