//! The rules of a run: merging sources, the `required` check, and what to do with each name
//! given what the target holds.
//!
//! Ownership: after each write the importer records the version it wrote in the key's
//! `custom_metadata` ([`VERSION_KEY`], and [`ORIGIN_KEY`]: `fixture` or `source`). A key whose
//! current version is the recorded one is the importer's own and may be replaced; any other
//! existing key (no record, or a later version) is someone else's and is never overwritten.
//! Every write is a KV v2 check-and-set on the version read, so a writer that gets in between
//! the read and the write wins, and the name is reported as skipped-foreign.

use std::collections::BTreeMap;

use tresor_sdk::secret::SecretString;

use crate::kv::{Client, KvError, Metadata};
use crate::source::Entry;

/// `custom_metadata` key: the version this importer wrote last.
pub const VERSION_KEY: &str = "tresor-bootstrap-version";
/// `custom_metadata` key: `fixture` or `source`, what that version held.
pub const ORIGIN_KEY: &str = "tresor-bootstrap-origin";

/// What happens (or, in a dry run, would happen) to a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// A real value written where nothing existed.
    Created,
    /// A real value written over a fixture or over a value this importer wrote earlier.
    Updated,
    /// Nothing to write: the target already holds the value, or holds a value the run has no
    /// replacement for.
    Unchanged,
    /// Someone else's value (no record, a later version, or a write that won the CAS race):
    /// left alone.
    SkippedForeign,
    /// A fixture written where nothing existed.
    Fixture,
    /// No real value from any source, and the target still holds this importer's fixture.
    Missing,
    /// Reading or writing the target failed (the run exits 1).
    Failed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Unchanged => "unchanged",
            Action::SkippedForeign => "skipped-foreign",
            Action::Fixture => "fixture",
            Action::Missing => "missing",
            Action::Failed => "failed",
        }
    }

    pub const ALL: [Action; 7] = [
        Action::Created,
        Action::Updated,
        Action::Unchanged,
        Action::SkippedForeign,
        Action::Fixture,
        Action::Missing,
        Action::Failed,
    ];

    /// Whether the action writes a version.
    pub fn writes(self) -> bool {
        matches!(self, Action::Created | Action::Updated | Action::Fixture)
    }
}

/// What a name should hold.
#[derive(Debug)]
pub enum Desired {
    Real(Entry),
    Fixture(SecretString),
}

impl Desired {
    pub fn value(&self) -> &SecretString {
        match self {
            Desired::Real(e) => &e.value,
            Desired::Fixture(v) => v,
        }
    }

    pub fn origin(&self) -> &str {
        match self {
            Desired::Real(e) => &e.origin,
            Desired::Fixture(_) => "fixture",
        }
    }
}

/// Merges the sources' entries (in source order: a later one wins) with the fixtures.
pub fn merge(
    loaded: Vec<Vec<Entry>>,
    fixtures: &BTreeMap<String, SecretString>,
) -> BTreeMap<String, Desired> {
    let mut out: BTreeMap<String, Desired> = BTreeMap::new();
    for entries in loaded {
        for e in entries {
            out.insert(e.name.clone(), Desired::Real(e));
        }
    }
    for (name, value) in fixtures {
        out.entry(name.clone())
            .or_insert_with(|| Desired::Fixture(value.clone()));
    }
    out
}

/// Required names with no real value, an empty one, or one equal to its fixture.
pub fn unmet_required(
    required: &[String],
    merged: &BTreeMap<String, Desired>,
    fixtures: &BTreeMap<String, SecretString>,
) -> Vec<String> {
    required
        .iter()
        .filter(|name| match merged.get(name.as_str()) {
            Some(Desired::Real(e)) => {
                e.value.is_empty() || fixtures.get(name.as_str()).is_some_and(|f| *f == e.value)
            }
            _ => true,
        })
        .cloned()
        .collect()
}

/// A name's decision, with what the write needs.
#[derive(Debug)]
pub struct Decision {
    pub action: Action,
    /// The version the write's `cas` names (0: no version yet).
    pub cas: u64,
    /// Why, for skipped-foreign and failures (no value).
    pub note: Option<String>,
}

