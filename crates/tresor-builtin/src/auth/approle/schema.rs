//! The fields each AppRole endpoint takes, checked before the endpoint runs.
//!
//! OpenBao's framework converts every declared field of a path before calling its handler, so a
//! field of the wrong type is refused even when the handler would fail for another reason (a
//! missing role). The error carries `Field validation failed: ` except on `role/:name` writes,
//! whose existence check runs the same conversion first and answers without the prefix.
//! Fields a request sends that the path does not declare are reported in a warning on
//! responses that have a body, as OpenBao does.

use tresor_sdk::engine::{EngineResult, Request};

use crate::common::fields::{self, Wording, conversion_error};

/// Vault's field types, as far as AppRole uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `TypeString`.
    Str,
    /// `TypeInt`.
    Int,
    /// `TypeBool`.
    Bool,
    /// `TypeDurationSecond` (negative values refused).
    Secs,
    /// `TypeCommaStringSlice`.
    List,
}

pub(super) type Schema = &'static [(&'static str, Kind)];

use Kind::{Bool, Int, List, Secs, Str};

/// The `token_*` parameters every role takes (tokenutil), with OpenBao's
/// `token_strictly_bind_ip`.
const TOKEN: [(&str, Kind); 10] = [
    ("token_bound_cidrs", List),
    ("token_explicit_max_ttl", Secs),
    ("token_max_ttl", Secs),
    ("token_no_default_policy", Bool),
    ("token_period", Secs),
    ("token_policies", List),
    ("token_type", Str),
    ("token_ttl", Secs),
    ("token_num_uses", Int),
    ("token_strictly_bind_ip", Bool),
];

pub(super) const ROLE: Schema = &[
    ("bind_secret_id", Bool),
    ("bound_cidr_list", List),
    ("secret_id_bound_cidrs", List),
    ("policies", List),
    ("secret_id_num_uses", Int),
    ("secret_id_ttl", Secs),
    ("period", Secs),
    ("role_id", Str),
    ("local_secret_ids", Bool),
    TOKEN[0],
    TOKEN[1],
    TOKEN[2],
    TOKEN[3],
    TOKEN[4],
    TOKEN[5],
    TOKEN[6],
    TOKEN[7],
    TOKEN[8],
    TOKEN[9],
];
pub(super) const PAGE: Schema = &[("after", Str), ("limit", Int)];
pub(super) const NONE: Schema = &[];
pub(super) const POLICIES: Schema = &[("policies", List), ("token_policies", List)];
pub(super) const PERIOD: Schema = &[("period", Secs), ("token_period", Secs)];
pub(super) const ROLE_ID: Schema = &[("role_id", Str)];
pub(super) const SECRET_ID: Schema = &[
    ("metadata", Str),
    ("cidr_list", List),
    ("token_bound_cidrs", List),
    ("num_uses", Int),
    ("ttl", Secs),
    ("after", Str),
    ("limit", Int),
];
pub(super) const CUSTOM_SECRET_ID: Schema = &[
    ("secret_id", Str),
    ("metadata", Str),
    ("cidr_list", List),
    ("token_bound_cidrs", List),
    ("num_uses", Int),
    ("ttl", Secs),
];
pub(super) const BY_SECRET_ID: Schema = &[("secret_id", Str)];
pub(super) const BY_ACCESSOR: Schema = &[("secret_id_accessor", Str)];
pub(super) const LOGIN: Schema = &[("role_id", Str), ("secret_id", Str)];

/// The one-field sub-endpoints (`role/:name/token-ttl` …) and their field.
pub(super) fn single(field: &'static str) -> Option<Schema> {
    Some(match field {
        "bound_cidr_list" => &[("bound_cidr_list", List)],
        "secret_id_bound_cidrs" => &[("secret_id_bound_cidrs", List)],
        "token_bound_cidrs" => &[("token_bound_cidrs", List)],
        "secret_id_num_uses" => &[("secret_id_num_uses", Int)],
        "secret_id_ttl" => &[("secret_id_ttl", Secs)],
        "token_num_uses" => &[("token_num_uses", Int)],
        "token_ttl" => &[("token_ttl", Secs)],
        "token_max_ttl" => &[("token_max_ttl", Secs)],
        _ => return None,
    })
}

