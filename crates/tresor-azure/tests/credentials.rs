//! The credential chain and the doctor against the FAKE Entra ID + IMDS
//! (`test-support/fake-azure-keyvault`) and a FAKE `az` script.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

mod support;

use std::path::Path;
use std::sync::Arc;

use support::*;
use tresor_azure::credential::{Attempt, Outcome};
use tresor_azure::doctor::{self, Status};
use tresor_azure::{AzureCliCredential, DefaultCredential, Env, KeyVaultClient, TokenCredential};

const SCOPE: &str = "https://vault.azure.net/.default";

fn reason<'a>(attempts: &'a [Attempt], credential: &str) -> &'a Outcome {
    &attempts
        .iter()
        .find(|a| a.credential == credential)
        .unwrap()
        .outcome
}

fn names(attempts: &[Attempt]) -> Vec<&str> {
    attempts.iter().map(|a| a.credential).collect()
}

async fn workload_env(fake: &FakeAzure, dir: &Path, subject: &str) -> Env {
    let token = fake.federated_token(subject).await;
    let file = dir.join("azure-identity-token");
    std::fs::write(&file, token).unwrap();
    let mut env = bare_env(dir);
    env.set("AZURE_CLIENT_ID", FEDERATED);
    env.set("AZURE_TENANT_ID", TENANT);
    env.set("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string());
    env.set("AZURE_AUTHORITY_HOST", fake.url.clone());
    env
}

/// A FAKE Azure CLI: a shell script named `az` that records its arguments and prints what
/// `az account get-access-token --output json` prints (or a not-signed-in error).
fn fake_az(dir: &Path, token: Option<&str>) -> std::path::PathBuf {
    let bin = dir.join("fake-az-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let az = bin.join("az");
    let args = dir.join("fake-az-args");
    let body = match token {
        Some(t) => format!(
            "cat <<'JSON'\n{{\"accessToken\": \"{t}\", \"expiresOn\": \"2099-01-01 00:00:00.000000\", \"expires_on\": 4070908800, \"subscription\": \"00000000-0000-0000-0000-000000000000\", \"tenant\": \"{TENANT}\", \"tokenType\": \"Bearer\"}}\nJSON\n"
        ),
        None => "echo \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1\n".to_owned(),
    };
    std::fs::write(
        &az,
        format!(
            "#!/bin/sh\n# FAKE Azure CLI for tresor-azure's tests: not the real az.\necho \"$@\" > '{}'\n{body}",
            args.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[tokio::test]
async fn nothing_configured_lists_every_reason_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = tresor_azure::CredentialOptions {
        imds_host: Some(format!("http://127.0.0.1:{}", closed_port())),
        ..Default::default()
    };
    options.imds_timeout = std::time::Duration::from_millis(500);
    let chain = DefaultCredential::from_env(&bare_env(dir.path()), &options);
    let err = chain.get_token_chained(SCOPE, None).await.unwrap_err();
    assert_eq!(
        names(&err.attempts),
        vec![
            "WorkloadIdentityCredential",
            "ClientSecretCredential",
            "ManagedIdentityCredential",
            "AzureCliCredential"
        ]
    );
    let text = err.to_string();
    for expected in [
        "WorkloadIdentityCredential: unavailable: AZURE_FEDERATED_TOKEN_FILE is not set: the pod is missing the label azure.workload.identity/use=\"true\" or the service account the annotation azure.workload.identity/client-id",
        "AZURE_CLIENT_ID is not set: annotate the service account with azure.workload.identity/client-id=",
        "AZURE_TENANT_ID is not set",
        "ClientSecretCredential: unavailable: AZURE_CLIENT_SECRET, AZURE_CLIENT_ID, AZURE_TENANT_ID are not set",
        "ManagedIdentityCredential: unavailable: no managed identity endpoint (IMDS) answered at http://127.0.0.1:",
        "AzureCliCredential: unavailable: the Azure CLI (az) is not installed: no az on PATH",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(
        err.attempts
            .iter()
            .all(|a| matches!(a.outcome, Outcome::Unavailable(_)))
    );
}

#[tokio::test]
async fn workload_identity_comes_first_and_reads_the_vault() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let mut env = workload_env(&fake, dir.path(), SUBJECT).await;
    // client secret variables too: workload identity still wins (it is first)
    env.set("AZURE_CLIENT_SECRET", "fake-unused-secret");
    let chain = Arc::new(DefaultCredential::from_env(
        &env,
        &fake.credential_options(),
    ));
    let (winner, _) = chain.get_token_chained(SCOPE, Some(TENANT)).await.unwrap();
    assert_eq!(winner, "WorkloadIdentityCredential");
    let kv = KeyVaultClient::new(&fake.vault_url, chain.clone(), fake.vault_options()).unwrap();
    assert_eq!(
        kv.get_secret("ghcr-token", None)
            .await
            .unwrap()
            .value
            .expose(),
        "fake-ghcr-token-v2"
    );
    let assertions = fake
        .requests()
        .await
        .into_iter()
        .filter(|r| r["server"] == "entra" && r["status"] == 200)
        .map(|r| r["credential"].clone())
        .collect::<Vec<_>>();
    assert!(!assertions.is_empty());
    assert!(
        assertions.iter().all(|c| c == "client_assertion"),
        "{assertions:?}"
    );
    assert!(format!("{chain:?}").contains("chosen: Some(\"WorkloadIdentityCredential\")"));
}

#[tokio::test]
async fn an_unmatched_federated_subject_stops_the_chain_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let mut env = workload_env(&fake, dir.path(), "system:serviceaccount:tresor:wrong-sa").await;
    env.set("AZURE_CLIENT_SECRET", "fake-unused-secret");
    let chain = DefaultCredential::from_env(&env, &fake.credential_options());
    let err = chain.get_token_chained(SCOPE, None).await.unwrap_err();
    let Outcome::Failed(why) = reason(&err.attempts, "WorkloadIdentityCredential") else {
        panic!("{err}");
    };
    for expected in [
        "AADSTS700213: No matching federated identity record found for presented assertion subject 'system:serviceaccount:tresor:wrong-sa'",
        "needs a federated credential with exactly that issuer and subject",
        "--subject system:serviceaccount:tresor:wrong-sa",
        "--audience api://AzureADTokenExchange",
    ] {
        assert!(why.contains(expected), "missing {expected:?} in {why}");
    }
    assert!(!why.contains("Trace ID"), "{why}");
    for later in [
        "ClientSecretCredential",
        "ManagedIdentityCredential",
        "AzureCliCredential",
    ] {
        assert_eq!(reason(&err.attempts, later), &Outcome::NotTried);
    }
    assert!(err.to_string().contains("not tried (the chain stops"));
}

#[tokio::test]
async fn an_unreadable_token_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let mut env = workload_env(&fake, dir.path(), SUBJECT).await;
    env.set(
        "AZURE_FEDERATED_TOKEN_FILE",
        "/var/run/secrets/azure/tokens/azure-identity-token-missing",
    );
    let chain = DefaultCredential::from_env(&env, &fake.credential_options());
    let err = chain.get_token_chained(SCOPE, None).await.unwrap_err();
    let Outcome::Failed(why) = reason(&err.attempts, "WorkloadIdentityCredential") else {
        panic!("{err}");
    };
    assert!(why.contains("AZURE_FEDERATED_TOKEN_FILE=/var/run/secrets/azure/tokens/azure-identity-token-missing cannot be read"), "{why}");
    assert!(why.contains("azure-identity-token is not mounted"), "{why}");
}

#[tokio::test]
async fn client_secret_when_no_workload_identity_and_a_wrong_secret_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let mut env = bare_env(dir.path());
    env.set("AZURE_CLIENT_ID", OFFICER);
    env.set("AZURE_TENANT_ID", TENANT);
    env.set("AZURE_CLIENT_SECRET", OFFICER_SECRET);
    let chain = DefaultCredential::from_env(&env, &fake.credential_options());
    let (winner, _) = chain.get_token_chained(SCOPE, None).await.unwrap();
    assert_eq!(winner, "ClientSecretCredential");

    env.set("AZURE_CLIENT_SECRET", "fake-the-secret-id-not-its-value");
    let chain = DefaultCredential::from_env(&env, &fake.credential_options());
    let err = chain.get_token_chained(SCOPE, None).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(
            "WorkloadIdentityCredential: unavailable: AZURE_FEDERATED_TOKEN_FILE is not set"
        ),
        "{text}"
    );
    assert!(text.contains("ClientSecretCredential: failed: Entra ID refused the token request (401 invalid_client): AADSTS7000215: Invalid client secret provided."), "{text}");
    assert!(
        text.contains("AZURE_CLIENT_SECRET is not this application's secret value"),
        "{text}"
    );
    assert!(!text.contains("fake-the-secret-id-not-its-value"));
    assert!(!text.contains(OFFICER_SECRET));
}

