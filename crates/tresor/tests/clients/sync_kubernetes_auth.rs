//! `tresor sync` logging in to Tresor with Kubernetes auth, as ESO and VSO do: a TokenRequest
//! for the service account a resource names (ESO `serviceAccountRef`, VSO
//! `kubernetes.serviceAccount`, `TresorSecret` `auth.kubernetes.serviceAccount`) or a JWT kept
//! in a Secret (ESO `secretRef`), presented to the real server's `auth/kubernetes`, which
//! reviews it with the FAKE Kubernetes API server (test-support/fake-kube-apiserver) that
//! minted it. Neither `once` nor the controller gets `VAULT_TOKEN` here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;
use crate::support_kubernetes;
use crate::support_sync;
use crate::sync_once_cluster::{secret, text};
use crate::sync_run::{Controller, create, poll, ready, secret_holds};

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{BIN, Server, scratch_home};
use serde_json::{Value, json};
use support_kubernetes::FakeKube;
use support_sync::{LEGACY_KEY, ROOT, WEB_PASSWORD_V2, assert_no_values, decode, ok, seed};

/// A cluster with the ESO/VSO CRDs and the TresorSecret CRD; service accounts `apps/web`
/// (the one Tresor's roles bind), `apps/intruder` (bound to nothing), `shop/shop`, and
/// `vault/reviewer`, Tresor's token reviewer (system:auth-delegator).
async fn cluster(dir: &Path) -> (FakeKube, String) {
    let kube = crate::sync_run::cluster(dir).await;
    kube.namespace("vault", json!({})).await;
    kube.service_account("apps", "web").await;
    kube.service_account("apps", "intruder").await;
    kube.service_account("shop", "shop").await;
    kube.service_account("vault", "reviewer").await;
    kube.bind("system:auth-delegator", "vault", "reviewer")
        .await;
    let reviewer = kube.token("vault", "reviewer", &[], 7200).await;
    (kube, reviewer)
}

/// Tresor's `auth/kubernetes` reviewing tokens with the fake, and three roles:
/// `web` (apps/web, any audience the API server's own), `web-vault` (apps/web, audience
/// `vault`), `shop` (shop/shop); each with a policy reading only its own data.
async fn configure_tresor(server: &Server, kube: &FakeKube, reviewer: &str) {
    seed(server).await;
    ok(
        server,
        "POST",
        "sys/auth/kubernetes",
        json!({"type": "kubernetes"}),
    )
    .await;
    ok(
        server,
        "POST",
        "auth/kubernetes/config",
        json!({"kubernetes_host": kube.url, "kubernetes_ca_cert": kube.ca_pem,
               "token_reviewer_jwt": reviewer, "disable_local_ca_jwt": true}),
    )
    .await;
    ok(
        server,
        "PUT",
        "sys/policies/acl/web",
        json!({"policy": "path \"secret/data/webapp/*\" { capabilities = [\"read\"] }"}),
    )
    .await;
    ok(
        server,
        "PUT",
        "sys/policies/acl/shop",
        json!({"policy": "path \"legacy/shop\" { capabilities = [\"read\"] }"}),
    )
    .await;
    for (role, ns, sa, audience, policy) in [
        ("web", "apps", "web", None, "web"),
        ("web-vault", "apps", "web", Some("vault"), "web"),
        ("shop", "shop", "shop", None, "shop"),
    ] {
        let mut body = json!({"bound_service_account_names": [sa],
            "bound_service_account_namespaces": [ns], "token_policies": [policy], "token_ttl": "10m"});
        if let Some(a) = audience {
            body["audience"] = json!(a);
        }
        ok(
            server,
            "POST",
            &format!("auth/kubernetes/role/{role}"),
            body,
        )
        .await;
    }
}

