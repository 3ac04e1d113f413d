//! What `tresor bootstrap doctor` reports about Azure: every credential's verdict on its own,
//! and the workload-identity prerequisites that can be checked from inside a pod, each with
//! its fix. The federated token's claims are decoded without verifying (to show which
//! issuer and subject the identity's federated credential must name); no token is printed.

use std::sync::Arc;

use crate::credential::{Attempt, CredentialOptions, DefaultCredential, Outcome};
use crate::jwt;
use crate::keyvault::{KeyVaultClient, KeyVaultError, KeyVaultOptions};
use crate::{Env, TokenCredential};

/// The audience Entra ID expects in a federated token.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
/// The scope of Key Vault tokens.
pub const KEY_VAULT_SCOPE: &str = "https://vault.azure.net/.default";

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Warn,
    Fail,
    /// Not checkable here (an earlier prerequisite failed, or nothing to check against).
    Skip,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Pass => "ok",
            Self::Warn => "warn",
            Self::Fail => "FAIL",
            Self::Skip => "skip",
        })
    }
}

/// One prerequisite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// A stable identifier (`wi.token-file`, …).
    pub id: &'static str,
    pub status: Status,
    pub detail: String,
    /// What to do when it is not `Pass`.
    pub fix: Option<String>,
}

/// Everything the doctor found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Each credential tried on its own, in the chain's order.
    pub credentials: Vec<Attempt>,
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether some credential gave a token and no check failed.
    pub fn healthy(&self) -> bool {
        self.credentials.iter().any(|a| a.outcome == Outcome::Token)
            && self.checks.iter().all(|c| c.status != Status::Fail)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Azure credentials (in the chain's order):")?;
        for a in &self.credentials {
            match &a.outcome {
                Outcome::Token => writeln!(f, "  ok    {}: gave a token", a.credential)?,
                Outcome::Unavailable(r) => {
                    writeln!(f, "  --    {}: unavailable: {r}", a.credential)?
                }
                Outcome::Failed(r) => writeln!(f, "  FAIL  {}: {r}", a.credential)?,
                Outcome::NotTried => writeln!(f, "  --    {}: not tried", a.credential)?,
            }
        }
        writeln!(f, "Workload identity prerequisites:")?;
        for c in &self.checks {
            writeln!(f, "  {:<5} {}: {}", c.status.to_string(), c.id, c.detail)?;
            if let Some(fix) = &c.fix {
                writeln!(f, "        fix: {fix}")?;
            }
        }
        Ok(())
    }
}

fn check(id: &'static str, status: Status, detail: String, fix: Option<String>) -> Check {
    Check {
        id,
        status,
        detail,
        fix,
    }
}

/// The workload-identity prerequisites visible from inside a pod: the variables the webhook
/// injects (evidence of the pod label and the service account annotation), the projected
/// token file, its claims (issuer, subject, audience, expiry), and the federated credential
/// the identity needs for that issuer and subject.
pub fn workload_identity_checks(env: &Env, now_unix: i64) -> Vec<Check> {
    let mut out = Vec::new();
    let token_file = env.get("AZURE_FEDERATED_TOKEN_FILE");
    out.push(match token_file {
        Some(f) => check(
            "wi.pod-label",
            Status::Pass,
            format!("AZURE_FEDERATED_TOKEN_FILE={f} (injected by the Workload Identity webhook)"),
            None,
        ),
        None => check(
            "wi.pod-label",
            Status::Fail,
            crate::credential::missing_reason_for_doctor("AZURE_FEDERATED_TOKEN_FILE"),
            Some(
                "label the pod template azure.workload.identity/use: \"true\" (and check the \
                 azure-workload-identity webhook runs: kubectl get pods -n \
                 azure-workload-identity-system)"
                    .to_owned(),
            ),
        ),
    });
    let client_id = env.get("AZURE_CLIENT_ID");
    out.push(match client_id {
        Some(id) => check(
            "wi.service-account-annotation",
            Status::Pass,
            format!("AZURE_CLIENT_ID={id}"),
            None,
        ),
        None => check(
            "wi.service-account-annotation",
            Status::Fail,
            "AZURE_CLIENT_ID is not set".to_owned(),
            Some(
                "kubectl annotate serviceaccount <sa> -n <ns> \
                 azure.workload.identity/client-id=<client id of the managed identity>"
                    .to_owned(),
            ),
        ),
    });
    out.push(match env.get("AZURE_TENANT_ID") {
        Some(t) => check(
            "wi.tenant",
            Status::Pass,
            format!("AZURE_TENANT_ID={t}"),
            None,
        ),
        None => check(
            "wi.tenant",
            Status::Fail,
            "AZURE_TENANT_ID is not set".to_owned(),
            Some(
                "annotate the service account azure.workload.identity/tenant-id=<tenant>, or set \
                 AZURE_TENANT_ID in the pod spec"
                    .to_owned(),
            ),
        ),
    });
    out.push(match env.get("AZURE_AUTHORITY_HOST") {
        Some(h) => check(
            "wi.authority",
            Status::Pass,
            format!("AZURE_AUTHORITY_HOST={h}"),
            None,
        ),
        None => check(
            "wi.authority",
            Status::Warn,
            format!(
                "AZURE_AUTHORITY_HOST is not set: {} is used",
                crate::credential::DEFAULT_AUTHORITY_HOST
            ),
            Some("the webhook sets it; set it only for a sovereign cloud".to_owned()),
        ),
    });
    let Some(path) = token_file else {
        out.push(check(
            "wi.token-file",
            Status::Skip,
            "no token file to read".to_owned(),
            None,
        ));
        return out;
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => tresor_sdk::secret::SecretString::new(t.trim().to_owned()),
        Err(e) => {
            out.push(check(
                "wi.token-file",
                Status::Fail,
                format!("{path} cannot be read: {e}"),
                Some(
                    "the projected service account token volume (azure-identity-token) is not \
                     mounted: the webhook adds it to labelled pods created after it started; \
                     recreate the pod"
                        .to_owned(),
                ),
            ));
            return out;
        }
    };
    out.push(check(
        "wi.token-file",
        Status::Pass,
        format!("{path} is readable ({} bytes)", text.expose().len()),
        None,
    ));
    let claims = match jwt::decode_unverified(text.expose()) {
        Ok(c) => c,
        Err(e) => {
            out.push(check(
                "wi.token-claims",
                Status::Fail,
                format!("{path}: {e}"),
                Some("the file must hold the projected service account token (a JWT)".to_owned()),
            ));
            return out;
        }
    };
    let iss = claims.iss.clone().unwrap_or_default();
    let sub = claims.sub.clone().unwrap_or_default();
    let mut problems = Vec::new();
    if !claims.aud.iter().any(|a| a == TOKEN_EXCHANGE_AUDIENCE) {
        problems.push(format!(
            "its audience {:?} lacks {TOKEN_EXCHANGE_AUDIENCE}",
            claims.aud
        ));
    }
    if let Some(exp) = claims.exp
        && exp <= now_unix
    {
        problems.push(format!("it expired {} s ago", now_unix - exp));
    }
    out.push(check(
        "wi.token-claims",
        if problems.is_empty() {
            Status::Pass
        } else {
            Status::Fail
        },
        format!(
            "iss={iss} sub={sub} aud={}{}",
            claims.aud.join(","),
            if problems.is_empty() {
                String::new()
            } else {
                format!(": {}", problems.join("; "))
            }
        ),
        (!problems.is_empty()).then(|| {
            "the webhook projects a token for api://AzureADTokenExchange that the kubelet \
             rotates: recreate the pod, and do not override the azure-identity-token volume"
                .to_owned()
        }),
    ));
    let service_account = sub
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'));
    let fix = format!(
        "az identity federated-credential create --name <name> --identity-name <identity> \
         --resource-group <rg> --issuer {iss} --subject {sub} --audience \
         {TOKEN_EXCHANGE_AUDIENCE}"
    );
    out.push(match service_account {
        Some((ns, sa)) => check(
            "wi.federated-credential-subject",
            Status::Pass,
            format!(
                "the identity {} needs a federated credential with issuer {iss} and subject \
                 system:serviceaccount:{ns}:{sa} (exact, case-sensitive); a token exchange \
                 refused with AADSTS700213 means it has none",
                client_id.unwrap_or("<AZURE_CLIENT_ID>")
            ),
            Some(fix),
        ),
        None => check(
            "wi.federated-credential-subject",
            Status::Warn,
            format!("the token's subject {sub:?} is not system:serviceaccount:<ns>:<sa>"),
            Some(fix),
        ),
    });
    out
}

