//! Every refusal of a Kubernetes login, in two levels of detail.
//!
//! The summary is OpenBao's text for the same refusal, so a mount with `verbose_denials` off
//! answers exactly as OpenBao does. The detail names the binding or the step that failed and
//! the offending non-secret value (a namespace, a service account name, an audience, a host,
//! the API server's own error), and says what to fix. No JWT, reviewer token or other
//! credential ever goes into either: values from the API server are passed through
//! [`scrub`] with the credentials of the request in hand.

use tresor_sdk::engine::Denial;

use crate::clock::rfc3339_nano;

/// OpenBao's answer for a login that fails a check it does not explain.
pub(super) const PERMISSION_DENIED: &str = "permission denied";

pub(super) fn permission_denied(detail: impl Into<String>) -> Denial {
    Denial::forbidden(PERMISSION_DENIED, detail)
}

/// `[a, b]`: how bindings are listed in details.
pub(super) fn list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

/// Replaces every credential in `text` (a message from the API server) with `[redacted]`,
/// and anything else shaped like a JWT (`eyJ…` with two dots) too.
pub(super) fn scrub(text: &str, credentials: &[&str]) -> String {
    let mut out = text.to_owned();
    for c in credentials
        .iter()
        .map(|c| c.trim())
        .filter(|c| c.len() >= 8)
    {
        out = out.replace(c, "[redacted]");
    }
    let token_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let mut clean = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(at) = rest.find("eyJ") {
        let (before, from) = rest.split_at(at);
        clean.push_str(before);
        let len = from.find(|c: char| !token_char(c)).unwrap_or(from.len());
        let (run, after) = from.split_at(len);
        if run.matches('.').count() >= 2 {
            clean.push_str("[redacted]");
        } else {
            clean.push_str(run);
        }
        rest = after;
    }
    clean.push_str(rest);
    clean
}

pub(super) fn name_not_bound(name: &str, bound: &[String]) -> Denial {
    Denial::forbidden(
        "service account name not authorized",
        format!(
            "service account name '{name}' is not in bound_service_account_names {}",
            list(bound)
        ),
    )
}

/// Why the namespace was not admitted by the role's label selector, when it has one.
#[derive(Debug)]
pub(super) enum SelectorOutcome {
    None,
    /// The namespace's labels did not match.
    NoMatch {
        selector: String,
        labels: String,
    },
    /// The selector could not be evaluated: OpenBao appends the error to its summary.
    Error {
        error: String,
        explanation: String,
    },
}

pub(super) fn namespace_not_bound(
    namespace: &str,
    bound: &[String],
    selector: SelectorOutcome,
) -> Denial {
    let listed = format!(
        "service account namespace '{namespace}' is not in bound_service_account_namespaces {}",
        list(bound)
    );
    match selector {
        SelectorOutcome::None => Denial::forbidden("namespace not authorized", listed),
        SelectorOutcome::NoMatch { selector, labels } => Denial::forbidden(
            "namespace not authorized",
            format!(
                "{listed}, and its labels {labels} do not match bound_service_account_namespace_selector {selector}"
            ),
        ),
        SelectorOutcome::Error { error, explanation } => Denial::forbidden(
            format!("namespace not authorized err={error}"),
            format!(
                "{listed}, and bound_service_account_namespace_selector could not be checked: {explanation}"
            ),
        ),
    }
}

pub(super) fn audience(wanted: &str, got: &[String]) -> Denial {
    Denial::forbidden(
        "invalid audience (aud) claim: audience claim does not match any expected audience",
        format!(
            "audience mismatch: the role's audience '{wanted}' is not in the JWT's aud {}; create the token with that audience (a projected serviceAccountToken with audience: {wanted}, or kubectl create token --audience {wanted})",
            list(got)
        ),
    )
}

pub(super) fn issuer(got: &str, wanted: &str) -> Denial {
    Denial::forbidden(
        "invalid issuer (iss) claim",
        format!("the JWT's issuer '{got}' is not the configured issuer '{wanted}'"),
    )
}

fn when(secs: i64) -> String {
    rfc3339_nano(secs.saturating_mul(1_000_000_000))
}

pub(super) fn expired(exp: i64, now_ns: i64) -> Denial {
    Denial::forbidden(
        "invalid expiration time (exp) claim: token is expired",
        format!(
            "the JWT expired at {} (now {}, 60 s of clock skew allowed); mount a fresh projected token",
            when(exp),
            rfc3339_nano(now_ns)
        ),
    )
}

