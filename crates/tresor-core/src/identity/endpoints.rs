//! `identity/*`: entities, entity aliases, groups and group aliases, as Vault's identity
//! secrets engine serves them (create/update by POST, read, delete, LIST by id or name).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use tresor_sdk::engine::Operation;

use super::model::{Alias, Entity, Group, GroupAlias, MountRef};
use super::store::{IdentityStore, Index};
use crate::core::{Active, Core};
use crate::error::{CoreError, CoreResult};
use crate::logical::{LogicalRequest, LogicalResponse};
use crate::mount::MountKind;
use crate::params;
use crate::random;
use crate::token::entry::now_ns;
use crate::token::roles::normalise_policies;

fn bad(message: impl Into<String>) -> CoreError {
    CoreError::InvalidRequest(message.into())
}

/// Vault's `TypeKVPairs`: a map of strings, or a list of `key=value` strings.
fn kv_pairs(data: &Map<String, Value>, key: &str) -> CoreResult<Option<BTreeMap<String, String>>> {
    match params::get(data, key) {
        None => Ok(None),
        Some(Value::Array(items)) => {
            let mut out = BTreeMap::new();
            for (i, item) in items.iter().enumerate() {
                let pair = item.as_str().and_then(|s| s.split_once('='));
                let Some((k, v)) = pair.filter(|(k, _)| !k.is_empty()) else {
                    return Err(bad(format!(
                        "Field validation failed: error converting input for field \"{key}\": invalid key pair at index {i} in field \"{key}\""
                    )));
                };
                out.insert(k.to_owned(), v.to_owned());
            }
            Ok(Some(out))
        }
        Some(Value::Object(_)) => params::string_map(data, key),
        Some(_) => Err(bad(format!(
            "Field validation failed: error converting input for field \"{key}\": invalid key pair at index 0 in field \"{key}\""
        ))),
    }
}

fn policies(data: &Map<String, Value>) -> CoreResult<Option<Vec<String>>> {
    Ok(params::string_list(data, "policies")?.map(normalise_policies))
}

fn with_data(data: Map<String, Value>) -> Option<LogicalResponse> {
    Some(LogicalResponse::data(data))
}

fn list(
    keys: Vec<String>,
    key_info: Option<Map<String, Value>>,
) -> CoreResult<Option<LogicalResponse>> {
    if keys.is_empty() {
        return Err(CoreError::NotFound);
    }
    let mut data = Map::new();
    if let Some(info) = key_info {
        data.insert("key_info".into(), Value::Object(info));
    }
    data.insert("keys".into(), json!(keys));
    Ok(with_data(data))
}

