//! Property test: for random policy sets and paths, the compiled ACL (hash map + trie + ranks)
//! agrees with a straightforward reference evaluation written here from Vault's documented
//! rules: scan every rule, keep those matching, order them by the five priority rules, merge
//! same-pattern rules with deny winning, decide.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use tresor_core::policy::{Acl, AclRequest, Policy};

const PATTERN_SEGMENTS: &[&str] = &["a", "b", "ab", "abc", "x", "+", "+", "+a", ""];
const PATH_SEGMENTS: &[&str] = &["a", "b", "ab", "abc", "abd", "x", "+a", ""];
const CAPABILITIES: &[&str] = &["read", "list", "update", "create", "delete", "sudo", "deny"];
const OPERATIONS: &[&str] = &["read", "list", "update", "create", "delete", "scan"];

#[derive(Debug, Clone)]
struct Rule {
    pattern: String,
    capabilities: Vec<&'static str>,
}

fn pattern() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(PATTERN_SEGMENTS), 1..=3),
        0..4u8,
    )
        .prop_map(|(segments, glob)| {
            let mut pattern = segments.join("/");
            match glob {
                // Glob right after the last segment: mid-segment (`ab*`) or `a/*`-style.
                1 if !pattern.ends_with('+') => pattern.push('*'),
                1 | 2 => pattern.push_str("/*"),
                _ => {}
            }
            pattern
        })
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        prop_oneof![pattern(), Just("*".to_owned()), Just("+".to_owned())],
        prop::sample::subsequence(CAPABILITIES, 0..=3),
    )
        .prop_map(|(pattern, capabilities)| Rule {
            pattern,
            capabilities,
        })
}

fn path() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(PATH_SEGMENTS), 1..=4),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(segments, trailing, leading)| {
            let mut path = segments.join("/");
            if trailing {
                path.push('/');
            }
            if leading {
                path.insert(0, '/');
            }
            path
        })
}

/// HCL or JSON text for one policy (JSON in its list form, so duplicate patterns survive).
fn render(rules: &[Rule], json: bool) -> String {
    if json {
        let items: Vec<serde_json::Value> = rules
            .iter()
            .map(|r| serde_json::json!({ r.pattern.clone(): { "capabilities": r.capabilities } }))
            .collect();
        serde_json::json!({ "path": items }).to_string()
    } else {
        rules
            .iter()
            .map(|r| {
                let caps: Vec<String> = r.capabilities.iter().map(|c| format!("{c:?}")).collect();
                format!(
                    "path {:?} {{\n  capabilities = [{}]\n}}\n",
                    r.pattern,
                    caps.join(", ")
                )
            })
            .collect()
    }
}

// ---- the reference evaluation ----

/// Merged capabilities of one pattern: the union, or just `deny` if any rule denies.
fn merged(policies: &[Vec<Rule>]) -> BTreeMap<String, Vec<&'static str>> {
    let mut merged: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    for rule in policies.iter().flatten() {
        // Vault drops one leading `/` from patterns.
        let pattern = rule.pattern.strip_prefix('/').unwrap_or(&rule.pattern);
        let entry = merged.entry(pattern.to_owned()).or_default();
        if entry.contains(&"deny") {
            continue;
        }
        if rule.capabilities.contains(&"deny") {
            *entry = vec!["deny"];
            continue;
        }
        for c in &rule.capabilities {
            if !entry.contains(c) {
                entry.push(c);
            }
        }
    }
    merged
}

fn has_segment_wildcards(p: &str) -> bool {
    p == "+" || p.contains("/+") || p.starts_with("+/")
}

fn matches(pattern: &str, path: &str) -> bool {
    let is_prefix = pattern.ends_with('*');
    let body = pattern.strip_suffix('*').unwrap_or(pattern);
    if !has_segment_wildcards(pattern) {
        return if is_prefix {
            path.starts_with(body)
        } else {
            path == body
        };
    }
    let parts: Vec<&str> = body.split('/').collect();
    let segments: Vec<&str> = path.split('/').collect();
    if segments.len() < parts.len() || (!is_prefix && segments.len() != parts.len()) {
        return false;
    }
    parts.iter().enumerate().all(|(i, part)| {
        *part == "+"
            || *part == segments[i]
            || (is_prefix && i == parts.len() - 1 && segments[i].starts_with(part))
    })
}

