//! Building the configured auto-unseal seal from its `seal "<type>"` stanza: environment
//! fallbacks as OpenBao reads them, `file://` / `env://` / literal static keys.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use base64::Engine;
use tresor_config::SealStanza;
use tresor_core::seal::{AutoSeal, StaticKey, StaticSeal};
use tresor_sdk::secret::{SecretBytes, SecretString};

use super::seal_transit::{TransitSeal, TransitSettings};

/// The seals of the configuration: the active one (`None`: Shamir) and the old one of a seal
/// migration away from an auto seal (`disabled = "true"`).
pub struct Seals {
    pub active: Option<Arc<dyn AutoSeal>>,
    pub disabled: Option<Arc<dyn AutoSeal>>,
}

/// Builds the configured seals. The parser has already refused more than one of each.
pub fn configured(stanzas: &[SealStanza]) -> Result<Seals> {
    let pick = |disabled: bool| -> Result<Option<Arc<dyn AutoSeal>>> {
        stanzas
            .iter()
            .find(|s| s.disabled == disabled)
            .map(build)
            .transpose()
    };
    Ok(Seals {
        active: pick(false)?,
        disabled: pick(true)?,
    })
}

fn build(stanza: &SealStanza) -> Result<Arc<dyn AutoSeal>> {
    let seal: Arc<dyn AutoSeal> = match stanza.seal_type.as_str() {
        "static" => Arc::new(static_seal(stanza)?),
        "transit" => {
            let seal = Arc::new(transit_seal(stanza)?);
            if !flag(option_or_env(
                stanza,
                "disable_renewal",
                &[
                    "VAULT_TRANSIT_SEAL_DISABLE_RENEWAL",
                    "BAO_TRANSIT_SEAL_DISABLE_RENEWAL",
                ],
                false,
            )) {
                TransitSeal::start_renewal(seal.clone());
            }
            seal
        }
        other => bail!("seal {other:?} is not supported"),
    };
    Ok(seal)
}

