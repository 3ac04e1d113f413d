//! Command-line parsing and dispatch.
//!
//! Vault's CLI takes single-dash long flags (`-dev`, `-key-shares=5`); clap wants two dashes,
//! so [`normalise_args`] rewrites the former into the latter before parsing.

mod generic;
mod kv;
mod operator;
mod output;

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
    /// Read any path.
    Read {
        path: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Write key=value pairs to any path (`-f` to write with no data).
    Write {
        path: String,
        pairs: Vec<String>,
        #[arg(long = "force", short = 'f')]
        force: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List keys under any path.
    List {
        path: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete any path.
    Delete {
        path: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show the seal status (same as `operator status`); exit code 2 when sealed.
    Status {
        #[command(flatten)]
        client: ClientArgs,
    },
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

pub fn run() -> Result<ExitCode> {
    let cli = Cli::parse_from(normalise_args(std::env::args()));
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

fn run_client(command: Command) -> Result<ExitCode> {
    match command {
        Command::Server(_) => Ok(ExitCode::from(1)),
        Command::Operator { command, client } => operator::run(command, &client),
        Command::Kv { command, client } => kv::run(command, &client),
        Command::Read { path, client } => generic::run(generic::Generic::Read(path), &client),
        Command::Write {
            path,
            pairs,
            force,
            client,
        } => generic::run(generic::Generic::Write { path, pairs, force }, &client),
        Command::List { path, client } => generic::run(generic::Generic::List(path), &client),
        Command::Delete { path, client } => generic::run(generic::Generic::Delete(path), &client),
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
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
