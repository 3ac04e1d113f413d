//! `.tresor-lint.yaml`: severities, extra credential key patterns, extra roots, excludes, and
//! Secrets and stores that exist outside the scanned files. Read with the linter's own YAML
//! parser, so an error names its line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::detect::normalise_key;
use crate::model::Severity;
use crate::yaml::{Limits, Yaml};

pub const FILE_NAME: &str = ".tresor-lint.yaml";

#[derive(Debug, Default, Clone)]
pub struct Config {
    /// Rule id → severity; `None` turns the rule off.
    pub severities: HashMap<String, Option<Severity>>,
    /// Extra credential key patterns, normalised (lower case, no separators).
    pub credential_keys: Vec<String>,
    /// Paths scanned in addition to the command line's (relative to the config file).
    pub roots: Vec<PathBuf>,
    /// Globs excluded, like `.tresorignore` lines.
    pub exclude: Vec<String>,
    /// Secrets that exist outside the scanned set: `name` (any namespace) or `namespace/name`.
    pub known_secrets: Vec<(Option<String>, String)>,
    /// SecretStores / ClusterSecretStores defined elsewhere, same form.
    pub known_secret_stores: Vec<(Option<String>, String)>,
    /// Absolute URL of docs/lint.md as the team reads it (its rule sections are anchored by
    /// rule id): SARIF `helpUri`s, JSON `doc` and `--explain` link there. Unset: SARIF has no
    /// `helpUri` (it must be absolute), the others name `docs/lint.md#RULE`.
    pub docs_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: String,
        line: u32,
        message: String,
    },
}

fn split_ns(s: &str) -> (Option<String>, String) {
    match s.split_once('/') {
        Some((ns, name)) => (Some(ns.to_owned()), name.to_owned()),
        None => (None, s.to_owned()),
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, base, &shown)
    }

    pub fn parse(text: &str, base: &Path, shown: &str) -> Result<Config, ConfigError> {
        let invalid = |line: u32, message: String| ConfigError::Invalid {
            path: shown.to_owned(),
            line,
            message,
        };
        let yaml = Yaml::parse(
            text,
            Limits {
                max_alias_nodes: 100_000,
                max_depth: 16,
                ..Limits::default()
            },
        )
        .map_err(|e| invalid(e.pos().line, e.to_string()))?;
        let mut config = Config::default();
        let Some(root) = yaml.docs.first().and_then(|d| d.root) else {
            return Ok(config);
        };
        if !yaml.is_map(root) {
            return Err(invalid(
                yaml.pos(root).line,
                "expected a mapping".to_owned(),
            ));
        }
        let strings = |node| -> Result<Vec<String>, ConfigError> {
            yaml.seq(node)
                .iter()
                .map(|&n| {
                    yaml.string(n)
                        .map(str::to_owned)
                        .ok_or_else(|| invalid(yaml.pos(n).line, "expected a string".to_owned()))
                })
                .collect()
        };
        for &(k, v) in yaml.entries(root).iter() {
            let line = yaml.pos(k).line;
            match yaml.str(k).unwrap_or("") {
                "rules" | "severity" | "severities" => {
                    for &(rk, rv) in yaml.entries(v).iter() {
                        let id = yaml.str(rk).unwrap_or("").to_owned();
                        if crate::rules::rule(&id).is_none() {
                            return Err(invalid(yaml.pos(rk).line, format!("unknown rule {id:?}")));
                        }
                        let sev = yaml.str(rv).unwrap_or("");
                        let parsed = if matches!(sev, "off" | "none" | "false") {
                            None
                        } else {
                            Some(Severity::parse(sev).ok_or_else(|| {
                                invalid(
                                    yaml.pos(rv).line,
                                    format!(
                                        "severity must be error, warning, note or off, not {sev:?}"
                                    ),
                                )
                            })?)
                        };
                        config.severities.insert(id, parsed);
                    }
                }
                "credential_keys" | "key_patterns" => {
                    config.credential_keys = strings(v)?.iter().map(|s| normalise_key(s)).collect();
                }
                "roots" => config.roots = strings(v)?.into_iter().map(|r| base.join(r)).collect(),
                "exclude" => config.exclude = strings(v)?,
                "known_secrets" => {
                    config.known_secrets = strings(v)?.iter().map(|s| split_ns(s)).collect();
                }
                "known_secret_stores" => {
                    config.known_secret_stores = strings(v)?.iter().map(|s| split_ns(s)).collect();
                }
                "docs_url" => {
                    let url = yaml.string(v).unwrap_or("").trim_end_matches('/');
                    if !is_absolute_url(url) {
                        return Err(invalid(
                            yaml.pos(v).line,
                            format!(
                                "docs_url must be an absolute URL without a fragment (https://…/docs/lint.md), not {url:?}"
                            ),
                        ));
                    }
                    config.docs_url = Some(url.to_owned());
                }
                other => return Err(invalid(line, format!("unknown key {other:?}"))),
            }
        }
        Ok(config)
    }

    pub fn knows_secret(&self, ns: Option<&str>, name: &str) -> bool {
        known(&self.known_secrets, ns, name)
    }

    pub fn knows_store(&self, ns: Option<&str>, name: &str) -> bool {
        known(&self.known_secret_stores, ns, name)
    }
}

