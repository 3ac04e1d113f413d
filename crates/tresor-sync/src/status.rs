//! `tresor sync status`: the drift report. For each resource: fetch its sources, render its
//! Secret, and compare the content hash with the one of the Secret in the cluster — recomputed
//! from what the cluster holds, so an edit of the Secret shows even when its hash annotation
//! was left alone; only hashes and key names are compared and shown, never a value. Then its
//! consumers (rollout targets): restarted for the Secret's current content or not.
//!
//! Dynamic resources (`VaultDynamicSecret`, a `TresorSecret` with a database role) are not
//! fetched — fetching issues new credentials —; their Secret is checked through its lease
//! (`tresor.dev/lease-id`, `sys/leases/lookup`): alive is in sync, gone is drifted.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde::Serialize;

use crate::apply::kube_reason;
use crate::engine::{Engine, Options};
use crate::model::Manifests;
use crate::rollout::{RESTARTED_FOR_ANNOTATION, TargetKey, parse_restarted_for, read_target};
use crate::secret::{DesiredSecret, HASH_ANNOTATION, LEASE_ID_ANNOTATION};
use crate::vault::VaultClient;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretState {
    InSync,
    /// The cluster's content differs from what the sources render (or, dynamic, its lease is
    /// gone).
    Drifted,
    Missing,
    SourceFailed,
    /// ESO `creationPolicy: None`: rendered and checked, never written.
    NotWritten,
    /// Could not be checked (the reason says why).
    Unknown,
}

