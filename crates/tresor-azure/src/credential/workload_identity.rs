//! Workload identity: the Kubernetes service account token the Azure Workload Identity webhook
//! projects into the pod (`AZURE_FEDERATED_TOKEN_FILE`) is exchanged at Entra ID for an access
//! token, as a `client_assertion` of the application or managed identity `AZURE_CLIENT_ID` in
//! `AZURE_TENANT_ID`, at `AZURE_AUTHORITY_HOST`. The file is read at every token request (the
//! kubelet rotates it).

use async_trait::async_trait;

use super::{AccessToken, CredentialError, CredentialOptions, TokenCredential, entra, tenant_for};
use crate::{Env, http, jwt};

const NAME: &str = "WorkloadIdentityCredential";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Exchanges a federated (Kubernetes) token for an Entra ID access token.
#[derive(Debug)]
pub struct WorkloadIdentityCredential {
    client_id: String,
    tenant_id: String,
    token_file: std::path::PathBuf,
    authority: String,
    http: reqwest::Client,
}

/// The reason each missing variable gives, with what sets it in a pod.
pub(crate) fn missing_reason(var: &str) -> String {
    match var {
        "AZURE_FEDERATED_TOKEN_FILE" => {
            "AZURE_FEDERATED_TOKEN_FILE is not set: the pod is missing the label \
             azure.workload.identity/use=\"true\" or the service account the annotation \
             azure.workload.identity/client-id, or the Azure Workload Identity webhook is not \
             running (it injects this variable and the projected token)"
                .to_owned()
        }
        "AZURE_CLIENT_ID" => "AZURE_CLIENT_ID is not set: annotate the service account with \
             azure.workload.identity/client-id=<client id of the managed identity or app>"
            .to_owned(),
        "AZURE_TENANT_ID" => "AZURE_TENANT_ID is not set: the webhook sets it from the cluster's \
             tenant; annotate the service account with azure.workload.identity/tenant-id=<tenant> \
             or set it in the pod spec"
            .to_owned(),
        other => format!("{other} is not set"),
    }
}

impl WorkloadIdentityCredential {
    /// From `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE` and
    /// `AZURE_AUTHORITY_HOST`; unavailable (with every missing variable named) otherwise.
    pub fn from_env(env: &Env, options: &CredentialOptions) -> Result<Self, CredentialError> {
        let unavailable = |reason: String| CredentialError::Unavailable {
            credential: NAME,
            reason,
        };
        let missing: Vec<String> = [
            "AZURE_FEDERATED_TOKEN_FILE",
            "AZURE_CLIENT_ID",
            "AZURE_TENANT_ID",
        ]
        .iter()
        .filter(|v| env.get(v).is_none())
        .map(|v| missing_reason(v))
        .collect();
        if !missing.is_empty() {
            return Err(unavailable(missing.join("; ")));
        }
        let http = http::client(options.ca_pem.as_deref(), options.timeout).map_err(|e| {
            CredentialError::Failed {
                credential: NAME,
                reason: e,
            }
        })?;
        Ok(Self {
            client_id: env.get("AZURE_CLIENT_ID").unwrap_or_default().to_owned(),
            tenant_id: env.get("AZURE_TENANT_ID").unwrap_or_default().to_owned(),
            token_file: env
                .get("AZURE_FEDERATED_TOKEN_FILE")
                .unwrap_or_default()
                .into(),
            authority: options.authority(env),
            http,
        })
    }
}

#[async_trait]
impl TokenCredential for WorkloadIdentityCredential {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn get_token(
        &self,
        scope: &str,
        tenant: Option<&str>,
    ) -> Result<AccessToken, CredentialError> {
        let failed = |reason: String| CredentialError::Failed {
            credential: NAME,
            reason,
        };
        let tenant = tenant_for(NAME, &self.tenant_id, tenant)?;
        let file = self.token_file.display().to_string();
        let assertion = tresor_sdk::secret::SecretString::new(
            tokio::fs::read_to_string(&self.token_file)
                .await
                .map_err(|e| {
                    failed(format!(
                        "AZURE_FEDERATED_TOKEN_FILE={file} cannot be read: {e} (the projected \
                         service account token volume azure-identity-token is not mounted)"
                    ))
                })?
                .trim()
                .to_owned(),
        );
        if assertion.is_empty() {
            return Err(failed(format!(
                "AZURE_FEDERATED_TOKEN_FILE={file} is empty"
            )));
        }
        let claims = jwt::decode_unverified(assertion.expose())
            .map_err(|e| failed(format!("AZURE_FEDERATED_TOKEN_FILE={file}: {e}")))?;
        let client_id = self.client_id.clone();
        let hint = move |code: u64| -> Option<String> {
            let sub = claims.sub.as_deref().unwrap_or("(none)");
            let iss = claims.iss.as_deref().unwrap_or("(none)");
            match code {
                700213 | 700211 | 70021 => Some(format!(
                    "the token's issuer is {iss} and its subject {sub}: the identity \
                     {client_id} needs a federated credential with exactly that issuer and \
                     subject and the audience api://AzureADTokenExchange (az identity \
                     federated-credential create --issuer {iss} --subject {sub} --audience \
                     api://AzureADTokenExchange …)"
                )),
                700024 => Some(
                    "the projected token has expired: the kubelet should have rotated it; \
                     check the pod's azure-identity-token volume"
                        .to_owned(),
                ),
                _ => entra::common_hint(code),
            }
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
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", assertion.expose()),
            ],
            &hint,
        )
        .await
    }
}
