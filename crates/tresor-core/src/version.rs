//! What the server reports as its version.
//!
//! Clients and tools (the Terraform provider, the `vault`/`bao` CLI) gate features on the
//! version a server reports, so Tresor reports the OpenBao API level it implements, with its own
//! version as semver build metadata: `2.7.2+tresor.0.1.0`.

/// The OpenBao release whose HTTP API Tresor follows.
pub const API_COMPAT_VERSION: &str = "2.7.2";

/// The version string reported in `sys/health` and `sys/seal-status`.
pub fn reported_version() -> String {
    format!("{API_COMPAT_VERSION}+tresor.{}", env!("CARGO_PKG_VERSION"))
}
