//! The resources `tresor sync` reads: ESO's, VSO's and its own, from YAML files and
//! directories (multi-document streams; `…List` objects unwrapped). Other kinds in the same
//! files (Deployments, Services…) are counted and skipped.

pub mod eso;
pub mod tresor;
pub mod vso;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The part of `metadata` the sync engine uses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    #[serde(default)]
    pub name: String,
    pub namespace: Option<String>,
    pub uid: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// A string field that manifests also write as a number (`version: 2`).
pub fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(_) => return Err(serde::de::Error::custom("expected a string or a number")),
    })
}

#[derive(Debug, Clone)]
pub enum Resource {
    ExternalSecret(eso::ExternalSecret),
    SecretStore(eso::SecretStore),
    ClusterSecretStore(eso::SecretStore),
    VaultConnection(vso::VaultConnection),
    VaultAuth(vso::VaultAuth),
    VaultStaticSecret(vso::VaultStaticSecret),
    VaultDynamicSecret(vso::VaultDynamicSecret),
    TresorSecret(tresor::TresorSecret),
}

impl Resource {
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::ExternalSecret(_) => "ExternalSecret",
            Resource::SecretStore(_) => "SecretStore",
            Resource::ClusterSecretStore(_) => "ClusterSecretStore",
            Resource::VaultConnection(_) => "VaultConnection",
            Resource::VaultAuth(_) => "VaultAuth",
            Resource::VaultStaticSecret(_) => "VaultStaticSecret",
            Resource::VaultDynamicSecret(_) => "VaultDynamicSecret",
            Resource::TresorSecret(_) => "TresorSecret",
        }
    }

    pub fn meta(&self) -> &Meta {
        match self {
            Resource::ExternalSecret(r) => &r.metadata,
            Resource::SecretStore(r) | Resource::ClusterSecretStore(r) => &r.metadata,
            Resource::VaultConnection(r) => &r.metadata,
            Resource::VaultAuth(r) => &r.metadata,
            Resource::VaultStaticSecret(r) => &r.metadata,
            Resource::VaultDynamicSecret(r) => &r.metadata,
            Resource::TresorSecret(r) => &r.metadata,
        }
    }
}