impl Core {
    /// Serves `identity/<relative>` for an authorised caller.
    pub(crate) async fn identity_endpoint(
        &self,
        active: &Active,
        request: &LogicalRequest,
        relative: &str,
    ) -> CoreResult<Option<LogicalResponse>> {
        let store = &active.identity;
        let mounts = |accessor: &str| -> MountRef {
            let table = active.mounts.table(MountKind::Auth);
            table
                .by_accessor(accessor)
                .map(|m| MountRef {
                    path: format!("auth/{}", m.entry.path),
                    mount_type: m.entry.engine_type.clone(),
                })
                .unwrap_or_default()
        };
        let op = request.operation;
        let data = &request.data;
        let segments: Vec<&str> = relative.split('/').collect();
        let write = matches!(op, Operation::Update | Operation::Create);
        match (segments.as_slice(), op) {
            (["entity"], _) if write => entity_write(store, data, None).await,
            (["entity", "id", ""], Operation::List) => {
                let (keys, info) = store.read(|index| {
                    let mut ids: Vec<String> = index.entities.keys().cloned().collect();
                    ids.sort();
                    let mut info = Map::new();
                    for id in &ids {
                        if let Some(e) = index.entities.get(id) {
                            let mut item = Map::new();
                            let aliases: Vec<Value> = index
                                .aliases_of(id)
                                .iter()
                                .map(|a| {
                                    let m = mounts(&a.mount_accessor);
                                    json!({"id": a.id, "mount_accessor": a.mount_accessor,
                                           "mount_path": m.path, "mount_type": m.mount_type,
                                           "name": a.name})
                                })
                                .collect();
                            if !aliases.is_empty() {
                                item.insert("aliases".into(), Value::Array(aliases));
                            }
                            item.insert("name".into(), json!(e.name));
                            info.insert(id.clone(), Value::Object(item));
                        }
                    }
                    (ids, info)
                })?;
                list(keys, Some(info))
            }
            (["entity", "name", ""], Operation::List) => {
                let mut names =
                    store.read(|i| i.entity_names.keys().cloned().collect::<Vec<_>>())?;
                names.sort();
                list(names, None)
            }
            (["entity", by @ ("id" | "name"), key], _) if !key.is_empty() => {
                let id = store.read(|i| match *by {
                    "id" => i.entities.contains_key(*key).then(|| (*key).to_owned()),
                    _ => i.entity_names.get(*key).cloned(),
                })?;
                match op {
                    Operation::Read => {
                        let Some(id) = id else {
                            return Err(CoreError::NotFound);
                        };
                        store
                            .read(|index| {
                                entity_json(index, &id, &mounts).map(LogicalResponse::data)
                            })?
                            .map(Some)
                            .ok_or(CoreError::NotFound)
                    }
                    Operation::Delete => {
                        if let Some(id) = id {
                            delete_entity(store, &id).await?;
                        }
                        Ok(None)
                    }
                    _ if write => write_by_key(store, Record::Entity, by, id, key, data).await,
                    _ => Err(CoreError::UnsupportedOperation),
                }
            }
            (["entity-alias"], _) if write => {
                alias_write(store, data, None, &|a| !mounts(a).path.is_empty()).await
            }
            (["entity-alias", "id", ""], Operation::List) => {
                let (keys, info) = store.read(|index| {
                    let mut ids: Vec<String> = index.aliases.keys().cloned().collect();
                    ids.sort();
                    let mut info = Map::new();
                    for id in &ids {
                        if let Some(a) = index.aliases.get(id) {
                            info.insert(id.clone(), a.key_info(&mounts(&a.mount_accessor)));
                        }
                    }
                    (ids, info)
                })?;
                list(keys, Some(info))
            }
            (["entity-alias", "id", id], _) if !id.is_empty() => {
                let alias = store.read(|i| i.aliases.get(*id).cloned())?;
                match op {
                    Operation::Read => {
                        let a = alias.ok_or(CoreError::NotFound)?;
                        let mut d = a.to_json(&mounts(&a.mount_accessor));
                        d.insert("namespace_id".into(), json!("root"));
                        Ok(Some(LogicalResponse::data(d)))
                    }
                    Operation::Delete => {
                        if alias.is_some() {
                            let _guard = store.lock().await;
                            store
                                .remove(&[], &[(*id).to_owned()], &[], Vec::new())
                                .await?;
                        }
                        Ok(None)
                    }
                    _ if write => {
                        if alias.is_none() {
                            return Err(bad("invalid alias ID provided"));
                        }
                        alias_write(store, data, Some(id), &|a| !mounts(a).path.is_empty()).await
                    }
                    _ => Err(CoreError::UnsupportedOperation),
                }
            }
            (["group"], _) if write => group_write(store, data, None).await,
            (["group", "id", ""], Operation::List) => {
                let (keys, info) = store.read(|index| {
                    let mut ids: Vec<String> = index.groups.keys().cloned().collect();
                    ids.sort();
                    let mut info = Map::new();
                    for id in &ids {
                        if let Some(g) = index.groups.get(id) {
                            let mut item = Map::new();
                            if let Some(a) = &g.alias {
                                let m = mounts(&a.mount_accessor);
                                item.insert(
                                    "alias".into(),
                                    json!({"id": a.id,
                                    "mount_accessor": a.mount_accessor, "mount_path": m.path,
                                    "mount_type": m.mount_type, "name": a.name}),
                                );
                            }
                            item.insert("name".into(), json!(g.name));
                            item.insert(
                                "num_member_entities".into(),
                                json!(g.member_entity_ids.len()),
                            );
                            item.insert(
                                "num_parent_groups".into(),
                                json!(index.parents_of(id).len()),
                            );
                            info.insert(id.clone(), Value::Object(item));
                        }
                    }
                    (ids, info)
                })?;
                list(keys, Some(info))
            }
            (["group", "name", ""], Operation::List) => {
                let mut names =
                    store.read(|i| i.group_names.keys().cloned().collect::<Vec<_>>())?;
                names.sort();
                list(names, None)
            }
            (["group", by @ ("id" | "name"), key], _) if !key.is_empty() => {
                let id = store.read(|i| match *by {
                    "id" => i.groups.contains_key(*key).then(|| (*key).to_owned()),
                    _ => i.group_names.get(*key).cloned(),
                })?;
                match op {
                    Operation::Read => {
                        let Some(id) = id else {
                            return Err(CoreError::NotFound);
                        };
                        store
                            .read(|index| {
                                index.groups.get(&id).map(|g| {
                                    let m = g
                                        .alias
                                        .as_ref()
                                        .map(|a| mounts(&a.mount_accessor))
                                        .unwrap_or_default();
                                    LogicalResponse::data(g.to_json(&index.parents_of(&id), &m))
                                })
                            })?
                            .map(Some)
                            .ok_or(CoreError::NotFound)
                    }
                    Operation::Delete => {
                        if let Some(id) = id {
                            delete_group(store, &id).await?;
                        }
                        Ok(None)
                    }
                    _ if write => write_by_key(store, Record::Group, by, id, key, data).await,
                    _ => Err(CoreError::UnsupportedOperation),
                }
            }
            (["group-alias"], _) if write => {
                group_alias_write(store, data, None, &|a| !mounts(a).path.is_empty()).await
            }
            (["group-alias", "id", ""], Operation::List) => {
                let (keys, info) = store.read(|index| {
                    let mut pairs: Vec<(String, Value)> = index
                        .groups
                        .values()
                        .filter_map(|g| {
                            let a = g.alias.as_ref()?;
                            let m = mounts(&a.mount_accessor);
                            Some((
                                a.id.clone(),
                                json!({"canonical_id": g.id,
                                "custom_metadata": null, "local": false, "metadata": null,
                                "mount_accessor": a.mount_accessor, "mount_path": m.path,
                                "mount_type": m.mount_type, "name": a.name}),
                            ))
                        })
                        .collect();
                    pairs.sort_by(|a, b| a.0.cmp(&b.0));
                    let keys = pairs.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
                    (keys, pairs.into_iter().collect::<Map<String, Value>>())
                })?;
                list(keys, Some(info))
            }
            (["group-alias", "id", id], _) if !id.is_empty() => {
                let group = store.read(|i| {
                    i.groups
                        .values()
                        .find(|g| g.alias.as_ref().is_some_and(|a| a.id == *id))
                        .cloned()
                })?;
                match op {
                    Operation::Read => group
                        .and_then(|g| {
                            let a = g.alias.as_ref()?;
                            let m = mounts(&a.mount_accessor);
                            let mut d = Map::new();
                            d.insert("canonical_id".into(), json!(g.id));
                            d.insert(
                                "creation_time".into(),
                                crate::token::entry::rfc3339(a.created_ns),
                            );
                            d.insert("id".into(), json!(a.id));
                            d.insert(
                                "last_update_time".into(),
                                crate::token::entry::rfc3339(a.updated_ns),
                            );
                            d.insert("merged_from_canonical_ids".into(), Value::Null);
                            d.insert("metadata".into(), Value::Null);
                            d.insert("mount_accessor".into(), json!(a.mount_accessor));
                            d.insert("mount_path".into(), json!(m.path));
                            d.insert("mount_type".into(), json!(m.mount_type));
                            d.insert("name".into(), json!(a.name));
                            d.insert("custom_metadata".into(), Value::Null);
                            d.insert("local".into(), json!(false));
                            d.insert("namespace_id".into(), json!("root"));
                            Some(Some(LogicalResponse::data(d)))
                        })
                        .ok_or(CoreError::NotFound),
                    Operation::Delete => {
                        if let Some(g) = group {
                            let _guard = store.lock().await;
                            let mut g = (*g).clone();
                            g.alias = None;
                            g.updated_ns = now_ns();
                            g.modify_index += 1;
                            store.save(Vec::new(), Vec::new(), vec![g]).await?;
                        }
                        Ok(None)
                    }
                    _ if write => {
                        if group.is_none() {
                            return Err(bad("invalid group alias ID provided"));
                        }
                        group_alias_write(store, data, Some(id), &|a| !mounts(a).path.is_empty())
                            .await
                    }
                    _ => Err(CoreError::UnsupportedOperation),
                }
            }
            _ => Err(CoreError::UnsupportedPath),
        }
    }
}

