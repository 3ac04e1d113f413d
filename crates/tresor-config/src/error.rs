//! Everything that can be wrong with a config file or the TLS files it names.
//!
//! Config mistakes are split in two: [`ConfigError::Invalid`] says *where* (file and line) and
//! [`Problem`] says *what*, so callers and tests can match on either without parsing messages.

use std::io;
use std::path::{Path, PathBuf};

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A mistake in the config text. `file` is `None` when the text came from [`crate::parse`].
    #[error("{}: {problem}", at(.file.as_deref(), *.line))]
    Invalid {
        file: Option<PathBuf>,
        /// 1-based.
        line: usize,
        problem: Problem,
    },

    #[error("cannot read TLS {what} file {}: {source}", path.display())]
    TlsRead {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    // No detail from the PEM decoder: for a key file it could quote bytes of the key.
    #[error("TLS {what} file {} contains malformed PEM", path.display())]
    MalformedPem { what: &'static str, path: PathBuf },

    #[error("no PEM certificate found in {}", path.display())]
    NoCertificate { path: PathBuf },

    #[error(
        "no private key found in {} (expected an unencrypted PEM key: PKCS#8, PKCS#1 RSA or SEC1 EC)",
        path.display()
    )]
    NoPrivateKey { path: PathBuf },

    #[error("private key in {} cannot be used: {source}", path.display())]
    UnusableKey {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },

    #[error("certificate in {} cannot be used: {source}", path.display())]
    InvalidCertificate {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },

    #[error(
        "private key {} does not match the certificate in {}",
        key_file.display(),
        cert_file.display()
    )]
    KeyMismatch {
        cert_file: PathBuf,
        key_file: PathBuf,
    },

    #[error("TLS setup failed: {0}")]
    Tls(#[source] rustls::Error),

    /// An environment variable that stands for a setting (`BAO_CLUSTER_ADDR`, …) holds a
    /// value the setting would refuse in the file.
    #[error("invalid {variable}: {message}")]
    InvalidEnv {
        variable: &'static str,
        message: String,
    },
}

impl ConfigError {
    /// The 1-based line of a config mistake, if the error is one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Invalid { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// What is wrong with the config text, if the error is a config mistake.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Invalid { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

// `file:line` is what editors and terminals turn into a jump-to link.
fn at(file: Option<&Path>, line: usize) -> String {
    match file {
        Some(file) => format!("{}:{line}", file.display()),
        None => format!("line {line}"),
    }
}

/// What is wrong at a given line of the config. `place` fields read as a phrase, e.g.
/// `in listener "tcp"` or `at the top level`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    #[error("HCL syntax error at column {column}: {message}")]
    Syntax { column: usize, message: String },

    #[error("unknown key {key:?} {place}{}", did_you_mean(suggestion.as_deref()))]
    UnknownKey {
        key: String,
        place: String,
        suggestion: Option<String>,
    },

    #[error("unknown block {name:?} {place}{}", did_you_mean(suggestion.as_deref()))]
    UnknownBlock {
        name: String,
        place: String,
        suggestion: Option<String>,
    },

    /// A real Vault setting that Tresor does not implement; silently ignoring it could leave a
    /// migrated server less locked-down than its operator believes.
    #[error("{name:?} {place} is a Vault setting that Tresor does not support; remove it")]
    Unsupported { name: String, place: String },

    #[error("{name:?} must be a block, e.g. {example}")]
    ExpectedBlock { name: String, example: &'static str },

    #[error("{name:?} is a setting, not a block; write {name} = ...")]
    ExpectedAttribute { name: String },

    #[error("{name} block needs exactly one label (its type), found {found}")]
    Labels { name: String, found: usize },

    #[error("{key} must be {expected}, found {found}")]
    WrongType {
        key: String,
        expected: &'static str,
        found: &'static str,
    },

    #[error("invalid {key}: {message}")]
    InvalidValue { key: String, message: String },

    #[error("{key} is required {place}")]
    MissingKey { key: String, place: String },

    #[error(
        "no storage block; add one, e.g. storage \"embedded\" {{ path = \"/var/lib/tresor/data.redb\" }}"
    )]
    MissingStorage,

    #[error("more than one storage block (the first is on line {first_line})")]
    DuplicateStorage { first_line: usize },

    #[error(
        "storage type {kind:?} is not supported by Tresor; use storage \"embedded\" {{ path = \"...\" }} instead"
    )]
    UnsupportedStorage { kind: String },

    #[error(
        "unknown storage type {kind:?}{}; Tresor supports \"embedded\", \"inmem\" and \"postgresql\"",
        did_you_mean(suggestion.as_deref())
    )]
    UnknownStorage {
        kind: String,
        suggestion: Option<String>,
    },

    /// A migration file without its `storage_source` or `storage_destination` block.
    #[error(
        "no {stanza} block; a migration needs exactly one storage_source and one storage_destination, e.g. {stanza} \"embedded\" {{ path = \"/var/lib/tresor/data.redb\" }}"
    )]
    MissingStanza { stanza: &'static str },

    #[error("more than one {stanza} block (the first is on line {first_line})")]
    DuplicateStanza {
        stanza: &'static str,
        first_line: usize,
    },

    /// `inmem` in a migration file: there is nothing to copy from, and nothing would survive a
    /// copy to it.
    #[error(
        "{stanza} \"inmem\" cannot be migrated: an in-memory store exists only inside its running server; use \"embedded\" or \"postgresql\""
    )]
    InmemMigration { stanza: &'static str },

    #[error("unsupported listener type {kind:?}; only \"tcp\" is supported")]
    UnknownListener { kind: String },

    #[error("listener address {address} is already used by the listener on line {first_line}")]
    DuplicateListener { address: String, first_line: usize },

    #[error(
        "listener \"tcp\" has TLS enabled but no {missing}; set tls_cert_file and tls_key_file, or tls_disable = true"
    )]
    TlsFilesMissing { missing: &'static str },
}

fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion.map_or_else(String::new, |s| format!(" (did you mean {s:?}?)"))
}

/// A [`Problem`] pinned to a line, before we know which file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    pub(crate) line: usize,
    pub(crate) problem: Problem,
}

impl Located {
    pub(crate) fn new(line: usize, problem: Problem) -> Self {
        Self { line, problem }
    }

    pub(crate) fn in_file(self, file: Option<PathBuf>) -> ConfigError {
        ConfigError::Invalid {
            file,
            line: self.line,
            problem: self.problem,
        }
    }
}
