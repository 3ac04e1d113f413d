//! The Kubernetes auth method as the core calls it, on in-memory storage with a controllable
//! clock: routing, the checks made before any TokenReview (so no API server is needed; the
//! end-to-end tests in `crates/tresor/tests/server/auth_kubernetes.rs` use the fake one), renewal,
//! and concurrent role writes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::{Map, Value, json};
use support::{FakeClock, MemStorage};
use tresor_builtin::auth::kubernetes::KubernetesFactory;
use tresor_sdk::auth::{AuthMethod, AuthMethodFactory, LoginRenewal};
use tresor_sdk::engine::{EngineError, MountInfo, Operation, Request, Response};
use tresor_sdk::secret::SecretBytes;
use tresor_sdk::storage::{Storage, StorageViewError, ViewOp};

/// Memory storage whose writes also suspend, as a real backend's do (they wait for a commit):
/// concurrent read-modify-writes interleave unless something serialises them.
#[derive(Debug, Default)]
struct SlowWrites(MemStorage);

#[async_trait::async_trait]
impl Storage for SlowWrites {
    async fn get(&self, key: &str) -> Result<Option<SecretBytes>, StorageViewError> {
        self.0.get(key).await
    }
    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StorageViewError> {
        tokio::task::yield_now().await;
        self.0.put(key, value).await
    }
    async fn delete(&self, key: &str) -> Result<(), StorageViewError> {
        tokio::task::yield_now().await;
        self.0.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageViewError> {
        self.0.list(prefix).await
    }
    async fn transaction(&self, ops: Vec<ViewOp>) -> Result<(), StorageViewError> {
        tokio::task::yield_now().await;
        self.0.transaction(ops).await
    }
}

struct Method {
    method: Arc<dyn AuthMethod>,
    storage: SlowWrites,
    clock: Arc<FakeClock>,
    mount: Arc<MountInfo>,
}

fn method() -> Method {
    let clock = Arc::new(FakeClock::default());
    let mount = Arc::new(MountInfo {
        path: "kubernetes/".into(),
        engine_type: "kubernetes".into(),
        max_lease_ttl: Duration::from_secs(768 * 3600),
        default_lease_ttl: Duration::from_secs(768 * 3600),
        ..MountInfo::default()
    });
    let factory = KubernetesFactory::new("/nonexistent/serviceaccount", clock.clone());
    Method {
        method: factory.build(&mount).unwrap(),
        storage: SlowWrites::default(),
        clock,
        mount,
    }
}

impl Method {
    async fn call(
        &self,
        op: Operation,
        path: &str,
        body: Value,
    ) -> Result<Option<Response>, EngineError> {
        let mut request = Request {
            operation: op,
            path: path.into(),
            data: body.as_object().cloned().unwrap_or_default(),
            query: Vec::new(),
            content_type: None,
            mount: self.mount.clone(),
            client_token_key: String::new(),
            display_name: String::new(),
            remote_addr: Some("127.0.0.1".parse().unwrap()),
        };
        if op == Operation::Update
            && self.method.exists(&request, &self.storage).await.unwrap() == Some(false)
        {
            request.operation = Operation::Create;
        }
        self.method.handle(&request, &self.storage).await
    }

    async fn write(&self, path: &str, body: Value) {
        self.call(Operation::Update, path, body).await.unwrap();
    }

    async fn login(&self, role: &str, jwt: &str) -> EngineError {
        self.call(
            Operation::Update,
            "login",
            json!({"role": role, "jwt": jwt}),
        )
        .await
        .unwrap_err()
    }

    /// The method's clock, in Unix seconds.
    fn now(&self) -> i64 {
        use tresor_builtin::clock::Clock;
        self.clock.now() / 1_000_000_000
    }
}

/// An unsigned JWT for a projected service account token (the method reads its claims
/// before the API server is asked, and no API server answers in these tests).
fn jwt(claims: Value) -> String {
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(&json!({"alg": "RS256", "kid": "k"})),
        b64(&claims)
    )
}

