#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tresor_config::{
    ConfigError, DEFAULT_LISTEN_ADDRESS, ListenerConfig, ListenerLimits, ListenerTelemetry,
    LogFormat, Problem, ServerConfig, StorageConfig, TelemetryConfig, TlsFiles, load, parse,
};

const FULL_EXAMPLE: &str = r#"storage "embedded" { path = "/var/lib/tresor/data.redb" }   # default store
# storage "inmem" {}
listener "tcp" {
  address       = "127.0.0.1:8200"
  tls_disable   = true          # bool, or "true"/"false"/1/0 strings as Vault accepts
  tls_cert_file = "/etc/tresor/tls.crt"
  tls_key_file  = "/etc/tresor/tls.key"
}
api_addr      = "https://tresor-0:8200"
cluster_name  = "prod"
disable_mlock = true
ui            = false
log_level     = "info"
default_lease_ttl = "768h"
max_lease_ttl     = "768h"
max_request_size  = 33554432   # listener attribute in Vault; accept it inside listener "tcp" too
"#;

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// The line and problem of a config that must fail.
fn fail(source: &str) -> (usize, Problem) {
    match parse(source) {
        Err(ConfigError::Invalid {
            file: None,
            line,
            problem,
        }) => (line, problem),
        other => panic!("expected a config mistake, got {other:?}"),
    }
}

fn message(source: &str) -> String {
    parse(source).unwrap_err().to_string()
}

const INMEM: &str = "storage \"inmem\" {}\n";

// ---------------------------------------------------------------- accepted configs

#[test]
fn full_example_parses() {
    let config = parse(FULL_EXAMPLE).unwrap();
    let hours_768 = Duration::from_secs(768 * 3600);
    assert_eq!(
        config,
        ServerConfig {
            storage: StorageConfig::Embedded {
                path: PathBuf::from("/var/lib/tresor/data.redb"),
                cache_size: StorageConfig::DEFAULT_CACHE_SIZE,
            },
            listeners: vec![ListenerConfig {
                address: addr("127.0.0.1:8200"),
                cluster_address: None,
                tls: None,
                max_request_size: Some(33_554_432),
                limits: Default::default(),
                disable_unauthed_rekey_endpoints: true,
                disable_unauthed_generate_root_endpoints: true,
                telemetry: Default::default(),
            }],
            api_addr: Some("https://tresor-0:8200".to_owned()),
            cluster_addr: None,
            disable_clustering: false,
            ha_forwarding_tls_ca_cert: None,
            cluster_name: Some("prod".to_owned()),
            disable_mlock: true,
            ui: false,
            log_level: Some("info".to_owned()),
            default_lease_ttl: Some(hours_768),
            max_lease_ttl: Some(hours_768),
            lease_revocation_paused: false,
            audit_devices: Vec::new(),
            unsafe_allow_api_audit_creation: false,
            allow_audit_log_prefixing: false,
            log_format: None,
            telemetry: None,
            seals: Vec::new(),
        }
    );
}

#[test]
fn every_documented_key() {
    let config = parse(
        r#"
storage "postgresql" {
  connection_url       = "postgres://tresor:hunter2@db:5432/tresor"
  table                = "tresor_kv"
  ha_enabled           = "true"
  ha_table             = "tresor_locks"
  max_parallel         = "64"
  max_idle_connections = 8
}
listener "tcp" {
  address          = "0.0.0.0:8443"
  tls_disable      = "false"
  tls_cert_file    = "/etc/tresor/tls.crt"
  tls_key_file     = "/etc/tresor/tls.key"
  max_request_size = 1048576
}
listener "tcp" {
  address     = "[::1]:8200"
  tls_disable = 1
}
api_addr          = "https://tresor-0:8200"
cluster_name      = "prod"
disable_mlock     = "true"
ui                = true
log_level         = "WARNING"
default_lease_ttl = "1h30m"
max_lease_ttl     = 86400
"#,
    )
    .unwrap();
    assert_eq!(
        config,
        ServerConfig {
            storage: StorageConfig::Postgresql {
                connection_url: Some("postgres://tresor:hunter2@db:5432/tresor".to_owned()),
                table: Some("tresor_kv".to_owned()),
                max_parallel: Some(64),
                max_idle_connections: Some(8),
                ha_enabled: true,
                ha_table: Some("tresor_locks".to_owned()),
            },
            listeners: vec![
                ListenerConfig {
                    address: addr("0.0.0.0:8443"),
                    cluster_address: None,
                    tls: Some(TlsFiles {
                        cert_file: PathBuf::from("/etc/tresor/tls.crt"),
                        key_file: PathBuf::from("/etc/tresor/tls.key"),
                    }),
                    max_request_size: Some(1_048_576),
                    limits: Default::default(),
                    disable_unauthed_rekey_endpoints: true,
                    disable_unauthed_generate_root_endpoints: true,
                    telemetry: Default::default(),
                },
                ListenerConfig {
                    address: addr("[::1]:8200"),
                    cluster_address: None,
                    tls: None,
                    max_request_size: None,
                    limits: Default::default(),
                    disable_unauthed_rekey_endpoints: true,
                    disable_unauthed_generate_root_endpoints: true,
                    telemetry: Default::default(),
                },
            ],
            api_addr: Some("https://tresor-0:8200".to_owned()),
            cluster_addr: None,
            disable_clustering: false,
            ha_forwarding_tls_ca_cert: None,
            cluster_name: Some("prod".to_owned()),
            disable_mlock: true,
            ui: true,
            log_level: Some("warn".to_owned()),
            default_lease_ttl: Some(Duration::from_secs(5400)),
            max_lease_ttl: Some(Duration::from_secs(86400)),
            lease_revocation_paused: false,
            audit_devices: Vec::new(),
            unsafe_allow_api_audit_creation: false,
            allow_audit_log_prefixing: false,
            log_format: None,
            telemetry: None,
            seals: Vec::new(),
        }
    );
}

