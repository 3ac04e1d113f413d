//! Token roles: named templates that let a policy grant `auth/token/create/<role>` without
//! granting arbitrary token creation.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::barrier::Barrier;
use crate::error::{CoreError, CoreResult};
use crate::params;

const PREFIX: &str = "sys/token/role/";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenRole {
    pub name: String,
    pub allowed_policies: Vec<String>,
    pub disallowed_policies: Vec<String>,
    pub orphan: bool,
    pub renewable: bool,
    pub path_suffix: String,
    /// Seconds.
    pub token_explicit_max_ttl: u64,
    /// Seconds.
    pub token_period: u64,
    pub token_no_default_policy: bool,
}

impl TokenRole {
    pub fn to_data(&self) -> Map<String, Value> {
        let v = json!({
            "allowed_entity_aliases": null,
            "allowed_policies": self.allowed_policies,
            "allowed_policies_glob": [],
            "disallowed_policies": self.disallowed_policies,
            "disallowed_policies_glob": [],
            // The legacy names are shown but no longer set, as in OpenBao.
            "explicit_max_ttl": 0,
            "name": self.name,
            "orphan": self.orphan,
            "path_suffix": self.path_suffix,
            "period": 0,
            "renewable": self.renewable,
            "token_explicit_max_ttl": self.token_explicit_max_ttl,
            "token_no_default_policy": self.token_no_default_policy,
            "token_period": self.token_period,
            "token_type": "default-service",
        });
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    /// Applies a write to an existing (or default) role.
    pub fn apply(&mut self, data: &Map<String, Value>) -> CoreResult<()> {
        if let Some(v) = params::string_list(data, "allowed_policies")? {
            self.allowed_policies = normalise_policies(v);
        }
        if let Some(v) = params::string_list(data, "disallowed_policies")? {
            self.disallowed_policies = normalise_policies(v);
        }
        if let Some(v) = params::boolean(data, "orphan")? {
            self.orphan = v;
        }
        if let Some(v) = params::boolean(data, "renewable")? {
            self.renewable = v;
        }
        if let Some(v) = params::string(data, "path_suffix")? {
            if !v.is_empty() && !valid_path_suffix(&v) {
                return Err(CoreError::InvalidRequest(
                    "given role path suffix contains invalid characters; must match \\w[\\w-.]+\\w"
                        .to_owned(),
                ));
            }
            self.path_suffix = v;
        }
        for key in ["token_explicit_max_ttl", "explicit_max_ttl"] {
            if let Some(v) = params::duration_secs(data, key)? {
                self.token_explicit_max_ttl = v;
            }
        }
        for key in ["token_period", "period"] {
            if let Some(v) = params::duration_secs(data, key)? {
                self.token_period = v;
            }
        }
        if let Some(v) = params::boolean(data, "token_no_default_policy")? {
            self.token_no_default_policy = v;
        }
        if let Some(t) = params::string(data, "token_type")?
            && !matches!(t.as_str(), "service" | "default-service" | "default")
        {
            return Err(CoreError::InvalidRequest(format!(
                "token_type {t:?} is not supported by Tresor yet: only service tokens exist"
            )));
        }
        Ok(())
    }
}

/// OpenBao's `\w[\w-.]+\w`: at least three characters, word characters at both ends.
fn valid_path_suffix(v: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let chars: Vec<char> = v.chars().collect();
    chars.len() >= 3
        && chars.first().is_some_and(|c| word(*c))
        && chars.last().is_some_and(|c| word(*c))
        && chars.iter().all(|c| word(*c) || *c == '-' || *c == '.')
}

pub use tresor_sdk::auth::normalise_policies;

pub async fn read(barrier: &Barrier, name: &str) -> CoreResult<Option<TokenRole>> {
    match barrier.get(&format!("{PREFIX}{name}")).await? {
        Some(raw) => Ok(Some(serde_json::from_slice(raw.expose())?)),
        None => Ok(None),
    }
}

pub async fn write(barrier: &Barrier, role: &TokenRole) -> CoreResult<()> {
    barrier
        .put(
            &format!("{PREFIX}{}", role.name),
            &serde_json::to_vec(role)?,
        )
        .await?;
    Ok(())
}

pub async fn delete(barrier: &Barrier, name: &str) -> CoreResult<()> {
    barrier.delete(&format!("{PREFIX}{name}")).await?;
    Ok(())
}

pub async fn list(barrier: &Barrier) -> CoreResult<Vec<String>> {
    Ok(barrier.list(PREFIX).await?)
}
