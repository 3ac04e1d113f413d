//! A YAML (and JSON) stream parsed into an arena of nodes that keep their line and column.
//!
//! `saphyr-parser` hands us events with spans; we build the tree ourselves so that aliases are
//! never copied: an alias is the anchored node's id, shared. The tree allocates per file, not
//! per node: scalars' text lives in one buffer, sequences' items and mappings' entries in two
//! shared arrays, and a node is a fixed-size record of ranges into them (allocating a `String`
//! or a `Vec` per node cost more time than the rules, and 18 times the input in memory).
//! Walking a shared node twice would
//! still multiply work, so every node carries its expanded size, each alias adds its target's
//! expanded size to a running total, and a stream whose aliases would add more than
//! [`Limits::max_alias_nodes`] nodes is refused — a "billion laughs" document costs a few
//! hundred bytes of memory and one error, never a billion nodes. The stream's own nodes do not
//! count towards that limit; they have their own, [`Limits::max_nodes`], as the entries of one
//! flow collection have [`Limits::max_flow_items`], checked by [`crate::flow`] before parsing
//! (the parser holds a flow collection whole before handing it over).

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

/// Index of a node in [`Yaml::nodes`].
pub type NodeId = u32;

/// A 1-based line and column (columns count Unicode scalar values, as editors do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// How a scalar was written; block scalars and quotes matter for placeholders and locations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

/// What a node is; its contents are [`Yaml::str`], [`Yaml::seq`] or [`Yaml::entries`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Scalar,
    Seq,
    Map,
}

#[derive(Debug, Clone, Copy)]
pub struct Node {
    pub kind: Kind,
    pub style: Style,
    /// A scalar's byte range in the text buffer, a sequence's in the items, a mapping's in
    /// the entries.
    start: u32,
    len: u32,
    /// Where the node starts (a block scalar: its `|`/`>` indicator).
    pub pos: Pos,
    /// Where the node ends (exclusive).
    pub end: Pos,
}

/// One document of the stream; `root` is `None` for an empty document.
#[derive(Debug, Clone, Copy)]
pub struct Doc {
    pub root: Option<NodeId>,
    /// The line of the document's first event (its `---`, or its first node).
    pub start_line: u32,
}

/// Bounds on what one file may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Nodes that expanding a stream's aliases would add to its own nodes: the sum, over
    /// every alias, of its target's expanded size (what a consumer that copies aliases would
    /// materialise on top of what is written).
    pub max_alias_nodes: u64,
    /// Nesting depth of collections; rules walk recursively.
    pub max_depth: usize,
    /// Nodes written in one stream (scalars, collections; an alias is not a node): the tree
    /// costs some 80 bytes per node, and a file of tiny nodes has one every 4 bytes.
    pub max_nodes: u64,
    /// Items of one outermost flow collection (`[…]`, `{…}`, a JSON document), nested
    /// collections' included (commas, `:` and openers): see [`crate::flow`].
    pub max_flow_items: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_alias_nodes: 5_000_000,
            max_depth: 200,
            max_nodes: DEFAULT_MAX_NODES,
            max_flow_items: DEFAULT_MAX_FLOW_ITEMS,
        }
    }
}

/// A 30 MiB file of Deployments and Secrets holds 3.4 million nodes and peaks at about
/// 300 MB; 30 MiB of `- x` lines would hold 7.8 million.
pub const DEFAULT_MAX_NODES: u64 = 4_000_000;

