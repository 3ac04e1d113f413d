//! `tresor lease lookup|renew|revoke`, as `vault lease …` (`sys/leases/*`).

use std::process::ExitCode;

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::flags::{check_count, duration, failed, usage};
use super::output::{Format, wrap};
use super::secret::{api_secret, print_secret};
use crate::client::{Client, ClientArgs};

#[derive(Debug, Subcommand)]
pub enum LeaseCommand {
    /// Show a lease's properties: `lease lookup ID`.
    Lookup { args: Vec<String> },
    /// Renew a lease: `lease renew [-increment=D] ID`.
    Renew {
        /// Requested extension (a duration); the server may give less.
        #[arg(long = "increment", value_parser = duration)]
        increment: Option<u64>,
        args: Vec<String>,
    },
    /// Revoke a lease, or every lease under a prefix.
    Revoke {
        /// Remove the leases even if the engine fails to revoke them (needs -prefix).
        #[arg(long = "force", short = 'f', action = clap::ArgAction::Set, value_parser = super::flags::go_bool, num_args = 0..=1,
              require_equals = true, default_missing_value = "true", default_value = "false")]
        force: bool,
        /// The argument is a prefix of lease ids.
        #[arg(long = "prefix", action = clap::ArgAction::Set, value_parser = super::flags::go_bool, num_args = 0..=1,
              require_equals = true, default_missing_value = "true", default_value = "false")]
        prefix: bool,
        /// Wait for the revocation to finish instead of queueing it.
        #[arg(long = "sync", action = clap::ArgAction::Set, value_parser = super::flags::go_bool, num_args = 0..=1,
              require_equals = true, default_missing_value = "true", default_value = "false")]
        sync: bool,
        args: Vec<String>,
    },
}

pub fn run(command: LeaseCommand, args: &ClientArgs) -> ExitCode {
    super::with_client(args, true, |client, format| async move {
        dispatch(&client, command, &format).await
    })
}

/// Vault's check for `lease lookup|renew`: an id is required, and "Missing ID!" says so.
fn one_id(args: &[String], expected: &str) -> Result<String, ExitCode> {
    match args {
        [] => Err(usage("Missing ID!")),
        [id] => Ok(id.trim().to_owned()),
        _ => Err(usage(format!(
            "Too many arguments (expected {expected}, got {})",
            args.len()
        ))),
    }
}

async fn dispatch(client: &Client, command: LeaseCommand, format: &Format) -> ExitCode {
    match command {
        LeaseCommand::Lookup { args } => {
            let id = match one_id(&args, "1") {
                Ok(id) => id,
                Err(code) => return code,
            };
            match client
                .send(
                    Method::PUT,
                    "sys/leases/lookup",
                    Some(&json!({ "lease_id": id })),
                )
                .await
            {
                Ok(reply) => print_secret(format, &api_secret(&reply.body)),
                Err(e) => failed(format!("error looking up lease id {id}"), &e),
            }
        }
        LeaseCommand::Renew { increment, args } => {
            let id = match one_id(&args, "1-2") {
                Ok(id) => id,
                Err(code) => return code,
            };
            let body = json!({ "increment": increment.unwrap_or(0), "lease_id": id });
            match client
                .send(Method::PUT, "sys/leases/renew", Some(&body))
                .await
            {
                Ok(reply) => print_secret(format, &api_secret(&reply.body)),
                Err(e) => failed(format!("Error renewing {id}"), &e),
            }
        }
        LeaseCommand::Revoke {
            force,
            prefix,
            sync,
            args,
        } => revoke(client, force, prefix, sync, &args).await,
    }
}

async fn revoke(
    client: &Client,
    force: bool,
    prefix: bool,
    sync: bool,
    args: &[String],
) -> ExitCode {
    if let Err(code) = check_count(args, 1, 1) {
        return code;
    }
    if force && !prefix {
        return usage("Specifying -force requires also specifying -prefix");
    }
    let id = args.concat().trim().to_owned();
    let (path, body) = if force {
        (format!("sys/leases/revoke-force/{id}"), None)
    } else if prefix {
        (
            format!("sys/leases/revoke-prefix/{id}"),
            Some(json!({ "sync": sync })),
        )
    } else {
        (
            format!("sys/leases/revoke/{id}"),
            Some(json!({ "sync": sync })),
        )
    };
    if force {
        eprintln!(
            "{}",
            wrap(
                "Warning! Force-removing leases can cause Tresor to become out of sync with secret engines!"
            )
        );
    }
    if let Err(e) = client.send(Method::PUT, &path, body.as_ref()).await {
        let what = if force {
            format!("Error force revoking leases with prefix {id}")
        } else if prefix {
            format!("Error revoking leases with prefix {id}")
        } else {
            format!("Error revoking lease {id}")
        };
        return failed(what, &e);
    }
    if force {
        println!("Success! Force revoked any leases with prefix: {id}");
    } else if sync && prefix {
        println!("Success! Revoked any leases with prefix: {id}");
    } else if sync {
        println!("Success! Revoked lease: {id}");
    } else {
        println!("All revocation operations queued successfully!");
    }
    ExitCode::SUCCESS
}
