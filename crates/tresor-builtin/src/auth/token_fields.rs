//! Vault's common token parameters on auth roles (`tokenutil`): `token_policies`, `token_ttl`,
//! `token_max_ttl`, `token_period`, `token_num_uses`, `token_bound_cidrs`, `token_type`,
//! `token_no_default_policy`, `token_explicit_max_ttl`, parsed into [`TokenSettings`] and
//! printed back on role reads. Every auth method's role uses these two functions.

use serde_json::{Map, Value, json};
use tresor_sdk::auth::{TokenSettings, parse_cidr};
use tresor_sdk::engine::{EngineError, EngineResult, Request};

use crate::common::fields;

const TOKEN_TYPES: [&str; 5] = [
    "default",
    "service",
    "batch",
    "default-service",
    "default-batch",
];

fn seconds(req: &Request, name: &str) -> EngineResult<Option<u64>> {
    Ok(fields::duration(req, name, false)?.map(|s| u64::try_from(s).unwrap_or(0)))
}

/// Applies the `token_*` fields present in `req` to `settings` (absent fields keep their
/// value, so the same call serves create and update). `legacy` names the method's deprecated
/// aliases that are honoured when the `token_*` field is absent (`policies`, `ttl`, `max_ttl`,
/// `period`, `num_uses`, `bound_cidrs`), as Vault's roles still accept them.
pub(crate) fn apply(
    settings: &mut TokenSettings,
    req: &Request,
    legacy: &[&str],
) -> EngineResult<()> {
    let field = |modern: &'static str, old: &'static str| -> &'static str {
        if fields::get(req, modern).is_none() && legacy.contains(&old) {
            old
        } else {
            modern
        }
    };
    if let Some(p) = fields::string_list(req, field("token_policies", "policies"))? {
        settings.policies = normalise_policies(p);
    }
    if let Some(s) = seconds(req, field("token_ttl", "ttl"))? {
        settings.ttl = s;
    }
    if let Some(s) = seconds(req, field("token_max_ttl", "max_ttl"))? {
        settings.max_ttl = s;
    }
    if let Some(s) = seconds(req, field("token_period", "period"))? {
        settings.period = s;
    }
    if let Some(s) = seconds(req, "token_explicit_max_ttl")? {
        settings.explicit_max_ttl = s;
    }
    let uses_field = field("token_num_uses", "num_uses");
    if let Some(n) = fields::int(req, uses_field, fields::Wording::Body)? {
        if n < 0 {
            return Err(EngineError::InvalidRequest(format!(
                "'{uses_field}' cannot be negative"
            )));
        }
        settings.num_uses = u64::try_from(n).unwrap_or(0);
    }
    if let Some(cidrs) = fields::string_list(req, field("token_bound_cidrs", "bound_cidrs"))? {
        for c in &cidrs {
            parse_cidr(c).map_err(|e| {
                EngineError::InvalidRequest(format!("failed to parse token_bound_cidrs: {e}"))
            })?;
        }
        settings.bound_cidrs = cidrs;
    }
    if let Some(b) = fields::bool(req, "token_no_default_policy")? {
        settings.no_default_policy = b;
    }
    if let Some(t) = fields::string(req, "token_type")? {
        let t = if t.is_empty() {
            "default".to_owned()
        } else {
            t
        };
        if !TOKEN_TYPES.contains(&t.as_str()) {
            return Err(EngineError::InvalidRequest(format!(
                "invalid 'token_type' value {t:?}"
            )));
        }
        settings.token_type = t;
    }
    // A batch token cannot be renewed or counted, so a role cannot promise either.
    if settings.token_type.ends_with("batch") {
        if settings.period != 0 {
            return Err(EngineError::InvalidRequest(
                "'token_type' cannot be 'batch' or 'default_batch' when set to generate periodic tokens"
                    .to_owned(),
            ));
        }
        if settings.num_uses != 0 {
            return Err(EngineError::InvalidRequest(
                "'token_type' cannot be 'batch' or 'default_batch' when set to generate tokens with limited use count"
                    .to_owned(),
            ));
        }
    }
    if settings.max_ttl > 0 && settings.ttl > settings.max_ttl {
        return Err(EngineError::InvalidRequest(
            "'token_ttl' cannot be greater than 'token_max_ttl'".to_owned(),
        ));
    }
    Ok(())
}

