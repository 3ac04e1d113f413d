//! Rate-limit quotas at work against the real binary: role quotas on AppRole, Kubernetes and
//! JWT logins (the role resolved from the login body), exempt paths as prefixes with `!`
//! exceptions, `Retry-After` only with the response headers enabled, and quotas following
//! `sys/remount` (also after a restart).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use common::{Server, raw};
use serde_json::{Value, json};

const ROOT: &str = "quotas-root-3b7e";

/// A public key for a JWT mount's config (the test never signs anything: role resolution
/// runs before the login and needs only a configured mount and an existing role).
const P256_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEgVPYEKR2AwEfe6dTp74K+CZs0znL\nRnqsN/5cFIMP6pf1iCLO8hKN6kcpsFBR5Jc2ieBM/R4fLRRKZj8ODXSpyA==\n-----END PUBLIC KEY-----\n";

async fn ok(server: &Server, method: &str, path: &str, body: Value) -> Value {
    let (s, b) = raw(server, method, path, Some(ROOT), Some(body)).await;
    assert!(s < 300, "{method} {path}: {s} {b}");
    b
}

async fn login(server: &Server, mount: &str, body: Value) -> u16 {
    raw(
        server,
        "POST",
        &format!("auth/{mount}/login"),
        None,
        Some(body),
    )
    .await
    .0
}

/// One role quota per method: the quota's role is limited to one login an hour, other
/// roles on the same mount are not limited at all.
#[tokio::test(flavor = "multi_thread")]
async fn role_quotas_limit_the_logins_of_their_role_only() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    for (path, kind) in [
        ("approle", "approle"),
        ("kubernetes", "kubernetes"),
        ("jwt", "jwt"),
    ] {
        ok(
            &server,
            "POST",
            &format!("sys/auth/{path}"),
            json!({"type": kind}),
        )
        .await;
    }

    // AppRole: the role comes from role_id.
    for role in ["limited", "free"] {
        ok(
            &server,
            "POST",
            &format!("auth/approle/role/{role}"),
            json!({"token_ttl": "1h"}),
        )
        .await;
    }
    let mut creds = std::collections::BTreeMap::new();
    for role in ["limited", "free"] {
        let id = ok(
            &server,
            "GET",
            &format!("auth/approle/role/{role}/role-id"),
            Value::Null,
        )
        .await;
        let secret = ok(
            &server,
            "POST",
            &format!("auth/approle/role/{role}/secret-id"),
            json!({}),
        )
        .await;
        creds.insert(
            role,
            json!({"role_id": id["data"]["role_id"], "secret_id": secret["data"]["secret_id"]}),
        );
    }
    ok(
        &server,
        "PUT",
        "sys/quotas/rate-limit/approle-limited",
        json!({"rate": 1, "interval": "1h", "path": "auth/approle/", "role": "limited"}),
    )
    .await;
    assert_eq!(
        login(&server, "approle", creds["limited"].clone()).await,
        200
    );
    assert_eq!(
        login(&server, "approle", creds["limited"].clone()).await,
        429
    );
    // The role is resolved from role_id alone: a wrong secret_id is still that role's login.
    let wrong = json!({"role_id": creds["limited"]["role_id"], "secret_id": "wrong"});
    assert_eq!(login(&server, "approle", wrong).await, 429);
    for _ in 0..3 {
        assert_eq!(login(&server, "approle", creds["free"].clone()).await, 200);
    }
    // No role, an unknown role_id, a body that is not JSON: no role, not limited.
    assert_eq!(
        login(
            &server,
            "approle",
            json!({"role_id": "nope", "secret_id": "x"})
        )
        .await,
        400
    );
    let (s, _) = common::send(
        &server,
        "POST",
        "auth/approle/login",
        None,
        "application/json",
        Some(b"[1,2]".to_vec()),
    )
    .await;
    assert_eq!(s, 400);

    // Kubernetes: the `role` field, when the role exists. The logins themselves fail (no
    // cluster is configured), but each one is counted before it runs.
    for role in ["limited", "free"] {
        ok(
            &server,
            "POST",
            &format!("auth/kubernetes/role/{role}"),
            json!({"bound_service_account_names": ["app"], "bound_service_account_namespaces": ["default"]}),
        )
        .await;
    }
    ok(
        &server,
        "PUT",
        "sys/quotas/rate-limit/kube-limited",
        json!({"rate": 1, "interval": "1h", "path": "auth/kubernetes", "role": "limited"}),
    )
    .await;
    let first = login(
        &server,
        "kubernetes",
        json!({"role": "limited", "jwt": "x"}),
    )
    .await;
    assert_ne!(first, 429);
    assert_eq!(
        login(
            &server,
            "kubernetes",
            json!({"role": "limited", "jwt": "x"})
        )
        .await,
        429
    );
    for _ in 0..3 {
        assert_ne!(
            login(&server, "kubernetes", json!({"role": "free", "jwt": "x"})).await,
            429
        );
        assert_ne!(
            login(&server, "kubernetes", json!({"role": "ghost", "jwt": "x"})).await,
            429
        );
    }

    // JWT: `role`, or the mount's default_role.
    ok(
        &server,
        "POST",
        "auth/jwt/config",
        json!({"jwt_validation_pubkeys": [P256_PUBLIC], "default_role": "limited"}),
    )
    .await;
    for role in ["limited", "free"] {
        ok(
            &server,
            "POST",
            &format!("auth/jwt/role/{role}"),
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": ["tresor"]}),
        )
        .await;
    }
    ok(
        &server,
        "PUT",
        "sys/quotas/rate-limit/jwt-limited",
        json!({"rate": 1, "interval": "1h", "path": "auth/jwt/", "role": "limited"}),
    )
    .await;
    assert_ne!(
        login(&server, "jwt", json!({"role": "limited", "jwt": "x"})).await,
        429
    );
    assert_eq!(
        login(&server, "jwt", json!({"jwt": "x"})).await,
        429,
        "default_role"
    );
    for _ in 0..3 {
        assert_ne!(
            login(&server, "jwt", json!({"role": "free", "jwt": "x"})).await,
            429
        );
    }
    // Hostile role names resolve no role (and never reach storage as a path).
    for (mount, role) in [
        ("kubernetes", json!("../../limited")),
        ("kubernetes", json!(["limited"])),
        ("jwt", json!("../limited")),
        ("jwt", json!({"a": 1})),
    ] {
        for _ in 0..2 {
            let s = login(&server, mount, json!({"role": role, "jwt": "x"})).await;
            assert!(s != 429 && s < 500, "{mount} {role}: {s}");
        }
    }

    // A mount quota beside a role quota still limits the other roles' requests.
    ok(
        &server,
        "PUT",
        "sys/quotas/rate-limit/approle-mount",
        json!({"rate": 1, "interval": "1h", "path": "auth/approle/"}),
    )
    .await;
    assert_eq!(login(&server, "approle", creds["free"].clone()).await, 200);
    assert_eq!(login(&server, "approle", creds["free"].clone()).await, 429);
}

