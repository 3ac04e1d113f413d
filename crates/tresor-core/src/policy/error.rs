//! Why a policy document was refused.
//!
//! [`PolicyError`] says *where* (the 1-based line, when the input format lets us know it) and
//! [`PolicyErrorKind`] says *what*, so the HTTP layer can answer 400 with one readable message
//! and tests can match on the kind. Policy text is configuration, not a secret, so messages may
//! quote patterns, keys and capability names from it.

use std::fmt;

/// A policy document that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{kind}", At(*.line))]
pub struct PolicyError {
    /// 1-based line of the mistake. `None` for JSON documents past the syntax stage (the JSON
    /// parser keeps no positions) and for problems that belong to no single line.
    pub line: Option<usize>,
    pub kind: PolicyErrorKind,
}

impl PolicyError {
    pub(crate) fn new(line: Option<usize>, kind: PolicyErrorKind) -> Self {
        Self { line, kind }
    }

    /// The 1-based line of the mistake, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    pub fn kind(&self) -> &PolicyErrorKind {
        &self.kind
    }
}

/// What is wrong. `place` fields read like "in path \"secret/*\"" or "at the top level".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyErrorKind {
    /// The text is neither valid HCL nor valid JSON.
    #[error("syntax error: {message}")]
    Syntax { message: String },

    #[error("unknown key {key:?} {place}")]
    UnknownKey { key: String, place: String },

    /// A key OpenBao knows (control groups, MFA, pagination limits, list filtering) whose
    /// effect Tresor does not implement. Refused rather than ignored: ignoring a restriction
    /// would grant more than the author wrote.
    #[error("{key:?} {place} is not supported by Tresor")]
    Unsupported { key: String, place: String },

    #[error("{key:?} {place} must be {expected}, found {found}")]
    WrongType {
        key: String,
        place: String,
        expected: &'static str,
        found: &'static str,
    },

    #[error(
        "`path` must be a block with one label, e.g. path \"secret/*\" {{ capabilities = [\"read\"] }} (found {found})"
    )]
    PathShape { found: String },

    #[error("path {pattern:?}: invalid capability {capability:?}")]
    UnknownCapability { pattern: String, capability: String },

    #[error("path {pattern:?}: invalid policy {value:?} (expected deny, read, write or sudo)")]
    InvalidLegacyPolicy { pattern: String, value: String },

    #[error("path {pattern:?}: invalid use of wildcards ('+*' is forbidden)")]
    PlusStar { pattern: String },

    #[error("path {pattern:?}: unbalanced templating characters")]
    UnbalancedTemplate { pattern: String },

    #[error("path {pattern:?}: invalid {key}: {message}")]
    InvalidValue {
        pattern: String,
        key: &'static str,
        message: String,
    },

    #[error("path {pattern:?}: max_wrapping_ttl cannot be less than min_wrapping_ttl")]
    WrappingTtlOrder { pattern: String },
}

/// `"line 3: "` or nothing.
struct At(Option<usize>);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(line) => write!(f, "line {line}: "),
            None => Ok(()),
        }
    }
}
