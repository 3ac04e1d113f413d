//! Connection configs: `config/:name` (write, read, delete, LIST) and `reset/:name`.
//!
//! Stored at `config/<name>`. As in Vault, every write field that is not one of the config's
//! own settings goes into `connection_details` and is echoed by reads (the plugin's fields:
//! `connection_url`, `username`, `max_open_connections`, …); the password is kept apart and
//! never returned. A write merges into the existing config. `verify_connection` (default
//! true, on every write) opens one connection before the config is stored.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tresor_sdk::engine::{EngineError, EngineResult, Operation, Request, Response};
use tresor_sdk::secret::SecretString;
use tresor_sdk::storage::Storage;

use super::pool::{self, Pool, PoolSettings, Target};
use super::username::{DEFAULT_TEMPLATE, Template};
use super::{Inner, secret_serde};
use crate::common::fields;

pub(crate) const PLUGIN: &str = "postgresql-database-plugin";
pub(crate) const PREFIX: &str = "config/";

/// The fields a write takes for the config itself; everything else is a connection detail.
const OWN_FIELDS: [&str; 8] = [
    "name",
    "plugin_name",
    "plugin_version",
    "allowed_roles",
    "verify_connection",
    "root_rotation_statements",
    "password_policy",
    "password",
];

/// One connection config as stored. `Debug` names the connection details but shows none of
/// their values (a `connection_url` may hold a literal password).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct StoredConfig {
    pub plugin_name: String,
    #[serde(default)]
    pub plugin_version: String,
    /// The write fields other than the config's own, as sent (merged over writes).
    #[serde(default)]
    pub connection_details: Map<String, Value>,
    #[serde(with = "secret_serde")]
    pub password: SecretString,
    /// A root password being rotated in: written before PostgreSQL is told, so a crash never
    /// loses the password PostgreSQL may already hold (see `rotate_root`).
    #[serde(default, with = "secret_serde::option")]
    pub pending_password: Option<SecretString>,
    #[serde(default)]
    pub allowed_roles: Vec<String>,
    #[serde(default)]
    pub root_rotation_statements: Vec<String>,
    #[serde(default)]
    pub password_policy: String,
}

impl std::fmt::Debug for StoredConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredConfig")
            .field("plugin_name", &self.plugin_name)
            .field(
                "connection_details",
                &self.connection_details.keys().collect::<Vec<_>>(),
            )
            .field("password", &self.password)
            .field("pending_password", &self.pending_password)
            .field("allowed_roles", &self.allowed_roles)
            .finish_non_exhaustive()
    }
}

/// A config with what was derived from it: settings checked, template parsed.
#[derive(Debug)]
pub(crate) struct Connection {
    pub stored: StoredConfig,
    pub username: String,
    pub username_template: Template,
    /// `scram-sha-256`: passwords reach PostgreSQL only as SCRAM verifiers.
    pub scram: bool,
    pub pool: Arc<Pool>,
}

impl Connection {
    /// Checks a stored (or about to be stored) config and builds its pool; nothing connects.
    pub(crate) fn build(stored: StoredConfig) -> Result<Self, String> {
        let details = &stored.connection_details;
        let text = |key: &str| -> Result<String, String> {
            match details.get(key) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(v) => {
                    fields::to_string(v).map_err(|_| format!("'{key}' expected type 'string'"))
                }
            }
        };
        let int = |key: &str| -> Result<i64, String> {
            match details.get(key) {
                None | Some(Value::Null) => Ok(0),
                Some(v) => {
                    fields::to_int(v).map_err(|_| format!("'{key}' cannot parse value as 'int'"))
                }
            }
        };
        let url = text("connection_url")?;
        if url.is_empty() {
            return Err("connection_url cannot be empty".to_owned());
        }
        let username = text("username")?;
        let lifetime = match details.get("max_connection_lifetime") {
            None | Some(Value::Null) => 0,
            Some(v) => fields::to_duration(v, false)
                .map_err(|e| format!("invalid max_connection_lifetime: {e}"))?,
        };
        let settings = PoolSettings::from_config(
            int("max_open_connections")?,
            int("max_idle_connections")?,
            lifetime,
        );
        let scram = match text("password_authentication")?.as_str() {
            "" | "password" => false,
            "scram-sha-256" => true,
            other => {
                return Err(format!(
                    "'{other}' is not a valid password authentication type"
                ));
            }
        };
        let template_source = text("username_template")?;
        let source = if template_source.is_empty() {
            DEFAULT_TEMPLATE
        } else {
            template_source.as_str()
        };
        let username_template =
            Template::parse(source).map_err(|e| format!("invalid username template: {e}"))?;
        let (pg_config, target) = pool::parse_connection(&url, &username, &stored.password)?;
        let pool = Arc::new(Pool::new(pg_config, target, settings));
        Ok(Self {
            stored,
            username,
            username_template,
            scram,
            pool,
        })
    }

    pub(crate) fn target(&self) -> &Target {
        self.pool.target()
    }

    /// Whether `role` may use this connection (`allowed_roles` globs; `*` alone allows all).
    pub(crate) fn allows(&self, role: &str) -> bool {
        self.stored
            .allowed_roles
            .iter()
            .any(|pattern| glob_match(pattern, role))
    }

    pub(crate) fn check_allowed(&self, role: &str) -> EngineResult<()> {
        if self.allows(role) {
            Ok(())
        } else {
            Err(EngineError::Failed(format!(
                "{role:?} is not an allowed role"
            )))
        }
    }

    /// The connection URL as reads show it: a literal password in it is masked, as OpenBao does.
    fn shown_url(url: &str) -> String {
        match literal_url_password(url) {
            Some((start, end)) => format!(
                "{}xxxxx{}",
                url.get(..start).unwrap_or(""),
                url.get(end..).unwrap_or("")
            ),
            None => url.to_owned(),
        }
    }
}

