//! A config file laid over dev mode's configuration (`-dev -config=FILE`), by OpenBao's merge
//! rules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::path::PathBuf;
use std::time::Duration;

use tresor_config::{
    ConfigError, Problem, ServerConfig, StorageConfig, TelemetryConfig, parse, parse_overlay,
};

/// Something like dev mode's own configuration: one plain listener, in memory.
fn dev() -> ServerConfig {
    let mut config = parse(
        "storage \"inmem\" {}\nlistener \"tcp\" {\n  address = \"127.0.0.1:8200\"\n  tls_disable = true\n}\n\
         unsafe_allow_api_audit_creation = true\ndisable_mlock = true\n\
         telemetry {\n  disable_hostname = true\n}\n",
    )
    .unwrap();
    config.cluster_name = Some("dev-cluster".to_owned());
    config
}

#[test]
fn a_file_without_storage_is_a_valid_overlay_but_not_a_valid_config() {
    let text = "listener \"tcp\" {\n  address = \"127.0.0.1:8300\"\n  tls_disable = true\n}\n";
    let overlay = parse_overlay(text).unwrap();
    assert_eq!(overlay.storage, None);
    assert_eq!(overlay.listeners().len(), 1);
    assert!(matches!(
        parse(text),
        Err(ConfigError::Invalid {
            problem: Problem::MissingStorage,
            ..
        })
    ));
    // An empty file is an overlay that changes nothing.
    let merged = dev().overlaid(parse_overlay("").unwrap());
    assert_eq!(merged, dev());
}

#[test]
fn the_file_adds_listeners_after_the_dev_listener_and_keeps_the_in_memory_store() {
    let overlay = parse_overlay(
        "listener \"tcp\" {\n  address = \"127.0.0.1:8300\"\n  tls_cert_file = \"c.pem\"\n  tls_key_file = \"k.pem\"\n}\n",
    )
    .unwrap();
    let merged = dev().overlaid(overlay);
    let addrs: Vec<String> = merged
        .listeners
        .iter()
        .map(|l| l.address.to_string())
        .collect();
    assert_eq!(addrs, ["127.0.0.1:8200", "127.0.0.1:8300"]);
    assert!(merged.listeners[0].tls.is_none());
    assert_eq!(
        merged.listeners[1]
            .tls
            .as_ref()
            .map(|t| t.cert_file.clone()),
        Some(PathBuf::from("c.pem"))
    );
    assert_eq!(merged.storage, StorageConfig::Inmem);
}

#[test]
fn the_files_storage_replaces_dev_modes() {
    let overlay = parse_overlay("storage \"embedded\" {\n  path = \"/tmp/x.redb\"\n}\n").unwrap();
    let merged = dev().overlaid(overlay);
    assert_eq!(merged.storage, StorageConfig::embedded("/tmp/x.redb"));
    assert_eq!(merged.listeners.len(), 1, "dev mode's listener stays");
}

#[test]
fn settings_merge_as_in_openbao() {
    let overlay = parse_overlay(
        "cluster_name = \"mine\"\nlog_level = \"warn\"\nui = true\n\
         default_lease_ttl = \"1h\"\nmax_lease_ttl = \"2h\"\n\
         telemetry {\n  prometheus_retention_time = \"1h\"\n}\n\
         audit \"file\" \"a/\" {\n  options {\n    file_path = \"/dev/null\"\n  }\n}\n",
    )
    .unwrap();
    let mut base = dev();
    base.max_lease_ttl = Some(Duration::from_secs(3 * 3600));
    let merged = base.overlaid(overlay);
    // Strings and blocks the file sets win.
    assert_eq!(merged.cluster_name.as_deref(), Some("mine"));
    assert_eq!(merged.log_level.as_deref(), Some("warn"));
    assert_eq!(
        merged.telemetry,
        Some(TelemetryConfig {
            prometheus_retention_time: Duration::from_secs(3600),
            disable_hostname: false,
        })
    );
    // Switches are on if either side turns them on.
    assert!(merged.ui && merged.unsafe_allow_api_audit_creation && merged.disable_mlock);
    // TTLs: the longer of the two.
    assert_eq!(merged.default_lease_ttl, Some(Duration::from_secs(3600)));
    assert_eq!(merged.max_lease_ttl, Some(Duration::from_secs(3 * 3600)));
    assert_eq!(merged.audit_devices.len(), 1);
}

#[test]
fn an_overlay_is_checked_like_any_config_file() {
    let err = parse_overlay("listener \"tcp\" {\n  adress = \"127.0.0.1:1\"\n}\n").unwrap_err();
    assert_eq!(err.line(), Some(2), "{err}");
    let err = parse_overlay("storage \"inmem\" {}\nstorage \"inmem\" {}\n").unwrap_err();
    assert!(err.to_string().contains("more than one storage"), "{err}");
}
