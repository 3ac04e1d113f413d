//! Choosing and configuring a provider from environment variables (seed 002's
//! `SECRET_STORE_PROVIDER` pattern). Every variable is listed in `docs/client.md`.
//!
//! | Variable | Provider | |
//! |---|---|---|
//! | `SECRET_STORE_PROVIDER` | all | `tresor`, `azure-keyvault` or `noop`; unset or empty: `noop` (with a warning) |
//! | `VAULT_ADDR` / `TRESOR_ADDR` | tresor | server address (required; `TRESOR_ADDR` wins) |
//! | `VAULT_CACERT` / `TRESOR_CACERT` | tresor | CA file (PEM) instead of the system's roots |
//! | `TRESOR_KV_MOUNT` | tresor | KV v2 mount, default `secret` |
//! | `TRESOR_PATH_PREFIX` | tresor | put before every name, default none |
//! | `TRESOR_AUTH_METHOD` | tresor | `token` (default), `kubernetes` or `jwt` |
//! | `VAULT_TOKEN` / `TRESOR_TOKEN` | tresor, token | the token (required) |
//! | `TRESOR_AUTH_MOUNT` | tresor, kubernetes/jwt | auth mount, default the method's name |
//! | `TRESOR_AUTH_ROLE` | tresor, kubernetes/jwt | role (required) |
//! | `TRESOR_KUBERNETES_TOKEN_FILE` | tresor, kubernetes | default the pod's service-account token |
//! | `TRESOR_JWT` or `TRESOR_JWT_FILE` | tresor, jwt | the JWT, or a file read at every login (exactly one) |
//! | `AZURE_KEYVAULT_URL` (or `AZURE_KEY_VAULT_URL`) | azure-keyvault | `https://<name>.vault.azure.net/` (required) |
//! | `AZURE_*` | azure-keyvault | the credential chain's variables (`docs/azure.md`) |

use std::path::PathBuf;
use std::sync::Arc;

use tresor_azure::{CredentialOptions, Env, KeyVaultOptions};
use tresor_sdk::secret::SecretString;

use crate::azure::AzureKeyVaultStore;
use crate::error::SecretStoreError;
use crate::noop::NoopStore;
use crate::store::{Provider, SecretStore};
use crate::tresor::{DEFAULT_KUBERNETES_TOKEN_FILE, JwtSource, TresorAuth, TresorStore};

/// What the environment cannot say: options for tests and unusual deployments.
#[derive(Debug, Clone, Default)]
pub struct EnvOverrides {
    /// Key Vault client options (CA, api-version, retries).
    pub keyvault: Option<KeyVaultOptions>,
    /// Azure credential options (authority host, CA, IMDS host).
    pub azure_credentials: Option<CredentialOptions>,
}

fn config(message: String) -> SecretStoreError {
    SecretStoreError::Config(message)
}

/// `primary` or else `fallback`.
fn either<'a>(env: &'a Env, primary: &str, fallback: &str) -> Option<&'a str> {
    env.get(primary).or_else(|| env.get(fallback))
}

fn required<'a>(env: &'a Env, name: &str, why: &str) -> Result<&'a str, SecretStoreError> {
    env.get(name)
        .ok_or_else(|| config(format!("{name} is not set ({why})")))
}

/// The provider `SECRET_STORE_PROVIDER` names (unset or empty: noop).
pub fn provider_from_env(env: &Env) -> Result<Provider, SecretStoreError> {
    match env.get("SECRET_STORE_PROVIDER") {
        Some(value) => value.parse(),
        None => Ok(Provider::Noop),
    }
}

/// A store configured from the process's environment.
pub async fn from_env() -> Result<Arc<dyn SecretStore>, SecretStoreError> {
    from_env_with(&Env::process(), EnvOverrides::default()).await
}

/// A store configured from `env` (see the module's table), with `overrides`.
pub async fn from_env_with(
    env: &Env,
    overrides: EnvOverrides,
) -> Result<Arc<dyn SecretStore>, SecretStoreError> {
    let provider = provider_from_env(env)?;
    Ok(match provider {
        Provider::Noop => {
            tracing::warn!(
                "secret store: noop (SECRET_STORE_PROVIDER is {}): secrets are neither read nor persisted",
                env.get("SECRET_STORE_PROVIDER")
                    .map_or("unset".to_owned(), |v| format!("{v:?}"))
            );
            Arc::new(NoopStore::new())
        }
        Provider::AzureKeyVault => Arc::new(azure_from_env(env, overrides)?),
        Provider::Tresor => Arc::new(tresor_builder_from_env(env)?.build().await?),
    })
}

