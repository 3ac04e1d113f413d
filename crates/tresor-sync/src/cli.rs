//! `tresor sync`: arguments and the run, for the `tresor` binary to mount as a sub-command.
//!
//! Exit codes of `once`: 0 every Secret rendered (and written, its consumers restarted); 1 a
//! source failed (nothing printed or written), a write failed, or a restart failed or was
//! deferred; 2 usage or input errors (unreadable or invalid manifests).
//! Exit codes of `status`: 0 everything in sync; 1 drift, missing Secrets, failed sources or
//! consumers not restarted since the last change; 2 usage or input errors.
//! Exit codes of `run`: 0 after SIGTERM/SIGINT; 1 leadership lost; 2 usage errors or no
//! cluster.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use tresor_sdk::secret::SecretString;
use zeroize::Zeroizing;

use crate::engine::{Engine, Options};
use crate::model::Manifests;

pub const EXIT_FAILED: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

/// Keep Kubernetes Secrets in step with Tresor (ESO ExternalSecrets, VSO VaultStaticSecrets
/// and VaultDynamicSecrets, TresorSecrets).
#[derive(Debug, Clone, clap::Args)]
pub struct SyncArgs {
    #[command(subcommand)]
    pub command: SyncCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum SyncCommand {
    /// Read the resources from files, fetch every source, then write every target Secret
    /// (or print them with --output yaml). Any failing source: exit 1, nothing written.
    /// Secrets whose content changed get their rolloutRestartTargets restarted.
    Once(OnceArgs),
    /// Drift report: for each resource, whether the cluster's Secret holds what the sources
    /// render now (hashes only, never values), and whether its consumers were restarted
    /// since its last change. Exit 0 all in sync, 1 drift or failures.
    Status(StatusArgs),
    /// The in-cluster controller: watch the resources, keep their Secrets in step (on change
    /// and on each refresh interval), one leader among replicas through a Lease.
    Run(RunArgs),
}

/// How to reach Tresor: the flags `once`, `status` and `run` share.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectionArgs {
    /// Tresor's address, over every store's and connection's (default: TRESOR_ADDR,
    /// VAULT_ADDR or BAO_ADDR; else the resources' own).
    #[arg(long)]
    pub address: Option<String>,
    /// A token, over every store's authentication (default: TRESOR_TOKEN, VAULT_TOKEN or
    /// BAO_TOKEN; prefer the environment: arguments are visible to other local users). `status`
    /// also looks dynamic secrets' leases up with it.
    #[arg(long)]
    pub token: Option<String>,
    /// PEM file of CA certificates for Tresor's TLS (default: VAULT_CACERT).
    #[arg(long = "ca-cert", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// The service account token used for Kubernetes logins.
    #[arg(
        long = "jwt-file",
        value_name = "FILE",
        default_value = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    )]
    pub jwt_file: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    Table,
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// Manifest files or directories (as for `once`); or use --cluster.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR", num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Read the resources from the cluster (every namespace) instead of files.
    #[arg(long, conflicts_with = "files")]
    pub cluster: bool,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// The namespace of resources that name none.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// `table` (default) or `json`.
    #[arg(long, value_enum, default_value = "table")]
    pub format: StatusFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Yaml,
}

#[derive(Debug, Clone, clap::Args)]
pub struct OnceArgs {
    /// Manifest files or directories (recursive: .yaml, .yml, .json); repeatable.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// The namespace of resources that name none.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Print the Secrets as a YAML stream (for `kubectl apply -f -`) instead of writing them
    /// to the cluster.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<OutputFormat>,
    /// At most one rollout restart per workload in this interval (Vault duration; its own
    /// `restartedAt` counts, whoever set it).
    #[arg(
        long = "restart-min-interval",
        value_name = "DURATION",
        default_value = "30s"
    )]
    pub restart_min_interval: String,
    /// How long to wait for a restart the interval holds back; longer: the restart is
    /// reported as deferred (exit 1) and the next run does it.
    #[arg(
        long = "restart-max-wait",
        value_name = "DURATION",
        default_value = "60s"
    )]
    pub restart_max_wait: String,
}

