//! Tokens, policies, mounts, cubbyhole and generate-root over real HTTP, mostly through the
//! vaultrs client (raw requests where vaultrs has no call).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use std::time::Duration;

use common::{Server, raw, vault_client};
use serde_json::{Value, json};
use vaultrs::api::token::requests::CreateTokenRequestBuilder;
use vaultrs::error::ClientError;

const ROOT: &str = "root";

fn api_code(err: ClientError) -> u16 {
    match err {
        ClientError::APIError { code, .. } => code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn token_with(server: &Server, policies: &[&str], extra: Value) -> String {
    let mut body = json!({ "policies": policies });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, reply) = raw(server, "POST", "auth/token/create", Some(ROOT), Some(body)).await;
    assert_eq!(status, 200, "{reply}");
    reply["auth"]["client_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn token_create_lookup_renew_and_revoke_cascade() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let root = vault_client(&server.addr, ROOT);

    let parent = vaultrs::token::new(
        &root,
        Some(
            CreateTokenRequestBuilder::default()
                .policies(vec!["default".into()])
                .ttl("1h")
                .meta(
                    [("team".to_owned(), "payments".to_owned())]
                        .into_iter()
                        .collect::<std::collections::HashMap<String, String>>(),
                ),
        ),
    )
    .await
    .unwrap();
    assert_eq!(parent.policies, vec!["default"]);
    assert_eq!(parent.token_policies, vec!["default"]);
    assert_eq!(parent.lease_duration, 3600);
    assert!(parent.renewable && !parent.orphan);
    assert!(parent.client_token.starts_with("s."));

    let as_parent = vault_client(&server.addr, &parent.client_token);
    let me = vaultrs::token::lookup_self(&as_parent).await.unwrap();
    assert_eq!(me.id, parent.client_token);
    assert_eq!(me.accessor, parent.accessor);
    assert_eq!(me.path, "auth/token/create");
    assert_eq!(me.meta.unwrap()["team"], "payments");
    assert!(me.expire_time.is_some());
    assert!(me.ttl > 3500 && me.ttl <= 3600);

    // Lookup by accessor hides the id.
    let by_accessor = vaultrs::token::lookup_accessor(&root, &parent.accessor)
        .await
        .unwrap();
    assert_eq!(by_accessor.id, "");

    // Renew with an increment; renew-self; renew-accessor.
    let renewed = vaultrs::token::renew(&root, &parent.client_token, Some("2h"))
        .await
        .unwrap();
    assert_eq!(renewed.lease_duration, 7200);
    assert!(
        vaultrs::token::renew_self(&as_parent, Some("30m"))
            .await
            .unwrap()
            .lease_duration
            <= 1800
    );
    vaultrs::token::renew_accessor(&root, &parent.accessor, None)
        .await
        .unwrap();

    // A child of the parent (created by the parent through a root-created role-less grant).
    let (s, _) = raw(
        &server,
        "PUT",
        "sys/policies/acl/maker",
        Some(ROOT),
        Some(json!({
            "policy": "path \"auth/token/create\" { capabilities = [\"update\"] }"
        })),
    )
    .await;
    assert_eq!(s, 204);
    let maker = token_with(&server, &["maker"], json!({})).await;
    let child = vaultrs::token::new(&vault_client(&server.addr, &maker), None)
        .await
        .unwrap();
    let grandchild = vaultrs::token::new(&vault_client(&server.addr, &child.client_token), None)
        .await
        .unwrap();
    let orphan =
        vaultrs::token::new_orphan(&vault_client(&server.addr, &child.client_token), None).await;
    // create-orphan is not granted by "maker": the ACL refuses it.
    assert_eq!(api_code(orphan.unwrap_err()), 403);

    // Revoking `maker` revokes its child and grandchild.
    vaultrs::token::revoke(&root, &maker).await.unwrap();
    for gone in [&maker, &child.client_token, &grandchild.client_token] {
        let err = vaultrs::token::lookup_self(&vault_client(&server.addr, gone))
            .await
            .unwrap_err();
        assert_eq!(api_code(err), 403);
    }
    // revoke-self and revoke-accessor.
    vaultrs::token::revoke_self(&as_parent).await.unwrap();
    assert_eq!(
        api_code(vaultrs::token::lookup_self(&as_parent).await.unwrap_err()),
        403
    );
    let other = token_with(&server, &["default"], json!({})).await;
    let other_info = vaultrs::token::lookup(&root, &other).await.unwrap();
    vaultrs::token::revoke_accessor(&root, &other_info.accessor)
        .await
        .unwrap();
    assert_eq!(
        api_code(vaultrs::token::lookup(&root, &other).await.unwrap_err()),
        403
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn revoke_orphan_keeps_children_alive_as_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let root = vault_client(&server.addr, ROOT);
    raw(
        &server,
        "PUT",
        "sys/policy/maker",
        Some(ROOT),
        Some(json!({"policy": "path \"auth/token/create\" { capabilities = [\"update\"] }"})),
    )
    .await;
    let parent = token_with(&server, &["maker"], json!({})).await;
    let child = vaultrs::token::new(&vault_client(&server.addr, &parent), None)
        .await
        .unwrap();
    vaultrs::token::revoke_orphan(&root, &parent).await.unwrap();
    let child_info = vaultrs::token::lookup(&root, &child.client_token)
        .await
        .unwrap();
    assert!(child_info.orphan);
    // revoke-orphan needs sudo: a plain token cannot.
    let (status, _) = raw(
        &server,
        "POST",
        "auth/token/revoke-orphan",
        Some(&child.client_token),
        Some(json!({"token": child.client_token})),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn num_uses_counts_down_and_the_token_dies_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let token = token_with(&server, &["default"], json!({ "num_uses": 2 })).await;
    let client = vault_client(&server.addr, &token);
    let first = vaultrs::token::lookup_self(&client).await.unwrap();
    assert_eq!(first.num_uses, 1, "one use spent on this very lookup");
    // The last use reports -1, as OpenBao does (raw: vaultrs reads num_uses as unsigned).
    let (status, last) = raw(&server, "GET", "auth/token/lookup-self", Some(&token), None).await;
    assert_eq!((status, last["data"]["num_uses"].clone()), (200, json!(-1)));
    assert_eq!(
        api_code(vaultrs::token::lookup_self(&client).await.unwrap_err()),
        403
    );
    let (status, body) = raw(
        &server,
        "POST",
        "auth/token/create",
        Some(ROOT),
        Some(json!({"num_uses": -1})),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"errors": ["number of uses cannot be negative"]})
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn short_ttl_tokens_expire() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let token = token_with(&server, &["default"], json!({ "ttl": "1s" })).await;
    let client = vault_client(&server.addr, &token);
    assert!(vaultrs::token::lookup_self(&client).await.unwrap().ttl <= 1);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        api_code(vaultrs::token::lookup_self(&client).await.unwrap_err()),
        403
    );
    // explicit_max_ttl caps renewals, with Vault's warning.
    let capped = token_with(
        &server,
        &["default"],
        json!({ "ttl": "1h", "explicit_max_ttl": "2h" }),
    )
    .await;
    let (status, body) = raw(
        &server,
        "POST",
        "auth/token/renew",
        Some(ROOT),
        Some(json!({"token": capped, "increment": "3h"})),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body["auth"]["lease_duration"].as_u64().unwrap() <= 7200);
    assert!(
        body["warnings"][0]
            .as_str()
            .unwrap()
            .contains("exceeded the effective max_ttl")
    );
    let not_renewable = token_with(&server, &["default"], json!({ "renewable": false })).await;
    let (status, body) = raw(
        &server,
        "POST",
        "auth/token/renew-self",
        Some(&not_renewable),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (status, body),
        (400, json!({"errors": ["lease is not renewable"]}))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn child_policies_must_be_a_subset_and_roles_constrain_creation() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    raw(
        &server,
        "PUT",
        "sys/policy/maker",
        Some(ROOT),
        Some(json!({"policy": "path \"auth/token/create*\" { capabilities = [\"update\"] }"})),
    )
    .await;
    let maker = token_with(&server, &["maker"], json!({})).await;
    let (status, body) = raw(
        &server,
        "POST",
        "auth/token/create",
        Some(&maker),
        Some(json!({"policies": ["admin"]})),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"errors": ["child policies must be subset of parent"]})
        )
    );
    let (status, _) = raw(
        &server,
        "POST",
        "auth/token/create",
        Some(&maker),
        Some(json!({"no_parent": true})),
    )
    .await;
    assert_eq!(status, 400);

    let (status, _) = raw(
        &server,
        "POST",
        "auth/token/roles/app",
        Some(ROOT),
        Some(json!({"allowed_policies": ["app"], "orphan": true})),
    )
    .await;
    assert_eq!(status, 204);
    let role = vaultrs::token::role::read(&vault_client(&server.addr, ROOT), "app")
        .await
        .unwrap();
    assert_eq!(role.allowed_policies, vec!["app"]);
    assert!(role.orphan);
    let (status, body) = raw(
        &server,
        "POST",
        "auth/token/create/app",
        Some(ROOT),
        Some(json!({"policies": ["other"]})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = raw(
        &server,
        "POST",
        "auth/token/create/app",
        Some(ROOT),
        Some(json!({"policies": ["app"]})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["auth"]["policies"], json!(["app", "default"]));
    assert_eq!(body["auth"]["orphan"], true);
    assert_eq!(body["warnings"], json!(["Policy \"app\" does not exist"]));
    let (status, body) = raw(
        &server,
        "POST",
        "auth/token/create/nope",
        Some(ROOT),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (status, body),
        (400, json!({"errors": ["unknown role nope"]}))
    );
    let (status, body) = raw(&server, "LIST", "auth/token/roles", Some(ROOT), None).await;
    assert_eq!(
        (status, body["data"]["keys"].clone()),
        (200, json!(["app"]))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn accessors_listing_needs_sudo() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let plain = token_with(&server, &["default"], json!({})).await;
    let (status, body) = raw(&server, "LIST", "auth/token/accessors", Some(ROOT), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["keys"].as_array().unwrap().len(),
        2,
        "root and the plain token"
    );
    let (status, _) = raw(&server, "LIST", "auth/token/accessors", Some(&plain), None).await;
    assert_eq!(status, 403);
    raw(&server, "PUT", "sys/policy/lister", Some(ROOT), Some(json!({"policy": "path \"auth/token/accessors\" { capabilities = [\"list\", \"sudo\"] }"}))).await;
    let lister = token_with(&server, &["lister"], json!({})).await;
    assert_eq!(
        raw(&server, "LIST", "auth/token/accessors", Some(&lister), None)
            .await
            .0,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn policies_crud_and_enforcement_with_vaultrs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let root = vault_client(&server.addr, ROOT);
    let policy = r#"
path "secret/data/app/*" { capabilities = ["read", "list"] }
path "secret/data/app/admin" { capabilities = ["deny"] }
path "sys/capabilities-self" { capabilities = ["update"] }
"#;
    vaultrs::sys::policy::set(&root, "App", policy)
        .await
        .unwrap();
    let read = vaultrs::sys::policy::read(&root, "app").await.unwrap();
    assert_eq!(read.name, "app");
    assert_eq!(read.rules, policy);
    let names = vaultrs::sys::policy::list(&root).await.unwrap().policies;
    assert_eq!(names, vec!["app", "default", "root"]);

    let token = token_with(&server, &["app"], json!({})).await;
    let (status, body) = raw(
        &server,
        "POST",
        "sys/capabilities-self",
        Some(&token),
        Some(json!({"paths": ["secret/data/app/x", "secret/data/app/admin", "secret/data/other"]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["secret/data/app/x"], json!(["list", "read"]));
    assert_eq!(body["secret/data/app/admin"], json!(["deny"]));
    assert_eq!(body["data"]["secret/data/other"], json!(["deny"]));
    let (status, body) = raw(
        &server,
        "POST",
        "sys/capabilities",
        Some(ROOT),
        Some(json!({"token": token, "path": "secret/data/app/y"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["capabilities"], json!(["list", "read"]));
    let accessor = vaultrs::token::lookup(&root, &token)
        .await
        .unwrap()
        .accessor;
    let (status, body) = raw(
        &server,
        "POST",
        "sys/capabilities-accessor",
        Some(ROOT),
        Some(json!({"accessor": accessor, "path": "secret/data/app/y"})),
    )
    .await;
    assert_eq!(
        (status, body["capabilities"].clone()),
        (200, json!(["list", "read"]))
    );

    // Enforcement on a real engine: read allowed, write denied, deny wins.
    raw(
        &server,
        "POST",
        "secret/data/app/x",
        Some(ROOT),
        Some(json!({"data": {"k": "v"}})),
    )
    .await;
    raw(
        &server,
        "POST",
        "secret/data/app/admin",
        Some(ROOT),
        Some(json!({"data": {"k": "v"}})),
    )
    .await;
    assert_eq!(
        raw(&server, "GET", "secret/data/app/x", Some(&token), None)
            .await
            .0,
        200
    );
    let (status, body) = raw(
        &server,
        "POST",
        "secret/data/app/x",
        Some(&token),
        Some(json!({"data": {"k": "w"}})),
    )
    .await;
    assert_eq!(status, 403);
    // OpenBao's text, then the reason (explainable denials).
    let error = body["errors"][0].as_str().unwrap();
    assert!(
        error.starts_with("1 error occurred:\n\t* permission denied: no policy grants 'update' on 'secret/data/app/x'"),
        "{error}"
    );
    assert_eq!(
        raw(&server, "GET", "secret/data/app/admin", Some(&token), None)
            .await
            .0,
        403
    );
    // Default deny: a sys path the policy does not name.
    assert_eq!(
        raw(&server, "GET", "sys/mounts", Some(&token), None)
            .await
            .0,
        403
    );

    // Built-ins: root cannot change, default cannot be deleted.
    let (status, _) = raw(
        &server,
        "PUT",
        "sys/policy/root",
        Some(ROOT),
        Some(json!({"policy": ""})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = raw(
        &server,
        "DELETE",
        "sys/policies/acl/default",
        Some(ROOT),
        None,
    )
    .await;
    assert_eq!(status, 400);
    vaultrs::sys::policy::delete(&root, "app").await.unwrap();
    assert_eq!(
        raw(&server, "GET", "secret/data/app/x", Some(&token), None)
            .await
            .0,
        403,
        "ACL cache invalidated"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_policies_are_400_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let (status, body) = raw(
        &server,
        "PUT",
        "sys/policies/acl/bad",
        Some(ROOT),
        Some(json!({"policy": "path \"a\" {\n  capabilities = [\"read\"]\n\n  oops = \n}"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["errors"][0].as_str().unwrap().contains("line"),
        "{body}"
    );
    let (status, body) = raw(
        &server,
        "PUT",
        "sys/policies/acl/bad",
        Some(ROOT),
        Some(json!({"policy": "path \"a\" { capabilities = [\"reed\"] }"})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["errors"][0].as_str().unwrap().contains("reed"),
        "{body}"
    );
    assert_eq!(
        raw(&server, "GET", "sys/policies/acl/bad", Some(ROOT), None)
            .await
            .0,
        404,
        "nothing was stored"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mounts_enable_tune_remount_disable_with_vaultrs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let root = vault_client(&server.addr, ROOT);
    let mounts = vaultrs::sys::mount::list(&root).await.unwrap();
    assert!(
        mounts.contains_key("secret/")
            && mounts.contains_key("cubbyhole/")
            && mounts.contains_key("sys/")
    );
    assert_eq!(mounts["secret/"].options.as_ref().unwrap()["version"], "2");

    vaultrs::sys::mount::enable(&root, "team-a", "kv", None)
        .await
        .unwrap();
    let (status, body) = raw(
        &server,
        "POST",
        "sys/mounts/team-a/sub",
        Some(ROOT),
        Some(json!({"type": "kv"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"errors": ["path is already in use at team-a/"]})
        )
    );
    for bad in ["sys/x", "auth/x", "cubbyhole"] {
        let (status, _) = raw(
            &server,
            "POST",
            &format!("sys/mounts/{bad}"),
            Some(ROOT),
            Some(json!({"type": "kv"})),
        )
        .await;
        assert_eq!(status, 400, "{bad}");
    }
    // (Escaped, so the client does not normalise the dot segments away before sending.)
    for bad in ["a%2F%2Fb", "a%2F..%2Fb", "a%2F.%2Fb", "%2Fabs"] {
        let (status, _) = raw(
            &server,
            "POST",
            &format!("sys/mounts/{bad}"),
            Some(ROOT),
            Some(json!({"type": "kv"})),
        )
        .await;
        assert_eq!(status, 400, "{bad}");
    }
    let (status, body) = raw(
        &server,
        "POST",
        "sys/mounts/x",
        Some(ROOT),
        Some(json!({"type": "nope"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"errors": ["plugin not found in the catalog: nope"]})
        )
    );

    // Tune lease TTLs and description.
    let (status, _) = raw(
        &server,
        "POST",
        "sys/mounts/team-a/tune",
        Some(ROOT),
        Some(json!({"default_lease_ttl": "1h", "max_lease_ttl": "2h", "description": "Team A"})),
    )
    .await;
    assert_eq!(status, 204);
    let (_, tune) = raw(&server, "GET", "sys/mounts/team-a/tune", Some(ROOT), None).await;
    assert_eq!(
        (
            tune["default_lease_ttl"].clone(),
            tune["max_lease_ttl"].clone(),
            tune["description"].clone()
        ),
        (json!(3600), json!(7200), json!("Team A"))
    );
    let (status, body) = raw(
        &server,
        "POST",
        "sys/mounts/team-a/tune",
        Some(ROOT),
        Some(json!({"default_lease_ttl": "3h"})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .contains("would be less than")
    );

    // Write, remount, read back at the new path; disable deletes the data.
    assert_eq!(
        raw(
            &server,
            "POST",
            "team-a/k",
            Some(ROOT),
            Some(json!({"v": "1"}))
        )
        .await
        .0,
        204
    );
    let (status, body) = raw(
        &server,
        "POST",
        "sys/remount",
        Some(ROOT),
        Some(json!({"from": "team-a", "to": "team-b"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["migration_id"].is_string());
    assert_eq!(
        raw(&server, "GET", "team-b/k", Some(ROOT), None).await.1["data"]["v"],
        "1"
    );
    assert_eq!(
        raw(&server, "GET", "team-a/k", Some(ROOT), None).await.0,
        404
    );
    vaultrs::sys::mount::disable(&root, "team-b").await.unwrap();
    vaultrs::sys::mount::enable(&root, "team-b", "kv", None)
        .await
        .unwrap();
    assert_eq!(
        raw(&server, "GET", "team-b/k", Some(ROOT), None).await.0,
        404,
        "a re-enabled mount starts empty"
    );
    let (status, body) = raw(&server, "DELETE", "sys/mounts/sys", Some(ROOT), None).await;
    assert_eq!(
        (status, body),
        (400, json!({"errors": ["cannot unmount \"sys/\""]}))
    );
    // Auth table: token/ is always there and cannot be disabled.
    let auths = vaultrs::sys::auth::list(&root).await.unwrap();
    assert_eq!(auths["token/"].mount_type, "token");
    let (status, body) = raw(&server, "DELETE", "sys/auth/token", Some(ROOT), None).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"errors": ["token credential backend cannot be disabled"]})
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cubbyholes_are_private_and_die_with_their_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let alice = token_with(&server, &["default"], json!({})).await;
    let bob = token_with(&server, &["default"], json!({})).await;
    assert_eq!(
        raw(
            &server,
            "POST",
            "cubbyhole/note",
            Some(&alice),
            Some(json!({"secret": "alice's"}))
        )
        .await
        .0,
        204
    );
    let (status, body) = raw(&server, "GET", "cubbyhole/note", Some(&alice), None).await;
    assert_eq!(
        (status, body["data"]["secret"].clone()),
        (200, json!("alice's"))
    );
    assert_eq!(
        raw(&server, "GET", "cubbyhole/note", Some(&bob), None)
            .await
            .0,
        404,
        "bob sees nothing"
    );
    assert_eq!(
        raw(&server, "LIST", "cubbyhole/", Some(&bob), None).await.0,
        404
    );
    raw(
        &server,
        "POST",
        "auth/token/revoke",
        Some(ROOT),
        Some(json!({"token": alice})),
    )
    .await;
    // The data is gone from storage too: a new token with the same id cannot see it.
    let (status, _) = raw(
        &server,
        "POST",
        "auth/token/create",
        Some(ROOT),
        Some(json!({"id": alice, "policies": ["default"]})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        raw(&server, "GET", "cubbyhole/note", Some(&alice), None)
            .await
            .0,
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn generate_root_end_to_end_mints_a_working_root_token() {
    let dir = tempfile::tempdir().unwrap();
    // The first listener serves the unauthenticated endpoints; the second keeps OpenBao's
    // default (off).
    let config = dir.path().join("two.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"embedded\" {{\n  path = \"{}\"\n}}\n\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n  disable_unauthed_generate_root_endpoints = false\n}}\n\nlistener \"tcp\" {{\n  address = \"127.0.0.2:0\"\n  tls_disable = true\n}}\n",
            dir.path().join("data.redb").display()
        ),
    )
    .unwrap();
    let server = Server::start(
        &["server", &format!("-config={}", config.display())],
        dir.path(),
    );
    let banner = server.stdout_containing("Listener 2:");
    let off = Server {
        child: std::process::Command::new("true").spawn().unwrap(),
        addr: banner
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("Listener 2: tcp (addr: \"")
                    .and_then(|r| r.split('"').next())
                    .map(|a| format!("http://{a}"))
            })
            .expect("the banner names the second listener"),
        log: server.log.clone(),
        stdout_lines: Default::default(),
    };
    let (status, body) = raw(&off, "GET", "sys/generate-root/attempt", None, None).await;
    assert_eq!(
        (status, body["errors"][0].clone()),
        (503, json!("Vault is sealed"))
    );
    let anon = vault_client(&server.addr, "");
    let init = vaultrs::sys::start_initialization(&anon, 3, 2, None)
        .await
        .unwrap();
    for key in &init.keys[..2] {
        vaultrs::sys::unseal(&anon, Some(key.clone()), None, None)
            .await
            .unwrap();
    }
    // As OpenBao ≥ 2.5.3 where the listener does not enable them: 405 without a token.
    for (method, path) in [
        ("GET", "sys/generate-root/attempt"),
        ("PUT", "sys/generate-root/attempt"),
        ("DELETE", "sys/generate-root/attempt"),
        ("PUT", "sys/generate-root/update"),
    ] {
        let (status, body) = raw(&off, method, path, None, Some(json!({}))).await;
        assert_eq!(
            (status, body["errors"][0].clone()),
            (405, json!("unsupported operation")),
            "{method} {path}"
        );
    }
    // The operator revokes the initial root token after setup.
    let (status, _) = raw(
        &server,
        "POST",
        "auth/token/revoke-self",
        Some(&init.root_token),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(
        raw(
            &server,
            "GET",
            "sys/key-status",
            Some(&init.root_token),
            None
        )
        .await
        .0,
        403
    );

    let (status, start) = raw(
        &server,
        "PUT",
        "sys/generate-root/attempt",
        None,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{start}");
    let otp = start["otp"].as_str().unwrap().to_owned();
    let nonce = start["nonce"].as_str().unwrap().to_owned();
    assert_eq!(start["required"], 2);
    assert_eq!(otp.len(), start["otp_length"].as_u64().unwrap() as usize);
    let (status, again) = raw(
        &server,
        "PUT",
        "sys/generate-root/attempt",
        None,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 400, "{again}");
    let (_, status_body) = raw(&server, "GET", "sys/generate-root/attempt", None, None).await;
    assert_eq!(status_body["otp"], "", "the pad is shown only once");
    let (status, _) = raw(
        &server,
        "PUT",
        "sys/generate-root/update",
        None,
        Some(json!({"key": init.keys[2], "nonce": "wrong"})),
    )
    .await;
    assert_eq!(status, 400);
    let (_, first) = raw(
        &server,
        "PUT",
        "sys/generate-root/update",
        None,
        Some(json!({"key": init.keys[2], "nonce": nonce})),
    )
    .await;
    assert_eq!(
        (first["progress"].clone(), first["complete"].clone()),
        (json!(1), json!(false))
    );
    let (_, done) = raw(
        &server,
        "PUT",
        "sys/generate-root/update",
        None,
        Some(json!({"key": init.keys_base64[0], "nonce": nonce})),
    )
    .await;
    assert_eq!(done["complete"], true, "{done}");
    let token =
        tresor_core::generate_root::decode_token(done["encoded_token"].as_str().unwrap(), &otp)
            .unwrap();
    let (status, body) = raw(&server, "GET", "auth/token/lookup-self", Some(&token), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["policies"], json!(["root"]));
    assert_eq!(
        raw(&server, "DELETE", "sys/generate-root/attempt", None, None)
            .await
            .0,
        204
    );
}