/// The parser holds a flow collection whole, at some 500–850 bytes per item: 500,000 items
/// of `[x,x,…]` (1 MiB) peak at about 260 MB, a 5.7 MiB JSON `List` of 22,000 ConfigMaps
/// (462,000 items) at about 370 MB — about what a 30 MiB file of block YAML costs.
pub const DEFAULT_MAX_FLOW_ITEMS: u64 = 500_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("invalid YAML: {message}")]
    Syntax { pos: Pos, message: String },
    #[error(
        "YAML aliases would expand to more than {limit} nodes on top of the nodes written \
         (the alias-expansion limit, against alias bombs such as \"billion laughs\"); \
         refusing to read further"
    )]
    AliasBomb { pos: Pos, limit: u64 },
    #[error("collections nested deeper than {limit} levels; refusing to read further")]
    TooDeep { pos: Pos, limit: usize },
    #[error("more than {limit} nodes in one file (--max-nodes); refusing to read further")]
    TooManyNodes { pos: Pos, limit: u64 },
    #[error(
        "a flow collection ([…] or {{…}}) starting here holds more than {limit} items \
         (--max-flow-items; the parser would hold it whole in memory); refusing to read it"
    )]
    FlowTooLarge { pos: Pos, limit: u64 },
    #[error("invalid YAML: alias to an unknown anchor")]
    UnknownAnchor { pos: Pos },
    #[error("the input holds more than 4 GiB of scalars or 4 G items; refusing to read further")]
    TooLarge { pos: Pos },
}

impl ParseError {
    pub fn pos(&self) -> Pos {
        match self {
            ParseError::Syntax { pos, .. }
            | ParseError::AliasBomb { pos, .. }
            | ParseError::TooDeep { pos, .. }
            | ParseError::TooManyNodes { pos, .. }
            | ParseError::FlowTooLarge { pos, .. }
            | ParseError::UnknownAnchor { pos }
            | ParseError::TooLarge { pos } => *pos,
        }
    }
}

/// A parsed stream: every document's nodes in one arena.
#[derive(Debug, Default)]
pub struct Yaml {
    nodes: Vec<Node>,
    /// Every scalar's text, one after the other.
    text: String,
    /// Sequences' items, each sequence's contiguous.
    items: Vec<NodeId>,
    /// Mappings' entries, each mapping's contiguous.
    pairs: Vec<(NodeId, NodeId)>,
    /// Expanded size of each node (itself plus, through aliases, everything below it).
    sizes: Vec<u64>,
    pub docs: Vec<Doc>,
}

fn pos_of(m: saphyr_parser::Marker) -> Pos {
    Pos {
        line: u32::try_from(m.line()).unwrap_or(u32::MAX),
        col: u32::try_from(m.col() + 1).unwrap_or(u32::MAX),
    }
}

/// A collection being built.
struct Open {
    id: NodeId,
    anchor: usize,
    /// A map's key waiting for its value.
    pending_key: Option<NodeId>,
    /// Where its children start on the pending stacks (items for a sequence, pairs for a
    /// mapping): a collection's children are complete, and on top, when it closes.
    first: usize,
}

fn range(start: usize, len: usize, pos: Pos) -> Result<(u32, u32), ParseError> {
    match (u32::try_from(start), u32::try_from(len)) {
        (Ok(s), Ok(l)) if s.checked_add(l).is_some() => Ok((s, l)),
        _ => Err(ParseError::TooLarge { pos }),
    }
}

