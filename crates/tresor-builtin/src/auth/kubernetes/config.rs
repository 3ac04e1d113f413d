//! `auth/<mount>/config`: where the Kubernetes API server is and how to reach it.
//!
//! Stored whole at `config` in OpenBao's storage layout (`host`, `ca_cert`,
//! `token_reviewer_jwt`, `pem_keys`, `issuer`, `disable_iss_validation`,
//! `disable_local_ca_jwt`); a write replaces every field, as OpenBao's does. The reviewer JWT is
//! never returned: a read says only `token_reviewer_jwt_set`.
//!
//! When Tresor runs in a pod and neither a reviewer JWT nor a CA is configured (and
//! `disable_local_ca_jwt` is false), the pod's own service account files stand in:
//! [`LocalFiles`] reads `token` and `ca.crt` from the service account directory on every login,
//! so the short-lived projected token the kubelet rotates keeps working without a restart.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};
use tresor_sdk::engine::{EngineError, EngineResult, Request, Response};
use tresor_sdk::secret::SecretString;
use tresor_sdk::storage::Storage;

use super::keys;
use crate::common::fields;

/// Where a pod's service account files are mounted.
pub const DEFAULT_SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The environment variable that moves [`DEFAULT_SERVICE_ACCOUNT_DIR`] (tests, unusual mounts).
pub const SERVICE_ACCOUNT_DIR_ENV: &str = "TRESOR_KUBERNETES_SERVICE_ACCOUNT_DIR";

const CONFIG_KEY: &str = "config";

/// The stored configuration. `Debug` redacts the reviewer JWT (a [`SecretString`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Config {
    #[serde(rename = "host", default)]
    pub host: String,
    #[serde(rename = "ca_cert", default)]
    pub ca_cert: String,
    /// Empty when none is configured.
    #[serde(
        default,
        serialize_with = "expose_secret",
        deserialize_with = "secret_or_empty"
    )]
    pub token_reviewer_jwt: SecretString,
    #[serde(default)]
    pub pem_keys: Vec<String>,
    #[serde(default)]
    pub issuer: String,
    #[serde(default)]
    pub disable_iss_validation: bool,
    #[serde(default)]
    pub disable_local_ca_jwt: bool,
}

fn expose_secret<S: Serializer>(value: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(value.expose())
}

fn secret_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
    Ok(SecretString::new(
        Option::<String>::deserialize(d)?.unwrap_or_default(),
    ))
}

/// The pod's service account directory (`token`, `ca.crt`).
#[derive(Debug, Clone)]
pub(super) struct LocalFiles {
    dir: PathBuf,
}

impl LocalFiles {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn token_path(&self) -> PathBuf {
        self.dir.join("token")
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// The current service account token, read from disk now (the kubelet rotates it).
    pub async fn read_token(&self) -> Result<SecretString, String> {
        let path = self.token_path();
        tokio::fs::read_to_string(&path)
            .await
            .map(SecretString::new)
            .map_err(|e| go_open_error(&path, &e))
    }

    pub async fn read_ca(&self) -> Result<String, String> {
        let path = self.ca_path();
        tokio::fs::read_to_string(&path)
            .await
            .map_err(|e| go_open_error(&path, &e))
    }
}

/// An I/O error worded as Go's `os.ReadFile` words it (`open /path: no such file or
/// directory`), which is what OpenBao answers when the local CA file is missing.
pub(super) fn go_open_error(path: &Path, err: &std::io::Error) -> String {
    let reason = match err.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        std::io::ErrorKind::IsADirectory => "is a directory".to_owned(),
        _ => err.to_string(),
    };
    format!("open {}: {reason}", path.display())
}

pub(super) async fn load(storage: &dyn Storage) -> EngineResult<Option<Config>> {
    let Some(raw) = storage.get(CONFIG_KEY).await? else {
        return Ok(None);
    };
    serde_json::from_slice(raw.expose())
        .map(Some)
        .map_err(|e| EngineError::Internal(format!("stored kubernetes config is malformed: {e}")))
}

