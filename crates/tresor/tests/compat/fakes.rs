//! Stand-ins for systems no real server of can run here, started per scenario and shared by
//! both servers under test: so far the fake Kubernetes API server
//! (`test-support/fake-kube-apiserver`, schema-checked and checked with real clients).
//!
//! A scenario asks for it with `"kube_apiserver": SEED` (the fake's seed document: namespaces,
//! service accounts, bindings, named tokens). Both sides then get the variables
//! `kube_host`, `kube_ca`, `kube_untrusted_ca` (PEM text), `kube_sa_public_key` and
//! `kube_<name>` for every token (and uid) the seed names.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::model::Vars;

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The fake's process; killed and reaped when dropped.
#[derive(Debug)]
pub struct KubeApiserver {
    child: Child,
    pub vars: Vars,
    log: std::path::PathBuf,
}

impl Drop for KubeApiserver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl KubeApiserver {
    /// Starts the fake with `seed` in `dir`, using the Python of the venv `bao` lives in
    /// (where `scripts/install-peers.sh` installs the fake's dependencies).
    pub fn start(bao: &Path, dir: &Path, seed: &Value) -> Result<Self, String> {
        let python = bao
            .parent()
            .map(|bin| bin.join("python"))
            .filter(|p| p.is_file())
            .ok_or_else(|| {
                format!(
                    "no python beside {} (run scripts/install-peers.sh)",
                    bao.display()
                )
            })?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../test-support/fake-kube-apiserver/fake_kube_apiserver.py");
        let dir = dir.join("kube-apiserver");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let seed_file = dir.join("seed.json");
        std::fs::write(&seed_file, seed.to_string()).map_err(|e| e.to_string())?;
        let stderr = std::fs::File::create(dir.join("stderr")).map_err(|e| e.to_string())?;
        let mut child = Command::new(&python)
            .arg(&script)
            .arg("--dir")
            .arg(&dir)
            .arg("--seed")
            .arg(&seed_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("starting the fake Kubernetes API server: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut fake = Self {
            child,
            vars: Vars::new(),
            log: dir.join("fake-kube-apiserver.log"),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.starts_with("fake-kube-apiserver ready ") => break,
                Ok(_) => {}
                Err(_) => {
                    return Err(format!(
                        "the fake Kubernetes API server did not start:\n{}",
                        std::fs::read_to_string(dir.join("stderr")).unwrap_or_default()
                    ));
                }
            }
        }
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).map_err(|e| e.to_string());
        let info: Value = serde_json::from_str(&read("server.json")?).map_err(|e| e.to_string())?;
        let tokens: Value =
            serde_json::from_str(&read("tokens.json")?).map_err(|e| e.to_string())?;
        let vars = &mut fake.vars;
        vars.insert(
            "kube_host".into(),
            info["url"].as_str().unwrap_or_default().to_owned(),
        );
        vars.insert("kube_ca".into(), read("ca.crt")?);
        vars.insert("kube_untrusted_ca".into(), read("untrusted-ca.crt")?);
        vars.insert("kube_sa_public_key".into(), read("sa.pub")?);
        for (name, value) in tokens.as_object().into_iter().flatten() {
            vars.insert(
                format!("kube_{name}"),
                value.as_str().unwrap_or_default().to_owned(),
            );
        }
        Ok(fake)
    }

    /// Schema violations the fake saw (its log says which request), for the scenario's report.
    pub fn violations(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("SCHEMA VIOLATION"))
            .map(str::to_owned)
            .collect()
    }
}
