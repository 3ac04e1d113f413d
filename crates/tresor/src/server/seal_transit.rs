//! The `transit` seal: another Vault/OpenBao/Tresor server's transit key wraps this server's
//! root key. Encrypt and decrypt are `POST <mount>/encrypt|decrypt/<key>` with the seal's
//! token; the token is renewed in the background unless `disable_renewal` is set.

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tresor_core::seal::{AutoSeal, SealError, SealKind};
use tresor_sdk::secret::{SecretBytes, SecretString};

/// Bounds one call to the transit server: a seal that hangs must not keep the server from
/// reporting why it is sealed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the transit key is and how to reach it; resolved from the stanza and environment.
#[derive(Debug)]
pub struct TransitSettings {
    pub address: String,
    pub token: SecretString,
    pub key_name: String,
    pub mount_path: String,
    pub namespace: Option<String>,
    pub tls_ca_cert: Option<String>,
    pub tls_client_cert: Option<String>,
    pub tls_client_key: Option<String>,
    pub tls_skip_verify: bool,
    /// The name the transit server's certificate must carry, when not the address's host.
    pub tls_server_name: Option<String>,
}

#[derive(Debug)]
pub struct TransitSeal {
    http: reqwest::Client,
    address: String,
    token: SecretString,
    key_name: String,
    mount_path: String,
    namespace: Option<String>,
}

