//! The `listener "tcp" { ... }` block.

use std::net::SocketAddr;
use std::path::PathBuf;

use hcl_edit::structure::{Block, Structure};

use super::{Cx, Section};
use crate::error::{Located, Problem};
use crate::model::{
    DEFAULT_LISTEN_ADDRESS, ListenerConfig, ListenerLimits, ListenerTelemetry, TlsFiles,
};
use crate::unsupported;
use crate::value::Value;

const KEYS: &[&str] = &[
    "address",
    "cluster_address",
    "tls_disable",
    "tls_cert_file",
    "tls_key_file",
    "max_request_size",
    "http_read_header_timeout",
    "http_read_timeout",
    "http_write_timeout",
    "http_idle_timeout",
    "max_request_duration",
    "max_connections",
    "disable_unauthed_rekey_endpoints",
    "disable_unauthed_generate_root_endpoints",
];

const BLOCKS: &[&str] = &["telemetry", "inflight_requests_logging"];

pub(super) fn read(cx: &Cx, block: &Block) -> Result<ListenerConfig, Located> {
    let (kind, label_line) = cx.label(block)?;
    if kind != "tcp" {
        return Err(Located::new(
            label_line,
            Problem::UnknownListener {
                kind: kind.to_owned(),
            },
        ));
    }
    let section = Section {
        place: "in listener \"tcp\"".to_owned(),
        keys: KEYS,
        blocks: BLOCKS,
        unsupported_keys: unsupported::LISTENER_KEYS,
        unsupported_blocks: unsupported::LISTENER_BLOCKS,
    };

    let mut address = DEFAULT_LISTEN_ADDRESS;
    let mut cluster_address = None;
    let mut tls_disable = false;
    let mut cert_file = None;
    let mut key_file = None;
    let mut max_request_size = None;
    let mut limits = ListenerLimits::default();
    let mut disable_unauthed_rekey_endpoints = true;
    let mut disable_unauthed_generate_root_endpoints = true;
    let mut telemetry = ListenerTelemetry::default();
    for structure in block.body.iter() {
        let attr = match structure {
            Structure::Attribute(attr) => attr,
            Structure::Block(inner) => {
                match inner.ident.as_str() {
                    "telemetry" => {
                        super::telemetry::read_listener_telemetry(cx, inner, &mut telemetry)?;
                    }
                    "inflight_requests_logging" => {
                        super::telemetry::read_listener_in_flight(cx, inner, &mut telemetry)?;
                    }
                    _ => return Err(section.unknown_block(cx, inner)),
                }
                continue;
            }
        };
        let value = cx.value(attr);
        match value.key() {
            "address" => address = socket_addr(&value)?,
            "cluster_address" => cluster_address = Some(socket_addr(&value)?),
            "tls_disable" => tls_disable = value.boolean()?,
            "tls_cert_file" => cert_file = Some(PathBuf::from(value.string()?)),
            "tls_key_file" => key_file = Some(PathBuf::from(value.string()?)),
            "max_request_size" => max_request_size = request_size(&value)?,
            "http_read_header_timeout" => {
                limits.read_header_timeout = timeout_or(&value, limits.read_header_timeout)?;
            }
            "http_read_timeout" => limits.read_timeout = timeout_or(&value, limits.read_timeout)?,
            "http_write_timeout" => {
                let timeout = value.duration()?;
                limits.write_timeout = (!timeout.is_zero()).then_some(timeout);
            }
            "http_idle_timeout" => limits.idle_timeout = timeout_or(&value, limits.idle_timeout)?,
            "max_request_duration" => {
                limits.max_request_duration = timeout_or(&value, limits.max_request_duration)?;
            }
            "max_connections" => {
                let count = value.unsigned()?;
                let count =
                    usize::try_from(count).map_err(|_| value.invalid("is too large".to_owned()))?;
                limits.max_connections = (count != 0).then_some(count);
            }
            "disable_unauthed_rekey_endpoints" => {
                disable_unauthed_rekey_endpoints = value.boolean()?;
            }
            "disable_unauthed_generate_root_endpoints" => {
                disable_unauthed_generate_root_endpoints = value.boolean()?;
            }
            _ => return Err(section.unknown_attribute(cx, attr)),
        }
    }

    // As in Vault, TLS is the default and a listener must opt out explicitly; the file paths
    // are then ignored rather than rejected, so TLS can be toggled with one line.
    let tls = if tls_disable {
        None
    } else {
        let missing = |what| {
            Located::new(
                cx.block_line(block),
                Problem::TlsFilesMissing { missing: what },
            )
        };
        Some(TlsFiles {
            cert_file: cert_file.ok_or_else(|| missing("tls_cert_file"))?,
            key_file: key_file.ok_or_else(|| missing("tls_key_file"))?,
        })
    };
    Ok(ListenerConfig {
        address,
        cluster_address,
        tls,
        max_request_size,
        limits,
        disable_unauthed_rekey_endpoints,
        disable_unauthed_generate_root_endpoints,
        telemetry,
    })
}

/// A duration where `0` means "the default", as OpenBao reads its listener timeouts (it only
/// overrides a default with a positive value).
fn timeout_or(
    value: &Value<'_>,
    default: std::time::Duration,
) -> Result<std::time::Duration, Located> {
    let timeout = value.duration()?;
    Ok(if timeout.is_zero() { default } else { timeout })
}

fn socket_addr(value: &Value<'_>) -> Result<SocketAddr, Located> {
    let text = value.string()?;
    text.trim().parse().map_err(|_| {
        value.invalid(format!(
            "{text:?} is not an IP address and port, e.g. \"127.0.0.1:8200\" or \"[::]:8200\""
        ))
    })
}

/// Bytes; `0` means "the default", as in Vault. Vault's negative "unlimited" is refused: an
/// unbounded body is a memory-exhaustion lever we do not offer.
pub(super) fn request_size(value: &Value<'_>) -> Result<Option<usize>, Located> {
    let size = value.unsigned()?;
    let size = usize::try_from(size).map_err(|_| value.invalid("is too large".to_owned()))?;
    Ok((size != 0).then_some(size))
}
