//! `tresor sync`: arguments and the run, for the `tresor` binary to mount as a sub-command.
//!
//! Exit codes of `once`: 0 every Secret rendered (and written, its consumers restarted); 1 a
//! source failed (nothing printed or written), a write failed, or a restart failed or was
//! deferred; 2 usage or input errors (unreadable or invalid manifests).
//! Exit codes of `status`: 0 everything in sync; 1 drift, missing Secrets, failed sources or
//! consumers not restarted since the last change; 2 usage or input errors.

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
    /// Tresor's address (default: TRESOR_ADDR, VAULT_ADDR or BAO_ADDR; else the resources').
    #[arg(long)]
    pub address: Option<String>,
    /// A token, over every store's authentication (default: TRESOR_TOKEN, VAULT_TOKEN or
    /// BAO_TOKEN). Also used to look dynamic secrets' leases up.
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
    /// Tresor's address, over every store's and connection's (default: TRESOR_ADDR,
    /// VAULT_ADDR or BAO_ADDR; else the resources' own).
    #[arg(long)]
    pub address: Option<String>,
    /// A token, over every store's authentication (default: TRESOR_TOKEN, VAULT_TOKEN or
    /// BAO_TOKEN; prefer the environment: arguments are visible to other local users).
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

fn env_first(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

pub fn run(args: SyncArgs) -> ExitCode {
    match args.command {
        SyncCommand::Once(once) => {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("Error: starting the runtime: {e}");
                    return ExitCode::from(EXIT_ERROR);
                }
            };
            runtime.block_on(run_once(once))
        }
        SyncCommand::Status(status) => {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("Error: starting the runtime: {e}");
                    return ExitCode::from(EXIT_ERROR);
                }
            };
            runtime.block_on(run_status(status))
        }
    }
}

fn read_ca(ca_cert: Option<&PathBuf>) -> Result<Option<Vec<u8>>, String> {
    let ca_path = ca_cert
        .cloned()
        .or_else(|| env_first(&["TRESOR_CACERT", "VAULT_CACERT"]).map(PathBuf::from));
    match ca_path {
        Some(p) => std::fs::read(&p)
            .map(Some)
            .map_err(|e| format!("reading {}: {e}", p.display())),
        None => Ok(None),
    }
}

async fn run_status(args: StatusArgs) -> ExitCode {
    if args.files.is_empty() && !args.cluster {
        eprintln!("Error: name the resources with -f FILE|DIR, or read them with --cluster");
        return ExitCode::from(EXIT_ERROR);
    }
    let ca_pem = match read_ca(args.ca_cert.as_ref()) {
        Ok(pem) => pem,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let options = Options {
        address: args
            .address
            .clone()
            .or_else(|| env_first(&["TRESOR_ADDR", "VAULT_ADDR", "BAO_ADDR"])),
        token: args
            .token
            .clone()
            .or_else(|| env_first(&["TRESOR_TOKEN", "VAULT_TOKEN", "BAO_TOKEN"]))
            .map(SecretString::new),
        jwt_file: args.jwt_file.clone(),
        default_namespace: args.namespace.clone(),
        ca_pem: ca_pem.clone(),
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
                ca_pem,
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
    let ca_pem = match read_ca(args.ca_cert.as_ref()) {
        Ok(pem) => pem,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let options = Options {
        address: args
            .address
            .clone()
            .or_else(|| env_first(&["TRESOR_ADDR", "VAULT_ADDR", "BAO_ADDR"])),
        token: args
            .token
            .clone()
            .or_else(|| env_first(&["TRESOR_TOKEN", "VAULT_TOKEN", "BAO_TOKEN"]))
            .map(SecretString::new),
        jwt_file: args.jwt_file.clone(),
        default_namespace: args.namespace.clone(),
        ca_pem,
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