/// The two records served by id and by name (`identity/{entity,group}/{id,name}/:key`).
#[derive(Debug, Clone, Copy)]
enum Record {
    Entity,
    Group,
}

/// A write to `identity/<record>/{id,name}/:key`: updates the record found (`id`), refuses an
/// unknown id, and creates a record under an unknown name, as Vault does.
async fn write_by_key(
    store: &IdentityStore,
    record: Record,
    by: &str,
    id: Option<String>,
    key: &str,
    data: &Map<String, Value>,
) -> CoreResult<Option<LogicalResponse>> {
    let write = |data: Map<String, Value>, target: Option<String>| async move {
        match record {
            Record::Entity => entity_write(store, &data, target.as_deref()).await,
            Record::Group => group_write(store, &data, target.as_deref()).await,
        }
    };
    match (by, id) {
        (_, Some(id)) => write(data.clone(), Some(id)).await,
        ("id", None) => Err(bad(match record {
            Record::Entity => "entity not found from id",
            Record::Group => "group not found from id",
        })),
        (_, None) => {
            let mut named = data.clone();
            named.insert("name".into(), json!(key));
            write(named, None).await
        }
    }
}

fn entity_json(
    index: &Index,
    id: &str,
    mounts: &dyn Fn(&str) -> MountRef,
) -> Option<Map<String, Value>> {
    let e = index.entities.get(id)?;
    let aliases = index
        .aliases_of(id)
        .iter()
        .map(|a| a.to_json(&mounts(&a.mount_accessor)))
        .collect();
    let (direct, inherited) = index.groups_of(id);
    Some(e.to_json(aliases, &direct, &inherited))
}

