//! When a resource is next due after a successful sync: ESO's `refreshInterval` (Go duration,
//! default `1h`, `0` = never), VSO's `refreshAfter` (none: only on change), `TresorSecret`'s
//! `spec.refreshInterval` (Vault duration, default `1h`, `0` = never).
//!
//! Dynamic resources are scheduled by their lease instead ([`next_refresh`]'s `lease_due`).

use std::time::Duration;

use tresor_sdk::duration;

use crate::model::Resource;

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

/// When to reconcile again after a success. `lease_due` is when the lease schedule of a
/// dynamic resource (`dynamic::next_action`: renew at `renewalPercent`, re-issue before the
/// max TTL, revoke a retired lease) next has something to do: for those resources it is the
/// schedule, since re-rendering them on an interval would issue new credentials each time
/// (`refreshAfter` is not used for them). Others refresh on their interval.
pub fn next_refresh(
    resource: &Resource,
    lease_due: Option<Duration>,
) -> Result<Option<Duration>, String> {
    match lease_due {
        Some(due) if resource.is_dynamic() => Ok(Some(due)),
        _ => interval(resource),
    }
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

    #[test]
    fn dynamic_resources_follow_their_lease_schedule() {
        let vds = one(
            "apiVersion: secrets.hashicorp.com/v1beta1\nkind: VaultDynamicSecret\nmetadata: {name: a}\nspec: {mount: database, path: creds/app, refreshAfter: 1h, destination: {name: a}}\n",
        );
        let due = Duration::from_millis(2_010);
        assert_eq!(next_refresh(&vds, Some(due)).unwrap(), Some(due));
        assert_eq!(
            next_refresh(&vds, None).unwrap(),
            Some(Duration::from_secs(3600))
        );
        let vss = one(
            "apiVersion: secrets.hashicorp.com/v1beta1\nkind: VaultStaticSecret\nmetadata: {name: a}\nspec: {refreshAfter: 30s}\n",
        );
        assert_eq!(
            next_refresh(&vss, Some(due)).unwrap(),
            Some(Duration::from_secs(30))
        );
    }
}
