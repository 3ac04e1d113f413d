//! `secret-ref-resolves` and `externalsecret-store-exists`: references between resources of
//! the whole scanned set.
//!
//! Two steps, so that no file's tree outlives its own checks: [`index`] runs on each file
//! while it is parsed and keeps what the checks need — producers of Secrets and their keys,
//! references (name, key, position), stores and store references —; [`check`] runs once every
//! file is indexed.

use std::collections::{BTreeSet, HashMap};

use super::{Ctx, finding};
use crate::config::Config;
use crate::detect::{is_placeholder, normalise_key};
use crate::model::{File, Finding, Resource, containers, pod_specs};
use crate::yaml::{NodeId, NodeSet, Pos, Yaml};

const REF: &str = "secret-ref-resolves";
const STORE: &str = "externalsecret-store-exists";

/// What we know of the keys a producer writes into its Secret.
#[derive(Debug, Clone)]
enum Keys {
    Known(BTreeSet<String>),
    /// Keys decided elsewhere. `warn`: a referenced key is reported as unverifiable
    /// (ExternalSecret `dataFrom`); otherwise accepted (a Vault path's keys).
    Unknown {
        warn: bool,
        why: &'static str,
    },
}

#[derive(Debug, Clone)]
struct Producer {
    namespace: Option<String>,
    /// The producing resource (file, resource index), named in messages.
    file: usize,
    resource: usize,
    keys: Keys,
}

/// What the cross-file checks need of the files indexed so far: no trees, no text.
#[derive(Debug, Default)]
pub struct Index {
    /// Secret name → what produces a Secret of that name.
    producers: HashMap<String, Vec<Producer>>,
    refs: Vec<Ref>,
    /// Store name → SecretStores and ClusterSecretStores of that name.
    stores: HashMap<String, Vec<Store>>,
    store_refs: Vec<StoreRef>,
}

/// Adds a file's producers, references, stores and store references to the index.
pub fn index(ctx: &Ctx<'_>, index: &mut Index) {
    producers(ctx, &mut index.producers);
    collect_refs(ctx, &mut index.refs);
    collect_stores(ctx, &mut index.stores, &mut index.store_refs);
}

fn display(files: &[File], file: usize, resource: usize) -> String {
    files
        .get(file)
        .and_then(|f| f.resources.get(resource))
        .map(Resource::display)
        .unwrap_or_default()
}

