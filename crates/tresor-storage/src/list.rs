//! The one implementation of Vault's `List` semantics, shared by every backend.

/// Turns the full keys that start with `prefix` (in any order) into the sorted, de-duplicated
/// immediate children of `prefix`: `a/b/c` under `a/` becomes `b/`.
pub(crate) fn immediate_children<'a>(
    prefix: &str,
    keys: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for key in keys {
        let Some(rest) = key.strip_prefix(prefix) else {
            continue;
        };
        if rest.is_empty() {
            continue;
        }
        let child = match rest.find('/') {
            Some(i) => rest.get(..=i).unwrap_or(rest),
            None => rest,
        };
        if out.last().map(String::as_str) != Some(child) {
            out.push(child.to_owned());
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_listed_once_with_a_trailing_slash() {
        let keys = ["a/b", "a/c/d", "a/c/e", "a/", "b/x", "a/c"];
        assert_eq!(immediate_children("a/", keys), vec!["b", "c", "c/"]);
        assert_eq!(immediate_children("", keys), vec!["a/", "b/"]);
        assert!(immediate_children("z/", keys).is_empty());
    }
}
