//! `tresor-client`'s `tresor` provider against the real `tresor` binary (here, because only
//! this crate's tests see the built binary and the shared `common` helpers): token, JWT and
//! Kubernetes logins (the last against the FAKE Kubernetes API server), background renewal
//! and re-login at the max TTL, get/set/rotate/delete in the `{"value": …}` shape, the cache,
//! and no value or token in any error or `Debug`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;
use crate::support_kubernetes;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use common::{Server, raw};
use serde_json::{Value, json};
use tresor_azure::Env;
use tresor_client::{
    CacheOptions, CachedStore, EnvOverrides, JwtSource, Provider, SecretStore, SecretStoreError,
    SecretString, TresorAuth, TresorStore,
};

const ROOT: &str = "root-client-test";

/// The application's policy: its own secrets under `secret/apps/`.
const APP_POLICY: &str = r#"
path "secret/data/apps/*" { capabilities = ["create", "read", "update", "delete"] }
path "secret/metadata/apps/*" { capabilities = ["read", "delete"] }
"#;

async fn ok(server: &Server, method: &str, path: &str, body: Value) -> Value {
    let (status, answer) = raw(server, method, path, Some(ROOT), Some(body)).await;
    assert!(status < 300, "{method} {path}: {status} {answer}");
    answer
}

/// A dev server with the `app` policy.
async fn server(dir: &Path) -> Server {
    let server = Server::dev(dir, ROOT);
    ok(
        &server,
        "PUT",
        "sys/policies/acl/app",
        json!({"policy": APP_POLICY}),
    )
    .await;
    server
}

/// A token with the `app` policy and `ttl`.
async fn app_token(server: &Server, ttl: &str) -> String {
    ok(
        server,
        "POST",
        "auth/token/create",
        json!({"policies": ["app"], "ttl": ttl, "renewable": true, "explicit_max_ttl": "1h"}),
    )
    .await["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn token_store(server: &Server, token: &str) -> TresorStore {
    TresorStore::builder(&server.addr)
        .token(SecretString::from(token))
        .path_prefix("apps/")
        .build()
        .await
        .unwrap()
}

/// Polls `check` every 50 ms until it holds; fails after `limit`.
async fn eventually(limit: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_get_set_rotate_delete_in_the_bootstrap_shape() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let store = token_store(&server, &app_token(&server, "1h").await).await;
    let name = "instance-507f1f77bcf86cd799439011";

    assert!(store.get(name).await.unwrap_err().is_not_found());
    assert!(
        store
            .rotate(name, &SecretString::from("x"))
            .await
            .unwrap_err()
            .is_not_found(),
        "rotate needs an existing secret"
    );
    let v1 = store
        .set(name, &SecretString::from("registration-token-1"))
        .await
        .unwrap();
    assert_eq!(v1.as_str(), "1");
    // Stored as tresor bootstrap writes: {"value": …} at <mount>/data/<prefix><name>.
    let stored = ok(
        &server,
        "GET",
        &format!("secret/data/apps/{name}"),
        json!(null),
    )
    .await;
    assert_eq!(
        stored["data"]["data"],
        json!({"value": "registration-token-1"})
    );
    let read = store.get(name).await.unwrap();
    assert_eq!(
        (read.value.expose(), read.version.as_str()),
        ("registration-token-1", "1")
    );

    let rotation = store
        .rotate(name, &SecretString::from("registration-token-2"))
        .await
        .unwrap();
    assert_eq!(
        (rotation.previous.as_str(), rotation.current.as_str()),
        ("1", "2")
    );
    assert_eq!(
        store.get(name).await.unwrap().value.expose(),
        "registration-token-2"
    );
    // The previous version stays readable by number.
    let old = ok(
        &server,
        "GET",
        &format!("secret/data/apps/{name}?version=1"),
        json!(null),
    )
    .await;
    assert_eq!(old["data"]["data"]["value"], "registration-token-1");

    // A soft-deleted latest version can still be rotated (its number counts).
    ok(
        &server,
        "DELETE",
        &format!("secret/data/apps/{name}"),
        json!(null),
    )
    .await;
    assert!(store.get(name).await.unwrap_err().is_not_found());
    let rotation = store
        .rotate(name, &SecretString::from("registration-token-3"))
        .await
        .unwrap();
    assert_eq!(
        (rotation.previous.as_str(), rotation.current.as_str()),
        ("2", "3")
    );

    store.delete(name).await.unwrap();
    assert!(store.get(name).await.unwrap_err().is_not_found());
    let (status, _) = raw(
        &server,
        "GET",
        &format!("secret/metadata/apps/{name}"),
        Some(ROOT),
        None,
    )
    .await;
    assert_eq!(status, 404, "delete removes every version and the metadata");

    // Names are checked before anything is sent.
    for bad in ["../sys/x", "a//b", "/abs", "a b", "a?b"] {
        let err = store.get(bad).await.unwrap_err();
        assert!(
            matches!(
                err,
                SecretStoreError::InvalidName {
                    provider: "tresor",
                    ..
                }
            ),
            "{bad}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rotations_never_lose_an_update_the_losers_get_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let store = Arc::new(token_store(&server, &app_token(&server, "1h").await).await);
    store.set("raced", &SecretString::from("v0")).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .rotate("raced", &SecretString::from(format!("v{}", i + 1)))
                    .await
            })
        })
        .collect();
    let mut won = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(rotation) => won.push(rotation.current.as_str().parse::<u64>().unwrap()),
            Err(e) => assert!(e.is_conflict(), "{e}"),
        }
    }
    won.sort_unstable();
    // Every successful rotation wrote its own version: 2, 3, … with none overwritten blindly.
    let expected: Vec<u64> = (2..2 + won.len() as u64).collect();
    assert_eq!(won, expected);
    assert_eq!(
        store.get("raced").await.unwrap().version.as_str(),
        (1 + won.len()).to_string()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_token_is_renewed_in_the_background_until_the_store_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let token = app_token(&server, "3s").await;
    let issued = Instant::now();
    let store = token_store(&server, &token).await;
    assert_eq!(
        store.auth_status().ttl.map(|t| t.as_secs() <= 3),
        Some(true)
    );
    assert!(store.auth_status().renewable);

    eventually(
        Duration::from_secs(30),
        "two renewals past the first TTL",
        async || store.auth_status().renewals >= 2 && issued.elapsed() > Duration::from_secs(4),
    )
    .await;
    // Older than its TTL and still good: the renewals kept it alive.
    store
        .set("renewed", &SecretString::from("v"))
        .await
        .unwrap();
    let lookup = ok(
        &server,
        "POST",
        "auth/token/lookup",
        json!({"token": token}),
    )
    .await;
    assert!(
        lookup["data"]["last_renewal_time"].as_i64().unwrap_or(0) > 0,
        "{lookup}"
    );

    // Dropped: the renewal task stops, so the token runs out.
    drop(store);
    eventually(
        Duration::from_secs(20),
        "the token expires once the store is gone",
        async || {
            raw(
                &server,
                "POST",
                "auth/token/lookup",
                Some(ROOT),
                Some(json!({"token": token})),
            )
            .await
            .0 != 200
        },
    )
    .await;
}