/// `scheme:rest` with an RFC 3986 scheme, no whitespace and no `#` (the rule id is the
/// fragment), as SARIF's `helpUri` needs.
fn is_absolute_url(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !s.contains('#')
        && !s.chars().any(char::is_whitespace)
}

fn known(list: &[(Option<String>, String)], ns: Option<&str>, name: &str) -> bool {
    list.iter().any(|(kns, kname)| {
        kname == name && (kns.is_none() || ns.is_none() || kns.as_deref() == ns)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_config_is_read() {
        let c = Config::parse(
            "rules:\n  high-entropy-string: off\n  no-secret-in-annotation: warning\ncredential_keys: [OTP_SEED]\nroots: [../gitops]\nknown_secrets: [vault/vault-auto-credentials, shared]\n",
            Path::new("/repo"),
            "c",
        )
        .unwrap();
        assert_eq!(c.severities["high-entropy-string"], None);
        assert_eq!(
            c.severities["no-secret-in-annotation"],
            Some(Severity::Warning)
        );
        assert_eq!(c.credential_keys, ["otpseed"]);
        assert_eq!(c.roots, [PathBuf::from("/repo/../gitops")]);
        assert!(c.knows_secret(Some("vault"), "vault-auto-credentials"));
        assert!(!c.knows_secret(Some("x"), "vault-auto-credentials"));
        assert!(c.knows_secret(Some("x"), "shared"));
    }

    #[test]
    fn docs_url_must_be_absolute() {
        let c = Config::parse(
            "docs_url: https://git.corp.test/platform/tresor/blob/main/docs/lint.md/\n",
            Path::new("."),
            "c",
        )
        .unwrap();
        assert_eq!(
            c.docs_url.as_deref(),
            Some("https://git.corp.test/platform/tresor/blob/main/docs/lint.md")
        );
        for bad in [
            "docs/lint.md",
            "",
            "https://x.test/lint.md#rules",
            "/abs/path.md",
        ] {
            let e = Config::parse(
                &format!("exclude: []\ndocs_url: {bad:?}\n"),
                Path::new("."),
                "c",
            );
            let e = e.map(|_| ()).unwrap_err().to_string();
            assert!(
                e.starts_with("c:2:") && e.contains("absolute URL"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn unknown_keys_and_rules_are_errors_with_a_line() {
        let e = Config::parse("rules:\n  nope: error\n", Path::new("."), "c").unwrap_err();
        assert!(e.to_string().starts_with("c:2:"), "{e}");
        let e = Config::parse("a: 1\nbogus: 2\n", Path::new("."), "c").unwrap_err();
        assert!(e.to_string().contains("unknown key"), "{e}");
    }
}
