//! The config file (YAML, parsed with serde-saphyr): where to write, what to read, fixtures and
//! required names. Unknown keys are an error with their line; a prefix set to `""` means no
//! prefix, and only an absent key takes the default (the seeds' `${VAR:=…}` bug turned an
//! explicit empty prefix back into the default).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use tresor_sdk::secret::SecretString;

/// `target.path_prefix` when the key is absent.
pub const DEFAULT_PATH_PREFIX: &str = "bootstrap/";
/// `azure_keyvault.secret_prefix` when the key is absent (the seeds' chart default).
pub const DEFAULT_SECRET_PREFIX: &str = "env-";
/// `target.mount` when absent.
pub const DEFAULT_MOUNT: &str = "secret";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// serde-saphyr's message (`line L column C: …`) with quoted scalars redacted.
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub target: Target,
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// Placeholder values written only where nothing exists yet.
    #[serde(default)]
    pub fixtures: BTreeMap<String, SecretString>,
    /// Names that must have a real value (not missing, not equal to their fixture).
    #[serde(default)]
    pub required: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Default: `VAULT_ADDR` (then `TRESOR_ADDR`, `BAO_ADDR`).
    pub address: Option<String>,
    /// Default: `VAULT_TOKEN` (then `TRESOR_TOKEN`, `BAO_TOKEN`). Prefer the variable: a
    /// config file usually lives in a ConfigMap.
    pub token: Option<SecretString>,
    /// A KV v2 mount. Default `secret`.
    pub mount: Option<String>,
    /// Written to `<mount>/data/<path_prefix><name>`. Absent: [`DEFAULT_PATH_PREFIX`].
    #[serde(default, deserialize_with = "explicit_string")]
    pub path_prefix: Option<String>,
    /// A PEM CA bundle for an HTTPS target. Default: `VAULT_CACERT`.
    pub ca_cert: Option<PathBuf>,
}

impl Target {
    pub fn mount(&self) -> &str {
        self.mount.as_deref().unwrap_or(DEFAULT_MOUNT)
    }

    /// The prefix: the configured one, `""` included; the default only when absent.
    pub fn path_prefix(&self) -> &str {
        self.path_prefix.as_deref().unwrap_or(DEFAULT_PATH_PREFIX)
    }
}

/// One entry of `sources:`, a single-key map naming the kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SourceConfig {
    Dotenv(DotenvConfig),
    AzureKeyvault(AzureKeyvaultConfig),
    Vault(VaultSourceConfig),
}

