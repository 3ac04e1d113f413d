//! `tresor server`: build the configuration (file or dev mode), open storage, start the core,
//! serve the listeners, and shut down cleanly on SIGINT/SIGTERM.

mod dev;
mod listen;
mod seal;
mod seal_transit;
mod seal_transit_tls;
mod service;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use tresor_config::{ListenerConfig, LogFormat, ServerConfig, StorageConfig};
use tresor_core::{Core, CoreOptions};
use tresor_http::{AppState, DEFAULT_MAX_REQUEST_SIZE};
use tresor_storage::{
    Backend, EmbeddedBackend, EmbeddedOptions, MemoryBackend, PostgresqlBackend, PostgresqlOptions,
};

#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// HCL configuration file (Vault's shape: storage, listener, api_addr, …). With -dev, it
    /// is laid over dev mode's configuration: its listeners are added, its storage replaces
    /// the in-memory one.
    #[arg(long = "config")]
    config: Option<PathBuf>,
    /// Development mode: in-memory store, initialised and unsealed, root token printed.
    #[arg(long = "dev")]
    dev: bool,
    /// Dev mode: use this root token instead of a random one.
    #[arg(long = "dev-root-token-id", env = "VAULT_DEV_ROOT_TOKEN_ID")]
    dev_root_token_id: Option<String>,
    /// Dev mode: do not store the root token in the token helper (~/.vault-token).
    #[arg(long = "dev-no-store-token")]
    dev_no_store_token: bool,
    /// Dev mode: address to listen on (port 0 picks a free port).
    #[arg(
        long = "dev-listen-address",
        env = "VAULT_DEV_LISTEN_ADDRESS",
        default_value = "127.0.0.1:8200"
    )]
    dev_listen_address: String,
    /// Dev mode: `inmem` (default) or `embedded:PATH` for a store that survives restarts.
    #[arg(long = "dev-store", default_value = "inmem")]
    dev_store: String,
    /// Log level or filter (error, warn, info, debug, trace, or a tracing filter). Also
    /// TRESOR_LOG_LEVEL, VAULT_LOG_LEVEL or BAO_LOG_LEVEL; beats `log_level` in the config.
    #[arg(long = "log-level", env = "TRESOR_LOG_LEVEL")]
    log_level: Option<String>,
    /// Log format: standard or json. Also TRESOR_LOG_FORMAT, VAULT_LOG_FORMAT or
    /// BAO_LOG_FORMAT; beats `log_format` in the config.
    #[arg(long = "log-format", env = "TRESOR_LOG_FORMAT")]
    log_format: Option<String>,
}

pub fn run(args: ServerArgs) -> Result<()> {
    let started = Instant::now();
    let config = match (&args.config, args.dev) {
        (Some(path), false) => tresor_config::load(path)?,
        (None, true) => dev::config(&args)?,
        (Some(path), true) => dev::config_with_file(&args, path)?,
        (None, false) => {
            bail!("a configuration file is required: tresor server -config=FILE (or -dev)")
        }
    };
    // BAO_API_ADDR / BAO_CLUSTER_ADDR (or Vault's names) over the file, as on OpenBao.
    let config = config.with_address_env(|name| std::env::var(name).ok())?;
    if config.listeners.is_empty() {
        bail!(
            "the configuration has no listener \"tcp\" block; add one, e.g. \
             listener \"tcp\" {{ address = \"127.0.0.1:8200\" }}"
        );
    }
    let level = args
        .log_level
        .clone()
        .or_else(|| env_first(&["VAULT_LOG_LEVEL", "BAO_LOG_LEVEL"]))
        .or_else(|| config.log_level.clone())
        .unwrap_or_else(|| "info".to_owned());
    let format = match args
        .log_format
        .clone()
        .or_else(|| env_first(&["VAULT_LOG_FORMAT", "BAO_LOG_FORMAT"]))
    {
        Some(name) => LogFormat::from_name(&name)
            .with_context(|| format!("invalid log format {name:?}: use standard or json"))?,
        None => config.log_format.unwrap_or(LogFormat::Standard),
    };
    init_logging(&level, format)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(config, args, started))
}