impl TransitSeal {
    pub fn new(settings: TransitSettings) -> anyhow::Result<Self> {
        use anyhow::Context;
        let mut builder = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT);
        let named = settings
            .tls_server_name
            .as_deref()
            .filter(|n| !n.is_empty() && !settings.tls_skip_verify);
        if settings.tls_skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        if let Some(name) = named {
            let client = match (&settings.tls_client_cert, &settings.tls_client_key) {
                (Some(cert), Some(key)) => Some((cert.as_str(), key.as_str())),
                (None, None) => None,
                _ => anyhow::bail!("tls_client_cert and tls_client_key go together"),
            };
            builder = builder.tls_backend_preconfigured(super::seal_transit_tls::client_config(
                name,
                settings.tls_ca_cert.as_deref(),
                client,
            )?);
        } else if let Some(ca) = &settings.tls_ca_cert {
            let pem = std::fs::read(ca).with_context(|| format!("reading tls_ca_cert {ca}"))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("parsing tls_ca_cert {ca}"))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        match (&settings.tls_client_cert, &settings.tls_client_key) {
            _ if named.is_some() => {}
            (Some(cert), Some(key)) => {
                let mut pem = std::fs::read(cert)
                    .with_context(|| format!("reading tls_client_cert {cert}"))?;
                pem.push(b'\n');
                pem.extend(
                    std::fs::read(key).with_context(|| format!("reading tls_client_key {key}"))?,
                );
                builder = builder.identity(
                    reqwest::Identity::from_pem(&pem)
                        .context("parsing tls_client_cert and tls_client_key")?,
                );
            }
            (None, None) => {}
            _ => anyhow::bail!("tls_client_cert and tls_client_key go together"),
        }
        Ok(Self {
            http: builder
                .build()
                .context("building the transit seal's HTTP client")?,
            address: settings.address.trim_end_matches('/').to_owned(),
            token: settings.token,
            key_name: settings.key_name,
            mount_path: settings.mount_path.trim_matches('/').to_owned(),
            namespace: settings.namespace.filter(|n| !n.is_empty()),
        })
    }

    fn error(&self, reason: impl Into<String>) -> SealError {
        SealError {
            seal: self.describe(),
            reason: reason.into(),
        }
    }

    /// One call to the transit server; the answer's `data`, or why there is none.
    async fn call(&self, path: &str, body: &Value) -> Result<Value, SealError> {
        let url = format!("{}/v1/{path}", self.address);
        let mut request = self
            .http
            .post(&url)
            .header("X-Vault-Token", self.token.expose())
            .header("X-Vault-Request", "true")
            .json(body);
        if let Some(ns) = &self.namespace {
            request = request.header("X-Vault-Namespace", ns);
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.error(format!("cannot reach {}: {}", self.address, chain(&e))))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| self.error(format!("reading the answer failed: {}", chain(&e))))?;
        let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let errors = parsed
                .get("errors")
                .and_then(Value::as_array)
                .map(|e| {
                    e.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default();
            let hint = match status.as_u16() {
                503 => " (the transit server is sealed or unavailable)",
                403 => " (the seal's token is invalid or its policy does not allow this key)",
                404 => " (no such transit mount or key)",
                _ => "",
            };
            return Err(self.error(format!(
                "{path} answered {status}: {errors}{hint}",
                status = status.as_u16()
            )));
        }
        parsed
            .get("data")
            .cloned()
            .ok_or_else(|| self.error(format!("{path} answered without data")))
    }

    /// Keeps the token alive: looks it up, then renews it at two thirds of its TTL. Ends when
    /// the token is not renewable or has no TTL (a root token); failures are logged and retried.
    pub fn start_renewal(seal: std::sync::Arc<Self>) {
        tokio::spawn(async move {
            let mut wait = match seal.token_ttl("auth/token/lookup-self", None).await {
                Ok(Some(ttl)) => ttl,
                Ok(None) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "transit seal: token lookup failed; renewal retries in 60s");
                    Duration::from_secs(90)
                }
            };
            loop {
                tokio::time::sleep(wait * 2 / 3).await;
                match seal
                    .token_ttl("auth/token/renew-self", Some(&json!({})))
                    .await
                {
                    Ok(Some(ttl)) => wait = ttl,
                    Ok(None) => return,
                    Err(err) => {
                        tracing::warn!(error = %err, "transit seal: token renewal failed; retrying");
                        wait = Duration::from_secs(90);
                    }
                }
            }
        });
    }

    /// The token's remaining TTL when it is renewable and expires; `None` otherwise.
    async fn token_ttl(
        &self,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Duration>, SealError> {
        let url = format!("{}/v1/{path}", self.address);
        let mut request = if body.is_some() {
            self.http.post(&url).json(&json!({}))
        } else {
            self.http.get(&url)
        };
        request = request.header("X-Vault-Token", self.token.expose());
        if let Some(ns) = &self.namespace {
            request = request.header("X-Vault-Namespace", ns);
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.error(format!("cannot reach {}: {}", self.address, chain(&e))))?;
        let status = response.status();
        let parsed: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(self.error(format!("{path} answered {}", status.as_u16())));
        }
        // lookup-self answers in `data`, renew-self in `auth`.
        let info = parsed
            .get("auth")
            .filter(|a| !a.is_null())
            .or_else(|| parsed.get("data"))
            .cloned()
            .unwrap_or(Value::Null);
        let renewable = info
            .get("renewable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let ttl = info
            .get("lease_duration")
            .or_else(|| info.get("ttl"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        Ok((renewable && ttl > 0).then(|| Duration::from_secs(ttl)))
    }
}

/// An error and its causes on one line (reqwest's own message omits "connection refused").
fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[async_trait::async_trait]
impl AutoSeal for TransitSeal {
    fn kind(&self) -> SealKind {
        SealKind::Transit
    }

    fn describe(&self) -> String {
        let mount = format!("{}/", self.mount_path);
        format!(
            "transit seal (key {:?} on mount {mount:?} at {}{})",
            self.key_name,
            self.address,
            self.namespace
                .as_ref()
                .map_or_else(String::new, |n| format!(", namespace {n:?}"))
        )
    }

    async fn encrypt(&self, plaintext: &SecretBytes, _purpose: &str) -> Result<Vec<u8>, SealError> {
        let body = json!({
            "plaintext": base64::engine::general_purpose::STANDARD.encode(plaintext.expose()),
        });
        let data = self
            .call(
                &format!("{}/encrypt/{}", self.mount_path, self.key_name),
                &body,
            )
            .await?;
        data.get("ciphertext")
            .and_then(Value::as_str)
            .map(|c| c.as_bytes().to_vec())
            .ok_or_else(|| self.error("encrypt answered without a ciphertext"))
    }

    async fn decrypt(&self, blob: &[u8], _purpose: &str) -> Result<SecretBytes, SealError> {
        let ciphertext = std::str::from_utf8(blob)
            .map_err(|_| self.error("the stored value is not a transit ciphertext"))?;
        let data = self
            .call(
                &format!("{}/decrypt/{}", self.mount_path, self.key_name),
                &json!({ "ciphertext": ciphertext }),
            )
            .await?;
        let encoded = data
            .get("plaintext")
            .and_then(Value::as_str)
            .ok_or_else(|| self.error("decrypt answered without a plaintext"))?;
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map(SecretBytes::new)
            .map_err(|_| self.error("decrypt answered a plaintext that is not base64"))
    }
}
