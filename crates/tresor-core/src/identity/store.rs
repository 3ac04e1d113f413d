//! The identity store: entities, aliases and groups under the barrier
//! (`sys/identity/{entity,alias,group}/<id>`), indexed in memory at unseal (as Vault keeps them
//! in its memdb), so a login finds its entity by alias with hash lookups and no storage read.
//!
//! Writes go to storage first, then to the in-memory index, one change at a time (an async
//! mutex); readers take a short std lock and never wait on storage. Any change bumps a
//! generation counter that invalidates the cached per-entity template contexts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use tokio::sync::Mutex;

use super::model::{Alias, Entity, Group};
use crate::barrier::{Barrier, BarrierOp};
use crate::error::{CoreError, CoreResult};
use crate::random;
use crate::token::entry::now_ns;

pub(crate) const ENTITY_PREFIX: &str = "sys/identity/entity/";
pub(crate) const ALIAS_PREFIX: &str = "sys/identity/alias/";
pub(crate) const GROUP_PREFIX: &str = "sys/identity/group/";

/// Everything an entity's requests need: itself, its aliases, its groups (direct and
/// inherited) and the policies they add to its tokens (`identity_policies`).
#[derive(Debug, Clone)]
pub struct IdentityContext {
    pub entity: Arc<Entity>,
    pub aliases: Vec<Arc<Alias>>,
    pub groups: Vec<Arc<Group>>,
    pub policies: Vec<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    pub entities: HashMap<String, Arc<Entity>>,
    pub entity_names: HashMap<String, String>,
    pub aliases: HashMap<String, Arc<Alias>>,
    /// (mount accessor, alias name) → alias id.
    pub alias_keys: HashMap<(String, String), String>,
    pub groups: HashMap<String, Arc<Group>>,
    pub group_names: HashMap<String, String>,
    /// (mount accessor, group alias name) → group id.
    pub group_alias_keys: HashMap<(String, String), String>,
}

impl Index {
    pub fn aliases_of(&self, entity_id: &str) -> Vec<Arc<Alias>> {
        let mut out: Vec<Arc<Alias>> = self
            .aliases
            .values()
            .filter(|a| a.canonical_id == entity_id)
            .cloned()
            .collect();
        out.sort_by(|a, b| a.created_ns.cmp(&b.created_ns).then(a.id.cmp(&b.id)));
        out
    }

    /// The groups `entity_id` is a direct member of, and those it inherits through groups
    /// that list them as member groups (cycles are cut).
    pub fn groups_of(&self, entity_id: &str) -> (Vec<String>, Vec<String>) {
        let mut direct: Vec<String> = self
            .groups
            .values()
            .filter(|g| g.member_entity_ids.iter().any(|m| m == entity_id))
            .map(|g| g.id.clone())
            .collect();
        direct.sort();
        let mut seen: HashSet<String> = direct.iter().cloned().collect();
        let mut frontier = direct.clone();
        let mut inherited = Vec::new();
        while let Some(child) = frontier.pop() {
            for g in self.groups.values() {
                if g.member_group_ids.contains(&child) && seen.insert(g.id.clone()) {
                    inherited.push(g.id.clone());
                    frontier.push(g.id.clone());
                }
            }
        }
        inherited.sort();
        (direct, inherited)
    }

    /// The groups that list `group_id` as a member.
    pub fn parents_of(&self, group_id: &str) -> Vec<String> {
        let mut parents: Vec<String> = self
            .groups
            .values()
            .filter(|g| g.member_group_ids.iter().any(|m| m == group_id))
            .map(|g| g.id.clone())
            .collect();
        parents.sort();
        parents
    }
}

#[derive(Debug)]
pub struct IdentityStore {
    barrier: Arc<Barrier>,
    index: RwLock<Index>,
    changes: Mutex<()>,
    generation: AtomicU64,
    contexts: RwLock<HashMap<String, (u64, Arc<IdentityContext>)>>,
}

