//! Dynamic roles: `roles/:name` (write, read, delete, LIST), stored at `role/<name>`.
//!
//! A write merges into the existing role; on create, absent fields take their defaults, as in
//! Vault. A role and a static role may not share a name.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tresor_sdk::engine::{EngineError, EngineResult, Operation, Request, Response};
use tresor_sdk::storage::Storage;

use super::config::statement_list;
use super::static_roles;
use crate::common::fields;

pub(crate) const PREFIX: &str = "role/";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Role {
    pub db_name: String,
    #[serde(default)]
    pub creation_statements: Vec<String>,
    #[serde(default)]
    pub revocation_statements: Vec<String>,
    #[serde(default)]
    pub rollback_statements: Vec<String>,
    #[serde(default)]
    pub renew_statements: Vec<String>,
    /// Seconds; 0 means the mount's default lease TTL.
    #[serde(default)]
    pub default_ttl: u64,
    /// Seconds; 0 means the mount's maximum.
    #[serde(default)]
    pub max_ttl: u64,
    #[serde(default = "password_type")]
    pub credential_type: String,
    #[serde(default)]
    pub credential_config: Map<String, Value>,
}

fn password_type() -> String {
    "password".to_owned()
}

pub(crate) async fn load(storage: &dyn Storage, name: &str) -> EngineResult<Option<Role>> {
    match storage.get(&format!("{PREFIX}{name}")).await? {
        Some(raw) => serde_json::from_slice(raw.expose())
            .map(Some)
            .map_err(|e| EngineError::Internal(format!("stored role is malformed: {e}"))),
        None => Ok(None),
    }
}

pub(crate) async fn exists(storage: &dyn Storage, name: &str) -> EngineResult<bool> {
    Ok(storage.get(&format!("{PREFIX}{name}")).await?.is_some())
}

/// `credential_type` and `credential_config` as a write sets them. Only passwords can be
/// issued for PostgreSQL; the other Vault types are refused at write time.
pub(crate) fn credential_fields(
    request: &Request,
    credential_type: &mut String,
    credential_config: &mut Map<String, Value>,
) -> EngineResult<()> {
    if let Some(kind) = fields::string(request, "credential_type")? {
        match kind.as_str() {
            "password" => {}
            "rsa_private_key" | "client_certificate" => {
                return Err(EngineError::InvalidRequest(format!(
                    "unsupported credential_type: {kind:?}"
                )));
            }
            other => {
                return Err(EngineError::InvalidRequest(format!(
                    "invalid credential_type {other:?}"
                )));
            }
        }
        *credential_type = kind;
    }
    if let Some(config) = fields::map(request, "credential_config")? {
        let mut checked = Map::new();
        for (key, value) in config {
            match key.as_str() {
                "password_policy" => {
                    let policy = fields::to_string(&value).map_err(|_| {
                        EngineError::InvalidRequest(
                            "credential_config validation failed: password_policy must be a string"
                                .to_owned(),
                        )
                    })?;
                    if !policy.is_empty() {
                        checked.insert(key, Value::String(policy));
                    }
                }
                other => {
                    return Err(EngineError::InvalidRequest(format!(
                        "credential_config validation failed: unknown field {other:?}"
                    )));
                }
            }
        }
        *credential_config = checked;
    }
    Ok(())
}

fn ttl_field(request: &Request, name: &str) -> EngineResult<Option<u64>> {
    Ok(fields::duration(request, name, false)?.map(|s| u64::try_from(s).unwrap_or(0)))
}

/// `POST roles/:name`.
pub(crate) async fn write(
    request: &Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    if static_roles::exists(storage, name).await? {
        return Err(EngineError::InvalidRequest(
            "Role and Static Role names must be unique".to_owned(),
        ));
    }
    let create = request.operation == Operation::Create;
    let existing = load(storage, name).await?;
    let create = create || existing.is_none();
    let mut role = existing.unwrap_or_else(|| Role {
        credential_type: password_type(),
        ..Role::default()
    });
    if let Some(db) = fields::string(request, "db_name")? {
        role.db_name = db;
    }
    if role.db_name.is_empty() {
        return Err(EngineError::InvalidRequest(
            "database name is required".to_owned(),
        ));
    }
    credential_fields(
        request,
        &mut role.credential_type,
        &mut role.credential_config,
    )?;
    for (field, slot) in [
        ("creation_statements", &mut role.creation_statements),
        ("revocation_statements", &mut role.revocation_statements),
        ("rollback_statements", &mut role.rollback_statements),
        ("renew_statements", &mut role.renew_statements),
    ] {
        if let Some(statements) = statement_list(request, field)? {
            *slot = statements;
        } else if create {
            slot.clear();
        }
    }
    role.revocation_statements.retain(|s| !s.trim().is_empty());
    if let Some(ttl) = ttl_field(request, "default_ttl")? {
        role.default_ttl = ttl;
    }
    if let Some(ttl) = ttl_field(request, "max_ttl")? {
        role.max_ttl = ttl;
    }
    let bytes = serde_json::to_vec(&role).map_err(|e| EngineError::Internal(e.to_string()))?;
    storage.put(&format!("{PREFIX}{name}"), &bytes).await?;
    Ok(None)
}

/// `GET roles/:name`.
pub(crate) async fn read(storage: &dyn Storage, name: &str) -> EngineResult<Option<Response>> {
    let role = load(storage, name).await?.ok_or(EngineError::NotFound)?;
    let mut data = Map::new();
    data.insert(
        "creation_statements".into(),
        json!(role.creation_statements),
    );
    if !role.credential_config.is_empty() {
        data.insert(
            "credential_config".into(),
            Value::Object(role.credential_config.clone()),
        );
    }
    data.insert("credential_type".into(), json!(role.credential_type));
    data.insert("db_name".into(), json!(role.db_name));
    data.insert("default_ttl".into(), json!(role.default_ttl));
    data.insert("max_ttl".into(), json!(role.max_ttl));
    data.insert("renew_statements".into(), json!(role.renew_statements));
    data.insert(
        "revocation_statements".into(),
        json!(role.revocation_statements),
    );
    data.insert(
        "rollback_statements".into(),
        json!(role.rollback_statements),
    );
    Ok(Some(Response::with_data(data)))
}

pub(crate) async fn delete(storage: &dyn Storage, name: &str) -> EngineResult<Option<Response>> {
    storage.delete(&format!("{PREFIX}{name}")).await?;
    Ok(None)
}

pub(crate) async fn list(storage: &dyn Storage) -> EngineResult<Option<Response>> {
    super::list_keys(storage, PREFIX).await
}
