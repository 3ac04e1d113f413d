//! `tresor login -method=approle role_id=… secret_id=…` and
//! `tresor login -method=kubernetes role=… [jwt=@file]`: the workload logins, posted to
//! `auth/<mount>/login` (the mount defaults to the method's name; `-path` moves it).

use std::collections::BTreeMap;

use reqwest::Method as HttpMethod;
use serde_json::{Map, Value, json};

use super::login_oidc::{api_failure, mount};
use super::secret::api_secret;
use crate::client::Client;

/// Where a pod's projected service account token is, when `jwt` is not given.
const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

fn required(config: &BTreeMap<String, String>, key: &str) -> Result<String, String> {
    config
        .get(key)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("'{key}' must be specified"))
}

async fn post_login(
    client: &mut Client,
    mount: &str,
    body: Map<String, Value>,
) -> Result<Value, String> {
    let path = format!("auth/{mount}/login");
    let reply = client
        .send(HttpMethod::POST, &path, Some(&Value::Object(body)))
        .await
        .map_err(|e| api_failure(&e))?;
    Ok(api_secret(&reply.body))
}

/// `-method=approle role_id=… secret_id=…` (`secret_id` may be omitted for a role with
/// `bind_secret_id=false`; `secret_id=-` reads it from stdin, `@file` from a file).
pub(super) async fn approle_method(
    client: &mut Client,
    config: &BTreeMap<String, String>,
) -> Result<Value, String> {
    let mut body = Map::new();
    body.insert("role_id".into(), json!(required(config, "role_id")?));
    if let Some(secret) = config
        .get("secret_id")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        body.insert("secret_id".into(), json!(secret));
    }
    post_login(client, &mount(config, "approle"), body).await
}

/// `-method=kubernetes role=… [jwt=…]`: without `jwt`, the pod's own service account token.
pub(super) async fn kubernetes_method(
    client: &mut Client,
    config: &BTreeMap<String, String>,
) -> Result<Value, String> {
    let jwt = match config.get("jwt").map(|j| j.trim()).filter(|j| !j.is_empty()) {
        Some(j) => j.to_owned(),
        None => std::fs::read_to_string(SERVICE_ACCOUNT_TOKEN)
            .map(|t| t.trim().to_owned())
            .map_err(|e| {
                format!("no 'jwt' given and the service account token {SERVICE_ACCOUNT_TOKEN} could not be read: {e}")
            })?,
    };
    let mut body = Map::new();
    body.insert("role".into(), json!(required(config, "role")?));
    body.insert("jwt".into(), json!(jwt));
    post_login(client, &mount(config, "kubernetes"), body).await
}
