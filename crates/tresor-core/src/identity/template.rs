//! Policy path templating (Vault's `identitytpl`): `{{identity.entity.id}}`,
//! `{{identity.entity.name}}`, `{{identity.entity.metadata.<key>}}`,
//! `{{identity.entity.aliases.<mount accessor>.{id,name}}}`,
//! `{{identity.entity.aliases.<mount accessor>.{metadata,custom_metadata}.<key>}}`,
//! `{{identity.groups.ids.<group id>.{name,metadata.<key>}}}` and
//! `{{identity.groups.names.<group name>.{id,metadata.<key>}}}`.
//!
//! A template that names something the entity does not have fails to render, and the rule is
//! left out of the ACL (it grants nothing), as in Vault. A rendered value containing `*`, `+`,
//! `{`, `}` or a path traversal is refused too: metadata set by a login must not widen a path.

use std::collections::BTreeMap;

use super::store::IdentityContext;

fn lookup(map: &Option<BTreeMap<String, String>>, key: &str) -> Option<String> {
    map.as_ref().and_then(|m| m.get(key).cloned())
}

fn resolve(ctx: &IdentityContext, expr: &str) -> Option<String> {
    let parts: Vec<&str> = expr.split('.').collect();
    match parts.as_slice() {
        ["identity", "entity", "id"] => Some(ctx.entity.id.clone()),
        ["identity", "entity", "name"] => Some(ctx.entity.name.clone()),
        ["identity", "entity", "metadata", key] => lookup(&ctx.entity.metadata, key),
        ["identity", "entity", "aliases", accessor, rest @ ..] => {
            let alias = ctx.aliases.iter().find(|a| a.mount_accessor == *accessor)?;
            match rest {
                ["id"] => Some(alias.id.clone()),
                ["name"] => Some(alias.name.clone()),
                ["metadata", key] => lookup(&alias.metadata, key),
                ["custom_metadata", key] => alias.custom_metadata.get(*key).cloned(),
                _ => None,
            }
        }
        ["identity", "groups", "ids", id, rest @ ..] => {
            let group = ctx.groups.iter().find(|g| g.id == *id)?;
            match rest {
                ["name"] => Some(group.name.clone()),
                ["metadata", key] => lookup(&group.metadata, key),
                _ => None,
            }
        }
        ["identity", "groups", "names", name, rest @ ..] => {
            let group = ctx.groups.iter().find(|g| g.name == *name)?;
            match rest {
                ["id"] => Some(group.id.clone()),
                ["metadata", key] => lookup(&group.metadata, key),
                _ => None,
            }
        }
        _ => None,
    }
}

fn safe_value(value: &str) -> bool {
    !value.is_empty()
        && !value.contains(['*', '+', '{', '}', '\0'])
        && value.split('/').all(|s| s != ".." && s != ".")
}

/// Renders every `{{…}}` in `pattern`; `None` when one cannot be filled.
pub fn render(pattern: &str, ctx: &IdentityContext) -> Option<String> {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(start) = rest.find("{{") {
        out.push_str(rest.get(..start)?);
        let after = rest.get(start + 2..)?;
        let end = after.find("}}")?;
        let expr = after.get(..end)?.trim();
        let value = resolve(ctx, expr)?;
        if !safe_value(&value) {
            return None;
        }
        out.push_str(&value);
        rest = after.get(end + 2..)?;
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::identity::model::{Alias, Entity, Group};

    fn ctx() -> IdentityContext {
        let entity = Arc::new(Entity {
            id: "e-1".into(),
            name: "alice".into(),
            metadata: Some(BTreeMap::from([("team".into(), "payments".into())])),
            policies: vec![],
            disabled: false,
            created_ns: 0,
            updated_ns: 0,
        });
        let alias = Arc::new(Alias {
            id: "a-1".into(),
            canonical_id: "e-1".into(),
            mount_accessor: "auth_kubernetes_1234".into(),
            name: "uid-9".into(),
            metadata: Some(BTreeMap::from([
                ("service_account_namespace".into(), "shop".into()),
                ("evil".into(), "a/*".into()),
            ])),
            custom_metadata: BTreeMap::new(),
            created_ns: 0,
            updated_ns: 0,
        });
        let group = Arc::new(Group {
            id: "g-1".into(),
            name: "devs".into(),
            group_type: "internal".into(),
            metadata: None,
            policies: vec![],
            member_entity_ids: vec!["e-1".into()],
            member_group_ids: vec![],
            alias: None,
            created_ns: 0,
            updated_ns: 0,
            modify_index: 0,
        });
        IdentityContext {
            entity,
            aliases: vec![alias],
            groups: vec![group],
            policies: vec![],
        }
    }

    #[test]
    fn templates_render_from_the_entity_its_aliases_and_groups() {
        let c = ctx();
        for (pattern, want) in [
            ("secret/{{identity.entity.id}}/*", "secret/e-1/*"),
            ("secret/{{ identity.entity.name }}", "secret/alice"),
            ("kv/{{identity.entity.metadata.team}}/x", "kv/payments/x"),
            (
                "ns/{{identity.entity.aliases.auth_kubernetes_1234.metadata.service_account_namespace}}/*",
                "ns/shop/*",
            ),
            (
                "a/{{identity.entity.aliases.auth_kubernetes_1234.name}}",
                "a/uid-9",
            ),
            ("g/{{identity.groups.names.devs.id}}", "g/g-1"),
            ("g/{{identity.groups.ids.g-1.name}}", "g/devs"),
            ("plain/path", "plain/path"),
        ] {
            assert_eq!(render(pattern, &c).as_deref(), Some(want), "{pattern}");
        }
    }

    #[test]
    fn missing_or_unsafe_values_leave_the_rule_out() {
        let c = ctx();
        for pattern in [
            "x/{{identity.entity.metadata.nope}}",
            "x/{{identity.entity.aliases.auth_other.name}}",
            "x/{{identity.groups.names.ops.id}}",
            "x/{{identity.entity.bogus}}",
            "x/{{identity.entity.aliases.auth_kubernetes_1234.metadata.evil}}",
            "x/{{identity.entity.id",
        ] {
            assert_eq!(render(pattern, &c), None, "{pattern}");
        }
    }
}
