//! `role/:name` (create, read, update, delete) and `LIST role`: what a token must carry to
//! log in (bound audiences, subject and claims), who it is (user and groups claims), what its
//! claims become (metadata), and the Tresor token it gets (`token_*`). Field names, defaults
//! and errors follow OpenBao's `path_role.go`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tresor_sdk::auth::TokenSettings;
use tresor_sdk::engine::{EngineError, EngineResult, Operation, Request, Response};
use tresor_sdk::storage::Storage;

use super::claims::go_quote;
use crate::auth::token_fields;
use crate::common::fields;

pub(crate) const ROLE_PREFIX: &str = "role/";

/// The deprecated role fields OpenBao still accepts (and echoes on read when a role was
/// written with them).
const LEGACY: [&str; 6] = [
    "policies",
    "bound_cidrs",
    "ttl",
    "max_ttl",
    "period",
    "num_uses",
];

/// A stored role (OpenBao's `jwtRole`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct JwtRole {
    #[serde(default)]
    pub(crate) token: TokenSettings,
    /// The legacy field names this role was last written with.
    #[serde(default)]
    legacy: BTreeSet<String>,
    #[serde(default)]
    pub(crate) role_type: String,
    #[serde(default)]
    pub(crate) expiration_leeway: i64,
    #[serde(default)]
    pub(crate) not_before_leeway: i64,
    #[serde(default)]
    pub(crate) clock_skew_leeway: i64,
    #[serde(default)]
    pub(crate) bound_audiences: Vec<String>,
    #[serde(default)]
    pub(crate) bound_subject: String,
    #[serde(default)]
    pub(crate) bound_claims_type: String,
    #[serde(default)]
    pub(crate) bound_claims: Map<String, Value>,
    #[serde(default)]
    pub(crate) claim_mappings: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) oauth2_metadata: Vec<String>,
    #[serde(default)]
    pub(crate) user_claim: String,
    #[serde(default)]
    pub(crate) user_claim_json_pointer: bool,
    #[serde(default)]
    pub(crate) groups_claim: String,
    #[serde(default)]
    pub(crate) oidc_scopes: Vec<String>,
    #[serde(default)]
    pub(crate) allowed_redirect_uris: Vec<String>,
    #[serde(default)]
    pub(crate) callback_mode: String,
    #[serde(default)]
    pub(crate) poll_interval: i64,
    #[serde(default)]
    pub(crate) verbose_oidc_logging: bool,
    #[serde(default)]
    pub(crate) max_age: i64,
    #[serde(default)]
    pub(crate) token_policies_template_claims: bool,
    #[serde(default)]
    pub(crate) oidc_disable_confirmation: bool,
}

impl JwtRole {
    pub(crate) fn is_glob(&self) -> bool {
        self.bound_claims_type == "glob"
    }
}

/// `framework.GenericNameRegex`: `\w(([\w-.]+)?\w)?` with ASCII word characters.
pub(crate) fn valid_name(name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = name.chars();
    let (Some(first), last) = (chars.next(), name.chars().last()) else {
        return false;
    };
    word(first) && last.is_some_and(word) && name.chars().all(|c| word(c) || c == '-' || c == '.')
}

pub(crate) async fn load(storage: &dyn Storage, name: &str) -> EngineResult<Option<JwtRole>> {
    let Some(raw) = storage.get(&format!("{ROLE_PREFIX}{name}")).await? else {
        return Ok(None);
    };
    let mut role: JwtRole = serde_json::from_slice(raw.expose())
        .map_err(|e| EngineError::Internal(format!("decoding jwt role: {e}")))?;
    if role.role_type.is_empty() {
        role.role_type = "jwt".to_owned();
    }
    if role.bound_claims_type.is_empty() {
        role.bound_claims_type = "string".to_owned();
    }
    Ok(Some(role))
}

pub(crate) async fn list(storage: &dyn Storage) -> EngineResult<Option<Response>> {
    let keys: Vec<String> = storage
        .list(ROLE_PREFIX)
        .await?
        .into_iter()
        .filter(|k| !k.ends_with('/'))
        .collect();
    if keys.is_empty() {
        return Err(EngineError::NotFound);
    }
    Ok(Some(Response::list(keys)))
}

