//! `tresor operator rekey`: `bao operator rekey`'s flags and output, over the authenticated
//! `sys/rotate/root/*` endpoints (bao's command still calls the unauthenticated `sys/rekey/*`
//! ones, which OpenBao ≥ 2.5 and Tresor disable by default; the token's ACL decides here).

use std::io::Read;
use std::process::ExitCode;

use clap::Args;
use reqwest::Method;
use serde_json::{Value, json};

use super::Format;
use super::flags::{failed, usage};
use super::output::{print_json, print_table, scalar, wrap_with_padding};
use crate::client::{Client, ClientArgs};

#[derive(Debug, Args)]
pub struct RekeyArgs {
    /// Start a rekey (with -key-shares, -key-threshold, -verify).
    #[arg(long = "init")]
    init: bool,
    /// Cancel the rekey in progress (with -verify: restart only the verification).
    #[arg(long = "cancel")]
    cancel: bool,
    /// Print the rekey status.
    #[arg(long = "status")]
    status: bool,
    /// Number of new key shares.
    #[arg(long = "key-shares", default_value_t = 5)]
    key_shares: i64,
    /// Number of new shares needed to unseal.
    #[arg(long = "key-threshold", default_value_t = 3)]
    key_threshold: i64,
    /// The nonce of the rekey (or verification) when the key is given as an argument.
    #[arg(long = "nonce", default_value = "")]
    nonce: String,
    /// `barrier` (unseal keys); `recovery` is for auto-unseal seals, which Tresor lacks yet.
    #[arg(long = "target", default_value = "barrier")]
    target: String,
    /// With -init: the new shares are active only once verified. Otherwise: act on the
    /// verification.
    #[arg(long = "verify")]
    verify: bool,
    /// Not supported by Tresor (the server refuses PGP keys).
    #[arg(long = "pgp-keys", value_delimiter = ',')]
    pgp_keys: Vec<String>,
    /// Only with -pgp-keys.
    #[arg(long = "backup")]
    backup: bool,
    /// Delete backed-up keys (Tresor stores none).
    #[arg(long = "backup-delete")]
    backup_delete: bool,
    /// Print backed-up keys (Tresor stores none).
    #[arg(long = "backup-retrieve")]
    backup_retrieve: bool,
    /// A share of the current key (or, with -verify, of the new one); `-` reads stdin.
    key: Vec<String>,
}

pub fn run(args: RekeyArgs, client_args: &ClientArgs) -> ExitCode {
    if args.key.len() > 1 {
        return usage(format!(
            "Too many arguments (expected 0-1, got {})",
            args.key.len()
        ));
    }
    super::with_client(client_args, true, |client, format| async move {
        dispatch(&client, args, &format).await
    })
}

async fn dispatch(client: &Client, args: RekeyArgs, format: &Format) -> ExitCode {
    let target = args.target.trim().to_lowercase();
    let base = match target.as_str() {
        "barrier" => "sys/rotate/root",
        "recovery" | "hsm" => "sys/rotate/recovery",
        _ => return usage(format!("Unknown target: {}", args.target)),
    };
    if args.backup_delete {
        return match call(client, Method::DELETE, &format!("{base}/backup"), None).await {
            Ok(_) => {
                println!("Success! Deleted backed up keys (if they existed)");
                ExitCode::SUCCESS
            }
            Err(e) => failed("Error deleting rekey backed up keys", &e),
        };
    }
    if args.backup_retrieve {
        return match call(client, Method::GET, &format!("{base}/backup"), None).await {
            Ok(body) => {
                print_json(&body);
                ExitCode::SUCCESS
            }
            Err(e) => failed("Error retrieving rekey backed up keys", &e),
        };
    }
    if args.cancel {
        let path = if args.verify { "verify" } else { "init" };
        return match call(client, Method::DELETE, &format!("{base}/{path}"), None).await {
            Ok(_) => {
                println!("Success! Canceled rekeying (if it was started)");
                ExitCode::SUCCESS
            }
            Err(e) => failed("Error canceling rekey", &e),
        };
    }
    if args.init {
        return init(client, &args, base, format).await;
    }
    if args.status {
        return status(client, base, args.verify, format).await;
    }
    provide(client, args, base, format).await
}

