//! `tresor login`: authenticate with an auth method and keep the token in the token helper
//! (`~/.vault-token`), as `vault login` does.
//!
//! Methods are dispatched by name through [`Method`]: adding an auth method means one variant,
//! its name in [`Method::from_name`], and the function that turns its `key=value` arguments
//! into a login answer (see [`token_method`]); the storing and printing are shared.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use reqwest::Method as HttpMethod;
use serde_json::{Value, json};

use super::flags::{FieldArg, usage};
use super::output::{Format, wrap};
use super::secret::{api_secret, print_field, print_secret};
use crate::client::{Client, ClientArgs};

#[derive(clap::Args)]
pub struct LoginArgs {
    /// The auth method (default: token).
    #[arg(long = "method", default_value = "")]
    method: String,
    /// Where the auth method is mounted (default: the method's name).
    #[arg(long = "path", default_value = "")]
    path: String,
    /// Do not store the token in the token helper.
    #[arg(long = "no-store", action = clap::ArgAction::Set, value_parser = super::flags::go_bool, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", default_value = "false")]
    no_store: bool,
    /// Do not print the token information.
    #[arg(long = "no-print", action = clap::ArgAction::Set, value_parser = super::flags::go_bool, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", default_value = "false")]
    no_print: bool,
    /// Print only the token (implies -no-store).
    #[arg(long = "token-only", action = clap::ArgAction::Set, value_parser = super::flags::go_bool, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", default_value = "false")]
    token_only: bool,
    /// Never prompt.
    #[arg(long = "non-interactive", action = clap::ArgAction::Set, value_parser = super::flags::go_bool, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", default_value = "false")]
    non_interactive: bool,
    #[command(flatten)]
    field: FieldArg,
    /// `TOKEN`, `-` (read stdin), or the method's key=value arguments.
    args: Vec<String>,
}

/// The arguments hold the token: Debug shows the flags only.
impl std::fmt::Debug for LoginArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginArgs")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("no_store", &self.no_store)
            .field("no_print", &self.no_print)
            .field("token_only", &self.token_only)
            .field("args", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// The auth methods `login` knows.
#[derive(Debug, Clone, Copy)]
enum Method {
    Token,
    Jwt,
    Oidc,
}

impl Method {
    fn from_name(name: &str) -> Option<Method> {
        match name {
            "token" => Some(Method::Token),
            "jwt" => Some(Method::Jwt),
            "oidc" => Some(Method::Oidc),
            _ => None,
        }
    }

    /// Logs in; the answer is in `api_secret` shape with an `auth` block.
    async fn login(
        self,
        client: &mut Client,
        config: &BTreeMap<String, String>,
        non_interactive: bool,
    ) -> Result<Value, String> {
        match self {
            Method::Token => token_method(client, config, non_interactive).await,
            Method::Jwt => super::login_oidc::jwt_method(client, config).await,
            Method::Oidc => super::login_oidc::oidc_method(client, config).await,
        }
    }
}

pub fn run(a: LoginArgs, client_args: &ClientArgs) -> ExitCode {
    // The helper's old token must not be sent: only the environment's.
    super::with_client(client_args, false, |client, format| async move {
        login(client, a, &format).await
    })
}

async fn login(mut client: Client, mut a: LoginArgs, format: &Format) -> ExitCode {
    if a.token_only {
        a.no_store = true;
        a.field.field = Some("token".to_owned());
    }
    if a.no_store && a.no_print {
        return usage(wrap("-no-store and -no-print cannot be used together"));
    }
    let name = a.method.trim().trim_matches('/');
    let name = if name.is_empty() { "token" } else { name };
    let Some(method) = Method::from_name(name) else {
        return usage(wrap(&format!(
            "Unknown auth method: {name}. Use \"tresor auth list\" to see the complete list of auth methods. Additionally, some auth methods are only available via the HTTP API."
        )));
    };
    let mount = if a.path.is_empty() {
        format!("{name}/")
    } else {
        a.path.clone()
    };
    // `tresor login TOKEN` is `token=TOKEN`.
    let mut args = a.args.clone();
    if matches!(method, Method::Token)
        && let Some(first) = args.first_mut()
        && !first.contains('=')
    {
        *first = format!("token={first}");
    }
    let mut config = match parse_config(&args, a.non_interactive) {
        Ok(c) => c,
        Err(e) => return usage(format!("Error parsing configuration: {e}")),
    };
    config.entry("mount".to_owned()).or_insert(mount);
    let secret = match method.login(&mut client, &config, a.non_interactive).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Error authenticating: {e}");
            return ExitCode::from(2);
        }
    };
    let token = secret
        .pointer("/auth/client_token")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !a.no_store {
        if let Err(e) = crate::token_helper::store(&token) {
            eprintln!("Error storing token: {e:#}");
            eprintln!(
                "{}\n",
                wrap(
                    "Authentication was successful, but the token was not persisted. The resulting token is shown below for your records."
                )
            );
            print_secret(format, &secret);
            return ExitCode::from(2);
        }
        warn_token_variable();
    } else if !a.token_only {
        eprintln!(
            "{}\n",
            wrap(
                "The token was not stored in token helper. Set the VAULT_TOKEN environment variable or pass the token below with each request to Tresor."
            )
        );
    }
    if a.no_print {
        return ExitCode::SUCCESS;
    }
    if let Some(field) = &a.field.field {
        return print_field(format, &secret, field);
    }
    if format.is_table() {
        println!(
            "{}\n",
            wrap(
                "Success! You are now authenticated. The token information displayed below is already stored in the token helper. You do NOT need to run \"tresor login\" again. Future Tresor requests will automatically use this token."
            )
        );
    }
    print_secret(format, &secret)
}

