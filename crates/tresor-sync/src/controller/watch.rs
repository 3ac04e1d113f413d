//! One kube-rs watcher per kind and namespace scope (all namespaces, or each `--namespace`),
//! feeding the controller's loop with upserts and removals. A re-list after a lost watch
//! (410 Gone) removes what the new list no longer holds.

use std::collections::HashSet;
use std::pin::pin;

use futures::StreamExt as _;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PartialObjectMeta};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use serde_json::Value as Json;
use tokio::sync::mpsc;

use super::cache::{Entry, FORCE_SYNC_ANNOTATION};
use super::kinds::{KindInfo, ObjKey};
use super::log;

/// What a watcher tells the controller's loop.
#[derive(Debug)]
pub enum Msg {
    Upsert(Box<Entry>),
    Remove(ObjKey),
    /// The watcher's first list is complete (or it failed: the controller must not wait for
    /// a kind the cluster does not serve or it may not read).
    Listed {
        scope: String,
    },
    /// A Secret tresor sync manages changed (`version`: its resourceVersion) or was deleted
    /// (`None`). Only its metadata is watched: no Secret value reaches the controller this way.
    Secret {
        namespace: String,
        name: String,
        version: Option<String>,
    },
}

/// The scope name of a watcher (for `Listed`): `Kind` or `Kind/namespace`.
pub fn scope_name(info: &KindInfo, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if info.namespaced => format!("{}/{ns}", info.kind),
        _ => info.kind.to_string(),
    }
}

pub fn api_resource(info: &KindInfo, version: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(info.group, version, info.kind.name()),
        info.plural,
    )
}

/// An object as the controller keeps it.
pub fn entry(info: &KindInfo, version: &str, obj: &DynamicObject) -> Option<Entry> {
    let name = obj.metadata.name.clone()?;
    let namespace = if info.namespaced {
        obj.metadata.namespace.clone().unwrap_or_default()
    } else {
        String::new()
    };
    let api_version = format!("{}/{version}", info.group);
    let mut json = serde_json::to_value(obj).ok()?;
    // List items of a real API server carry no kind/apiVersion.
    if let Some(o) = json.as_object_mut() {
        o.insert("apiVersion".into(), Json::String(api_version.clone()));
        o.insert("kind".into(), Json::String(info.kind.name().into()));
    }
    let status = json.get("status").cloned().unwrap_or(Json::Null);
    let resource = match crate::model::parse_object(json) {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err("not a resource tresor sync reads".to_owned()),
        Err(message) => Err(message),
    };
    Some(Entry {
        key: ObjKey::new(info.kind, &namespace, &name),
        api_version,
        uid: obj.metadata.uid.clone(),
        generation: obj.metadata.generation,
        force_sync: obj
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(FORCE_SYNC_ANNOTATION).cloned()),
        status,
        resource,
    })
}

/// Watches one kind in one scope until the receiver is gone.
pub async fn run(
    client: kube::Client,
    info: KindInfo,
    version: &'static str,
    namespace: Option<String>,
    tx: mpsc::Sender<Msg>,
) {
    let ar = api_resource(&info, version);
    let api: Api<DynamicObject> = match namespace.as_deref() {
        Some(ns) if info.namespaced => Api::namespaced_with(client, ns, &ar),
        _ => Api::all_with(client, &ar),
    };
    let scope = scope_name(&info, namespace.as_deref());
    let mut stream = pin!(watcher::watcher(api, watcher::Config::default()).default_backoff());
    let mut known: HashSet<ObjKey> = HashSet::new();
    let mut listing: Option<HashSet<ObjKey>> = None;
    let mut listed = false;
    let mut last_error = String::new();
    while let Some(event) = stream.next().await {
        let mut out = Vec::new();
        match event {
            Ok(Event::Init) => listing = Some(HashSet::new()),
            Ok(Event::InitApply(obj)) => {
                if let Some(e) = entry(&info, version, &obj) {
                    if let Some(l) = listing.as_mut() {
                        l.insert(e.key.clone());
                    }
                    known.insert(e.key.clone());
                    out.push(Msg::Upsert(Box::new(e)));
                }
            }
            Ok(Event::InitDone) => {
                if let Some(seen) = listing.take() {
                    for gone in known.difference(&seen) {
                        out.push(Msg::Remove(gone.clone()));
                    }
                    known = seen;
                }
                if !listed {
                    listed = true;
                    out.push(Msg::Listed {
                        scope: scope.clone(),
                    });
                }
                last_error.clear();
            }
            Ok(Event::Apply(obj)) => {
                if let Some(e) = entry(&info, version, &obj) {
                    known.insert(e.key.clone());
                    out.push(Msg::Upsert(Box::new(e)));
                }
            }
            Ok(Event::Delete(obj)) => {
                if let Some(e) = entry(&info, version, &obj) {
                    known.remove(&e.key);
                    out.push(Msg::Remove(e.key));
                }
            }
            Err(e) => {
                let reason = e.to_string();
                if reason != last_error {
                    log::warn(&format!(
                        "watching {scope} ({}/{version} {}): {reason}",
                        info.group, info.plural
                    ));
                    last_error = reason;
                }
                if !listed {
                    listed = true;
                    out.push(Msg::Listed {
                        scope: scope.clone(),
                    });
                }
            }
        }
        for msg in out {
            if tx.send(msg).await.is_err() {
                return;
            }
        }
    }
}

/// Watches the metadata of the Secrets tresor sync manages in one namespace (label
/// `app.kubernetes.io/managed-by=tresor-sync`), until the receiver is gone. Per namespace,
/// because the least-privilege RBAC grants Secrets only in the namespaces it manages.
pub async fn run_secrets(client: kube::Client, namespace: String, tx: mpsc::Sender<Msg>) {
    // Metadata-only list and watch requests: no Secret data is sent to the controller.
    let api: Api<PartialObjectMeta<k8s_openapi::api::core::v1::Secret>> =
        Api::namespaced(client, &namespace);
    let config = watcher::Config::default().labels(&format!(
        "{}={}",
        crate::secret::MANAGED_BY_LABEL,
        crate::secret::MANAGED_BY
    ));
    let mut stream = pin!(watcher::watcher(api, config).default_backoff());
    let mut last_error = String::new();
    while let Some(event) = stream.next().await {
        let (meta, deleted) = match event {
            Ok(Event::InitApply(obj) | Event::Apply(obj)) => (obj.metadata, false),
            Ok(Event::Delete(obj)) => (obj.metadata, true),
            Ok(Event::Init | Event::InitDone) => continue,
            Err(e) => {
                let reason = e.to_string();
                if reason != last_error {
                    log::warn(&format!(
                        "watching the Secrets tresor sync manages in {namespace}: {reason}"
                    ));
                    last_error = reason;
                }
                continue;
            }
        };
        last_error.clear();
        let Some(name) = meta.name else {
            continue;
        };
        let msg = Msg::Secret {
            namespace: namespace.clone(),
            name,
            version: if deleted { None } else { meta.resource_version },
        };
        if tx.send(msg).await.is_err() {
            return;
        }
    }
}
