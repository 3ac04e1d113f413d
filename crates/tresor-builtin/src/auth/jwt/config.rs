//! `config`: where keys come from (exactly one of `oidc_discovery_url`, `jwks_url`,
//! `jwt_validation_pubkeys`), the OIDC client, `bound_issuer`, `jwt_supported_algs`,
//! `default_role`. A write replaces the whole configuration, as in OpenBao, after checking it
//! (the discovery document or the JWKS is fetched unless `skip_jwks_validation`). The client
//! secret is stored under the barrier and never returned.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tresor_sdk::engine::{EngineError, EngineResult, Request, Response};
use tresor_sdk::secret::SecretString;
use tresor_sdk::storage::Storage;

use super::fetch;
use super::jwks::{JwksLocation, KeySource, RemoteKeys};
use super::keys::{ALLOWED_ALGS, Alg, PublicKey};
use crate::common::fields;

pub(crate) const CONFIG_KEY: &str = "config";

/// The stored configuration (OpenBao's `jwtConfig`, same JSON names).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct JwtConfig {
    #[serde(default)]
    pub(crate) oidc_discovery_url: String,
    #[serde(default)]
    pub(crate) oidc_discovery_ca_pem: String,
    #[serde(default)]
    pub(crate) oidc_client_id: String,
    #[serde(default, with = "secret_field")]
    pub(crate) oidc_client_secret: Option<SecretString>,
    #[serde(default)]
    pub(crate) oidc_response_mode: String,
    #[serde(default)]
    pub(crate) oidc_response_types: Vec<String>,
    #[serde(default)]
    pub(crate) jwks_url: String,
    #[serde(default)]
    pub(crate) jwks_ca_pem: String,
    #[serde(default)]
    pub(crate) jwt_validation_pubkeys: Vec<String>,
    #[serde(default)]
    pub(crate) jwt_supported_algs: Vec<String>,
    #[serde(default)]
    pub(crate) bound_issuer: String,
    #[serde(default)]
    pub(crate) default_role: String,
    #[serde(default)]
    pub(crate) provider_config: Map<String, Value>,
    #[serde(default)]
    pub(crate) override_allowed_server_names: Vec<String>,
    #[serde(default)]
    pub(crate) namespace_in_state: bool,
}

/// The client secret is stored (under the barrier) but only ever deserialised into a
/// zeroizing, redacted type.
mod secret_field {
    use serde::{Deserialize, Deserializer, Serializer};
    use tresor_sdk::secret::SecretString;

    pub(super) fn serialize<S: Serializer>(
        v: &Option<SecretString>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.as_ref().map_or("", SecretString::expose))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SecretString>, D::Error> {
        let s = Option::<SecretString>::deserialize(d)?;
        Ok(s.filter(|s| !s.is_empty()))
    }
}

impl JwtConfig {
    pub(crate) fn client_secret(&self) -> &str {
        self.oidc_client_secret
            .as_ref()
            .map_or("", SecretString::expose)
    }

    /// OpenBao's `OIDCFlow`: discovery plus a client, so `oidc/auth_url` can work.
    pub(crate) fn is_oidc_flow(&self) -> bool {
        !self.oidc_discovery_url.is_empty()
            && !self.oidc_client_id.is_empty()
            && !self.client_secret().is_empty()
    }

    /// The algorithms a login accepts: the configured list, else every allowed one.
    pub(crate) fn login_algs(&self) -> Vec<Alg> {
        let names: Vec<&str> = if self.jwt_supported_algs.is_empty() {
            ALLOWED_ALGS.to_vec()
        } else {
            self.jwt_supported_algs.iter().map(String::as_str).collect()
        };
        names.into_iter().filter_map(Alg::parse).collect()
    }

    /// The algorithms an OIDC ID token may use: the configured list, else RS256.
    pub(crate) fn oidc_algs(&self) -> Vec<Alg> {
        if self.jwt_supported_algs.is_empty() {
            vec![Alg::Rs256]
        } else {
            self.login_algs()
        }
    }
}

/// A configuration with its key source built: what logins use, cached until the next write.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) config: JwtConfig,
    pub(crate) keys: KeySource,
}