impl SecretState {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretState::InSync => "in-sync",
            SecretState::Drifted => "drifted",
            SecretState::Missing => "missing",
            SecretState::SourceFailed => "source-failed",
            SecretState::NotWritten => "not-written",
            SecretState::Unknown => "unknown",
        }
    }

    fn ok(self) -> bool {
        matches!(self, SecretState::InSync | SecretState::NotWritten)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsumerState {
    /// Restarted for the Secret's current content.
    Restarted,
    /// Restarted for an earlier content of the Secret, not since its last change.
    NotRestarted,
    /// Never restarted by tresor sync for this Secret (the Secret has not changed since it
    /// was created, or the workload is not managed yet).
    NeverRestarted,
    /// Missing, of an unsupported kind, or unreadable.
    Failed,
}

impl ConsumerState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsumerState::Restarted => "restarted",
            ConsumerState::NotRestarted => "not restarted since last change",
            ConsumerState::NeverRestarted => "never restarted by tresor sync",
            ConsumerState::Failed => "failed",
        }
    }

    fn ok(self) -> bool {
        matches!(
            self,
            ConsumerState::Restarted | ConsumerState::NeverRestarted
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumerStatus {
    pub target: String,
    pub status: ConsumerState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceStatus {
    /// `Kind namespace/name`.
    pub resource: String,
    /// `namespace/name` of its Secret.
    pub secret: String,
    pub status: SecretState,
    /// Names and safe reasons only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub consumers: Vec<ConsumerStatus>,
}

impl ResourceStatus {
    pub fn ok(&self) -> bool {
        self.status.ok() && self.consumers.iter().all(|c| c.status.ok())
    }
}

/// The report over every resource that renders a Secret. `leases` looks dynamic secrets'
/// leases up (none: their state is `unknown`).
pub async fn report(
    manifests: &Manifests,
    options: &Options,
    kube: &kube::Client,
    leases: Option<&VaultClient>,
) -> Vec<ResourceStatus> {
    // Everything but the dynamic resources goes through the engine, in one pass.
    let fetched = Manifests {
        resources: manifests
            .resources
            .iter()
            .filter(|r| !r.is_dynamic())
            .cloned()
            .collect(),
        skipped: 0,
    };
    let mut engine = Engine::new(&fetched, options, Some(kube.clone()));
    let outcome = engine.run().await;
    let mut out = Vec::new();
    for resource in &manifests.resources {
        let Some((ns, name)) = resource.target_secret(&options.default_namespace) else {
            continue;
        };
        let id = format!("{} {ns}/{}", resource.kind(), resource.meta().name);
        let secrets: Api<Secret> = Api::namespaced(kube.clone(), &ns);
        let mut status = ResourceStatus {
            resource: id.clone(),
            secret: format!("{ns}/{name}"),
            status: SecretState::Unknown,
            reason: None,
            consumers: Vec::new(),
        };
        let cluster = match secrets.get_opt(&name).await {
            Ok(s) => s,
            Err(e) => {
                status.reason = Some(format!("reading the Secret: {}", kube_reason(&e)));
                out.push(status);
                continue;
            }
        };
        let failures: Vec<String> = outcome
            .failures
            .iter()
            .filter(|f| f.resource == id)
            .map(|f| match &f.key {
                Some(k) => format!("{k}: {}", f.reason),
                None => f.reason.clone(),
            })
            .collect();
        let desired = outcome.secrets.iter().find(|s| s.origin.to_string() == id);
        let (state, reason) = if resource.is_dynamic() {
            dynamic_state(cluster.as_ref(), leases).await
        } else if !failures.is_empty() {
            (SecretState::SourceFailed, Some(failures.join("; ")))
        } else if let Some(d) = desired {
            match &cluster {
                None => (SecretState::Missing, None),
                Some(c) => compare(c, d),
            }
        } else {
            (
                SecretState::NotWritten,
                Some("creationPolicy None: rendered and checked, never written".into()),
            )
        };
        status.status = state;
        status.reason = reason;
        if let Some(c) = &cluster {
            let hash = c
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(HASH_ANNOTATION))
                .cloned()
                .unwrap_or_default();
            for t in resource.rollout_targets() {
                let key = TargetKey {
                    namespace: ns.clone(),
                    kind: t.kind.clone(),
                    name: t.name.clone(),
                };
                status
                    .consumers
                    .push(consumer(kube, &key, &name, &hash).await);
            }
        }
        out.push(status);
    }
    out
}

async fn consumer(
    kube: &kube::Client,
    key: &TargetKey,
    secret: &str,
    hash: &str,
) -> ConsumerStatus {
    let (status, reason) = match read_target(kube, key).await {
        Err(reason) => (ConsumerState::Failed, Some(reason)),
        Ok((annotations, _)) => {
            let entries = annotations
                .get(RESTARTED_FOR_ANNOTATION)
                .map(|v| parse_restarted_for(v))
                .unwrap_or_default();
            match entries.get(secret) {
                Some(h) if h == hash => (ConsumerState::Restarted, None),
                Some(_) => (ConsumerState::NotRestarted, None),
                None => (ConsumerState::NeverRestarted, None),
            }
        }
    };
    ConsumerStatus {
        target: key.to_string(),
        status,
        reason,
    }
}

async fn dynamic_state(
    cluster: Option<&Secret>,
    leases: Option<&VaultClient>,
) -> (SecretState, Option<String>) {
    let Some(secret) = cluster else {
        return (SecretState::Missing, None);
    };
    let Some(id) = secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LEASE_ID_ANNOTATION))
        .filter(|id| !id.is_empty())
    else {
        return (
            SecretState::Unknown,
            Some("dynamic credentials without a tresor.dev/lease-id annotation".into()),
        );
    };
    let Some(vault) = leases else {
        return (
            SecretState::Unknown,
            Some("dynamic credentials: pass --token and --address to look their lease up".into()),
        );
    };
    for lease in id.split(',') {
        match vault.lookup_lease(lease).await {
            Ok(found) if found.ttl > 0 => {}
            Ok(_) => {
                return (
                    SecretState::Drifted,
                    Some(format!(
                        "lease {lease} has ended: the credentials no longer work"
                    )),
                );
            }
            Err(e) => {
                return (
                    SecretState::Drifted,
                    Some(format!(
                        "lease {lease} is gone (revoked or expired: {e}): the credentials no longer work"
                    )),
                );
            }
        }
    }
    (
        SecretState::InSync,
        Some("dynamic: its lease is alive".into()),
    )
}