/// Writes the `token_*` fields of a role read into `data`.
pub(crate) fn write(settings: &TokenSettings, data: &mut Map<String, Value>) {
    data.insert("token_policies".into(), json!(settings.policies));
    data.insert("token_ttl".into(), json!(settings.ttl));
    data.insert("token_max_ttl".into(), json!(settings.max_ttl));
    data.insert("token_period".into(), json!(settings.period));
    data.insert(
        "token_explicit_max_ttl".into(),
        json!(settings.explicit_max_ttl),
    );
    data.insert("token_num_uses".into(), json!(settings.num_uses));
    data.insert("token_bound_cidrs".into(), json!(settings.bound_cidrs));
    data.insert("token_type".into(), json!(settings.token_type));
    data.insert(
        "token_no_default_policy".into(),
        json!(settings.no_default_policy),
    );
}

pub(crate) use tresor_sdk::auth::normalise_policies;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tresor_sdk::engine::{MountInfo, Operation};

    use super::*;

    fn request(body: Value) -> Request {
        Request {
            operation: Operation::Update,
            path: "role/x".into(),
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
    fn token_fields_parse_and_print_back() {
        let mut s = TokenSettings::default();
        apply(
            &mut s,
            &request(json!({
                "token_policies": "b, A ,a",
                "token_ttl": "1h",
                "token_max_ttl": 7200,
                "token_num_uses": "3",
                "token_bound_cidrs": ["10.0.0.0/8", "127.0.0.1"],
                "token_type": "service",
            })),
            &[],
        )
        .unwrap();
        assert_eq!(s.policies, ["a", "b"]);
        assert_eq!((s.ttl, s.max_ttl, s.num_uses), (3600, 7200, 3));
        let mut data = Map::new();
        write(&s, &mut data);
        assert_eq!(
            data["token_bound_cidrs"],
            json!(["10.0.0.0/8", "127.0.0.1"])
        );
        assert_eq!(data["token_type"], "service");
        assert_eq!(data["token_period"], 0);
    }

    #[test]
    fn legacy_aliases_apply_only_where_allowed_and_modern_fields_win() {
        let mut s = TokenSettings::default();
        apply(
            &mut s,
            &request(json!({"policies": "old", "ttl": 60})),
            &["policies"],
        )
        .unwrap();
        assert_eq!(s.policies, ["old"]);
        assert_eq!(s.ttl, 0, "ttl is not a legacy alias here");
        apply(
            &mut s,
            &request(json!({"policies": "old", "token_policies": "new"})),
            &["policies"],
        )
        .unwrap();
        assert_eq!(s.policies, ["new"]);
    }

    #[test]
    fn bad_token_fields_are_refused_with_the_field_named() {
        for (body, needle) in [
            (
                json!({"token_num_uses": -1}),
                "'token_num_uses' cannot be negative",
            ),
            (json!({"token_type": "weird"}), "invalid 'token_type'"),
            (
                json!({"token_type": "batch", "token_period": "1h"}),
                "periodic tokens",
            ),
            (
                json!({"token_type": "default-batch", "token_num_uses": 2}),
                "limited use count",
            ),
            (
                json!({"token_bound_cidrs": "10.0.0.0/40"}),
                "token_bound_cidrs",
            ),
            (
                json!({"token_ttl": 10, "token_max_ttl": 5}),
                "cannot be greater",
            ),
            (json!({"token_ttl": "soon"}), "token_ttl"),
        ] {
            let mut s = TokenSettings::default();
            let err = apply(&mut s, &request(body), &[]).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }
}
