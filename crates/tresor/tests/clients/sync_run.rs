//! `tresor sync run`, the in-cluster controller: the real server binary as the source, the
//! FAKE Kubernetes API server (test-support/fake-kube-apiserver) as the cluster, reached by
//! kube-rs through the fake's kubeconfig. Resources are created through the fake's API as an
//! admin would; the controller runs as a separate process, as in a pod. Every wait polls to a
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

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Server, raw, scratch_home};
use serde_json::{Value, json};
use support_kubernetes::{FakeKube, python};
use support_sync::{
    GHCR_TOKEN, GHCR_USER, LEGACY_KEY, ROOT, WEB_PASSWORD_V1, WEB_PASSWORD_V2, assert_no_values,
    decode, ok, seed,
};

/// A `tresor sync run` process; killed (SIGKILL) when dropped.
pub(crate) struct Controller {
    child: Option<Child>,
    identity: String,
    log: PathBuf,
    metrics: String,
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Short election and retry timings, so takeovers and retries happen within seconds.
const FAST: [&str; 10] = [
    "--lease-duration",
    "3s",
    "--renew-deadline",
    "2s",
    "--retry-period",
    "500ms",
    "--backoff-base",
    "500ms",
    "--backoff-max",
    "2s",
];

impl Controller {
    /// Starts `tresor sync run` against the fake (Lease `default/tresor-sync`), with
    /// `VAULT_ADDR` pointing at the server and, when given, `VAULT_TOKEN` overriding the
    /// stores' authentication; waits for its metrics endpoint.
    pub(crate) fn start(
        server: &Server,
        kube: &FakeKube,
        dir: &Path,
        identity: &str,
        token: Option<&str>,
        extra: &[&str],
    ) -> Controller {
        let log = dir.join(format!("sync-run-{identity}.log"));
        let mut cmd = Command::new(BIN);
        cmd.args(["sync", "run", "--lease-namespace", "default"])
            .args(["--identity", identity])
            .args(["--metrics-address", "127.0.0.1:0"])
            .args(FAST)
            .args(extra)
            .env("KUBECONFIG", kube.kubeconfig())
            .env("HOME", scratch_home())
            .env("VAULT_ADDR", &server.addr)
            .env_remove("VAULT_TOKEN")
            .env_remove("TRESOR_ADDR")
            .env_remove("TRESOR_TOKEN")
            .env_remove("BAO_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(t) = token {
            cmd.env("VAULT_TOKEN", t);
        }
        let child = cmd.spawn().unwrap();
        let mut c = Controller {
            child: Some(child),
            identity: identity.to_owned(),
            log,
            metrics: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = c.log_text();
            if let Some(rest) = text.split("metrics on http://").nth(1) {
                c.metrics = format!("http://{}", rest.split_whitespace().next().unwrap());
                break;
            }
            if let Some(status) = c.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("sync run exited ({status}):\n{text}");
            }
            assert!(Instant::now() < deadline, "no metrics line:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
        c
    }

    /// The successful reconciles so far (`tresor_sync_syncs_total{result="success"}`), read
    /// off the metrics text without the reference parser (cheap enough to poll).
    pub(crate) async fn successes(&self) -> f64 {
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

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn scrape(&self) -> Scrape {
        let text = reqwest::get(&self.metrics)
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        Scrape::parse(&text)
    }

    fn kill9(&mut self) {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
    }

    /// SIGTERM, then the exit status (within 20 s).
    fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Parsed Prometheus samples (by `prometheus_client.parser`, the reference parser).
struct Scrape {
    families: serde_json::Map<String, Value>,
    samples: Vec<(String, serde_json::Map<String, Value>, f64)>,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support_prometheus/parse.py");
        let mut child = Command::new(python())
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "prometheus_client refused the exposition: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        Scrape {
            families: v["families"].as_object().unwrap().clone(),
            samples: v["samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    (
                        s[0].as_str().unwrap().to_owned(),
                        s[1].as_object().unwrap().clone(),
                        s[2].as_f64().unwrap_or(f64::NAN),
                    )
                })
                .collect(),
        }
    }

    /// The sum of the samples named `name` whose labels include `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, l, _)| {
                n == name && labels.iter().all(|(k, v)| l.get(*k) == Some(&json!(v)))
            })
            .map(|(_, _, v)| *v)
            .sum()
    }
}

/// Polls `f` every 100 ms until it yields, for at most `secs` seconds.
pub(crate) async fn poll<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
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