/// One request; an error answer becomes Vault's "Error making API request" text.
async fn call(
    client: &Client,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<Value> {
    let reply = client.request(method, path, body).await?;
    if let Some(e) = reply.api_error() {
        return Err(e.into());
    }
    Ok(reply.body.get("data").cloned().unwrap_or(Value::Null))
}

async fn init(client: &Client, args: &RekeyArgs, base: &str, format: &Format) -> ExitCode {
    let body = json!({
        "secret_shares": args.key_shares,
        "secret_threshold": args.key_threshold,
        "pgp_keys": if args.pgp_keys.is_empty() { Value::Null } else { json!(args.pgp_keys) },
        "backup": args.backup,
        "require_verification": args.verify,
    });
    let status = match call(client, Method::PUT, &format!("{base}/init"), Some(&body)).await {
        Ok(s) => status_value(&s),
        Err(e) => return failed("Error initializing rekey", &e),
    };
    if *format == Format::Table && args.pgp_keys.is_empty() {
        eprintln!(
            "{}",
            wrap(
                "WARNING! If you lose the keys after they are returned, there is no recovery. \
                 Consider canceling this operation and re-initializing with the -pgp-keys flag \
                 to protect the returned unseal keys along with -backup to allow recovery of \
                 the encrypted keys in case of emergency. You can delete the stored keys later \
                 using the -delete flag."
            )
        );
        println!();
    }
    print_status(&status, false, format)
}

async fn status(client: &Client, base: &str, verify: bool, format: &Format) -> ExitCode {
    let path = if verify { "verify" } else { "init" };
    match call(client, Method::GET, &format!("{base}/{path}"), None).await {
        Ok(s) if verify => print_status(&verify_value(&s), true, format),
        Ok(s) => print_status(&status_value(&s), false, format),
        Err(e) => failed("Error reading rekey status", &e),
    }
}

/// The status as the Go client's `RotateStatusResponse` marshals it.
/// `value[key]` without indexing: `Null` when absent.
fn field<'a>(value: &'a Value, key: &str) -> &'a Value {
    value.get(key).unwrap_or(&Value::Null)
}

/// `bao`'s `wrapAtLength`: 78 columns (`maxLineLength`), no padding.
fn wrap(text: &str) -> String {
    wrap_with_padding(text, 2).replace("\n  ", "\n")
}

/// The status as the Go client's `RotateStatusResponse` marshals it.
fn status_value(data: &Value) -> Value {
    let get = |k: &str| data.get(k).cloned();
    json!({
        "nonce": get("nonce").unwrap_or(json!("")),
        "started": get("started").unwrap_or(json!(false)),
        "t": get("t").unwrap_or(json!(0)),
        "n": get("n").unwrap_or(json!(0)),
        "progress": get("progress").unwrap_or(json!(0)),
        "required": get("required").unwrap_or(json!(0)),
        "pgp_fingerprints": get("pgp_fingerprints").unwrap_or(Value::Null),
        "backup": get("backup").unwrap_or(json!(false)),
        "verification_required": get("verification_required").unwrap_or(json!(false)),
        "verification_nonce": get("verification_nonce").unwrap_or(json!("")),
    })
}

/// `RotateVerificationStatusResponse`.
fn verify_value(data: &Value) -> Value {
    let get = |k: &str, d: Value| data.get(k).cloned().unwrap_or(d);
    json!({
        "nonce": get("nonce", json!("")),
        "started": get("started", json!(false)),
        "t": get("t", json!(0)),
        "n": get("n", json!(0)),
        "progress": get("progress", json!(0)),
    })
}

/// `printRotationStatus`.
fn print_status(status: &Value, verification: bool, format: &Format) -> ExitCode {
    if *format != Format::Table {
        return super::output::print_structured(format, status);
    }
    let get = |k: &str| scalar(status.get(k));
    let mut rows: Vec<(&str, String)> = Vec::new();
    if verification {
        rows.push(("Started", get("started")));
        rows.push(("New Shares", get("n")));
        rows.push(("New Threshold", get("t")));
        rows.push(("Verification Nonce", get("nonce")));
        rows.push((
            "Verification Progress",
            format!("{}/{}", get("progress"), get("t")),
        ));
    } else {
        rows.push(("Nonce", get("nonce")));
        rows.push(("Started", get("started")));
        if *field(status, "started") == json!(true) {
            let (progress, required) = (get("progress"), get("required"));
            if progress == required {
                rows.push((
                    "Progress",
                    format!("{progress}/{required} (verification in progress)"),
                ));
            } else {
                rows.push(("Progress", format!("{progress}/{required}")));
            }
            if field(status, "n").as_i64().unwrap_or(0) > 0 {
                rows.push(("New Shares", get("n")));
            }
            if field(status, "t").as_i64().unwrap_or(0) > 0 {
                rows.push(("New Threshold", get("t")));
            }
            rows.push(("Verification Required", get("verification_required")));
            if field(status, "verification_nonce")
                .as_str()
                .is_some_and(|n| !n.is_empty())
            {
                rows.push(("Verification Nonce", get("verification_nonce")));
            }
        }
    }
    print_table(&rows);
    ExitCode::SUCCESS
}

