//! The state gauges of a scrape, read from the core when asked (nothing keeps them current
//! between scrapes): seal state, active/standby, leases and tokens in the expiration
//! manager's queue, and its revocation counters.

use super::{Family, Series, SeriesValue};
use crate::core::Core;
use crate::token::entry::now_ns;

impl Core {
    /// Every metric family: the process registry's plus the core's state gauges.
    pub fn metric_families(&self) -> Vec<Family> {
        let active = self.active().ok();
        let unsealed = if self.is_sealed() { 0.0 } else { 1.0 };
        let serving = if active.is_some() { 1.0 } else { 0.0 };
        let mut out = vec![
            Family::single_gauge(
                "vault.core.unsealed",
                "1 while the server is unsealed, 0 while sealed.",
                unsealed,
            ),
            // Without HA an unsealed server is the active node; an HA standby is unsealed
            // without an active state.
            Family::single_gauge(
                "vault.core.active",
                "1 on the active node, 0 on a standby or sealed node.",
                serving,
            ),
        ];
        let Some(active) = active else {
            out.extend(super::global().families());
            return out;
        };
        let stats = active.expiration.stats();
        let counts = active.expiration.queue.counts(now_ns());
        out.push(Family::single_gauge(
            "vault.expire.num_leases",
            "Leases (secrets and tokens) with an expiry, loaded in the expiration manager.",
            counts.total as f64,
        ));
        out.push(Family::single_gauge(
            "vault.expire.num_irrevocable_leases",
            "Leases whose revocation failed and waits for a retry.",
            stats.pending_revocations as f64,
        ));
        out.push(Family::gauge(
            "vault.expire.leases.by_expiration",
            "Leases due to expire within the labelled time.",
            vec![
                Series {
                    labels: vec![("expiring", "1h".to_owned())],
                    value: SeriesValue::Gauge(counts.within_hour as f64),
                },
                Series {
                    labels: vec![("expiring", "24h".to_owned())],
                    value: SeriesValue::Gauge(counts.within_day as f64),
                },
            ],
        ));
        out.push(Family::single_gauge(
            "vault.token.count",
            "Service tokens with a TTL (each has a lease in the expiration manager).",
            counts.tokens as f64,
        ));
        out.push(Family::counter(
            "vault.expire.revoked",
            "Leases revoked since unseal.",
            vec![Series::unlabelled(SeriesValue::Counter(
                stats.revoked_total,
            ))],
        ));
        out.push(Family::counter(
            "vault.expire.revoke_failure",
            "Failed revocation attempts since unseal; each is retried with backoff.",
            vec![Series::unlabelled(SeriesValue::Counter(
                stats.revocation_failures_total,
            ))],
        ));
        out.extend(super::global().families());
        out
    }
}

impl Core {
    /// The mount point a request path belongs to, as the `vault.route` metric labels it
    /// (`secret/`, `auth/token/`, `sys/`); `None` for a path no mount serves.
    pub fn metrics_mount(&self, path: &str) -> Option<String> {
        if path == "sys" || path.starts_with("sys/") {
            return Some("sys/".to_owned());
        }
        let active = self.active().ok()?;
        if let Some(rest) = path.strip_prefix("auth/") {
            let (mounted, _) = active
                .mounts
                .table(crate::mount::MountKind::Auth)
                .route(rest)?;
            return Some(format!("auth/{}", mounted.entry.path));
        }
        let (mounted, _) = active
            .mounts
            .table(crate::mount::MountKind::Secret)
            .route(path)?;
        Some(mounted.entry.path.clone())
    }
}