fn kube_http(kube: &FakeKube) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(kube.ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

/// A merge patch as the admin.
pub(crate) async fn merge_patch(kube: &FakeKube, path: &str, body: Value) {
    let resp = kube_http(kube)
        .patch(format!("{}{path}", kube.url))
        .bearer_auth(kube.admin_token())
        .header("Content-Type", "application/merge-patch+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    assert_eq!(status, 200, "PATCH {path}: {}", resp.text().await.unwrap());
}

fn collection_path(doc: &Value) -> String {
    let api_version = doc["apiVersion"].as_str().unwrap();
    let kind = doc["kind"].as_str().unwrap();
    let plural = match kind {
        "Secret" => "secrets",
        "ExternalSecret" => "externalsecrets",
        "SecretStore" => "secretstores",
        "VaultStaticSecret" => "vaultstaticsecrets",
        "VaultAuth" => "vaultauths",
        "VaultConnection" => "vaultconnections",
        "TresorSecret" => "tresorsecrets",
        "CustomResourceDefinition" => "customresourcedefinitions",
        other => panic!("no plural for {other}"),
    };
    let prefix = if api_version == "v1" {
        "/api/v1".to_owned()
    } else {
        format!("/apis/{api_version}")
    };
    match doc["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{prefix}/namespaces/{ns}/{plural}"),
        None => format!("{prefix}/{plural}"),
    }
}

/// Creates every object of a YAML stream; returns them as stored (with uids).
pub(crate) async fn create(kube: &FakeKube, yaml: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for (_, doc) in tresor_sync::yaml::documents(yaml).unwrap() {
        let path = collection_path(&doc);
        let (status, body) = kube.api("POST", &path, Some(doc)).await;
        assert_eq!(status, 201, "POST {path}: {body}");
        out.push(body);
    }
    out
}

async fn get(kube: &FakeKube, path: &str) -> Option<Value> {
    let (status, body) = kube.api("GET", path, None).await;
    match status {
        200 => Some(body),
        404 => None,
        other => panic!("GET {path}: {other} {body}"),
    }
}

async fn secret(kube: &FakeKube, ns: &str, name: &str) -> Option<Value> {
    get(kube, &format!("/api/v1/namespaces/{ns}/secrets/{name}")).await
}

/// A Secret's key once it holds `want`.
pub(crate) async fn secret_holds(
    kube: &FakeKube,
    ns: &str,
    name: &str,
    key: &str,
    want: &str,
) -> Value {
    poll(
        20,
        &format!("Secret {ns}/{name} {key} = the new value"),
        || async {
            secret(kube, ns, name)
                .await
                .filter(|s| s["data"].get(key).is_some() && decode(s, key).contains(want))
        },
    )
    .await
}

/// The resource's `Ready` condition once its status is `status` (and the message holds
/// `message`).
pub(crate) async fn ready(kube: &FakeKube, path: &str, status: &str, message: &str) -> Value {
    poll(
        20,
        &format!("{path} Ready={status} ({message})"),
        || async {
            let obj = get(kube, path).await?;
            let cond = obj["status"]["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == "Ready")?
                .clone();
            (cond["status"] == status && cond["message"].as_str()?.contains(message))
                .then_some(cond)
        },
    )
    .await
}

/// Events in `ns` about the object named `name` with `reason`.
async fn events(kube: &FakeKube, ns: &str, name: &str, reason: &str) -> Vec<Value> {
    let (status, list) = kube
        .api("GET", &format!("/api/v1/namespaces/{ns}/events"), None)
        .await;
    assert_eq!(status, 200, "{list}");
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["involvedObject"]["name"] == name && e["reason"] == reason)
        .cloned()
        .collect()
}

pub(crate) async fn cluster(dir: &Path) -> FakeKube {
    let kube = FakeKube::start_with(dir, &["--crds", "crds"]);
    for ns in ["apps", "shop"] {
        kube.namespace(ns, json!({})).await;
    }
    let crd = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tresor-sync/deploy/crds/tresor.dev_tresorsecrets.yaml"),
    )
    .unwrap();
    create(&kube, &crd).await;
    kube
}

const STEADY: &str = r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: tresor, namespace: apps}
spec:
  provider:
    vault:
      server: "http://tresor.invalid:8200"
      path: secret
      version: v2
      auth:
        tokenSecretRef: {name: vault-token, key: token}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: ghcr-pull-sync, namespace: apps}
