//! The HTTP client behind the CLI commands.
//!
//! Address and token come from flags, then `TRESOR_ADDR`/`TRESOR_TOKEN`, then Vault's
//! `VAULT_ADDR`/`VAULT_TOKEN`, then OpenBao's `BAO_ADDR`/`BAO_TOKEN`, so existing shell setups
//! keep working. With no token variable set, the token helper's `~/.vault-token` is used, as
//! `vault` does.

use anyhow::{Context, Result, bail};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tresor_sdk::secret::SecretString;

/// The request path as Go's `path.Join` leaves it, which is what Vault's client sends:
/// no empty or `.` segments, `..` resolved, no trailing slash. The query string is kept.
fn clean_path(path: &str) -> String {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = segments.join("/");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Flags shared by every client command.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// Server address (default: $TRESOR_ADDR, $VAULT_ADDR, or http://127.0.0.1:8200).
    #[arg(long = "address", global = true)]
    pub address: Option<String>,
    /// Skip TLS certificate verification (testing only).
    #[arg(long = "tls-skip-verify", global = true)]
    pub tls_skip_verify: bool,
    /// PEM file with the CA that signed the server's certificate (default: $VAULT_CACERT).
    #[arg(long = "ca-cert", global = true)]
    pub ca_cert: Option<String>,
    /// Output format: table, json or yaml (default: $VAULT_FORMAT, $BAO_FORMAT, or table).
    #[arg(long = "format", global = true)]
    pub format: Option<String>,
    /// Wrap the answer in a single-use token valid this long ("5m", "300"); unwrap it with
    /// `tresor unwrap` (default: $VAULT_WRAP_TTL).
    #[arg(long = "wrap-ttl", global = true)]
    pub wrap_ttl: Option<String>,
}

impl ClientArgs {
    /// `-format`, else `TRESOR_FORMAT`/`VAULT_FORMAT`/`BAO_FORMAT`, else table.
    pub fn output_format(&self) -> crate::cli::Format {
        let text = self
            .format
            .clone()
            .or_else(|| env_first(&["TRESOR_FORMAT", "VAULT_FORMAT", "BAO_FORMAT"]))
            .unwrap_or_default();
        crate::cli::Format::parse(&text)
    }
}

/// A 4xx/5xx answer, shown as Vault's Go client shows it (`Error making API request.` …), so
/// that scripts and people reading either CLI's errors see the same text.
#[derive(Debug)]
pub struct ApiError {
    pub method: String,
    pub url: String,
    pub status: StatusCode,
    pub errors: Vec<String>,
    /// The body, when it was not a JSON error envelope.
    pub raw: Option<String>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.raw.is_some() {
            "Raw Message"
        } else {
            "Errors"
        };
        write!(
            f,
            "Error making API request.\n\nURL: {} {}\nCode: {}. {kind}:\n\n",
            self.method,
            self.url,
            self.status.as_u16()
        )?;
        match &self.raw {
            Some(raw) => f.write_str(raw),
            None => {
                for e in &self.errors {
                    write!(f, "* {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ApiError {}

/// The token variables, in the order they win (Tresor's, then Vault's, then OpenBao's).
pub const TOKEN_VARIABLES: [&str; 3] = ["TRESOR_TOKEN", "VAULT_TOKEN", "BAO_TOKEN"];

/// The name of the token variable in force, if any is set (and not empty).
pub fn token_variable() -> Option<&'static str> {
    TOKEN_VARIABLES
        .into_iter()
        .find(|n| std::env::var(n).is_ok_and(|v| !v.is_empty()))
}

fn env_first(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    address: String,
    /// Zeroized on drop and `[redacted]` in Debug output.
    token: Option<SecretString>,
    /// Sent as `X-Vault-Wrap-TTL` on every request.
    wrap_ttl: Option<String>,
}

/// A response: status and parsed JSON body (`Value::Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    /// The method and URL as Vault's client reports them (`LIST` goes as `GET …?list=true`).
    pub method: String,
    pub url: String,
    /// The body as received, for a non-JSON error.
    pub text: String,
}

impl Reply {
    /// `Some` for a 4xx/5xx answer.
    pub fn api_error(&self) -> Option<ApiError> {
        if !(self.status.is_client_error() || self.status.is_server_error()) {
            return None;
        }
        let errors = self.body.get("errors").and_then(Value::as_array).map(|a| {
            a.iter()
                .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned))
                .collect::<Vec<_>>()
        });
        Some(ApiError {
            method: self.method.clone(),
            url: self.url.clone(),
            status: self.status,
            raw: errors.is_none().then(|| self.text.clone()),
            errors: errors.unwrap_or_default(),
        })
    }

    /// The `errors` list of a Vault error envelope, joined for a human.
    pub fn error_text(&self) -> String {
        let errors: Vec<&str> = self
            .body
            .get("errors")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if errors.is_empty() {
            format!("server answered {}", self.status)
        } else {
            format!("server answered {}: {}", self.status, errors.join("; "))
        }
    }
}

impl Client {
    /// A client with the token from the environment or, failing that, the token helper.
    pub fn new(args: &ClientArgs) -> Result<Self> {
        let mut client = Self::without_token(args)?;
        if client.token.is_none() {
            client.token = crate::token_helper::get()
                .context("failed to get token from token helper")?
                .map(SecretString::new);
        }
        Ok(client)
    }

