//! A byte pre-scan that bounds flow collections before the parser sees the input.
//!
//! saphyr-parser cannot hand over a flow collection written in block context (`key: [a, b]`,
//! `- {…}`, a whole JSON document) before it has read its closing bracket: the collection
//! might be an implicit key (`[a, b]: c`), and the scanner keeps every token inside it queued
//! until it knows — a few hundred bytes per entry, nested collections included. A 2 MiB
//! `[x,x,…]` costs 700 MB that way, a 30 MiB one 5 GB. So each input is scanned first, holding
//! nothing but counters, and one whose outermost flow collection has more items than the limit
//! is refused at that collection's opening bracket. Its items are counted as its commas, its
//! `:` value indicators and its nested collections' openers (plus its own): about one per
//! scalar, so the count follows the tokens the parser holds.
//!
//! This is a lexer's outline, not a parser. It takes `[`/`{` for a flow collection only where
//! a node may start (after the indentation, `- `, `? `, `: `, an anchor or a tag), and skips
//! comments, quoted scalars and block scalars, and quoted scalars and comments inside a
//! collection. Where YAML is ambiguous to it (a multi-line plain scalar whose next line starts
//! with `[`) it may count what is not a collection; a document marker (`---`, `...`) ends any
//! collection it believes open, so such a mistake never spreads past one document, and to be
//! refused a file would still need the limit's worth of commas after it.

use crate::yaml::Pos;

/// Checks every outermost flow collection of `text` against `limit` items; `Err` holds where
/// the first one over the limit starts.
pub fn check(text: &str, limit: u64) -> Result<(), Pos> {
    let mut scan = Scan {
        b: text.as_bytes(),
        i: 0,
        line: 1,
        line_start: 0,
        limit,
    };
    while scan.i < scan.b.len() {
        scan.block_line()?;
    }
    Ok(())
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
    /// 1-based line of `i`, and where that line starts.
    line: u32,
    line_start: usize,
    limit: u64,
}

fn blank(c: Option<u8>) -> bool {
    matches!(c, None | Some(b' ' | b'\t' | b'\r' | b'\n'))
}

