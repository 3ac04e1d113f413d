//! `login {role, jwt}`: a service account logs in with its JWT.
//!
//! The steps follow OpenBao's plugin: the role, its CIDR binding, the configuration (and the
//! pod's own token and CA when none is configured), the JWT's claims read without trusting
//! them (signature checked with `pem_keys` if any; `iss`, `aud`, times), the role's name and
//! namespace bindings (and namespace selector), then the TokenReview: the API server must say
//! the JWT is authenticated, for the wanted audiences, as the service account the claims
//! name, with the same uid. Every refusal is a [`Denial`] from [`denials`].

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use tresor_sdk::auth::{Alias, Login, cidrs_allow};
use tresor_sdk::engine::{Denial, EngineError, EngineResult, Request, Response};
use tresor_sdk::secret::SecretString;
use tresor_sdk::storage::Storage;

use super::denials::{self, BearerKind, SelectorOutcome, permission_denied};
use super::jwt::{self, Expected, ServiceAccount};
use super::keys::PublicKey;
use super::review::{self, Failure};
use super::role::{self, ALIAS_NAME, Role};
use super::selector::Selector;
use super::{KubernetesAuth, config};
use crate::common::fields;

/// The bearer for the TokenReview and where it came from.
struct Reviewer {
    token: SecretString,
    kind: BearerKind,
}

/// The CA bundle to trust and where it came from (for denial details).
struct TrustedCa {
    pem: String,
    source: String,
}

pub(super) async fn login(
    method: &KubernetesAuth,
    req: &Request,
    storage: &dyn Storage,
) -> EngineResult<Option<Response>> {
    let role_name = fields::string(req, "role")?.unwrap_or_default();
    if role_name.is_empty() {
        return Err(EngineError::InvalidRequest("missing role".into()));
    }
    let jwt = SecretString::new(fields::string(req, "jwt")?.unwrap_or_default());
    if jwt.is_empty() {
        return Err(EngineError::InvalidRequest("missing jwt".into()));
    }
    let Some(role) = role::load(storage, &role_name).await? else {
        return Err(EngineError::InvalidRequest(format!(
            "invalid role name {role_name:?}"
        )));
    };
    if !role.token.bound_cidrs.is_empty() && !cidrs_allow(&role.token.bound_cidrs, req.remote_addr)
    {
        let from = req
            .remote_addr
            .map_or_else(|| "an unknown address".to_owned(), |a| a.to_string());
        return Err(permission_denied(format!(
            "the client address {from} is not in the role's token_bound_cidrs {}",
            denials::list(&role.token.bound_cidrs)
        ))
        .into());
    }
    let Some(config) = config::load(storage).await? else {
        return Err(Denial {
            status: 500,
            summary: "could not load backend configuration".into(),
            detail: "the mount has no config yet: write auth/<mount>/config with kubernetes_host (and kubernetes_ca_cert) first".into(),
        }
        .into());
    };
    let (reviewer, ca) = local_defaults(method, &config).await?;

    let parsed = jwt::parse(jwt.expose())?;
    if !config.pem_keys.is_empty() {
        let keys = config
            .pem_keys
            .iter()
            .map(|k| PublicKey::parse_pem(k))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EngineError::Internal(format!("stored pem_keys: {e}")))?;
        if !parsed.signed_by_any(&keys) {
            return Err(permission_denied(format!(
                "the login JWT's {} signature does not verify with any of the {} configured pem_keys",
                parsed.alg,
                keys.len()
            ))
            .into());
        }
    }
    let issuer = (!config.disable_iss_validation && !config.issuer.is_empty())
        .then_some(config.issuer.as_str());
    let audience = (!role.audience.is_empty()).then_some(role.audience.as_str());
    parsed.check(&Expected { issuer, audience }, method.clock.now())?;
    let sa = parsed.service_account()?;

    let names = &role.bound_service_account_names;
    let any_name = names.len() == 1 && names.first().is_some_and(|n| n == "*");
    if !any_name && !role::any_glob(names, &sa.name) {
        return Err(denials::name_not_bound(&sa.name, names).into());
    }
    check_namespace(method, &role, &config, &reviewer, &ca, &sa).await?;

    let audiences = match audience {
        Some(a) => vec![a.to_owned()],
        None => sa.audiences.clone(),
    };
    let bearer = match reviewer.kind {
        BearerKind::ClientJwt => jwt.expose(),
        _ => reviewer.token.expose(),
    };
    let credentials = [jwt.expose(), reviewer.token.expose()];
    let (client, _) = method
        .clients
        .for_ca(&ca.pem)
        .map_err(EngineError::Internal)?;
    let status = review::token_review(&client, &config.host, bearer, jwt.expose(), &audiences)
        .await
        .map_err(|f| review_denial(method, &config.host, &reviewer, &ca, f, &credentials))?;
    if !status.error.is_empty() || !status.authenticated {
        return Err(denials::unauthenticated(&denials::scrub(&status.error, &credentials)).into());
    }
    if !audiences.is_empty() && !status.audiences.iter().any(|a| audiences.contains(a)) {
        return Err(permission_denied(format!(
            "the TokenReview found the JWT valid for audiences {}, but the login wanted {}",
            denials::list(&status.audiences),
            denials::list(&audiences)
        ))
        .into());
    }
    verify_reviewed_identity(&sa, &status)?;

    let alias_name = if role.alias_name_source == ALIAS_NAME {
        format!("{}/{}", sa.namespace, sa.name)
    } else {
        sa.uid.clone()
    };
    let mut token = role.token.clone();
    if role.token_strictly_bind_ip {
        let Some(addr) = req.remote_addr else {
            return Err(permission_denied(
                "the role sets token_strictly_bind_ip but the client's address is unknown",
            )
            .into());
        };
        token.bound_cidrs = vec![addr.to_string()];
    }
    let mut alias_metadata = BTreeMap::new();
    alias_metadata.insert("service_account_uid".to_owned(), sa.uid.clone());
    alias_metadata.insert("service_account_name".to_owned(), sa.name.clone());
    alias_metadata.insert("service_account_namespace".to_owned(), sa.namespace.clone());
    alias_metadata.insert(
        "service_account_secret_name".to_owned(),
        sa.secret_name.clone(),
    );
    let mut metadata = alias_metadata.clone();
    metadata.insert("role".to_owned(), role_name.clone());
    let mut internal = Map::new();
    internal.insert("role".into(), Value::String(role_name));
    Ok(Some(Response {
        auth: Some(Login {
            display_name: format!("{}-{}", sa.namespace, sa.name),
            metadata,
            alias: Alias {
                name: alias_name,
                metadata: alias_metadata,
            },
            group_aliases: Vec::new(),
            token,
            renewable: true,
            internal,
        }),
        ..Response::default()
    }))
}

