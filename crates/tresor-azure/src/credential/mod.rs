//! Azure credentials: each gets an access token for a scope, or says precisely why it could
//! not. [`CredentialError::Unavailable`] means "not configured here" (the chain moves on);
//! [`CredentialError::Failed`] means "configured, and it failed" (the chain stops there, as
//! `DefaultAzureCredential` does, so a broken workload identity is not masked by a later
//! credential).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use tresor_sdk::secret::SecretString;

mod azure_cli;
mod chain;
mod client_secret;
pub(crate) mod entra;
mod managed_identity;
mod workload_identity;

pub use azure_cli::AzureCliCredential;
pub use chain::{Attempt, ChainError, DefaultCredential, Outcome};
pub use client_secret::ClientSecretCredential;
pub use managed_identity::ManagedIdentityCredential;
pub use workload_identity::WorkloadIdentityCredential;
pub(crate) use workload_identity::missing_reason as missing_reason_for_doctor;

/// Entra ID's public cloud authority, when `AZURE_AUTHORITY_HOST` does not name another.
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
/// The Azure Instance Metadata Service, when `AZURE_POD_IDENTITY_AUTHORITY_HOST` does not
/// name another endpoint.
pub const DEFAULT_IMDS_HOST: &str = "http://169.254.169.254";

/// An access token and when it expires. `Debug` never shows the token.
#[derive(Clone)]
pub struct AccessToken {
    pub token: SecretString,
    pub expires_at: Instant,
}

impl AccessToken {
    pub fn new(token: SecretString, expires_in: Duration) -> Self {
        Self {
            token,
            expires_at: Instant::now() + expires_in,
        }
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[redacted]")
            .field(
                "expires_in",
                &self.expires_at.saturating_duration_since(Instant::now()),
            )
            .finish()
    }
}

/// Why a credential gave no token. The texts name variables, files, endpoints and Entra's
/// AADSTS errors with their fix; never a secret, an assertion or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// Not configured in this environment: the chain tries the next credential.
    #[error("{credential} unavailable: {reason}")]
    Unavailable {
        credential: &'static str,
        reason: String,
    },
    /// Configured, but getting a token failed: the chain stops.
    #[error("{credential} failed: {reason}")]
    Failed {
        credential: &'static str,
        reason: String,
    },
}

impl CredentialError {
    pub fn credential(&self) -> &'static str {
        match self {
            Self::Unavailable { credential, .. } | Self::Failed { credential, .. } => credential,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Self::Unavailable { reason, .. } | Self::Failed { reason, .. } => reason,
        }
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// Something that gives access tokens.
#[async_trait]
pub trait TokenCredential: Send + Sync + std::fmt::Debug {
    /// The credential's name in messages (`WorkloadIdentityCredential`, …).
    fn name(&self) -> &'static str;

    /// A token for `scope` (e.g. `https://vault.azure.net/.default`). `tenant` is the tenant a
    /// Key Vault challenge named; a credential bound to another tenant refuses it.
    async fn get_token(
        &self,
        scope: &str,
        tenant: Option<&str>,
    ) -> Result<AccessToken, CredentialError>;
}

/// What credentials need besides their environment variables.
#[derive(Debug, Clone)]
pub struct CredentialOptions {
    /// Overrides `AZURE_AUTHORITY_HOST` (else [`DEFAULT_AUTHORITY_HOST`]).
    pub authority_host: Option<String>,
    /// A CA (PEM) trusted instead of the system's roots for the token endpoint (tests).
    pub ca_pem: Option<String>,
    /// Overrides `AZURE_POD_IDENTITY_AUTHORITY_HOST` (else [`DEFAULT_IMDS_HOST`]).
    pub imds_host: Option<String>,
    /// How long the managed identity endpoint gets to answer before it counts as absent.
    pub imds_timeout: Duration,
    /// How long a token request or the Azure CLI may take.
    pub timeout: Duration,
    /// The `az` binary (else found on the environment's `PATH`).
    pub az_path: Option<std::path::PathBuf>,
}

impl Default for CredentialOptions {
    fn default() -> Self {
        Self {
            authority_host: None,
            ca_pem: None,
            imds_host: None,
            imds_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
            az_path: None,
        }
    }
}

impl CredentialOptions {
    pub(crate) fn authority(&self, env: &crate::Env) -> String {
        self.authority_host
            .clone()
            .or_else(|| env.get("AZURE_AUTHORITY_HOST").map(str::to_owned))
            .unwrap_or_else(|| DEFAULT_AUTHORITY_HOST.to_owned())
            .trim_end_matches('/')
            .to_owned()
    }
}

/// The tenant to ask: the credential's own; a challenge naming another is refused with the
/// fix (the vault lives in another tenant than the identity).
pub(crate) fn tenant_for(
    credential: &'static str,
    own: &str,
    challenged: Option<&str>,
) -> Result<String, CredentialError> {
    match challenged {
        Some(t) if !t.eq_ignore_ascii_case(own) => Err(CredentialError::Failed {
            credential,
            reason: format!(
                "the key vault's challenge names tenant {t}, but AZURE_TENANT_ID is {own}: \
                 use an identity of the vault's tenant (or set AZURE_TENANT_ID={t})"
            ),
        }),
        _ => Ok(own.to_owned()),
    }
}