spec:
  refreshInterval: 1s
  secretStoreRef: {kind: SecretStore, name: tresor}
  target:
    name: ghcr-pull
    template:
      type: kubernetes.io/dockerconfigjson
      data:
        .dockerconfigjson: '{"auths":{"ghcr.io":{"username":"{{ .username }}","password":"{{ .token }}","auth":"{{ printf "%s:%s" .username .token | b64enc }}"}}}'
  data:
    - secretKey: username
      remoteRef: {key: ghcr, property: username}
    - secretKey: token
      remoteRef: {key: ghcr, property: token}
---
apiVersion: external-secrets.io/v1beta1
kind: ExternalSecret
metadata: {name: forced, namespace: apps}
spec:
  refreshInterval: "0"
  secretStoreRef: {kind: SecretStore, name: tresor}
  data:
    - secretKey: password
      remoteRef: {key: webapp/config, property: password}
---
apiVersion: secrets.hashicorp.com/v1beta1
kind: VaultStaticSecret
metadata: {name: webapp, namespace: apps}
spec:
  type: kv-v2
  mount: secret
  path: webapp/config
  refreshAfter: 1s
  destination:
    name: webapp-config
    create: true
    labels: {app: web}
    transformation:
      excludes: ["^internal_"]
---
apiVersion: tresor.dev/v1alpha1
kind: TresorSecret
metadata: {name: shop, namespace: shop}
spec:
  refreshInterval: 1s
  sources:
    - kv: {mount: legacy, path: shop, kvVersion: 1}
  target: {name: shop-env, labels: {app: shop}}
"#;