/// `identity/entity` (create, or update the entity named by `id` or `name`) and
/// `identity/entity/{id,name}/:key` (update `target`).
async fn entity_write(
    store: &IdentityStore,
    data: &Map<String, Value>,
    target: Option<&str>,
) -> CoreResult<Option<LogicalResponse>> {
    let metadata = kv_pairs(data, "metadata")?;
    let policies = policies(data)?;
    let disabled = params::boolean(data, "disabled")?;
    let name = params::string(data, "name")?.filter(|n| !n.is_empty());
    let given_id = params::string(data, "id")?.filter(|n| !n.is_empty());
    let _guard = store.lock().await;
    let existing = store.read(|index| {
        let id = target
            .map(str::to_owned)
            .or_else(|| {
                given_id
                    .clone()
                    .filter(|id| index.entities.contains_key(id))
            })
            .or_else(|| {
                name.as_ref()
                    .and_then(|n| index.entity_names.get(n).cloned())
            })?;
        index.entities.get(&id).map(|e| (**e).clone())
    })?;
    if let Some(n) = &name {
        let clash = store.read(|i| {
            i.entity_names
                .get(n)
                .is_some_and(|id| existing.as_ref().is_none_or(|e| e.id != *id))
        })?;
        if clash {
            return Err(bad("entity name is already in use"));
        }
    }
    let now = now_ns();
    let created = existing.is_none();
    let mut entity = existing.unwrap_or_else(|| {
        let id = given_id.clone().unwrap_or_else(random::uuid);
        Entity {
            name: format!("entity_{}", id.get(..8).unwrap_or(&id)),
            id,
            metadata: None,
            policies: Vec::new(),
            disabled: false,
            created_ns: now,
            updated_ns: now,
        }
    });
    if let Some(n) = name {
        entity.name = n;
    }
    if let Some(m) = metadata {
        entity.metadata = Some(m);
    }
    if let Some(p) = policies {
        entity.policies = p;
    }
    if let Some(d) = disabled {
        entity.disabled = d;
    }
    entity.updated_ns = now;
    let (id, name) = (entity.id.clone(), entity.name.clone());
    store.save(vec![entity], Vec::new(), Vec::new()).await?;
    if !created {
        return Ok(None);
    }
    let mut out = Map::new();
    out.insert("aliases".into(), Value::Null);
    out.insert("id".into(), json!(id));
    out.insert("name".into(), json!(name));
    Ok(with_data(out))
}

