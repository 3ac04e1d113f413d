//! The expiration manager, driven through the core with a test engine for the SDK lease
//! interface: `LedgerTestEngine` "creates" an entry in its storage for every credential it
//! issues (with a managed lease) and deletes it when the lease is revoked, so every test can
//! observe revocation through the engine as well as through `sys/leases/lookup`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use tresor_core::expiration::LeaseOptions;
use tresor_core::logical::{LogicalRequest, LogicalResponse};
use tresor_core::mount::{EnableRequest, MountKind, TuneRequest};
use tresor_core::seal::InitRequest;
use tresor_core::{Core, CoreError, CoreOptions};
use tresor_sdk::engine::{
    EngineError, EngineFactory, EngineResult, Lease, LeaseRenewal, LeaseSpec, MountInfo, Operation,
    Request, Response, SecretEngine,
};
use tresor_sdk::secret::{SecretBytes, SecretString};
use tresor_sdk::storage::Storage;
use tresor_storage::{Backend, EmbeddedBackend, MemoryBackend};

/// Shared by every instance the factory builds: how many revocations must still fail, and how
/// many calls were made.
#[derive(Debug, Default)]
struct Knobs {
    fail_revocations: AtomicU32,
    revoke_calls: AtomicU32,
    renew_calls: AtomicU32,
}

/// A test engine for the SDK lease interface. `creds/<role>` (read) issues a credential: it
/// writes `issued/<n>` in its storage and returns a managed lease whose internal data names
/// the entry. Query `ttl`/`max_ttl` (seconds) shape the lease. Revocation deletes the entry;
/// an entry that is already gone counts as revoked. `issued/` (list) shows what is live.
#[derive(Debug)]
struct LedgerTestEngine {
    knobs: Arc<Knobs>,
}

#[async_trait]
impl SecretEngine for LedgerTestEngine {
    async fn handle(
        &self,
        request: &Request,
        storage: &dyn Storage,
    ) -> EngineResult<Option<Response>> {
        match (request.operation, request.path.as_str()) {
            (Operation::Read, p) if p.starts_with("creds/") => {
                let n = storage.list("issued/").await?.len();
                let entry = format!("user-{n}-{}", request.path.len());
                storage.put(&format!("issued/{entry}"), b"live").await?;
                let secs = |k: &str| {
                    request
                        .query_value(k)
                        .and_then(|v| v.parse().ok())
                        .map_or(Duration::ZERO, Duration::from_secs)
                };
                let mut internal = Map::new();
                internal.insert("entry".into(), json!(entry));
                let mut data = Map::new();
                data.insert("username".into(), json!(entry));
                // `rollback=<key>`: a record written before the "credential", named in the
                // lease spec so the core deletes it with the lease write.
                let rollback_key = request.query_value("rollback").map(str::to_owned);
                if let Some(key) = &rollback_key
                    && !key.contains("//")
                {
                    storage.put(key, b"undo").await?;
                }
                let mut response = Response::with_data(data);
                response.lease = Some(LeaseSpec {
                    ttl: secs("ttl"),
                    max_ttl: secs("max_ttl"),
                    renewable: request.query_value("renewable") != Some("false"),
                    managed: true,
                    internal,
                    rollback_key,
                });
                Ok(Some(response))
            }
            (Operation::List, "issued/" | "rollback/") => {
                let keys = storage.list(&request.path).await?;
                Ok(Some(Response::list(keys)))
            }
            _ => Err(EngineError::UnsupportedPath),
        }
    }

    async fn renew_lease(
        &self,
        lease: &Lease,
        storage: &dyn Storage,
    ) -> EngineResult<LeaseRenewal> {
        self.knobs.renew_calls.fetch_add(1, Ordering::SeqCst);
        let entry = lease.internal["entry"].as_str().unwrap_or_default();
        if storage.get(&format!("issued/{entry}")).await?.is_none() {
            return Err(EngineError::InvalidRequest("credential is gone".into()));
        }
        Ok(LeaseRenewal::default())
    }

    async fn revoke_lease(&self, lease: &Lease, storage: &dyn Storage) -> EngineResult<()> {
        self.knobs.revoke_calls.fetch_add(1, Ordering::SeqCst);
        let failing = self
            .knobs
            .fail_revocations
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(EngineError::Upstream(
                "upstream database unavailable".into(),
            ));
        }
        let entry = lease.internal["entry"].as_str().unwrap_or_default();
        // Deleting what is already gone succeeds: it counts as revoked.
        storage.delete(&format!("issued/{entry}")).await?;
        Ok(())
    }
}

#[derive(Debug)]
struct LedgerFactory {
    knobs: Arc<Knobs>,
}