impl Yaml {
    pub fn parse(text: &str, limits: Limits) -> Result<Yaml, ParseError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        crate::flow::check(text, limits.max_flow_items).map_err(|pos| {
            ParseError::FlowTooLarge {
                pos,
                limit: limits.max_flow_items,
            }
        })?;
        let mut yaml = Yaml::default();
        let mut anchors: HashMap<usize, NodeId> = HashMap::new();
        let mut stack: Vec<Open> = Vec::new();
        // Nodes the aliases read so far would add if expanded.
        let mut expansion: u64 = 0;
        let mut doc_start = 1;
        let mut doc_root: Option<NodeId> = None;
        let mut pending_items: Vec<NodeId> = Vec::new();
        let mut pending_pairs: Vec<(NodeId, NodeId)> = Vec::new();
        for event in Parser::new_from_str(text) {
            let (event, span) = event.map_err(|e| ParseError::Syntax {
                pos: pos_of(*e.marker()),
                message: e.info().to_owned(),
            })?;
            let pos = pos_of(span.start);
            let end = pos_of(span.end);
            // A finished node (scalar, alias, or closed collection) to attach to its parent.
            let finished: Option<(NodeId, usize)> = match event {
                Event::StreamStart | Event::StreamEnd | Event::Nothing => None,
                Event::DocumentStart(_) => {
                    doc_start = pos.line;
                    doc_root = None;
                    anchors.clear();
                    None
                }
                Event::DocumentEnd => {
                    yaml.docs.push(Doc {
                        root: doc_root.take(),
                        start_line: doc_start,
                    });
                    None
                }
                Event::Scalar(value, style, anchor, _tag) => {
                    let style = match style {
                        ScalarStyle::Plain => Style::Plain,
                        ScalarStyle::SingleQuoted => Style::SingleQuoted,
                        ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                        ScalarStyle::Literal => Style::Literal,
                        ScalarStyle::Folded => Style::Folded,
                    };
                    yaml.check_node_count(pos, limits)?;
                    let (start, len) = range(yaml.text.len(), value.len(), pos)?;
                    yaml.text.push_str(&value);
                    let id = yaml.push(Kind::Scalar, style, (start, len), pos, end);
                    Some((id, anchor))
                }
                Event::Alias(anchor) => {
                    let id = *anchors
                        .get(&anchor)
                        .ok_or(ParseError::UnknownAnchor { pos })?;
                    expansion = expansion.saturating_add(yaml.size(id));
                    if expansion > limits.max_alias_nodes {
                        return Err(ParseError::AliasBomb {
                            pos,
                            limit: limits.max_alias_nodes,
                        });
                    }
                    Some((id, 0))
                }
                Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                    if stack.len() >= limits.max_depth {
                        return Err(ParseError::TooDeep {
                            pos,
                            limit: limits.max_depth,
                        });
                    }
                    yaml.check_node_count(pos, limits)?;
                    let (kind, first) = if matches!(event, Event::SequenceStart(..)) {
                        (Kind::Seq, pending_items.len())
                    } else {
                        (Kind::Map, pending_pairs.len())
                    };
                    let id = yaml.push(kind, Style::Plain, (0, 0), pos, pos);
                    stack.push(Open {
                        id,
                        anchor,
                        pending_key: None,
                        first,
                    });
                    None
                }
                Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                    Some(open) => {
                        let kind = yaml.nodes.get(open.id as usize).map(|n| n.kind);
                        let (start, len) = if kind == Some(Kind::Seq) {
                            let start = yaml.items.len();
                            yaml.items.extend(pending_items.drain(open.first..));
                            range(start, yaml.items.len() - start, pos)?
                        } else {
                            let start = yaml.pairs.len();
                            yaml.pairs.extend(pending_pairs.drain(open.first..));
                            range(start, yaml.pairs.len() - start, pos)?
                        };
                        if let Some(node) = yaml.nodes.get_mut(open.id as usize) {
                            node.end = end;
                            node.start = start;
                            node.len = len;
                        }
                        Some((open.id, open.anchor))
                    }
                    None => None,
                },
            };
            let Some((id, anchor)) = finished else {
                continue;
            };
            if anchor != 0 {
                anchors.insert(anchor, id);
            }
            let size = yaml.size(id);
            match stack.last_mut() {
                None => doc_root = Some(id),
                Some(parent) => {
                    let parent_id = parent.id;
                    match yaml.nodes.get(parent_id as usize).map(|n| n.kind) {
                        Some(Kind::Seq) => pending_items.push(id),
                        Some(Kind::Map) => match parent.pending_key.take() {
                            Some(key) => pending_pairs.push((key, id)),
                            None => parent.pending_key = Some(id),
                        },
                        _ => {}
                    }
                    if let Some(s) = yaml.sizes.get_mut(parent_id as usize) {
                        *s = s.saturating_add(size);
                    }
                }
            }
        }
        Ok(yaml)
    }

    fn check_node_count(&self, pos: Pos, limits: Limits) -> Result<(), ParseError> {
        if self.nodes.len() as u64 >= limits.max_nodes {
            return Err(ParseError::TooManyNodes {
                pos,
                limit: limits.max_nodes,
            });
        }
        Ok(())
    }

    fn push(&mut self, kind: Kind, style: Style, range: (u32, u32), pos: Pos, end: Pos) -> NodeId {
        let id = NodeId::try_from(self.nodes.len()).unwrap_or(NodeId::MAX);
        self.nodes.push(Node {
            kind,
            style,
            start: range.0,
            len: range.1,
            pos,
            end,
        });
        self.sizes.push(1);
        id
    }

    /// A node's children range, if it is of `kind`.
    fn span(&self, id: NodeId, kind: Kind) -> Option<std::ops::Range<usize>> {
        let n = self.node(id).filter(|n| n.kind == kind)?;
        let start = n.start as usize;
        Some(start..start + n.len as usize)
    }

    /// A mapping's own entries (merge keys not resolved).
    fn pairs(&self, id: NodeId) -> &[(NodeId, NodeId)] {
        self.span(id, Kind::Map)
            .and_then(|r| self.pairs.get(r))
            .unwrap_or(&[])
    }

    fn size(&self, id: NodeId) -> u64 {
        self.sizes.get(id as usize).copied().unwrap_or(1)
    }

    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id as usize)
    }

    pub fn pos(&self, id: NodeId) -> Pos {
        self.node(id).map(|n| n.pos).unwrap_or_default()
    }

    /// The scalar's text, or `None` for collections.
    pub fn str(&self, id: NodeId) -> Option<&str> {
        self.span(id, Kind::Scalar).and_then(|r| self.text.get(r))
    }

    /// A scalar that is not YAML's null (`~`, `null`, or nothing, unquoted).
    pub fn string(&self, id: NodeId) -> Option<&str> {
        let node = self.node(id)?;
        let s = self.str(id)?;
        if node.style == Style::Plain && is_null(s) {
            None
        } else {
            Some(s)
        }
    }

    pub fn seq(&self, id: NodeId) -> &[NodeId] {
        self.span(id, Kind::Seq)
            .and_then(|r| self.items.get(r))
            .unwrap_or(&[])
    }

    pub fn is_map(&self, id: NodeId) -> bool {
        self.node(id).is_some_and(|n| n.kind == Kind::Map)
    }

    /// A mapping's entries, with YAML merge keys (`<<: *base`) resolved: the mapping's own
    /// entries first, then the merged ones whose keys it does not define. Borrowed when the
    /// mapping has no merge key (nearly always): the rules call this for every mapping.
    pub fn entries(&self, id: NodeId) -> Cow<'_, [(NodeId, NodeId)]> {
        let entries = self.pairs(id);
        if !entries.iter().any(|&(k, _)| self.is_merge_key(k)) {
            return Cow::Borrowed(entries);
        }
        let mut out = Vec::new();
        self.collect_entries(id, &mut out, 0);
        Cow::Owned(out)
    }

    /// A plain `<<` key.
    fn is_merge_key(&self, k: NodeId) -> bool {
        self.node(k).is_some_and(|n| n.style == Style::Plain) && self.str(k) == Some("<<")
    }

    fn collect_entries(&self, id: NodeId, out: &mut Vec<(NodeId, NodeId)>, depth: usize) {
        let entries = self.pairs(id);
        let mut merges = Vec::new();
        for &(k, v) in entries {
            if self.is_merge_key(k) {
                merges.push(v);
            } else {
                out.push((k, v));
            }
        }
        // Merge chains are bounded by the document's nesting; the depth guard keeps a
        // pathological one from recursing without end.
        if depth > 32 {
            return;
        }
        for m in merges {
            let sources: Vec<NodeId> = if self.is_map(m) {
                vec![m]
            } else {
                self.seq(m).to_vec()
            };
            for src in sources {
                let mut merged = Vec::new();
                self.collect_entries(src, &mut merged, depth + 1);
                for (k, v) in merged {
                    let key = self.str(k);
                    if !out.iter().any(|&(ok, _)| self.str(ok) == key) {
                        out.push((k, v));
                    }
                }
            }
        }
    }

    /// The value of `key` in a mapping (merge keys included).
    pub fn get(&self, map: NodeId, key: &str) -> Option<NodeId> {
        let entries = self.pairs(map);
        if let Some(&(_, v)) = entries.iter().find(|&&(k, _)| self.str(k) == Some(key)) {
            return Some(v);
        }
        if entries.iter().any(|&(k, _)| self.is_merge_key(k)) {
            return self
                .entries(map)
                .iter()
                .find(|&&(k, _)| self.str(k) == Some(key))
                .map(|&(_, v)| v);
        }
        None
    }

    /// The node at a path of mapping keys.
    pub fn at(&self, mut id: NodeId, path: &[&str]) -> Option<NodeId> {
        for key in path {
            id = self.get(id, key)?;
        }
        Some(id)
    }

    /// The non-null string at a path of mapping keys.
    pub fn str_at(&self, id: NodeId, path: &[&str]) -> Option<&str> {
        self.at(id, path).and_then(|n| self.string(n))
    }

    /// A boolean at a path (`true`/`True`/`TRUE`, unquoted or quoted, as Kubernetes reads it).
    pub fn bool_at(&self, id: NodeId, path: &[&str]) -> bool {
        self.str_at(id, path)
            .is_some_and(|s| s.eq_ignore_ascii_case("true"))
    }

    /// Total number of nodes stored (not expanded).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