fn azure_from_env(
    env: &Env,
    overrides: EnvOverrides,
) -> Result<AzureKeyVaultStore, SecretStoreError> {
    let url = match (
        env.get("AZURE_KEYVAULT_URL"),
        env.get("AZURE_KEY_VAULT_URL"),
    ) {
        (Some(a), Some(b)) if a.trim_end_matches('/') != b.trim_end_matches('/') => {
            return Err(config(format!(
                "AZURE_KEYVAULT_URL ({a}) and AZURE_KEY_VAULT_URL ({b}) name different vaults; set one"
            )));
        }
        (Some(url), _) | (None, Some(url)) => url,
        (None, None) => {
            return Err(config(
                "AZURE_KEYVAULT_URL is not set (the vault, https://<name>.vault.azure.net/)"
                    .to_owned(),
            ));
        }
    };
    let mut builder = AzureKeyVaultStore::builder(url).env(env.clone());
    if let Some(options) = overrides.keyvault {
        builder = builder.options(options);
    }
    if let Some(options) = overrides.azure_credentials {
        builder = builder.credential_options(options);
    }
    builder.build()
}

/// A [`TresorStore`] builder from `env` (not yet connected).
pub fn tresor_builder_from_env(
    env: &Env,
) -> Result<crate::tresor::TresorStoreBuilder, SecretStoreError> {
    let address = either(env, "TRESOR_ADDR", "VAULT_ADDR")
        .ok_or_else(|| config("VAULT_ADDR is not set (the tresor server's address)".to_owned()))?;
    let mut builder = TresorStore::builder(address);
    if let Some(file) = either(env, "TRESOR_CACERT", "VAULT_CACERT") {
        let pem = std::fs::read_to_string(file)
            .map_err(|e| config(format!("reading the CA file {file}: {e}")))?;
        builder = builder.ca_pem(pem);
    }
    if let Some(mount) = env.get("TRESOR_KV_MOUNT") {
        builder = builder.mount(mount);
    }
    if let Some(prefix) = env.get("TRESOR_PATH_PREFIX") {
        builder = builder.path_prefix(prefix);
    }
    let method = env.get("TRESOR_AUTH_METHOD").unwrap_or("token");
    let mount_for = |default: &str| {
        env.get("TRESOR_AUTH_MOUNT")
            .unwrap_or(default)
            .trim_matches('/')
            .to_owned()
    };
    let auth = match method.trim().to_ascii_lowercase().as_str() {
        "token" => TresorAuth::Token(SecretString::from(
            either(env, "TRESOR_TOKEN", "VAULT_TOKEN").ok_or_else(|| {
                config("VAULT_TOKEN is not set (TRESOR_AUTH_METHOD is token)".to_owned())
            })?,
        )),
        "kubernetes" => TresorAuth::Kubernetes {
            mount: mount_for("kubernetes"),
            role: required(env, "TRESOR_AUTH_ROLE", "the kubernetes auth role")?.to_owned(),
            token_file: PathBuf::from(
                env.get("TRESOR_KUBERNETES_TOKEN_FILE")
                    .unwrap_or(DEFAULT_KUBERNETES_TOKEN_FILE),
            ),
        },
        "jwt" => TresorAuth::Jwt {
            mount: mount_for("jwt"),
            role: required(env, "TRESOR_AUTH_ROLE", "the jwt auth role")?.to_owned(),
            jwt: match (env.get("TRESOR_JWT"), env.get("TRESOR_JWT_FILE")) {
                (Some(jwt), None) => JwtSource::Value(SecretString::from(jwt)),
                (None, Some(file)) => JwtSource::File(PathBuf::from(file)),
                (Some(_), Some(_)) => {
                    return Err(config(
                        "TRESOR_JWT and TRESOR_JWT_FILE are both set; set one".to_owned(),
                    ));
                }
                (None, None) => {
                    return Err(config(
                        "TRESOR_JWT or TRESOR_JWT_FILE must be set (TRESOR_AUTH_METHOD is jwt)"
                            .to_owned(),
                    ));
                }
            },
        },
        other => {
            return Err(config(format!(
                "unknown TRESOR_AUTH_METHOD {:?}: valid methods are token, kubernetes, jwt",
                crate::error::shown(other)
            )));
        }
    };
    Ok(builder.auth(auth))
}
