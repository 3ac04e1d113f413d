//! `tresor sync once` writing to a cluster: the real server binary as the source, the FAKE
//! Kubernetes API server (test-support/fake-kube-apiserver) as the cluster, reached by kube-rs
//! through the fake's kubeconfig (`KUBECONFIG`). The Secrets are created as `--output yaml`
//! renders them; a second run writes nothing; a KV update rewrites exactly the affected Secret;
//! a failing source writes nothing at all; `creationPolicy: Merge` merges into an existing
//! Secret only; `--output yaml` passes `kubectl apply --dry-run=client` and
//! `--dry-run=server`; the deploy manifests apply and lint clean, and their RBAC lets the
//! controller's service account do what it needs and no more.
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

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{BIN, Server, scratch_home};
use serde_json::{Value, json};
use support_kubernetes::FakeKube;
use support_sync::{
    GHCR_TOKEN, MANIFESTS, ROOT, WEB_PASSWORD_V2, assert_no_values, decode, ok, seed, sync_once_env,
};

/// The five Secrets MANIFESTS renders (namespace, name).
const SECRETS: [(&str, &str); 5] = [
    ("apps", "ghcr-pull"),
    ("apps", "ghcr-pull-seed"),
    ("apps", "webapp-all"),
    ("apps", "webapp-config"),
    ("shop", "shop-env"),
];

pub(crate) fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn once(server: &Server, kube: &FakeKube, dir: &Path, extra: &[&str]) -> Output {
    let kubeconfig = kube.kubeconfig();
    sync_once_env(
        server,
        dir,
        ROOT,
        extra,
        &[("KUBECONFIG", kubeconfig.as_os_str())],
    )
}