/// The operator's switch that pauses lease revocation: the config key, or the environment
/// variable (`1`/`true`/`yes` or `0`/`false`/`no`), whichever says "paused".
fn revocation_paused(config: &ServerConfig) -> Result<bool> {
    let from_env = match std::env::var(PAUSE_ENV) {
        Err(_) => false,
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" => true,
            "" | "0" | "false" | "no" => false,
            other => bail!("{PAUSE_ENV}={other:?} is not a boolean; use 1 or 0"),
        },
    };
    Ok(config.lease_revocation_paused || from_env)
}

/// Environment variable that pauses lease revocation (see `lease_revocation_paused`).
const PAUSE_ENV: &str = "TRESOR_LEASE_REVOCATION_PAUSED";

/// The first of these environment variables that is set and not empty.
fn env_first(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
}

/// Vault's level names (`warning`, `err`, `notice`) as `tracing`'s; anything else (a tracing
/// filter such as `tresor_core=debug`) is passed through.
fn normalise_level(level: &str) -> String {
    match level.trim().to_ascii_lowercase().as_str() {
        "warning" => "warn".to_owned(),
        "err" => "error".to_owned(),
        "notice" => "info".to_owned(),
        _ => level.trim().to_owned(),
    }
}

fn init_logging(level: &str, format: LogFormat) -> Result<()> {
    let level = normalise_level(level);
    // Libraries that would log secrets at their most verbose levels are capped, whatever level
    // was asked for: tokio-postgres logs every statement it sends at debug level, and the
    // database engine's statements carry passwords (CREATE ROLE … PASSWORD …); hyper and h2
    // log raw request bytes and headers (tokens) at trace level.
    use tracing_subscriber::filter::LevelFilter;
    let mut filter = tracing_subscriber::EnvFilter::try_new(&level)
        .with_context(|| format!("invalid log level {level:?}"))?;
    // A cap is only added when the filter would go beyond it: a target directive also raises
    // that target's level, and `info` must not turn on hyper's debug lines.
    let most_verbose = filter.max_level_hint();
    for (target, cap) in [
        ("tokio_postgres", LevelFilter::INFO),
        ("hyper", LevelFilter::DEBUG),
        ("hyper_util", LevelFilter::DEBUG),
        ("h2", LevelFilter::DEBUG),
    ] {
        if most_verbose.is_none_or(|v| v > cap) {
            let directive = format!("{target}={cap}");
            filter = filter.add_directive(
                directive
                    .parse()
                    .with_context(|| format!("the {directive} log directive"))?,
            );
        }
    }
    match format {
        LogFormat::Standard => {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(ansi)
                .with_writer(std::io::stderr)
                .init();
        }
        LogFormat::Json => {
            // One object per line; the request span (its id) is flattened into each line
            // logged while serving that request.
            tracing_subscriber::fmt()
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .init();
        }
    }
    Ok(())
}

/// The storage, and its HA lock when `ha_enabled` is set.
type Storage = (
    Arc<dyn Backend>,
    Option<Arc<dyn tresor_storage::ha::HaLock>>,
);

