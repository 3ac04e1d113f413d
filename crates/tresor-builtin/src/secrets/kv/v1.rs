//! KV version 1: one JSON object per path, no history.
//!
//! A read reports the secret's `ttl` (or legacy `lease`) field as the response's lease
//! duration, falling back to the mount's default lease TTL: a hint to re-read, never a
//! managed lease (OpenBao's non-leased passthrough).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tresor_sdk::engine::{
    EngineError, EngineResult, LeaseSpec, Operation, Request, Response, SecretEngine,
};
use tresor_sdk::storage::Storage;

use super::layout::V1_PREFIX;
use super::{Version, upgrade};
use crate::clock::Clock;
use crate::common::{duration, keypath, passthrough};

/// The KV v1 engine.
#[derive(Debug, Clone)]
pub struct KvV1 {
    clock: Arc<dyn Clock>,
}

impl KvV1 {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { clock }
    }
}

#[async_trait]
impl SecretEngine for KvV1 {
    /// Reads and lists only look storage up.
    fn pure_reads(&self) -> bool {
        true
    }

    async fn handle(&self, req: &Request, storage: &dyn Storage) -> EngineResult<Option<Response>> {
        let path = req.path.as_str();
        keypath::check_write_target(req.operation, path)?;
        match req.operation {
            Operation::Read => {
                let data = passthrough::read(storage, V1_PREFIX, path)
                    .await?
                    .ok_or(EngineError::NotFound)?;
                let ttl = ttl_hint(&data).unwrap_or(req.mount.default_lease_ttl);
                let mut response = Response::with_data(data);
                response.lease = Some(LeaseSpec {
                    ttl,
                    renewable: false,
                    managed: false,
                    ..LeaseSpec::default()
                });
                Ok(Some(response))
            }
            Operation::Create | Operation::Update => {
                passthrough::write(storage, V1_PREFIX, path, &req.data).await?;
                Ok(None)
            }
            Operation::Delete => {
                passthrough::delete(storage, V1_PREFIX, path).await?;
                Ok(None)
            }
            Operation::List => {
                let mut response = passthrough::list(storage, V1_PREFIX, path).await?;
                // KV v1 lists take no parameters (no `after`/`limit` paging, unlike v2); say
                // which were ignored, as OpenBao does.
                let mut ignored: Vec<&str> = req.data.keys().map(String::as_str).collect();
                if !ignored.is_empty() {
                    ignored.sort_unstable();
                    response.warnings.push(format!(
                        "Endpoint ignored these unrecognized parameters: [{}]",
                        ignored.join(" ")
                    ));
                }
                Ok(Some(response))
            }
            Operation::Scan => passthrough::scan(storage, V1_PREFIX, path).await.map(Some),
            Operation::Patch => Err(EngineError::UnsupportedOperation),
        }
    }

    async fn exists(&self, req: &Request, storage: &dyn Storage) -> EngineResult<Option<bool>> {
        passthrough::exists(storage, V1_PREFIX, &req.path)
            .await
            .map(Some)
    }

    async fn options_changed(
        &self,
        old: &BTreeMap<String, String>,
        new: &BTreeMap<String, String>,
        storage: &dyn Storage,
    ) -> EngineResult<()> {
        upgrade::options_changed(Version::V1, old, new, storage, self.clock.as_ref()).await
    }
}

/// The secret's own `ttl` (else `lease`) field as a duration; unparseable values are ignored,
/// as OpenBao ignores them.
fn ttl_hint(data: &Map<String, Value>) -> Option<Duration> {
    let raw = data.get("ttl").or_else(|| data.get("lease"))?;
    let secs = duration::parse_seconds(raw).ok()?;
    Some(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}
