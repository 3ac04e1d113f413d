//! `tresor token create|lookup|renew|revoke|capabilities`, as `vault token …`: the same
//! endpoints, request bodies, output and exit codes.

use std::process::ExitCode;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::flags::{FieldArg, check_count, duration, failed, go_duration, key_values, usage};
use super::output::{Format, invalid_format, print_structured};
use super::secret::{api_secret, print_field, print_secret};
use crate::client::{Client, ClientArgs};

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant, reason = "parsed once per process")]
pub enum TokenCommand {
    /// Create a token (a child of the calling token unless -orphan).
    Create(CreateArgs),
    /// Show a token's properties (the caller's own without an argument).
    Lookup {
        /// The argument is an accessor, not a token.
        #[arg(long = "accessor", action = clap::ArgAction::Set, value_parser = super::flags::go_bool, num_args = 0..=1,
              require_equals = true, default_missing_value = "true", default_value = "false")]
        accessor: bool,
        #[command(flatten)]
        field: FieldArg,
        args: Vec<String>,
    },
    /// Renew a token's lease (the caller's own without an argument).
    Renew {
        #[arg(long = "accessor", action = clap::ArgAction::Set, value_parser = super::flags::go_bool, num_args = 0..=1,
              require_equals = true, default_missing_value = "true", default_value = "false")]
        accessor: bool,
        /// Requested extension (a duration); the server may give less.
        #[arg(long = "increment", short = 'i', value_parser = duration)]
        increment: Option<u64>,
        args: Vec<String>,
    },
    /// Revoke a token and its children (-mode=orphan keeps the children).
    Revoke {
        #[arg(long = "accessor", action = clap::ArgAction::Set, value_parser = super::flags::go_bool, num_args = 0..=1,
              require_equals = true, default_missing_value = "true", default_value = "false")]
        accessor: bool,
        /// Revoke the calling token.
        #[arg(long = "self", action = clap::ArgAction::Set, value_parser = super::flags::go_bool, num_args = 0..=1,
              require_equals = true, default_missing_value = "true", default_value = "false")]
        self_: bool,
        /// `orphan` (children survive) or `path` (every token created under a path prefix).
        #[arg(long = "mode", default_value = "")]
        mode: String,
        args: Vec<String>,
    },
    /// Show a token's capabilities on a path (the caller's own with one argument).
    Capabilities { args: Vec<String> },
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The token value (root only; otherwise random).
    #[arg(long = "id")]
    id: Option<String>,
    #[arg(long = "display-name")]
    display_name: Option<String>,
    #[arg(long = "ttl", value_parser = duration)]
    ttl: Option<u64>,
    #[arg(long = "explicit-max-ttl", value_parser = duration)]
    explicit_max_ttl: Option<u64>,
    #[arg(long = "period", value_parser = duration)]
    period: Option<u64>,
    #[arg(long = "renewable", action = clap::ArgAction::Set, value_parser = super::flags::go_bool, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", default_value = "true")]
    renewable: bool,
    #[arg(long = "orphan", action = clap::ArgAction::Set, value_parser = super::flags::go_bool, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", default_value = "false")]
    orphan: bool,
    #[arg(long = "no-default-policy", action = clap::ArgAction::Set, value_parser = super::flags::go_bool, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", default_value = "false")]
    no_default_policy: bool,
    #[arg(long = "use-limit", default_value_t = 0, value_parser = super::flags::go_int)]
    use_limit: i64,
    /// Create the token from this token role.
    #[arg(long = "role")]
    role: Option<String>,
    /// `service` or `batch`.
    #[arg(long = "type")]
    token_type: Option<String>,
    /// Policy to attach; repeatable, or comma-separated.
    #[arg(long = "policy", value_delimiter = ',')]
    policies: Vec<String>,
    /// key=value metadata; repeatable.
    #[arg(long = "metadata")]
    metadata: Vec<String>,
    #[arg(long = "entity-alias")]
    entity_alias: Option<String>,
    #[command(flatten)]
    field: FieldArg,
    args: Vec<String>,
}

pub fn run(command: TokenCommand, args: &ClientArgs) -> ExitCode {
    super::with_client(args, true, |client, format| async move {
        dispatch(&client, command, &format).await
    })
}

async fn dispatch(client: &Client, command: TokenCommand, format: &Format) -> ExitCode {
    match command {
        TokenCommand::Create(a) => create(client, a, format).await,
        TokenCommand::Lookup {
            accessor,
            field,
            args,
        } => lookup(client, accessor, field.field, &args, format).await,
        TokenCommand::Renew {
            accessor,
            increment,
            args,
        } => renew(client, accessor, increment.unwrap_or(0), &args, format).await,
        TokenCommand::Revoke {
            accessor,
            self_,
            mode,
            args,
        } => revoke(client, accessor, self_, &mode, &args).await,
        TokenCommand::Capabilities { args } => capabilities(client, &args, format).await,
    }
}

