//! A device's `options` map, read the way Vault's audit backends read it: every value is a
//! string, booleans and numbers are parsed with Go's rules, and bad values are refused with
//! Go's wording (OpenBao passes those errors through).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Where a device writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `file_path` naming a file; `mode` is the permission bits it gets (`None`: `0000`,
    /// which leaves the file's mode alone, as in Vault).
    File { path: PathBuf, mode: Option<u32> },
    /// `file_path = "stdout"`.
    Stdout,
    /// `file_path = "discard"`: formats everything, writes nothing.
    Discard,
    /// A `socket` device.
    Socket {
        address: String,
        /// `socket_type` as given: `tcp` (default), `tcp4`, `tcp6`, `udp`, `udp4`, `udp6`, `unix`.
        network: String,
        write_timeout: Duration,
    },
}

/// The format and hashing options shared by every device type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pub log_raw: bool,
    pub hmac_accessor: bool,
    pub elide_list_responses: bool,
    pub prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceOptions {
    pub target: Target,
    pub format: Format,
}

/// Reads a device's options. Errors are the caller's mistakes, worded as OpenBao words them.
pub fn parse(
    device_type: &str,
    options: &BTreeMap<String, String>,
) -> Result<DeviceOptions, String> {
    let get = |key: &str| options.get(key).map(String::as_str);
    let target = match device_type {
        "file" => {
            let Some(path) = get("file_path").or_else(|| get("path")) else {
                return Err("file_path is required".to_owned());
            };
            // Checked whatever the destination, as OpenBao does.
            let mode = match get("mode") {
                None => Some(0o600),
                Some(text) => match parse_uint_octal(text)? {
                    0 => None,
                    m => Some(m),
                },
            };
            match path {
                "stdout" => Target::Stdout,
                "discard" => Target::Discard,
                _ => Target::File {
                    path: PathBuf::from(path),
                    mode,
                },
            }
        }
        "socket" => {
            let Some(address) = get("address") else {
                return Err("address is required".to_owned());
            };
            // OpenBao's `parseutil.ParseDurationSecond`: a number is seconds, "" is zero. A
            // zero or negative timeout is accepted here and makes every dial time out at once
            // (Go's deadline already passed), so such a device fails its test line.
            let write_timeout = match get("write_timeout") {
                None => Duration::from_secs(2),
                Some(text) => {
                    let nanos = tresor_sdk::duration::parse_str(text).map_err(|e| match e {
                        tresor_sdk::duration::DurationError::MissingUnit => {
                            format!("time: missing unit in duration {text:?}")
                        }
                        _ => format!("time: invalid duration {text:?}"),
                    })?;
                    tresor_sdk::duration::to_std(nanos.max(0))
                        .map_err(|_| format!("time: invalid duration {text:?}"))?
                }
            };
            // Go's network names; anything else fails at dial time, with Go's wording, as in
            // OpenBao (the test line is refused).
            let network = get("socket_type").unwrap_or("tcp").to_owned();
            Target::Socket {
                address: address.to_owned(),
                network,
                write_timeout,
            }
        }
        other => return Err(format!("unknown backend type: {other:?}")),
    };
    match get("format") {
        None | Some("json") => {}
        Some("jsonx") => {
            return Err("jsonx formatting has been removed, consider switching to json by omitting \"format\" or setting it to \"json\"".to_owned());
        }
        Some(format) => return Err(format!("unknown format type {format:?}")),
    }
    let flag = |key: &str, default: bool| match get(key) {
        None => Ok(default),
        Some(text) => parse_bool(text),
    };
    let format = Format {
        log_raw: flag("log_raw", false)?,
        hmac_accessor: flag("hmac_accessor", true)?,
        elide_list_responses: flag("elide_list_responses", false)?,
        prefix: get("prefix").unwrap_or_default().to_owned(),
    };
    Ok(DeviceOptions { target, format })
}

/// Go's `strconv.ParseBool`.
fn parse_bool(text: &str) -> Result<bool, String> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing {text:?}: invalid syntax"
        )),
    }
}

/// Go's `strconv.ParseUint(text, 8, 32)`.
fn parse_uint_octal(text: &str) -> Result<u32, String> {
    if text.is_empty() || !text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(format!(
            "strconv.ParseUint: parsing {text:?}: invalid syntax"
        ));
    }
    u32::from_str_radix(text, 8)
        .map_err(|_| format!("strconv.ParseUint: parsing {text:?}: value out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn bad_values_are_refused_with_go_wording() {
        assert_eq!(
            parse("file", &opts(&[])).unwrap_err(),
            "file_path is required"
        );
        assert_eq!(
            parse("nope", &opts(&[])).unwrap_err(),
            "unknown backend type: \"nope\""
        );
        assert_eq!(
            parse("file", &opts(&[("file_path", "/x"), ("mode", "abc")])).unwrap_err(),
            "strconv.ParseUint: parsing \"abc\": invalid syntax"
        );
        assert_eq!(
            parse("file", &opts(&[("file_path", "/x"), ("log_raw", "maybe")])).unwrap_err(),
            "strconv.ParseBool: parsing \"maybe\": invalid syntax"
        );
        assert_eq!(
            parse("file", &opts(&[("file_path", "/x"), ("format", "xml")])).unwrap_err(),
            "unknown format type \"xml\""
        );
        assert_eq!(
            parse("socket", &opts(&[])).unwrap_err(),
            "address is required"
        );
        let socket = |k: &str, v: &str| parse("socket", &opts(&[("address", "a:1"), (k, v)]));
        assert_eq!(
            socket("write_timeout", "1h5").unwrap_err(),
            "time: missing unit in duration \"1h5\""
        );
        assert_eq!(
            socket("write_timeout", "zz").unwrap_err(),
            "time: invalid duration \"zz\""
        );
        assert!(
            socket("format", "jsonx")
                .unwrap_err()
                .starts_with("jsonx formatting has been removed")
        );
        let timeout = |v: &str| match socket("write_timeout", v).unwrap().target {
            Target::Socket { write_timeout, .. } => write_timeout,
            _ => Duration::MAX,
        };
        assert_eq!(timeout("5"), Duration::from_secs(5));
        assert_eq!(timeout("250ms"), Duration::from_millis(250));
        assert_eq!(timeout("-5s"), Duration::ZERO);
        assert_eq!(timeout(""), Duration::ZERO);
    }

    #[test]
    fn file_defaults() {
        let o = parse("file", &opts(&[("file_path", "/x")])).unwrap();
        assert_eq!(
            o.target,
            Target::File {
                path: PathBuf::from("/x"),
                mode: Some(0o600)
            }
        );
        assert!(o.format.hmac_accessor);
        assert!(!o.format.log_raw);
        assert_eq!(
            parse("file", &opts(&[("file_path", "stdout")]))
                .unwrap()
                .target,
            Target::Stdout
        );
    }
}
