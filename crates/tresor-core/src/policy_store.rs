//! Stored ACL policies (`sys/policy/<name>` under the barrier), parsed once and cached, and
//! compiled ACLs cached per policy set. Any policy change clears both caches.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::barrier::Barrier;
use crate::error::{CoreError, CoreResult};
use crate::policy::{Acl, Policy};
use crate::token::entry::now_ns;

const PREFIX: &str = "sys/policy/";

/// Vault's and OpenBao's `default` policy: every token gets it unless asked not to.
pub const DEFAULT_POLICY: &str = include_str!("policy_default.hcl");

/// A policy as stored: the text the operator wrote, plus bookkeeping.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredPolicy {
    pub name: String,
    pub policy: String,
    pub version: u64,
    #[serde(default)]
    pub cas_required: bool,
    pub modified_ns: i64,
}

#[derive(Debug)]
pub struct PolicyStore {
    barrier: Arc<Barrier>,
    parsed: RwLock<HashMap<String, Arc<Policy>>>,
    acls: RwLock<HashMap<Vec<String>, Arc<Acl>>>,
}

fn root_policy() -> CoreResult<Arc<Policy>> {
    Policy::parse("root", "")
        .map(Arc::new)
        .map_err(|e| CoreError::Internal(e.to_string()))
}

impl PolicyStore {
    /// Opens the store; on first unseal writes the `default` policy.
    pub async fn open(barrier: Arc<Barrier>) -> CoreResult<Self> {
        let store = Self {
            barrier,
            parsed: RwLock::new(HashMap::new()),
            acls: RwLock::new(HashMap::new()),
        };
        if store.read("default").await?.is_none() {
            store
                .write_record("default", DEFAULT_POLICY, 1, false)
                .await?;
        }
        Ok(store)
    }

    async fn write_record(
        &self,
        name: &str,
        text: &str,
        version: u64,
        cas_required: bool,
    ) -> CoreResult<()> {
        let record = StoredPolicy {
            name: name.to_owned(),
            policy: text.to_owned(),
            version,
            cas_required,
            modified_ns: now_ns(),
        };
        self.barrier
            .put(&format!("{PREFIX}{name}"), &serde_json::to_vec(&record)?)
            .await?;
        self.invalidate();
        Ok(())
    }

    fn invalidate(&self) {
        if let Ok(mut p) = self.parsed.write() {
            p.clear();
        }
        if let Ok(mut a) = self.acls.write() {
            a.clear();
        }
    }

    pub async fn read(&self, name: &str) -> CoreResult<Option<StoredPolicy>> {
        if name == "root" {
            return Ok(Some(StoredPolicy {
                name: "root".to_owned(),
                policy: String::new(),
                version: 0,
                cas_required: false,
                modified_ns: 0,
            }));
        }
        match self.barrier.get(&format!("{PREFIX}{name}")).await? {
            Some(raw) => Ok(Some(serde_json::from_slice(raw.expose())?)),
            None => Ok(None),
        }
    }

    pub async fn exists(&self, name: &str) -> CoreResult<bool> {
        Ok(name == "root" || self.read(name).await?.is_some())
    }

    /// Creates or replaces a policy. `cas`: the version the caller expects (`-1` or `0`: the
    /// policy must not exist yet).
    pub async fn write(&self, name: &str, text: &str, cas: Option<i64>) -> CoreResult<()> {
        if name == "root" {
            return Err(CoreError::InvalidRequest(
                "cannot update \"root\" policy".to_owned(),
            ));
        }
        if name == crate::wrapping::WRAPPING_POLICY {
            return Err(CoreError::InvalidRequest(format!(
                "cannot update {name:?} policy"
            )));
        }
        if name.is_empty() {
            return Err(CoreError::InvalidRequest(
                "policy name must be provided".to_owned(),
            ));
        }
        Policy::parse(name, text)
            .map_err(|e| CoreError::InvalidRequest(format!("failed to parse policy: {e}")))?;
        let current = self.read(name).await?;
        let current_version = current.as_ref().map_or(0, |c| c.version);
        let cas_required = current.as_ref().is_some_and(|c| c.cas_required);
        match cas {
            Some(-1) if current.is_some() => {
                return Err(CoreError::InvalidRequest(
                    "check-and-set parameter set to -1 on existing entry".to_owned(),
                ));
            }
            Some(-1) => {}
            Some(expected) if u64::try_from(expected).ok() != Some(current_version) => {
                return Err(CoreError::InvalidRequest(format!(
                    "check-and-set parameter {expected} did not match the current version {current_version}"
                )));
            }
            None if cas_required => {
                return Err(CoreError::InvalidRequest(
                    "check-and-set parameter required for this call".to_owned(),
                ));
            }
            _ => {}
        }
        self.write_record(name, text, current_version + 1, cas_required)
            .await
    }

