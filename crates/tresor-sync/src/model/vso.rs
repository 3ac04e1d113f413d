//! Vault Secrets Operator's resources (`secrets.hashicorp.com/v1beta1`). Unknown fields are
//! ignored.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{Meta, lenient_string};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultConnection {
    pub metadata: Meta,
    #[serde(default)]
    pub spec: VaultConnectionSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultConnectionSpec {
    #[serde(default)]
    pub address: String,
    /// A Secret in the connection's namespace holding `ca.crt`.
    pub ca_cert_secret_ref: Option<String>,
    #[serde(default)]
    pub skip_tls_verify: bool,
    pub tls_server_name: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultAuth {
    pub metadata: Meta,
    #[serde(default)]
    pub spec: VaultAuthSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultAuthSpec {
    /// `[namespace/]name` of a VaultConnection; default: `default`.
    pub vault_connection_ref: Option<String>,
    pub namespace: Option<String>,
    /// Only `kubernetes` is supported.
    #[serde(default)]
    pub method: String,
    #[serde(default)]
    pub mount: String,
    pub kubernetes: Option<VaultAuthKubernetes>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultAuthKubernetes {
    #[serde(default)]
    pub role: String,
    pub service_account: Option<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    pub token_expiration_seconds: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultStaticSecret {
    pub metadata: Meta,
    #[serde(default)]
    pub spec: VaultStaticSecretSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultStaticSecretSpec {
    /// `[namespace/]name` of a VaultAuth; default: `default`.
    pub vault_auth_ref: Option<String>,
    pub namespace: Option<String>,
    #[serde(default)]
    pub mount: String,
    #[serde(default)]
    pub path: String,
    /// A KV v2 version; none: the latest.
    #[serde(default, deserialize_with = "lenient_string")]
    pub version: Option<String>,
    /// `kv-v1` or `kv-v2`.
    #[serde(rename = "type", default)]
    pub type_: String,
    pub refresh_after: Option<String>,
    #[serde(default)]
    pub destination: Destination,
    #[serde(default)]
    pub rollout_restart_targets: Vec<RolloutRestartTarget>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultDynamicSecret {
    pub metadata: Meta,
    #[serde(default)]
    pub spec: VaultDynamicSecretSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultDynamicSecretSpec {
    pub vault_auth_ref: Option<String>,
    pub namespace: Option<String>,
    #[serde(default)]
    pub mount: String,
    #[serde(default)]
    pub path: String,
    /// `GET` (default without params) or `POST`/`PUT` (default with params).
    pub request_http_method: Option<String>,
    #[serde(default)]
    pub params: BTreeMap<String, Value>,
    /// Renew the lease at this percentage of its TTL (default 67).
    pub renewal_percent: Option<u32>,
    #[serde(default)]
    pub revoke: bool,
    #[serde(default)]
    pub allow_static_creds: bool,
    pub refresh_after: Option<String>,
    #[serde(default)]
    pub destination: Destination,
    #[serde(default)]
    pub rollout_restart_targets: Vec<RolloutRestartTarget>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub create: bool,
    #[serde(default)]
    pub overwrite: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub transformation: Option<Transformation>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transformation {
    /// Secret key → template; the key name of the rendered value is the map key.
    #[serde(default)]
    pub templates: BTreeMap<String, VsoTemplate>,
    #[serde(default)]
    pub transformation_refs: Vec<Value>,
    /// Regular expressions; matching keys are dropped.
    #[serde(default)]
    pub excludes: Vec<String>,
    /// Regular expressions; when set, only matching keys are kept.
    #[serde(default)]
    pub includes: Vec<String>,
    #[serde(default)]
    pub exclude_raw: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VsoTemplate {
    pub name: Option<String>,
    #[serde(default)]
    pub text: String,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RolloutRestartTarget {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
}