impl Loaded {
    /// Builds the key source (parses PEM keys, or prepares the HTTP client for a JWKS).
    pub(crate) fn build(config: JwtConfig) -> Result<Loaded, String> {
        let keys = if !config.jwt_validation_pubkeys.is_empty() {
            let keys = config
                .jwt_validation_pubkeys
                .iter()
                .map(|p| {
                    PublicKey::from_pem(p).map_err(|e| format!("error parsing public key: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            KeySource::Static(keys)
        } else if !config.jwks_url.is_empty() {
            KeySource::Remote(RemoteKeys::new(
                JwksLocation::Url(config.jwks_url.clone()),
                fetch::client(&config.jwks_ca_pem)?,
            ))
        } else if !config.oidc_discovery_url.is_empty() {
            KeySource::Remote(RemoteKeys::new(
                JwksLocation::Discovery(config.oidc_discovery_url.clone()),
                fetch::client(&config.oidc_discovery_ca_pem)?,
            ))
        } else {
            return Err("unsupported config type".to_owned());
        };
        Ok(Loaded { config, keys })
    }
}

pub(crate) async fn load(storage: &dyn Storage) -> EngineResult<Option<JwtConfig>> {
    let Some(raw) = storage.get(CONFIG_KEY).await? else {
        return Ok(None);
    };
    serde_json::from_slice(raw.expose())
        .map(Some)
        .map_err(|e| EngineError::Internal(format!("decoding the jwt config: {e}")))
}

fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::InvalidRequest(msg.into())
}

/// `GET config`: everything but the client secret, plus `status` (whether the keys can be
/// set up: PEMs parse, a CA parses, a discovery document answers), as OpenBao answers.
pub(crate) async fn read(config: &JwtConfig) -> Response {
    let mut data = Map::new();
    data.insert(
        "oidc_discovery_url".into(),
        json!(config.oidc_discovery_url),
    );
    data.insert(
        "oidc_discovery_ca_pem".into(),
        json!(config.oidc_discovery_ca_pem),
    );
    data.insert("oidc_client_id".into(), json!(config.oidc_client_id));
    data.insert(
        "oidc_response_mode".into(),
        json!(config.oidc_response_mode),
    );
    data.insert(
        "oidc_response_types".into(),
        json!(config.oidc_response_types),
    );
    data.insert("default_role".into(), json!(config.default_role));
    data.insert(
        "jwt_validation_pubkeys".into(),
        json!(config.jwt_validation_pubkeys),
    );
    data.insert(
        "jwt_supported_algs".into(),
        json!(config.jwt_supported_algs),
    );
    data.insert("jwks_url".into(), json!(config.jwks_url));
    data.insert("jwks_ca_pem".into(), json!(config.jwks_ca_pem));
    data.insert("bound_issuer".into(), json!(config.bound_issuer));
    data.insert("provider_config".into(), json!({}));
    data.insert(
        "override_allowed_server_names".into(),
        json!(config.override_allowed_server_names),
    );
    data.insert(
        "namespace_in_state".into(),
        json!(config.namespace_in_state),
    );
    let mut response = Response::default();
    let usable = match Loaded::build(config.clone()) {
        Ok(loaded) => match loaded.keys.remote() {
            Some(remote) if !config.oidc_discovery_url.is_empty() => remote
                .discovery()
                .await
                .map(|_| ())
                .map_err(|e| format!("keyset configuration error: {e}")),
            _ => Ok(()),
        },
        Err(e) => Err(e),
    };
    match usable {
        Ok(()) => {
            data.insert("status".into(), json!("valid"));
        }
        Err(e) => {
            response
                .warnings
                .push(format!("failed to construct JWK validator: {e}"));
            data.insert("status".into(), json!("invalid"));
        }
    }
    response.data = Some(data);
    response
}

fn list(req: &Request, name: &str) -> EngineResult<Vec<String>> {
    Ok(fields::string_list(req, name)?.unwrap_or_default())
}

fn string(req: &Request, name: &str) -> EngineResult<String> {
    Ok(fields::string(req, name)?.unwrap_or_default())
}

/// `POST config`: validates and stores the whole configuration; returns the new [`Loaded`]
/// so the caller can cache it, and the response (warnings only).
pub(crate) async fn write(
    req: &Request,
    existing: Option<&JwtConfig>,
) -> EngineResult<(JwtConfig, Option<Response>)> {
    let secret = string(req, "oidc_client_secret")?;
    let mut config = JwtConfig {
        oidc_discovery_url: string(req, "oidc_discovery_url")?,
        oidc_discovery_ca_pem: string(req, "oidc_discovery_ca_pem")?,
        oidc_client_id: string(req, "oidc_client_id")?,
        oidc_client_secret: (!secret.is_empty()).then(|| SecretString::new(secret)),
        oidc_response_mode: string(req, "oidc_response_mode")?,
        oidc_response_types: list(req, "oidc_response_types")?,
        jwks_url: string(req, "jwks_url")?,
        jwks_ca_pem: string(req, "jwks_ca_pem")?,
        jwt_validation_pubkeys: list(req, "jwt_validation_pubkeys")?,
        jwt_supported_algs: list(req, "jwt_supported_algs")?,
        bound_issuer: string(req, "bound_issuer")?,
        default_role: string(req, "default_role")?.to_lowercase(),
        provider_config: fields::map(req, "provider_config")?.unwrap_or_default(),
        override_allowed_server_names: list(req, "override_allowed_server_names")?,
        namespace_in_state: true,
    };
    config.namespace_in_state = match fields::bool(req, "namespace_in_state")? {
        Some(b) => b,
        None => existing.is_none_or(|e| e.namespace_in_state),
    };
    let skip_validation = fields::bool(req, "skip_jwks_validation")?.unwrap_or(false);

    let methods = [
        !config.oidc_discovery_url.is_empty(),
        !config.jwt_validation_pubkeys.is_empty(),
        !config.jwks_url.is_empty(),
        // A provider_config counts only for providers with their own key discovery, and
        // Tresor has none (see provider_error).
    ];
    let mut warnings = Vec::new();
    let has_id = !config.oidc_client_id.is_empty();
    let has_secret = config.oidc_client_secret.is_some();
    if methods.iter().filter(|m| **m).count() != 1 {
        return Err(invalid(
            "exactly one of 'jwt_validation_pubkeys', 'jwks_url', 'jwks_pairs', 'oidc_discovery_url', or 'provider_config' must be set",
        ));
    } else if has_id != has_secret {
        return Err(invalid(
            "both 'oidc_client_id' and 'oidc_client_secret' must be set for OIDC",
        ));
    } else if !config.oidc_discovery_url.is_empty() {
        if config
            .oidc_discovery_url
            .contains(".well-known/openid-configuration")
        {
            return Err(invalid(
                "'oidc_discovery_url' contains '.well-known' component",
            ));
        }
        let checked = match fetch::client(&config.oidc_discovery_ca_pem) {
            Ok(client) => super::jwks::discover(&client, &config.oidc_discovery_url)
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = checked {
            tracing::warn!(error = %e, "error checking oidc discovery URL");
            if !skip_validation {
                return Err(invalid(format!("error checking oidc discovery URL: {e}")));
            }
            warnings.push("error checking oidc discovery URL".to_owned());
        }
    } else if has_id {
        return Err(invalid("'oidc_discovery_url' must be set for OIDC"));
    } else if !config.jwks_url.is_empty() {
        let client = fetch::client(&config.jwks_ca_pem).map_err(|e| {
            tracing::warn!(error = %e, "error checking jwks_ca_pem");
            invalid("error checking jwks_ca_pem")
        })?;
        let keys = RemoteKeys::new(JwksLocation::Url(config.jwks_url.clone()), client);
        if let Err(e) = keys.load().await {
            tracing::warn!(error = %e, "error checking jwks URL");
            if !skip_validation {
                return Err(invalid("error checking jwks URL"));
            }
            warnings.push("error checking jwks URL".to_owned());
        }
    } else if !config.jwt_validation_pubkeys.is_empty() {
        for pem in &config.jwt_validation_pubkeys {
            PublicKey::from_pem(pem)
                .map_err(|e| invalid(format!("error parsing public key: {e}")))?;
        }
    }
    for alg in &config.jwt_supported_algs {
        if !ALLOWED_ALGS.contains(&alg.as_str()) {
            return Err(invalid(format!(
                "invalid jwt_supported_algs: unsupported signing algorithm {}",
                super::claims::go_quote(alg)
            )));
        }
    }
    if config
        .oidc_response_types
        .iter()
        .any(|t| t != "code" && t != "id_token")
    {
        return Err(invalid(format!(
            "invalid response_types [{}]. 'code' and 'id_token' are allowed",
            config.oidc_response_types.join(" ")
        )));
    }
    match config.oidc_response_mode.as_str() {
        "" | "query" => {
            if config.oidc_response_types.iter().any(|t| t == "id_token") {
                return Err(invalid(
                    "query response_mode may not be used with an id_token response_type",
                ));
            }
        }
        "form_post" => {}
        other => {
            return Err(invalid(format!(
                "invalid response_mode: {}",
                super::claims::go_quote(other)
            )));
        }
    }
    if !config.provider_config.is_empty() {
        return Err(provider_error(&config.provider_config));
    }
    let response = (!warnings.is_empty()).then(|| Response {
        warnings,
        ..Response::default()
    });
    Ok((config, response))
}

/// OpenBao's `NewProviderConfig` refusal; Tresor has no provider-specific handlers (Azure,
/// Google Workspace, …), so every named provider is unknown here.
fn provider_error(provider_config: &Map<String, Value>) -> EngineError {
    match provider_config.get("provider").and_then(Value::as_str) {
        None => invalid("invalid provider_config: 'provider' field not found in provider_config"),
        Some(p) => invalid(format!(
            "invalid provider_config: provider {} not found in custom providers",
            super::claims::go_quote(p)
        )),
    }
}
