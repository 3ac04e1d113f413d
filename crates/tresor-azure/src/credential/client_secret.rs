//! A client secret of an application registration: `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
//! `AZURE_CLIENT_SECRET` (at `AZURE_AUTHORITY_HOST`).

use async_trait::async_trait;
use tresor_sdk::secret::SecretString;

use super::{AccessToken, CredentialError, CredentialOptions, TokenCredential, entra, tenant_for};
use crate::{Env, http};

const NAME: &str = "ClientSecretCredential";

/// An application's client secret. `Debug` never shows the secret.
pub struct ClientSecretCredential {
    client_id: String,
    tenant_id: String,
    secret: SecretString,
    authority: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for ClientSecretCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecretCredential")
            .field("client_id", &self.client_id)
            .field("tenant_id", &self.tenant_id)
            .field("secret", &self.secret)
            .field("authority", &self.authority)
            .finish()
    }
}

impl ClientSecretCredential {
    pub fn new(
        tenant_id: &str,
        client_id: &str,
        secret: SecretString,
        options: &CredentialOptions,
        env: &Env,
    ) -> Result<Self, CredentialError> {
        let http = http::client(options.ca_pem.as_deref(), options.timeout).map_err(|e| {
            CredentialError::Failed {
                credential: NAME,
                reason: e,
            }
        })?;
        Ok(Self {
            client_id: client_id.to_owned(),
            tenant_id: tenant_id.to_owned(),
            secret,
            authority: options.authority(env),
            http,
        })
    }

    /// From `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET`; unavailable (with
    /// the missing variables named) otherwise.
    pub fn from_env(env: &Env, options: &CredentialOptions) -> Result<Self, CredentialError> {
        let missing: Vec<&str> = ["AZURE_CLIENT_SECRET", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"]
            .into_iter()
            .filter(|v| env.get(v).is_none())
            .collect();
        if !missing.is_empty() {
            let mut reason = format!("{} not set", list(&missing));
            if missing.contains(&"AZURE_CLIENT_SECRET")
                && env.get("AZURE_CLIENT_CERTIFICATE_PATH").is_some()
            {
                reason.push_str(
                    " (AZURE_CLIENT_CERTIFICATE_PATH is set, but certificate credentials are not \
                     supported: use a client secret or workload identity)",
                );
            }
            return Err(CredentialError::Unavailable {
                credential: NAME,
                reason,
            });
        }
        Self::new(
            env.get("AZURE_TENANT_ID").unwrap_or_default(),
            env.get("AZURE_CLIENT_ID").unwrap_or_default(),
            SecretString::from(env.get("AZURE_CLIENT_SECRET").unwrap_or_default()),
            options,
            env,
        )
    }
}

fn list(vars: &[&str]) -> String {
    match vars {
        [one] => format!("{one} is"),
        _ => format!("{} are", vars.join(", ")),
    }
}

#[async_trait]
impl TokenCredential for ClientSecretCredential {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn get_token(
        &self,
        scope: &str,
        tenant: Option<&str>,
    ) -> Result<AccessToken, CredentialError> {
        let tenant = tenant_for(NAME, &self.tenant_id, tenant)?;
        let hint = |code: u64| match code {
            7000215 => Some(
                "AZURE_CLIENT_SECRET is not this application's secret value (the secret's ID \
                 instead of its value, or an expired or rotated secret)"
                    .to_owned(),
            ),
            7000222 => Some("the client secret has expired: create a new one".to_owned()),
            _ => entra::common_hint(code),
        };
        entra::request_token(
            NAME,
            &self.http,
            &self.authority,
            &tenant,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &self.client_id),
                ("scope", scope),
                ("client_secret", self.secret.expose()),
            ],
            &hint,
        )
        .await
    }
}
