//! The Vault HTTP API as this client uses it: one reqwest client (rustls with ring), requests
//! with `X-Vault-Token` (marked sensitive), and Vault's `{"errors": […]}` turned into
//! [`SecretStoreError`]s. Response bodies are parsed into types whose secret fields are
//! [`SecretString`](tresor_sdk::secret::SecretString)s; a parse error says where, never what
//! (serde's messages quote the offending value).

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderValue, InvalidHeaderValue};
use tresor_sdk::secret::{SecretBytes, SecretString};

use crate::error::SecretStoreError;

pub(crate) const PROVIDER: &str = "tresor";

/// An answer: status and body bytes.
pub(crate) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

#[derive(Debug)]
pub(crate) struct Api {
    http: reqwest::Client,
    /// `scheme://host:port/` of the server.
    addr: url::Url,
}

impl Api {
    pub fn new(address: &str, ca_pem: Option<&str>, timeout: Duration) -> Result<Self, String> {
        let mut addr =
            url::Url::parse(address).map_err(|e| format!("invalid address {address:?}: {e}"))?;
        if !matches!(addr.scheme(), "http" | "https") || addr.host_str().is_none() {
            return Err(format!(
                "invalid address {address:?}: expected http(s)://host[:port]"
            ));
        }
        if !addr.username().is_empty() || addr.password().is_some() {
            return Err(format!(
                "invalid address {}: user information is not allowed",
                addr.host_str().unwrap_or_default()
            ));
        }
        addr.set_path("/");
        addr.set_query(None);
        addr.set_fragment(None);
        Ok(Self {
            http: http_client(ca_pem, timeout)?,
            addr,
        })
    }

    pub fn address(&self) -> &str {
        self.addr.as_str()
    }

    /// `path` below `/v1/`, each `/`-separated segment as given (names are checked before they
    /// get here, so nothing needs escaping).
    fn url(&self, path: &str) -> url::Url {
        let mut url = self.addr.clone();
        url.set_path(&format!("/v1/{path}"));
        url
    }

    /// One request. `op` and `name` go into a transport error's text.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&SecretString>,
        body: Option<SecretBytes>,
        op: &'static str,
        name: &str,
    ) -> Result<Answer, SecretStoreError> {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            let mut value = header_value(token).map_err(|_| {
                SecretStoreError::Config(
                    "the Vault token holds characters an HTTP header cannot carry".to_owned(),
                )
            })?;
            value.set_sensitive(true);
            request = request.header("X-Vault-Token", value);
        }
        request = request.header("X-Vault-Request", "true");
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.expose().to_vec());
        }
        let transport = |message: String| SecretStoreError::Transport {
            provider: PROVIDER,
            op,
            name: name.to_owned(),
            message,
        };
        let response = request
            .send()
            .await
            .map_err(|e| transport(format!("cannot reach {}: {}", self.addr, describe(&e))))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| transport(format!("reading the answer: {}", describe(&e))))?
            .to_vec();
        Ok(Answer { status, body })
    }
}

fn header_value(token: &SecretString) -> Result<HeaderValue, InvalidHeaderValue> {
    HeaderValue::from_str(token.expose())
}

/// reqwest over rustls (ring), trusting `ca_pem` alone when given, else the system's roots.
/// No redirects: a token is never sent on to wherever a redirect points.
fn http_client(ca_pem: Option<&str>, timeout: Duration) -> Result<reqwest::Client, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            let mut reader = std::io::BufReader::new(pem.as_bytes());
            for cert in rustls_pemfile::certs(&mut reader) {
                let cert = cert.map_err(|e| format!("the CA PEM does not parse: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("the CA certificate is not usable: {e}"))?;
            }
            if roots.is_empty() {
                return Err("the CA PEM holds no certificate".to_owned());
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS configuration: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("building the HTTP client: {}", describe(&e)))
}

/// reqwest's error with its causes (its own text omits "connection refused"). It names the
/// URL, never a body or a header.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Vault's `{"errors": […]}` joined, or a placeholder when the body has none.
pub(crate) fn errors(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<String>,
    }
    match serde_json::from_slice::<Errors>(body) {
        Ok(e) if !e.errors.is_empty() => e.errors.join("; ").chars().take(1000).collect(),
        _ => "no error text".to_owned(),
    }
}

/// Parses an answer; a failure names the line and column only (serde's message may quote a
/// value or a token).
pub(crate) fn parse<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| {
        format!(
            "{what} does not parse ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        )
    })
}

/// A non-success status as an error. 401/403 are [`SecretStoreError::PermissionDenied`],
/// 404 [`SecretStoreError::NotFound`].
pub(crate) fn status_error(op: &'static str, name: &str, answer: &Answer) -> SecretStoreError {
    let message = errors(&answer.body);
    match answer.status {
        404 => SecretStoreError::NotFound {
            provider: PROVIDER,
            name: name.to_owned(),
        },
        401 | 403 => SecretStoreError::PermissionDenied {
            provider: PROVIDER,
            op,
            name: name.to_owned(),
            status: answer.status,
            message,
        },
        400 if message.contains("check-and-set") => SecretStoreError::Conflict {
            provider: PROVIDER,
            op,
            name: name.to_owned(),
            message,
        },
        status => SecretStoreError::Status {
            provider: PROVIDER,
            op,
            name: name.to_owned(),
            status,
            message,
        },
    }
}