fn projected(namespace: &str, name: &str, now: i64) -> Value {
    json!({
        "aud": ["https://kubernetes.default.svc.cluster.local"],
        "iss": "https://kubernetes.default.svc.cluster.local",
        "iat": now, "nbf": now, "exp": now + 3600,
        "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": "uid-1"}},
        "sub": format!("system:serviceaccount:{namespace}:{name}"),
    })
}

fn denial(err: EngineError) -> (u16, String, String) {
    match err {
        EngineError::Denied(d) => (d.status, d.summary, d.detail),
        other => panic!("expected a denial, got {other:?}"),
    }
}

async fn configured() -> Method {
    let m = method();
    m.write(
        "config",
        json!({"kubernetes_host": "https://127.0.0.1:1", "kubernetes_ca_cert": "none", "token_reviewer_jwt": "reviewer.jwt.token"}),
    )
    .await;
    m.write(
        "role/app",
        json!({"bound_service_account_names": "app", "bound_service_account_namespaces": "team-*", "audience": "", "token_policies": "app", "token_ttl": 60, "token_max_ttl": 120}),
    )
    .await;
    m
}

#[tokio::test]
async fn only_login_is_unauthenticated() {
    let m = method();
    assert_eq!(m.method.unauthenticated_paths(), ["login"]);
    assert!(matches!(
        m.call(Operation::Read, "login", json!({})).await,
        Err(EngineError::UnsupportedOperation)
    ));
    assert!(matches!(
        m.call(Operation::Read, "role/a b", json!({})).await,
        Err(EngineError::UnsupportedPath)
    ));
    assert!(matches!(
        m.call(Operation::Read, "nothing", json!({})).await,
        Err(EngineError::UnsupportedPath)
    ));
}

