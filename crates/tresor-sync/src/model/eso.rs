//! External Secrets Operator's resources (`external-secrets.io/v1` and `v1beta1`; the two
//! versions share these fields). Unknown fields are ignored, as the operator's own decoder
//! does with fields of newer versions; fields this crate does not act on yet but that change
//! what a Secret would hold are kept as raw JSON so the plan can refuse them by name.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{Meta, lenient_string};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecret {
    pub metadata: Meta,
    #[serde(default)]
    pub spec: ExternalSecretSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalSecretSpec {
    pub secret_store_ref: Option<StoreRef>,
    pub refresh_interval: Option<String>,
    #[serde(default)]
    pub target: Target,
    #[serde(default)]
    pub data: Vec<DataItem>,
    #[serde(default)]
    pub data_from: Vec<DataFrom>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreRef {
    #[serde(default)]
    pub name: String,
    /// `SecretStore` (the default) or `ClusterSecretStore`.
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// Default: the ExternalSecret's own name.
    pub name: Option<String>,
    /// `Owner` (default), `Orphan`, `Merge` or `None`.
    pub creation_policy: Option<String>,
    pub deletion_policy: Option<String>,
    pub template: Option<Template>,
    #[serde(default)]
    pub immutable: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    #[serde(default)]
    pub metadata: TemplateMetadata,
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    /// `v2` (the default since ESO 0.5); `v1` is refused.
    pub engine_version: Option<String>,
    /// `Replace` (default) or `Merge`.
    pub merge_policy: Option<String>,
    #[serde(default)]
    pub template_from: Vec<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMetadata {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataItem {
    #[serde(default)]
    pub secret_key: String,
    #[serde(default)]
    pub remote_ref: RemoteRef,
    pub source_ref: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteRef {
    #[serde(default)]
    pub key: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub property: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub version: Option<String>,
    /// `Default` or `Unicode`; only `Default` is supported.
    pub conversion_strategy: Option<String>,
    /// `None` (default), `Base64`, `Base64URL` or `Auto`.
    pub decoding_strategy: Option<String>,
    pub metadata_policy: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataFrom {
    pub extract: Option<RemoteRef>,
    pub find: Option<Value>,
    #[serde(default)]
    pub rewrite: Vec<Value>,
    pub source_ref: Option<Value>,
}

/// `SecretStore` and `ClusterSecretStore` (same spec).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretStore {
    pub metadata: Meta,
    #[serde(default)]
    pub spec: SecretStoreSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretStoreSpec {
    #[serde(default)]
    pub provider: Provider,
    pub refresh_interval: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    pub vault: Option<VaultProvider>,
    /// Every other provider, by name, so the plan can say which one it does not support.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultProvider {
    #[serde(default)]
    pub server: String,
    /// The KV mount (e.g. `secret`); `None`: the key's first segment is the mount.
    pub path: Option<String>,
    /// `v1` or `v2` (the default).
    pub version: Option<String>,
    pub namespace: Option<String>,
    /// Base64-encoded PEM.
    pub ca_bundle: Option<String>,
    pub ca_provider: Option<CaProvider>,
    #[serde(default)]
    pub auth: VaultAuth,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaProvider {
    /// `Secret` or `ConfigMap`.
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub key: String,
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultAuth {
    pub token_secret_ref: Option<SecretKeySelector>,
    pub kubernetes: Option<KubernetesAuth>,
    /// Every other auth method, by name.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeySelector {
    #[serde(default)]
    pub name: String,
    pub key: Option<String>,
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesAuth {
    /// Default `kubernetes`.
    pub mount_path: Option<String>,
    #[serde(default)]
    pub role: String,
    pub service_account_ref: Option<ServiceAccountRef>,
    pub secret_ref: Option<SecretKeySelector>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountRef {
    #[serde(default)]
    pub name: String,
    pub namespace: Option<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
}
