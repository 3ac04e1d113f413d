//! Command-line parsing and dispatch.
//!
//! Vault's CLI takes single-dash long flags (`-dev`, `-key-shares=5`); clap wants two dashes,
//! so [`normalise_args`] rewrites the former into the latter before parsing, and
//! [`go_flag_order`] makes flags stop at the first positional argument, as Go's do.
//!
//! # Layout
//! - Command groups, one module each: `token`, `policy` (+ `policy_fmt`), `mounts` (`secrets`
//!   and `auth`), `lease`, `login` (auth-method dispatch; `login_oidc`: `-method=jwt|oidc` and the OIDC callback listener; `login_workload`: `-method=approle|kubernetes`), `generic` (`read`, `write`, `list`,
//!   `delete`), `kv`, `operator` (+ `rekey`; `operator migrate` is parsed there and runs in
//!   the crate's `migrate` module, with no server to talk to). `lint` is the `tresor-lint`
//!   crate's own command (`tresor_lint::cli`), mounted here, as `bootstrap` is the
//!   `tresor-bootstrap` crate's (`tresor_bootstrap::cli`) and `sync` the `tresor-sync` crate's
//!   (`tresor_sync::cli`).
//! - Output as Vault's Go client prints it: `secret` (the `api.Secret` shape, tables,
//!   `-field`), `output` (tables, Go's `%v`, durations, JSON), `yaml` (go-yaml's YAML).
//! - Shared argument handling: `flags` (argument counts, durations, exit codes), `args_data`
//!   (`key=value` request data).

mod args_data;
mod flags;
mod generic;
mod kv;
mod lease;
mod login;
mod login_oidc;
mod login_workload;
mod mounts;
mod operator;
mod output;
mod policy;
mod policy_fmt;
mod rekey;
mod secret;
mod token;
mod yaml;

pub use output::Format;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::client::ClientArgs;
use crate::server::ServerArgs;

