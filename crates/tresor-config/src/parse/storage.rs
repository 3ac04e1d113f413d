//! The `storage "<type>" { ... }` block.

use std::path::PathBuf;

use hcl_edit::structure::{Attribute, Block};

use super::{Cx, Section};
use crate::error::{Located, Problem};
use crate::model::StorageConfig;
use crate::suggest::closest;

const KINDS: &[&str] = &["embedded", "inmem", "postgresql"];

/// Vault backends people are likely to bring along; `embedded` replaces both.
const REPLACED_BY_EMBEDDED: &[&str] = &["raft", "file"];

/// A storage block as read: the store, and the block's own `disable_clustering` if it set one.
pub(super) struct StorageBlock {
    pub(super) config: StorageConfig,
    /// OpenBao reads `disable_clustering` from the storage block too (`parseStorage`, "common
    /// to all backends"); a top-level `disable_clustering` overrides it. Accepted in the
    /// `postgresql` block, the only one with HA; meaningless in a migration's stanzas.
    pub(super) disable_clustering: Option<bool>,
}

pub(super) fn read(cx: &Cx, block: &Block) -> Result<StorageBlock, Located> {
    let (kind, label_line) = cx.label(block)?;
    let keys: &'static [&'static str] = match kind {
        "embedded" => &["path", "cache_size"],
        "inmem" => &[],
        "postgresql" => &[
            "connection_url",
            "table",
            "max_parallel",
            "max_idle_connections",
            "ha_enabled",
            "ha_table",
            "disable_clustering",
        ],
        _ if REPLACED_BY_EMBEDDED.contains(&kind) => {
            return Err(Located::new(
                label_line,
                Problem::UnsupportedStorage {
                    kind: kind.to_owned(),
                },
            ));
        }
        _ => {
            return Err(Located::new(
                label_line,
                Problem::UnknownStorage {
                    kind: kind.to_owned(),
                    suggestion: closest(kind, KINDS).map(str::to_owned),
                },
            ));
        }
    };
    // `backend` is Vault's older name for `storage`; `storage_source` and
    // `storage_destination` (a migration's file) name themselves.
    let stanza = match block.ident.as_str() {
        "backend" => "storage",
        other => other,
    };
    let section = Section {
        place: format!("in {stanza} {kind:?}"),
        keys,
        blocks: &[],
        unsupported_keys: &[],
        unsupported_blocks: &[],
    };
    let attributes = section.attributes(cx, &block.body)?;
    let missing = |key: &str| {
        Located::new(
            cx.block_line(block),
            Problem::MissingKey {
                key: key.to_owned(),
                place: section.place.clone(),
            },
        )
    };

    match kind {
        "embedded" => {
            let mut path = None;
            let mut cache_size = StorageConfig::DEFAULT_CACHE_SIZE;
            for attr in attributes {
                match attr.key.as_str() {
                    "path" => path = Some(non_empty(cx, attr)?),
                    "cache_size" => cache_size = cache_size_of(cx, attr)?,
                    _ => return Err(section.unknown_attribute(cx, attr)),
                }
            }
            let path = path.ok_or_else(|| missing("path"))?;
            Ok(StorageBlock::plain(StorageConfig::Embedded {
                path: PathBuf::from(path),
                cache_size,
            }))
        }
        "postgresql" => {
            let mut connection_url = None;
            let mut table = None;
            let mut max_parallel = None;
            let mut max_idle_connections = None;
            let mut ha_enabled = false;
            let mut ha_table = None;
            let mut disable_clustering = None;
            for attr in attributes {
                let value = cx.value(attr);
                match value.key() {
                    "connection_url" => connection_url = Some(non_empty(cx, attr)?),
                    "table" => table = Some(non_empty(cx, attr)?),
                    "max_parallel" => {
                        let n = value.unsigned()?;
                        if n == 0 {
                            return Err(value.invalid("must be at least 1".to_owned()));
                        }
                        max_parallel = Some(n);
                    }
                    "max_idle_connections" => max_idle_connections = Some(value.unsigned()?),
                    "ha_enabled" => ha_enabled = value.boolean()?,
                    "ha_table" => ha_table = Some(non_empty(cx, attr)?),
                    "disable_clustering" => disable_clustering = Some(value.boolean()?),
                    _ => return Err(section.unknown_attribute(cx, attr)),
                }
            }
            // No `connection_url` is fine here: the server may find it in the environment.
            Ok(StorageBlock {
                config: StorageConfig::Postgresql {
                    connection_url,
                    table,
                    max_parallel,
                    max_idle_connections,
                    ha_enabled,
                    ha_table,
                },
                disable_clustering,
            })
        }
        // Only "inmem" is left, and it takes no settings at all.
        _ => {
            if let Some(attr) = attributes.into_iter().next() {
                return Err(section.unknown_attribute(cx, attr));
            }
            Ok(StorageBlock::plain(StorageConfig::Inmem))
        }
    }
}

impl StorageBlock {
    fn plain(config: StorageConfig) -> Self {
        Self {
            config,
            disable_clustering: None,
        }
    }
}

/// The embedded store's `cache_size`: at least [`StorageConfig::MIN_CACHE_SIZE`], and
/// addressable on this machine.
fn cache_size_of(cx: &Cx, attr: &Attribute) -> Result<u64, Located> {
    let value = cx.value(attr);
    let bytes = value.size()?;
    if bytes < StorageConfig::MIN_CACHE_SIZE {
        return Err(value.invalid(format!(
            "{bytes} bytes is below the minimum of 1MiB; give a unit, e.g. \"256MiB\""
        )));
    }
    if usize::try_from(bytes).is_err() {
        return Err(value.invalid(format!(
            "{bytes} bytes is more than this machine can address"
        )));
    }
    Ok(bytes)
}

fn non_empty(cx: &Cx, attr: &Attribute) -> Result<String, Located> {
    let value = cx.value(attr);
    let text = value.string()?;
    if text.trim().is_empty() {
        return Err(value.invalid("must not be empty".to_owned()));
    }
    Ok(text)
}
