//! Writing rendered Secrets to a cluster through kube-rs: create when missing, replace only
//! when the Secret in the cluster differs from the rendered one (its type, data, our labels and
//! hashed annotations, the content hash: an idle run writes nothing, and a Secret edited by
//! hand is put back even if its hash annotation was left alone), merge for ESO's `Merge` and
//! VSO's `create: false`, nothing for ESO's `None`. After the writes, the rollout targets of
//! every Secret whose content changed are restarted (`rollout`), once each.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, PostParams};

use crate::rollout::{self, RateLimiter, RestartRequest, RolloutConfig, TargetReport};
use crate::secret::{DesiredSecret, HASH_ANNOTATION, WritePolicy};
use tresor_sdk::secret::SecretBytes;

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
    /// `Secret ns/name` → the Secret's resourceVersion after the pass (the one written, or the
    /// one found unchanged): a controller watching Secrets tells its own writes from others'.
    pub resource_versions: BTreeMap<String, String>,
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
            Ok((outcome, version)) => {
                if let Some(version) = version {
                    report.resource_versions.insert(id.clone(), version);
                }
                match outcome {
                    Outcome::Created => {
                        report.created.push(id);
                        false
                    }
                    Outcome::Updated => {
                        report.updated.push(id);
                        true
                    }
                    Outcome::Unchanged => {
                        report.unchanged.push(id);
                        false
                    }
                }
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

async fn apply_one(
    api: &Api<Secret>,
    d: &DesiredSecret,
) -> Result<(Outcome, Option<String>), String> {
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
        let created = api
            .create(&PostParams::default(), &secret)
            .await
            .map_err(|e| kube_reason(&e))?;
        return Ok((Outcome::Created, created.metadata.resource_version));
    };
    if in_step(&current, d) {
        return Ok((Outcome::Unchanged, current.metadata.resource_version));
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
    let replaced = api
        .replace(&d.name, &PostParams::default(), &current)
        .await
        .map_err(|e| kube_reason(&e))?;
    Ok((Outcome::Updated, replaced.metadata.resource_version))
}

/// Whether the Secret in the cluster holds what `d` renders: its content hash annotation, and
/// [`as_rendered`]'s view of it hashing as `d` does. The data is compared, not just the hash
/// annotation, so a value edited by hand is noticed; the lease annotations of dynamic secrets
/// are left out of the hash, so a renewal does not rewrite the Secret.
fn in_step(current: &Secret, d: &DesiredSecret) -> bool {
    let Some(want) = d.annotations.get(HASH_ANNOTATION) else {
        return false;
    };
    let have = current
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(HASH_ANNOTATION));
    have == Some(want) && as_rendered(current, d).content_hash() == *want
}

/// The cluster's Secret as `d` would render it, so that the two hash alike when the Secret
/// holds what `d` renders: its type (for a merge, `d`'s: a merge never sets the type), its data
/// (for a merge, only the keys `d` writes), and of its labels and annotations only those `d`
/// sets. What `apply` decides (write or leave) and `sync status` reports (drifted or in sync)
/// both come from it.
pub(crate) fn as_rendered(cluster: &Secret, d: &DesiredSecret) -> DesiredSecret {
    let mut seen = d.clone();
    if d.policy != WritePolicy::Merge {
        seen.type_ = cluster.type_.clone().unwrap_or_else(|| "Opaque".into());
    }
    seen.data = cluster
        .data
        .iter()
        .flatten()
        .filter(|(k, _)| d.policy != WritePolicy::Merge || d.data.contains_key(*k))
        .map(|(k, v)| (k.clone(), SecretBytes::copy_from(&v.0)))
        .collect();
    let pick = |have: Option<&BTreeMap<String, String>>, want: &BTreeMap<String, String>| {
        have.iter()
            .flat_map(|h| h.iter())
            .filter(|(k, _)| want.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    seen.labels = pick(cluster.metadata.labels.as_ref(), &d.labels);
    seen.annotations = pick(cluster.metadata.annotations.as_ref(), &d.annotations);
    seen
}

/// The Secret `apply` creates from `d` (tests of what reads it back).
#[cfg(test)]
pub(crate) fn as_written(d: &DesiredSecret) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(d.name.clone()),
            labels: Some(d.labels.clone()),
            annotations: Some(d.annotations.clone()),
            ..ObjectMeta::default()
        },
        type_: Some(d.type_.clone()),
        data: Some(to_data(d)),
        ..Secret::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;
    use crate::secret::{LEASE_ID_ANNOTATION, Origin};

    fn desired(policy: WritePolicy) -> DesiredSecret {
        let mut d = DesiredSecret {
            origin: Origin {
                api_version: "external-secrets.io/v1".into(),
                kind: "ExternalSecret".into(),
                namespace: "apps".into(),
                name: "web".into(),
                uid: None,
            },
            namespace: "apps".into(),
            name: "web".into(),
            type_: "Opaque".into(),
            labels: [("team".to_owned(), "a".to_owned())].into(),
            annotations: BTreeMap::new(),
            data: [
                ("user".to_owned(), SecretBytes::copy_from(b"web")),
                ("password".to_owned(), SecretBytes::copy_from(b"s3cret")),
            ]
            .into(),
            policy,
            rollout_restart_targets: Vec::new(),
            leases: Vec::new(),
        };
        d.seal();
        d
    }

    #[test]
    fn a_secret_as_written_is_in_step_whatever_others_add() {
        let d = desired(WritePolicy::Owner);
        let mut s = as_written(&d);
        assert!(in_step(&s, &d));
        s.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("added-by".into(), "someone".into());
        s.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert("note".into(), "x".into());
        assert!(in_step(&s, &d));
        // Lease annotations move with renewals and are not part of the content.
        s.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(LEASE_ID_ANNOTATION.into(), "database/creds/x/old".into());
        assert!(in_step(&s, &d));
    }

    #[test]
    fn edits_by_hand_are_out_of_step_even_with_the_hash_left_alone() {
        let d = desired(WritePolicy::Owner);
        type Edit = (&'static str, fn(&mut Secret));
        let edits: [Edit; 6] = [
            ("a value", |s| {
                s.data
                    .as_mut()
                    .unwrap()
                    .insert("password".into(), ByteString(b"tampered".to_vec()));
            }),
            ("a key removed", |s| {
                s.data.as_mut().unwrap().remove("user");
            }),
            ("a key added", |s| {
                s.data
                    .as_mut()
                    .unwrap()
                    .insert("extra".into(), ByteString(b"x".to_vec()));
            }),
            ("our label", |s| {
                s.metadata.labels.as_mut().unwrap().remove("team");
            }),
            ("the hash annotation", |s| {
                s.metadata
                    .annotations
                    .as_mut()
                    .unwrap()
                    .insert(HASH_ANNOTATION.into(), "sha256:0".into());
            }),
            ("the type", |s| s.type_ = Some("kubernetes.io/tls".into())),
        ];
        for (what, edit) in edits {
            let mut s = as_written(&d);
            edit(&mut s);
            assert!(!in_step(&s, &d), "{what}");
        }
    }

    #[test]
    fn a_merge_compares_only_the_keys_it_sets() {
        let d = desired(WritePolicy::Merge);
        let mut s = as_written(&d);
        s.type_ = Some("kubernetes.io/dockerconfigjson".into());
        s.data
            .as_mut()
            .unwrap()
            .insert("theirs".into(), ByteString(b"x".to_vec()));
        assert!(in_step(&s, &d));
        s.data
            .as_mut()
            .unwrap()
            .insert("user".into(), ByteString(b"other".to_vec()));
        assert!(!in_step(&s, &d));
    }
}