    pub async fn delete(&self, name: &str) -> CoreResult<()> {
        match name {
            "root" => {
                return Err(CoreError::InvalidRequest(
                    "cannot delete \"root\" policy".to_owned(),
                ));
            }
            "default" => {
                return Err(CoreError::InvalidRequest(
                    "cannot delete default policy".to_owned(),
                ));
            }
            _ => {}
        }
        self.barrier.delete(&format!("{PREFIX}{name}")).await?;
        self.invalidate();
        Ok(())
    }

    /// Every policy name, `root` included, sorted.
    pub async fn list(&self) -> CoreResult<Vec<String>> {
        let mut names: Vec<String> = self.barrier.list(PREFIX).await?;
        names.retain(|n| !n.ends_with('/'));
        names.push("root".to_owned());
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn parsed(&self, name: &str) -> CoreResult<Option<Arc<Policy>>> {
        if let Some(hit) = self.parsed.read().ok().and_then(|p| p.get(name).cloned()) {
            return Ok(Some(hit));
        }
        let policy = if name == "root" {
            root_policy()?
        } else if name == crate::wrapping::WRAPPING_POLICY {
            Arc::new(
                Policy::parse(name, crate::wrapping::WRAPPING_POLICY_TEXT)
                    .map_err(|e| CoreError::Internal(e.to_string()))?,
            )
        } else {
            let Some(stored) = self.read(name).await? else {
                return Ok(None);
            };
            Arc::new(Policy::parse(name, &stored.policy).map_err(|e| {
                CoreError::Internal(format!("stored policy {name:?} no longer parses: {e}"))
            })?)
        };
        if let Ok(mut p) = self.parsed.write() {
            p.insert(name.to_owned(), policy.clone());
        }
        Ok(Some(policy))
    }

    /// The ACL of a token acting for an identity entity. Without templated rules among the
    /// policies it is the shared per-set ACL; otherwise it is compiled for this entity and
    /// cached under the set plus the entity id and the identity store's generation (so any
    /// identity change, like any policy change, recompiles).
    pub async fn acl_for_identity(
        &self,
        policies: &[String],
        identity: &crate::identity::IdentityContext,
        generation: u64,
    ) -> CoreResult<Arc<Acl>> {
        let mut parsed = Vec::with_capacity(policies.len());
        for name in policies {
            if let Some(p) = self.parsed(name).await? {
                parsed.push(p);
            }
        }
        if !parsed.iter().any(|p| p.rules().iter().any(|r| r.templated)) {
            return self.acl(policies).await;
        }
        let mut key = policies.to_vec();
        key.push(format!("\0entity:{}@{generation}", identity.entity.id));
        if let Some(hit) = self.acls.read().ok().and_then(|a| a.get(&key).cloned()) {
            return Ok(hit);
        }
        let acl = Arc::new(Acl::with_identity(&parsed, identity));
        if let Ok(mut a) = self.acls.write() {
            // Entries of older identity generations are never hit again: bound the cache.
            if a.len() >= 50_000 {
                a.clear();
            }
            a.insert(key, acl.clone());
        }
        Ok(acl)
    }

    /// The compiled ACL for a token's policies (missing policies contribute nothing).
    pub async fn acl(&self, policies: &[String]) -> CoreResult<Arc<Acl>> {
        if let Some(hit) = self.acls.read().ok().and_then(|a| a.get(policies).cloned()) {
            return Ok(hit);
        }
        let mut parsed = Vec::with_capacity(policies.len());
        for name in policies {
            if let Some(p) = self.parsed(name).await? {
                parsed.push(p);
            }
        }
        let acl = Arc::new(Acl::new(&parsed));
        if let Ok(mut a) = self.acls.write() {
            a.insert(policies.to_vec(), acl.clone());
        }
        Ok(acl)
    }
}