/// Submits one share (of the current key, or with -verify of the new one).
async fn provide(client: &Client, args: RekeyArgs, base: &str, format: &Format) -> ExitCode {
    let stage = if args.verify { "verify" } else { "init" };
    let current = match call(client, Method::GET, &format!("{base}/{stage}"), None).await {
        Ok(s) => s,
        Err(e) => return failed("Error getting rekey status", &e),
    };
    if *field(&current, "started") != json!(true) {
        return usage(wrap(
            "No rekey is in progress. Start a rekey process by running \"tresor operator \
             rekey -init\".",
        ));
    }
    let arg = args
        .key
        .first()
        .map(|k| k.trim().to_owned())
        .unwrap_or_default();
    let (key, nonce) = match arg.as_str() {
        "-" => {
            let mut text = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut text) {
                return usage(format!("Failed to read from stdin: {e}"));
            }
            (text, args.nonce.clone())
        }
        "" => {
            let nonce = field(&current, "nonce")
                .as_str()
                .unwrap_or_default()
                .to_owned();
            eprintln!("Rekey operation nonce: {nonce}");
            match rpassword::prompt_password("Unseal Key (will be hidden): ") {
                Ok(k) => (k, nonce),
                Err(e) => {
                    return usage(wrap(&format!(
                        "An error occurred attempting to ask for the unseal key. The raw \
                         error message is shown below, but usually this is because you \
                         attempted to pipe a value into the command or you are executing \
                         outside of a terminal (tty). If you want to pipe the value, pass \
                         \"-\" as the argument to read from stdin. The raw error was: {e}"
                    )));
                }
            }
        }
        _ => (arg.clone(), args.nonce.clone()),
    };
    let key = tresor_sdk::secret::SecretString::new(key.trim().to_owned());
    if nonce.is_empty() {
        return usage("Missing nonce value: specify it via the -nonce flag");
    }
    let path = if args.verify { "verify" } else { "update" };
    let body = json!({ "key": key.expose(), "nonce": nonce });
    let answer = match call(client, Method::PUT, &format!("{base}/{path}"), Some(&body)).await {
        Ok(a) => a,
        Err(e) => return failed("Error posting unseal key", &e),
    };
    if *field(&answer, "complete") != json!(true) {
        return status(client, base, args.verify, format).await;
    }
    if args.verify {
        println!(
            "{}",
            wrap(
                "Rekey verification successful. The rekey operation is complete and the new \
                 keys are now active."
            )
        );
        return ExitCode::SUCCESS;
    }
    let update = json!({
        "nonce": answer.get("nonce").cloned().unwrap_or(json!("")),
        "complete": true,
        "keys": answer.get("keys").cloned().unwrap_or(Value::Null),
        "keys_base64": answer.get("keys_base64").cloned().unwrap_or(Value::Null),
        "pgp_fingerprints": answer.get("pgp_fingerprints").cloned().unwrap_or(Value::Null),
        "backup": answer.get("backup").cloned().unwrap_or(json!(false)),
        "verification_required": answer.get("verification_required").cloned().unwrap_or(json!(false)),
        "verification_nonce": answer.get("verification_nonce").cloned().unwrap_or(json!("")),
    });
    if *format != Format::Table {
        let mut update = update;
        if *field(&update, "verification_nonce") == json!("")
            && let Some(obj) = update.as_object_mut()
        {
            obj.remove("verification_nonce");
        }
        return super::output::print_structured(format, &update);
    }
    println!();
    let keys: Vec<&str> = field(&update, "keys_base64")
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (i, k) in keys.iter().enumerate() {
        println!("Key {}: {k}", i + 1);
    }
    if let Some(n) = field(&update, "nonce").as_str().filter(|n| !n.is_empty()) {
        println!();
        println!("Operation nonce: {n}");
    }
    let (n, t) = (scalar(current.get("n")), scalar(current.get("t")));
    // bao words the recovery target's messages on its own.
    let recovery = base == "sys/rotate/recovery";
    println!();
    if *field(&current, "verification_required") == json!(true) {
        let created = if recovery {
            format!(
                "OpenBao has created a new recovery key, split into {n} key shares and a key \
                 threshold of {t}. These will not be active until after verification is \
                 complete. Please securely distribute the key shares printed above."
            )
        } else {
            format!(
                "OpenBao has created a new unseal key, split into {n} key shares and a key \
                 threshold of {t}. These will not be active until after verification is \
                 complete. Please securely distribute the key shares printed above. When  \
                 OpenBao is re-sealed, restarted, or stopped, you must supply at least {t} of \
                 these keys to unseal it before it can start servicing requests."
            )
        };
        println!("{}", wrap(&created));
        println!();
        eprintln!(
            "{}",
            wrap(&format!(
                "Again, these key shares are _not_ valid until verification is performed. Do \
                 not lose or discard your current key shares until after verification is \
                 complete or you will be unable to {} OpenBao. If you cancel the rekey \
                 process or seal OpenBao before verification is complete the new shares will \
                 be discarded and the current shares will remain valid.",
                if recovery {
                    "authenticate with"
                } else {
                    "unseal"
                }
            ))
        );
        println!();
        eprintln!(
            "{}",
            wrap("The current verification status, including initial nonce, is shown below.")
        );
        println!();
        return status(client, base, true, format).await;
    }
    let done = if recovery {
        format!(
            "OpenBao recovery keys rekeyed to {n} key shares and a key threshold of {t}. Please \
             securely distribute the key shares printed above."
        )
    } else {
        format!(
            "OpenBao unseal keys rekeyed to {n} key shares and a key threshold of {t}. Please \
             securely distribute the key shares printed above. When OpenBao is re-sealed, \
             restarted, or stopped, you must supply at least {t} of these keys to unseal it \
             before it can start servicing requests."
        )
    };
    println!("{}", wrap(&done));
    ExitCode::SUCCESS
}