pub(crate) fn read(role: &JwtRole) -> Response {
    let mut d = Map::new();
    d.insert("role_type".into(), json!(role.role_type));
    d.insert("expiration_leeway".into(), json!(role.expiration_leeway));
    d.insert("not_before_leeway".into(), json!(role.not_before_leeway));
    d.insert("clock_skew_leeway".into(), json!(role.clock_skew_leeway));
    d.insert(
        "bound_audiences".into(),
        nil_if_empty(&role.bound_audiences),
    );
    d.insert("bound_subject".into(), json!(role.bound_subject));
    d.insert("bound_claims_type".into(), json!(role.bound_claims_type));
    d.insert(
        "bound_claims".into(),
        if role.bound_claims.is_empty() {
            Value::Null
        } else {
            Value::Object(role.bound_claims.clone())
        },
    );
    d.insert(
        "claim_mappings".into(),
        if role.claim_mappings.is_empty() {
            Value::Null
        } else {
            json!(role.claim_mappings)
        },
    );
    d.insert(
        "oauth2_metadata".into(),
        nil_if_empty(&role.oauth2_metadata),
    );
    d.insert("user_claim".into(), json!(role.user_claim));
    d.insert(
        "user_claim_json_pointer".into(),
        json!(role.user_claim_json_pointer),
    );
    d.insert("groups_claim".into(), json!(role.groups_claim));
    d.insert(
        "allowed_redirect_uris".into(),
        nil_if_empty(&role.allowed_redirect_uris),
    );
    d.insert("callback_mode".into(), json!(role.callback_mode));
    d.insert("oidc_scopes".into(), nil_if_empty(&role.oidc_scopes));
    d.insert(
        "verbose_oidc_logging".into(),
        json!(role.verbose_oidc_logging),
    );
    d.insert("max_age".into(), json!(role.max_age));
    d.insert(
        "token_policies_template_claims".into(),
        json!(role.token_policies_template_claims),
    );
    d.insert(
        "oidc_disable_confirmation".into(),
        json!(role.oidc_disable_confirmation),
    );
    token_fields::write(&role.token, &mut d);
    d.insert("token_strictly_bind_ip".into(), json!(false));
    if role.poll_interval > 0 {
        d.insert("poll_interval".into(), json!(role.poll_interval));
    }
    let t = &role.token;
    for name in &role.legacy {
        let value = match name.as_str() {
            "policies" if !t.policies.is_empty() => json!(t.policies),
            "bound_cidrs" if !t.bound_cidrs.is_empty() => json!(t.bound_cidrs),
            "ttl" if t.ttl > 0 => json!(t.ttl),
            "max_ttl" if t.max_ttl > 0 => json!(t.max_ttl),
            "period" if t.period > 0 => json!(t.period),
            "num_uses" if t.num_uses > 0 => json!(t.num_uses),
            _ => continue,
        };
        d.insert(name.clone(), value);
    }
    Response::with_data(d)
}

/// Go's nil slice: an unset list reads back as `null`.
fn nil_if_empty(list: &[String]) -> Value {
    if list.is_empty() {
        Value::Null
    } else {
        json!(list)
    }
}

fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::InvalidRequest(msg.into())
}