    /// The token from the environment only (`login` must not send the helper's old token).
    pub fn without_token(args: &ClientArgs) -> Result<Self> {
        let address = args
            .address
            .clone()
            .or_else(|| env_first(&["TRESOR_ADDR", "VAULT_ADDR", "BAO_ADDR"]))
            .unwrap_or_else(|| "http://127.0.0.1:8200".to_owned());
        let mut builder = reqwest::Client::builder();
        if args.tls_skip_verify
            || env_first(&["VAULT_SKIP_VERIFY"]).is_some_and(|v| v != "false" && v != "0")
        {
            builder = builder.danger_accept_invalid_certs(true);
        }
        if let Some(ca) = args
            .ca_cert
            .clone()
            .or_else(|| env_first(&["TRESOR_CACERT", "VAULT_CACERT"]))
        {
            let pem = std::fs::read(&ca).with_context(|| format!("reading CA certificate {ca}"))?;
            builder = builder.add_root_certificate(
                reqwest::Certificate::from_pem(&pem).with_context(|| format!("parsing {ca}"))?,
            );
        }
        Ok(Self {
            http: builder.build().context("building the HTTP client")?,
            address: address.trim_end_matches('/').to_owned(),
            token: env_first(&TOKEN_VARIABLES).map(SecretString::new),
            wrap_ttl: args
                .wrap_ttl
                .clone()
                .or_else(|| env_first(&["TRESOR_WRAP_TTL", "VAULT_WRAP_TTL", "BAO_WRAP_TTL"]))
                .filter(|t| !t.is_empty()),
        })
    }

    pub fn set_token(&mut self, token: Option<String>) {
        self.token = token.map(SecretString::new);
    }

    /// The server's address, as requests go to it (`operator step-down` names it).
    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_ref().map(SecretString::expose)
    }

    /// As [`Client::request`], but a 4xx/5xx becomes an [`ApiError`] (Vault's wording).
    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Reply> {
        let reply = self.request(method, path, body).await?;
        if let Some(err) = reply.api_error() {
            return Err(err.into());
        }
        Ok(reply)
    }

    pub async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Reply> {
        self.request_as(method, path, body, None).await
    }

    /// As [`Client::request`], with an explicit `Content-Type` (KV's merge patch).
    pub async fn request_as(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        content_type: Option<&str>,
    ) -> Result<Reply> {
        let url = format!("{}/v1/{}", self.address, clean_path(path));
        let shown_method = if method.as_str() == "LIST" {
            "GET".to_owned()
        } else {
            method.as_str().to_owned()
        };
        let shown_url = if method.as_str() == "LIST" {
            format!("{url}?list=true")
        } else {
            url.clone()
        };
        let mut req = self
            .http
            .request(method, &url)
            .header("X-Vault-Request", "true");
        if let Some(token) = &self.token {
            req = req.header("X-Vault-Token", token.expose());
        }
        if let Some(ttl) = &self.wrap_ttl {
            req = req.header("X-Vault-Wrap-TTL", ttl);
        }
        match (body, content_type) {
            (Some(body), Some(ct)) => {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, ct)
                    .body(serde_json::to_vec(body).context("encoding the request body")?);
            }
            (Some(body), None) => req = req.json(body),
            (None, _) => {}
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("could not reach {url}"))?;
        let status = resp.status();
        let bytes = resp.bytes().await.context("reading the response")?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = if bytes.is_empty() {
            Value::Null
        } else if status.is_success() {
            serde_json::from_slice(&bytes).context("the server's answer is not JSON")?
        } else {
            // An error page need not be JSON; ApiError shows it raw.
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok(Reply {
            status,
            body,
            method: shown_method,
            url: shown_url,
            text,
        })
    }

    /// As [`Client::request`], but a 4xx/5xx becomes an error carrying the server's message.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let reply = self.request(method, path, body).await?;
        if reply.status.is_client_error() || reply.status.is_server_error() {
            bail!("{}", reply.error_text());
        }
        Ok(reply.body)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn paths_are_cleaned_as_gos_path_join_does() {
        assert_eq!(clean_path("/sys/mounts/kvx/"), "sys/mounts/kvx");
        assert_eq!(clean_path("a//b/./c/../d?list=true"), "a/b/d?list=true");
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        // As main() does: reqwest is built without a default rustls provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let args = ClientArgs {
            address: Some("http://127.0.0.1:1".into()),
            tls_skip_verify: false,
            ca_cert: None,
            format: None,
            wrap_ttl: None,
        };
        let mut client = Client::without_token(&args).unwrap();
        client.set_token(Some("s.very-secret-token".into()));
        assert_eq!(client.token(), Some("s.very-secret-token"));
        assert!(!format!("{client:?}").contains("very-secret"));
    }

    #[test]
    fn api_errors_read_as_vaults_client_words_them() {
        let err = ApiError {
            method: "PUT".into(),
            url: "http://h/v1/x".into(),
            status: StatusCode::BAD_REQUEST,
            errors: vec!["a".into(), "b".into()],
            raw: None,
        };
        assert_eq!(
            err.to_string(),
            "Error making API request.\n\nURL: PUT http://h/v1/x\nCode: 400. Errors:\n\n* a* b"
        );
    }
}
