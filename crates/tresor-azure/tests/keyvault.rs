//! The Key Vault client against the FAKE Azure Key Vault + Entra ID
//! (`test-support/fake-azure-keyvault`), which the official Python clients check first
//! (`official_python_clients_accept_the_fake`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use support::*;
use tresor_azure::{
    ClientSecretCredential, Env, KeyVaultClient, KeyVaultError, RetryPolicy, TokenCredential,
};
use tresor_sdk::secret::SecretString;

fn client_for(fake: &FakeAzure, client_id: &str, secret: &str) -> KeyVaultClient {
    let credential = ClientSecretCredential::new(
        TENANT,
        client_id,
        SecretString::from(secret),
        &fake.credential_options(),
        &Env::default(),
    )
    .unwrap();
    KeyVaultClient::new(&fake.vault_url, Arc::new(credential), fake.vault_options()).unwrap()
}

fn officer(fake: &FakeAzure) -> KeyVaultClient {
    client_for(fake, OFFICER, OFFICER_SECRET)
}

fn kv_requests(all: &[Value]) -> Vec<Value> {
    all.iter()
        .filter(|r| r["server"] == "keyvault")
        .cloned()
        .collect()
}

fn token_requests(all: &[Value]) -> usize {
    all.iter()
        .filter(|r| r["server"] == "entra" && r["path"].as_str().unwrap().ends_with("/token"))
        .count()
}

/// The fake is held to the official clients: azure-keyvault-secrets 4.12.0 with
/// azure-identity 1.27.0 (ClientSecretCredential, WorkloadIdentityCredential) set, get, page,
/// delete, recover and purge against it and see Azure's refusals.
#[test]
fn official_python_clients_accept_the_fake() {
    let out = std::process::Command::new(python())
        .arg(script("check_real_clients.py"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(" passed, 0 failed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_challenge_comes_first_and_the_token_is_cached() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let kv = officer(&fake);
    let value = SecretString::from("fake-challenge-value");
    let set = kv
        .set_secret("challenge-test", &value, Some("text/plain"))
        .await
        .unwrap();
    assert_eq!(set.name, "challenge-test");
    let got = kv.get_secret("challenge-test", None).await.unwrap();
    assert_eq!(got.value, value);
    assert_eq!(got.properties.content_type.as_deref(), Some("text/plain"));
    assert_eq!(got.properties.version, set.version);
    kv.get_secret("ghcr-username", None).await.unwrap();

    let all = fake.requests().await;
    let kv_reqs = kv_requests(&all);
    // 1: the PUT without token and without the value → 401 with the challenge
    assert_eq!(kv_reqs[0]["method"], "PUT");
    assert_eq!(kv_reqs[0]["authorization"], "none");
    assert_eq!(kv_reqs[0]["status"], 401);
    assert_eq!(
        kv_reqs[0]["body_bytes"], 0,
        "the secret is not sent before the challenge"
    );
    // then everything with the bearer token, and the latest version by the trailing-slash path
    assert!(
        kv_reqs[1..]
            .iter()
            .all(|r| r["authorization"] == "bearer" && r["status"] == 200)
    );
    assert_eq!(kv_reqs[2]["path"], "/secrets/challenge-test/");
    assert_eq!(kv_reqs[2]["api_version"], "7.4");
    // one token request for the three operations, for the challenge's scope and tenant
    assert_eq!(token_requests(&all), 1);
    let token_req = all.iter().find(|r| r["server"] == "entra").unwrap();
    assert_eq!(token_req["scope"], "https://vault.azure.net/.default");
    assert_eq!(token_req["path"], format!("/{TENANT}/oauth2/v2.0/token"));
}

#[tokio::test]
async fn an_expired_token_is_replaced_after_a_401() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let kv = officer(&fake);
    kv.get_secret("ghcr-username", None).await.unwrap();
    // The fake's clock moves past the token's expiry; the client still thinks it is valid.
    fake.advance_clock(3700).await;
    fake.clear_requests().await;
    let v = kv.get_secret("ghcr-username", None).await.unwrap();
    assert_eq!(v.value.expose(), "fake-ghcr-user");
    let all = fake.requests().await;
    let statuses: Vec<_> = kv_requests(&all)
        .iter()
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(statuses, vec![json!(401), json!(200)]);
    assert_eq!(token_requests(&all), 1, "one new token after the 401");
}

#[tokio::test]
async fn versions_latest_and_by_version() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let kv = officer(&fake);
    let v1 = kv
        .set_secret("rotated", &"fake-one".into(), None)
        .await
        .unwrap();
    let v2 = kv
        .set_secret("rotated", &"fake-two".into(), None)
        .await
        .unwrap();
    assert_ne!(v1.version, v2.version);
    assert_eq!(
        kv.get_secret("rotated", None).await.unwrap().value.expose(),
        "fake-two"
    );
    let old = kv
        .get_secret("rotated", v1.version.as_deref())
        .await
        .unwrap();
    assert_eq!(old.value.expose(), "fake-one");
    let mut versions: Vec<_> = kv
        .list_secret_versions("rotated")
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.version.unwrap())
        .collect();
    versions.sort();
    let mut expected = vec![v1.version.unwrap(), v2.version.unwrap()];
    expected.sort();
    assert_eq!(versions, expected);
    let missing = kv
        .get_secret("rotated", Some("0000aaaa"))
        .await
        .unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
    assert!(missing.to_string().contains("SecretNotFound"), "{missing}");
}