/// `POST role/:name`: OpenBao's `pathRoleCreateUpdate`, checks in its order.
pub(crate) async fn write(
    req: &Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    let existing = load(storage, name).await?;
    if existing.is_none() && req.operation == Operation::Update {
        // The core asked exists() first, so an update of a missing role cannot happen; keep
        // OpenBao's answer if it ever does.
        return Err(EngineError::Internal(
            "role entry not found during update operation".to_owned(),
        ));
    }
    let mut role = existing.unwrap_or_default();

    let role_type = fields::string(req, "role_type")?.unwrap_or_default();
    let role_type = if role_type.is_empty() {
        "oidc".to_owned()
    } else {
        role_type
    };
    if role_type != "jwt" && role_type != "oidc" {
        return Err(invalid(format!("invalid 'role_type': {role_type}")));
    }
    role.role_type = role_type;

    let legacy_used: Vec<&str> = LEGACY
        .iter()
        .copied()
        .filter(|old| fields::get(req, old).is_some())
        .collect();
    token_fields::apply(&mut role.token, req, &legacy_used)?;
    for old in LEGACY {
        let modern = format!("token_{old}");
        let old_given = legacy_used.contains(&old);
        let modern_given = fields::get(req, &modern).is_some();
        if old_given {
            role.legacy.insert(old.to_owned());
        } else if modern_given {
            role.legacy.remove(old);
        }
    }

    let max_lease = req.mount.max_lease_ttl.as_secs();
    if max_lease > 0 && role.token.period > max_lease {
        let go = |s: u64| crate::clock::go_duration(i64::try_from(s).unwrap_or(i64::MAX));
        return Err(invalid(format!(
            "'period' of '{}' is greater than the backend's maximum lease TTL of '{}'",
            go_quote(&go(role.token.period)),
            go_quote(&go(max_lease))
        )));
    }

    if let Some(v) = fields::duration(req, "expiration_leeway", true)? {
        role.expiration_leeway = v;
    }
    if let Some(v) = fields::duration(req, "not_before_leeway", true)? {
        role.not_before_leeway = v;
    }
    if let Some(v) = fields::duration(req, "clock_skew_leeway", true)? {
        role.clock_skew_leeway = v;
    }
    if let Some(v) = fields::string_list(req, "bound_audiences")? {
        role.bound_audiences = v;
    }
    if let Some(v) = fields::string(req, "bound_subject")? {
        role.bound_subject = v;
    }
    if let Some(v) = fields::bool(req, "verbose_oidc_logging")? {
        role.verbose_oidc_logging = v;
    }
    if let Some(v) = fields::duration(req, "max_age", false)? {
        role.max_age = v;
    }
    if let Some(v) = fields::bool(req, "token_policies_template_claims")? {
        role.token_policies_template_claims = v;
    }

    let claims_type = fields::string(req, "bound_claims_type")?
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "string".to_owned());
    if claims_type != "string" && claims_type != "glob" {
        return Err(invalid(format!(
            "invalid 'bound_claims_type': {claims_type}"
        )));
    }
    role.bound_claims_type = claims_type;
    if let Some(bound) = fields::map(req, "bound_claims")? {
        if role.is_glob() {
            for value in bound.values() {
                let items = match value {
                    Value::Array(items) => items.clone(),
                    Value::String(_) | Value::Bool(_) | Value::Number(_) => vec![value.clone()],
                    other => {
                        return Err(invalid(format!(
                            "claim is not a string or list: {}",
                            go_value(other)
                        )));
                    }
                };
                if let Some(bad) = items.iter().find(|i| !i.is_string()) {
                    return Err(invalid(format!("claim is not a string: {}", go_value(bad))));
                }
            }
        }
        role.bound_claims = bound;
    }

    if let Some(mappings) = kv_pairs(req, "claim_mappings")? {
        let mut targets = BTreeSet::new();
        for target in mappings.values() {
            if target == "role" {
                return Err(invalid(format!(
                    "metadata key {} is reserved and may not be a mapping destination",
                    go_quote(target)
                )));
            }
            if !targets.insert(target.clone()) {
                return Err(invalid(format!(
                    "multiple keys are mapped to metadata key {}",
                    go_quote(target)
                )));
            }
        }
        role.claim_mappings = mappings;
    }

    if let Some(md) = fields::string_list(req, "oauth2_metadata")? {
        if let Some(bad) = md
            .iter()
            .find(|m| !["id_token", "refresh_token", "access_token"].contains(&m.as_str()))
        {
            return Err(invalid(format!("Unrecognized oauth2 metadata name {bad}")));
        }
        role.oauth2_metadata = md;
    }

    if let Some(v) = fields::string(req, "user_claim")? {
        role.user_claim = v;
    }
    if role.user_claim.is_empty() {
        return Err(invalid("a user claim must be defined on the role"));
    }
    if let Some(v) = fields::bool(req, "user_claim_json_pointer")? {
        role.user_claim_json_pointer = v;
    }
    if let Some(v) = fields::string(req, "groups_claim")? {
        role.groups_claim = v;
    }
    if let Some(v) = fields::string_list(req, "oidc_scopes")? {
        role.oidc_scopes = v;
    }
    if let Some(v) = fields::string_list(req, "allowed_redirect_uris")? {
        role.allowed_redirect_uris = v;
    }
    if let Some(v) = fields::int(req, "poll_interval", fields::Wording::Body)? {
        role.poll_interval = v;
    }
    let mode = fields::string(req, "callback_mode")?
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "client".to_owned());
    if !["device", "direct", "client"].contains(&mode.as_str()) {
        return Err(invalid(format!("invalid 'callback_mode': {mode}")));
    }
    role.callback_mode = mode;
    role.oidc_disable_confirmation =
        fields::bool(req, "oidc_disable_confirmation")?.unwrap_or(false);

    if role.role_type == "oidc" && role.allowed_redirect_uris.is_empty() {
        return Err(invalid(
            "'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified.",
        ));
    }
    if role.role_type != "oidc"
        && role.bound_audiences.is_empty()
        && role.token.bound_cidrs.is_empty()
        && role.bound_subject.is_empty()
        && role.bound_claims.is_empty()
    {
        return Err(invalid(
            "must have at least one bound constraint when creating/updating a role",
        ));
    }
    if role.token.max_ttl > 0 && role.token.ttl > role.token.max_ttl {
        return Err(invalid("ttl should not be greater than max ttl"));
    }

    let mut warnings = Vec::new();
    if max_lease > 0 && role.token.max_ttl > max_lease {
        warnings.push("token max ttl is greater than the system or backend mount's maximum TTL value; issued tokens' max TTL value will be truncated".to_owned());
    }
    if role.verbose_oidc_logging {
        warnings.push("verbose_oidc_logging has been enabled for this role. This is not recommended in production since sensitive information may be present in OIDC responses.".to_owned());
    }
    if role.token_policies_template_claims {
        return Err(invalid(
            "token_policies_template_claims is not supported by Tresor: use identity policy templating",
        ));
    }

    let bytes = serde_json::to_vec(&role)
        .map_err(|e| EngineError::Internal(format!("encoding jwt role: {e}")))?;
    storage.put(&format!("{ROLE_PREFIX}{name}"), &bytes).await?;
    Ok((!warnings.is_empty()).then(|| Response {
        warnings,
        ..Response::default()
    }))
}

