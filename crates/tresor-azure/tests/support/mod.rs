//! Driving the FAKE Azure Key Vault + Entra ID + IMDS (`test-support/fake-azure-keyvault`)
//! from Rust tests: start it with the shared seed, read what it saw, inject faults, mint
//! federated tokens. Killed when dropped.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tresor_azure::{CredentialOptions, Env, KeyVaultOptions, RetryPolicy};

pub const TENANT: &str = "72f988bf-0000-4000-8000-00000000fa4e";
pub const OTHER_TENANT: &str = "0c0c0c0c-0000-4000-8000-000000000bad";
pub const OFFICER: &str = "a1a1a1a1-0000-4000-8000-00000000a001";
pub const OFFICER_SECRET: &str = "fake-client-secret-officer";
pub const FEDERATED: &str = "b2b2b2b2-0000-4000-8000-00000000b002";
pub const READER: &str = "c3c3c3c3-0000-4000-8000-00000000c003";
pub const READER_SECRET: &str = "fake-client-secret-reader";
pub const OTHER_TENANT_CLIENT: &str = "d4d4d4d4-0000-4000-8000-00000000d004";
pub const OTHER_TENANT_SECRET: &str = "fake-client-secret-other-tenant";
pub const MANAGED_IDENTITY: &str = "e5e5e5e5-0000-4000-8000-00000000e005";
pub const SUBJECT: &str = "system:serviceaccount:tresor:vault-bootstrap";

pub struct FakeAzure {
    child: Child,
    pub dir: PathBuf,
    pub url: String,
    pub vault_url: String,
    pub imds_url: String,
    pub ca_pem: String,
    http: reqwest::Client,
}

impl Drop for FakeAzure {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The venv's Python (where `scripts/install-peers.sh` installs the fake's dependencies).
pub fn python() -> PathBuf {
    let from_bao = std::env::var_os("TRESOR_BAO_BIN")
        .map(PathBuf::from)
        .and_then(|b| b.parent().map(|d| d.join("python")));
    let python = from_bao.filter(|p| p.is_file()).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.build/venv/bin/python")
    });
    assert!(
        python.is_file(),
        "{} is missing: run scripts/install-peers.sh (it installs the fake Azure Key Vault's dependencies)",
        python.display()
    );
    python
}

pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-support/fake-azure-keyvault")
        .join(name)
}

impl FakeAzure {
    /// Starts a fresh fake (seeded with `seed.json`) in `dir`; waits up to a minute.
    pub fn start(dir: &Path) -> FakeAzure {
        let dir = dir.join("fake-azure-keyvault");
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new(python())
            .arg(script("fake_azure_keyvault.py"))
            .arg("--dir")
            .arg(&dir)
            .arg("--seed")
            .arg(script("seed.json"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.starts_with("fake-azure-keyvault ready ") => break,
                Ok(_) => {}
                Err(_) => panic!(
                    "the fake Azure Key Vault did not start:\n{}",
                    std::fs::read_to_string(dir.join("stderr")).unwrap_or_default()
                ),
            }
        }
        let info: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("server.json")).unwrap())
                .unwrap();
        let ca_pem = std::fs::read_to_string(info["ca_file"].as_str().unwrap()).unwrap();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
            .build()
            .unwrap();
        FakeAzure {
            child,
            url: info["url"].as_str().unwrap().to_owned(),
            vault_url: info["vault_url"].as_str().unwrap().to_owned(),
            imds_url: info["imds_url"].as_str().unwrap().to_owned(),
            ca_pem,
            dir,
            http,
        }
    }

    async fn fake(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        assert!(
            resp.status().is_success(),
            "{method} {path}: {}",
            resp.status()
        );
        resp.json().await.unwrap_or(Value::Null)
    }

    /// Every request the fake answered (Key Vault, Entra, IMDS), oldest first.
    pub async fn requests(&self) -> Vec<Value> {
        self.fake("GET", "/fake/requests", None).await["requests"]
            .as_array()
            .unwrap()
            .clone()
    }

    pub async fn clear_requests(&self) {
        self.fake("DELETE", "/fake/requests", None).await;
    }

    /// The next `count` requests to `target` (under `path_prefix`) answer `status`.
    pub async fn fault(&self, fault: Value) {
        self.fake("POST", "/fake/faults", Some(fault)).await;
    }

    /// A service-account-like JWT from the fake's OIDC issuer (what the webhook projects).
    pub async fn federated_token(&self, subject: &str) -> String {
        self.fake(
            "POST",
            "/fake/federated-token",
            Some(json!({"subject": subject})),
        )
        .await["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn advance_clock(&self, seconds: u64) {
        self.fake(
            "POST",
            "/fake/clock",
            Some(json!({"advance_seconds": seconds})),
        )
        .await;
    }

    /// Options trusting the fake's CA, with the fake as authority and IMDS.
    pub fn credential_options(&self) -> CredentialOptions {
        CredentialOptions {
            authority_host: Some(self.url.clone()),
            ca_pem: Some(self.ca_pem.clone()),
            imds_host: Some(self.imds_url.clone()),
            timeout: Duration::from_secs(10),
            ..CredentialOptions::default()
        }
    }

    /// Key Vault options for the fake: its CA, no challenge-resource check (127.0.0.1 is not
    /// under vault.azure.net), fast backoff.
    pub fn vault_options(&self) -> KeyVaultOptions {
        KeyVaultOptions {
            api_version: "7.4".to_owned(),
            ca_pem: Some(self.ca_pem.clone()),
            verify_challenge_resource: false,
            retry: RetryPolicy {
                max_retries: 3,
                initial_delay: Duration::from_millis(50),
                max_delay: Duration::from_millis(200),
                max_retry_after: Duration::from_secs(5),
            },
            poll_interval: Duration::from_millis(50),
            poll_timeout: Duration::from_secs(10),
            ..KeyVaultOptions::default()
        }
    }
}

/// An environment with no Azure variables, a `PATH` of one empty directory (so no `az`).
pub fn bare_env(dir: &Path) -> Env {
    let bin = dir.join("empty-bin");
    std::fs::create_dir_all(&bin).unwrap();
    Env::from_pairs([("PATH", bin.display().to_string())])
}

/// A loopback port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
