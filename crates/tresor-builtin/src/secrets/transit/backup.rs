//! `backup/:name` and `restore[/:name]`.
//!
//! A backup is the key's stored form (settings and every version), JSON then base64, in
//! the clear: only keys that are both `exportable` and `allow_plaintext_backup` can be
//! backed up, as in Vault. The format is Tresor's own (Vault's embeds Go-specific key
//! encodings), so backups restore into Tresor, not into Vault or OpenBao.

use serde::{Deserialize, Serialize};
use serde_json::json;
use tresor_sdk::engine::{EngineResult, Request, Response};
use tresor_sdk::storage::Storage;
use zeroize::Zeroizing;

use super::material::{base64_decode_secret, base64_std};
use super::policy::StoredKey;
use super::req::{self, bad, object, respond};
use super::{Transit, valid_name};

/// Marks the format so a future change can be told apart.
const FORMAT: &str = "tresor-transit-backup-v1";

#[derive(Serialize, Deserialize)]
struct Backup {
    format: String,
    key: StoredKey,
}

pub(crate) async fn backup(
    transit: &Transit,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    let (_guard, stored) = transit
        .keys
        .lock_existing(storage, name, || bad(format!("key {name:?} not found")))
        .await?;
    if !stored.meta.exportable {
        return Err(bad("exporting is disallowed on the policy"));
    }
    if !stored.meta.allow_plaintext_backup {
        return Err(bad("plaintext backup is disallowed on the policy"));
    }
    let backup = Backup {
        format: FORMAT.to_owned(),
        key: stored,
    };
    let json = Zeroizing::new(
        serde_json::to_vec(&backup)
            .map_err(|e| tresor_sdk::engine::EngineError::Internal(e.to_string()))?,
    );
    respond(object(json!({ "backup": base64_std(&json) })))
}

pub(crate) async fn restore(
    transit: &Transit,
    request: &Request,
    storage: &dyn Storage,
    name: Option<&str>,
) -> EngineResult<Option<Response>> {
    let text = req::string_or_default(request, "backup")?;
    let force = req::bool(request, "force")?.unwrap_or(false);
    if text.is_empty() {
        return Err(bad("'backup' must be supplied"));
    }
    let json = base64_decode_secret(&text)
        .ok_or_else(|| bad("failed to decode backup: invalid base64"))?;
    let backup: Backup = serde_json::from_slice(&json)
        .map_err(|_| bad("failed to decode backup: not a Tresor transit backup"))?;
    if backup.format != FORMAT {
        return Err(bad("failed to decode backup: unknown backup format"));
    }
    let mut stored = backup.key;
    if let Some(name) = name {
        stored.meta.name = name.to_owned();
    }
    let name = stored.meta.name.clone();
    if !valid_name(&name) {
        return Err(bad("key names cannot be paths"));
    }
    // Parse every version before writing anything: a corrupt backup writes nothing.
    stored
        .load()
        .map_err(|e| bad(format!("failed to restore the policy {name:?}: {e}")))?;
    let _guard = transit.keys.lock(&name).await;
    if !force && transit.keys.read_stored(storage, &name).await?.is_some() {
        return Err(bad(format!("key {name:?} already exists")));
    }
    transit.keys.save(storage, &stored).await?;
    Ok(None)
}
