//! The Azure CLI's signed-in account: `az account get-access-token --output json --resource
//! <resource> [--tenant <tenant>]`. The binary may be absent (said so), the user may not be
//! signed in (said so, with `az login`).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::Deserialize;
use tresor_sdk::secret::SecretString;

use super::{AccessToken, CredentialError, CredentialOptions, TokenCredential};
use crate::Env;

const NAME: &str = "AzureCliCredential";

/// Tokens from `az account get-access-token`.
#[derive(Debug)]
pub struct AzureCliCredential {
    az: Result<PathBuf, String>,
    timeout: Duration,
}

#[derive(Deserialize)]
struct CliToken {
    #[serde(rename = "accessToken")]
    access_token: SecretString,
    /// Unix seconds (az 2.54 and later).
    #[serde(default)]
    expires_on: Option<serde_json::Value>,
}

impl AzureCliCredential {
    pub fn from_env(env: &Env, options: &CredentialOptions) -> Self {
        let az = match &options.az_path {
            Some(p) => Ok(p.clone()),
            None => find_on_path(env.get("PATH").unwrap_or_default(), "az").ok_or_else(|| {
                "the Azure CLI (az) is not installed: no az on PATH (install it, or use another \
                 credential)"
                    .to_owned()
            }),
        };
        Self {
            az,
            timeout: options.timeout,
        }
    }
}

fn find_on_path(path: &str, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[async_trait]
impl TokenCredential for AzureCliCredential {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn get_token(
        &self,
        scope: &str,
        tenant: Option<&str>,
    ) -> Result<AccessToken, CredentialError> {
        let unavailable = |reason: String| CredentialError::Unavailable {
            credential: NAME,
            reason,
        };
        let failed = |reason: String| CredentialError::Failed {
            credential: NAME,
            reason,
        };
        let az = self.az.as_ref().map_err(|e| unavailable(e.clone()))?;
        let resource = scope.trim_end_matches("/.default");
        let mut cmd = tokio::process::Command::new(az);
        cmd.args([
            "account",
            "get-access-token",
            "--output",
            "json",
            "--resource",
            resource,
        ]);
        if let Some(t) = tenant {
            cmd.args(["--tenant", t]);
        }
        cmd.stdin(std::process::Stdio::null()).kill_on_drop(true);
        let output = match tokio::time::timeout(self.timeout, cmd.output()).await {
            Err(_) => {
                return Err(failed(format!(
                    "{} account get-access-token did not finish within {:?}",
                    az.display(),
                    self.timeout
                )));
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(unavailable(format!(
                    "the Azure CLI (az) is not installed: {} does not exist",
                    az.display()
                )));
            }
            Ok(Err(e)) => return Err(failed(format!("running {}: {e}", az.display()))),
            Ok(Ok(o)) => o,
        };
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let first: String = stderr
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("(no message)")
                .chars()
                .take(300)
                .collect();
            if stderr.contains("az login") {
                return Err(unavailable(format!(
                    "the Azure CLI is not signed in: run az login ({first})"
                )));
            }
            return Err(failed(format!(
                "az account get-access-token exited with {}: {first}",
                output.status
            )));
        }
        let token: CliToken = serde_json::from_slice(&output.stdout).map_err(|_| {
            failed("az account get-access-token printed no accessToken JSON".to_owned())
        })?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let expires_in = super::entra::seconds(token.expires_on.as_ref())
            .map(|on| on.saturating_sub(now))
            .unwrap_or(300);
        Ok(AccessToken::new(
            token.access_token,
            Duration::from_secs(expires_in),
        ))
    }
}
