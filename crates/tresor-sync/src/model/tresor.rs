//! The project's own compact resource, `TresorSecret` (`tresor.dev/v1alpha1`): one Secret from
//! one or more sources (KV v1/v2 secrets, database credentials), optionally through templates.
//! Its CRD, with the schema, is `deploy/crds/tresor.dev_tresorsecrets.yaml`.
//!
//! ```yaml
//! apiVersion: tresor.dev/v1alpha1
//! kind: TresorSecret
//! metadata: {name: app, namespace: shop}
//! spec:
//!   connection: {address: "https://tresor.tresor.svc:8200"}   # optional (--address)
//!   auth: {kubernetes: {mount: kubernetes, role: shop-app}}     # optional (--token)
//!   sources:
//!     - kv: {mount: secret, path: shop/app}                    # every key of the secret
//!     - database: {mount: database, role: shop-app}            # username, password
//!       prefix: DB_
//!   target: {name: app-env}
//!   template: {data: {DSN: "postgres://{{ .DB_username }}:{{ .DB_password }}@db/shop"}}
//!   rolloutRestartTargets: [{kind: Deployment, name: app}]
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use super::vso::RolloutRestartTarget;
use super::{Meta, lenient_string};

pub const API_GROUP: &str = "tresor.dev";
pub const API_VERSION: &str = "tresor.dev/v1alpha1";

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TresorSecret {
    pub metadata: Meta,
    #[serde(default)]
    pub spec: TresorSecretSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TresorSecretSpec {
    pub connection: Option<Connection>,
    pub auth: Option<Auth>,
    #[serde(default)]
    pub sources: Vec<Source>,
    /// How often the controller re-reads the sources (Vault duration; default `1h`).
    pub refresh_interval: Option<String>,
    #[serde(default)]
    pub target: TargetSpec,
    pub template: Option<TemplateSpec>,
    #[serde(default)]
    pub rollout_restart_targets: Vec<RolloutRestartTarget>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    #[serde(default)]
    pub address: String,
    /// Base64-encoded PEM of the CA that signed Tresor's certificate.
    pub ca_bundle: Option<String>,
    /// Sent as `X-Vault-Namespace`.
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Auth {
    pub kubernetes: Option<KubernetesAuth>,
    pub token_secret_ref: Option<super::eso::SecretKeySelector>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesAuth {
    /// The auth mount, default `kubernetes`.
    pub mount: Option<String>,
    #[serde(default)]
    pub role: String,
    /// Logs in as this service account of the resource's namespace (a TokenRequest).
    pub service_account: Option<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    pub token_expiration_seconds: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    pub kv: Option<KvSource>,
    pub database: Option<DatabaseSource>,
    /// Prepended to every key this source yields.
    #[serde(default)]
    pub prefix: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KvSource {
    #[serde(default)]
    pub mount: String,
    #[serde(default)]
    pub path: String,
    /// 1 or 2 (the default).
    pub kv_version: Option<u8>,
    /// A KV v2 version; none: the latest.
    #[serde(default, deserialize_with = "lenient_string")]
    pub version: Option<String>,
    /// Only these keys (`property` syntax: `a.b` reaches into nested objects); none: all.
    #[serde(default)]
    pub keys: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseSource {
    #[serde(default)]
    pub mount: String,
    /// A dynamic role: `<mount>/creds/<role>`.
    pub role: Option<String>,
    /// A static role: `<mount>/static-creds/<staticRole>`.
    pub static_role: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetSpec {
    /// Default: the TresorSecret's own name.
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateSpec {
    /// Secret key → Go template over the sources' keys; when set, the Secret holds exactly
    /// these keys.
    #[serde(default)]
    pub data: BTreeMap<String, String>,
}