pub(crate) async fn secret(kube: &FakeKube, namespace: &str, name: &str) -> Value {
    let (status, body) = kube
        .api(
            "GET",
            &format!("/api/v1/namespaces/{namespace}/secrets/{name}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "Secret {namespace}/{name}: {body}");
    body
}

async fn cluster(dir: &Path) -> FakeKube {
    let kube = FakeKube::start_with(dir, &["--crds", "crds"]);
    for ns in ["apps", "shop"] {
        kube.namespace(ns, json!({})).await;
    }
    kube
}

#[tokio::test]
async fn once_writes_the_secrets_then_nothing_then_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    seed(&server).await;
    let kube = cluster(dir.path()).await;
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(manifests.join("all.yaml"), MANIFESTS).unwrap();

    // What `--output yaml` renders is what the cluster must end up holding.
    let printed = once(&server, &kube, &manifests, &["--output", "yaml"]);
    assert!(printed.status.success(), "{}", text(&printed));
    let rendered = tresor_sync::yaml::documents(&String::from_utf8(printed.stdout).unwrap())
        .unwrap()
        .into_iter()
        .map(|(_, d)| d)
        .collect::<Vec<_>>();
    assert_eq!(rendered.len(), SECRETS.len());

    // First run: every Secret created, one create each, nothing else written.
    kube.mark().await;
    let first = once(&server, &kube, &manifests, &[]);
    let stderr = String::from_utf8_lossy(&first.stderr).to_string();
    assert!(first.status.success(), "{}\n{}", text(&first), kube.log());
    assert!(first.stdout.is_empty(), "{}", text(&first));
    assert_no_values(&stderr);
    assert!(
        stderr.contains("5 created, 0 updated, 0 unchanged, 0 failed"),
        "{stderr}"
    );
    let writes = kube.writes().await;
    assert_eq!(writes["total"], 5, "{writes}");
    assert_eq!(writes["by_resource"], json!({"secrets": {"create": 5}}));
    for (ns, name) in SECRETS {
        assert_eq!(
            writes["by_object"][format!("secrets/{ns}/{name}")],
            json!({"create": 1}),
            "{writes}"
        );
        let stored = secret(&kube, ns, name).await;
        let want = rendered
            .iter()
            .find(|d| d["metadata"]["name"] == name)
            .unwrap();
        assert_eq!(stored["metadata"]["namespace"], ns);
        assert_eq!(stored["type"], want["type"], "{name}");
        assert_eq!(stored["data"], want["data"], "{name}");
        assert_eq!(
            stored["metadata"]["labels"], want["metadata"]["labels"],
            "{name}"
        );
        assert_eq!(
            stored["metadata"]["annotations"], want["metadata"]["annotations"],
            "{name}"
        );
        assert_eq!(
            stored["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "tresor-sync"
        );
        assert!(
            stored["metadata"]["annotations"]["tresor.dev/content-hash"]
                .as_str()
                .unwrap()
                .starts_with("sha256:")
        );
        // Files carry no uid: no owner references in `once` mode.
        assert!(stored["metadata"].get("ownerReferences").is_none());
    }
    let ghcr = secret(&kube, "apps", "ghcr-pull").await;
    assert_eq!(ghcr["type"], "kubernetes.io/dockerconfigjson");
    assert!(decode(&ghcr, ".dockerconfigjson").contains(GHCR_TOKEN));
    let web = secret(&kube, "apps", "webapp-config").await;
    assert_eq!(decode(&web, "password"), WEB_PASSWORD_V2);
    assert_eq!(web["metadata"]["labels"]["app"], "web");

    // Second run, same sources: zero writes.
    kube.mark().await;
    let second = once(&server, &kube, &manifests, &[]);
    let stderr = String::from_utf8_lossy(&second.stderr).to_string();
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        stderr.contains("0 created, 0 updated, 5 unchanged, 0 failed"),
        "{stderr}"
    );
    let writes = kube.writes().await;
    assert_eq!(writes["total"], 0, "an idle run wrote: {writes}");

    let mut versions = std::collections::HashMap::new();
    for (ns, name) in SECRETS {
        versions.insert(
            format!("{ns}/{name}"),
            resource_version(&kube, ns, name).await,
        );
    }

    // A KV update of `ghcr` (read by ghcr-pull only; ghcr-pull-seed reads ghcr-token):
    // exactly that Secret is written, once.
    let rotated = "ghp_RotatedSyncToken987654321";
    ok(
        &server,
        "POST",
        "secret/data/ghcr",
        json!({"data": {"username": support_sync::GHCR_USER, "token": rotated}}),
    )
    .await;
    kube.mark().await;
    let third = once(&server, &kube, &manifests, &[]);
    let stderr = String::from_utf8_lossy(&third.stderr).to_string();
    assert!(third.status.success(), "{}", text(&third));
    assert!(!stderr.contains(rotated), "{stderr}");
    assert!(
        stderr.contains("0 created, 1 updated, 4 unchanged, 0 failed"),
        "{stderr}"
    );
    let writes = kube.writes().await;
    assert_eq!(writes["total"], 1, "{writes}");
    assert_eq!(
        writes["by_object"].as_object().unwrap().len(),
        1,
        "{writes}"
    );
    assert_eq!(
        writes["by_object"]["secrets/apps/ghcr-pull"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum::<u64>(),
        1,
        "{writes}"
    );
    let after = secret(&kube, "apps", "ghcr-pull").await;
    assert!(decode(&after, ".dockerconfigjson").contains(rotated));
    assert_ne!(
        after["metadata"]["annotations"]["tresor.dev/content-hash"],
        ghcr["metadata"]["annotations"]["tresor.dev/content-hash"]
    );
    for (ns, name) in SECRETS.into_iter().filter(|(_, n)| *n != "ghcr-pull") {
        assert_eq!(
            resource_version(&kube, ns, name).await,
            versions[&format!("{ns}/{name}")],
            "{ns}/{name} was rewritten"
        );
    }

    // A failing source: another update is pending (webapp/config), and a resource reads a
    // path that does not exist. Exit 1, and nothing at all is written.
    ok(
        &server,
        "POST",
        "secret/data/webapp/config",
        json!({"data": {"username": "web", "password": "web-pass-version-three"}}),
    )
    .await;
    std::fs::write(
        manifests.join("broken.yaml"),
        r#"
apiVersion: secrets.hashicorp.com/v1beta1
kind: VaultStaticSecret
metadata: {name: gone, namespace: apps}
spec: {type: kv-v2, mount: secret, path: webapp/gone, destination: {name: gone, create: true}}
"#,
    )
    .unwrap();
    kube.mark().await;
    let failed = once(&server, &kube, &manifests, &[]);
    let stderr = String::from_utf8_lossy(&failed.stderr).to_string();
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    assert!(!stderr.contains("web-pass-version-three"), "{stderr}");
    assert!(
        stderr.contains(
            "VaultStaticSecret apps/gone: secret/webapp/gone: no secret at secret/data/webapp/gone"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was written"), "{stderr}");
    let writes = kube.writes().await;
    assert_eq!(writes["total"], 0, "a failed run wrote: {writes}");
    let web = secret(&kube, "apps", "webapp-config").await;
    assert_eq!(
        decode(&web, "password"),
        WEB_PASSWORD_V2,
        "the last good Secret is kept"
    );

    assert_eq!(kube.violations().await, Vec::<Value>::new());
}

async fn resource_version(kube: &FakeKube, namespace: &str, name: &str) -> Value {
    secret(kube, namespace, name).await["metadata"]["resourceVersion"].clone()
}

fn kubectl(kube: &FakeKube, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(support_kubernetes::kubectl_bin())
        .arg("--kubeconfig")
        .arg(kube.kubeconfig())
        .args(args)
        .env("HOME", scratch_home())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn once_output_yaml_passes_kubectl_apply_client_and_server_dry_runs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    seed(&server).await;
    let kube = cluster(dir.path()).await;
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(manifests.join("all.yaml"), MANIFESTS).unwrap();

    // `--output yaml` needs no cluster: KUBECONFIG is not even set here.
    let printed = support_sync::sync_once(&server, &manifests, ROOT, &["--output", "yaml"]);
    assert!(printed.status.success(), "{}", text(&printed));

    // The issue's check: `kubectl apply --dry-run=client` accepts it (kubectl validates and
    // reads what exists, and sends no write at all).
    kube.mark().await;
    let client = kubectl(
        &kube,
        &["apply", "--dry-run=client", "-f", "-"],
        Some(&printed.stdout),
    );
    let out = text(&client);
    assert!(client.status.success(), "{out}\n{}", kube.log());
    for (_, name) in SECRETS {
        assert!(
            out.contains(&format!("secret/{name} created (dry run)")),
            "{out}"
        );
    }
    assert_eq!(kube.writes().await["total"], 0);

    kube.mark().await;
    let applied = kubectl(
        &kube,
        &["apply", "--dry-run=server", "-f", "-"],
        Some(&printed.stdout),
    );
    let out = text(&applied);
    assert!(applied.status.success(), "{out}\n{}", kube.log());
    for (_, name) in SECRETS {
        assert!(
            out.contains(&format!("secret/{name} created (server dry run)")),
            "{out}"
        );
    }
    let writes = kube.writes().await;
    let list = writes["writes"].as_array().unwrap();
    assert_eq!(list.len(), SECRETS.len(), "{writes}");
    assert!(list.iter().all(|w| w["dry_run"] == true), "{writes}");
    // A dry run stores nothing.
    let (status, _) = kube
        .api("GET", "/api/v1/namespaces/apps/secrets/ghcr-pull", None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(kube.violations().await, Vec::<Value>::new());
}

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tresor-sync/deploy")
}

/// The deploy manifests (CRD, RBAC, controller Deployment, example CronJob) are accepted by
/// the fake's server-side validation through `kubectl apply`, lint clean under `tresor lint`,
/// and the controller's service account may do what the controller needs and nothing else.
#[tokio::test]
async fn the_deploy_manifests_apply_lint_clean_and_grant_least_privilege() {
    let dir = tempfile::tempdir().unwrap();
    let kube = FakeKube::start_with(dir.path(), &["--crds", "crds"]);
    let deploy = deploy_dir();
    for ns in ["apps", "shop"] {
        kube.namespace(ns, json!({})).await;
    }
    // The namespace first (the others live in it), then the CRD and the rest.
    for files in [
        vec!["namespace.yaml"],
        vec![
            "crds/tresor.dev_tresorsecrets.yaml",
            "rbac.yaml",
            "controller.yaml",
            "cronjob.yaml",
        ],
    ] {
        let mut args = vec!["apply".to_owned()];
        for f in files {
            args.push("-f".into());
            args.push(deploy.join(f).to_str().unwrap().to_owned());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let applied = kubectl(&kube, &args, None);
        assert!(
            applied.status.success(),
            "{}\n{}",
            text(&applied),
            kube.log()
        );
    }
    for path in [
        "/apis/apps/v1/namespaces/tresor-sync/deployments/tresor-sync",
        "/apis/batch/v1/namespaces/tresor-sync/cronjobs/tresor-sync-once",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/tresor-sync-namespace",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/tresorsecrets.tresor.dev",
    ] {
        let (status, body) = kube.api("GET", path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    assert_eq!(kube.violations().await, Vec::<Value>::new());

    let lint = Command::new(BIN)
        .args(["lint", "--fail-on", "note", "--config"])
        .arg(deploy.join(".tresor-lint.yaml"))
        .arg(deploy.join("rbac.yaml"))
        .arg(deploy.join("controller.yaml"))
        .arg(deploy.join("cronjob.yaml"))
        .env("NO_COLOR", "1")
        .env("HOME", scratch_home())
        .output()
        .unwrap();
    assert_eq!(lint.status.code(), Some(0), "{}", text(&lint));

    // Act as the controller's service account.
    let token = kube
        .token(
            "tresor-sync",
            "tresor-sync",
            &["https://kubernetes.default.svc.cluster.local"],
            3600,
        )
        .await;
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(kube.ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let call = |method: &str, path: &str, body: Option<Value>| {
        let mut req = http
            .request(method.parse().unwrap(), format!("{}{path}", kube.url))
            .bearer_auth(&token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let managed = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "app", "labels": {"app.kubernetes.io/managed-by": "tresor-sync"}},
        "data": {"k": "dg=="}});
    // Reads of its resources, everywhere.
    for path in [
        "/apis/external-secrets.io/v1/externalsecrets",
        "/apis/external-secrets.io/v1/secretstores",
        "/apis/external-secrets.io/v1/clustersecretstores",
        "/apis/secrets.hashicorp.com/v1beta1/vaultstaticsecrets",
        "/apis/secrets.hashicorp.com/v1beta1/vaultdynamicsecrets",
        "/apis/secrets.hashicorp.com/v1beta1/vaultauths",
        "/apis/secrets.hashicorp.com/v1beta1/vaultconnections",
        "/apis/tresor.dev/v1alpha1/tresorsecrets",
        "/api/v1/namespaces/apps/secrets",
        "/api/v1/namespaces/shop/secrets",
    ] {
        assert_eq!(call("GET", path, None).await, 200, "GET {path}");
    }
    // Secrets only in the namespaces bound to it; never cluster-wide, never delete.
    for path in ["/api/v1/secrets", "/api/v1/namespaces/default/secrets"] {
        assert_eq!(call("GET", path, None).await, 403, "GET {path}");
    }
    assert_eq!(
        call(
            "POST",
            "/api/v1/namespaces/default/secrets",
            Some(managed.clone())
        )
        .await,
        403
    );
    assert_eq!(
        call(
            "POST",
            "/api/v1/namespaces/apps/secrets",
            Some(managed.clone())
        )
        .await,
        201
    );
    let mut changed = managed.clone();
    changed["data"]["k"] = json!("dzI=");
    assert_eq!(
        call("PUT", "/api/v1/namespaces/apps/secrets/app", Some(changed)).await,
        200
    );
    assert_eq!(
        call("DELETE", "/api/v1/namespaces/apps/secrets/app", None).await,
        403
    );
    // Rollout targets: get and patch (a missing one is a 404, not a 403); never delete.
    assert_eq!(
        call("GET", "/apis/apps/v1/namespaces/apps/deployments/web", None).await,
        404
    );
    assert_eq!(
        call(
            "DELETE",
            "/apis/apps/v1/namespaces/apps/deployments/web",
            None
        )
        .await,
        403
    );
    assert_eq!(
        call(
            "GET",
            "/apis/apps/v1/namespaces/default/deployments/web",
            None
        )
        .await,
        403
    );
    // TokenRequests for the service accounts resources log in as, where it works only (a
    // missing one is a 404, so authorized); no read of service accounts themselves.
    let token_request = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"audiences": [], "expirationSeconds": 600}});
    kube.service_account("apps", "web").await;
    kube.service_account("default", "web").await;
    assert_eq!(
        call(
            "POST",
            "/api/v1/namespaces/apps/serviceaccounts/web/token",
            Some(token_request.clone())
        )
        .await,
        201
    );
    assert_eq!(
        call(
            "POST",
            "/api/v1/namespaces/apps/serviceaccounts/nobody/token",
            Some(token_request.clone())
        )
        .await,
        404
    );
    assert_eq!(
        call(
            "POST",
            "/api/v1/namespaces/default/serviceaccounts/web/token",
            Some(token_request)
        )
        .await,
        403
    );
    assert_eq!(
        call("GET", "/api/v1/namespaces/apps/serviceaccounts/web", None).await,
        403
    );
    // Events where it works.
    let event = json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "shop.1"},
        "involvedObject": {"kind": "TresorSecret", "namespace": "shop", "name": "shop"},
        "reason": "Synced", "message": "ok", "type": "Normal"});
    assert_eq!(
        call("POST", "/api/v1/namespaces/shop/events", Some(event)).await,
        201
    );
    // Leader election: a Lease in its own namespace only.
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "tresor-sync"}, "spec": {"holderIdentity": "a"}});
    assert_eq!(
        call(
            "POST",
            "/apis/coordination.k8s.io/v1/namespaces/tresor-sync/leases",
            Some(lease.clone())
        )
        .await,
        201
    );
    assert_eq!(
        call(
            "GET",
            "/apis/coordination.k8s.io/v1/namespaces/tresor-sync/leases/tresor-sync",
            None
        )
        .await,
        200
    );
    assert_eq!(
        call(
            "POST",
            "/apis/coordination.k8s.io/v1/namespaces/apps/leases",
            Some(lease)
        )
        .await,
        403
    );
    // Nothing else: no writes to its resources' specs, RBAC or namespaces.
    assert_eq!(
        call(
            "DELETE",
            "/apis/tresor.dev/v1alpha1/namespaces/shop/tresorsecrets/x",
            None
        )
        .await,
        403
    );
    assert_eq!(
        call(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            Some(
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": "x"}, "rules": []})
            )
        )
        .await,
        403
    );
    assert_eq!(call("DELETE", "/api/v1/namespaces/apps", None).await, 403);

    // The CronJob's embedded resources are ones `tresor sync once` reads: it gets as far as
    // connecting to Tresor (exit 1, unreachable), not an input error (exit 2).
    let manifest = std::fs::read_to_string(deploy.join("cronjob.yaml")).unwrap();
    let mut lines = manifest
        .lines()
        .skip_while(|l| l.trim() != "resources.yaml: |");
    lines.next().unwrap();
    let embedded: String = lines
        .take_while(|l| l.starts_with("    ") || l.is_empty())
        .map(|l| format!("{}\n", l.get(4..).unwrap_or("")))
        .collect();
    let file = dir.path().join("resources.yaml");
    std::fs::write(&file, embedded).unwrap();
    let o = Command::new(BIN)
        .args([
            "sync",
            "once",
            "--output",
            "yaml",
            "--jwt-file",
            "/dev/null",
            "--address",
        ])
        .arg("http://127.0.0.1:9")
        .arg("-f")
        .arg(&file)
        .env("HOME", scratch_home())
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("TresorSecret shop/shop: cannot reach"),
        "{out}"
    );
}