/// Vault's `StrListContainsGlob`: `*` matches any run of characters, anywhere in the pattern.
pub(crate) fn glob_match(pattern: &str, value: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == value;
    }
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    if !value.starts_with(first) || value.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = value.get(first.len()..).unwrap_or("");
    let middle = parts.get(1..parts.len() - 1).unwrap_or(&[]);
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = rest.get(i + part.len()..).unwrap_or(""),
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Where the literal password of a `scheme://user:password@host` URL lies, if it has one that
/// is not the `{{password}}` placeholder.
fn literal_url_password(url: &str) -> Option<(usize, usize)> {
    let scheme_end = url.find("://")? + 3;
    let rest = url.get(scheme_end..)?;
    let at = rest.find('@')?;
    let userinfo = rest.get(..at)?;
    let colon = userinfo.find(':')?;
    let password = userinfo.get(colon + 1..)?;
    if password.is_empty() || password == "{{password}}" {
        return None;
    }
    Some((scheme_end + colon + 1, scheme_end + at))
}

pub(crate) async fn load(storage: &dyn Storage, name: &str) -> EngineResult<Option<StoredConfig>> {
    match storage.get(&format!("{PREFIX}{name}")).await? {
        Some(raw) => serde_json::from_slice(raw.expose()).map(Some).map_err(|e| {
            EngineError::Internal(format!("stored connection config is malformed: {e}"))
        }),
        None => Ok(None),
    }
}

pub(crate) async fn save(
    storage: &dyn Storage,
    name: &str,
    config: &StoredConfig,
) -> EngineResult<()> {
    let bytes = zeroize::Zeroizing::new(
        serde_json::to_vec(config).map_err(|e| EngineError::Internal(e.to_string()))?,
    );
    storage.put(&format!("{PREFIX}{name}"), &bytes).await?;
    Ok(())
}

pub(crate) fn not_found(name: &str) -> EngineError {
    EngineError::Failed(format!(
        "failed to find entry for connection with name: {name:?}"
    ))
}

fn creating(msg: impl std::fmt::Display) -> EngineError {
    EngineError::InvalidRequest(format!("error creating database object: {msg}"))
}

/// `POST config/:name`.
pub(crate) async fn write(
    inner: &Inner,
    request: &Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    let _guard = inner.config_locks.lock(name).await;
    let existing = load(storage, name).await?;
    let is_new = existing.is_none();
    let mut config = existing.unwrap_or_else(|| StoredConfig {
        plugin_name: String::new(),
        plugin_version: String::new(),
        connection_details: Map::new(),
        password: SecretString::default(),
        pending_password: None,
        allowed_roles: Vec::new(),
        root_rotation_statements: Vec::new(),
        password_policy: String::new(),
    });
    if let Some(plugin) = fields::string(request, "plugin_name")? {
        config.plugin_name = plugin;
    }
    if config.plugin_name.is_empty() {
        return Err(EngineError::InvalidRequest("empty plugin name".to_owned()));
    }
    if config.plugin_name != PLUGIN {
        return Err(creating(format!(
            "plugin not found in the catalog: {}",
            config.plugin_name
        )));
    }
    if let Some(version) = fields::string(request, "plugin_version")? {
        config.plugin_version = version;
    }
    let verify = fields::bool(request, "verify_connection")?.unwrap_or(true);
    if let Some(roles) = fields::string_list(request, "allowed_roles")? {
        config.allowed_roles = roles;
    } else if is_new {
        config.allowed_roles = Vec::new();
    }
    if let Some(statements) = statement_list(request, "root_rotation_statements")? {
        config.root_rotation_statements = statements;
    }
    if let Some(policy) = fields::string(request, "password_policy")? {
        config.password_policy = policy;
    }
    if let Some(password) = fields::get(request, "password") {
        let password = fields::to_string(&password).map_err(|_| {
            EngineError::InvalidRequest("error converting input for field \"password\"".to_owned())
        })?;
        config.password = SecretString::new(password);
    }
    for (key, value) in &request.data {
        if OWN_FIELDS.contains(&key.as_str()) || value.is_null() {
            continue;
        }
        config.connection_details.insert(key.clone(), value.clone());
    }
    let mut warnings = Vec::new();
    let url = config
        .connection_details
        .get("connection_url")
        .and_then(Value::as_str)
        .unwrap_or("");
    if literal_url_password(url).is_some() {
        warnings.push(
            "Password found in connection_url, use a templated url to enable root rotation and \
             prevent read access to password information."
                .to_owned(),
        );
    }
    let connection = Connection::build(config).map_err(creating)?;
    if verify {
        connection
            .pool
            .connect()
            .await
            .map_err(|e| creating(format!("error verifying connection: {e}")))?;
    }
    // A rotation the previous config had pending is superseded by what the operator wrote.
    let mut config = connection.stored;
    config.pending_password = None;
    save(storage, name, &config).await?;
    inner.forget_connection(name);
    if warnings.is_empty() {
        Ok(None)
    } else {
        Ok(Some(Response {
            warnings,
            ..Response::default()
        }))
    }
}

