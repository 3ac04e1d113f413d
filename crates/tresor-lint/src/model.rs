//! Parsed files, the Kubernetes resources in them, and findings.

use std::sync::OnceLock;

use crate::source::{HelmSource, Lines, Suppression};
use crate::yaml::{NodeId, Pos, Yaml};

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
