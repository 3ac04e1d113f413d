//! Deliberate differences: the machine-readable entries of DIFFERENCES.md.
//!
//! Each fenced ```json block in that file is one entry (or an array of entries) with a
//! `reason`. A mismatch is forgiven only when an entry matches its scenario, step, request,
//! kind, location and (if given) both values; every other mismatch fails the suite. An entry
//! that forgives nothing in a full run is stale and fails the suite too, so the list cannot
//! silently grow past what is real.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Deserialize;

use super::compare::{Kind, Location, Mismatch, shown};
use super::jsonpath::{Pattern, glob};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    #[serde(default = "any")]
    scenario: String,
    step: Option<usize>,
    request: Option<String>,
    kind: Kind,
    path: Option<String>,
    label: Option<String>,
    openbao: Option<String>,
    tresor: Option<String>,
    reason: String,
}

fn any() -> String {
    "*".to_owned()
}

#[derive(Debug)]
pub struct Difference {
    pub scenario: String,
    step: Option<usize>,
    request: Option<String>,
    kind: Kind,
    path: Option<Pattern>,
    label: Option<String>,
    openbao: Option<String>,
    tresor: Option<String>,
    reason: String,
    uses: AtomicUsize,
}

impl Difference {
    pub fn uses(&self) -> usize {
        self.uses.load(Ordering::Relaxed)
    }

    /// One line naming the entry, for the stale-entry report.
    pub fn describe(&self) -> String {
        let mut out = format!("scenario {} kind {:?}", self.scenario, self.kind);
        if let Some(p) = &self.path {
            out.push_str(&format!(" path {p}"));
        }
        if let Some(l) = &self.label {
            out.push_str(&format!(" label {l:?}"));
        }
        out.push_str(&format!(" ({})", self.reason));
        out
    }

    fn matches(&self, scenario: &str, step: usize, request: &str, m: &Mismatch) -> bool {
        let location = match (&m.location, &self.path, &self.label) {
            (Location::Json { path, .. }, Some(p), None) => p.matches(path),
            (Location::Label { label, .. }, None, Some(l)) => glob(l, label),
            (Location::Whole | Location::Line { .. }, None, None) => true,
            _ => false,
        };
        location
            && self.kind == m.kind
            && glob(&self.scenario, scenario)
            && self.step.is_none_or(|s| s == step)
            && self.request.as_deref().is_none_or(|r| glob(r, request))
            && self
                .openbao
                .as_deref()
                .is_none_or(|p| glob(p, &shown(m.openbao.as_ref())))
            && self
                .tresor
                .as_deref()
                .is_none_or(|p| glob(p, &shown(m.tresor.as_ref())))
    }
}

#[derive(Debug)]
pub struct Differences {
    pub entries: Vec<Difference>,
}

impl Differences {
    pub fn load(file: &Path) -> Result<Self, String> {
        let at = |e: String| format!("{}: {e}", file.display());
        let text = std::fs::read_to_string(file).map_err(|e| at(e.to_string()))?;
        let mut entries = Vec::new();
        for block in json_blocks(&text) {
            let value: serde_json::Value =
                serde_json::from_str(&block).map_err(|e| at(format!("{e} in\n{block}")))?;
            let items = match value {
                serde_json::Value::Array(items) => items,
                one => vec![one],
            };
            for item in items {
                let raw: EntryFile =
                    serde_json::from_value(item).map_err(|e| at(format!("{e} in\n{block}")))?;
                entries.push(entry(raw).map_err(at)?);
            }
        }
        Ok(Self { entries })
    }

    /// Removes the mismatches some entry forgives (counting its use) and returns the rest.
    pub fn filter(
        &self,
        scenario: &str,
        step: usize,
        request: &str,
        mismatches: Vec<Mismatch>,
    ) -> Vec<Mismatch> {
        mismatches
            .into_iter()
            .filter(|m| {
                let hit = self
                    .entries
                    .iter()
                    .find(|d| d.matches(scenario, step, request, m));
                if let Some(d) = hit {
                    d.uses.fetch_add(1, Ordering::Relaxed);
                }
                hit.is_none()
            })
            .collect()
    }
}

fn entry(raw: EntryFile) -> Result<Difference, String> {
    if raw.reason.trim().is_empty() {
        return Err(format!("an entry for {:?} has no reason", raw.path));
    }
    if raw.path.is_some() && raw.label.is_some() {
        return Err("an entry has a JSON `path` or a text `label`, not both".into());
    }
    if raw.kind == Kind::Line && (raw.openbao.is_none() || raw.tresor.is_none()) {
        return Err("a `line` entry must give both lines (`openbao`, `tresor`)".into());
    }
    Ok(Difference {
        scenario: raw.scenario,
        step: raw.step,
        request: raw.request,
        kind: raw.kind,
        path: raw.path.as_deref().map(Pattern::parse).transpose()?,
        label: raw.label,
        openbao: raw.openbao,
        tresor: raw.tresor,
        reason: raw.reason,
        uses: AtomicUsize::new(0),
    })
}

/// The contents of every ```json fenced block.
fn json_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_start().starts_with("```json") => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_start().starts_with("```") => {
                blocks.extend(current.take());
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    blocks
}
