//! Writing rendered Secrets to a cluster through kube-rs: create when missing, replace only
//! when the content hash differs (an idle run writes nothing), merge for ESO's `Merge` and
//! VSO's `create: false`, nothing for ESO's `None`. After the writes, the rollout targets of
//! every Secret whose content changed are restarted (`rollout`), once each.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, PostParams};

use crate::rollout::{self, RateLimiter, RestartRequest, RolloutConfig, TargetReport};
use crate::secret::{DesiredSecret, HASH_ANNOTATION, WritePolicy};

/// What a write pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
    /// `Secret ns/name: reason`.
    pub failed: Vec<String>,
    /// One per rollout target of a written or unchanged Secret.
    pub restarts: Vec<TargetReport>,
}

impl ApplyReport {
    /// Restarts that failed or were deferred: the change has not reached those consumers.
    pub fn restarts_pending(&self) -> impl Iterator<Item = &TargetReport> {
        self.restarts.iter().filter(|r| {
            matches!(
                r.outcome,
                rollout::Outcome::Failed(_) | rollout::Outcome::Deferred { .. }
            )
        })
    }
}

/// A client for the cluster of a kubeconfig file (the default: `KUBECONFIG`, `~/.kube/config`
/// or the in-cluster configuration, through [`kube::Client::try_default`]).
pub async fn kube_client(kubeconfig: Option<&std::path::Path>) -> Result<kube::Client, String> {
    let Some(path) = kubeconfig else {
        return kube::Client::try_default()
            .await
            .map_err(|e| kube_reason(&e));
    };
    let config = kube::config::Kubeconfig::read_from(path).map_err(|e| e.to_string())?;
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default())
        .await
        .map_err(|e| e.to_string())?;
    kube::Client::try_from(config).map_err(|e| kube_reason(&e))
}

/// A kube error's safe text (the API's status code, reason and message; no request body).
pub fn kube_reason(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => {
            format!("{} {}: {}", status.code, status.reason, status.message)
        }
        other => other.to_string(),
    }
}

fn to_data(d: &DesiredSecret) -> BTreeMap<String, ByteString> {
    d.data
        .iter()
        .map(|(k, v)| (k.clone(), ByteString(v.expose().to_vec())))
        .collect()
}

fn owner_refs(d: &DesiredSecret) -> Option<Vec<OwnerReference>> {
    let uid = d.origin.uid.clone().filter(|u| !u.is_empty())?;
    (d.policy == WritePolicy::Owner).then(|| {
        vec![OwnerReference {
            api_version: d.origin.api_version.clone(),
            kind: d.origin.kind.clone(),
            name: d.origin.name.clone(),
            uid,
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]
    })
}

/// Writes every Secret, then restarts the consumers of those that changed (default rate
/// limit, over-limit restarts deferred); a failure is reported and the others still done.
pub async fn apply(client: &kube::Client, secrets: &[DesiredSecret]) -> ApplyReport {
    let mut limiter = RateLimiter::new(rollout::DEFAULT_MIN_INTERVAL);
    apply_with(client, secrets, &mut limiter, &RolloutConfig::default()).await
}

/// [`apply`] with the caller's rate limiter (a controller keeps one across passes) and
/// rollout settings.
pub async fn apply_with(
    client: &kube::Client,
    secrets: &[DesiredSecret],
    limiter: &mut RateLimiter,
    config: &RolloutConfig,
) -> ApplyReport {
    let mut report = ApplyReport::default();
    let mut restarts = Vec::new();
    for d in secrets {
        let id = format!("Secret {}/{}", d.namespace, d.name);
        if d.policy == WritePolicy::None {
            continue;
        }
        let api: Api<Secret> = Api::namespaced(client.clone(), &d.namespace);
        let changed = match apply_one(&api, d).await {
            Ok(Outcome::Created) => {
                report.created.push(id);
                false
            }
            Ok(Outcome::Updated) => {
                report.updated.push(id);
                true
            }
            Ok(Outcome::Unchanged) => {
                report.unchanged.push(id);
                false
            }
            Err(reason) => {
                report.failed.push(format!("{id}: {reason}"));
                continue;
            }
        };
        if !d.rollout_restart_targets.is_empty() {
            restarts.push(RestartRequest {
                namespace: d.namespace.clone(),
                secret: d.name.clone(),
                hash: d
                    .annotations
                    .get(HASH_ANNOTATION)
                    .cloned()
                    .unwrap_or_default(),
                changed,
                targets: d.rollout_restart_targets.clone(),
            });
        }
    }
    if !restarts.is_empty() {
        report.restarts = rollout::restart(client, &restarts, limiter, config).await;
    }
    report
}

enum Outcome {
    Created,
    Updated,
    Unchanged,
}

async fn apply_one(api: &Api<Secret>, d: &DesiredSecret) -> Result<Outcome, String> {
    let hash = d
        .annotations
        .get(HASH_ANNOTATION)
        .cloned()
        .unwrap_or_default();
    let existing = api.get_opt(&d.name).await.map_err(|e| kube_reason(&e))?;
    let Some(mut current) = existing else {
        if d.policy == WritePolicy::Merge {
            return Err("the Secret does not exist, and the resource only merges into an existing one (creationPolicy Merge / destination.create false)".into());
        }
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(d.name.clone()),
                namespace: Some(d.namespace.clone()),
                labels: Some(d.labels.clone()),
                annotations: Some(d.annotations.clone()),
                owner_references: owner_refs(d),
                ..ObjectMeta::default()
            },
            type_: Some(d.type_.clone()),
            data: Some(to_data(d)),
            ..Secret::default()
        };
        api.create(&PostParams::default(), &secret)
            .await
            .map_err(|e| kube_reason(&e))?;
        return Ok(Outcome::Created);
    };
    let current_hash = current
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(HASH_ANNOTATION));
    if current_hash == Some(&hash) {
        return Ok(Outcome::Unchanged);
    }
    // Labels and annotations others set are kept; ours win.
    current
        .metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .extend(d.labels.clone());
    let annotations = current
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new);
    // The old credentials' lease annotations go with them.
    annotations.retain(|k, _| !crate::secret::unhashed_annotation(k) || k == HASH_ANNOTATION);
    annotations.extend(d.annotations.clone());
    if d.policy == WritePolicy::Merge {
        current
            .data
            .get_or_insert_with(BTreeMap::new)
            .extend(to_data(d));
    } else {
        if current.type_.as_deref().unwrap_or("Opaque") != d.type_ {
            return Err(format!(
                "the Secret's type is {:?}, the resource wants {:?} (a Secret's type cannot change: delete it first)",
                current.type_.as_deref().unwrap_or("Opaque"),
                d.type_
            ));
        }
        current.data = Some(to_data(d));
        current.string_data = None;
        if let Some(refs) = owner_refs(d) {
            current.metadata.owner_references = Some(refs);
        }
    }
    api.replace(&d.name, &PostParams::default(), &current)
        .await
        .map_err(|e| kube_reason(&e))?;
    Ok(Outcome::Updated)
}
