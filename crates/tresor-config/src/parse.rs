//! From HCL text to [`ServerConfig`]: the top level of the file, and the shared machinery for
//! rejecting keys and blocks a section does not know.

mod audit;
mod listener;
mod migration;
mod seal;
mod storage;
mod telemetry;

use std::time::Duration;

use hcl_edit::Span;
use hcl_edit::structure::{Attribute, Block, Body, Structure};

use crate::error::{Located, Problem};
use crate::lines::Lines;
use crate::model::{ListenerConfig, ServerConfig, StorageConfig};
use crate::overlay::Overlay;
use crate::suggest::closest;
use crate::unsupported;
use crate::value::Value;

pub(crate) use migration::parse_migration;

pub(crate) fn parse_source(source: &str) -> Result<ServerConfig, Located> {
    match parse_overlay(source)? {
        // Nothing in the file to point at; line 1 is where a storage block would go.
        Overlay { storage: None, .. } => Err(Located::new(1, Problem::MissingStorage)),
        Overlay {
            storage: Some(storage),
            rest,
        } => Ok(ServerConfig { storage, ..rest }),
    }
}

/// The file as `-dev` reads it: every section optional, the storage block included.
pub(crate) fn parse_overlay(source: &str) -> Result<Overlay, Located> {
    let (body, cx) = parse_body(source)?;
    TopLevel::default().read(&cx, &body)
}

/// HCL text to its body, with the context the section parsers need.
fn parse_body(source: &str) -> Result<(Body, Cx), Located> {
    let body = hcl_edit::parser::parse_body(source).map_err(|err| {
        Located::new(
            err.location().line(),
            Problem::Syntax {
                column: err.location().column(),
                message: err.message().to_owned(),
            },
        )
    })?;
    let cx = Cx {
        lines: Lines::new(source),
    };
    Ok((body, cx))
}

/// Shared by the section parsers: turns spans into lines and wraps attributes for reading.
pub(crate) struct Cx {
    lines: Lines,
}

impl Cx {
    fn value<'a>(&'a self, attr: &'a Attribute) -> Value<'a> {
        Value {
            attr,
            lines: &self.lines,
        }
    }

    fn block_line(&self, block: &Block) -> usize {
        self.lines.line_of_span(block.ident.span())
    }

    /// The block's single label (its type, as in `listener "tcp"`) and the line it is on.
    fn label<'b>(&self, block: &'b Block) -> Result<(&'b str, usize), Located> {
        match block.labels.as_slice() {
            [label] => Ok((label.as_str(), self.lines.line_of_span(label.span()))),
            labels => Err(Located::new(
                self.block_line(block),
                Problem::Labels {
                    name: block.ident.as_str().to_owned(),
                    found: labels.len(),
                },
            )),
        }
    }
}

/// What a section of the file may contain, so mistakes can be told apart: a typo, a real Vault
/// setting Tresor lacks, or a setting written as a block (or the reverse).
pub(crate) struct Section {
    pub(crate) place: String,
    pub(crate) keys: &'static [&'static str],
    pub(crate) blocks: &'static [&'static str],
    pub(crate) unsupported_keys: &'static [&'static str],
    pub(crate) unsupported_blocks: &'static [&'static str],
}

impl Section {
    fn unknown_attribute(&self, cx: &Cx, attr: &Attribute) -> Located {
        let name = attr.key.as_str();
        let line = cx.lines.line_of_span(attr.key.span());
        let problem = if self.blocks.contains(&name) {
            Problem::ExpectedBlock {
                name: name.to_owned(),
                example: if name == "listener" {
                    "listener \"tcp\" { address = \"127.0.0.1:8200\" }"
                } else {
                    "storage \"embedded\" { path = \"/var/lib/tresor/data.redb\" }"
                },
            }
        } else if self.is_unsupported(name) {
            Problem::Unsupported {
                name: name.to_owned(),
                place: self.place.clone(),
            }
        } else {
            Problem::UnknownKey {
                key: name.to_owned(),
                place: self.place.clone(),
                suggestion: closest(name, self.keys).map(str::to_owned),
            }
        };
        Located::new(line, problem)
    }