async fn open_backend(
    storage: &StorageConfig,
    api_addr: Option<&str>,
    cluster_addr: impl Fn(&str) -> String,
) -> Result<Storage> {
    let single = |backend: Arc<dyn Backend>| -> Storage { (backend, None) };
    Ok(match storage {
        StorageConfig::Inmem => single(Arc::new(MemoryBackend::new())),
        StorageConfig::Embedded { path, cache_size } => {
            let options = EmbeddedOptions {
                // The config refuses sizes this machine cannot address.
                cache_size: usize::try_from(*cache_size).unwrap_or(usize::MAX),
            };
            single(Arc::new(
                EmbeddedBackend::open_with(path, options)
                    .with_context(|| format!("opening the embedded store {}", path.display()))?,
            ))
        }
        StorageConfig::Postgresql {
            connection_url,
            table,
            max_parallel,
            max_idle_connections,
            ha_enabled,
            ha_table,
        } => {
            let url = postgresql_url(connection_url.as_deref(), |name| std::env::var(name).ok())?;
            let mut options = PostgresqlOptions::new(url);
            if let Some(table) = table {
                options.table.clone_from(table);
            }
            if let Some(n) = max_parallel {
                options.max_parallel = usize::try_from(*n).unwrap_or(usize::MAX);
                options.max_idle_connections = options.max_parallel;
            }
            if let Some(n) = max_idle_connections {
                options.max_idle_connections = usize::try_from(*n).unwrap_or(usize::MAX);
            }
            if !*ha_enabled {
                return Ok(single(Arc::new(
                    PostgresqlBackend::open(options)
                        .await
                        .context("opening the postgresql storage")?,
                )));
            }
            let Some(api_addr) = api_addr.filter(|a| !a.trim().is_empty()) else {
                // Standbys send clients to the active node's api_addr: without one they
                // could only refuse.
                bail!(
                    "storage \"postgresql\" with ha_enabled = true needs api_addr (the URL clients reach this node at, e.g. api_addr = \"https://tresor-1.internal:8200\")"
                );
            };
            let ha = tresor_storage::HaOptions {
                table: ha_table
                    .clone()
                    .unwrap_or_else(|| tresor_storage::postgresql::DEFAULT_HA_TABLE.to_owned()),
                advert: tresor_storage::ha::NodeAdvert {
                    node_id: hex::encode(tresor_core::random::bytes(8)),
                    api_addr: api_addr.trim_end_matches('/').to_owned(),
                    cluster_addr: cluster_addr(api_addr),
                    hostname: hostname(),
                    version: tresor_core::version::reported_version(),
                },
            };
            let (backend, lock) = PostgresqlBackend::open_ha(options, ha)
                .await
                .context("opening the postgresql storage")?;
            (Arc::new(backend), Some(lock))
        }
    })
}

/// The `cluster_addr` this node reports (sys/leader, sys/ha-status): none with
/// `disable_clustering`; the configured one; else Vault's default, `api_addr`'s host over
/// https on the port of the first listener's `cluster_address` or, without one, on
/// `api_addr`'s port plus one. Nothing listens there: standbys forward to `api_addr`.
fn reported_cluster_addr(config: &ServerConfig, api_addr: &str) -> String {
    if config.disable_clustering {
        return String::new();
    }
    if let Some(addr) = &config.cluster_addr {
        return addr.clone();
    }
    let Ok(uri) = api_addr.parse::<http::Uri>() else {
        return String::new();
    };
    let Some(host) = uri.host() else {
        return String::new();
    };
    let api_port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("http") {
            80
        } else {
            443
        });
    let port = config
        .listeners
        .first()
        .and_then(|l| l.cluster_address)
        .map_or(api_port.saturating_add(1), |a| a.port());
    format!("https://{host}:{port}")
}

