//! KV v1 and v2 through hvac, the Python Vault client (`tests/hvac/kv.py`), against a dev
//! server. hvac lives in `.build/venv`, installed by `scripts/install-peers.sh`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Server;

fn venv_python() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = workspace.join(".build/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/install-peers.sh to install hvac",
        python.display()
    );
    python
}

#[test]
fn hvac_drives_kv_v1_and_v2_end_to_end() {
    let python = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), "root");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hvac/kv.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&server.addr)
        .arg("root")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "hvac script failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{}",
        out.status,
        server.log_text()
    );
    assert_eq!(stdout.trim(), "ok", "{stderr}");
}
