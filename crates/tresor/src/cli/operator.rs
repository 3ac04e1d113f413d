//! `tresor operator init|unseal|seal|status|step-down` (and `rekey`, in `cli::rekey`; `migrate`, which
//! needs no server, in the crate's `migrate` module).

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use super::block_on;
use super::output::{print_json, print_table, scalar, wrap};
use crate::client::{Client, ClientArgs};

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Initialise the server: create the unseal key shares and the root token.
    Init {
        /// Number of key shares to split the unseal key into (5 with the Shamir seal; none
        /// with an auto-unseal seal).
        #[arg(long = "key-shares")]
        key_shares: Option<u32>,
        /// Number of shares required to unseal (3 with the Shamir seal).
        #[arg(long = "key-threshold")]
        key_threshold: Option<u32>,
        /// Auto-unseal seals: number of recovery key shares.
        #[arg(long = "recovery-shares", default_value_t = 5)]
        recovery_shares: u32,
        /// Auto-unseal seals: number of recovery key shares required to use the recovery key.
        #[arg(long = "recovery-threshold", default_value_t = 3)]
        recovery_threshold: u32,
        /// Only report whether the server is initialised (exit 0 yes, 2 no).
        #[arg(long = "status")]
        status: bool,
    },
    /// Submit one unseal key share (read from stdin when not given).
    Unseal {
        key: Option<String>,
        /// Discard the shares submitted so far.
        #[arg(long = "reset")]
        reset: bool,
        /// The share is for a seal migration (the old seal's share), as `bao operator unseal
        /// -migrate`.
        #[arg(long = "migrate")]
        migrate: bool,
    },
    /// Seal the server (needs a root token).
    Seal,
    /// Show the seal status; exit code 2 when sealed.
    Status,
    /// Make the active node of an HA cluster resign (sudo, sys/step-down): another node takes
    /// over; this one waits 5 s before contending again. On a standby the request goes to the
    /// active node.
    StepDown,
    /// Replace the unseal key shares (new count and threshold), with a quorum of current ones.
    Rekey(super::rekey::RekeyArgs),
    /// Copy every (encrypted) entry of a stopped server's store to another store
    /// (storage_source and storage_destination in the -config file).
    Migrate(crate::migrate::MigrateArgs),
}

pub fn run(command: OperatorCommand, args: &ClientArgs) -> Result<ExitCode> {
    if let OperatorCommand::Rekey(rekey) = command {
        return Ok(super::rekey::run(rekey, args));
    }
    // Works on storage directly, with no server to talk to.
    if let OperatorCommand::Migrate(migrate) = command {
        return Ok(crate::migrate::run(migrate));
    }
    let client = Client::new(args)?;
    let json_out = args.output_format() == super::Format::Json;
    block_on(async move {
        match command {
            OperatorCommand::Init {
                key_shares,
                key_threshold,
                recovery_shares,
                recovery_threshold,
                status,
            } => {
                let request = InitFlags {
                    shares: key_shares,
                    threshold: key_threshold,
                    recovery_shares,
                    recovery_threshold,
                };
                init(&client, request, status, json_out).await
            }
            OperatorCommand::Unseal {
                key,
                reset,
                migrate,
            } => unseal(&client, key, reset, migrate, json_out).await,
            OperatorCommand::Seal => {
                client.call(Method::PUT, "sys/seal", None).await?;
                println!("Success! Vault is sealed.");
                Ok(ExitCode::SUCCESS)
            }
            OperatorCommand::StepDown => {
                client.call(Method::PUT, "sys/step-down", None).await?;
                // bao's words.
                println!("Success! Stepped down: {}", client.address());
                Ok(ExitCode::SUCCESS)
            }
            OperatorCommand::Status => {
                let status = client.call(Method::GET, "sys/seal-status", None).await?;
                print_status(&status, json_out);
                Ok(sealed_exit_code(&status))
            }
            OperatorCommand::Rekey(_) | OperatorCommand::Migrate(_) => Ok(ExitCode::from(1)),
        }
    })?
}

/// `operator init`'s share flags, as given.
struct InitFlags {
    shares: Option<u32>,
    threshold: Option<u32>,
    recovery_shares: u32,
    recovery_threshold: u32,
}