#[tokio::test]
async fn list_pages_through_next_link() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let mut options = fake.vault_options();
    options.max_page_size = Some(7);
    let credential = ClientSecretCredential::new(
        TENANT,
        OFFICER,
        OFFICER_SECRET.into(),
        &fake.credential_options(),
        &Env::default(),
    )
    .unwrap();
    let kv = KeyVaultClient::new(&fake.vault_url, Arc::new(credential), options).unwrap();
    for i in 0..30 {
        kv.set_secret(
            &format!("page-{i:02}"),
            &format!("fake-page-{i}").as_str().into(),
            None,
        )
        .await
        .unwrap();
    }
    fake.clear_requests().await;
    let mut names: Vec<_> = kv
        .list_secrets()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    names.sort();
    let mut expected: Vec<_> = (0..30).map(|i| format!("page-{i:02}")).collect();
    expected.extend(["ghcr-token".to_owned(), "ghcr-username".to_owned()]);
    expected.sort();
    assert_eq!(names, expected);
    let pages: Vec<_> = fake
        .requests()
        .await
        .into_iter()
        .filter(|r| r["path"] == "/secrets" && r["status"] == 200)
        .collect();
    assert_eq!(pages.len(), 5, "32 secrets in pages of 7: {pages:?}");
    assert!(pages.iter().all(|r| r["maxresults"] == "7"));
}

