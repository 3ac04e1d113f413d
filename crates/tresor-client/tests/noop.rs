//! The noop provider: a warning naming the operation and the secret on every call (captured
//! with a tracing subscriber), nothing persisted (not even by the cache), names still checked;
//! and `SECRET_STORE_PROVIDER` selection.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use tresor_azure::Env;
use tresor_client::{
    CacheOptions, CachedStore, EnvOverrides, NoopStore, Provider, SecretStore, SecretString,
};

/// Log lines written by the subscriber, in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// A subscriber for this thread (the tests run on current-thread runtimes).
fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn noop_warns_on_every_call_naming_operation_and_secret_and_persists_nothing() {
    let (logs, _guard) = capture();
    let store = NoopStore::new();
    let value = SecretString::from("noop-value-never-logged");
    assert_eq!(
        store.set("instance-abc", &value).await.unwrap().as_str(),
        "0"
    );
    let err = store.get("instance-abc").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let rotation = store.rotate("instance-abc", &value).await.unwrap();
    assert_eq!(rotation.current.as_str(), "0");
    store.delete("instance-abc").await.unwrap();
    assert!(store.get("instance-abc").await.unwrap_err().is_not_found());

    let lines = logs.lines();
    let warnings: Vec<&String> = lines.iter().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warnings.len(), 5, "{lines:#?}");
    for (line, op) in warnings
        .iter()
        .zip(["set", "get", "rotate", "delete", "get"])
    {
        assert!(line.contains(&format!("operation=\"{op}\"")), "{line}");
        assert!(line.contains("name=\"instance-abc\""), "{line}");
        assert!(line.contains("not persisted"), "{line}");
    }
    assert!(!lines.iter().any(|l| l.contains("noop-value-never-logged")));
}

#[tokio::test]
async fn noop_checks_key_vault_names_so_production_does_not_surprise() {
    let (logs, _guard) = capture();
    let err = NoopStore::new()
        .set("instance_abc", &SecretString::from("v"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("1 to 127 ASCII letters"), "{err}");
    // Still warned: the call happened.
    assert_eq!(
        logs.lines().iter().filter(|l| l.contains(" WARN ")).count(),
        1
    );
}

#[tokio::test]
async fn a_cache_over_noop_caches_nothing_either() {
    let (logs, _guard) = capture();
    let cache = CachedStore::new(Arc::new(NoopStore::new()), CacheOptions::default());
    cache
        .set("instance-abc", &SecretString::from("v1"))
        .await
        .unwrap();
    assert!(cache.get("instance-abc").await.unwrap_err().is_not_found());
    cache
        .rotate("instance-abc", &SecretString::from("v2"))
        .await
        .unwrap();
    assert!(cache.get("instance-abc").await.unwrap_err().is_not_found());
    assert_eq!(cache.stats().hits, 0);
    assert_eq!(
        logs.lines().iter().filter(|l| l.contains(" WARN ")).count(),
        4
    );
}

#[tokio::test]
async fn secret_store_provider_selects_noop_when_unset_or_noop_and_refuses_unknown_values() {
    let (logs, _guard) = capture();
    for env in [
        Env::default(),
        Env::from_pairs([("SECRET_STORE_PROVIDER", "")]),
        Env::from_pairs([("SECRET_STORE_PROVIDER", "noop")]),
    ] {
        let store = tresor_client::from_env_with(&env, EnvOverrides::default())
            .await
            .unwrap();
        assert_eq!(store.provider(), Provider::Noop);
    }
    assert!(
        logs.lines()
            .iter()
            .any(|l| l.contains("secret store: noop (SECRET_STORE_PROVIDER is unset)")),
        "{:#?}",
        logs.lines()
    );
    let err = tresor_client::from_env_with(
        &Env::from_pairs([("SECRET_STORE_PROVIDER", "hashicorp")]),
        EnvOverrides::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown secret store provider \"hashicorp\": valid providers are tresor, azure-keyvault, noop"
    );
}

#[tokio::test]
async fn missing_provider_settings_are_named() {
    let cases: [(&[(&str, &str)], &str); 6] = [
        (
            &[("SECRET_STORE_PROVIDER", "tresor")],
            "VAULT_ADDR is not set",
        ),
        (
            &[
                ("SECRET_STORE_PROVIDER", "tresor"),
                ("VAULT_ADDR", "http://127.0.0.1:1"),
            ],
            "VAULT_TOKEN is not set",
        ),
        (
            &[
                ("SECRET_STORE_PROVIDER", "tresor"),
                ("VAULT_ADDR", "http://127.0.0.1:1"),
                ("TRESOR_AUTH_METHOD", "approle"),
            ],
            "unknown TRESOR_AUTH_METHOD \"approle\": valid methods are token, kubernetes, jwt",
        ),
        (
            &[
                ("SECRET_STORE_PROVIDER", "tresor"),
                ("VAULT_ADDR", "http://127.0.0.1:1"),
                ("TRESOR_AUTH_METHOD", "jwt"),
                ("TRESOR_AUTH_ROLE", "app"),
            ],
            "TRESOR_JWT or TRESOR_JWT_FILE must be set",
        ),
        (
            &[
                ("SECRET_STORE_PROVIDER", "tresor"),
                ("VAULT_ADDR", "http://127.0.0.1:1"),
                ("TRESOR_AUTH_METHOD", "kubernetes"),
            ],
            "TRESOR_AUTH_ROLE is not set",
        ),
        (
            &[("SECRET_STORE_PROVIDER", "azure-keyvault")],
            "AZURE_KEYVAULT_URL is not set",
        ),
    ];
    for (vars, expected) in cases {
        let err = tresor_client::from_env_with(
            &Env::from_pairs(vars.iter().copied()),
            EnvOverrides::default(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains(expected), "{vars:?}: {err}");
    }
}
