//! The OIDC browser flow (client callback mode): `oidc/auth_url` starts a login with a fresh
//! `state`, `nonce` and PKCE verifier (S256 challenge) and answers the provider's
//! authorization URL; `oidc/callback` (GET, or POST with the same fields) takes the state
//! back, exchanges the code at the token endpoint with the verifier, checks the ID token
//! (signature through discovery's JWKS, issuer, audience = client id, nonce, times) and logs
//! in like a JWT login.
//!
//! Pending logins live in memory only (as in OpenBao), expire after 10 minutes and are taken
//! out on the first callback whatever its outcome, so a state works once.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom as _;
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq as _;
use tresor_sdk::engine::{Denial, EngineError, EngineResult, Request, Response};
use tresor_sdk::secret::SecretString;
use tresor_sdk::storage::Storage;

use super::JwtAuth;
use super::claims::shown;
use super::config::Loaded;
use super::jwks::Discovery;
use super::login::{check_cidrs, finish, resolve_role};
use super::role::{self, JwtRole};
use super::token::{self, Refusal};
use crate::common::fields;

/// How long a started login may take (OpenBao's `oidcRequestTimeout`).
const PENDING_TTL_NS: i64 = 10 * 60 * 1_000_000_000;
/// Pending logins kept at most; beyond it `auth_url` refuses until some expire or finish.
const MAX_PENDING: usize = 10_000;

const LOGIN_FAILED: &str = "OpenBao login failed.";

/// One started login, keyed by its state.
struct PendingLogin {
    role: String,
    redirect_uri: String,
    nonce: SecretString,
    verifier: SecretString,
    client_nonce: Option<SecretString>,
    expires: i64,
}

/// The logins started by `auth_url` and not yet called back.
#[derive(Default)]
pub(crate) struct Pending {
    logins: Mutex<HashMap<String, PendingLogin>>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.logins.lock().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("Pending").field("logins", &n).finish()
    }
}

impl Pending {
    fn insert(&self, state: String, login: PendingLogin, now: i64) -> EngineResult<()> {
        let mut map = self
            .logins
            .lock()
            .map_err(|_| EngineError::Internal("pending OIDC logins lock poisoned".into()))?;
        if map.len() >= MAX_PENDING {
            map.retain(|_, p| p.expires > now);
        }
        if map.len() >= MAX_PENDING {
            return Err(EngineError::InvalidRequest(
                "too many OIDC logins in progress; try again later".to_owned(),
            ));
        }
        map.insert(state, login);
        Ok(())
    }

    /// Takes the login out (single use); `None` when unknown or expired.
    fn take(&self, state: &str, now: i64) -> Option<PendingLogin> {
        let mut map = self.logins.lock().ok()?;
        map.remove(state).filter(|p| p.expires > now)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.logins.lock().map(|m| m.len()).unwrap_or(0)
    }
}

