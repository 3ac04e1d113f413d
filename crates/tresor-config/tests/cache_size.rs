//! `storage "embedded" { cache_size = … }`: Vault's byte sizes, a default, clear refusals.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use tresor_config::{ConfigError, Problem, StorageConfig, parse};

fn cache_size(value: &str) -> Result<u64, ConfigError> {
    let text =
        format!("storage \"embedded\" {{\n  path = \"/tmp/t.redb\"\n  cache_size = {value}\n}}\n");
    parse(&text).map(|config| match config.storage {
        StorageConfig::Embedded { cache_size, .. } => cache_size,
        other => panic!("{other:?}"),
    })
}

#[test]
fn the_default_is_256_mib() {
    let config = parse("storage \"embedded\" {\n  path = \"/tmp/t.redb\"\n}\n").unwrap();
    assert_eq!(config.storage, StorageConfig::embedded("/tmp/t.redb"));
    assert_eq!(StorageConfig::DEFAULT_CACHE_SIZE, 256 * 1024 * 1024);
}

#[test]
fn sizes_as_vault_writes_them() {
    let cases: &[(&str, u64)] = &[
        ("\"256MiB\"", 256 << 20),
        ("\"1GB\"", 1_000_000_000),
        ("\"1gib\"", 1 << 30),
        ("\"64 MiB\"", 64 << 20),
        ("\"1.5GiB\"", 3 << 29),
        ("\"2097152\"", 2 << 20),
        ("2097152", 2 << 20),
    ];
    for (value, want) in cases {
        assert_eq!(cache_size(value).unwrap(), *want, "{value}");
    }
}

/// The problem and line of a refused value; the message must say what to write instead.
fn refused(value: &str) -> String {
    let err = cache_size(value).unwrap_err();
    assert_eq!(err.line(), Some(3), "{err}");
    match &err {
        ConfigError::Invalid {
            problem: Problem::InvalidValue { key, .. } | Problem::WrongType { key, .. },
            ..
        } => assert_eq!(key, "cache_size"),
        other => panic!("{other:?}"),
    }
    err.to_string()
}

#[test]
fn bad_and_hostile_values_are_refused_clearly() {
    let cases: &[(&str, &str)] = &[
        ("\"\"", "it is empty"),
        ("\"lots\"", "unknown unit"),
        ("\"256 MB/s\"", "unknown unit"),
        ("\"1e9\"", "unknown unit"),
        ("\"-1GiB\"", "it is negative"),
        ("-5", "must not be negative"),
        ("\"99999999999999999999999\"", "it is too large"),
        ("\"20000PiB\"", "it is too large"),
        ("1.5", "not a whole number"),
        ("true", "a size such as \"256MiB\""),
        ("[1]", "a size such as \"256MiB\""),
        // Bytes meant as MiB: far too small to be a cache.
        ("256", "below the minimum of 1MiB"),
        ("\"0\"", "below the minimum of 1MiB"),
        ("\"1023KiB\"", "below the minimum of 1MiB"),
    ];
    for (value, reason) in cases {
        let message = refused(value);
        assert!(message.contains(reason), "{value}: {message}");
    }
}

#[test]
fn only_the_embedded_store_has_a_cache_size() {
    let err = parse("storage \"inmem\" {\n  cache_size = \"1GiB\"\n}\n").unwrap_err();
    assert!(err.to_string().contains("cache_size"), "{err}");
}

#[test]
fn debug_shows_the_cache_size() {
    let shown = format!("{:?}", StorageConfig::embedded("/x"));
    assert!(shown.contains("cache_size: 268435456"), "{shown}");
}
