//! KV v1 and v2 through hvac, the Python Vault client (`tests/hvac/kv.py`), against a dev
//! server. hvac lives in `.build/venv`, installed by `scripts/install-peers.sh`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use common::Server;

#[test]
fn hvac_drives_kv_v1_and_v2_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), "root");
    common::run_hvac_script(&server, "kv.py");
}
