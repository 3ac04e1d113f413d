//! `tresor sync`: arguments and the run, for the `tresor` binary to mount as a sub-command.
//!
//! Exit codes: 0 every Secret rendered (and written); 1 a source failed (nothing printed or
//! written) or a write failed; 2 usage or input errors (unreadable or invalid manifests).

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
    Once(OnceArgs),
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
    }
}

async fn run_once(args: OnceArgs) -> ExitCode {
    let manifests = match Manifests::load(&args.files) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let ca_path = args
        .ca_cert
        .clone()
        .or_else(|| env_first(&["TRESOR_CACERT", "VAULT_CACERT"]).map(PathBuf::from));
    let ca_pem = match ca_path {
        Some(p) => match std::fs::read(&p) {
            Ok(pem) => Some(pem),
            Err(e) => {
                eprintln!("Error: reading {}: {e}", p.display());
                return ExitCode::from(EXIT_ERROR);
            }
        },
        None => None,
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
            let report = crate::apply::apply(&client, &outcome.secrets).await;
            for id in &report.created {
                eprintln!("created {id}");
            }
            for id in &report.updated {
                eprintln!("updated {id}");
            }
            eprintln!(
                "{} created, {} updated, {} unchanged, {} failed",
                report.created.len(),
                report.updated.len(),
                report.unchanged.len(),
                report.failed.len()
            );
            if report.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                for f in &report.failed {
                    eprintln!("  {f}");
                }
                ExitCode::from(EXIT_FAILED)
            }
        }
        (None, None) => ExitCode::from(EXIT_ERROR),
    }
}