#[test]
fn defaults() {
    let config = parse(INMEM).unwrap();
    assert_eq!(
        config,
        ServerConfig {
            storage: StorageConfig::Inmem,
            listeners: vec![],
            api_addr: None,
            cluster_addr: None,
            disable_clustering: false,
            ha_forwarding_tls_ca_cert: None,
            cluster_name: None,
            disable_mlock: false,
            ui: false,
            log_level: None,
            default_lease_ttl: None,
            max_lease_ttl: None,
            lease_revocation_paused: false,
            audit_devices: Vec::new(),
            unsafe_allow_api_audit_creation: false,
            allow_audit_log_prefixing: false,
            log_format: None,
            telemetry: None,
            seals: Vec::new(),
        }
    );

    let config = parse(&format!(
        "{INMEM}listener \"tcp\" {{ tls_disable = true }}\n"
    ))
    .unwrap();
    assert_eq!(
        config.listeners,
        vec![ListenerConfig {
            address: DEFAULT_LISTEN_ADDRESS,
            cluster_address: None,
            tls: None,
            max_request_size: None,
            limits: Default::default(),
            disable_unauthed_rekey_endpoints: true,
            disable_unauthed_generate_root_endpoints: true,
            telemetry: Default::default(),
        }]
    );
    assert_eq!(DEFAULT_LISTEN_ADDRESS, addr("127.0.0.1:8200"));
}

#[test]
fn tls_is_on_unless_disabled() {
    let config = parse(&format!(
        "{INMEM}listener \"tcp\" {{\n  tls_cert_file = \"c.pem\"\n  tls_key_file = \"k.pem\"\n}}\n"
    ))
    .unwrap();
    assert_eq!(
        config.listeners[0].tls,
        Some(TlsFiles {
            cert_file: PathBuf::from("c.pem"),
            key_file: PathBuf::from("k.pem"),
        })
    );
}

#[test]
fn boolean_spellings_vault_accepts() {
    let cases = [
        ("true", true),
        ("false", false),
        ("\"true\"", true),
        ("\"false\"", false),
        ("\"1\"", true),
        ("\"0\"", false),
        ("1", true),
        ("0", false),
        ("\"TRUE\"", true),
        ("\"f\"", false),
    ];
    for (text, expected) in cases {
        let config = parse(&format!("{INMEM}disable_mlock = {text}\n")).unwrap();
        assert_eq!(config.disable_mlock, expected, "disable_mlock = {text}");
    }
}

#[test]
fn durations_in_config() {
    let cases = [
        ("\"768h\"", Duration::from_secs(768 * 3600)),
        ("\"30m\"", Duration::from_secs(1800)),
        ("\"45s\"", Duration::from_secs(45)),
        ("\"1h30m\"", Duration::from_secs(5400)),
        ("\"3600\"", Duration::from_secs(3600)),
        ("3600", Duration::from_secs(3600)),
    ];
    for (text, expected) in cases {
        let config = parse(&format!("{INMEM}max_lease_ttl = {text}\n")).unwrap();
        assert_eq!(
            config.max_lease_ttl,
            Some(expected),
            "max_lease_ttl = {text}"
        );
    }
}

#[test]
fn log_levels_are_normalised() {
    for (text, expected) in [
        ("trace", "trace"),
        ("Debug", "debug"),
        ("notice", "info"),
        ("warn", "warn"),
        ("err", "error"),
        ("ERROR", "error"),
    ] {
        let config = parse(&format!("{INMEM}log_level = \"{text}\"\n")).unwrap();
        assert_eq!(config.log_level.as_deref(), Some(expected), "{text}");
    }
}

#[test]
fn backend_is_accepted_as_the_old_name_for_storage() {
    let config = parse("backend \"inmem\" {}\n").unwrap();
    assert_eq!(config.storage, StorageConfig::Inmem);
}

