//! Test support: an in-memory [`Storage`] with the storage view's semantics, a controllable
//! clock, and a harness that calls engines the way the core's router will and renders their
//! answers as (HTTP status, JSON) pairs.

#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod memory;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tresor_builtin::clock::Clock;
use tresor_builtin::secrets::cubbyhole::CubbyholeFactory;
use tresor_builtin::secrets::kv::KvFactory;
use tresor_builtin::secrets::transit::TransitFactory;
use tresor_sdk::engine::{
    EngineError, EngineFactory, MountInfo, Operation, Request, Response, SecretEngine,
};

pub use memory::MemStorage;

/// A clock that only moves when told to. Starts at 2024-01-02T03:04:05.123456789Z.
#[derive(Debug)]
pub struct FakeClock(AtomicI64);

pub const START: i64 = 1_704_164_645_123_456_789;

impl Default for FakeClock {
    fn default() -> Self {
        Self(AtomicI64::new(START))
    }
}

impl FakeClock {
    pub fn advance(&self, by: Duration) {
        let nanos = i64::try_from(by.as_nanos()).unwrap();
        self.0.fetch_add(nanos, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// An engine on its own storage, called like the router calls it.
pub struct Harness {
    pub engine: Arc<dyn SecretEngine>,
    pub storage: MemStorage,
    pub clock: Arc<FakeClock>,
    pub mount: Arc<MountInfo>,
    pub factory: KvFactory,
    /// The caller's token key (cubbyhole).
    pub token: String,
}

/// What an HTTP client would see: the status and the JSON body (`null` for 204).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    pub fn errors(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| a.iter().map(|e| e.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "unexpected reply: {self:?}");
        self
    }

    #[track_caller]
    pub fn assert_error(&self, status: u16, message: &str) {
        self.assert_status(status);
        assert_eq!(self.errors(), vec![message.to_owned()], "reply: {self:?}");
    }
}

impl Harness {
    pub fn kv(options: &[(&str, &str)]) -> Self {
        Self::kv_typed("kv", options)
    }

    pub fn kv_v2() -> Self {
        Self::kv_typed("kv-v2", &[])
    }

    pub fn kv_typed(engine_type: &str, options: &[(&str, &str)]) -> Self {
        let clock = Arc::new(FakeClock::default());
        let factory = KvFactory::with_clock(clock.clone());
        let mut opts: BTreeMap<String, String> = factory.default_options(engine_type);
        for (k, v) in options {
            opts.insert((*k).to_owned(), (*v).to_owned());
        }
        let mount = Arc::new(MountInfo {
            path: "secret/".into(),
            engine_type: engine_type.into(),
            options: opts,
            default_lease_ttl: Duration::from_secs(2_764_800),
            max_lease_ttl: Duration::from_secs(2_764_800),
            accessor: "kv_0000".into(),
            passwords: None,
        });
        let engine = factory.build(&mount).unwrap();
        Self {
            engine,
            storage: MemStorage::default(),
            clock,
            mount,
            factory,
            token: "token-a".into(),
        }
    }

    pub fn cubbyhole() -> Self {
        let mut h = Self::kv(&[]);
        let mount = Arc::new(MountInfo {
            path: "cubbyhole/".into(),
            engine_type: "cubbyhole".into(),
            ..MountInfo::default()
        });
        h.engine = CubbyholeFactory.build(&mount).unwrap();
        h.mount = mount;
        h
    }

    /// A transit mount at `transit/` on fresh storage, with the fake clock.
    pub fn transit() -> Self {
        let mut h = Self::kv(&[]);
        let mount = Arc::new(MountInfo {
            path: "transit/".into(),
            engine_type: "transit".into(),
            ..MountInfo::default()
        });
        h.engine = TransitFactory::with_clock(h.clock.clone())
            .build(&mount)
            .unwrap();
        h.mount = mount;
        h
    }

    /// Rebuilds the engine after an options change, as the core does after a tune.
    pub async fn tune(&mut self, options: &[(&str, &str)]) -> Result<(), EngineError> {
        let old = self.mount.options.clone();
        let mut new = old.clone();
        for (k, v) in options {
            new.insert((*k).to_owned(), (*v).to_owned());
        }
        self.engine
            .options_changed(&old, &new, &self.storage)
            .await?;
        let mount = Arc::new(MountInfo {
            options: new,
            ..(*self.mount).clone()
        });
        self.engine = self.factory.build(&mount)?;
        self.engine.initialize(&self.storage).await?;
        self.mount = mount;
        Ok(())
    }