/// `TypeKVPairs`: a map whose values are read as strings (or a list of `key=value` strings).
fn kv_pairs(req: &Request, name: &str) -> EngineResult<Option<BTreeMap<String, String>>> {
    let Some(value) = fields::get(req, name) else {
        return Ok(None);
    };
    let err = |r: &str| fields::conversion_error(name, r, fields::Wording::Body);
    let mut out = BTreeMap::new();
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                let s = fields::to_string(&v).map_err(|r| err(&r))?;
                out.insert(k, s);
            }
        }
        Value::Array(items) => {
            for item in items {
                let s = fields::to_string(&item).map_err(|r| err(&r))?;
                let (k, v) = s
                    .split_once('=')
                    .ok_or_else(|| err("invalid key value pair formatting"))?;
                out.insert(k.to_owned(), v.to_owned());
            }
        }
        Value::String(s) => {
            let (k, v) = s
                .split_once('=')
                .ok_or_else(|| err("invalid key value pair formatting"))?;
            out.insert(k.to_owned(), v.to_owned());
        }
        other => {
            return Err(err(&format!(
                "expected a map, got {}",
                fields::kind(&other)
            )));
        }
    }
    Ok(Some(out))
}

/// Go's `%v` of a decoded JSON value, for OpenBao's bound-claim errors.
fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".to_owned(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(go_value).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", go_value(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
}

pub(crate) async fn delete(storage: &dyn Storage, name: &str) -> EngineResult<Option<Response>> {
    storage.delete(&format!("{ROLE_PREFIX}{name}")).await?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_follow_the_generic_name_pattern() {
        for ok in ["a", "gitea_cicd_app", "a-b.c", "A1"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a/b", "a b", ".a", "é"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn go_values_print_like_percent_v() {
        assert_eq!(go_value(&json!(["a", 1])), "[a 1]");
        assert_eq!(go_value(&json!({"k": true})), "map[k:true]");
    }
}