/// `tresor sync once -f DIR` with the fake's kubeconfig and no token at all.
fn once_without_token(server: &Server, kube: &FakeKube, dir: &Path) -> Output {
    Command::new(BIN)
        .args(["sync", "once", "--jwt-file", "/nonexistent/token", "-f"])
        .arg(dir)
        .env("KUBECONFIG", kube.kubeconfig())
        .env("HOME", scratch_home())
        .env("VAULT_ADDR", &server.addr)
        .env_remove("VAULT_TOKEN")
        .env_remove("TRESOR_ADDR")
        .env_remove("TRESOR_TOKEN")
        .env_remove("BAO_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The service accounts whose tokens Tresor had reviewed (and accepted), in order.
async fn reviewed(kube: &FakeKube) -> Vec<String> {
    kube.reviews()
        .await
        .iter()
        .filter(|r| r["authenticated"] == true)
        .map(|r| r["username"].as_str().unwrap().to_owned())
        .collect()
}

/// A SecretStore `store` in `apps` logging in with role `web` as service account `account`,
/// and an ExternalSecret `name` reading the web password through it.
fn password_via(store: &str, account: &str, name: &str, refresh: &str) -> String {
    format!(
        r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {{name: {store}, namespace: apps}}
spec:
  provider:
    vault:
      server: "http://tresor.invalid:8200"
      path: secret
      auth:
        kubernetes: {{role: web, serviceAccountRef: {{name: {account}}}}}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {{name: {name}, namespace: apps}}
spec:
  refreshInterval: {refresh}
  secretStoreRef: {{kind: SecretStore, name: {store}}}
  data:
    - secretKey: password
      remoteRef: {{key: webapp/config, property: password}}
"#
    )
}

const LOGINS: &str = r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: as-web, namespace: apps}
spec:
  provider:
    vault:
      server: "http://tresor.invalid:8200"
      path: secret
      version: v2
      auth:
        kubernetes:
          mountPath: kubernetes
          role: web
          serviceAccountRef: {name: web}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: web-password, namespace: apps}
spec:
  secretStoreRef: {kind: SecretStore, name: as-web}
  data:
    - secretKey: password
      remoteRef: {key: webapp/config, property: password}
---
apiVersion: external-secrets.io/v1beta1
kind: SecretStore
metadata: {name: jwt-in-secret, namespace: apps}
spec:
  provider:
    vault:
      server: "http://tresor.invalid:8200"
      path: secret
      version: v2
      auth:
        kubernetes:
          role: web
          secretRef: {name: web-jwt, key: jwt}
---
apiVersion: external-secrets.io/v1beta1
kind: ExternalSecret
metadata: {name: web-username, namespace: apps}
spec:
  secretStoreRef: {kind: SecretStore, name: jwt-in-secret}
  data:
    - secretKey: username
      remoteRef: {key: webapp/config, property: username}
---
apiVersion: secrets.hashicorp.com/v1beta1
kind: VaultConnection
metadata: {name: default, namespace: apps}
spec: {address: "http://tresor.invalid:8200"}
---
apiVersion: secrets.hashicorp.com/v1beta1
kind: VaultAuth
metadata: {name: web, namespace: apps}
spec:
  method: kubernetes
  mount: kubernetes
  kubernetes: {role: web-vault, serviceAccount: web, audiences: [vault], tokenExpirationSeconds: 900}
---
apiVersion: secrets.hashicorp.com/v1beta1
kind: VaultStaticSecret
metadata: {name: webapp, namespace: apps}
spec:
  vaultAuthRef: web
  type: kv-v2
  mount: secret
  path: webapp/config
  destination: {name: webapp-config, create: true}
---
apiVersion: tresor.dev/v1alpha1
kind: TresorSecret
metadata: {name: shop, namespace: shop}
spec:
  connection: {address: "http://tresor.invalid:8200"}
  auth:
    kubernetes: {role: shop, serviceAccount: shop}
  sources:
    - kv: {mount: legacy, path: shop, kvVersion: 1}
  target: {name: shop-env}
"#;

