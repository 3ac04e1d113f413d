//! Starting and stopping the two servers a scenario compares.
//!
//! Every server runs on a free port so the suite can run beside other tests, and every child
//! process is owned by a [`ServerProcess`] whose `Drop` kills and reaps it: a failing or
//! panicking scenario never leaves a stray server behind.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::model::ServerKind;

/// How long a server gets to print its "started" banner.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts to start OpenBao: its ports are chosen before it binds them, so another process
/// can take one in between; that start fails and is retried on fresh ports.
const BAO_ATTEMPTS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    OpenBao,
    Tresor,
}

impl Flavor {
    pub fn label(self) -> &'static str {
        match self {
            Flavor::OpenBao => "OpenBao",
            Flavor::Tresor => "Tresor",
        }
    }
}

/// The `bao` binary: `TRESOR_BAO_BIN`, else the one `scripts/install-peers.sh` installs.
/// A missing binary fails the suite: silently skipping would hide every regression.
pub fn bao_binary() -> Result<PathBuf, String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (path, from) = match std::env::var_os("TRESOR_BAO_BIN") {
        Some(p) => (PathBuf::from(p), "TRESOR_BAO_BIN"),
        None => (
            workspace.join(".build/venv/bin/bao"),
            "the default location",
        ),
    };
    if path.is_file() {
        return Ok(path);
    }
    Err(format!(
        "the OpenBao binary `bao` is missing (looked at {} from {from}).\n\
         The compatibility suite compares Tresor with the real OpenBao and cannot run without it.\n\
         Install it with `scripts/install-peers.sh` (from the workspace root), or point \
         TRESOR_BAO_BIN at a `bao` 2.7.x binary.",
        path.display()
    ))
}

/// A running server; killed and reaped when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub addr: String,
    log: PathBuf,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    /// The server's log so far, for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&std::fs::read_to_string(&self.log).unwrap_or_default(), 40)
    }
}

/// Starts a server of `flavor` and `kind`; `dir` holds its config and log. `listener`: extra
/// HCL lines for a fresh server's listener block; `config`: extra top-level HCL for it.
pub fn start(
    flavor: Flavor,
    kind: ServerKind,
    bao: &Path,
    dir: &Path,
    listener: &str,
    config: &str,
) -> Result<ServerProcess, String> {
    match flavor {
        Flavor::Tresor => start_tresor(kind, dir, listener, config),
        Flavor::OpenBao => {
            let mut last = String::new();
            for attempt in 1..=BAO_ATTEMPTS {
                match start_bao(kind, bao, dir, attempt, listener, config) {
                    Ok(server) => return Ok(server),
                    Err(e) => last = e,
                }
            }
            Err(last)
        }
    }
}

/// Tresor binds port 0 and prints the address it got, so no port needs choosing.
fn start_tresor(
    kind: ServerKind,
    dir: &Path,
    listener: &str,
    extra: &str,
) -> Result<ServerProcess, String> {
    let mut args = vec!["server".to_owned()];
    match kind {
        ServerKind::Dev => args.extend([
            "-dev".to_owned(),
            "-dev-root-token-id=root".to_owned(),
            // As for OpenBao: the token helper file stays empty until a step logs in.
            "-dev-no-store-token".to_owned(),
            "-dev-listen-address=127.0.0.1:0".to_owned(),
        ]),
        ServerKind::Fresh => {
            let config = dir.join("tresor.hcl");
            write(&config, &fresh_config("127.0.0.1:0", None, listener, extra))?;
            args.push(format!("-config={}", config.display()));
        }
    }
    let log = dir.join("tresor.log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tresor"));
    // Never the developer's HOME: nothing may touch their ~/.vault-token.
    command.args(&args).env("HOME", dir);
    let (child, lines) = spawn(command, &log)?;
    let (child, addr) = wait_for(child, &log, &lines, |line| {
        line.trim().strip_prefix("Api Address: ").map(str::to_owned)
    })?;
    Ok(ServerProcess { child, addr, log })
}

