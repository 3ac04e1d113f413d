//! The AppRole auth method, driven as the core drives it (existence check, then handle) on
//! in-memory storage with a clock the tests move. Expected answers are OpenBao 2.7.2's, taken
//! from a running `bao server -dev`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::support;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use support::{FakeClock, MemStorage, Reply, render};
use tresor_builtin::auth::approle::AppRoleFactory;
use tresor_sdk::auth::{AuthMethod, AuthMethodFactory, Login, LoginRenewal};
use tresor_sdk::engine::{EngineError, MountInfo, Operation, Request};

struct Mount {
    method: Arc<dyn AuthMethod>,
    storage: MemStorage,
    clock: Arc<FakeClock>,
    info: Arc<MountInfo>,
}

const LOCAL: &str = "127.0.0.1";

impl Mount {
    async fn new() -> Self {
        let clock = Arc::new(FakeClock::default());
        let info = Arc::new(MountInfo {
            path: "approle/".into(),
            engine_type: "approle".into(),
            default_lease_ttl: Duration::from_secs(2_764_800),
            max_lease_ttl: Duration::from_secs(2_764_800),
            accessor: "auth_approle_0000".into(),
            ..MountInfo::default()
        });
        let method = AppRoleFactory::with_clock(clock.clone())
            .build(&info)
            .unwrap();
        let storage = MemStorage::default();
        method.initialize(&storage).await.unwrap();
        Self {
            method,
            storage,
            clock,
            info,
        }
    }

    fn request(&self, op: Operation, path: &str, body: Value, from: &str) -> Request {
        Request {
            operation: op,
            path: path.to_owned(),
            data: body.as_object().cloned().unwrap_or_default(),
            query: Vec::new(),
            content_type: None,
            mount: self.info.clone(),
            client_token_key: String::new(),
            display_name: String::new(),
            remote_addr: Some(from.parse::<IpAddr>().unwrap()),
        }
    }

    /// As the core routes a request: a write the existence check calls new is a `Create`.
    async fn send(&self, mut req: Request) -> Reply {
        if req.operation == Operation::Update
            && self.method.exists(&req, &self.storage).await.unwrap() == Some(false)
        {
            req.operation = Operation::Create;
        }
        render(self.method.handle(&req, &self.storage).await)
    }

    async fn call(&self, op: Operation, path: &str, body: Value) -> Reply {
        self.send(self.request(op, path, body, LOCAL)).await
    }

    async fn write(&self, path: &str, body: Value) -> Reply {
        self.call(Operation::Update, path, body).await
    }

    async fn read(&self, path: &str) -> Reply {
        self.call(Operation::Read, path, Value::Null).await
    }

    async fn delete(&self, path: &str) -> Reply {
        self.call(Operation::Delete, path, Value::Null).await
    }

    async fn list(&self, path: &str, query: &[(&str, &str)]) -> Reply {
        let mut req = self.request(Operation::List, path, Value::Null, LOCAL);
        req.query = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.send(req).await
    }

    /// Creates a role and returns its role id.
    async fn role(&self, name: &str, body: Value) -> String {
        let reply = self.write(&format!("role/{name}"), body).await;
        assert!(reply.status < 300, "role create: {reply:?}");
        let reply = self.read(&format!("role/{name}/role-id")).await;
        reply.assert_status(200);
        reply.data()["role_id"].as_str().unwrap().to_owned()
    }

