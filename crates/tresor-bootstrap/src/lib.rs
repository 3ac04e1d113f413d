//! `tresor bootstrap`: imports secrets from `.env` files and other Vault/OpenBao/Tresor servers
//! (Azure Key Vault next) into a KV v2 mount, by the rules of issue 16 §1 (see
//! `docs/bootstrap.md`): sanitised names, fixtures only where nothing exists, a recorded
//! version that tells the importer's own values from foreign ones, check-and-set writes,
//! `required` names checked before anything is written, idempotent runs.
//!
//! # Layout
//! - `config`: the YAML file (serde-saphyr), unknown keys refused with their line, prefix
//!   defaults only for absent keys.
//! - `name`: `.env` key sanitisation (`GHCR_TOKEN` → `ghcr-token`).
//! - `source/`: the `Source` trait; `dotenv` (the `.env` parser) and `vault` (KV v2 listing);
//!   `build` refuses `azure_keyvault` until its client lands.
//! - `kv`: the small KV v2 HTTP client (metadata, read, list, CAS write, metadata PATCH).
//! - `plan`: merging sources, the `required` check, the per-name decision and the ownership
//!   record in `custom_metadata`.
//! - `run`: one run (load, check, plan, write) and its report; the test failpoint between
//!   read and write.
//! - `doctor`: the target checks.
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