fn record<T: Serialize>(path: String, value: &T) -> CoreResult<BarrierOp> {
    Ok(BarrierOp::Put {
        path,
        value: serde_json::to_vec(value)?.into(),
    })
}

impl IdentityStore {
    /// Loads every entity, alias and group into the in-memory index.
    pub async fn open(barrier: Arc<Barrier>) -> CoreResult<Self> {
        let mut index = Index::default();
        for id in barrier.list(ENTITY_PREFIX).await? {
            if let Some(raw) = barrier.get(&format!("{ENTITY_PREFIX}{id}")).await? {
                let e: Entity = serde_json::from_slice(raw.expose())?;
                index.entity_names.insert(e.name.clone(), e.id.clone());
                index.entities.insert(e.id.clone(), Arc::new(e));
            }
        }
        for id in barrier.list(ALIAS_PREFIX).await? {
            if let Some(raw) = barrier.get(&format!("{ALIAS_PREFIX}{id}")).await? {
                let a: Alias = serde_json::from_slice(raw.expose())?;
                index
                    .alias_keys
                    .insert((a.mount_accessor.clone(), a.name.clone()), a.id.clone());
                index.aliases.insert(a.id.clone(), Arc::new(a));
            }
        }
        for id in barrier.list(GROUP_PREFIX).await? {
            if let Some(raw) = barrier.get(&format!("{GROUP_PREFIX}{id}")).await? {
                let g: Group = serde_json::from_slice(raw.expose())?;
                index.group_names.insert(g.name.clone(), g.id.clone());
                if let Some(alias) = &g.alias {
                    index.group_alias_keys.insert(
                        (alias.mount_accessor.clone(), alias.name.clone()),
                        g.id.clone(),
                    );
                }
                index.groups.insert(g.id.clone(), Arc::new(g));
            }
        }
        Ok(Self {
            barrier,
            index: RwLock::new(index),
            changes: Mutex::new(()),
            generation: AtomicU64::new(0),
            contexts: RwLock::new(HashMap::new()),
        })
    }

