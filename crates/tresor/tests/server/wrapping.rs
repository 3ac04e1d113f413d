//! Response wrapping over real HTTP with the vaultrs client: a KV read and a token creation
//! wrapped, looked up and unwrapped through vaultrs's own `wrap`/`lookup`/`unwrap`; single
//! use; concurrent unwraps hand the response out once; the wrapped secret never appears in the
//! wrapping answer nor in the server log.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use std::collections::HashMap;

use common::{Server, raw, vault_client};
use serde_json::json;
use vaultrs::api::ResponseWrapper;
use vaultrs::api::kv2::requests::ReadSecretRequest;
use vaultrs::error::ClientError;
use vaultrs::kv2;

const ROOT: &str = "root";
const SECRET: &str = "wrapped-value-7f3a9c";

#[tokio::test]
async fn a_wrapped_read_unwraps_once_through_vaultrs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let client = vault_client(&server.addr, ROOT);
    kv2::set(
        &client,
        "secret",
        "app",
        &HashMap::from([("password", SECRET)]),
    )
    .await
    .unwrap();

    let wrapped = ReadSecretRequest::builder()
        .mount("secret")
        .path("app")
        .build()
        .unwrap()
        .wrap(&client)
        .await
        .unwrap();
    assert_eq!(wrapped.info.creation_path, "secret/data/app");
    assert_eq!(wrapped.info.ttl, 600, "vaultrs asks for 10m");
    let info = wrapped.lookup(&client).await.unwrap();
    assert_eq!(info.creation_path, "secret/data/app");
    assert_eq!(info.creation_ttl, 600);

    let unwrapped = wrapped.unwrap(&client).await.unwrap();
    assert_eq!(unwrapped.data["password"], SECRET);
    // Single use: a second unwrap (an interception, or a replay) is refused.
    match wrapped.unwrap(&client).await {
        Err(ClientError::APIError { code: 400, errors }) => {
            assert_eq!(errors, ["wrapping token is not valid or does not exist"]);
        }
        other => panic!("second unwrap: {other:?}"),
    }
    assert!(
        !server.log_text().contains(SECRET),
        "the secret reached the log"
    );
}

#[tokio::test]
async fn a_wrapped_token_creation_names_the_wrapped_accessor() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    // vaultrs's WrapInfo has no wrapped_accessor: a raw request shows the whole answer.
    let wrapped: serde_json::Value = common::http()
        .post(server.url("auth/token/create"))
        .header("X-Vault-Token", ROOT)
        .header("X-Vault-Wrap-TTL", "2m")
        .json(&json!({"policies": ["default"], "ttl": "1h"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        wrapped["auth"].is_null(),
        "no token in a wrapped answer: {wrapped}"
    );
    assert_eq!(wrapped["wrap_info"]["creation_path"], "auth/token/create");
    assert_eq!(wrapped["wrap_info"]["ttl"], 120);
    let accessor = wrapped["wrap_info"]["wrapped_accessor"].as_str().unwrap();
    let wrapping_token = wrapped["wrap_info"]["token"].as_str().unwrap();
    let (status, body) = raw(
        &server,
        "POST",
        "sys/wrapping/unwrap",
        Some(wrapping_token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["auth"]["accessor"], json!(accessor));
    let token = body["auth"]["client_token"].as_str().unwrap();
    let (status, me) = raw(&server, "GET", "auth/token/lookup-self", Some(token), None).await;
    assert_eq!(status, 200);
    assert_eq!(me["data"]["accessor"], json!(accessor));
}

#[tokio::test]
async fn concurrent_unwraps_hand_the_response_out_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let mut req = common::http()
        .post(server.url("sys/wrapping/wrap"))
        .header("X-Vault-Token", ROOT)
        .header("X-Vault-Wrap-TTL", "5m");
    req = req.json(&json!({"secret_id": SECRET}));
    let wrapped: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
    assert!(wrapped["data"].is_null());
    assert!(!wrapped.to_string().contains(SECRET));
    let token = wrapped["wrap_info"]["token"].as_str().unwrap().to_owned();
    let attempts = (0..8).map(|_| {
        let server_url = server.url("sys/wrapping/unwrap");
        let token = token.clone();
        tokio::spawn(async move {
            let resp = common::http()
                .post(server_url)
                .header("X-Vault-Token", ROOT)
                .json(&json!({"token": token}))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body: serde_json::Value = resp.json().await.unwrap();
            (status, body)
        })
    });
    let mut winners = 0;
    for attempt in attempts {
        let (status, body) = attempt.await.unwrap();
        match status {
            200 => {
                winners += 1;
                assert_eq!(body["data"]["secret_id"], SECRET);
            }
            400 => assert_eq!(
                body["errors"][0],
                "wrapping token is not valid or does not exist"
            ),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(winners, 1);
}
