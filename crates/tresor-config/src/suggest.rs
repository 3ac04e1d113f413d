//! "Did you mean …?" for misspelt keys, block names and storage types.

/// The closest candidate, if it is close enough to be a plausible typo rather than a different
/// word: one edit for short names, up to a third of the name (at most three) for longer ones.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .iter()
        .map(|&candidate| (edit_distance(word, candidate), candidate))
        .filter(|&(distance, _)| distance <= limit)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance over chars, one row at a time.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, &cb) in b.iter().enumerate() {
            let substitute = previous
                .get(j)
                .map_or(usize::MAX, |d| d + usize::from(ca != cb));
            let delete = previous.get(j + 1).map_or(usize::MAX, |d| d + 1);
            let insert = current.last().map_or(usize::MAX, |d| d + 1);
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::{closest, edit_distance};

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("adress", "address"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
    }

    #[test]
    fn suggests_only_plausible_typos() {
        let keys = ["address", "tls_disable", "tls_cert_file", "tls_key_file"];
        assert_eq!(closest("adress", &keys), Some("address"));
        assert_eq!(closest("tls_disabled", &keys), Some("tls_disable"));
        assert_eq!(closest("tls_key", &keys), None);
        assert_eq!(closest("x", &["ui"]), None);
        assert_eq!(
            closest("postgres", &["embedded", "inmem", "postgresql"]),
            Some("postgresql")
        );
    }
}
