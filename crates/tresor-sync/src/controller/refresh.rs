//! When a resource is next due after a successful sync: ESO's `refreshInterval` (Go duration,
//! default `1h`, `0` = never), VSO's `refreshAfter` (none: only on change), `TresorSecret`'s
//! `spec.refreshInterval` (Vault duration, default `1h`, `0` = never).
//!
//! This is the hook for schedules that depend on what was fetched: the dynamic-secret lease
//! schedule (renew at `renewalPercent` of the TTL, re-issue before the max TTL) plugs in
//! through [`next_refresh`]'s `leases`, taking the sooner of the two.

use std::time::Duration;

use tresor_sdk::duration;

use super::cache::Entry;
use crate::model::Resource;
use crate::secret::LeaseInfo;

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(3600);

fn go(
    field: &str,
    value: Option<&str>,
    default: Option<Duration>,
) -> Result<Option<Duration>, String> {
    let Some(text) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(default);
    };
    let nanos = duration::parse_go(text).map_err(|e| format!("{field} {text:?}: {e}"))?;
    if nanos <= 0 {
        return Ok(None);
    }
    duration::to_std(nanos)
        .map(Some)
        .map_err(|e| format!("{field} {text:?}: {e}"))
}

/// The resource's own refresh period (`None`: only on change).
pub fn interval(resource: &Resource) -> Result<Option<Duration>, String> {
    match resource {
        Resource::ExternalSecret(es) => go(
            "refreshInterval",
            es.spec.refresh_interval.as_deref(),
            Some(DEFAULT_INTERVAL),
        ),
        Resource::VaultStaticSecret(s) => go("refreshAfter", s.spec.refresh_after.as_deref(), None),
        Resource::VaultDynamicSecret(s) => {
            go("refreshAfter", s.spec.refresh_after.as_deref(), None)
        }
        Resource::TresorSecret(s) => {
            let Some(text) = s
                .spec
                .refresh_interval
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
            else {
                return Ok(Some(DEFAULT_INTERVAL));
            };
            let nanos =
                duration::parse_str(text).map_err(|e| format!("refreshInterval {text:?}: {e}"))?;
            if nanos <= 0 {
                return Ok(None);
            }
            duration::to_std(nanos)
                .map(Some)
                .map_err(|e| format!("refreshInterval {text:?}: {e}"))
        }
        _ => Ok(None),
    }
}

/// When to reconcile again after a success that fetched `leases`: the resource's interval.
/// (Lease-driven schedules are not applied here yet: see the module comment.)
pub fn next_refresh(resource: &Resource, leases: &[LeaseInfo]) -> Result<Option<Duration>, String> {
    let _ = leases;
    interval(resource)
}

/// Whether a resource seen for the first time (controller start, new leader) must be
/// rendered at once. Everything is, except a `VaultDynamicSecret` whose status says the
/// current spec was already rendered (a lease recorded for this generation): rendering it
/// again would issue new credentials on every restart.
pub fn initially_due(entry: &Entry) -> bool {
    if !matches!(entry.resource, Ok(Resource::VaultDynamicSecret(_))) {
        return true;
    }
    let rendered_generation = entry
        .status
        .get("lastGeneration")
        .and_then(serde_json::Value::as_i64);
    let lease = entry
        .status
        .pointer("/secretLease/id")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    !(rendered_generation.is_some() && rendered_generation == entry.generation && !lease.is_empty())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;
    use crate::model::Manifests;

    fn one(yaml: &str) -> Resource {
        let mut m = Manifests::default();
        m.add_text(std::path::Path::new("t.yaml"), yaml).unwrap();
        m.resources.remove(0)
    }

    #[test]
    fn intervals_per_kind() {
        let es = |ri: &str| {
            one(&format!(
                "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: a}}\nspec: {{{ri}}}\n"
            ))
        };
        assert_eq!(interval(&es("")).unwrap(), Some(DEFAULT_INTERVAL));
        assert_eq!(
            interval(&es("refreshInterval: 1s")).unwrap(),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            interval(&es("refreshInterval: 1m30s")).unwrap(),
            Some(Duration::from_secs(90))
        );
        assert_eq!(interval(&es("refreshInterval: \"0\"")).unwrap(), None);
        assert_eq!(interval(&es("refreshInterval: 0s")).unwrap(), None);
        assert!(
            interval(&es("refreshInterval: soon"))
                .unwrap_err()
                .contains("refreshInterval")
        );
        let vss = |ra: &str| {
            one(&format!(
                "apiVersion: secrets.hashicorp.com/v1beta1\nkind: VaultStaticSecret\nmetadata: {{name: a}}\nspec: {{{ra}}}\n"
            ))
        };
        assert_eq!(interval(&vss("")).unwrap(), None);
        assert_eq!(
            interval(&vss("refreshAfter: 30s")).unwrap(),
            Some(Duration::from_secs(30))
        );
        let ts = |ri: &str| {
            one(&format!(
                "apiVersion: tresor.dev/v1alpha1\nkind: TresorSecret\nmetadata: {{name: a}}\nspec: {{{ri}}}\n"
            ))
        };
        assert_eq!(interval(&ts("")).unwrap(), Some(DEFAULT_INTERVAL));
        assert_eq!(
            interval(&ts("refreshInterval: 10m")).unwrap(),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            interval(&ts("refreshInterval: 2d")).unwrap(),
            Some(Duration::from_secs(172_800))
        );
        assert_eq!(interval(&ts("refreshInterval: \"0\"")).unwrap(), None);
    }
}
