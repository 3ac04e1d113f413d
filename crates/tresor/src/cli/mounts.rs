//! `tresor secrets enable|disable|list|tune|move` and `tresor auth enable|disable|list|tune`,
//! as `vault secrets …`/`vault auth …`: secrets engines live under `sys/mounts`, auth methods
//! under `sys/auth`; both tables share the mount record, so both commands share this code.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::flags::{check_count, duration, failed, go_duration, key_values, mount_path, usage};
use super::output::{Format, invalid_format, print_structured, table};
use crate::client::{Client, ClientArgs};

/// Flags `enable` shares between secrets engines and auth methods.
#[derive(Debug, clap::Args)]
pub struct EnableArgs {
    #[arg(long = "description", default_value = "")]
    description: String,
    /// Where to mount (default: the type's name).
    #[arg(long = "path", default_value = "")]
    path: String,
    #[arg(long = "default-lease-ttl", value_parser = duration)]
    default_lease_ttl: Option<u64>,
    #[arg(long = "max-lease-ttl", value_parser = duration)]
    max_lease_ttl: Option<u64>,
    #[command(flatten)]
    lists: ListFlags,
    #[arg(long = "listing-visibility")]
    listing_visibility: Option<String>,
    #[arg(long = "plugin-name", default_value = "")]
    plugin_name: String,
    #[arg(long = "plugin-version")]
    plugin_version: Option<String>,
    /// key=value mount options; repeatable.
    #[arg(long = "options")]
    options: Vec<String>,
    #[arg(long = "local", action = clap::ArgAction::Set, value_parser = super::flags::go_bool, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", default_value = "false")]
    local: bool,
    #[arg(long = "seal-wrap", action = clap::ArgAction::Set, value_parser = super::flags::go_bool, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", default_value = "false")]
    seal_wrap: bool,
    #[arg(long = "external-entropy-access", action = clap::ArgAction::Set, value_parser = super::flags::go_bool, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", default_value = "false")]
    external_entropy_access: bool,
    /// Shorthand for -options=version=N (KV).
    #[arg(long = "version", default_value_t = 0, value_parser = super::flags::go_int)]
    version: i64,
    /// Secrets engines only.
    #[arg(long = "force-no-cache", action = clap::ArgAction::Set, value_parser = super::flags::go_bool, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", default_value = "false")]
    force_no_cache: bool,
    /// Auth methods only: `service`, `batch`, `default-service`, `default-batch`.
    #[arg(long = "token-type")]
    token_type: Option<String>,
    args: Vec<String>,
}

/// Flags `tune` shares between secrets engines and auth methods.
#[derive(Debug, clap::Args)]
pub struct TuneArgs {
    /// A duration, or `system` for the server's default.
    #[arg(long = "default-lease-ttl")]
    default_lease_ttl: Option<String>,
    #[arg(long = "max-lease-ttl")]
    max_lease_ttl: Option<String>,
    #[arg(long = "description")]
    description: Option<String>,
    #[command(flatten)]
    lists: ListFlags,
    #[arg(long = "listing-visibility")]
    listing_visibility: Option<String>,
    #[arg(long = "plugin-version")]
    plugin_version: Option<String>,
    #[arg(long = "options")]
    options: Vec<String>,
    #[arg(long = "version", default_value_t = 0, value_parser = super::flags::go_int)]
    version: i64,
    /// Auth methods only.
    #[arg(long = "token-type")]
    token_type: Option<String>,
    args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Enable a secrets engine: `secrets enable [-path=P] TYPE`.
    Enable(EnableArgs),
    /// Disable the secrets engine at a path (its data is deleted).
    Disable { args: Vec<String> },
    /// List the enabled secrets engines.
    List(ListArgs),
    /// Change a secrets engine's configuration.
    Tune(TuneArgs),
    /// Move a secrets engine to a new path: `secrets move SRC DST`.
    Move { args: Vec<String> },
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Enable an auth method: `auth enable [-path=P] TYPE`.
    Enable(EnableArgs),
    /// Disable the auth method at a path (its tokens are revoked).
    Disable { args: Vec<String> },
    /// List the enabled auth methods.
    List(ListArgs),
    /// Change an auth method's configuration.
    Tune(TuneArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Show every column.
    #[arg(long = "detailed", action = clap::ArgAction::Set, value_parser = super::flags::go_bool, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", default_value = "false")]
    detailed: bool,
    args: Vec<String>,
}

/// Which table a command works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Secrets,
    Auth,
}