    fn unknown_block(&self, cx: &Cx, block: &Block) -> Located {
        let name = block.ident.as_str();
        let problem = if self.keys.contains(&name) {
            Problem::ExpectedAttribute {
                name: name.to_owned(),
            }
        } else if self.is_unsupported(name) {
            Problem::Unsupported {
                name: name.to_owned(),
                place: self.place.clone(),
            }
        } else {
            Problem::UnknownBlock {
                name: name.to_owned(),
                place: self.place.clone(),
                suggestion: closest(name, self.blocks).map(str::to_owned),
            }
        };
        Located::new(cx.block_line(block), problem)
    }

    fn is_unsupported(&self, name: &str) -> bool {
        self.unsupported_keys.contains(&name) || self.unsupported_blocks.contains(&name)
    }

    /// For sections that hold only attributes: every block in them is a mistake.
    fn attributes<'b>(
        &self,
        cx: &Cx,
        body: &'b Body,
    ) -> Result<impl Iterator<Item = &'b Attribute>, Located> {
        if let Some(block) = body.iter().find_map(Structure::as_block) {
            return Err(self.unknown_block(cx, block));
        }
        Ok(body.iter().filter_map(Structure::as_attribute))
    }
}

const TOP_LEVEL_KEYS: &[&str] = &[
    "api_addr",
    "cluster_addr",
    "disable_clustering",
    "ha_forwarding_tls_ca_cert",
    "cluster_name",
    "disable_mlock",
    "ui",
    "log_level",
    "default_lease_ttl",
    "max_lease_ttl",
    "max_request_size",
    "lease_revocation_paused",
    "unsafe_allow_api_audit_creation",
    "allow_audit_log_prefixing",
    "log_format",
];

/// `backend` is Vault's older name for `storage`; accepted, but never suggested.
const TOP_LEVEL_BLOCKS: &[&str] = &["storage", "listener", "audit", "telemetry", "seal"];

#[derive(Default)]
struct TopLevel {
    /// With the line of the storage block, to point at it if a second one turns up.
    storage: Option<(usize, StorageConfig)>,
    /// The storage block's own `disable_clustering`, used unless the top level sets one.
    storage_disable_clustering: Option<bool>,
    listeners: Vec<(usize, ListenerConfig)>,
    api_addr: Option<String>,
    cluster_addr: Option<String>,
    /// `None` when the top level does not set it (the storage block's then applies).
    disable_clustering: Option<bool>,
    ha_forwarding_tls_ca_cert: Option<std::path::PathBuf>,
    cluster_name: Option<String>,
    disable_mlock: bool,
    ui: bool,
    log_level: Option<String>,
    default_lease_ttl: Option<(usize, Duration)>,
    max_lease_ttl: Option<Duration>,
    max_request_size: Option<usize>,
    lease_revocation_paused: bool,
    audit_devices: Vec<crate::model::AuditDeviceConfig>,
    unsafe_allow_api_audit_creation: bool,
    allow_audit_log_prefixing: bool,
    log_format: Option<crate::model::LogFormat>,
    /// With the line of the block, to point at it if a second one turns up.
    telemetry: Option<(usize, crate::model::TelemetryConfig)>,
    seals: Vec<crate::model::SealStanza>,
}

impl TopLevel {
    fn read(mut self, cx: &Cx, body: &Body) -> Result<Overlay, Located> {
        let section = Section {
            place: "at the top level".to_owned(),
            keys: TOP_LEVEL_KEYS,
            blocks: TOP_LEVEL_BLOCKS,
            unsupported_keys: unsupported::TOP_LEVEL_KEYS,
            unsupported_blocks: unsupported::TOP_LEVEL_BLOCKS,
        };
        for structure in body.iter() {
            match structure {
                Structure::Attribute(attr) => self.attribute(cx, &section, attr)?,
                Structure::Block(block) => self.block(cx, &section, block)?,
            }
        }
        self.finish()
    }

