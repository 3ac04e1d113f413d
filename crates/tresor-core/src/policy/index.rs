//! Finding the rule that decides a path without scanning every rule.
//!
//! - Exact patterns: a hash map from path to rule.
//! - Glob patterns (`secret/fo*`): a byte trie of their prefixes; walking the path through it
//!   meets exactly the globs that match.
//! - Segment-wildcard patterns (`secret/+/x`): grouped at the trie node of their literal lead
//!   (`secret/`), so only rules whose lead prefixes the path are considered. Within a group,
//!   rules with an exact literal after their first `+` are filed under (segment index,
//!   literal), so the path's segment there selects them with a hash lookup; the few without
//!   one are tried in turn.
//!
//! Priority (see [`priority`](super::priority)) depends only on the pattern, so every
//! non-exact rule is ranked once at build time and a lookup keeps the highest-ranked match,
//! skipping candidates that could not beat it.

use std::collections::HashMap;

use super::priority::{PatternKind, PriorityKey, SegmentPattern};
use super::trie::{Slot, Trie, TrieBuilder, Visitor};

/// A segment-wildcard rule as stored in its group.
#[derive(Debug)]
struct Candidate {
    slot: Slot,
    pattern: SegmentPattern,
}

/// The literal a matching path has at one segment index → the rules requiring it.
type ByLiteral = HashMap<Box<str>, Vec<Candidate>>;

/// The segment-wildcard rules sharing one literal lead. Every list is highest rank first.
#[derive(Debug, Default)]
struct Group {
    /// Per segment index, the rules whose discriminating literal sits there.
    by_literal: Vec<(usize, ByLiteral)>,
    /// Rules without such a literal (`secret/+`, `secret/+/fo*`).
    others: Vec<Candidate>,
}

#[derive(Debug, Default)]
pub(crate) struct RuleIndex {
    exact: HashMap<Box<str>, u32>,
    trie: Trie,
    groups: Vec<Group>,
}

impl RuleIndex {
    /// Indexes `patterns`; a pattern's position is the rule id lookups return.
    pub(crate) fn build<'a>(patterns: impl IntoIterator<Item = &'a str>) -> RuleIndex {
        let mut exact = HashMap::new();
        let mut ranked: Vec<(PriorityKey<'a>, PatternKind, u32)> = Vec::new();
        for (id, pattern) in patterns.into_iter().enumerate() {
            let id = u32::try_from(id).unwrap_or(u32::MAX);
            let kind = PatternKind::classify(pattern);
            match PriorityKey::of(pattern, &kind) {
                Some(key) => ranked.push((key, kind, id)),
                None => {
                    exact.insert(pattern.into(), id);
                }
            }
        }
        ranked.sort_by(|a, b| a.0.cmp(&b.0));

        let mut trie = TrieBuilder::new();
        let mut groups: Vec<Group> = Vec::new();
        // Highest rank first, so every list below comes out in that order.
        for (position, (_, kind, id)) in ranked.into_iter().enumerate().rev() {
            let slot = Slot {
                rank: u32::try_from(position + 1).unwrap_or(u32::MAX),
                rule: id,
            };
            match kind {
                PatternKind::Prefix { prefix } => trie.insert_prefix(&prefix, slot),
                PatternKind::Segments(pattern) => {
                    let group_id = match trie.group_at(pattern.anchor()) {
                        Some(group_id) => group_id,
                        None => {
                            let group_id = u32::try_from(groups.len()).unwrap_or(u32::MAX);
                            groups.push(Group::default());
                            trie.set_group(pattern.anchor(), group_id);
                            group_id
                        }
                    };
                    if let Some(group) = groups.get_mut(group_id as usize) {
                        group.add(Candidate { slot, pattern });
                    }
                }
                PatternKind::Exact => {}
            }
        }
        RuleIndex {
            exact,
            trie: trie.build(),
            groups,
        }
    }

    pub(crate) fn exact(&self, path: &str) -> Option<u32> {
        self.exact.get(path).copied()
    }

    /// The highest-priority glob or segment-wildcard rule matching `path`.
    pub(crate) fn non_exact(&self, path: &str) -> Option<u32> {
        let mut best = Best {
            groups: &self.groups,
            path,
            segments: None,
            best: None,
        };
        self.trie.walk(path, &mut best);
        best.best.map(|slot| slot.rule)
    }
}

