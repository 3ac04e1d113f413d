//! Where a Kubernetes login's JWT comes from: the controller's own projected token, a
//! TokenRequest for a named service account (ESO `serviceAccountRef`, VSO
//! `kubernetes.serviceAccount`, `TresorSecret` `auth.kubernetes.serviceAccount`), or a key of
//! a Secret (ESO `secretRef`). A TokenRequest token is short-lived and asked for at each login,
//! so it is never stored anywhere; the Secret and file sources are read at each login too, so
//! a rotated token is picked up without a restart.

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use tresor_sdk::secret::SecretString;

use crate::vault::FetchError;

/// The TokenRequest lifetime ESO uses, and VSO's default `tokenExpirationSeconds` (the API
/// server refuses less than 600).
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 600;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtSource {
    /// The token mounted into the controller's pod (`--jwt-file`): the controller's own
    /// service account.
    OwnToken,
    /// A TokenRequest for `namespace/name`: the workload's own identity, so Tresor's role
    /// binds that service account, not the controller's.
    ServiceAccount {
        namespace: String,
        name: String,
        /// Empty: the API server's own audience (what a role without `audience` accepts).
        audiences: Vec<String>,
        expiration_seconds: i64,
    },
    /// A key of a Secret holding a service account JWT.
    Secret {
        namespace: String,
        name: String,
        key: String,
    },
}

impl JwtSource {
    /// A TokenRequest for `name` in `namespace` when a name is given (not empty), else the
    /// controller's own token: VSO's `kubernetes.serviceAccount` and `TresorSecret`'s.
    pub fn named_or_own(
        namespace: &str,
        name: Option<&str>,
        audiences: &[String],
        expiration_seconds: Option<i64>,
    ) -> JwtSource {
        match name.filter(|n| !n.is_empty()) {
            Some(name) => JwtSource::ServiceAccount {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                audiences: audiences.to_vec(),
                expiration_seconds: expiration_seconds.unwrap_or(DEFAULT_EXPIRATION_SECONDS),
            },
            None => JwtSource::OwnToken,
        }
    }

    /// What tells two logins apart in the engine's client cache (no token material).
    pub fn cache_key(&self) -> String {
        match self {
            JwtSource::OwnToken => "own".into(),
            JwtSource::ServiceAccount {
                namespace,
                name,
                audiences,
                expiration_seconds,
            } => format!(
                "sa:{namespace}/{name}:{}:{expiration_seconds}",
                audiences.join(",")
            ),
            JwtSource::Secret {
                namespace,
                name,
                key,
            } => format!("secret:{namespace}/{name}/{key}"),
        }
    }
}

/// Asks the API server for a token of `namespace/name` (`POST
/// /api/v1/namespaces/<ns>/serviceaccounts/<name>/token`). The caller needs `create` on
/// `serviceaccounts/token` in that namespace (deploy/rbac.yaml grants it where tresor sync
/// manages Secrets). Errors name the service account and the API server's reason, never a
/// token.
pub async fn token_request(
    kube: kube::Client,
    namespace: &str,
    name: &str,
    audiences: &[String],
    expiration_seconds: i64,
) -> Result<SecretString, FetchError> {
    let api: kube::Api<ServiceAccount> = kube::Api::namespaced(kube, namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: audiences.to_vec(),
            expiration_seconds: Some(expiration_seconds),
            bound_object_ref: None,
        },
        ..TokenRequest::default()
    };
    let mut answer = api
        .create_token_request(name, &kube::api::PostParams::default(), &request)
        .await
        .map_err(|e| {
            FetchError::Config(format!(
                "TokenRequest for service account {namespace}/{name}: {}",
                crate::apply::kube_reason(&e)
            ))
        })?;
    let token = answer
        .status
        .as_mut()
        .map(|s| std::mem::take(&mut s.token))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            FetchError::Config(format!(
                "TokenRequest for service account {namespace}/{name}: the answer holds no token"
            ))
        })?;
    Ok(SecretString::new(token))
}
