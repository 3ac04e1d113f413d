//! `tresor-lint`: guardrails for Kubernetes manifests and Helm output — no inline secrets, no
//! SealedSecrets, every Secret and store reference resolvable, no tokens in manifests. It has
//! no dependency on the server; the `tresor` binary mounts [`cli`] as `tresor lint`.
//!
//! # Layout
//! - `yaml`: the YAML/JSON stream parsed (saphyr-parser events) into an arena of nodes with
//!   line/column positions; aliases shared, never copied; alias bombs, deep nesting and too
//!   many nodes refused.
//! - `flow`: the byte pre-scan that refuses an oversized flow collection before parsing.
//! - `source`: what the parser drops: `# tresor-lint: allow` comments, Helm `# Source:`
//!   markers, line lookup for locations inside block scalars.
//! - `model`: files, resources (documents and `…List` items), pod specs, findings, severities.
//! - `detect`: credential keys, placeholders, connection URLs, Docker auth, known token
//!   prefixes, entropy, redaction.
//! - `rules`: the registry (ids, severities, explanations) and the checks (`inline`, `refs`,
//!   `tokens`).
//! - `config`: `.tresor-lint.yaml`.
//! - `input`: files, directories, stdin, ignore globs, size limits.
//! - `lint`: one run: parse, check, suppress, sort.
//! - `output`: human, JSON and SARIF 2.1.0.
//! - `cli`: the `tresor lint` arguments and exit codes.

pub mod cli;
pub mod config;
pub mod detect;
pub mod flow;
pub mod input;
pub mod lint;
pub mod model;
pub mod output;
pub mod rules;
pub mod source;
pub mod yaml;

pub use config::Config;
pub use lint::{Options, Report, lint_paths, lint_sources};
pub use model::{Finding, Severity};