#[tokio::test]
async fn managed_identity_from_imds_and_an_imds_that_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let env = bare_env(dir.path());
    let chain = Arc::new(DefaultCredential::from_env(
        &env,
        &fake.credential_options(),
    ));
    let (winner, _) = chain.get_token_chained(SCOPE, None).await.unwrap();
    assert_eq!(winner, "ManagedIdentityCredential");
    let kv = KeyVaultClient::new(&fake.vault_url, chain, fake.vault_options()).unwrap();
    assert_eq!(
        kv.get_secret("ghcr-username", None)
            .await
            .unwrap()
            .value
            .expose(),
        "fake-ghcr-user"
    );
    let imds: Vec<_> = fake
        .requests()
        .await
        .into_iter()
        .filter(|r| r["server"] == "imds")
        .collect();
    assert!(
        imds.iter()
            .all(|r| r["api_version"] == "2018-02-01" && r["status"] == 200),
        "{imds:?}"
    );

    // IMDS answers, but has no identity with this client id: unavailable, and said so.
    let mut env = bare_env(dir.path());
    env.set("AZURE_CLIENT_ID", "99999999-0000-4000-8000-000000000999");
    let chain = DefaultCredential::from_env(&env, &fake.credential_options());
    let err = chain.get_token_chained(SCOPE, None).await.unwrap_err();
    let Outcome::Unavailable(why) = reason(&err.attempts, "ManagedIdentityCredential") else {
        panic!("{err}");
    };
    assert!(
        why.contains("answered but refused: \"Identity not found\""),
        "{why}"
    );
    assert!(why.contains("no managed identity with client id 99999999-0000-4000-8000-000000000999 (AZURE_CLIENT_ID)"), "{why}");
    assert!(
        !why.contains("no managed identity endpoint"),
        "answered ≠ absent: {why}"
    );
}

