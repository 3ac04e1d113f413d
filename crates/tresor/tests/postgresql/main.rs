//! The real binary on `storage "postgresql"` against the real PostgreSQL on 127.0.0.1:5432
//! (and clusters of their own for TLS): storage, `operator migrate` and HA. Every file here was
//! its own test binary, each linking the same dependencies and recompiling `common`; one
//! binary links once, and libtest runs the tests of all of them side by side.
//!
//! Nothing here may depend on being alone in the process or in PostgreSQL: each test has a
//! database of its own (`TestDb`: the process id, a counter and the time in its name), sessions
//! are found by `application_name` *and* `current_database()`, fixed ports come from a file's
//! own documented range. `ha_failover_load.rs` stays a binary of its own: its load and
//! failover figures assume nothing else runs (its tests hold one lock and a port range).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

#[path = "../common/mod.rs"]
mod common;

mod ha_forwarding;
mod ha_operations_doc;
mod ha_postgresql;
mod operator_migrate;
mod storage_postgresql;
mod storage_postgresql_tls;
