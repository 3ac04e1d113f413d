//! The environment variables that stand for top-level address settings, read as OpenBao's
//! server reads them (`determineRedirectAddr` and `findClusterAddress` in
//! `internal/command/server.go`): `BAO_API_ADDR` for `api_addr` and `BAO_CLUSTER_ADDR` for
//! `cluster_addr`, each falling back to Vault's `VAULT_` name. A variable that is set (and not
//! empty) wins over the file, as on OpenBao and Vault: one file can then serve every node, with
//! each node's addresses in its environment (a systemd drop-in, a container's variables).

use crate::error::ConfigError;
use crate::model::ServerConfig;

/// `api_addr`'s variables, first match wins.
pub const API_ADDR_VARIABLES: [&str; 2] = ["BAO_API_ADDR", "VAULT_API_ADDR"];
/// `cluster_addr`'s variables, first match wins.
pub const CLUSTER_ADDR_VARIABLES: [&str; 2] = ["BAO_CLUSTER_ADDR", "VAULT_CLUSTER_ADDR"];

impl ServerConfig {
    /// `self` with `api_addr` and `cluster_addr` taken from the environment where a variable
    /// of [`API_ADDR_VARIABLES`] or [`CLUSTER_ADDR_VARIABLES`] is set and not blank. `env`
    /// looks a variable up (`|n| std::env::var(n).ok()` in the server). A cluster address is
    /// checked as in the file (a URL with a host and a port).
    pub fn with_address_env(
        mut self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ServerConfig, ConfigError> {
        let first = |names: [&'static str; 2]| {
            names.into_iter().find_map(|name| {
                env(name)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (name, v))
            })
        };
        if let Some((_, addr)) = first(API_ADDR_VARIABLES) {
            self.api_addr = Some(addr.trim().to_owned());
        }
        if let Some((variable, addr)) = first(CLUSTER_ADDR_VARIABLES) {
            let addr = crate::parse::cluster_addr_url(&addr)
                .map_err(|message| ConfigError::InvalidEnv { variable, message })?;
            self.cluster_addr = Some(addr);
        }
        Ok(self)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config() -> ServerConfig {
        crate::parse(
            "storage \"inmem\" {}\napi_addr = \"https://file:8200\"\ncluster_addr = \"https://file:8201\"\n",
        )
        .unwrap()
    }

    fn with(vars: &[(&str, &str)]) -> Result<ServerConfig, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        config().with_address_env(|name| vars.get(name).cloned())
    }

    #[test]
    fn no_variable_keeps_the_file() {
        let c = with(&[]).unwrap();
        assert_eq!(c.api_addr.as_deref(), Some("https://file:8200"));
        assert_eq!(c.cluster_addr.as_deref(), Some("https://file:8201"));
    }

    #[test]
    fn bao_wins_over_vault_and_both_over_the_file() {
        let c = with(&[
            ("BAO_API_ADDR", "https://bao:8200"),
            ("VAULT_API_ADDR", "https://vault:8200"),
            ("VAULT_CLUSTER_ADDR", "https://vault:8201/"),
        ])
        .unwrap();
        assert_eq!(c.api_addr.as_deref(), Some("https://bao:8200"));
        assert_eq!(c.cluster_addr.as_deref(), Some("https://vault:8201"));
        let c = with(&[("VAULT_API_ADDR", "https://vault:8200")]).unwrap();
        assert_eq!(c.api_addr.as_deref(), Some("https://vault:8200"));
    }

    #[test]
    fn a_blank_variable_counts_as_unset() {
        let c = with(&[
            ("BAO_API_ADDR", " "),
            ("VAULT_API_ADDR", "https://vault:8200"),
            ("BAO_CLUSTER_ADDR", ""),
        ])
        .unwrap();
        assert_eq!(c.api_addr.as_deref(), Some("https://vault:8200"));
        assert_eq!(c.cluster_addr.as_deref(), Some("https://file:8201"));
    }

    #[test]
    fn a_cluster_addr_without_a_port_is_refused_naming_the_variable() {
        let err = with(&[("BAO_CLUSTER_ADDR", "https://node-1")]).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::InvalidEnv {
                    variable: "BAO_CLUSTER_ADDR",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with("invalid BAO_CLUSTER_ADDR: "),
            "{err}"
        );
    }
}