/// The cluster Secret against the rendered one, through the view `apply` decides its writes
/// by ([`crate::apply::as_rendered`]). Differences are named by part and key, never by value.
fn compare(cluster: &Secret, desired: &DesiredSecret) -> (SecretState, Option<String>) {
    let seen = crate::apply::as_rendered(cluster, desired);
    let want = desired.content_hash();
    if seen.content_hash() == want {
        return (SecretState::InSync, None);
    }
    let mut parts = Vec::new();
    if seen.type_ != desired.type_ {
        parts.push(format!(
            "type is {:?}, the source renders {:?}",
            seen.type_, desired.type_
        ));
    }
    let have: BTreeSet<&String> = seen.data.keys().collect();
    let wanted: BTreeSet<&String> = desired.data.keys().collect();
    let missing: Vec<&str> = wanted.difference(&have).map(|k| k.as_str()).collect();
    let extra: Vec<&str> = have.difference(&wanted).map(|k| k.as_str()).collect();
    let changed: Vec<&str> = desired
        .data
        .iter()
        .filter(|(k, v)| seen.data.get(*k).is_some_and(|s| s != *v))
        .map(|(k, _)| k.as_str())
        .collect();
    for (what, keys) in [
        ("keys missing", missing),
        ("keys not in the source", extra),
        ("values differ for keys", changed),
    ] {
        if !keys.is_empty() {
            parts.push(format!("{what}: {}", keys.join(", ")));
        }
    }
    if seen.labels != desired.labels {
        parts.push("labels differ".into());
    }
    let hashed = |m: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        m.iter()
            .filter(|(k, _)| !crate::secret::unhashed_annotation(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    if hashed(&seen.annotations) != hashed(&desired.annotations) {
        parts.push("annotations differ".into());
    }
    (SecretState::Drifted, Some(parts.join("; ")))
}

/// The kinds `--cluster` lists: group, versions to try in order, kind, plural.
const CLUSTER_KINDS: &[(&str, &[&str], &str, &str)] = &[
    (
        "external-secrets.io",
        &["v1", "v1beta1"],
        "SecretStore",
        "secretstores",
    ),
    (
        "external-secrets.io",
        &["v1", "v1beta1"],
        "ClusterSecretStore",
        "clustersecretstores",
    ),
    (
        "external-secrets.io",
        &["v1", "v1beta1"],
        "ExternalSecret",
        "externalsecrets",
    ),
    (
        "secrets.hashicorp.com",
        &["v1beta1"],
        "VaultConnection",
        "vaultconnections",
    ),
    (
        "secrets.hashicorp.com",
        &["v1beta1"],
        "VaultAuth",
        "vaultauths",
    ),
    (
        "secrets.hashicorp.com",
        &["v1beta1"],
        "VaultStaticSecret",
        "vaultstaticsecrets",
    ),
    (
        "secrets.hashicorp.com",
        &["v1beta1"],
        "VaultDynamicSecret",
        "vaultdynamicsecrets",
    ),
    ("tresor.dev", &["v1alpha1"], "TresorSecret", "tresorsecrets"),
];

/// Lists the resources of every namespace from the cluster. A kind whose CRD is not
/// installed (404) is skipped; any other failure is an error.
pub async fn from_cluster(kube: &kube::Client) -> Result<Manifests, String> {
    let mut manifests = Manifests::default();
    for (group, versions, kind, plural) in CLUSTER_KINDS {
        for version in *versions {
            let gvk = GroupVersionKind::gvk(group, version, kind);
            let ar = ApiResource::from_gvk_with_plural(&gvk, plural);
            let api: Api<DynamicObject> = Api::all_with(kube.clone(), &ar);
            let list = match api.list(&ListParams::default()).await {
                Ok(l) => l,
                Err(kube::Error::Api(s)) if s.code == 404 => continue,
                Err(e) => {
                    return Err(format!(
                        "listing {plural}.{group}/{version}: {}",
                        kube_reason(&e)
                    ));
                }
            };
            for mut item in list.items {
                item.types = Some(kube::api::TypeMeta {
                    api_version: ar.api_version.clone(),
                    kind: (*kind).to_owned(),
                });
                let value = serde_json::to_value(&item).map_err(|e| e.to_string())?;
                manifests.add_object(value)?;
            }
            break;
        }
    }
    Ok(manifests)
}

/// The report as a table: one line per resource, one per consumer under it.
pub fn table(report: &[ResourceStatus]) -> String {
    let mut rows: Vec<[String; 3]> = vec![["RESOURCE".into(), "SECRET".into(), "STATUS".into()]];
    for r in report {
        let status = match &r.reason {
            Some(reason) => format!("{} ({reason})", r.status.as_str()),
            None => r.status.as_str().to_owned(),
        };
        rows.push([r.resource.clone(), r.secret.clone(), status]);
        for c in &r.consumers {
            let status = match &c.reason {
                Some(reason) => format!("{}: {reason}", c.status.as_str()),
                None => c.status.as_str().to_owned(),
            };
            rows.push([format!("  consumer {}", c.target), String::new(), status]);
        }
    }
    let w0 = rows.iter().map(|r| r[0].chars().count()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r[1].chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for [a, b, c] in rows {
        let line = format!("{a:<w0$}  {b:<w1$}  {c}");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[derive(Serialize)]
struct JsonReport<'a> {
    in_sync: bool,
    resources: &'a [ResourceStatus],
}

pub fn json(report: &[ResourceStatus]) -> String {
    serde_json::to_string_pretty(&JsonReport {
        in_sync: report.iter().all(ResourceStatus::ok),
        resources: report,
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;
    use crate::secret::{Origin, WritePolicy};
    use k8s_openapi::ByteString;
    use tresor_sdk::secret::SecretBytes;

    fn desired() -> DesiredSecret {
        let mut d = DesiredSecret {
            origin: Origin {
                api_version: "v1".into(),
                kind: "TresorSecret".into(),
                namespace: "apps".into(),
                name: "web".into(),
                uid: None,
            },
            namespace: "apps".into(),
            name: "web".into(),
            type_: "Opaque".into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            data: [(
                "password".to_owned(),
                SecretBytes::copy_from(b"s3cret-value"),
            )]
            .into(),
            policy: WritePolicy::Owner,
            rollout_restart_targets: Vec::new(),
            leases: Vec::new(),
        };
        d.seal();
        d
    }

    fn cluster_of(d: &DesiredSecret) -> Secret {
        let mut secret = crate::apply::as_written(d);
        // Others' annotations do not count.
        secret.metadata.annotations.get_or_insert_default().insert(
            "kubectl.kubernetes.io/last-applied-configuration".into(),
            "{}".into(),
        );
        secret
    }

    #[test]
    fn an_edited_secret_is_drifted_and_named_without_its_value() {
        let d = desired();
        let mut c = cluster_of(&d);
        assert_eq!(compare(&c, &d), (SecretState::InSync, None));
        c.data
            .as_mut()
            .unwrap()
            .insert("password".into(), ByteString(b"edited-by-hand".to_vec()));
        c.data
            .as_mut()
            .unwrap()
            .insert("extra".into(), ByteString(b"x".to_vec()));
        let (state, reason) = compare(&c, &d);
        assert_eq!(state, SecretState::Drifted);
        let reason = reason.unwrap();
        assert!(
            reason.contains("values differ for keys: password"),
            "{reason}"
        );
        assert!(reason.contains("keys not in the source: extra"), "{reason}");
        assert!(!reason.contains("edited-by-hand") && !reason.contains("s3cret"));
    }

    #[test]
    fn a_merge_compares_only_the_keys_it_writes() {
        let mut d = desired();
        d.policy = WritePolicy::Merge;
        let mut c = cluster_of(&d);
        c.data
            .as_mut()
            .unwrap()
            .insert("theirs".into(), ByteString(b"x".to_vec()));
        assert_eq!(compare(&c, &d).0, SecretState::InSync);
        // A merge never sets the type: the Secret it merges into keeps its own.
        c.type_ = Some("kubernetes.io/dockerconfigjson".into());
        assert_eq!(compare(&c, &d).0, SecretState::InSync);
        c.data
            .as_mut()
            .unwrap()
            .insert("password".into(), ByteString(b"edited".to_vec()));
        assert_eq!(compare(&c, &d).0, SecretState::Drifted);
    }
}
