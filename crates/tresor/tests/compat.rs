//! Differential compatibility tests: every scenario in `compat/scenarios/` is replayed against
//! a real OpenBao (the reference implementation) and against Tresor, and the answers must
//! match after the reviewed normalisation in `compat/normalise.json`, except for the
//! deliberate differences in `compat/DIFFERENCES.md`. Needs `bao`: `scripts/install-peers.sh`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

#[path = "compat/mod.rs"]
mod compat;

/// One test runs all scenarios, in parallel, each printing its own result line: the scenarios
/// are data files, so they cannot each be a `#[test]` function.
#[test]
fn openbao_and_tresor_answer_alike() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(compat::run_all());
}