/// Converts every field `schema` declares that the request carries, as OpenBao does before
/// any handler runs.
pub(super) fn validate(req: &Request, schema: Schema, wording: Wording) -> EngineResult<()> {
    for (name, kind) in schema {
        let Some(value) = fields::get(req, name) else {
            continue;
        };
        let converted = match kind {
            Str => fields::to_string(&value).map(drop),
            Int => fields::to_int(&value).map(drop),
            Bool => fields::to_bool(&value).map(drop),
            Secs => fields::to_duration(&value, false).map(drop),
            List => match &value {
                serde_json::Value::Array(items) => items
                    .iter()
                    .try_for_each(|i| fields::to_string(i).map(drop)),
                other => fields::to_string(other).map(drop),
            },
        };
        converted.map_err(|reason| conversion_error(name, &reason, wording))?;
    }
    Ok(())
}

/// The warning OpenBao adds to a response when the body carried fields the path ignores.
pub(super) fn ignored_warning(req: &Request, schema: Schema) -> Option<String> {
    let ignored: Vec<&str> = req
        .data
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "role_name" && !schema.iter().any(|(name, _)| name == k))
        .collect();
    (!ignored.is_empty()).then(|| {
        // `data` is a sorted map, so the list is sorted like OpenBao's.
        format!(
            "Endpoint ignored these unrecognized parameters: [{}]",
            ignored.join(" ")
        )
    })
}

pub(super) fn present(req: &Request, name: &str) -> bool {
    fields::get(req, name).is_some()
}

pub(super) fn string(req: &Request, name: &str) -> EngineResult<Option<String>> {
    fields::string(req, name)
}

pub(super) fn int(req: &Request, name: &str) -> EngineResult<Option<i64>> {
    fields::int(req, name, Wording::Body)
}

pub(super) fn boolean(req: &Request, name: &str) -> EngineResult<Option<bool>> {
    fields::bool(req, name)
}

pub(super) fn secs(req: &Request, name: &str) -> EngineResult<Option<u64>> {
    Ok(fields::duration(req, name, false)?.map(|s| u64::try_from(s).unwrap_or(0)))
}

pub(super) fn list(req: &Request, name: &str) -> EngineResult<Option<Vec<String>>> {
    fields::string_list(req, name)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{Value, json};
    use tresor_sdk::engine::{MountInfo, Operation};

    use super::*;

    fn req(body: Value) -> Request {
        Request {
            operation: Operation::Update,
            path: "role/x/secret-id".into(),
            data: body.as_object().cloned().unwrap_or_default(),
            query: Vec::new(),
            content_type: None,
            mount: Arc::new(MountInfo::default()),
            client_token_key: String::new(),
            display_name: String::new(),
            remote_addr: None,
        }
    }

    #[test]
    fn every_declared_field_is_converted_up_front_with_openbaos_prefix() {
        for (body, field) in [
            (json!({"ttl": -1}), "ttl"),
            (json!({"ttl": "soon"}), "ttl"),
            (json!({"num_uses": "many"}), "num_uses"),
            (json!({"metadata": {"a": "b"}}), "metadata"),
            (json!({"cidr_list": [{"a": 1}]}), "cidr_list"),
        ] {
            let err = validate(&req(body), SECRET_ID, Wording::Validated)
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!(
                    "Field validation failed: error converting input for field \"{field}\""
                )),
                "{err}"
            );
        }
        assert!(
            validate(
                &req(json!({"ttl": "1h", "num_uses": "3", "cidr_list": "10.0.0.0/8", "x": {}})),
                SECRET_ID,
                Wording::Validated
            )
            .is_ok(),
            "undeclared fields are not converted"
        );
        let err = validate(&req(json!({"secret_id_ttl": -5})), ROLE, Wording::Body)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "error converting input for field \"secret_id_ttl\": cannot provide negative value '-5'"
        );
    }

    #[test]
    fn undeclared_body_fields_are_named_in_a_sorted_warning() {
        assert_eq!(
            ignored_warning(&req(json!({"zz": 1, "ttl": 5, "aa": 2})), SECRET_ID).as_deref(),
            Some("Endpoint ignored these unrecognized parameters: [aa zz]")
        );
        assert_eq!(ignored_warning(&req(json!({"ttl": 5})), SECRET_ID), None);
    }
}
