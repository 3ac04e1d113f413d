//! The watched objects, as the controller knows them, and who refers to whom: an
//! `ExternalSecret` to its `SecretStore`/`ClusterSecretStore`, a `VaultStaticSecret` or
//! `VaultDynamicSecret` to its `VaultAuth` and that auth's `VaultConnection`. A reconcile
//! renders one resource with exactly the objects it refers to, read from here (no API call).

use std::collections::HashMap;

use serde_json::Value as Json;

use super::kinds::{Kind, ObjKey};
use crate::model::{Manifests, Resource};

/// ESO's annotation that forces a refresh when its value changes.
pub const FORCE_SYNC_ANNOTATION: &str = "force-sync";

/// One watched object.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: ObjKey,
    /// The `group/version` it was watched in (owner references and Events name it).
    pub api_version: String,
    pub uid: Option<String>,
    pub generation: Option<i64>,
    /// ESO's `force-sync` annotation.
    pub force_sync: Option<String>,
    /// Its `status` (Null when it has none).
    pub status: Json,
    /// The parsed resource, or why it does not parse.
    pub resource: Result<Resource, String>,
}

impl Entry {
    /// What makes a rendering resource due at once when it changes: its spec (generation) or
    /// the force-sync annotation. Status updates (ours included) and other metadata do not.
    pub fn trigger(&self) -> (Option<i64>, Option<&str>) {
        (self.generation, self.force_sync.as_deref())
    }
}

#[derive(Debug, Default)]
pub struct Cache {
    objects: HashMap<ObjKey, Entry>,
}

/// `[namespace/]name`, default name `default` (VSO's references).
fn split_ref(r: &str, ns: &str) -> (String, String) {
    crate::engine::split_ref(r, ns)
}

impl Cache {
    pub fn get(&self, key: &ObjKey) -> Option<&Entry> {
        self.objects.get(key)
    }

    pub fn get_mut(&mut self, key: &ObjKey) -> Option<&mut Entry> {
        self.objects.get_mut(key)
    }

    pub fn insert(&mut self, entry: Entry) -> Option<Entry> {
        self.objects.insert(entry.key.clone(), entry)
    }

    pub fn remove(&mut self, key: &ObjKey) -> Option<Entry> {
        self.objects.remove(key)
    }

    /// Rendering resources.
    pub fn producers(&self) -> impl Iterator<Item = &Entry> {
        self.objects.values().filter(|e| e.key.kind.produces())
    }

    /// The objects a rendering resource refers to (present or not).
    pub fn dependencies(&self, entry: &Entry) -> Vec<ObjKey> {
        let ns = entry.key.namespace.as_str();
        let vso_auth = |auth_ref: Option<&str>| {
            let (auth_ns, auth_name) = split_ref(auth_ref.unwrap_or(""), ns);
            let auth = ObjKey::new(Kind::VaultAuth, &auth_ns, &auth_name);
            let conn_ref = match self.objects.get(&auth).map(|e| &e.resource) {
                Some(Ok(Resource::VaultAuth(a))) => a.spec.vault_connection_ref.clone(),
                _ => None,
            };
            let (conn_ns, conn_name) = split_ref(conn_ref.as_deref().unwrap_or(""), &auth_ns);
            vec![
                auth,
                ObjKey::new(Kind::VaultConnection, &conn_ns, &conn_name),
            ]
        };
        match &entry.resource {
            Ok(Resource::ExternalSecret(es)) => match &es.spec.secret_store_ref {
                Some(r) if r.kind.as_deref() == Some("ClusterSecretStore") => {
                    vec![ObjKey::new(Kind::ClusterSecretStore, "", &r.name)]
                }
                Some(r) => vec![ObjKey::new(Kind::SecretStore, ns, &r.name)],
                None => Vec::new(),
            },
            Ok(Resource::VaultStaticSecret(s)) => vso_auth(s.spec.vault_auth_ref.as_deref()),
            Ok(Resource::VaultDynamicSecret(s)) => vso_auth(s.spec.vault_auth_ref.as_deref()),
            _ => Vec::new(),
        }
    }

    /// Rendering resources that refer to `dep`.
    pub fn dependents(&self, dep: &ObjKey) -> Vec<ObjKey> {
        self.producers()
            .filter(|e| self.dependencies(e).contains(dep))
            .map(|e| e.key.clone())
            .collect()
    }

    /// The inputs of one reconcile: the resource and the objects it refers to, with their
    /// namespaces filled in (the engine resolves references among its inputs).
    pub fn manifests_for(&self, entry: &Entry) -> Option<Manifests> {
        let resource = entry.resource.as_ref().ok()?.clone();
        let mut resources = vec![resource];
        for dep in self.dependencies(entry) {
            if let Some(Ok(r)) = self.objects.get(&dep).map(|e| &e.resource) {
                resources.push(r.clone());
            }
        }
        Some(Manifests {
            resources,
            skipped: 0,
        })
    }

    /// Rendering resources per kind (the `tresor_sync_resources` gauge).
    pub fn counts(&self) -> std::collections::BTreeMap<Kind, u64> {
        let mut out = std::collections::BTreeMap::new();
        for e in self.producers() {
            *out.entry(e.key.kind).or_default() += 1;
        }
        out
    }
}