#[tokio::test]
async fn a_next_link_to_another_host_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let mut options = fake.vault_options();
    options.max_page_size = Some(1);
    let credential = ClientSecretCredential::new(
        TENANT,
        OFFICER,
        OFFICER_SECRET.into(),
        &fake.credential_options(),
        &Env::default(),
    )
    .unwrap();
    let kv = KeyVaultClient::new(&fake.vault_url, Arc::new(credential), options).unwrap();
    fake.fault(
        json!({"target": "foreign_next_link", "count": 1, "host": "https://attacker.example:443"}),
    )
    .await;
    let err = kv.list_secrets().await.unwrap_err();
    assert!(
        matches!(err, KeyVaultError::ForeignNextLink { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("https://attacker.example"),
        "{err}"
    );
    // The same host on another port is another server too.
    let port = fake.url.rsplit(':').next().unwrap();
    let other = fake.url.replace(port, &closed_port().to_string());
    fake.fault(json!({"target": "foreign_next_link", "count": 1, "host": other}))
        .await;
    let err = kv.list_secrets().await.unwrap_err();
    assert!(
        matches!(err, KeyVaultError::ForeignNextLink { .. }),
        "{err:?}"
    );
}

/// Seconds between consecutive Key Vault requests to `path`, by the fake's clock.
async fn gaps(fake: &FakeAzure, path: &str) -> (Vec<Value>, Vec<f64>) {
    let reqs: Vec<_> = kv_requests(&fake.requests().await)
        .into_iter()
        .filter(|r| r["path"] == path && r["authorization"] == "bearer")
        .collect();
    let times: Vec<f64> = reqs.iter().map(|r| r["time"].as_f64().unwrap()).collect();
    (reqs, times.windows(2).map(|w| w[1] - w[0]).collect())
}

#[tokio::test]
async fn retry_after_in_seconds_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let kv = officer(&fake);
    kv.get_secret("ghcr-username", None).await.unwrap(); // challenge and token out of the way
    fake.clear_requests().await;
    fake.fault(json!({"target": "keyvault", "status": 429, "count": 2, "retry_after": "1"}))
        .await;
    let v = kv.get_secret("ghcr-username", None).await.unwrap();
    assert_eq!(v.value.expose(), "fake-ghcr-user");
    let (reqs, gaps) = gaps(&fake, "/secrets/ghcr-username/").await;
    let statuses: Vec<_> = reqs.iter().map(|r| r["status"].clone()).collect();
    assert_eq!(statuses, vec![json!(429), json!(429), json!(200)]);
    // The backoff alone would be 50 ms then 100 ms; the fake asked for a second each time.
    assert!(gaps.iter().all(|g| *g >= 0.95), "waits {gaps:?}");
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let kv = officer(&fake);
    kv.get_secret("ghcr-username", None).await.unwrap();
    fake.clear_requests().await;
    fake.fault(json!({"target": "keyvault", "status": 429, "count": 1,
                      "retry_after": "http-date", "retry_after_seconds": 3}))
        .await;
    kv.get_secret("ghcr-username", None).await.unwrap();
    let (_, gaps) = gaps(&fake, "/secrets/ghcr-username/").await;
    // An HTTP-date has whole seconds: 3 s ahead is at least 2 s after the answer was sent.
    assert_eq!(gaps.len(), 1);
    assert!(gaps[0] >= 1.95, "waited {gaps:?}");
}

#[tokio::test]
async fn a_retry_after_beyond_the_bound_is_not_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let kv = officer(&fake);
    kv.get_secret("ghcr-username", None).await.unwrap();
    fake.fault(json!({"target": "keyvault", "status": 429, "count": 1, "retry_after": "3600"}))
        .await;
    let started = std::time::Instant::now();
    let err = kv.get_secret("ghcr-username", None).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(err, KeyVaultError::RetryAfterTooLong { status: 429, wait, .. } if wait == Duration::from_secs(3600)),
        "{err:?}"
    );
}

#[tokio::test]
async fn service_unavailable_is_retried_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let kv = officer(&fake);
    kv.get_secret("ghcr-username", None).await.unwrap();
    fake.clear_requests().await;
    fake.fault(json!({"target": "keyvault", "status": 503, "count": 2}))
        .await;
    kv.get_secret("ghcr-username", None).await.unwrap();
    let (reqs, gaps) = gaps(&fake, "/secrets/ghcr-username/").await;
    let statuses: Vec<_> = reqs.iter().map(|r| r["status"].clone()).collect();
    assert_eq!(statuses, vec![json!(503), json!(503), json!(200)]);
    // exponential backoff without Retry-After: 50 ms, then 100 ms
    assert!(gaps[0] >= 0.045 && gaps[1] >= 0.095, "{gaps:?}");

    // More failures than retries: the client gives up after max_retries + 1 attempts.
    fake.clear_requests().await;
    fake.fault(json!({"target": "keyvault", "status": 503, "count": 10}))
        .await;
    let err = kv.get_secret("ghcr-username", None).await.unwrap_err();
    assert!(
        matches!(&err, KeyVaultError::Status { status: 503, attempts: 4, code, .. } if code == "ServiceUnavailable"),
        "{err:?}"
    );
    assert_eq!(kv_requests(&fake.requests().await).len(), 4);
}

