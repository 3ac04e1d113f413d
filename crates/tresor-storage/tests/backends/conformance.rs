//! Runs the shared backend contract against every backend this crate ships.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use tresor_storage::conformance::test_suite;
use tresor_storage::{Backend, EmbeddedBackend, MemoryBackend};

#[tokio::test(flavor = "multi_thread")]
async fn memory_backend_meets_the_contract() {
    test_suite(&MemoryBackend::new()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_backend_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let backend = EmbeddedBackend::open(dir.path().join("tresor.redb")).unwrap();
    test_suite(&backend).await;
    // Twice on the same store: the suite must not trip over its own earlier run.
    test_suite(&backend).await;
    backend.close().await.unwrap();
}
