//! The `noop` provider (seed 002's opt-out): an application starts without any store, every
//! operation logs a warning naming the operation and the secret, nothing is persisted, and
//! `get` answers not found.

use async_trait::async_trait;
use tresor_sdk::secret::SecretString;

use crate::error::SecretStoreError;
use crate::store::{Provider, Rotation, Secret, SecretStore, Version, validate_name};

/// A store that stores nothing. Names are still checked (with Key Vault's rules), so code
/// developed against noop does not break on the first real store.
#[derive(Debug, Default, Clone)]
pub struct NoopStore;

impl NoopStore {
    pub fn new() -> Self {
        Self
    }
}

fn warn(operation: &'static str, name: &str) {
    tracing::warn!(
        operation,
        name,
        "secret store is noop: {operation} of secret {name} is not persisted and reads find nothing (set SECRET_STORE_PROVIDER to tresor or azure-keyvault)"
    );
}

/// The version noop reports for a write that went nowhere.
fn unpersisted() -> Version {
    Version("0".to_owned())
}

#[async_trait]
impl SecretStore for NoopStore {
    fn provider(&self) -> Provider {
        Provider::Noop
    }

    async fn get(&self, name: &str) -> Result<Secret, SecretStoreError> {
        warn("get", name);
        validate_name(Provider::Noop, name)?;
        Err(SecretStoreError::NotFound {
            provider: "noop",
            name: name.to_owned(),
        })
    }

    async fn set(&self, name: &str, _value: &SecretString) -> Result<Version, SecretStoreError> {
        warn("set", name);
        validate_name(Provider::Noop, name)?;
        Ok(unpersisted())
    }

    async fn delete(&self, name: &str) -> Result<(), SecretStoreError> {
        warn("delete", name);
        validate_name(Provider::Noop, name)?;
        Ok(())
    }

    async fn rotate(
        &self,
        name: &str,
        _new_value: &SecretString,
    ) -> Result<Rotation, SecretStoreError> {
        warn("rotate", name);
        validate_name(Provider::Noop, name)?;
        Ok(Rotation {
            previous: unpersisted(),
            current: unpersisted(),
        })
    }
}