    /// Issues a secret id; returns (secret id, accessor).
    async fn secret(&self, name: &str, body: Value) -> (String, String) {
        let reply = self.write(&format!("role/{name}/secret-id"), body).await;
        reply.assert_status(200);
        (
            reply.data()["secret_id"].as_str().unwrap().to_owned(),
            reply.data()["secret_id_accessor"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    }

    async fn login_from(&self, body: Value, from: &str) -> Result<Login, EngineError> {
        let req = self.request(Operation::Update, "login", body, from);
        let response = self.method.handle(&req, &self.storage).await?;
        Ok(response
            .and_then(|r| r.auth)
            .expect("a successful login answers with auth"))
    }

    async fn login(&self, role_id: &str, secret_id: &str) -> Result<Login, EngineError> {
        self.login_from(json!({"role_id": role_id, "secret_id": secret_id}), LOCAL)
            .await
    }

    /// Every stored key and value as text, for "never stored" checks.
    fn stored_text(&self) -> String {
        self.storage
            .snapshot()
            .iter()
            .map(|(k, v)| format!("{k}={}\n", String::from_utf8_lossy(v)))
            .collect()
    }
}

/// The refusal's status, summary and detail.
#[track_caller]
fn denial(result: Result<Login, EngineError>) -> (u16, String, String) {
    match result {
        Err(EngineError::Denied(d)) => (d.status, d.summary, d.detail),
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[tokio::test]
async fn a_new_role_reads_back_with_openbaos_defaults() {
    let m = Mount::new().await;
    m.write("role/r1", json!({})).await.assert_status(204);
    let reply = m.read("role/r1").await;
    reply.assert_status(200);
    assert_eq!(
        reply.data(),
        &json!({
            "bind_secret_id": true,
            "local_secret_ids": false,
            "secret_id_bound_cidrs": null,
            "secret_id_num_uses": 0,
            "secret_id_ttl": 0,
            "token_bound_cidrs": [],
            "token_explicit_max_ttl": 0,
            "token_max_ttl": 0,
            "token_no_default_policy": false,
            "token_num_uses": 0,
            "token_period": 0,
            "token_policies": [],
            "token_strictly_bind_ip": false,
            "token_ttl": 0,
            "token_type": "default"
        })
    );
    assert_eq!(reply.body["warnings"], Value::Null);
    let role_id = reply_role_id(&m, "r1").await;
    assert_eq!(role_id.split('-').count(), 5, "a UUID: {role_id}");
}

async fn reply_role_id(m: &Mount, name: &str) -> String {
    m.read(&format!("role/{name}/role-id")).await.data()["role_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn deprecated_fields_show_while_they_were_written_last_and_default_service_is_adjusted() {
    let m = Mount::new().await;
    let reply = m
        .write(
            "role/r2",
            json!({"policies": "B,a", "period": "1h", "bound_cidr_list": "10.0.0.0/8",
                   "secret_id_ttl": "10m", "token_type": "default-service"}),
        )
        .await;
    reply.assert_status(200);
    assert_eq!(
        reply.body["warnings"],
        json!(["default-service has no useful meaning; adjusting to service"])
    );
    let data = m.read("role/r2").await.data().clone();
    assert_eq!(data["policies"], json!(["a", "b"]));
    assert_eq!(data["token_policies"], json!(["a", "b"]));
    assert_eq!(data["period"], 3600);
    assert_eq!(data["token_period"], 3600);
    assert_eq!(data["secret_id_bound_cidrs"], json!(["10.0.0.0/8"]));
    assert_eq!(data["secret_id_ttl"], 600);
    assert_eq!(data["token_type"], "service");

    // Writing only the new fields drops the old ones from reads.
    m.write(
        "role/r2",
        json!({"token_policies": "c", "token_period": 60}),
    )
    .await
    .assert_status(204);
    let data = m.read("role/r2").await.data().clone();
    assert!(data.get("policies").is_none() && data.get("period").is_none());
    assert_eq!(data["token_policies"], json!(["c"]));
    assert_eq!(data["token_period"], 60);
}

#[tokio::test]
async fn role_writes_are_refused_with_openbaos_messages() {
    let m = Mount::new().await;
    m.role("taken", json!({"role_id": "shared"})).await;
    m.role("existing", json!({})).await;
    let long = "x".repeat(4097);
    for (path, body, status, message) in [
        (
            "role/none",
            json!({"bind_secret_id": false}),
            400,
            "1 error occurred:\n\t* at least one constraint should be enabled on the role\n\n",
        ),
        (
            "role/none",
            json!({"secret_id_bound_cidrs": "bad"}),
            400,
            "1 error occurred:\n\t* failed to validate CIDR blocks: invalid CIDR address: bad\n\n",
        ),
        (
            "role/none",
            json!({"secret_id_bound_cidrs": "127.0.0.1"}),
            400,
            "1 error occurred:\n\t* failed to validate CIDR blocks: invalid CIDR address: 127.0.0.1\n\n",
        ),
        (
            "role/none",
            json!({"secret_id_num_uses": -1}),
            400,
            "secret_id_num_uses cannot be negative",
        ),
        (
            "role/none",
            json!({"secret_id_ttl": -5}),
            400,
            "error converting input for field \"secret_id_ttl\": cannot provide negative value '-5'",
        ),
        (
            "role/none",
            json!({"role_id": ""}),
            400,
            "invalid role_id supplied, or failed to generate a role_id",
        ),
        (
            "role/none",
            json!({"role_id": "shared"}),
            400,
            "1 error occurred:\n\t* role_id already in use\n\n",
        ),
        (
            "role/existing",
            json!({"local_secret_ids": false}),
            400,
            "local_secret_ids can only be modified during role creation",
        ),
        (
            "role/none",
            json!({"period": "800h"}),
            400,
            "period of \"800h0m0s\" is greater than the backend's maximum lease TTL of \"768h0m0s\"",
        ),
        (
            "role/none",
            json!({"token_bound_cidrs": "bad"}),
            400,
            "error parsing address \"bad\": Unable to convert \"bad\" to an IPv4 or IPv6 address, or a UNIX Socket",
        ),
        (
            "role/none",
            json!({"token_strictly_bind_ip": true, "token_bound_cidrs": "10.0.0.0/8"}),
            400,
            "'token_strictly_bind_ip' conflicts with 'token_bound_cidrs'; set only one",
        ),
        (
            "role/none",
            json!({"token_ttl": 10, "token_max_ttl": 5}),
            400,
            "'token_ttl' cannot be greater than 'token_max_ttl'",
        ),
        (
            &format!("role/{long}"),
            json!({}),
            400,
            "role_name is longer than maximum of 4096 bytes",
        ),
    ] {
        m.write(path, body.clone())
            .await
            .assert_error(status, message);
    }
    assert_eq!(m.read("role/none").await.status, 404, "nothing was stored");
    // A warning, not an error: the token max TTL exceeds the mount's.
    let reply = m.write("role/big", json!({"token_max_ttl": "900h"})).await;
    reply.assert_status(200);
    assert_eq!(
        reply.body["warnings"],
        json!([
            "token_max_ttl is greater than the backend mount's maximum TTL value; issued tokens' max TTL value will be truncated"
        ])
    );
}

#[tokio::test]
async fn role_names_are_case_insensitive_listed_lowercase_and_paged() {
    let m = Mount::new().await;
    for name in ["MyRole", "b", "c", "d"] {
        m.role(name, json!({})).await;
    }
    m.read("role/MYROLE").await.assert_status(200);
    assert_eq!(
        m.list("role", &[]).await.data()["keys"],
        json!(["b", "c", "d", "myrole"])
    );
    assert_eq!(
        m.list("role/", &[("after", "b"), ("limit", "2")])
            .await
            .data()["keys"],
        json!(["c", "d"])
    );
    m.list("role", &[("after", "zzz")]).await.assert_status(404);
    for bad in [
        "role/-a",
        "role/a b",
        "role/a/b",
        "role/x/bind-secret-id",
        "nothing",
    ] {
        m.read(bad).await.assert_status(404);
    }
    m.read("role").await.assert_status(405);
    m.call(Operation::Read, "login", Value::Null)
        .await
        .assert_status(405);
    m.delete("role/b/role-id").await.assert_status(405);
    m.delete("role/b").await.assert_status(204);
    m.delete("role/b").await.assert_status(204);
    m.read("role/b").await.assert_status(404);
}

#[tokio::test]
async fn one_field_endpoints_read_set_and_reset_their_field() {
    let m = Mount::new().await;
    m.role("sub", json!({"token_ttl": 60, "token_max_ttl": 120}))
        .await;
    for endpoint in [
        "policies",
        "secret-id-num-uses",
        "secret-id-ttl",
        "token-ttl",
        "token-max-ttl",
        "period",
        "token-num-uses",
        "role-id",
    ] {
        let field = match endpoint {
            "policies" => "token_policies".to_owned(),
            "period" => "period".to_owned(),
            e => e.replace('-', "_"),
        };
        m.write(&format!("role/sub/{endpoint}"), json!({}))
            .await
            .assert_error(400, &format!("missing {field}"));
    }
    let p = "role/sub";
    m.write(&format!("{p}/token-ttl"), json!({"token_ttl": 500}))
        .await
        .assert_error(400, "token_ttl should not be greater than token_max_ttl");
    m.write(&format!("{p}/token-max-ttl"), json!({"token_max_ttl": 30}))
        .await
        .assert_error(
            400,
            "token_max_ttl should be greater than or equal to token_ttl",
        );
    m.write(
        &format!("{p}/token-num-uses"),
        json!({"token_num_uses": -1}),
    )
    .await
    .assert_error(400, "'token_num_uses' cannot be negative");
    m.write(&format!("{p}/period"), json!({"period": "10m"}))
        .await
        .assert_status(204);
    assert_eq!(
        m.read(&format!("{p}/period")).await.data(),
        &json!({"period": 600, "token_period": 600})
    );
    m.write(&format!("{p}/period"), json!({"token_period": "20m"}))
        .await
        .assert_status(204);
    assert_eq!(
        m.read(&format!("{p}/period")).await.data(),
        &json!({"token_period": 1200})
    );
    m.write(&format!("{p}/policies"), json!({"policies": "X,y"}))
        .await
        .assert_status(204);
    assert_eq!(
        m.read(&format!("{p}/policies")).await.data(),
        &json!({"policies": ["x", "y"], "token_policies": ["x", "y"]})
    );
    m.write(
        &format!("{p}/secret-id-bound-cidrs"),
        json!({"secret_id_bound_cidrs": ""}),
    )
    .await
    .assert_error(400, "missing bound_cidr_list");
    m.write(
        &format!("{p}/secret-id-bound-cidrs"),
        json!({"secret_id_bound_cidrs": "10.0.0.0/8,127.0.0.1"}),
    )
    .await
    .assert_error(
        400,
        "failed to validate CIDR blocks: invalid CIDR address: 127.0.0.1",
    );
    m.write(
        &format!("{p}/bound-cidr-list"),
        json!({"bound_cidr_list": "10.1.0.0/16"}),
    )
    .await
    .assert_status(204);
    assert_eq!(
        m.read(&format!("{p}/secret-id-bound-cidrs")).await.data(),
        &json!({"secret_id_bound_cidrs": ["10.1.0.0/16"]})
    );
    let legacy = m.read(&format!("{p}/bound-cidr-list")).await;
    assert_eq!(legacy.data(), &json!({"bound_cidr_list": null}));
    assert_eq!(legacy.body["warnings"].as_array().map(Vec::len), Some(1));
    m.write(
        &format!("{p}/token-bound-cidrs"),
        json!({"token_bound_cidrs": "bad"}),
    )
    .await
    .assert_error(400, "failed to parse token_bound_cidrs: error parsing address \"bad\": Unable to convert \"bad\" to an IPv4 or IPv6 address, or a UNIX Socket");
    m.write(
        &format!("{p}/token-bound-cidrs"),
        json!({"token_bound_cidrs": "10.0.0.1"}),
    )
    .await
    .assert_status(204);
    assert_eq!(
        m.read(&format!("{p}/token-bound-cidrs")).await.data(),
        &json!({"token_bound_cidrs": ["10.0.0.1"]})
    );
    for endpoint in [
        "token-bound-cidrs",
        "secret-id-bound-cidrs",
        "policies",
        "period",
        "token-ttl",
    ] {
        m.delete(&format!("{p}/{endpoint}"))
            .await
            .assert_status(204);
    }
    let data = m.read(p).await.data().clone();
    assert_eq!(data["token_bound_cidrs"], json!([]));
    assert_eq!(data["secret_id_bound_cidrs"], Value::Null);
    assert_eq!(data["token_policies"], json!([]));
    assert_eq!(
        (data["token_period"].clone(), data["token_ttl"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(
        m.read(&format!("{p}/local-secret-ids")).await.data(),
        &json!({"local_secret_ids": false})
    );
    // A missing role: reads 404, writes 404 unsupported path, resets 204.
    m.read("role/nope/token-ttl").await.assert_status(404);
    m.write("role/nope/token-ttl", json!({"token_ttl": 5}))
        .await
        .assert_error(404, "unsupported path");
    m.delete("role/nope/token-ttl").await.assert_status(204);
    // Removing the last binding is refused.
    m.role(
        "cidronly",
        json!({"bind_secret_id": false, "secret_id_bound_cidrs": "10.0.0.0/8"}),
    )
    .await;
    m.delete("role/cidronly/secret-id-bound-cidrs")
        .await
        .assert_error(
            400,
            "1 error occurred:\n\t* at least one constraint should be enabled on the role\n\n",
        );
}

#[tokio::test]
async fn secret_ids_report_openbaos_fields_and_times() {
    let m = Mount::new().await;
    m.role("r1", json!({})).await;
    let reply = m
        .write(
            "role/r1/secret-id",
            json!({"metadata": "{\"team\":\"a\"}", "cidr_list": "127.0.0.1/32, 10.0.0.0/8",
                   "token_bound_cidrs": "127.0.0.1/32", "num_uses": 3, "ttl": "1h"}),
        )
        .await;
    reply.assert_status(200);
    let data = reply.data().clone();
    assert_eq!(data["secret_id_num_uses"], 3);
    assert_eq!(data["secret_id_ttl"], 3600);
    let secret = data["secret_id"].as_str().unwrap().to_owned();
    let accessor = data["secret_id_accessor"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 36);

    m.clock.advance(Duration::from_secs(5));
    let expected = json!({
        "cidr_list": ["127.0.0.1/32", "10.0.0.0/8"],
        "creation_time": "2024-01-02T03:04:05.123456789Z",
        "expiration_time": "2024-01-02T04:04:05.123456789Z",
        "last_updated_time": "2024-01-02T03:04:05.123456789Z",
        "metadata": {"team": "a"},
        "secret_id_accessor": accessor,
        "secret_id_num_uses": 3,
        "secret_id_ttl": 3600,
        "token_bound_cidrs": ["127.0.0.1/32"]
    });
    let by_value = m
        .write("role/r1/secret-id/lookup", json!({"secret_id": secret}))
        .await;
    assert_eq!(by_value.data(), &expected);
    let by_accessor = m
        .write(
            "role/r1/secret-id-accessor/lookup",
            json!({"secret_id_accessor": accessor}),
        )
        .await;
    assert_eq!(by_accessor.data(), &expected);

    // A secret id without a TTL never expires: Go's zero time.
    let (plain, _) = m.secret("r1", json!({})).await;
    let looked = m
        .write("role/r1/secret-id/lookup", json!({"secret_id": plain}))
        .await;
    assert_eq!(looked.data()["expiration_time"], "0001-01-01T00:00:00Z");
    assert_eq!(looked.data()["metadata"], json!({}));
    assert_eq!(looked.data()["cidr_list"], json!([]));

    let keys = m.list("role/r1/secret-id/", &[]).await;
    let mut listed: Vec<String> = serde_json::from_value(keys.data()["keys"].clone()).unwrap();
    listed.sort();
    let mut want = vec![accessor.clone(), {
        let r = m
            .write("role/r1/secret-id/lookup", json!({"secret_id": plain}))
            .await;
        r.data()["secret_id_accessor"].as_str().unwrap().to_owned()
    }];
    want.sort();
    assert_eq!(listed, want);
    // A TTL beyond the mount's maximum is capped by it.
    let capped = m.write("role/r1/secret-id", json!({"ttl": "900h"})).await;
    assert_eq!(capped.data()["secret_id_ttl"], 2_764_800);
}

#[tokio::test]
async fn secret_id_requests_are_checked_against_the_role() {
    let m = Mount::new().await;
    m.role(
        "limited",
        json!({"secret_id_num_uses": 5, "secret_id_ttl": "1h", "secret_id_bound_cidrs": "10.0.0.0/8",
               "token_bound_cidrs": "10.0.0.0/8"}),
    )
    .await;
    m.role(
        "open",
        json!({"bind_secret_id": false, "secret_id_bound_cidrs": "127.0.0.0/8"}),
    )
    .await;
    let p = "role/limited/secret-id";
    for (body, message) in [
        (
            json!({"num_uses": 0}),
            "num_uses cannot be higher than the role's secret_id_num_uses",
        ),
        (
            json!({"num_uses": 6}),
            "num_uses cannot be higher than the role's secret_id_num_uses",
        ),
        (json!({"num_uses": -1}), "num_uses cannot be negative"),
        (
            json!({"ttl": 0}),
            "ttl cannot be longer than the role's secret_id_ttl",
        ),
        (
            json!({"ttl": "2h"}),
            "ttl cannot be longer than the role's secret_id_ttl",
        ),
        (
            json!({"cidr_list": "bad"}),
            "1 error occurred:\n\t* failed to validate CIDR blocks: invalid CIDR address: bad\n\n",
        ),
        (
            json!({"cidr_list": "192.168.0.0/16"}),
            "1 error occurred:\n\t* failed to verify subset relationship between CIDR blocks on the role [\"10.0.0.0/8\"] and CIDR blocks on the secret ID [\"192.168.0.0/16\"]\n\n",
        ),
        (
            json!({"token_bound_cidrs": "127.0.0.1"}),
            "1 error occurred:\n\t* failed to validate token CIDR blocks: invalid CIDR address: 127.0.0.1\n\n",
        ),
        (
            json!({"token_bound_cidrs": "11.0.0.0/8"}),
            "1 error occurred:\n\t* failed to verify subset relationship between CIDR blocks on the role [\"10.0.0.0/8\"] and CIDR blocks on the secret ID [\"11.0.0.0/8\"]\n\n",
        ),
        (
            json!({"metadata": "notjson"}),
            "failed to parse metadata: failed to parse the input: invalid <key,value> format",
        ),
        (
            json!({"metadata": {"a": "b"}}),
            "Field validation failed: error converting input for field \"metadata\": expected a string, got map",
        ),
        (
            json!({"ttl": -1}),
            "Field validation failed: error converting input for field \"ttl\": cannot provide negative value '-1'",
        ),
    ] {
        m.write(p, body.clone()).await.assert_error(400, message);
    }
    let ok = m
        .write(
            p,
            json!({"num_uses": 2, "ttl": "10m", "cidr_list": "10.1.0.0/16"}),
        )
        .await;
    ok.assert_status(200);
    assert_eq!(
        (
            ok.data()["secret_id_num_uses"].clone(),
            ok.data()["secret_id_ttl"].clone()
        ),
        (json!(2), json!(600))
    );
    let defaults = m.write(p, json!({})).await;
    assert_eq!(
        (
            defaults.data()["secret_id_num_uses"].clone(),
            defaults.data()["secret_id_ttl"].clone()
        ),
        (json!(5), json!(3600))
    );
    m.write("role/open/secret-id", json!({}))
        .await
        .assert_error(400, "bind_secret_id is not set on the role");
    m.write("role/nope/secret-id", json!({}))
        .await
        .assert_error(404, "role \"nope\" does not exist");
    m.write("role/nope/secret-id", json!({"ttl": "soon"}))
        .await
        .assert_error(
            400,
            "Field validation failed: error converting input for field \"ttl\": invalid duration",
        );
    m.list("role/nope/secret-id/", &[])
        .await
        .assert_error(400, "role \"nope\" does not exist");
    m.list("role/open/secret-id/", &[]).await.assert_status(404);
    for (path, body, message) in [
        (
            "role/nope/secret-id/lookup",
            json!({"secret_id": "x"}),
            "1 error occurred:\n\t* role \"nope\" does not exist\n\n",
        ),
        (
            "role/nope/secret-id/destroy",
            json!({"secret_id": "x"}),
            "1 error occurred:\n\t* role \"nope\" does not exist\n\n",
        ),
        (
            "role/nope/secret-id-accessor/lookup",
            json!({"secret_id_accessor": "x"}),
            "1 error occurred:\n\t* role \"nope\" does not exist\n\n",
        ),
        (
            "role/limited/secret-id/lookup",
            json!({}),
            "missing secret_id",
        ),
        (
            "role/limited/secret-id/destroy",
            json!({}),
            "missing secret_id",
        ),
        (
            "role/limited/secret-id-accessor/lookup",
            json!({}),
            "missing secret_id_accessor",
        ),
        (
            "role/limited/secret-id-accessor/destroy",
            json!({}),
            "missing secret_id_accessor",
        ),
        (
            "role/limited/secret-id-accessor/destroy",
            json!({"secret_id_accessor": "nope"}),
            "1 error occurred:\n\t* failed to find accessor entry for secret_id_accessor: \"nope\"\n\n",
        ),
        (
            "role/limited/custom-secret-id",
            json!({}),
            "missing secret_id",
        ),
    ] {
        m.write(path, body).await.assert_error(400, message);
    }
    m.write(
        "role/limited/secret-id/lookup",
        json!({"secret_id": "unknown"}),
    )
    .await
    .assert_status(204);
    let unknown = m
        .write(
            "role/limited/secret-id-accessor/lookup",
            json!({"secret_id_accessor": "nope"}),
        )
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.data(),
        &json!({"error": "failed to find accessor entry for secret_id_accessor: \"nope\""})
    );
    m.call(
        Operation::Read,
        "role/limited/secret-id/lookup",
        Value::Null,
    )
    .await
    .assert_status(405);
}

#[tokio::test]
async fn custom_secret_ids_log_in_and_cannot_be_registered_twice() {
    let m = Mount::new().await;
    let role_id = m.role("push", json!({"token_policies": "app"})).await;
    let reply = m
        .write(
            "role/push/custom-secret-id",
            json!({"secret_id": "my-secret", "num_uses": 2}),
        )
        .await;
    reply.assert_status(200);
    assert_eq!(reply.data()["secret_id"], "my-secret");
    assert_eq!(reply.data()["secret_id_num_uses"], 2);
    m.write(
        "role/push/custom-secret-id",
        json!({"secret_id": "my-secret"}),
    )
    .await
    .assert_error(
        400,
        "1 error occurred:\n\t* failed to store secret_id: SecretID is already registered\n\n",
    );
    m.write(
        "role/push/custom-secret-id",
        json!({"secret_id": "x".repeat(4097)}),
    )
    .await
    .assert_error(400, "1 error occurred:\n\t* failed to store secret_id: failed to create HMAC of secret ID: value is longer than maximum of 4096 bytes\n\n");
    let login = m.login(&role_id, "my-secret").await.unwrap();
    assert_eq!(login.token.policies, ["app"]);
}

#[tokio::test]
async fn accessors_find_destroy_and_stay_within_their_role() {
    let m = Mount::new().await;
    let role_a = m.role("a", json!({})).await;
    m.role("b", json!({})).await;
    let (secret, accessor) = m.secret("a", json!({})).await;
    // Another role's accessor: not found there (204), and destroying it through that role is
    // refused.
    m.write(
        "role/b/secret-id-accessor/lookup",
        json!({"secret_id_accessor": accessor}),
    )
    .await
    .assert_status(204);
    m.write(
        "role/b/secret-id-accessor/destroy",
        json!({"secret_id_accessor": accessor}),
    )
    .await
    .assert_error(403, "invalid secret id accessor");
    m.login(&role_a, &secret).await.unwrap();
    // DELETE takes its parameters from the query string only, as in Vault.
    m.call(
        Operation::Delete,
        "role/a/secret-id-accessor/destroy",
        json!({"secret_id_accessor": accessor}),
    )
    .await
    .assert_error(400, "missing secret_id_accessor");
    let mut req = m.request(
        Operation::Delete,
        "role/a/secret-id-accessor/destroy",
        Value::Null,
        LOCAL,
    );
    req.query = vec![("secret_id_accessor".into(), accessor.clone())];
    m.send(req).await.assert_status(204);
    let (_, _, detail) = denial(m.login(&role_a, &secret).await);
    assert!(detail.contains("has no such secret id"), "{detail}");
    m.list("role/a/secret-id", &[]).await.assert_status(404);
    // By value.
    let (secret, _) = m.secret("a", json!({})).await;
    m.write("role/a/secret-id/destroy", json!({"secret_id": secret}))
        .await
        .assert_status(204);
    m.write("role/a/secret-id/destroy", json!({"secret_id": secret}))
        .await
        .assert_status(204);
    assert!(m.login(&role_a, &secret).await.is_err());
}

#[tokio::test]
async fn a_login_carries_the_roles_token_settings_and_the_secret_ids_metadata() {
    let m = Mount::new().await;
    let role_id = m
        .role(
            "web",
            json!({"token_policies": "app,ops", "token_ttl": "10m", "token_max_ttl": "1h",
                   "token_num_uses": 7, "token_bound_cidrs": "10.0.0.0/8", "token_no_default_policy": true}),
        )
        .await;
    let (secret, accessor) = m
        .secret(
            "web",
            json!({"metadata": "{\"team\":\"a\",\"role_name\":\"spoofed\"}"}),
        )
        .await;
    let login = m
        .login(&format!(" {role_id} "), &format!(" {secret} "))
        .await
        .unwrap();
    let meta = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(login.metadata, meta(&[("role_name", "web"), ("team", "a")]));
    assert_eq!(login.alias.name, role_id);
    assert_eq!(login.alias.metadata, login.metadata);
    assert_eq!(login.display_name, "");
    assert!(login.renewable);
    assert_eq!(login.token.policies, ["app", "ops"]);
    assert_eq!(
        (login.token.ttl, login.token.max_ttl, login.token.num_uses),
        (600, 3600, 7)
    );
    assert!(login.token.no_default_policy);
    assert_eq!(login.token.bound_cidrs, ["10.0.0.0/8"]);
    assert_eq!(
        Value::Object(login.internal.clone()),
        json!({"role_name": "web", "secret_id_accessor": accessor})
    );
    // The secret id's token_bound_cidrs narrow the role's.
    let (narrow, _) = m
        .secret("web", json!({"token_bound_cidrs": "10.1.0.0/16"}))
        .await;
    assert_eq!(
        m.login(&role_id, &narrow).await.unwrap().token.bound_cidrs,
        ["10.1.0.0/16"]
    );
    // token_strictly_bind_ip binds the token to the login's address.
    let strict_id = m
        .role("strict", json!({"token_strictly_bind_ip": true}))
        .await;
    let (s, _) = m.secret("strict", json!({})).await;
    let login = m
        .login_from(json!({"role_id": strict_id, "secret_id": s}), "10.9.8.7")
        .await
        .unwrap();
    assert_eq!(login.token.bound_cidrs, ["10.9.8.7"]);
    // Without bind_secret_id the role id alone logs in (from inside the role's CIDRs).
    let open_id = m
        .role(
            "open",
            json!({"bind_secret_id": false, "secret_id_bound_cidrs": "127.0.0.0/8"}),
        )
        .await;
    let login = m
        .login_from(json!({"role_id": open_id}), LOCAL)
        .await
        .unwrap();
    assert_eq!(login.metadata, meta(&[("role_name", "open")]));
    assert!(!login.internal.contains_key("secret_id_accessor"));
    let (status, summary, detail) = denial(
        m.login_from(json!({"role_id": open_id}), "192.168.1.1")
            .await,
    );
    assert_eq!(status, 400);
    assert_eq!(
        summary,
        "source address \"192.168.1.1\" unauthorized by CIDR restrictions on the role"
    );
    assert_eq!(
        detail,
        "client address 192.168.1.1 is not in role 'open''s secret_id_bound_cidrs [127.0.0.0/8]"
    );
}

#[tokio::test]
async fn logins_are_refused_with_openbaos_summary_and_a_detail_that_never_holds_the_secret() {
    let m = Mount::new().await;
    let role_id = m.role("r", json!({})).await;
    let (secret, _) = m.secret("r", json!({})).await;
    let wrong = "00000000-1111-2222-3333-444444444444";
    let (status, summary, detail) = denial(m.login(&role_id, wrong).await);
    assert_eq!(
        (status, summary.as_str()),
        (400, "invalid role or secret ID")
    );
    assert!(
        detail.contains("role 'r' has no such secret id"),
        "{detail}"
    );
    assert!(!detail.contains(wrong) && !detail.contains(&secret));
    let (_, summary, detail) = denial(m.login("no-such-role-id", &secret).await);
    assert_eq!(summary, "invalid role or secret ID");
    assert!(
        !detail.contains(&secret) && !detail.contains("no-such-role-id"),
        "{detail}"
    );
    for (body, message) in [
        (json!({}), "missing role_id"),
        (json!({"role_id": "  "}), "missing role_id"),
        (json!({"role_id": role_id}), "missing secret_id"),
        (
            json!({"role_id": role_id, "secret_id": "x".repeat(4097)}),
            "failed to create HMAC of secret_id: value is longer than maximum of 4096 bytes",
        ),
        (
            json!({"role_id": {"a": 1}}),
            "Field validation failed: error converting input for field \"role_id\": expected a string, got map",
        ),
    ] {
        match m.login_from(body, LOCAL).await {
            Err(EngineError::InvalidRequest(msg)) => assert_eq!(msg, message),
            other => panic!("expected 400 {message:?}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn num_uses_count_down_and_the_last_use_deletes_the_secret_id() {
    let m = Mount::new().await;
    let role_id = m.role("r", json!({})).await;
    let (secret, accessor) = m.secret("r", json!({"num_uses": 2})).await;
    m.clock.advance(Duration::from_secs(1));
    m.login(&role_id, &secret).await.unwrap();
    let looked = m
        .write("role/r/secret-id/lookup", json!({"secret_id": secret}))
        .await;
    assert_eq!(looked.data()["secret_id_num_uses"], 1);
    assert_eq!(
        looked.data()["last_updated_time"],
        "2024-01-02T03:04:06.123456789Z"
    );
    m.login(&role_id, &secret).await.unwrap();
    let (_, summary, detail) = denial(m.login(&role_id, &secret).await);
    assert_eq!(summary, "invalid role or secret ID");
    assert_eq!(
        detail,
        "the secret id for role 'r' has no uses left (its last use was at 2024-01-02T03:04:06.123456789Z)"
    );
    m.write("role/r/secret-id/lookup", json!({"secret_id": secret}))
        .await
        .assert_status(204);
    m.list("role/r/secret-id", &[]).await.assert_status(404);
    assert!(
        !m.stored_text().contains(&accessor),
        "the accessor index went with the secret id"
    );
}

/// Lets the scheduler run other tasks a few times (no timers: the test never waits).
async fn suspend() {
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
}

/// Storage that suspends after every read and before every write, as a real backend does, so
/// two logins interleave between reading a secret id and writing back its use count.
struct Suspending<'a>(&'a MemStorage);

#[async_trait::async_trait]
impl tresor_sdk::storage::Storage for Suspending<'_> {
    async fn get(
        &self,
        key: &str,
    ) -> Result<Option<tresor_sdk::secret::SecretBytes>, tresor_sdk::storage::StorageViewError>
    {
        let value = self.0.get(key).await;
        suspend().await;
        value
    }
    async fn put(
        &self,
        key: &str,
        value: &[u8],
    ) -> Result<(), tresor_sdk::storage::StorageViewError> {
        self.0.put(key, value).await
    }
    async fn delete(&self, key: &str) -> Result<(), tresor_sdk::storage::StorageViewError> {
        self.0.delete(key).await
    }
    async fn list(
        &self,
        prefix: &str,
    ) -> Result<Vec<String>, tresor_sdk::storage::StorageViewError> {
        self.0.list(prefix).await
    }
    async fn transaction(
        &self,
        ops: Vec<tresor_sdk::storage::ViewOp>,
    ) -> Result<(), tresor_sdk::storage::StorageViewError> {
        suspend().await;
        self.0.transaction(ops).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_logins_spend_each_use_exactly_once() {
    let m = Arc::new(Mount::new().await);
    let role_id = m.role("r", json!({})).await;
    let (secret, _) = m.secret("r", json!({"num_uses": 5})).await;
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let m = m.clone();
            let (role_id, secret) = (role_id.clone(), secret.clone());
            tokio::spawn(async move {
                let req = m.request(
                    Operation::Update,
                    "login",
                    json!({"role_id": role_id, "secret_id": secret}),
                    LOCAL,
                );
                m.method.handle(&req, &Suspending(&m.storage)).await.is_ok()
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        if t.await.unwrap() {
            won += 1;
        }
    }
    assert_eq!(won, 5, "exactly num_uses logins succeed");
    assert!(m.login(&role_id, &secret).await.is_err());
}

#[tokio::test]
async fn expired_secret_ids_are_refused_listed_until_tidied_and_explained_after() {
    let m = Mount::new().await;
    let role_id = m.role("r", json!({})).await;
    let (secret, accessor) = m.secret("r", json!({"ttl": "60s"})).await;
    let (keeper, _) = m.secret("r", json!({})).await;
    m.clock.advance(Duration::from_secs(60));
    m.login(&role_id, &secret).await.unwrap();
    m.clock.advance(Duration::from_secs(1));
    let (_, summary, detail) = denial(m.login(&role_id, &secret).await);
    assert_eq!(summary, "invalid role or secret ID");
    assert_eq!(
        detail,
        "the secret id for role 'r' expired at 2024-01-02T03:05:05.123456789Z"
    );
    m.write("role/r/secret-id/lookup", json!({"secret_id": secret}))
        .await
        .assert_status(204);
    m.write(
        "role/r/secret-id-accessor/lookup",
        json!({"secret_id_accessor": accessor}),
    )
    .await
    .assert_status(204);
    let listed = m.list("role/r/secret-id", &[]).await;
    assert_eq!(listed.data()["keys"].as_array().unwrap().len(), 2);

    let tidy = m.write("tidy/secret-id", json!({})).await;
    assert_eq!(tidy.status, 202);
    assert_eq!(
        tidy.body["warnings"],
        json!([
            "Tidy operation successfully started. Any information from the operation will be printed to OpenBao's server logs."
        ])
    );
    let listed = m.list("role/r/secret-id", &[]).await;
    assert_eq!(listed.data()["keys"].as_array().unwrap().len(), 1);
    let (_, _, detail) = denial(m.login(&role_id, &secret).await);
    assert_eq!(
        detail,
        "the secret id for role 'r' expired at 2024-01-02T03:05:05.123456789Z"
    );
    m.login(&role_id, &keeper).await.unwrap();
    // A day later the periodic tidy forgets the spent marker too.
    m.clock.advance(Duration::from_secs(24 * 3600 + 1));
    m.method.periodic(&m.storage).await.unwrap();
    assert!(
        !m.storage.keys().iter().any(|k| k.starts_with("spent/")),
        "{:?}",
        m.storage.keys()
    );
    let (_, _, detail) = denial(m.login(&role_id, &secret).await);
    assert!(detail.contains("has no such secret id"), "{detail}");
}

#[tokio::test]
async fn cidr_bound_secret_ids_log_in_only_from_inside_their_blocks() {
    let m = Mount::new().await;
    let role_id = m.role("r", json!({})).await;
    let (unlimited, _) = m.secret("r", json!({"cidr_list": "10.0.0.0/8"})).await;
    let (limited, _) = m
        .secret("r", json!({"cidr_list": "10.0.0.0/8", "num_uses": 2}))
        .await;
    let body = |s: &str| json!({"role_id": role_id, "secret_id": s});
    let (status, summary, detail) = denial(m.login_from(body(&unlimited), LOCAL).await);
    assert_eq!(status, 400);
    assert_eq!(
        summary,
        "source address \"127.0.0.1\" unauthorized through CIDR restrictions on the secret ID"
    );
    assert_eq!(
        detail,
        "client address 127.0.0.1 is not in the secret id's cidr_list [10.0.0.0/8]"
    );
    let (_, summary, _) = denial(m.login_from(body(&limited), LOCAL).await);
    assert_eq!(
        summary,
        "source address \"127.0.0.1\" unauthorized by CIDR restrictions on the secret ID"
    );
    // A refused login spends nothing.
    let looked = m
        .write("role/r/secret-id/lookup", json!({"secret_id": limited}))
        .await;
    assert_eq!(looked.data()["secret_id_num_uses"], 2);
    m.login_from(body(&unlimited), "10.2.3.4").await.unwrap();
    m.login_from(body(&limited), "::ffff:10.2.3.4")
        .await
        .unwrap();
    // Narrowing the role afterwards invalidates secret ids outside the new blocks.
    m.write("role/r", json!({"secret_id_bound_cidrs": "10.1.0.0/16"}))
        .await
        .assert_status(204);
    let (_, summary, detail) = denial(m.login_from(body(&unlimited), "10.1.2.3").await);
    assert!(
        summary.starts_with("failed to verify subset relationship"),
        "{summary}"
    );
    assert!(
        detail.contains("changed after this secret id was issued"),
        "{detail}"
    );
}

#[tokio::test]
async fn renewal_follows_the_role_and_is_refused_once_it_is_gone() {
    let m = Mount::new().await;
    let role_id = m
        .role(
            "ren",
            json!({"token_ttl": "10m", "token_max_ttl": "1h", "token_period": 0}),
        )
        .await;
    let (secret, _) = m.secret("ren", json!({})).await;
    let login = m.login(&role_id, &secret).await.unwrap();
    let renewal = LoginRenewal {
        policies: login.token.policies.clone(),
        metadata: login.metadata.clone(),
        internal: login.internal.clone(),
        mount: m.info.clone(),
    };
    let decision = m.method.renew(&renewal, &m.storage).await.unwrap();
    assert_eq!(
        (decision.ttl, decision.max_ttl, decision.period),
        (600, 3600, 0)
    );
    m.write("role/ren/token-ttl", json!({"token_ttl": "5m"}))
        .await
        .assert_status(204);
    assert_eq!(m.method.renew(&renewal, &m.storage).await.unwrap().ttl, 300);
    m.delete("role/ren").await.assert_status(204);
    match m.method.renew(&renewal, &m.storage).await {
        Err(EngineError::Denied(d)) => {
            assert_eq!(d.summary, "role \"ren\" does not exist during renewal");
            assert!(d.detail.contains("was deleted"), "{}", d.detail);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn secret_ids_are_never_stored_and_go_with_their_role() {
    let m = Mount::new().await;
    let role_id = m.role("r", json!({})).await;
    let mut secrets = Vec::new();
    for _ in 0..3 {
        secrets.push(m.secret("r", json!({"num_uses": 3})).await.0);
    }
    m.write(
        "role/r/custom-secret-id",
        json!({"secret_id": "custom-secret-value"}),
    )
    .await
    .assert_status(200);
    secrets.push("custom-secret-value".into());
    m.login(&role_id, &secrets[0]).await.unwrap();
    let text = m.stored_text();
    for s in &secrets {
        assert!(!text.contains(s.as_str()), "a secret id is in storage");
    }
    assert!(
        text.contains(&role_id),
        "role ids are identifiers, stored in the role"
    );

    m.delete("role/r").await.assert_status(204);
    let keys = m.storage.keys();
    assert_eq!(keys, ["hmac-key"], "everything but the mount's key is gone");
    // The same name again is a new role: old secret ids do not log in to it.
    m.role("r", json!({"role_id": role_id})).await;
    let (_, _, detail) = denial(m.login(&role_id, &secrets[1]).await);
    assert!(detail.contains("has no such secret id"), "{detail}");
}

#[tokio::test]
async fn tidy_removes_orphans_and_dangling_accessors() {
    let m = Mount::new().await;
    let role_id = m.role("r", json!({})).await;
    let (secret, _) = m.secret("r", json!({})).await;
    // Simulate leftovers of an interrupted deletion: a secret id under an unknown role uid,
    // and an accessor index pointing nowhere.
    let snapshot = m.storage.snapshot();
    let (entry_key, entry) = snapshot
        .iter()
        .find(|(k, _)| k.starts_with("secret-id/"))
        .unwrap();
    let orphan_key = format!(
        "secret-id/{}/{}",
        "0".repeat(32),
        entry_key.rsplit('/').next().unwrap()
    );
    m.storage.insert_raw(&orphan_key, entry);
    m.storage.insert_raw(
        "accessor/deadbeef",
        br#"{"role_uid":"00","secret_id_hmac":"11"}"#,
    );
    let tidy = m.write("tidy/secret-id", Value::Null).await;
    assert_eq!(tidy.status, 202);
    let keys = m.storage.keys();
    assert!(!keys.contains(&orphan_key) && !keys.iter().any(|k| k == "accessor/deadbeef"));
    m.login(&role_id, &secret).await.unwrap();
}

#[tokio::test]
async fn unknown_body_fields_are_named_in_a_warning_on_answers_with_a_body() {
    let m = Mount::new().await;
    m.role("r", json!({})).await;
    let reply = m
        .write("role/r/secret-id", json!({"bogus": 1, "ttl": 10}))
        .await;
    assert_eq!(
        reply.body["warnings"],
        json!(["Endpoint ignored these unrecognized parameters: [bogus]"])
    );
    m.write("role/r", json!({"bogus": 1}))
        .await
        .assert_status(204);
}

/// Storage whose first `list` waits until the test lets it go, to hold a tidy mid-run.
struct Gate<'a> {
    inner: &'a MemStorage,
    closed: std::sync::atomic::AtomicBool,
    entered: &'a tokio::sync::Notify,
    release: &'a tokio::sync::Notify,
}

#[async_trait::async_trait]
impl tresor_sdk::storage::Storage for Gate<'_> {
    async fn get(
        &self,
        key: &str,
    ) -> Result<Option<tresor_sdk::secret::SecretBytes>, tresor_sdk::storage::StorageViewError>
    {
        self.inner.get(key).await
    }
    async fn put(
        &self,
        key: &str,
        value: &[u8],
    ) -> Result<(), tresor_sdk::storage::StorageViewError> {
        self.inner.put(key, value).await
    }
    async fn delete(&self, key: &str) -> Result<(), tresor_sdk::storage::StorageViewError> {
        self.inner.delete(key).await
    }
    async fn list(
        &self,
        prefix: &str,
    ) -> Result<Vec<String>, tresor_sdk::storage::StorageViewError> {
        if self.closed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.entered.notify_one();
            self.release.notified().await;
        }
        self.inner.list(prefix).await
    }
    async fn transaction(
        &self,
        ops: Vec<tresor_sdk::storage::ViewOp>,
    ) -> Result<(), tresor_sdk::storage::StorageViewError> {
        self.inner.transaction(ops).await
    }
}

#[tokio::test]
async fn one_tidy_runs_at_a_time() {
    let m = Mount::new().await;
    m.role("r", json!({})).await;
    let entered = tokio::sync::Notify::new();
    let release = tokio::sync::Notify::new();
    let gated = Gate {
        inner: &m.storage,
        closed: std::sync::atomic::AtomicBool::new(true),
        entered: &entered,
        release: &release,
    };
    let req = m.request(Operation::Update, "tidy/secret-id", Value::Null, LOCAL);
    let first = m.method.handle(&req, &gated);
    let second = async {
        entered.notified().await;
        let busy = render(m.method.handle(&req, &m.storage).await);
        release.notify_one();
        busy
    };
    let (first, busy) = tokio::join!(first, second);
    assert_eq!(render(first).status, 202);
    busy.assert_status(200);
    assert_eq!(
        busy.body["warnings"],
        json!(["Tidy operation already in progress."])
    );
    assert_eq!(
        m.write("tidy/secret-id", json!({})).await.status,
        202,
        "free again"
    );
}

#[tokio::test]
async fn a_new_role_id_replaces_the_old_one_for_logins() {
    let m = Mount::new().await;
    let old = m.role("r", json!({})).await;
    let (secret, _) = m.secret("r", json!({})).await;
    m.write("role/r/role-id", json!({"role_id": "fresh-id"}))
        .await
        .assert_status(204);
    let (_, _, detail) = denial(m.login(&old, &secret).await);
    assert!(detail.starts_with("no role has the role_id"), "{detail}");
    m.login("fresh-id", &secret).await.unwrap();
    // The freed id can be claimed by another role; a taken one cannot.
    m.role("other", json!({"role_id": old})).await;
    m.write("role/other/role-id", json!({"role_id": "fresh-id"}))
        .await
        .assert_error(400, "1 error occurred:\n\t* role_id already in use\n\n");
    // The old id now names the other role, which never had this secret id.
    let (_, _, detail) = denial(m.login(&old, &secret).await);
    assert!(
        detail.starts_with("role 'other' has no such secret id"),
        "{detail}"
    );
}
