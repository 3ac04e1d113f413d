//! Managed identity through the Azure Instance Metadata Service (IMDS):
//! `GET {host}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=…` with
//! `Metadata: true`. The host is `AZURE_POD_IDENTITY_AUTHORITY_HOST` (azure-identity's
//! override) or `169.254.169.254`; a user-assigned identity is chosen with `AZURE_CLIENT_ID`.
//!
//! Two kinds of "unavailable" are told apart: nothing answered within the short timeout (not
//! on Azure, or the pod cannot reach the node's IMDS), and IMDS answered but has no such
//! identity. Other refusals are failures.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tresor_sdk::secret::SecretString;

use super::{AccessToken, CredentialError, CredentialOptions, DEFAULT_IMDS_HOST, TokenCredential};
use crate::{Env, http};

const NAME: &str = "ManagedIdentityCredential";

/// A managed identity from IMDS.
#[derive(Debug)]
pub struct ManagedIdentityCredential {
    host: String,
    client_id: Option<String>,
    timeout: Duration,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct ImdsToken {
    access_token: SecretString,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct ImdsError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

impl ManagedIdentityCredential {
    pub fn from_env(env: &Env, options: &CredentialOptions) -> Result<Self, CredentialError> {
        let host = options
            .imds_host
            .clone()
            .or_else(|| {
                env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST")
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| DEFAULT_IMDS_HOST.to_owned())
            .trim_end_matches('/')
            .to_owned();
        let http =
            http::client_with(None, options.imds_timeout, options.timeout, false).map_err(|e| {
                CredentialError::Failed {
                    credential: NAME,
                    reason: e,
                }
            })?;
        Ok(Self {
            host,
            client_id: env.get("AZURE_CLIENT_ID").map(str::to_owned),
            timeout: options.imds_timeout,
            http,
        })
    }
}

#[async_trait]
impl TokenCredential for ManagedIdentityCredential {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn get_token(
        &self,
        scope: &str,
        _tenant: Option<&str>,
    ) -> Result<AccessToken, CredentialError> {
        let resource = scope.trim_end_matches("/.default");
        let mut url = url::Url::parse(&format!("{}/metadata/identity/oauth2/token", self.host))
            .map_err(|e| CredentialError::Failed {
                credential: NAME,
                reason: format!("the IMDS host {} is not a URL: {e}", self.host),
            })?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("api-version", "2018-02-01");
            query.append_pair("resource", resource);
            if let Some(id) = &self.client_id {
                query.append_pair("client_id", id);
            }
        }
        let response = self
            .http
            .get(url)
            .header("Metadata", "true")
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    CredentialError::Unavailable {
                        credential: NAME,
                        reason: format!(
                            "no managed identity endpoint (IMDS) answered at {} within {:?}: not \
                             on an Azure VM, scale set or AKS node with a managed identity, or \
                             the pod cannot reach it ({})",
                            self.host,
                            self.timeout,
                            http::describe(&e)
                        ),
                    }
                } else {
                    CredentialError::Failed {
                        credential: NAME,
                        reason: format!(
                            "IMDS at {} accepted the connection but gave no token: {}",
                            self.host,
                            http::describe(&e)
                        ),
                    }
                }
            })?;
        let status = response.status().as_u16();
        let bytes = http::body(response)
            .await
            .map_err(|e| CredentialError::Failed {
                credential: NAME,
                reason: format!("IMDS at {}: {e}", self.host),
            })?;
        if status == 200 {
            let token: ImdsToken =
                serde_json::from_slice(&bytes).map_err(|_| CredentialError::Failed {
                    credential: NAME,
                    reason: format!("IMDS at {} answered 200 without an access_token", self.host),
                })?;
            let lifetime = super::entra::seconds(token.expires_in.as_ref()).unwrap_or(3600);
            return Ok(AccessToken::new(
                token.access_token,
                Duration::from_secs(lifetime),
            ));
        }
        let Ok(error) = serde_json::from_slice::<ImdsError>(&bytes) else {
            return Err(CredentialError::Unavailable {
                credential: NAME,
                reason: format!(
                    "something answered {status} at {} but not as IMDS does (no JSON error): \
                     not on Azure, or a proxy or another service holds that address",
                    self.host
                ),
            });
        };
        let said = if error.error_description.is_empty() {
            error.error.clone()
        } else {
            error.error_description.clone()
        };
        if status == 400 && said.contains("Identity not found") {
            return Err(CredentialError::Unavailable {
                credential: NAME,
                reason: format!(
                    "IMDS at {} answered but refused: \"{said}\" — {}",
                    self.host,
                    match &self.client_id {
                        Some(id) => format!(
                            "no managed identity with client id {id} (AZURE_CLIENT_ID) is \
                             assigned to this VM or node"
                        ),
                        None => "no managed identity is assigned to this VM or node".to_owned(),
                    }
                ),
            });
        }
        Err(CredentialError::Failed {
            credential: NAME,
            reason: format!(
                "IMDS at {} refused the token request ({status}): {said}",
                self.host
            ),
        })
    }
}