/// Larger is higher priority: (later first wildcard, not a glob, fewer `+`, longer, larger).
fn priority(pattern: &str) -> (usize, bool, std::cmp::Reverse<usize>, usize, String) {
    let is_prefix = pattern.ends_with('*');
    let body = pattern.strip_suffix('*').unwrap_or(pattern);
    let (first, wildcards) = if has_segment_wildcards(pattern) {
        (
            pattern.find('+').unwrap(),
            body.split('/').filter(|p| *p == "+").count(),
        )
    } else {
        (body.len(), 0)
    };
    (
        first,
        !is_prefix,
        std::cmp::Reverse(wildcards),
        body.len(),
        body.to_owned(),
    )
}

fn best_non_exact<'a>(
    merged: &'a BTreeMap<String, Vec<&'static str>>,
    path: &str,
) -> Option<&'a Vec<&'static str>> {
    let mut candidates: Vec<&String> = merged
        .keys()
        .filter(|p| has_segment_wildcards(p) || p.ends_with('*'))
        .filter(|p| matches(p, path))
        .collect();
    candidates.sort_by_key(|p| priority(p));
    candidates.last().map(|p| &merged[*p])
}

fn reference_lookup<'a>(
    merged: &'a BTreeMap<String, Vec<&'static str>>,
    path: &str,
    list_like: bool,
) -> Option<&'a Vec<&'static str>> {
    let path = path.trim_start_matches('/');
    let is_exact = |p: &str| !has_segment_wildcards(p) && !p.ends_with('*');
    if is_exact(path)
        && let Some(caps) = merged.get(path)
    {
        return Some(caps);
    }
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    if list_like
        && is_exact(trimmed)
        && let Some(caps) = merged.get(trimmed)
    {
        return Some(caps);
    }
    if let Some(caps) = best_non_exact(merged, path) {
        return Some(caps);
    }
    if list_like && path.ends_with('/') {
        return best_non_exact(merged, trimmed);
    }
    None
}

fn reference_capabilities(merged: &BTreeMap<String, Vec<&'static str>>, path: &str) -> Vec<String> {
    match reference_lookup(merged, path, true) {
        Some(caps) if !caps.is_empty() && !caps.contains(&"deny") => {
            let mut names: Vec<String> = caps.iter().map(|c| (*c).to_owned()).collect();
            names.sort();
            names
        }
        _ => vec!["deny".to_owned()],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn compiled_acl_agrees_with_reference(
        policies in prop::collection::vec(prop::collection::vec(rule(), 0..=8), 1..=3),
        json in prop::collection::vec(any::<bool>(), 3),
        paths in prop::collection::vec(path(), 1..=24),
        operations in prop::collection::vec(prop::sample::select(OPERATIONS), 24),
    ) {
        let parsed: Vec<Arc<Policy>> = policies
            .iter()
            .enumerate()
            .map(|(i, rules)| {
                let text = render(rules, json[i]);
                Arc::new(Policy::parse(&format!("p{i}"), &text).unwrap_or_else(|e| panic!("{e}\n{text}")))
            })
            .collect();
        let acl = Acl::new(&parsed);
        let merged = merged(&policies);

        for (path, op) in paths.iter().zip(&operations) {
            prop_assert_eq!(
                acl.capabilities(path),
                reference_capabilities(&merged, path),
                "capabilities of {:?}", path
            );
            let list_like = matches!(*op, "list" | "scan");
            let caps = reference_lookup(&merged, path, list_like);
            let want_allowed = caps.is_some_and(|c| !c.contains(&"deny") && c.contains(op));
            let want_sudo = caps.is_some_and(|c| c.contains(&"sudo"));
            let decision = acl.check(&AclRequest { path, capability: op, params: None });
            prop_assert_eq!(decision.allowed, want_allowed, "{} {:?}", op, path);
            prop_assert_eq!(decision.sudo, want_sudo, "sudo on {:?}", path);
        }
    }
}
