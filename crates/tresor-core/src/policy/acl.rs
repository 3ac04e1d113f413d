//! The compiled ACL: all rules of a token's policies merged per pattern, indexed (see
//! [`index`](super::index)) so a check touches only rules that can match, and the check itself
//! (OpenBao's `NewACL` and `AllowOperation`).
//!
//! Lookup order, as in OpenBao: the exact rule for the path; for list/scan, the exact rule for
//! the path without its trailing `/`; the highest-priority glob or `+` rule (see
//! [`priority`](super::priority)); for list/scan of `…/`, that again without the `/`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::index::RuleIndex;
use super::model::{Capabilities, Capability, ParameterMap, Permissions, Policy};
use super::params;

/// One authorisation question.
#[derive(Debug, Clone, Copy)]
pub struct AclRequest<'a> {
    /// The request path (leading `/`s are ignored).
    pub path: &'a str,
    /// The operation, by its capability name: `read`, `create`, `update`, `patch`, `delete`,
    /// `list`, `scan`, `subscribe`; also `renew`, `revoke` and `rollback` (which need
    /// `update`, as in Vault) and `help` (always allowed).
    pub capability: &'a str,
    /// The request's parameters, checked against parameter constraints for read, create,
    /// update and patch.
    pub params: Option<&'a Map<String, Value>>,
}

/// The answer to an [`AclRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The ACL is the root policy's: everything is allowed, sudo included.
    pub is_root: bool,
    /// The rule that decided grants `sudo` (reported even when the operation is denied, as
    /// Vault does, so callers can tell "no sudo" from "no access").
    pub sudo: bool,
    /// Why it was denied; `None` when allowed.
    pub reason: Option<DenyReason>,
}

impl Decision {
    const ROOT: Decision = Decision {
        allowed: true,
        is_root: true,
        sudo: true,
        reason: None,
    };

    fn allow(sudo: bool) -> Decision {
        Decision {
            allowed: true,
            is_root: false,
            sudo,
            reason: None,
        }
    }

    fn deny(reason: DenyReason, sudo: bool) -> Decision {
        Decision {
            allowed: false,
            is_root: false,
            sudo,
            reason: Some(reason),
        }
    }
}

/// Why a request was denied. For logs and tests; clients only ever see "permission denied".
/// Parameter *names* may appear here; parameter values never do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DenyReason {
    /// No rule matches the path (deny by default).
    NoMatchingRule,
    /// The matching rule is `deny`.
    ExplicitDeny,
    /// The matching rule lacks the operation's capability.
    MissingCapability,
    /// The capability name is not an operation we know.
    UnknownOperation,
    /// The rule sets `min_wrapping_ttl`/`max_wrapping_ttl` and the request's wrapping TTL is
    /// absent or out of range.
    WrappingTtl,
    MissingRequiredParameter(String),
    DeniedParameter(String),
    ParameterNotAllowed(String),
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::NoMatchingRule => f.write_str("no policy rule matches the path"),
            DenyReason::ExplicitDeny => f.write_str("the matching rule denies access"),
            DenyReason::MissingCapability => {
                f.write_str("the matching rule lacks the required capability")
            }
            DenyReason::UnknownOperation => f.write_str("unknown operation"),
            DenyReason::WrappingTtl => {
                f.write_str("response wrapping TTL outside the rule's bounds")
            }
            DenyReason::MissingRequiredParameter(name) => {
                write!(f, "required parameter {name:?} is missing")
            }
            DenyReason::DeniedParameter(name) => write!(f, "parameter {name:?} is denied"),
            DenyReason::ParameterNotAllowed(name) => write!(f, "parameter {name:?} is not allowed"),
        }
    }
}

/// Operations, by the capability they need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Needs(Capability),
    /// Renew, revoke and rollback: need `update` but are not parameter-checked.
    UpdateLike,
    Help,
}

impl Op {
    fn parse(name: &str) -> Option<Op> {
        Some(match name {
            "renew" | "revoke" | "rollback" => Op::UpdateLike,
            "help" => Op::Help,
            _ => match Capability::from_name(name)? {
                Capability::Deny | Capability::Sudo => return None,
                capability => Op::Needs(capability),
            },
        })
    }
}

/// A compiled, immutable ACL. Cheap to share (`Arc<Acl>`) between requests.
#[derive(Debug)]
pub struct Acl {
    root: bool,
    /// Merged permissions per distinct pattern; the index returns positions in here.
    rules: Vec<Permissions>,
    index: RuleIndex,
    valid_until: Option<OffsetDateTime>,
    /// The merged patterns that grant something (not `deny`), for [`Acl::has_access_under`].
    granting_patterns: Vec<String>,
}