#[tokio::test(flavor = "multi_thread")]
async fn exempt_paths_are_prefixes_with_exceptions_and_retry_after_needs_the_headers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let client = common::http();
    let get = async |path: &str| {
        client
            .get(server.url(path))
            .header("X-Vault-Token", ROOT)
            .send()
            .await
            .unwrap()
    };
    ok(
        &server,
        "PUT",
        "sys/quotas/rate-limit/cubby",
        json!({"rate": 1, "interval": "1h", "path": "cubbyhole"}),
    )
    .await;
    ok(
        &server,
        "PUT",
        "sys/quotas/config",
        json!({"rate_limit_exempt_paths": ["cubbyhole/open", "!cubbyhole/open/closed", "cubbyhole/glob*"]}),
    )
    .await;
    assert_eq!(get("cubbyhole/x").await.status(), 404);
    let refused = get("cubbyhole/x").await;
    assert_eq!(refused.status(), 429);
    assert!(
        refused.headers().get("retry-after").is_none(),
        "no rate-limit header without enable_rate_limit_response_headers"
    );
    for path in [
        "cubbyhole/open",
        "cubbyhole/open/a",
        "cubbyhole/openly",
        "cubbyhole/globbed/x",
    ] {
        for _ in 0..2 {
            assert_eq!(get(path).await.status(), 404, "{path} is exempt");
        }
    }
    assert_eq!(
        get("cubbyhole/open/closed/x").await.status(),
        429,
        "the exception"
    );

    ok(
        &server,
        "PUT",
        "sys/quotas/config",
        json!({"enable_rate_limit_response_headers": true}),
    )
    .await;
    let refused = get("cubbyhole/x").await;
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3500..=3600).contains(&retry), "{retry}");
    assert_eq!(refused.headers()["x-ratelimit-limit"], "1");
    assert_eq!(refused.headers()["x-ratelimit-remaining"], "0");

    // A block: the refusal that starts it has the numbers; later ones Retry-After alone.
    ok(
        &server,
        "PUT",
        "sys/quotas/rate-limit/blocky",
        json!({"rate": 1, "interval": "1h", "block_interval": "2h", "path": "cubbyhole/blocked"}),
    )
    .await;
    let allowed = get("cubbyhole/blocked").await;
    assert_eq!(allowed.status(), 404);
    assert!(allowed.headers().get("retry-after").is_none());
    assert_eq!(allowed.headers()["x-ratelimit-remaining"], "0");
    let starts = get("cubbyhole/blocked").await;
    assert_eq!(starts.status(), 429);
    assert_eq!(starts.headers()["retry-after"], "7199");
    assert!(starts.headers().contains_key("x-ratelimit-limit"));
    let blocked = get("cubbyhole/blocked").await;
    assert_eq!(blocked.status(), 429);
    assert!(blocked.headers().contains_key("retry-after"));
    assert!(blocked.headers().get("x-ratelimit-limit").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn quotas_follow_their_mount_through_a_remount_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::embedded_config(dir.path());
    let args = ["server".to_owned(), format!("-config={}", config.display())];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&args, dir.path());
    let (s, init) = raw(
        &server,
        "PUT",
        "sys/init",
        None,
        Some(json!({"secret_shares": 1, "secret_threshold": 1})),
    )
    .await;
    assert_eq!(s, 200);
    let key = init["keys"][0].as_str().unwrap().to_owned();
    let root = init["root_token"].as_str().unwrap().to_owned();
    let unseal = async |server: &Server| {
        let (s, _) = raw(server, "PUT", "sys/unseal", None, Some(json!({"key": key}))).await;
        assert_eq!(s, 200);
    };
    unseal(&server).await;
    let call = async |server: &Server, method: &str, path: &str, body: Option<Value>| {
        raw(server, method, path, Some(&root), body).await
    };
    assert_eq!(
        call(
            &server,
            "POST",
            "sys/mounts/kvq",
            Some(json!({"type": "kv"}))
        )
        .await
        .0,
        204
    );
    for (name, path) in [("moving", "kvq/"), ("moving-sub", "kvq/sub")] {
        let (s, b) = call(
            &server,
            "PUT",
            &format!("sys/quotas/rate-limit/{name}"),
            Some(json!({"rate": 1, "interval": "1h", "path": path})),
        )
        .await;
        assert_eq!(s, 204, "{b}");
    }
    // A client uses its one request on the old path before the move.
    assert_eq!(call(&server, "GET", "kvq/x", None).await.0, 404);
    let (s, b) = call(
        &server,
        "POST",
        "sys/remount",
        Some(json!({"from": "kvq", "to": "kvr"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (_, q) = call(&server, "GET", "sys/quotas/rate-limit/moving", None).await;
    assert_eq!(q["data"]["path"], "kvr/");
    let (_, q) = call(&server, "GET", "sys/quotas/rate-limit/moving-sub", None).await;
    assert_eq!(q["data"]["path"], "kvr/sub");
    // The bucket moved with the quota: the client's hour is still used up.
    assert_eq!(call(&server, "GET", "kvr/x", None).await.0, 429);
    assert_eq!(call(&server, "GET", "kvr/sub", None).await.0, 404);
    assert_eq!(call(&server, "GET", "kvr/sub", None).await.0, 429);
    // The old path is no mount any more: a quota there is refused.
    let (s, _) = call(
        &server,
        "PUT",
        "sys/quotas/rate-limit/moving",
        Some(json!({"rate": 1, "path": "kvq/"})),
    )
    .await;
    assert_eq!(s, 400);

    drop(server);
    let server = Server::start(&args, dir.path());
    unseal(&server).await;
    let (_, q) = call(&server, "GET", "sys/quotas/rate-limit/moving", None).await;
    assert_eq!(q["data"]["path"], "kvr/", "the move was stored");
    assert_eq!(call(&server, "GET", "kvr/y", None).await.0, 404);
    assert_eq!(call(&server, "GET", "kvr/y", None).await.0, 429);
}

/// `enable_rate_limit_audit_logging`: a request refused by a quota leaves a request line with
/// no caller and the refusal as its error, only while the switch is on; its data is hashed.
#[tokio::test(flavor = "multi_thread")]
async fn refused_requests_are_audited_only_with_rate_limit_audit_logging() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let log = dir.path().join("quota-audit.log");
    ok(
        &server,
        "PUT",
        "sys/audit/file",
        json!({"type": "file", "options": {"file_path": log}}),
    )
    .await;
    ok(
        &server,
        "PUT",
        "sys/quotas/rate-limit/cubby",
        json!({"rate": 1, "interval": "1h", "path": "cubbyhole"}),
    )
    .await;
    let put = async |path: &str, value: &str| {
        raw(
            &server,
            "PUT",
            path,
            Some(ROOT),
            Some(json!({"secret": value})),
        )
        .await
        .0
    };
    assert!(put("cubbyhole/first", "allowed-value-1").await < 300);
    assert_eq!(put("cubbyhole/off", "refused-value-off").await, 429);
    ok(
        &server,
        "PUT",
        "sys/quotas/config",
        json!({"enable_rate_limit_audit_logging": true}),
    )
    .await;
    assert_eq!(put("cubbyhole/on", "refused-value-on").await, 429);

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("refused-value"),
        "a refused request's data is hashed"
    );
    let refusals: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| {
            l["error"]
                .as_str()
                .is_some_and(|e| e.contains("rate limit quota exceeded"))
        })
        .collect();
    assert_eq!(refusals.len(), 1, "only the refusal with the switch on");
    let line = &refusals[0];
    assert_eq!(line["type"], "request");
    assert_eq!(line["request"]["path"], "cubbyhole/on");
    assert_eq!(line["request"]["operation"], "update");
    assert_eq!(
        line["error"],
        "request path \"cubbyhole/on\": rate limit quota exceeded"
    );
    assert!(line["auth"]["client_token"].is_null(), "no caller: {line}");
    assert!(
        line["request"]["data"]["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("hmac-sha256:")),
        "{line}"
    );
}
