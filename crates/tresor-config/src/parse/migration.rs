//! A migration file (`tresor operator migrate -config=FILE`): Vault's `storage_source` and
//! `storage_destination` blocks, each read exactly as a `storage` block of its type, and the
//! optional `cluster_addr`.

use hcl_edit::structure::{Block, Structure};

use super::{Cx, Section, parse_body, storage};
use crate::error::{Located, Problem};
use crate::model::{MigrationConfig, StorageConfig};

const SOURCE: &str = "storage_source";
const DESTINATION: &str = "storage_destination";

pub(crate) fn parse_migration(source: &str) -> Result<MigrationConfig, Located> {
    let (body, cx) = parse_body(source)?;
    let section = Section {
        place: "at the top level of a migration file".to_owned(),
        keys: &["cluster_addr"],
        blocks: &[SOURCE, DESTINATION],
        unsupported_keys: &[],
        unsupported_blocks: &[],
    };
    let mut source_stanza: Option<(usize, StorageConfig)> = None;
    let mut destination: Option<(usize, StorageConfig)> = None;
    let mut cluster_addr = None;
    for structure in body.iter() {
        match structure {
            Structure::Attribute(attr) => {
                let value = cx.value(attr);
                match value.key() {
                    // Vault needs it only for a raft destination; Tresor's backends do not,
                    // but a Vault migration file carries over unchanged.
                    "cluster_addr" => cluster_addr = Some(value.string()?),
                    _ => return Err(section.unknown_attribute(&cx, attr)),
                }
            }
            Structure::Block(block) => {
                let (stanza, slot) = match block.ident.as_str() {
                    SOURCE => (SOURCE, &mut source_stanza),
                    DESTINATION => (DESTINATION, &mut destination),
                    _ => return Err(section.unknown_block(&cx, block)),
                };
                let line = cx.block_line(block);
                if let Some((first_line, _)) = slot {
                    return Err(Located::new(
                        line,
                        Problem::DuplicateStanza {
                            stanza,
                            first_line: *first_line,
                        },
                    ));
                }
                *slot = Some((line, read_stanza(&cx, block, stanza)?));
            }
        }
    }
    // Nothing in the file to point at; line 1 is where the block would go.
    let missing = |stanza| Located::new(1, Problem::MissingStanza { stanza });
    let (_, source_config) = source_stanza.ok_or_else(|| missing(SOURCE))?;
    let (_, destination) = destination.ok_or_else(|| missing(DESTINATION))?;
    Ok(MigrationConfig {
        source: source_config,
        destination,
        cluster_addr,
    })
}