/// A token variable in the environment wins over the helper; say so, as Vault does.
fn warn_token_variable() {
    if let Some(name) = crate::client::token_variable() {
        eprintln!(
            "{}\n",
            wrap(&format!(
                "WARNING! The {name} environment variable is set! The value of this variable will take precedence; if this is unwanted please unset {name} or update its value accordingly."
            ))
        );
    }
}

/// Vault's `parseArgsDataString`: `key=value` pairs, where `value` may be `-` (stdin) or
/// `@file`.
fn parse_config(
    args: &[String],
    non_interactive: bool,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut stdin_used = false;
    for arg in args {
        let Some((k, v)) = arg.split_once('=') else {
            return Err(format!(
                "invalid key/value pair \"{arg}\": format must be key=value"
            ));
        };
        let value = if v == "-" {
            if stdin_used {
                return Err("stdin can only be read once".to_owned());
            }
            stdin_used = true;
            let mut text = String::new();
            if !non_interactive {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|e| format!("error reading stdin: {e}"))?;
            }
            text
        } else if let Some(file) = v.strip_prefix('@') {
            std::fs::read_to_string(file).map_err(|e| format!("error reading file: {e}"))?
        } else {
            v.to_owned()
        };
        out.insert(k.to_owned(), value);
    }
    Ok(out)
}

/// The token method: check the token with `lookup-self` and present it as a login answer.
async fn token_method(
    client: &mut Client,
    config: &BTreeMap<String, String>,
    non_interactive: bool,
) -> Result<Value, String> {
    let lookup = match config.get("lookup") {
        None => true,
        Some(v) => super::flags::go_bool(v)
            .map_err(|_| format!("Failed to parse \"lookup\" as boolean: invalid syntax: {v:?}"))?,
    };
    let token = match config.get("token") {
        Some(t) => t.clone(),
        None => {
            if non_interactive {
                return Err("'token' not supplied and refusing to pull from stdin".to_owned());
            }
            prompt_token()?
        }
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        return Err(
            "a token must be passed to auth, please view the help for more information".to_owned(),
        );
    }
    if !lookup {
        return Ok(api_secret(&json!({ "auth": { "client_token": token } })));
    }
    client.set_token(Some(token));
    let reply = client
        .send(HttpMethod::GET, "auth/token/lookup-self", None)
        .await
        .map_err(|e| format!("error looking up token: {e:#}"))?;
    let data = reply.body.get("data").cloned().unwrap_or(Value::Null);
    let policies = data.get("policies").cloned().unwrap_or(Value::Null);
    let identity = data
        .get("identity_policies")
        .cloned()
        .unwrap_or(Value::Null);
    // Vault's client derives `policies` as token policies followed by identity policies.
    let mut all: Vec<Value> = policies.as_array().cloned().unwrap_or_default();
    all.extend(identity.as_array().into_iter().flatten().cloned());
    let auth = json!({
        "client_token": data.get("id").cloned().unwrap_or(Value::Null),
        "accessor": data.get("accessor").cloned().unwrap_or(Value::Null),
        "policies": all,
        "token_policies": policies,
        "identity_policies": identity,
        "metadata": data.get("meta").cloned().unwrap_or(Value::Null),
        "lease_duration": data.get("ttl").cloned().unwrap_or(json!(0)),
        "renewable": data.get("renewable").cloned().unwrap_or(json!(false)),
    });
    Ok(api_secret(&json!({ "auth": auth })))
}

/// Asks for the token on the terminal without echoing it; refuses when stdin is not a
/// terminal (pass `-` to read a piped token), as Vault does.
fn prompt_token() -> Result<String, String> {
    if !std::io::stdin().is_terminal() {
        return Err("An error occurred attempting to ask for a token. The raw error message is shown below, but usually this is because you attempted to pipe a value into the command or you are executing outside of a terminal (tty). If you want to pipe the value, pass \"-\" as the argument to read from stdin. The raw error was: stdin is not a terminal".to_owned());
    }
    rpassword::prompt_password("Token (will be hidden): ").map_err(|e| {
        format!("An error occurred attempting to ask for a token. The raw error was: {e}")
    })
}
