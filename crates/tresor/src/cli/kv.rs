//! `tresor kv …`: the KV helper commands, mapped to the KV v1 or v2 API by reading the mount's
//! `options.version` from `sys/internal/ui/mounts/:path`, as `vault kv` does.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::block_on;
use super::output::{print_json, print_table, scalar};
use crate::client::{Client, ClientArgs};

#[derive(Debug, Clone, clap::Args)]
pub struct KvTarget {
    /// The secret's path; with `-mount`, relative to that mount.
    path: String,
    /// The mount path (otherwise found from the path).
    #[arg(long = "mount")]
    mount: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KvCommand {
    /// Read a secret (latest, or `-version`).
    Get {
        #[command(flatten)]
        target: KvTarget,
        #[arg(long = "version")]
        version: Option<u64>,
        /// Print only this field's value.
        #[arg(long = "field")]
        field: Option<String>,
    },
    /// Write a secret from key=value pairs (`key=@file` reads a file).
    Put {
        #[command(flatten)]
        target: KvTarget,
        /// key=value pairs.
        pairs: Vec<String>,
        /// Check-and-set: the version the write expects (0: only if absent).
        #[arg(long = "cas")]
        cas: Option<i64>,
    },
    /// Merge key=value pairs into the latest version (KV v2).
    Patch {
        #[command(flatten)]
        target: KvTarget,
        pairs: Vec<String>,
        #[arg(long = "cas")]
        cas: Option<i64>,
    },
    /// Soft-delete the latest version, or `-versions`.
    Delete {
        #[command(flatten)]
        target: KvTarget,
        #[arg(long = "versions", value_delimiter = ',')]
        versions: Vec<u64>,
    },
    /// Restore soft-deleted versions (KV v2).
    Undelete {
        #[command(flatten)]
        target: KvTarget,
        #[arg(long = "versions", value_delimiter = ',', required = true)]
        versions: Vec<u64>,
    },
    /// Permanently destroy versions (KV v2).
    Destroy {
        #[command(flatten)]
        target: KvTarget,
        #[arg(long = "versions", value_delimiter = ',', required = true)]
        versions: Vec<u64>,
    },
    /// List keys under a path.
    List {
        #[command(flatten)]
        target: KvTarget,
    },
    /// Read, write or delete a secret's metadata (KV v2).
    Metadata {
        #[command(subcommand)]
        command: MetadataCommand,
    },
    /// Write version `-version` back as the newest version (KV v2).
    Rollback {
        #[command(flatten)]
        target: KvTarget,
        #[arg(long = "version", required = true)]
        version: u64,
    },
    /// Upgrade a KV v1 mount to v2 in place.
    EnableVersioning {
        /// The mount path.
        path: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum MetadataCommand {
    Get {
        #[command(flatten)]
        target: KvTarget,
    },
    Put {
        #[command(flatten)]
        target: KvTarget,
        #[arg(long = "max-versions")]
        max_versions: Option<u64>,
        #[arg(long = "cas-required")]
        cas_required: Option<bool>,
        #[arg(long = "delete-version-after")]
        delete_version_after: Option<String>,
        /// key=value, repeatable.
        #[arg(long = "custom-metadata")]
        custom_metadata: Vec<String>,
    },
    Delete {
        #[command(flatten)]
        target: KvTarget,
    },
}

/// Where a KV path lives: the mount, the path under it, and the KV version.
#[derive(Debug)]
struct Resolved {
    mount: String,
    rest: String,
    v2: bool,
}

impl Resolved {
    fn api(&self, section: &str) -> String {
        if self.v2 {
            format!("{}{section}/{}", self.mount, self.rest)
        } else {
            format!("{}{}", self.mount, self.rest)
        }
    }

    fn display(&self) -> String {
        format!("{}{}", self.mount, self.rest)
    }
}

async fn resolve(client: &Client, target: &KvTarget) -> Result<Resolved> {
    let full = match &target.mount {
        Some(m) => format!(
            "{}/{}",
            m.trim_matches('/'),
            target.path.trim_start_matches('/')
        ),
        None => target.path.trim_start_matches('/').to_owned(),
    };
    let info = client
        .call(Method::GET, &format!("sys/internal/ui/mounts/{full}"), None)
        .await?;
    let data = info.get("data").cloned().unwrap_or(Value::Null);
    let mount = data
        .get("path")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if mount.is_empty() {
        bail!("no KV mount found for {full}");
    }
    let v2 = data
        .get("options")
        .and_then(|o| o.get("version"))
        .and_then(Value::as_str)
        == Some("2");
    let rest = full.strip_prefix(&mount).unwrap_or_default().to_owned();
    Ok(Resolved { mount, rest, v2 })
}

/// Adds `options.cas` to a KV v2 write body when a check-and-set version was given.
fn with_cas(mut body: Value, cas: Option<i64>) -> Value {
    if let (Some(c), Some(obj)) = (cas, body.as_object_mut()) {
        obj.insert("options".into(), json!({ "cas": c }));
    }
    body
}

fn parse_pairs(pairs: &[String]) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for pair in pairs {
        let (k, v) = pair
            .split_once('=')
            .with_context(|| format!("expected key=value, got {pair:?}"))?;
        let value = match v.strip_prefix('@') {
            Some(file) => {
                std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?
            }
            None => v.to_owned(),
        };
        out.insert(k.to_owned(), Value::String(value));
    }
    Ok(out)
}

fn print_map(title: &str, map: &Map<String, Value>) {
    println!("{title}");
    let rows: Vec<(&str, String)> = map
        .iter()
        .map(|(k, v)| (k.as_str(), scalar(Some(v))))
        .collect();
    print_table(&rows);
}

pub fn run(command: KvCommand, args: &ClientArgs) -> Result<ExitCode> {
    let client = Client::new(args)?;
    let json_out = args.output_format() == super::Format::Json;
    block_on(async move { dispatch(&client, command, json_out).await })?
}

async fn dispatch(client: &Client, command: KvCommand, json_out: bool) -> Result<ExitCode> {
    match command {
        KvCommand::Get {
            target,
            version,
            field,
        } => {
            let kv = resolve(client, &target).await?;
            let mut path = kv.api("data");
            if let Some(v) = version {
                path.push_str(&format!("?version={v}"));
            }
            let reply = client.request(Method::GET, &path, None).await?;
            if reply.status == reqwest::StatusCode::NOT_FOUND
                && reply.body.get("data").is_none_or(Value::is_null)
            {
                eprintln!("No value found at {}", kv.api("data"));
                return Ok(ExitCode::from(2));
            }
            if !reply.status.is_success() && reply.status != reqwest::StatusCode::NOT_FOUND {
                bail!("{}", reply.error_text());
            }
            let data = reply.body.get("data").cloned().unwrap_or(Value::Null);
            let (secret, metadata) = if kv.v2 {
                (
                    data.get("data").cloned().unwrap_or(Value::Null),
                    data.get("metadata").cloned(),
                )
            } else {
                (data.clone(), None)
            };
            if let Some(f) = field {
                if !secret.is_object() {
                    bail!("No data found at {}", kv.api("data"));
                }
                let Some(value) = secret.get(&f) else {
                    // A local problem, not a failed request: exit 1 as vault does.
                    eprintln!("Field {f:?} not present in secret");
                    return Ok(ExitCode::from(1));
                };
                // Like `vault`, no trailing newline when the value is piped elsewhere.
                if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                    println!("{}", scalar(Some(value)));
                } else {
                    print!("{}", scalar(Some(value)));
                }
                return Ok(ExitCode::SUCCESS);
            }
            if json_out {
                print_json(&reply.body);
                return Ok(ExitCode::SUCCESS);
            }
            if let Some(Value::Object(m)) = metadata {
                print_secret_path(&kv.api("data"));
                print_map("======= Metadata =======", &m);
                println!();
            }
            match secret {
                Value::Object(m) => print_map("====== Data ======", &m),
                _ => println!("(version deleted or destroyed)"),
            }
            Ok(ExitCode::SUCCESS)
        }
        KvCommand::Put { target, pairs, cas } => {
            let kv = resolve(client, &target).await?;
            let data = parse_pairs(&pairs)?;
            let body = if kv.v2 {
                with_cas(json!({ "data": data }), cas)
            } else {
                Value::Object(data)
            };
            let reply = client
                .call(Method::PUT, &kv.api("data"), Some(&body))
                .await?;
            report_write(&kv, &reply, json_out);
            Ok(ExitCode::SUCCESS)
        }
        KvCommand::Patch { target, pairs, cas } => {
            let kv = resolve(client, &target).await?;
            if !kv.v2 {
                bail!("patch is only supported on KV v2 mounts");
            }
            let body = with_cas(json!({ "data": parse_pairs(&pairs)? }), cas);
            let reply = client
                .request_as(
                    Method::PATCH,
                    &kv.api("data"),
                    Some(&body),
                    Some("application/merge-patch+json"),
                )
                .await?;
            if !reply.status.is_success() {
                bail!("{}", reply.error_text());
            }
            report_write(&kv, &reply.body, json_out);
            Ok(ExitCode::SUCCESS)
        }
        KvCommand::Delete { target, versions } => {
            let kv = resolve(client, &target).await?;
            if versions.is_empty() || !kv.v2 {
                client.call(Method::DELETE, &kv.api("data"), None).await?;
            } else {
                client
                    .call(
                        Method::PUT,
                        &kv.api("delete"),
                        Some(&json!({ "versions": versions })),
                    )
                    .await?;
            }
            println!("Success! Data deleted (if it existed) at: {}", kv.display());
            Ok(ExitCode::SUCCESS)
        }
        KvCommand::Undelete { target, versions } => {
            versions_op(client, &target, &versions, "undelete").await
        }
        KvCommand::Destroy { target, versions } => {
            versions_op(client, &target, &versions, "destroy").await
        }
        KvCommand::List { target } => {
            let kv = resolve(client, &target).await?;
            let reply = client
                .request(Method::from_bytes(b"LIST")?, &kv.api("metadata"), None)
                .await?;
            if reply.status == reqwest::StatusCode::NOT_FOUND {
                eprintln!("No value found at {}", kv.api("metadata"));
                return Ok(ExitCode::from(2));
            }
            if !reply.status.is_success() {
                bail!("{}", reply.error_text());
            }
            if json_out {
                print_json(
                    reply
                        .body
                        .get("data")
                        .and_then(|d| d.get("keys"))
                        .unwrap_or(&Value::Null),
                );
            } else {
                println!("Keys\n----");
                for k in reply
                    .body
                    .pointer("/data/keys")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    println!("{}", scalar(Some(k)));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        KvCommand::Metadata { command } => metadata(client, command, json_out).await,
        KvCommand::Rollback { target, version } => {
            let kv = resolve(client, &target).await?;
            if !kv.v2 {
                bail!("rollback is only supported on KV v2 mounts");
            }
            let meta = client.call(Method::GET, &kv.api("metadata"), None).await?;
            let current = meta
                .pointer("/data/current_version")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let old = client
                .request(
                    Method::GET,
                    &format!("{}?version={version}", kv.api("data")),
                    None,
                )
                .await?;
            let data = old
                .body
                .pointer("/data/data")
                .cloned()
                .unwrap_or(Value::Null);
            if !data.is_object() {
                if old.body.pointer("/data/metadata").is_some() {
                    bail!("Cannot roll back to a version that has been deleted");
                }
                if !old.status.is_success() {
                    bail!("{}", old.error_text());
                }
                bail!("version {version} has no data: cannot roll back to it");
            }
            let body = json!({ "data": data, "options": { "cas": current } });
            let reply = client
                .call(Method::PUT, &kv.api("data"), Some(&body))
                .await?;
            report_write(&kv, &reply, json_out);
            Ok(ExitCode::SUCCESS)
        }
        KvCommand::EnableVersioning { path } => {
            let mount = path.trim_matches('/');
            client
                .call(
                    Method::PUT,
                    &format!("sys/mounts/{mount}/tune"),
                    Some(&json!({ "options": { "version": "2" } })),
                )
                .await?;
            println!("Success! Tuned the secrets engine at: {mount}/");
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn versions_op(
    client: &Client,
    target: &KvTarget,
    versions: &[u64],
    section: &str,
) -> Result<ExitCode> {
    let kv = resolve(client, target).await?;
    if !kv.v2 {
        bail!("{section} is only supported on KV v2 mounts");
    }
    client
        .call(
            Method::PUT,
            &kv.api(section),
            Some(&json!({ "versions": versions })),
        )
        .await?;
    println!("Success! Data written to: {}", kv.api(section));
    Ok(ExitCode::SUCCESS)
}

/// Go's `padEqualSigns`: the header centred in `=` over the width of what follows it.
fn pad_equal_signs(header: &str, width: usize) -> String {
    let padding = ((width.saturating_sub(header.len())) / 2)
        .saturating_sub(1)
        .max(1);
    let side = "=".repeat(padding);
    format!("{side} {header} {side}")
}

/// The `Secret Path` section of `kv get|put` on a v2 mount, as `vault kv` prints it.
fn print_secret_path(path: &str) {
    println!("{}\n{path}\n", pad_equal_signs("Secret Path", path.len()));
}

fn report_write(kv: &Resolved, reply: &Value, json_out: bool) {
    if json_out {
        print_json(reply);
        return;
    }
    match reply.get("data") {
        Some(Value::Object(m)) if kv.v2 => {
            print_secret_path(&kv.api("data"));
            print_map("======= Metadata =======", m);
        }
        _ => println!("Success! Data written to: {}", kv.display()),
    }
}

async fn metadata(client: &Client, command: MetadataCommand, json_out: bool) -> Result<ExitCode> {
    match command {
        MetadataCommand::Get { target } => {
            let kv = resolve(client, &target).await?;
            let reply = client
                .request(Method::GET, &kv.api("metadata"), None)
                .await?;
            if reply.status == reqwest::StatusCode::NOT_FOUND {
                eprintln!("No value found at {}", kv.api("metadata"));
                return Ok(ExitCode::from(2));
            }
            if !reply.status.is_success() {
                bail!("{}", reply.error_text());
            }
            if json_out {
                print_json(&reply.body);
            } else if let Some(Value::Object(m)) = reply.body.get("data") {
                print_map("====== Metadata ======", m);
            }
            Ok(ExitCode::SUCCESS)
        }
        MetadataCommand::Put {
            target,
            max_versions,
            cas_required,
            delete_version_after,
            custom_metadata,
        } => {
            let kv = resolve(client, &target).await?;
            let mut body = Map::new();
            if let Some(v) = max_versions {
                body.insert("max_versions".into(), json!(v));
            }
            if let Some(v) = cas_required {
                body.insert("cas_required".into(), json!(v));
            }
            if let Some(v) = delete_version_after {
                body.insert("delete_version_after".into(), json!(v));
            }
            if !custom_metadata.is_empty() {
                body.insert(
                    "custom_metadata".into(),
                    Value::Object(parse_pairs(&custom_metadata)?),
                );
            }
            client
                .call(Method::PUT, &kv.api("metadata"), Some(&Value::Object(body)))
                .await?;
            println!("Success! Data written to: {}", kv.api("metadata"));
            Ok(ExitCode::SUCCESS)
        }
        MetadataCommand::Delete { target } => {
            let kv = resolve(client, &target).await?;
            client
                .call(Method::DELETE, &kv.api("metadata"), None)
                .await?;
            println!(
                "Success! Data deleted (if it existed) at: {}",
                kv.api("metadata")
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
