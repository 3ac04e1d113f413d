//! `role/<name>` and `LIST role`: which service accounts may log in, and the token they get.
//!
//! A role binds service account names and namespaces (exact values, `*` alone, or globs with
//! `*` anywhere, matched as OpenBao's `strutil.StrListContainsGlob` matches them), optionally a
//! namespace label selector, an audience, and how the identity alias is named; plus the common
//! `token_*` parameters ([`token_fields`]) and their deprecated aliases (`policies`, `ttl`,
//! `max_ttl`, `period`, `num_uses`, `bound_cidrs`), echoed on read while they are in use as
//! OpenBao echoes them. Roles are stored at `role/<lowercased name>`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, json};
use tresor_sdk::auth::TokenSettings;
use tresor_sdk::engine::{EngineError, EngineResult, Request, Response};
use tresor_sdk::storage::Storage;

use super::selector::Selector;
use crate::auth::token_fields;
use crate::clock::go_duration;
use crate::common::fields::{self, Wording};

pub(super) const ALIAS_UID: &str = "serviceaccount_uid";
pub(super) const ALIAS_NAME: &str = "serviceaccount_name";

const LEGACY: [&str; 6] = [
    "policies",
    "ttl",
    "max_ttl",
    "period",
    "num_uses",
    "bound_cidrs",
];

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Role {
    pub bound_service_account_names: Vec<String>,
    /// `None` until set: OpenBao reads a role bound by selector only as `null`.
    #[serde(default)]
    pub bound_service_account_namespaces: Option<Vec<String>>,
    #[serde(default)]
    pub bound_service_account_namespace_selector: String,
    #[serde(default)]
    pub audience: String,
    #[serde(default)]
    pub alias_name_source: String,
    #[serde(default)]
    pub token: TokenSettings,
    /// Binds each token to the address that logged in (OpenBao's `token_strictly_bind_ip`).
    #[serde(default)]
    pub token_strictly_bind_ip: bool,
    /// Which deprecated aliases were last written (and so are echoed on read).
    #[serde(default)]
    pub legacy: Legacy,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct Legacy {
    pub policies: bool,
    pub ttl: bool,
    pub max_ttl: bool,
    pub period: bool,
    pub num_uses: bool,
    pub bound_cidrs: bool,
}

impl Role {
    pub fn namespaces(&self) -> &[String] {
        self.bound_service_account_namespaces
            .as_deref()
            .unwrap_or(&[])
    }
}

/// OpenBao's `GenericNameRegex`: `\w(([\w-.]+)?\w)?`, ASCII word characters.
pub(super) fn valid_name(name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    name.starts_with(word)
        && name.ends_with(word)
        && name.chars().all(|c| word(c) || matches!(c, '-' | '.'))
}

fn key(name: &str) -> String {
    format!("role/{}", name.to_lowercase())
}

pub(super) async fn load(storage: &dyn Storage, name: &str) -> EngineResult<Option<Role>> {
    // Roles are only ever created under valid names; anything else (a login's free-text
    // `role`) names no role and must not become a storage key. OpenBao's storage refuses a
    // `..` segment with its own error.
    if name.split('/').any(|segment| segment == "..") {
        return Err(EngineError::InvalidRequest(
            "relative paths not supported".into(),
        ));
    }
    if !valid_name(name) {
        return Ok(None);
    }
    let Some(raw) = storage.get(&key(name)).await? else {
        return Ok(None);
    };
    serde_json::from_slice(raw.expose())
        .map(Some)
        .map_err(|e| EngineError::Internal(format!("stored kubernetes role is malformed: {e}")))
}

/// Go's `glob.Glob` (ryanuber/go-glob 1.0): `*` matches any run of characters, anywhere.
pub(super) fn glob(pattern: &str, subject: &str) -> bool {
    if pattern.is_empty() {
        return subject.is_empty();
    }
    if pattern == "*" {
        return true;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let Some((last, leading)) = parts.split_last() else {
        return subject == pattern;
    };
    if leading.is_empty() {
        return subject == pattern;
    }
    let mut rest = subject;
    for (i, part) in leading.iter().enumerate() {
        let Some(at) = rest.find(part) else {
            return false;
        };
        if i == 0 && !pattern.starts_with('*') && at != 0 {
            return false;
        }
        rest = rest.get(at + part.len()..).unwrap_or("");
    }
    pattern.ends_with('*') || rest.ends_with(last)
}

/// `strutil.StrListContainsGlob`.
pub(super) fn any_glob(patterns: &[String], subject: &str) -> bool {
    patterns.iter().any(|p| glob(p, subject))
}

pub(super) async fn read(storage: &dyn Storage, name: &str) -> EngineResult<Option<Response>> {
    let Some(role) = load(storage, name).await? else {
        return Err(EngineError::NotFound);
    };
    let mut d = Map::new();
    d.insert(
        "bound_service_account_names".into(),
        json!(role.bound_service_account_names),
    );
    d.insert(
        "bound_service_account_namespaces".into(),
        json!(role.bound_service_account_namespaces),
    );
    d.insert(
        "bound_service_account_namespace_selector".into(),
        json!(role.bound_service_account_namespace_selector),
    );
    if !role.audience.is_empty() {
        d.insert("audience".into(), json!(role.audience));
    }
    token_fields::write(&role.token, &mut d);
    d.insert(
        "token_strictly_bind_ip".into(),
        json!(role.token_strictly_bind_ip),
    );
    let t = &role.token;
    if role.legacy.policies {
        d.insert("policies".into(), json!(t.policies));
    }
    if role.legacy.bound_cidrs {
        d.insert("bound_cidrs".into(), json!(t.bound_cidrs));
    }
    if role.legacy.ttl {
        d.insert("ttl".into(), json!(t.ttl));
    }
    if role.legacy.max_ttl {
        d.insert("max_ttl".into(), json!(t.max_ttl));
    }
    if role.legacy.period {
        d.insert("period".into(), json!(t.period));
    }
    if role.legacy.num_uses {
        d.insert("num_uses".into(), json!(t.num_uses));
    }
    d.insert("alias_name_source".into(), json!(role.alias_name_source));
    Ok(Some(Response::with_data(d)))
}

pub(super) async fn list(req: &Request, storage: &dyn Storage) -> EngineResult<Option<Response>> {
    let after = fields::string(req, "after")?.unwrap_or_default();
    let limit = fields::int(req, "limit", Wording::Validated)?.unwrap_or(0);
    let keys = storage
        .list("role/")
        .await?
        .into_iter()
        .filter(|k| after.is_empty() || k.as_str() > after.as_str());
    let keys: Vec<String> = match usize::try_from(limit) {
        Ok(n) if n > 0 => keys.into_iter().take(n).collect(),
        _ => keys.collect(),
    };
    if keys.is_empty() {
        return Err(EngineError::NotFound);
    }
    Ok(Some(Response::list(keys)))
}

pub(super) async fn delete(storage: &dyn Storage, name: &str) -> EngineResult<Option<Response>> {
    storage.delete(&key(name)).await?;
    Ok(None)
}

/// Creates or updates a role, refusing what OpenBao refuses, in its order.
pub(super) async fn write(
    req: &Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    let bad = |m: String| EngineError::InvalidRequest(m);
    let existing = load(storage, name).await?;
    let creating = existing.is_none();
    let mut role = existing.unwrap_or_default();

    token_fields::apply(&mut role.token, req, &LEGACY)?;
    if let Some(strict) = fields::bool(req, "token_strictly_bind_ip")? {
        role.token_strictly_bind_ip = strict;
    }
    if role.token_strictly_bind_ip && !role.token.bound_cidrs.is_empty() {
        return Err(bad(
            "'token_strictly_bind_ip' conflicts with 'token_bound_cidrs'; set only one".into(),
        ));
    }
    // The deprecated alias of each token field is echoed on read while it is what was last
    // written (OpenBao's tokenutil.UpgradeValue).
    let given = |f: &str| fields::get(req, f).is_some();
    for (old, new, flag) in [
        ("policies", "token_policies", &mut role.legacy.policies),
        ("ttl", "token_ttl", &mut role.legacy.ttl),
        ("max_ttl", "token_max_ttl", &mut role.legacy.max_ttl),
        ("period", "token_period", &mut role.legacy.period),
        ("num_uses", "token_num_uses", &mut role.legacy.num_uses),
        (
            "bound_cidrs",
            "token_bound_cidrs",
            &mut role.legacy.bound_cidrs,
        ),
    ] {
        if given(new) {
            *flag = given(old);
        } else if given(old) {
            *flag = true;
        }
    }
    let t = &role.token;
    role.legacy.policies &= !t.policies.is_empty();
    role.legacy.bound_cidrs &= !t.bound_cidrs.is_empty();
    role.legacy.ttl &= t.ttl > 0;
    role.legacy.max_ttl &= t.max_ttl > 0;
    role.legacy.period &= t.period > 0;
    role.legacy.num_uses &= t.num_uses > 0;

    let mount_max = req.mount.max_lease_ttl.as_secs();
    if role.token.period > mount_max {
        return Err(bad(format!(
            "token period of '\"{}\"' is greater than the backend's maximum lease TTL of '\"{}\"'",
            go_duration(i64::try_from(role.token.period).unwrap_or(i64::MAX)),
            go_duration(i64::try_from(mount_max).unwrap_or(i64::MAX)),
        )));
    }
    if role.token.max_ttl > 0 && role.token.ttl > role.token.max_ttl {
        return Err(bad(
            "token ttl should not be greater than token max ttl".into()
        ));
    }
    let mut warnings = Vec::new();
    if role.token.max_ttl > mount_max {
        warnings.push("max_ttl is greater than the system or backend mount's maximum TTL value; issued tokens' max TTL value will be truncated".to_owned());
    }

    if let Some(names) = fields::string_list(req, "bound_service_account_names")? {
        role.bound_service_account_names = names;
    } else if creating {
        role.bound_service_account_names = Vec::new();
    }
    if role.bound_service_account_names.is_empty() {
        return Err(bad(
            "\"bound_service_account_names\" can not be empty".into()
        ));
    }
    if role.bound_service_account_names.len() > 1
        && role.bound_service_account_names.iter().any(|n| n == "*")
    {
        return Err(bad("can not mix \"*\" with values".into()));
    }
    if let Some(namespaces) = fields::string_list(req, "bound_service_account_namespaces")? {
        role.bound_service_account_namespaces = Some(namespaces);
    }
    // Absent means "none", on update too, as in OpenBao.
    role.bound_service_account_namespace_selector =
        fields::string(req, "bound_service_account_namespace_selector")?.unwrap_or_default();
    if role.namespaces().is_empty() && role.bound_service_account_namespace_selector.is_empty() {
        return Err(bad("\"bound_service_account_namespaces\" can not be empty if \"bound_service_account_namespace_selector\" is not set".into()));
    }
    if !role.bound_service_account_namespace_selector.is_empty()
        && Selector::parse(&role.bound_service_account_namespace_selector).is_err()
    {
        return Err(bad(
            "invalid \"bound_service_account_namespace_selector\" configured".into(),
        ));
    }
    if role.namespaces().len() > 1 && role.namespaces().iter().any(|n| n == "*") {
        return Err(bad("can not mix \"*\" with values".into()));
    }
    if let Some(audience) = fields::string(req, "audience")? {
        role.audience = audience;
    }
    match fields::string(req, "alias_name_source")? {
        Some(source) if source.is_empty() && role.alias_name_source.is_empty() => {
            role.alias_name_source = ALIAS_UID.to_owned();
        }
        Some(source) => role.alias_name_source = source,
        None if role.alias_name_source.is_empty() => {
            role.alias_name_source = ALIAS_UID.to_owned();
        }
        None => {}
    }
    if role.alias_name_source != ALIAS_UID && role.alias_name_source != ALIAS_NAME {
        return Err(bad(format!(
            "invalid alias_name_source, must be one of: {ALIAS_UID}, {ALIAS_NAME}"
        )));
    }
    let bytes = serde_json::to_vec(&role)
        .map_err(|e| EngineError::Internal(format!("encoding kubernetes role: {e}")))?;
    storage.put(&key(name), &bytes).await?;
    if warnings.is_empty() {
        Ok(None)
    } else {
        Ok(Some(Response {
            warnings,
            ..Response::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_go_glob_does() {
        for (pattern, subject, want) in [
            ("*", "anything", true),
            ("", "", true),
            ("", "x", false),
            ("team-*", "team-a", true),
            ("team-*", "team-", true),
            ("team-*", "xteam-a", false),
            ("*-prod", "app-prod", true),
            ("*-prod", "app-prod-2", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXcYb", false),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("*mid*", "xxmidxx", true),
        ] {
            assert_eq!(glob(pattern, subject), want, "{pattern} ~ {subject}");
        }
    }

    #[test]
    fn role_names_follow_generic_name_regex() {
        for ok in ["a", "app", "a.b-c_d", "A..B", "A1"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a@b", "a b", "a/b", "é"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
