//! The controller's Prometheus metrics, in the text exposition format (0.0.4), written by
//! hand: `tresor-sync` must not depend on the server crates, whose registry has the encoder.
//!
//! - `tresor_sync_syncs_total{kind,result}`: reconciles, `result` `success` or `error`;
//! - `tresor_sync_failures_total{kind}`: failed reconciles (a source, a login or a write);
//! - `tresor_sync_secret_writes_total{kind,operation}`: Secret `create`s and `update`s;
//! - `tresor_sync_sync_duration_seconds{kind}`: a histogram of reconcile durations;
//! - `tresor_sync_last_success_age_seconds{kind,namespace,name}`: the lag of each resource
//!   (seconds since its last successful sync; absent until it had one);
//! - `tresor_sync_resources{kind}`: rendering resources watched;
//! - `tresor_sync_leader`: 1 while this replica holds the Lease.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::kinds::{Kind, ObjKey};

const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Inner {
    syncs: BTreeMap<(Kind, &'static str), u64>,
    failures: BTreeMap<Kind, u64>,
    writes: BTreeMap<(Kind, &'static str), u64>,
    durations: BTreeMap<Kind, Histogram>,
    last_success: BTreeMap<ObjKey, Instant>,
    resources: BTreeMap<Kind, u64>,
    leader: bool,
}

#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// Prometheus label values: backslash, double quote and newline escaped.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

impl Metrics {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        // A panic while holding the lock cannot leave the counters inconsistent in a way
        // that matters: keep serving them.
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    pub fn sync_done(&self, key: &ObjKey, ok: bool, took: Duration) {
        self.with(|m| {
            let result = if ok { "success" } else { "error" };
            *m.syncs.entry((key.kind, result)).or_default() += 1;
            if ok {
                m.last_success.insert(key.clone(), Instant::now());
            } else {
                *m.failures.entry(key.kind).or_default() += 1;
            }
            let h = m.durations.entry(key.kind).or_default();
            let secs = took.as_secs_f64();
            for (count, bound) in h.counts.iter_mut().zip(BUCKETS) {
                if secs <= bound {
                    *count += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        });
    }

    pub fn secret_written(&self, kind: Kind, created: bool) {
        self.with(|m| {
            *m.writes
                .entry((kind, if created { "create" } else { "update" }))
                .or_default() += 1;
        });
    }

    /// A resource is gone: its lag series goes with it.
    pub fn forget(&self, key: &ObjKey) {
        self.with(|m| {
            m.last_success.remove(key);
        });
    }

    pub fn set_resources(&self, counts: BTreeMap<Kind, u64>) {
        self.with(|m| m.resources = counts);
    }

    pub fn set_leader(&self, leader: bool) {
        self.with(|m| m.leader = leader);
    }

    /// The exposition.
    pub fn render(&self) -> String {
        self.with(|m| {
            let mut out = String::new();
            let now = Instant::now();
            let family = |out: &mut String, name: &str, kind: &str, help: &str| {
                let _ = writeln!(out, "# HELP {name} {help}");
                let _ = writeln!(out, "# TYPE {name} {kind}");
            };
            family(
                &mut out,
                "tresor_sync_syncs_total",
                "counter",
                "Reconciles of rendering resources, by kind and result.",
            );
            for ((kind, result), n) in &m.syncs {
                let _ = writeln!(
                    out,
                    "tresor_sync_syncs_total{{kind=\"{kind}\",result=\"{result}\"}} {n}"
                );
            }
            family(
                &mut out,
                "tresor_sync_failures_total",
                "counter",
                "Failed reconciles (a source, a login or a write), by kind.",
            );
            for (kind, n) in &m.failures {
                let _ = writeln!(out, "tresor_sync_failures_total{{kind=\"{kind}\"}} {n}");
            }
            family(
                &mut out,
                "tresor_sync_secret_writes_total",
                "counter",
                "Secrets created or updated, by the kind of the resource and the operation.",
            );
            for ((kind, op), n) in &m.writes {
                let _ = writeln!(
                    out,
                    "tresor_sync_secret_writes_total{{kind=\"{kind}\",operation=\"{op}\"}} {n}"
                );
            }
            family(
                &mut out,
                "tresor_sync_sync_duration_seconds",
                "histogram",
                "How long one reconcile took (fetch, render, write), by kind.",
            );
            for (kind, h) in &m.durations {
                for (count, bound) in h.counts.iter().zip(BUCKETS) {
                    let _ = writeln!(
                        out,
                        "tresor_sync_sync_duration_seconds_bucket{{kind=\"{kind}\",le=\"{bound}\"}} {count}"
                    );
                }
                let _ = writeln!(
                    out,
                    "tresor_sync_sync_duration_seconds_bucket{{kind=\"{kind}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "tresor_sync_sync_duration_seconds_sum{{kind=\"{kind}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "tresor_sync_sync_duration_seconds_count{{kind=\"{kind}\"}} {}",
                    h.count
                );
            }
            family(
                &mut out,
                "tresor_sync_last_success_age_seconds",
                "gauge",
                "Seconds since the resource's last successful sync (its lag).",
            );
            for (key, at) in &m.last_success {
                let _ = writeln!(
                    out,
                    "tresor_sync_last_success_age_seconds{{kind=\"{}\",namespace=\"{}\",name=\"{}\"}} {:.3}",
                    key.kind,
                    escape(&key.namespace),
                    escape(&key.name),
                    now.duration_since(*at).as_secs_f64()
                );
            }
            family(
                &mut out,
                "tresor_sync_resources",
                "gauge",
                "Rendering resources watched, by kind.",
            );
            for (kind, n) in &m.resources {
                let _ = writeln!(out, "tresor_sync_resources{{kind=\"{kind}\"}} {n}");
            }
            family(
                &mut out,
                "tresor_sync_leader",
                "gauge",
                "1 while this replica holds the leader-election Lease.",
            );
            let _ = writeln!(out, "tresor_sync_leader {}", u8::from(m.leader));
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_histograms_and_escaped_labels() {
        let m = Metrics::default();
        let key = ObjKey::new(Kind::ExternalSecret, "ns", "we\"ird\\name");
        m.sync_done(&key, true, Duration::from_millis(20));
        m.sync_done(&key, false, Duration::from_secs(20));
        m.secret_written(Kind::ExternalSecret, true);
        m.set_leader(true);
        let text = m.render();
        assert!(
            text.contains(
                "tresor_sync_syncs_total{kind=\"ExternalSecret\",result=\"success\"} 1\n"
            )
        );
        assert!(
            text.contains("tresor_sync_syncs_total{kind=\"ExternalSecret\",result=\"error\"} 1\n")
        );
        assert!(text.contains("tresor_sync_failures_total{kind=\"ExternalSecret\"} 1\n"));
        assert!(text.contains(
            "tresor_sync_secret_writes_total{kind=\"ExternalSecret\",operation=\"create\"} 1\n"
        ));
        assert!(text.contains(
            "tresor_sync_sync_duration_seconds_bucket{kind=\"ExternalSecret\",le=\"0.025\"} 1\n"
        ));
        assert!(text.contains(
            "tresor_sync_sync_duration_seconds_bucket{kind=\"ExternalSecret\",le=\"10\"} 1\n"
        ));
        assert!(text.contains(
            "tresor_sync_sync_duration_seconds_bucket{kind=\"ExternalSecret\",le=\"+Inf\"} 2\n"
        ));
        assert!(text.contains("name=\"we\\\"ird\\\\name\""));
        assert!(text.contains("tresor_sync_leader 1\n"));
        m.forget(&key);
        assert!(!m.render().contains("we\\\"ird"));
    }
}
