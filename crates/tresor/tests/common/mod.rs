//! Starting the real `tresor` binary for integration tests.
#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod ha;

use std::io::{BufRead, BufReader};

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_tresor");

/// A running server process; killed (SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    pub addr: String,
    /// Where the server's stderr (its log) goes, for failure messages.
    pub log: PathBuf,
    pub stdout_lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `tresor` with `args` and waits for its `Api Address:` banner line.
    pub fn start(args: &[&str], log_dir: &Path) -> Server {
        Server::start_with_env(args, &[], log_dir)
    }

    /// As [`Server::start`], with extra environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)], log_dir: &Path) -> Server {
        let log = log_dir.join(format!(
            "server-{}.log",
            std::process::id() as u128 * 1000 + rand_suffix()
        ));
        let stderr = std::fs::File::create(&log).unwrap();
        // A dev server stores its root token in $HOME/.vault-token: never the developer's.
        let mut child = Command::new(BIN)
            .args(args)
            .env("HOME", log_dir)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("the tresor binary starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.trim().strip_prefix("Api Address: ") {
                    let _ = tx.send(addr.to_owned());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not start; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        Server {
            child,
            addr,
            log,
            stdout_lines: lines,
        }
    }

    pub fn dev(log_dir: &Path, root_token: &str) -> Server {
        Server::start(
            &[
                "server",
                "-dev",
                "-dev-listen-address=127.0.0.1:0",
                &format!("-dev-root-token-id={root_token}"),
            ],
            log_dir,
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/v1/{}", self.addr, path)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn stdout_text(&self) -> String {
        self.stdout_lines.lock().unwrap().join("\n")
    }

    /// Stdout so far, once it contains `needle` (the banner is printed after the address the
    /// start-up waits for, so a test reading it must wait for it too).
    pub fn stdout_containing(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.stdout_text();
            if text.contains(needle) || Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// kill -9: no chance to flush or clean up.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then wait for exit; returns the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A HOME for CLI runs (an empty directory per test process), so that no test reads or
/// writes the developer's `~/.vault-token`. Every test of the binary shares it: a run that
/// stores a token there (`login`, `server -dev`) needs a HOME of its own instead.
pub fn scratch_home() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tresor-test-home-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u128
}

/// A config file for a server on a free port with an embedded store in `dir`.
pub fn embedded_config(dir: &Path) -> PathBuf {
    let path = dir.join("tresor.hcl");
    std::fs::write(
        &path,
        format!(
            "storage \"embedded\" {{\n  path = \"{}\"\n}}\n\nlistener \"tcp\" {{\n  address     = \"127.0.0.1:0\"\n  tls_disable = true\n}}\n",
            dir.join("data.redb").display()
        ),
    )
    .unwrap();
    path
}

/// A self-signed P-256 certificate in `dir` (`cert.pem`, `key.pem`) whose subject alternative
/// names are `san` (openssl's syntax, e.g. `IP:127.0.0.1,DNS:localhost`): (cert, key).
pub fn self_signed(dir: &Path, san: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=tresor-test"])
        .args(["-addext", &format!("subjectAltName={san}")])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed (.ci/run installs it)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    (cert, key)
}

/// The address of listener `n` (1-based) as the start-up banner shows it.
pub fn listener_addr(server: &Server, n: usize) -> String {
    let prefix = format!("Listener {n}: tcp (addr: \"");
    server
        .stdout_containing(&format!("Listener {n}:"))
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix(prefix.as_str())
                .and_then(|r| r.split('"').next())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("the banner names listener {n}"))
}

/// reqwest is built without a default crypto provider (the binary picks ring); tests do too.
fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A plain HTTP client for raw requests.
pub fn http() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::new()
}

/// A vaultrs client for `addr`, with `token`.
pub fn vault_client(addr: &str, token: &str) -> vaultrs::client::VaultClient {
    install_crypto_provider();
    vaultrs::client::VaultClient::new(
        vaultrs::client::VaultClientSettingsBuilder::default()
            .address(addr)
            .token(token)
            .build()
            .unwrap(),
    )
    .unwrap()
}

/// A raw JSON request: (status, JSON body or `Null` when empty).
pub async fn raw(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let bytes = body.map(|b| serde_json::to_vec(&b).unwrap());
    send(server, method, path, token, "application/json", bytes).await
}

/// A raw request with an explicit content type and body bytes.
pub async fn send(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: Option<Vec<u8>>,
) -> (u16, Value) {
    let mut req = http().request(method.parse().unwrap(), server.url(path));
    if let Some(t) = token {
        req = req.header("X-Vault-Token", t);
    }
    if let Some(b) = body {
        req = req.header("Content-Type", content_type).body(b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// Runs `tests/hvac/<script>` (Python, hvac from `.build/venv`, installed by
/// `scripts/install-peers.sh`) against `server` with the root token `root`; the script prints
/// `ok` when every check in it passed.
pub fn run_hvac_script(server: &Server, script: &str) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = manifest.join("../../.build/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/install-peers.sh to install hvac",
        python.display()
    );
    let out = Command::new(&python)
        .arg(manifest.join("tests/hvac").join(script))
        .arg(&server.addr)
        .arg("root")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "hvac script {script} failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{}",
        out.status,
        server.log_text()
    );
    assert_eq!(stdout.trim(), "ok", "{stderr}");
}
