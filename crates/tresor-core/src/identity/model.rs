//! Entities, entity aliases and groups as stored, and their wire forms (Vault's
//! `identity/entity/id/:id`, `identity/entity-alias/id/:id`, `identity/group/id/:id`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::token::entry::rfc3339;

/// One identity: a person or workload, known to one or more auth methods through aliases.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entity {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub policies: Vec<String>,
    #[serde(default)]
    pub disabled: bool,
    pub created_ns: i64,
    pub updated_ns: i64,
}

/// How one auth method mount knows an entity (`mount_accessor` + `name` is unique).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Alias {
    pub id: String,
    pub canonical_id: String,
    pub mount_accessor: String,
    pub name: String,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub custom_metadata: BTreeMap<String, String>,
    pub created_ns: i64,
    pub updated_ns: i64,
}

/// An `external` group's alias: the group name an auth method reports (a JWT `groups` claim).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GroupAlias {
    pub id: String,
    pub mount_accessor: String,
    pub name: String,
    pub created_ns: i64,
    pub updated_ns: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub name: String,
    /// `internal` (members set by hand) or `external` (members follow logins).
    pub group_type: String,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub policies: Vec<String>,
    #[serde(default)]
    pub member_entity_ids: Vec<String>,
    #[serde(default)]
    pub member_group_ids: Vec<String>,
    #[serde(default)]
    pub alias: Option<GroupAlias>,
    pub created_ns: i64,
    pub updated_ns: i64,
    #[serde(default)]
    pub modify_index: u64,
}

/// What a mount accessor names, for the `mount_path`/`mount_type` of aliases.
#[derive(Debug, Clone, Default)]
pub struct MountRef {
    pub path: String,
    pub mount_type: String,
}

fn or_null<T: Serialize>(value: &Option<T>) -> Value {
    value.as_ref().map_or(Value::Null, |v| json!(v))
}

fn list_or_null(items: &[String]) -> Value {
    if items.is_empty() {
        Value::Null
    } else {
        json!(items)
    }
}

impl Alias {
    /// The entity read's `aliases[]` item and the alias read.
    pub fn to_json(&self, mount: &MountRef) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("canonical_id".into(), json!(self.canonical_id));
        m.insert("creation_time".into(), rfc3339(self.created_ns));
        m.insert("custom_metadata".into(), json!(self.custom_metadata));
        m.insert("id".into(), json!(self.id));
        m.insert("last_update_time".into(), rfc3339(self.updated_ns));
        m.insert("local".into(), json!(false));
        m.insert("merged_from_canonical_ids".into(), Value::Null);
        m.insert("metadata".into(), or_null(&self.metadata));
        m.insert("mount_accessor".into(), json!(self.mount_accessor));
        m.insert("mount_path".into(), json!(mount.path));
        m.insert("mount_type".into(), json!(mount.mount_type));
        m.insert("name".into(), json!(self.name));
        m
    }

    /// The `key_info` of a LIST of aliases.
    pub fn key_info(&self, mount: &MountRef) -> Value {
        json!({
            "canonical_id": self.canonical_id,
            "custom_metadata": self.custom_metadata,
            "local": false,
            "metadata": or_null(&self.metadata),
            "mount_accessor": self.mount_accessor,
            "mount_path": mount.path,
            "mount_type": mount.mount_type,
            "name": self.name,
        })
    }
}

impl Entity {
    pub fn to_json(
        &self,
        aliases: Vec<Map<String, Value>>,
        direct_groups: &[String],
        inherited_groups: &[String],
    ) -> Map<String, Value> {
        let mut all_groups: Vec<String> = direct_groups.to_vec();
        all_groups.extend(inherited_groups.iter().cloned());
        let mut m = Map::new();
        m.insert(
            "aliases".into(),
            Value::Array(aliases.into_iter().map(Value::Object).collect()),
        );
        m.insert("creation_time".into(), rfc3339(self.created_ns));
        m.insert("direct_group_ids".into(), json!(direct_groups));
        m.insert("disabled".into(), json!(self.disabled));
        m.insert("group_ids".into(), json!(all_groups));
        m.insert("id".into(), json!(self.id));
        m.insert("inherited_group_ids".into(), json!(inherited_groups));
        m.insert("last_update_time".into(), rfc3339(self.updated_ns));
        m.insert("merged_entity_ids".into(), Value::Null);
        m.insert("metadata".into(), or_null(&self.metadata));
        m.insert("name".into(), json!(self.name));
        m.insert("namespace_id".into(), json!("root"));
        m.insert("policies".into(), json!(self.policies));
        m
    }
}

impl Group {
    pub fn to_json(&self, parents: &[String], alias_mount: &MountRef) -> Map<String, Value> {
        let alias = match &self.alias {
            Some(a) => json!({
                "canonical_id": self.id,
                "creation_time": rfc3339(a.created_ns),
                "id": a.id,
                "last_update_time": rfc3339(a.updated_ns),
                "merged_from_canonical_ids": null,
                "metadata": null,
                "mount_accessor": a.mount_accessor,
                "mount_path": alias_mount.path,
                "mount_type": alias_mount.mount_type,
                "name": a.name,
            }),
            None => json!({}),
        };
        let mut m = Map::new();
        m.insert("alias".into(), alias);
        m.insert("creation_time".into(), rfc3339(self.created_ns));
        m.insert("id".into(), json!(self.id));
        m.insert("last_update_time".into(), rfc3339(self.updated_ns));
        m.insert(
            "member_entity_ids".into(),
            list_or_null(&self.member_entity_ids),
        );
        m.insert(
            "member_group_ids".into(),
            list_or_null(&self.member_group_ids),
        );
        m.insert("metadata".into(), or_null(&self.metadata));
        m.insert("modify_index".into(), json!(self.modify_index));
        m.insert("name".into(), json!(self.name));
        m.insert("namespace_id".into(), json!("root"));
        m.insert("parent_group_ids".into(), list_or_null(parents));
        m.insert("policies".into(), list_or_null(&self.policies));
        m.insert("type".into(), json!(self.group_type));
        m
    }
}
