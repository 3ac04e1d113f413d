//! Vault settings that Tresor recognises but does not implement.
//!
//! These get their own error instead of "unknown key": a Vault operator migrating a config
//! should learn that the setting is real but has no effect here, not hunt for a typo.

pub(crate) const TOP_LEVEL_KEYS: &[&str] = &[
    "cache_size",
    "disable_cache",
    "disable_performance_standby",
    "disable_printable_check",
    "disable_sealwrap",
    "enable_response_header_hostname",
    "enable_response_header_raft_node_id",
    "introspection_endpoint",
    "license_path",
    "log_file",
    "pid_file",
    "plugin_directory",
    "raw_storage_endpoint",
];

pub(crate) const TOP_LEVEL_BLOCKS: &[&str] = &[
    "entropy",
    "ha_storage",
    "hsm",
    "kms_library",
    "replication",
    "sentinel",
    "service_registration",
    "user_lockout",
];

pub(crate) const LISTENER_KEYS: &[&str] = &[
    "proxy_protocol_authorized_addrs",
    "proxy_protocol_behavior",
    "tls_cipher_suites",
    "tls_client_ca_file",
    "tls_disable_client_certs",
    "tls_max_version",
    "tls_min_version",
    "tls_require_and_verify_client_cert",
    "x_forwarded_for_authorized_addrs",
    "x_forwarded_for_hop_skips",
    "x_forwarded_for_reject_not_authorized",
    "x_forwarded_for_reject_not_present",
];

pub(crate) const LISTENER_BLOCKS: &[&str] = &["custom_response_headers", "profiling"];

/// OpenBao's `telemetry` keys for sinks and gauges Tresor does not have.
pub(crate) const TELEMETRY_KEYS: &[&str] = &[
    "add_lease_metrics_namespace_labels",
    "circonus_api_app",
    "circonus_api_token",
    "circonus_api_url",
    "circonus_broker_id",
    "circonus_broker_select_tag",
    "circonus_check_display_name",
    "circonus_check_force_metric_activation",
    "circonus_check_id",
    "circonus_check_instance_id",
    "circonus_check_search_tag",
    "circonus_check_tags",
    "circonus_submission_interval",
    "circonus_submission_url",
    "dogstatsd_addr",
    "dogstatsd_tags",
    "enable_hostname_label",
    "filter_default",
    "lease_metrics_epsilon",
    "maximum_gauge_cardinality",
    "metrics_prefix",
    "num_lease_metrics_buckets",
    "prefix_filter",
    "stackdriver_debug_logs",
    "stackdriver_location",
    "stackdriver_namespace",
    "stackdriver_project_id",
    "statsd_address",
    "statsite_address",
    "usage_gauge_period",
];

/// A listener's `telemetry` keys Tresor does not implement.
pub(crate) const LISTENER_TELEMETRY_KEYS: &[&str] =
    &["disallow_metrics", "metrics_only", "metrics_path"];