/// The reviewer token and CA, with the pod's own files standing in for what the
/// configuration leaves empty (unless `disable_local_ca_jwt`). The token file is read on every
/// login: projected tokens are rotated by the kubelet.
async fn local_defaults(
    method: &KubernetesAuth,
    config: &config::Config,
) -> EngineResult<(Reviewer, TrustedCa)> {
    let mut reviewer = Reviewer {
        token: config.token_reviewer_jwt.clone(),
        kind: BearerKind::Configured,
    };
    let mut ca = TrustedCa {
        pem: config.ca_cert.clone(),
        source: "kubernetes_ca_cert".to_owned(),
    };
    if reviewer.token.is_empty() {
        reviewer.kind = BearerKind::ClientJwt;
        if !config.disable_local_ca_jwt
            && let Ok(token) = method.local.read_token().await
            && !token.expose().trim().is_empty()
        {
            reviewer = Reviewer {
                token,
                kind: BearerKind::LocalFile,
            };
        }
    }
    if ca.pem.is_empty() && !config.disable_local_ca_jwt {
        let path = method.local.ca_path();
        ca.pem = method.local.read_ca().await.map_err(|e| Denial {
            status: 500,
            summary: e.clone(),
            detail: format!(
                "no kubernetes_ca_cert is configured and the pod's CA file could not be read ({e}); set kubernetes_ca_cert, or run Tresor in a pod with its service account mounted"
            ),
        })?;
        ca.source = format!("the local CA file {}", path.display());
    }
    Ok((reviewer, ca))
}

/// `bound_service_account_namespaces`, then (if it does not admit the namespace) the label
/// selector, ORed as in OpenBao.
async fn check_namespace(
    method: &KubernetesAuth,
    role: &Role,
    config: &config::Config,
    reviewer: &Reviewer,
    ca: &TrustedCa,
    sa: &ServiceAccount,
) -> Result<(), Denial> {
    let bound = role.namespaces();
    let listed = bound.first().is_some_and(|n| n == "*") || role::any_glob(bound, &sa.namespace);
    if listed {
        return Ok(());
    }
    let selector_text = &role.bound_service_account_namespace_selector;
    if selector_text.is_empty() {
        return Err(denials::namespace_not_bound(
            &sa.namespace,
            bound,
            SelectorOutcome::None,
        ));
    }
    let outcome = match evaluate_selector(method, selector_text, config, reviewer, ca, sa).await {
        Ok(()) => return Ok(()),
        Err(outcome) => outcome,
    };
    Err(denials::namespace_not_bound(&sa.namespace, bound, outcome))
}

