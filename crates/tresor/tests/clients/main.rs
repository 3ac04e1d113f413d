//! The `tresor` CLI's commands and the client library, through the real binary: every file
//! here was its own test binary, each linking the same dependencies and recompiling `common`;
//! one binary links once, and libtest runs the tests of all of them side by side.
//!
//! Nothing here may depend on being alone in the process: no `std::env::set_var`, no current
//! directory (a child process gets `current_dir` instead), no `~/.vault-token` shared with
//! another test (a CLI run that stores a token gets a HOME of its own), ports from the kernel.
//!
//! The `tresor sync` tests (`sync_once`, `sync_once_cluster`, `sync_rotation`, `sync_run`) are
//! here too, with `support_sync` and the FAKE Kubernetes API server of `support_kubernetes`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

#[path = "../common/mod.rs"]
mod common;
#[path = "../support_kubernetes/mod.rs"]
mod support_kubernetes;
#[path = "../support_sync/mod.rs"]
mod support_sync;

mod bootstrap;
mod cli;
mod cli_commands;
mod cli_token_helper;
mod client_tresor;
mod kv_cli;
mod lint_cli;
mod sync_kubernetes_auth;
mod sync_once;
mod sync_once_cluster;
mod sync_rotation;
mod sync_run;
mod sync_run_rotation;