/// ESO's `creationPolicy: Merge`: no Secret to merge into is a write failure (exit 1, nothing
/// created); into an existing Secret the keys are merged, its other keys, labels and
/// annotations kept; an idle run then writes nothing.
#[tokio::test]
async fn once_merges_into_an_existing_secret_only() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    seed(&server).await;
    let kube = cluster(dir.path()).await;
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(
        manifests.join("merge.yaml"),
        r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: tresor, namespace: apps}
spec:
  provider:
    vault: {server: "http://tresor.invalid:8200", path: secret, version: v2, auth: {tokenSecretRef: {name: t, key: token}}}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: merged, namespace: apps}
spec:
  secretStoreRef: {kind: SecretStore, name: tresor}
  target: {name: shared, creationPolicy: Merge}
  data:
    - secretKey: password
      remoteRef: {key: webapp/config, property: password}
"#,
    )
    .unwrap();

    kube.mark().await;
    let missing = once(&server, &kube, &manifests, &[]);
    let stderr = String::from_utf8_lossy(&missing.stderr).to_string();
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
    assert!(
        stderr.contains("Secret apps/shared: the Secret does not exist"),
        "{stderr}"
    );
    assert_eq!(kube.writes().await["total"], 0);

    let (status, body) = kube
        .api(
            "POST",
            "/api/v1/namespaces/apps/secrets",
            Some(json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "shared", "labels": {"owner": "team"},
                             "annotations": {"note": "kept"}},
                "data": {"other": "b3RoZXI=", "password": "b2xk"}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    kube.mark().await;
    let merged = once(&server, &kube, &manifests, &[]);
    assert!(merged.status.success(), "{}", text(&merged));
    assert_no_values(&String::from_utf8_lossy(&merged.stderr));
    let writes = kube.writes().await;
    assert_eq!(writes["total"], 1, "{writes}");
    let shared = secret(&kube, "apps", "shared").await;
    assert_eq!(decode(&shared, "password"), WEB_PASSWORD_V2);
    assert_eq!(decode(&shared, "other"), "other");
    assert_eq!(shared["metadata"]["labels"]["owner"], "team");
    assert_eq!(
        shared["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "tresor-sync"
    );
    assert_eq!(shared["metadata"]["annotations"]["note"], "kept");
    assert!(shared["metadata"]["annotations"]["tresor.dev/content-hash"].is_string());

    kube.mark().await;
    let idle = once(&server, &kube, &manifests, &[]);
    assert!(idle.status.success(), "{}", text(&idle));
    assert_eq!(kube.writes().await["total"], 0);
    assert_eq!(kube.violations().await, Vec::<Value>::new());
}