impl Resource {
    /// The Secret a resource renders (namespace, name), for the kinds that render one;
    /// `default_namespace` for resources that name none.
    pub fn target_secret(&self, default_namespace: &str) -> Option<(String, String)> {
        let meta = self.meta();
        let ns = meta
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| default_namespace.to_owned());
        let or_own = |n: Option<&String>| {
            n.filter(|n| !n.is_empty())
                .cloned()
                .unwrap_or_else(|| meta.name.clone())
        };
        let name = match self {
            Resource::ExternalSecret(r) => or_own(r.spec.target.name.as_ref()),
            Resource::VaultStaticSecret(r) => r.spec.destination.name.clone(),
            Resource::VaultDynamicSecret(r) => r.spec.destination.name.clone(),
            Resource::TresorSecret(r) => or_own(r.spec.target.name.as_ref()),
            _ => return None,
        };
        Some((ns, name))
    }

    /// Its `rolloutRestartTargets` (ESO has none).
    pub fn rollout_targets(&self) -> &[vso::RolloutRestartTarget] {
        match self {
            Resource::VaultStaticSecret(r) => &r.spec.rollout_restart_targets,
            Resource::VaultDynamicSecret(r) => &r.spec.rollout_restart_targets,
            Resource::TresorSecret(r) => &r.spec.rollout_restart_targets,
            _ => &[],
        }
    }

    /// Whether reading its sources issues credentials (a lease): reading them again is not
    /// a check but a new issue (VaultDynamicSecret, a TresorSecret's dynamic database role).
    pub fn is_dynamic(&self) -> bool {
        match self {
            Resource::VaultDynamicSecret(_) => true,
            Resource::TresorSecret(r) => r
                .spec
                .sources
                .iter()
                .any(|s| s.database.as_ref().is_some_and(|d| d.role.is_some())),
            _ => false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Yaml {
        path: PathBuf,
        source: crate::yaml::YamlError,
    },
    #[error("{path}:{line}: {kind} {name}: {message}")]
    Invalid {
        path: PathBuf,
        line: u32,
        kind: String,
        name: String,
        message: String,
    },
}

/// What a set of files held.
#[derive(Debug, Default)]
pub struct Manifests {
    pub resources: Vec<Resource>,
    /// Objects of other kinds (skipped).
    pub skipped: usize,
}

/// The most bytes one input file may have.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

impl Manifests {
    /// Reads files and directories (recursively: `.yaml`, `.yml`, `.json`, in name order).
    pub fn load(paths: &[PathBuf]) -> Result<Manifests, LoadError> {
        let mut files = Vec::new();
        for path in paths {
            collect(path, &mut files, 0)?;
        }
        let mut out = Manifests::default();
        for file in files {
            let text = read_bounded(&file)?;
            out.add_text(&file, &text)?;
        }
        Ok(out)
    }

    /// Adds one object already parsed (a resource listed from a cluster); `Ok(false)` for a
    /// kind `tresor sync` does not read. The error names kind, name and the problem.
    pub fn add_object(&mut self, object: Value) -> Result<bool, String> {
        match parse(object) {
            Ok(Some(resource)) => {
                self.resources.push(resource);
                Ok(true)
            }
            Ok(None) => {
                self.skipped += 1;
                Ok(false)
            }
            Err((kind, name, message)) => Err(format!("{kind} {name}: {message}")),
        }
    }

    /// Parses one YAML/JSON stream (`path` names it in errors).
    pub fn add_text(&mut self, path: &Path, text: &str) -> Result<(), LoadError> {
        let docs = crate::yaml::documents(text).map_err(|source| LoadError::Yaml {
            path: path.to_owned(),
            source,
        })?;
        for (line, doc) in docs {
            let items = match doc.get("kind").and_then(Value::as_str) {
                Some(kind) if kind.ends_with("List") && doc.get("items").is_some() => doc
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                _ => vec![doc],
            };
            for item in items {
                match parse(item).map_err(|(kind, name, message)| LoadError::Invalid {
                    path: path.to_owned(),
                    line,
                    kind,
                    name,
                    message,
                })? {
                    Some(resource) => self.resources.push(resource),
                    None => self.skipped += 1,
                }
            }
        }
        Ok(())
    }
}

fn read_bounded(path: &Path) -> Result<String, LoadError> {
    use std::io::Read;
    let err = |message: String| LoadError::Read {
        path: path.to_owned(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| err(e.to_string()))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(err(format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    Ok(text)
}

fn collect(path: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), LoadError> {
    let meta = std::fs::metadata(path).map_err(|e| LoadError::Read {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    if !meta.is_dir() {
        out.push(path.to_owned());
        return Ok(());
    }
    if depth > 32 {
        return Err(LoadError::Read {
            path: path.to_owned(),
            message: "directories nested too deep".into(),
        });
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| LoadError::Read {
            path: path.to_owned(),
            message: e.to_string(),
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if entry.is_dir() {
            collect(&entry, out, depth + 1)?;
        } else if matches!(
            entry.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(entry);
        }
    }
    Ok(())
}

/// One object read from a cluster (JSON, `apiVersion` and `kind` set): `Ok(None)` for kinds
/// `tresor sync` does not read; the error is why it does not parse.
pub fn parse_object(doc: Value) -> Result<Option<Resource>, String> {
    parse(doc).map_err(|(_, _, message)| message)
}

/// One object: `Ok(None)` for kinds `tresor sync` does not read.
fn parse(doc: Value) -> Result<Option<Resource>, (String, String, String)> {
    let api_version = doc
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let kind = doc
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    let version = api_version.split_once('/').map_or("", |(_, v)| v);
    let fail = |message: String| (kind.clone(), name.clone(), message);
    macro_rules! de {
        ($variant:ident) => {
            serde_json::from_value(doc)
                .map(|r| Some(Resource::$variant(r)))
                .map_err(|e| fail(e.to_string()))
        };
    }
    let known = match (group, kind.as_str()) {
        ("external-secrets.io", "ExternalSecret" | "SecretStore" | "ClusterSecretStore") => {
            if !matches!(version, "v1" | "v1beta1") {
                return Err(fail(format!(
                    "apiVersion {api_version} is not supported (external-secrets.io/v1 or v1beta1)"
                )));
            }
            true
        }
        (
            "secrets.hashicorp.com",
            "VaultConnection" | "VaultAuth" | "VaultStaticSecret" | "VaultDynamicSecret",
        ) => true,
        (tresor::API_GROUP, "TresorSecret") => {
            if api_version != tresor::API_VERSION {
                return Err(fail(format!(
                    "apiVersion {api_version} is not supported ({})",
                    tresor::API_VERSION
                )));
            }
            true
        }
        _ => false,
    };
    if !known {
        return Ok(None);
    }
    if name.is_empty() {
        return Err(fail("metadata.name is missing".into()));
    }
    match kind.as_str() {
        "ExternalSecret" => de!(ExternalSecret),
        "SecretStore" => de!(SecretStore),
        "ClusterSecretStore" => de!(ClusterSecretStore),
        "VaultConnection" => de!(VaultConnection),
        "VaultAuth" => de!(VaultAuth),
        "VaultStaticSecret" => de!(VaultStaticSecret),
        "VaultDynamicSecret" => de!(VaultDynamicSecret),
        _ => de!(TresorSecret),
    }
}

#[cfg(test)]
mod tests;
