//! Byte offsets (what `hcl-edit` spans give us) to the 1-based line numbers people read.

use std::ops::Range;

#[derive(Debug)]
pub(crate) struct Lines {
    /// Byte offset of every `\n`, ascending.
    newlines: Vec<usize>,
}

impl Lines {
    pub(crate) fn new(source: &str) -> Self {
        let newlines = source
            .bytes()
            .enumerate()
            .filter_map(|(offset, byte)| (byte == b'\n').then_some(offset))
            .collect();
        Self { newlines }
    }

    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.newlines.partition_point(|&newline| newline < offset) + 1
    }

    /// Where a span starts. Spans are always present on parsed input; line 1 is a harmless
    /// fallback should a node ever lack one.
    pub(crate) fn line_of_span(&self, span: Option<Range<usize>>) -> usize {
        span.map_or(1, |span| self.line_of(span.start))
    }
}

#[cfg(test)]
mod tests {
    use super::Lines;

    #[test]
    fn offsets_map_to_one_based_lines() {
        let lines = Lines::new("ab\ncd\n\nef");
        assert_eq!(lines.line_of(0), 1);
        assert_eq!(
            lines.line_of(2),
            1,
            "the newline itself belongs to its line"
        );
        assert_eq!(lines.line_of(3), 2);
        assert_eq!(lines.line_of(6), 3);
        assert_eq!(lines.line_of(7), 4);
        assert_eq!(lines.line_of_span(None), 1);
        assert_eq!(lines.line_of_span(Some(4..5)), 2);
    }
}