#[tokio::test]
async fn a_login_before_any_config_is_openbaos_500_with_the_missing_step_named() {
    let m = method();
    m.write(
        "role/app",
        json!({"bound_service_account_names": "app", "bound_service_account_namespaces": "x"}),
    )
    .await;
    let (status, summary, detail) =
        denial(m.login("app", &jwt(projected("x", "app", m.now()))).await);
    assert_eq!(
        (status, summary.as_str()),
        (500, "could not load backend configuration")
    );
    assert!(detail.contains("write auth/<mount>/config"), "{detail}");
    // Missing fields and roles are plain 400s, as in OpenBao.
    for (body, message) in [
        (json!({"jwt": "x"}), "missing role"),
        (json!({"role": "app"}), "missing jwt"),
        (
            json!({"role": "nope", "jwt": "x"}),
            "invalid role name \"nope\"",
        ),
    ] {
        match m.call(Operation::Update, "login", body).await {
            Err(EngineError::InvalidRequest(text)) => assert_eq!(text, message),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn bindings_and_claims_are_refused_before_any_tokenreview() {
    // The configured API server does not exist: every refusal here happens before calling it.
    let m = configured().await;
    let now = m.now();
    let (status, summary, detail) =
        denial(m.login("app", &jwt(projected("prod", "app", now))).await);
    assert_eq!(
        (status, summary.as_str()),
        (403, "namespace not authorized")
    );
    assert_eq!(
        detail,
        "service account namespace 'prod' is not in bound_service_account_namespaces [team-*]"
    );
    let (_, summary, detail) = denial(m.login("app", &jwt(projected("team-a", "web", now))).await);
    assert_eq!(summary, "service account name not authorized");
    assert!(detail.contains("'web'"));

    let mut expired = projected("team-a", "app", now - 7200);
    expired["exp"] = json!(now - 3600);
    let (_, summary, detail) = denial(m.login("app", &jwt(expired)).await);
    assert_eq!(
        summary,
        "invalid expiration time (exp) claim: token is expired"
    );
    assert!(
        detail.contains("2024-01-02T02:04:05Z"),
        "the expiry is named: {detail}"
    );

    let none = format!(
        "{}.{}.",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(projected("team-a", "app", now).to_string())
    );
    let (status, summary, detail) = denial(m.login("app", &none).await);
    assert_eq!((status, summary.as_str()), (403, "permission denied"));
    assert!(detail.contains("\"none\""), "{detail}");

    // Bound CIDRs are checked first of all.
    m.write("role/app", json!({"token_bound_cidrs": "10.0.0.0/8"}))
        .await;
    let (_, summary, detail) = denial(m.login("app", &jwt(projected("team-a", "app", now))).await);
    assert_eq!(summary, "permission denied");
    assert!(
        detail.contains("127.0.0.1 is not in the role's token_bound_cidrs [10.0.0.0/8]"),
        "{detail}"
    );

    // Past the local checks, the unreachable API server is named.
    m.write("role/app", json!({"token_bound_cidrs": ""})).await;
    let (_, summary, detail) = denial(m.login("app", &jwt(projected("team-a", "app", now))).await);
    assert_eq!(summary, "permission denied");
    assert!(
        detail.contains("cannot reach the Kubernetes API server at https://127.0.0.1:1"),
        "{detail}"
    );
}

#[tokio::test]
async fn renewal_follows_the_role_and_refuses_once_it_is_gone() {
    let m = configured().await;
    let mut internal = Map::new();
    internal.insert("role".into(), json!("APP"));
    let renewal = LoginRenewal {
        policies: vec!["app".into()],
        metadata: Default::default(),
        internal,
        mount: m.mount.clone(),
    };
    let decision = m.method.renew(&renewal, &m.storage).await.unwrap();
    assert_eq!(
        (decision.ttl, decision.max_ttl, decision.period),
        (60, 120, 0)
    );
    m.write("role/app", json!({"token_ttl": 30})).await;
    assert_eq!(m.method.renew(&renewal, &m.storage).await.unwrap().ttl, 30);
    m.call(Operation::Delete, "role/app", json!({}))
        .await
        .unwrap();
    let (status, summary, _) = denial(m.method.renew(&renewal, &m.storage).await.unwrap_err());
    assert_eq!(
        (status, summary.as_str()),
        (500, "role APP does not exist during renewal")
    );
}

#[tokio::test]
async fn concurrent_updates_of_one_role_lose_nothing() {
    // Two updates of different fields, polled in turn: each reads the role and suspends on
    // its write, so without the method's write lock the second would write back the role as
    // it read it, before the first's change, and undo that change.
    let m = configured().await;
    for round in 1..=5u64 {
        let (a, b) = tokio::join!(
            m.call(
                Operation::Update,
                "role/app",
                json!({"token_num_uses": round})
            ),
            m.call(
                Operation::Update,
                "role/app",
                json!({"audience": format!("aud-{round}")})
            ),
        );
        a.unwrap();
        b.unwrap();
        let read = m
            .call(Operation::Read, "role/app", json!({}))
            .await
            .unwrap()
            .unwrap();
        let data = read.data.unwrap();
        assert_eq!(data["token_num_uses"], round, "round {round}");
        assert_eq!(data["audience"], format!("aud-{round}"), "round {round}");
    }
}

#[tokio::test]
async fn the_reviewer_jwt_is_stored_under_the_mount_but_never_read_back() {
    let m = configured().await;
    let read = m
        .call(Operation::Read, "config", json!({}))
        .await
        .unwrap()
        .unwrap();
    let data = read.data.unwrap();
    assert_eq!(data["token_reviewer_jwt_set"], true);
    assert!(
        !Value::Object(data)
            .to_string()
            .contains("reviewer.jwt.token")
    );
    let stored = m.storage.0.raw("config").unwrap();
    assert!(
        String::from_utf8(stored)
            .unwrap()
            .contains("reviewer.jwt.token"),
        "kept for the TokenReview"
    );
}
