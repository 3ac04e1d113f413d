//! A server answer as Vault's Go client sees it (`api.Secret`), and the three ways the CLI
//! prints one: a table, JSON/YAML of the client's struct (not of the raw answer: fields the
//! client does not know are dropped, the ones it knows always appear), or one `-field`.

use std::process::ExitCode;

use serde_json::{Map, Value, json};

use super::output::{
    Format, go_quoted_list, go_value, human_duration_value, invalid_format, looks_like_duration,
    print_raw, print_structured, print_warnings, table,
};

const DELIM: char = '♨';

/// The answer reshaped as Go's `api.Secret` marshals: `request_id`, `lease_id`,
/// `lease_duration`, `renewable`, `data`, `warnings`, and `auth`/`wrap_info` when present.
pub fn api_secret(body: &Value) -> Value {
    let get = |k: &str| body.get(k).cloned();
    let mut out = Map::new();
    out.insert("request_id".into(), json!(str_of(body, "request_id")));
    out.insert("lease_id".into(), json!(str_of(body, "lease_id")));
    out.insert(
        "lease_duration".into(),
        get("lease_duration")
            .filter(Value::is_number)
            .unwrap_or(json!(0)),
    );
    out.insert(
        "renewable".into(),
        json!(
            body.get("renewable")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        ),
    );
    out.insert(
        "data".into(),
        get("data").filter(Value::is_object).unwrap_or(Value::Null),
    );
    out.insert(
        "warnings".into(),
        get("warnings")
            .filter(|w| w.as_array().is_some_and(|a| !a.is_empty()))
            .unwrap_or(Value::Null),
    );
    if let Some(auth) = body.get("auth").filter(|a| a.is_object()) {
        out.insert("auth".into(), api_auth(auth));
    }
    if let Some(wrap) = body.get("wrap_info").filter(|a| a.is_object()) {
        // The Go client's WrapInfo struct: every field, empty when the server omits it.
        let field = |k: &str, default: Value| wrap.get(k).cloned().unwrap_or(default);
        out.insert(
            "wrap_info".into(),
            json!({
                "token": field("token", json!("")),
                "accessor": field("accessor", json!("")),
                "ttl": field("ttl", json!(0)),
                "creation_time": field("creation_time", json!("")),
                "creation_path": field("creation_path", json!("")),
                "wrapped_accessor": field("wrapped_accessor", json!("")),
            }),
        );
    }
    Value::Object(out)
}