impl EngineFactory for LedgerFactory {
    fn types(&self) -> &[&'static str] {
        &["ledger"]
    }
    fn build(&self, _mount: &MountInfo) -> EngineResult<Arc<dyn SecretEngine>> {
        Ok(Arc::new(LedgerTestEngine {
            knobs: self.knobs.clone(),
        }))
    }
}

struct Harness {
    core: Arc<Core>,
    root: String,
    key: SecretBytes,
    knobs: Arc<Knobs>,
}

fn fast_options() -> LeaseOptions {
    LeaseOptions {
        retry_base: Duration::from_millis(100),
        retry_max: Duration::from_millis(400),
        ..LeaseOptions::default()
    }
}

async fn start(backend: Arc<dyn Backend>, leases: LeaseOptions, knobs: Arc<Knobs>) -> Arc<Core> {
    Core::new(
        backend,
        CoreOptions {
            cluster_name: None,
            engines: vec![Arc::new(LedgerFactory { knobs })],
            leases,
            ..CoreOptions::default()
        },
    )
    .await
    .unwrap()
}

async fn harness_on(backend: Arc<dyn Backend>, leases: LeaseOptions) -> Harness {
    let knobs = Arc::new(Knobs::default());
    let core = start(backend, leases, knobs.clone()).await;
    let init = core
        .initialize(&InitRequest {
            secret_shares: 1,
            secret_threshold: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let key = init.keys[0].clone();
    core.unseal(key.clone()).await.unwrap();
    core.active()
        .unwrap()
        .mounts
        .enable(
            MountKind::Secret,
            "db",
            EnableRequest {
                engine_type: "ledger".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    Harness {
        core,
        root: init.root_token.expose().to_owned(),
        key,
        knobs,
    }
}

async fn harness(leases: LeaseOptions) -> Harness {
    harness_on(Arc::new(MemoryBackend::new()), leases).await
}

impl Harness {
    async fn call(
        &self,
        operation: Operation,
        path: &str,
        query: &[(&str, &str)],
        data: Value,
        token: &str,
    ) -> Result<Option<LogicalResponse>, CoreError> {
        let data = match data {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        self.core
            .handle_logical(LogicalRequest {
                operation,
                path: path.to_owned(),
                data,
                query: query
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                content_type: None,
                token: Some(SecretString::from(token)),
                remote_addr: None,
                wrap_ttl: None,
            })
            .await
    }

    /// Issues a credential on `db/creds/app` and returns (lease id, lease duration, warnings).
    async fn issue(&self, token: &str, query: &[(&str, &str)]) -> (String, u64, Vec<String>) {
        let r = self
            .call(Operation::Read, "db/creds/app", query, Value::Null, token)
            .await
            .unwrap()
            .unwrap();
        (r.lease_id, r.lease_duration, r.warnings)
    }

    async fn live_credentials(&self) -> Vec<String> {
        match self
            .call(Operation::List, "db/issued/", &[], Value::Null, &self.root)
            .await
        {
            Ok(Some(r)) => r.data.unwrap()["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect(),
            Ok(None) => Vec::new(),
            Err(e) => panic!("{e}"),
        }
    }

    async fn create_token(&self, parent: &str, body: Value) -> (String, String) {
        let r = self
            .call(Operation::Update, "auth/token/create", &[], body, parent)
            .await
            .unwrap()
            .unwrap();
        let auth = r.auth.unwrap();
        (
            auth["client_token"].as_str().unwrap().to_owned(),
            auth["accessor"].as_str().unwrap().to_owned(),
        )
    }

    async fn exists(&self, lease_id: &str) -> bool {
        match self.core.lease_lookup(lease_id).await {
            Ok(_) => true,
            Err(CoreError::InvalidRequest(m)) if m == "invalid lease" => false,
            Err(e) => panic!("{e}"),
        }
    }
}

/// Polls `check` until it holds, for at most `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_lease_is_registered_with_a_vault_style_id() {
    let h = harness(fast_options()).await;
    let (id, ttl, _) = h.issue(&h.root, &[("ttl", "120")]).await;
    assert!(id.starts_with("db/creds/app/"), "{id}");
    assert_eq!(id.len(), "db/creds/app/".len() + 24, "{id}");
    assert_eq!(ttl, 120);
    let lookup = h.core.lease_lookup(&id).await.unwrap();
    assert_eq!(lookup["id"], json!(id));
    assert_eq!(lookup["renewable"], json!(true));
    assert_eq!(lookup["path"], json!("db/creds/app"));
    assert!(lookup["ttl"].as_i64().unwrap() > 110);
    assert!(lookup["expire_time"].is_string());
    assert_eq!(lookup["last_renewal"], Value::Null);
    assert!(lookup.get("revocation_pending").is_none());
    // Listed under its path, and the engine's internal data is never shown.
    let keys = h.core.lease_list("db/creds/app/").await.unwrap();
    assert_eq!(keys.len(), 1);
    assert!(!serde_json::to_string(&lookup).unwrap().contains("entry"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engines_rollback_record_goes_in_the_commit_that_persists_the_lease() {
    let h = harness(LeaseOptions::default()).await;
    let (lease_id, _, _) = h.issue(&h.root, &[("rollback", "rollback/r1")]).await;
    assert!(h.exists(&lease_id).await);
    let r = h
        .call(Operation::List, "db/rollback/", &[], Value::Null, &h.root)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        r.data.unwrap()["keys"],
        json!([]),
        "the record went with the lease write"
    );
    assert_eq!(h.live_credentials().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_cannot_be_registered_is_revoked_through_the_engine_at_once() {
    let h = harness(LeaseOptions::default()).await;
    // A rollback key the view refuses makes the registration transaction fail.
    let err = h
        .call(
            Operation::Read,
            "db/creds/app",
            &[("rollback", "bad//key")],
            Value::Null,
            &h.root,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CoreError::InvalidRequest(_)), "{err}");
    assert!(
        h.live_credentials().await.is_empty(),
        "the credential must be revoked when its lease could not be written"
    );
    assert_eq!(h.knobs.revoke_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issued_ttl_is_capped_by_the_mount_max_and_defaults_to_the_mount_default() {
    let h = harness(fast_options()).await;
    h.core
        .active()
        .unwrap()
        .mounts
        .tune(
            MountKind::Secret,
            "db",
            TuneRequest {
                default_lease_ttl: Some(30),
                max_lease_ttl: Some(60),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (_, ttl, warnings) = h.issue(&h.root, &[]).await;
    assert_eq!(ttl, 30);
    assert!(warnings.is_empty());
    let (_, ttl, warnings) = h.issue(&h.root, &[("ttl", "3600")]).await;
    assert_eq!(ttl, 60);
    assert_eq!(
        warnings,
        ["TTL of \"1h\" exceeded the effective max_ttl of \"1m\"; TTL value is capped accordingly"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_is_capped_by_the_lease_max_ttl() {
    let h = harness(fast_options()).await;
    let (id, ttl, _) = h.issue(&h.root, &[("ttl", "5"), ("max_ttl", "20")]).await;
    assert_eq!(ttl, 5);
    let renewed = h.core.lease_renew(&id, Some(10)).await.unwrap();
    assert_eq!(renewed.lease_id, id);
    assert_eq!(renewed.lease_duration, 10);
    assert!(renewed.renewable);
    assert!(renewed.warnings.is_empty());
    let capped = h.core.lease_renew(&id, Some(3600)).await.unwrap();
    assert!(
        (19..=20).contains(&capped.lease_duration),
        "{}",
        capped.lease_duration
    );
    assert!(capped.warnings[0].contains("TTL value is capped accordingly"));
    assert_eq!(h.knobs.renew_calls.load(Ordering::SeqCst), 2);
    let lookup = h.core.lease_lookup(&id).await.unwrap();
    assert!(lookup["last_renewal"].is_string());
    assert!(lookup["ttl"].as_i64().unwrap() >= 18);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_errors_match_vault() {
    let h = harness(fast_options()).await;
    let err = |e: CoreError| match e {
        CoreError::InvalidRequest(m) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        err(h
            .core
            .lease_renew("db/creds/app/nope", None)
            .await
            .unwrap_err()),
        "lease not found"
    );
    assert_eq!(
        err(h.core.lease_renew("", None).await.unwrap_err()),
        "lease_id must be specified"
    );
    let (fixed, _, _) = h
        .issue(&h.root, &[("ttl", "60"), ("renewable", "false")])
        .await;
    assert_eq!(
        err(h.core.lease_renew(&fixed, None).await.unwrap_err()),
        "lease is not renewable"
    );
    let (token, _) = h.create_token(&h.root, json!({"ttl": "1h"})).await;
    let keys = h.core.lease_list("auth/token/create/").await.unwrap();
    let token_lease = format!("auth/token/create/{}", keys[0]);
    assert_eq!(
        err(h.core.lease_renew(&token_lease, None).await.unwrap_err()),
        "tokens cannot be renewed through this endpoint"
    );
    assert!(!token.is_empty());
    assert_eq!(
        err(h.core.lease_lookup("db/creds/app/nope").await.unwrap_err()),
        "invalid lease"
    );
    // Hostile ids are simply unknown leases.
    for hostile in ["db//x", "db/./x", "a\0b", "/db/x"] {
        assert_eq!(
            err(h.core.lease_lookup(hostile).await.unwrap_err()),
            "invalid lease"
        );
    }
    assert_eq!(
        err(h.core.lease_lookup("../core/keyring").await.unwrap_err()),
        "failed to read lease entry ../core/keyring: relative paths not supported"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_revokes_through_the_engine() {
    let h = harness(fast_options()).await;
    let (short, _, _) = h.issue(&h.root, &[("ttl", "1")]).await;
    let (long, _, _) = h.issue(&h.root, &[("ttl", "3600")]).await;
    assert_eq!(h.live_credentials().await.len(), 2);
    eventually(
        Duration::from_secs(10),
        "the short lease is revoked",
        || async { !h.exists(&short).await },
    )
    .await;
    assert_eq!(
        h.live_credentials().await.len(),
        1,
        "the engine deleted one"
    );
    assert!(h.exists(&long).await);
    let stats = h.core.lease_stats().unwrap();
    assert_eq!(stats.revoked_total, 1);
    assert_eq!(stats.pending_revocations, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_and_revoke_prefix_go_through_the_engine() {
    let h = harness(fast_options()).await;
    let (one, _, _) = h.issue(&h.root, &[("ttl", "600")]).await;
    let r = h
        .call(
            Operation::Read,
            "db/creds/other",
            &[("ttl", "600")],
            Value::Null,
            &h.root,
        )
        .await
        .unwrap()
        .unwrap();
    let other = r.lease_id;
    let (two, _, _) = h.issue(&h.root, &[("ttl", "600")]).await;
    h.core.lease_revoke(&one, true).await.unwrap();
    assert!(!h.exists(&one).await);
    assert_eq!(h.live_credentials().await.len(), 2);
    // Unknown: a no-op.
    h.core
        .lease_revoke("db/creds/app/unknown", true)
        .await
        .unwrap();
    h.core
        .lease_revoke_prefix("db/creds/app", false)
        .await
        .unwrap();
    assert!(!h.exists(&two).await);
    assert!(h.exists(&other).await, "outside the prefix");
    // A prefix that names one lease exactly revokes it.
    h.core.lease_revoke_prefix(&other, false).await.unwrap();
    assert!(!h.exists(&other).await);
    assert!(h.live_credentials().await.is_empty());
    assert!(matches!(
        h.core.lease_list("db/").await,
        Err(CoreError::NotFound)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_token_revokes_its_leases_and_its_childrens() {
    let h = harness(fast_options()).await;
    let (parent, _) = h.create_token(&h.root, json!({"ttl": "1h"})).await;
    let (child, _) = h.create_token(&parent, json!({"ttl": "1h"})).await;
    let (of_parent, _, _) = h.issue(&parent, &[("ttl", "600")]).await;
    let (of_child, _, _) = h.issue(&child, &[("ttl", "600")]).await;
    let (of_root, _, _) = h.issue(&h.root, &[("ttl", "600")]).await;
    h.call(
        Operation::Update,
        "auth/token/revoke",
        &[],
        json!({"token": parent}),
        &h.root,
    )
    .await
    .unwrap();
    assert!(!h.exists(&of_parent).await);
    assert!(!h.exists(&of_child).await, "the child's lease goes with it");
    assert!(h.exists(&of_root).await);
    assert_eq!(h.live_credentials().await.len(), 1);
    // The tokens' own leases are gone too.
    assert!(matches!(
        h.core.lease_list("auth/token/create/").await,
        Err(CoreError::NotFound)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_a_lease_listable_and_revocable_by_prefix() {
    let h = harness(fast_options()).await;
    let (token, _) = h.create_token(&h.root, json!({"ttl": "1h"})).await;
    let keys = h.core.lease_list("auth/token/create/").await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].len(), 64, "the token's id hash, never the token");
    assert!(!keys[0].contains(&token));
    let lease = format!("auth/token/create/{}", keys[0]);
    let lookup = h.core.lease_lookup(&lease).await.unwrap();
    assert_eq!(lookup["path"], json!("auth/token/create"));
    assert_eq!(lookup["renewable"], json!(true));
    assert!(lookup["ttl"].as_i64().unwrap() > 3500);
    assert_eq!(h.core.lease_list("auth/token/").await.unwrap(), ["create/"]);
    h.core
        .lease_revoke_prefix("auth/token/create", false)
        .await
        .unwrap();
    let denied = h
        .call(
            Operation::Read,
            "auth/token/lookup-self",
            &[],
            Value::Null,
            &token,
        )
        .await;
    assert!(matches!(denied, Err(CoreError::PermissionDenied)));
    assert!(!h.exists(&lease).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_revoked_by_the_timer_with_its_leases() {
    let h = harness(fast_options()).await;
    let (token, _) = h.create_token(&h.root, json!({"ttl": "1s"})).await;
    let (lease, _, _) = h.issue(&token, &[("ttl", "600")]).await;
    let keys = h.core.lease_list("auth/token/create/").await.unwrap();
    let token_lease = format!("auth/token/create/{}", keys[0]);
    // Nobody presents the token again: the timer alone must revoke it.
    eventually(
        Duration::from_secs(10),
        "token and lease revoked",
        || async { !h.exists(&token_lease).await && !h.exists(&lease).await },
    )
    .await;
    assert!(h.live_credentials().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_revocation_is_retried_with_backoff_and_visible_while_pending() {
    let h = harness(fast_options()).await;
    h.knobs.fail_revocations.store(3, Ordering::SeqCst);
    let (id, _, _) = h.issue(&h.root, &[("ttl", "1")]).await;
    eventually(
        Duration::from_secs(10),
        "the lease shows a pending revocation",
        || async {
            h.core
                .lease_lookup(&id)
                .await
                .map(|l| l.get("revocation_pending") == Some(&json!(true)))
                .unwrap_or(false)
        },
    )
    .await;
    let lookup = h.core.lease_lookup(&id).await.unwrap();
    assert!(lookup["revocation_attempts"].as_u64().unwrap() >= 1);
    assert_eq!(
        lookup["revocation_error"],
        json!("upstream database unavailable")
    );
    assert!(h.core.lease_stats().unwrap().revocation_failures_total >= 1);
    // A renewal of a lease being revoked is refused.
    assert!(h.core.lease_renew(&id, None).await.is_err());
    eventually(Duration::from_secs(10), "the retries succeed", || async {
        !h.exists(&id).await
    })
    .await;
    let stats = h.core.lease_stats().unwrap();
    assert_eq!(stats.revocation_failures_total, 3);
    assert_eq!(stats.pending_revocations, 0);
    assert_eq!(h.knobs.revoke_calls.load(Ordering::SeqCst), 4);
    assert!(h.live_credentials().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_explicit_revocation_reports_the_error_and_stays_pending() {
    let h = harness(fast_options()).await;
    h.knobs.fail_revocations.store(1, Ordering::SeqCst);
    let (id, _, _) = h.issue(&h.root, &[("ttl", "600")]).await;
    let err = h.core.lease_revoke(&id, true).await.unwrap_err();
    assert!(
        err.to_string().contains("upstream database unavailable"),
        "{err}"
    );
    // Not dropped: the retry revokes it although it expires only in ten minutes.
    eventually(Duration::from_secs(10), "the retry revokes it", || async {
        !h.exists(&id).await
    })
    .await;
    // revoke-force removes a lease whose engine keeps failing.
    h.knobs.fail_revocations.store(1000, Ordering::SeqCst);
    let (stuck, _, _) = h.issue(&h.root, &[("ttl", "600")]).await;
    assert!(h.core.lease_revoke_prefix("db/creds", false).await.is_err());
    assert!(h.exists(&stuck).await);
    h.core.lease_revoke_prefix("db/creds", true).await.unwrap();
    assert!(!h.exists(&stuck).await);
    // The counters settle once the background retry of the first lease has finished.
    eventually(Duration::from_secs(10), "nothing pending", || async {
        h.core.lease_stats().unwrap().pending_revocations == 0
    })
    .await;
    h.knobs.fail_revocations.store(0, Ordering::SeqCst);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pause_switch_keeps_expired_leases_until_lifted() {
    let h = harness(LeaseOptions {
        revocation_paused: true,
        ..fast_options()
    })
    .await;
    let (id, _, _) = h.issue(&h.root, &[("ttl", "1")]).await;
    let (token, _) = h.create_token(&h.root, json!({"ttl": "1s"})).await;
    assert!(h.core.lease_stats().unwrap().paused);
    // Wait until both have expired, plus time the timer would need to act.
    eventually(Duration::from_secs(10), "the lease expires", || async {
        h.core.lease_lookup(&id).await.unwrap()["ttl"] == json!(0)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(h.exists(&id).await, "paused: nothing is revoked");
    assert_eq!(h.live_credentials().await.len(), 1);
    // An expired token is still refused while paused.
    let denied = h
        .call(
            Operation::Read,
            "auth/token/lookup-self",
            &[],
            Value::Null,
            &token,
        )
        .await;
    assert!(matches!(denied, Err(CoreError::PermissionDenied)));
    assert_eq!(h.knobs.revoke_calls.load(Ordering::SeqCst), 0);
    h.core.set_lease_revocation_paused(false).unwrap();
    eventually(Duration::from_secs(10), "revoked once resumed", || async {
        !h.exists(&id).await
    })
    .await;
    assert!(h.live_credentials().await.is_empty());
    eventually(
        Duration::from_secs(10),
        "the token lease is gone",
        || async { h.core.lease_list("auth/token/create/").await.is_err() },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_that_expired_while_down_are_revoked_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let backend: Arc<dyn Backend> = Arc::new(EmbeddedBackend::open(&path).unwrap());
    let h = harness_on(backend.clone(), fast_options()).await;
    let (short, _, _) = h.issue(&h.root, &[("ttl", "1")]).await;
    let (long, _, _) = h.issue(&h.root, &[("ttl", "3600")]).await;
    h.create_token(&h.root, json!({"ttl": "1s"})).await;
    let (kept_token, _) = h.create_token(&h.root, json!({"ttl": "1h"})).await;
    let expire_by = Instant::now() + Duration::from_secs(1);
    let (root, key) = (h.root.clone(), h.key.clone());
    // Shut down before anything expires.
    h.core.seal_now().await;
    drop(h);
    backend.close().await.unwrap();
    drop(backend);
    // Down for longer than the short TTLs.
    tokio::time::sleep(
        expire_by.saturating_duration_since(Instant::now()) + Duration::from_millis(200),
    )
    .await;

    let backend: Arc<dyn Backend> = Arc::new(EmbeddedBackend::open(&path).unwrap());
    let knobs = Arc::new(Knobs::default());
    let core = start(backend.clone(), fast_options(), knobs.clone()).await;
    core.unseal(key).await.unwrap();
    let h = Harness {
        core,
        root,
        key: SecretBytes::new(vec![0; 32]),
        knobs,
    };
    eventually(
        Duration::from_secs(10),
        "expired leases revoked after restart",
        || async {
            !h.exists(&short).await
                && h.core
                    .lease_list("auth/token/create/")
                    .await
                    .map_or(0, |k| k.len())
                    == 1
        },
    )
    .await;
    assert!(h.exists(&long).await);
    assert_eq!(h.live_credentials().await.len(), 1);
    assert_eq!(h.knobs.revoke_calls.load(Ordering::SeqCst), 1);
    let alive = h
        .call(
            Operation::Read,
            "auth/token/lookup-self",
            &[],
            Value::Null,
            &kept_token,
        )
        .await;
    assert!(alive.is_ok());
    h.core.seal_now().await;
    backend.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unseal_returns_before_leases_load_and_unloaded_leases_still_work() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let h = harness(LeaseOptions {
        load_gate: Some(gate.clone()),
        ..fast_options()
    })
    .await;
    // The first unseal's loader waits at the gate too; let it through.
    gate.add_permits(1);
    const TOKENS: usize = 2000;
    for _ in 0..TOKENS {
        h.create_token(&h.root, json!({"ttl": "1h"})).await;
    }
    let (renew_me, _, _) = h.issue(&h.root, &[("ttl", "600")]).await;
    let (revoke_me, _, _) = h.issue(&h.root, &[("ttl", "600")]).await;
    h.core.seal_now().await;
    assert!(
        h.core.lease_stats().is_none(),
        "sealed: no expiration manager"
    );

    h.core.unseal(h.key.clone()).await.unwrap();
    // Unseal returned and the loader has not started: nothing is in the queue yet.
    let stats = h.core.lease_stats().unwrap();
    assert!(!stats.loaded);
    assert_eq!(stats.queued, 0);
    // The server serves, and leases not loaded yet work by reading storage.
    let keys = h.core.lease_list("auth/token/create/").await.unwrap();
    assert_eq!(keys.len(), TOKENS);
    let token_lease = format!("auth/token/create/{}", keys[0]);
    assert!(h.core.lease_lookup(&token_lease).await.is_ok());
    assert_eq!(
        h.core
            .lease_renew(&renew_me, Some(60))
            .await
            .unwrap()
            .lease_duration,
        60
    );
    h.core.lease_revoke(&revoke_me, true).await.unwrap();
    assert!(!h.exists(&revoke_me).await);

    gate.add_permits(1);
    eventually(
        Duration::from_secs(30),
        "leases loaded in the background",
        || async { h.core.lease_stats().unwrap().loaded },
    )
    .await;
    let stats = h.core.lease_stats().unwrap();
    // Every token with a TTL and the remaining secret lease are queued (the root token,
    // created by init, is no lease).
    assert_eq!(stats.queued, TOKENS + 1, "{stats:?}");
    assert_eq!(stats.loaded_count as usize, TOKENS + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_mount_revokes_its_leases() {
    let h = harness(fast_options()).await;
    let (id, _, _) = h.issue(&h.root, &[("ttl", "600")]).await;
    // A failing revocation keeps the mount (and the lease, retried).
    h.knobs.fail_revocations.store(1, Ordering::SeqCst);
    let err = h
        .core
        .disable_mount(MountKind::Secret, "db")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("failed to revoke 1 of 1 leases"),
        "{err}"
    );
    assert!(h.exists(&id).await);
    assert_eq!(h.live_credentials().await.len(), 1, "still mounted");
    eventually(Duration::from_secs(10), "the retry revokes it", || async {
        !h.exists(&id).await
    })
    .await;
    let (id, _, _) = h.issue(&h.root, &[("ttl", "600")]).await;
    let gone = h
        .core
        .disable_mount(MountKind::Secret, "db/")
        .await
        .unwrap();
    assert_eq!(gone.unwrap().path, "db/");
    assert!(!h.exists(&id).await);
    assert_eq!(h.knobs.revoke_calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_a_mount_revokes_its_leases() {
    let h = harness(fast_options()).await;
    let (id, _, _) = h.issue(&h.root, &[("ttl", "600")]).await;
    assert!(id.starts_with("db/creds/app/"), "{id}");
    assert_eq!(h.live_credentials().await.len(), 1);
    // A refused move revokes nothing.
    assert!(h.core.remount_mount("db", "sys/x").await.is_err());
    assert!(h.exists(&id).await);
    let (_, warnings) = h.core.remount_mount("db", "db2").await.unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(!h.exists(&id).await, "the lease named the old path");
    assert_eq!(h.knobs.revoke_calls.load(Ordering::SeqCst), 1);
    // The engine's credential is gone: read through the new path.
    let left = h
        .call(Operation::List, "db2/issued/", &[], Value::Null, &h.root)
        .await
        .unwrap();
    assert!(left.is_none_or(|r| r.data.unwrap()["keys"].as_array().unwrap().is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealing_stops_the_expiration_tasks_and_unseal_restarts_them() {
    let h = harness(fast_options()).await;
    let (id, _, _) = h.issue(&h.root, &[("ttl", "1")]).await;
    h.core.seal_now().await;
    assert!(h.core.lease_stats().is_none());
    h.core.unseal(h.key.clone()).await.unwrap();
    eventually(
        Duration::from_secs(10),
        "revoked after the unseal",
        || async { !h.exists(&id).await },
    )
    .await;
    let _ = BTreeMap::<String, String>::new();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_revocations_are_paced_by_the_token_bucket() {
    const RATE: u32 = 4;
    const LEASES: usize = 12;
    let h = harness(LeaseOptions {
        revocations_per_second: RATE,
        ..fast_options()
    })
    .await;
    for _ in 0..LEASES {
        h.issue(&h.root, &[("ttl", "1")]).await;
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(20);
    loop {
        let revoked = h.core.lease_stats().unwrap().revoked_total;
        // However slow the machine, never more than the burst plus the rate times the time
        // since the first lease could expire (the leases were issued before `started`).
        let allowed = f64::from(RATE) * (1.0 + started.elapsed().as_secs_f64()) + 1.0;
        assert!(
            (revoked as f64) <= allowed,
            "{revoked} revocations after {:?}",
            started.elapsed()
        );
        if revoked as usize == LEASES {
            break;
        }
        assert!(Instant::now() < deadline, "only {revoked} revoked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(h.live_credentials().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_with_sync_false_is_queued_and_still_happens() {
    use tresor_core::expiration::RevokeOutcome;
    let h = harness(fast_options()).await;
    let (token, _) = h.create_token(&h.root, json!({"ttl": "1h"})).await;
    let keys = h.core.lease_list("auth/token/create/").await.unwrap();
    let token_lease = format!("auth/token/create/{}", keys[0]);
    assert_eq!(
        h.core.lease_revoke(&token_lease, false).await.unwrap(),
        RevokeOutcome::Queued
    );
    let denied = h
        .call(
            Operation::Read,
            "auth/token/lookup-self",
            &[],
            Value::Null,
            &token,
        )
        .await;
    assert!(matches!(denied, Err(CoreError::PermissionDenied)));
    let (lease, _, _) = h.issue(&h.root, &[("ttl", "600")]).await;
    assert_eq!(
        h.core.lease_revoke(&lease, false).await.unwrap(),
        RevokeOutcome::Queued
    );
    eventually(
        Duration::from_secs(10),
        "the background revocation",
        || async { !h.exists(&lease).await },
    )
    .await;
    assert!(h.live_credentials().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_before_leases_get_lease_records_after_unseal() {
    let h = harness(fast_options()).await;
    let (short, _) = h.create_token(&h.root, json!({"ttl": "1s"})).await;
    let (long, _) = h.create_token(&h.root, json!({"ttl": "1h"})).await;
    eventually(
        Duration::from_secs(10),
        "the first load finished",
        || async { h.core.lease_stats().unwrap().loaded },
    )
    .await;
    // Make the store look like one written before tokens were leases.
    let barrier = h.core.barrier().clone();
    for key in h.core.lease_list("auth/token/create/").await.unwrap() {
        barrier
            .delete(&format!("sys/expire/id/auth/token/create/{key}"))
            .await
            .unwrap();
    }
    barrier.delete("sys/expire/tokens-migrated").await.unwrap();
    h.core.seal_now().await;
    h.core.unseal(h.key.clone()).await.unwrap();
    // The short token expired meanwhile or soon: it gets a record and is revoked; the long
    // one keeps a record.
    eventually(
        Duration::from_secs(10),
        "records restored, the expired token revoked",
        || async {
            h.core
                .lease_list("auth/token/create/")
                .await
                .is_ok_and(|keys| keys.len() == 1)
                && h.core.lease_stats().unwrap().revoked_total == 1
        },
    )
    .await;
    let denied = h
        .call(
            Operation::Read,
            "auth/token/lookup-self",
            &[],
            Value::Null,
            &short,
        )
        .await;
    assert!(matches!(denied, Err(CoreError::PermissionDenied)));
    let alive = h
        .call(
            Operation::Read,
            "auth/token/lookup-self",
            &[],
            Value::Null,
            &long,
        )
        .await;
    assert!(alive.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_is_capped_by_the_mount_tune_in_force_at_renewal() {
    let h = harness(fast_options()).await;
    let (id, ttl, _) = h.issue(&h.root, &[("ttl", "120")]).await;
    assert_eq!(ttl, 120);
    h.core
        .active()
        .unwrap()
        .mounts
        .tune(
            MountKind::Secret,
            "db",
            TuneRequest {
                max_lease_ttl: Some(30),
                default_lease_ttl: Some(10),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let renewed = h.core.lease_renew(&id, Some(3600)).await.unwrap();
    assert!(
        (29..=30).contains(&renewed.lease_duration),
        "{}",
        renewed.lease_duration
    );
    assert!(renewed.warnings[0].contains("exceeded the effective max_ttl"));
}

impl Harness {
    async fn put_policy(&self, name: &str, text: &str) {
        self.core
            .active()
            .unwrap()
            .policies
            .write(name, text, None)
            .await
            .unwrap();
    }

    /// A batch token with a policy that may issue credentials.
    async fn batch_token(&self, parent: &str, extra: Value) -> String {
        self.put_policy(
            "issuer",
            r#"path "db/*" { capabilities = ["read", "list"] }"#,
        )
        .await;
        let mut body = json!({"type": "batch", "policies": ["issuer"], "ttl": "60s"});
        if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
            b.extend(e);
        }
        let (token, accessor) = self.create_token(parent, body).await;
        assert!(token.starts_with("b.") && accessor.is_empty());
        token
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_tokens_lease_belongs_to_its_parent_and_cannot_outlive_the_token() {
    let h = harness(fast_options()).await;
    let (parent, _) = h.create_token(&h.root, json!({"ttl": "1h"})).await;
    let batch = h.batch_token(&parent, json!({})).await;
    let (lease, ttl, _) = h.issue(&batch, &[("ttl", "600")]).await;
    assert!(
        (58..=60).contains(&ttl),
        "capped by the batch token's 60 s, got {ttl}"
    );
    assert!(h.exists(&lease).await);
    // The batch token cannot be revoked, but revoking its parent revokes it and its lease.
    h.call(
        Operation::Update,
        "auth/token/revoke",
        &[],
        json!({"token": parent}),
        &h.root,
    )
    .await
    .unwrap();
    assert!(!h.exists(&lease).await, "the lease went with the parent");
    assert!(h.live_credentials().await.is_empty());
    let refused = h
        .call(
            Operation::Read,
            "auth/token/lookup-self",
            &[],
            Value::Null,
            &batch,
        )
        .await;
    assert!(matches!(refused, Err(CoreError::PermissionDenied)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphan_batch_tokens_lease_ends_by_its_capped_ttl_and_survives_tidy() {
    let h = harness(fast_options()).await;
    let batch = h
        .batch_token(&h.root, json!({"no_parent": true, "ttl": "2s"}))
        .await;
    let (lease, ttl, _) = h.issue(&batch, &[("ttl", "600")]).await;
    assert!(ttl <= 2, "capped by the token's 2 s, got {ttl}");
    // No owner to look for: tidy must not take the lease for an orphan of a revoked token.
    let (_, orphaned) = h.core.tidy_leases_now().await.unwrap();
    assert_eq!(orphaned, 0);
    assert!(h.exists(&lease).await);
    eventually(Duration::from_secs(10), "the lease expires", || async {
        !h.exists(&lease).await
    })
    .await;
    assert!(h.live_credentials().await.is_empty());
}
