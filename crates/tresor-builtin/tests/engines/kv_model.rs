//! Property test: random sequences of KV v2 operations agree with a simple model of versions.
//!
//! The model keeps, per key, the version window (current, oldest), each version's data and
//! its deleted/destroyed flags, and the key settings the sequence touches. After every
//! operation the engine's status must match the model's, and the whole observable state
//! (metadata, every version's read, the key set) must match too.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};
use support::Harness;
use tresor_sdk::engine::Operation;

const KEYS: [&str; 3] = ["a", "b/c", "ü x"];

#[derive(Debug, Clone)]
enum Op {
    Put {
        key: usize,
        value: i64,
        cas: Option<u64>,
    },
    Patch {
        key: usize,
        value: i64,
    },
    DeleteLatest {
        key: usize,
    },
    Delete {
        key: usize,
        versions: Vec<u64>,
    },
    Undelete {
        key: usize,
        versions: Vec<u64>,
    },
    Destroy {
        key: usize,
        versions: Vec<u64>,
    },
    MaxVersions {
        key: usize,
        max: u32,
    },
    CasRequired {
        key: usize,
        on: bool,
    },
    Label {
        key: usize,
        label: Option<String>,
    },
    DeleteMetadata {
        key: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS.len();
    let versions = prop::collection::vec(0u64..8, 0..3);
    prop_oneof![
        4 => (key.clone(), -5i64..5, prop::option::of(0u64..6))
            .prop_map(|(key, value, cas)| Op::Put { key, value, cas }),
        1 => (key.clone(), -5i64..5).prop_map(|(key, value)| Op::Patch { key, value }),
        1 => key.clone().prop_map(|key| Op::DeleteLatest { key }),
        1 => (key.clone(), versions.clone()).prop_map(|(key, versions)| Op::Delete { key, versions }),
        1 => (key.clone(), versions.clone()).prop_map(|(key, versions)| Op::Undelete { key, versions }),
        1 => (key.clone(), versions).prop_map(|(key, versions)| Op::Destroy { key, versions }),
        1 => (key.clone(), 0u32..4).prop_map(|(key, max)| Op::MaxVersions { key, max }),
        1 => (key.clone(), any::<bool>()).prop_map(|(key, on)| Op::CasRequired { key, on }),
        1 => (key.clone(), prop::option::of("[a-z]{1,4}"))
            .prop_map(|(key, label)| Op::Label { key, label }),
        1 => key.prop_map(|key| Op::DeleteMetadata { key }),
    ]
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Version {
    data: BTreeMap<String, i64>,
    deleted: bool,
    destroyed: bool,
}

#[derive(Debug, Clone, Default)]
struct Key {
    current: u64,
    oldest: u64,
    versions: BTreeMap<u64, Version>,
    max_versions: u32,
    cas_required: bool,
    label: Option<String>,
}

impl Key {
    fn add(&mut self, data: BTreeMap<String, i64>) {
        self.current += 1;
        self.versions.insert(
            self.current,
            Version {
                data,
                ..Version::default()
            },
        );
        let max = if self.max_versions == 0 {
            10
        } else {
            u64::from(self.max_versions)
        };
        if self.current - self.oldest >= max {
            let last = self.current - max;
            self.versions.retain(|n, _| *n > last);
            self.oldest = last + 1;
        }
    }

    fn readable(&self, n: u64) -> Option<&Version> {
        self.versions.get(&n).filter(|v| !v.deleted && !v.destroyed)
    }
}

/// Applies `op` to the model; returns the HTTP status the engine must answer with.
fn apply(model: &mut BTreeMap<usize, Key>, op: &Op) -> u16 {
    match op {
        Op::Put { key, value, cas } => {
            let entry = model.get(key).cloned().unwrap_or_default();
            match cas {
                Some(c) if *c != entry.current => return 400,
                None if entry.cas_required => return 400,
                _ => {}
            }
            let k = model.entry(*key).or_default();
            k.add(BTreeMap::from([("v".to_owned(), *value)]));
            200
        }
        Op::Patch { key, value } => {
            let Some(k) = model.get_mut(key) else {
                return 404;
            };
            if k.cas_required {
                return 400;
            }
            let Some(latest) = k.versions.get(&k.current) else {
                return 404;
            };
            if latest.deleted || latest.destroyed {
                return 404;
            }
            let mut data = latest.data.clone();
            data.insert("p".to_owned(), *value);
            k.add(data);
            200
        }
        Op::DeleteLatest { key } => {
            if let Some(k) = model.get_mut(key) {
                let current = k.current;
                if let Some(v) = k.versions.get_mut(&current).filter(|v| !v.destroyed) {
                    v.deleted = true;
                }
            }
            204
        }
        Op::Delete { key, versions }
        | Op::Undelete { key, versions }
        | Op::Destroy { key, versions } => {
            if versions.is_empty() {
                return 400;
            }
            if let Some(k) = model.get_mut(key) {
                for n in versions {
                    if let Some(v) = k.versions.get_mut(n).filter(|v| !v.destroyed) {
                        match op {
                            Op::Delete { .. } => v.deleted = true,
                            Op::Undelete { .. } => v.deleted = false,
                            _ => v.destroyed = true,
                        }
                    }
                }
            }
            204
        }
        Op::MaxVersions { key, max } => {
            model.entry(*key).or_default().max_versions = *max;
            204
        }
        Op::CasRequired { key, on } => {
            model.entry(*key).or_default().cas_required = *on;
            204
        }
        Op::Label { key, label } => {
            model.entry(*key).or_default().label = label.clone();
            204
        }
        Op::DeleteMetadata { key } => {
            model.remove(key);
            204
        }
    }
}

async fn send(kv: &Harness, op: &Op) -> u16 {
    let reply = match op {
        Op::Put { key, value, cas } => {
            let mut body = json!({"data": {"v": value}});
            if let Some(c) = cas {
                body["options"] = json!({"cas": c});
            }
            kv.write(&format!("data/{}", KEYS[*key]), body).await
        }
        Op::Patch { key, value } => {
            kv.patch(
                &format!("data/{}", KEYS[*key]),
                json!({"data": {"p": value}}),
            )
            .await
        }
        Op::DeleteLatest { key } => kv.delete(&format!("data/{}", KEYS[*key])).await,
        Op::Delete { key, versions } => {
            kv.write(
                &format!("delete/{}", KEYS[*key]),
                json!({ "versions": versions }),
            )
            .await
        }
        Op::Undelete { key, versions } => {
            kv.write(
                &format!("undelete/{}", KEYS[*key]),
                json!({ "versions": versions }),
            )
            .await
        }
        Op::Destroy { key, versions } => {
            kv.write(
                &format!("destroy/{}", KEYS[*key]),
                json!({ "versions": versions }),
            )
            .await
        }
        Op::MaxVersions { key, max } => {
            kv.write(
                &format!("metadata/{}", KEYS[*key]),
                json!({ "max_versions": max }),
            )
            .await
        }
        Op::CasRequired { key, on } => {
            kv.write(
                &format!("metadata/{}", KEYS[*key]),
                json!({ "cas_required": on }),
            )
            .await
        }
        Op::Label { key, label } => {
            let custom = match label {
                Some(l) => json!({ "label": l }),
                None => json!({}),
            };
            kv.write(
                &format!("metadata/{}", KEYS[*key]),
                json!({ "custom_metadata": custom }),
            )
            .await
        }
        Op::DeleteMetadata { key } => kv.delete(&format!("metadata/{}", KEYS[*key])).await,
    };
    reply.status
}

/// Compares everything a client can observe with the model.
async fn check(kv: &Harness, model: &BTreeMap<usize, Key>) -> Result<(), String> {
    for (index, name) in KEYS.iter().enumerate() {
        let meta = kv.read(&format!("metadata/{name}")).await;
        let Some(k) = model.get(&index) else {
            if meta.status != 404 {
                return Err(format!("{name}: metadata exists but the model has none"));
            }
            continue;
        };
        let d = meta.data();
        let versions = d["versions"].as_object().ok_or("no versions")?;
        let observed: BTreeMap<u64, (bool, bool)> = versions
            .iter()
            .map(|(n, v)| {
                (
                    n.parse().unwrap(),
                    (v["deletion_time"] != "", v["destroyed"] == true),
                )
            })
            .collect();
        let expected: BTreeMap<u64, (bool, bool)> = k
            .versions
            .iter()
            .map(|(n, v)| (*n, (v.deleted, v.destroyed)))
            .collect();
        let label = k
            .label
            .as_ref()
            .map_or(Value::Null, |l| json!({ "label": l }));
        if observed != expected
            || d["current_version"] != k.current
            || d["oldest_version"] != k.oldest
            || d["max_versions"] != k.max_versions
            || d["cas_required"] != k.cas_required
            || d["custom_metadata"] != label
        {
            return Err(format!("{name}: metadata {d} vs model {k:?}"));
        }
        for n in 1..=k.current + 1 {
            let read = kv
                .call_q(
                    Operation::Read,
                    &format!("data/{name}"),
                    &[("version", &n.to_string())],
                )
                .await;
            match k.readable(n) {
                Some(v) if read.status == 200 && read.data()["data"] == json!(v.data) => {}
                None if read.status == 404 => {}
                other => return Err(format!("{name} v{n}: read {read:?} vs model {other:?}")),
            }
        }
    }
    let scan = kv.scan("metadata").await;
    let mut listed: Vec<String> = scan.data()["keys"]
        .as_array()
        .map(|a| a.iter().map(|k| k.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    listed.sort();
    let mut expected: Vec<String> = model.keys().map(|i| KEYS[*i].to_owned()).collect();
    expected.sort();
    if listed != expected {
        return Err(format!("scan {listed:?} vs model {expected:?}"));
    }
    // Version data is kept exactly for the versions that are neither pruned nor destroyed.
    let stored = kv
        .storage
        .keys()
        .iter()
        .filter(|k| k.starts_with("v2/versions/"))
        .count();
    let live: usize = model
        .values()
        .map(|k| k.versions.values().filter(|v| !v.destroyed).count())
        .sum();
    if stored != live {
        return Err(format!("{stored} stored versions, model has {live}"));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn engine_agrees_with_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let outcome: Result<(), String> = runtime.block_on(async {
            let kv = Harness::kv_v2();
            let mut model = BTreeMap::new();
            for (step, op) in ops.iter().enumerate() {
                let expected = apply(&mut model, op);
                let got = send(&kv, op).await;
                if got != expected {
                    return Err(format!("step {step} {op:?}: status {got}, model {expected}"));
                }
                kv.clock.advance(Duration::from_millis(1));
                check(&kv, &model).await.map_err(|e| format!("step {step} {op:?}: {e}"))?;
            }
            Ok(())
        });
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}