#[tokio::test]
async fn a_principal_without_get_permission_gets_forbidden() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let kv = client_for(&fake, READER, READER_SECRET);
    assert!(
        !kv.list_secrets().await.unwrap().is_empty(),
        "Key Vault Reader may list"
    );
    let err = kv.get_secret("ghcr-token", None).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    let text = err.to_string();
    assert!(
        matches!(err, KeyVaultError::Forbidden { ref code, .. } if code == "Forbidden"),
        "{err:?}"
    );
    assert!(text.contains("get secret ghcr-token"), "{text}");
    assert!(
        text.contains("Microsoft.KeyVault/vaults/secrets/getSecret/action"),
        "{text}"
    );
    assert!(!text.contains('\n'), "one line: {text}");
}

#[tokio::test]
async fn a_vault_in_another_tenant_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let credential = ClientSecretCredential::new(
        OTHER_TENANT,
        OTHER_TENANT_CLIENT,
        OTHER_TENANT_SECRET.into(),
        &fake.credential_options(),
        &Env::default(),
    )
    .unwrap();
    let kv =
        KeyVaultClient::new(&fake.vault_url, Arc::new(credential), fake.vault_options()).unwrap();
    let err = kv.get_secret("ghcr-token", None).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, KeyVaultError::Credential { .. }), "{err:?}");
    assert!(
        text.contains(&format!("challenge names tenant {TENANT}"))
            && text.contains(&format!("AZURE_TENANT_ID is {OTHER_TENANT}")),
        "{text}"
    );
}

#[tokio::test]
async fn the_challenge_resource_must_match_the_vault_host() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let mut options = fake.vault_options();
    options.verify_challenge_resource = true;
    let credential = ClientSecretCredential::new(
        TENANT,
        OFFICER,
        OFFICER_SECRET.into(),
        &fake.credential_options(),
        &Env::default(),
    )
    .unwrap();
    let kv = KeyVaultClient::new(&fake.vault_url, Arc::new(credential), options).unwrap();
    let err = kv.get_secret("ghcr-token", None).await.unwrap_err();
    assert!(
        matches!(err, KeyVaultError::ChallengeResource { .. }),
        "{err:?}"
    );
    assert_eq!(
        token_requests(&fake.requests().await),
        0,
        "no token was asked for"
    );
}