async fn init(
    client: &Client,
    flags: InitFlags,
    status_only: bool,
    json_out: bool,
) -> Result<ExitCode> {
    // As bao: the seal decides the defaults. With the Shamir seal the unseal shares default
    // to 5/3 and recovery flags are dropped; with an auto-unseal seal only given unseal share
    // flags are sent (and refused by the server).
    let seal_status = client.call(Method::GET, "sys/seal-status", None).await?;
    let recovery_seal = seal_status
        .get("recovery_seal")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let (shares, threshold, recovery_shares, recovery_threshold) = if recovery_seal {
        (
            flags.shares.unwrap_or(0),
            flags.threshold.unwrap_or(0),
            flags.recovery_shares,
            flags.recovery_threshold,
        )
    } else {
        (
            flags.shares.filter(|n| *n != 0).unwrap_or(5),
            flags.threshold.filter(|n| *n != 0).unwrap_or(3),
            0,
            0,
        )
    };
    if status_only {
        let body = client.call(Method::GET, "sys/init", None).await?;
        let initialized = body
            .get("initialized")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if initialized {
            println!("Vault is initialized");
            return Ok(ExitCode::SUCCESS);
        }
        println!("Vault is not initialized");
        return Ok(ExitCode::from(2));
    }
    let body = client
        .call(
            Method::PUT,
            "sys/init",
            Some(&json!({
                "secret_shares": shares,
                "secret_threshold": threshold,
                "recovery_shares": recovery_shares,
                "recovery_threshold": recovery_threshold,
            })),
        )
        .await?;
    let strings = |key: &str| -> Vec<String> {
        body.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let keys_b64 = strings("keys_base64");
    let keys_hex = strings("keys");
    let recovery_b64 = strings("recovery_keys_base64");
    let recovery_hex = strings("recovery_keys");
    let root = body
        .get("root_token")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if json_out {
        // bao's machineInit: without unseal keys (an auto-unseal seal) it reports 1/1.
        let (unseal_shares, unseal_threshold) = if keys_hex.is_empty() {
            (1, 1)
        } else {
            (shares, threshold)
        };
        print_json(&json!({
            "unseal_keys_b64": keys_b64,
            "unseal_keys_hex": keys_hex,
            "unseal_shares": unseal_shares,
            "unseal_threshold": unseal_threshold,
            "recovery_keys_b64": recovery_b64,
            "recovery_keys_hex": recovery_hex,
            "recovery_keys_shares": recovery_shares,
            "recovery_keys_threshold": recovery_threshold,
            "root_token": root,
        }));
        return Ok(ExitCode::SUCCESS);
    }
    for (i, key) in keys_b64.iter().enumerate() {
        println!("Unseal Key {}: {key}", i + 1);
    }
    for (i, key) in recovery_b64.iter().enumerate() {
        println!("Recovery Key {}: {key}", i + 1);
    }
    println!();
    println!("Initial Root Token: {root}");
    if keys_b64.is_empty() {
        println!();
        println!("Success! Vault is initialized");
    } else {
        println!();
        println!(
            "{}",
            wrap(&format!(
                "Vault initialized with {shares} key shares and a key threshold of {threshold}. \
                 Please securely distribute the key shares printed above. When the Vault is \
                 re-sealed, restarted, or stopped, you must supply at least {threshold} of these \
                 keys to unseal it before it can start servicing requests."
            ))
        );
        println!();
        println!(
            "{}",
            wrap(&format!(
                "Vault does not store the generated root key. Without at least {threshold} keys \
                 to reconstruct the root key, Vault will remain permanently sealed!"
            ))
        );
        println!();
        println!(
            "{}",
            wrap(
                "It is possible to generate new unseal keys, provided you have a quorum of \
                 existing unseal keys shares. See \"bao operator rotate-keys\" for more \
                 information."
            )
        );
    }
    if !recovery_b64.is_empty() {
        println!();
        println!(
            "{}",
            wrap(&format!(
                "Recovery key initialized with {recovery_shares} key shares and a key threshold \
                 of {recovery_threshold}. Please securely distribute the key shares printed above."
            ))
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn unseal(
    client: &Client,
    key: Option<String>,
    reset: bool,
    migrate: bool,
    json_out: bool,
) -> Result<ExitCode> {
    let body = if reset {
        json!({ "reset": true })
    } else {
        let key = match key {
            Some(k) if k != "-" => k,
            _ => {
                eprint!("Unseal Key (will be hidden): ");
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("reading the unseal key from stdin")?;
                line.trim().to_owned()
            }
        };
        if key.is_empty() {
            bail!("no unseal key given");
        }
        if migrate {
            json!({ "key": key, "migrate": true })
        } else {
            json!({ "key": key })
        }
    };
    let status = client.call(Method::PUT, "sys/unseal", Some(&body)).await?;
    print_status(&status, json_out);
    Ok(ExitCode::SUCCESS)
}

fn sealed_exit_code(status: &Value) -> ExitCode {
    if status
        .get("sealed")
        .and_then(Value::as_bool)
        .unwrap_or(true)
    {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_status(status: &Value, json_out: bool) {
    if json_out {
        print_json(status);
        return;
    }
    let get = |k: &str| scalar(status.get(k));
    let sealed = status
        .get("sealed")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let recovery = status
        .get("recovery_seal")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut rows = vec![("Seal Type", get("type"))];
    if recovery {
        rows.push(("Recovery Seal Type", get("recovery_seal_type")));
    }
    rows.push(("Initialized", get("initialized")));
    rows.push(("Sealed", get("sealed")));
    rows.push((
        if recovery {
            "Total Recovery Shares"
        } else {
            "Total Shares"
        },
        get("n"),
    ));
    rows.push(("Threshold", get("t")));
    if sealed {
        rows.push((
            "Unseal Progress",
            format!("{}/{}", get("progress"), get("t")),
        ));
        rows.push(("Unseal Nonce", get("nonce")));
    }
    if status.get("migration").and_then(Value::as_bool) == Some(true) {
        rows.push(("Seal Migration in Progress", "true".to_owned()));
    }
    rows.push(("Version", get("version")));
    rows.push(("Build Date", get("commit_date")));
    rows.push(("Storage Type", get("storage_type")));
    if !sealed {
        rows.push(("Cluster Name", get("cluster_name")));
        rows.push(("Cluster ID", get("cluster_id")));
    }
    rows.push(("HA Enabled", "false".to_owned()));
    print_table(&rows);
}
