//! `login {role, jwt}`: the role (or `default_role`), the token's signature and registered
//! claims, the audience rule for roles without `bound_audiences`, the identity (user claim,
//! groups, claim mappings) and the bound claims, in OpenBao's order. A success is a
//! [`Login`]; the core issues the token.

use serde_json::{Map, Value, json};
use tresor_sdk::auth::{Alias, Login, cidrs_allow};
use tresor_sdk::engine::{Denial, EngineError, EngineResult, Request, Response};
use tresor_sdk::secret::SecretString;
use tresor_sdk::storage::Storage;

use super::JwtAuth;
use super::claims::{self, go_quote};
use super::config::Loaded;
use super::role::{self, JwtRole};
use super::token::{self, Expected, Refusal};
use crate::common::fields;

fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::InvalidRequest(msg.into())
}

/// The role a login names (lowercased), or the configured `default_role`.
pub(crate) async fn resolve_role(
    req: &Request,
    storage: &dyn Storage,
    default_role: &str,
) -> EngineResult<(String, JwtRole)> {
    let mut name = fields::string(req, "role")?
        .unwrap_or_default()
        .to_lowercase();
    if name.is_empty() {
        name = default_role.to_owned();
    }
    if name.is_empty() {
        return Err(invalid("missing role"));
    }
    let Some(role) = role::load(storage, &name).await? else {
        return Err(invalid(format!(
            "role {} could not be found",
            go_quote(&name)
        )));
    };
    Ok((name, role))
}

/// A role's `token_bound_cidrs` checked against the caller's address (403, as OpenBao).
pub(crate) fn check_cidrs(role: &JwtRole, req: &Request) -> EngineResult<()> {
    if cidrs_allow(&role.token.bound_cidrs, req.remote_addr) {
        return Ok(());
    }
    let from = req.remote_addr.map_or_else(
        || "an unknown address".to_owned(),
        |a| format!("address {a}"),
    );
    Err(Denial::forbidden(
        "permission denied",
        format!(
            "the client's {from} is not in the role's token_bound_cidrs [{}]",
            role.token.bound_cidrs.join(", ")
        ),
    )
    .into())
}

/// Verifies a JWT's signature and registered claims for a `jwt` role; returns its claims.
pub(crate) async fn verify(
    loaded: &Loaded,
    role: &JwtRole,
    jwt: &str,
    now: i64,
) -> Result<Map<String, Value>, Refusal> {
    let keys = &loaded.keys;
    let jws = token::parse(jwt, keys.malformed())?;
    let alg = jws.algorithm(keys.unverified())?;
    keys.verify(&jws, alg).await?;
    let algs = loaded.config.login_algs();
    let expected = Expected {
        issuer: &loaded.config.bound_issuer,
        subject: &role.bound_subject,
        audiences: &role.bound_audiences,
        algs: &algs,
        not_before_leeway: role.not_before_leeway,
        expiration_leeway: role.expiration_leeway,
        clock_skew_leeway: role.clock_skew_leeway,
        now,
    };
    token::check_claims(&jws, alg, &expected)?;
    Ok(jws.claims)
}

/// The identity and bound-claims half of a login, shared with the OIDC callback:
/// `createIdentity`, then `validateBoundClaims`, then the [`Login`].
pub(crate) fn finish(
    role_name: &str,
    role: &JwtRole,
    claims: &Map<String, Value>,
) -> Result<Login, Refusal> {
    let identity = claims::identity(
        claims,
        role_name,
        &role.user_claim,
        role.user_claim_json_pointer,
        &role.claim_mappings,
        &role.groups_claim,
    )?;
    claims::check_bound(&role.bound_claims, role.is_glob(), claims)?;
    let mut internal = Map::new();
    internal.insert("role".into(), json!(role_name));
    internal.insert("role_type".into(), json!("native"));
    Ok(Login {
        display_name: identity.user.clone(),
        metadata: identity.metadata.clone(),
        alias: Alias {
            name: identity.user,
            metadata: identity.metadata,
        },
        group_aliases: identity.groups,
        token: role.token.clone(),
        renewable: true,
        internal,
    })
}

/// `POST login`.
pub(crate) async fn login(
    method: &JwtAuth,
    req: &Request,
    storage: &dyn Storage,
) -> EngineResult<Option<Response>> {
    let Some(loaded) = method.loaded(storage).await? else {
        return Err(invalid("could not load configuration"));
    };
    let loaded = loaded.map_err(|e| invalid(format!("error configuring token validator: {e}")))?;
    let (role_name, role) = resolve_role(req, storage, &loaded.config.default_role).await?;
    if role.role_type == "oidc" {
        return Err(invalid("role with oidc role_type is not allowed"));
    }
    let jwt = SecretString::new(fields::string(req, "jwt")?.unwrap_or_default());
    if jwt.is_empty() {
        return Err(invalid("missing token"));
    }
    check_cidrs(&role, req)?;
    let refuse = |prefix: &str, r: Refusal| -> EngineError {
        Denial::bad_request(format!("{prefix}{}", r.summary), r.detail).into()
    };
    let claims = verify(&loaded, &role, jwt.expose(), method.now())
        .await
        .map_err(|r| refuse("error validating token: ", r))?;
    if role.bound_audiences.is_empty()
        && let Some(Value::Array(aud)) = claims::get(&claims, "aud")
        && !aud.is_empty()
    {
        let shown: Vec<String> = aud
            .iter()
            .map(|a| claims::shown(a.as_str().unwrap_or("?")))
            .collect();
        return Err(Denial::bad_request(
            "audience claim found in JWT but no audiences bound to the role",
            format!(
                "audience mismatch: token has [{}], role bound_audiences []",
                shown.join(", ")
            ),
        )
        .into());
    }
    let login = finish(&role_name, &role, &claims).map_err(|r| refuse("", r))?;
    Ok(Some(Response {
        auth: Some(login),
        ..Response::default()
    }))
}
