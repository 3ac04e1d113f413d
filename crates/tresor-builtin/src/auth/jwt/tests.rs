//! The method through its `handle`: config and role endpoints, and logins with tokens signed
//! by test keys (local PEM keys; the JWKS paths are tested in `jwks` and against a real
//! provider in `crates/tresor/tests/server/auth_jwt.rs`).

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use hmac::Mac as _;
use serde_json::{Value, json};
use tresor_sdk::auth::AuthMethod as _;
use tresor_sdk::engine::{EngineError, MountInfo, Operation, Request};
use tresor_sdk::secret::SecretBytes;
use tresor_sdk::storage::{Storage, StorageViewError, ViewOp};

use super::keys::test_keys::{TestKey, sign_with};
use super::*;

const NOW: i64 = 1_800_000_000;

#[derive(Debug)]
struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> i64 {
        NOW * 1_000_000_000
    }
}

#[derive(Default)]
struct Mem(Mutex<BTreeMap<String, Vec<u8>>>);

#[async_trait]
impl Storage for Mem {
    async fn get(&self, key: &str) -> Result<Option<SecretBytes>, StorageViewError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(key)
            .map(|v| SecretBytes::copy_from(v)))
    }
    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StorageViewError> {
        self.0.lock().unwrap().insert(key.into(), value.to_vec());
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<(), StorageViewError> {
        self.0.lock().unwrap().remove(key);
        Ok(())
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageViewError> {
        let map = self.0.lock().unwrap();
        let mut out: Vec<String> = map
            .keys()
            .filter_map(|k| k.strip_prefix(prefix))
            .map(|rest| match rest.split_once('/') {
                Some((dir, _)) => format!("{dir}/"),
                None => rest.to_owned(),
            })
            .collect();
        out.dedup();
        Ok(out)
    }
    async fn transaction(&self, _ops: Vec<ViewOp>) -> Result<(), StorageViewError> {
        Ok(())
    }
}

struct Harness {
    method: JwtAuth,
    storage: Mem,
    key: TestKey,
}

fn request(op: Operation, path: &str, body: Value) -> Request {
    Request {
        operation: op,
        path: path.into(),
        data: body.as_object().cloned().unwrap_or_default(),
        query: Vec::new(),
        content_type: None,
        mount: Arc::new(MountInfo {
            path: "jwt/".into(),
            max_lease_ttl: std::time::Duration::from_secs(32 * 24 * 3600),
            ..MountInfo::default()
        }),
        client_token_key: String::new(),
        display_name: String::new(),
        remote_addr: "10.1.2.3".parse().ok(),
    }
}

impl Harness {
    async fn new() -> Harness {
        let h = Harness {
            method: JwtAuth::new(Arc::new(FixedClock)),
            storage: Mem::default(),
            key: TestKey::rsa(),
        };
        h.call(
            Operation::Update,
            "config",
            json!({
                "jwt_validation_pubkeys": [h.key.public_pem()],
                "bound_issuer": "https://gitea.example",
            }),
        )
        .await
        .unwrap();
        h.call(Operation::Create, "role/gitea_cicd_app", json!({
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": "tresor",
            "bound_claims": {"repository": "org/app", "ref": ["refs/heads/main", "refs/heads/release"]},
            "claim_mappings": {"repository": "repository", "ref": "ref", "/context/workflow": "workflow"},
            "groups_claim": "groups",
            "token_policies": "app,app-ops",
            "token_ttl": "10m",
        }))
        .await
        .unwrap();
        h
    }

    async fn call(&self, op: Operation, path: &str, body: Value) -> EngineResult<Option<Response>> {
        self.method
            .handle(&request(op, path, body), &self.storage)
            .await
    }

    async fn login(&self, jwt: &str) -> EngineResult<Option<Response>> {
        self.call(
            Operation::Update,
            "login",
            json!({"role": "gitea_cicd_app", "jwt": jwt}),
        )
        .await
    }
}

fn claims() -> Value {
    json!({
        "iss": "https://gitea.example",
        "aud": "tresor",
        "sub": "repo:org/app:ref:refs/heads/main",
        "repository": "org/app",
        "ref": "refs/heads/main",
        "context": {"workflow": "deploy.yml"},
        "groups": ["ci", "deployers"],
        "iat": NOW - 10,
        "exp": NOW + 300,
    })
}

fn with(mut c: Value, k: &str, v: Value) -> Value {
    c[k] = v;
    c
}

fn denial(r: EngineResult<Option<Response>>) -> tresor_sdk::engine::Denial {
    match r {
        Err(EngineError::Denied(d)) => d,
        other => panic!("expected a denial, got {other:?}"),
    }
}

fn invalid(r: EngineResult<Option<Response>>) -> String {
    match r {
        Err(EngineError::InvalidRequest(m)) => m,
        other => panic!("expected a 400, got {other:?}"),
    }
}

#[tokio::test]
async fn a_valid_token_logs_in_with_the_roles_policies_metadata_and_groups() {
    let h = Harness::new().await;
    let jwt = h.key.token(None, &claims());
    let login = h.login(&jwt).await.unwrap().unwrap().auth.unwrap();
    assert_eq!(login.token.policies, ["app", "app-ops"]);
    assert_eq!(login.token.ttl, 600);
    assert_eq!(login.alias.name, "repo:org/app:ref:refs/heads/main");
    assert_eq!(login.display_name, login.alias.name);
    assert_eq!(
        login.metadata,
        BTreeMap::from([
            ("ref".to_owned(), "refs/heads/main".to_owned()),
            ("repository".to_owned(), "org/app".to_owned()),
            ("role".to_owned(), "gitea_cicd_app".to_owned()),
            ("workflow".to_owned(), "deploy.yml".to_owned()),
        ])
    );
    assert_eq!(login.group_aliases, ["ci", "deployers"]);
    assert_eq!(login.internal["role"], "gitea_cicd_app");
    // The list of allowed refs: the second one matches too.
    let jwt = h
        .key
        .token(None, &with(claims(), "ref", json!("refs/heads/release")));
    assert!(h.login(&jwt).await.is_ok());
    // The renewal asks the role again.
    let renewal = tresor_sdk::auth::LoginRenewal {
        policies: login.token.policies.clone(),
        metadata: login.metadata.clone(),
        internal: login.internal.clone(),
        mount: Arc::new(MountInfo::default()),
    };
    assert_eq!(h.method.renew(&renewal, &h.storage).await.unwrap().ttl, 600);
    h.call(Operation::Delete, "role/gitea_cicd_app", json!({}))
        .await
        .unwrap();
    assert!(h.method.renew(&renewal, &h.storage).await.is_err());
}

#[tokio::test]
async fn unsigned_hmac_tampered_and_foreign_tokens_are_refused() {
    let h = Harness::new().await;
    let unverified = "error validating token: error verifying token signature: no known key successfully validated the token signature";
    // alg: none with an empty signature.
    let none = sign_with(&json!({"alg": "none", "typ": "JWT"}), &claims(), |_| {
        Vec::new()
    });
    let d = denial(h.login(&none).await);
    assert_eq!((d.status, d.summary.as_str()), (400, unverified));
    assert!(d.detail.contains("'none'"), "{d:?}");
    // HS256 "signed" with the public key as the HMAC secret: the classic key confusion.
    let pem = h.key.public_pem();
    let hs = sign_with(&json!({"alg": "HS256", "typ": "JWT"}), &claims(), |m| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(pem.as_bytes()).unwrap();
        mac.update(m);
        mac.finalize().into_bytes().to_vec()
    });
    let d = denial(h.login(&hs).await);
    assert_eq!(d.summary, unverified);
    assert!(d.detail.contains("symmetric"), "{d:?}");
    // The payload swapped after signing.
    let good = h.key.token(None, &claims());
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[1] = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        with(claims(), "repository", json!("org/other")).to_string(),
    );
    let d = denial(h.login(&parts.join(".")).await);
    assert_eq!(d.summary, unverified);
    // A token signed by a key the mount does not know.
    let foreign = TestKey::rsa().token(None, &claims());
    let d = denial(h.login(&foreign).await);
    assert!(d.detail.contains("foreign key"), "{d:?}");
    // An ES256 token against an RSA-only key set.
    let es = TestKey::es256().token(None, &claims());
    let d = denial(h.login(&es).await);
    assert!(d.detail.contains("type alg 'ES256' needs"), "{d:?}");
    // Nothing refused here repeats the token.
    for t in [&none, &hs, &foreign] {
        let sig = t.rsplit('.').next().unwrap();
        let d = denial(h.login(t).await);
        assert!(sig.is_empty() || !d.message(true).contains(sig));
        assert!(!d.message(true).contains(t.as_str()));
    }
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_name_the_time_and_leeway() {
    let h = Harness::new().await;
    let d = denial(
        h.login(&h.key.token(None, &with(claims(), "exp", json!(NOW - 120))))
            .await,
    );
    assert_eq!(
        d.summary,
        "error validating token: invalid expiration time (exp) claim: token is expired"
    );
    assert_eq!(
        d.detail,
        "token expired at 2027-01-15T07:58:00Z (leeway 60s)"
    );
    // Inside the default clock skew leeway, it still passes.
    assert!(
        h.login(&h.key.token(None, &with(claims(), "exp", json!(NOW - 30))))
            .await
            .is_ok()
    );
    let d = denial(
        h.login(&h.key.token(None, &with(claims(), "nbf", json!(NOW + 600))))
            .await,
    );
    assert_eq!(
        d.summary,
        "error validating token: invalid not before (nbf) claim: token not yet valid"
    );
    // A role with a wider leeway accepts the same token.
    h.call(
        Operation::Update,
        "role/gitea_cicd_app",
        json!({"role_type": "jwt", "clock_skew_leeway": "15m"}),
    )
    .await
    .unwrap();
    assert!(
        h.login(&h.key.token(None, &with(claims(), "nbf", json!(NOW + 600))))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn issuer_audience_and_bound_claims_mismatches_name_the_binding() {
    let h = Harness::new().await;
    let d = denial(
        h.login(
            &h.key
                .token(None, &with(claims(), "iss", json!("https://evil"))),
        )
        .await,
    );
    assert_eq!(
        d.summary,
        "error validating token: invalid issuer (iss) claim"
    );
    let d = denial(
        h.login(&h.key.token(None, &with(claims(), "aud", json!(["x", "y"]))))
            .await,
    );
    assert_eq!(
        d.detail,
        "audience mismatch: token has [x, y], role bound_audiences [tresor]"
    );
    let d = denial(
        h.login(
            &h.key
                .token(None, &with(claims(), "ref", json!("refs/heads/dev"))),
        )
        .await,
    );
    assert_eq!(
        d.summary,
        "error validating claims: claim \"ref\" does not match any associated bound claim values"
    );
    assert_eq!(
        d.detail,
        "claim 'ref' value 'refs/heads/dev' does not match bound_claims [refs/heads/main, refs/heads/release]"
    );
    let mut c = claims();
    c.as_object_mut().unwrap().remove("repository");
    let d = denial(h.login(&h.key.token(None, &c)).await);
    assert_eq!(
        d.summary,
        "error validating claims: claim \"repository\" is missing"
    );
    // Glob bound claims.
    h.call(
        Operation::Update,
        "role/gitea_cicd_app",
        json!({
            "role_type": "jwt", "bound_claims_type": "glob",
            "bound_claims": {"repository": "org/*", "ref": "refs/heads/*"},
        }),
    )
    .await
    .unwrap();
    let jwt = h
        .key
        .token(None, &with(claims(), "ref", json!("refs/heads/feature-x")));
    assert!(h.login(&jwt).await.is_ok());
    let d = denial(
        h.login(
            &h.key
                .token(None, &with(claims(), "repository", json!("else/app"))),
        )
        .await,
    );
    assert_eq!(
        d.detail,
        "claim 'repository' value 'else/app' does not match bound_claims (glob) [org/*]"
    );
    // A role without bound audiences refuses tokens that carry one.
    h.call(Operation::Create, "role/sub_only", json!({
        "role_type": "jwt", "user_claim": "sub", "bound_subject": "repo:org/app:ref:refs/heads/main",
    }))
    .await
    .unwrap();
    let r = h
        .call(
            Operation::Update,
            "login",
            json!({"role": "sub_only", "jwt": h.key.token(None, &claims())}),
        )
        .await;
    assert_eq!(
        denial(r).summary,
        "audience claim found in JWT but no audiences bound to the role"
    );
}

#[tokio::test]
async fn login_errors_without_a_binding_keep_openbaos_wording() {
    let h = Harness::new().await;
    let jwt = h.key.token(None, &claims());
    assert_eq!(
        invalid(
            h.call(Operation::Update, "login", json!({"jwt": jwt}))
                .await
        ),
        "missing role"
    );
    assert_eq!(
        invalid(
            h.call(
                Operation::Update,
                "login",
                json!({"role": "nope", "jwt": jwt})
            )
            .await
        ),
        "role \"nope\" could not be found"
    );
    assert_eq!(
        invalid(
            h.call(
                Operation::Update,
                "login",
                json!({"role": "gitea_cicd_app"})
            )
            .await
        ),
        "missing token"
    );
    h.call(Operation::Create, "role/web", json!({"user_claim": "sub", "allowed_redirect_uris": "http://localhost:8250/oidc/callback"}))
        .await
        .unwrap();
    assert_eq!(
        invalid(
            h.call(
                Operation::Update,
                "login",
                json!({"role": "web", "jwt": jwt})
            )
            .await
        ),
        "role with oidc role_type is not allowed"
    );
    // default_role stands in for a missing role.
    h.call(
        Operation::Update,
        "config",
        json!({
            "jwt_validation_pubkeys": h.key.public_pem(), "default_role": "GITEA_CICD_APP",
            "bound_issuer": "https://gitea.example",
        }),
    )
    .await
    .unwrap();
    assert!(
        h.call(Operation::Update, "login", json!({"jwt": jwt}))
            .await
            .is_ok()
    );
    // token_bound_cidrs: 403 naming the address.
    h.call(
        Operation::Update,
        "role/gitea_cicd_app",
        json!({"role_type": "jwt", "token_bound_cidrs": "192.168.0.0/16"}),
    )
    .await
    .unwrap();
    let d = denial(h.login(&jwt).await);
    assert_eq!((d.status, d.summary.as_str()), (403, "permission denied"));
    assert!(d.detail.contains("10.1.2.3"), "{d:?}");
}

#[tokio::test]
async fn config_needs_exactly_one_key_source_and_hides_the_client_secret() {
    let h = Harness::new().await;
    let one_of = "exactly one of 'jwt_validation_pubkeys', 'jwks_url', 'jwks_pairs', 'oidc_discovery_url', or 'provider_config' must be set";
    assert_eq!(
        invalid(h.call(Operation::Update, "config", json!({})).await),
        one_of
    );
    let both = json!({"jwt_validation_pubkeys": h.key.public_pem(), "jwks_url": "http://127.0.0.1:9/jwks"});
    assert_eq!(
        invalid(h.call(Operation::Update, "config", both).await),
        one_of
    );
    assert_eq!(
        invalid(
            h.call(
                Operation::Update,
                "config",
                json!({"jwt_validation_pubkeys": "garbage"})
            )
            .await
        ),
        "error parsing public key: data does not contain any valid public keys"
    );
    assert_eq!(
        invalid(
            h.call(
                Operation::Update,
                "config",
                json!({"jwt_validation_pubkeys": h.key.public_pem(), "jwt_supported_algs": "HS256"})
            )
            .await
        ),
        "invalid jwt_supported_algs: unsupported signing algorithm \"HS256\""
    );
    assert_eq!(
        invalid(
            h.call(
                Operation::Update,
                "config",
                json!({"jwt_validation_pubkeys": h.key.public_pem(), "oidc_client_id": "x"})
            )
            .await
        ),
        "both 'oidc_client_id' and 'oidc_client_secret' must be set for OIDC"
    );
    assert_eq!(
        invalid(
            h.call(
                Operation::Update,
                "config",
                json!({"jwks_url": "http://127.0.0.1:9/jwks"})
            )
            .await
        ),
        "error checking jwks URL"
    );
    let warned = h
        .call(
            Operation::Update,
            "config",
            json!({"jwks_url": "http://127.0.0.1:9/jwks", "skip_jwks_validation": true}),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(warned.warnings, ["error checking jwks URL"]);
    let read = h
        .call(Operation::Read, "config", json!({}))
        .await
        .unwrap()
        .unwrap();
    let data = read.data.unwrap();
    assert_eq!(data["jwks_url"], "http://127.0.0.1:9/jwks");
    assert_eq!(data["status"], "valid");
    assert!(!data.contains_key("oidc_client_secret"));
    assert_eq!(data["namespace_in_state"], true);
}

#[tokio::test]
async fn roles_validate_like_openbao_and_read_back() {
    let h = Harness::new().await;
    let w = |body: Value| h.call(Operation::Create, "role/r", body);
    assert_eq!(
        invalid(w(json!({"role_type": "x"})).await),
        "invalid 'role_type': x"
    );
    assert_eq!(
        invalid(w(json!({"role_type": "jwt"})).await),
        "a user claim must be defined on the role"
    );
    assert_eq!(
        invalid(w(json!({"role_type": "jwt", "user_claim": "sub"})).await),
        "must have at least one bound constraint when creating/updating a role"
    );
    assert_eq!(
        invalid(w(json!({"user_claim": "sub"})).await),
        "'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified."
    );
    assert_eq!(
        invalid(w(json!({"role_type": "jwt", "user_claim": "sub", "bound_subject": "s", "bound_claims_type": "regex"})).await),
        "invalid 'bound_claims_type': regex"
    );
    assert_eq!(
        invalid(w(json!({"role_type": "jwt", "user_claim": "sub", "bound_subject": "s", "bound_claims_type": "glob", "bound_claims": {"a": 1}})).await),
        "claim is not a string: 1"
    );
    assert_eq!(
        invalid(w(json!({"role_type": "jwt", "user_claim": "sub", "bound_subject": "s", "claim_mappings": {"a": "role"}})).await),
        "metadata key \"role\" is reserved and may not be a mapping destination"
    );
    assert_eq!(
        invalid(w(json!({"role_type": "jwt", "user_claim": "sub", "bound_subject": "s", "claim_mappings": {"a": "x", "b": "x"}})).await),
        "multiple keys are mapped to metadata key \"x\""
    );
    w(json!({"role_type": "jwt", "user_claim": "sub", "bound_subject": "s", "policies": "a,b", "ttl": 60}))
        .await
        .unwrap();
    let data = h
        .call(Operation::Read, "role/R", json!({}))
        .await
        .unwrap()
        .unwrap()
        .data
        .unwrap();
    assert_eq!(data["token_policies"], json!(["a", "b"]));
    assert_eq!(
        data["policies"],
        json!(["a", "b"]),
        "legacy names are echoed"
    );
    assert_eq!(data["ttl"], 60);
    assert_eq!(data["bound_claims_type"], "string");
    assert_eq!(data["callback_mode"], "client");
    assert_eq!(data["expiration_leeway"], 0);
    let listed = h
        .call(Operation::List, "role/", json!({}))
        .await
        .unwrap()
        .unwrap()
        .data
        .unwrap();
    assert_eq!(listed["keys"], json!(["gitea_cicd_app", "r"]));
    assert!(matches!(
        h.call(Operation::Read, "role/bad name", json!({})).await,
        Err(EngineError::UnsupportedPath)
    ));
}

#[tokio::test]
async fn oidc_endpoints_refuse_a_mount_without_an_oidc_client() {
    let h = Harness::new().await;
    let r = h
        .call(Operation::Update, "oidc/auth_url", json!({"role": "gitea_cicd_app", "redirect_uri": "http://localhost:8250/oidc/callback"}))
        .await;
    assert_eq!(invalid(r), "OIDC login is not configured for this mount");
    let d = denial(
        h.call(
            Operation::Read,
            "oidc/callback",
            json!({"state": "st_x", "code": "c"}),
        )
        .await,
    );
    assert_eq!(
        d.summary,
        "OpenBao login failed. Expired or missing OAuth state."
    );
    assert_eq!(h.method.pending.len(), 0);
}