impl SourceConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Dotenv(_) => "dotenv",
            SourceConfig::AzureKeyvault(_) => "azure_keyvault",
            SourceConfig::Vault(_) => "vault",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DotenvConfig {
    /// Read in order; a later file wins on the same key. Relative paths are relative to the
    /// config file's directory.
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureKeyvaultConfig {
    pub vault_url: String,
    /// Only secrets whose name starts with it are imported, without it. Absent:
    /// [`DEFAULT_SECRET_PREFIX`]; `""`: every secret, names unchanged.
    #[serde(default, deserialize_with = "explicit_string")]
    pub secret_prefix: Option<String>,
    /// A PEM CA bundle trusted instead of the system's roots, for the vault and the Entra
    /// token endpoint (a TLS-inspecting proxy, or the tests' fake). Relative to the config
    /// file's directory.
    pub ca_file: Option<PathBuf>,
    /// Whether the 401 challenge's `resource` must be a parent domain of the vault's host
    /// (default `true`). `false` only for a test vault on `127.0.0.1`.
    #[serde(default = "yes")]
    pub verify_challenge_resource: bool,
}

fn yes() -> bool {
    true
}

impl AzureKeyvaultConfig {
    pub fn secret_prefix(&self) -> &str {
        self.secret_prefix
            .as_deref()
            .unwrap_or(DEFAULT_SECRET_PREFIX)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSourceConfig {
    pub address: String,
    /// The environment variable holding the source's token (never the token itself).
    pub token_env: String,
    /// A KV v2 mount on the source. Default `secret`.
    pub mount: Option<String>,
    /// Listed recursively; names are the paths below it. Default: the whole mount.
    #[serde(default)]
    pub path: String,
    /// A PEM CA bundle for an HTTPS source.
    pub ca_cert: Option<PathBuf>,
}

impl VaultSourceConfig {
    pub fn mount(&self) -> &str {
        self.mount.as_deref().unwrap_or(DEFAULT_MOUNT)
    }
}

/// A string that may be empty but not null: `path_prefix:` with nothing after it is YAML's
/// null, which would otherwise silently become the default — the very bug this rule is about.
fn explicit_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<String>::deserialize(d)? {
        Some(s) => Ok(Some(s)),
        None => Err(serde::de::Error::custom(
            "a prefix cannot be null: write \"\" for no prefix, or leave the key out for the default",
        )),
    }
}

/// Replaces the contents of double-quoted runs in a parser message with `…`: serde's
/// "invalid type: string \"…\"" messages quote the offending scalar, which may be a token.
fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside = false;
    for c in message.chars() {
        if c == '"' {
            if inside {
                out.push('…');
            }
            inside = !inside;
            out.push(c);
        } else if !inside {
            out.push(c);
        }
    }
    out
}

impl Config {
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        // No snippet: the lines around an error may hold a token or a fixture.
        let options = serde_saphyr::options! { with_snippet: false };
        let config: Config =
            serde_saphyr::from_str_with_options(text, options).map_err(|e| ConfigError::Parse {
                path: path.to_owned(),
                message: redact_quoted(e.to_string().lines().next().unwrap_or_default()),
            })?;
        config.validate(path)?;
        Ok(config)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let mount = self.target.mount();
        if mount.is_empty() || mount.starts_with('/') {
            return Err(invalid(format!(
                "target.mount {mount:?} is not a mount path"
            )));
        }
        if self.target.path_prefix().starts_with('/') {
            return Err(invalid(
                "target.path_prefix must not start with '/'".to_owned(),
            ));
        }
        for (i, source) in self.sources.iter().enumerate() {
            match source {
                SourceConfig::Dotenv(d) if d.files.is_empty() => {
                    return Err(invalid(format!("sources[{i}].dotenv.files is empty")));
                }
                SourceConfig::AzureKeyvault(a) if a.vault_url.is_empty() => {
                    return Err(invalid(format!(
                        "sources[{i}].azure_keyvault.vault_url is empty"
                    )));
                }
                SourceConfig::Vault(v) if v.token_env.is_empty() => {
                    return Err(invalid(format!("sources[{i}].vault.token_env is empty")));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("bootstrap.yaml"))
    }

    const ISSUE_EXAMPLE: &str = r#"
target:
  address: http://127.0.0.1:8200
  mount: secret
  path_prefix: ""
sources:
  - dotenv: {files: [.env, .env.local]}
  - azure_keyvault: {vault_url: "https://example.vault.azure.net/", secret_prefix: ""}
  - vault: {address: "http://127.0.0.1:8201", token_env: SRC_TOKEN, mount: secret, path: "apps/"}
fixtures: {ghcr-token: "placeholder-ghcr-token"}
required: [ghcr-token, ghcr-username]
"#;

    #[test]
    fn the_issue_example_parses() {
        let c = parse(ISSUE_EXAMPLE).unwrap();
        assert_eq!(c.target.address.as_deref(), Some("http://127.0.0.1:8200"));
        assert_eq!(c.target.mount(), "secret");
        assert_eq!(c.sources.len(), 3);
        assert!(matches!(&c.sources[0], SourceConfig::Dotenv(d) if d.files.len() == 2));
        assert!(matches!(&c.sources[2], SourceConfig::Vault(v) if v.path == "apps/"));
        assert_eq!(c.fixtures["ghcr-token"].expose(), "placeholder-ghcr-token");
        assert_eq!(c.required, ["ghcr-token", "ghcr-username"]);
    }

    #[test]
    fn an_explicit_empty_path_prefix_means_no_prefix_and_only_an_absent_one_takes_the_default() {
        let empty = parse("target: {path_prefix: \"\"}\n").unwrap();
        assert_eq!(empty.target.path_prefix(), "");
        let absent = parse("target: {mount: kv}\n").unwrap();
        assert_eq!(absent.target.path_prefix(), DEFAULT_PATH_PREFIX);
        let set = parse("target: {path_prefix: apps/}\n").unwrap();
        assert_eq!(set.target.path_prefix(), "apps/");
    }

    #[test]
    fn an_explicit_empty_secret_prefix_means_no_prefix_and_only_an_absent_one_takes_the_default() {
        let source = |text: &str| match parse(text).unwrap().sources.into_iter().next() {
            Some(SourceConfig::AzureKeyvault(a)) => a,
            other => panic!("{other:?}"),
        };
        let empty = source("sources:\n  - azure_keyvault: {vault_url: u, secret_prefix: ''}\n");
        assert_eq!(empty.secret_prefix(), "");
        let absent = source("sources:\n  - azure_keyvault: {vault_url: u}\n");
        assert_eq!(absent.secret_prefix(), DEFAULT_SECRET_PREFIX);
        assert!(absent.verify_challenge_resource);
        assert_eq!(absent.ca_file, None);
        let test = source(
            "sources:\n  - azure_keyvault: {vault_url: u, ca_file: ca.pem, verify_challenge_resource: false}\n",
        );
        assert!(!test.verify_challenge_resource);
        assert_eq!(test.ca_file.as_deref(), Some(Path::new("ca.pem")));
    }

    #[test]
    fn a_null_prefix_is_an_error_rather_than_the_default() {
        for text in [
            "target:\n  path_prefix:\n",
            "sources:\n  - azure_keyvault:\n      vault_url: u\n      secret_prefix: ~\n",
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains("cannot be null"), "{err}");
        }
    }

    #[test]
    fn unknown_keys_are_errors_with_their_line() {
        let cases = [
            ("target:\n  mount: secret\n  pathprefix: x\n", "line 3"),
            (
                "sources:\n  - dotenv: {files: [a]}\n  - dotenv: {files: [b], glob: x}\n",
                "line 3",
            ),
            ("target: {}\nsurces: []\n", "line 2"),
            ("sources:\n  - consul: {}\n", "line 2"),
        ];
        for (text, line) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(line), "{text:?}: {err}");
            assert!(err.starts_with("bootstrap.yaml: "), "{err}");
        }
    }

    #[test]
    fn parse_errors_never_quote_a_scalar() {
        let err = parse("target:\n  token: [\"tok-marker-xyz\"]\n")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("tok-marker-xyz"), "{err}");
        let err = parse("fixtures: \"fixture-marker-xyz\"\n")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("fixture-marker-xyz"), "{err}");
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn redact_quoted_keeps_the_words_and_drops_quoted_text() {
        assert_eq!(
            redact_quoted("invalid type: string \"abc\", expected a map"),
            "invalid type: string \"…\", expected a map"
        );
    }
}
