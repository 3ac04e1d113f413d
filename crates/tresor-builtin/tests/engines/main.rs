//! The engines and auth methods through the test harness (`support`), as the core's router
//! calls them. Every file here was its own test binary, each linking the same dependencies and
//! recompiling `support`; one binary links once, and libtest runs them all side by side (each
//! test has its own storage and clock: nothing is shared but the code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

#[path = "../support/mod.rs"]
mod support;

mod auth_approle;
mod auth_kubernetes;
mod bad_input;
mod cubbyhole;
mod kv_model;
mod kv_snapshots;
mod kv_upgrade;
mod kv_v1;
mod kv_v2_data;
mod kv_v2_listing;
mod kv_v2_metadata;
mod kv_v2_versions;
mod transit_crypt;
mod transit_hostile;
mod transit_keys_io;
mod transit_sign;
mod transit_throughput;