#[tokio::test]
async fn azure_cli_last_with_a_fake_az() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    // A real Key Vault token from the fake Entra, handed out by the fake az.
    let cs = tresor_azure::ClientSecretCredential::new(
        TENANT,
        OFFICER,
        OFFICER_SECRET.into(),
        &fake.credential_options(),
        &Env::default(),
    )
    .unwrap();
    let token = cs.get_token(SCOPE, None).await.unwrap();
    let bin = fake_az(dir.path(), Some(token.token.expose()));
    let mut options = fake.credential_options();
    options.imds_host = Some(format!("http://127.0.0.1:{}", closed_port()));
    options.imds_timeout = std::time::Duration::from_millis(300);
    let env = Env::from_pairs([("PATH", bin.display().to_string())]);
    let chain = Arc::new(DefaultCredential::from_env(&env, &options));
    let kv = KeyVaultClient::new(&fake.vault_url, chain.clone(), fake.vault_options()).unwrap();
    assert_eq!(
        kv.get_secret("ghcr-username", None)
            .await
            .unwrap()
            .value
            .expose(),
        "fake-ghcr-user"
    );
    let args = std::fs::read_to_string(dir.path().join("fake-az-args")).unwrap();
    assert_eq!(
        args.trim(),
        format!(
            "account get-access-token --output json --resource https://vault.azure.net --tenant {TENANT}"
        )
    );
    assert!(format!("{chain:?}").contains("AzureCliCredential"));

    // signed out
    let bin = fake_az(dir.path(), None);
    let cli = AzureCliCredential::from_env(
        &Env::from_pairs([("PATH", bin.display().to_string())]),
        &options,
    );
    let err = cli.get_token(SCOPE, None).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(
        err.to_string()
            .contains("the Azure CLI is not signed in: run az login"),
        "{err}"
    );
}

