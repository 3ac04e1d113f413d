//! Replaying an HTTP step against one server.

use reqwest::Method;
use serde_json::Value;

use super::model::{BodySpec, HttpStep, Vars, fill, fill_json};

/// What a server answered, as far as the comparison cares.
#[derive(Debug, Clone)]
pub enum HttpOutcome {
    Answered {
        status: u16,
        content_type: Option<String>,
        /// Redirect target: for a 3xx it is the answer.
        location: Option<String>,
        /// Which rate-limit headers (`Retry-After`, `X-Ratelimit-*`) came, by name: their
        /// values are clock readings, their presence is behaviour.
        rate_limit_headers: Vec<&'static str>,
        body: Body,
    },
    /// No HTTP answer at all (connection reset, …); compared as text.
    Failed(String),
}

#[derive(Debug, Clone)]
pub enum Body {
    Empty,
    Json(Value),
    /// Not JSON: compared byte for byte.
    Text(String),
}

/// A client that shows redirects instead of following them (paths outside `/v1/` may
/// redirect, and that is part of what is compared).
pub fn client() -> reqwest::Client {
    // reqwest is built without a default crypto provider; the binary picks ring, so do we.
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .expect("an HTTP client")
}

pub async fn send(
    client: &reqwest::Client,
    addr: &str,
    step: &HttpStep,
    vars: &Vars,
) -> Result<HttpOutcome, String> {
    let method = Method::from_bytes(step.method.as_bytes())
        .map_err(|e| format!("method {:?}: {e}", step.method))?;
    let url = format!("{addr}{}", fill(&step.path, vars)?);
    let mut request = client.request(method, url);
    for (name, value) in &step.headers {
        request = request.header(name, fill(value, vars)?);
    }
    request = match &step.body {
        BodySpec::None => request,
        BodySpec::Json(v) => request.body(serde_json::to_vec(&fill_json(v, vars)?).unwrap()),
        BodySpec::Raw(s) => request.body(fill(s, vars)?),
        BodySpec::Repeat { text, times } => request.body(text.repeat(*times)),
    };
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return Ok(HttpOutcome::Failed(error_chain(&e))),
    };
    let status = response.status().as_u16();
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &reqwest::header::HeaderValue| {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            })
    };
    let content_type = header(reqwest::header::CONTENT_TYPE);
    let location = header(reqwest::header::LOCATION);
    let rate_limit_headers = RATE_LIMIT_HEADERS
        .into_iter()
        .filter(|name| response.headers().contains_key(*name))
        .collect();
    let bytes = match response.bytes().await {
        Ok(b) => b,
        Err(e) => return Ok(HttpOutcome::Failed(error_chain(&e))),
    };
    let body = if bytes.is_empty() {
        Body::Empty
    } else if let Ok(json) = serde_json::from_slice(&bytes) {
        Body::Json(json)
    } else {
        Body::Text(String::from_utf8_lossy(&bytes).into_owned())
    };
    Ok(HttpOutcome::Answered {
        status,
        content_type,
        location,
        rate_limit_headers,
        body,
    })
}

/// The rate-limit quota headers OpenBao may send.
const RATE_LIMIT_HEADERS: [&str; 4] = [
    "retry-after",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
];

/// reqwest's top-level message hides the cause ("error sending request"); the chain does not.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