    fn attribute(&mut self, cx: &Cx, section: &Section, attr: &Attribute) -> Result<(), Located> {
        let value = cx.value(attr);
        match value.key() {
            "api_addr" => self.api_addr = Some(value.string()?),
            "cluster_addr" => self.cluster_addr = Some(cluster_addr(&value)?),
            "disable_clustering" => self.disable_clustering = Some(value.boolean()?),
            "ha_forwarding_tls_ca_cert" => {
                self.ha_forwarding_tls_ca_cert = Some(value.string()?.into());
            }
            "cluster_name" => self.cluster_name = Some(value.string()?),
            "disable_mlock" => self.disable_mlock = value.boolean()?,
            "ui" => self.ui = value.boolean()?,
            "log_level" => self.log_level = Some(log_level(&value)?),
            "default_lease_ttl" => self.default_lease_ttl = Some((value.line(), value.duration()?)),
            "max_lease_ttl" => self.max_lease_ttl = Some(value.duration()?),
            "max_request_size" => self.max_request_size = listener::request_size(&value)?,
            "lease_revocation_paused" => self.lease_revocation_paused = value.boolean()?,
            "unsafe_allow_api_audit_creation" => {
                self.unsafe_allow_api_audit_creation = value.boolean()?;
            }
            "allow_audit_log_prefixing" => self.allow_audit_log_prefixing = value.boolean()?,
            "log_format" => {
                let raw = value.string()?;
                self.log_format =
                    Some(crate::model::LogFormat::from_name(&raw).ok_or_else(|| {
                        value.invalid(format!("{raw:?} is not a log format; use standard or json"))
                    })?);
            }
            _ => return Err(section.unknown_attribute(cx, attr)),
        }
        Ok(())
    }

    fn block(&mut self, cx: &Cx, section: &Section, block: &Block) -> Result<(), Located> {
        match block.ident.as_str() {
            "storage" | "backend" => {
                let line = cx.block_line(block);
                if let Some((first_line, _)) = self.storage {
                    return Err(Located::new(line, Problem::DuplicateStorage { first_line }));
                }
                let read = storage::read(cx, block)?;
                self.storage = Some((line, read.config));
                self.storage_disable_clustering = read.disable_clustering;
            }
            "listener" => {
                let line = cx.block_line(block);
                let listener = listener::read(cx, block)?;
                if let Some((first_line, _)) = self
                    .listeners
                    .iter()
                    .find(|(_, other)| other.address == listener.address)
                {
                    return Err(Located::new(
                        line,
                        Problem::DuplicateListener {
                            address: listener.address.to_string(),
                            first_line: *first_line,
                        },
                    ));
                }
                self.listeners.push((line, listener));
            }
            "audit" => {
                let line = cx.block_line(block);
                let device = audit::read(cx, block)?;
                let path = device.path.trim_matches('/');
                if self
                    .audit_devices
                    .iter()
                    .any(|d| d.path.trim_matches('/') == path)
                {
                    return Err(Located::new(
                        line,
                        Problem::InvalidValue {
                            key: "audit".to_owned(),
                            message: format!("a second audit device at path {path:?}"),
                        },
                    ));
                }
                self.audit_devices.push(device);
            }
            "telemetry" => {
                let line = cx.block_line(block);
                if let Some((first_line, _)) = self.telemetry {
                    // OpenBao: "only one 'telemetry' block is permitted".
                    return Err(Located::new(
                        line,
                        Problem::InvalidValue {
                            key: "telemetry".to_owned(),
                            message: format!(
                                "only one telemetry block is permitted (the first is on line {first_line})"
                            ),
                        },
                    ));
                }
                self.telemetry = Some((line, telemetry::read(cx, block)?));
            }
            "seal" => self.seals.push(seal::read(cx, block)?),
            _ => return Err(section.unknown_block(cx, block)),
        }
        Ok(())
    }

