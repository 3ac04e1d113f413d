//! AppRole over real HTTP with the vaultrs client: roles, role ids, secret ids and logins
//! whose tokens carry exactly the role's policies; num_uses running out, CIDR-bound secret ids
//! (the server sees these tests' client as 127.0.0.1), explained and terse denials, tokens
//! revoked with their mount, renewal refused once the role is gone, a secret id delivered
//! wrapped, and no secret id or token in the server's log.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use common::{Server, raw, vault_client};
use serde_json::{Value, json};
use vaultrs::api::ResponseWrapper;
use vaultrs::api::auth::approle::requests::{
    GenerateNewSecretIDRequest, SetAppRoleRequest, SetAppRoleRequestBuilder,
};
use vaultrs::client::VaultClient;
use vaultrs::error::ClientError;
use vaultrs::{auth::approle, kv2, sys, token};

const ROOT: &str = "root";
const MOUNT: &str = "approle";

async fn start() -> (tempfile::TempDir, Server, VaultClient) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let client = vault_client(&server.addr, ROOT);
    sys::auth::enable(&client, MOUNT, "approle", None)
        .await
        .unwrap();
    (dir, server, client)
}

fn api_error(err: ClientError) -> (u16, Vec<String>) {
    match err {
        ClientError::APIError { code, errors } => (code, errors),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Creates `name` with `settings`, returns its role id.
async fn role(client: &VaultClient, name: &str, settings: &mut SetAppRoleRequestBuilder) -> String {
    approle::role::set(client, MOUNT, name, Some(settings))
        .await
        .unwrap();
    approle::role::read_id(client, MOUNT, name)
        .await
        .unwrap()
        .role_id
}

async fn secret_id(client: &VaultClient, name: &str, cidrs: Option<Vec<String>>) -> String {
    let mut opts = GenerateNewSecretIDRequest::builder();
    if let Some(c) = cidrs {
        opts.cidr_list(c);
    }
    approle::role::secret::generate(client, MOUNT, name, Some(&mut opts))
        .await
        .unwrap()
        .secret_id
}

#[tokio::test]
async fn a_login_token_has_exactly_the_roles_policies_and_works() {
    let (_dir, server, client) = start().await;
    sys::policy::set(
        &client,
        "app",
        r#"path "secret/data/app/*" { capabilities = ["read", "create", "update"] }"#,
    )
    .await
    .unwrap();
    let role_id = role(
        &client,
        "web",
        SetAppRoleRequest::builder()
            .token_policies(vec!["app".to_owned()])
            .token_ttl("10m")
            .token_max_ttl("1h"),
    )
    .await;
    let read = approle::role::read(&client, MOUNT, "web").await.unwrap();
    assert_eq!(read.token_policies, ["app"]);
    assert_eq!((read.token_ttl, read.token_max_ttl), (600, 3600));
    assert!(read.bind_secret_id);
    assert_eq!(
        approle::role::list(&client, MOUNT).await.unwrap().keys,
        ["web"]
    );

    let mut opts = GenerateNewSecretIDRequest::builder();
    opts.metadata(r#"{"team":"payments"}"#);
    let generated = approle::role::secret::generate(&client, MOUNT, "web", Some(&mut opts))
        .await
        .unwrap();
    let looked = approle::role::secret::read(&client, MOUNT, "web", &generated.secret_id)
        .await
        .unwrap();
    assert_eq!(looked.secret_id_accessor, generated.secret_id_accessor);
    assert_eq!(
        looked.metadata.unwrap().get("team").map(String::as_str),
        Some("payments")
    );
    let listed = approle::role::secret::list(&client, MOUNT, "web")
        .await
        .unwrap();
    assert_eq!(
        listed.keys,
        std::slice::from_ref(&generated.secret_id_accessor)
    );

    let auth = approle::login(&client, MOUNT, &role_id, &generated.secret_id)
        .await
        .unwrap();
    assert_eq!(auth.policies, ["app", "default"]);
    assert_eq!(auth.token_policies, ["app", "default"]);
    assert_eq!(auth.lease_duration, 600);
    assert!(auth.renewable);
    let meta = auth.metadata.clone().unwrap();
    assert_eq!(meta.get("role_name").map(String::as_str), Some("web"));
    assert_eq!(meta.get("team").map(String::as_str), Some("payments"));

    let app = vault_client(&server.addr, &auth.client_token);
    let me = token::lookup_self(&app).await.unwrap();
    assert_eq!(me.policies, ["app", "default"]);
    assert_eq!(me.display_name, "approle");
    assert_eq!(me.path, "auth/approle/login");
    assert_eq!(
        me.meta.unwrap().get("role_name").map(String::as_str),
        Some("web")
    );
    kv2::set(&app, "secret", "app/db", &json!({"password": "pw"}))
        .await
        .unwrap();
    let err = kv2::set(&app, "secret", "other/db", &json!({"password": "pw"}))
        .await
        .unwrap_err();
    assert_eq!(api_error(err).0, 403, "the app policy grants only app/*");

    // Neither the secret id nor the token ever reaches the server's log.
    let log = server.log_text();
    assert!(!log.contains(&generated.secret_id));
    assert!(!log.contains(&auth.client_token));
}

#[tokio::test]
async fn secret_id_uses_run_out_with_an_explained_or_terse_refusal() {
    let (_dir, server, client) = start().await;
    let role_id = role(
        &client,
        "batch",
        SetAppRoleRequest::builder().secret_id_num_uses(2u64),
    )
    .await;
    let secret = secret_id(&client, "batch", None).await;
    for _ in 0..2 {
        approle::login(&client, MOUNT, &role_id, &secret)
            .await
            .unwrap();
    }
    let (status, errors) = api_error(
        approle::login(&client, MOUNT, &role_id, &secret)
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 400);
    assert!(
        errors[0].starts_with(
            "invalid role or secret ID: the secret id for role 'batch' has no uses left (its last use was at "
        ),
        "{errors:?}"
    );
    assert!(!errors[0].contains(&secret));
    assert!(
        server.log_text().contains("has no uses left"),
        "the full reason is logged"
    );

    // Terse mode: OpenBao's words exactly.
    let (status, _) = raw(
        &server,
        "POST",
        "sys/auth/approle/tune",
        Some(ROOT),
        Some(json!({"options": {"verbose_denials": "false"}})),
    )
    .await;
    assert_eq!(status, 204);
    let (status, errors) = api_error(
        approle::login(&client, MOUNT, &role_id, &secret)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (status, errors),
        (400, vec!["invalid role or secret ID".to_owned()])
    );
    assert!(!server.log_text().contains(&secret));
}

#[tokio::test]
async fn cidr_bound_secret_ids_are_refused_from_outside_and_accepted_from_inside() {
    let (_dir, server, client) = start().await;
    let role_id = role(&client, "bound", &mut SetAppRoleRequest::builder()).await;
    let elsewhere = secret_id(&client, "bound", Some(vec!["10.0.0.0/8".to_owned()])).await;
    let (status, errors) = api_error(
        approle::login(&client, MOUNT, &role_id, &elsewhere)
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 400);
    assert_eq!(
        errors,
        [
            "source address \"127.0.0.1\" unauthorized through CIDR restrictions on the secret ID: client address 127.0.0.1 is not in the secret id's cidr_list [10.0.0.0/8]"
        ]
    );
    let here = secret_id(&client, "bound", Some(vec!["127.0.0.0/8".to_owned()])).await;
    approle::login(&client, MOUNT, &role_id, &here)
        .await
        .unwrap();

    // The role's own binding, and a token bound elsewhere: issued, but unusable from here.
    let fenced = role(
        &client,
        "fenced",
        SetAppRoleRequest::builder()
            .secret_id_bound_cidrs(vec!["10.0.0.0/8".to_owned()])
            .token_policies(vec!["default".to_owned()]),
    )
    .await;
    let s = secret_id(&client, "fenced", None).await;
    let (status, errors) = api_error(
        approle::login(&client, MOUNT, &fenced, &s)
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 400);
    assert!(
        errors[0].starts_with(
            "source address \"127.0.0.1\" unauthorized by CIDR restrictions on the role: "
        ),
        "{errors:?}"
    );
    let tokens_elsewhere = role(
        &client,
        "tokens-elsewhere",
        SetAppRoleRequest::builder().token_bound_cidrs(vec!["10.0.0.0/8".to_owned()]),
    )
    .await;
    let s = secret_id(&client, "tokens-elsewhere", None).await;
    let auth = approle::login(&client, MOUNT, &tokens_elsewhere, &s)
        .await
        .unwrap();
    let (status, body) = raw(
        &server,
        "GET",
        "auth/token/lookup-self",
        Some(&auth.client_token),
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn disabling_the_mount_revokes_the_tokens_its_logins_issued() {
    let (_dir, server, client) = start().await;
    let role_id = role(&client, "short", &mut SetAppRoleRequest::builder()).await;
    let secret = secret_id(&client, "short", None).await;
    let auth = approle::login(&client, MOUNT, &role_id, &secret)
        .await
        .unwrap();
    let app = vault_client(&server.addr, &auth.client_token);
    token::lookup_self(&app).await.unwrap();
    sys::auth::disable(&client, MOUNT).await.unwrap();
    let (status, _) = api_error(token::lookup_self(&app).await.unwrap_err());
    assert_eq!(status, 403);
    let (status, body) = raw(
        &server,
        "POST",
        "auth/token/lookup",
        Some(ROOT),
        Some(json!({"token": auth.client_token})),
    )
    .await;
    assert_eq!(status, 403, "the token is gone: {body}");
}

#[tokio::test]
async fn renewal_follows_the_role_and_is_refused_once_the_role_is_deleted() {
    let (_dir, server, client) = start().await;
    let role_id = role(
        &client,
        "ren",
        SetAppRoleRequest::builder()
            .token_ttl("10m")
            .token_max_ttl("1h"),
    )
    .await;
    let secret = secret_id(&client, "ren", None).await;
    let auth = approle::login(&client, MOUNT, &role_id, &secret)
        .await
        .unwrap();
    let app = vault_client(&server.addr, &auth.client_token);
    let renewed = token::renew_self(&app, Some("30m")).await.unwrap();
    assert_eq!(renewed.lease_duration, 1800);
    let renewed = token::renew_self(&app, None).await.unwrap();
    assert_eq!(renewed.lease_duration, 600, "the role's token_ttl");
    approle::role::delete(&client, MOUNT, "ren").await.unwrap();
    let (status, errors) = api_error(token::renew_self(&app, None).await.unwrap_err());
    assert_eq!(
        status, 500,
        "worded as OpenBao's expiration manager words it"
    );
    assert!(
        errors[0].starts_with(
            "1 error occurred:\n\t* failed to renew entry: role \"ren\" does not exist during renewal: "
        ),
        "{errors:?}"
    );
    // The secret ids went with the role.
    let (status, body) = raw(
        &server,
        "POST",
        "auth/approle/login",
        None,
        Some(json!({"role_id": role_id, "secret_id": secret})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["errors"][0]
            .as_str()
            .map(|e| e.starts_with("invalid role or secret ID")),
        Some(true),
        "{body}"
    );
    assert_eq!(body.get("auth"), None::<&Value>);
}

#[tokio::test]
async fn a_wrapped_secret_id_is_seen_only_by_whoever_unwraps_it_first() {
    let (_dir, server, client) = start().await;
    let role_id = role(&client, "deliver", &mut SetAppRoleRequest::builder()).await;
    let wrapped = GenerateNewSecretIDRequest::builder()
        .mount(MOUNT)
        .role_name("deliver")
        .build()
        .unwrap()
        .wrap(&client)
        .await
        .unwrap();
    assert_eq!(
        wrapped.info.creation_path,
        "auth/approle/role/deliver/secret-id"
    );
    // The machine unwraps with the wrapping token alone, then logs in.
    let machine = vault_client(&server.addr, &wrapped.info.token);
    let (status, body) = raw(
        &server,
        "POST",
        "sys/wrapping/unwrap",
        Some(&wrapped.info.token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let secret = body["data"]["secret_id"].as_str().unwrap().to_owned();
    approle::login(&machine, MOUNT, &role_id, &secret)
        .await
        .unwrap();
    // Anyone who intercepted the wrapping token is too late, and it shows.
    let (status, _) = raw(
        &server,
        "POST",
        "sys/wrapping/unwrap",
        Some(&wrapped.info.token),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(!server.log_text().contains(&secret));
}