/// Namespaces match when equal or when either is unset (Helm output leaves the namespace to
/// the release; such a resource lands wherever its neighbours do).
fn ns_match(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

fn string_keys(y: &Yaml, map: Option<NodeId>) -> BTreeSet<String> {
    map.map(|m| {
        y.entries(m)
            .iter()
            .filter_map(|&(k, _)| y.str(k).map(str::to_owned))
            .collect()
    })
    .unwrap_or_default()
}

/// The keys an ExternalSecret spec produces.
fn external_secret_keys(y: &Yaml, spec: NodeId) -> Keys {
    let mut keys: BTreeSet<String> = y
        .get(spec, "data")
        .map(|d| {
            y.seq(d)
                .iter()
                .filter_map(|&e| y.str_at(e, &["secretKey"]).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let template = y.at(spec, &["target", "template"]);
    if let Some(t) = template {
        if y.get(t, "templateFrom")
            .is_some_and(|tf| !y.seq(tf).is_empty())
        {
            return Keys::Unknown {
                warn: true,
                why: "its template uses templateFrom",
            };
        }
        let template_keys = string_keys(y, y.get(t, "data"));
        if !template_keys.is_empty() {
            // The default merge policy (Replace) writes only the template's keys.
            if y.str_at(t, &["mergePolicy"]) == Some("Merge") {
                keys.extend(template_keys);
            } else {
                keys = template_keys;
            }
        }
    }
    if y.get(spec, "dataFrom")
        .is_some_and(|d| !y.seq(d).is_empty())
    {
        return Keys::Unknown {
            warn: true,
            why: "it uses dataFrom, whose keys come from the store",
        };
    }
    Keys::Known(keys)
}

fn producers(ctx: &Ctx<'_>, out: &mut HashMap<String, Vec<Producer>>) {
    let y = &ctx.src.yaml;
    for (ri, r) in ctx.file.resources.iter().enumerate() {
        let n = r.node;
        let group = r.api_version.split('/').next().unwrap_or("");
        let mut add = |name: Option<&str>, namespace: Option<String>, keys: Keys| {
            let name = name.filter(|s| !s.is_empty()).unwrap_or(&r.name);
            if name.is_empty() || is_placeholder(name) {
                return;
            }
            out.entry(name.to_owned()).or_default().push(Producer {
                namespace,
                file: ctx.fi,
                resource: ri,
                keys,
            });
        };
        match (r.kind.as_str(), group) {
            ("Secret", _) => {
                let mut keys = string_keys(y, y.get(n, "data"));
                keys.extend(string_keys(y, y.get(n, "stringData")));
                let typ = y.str_at(n, &["type"]).unwrap_or("");
                let keys = if typ == "kubernetes.io/service-account-token" {
                    keys.extend(["token", "ca.crt", "namespace"].map(str::to_owned));
                    Keys::Known(keys)
                } else if keys.is_empty() {
                    Keys::Unknown {
                        warn: true,
                        why: "it defines no data (something else fills it)",
                    }
                } else {
                    Keys::Known(keys)
                };
                add(None, r.namespace.clone(), keys);
            }
            ("ExternalSecret", _) => {
                if let Some(spec) = y.get(n, "spec") {
                    let target = y.str_at(spec, &["target", "name"]);
                    add(target, r.namespace.clone(), external_secret_keys(y, spec));
                }
            }
            ("ClusterExternalSecret", _) => {
                if let Some(spec) = y.at(n, &["spec", "externalSecretSpec"]) {
                    let target = y
                        .str_at(spec, &["target", "name"])
                        .or_else(|| y.str_at(n, &["spec", "externalSecretName"]));
                    add(target, None, external_secret_keys(y, spec));
                }
            }
            ("VaultStaticSecret" | "VaultDynamicSecret" | "VaultPKISecret", _) => {
                let target = y.str_at(n, &["spec", "destination", "name"]);
                add(
                    target,
                    r.namespace.clone(),
                    Keys::Unknown {
                        warn: false,
                        why: "its keys come from Vault",
                    },
                );
            }
            ("SealedSecret", _) => {
                let target = y.str_at(n, &["spec", "template", "metadata", "name"]);
                let keys = string_keys(y, y.at(n, &["spec", "encryptedData"]));
                add(target, r.namespace.clone(), Keys::Known(keys));
            }
            ("Certificate", g) if g.starts_with("cert-manager.io") => {
                let target = y.str_at(n, &["spec", "secretName"]);
                let keys = ["tls.crt", "tls.key", "ca.crt"].map(str::to_owned);
                add(target, r.namespace.clone(), Keys::Known(keys.into()));
            }
            (_, g) if g.starts_with("tresor") => {
                let target = y
                    .str_at(n, &["spec", "destination", "name"])
                    .or_else(|| y.str_at(n, &["spec", "target", "name"]));
                add(
                    target,
                    r.namespace.clone(),
                    Keys::Unknown {
                        warn: false,
                        why: "its keys come from Tresor",
                    },
                );
            }
            _ => {}
        }
    }
}

/// A reference found in a pod spec: how ("env X"), the name node, the key, `optional`.
type PodRef = (String, NodeId, Option<(String, NodeId)>, bool);

/// A reference to a Secret (and maybe one of its keys).
#[derive(Debug)]
struct Ref {
    file: usize,
    resource: Option<usize>,
    namespace: Option<String>,
    name: String,
    name_pos: Pos,
    key: Option<(String, Pos)>,
    optional: bool,
    /// "env DB_PASSWORD", "volume certs", "imagePullSecrets", "existingSecret".
    via: String,
}

fn pod_refs(y: &Yaml, spec: NodeId, out: &mut Vec<PodRef>) {
    for c in containers(y, spec) {
        if let Some(env) = y.get(c, "env") {
            for &e in y.seq(env) {
                let Some(r) = y.at(e, &["valueFrom", "secretKeyRef"]) else {
                    continue;
                };
                let var = y.str_at(e, &["name"]).unwrap_or("?");
                if let Some(name) = y.get(r, "name") {
                    let key = y
                        .get(r, "key")
                        .and_then(|k| y.string(k).map(|s| (s.to_owned(), k)));
                    out.push((format!("env {var}"), name, key, y.bool_at(r, &["optional"])));
                }
            }
        }
        if let Some(env_from) = y.get(c, "envFrom") {
            for &e in y.seq(env_from) {
                if let Some(r) = y.get(e, "secretRef")
                    && let Some(name) = y.get(r, "name")
                {
                    out.push((
                        "envFrom".to_owned(),
                        name,
                        None,
                        y.bool_at(r, &["optional"]),
                    ));
                }
            }
        }
    }
    if let Some(vols) = y.get(spec, "volumes") {
        for &v in y.seq(vols) {
            let vname = y.str_at(v, &["name"]).unwrap_or("?").to_owned();
            let mut secret_sources = Vec::new();
            if let Some(s) = y.get(v, "secret") {
                secret_sources.push((s, "secretName"));
            }
            if let Some(sources) = y.at(v, &["projected", "sources"]) {
                for &src in y.seq(sources) {
                    if let Some(s) = y.get(src, "secret") {
                        secret_sources.push((s, "name"));
                    }
                }
            }
            for (s, name_key) in secret_sources {
                let Some(name) = y.get(s, name_key) else {
                    continue;
                };
                let optional = y.bool_at(s, &["optional"]);
                let items: Vec<NodeId> = y
                    .get(s, "items")
                    .map(|i| y.seq(i).to_vec())
                    .unwrap_or_default();
                if items.is_empty() {
                    out.push((format!("volume {vname}"), name, None, optional));
                }
                for item in items {
                    let key = y
                        .get(item, "key")
                        .and_then(|k| y.string(k).map(|s| (s.to_owned(), k)));
                    out.push((format!("volume {vname}"), name, key, optional));
                }
            }
        }
    }
    if let Some(pulls) = y.get(spec, "imagePullSecrets") {
        for &p in y.seq(pulls) {
            if let Some(name) = y.get(p, "name") {
                out.push(("imagePullSecrets".to_owned(), name, None, false));
            }
        }
    }
}

/// Helm-style `existingSecret: name` values, with sibling `existingSecret…Key: key` entries.
fn existing_secret_refs(
    y: &Yaml,
    node: NodeId,
    depth: usize,
    seen: &mut NodeSet,
    out: &mut Vec<(NodeId, Vec<(String, NodeId)>)>,
) {
    if depth > 64 || !seen.insert(node) {
        return;
    }
    if y.is_map(node) {
        let entries = y.entries(node);
        let mut names = Vec::new();
        let mut keys = Vec::new();
        for &(k, v) in entries.iter() {
            let raw_key = y.str(k).unwrap_or("");
            // Cheap filter first: this walk visits every key of every document.
            if raw_key.len() < 14
                || !raw_key
                    .get(..8)
                    .is_some_and(|p| p.eq_ignore_ascii_case("existing"))
            {
                continue;
            }
            let norm = normalise_key(raw_key);
            if !norm.starts_with("existingsecret") || y.string(v).is_none() {
                continue;
            }
            if norm == "existingsecret" || norm == "existingsecretname" {
                names.push(v);
            } else if norm.ends_with("key")
                && let Some(s) = y.string(v)
            {
                keys.push((s.to_owned(), v));
            }
        }
        for n in names {
            out.push((n, keys.clone()));
        }
        for &(_, v) in entries.iter() {
            existing_secret_refs(y, v, depth + 1, seen, out);
        }
    } else {
        for &item in y.seq(node) {
            existing_secret_refs(y, item, depth + 1, seen, out);
        }
    }
}

fn collect_refs(ctx: &Ctx<'_>, refs: &mut Vec<Ref>) {
    let fi = ctx.fi;
    let file = ctx.file;
    let y = &ctx.src.yaml;
    for (ri, r) in file.resources.iter().enumerate() {
        let mut raw = Vec::new();
        for spec in pod_specs(y, r) {
            pod_refs(y, spec, &mut raw);
        }
        if r.kind == "ServiceAccount"
            && let Some(pulls) = y.get(r.node, "imagePullSecrets")
        {
            for &p in y.seq(pulls) {
                if let Some(name) = y.get(p, "name") {
                    raw.push(("imagePullSecrets".to_owned(), name, None, false));
                }
            }
        }
        for (via, name_node, key, optional) in raw {
            let Some(name) = y.string(name_node) else {
                continue;
            };
            refs.push(Ref {
                file: fi,
                resource: Some(ri),
                namespace: r.namespace.clone(),
                name: name.to_owned(),
                name_pos: y.pos(name_node),
                key: key.map(|(k, node)| (k, y.pos(node))),
                optional,
                via,
            });
        }
    }
    // existingSecret values anywhere (values files, rendered resources).
    let mut found = Vec::new();
    let mut seen = NodeSet::new(y);
    for doc in &y.docs {
        if let Some(root) = doc.root {
            existing_secret_refs(y, root, 0, &mut seen, &mut found);
        }
    }
    for (name_node, keys) in found {
        let Some(name) = y.string(name_node) else {
            continue;
        };
        let pos = y.pos(name_node);
        let resource = file
            .resources
            .iter()
            .position(|r| r.start_line <= pos.line && pos.line <= r.end_line);
        let namespace = resource
            .and_then(|i| file.resources.get(i))
            .and_then(|r| r.namespace.clone());
        if keys.is_empty() {
            refs.push(Ref {
                file: fi,
                resource,
                namespace,
                name: name.to_owned(),
                name_pos: pos,
                key: None,
                optional: false,
                via: "existingSecret".to_owned(),
            });
        } else {
            for (key, key_node) in keys {
                refs.push(Ref {
                    file: fi,
                    resource,
                    namespace: namespace.clone(),
                    name: name.to_owned(),
                    name_pos: pos,
                    key: Some((key, y.pos(key_node))),
                    optional: false,
                    via: "existingSecret".to_owned(),
                });
            }
        }
    }
}

/// The cross-file checks over the whole index; `files` are the report's (for messages).
pub fn check(index: &Index, files: &[File], config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    let producers = &index.producers;
    for r in &index.refs {
        if is_placeholder(&r.name) || config.knows_secret(r.namespace.as_deref(), &r.name) {
            continue;
        }
        let Some(file) = files.get(r.file) else {
            continue;
        };
        let owner = r
            .resource
            .and_then(|i| file.resources.get(i))
            .map(Resource::display)
            .map_or_else(String::new, |d| format!("{d}: "));
        let optional = if r.optional { " (optional)" } else { "" };
        let all = producers.get(&r.name).map(Vec::as_slice).unwrap_or(&[]);
        let here: Vec<&Producer> = all
            .iter()
            .filter(|p| ns_match(p.namespace.as_deref(), r.namespace.as_deref()))
            .collect();
        if here.is_empty() {
            let message = match all.first() {
                Some(p) => format!(
                    "{owner}{} references Secret {:?}{optional}, which is defined only in namespace {:?} ({}), not {:?}",
                    r.via,
                    r.name,
                    p.namespace.as_deref().unwrap_or(""),
                    display(files, p.file, p.resource),
                    r.namespace.as_deref().unwrap_or("")
                ),
                None => format!(
                    "{owner}{} references Secret {:?}{optional}, which no Secret, ExternalSecret or Vault/Tresor sync resource in the scanned files produces",
                    r.via, r.name
                ),
            };
            out.extend(finding(
                config, REF, r.file, r.resource, r.name_pos, message, None, r.optional,
            ));
            continue;
        }
        let Some((key, key_pos)) = &r.key else {
            continue;
        };
        if is_placeholder(key) {
            continue;
        }
        let mut unverifiable: Option<(&Producer, &str)> = None;
        let mut defined: BTreeSet<&str> = BTreeSet::new();
        let mut ok = false;
        for p in &here {
            match &p.keys {
                Keys::Known(keys) => {
                    if keys.contains(key) {
                        ok = true;
                    }
                    defined.extend(keys.iter().map(String::as_str));
                }
                Keys::Unknown { warn: false, .. } => ok = true,
                Keys::Unknown { warn: true, why } => unverifiable = Some((p, why)),
            }
        }
        if ok {
            continue;
        }
        if let Some((p, why)) = unverifiable {
            out.extend(finding(
                config,
                REF,
                r.file,
                r.resource,
                *key_pos,
                format!(
                    "{owner}{} references key {key:?} of Secret {:?}{optional}, which cannot be verified: {} produces it, and {why}",
                    r.via,
                    r.name,
                    display(files, p.file, p.resource)
                ),
                None,
                true,
            ));
        } else {
            let list: Vec<&str> = defined.into_iter().collect();
            out.extend(finding(
                config,
                REF,
                r.file,
                r.resource,
                *key_pos,
                format!(
                    "{owner}{} references key {key:?} of Secret {:?}{optional}, which is not among its keys ({})",
                    r.via,
                    r.name,
                    list.join(", ")
                ),
                None,
                r.optional,
            ));
        }
    }
    check_stores(index, files, config, &mut out);
    out
}

#[derive(Debug)]
struct Store {
    namespace: Option<String>,
    cluster: bool,
    /// ClusterSecretStore `spec.conditions[].namespaces`, when it restricts by names only.
    allowed: Option<Vec<String>>,
}

/// An ExternalSecret's reference to a store.
#[derive(Debug)]
struct StoreRef {
    file: usize,
    /// The ExternalSecret.
    resource: usize,
    name: String,
    cluster: bool,
    pos: Pos,
}

fn collect_stores(
    ctx: &Ctx<'_>,
    stores: &mut HashMap<String, Vec<Store>>,
    store_refs: &mut Vec<StoreRef>,
) {
    let y = &ctx.src.yaml;
    for r in &ctx.file.resources {
        let cluster = match r.kind.as_str() {
            "SecretStore" => false,
            "ClusterSecretStore" => true,
            _ => continue,
        };
        let allowed = if cluster {
            y.at(r.node, &["spec", "conditions"]).and_then(|c| {
                let conds = y.seq(c);
                // Label selectors and regexes cannot be judged from files: no restriction.
                if conds.is_empty()
                    || conds.iter().any(|&c| {
                        y.get(c, "namespaceSelector").is_some()
                            || y.get(c, "namespaceRegexes").is_some()
                    })
                {
                    return None;
                }
                Some(
                    conds
                        .iter()
                        .filter_map(|&c| y.get(c, "namespaces"))
                        .flat_map(|ns| {
                            y.seq(ns)
                                .iter()
                                .filter_map(|&n| y.string(n).map(str::to_owned))
                        })
                        .collect(),
                )
            })
        } else {
            None
        };
        stores.entry(r.name.clone()).or_default().push(Store {
            namespace: r.namespace.clone(),
            cluster,
            allowed,
        });
    }
    for (ri, r) in ctx.file.resources.iter().enumerate() {
        if r.kind != "ExternalSecret" {
            continue;
        }
        let Some(spec) = y.get(r.node, "spec") else {
            continue;
        };
        let mut refs: Vec<NodeId> = y.get(spec, "secretStoreRef").into_iter().collect();
        for list in ["data", "dataFrom"] {
            if let Some(l) = y.get(spec, list) {
                refs.extend(
                    y.seq(l)
                        .iter()
                        .filter_map(|&e| y.at(e, &["sourceRef", "storeRef"])),
                );
            }
        }
        for sr in refs {
            let Some(name_node) = y.get(sr, "name") else {
                continue;
            };
            let Some(name) = y.string(name_node) else {
                continue;
            };
            if is_placeholder(name) {
                continue;
            }
            let kind = y.str_at(sr, &["kind"]).unwrap_or("SecretStore");
            store_refs.push(StoreRef {
                file: ctx.fi,
                resource: ri,
                name: name.to_owned(),
                cluster: kind == "ClusterSecretStore",
                pos: y.pos(name_node),
            });
        }
    }
}

fn check_stores(index: &Index, files: &[File], config: &Config, out: &mut Vec<Finding>) {
    let stores = &index.stores;
    for sr in &index.store_refs {
        let Some(r) = files
            .get(sr.file)
            .and_then(|f| f.resources.get(sr.resource))
        else {
            continue;
        };
        let name = sr.name.as_str();
        let cluster = sr.cluster;
        if config.knows_store(
            if cluster {
                None
            } else {
                r.namespace.as_deref()
            },
            name,
        ) {
            continue;
        }
        let candidates: Vec<&Store> = stores
            .get(name)
            .map(|v| v.iter().filter(|s| s.cluster == cluster).collect())
            .unwrap_or_default();
        let es = r.display();
        let message = if cluster {
            match candidates.first() {
                None => Some(format!(
                    "{es}: ClusterSecretStore {name:?} is not defined in the scanned files"
                )),
                Some(s) => match (&s.allowed, &r.namespace) {
                    (Some(allowed), Some(ns)) if !allowed.contains(ns) => Some(format!(
                        "{es}: ClusterSecretStore {name:?} does not serve namespace {ns:?} (its spec.conditions list {})",
                        allowed.join(", ")
                    )),
                    _ => None,
                },
            }
        } else if candidates
            .iter()
            .any(|s| ns_match(s.namespace.as_deref(), r.namespace.as_deref()))
        {
            None
        } else if let Some(other) = candidates.first() {
            Some(format!(
                "{es}: SecretStore {name:?} is in namespace {:?}; a SecretStore serves only its own namespace (cross-namespace reference; use a ClusterSecretStore)",
                other.namespace.as_deref().unwrap_or("")
            ))
        } else if stores
            .get(name)
            .is_some_and(|v| v.iter().any(|s| s.cluster))
        {
            Some(format!(
                "{es}: SecretStore {name:?} is not defined, but a ClusterSecretStore of that name is: set secretStoreRef.kind: ClusterSecretStore"
            ))
        } else {
            Some(format!(
                "{es}: SecretStore {name:?} is not defined in its namespace in the scanned files"
            ))
        };
        if let Some(message) = message {
            out.extend(finding(
                config,
                STORE,
                sr.file,
                Some(sr.resource),
                sr.pos,
                message,
                None,
                false,
            ));
        }
    }
}