/// A secret answer printed whole or as one `-field`.
fn show(format: &Format, body: &Value, field: Option<&str>) -> ExitCode {
    let secret = api_secret(body);
    match field {
        Some(f) => print_field(format, &secret, f),
        None => print_secret(format, &secret),
    }
}

async fn create(client: &Client, a: CreateArgs, format: &Format) -> ExitCode {
    if let Err(code) = check_count(&a.args, 0, 0) {
        return code;
    }
    let metadata = match key_values(&a.metadata, "metadata") {
        Ok(m) => m,
        Err(code) => return code,
    };
    // The body Vault's client sends (`api.TokenCreateRequest`, empty fields omitted).
    let mut body = Map::new();
    if let Some(id) = a.id.filter(|s| !s.is_empty()) {
        body.insert("id".into(), json!(id));
    }
    let policies: Vec<String> = a.policies.into_iter().filter(|p| !p.is_empty()).collect();
    if !policies.is_empty() {
        body.insert("policies".into(), json!(policies));
    }
    if !metadata.is_empty() {
        body.insert("meta".into(), Value::Object(metadata));
    }
    body.insert("ttl".into(), json!(go_duration(a.ttl.unwrap_or(0))));
    body.insert(
        "explicit_max_ttl".into(),
        json!(go_duration(a.explicit_max_ttl.unwrap_or(0))),
    );
    body.insert("period".into(), json!(go_duration(a.period.unwrap_or(0))));
    if a.orphan {
        body.insert("no_parent".into(), json!(true));
    }
    if a.no_default_policy {
        body.insert("no_default_policy".into(), json!(true));
    }
    body.insert(
        "display_name".into(),
        json!(a.display_name.unwrap_or_default()),
    );
    body.insert("num_uses".into(), json!(a.use_limit));
    body.insert("renewable".into(), json!(a.renewable));
    body.insert("type".into(), json!(a.token_type.unwrap_or_default()));
    body.insert(
        "entity_alias".into(),
        json!(a.entity_alias.unwrap_or_default()),
    );
    let path = match a.role.filter(|r| !r.is_empty()) {
        Some(role) => format!("auth/token/create/{role}"),
        None => "auth/token/create".to_owned(),
    };
    match client
        .send(Method::POST, &path, Some(&Value::Object(body)))
        .await
    {
        Ok(reply) => show(format, &reply.body, a.field.field.as_deref()),
        Err(e) => failed("Error creating token", &e),
    }
}

async fn lookup(
    client: &Client,
    accessor: bool,
    field: Option<String>,
    args: &[String],
    format: &Format,
) -> ExitCode {
    let target = if accessor {
        if args.is_empty() {
            return usage(format!(
                "Not enough arguments with -accessor (expected 1, got {})",
                args.len()
            ));
        }
        if args.len() > 1 {
            return usage(format!(
                "Too many arguments with -accessor (expected 1, got {})",
                args.len()
            ));
        }
        args.first().cloned()
    } else {
        if args.len() > 1 {
            return usage(format!(
                "Too many arguments (expected 0-1, got {})",
                args.len()
            ));
        }
        args.first().cloned()
    };
    let result = match (target, accessor) {
        (None, _) => {
            client
                .send(Method::GET, "auth/token/lookup-self", None)
                .await
        }
        (Some(a), true) => {
            client
                .send(
                    Method::POST,
                    "auth/token/lookup-accessor",
                    Some(&json!({ "accessor": a.trim() })),
                )
                .await
        }
        (Some(t), false) => {
            client
                .send(
                    Method::POST,
                    "auth/token/lookup",
                    Some(&json!({ "token": t.trim() })),
                )
                .await
        }
    };
    match result {
        Ok(reply) => show(format, &reply.body, field.as_deref()),
        Err(e) => failed("Error looking up token", &e),
    }
}

