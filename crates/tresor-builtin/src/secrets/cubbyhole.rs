//! The cubbyhole engine: a private KV v1-like space per token.
//!
//! Every storage key is `<client_token_key>/<path>`, so one token can never name another's
//! data. When a token is revoked its whole `<client_token_key>/` prefix must be deleted; the
//! core does that through [`storage_prefix`], since the engine never learns of revocations.
//! Responses match OpenBao's cubbyhole: no lease, no `ttl` handling, no SCAN or PATCH.

use std::sync::Arc;

use async_trait::async_trait;
use tresor_sdk::engine::{
    EngineError, EngineFactory, EngineResult, MountInfo, Operation, Request, Response, SecretEngine,
};
use tresor_sdk::storage::Storage;

use crate::common::{keypath, passthrough};

/// Builds [`Cubbyhole`] engines for mount type `cubbyhole`.
#[derive(Debug, Default, Clone, Copy)]
pub struct CubbyholeFactory;

impl EngineFactory for CubbyholeFactory {
    fn types(&self) -> &[&'static str] {
        &["cubbyhole"]
    }

    fn build(&self, _mount: &MountInfo) -> EngineResult<Arc<dyn SecretEngine>> {
        Ok(Arc::new(Cubbyhole))
    }
}

/// The cubbyhole engine. It keeps no state: everything is in the mount's storage.
#[derive(Debug, Default, Clone, Copy)]
pub struct Cubbyhole;

/// The storage prefix holding one token's cubbyhole, relative to the mount's view.
pub fn storage_prefix(client_token_key: &str) -> EngineResult<String> {
    // The key is a salted hash; anything that is not one plain segment would let a crafted
    // key reach outside its own prefix, so it is refused.
    if client_token_key.is_empty() {
        return Err(EngineError::PermissionDenied);
    }
    if client_token_key.contains(['/', '\0']) || matches!(client_token_key, "." | "..") {
        return Err(EngineError::Internal("malformed client token key".into()));
    }
    Ok(format!("{client_token_key}/"))
}

#[async_trait]
impl SecretEngine for Cubbyhole {
    /// Reads and lists only look storage up.
    fn pure_reads(&self) -> bool {
        true
    }

    async fn handle(&self, req: &Request, storage: &dyn Storage) -> EngineResult<Option<Response>> {
        let prefix = storage_prefix(&req.client_token_key)?;
        let path = req.path.as_str();
        keypath::check_write_target(req.operation, path)?;
        match req.operation {
            Operation::Read => {
                if path.is_empty() {
                    return Err(EngineError::InvalidRequest("missing path".into()));
                }
                let data = passthrough::read(storage, &prefix, path)
                    .await?
                    .ok_or(EngineError::NotFound)?;
                Ok(Some(Response::with_data(data)))
            }
            Operation::Create | Operation::Update => {
                passthrough::write(storage, &prefix, path, &req.data).await?;
                Ok(None)
            }
            Operation::Delete => {
                passthrough::delete(storage, &prefix, path).await?;
                Ok(None)
            }
            Operation::List => passthrough::list(storage, &prefix, path).await.map(Some),
            Operation::Scan | Operation::Patch => Err(EngineError::UnsupportedOperation),
        }
    }

    async fn exists(&self, req: &Request, storage: &dyn Storage) -> EngineResult<Option<bool>> {
        let prefix = storage_prefix(&req.client_token_key)?;
        passthrough::exists(storage, &prefix, &req.path)
            .await
            .map(Some)
    }
}