impl Acl {
    /// Compiles the given policies. A policy named `root` makes this the root ACL (OpenBao
    /// refuses `root` alongside other policies; we let root win). Templated rules (for a token
    /// without an entity) and rules past their `expiration` are left out.
    pub fn new(policies: &[Arc<Policy>]) -> Acl {
        Acl::new_at(policies, OffsetDateTime::now_utc())
    }

    /// [`Acl::new`] as of `now`, for rule expiration.
    pub fn new_at(policies: &[Arc<Policy>], now: OffsetDateTime) -> Acl {
        Acl::compile(policies, now, None)
    }

    /// Compiles the policies of a token that acts for an identity entity: templated rules
    /// are rendered from the entity (a rule whose template cannot be filled is left out).
    pub fn with_identity(
        policies: &[Arc<Policy>],
        identity: &crate::identity::IdentityContext,
    ) -> Acl {
        Acl::compile(policies, OffsetDateTime::now_utc(), Some(identity))
    }

    fn compile(
        policies: &[Arc<Policy>],
        now: OffsetDateTime,
        identity: Option<&crate::identity::IdentityContext>,
    ) -> Acl {
        if policies.iter().any(|policy| policy.is_root()) {
            return Acl {
                root: true,
                rules: Vec::new(),
                index: RuleIndex::default(),
                valid_until: None,
                granting_patterns: Vec::new(),
            };
        }

        // Merge per pattern, in policy order (the result does not depend on the order).
        let mut merged: Vec<(Cow<'_, str>, Permissions)> = Vec::new();
        let mut by_pattern: HashMap<Cow<'_, str>, usize> = HashMap::new();
        let mut valid_until: Option<OffsetDateTime> = None;
        for policy in policies {
            for rule in policy.rules() {
                let pattern: Cow<'_, str> = if rule.templated {
                    match identity.and_then(|ctx| crate::identity::render(&rule.pattern, ctx)) {
                        Some(rendered) => Cow::Owned(rendered),
                        None => continue,
                    }
                } else {
                    Cow::Borrowed(rule.pattern.as_str())
                };
                if let Some(expiration) = rule.expiration {
                    if now > expiration {
                        continue;
                    }
                    valid_until = Some(valid_until.map_or(expiration, |v| v.min(expiration)));
                }
                match by_pattern.get(&pattern) {
                    Some(&index) => {
                        if let Some((_, existing)) = merged.get_mut(index) {
                            merge(existing, &rule.permissions);
                        }
                    }
                    None => {
                        by_pattern.insert(pattern.clone(), merged.len());
                        merged.push((pattern, rule.permissions.clone()));
                    }
                }
            }
        }

        let index = RuleIndex::build(merged.iter().map(|(pattern, _)| pattern.as_ref()));
        let granting_patterns = merged
            .iter()
            .filter(|(_, p)| !p.capabilities.is_deny() && !p.capabilities.is_empty())
            .map(|(pattern, _)| pattern.to_string())
            .collect();
        Acl {
            root: false,
            granting_patterns,
            rules: merged
                .into_iter()
                .map(|(_, permissions)| permissions)
                .collect(),
            index,
            valid_until,
        }
    }

    pub fn is_root(&self) -> bool {
        self.root
    }

    /// Whether any rule grants something at or below `prefix` (a mount path such as
    /// `secret/`), or a glob covers it: what Vault's `sys/internal/ui/mounts` filters by.
    pub fn has_access_under(&self, prefix: &str) -> bool {
        if self.root {
            return true;
        }
        self.granting_patterns
            .iter()
            .any(|pattern| pattern_reaches(pattern, prefix))
    }

    /// Number of distinct patterns after merging.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// When the earliest rule `expiration` passes; the ACL must be rebuilt after that.
    pub fn valid_until(&self) -> Option<OffsetDateTime> {
        self.valid_until
    }

    /// Decides a request that is not response-wrapped.
    pub fn check(&self, request: &AclRequest<'_>) -> Decision {
        self.check_wrapped(request, None)
    }

