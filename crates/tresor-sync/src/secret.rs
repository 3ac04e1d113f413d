//! A target Secret as the sync engine renders it, its content hash, and its YAML.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use tresor_sdk::secret::SecretBytes;

use crate::model::vso::RolloutRestartTarget;

/// The label every Secret `tresor sync` writes carries.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "tresor-sync";
/// SHA-256 of the content (type, data, labels, annotations other than this one).
pub const HASH_ANNOTATION: &str = "tresor.dev/content-hash";
/// `Kind/namespace/name` of the resource the Secret is rendered from.
pub const SOURCE_ANNOTATION: &str = "tresor.dev/source";
/// A dynamic secret's lease id (comma-separated when a resource holds several), so a
/// restarted controller can resume renewing it. A handle, not a value: using it needs a token.
pub const LEASE_ID_ANNOTATION: &str = "tresor.dev/lease-id";
/// When the lease ends (RFC 3339, UTC): the earliest of them with several.
pub const LEASE_EXPIRES_ANNOTATION: &str = "tresor.dev/lease-expires";
/// The lease's TTL as issued, in seconds: the increment its renewals ask for.
pub const LEASE_TTL_ANNOTATION: &str = "tresor.dev/lease-ttl";
/// Leases whose credentials were replaced and that still wait for their revocation, so a
/// controller restarted in the meantime revokes them instead of leaving them to expire:
/// `<lease id>;<ends, Unix ms>;<revoke at, Unix ms, or ->;<retry the restart at, Unix ms>`,
/// comma-separated. Handles, not values.
pub const LEASE_RETIRED_ANNOTATION: &str = "tresor.dev/lease-retired";
/// Annotations that change with renewals and are therefore not part of the content hash
/// (a renewal must not look like a content change, nor restart consumers).
const LEASE_ANNOTATION_PREFIX: &str = "tresor.dev/lease-";

/// Whether an annotation is left out of the content hash.
pub fn unhashed_annotation(key: &str) -> bool {
    key == HASH_ANNOTATION || key.starts_with(LEASE_ANNOTATION_PREFIX)
}

/// RFC 3339 (UTC, whole seconds) of a Unix time in seconds.
pub fn rfc3339(unix_secs: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(unix_secs)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Now, in Unix milliseconds.
pub fn now_millis() -> i64 {
    tresor_sdk::timestamp::now_nanos() / 1_000_000
}

/// How a Secret may be written (ESO's `creationPolicy`, VSO's `destination.create`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WritePolicy {
    /// Create or replace; owned by the resource (owner references in cluster mode).
    Owner,
    /// Create or replace; no owner reference.
    Orphan,
    /// Only merge the data into an existing Secret.
    Merge,
    /// Render and check, write nothing (ESO's `None`).
    None,
}

/// The resource a Secret is rendered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// A dynamic secret's lease, kept for the controller's renewals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    pub lease_id: String,
    pub duration_secs: u64,
    pub renewable: bool,
}

#[derive(Debug, Clone)]
pub struct DesiredSecret {
    pub origin: Origin,
    pub namespace: String,
    pub name: String,
    pub type_: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub data: BTreeMap<String, SecretBytes>,
    pub policy: WritePolicy,
    pub rollout_restart_targets: Vec<RolloutRestartTarget>,
    pub leases: Vec<LeaseInfo>,
}

impl DesiredSecret {
    /// Adds the managed-by label, the source annotation and the content hash.
    pub fn seal(&mut self) {
        self.labels
            .insert(MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned());
        self.annotations.insert(
            SOURCE_ANNOTATION.to_owned(),
            format!(
                "{}/{}/{}",
                self.origin.kind, self.origin.namespace, self.origin.name
            ),
        );
        self.annotations.remove(HASH_ANNOTATION);
        let hash = self.content_hash();
        self.annotations.insert(HASH_ANNOTATION.to_owned(), hash);
        self.annotate_leases(now_millis() / 1000);
    }

    /// Records the leases (ids, end, TTL) in the lease annotations, which the hash leaves out.
    pub fn annotate_leases(&mut self, now_secs: i64) {
        self.annotations
            .retain(|k, _| !k.starts_with(LEASE_ANNOTATION_PREFIX));
        if self.leases.is_empty() {
            return;
        }
        let ids: Vec<&str> = self.leases.iter().map(|l| l.lease_id.as_str()).collect();
        let shortest = self
            .leases
            .iter()
            .map(|l| l.duration_secs)
            .min()
            .unwrap_or(0);
        self.annotations
            .insert(LEASE_ID_ANNOTATION.to_owned(), ids.join(","));
        self.annotations.insert(
            LEASE_EXPIRES_ANNOTATION.to_owned(),
            rfc3339(now_secs.saturating_add(i64::try_from(shortest).unwrap_or(i64::MAX / 2))),
        );
        self.annotations
            .insert(LEASE_TTL_ANNOTATION.to_owned(), shortest.to_string());
    }

