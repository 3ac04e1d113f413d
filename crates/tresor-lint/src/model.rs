//! Parsed files, the Kubernetes resources in them, and findings.

use std::sync::OnceLock;

use crate::source::{HelmSource, Lines, Suppression};
use crate::yaml::{Node, NodeId, Pos, Style, Yaml};

/// Ordered: `Note < Warning < Error`, so `--fail-on` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Note,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s.to_ascii_lowercase().as_str() {
            "note" | "info" => Some(Severity::Note),
            "warning" | "warn" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }
}

/// One finding. It never holds the offending value: `hint` is its redacted form.
#[derive(Debug, Clone)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    /// Names keys, resources and kinds, never values.
    pub message: String,
    /// Index into the files.
    pub file: usize,
    /// Index into the file's resources.
    pub resource: Option<usize>,
    pub pos: Pos,
    /// The line where the reported value starts, when the finding points further down: the
    /// `key: |` (or `key: >-`) header of a block scalar whose content holds the finding, or
    /// the first line of a multi-line scalar. An allow comment for this line covers the
    /// finding too, as none can be written inside the scalar.
    pub value_line: Option<u32>,
    /// First two characters and length of the value (see `detect::redact`).
    pub hint: Option<String>,
}

/// A Kubernetes object: a document's root mapping, or an item of a `…List`.
#[derive(Debug, Clone)]
pub struct Resource {
    /// Its node in the file's tree. The tree lives only while its file is linted (see
    /// [`Parsed`]); afterwards this is a bare number.
    pub node: NodeId,
    pub doc: usize,
    pub kind: String,
    pub api_version: String,
    pub name: String,
    pub namespace: Option<String>,
    /// Lines the object spans (inclusive).
    pub start_line: u32,
    pub end_line: u32,
    /// The line of its `kind:` key.
    pub kind_line: u32,
    /// `# Source:` of `helm template` output above it.
    pub helm_source: Option<String>,
}

impl Resource {
    /// `Kind/namespace/name` (or `Kind/name`).
    pub fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{}/{}", self.kind, ns, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}

/// What a report keeps of a linted file: its name, its resources (for messages, JSON and the
/// Helm source of each finding) and its allow comments (applied once every finding, including
/// the cross-file ones, is known). Its text and tree are gone by then (see [`Parsed`]).
#[derive(Debug)]
pub struct File {
    /// As given on the command line or found under a directory (`-` is stdin).
    pub name: String,
    pub resources: Vec<Resource>,
    pub suppressions: Vec<Suppression>,
}

/// A file while it is linted: its text and its tree. The run drops it as soon as the file's
/// own rules have run and its references are indexed, so memory holds one tree at a time.
#[derive(Debug)]
pub struct Parsed {
    pub text: String,
    pub yaml: Yaml,
    line_starts: OnceLock<Vec<usize>>,
}

impl Parsed {
    pub fn new(text: String, yaml: Yaml) -> Parsed {
        Parsed {
            text,
            yaml,
            line_starts: OnceLock::new(),
        }
    }

    /// The file's lines, built on first use (only findings inside block scalars need them).
    pub fn lines(&self) -> Lines<'_> {
        let starts = self.line_starts.get_or_init(|| Lines::starts(&self.text));
        Lines::new(&self.text, starts)
    }

    /// Where in the source each of `spots` — a byte offset into the scalar `node`'s value,
    /// and the text found there — is written. Computed from the scalar's position and its
    /// lines where the value maps onto the source (block scalars; single-line scalars without
    /// escapes), so a finding points at the line that holds it even when the same text occurs
    /// earlier in the scalar; otherwise the first occurrence of the text in the scalar's
    /// lines, or the scalar's own position. `spots` must be in ascending offset order.
    pub fn locate(&self, node: NodeId, spots: &[(usize, &str)]) -> Vec<Pos> {
        let Some((n, value)) = self.yaml.node(node).zip(self.yaml.str(node)) else {
            return vec![Pos::default(); spots.len()];
        };
        let offsets: Vec<usize> = spots.iter().map(|&(o, _)| o).collect();
        let mapped = match n.style {
            Style::Literal | Style::Folded => self.block_positions(n, value, &offsets),
            _ => self.inline_positions(n, value, &offsets),
        };
        let lines = self.lines();
        spots
            .iter()
            .zip(mapped)
            .map(|(&(_, needle), pos)| {
                pos.or_else(|| lines.find(needle, n.pos.line, n.end.line.max(n.pos.line)))
                    .unwrap_or(n.pos)
            })
            .collect()
    }