pub fn run_secrets(command: SecretsCommand, args: &ClientArgs) -> ExitCode {
    super::with_client(args, true, |client, format| async move {
        match command {
            SecretsCommand::Enable(a) => enable(&client, Table::Secrets, a).await,
            SecretsCommand::Disable { args } => disable(&client, Table::Secrets, &args).await,
            SecretsCommand::List(a) => list(&client, Table::Secrets, a, &format).await,
            SecretsCommand::Tune(a) => tune(&client, Table::Secrets, a).await,
            SecretsCommand::Move { args } => move_mount(&client, &args).await,
        }
    })
}

pub fn run_auth(command: AuthCommand, args: &ClientArgs) -> ExitCode {
    super::with_client(args, true, |client, format| async move {
        match command {
            AuthCommand::Enable(a) => enable(&client, Table::Auth, a).await,
            AuthCommand::Disable { args } => disable(&client, Table::Auth, &args).await,
            AuthCommand::List(a) => list(&client, Table::Auth, a, &format).await,
            AuthCommand::Tune(a) => tune(&client, Table::Auth, a).await,
        }
    })
}

/// The list flags `enable` and `tune` share; each is sent only when given.
#[derive(Debug, clap::Args)]
struct ListFlags {
    #[arg(long = "audit-non-hmac-request-keys")]
    audit_non_hmac_request_keys: Vec<String>,
    #[arg(long = "audit-non-hmac-response-keys")]
    audit_non_hmac_response_keys: Vec<String>,
    #[arg(long = "passthrough-request-headers")]
    passthrough_request_headers: Vec<String>,
    #[arg(long = "allowed-response-headers")]
    allowed_response_headers: Vec<String>,
}

impl ListFlags {
    fn insert_into(&self, body: &mut Map<String, Value>) {
        for (key, list) in [
            (
                "audit_non_hmac_request_keys",
                &self.audit_non_hmac_request_keys,
            ),
            (
                "audit_non_hmac_response_keys",
                &self.audit_non_hmac_response_keys,
            ),
            (
                "passthrough_request_headers",
                &self.passthrough_request_headers,
            ),
            ("allowed_response_headers", &self.allowed_response_headers),
        ] {
            if !list.is_empty() {
                body.insert(key.into(), string_list(list));
            }
        }
    }
}