    /// `sha256:<hex>` over the type, data, labels and annotations (the hash annotation
    /// excluded), each length-prefixed so no two contents share an encoding.
    pub fn content_hash(&self) -> String {
        let mut h = Sha256::new();
        let mut field = |b: &[u8]| {
            h.update((b.len() as u64).to_be_bytes());
            h.update(b);
        };
        field(self.type_.as_bytes());
        field(&(self.data.len() as u64).to_be_bytes());
        for (k, v) in &self.data {
            field(k.as_bytes());
            field(v.expose());
        }
        for map in [&self.labels, &self.annotations] {
            let entries: Vec<_> = map
                .iter()
                .filter(|(k, _)| !unhashed_annotation(k))
                .collect();
            field(&(entries.len() as u64).to_be_bytes());
            for (k, v) in entries {
                field(k.as_bytes());
                field(v.as_bytes());
            }
        }
        let digest = h.finalize();
        let mut out = String::from("sha256:");
        for b in digest {
            let _ = write!(out, "{b:02x}");
        }
        out
    }

    /// A `v1/Secret` document (starting with `---`), values base64 in `data`; strings are
    /// written as JSON strings, which YAML reads the same. No owner references (files).
    pub fn to_yaml(&self) -> zeroize::Zeroizing<String> {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned());
        let mut out = zeroize::Zeroizing::new(String::new());
        out.push_str("---\napiVersion: v1\nkind: Secret\nmetadata:\n");
        let _ = writeln!(out, "  name: {}", q(&self.name));
        let _ = writeln!(out, "  namespace: {}", q(&self.namespace));
        for (title, map) in [("labels", &self.labels), ("annotations", &self.annotations)] {
            if map.is_empty() {
                continue;
            }
            let _ = writeln!(out, "  {title}:");
            for (k, v) in map {
                let _ = writeln!(out, "    {}: {}", q(k), q(v));
            }
        }
        let _ = writeln!(out, "type: {}", q(&self.type_));
        if self.data.is_empty() {
            out.push_str("data: {}\n");
        } else {
            out.push_str("data:\n");
            for (k, v) in &self.data {
                let encoded = zeroize::Zeroizing::new(
                    base64::engine::general_purpose::STANDARD.encode(v.expose()),
                );
                let _ = writeln!(out, "  {}: \"{}\"", q(k), encoded.as_str());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;

    fn sample() -> DesiredSecret {
        DesiredSecret {
            origin: Origin {
                api_version: "external-secrets.io/v1".into(),
                kind: "ExternalSecret".into(),
                namespace: "ns".into(),
                name: "es".into(),
                uid: None,
            },
            namespace: "ns".into(),
            name: "target".into(),
            type_: "Opaque".into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            data: [("k".to_owned(), SecretBytes::copy_from(b"v\"1"))].into(),
            policy: WritePolicy::Owner,
            rollout_restart_targets: Vec::new(),
            leases: Vec::new(),
        }
    }

    #[test]
    fn hash_changes_with_content_only() {
        let mut a = sample();
        a.seal();
        let mut b = sample();
        b.seal();
        assert_eq!(
            a.annotations[HASH_ANNOTATION],
            b.annotations[HASH_ANNOTATION]
        );
        // Sealing twice is stable.
        let before = a.annotations[HASH_ANNOTATION].clone();
        a.seal();
        assert_eq!(a.annotations[HASH_ANNOTATION], before);
        b.data.insert("k".into(), SecretBytes::copy_from(b"v2"));
        b.seal();
        assert_ne!(
            a.annotations[HASH_ANNOTATION],
            b.annotations[HASH_ANNOTATION]
        );
        // Key/value boundaries are part of the encoding.
        let mut c = sample();
        c.data = [("kv".to_owned(), SecretBytes::copy_from(b"\"1"))].into();
        assert_ne!(c.content_hash(), sample().content_hash());
    }

    #[test]
    fn yaml_is_a_v1_secret_with_base64_data() {
        let mut s = sample();
        s.seal();
        let y = s.to_yaml();
        let docs = crate::yaml::documents(&y).unwrap();
        let doc = &docs[0].1;
        assert_eq!(doc["apiVersion"], "v1");
        assert_eq!(doc["kind"], "Secret");
        assert_eq!(doc["metadata"]["name"], "target");
        assert_eq!(doc["metadata"]["labels"][MANAGED_BY_LABEL], MANAGED_BY);
        assert_eq!(doc["data"]["k"], "diIx");
        assert!(
            doc["metadata"]["annotations"][HASH_ANNOTATION]
                .as_str()
                .unwrap()
                .starts_with("sha256:")
        );
    }
}
