//! Logins through the `AuthMethod` interface, driven through the core with a test method
//! (`PassTestMethod`, a test double of our own SDK interface, not of any external system):
//! token issuance and its lease, unauthenticated login paths, identity entities and aliases,
//! templated policies, explained denials and `verbose_denials`, renewal limits from the
//! method, token CIDR bindings, and revocation of a method's tokens when it is disabled.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use tresor_core::logical::{LogicalRequest, LogicalResponse};
use tresor_core::mount::{EnableRequest, MountKind, TuneRequest};
use tresor_core::seal::InitRequest;
use tresor_core::{Core, CoreError, CoreOptions};
use tresor_sdk::auth::{
    Alias, AuthMethod, AuthMethodFactory, Login, LoginRenewal, RenewDecision, TokenSettings,
};
use tresor_sdk::engine::{Denial, EngineResult, MountInfo, Operation, Request, Response};
use tresor_sdk::secret::SecretString;
use tresor_sdk::storage::Storage;
use tresor_storage::MemoryBackend;

/// `login` with `{name, password, ns, cidrs?}` succeeds when password == "pw-" + name; the
/// alias is the name, its metadata carries `ns`. `role_ttl` is what `renew` reports.
#[derive(Debug)]
struct PassTestMethod {
    role_ttl: Arc<AtomicU64>,
}

#[async_trait]
impl AuthMethod for PassTestMethod {
    fn unauthenticated_paths(&self) -> &'static [&'static str] {
        &["login", "login/*"]
    }

    async fn handle(
        &self,
        request: &Request,
        storage: &dyn Storage,
    ) -> EngineResult<Option<Response>> {
        match (request.operation, request.path.as_str()) {
            (Operation::Update, "login") => {
                let field = |k: &str| {
                    request
                        .data
                        .get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                };
                let name = field("name").to_owned();
                let password = field("password");
                if password != format!("pw-{name}") {
                    return Err(Denial::bad_request(
                        "invalid credentials",
                        format!("the password of user '{name}' does not match"),
                    )
                    .into());
                }
                let ns = field("ns").to_owned();
                let cidrs = request
                    .data
                    .get("cidrs")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let metadata = BTreeMap::from([("user".to_owned(), name.clone())]);
                Ok(Some(Response {
                    auth: Some(Login {
                        display_name: name.clone(),
                        metadata,
                        alias: Alias {
                            name: name.clone(),
                            metadata: BTreeMap::from([("ns".to_owned(), ns)]),
                        },
                        group_aliases: vec!["devs".into()],
                        token: TokenSettings {
                            policies: vec!["tenant".into()],
                            ttl: 600,
                            max_ttl: 1200,
                            bound_cidrs: cidrs,
                            ..TokenSettings::default()
                        },
                        renewable: true,
                        internal: Map::from_iter([("user".to_owned(), json!(name))]),
                    }),
                    ..Response::default()
                }))
            }
            (Operation::Update, "users") => {
                storage.put("users", b"x").await?;
                Ok(None)
            }
            _ => Err(tresor_sdk::engine::EngineError::UnsupportedPath),
        }
    }

    async fn renew(
        &self,
        login: &LoginRenewal,
        _storage: &dyn Storage,
    ) -> EngineResult<RenewDecision> {
        if login.internal.get("user") == Some(&json!("gone")) {
            return Err(
                Denial::forbidden("role no longer exists", "user 'gone' was deleted").into(),
            );
        }
        Ok(RenewDecision {
            ttl: self.role_ttl.load(Ordering::SeqCst),
            max_ttl: 1200,
            period: 0,
        })
    }
}

#[derive(Debug)]
struct PassFactory {
    role_ttl: Arc<AtomicU64>,
}

impl AuthMethodFactory for PassFactory {
    fn types(&self) -> &[&'static str] {
        &["pass"]
    }
    fn build(&self, _mount: &MountInfo) -> EngineResult<Arc<dyn AuthMethod>> {
        Ok(Arc::new(PassTestMethod {
            role_ttl: self.role_ttl.clone(),
        }))
    }
}