pub(super) fn not_yet_valid(nbf: i64, now_ns: i64) -> Denial {
    Denial::forbidden(
        "invalid not before (nbf) claim: token not yet valid",
        format!(
            "the JWT is not valid before {} (now {}, 60 s of clock skew allowed); check the clocks",
            when(nbf),
            rfc3339_nano(now_ns)
        ),
    )
}

pub(super) fn issued_in_future(iat: i64, now_ns: i64) -> Denial {
    Denial::forbidden(
        "invalid issued at (iat) claim: token issued in the future",
        format!(
            "the JWT was issued at {}, after now ({}); check the clocks",
            when(iat),
            rfc3339_nano(now_ns)
        ),
    )
}

/// How the TokenReview was authorised: names the bearer without showing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BearerKind {
    /// `token_reviewer_jwt` from the configuration.
    Configured,
    /// The pod's own service account token file.
    LocalFile,
    /// No reviewer token: the login JWT reviews itself.
    ClientJwt,
}

impl BearerKind {
    pub fn describe(self, local_token_path: &str) -> String {
        match self {
            BearerKind::Configured => "the configured token_reviewer_jwt".to_owned(),
            BearerKind::LocalFile => format!("the local service account token {local_token_path}"),
            BearerKind::ClientJwt => "the login JWT itself (no token_reviewer_jwt is configured and no local service account token was readable)".to_owned(),
        }
    }
}

pub(super) fn reviewer_unauthorized(
    bearer: BearerKind,
    local_token_path: &str,
    host: &str,
) -> Denial {
    let fix = match bearer {
        BearerKind::Configured => {
            "write a current token_reviewer_jwt to the config (a long-lived service-account-token Secret's token, not a pod's projected token, which expires)"
        }
        BearerKind::LocalFile => {
            "the kubelet should be refreshing this file; check that the pod's service account still exists"
        }
        BearerKind::ClientJwt => {
            "configure token_reviewer_jwt, or check that the client's service account still exists"
        }
    };
    permission_denied(format!(
        "the Kubernetes API server at {host} answered 401 Unauthorized to the TokenReview: {} has expired or is not valid; {fix}",
        bearer.describe(local_token_path)
    ))
}

pub(super) fn reviewer_forbidden(
    bearer: BearerKind,
    local_token_path: &str,
    host: &str,
    message: &str,
) -> Denial {
    let who = match bearer {
        BearerKind::ClientJwt => "the client's service account",
        _ => "the token reviewer's service account",
    };
    permission_denied(format!(
        "the Kubernetes API server at {host} answered 403 Forbidden to the TokenReview made with {}: {who} lacks the ClusterRole system:auth-delegator (bind it with a ClusterRoleBinding); the API server said: {message}",
        bearer.describe(local_token_path)
    ))
}

pub(super) fn unreachable(host: &str, error: &str) -> Denial {
    permission_denied(format!(
        "cannot reach the Kubernetes API server at {host}: {error}; check kubernetes_host and the network path"
    ))
}

pub(super) fn untrusted_ca(host: &str, error: &str, ca_source: &str) -> Denial {
    permission_denied(format!(
        "the TLS handshake with {host} failed: {ca_source} does not verify the API server's certificate ({error}); set kubernetes_ca_cert to the cluster's CA"
    ))
}

pub(super) fn tls_failed(host: &str, error: &str) -> Denial {
    permission_denied(format!("the TLS handshake with {host} failed: {error}"))
}

pub(super) fn unauthenticated(error: &str) -> Denial {
    let said = if error.is_empty() {
        "it gave no reason".to_owned()
    } else {
        format!("status.error: {error}")
    };
    permission_denied(format!(
        "the Kubernetes API server's TokenReview says the login JWT is not authenticated ({said}); the token may be expired, revoked, for another audience, or its service account deleted"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_scrubbed_from_upstream_text() {
        let jwt = "eyJhbGciOi.payload.signature";
        assert_eq!(
            scrub(&format!("bad token {jwt} here"), &[jwt, ""]),
            "bad token [redacted] here"
        );
        assert_eq!(
            scrub("short ab", &["ab"]),
            "short ab",
            "too short to be a token"
        );
    }

    #[test]
    fn details_name_the_binding_and_the_value() {
        let d = namespace_not_bound("x", &["a".into(), "b".into()], SelectorOutcome::None);
        assert_eq!(d.summary, "namespace not authorized");
        assert_eq!(
            d.detail,
            "service account namespace 'x' is not in bound_service_account_namespaces [a, b]"
        );
        let d = name_not_bound("web", &["app".into()]);
        assert_eq!(d.status, 403);
        assert!(d.detail.contains("'web'") && d.detail.contains("[app]"));
    }
}