/// A set of a tree's nodes, one bit each: the walks over every node of a file mark what they
/// have visited here (a hash set cost more than the rest of the walk).
#[derive(Debug, Clone)]
pub struct NodeSet {
    bits: Vec<u64>,
}

impl NodeSet {
    pub fn new(yaml: &Yaml) -> NodeSet {
        NodeSet {
            bits: vec![0; yaml.nodes.len().div_ceil(64)],
        }
    }

    /// Adds a node; `false` if it was there already (or is not a node of the tree).
    pub fn insert(&mut self, id: NodeId) -> bool {
        let (word, bit) = (id as usize / 64, 1u64 << (id % 64));
        match self.bits.get_mut(word) {
            Some(w) if *w & bit == 0 => {
                *w |= bit;
                true
            }
            _ => false,
        }
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.bits
            .get(id as usize / 64)
            .is_some_and(|w| w & (1u64 << (id % 64)) != 0)
    }
}

pub fn is_null(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Yaml {
        Yaml::parse(s, Limits::default()).unwrap()
    }

    #[test]
    fn positions_are_one_based_lines_and_columns() {
        let y = parse("a: 1\nb:\n  c: \"x\"\n");
        let root = y.docs[0].root.unwrap();
        let c = y.at(root, &["b", "c"]).unwrap();
        assert_eq!(y.pos(c), Pos { line: 3, col: 6 });
        assert_eq!(y.str(c), Some("x"));
    }

    #[test]
    fn aliases_share_the_anchored_node() {
        let y = parse("a: &x {k: v}\nb: *x\n");
        let root = y.docs[0].root.unwrap();
        assert_eq!(y.get(root, "a"), y.get(root, "b"));
    }

    #[test]
    fn merge_keys_are_resolved() {
        let y = parse("base: &b {k: v, o: 1}\nm:\n  <<: *b\n  o: 2\n");
        let root = y.docs[0].root.unwrap();
        let m = y.get(root, "m").unwrap();
        assert_eq!(y.str_at(m, &["k"]), Some("v"));
        assert_eq!(y.str_at(m, &["o"]), Some("2"));
        assert_eq!(y.entries(m).len(), 2);
    }

    #[test]
    fn a_billion_laughs_is_refused_without_expanding() {
        let mut s = String::from(
            "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for i in 1..10 {
            let p = i - 1;
            s.push_str(&format!(
                "a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"
            ));
        }
        let err = Yaml::parse(&s, Limits::default()).unwrap_err();
        assert!(matches!(err, ParseError::AliasBomb { .. }), "{err:?}");
    }

    #[test]
    fn the_alias_limit_counts_only_the_nodes_aliases_add() {
        // Each `*x` adds the 4 nodes of `[1, 2, 3]` (the sequence and its items), and `*y`
        // adds `{k: *x}` expanded (the map, its key, and the 4 of `*x`): 4 + 4 + 6 in all.
        // The document's own 13 nodes do not count.
        let s = "a: &x [1, 2, 3]\nb: *x\nc: &y {k: *x}\nd: *y\n";
        let limits = |max_alias_nodes| Limits {
            max_alias_nodes,
            ..Limits::default()
        };
        assert!(Yaml::parse(s, limits(4 + 4 + 6)).is_ok());
        let err = Yaml::parse(s, limits(4 + 4 + 5)).unwrap_err();
        assert_eq!(err.pos(), Pos { line: 4, col: 4 });
        assert!(err.to_string().contains("more than 13 nodes"), "{err}");
        assert!(err.to_string().contains("alias-expansion limit"), "{err}");
    }

    #[test]
    fn a_large_document_without_aliases_is_not_an_alias_bomb() {
        // 2,000 resources of ~40 nodes each, nested 6 deep: far more nodes than the limit
        // allows aliases to add, none of them through an alias.
        let doc = "---\nkind: Deployment\nmetadata: {name: a, labels: {x: y}}\nspec:\n  template:\n    spec:\n      containers:\n      - name: a\n        env:\n        - {name: A, value: b}\n        - {name: C, value: d}\n";
        let s = doc.repeat(2_000);
        let limits = Limits {
            max_alias_nodes: 10_000,
            ..Limits::default()
        };
        let y = Yaml::parse(&s, limits).unwrap();
        assert!(y.node_count() > 50_000, "{}", y.node_count());
        assert_eq!(y.docs.len(), 2_000);
    }

    #[test]
    fn the_nodes_written_are_bounded() {
        let limits = Limits {
            max_nodes: 5,
            ..Limits::default()
        };
        // A sequence and its four items.
        assert!(Yaml::parse("- a\n- b\n- c\n- d\n", limits).is_ok());
        let err = Yaml::parse("- a\n- b\n- c\n- d\n- e\n", limits).unwrap_err();
        assert_eq!(err.pos(), Pos { line: 5, col: 3 });
        assert!(err.to_string().contains("more than 5 nodes"), "{err}");
    }

    #[test]
    fn a_large_flow_collection_is_refused_before_parsing() {
        let limits = Limits {
            max_flow_items: 3,
            ..Limits::default()
        };
        assert!(Yaml::parse("a: [1, 2, 3]\n", limits).is_ok());
        let err = Yaml::parse("a: 1\nb: [1, 2, 3, 4]\n", limits).unwrap_err();
        assert!(matches!(err, ParseError::FlowTooLarge { .. }), "{err:?}");
        assert_eq!(err.pos(), Pos { line: 2, col: 4 });
        assert!(err.to_string().contains("more than 3 items"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        // saphyr-parser stops flow collections at 256 levels itself; ours stops block ones.
        let s = "[".repeat(1000);
        assert!(Yaml::parse(&s, Limits::default()).is_err());
        let s: String = (0..300).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        let err = Yaml::parse(&s, Limits::default()).unwrap_err();
        assert!(matches!(err, ParseError::TooDeep { .. }), "{err:?}");
    }

    #[test]
    fn syntax_errors_carry_a_line() {
        let err = Yaml::parse("a: 1\nb: [1, 2\nc: 3\n", Limits::default()).unwrap_err();
        assert!(err.pos().line >= 2, "{err:?}");
    }

    #[test]
    fn multi_document_streams_keep_each_document() {
        let y = parse("---\na: 1\n---\n---\nb: 2\n");
        assert_eq!(y.docs.len(), 3);
        assert!(y.docs[1].root.is_none() || y.str(y.docs[1].root.unwrap()) == Some(""));
        assert_eq!(y.docs[2].start_line, 4);
    }
}