#[test]
fn max_request_size_per_listener_wins_over_top_level() {
    let config = parse(&format!(
        "{INMEM}max_request_size = 100
listener \"tcp\" {{
  tls_disable = true
  max_request_size = \"200\"
}}
listener \"tcp\" {{
  address = \"127.0.0.1:8201\"
  tls_disable = true
}}
listener \"tcp\" {{
  address = \"127.0.0.1:8202\"
  tls_disable = true
  max_request_size = 0
}}
"
    ))
    .unwrap();
    let sizes: Vec<_> = config
        .listeners
        .iter()
        .map(|l| l.max_request_size)
        .collect();
    assert_eq!(sizes, [Some(200), Some(100), Some(100)]);
}

#[test]
fn debug_output_redacts_the_connection_url() {
    let config =
        parse("storage \"postgresql\" { connection_url = \"postgres://u:hunter2@db/t\" }\n")
            .unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");
}

#[test]
fn load_reads_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.hcl");
    std::fs::write(&path, FULL_EXAMPLE).unwrap();
    assert_eq!(load(&path).unwrap(), parse(FULL_EXAMPLE).unwrap());
}

// ---------------------------------------------------------------- errors

#[test]
fn load_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.hcl");
    std::fs::write(
        &path,
        "storage \"inmem\" {}\nlistener \"tcp\" {\n  adress = \"127.0.0.1:8200\"\n}\n",
    )
    .unwrap();
    let err = load(&path).unwrap_err();
    assert_eq!(err.line(), Some(3));
    assert_eq!(
        err.to_string(),
        format!(
            "{}:3: unknown key \"adress\" in listener \"tcp\" (did you mean \"address\"?)",
            path.display()
        )
    );
}

#[test]
fn load_missing_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.hcl");
    let err = load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("nope.hcl"), "{err}");
}

#[test]
fn parse_errors_say_line() {
    assert_eq!(
        message("storage \"inmem\" {}\nui = maybe\n"),
        "line 2: ui must be a boolean (true or false), found an unquoted word"
    );
}

#[test]
fn unknown_top_level_key() {
    let (line, problem) = fail("storage \"inmem\" {}\n\nui = true\ndisable_mlok = true\n");
    assert_eq!(line, 4);
    assert_eq!(
        problem,
        Problem::UnknownKey {
            key: "disable_mlok".to_owned(),
            place: "at the top level".to_owned(),
            suggestion: Some("disable_mlock".to_owned()),
        }
    );
}

#[test]
fn unknown_key_without_a_close_match_has_no_suggestion() {
    let (line, problem) = fail("storage \"inmem\" {}\nfrobnicate = 1\n");
    assert_eq!(line, 2);
    assert!(
        matches!(problem, Problem::UnknownKey { ref suggestion, .. } if suggestion.is_none()),
        "{problem:?}"
    );
}

#[test]
fn unknown_key_in_storage() {
    let (line, problem) = fail("storage \"embedded\" {\n  path = \"/x\"\n  pth = \"/y\"\n}\n");
    assert_eq!(line, 3);
    assert_eq!(
        problem,
        Problem::UnknownKey {
            key: "pth".to_owned(),
            place: "in storage \"embedded\"".to_owned(),
            suggestion: Some("path".to_owned()),
        }
    );
    let (line, _) = fail("storage \"inmem\" {\n  path = \"/x\"\n}\n");
    assert_eq!(line, 2);
}

#[test]
fn unknown_blocks() {
    let (line, problem) = fail("\nstorge \"inmem\" {}\n");
    assert_eq!(line, 2);
    assert_eq!(
        problem,
        Problem::UnknownBlock {
            name: "storge".to_owned(),
            place: "at the top level".to_owned(),
            suggestion: Some("storage".to_owned()),
        }
    );
    let (line, problem) = fail(&format!(
        "{INMEM}listener \"tcp\" {{\n  tls_disable = true\n  extra {{}}\n}}\n"
    ));
    assert_eq!(line, 4);
    assert!(matches!(problem, Problem::UnknownBlock { ref name, .. } if name == "extra"));
}

#[test]
fn vault_settings_tresor_lacks_are_called_out() {
    let (line, problem) = fail(&format!("{INMEM}hsm \"pkcs11\" {{}}\n"));
    assert_eq!(line, 2);
    assert_eq!(
        problem,
        Problem::Unsupported {
            name: "hsm".to_owned(),
            place: "at the top level".to_owned(),
        }
    );
    let (line, problem) = fail(&format!(
        "{INMEM}listener \"tcp\" {{\n  tls_disable = true\n  tls_min_version = \"tls12\"\n}}\n"
    ));
    assert_eq!(line, 4);
    assert!(matches!(problem, Problem::Unsupported { ref name, .. } if name == "tls_min_version"));
}

#[test]
fn settings_and_blocks_in_the_wrong_form() {
    let (line, problem) = fail("storage = \"inmem\"\n");
    assert_eq!(line, 1);
    assert!(matches!(problem, Problem::ExpectedBlock { ref name, .. } if name == "storage"));
    let (line, problem) = fail(&format!("{INMEM}ui {{}}\n"));
    assert_eq!(line, 2);
    assert_eq!(
        problem,
        Problem::ExpectedAttribute {
            name: "ui".to_owned()
        }
    );
}

