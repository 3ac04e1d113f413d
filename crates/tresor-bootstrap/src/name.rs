//! Secret names: `.env` keys become Key Vault–style names (the seeds' `deploy.sh` rule).

/// Lowercase, `_` and `.` → `-`: `GHCR_TOKEN` → `ghcr-token`, `app.db_url` → `app-db-url`.
pub fn sanitise(key: &str) -> String {
    key.chars()
        .map(|c| match c {
            '_' | '.' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Whether `key` is a key the `.env` parser accepts: ASCII letters, digits, `_`, `.`, `-`, not
/// starting with a digit (so every sanitised name is a valid Key Vault secret name).
pub fn valid_env_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_lowercased_and_underscores_and_dots_become_hyphens() {
        assert_eq!(sanitise("GHCR_TOKEN"), "ghcr-token");
        assert_eq!(sanitise("LANGFUSE_SECRET_KEY"), "langfuse-secret-key");
        assert_eq!(sanitise("app.db_url"), "app-db-url");
        assert_eq!(sanitise("already-fine"), "already-fine");
    }

    #[test]
    fn only_portable_keys_are_accepted() {
        assert!(valid_env_key("GHCR_TOKEN"));
        assert!(valid_env_key("a.b-c"));
        assert!(!valid_env_key("1ABC"));
        assert!(!valid_env_key("A B"));
        assert!(!valid_env_key("A$B"));
        assert!(!valid_env_key(""));
    }
}