async fn delete_entity(store: &IdentityStore, id: &str) -> CoreResult<()> {
    let _guard = store.lock().await;
    let (aliases, groups) = store.read(|index| {
        let aliases: Vec<String> = index.aliases_of(id).iter().map(|a| a.id.clone()).collect();
        let groups: Vec<Group> = index
            .groups
            .values()
            .filter(|g| g.member_entity_ids.iter().any(|m| m == id))
            .map(|g| {
                let mut g = (**g).clone();
                g.member_entity_ids.retain(|m| m != id);
                g.modify_index += 1;
                g
            })
            .collect();
        (aliases, groups)
    })?;
    store.remove(&[id.to_owned()], &aliases, &[], groups).await
}

async fn alias_write(
    store: &IdentityStore,
    data: &Map<String, Value>,
    target: Option<&str>,
    accessor_exists: &(dyn Fn(&str) -> bool + Sync),
) -> CoreResult<Option<LogicalResponse>> {
    let name = params::string(data, "name")?.filter(|n| !n.is_empty());
    let accessor = params::string(data, "mount_accessor")?.filter(|n| !n.is_empty());
    let canonical = params::string(data, "canonical_id")?.filter(|n| !n.is_empty());
    let custom = params::string_map(data, "custom_metadata")?;
    let _guard = store.lock().await;
    let existing = match target {
        Some(id) => store.read(|i| i.aliases.get(id).map(|a| (**a).clone()))?,
        None => None,
    };
    if existing.is_none() && (name.is_none() || accessor.is_none()) {
        return Err(bad("'id' or 'mount_accessor' and 'name' must be provided"));
    }
    if let Some(acc) = &accessor
        && !accessor_exists(acc)
    {
        return Err(bad(format!("invalid mount accessor {acc:?}")));
    }
    let now = now_ns();
    let mut alias = existing.clone().unwrap_or(Alias {
        id: random::uuid(),
        canonical_id: String::new(),
        mount_accessor: String::new(),
        name: String::new(),
        metadata: None,
        custom_metadata: BTreeMap::new(),
        created_ns: now,
        updated_ns: now,
    });
    if let Some(n) = name {
        alias.name = n;
    }
    if let Some(a) = accessor {
        alias.mount_accessor = a;
    }
    if let Some(c) = custom {
        alias.custom_metadata = c;
    }
    let clash = store.read(|i| {
        i.alias_keys
            .get(&(alias.mount_accessor.clone(), alias.name.clone()))
            .is_some_and(|other| *other != alias.id)
    })?;
    if clash {
        return Err(bad(
            "alias with combination of mount accessor and name already exists",
        ));
    }
    let mut entities = Vec::new();
    match canonical {
        Some(c) => {
            if !store.read(|i| i.entities.contains_key(&c))? {
                return Err(bad("invalid canonical ID"));
            }
            alias.canonical_id = c;
        }
        None if alias.canonical_id.is_empty() => {
            // As in Vault, an alias without an entity gets a new one.
            let id = random::uuid();
            entities.push(Entity {
                name: format!("entity_{}", id.get(..8).unwrap_or(&id)),
                id: id.clone(),
                metadata: None,
                policies: Vec::new(),
                disabled: false,
                created_ns: now,
                updated_ns: now,
            });
            alias.canonical_id = id;
        }
        None => {}
    }
    alias.updated_ns = now;
    let (id, canonical_id) = (alias.id.clone(), alias.canonical_id.clone());
    store.save(entities, vec![alias], Vec::new()).await?;
    let mut out = Map::new();
    out.insert("canonical_id".into(), json!(canonical_id));
    out.insert("id".into(), json!(id));
    Ok(with_data(out))
}

