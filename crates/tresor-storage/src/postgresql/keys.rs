//! How a storage key maps onto the table's `(path, key)` columns, and the string ranges a
//! listing reads.
//!
//! A key is split at its last `/`: `path` is everything up to and including it (the key's
//! folder, `""` at the top), `key` the rest. So a folder's entries sit next to each other in
//! the primary key's index, and the folders below a prefix are the `path` values that start
//! with it. Columns use the `"C"` collation, so PostgreSQL compares them byte by byte, the
//! order Rust's `str` comparison (and thus [`crate::list`]) uses.

/// `"a/b/c"` → `("a/b/", "c")`; `"c"` → `("", "c")`; `"a/"` → `("a/", "")`.
pub(super) fn split(full: &str) -> (&str, &str) {
    match full.rfind('/') {
        Some(i) => full.split_at(i + 1),
        None => ("", full),
    }
}

/// The smallest string greater than every string that starts with `prefix`, or `None` when
/// there is none (`prefix` is empty, or only `char::MAX`). UTF-8 preserves code point order
/// byte by byte, so raising the last raisable character to its successor is exactly that.
pub(super) fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = successor(last) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn successor(c: char) -> Option<char> {
    let code = u32::from(c).checked_add(1)?;
    // The surrogates (U+D800..U+DFFF) are not characters: U+D7FF is followed by U+E000.
    char::from_u32(code).or_else(|| (code == 0xD800).then_some('\u{E000}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_at_their_last_slash() {
        assert_eq!(split("a/b/c"), ("a/b/", "c"));
        assert_eq!(split("c"), ("", "c"));
        assert_eq!(split("a/"), ("a/", ""));
        assert_eq!(split("a//b"), ("a//", "b"));
    }

    #[test]
    fn prefix_end_bounds_exactly_the_strings_with_the_prefix() {
        assert_eq!(prefix_end("ab/").as_deref(), Some("ab0"));
        assert_eq!(prefix_end("fo").as_deref(), Some("fp"));
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_end(&format!("a{}", char::MAX)).as_deref(), Some("b"));
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end(&char::MAX.to_string()), None);
        let end = prefix_end("日本/").unwrap_or_default();
        for inside in ["日本/", "日本/キー", &format!("日本/{}", char::MAX)] {
            assert!(inside < end.as_str(), "{inside:?} < {end:?}");
        }
        assert!("日本0" >= end.as_str());
    }
}
