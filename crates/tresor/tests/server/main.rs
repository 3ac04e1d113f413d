//! One server's HTTP API and process, through the real binary: every file here was its own
//! test binary, each linking the same dependencies and recompiling `common`; one binary links
//! once, and libtest runs the tests of all of them side by side.
//!
//! Nothing here may depend on being alone in the process: no `std::env::set_var`, no current
//! directory, HOME or `~/.vault-token` shared with another test (a CLI run that stores a token
//! gets a HOME of its own), ports from the kernel (`127.0.0.1:0`) or from a file's own
//! documented range, PostgreSQL names made unique per test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

#[path = "../common/mod.rs"]
mod common;
#[path = "../support_jwt/mod.rs"]
mod support_jwt;
#[path = "../support_kubernetes/mod.rs"]
mod support_kubernetes;

mod access;
mod audit;
mod audit_socket;
mod auth_approle;
mod auth_jwt;
mod auth_kubernetes;
mod database;
mod dev_config;
mod kv_hvac;
mod kv_vaultrs;
mod leases;
mod lifecycle;
mod limits;
mod observability;
mod password_policies;
mod quotas;
mod rekey;
mod request_deadline;
mod seal;
mod tls;
mod transit_http;
mod transit_vaultrs;
mod wrapping;
