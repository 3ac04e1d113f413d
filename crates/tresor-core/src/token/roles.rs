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
    /// `service`, `batch`, `default-service` or `default-batch` (empty: `default-service`).
    #[serde(default)]
    pub token_type: String,
    #[serde(default)]
    pub token_num_uses: i64,
}

impl TokenRole {
    /// The role's token type as Vault shows it.
    pub fn token_type(&self) -> &str {
        if self.token_type.is_empty() {
            "default-service"
        } else {
            &self.token_type
        }
    }

    pub fn to_data(&self) -> Map<String, Value> {
        let mut v = json!({
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
            "token_type": self.token_type(),
        });
        // OpenBao shows the use count only once one is set.
        if self.token_num_uses != 0
            && let Some(o) = v.as_object_mut()
        {
            o.insert("token_num_uses".into(), json!(self.token_num_uses));
        }
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
        if let Some(t) = params::string(data, "token_type")? {
            if !super::TOKEN_TYPES.contains(&t.as_str()) {
                return Err(CoreError::InvalidRequest(format!(
                    "invalid 'token_type' value {t:?}"
                )));
            }
            self.token_type = t;
        }
        if let Some(n) = params::integer(data, "token_num_uses")? {
            self.token_num_uses = n;
        }
        // Batch tokens cannot be revoked, renewed or counted: a role that promises any of
        // that cannot issue them (OpenBao's checks, in its order).
        if self.token_type == "batch" {
            let refuse = |what: &str| {
                Err(CoreError::InvalidRequest(format!(
                    "'token_type' cannot be 'batch' when role is set to generate {what}"
                )))
            };
            if !self.orphan {
                return refuse("non-orphan tokens");
            }
            if self.token_period != 0 {
                return refuse("periodic tokens");
            }
            if self.renewable {
                return refuse("renewable tokens");
            }
            if self.token_explicit_max_ttl != 0 {
                return refuse("tokens with an explicit max TTL");
            }
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