fn string_list(items: &[String]) -> Value {
    json!(
        items
            .iter()
            .flat_map(|i| i.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
    )
}

async fn enable(client: &Client, table: Table, a: EnableArgs) -> ExitCode {
    if let Err(code) = check_count(&a.args, 1, 1) {
        return code;
    }
    let mut engine_type = a.args.concat().trim().to_owned();
    if engine_type == "plugin" {
        engine_type = a.plugin_name.clone();
    }
    let path = if a.path.is_empty() {
        engine_type.clone()
    } else {
        a.path.clone()
    };
    let path = mount_path(&path);
    let mut options = match key_values(&a.options, "options") {
        Ok(o) => o,
        Err(code) => return code,
    };
    if a.version > 0 {
        options.insert("version".into(), json!(a.version.to_string()));
    }
    // The body Vault's client sends (`api.MountInput`).
    let mut config = Map::new();
    config.insert("options".into(), Value::Null);
    config.insert(
        "default_lease_ttl".into(),
        json!(go_duration(a.default_lease_ttl.unwrap_or(0))),
    );
    config.insert(
        "max_lease_ttl".into(),
        json!(go_duration(a.max_lease_ttl.unwrap_or(0))),
    );
    config.insert("force_no_cache".into(), json!(a.force_no_cache));
    a.lists.insert_into(&mut config);
    if let Some(v) = &a.listing_visibility {
        config.insert("listing_visibility".into(), json!(v));
    }
    if let Some(v) = &a.plugin_version {
        config.insert("plugin_version".into(), json!(v));
    }
    if let (Table::Auth, Some(t)) = (table, &a.token_type) {
        config.insert("token_type".into(), json!(t));
    }
    let body = json!({
        "type": engine_type,
        "description": a.description,
        "config": config,
        "local": a.local,
        "seal_wrap": a.seal_wrap,
        "external_entropy_access": a.external_entropy_access,
        "options": if options.is_empty() { Value::Null } else { Value::Object(options) },
    });
    let (endpoint, what) = match table {
        Table::Secrets => (
            format!("sys/mounts/{path}"),
            format!("{engine_type} secrets engine"),
        ),
        Table::Auth => (
            format!("sys/auth/{path}"),
            format!("{engine_type} auth method"),
        ),
    };
    let what = match &a.plugin_version {
        Some(v) if !v.is_empty() => format!("{what} version {v}"),
        _ => what,
    };
    if let Err(e) = client.send(Method::POST, &endpoint, Some(&body)).await {
        return match table {
            Table::Secrets => failed("Error enabling", &e),
            Table::Auth => failed(format!("Error enabling {engine_type} auth"), &e),
        };
    }
    match table {
        Table::Secrets => println!("Success! Enabled the {what} at: {path}"),
        Table::Auth => println!("Success! Enabled {what} at: {path}"),
    }
    ExitCode::SUCCESS
}

async fn disable(client: &Client, table: Table, args: &[String]) -> ExitCode {
    if let Err(code) = check_count(args, 1, 1) {
        return code;
    }
    let path = mount_path(&args.concat());
    let (endpoint, error, done) = match table {
        Table::Secrets => (
            format!("sys/mounts/{path}"),
            format!("Error disabling secrets engine at {path}"),
            format!("Success! Disabled the secrets engine (if it existed) at: {path}"),
        ),
        Table::Auth => (
            format!("sys/auth/{path}"),
            format!("Error disabling auth method at {path}"),
            format!("Success! Disabled the auth method (if it existed) at: {path}"),
        ),
    };
    match client.send(Method::DELETE, &endpoint, None).await {
        Ok(_) => {
            println!("{done}");
            ExitCode::SUCCESS
        }
        Err(e) => failed(error, &e),
    }
}

async fn tune(client: &Client, table: Table, a: TuneArgs) -> ExitCode {
    if let Err(code) = check_count(&a.args, 1, 1) {
        return code;
    }
    let ttl = |flag: &str, value: &Option<String>| -> Result<String, ExitCode> {
        match value.as_deref().map(str::trim) {
            None => Ok(String::new()),
            Some("system") => Ok("system".to_owned()),
            Some(v) => match duration(v) {
                Ok(0) => Ok(String::new()),
                Ok(secs) => Ok(go_duration(secs)),
                Err(e) => Err(usage(format!(
                    "invalid value \"{v}\" for flag -{flag}: {e}"
                ))),
            },
        }
    };
    let default_ttl = match ttl("default-lease-ttl", &a.default_lease_ttl) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let max_ttl = match ttl("max-lease-ttl", &a.max_lease_ttl) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let mut options = match key_values(&a.options, "options") {
        Ok(o) => o,
        Err(code) => return code,
    };
    if a.version > 0 {
        options.insert("version".into(), json!(a.version.to_string()));
    }
    // The body Vault's client sends (`api.MountConfigInput`): unset flags are left out, so
    // the server keeps their current values.
    let mut body = Map::new();
    body.insert(
        "options".into(),
        if options.is_empty() {
            Value::Null
        } else {
            Value::Object(options)
        },
    );
    body.insert("default_lease_ttl".into(), json!(default_ttl));
    body.insert("max_lease_ttl".into(), json!(max_ttl));
    body.insert("force_no_cache".into(), json!(false));
    if let Some(d) = &a.description {
        body.insert("description".into(), json!(d));
    }
    a.lists.insert_into(&mut body);
    if let Some(v) = a.listing_visibility.as_ref().filter(|v| !v.is_empty()) {
        body.insert("listing_visibility".into(), json!(v));
    }
    if let Some(v) = a.plugin_version.as_ref().filter(|v| !v.is_empty()) {
        body.insert("plugin_version".into(), json!(v));
    }
    if let (Table::Auth, Some(t)) = (table, a.token_type.as_ref().filter(|t| !t.is_empty())) {
        body.insert("token_type".into(), json!(t));
    }
    let path = mount_path(&a.args.concat());
    let (endpoint, error, done) = match table {
        Table::Secrets => (
            format!("sys/mounts/{path}tune"),
            format!("Error tuning secrets engine {path}"),
            format!("Success! Tuned the secrets engine at: {path}"),
        ),
        // As Vault's client: auth methods are tuned through `sys/mounts/auth/PATH/tune`.
        Table::Auth => (
            format!("sys/mounts/auth/{path}tune"),
            format!("Error tuning auth method {path}"),
            format!("Success! Tuned the auth method at: {path}"),
        ),
    };
    match client
        .send(Method::POST, &endpoint, Some(&Value::Object(body)))
        .await
    {
        Ok(_) => {
            println!("{done}");
            ExitCode::SUCCESS
        }
        Err(e) => failed(error, &e),
    }
}

async fn list(client: &Client, table_kind: Table, a: ListArgs, format: &Format) -> ExitCode {
    if !a.args.is_empty() {
        return usage(format!(
            "Too many arguments (expected 0, got {})",
            a.args.len()
        ));
    }
    let (endpoint, error) = match table_kind {
        Table::Secrets => ("sys/mounts", "Error listing secrets engines"),
        Table::Auth => ("sys/auth", "Error listing enabled authentications"),
    };
    let reply = match client.send(Method::GET, endpoint, None).await {
        Ok(r) => r,
        Err(e) => return failed(error, &e),
    };
    // Vault's client reads the mounts from `data` (older servers: the top level).
    let source = reply
        .body
        .get("data")
        .filter(|d| d.is_object())
        .unwrap_or(&reply.body);
    let mut mounts = Map::new();
    if let Value::Object(map) = source {
        for (path, mount) in map {
            if mount.is_object() && path.ends_with('/') {
                mounts.insert(path.clone(), api_mount(mount));
            }
        }
    }
    match format {
        Format::Table => {
            let lines = if a.detailed {
                detailed_rows(table_kind, &mounts)
            } else {
                simple_rows(table_kind, &mounts)
            };
            println!("{}", table(&lines, '|'));
            ExitCode::SUCCESS
        }
        Format::Invalid(name) => invalid_format(name),
        other => print_structured(other, &Value::Object(mounts)),
    }
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn simple_rows(kind: Table, mounts: &Map<String, Value>) -> Vec<String> {
    let mut lines = vec![match kind {
        Table::Secrets => "Path | Type | Accessor | Description".to_owned(),
        Table::Auth => "Path | Type | Accessor | Description | Version".to_owned(),
    }];
    for (path, m) in mounts {
        let mut line = format!(
            "{path} | {} | {} | {}",
            text(m, "type"),
            text(m, "accessor"),
            text(m, "description")
        );
        if kind == Table::Auth {
            line.push_str(&format!(" | {}", text(m, "plugin_version")));
        }
        lines.push(line);
    }
    lines
}

fn detailed_rows(kind: Table, mounts: &Map<String, Value>) -> Vec<String> {
    let third = match kind {
        Table::Secrets => "Force No Cache",
        Table::Auth => "Token Type",
    };
    let mut lines = vec![format!(
        "Path | Plugin | Accessor | Default TTL | Max TTL | {third} | Replication | Seal Wrap | External Entropy Access | Options | Description | UUID | Version | Running Version | Running SHA256 | Deprecation Status"
    )];
    for (path, m) in mounts {
        let kind_name = text(m, "type");
        let ttl = |key: &str| -> String {
            let secs = m
                .get("config")
                .and_then(|c| c.get(key))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            match kind_name.as_str() {
                "system" | "cubbyhole" => String::new(),
                _ if secs != 0 => secs.to_string(),
                _ => "system".to_owned(),
            }
        };
        let flag = |key: &str| m.get(key).and_then(Value::as_bool).unwrap_or(false);
        let third_value = match kind {
            Table::Secrets => m
                .get("config")
                .and_then(|c| c.get("force_no_cache"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string(),
            Table::Auth => m
                .get("config")
                .map(|c| text(c, "token_type"))
                .unwrap_or_default(),
        };
        let options = match m.get("options") {
            Some(Value::Object(o)) => super::output::go_value(&Value::Object(o.clone())),
            _ => "map[]".to_owned(),
        };
        lines.push(format!(
            "{path} | {kind_name} | {} | {} | {} | {third_value} | {} | {} | {} | {options} | {} | {} | {} | {} | {} | {}",
            text(m, "accessor"),
            ttl("default_lease_ttl"),
            ttl("max_lease_ttl"),
            if flag("local") { "local" } else { "replicated" },
            flag("seal_wrap"),
            flag("external_entropy_access"),
            text(m, "description"),
            text(m, "uuid"),
            text(m, "plugin_version"),
            text(m, "running_plugin_version"),
            text(m, "running_sha256"),
            text(m, "deprecation_status"),
        ));
    }
    lines
}

/// A mount as Go's `api.MountOutput` marshals it.
fn api_mount(m: &Value) -> Value {
    let config = m.get("config").cloned().unwrap_or(Value::Null);
    let int = |key: &str| config.get(key).and_then(Value::as_i64).unwrap_or(0);
    let mut cfg = Map::new();
    cfg.insert("default_lease_ttl".into(), json!(int("default_lease_ttl")));
    cfg.insert("max_lease_ttl".into(), json!(int("max_lease_ttl")));
    cfg.insert(
        "force_no_cache".into(),
        json!(
            config
                .get("force_no_cache")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        ),
    );
    // `omitempty` fields: present only when set.
    for key in [
        "audit_non_hmac_request_keys",
        "audit_non_hmac_response_keys",
        "passthrough_request_headers",
        "allowed_response_headers",
        "allowed_managed_keys",
    ] {
        if let Some(v) = config
            .get(key)
            .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
        {
            cfg.insert(key.into(), v.clone());
        }
    }
    for key in ["listing_visibility", "token_type"] {
        if let Some(v) = config
            .get(key)
            .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        {
            cfg.insert(key.into(), v.clone());
        }
    }
    if let Some(v) = config.get("user_lockout_config").filter(|v| v.is_object()) {
        cfg.insert("user_lockout_config".into(), v.clone());
    }
    let s = |key: &str| json!(text(m, key));
    let b = |key: &str| json!(m.get(key).and_then(Value::as_bool).unwrap_or(false));
    json!({
        "uuid": s("uuid"),
        "type": s("type"),
        "description": s("description"),
        "accessor": s("accessor"),
        "config": cfg,
        "options": m.get("options").filter(|o| o.is_object()).cloned().unwrap_or(Value::Null),
        "local": b("local"),
        "seal_wrap": b("seal_wrap"),
        "external_entropy_access": b("external_entropy_access"),
        "plugin_version": s("plugin_version"),
        "running_plugin_version": s("running_plugin_version"),
        "running_sha256": s("running_sha256"),
        "deprecation_status": s("deprecation_status"),
    })
}

async fn move_mount(client: &Client, args: &[String]) -> ExitCode {
    if let Err(code) = check_count(args, 2, 2) {
        return code;
    }
    let (source, destination) = match args {
        [s, d] => (with_slash(s), with_slash(d)),
        _ => return usage("Not enough arguments (expected 2, got 0)"),
    };
    let started = match client
        .send(
            Method::POST,
            "sys/remount",
            Some(&json!({ "from": source, "to": destination })),
        )
        .await
    {
        Ok(r) => r,
        Err(e) => {
            return failed(
                format!("Error moving secrets engine {source} to {destination}"),
                &e,
            );
        }
    };
    let id = started
        .body
        .get("migration_id")
        .or_else(|| started.body.pointer("/data/migration_id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    println!("Started moving secrets engine {source} to {destination}, with migration ID {id}");
    // Vault polls every 10 s; a quicker poll with the same messages ends sooner. Bounded so
    // that a stuck migration does not hang the command for ever.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let status = match client
            .send(Method::GET, &format!("sys/remount/status/{id}"), None)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return failed(
                    format!(
                        "Error checking migration status of secrets engine {source} to {destination}"
                    ),
                    &e,
                );
            }
        };
        let state = status
            .body
            .pointer("/data/migration_info/status")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match state.as_str() {
            "success" => {
                println!(
                    "Success! Finished moving secrets engine {source} to {destination}, with migration ID {id}"
                );
                return ExitCode::SUCCESS;
            }
            "failure" => {
                eprintln!(
                    "Failure! Error encountered moving secrets engine {source} to {destination}, with migration ID {id}"
                );
                return ExitCode::SUCCESS;
            }
            _ => {}
        }
        if Instant::now() > deadline {
            eprintln!("Timed out waiting for migration {id}");
            return ExitCode::from(2);
        }
        println!(
            "Waiting for terminal status in migration of secrets engine {source} to {destination}, with migration ID {id}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Vault's `ensureTrailingSlash` (no leading-slash trimming for `move`).
fn with_slash(s: &str) -> String {
    let s = s.trim();
    if s.is_empty() || s.ends_with('/') {
        s.to_owned()
    } else {
        format!("{s}/")
    }
}