/// The full report: each credential on its own, the workload-identity checks, and, when a
/// vault URL is given and a credential works, whether the identity may list the vault's
/// secrets (the role assignment).
pub async fn doctor(
    env: &Env,
    options: &CredentialOptions,
    vault: Option<(&str, KeyVaultOptions)>,
) -> Report {
    let chain = Arc::new(DefaultCredential::from_env(env, options));
    let credentials = chain.try_each(KEY_VAULT_SCOPE, None).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default();
    let mut checks = workload_identity_checks(env, now);
    let working = credentials.iter().any(|a| a.outcome == Outcome::Token);
    checks.push(match vault {
        None => check(
            "role-assignment",
            Status::Skip,
            "no vault URL given".to_owned(),
            None,
        ),
        Some(_) if !working => check(
            "role-assignment",
            Status::Skip,
            "no credential gave a token".to_owned(),
            None,
        ),
        Some((url, kv_options)) => role_assignment(env, chain, url, kv_options).await,
    });
    Report {
        credentials,
        checks,
    }
}

async fn role_assignment(
    env: &Env,
    chain: Arc<DefaultCredential>,
    url: &str,
    options: KeyVaultOptions,
) -> Check {
    let fix = format!(
        "az role assignment create --role \"Key Vault Secrets User\" --assignee {} --scope \
         $(az keyvault show --name <vault> --query id -o tsv)",
        env.get("AZURE_CLIENT_ID").unwrap_or("<client id>")
    );
    let credential: Arc<dyn TokenCredential> = chain;
    let client = match KeyVaultClient::new(url, credential, options) {
        Ok(c) => c,
        Err(e) => return check("role-assignment", Status::Fail, e.to_string(), None),
    };
    match client.list_secrets().await {
        Ok(list) => {
            let probe = match list.first() {
                None => {
                    return check(
                        "role-assignment",
                        Status::Pass,
                        format!("{url}: may list secrets (there are none to read)"),
                        None,
                    );
                }
                Some(p) => p.name.clone(),
            };
            match client.get_secret(&probe, None).await {
                Ok(_) => check(
                    "role-assignment",
                    Status::Pass,
                    format!("{url}: may list and read secrets"),
                    None,
                ),
                Err(e @ KeyVaultError::Forbidden { .. }) => check(
                    "role-assignment",
                    Status::Fail,
                    format!("{url}: may list but not read secrets: {e}"),
                    Some(fix),
                ),
                Err(e) => check("role-assignment", Status::Fail, e.to_string(), None),
            }
        }
        Err(e @ KeyVaultError::Forbidden { .. }) => {
            check("role-assignment", Status::Fail, e.to_string(), Some(fix))
        }
        Err(e) => check("role-assignment", Status::Fail, e.to_string(), None),
    }
}