async fn evaluate_selector(
    method: &KubernetesAuth,
    selector_text: &str,
    config: &config::Config,
    reviewer: &Reviewer,
    ca: &TrustedCa,
    sa: &ServiceAccount,
) -> Result<(), SelectorOutcome> {
    let error = |error: String, explanation: String| SelectorOutcome::Error { error, explanation };
    let selector = Selector::parse(selector_text).map_err(|()| {
        error(
            "invalid selector".into(),
            "the stored selector does not parse".into(),
        )
    })?;
    selector
        .validate()
        .map_err(|e| error(e.clone(), format!("the selector is not valid: {e}")))?;
    if reviewer.kind == BearerKind::ClientJwt {
        let e = "namespace lookup failed: TokenReviewer JWT needs to be configured to use namespace selectors";
        return Err(error(
            e.into(),
            "reading the namespace's labels needs a token_reviewer_jwt (or the pod's own token)"
                .into(),
        ));
    }
    let valid_name = !sa.namespace.is_empty()
        && sa.namespace.len() <= 63
        && sa
            .namespace
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid_name {
        return Err(error(
            format!("namespace {:?} is not a valid namespace name", sa.namespace),
            format!(
                "the JWT names namespace {:?}, which no Kubernetes namespace can be called",
                sa.namespace
            ),
        ));
    }
    let (client, _) = method
        .clients
        .for_ca(&ca.pem)
        .map_err(|e| error(e.clone(), e))?;
    let credentials = [reviewer.token.expose()];
    match review::namespace_labels(
        &client,
        &config.host,
        reviewer.token.expose(),
        &sa.namespace,
    )
    .await
    {
        Ok(labels) if selector.matches(&labels) => Ok(()),
        Ok(labels) => {
            let shown: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            Err(SelectorOutcome::NoMatch {
                selector: selector.describe(),
                labels: format!("{{{}}}", shown.join(", ")),
            })
        }
        Err(Failure::Forbidden(message)) | Err(Failure::Status(403, message)) => {
            let message = denials::scrub(&message, &credentials);
            Err(error(
                format!("failed to get namespace (code 403 status {message})"),
                format!(
                    "{} may not read namespaces: bind it to a ClusterRole that can get namespaces (e.g. view)",
                    reviewer
                        .kind
                        .describe(&method.local.token_path().display().to_string())
                ),
            ))
        }
        Err(Failure::Status(code, message)) => {
            let message = denials::scrub(&message, &credentials);
            Err(error(
                format!("failed to get namespace (code {code} status {message})"),
                format!("reading namespace {:?} failed", sa.namespace),
            ))
        }
        Err(other) => {
            let text = failure_text(&other);
            Err(error(
                text.clone(),
                format!("reading namespace {:?} failed: {text}", sa.namespace),
            ))
        }
    }
}

fn failure_text(f: &Failure) -> String {
    match f {
        Failure::BadHost(e)
        | Failure::Unreachable(e)
        | Failure::UntrustedCa(e)
        | Failure::Tls(e)
        | Failure::Malformed(e) => e.clone(),
        Failure::Unauthorized => "401 Unauthorized".into(),
        Failure::Forbidden(m) => format!("403 Forbidden: {m}"),
        Failure::Status(code, m) => format!("{code}: {m}"),
    }
}

fn review_denial(
    method: &KubernetesAuth,
    host: &str,
    reviewer: &Reviewer,
    ca: &TrustedCa,
    failure: Failure,
    credentials: &[&str],
) -> EngineError {
    let token_path = method.local.token_path().display().to_string();
    let denial = match failure {
        Failure::BadHost(why) => {
            permission_denied(format!("kubernetes_host {host:?} cannot be called: {why}"))
        }
        Failure::Unreachable(error) => denials::unreachable(host, &error),
        Failure::UntrustedCa(error) => denials::untrusted_ca(host, &error, &ca.source),
        Failure::Tls(error) => denials::tls_failed(host, &error),
        Failure::Unauthorized => denials::reviewer_unauthorized(reviewer.kind, &token_path, host),
        Failure::Forbidden(message) => denials::reviewer_forbidden(
            reviewer.kind,
            &token_path,
            host,
            &denials::scrub(&message, credentials),
        ),
        Failure::Status(code, message) => permission_denied(format!(
            "the Kubernetes API server at {host} answered {code} to the TokenReview: {}",
            denials::scrub(&message, credentials)
        )),
        Failure::Malformed(why) => permission_denied(format!(
            "the answer of {host} to the TokenReview is not a TokenReview: {why}"
        )),
    };
    denial.into()
}

/// The reviewed user must be the service account the claims name (`system:serviceaccount:
/// <namespace>:<name>`, same uid).
fn verify_reviewed_identity(
    sa: &ServiceAccount,
    status: &review::ReviewStatus,
) -> Result<(), Denial> {
    let parts: Vec<&str> = status.username.split(':').collect();
    let [system, kind, namespace, name] = parts.as_slice() else {
        return Err(permission_denied(format!(
            "the TokenReview authenticated {:?}, which is not a service account user name",
            status.username
        )));
    };
    if *system != "system" || *kind != "serviceaccount" {
        return Err(permission_denied(format!(
            "the TokenReview authenticated {:?}, which is not a service account",
            status.username
        )));
    }
    let mismatch = |what: &str, claimed: &str, reviewed: &str| {
        permission_denied(format!(
            "the JWT claims service account {what} {claimed:?} but the TokenReview says {reviewed:?}"
        ))
    };
    if sa.name != *name {
        return Err(mismatch("name", &sa.name, name));
    }
    if sa.uid.is_empty() {
        return Err(permission_denied(
            "the JWT carries no service account uid claim",
        ));
    }
    if sa.uid != status.uid {
        return Err(mismatch("uid", &sa.uid, &status.uid));
    }
    if sa.namespace != *namespace {
        return Err(mismatch("namespace", &sa.namespace, namespace));
    }
    Ok(())
}