/// `once` logs in as each resource's service account: a TokenRequest per service account
/// (default audience for ESO, `vault` for the VaultAuth that asks for it), a JWT read from a
/// Secret for ESO's `secretRef`; Tresor reviews each and its role's policy decides what it may
/// read. A store naming a service account Tresor does not bind, or one that does not exist,
/// fails with the reason and nothing is written.
#[tokio::test]
async fn once_logs_in_as_the_service_accounts_the_resources_name() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let (kube, reviewer) = cluster(dir.path()).await;
    configure_tresor(&server, &kube, &reviewer).await;
    let jwt = kube.token("apps", "web", &[], 3600).await;
    let (status, body) = kube
        .api(
            "POST",
            "/api/v1/namespaces/apps/secrets",
            Some(
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-jwt"},
                        "stringData": {"jwt": jwt}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(manifests.join("logins.yaml"), LOGINS).unwrap();

    let before = reviewed(&kube).await.len();
    let out = once_without_token(&server, &kube, &manifests);
    assert!(out.status.success(), "{}\n{}", text(&out), kube.log());
    assert_no_values(&String::from_utf8_lossy(&out.stderr));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(&jwt),
        "{}",
        text(&out)
    );
    assert_eq!(
        decode(&secret(&kube, "apps", "web-password").await, "password"),
        WEB_PASSWORD_V2
    );
    assert_eq!(
        decode(&secret(&kube, "apps", "web-username").await, "username"),
        "web"
    );
    assert_eq!(
        decode(&secret(&kube, "apps", "webapp-config").await, "password"),
        WEB_PASSWORD_V2
    );
    assert_eq!(
        decode(&secret(&kube, "shop", "shop-env").await, "api_key"),
        LEGACY_KEY
    );
    // One login per store and identity (the ESO store, the Secret's JWT, the VaultAuth, the
    // TresorSecret), each as the service account it named.
    let mut who = reviewed(&kube).await.split_off(before);
    who.sort();
    assert_eq!(
        who,
        [
            "system:serviceaccount:apps:web",
            "system:serviceaccount:apps:web",
            "system:serviceaccount:apps:web",
            "system:serviceaccount:shop:shop",
        ]
    );
    // The VaultAuth's token carried its audience (role `web-vault` requires `vault`).
    let reviews = kube.reviews().await;
    assert!(
        reviews
            .iter()
            .any(|r| r["audiences"] == json!(["vault"]) && r["authenticated"] == true),
        "{reviews:?}"
    );

    // `--output yaml` works without a cluster, so it cannot ask for tokens: it says so.
    let printed = Command::new(BIN)
        .args(["sync", "once", "--output", "yaml", "-f"])
        .arg(&manifests)
        .env("HOME", scratch_home())
        .env("VAULT_ADDR", &server.addr)
        .env_remove("VAULT_TOKEN")
        .env_remove("TRESOR_TOKEN")
        .env_remove("BAO_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&printed.stderr).to_string();
    assert_eq!(printed.status.code(), Some(1), "{}", text(&printed));
    assert!(printed.stdout.is_empty(), "{}", text(&printed));
    assert!(
        stderr.contains(
            "ExternalSecret apps/web-password: a login as service account apps/web needs a TokenRequest"
        ),
        "{stderr}"
    );

    // A store naming a service account no role binds, and one naming a missing service
    // account: both fail, each with its reason; nothing is written, not even the Secrets of
    // the resources that would succeed.
    std::fs::write(
        manifests.join("denied.yaml"),
        [
            password_via("as-intruder", "intruder", "stolen", "1h"),
            password_via("as-ghost", "ghost", "haunted", "1h"),
        ]
        .join("---"),
    )
    .unwrap();
    ok(
        &server,
        "POST",
        "secret/data/webapp/config",
        json!({"data": {"username": "web", "password": "changed-after-the-first-run"}}),
    )
    .await;
    kube.mark().await;
    let out = once_without_token(&server, &kube, &manifests);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_no_values(&stderr);
    assert!(!stderr.contains("changed-after-the-first-run"), "{stderr}");
    assert!(
        stderr.contains("ExternalSecret apps/stolen")
            && stderr.contains(r#"Kubernetes login to auth/kubernetes/login as role "web" failed"#)
            && stderr.contains("service account name"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ExternalSecret apps/haunted")
            && stderr.contains("TokenRequest for service account apps/ghost: 404"),
        "{stderr}"
    );
    assert_eq!(kube.writes().await["total"], 0);
    assert_eq!(kube.violations().await, Vec::<Value>::new());
}

/// The controller logs in as the service account an ExternalSecret's store names (no
/// `VAULT_TOKEN`), logs in again for each refresh so a KV update propagates, and a store
/// naming a service account Tresor does not bind gets `Ready=False` with the login's reason
/// and no Secret.
#[tokio::test]
async fn the_controller_logs_in_as_the_named_service_account() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let (kube, reviewer) = cluster(dir.path()).await;
    configure_tresor(&server, &kube, &reviewer).await;
    create(
        &kube,
        &[
            password_via("as-web", "web", "web-password", "1s"),
            password_via("as-intruder", "intruder", "stolen", "1h"),
        ]
        .join("---"),
    )
    .await;
    let controller = Controller::start(
        &server,
        &kube,
        dir.path(),
        "a",
        None,
        &["--no-leader-election", "--jwt-file", "/nonexistent/token"],
    );
    secret_holds(&kube, "apps", "web-password", "password", WEB_PASSWORD_V2).await;
    ready(
        &kube,
        "/apis/external-secrets.io/v1/namespaces/apps/externalsecrets/web-password",
        "True",
        "",
    )
    .await;
    let cond = ready(
        &kube,
        "/apis/external-secrets.io/v1/namespaces/apps/externalsecrets/stolen",
        "False",
        "Kubernetes login to auth/kubernetes/login as role \"web\" failed",
    )
    .await;
    assert!(
        cond["message"]
            .as_str()
            .unwrap()
            .contains("service account name"),
        "{cond}"
    );
    let (status, _) = kube
        .api("GET", "/api/v1/namespaces/apps/secrets/stolen", None)
        .await;
    assert_eq!(status, 404);

    ok(
        &server,
        "POST",
        "secret/data/webapp/config",
        json!({"data": {"username": "web", "password": "rotated-for-the-controller"}}),
    )
    .await;
    secret_holds(
        &kube,
        "apps",
        "web-password",
        "password",
        "rotated-for-the-controller",
    )
    .await;
    // One login, kept across refreshes (every second here) for two thirds of the token's TTL:
    // not a TokenRequest and a new token per refresh.
    assert_eq!(
        reviewed(&kube).await,
        ["system:serviceaccount:apps:web"],
        "one login of apps/web, and nobody else"
    );
    // Idle, with Kubernetes auth: refreshes make no API writes (no TokenRequest either).
    kube.mark().await;
    let before = controller.successes().await;
    poll(10, "two more refreshes", || async {
        (controller.successes().await >= before + 2.0).then_some(())
    })
    .await;
    let idle = kube.writes().await;
    assert_eq!(idle["total"], 0, "{idle}");
    assert_eq!(reviewed(&kube).await.len(), 1);

    // The kept login's token revoked in the server: the refresh that finds it refused drops
    // the login, and the next attempt logs in again, so the Secret keeps following the source.
    ok(
        &server,
        "PUT",
        "sys/leases/revoke-prefix/auth/kubernetes/login",
        json!({}),
    )
    .await;
    ok(
        &server,
        "POST",
        "secret/data/webapp/config",
        json!({"data": {"username": "web", "password": "after-the-token-was-revoked"}}),
    )
    .await;
    secret_holds(
        &kube,
        "apps",
        "web-password",
        "password",
        "after-the-token-was-revoked",
    )
    .await;
    assert_eq!(reviewed(&kube).await.len(), 2, "one new login");
    let log = controller.log_text();
    assert_no_values(&log);
    assert!(!log.contains("rotated-for-the-controller"), "{log}");
    assert_eq!(kube.violations().await, Vec::<Value>::new());
}