#[test]
fn wrong_types() {
    let (line, problem) = fail(&format!(
        "{INMEM}listener \"tcp\" {{\n  tls_disable = [1]\n}}\n"
    ));
    assert_eq!(line, 3);
    assert_eq!(
        problem,
        Problem::WrongType {
            key: "tls_disable".to_owned(),
            expected: "a boolean (true or false)",
            found: "a list",
        }
    );
    let (line, problem) = fail(&format!("{INMEM}\n\napi_addr = 8200\n"));
    assert_eq!(line, 4);
    assert!(matches!(
        problem,
        Problem::WrongType {
            found: "a number",
            ..
        }
    ));
    let (line, problem) = fail("storage \"embedded\" { path = { a = 1 } }\n");
    assert_eq!(line, 1);
    assert!(matches!(
        problem,
        Problem::WrongType {
            found: "an object",
            ..
        }
    ));
    let (line, problem) = fail(&format!("{INMEM}cluster_name = \"${{x}}\"\n"));
    assert_eq!(line, 2);
    assert!(matches!(problem, Problem::WrongType { .. }), "{problem:?}");
}

#[test]
fn invalid_values() {
    let cases: &[(&str, usize, &str)] = &[
        ("disable_mlock = \"yes\"", 2, "disable_mlock"),
        ("ui = 2", 2, "ui"),
        ("log_level = \"loud\"", 2, "log_level"),
        ("default_lease_ttl = \"10x\"", 2, "default_lease_ttl"),
        ("max_lease_ttl = -5", 2, "max_lease_ttl"),
        ("max_request_size = -1", 2, "max_request_size"),
        ("max_request_size = 1.5", 2, "max_request_size"),
        ("max_request_size = \"lots\"", 2, "max_request_size"),
    ];
    for (line_text, expected_line, expected_key) in cases {
        let (line, problem) = fail(&format!("{INMEM}{line_text}\n"));
        assert_eq!(line, *expected_line, "{line_text}");
        assert!(
            matches!(problem, Problem::InvalidValue { ref key, .. } if key == expected_key),
            "{line_text}: {problem:?}"
        );
    }
}

#[test]
fn invalid_listener_address() {
    let (line, problem) = fail(&format!(
        "{INMEM}listener \"tcp\" {{\n  tls_disable = true\n  address = \"localhost:8200\"\n}}\n"
    ));
    assert_eq!(line, 4);
    assert!(matches!(problem, Problem::InvalidValue { ref key, .. } if key == "address"));
}

#[test]
fn empty_paths_are_refused() {
    let (line, problem) = fail("storage \"embedded\" {\n  path = \"\"\n}\n");
    assert_eq!(line, 2);
    assert!(matches!(problem, Problem::InvalidValue { ref key, .. } if key == "path"));
}

#[test]
fn duplicate_storage_blocks() {
    let (line, problem) =
        fail("storage \"inmem\" {}\nui = true\nstorage \"embedded\" {\n path = \"/x\"\n}\n");
    assert_eq!(line, 3);
    assert_eq!(problem, Problem::DuplicateStorage { first_line: 1 });
    let (line, _) = fail("storage \"inmem\" {}\nbackend \"inmem\" {}\n");
    assert_eq!(line, 2);
}

#[test]
fn duplicate_keys() {
    let (line, problem) = fail("storage \"inmem\" {}\nui = true\nui = false\n");
    assert_eq!(line, 3);
    assert!(matches!(problem, Problem::Syntax { .. }), "{problem:?}");
}

#[test]
fn duplicate_listener_addresses() {
    let (line, problem) = fail(&format!(
        "{INMEM}listener \"tcp\" {{ tls_disable = true }}\nlistener \"tcp\" {{ tls_disable = true }}\n"
    ));
    assert_eq!(line, 3);
    assert_eq!(
        problem,
        Problem::DuplicateListener {
            address: "127.0.0.1:8200".to_owned(),
            first_line: 2,
        }
    );
}

#[test]
fn unsupported_storage_types_point_at_embedded() {
    for kind in ["raft", "file"] {
        let (line, problem) = fail(&format!(
            "ui = true\nstorage \"{kind}\" {{\n  path = \"/x\"\n}}\n"
        ));
        assert_eq!(line, 2);
        assert_eq!(
            problem,
            Problem::UnsupportedStorage {
                kind: kind.to_owned()
            }
        );
        assert!(
            problem.to_string().contains("storage \"embedded\""),
            "{problem}"
        );
    }
}

#[test]
fn unknown_storage_types() {
    let (line, problem) = fail("\n\nstorage \"consul\" {}\n");
    assert_eq!(line, 3);
    assert_eq!(
        problem,
        Problem::UnknownStorage {
            kind: "consul".to_owned(),
            suggestion: None,
        }
    );
    let (_, problem) = fail("storage \"postgres\" {}\n");
    assert!(
        matches!(problem, Problem::UnknownStorage { ref suggestion, .. } if suggestion.as_deref() == Some("postgresql"))
    );
}

