//! The Kubernetes API client: `POST /apis/authentication.k8s.io/v1/tokenreviews`, and
//! `GET /api/v1/namespaces/<name>` for namespace selectors.
//!
//! HTTPS goes through rustls with the ring provider and trusts only the configured CA (the
//! `kubernetes_ca_cert`, or the pod's `ca.crt`): never the system roots, never a proxy from the
//! environment (the request carries a bearer token), never a redirect. One client per CA is
//! kept and rebuilt when the CA changes, so connections are reused between logins.
//!
//! Failures are classified for the denial that explains them: unreachable host, a certificate
//! the CA does not verify, 401 (the bearer is not valid), 403 (the bearer may not create
//! TokenReviews), other statuses, malformed answers. Texts from the API server are scrubbed of
//! the request's credentials by the caller before they reach a message.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};

/// Answers larger than this are not a TokenReview or a Namespace.
const MAX_ANSWER: usize = 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call to the API server failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failure {
    /// `kubernetes_host` is not a URL reqwest can call.
    BadHost(String),
    Unreachable(String),
    /// The configured CA does not verify the server's certificate.
    UntrustedCa(String),
    /// Another TLS failure (wrong host name in the certificate, expired certificate, …).
    Tls(String),
    /// 401: the bearer token is not valid.
    Unauthorized,
    /// 403 and the API server's `Status.message`.
    Forbidden(String),
    /// Any other non-success status and its message.
    Status(u16, String),
    /// A success status whose body is not what was asked for.
    Malformed(String),
}

/// `status` of a TokenReview answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ReviewStatus {
    pub authenticated: bool,
    pub error: String,
    pub username: String,
    pub uid: String,
    pub audiences: Vec<String>,
}

/// HTTP clients by CA bundle.
#[derive(Debug, Default)]
pub(super) struct Clients {
    cached: Mutex<Option<(String, reqwest::Client, usize)>>,
}

impl Clients {
    /// A client trusting exactly the certificates in `ca_pem`, and how many there are.
    pub fn for_ca(&self, ca_pem: &str) -> Result<(reqwest::Client, usize), String> {
        if let Ok(cache) = self.cached.lock()
            && let Some((pem, client, count)) = cache.as_ref()
            && pem == ca_pem
        {
            return Ok((client.clone(), *count));
        }
        let (client, count) = build(ca_pem)?;
        if let Ok(mut cache) = self.cached.lock() {
            *cache = Some((ca_pem.to_owned(), client.clone(), count));
        }
        Ok((client, count))
    }
}

fn build(ca_pem: &str) -> Result<(reqwest::Client, usize), String> {
    let mut roots = rustls::RootCertStore::empty();
    let mut reader = ca_pem.as_bytes();
    let mut count = 0;
    for cert in rustls_pemfile::certs(&mut reader).flatten() {
        if roots.add(cert).is_ok() {
            count += 1;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS configuration: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))?;
    Ok((client, count))
}

fn base(host: &str) -> &str {
    host.strip_suffix('/').unwrap_or(host)
}

/// Posts a TokenReview of `token`, authorised by `bearer`.
pub(super) async fn token_review(
    client: &reqwest::Client,
    host: &str,
    bearer: &str,
    token: &str,
    audiences: &[String],
) -> Result<ReviewStatus, Failure> {
    let url = format!("{}/apis/authentication.k8s.io/v1/tokenreviews", base(host));
    let mut spec = Map::new();
    spec.insert("token".into(), json!(token));
    if !audiences.is_empty() {
        spec.insert("audiences".into(), json!(audiences));
    }
    let body = json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": spec,
    });
    let answer = send(
        client
            .post(&url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .bearer_auth(bearer.trim())
            .body(body.to_string()),
    )
    .await?;
    parse_review(&answer)
}

/// The labels of namespace `name`, read with `bearer`.
pub(super) async fn namespace_labels(
    client: &reqwest::Client,
    host: &str,
    bearer: &str,
    name: &str,
) -> Result<BTreeMap<String, String>, Failure> {
    let url = format!("{}/api/v1/namespaces/{name}", base(host));
    let answer = send(
        client
            .get(&url)
            .header("Accept", "application/json")
            .bearer_auth(bearer.trim()),
    )
    .await?;
    let labels = answer
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|l| {
            l.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    Ok(labels)
}

/// Sends a request and returns its JSON answer, or the classified failure.
async fn send(request: reqwest::RequestBuilder) -> Result<Value, Failure> {
    let mut response = request.send().await.map_err(|e| classify(&e))?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
        if body.len().saturating_add(chunk.len()) > MAX_ANSWER {
            return Err(Failure::Malformed("the answer is larger than 1 MiB".into()));
        }
        body.extend_from_slice(&chunk);
    }
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    // Only a `Status.message` is quoted: a raw body may echo the request, and so the token.
    let message = || {
        json.as_ref()
            .and_then(|v| v.get("message"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| {
                format!(
                    "a body that is not a Kubernetes Status ({} bytes)",
                    body.len()
                )
            })
    };
    match status {
        200..=206 => {}
        401 => return Err(Failure::Unauthorized),
        403 => return Err(Failure::Forbidden(message())),
        code => return Err(Failure::Status(code, message())),
    }
    let Some(json) = json.as_ref().filter(|v| v.is_object()) else {
        return Err(Failure::Malformed("the answer is not a JSON object".into()));
    };
    // A `Status` object reporting a failure under a success code.
    if let Some(s) = json.get("status").and_then(Value::as_str)
        && s != "Success"
    {
        return Err(Failure::Status(status, message()));
    }
    Ok(json.clone())
}

/// Finds the cause of a failed request: a TLS verdict if rustls gave one, else the transport
/// error's innermost messages.
fn classify(err: &reqwest::Error) -> Failure {
    if err.is_builder() {
        return Failure::BadHost(
            "kubernetes_host must be a URL such as https://kubernetes.default.svc:443".into(),
        );
    }
    let mut chain = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = cur {
        if let Some(tls) = rustls_error(e) {
            return tls_failure(tls);
        }
        chain.push(e.to_string());
        cur = e.source();
    }
    chain.dedup();
    let mut text = chain.join(": ");
    if err.is_timeout() {
        text = format!("timed out ({text})");
    }
    if text.is_empty() {
        text = "the request failed".into();
    }
    Failure::Unreachable(text)
}

/// The rustls verdict inside `e`, looking through `io::Error`s wrapping each other (the TLS
/// stream wraps rustls' error in one, the connector in another).
fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let mut inner = e.downcast_ref::<std::io::Error>()?.get_ref()?;
    for _ in 0..8 {
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        inner = inner.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
    None
}

fn tls_failure(err: &rustls::Error) -> Failure {
    use rustls::CertificateError as C;
    match err {
        rustls::Error::InvalidCertificate(
            C::UnknownIssuer | C::BadSignature | C::UnhandledCriticalExtension,
        ) => Failure::UntrustedCa(err.to_string()),
        other => Failure::Tls(other.to_string()),
    }
}

fn parse_review(answer: &Value) -> Result<ReviewStatus, Failure> {
    let status = answer
        .get("status")
        .and_then(Value::as_object)
        .ok_or_else(|| Failure::Malformed("the answer has no TokenReview status".into()))?;
    let user = status.get("user").and_then(Value::as_object);
    let text = |m: Option<&Map<String, Value>>, k: &str| {
        m.and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Ok(ReviewStatus {
        authenticated: status
            .get("authenticated")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        error: text(Some(status), "error"),
        username: text(user, "username"),
        uid: text(user, "uid"),
        audiences: status
            .get("audiences")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
    })
}
