//! `tresor bootstrap`: imports secrets from `.env` files, other Vault/OpenBao/Tresor servers
//! and Azure Key Vault into a KV v2 mount, by the rules of issue 16 §1 (see
//! `docs/bootstrap.md`): sanitised names, fixtures only where nothing exists, a recorded
//! version that tells the importer's own values from foreign ones, check-and-set writes,
//! `required` names checked before anything is written, idempotent runs.
//!
//! # Layout
//! - `config`: the YAML file (serde-saphyr), unknown keys refused with their line, prefix
//!   defaults only for absent keys.
//! - `name`: `.env` key sanitisation (`GHCR_TOKEN` → `ghcr-token`).
//! - `source/`: the `Source` trait; `dotenv` (the `.env` parser), `vault` (KV v2 listing) and
//!   `azure` (the `azure_keyvault` source over `tresor-azure`: list, prefix, disabled skipped,
//!   get; the credential chain from the process environment).
//! - `kv`: the small KV v2 HTTP client (metadata, read, list, CAS write, metadata PATCH).
//! - `plan`: merging sources, the `required` check, the per-name decision and the ownership
//!   record in `custom_metadata`.
//! - `run`: one run (load, check, plan, write) and its report; the test failpoint between
//!   read and write.
//! - `doctor`: the target checks, and `tresor-azure`'s doctor for each `azure_keyvault` source.
//! - `progress`: the stderr progress line (terminals only).
//! - `cli`: the clap `Args` the `tresor` binary mounts, output (table, JSON), exit codes.

pub mod cli;
pub mod config;
pub mod doctor;
pub mod kv;
pub mod name;
pub mod plan;
pub mod progress;
pub mod run;
pub mod source;