#[tokio::test]
async fn doctor_reports_verdicts_prerequisites_and_fixes() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());

    // A pod with workload identity wired right.
    let env = workload_env(&fake, dir.path(), SUBJECT).await;
    let report = doctor::doctor(
        &env,
        &fake.credential_options(),
        Some((fake.vault_url.as_str(), fake.vault_options())),
    )
    .await;
    assert_eq!(
        reason(&report.credentials, "WorkloadIdentityCredential"),
        &Outcome::Token
    );
    let by_id = |id: &str| report.checks.iter().find(|c| c.id == id).unwrap().clone();
    for id in [
        "wi.pod-label",
        "wi.service-account-annotation",
        "wi.tenant",
        "wi.authority",
        "wi.token-file",
        "wi.token-claims",
        "wi.federated-credential-subject",
        "role-assignment",
    ] {
        assert_eq!(by_id(id).status, Status::Pass, "{id}: {report}");
    }
    let subject = by_id("wi.federated-credential-subject");
    assert!(
        subject.detail.contains(&format!("subject {SUBJECT}")),
        "{}",
        subject.detail
    );
    assert!(
        by_id("wi.token-claims")
            .detail
            .contains("aud=api://AzureADTokenExchange")
    );
    assert!(report.healthy());
    let printed = report.to_string();
    let token = std::fs::read_to_string(dir.path().join("azure-identity-token")).unwrap();
    assert!(
        !printed.contains(token.trim()),
        "the token is never printed"
    );

    // A pod without the label: every missing prerequisite with its fix.
    let bare = bare_env(dir.path());
    let mut options = fake.credential_options();
    options.imds_host = Some(format!("http://127.0.0.1:{}", closed_port()));
    options.imds_timeout = std::time::Duration::from_millis(300);
    let report = doctor::doctor(
        &bare,
        &options,
        Some((fake.vault_url.as_str(), fake.vault_options())),
    )
    .await;
    assert!(!report.healthy());
    let by_id = |id: &str| report.checks.iter().find(|c| c.id == id).unwrap().clone();
    let label = by_id("wi.pod-label");
    assert_eq!(label.status, Status::Fail);
    assert!(
        label
            .fix
            .unwrap()
            .contains("azure.workload.identity/use: \"true\"")
    );
    let annotation = by_id("wi.service-account-annotation");
    assert_eq!(annotation.status, Status::Fail);
    assert!(
        annotation
            .fix
            .unwrap()
            .contains("azure.workload.identity/client-id=")
    );
    assert_eq!(by_id("wi.token-file").status, Status::Skip);
    assert_eq!(by_id("role-assignment").status, Status::Skip);

    // A principal that may list but not read: the role assignment fails with the fix.
    let mut env = bare_env(dir.path());
    env.set("AZURE_CLIENT_ID", READER);
    env.set("AZURE_TENANT_ID", TENANT);
    env.set("AZURE_CLIENT_SECRET", READER_SECRET);
    let report = doctor::doctor(
        &env,
        &options,
        Some((fake.vault_url.as_str(), fake.vault_options())),
    )
    .await;
    let role = report
        .checks
        .iter()
        .find(|c| c.id == "role-assignment")
        .unwrap();
    assert_eq!(role.status, Status::Fail, "{report}");
    assert!(
        role.detail.contains("may list but not read"),
        "{}",
        role.detail
    );
    assert!(role.fix.as_deref().unwrap().contains(&format!(
        "--role \"Key Vault Secrets User\" --assignee {READER}"
    )));
    assert!(!report.to_string().contains(READER_SECRET));
}

#[tokio::test]
async fn doctor_decodes_an_expired_or_foreign_audience_token() {
    let dir = tempfile::tempdir().unwrap();
    // claims only; the signature is not checked by the doctor
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        br#"{"iss":"https://oidc.example/abc","sub":"system:serviceaccount:ns1:sa1","aud":["https://kubernetes.default.svc"],"exp":1000}"#,
    );
    let file = dir.path().join("token");
    std::fs::write(&file, format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln")).unwrap();
    let env = Env::from_pairs([
        ("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string()),
        ("AZURE_CLIENT_ID", "id".to_owned()),
        ("AZURE_TENANT_ID", "t".to_owned()),
    ]);
    let checks = doctor::workload_identity_checks(&env, 2000);
    let claims = checks.iter().find(|c| c.id == "wi.token-claims").unwrap();
    assert_eq!(claims.status, Status::Fail);
    assert!(
        claims.detail.contains("lacks api://AzureADTokenExchange"),
        "{}",
        claims.detail
    );
    assert!(
        claims.detail.contains("it expired 1000 s ago"),
        "{}",
        claims.detail
    );
    let subject = checks
        .iter()
        .find(|c| c.id == "wi.federated-credential-subject")
        .unwrap();
    assert!(
        subject.detail.contains("system:serviceaccount:ns1:sa1")
            && subject.detail.contains("issuer https://oidc.example/abc")
    );
    assert!(
        subject
            .fix
            .as_deref()
            .unwrap()
            .contains("--issuer https://oidc.example/abc --subject system:serviceaccount:ns1:sa1")
    );
    assert_eq!(
        checks
            .iter()
            .find(|c| c.id == "wi.authority")
            .unwrap()
            .status,
        Status::Warn
    );
}

#[tokio::test]
async fn a_token_endpoint_503_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    fake.fault(serde_json::json!({"target": "entra", "status": 503, "count": 1}))
        .await;
    let cs = tresor_azure::ClientSecretCredential::new(
        TENANT,
        OFFICER,
        OFFICER_SECRET.into(),
        &fake.credential_options(),
        &Env::default(),
    )
    .unwrap();
    cs.get_token(SCOPE, None).await.unwrap();
    let statuses: Vec<_> = fake
        .requests()
        .await
        .into_iter()
        .filter(|r| r["server"] == "entra")
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        vec![serde_json::json!(503), serde_json::json!(200)]
    );
}

