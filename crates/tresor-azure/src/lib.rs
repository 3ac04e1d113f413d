//! Azure Key Vault secrets over the REST API, and an Azure credential chain whose every
//! "unavailable" says why.
//!
//! # Layout
//!
//! - [`keyvault`]: [`KeyVaultClient`] — the Key Vault secrets REST API (api-version 7.5 by
//!   default; 7.4 and later): list (paging through `nextLink`, refusing a `nextLink` to another
//!   host), get (latest or a version), set, delete (soft), get/list deleted, recover, purge; the
//!   401 challenge flow and a token cache; values as zeroizing [`tresor_sdk::secret::SecretString`].
//! - [`challenge`]: parsing `WWW-Authenticate: Bearer authorization=…, resource=…`.
//! - [`retry`]: bounded retries with exponential backoff on 408/429/5xx and transport errors,
//!   honouring `Retry-After` (seconds or HTTP-date) and `retry-after-ms`.
//! - [`credential`]: the [`TokenCredential`] trait and the credentials of the chain, in order:
//!   workload identity (federated token file → client assertion), client secret, managed
//!   identity (IMDS), Azure CLI; [`DefaultCredential`] (the chain); `entra` (the token
//!   endpoint and its AADSTS errors, with the fix for the common ones).
//! - [`doctor`]: every credential's verdict and the workload-identity prerequisites a pod can
//!   check, each with its fix.
//! - [`env`](mod@env): [`Env`], a snapshot of the environment variables (tests give their own).
//! - `http`: the reqwest client (rustls with ring; the given CA or the system's roots) and
//!   bounded body reads.
//! - `jwt`: decoding a JWT's claims without verifying (for diagnostics only).
//!
//! Nothing here prints, logs or puts into an error a secret value, a client secret, a client
//! assertion or an access token; `Debug` of every type holding one is redacted.

pub mod challenge;
pub mod credential;
pub mod doctor;
pub mod env;
mod http;
mod jwt;
pub mod keyvault;
pub mod retry;

pub use credential::{
    AccessToken, AzureCliCredential, ClientSecretCredential, CredentialError, CredentialOptions,
    DefaultCredential, ManagedIdentityCredential, TokenCredential, WorkloadIdentityCredential,
};
pub use env::Env;
pub use keyvault::{
    DeletedSecret, KeyVaultClient, KeyVaultError, KeyVaultOptions, Secret, SecretProperties,
};
pub use retry::RetryPolicy;