fn read_stanza(cx: &Cx, block: &Block, stanza: &'static str) -> Result<StorageConfig, Located> {
    // A migration runs no cluster: a `disable_clustering` in the stanza changes nothing.
    let config = storage::read(cx, block)?.config;
    if config == StorageConfig::Inmem {
        let (_, label_line) = cx.label(block)?;
        return Err(Located::new(label_line, Problem::InmemMigration { stanza }));
    }
    Ok(config)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod tests {
    use super::*;

    fn fails(text: &str) -> (usize, Problem) {
        match parse_migration(text) {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(located) => (located.line, located.problem),
        }
    }

    #[test]
    fn both_stanzas_are_read_as_storage_blocks_of_their_type() {
        let config = parse_migration(
            r#"
storage_source "embedded" {
  path       = "/var/lib/tresor/data.redb"
  cache_size = "64MiB"
}
storage_destination "postgresql" {
  connection_url = "postgres://tresor:pw@db:5432/tresor"
  table          = "kv"
  max_parallel   = "8"
}
cluster_addr = "https://tresor-0:8201"
"#,
        )
        .unwrap();
        assert_eq!(
            config.source,
            StorageConfig::Embedded {
                path: "/var/lib/tresor/data.redb".into(),
                cache_size: 64 << 20,
            }
        );
        let StorageConfig::Postgresql {
            connection_url,
            table,
            max_parallel,
            ..
        } = &config.destination
        else {
            panic!("{:?}", config.destination);
        };
        assert_eq!(
            connection_url.as_deref(),
            Some("postgres://tresor:pw@db:5432/tresor")
        );
        assert_eq!(table.as_deref(), Some("kv"));
        assert_eq!(*max_parallel, Some(8));
        assert_eq!(
            config.cluster_addr.as_deref(),
            Some("https://tresor-0:8201")
        );
        assert!(!format!("{config:?}").contains("pw@"), "{config:?}");
    }

    #[test]
    fn a_missing_stanza_is_named() {
        let (line, problem) = fails("storage_source \"embedded\" { path = \"/a.redb\" }\n");
        assert_eq!(line, 1);
        assert_eq!(
            problem,
            Problem::MissingStanza {
                stanza: "storage_destination"
            }
        );
        let (_, problem) = fails("storage_destination \"embedded\" { path = \"/a.redb\" }\n");
        assert_eq!(
            problem,
            Problem::MissingStanza {
                stanza: "storage_source"
            }
        );
    }

    #[test]
    fn a_second_stanza_points_at_the_first() {
        let (line, problem) = fails(
            "storage_source \"embedded\" { path = \"/a.redb\" }\n\
             storage_destination \"embedded\" { path = \"/b.redb\" }\n\
             storage_source \"embedded\" { path = \"/c.redb\" }\n",
        );
        assert_eq!(line, 3);
        assert_eq!(
            problem,
            Problem::DuplicateStanza {
                stanza: "storage_source",
                first_line: 1
            }
        );
    }

    #[test]
    fn unknown_keys_and_blocks_are_refused_with_their_line() {
        let (line, problem) = fails(
            "storage_source \"embedded\" {\n  path = \"/a.redb\"\n  pth = \"x\"\n}\n\
             storage_destination \"embedded\" { path = \"/b.redb\" }\n",
        );
        assert_eq!(line, 3);
        assert!(
            matches!(&problem, Problem::UnknownKey { key, place, .. }
                if key == "pth" && place == "in storage_source \"embedded\""),
            "{problem:?}"
        );
        let (line, problem) = fails(
            "storage_source \"embedded\" { path = \"/a.redb\" }\n\
             storage_destination \"embedded\" { path = \"/b.redb\" }\n\
             listener \"tcp\" { address = \"127.0.0.1:8200\" }\n",
        );
        assert_eq!(line, 3);
        assert!(
            matches!(&problem, Problem::UnknownBlock { name, .. } if name == "listener"),
            "{problem:?}"
        );
        let (line, problem) = fails(
            "storage_source \"embedded\" { path = \"/a.redb\" }\n\
             storage_destination \"embedded\" { path = \"/b.redb\" }\n\
             api_addr = \"https://x\"\n",
        );
        assert_eq!(line, 3);
        assert!(
            matches!(&problem, Problem::UnknownKey { key, .. } if key == "api_addr"),
            "{problem:?}"
        );
        let (line, problem) = fails(
            "storage_source \"embeded\" { path = \"/a.redb\" }\n\
             storage_destination \"embedded\" { path = \"/b.redb\" }\n",
        );
        assert_eq!(line, 1);
        assert!(
            matches!(&problem, Problem::UnknownStorage { suggestion: Some(s), .. } if s == "embedded"),
            "{problem:?}"
        );
        let (line, problem) = fails(
            "storage_source \"embedded\" { path = \"/a.redb\" }\n\
             storage_destination \"embedded\" {\n}\n",
        );
        assert_eq!(line, 2);
        assert!(
            matches!(&problem, Problem::MissingKey { key, .. } if key == "path"),
            "{problem:?}"
        );
    }

    #[test]
    fn inmem_is_refused_on_either_side() {
        let (line, problem) = fails(
            "storage_source \"embedded\" { path = \"/a.redb\" }\n\
             storage_destination \"inmem\" {}\n",
        );
        assert_eq!(line, 2);
        assert_eq!(
            problem,
            Problem::InmemMigration {
                stanza: "storage_destination"
            }
        );
        assert!(
            problem
                .to_string()
                .contains("\"embedded\" or \"postgresql\"")
        );
        let (line, problem) = fails(
            "\nstorage_source \"inmem\" {}\n\
             storage_destination \"embedded\" { path = \"/b.redb\" }\n",
        );
        assert_eq!(line, 2);
        assert_eq!(
            problem,
            Problem::InmemMigration {
                stanza: "storage_source"
            }
        );
    }
}