fn str_of(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Go's `api.SecretAuth`.
pub fn api_auth(auth: &Value) -> Value {
    let list = |k: &str| {
        auth.get(k)
            .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
            .cloned()
            .unwrap_or(Value::Null)
    };
    json!({
        "client_token": str_of(auth, "client_token"),
        "accessor": str_of(auth, "accessor"),
        "policies": list("policies"),
        "token_policies": list("token_policies"),
        "identity_policies": list("identity_policies"),
        "metadata": auth.get("metadata").filter(|m| m.is_object()).cloned().unwrap_or(Value::Null),
        "orphan": auth.get("orphan").and_then(Value::as_bool).unwrap_or(false),
        "entity_id": str_of(auth, "entity_id"),
        "lease_duration": auth.get("lease_duration").filter(|v| v.is_number()).cloned().unwrap_or(json!(0)),
        "renewable": auth.get("renewable").and_then(Value::as_bool).unwrap_or(false),
        "mfa_requirement": Value::Null,
    })
}

/// Vault's `OutputSecret`: prints `secret` (already in `api_secret` shape) as `format` asks.
pub fn print_secret(format: &Format, secret: &Value) -> ExitCode {
    match format {
        Format::Table => {
            print_secret_table(secret);
            ExitCode::SUCCESS
        }
        Format::Invalid(name) => invalid_format(name),
        other => print_structured(other, secret),
    }
}

fn print_secret_table(secret: &Value) {
    print_warnings(secret.get("warnings"));
    let mut rows: Vec<String> = Vec::new();
    let mut row = |k: &str, v: String| rows.push(format!("{k} {DELIM} {v}"));
    let lease = secret
        .get("lease_duration")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if lease > 0 {
        let lease_value = secret.get("lease_duration").cloned().unwrap_or(json!(0));
        let lease_id = str_of(secret, "lease_id");
        if lease_id.is_empty() {
            row("refresh_interval", human_duration_value(&lease_value));
        } else {
            row("lease_id", lease_id);
            row("lease_duration", human_duration_value(&lease_value));
            row(
                "lease_renewable",
                go_value(secret.get("renewable").unwrap_or(&Value::Bool(false))),
            );
        }
    }
    if let Some(auth) = secret.get("auth").filter(|a| a.is_object()) {
        row("token", str_of(auth, "client_token"));
        row("token_accessor", str_of(auth, "accessor"));
        let duration = auth.get("lease_duration").cloned().unwrap_or(json!(0));
        if duration.as_i64() == Some(0) {
            row("token_duration", "∞".to_owned());
        } else {
            row("token_duration", human_duration_value(&duration));
        }
        row(
            "token_renewable",
            go_value(auth.get("renewable").unwrap_or(&Value::Bool(false))),
        );
        row("token_policies", go_quoted_list(auth.get("token_policies")));
        row(
            "identity_policies",
            go_quoted_list(auth.get("identity_policies")),
        );
        row("policies", go_quoted_list(auth.get("policies")));
        if let Some(Value::Object(meta)) = auth.get("metadata") {
            for (k, v) in meta {
                row(&format!("token_meta_{k}"), go_value(v));
            }
        }
    }
    if let Some(wrap) = secret.get("wrap_info").filter(|w| w.is_object()) {
        // Vault's table names these with a trailing colon.
        row("wrapping_token:", str_of(wrap, "token"));
        row("wrapping_accessor:", str_of(wrap, "accessor"));
        let ttl = wrap.get("ttl").cloned().unwrap_or(json!(0));
        row("wrapping_token_ttl:", human_duration_value(&ttl));
        row(
            "wrapping_token_creation_time:",
            str_of(wrap, "creation_time"),
        );
        row(
            "wrapping_token_creation_path:",
            str_of(wrap, "creation_path"),
        );
        let wrapped = str_of(wrap, "wrapped_accessor");
        if !wrapped.is_empty() {
            row("wrapped_accessor:", wrapped);
        }
    }
    if let Some(Value::Object(data)) = secret.get("data") {
        for (k, v) in data {
            let shown = if looks_like_duration(k) {
                human_duration_value(v)
            } else {
                go_value(v)
            };
            row(k, shown);
        }
    }
    if rows.is_empty() {
        return;
    }
    rows.insert(0, format!("Key{DELIM}Value"));
    println!("{}", table(&rows, DELIM));
}

/// Vault's `RawSecretField`: the value `-field` names, from the auth block, the lease fields
/// or the data.
pub fn secret_field(secret: &Value, field: &str) -> Option<Value> {
    let data = |f: &str| secret.get("data").and_then(|d| d.get(f)).cloned();
    if let Some(auth) = secret.get("auth").filter(|a| a.is_object()) {
        let key = match field {
            "token" => "client_token",
            "token_accessor" => "accessor",
            "token_duration" => "lease_duration",
            "token_renewable" => "renewable",
            "token_policies" | "identity_policies" | "policies" => field,
            _ => return data(field),
        };
        return auth.get(key).cloned();
    }
    match field {
        "lease_duration" | "refresh_interval" => secret.get("lease_duration").cloned(),
        "lease_id" | "request_id" | "renewable" => secret.get(field).cloned(),
        "data" => data("data").or_else(|| secret.get("data").cloned()),
        _ => data(field),
    }
}

/// Vault's `PrintRawField` for a secret: exit 1 with "Field … not present in secret" when the
/// field is missing (or null, which Go cannot tell apart).
pub fn print_field(format: &Format, secret: &Value, field: &str) -> ExitCode {
    let value = secret_field(secret, field).filter(|v| !v.is_null());
    let Some(value) = value else {
        eprintln!("Field {} not present in secret", go_quote(field));
        return ExitCode::from(1);
    };
    match format {
        Format::Table => {
            print_warnings(secret.get("warnings"));
            print_raw(&go_value(&value));
            ExitCode::SUCCESS
        }
        Format::Invalid(name) => invalid_format(name),
        Format::Json => {
            print_raw(&super::output::json_text(&value));
            ExitCode::SUCCESS
        }
        Format::Yaml => match super::output::yaml_text(&value) {
            Ok(text) => {
                print_raw(&format!("{text}\n"));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("Error formatting output: {e}");
                ExitCode::from(1)
            }
        },
    }
}

/// Go's `%q` of a string.
pub fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_answers_keep_only_the_client_struct_fields() {
        let body = json!({"request_id": "r", "lease_id": "", "renewable": false,
            "lease_duration": 0, "data": null, "wrap_info": null, "warnings": null,
            "mount_type": "token",
            "auth": {"client_token": "t", "accessor": "a", "policies": ["default"],
                     "token_policies": ["default"], "metadata": null, "lease_duration": 60,
                     "renewable": true, "entity_id": "", "token_type": "service",
                     "orphan": false, "num_uses": 0}});
        let s = api_secret(&body);
        assert!(s.get("mount_type").is_none());
        assert!(s.get("wrap_info").is_none());
        assert_eq!(s["auth"]["identity_policies"], Value::Null);
        assert!(s["auth"].get("token_type").is_none());
        assert_eq!(secret_field(&s, "token"), Some(json!("t")));
        assert_eq!(secret_field(&s, "token_duration"), Some(json!(60)));
        assert_eq!(secret_field(&s, "nope"), None);
    }
}