async fn group_write(
    store: &IdentityStore,
    data: &Map<String, Value>,
    target: Option<&str>,
) -> CoreResult<Option<LogicalResponse>> {
    let metadata = kv_pairs(data, "metadata")?;
    let policies = policies(data)?;
    let name = params::string(data, "name")?.filter(|n| !n.is_empty());
    let given_id = params::string(data, "id")?.filter(|n| !n.is_empty());
    let group_type = params::string(data, "type")?.filter(|t| !t.is_empty());
    let members = params::string_list(data, "member_entity_ids")?;
    let member_groups = params::string_list(data, "member_group_ids")?;
    if let Some(t) = &group_type
        && t != "internal"
        && t != "external"
    {
        return Err(bad(format!("invalid group type {t:?}")));
    }
    let _guard = store.lock().await;
    let mut children: Vec<Group> = Vec::new();
    let existing = store.read(|index| {
        let id = target
            .map(str::to_owned)
            .or_else(|| given_id.clone().filter(|id| index.groups.contains_key(id)))
            .or_else(|| {
                name.as_ref()
                    .and_then(|n| index.group_names.get(n).cloned())
            })?;
        index.groups.get(&id).map(|g| (**g).clone())
    })?;
    let now = now_ns();
    let created = existing.is_none();
    let mut group = existing.unwrap_or_else(|| {
        let id = given_id.clone().unwrap_or_else(random::uuid);
        Group {
            name: format!("group_{}", id.get(..8).unwrap_or(&id)),
            id,
            group_type: group_type.clone().unwrap_or_else(|| "internal".to_owned()),
            metadata: None,
            policies: Vec::new(),
            member_entity_ids: Vec::new(),
            member_group_ids: Vec::new(),
            alias: None,
            created_ns: now,
            updated_ns: now,
            modify_index: 0,
        }
    });
    if let Some(t) = &group_type
        && !created
        && *t != group.group_type
    {
        return Err(bad("group type cannot be changed"));
    }
    if let Some(m) = members {
        if group.group_type == "external" && !m.is_empty() {
            return Err(bad(
                "member entities can't be set manually for external groups",
            ));
        }
        if let Some(bad_id) =
            store.read(|i| m.iter().find(|id| !i.entities.contains_key(*id)).cloned())?
        {
            return Err(bad(format!("invalid entity ID {bad_id:?}")));
        }
        group.member_entity_ids = m;
    }
    if let Some(m) = member_groups {
        if group.group_type == "external" && !m.is_empty() {
            return Err(bad("member groups can't be set for external groups"));
        }
        if m.contains(&group.id) {
            return Err(bad("member group ID cannot be the group itself"));
        }
        if let Some(bad_id) =
            store.read(|i| m.iter().find(|id| !i.groups.contains_key(*id)).cloned())?
        {
            return Err(bad(format!("invalid member group ID {bad_id:?}")));
        }
        // A group that gains a parent changes too (its parent_group_ids), as in Vault.
        let added: Vec<String> = m
            .iter()
            .filter(|id| !group.member_group_ids.contains(id))
            .cloned()
            .collect();
        children = store.read(|i| {
            added
                .iter()
                .filter_map(|id| i.groups.get(id).map(|g| (**g).clone()))
                .map(|mut g| {
                    g.modify_index += 1;
                    g
                })
                .collect()
        })?;
        group.member_group_ids = m;
    }
    if let Some(n) = name {
        group.name = n;
    }
    if let Some(m) = metadata {
        group.metadata = Some(m);
    }
    if let Some(p) = policies {
        group.policies = p;
    }
    group.updated_ns = now;
    group.modify_index += 1;
    let (id, name) = (group.id.clone(), group.name.clone());
    children.push(group);
    store.save(Vec::new(), Vec::new(), children).await?;
    if !created {
        return Ok(None);
    }
    let mut out = Map::new();
    out.insert("id".into(), json!(id));
    out.insert("name".into(), json!(name));
    Ok(with_data(out))
}

