//! The Entra ID token endpoint (`{authority}/{tenant}/oauth2/v2.0/token`, client credentials
//! grant) and its errors: Entra's AADSTS description, shortened to the sentence before the
//! trace ids, with the fix for the common ones.

use std::time::Duration;

use serde::Deserialize;
use tresor_sdk::secret::SecretString;

use super::{AccessToken, CredentialError};
use crate::http;
use crate::retry::{RetryPolicy, retry_after, retryable_status};

#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<u64>,
}

/// `expires_in` as a number or a string (IMDS gives strings).
pub(crate) fn seconds(v: Option<&serde_json::Value>) -> Option<u64> {
    match v? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Posts a client-credentials form; `form` holds the client secret or assertion and is never
/// put into an error.
pub(crate) async fn request_token(
    credential: &'static str,
    client: &reqwest::Client,
    authority: &str,
    tenant: &str,
    form: &[(&str, &str)],
    hint: &(dyn Fn(u64) -> Option<String> + Sync),
) -> Result<AccessToken, CredentialError> {
    let url = format!("{authority}/{tenant}/oauth2/v2.0/token");
    let failed = |reason: String| CredentialError::Failed { credential, reason };
    let policy = RetryPolicy {
        max_retries: 2,
        initial_delay: Duration::from_millis(500),
        ..RetryPolicy::default()
    };
    let mut retry = 0;
    loop {
        // The form holds the client secret or assertion: encoded here, never logged.
        let body = tresor_sdk::secret::SecretString::new(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish(),
        );
        let response = client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.expose().to_owned())
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(_) if retry < policy.max_retries => {
                tokio::time::sleep(policy.backoff(retry)).await;
                retry += 1;
                continue;
            }
            Err(e) => {
                return Err(failed(format!(
                    "the token endpoint {url} did not answer: {}",
                    http::describe(&e)
                )));
            }
        };
        let status = response.status().as_u16();
        if retryable_status(status) && retry < policy.max_retries {
            let wait = retry_after(response.headers(), std::time::SystemTime::now())
                .unwrap_or_else(|| policy.backoff(retry))
                .min(policy.max_retry_after);
            tokio::time::sleep(wait).await;
            retry += 1;
            continue;
        }
        let bytes = http::body(response)
            .await
            .map_err(|e| failed(format!("{url}: {e}")))?;
        if status == 200 {
            let parsed: TokenResponse = serde_json::from_slice(&bytes).map_err(|_| {
                failed(format!(
                    "the token endpoint {url} answered 200 without an access_token"
                ))
            })?;
            let lifetime = seconds(parsed.expires_in.as_ref()).unwrap_or(3600);
            return Ok(AccessToken::new(
                parsed.access_token,
                Duration::from_secs(lifetime),
            ));
        }
        let error: Option<ErrorResponse> = serde_json::from_slice(&bytes).ok();
        return Err(failed(match error {
            Some(e) if !e.error_description.is_empty() || !e.error.is_empty() => {
                let description = e
                    .error_description
                    .split(" Trace ID:")
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                let mut text = format!(
                    "Entra ID refused the token request ({status} {}): {description}",
                    e.error
                );
                if let Some(fix) = e.error_codes.first().and_then(|c| hint(*c)) {
                    text.push_str(" — ");
                    text.push_str(&fix);
                }
                text
            }
            _ => format!("the token endpoint {url} answered {status}"),
        }));
    }
}

/// Fixes for the AADSTS errors every credential can meet.
pub(crate) fn common_hint(code: u64) -> Option<String> {
    Some(match code {
        90002 => "AZURE_TENANT_ID does not name an existing tenant (or AZURE_AUTHORITY_HOST names another cloud)".to_owned(),
        700016 => "AZURE_CLIENT_ID is not an application (or managed identity) of this tenant: check the client id and AZURE_TENANT_ID".to_owned(),
        500011 => "the resource is not known in this tenant: check the vault URL".to_owned(),
        _ => return None,
    })
}
