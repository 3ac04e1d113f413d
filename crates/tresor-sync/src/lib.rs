//! `tresor-sync`: keeps Kubernetes Secrets in step with Tresor. It reads External Secrets
//! Operator (`ExternalSecret`, `SecretStore`, `ClusterSecretStore`), Vault Secrets Operator
//! (`VaultConnection`, `VaultAuth`, `VaultStaticSecret`, `VaultDynamicSecret`) and its own
//! `TresorSecret` resources, fetches their sources from Tresor (or any Vault-API server) and
//! renders the target Secrets. The `tresor` binary mounts [`cli`] as `tresor sync`; this step
//! has `tresor sync once` (files in, Secrets out); see `docs/sync.md` for what is next.
//!
//! # Layout
//! - `yaml`: YAML/JSON streams into JSON values through `tresor-lint`'s bounded parser.
//! - `model`: the resource types (`eso`, `vso`, `tresor`) and loading files and directories.
//! - `vault`: the Vault-API client (KV v1/v2, database credentials, token and Kubernetes
//!   logins) and the classified, value-free [`vault::FetchError`].
//! - `extract`: ESO's `property` lookup and `dataFrom.extract` flattening, Go's JSON encoding.
//! - `template`: the Go `text/template` subset with sprig-like functions (`parse`, `funcs`).
//! - `secret`: the rendered Secret, its content hash, its YAML.
//! - `engine`: one pass: resolve stores/auths, fetch, render; failures per resource and key.
//! - `bounded`: ordered bounded concurrency (the engine's resources, 16 at a time).
//! - `apply`: writing to a cluster through kube-rs (create, replace on hash change, merge).
//! - `cli`: the `tresor sync` arguments and exit codes.
//!
//! The CRD of `TresorSecret` is `deploy/crds/tresor.dev_tresorsecrets.yaml`.

pub mod apply;
mod bounded;
pub mod cli;
pub mod engine;
pub mod extract;
pub mod model;
pub mod secret;
pub mod template;
pub mod vault;
pub mod yaml;