impl Scan<'_> {
    fn peek(&self, at: usize) -> Option<u8> {
        self.b.get(at).copied()
    }

    fn pos(&self, at: usize) -> Pos {
        // Columns count Unicode scalar values: every byte that is not a UTF-8 continuation.
        let col = self
            .b
            .get(self.line_start..at)
            .map_or(0, |s| s.iter().filter(|&&c| c & 0xC0 != 0x80).count());
        Pos {
            line: self.line,
            col: u32::try_from(col + 1).unwrap_or(u32::MAX),
        }
    }

    fn col(&self) -> i64 {
        i64::try_from(self.i - self.line_start).unwrap_or(i64::MAX)
    }

    /// Steps over the byte at `i`, keeping the line count.
    fn bump(&mut self) {
        if self.peek(self.i) == Some(b'\n') {
            self.line = self.line.saturating_add(1);
            self.line_start = self.i + 1;
        }
        self.i += 1;
    }

    fn skip_to_eol(&mut self) {
        while let Some(c) = self.peek(self.i) {
            if c == b'\n' {
                break;
            }
            self.i += 1;
        }
    }

    /// At a line's start: a `---` or `...` document marker?
    fn at_document_marker(&self) -> bool {
        self.i == self.line_start
            && matches!(self.b.get(self.i..self.i + 3), Some(b"---" | b"..."))
            && blank(self.peek(self.i + 3))
    }

    /// Skips a quoted scalar starting at `i` (its quote), over line breaks and escapes.
    fn skip_quoted(&mut self) {
        let quote = self.peek(self.i);
        self.i += 1;
        while let Some(c) = self.peek(self.i) {
            if quote == Some(b'"') && c == b'\\' {
                self.i += 1;
                if self.peek(self.i).is_some() {
                    self.bump();
                }
                continue;
            }
            if Some(c) == quote {
                if quote == Some(b'\'') && self.peek(self.i + 1) == Some(b'\'') {
                    self.i += 2;
                    continue;
                }
                self.i += 1;
                return;
            }
            self.bump();
        }
    }

    /// Scans one line in block context (and whatever quoted scalars or flow collections that
    /// start on it span), leaving `i` at the next line's start.
    fn block_line(&mut self) -> Result<(), Pos> {
        let indent = {
            let mut j = self.i;
            while self.peek(j) == Some(b' ') {
                j += 1;
            }
            i64::try_from(j - self.i).unwrap_or(i64::MAX)
        };
        // The column a block scalar's lines must be indented past: the key's, or the `-`'s,
        // that owns it; `-1` at the top of a document.
        let mut owner: Option<i64> = None;
        let mut node_start = true;
        loop {
            while matches!(self.peek(self.i), Some(b' ' | b'\t' | b'\r')) {
                self.i += 1;
            }
            let Some(c) = self.peek(self.i) else {
                return Ok(());
            };
            let next = self.peek(self.i + 1);
            if c == b'\n' {
                self.bump();
                return Ok(());
            }
            let after_blank = self.i == self.line_start || blank(self.peek(self.i - 1));
            if c == b'#' && after_blank {
                self.skip_to_eol();
                continue;
            }
            if !node_start {
                // Inside a plain scalar (or after a quoted one or a collection): only `: `
                // starts a node again.
                if c == b':' && blank(next) {
                    node_start = true;
                }
                self.i += 1;
                continue;
            }
            if self.at_document_marker() {
                self.i += 3;
                owner = Some(-1);
                continue;
            }
            match c {
                b'-' | b'?' | b':' if blank(next) => {
                    owner = Some(self.col());
                    self.i += 1;
                }
                b'%' if self.i == self.line_start => self.skip_to_eol(),
                b'&' | b'!' => {
                    while !blank(self.peek(self.i)) {
                        self.i += 1;
                    }
                }
                b'|' | b'>' => {
                    let n = owner.unwrap_or(indent - 1);
                    self.skip_to_eol();
                    self.skip_block_scalar(n);
                    return Ok(());
                }
                b'[' | b'{' => {
                    self.flow()?;
                    node_start = false;
                }
                b'"' | b'\'' => {
                    owner = Some(self.col());
                    self.skip_quoted();
                    node_start = false;
                }
                _ => {
                    owner = Some(self.col());
                    node_start = false;
                }
            }
        }
    }

    /// At the end of a block scalar's header line: skips its content, the lines that are
    /// blank or indented past `n`, up to a document marker.
    fn skip_block_scalar(&mut self, n: i64) {
        loop {
            if self.peek(self.i) == Some(b'\n') {
                self.bump();
            }
            if self.i >= self.b.len() || self.at_document_marker() {
                return;
            }
            let line = self
                .b
                .get(self.i..)
                .and_then(|rest| rest.split(|&c| c == b'\n').next())
                .unwrap_or_default();
            let is_blank = line.iter().all(|c| matches!(c, b' ' | b'\t' | b'\r'));
            let indent = line.iter().take_while(|&&c| c == b' ').count();
            let indent = i64::try_from(indent).unwrap_or(i64::MAX);
            if !is_blank && indent <= n {
                return;
            }
            self.skip_to_eol();
        }
    }

    /// At an outermost `[` or `{`: scans to its matching bracket, counting items.
    fn flow(&mut self) -> Result<(), Pos> {
        let start = self.pos(self.i);
        let mut depth: u32 = 0;
        let mut entries: u64 = 0;
        let mut node_start = true;
        // The last thing read was a quoted scalar or a collection: `:` right after it is a
        // value indicator even without a space (JSON's `"a":"b"`).
        let mut json_key = false;
        while let Some(c) = self.peek(self.i) {
            let next = self.peek(self.i + 1);
            let after_blank = self.i == self.line_start || blank(self.peek(self.i - 1));
            match c {
                b'\n' => {
                    self.bump();
                    if self.at_document_marker() {
                        return Ok(());
                    }
                    continue;
                }
                b' ' | b'\t' | b'\r' => {}
                b'#' if after_blank => {
                    self.skip_to_eol();
                    continue;
                }
                b'[' | b'{' => {
                    depth += 1;
                    entries += 1;
                    node_start = true;
                    json_key = false;
                }
                b']' | b'}' => {
                    depth = depth.saturating_sub(1);
                    node_start = false;
                    json_key = true;
                    if depth == 0 {
                        self.i += 1;
                        return Ok(());
                    }
                }
                b',' => {
                    entries += 1;
                    node_start = true;
                    json_key = false;
                }
                b'"' | b'\'' if node_start => {
                    self.skip_quoted();
                    node_start = false;
                    json_key = true;
                    continue;
                }
                b':' if blank(next) || json_key || matches!(next, Some(b',' | b']' | b'}')) => {
                    entries += 1;
                    node_start = true;
                    json_key = false;
                }
                b'?' if node_start && blank(next) => {}
                b'&' | b'!' if node_start => {
                    while !blank(self.peek(self.i))
                        && !matches!(self.peek(self.i), Some(b',' | b'[' | b']' | b'{' | b'}'))
                    {
                        self.i += 1;
                    }
                    continue;
                }
                _ => {
                    node_start = false;
                    json_key = false;
                }
            }
            if entries > self.limit {
                return Err(start);
            }
            self.i += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries_ok(text: &str, limit: u64) -> bool {
        check(text, limit).is_ok()
    }

    #[test]
    fn items_of_one_collection_are_counted_nested_included() {
        // 1 opener + 2 commas + 1 nested opener + 1 comma and 2 `:` inside = 7.
        let s = "k: [a, b, {c: 1, d: 2}]\n";
        assert!(entries_ok(s, 7));
        assert_eq!(check(s, 6), Err(Pos { line: 1, col: 4 }));
    }

    #[test]
    fn each_outermost_collection_counts_on_its_own() {
        let s = "a: [1, 2, 3]\nb: [1, 2, 3]\n- {x: 1, y: 2}\n";
        assert!(entries_ok(s, 4));
        assert!(!entries_ok(s, 3));
    }

    #[test]
    fn brackets_in_scalars_comments_and_block_scalars_are_not_collections() {
        let s = concat!(
            "cmd: echo [a, b, c, d]\n",
            "q: \"[a, b, c, d]\"\n",
            "s: '[a, b, c, d'' , e]'\n",
            "# [a, b, c, d]\n",
            "k: v # {a, b, c, d}\n",
            "script: |\n",
            "  [a, b, c, d\n",
            "\n",
            "  {a, b, c\n",
            "next: >-\n",
            "    [a, b, c, d]\n",
            "- |\n",
            "  [a, b, c, d]\n",
            "- key: |\n",
            "    [a, b, c, d]\n",
            "url: http://x/[a,b,c,d]\n",
        );
        assert!(entries_ok(s, 1));
    }

    #[test]
    fn quoted_scalars_and_comments_inside_a_collection_are_skipped() {
        let s = "k: [\"a, ], b\", 'c, '' ]', # x, y, ]\n  d]\nz: [1, 2, 3, 4, 5]\n";
        // 1 + 2 commas; the second collection has 1 + 4.
        assert!(entries_ok(s, 5));
        assert_eq!(check(s, 4), Err(Pos { line: 3, col: 4 }));
    }

    #[test]
    fn json_documents_are_one_collection() {
        let s = "{\n  \"items\": [\n    {\"a\":\"b\", \"c\":[1,2]},\n    {\"a\":\"]\"}\n  ]\n}\n";
        // 5 openers, 3 commas, 4 `:` (JSON's without a space after them too).
        assert!(entries_ok(s, 12));
        assert_eq!(check(s, 11), Err(Pos { line: 1, col: 1 }));
    }

    #[test]
    fn a_document_marker_ends_an_unclosed_collection() {
        let s = "a: [1, 2\n---\nb: [1, 2]\n";
        assert!(entries_ok(s, 2));
    }

    #[test]
    fn anchors_tags_and_document_starts_precede_collections() {
        assert!(check("a: &x [1, 2, 3]\n", 2).is_err());
        assert!(check("a: !!seq [1, 2, 3]\n", 2).is_err());
        assert!(check("--- [1, 2, 3]\n", 2).is_err());
        assert!(check("- - [1, 2, 3]\n", 2).is_err());
        assert!(check("[\"x\", &a \"y, z\"]\n", 2).is_ok());
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(check("é: [1, 2]\n", 1), Err(Pos { line: 1, col: 4 }));
    }
}
