//! `tresor-sync`: keeps Kubernetes Secrets in step with Tresor. It reads External Secrets
//! Operator (`ExternalSecret`, `SecretStore`, `ClusterSecretStore`), Vault Secrets Operator
//! (`VaultConnection`, `VaultAuth`, `VaultStaticSecret`, `VaultDynamicSecret`) and its own
//! `TresorSecret` resources, fetches their sources from Tresor (or any Vault-API server) and
//! renders the target Secrets. The `tresor` binary mounts [`cli`] as `tresor sync`: `once`
//! (files in, Secrets out, consumers restarted), `run` (the in-cluster controller) and `status`
//! (the drift report); see `docs/sync.md`.
//!
//! # Layout
//! - `yaml`: YAML/JSON streams into JSON values through `tresor-lint`'s bounded parser.
//! - `model`: the resource types (`eso`, `vso`, `tresor`) and loading files and directories.
//! - `vault`: the Vault-API client (KV v1/v2, database credentials, token and Kubernetes
//!   logins) and the classified, value-free [`vault::FetchError`].
//! - `extract`: ESO's `property` lookup and `dataFrom.extract` flattening, Go's JSON encoding.
//! - `template`: the Go `text/template` subset with sprig-like functions (`parse`, `funcs`).
//! - `secret`: the rendered Secret, its content hash, its YAML.
//! - `login_jwt`: the JWT of a Kubernetes login: the controller's own token, a TokenRequest
//!   for a named service account, or a Secret's key.
//! - `engine`: one pass: resolve stores/auths, fetch, render; failures per resource and key.
//! - `bounded`: ordered bounded concurrency (the engine's resources, 16 at a time).
//! - `apply`: writing to a cluster through kube-rs (create, replace on hash change, merge),
//!   then the rollout restarts of the Secrets that changed.
//! - `rollout`: rollout restarts of `rolloutRestartTargets` (`kubectl.kubernetes.io/restartedAt`
//!   and `tresor.dev/restarted-for`), rate-limited per workload.
//! - `status`: the drift report of `tresor sync status` (content hashes, consumers restarted).
//! - `dynamic`: the lease lifecycle of dynamic secrets: the pure schedule (`next_action`) and
//!   the `tick` a controller calls (renew, re-issue, restart, revoke the old lease).
//! - `controller`: `tresor sync run`: watches, a cache, one resource per reconcile through
//!   `engine` and `apply`, status conditions, Events, backoff, refresh intervals, leader
//!   election through a Lease, Prometheus metrics (see its own `# Layout`).
//! - `cli`: the `tresor sync` arguments and exit codes.
//!
//! The CRD of `TresorSecret` is `deploy/crds/tresor.dev_tresorsecrets.yaml`.

pub mod apply;
mod bounded;
pub mod cli;
pub mod controller;
pub mod dynamic;
pub mod engine;
pub mod extract;
pub mod login_jwt;
pub mod model;
pub mod rollout;
pub mod secret;
pub mod status;
pub mod template;
pub mod vault;
pub mod yaml;