    /// Decides a request; `wrap_ttl` is the requested response-wrapping TTL, if any, checked
    /// against the rule's `min_wrapping_ttl`/`max_wrapping_ttl`.
    pub fn check_wrapped(&self, request: &AclRequest<'_>, wrap_ttl: Option<Duration>) -> Decision {
        if self.root {
            return Decision::ROOT;
        }
        let Some(op) = Op::parse(request.capability) else {
            return Decision::deny(DenyReason::UnknownOperation, false);
        };
        let needed = match op {
            Op::Help => return Decision::allow(false),
            Op::UpdateLike => Capability::Update,
            Op::Needs(capability) => capability,
        };
        let list_like = matches!(needed, Capability::List | Capability::Scan);
        let path = request.path.trim_start_matches('/');
        let Some(permissions) = self.lookup(path, list_like) else {
            return Decision::deny(DenyReason::NoMatchingRule, false);
        };
        let capabilities = permissions.capabilities;
        let sudo = capabilities.contains(Capability::Sudo);
        if capabilities.is_deny() {
            return Decision::deny(DenyReason::ExplicitDeny, sudo);
        }
        if !capabilities.contains(needed) {
            return Decision::deny(DenyReason::MissingCapability, sudo);
        }
        if !wrapping_ok(permissions, wrap_ttl) {
            return Decision::deny(DenyReason::WrappingTtl, sudo);
        }
        let checks_parameters = matches!(
            op,
            Op::Needs(
                Capability::Read | Capability::Create | Capability::Update | Capability::Patch
            )
        );
        if checks_parameters && let Err(reason) = params::check(permissions, request.params) {
            return Decision::deny(reason, sudo);
        }
        Decision::allow(sudo)
    }

    /// The token's capabilities on `path`, for `sys/capabilities`: sorted names, `["root"]`
    /// for the root ACL, `["deny"]` when denied or when nothing matches. Uses list semantics
    /// for the lookup (trailing-`/` fallbacks), as Vault does.
    pub fn capabilities(&self, path: &str) -> Vec<String> {
        if self.root {
            return vec!["root".to_owned()];
        }
        let capabilities = self
            .lookup(path.trim_start_matches('/'), true)
            .map_or(Capabilities::NONE, |permissions| permissions.capabilities);
        if capabilities.is_deny() || capabilities.is_empty() {
            return vec![Capability::Deny.name().to_owned()];
        }
        let mut names: Vec<String> = capabilities
            .iter()
            .map(|capability| capability.name().to_owned())
            .collect();
        names.sort();
        names
    }

    /// The merged permissions that decide `path`, if any rule matches.
    fn lookup(&self, path: &str, list_like: bool) -> Option<&Permissions> {
        let trimmed = path.strip_suffix('/');
        let id = self
            .index
            .exact(path)
            .or_else(|| {
                trimmed
                    .filter(|_| list_like)
                    .and_then(|t| self.index.exact(t))
            })
            .or_else(|| self.index.non_exact(path))
            // OpenBao (not Vault): listing `foo/` may also use a wildcard rule matching `foo`.
            .or_else(|| {
                trimmed
                    .filter(|_| list_like)
                    .and_then(|t| self.index.non_exact(t))
            })?;
        self.rules.get(id as usize)
    }
}

fn wrapping_ok(permissions: &Permissions, wrap_ttl: Option<Duration>) -> bool {
    let (min, max) = (permissions.min_wrapping_ttl, permissions.max_wrapping_ttl);
    if let Some(max) = max
        && wrap_ttl.is_none_or(|ttl| ttl > max)
    {
        return false;
    }
    if let Some(min) = min
        && wrap_ttl.is_none_or(|ttl| ttl < min)
    {
        return false;
    }
    // Merging can produce max < min even though each rule was checked on parse.
    !matches!((min, max), (Some(min), Some(max)) if max < min)
}

/// Folds `new` into `existing` for the same pattern, as OpenBao's `NewACL` does: deny wins
/// and wipes parameter constraints; otherwise capabilities are OR-ed, the smaller wrapping
/// TTL bounds kept, and parameter maps merged key by key (an empty list, meaning "any value",
/// absorbs a non-empty one; two non-empty lists are concatenated).
fn merge(existing: &mut Permissions, new: &Permissions) {
    if existing.capabilities.is_deny() {
        return;
    }
    if new.capabilities.is_deny() {
        existing.capabilities = Capabilities::DENY;
        existing.allowed_parameters.clear();
        existing.denied_parameters.clear();
        return;
    }
    existing.capabilities = existing.capabilities.union(new.capabilities);
    existing.max_wrapping_ttl = smaller(existing.max_wrapping_ttl, new.max_wrapping_ttl);
    existing.min_wrapping_ttl = smaller(existing.min_wrapping_ttl, new.min_wrapping_ttl);
    merge_parameters(&mut existing.allowed_parameters, &new.allowed_parameters);
    merge_parameters(&mut existing.denied_parameters, &new.denied_parameters);
    for name in &new.required_parameters {
        if !existing.required_parameters.contains(name) {
            existing.required_parameters.push(name.clone());
        }
    }
}

