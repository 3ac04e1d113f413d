//! `tresor policy list|read|write|delete|fmt`, as `vault policy …` (ACL policies under
//! `sys/policies/acl`).

use std::io::Read;
use std::process::ExitCode;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use super::flags::{check_count, failed, usage};
use super::output::{Format, invalid_format, print_structured};
use crate::client::{Client, ClientArgs};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// List the ACL policies.
    List { args: Vec<String> },
    /// Print a policy's text.
    Read { args: Vec<String> },
    /// Upload a policy from a file (`-` reads stdin): `policy write NAME PATH`.
    Write { args: Vec<String> },
    /// Delete a policy.
    Delete { args: Vec<String> },
    /// Check a policy file and rewrite it in canonical HCL layout.
    Fmt { args: Vec<String> },
}

pub fn run(command: PolicyCommand, args: &ClientArgs) -> ExitCode {
    if let PolicyCommand::Fmt { args } = &command {
        return super::policy_fmt::run(args);
    }
    super::with_client(args, true, |client, format| async move {
        dispatch(&client, command, &format).await
    })
}

async fn dispatch(client: &Client, command: PolicyCommand, format: &Format) -> ExitCode {
    match command {
        PolicyCommand::List { args } => list(client, &args, format).await,
        PolicyCommand::Read { args } => read(client, &args, format).await,
        PolicyCommand::Write { args } => write(client, &args).await,
        PolicyCommand::Delete { args } => delete(client, &args).await,
        PolicyCommand::Fmt { args } => super::policy_fmt::run(&args),
    }
}

async fn list(client: &Client, args: &[String], format: &Format) -> ExitCode {
    if !args.is_empty() {
        return usage(format!(
            "Too many arguments (expected 0, got {})",
            args.len()
        ));
    }
    let reply = match client
        .send(
            Method::from_bytes(b"LIST").unwrap_or(Method::GET),
            "sys/policies/acl",
            None,
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return failed("Error listing policies", &e),
    };
    let keys: Vec<String> = reply
        .body
        .pointer("/data/keys")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    match format {
        Format::Table => {
            for k in &keys {
                println!("{k}");
            }
            ExitCode::SUCCESS
        }
        Format::Invalid(name) => invalid_format(name),
        other => print_structured(other, &json!(keys)),
    }
}

async fn read(client: &Client, args: &[String], format: &Format) -> ExitCode {
    if let Err(code) = check_count(args, 1, 1) {
        return code;
    }
    let name = args.concat().trim().to_lowercase();
    let reply = match client
        .request(Method::GET, &format!("sys/policies/acl/{name}"), None)
        .await
    {
        // Vault's client reads a 404 as "no such policy", not as an error.
        Ok(r) if r.status == reqwest::StatusCode::NOT_FOUND => {
            eprintln!("No policy named: {name}");
            return ExitCode::from(2);
        }
        Ok(r) => match r.api_error() {
            Some(e) => return failed(format!("Error reading policy named {name}"), &e.into()),
            None => r,
        },
        Err(e) => return failed(format!("Error reading policy named {name}"), &e),
    };
    let rules = reply
        .body
        .pointer("/data/policy")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if rules.is_empty() {
        eprintln!("No policy named: {name}");
        return ExitCode::from(2);
    }
    match format {
        Format::Table => {
            println!("{}", rules.trim());
            ExitCode::SUCCESS
        }
        Format::Invalid(name) => invalid_format(name),
        other => print_structured(other, &json!({ "policy": rules })),
    }
}

async fn write(client: &Client, args: &[String]) -> ExitCode {
    if let Err(code) = check_count(args, 2, 2) {
        return code;
    }
    let (name, source) = match args {
        [name, source] => (name.clone(), source.trim().to_owned()),
        _ => return usage("Not enough arguments (expected 2, got 0)"),
    };
    let formatted = name.trim().to_lowercase();
    let rules = if source == "-" {
        let mut text = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut text) {
            eprintln!("Error reading policy: {e}");
            return ExitCode::from(2);
        }
        text
    } else {
        match std::fs::read_to_string(&source) {
            Ok(text) => text,
            Err(e) => {
                // Go's wording: `open PATH: no such file or directory`.
                eprintln!(
                    "Error opening policy file: open {source}: {}",
                    io_reason(&e)
                );
                return ExitCode::from(2);
            }
        }
    };
    if let Err(e) = client
        .send(
            Method::PUT,
            &format!("sys/policies/acl/{formatted}"),
            Some(&json!({ "policy": rules })),
        )
        .await
    {
        return failed("Error uploading policy", &e);
    }
    if name != formatted {
        eprintln!("Policy name was converted from \"{name}\" to \"{formatted}\"");
    }
    println!("Success! Uploaded policy: {formatted}");
    ExitCode::SUCCESS
}

async fn delete(client: &Client, args: &[String]) -> ExitCode {
    if let Err(code) = check_count(args, 1, 1) {
        return code;
    }
    let name = args.concat().trim().to_lowercase();
    match client
        .send(Method::DELETE, &format!("sys/policies/acl/{name}"), None)
        .await
    {
        Ok(_) => {
            println!("Success! Deleted policy: {name}");
            ExitCode::SUCCESS
        }
        Err(e) => failed(format!("Error deleting {name}"), &e),
    }
}

/// An I/O error as Go's `os` package words it (`no such file or directory`).
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        std::io::ErrorKind::IsADirectory => "is a directory".to_owned(),
        _ => e.to_string(),
    }
}