    fn finish(self) -> Result<Overlay, Located> {
        if let (Some((line, default)), Some(max)) = (self.default_lease_ttl, self.max_lease_ttl)
            && default > max
        {
            // Vault refuses this at startup too: every lease would be clamped below its default.
            return Err(Located::new(
                line,
                Problem::InvalidValue {
                    key: "default_lease_ttl".to_owned(),
                    message: "must not be longer than max_lease_ttl".to_owned(),
                },
            ));
        }
        seal::check_all(&self.seals)?;
        let top_level_size = self.max_request_size;
        let listeners = self
            .listeners
            .into_iter()
            .map(|(_, mut listener)| {
                // Vault only knows the per-listener setting; a top-level one is the default for
                // listeners that do not set their own.
                listener.max_request_size = listener.max_request_size.or(top_level_size);
                listener
            })
            .collect();
        Ok(Overlay {
            storage: self.storage.map(|(_, storage)| storage),
            // Replaced by the file's storage, or by dev mode's: never used as it is.
            rest: ServerConfig {
                storage: StorageConfig::Inmem,
                listeners,
                api_addr: self.api_addr,
                cluster_addr: self.cluster_addr,
                // OpenBao's precedence: the top level's, when set, over the storage block's.
                disable_clustering: self
                    .disable_clustering
                    .or(self.storage_disable_clustering)
                    .unwrap_or(false),
                ha_forwarding_tls_ca_cert: self.ha_forwarding_tls_ca_cert,
                cluster_name: self.cluster_name,
                disable_mlock: self.disable_mlock,
                ui: self.ui,
                log_level: self.log_level,
                default_lease_ttl: self.default_lease_ttl.map(|(_, ttl)| ttl),
                max_lease_ttl: self.max_lease_ttl,
                lease_revocation_paused: self.lease_revocation_paused,
                audit_devices: self.audit_devices,
                unsafe_allow_api_audit_creation: self.unsafe_allow_api_audit_creation,
                allow_audit_log_prefixing: self.allow_audit_log_prefixing,
                log_format: self.log_format,
                telemetry: self.telemetry.map(|(_, t)| t),
                seals: self.seals,
            },
        })
    }
}

/// `cluster_addr` in the file; see [`cluster_addr_url`].
fn cluster_addr(value: &Value<'_>) -> Result<String, Located> {
    cluster_addr_url(&value.string()?).map_err(|message| value.invalid(message))
}

/// A `cluster_addr` (from the file or `BAO_CLUSTER_ADDR`): a URL with a host and a port, as
/// Vault requires (`https://node-1:8201`), without a trailing `/`. Vault forces the scheme to
/// `https`; Tresor keeps it as written, since it only reports it. The error says what is wrong.
pub(crate) fn cluster_addr_url(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim().trim_end_matches('/');
    let Some((scheme, rest)) = trimmed.split_once("://") else {
        return Err(format!(
            "{raw:?} is not a URL; write it as https://HOST:PORT"
        ));
    };
    let port_ok = rest
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !matches!(scheme, "http" | "https") || !port_ok || rest.contains('/') {
        return Err(format!(
            "{raw:?} is not a URL with a host and a port; write it as https://HOST:PORT"
        ));
    }
    Ok(trimmed.to_owned())
}

/// Vault's level names, mapped onto `tracing`'s so the binary can use them directly.
fn log_level(value: &Value<'_>) -> Result<String, Located> {
    let raw = value.string()?;
    let level = match raw.trim().to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" | "notice" => "info",
        "warn" | "warning" => "warn",
        "error" | "err" => "error",
        _ => {
            return Err(value.invalid(format!(
                "{raw:?} is not a log level; use trace, debug, info, warn or error"
            )));
        }
    };
    Ok(level.to_owned())
}