fn random_token(bytes: usize) -> EngineResult<String> {
    let mut buf = vec![0u8; bytes];
    ring::rand::SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| EngineError::Internal("the system random generator failed".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::InvalidRequest(msg.into())
}

/// OpenBao's `validRedirect`: an exact match, except that loopback URIs match whatever their
/// port (RFC 8252 §7.3).
pub(crate) fn valid_redirect(uri: &str, allowed: &[String]) -> bool {
    let Ok(input) = url::Url::parse(uri) else {
        return false;
    };
    let loopback = matches!(input.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if !loopback {
        return allowed.iter().any(|a| a == uri);
    }
    let portless = |mut u: url::Url| {
        let _ = u.set_port(None);
        u.to_string()
    };
    let wanted = portless(input);
    allowed.iter().any(|a| match url::Url::parse(a) {
        Ok(a) => portless(a) == wanted,
        Err(_) => false,
    })
}

fn empty_auth_url() -> Option<Response> {
    let mut data = Map::new();
    data.insert("auth_url".into(), json!(""));
    Some(Response::with_data(data))
}

/// The configuration of a mount that can run the browser flow.
async fn oidc_config(
    method: &JwtAuth,
    storage: &dyn Storage,
    failed: bool,
) -> EngineResult<std::sync::Arc<Loaded>> {
    let prefix = if failed {
        format!("{LOGIN_FAILED} ")
    } else {
        String::new()
    };
    let Some(loaded) = method.loaded(storage).await? else {
        return Err(invalid(format!(
            "{prefix}{}",
            if failed {
                "Could not load configuration"
            } else {
                "could not load configuration"
            }
        )));
    };
    let loaded = loaded.map_err(|e| invalid(format!("error configuring token validator: {e}")))?;
    if !loaded.config.is_oidc_flow() {
        return Err(invalid("OIDC login is not configured for this mount"));
    }
    Ok(loaded)
}

async fn discovery(loaded: &Loaded) -> Result<Discovery, String> {
    match loaded.keys.remote() {
        Some(remote) => remote.discovery().await,
        None => Err("OIDC login is not configured for this mount".to_owned()),
    }
}

/// `POST oidc/auth_url {role, redirect_uri, client_nonce}`.
pub(crate) async fn auth_url(
    method: &JwtAuth,
    req: &Request,
    storage: &dyn Storage,
) -> EngineResult<Option<Response>> {
    let loaded = oidc_config(method, storage, false).await?;
    let (role_name, role) = resolve_role(req, storage, &loaded.config.default_role).await?;
    let client_nonce = fields::string(req, "client_nonce")?.unwrap_or_default();
    if role.callback_mode != "client" {
        if client_nonce.is_empty() {
            return Err(invalid("missing client_nonce"));
        }
        return Err(invalid(format!(
            "callback_mode {:?} is not supported by Tresor: use \"client\"",
            role.callback_mode
        )));
    }
    let redirect_uri = fields::string(req, "redirect_uri")?.unwrap_or_default();
    if redirect_uri.is_empty() {
        return Err(invalid("missing redirect_uri"));
    }
    if !valid_redirect(&redirect_uri, &role.allowed_redirect_uris) {
        tracing::warn!(redirect_uri = %shown(&redirect_uri), role = %role_name, "unauthorized redirect_uri");
        return Ok(empty_auth_url());
    }
    let provider = match discovery(&loaded).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "error getting provider for login operation");
            return Ok(empty_auth_url());
        }
    };
    let state = format!("st_{}", random_token(24)?);
    let nonce = SecretString::new(format!("n_{}", random_token(24)?));
    let verifier = SecretString::new(random_token(48)?);
    let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.expose().as_bytes(),
    ));
    let mut scopes = vec!["openid".to_owned()];
    scopes.extend(role.oidc_scopes.iter().filter(|s| *s != "openid").cloned());
    let Ok(mut url) = url::Url::parse(&provider.authorization_endpoint) else {
        tracing::warn!("the provider's authorization_endpoint is not a URL");
        return Ok(empty_auth_url());
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", &loaded.config.oidc_client_id);
        q.append_pair("code_challenge", &challenge);
        q.append_pair("code_challenge_method", "S256");
        if role.max_age > 0 {
            q.append_pair("max_age", &role.max_age.to_string());
        }
        q.append_pair("nonce", nonce.expose());
        q.append_pair("redirect_uri", &redirect_uri);
        q.append_pair("response_type", "code");
        q.append_pair("scope", &scopes.join(" "));
        q.append_pair("state", &state);
    }
    let now = method.now();
    method.pending.insert(
        state,
        PendingLogin {
            role: role_name,
            redirect_uri,
            nonce,
            verifier,
            client_nonce: (!client_nonce.is_empty()).then(|| SecretString::new(client_nonce)),
            expires: now.saturating_add(PENDING_TTL_NS),
        },
        now,
    )?;
    let mut data = Map::new();
    data.insert("auth_url".into(), json!(url.to_string()));
    Ok(Some(Response::with_data(data)))
}

fn failed(msg: impl std::fmt::Display, detail: impl Into<String>) -> EngineError {
    Denial::bad_request(format!("{LOGIN_FAILED} {msg}"), detail).into()
}

