//! `tresor login -method=jwt` and `-method=oidc`, as `vault login` does them.
//!
//! - `jwt`: `role=… jwt=<token>|@file|-` is one write to `auth/<mount>/login`.
//! - `oidc` (the JWT plugin's CLI handler, client callback mode): asks the server for an
//!   authorization URL whose redirect is a listener on this machine (`localhost:8250` unless
//!   `port`/`callbackhost`/`listenaddress` say otherwise), opens it in the browser
//!   (`xdg-open`; printing it is enough when there is none, or with `skip_browser=true`),
//!   waits up to two minutes for the provider's redirect, and completes the login with
//!   `auth/<mount>/oidc/callback`. A `client_nonce` ties the callback to this process.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method as AxumMethod};
use axum::response::Html;
use reqwest::Method as HttpMethod;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::secret::api_secret;
use crate::client::Client;

/// The mount from the shared `mount` key (`-path`, else the method's name).
fn mount(config: &BTreeMap<String, String>, default: &str) -> String {
    config
        .get("mount")
        .map(|m| m.trim_matches('/').to_owned())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// A failed request, without its URL (an OIDC callback URL carries the authorization code).
fn api_failure(e: &anyhow::Error) -> String {
    match e.downcast_ref::<crate::client::ApiError>() {
        Some(api) if !api.errors.is_empty() => format!(
            "Error making API request.\n\nCode: {}. Errors:\n\n* {}",
            api.status.as_u16(),
            api.errors.join("\n* ")
        ),
        _ => format!("{e:#}"),
    }
}

/// `-method=jwt role=… jwt=…`.
pub(super) async fn jwt_method(
    client: &mut Client,
    config: &BTreeMap<String, String>,
) -> Result<Value, String> {
    let jwt = config
        .get("jwt")
        .map(|j| j.trim().to_owned())
        .filter(|j| !j.is_empty())
        .ok_or_else(|| "'jwt' must be specified".to_owned())?;
    let mut body = serde_json::Map::new();
    body.insert("jwt".into(), json!(jwt));
    if let Some(role) = config.get("role") {
        body.insert("role".into(), json!(role));
    }
    let body = Value::Object(body);
    let path = format!("auth/{}/login", mount(config, "jwt"));
    let reply = client
        .send(HttpMethod::POST, &path, Some(&body))
        .await
        .map_err(|e| api_failure(&e))?;
    Ok(api_secret(&reply.body))
}

/// 20 random base62 characters, as the Go CLI's `client_nonce`.
fn client_nonce() -> Result<String, String> {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut raw = [0u8; 64];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut raw))
        .map_err(|e| format!("reading random bytes: {e}"))?;
    // Rejection sampling keeps the characters uniform.
    let nonce: String = raw
        .iter()
        .filter(|b| usize::from(**b) < 62 * 4)
        .filter_map(|b| ALPHABET.get(usize::from(*b) % 62).copied().map(char::from))
        .take(20)
        .collect();
    if nonce.len() < 20 {
        return client_nonce();
    }
    Ok(nonce)
}

fn flag_bool(config: &BTreeMap<String, String>, name: &str) -> Result<bool, String> {
    match config.get(name) {
        None => Ok(false),
        Some(v) => super::flags::go_bool(v)
            .map_err(|e| format!("failed to parse value for {name:?}, err={e}")),
    }
}

/// The provider's redirect as it reached the listener (its query, or its form for a POST),
/// and where to send the page the browser shows.
type Callback = (String, tokio::sync::oneshot::Sender<String>);

const SUCCESS_HTML: &str = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Tresor Authentication Succeeded</title></head><body><h1>Signed in via your OIDC provider</h1><p>You can now close this window and return to the terminal.</p></body></html>";

fn failure_html(message: &str) -> String {
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Tresor Authentication Failed</title></head><body><h1>Login error</h1><pre>{escaped}</pre></body></html>"
    )
}

