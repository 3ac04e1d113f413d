//! The HTTP client (reqwest over rustls with the ring provider) and bounded body reads.
//! Errors name the URL and the transport failure, never a request body.

use std::sync::Arc;
use std::time::Duration;

/// Key Vault answers and token responses are small; anything larger is refused.
pub(crate) const MAX_BODY: usize = 4 << 20;

/// A client trusting `ca_pem` (PEM, one or more certificates) alone when given, else the
/// system's roots. No redirects: a Key Vault or token endpoint that redirects is refused
/// rather than followed with a bearer token or a client secret.
pub(crate) fn client(ca_pem: Option<&str>, timeout: Duration) -> Result<reqwest::Client, String> {
    client_with(ca_pem, timeout.min(Duration::from_secs(10)), timeout, true)
}

/// [`client`] with its own connect timeout (IMDS: short, to tell "nothing there" quickly),
/// and without the environment's proxies when `proxies` is false (IMDS is link-local: a
/// proxy would answer for it).
pub(crate) fn client_with(
    ca_pem: Option<&str>,
    connect_timeout: Duration,
    timeout: Duration,
    proxies: bool,
) -> Result<reqwest::Client, String> {
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
    let mut builder = reqwest::Client::builder();
    if !proxies {
        builder = builder.no_proxy();
    }
    builder
        .tls_backend_preconfigured(tls)
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("building the HTTP client: {}", describe(&e)))
}

/// reqwest's error with its chain of causes (reqwest's own message omits "connection
/// refused" or the certificate problem). It names the URL, never a body.
pub(crate) fn describe(e: &reqwest::Error) -> String {
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

/// A response body, up to [`MAX_BODY`] bytes.
pub(crate) async fn body(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    if response
        .content_length()
        .is_some_and(|l| l > MAX_BODY as u64)
    {
        return Err(format!("response larger than {MAX_BODY} bytes"));
    }
    let mut out = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the response: {}", describe(&e)))?
    {
        if out.len() + chunk.len() > MAX_BODY {
            return Err(format!("response larger than {MAX_BODY} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