/// `GET|POST oidc/callback {state, code, id_token?, client_nonce, error?}`.
pub(crate) async fn callback(
    method: &JwtAuth,
    req: &Request,
    storage: &dyn Storage,
) -> EngineResult<Option<Response>> {
    let Some(loaded) = method.loaded(storage).await? else {
        return Err(invalid(format!(
            "{LOGIN_FAILED} Could not load configuration"
        )));
    };
    let loaded = loaded.map_err(|e| invalid(format!("error configuring token validator: {e}")))?;
    // OpenBao takes POSTs only in form_post response mode (the provider posts the code or ID
    // token). It answers them with an HTML page that re-submits to the GET; Tresor completes
    // the login directly with the same checks.
    if req.operation != tresor_sdk::engine::Operation::Read
        && loaded.config.oidc_response_mode != "form_post"
    {
        return Err(EngineError::UnsupportedOperation);
    }
    let state = fields::string(req, "state")?.unwrap_or_default();
    let now = method.now();
    let Some(pending) = method.pending.take(&state, now) else {
        return Err(failed(
            "Expired or missing OAuth state.",
            "the state is unknown, was already used, or is older than 10 minutes: start the login again",
        ));
    };
    let Some(role) = role::load(storage, &pending.role).await? else {
        return Err(invalid(format!("{LOGIN_FAILED} Role could not be found")));
    };
    let provider_error = fields::string(req, "error")?
        .unwrap_or_default()
        .trim()
        .to_lowercase();
    if !provider_error.is_empty() {
        let description = fields::string(req, "error_description")?.unwrap_or_default();
        tracing::warn!(error = %shown(&provider_error), error_description = %shown(&description), "OIDC callback received error from provider");
        let known = [
            "invalid_request",
            "unauthorized_client",
            "access_denied",
            "unsupported_response_type",
            "invalid_scope",
            "server_error",
            "temporarily_unavailable",
        ];
        return Err(if known.contains(&provider_error.as_str()) {
            failed(
                &provider_error,
                format!("the provider refused: {}", shown(&description)),
            )
        } else {
            failed(
                "An unknown error occurred during OIDC authentication. Check server logs for details",
                "",
            )
        });
    }
    let client_nonce = fields::string(req, "client_nonce")?.unwrap_or_default();
    if let Some(expected) = &pending.client_nonce
        && !bool::from(expected.expose().as_bytes().ct_eq(client_nonce.as_bytes()))
    {
        return Err(Denial::bad_request(
            "invalid client_nonce",
            "the callback's client_nonce is not the one given to auth_url",
        )
        .into());
    }
    check_cidrs(&role, req)?;
    let provider = discovery(&loaded).await.map_err(|e| {
        EngineError::Upstream(format!("error getting provider for login operation: {e}"))
    })?;
    let code = SecretString::new(fields::string(req, "code")?.unwrap_or_default());
    let id_token = if code.is_empty() {
        let given = SecretString::new(fields::string(req, "id_token")?.unwrap_or_default());
        if given.is_empty() {
            return Err(failed("No code or id_token received.", ""));
        }
        given
    } else {
        exchange(&loaded, &provider, &pending, &code).await?
    };
    let claims = verify_id_token(&loaded, &provider, &role, &pending, id_token.expose(), now)
        .await
        .map_err(|r| {
            failed(
                format!(
                    "Error exchanging oidc code: {}.",
                    super::claims::go_quote(&r.summary)
                ),
                r.detail,
            )
        })?;
    if !role.bound_subject.is_empty()
        && claims.get("sub").and_then(Value::as_str) != Some(role.bound_subject.as_str())
    {
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default();
        return Err(failed(
            "sub claim does not match bound subject",
            format!(
                "subject '{}' does not match bound_subject '{}'",
                shown(sub),
                shown(&role.bound_subject)
            ),
        ));
    }
    let login = finish(&pending.role, &role, &claims).map_err(|r| failed(&r.summary, r.detail))?;
    Ok(Some(Response {
        auth: Some(login),
        ..Response::default()
    }))
}

