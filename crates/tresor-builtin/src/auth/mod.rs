//! Built-in auth methods.
//!
//! # Layout
//! - `token_fields`: the `token_*` role parameters every method shares (Vault's tokenutil).
//! - [`kubernetes`]: Kubernetes service account login through TokenReview (type `kubernetes`).
//!
//! A method is a module here and one line in [`auth_methods`]; the core issues the tokens.

use std::sync::Arc;

use tresor_sdk::auth::AuthMethodFactory;

pub mod kubernetes;
#[allow(dead_code, reason = "the auth methods that use it land next")]
pub(crate) mod token_fields;

/// Every built-in auth method factory, for the core's auth table to register.
pub fn auth_methods() -> Vec<Arc<dyn AuthMethodFactory>> {
    vec![Arc::new(kubernetes::KubernetesFactory::default())]
}