struct Harness {
    core: Arc<Core>,
    root: String,
    role_ttl: Arc<AtomicU64>,
    key: tresor_sdk::secret::SecretBytes,
}

async fn harness() -> Harness {
    let role_ttl = Arc::new(AtomicU64::new(600));
    let core = Core::new(
        Arc::new(MemoryBackend::new()),
        CoreOptions {
            auth_methods: vec![Arc::new(PassFactory {
                role_ttl: role_ttl.clone(),
            })],
            ..CoreOptions::default()
        },
    )
    .await
    .unwrap();
    let init = core
        .initialize(&InitRequest {
            secret_shares: 1,
            secret_threshold: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    core.unseal(init.keys[0].clone()).await.unwrap();
    core.active()
        .unwrap()
        .mounts
        .enable(
            MountKind::Auth,
            "pass",
            EnableRequest {
                engine_type: "pass".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    Harness {
        core,
        root: init.root_token.expose().to_owned(),
        role_ttl,
        key: init.keys[0].clone(),
    }
}

impl Harness {
    async fn call_from(
        &self,
        operation: Operation,
        path: &str,
        data: Value,
        token: Option<&str>,
        remote: Option<IpAddr>,
    ) -> Result<Option<LogicalResponse>, CoreError> {
        self.core
            .handle_logical(LogicalRequest {
                operation,
                path: path.to_owned(),
                data: data.as_object().cloned().unwrap_or_default(),
                query: Vec::new(),
                content_type: None,
                token: token.map(SecretString::from),
                remote_addr: remote,
                wrap_ttl: None,
            })
            .await
    }

    async fn call(
        &self,
        operation: Operation,
        path: &str,
        data: Value,
        token: Option<&str>,
    ) -> Result<Option<LogicalResponse>, CoreError> {
        self.call_from(operation, path, data, token, None).await
    }

    async fn login(&self, name: &str, ns: &str) -> Value {
        let r = self
            .call(
                Operation::Update,
                "auth/pass/login",
                json!({"name": name, "password": format!("pw-{name}"), "ns": ns}),
                None,
            )
            .await
            .unwrap()
            .unwrap();
        assert!(r.data.is_none(), "a login answers with auth only");
        r.auth.unwrap()
    }

    async fn put_policy(&self, name: &str, text: &str) {
        self.core
            .active()
            .unwrap()
            .policies
            .write(name, text, None)
            .await
            .unwrap();
    }

    async fn allowed(&self, token: &str, path: &str) -> bool {
        match self
            .core
            .authorize(Some(token), None, path, Operation::Read, None)
            .await
        {
            Ok(_) => true,
            Err(CoreError::ForbiddenBecause(reason)) => {
                assert!(reason.contains(path), "the reason names the path: {reason}");
                false
            }
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }

    async fn lookup_self(&self, token: &str) -> Map<String, Value> {
        self.call(
            Operation::Read,
            "auth/token/lookup-self",
            json!({}),
            Some(token),
        )
        .await
        .unwrap()
        .unwrap()
        .data
        .unwrap()
    }
}

#[tokio::test]
async fn a_login_needs_no_token_and_yields_a_token_with_the_methods_policies_and_metadata() {
    let h = harness().await;
    let auth = h.login("alice", "shop").await;
    assert_eq!(auth["policies"], json!(["default", "tenant"]));
    assert_eq!(auth["token_policies"], json!(["default", "tenant"]));
    assert_eq!(auth["metadata"], json!({"user": "alice"}));
    assert_eq!(auth["lease_duration"], 600);
    assert_eq!(auth["renewable"], true);
    assert_eq!(auth["orphan"], true);
    let entity_id = auth["entity_id"].as_str().unwrap().to_owned();
    assert!(!entity_id.is_empty());

    let token = auth["client_token"].as_str().unwrap();
    let me = h.lookup_self(token).await;
    assert_eq!(me["path"], "auth/pass/login");
    assert_eq!(me["display_name"], "pass-alice");
    assert_eq!(me["entity_id"], json!(entity_id));
    assert_eq!(me["meta"], json!({"user": "alice"}));

    // The token is a lease under the method's login path.
    let leases = h.core.lease_list("auth/pass/login/").await.unwrap();
    assert_eq!(leases.len(), 1);

    // A second login of the same alias acts for the same entity.
    let again = h.login("alice", "shop").await;
    assert_eq!(again["entity_id"], json!(entity_id));
    let other = h.login("bob", "shop").await;
    assert_ne!(other["entity_id"], json!(entity_id));
}

#[tokio::test]
async fn paths_other_than_login_still_need_a_token_and_a_policy() {
    let h = harness().await;
    let err = h
        .call(Operation::Update, "auth/pass/users", json!({}), None)
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::PermissionDenied), "{err:?}");
    let auth = h.login("alice", "a").await;
    let token = auth["client_token"].as_str().unwrap();
    let err = h
        .call(Operation::Update, "auth/pass/users", json!({}), Some(token))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CoreError::ForbiddenBecause(r) if r.starts_with("no policy grants 'update' on 'auth/pass/users'") && r.ends_with("token policies: [default, tenant]")),
        "{err:?}"
    );
    h.call(
        Operation::Update,
        "auth/pass/users",
        json!({}),
        Some(&h.root),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_denial_names_the_binding_unless_the_mount_is_terse() {
    let h = harness().await;
    let bad = json!({"name": "alice", "password": "wrong", "ns": "a"});
    let err = h
        .call(Operation::Update, "auth/pass/login", bad.clone(), None)
        .await
        .unwrap_err();
    match &err {
        CoreError::Denied { status, message } => {
            assert_eq!(*status, 400);
            assert_eq!(
                message,
                "invalid credentials: the password of user 'alice' does not match"
            );
            assert!(!message.contains("wrong"), "never echo the credential");
        }
        other => panic!("{other:?}"),
    }
    h.core
        .active()
        .unwrap()
        .mounts
        .tune(
            MountKind::Auth,
            "pass",
            TuneRequest {
                options: Some(BTreeMap::from([(
                    "verbose_denials".to_owned(),
                    "false".to_owned(),
                )])),
                ..TuneRequest::default()
            },
        )
        .await
        .unwrap();
    let err = h
        .call(Operation::Update, "auth/pass/login", bad, None)
        .await
        .unwrap_err();
    match &err {
        CoreError::Denied { status, message } => {
            assert_eq!(*status, 400);
            assert_eq!(message, "invalid credentials");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_templated_policy_gives_each_namespace_its_own_path() {
    let h = harness().await;
    let accessor = h
        .core
        .active()
        .unwrap()
        .mounts
        .table(MountKind::Auth)
        .get("pass/")
        .unwrap()
        .entry
        .accessor
        .clone();
    h.put_policy(
        "tenant",
        &format!(
            r#"path "secret/data/{{{{identity.entity.aliases.{accessor}.metadata.ns}}}}/*" {{ capabilities = ["read"] }}
path "secret/data/shared" {{ capabilities = ["read"] }}"#
        ),
    )
    .await;
    let a = h.login("alice", "team-a").await;
    let b = h.login("bob", "team-b").await;
    let (ta, tb) = (
        a["client_token"].as_str().unwrap(),
        b["client_token"].as_str().unwrap(),
    );
    assert!(h.allowed(ta, "secret/data/team-a/db").await);
    assert!(!h.allowed(ta, "secret/data/team-b/db").await);
    assert!(h.allowed(tb, "secret/data/team-b/db").await);
    assert!(!h.allowed(tb, "secret/data/team-a/db").await);
    assert!(h.allowed(ta, "secret/data/shared").await);

    // The alias metadata follows the latest login: alice moves to team-c.
    let a2 = h.login("alice", "team-c").await;
    let ta2 = a2["client_token"].as_str().unwrap();
    assert!(h.allowed(ta2, "secret/data/team-c/x").await);
    assert!(!h.allowed(ta2, "secret/data/team-a/x").await);
    // A root token has no entity: the templated rule grants nothing to a token without one.
    let plain = h
        .call(
            Operation::Update,
            "auth/token/create",
            json!({"policies": ["tenant"]}),
            Some(&h.root),
        )
        .await
        .unwrap()
        .unwrap()
        .auth
        .unwrap();
    let tp = plain["client_token"].as_str().unwrap();
    assert!(!h.allowed(tp, "secret/data/team-a/db").await);
    assert!(h.allowed(tp, "secret/data/shared").await);
}

#[tokio::test]
async fn entity_and_group_policies_add_to_the_tokens_own() {
    let h = harness().await;
    h.put_policy("extra", r#"path "kv/extra" { capabilities = ["read"] }"#)
        .await;
    h.put_policy("grp", r#"path "kv/group" { capabilities = ["read"] }"#)
        .await;
    let auth = h.login("alice", "a").await;
    let token = auth["client_token"].as_str().unwrap();
    let entity_id = auth["entity_id"].as_str().unwrap();
    assert!(!h.allowed(token, "kv/extra").await);
    h.call(
        Operation::Update,
        &format!("identity/entity/id/{entity_id}"),
        json!({"policies": ["extra"]}),
        Some(&h.root),
    )
    .await
    .unwrap();
    assert!(
        h.allowed(token, "kv/extra").await,
        "entity policies apply at once"
    );
    h.call(
        Operation::Update,
        "identity/group",
        json!({"name": "g", "policies": "grp", "member_entity_ids": [entity_id]}),
        Some(&h.root),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(h.allowed(token, "kv/group").await);
    // A later login reports the identity policies in its auth block.
    let again = h.login("alice", "a").await;
    assert_eq!(again["identity_policies"], json!(["extra", "grp"]));
    assert_eq!(
        again["policies"],
        json!(["default", "extra", "grp", "tenant"])
    );

    // Disabling the entity stops its tokens.
    h.call(
        Operation::Update,
        &format!("identity/entity/id/{entity_id}"),
        json!({"disabled": true}),
        Some(&h.root),
    )
    .await
    .unwrap();
    let err = h
        .core
        .authorize(Some(token), None, "kv/extra", Operation::Read, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CoreError::Denied { status: 403, message } if message.contains("disabled")),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_identity_store_survives_a_reseal() {
    let h = harness().await;
    let auth = h.login("alice", "a").await;
    let entity_id = auth["entity_id"].as_str().unwrap().to_owned();
    h.core.seal_now().await;
    h.core.unseal(h.key.clone()).await.unwrap();
    // The reloaded index finds the alias: the same login acts for the same entity.
    let again = h.login("alice", "a").await;
    assert_eq!(again["entity_id"], json!(entity_id));
    let read = h
        .call(
            Operation::Read,
            &format!("identity/entity/id/{entity_id}"),
            json!({}),
            Some(&h.root),
        )
        .await
        .unwrap()
        .unwrap()
        .data
        .unwrap();
    assert_eq!(read["aliases"][0]["name"], "alice");
    assert_eq!(read["aliases"][0]["metadata"], json!({"ns": "a"}));
    assert_eq!(read["aliases"][0]["mount_path"], "auth/pass/");
    assert_eq!(read["aliases"][0]["mount_type"], "pass");
    let names = h
        .call(
            Operation::List,
            "identity/entity/name/",
            json!({}),
            Some(&h.root),
        )
        .await
        .unwrap()
        .unwrap()
        .data
        .unwrap();
    assert_eq!(names["keys"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn renewal_asks_the_method_and_follows_the_roles_current_ttl() {
    let h = harness().await;
    let auth = h.login("alice", "a").await;
    let token = auth["client_token"].as_str().unwrap();
    h.role_ttl.store(120, Ordering::SeqCst);
    let renewed = h
        .call(
            Operation::Update,
            "auth/token/renew-self",
            json!({}),
            Some(token),
        )
        .await
        .unwrap()
        .unwrap()
        .auth
        .unwrap();
    assert_eq!(renewed["lease_duration"], 120, "the role's TTL now");
    let renewed = h
        .call(
            Operation::Update,
            "auth/token/renew-self",
            json!({"increment": "1h"}),
            Some(token),
        )
        .await
        .unwrap()
        .unwrap();
    let ttl = renewed.auth.unwrap()["lease_duration"].as_u64().unwrap();
    assert!(
        ttl <= 1200 && ttl > 1100,
        "capped by the role's max TTL: {ttl}"
    );
    assert!(!renewed.warnings.is_empty());

    let gone = h.login("gone", "a").await;
    let err = h
        .call(
            Operation::Update,
            "auth/token/renew-self",
            json!({}),
            Some(gone["client_token"].as_str().unwrap()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CoreError::Denied { status: 500, message }
            if message == "1 error occurred:\n\t* failed to renew entry: role no longer exists: user 'gone' was deleted\n\n"),
        "every method's refusal is worded as OpenBao's expiration manager words it: {err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_login_token_is_not_stored_and_ends_with_its_mount() {
    let h = harness().await;
    h.core
        .active()
        .unwrap()
        .mounts
        .tune(
            tresor_core::mount::MountKind::Auth,
            "pass",
            tresor_core::mount::TuneRequest {
                token_type: Some("batch".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let auth = h.login("alice", "a").await;
    let token = auth["client_token"].as_str().unwrap();
    assert!(token.starts_with("b."), "{auth}");
    assert_eq!(auth["token_type"], "batch");
    assert_eq!(auth["accessor"], "");
    assert_eq!(auth["renewable"], false);
    assert!(
        !auth["entity_id"].as_str().unwrap().is_empty(),
        "logins still get an entity"
    );
    let looked = h
        .call(
            Operation::Read,
            "auth/token/lookup-self",
            json!({}),
            Some(token),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(looked.data.unwrap()["type"], "batch");
    let err = h
        .call(
            Operation::Update,
            "auth/token/renew-self",
            json!({}),
            Some(token),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CoreError::InvalidRequest(m) if m == "batch tokens cannot be renewed"),
        "{err:?}"
    );
    // Nothing was written for it: no token lease under the login path.
    assert!(matches!(
        h.core.lease_list("auth/pass/login/").await,
        Err(CoreError::NotFound)
    ));
    h.core
        .disable_mount(tresor_core::mount::MountKind::Auth, "pass")
        .await
        .unwrap();
    let err = h
        .call(
            Operation::Read,
            "auth/token/lookup-self",
            json!({}),
            Some(token),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::PermissionDenied), "{err:?}");
    // Named in a body, it is just as unknown.
    let err = h
        .call(
            Operation::Update,
            "auth/token/lookup",
            json!({"token": token}),
            Some(&h.root),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::BadToken), "{err:?}");
}

#[tokio::test]
async fn a_cidr_bound_token_only_works_from_inside_its_blocks() {
    let h = harness().await;
    let r = h
        .call(
            Operation::Update,
            "auth/pass/login",
            json!({"name": "ci", "password": "pw-ci", "cidrs": ["10.0.0.0/8"]}),
            None,
        )
        .await
        .unwrap()
        .unwrap();
    let token = r.auth.unwrap()["client_token"].as_str().unwrap().to_owned();
    let inside: IpAddr = "10.2.3.4".parse().unwrap();
    let outside: IpAddr = "192.168.0.1".parse().unwrap();
    h.call_from(
        Operation::Read,
        "auth/token/lookup-self",
        json!({}),
        Some(&token),
        Some(inside),
    )
    .await
    .unwrap();
    let err = h
        .call_from(
            Operation::Read,
            "auth/token/lookup-self",
            json!({}),
            Some(&token),
            Some(outside),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CoreError::Denied { status: 403, message } if message.contains("192.168.0.1") && message.contains("10.0.0.0/8")),
        "{err:?}"
    );
}

#[tokio::test]
async fn disabling_the_method_revokes_every_token_it_issued() {
    let h = harness().await;
    let a = h.login("alice", "a").await;
    let b = h.login("bob", "b").await;
    h.core.disable_mount(MountKind::Auth, "pass").await.unwrap();
    for auth in [a, b] {
        let token = auth["client_token"].as_str().unwrap();
        let err = h
            .call(
                Operation::Read,
                "auth/token/lookup-self",
                json!({}),
                Some(token),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, CoreError::PermissionDenied), "{err:?}");
    }
}
