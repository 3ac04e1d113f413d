//! The HTTP client behind the CLI commands.
//!
//! Address and token come from flags, then `TRESOR_ADDR`/`TRESOR_TOKEN`, then Vault's
//! `VAULT_ADDR`/`VAULT_TOKEN`, so existing shell setups keep working.

use anyhow::{Context, Result, bail};
use reqwest::{Method, StatusCode};
use serde_json::Value;

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
    /// Output format: table or json.
    #[arg(long = "format", global = true, default_value = "table")]
    pub format: String,
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
    token: Option<String>,
}

/// A response: status and parsed JSON body (`Value::Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
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
    pub fn new(args: &ClientArgs) -> Result<Self> {
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
            token: env_first(&["TRESOR_TOKEN", "VAULT_TOKEN", "BAO_TOKEN"]),
        })
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
        let url = format!("{}/v1/{}", self.address, path.trim_start_matches('/'));
        let mut req = self
            .http
            .request(method, &url)
            .header("X-Vault-Request", "true");
        if let Some(token) = &self.token {
            req = req.header("X-Vault-Token", token);
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
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).context("the server's answer is not JSON")?
        };
        Ok(Reply { status, body })
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
