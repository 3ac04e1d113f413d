//! Built-in auth methods.
//!
//! # Layout
//! - `token_fields`: the `token_*` role parameters every method shares (Vault's tokenutil).
//! - [`approle`]: AppRole (`approle`): role ids and secret ids for machines (docs/auth-approle.md).
//! - `jwt`: JWT/OIDC (`jwt` and `oidc` mount types): JWKS/discovery/PEM keys, roles with bound
//!   claims, `login`, and the OIDC browser flow (docs/auth-jwt.md).
//! - [`kubernetes`]: Kubernetes service account login through TokenReview (type `kubernetes`).
//!
//! A method is a module here and one line in [`auth_methods`]; the core issues the tokens.

use std::sync::Arc;

use tresor_sdk::auth::AuthMethodFactory;

pub mod approle;
mod jwt;
pub mod kubernetes;
pub(crate) mod token_fields;

/// Every built-in auth method factory, for the core's auth table to register.
pub fn auth_methods() -> Vec<Arc<dyn AuthMethodFactory>> {
    vec![
        Arc::new(approle::AppRoleFactory::default()),
        Arc::new(jwt::JwtFactory),
        Arc::new(kubernetes::KubernetesFactory::default()),
    ]
}