/// A P-256 key made for the test; ES256 JWTs signed with it (the p256 crate signs).
struct JwtKey {
    key: p256::ecdsa::SigningKey,
}

impl JwtKey {
    fn generate() -> Self {
        Self {
            key: p256::ecdsa::SigningKey::random(&mut rand_core::OsRng),
        }
    }

    fn public_pem(&self) -> String {
        use p256::pkcs8::EncodePublicKey;
        self.key
            .verifying_key()
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .unwrap()
    }

    fn jwt(&self, claims: Value) -> String {
        use p256::ecdsa::signature::Signer;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let input = format!(
            "{}.{}",
            b64(json!({"alg": "ES256", "typ": "JWT"}).to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature: p256::ecdsa::Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", b64(&signature.to_bytes()))
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `auth/jwt` trusting `key`, with role `console` (policy `app`, `token_ttl`/`token_max_ttl`).
async fn jwt_auth(server: &Server, key: &JwtKey, ttl: &str, max_ttl: &str) {
    ok(server, "POST", "sys/auth/jwt", json!({"type": "jwt"})).await;
    ok(
        server,
        "POST",
        "auth/jwt/config",
        json!({"jwt_validation_pubkeys": [key.public_pem()]}),
    )
    .await;
    ok(
        server,
        "POST",
        "auth/jwt/role/console",
        json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": ["tresor-client"],
               "token_policies": ["app"], "token_ttl": ttl, "token_max_ttl": max_ttl}),
    )
    .await;
}

fn console_jwt(key: &JwtKey) -> String {
    let now = now();
    key.jwt(
        json!({"sub": "console-api", "aud": "tresor-client", "iat": now, "nbf": now - 5,
                    "exp": now + 3600}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_login_renews_then_logs_in_again_at_the_max_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let key = JwtKey::generate();
    jwt_auth(&server, &key, "2s", "5s").await;
    let jwt_file = dir.path().join("jwt");
    std::fs::write(&jwt_file, console_jwt(&key)).unwrap();

    let store = TresorStore::builder(&server.addr)
        .auth(TresorAuth::Jwt {
            mount: "jwt".into(),
            role: "console".into(),
            jwt: JwtSource::File(jwt_file),
        })
        .path_prefix("apps/")
        .build()
        .await
        .unwrap();
    assert_eq!(store.auth_status().method, "jwt");
    assert_eq!(store.auth_status().logins, 1);
    store
        .set("via-jwt", &SecretString::from("v1"))
        .await
        .unwrap();

    // 2 s tokens capped at 5 s: renewed while renewals give the full TTL, then a new login.
    let started = Instant::now();
    eventually(
        Duration::from_secs(40),
        "a renewal and then a second login",
        async || {
            let s = store.auth_status();
            s.renewals >= 1 && s.logins >= 2 && started.elapsed() > Duration::from_secs(6)
        },
    )
    .await;
    // Past the first token's max TTL, still working.
    assert_eq!(store.get("via-jwt").await.unwrap().value.expose(), "v1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_login_token_is_replaced_by_a_new_login_on_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let key = JwtKey::generate();
    jwt_auth(&server, &key, "1h", "2h").await;
    let store = TresorStore::builder(&server.addr)
        .auth(TresorAuth::Jwt {
            mount: "jwt".into(),
            role: "console".into(),
            jwt: JwtSource::Value(SecretString::from(console_jwt(&key))),
        })
        .path_prefix("apps/")
        .build()
        .await
        .unwrap();
    store.set("kept", &SecretString::from("v1")).await.unwrap();
    // Every token the jwt mount issued is revoked (an operator's revoke-prefix).
    ok(
        &server,
        "PUT",
        "sys/leases/revoke-prefix/auth/jwt",
        json!({}),
    )
    .await;
    // The request is refused, the token no longer looks itself up: log in again, retry.
    assert_eq!(store.get("kept").await.unwrap().value.expose(), "v1");
    assert_eq!(store.auth_status().logins, 2);
    // A genuine denial (a path outside the policy) does not log in again.
    let other = TresorStore::builder(&server.addr)
        .auth(TresorAuth::Jwt {
            mount: "jwt".into(),
            role: "console".into(),
            jwt: JwtSource::Value(SecretString::from(console_jwt(&key))),
        })
        .path_prefix("not-apps/")
        .build()
        .await
        .unwrap();
    assert!(other.get("x").await.unwrap_err().is_permission_denied());
    assert_eq!(other.auth_status().logins, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_jwt_login_names_the_role_and_never_the_jwt() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let key = JwtKey::generate();
    jwt_auth(&server, &key, "1h", "2h").await;
    let forged = console_jwt(&JwtKey::generate());
    let err = TresorStore::builder(&server.addr)
        .auth(TresorAuth::Jwt {
            mount: "jwt".into(),
            role: "console".into(),
            jwt: JwtSource::Value(SecretString::from(forged.as_str())),
        })
        .build()
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(
        matches!(err, SecretStoreError::Login { method: "jwt", .. }),
        "{text}"
    );
    assert!(text.contains("role console"), "{text}");
    let signature = forged.rsplit('.').next().unwrap();
    assert!(!text.contains(signature), "{text}");
    assert!(!text.contains(&forged[..40]), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_login_with_the_projected_service_account_token() {
    let dir = tempfile::tempdir().unwrap();
    let fake = support_kubernetes::FakeKube::start(dir.path());
    fake.namespace("console", json!({})).await;
    fake.namespace("vault", json!({})).await;
    fake.service_account("console", "console-api").await;
    fake.service_account("vault", "reviewer").await;
    fake.bind("system:auth-delegator", "vault", "reviewer")
        .await;
    let reviewer = fake.token("vault", "reviewer", &[], 7200).await;
    let server = server(dir.path()).await;
    ok(
        &server,
        "POST",
        "sys/auth/kubernetes",
        json!({"type": "kubernetes"}),
    )
    .await;
    ok(
        &server,
        "POST",
        "auth/kubernetes/config",
        json!({"kubernetes_host": fake.url, "kubernetes_ca_cert": fake.ca_pem,
               "disable_local_ca_jwt": true, "token_reviewer_jwt": reviewer}),
    )
    .await;
    ok(
        &server,
        "POST",
        "auth/kubernetes/role/console",
        json!({"bound_service_account_names": ["console-api"],
               "bound_service_account_namespaces": ["console"],
               "token_policies": ["app"], "token_ttl": "1h"}),
    )
    .await;
    let token_file = dir.path().join("sa-token");
    std::fs::write(
        &token_file,
        fake.token("console", "console-api", &[], 3600).await,
    )
    .unwrap();

    // From the environment, as a pod would configure it.
    let env = Env::from_pairs([
        ("SECRET_STORE_PROVIDER", "tresor"),
        ("VAULT_ADDR", server.addr.as_str()),
        ("TRESOR_AUTH_METHOD", "kubernetes"),
        ("TRESOR_AUTH_ROLE", "console"),
        ("TRESOR_KUBERNETES_TOKEN_FILE", token_file.to_str().unwrap()),
        ("TRESOR_PATH_PREFIX", "apps/"),
    ]);
    let store = tresor_client::from_env_with(&env, EnvOverrides::default())
        .await
        .unwrap();
    assert_eq!(store.provider(), Provider::Tresor);
    store
        .set("from-pod", &SecretString::from("pod-value"))
        .await
        .unwrap();
    let stored = ok(&server, "GET", "secret/data/apps/from-pod", json!(null)).await;
    assert_eq!(stored["data"]["data"]["value"], "pod-value");
    assert!(!format!("{store:?}").contains("pod-value"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_store_provider_tresor_from_the_environment_with_mount_and_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    ok(
        &server,
        "POST",
        "sys/mounts/kv2",
        json!({"type": "kv", "options": {"version": "2"}}),
    )
    .await;
    let token = app_token(&server, "1h").await;
    // The app policy is on secret/; this store writes to kv2/ with the root token.
    let env = Env::from_pairs([
        ("SECRET_STORE_PROVIDER", "tresor"),
        ("VAULT_ADDR", server.addr.as_str()),
        ("VAULT_TOKEN", ROOT),
        ("TRESOR_KV_MOUNT", "kv2"),
        ("TRESOR_PATH_PREFIX", "console/"),
    ]);
    let store = tresor_client::from_env_with(&env, EnvOverrides::default())
        .await
        .unwrap();
    store
        .set("db-uri", &SecretString::from("postgres://x"))
        .await
        .unwrap();
    let stored = ok(&server, "GET", "kv2/data/console/db-uri", json!(null)).await;
    assert_eq!(stored["data"]["data"]["value"], "postgres://x");

    // An unknown provider lists the valid ones; a token without access is a 403.
    let env = Env::from_pairs([("SECRET_STORE_PROVIDER", "vault")]);
    let err = tresor_client::from_env_with(&env, EnvOverrides::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("tresor, azure-keyvault, noop"),
        "{err}"
    );
    let env = Env::from_pairs([
        ("SECRET_STORE_PROVIDER", "tresor"),
        ("VAULT_ADDR", server.addr.as_str()),
        ("VAULT_TOKEN", token.as_str()),
        ("TRESOR_KV_MOUNT", "kv2"),
    ]);
    let store = tresor_client::from_env_with(&env, EnvOverrides::default())
        .await
        .unwrap();
    let err = store.get("db-uri").await.unwrap_err();
    assert!(err.is_permission_denied(), "{err}");
    assert!(!format!("{err} {err:?}").contains(&token), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_serves_from_memory_refreshes_and_rereads_on_a_consumers_auth_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let store: Arc<dyn SecretStore> =
        Arc::new(token_store(&server, &app_token(&server, "1h").await).await);
    let write = async |value: &str| {
        ok(
            &server,
            "POST",
            "secret/data/apps/instance-c1",
            json!({"data": {"value": value}}),
        )
        .await;
    };
    write("token-1").await;

    let cache = CachedStore::new(
        store.clone(),
        CacheOptions {
            ttl: Duration::from_secs(3600),
            refresh_interval: None,
        },
    );
    assert_eq!(
        cache.get("instance-c1").await.unwrap().value.expose(),
        "token-1"
    );
    write("token-2").await;
    // A hit: the rotation is not seen yet.
    let cached = cache.get("instance-c1").await.unwrap();
    assert_eq!(
        (cached.value.expose(), cached.version.as_str()),
        ("token-1", "1")
    );
    assert_eq!(
        cache.stats(),
        tresor_client::CacheStats { hits: 1, reads: 1 }
    );

    // invalidate: the next get reads through.
    cache.invalidate("instance-c1");
    assert_eq!(
        cache.get("instance-c1").await.unwrap().value.expose(),
        "token-2"
    );

    // The downstream service answered 401 with token-2: re-read at once.
    write("token-3").await;
    let fresh = cache.refresh_on_auth_error("instance-c1").await.unwrap();
    assert!(fresh.changed);
    assert_eq!(
        (fresh.secret.value.expose(), fresh.secret.version.as_str()),
        ("token-3", "3")
    );
    assert!(
        !cache
            .refresh_on_auth_error("instance-c1")
            .await
            .unwrap()
            .changed
    );

    // Writes go through and are cached as written.
    let rotation = cache
        .rotate("instance-c1", &SecretString::from("token-4"))
        .await
        .unwrap();
    assert_eq!(rotation.current.as_str(), "4");
    let before = cache.stats().reads;
    assert_eq!(
        cache.get("instance-c1").await.unwrap().value.expose(),
        "token-4"
    );
    assert_eq!(cache.stats().reads, before);

    // Periodic refresh: a rotation behind the cache's back shows up without any call.
    let refreshing = CachedStore::new(
        store.clone(),
        CacheOptions {
            ttl: Duration::from_secs(3600),
            refresh_interval: Some(Duration::from_millis(100)),
        },
    );
    assert_eq!(
        refreshing.get("instance-c1").await.unwrap().value.expose(),
        "token-4"
    );
    write("token-5").await;
    eventually(
        Duration::from_secs(10),
        "the background refresh",
        async || refreshing.get("instance-c1").await.unwrap().value.expose() == "token-5",
    )
    .await;
    // Gone at the source: the refresh drops it, get answers not found.
    ok(
        &server,
        "DELETE",
        "secret/metadata/apps/instance-c1",
        json!(null),
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "the refresh drops a deleted secret",
        async || {
            refreshing
                .get("instance-c1")
                .await
                .is_err_and(|e| e.is_not_found())
        },
    )
    .await;

    // A TTL of zero: every get reads through.
    let short = CachedStore::new(
        store,
        CacheOptions {
            ttl: Duration::ZERO,
            refresh_interval: None,
        },
    );
    write("token-6").await;
    short.get("instance-c1").await.unwrap();
    assert_eq!(
        short.get("instance-c1").await.unwrap().value.expose(),
        "token-6"
    );
    assert_eq!(short.stats().reads, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_value_or_token_appears_in_any_error_or_debug_output() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let token = app_token(&server, "1h").await;
    let store = token_store(&server, &token).await;
    let secret_values = [
        "9876543210123",
        "hunter2-in-another-field",
        "hunter2-cached",
    ];
    // A value that is not a string (serde's own message would quote the number), a secret
    // without the `value` field, and a normal one.
    ok(
        &server,
        "POST",
        "secret/data/apps/numeric",
        json!({"data": {"value": 9876543210123u64}}),
    )
    .await;
    ok(
        &server,
        "POST",
        "secret/data/apps/other-shape",
        json!({"data": {"password": "hunter2-in-another-field"}}),
    )
    .await;
    store
        .set("cached", &SecretString::from("hunter2-cached"))
        .await
        .unwrap();

    let mut texts = Vec::new();
    let numeric = store.get("numeric").await.unwrap_err();
    assert!(
        matches!(numeric, SecretStoreError::InvalidResponse { .. }),
        "{numeric}"
    );
    let other = store.get("other-shape").await.unwrap_err();
    assert!(other.to_string().contains("no `value` field"), "{other}");
    for e in [numeric, other] {
        texts.push(format!("{e} {e:?}"));
    }
    let cache = CachedStore::new(Arc::new(store), CacheOptions::default());
    let secret = cache.get("cached").await.unwrap();
    texts.push(format!("{secret:?} {cache:?}"));
    texts.push(format!(
        "{:?}",
        TresorAuth::Token(SecretString::from(token.as_str()))
    ));
    for text in &texts {
        for value in secret_values.iter().chain([&token.as_str()]) {
            assert!(!text.contains(value), "{value} in {text}");
        }
    }
    assert!(texts.iter().any(|t| t.contains("[redacted]")));
}