async fn renew(
    client: &Client,
    accessor: bool,
    increment: u64,
    args: &[String],
    format: &Format,
) -> ExitCode {
    if args.len() > 1 {
        return usage(format!(
            "Too many arguments (expected 1, got {})",
            args.len()
        ));
    }
    let token = args
        .first()
        .map(|t| t.trim().to_owned())
        .unwrap_or_default();
    let result = if token.is_empty() {
        client
            .send(
                Method::PUT,
                "auth/token/renew-self",
                Some(&json!({ "increment": increment })),
            )
            .await
    } else if accessor {
        client
            .send(
                Method::POST,
                "auth/token/renew-accessor",
                Some(&json!({ "accessor": token, "increment": increment })),
            )
            .await
    } else {
        client
            .send(
                Method::PUT,
                "auth/token/renew",
                Some(&json!({ "token": token, "increment": increment })),
            )
            .await
    };
    match result {
        Ok(reply) => show(format, &reply.body, None),
        Err(e) => failed("Error renewing token", &e),
    }
}

async fn revoke(
    client: &Client,
    accessor: bool,
    self_: bool,
    mode: &str,
    args: &[String],
) -> ExitCode {
    if !matches!(mode, "" | "orphan" | "path") {
        return usage(format!("Invalid mode: {mode}"));
    }
    if self_ && !args.is_empty() {
        return usage(format!(
            "Too many arguments with -self (expected 0, got {})",
            args.len()
        ));
    }
    if !self_ && args.len() > 1 {
        return usage(format!(
            "Too many arguments (expected 1 or -self, got {})",
            args.len()
        ));
    }
    if !self_ && args.is_empty() {
        return usage(format!(
            "Not enough arguments (expected 1 or -self, got {})",
            args.len()
        ));
    }
    if self_ && accessor {
        return usage("Cannot use -self with -accessor!");
    }
    if self_ && !mode.is_empty() {
        return usage("Cannot use -self with -mode!");
    }
    if accessor && mode == "orphan" {
        return usage("Cannot use -accessor with -mode=orphan!");
    }
    if accessor && mode == "path" {
        return usage("Cannot use -accessor with -mode=path!");
    }
    let token = args
        .first()
        .map(|t| t.trim().to_owned())
        .unwrap_or_default();
    // `-self` revokes the token on the server only: like Vault, the token helper's file is
    // left alone (the next command simply fails with a 403).
    let result = match (self_, accessor, mode) {
        (true, _, _) => {
            client
                .send(Method::PUT, "auth/token/revoke-self", None)
                .await
        }
        (false, true, _) => {
            client
                .send(
                    Method::POST,
                    "auth/token/revoke-accessor",
                    Some(&json!({ "accessor": token })),
                )
                .await
        }
        (false, false, "orphan") => {
            client
                .send(
                    Method::PUT,
                    "auth/token/revoke-orphan",
                    Some(&json!({ "token": token })),
                )
                .await
        }
        (false, false, "path") => {
            client
                .send(
                    Method::PUT,
                    &format!("sys/leases/revoke-prefix/{token}"),
                    None,
                )
                .await
        }
        (false, false, _) => {
            client
                .send(
                    Method::PUT,
                    "auth/token/revoke",
                    Some(&json!({ "token": token })),
                )
                .await
        }
    };
    match result {
        Ok(_) => {
            println!("Success! Revoked token (if it existed)");
            ExitCode::SUCCESS
        }
        Err(e) => failed("Error revoking token", &e),
    }
}

async fn capabilities(client: &Client, args: &[String], format: &Format) -> ExitCode {
    if args.is_empty() {
        return usage("Not enough arguments (expected 1-2, got 0)");
    }
    if args.len() > 2 {
        return usage(format!(
            "Too many arguments (expected 1-2, got {})",
            args.len()
        ));
    }
    let (token, path) = match args {
        [path] => (client.token().unwrap_or_default().to_owned(), path.clone()),
        [token, path] => (token.clone(), path.clone()),
        _ => return usage("Not enough arguments (expected 1-2, got 0)"),
    };
    // Vault's client asks `-self` whenever the token is its own.
    let endpoint = if Some(token.as_str()) == client.token() {
        "sys/capabilities-self"
    } else {
        "sys/capabilities"
    };
    let body = json!({ "token": token, "path": path });
    let reply = match client.send(Method::POST, endpoint, Some(&body)).await {
        Ok(r) => r,
        Err(e) => return failed("Error listing capabilities", &e),
    };
    let data = reply.body.get("data").unwrap_or(&reply.body);
    let list = data
        .get(&path)
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .or_else(|| data.get("capabilities").and_then(Value::as_array));
    let Some(list) = list else {
        return usage("No capabilities found");
    };
    let mut caps: Vec<String> = list
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    match format {
        Format::Table => {
            caps.sort();
            println!("{}", caps.join(", "));
            ExitCode::SUCCESS
        }
        Format::Invalid(name) => invalid_format(name),
        other => print_structured(other, &json!(caps)),
    }
}