/// OpenBao prints the configured address, not the bound one, so port 0 cannot be used for
/// the API listener: a free port is chosen here. Its dev mode also binds the cluster port
/// (API port + 1) at start, so both must be free; the fresh server's config puts its cluster
/// listener on port 0 instead.
fn start_bao(
    kind: ServerKind,
    bao: &Path,
    dir: &Path,
    attempt: usize,
    listener: &str,
    extra: &str,
) -> Result<ServerProcess, String> {
    let port = free_port_pair()?;
    let listen = format!("127.0.0.1:{port}");
    let mut command = Command::new(bao);
    command.arg("server");
    match kind {
        ServerKind::Dev => {
            // OpenBao 2 refuses `sys/audit/:path` even in dev mode unless the config allows it;
            // Tresor's dev mode allows it (docs/audit.md), so the dev servers agree.
            let config = dir.join(format!("openbao-dev-{attempt}.hcl"));
            write(&config, "unsafe_allow_api_audit_creation = true\n")?;
            command.args([
                "-dev",
                "-dev-root-token-id=root",
                // Dev mode would otherwise write the token to ~/.vault-token.
                "-dev-no-store-token",
                &format!("-dev-listen-address={listen}"),
                &format!("-config={}", config.display()),
            ]);
        }
        ServerKind::Fresh => {
            let config = dir.join(format!("openbao-{attempt}.hcl"));
            write(
                &config,
                &fresh_config(&listen, Some("127.0.0.1:0"), listener, extra),
            )?;
            command.arg(format!("-config={}", config.display()));
        }
    }
    // The test's own environment may point at some other Vault; none of it is inherited.
    command
        .env_clear()
        .env("HOME", dir)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    let log = dir.join(format!("openbao-{attempt}.log"));
    let (child, lines) = spawn(command, &log)?;
    let (child, _) = wait_for(child, &log, &lines, |line| {
        line.contains("OpenBao server started!").then_some(())
    })?;
    Ok(ServerProcess {
        child,
        addr: format!("http://{listen}"),
        log,
    })
}

/// The HCL both servers accept for an uninitialised in-memory server.
fn fresh_config(
    address: &str,
    cluster_address: Option<&str>,
    listener: &str,
    extra: &str,
) -> String {
    let cluster = cluster_address
        .map(|c| format!("  cluster_address = \"{c}\"\n"))
        .unwrap_or_default();
    format!(
        "storage \"inmem\" {{}}\n\nlistener \"tcp\" {{\n  address = \"{address}\"\n{cluster}  tls_disable = true\n{listener}}}\n{extra}"
    )
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// A port P such that P and P+1 are both free right now.
fn free_port_pair() -> Result<u16, String> {
    for _ in 0..50 {
        let first = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = first.local_addr().map_err(|e| e.to_string())?.port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Ok(port);
        }
    }
    Err("no two adjacent free ports found".into())
}

/// Spawns with stderr to `log` and stdout read line by line on a thread (stdout must be
/// drained for as long as the child lives, or a chatty server would block on a full pipe).
fn spawn(mut command: Command, log: &Path) -> Result<(Child, mpsc::Receiver<String>), String> {
    let stderr = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("starting {command:?}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // The receiver goes away once the banner is found; keep draining regardless.
            let _ = tx.send(line);
        }
    });
    Ok((child, rx))
}

/// Reads stdout lines until `found` recognises one; on exit or timeout, kills the child and
/// returns its output as the error.
fn wait_for<T>(
    mut child: Child,
    log: &Path,
    lines: &mpsc::Receiver<String>,
    found: impl Fn(&str) -> Option<T>,
) -> Result<(Child, T), String> {
    let deadline = std::time::Instant::now() + START_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(line) => {
                if let Some(value) = found(&line) {
                    return Ok((child, value));
                }
                seen.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) if !left.is_zero() => {}
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                return Err(format!(
                    "server did not start ({status}); stdout:\n{}\nlog:\n{}",
                    tail(&seen.join("\n"), 20),
                    tail(&std::fs::read_to_string(log).unwrap_or_default(), 20)
                ));
            }
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
