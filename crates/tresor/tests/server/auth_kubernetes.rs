//! Kubernetes auth end to end: the real `tresor` binary, the vaultrs client
//! (`vaultrs::auth::kubernetes`) and the FAKE Kubernetes API server
//! (`test-support/fake-kube-apiserver`, schema-checked; `fake_kube_apiserver_answers_real_
//! clients_as_the_api_server_does` holds it to kubectl and the Python client).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;
use crate::support_kubernetes;

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value, json};
use support_kubernetes::FakeKube;
use vaultrs::api::auth::kubernetes::requests::{
    ConfigureKubernetesAuthRequest, CreateKubernetesRoleRequest,
};
use vaultrs::auth::kubernetes;
use vaultrs::error::ClientError;

use common::{Server, raw, vault_client};

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// A cluster: team-a (stage=prod) with `app` and `worker`, team-b (stage=dev) with `app`,
/// vault/reviewer bound to system:auth-delegator and view, vault/nobody bound to nothing.
struct Cluster {
    fake: FakeKube,
    app_uid: String,
    reviewer: String,
}

async fn cluster(dir: &Path) -> Cluster {
    let fake = FakeKube::start(dir);
    fake.namespace("team-a", json!({"stage": "prod"})).await;
    fake.namespace("team-b", json!({"stage": "dev"})).await;
    fake.namespace("vault", json!({})).await;
    let app_uid = fake.service_account("team-a", "app").await;
    fake.service_account("team-a", "worker").await;
    fake.service_account("team-b", "app").await;
    fake.service_account("vault", "reviewer").await;
    fake.service_account("vault", "nobody").await;
    fake.bind("system:auth-delegator", "vault", "reviewer")
        .await;
    fake.bind("view", "vault", "reviewer").await;
    let reviewer = fake.token("vault", "reviewer", &[], 7200).await;
    Cluster {
        fake,
        app_uid,
        reviewer,
    }
}

fn dev_server(dir: &Path, service_account_dir: &Path) -> Server {
    Server::start_with_env(
        &[
            "server",
            "-dev",
            "-dev-listen-address=127.0.0.1:0",
            "-dev-root-token-id=root",
        ],
        &[(
            "TRESOR_KUBERNETES_SERVICE_ACCOUNT_DIR",
            service_account_dir.to_str().unwrap(),
        )],
        dir,
    )
}