fn env_first(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

/// A stanza value or an environment variable. `env_wins`: OpenBao's transit wrapper lets the
/// environment override the file for the key name and mount path, and the file override the
/// environment for everything else.
fn option_or_env(stanza: &SealStanza, key: &str, env: &[&str], env_wins: bool) -> Option<String> {
    let from_file = stanza.options.get(key).filter(|v| !v.is_empty()).cloned();
    if env_wins {
        env_first(env).or(from_file)
    } else {
        from_file.or_else(|| env_first(env))
    }
}

fn flag(value: Option<String>) -> bool {
    matches!(
        value.as_deref(),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True")
    )
}

fn transit_seal(stanza: &SealStanza) -> Result<TransitSeal> {
    let required = |key: &str, env: &[&str], env_wins: bool| {
        option_or_env(stanza, key, env, env_wins).with_context(|| {
            format!(
                "seal \"transit\" (line {}): {key} is required (or set {})",
                stanza.line,
                env.join(" or ")
            )
        })
    };
    let settings = TransitSettings {
        address: required("address", &["BAO_ADDR", "VAULT_ADDR"], false)?,
        token: SecretString::new(required("token", &["BAO_TOKEN", "VAULT_TOKEN"], false)?),
        key_name: required(
            "key_name",
            &["BAO_TRANSIT_SEAL_KEY_NAME", "VAULT_TRANSIT_SEAL_KEY_NAME"],
            true,
        )?,
        mount_path: required(
            "mount_path",
            &[
                "BAO_TRANSIT_SEAL_MOUNT_PATH",
                "VAULT_TRANSIT_SEAL_MOUNT_PATH",
            ],
            true,
        )?,
        namespace: option_or_env(
            stanza,
            "namespace",
            &["BAO_NAMESPACE", "VAULT_NAMESPACE"],
            false,
        ),
        tls_ca_cert: option_or_env(
            stanza,
            "tls_ca_cert",
            &["BAO_CACERT", "VAULT_CACERT"],
            false,
        ),
        tls_client_cert: option_or_env(
            stanza,
            "tls_client_cert",
            &["BAO_CLIENT_CERT", "VAULT_CLIENT_CERT"],
            false,
        ),
        tls_client_key: option_or_env(
            stanza,
            "tls_client_key",
            &["BAO_CLIENT_KEY", "VAULT_CLIENT_KEY"],
            false,
        ),
        tls_skip_verify: flag(option_or_env(
            stanza,
            "tls_skip_verify",
            &["BAO_SKIP_VERIFY", "VAULT_SKIP_VERIFY"],
            false,
        )),
        tls_server_name: option_or_env(
            stanza,
            "tls_server_name",
            &["BAO_TLS_SERVER_NAME", "VAULT_TLS_SERVER_NAME"],
            false,
        ),
    };
    TransitSeal::new(settings).with_context(|| format!("seal \"transit\" (line {})", stanza.line))
}

fn static_seal(stanza: &SealStanza) -> Result<StaticSeal> {
    let key = |id_key: &str, key_key: &str| -> Result<Option<StaticKey>> {
        let (Some(id), Some(source)) = (stanza.options.get(id_key), stanza.options.get(key_key))
        else {
            return Ok(None);
        };
        let key = resolve_key(source)
            .with_context(|| format!("seal \"static\" (line {}): {key_key}", stanza.line))?;
        Ok(Some(StaticKey {
            id: id.clone(),
            key,
        }))
    };
    let current = key("current_key_id", "current_key")?.with_context(|| {
        format!(
            "seal \"static\" (line {}): current_key_id and current_key are required",
            stanza.line
        )
    })?;
    let previous = key("previous_key_id", "previous_key")?;
    StaticSeal::new(current, previous)
        .map_err(|e| anyhow::anyhow!("seal \"static\" (line {}): {e}", stanza.line))
}

/// `file://PATH`, `env://VAR` or the key itself; the key is 32 raw bytes, or their hex or
/// base64 text. Errors never quote the value.
pub fn resolve_key(source: &str) -> Result<SecretBytes> {
    let raw: Vec<u8> = if let Some(path) = source.strip_prefix("file://") {
        let bytes = std::fs::read(path).with_context(|| format!("reading the key file {path}"))?;
        // `openssl rand -out FILE 32`: the raw key, which may contain whitespace bytes.
        if bytes.len() == tresor_core::barrier::aead::KEY_LEN {
            return Ok(SecretBytes::new(bytes));
        }
        bytes
    } else if let Some(var) = source.strip_prefix("env://") {
        std::env::var(var)
            .with_context(|| format!("the environment variable {var} is not set"))?
            .into_bytes()
    } else {
        source.as_bytes().to_vec()
    };
    let raw = SecretBytes::new(raw);
    decode_key(raw.expose()).context(
        "the key must be 32 bytes: raw, or as 64 hex digits, or base64 (e.g. `openssl rand -hex 32`)",
    )
}

fn decode_key(raw: &[u8]) -> Option<SecretBytes> {
    const LEN: usize = tresor_core::barrier::aead::KEY_LEN;
    let text = std::str::from_utf8(raw).ok().map(str::trim);
    if let Some(text) = text {
        if let Ok(bytes) = hex::decode(text)
            && bytes.len() == LEN
        {
            return Some(SecretBytes::new(bytes));
        }
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text)
            && bytes.len() == LEN
        {
            return Some(SecretBytes::new(bytes));
        }
    }
    (raw.len() == LEN).then(|| SecretBytes::copy_from(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_as_hex_base64_raw_from_files_and_the_environment() {
        let key = [7u8; 32];
        let hex_key = hex::encode(key);
        assert_eq!(resolve_key(&hex_key).unwrap().expose(), key);
        let b64 = base64::engine::general_purpose::STANDARD.encode(key);
        assert_eq!(resolve_key(&b64).unwrap().expose(), key);
        let dir = tempfile::tempdir().unwrap();
        let raw_file = dir.path().join("raw.key");
        std::fs::write(&raw_file, key).unwrap();
        assert_eq!(
            resolve_key(&format!("file://{}", raw_file.display()))
                .unwrap()
                .expose(),
            key
        );
        let hex_file = dir.path().join("hex.key");
        std::fs::write(&hex_file, format!("{hex_key}\n")).unwrap();
        assert_eq!(
            resolve_key(&format!("file://{}", hex_file.display()))
                .unwrap()
                .expose(),
            key
        );
        let err = resolve_key("deadbeef").unwrap_err();
        assert!(!format!("{err:#}").contains("deadbeef"), "{err:#}");
        assert!(resolve_key("env://SEAL_TEST_UNSET_VARIABLE_XYZ").is_err());
        assert!(resolve_key("file:///nonexistent/seal.key").is_err());
    }
}
