//! Seed 002's Console pattern with `tresor-client`: the Console writes an instance's
//! registration token under `instance-{id}` and rotates it; the instance reads it at start,
//! serves it from a cache, re-reads it periodically and at once when the Console answers 401.
//!
//! ```sh
//! SECRET_STORE_PROVIDER=tresor VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=… \
//!   cargo run -p tresor-client --example console -- 507f1f77bcf86cd799439011
//! SECRET_STORE_PROVIDER=noop cargo run -p tresor-client --example console   # warns, stores nothing
//! ```
//!
//! Values are never printed: only names and versions.

use std::time::Duration;

use tresor_client::{CacheOptions, CachedStore, SecretStore, SecretString};

/// Stands in for a call to the Console with the instance's token: 401 unless it is current.
fn call_console(token: &SecretString, current: &SecretString) -> u16 {
    if token == current { 200 } else { 401 }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let instance = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "507f1f77bcf86cd799439011".to_owned());
    let key = format!("instance-{instance}");

    // SECRET_STORE_PROVIDER chooses tresor, azure-keyvault or noop; a typo is an error that
    // lists the valid ones.
    let store = tresor_client::from_env().await?;
    store.validate_name(&key)?;

    // Console API: create the instance (its registration token).
    let first = SecretString::from(format!("registration-token-{instance}-1"));
    let version = store.set(&key, &first).await?;
    println!("console: wrote {key} version {version}");

    // The instance: read at start, then from the cache, refreshed every 30 s.
    let cache = CachedStore::new(
        store.clone(),
        CacheOptions {
            ttl: Duration::from_secs(60),
            refresh_interval: Some(Duration::from_secs(30)),
        },
    );
    let token = match cache.get(&key).await {
        Ok(secret) => secret,
        Err(e) if e.is_not_found() => {
            println!("instance: {key} not found (noop stores nothing); done");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    println!("instance: read {key} version {}", token.version);

    // Console API: rotate-token. The old version stays readable; the instance's cached copy
    // is now stale.
    let second = SecretString::from(format!("registration-token-{instance}-2"));
    let rotation = store.rotate(&key, &second).await?;
    println!(
        "console: rotated {key} from version {} to {}",
        rotation.previous, rotation.current
    );

    // The instance calls the Console with its cached token and gets a 401: it re-reads the
    // secret at once instead of waiting for the next refresh, and retries if it changed.
    let cached = cache.get(&key).await?;
    let mut status = call_console(&cached.value, &second);
    println!(
        "instance: Console answered {status} with version {}",
        cached.version
    );
    if status == 401 || status == 403 {
        let fresh = cache.refresh_on_auth_error(&key).await?;
        if fresh.changed {
            status = call_console(&fresh.secret.value, &second);
        }
        println!(
            "instance: re-read {key} (version {}, changed: {}); Console answered {status}",
            fresh.secret.version, fresh.changed
        );
    }

    // Decommissioning the instance.
    cache.delete(&key).await?;
    println!("console: deleted {key}");
    Ok(())
}
