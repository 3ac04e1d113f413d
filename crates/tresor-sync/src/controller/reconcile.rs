//! One reconcile of one resource: its inputs from the cache (the resource and what it refers
//! to), the engine's one pass over them (fetch, render), then the write through `apply`
//! (create, or replace only on a content-hash change) and the rollout restarts of a changed
//! Secret (`apply::apply_with`, with the controller's rate limiter). The result says what
//! happened; the controller's loop turns it into status, Events, metrics and the next due time.
//!
//! A restart the limiter deferred (or that failed) is retried by the controller: it passes
//! the content hash whose restart is pending, and an unchanged Secret with that hash has its
//! targets restarted as for a change (a target whose `tresor.dev/restarted-for` entry already
//! names the hash is left alone, so a change is restarted once).

use crate::apply;
use crate::engine::{Engine, Options};
use crate::rollout::{self, RateLimiter, RestartRequest, RolloutConfig, TargetReport};
use crate::secret::{DesiredSecret, HASH_ANNOTATION};

use super::cache::{Cache, Entry};

/// What the write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created,
    Updated,
    Unchanged,
    /// Rendered and checked only (ESO `creationPolicy: None`).
    Skipped,
}

#[derive(Debug)]
pub struct Synced {
    /// The Secret as rendered (values inside; never logged).
    pub secret: Option<DesiredSecret>,
    pub written: Written,
    /// One per rollout target (empty when the Secret has none).
    pub restarts: Vec<TargetReport>,
    /// The Secret's resourceVersion after the write (or as found unchanged).
    pub resource_version: Option<String>,
}

/// What a reconcile may use beyond its inputs: the restart limiter kept across reconciles,
/// and the content hash of a Secret whose restart is still pending.
#[derive(Debug)]
pub struct Rollout<'a> {
    pub limiter: &'a mut RateLimiter,
    pub config: &'a RolloutConfig,
    pub pending_hash: Option<&'a str>,
}

/// The failures' safe text: `key: reason; key: reason` (the resource is the status's owner,
/// so its name is left out). The engine says a referenced store is "not found in the
/// inputs" (its inputs are files in `once`); here its inputs are the cluster's objects.
fn failure_message(failures: &[crate::engine::Failure]) -> String {
    failures
        .iter()
        .map(|f| {
            let reason = f.reason.replace(" not found in the inputs", " not found");
            match &f.key {
                Some(key) => format!("{key}: {reason}"),
                None => reason,
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub async fn reconcile(
    client: &kube::Client,
    options: &Options,
    cache: &Cache,
    entry: &Entry,
    rollout: Rollout<'_>,
) -> Result<Synced, String> {
    let manifests = match (&entry.resource, cache.manifests_for(entry)) {
        (Err(reason), _) => return Err(format!("the resource does not parse: {reason}")),
        (Ok(_), Some(m)) => m,
        (Ok(_), None) => return Err("the resource does not parse".into()),
    };
    let mut engine = Engine::new(&manifests, options, Some(client.clone()));
    let outcome = engine.run().await;
    if !outcome.failures.is_empty() {
        return Err(failure_message(&outcome.failures));
    }
    let Some(mut secret) = outcome.secrets.into_iter().next() else {
        return Ok(Synced {
            secret: None,
            written: Written::Skipped,
            restarts: Vec::new(),
            resource_version: None,
        });
    };
    // Owner references name the version the cluster served the resource in.
    secret.origin.api_version = entry.api_version.clone();
    if secret.origin.uid.is_none() {
        secret.origin.uid = entry.uid.clone();
    }
    let mut report = apply::apply_with(
        client,
        std::slice::from_ref(&secret),
        rollout.limiter,
        rollout.config,
    )
    .await;
    if let Some(failed) = report.failed.first() {
        return Err(failed.clone());
    }
    let written = if !report.created.is_empty() {
        Written::Created
    } else if !report.updated.is_empty() {
        Written::Updated
    } else if !report.unchanged.is_empty() {
        Written::Unchanged
    } else {
        Written::Skipped
    };
    let resource_version = report
        .resource_versions
        .remove(&format!("Secret {}/{}", secret.namespace, secret.name));
    let hash = secret.annotations.get(HASH_ANNOTATION).cloned();
    if written == Written::Unchanged
        && !secret.rollout_restart_targets.is_empty()
        && hash.is_some()
        && rollout.pending_hash == hash.as_deref()
    {
        let request = RestartRequest {
            namespace: secret.namespace.clone(),
            secret: secret.name.clone(),
            hash: hash.unwrap_or_default(),
            changed: true,
            targets: secret.rollout_restart_targets.clone(),
        };
        report.restarts =
            rollout::restart(client, &[request], rollout.limiter, rollout.config).await;
    }
    Ok(Synced {
        secret: Some(secret),
        written,
        restarts: report.restarts,
        resource_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Failure;

    #[test]
    fn failure_messages_name_keys_not_the_resource() {
        let f = |key: Option<&str>, reason: &str| Failure {
            resource: "ExternalSecret apps/x".into(),
            key: key.map(str::to_owned),
            reason: reason.into(),
        };
        assert_eq!(
            failure_message(&[
                f(Some("password"), "no secret at secret/data/a"),
                f(None, "SecretStore apps/s not found in the inputs"),
            ]),
            "password: no secret at secret/data/a; SecretStore apps/s not found"
        );
    }
}
