//! The azure-keyvault provider against the FAKE Azure Key Vault + Entra ID
//! (`test-support/fake-azure-keyvault`, held to the official Python clients by
//! `crates/tresor-azure/tests/keyvault.rs`). The fake's driver is `tresor-azure`'s own test
//! support module, included as is.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

#[path = "../../tresor-azure/tests/support/mod.rs"]
mod support;

use std::sync::Arc;

use support::*;
use tresor_azure::{ClientSecretCredential, Env};
use tresor_client::{
    AzureKeyVaultStore, CacheOptions, CachedStore, EnvOverrides, Provider, SecretStore,
    SecretStoreError, SecretString,
};

fn store_for(fake: &FakeAzure, client_id: &str, secret: &str) -> AzureKeyVaultStore {
    let credential = ClientSecretCredential::new(
        TENANT,
        client_id,
        SecretString::from(secret),
        &fake.credential_options(),
        &Env::default(),
    )
    .unwrap();
    AzureKeyVaultStore::builder(&fake.vault_url)
        .credential(Arc::new(credential))
        .options(fake.vault_options())
        .build()
        .unwrap()
}

fn kv_requests(all: &[serde_json::Value]) -> usize {
    all.iter().filter(|r| r["server"] == "keyvault").count()
}

#[tokio::test]
async fn set_get_rotate_delete_by_key_vault_name() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let store = store_for(&fake, OFFICER, OFFICER_SECRET);
    let name = "instance-507f1f77bcf86cd799439011";

    let missing = store.get(name).await.unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
    assert!(
        store
            .rotate(name, &SecretString::from("x"))
            .await
            .unwrap_err()
            .is_not_found()
    );

    let v1 = store
        .set(name, &SecretString::from("fake-registration-token-1"))
        .await
        .unwrap();
    assert_eq!(
        v1.as_str().len(),
        32,
        "Key Vault versions are 32 hex digits"
    );
    let read = store.get(name).await.unwrap();
    assert_eq!(read.value.expose(), "fake-registration-token-1");
    assert_eq!(read.version, v1);

    let rotation = store
        .rotate(name, &SecretString::from("fake-registration-token-2"))
        .await
        .unwrap();
    assert_eq!(rotation.previous, v1);
    assert_ne!(rotation.current, v1);
    let read = store.get(name).await.unwrap();
    assert_eq!(read.value.expose(), "fake-registration-token-2");
    assert_eq!(read.version, rotation.current);

    store.delete(name).await.unwrap();
    assert!(store.get(name).await.unwrap_err().is_not_found());
    // Soft-deleted: setting the name again is Key Vault's 409 until it is purged.
    let conflict = store
        .set(name, &SecretString::from("fake-registration-token-3"))
        .await
        .unwrap_err();
    assert!(conflict.is_conflict(), "{conflict}");
    assert!(
        !conflict.to_string().contains("fake-registration-token"),
        "{conflict}"
    );
}

#[tokio::test]
async fn purge_on_delete_frees_the_name_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let credential = ClientSecretCredential::new(
        TENANT,
        OFFICER,
        SecretString::from(OFFICER_SECRET),
        &fake.credential_options(),
        &Env::default(),
    )
    .unwrap();
    let store = AzureKeyVaultStore::builder(&fake.vault_url)
        .credential(Arc::new(credential))
        .options(fake.vault_options())
        .purge_on_delete(true)
        .build()
        .unwrap();
    store.set("purged", &SecretString::from("a")).await.unwrap();
    store.delete("purged").await.unwrap();
    store.set("purged", &SecretString::from("b")).await.unwrap();
    assert_eq!(store.get("purged").await.unwrap().value.expose(), "b");
}

#[tokio::test]
async fn invalid_names_are_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let store = store_for(&fake, OFFICER, OFFICER_SECRET);
    fake.clear_requests().await;
    for bad in ["instance_abc", "a.b", "", &"x".repeat(128)] {
        let err = store.get(bad).await.unwrap_err();
        assert!(
            matches!(
                err,
                SecretStoreError::InvalidName {
                    provider: "azure-keyvault",
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            store
                .set(bad, &SecretString::from("v"))
                .await
                .is_err_and(|e| matches!(e, SecretStoreError::InvalidName { .. }))
        );
    }
    assert_eq!(kv_requests(&fake.requests().await), 0);
}

#[tokio::test]
async fn a_reader_role_is_permission_denied_without_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let reader = store_for(&fake, READER, READER_SECRET);
    let err = reader.get("ghcr-username").await.unwrap_err();
    assert!(err.is_permission_denied(), "{err}");
    assert!(err.to_string().contains("403"), "{err}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("fake-ghcr-user"), "{text}");
    assert!(!text.contains(READER_SECRET), "{text}");
}

#[tokio::test]
async fn secret_store_provider_azure_keyvault_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let mut env = bare_env(dir.path());
    for (k, v) in [
        ("SECRET_STORE_PROVIDER", "azure-keyvault"),
        ("AZURE_KEY_VAULT_URL", fake.vault_url.as_str()),
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", OFFICER),
        ("AZURE_CLIENT_SECRET", OFFICER_SECRET),
    ] {
        env.set(k, v);
    }
    let overrides = EnvOverrides {
        keyvault: Some(fake.vault_options()),
        azure_credentials: Some(fake.credential_options()),
    };
    let store = tresor_client::from_env_with(&env, overrides.clone())
        .await
        .unwrap();
    assert_eq!(store.provider(), Provider::AzureKeyVault);
    assert_eq!(
        store.get("ghcr-token").await.unwrap().value.expose(),
        "fake-ghcr-token-v2"
    );
    // Both spellings of the URL variable: the same vault is fine, two vaults are an error.
    env.set("AZURE_KEYVAULT_URL", "https://elsewhere.vault.azure.net/");
    let err = tresor_client::from_env_with(&env, overrides)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("name different vaults"), "{err}");
}

#[tokio::test]
async fn the_cache_picks_up_a_rotation_on_an_auth_error_from_the_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let console = store_for(&fake, OFFICER, OFFICER_SECRET);
    let instance = CachedStore::new(
        Arc::new(store_for(&fake, OFFICER, OFFICER_SECRET)),
        CacheOptions {
            ttl: std::time::Duration::from_secs(3600),
            refresh_interval: None,
        },
    );
    let name = "instance-cache1";
    console
        .set(name, &SecretString::from("token-1"))
        .await
        .unwrap();
    assert_eq!(instance.get(name).await.unwrap().value.expose(), "token-1");
    console
        .rotate(name, &SecretString::from("token-2"))
        .await
        .unwrap();
    // Served from memory: still the old token.
    assert_eq!(instance.get(name).await.unwrap().value.expose(), "token-1");
    assert_eq!(instance.stats().hits, 1);
    // The Console said 401: re-read now.
    let fresh = instance.refresh_on_auth_error(name).await.unwrap();
    assert!(fresh.changed);
    assert_eq!(fresh.secret.value.expose(), "token-2");
    assert_eq!(instance.get(name).await.unwrap().value.expose(), "token-2");
    // Nothing changed since: a second 401 says so, so the caller stops retrying.
    let again = instance.refresh_on_auth_error(name).await.unwrap();
    assert!(!again.changed);
}