async fn callback_page(
    State(tx): State<mpsc::Sender<Callback>>,
    method: AxumMethod,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Html<String> {
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let params = if method == AxumMethod::POST && form {
        String::from_utf8_lossy(&body).into_owned()
    } else {
        query.unwrap_or_default()
    };
    let (page_tx, page_rx) = tokio::sync::oneshot::channel();
    if tx.send((params, page_tx)).await.is_err() {
        return Html(failure_html("this login has already completed"));
    }
    Html(page_rx.await.unwrap_or_default())
}

/// `-method=oidc`.
pub(super) async fn oidc_method(
    client: &mut Client,
    config: &BTreeMap<String, String>,
) -> Result<Value, String> {
    let mount = mount(config, "oidc");
    let get = |k: &str, d: &str| config.get(k).cloned().unwrap_or_else(|| d.to_owned());
    let mode = get("callbackmode", "client");
    if !mode.is_empty() && mode != "client" {
        return Err(format!(
            "callbackmode {mode:?} is not supported by tresor: use \"client\""
        ));
    }
    let listen = get("listenaddress", "localhost");
    let port = get("port", "8250");
    let host = get("callbackhost", "localhost");
    let scheme = get("callbackmethod", "http");
    let callback_port = get("callbackport", &port);
    let skip_browser = flag_bool(config, "skip_browser")?;
    let role = get("role", "");

    let nonce = client_nonce()?;
    let redirect_uri = format!("{scheme}://{host}:{callback_port}/oidc/callback");
    let reply = client
        .send(
            HttpMethod::POST,
            &format!("auth/{mount}/oidc/auth_url"),
            Some(&json!({"role": role, "redirect_uri": redirect_uri, "client_nonce": nonce})),
        )
        .await
        .map_err(|e| api_failure(&e))?;
    let auth_url = reply
        .body
        .pointer("/data/auth_url")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if auth_url.is_empty() {
        return Err(format!(
            "Unable to authorize role {role:?} with redirect_uri {redirect_uri:?}. Check Tresor logs for more information."
        ));
    }

    let listener = tokio::net::TcpListener::bind(format!("{listen}:{port}"))
        .await
        .map_err(|e| format!("listen tcp {listen}:{port}: {e}"))?;
    let (tx, mut rx) = mpsc::channel::<Callback>(1);
    let app = axum::Router::new()
        .route("/oidc/callback", axum::routing::any(callback_page))
        .with_state(tx);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            })
            .await;
    });

    if skip_browser {
        eprintln!(
            "Complete the login via your OIDC provider. Open the following link in your browser:\n\n    {auth_url}\n\n"
        );
    } else {
        eprintln!(
            "Complete the login via your OIDC provider. Launching browser to:\n\n    {auth_url}\n\n"
        );
        if let Err(e) = open_browser(&auth_url) {
            eprintln!(
                "Error attempting to automatically open browser: '{e}'.\nPlease visit the authorization URL manually."
            );
        }
    }
    eprintln!("Waiting for OIDC authentication to complete...");

    let outcome = tokio::time::timeout(Duration::from_secs(120), async {
        let Some((params, page)) = rx.recv().await else {
            return Err("the callback listener stopped".to_owned());
        };
        let fields = url_decode_pairs(&params);
        let pick = |k: &str| fields.get(k).cloned().unwrap_or_default();
        let query = format!(
            "state={}&code={}&id_token={}&client_nonce={}",
            encode(&pick("state")),
            encode(&pick("code")),
            encode(&pick("id_token")),
            encode(&nonce)
        );
        let result = client
            .send(
                HttpMethod::GET,
                &format!("auth/{mount}/oidc/callback?{query}"),
                None,
            )
            .await
            .map(|r| api_secret(&r.body))
            .map_err(|e| api_failure(&e));
        let _ = page.send(match &result {
            Ok(_) => SUCCESS_HTML.to_owned(),
            Err(e) => failure_html(e),
        });
        result
    })
    .await;
    // Graceful shutdown lets the browser's request finish with its page first.
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    match outcome {
        Ok(result) => result,
        Err(_) => Err("timed out waiting for response from provider".to_owned()),
    }
}

/// Opens `url` in the desktop's browser; an error when there is none (the URL was printed).
fn open_browser(url: &str) -> Result<(), String> {
    let status = std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("xdg-open: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("xdg-open: {status}"))
    }
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `application/x-www-form-urlencoded` pairs (a query string or a form body).
fn url_decode_pairs(text: &str) -> BTreeMap<String, String> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(byte) = hex {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_parameters_decode_like_a_form() {
        let p =
            url_decode_pairs("code=a%2Bb&state=st_1&iss=http%3A%2F%2F127.0.0.1%3A1&x=1+2&bad=%zz");
        assert_eq!(p["code"], "a+b");
        assert_eq!(p["iss"], "http://127.0.0.1:1");
        assert_eq!(p["x"], "1 2");
        assert_eq!(p["bad"], "%zz");
        assert_eq!(decode(&encode("a b/é")), "a b/é");
    }

    #[test]
    fn client_nonces_are_twenty_base62_characters() {
        let n = client_nonce().unwrap();
        assert_eq!(n.len(), 20);
        assert!(n.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(n, client_nonce().unwrap());
    }
}
