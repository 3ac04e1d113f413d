//! The Vault wire format, checked in process (`router().oneshot(request)`): envelopes, headers,
//! status codes, and every kind of malformed or hostile input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use tresor_core::{Core, CoreOptions};
use tresor_http::{AppState, router};
use tresor_storage::MemoryBackend;

struct Reply {
    status: StatusCode,
    content_type: Option<String>,
    body: Value,
    raw: Vec<u8>,
}

async fn new_core() -> Arc<Core> {
    Core::new(Arc::new(MemoryBackend::new()), CoreOptions::default())
        .await
        .unwrap()
}

async fn call(
    state: &AppState,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: &[u8],
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("X-Vault-Token", t);
    }
    let response = router(state.clone())
        .oneshot(req.body(Body::from(body.to_vec())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let raw = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    let body = if raw.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&raw).unwrap()
    };
    Reply {
        status,
        content_type,
        body,
        raw,
    }
}

/// An initialised, unsealed core (5 shares, threshold 3) and its root token and keys.
async fn unsealed() -> (AppState, String, Vec<String>) {
    let state = AppState::new(new_core().await);
    let init = call(
        &state,
        "PUT",
        "/v1/sys/init",
        None,
        br#"{"secret_shares":5,"secret_threshold":3}"#,
    )
    .await;
    assert_eq!(init.status, StatusCode::OK, "{:?}", init.body);
    let keys: Vec<String> = init.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    for key in &keys[..3] {
        let r = call(
            &state,
            "PUT",
            "/v1/sys/unseal",
            None,
            json!({ "key": key }).to_string().as_bytes(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let root = init.body["root_token"].as_str().unwrap().to_owned();
    (state, root, keys)
}

#[tokio::test]
async fn every_answer_has_the_exact_json_content_type_and_no_store() {
    let state = AppState::new(new_core().await);
    for (method, uri) in [
        ("GET", "/v1/sys/health"),
        ("GET", "/v1/sys/seal-status"),
        ("GET", "/v1/nope"),
        ("PUT", "/v1/sys/health"),
    ] {
        let r = call(&state, method, uri, None, b"").await;
        assert_eq!(
            r.content_type.as_deref(),
            Some("application/json"),
            "{method} {uri}"
        );
    }
    let response = router(state.clone())
        .oneshot(
            Request::builder()
                .uri("/v1/sys/health")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn health_reports_uninitialized_sealed_and_active_with_vaults_codes() {
    let state = AppState::new(new_core().await);
    let r = call(&state, "GET", "/v1/sys/health", None, b"").await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(r.body["initialized"], false);
    assert_eq!(r.body["sealed"], true);
    assert_eq!(r.body["performance_standby"], false);
    assert_eq!(r.body["replication_dr_mode"], "unknown");
    assert!(r.body["server_time_utc"].is_i64());
    assert!(
        r.body["version"]
            .as_str()
            .unwrap()
            .starts_with("2.7.2+tresor.")
    );

    let init = call(
        &state,
        "PUT",
        "/v1/sys/init",
        None,
        br#"{"secret_shares":1,"secret_threshold":1}"#,
    )
    .await;
    let r = call(&state, "GET", "/v1/sys/health", None, b"").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        (r.body["initialized"].clone(), r.body["sealed"].clone()),
        (json!(true), json!(true))
    );
    assert!(r.body.get("cluster_name").is_none());

    let key = init.body["keys"][0].as_str().unwrap();
    call(
        &state,
        "PUT",
        "/v1/sys/unseal",
        None,
        json!({ "key": key }).to_string().as_bytes(),
    )
    .await;
    let r = call(&state, "GET", "/v1/sys/health", None, b"").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["sealed"], false);
    assert_eq!(r.body["standby"], false);
    assert_eq!(r.body["replication_performance_mode"], "disabled");
    assert!(
        r.body["cluster_name"]
            .as_str()
            .unwrap()
            .starts_with("vault-cluster-")
    );
    assert!(r.body["cluster_id"].is_string());
}

#[tokio::test]
async fn health_query_parameters_override_the_codes() {
    let state = AppState::new(new_core().await);
    assert_eq!(
        call(&state, "GET", "/v1/sys/health?uninitcode=200", None, b"")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        call(&state, "GET", "/v1/sys/health?uninitcode=299", None, b"")
            .await
            .status
            .as_u16(),
        299
    );
    let bad = call(&state, "GET", "/v1/sys/health?activecode=abc", None, b"").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body, json!({ "errors": [] }));
    assert_eq!(
        call(&state, "GET", "/v1/sys/health?standbyok=maybe", None, b"")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(&state, "GET", "/v1/sys/health?sealedcode=99999", None, b"")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    let (state, _, _) = unsealed().await;
    assert_eq!(
        call(&state, "GET", "/v1/sys/health?activecode=204", None, b"")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(
            &state,
            "GET",
            "/v1/sys/health?standbyok=true&sealedcode=500",
            None,
            b""
        )
        .await
        .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn head_on_health_gives_the_status_without_a_body() {
    let state = AppState::new(new_core().await);
    let r = call(&state, "HEAD", "/v1/sys/health", None, b"").await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);
    assert!(r.raw.is_empty());
    let r = call(&state, "HEAD", "/v1/sys/seal-status", None, b"").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn seal_status_has_every_field_clients_require() {
    let state = AppState::new(new_core().await);
    let r = call(&state, "GET", "/v1/sys/seal-status", None, b"").await;
    assert_eq!(r.status, StatusCode::OK);
    for key in [
        "type",
        "initialized",
        "sealed",
        "t",
        "n",
        "progress",
        "nonce",
        "version",
        "recovery_seal",
        "migration",
        "storage_type",
        "commit_date",
    ] {
        assert!(r.body.get(key).is_some(), "missing {key}");
    }
    assert_eq!(r.body["type"], "shamir");
    assert_eq!(r.body["storage_type"], "inmem");
    assert_eq!(
        (r.body["t"].clone(), r.body["n"].clone()),
        (json!(0), json!(0))
    );
}

#[tokio::test]
async fn init_returns_hex_and_base64_keys_of_the_same_shares_and_cannot_run_twice() {
    let state = AppState::new(new_core().await);
    assert_eq!(
        call(&state, "GET", "/v1/sys/init", None, b"").await.body,
        json!({ "initialized": false })
    );
    let r = call(
        &state,
        "POST",
        "/v1/sys/init",
        None,
        br#"{"secret_shares":5,"secret_threshold":3,"pgp_keys":null}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let hex_keys = r.body["keys"].as_array().unwrap();
    let b64_keys = r.body["keys_base64"].as_array().unwrap();
    assert_eq!(hex_keys.len(), 5);
    assert_eq!(b64_keys.len(), 5);
    use base64::Engine;
    for (h, b) in hex_keys.iter().zip(b64_keys) {
        let from_b64 = base64::engine::general_purpose::STANDARD
            .decode(b.as_str().unwrap())
            .unwrap();
        assert_eq!(hex::decode(h.as_str().unwrap()).unwrap(), from_b64);
        assert_eq!(
            from_b64.len(),
            33,
            "a share of a 32-byte key plus its x coordinate"
        );
    }
    assert!(r.body["root_token"].as_str().unwrap().starts_with("s."));
    assert_eq!(
        call(&state, "GET", "/v1/sys/init", None, b"").await.body,
        json!({ "initialized": true })
    );
    let again = call(
        &state,
        "PUT",
        "/v1/sys/init",
        None,
        br#"{"secret_shares":1,"secret_threshold":1}"#,
    )
    .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        again.body,
        json!({ "errors": ["Vault is already initialized"] })
    );
}

#[tokio::test]
async fn init_rejects_bad_parameters_and_writes_nothing() {
    let state = AppState::new(new_core().await);
    let cases: [(&[u8], &str); 6] = [
        (
            br#"{}"#,
            "invalid seal configuration: shares must be at least one",
        ),
        (
            br#"{"secret_shares":1,"secret_threshold":2}"#,
            "invalid seal configuration: threshold cannot be larger than shares",
        ),
        (
            br#"{"secret_shares":256,"secret_threshold":2}"#,
            "invalid seal configuration: shares must be less than 256",
        ),
        (
            br#"{"secret_shares":3,"secret_threshold":1}"#,
            "invalid seal configuration: threshold must be greater than one for multiple shares",
        ),
        (br#"{"secret_shares":"x"}"#, "failed to decode JSON input"),
        (
            br#"{"secret_shares":2,"secret_threshold":2,"pgp_keys":["a","b"]}"#,
            "pgp_keys are not supported",
        ),
    ];
    for (body, message) in cases {
        let r = call(&state, "PUT", "/v1/sys/init", None, body).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(body)
        );
        assert!(
            r.body["errors"][0].as_str().unwrap().starts_with(message),
            "{:?}",
            r.body
        );
    }
    assert_eq!(
        call(&state, "GET", "/v1/sys/init", None, b"").await.body["initialized"],
        false
    );
}

#[tokio::test]
async fn unseal_counts_distinct_shares_and_accepts_hex_or_base64() {
    let state = AppState::new(new_core().await);
    let init = call(
        &state,
        "PUT",
        "/v1/sys/init",
        None,
        br#"{"secret_shares":5,"secret_threshold":3}"#,
    )
    .await;
    let hex_keys = init.body["keys"].as_array().unwrap().clone();
    let b64_keys = init.body["keys_base64"].as_array().unwrap().clone();
    let put = |k: &Value| json!({ "key": k }).to_string().into_bytes();

    let r = call(&state, "PUT", "/v1/sys/unseal", None, &put(&hex_keys[4])).await;
    assert_eq!(
        (r.body["progress"].clone(), r.body["sealed"].clone()),
        (json!(1), json!(true))
    );
    let nonce = r.body["nonce"].as_str().unwrap().to_owned();
    assert_eq!(nonce.len(), 36);
    // The same share again does not advance progress.
    let r = call(&state, "PUT", "/v1/sys/unseal", None, &put(&b64_keys[4])).await;
    assert_eq!(r.body["progress"], 1);
    assert_eq!(r.body["nonce"], nonce.as_str());
    let r = call(&state, "PUT", "/v1/sys/unseal", None, &put(&b64_keys[1])).await;
    assert_eq!(r.body["progress"], 2);
    let r = call(&state, "PUT", "/v1/sys/unseal", None, &put(&hex_keys[2])).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["sealed"], false);
    assert_eq!(r.body["progress"], 0);
    assert_eq!(r.body["nonce"], "");
    assert!(r.body["cluster_id"].is_string());
}

#[tokio::test]
async fn unseal_rejects_malformed_and_wrong_keys_with_400() {
    let (state, root, keys) = unsealed().await;
    let seal = call(&state, "PUT", "/v1/sys/seal", Some(&root), b"").await;
    assert_eq!(seal.status, StatusCode::NO_CONTENT);

    let cases: [(&[u8], &str); 7] = [
        (
            b"{}",
            "'key' must be specified in request body as JSON, or 'reset' set to true",
        ),
        (
            b"null",
            "'key' must be specified in request body as JSON, or 'reset' set to true",
        ),
        (
            br#"{"key":null,"reset":null}"#,
            "'key' must be specified in request body as JSON, or 'reset' set to true",
        ),
        (
            br#"{"key":"zz"}"#,
            "'key' must be a valid hex or base64 string",
        ),
        (
            br#"{"key":"aabb"}"#,
            "invalid key: key is shorter than minimum 16 bytes",
        ),
        (b"{bad", "failed to decode JSON input"),
        (b"[1]", "failed to decode JSON input"),
    ];
    for (body, message) in cases {
        let r = call(&state, "PUT", "/v1/sys/unseal", None, body).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(body)
        );
        assert!(
            r.body["errors"][0].as_str().unwrap().starts_with(message),
            "{:?}",
            r.body
        );
    }
    // Three well-formed shares that do not combine into the key: 400, progress reset, still sealed.
    let forged = hex::encode([7u8; 33]);
    call(
        &state,
        "PUT",
        "/v1/sys/unseal",
        None,
        json!({ "key": keys[0] }).to_string().as_bytes(),
    )
    .await;
    call(
        &state,
        "PUT",
        "/v1/sys/unseal",
        None,
        json!({ "key": keys[1] }).to_string().as_bytes(),
    )
    .await;
    let r = call(
        &state,
        "PUT",
        "/v1/sys/unseal",
        None,
        json!({ "key": forged }).to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let status = call(&state, "GET", "/v1/sys/seal-status", None, b"").await;
    assert_eq!(
        (
            status.body["sealed"].clone(),
            status.body["progress"].clone()
        ),
        (json!(true), json!(0))
    );
    // And the right ones still work afterwards.
    for key in &keys[2..] {
        call(
            &state,
            "PUT",
            "/v1/sys/unseal",
            None,
            json!({ "key": key }).to_string().as_bytes(),
        )
        .await;
    }
    assert_eq!(
        call(&state, "GET", "/v1/sys/seal-status", None, b"")
            .await
            .body["sealed"],
        false
    );
}

#[tokio::test]
async fn unseal_reset_forgets_progress_and_is_refused_when_unsealed() {
    let state = AppState::new(new_core().await);
    let init = call(
        &state,
        "PUT",
        "/v1/sys/init",
        None,
        br#"{"secret_shares":3,"secret_threshold":2}"#,
    )
    .await;
    let key = init.body["keys"][0].clone();
    assert_eq!(
        call(
            &state,
            "PUT",
            "/v1/sys/unseal",
            None,
            json!({ "key": key }).to_string().as_bytes()
        )
        .await
        .body["progress"],
        1
    );
    let r = call(&state, "PUT", "/v1/sys/unseal", None, br#"{"reset":true}"#).await;
    assert_eq!(
        (r.body["progress"].clone(), r.body["nonce"].clone()),
        (json!(0), json!(""))
    );

    let (state, _, _) = unsealed().await;
    let r = call(&state, "PUT", "/v1/sys/unseal", None, br#"{"reset":true}"#).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body, json!({ "errors": ["vault is unsealed"] }));
}

#[tokio::test]
async fn a_sealed_server_answers_503_everywhere_but_the_unauthenticated_sys_paths() {
    let (state, root, _) = unsealed().await;
    call(&state, "PUT", "/v1/sys/seal", Some(&root), b"").await;
    for (method, uri) in [
        ("GET", "/v1/secret/data/x"),
        ("PUT", "/v1/sys/rotate"),
        ("GET", "/v1/sys/key-status"),
        ("LIST", "/v1/secret/"),
        ("GET", "/v1/"),
    ] {
        let r = call(&state, method, uri, Some(&root), b"{}").await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{method} {uri}");
        assert_eq!(r.body, json!({ "errors": ["Vault is sealed"] }));
    }
    for uri in ["/v1/sys/seal-status", "/v1/sys/init", "/v1/sys/leader"] {
        assert_eq!(
            call(&state, "GET", uri, None, b"").await.status,
            StatusCode::OK,
            "{uri}"
        );
    }
    // Sealing a sealed server is a harmless no-op.
    assert_eq!(
        call(&state, "PUT", "/v1/sys/seal", None, b"").await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn missing_or_unknown_tokens_get_403_and_unknown_paths_404() {
    let (state, root, _) = unsealed().await;
    for token in [None, Some("s.notatoken"), Some("")] {
        let r = call(&state, "GET", "/v1/nope/foo", token, b"").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.body, json!({ "errors": ["permission denied"] }));
    }
    let r = call(&state, "GET", "/v1/nope/foo", Some(&root), b"").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.body,
        json!({ "errors": ["no handler for route \"nope/foo\". route entry not found."] })
    );
    // The Bearer form works as well.
    let response = router(state.clone())
        .oneshot(
            Request::builder()
                .uri("/v1/sys/key-status")
                .header("Authorization", format!("Bearer {root}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Outside /v1/: a bare 404.
    let r = call(&state, "GET", "/v2/sys/health", None, b"").await;
    assert_eq!(
        (r.status, r.body),
        (StatusCode::NOT_FOUND, json!({ "errors": [] }))
    );
}

#[tokio::test]
async fn wrong_methods_are_405_with_an_empty_error_list() {
    let (state, root, _) = unsealed().await;
    // The raw endpoints answer with an empty list; the logical sys backend words it as
    // OpenBao's one-item multi-error.
    for (method, uri) in [
        ("GET", "/v1/sys/rotate"),
        ("PUT", "/v1/sys/key-status"),
        ("DELETE", "/v1/sys/key-status"),
    ] {
        let r = call(&state, method, uri, Some(&root), b"").await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert_eq!(
            r.body,
            json!({ "errors": ["1 error occurred:\n\t* unsupported operation\n\n"] })
        );
    }
    for (method, uri) in [
        ("PUT", "/v1/sys/seal-status"),
        ("DELETE", "/v1/sys/health"),
        ("LIST", "/v1/sys/health"),
        ("GET", "/v1/sys/unseal"),
        ("DELETE", "/v1/sys/init"),
        ("GET", "/v1/sys/seal"),
        ("TRACE", "/v1/sys/health"),
    ] {
        let r = call(&state, method, uri, Some(&root), b"").await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert_eq!(r.body, json!({ "errors": [] }));
    }
}

#[tokio::test]
async fn oversized_bodies_get_413_and_are_not_applied() {
    let mut state = AppState::new(new_core().await);
    state.max_request_size = 1024;
    let mut body = br#"{"secret_shares":1,"secret_threshold":1,"pad":""#.to_vec();
    body.extend(std::iter::repeat_n(b'a', 2048));
    body.extend(br#""}"#);
    let r = call(&state, "PUT", "/v1/sys/init", None, &body).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.body["errors"][0].is_string());
    assert_eq!(
        call(&state, "GET", "/v1/sys/init", None, b"").await.body["initialized"],
        false
    );
}

#[tokio::test]
async fn hostile_input_never_panics_and_always_gets_an_error_envelope() {
    let (state, root, _) = unsealed().await;
    let bodies: [&[u8]; 8] = [
        b"\xff\xfe\x00",
        b"{\"key\":\"\\ud800\"}",
        b"{{{{{{{{",
        b"1e999999",
        b"\"str\"",
        b"true",
        &[b'['; 4096],
        b"{\"key\":[1,2,{\"a\":null}]}",
    ];
    let paths = [
        "/v1/sys/unseal",
        "/v1/sys/init",
        "/v1/sys/leader",
        "/v1/sys/rotate",
        "/v1/%zz",
        "/v1/sys/health?activecode=%ff",
        "/v1/../../etc/passwd",
        "/v1/sys/key-status?list=true",
    ];
    for path in paths {
        for body in bodies {
            let r = call(&state, "PUT", path, Some(&root), body).await;
            assert!(
                r.status.is_client_error() || r.status.is_success(),
                "{path}: {}",
                r.status
            );
            if r.status.is_client_error() {
                assert!(r.body["errors"].is_array(), "{path}: {:?}", r.body);
            }
        }
    }
    // The server is still unsealed and working: none of that sealed or broke it.
    assert_eq!(
        call(&state, "GET", "/v1/sys/health", None, b"")
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn key_status_mirrors_data_at_the_top_level_and_rotate_adds_a_term() {
    let (state, root, _) = unsealed().await;
    let r = call(&state, "GET", "/v1/sys/key-status", Some(&root), b"").await;
    assert_eq!(r.status, StatusCode::OK);
    for key in [
        "request_id",
        "lease_id",
        "renewable",
        "lease_duration",
        "data",
        "wrap_info",
        "warnings",
        "auth",
    ] {
        assert!(r.body.get(key).is_some(), "envelope key {key} missing");
    }
    assert_eq!(r.body["term"], 1);
    assert_eq!(r.body["data"]["term"], 1);
    assert_eq!(r.body["install_time"], r.body["data"]["install_time"]);
    assert_eq!(r.body["lease_id"], "");
    assert_eq!(r.body["renewable"], false);

    let rotated = call(&state, "PUT", "/v1/sys/rotate", Some(&root), b"").await;
    assert_eq!(rotated.status, StatusCode::NO_CONTENT);
    assert!(rotated.raw.is_empty());
    let r = call(&state, "GET", "/v1/sys/key-status", Some(&root), b"").await;
    assert_eq!(r.body["data"]["term"], 2);
}
