//! The real OpenID provider for the JWT/OIDC tests: npm `oidc-provider` (pinned in
//! `test-support/oidc/package-lock.json`, installed by `scripts/install-peers.sh`, or here by
//! `npm ci` when missing) run by `test-support/oidc/server.mjs` on 127.0.0.1, and a driver for
//! its devInteractions login pages (the browser's part of the auth-code flow).
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

fn support_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-support/oidc")
}

/// `npm ci` once per test process when the provider is not installed yet.
fn ensure_installed() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let dir = support_dir();
        if dir.join("node_modules/oidc-provider/package.json").exists() {
            return;
        }
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .status()
            .expect("npm runs (node and npm are needed for the OIDC provider; scripts/install-peers.sh installs them)");
        assert!(status.success(), "npm ci in test-support/oidc failed");
    });
}

/// A free port on 127.0.0.1 (probed, then released; the provider binds it right after), from
/// 18800-18899, the range of these helpers: an ephemeral port the kernel picked for the probe
/// may be given to any other socket on the machine before the provider binds it.
pub fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(18_800);
    loop {
        let port = NEXT.fetch_add(1, Ordering::SeqCst);
        assert!(port < 18_900, "no free port left in 18800-18899");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A running provider; stopped (by its pid) when dropped.
pub struct OidcProvider {
    child: Child,
    pub port: u16,
    pub issuer: String,
    pub log: PathBuf,
}

impl OidcProvider {
    /// Starts the provider on `port` with the signing key in `key_file` (created with `kid`
    /// when missing) and waits (polling, 30 s deadline) until discovery answers.
    pub fn start(dir: &Path, port: u16, key_file: &Path, kid: &str, redirects: &str) -> Self {
        ensure_installed();
        let log = dir.join(format!("oidc-{port}-{kid}.log"));
        let child = Command::new("node")
            .arg(support_dir().join("server.mjs"))
            .args([
                &port.to_string(),
                key_file.to_str().unwrap(),
                kid,
                redirects,
            ])
            .current_dir(support_dir())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
            .spawn()
            .expect("node runs test-support/oidc/server.mjs");
        let provider = OidcProvider {
            child,
            port,
            issuer: format!("http://127.0.0.1:{port}"),
            log,
        };
        let url = format!("{}/.well-known/openid-configuration", provider.issuer);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if probe(&url).unwrap_or(false) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the OIDC provider did not answer within 30 s: {}",
                std::fs::read_to_string(provider.log.with_extension("err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        provider
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    /// An access token from the client_credentials grant (a JWT), with extra token request
    /// parameters (`ref`, `repository`, `exp_offset`, `nbf_offset`, `header_kid`).
    pub async fn ci_token(&self, params: &[(&str, &str)]) -> String {
        let mut form = vec![("grant_type", "client_credentials"), ("scope", "read")];
        form.extend_from_slice(params);
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let reply: Value = crate::common::http()
            .post(format!("{}/token", self.issuer))
            .basic_auth("ci-client", Some("ci-secret"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        reply["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access token: {reply}"))
            .to_owned()
    }

    /// Restarts the provider on the same port (same issuer) with another signing key: the
    /// provider's key rotation.
    pub fn restart_with_key(&mut self, dir: &Path, key_file: &Path, kid: &str, redirects: &str) {
        self.terminate();
        *self = OidcProvider::start(dir, self.port, key_file, kid, redirects);
    }

    fn terminate(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// A blocking readiness probe: one plain GET over a TCP socket, true on a 200.
fn probe(url: &str) -> std::io::Result<bool> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = std::net::TcpStream::connect(host)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
    write!(
        s,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    Ok(buf.starts_with("HTTP/1.1 200"))
}

pub fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Plays the browser for an authorization URL: follows redirects by hand (keeping the
/// provider's cookies), logs in as `user` on the devInteractions login page, accepts the
/// consent page, and stops at the redirect to `redirect_prefix`. Returns that redirect URL's
/// query parameters (code, state, iss).
pub async fn browser_login(
    auth_url: &str,
    user: &str,
    redirect_prefix: &str,
) -> BTreeMap<String, String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut cookies: BTreeMap<String, String> = BTreeMap::new();
    let mut url = auth_url.to_owned();
    let mut form: Option<Vec<(String, String)>> = None;
    for _ in 0..20 {
        if url.starts_with(redirect_prefix) {
            let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
            return query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), decode(v)))
                .collect();
        }
        let cookie_header: String = cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let request = match form.take() {
            Some(fields) => {
                let body = fields
                    .iter()
                    .map(|(k, v)| format!("{k}={}", encode(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                client
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
            }
            None => client.get(&url),
        };
        let response = request
            .header("cookie", cookie_header)
            .send()
            .await
            .unwrap();
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap_or_default();
            if let Some((pair, _)) = text.split_once(';').or(Some((text, "")))
                && let Some((k, v)) = pair.split_once('=')
            {
                cookies.insert(k.trim().to_owned(), v.trim().to_owned());
            }
        }
        let status = response.status().as_u16();
        if (300..400).contains(&status) {
            let location = response.headers()["location"].to_str().unwrap().to_owned();
            url = if location.starts_with('/') {
                let origin: String = url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
                format!("{origin}{location}")
            } else {
                location
            };
            continue;
        }
        let page = response.text().await.unwrap();
        assert_eq!(status, 200, "unexpected page at {url}: {page}");
        // The devInteractions pages: a login form (login + password) or a consent form.
        form = Some(if page.contains("name=\"login\"") {
            vec![
                ("prompt".to_owned(), "login".to_owned()),
                ("login".to_owned(), user.to_owned()),
                ("password".to_owned(), "anything".to_owned()),
            ]
        } else {
            vec![("prompt".to_owned(), "consent".to_owned())]
        });
    }
    panic!("the browser flow did not reach {redirect_prefix}");
}

fn decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}