/// Whether the key's current version is the one this importer recorded.
fn ours(meta: &Metadata) -> bool {
    meta.custom_metadata
        .get(VERSION_KEY)
        .is_some_and(|v| *v == meta.current_version.to_string())
}

/// Reads the target's state of `key` and decides.
pub async fn decide(
    target: &Client,
    mount: &str,
    key: &str,
    desired: &Desired,
) -> Result<Decision, KvError> {
    let meta = target.metadata(mount, key).await?;
    let meta = match meta {
        Some(m) if m.current_version > 0 => m,
        other => {
            // Nothing was ever written (metadata alone may exist: cas 0 still matches).
            let cas = other.map_or(0, |m| m.current_version);
            let action = match desired {
                Desired::Real(_) => Action::Created,
                Desired::Fixture(_) => Action::Fixture,
            };
            return Ok(Decision {
                action,
                cas,
                note: None,
            });
        }
    };
    let mine = ours(&meta);
    let decision = |action, note: Option<&str>| Decision {
        action,
        cas: meta.current_version,
        note: note.map(str::to_owned),
    };
    match desired {
        Desired::Fixture(_) => {
            let our_fixture =
                mine && meta.custom_metadata.get(ORIGIN_KEY).map(String::as_str) == Some("fixture");
            Ok(decision(
                if our_fixture {
                    Action::Missing
                } else {
                    Action::Unchanged
                },
                None,
            ))
        }
        Desired::Real(entry) => {
            let current = if meta.current_gone {
                None
            } else {
                target
                    .read(mount, key, meta.current_version)
                    .await?
                    .and_then(|mut f| f.strings.remove("value"))
            };
            if current.as_ref() == Some(&entry.value) {
                return Ok(decision(Action::Unchanged, None));
            }
            if mine {
                Ok(decision(Action::Updated, None))
            } else {
                let why = if meta.custom_metadata.contains_key(VERSION_KEY) {
                    "a later version than the one this importer wrote"
                } else {
                    "written by someone else: no tresor-bootstrap record"
                };
                Ok(decision(Action::SkippedForeign, Some(why)))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn entry(name: &str, value: &str, origin: &str) -> Entry {
        Entry {
            name: name.into(),
            value: value.into(),
            origin: origin.into(),
        }
    }

    #[test]
    fn a_later_source_wins_and_fixtures_fill_only_the_gaps() {
        let fixtures = BTreeMap::from([
            ("a".to_owned(), SecretString::from("fa")),
            ("c".to_owned(), SecretString::from("fc")),
        ]);
        let merged = merge(
            vec![
                vec![entry("a", "1", "first"), entry("b", "2", "first")],
                vec![entry("a", "3", "second")],
            ],
            &fixtures,
        );
        assert_eq!(merged["a"].value().expose(), "3");
        assert_eq!(merged["a"].origin(), "second");
        assert_eq!(merged["b"].origin(), "first");
        assert!(matches!(&merged["c"], Desired::Fixture(v) if v.expose() == "fc"));
    }

    #[test]
    fn required_names_missing_empty_or_equal_to_their_fixture_are_unmet() {
        let fixtures = BTreeMap::from([
            ("tok".to_owned(), SecretString::from("placeholder")),
            ("user".to_owned(), SecretString::from("placeholder-user")),
        ]);
        let merged = merge(
            vec![vec![
                entry("tok", "placeholder", "e"),
                entry("user", "real", "e"),
                entry("empty", "", "e"),
            ]],
            &fixtures,
        );
        let required: Vec<String> = ["tok", "user", "empty", "absent"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            unmet_required(&required, &merged, &fixtures),
            ["tok", "empty", "absent"]
        );
    }

    #[test]
    fn a_key_is_ours_only_at_the_recorded_version() {
        let meta = |v: u64, rec: Option<&str>| Metadata {
            current_version: v,
            custom_metadata: rec
                .map(|r| BTreeMap::from([(VERSION_KEY.to_owned(), r.to_owned())]))
                .unwrap_or_default(),
            current_gone: false,
        };
        assert!(ours(&meta(3, Some("3"))));
        assert!(!ours(&meta(4, Some("3"))));
        assert!(!ours(&meta(3, None)));
    }
}