#[derive(Debug, Parser)]
#[command(
    name = "tresor",
    version,
    about = "A Vault/OpenBao-compatible secrets server and CLI"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the secrets server.
    Server(ServerArgs),
    /// Operate the server: init, unseal, seal, status.
    Operator {
        #[command(subcommand)]
        command: operator::OperatorCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// KV secrets: get, put, patch, delete, undelete, destroy, list, metadata, rollback.
    Kv {
        #[command(subcommand)]
        command: kv::KvCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Tokens: create, lookup, renew, revoke, capabilities.
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// ACL policies: list, read, write, delete, fmt.
    Policy {
        #[command(subcommand)]
        command: policy::PolicyCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Secrets engines: enable, disable, list, tune, move.
    Secrets {
        #[command(subcommand)]
        command: mounts::SecretsCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Auth methods: enable, disable, list, tune.
    Auth {
        #[command(subcommand)]
        command: mounts::AuthCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Leases: lookup, renew, revoke.
    Lease {
        #[command(subcommand)]
        command: lease::LeaseCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Authenticate and store the token in the token helper (~/.vault-token).
    Login {
        #[command(flatten)]
        args: login::LoginArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Read any path.
    Read {
        /// PATH
        args: Vec<String>,
        #[command(flatten)]
        field: flags::FieldArg,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Write key=value pairs to any path (`-f` to write with no data).
    Write {
        /// PATH, then key=value pairs (`key=@file`, `key=-` for stdin, `@data.json`, `-`).
        args: Vec<String>,
        #[arg(long = "force", short = 'f')]
        force: bool,
        #[command(flatten)]
        field: flags::FieldArg,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List keys under any path.
    List {
        /// PATH
        args: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete any path.
    Delete {
        /// PATH
        args: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Unwrap a response-wrapping token (the given one, or the client's own token).
    Unwrap {
        /// [TOKEN]
        args: Vec<String>,
        #[command(flatten)]
        field: flags::FieldArg,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show the seal status (same as `operator status`); exit code 2 when sealed.
    Status {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Lint Kubernetes manifests and Helm output for inline secrets and unresolved references.
    Lint(tresor_lint::cli::LintArgs),
    /// Import secrets from .env files and other Vault servers into a KV v2 mount.
    Bootstrap(tresor_bootstrap::cli::BootstrapArgs),
    /// Keep Kubernetes Secrets in step with Tresor (ESO/VSO resources, TresorSecret).
    Sync(tresor_sync::cli::SyncArgs),
    /// Print the version.
    Version,
}

/// Rewrites `-flag` and `-flag=value` into `--flag…`, leaving `-h`, `-` and `--` alone, and
/// stopping at a bare `--`, after which arguments are positional.
fn normalise_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut positional_only = false;
    for arg in args {
        if positional_only {
            out.push(arg);
            continue;
        }
        if arg == "--" {
            positional_only = true;
            out.push(arg);
            continue;
        }
        let single_dash_long = arg.starts_with('-')
            && !arg.starts_with("--")
            && arg.len() > 2
            && arg.chars().nth(1).is_some_and(|c| c.is_ascii_alphabetic());
        if single_dash_long {
            out.push(format!("-{arg}"));
        } else {
            out.push(arg);
        }
    }
    out
}

/// The command groups whose flags are parsed as Go's `flag` package parses them (see
/// [`go_flag_order`]).
const GO_STYLE_GROUPS: &[&str] = &[
    "token", "policy", "secrets", "auth", "lease", "login", "read", "write", "list", "delete",
];

/// Vault's commands stop reading flags at the first positional argument: in
/// `tresor policy read app -format=json`, `-format=json` is a second argument ("Too many
/// arguments"), though Vault's global `-format` still applies wherever it appears. Other flags
/// after a positional are warned about (table format) and not parsed. This inserts `--` before
/// the first positional so clap does the same, repeats a trailing `-format` before it, and
/// returns the trailing flags to warn about.
fn go_flag_order(args: Vec<String>) -> (Vec<String>, Vec<String>) {
    use clap::CommandFactory;
    let Some(group) = args
        .get(1)
        .filter(|g| GO_STYLE_GROUPS.contains(&g.as_str()))
    else {
        return (args, Vec::new());
    };
    let mut cmd = Cli::command();
    cmd.build();
    let Some(mut current) = cmd.find_subcommand(group).cloned() else {
        return (args, Vec::new());
    };
    let mut at = 2;
    if let Some(sub) = args
        .get(2)
        .and_then(|name| current.find_subcommand(name).cloned())
    {
        current = sub;
        at = 3;
    }
    let takes_value = |name: &str| {
        current.get_arguments().any(|a| {
            a.get_long() == Some(name) && a.get_num_args().is_some_and(|n| n.min_values() > 0)
        })
    };
    let mut i = at;
    while let Some(arg) = args.get(i) {
        if arg == "--" {
            return (args, Vec::new());
        }
        if !arg.starts_with('-') || arg == "-" {
            break;
        }
        let name = arg.trim_start_matches('-');
        if !name.contains('=') && takes_value(name) {
            i += 1;
        }
        i += 1;
    }
    if i >= args.len() {
        return (args, Vec::new());
    }
    let (head, tail) = args.split_at(i);
    let mut out = head.to_vec();
    let mut trailing = Vec::new();
    for arg in tail {
        if !arg.starts_with('-') || arg == "-" {
            continue;
        }
        let name = arg.trim_start_matches('-');
        let base = name.split_once('=').map_or(name, |(n, _)| n);
        if base == "format" {
            if name.contains('=') {
                out.push(arg.clone());
            }
        } else if base != "detailed" {
            trailing.push(arg.clone());
        }
    }
    out.push("--".to_owned());
    out.extend(tail.iter().cloned());
    (out, trailing)
}

pub fn run() -> Result<ExitCode> {
    let raw: Vec<String> = std::env::args().collect();
    let go_style = raw
        .get(1)
        .is_some_and(|g| GO_STYLE_GROUPS.contains(&g.as_str()));
    // `tresor lint`, `tresor bootstrap` and `tresor sync` reserve 1 for findings, failed rules
    // and failed sources.
    let own_exit_codes = raw
        .get(1)
        .is_some_and(|g| g == "lint" || g == "bootstrap" || g == "sync");
    let (args, trailing_flags) = go_flag_order(raw);
    let cli = match Cli::try_parse_from(normalise_args(args)) {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version go to stdout with exit 0; a usage error exits 1, as `vault`'s
            // do (clap's own default would be 2, which Vault reserves for server errors).
            // Flag errors of Vault-style commands read as Go's `flag` package words them.
            if go_style && let Some(message) = flags::go_flag_error(&err) {
                eprintln!("{message}");
                return Ok(ExitCode::from(1));
            }
            let _ = err.print();
            // `tresor lint` reserves 1 for findings, `tresor bootstrap` for failed rules and
            // `tresor sync` for failed sources: their usage errors exit 2.
            let usage_exit = if own_exit_codes { 2 } else { 1 };
            return Ok(if err.use_stderr() {
                ExitCode::from(usage_exit)
            } else {
                ExitCode::SUCCESS
            });
        }
    };
    if !trailing_flags.is_empty() && client_format(&cli.command).is_some_and(|f| f.is_table()) {
        eprintln!(
            "{}",
            output::wrap(&format!(
                "Command flags must be provided before positional arguments. The following arguments will not be parsed as flags: [{}]",
                trailing_flags.join(",")
            ))
        );
    }
    if let Command::Lint(args) = cli.command {
        // No server involved; its own exit codes (0 clean, 1 findings, 2 errors).
        return Ok(tresor_lint::cli::run(args));
    }
    if let Command::Bootstrap(args) = cli.command {
        // Its own exit codes (0 success, 1 failed rule or source, 2 usage or config error).
        return Ok(tresor_bootstrap::cli::run(args));
    }
    if let Command::Sync(args) = cli.command {
        // Its own exit codes (0 done, 1 a source or write failed, 2 usage or input errors).
        return Ok(tresor_sync::cli::run(args));
    }
    if let Command::Server(args) = cli.command {
        // A server that cannot start exits 1, like `vault server`.
        return crate::server::run(args).map(|()| ExitCode::SUCCESS);
    }
    // Client commands exit 2 when the request fails, as `vault` and `bao` do; 1 stays for
    // usage errors.
    match run_client(cli.command) {
        Ok(code) => Ok(code),
        Err(err) => {
            eprintln!("Error: {err:#}");
            Ok(ExitCode::from(2))
        }
    }
}

fn client_format(command: &Command) -> Option<Format> {
    match command {
        Command::Token { client, .. }
        | Command::Read { client, .. }
        | Command::Write { client, .. }
        | Command::List { client, .. }
        | Command::Delete { client, .. }
        | Command::Unwrap { client, .. }
        | Command::Policy { client, .. }
        | Command::Secrets { client, .. }
        | Command::Auth { client, .. }
        | Command::Lease { client, .. }
        | Command::Login { client, .. } => Some(client.output_format()),
        _ => None,
    }
}

fn run_client(command: Command) -> Result<ExitCode> {
    match command {
        Command::Server(_) | Command::Lint(_) | Command::Bootstrap(_) | Command::Sync(_) => {
            Ok(ExitCode::from(1))
        }
        Command::Operator { command, client } => operator::run(command, &client),
        Command::Kv { command, client } => kv::run(command, &client),
        Command::Token { command, client } => Ok(token::run(command, &client)),
        Command::Policy { command, client } => Ok(policy::run(command, &client)),
        Command::Secrets { command, client } => Ok(mounts::run_secrets(command, &client)),
        Command::Auth { command, client } => Ok(mounts::run_auth(command, &client)),
        Command::Lease { command, client } => Ok(lease::run(command, &client)),
        Command::Login { args, client } => Ok(login::run(args, &client)),
        Command::Read {
            args,
            field,
            client,
        } => Ok(generic::run(
            generic::Generic::Read {
                args,
                field: field.field,
            },
            &client,
        )),
        Command::Write {
            args,
            force,
            field,
            client,
        } => Ok(generic::run(
            generic::Generic::Write {
                args,
                force,
                field: field.field,
            },
            &client,
        )),
        Command::List { args, client } => Ok(generic::run(generic::Generic::List(args), &client)),
        Command::Delete { args, client } => {
            Ok(generic::run(generic::Generic::Delete(args), &client))
        }
        Command::Unwrap {
            args,
            field,
            client,
        } => Ok(generic::run(
            generic::Generic::Unwrap {
                args,
                field: field.field,
            },
            &client,
        )),
        Command::Status { client } => operator::run(operator::OperatorCommand::Status, &client),
        Command::Version => {
            println!(
                "Tresor v{} (API {})",
                env!("CARGO_PKG_VERSION"),
                tresor_core::version::API_COMPAT_VERSION
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Builds the client (with the token helper's token unless `helper` is false) and runs
/// `body` on a small runtime. A client that cannot be built (unreadable CA file or token
/// helper) exits 2, as Vault's does.
pub(crate) fn with_client<F, Fut>(args: &ClientArgs, helper: bool, body: F) -> ExitCode
where
    F: FnOnce(crate::client::Client, Format) -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    let format = args.output_format();
    let built = if helper {
        crate::client::Client::new(args)
    } else {
        crate::client::Client::without_token(args)
    };
    let client = match built {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e:#}");
            return ExitCode::from(2);
        }
    };
    match block_on(body(client, format)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::from(2)
        }
    }
}

/// A small runtime for the client commands, which make a handful of requests.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(future))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(args: &[&str]) -> Vec<String> {
        normalise_args(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn vault_style_single_dash_flags_become_long_flags() {
        assert_eq!(
            n(&["tresor", "server", "-dev"]),
            ["tresor", "server", "--dev"]
        );
        assert_eq!(
            n(&["x", "-key-shares=5", "-h", "-"]),
            ["x", "--key-shares=5", "-h", "-"]
        );
        assert_eq!(n(&["x", "--", "-dev"]), ["x", "--", "-dev"]);
        assert_eq!(n(&["x", "-5"]), ["x", "-5"]);
    }

    #[test]
    fn flags_after_the_first_positional_are_arguments_as_in_go() {
        let v = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let (args, trailing) = go_flag_order(v(&["t", "policy", "read", "app", "-format=json"]));
        assert_eq!(
            args,
            v(&[
                "t",
                "policy",
                "read",
                "-format=json",
                "--",
                "app",
                "-format=json"
            ])
        );
        assert!(trailing.is_empty());
        let (args, trailing) = go_flag_order(v(&[
            "t", "token", "create", "-policy", "a", "-orphan", "x", "-ttl=1h",
        ]));
        assert_eq!(
            args,
            v(&[
                "t", "token", "create", "-policy", "a", "-orphan", "--", "x", "-ttl=1h"
            ])
        );
        assert_eq!(trailing, v(&["-ttl=1h"]));
        let (args, _) = go_flag_order(v(&["t", "kv", "get", "x", "-field=a"]));
        assert_eq!(args, v(&["t", "kv", "get", "x", "-field=a"]));
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
