//! What kind of pattern a rule has, how a segment-wildcard pattern matches, and which of two
//! matching patterns wins.
//!
//! Classification follows OpenBao's `parsePaths` to the letter, quirks included: a pattern "has
//! segment wildcards" when it is `+`, starts with `+/` or contains `/+` — so in `secret/+x/y`
//! the `+x` segment is literal yet the rule is matched and ranked as a wildcard rule.

use std::cmp::Ordering;

/// How a rule's pattern matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatternKind {
    /// No wildcard: the path must equal the pattern (a `*` not at the end is literal).
    Exact,
    /// Ends in `*` without segment wildcards: the path must start with `prefix`.
    Prefix { prefix: Box<str> },
    /// Has segment wildcards, possibly ending in `*`.
    Segments(SegmentPattern),
}

impl PatternKind {
    pub(crate) fn classify(pattern: &str) -> PatternKind {
        let has_segment_wildcards =
            pattern == "+" || pattern.contains("/+") || pattern.starts_with("+/");
        match pattern.strip_suffix('*') {
            _ if has_segment_wildcards => PatternKind::Segments(SegmentPattern::new(pattern)),
            Some(prefix) => PatternKind::Prefix {
                prefix: prefix.into(),
            },
            None => PatternKind::Exact,
        }
    }
}

/// One `/`-separated part of a segment-wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// `+`: any single segment, including an empty one.
    Any,
    Literal(Box<str>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentPattern {
    /// The pattern without its trailing `*`, split on `/`.
    parts: Box<[Part]>,
    /// Ended in `*`: the last part is a prefix of the path's segment, and the path may have
    /// more segments after it.
    is_prefix: bool,
    /// The literal text every matching path starts with: the parts before the first `+`
    /// (with their `/`), or the whole pattern when there is no `+` part. Used as the index key.
    anchor: Box<str>,
}

impl SegmentPattern {
    fn new(pattern: &str) -> SegmentPattern {
        let (body, is_prefix) = match pattern.strip_suffix('*') {
            Some(body) => (body, true),
            None => (pattern, false),
        };
        let parts: Box<[Part]> = body
            .split('/')
            .map(|part| match part {
                "+" => Part::Any,
                literal => Part::Literal(literal.into()),
            })
            .collect();
        let anchor = match body.split('/').position(|part| part == "+") {
            Some(first_any) => {
                let mut anchor = String::new();
                for part in body.split('/').take(first_any) {
                    anchor.push_str(part);
                    anchor.push('/');
                }
                anchor
            }
            None => body.to_owned(),
        };
        SegmentPattern {
            parts,
            is_prefix,
            anchor: anchor.into(),
        }
    }

    pub(crate) fn anchor(&self) -> &str {
        &self.anchor
    }

    /// A literal part after the first `+` that a matching path must equal exactly: its
    /// segment index and text. An index can then find the rule by looking up the path's
    /// segment at that index instead of trying the rule.
    pub(crate) fn discriminator(&self) -> Option<(usize, &str)> {
        let first_any = self.parts.iter().position(|part| *part == Part::Any)?;
        let last = self.parts.len().saturating_sub(1);
        self.parts
            .iter()
            .enumerate()
            .skip(first_any + 1)
            .find_map(|(i, part)| match part {
                // The last part of a `*` pattern is a prefix, not an equality.
                Part::Literal(literal) if !(self.is_prefix && i == last) => Some((i, &**literal)),
                _ => None,
            })
    }

    /// OpenBao's `CheckAllowedFromNonExactPaths` match for one wildcard path, given the
    /// request path split on `/`.
    pub(crate) fn matches(&self, segments: &[&str]) -> bool {
        let wanted = self.parts.len();
        if segments.len() < wanted || (!self.is_prefix && segments.len() != wanted) {
            return false;
        }
        let last = wanted.saturating_sub(1);
        self.parts
            .iter()
            .zip(segments)
            .enumerate()
            .all(|(i, (part, segment))| match part {
                Part::Any => true,
                Part::Literal(literal) => {
                    **literal == **segment
                        || (self.is_prefix && i == last && segment.starts_with(&**literal))
                }
            })
    }
}

/// What OpenBao compares when several non-exact patterns match one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PriorityKey<'a> {
    /// Byte index of the first `+` (segment patterns) or of the `*` (prefix patterns).
    pub(crate) first_wildcard: usize,
    /// Ends in `*`.
    pub(crate) is_prefix: bool,
    /// Number of `+` segments.
    pub(crate) wildcards: usize,
    /// The pattern without its trailing `*`: compared by length, then bytewise.
    pub(crate) body: &'a str,
}