#[tokio::test]
async fn soft_delete_recover_and_purge() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let kv = officer(&fake);
    kv.set_secret("doomed", &"fake-doomed".into(), None)
        .await
        .unwrap();
    // Key Vault deletes asynchronously: the deleted secret answers 404 until it is done.
    fake.fault(json!({"target": "keyvault", "status": 404, "count": 2,
                      "path_prefix": "/deletedsecrets/doomed"}))
        .await;
    let deleted = kv.delete_secret("doomed").await.unwrap();
    assert_eq!(deleted.properties.name, "doomed");
    assert!(
        deleted
            .recovery_id
            .as_deref()
            .unwrap()
            .ends_with("/deletedsecrets/doomed")
    );
    assert!(deleted.scheduled_purge_date.unwrap() > deleted.deleted_date.unwrap());
    let polls: Vec<_> = fake
        .requests()
        .await
        .into_iter()
        .filter(|r| r["path"] == "/deletedsecrets/doomed")
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(
        polls,
        vec![json!(404), json!(404), json!(200)],
        "polled until visible"
    );

    assert!(
        kv.get_secret("doomed", None)
            .await
            .unwrap_err()
            .is_not_found()
    );
    let listed = kv.list_deleted_secrets().await.unwrap();
    assert!(listed.iter().any(|d| d.properties.name == "doomed"));
    let conflict = kv
        .set_secret("doomed", &"fake-again".into(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(conflict, KeyVaultError::Conflict { .. }),
        "{conflict:?}"
    );
    assert!(
        conflict.to_string().contains("deleted but recoverable"),
        "{conflict}"
    );

    let recovered = kv.recover_deleted_secret("doomed").await.unwrap();
    assert_eq!(recovered.name, "doomed");
    assert_eq!(
        kv.get_secret("doomed", None).await.unwrap().value.expose(),
        "fake-doomed"
    );

    kv.delete_secret("doomed").await.unwrap();
    assert_eq!(
        kv.get_deleted_secret("doomed")
            .await
            .unwrap()
            .properties
            .name,
        "doomed"
    );
    kv.purge_deleted_secret("doomed").await.unwrap();
    assert!(
        kv.get_deleted_secret("doomed")
            .await
            .unwrap_err()
            .is_not_found()
    );
    kv.set_secret("doomed", &"fake-reborn".into(), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn invalid_names_are_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let kv = officer(&fake);
    for bad in ["GHCR_TOKEN", "a.b", "", "x/../y", "naïve"] {
        let err = kv.set_secret(bad, &"fake".into(), None).await.unwrap_err();
        assert!(
            matches!(err, KeyVaultError::InvalidName(_)),
            "{bad}: {err:?}"
        );
        assert!(err.to_string().contains("letters, digits and hyphens"));
        assert!(kv.get_secret(bad, None).await.is_err());
    }
    let err = kv
        .get_secret("ok-name", Some("../../deletedsecrets/x"))
        .await
        .unwrap_err();
    assert!(matches!(err, KeyVaultError::InvalidVersion(_)), "{err:?}");
    assert!(fake.requests().await.is_empty());
    assert!(
        KeyVaultClient::new(
            "http://127.0.0.1:1/",
            Arc::new(
                ClientSecretCredential::new(
                    TENANT,
                    OFFICER,
                    "x".into(),
                    &Default::default(),
                    &Env::default()
                )
                .unwrap()
            ),
            Default::default()
        )
        .unwrap_err()
        .to_string()
        .contains("only reached over https")
    );
}

#[tokio::test]
async fn no_value_or_token_in_errors_or_debug() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let credential = ClientSecretCredential::new(
        TENANT,
        OFFICER,
        OFFICER_SECRET.into(),
        &fake.credential_options(),
        &Env::default(),
    )
    .unwrap();
    let token = credential
        .get_token("https://vault.azure.net/.default", None)
        .await
        .unwrap();
    let token_text = token.token.expose().to_owned();
    let kv = officer(&fake);
    let value = "fake-very-secret-value-8d1f";
    kv.set_secret("leak-check", &value.into(), None)
        .await
        .unwrap();
    let secret = kv.get_secret("leak-check", None).await.unwrap();

    let mut outputs = vec![
        format!("{secret:?}"),
        format!("{:?}", secret.value),
        format!("{token:?}"),
        format!("{credential:?}"),
        format!("{kv:?}"),
        format!(
            "{:?}",
            Env::from_pairs([("AZURE_CLIENT_SECRET", OFFICER_SECRET)])
        ),
    ];
    // errors of every kind the tests above provoke
    let reader = client_for(&fake, READER, READER_SECRET);
    let e = reader.get_secret("leak-check", None).await.unwrap_err();
    outputs.push(format!("{e} {e:?}"));
    let wrong = client_for(&fake, OFFICER, "fake-wrong-secret-77");
    let e = wrong
        .set_secret("leak-check", &value.into(), None)
        .await
        .unwrap_err();
    outputs.push(format!("{e} {e:?}"));
    let e = kv
        .set_secret("bad_name", &value.into(), None)
        .await
        .unwrap_err();
    outputs.push(format!("{e} {e:?}"));
    fake.fault(json!({"target": "keyvault", "status": 503, "count": 10}))
        .await;
    let e = kv
        .set_secret("leak-check", &value.into(), None)
        .await
        .unwrap_err();
    outputs.push(format!("{e} {e:?}"));

    assert!(outputs[7].contains("AADSTS7000215"), "{}", outputs[7]);
    for out in &outputs {
        for needle in [
            value,
            token_text.as_str(),
            OFFICER_SECRET,
            "fake-wrong-secret-77",
        ] {
            assert!(!out.contains(needle), "{needle:?} leaked into: {out}");
        }
    }
    // and nothing secret in what the fake recorded or logged
    let recorded = serde_json::to_string(&fake.requests().await).unwrap()
        + &std::fs::read_to_string(fake.dir.join("fake-azure-keyvault.log")).unwrap();
    for needle in [value, token_text.as_str(), OFFICER_SECRET] {
        assert!(
            !recorded.contains(needle),
            "{needle:?} in the fake's records"
        );
    }
    let _ = RetryPolicy::none();
}