    /// A block scalar's lines in the source, aligned with its value: the value is the
    /// source lines' text without their indentation, joined by line breaks (literal) or
    /// spaces and line breaks (folded). Each non-blank source line, leading blanks trimmed,
    /// must start where the value continues once its whitespace is skipped; the first line
    /// that does not (the scalar has ended, or an unforeseen shape) stops the alignment and
    /// leaves the offsets past it to the fallback.
    fn block_positions(&self, n: &Node, value: &str, offsets: &[usize]) -> Vec<Option<Pos>> {
        let lines = self.lines();
        let mut out = vec![None; offsets.len()];
        let mut next = 0;
        let mut cursor = 0;
        // The parser places a block scalar at its first non-blank content line.
        let mut line_no = n.pos.line;
        while next < offsets.len() && line_no <= n.end.line {
            let Some(src) = lines.line(line_no) else {
                break;
            };
            let content = src.trim_start_matches([' ', '\t']);
            if !content.is_empty() {
                let rest = value.get(cursor..).unwrap_or("");
                cursor += rest.len() - rest.trim_start_matches([' ', '\t', '\n']).len();
                if !value.get(cursor..).is_some_and(|v| v.starts_with(content)) {
                    break;
                }
                let line_end = cursor + content.len();
                let indent = src.len() - content.len();
                let indent_chars = src.get(..indent).map_or(0, |s| s.chars().count());
                while let Some(&off) = offsets.get(next)
                    && off < line_end
                {
                    if let Some(before) = value.get(cursor..off) {
                        let col = indent_chars + before.chars().count() + 1;
                        if let Some(slot) = out.get_mut(next) {
                            *slot = Some(Pos {
                                line: line_no,
                                col: u32::try_from(col).unwrap_or(u32::MAX),
                            });
                        }
                    }
                    next += 1;
                }
                cursor = line_end;
            }
            line_no += 1;
        }
        out
    }

