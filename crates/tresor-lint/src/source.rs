//! The raw text of a file: lines for precise locations inside block scalars, and the
//! comments the YAML parser drops — `# tresor-lint: allow …` suppressions and Helm's
//! `# Source: chart/templates/x.yaml` markers.

use crate::yaml::Pos;

/// A `# tresor-lint: allow RULE[,RULE…] reason="…"` comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub line: u32,
    pub col: u32,
    pub rules: Vec<String>,
    pub reason: Option<String>,
    /// The comment is alone on its line (then it applies to what follows it).
    pub own_line: bool,
    /// The first line after it that is neither blank, a comment nor `---` (own-line comments).
    pub next_content_line: Option<u32>,
}

/// A `# Source: …` marker of `helm template` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmSource {
    pub line: u32,
    pub path: String,
}

#[derive(Debug, Default)]
pub struct Comments {
    pub suppressions: Vec<Suppression>,
    /// Malformed `tresor-lint:` comments: line, column and what is wrong.
    pub malformed: Vec<(Pos, String)>,
    pub helm_sources: Vec<HelmSource>,
}

/// Where a YAML comment starts on a line: a `#` at the start or after whitespace, outside
/// quotes (a simple quote tracker: enough for the single-line scalars comments follow).
fn comment_start(line: &str) -> Option<usize> {
    let mut single = false;
    let mut double = false;
    let mut prev_ws = true;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            '\\' if double => {
                escaped = !escaped;
                prev_ws = false;
                continue;
            }
            '"' if !single && !escaped => double = !double,
            '\'' if !double => single = !single,
            '#' if !single && !double && prev_ws => return Some(i),
            _ => {}
        }
        escaped = false;
        prev_ws = c.is_whitespace();
    }
    None
}

fn is_content(line: &str) -> bool {
    let t = line.trim();
    !(t.is_empty() || t.starts_with('#') || t == "---" || t.starts_with("--- #"))
}

pub fn scan_comments(text: &str) -> Comments {
    let mut out = Comments::default();
    let lines: Vec<&str> = text.lines().collect();
    // Only lines holding a `#` need the comment scanner; most lines of a manifest do not.
    for (idx, line) in lines.iter().enumerate() {
        if !line.contains('#') {
            continue;
        }
        let Some(start) = comment_start(line) else {
            continue;
        };
        let line_no = u32::try_from(idx + 1).unwrap_or(u32::MAX);
        let comment = line.get(start + 1..).unwrap_or("").trim();
        let own_line = line.get(..start).is_some_and(|s| s.trim().is_empty());
        if let Some(path) = comment.strip_prefix("Source:") {
            out.helm_sources.push(HelmSource {
                line: line_no,
                path: path.trim().to_owned(),
            });
            continue;
        }
        let Some(directive) = comment.strip_prefix("tresor-lint:") else {
            continue;
        };
        let col = u32::try_from(line.get(..start).map_or(0, |s| s.chars().count()) + 1)
            .unwrap_or(u32::MAX);
        let pos = Pos { line: line_no, col };
        match parse_directive(directive.trim()) {
            Ok((rules, reason)) => {
                let next_content_line = if own_line {
                    lines
                        .iter()
                        .enumerate()
                        .skip(idx + 1)
                        .find(|(_, l)| is_content(l))
                        .map(|(i, _)| u32::try_from(i + 1).unwrap_or(u32::MAX))
                } else {
                    None
                };
                out.suppressions.push(Suppression {
                    line: line_no,
                    col,
                    rules,
                    reason,
                    own_line,
                    next_content_line,
                });
            }
            Err(message) => out.malformed.push((pos, message)),
        }
    }
    out
}