    /// Runs `f` on a read view of the index.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Index) -> R) -> CoreResult<R> {
        let guard = self
            .index
            .read()
            .map_err(|_| CoreError::Internal("identity index lock poisoned".to_owned()))?;
        Ok(f(&guard))
    }

    fn write_index(&self, f: impl FnOnce(&mut Index)) -> CoreResult<()> {
        let mut guard = self
            .index
            .write()
            .map_err(|_| CoreError::Internal("identity index lock poisoned".to_owned()))?;
        f(&mut guard);
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// A counter that changes whenever any entity, alias or group changes.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Serialises one change (callers hold it across the storage write and the index update).
    pub(crate) async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.changes.lock().await
    }

    /// Persists entities, aliases and groups in one transaction and indexes them.
    pub(crate) async fn save(
        &self,
        entities: Vec<Entity>,
        aliases: Vec<Alias>,
        groups: Vec<Group>,
    ) -> CoreResult<()> {
        let mut ops = Vec::new();
        for e in &entities {
            ops.push(record(format!("{ENTITY_PREFIX}{}", e.id), e)?);
        }
        for a in &aliases {
            ops.push(record(format!("{ALIAS_PREFIX}{}", a.id), a)?);
        }
        for g in &groups {
            ops.push(record(format!("{GROUP_PREFIX}{}", g.id), g)?);
        }
        self.barrier.transaction(ops).await?;
        self.write_index(|index| {
            for e in entities {
                if let Some(old) = index.entities.get(&e.id)
                    && old.name != e.name
                {
                    index.entity_names.remove(&old.name);
                }
                index.entity_names.insert(e.name.clone(), e.id.clone());
                index.entities.insert(e.id.clone(), Arc::new(e));
            }
            for a in aliases {
                if let Some(old) = index.aliases.get(&a.id) {
                    index
                        .alias_keys
                        .remove(&(old.mount_accessor.clone(), old.name.clone()));
                }
                index
                    .alias_keys
                    .insert((a.mount_accessor.clone(), a.name.clone()), a.id.clone());
                index.aliases.insert(a.id.clone(), Arc::new(a));
            }
            for g in groups {
                if let Some(old) = index.groups.get(&g.id) {
                    if old.name != g.name {
                        index.group_names.remove(&old.name);
                    }
                    if let Some(alias) = &old.alias {
                        index
                            .group_alias_keys
                            .remove(&(alias.mount_accessor.clone(), alias.name.clone()));
                    }
                }
                index.group_names.insert(g.name.clone(), g.id.clone());
                if let Some(alias) = &g.alias {
                    index.group_alias_keys.insert(
                        (alias.mount_accessor.clone(), alias.name.clone()),
                        g.id.clone(),
                    );
                }
                index.groups.insert(g.id.clone(), Arc::new(g));
            }
        })
    }

    /// Deletes records (by storage path) and drops them from the index.
    pub(crate) async fn remove(
        &self,
        entity_ids: &[String],
        alias_ids: &[String],
        group_ids: &[String],
        rewritten_groups: Vec<Group>,
    ) -> CoreResult<()> {
        let mut ops = Vec::new();
        for id in entity_ids {
            ops.push(BarrierOp::Delete {
                path: format!("{ENTITY_PREFIX}{id}"),
            });
        }
        for id in alias_ids {
            ops.push(BarrierOp::Delete {
                path: format!("{ALIAS_PREFIX}{id}"),
            });
        }
        for id in group_ids {
            ops.push(BarrierOp::Delete {
                path: format!("{GROUP_PREFIX}{id}"),
            });
        }
        for g in &rewritten_groups {
            ops.push(record(format!("{GROUP_PREFIX}{}", g.id), g)?);
        }
        self.barrier.transaction(ops).await?;
        self.write_index(|index| {
            for id in entity_ids {
                if let Some(e) = index.entities.remove(id) {
                    index.entity_names.remove(&e.name);
                }
            }
            for id in alias_ids {
                if let Some(a) = index.aliases.remove(id) {
                    index
                        .alias_keys
                        .remove(&(a.mount_accessor.clone(), a.name.clone()));
                }
            }
            for id in group_ids {
                if let Some(g) = index.groups.remove(id) {
                    index.group_names.remove(&g.name);
                    if let Some(alias) = &g.alias {
                        index
                            .group_alias_keys
                            .remove(&(alias.mount_accessor.clone(), alias.name.clone()));
                    }
                }
            }
            for g in rewritten_groups {
                index.groups.insert(g.id.clone(), Arc::new(g));
            }
        })
    }

    /// The entity's context for policy evaluation, cached until the next identity change.
    /// `None` when the entity no longer exists.
    pub fn context(&self, entity_id: &str) -> CoreResult<Option<Arc<IdentityContext>>> {
        let generation = self.generation();
        if let Some((g, ctx)) = self
            .contexts
            .read()
            .ok()
            .and_then(|c| c.get(entity_id).cloned())
            && g == generation
        {
            return Ok(Some(ctx));
        }
        let ctx = self.read(|index| {
            let entity = index.entities.get(entity_id)?.clone();
            let aliases = index.aliases_of(entity_id);
            let (direct, inherited) = index.groups_of(entity_id);
            let groups: Vec<Arc<Group>> = direct
                .iter()
                .chain(inherited.iter())
                .filter_map(|id| index.groups.get(id).cloned())
                .collect();
            let mut policies: Vec<String> = entity.policies.clone();
            for g in &groups {
                policies.extend(g.policies.iter().cloned());
            }
            policies.sort();
            policies.dedup();
            Some(Arc::new(IdentityContext {
                entity,
                aliases,
                groups,
                policies,
            }))
        })?;
        if let Some(ctx) = &ctx
            && let Ok(mut cache) = self.contexts.write()
        {
            if cache.len() > 100_000 {
                cache.clear();
            }
            cache.insert(entity_id.to_owned(), (generation, ctx.clone()));
        }
        Ok(ctx)
    }

    /// The entity behind a login's alias, created with its alias on first login; the alias's
    /// metadata follows the latest login, and external group memberships follow the groups the
    /// method reported (`group_aliases`).
    pub async fn login(
        &self,
        mount_accessor: &str,
        alias: &tresor_sdk::auth::Alias,
        group_aliases: &[String],
    ) -> CoreResult<Arc<Entity>> {
        let key = (mount_accessor.to_owned(), alias.name.clone());
        let metadata = (!alias.metadata.is_empty()).then(|| alias.metadata.clone());
        let groups_wanted: HashSet<String> = self.read(|index| {
            group_aliases
                .iter()
                .filter_map(|name| {
                    index
                        .group_alias_keys
                        .get(&(mount_accessor.to_owned(), name.clone()))
                        .cloned()
                })
                .collect()
        })?;
        // The common case (a known alias, unchanged metadata and groups) needs no lock.
        if let Some(entity) = self.read(|index| {
            let id = index.alias_keys.get(&key)?;
            let a = index.aliases.get(id)?;
            let entity = index.entities.get(&a.canonical_id)?;
            let unchanged = a.metadata == metadata
                && external_memberships_match(index, mount_accessor, &entity.id, &groups_wanted);
            unchanged.then(|| entity.clone())
        })? {
            return Ok(entity);
        }
        let _guard = self.lock().await;
        let now = now_ns();
        let existing = self.read(|index| {
            let id = index.alias_keys.get(&key)?;
            let a = index.aliases.get(id)?;
            let e = index.entities.get(&a.canonical_id)?;
            Some(((**a).clone(), e.clone()))
        })?;
        let mut entities = Vec::new();
        let mut aliases = Vec::new();
        let entity = match existing {
            Some((mut a, entity)) => {
                if a.metadata != metadata {
                    a.metadata = metadata;
                    a.updated_ns = now;
                    aliases.push(a);
                }
                entity
            }
            None => {
                let id = random::uuid();
                let e = Entity {
                    name: format!("entity_{}", id.get(..8).unwrap_or(&id)),
                    id,
                    metadata: None,
                    policies: Vec::new(),
                    disabled: false,
                    created_ns: now,
                    updated_ns: now,
                };
                aliases.push(Alias {
                    id: random::uuid(),
                    canonical_id: e.id.clone(),
                    mount_accessor: mount_accessor.to_owned(),
                    name: alias.name.clone(),
                    metadata,
                    custom_metadata: BTreeMap::new(),
                    created_ns: now,
                    updated_ns: now,
                });
                entities.push(e.clone());
                Arc::new(e)
            }
        };
        let groups = self.read(|index| {
            let mut changed = Vec::new();
            for g in index.groups.values() {
                let Some(ga) = &g.alias else { continue };
                if g.group_type != "external" || ga.mount_accessor != mount_accessor {
                    continue;
                }
                let member = g.member_entity_ids.iter().any(|m| *m == entity.id);
                let wanted = groups_wanted.contains(&g.id);
                if member != wanted {
                    let mut g = (**g).clone();
                    if wanted {
                        g.member_entity_ids.push(entity.id.clone());
                    } else {
                        g.member_entity_ids.retain(|m| *m != entity.id);
                    }
                    g.updated_ns = now;
                    g.modify_index += 1;
                    changed.push(g);
                }
            }
            changed
        })?;
        if !entities.is_empty() || !aliases.is_empty() || !groups.is_empty() {
            self.save(entities, aliases, groups).await?;
        }
        Ok(entity)
    }
}

fn external_memberships_match(
    index: &Index,
    mount_accessor: &str,
    entity_id: &str,
    wanted: &HashSet<String>,
) -> bool {
    index.groups.values().all(|g| {
        let Some(ga) = &g.alias else { return true };
        if g.group_type != "external" || ga.mount_accessor != mount_accessor {
            return true;
        }
        g.member_entity_ids.iter().any(|m| m == entity_id) == wanted.contains(&g.id)
    })
}