fn duration_arg(flag: &str, text: &str) -> Result<std::time::Duration, String> {
    tresor_sdk::duration::parse_str(text)
        .ok()
        .and_then(|n| tresor_sdk::duration::to_std(n).ok())
        .ok_or_else(|| format!("--{flag}: {text:?} is not a duration (e.g. 30s, 5m)"))
}

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Watch only this namespace (repeatable; default: all namespaces).
    #[arg(short = 'n', long = "namespace", value_name = "NAMESPACE")]
    pub namespaces: Vec<String>,
    /// Reconcile without a Lease: for a single replica only (two would both write). An idle
    /// controller then makes no API writes at all (with election, the leader renews its
    /// Lease every --retry-period).
    #[arg(long)]
    pub no_leader_election: bool,
    /// The leader-election Lease.
    #[arg(long, default_value = "tresor-sync")]
    pub lease_name: String,
    /// The Lease's namespace (default: POD_NAMESPACE, else the service account's namespace,
    /// else `default`).
    #[arg(long)]
    pub lease_namespace: Option<String>,
    /// This replica's holder identity (default: POD_NAME or the host name, plus a random
    /// suffix).
    #[arg(long)]
    pub identity: Option<String>,
    /// How long a Lease not renewed stays another replica's.
    #[arg(long, value_name = "DURATION", default_value = "15s")]
    pub lease_duration: String,
    /// How long the leader keeps leading while failing to renew.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub renew_deadline: String,
    /// How often the Lease is renewed, or tried for.
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    pub retry_period: String,
    /// The first retry delay after a failed sync (doubling up to --backoff-max).
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub backoff_base: String,
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub backoff_max: String,
    /// Where to serve /metrics (Prometheus text), /healthz and /readyz; `off` for nowhere.
    #[arg(long, value_name = "HOST:PORT", default_value = "0.0.0.0:8080")]
    pub metrics_address: String,
    /// At most one rollout restart per workload in this interval (its own `restartedAt`
    /// counts, whoever set it); a restart held back is done when the interval allows, without
    /// holding up other reconciles.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub restart_min_interval: String,
    /// How long after a dynamic secret's consumers were restarted its old lease is revoked.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub revoke_old_after: String,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

fn env_first(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

pub fn run(args: SyncArgs) -> ExitCode {
    match args.command {
        SyncCommand::Once(once) => block_on(
            tokio::runtime::Builder::new_current_thread(),
            run_once(once),
        ),
        SyncCommand::Status(status) => block_on(
            tokio::runtime::Builder::new_current_thread(),
            run_status(status),
        ),
        SyncCommand::Run(args) => {
            let settings = match crate::controller::Settings::from_args(&args) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("Error: {e}");
                    return ExitCode::from(EXIT_ERROR);
                }
            };
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(2);
            block_on(builder, crate::controller::run(settings))
        }
    }
}

