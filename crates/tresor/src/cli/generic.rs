//! `tresor read|write|list|delete PATH`: raw access to any API path, as `vault read` etc.,
//! and `tresor unwrap [TOKEN]`,
//! with Vault's output (the Go client's secret shape, `-field`, `-format`) and exit codes.

use std::process::ExitCode;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::flags::{check_count, failed, usage};
use super::output::{Format, invalid_format, print_structured, print_warnings, table};
use super::secret::{api_secret, print_field, print_secret};
use crate::client::{Client, ClientArgs};

#[derive(Debug)]
pub enum Generic {
    Read {
        args: Vec<String>,
        field: Option<String>,
    },
    Write {
        args: Vec<String>,
        force: bool,
        field: Option<String>,
    },
    List(Vec<String>),
    Delete(Vec<String>),
    /// `unwrap [TOKEN]`: the token as an argument, or the client's own token.
    Unwrap {
        args: Vec<String>,
        field: Option<String>,
    },
}

pub fn run(command: Generic, args: &ClientArgs) -> ExitCode {
    super::with_client(args, true, |client, format| async move {
        dispatch(&client, command, &format).await
    })
}

/// Vault's `sanitizePath`: no leading or trailing slash.
fn sanitize(path: &str) -> String {
    path.trim().trim_matches('/').to_owned()
}

async fn dispatch(client: &Client, command: Generic, format: &Format) -> ExitCode {
    match command {
        Generic::Unwrap { args, field } => {
            if let Err(code) = check_count(&args, 0, 1) {
                return code;
            }
            let body = args.first().map(|t| json!({"token": t}));
            let reply = match client
                .send(Method::PUT, "sys/wrapping/unwrap", body.as_ref())
                .await
            {
                Ok(r) => r,
                Err(e) => return failed("Error unwrapping".to_owned(), &e),
            };
            if reply.body.is_null() {
                eprintln!("Successfully unwrapped. There was no data in the wrapped secret.");
                return ExitCode::SUCCESS;
            }
            let secret = api_secret(&reply.body);
            match field {
                Some(f) => print_field(format, &secret, &f),
                None => print_secret(format, &secret),
            }
        }
        Generic::Read { args, field } => {
            // Vault passes further arguments as query data; Tresor's endpoints take none.
            if let Err(code) = check_count(&args, 1, 1) {
                return code;
            }
            let path = sanitize(&args.concat());
            let reply = match client.request(Method::GET, &path, None).await {
                Ok(r) => r,
                Err(e) => return failed(format!("Error reading {path}"), &e),
            };
            // A 404 is "nothing there" unless it carries data or warnings (Vault's client).
            if reply.status == StatusCode::NOT_FOUND && !carries_something(&reply.body) {
                eprintln!("No value found at {path}");
                return ExitCode::from(2);
            }
            if reply.status != StatusCode::NOT_FOUND
                && let Some(e) = reply.api_error()
            {
                return failed(format!("Error reading {path}"), &e.into());
            }
            if reply.body.is_null() {
                eprintln!("No value found at {path}");
                return ExitCode::from(2);
            }
            let secret = api_secret(&reply.body);
            match field {
                Some(f) => print_field(format, &secret, &f),
                None => print_secret(format, &secret),
            }
        }
        Generic::Write { args, force, field } => {
            let Some((path, pairs)) = args.split_first() else {
                return usage("Not enough arguments (expected 1, got 0)");
            };
            if pairs.is_empty() && !force {
                return usage("Must supply data or use -force");
            }
            let path = sanitize(path);
            let data = match super::args_data::parse(pairs, &mut std::io::stdin()) {
                Ok(d) => d,
                Err(e) => return usage(format!("Failed to parse K=V data: {e}")),
            };
            let reply = match client
                .send(Method::PUT, &path, Some(&Value::Object(data)))
                .await
            {
                Ok(r) => r,
                Err(e) => return failed(format!("Error writing data to {path}"), &e),
            };
            if reply.body.is_null() {
                if format.is_table() {
                    println!("Success! Data written to: {path}");
                }
                return ExitCode::SUCCESS;
            }
            let secret = api_secret(&reply.body);
            match field {
                Some(f) => print_field(format, &secret, &f),
                None => print_secret(format, &secret),
            }
        }
        Generic::List(args) => {
            if let Err(code) = check_count(&args, 1, 1) {
                return code;
            }
            let path = sanitize(&args.concat());
            let reply = match client
                .request(
                    Method::from_bytes(b"LIST").unwrap_or(Method::GET),
                    &path,
                    None,
                )
                .await
            {
                Ok(r) => r,
                Err(e) => return failed(format!("Error listing {path}"), &e),
            };
            if reply.status != StatusCode::NOT_FOUND
                && let Some(e) = reply.api_error()
            {
                return failed(format!("Error listing {path}"), &e.into());
            }
            let keys = reply
                .body
                .pointer("/data/keys")
                .and_then(Value::as_array)
                .cloned();
            let Some(mut keys) = keys.filter(|_| reply.status != StatusCode::NOT_FOUND) else {
                if !format.is_table() {
                    print_structured(format, &json!({}));
                } else {
                    eprintln!("No value found at {path}");
                }
                return ExitCode::from(2);
            };
            match format {
                Format::Table => {
                    print_warnings(reply.body.get("warnings"));
                    keys.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                    if !keys.is_empty() {
                        let mut lines = vec!["Keys".to_owned()];
                        lines.extend(
                            keys.iter()
                                .map(|k| k.as_str().map_or_else(|| k.to_string(), str::to_owned)),
                        );
                        println!("{}", table(&lines, '♨'));
                    }
                    ExitCode::SUCCESS
                }
                Format::Invalid(name) => invalid_format(name),
                other => print_structured(other, &Value::Array(keys)),
            }
        }
        Generic::Delete(args) => {
            let Some(path) = args.first() else {
                return usage("Not enough arguments (expected at least 1, got 0)");
            };
            let path = sanitize(path);
            match client.send(Method::DELETE, &path, None).await {
                Ok(reply) if !reply.body.is_null() => {
                    print_secret(format, &api_secret(&reply.body))
                }
                Ok(_) => {
                    println!("Success! Data deleted (if it existed) at: {path}");
                    ExitCode::SUCCESS
                }
                Err(e) => failed(format!("Error deleting {path}"), &e),
            }
        }
    }
}

fn carries_something(body: &Value) -> bool {
    body.get("data")
        .is_some_and(|d| d.as_object().is_some_and(|m| !m.is_empty()))
        || body
            .get("warnings")
            .is_some_and(|w| w.as_array().is_some_and(|a| !a.is_empty()))
}
