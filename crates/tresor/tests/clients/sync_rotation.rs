//! Rotation reaching the consumers: rollout restarts by `tresor sync once` (one patch per
//! target per change, none when nothing changed, the rate limit, missing and unsupported
//! targets named), `tresor sync status` (in-sync, drifted after a hand edit, missing,
//! source-failed, consumers not restarted since the last change; never a value), and the
//! dynamic lease lifecycle of `tresor_sync::dynamic` (renewal, re-issue before the max TTL
//! with a restart, the old lease revoked after it) against the real PostgreSQL through the
//! database engine. The server is the real `tresor` binary; the cluster is the FAKE Kubernetes
//! API server of test-support/fake-kube-apiserver (its `/fake/writes` counts the patches).
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

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Server, raw, scratch_home};
use serde_json::{Value, json};
use support_kubernetes::FakeKube;
use support_sync::{ROOT, TestDatabase, decode, millis, ok, role_exists, sync_once_env};

fn text(o: &Output) -> String {
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

/// `tresor sync status ARGS…` against the FAKE cluster.
fn status(server: &Server, kube: &FakeKube, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["sync", "status"])
        .args(args)
        .env("HOME", scratch_home())
        .env("KUBECONFIG", kube.kubeconfig())
        .env("VAULT_ADDR", &server.addr)
        .env("VAULT_TOKEN", ROOT)
        .env_remove("TRESOR_ADDR")
        .env_remove("TRESOR_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A workload of `kind` (apps/v1) in `apps`, as schema-valid as the fake demands.
async fn workload(kube: &FakeKube, kind: &str, name: &str) {
    let plural = format!("{}s", kind.to_ascii_lowercase());
    let mut spec = json!({
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}},
    });
    if kind == "StatefulSet" {
        spec["serviceName"] = json!(name);
    }
    let (status, body) = kube
        .api(
            "POST",
            &format!("/apis/apps/v1/namespaces/apps/{plural}"),
            Some(json!({"apiVersion": "apps/v1", "kind": kind,
                        "metadata": {"name": name, "namespace": "apps"}, "spec": spec})),
        )
        .await;
    assert_eq!(status, 201, "{kind} {name}: {body}");
}