fn smaller(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn merge_parameters(existing: &mut ParameterMap, new: &ParameterMap) {
    for (name, values) in new {
        let merged = match existing.get(name) {
            Some(current) if current.is_empty() => continue,
            _ if values.is_empty() => Vec::new(),
            Some(current) => values.iter().chain(current).cloned().collect(),
            None => values.clone(),
        };
        existing.insert(name.clone(), merged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(texts: &[&str]) -> Acl {
        let policies: Vec<Arc<Policy>> = texts
            .iter()
            .enumerate()
            .map(|(i, text)| Arc::new(Policy::parse(&format!("p{i}"), text).unwrap()))
            .collect();
        Acl::new(&policies)
    }

    #[test]
    fn merging_wrapping_ttls_keeps_the_smaller_bounds() {
        let acl = acl(&[
            "path \"a\" {\n capabilities = [\"read\"]\n min_wrapping_ttl = \"10s\"\n max_wrapping_ttl = \"1h\"\n}",
            "path \"a\" {\n capabilities = [\"read\"]\n min_wrapping_ttl = \"20s\"\n max_wrapping_ttl = \"30m\"\n}",
        ]);
        let request = AclRequest {
            path: "a",
            capability: "read",
            params: None,
        };
        assert_eq!(acl.check(&request).reason, Some(DenyReason::WrappingTtl));
        let ttl = |secs| Some(Duration::from_secs(secs));
        assert!(acl.check_wrapped(&request, ttl(10)).allowed);
        assert!(acl.check_wrapped(&request, ttl(1800)).allowed);
        assert!(!acl.check_wrapped(&request, ttl(1801)).allowed);
        assert!(!acl.check_wrapped(&request, ttl(9)).allowed);
    }

    #[test]
    fn parameter_maps_merge_like_vault() {
        let mut existing = ParameterMap::new();
        existing.insert("a".into(), vec![Value::from("x")]);
        existing.insert("b".into(), vec![]);
        existing.insert("c".into(), vec![Value::from("x")]);
        let mut new = ParameterMap::new();
        new.insert("a".into(), vec![Value::from("y")]);
        new.insert("b".into(), vec![Value::from("y")]);
        new.insert("c".into(), vec![]);
        new.insert("d".into(), vec![Value::from("z")]);
        merge_parameters(&mut existing, &new);
        assert_eq!(existing["a"], vec![Value::from("y"), Value::from("x")]);
        assert!(existing["b"].is_empty());
        assert!(existing["c"].is_empty());
        assert_eq!(existing["d"], vec![Value::from("z")]);
    }

    #[test]
    fn operations_map_to_capabilities() {
        let acl = acl(&["path \"a\" {\n capabilities = [\"update\"]\n}"]);
        let ask = |capability| {
            acl.check(&AclRequest {
                path: "a",
                capability,
                params: None,
            })
        };
        for op in ["update", "renew", "revoke", "rollback", "help"] {
            assert!(ask(op).allowed, "{op}");
        }
        assert_eq!(ask("sudo").reason, Some(DenyReason::UnknownOperation));
        assert_eq!(ask("deny").reason, Some(DenyReason::UnknownOperation));
        assert_eq!(ask("READ").reason, Some(DenyReason::UnknownOperation));
        assert_eq!(ask("read").reason, Some(DenyReason::MissingCapability));
    }
}

/// Whether `pattern` can match some path at or below `prefix`: segment by segment, `+` matches
/// any segment and a trailing `*` matches any rest.
fn pattern_reaches(pattern: &str, prefix: &str) -> bool {
    let (literal, glob) = match pattern.strip_suffix('*') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let mut pat = literal.split('/');
    let mut pre = prefix.trim_end_matches('/').split('/');
    loop {
        match (pre.next(), pat.next()) {
            (None, _) => return true,
            (Some(_), None) => return glob,
            (Some(want), Some(have)) => {
                let last_of_pattern = pat.clone().next().is_none();
                if have == "+" || have == want {
                    continue;
                }
                // A glob may end mid-segment: `secr*` reaches `secret/`.
                return glob && last_of_pattern && want.starts_with(have);
            }
        }
    }
}

#[cfg(test)]
mod reach_tests {
    use super::pattern_reaches;

    #[test]
    fn patterns_reach_the_mounts_they_can_match_under() {
        assert!(pattern_reaches("secret/data/app/*", "secret/"));
        assert!(pattern_reaches("secret/+/app", "secret/"));
        assert!(pattern_reaches("*", "secret/"));
        assert!(pattern_reaches("sec*", "secret/"));
        assert!(pattern_reaches("auth/token/lookup-self", "auth/token/"));
        assert!(!pattern_reaches("other/*", "secret/"));
        assert!(!pattern_reaches("secretx/*", "secret/"));
        assert!(!pattern_reaches("sec", "secret/"));
    }
}