/// Mounts `kubernetes/` and configures it with vaultrs (host and CA), then sets the reviewer
/// JWT, which vaultrs' request type does not carry, with a raw write.
async fn mount(server: &Server, cluster: &Cluster, reviewer: Option<&str>) {
    let (status, body) = raw(
        server,
        "POST",
        "sys/auth/kubernetes",
        Some("root"),
        Some(json!({"type": "kubernetes"})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let client = vault_client(&server.addr, "root");
    kubernetes::configure(
        &client,
        "kubernetes",
        &cluster.fake.url,
        Some(
            ConfigureKubernetesAuthRequest::builder()
                .kubernetes_ca_cert(cluster.fake.ca_pem.clone())
                .disable_local_ca_jwt(true),
        ),
    )
    .await
    .unwrap();
    if let Some(reviewer) = reviewer {
        configure(server, cluster, json!({"token_reviewer_jwt": reviewer})).await;
    }
}

/// Rewrites the whole config: the fake's host and CA plus `extra`.
async fn configure(server: &Server, cluster: &Cluster, extra: Value) {
    let mut body = json!({
        "kubernetes_host": cluster.fake.url,
        "kubernetes_ca_cert": cluster.fake.ca_pem,
        "disable_local_ca_jwt": true,
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (status, answer) = raw(
        server,
        "POST",
        "auth/kubernetes/config",
        Some("root"),
        Some(body),
    )
    .await;
    assert_eq!(status, 204, "{answer}");
}

async fn role(
    server: &Server,
    name: &str,
    names: &[&str],
    namespaces: &[&str],
    audience: Option<&str>,
) {
    let client = vault_client(&server.addr, "root");
    let mut builder = CreateKubernetesRoleRequest::builder();
    builder
        .bound_service_account_names(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .bound_service_account_namespaces(
            namespaces.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .token_policies(vec!["app-read".to_owned(), "app-write".to_owned()])
        .token_ttl("1h")
        .token_max_ttl("2h");
    if let Some(a) = audience {
        builder.audience(a);
    }
    kubernetes::role::create(&client, "kubernetes", name, Some(&mut builder))
        .await
        .unwrap();
}

/// Logs in with vaultrs; on refusal, the HTTP status and the error messages.
async fn login(
    server: &Server,
    role: &str,
    jwt: &str,
) -> Result<vaultrs::api::AuthInfo, (u16, String)> {
    let client = vault_client(&server.addr, "");
    match kubernetes::login(&client, "kubernetes", role, jwt).await {
        Ok(auth) => Ok(auth),
        Err(ClientError::APIError { code, errors }) => Err((code, errors.join("; "))),
        Err(other) => panic!("unexpected client error: {other}"),
    }
}

fn assert_refused(
    result: Result<vaultrs::api::AuthInfo, (u16, String)>,
    status: u16,
    needles: &[&str],
) -> String {
    let (code, message) = match result {
        Ok(auth) => panic!("login succeeded with policies {:?}", auth.policies),
        Err(e) => e,
    };
    assert_eq!(code, status, "{message}");
    for needle in needles {
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_logins_yield_tokens_with_exactly_the_roles_policies_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(dir.path()).await;
    let server = dev_server(dir.path(), &dir.path().join("no-pod"));
    mount(&server, &cluster, Some(&cluster.reviewer)).await;
    role(&server, "app", &["app"], &["team-a"], Some("vault")).await;

    let client = vault_client(&server.addr, "root");
    let read = kubernetes::role::read(&client, "kubernetes", "app")
        .await
        .unwrap();
    assert_eq!(read.bound_service_account_names, ["app"]);
    assert_eq!(read.token_policies, ["app-read", "app-write"]);
    assert_eq!((read.token_ttl, read.token_max_ttl), (3600, 7200));
    assert_eq!(
        kubernetes::role::list(&client, "kubernetes")
            .await
            .unwrap()
            .keys,
        ["app"]
    );
    let config = kubernetes::read_config(&client, "kubernetes")
        .await
        .unwrap();
    assert_eq!(config.kubernetes_host, cluster.fake.url);

    let jwt = cluster.fake.token("team-a", "app", &["vault"], 3600).await;
    let auth = login(&server, "app", &jwt).await.unwrap();
    assert_eq!(auth.policies, ["app-read", "app-write", "default"]);
    assert_eq!(auth.token_policies, ["app-read", "app-write", "default"]);
    assert_eq!(auth.lease_duration, 3600);
    assert!(auth.renewable);
    let metadata: HashMap<String, String> = auth.metadata.clone().unwrap();
    let expected: HashMap<String, String> = [
        ("role", "app"),
        ("service_account_name", "app"),
        ("service_account_namespace", "team-a"),
        ("service_account_secret_name", ""),
        ("service_account_uid", cluster.app_uid.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(metadata, expected);

    // The token is what the role says: its policies, its display name, its path.
    let (status, me) = raw(
        &server,
        "GET",
        "auth/token/lookup-self",
        Some(&auth.client_token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["data"]["display_name"], "kubernetes-team-a-app");
    assert_eq!(me["data"]["path"], "auth/kubernetes/login");
    assert_eq!(
        me["data"]["policies"],
        json!(["app-read", "app-write", "default"])
    );
    assert_eq!(me["data"]["meta"]["service_account_uid"], cluster.app_uid);

    // The TokenReview was made by the reviewer, for the role's audience.
    let reviews = cluster.fake.reviews().await;
    let last = reviews.last().unwrap();
    assert_eq!(last["caller"], "system:serviceaccount:vault:reviewer");
    assert_eq!(last["audiences"], json!(["vault"]));
    assert_eq!(last["authenticated"], true);

    // Renewal stays within the role's max TTL; deleting the role stops renewals.
    let (status, renewed) = raw(
        &server,
        "POST",
        "auth/token/renew-self",
        Some(&auth.client_token),
        Some(json!({"increment": "5h"})),
    )
    .await;
    assert_eq!(status, 200, "{renewed}");
    assert!(
        renewed["auth"]["lease_duration"].as_u64().unwrap() <= 7200,
        "{renewed}"
    );
    kubernetes::role::delete(&client, "kubernetes", "app")
        .await
        .unwrap();
    let (status, refused) = raw(
        &server,
        "POST",
        "auth/token/renew-self",
        Some(&auth.client_token),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 500, "{refused}");
    assert!(
        refused
            .to_string()
            .contains("role app does not exist during renewal"),
        "{refused}"
    );

    // Disabling the mount revokes what it issued.
    role(&server, "app", &["app"], &["team-a"], None).await;
    let jwt = cluster.fake.token("team-a", "app", &[], 3600).await;
    let auth = login(&server, "app", &jwt).await.unwrap();
    let (status, _) = raw(&server, "DELETE", "sys/auth/kubernetes", Some("root"), None).await;
    assert_eq!(status, 204);
    let (status, _) = raw(
        &server,
        "GET",
        "auth/token/lookup-self",
        Some(&auth.client_token),
        None,
    )
    .await;
    assert_eq!(status, 403, "a token from a disabled mount is revoked");

    assert_eq!(cluster.fake.violations().await, Vec::<Value>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_mismatch_is_refused_with_a_reason_naming_the_binding_and_no_jwt_leaks() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(dir.path()).await;
    let fake = &cluster.fake;
    let server = dev_server(dir.path(), &dir.path().join("no-pod"));
    mount(&server, &cluster, Some(&cluster.reviewer)).await;
    role(&server, "app", &["app"], &["team-a", "team-c*"], None).await;
    role(&server, "aud", &["app"], &["team-a"], Some("vault")).await;

    let app = fake.token("team-a", "app", &[], 3600).await;
    let worker = fake.token("team-a", "worker", &[], 3600).await;
    let team_b = fake.token("team-b", "app", &[], 3600).await;
    let nobody = fake.token("vault", "nobody", &[], 3600).await;
    let mut jwts = vec![
        app.clone(),
        worker.clone(),
        team_b.clone(),
        nobody.clone(),
        cluster.reviewer.clone(),
    ];
    let mut messages = Vec::new();

    messages.push(assert_refused(
        login(&server, "app", &team_b).await,
        403,
        &["namespace not authorized", "service account namespace 'team-b' is not in bound_service_account_namespaces [team-a, team-c*]"],
    ));
    messages.push(assert_refused(
        login(&server, "app", &worker).await,
        403,
        &[
            "service account name not authorized",
            "service account name 'worker' is not in bound_service_account_names [app]",
        ],
    ));
    messages.push(assert_refused(
        login(&server, "aud", &app).await,
        403,
        &[
            "invalid audience (aud) claim",
            "audience mismatch",
            "the role's audience 'vault'",
            ISSUER,
        ],
    ));

    // The TokenReview says no: the service account was deleted after its token was minted.
    let doomed_uid = fake.service_account("team-a", "doomed").await;
    let doomed = fake.token("team-a", "doomed", &[], 3600).await;
    jwts.push(doomed.clone());
    role(&server, "any", &["*"], &["team-a"], None).await;
    fake.delete_service_account("team-a", "doomed").await;
    messages.push(assert_refused(
        login(&server, "any", &doomed).await,
        403,
        &[
            "permission denied",
            "TokenReview says the login JWT is not authenticated",
            "serviceaccounts \"doomed\" not found",
        ],
    ));
    assert!(!doomed_uid.is_empty());

    // The reviewer lacks system:auth-delegator.
    configure(&server, &cluster, json!({"token_reviewer_jwt": nobody})).await;
    messages.push(assert_refused(
        login(&server, "app", &app).await,
        403,
        &[
            "permission denied",
            "403 Forbidden",
            "system:auth-delegator",
            "system:serviceaccount:vault:nobody",
        ],
    ));

    // The reviewer's token expired (the fake's clock moves past its expiry; the app's token,
    // minted later for longer, is still valid).
    let short_reviewer = fake.token("vault", "reviewer", &[], 600).await;
    let long_app = fake.token("team-a", "app", &[], 7200).await;
    jwts.extend([short_reviewer.clone(), long_app.clone()]);
    configure(
        &server,
        &cluster,
        json!({"token_reviewer_jwt": short_reviewer}),
    )
    .await;
    login(&server, "app", &long_app).await.unwrap();
    fake.advance_clock(900).await;
    messages.push(assert_refused(
        login(&server, "app", &long_app).await,
        403,
        &[
            "permission denied",
            "401 Unauthorized",
            "token_reviewer_jwt has expired or is not valid",
        ],
    ));

    // The CA does not verify the API server's certificate (a mount that never trusted it).
    let (status, _) = raw(
        &server,
        "POST",
        "sys/auth/untrusted",
        Some("root"),
        Some(json!({"type": "kubernetes"})),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = raw(&server, "POST", "auth/untrusted/config", Some("root"), Some(json!({
        "kubernetes_host": fake.url, "kubernetes_ca_cert": fake.untrusted_ca_pem, "token_reviewer_jwt": cluster.reviewer,
    }))).await;
    assert_eq!(status, 204);
    let (status, _) = raw(
        &server,
        "POST",
        "auth/untrusted/role/app",
        Some("root"),
        Some(json!({
            "bound_service_account_names": "app", "bound_service_account_namespaces": "team-a",
        })),
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = raw(
        &server,
        "POST",
        "auth/untrusted/login",
        None,
        Some(json!({"role": "app", "jwt": long_app})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let message = body["errors"][0].as_str().unwrap().to_owned();
    for needle in [
        "permission denied",
        "TLS handshake",
        "kubernetes_ca_cert does not verify the API server's certificate",
        "UnknownIssuer",
        &fake.url,
    ] {
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
    messages.push(message);

    // Nothing listens at the configured host.
    configure(
        &server,
        &cluster,
        json!({"kubernetes_host": "https://127.0.0.1:1", "token_reviewer_jwt": cluster.reviewer}),
    )
    .await;
    messages.push(assert_refused(
        login(&server, "app", &long_app).await,
        403,
        &[
            "permission denied",
            "cannot reach the Kubernetes API server at https://127.0.0.1:1",
            "Connection refused",
        ],
    ));

    // Terse mode: OpenBao's words only; the log still has the full reason.
    let (status, _) = raw(
        &server,
        "POST",
        "sys/auth/kubernetes/tune",
        Some("root"),
        Some(json!({"options": {"verbose_denials": "false"}})),
    )
    .await;
    assert_eq!(status, 204);
    configure(
        &server,
        &cluster,
        json!({"token_reviewer_jwt": cluster.reviewer}),
    )
    .await;
    let terse = assert_refused(login(&server, "app", &team_b).await, 403, &[]);
    assert_eq!(terse, "namespace not authorized");

    // No JWT, reviewer token included, in any answer or anywhere in the server's log.
    let log = server.log_text();
    assert!(
        log.contains(
            "service account namespace 'team-b' is not in bound_service_account_namespaces"
        ),
        "the full reason is logged:\n{log}"
    );
    for jwt in &jwts {
        let signature = jwt.rsplit('.').next().unwrap();
        for m in &messages {
            assert!(
                !m.contains(jwt.as_str()) && !m.contains(signature),
                "a JWT leaked into {m:?}"
            );
        }
        assert!(
            !log.contains(jwt.as_str()) && !log.contains(signature),
            "a JWT leaked into the server log"
        );
    }
    assert!(!log.contains("eyJ"), "nothing JWT-shaped in the server log");
    assert_eq!(fake.violations().await, Vec::<Value>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_service_account_token_is_reread_on_every_login() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(dir.path()).await;
    let fake = &cluster.fake;
    // What a pod running Tresor has mounted: its token and the cluster CA.
    let pod = dir.path().join("serviceaccount");
    std::fs::create_dir_all(&pod).unwrap();
    let first = fake.token("vault", "reviewer", &[], 3600).await;
    std::fs::write(pod.join("token"), &first).unwrap();
    std::fs::write(pod.join("ca.crt"), &fake.ca_pem).unwrap();
    let server = dev_server(dir.path(), &pod);
    let (status, _) = raw(
        &server,
        "POST",
        "sys/auth/kubernetes",
        Some("root"),
        Some(json!({"type": "kubernetes"})),
    )
    .await;
    assert_eq!(status, 204);
    // Only the host: the CA and the reviewer token come from the pod's files.
    let client = vault_client(&server.addr, "root");
    kubernetes::configure(&client, "kubernetes", &fake.url, None)
        .await
        .unwrap();
    let (_, config) = raw(&server, "GET", "auth/kubernetes/config", Some("root"), None).await;
    assert_eq!(config["data"]["token_reviewer_jwt_set"], false);
    assert_eq!(config["data"]["kubernetes_ca_cert"], "");
    role(&server, "app", &["app"], &["team-a"], None).await;
    let app = fake.token("team-a", "app", &[], 7200).await;

    let jti = |jwt: &str| {
        use base64::Engine;
        let claims = jwt.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(claims)
                .unwrap(),
        )
        .unwrap();
        format!("JTI={}", claims["jti"].as_str().unwrap())
    };
    login(&server, "app", &app).await.unwrap();
    assert_eq!(
        fake.reviews().await.last().unwrap()["caller_credential"],
        jti(&first)
    );

    // The kubelet rotates the projected token: the next login uses the new one, no restart.
    let second = fake.token("vault", "reviewer", &[], 3600).await;
    std::fs::write(pod.join("token"), format!("{second}\n")).unwrap();
    login(&server, "app", &app).await.unwrap();
    assert_eq!(
        fake.reviews().await.last().unwrap()["caller_credential"],
        jti(&second)
    );

    // The old token expires; only the rotated one is in use, so logins keep working.
    fake.advance_clock(3000).await;
    let third = fake.token("vault", "reviewer", &[], 3600).await;
    std::fs::write(pod.join("token"), &third).unwrap();
    login(&server, "app", &app).await.unwrap();

    // A token file that is not a reviewer: the reason names the file.
    let nobody = fake.token("vault", "nobody", &[], 3600).await;
    std::fs::write(pod.join("token"), &nobody).unwrap();
    assert_refused(
        login(&server, "app", &app).await,
        403,
        &[
            "403 Forbidden",
            "the local service account token",
            "serviceaccount/token",
            "system:auth-delegator",
        ],
    );
    // No token file at all: the client's own JWT is the bearer (and `app` is no delegator).
    std::fs::remove_file(pod.join("token")).unwrap();
    assert_refused(
        login(&server, "app", &app).await,
        403,
        &[
            "the login JWT itself",
            "the client's service account lacks the ClusterRole system:auth-delegator",
        ],
    );
    std::fs::write(pod.join("token"), &third).unwrap();
    login(&server, "app", &app).await.unwrap();
    // The CA file is read on login too: without it the login cannot trust the server.
    std::fs::remove_file(pod.join("ca.crt")).unwrap();
    assert_refused(
        login(&server, "app", &app).await,
        500,
        &["ca.crt: no such file or directory"],
    );
    assert_eq!(fake.violations().await, Vec::<Value>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_selectors_and_pem_keys_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(dir.path()).await;
    let fake = &cluster.fake;
    let server = dev_server(dir.path(), &dir.path().join("no-pod"));
    mount(&server, &cluster, Some(&cluster.reviewer)).await;
    let (status, body) = raw(
        &server,
        "POST",
        "auth/kubernetes/role/prod",
        Some("root"),
        Some(json!({
            "bound_service_account_names": "app",
            "bound_service_account_namespace_selector": "matchLabels:\n  stage: prod\n",
            "token_policies": "prod",
        })),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let team_a = fake.token("team-a", "app", &[], 3600).await;
    let team_b = fake.token("team-b", "app", &[], 3600).await;
    let auth = login(&server, "prod", &team_a).await.unwrap();
    assert_eq!(auth.policies, ["default", "prod"]);
    assert_refused(
        login(&server, "prod", &team_b).await,
        403,
        &[
            "namespace not authorized",
            "its labels {kubernetes.io/metadata.name=team-b, stage=dev} do not match bound_service_account_namespace_selector {stage=prod}",
        ],
    );

    // pem_keys: the cluster's signing key verifies its tokens; another key does not.
    configure(
        &server,
        &cluster,
        json!({"token_reviewer_jwt": cluster.reviewer, "pem_keys": [fake.sa_public_key]}),
    )
    .await;
    login(&server, "prod", &team_a).await.unwrap();
    let other = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYCbhmXK0vcgPiwZ7Z4CLbV+3VVYW\nGi+J2Z55VuCFgIdtnYR6PVjSecvh5Yztxp3FhFOMb2Bno1JwU3QDbSjrSw==\n-----END PUBLIC KEY-----\n";
    configure(
        &server,
        &cluster,
        json!({"token_reviewer_jwt": cluster.reviewer, "pem_keys": [other]}),
    )
    .await;
    assert_refused(
        login(&server, "prod", &team_a).await,
        403,
        &[
            "permission denied",
            "does not verify with any of the 1 configured pem_keys",
        ],
    );
    // A tampered payload fails the signature even though the API server is never asked.
    configure(
        &server,
        &cluster,
        json!({"token_reviewer_jwt": cluster.reviewer, "pem_keys": [fake.sa_public_key]}),
    )
    .await;
    let reviews_before = fake.reviews().await.len();
    let spliced = format!(
        "{}.{}.{}",
        team_b.split('.').next().unwrap(),
        team_a.split('.').nth(1).unwrap(),
        team_b.rsplit('.').next().unwrap()
    );
    assert_refused(
        login(&server, "prod", &spliced).await,
        403,
        &["signature does not verify"],
    );
    assert_eq!(
        fake.reviews().await.len(),
        reviews_before,
        "refused before any TokenReview"
    );
    assert_eq!(fake.violations().await, Vec::<Value>::new());
}

/// The fake is held to the real clients: the Python `kubernetes` package and kubectl create
/// namespaces, service accounts, tokens and TokenReviews against it and get the real API's
/// answers, and every body it sees satisfies the official schemas.
#[test]
fn fake_kube_apiserver_answers_real_clients_as_the_api_server_does() {
    let out = std::process::Command::new(support_kubernetes::python())
        .arg(support_kubernetes::script("check_real_clients.py"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(" passed, 0 failed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One templated policy gives each namespace its own path: the login's identity alias carries
/// the service account's namespace, and `{{identity.entity.aliases.<accessor>.metadata.…}}`
/// fills it in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_templated_policy_gives_each_namespace_its_own_path() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(dir.path()).await;
    let fake = &cluster.fake;
    let server = dev_server(dir.path(), &dir.path().join("no-pod"));
    mount(&server, &cluster, Some(&cluster.reviewer)).await;
    let (_, auths) = raw(&server, "GET", "sys/auth", Some("root"), None).await;
    let accessor = auths["data"]["kubernetes/"]["accessor"]
        .as_str()
        .unwrap()
        .to_owned();
    let policy = format!(
        "path \"secret/data/{{{{identity.entity.aliases.{accessor}.metadata.service_account_namespace}}}}/*\" {{\n  capabilities = [\"read\"]\n}}\n"
    );
    let (status, body) = raw(
        &server,
        "PUT",
        "sys/policies/acl/per-namespace",
        Some("root"),
        Some(json!({"policy": policy})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = raw(
        &server,
        "POST",
        "auth/kubernetes/role/apps",
        Some("root"),
        Some(json!({
            "bound_service_account_names": "app", "bound_service_account_namespaces": "team-*",
            "token_policies": "per-namespace", "alias_name_source": "serviceaccount_name",
        })),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    for ns in ["team-a", "team-b"] {
        let (status, body) = raw(
            &server,
            "POST",
            &format!("secret/data/{ns}/db"),
            Some("root"),
            Some(json!({"data": {"owner": ns}})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let a = login(
        &server,
        "apps",
        &fake.token("team-a", "app", &[], 3600).await,
    )
    .await
    .unwrap();
    let b = login(
        &server,
        "apps",
        &fake.token("team-b", "app", &[], 3600).await,
    )
    .await
    .unwrap();
    assert_ne!(a.entity_id, b.entity_id, "one entity per service account");
    for (auth, own, other) in [(&a, "team-a", "team-b"), (&b, "team-b", "team-a")] {
        let (status, body) = raw(
            &server,
            "GET",
            &format!("secret/data/{own}/db"),
            Some(&auth.client_token),
            None,
        )
        .await;
        assert_eq!(status, 200, "{own} reads its own path: {body}");
        assert_eq!(body["data"]["data"]["owner"], own);
        let (status, _) = raw(
            &server,
            "GET",
            &format!("secret/data/{other}/db"),
            Some(&auth.client_token),
            None,
        )
        .await;
        assert_eq!(status, 403, "{own} cannot read {other}'s path");
    }
    // The alias is named <namespace>/<name> as the role asks.
    let (status, entity) = raw(
        &server,
        "GET",
        &format!("identity/entity/id/{}", a.entity_id),
        Some("root"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{entity}");
    let alias = &entity["data"]["aliases"][0];
    assert_eq!(alias["name"], "team-a/app");
    assert_eq!(alias["mount_accessor"], accessor);
    assert_eq!(alias["metadata"]["service_account_namespace"], "team-a");
}

/// `tresor login -method=kubernetes role=… jwt=@file` stores a token with the role's policies;
/// a namespace outside the role is refused with the reason, and the JWT is never printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tresor_login_with_the_kubernetes_method() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(dir.path()).await;
    let server = dev_server(dir.path(), &dir.path().join("no-pod"));
    mount(&server, &cluster, Some(&cluster.reviewer)).await;
    role(&server, "app", &["app"], &["team-a"], Some("vault")).await;
    let jwt = cluster.fake.token("team-a", "app", &["vault"], 600).await;
    let jwt_file = dir.path().join("sa-token");
    std::fs::write(&jwt_file, &jwt).unwrap();
    // A HOME of its own: `login` stores the token there, and the shared `scratch_home` is
    // read by tests running beside this one in the same process.
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let run = |args: Vec<String>| {
        std::process::Command::new(common::BIN)
            .args(args)
            .env_clear()
            .env("HOME", &home)
            .env("VAULT_ADDR", &server.addr)
            .output()
            .unwrap()
    };
    let out = run(vec![
        "login".into(),
        "-method=kubernetes".into(),
        "-format=json".into(),
        "role=app".into(),
        format!("jwt=@{}", jwt_file.display()),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        answer["auth"]["policies"],
        json!(["app-read", "app-write", "default"])
    );
    assert_eq!(
        answer["auth"]["metadata"]["service_account_namespace"],
        "team-a"
    );
    let stored = std::fs::read_to_string(home.join(".vault-token")).unwrap();
    assert_eq!(
        stored.trim(),
        answer["auth"]["client_token"].as_str().unwrap()
    );
    assert!(!stdout.contains(&jwt));

    role(&server, "other", &["app"], &["team-b"], Some("vault")).await;
    let out = run(vec![
        "login".into(),
        "-method=kubernetes".into(),
        "role=other".into(),
        format!("jwt=@{}", jwt_file.display()),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("team-a") && stderr.contains("bound_service_account_namespaces"),
        "{stderr}"
    );
    assert!(!stderr.contains(&jwt) && !String::from_utf8_lossy(&out.stdout).contains(&jwt));
}