async fn get(kube: &FakeKube, path: &str) -> Value {
    let (status, body) = kube.api("GET", path, None).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

async fn secret(kube: &FakeKube, name: &str) -> Value {
    get(kube, &format!("/api/v1/namespaces/apps/secrets/{name}")).await
}

/// The pod-template annotations of a workload.
async fn template_annotations(kube: &FakeKube, plural: &str, name: &str) -> Value {
    get(
        kube,
        &format!("/apis/apps/v1/namespaces/apps/{plural}/{name}"),
    )
    .await["spec"]["template"]["metadata"]["annotations"]
        .clone()
}

fn hash_of(secret: &Value) -> String {
    secret["metadata"]["annotations"]["tresor.dev/content-hash"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Patches counted per workload since the last mark, e.g. `{"deployments.apps/apps/web": 1}`.
fn workload_patches(writes: &Value) -> std::collections::BTreeMap<String, u64> {
    writes["by_object"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !k.starts_with("secrets/"))
        .map(|(k, v)| (k.clone(), v["patch"].as_u64().unwrap_or(0)))
        .collect()
}

async fn cluster(dir: &Path) -> FakeKube {
    let kube = FakeKube::start_with(dir, &["--crds", "crds"]);
    kube.namespace("apps", json!({})).await;
    kube
}

const PASSWORD_V1: &str = "rotation-pass-one";
const PASSWORD_V2: &str = "rotation-pass-two";
const PASSWORD_V3: &str = "rotation-pass-three";
const PASSWORD_V4: &str = "rotation-pass-four";

fn assert_no_values(out: &str) {
    for v in [PASSWORD_V1, PASSWORD_V2, PASSWORD_V3, PASSWORD_V4, ROOT] {
        assert!(!out.contains(v), "a value leaked: {out}");
    }
}

async fn put_password(server: &Server, path: &str, password: &str) {
    ok(
        server,
        "POST",
        &format!("secret/data/{path}"),
        json!({"data": {"username": "app", "password": password}}),
    )
    .await;
}

/// Two Secrets feed Deployment `web`; each has a target of its own (a StatefulSet, a
/// DaemonSet). A third resource names an unsupported kind and a missing Deployment.
const RESTART_MANIFESTS: &str = r#"
apiVersion: secrets.hashicorp.com/v1beta1
kind: VaultStaticSecret
metadata: {name: web-config, namespace: apps}
spec:
  type: kv-v2
  mount: secret
  path: app/config
  destination: {name: web-config, create: true}
  rolloutRestartTargets:
    - {kind: Deployment, name: web}
    - {kind: StatefulSet, name: cache}
---
apiVersion: tresor.dev/v1alpha1
kind: TresorSecret
metadata: {name: web-env, namespace: apps}
spec:
  sources:
    - kv: {mount: secret, path: app/config, keys: [password]}
  target: {name: web-env}
  rolloutRestartTargets:
    - {kind: Deployment, name: web}
    - {kind: DaemonSet, name: agent}
---
apiVersion: secrets.hashicorp.com/v1beta1
kind: VaultStaticSecret
metadata: {name: legacy, namespace: apps}
spec:
  type: kv-v2
  mount: secret
  path: app/legacy
  destination: {name: legacy, create: true}
  rolloutRestartTargets:
    - {kind: argo.Rollout, name: canary}
    - {kind: Deployment, name: gone}
"#;

#[tokio::test]
async fn once_restarts_each_target_once_per_change_and_never_again() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    put_password(&server, "app/config", PASSWORD_V1).await;
    put_password(&server, "app/legacy", PASSWORD_V1).await;
    let kube = cluster(dir.path()).await;
    workload(&kube, "Deployment", "web").await;
    workload(&kube, "StatefulSet", "cache").await;
    workload(&kube, "DaemonSet", "agent").await;
    let manifests = dir.path().join("m");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(manifests.join("all.yaml"), RESTART_MANIFESTS).unwrap();

    // Creation restarts nothing: workloads that start afterwards read the Secret.
    kube.mark().await;
    let first = once(&server, &kube, &manifests, &[]);
    assert!(first.status.success(), "{}\n{}", text(&first), kube.log());
    let writes = kube.writes().await;
    assert_eq!(
        writes["by_resource"],
        json!({"secrets": {"create": 3}}),
        "{writes}"
    );

    // A KV update changes both Secrets of `web`: one patch per target, `web` once.
    put_password(&server, "app/config", PASSWORD_V2).await;
    kube.mark().await;
    let second = once(&server, &kube, &manifests, &[]);
    let stderr = String::from_utf8_lossy(&second.stderr).to_string();
    assert!(second.status.success(), "{}\n{}", text(&second), kube.log());
    assert_no_values(&stderr);
    assert!(
        stderr.contains("0 created, 2 updated, 1 unchanged, 0 failed"),
        "{stderr}"
    );
    assert!(stderr.contains("restarted Deployment apps/web"), "{stderr}");
    let writes = kube.writes().await;
    assert_eq!(
        workload_patches(&writes),
        [
            ("daemonsets.apps/apps/agent".to_owned(), 1),
            ("deployments.apps/apps/web".to_owned(), 1),
            ("statefulsets.apps/apps/cache".to_owned(), 1),
        ]
        .into(),
        "{writes}"
    );
    assert_eq!(
        writes["total"], 5,
        "2 Secret updates and 3 patches: {writes}"
    );
    let config_hash = hash_of(&secret(&kube, "web-config").await);
    let env_hash = hash_of(&secret(&kube, "web-env").await);
    let web = template_annotations(&kube, "deployments", "web").await;
    assert_eq!(
        web["tresor.dev/restarted-for"],
        format!("web-config={config_hash},web-env={env_hash}"),
        "{web}"
    );
    let restarted_at = web["kubectl.kubernetes.io/restartedAt"].as_str().unwrap();
    assert!(
        tresor_sync::rollout::parse_time_millis(restarted_at).is_some(),
        "{restarted_at}"
    );
    assert_eq!(
        template_annotations(&kube, "statefulsets", "cache").await["tresor.dev/restarted-for"],
        format!("web-config={config_hash}")
    );
    // The fake's workload controller saw a new pod template: a new rollout generation.
    let deployment = get(&kube, "/apis/apps/v1/namespaces/apps/deployments/web").await;
    assert_eq!(deployment["metadata"]["generation"], 2, "{deployment}");

    // Nothing changed: nothing written, nothing patched (the targets are only read).
    kube.mark().await;
    let third = once(&server, &kube, &manifests, &[]);
    assert!(third.status.success(), "{}", text(&third));
    let writes = kube.writes().await;
    assert_eq!(writes["total"], 0, "an idle run wrote: {writes}");

    // Unsupported kinds and missing workloads are named failures: exit 1, the Secret is
    // still written, nothing else is patched.
    put_password(&server, "app/legacy", PASSWORD_V2).await;
    kube.mark().await;
    let fourth = once(&server, &kube, &manifests, &[]);
    let stderr = String::from_utf8_lossy(&fourth.stderr).to_string();
    assert_eq!(fourth.status.code(), Some(1), "{}", text(&fourth));
    assert_no_values(&stderr);
    assert!(
        stderr.contains(
            "restart of argo.Rollout apps/canary failed: kind argo.Rollout is not supported"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("restart of Deployment apps/gone failed: Deployment apps/gone not found"),
        "{stderr}"
    );
    let writes = kube.writes().await;
    assert_eq!(writes["total"], 1, "{writes}");
    assert_eq!(
        writes["by_object"]["secrets/apps/legacy"],
        json!({"update": 1})
    );
    assert_eq!(kube.violations().await, Vec::<Value>::new());
}

const ONE_TARGET: &str = r#"
apiVersion: secrets.hashicorp.com/v1beta1
kind: VaultStaticSecret
metadata: {name: web-config, namespace: apps}
spec:
  type: kv-v2
  mount: secret
  path: app/config
  destination: {name: web-config, create: true}
  rolloutRestartTargets: [{kind: Deployment, name: web}]
"#;

fn restarted_at_secs(annotations: &Value) -> i64 {
    tresor_sync::rollout::parse_time_millis(
        annotations["kubectl.kubernetes.io/restartedAt"]
            .as_str()
            .unwrap(),
    )
    .unwrap()
        / 1000
}

/// At most one restart per workload per `--restart-min-interval`: within `--restart-max-wait`
/// the run waits for it; beyond, the restart is deferred (exit 1, `sync status` shows the
/// consumer behind), and the next run catches up although the Secret did not change again.
#[tokio::test]
async fn restarts_are_rate_limited_per_workload() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    put_password(&server, "app/config", PASSWORD_V1).await;
    let kube = cluster(dir.path()).await;
    workload(&kube, "Deployment", "web").await;
    let manifests = dir.path().join("m");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(manifests.join("one.yaml"), ONE_TARGET).unwrap();
    let m = manifests.to_str().unwrap().to_owned();

    let first = once(&server, &kube, &manifests, &[]);
    assert!(first.status.success(), "{}", text(&first));
    put_password(&server, "app/config", PASSWORD_V2).await;
    let second = once(
        &server,
        &kube,
        &manifests,
        &["--restart-min-interval", "3s"],
    );
    assert!(second.status.success(), "{}", text(&second));
    let t1 = restarted_at_secs(&template_annotations(&kube, "deployments", "web").await);

    // Within the interval and the wait: the run waits, then restarts once.
    put_password(&server, "app/config", PASSWORD_V3).await;
    kube.mark().await;
    let third = once(
        &server,
        &kube,
        &manifests,
        &["--restart-min-interval", "3s"],
    );
    assert!(third.status.success(), "{}", text(&third));
    let t2 = restarted_at_secs(&template_annotations(&kube, "deployments", "web").await);
    assert!(t2 - t1 >= 3, "restarted at {t1} then {t2}: closer than 3 s");
    let writes = kube.writes().await;
    assert_eq!(
        workload_patches(&writes),
        [("deployments.apps/apps/web".to_owned(), 1)].into()
    );

    // Beyond the wait: deferred and reported; the Secret is written, the workload not.
    put_password(&server, "app/config", PASSWORD_V4).await;
    kube.mark().await;
    let fourth = once(
        &server,
        &kube,
        &manifests,
        &["--restart-min-interval", "1h", "--restart-max-wait", "1s"],
    );
    let stderr = String::from_utf8_lossy(&fourth.stderr).to_string();
    assert_eq!(fourth.status.code(), Some(1), "{}", text(&fourth));
    assert!(
        stderr.contains("restart of Deployment apps/web deferred until"),
        "{stderr}"
    );
    let writes = kube.writes().await;
    assert_eq!(writes["total"], 1, "only the Secret: {writes}");
    assert!(workload_patches(&writes).is_empty(), "{writes}");

    // The drift report shows the consumer behind.
    let report = status(&server, &kube, &["-f", &m]);
    let out = String::from_utf8_lossy(&report.stdout).to_string();
    assert_eq!(report.status.code(), Some(1), "{}", text(&report));
    assert_no_values(&out);
    assert!(
        out.lines()
            .any(|l| l.contains("consumer Deployment apps/web")
                && l.contains("not restarted since last change")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("VaultStaticSecret apps/web-config") && l.contains("in-sync")),
        "{out}"
    );

    // No change since, but the entry is stale: the next run catches up, once.
    kube.mark().await;
    let fifth = once(
        &server,
        &kube,
        &manifests,
        &["--restart-min-interval", "0s"],
    );
    assert!(fifth.status.success(), "{}", text(&fifth));
    let writes = kube.writes().await;
    assert_eq!(writes["total"], 1, "{writes}");
    assert_eq!(
        workload_patches(&writes),
        [("deployments.apps/apps/web".to_owned(), 1)].into()
    );
    let report = status(&server, &kube, &["-f", &m]);
    assert!(report.status.success(), "{}", text(&report));
    assert!(
        String::from_utf8_lossy(&report.stdout).contains("restarted"),
        "{}",
        text(&report)
    );
}

const STATUS_MANIFESTS: &str = r#"
apiVersion: secrets.hashicorp.com/v1beta1
kind: VaultStaticSecret
metadata: {name: web-config, namespace: apps}
spec:
  type: kv-v2
  mount: secret
  path: app/config
  destination: {name: web-config, create: true}
  rolloutRestartTargets: [{kind: Deployment, name: web}]
---
apiVersion: tresor.dev/v1alpha1
kind: TresorSecret
metadata: {name: shop, namespace: apps}
spec:
  sources:
    - kv: {mount: secret, path: app/config}
  target: {name: shop-env}
"#;

const LATER_MANIFESTS: &str = r#"
apiVersion: secrets.hashicorp.com/v1beta1
kind: VaultStaticSecret
metadata: {name: newcomer, namespace: apps}
spec:
  type: kv-v2
  mount: secret
  path: app/config
  destination: {name: newcomer, create: true}
---
apiVersion: secrets.hashicorp.com/v1beta1
kind: VaultStaticSecret
metadata: {name: broken, namespace: apps}
spec:
  type: kv-v2
  mount: secret
  path: app/nowhere
  destination: {name: broken, create: true}
"#;

fn rows(json: &Value) -> std::collections::BTreeMap<String, Value> {
    json["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["resource"].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

#[tokio::test]
async fn status_reports_in_sync_drifted_missing_and_failed_sources_without_values() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    put_password(&server, "app/config", PASSWORD_V1).await;
    let kube = cluster(dir.path()).await;
    workload(&kube, "Deployment", "web").await;
    let manifests = dir.path().join("m");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(manifests.join("a.yaml"), STATUS_MANIFESTS).unwrap();
    let written = once(&server, &kube, &manifests, &[]);
    assert!(written.status.success(), "{}", text(&written));
    let m = manifests.to_str().unwrap().to_owned();

    // Everything written: in sync, exit 0; the consumer was never restarted (no change yet).
    kube.mark().await;
    let report = status(&server, &kube, &["-f", &m, "--format", "json"]);
    assert!(report.status.success(), "{}", text(&report));
    let json: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(json["in_sync"], true, "{json}");
    let r = rows(&json);
    assert_eq!(r["VaultStaticSecret apps/web-config"]["status"], "in-sync");
    assert_eq!(
        r["VaultStaticSecret apps/web-config"]["secret"],
        "apps/web-config"
    );
    assert_eq!(
        r["VaultStaticSecret apps/web-config"]["consumers"],
        json!([{"target": "Deployment apps/web", "status": "never-restarted"}])
    );
    assert_eq!(r["TresorSecret apps/shop"]["status"], "in-sync");
    // A report reads; it writes nothing.
    assert_eq!(kube.writes().await["total"], 0);

    // Resources not written yet, and a source that fails.
    std::fs::write(manifests.join("b.yaml"), LATER_MANIFESTS).unwrap();
    // A hand edit of a Secret the sync writes (its hash annotation left as it was).
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(kube.ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let resp = http
        .patch(format!(
            "{}/api/v1/namespaces/apps/secrets/shop-env",
            kube.url
        ))
        .bearer_auth(kube.admin_token())
        .header("Content-Type", "application/merge-patch+json")
        .body(json!({"data": {"password": "ZWRpdGVkLWJ5LWhhbmQ="}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let shop = secret(&kube, "shop-env").await;
    assert_eq!(decode(&shop, "password"), "edited-by-hand");

    let report = status(&server, &kube, &["-f", &m, "--format", "json"]);
    let out = String::from_utf8_lossy(&report.stdout).to_string();
    let err = String::from_utf8_lossy(&report.stderr).to_string();
    assert_eq!(report.status.code(), Some(1), "{}", text(&report));
    assert_no_values(&out);
    assert_no_values(&err);
    assert!(
        !out.contains("edited-by-hand") && !out.contains("ZWRpdGVk"),
        "{out}"
    );
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["in_sync"], false);
    let r = rows(&json);
    assert_eq!(r["VaultStaticSecret apps/web-config"]["status"], "in-sync");
    assert_eq!(r["TresorSecret apps/shop"]["status"], "drifted", "{out}");
    assert_eq!(
        r["TresorSecret apps/shop"]["reason"],
        "values differ for keys: password"
    );
    assert_eq!(r["VaultStaticSecret apps/newcomer"]["status"], "missing");
    assert_eq!(
        r["VaultStaticSecret apps/broken"]["status"],
        "source-failed"
    );
    assert!(
        r["VaultStaticSecret apps/broken"]["reason"]
            .as_str()
            .unwrap()
            .contains("no secret at secret/data/app/nowhere"),
        "{out}"
    );

    // The table says the same.
    let report = status(&server, &kube, &["-f", &m]);
    let out = String::from_utf8_lossy(&report.stdout).to_string();
    assert_eq!(report.status.code(), Some(1));
    assert_no_values(&out);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("RESOURCE")
            && lines[0].contains("SECRET")
            && lines[0].ends_with("STATUS"),
        "{out}"
    );
    for (resource, state) in [
        (
            "TresorSecret apps/shop",
            "drifted (values differ for keys: password)",
        ),
        ("VaultStaticSecret apps/newcomer", "missing"),
        ("VaultStaticSecret apps/broken", "source-failed"),
        ("VaultStaticSecret apps/web-config", "in-sync"),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(resource) && l.contains(state)),
            "{resource} {state}:\n{out}"
        );
    }

    // Usage errors: exit 2.
    let none = status(&server, &kube, &[]);
    assert_eq!(none.status.code(), Some(2), "{}", text(&none));
    let both = status(&server, &kube, &["-f", &m, "--cluster"]);
    assert_eq!(both.status.code(), Some(2), "{}", text(&both));

    // From the cluster: the resources listed there (here one VaultStaticSecret).
    let (code, body) = kube
        .api(
            "POST",
            "/apis/secrets.hashicorp.com/v1beta1/namespaces/apps/vaultstaticsecrets",
            Some(json!({
                "apiVersion": "secrets.hashicorp.com/v1beta1", "kind": "VaultStaticSecret",
                "metadata": {"name": "web-config", "namespace": "apps"},
                "spec": {"type": "kv-v2", "mount": "secret", "path": "app/config",
                         "destination": {"name": "web-config", "create": true},
                         "rolloutRestartTargets": [{"kind": "Deployment", "name": "web"}]},
            })),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let report = status(&server, &kube, &["--cluster", "--format", "json"]);
    assert!(report.status.success(), "{}\n{}", text(&report), kube.log());
    let json: Value = serde_json::from_slice(&report.stdout).unwrap();
    let r = rows(&json);
    assert_eq!(r.len(), 1, "{json}");
    assert_eq!(r["VaultStaticSecret apps/web-config"]["status"], "in-sync");
    assert_eq!(kube.violations().await, Vec::<Value>::new());
}

// ---- dynamic secrets: the lease lifecycle -----------------------------------------------

async fn lookup(server: &Server, lease_id: &str) -> (u16, Value) {
    raw(
        server,
        "PUT",
        "sys/leases/lookup",
        Some(ROOT),
        Some(json!({"lease_id": lease_id})),
    )
    .await
}

const DYNAMIC: &str = r#"
apiVersion: secrets.hashicorp.com/v1beta1
kind: VaultDynamicSecret
metadata: {name: app-db, namespace: apps}
spec:
  mount: database
  path: creds/app
  renewalPercent: 67
  revoke: true
  destination: {name: app-db, create: true}
  rolloutRestartTargets: [{kind: Deployment, name: app}]
"#;

/// A database role of default_ttl 3 s and max_ttl 8 s, driven by `dynamic::tick` as a
/// controller would: the lease is renewed (its end moves later on the server), re-issued
/// before the max TTL (a new username in the Secret, one restart patch on the target), and
/// the old lease revoked only after that restart and the grace (its PostgreSQL role dropped
/// while it still had time to live). A fresh state resumes from the Secret's annotations;
/// `release` with `revoke: true` revokes the last lease.
#[tokio::test]
async fn dynamic_leases_are_renewed_reissued_before_max_ttl_and_revoked_after_the_restart() {
    use tresor_sync::dynamic::{self, DynamicState, DynamicTarget, Event, Schedule, Settings};

    let database = TestDatabase::create("rot").await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    database
        .mount_engine(&server, json!({"default_ttl": "3s", "max_ttl": "8s"}))
        .await;
    let (sup, tag) = (&database.sup, &database.tag);

    let kube_fake = cluster(dir.path()).await;
    workload(&kube_fake, "Deployment", "app").await;
    let kube = tresor_sync::apply::kube_client(Some(&kube_fake.kubeconfig()))
        .await
        .unwrap();
    let mut manifests = tresor_sync::model::Manifests::default();
    manifests
        .add_text(Path::new("dynamic.yaml"), DYNAMIC)
        .unwrap();
    let resource = manifests.resources[0].clone();
    let options = tresor_sync::engine::Options {
        address: Some(server.addr.clone()),
        token: Some(tresor_sdk::secret::SecretString::new(ROOT.to_owned())),
        default_namespace: "apps".into(),
        ..Default::default()
    };
    let mut vault = tresor_sync::vault::VaultClient::new(tresor_sync::vault::Endpoint {
        address: server.addr.clone(),
        ..Default::default()
    })
    .unwrap();
    vault.set_token(tresor_sdk::secret::SecretString::new(ROOT.to_owned()));
    let target = DynamicTarget {
        manifests: &manifests,
        options: &options,
        resource: &resource,
    };
    let settings = Settings {
        schedule: Schedule {
            revoke_old_after: Duration::from_millis(500),
            ..Schedule::default()
        },
        ..Settings::default()
    };
    let mut limiter = tresor_sync::rollout::RateLimiter::new(Duration::ZERO);
    let mut state = DynamicState::default();

    // Drive the lifecycle to a deadline, sleeping until the time each tick asks for.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut first: Option<(String, String, i64)> = None; // lease, username, original end
    let mut renewed_end: Option<i64> = None;
    let mut reissued: Option<(String, String, i64)> = None; // new lease, new username, old end
    let mut revoked_at: Option<i64> = None;
    kube_fake.mark().await;
    while revoked_at.is_none() {
        assert!(
            Instant::now() < deadline,
            "the lifecycle did not complete: {state:?}"
        );
        let report = dynamic::tick(&vault, &kube, target, &mut state, &mut limiter, &settings)
            .await
            .unwrap();
        for event in &report.events {
            let debug = format!("{event:?}");
            assert!(!debug.contains("password"), "{debug}");
            match event {
                Event::Issued { lease_id } => {
                    let s = secret(&kube_fake, "app-db").await;
                    let user = decode(&s, "username");
                    assert!(user.starts_with(&format!("{tag}-app-")), "{user}");
                    assert!(role_exists(sup, &user).await);
                    assert_eq!(
                        s["metadata"]["annotations"]["tresor.dev/lease-id"],
                        lease_id.as_str()
                    );
                    let (code, found) = lookup(&server, lease_id).await;
                    assert_eq!(code, 200, "{found}");
                    first = Some((
                        lease_id.clone(),
                        user,
                        millis(found["data"]["expire_time"].as_str().unwrap()),
                    ));
                }
                Event::Renewed {
                    lease_id,
                    asked,
                    granted,
                } => {
                    let (old, _, end) = first.as_ref().unwrap();
                    assert_eq!(lease_id, old);
                    assert_eq!(*asked, 3);
                    if renewed_end.is_none() {
                        assert_eq!(*granted, 3, "the first renewal is not capped");
                        let (code, found) = lookup(&server, lease_id).await;
                        assert_eq!(code, 200, "{found}");
                        let new_end = millis(found["data"]["expire_time"].as_str().unwrap());
                        assert!(
                            new_end > *end,
                            "the renewal moved the lease's end: {end} → {new_end}"
                        );
                        // The Secret records the new end (no value in it).
                        let s = secret(&kube_fake, "app-db").await;
                        let recorded = millis(
                            s["metadata"]["annotations"]["tresor.dev/lease-expires"]
                                .as_str()
                                .unwrap(),
                        );
                        assert!(
                            (recorded - new_end).abs() <= 2_000,
                            "{recorded} vs {new_end}"
                        );
                        renewed_end = Some(new_end);
                    }
                }
                Event::Reissued { old, new, .. } => {
                    let (first_lease, first_user, _) = first.as_ref().unwrap();
                    assert_eq!(old, first_lease);
                    assert!(renewed_end.is_some(), "renewed before the re-issue");
                    let s = secret(&kube_fake, "app-db").await;
                    let user = decode(&s, "username");
                    assert_ne!(&user, first_user, "new credentials");
                    assert_eq!(
                        s["metadata"]["annotations"]["tresor.dev/lease-id"],
                        new.as_str()
                    );
                    // Re-issued before the old lease reached its max TTL: it is still alive.
                    let (code, found) = lookup(&server, old).await;
                    assert_eq!(code, 200, "the old lease is alive at the re-issue: {found}");
                    let old_end = millis(found["data"]["expire_time"].as_str().unwrap());
                    assert!(role_exists(sup, first_user).await);
                    // One restart patch on the target, naming the new content.
                    let writes = kube_fake.writes().await;
                    assert_eq!(
                        workload_patches(&writes),
                        [("deployments.apps/apps/app".to_owned(), 1)].into(),
                        "{writes}"
                    );
                    let annotations = template_annotations(&kube_fake, "deployments", "app").await;
                    assert_eq!(
                        annotations["tresor.dev/restarted-for"],
                        format!("app-db={}", hash_of(&s))
                    );
                    reissued = Some((new.clone(), user, old_end));
                }
                Event::Restarts(reports) => {
                    // The first issue creates the Secret (no restart); a re-issue restarts
                    // (the patch is counted at the Reissued event).
                    use tresor_sync::rollout::Outcome;
                    for r in reports {
                        let want = if first.is_some() {
                            Outcome::Restarted
                        } else {
                            Outcome::NotNeeded
                        };
                        assert_eq!(r.outcome, want, "{r}");
                    }
                }
                Event::Revoked { lease_id } => {
                    let now = tresor_sync::secret::now_millis();
                    let (first_lease, first_user, _) = first.as_ref().unwrap();
                    let (_, _, old_end) = reissued.as_ref().expect("revoked after the re-issue");
                    assert_eq!(lease_id, first_lease);
                    assert!(
                        now < *old_end,
                        "revoked by us, {} ms before it would end",
                        old_end - now
                    );
                    let (code, _) = lookup(&server, lease_id).await;
                    assert_ne!(code, 200, "the revoked lease is gone");
                    assert!(!role_exists(sup, first_user).await, "its role is dropped");
                    revoked_at = Some(now);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let wait = (report.next_at - tresor_sync::secret::now_millis()).clamp(0, 250);
        tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap())).await;
    }
    let (new_lease, new_user, _) = reissued.unwrap();
    assert!(role_exists(sup, &new_user).await);

    // A restarted controller: a fresh state resumes the lease from the Secret, issuing nothing.
    let mut resumed = DynamicState::default();
    let report = dynamic::tick(&vault, &kube, target, &mut resumed, &mut limiter, &settings)
        .await
        .unwrap();
    assert!(
        report.events.first()
            == Some(&Event::Resumed {
                lease_id: new_lease.clone()
            }),
        "{:?}",
        report.events
    );
    assert!(
        !report
            .events
            .iter()
            .any(|e| matches!(e, Event::Issued { .. } | Event::Reissued { .. })),
        "{:?}",
        report.events
    );
    // Deleted with `revoke: true`: the last lease is revoked.
    let events = dynamic::release(&vault, &mut resumed, true).await;
    assert!(
        events.contains(&Event::Revoked {
            lease_id: new_lease.clone()
        }),
        "{events:?}"
    );
    assert!(!role_exists(sup, &new_user).await);
    assert_eq!(kube_fake.violations().await, Vec::<Value>::new());

    drop(server);
    database.drop_all().await;
}