#[test]
fn block_labels_are_checked() {
    let (line, problem) = fail("\nstorage {}\n");
    assert_eq!(line, 2);
    assert_eq!(
        problem,
        Problem::Labels {
            name: "storage".to_owned(),
            found: 0,
        }
    );
    let (line, problem) = fail(&format!("{INMEM}listener \"tcp\" \"extra\" {{}}\n"));
    assert_eq!(line, 2);
    assert!(matches!(problem, Problem::Labels { found: 2, .. }));
}

#[test]
fn listener_type_must_be_tcp() {
    let (line, problem) = fail(&format!("{INMEM}\nlistener \"unix\" {{\n}}\n"));
    assert_eq!(line, 3);
    assert_eq!(
        problem,
        Problem::UnknownListener {
            kind: "unix".to_owned()
        }
    );
}

#[test]
fn missing_storage_block() {
    let (line, problem) = fail("ui = true\nlistener \"tcp\" { tls_disable = true }\n");
    assert_eq!(line, 1);
    assert_eq!(problem, Problem::MissingStorage);
    let (line, problem) = fail("");
    assert_eq!(line, 1);
    assert_eq!(problem, Problem::MissingStorage);
}

#[test]
fn required_storage_keys() {
    let (line, problem) = fail("ui = true\nstorage \"embedded\" {\n}\n");
    assert_eq!(line, 2);
    assert_eq!(
        problem,
        Problem::MissingKey {
            key: "path".to_owned(),
            place: "in storage \"embedded\"".to_owned(),
        }
    );
}

#[test]
fn postgresql_settings_left_out_stay_unset() {
    // Without connection_url the server reads TRESOR_PG_CONNECTION_URL at start.
    let config = parse("storage \"postgresql\" {\n  table = \"t\"\n}\n").unwrap();
    assert_eq!(
        config.storage,
        StorageConfig::Postgresql {
            connection_url: None,
            table: Some("t".to_owned()),
            max_parallel: None,
            max_idle_connections: None,
            ha_enabled: false,
            ha_table: None,
        }
    );
}

#[test]
fn disable_clustering_in_the_postgresql_block_unless_the_top_level_sets_it() {
    // OpenBao reads disable_clustering in the storage block too; a top-level one, when
    // present, overrides it either way.
    let block = |setting: &str| {
        format!("storage \"postgresql\" {{\n  ha_enabled = \"true\"\n  {setting}\n}}\n")
    };
    for (source, expected) in [
        (block("disable_clustering = \"true\""), true),
        (block("disable_clustering = true"), true),
        (block("disable_clustering = \"false\""), false),
        (block(""), false),
        (
            format!(
                "{}disable_clustering = false\n",
                block("disable_clustering = \"true\"")
            ),
            false,
        ),
        (
            format!(
                "disable_clustering = true\n{}",
                block("disable_clustering = \"false\"")
            ),
            true,
        ),
        (format!("{}disable_clustering = true\n", block("")), true),
    ] {
        let config = parse(&source).unwrap();
        assert_eq!(config.disable_clustering, expected, "{source}");
        assert_eq!(
            config.sanitized()["storage"]["disable_clustering"],
            expected
        );
    }
    let (line, problem) = fail(&block("disable_clustering = \"sometimes\""));
    assert_eq!(line, 3);
    assert!(
        matches!(problem, Problem::InvalidValue { ref key, .. } if key == "disable_clustering"),
        "{problem:?}"
    );
    // A store without HA has no use for it: still an unknown key there.
    let (_, problem) =
        fail("storage \"embedded\" {\n  path = \"/x\"\n  disable_clustering = true\n}\n");
    assert!(
        matches!(problem, Problem::UnknownKey { ref key, .. } if key == "disable_clustering"),
        "{problem:?}"
    );
}

#[test]
fn postgresql_mistakes_name_their_line() {
    let (line, problem) = fail(
        "storage \"postgresql\" {\n  connection_url = \"postgres://db/x\"\n  max_paralel = 4\n}\n",
    );
    assert_eq!(line, 3);
    assert_eq!(
        problem,
        Problem::UnknownKey {
            key: "max_paralel".to_owned(),
            place: "in storage \"postgresql\"".to_owned(),
            suggestion: Some("max_parallel".to_owned()),
        }
    );
    for (text, key) in [
        ("max_parallel = 0", "max_parallel"),
        ("max_parallel = \"lots\"", "max_parallel"),
        ("max_idle_connections = -1", "max_idle_connections"),
        ("ha_enabled = \"maybe\"", "ha_enabled"),
        ("table = \"  \"", "table"),
        ("connection_url = \"\"", "connection_url"),
    ] {
        let (line, problem) = fail(&format!("\nstorage \"postgresql\" {{\n  {text}\n}}\n"));
        assert_eq!(line, 3, "{text}");
        assert!(
            matches!(problem, Problem::InvalidValue { key: ref k, .. } if k == key),
            "{text}: {problem:?}"
        );
    }
}

