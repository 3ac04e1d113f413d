//! `sys/leases/*` over the HTTP layer, in process: malformed, oversized and hostile input
//! gets a clear 4xx, never a 500 or a panic.
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
use tresor_core::seal::InitRequest;
use tresor_core::{Core, CoreOptions};
use tresor_http::{AppState, router};
use tresor_storage::MemoryBackend;

async fn unsealed() -> (AppState, String) {
    let core = Core::new(Arc::new(MemoryBackend::new()), CoreOptions::default())
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
    (AppState::new(core), init.root_token.expose().to_owned())
}

async fn call(
    state: &AppState,
    method: &str,
    uri: &str,
    token: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let response = router(state.clone())
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .header("X-Vault-Token", token)
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let raw = response.into_body().collect().await.unwrap().to_bytes();
    let body = if raw.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&raw).unwrap()
    };
    (status, body)
}

fn json_body(v: Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

#[tokio::test]
async fn malformed_bodies_are_400s() {
    let (state, root) = unsealed().await;
    for path in ["sys/leases/lookup", "sys/leases/renew", "sys/leases/revoke"] {
        let (status, body) = call(
            &state,
            "PUT",
            &format!("/v1/{path}"),
            &root,
            b"{not json".to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(
            body["errors"][0]
                .as_str()
                .unwrap()
                .starts_with("failed to decode JSON input")
        );
        let (status, _) = call(
            &state,
            "PUT",
            &format!("/v1/{path}"),
            &root,
            json_body(json!({"lease_id": ["a"]})),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{path}: a list is no lease id"
        );
    }
    // A number is read as its string form, as Vault's framework does: an unknown lease.
    let (status, body) = call(
        &state,
        "PUT",
        "/v1/sys/leases/lookup",
        &root,
        json_body(json!({"lease_id": 42})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0], "invalid lease");
    let (status, _) = call(
        &state,
        "PUT",
        "/v1/sys/leases/renew",
        &root,
        json_body(json!({"lease_id": "a/b", "increment": {"x": 1}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(
        &state,
        "PUT",
        "/v1/sys/leases/revoke",
        &root,
        json_body(json!({"lease_id": "a/b", "sync": "maybe"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn hostile_and_huge_lease_ids_are_unknown_leases() {
    let (state, root) = unsealed().await;
    let huge = "a/".repeat(200_000) + "b";
    for id in [
        "core/keyring",
        "sys/token/salt",
        "a//b",
        "/abs",
        "a\u{0}b",
        huge.as_str(),
    ] {
        let (status, body) = call(
            &state,
            "PUT",
            "/v1/sys/leases/lookup",
            &root,
            json_body(json!({"lease_id": id})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["errors"][0], "invalid lease");
        let (status, _) = call(
            &state,
            "PUT",
            "/v1/sys/leases/renew",
            &root,
            json_body(json!({"lease_id": id})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = call(
            &state,
            "PUT",
            "/v1/sys/leases/revoke",
            &root,
            json_body(json!({"lease_id": id})),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "unknown: a no-op");
    }
    // The barrier's own records are never reachable as leases.
    let (status, _) = call(
        &state,
        "LIST",
        "/v1/sys/leases/lookup/..%2Fsys/",
        &root,
        Vec::new(),
    )
    .await;
    assert!(status.is_client_error(), "{status}");
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let (mut state, root) = unsealed().await;
    state.max_request_size = 1024;
    let big = json_body(json!({"lease_id": "x".repeat(4096)}));
    let (status, _) = call(&state, "PUT", "/v1/sys/leases/lookup", &root, big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn sealed_lease_endpoints_answer_503() {
    let (state, root) = unsealed().await;
    state.core.seal_now().await;
    let (status, _) = call(
        &state,
        "PUT",
        "/v1/sys/leases/lookup",
        &root,
        json_body(json!({"lease_id": "a"})),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}
