//! [`SecretStoreError`]: one error type for every provider. Texts name the provider, the
//! operation, the secret's name and what the server said; never a secret value, a token or a
//! JWT (the tests in `tests/redaction.rs` hold every variant to that).

use tresor_azure::KeyVaultError;

/// The providers' names as `SECRET_STORE_PROVIDER` spells them.
pub const VALID_PROVIDERS: &str = "tresor, azure-keyvault, noop";

/// Why a secret store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SecretStoreError {
    /// `SECRET_STORE_PROVIDER` (or the builder) named no known provider.
    #[error("unknown secret store provider {given:?}: valid providers are {VALID_PROVIDERS}")]
    UnknownProvider { given: String },
    /// A setting is missing or malformed (environment variable or builder).
    #[error("secret store configuration: {0}")]
    Config(String),
    /// The name breaks the provider's naming rules; nothing was sent.
    #[error("invalid secret name {name:?} for provider {provider}: {rule}")]
    InvalidName {
        provider: &'static str,
        name: String,
        rule: &'static str,
    },
    #[error("{provider}: secret {name} not found")]
    NotFound {
        provider: &'static str,
        name: String,
    },
    /// A rotation lost a race: the secret changed between reading its version and writing.
    #[error("{provider}: {op} {name}: conflict: {message}")]
    Conflict {
        provider: &'static str,
        op: &'static str,
        name: String,
        message: String,
    },
    /// The store refused the credential (401/403, or a login that failed).
    #[error("{provider}: {op} {name}: permission denied ({status}): {message}")]
    PermissionDenied {
        provider: &'static str,
        op: &'static str,
        name: String,
        status: u16,
        message: String,
    },
    /// Logging in (or renewing the login) failed.
    #[error("{provider}: {method} login at auth/{mount}: {message}")]
    Login {
        provider: &'static str,
        method: &'static str,
        mount: String,
        message: String,
    },
    /// Any other answer the store gave.
    #[error("{provider}: {op} {name}: the server answered {status}: {message}")]
    Status {
        provider: &'static str,
        op: &'static str,
        name: String,
        status: u16,
        message: String,
    },
    /// The store could not be reached, or its answer could not be read.
    #[error("{provider}: {op} {name}: {message}")]
    Transport {
        provider: &'static str,
        op: &'static str,
        name: String,
        message: String,
    },
    /// The answer was not what the API documents (e.g. a KV secret without a `value` field).
    #[error("{provider}: {op} {name}: unexpected answer: {message}")]
    InvalidResponse {
        provider: &'static str,
        op: &'static str,
        name: String,
        message: String,
    },
    /// An Azure Key Vault error other than not-found/forbidden (its text holds Azure's code
    /// and message, never a value or a token).
    #[error("azure-keyvault: {0}")]
    KeyVault(#[source] KeyVaultError),
}

impl SecretStoreError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// The store refused the credential: a 401/403 from the store itself (not from the
    /// application's downstream service).
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Self::PermissionDenied { .. })
            || matches!(self, Self::KeyVault(e) if matches!(e.status(), Some(401 | 403)))
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
            || matches!(self, Self::KeyVault(e) if e.status() == Some(409))
    }
}

/// A name as it may appear in an error: at most 200 characters.
pub(crate) fn shown(name: &str) -> String {
    name.chars().take(200).collect()
}