/// `TypeStringSlice` for statements: a list, or one string (kept whole: statements contain
/// commas).
pub(crate) fn statement_list(request: &Request, name: &str) -> EngineResult<Option<Vec<String>>> {
    let Some(value) = fields::get(request, name) else {
        return Ok(None);
    };
    let err =
        || fields::conversion_error(name, "expected a list of strings", fields::Wording::Body);
    let items = match value {
        Value::Array(items) => items
            .iter()
            .map(|i| fields::to_string(i).map_err(|_| err()))
            .collect::<EngineResult<Vec<_>>>()?,
        Value::String(s) if s.is_empty() => Vec::new(),
        Value::String(s) => vec![s],
        _ => return Err(err()),
    };
    Ok(Some(items))
}

/// `GET config/:name`.
pub(crate) async fn read(storage: &dyn Storage, name: &str) -> EngineResult<Option<Response>> {
    let config = load(storage, name).await?.ok_or(EngineError::NotFound)?;
    let mut details = config.connection_details.clone();
    details.remove("password");
    if let Some(Value::String(url)) = details.get("connection_url") {
        let shown = Connection::shown_url(url);
        details.insert("connection_url".into(), Value::String(shown));
    }
    let mut data = Map::new();
    data.insert("allowed_roles".into(), json!(config.allowed_roles));
    data.insert("connection_details".into(), Value::Object(details));
    data.insert("password_policy".into(), json!(config.password_policy));
    data.insert("plugin_name".into(), json!(config.plugin_name));
    data.insert("plugin_version".into(), json!(config.plugin_version));
    data.insert(
        "root_credentials_rotate_statements".into(),
        json!(config.root_rotation_statements),
    );
    Ok(Some(Response::with_data(data)))
}

/// `DELETE config/:name`: Vault answers 204 whether or not it existed.
pub(crate) async fn delete(
    inner: &Inner,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    let _guard = inner.config_locks.lock(name).await;
    storage.delete(&format!("{PREFIX}{name}")).await?;
    inner.forget_connection(name);
    Ok(None)
}

pub(crate) async fn list(storage: &dyn Storage) -> EngineResult<Option<Response>> {
    super::list_keys(storage, PREFIX).await
}

/// `POST reset/:name`: closes the config's connections; the next use opens fresh ones.
pub(crate) async fn reset(
    inner: &Inner,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    if load(storage, name).await?.is_none() {
        return Err(not_found(name));
    }
    inner.forget_connection(name);
    Ok(None)
}

/// Whether the write at `config/:name` creates it.
pub(crate) async fn exists(storage: &dyn Storage, name: &str) -> EngineResult<bool> {
    Ok(storage.get(&format!("{PREFIX}{name}")).await?.is_some())
}

pub(crate) fn is_write(op: Operation) -> bool {
    matches!(op, Operation::Create | Operation::Update)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_vaults() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("app", "app"));
        assert!(!glob_match("app", "app2"));
        assert!(glob_match("x*", "xy"));
        assert!(glob_match("*-ro", "app-ro"));
        assert!(glob_match("a*b*c", "a-b-c"));
        assert!(!glob_match("a*b*c", "a-c"));
        assert!(!glob_match("ab*ba", "aba"));
    }

    #[test]
    fn debug_shows_no_secret() {
        let mut details = Map::new();
        details.insert(
            "connection_url".into(),
            json!("postgresql://u:hunter2@h/db"),
        );
        let config = StoredConfig {
            plugin_name: PLUGIN.to_owned(),
            plugin_version: String::new(),
            connection_details: details,
            password: SecretString::from("s3cret-admin"),
            pending_password: Some(SecretString::from("s3cret-next")),
            allowed_roles: vec![],
            root_rotation_statements: vec![],
            password_policy: String::new(),
        };
        let shown = format!("{config:?}");
        for secret in ["hunter2", "s3cret-admin", "s3cret-next"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn literal_url_passwords_are_masked() {
        assert_eq!(
            Connection::shown_url("postgresql://u:secret@h:5432/db"),
            "postgresql://u:xxxxx@h:5432/db"
        );
        let templated = "postgresql://{{username}}:{{password}}@h/db";
        assert_eq!(Connection::shown_url(templated), templated);
        assert_eq!(Connection::shown_url("host=h user=u"), "host=h user=u");
    }
}
