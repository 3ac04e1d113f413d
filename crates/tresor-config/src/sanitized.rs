//! The configuration as `sys/config/state/sanitized` shows it: OpenBao's key names (its
//! `Config.Sanitized`), every key present (settings Tresor lacks at their zero value, as
//! OpenBao shows settings a file leaves out), and nothing that can hold a secret: the storage
//! stanza keeps only its type (a PostgreSQL `connection_url` carries a password), audit devices
//! only their path, type and description (a socket address or file path is fine to hide too).

use serde_json::{Map, Value, json};

use crate::model::{ListenerConfig, ServerConfig, StorageConfig};

/// Go's `time.Duration` marshals as integer nanoseconds.
fn nanos(d: std::time::Duration) -> Value {
    Value::from(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl ServerConfig {
    pub fn sanitized(&self) -> Map<String, Value> {
        let mut out = Map::new();
        let mut put = |k: &str, v: Value| {
            out.insert(k.to_owned(), v);
        };
        // The SharedConfig half.
        put("default_max_request_duration", json!(0));
        put(
            "log_level",
            json!(self.log_level.clone().unwrap_or_default()),
        );
        put(
            "log_format",
            json!(self.log_format.map(|f| f.name()).unwrap_or_default()),
        );
        put("pid_file", json!(""));
        put(
            "cluster_name",
            json!(self.cluster_name.clone().unwrap_or_default()),
        );
        // The server half.
        put("cache_size", json!(0));
        put("disable_sentinel_trace", json!(false));
        put("disable_cache", json!(false));
        put("disable_printable_check", json!(false));
        put("enable_ui", json!(self.ui));
        put(
            "max_lease_ttl",
            json!(self.max_lease_ttl.map_or(0, |d| d.as_secs())),
        );
        put(
            "default_lease_ttl",
            json!(self.default_lease_ttl.map_or(0, |d| d.as_secs())),
        );
        put("cluster_cipher_suites", json!(""));
        put("plugin_directory", json!(""));
        put("plugin_file_uid", json!(0));
        put("plugin_file_permissions", json!(0));
        put("raw_storage_endpoint", json!(false));
        put("introspection_endpoint", json!(false));
        put("api_addr", json!(self.api_addr.clone().unwrap_or_default()));
        put(
            "cluster_addr",
            json!(self.cluster_addr.clone().unwrap_or_default()),
        );
        put("disable_clustering", json!(self.disable_clustering));
        put("disable_performance_standby", json!(false));
        put("disable_sealwrap", json!(false));
        put("disable_indexing", json!(false));
        put("enable_response_header_hostname", json!(false));
        put("enable_response_header_raft_node_id", json!(false));
        put("log_requests_level", json!(""));
        put("detect_deadlocks", json!(""));
        put("imprecise_lease_role_tracking", json!(false));
        put("unsafe_cross_namespace_identity", json!(false));
        put(
            "unsafe_allow_api_audit_creation",
            json!(self.unsafe_allow_api_audit_creation),
        );
        put(
            "allow_audit_log_prefixing",
            json!(self.allow_audit_log_prefixing),
        );
        put("disable_standby_reads", json!(false));
        put("allow_unauthenticated_workflows", json!(false));
        put("unsafe_relative_paths", json!(false));
        put("disable_ssct_tokens", json!(true));
        put(
            "storage",
            json!({
                "type": storage_type(&self.storage),
                "redirect_addr": self.api_addr.clone().unwrap_or_default(),
                "cluster_addr": self.cluster_addr.clone().unwrap_or_default(),
                "disable_clustering": self.disable_clustering,
            }),
        );
        if !self.listeners.is_empty() {
            put(
                "listeners",
                Value::Array(self.listeners.iter().map(listener).collect()),
            );
        }
        // The configured seal stanzas (type and `disabled` only, as OpenBao shows them: their
        // options may hold a token or a key); none means Shamir.
        let seals: Vec<Value> = if self.seals.is_empty() {
            vec![json!({"type": "shamir", "disabled": false})]
        } else {
            self.seals
                .iter()
                .map(|s| json!({"type": s.seal_type, "disabled": s.disabled}))
                .collect()
        };
        put("seals", Value::Array(seals));
        if !self.audit_devices.is_empty() {
            put(
                "audits",
                Value::Array(
                    self.audit_devices
                        .iter()
                        .map(|a| {
                            json!({
                                "path": a.path,
                                "type": a.device_type,
                                "description": a.description,
                            })
                        })
                        .collect(),
                ),
            );
        }
        if let Some(t) = &self.telemetry {
            put("telemetry", telemetry(t));
        }
        out
    }
}

fn storage_type(storage: &StorageConfig) -> &'static str {
    match storage {
        StorageConfig::Embedded { .. } => "embedded",
        StorageConfig::Inmem => "inmem",
        StorageConfig::Postgresql { .. } => "postgresql",
    }
}

/// OpenBao shows the listener block as written; Tresor shows the settings it parsed from it,
/// leaving out those at their default (so a plain block looks as it was written). TLS file paths
/// are not secret; key material never appears in the config.
fn listener(l: &ListenerConfig) -> Value {
    use crate::model::ListenerLimits as D;
    let mut config = Map::new();
    config.insert("address".into(), json!(l.address.to_string()));
    match &l.tls {
        None => {
            config.insert("tls_disable".into(), json!(true));
        }
        Some(files) => {
            config.insert(
                "tls_cert_file".into(),
                json!(files.cert_file.display().to_string()),
            );
            config.insert(
                "tls_key_file".into(),
                json!(files.key_file.display().to_string()),
            );
        }
    }
    if let Some(size) = l.max_request_size {
        config.insert("max_request_size".into(), json!(size));
    }
    let limits = &l.limits;
    let mut duration = |key: &str, value: std::time::Duration, default: std::time::Duration| {
        if value != default {
            config.insert(key.into(), json!(format!("{}s", value.as_secs())));
        }
    };
    duration(
        "http_read_header_timeout",
        limits.read_header_timeout,
        D::DEFAULT_READ_HEADER_TIMEOUT,
    );
    duration(
        "http_read_timeout",
        limits.read_timeout,
        D::DEFAULT_READ_TIMEOUT,
    );
    duration(
        "http_idle_timeout",
        limits.idle_timeout,
        D::DEFAULT_IDLE_TIMEOUT,
    );
    duration(
        "max_request_duration",
        limits.max_request_duration,
        D::DEFAULT_MAX_REQUEST_DURATION,
    );
    if let Some(w) = limits.write_timeout {
        config.insert(
            "http_write_timeout".into(),
            json!(format!("{}s", w.as_secs())),
        );
    }
    if let Some(n) = limits.max_connections {
        config.insert("max_connections".into(), json!(n));
    }
    if !l.disable_unauthed_rekey_endpoints {
        config.insert("disable_unauthed_rekey_endpoints".into(), json!(false));
    }
    if !l.disable_unauthed_generate_root_endpoints {
        config.insert(
            "disable_unauthed_generate_root_endpoints".into(),
            json!(false),
        );
    }
    if l.telemetry.unauthenticated_metrics_access {
        config.insert(
            "telemetry".into(),
            json!([{"unauthenticated_metrics_access": true}]),
        );
    }
    if l.telemetry.unauthenticated_in_flight_requests_access {
        config.insert(
            "inflight_requests_logging".into(),
            json!([{"unauthenticated_in_flight_requests_access": true}]),
        );
    }
    json!({"type": "tcp", "config": config})
}

/// Every key of OpenBao's sanitized telemetry block; the sinks Tresor lacks are empty.
fn telemetry(t: &crate::model::TelemetryConfig) -> Value {
    json!({
        "statsite_address": "",
        "statsd_address": "",
        "disable_hostname": t.disable_hostname,
        "metrics_prefix": "",
        "usage_gauge_period": 600_000_000_000u64,
        "maximum_gauge_cardinality": 500,
        "circonus_api_token": "",
        "circonus_api_app": "",
        "circonus_api_url": "",
        "circonus_submission_interval": "",
        "circonus_submission_url": "",
        "circonus_check_id": "",
        "circonus_check_force_metric_activation": "",
        "circonus_check_instance_id": "",
        "circonus_check_search_tag": "",
        "circonus_check_tags": "",
        "circonus_check_display_name": "",
        "circonus_broker_id": "",
        "circonus_broker_select_tag": "",
        "dogstatsd_addr": "",
        "dogstatsd_tags": null,
        "prometheus_retention_time": nanos(t.prometheus_retention_time),
        "stackdriver_project_id": "",
        "stackdriver_location": "",
        "stackdriver_namespace": "",
        "stackdriver_debug_logs": false,
        "lease_metrics_epsilon": 3_600_000_000_000u64,
        "num_lease_metrics_buckets": 168,
        "add_lease_metrics_namespace_labels": false,
    })
}

#[cfg(test)]
mod tests {
    use crate::parse;

    #[test]
    fn the_sanitized_config_hides_the_storage_settings_and_audit_options() {
        let config = parse(
            r#"
storage "postgresql" { connection_url = "postgres://u:hunter2@db/x" }
listener "tcp" {
  address = "127.0.0.1:8200"
  tls_disable = true
  telemetry { unauthenticated_metrics_access = true }
}
audit "file" "main" {
  options { file_path = "/secret/place.log" }
}
telemetry { prometheus_retention_time = "1h" }
log_format = "json"
seal "transit" {
  address = "https://kms.example:8200"
  token = "s.transit-token"
  key_name = "unseal"
}
"#,
        )
        .unwrap();
        let s = serde_json::Value::Object(config.sanitized());
        let text = s.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("/secret/place.log"), "{text}");
        assert!(!text.contains("s.transit-token"), "{text}");
        assert_eq!(
            s["seals"],
            serde_json::json!([{"type": "transit", "disabled": false}])
        );
        assert_eq!(s["storage"]["type"], "postgresql");
        assert_eq!(s["log_format"], "json");
        assert_eq!(
            s["telemetry"]["prometheus_retention_time"],
            3_600_000_000_000u64
        );
        assert_eq!(s["listeners"][0]["config"]["address"], "127.0.0.1:8200");
        assert_eq!(
            s["listeners"][0]["config"]["telemetry"][0]["unauthenticated_metrics_access"],
            true
        );
        assert_eq!(
            s["audits"][0]["path"].as_str().map(|p| p.trim_matches('/')),
            Some("main")
        );
    }
}
