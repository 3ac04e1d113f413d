//! Vault settings that Tresor recognises but does not implement.
//!
//! These get their own error instead of "unknown key": a Vault operator migrating a config
//! should learn that the setting is real but has no effect here, not hunt for a typo.

pub(crate) const TOP_LEVEL_KEYS: &[&str] = &[
    "cache_size",
    "cluster_addr",
    "disable_cache",
    "disable_clustering",
    "disable_performance_standby",
    "disable_printable_check",
    "disable_sealwrap",
    "enable_response_header_hostname",
    "enable_response_header_raft_node_id",
    "introspection_endpoint",
    "license_path",
    "log_file",
    "log_format",
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
    "telemetry",
    "user_lockout",
];

pub(crate) const LISTENER_KEYS: &[&str] = &[
    "cluster_address",
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

pub(crate) const LISTENER_BLOCKS: &[&str] = &[
    "custom_response_headers",
    "inflight_requests_logging",
    "profiling",
    "telemetry",
];
