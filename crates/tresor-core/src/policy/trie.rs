//! A byte trie over rule prefixes, so a check visits only the rules whose literal lead is a
//! prefix of the request path, in one pass over the path's bytes.
//!
//! Each node may hold the glob rule whose prefix ends there (`secret/fo*` sits at
//! `secret/fo`) and the id of the group of segment-wildcard rules anchored there (`secret/+/x`
//! sits at `secret/`; see [`index`](super::index)). Built once per ACL; after building, runs of single-child nodes are collapsed
//! into edge labels so a walk compares slices instead of stepping byte by byte.

/// A rule reference: its index in the ACL's rule table and its priority rank (higher wins),
/// kept side by side so lower-ranked rules can be skipped unread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) rank: u32,
    pub(crate) rule: u32,
}

#[derive(Debug, Default)]
struct BuildNode {
    children: Vec<(u8, usize)>,
    prefix_rule: Option<Slot>,
    group: Option<u32>,
}

/// The compressed, read-only form.
#[derive(Debug, Default)]
struct Node {
    /// Bytes leading from the parent to this node (empty for the root).
    label: Box<[u8]>,
    /// First byte of each child's label → child index, sorted by byte.
    children: Box<[(u8, u32)]>,
    prefix_rule: Option<Slot>,
    group: Option<u32>,
}

/// A node still to emit while freezing: its builder index, the label leading to it, and its
/// parent's output index with the label's first byte.
type Pending = (usize, Vec<u8>, Option<(usize, u8)>);

#[derive(Debug, Default)]
pub(crate) struct TrieBuilder {
    nodes: Vec<BuildNode>,
}

impl TrieBuilder {
    pub(crate) fn new() -> Self {
        Self {
            nodes: vec![BuildNode::default()],
        }
    }

    fn node_for(&mut self, key: &str) -> usize {
        let mut current = 0;
        for &byte in key.as_bytes() {
            let existing = self.nodes.get(current).and_then(|node| {
                node.children
                    .iter()
                    .find(|(b, _)| *b == byte)
                    .map(|&(_, child)| child)
            });
            current = match existing {
                Some(child) => child,
                None => {
                    let child = self.nodes.len();
                    self.nodes.push(BuildNode::default());
                    if let Some(node) = self.nodes.get_mut(current) {
                        node.children.push((byte, child));
                    }
                    child
                }
            };
        }
        current
    }

    pub(crate) fn insert_prefix(&mut self, prefix: &str, slot: Slot) {
        let index = self.node_for(prefix);
        if let Some(node) = self.nodes.get_mut(index) {
            node.prefix_rule = Some(slot);
        }
    }

    /// The group already attached at `anchor`, if any.
    pub(crate) fn group_at(&mut self, anchor: &str) -> Option<u32> {
        let index = self.node_for(anchor);
        self.nodes.get(index).and_then(|node| node.group)
    }

    pub(crate) fn set_group(&mut self, anchor: &str, group: u32) {
        let index = self.node_for(anchor);
        if let Some(node) = self.nodes.get_mut(index) {
            node.group = Some(group);
        }
    }

