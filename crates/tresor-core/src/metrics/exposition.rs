//! What a scrape sees, and the two formats `sys/metrics` serves: the Prometheus text format
//! (0.0.4) and the JSON summary of go-metrics' in-memory sink that OpenBao returns by default.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::histogram::{BUCKETS_MS, HistogramSnapshot};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SeriesValue {
    Counter(u64),
    Gauge(f64),
    Histogram(HistogramSnapshot),
}

/// One labelled time series.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Vec<(&'static str, String)>,
    pub value: SeriesValue,
}

impl Series {
    pub fn unlabelled(value: SeriesValue) -> Self {
        Self {
            labels: Vec::new(),
            value,
        }
    }
}

/// A metric: its dotted name (`vault.core.handle_request`), help text, kind and series.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub series: Vec<Series>,
}

impl Family {
    pub fn counter(name: &'static str, help: &'static str, series: Vec<Series>) -> Self {
        Self {
            name,
            help,
            kind: Kind::Counter,
            series,
        }
    }

    pub fn gauge(name: &'static str, help: &'static str, series: Vec<Series>) -> Self {
        Self {
            name,
            help,
            kind: Kind::Gauge,
            series,
        }
    }

    pub fn histogram(name: &'static str, help: &'static str, series: Vec<Series>) -> Self {
        Self {
            name,
            help,
            kind: Kind::Histogram,
            series,
        }
    }

    /// A gauge with one unlabelled value.
    pub fn single_gauge(name: &'static str, help: &'static str, value: f64) -> Self {
        Self::gauge(
            name,
            help,
            vec![Series::unlabelled(SeriesValue::Gauge(value))],
        )
    }
}

