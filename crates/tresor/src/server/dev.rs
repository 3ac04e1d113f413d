//! `tresor server -dev`: a ready-to-use server for development and tests.
//!
//! In-memory by default. With `-dev-store=embedded:PATH` the store survives restarts; the dev
//! unseal key is then kept beside it (`PATH.dev-unseal-key`, mode 0600) so a restarted dev
//! server unseals itself. That file makes the store's encryption moot: dev mode only. The same
//! holds for an embedded store named by a config file given with `-dev -config=FILE`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine;
use tresor_config::{ListenerConfig, ServerConfig, StorageConfig};
use tresor_core::Core;
use tresor_sdk::secret::SecretBytes;

use super::ServerArgs;

pub fn config(args: &ServerArgs) -> Result<ServerConfig> {
    let address = args
        .dev_listen_address
        .parse()
        .with_context(|| format!("invalid -dev-listen-address {:?}", args.dev_listen_address))?;
    let storage = match args.dev_store.as_str() {
        "inmem" => StorageConfig::Inmem,
        other => match other.strip_prefix("embedded:") {
            Some(path) if !path.is_empty() => StorageConfig::embedded(path),
            _ => bail!("invalid -dev-store {other:?}: use inmem or embedded:PATH"),
        },
    };
    Ok(ServerConfig {
        storage,
        listeners: vec![ListenerConfig {
            address,
            cluster_address: None,
            tls: None,
            max_request_size: None,
            limits: Default::default(),
            // As OpenBao's dev listener: the legacy unauthenticated endpoints stay off.
            disable_unauthed_rekey_endpoints: true,
            disable_unauthed_generate_root_endpoints: true,
            // OpenBao's dev mode serves sys/metrics without a token.
            telemetry: tresor_config::ListenerTelemetry {
                unauthenticated_metrics_access: true,
                unauthenticated_in_flight_requests_access: false,
            },
        }],
        api_addr: None,
        cluster_addr: None,
        disable_clustering: false,
        ha_forwarding_tls_ca_cert: None,
        cluster_name: None,
        disable_mlock: true,
        ui: false,
        log_level: None,
        default_lease_ttl: None,
        max_lease_ttl: None,
        lease_revocation_paused: false,
        audit_devices: Vec::new(),
        // OpenBao's dev config sets it too (its sys/config/state/sanitized shows true).
        unsafe_allow_api_audit_creation: true,
        allow_audit_log_prefixing: false,
        log_format: None,
        // As OpenBao's dev config: Prometheus on, no host name in metric names.
        telemetry: Some(tresor_config::TelemetryConfig {
            prometheus_retention_time: tresor_config::TelemetryConfig::DEFAULT_PROMETHEUS_RETENTION,
            disable_hostname: true,
        }),
        seals: Vec::new(),
    })
}

/// `-dev -config=FILE`: dev mode's configuration with the file laid over it, as OpenBao
/// merges them (see `tresor_config::Overlay`): dev mode's listener first, then the file's; the
/// file's storage, if it names one, instead of the in-memory store.
pub fn config_with_file(args: &ServerArgs, path: &Path) -> Result<ServerConfig> {
    let overlay = tresor_config::load_overlay(path)?;
    if overlay.storage.is_some() && args.dev_store != "inmem" {
        bail!(
            "-dev-store={} and the storage block of {} both name a store; keep one",
            args.dev_store,
            path.display()
        );
    }
    if !overlay.seals().is_empty() {
        // Dev mode initialises with a single Shamir key; an auto-unseal seal would need its
        // own bootstrap.
        bail!(
            "{}: seal blocks cannot be combined with -dev; start without -dev to use an auto-unseal seal",
            path.display()
        );
    }
    Ok(config(args)?.overlaid(overlay))
}

fn key_file(config: &ServerConfig) -> Option<PathBuf> {
    match &config.storage {
        StorageConfig::Embedded { path, .. } => {
            let mut name = path.as_os_str().to_owned();
            name.push(".dev-unseal-key");
            Some(PathBuf::from(name))
        }
        _ => None,
    }
}

/// What dev mode shows once the listeners are up.
#[derive(Debug)]
pub enum DevOutcome {
    Created {
        unseal_key_b64: String,
        root_token: tresor_sdk::secret::SecretString,
        persistent: bool,
    },
    Reopened {
        key_file: PathBuf,
    },
}

/// Initialises and unseals (or, for an existing dev store, just unseals).
pub async fn bootstrap(
    core: &Core,
    args: &ServerArgs,
    config: &ServerConfig,
) -> Result<DevOutcome> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key_path = key_file(config);
    if core.is_initialized() {
        let Some(path) = key_path else {
            bail!("dev store is unexpectedly initialized")
        };
        let encoded = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "this dev store was initialized, but its unseal key file {} is unreadable",
                path.display()
            )
        })?;
        let key = SecretBytes::new(
            b64.decode(encoded.trim())
                .context("dev unseal key file is corrupt")?,
        );
        core.unseal(key).await.context("unsealing the dev store")?;
        return Ok(DevOutcome::Reopened { key_file: path });
    }
    let result = core
        .dev_bootstrap(args.dev_root_token_id.as_deref())
        .await
        .context("initializing the dev server")?;
    let key = result
        .keys
        .first()
        .map(|k| b64.encode(k.expose()))
        .unwrap_or_default();
    if let Some(path) = &key_path {
        write_private(path, &key)?;
    }
    Ok(DevOutcome::Created {
        unseal_key_b64: key,
        root_token: result.root_token,
        persistent: key_path.is_some(),
    })
}

/// Puts a new dev server's root token in the token helper (`~/.vault-token`), so the CLI is
/// authenticated at once, as the banner says. A failure is a warning: the server still runs.
pub fn store_root_token(outcome: &DevOutcome) {
    if let DevOutcome::Created { root_token, .. } = outcome
        && let Err(e) = crate::token_helper::store(root_token.expose())
    {
        // The error names the file, never the token.
        tracing::warn!(error = %format!("{e:#}"), "could not store the root token in the token helper");
    }
}

/// The dev banner, in the words of Vault's, with the address actually bound.
pub fn banner(outcome: &DevOutcome, url: &str) -> String {
    match outcome {
        DevOutcome::Reopened { key_file } => format!(
            "Dev store reopened and unsealed with {}; the root token is the one printed when it was created.",
            key_file.display()
        ),
        DevOutcome::Created {
            unseal_key_b64,
            root_token,
            persistent,
        } => format!(
            "WARNING! dev mode is enabled! In this mode, Tresor runs {store}\n\
             and starts unsealed with a single unseal key. The root token is already\n\
             authenticated to the CLI, so you can immediately begin using Tresor.\n\n\
             You may need to set the following environment variables:\n\n    \
             $ export VAULT_ADDR='{url}'\n\n\
             The unseal key and root token are displayed below in case you want to\n\
             seal/unseal the Vault or re-authenticate.\n\n\
             Unseal Key: {unseal_key_b64}\n\
             Root Token: {root}\n\n\
             Development mode should NOT be used in production installations!\n",
            store = if *persistent {
                "on a persistent dev store"
            } else {
                "entirely in-memory"
            },
            root = root_token.expose(),
        ),
    }
}

fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}
