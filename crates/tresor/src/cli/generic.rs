//! `tresor read|write|list|delete PATH`: raw access to any API path, as `vault read` etc.

use std::process::ExitCode;

use anyhow::{Context, Result};
use reqwest::Method;
use serde_json::{Map, Value};

use super::block_on;
use super::output::{print_json, print_table, scalar};
use crate::client::{Client, ClientArgs};

#[derive(Debug)]
pub enum Generic {
    Read(String),
    Write {
        path: String,
        pairs: Vec<String>,
        force: bool,
    },
    List(String),
    Delete(String),
}

pub fn run(command: Generic, args: &ClientArgs) -> Result<ExitCode> {
    let client = Client::new(args)?;
    let json_out = args.format == "json";
    block_on(async move {
        let (method, path, body) = match &command {
            Generic::Read(p) => (Method::GET, p.clone(), None),
            Generic::List(p) => (Method::from_bytes(b"LIST")?, p.clone(), None),
            Generic::Delete(p) => (Method::DELETE, p.clone(), None),
            Generic::Write { path, pairs, force } => {
                if pairs.is_empty() && !force {
                    anyhow::bail!("must supply data or use -force");
                }
                let mut data = Map::new();
                for pair in pairs {
                    let (k, v) = pair
                        .split_once('=')
                        .with_context(|| format!("expected key=value, got {pair:?}"))?;
                    data.insert(k.to_owned(), Value::String(v.to_owned()));
                }
                (Method::PUT, path.clone(), Some(Value::Object(data)))
            }
        };
        let reply = client.request(method, &path, body.as_ref()).await?;
        if reply.status == reqwest::StatusCode::NOT_FOUND {
            eprintln!("No value found at {path}");
            return Ok(ExitCode::from(2));
        }
        if !reply.status.is_success() {
            anyhow::bail!("{}", reply.error_text());
        }
        if reply.body.is_null() {
            println!("Success! Data written to: {path}");
            return Ok(ExitCode::SUCCESS);
        }
        if json_out {
            print_json(&reply.body);
            return Ok(ExitCode::SUCCESS);
        }
        let mut rows: Vec<(String, String)> = Vec::new();
        if let Some(Value::Object(auth)) = reply.body.get("auth") {
            for (k, v) in auth {
                rows.push((
                    format!("token_{k}").replace("token_client_token", "token"),
                    scalar(Some(v)),
                ));
            }
        }
        if let Some(Value::Object(data)) = reply.body.get("data") {
            for (k, v) in data {
                rows.push((k.clone(), scalar(Some(v))));
            }
        }
        let rows: Vec<(&str, String)> = rows.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        print_table(&rows);
        Ok(ExitCode::SUCCESS)
    })?
}