/// The Prometheus name of a dotted metric name: every character outside `[a-zA-Z0-9_:]`
/// becomes `_`, as go-metrics' Prometheus sink does.
fn prometheus_name(dotted: &str) -> String {
    dotted
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn escape_help(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\n', "\\n")
}

fn label_set(labels: &[(&'static str, String)], extra: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{}\"", escape_label(v)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// Prometheus renders floats with Go's shortest representation; Rust's `Display` for `f64`
/// is also shortest round-trip, and the special values are spelled as the format wants.
fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
}

/// The text exposition format, version 0.0.4.
pub fn prometheus_text(families: &[Family]) -> String {
    let mut out = String::new();
    for family in families {
        let name = prometheus_name(family.name);
        let kind = match family.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let _ = writeln!(out, "# HELP {name} {}", escape_help(family.help));
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for series in &family.series {
            match &series.value {
                SeriesValue::Counter(v) => {
                    let _ = writeln!(out, "{name}{} {v}", label_set(&series.labels, None));
                }
                SeriesValue::Gauge(v) => {
                    let _ = writeln!(
                        out,
                        "{name}{} {}",
                        label_set(&series.labels, None),
                        float(*v)
                    );
                }
                SeriesValue::Histogram(h) => {
                    for (bound, count) in BUCKETS_MS.iter().zip(h.cumulative.iter()) {
                        let le = float(*bound);
                        let labels = label_set(&series.labels, Some(("le", &le)));
                        let _ = writeln!(out, "{name}_bucket{labels} {count}");
                    }
                    let inf = label_set(&series.labels, Some(("le", "+Inf")));
                    let _ = writeln!(out, "{name}_bucket{inf} {}", h.count);
                    let plain = label_set(&series.labels, None);
                    let _ = writeln!(out, "{name}_sum{plain} {}", float(h.sum_ms));
                    let _ = writeln!(out, "{name}_count{plain} {}", h.count);
                }
            }
        }
    }
    out
}

fn labels_object(labels: &[(&'static str, String)]) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
            .collect::<Map<String, Value>>(),
    )
}

/// go-metrics' `MetricsSummary` as OpenBao's `sys/metrics` returns it without a format:
/// `Timestamp`, `Gauges`, `Points`, `Counters`, `Samples`. OpenBao's values cover its last
/// finished 10-second interval; Tresor's are cumulative since the process started, and each
/// `Rate` is per second of that time. `timestamp` is already formatted the way Go prints a
/// time (`2006-01-02 15:04:05 +0000 UTC`).
pub fn inmem_json(families: &[Family], timestamp: &str, uptime: Duration) -> Value {
    let secs = uptime.as_secs_f64().max(1.0);
    let mut gauges = Vec::new();
    let mut counters = Vec::new();
    let mut samples = Vec::new();
    for family in families {
        for series in &family.series {
            let labels = labels_object(&series.labels);
            match &series.value {
                SeriesValue::Gauge(v) => gauges.push(json!({
                    "Name": family.name,
                    "Value": v,
                    "Labels": labels,
                })),
                SeriesValue::Counter(v) => {
                    // Every increment is 1: the aggregate of `v` samples of 1.
                    let n = *v as f64;
                    let one = if *v == 0 { 0.0 } else { 1.0 };
                    counters.push(json!({
                        "Name": family.name,
                        "Count": v,
                        "Rate": n / secs,
                        "Sum": n,
                        "Min": one,
                        "Max": one,
                        "Mean": one,
                        "Stddev": 0.0,
                        "Labels": labels,
                    }));
                }
                SeriesValue::Histogram(h) => {
                    if h.count == 0 {
                        // go-metrics only lists samples that were recorded.
                        continue;
                    }
                    samples.push(json!({
                        "Name": family.name,
                        "Count": h.count,
                        "Rate": h.sum_ms / secs,
                        "Sum": h.sum_ms,
                        "Min": h.min_ms,
                        "Max": h.max_ms,
                        "Mean": h.sum_ms / h.count as f64,
                        "Stddev": h.stddev_ms,
                        "Labels": labels,
                    }));
                }
            }
        }
    }
    json!({
        "Timestamp": timestamp,
        "Gauges": gauges,
        "Points": [],
        "Counters": counters,
        "Samples": samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_families() -> Vec<Family> {
        let h = super::super::Histogram::default();
        h.observe(Duration::from_millis(2));
        vec![
            Family::single_gauge("vault.core.unsealed", "1 when unsealed.", 1.0),
            Family::counter(
                "vault.audit.log_request_failure",
                "failures",
                vec![Series::unlabelled(SeriesValue::Counter(3))],
            ),
            Family::histogram(
                "vault.route",
                "per route",
                vec![Series {
                    labels: vec![
                        ("mount", "odd \"mount\"\\/".to_owned()),
                        ("operation", "read".to_owned()),
                    ],
                    value: SeriesValue::Histogram(h.snapshot()),
                }],
            ),
        ]
    }

    #[test]
    fn prometheus_text_has_type_lines_buckets_and_escaped_labels() {
        let text = prometheus_text(&sample_families());
        assert!(text.contains("# TYPE vault_core_unsealed gauge\nvault_core_unsealed 1\n"));
        assert!(text.contains(
            "# TYPE vault_audit_log_request_failure counter\nvault_audit_log_request_failure 3\n"
        ));
        assert!(text.contains("# TYPE vault_route histogram\n"));
        assert!(text.contains(
            "vault_route_bucket{mount=\"odd \\\"mount\\\"\\\\/\",operation=\"read\",le=\"2.5\"} 1\n"
        ));
        assert!(text.contains(
            "vault_route_bucket{mount=\"odd \\\"mount\\\"\\\\/\",operation=\"read\",le=\"1\"} 0\n"
        ));
        assert!(text.contains("le=\"+Inf\"} 1\n"));
        assert!(text.contains(
            "vault_route_count{mount=\"odd \\\"mount\\\"\\\\/\",operation=\"read\"} 1\n"
        ));
    }

    #[test]
    fn the_json_summary_has_go_metrics_keys() {
        let v = inmem_json(
            &sample_families(),
            "2026-01-01 00:00:00 +0000 UTC",
            Duration::from_secs(10),
        );
        let keys: Vec<&str> = v
            .as_object()
            .into_iter()
            .flat_map(|o| o.keys())
            .map(String::as_str)
            .collect();
        for k in ["Timestamp", "Gauges", "Points", "Counters", "Samples"] {
            assert!(keys.contains(&k), "{k} missing from {v}");
        }
        assert_eq!(v["Gauges"][0]["Name"], "vault.core.unsealed");
        assert_eq!(v["Gauges"][0]["Labels"], json!({}));
        assert_eq!(v["Counters"][0]["Count"], 3);
        assert_eq!(v["Counters"][0]["Sum"], 3.0);
        let sample = &v["Samples"][0];
        assert_eq!(sample["Name"], "vault.route");
        assert_eq!(sample["Count"], 1);
        assert_eq!(sample["Labels"]["operation"], "read");
        for k in ["Rate", "Sum", "Min", "Max", "Mean", "Stddev"] {
            assert!(sample[k].is_number(), "{k} in {sample}");
        }
    }
}