/// The authorization code for tokens at the provider's token endpoint, proving possession of
/// the PKCE verifier; answers the ID token.
async fn exchange(
    loaded: &Loaded,
    provider: &Discovery,
    pending: &PendingLogin,
    code: &SecretString,
) -> EngineResult<SecretString> {
    let Some(remote) = loaded.keys.remote() else {
        return Err(invalid("OIDC login is not configured for this mount"));
    };
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.expose()),
        ("redirect_uri", pending.redirect_uri.as_str()),
        ("code_verifier", pending.verifier.expose()),
    ];
    let exchange_failed = |reason: String, detail: String| {
        failed(
            format!(
                "Error exchanging oidc code: {}.",
                super::claims::go_quote(&reason)
            ),
            detail,
        )
    };
    let (status, body) = super::fetch::post_form(
        remote.client(),
        &provider.token_endpoint,
        (&loaded.config.oidc_client_id, loaded.config.client_secret()),
        &form,
    )
    .await
    .map_err(|e| exchange_failed("the token endpoint could not be reached".to_owned(), e))?;
    if status != 200 {
        // RFC 6749 §5.2: `error` and `error_description` name the problem, never a secret.
        let field = |n: &str| {
            body.get(n)
                .and_then(Value::as_str)
                .map(shown)
                .unwrap_or_default()
        };
        return Err(exchange_failed(
            format!(
                "oauth2: \"{}\" \"{}\"",
                field("error"),
                field("error_description")
            ),
            format!(
                "the token endpoint answered {status}: {} ({})",
                field("error"),
                field("error_description")
            ),
        ));
    }
    match body.get("id_token").and_then(Value::as_str) {
        Some(t) if !t.is_empty() => Ok(SecretString::new(t.to_owned())),
        _ => Err(exchange_failed(
            "id_token is missing from auth code exchange".to_owned(),
            "the token endpoint's answer has no id_token (is the openid scope allowed for this client?)".to_owned(),
        )),
    }
}

