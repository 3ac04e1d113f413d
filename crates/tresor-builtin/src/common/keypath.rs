//! Checks on the path a request names inside a mount.
//!
//! The storage view refuses keys with `..`, `.`, empty segments or NUL; we refuse them first
//! with a 400 so the caller learns what was wrong instead of getting a storage error (500).

use tresor_sdk::engine::{EngineError, EngineResult, Operation};

/// Refuses `.`/`..` segments, empty segments (`a//b`, a leading `/`) and NUL. A single
/// trailing `/` is allowed: LIST prefixes always carry one, and key operations decide for
/// themselves what a trailing slash means.
pub(crate) fn check(path: &str) -> EngineResult<()> {
    if path.contains('\0') {
        return Err(EngineError::InvalidRequest(
            "path contains a NUL byte".into(),
        ));
    }
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    if trimmed.is_empty() {
        // "" or "/": the root. A lone "/" is an empty segment unless it is the whole path.
        return if path.is_empty() {
            Ok(())
        } else {
            Err(empty_segment())
        };
    }
    for segment in trimmed.split('/') {
        match segment {
            "" => return Err(empty_segment()),
            "." | ".." => {
                return Err(EngineError::InvalidRequest(
                    "relative paths not supported".into(),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn empty_segment() -> EngineError {
    EngineError::InvalidRequest("invalid path: empty path segment".into())
}

/// Vault's router refuses every write (create, update, patch) to a path ending in `/`,
/// whatever the endpoint, before the engine sees it; engines repeat the rule so they answer
/// the same whoever routes to them. The mount root (`""` here) is `<mount>/` on the wire, so
/// it counts as ending in `/`.
pub(crate) fn check_write_target(operation: Operation, path: &str) -> EngineResult<()> {
    let write = matches!(
        operation,
        Operation::Create | Operation::Update | Operation::Patch
    );
    if write && (path.is_empty() || path.ends_with('/')) {
        return Err(EngineError::InvalidRequest(
            "cannot write to a path ending in '/'".into(),
        ));
    }
    Ok(())
}

/// A LIST/SCAN prefix normalised to end in `/` (the root stays empty), as Vault's HTTP layer
/// appends the slash before routing.
pub(crate) fn as_prefix(path: &str) -> String {
    if path.is_empty() || path.ends_with('/') {
        path.to_owned()
    } else {
        format!("{path}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_relative_and_empty_segments() {
        for ok in ["", "a", "a/b", "a/", "a..b", "..x", "sp ace/ünï"] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for bad in [
            "..", "a/..", "../a", "a/./b", ".", "a//b", "/a", "/", "a//", "a\0b",
        ] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn prefixes_end_in_a_slash() {
        assert_eq!(as_prefix(""), "");
        assert_eq!(as_prefix("a"), "a/");
        assert_eq!(as_prefix("a/"), "a/");
    }
}