#[test]
fn tls_listener_without_files() {
    let (line, problem) = fail(&format!(
        "{INMEM}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:8200\"\n  tls_key_file = \"k.pem\"\n}}\n"
    ));
    assert_eq!(line, 3);
    assert_eq!(
        problem,
        Problem::TlsFilesMissing {
            missing: "tls_cert_file"
        }
    );
    let (line, problem) = fail(&format!(
        "{INMEM}listener \"tcp\" {{\n  tls_cert_file = \"c.pem\"\n  tls_disable = \"false\"\n}}\n"
    ));
    assert_eq!(line, 2);
    assert_eq!(
        problem,
        Problem::TlsFilesMissing {
            missing: "tls_key_file"
        }
    );
}

#[test]
fn lease_ttls_must_be_ordered() {
    let (line, problem) = fail(&format!(
        "{INMEM}max_lease_ttl = \"1h\"\ndefault_lease_ttl = \"2h\"\n"
    ));
    assert_eq!(line, 3);
    assert!(matches!(problem, Problem::InvalidValue { ref key, .. } if key == "default_lease_ttl"));
}

#[test]
fn hcl_syntax_errors_report_the_line() {
    let (line, problem) = fail("storage \"inmem\" {}\nlistener \"tcp\" {\n  address = \n}\n");
    assert_eq!(line, 3);
    assert!(matches!(problem, Problem::Syntax { .. }), "{problem:?}");
    let (line, _) = fail("storage \"inmem\" {}\n\nui = true true\n");
    assert_eq!(line, 3);
    let (line, _) = fail("storage \"inmem\" {\n");
    assert_eq!(line, 1);
}

#[test]
fn negative_numbers_say_so() {
    for text in [
        "max_request_size = -1",
        "max_lease_ttl = -5",
        "max_request_size = \"-3\"",
    ] {
        let err = message(&format!("{INMEM}{text}\n"));
        assert!(err.ends_with("must not be negative"), "{text}: {err}");
    }
}

#[test]
fn lease_revocation_paused_is_a_top_level_boolean() {
    let base = "storage \"inmem\" {}\n";
    let off = tresor_config::parse(base).unwrap();
    assert!(!off.lease_revocation_paused);
    for on in ["true", "\"true\""] {
        let config =
            tresor_config::parse(&format!("{base}lease_revocation_paused = {on}\n")).unwrap();
        assert!(config.lease_revocation_paused, "{on}");
    }
    let err = tresor_config::parse(&format!("{base}lease_revocation_paused = \"maybe\"\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 2") || err.contains(":2"), "{err}");
}

#[test]
fn listener_limits_default_to_openbao_and_read_vault_keys() {
    let config = parse(&format!(
        "{INMEM}listener \"tcp\" {{ tls_disable = true }}\n"
    ))
    .unwrap();
    let limits = config.listeners[0].limits;
    assert_eq!(limits.read_header_timeout, Duration::from_secs(10));
    assert_eq!(limits.read_timeout, Duration::from_secs(30));
    assert_eq!(limits.write_timeout, None);
    assert_eq!(limits.idle_timeout, Duration::from_secs(300));
    assert_eq!(limits.max_request_duration, Duration::from_secs(90));
    assert_eq!(limits.max_connections, None);

    let config = parse(&format!(
        "{INMEM}listener \"tcp\" {{\n  tls_disable = true\n  http_read_header_timeout = \"2s\"\n  http_read_timeout = 3\n  http_write_timeout = \"4s\"\n  http_idle_timeout = \"1m\"\n  max_request_duration = \"500ms\"\n  max_connections = 64\n}}\n"
    ))
    .unwrap();
    assert_eq!(
        config.listeners[0].limits,
        ListenerLimits {
            read_header_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_secs(3),
            write_timeout: Some(Duration::from_secs(4)),
            idle_timeout: Duration::from_secs(60),
            max_request_duration: Duration::from_millis(500),
            max_connections: Some(64),
        }
    );

    // As in OpenBao, 0 keeps the default (and leaves the write timeout off).
    let config = parse(&format!(
        "{INMEM}listener \"tcp\" {{\n  tls_disable = true\n  http_read_header_timeout = 0\n  http_write_timeout = \"0s\"\n  max_connections = 0\n}}\n"
    ))
    .unwrap();
    assert_eq!(config.listeners[0].limits, ListenerLimits::default());

    let (line, problem) = fail(&format!(
        "{INMEM}listener \"tcp\" {{\n  tls_disable = true\n  http_idle_timeout = \"-5s\"\n}}\n"
    ));
    assert_eq!(line, 4);
    assert!(matches!(problem, Problem::InvalidValue { ref key, .. } if key == "http_idle_timeout"));
    let (line, problem) = fail(&format!(
        "{INMEM}listener \"tcp\" {{\n  tls_disable = true\n  max_connections = \"many\"\n}}\n"
    ));
    assert_eq!(line, 4);
    assert!(matches!(problem, Problem::InvalidValue { ref key, .. } if key == "max_connections"));
    let (line, problem) = fail(&format!(
        "{INMEM}listener \"tcp\" {{\n  tls_disable = true\n  http_read_timeout_s = 5\n}}\n"
    ));
    assert_eq!(line, 4);
    assert!(matches!(problem, Problem::UnknownKey { ref key, .. } if key == "http_read_timeout_s"));
}