/// Parses `allow rule-a,rule-b reason="why"`.
fn parse_directive(s: &str) -> Result<(Vec<String>, Option<String>), String> {
    let Some(rest) = s.strip_prefix("allow") else {
        return Err("a tresor-lint comment must read `allow RULE reason=\"…\"`".to_owned());
    };
    let rest = rest.trim_start();
    let (rules_part, reason_part) = match rest.find("reason=") {
        Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i + 7..)),
        None => (rest, None),
    };
    let rules: Vec<String> = rules_part
        .split([',', ' '])
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect();
    if rules.is_empty() {
        return Err("a tresor-lint allow comment names no rule".to_owned());
    }
    let reason = reason_part.and_then(|r| {
        let r = r.trim();
        let quoted = r
            .strip_prefix('"')
            .and_then(|r| r.find('"').and_then(|end| r.get(..end)))
            .or_else(|| {
                r.strip_prefix('\'')
                    .and_then(|r| r.find('\'').and_then(|end| r.get(..end)))
            });
        let reason = quoted.unwrap_or(r).trim();
        (!reason.is_empty()).then(|| reason.to_owned())
    });
    Ok((rules, reason))
}

/// Lines of a text, for locating a substring inside a multi-line scalar.
#[derive(Debug)]
pub struct Lines<'a> {
    text: &'a str,
    /// Byte offset where each line starts.
    starts: &'a [usize],
}

impl<'a> Lines<'a> {
    pub fn starts(text: &str) -> Vec<usize> {
        std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect()
    }

    pub fn new(text: &'a str, starts: &'a [usize]) -> Self {
        Lines { text, starts }
    }

    /// A line's text (1-based), without its line break.
    pub fn line(&self, line_no: u32) -> Option<&'a str> {
        let idx = (line_no as usize).checked_sub(1)?;
        let start = *self.starts.get(idx)?;
        let end = self.starts.get(idx + 1).map_or(self.text.len(), |e| e - 1);
        self.text
            .get(start..end)
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
    }

    /// The nearest line above `line` that is not blank: for a block scalar's first content
    /// line, the line of its `key: |` header (only blank lines may come between them).
    pub fn header_line(&self, line: u32) -> Option<u32> {
        (1..line)
            .rev()
            .find(|&l| self.line(l).is_some_and(|t| !t.trim().is_empty()))
    }

    /// Finds `needle` on lines `from..=to` (1-based), returning its position. Used to point a
    /// finding at the token inside a block scalar rather than at the scalar's `|`.
    pub fn find(&self, needle: &str, from: u32, to: u32) -> Option<Pos> {
        if needle.is_empty() {
            return None;
        }
        for line_no in from.max(1)..=to {
            let line = self.line(line_no)?;
            if let Some(byte) = line.find(needle) {
                let col = line.get(..byte).map_or(0, |s| s.chars().count()) + 1;
                return Some(Pos {
                    line: line_no,
                    col: u32::try_from(col).unwrap_or(u32::MAX),
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suppressions_are_parsed_with_rules_and_reason() {
        let c = scan_comments(
            "a: 1 # tresor-lint: allow no-inline-secret reason=\"test fixture\"\n# tresor-lint: allow a,b reason='x'\n\nb: 2\n",
        );
        assert_eq!(c.suppressions.len(), 2);
        assert_eq!(c.suppressions[0].rules, ["no-inline-secret"]);
        assert_eq!(c.suppressions[0].reason.as_deref(), Some("test fixture"));
        assert!(!c.suppressions[0].own_line);
        assert_eq!(c.suppressions[1].rules, ["a", "b"]);
        assert_eq!(c.suppressions[1].next_content_line, Some(4));
    }

    #[test]
    fn a_suppression_without_reason_has_none() {
        let c = scan_comments("# tresor-lint: allow no-inline-secret\n");
        assert_eq!(c.suppressions[0].reason, None);
        let c = scan_comments("# tresor-lint: deny x\n");
        assert_eq!(c.malformed.len(), 1);
    }

    #[test]
    fn hashes_inside_quotes_are_not_comments() {
        let c = scan_comments("a: \"x # tresor-lint: allow r reason=\\\"y\\\"\"\n");
        assert!(c.suppressions.is_empty());
        let c = scan_comments("a: b#c\n");
        assert!(c.suppressions.is_empty());
    }

    #[test]
    fn helm_source_markers_are_collected() {
        let c = scan_comments("---\n# Source: app/templates/secret.yaml\napiVersion: v1\n");
        assert_eq!(c.helm_sources[0].path, "app/templates/secret.yaml");
        assert_eq!(c.helm_sources[0].line, 2);
    }
}
