//! What the Vault-style commands share: argument-count checks with Vault's wording, duration
//! flags parsed as Vault parses them, `-field`, and the exit codes (1: usage or local error,
//! 2: the server refused or could not be reached).

use std::process::ExitCode;

/// `-field`: print one field's value instead of the whole answer.
#[derive(Debug, Clone, clap::Args)]
pub struct FieldArg {
    /// Print only this field's value (no trailing newline when piped).
    #[arg(long = "field")]
    pub field: Option<String>,
}

/// A usage or local error: Vault prints the message and exits 1.
pub fn usage(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("{message}");
    ExitCode::from(1)
}

/// A failed request: Vault prints `<what>: <error>` and exits 2.
pub fn failed(what: impl std::fmt::Display, err: &anyhow::Error) -> ExitCode {
    eprintln!("{what}: {err:#}");
    ExitCode::from(2)
}

/// Vault's "Not enough arguments (expected N, got M)" / "Too many arguments …" check.
pub fn check_count(args: &[String], min: usize, max: usize) -> Result<(), ExitCode> {
    let expected = if min == max {
        min.to_string()
    } else {
        format!("{min}-{max}")
    };
    if args.len() < min {
        return Err(usage(format!(
            "Not enough arguments (expected {expected}, got {})",
            args.len()
        )));
    }
    if args.len() > max {
        return Err(usage(format!(
            "Too many arguments (expected {expected}, got {})",
            args.len()
        )));
    }
    Ok(())
}

/// A duration flag as Vault reads it (`1h30m`, `90s`, or bare seconds), kept as whole seconds.
pub fn duration(text: &str) -> Result<u64, String> {
    tresor_core::params::parse_duration(text.trim())
        .ok_or_else(|| format!("time: invalid duration {:?}", text))
}

/// A boolean flag's value as Go's `strconv.ParseBool` reads it (`-orphan=t`, `-renewable=0`).
pub fn go_bool(text: &str) -> Result<bool, String> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing {text:?}: invalid syntax"
        )),
    }
}

/// An integer flag's value as Go's `strconv.ParseInt` reads it.
pub fn go_int(text: &str) -> Result<i64, String> {
    text.parse::<i64>().map_err(|e| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!("strconv.ParseInt: parsing {text:?}: {why}")
    })
}

/// A clap parse error in the words of Go's `flag` package, which is what `vault` prints
/// (one line, exit 1); `None` for errors Go has no counterpart for (help, version, …).
pub fn go_flag_error(err: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let context = |kind| match err.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => v.first().cloned(),
        _ => None,
    };
    // "--ttl <TTL>" → "ttl"
    let flag = context(ContextKind::InvalidArg).map(|a| {
        a.split([' ', '=', '['])
            .next()
            .unwrap_or_default()
            .trim_start_matches('-')
            .to_owned()
    })?;
    match err.kind() {
        ErrorKind::UnknownArgument => Some(format!("flag provided but not defined: -{flag}")),
        ErrorKind::InvalidValue
            if context(ContextKind::InvalidValue).is_none_or(|v| v.is_empty()) =>
        {
            Some(format!("flag needs an argument: -{flag}"))
        }
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
            let value = context(ContextKind::InvalidValue).unwrap_or_default();
            let cause = std::error::Error::source(err)
                .map(ToString::to_string)
                .unwrap_or_default();
            if cause.starts_with("strconv.ParseBool") {
                Some(format!(
                    "invalid boolean value {value:?} for -{flag}: {cause}"
                ))
            } else {
                Some(format!("invalid value {value:?} for flag -{flag}: {cause}"))
            }
        }
        _ => None,
    }
}

/// A duration as Go's `time.Duration.String()` writes it (`1h0m0s`, `30m0s`, `0s`), which is
/// what Vault's client sends for duration flags.
pub use tresor_sdk::duration::format_go as go_duration;

/// `key=value` flags (`-metadata`, `-options`): a later key replaces an earlier one.
pub fn key_values(
    pairs: &[String],
    flag: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, ExitCode> {
    let mut out = serde_json::Map::new();
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(usage(format!(
                "invalid value \"{pair}\" for flag -{flag}: missing = in KV pair: \"{pair}\""
            )));
        };
        out.insert(k.to_owned(), serde_json::Value::String(v.to_owned()));
    }
    Ok(out)
}

/// Vault's `ensureTrailingSlash(sanitizePath(p))` for mount paths.
pub fn mount_path(path: &str) -> String {
    let trimmed = path.trim().trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_vault_flags_and_print_like_go() {
        assert_eq!(duration("1h"), Ok(3600));
        assert_eq!(duration("90"), Ok(90));
        assert!(duration("soon").is_err());
        assert_eq!(go_duration(3600), "1h0m0s");
        assert_eq!(go_duration(1800), "30m0s");
        assert_eq!(go_duration(0), "0s");
    }

    #[test]
    fn mount_paths_get_one_trailing_slash() {
        assert_eq!(mount_path("/kv//"), "kv/");
        assert_eq!(mount_path("a/b"), "a/b/");
    }
}