impl<'a> PriorityKey<'a> {
    /// `None` for exact patterns, which never compete: an exact match is taken outright.
    pub(crate) fn of(pattern: &'a str, kind: &PatternKind) -> Option<PriorityKey<'a>> {
        match kind {
            PatternKind::Exact => None,
            PatternKind::Prefix { prefix } => Some(PriorityKey {
                first_wildcard: prefix.len(),
                is_prefix: true,
                wildcards: 0,
                body: pattern.strip_suffix('*').unwrap_or(pattern),
            }),
            PatternKind::Segments(segments) => Some(PriorityKey {
                // Vault takes the first `+` character, even one inside a literal segment.
                first_wildcard: pattern.find('+').unwrap_or(pattern.len()),
                is_prefix: segments.is_prefix,
                wildcards: segments
                    .parts
                    .iter()
                    .filter(|part| **part == Part::Any)
                    .count(),
                body: pattern.strip_suffix('*').unwrap_or(pattern),
            }),
        }
    }
}

impl Ord for PriorityKey<'_> {
    /// `Greater` means higher priority. The documented rules, in order: (1) the later first
    /// wildcard wins; (2) not ending in `*` wins; (3) fewer `+` segments win; (4) the longer
    /// pattern wins; (5) the lexicographically larger pattern wins.
    fn cmp(&self, other: &Self) -> Ordering {
        self.first_wildcard
            .cmp(&other.first_wildcard)
            .then_with(|| other.is_prefix.cmp(&self.is_prefix))
            .then_with(|| other.wildcards.cmp(&self.wildcards))
            .then_with(|| self.body.len().cmp(&other.body.len()))
            .then_with(|| self.body.cmp(other.body))
    }
}

impl PartialOrd for PriorityKey<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pattern: &str) -> Option<PriorityKey<'_>> {
        PriorityKey::of(pattern, &PatternKind::classify(pattern))
    }

    fn wins(high: &str, low: &str) {
        assert!(key(high) > key(low), "{high} should outrank {low}");
    }

    #[test]
    fn classification_follows_openbao() {
        assert_eq!(PatternKind::classify("secret/foo"), PatternKind::Exact);
        assert_eq!(PatternKind::classify("secret/*/x"), PatternKind::Exact);
        assert!(
            matches!(PatternKind::classify("secret/fo*"), PatternKind::Prefix { prefix } if &*prefix == "secret/fo")
        );
        assert!(
            matches!(PatternKind::classify("*"), PatternKind::Prefix { prefix } if prefix.is_empty())
        );
        for seg in ["+", "+/a", "a/+", "a/+/b*", "a/+x/y", "a/+x*"] {
            assert!(
                matches!(PatternKind::classify(seg), PatternKind::Segments(_)),
                "{seg}"
            );
        }
        assert_eq!(PatternKind::classify("a+/b"), PatternKind::Exact);
    }

    #[test]
    fn anchors_are_the_literal_lead() {
        let anchor = |p: &str| match PatternKind::classify(p) {
            PatternKind::Segments(s) => s.anchor.to_string(),
            _ => String::new(),
        };
        assert_eq!(anchor("secret/+/teamb"), "secret/");
        assert_eq!(anchor("+/x"), "");
        assert_eq!(anchor("a/b/+/c*"), "a/b/");
        assert_eq!(anchor("a/+x/y*"), "a/+x/y");
    }

    #[test]
    fn discriminators_are_exact_literals_after_the_first_plus() {
        let d = |p: &str| match PatternKind::classify(p) {
            PatternKind::Segments(s) => s.discriminator().map(|(i, l)| (i, l.to_owned())),
            _ => None,
        };
        assert_eq!(d("secret/+/teamb"), Some((2, "teamb".to_owned())));
        assert_eq!(d("secret/+/+/x/*"), Some((3, "x".to_owned())));
        assert_eq!(d("secret/+/fo*"), None, "a glob part is not exact");
        assert_eq!(d("secret/+"), None);
        assert_eq!(d("a/+x/y"), None, "no + part at all");
    }

    #[test]
    fn the_five_rules() {
        // (1) later first wildcard
        wins("secret/foo/+", "secret/+/bar");
        wins("secret/a*", "secret/+");
        // (2) not ending in *
        wins("secret/+/bar", "secret/+/ba*");
        wins("foo/+", "foo/*");
        // (3) fewer + segments
        wins("secret/*", "secret/+/+/foo/*");
        wins("secret/+/bar/baz", "secret/+/+/baz");
        // (4) longer
        wins("secret/+/bar/ba*", "secret/+/bar/b*");
        // (5) lexicographically larger
        wins("a/+/y", "a/+/x");
    }

    #[test]
    fn segment_matching() {
        let m = |pattern: &str, path: &str| match PatternKind::classify(pattern) {
            PatternKind::Segments(s) => s.matches(&path.split('/').collect::<Vec<_>>()),
            _ => false,
        };
        assert!(m("secret/+/teamb", "secret/x/teamb"));
        assert!(m("secret/+/teamb", "secret//teamb"));
        assert!(!m("secret/+/teamb", "secret/teamb"));
        assert!(!m("secret/+/teamb", "secret/x/teamb/y"));
        assert!(m("secret/+/fo*", "secret/x/food/y"));
        assert!(m("secret/+/*", "secret/x/"));
        assert!(!m("secret/+/*", "secret/x"));
        assert!(m("+", "x"));
        assert!(!m("+", "x/y"));
        assert!(m("a/+x/y", "a/+x/y"));
        assert!(!m("a/+x/y", "a/bx/y"));
    }
}
