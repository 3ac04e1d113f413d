//! HTTP to the identity provider: one client per CA setting (rustls with the ring provider;
//! the configured CA PEM as the only roots, or the system's roots when none is set), bounded
//! JSON reads for discovery documents and JWKS, and form POSTs to the token endpoint.
//!
//! Errors name the URL and what went wrong; they never include a request body (which may hold
//! a client secret or an authorization code).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

/// Discovery documents and key sets are small; a provider answering more is refused.
const MAX_BODY: usize = 1 << 20;

/// A client trusting `ca_pem` alone when it is set (OpenBao's `oidc_discovery_ca_pem` /
/// `jwks_ca_pem`), else the system's roots. The error is OpenBao's wording.
pub(crate) fn client(ca_pem: &str) -> Result<reqwest::Client, String> {
    let mut roots = rustls::RootCertStore::empty();
    if ca_pem.trim().is_empty() {
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            let _ = roots.add(cert);
        }
    } else {
        let mut reader = std::io::BufReader::new(ca_pem.as_bytes());
        for cert in rustls_pemfile::certs(&mut reader) {
            let cert = cert.map_err(|_| "could not parse CA PEM value successfully".to_owned())?;
            roots
                .add(cert)
                .map_err(|_| "could not parse CA PEM value successfully".to_owned())?;
        }
        if roots.is_empty() {
            return Err("could not parse CA PEM value successfully".to_owned());
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
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))
}

/// The error text of a failed request: reqwest's chain of causes (connection refused, an
/// untrusted certificate), which names the URL but never a body.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Reads a response body up to [`MAX_BODY`] bytes.
async fn body(mut response: reqwest::Response, url: &str) -> Result<Vec<u8>, String> {
    if response
        .content_length()
        .is_some_and(|l| l > MAX_BODY as u64)
    {
        return Err(format!("{url}: response larger than {MAX_BODY} bytes"));
    }
    let mut out = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading {url}: {}", describe(&e)))?
    {
        if out.len() + chunk.len() > MAX_BODY {
            return Err(format!("{url}: response larger than {MAX_BODY} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// GETs a JSON document; anything but a 200 with a JSON body is an error (`404 Not Found`,
/// a connection error, a certificate the CA does not vouch for).
pub(crate) async fn get_json(client: &reqwest::Client, url: &str) -> Result<Value, String> {
    let response = client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("Get {url:?}: {}", describe(&e)))?;
    let status = response.status();
    let bytes = body(response, url).await?;
    if !status.is_success() {
        return Err(format!("{url}: {status}"));
    }
    serde_json::from_slice(&bytes).map_err(|_| format!("{url}: the response is not JSON"))
}

/// POSTs a form with HTTP Basic client authentication (the token endpoint) and returns the
/// status and JSON body. The form and the credentials never appear in an error.
pub(crate) async fn post_form(
    client: &reqwest::Client,
    url: &str,
    basic: (&str, &str),
    form: &[(&str, &str)],
) -> Result<(u16, Value), String> {
    // RFC 6749 §2.3.1: the client id and secret are form-urlencoded before Basic encoding.
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let body_text = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let response = client
        .post(url)
        .basic_auth(enc(basic.0), Some(enc(basic.1)))
        .header("accept", "application/json")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body_text)
        .send()
        .await
        .map_err(|e| format!("Post {url:?}: {}", describe(&e)))?;
    let status = response.status().as_u16();
    let bytes = body(response, url).await?;
    let json = serde_json::from_slice(&bytes)
        .map_err(|_| format!("{url}: {status}: the response is not JSON"))?;
    Ok((status, json))
}