/// Runs `command` to completion on a runtime from `builder` (I/O and timers enabled).
fn block_on(
    mut builder: tokio::runtime::Builder,
    command: impl std::future::Future<Output = ExitCode>,
) -> ExitCode {
    match builder.enable_all().build() {
        Ok(runtime) => runtime.block_on(command),
        Err(e) => {
            eprintln!("Error: starting the runtime: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

async fn run_status(args: StatusArgs) -> ExitCode {
    if args.files.is_empty() && !args.cluster {
        eprintln!("Error: name the resources with -f FILE|DIR, or read them with --cluster");
        return ExitCode::from(EXIT_ERROR);
    }
    let options = match engine_options(&args.connection, &args.namespace) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let kube = match crate::apply::kube_client(None).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error: no Kubernetes cluster to compare with ({e})");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let manifests = if args.cluster {
        match crate::status::from_cluster(&kube).await {
            Ok(m) => m,
            Err(e) => {
                eprintln!("Error: {e}");
                return ExitCode::from(EXIT_FAILED);
            }
        }
    } else {
        match Manifests::load(&args.files) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("Error: {e}");
                return ExitCode::from(EXIT_ERROR);
            }
        }
    };
    // Leases are looked up with the operator's token and address, when given.
    let leases = match (&options.address, &options.token) {
        (Some(address), Some(token)) => {
            match crate::vault::VaultClient::new(crate::vault::Endpoint {
                address: address.clone(),
                ca_pem: options.ca_pem.clone(),
                ..Default::default()
            }) {
                Ok(mut c) => {
                    c.set_token(token.clone());
                    Some(c)
                }
                Err(e) => {
                    eprintln!("Error: {e}");
                    return ExitCode::from(EXIT_ERROR);
                }
            }
        }
        _ => None,
    };
    let report = crate::status::report(&manifests, &options, &kube, leases.as_ref()).await;
    let text = match args.format {
        StatusFormat::Table => crate::status::table(&report),
        StatusFormat::Json => {
            let mut j = crate::status::json(&report);
            j.push('\n');
            j
        }
    };
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        eprintln!("Error: writing the output: {e}");
        return ExitCode::from(EXIT_FAILED);
    }
    if report.iter().all(crate::status::ResourceStatus::ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

/// The engine's options from the flags and the environment (`once` and `run` alike).
pub(crate) fn engine_options(
    connection: &ConnectionArgs,
    default_namespace: &str,
) -> Result<Options, String> {
    let ConnectionArgs {
        address,
        token,
        ca_cert,
        jwt_file,
    } = connection;
    let ca_path = ca_cert
        .clone()
        .or_else(|| env_first(&["TRESOR_CACERT", "VAULT_CACERT"]).map(PathBuf::from));
    let ca_pem = match ca_path {
        Some(p) => Some(std::fs::read(&p).map_err(|e| format!("reading {}: {e}", p.display()))?),
        None => None,
    };
    Ok(Options {
        address: address
            .clone()
            .or_else(|| env_first(&["TRESOR_ADDR", "VAULT_ADDR", "BAO_ADDR"])),
        token: token
            .clone()
            .or_else(|| env_first(&["TRESOR_TOKEN", "VAULT_TOKEN", "BAO_TOKEN"]))
            .map(SecretString::new),
        jwt_file: jwt_file.clone(),
        default_namespace: default_namespace.to_owned(),
        ca_pem,
        http: Default::default(),
        logins: Default::default(),
    })
}

async fn run_once(args: OnceArgs) -> ExitCode {
    let rollout = match (
        duration_arg("restart-min-interval", &args.restart_min_interval),
        duration_arg("restart-max-wait", &args.restart_max_wait),
    ) {
        (Ok(interval), Ok(max)) => (
            crate::rollout::RateLimiter::new(interval),
            crate::rollout::RolloutConfig {
                over_limit: crate::rollout::OverLimit::Wait { max },
            },
        ),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("Error: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let manifests = match Manifests::load(&args.files) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let options = match engine_options(&args.connection, &args.namespace) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    // Writing needs a cluster; so do token Secrets and CA bundles the resources refer to.
    let kube = if args.output.is_none() {
        match kube::Client::try_default().await {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!(
                    "Error: no Kubernetes cluster to write to ({}); use --output yaml to print the Secrets instead",
                    crate::apply::kube_reason(&e)
                );
                return ExitCode::from(EXIT_ERROR);
            }
        }
    } else {
        None
    };
    let mut engine = Engine::new(&manifests, &options, kube.clone());
    let outcome = engine.run().await;
    if !outcome.failures.is_empty() {
        eprintln!(
            "Error: {} of the resources' sources failed; nothing was {}:",
            outcome.failures.len(),
            if args.output.is_some() {
                "printed"
            } else {
                "written"
            }
        );
        for f in &outcome.failures {
            eprintln!("  {f}");
        }
        return ExitCode::from(EXIT_FAILED);
    }
    match (args.output, kube) {
        (Some(OutputFormat::Yaml), _) => {
            let mut stream = Zeroizing::new(String::new());
            for s in outcome
                .secrets
                .iter()
                .filter(|s| s.policy != crate::secret::WritePolicy::None)
            {
                stream.push_str(&s.to_yaml());
            }
            let mut stdout = std::io::stdout().lock();
            if let Err(e) = stdout
                .write_all(stream.as_bytes())
                .and_then(|()| stdout.flush())
            {
                eprintln!("Error: writing the output: {e}");
                return ExitCode::from(EXIT_FAILED);
            }
            eprintln!(
                "{} Secret(s) rendered from {} resource(s) ({} other object(s) skipped)",
                outcome.secrets.len(),
                manifests.resources.len(),
                manifests.skipped
            );
            ExitCode::SUCCESS
        }
        (None, Some(client)) => {
            let (mut limiter, config) = rollout;
            let report =
                crate::apply::apply_with(&client, &outcome.secrets, &mut limiter, &config).await;
            for id in &report.created {
                eprintln!("created {id}");
            }
            for id in &report.updated {
                eprintln!("updated {id}");
            }
            for r in report
                .restarts
                .iter()
                .filter(|r| r.outcome == crate::rollout::Outcome::Restarted)
            {
                eprintln!("{r}");
            }
            eprintln!(
                "{} created, {} updated, {} unchanged, {} failed",
                report.created.len(),
                report.updated.len(),
                report.unchanged.len(),
                report.failed.len()
            );
            let pending: Vec<String> = report.restarts_pending().map(ToString::to_string).collect();
            if report.failed.is_empty() && pending.is_empty() {
                ExitCode::SUCCESS
            } else {
                for f in report.failed.iter().chain(&pending) {
                    eprintln!("  {f}");
                }
                ExitCode::from(EXIT_FAILED)
            }
        }
        (None, None) => ExitCode::from(EXIT_ERROR),
    }
}
