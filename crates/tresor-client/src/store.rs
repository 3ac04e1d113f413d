//! The [`SecretStore`] trait, what it returns, and each provider's naming rules.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use tresor_sdk::secret::SecretString;

use crate::error::{SecretStoreError, shown};

/// Which backend a store talks to (`SECRET_STORE_PROVIDER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Tresor, Vault or OpenBao over the Vault HTTP API (a KV v2 mount).
    Tresor,
    /// Azure Key Vault.
    AzureKeyVault,
    /// Nothing: every call warns, nothing is persisted, `get` answers not found.
    Noop,
}

impl Provider {
    /// The name `SECRET_STORE_PROVIDER` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tresor => "tresor",
            Self::AzureKeyVault => "azure-keyvault",
            Self::Noop => "noop",
        }
    }

    /// Checks `name` against this provider's rules (see [`validate_name`]).
    pub fn validate_name(self, name: &str) -> Result<(), SecretStoreError> {
        validate_name(self, name)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = SecretStoreError;

    /// `tresor`, `azure-keyvault` or `noop` (surrounding spaces ignored, case-insensitive);
    /// anything else is [`SecretStoreError::UnknownProvider`], which lists the valid ones.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tresor" => Ok(Self::Tresor),
            "azure-keyvault" => Ok(Self::AzureKeyVault),
            "noop" => Ok(Self::Noop),
            _ => Err(SecretStoreError::UnknownProvider { given: shown(s) }),
        }
    }
}

/// A secret's version as the provider names it: KV v2's version number (`"3"`) for tresor,
/// Key Vault's 32-hex-digit version id for azure-keyvault, `"0"` for noop (nothing stored).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(pub String);

impl Version {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A secret's value and the version it was read at. `Debug` shows the version only.
#[derive(Clone)]
pub struct Secret {
    pub value: SecretString,
    pub version: Version,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("value", &self.value)
            .field("version", &self.version)
            .finish()
    }
}

/// What [`SecretStore::rotate`] did: the version that was current and the one written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub previous: Version,
    pub current: Version,
}

/// Secrets by name. Every provider checks names against its own rules
/// ([`validate_name`]) before sending anything.
///
/// - `get`: the current value; [`SecretStoreError::NotFound`] when there is none.
/// - `set`: writes a new version (creating the secret when absent); returns that version.
/// - `delete`: removes the name (what that keeps is per provider: tresor deletes every version
///   and the metadata; Key Vault soft-deletes, recoverable for the vault's retention period).
/// - `rotate`: writes a new value **for a secret that exists** and returns the version that
///   was current and the new one; a missing secret is [`SecretStoreError::NotFound`]. The old
///   version stays readable by version in both real providers (KV v2 keeps versions, Key
///   Vault versions every write). tresor writes with check-and-set on the version it read, so
///   a concurrent writer wins and the rotation fails with [`SecretStoreError::Conflict`]; Key
///   Vault has no conditional write, so there the last writer wins.
#[async_trait]
pub trait SecretStore: Send + Sync + fmt::Debug {
    fn provider(&self) -> Provider;

    /// Checks a name against the provider's rules.
    fn validate_name(&self, name: &str) -> Result<(), SecretStoreError> {
        validate_name(self.provider(), name)
    }

    async fn get(&self, name: &str) -> Result<Secret, SecretStoreError>;

    async fn set(&self, name: &str, value: &SecretString) -> Result<Version, SecretStoreError>;

    async fn delete(&self, name: &str) -> Result<(), SecretStoreError>;

    async fn rotate(
        &self,
        name: &str,
        new_value: &SecretString,
    ) -> Result<Rotation, SecretStoreError>;
}

const KEY_VAULT_RULE: &str = "Key Vault names are 1 to 127 ASCII letters, digits and hyphens";
const TRESOR_RULE: &str = "tresor names are path segments separated by single '/', each of ASCII letters, digits, '-', '_' and '.', not '.' or '..', at most 512 characters in all";

/// Checks `name` against `provider`'s rules:
///
/// - azure-keyvault (and noop, so code that runs on noop in development is not surprised by
///   Key Vault in production): `^[0-9a-zA-Z-]{1,127}$`.
/// - tresor: a Vault path below the mount and prefix: segments of `[A-Za-z0-9._-]` separated
///   by single `/`, none empty, `.` or `..`, no leading or trailing `/`, at most 512
///   characters. (Vault accepts more characters; these are the ones that need no URL escaping
///   and mean the same thing in every client and policy glob.)
pub fn validate_name(provider: Provider, name: &str) -> Result<(), SecretStoreError> {
    let (ok, rule) = match provider {
        Provider::AzureKeyVault | Provider::Noop => (
            (1..=127).contains(&name.len())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            KEY_VAULT_RULE,
        ),
        Provider::Tresor => (valid_vault_path(name), TRESOR_RULE),
    };
    if ok {
        Ok(())
    } else {
        Err(SecretStoreError::InvalidName {
            provider: provider.as_str(),
            name: shown(name),
            rule,
        })
    }
}

/// A relative Vault path of safe segments (see [`validate_name`]).
pub(crate) fn valid_vault_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 512
        && path.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_vault_names_are_letters_digits_and_hyphens() {
        for ok in [
            "a",
            "instance-507f1f77bcf86cd799439011-dburi",
            &"x".repeat(127),
        ] {
            assert!(validate_name(Provider::AzureKeyVault, ok).is_ok(), "{ok}");
            assert!(validate_name(Provider::Noop, ok).is_ok(), "{ok}");
        }
        for bad in ["", "a_b", "a.b", "a/b", "é", &"x".repeat(128)] {
            let err = validate_name(Provider::AzureKeyVault, bad).unwrap_err();
            assert!(err.to_string().contains("1 to 127"), "{err}");
        }
    }

    #[test]
    fn tresor_names_are_safe_path_segments() {
        for ok in ["a", "apps/console/db-uri", "GHCR_TOKEN", "v1.2", "a/b/c"] {
            assert!(validate_name(Provider::Tresor, ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/a", "a/", "a//b", "a/../b", "..", ".", "a b", "a?b", "a%2fb", "a+b", "a*",
        ] {
            assert!(validate_name(Provider::Tresor, bad).is_err(), "{bad}");
        }
        assert!(validate_name(Provider::Tresor, &"x".repeat(513)).is_err());
    }

    #[test]
    fn an_unknown_provider_lists_the_valid_ones() {
        assert_eq!("tresor".parse::<Provider>().unwrap(), Provider::Tresor);
        assert_eq!(
            " Azure-KeyVault ".parse::<Provider>().unwrap(),
            Provider::AzureKeyVault
        );
        assert_eq!("noop".parse::<Provider>().unwrap(), Provider::Noop);
        let err = "vault".parse::<Provider>().unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown secret store provider \"vault\": valid providers are tresor, azure-keyvault, noop"
        );
    }
}