    pub fn request(
        &self,
        op: Operation,
        path: &str,
        body: Value,
        query: &[(&str, &str)],
    ) -> Request {
        let data = match body {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            other => panic!("body must be an object, got {other}"),
        };
        Request {
            operation: op,
            path: path.to_owned(),
            data,
            query: query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            content_type: match op {
                Operation::Patch => Some("application/merge-patch+json".into()),
                _ => None,
            },
            mount: self.mount.clone(),
            client_token_key: self.token.clone(),
            display_name: String::new(),
            remote_addr: None,
        }
    }

    /// Sends a request. Writes (`Update`) become `Create` when the engine's existence check
    /// says the target is absent, as the router does.
    pub async fn send(&self, mut req: Request) -> Reply {
        if req.operation == Operation::Update
            && self.engine.exists(&req, &self.storage).await.unwrap() == Some(false)
        {
            req.operation = Operation::Create;
        }
        render(self.engine.handle(&req, &self.storage).await)
    }

    pub async fn call(&self, op: Operation, path: &str, body: Value) -> Reply {
        self.send(self.request(op, path, body, &[])).await
    }

    pub async fn call_q(&self, op: Operation, path: &str, query: &[(&str, &str)]) -> Reply {
        self.send(self.request(op, path, Value::Null, query)).await
    }

    pub async fn read(&self, path: &str) -> Reply {
        self.call(Operation::Read, path, Value::Null).await
    }

    pub async fn write(&self, path: &str, body: Value) -> Reply {
        self.call(Operation::Update, path, body).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call(Operation::Patch, path, body).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.call(Operation::Delete, path, Value::Null).await
    }

    pub async fn list(&self, path: &str) -> Reply {
        self.call(Operation::List, path, Value::Null).await
    }

    pub async fn scan(&self, path: &str) -> Reply {
        self.call(Operation::Scan, path, Value::Null).await
    }

    /// KV v2 shorthand: writes `data` to `data/<key>`.
    pub async fn put(&self, key: &str, data: Value) -> Reply {
        self.write(&format!("data/{key}"), json!({ "data": data }))
            .await
    }
}

/// Standard base64 with padding, as Vault's API carries bytes (transit's plaintexts, keys).
pub fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// The bytes of a standard base64 string; panics (failing the test) on anything else.
#[track_caller]
pub fn unb64(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("valid base64")
}

/// RFC 5869 HKDF-SHA256 (no salt), one 32-byte block, built from the `hmac` crate so it is
/// independent of ring, which the engine derives keys with.
pub fn hkdf_sha256(ikm: &[u8], info: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    type H = Hmac<sha2::Sha256>;
    let mut extract = <H as Mac>::new_from_slice(&[0u8; 32]).unwrap();
    extract.update(ikm);
    let prk = extract.finalize().into_bytes();
    let mut expand = <H as Mac>::new_from_slice(&prk).unwrap();
    expand.update(info);
    expand.update(&[1]);
    expand.finalize().into_bytes().into()
}

/// Renders an engine's answer as the core will send it (status and Vault envelope fields).
pub fn render(result: Result<Option<Response>, EngineError>) -> Reply {
    match result {
        Ok(None) => Reply {
            status: 204,
            body: Value::Null,
        },
        Ok(Some(r)) => {
            let lease_duration = r.lease.as_ref().map_or(0, |l| l.ttl.as_secs());
            Reply {
                status: r.status_override.unwrap_or(200),
                body: json!({
                    "data": r.data.map(Value::Object).unwrap_or(Value::Null),
                    "warnings": if r.warnings.is_empty() { Value::Null } else { json!(r.warnings) },
                    "lease_duration": lease_duration,
                    "renewable": r.lease.as_ref().is_some_and(|l| l.renewable),
                }),
            }
        }
        Err(e) => {
            let (status, errors) = match &e {
                EngineError::NotFound => (404, vec![]),
                EngineError::InvalidRequest(m) => (400, vec![m.clone()]),
                EngineError::UnsupportedPath => (404, vec!["unsupported path".into()]),
                EngineError::UnsupportedOperation => (405, vec!["unsupported operation".into()]),
                EngineError::PermissionDenied => (403, vec!["permission denied".into()]),
                EngineError::Denied(d) => (d.status, vec![d.message(true)]),
                other => (500, vec![other.to_string()]),
            };
            Reply {
                status,
                body: json!({ "errors": errors }),
            }
        }
    }
}

/// Replaces every RFC 3339 timestamp string in `value` with `"<time>"`, so snapshots of
/// responses made with the real clock are stable.
pub fn normalise_times(value: &mut Value) {
    match value {
        Value::String(s) if looks_like_rfc3339(s) => *s = "<time>".into(),
        Value::Array(items) => items.iter_mut().for_each(normalise_times),
        Value::Object(map) => map.values_mut().for_each(normalise_times),
        _ => {}
    }
}

fn looks_like_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && s.ends_with('Z')
}