pub(super) async fn read(storage: &dyn Storage) -> EngineResult<Option<Response>> {
    let Some(config) = load(storage).await? else {
        return Err(EngineError::NotFound);
    };
    let mut data = Map::new();
    data.insert("kubernetes_host".into(), json!(config.host));
    data.insert("kubernetes_ca_cert".into(), json!(config.ca_cert));
    data.insert("pem_keys".into(), json!(config.pem_keys));
    data.insert("issuer".into(), json!(config.issuer));
    data.insert(
        "disable_iss_validation".into(),
        json!(config.disable_iss_validation),
    );
    data.insert(
        "disable_local_ca_jwt".into(),
        json!(config.disable_local_ca_jwt),
    );
    data.insert(
        "token_reviewer_jwt_set".into(),
        Value::Bool(!config.token_reviewer_jwt.is_empty()),
    );
    Ok(Some(Response::with_data(data)))
}

/// Replaces the configuration, refusing what OpenBao refuses (in its order).
pub(super) async fn write(
    req: &Request,
    storage: &dyn Storage,
    local: &LocalFiles,
) -> EngineResult<Option<Response>> {
    let bad = |m: String| EngineError::InvalidRequest(m);
    let host = fields::string(req, "kubernetes_host")?.unwrap_or_default();
    if host.is_empty() {
        return Err(bad("no host provided".into()));
    }
    let disable_local_ca_jwt = fields::bool(req, "disable_local_ca_jwt")?.unwrap_or(false);
    let pem_keys = fields::string_list(req, "pem_keys")?.unwrap_or_default();
    let ca_cert = fields::string(req, "kubernetes_ca_cert")?.unwrap_or_default();
    let issuer = fields::string(req, "issuer")?.unwrap_or_default();
    let disable_iss_validation = fields::bool(req, "disable_iss_validation")?.unwrap_or(true);
    let token_reviewer_jwt =
        SecretString::new(fields::string(req, "token_reviewer_jwt")?.unwrap_or_default());
    if disable_local_ca_jwt && ca_cert.is_empty() {
        return Err(bad(
            "kubernetes_ca_cert must be given when disable_local_ca_jwt is true".into(),
        ));
    }
    for pem in &pem_keys {
        keys::PublicKey::parse_pem(pem).map_err(bad)?;
    }
    // Without a CA of its own the method trusts the pod's CA file; OpenBao refuses a
    // configuration it could not use, naming the file.
    if ca_cert.is_empty() && !disable_local_ca_jwt {
        local.read_ca().await.map_err(bad)?;
    }
    let config = Config {
        host,
        ca_cert,
        token_reviewer_jwt,
        pem_keys,
        issuer,
        disable_iss_validation,
        disable_local_ca_jwt,
    };
    let bytes = serde_json::to_vec(&config)
        .map_err(|e| EngineError::Internal(format!("encoding kubernetes config: {e}")))?;
    storage.put(CONFIG_KEY, &bytes).await?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reviewer_jwt_is_stored_but_never_debug_printed() {
        let config = Config {
            host: "https://k8s".into(),
            ca_cert: String::new(),
            token_reviewer_jwt: SecretString::new("eyJ.secret.jwt".into()),
            pem_keys: vec![],
            issuer: String::new(),
            disable_iss_validation: true,
            disable_local_ca_jwt: false,
        };
        assert!(!format!("{config:?}").contains("eyJ.secret"));
        let stored = serde_json::to_value(&config).unwrap();
        assert_eq!(stored["token_reviewer_jwt"], "eyJ.secret.jwt");
        assert_eq!(stored["host"], "https://k8s");
        let back: Config = serde_json::from_value(stored).unwrap();
        assert_eq!(back.token_reviewer_jwt.expose(), "eyJ.secret.jwt");
    }

    #[test]
    fn missing_files_are_worded_as_go_words_them() {
        let err = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(
            go_open_error(Path::new("/x/ca.crt"), &err),
            "open /x/ca.crt: no such file or directory"
        );
    }
}
