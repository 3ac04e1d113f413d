//! Built-in secrets engines.
//!
//! # Layout
//! - [`kv`]: KV v1 and v2 (mount types `kv`, `kv-v2`).
//! - [`cubbyhole`]: per-token storage (mount type `cubbyhole`).
//! - [`transit`]: encryption as a service (mount type `transit`).
//! - [`database`]: dynamic and static PostgreSQL credentials (mount type `database`).

use std::sync::Arc;

use tresor_sdk::engine::EngineFactory;

pub mod cubbyhole;
pub mod database;
pub mod kv;
pub mod transit;

/// Every built-in secrets engine factory, for the core's mount table to register.
pub fn factories() -> Vec<Arc<dyn EngineFactory>> {
    vec![
        Arc::new(kv::KvFactory::default()),
        Arc::new(cubbyhole::CubbyholeFactory),
        Arc::new(transit::TransitFactory::default()),
        Arc::new(database::DatabaseFactory::default()),
    ]
}
