//! Response wrapping: a response is stored in the cubbyhole of a fresh single-use token (the
//! wrapping token, policy `response-wrapping`) and the caller gets only `wrap_info`; whoever
//! holds the token unwraps the response exactly once (`sys/wrapping/unwrap`). An AppRole
//! secret id can so reach a workload without anyone on the way seeing it, and a second unwrap
//! (an interception) fails loudly.
//!
//! The stored record lives at `<token hash>/response` in the cubbyhole mount's storage, as the
//! cubbyhole engine lays out a token's data (`{"response": "<the response JSON>"}`), so the
//! token's revocation deletes it with the rest of its cubbyhole.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tresor_sdk::secret::SecretString;

use crate::core::{Active, Core};
use crate::error::{CoreError, CoreResult};
use crate::mount::SYSTEM_DEFAULT_TTL;
use crate::token::entry::{TokenEntry, now_ns, rfc3339};
use crate::token::{Resolved, TokenStore};

/// The policy of every wrapping token (built in, like `root`).
pub const WRAPPING_POLICY: &str = "response-wrapping";
/// Its rules, as in Vault: read its own cubbyhole response, or unwrap.
pub const WRAPPING_POLICY_TEXT: &str = r#"
path "cubbyhole/response" {
    capabilities = ["create", "read"]
}
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}
"#;
/// The creation path recorded on wrapping tokens (their lease lives under it).
const WRAPPING_TOKEN_PATH: &str = "auth/token/wrapping";

/// What the cubbyhole keeps besides the response, for `sys/wrapping/lookup` and rewrap.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    response: String,
    creation_path: String,
    creation_ttl: u64,
    creation_ns: i64,
    #[serde(default)]
    wrapped_accessor: Option<String>,
}

fn not_valid() -> CoreError {
    CoreError::InvalidRequest("wrapping token is not valid or does not exist".to_owned())
}

impl Core {
    fn cubbyhole_prefix(active: &Active) -> CoreResult<String> {
        crate::token::endpoints::cubbyhole_prefix(active).ok_or_else(|| {
            CoreError::Internal("response wrapping needs the cubbyhole mount".into())
        })
    }

    /// Wraps `response` (the complete JSON body the caller would have got) in a new wrapping
    /// token valid for `ttl` seconds; returns the `wrap_info` block.
    pub async fn wrap_response(
        &self,
        response: &Value,
        ttl: u64,
        creation_path: &str,
        wrapped_accessor: Option<String>,
    ) -> CoreResult<Value> {
        let active = self.active()?;
        let ttl = ttl.min(SYSTEM_DEFAULT_TTL.as_secs());
        let now = now_ns();
        let entry = TokenEntry {
            accessor: TokenStore::new_accessor(),
            policies: vec![WRAPPING_POLICY.to_owned()],
            parent: None,
            path: WRAPPING_TOKEN_PATH.to_owned(),
            meta: None,
            display_name: "response-wrapping".to_owned(),
            num_uses: 1,
            created_ns: now,
            creation_ttl: ttl,
            explicit_max_ttl: ttl,
            period: 0,
            renewable: false,
            expire_ns: Some(now.saturating_add((ttl as i64).saturating_mul(1_000_000_000))),
            last_renewal_ns: None,
            last_ttl: 0,
            role: None,
            entity_id: None,
            bound_cidrs: Vec::new(),
            login: None,
            batch: false,
        };
        let token = TokenStore::new_token_id();
        let prefix = Self::cubbyhole_prefix(&active)?;
        let resolved = active.tokens.insert(token.expose(), entry).await?;
        let stored = Stored {
            response: serde_json::to_string(response)?,
            creation_path: creation_path.to_owned(),
            creation_ttl: ttl,
            creation_ns: now,
            wrapped_accessor: wrapped_accessor.clone(),
        };
        let record = json!({"response": serde_json::to_string(&stored)?});
        if let Err(err) = self
            .barrier()
            .put(
                &format!("{prefix}{}/response", resolved.id_hash),
                &serde_json::to_vec(&record)?,
            )
            .await
        {
            // No half-made wrapping token: a token without its response is useless.
            let _ = self.revoke(&active, &resolved.id_hash).await;
            return Err(err.into());
        }
        let mut info = json!({
            "token": token.expose(),
            "accessor": resolved.entry.accessor,
            "ttl": ttl,
            "creation_time": rfc3339(now),
            "creation_path": creation_path,
        });
        if let (Some(acc), Some(obj)) = (wrapped_accessor, info.as_object_mut()) {
            obj.insert("wrapped_accessor".into(), json!(acc));
        }
        Ok(info)
    }

    /// The wrapping token and its stored record, or Vault's "not valid" error.
    async fn wrapped(&self, active: &Active, token: &str) -> CoreResult<(Resolved, Stored)> {
        let resolved = active.tokens.lookup(token).await?.ok_or_else(not_valid)?;
        if resolved.entry.path != WRAPPING_TOKEN_PATH
            || resolved.entry.policies != [WRAPPING_POLICY]
        {
            return Err(not_valid());
        }
        let prefix = Self::cubbyhole_prefix(active)?;
        let raw = self
            .barrier()
            .get(&format!("{prefix}{}/response", resolved.id_hash))
            .await?
            .ok_or_else(not_valid)?;
        let record: Map<String, Value> = serde_json::from_slice(raw.expose())?;
        let inner = record
            .get("response")
            .and_then(Value::as_str)
            .ok_or_else(not_valid)?;
        let stored: Stored = serde_json::from_str(inner).map_err(|_| not_valid())?;
        Ok((resolved, stored))
    }

    /// `sys/wrapping/unwrap`: the wrapped response, once. The token is revoked before the
    /// response is returned; of two concurrent unwraps only one gets it.
    pub async fn unwrap(&self, token: &SecretString) -> CoreResult<Value> {
        let active = self.active()?;
        let _one_at_a_time = active.wrapping.lock().await;
        let (resolved, stored) = self.wrapped(&active, token.expose()).await?;
        self.revoke(&active, &resolved.id_hash).await?;
        serde_json::from_str(&stored.response).map_err(|_| not_valid())
    }

    /// `sys/wrapping/lookup`: when and where the token was made, and for how long.
    pub async fn wrapping_lookup(&self, token: &SecretString) -> CoreResult<Map<String, Value>> {
        let active = self.active()?;
        let (_, stored) = self.wrapped(&active, token.expose()).await?;
        let mut data = Map::new();
        data.insert("creation_path".into(), json!(stored.creation_path));
        data.insert("creation_time".into(), rfc3339(stored.creation_ns));
        data.insert("creation_ttl".into(), json!(stored.creation_ttl));
        Ok(data)
    }

    /// `sys/wrapping/rewrap`: the same response under a new token (same TTL); the old token
    /// is revoked.
    pub async fn rewrap(&self, token: &SecretString) -> CoreResult<Value> {
        let active = self.active()?;
        let _one_at_a_time = active.wrapping.lock().await;
        let (resolved, stored) = self.wrapped(&active, token.expose()).await?;
        let response: Value = serde_json::from_str(&stored.response).map_err(|_| not_valid())?;
        let info = self
            .wrap_response(
                &response,
                stored.creation_ttl,
                &stored.creation_path,
                stored.wrapped_accessor.clone(),
            )
            .await?;
        self.revoke(&active, &resolved.id_hash).await?;
        Ok(info)
    }
}
