//! Rotation in `tresor sync run`: the controller restarts the `rolloutRestartTargets` of a
//! Secret whose content changed (one patch per target per change, a restart the rate limit
//! holds back done when it allows, none while idle), and runs the lease lifecycle of a
//! `VaultDynamicSecret` against the real PostgreSQL through the database engine (renewal,
//! re-issue before the max TTL with one restart, the old lease revoked after it, resume from
//! the Secret's annotations after a controller restart, revocation on deletion with
//! `revoke: true`). The server is the real `tresor` binary, the cluster the FAKE Kubernetes
//! API server of test-support/fake-kube-apiserver (`/fake/writes` counts the patches), the
//! controller a separate process run with `--no-leader-election`. Every wait polls to a
//! deadline.
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

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Server, raw, scratch_home};
use serde_json::{Value, json};
use support_kubernetes::FakeKube;
use support_sync::{ROOT, TestDatabase, decode, millis, ok, role_exists};

/// A `tresor sync run --no-leader-election` process; killed (SIGKILL) when dropped.
struct RunController {
    child: Option<Child>,
    log: PathBuf,
    metrics: String,
}

impl Drop for RunController {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl RunController {
    /// Starts it with `VAULT_ADDR`/`VAULT_TOKEN` (the root token over every store's
    /// authentication) and waits for its metrics endpoint.
    fn start(server: &Server, kube: &FakeKube, dir: &Path, name: &str, extra: &[&str]) -> Self {
        let log = dir.join(format!("sync-run-{name}.log"));
        let child = Command::new(BIN)
            .args(["sync", "run", "--no-leader-election", "--identity", name])
            .args(["--metrics-address", "127.0.0.1:0"])
            .args(["--backoff-base", "500ms", "--backoff-max", "2s"])
            .args(extra)
            .env("KUBECONFIG", kube.kubeconfig())
            .env("HOME", scratch_home())
            .env("VAULT_ADDR", &server.addr)
            .env("VAULT_TOKEN", ROOT)
            .env_remove("TRESOR_ADDR")
            .env_remove("TRESOR_TOKEN")
            .env_remove("BAO_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut c = RunController {
            child: Some(child),
            log,
            metrics: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = c.log_text();
            if let Some(rest) = text.split("metrics on http://").nth(1) {
                c.metrics = format!("http://{}", rest.split_whitespace().next().unwrap());
                return c;
            }
            if let Some(status) = c.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("sync run exited ({status}):\n{text}");
            }
            assert!(Instant::now() < deadline, "no metrics line:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Successful syncs so far (`tresor_sync_syncs_total{result="success"}`, all kinds).
    async fn syncs(&self) -> f64 {
        let text = reqwest::get(&self.metrics)
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| {
                l.starts_with("tresor_sync_syncs_total{") && l.contains("result=\"success\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill9(&mut self) {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
    }
}

/// Polls `f` every 100 ms until it yields, for at most `secs` seconds.
async fn poll<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn cluster(dir: &Path) -> FakeKube {
    let kube = FakeKube::start_with(dir, &["--crds", "crds"]);
    kube.namespace("apps", json!({})).await;
    kube
}

/// A Deployment in `apps`, as schema-valid as the fake demands.
async fn deployment(kube: &FakeKube, name: &str) {
    let (status, body) = kube
        .api(
            "POST",
            "/apis/apps/v1/namespaces/apps/deployments",
            Some(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": "apps"},
                "spec": {
                    "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}},
                }})),
        )
        .await;
    assert_eq!(status, 201, "Deployment {name}: {body}");
}

/// Creates a VSO resource in `apps` (`plural`: its collection).
async fn create(kube: &FakeKube, plural: &str, doc: Value) {
    let path = format!("/apis/secrets.hashicorp.com/v1beta1/namespaces/apps/{plural}");
    let (status, body) = kube.api("POST", &path, Some(doc)).await;
    assert_eq!(status, 201, "POST {path}: {body}");
}

async fn secret(kube: &FakeKube, name: &str) -> Option<Value> {
    let (status, body) = kube
        .api(
            "GET",
            &format!("/api/v1/namespaces/apps/secrets/{name}"),
            None,
        )
        .await;
    match status {
        200 => Some(body),
        404 => None,
        other => panic!("GET Secret {name}: {other} {body}"),
    }
}

/// A Deployment's pod-template annotations.
async fn template_annotations(kube: &FakeKube, name: &str) -> Value {
    let (status, body) = kube
        .api(
            "GET",
            &format!("/apis/apps/v1/namespaces/apps/deployments/{name}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["spec"]["template"]["metadata"]["annotations"].clone()
}

fn annotation(obj: &Value, key: &str) -> Option<String> {
    obj["metadata"]["annotations"][key]
        .as_str()
        .map(str::to_owned)
}

/// Patches counted per Deployment since the last mark.
fn deployment_patches(writes: &Value) -> BTreeMap<String, u64> {
    writes["by_object"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("deployments.apps/"))
        .map(|(k, v)| (k.clone(), v["patch"].as_u64().unwrap_or(0)))
        .collect()
}

const V1: &str = "controller-pass-one";
const V2: &str = "controller-pass-two";
const V3: &str = "controller-pass-three";

async fn put_password(server: &Server, password: &str) {
    ok(
        server,
        "POST",
        "secret/data/app/config",
        json!({"data": {"username": "app", "password": password}}),
    )
    .await;
}

/// `sync run` restarts both targets of a changed Secret once (creation restarts nothing); a
/// second change inside `--restart-min-interval` is written at once and its restart done when
/// the interval allows, once, without a further change; afterwards idle refreshes (1 s)
/// write and patch nothing.
#[tokio::test]
async fn run_restarts_each_target_once_per_change_and_never_while_idle() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    put_password(&server, V1).await;
    let kube = cluster(dir.path()).await;
    deployment(&kube, "web").await;
    deployment(&kube, "api").await;
    create(
        &kube,
        "vaultstaticsecrets",
        json!({"apiVersion": "secrets.hashicorp.com/v1beta1", "kind": "VaultStaticSecret",
            "metadata": {"name": "web-config", "namespace": "apps"},
            "spec": {"type": "kv-v2", "mount": "secret", "path": "app/config", "refreshAfter": "1s",
                     "destination": {"name": "web-config", "create": true},
                     "rolloutRestartTargets": [{"kind": "Deployment", "name": "web"},
                                               {"kind": "Deployment", "name": "api"}]}}),
    )
    .await;
    kube.mark().await;
    let controller = RunController::start(
        &server,
        &kube,
        dir.path(),
        "restarts",
        &["--restart-min-interval", "3s"],
    );

    let holds = |want: &'static str| {
        let kube = &kube;
        async move {
            secret(kube, "web-config")
                .await
                .filter(|s| decode(s, "password") == want)
        }
    };
    poll(20, "the Secret", || holds(V1)).await;
    // Created: its consumers start after it and read it; nothing to restart.
    let writes = kube.writes().await;
    assert!(deployment_patches(&writes).is_empty(), "{writes}");

    // A change: one patch per target, naming the new content.
    kube.mark().await;
    put_password(&server, V2).await;
    let changed = poll(20, "the update", || holds(V2)).await;
    let hash2 = annotation(&changed, "tresor.dev/content-hash").unwrap();
    for name in ["web", "api"] {
        poll(20, &format!("{name} restarted for the update"), || async {
            let a = template_annotations(&kube, name).await;
            (a["tresor.dev/restarted-for"] == format!("web-config={hash2}")).then_some(())
        })
        .await;
    }
    let t2 = millis(
        template_annotations(&kube, "web").await["kubectl.kubernetes.io/restartedAt"]
            .as_str()
            .unwrap(),
    );

    // A second change within the 3 s interval: the Secret is written at once; the restart
    // waits for the limiter and happens then, once per target, with no change after it.
    put_password(&server, V3).await;
    let changed = poll(20, "the second update", || holds(V3)).await;
    let hash3 = annotation(&changed, "tresor.dev/content-hash").unwrap();
    for name in ["web", "api"] {
        poll(
            20,
            &format!("{name} restarted for the second update"),
            || async {
                let a = template_annotations(&kube, name).await;
                (a["tresor.dev/restarted-for"] == format!("web-config={hash3}")).then_some(())
            },
        )
        .await;
    }
    let t3 = millis(
        template_annotations(&kube, "web").await["kubectl.kubernetes.io/restartedAt"]
            .as_str()
            .unwrap(),
    );
    assert!(
        t3 - t2 >= 3_000,
        "restarted at {t2} then {t3}: closer than the 3 s interval"
    );
    let writes = kube.writes().await;
    assert_eq!(
        deployment_patches(&writes),
        [
            ("deployments.apps/apps/api".to_owned(), 2),
            ("deployments.apps/apps/web".to_owned(), 2),
        ]
        .into(),
        "one patch per target per change: {writes}"
    );
    assert_eq!(
        writes["by_object"]["secrets/apps/web-config"]["update"], 2,
        "{writes}"
    );
    let log = controller.log_text();
    assert!(log.contains("deferred until"), "{log}");

    // Idle: over more than two refresh intervals, nothing is written or patched.
    // (An observation window, not a synchronisation: the refreshes are counted.)
    let before = controller.syncs().await;
    kube.mark().await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let writes = kube.writes().await;
    assert_eq!(writes["total"], 0, "an idle controller wrote: {writes}");
    assert!(
        controller.syncs().await >= before + 2.0,
        "the refreshes did not run while idle"
    );
    let log = controller.log_text();
    assert!(!log.contains("sync failed"), "{log}");
    for v in [V1, V2, V3, ROOT] {
        assert!(!log.contains(v), "a value in the log: {log}");
    }
    assert_eq!(kube.violations().await, Vec::<Value>::new());
}

// ---- dynamic secrets --------------------------------------------------------------------

/// The lease's end on the server, or `None` once it is gone.
async fn lease_end(server: &Server, lease_id: &str) -> Option<i64> {
    let (code, found) = raw(
        server,
        "PUT",
        "sys/leases/lookup",
        Some(ROOT),
        Some(json!({"lease_id": lease_id})),
    )
    .await;
    (code == 200).then(|| millis(found["data"]["expire_time"].as_str().unwrap()))
}

/// The Secret's lease id and username.
async fn credentials(kube: &FakeKube) -> Option<(String, String)> {
    let s = secret(kube, "app-db").await?;
    Some((
        annotation(&s, "tresor.dev/lease-id")?,
        decode(&s, "username"),
    ))
}

/// A database role of default_ttl 3 s and max_ttl 8 s under `sync run`: the controller
/// renews the lease (its end moves later on the server), re-issues before the max TTL (a new
/// username in the Secret, one restart patch on the target), revokes the old lease after that
/// restart (its PostgreSQL role dropped, the revocation logged by the controller rather than
/// the lease running out); a restarted controller resumes the lease from the Secret instead
/// of issuing credentials; deleting the resource (`revoke: true`) revokes its lease.
#[tokio::test]
async fn run_renews_reissues_and_revokes_dynamic_leases() {
    let database = TestDatabase::create("runrot").await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    database
        .mount_engine(&server, json!({"default_ttl": "3s", "max_ttl": "8s"}))
        .await;
    let (sup, tag) = (&database.sup, &database.tag);

    let kube = cluster(dir.path()).await;
    deployment(&kube, "app").await;
    create(
        &kube,
        "vaultdynamicsecrets",
        json!({"apiVersion": "secrets.hashicorp.com/v1beta1", "kind": "VaultDynamicSecret",
            "metadata": {"name": "app-db", "namespace": "apps"},
            "spec": {"mount": "database", "path": "creds/app", "renewalPercent": 67, "revoke": true,
                     "destination": {"name": "app-db", "create": true},
                     "rolloutRestartTargets": [{"kind": "Deployment", "name": "app"}]}}),
    )
    .await;
    kube.mark().await;
    let args = [
        "--restart-min-interval",
        "0s",
        "--revoke-old-after",
        "500ms",
    ];
    let mut first = RunController::start(&server, &kube, dir.path(), "dynamic", &args);

    // Issued: the Secret holds a user that exists, and its lease.
    let (lease1, user1) = poll(20, "the first credentials", || credentials(&kube)).await;
    assert!(user1.starts_with(&format!("{tag}-app-")), "{user1}");
    assert!(role_exists(sup, &user1).await);
    let end1 = lease_end(&server, &lease1)
        .await
        .expect("the lease is alive");

    // Renewed by the controller: the end moves later on the server.
    poll(10, "a renewal moving the lease's end", || async {
        lease_end(&server, &lease1)
            .await
            .filter(|end| *end > end1)
            .map(|_| ())
    })
    .await;

    // Re-issued before the max TTL: new credentials, one restart patch naming them.
    let (lease2, user2) = poll(15, "the re-issue", || async {
        credentials(&kube).await.filter(|(l, _)| *l != lease1)
    })
    .await;
    assert_ne!(user2, user1, "new credentials");
    let restarted_for = poll(10, "the restart for the new credentials", || async {
        let hash = annotation(&secret(&kube, "app-db").await?, "tresor.dev/content-hash")?;
        let a = template_annotations(&kube, "app").await;
        (a["tresor.dev/restarted-for"] == format!("app-db={hash}")).then_some(hash)
    })
    .await;
    assert!(restarted_for.starts_with("sha256:"));

    // The old lease revoked by the controller, after the restart: its role is dropped.
    poll(10, "the old lease's revocation", || async {
        first
            .log_text()
            .contains(&format!("revoked lease {lease1}"))
            .then_some(())
    })
    .await;
    let log = first.log_text();
    let restart_line = log.find("restarted Deployment apps/app").expect(&log);
    let revoke_line = log.find(&format!("revoked lease {lease1}")).unwrap();
    assert!(
        restart_line < revoke_line,
        "revoked before the restart:\n{log}"
    );
    assert_eq!(lease_end(&server, &lease1).await, None);
    assert!(!role_exists(sup, &user1).await, "the old role is dropped");
    assert!(role_exists(sup, &user2).await);
    assert!(
        lease_end(&server, &lease2).await.is_some(),
        "the new lease lives"
    );
    let writes = kube.writes().await;
    assert_eq!(
        deployment_patches(&writes),
        [("deployments.apps/apps/app".to_owned(), 1)].into(),
        "one restart for one re-issue: {writes}"
    );

    // A restarted controller resumes the live lease from the Secret: nothing issued.
    first.kill9();
    let (lease_now, _) = credentials(&kube).await.unwrap();
    let second = RunController::start(&server, &kube, dir.path(), "resumed", &args);
    poll(10, "the resume", || async {
        second
            .log_text()
            .contains(&format!("resumed lease {lease_now}"))
            .then_some(())
    })
    .await;
    let log = second.log_text();
    let resumed_at = log.find("resumed lease").unwrap();
    assert!(
        !log[..resumed_at].contains("issued lease"),
        "issued before resuming:\n{log}"
    );

    // Deleted with `revoke: true`: the controller revokes the current lease.
    let (current, user_now) = credentials(&kube).await.unwrap();
    let (status, body) = kube
        .api(
            "DELETE",
            "/apis/secrets.hashicorp.com/v1beta1/namespaces/apps/vaultdynamicsecrets/app-db",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    poll(10, "the revocation on deletion", || async {
        second
            .log_text()
            .contains(&format!("revoked lease {current}"))
            .then_some(())
    })
    .await;
    assert!(!role_exists(sup, &user_now).await);
    let log = second.log_text();
    assert!(!log.contains(ROOT), "{log}");
    assert_eq!(kube.violations().await, Vec::<Value>::new());

    drop(second);
    drop(first);
    drop(server);
    database.drop_all().await;
}

/// A controller killed while a replaced lease waits out its grace after the restart: the
/// retired lease is on the Secret (`tresor.dev/lease-retired`), so the next controller reads
/// it back and revokes it when it is due, instead of leaving the old credentials alive until
/// they expire; the annotation goes once nothing is left to revoke.
#[tokio::test]
async fn a_restarted_controller_revokes_the_lease_its_predecessor_retired() {
    let database = TestDatabase::create("runret").await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    // Leases that outlive the grace: a retired one must be revoked, not left to run out.
    database
        .mount_engine(&server, json!({"default_ttl": "20s", "max_ttl": "120s"}))
        .await;
    let sup = &database.sup;
    let kube = cluster(dir.path()).await;
    deployment(&kube, "app").await;
    let path = "/apis/secrets.hashicorp.com/v1beta1/namespaces/apps/vaultdynamicsecrets/app-db";
    create(
        &kube,
        "vaultdynamicsecrets",
        json!({"apiVersion": "secrets.hashicorp.com/v1beta1", "kind": "VaultDynamicSecret",
            "metadata": {"name": "app-db", "namespace": "apps"},
            "spec": {"mount": "database", "path": "creds/app",
                     "destination": {"name": "app-db", "create": true},
                     "rolloutRestartTargets": [{"kind": "Deployment", "name": "app"}]}}),
    )
    .await;
    let args = ["--restart-min-interval", "0s", "--revoke-old-after", "4s"];
    let mut first = RunController::start(&server, &kube, dir.path(), "first", &args);
    let (lease1, user1) = poll(20, "the first credentials", || credentials(&kube)).await;
    // A new spec: new credentials, the old lease retired until 4 s after the restart.
    crate::sync_run::merge_patch(
        &kube,
        path,
        json!({"spec": {"destination": {"labels": {"rotated": "yes"}}}}),
    )
    .await;
    let retired = poll(20, "the re-issue, its old lease recorded", || async {
        let s = secret(&kube, "app-db").await?;
        annotation(&s, "tresor.dev/lease-retired").filter(|r| r.starts_with(&format!("{lease1};")))
    })
    .await;
    first.kill9();
    assert!(
        !first
            .log_text()
            .contains(&format!("revoked lease {lease1}")),
        "revoked before the kill; the test needs a longer grace:\n{}",
        first.log_text()
    );
    assert!(role_exists(sup, &user1).await, "not revoked yet");
    assert!(lease_end(&server, &lease1).await.is_some(), "still alive");
    let revoke_at: i64 = retired.split(';').nth(2).unwrap().parse().unwrap();

    let second = RunController::start(&server, &kube, dir.path(), "second", &args);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !second
        .log_text()
        .contains(&format!("revoked lease {lease1}"))
    {
        assert!(
            Instant::now() < deadline,
            "the next controller did not revoke {lease1}:\n{}",
            second.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = second.log_text();
    assert!(
        log.contains(&format!("resumed retired lease {lease1}")),
        "{log}"
    );
    // Not before the grace its predecessor gave it.
    assert!(tresor_sync::secret::now_millis() >= revoke_at);
    assert!(!role_exists(sup, &user1).await, "the old role is dropped");
    assert_eq!(lease_end(&server, &lease1).await, None);
    poll(10, "the annotation cleared", || async {
        let s = secret(&kube, "app-db").await?;
        annotation(&s, "tresor.dev/lease-retired")
            .is_none_or(|r| !r.contains(&lease1))
            .then_some(())
    })
    .await;
    assert_eq!(kube.violations().await, Vec::<Value>::new());
    drop(second);
    drop(first);
    drop(server);
    database.drop_all().await;
}

/// A `TresorSecret` with a dynamic database role under the controller: credentials of a role
/// that exists in PostgreSQL, the lease on the Secret and the status (`Ready`, `contentHash`);
/// a new spec re-issues them, and the old lease is revoked after the grace (its role dropped).
#[tokio::test]
async fn run_issues_and_rotates_a_tresor_secret_database_source() {
    let database = TestDatabase::create("runts").await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    database
        .mount_engine(&server, json!({"default_ttl": "20s", "max_ttl": "120s"}))
        .await;
    let (sup, tag) = (&database.sup, &database.tag);
    let kube = crate::sync_run::cluster(dir.path()).await;
    crate::sync_run::create(
        &kube,
        r#"
apiVersion: tresor.dev/v1alpha1
kind: TresorSecret
metadata: {name: app-db, namespace: apps}
spec:
  sources:
    - database: {mount: database, role: app}
  target: {name: app-db}
"#,
    )
    .await;
    let args = ["--revoke-old-after", "500ms"];
    let controller = RunController::start(&server, &kube, dir.path(), "ts", &args);
    let (lease1, user1) = poll(20, "the first credentials", || credentials(&kube)).await;
    assert!(user1.starts_with(&format!("{tag}-app-")), "{user1}");
    assert!(role_exists(sup, &user1).await);
    assert!(lease_end(&server, &lease1).await.is_some());
    let path = "/apis/tresor.dev/v1alpha1/namespaces/apps/tresorsecrets/app-db";
    let hash = poll(10, "Ready with the content hash", || async {
        let (_, obj) = kube.api("GET", path, None).await;
        let ready = obj["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        let hash = obj["status"]["contentHash"].as_str()?.to_owned();
        ready.then_some(hash)
    })
    .await;
    let s = secret(&kube, "app-db").await.unwrap();
    assert_eq!(annotation(&s, "tresor.dev/content-hash"), Some(hash));

    // A new spec: new credentials; the old lease revoked after the grace, its role dropped.
    crate::sync_run::merge_patch(
        &kube,
        path,
        json!({"spec": {"target": {"name": "app-db", "labels": {"rotated": "yes"}}}}),
    )
    .await;
    let (lease2, user2) = poll(20, "the re-issue", || async {
        credentials(&kube).await.filter(|(l, _)| *l != lease1)
    })
    .await;
    assert_ne!(user2, user1);
    poll(10, "the old lease's revocation", || async {
        controller
            .log_text()
            .contains(&format!("revoked lease {lease1}"))
            .then_some(())
    })
    .await;
    assert!(!role_exists(sup, &user1).await, "the old role is dropped");
    assert!(role_exists(sup, &user2).await);
    assert!(lease_end(&server, &lease2).await.is_some());
    assert_eq!(kube.violations().await, Vec::<Value>::new());
    drop(controller);
    drop(server);
    database.drop_all().await;
}
