//! Mount table entries: what is mounted where, persisted under the barrier.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Lease settings of a mount; zero means "use the system default".
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MountConfig {
    /// Seconds.
    #[serde(default)]
    pub default_lease_ttl: u64,
    /// Seconds.
    #[serde(default)]
    pub max_lease_ttl: u64,
    #[serde(default)]
    pub force_no_cache: bool,
    /// `unauth`: `sys/internal/ui/mounts` lists the mount even to callers without a token.
    #[serde(default)]
    pub listing_visibility: String,
    /// Auth mounts: `service`, `batch`, `default-service` or `default-batch` (empty: the
    /// default, `default-service`): which tokens its logins get.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token_type: String,
}

/// One mounted secrets engine or auth method.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MountEntry {
    /// With a trailing slash: `secret/`; for auth methods relative to `auth/`: `token/`.
    pub path: String,
    #[serde(rename = "type")]
    pub engine_type: String,
    #[serde(default)]
    pub description: String,
    /// Names the mount's storage (`logical/<uuid>/`); stable across remounts.
    pub uuid: String,
    pub accessor: String,
    #[serde(default)]
    pub config: MountConfig,
    /// `None` for the built-in mounts (`sys/`, `cubbyhole/`, `token/`), which take no options
    /// and show `null`, as in OpenBao.
    #[serde(default)]
    pub options: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub local: bool,
    #[serde(default)]
    pub seal_wrap: bool,
}

impl MountEntry {
    /// Storage prefix of a secrets engine (`logical/<uuid>/`) or auth method (`auth/<uuid>/`).
    pub fn storage_prefix(&self, kind: MountKind) -> String {
        match kind {
            MountKind::Secret => format!("logical/{}/", self.uuid),
            MountKind::Auth => format!("auth/{}/", self.uuid),
        }
    }
}

/// Which table an entry lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    Secret,
    Auth,
}

impl MountKind {
    pub(crate) fn table_path(self) -> &'static str {
        match self {
            MountKind::Secret => "core/mounts",
            MountKind::Auth => "core/auth",
        }
    }
}

/// Checks and normalises a mount path given by a caller: no `..`, no empty segments, no
/// leading slash, at least one character; returned with a trailing slash.
pub fn normalise_mount_path(path: &str) -> Result<String, String> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Err("path cannot be empty".to_owned());
    }
    if trimmed.starts_with('/') {
        return Err(format!(
            "invalid mount path {path:?}: must not start with '/'"
        ));
    }
    for segment in trimmed.split('/') {
        if segment.is_empty() || segment == ".." || segment == "." {
            return Err(format!(
                "invalid mount path {path:?}: empty, '.' or '..' segment"
            ));
        }
        if segment
            .chars()
            .any(|c| c.is_control() || c == '*' || c == '+')
        {
            return Err(format!(
                "invalid mount path {path:?}: control or wildcard character"
            ));
        }
    }
    Ok(format!("{trimmed}/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_are_normalised_and_bad_ones_rejected() {
        assert_eq!(normalise_mount_path("secret").unwrap(), "secret/");
        assert_eq!(normalise_mount_path("a/b/").unwrap(), "a/b/");
        for bad in [
            "", "/", "/abs", "a//b", "../x", "a/../b", "a/./b", "a*", "a+b", "a\u{0}b",
        ] {
            assert!(normalise_mount_path(bad).is_err(), "{bad:?}");
        }
    }
}