async fn delete_group(store: &IdentityStore, id: &str) -> CoreResult<()> {
    let _guard = store.lock().await;
    let parents = store.read(|index| {
        index
            .groups
            .values()
            .filter(|g| g.member_group_ids.iter().any(|m| m == id))
            .map(|g| {
                let mut g = (**g).clone();
                g.member_group_ids.retain(|m| m != id);
                g
            })
            .collect::<Vec<_>>()
    })?;
    store.remove(&[], &[], &[id.to_owned()], parents).await
}

async fn group_alias_write(
    store: &IdentityStore,
    data: &Map<String, Value>,
    target: Option<&str>,
    accessor_exists: &(dyn Fn(&str) -> bool + Sync),
) -> CoreResult<Option<LogicalResponse>> {
    let name = params::string(data, "name")?.filter(|n| !n.is_empty());
    let accessor = params::string(data, "mount_accessor")?.filter(|n| !n.is_empty());
    let canonical = params::string(data, "canonical_id")?.filter(|n| !n.is_empty());
    let _guard = store.lock().await;
    let current = match target {
        Some(id) => store.read(|i| {
            i.groups
                .values()
                .find(|g| g.alias.as_ref().is_some_and(|a| a.id == id))
                .map(|g| (**g).clone())
        })?,
        None => None,
    };
    if current.is_none() && (name.is_none() || accessor.is_none()) {
        return Err(bad("missing 'name' or 'mount_accessor'"));
    }
    if let Some(acc) = &accessor
        && !accessor_exists(acc)
    {
        return Err(bad(format!("invalid mount accessor {acc:?}")));
    }
    let group_id = canonical
        .clone()
        .or_else(|| current.as_ref().map(|g| g.id.clone()))
        .ok_or_else(|| bad("missing 'canonical_id'"))?;
    let Some(mut group) = store.read(|i| i.groups.get(&group_id).map(|g| (**g).clone()))? else {
        return Err(bad("invalid group ID given in 'canonical_id'"));
    };
    if group.group_type != "external" {
        return Err(bad("alias can't be set on an internal group"));
    }
    let now = now_ns();
    let mut alias = current
        .and_then(|g| g.alias)
        .or_else(|| group.alias.clone())
        .unwrap_or(GroupAlias {
            id: random::uuid(),
            mount_accessor: String::new(),
            name: String::new(),
            created_ns: now,
            updated_ns: now,
        });
    if let Some(n) = name {
        alias.name = n;
    }
    if let Some(a) = accessor {
        alias.mount_accessor = a;
    }
    alias.updated_ns = now;
    let clash = store.read(|i| {
        i.group_alias_keys
            .get(&(alias.mount_accessor.clone(), alias.name.clone()))
            .is_some_and(|g| *g != group.id)
    })?;
    if clash {
        return Err(bad(
            "combination of mount accessor and name is already in use",
        ));
    }
    let id = alias.id.clone();
    group.alias = Some(alias);
    group.updated_ns = now;
    group.modify_index += 1;
    store.save(Vec::new(), Vec::new(), vec![group]).await?;
    let mut out = Map::new();
    out.insert("canonical_id".into(), json!(group_id));
    out.insert("id".into(), json!(id));
    Ok(with_data(out))
}