    /// A scalar on one line whose source text is its value (plain, or quoted without
    /// escapes): offsets map to columns.
    fn inline_positions(&self, n: &Node, value: &str, offsets: &[usize]) -> Vec<Option<Pos>> {
        let none = vec![None; offsets.len()];
        if n.pos.line != n.end.line || value.contains('\n') {
            return none;
        }
        let quote = match n.style {
            Style::SingleQuoted => Some('\''),
            Style::DoubleQuoted => Some('"'),
            _ => None,
        };
        let Some(src) = self.lines().line(n.pos.line) else {
            return none;
        };
        let skip = (n.pos.col as usize).saturating_sub(1) + usize::from(quote.is_some());
        let Some(body) = src.char_indices().nth(skip).and_then(|(i, _)| src.get(i..)) else {
            return none;
        };
        let verbatim = body.strip_prefix(value).is_some_and(|after| match quote {
            Some(q) => after.starts_with(q),
            None => true,
        });
        if !verbatim {
            return none;
        }
        offsets
            .iter()
            .map(|&off| {
                let col = skip + value.get(..off)?.chars().count() + 1;
                Some(Pos {
                    line: n.pos.line,
                    col: u32::try_from(col).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }
}

/// The Kubernetes objects of a parsed stream, with the Helm `# Source:` above each.
pub fn extract_resources(y: &Yaml, helm_sources: &[HelmSource]) -> Vec<Resource> {
    let mut out = Vec::new();
    for (doc_idx, doc) in y.docs.iter().enumerate() {
        let Some(root) = doc.root else {
            continue;
        };
        let kind = y.str_at(root, &["kind"]).unwrap_or("");
        let items = y.get(root, "items");
        if kind.ends_with("List")
            && let Some(items) = items
        {
            for &item in y.seq(items) {
                if let Some(r) = resource(y, helm_sources, item, doc_idx) {
                    out.push(r);
                }
            }
        } else if let Some(r) = resource(y, helm_sources, root, doc_idx) {
            out.push(r);
        }
    }
    out
}

fn resource(y: &Yaml, helm_sources: &[HelmSource], node: NodeId, doc: usize) -> Option<Resource> {
    if !y.is_map(node) {
        return None;
    }
    let kind_node = y.get(node, "kind")?;
    let kind = y.string(kind_node)?.to_owned();
    let start_line = y.pos(node).line;
    let end_line = y
        .node(node)
        .map(|n| {
            if n.end.col == 1 {
                n.end.line.saturating_sub(1)
            } else {
                n.end.line
            }
        })
        .unwrap_or(start_line)
        .max(start_line);
    // The key of `kind:` sits on the same line as its value in any sane manifest.
    let kind_line = y.pos(kind_node).line;
    let doc_start = y.docs.get(doc).map_or(0, |d| d.start_line);
    let helm_source = helm_sources
        .iter()
        .rfind(|s| s.line < start_line && s.line >= doc_start)
        .map(|s| s.path.clone());
    Some(Resource {
        node,
        doc,
        kind,
        api_version: y.str_at(node, &["apiVersion"]).unwrap_or("").to_owned(),
        name: y
            .str_at(node, &["metadata", "name"])
            .unwrap_or("")
            .to_owned(),
        namespace: y
            .str_at(node, &["metadata", "namespace"])
            .filter(|ns| !crate::detect::is_placeholder(ns))
            .map(str::to_owned),
        start_line,
        end_line,
        kind_line,
        helm_source,
    })
}

/// The pod specs of a workload: `spec` of a Pod, `spec.template.spec` of Deployments and
/// friends (and of any CRD shaped like them), `spec.jobTemplate.spec.template.spec` of a
/// CronJob, `template.spec` of a PodTemplate.
pub fn pod_specs(y: &Yaml, r: &Resource) -> Vec<NodeId> {
    let n = r.node;
    let spec = match r.kind.as_str() {
        "Pod" => y.get(n, "spec"),
        "CronJob" => y.at(n, &["spec", "jobTemplate", "spec", "template", "spec"]),
        "PodTemplate" => y.at(n, &["template", "spec"]),
        _ => y.at(n, &["spec", "template", "spec"]),
    };
    spec.filter(|&s| y.is_map(s)).into_iter().collect()
}

/// The pod template metadata of a workload (for annotations and labels).
pub fn pod_template_metadata(y: &Yaml, r: &Resource) -> Option<NodeId> {
    let n = r.node;
    match r.kind.as_str() {
        "Pod" => None,
        "CronJob" => y.at(n, &["spec", "jobTemplate", "spec", "template", "metadata"]),
        "PodTemplate" => y.at(n, &["template", "metadata"]),
        _ => y.at(n, &["spec", "template", "metadata"]),
    }
}

/// Every container of a pod spec: `containers`, `initContainers`, `ephemeralContainers`.
pub fn containers(y: &Yaml, pod_spec: NodeId) -> Vec<NodeId> {
    ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .filter_map(|k| y.get(pod_spec, k))
        .flat_map(|list| y.seq(list).iter().copied())
        .collect()
}

/// A position's display form, `line:col`.
pub fn fmt_pos(p: Pos) -> String {
    format!("{}:{}", p.line, p.col)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::Limits;

    fn parsed(text: &str) -> Parsed {
        Parsed::new(
            text.to_owned(),
            Yaml::parse(text, Limits::default()).unwrap(),
        )
    }

    /// The value of the root mapping's key `k` and where `needle`'s `nth` occurrence in that
    /// value is written.
    fn at(p: &Parsed, k: &str, needle: &str, nth: usize) -> Pos {
        let root = p.yaml.docs[0].root.unwrap();
        let v = p.yaml.get(root, k).unwrap();
        let value = p.yaml.str(v).unwrap();
        let offset = value.match_indices(needle).nth(nth).unwrap().0;
        p.locate(v, &[(offset, needle)])[0]
    }

    fn pos(line: u32, col: u32) -> Pos {
        Pos { line, col }
    }

    #[test]
    fn literal_lines_map_to_their_source_lines() {
        // A leading blank line, a more-indented line, a tab inside, the first line repeated.
        let p = parsed("a: |\n\n  dup x\n     more\tdup x\n  dup x\nb: 1\n");
        assert_eq!(at(&p, "a", "dup x", 0), pos(3, 3));
        assert_eq!(at(&p, "a", "dup x", 1), pos(4, 11));
        assert_eq!(at(&p, "a", "dup x", 2), pos(5, 3));
    }

    #[test]
    fn folded_lines_map_to_where_each_part_is_written() {
        let p = parsed("a: >-\n  one dup\n  dup two\n\n  dup\n");
        assert_eq!(at(&p, "a", "dup", 0), pos(2, 7));
        assert_eq!(at(&p, "a", "dup", 1), pos(3, 3));
        assert_eq!(at(&p, "a", "dup", 2), pos(5, 3));
    }

    #[test]
    fn single_line_scalars_map_offsets_to_columns_unless_escaped() {
        let p = parsed("a: x dup dup\nb: 'q dup dup'\nc: \"\\t dup dup\"\n");
        assert_eq!(at(&p, "a", "dup", 1), pos(1, 10));
        assert_eq!(at(&p, "b", "dup", 1), pos(2, 11));
        // An escape shifts columns: the text is searched for (its first occurrence).
        assert_eq!(at(&p, "c", "dup", 1), pos(3, 8));
    }
}