    /// Freezes the trie, folding chains of rule-less single-child nodes into one labelled
    /// edge. Iterative, so a long chain of nested rules cannot exhaust the stack.
    pub(crate) fn build(mut self) -> Trie {
        let mut out: Vec<Node> = Vec::with_capacity(self.nodes.len());
        let mut children_of: Vec<Vec<(u8, u32)>> = Vec::with_capacity(self.nodes.len());
        let mut stack: Vec<Pending> = vec![(0, Vec::new(), None)];
        while let Some((mut index, mut label, parent)) = stack.pop() {
            while index != 0 {
                let Some(node) = self.nodes.get(index) else {
                    break;
                };
                match node.children.as_slice() {
                    [(byte, child)] if node.prefix_rule.is_none() && node.group.is_none() => {
                        label.push(*byte);
                        index = *child;
                    }
                    _ => break,
                }
            }
            let (children, prefix_rule, group) = match self.nodes.get_mut(index) {
                Some(node) => (
                    std::mem::take(&mut node.children),
                    node.prefix_rule,
                    node.group,
                ),
                None => (Vec::new(), None, None),
            };
            let position = out.len();
            out.push(Node {
                label: label.into(),
                children: Box::new([]),
                prefix_rule,
                group,
            });
            children_of.push(Vec::new());
            if let Some((parent, byte)) = parent
                && let Some(siblings) = children_of.get_mut(parent)
            {
                siblings.push((byte, u32::try_from(position).unwrap_or(u32::MAX)));
            }
            for (byte, child) in children {
                stack.push((child, vec![byte], Some((position, byte))));
            }
        }
        for (node, mut children) in out.iter_mut().zip(children_of) {
            children.sort_by_key(|&(byte, _)| byte);
            node.children = children.into();
        }
        Trie { nodes: out }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Trie {
    nodes: Vec<Node>,
}

/// What a walk found along the path.
pub(crate) trait Visitor {
    /// A glob rule whose prefix is a prefix of the path.
    fn prefix_rule(&mut self, slot: Slot);
    /// The group of segment rules anchored at a prefix of the path.
    fn group(&mut self, group: u32);
}

impl Trie {
    /// Visits, from the shortest prefix of `path` to the longest, every node whose key is a
    /// prefix of `path`.
    pub(crate) fn walk(&self, path: &str, visitor: &mut impl Visitor) {
        let mut rest = path.as_bytes();
        let mut node = match self.nodes.first() {
            Some(root) => root,
            None => return,
        };
        loop {
            if let Some(slot) = node.prefix_rule {
                visitor.prefix_rule(slot);
            }
            if let Some(group) = node.group {
                visitor.group(group);
            }
            let Some(&first) = rest.first() else {
                return;
            };
            let Ok(found) = node
                .children
                .binary_search_by_key(&first, |&(byte, _)| byte)
            else {
                return;
            };
            let Some(&(_, child_index)) = node.children.get(found) else {
                return;
            };
            let Some(child) = usize::try_from(child_index)
                .ok()
                .and_then(|i| self.nodes.get(i))
            else {
                return;
            };
            let Some(after) = rest.strip_prefix(&*child.label) else {
                return;
            };
            rest = after;
            node = child;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Seen {
        prefixes: Vec<u32>,
        groups: Vec<u32>,
    }

    impl Visitor for Seen {
        fn prefix_rule(&mut self, slot: Slot) {
            self.prefixes.push(slot.rule);
        }
        fn group(&mut self, group: u32) {
            self.groups.push(group);
        }
    }

    fn slot(rule: u32) -> Slot {
        Slot { rank: rule, rule }
    }

    #[test]
    fn walk_finds_every_prefix_in_order() {
        let mut builder = TrieBuilder::new();
        builder.insert_prefix("", slot(0));
        builder.insert_prefix("secret/", slot(1));
        builder.insert_prefix("secret/fo", slot(2));
        builder.insert_prefix("secret/foo/bar", slot(3));
        builder.insert_prefix("sys/", slot(4));
        assert_eq!(builder.group_at("secret/"), None);
        builder.set_group("secret/", 7);
        builder.set_group("", 8);
        assert_eq!(builder.group_at("secret/"), Some(7));
        let trie = builder.build();

        let mut seen = Seen::default();
        trie.walk("secret/foo/baz", &mut seen);
        assert_eq!(seen.prefixes, vec![0, 1, 2]);
        assert_eq!(seen.groups, vec![8, 7]);

        let mut seen = Seen::default();
        trie.walk("secret/foo/bar", &mut seen);
        assert_eq!(seen.prefixes, vec![0, 1, 2, 3]);

        let mut seen = Seen::default();
        trie.walk("sec", &mut seen);
        assert_eq!(seen.prefixes, vec![0]);
        assert_eq!(seen.groups, vec![8]);

        let mut seen = Seen::default();
        trie.walk("", &mut seen);
        assert_eq!(seen.prefixes, vec![0]);
    }

    #[test]
    fn empty_trie_walks_nothing() {
        let trie = TrieBuilder::new().build();
        let mut seen = Seen::default();
        trie.walk("anything", &mut seen);
        assert!(seen.prefixes.is_empty() && seen.groups.is_empty());
    }
}