#[test]
fn unauthenticated_rekey_endpoints_are_off_unless_a_listener_enables_them() {
    let config = parse(&format!(
        "{INMEM}listener \"tcp\" {{\n  tls_disable = true\n}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:8201\"\n  tls_disable = true\n  disable_unauthed_rekey_endpoints = false\n}}\n"
    ))
    .unwrap();
    assert!(config.listeners[0].disable_unauthed_rekey_endpoints);
    assert!(!config.listeners[1].disable_unauthed_rekey_endpoints);
    let err = parse(&format!(
        "{INMEM}listener \"tcp\" {{\n  tls_disable = true\n  disable_unauthed_rekey_endpoints = \"maybe\"\n}}\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("line 4"), "{err}");
    assert!(err.contains("not a boolean"), "{err}");
}

#[test]
fn unauthenticated_generate_root_endpoints_are_off_unless_a_listener_enables_them() {
    let config = parse(&format!(
        "{INMEM}listener \"tcp\" {{\n  tls_disable = true\n}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:8201\"\n  tls_disable = true\n  disable_unauthed_generate_root_endpoints = \"false\"\n}}\n"
    ))
    .unwrap();
    assert!(config.listeners[0].disable_unauthed_generate_root_endpoints);
    assert!(!config.listeners[1].disable_unauthed_generate_root_endpoints);
    assert!(config.listeners[1].disable_unauthed_rekey_endpoints);
    let err = parse(&format!(
        "{INMEM}listener \"tcp\" {{\n  tls_disable = true\n  disable_unauthed_generate_root_endpoints = \"maybe\"\n}}\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("line 4"), "{err}");
    assert!(err.contains("not a boolean"), "{err}");
}

// ---------------------------------------------------------------- telemetry and logs

#[test]
fn telemetry_and_log_format_are_read() {
    let config = parse(&format!(
        "{INMEM}log_format = \"JSON\"\ntelemetry {{\n  prometheus_retention_time = \"1h\"\n  disable_hostname = true\n}}\nlistener \"tcp\" {{\n  tls_disable = true\n  telemetry {{\n    unauthenticated_metrics_access = true\n  }}\n  inflight_requests_logging {{\n    unauthenticated_in_flight_requests_access = \"true\"\n  }}\n}}\n"
    ))
    .unwrap();
    assert_eq!(config.log_format, Some(LogFormat::Json));
    assert_eq!(
        config.telemetry,
        Some(TelemetryConfig {
            prometheus_retention_time: Duration::from_secs(3600),
            disable_hostname: true,
        })
    );
    assert_eq!(
        config.listeners[0].telemetry,
        ListenerTelemetry {
            unauthenticated_metrics_access: true,
            unauthenticated_in_flight_requests_access: true,
        }
    );
    // An empty block turns Prometheus on with OpenBao's default retention.
    let config = parse(&format!("{INMEM}telemetry {{}}\n")).unwrap();
    assert_eq!(
        config.telemetry.map(|t| t.prometheus_retention_time),
        Some(Duration::from_secs(24 * 3600))
    );
    assert_eq!(parse(INMEM).unwrap().telemetry, None);
    let config = parse(&format!(
        "{INMEM}telemetry {{\n  prometheus_retention_time = 0\n}}\n"
    ))
    .unwrap();
    assert_eq!(
        config.telemetry.map(|t| t.prometheus_retention_time),
        Some(Duration::ZERO)
    );
}

#[test]
fn telemetry_mistakes_name_their_line() {
    let (line, problem) = fail(&format!("{INMEM}log_format = \"xml\"\n"));
    assert_eq!(line, 2);
    assert!(
        matches!(problem, Problem::InvalidValue { ref key, ref message } if key == "log_format" && message.contains("standard or json"))
    );
    // A sink Tresor does not have.
    let (line, problem) = fail(&format!(
        "{INMEM}telemetry {{\n  statsd_address = \"x:8125\"\n}}\n"
    ));
    assert_eq!(line, 3);
    assert!(matches!(problem, Problem::Unsupported { ref name, .. } if name == "statsd_address"));
    // Vault reads this one per listener: say so.
    let (line, problem) = fail(&format!(
        "{INMEM}telemetry {{\n  unauthenticated_metrics_access = true\n}}\n"
    ));
    assert_eq!(line, 3);
    assert!(
        matches!(problem, Problem::InvalidValue { ref message, .. } if message.contains("belongs in a listener"))
    );
    let (line, _) = fail(&format!("{INMEM}telemetry {{}}\ntelemetry {{}}\n"));
    assert_eq!(line, 3);
    let (line, problem) = fail(&format!(
        "{INMEM}listener \"tcp\" {{\n  tls_disable = true\n  telemetry {{\n    metrics_only = true\n  }}\n}}\n"
    ));
    assert_eq!(line, 5);
    assert!(matches!(problem, Problem::Unsupported { ref name, .. } if name == "metrics_only"));
    let (line, problem) = fail(&format!(
        "{INMEM}listener \"tcp\" {{\n  tls_disable = true\n  inflight_requests_logging {{\n    typo = true\n  }}\n}}\n"
    ));
    assert_eq!(line, 5);
    assert!(matches!(problem, Problem::UnknownKey { ref key, .. } if key == "typo"));
    let (line, problem) = fail(&format!(
        "{INMEM}telemetry {{\n  prometheus_retention_time = \"soon\"\n}}\n"
    ));
    assert_eq!(line, 3);
    assert!(
        matches!(problem, Problem::InvalidValue { ref key, .. } if key == "prometheus_retention_time")
    );
}

#[test]
fn seal_stanzas_are_read_with_their_options_and_secrets_stay_out_of_debug() {
    let config = tresor_config::parse(&format!(
        "{INMEM}seal \"transit\" {{\n  address = \"http://127.0.0.1:8200\"\n  token = \"s.secret\"\n  key_name = \"unseal\"\n  mount_path = \"transit/\"\n  tls_skip_verify = true\n}}\nseal \"static\" {{\n  current_key_id = \"k1\"\n  current_key = \"env://KEY\"\n  disabled = \"true\"\n}}\n"
    ))
    .unwrap();
    assert_eq!(config.seals.len(), 2);
    let transit = &config.seals[0];
    assert_eq!(transit.seal_type, "transit");
    assert!(!transit.disabled);
    assert_eq!(transit.options["key_name"], "unseal");
    assert_eq!(transit.options["tls_skip_verify"], "true");
    assert_eq!(transit.line, 2);
    assert!(config.seals[1].disabled);
    let debug = format!("{config:?}");
    assert!(!debug.contains("s.secret"), "{debug}");
    assert!(!debug.contains("env://KEY"), "{debug}");
}

#[test]
fn bad_seal_stanzas_name_their_line() {
    let (line, problem) = fail(&format!(
        "{INMEM}seal \"transit\" {{\n  adress = \"x\"\n}}\n"
    ));
    assert_eq!(line, 3);
    assert!(
        matches!(problem, Problem::UnknownKey { ref key, ref suggestion, .. }
        if key == "adress" && suggestion.as_deref() == Some("address"))
    );
    let (line, problem) = fail(&format!(
        "{INMEM}seal \"static\" {{\n  current_key_id = \"a\"\n}}\n"
    ));
    assert_eq!(line, 2);
    assert!(matches!(problem, Problem::MissingKey { ref key, .. } if key == "current_key"));
    let (_, problem) = fail(&format!("{INMEM}seal \"awskms\" {{}}\n"));
    assert!(problem.to_string().contains("not supported"), "{problem}");
    let (_, problem) = fail(&format!("{INMEM}seal \"trnsit\" {{}}\n"));
    assert!(
        problem.to_string().contains("did you mean \"transit\""),
        "{problem}"
    );
    let two = "seal \"static\" {\n  current_key_id = \"a\"\n  current_key = \"b\"\n}\n";
    let (line, problem) = fail(&format!("{INMEM}{two}{two}"));
    assert_eq!(line, 6);
    assert!(
        problem.to_string().contains("more than one active seal"),
        "{problem}"
    );
}

#[test]
fn ha_cluster_settings_use_vaults_names() {
    let config = parse(&format!(
        "{INMEM}cluster_addr = \"https://node-1.internal:8201/\"\ndisable_clustering = \"true\"\nha_forwarding_tls_ca_cert = \"/etc/tresor/ca.pem\"\nlistener \"tcp\" {{\n  tls_disable = true\n  cluster_address = \"0.0.0.0:8301\"\n}}\n"
    ))
    .unwrap();
    assert_eq!(
        config.cluster_addr.as_deref(),
        Some("https://node-1.internal:8201")
    );
    assert!(config.disable_clustering);
    assert_eq!(
        config.ha_forwarding_tls_ca_cert,
        Some(PathBuf::from("/etc/tresor/ca.pem"))
    );
    assert_eq!(
        config.listeners[0].cluster_address,
        Some(addr("0.0.0.0:8301"))
    );
    let sanitized = config.sanitized();
    assert_eq!(sanitized["cluster_addr"], "https://node-1.internal:8201");
    assert_eq!(sanitized["disable_clustering"], true);

    for bad in [
        "node-1:8201",
        "https://node-1",
        "ftp://node-1:8201",
        "https://n:8201/x",
    ] {
        let (line, problem) = fail(&format!("{INMEM}cluster_addr = \"{bad}\"\n"));
        assert_eq!(line, 2, "{bad}");
        assert!(
            matches!(problem, Problem::InvalidValue { ref key, .. } if key == "cluster_addr"),
            "{bad}: {problem:?}"
        );
    }
    let (line, problem) = fail(&format!(
        "{INMEM}listener \"tcp\" {{\n  tls_disable = true\n  cluster_address = \"node-1\"\n}}\n"
    ));
    assert_eq!(line, 4);
    assert!(matches!(problem, Problem::InvalidValue { ref key, .. } if key == "cluster_address"));
}