/// An ID token's checks (hashicorp/cap `Provider.VerifyIDToken`): signature with a key of the
/// provider's JWKS and an allowed algorithm, issuer = the discovered issuer, expiry, nonce,
/// subject, and the audience rules (the client id, the role's `bound_audiences`, `azp`).
async fn verify_id_token(
    loaded: &Loaded,
    provider: &Discovery,
    role: &JwtRole,
    pending: &PendingLogin,
    id_token: &str,
    now: i64,
) -> Result<Map<String, Value>, Refusal> {
    let keys = &loaded.keys;
    let jws = token::parse(id_token, keys.malformed())?;
    let alg = jws.algorithm(keys.unverified())?;
    keys.verify(&jws, alg).await?;
    let algs = loaded.config.oidc_algs();
    if !algs.contains(&alg) {
        let names: Vec<&str> = algs.iter().map(|a| a.name()).collect();
        return Err(Refusal::new(
            "oidc: id token signed with unsupported algorithm",
            format!(
                "alg '{}' is not in jwt_supported_algs [{}]",
                alg.name(),
                names.join(", ")
            ),
        ));
    }
    let mut claims = jws.claims;
    let str_claim = |c: &Map<String, Value>, n: &str| {
        c.get(n)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let iss = str_claim(&claims, "iss");
    if iss != provider.issuer {
        return Err(Refusal::new(
            format!(
                "oidc: id token issued by a different provider, expected {:?} got {:?}",
                provider.issuer,
                shown(&iss)
            ),
            format!(
                "issuer '{}' is not the discovered issuer '{}'",
                shown(&iss),
                provider.issuer
            ),
        ));
    }
    let date = |n: &str| {
        claims.get(n).and_then(Value::as_f64).map(|f| {
            #[allow(clippy::cast_possible_truncation, reason = "NumericDate truncates")]
            let s = f.trunc() as i64;
            s
        })
    };
    let rfc = |s: i64| crate::clock::rfc3339_nano(s.saturating_mul(1_000_000_000));
    let secs = |s: i64| s.saturating_mul(1_000_000_000);
    match date("exp") {
        None => {
            return Err(Refusal::new(
                "oidc: token is missing exp",
                "the ID token has no exp",
            ));
        }
        Some(exp) if now > secs(exp) => {
            return Err(Refusal::new(
                "oidc: token is expired",
                format!("token expired at {} (leeway 0s)", rfc(exp)),
            ));
        }
        _ => {}
    }
    if let Some(nbf) = date("nbf")
        && now.saturating_add(secs(300)) < secs(nbf)
    {
        return Err(Refusal::new(
            "oidc: current time before the nbf (not before) time",
            format!("token not valid before {} (leeway 300s)", rfc(nbf)),
        ));
    }
    let nonce = str_claim(&claims, "nonce");
    if !bool::from(nonce.as_bytes().ct_eq(pending.nonce.expose().as_bytes())) {
        return Err(Refusal::new(
            "Provider.VerifyIDToken: invalid id_token nonce: invalid nonce",
            "the ID token's nonce is not the one this login started with (a replayed or injected token)",
        ));
    }
    if let Some(iat) = date("iat")
        && now.saturating_add(secs(60)) < secs(iat)
    {
        return Err(Refusal::new(
            "Provider.VerifyIDToken: invalid id_token current time before the iat (issued at) time",
            format!("token issued at {}, in the future (leeway 60s)", rfc(iat)),
        ));
    }
    if str_claim(&claims, "sub").is_empty() {
        return Err(Refusal::new(
            "Provider.VerifyIDToken: invalid id_token: sub: missing required claim",
            "the ID token has no sub",
        ));
    }
    let aud: Vec<String> = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    let client_id = &loaded.config.oidc_client_id;
    let shown_aud = || aud.iter().map(|a| shown(a)).collect::<Vec<_>>().join(", ");
    if aud.is_empty() {
        return Err(Refusal::new(
            "Provider.VerifyIDToken: invalid id_token: aud: missing required claim",
            "the ID token has no aud",
        ));
    }
    if !role.bound_audiences.is_empty() && !role.bound_audiences.iter().any(|b| aud.contains(b)) {
        return Err(Refusal::new(
            "Provider.VerifyIDToken: invalid id_token audiences: verifyAudiences: invalid id_token audiences: invalid audience",
            format!(
                "audience mismatch: token has [{}], role bound_audiences [{}]",
                shown_aud(),
                role.bound_audiences.join(", ")
            ),
        ));
    }
    let azp = claims.get("azp").and_then(Value::as_str);
    let azp_ok = azp == Some(client_id.as_str());
    if azp.is_some() && !azp_ok {
        return Err(Refusal::new(
            "Provider.VerifyIDToken: invalid id_token: authorized party is not equal client_id: invalid authorized party",
            format!(
                "azp '{}' is not the client id '{client_id}'",
                shown(azp.unwrap_or_default())
            ),
        ));
    }
    if (aud.len() > 1 && (!aud.contains(client_id) || !azp_ok))
        || (aud.len() == 1 && aud.first() != Some(client_id) && !azp_ok)
    {
        return Err(Refusal::new(
            "Provider.VerifyIDToken: invalid id_token: audience is not the client_id: invalid authorized party",
            format!(
                "audience mismatch: token has [{}], the client id is '{client_id}'",
                shown_aud()
            ),
        ));
    }
    claims.remove("nonce");
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_match_exactly_or_by_loopback_without_port() {
        let allowed = vec![
            "https://vault.example/ui/vault/auth/oidc/oidc/callback".to_owned(),
            "http://localhost:8250/oidc/callback".to_owned(),
        ];
        assert!(valid_redirect(
            "https://vault.example/ui/vault/auth/oidc/oidc/callback",
            &allowed
        ));
        assert!(!valid_redirect(
            "https://vault.example/ui/vault/auth/oidc/oidc/callbackx",
            &allowed
        ));
        assert!(valid_redirect(
            "http://localhost:9999/oidc/callback",
            &allowed
        ));
        assert!(!valid_redirect("http://localhost:9999/other", &allowed));
        assert!(!valid_redirect(
            "http://127.0.0.1:8250/oidc/callback",
            &allowed
        ));
        assert!(!valid_redirect("not a url", &allowed));
    }

    #[test]
    fn pending_logins_are_single_use_and_expire() {
        let p = Pending::default();
        let login = |expires| PendingLogin {
            role: "r".into(),
            redirect_uri: "u".into(),
            nonce: SecretString::new("n".into()),
            verifier: SecretString::new("v".into()),
            client_nonce: None,
            expires,
        };
        p.insert("a".into(), login(100), 0).unwrap();
        p.insert("b".into(), login(100), 0).unwrap();
        assert!(p.take("a", 50).is_some());
        assert!(p.take("a", 50).is_none(), "single use");
        assert!(p.take("b", 150).is_none(), "expired");
        assert_eq!(p.len(), 0);
    }
}