/// The HTTP client an HA standby forwards requests with, unless `disable_clustering` turns
/// forwarding off (standbys then answer 307). It trusts, for an `https` `api_addr` of the
/// active node, the certificates of `ha_forwarding_tls_ca_cert` only, else the system's roots;
/// it never follows redirects (an answer goes back to the client as it came) and gives up
/// connecting after 5 s.
fn forwarding(config: &ServerConfig, ha: bool) -> Result<Option<tresor_http::Forwarding>> {
    if !ha || config.disable_clustering {
        return Ok(None);
    }
    let mut builder = reqwest::Client::builder()
        .connect_timeout(FORWARD_CONNECT_TIMEOUT)
        .timeout(tresor_http::FORWARD_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(std::time::Duration::from_secs(60));
    if let Some(ca) = &config.ha_forwarding_tls_ca_cert {
        let pem = std::fs::read(ca)
            .with_context(|| format!("reading ha_forwarding_tls_ca_cert {}", ca.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("parsing ha_forwarding_tls_ca_cert {}", ca.display()))?;
        if certs.is_empty() {
            bail!(
                "ha_forwarding_tls_ca_cert {} holds no certificate",
                ca.display()
            );
        }
        builder = builder.tls_certs_only(certs);
    }
    Ok(Some(tresor_http::Forwarding::new(
        builder
            .build()
            .context("building the HTTP client that forwards requests to the active node")?,
    )))
}

/// How long a standby waits to connect to the active node when forwarding a request.
const FORWARD_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The machine's host name, for `sys/ha-status`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// `connection_url` from the file, else `TRESOR_PG_CONNECTION_URL`, else Vault's
/// `VAULT_PG_CONNECTION_URL` (an empty variable counts as unset).
pub(crate) fn postgresql_url(
    from_file: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String> {
    if let Some(url) = from_file {
        return Ok(url.to_owned());
    }
    for name in [PG_URL_ENV, VAULT_PG_URL_ENV] {
        if let Some(url) = env(name).filter(|u| !u.trim().is_empty()) {
            return Ok(url);
        }
    }
    bail!(
        "storage \"postgresql\" needs connection_url, in the file or in {PG_URL_ENV} (or {VAULT_PG_URL_ENV})"
    )
}

const PG_URL_ENV: &str = "TRESOR_PG_CONNECTION_URL";
const VAULT_PG_URL_ENV: &str = "VAULT_PG_CONNECTION_URL";

async fn serve(config: ServerConfig, args: ServerArgs, started: Instant) -> Result<()> {
    let (backend, ha) = open_backend(&config.storage, config.api_addr.as_deref(), |api_addr| {
        reported_cluster_addr(&config, api_addr)
    })
    .await?;
    let forwarding = forwarding(&config, ha.is_some())?;
    crate::migrate::lock::refuse_to_serve(&*backend).await?;
    let paused = revocation_paused(&config)?;
    if paused {
        tracing::warn!(
            "lease revocation is paused (lease_revocation_paused / {PAUSE_ENV}): expired leases and tokens are kept until it is lifted"
        );
    }
    let seals = seal::configured(&config.seals)?;
    let seal_type = seals
        .active
        .as_ref()
        .map_or("shamir", |s| s.kind().as_str());
    let core = Core::new(
        backend.clone(),
        CoreOptions {
            cluster_name: config.cluster_name.clone(),
            engines: tresor_builtin::factories(),
            auth_methods: tresor_builtin::auth_methods(),
            leases: tresor_core::expiration::LeaseOptions {
                revocation_paused: paused,
                ..Default::default()
            },
            audit_devices: config.audit_devices.iter().map(audit_spec).collect(),
            // Dev mode also allows it (OpenBao's dev mode does not; see docs/audit.md).
            allow_api_audit_creation: config.unsafe_allow_api_audit_creation || args.dev,
            allow_audit_log_prefixing: config.allow_audit_log_prefixing,
            seal: seals.active,
            migration_seal: seals.disabled,
            ha,
        },
    )
    .await
    .context("starting the core")?;
    // Auto-unseal runs beside the listeners: while the seal fails, sys/seal-status already
    // answers and says why.
    let unsealer = core.clone();
    tokio::spawn(async move { unsealer.start_auto_unseal().await });
    // HA: a node started before sys/init notices another node initialising the store.
    core.watch_for_initialisation();
    reopen_audit_on_sighup(&core);
    let dev_outcome = if args.dev {
        let outcome = dev::bootstrap(&core, &args, &config).await?;
        if !args.dev_no_store_token {
            dev::store_root_token(&outcome);
        }
        Some(outcome)
    } else {
        None
    };

    let max_request_size = config
        .listeners
        .iter()
        .find_map(|l: &ListenerConfig| l.max_request_size)
        .unwrap_or(DEFAULT_MAX_REQUEST_SIZE);
    let app = tresor_http::router(AppState {
        core: core.clone(),
        max_request_size,
        observability: Arc::new(tresor_http::Observability {
            prometheus_retention: config
                .telemetry
                .map(|t| t.prometheus_retention_time)
                .filter(|r| !r.is_zero()),
            sanitized_config: config.sanitized(),
            in_flight: Default::default(),
        }),
        forwarding,
    });
    let servers = listen::start(&config.listeners, app).await?;

    println!("==> Tresor server configuration:\n");
    if let Some(first) = servers.bound.first() {
        println!(
            "{:>24}: {}",
            "Api Address",
            config.api_addr.clone().unwrap_or_else(|| first.url())
        );
    }
    for (i, bound) in servers.bound.iter().enumerate() {
        println!(
            "{:>24}: {}",
            format!("Listener {}", i + 1),
            bound.describe()
        );
    }
    println!("{:>24}: {}", "Seal Type", seal_type);
    println!("{:>24}: {}", "Storage", backend.storage_type());
    println!("{:>24}: Tresor v{}", "Version", env!("CARGO_PKG_VERSION"));
    println!("\n==> Tresor server started! Log data will stream in below:\n");
    if let (Some(outcome), Some(first)) = (&dev_outcome, servers.bound.first()) {
        println!("{}", dev::banner(outcome, &first.url()));
    }
    tracing::info!(
        startup_ms = started.elapsed().as_secs_f64() * 1000.0,
        sealed = core.is_sealed(),
        "server ready"
    );

    servers.run_until_shutdown().await?;
    core.seal_now().await;
    backend.close().await.context("closing storage")?;
    tracing::info!("shutdown complete");
    Ok(())
}

fn audit_spec(device: &tresor_config::AuditDeviceConfig) -> tresor_core::audit::DeviceSpec {
    tresor_core::audit::DeviceSpec {
        path: device.path.clone(),
        device_type: device.device_type.clone(),
        description: device.description.clone(),
        options: device.options.clone(),
        local: device.local,
    }
}

/// `SIGHUP` reopens every audit device's destination, so rotated files are followed (as
/// Vault does). The task holds the core weakly: it ends with the server.
fn reopen_audit_on_sighup(core: &Arc<Core>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let weak = Arc::downgrade(core);
        match signal(SignalKind::hangup()) {
            Ok(mut hangups) => {
                tokio::spawn(async move {
                    while hangups.recv().await.is_some() {
                        let Some(core) = weak.upgrade() else { break };
                        tracing::info!("SIGHUP: reopening audit devices");
                        core.reopen_audit_devices();
                    }
                });
            }
            Err(err) => tracing::warn!(error = %err, "cannot listen for SIGHUP"),
        }
    }
    #[cfg(not(unix))]
    let _ = core;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn the_postgresql_url_comes_from_the_file_then_tresors_then_vaults_variable() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let both = env(&[
            ("TRESOR_PG_CONNECTION_URL", "postgres://t"),
            ("VAULT_PG_CONNECTION_URL", "postgres://v"),
        ]);
        assert_eq!(
            postgresql_url(Some("postgres://f"), both).unwrap(),
            "postgres://f"
        );
        assert_eq!(postgresql_url(None, both).unwrap(), "postgres://t");
        let vault = env(&[
            ("TRESOR_PG_CONNECTION_URL", " "),
            ("VAULT_PG_CONNECTION_URL", "postgres://v"),
        ]);
        assert_eq!(postgresql_url(None, vault).unwrap(), "postgres://v");
        let err = postgresql_url(None, env(&[])).unwrap_err().to_string();
        assert!(err.contains("TRESOR_PG_CONNECTION_URL"), "{err}");
    }
}