/// The controller renders an ExternalSecret (v1 and v1beta1), a VaultStaticSecret and a
/// TresorSecret into owned Secrets, marks them Ready, propagates a KV update within the
/// refresh interval, honours `force-sync` on a resource that never refreshes, writes nothing
/// at all while idle over several refresh intervals, exposes metrics that the reference
/// parser reads and that move, and a deleted ExternalSecret takes its Secret with it.
#[tokio::test]
async fn run_keeps_secrets_in_step_and_idles_without_writes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    seed(&server).await;
    let kube = cluster(dir.path()).await;
    let created = create(&kube, STEADY).await;
    let uid_of = |name: &str| {
        created
            .iter()
            .find(|o| o["metadata"]["name"] == name)
            .unwrap()["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    let controller = Controller::start(
        &server,
        &kube,
        dir.path(),
        "solo",
        Some(ROOT),
        &["--no-leader-election"],
    );

    // Every Secret, owned by its resource.
    let ghcr = secret_holds(&kube, "apps", "ghcr-pull", ".dockerconfigjson", GHCR_TOKEN).await;
    assert_eq!(ghcr["type"], "kubernetes.io/dockerconfigjson");
    let web = secret_holds(&kube, "apps", "webapp-config", "password", WEB_PASSWORD_V2).await;
    assert!(web["data"].get("internal_note").is_none());
    assert_eq!(web["metadata"]["labels"]["app"], "web");
    let shop = secret_holds(&kube, "shop", "shop-env", "api_key", LEGACY_KEY).await;
    let forced = secret_holds(&kube, "apps", "forced", "password", WEB_PASSWORD_V2).await;
    for (s, api_version, kind, name) in [
        (
            &ghcr,
            "external-secrets.io/v1",
            "ExternalSecret",
            "ghcr-pull-sync",
        ),
        // Watched in v1 (the version the cluster prefers) whatever it was written in.
        (
            &forced,
            "external-secrets.io/v1",
            "ExternalSecret",
            "forced",
        ),
        (
            &web,
            "secrets.hashicorp.com/v1beta1",
            "VaultStaticSecret",
            "webapp",
        ),
        (&shop, "tresor.dev/v1alpha1", "TresorSecret", "shop"),
    ] {
        assert_eq!(
            s["metadata"]["ownerReferences"],
            json!([{"apiVersion": api_version, "kind": kind, "name": name,
                    "uid": uid_of(name), "controller": true, "blockOwnerDeletion": true}]),
            "{s}"
        );
        assert_eq!(
            s["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "tresor-sync"
        );
    }

    // Ready, in each kind's status shape.
    let es = ready(
        &kube,
        "/apis/external-secrets.io/v1/namespaces/apps/externalsecrets/ghcr-pull-sync",
        "True",
        "Secret apps/ghcr-pull synced",
    )
    .await;
    assert_eq!(es["reason"], "SecretSynced");
    let es_obj = get(
        &kube,
        "/apis/external-secrets.io/v1/namespaces/apps/externalsecrets/ghcr-pull-sync",
    )
    .await
    .unwrap();
    assert_eq!(es_obj["status"]["binding"]["name"], "ghcr-pull");
    assert!(es_obj["status"]["refreshTime"].is_string());
    ready(
        &kube,
        "/apis/secrets.hashicorp.com/v1beta1/namespaces/apps/vaultstaticsecrets/webapp",
        "True",
        "synced",
    )
    .await;
    let ts = ready(
        &kube,
        "/apis/tresor.dev/v1alpha1/namespaces/shop/tresorsecrets/shop",
        "True",
        "Secret shop/shop-env synced",
    )
    .await;
    assert_eq!(ts["reason"], "Synced");
    let ts_obj = get(
        &kube,
        "/apis/tresor.dev/v1alpha1/namespaces/shop/tresorsecrets/shop",
    )
    .await
    .unwrap();
    assert_eq!(
        ts_obj["status"]["contentHash"],
        shop["metadata"]["annotations"]["tresor.dev/content-hash"]
    );
    assert!(
        !events(&kube, "apps", "ghcr-pull-sync", "Synced")
            .await
            .is_empty()
    );

    // A KV update reaches the Secret within the refresh interval (1 s; polled for 20 s, and
    // timed: well under the 1 h default).
    let rotated = "ghp_RotatedByTheController42";
    ok(
        &server,
        "POST",
        "secret/data/ghcr",
        json!({"data": {"username": GHCR_USER, "token": rotated}}),
    )
    .await;
    let started = Instant::now();
    secret_holds(&kube, "apps", "ghcr-pull", ".dockerconfigjson", rotated).await;
    assert!(started.elapsed() < Duration::from_secs(10));

    // `forced` never refreshes (refreshInterval "0"): a KV update reaches the
    // VaultStaticSecret reading the same path, not it, until its force-sync annotation
    // changes.
    let v3 = "web-pass-version-three";
    ok(
        &server,
        "POST",
        "secret/data/webapp/config",
        json!({"data": {"username": "web", "password": v3}}),
    )
    .await;
    secret_holds(&kube, "apps", "webapp-config", "password", v3).await;
    let still = secret(&kube, "apps", "forced").await.unwrap();
    assert_eq!(decode(&still, "password"), WEB_PASSWORD_V2);
    merge_patch(
        &kube,
        "/apis/external-secrets.io/v1/namespaces/apps/externalsecrets/forced",
        json!({"metadata": {"annotations": {"force-sync": "1"}}}),
    )
    .await;
    secret_holds(&kube, "apps", "forced", "password", v3).await;
    // The Event of that update is the last write of this burst.
    poll(20, "the Synced Event of forced's update", || async {
        events(&kube, "apps", "forced", "Synced")
            .await
            .into_iter()
            .find(|e| e["message"].as_str().unwrap_or("").contains("updated"))
    })
    .await;

    // Idle: over several refresh intervals, refreshes run and nothing at all is written (no
    // Secret, status or Event; without leader election, no Lease renewal either).
    let before = controller.scrape().await;
    kube.mark().await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let writes = kube.writes().await;
    assert_eq!(writes["total"], 0, "an idle controller wrote: {writes}");
    let after = controller.scrape().await;
    let syncs = |s: &Scrape, kind: &str| {
        s.value(
            "tresor_sync_syncs_total",
            &[("kind", kind), ("result", "success")],
        )
    };
    for kind in ["ExternalSecret", "VaultStaticSecret", "TresorSecret"] {
        assert!(
            syncs(&after, kind) >= syncs(&before, kind) + 2.0,
            "{kind}: refreshes did not run while idle"
        );
    }

    // The metrics: families typed, counters and gauges as the run left them.
    for (family, kind) in [
        ("tresor_sync_syncs", "counter"),
        ("tresor_sync_failures", "counter"),
        ("tresor_sync_secret_writes", "counter"),
        ("tresor_sync_sync_duration_seconds", "histogram"),
        ("tresor_sync_last_success_age_seconds", "gauge"),
        ("tresor_sync_resources", "gauge"),
        ("tresor_sync_leader", "gauge"),
    ] {
        assert_eq!(after.families[family], kind, "{family}");
    }
    assert_eq!(after.value("tresor_sync_leader", &[]), 1.0);
    assert_eq!(
        after.value("tresor_sync_resources", &[("kind", "ExternalSecret")]),
        2.0
    );
    assert_eq!(
        after.value(
            "tresor_sync_secret_writes_total",
            &[("operation", "create")]
        ),
        4.0
    );
    assert_eq!(
        after.value(
            "tresor_sync_secret_writes_total",
            &[("operation", "update")]
        ),
        3.0
    );
    assert_eq!(after.value("tresor_sync_failures_total", &[]), 0.0);
    assert!(
        after.value(
            "tresor_sync_sync_duration_seconds_count",
            &[("kind", "TresorSecret")]
        ) >= 3.0
    );
    let lag = after.value(
        "tresor_sync_last_success_age_seconds",
        &[("kind", "ExternalSecret"), ("name", "ghcr-pull-sync")],
    );
    assert!((0.0..5.0).contains(&lag), "lag {lag}");

    // Deleting the ExternalSecret: the fake's garbage collector takes its Secret.
    let (status, body) = kube
        .api(
            "DELETE",
            "/apis/external-secrets.io/v1/namespaces/apps/externalsecrets/ghcr-pull-sync",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    poll(20, "the owned Secret to go", || async {
        secret(&kube, "apps", "ghcr-pull")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    // Not recreated by a refresh after its resource is gone.
    let scrape = poll(20, "the resource gauge to drop", || async {
        let s = controller.scrape().await;
        (s.value("tresor_sync_resources", &[("kind", "ExternalSecret")]) == 1.0).then_some(s)
    })
    .await;
    assert_eq!(
        scrape.value(
            "tresor_sync_last_success_age_seconds",
            &[("name", "ghcr-pull-sync")]
        ),
        0.0
    );
    assert!(secret(&kube, "apps", "ghcr-pull").await.is_none());

    let log = controller.log_text();
    assert_no_values(&log);
    assert!(!log.contains(rotated) && !log.contains(v3), "{log}");
    assert_eq!(kube.violations().await, Vec::<Value>::new());
}

/// A denied read and a missing source set `Ready=False` with the safe reason, record a
/// `SyncFailed` Event, write no Secret for the denied resource and keep the last good
/// Secret of the other; once the source is back, the retries (with backoff) bring it Ready.
#[tokio::test]
async fn failures_set_ready_false_record_an_event_and_keep_the_last_good_secret() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    seed(&server).await;
    ok(
        &server,
        "PUT",
        "sys/policy/ghcr-only",
        json!({"policy": "path \"secret/data/ghcr\" { capabilities = [\"read\"] }"}),
    )
    .await;
    let limited = ok(
        &server,
        "POST",
        "auth/token/create",
        json!({"policies": ["ghcr-only"], "no_default_policy": true}),
    )
    .await["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let kube = cluster(dir.path()).await;
    let b64 = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    create(
        &kube,
        &format!(
            r#"
apiVersion: v1
kind: Secret
metadata: {{name: root-token, namespace: apps}}
data: {{token: "{}"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: limited-token, namespace: apps}}
data: {{token: "{}"}}
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {{name: root, namespace: apps}}
spec:
  provider:
    vault:
      server: "http://tresor.invalid:8200"
      path: secret
      auth: {{tokenSecretRef: {{name: root-token, key: token}}}}
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {{name: limited, namespace: apps}}
spec:
  provider:
    vault:
      server: "http://tresor.invalid:8200"
      path: secret
      auth: {{tokenSecretRef: {{name: limited-token, key: token}}}}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {{name: app, namespace: apps}}
spec:
  refreshInterval: 1s
  secretStoreRef: {{name: root}}
  data:
    - secretKey: password
      remoteRef: {{key: webapp/config, property: password}}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {{name: denied, namespace: apps}}
spec:
  refreshInterval: 1s
  secretStoreRef: {{name: limited}}
  data:
    - secretKey: password
      remoteRef: {{key: webapp/config, property: password}}
"#,
            b64(ROOT),
            b64(&limited)
        ),
    )
    .await;
    // No VAULT_TOKEN: each store logs in with its own token Secret.
    let controller = Controller::start(&server, &kube, dir.path(), "solo", None, &[]);

    let app = "/apis/external-secrets.io/v1/namespaces/apps/externalsecrets/app";
    let denied = "/apis/external-secrets.io/v1/namespaces/apps/externalsecrets/denied";
    secret_holds(&kube, "apps", "app", "password", WEB_PASSWORD_V2).await;
    ready(&kube, app, "True", "synced").await;

    // Denied: Ready False with the server's safe reason, a Warning Event, no Secret.
    let cond = ready(&kube, denied, "False", "permission denied").await;
    assert_eq!(cond["reason"], "SecretSyncedError");
    let message = cond["message"].as_str().unwrap();
    assert!(message.contains("secret/data/webapp/config"), "{message}");
    let denied_uid = get(&kube, denied).await.unwrap()["metadata"]["uid"].clone();
    let event = poll(20, "the SyncFailed Event of denied", || async {
        events(&kube, "apps", "denied", "SyncFailed").await.pop()
    })
    .await;
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["involvedObject"]["uid"], denied_uid);
    assert_eq!(event["involvedObject"]["kind"], "ExternalSecret");
    assert_eq!(event["source"]["component"], "tresor-sync");
    assert!(
        event["message"]
            .as_str()
            .unwrap()
            .contains("permission denied")
    );
    assert!(secret(&kube, "apps", "denied").await.is_none());

    // The source goes missing: Ready False, an Event, and the Secret keeps its last value.
    let before = secret(&kube, "apps", "app").await.unwrap();
    let (status, body) = raw(
        &server,
        "DELETE",
        "secret/metadata/webapp/config",
        Some(ROOT),
        None,
    )
    .await;
    assert!((200..300).contains(&status), "{status} {body}");
    let cond = ready(
        &kube,
        app,
        "False",
        "no secret at secret/data/webapp/config",
    )
    .await;
    assert_eq!(cond["reason"], "SecretSyncedError");
    poll(20, "the SyncFailed Event of app", || async {
        events(&kube, "apps", "app", "SyncFailed").await.pop()
    })
    .await;
    let kept = secret(&kube, "apps", "app").await.unwrap();
    assert_eq!(kept["data"], before["data"]);
    assert_eq!(
        kept["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    assert_eq!(decode(&kept, "password"), WEB_PASSWORD_V2);

    // Failures are counted; the retries keep going (with backoff capped at 2 s here).
    let failed = poll(20, "two failed syncs of app's kind", || async {
        let s = controller.scrape().await;
        (s.value("tresor_sync_failures_total", &[("kind", "ExternalSecret")]) >= 4.0).then_some(s)
    })
    .await;
    assert!(
        failed.value(
            "tresor_sync_syncs_total",
            &[("kind", "ExternalSecret"), ("result", "error")]
        ) >= 4.0
    );

    // Back: the next retry syncs it, Ready again.
    ok(
        &server,
        "POST",
        "secret/data/webapp/config",
        json!({"data": {"username": "web", "password": WEB_PASSWORD_V1}}),
    )
    .await;
    secret_holds(&kube, "apps", "app", "password", WEB_PASSWORD_V1).await;
    ready(&kube, app, "True", "synced").await;

    for obj in [app, denied] {
        let status = get(&kube, obj).await.unwrap()["status"].to_string();
        assert_no_values(&status);
        assert!(!status.contains(&limited), "{status}");
    }
    let (_, all) = kube
        .api("GET", "/api/v1/namespaces/apps/events", None)
        .await;
    assert_no_values(&all.to_string());
    let log = controller.log_text();
    assert_no_values(&log);
    assert!(!log.contains(&limited));
    assert_eq!(kube.violations().await, Vec::<Value>::new());
}

async fn lease(kube: &FakeKube) -> Option<Value> {
    get(
        kube,
        "/apis/coordination.k8s.io/v1/namespaces/default/leases/tresor-sync",
    )
    .await
}

/// Two controllers against one cluster: exactly one holds the Lease and reconciles; when it
/// is killed (no release), the other takes over once the Lease expires and keeps the Secrets
/// in step; SIGTERM makes a leader release the Lease and exit 0.
#[tokio::test]
async fn two_controllers_elect_one_leader_and_the_second_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    seed(&server).await;
    let kube = cluster(dir.path()).await;
    create(
        &kube,
        r#"
apiVersion: tresor.dev/v1alpha1
kind: TresorSecret
metadata: {name: shop, namespace: shop}
spec:
  refreshInterval: 1s
  sources:
    - kv: {mount: secret, path: ghcr}
  target: {name: shop-env}
"#,
    )
    .await;
    let mut a = Controller::start(&server, &kube, dir.path(), "replica-a", Some(ROOT), &[]);
    let mut b = Controller::start(&server, &kube, dir.path(), "replica-b", Some(ROOT), &[]);

    let holder = poll(20, "a Lease holder", || async {
        let l = lease(&kube).await?;
        l["spec"]["holderIdentity"].as_str().map(str::to_owned)
    })
    .await;
    assert!(holder == "replica-a" || holder == "replica-b", "{holder}");
    secret_holds(&kube, "shop", "shop-env", "token", GHCR_TOKEN).await;
    let (leader, follower) = if holder == "replica-a" {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    // Exactly one leads; only it reconciles.
    poll(20, "the leader's refreshes", || async {
        let s = leader.scrape().await;
        (s.value("tresor_sync_syncs_total", &[]) >= 2.0).then_some(())
    })
    .await;
    let l = leader.scrape().await;
    let f = follower.scrape().await;
    assert_eq!(l.value("tresor_sync_leader", &[]), 1.0);
    assert_eq!(f.value("tresor_sync_leader", &[]), 0.0);
    assert_eq!(f.value("tresor_sync_syncs_total", &[]), 0.0);
    assert_eq!(
        f.value("tresor_sync_resources", &[("kind", "TresorSecret")]),
        1.0,
        "the follower's cache is warm"
    );
    // While idle, the only writes are the leader's Lease renewals.
    kube.mark().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let writes = kube.writes().await;
    assert_eq!(
        writes["by_resource"],
        json!({"leases.coordination.k8s.io": {"update": writes["total"]}}),
        "{writes}"
    );
    assert!(writes["total"].as_u64().unwrap() >= 1, "{writes}");
    let transitions = lease(&kube).await.unwrap()["spec"]["leaseTransitions"]
        .as_i64()
        .unwrap_or(0);

    // The leader dies without releasing: the follower takes over after the lease duration.
    let killed_at = Instant::now();
    leader.kill9();
    let new_holder = follower.identity.clone();
    let taken = poll(20, "the takeover", || async {
        let l = lease(&kube).await?;
        (l["spec"]["holderIdentity"] == new_holder.as_str()).then_some(l)
    })
    .await;
    assert!(
        killed_at.elapsed() >= Duration::from_secs(2),
        "taken over before the Lease expired"
    );
    assert_eq!(
        taken["spec"]["leaseTransitions"].as_i64().unwrap(),
        transitions + 1
    );
    let rotated = "ghp_AfterTheTakeover77";
    ok(
        &server,
        "POST",
        "secret/data/ghcr",
        json!({"data": {"username": GHCR_USER, "token": rotated}}),
    )
    .await;
    secret_holds(&kube, "shop", "shop-env", "token", rotated).await;
    assert_eq!(
        follower.scrape().await.value("tresor_sync_leader", &[]),
        1.0
    );

    // SIGTERM: the Lease is released (no holder) and the process exits 0.
    let status = follower.terminate();
    assert!(status.success(), "{status}");
    let released = lease(&kube).await.unwrap();
    assert!(
        released["spec"]
            .get("holderIdentity")
            .is_none_or(|h| h == ""),
        "{released}"
    );
    assert_eq!(kube.violations().await, Vec::<Value>::new());
}

/// The SecretStore of the tests below (`VAULT_TOKEN` overrides its token Secret).
const TOKEN_STORE: &str = r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: tresor, namespace: apps}
spec:
  provider:
    vault:
      server: "http://tresor.invalid:8200"
      path: secret
      version: v2
      auth:
        tokenSecretRef: {name: vault-token, key: token}
"#;

/// A managed Secret deleted or edited by hand is put back at once, through the controller's
/// watch of the Secrets it manages, not at the next refresh (an hour away here, and never for
/// the VaultStaticSecret without `refreshAfter`). An edit of the data that leaves the content
/// hash annotation alone is noticed too. The controller's own writes do not wake it, so an
/// idle cluster still sees no writes.
#[tokio::test]
async fn a_secret_deleted_or_edited_by_hand_is_put_back_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    seed(&server).await;
    let kube = cluster(dir.path()).await;
    create(
        &kube,
        &format!(
            "{TOKEN_STORE}---{}",
            r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: web-password, namespace: apps}
spec:
  refreshInterval: 1h
  secretStoreRef: {kind: SecretStore, name: tresor}
  data:
    - secretKey: password
      remoteRef: {key: webapp/config, property: password}
---
apiVersion: secrets.hashicorp.com/v1beta1
kind: VaultStaticSecret
metadata: {name: shop-legacy, namespace: shop}
spec:
  type: kv-v1
  mount: legacy
  path: shop
  destination: {name: shop-legacy, create: true}
"#
        ),
    )
    .await;
    let controller = Controller::start(
        &server,
        &kube,
        dir.path(),
        "solo",
        Some(ROOT),
        &["--no-leader-election"],
    );
    secret_holds(&kube, "apps", "web-password", "password", WEB_PASSWORD_V2).await;
    secret_holds(&kube, "shop", "shop-legacy", "api_key", LEGACY_KEY).await;
    ready(
        &kube,
        "/apis/external-secrets.io/v1/namespaces/apps/externalsecrets/web-password",
        "True",
        "",
    )
    .await;

    // Deleted by hand: back within seconds.
    kube.mark().await;
    let (status, body) = kube
        .api(
            "DELETE",
            "/api/v1/namespaces/apps/secrets/web-password",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let back = secret_holds(&kube, "apps", "web-password", "password", WEB_PASSWORD_V2).await;
    assert_eq!(
        back["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "tresor-sync"
    );

    // A value edited by hand, the content hash annotation left as it was: put back.
    let path = "/api/v1/namespaces/shop/secrets/shop-legacy";
    let (_, mut edited) = kube.api("GET", path, None).await;
    edited["data"]["api_key"] = json!(base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        "tampered-by-hand"
    ));
    let (status, body) = kube.api("PUT", path, Some(edited)).await;
    assert_eq!(status, 200, "{body}");
    secret_holds(&kube, "shop", "shop-legacy", "api_key", LEGACY_KEY).await;

    let writes = kube.writes().await;
    assert_eq!(
        writes["by_object"]["secrets/apps/web-password"],
        json!({"delete": 1, "create": 1}),
        "{writes}"
    );
    assert_eq!(
        writes["by_object"]["secrets/shop/shop-legacy"],
        json!({"update": 2}),
        "{writes}"
    );
    let log = controller.log_text();
    assert!(
        log.contains(
            "ExternalSecret apps/web-password: its Secret was deleted outside tresor sync"
        ),
        "{log}"
    );
    assert!(!log.contains("tampered-by-hand"), "{log}");
    assert_no_values(&log);

    // Idle: the controller's own writes wake nothing, so nothing more is written (once the
    // Events of the two repairs are out).
    poll(10, "the repairs' Events", || async {
        (events(&kube, "apps", "web-password", "Synced").await.len() >= 2
            && events(&kube, "shop", "shop-legacy", "Synced").await.len() >= 2)
            .then_some(())
    })
    .await;
    kube.mark().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = kube.writes().await;
    assert_eq!(idle["total"], 0, "{idle}");
}

/// Two resources naming one Secret: the first keeps it, the second fails with a reason naming
/// the first (instead of the two undoing each other's writes), and takes the Secret over once
/// the first is deleted.
#[tokio::test]
async fn two_resources_naming_one_secret_the_first_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    seed(&server).await;
    let kube = cluster(dir.path()).await;
    let es = |name: &str, key: &str| {
        format!(
            r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {{name: {name}, namespace: apps}}
spec:
  refreshInterval: 1h
  secretStoreRef: {{kind: SecretStore, name: tresor}}
  target: {{name: shared}}
  data:
    - secretKey: {key}
      remoteRef: {{key: webapp/config, property: {key}}}
"#
        )
    };
    create(
        &kube,
        &format!("{TOKEN_STORE}---{}", es("first", "password")),
    )
    .await;
    let _controller = Controller::start(
        &server,
        &kube,
        dir.path(),
        "solo",
        Some(ROOT),
        &["--no-leader-election"],
    );
    secret_holds(&kube, "apps", "shared", "password", WEB_PASSWORD_V2).await;
    create(&kube, &es("second", "username")).await;
    ready(
        &kube,
        "/apis/external-secrets.io/v1/namespaces/apps/externalsecrets/second",
        "False",
        "Secret apps/shared is also the target of ExternalSecret apps/first",
    )
    .await;
    let shared = secret(&kube, "apps", "shared").await.unwrap();
    assert!(shared["data"].get("username").is_none(), "{shared}");
    assert_eq!(
        shared["metadata"]["ownerReferences"][0]["name"], "first",
        "{shared}"
    );

    // The first goes, its Secret with it (garbage collection); the second then writes it.
    let (status, body) = kube
        .api(
            "DELETE",
            "/apis/external-secrets.io/v1/namespaces/apps/externalsecrets/first",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let taken = secret_holds(&kube, "apps", "shared", "username", "web").await;
    assert!(taken["data"].get("password").is_none(), "{taken}");
    assert_eq!(taken["metadata"]["ownerReferences"][0]["name"], "second");
    ready(
        &kube,
        "/apis/external-secrets.io/v1/namespaces/apps/externalsecrets/second",
        "True",
        "Secret apps/shared synced",
    )
    .await;
}