impl Group {
    fn add(&mut self, candidate: Candidate) {
        let Some((index, literal)) = candidate.pattern.discriminator() else {
            self.others.push(candidate);
            return;
        };
        let literal: Box<str> = literal.into();
        let position = match self.by_literal.iter().position(|(i, _)| *i == index) {
            Some(position) => position,
            None => {
                self.by_literal.push((index, HashMap::new()));
                self.by_literal.len() - 1
            }
        };
        if let Some((_, map)) = self.by_literal.get_mut(position) {
            map.entry(literal).or_default().push(candidate);
        }
    }
}

/// Tracks the highest-ranked matching rule during a trie walk.
struct Best<'a> {
    groups: &'a [Group],
    path: &'a str,
    /// The path split on `/`, made when the first group is met.
    segments: Option<Vec<&'a str>>,
    best: Option<Slot>,
}

impl Best<'_> {
    fn outranks(&self, slot: Slot) -> bool {
        self.best.is_some_and(|best| best.rank >= slot.rank)
    }

    /// Tries `candidates` (highest rank first) until one matches or none can win.
    fn try_candidates(&mut self, candidates: &[Candidate], segments: &[&str]) {
        for candidate in candidates {
            if self.outranks(candidate.slot) {
                return;
            }
            if candidate.pattern.matches(segments) {
                self.best = Some(candidate.slot);
                return;
            }
        }
    }
}

impl Visitor for Best<'_> {
    fn prefix_rule(&mut self, slot: Slot) {
        if !self.outranks(slot) {
            self.best = Some(slot);
        }
    }

    fn group(&mut self, group: u32) {
        let Some(group) = self.groups.get(group as usize) else {
            return;
        };
        let path = self.path;
        let segments = self
            .segments
            .take()
            .unwrap_or_else(|| path.split('/').collect());
        for (index, by_literal) in &group.by_literal {
            if let Some(candidates) = segments
                .get(*index)
                .and_then(|segment| by_literal.get(*segment))
            {
                self.try_candidates(candidates, &segments);
            }
        }
        self.try_candidates(&group.others, &segments);
        self.segments = Some(segments);
    }
}

#[cfg(test)]
mod tests {
    use super::RuleIndex;

    #[test]
    fn picks_by_kind_and_priority() {
        let patterns = [
            "secret/foo",
            "secret/*",
            "secret/+/bar",
            "secret/+/ba*",
            "secret/foo/+",
            "secret/+",
            "+/x/*",
            "other/+/+/q",
            "other/+/b/q*",
        ];
        let index = RuleIndex::build(patterns);
        assert_eq!(index.exact("secret/foo"), Some(0));
        assert_eq!(index.exact("secret/fo"), None);
        let pick = |path| index.non_exact(path).map(|id| patterns[id as usize]);
        assert_eq!(pick("secret/foo/bar"), Some("secret/foo/+"));
        assert_eq!(pick("secret/zip/bar"), Some("secret/+/bar"));
        // Same first-wildcard position, both globs: fewer `+` wins (rule 3).
        assert_eq!(pick("secret/zip/bax"), Some("secret/*"));
        assert_eq!(pick("secret/zip"), Some("secret/+"));
        assert_eq!(pick("secret/zip/x/y"), Some("secret/*"));
        assert_eq!(pick("other/x/y"), Some("+/x/*"));
        assert_eq!(pick("other/y"), None);
        assert_eq!(pick("other/a/b/q"), Some("other/+/+/q"));
        assert_eq!(pick("other/a/b/qq"), Some("other/+/b/q*"));
        assert_eq!(pick("other/a/c/qq"), None);
    }
}