#[tokio::test]
async fn a_federated_token_with_a_forged_signature_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let env = workload_env(&fake, dir.path(), SUBJECT).await;
    // Same claims, another signature: the fake verifies it with its OIDC issuer's key.
    let file = dir.path().join("azure-identity-token");
    let token = std::fs::read_to_string(&file).unwrap();
    let (signed, _) = token.rsplit_once('.').unwrap();
    std::fs::write(
        &file,
        format!("{signed}.c2lnbmF0dXJlLW5vdC1ieS10aGUtaXNzdWVy"),
    )
    .unwrap();
    let chain = DefaultCredential::from_env(&env, &fake.credential_options());
    let err = chain.get_token_chained(SCOPE, None).await.unwrap_err();
    let Outcome::Failed(why) = reason(&err.attempts, "WorkloadIdentityCredential") else {
        panic!("{err}");
    };
    assert!(why.contains("AADSTS5002738"), "{why}");
    assert!(why.contains("signature could not be verified"), "{why}");
}

#[tokio::test]
async fn concurrent_first_requests_share_one_token_request() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let mut env = bare_env(dir.path());
    env.set("AZURE_CLIENT_ID", OFFICER);
    env.set("AZURE_TENANT_ID", TENANT);
    env.set("AZURE_CLIENT_SECRET", OFFICER_SECRET);
    let kv = Arc::new(
        KeyVaultClient::with_default_credential(
            &fake.vault_url,
            &env,
            &fake.credential_options(),
            fake.vault_options(),
        )
        .unwrap(),
    );
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let kv = kv.clone();
            tokio::spawn(async move { kv.get_secret("ghcr-token", None).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(
            t.await.unwrap().unwrap().value.expose(),
            "fake-ghcr-token-v2"
        );
    }
    let token_requests = fake
        .requests()
        .await
        .into_iter()
        .filter(|r| r["server"] == "entra" && r["path"].as_str().unwrap().ends_with("/token"))
        .count();
    assert_eq!(token_requests, 1);
}

/// Something that is not IMDS holds the address (a proxy, another service): unavailable, and
/// told apart from "nothing answered" and from IMDS refusing.
#[tokio::test]
async fn a_non_imds_answer_is_told_apart() {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
            );
        }
    });
    let options = tresor_azure::CredentialOptions {
        imds_host: Some(format!("http://127.0.0.1:{port}")),
        ..Default::default()
    };
    let mi = tresor_azure::ManagedIdentityCredential::from_env(&Env::default(), &options).unwrap();
    let err = mi.get_token(SCOPE, None).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(
        err.to_string()
            .contains("something answered 404 at http://127.0.0.1:")
            && err.to_string().contains("but not as IMDS does"),
        "{err}"
    );
}

#[tokio::test]
async fn an_expired_federated_token_and_a_certificate_variable_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeAzure::start(dir.path());
    let env = workload_env(&fake, dir.path(), SUBJECT).await;
    fake.advance_clock(7200).await; // the projected token (1 h) is now expired for Entra
    let chain = DefaultCredential::from_env(&env, &fake.credential_options());
    let err = chain.get_token_chained(SCOPE, None).await.unwrap_err();
    let Outcome::Failed(why) = reason(&err.attempts, "WorkloadIdentityCredential") else {
        panic!("{err}");
    };
    assert!(
        why.contains("AADSTS700024: Client assertion is not within its valid time range"),
        "{why}"
    );
    assert!(why.contains("the projected token has expired"), "{why}");

    let mut env = bare_env(dir.path());
    env.set("AZURE_CLIENT_ID", OFFICER);
    env.set("AZURE_TENANT_ID", TENANT);
    env.set("AZURE_CLIENT_CERTIFICATE_PATH", "/etc/azure/cert.pem");
    let err = tresor_azure::ClientSecretCredential::from_env(&env, &fake.credential_options())
        .unwrap_err();
    assert!(err.is_unavailable());
    assert_eq!(
        err.to_string(),
        "ClientSecretCredential unavailable: AZURE_CLIENT_SECRET is not set (AZURE_CLIENT_CERTIFICATE_PATH is set, but certificate credentials are not supported: use a client secret or workload identity)"
    );
}
