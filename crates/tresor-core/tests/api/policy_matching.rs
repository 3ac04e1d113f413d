//! Policy matching table: Vault's and OpenBao's documented policy examples (globs, `+`, deny,
//! the five priority rules, exact vs glob, mid-segment globs, merging, legacy `policy`, list
//! fallbacks). Every expected answer was taken from OpenBao 2.7.2's `sys/capabilities` for a
//! token holding exactly these policies (no `default`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::sync::Arc;

use tresor_core::policy::{Acl, AclRequest, DenyReason, Policy};

struct Case {
    name: &'static str,
    policies: &'static [&'static str],
    path: &'static str,
    want: &'static [&'static str],
}

fn acl(policies: &[&str]) -> Acl {
    let parsed: Vec<Arc<Policy>> = policies
        .iter()
        .enumerate()
        .map(|(i, text)| {
            Arc::new(Policy::parse(&format!("p{i}"), text).unwrap_or_else(|e| panic!("{e}")))
        })
        .collect();
    Acl::new(&parsed)
}

const DOCS: &str = r#"path "secret/*" {
  capabilities = ["create", "read", "update", "patch", "delete", "list", "scan"]
}
path "secret/super-secret" {
  capabilities = ["deny"]
}
path "secret/restricted" {
  capabilities = ["create"]
  allowed_parameters = {
    "foo" = []
    "bar" = ["zip", "zap"]
  }
}
"#;

const GLOBS: &str = r#"path "secret/foo" {
  capabilities = ["read"]
}
path "secret/bar/*" {
  capabilities = ["read"]
}
path "secret/zip-*" {
  capabilities = ["read"]
}
"#;

const PLUS: &str = r#"path "secret/+/teamb" {
  capabilities = ["read"]
}
path "secret/+/+/teamb" {
  capabilities = ["read"]
}
"#;

const CASES: &[Case] = &[
    Case {
        name: "docs_glob_grants_all",
        policies: &[DOCS],
        path: "secret/foo",
        want: &[
            "create", "delete", "list", "patch", "read", "scan", "update",
        ],
    },
    Case {
        name: "docs_glob_nested",
        policies: &[DOCS],
        path: "secret/a/b/c",
        want: &[
            "create", "delete", "list", "patch", "read", "scan", "update",
        ],
    },
    Case {
        name: "docs_exact_deny_overrides_glob",
        policies: &[DOCS],
        path: "secret/super-secret",
        want: &["deny"],
    },
    Case {
        name: "docs_exact_restricted",
        policies: &[DOCS],
        path: "secret/restricted",
        want: &["create"],
    },
    Case {
        name: "docs_glob_needs_slash",
        policies: &[DOCS],
        path: "secret",
        want: &["deny"],
    },
    Case {
        name: "docs_list_on_mount_root",
        policies: &[DOCS],
        path: "secret/",
        want: &[
            "create", "delete", "list", "patch", "read", "scan", "update",
        ],
    },
    Case {
        name: "glob_exact_only",
        policies: &[GLOBS],
        path: "secret/foo",
        want: &["read"],
    },
    Case {
        name: "glob_exact_not_prefix",
        policies: &[GLOBS],
        path: "secret/food",
        want: &["deny"],
    },
    Case {
        name: "glob_exact_not_child",
        policies: &[GLOBS],
        path: "secret/foo/bar",
        want: &["deny"],
    },
    Case {
        name: "glob_dir_child",
        policies: &[GLOBS],
        path: "secret/bar/zip",
        want: &["read"],
    },
    Case {
        name: "glob_dir_grandchild",
        policies: &[GLOBS],
        path: "secret/bar/zip/zap",
        want: &["read"],
    },
    Case {
        name: "glob_dir_not_sibling",
        policies: &[GLOBS],
        path: "secret/bars/zip",
        want: &["deny"],
    },
    Case {
        name: "glob_mid_segment",
        policies: &[GLOBS],
        path: "secret/zip-zap",
        want: &["read"],
    },
    Case {
        name: "glob_mid_segment_deeper",
        policies: &[GLOBS],
        path: "secret/zip-zap/zong",
        want: &["read"],
    },
    Case {
        name: "glob_mid_segment_mismatch",
        policies: &[GLOBS],
        path: "secret/zip/zap",
        want: &["deny"],
    },
    Case {
        name: "glob_mid_segment_bare_prefix",
        policies: &[GLOBS],
        path: "secret/zip-",
        want: &["read"],
    },
    Case {
        name: "plus_one_segment",
        policies: &[PLUS],
        path: "secret/foo/teamb",
        want: &["read"],
    },
    Case {
        name: "plus_two_segments",
        policies: &[PLUS],
        path: "secret/foo/bar/teamb",
        want: &["read"],
    },
    Case {
        name: "plus_needs_a_segment",
        policies: &[PLUS],
        path: "secret/teamb",
        want: &["deny"],
    },
    Case {
        name: "plus_not_prefix",
        policies: &[PLUS],
        path: "secret/foo/teamb/x",
        want: &["deny"],
    },
    Case {
        name: "plus_matches_empty_segment",
        policies: &[PLUS],
        path: "secret//teamb",
        want: &["read"],
    },
    Case {
        name: "plus_alone",
        policies: &[r#"path "+" {
  capabilities = ["read"]
}
"#],
        path: "anything",
        want: &["read"],
    },
    Case {
        name: "plus_alone_one_segment_only",
        policies: &[r#"path "+" {
  capabilities = ["read"]
}
"#],
        path: "a/b",
        want: &["deny"],
    },
    Case {
        name: "plus_then_glob",
        policies: &[r#"path "secret/+/foo/*" {
  capabilities = ["read"]
}
"#],
        path: "secret/x/foo/y/z",
        want: &["read"],
    },
    Case {
        name: "plus_then_glob_needs_segment",
        policies: &[r#"path "secret/+/foo/*" {
  capabilities = ["read"]
}
"#],
        path: "secret/x/foo",
        want: &["deny"],
    },
    Case {
        name: "plus_then_mid_glob",
        policies: &[r#"path "secret/+/fo*" {
  capabilities = ["read"]
}
"#],
        path: "secret/x/food/y",
        want: &["read"],
    },
    Case {
        name: "prio1_later_wildcard_wins",
        policies: &[r#"path "secret/foo/+" {
  capabilities = ["update"]
}
path "secret/+/bar" {
  capabilities = ["read"]
}
"#],
        path: "secret/foo/bar",
        want: &["update"],
    },
    Case {
        name: "prio1_glob_after_plus_position",
        policies: &[r#"path "secret/a*" {
  capabilities = ["update"]
}
path "secret/+" {
  capabilities = ["read"]
}
"#],
        path: "secret/ab",
        want: &["update"],
    },
    Case {
        name: "prio1_deeper_glob_beats_plus",
        policies: &[r#"path "secret/foo/*" {
  capabilities = ["update"]
}
path "secret/+/bar" {
  capabilities = ["read"]
}
"#],
        path: "secret/foo/bar",
        want: &["update"],
    },
    Case {
        name: "prio2_non_glob_beats_glob",
        policies: &[r#"path "secret/+/bar" {
  capabilities = ["read"]
}
path "secret/+/ba*" {
  capabilities = ["update"]
}
"#],
        path: "secret/x/bar",
        want: &["read"],
    },
    Case {
        name: "prio2_plus_beats_star_same_position",
        policies: &[r#"path "foo/+" {
  capabilities = ["read"]
}
path "foo/*" {
  capabilities = ["update"]
}
"#],
        path: "foo/x",
        want: &["read"],
    },
    Case {
        name: "prio2_star_covers_deeper",
        policies: &[r#"path "foo/+" {
  capabilities = ["read"]
}
path "foo/*" {
  capabilities = ["update"]
}
"#],
        path: "foo/x/y",
        want: &["update"],
    },
    Case {
        name: "prio3_docs_fewer_plus_wins",
        policies: &[r#"path "secret/*" {
  capabilities = ["read"]
}
path "secret/+/+/foo/*" {
  capabilities = ["update"]
}
"#],
        path: "secret/a/b/foo/c",
        want: &["read"],
    },
    Case {
        name: "prio3_fewer_plus_wins",
        policies: &[r#"path "secret/+/+/baz" {
  capabilities = ["read"]
}
path "secret/+/bar/baz" {
  capabilities = ["update"]
}
"#],
        path: "secret/x/bar/baz",
        want: &["update"],
    },
    Case {
        name: "prio3_plain_glob_beats_plus_glob",
        policies: &[r#"path "secret/*" {
  capabilities = ["read"]
}
path "secret/+/x*" {
  capabilities = ["update"]
}
"#],
        path: "secret/a/xy",
        want: &["read"],
    },
    Case {
        name: "prio4_longer_wins",
        policies: &[r#"path "secret/+/bar/ba*" {
  capabilities = ["update"]
}
path "secret/+/bar/b*" {
  capabilities = ["read"]
}
"#],
        path: "secret/x/bar/baz",
        want: &["update"],
    },
    Case {
        name: "prio4_longer_plain_glob_wins",
        policies: &[r#"path "secret/*" {
  capabilities = ["read"]
}
path "secret/foo/*" {
  capabilities = ["update"]
}
"#],
        path: "secret/foo/x",
        want: &["update"],
    },
    Case {
        name: "exact_beats_glob_and_plus",
        policies: &[r#"path "secret/foo" {
  capabilities = ["read"]
}
path "secret/foo*" {
  capabilities = ["update"]
}
path "secret/+" {
  capabilities = ["delete"]
}
"#],
        path: "secret/foo",
        want: &["read"],
    },
    Case {
        name: "exact_absent_falls_to_plus",
        policies: &[r#"path "secret/foo" {
  capabilities = ["read"]
}
path "secret/foo*" {
  capabilities = ["update"]
}
path "secret/+" {
  capabilities = ["delete"]
}
"#],
        path: "secret/fox",
        want: &["delete"],
    },
    Case {
        name: "exact_absent_falls_to_glob",
        policies: &[r#"path "secret/foo" {
  capabilities = ["read"]
}
path "secret/foo*" {
  capabilities = ["update"]
}
path "secret/+" {
  capabilities = ["delete"]
}
"#],
        path: "secret/foox",
        want: &["update"],
    },
    Case {
        name: "star_alone_matches_everything",
        policies: &[r#"path "*" {
  capabilities = ["read"]
}
"#],
        path: "any/path/at/all",
        want: &["read"],
    },
    Case {
        name: "deny_more_specific_overrides",
        policies: &[r#"path "secret/*" {
  capabilities = ["read"]
}
path "secret/private/*" {
  capabilities = ["deny"]
}
"#],
        path: "secret/private/x",
        want: &["deny"],
    },
    Case {
        name: "deny_more_specific_leaves_rest",
        policies: &[r#"path "secret/*" {
  capabilities = ["read"]
}
path "secret/private/*" {
  capabilities = ["deny"]
}
"#],
        path: "secret/public/x",
        want: &["read"],
    },
    Case {
        name: "deny_less_specific_does_not_override",
        policies: &[r#"path "secret/*" {
  capabilities = ["deny"]
}
path "secret/open/*" {
  capabilities = ["read"]
}
"#],
        path: "secret/open/x",
        want: &["read"],
    },
    Case {
        name: "deny_same_pattern_across_policies",
        policies: &[
            r#"path "secret/*" {
  capabilities = ["read", "sudo"]
}
"#,
            r#"path "secret/*" {
  capabilities = ["deny"]
}
"#,
        ],
        path: "secret/x",
        want: &["deny"],
    },
    Case {
        name: "deny_same_pattern_within_policy",
        policies: &[r#"path "secret/*" {
  capabilities = ["deny"]
}
path "secret/*" {
  capabilities = ["read"]
}
"#],
        path: "secret/x",
        want: &["deny"],
    },
    Case {
        name: "deny_with_other_caps_is_deny",
        policies: &[r#"path "secret/x" {
  capabilities = ["read", "deny", "update"]
}
"#],
        path: "secret/x",
        want: &["deny"],
    },
    Case {
        name: "merge_same_pattern_unions",
        policies: &[
            r#"path "secret/shared/*" {
  capabilities = ["read"]
}
"#,
            r#"path "secret/shared/*" {
  capabilities = ["update", "list"]
}
"#,
        ],
        path: "secret/shared/a",
        want: &["list", "read", "update"],
    },
    Case {
        name: "merge_same_plus_pattern_unions",
        policies: &[
            r#"path "secret/+/a" {
  capabilities = ["read"]
}
"#,
            r#"path "secret/+/a" {
  capabilities = ["delete"]
}
"#,
        ],
        path: "secret/x/a",
        want: &["delete", "read"],
    },
    Case {
        name: "merge_different_patterns_no_union",
        policies: &[
            r#"path "secret/*" {
  capabilities = ["read"]
}
"#,
            r#"path "secret/foo" {
  capabilities = ["update"]
}
"#,
        ],
        path: "secret/foo",
        want: &["update"],
    },
    Case {
        name: "default_deny_no_rule",
        policies: &[r#"path "secret/*" {
  capabilities = ["read"]
}
"#],
        path: "other/x",
        want: &["deny"],
    },
    Case {
        name: "default_deny_empty_policy",
        policies: &[r#""#],
        path: "secret/x",
        want: &["deny"],
    },
    Case {
        name: "empty_capability_list_is_deny",
        policies: &[r#"path "secret/x" {
  capabilities = []
}
"#],
        path: "secret/x",
        want: &["deny"],
    },
    Case {
        name: "sudo_reported",
        policies: &[r#"path "sys/audit*" {
  capabilities = ["sudo", "read", "update"]
}
"#],
        path: "sys/audit/file",
        want: &["read", "sudo", "update"],
    },
    Case {
        name: "legacy_read",
        policies: &[r#"path "a" {
  policy = "read"
}
"#],
        path: "a",
        want: &["list", "read"],
    },
    Case {
        name: "legacy_write",
        policies: &[r#"path "a" {
  policy = "write"
}
"#],
        path: "a",
        want: &["create", "delete", "list", "read", "update"],
    },
    Case {
        name: "legacy_sudo",
        policies: &[r#"path "a" {
  policy = "sudo"
}
"#],
        path: "a",
        want: &["create", "delete", "list", "read", "sudo", "update"],
    },
    Case {
        name: "legacy_deny",
        policies: &[r#"path "a" {
  policy = "deny"
}
"#],
        path: "a",
        want: &["deny"],
    },
    Case {
        name: "legacy_read_plus_capabilities",
        policies: &[r#"path "a" {
  policy = "read"
  capabilities = ["update"]
}
"#],
        path: "a",
        want: &["list", "read", "update"],
    },
    Case {
        name: "list_trailing_slash_exact",
        policies: &[r#"path "secret/foo" {
  capabilities = ["list"]
}
"#],
        path: "secret/foo/",
        want: &["list"],
    },
    Case {
        name: "list_trailing_slash_plus",
        policies: &[r#"path "secret/+" {
  capabilities = ["list"]
}
"#],
        path: "secret/foo/",
        want: &["list"],
    },
    Case {
        name: "list_trailing_slash_exact_before_glob",
        policies: &[r#"path "secret/foo" {
  capabilities = ["list"]
}
path "secret/foo/*" {
  capabilities = ["read"]
}
"#],
        path: "secret/foo/",
        want: &["list"],
    },
    Case {
        name: "leading_slash_in_pattern",
        policies: &[r#"path "/secret/lead" {
  capabilities = ["read"]
}
"#],
        path: "secret/lead",
        want: &["read"],
    },
    Case {
        name: "leading_slash_in_path",
        policies: &[r#"path "secret/lead" {
  capabilities = ["read"]
}
"#],
        path: "/secret/lead",
        want: &["read"],
    },
    Case {
        name: "json_policy",
        policies: &[r#"{"path": {"secret/json/*": {"capabilities": ["read", "list"]}}}"#],
        path: "secret/json/a",
        want: &["list", "read"],
    },
    Case {
        name: "json_policy_list_form",
        policies: &[r#"{"path": [{"secret/json/*": {"capabilities": ["read"]}}]}"#],
        path: "secret/json/a",
        want: &["read"],
    },
    Case {
        name: "literal_star_mid_pattern",
        policies: &[r#"path "secret/*/x" {
  capabilities = ["read"]
}
"#],
        path: "secret/*/x",
        want: &["read"],
    },
    Case {
        name: "literal_star_mid_pattern_not_glob",
        policies: &[r#"path "secret/*/x" {
  capabilities = ["read"]
}
"#],
        path: "secret/a/x",
        want: &["deny"],
    },
    Case {
        name: "templated_path_skipped",
        policies: &[r#"path "secret/{{identity.entity.id}}/*" {
  capabilities = ["read"]
}
path "secret/*" {
  capabilities = ["list"]
}
"#],
        path: "secret/abc/x",
        want: &["list"],
    },
    Case {
        name: "scan_capability",
        policies: &[r#"path "secret/*" {
  capabilities = ["scan", "list"]
}
"#],
        path: "secret/x",
        want: &["list", "scan"],
    },
    Case {
        name: "plus_literal_in_segment",
        policies: &[r#"path "secret/+x/y" {
  capabilities = ["read"]
}
"#],
        path: "secret/+x/y",
        want: &["read"],
    },
    Case {
        name: "plus_literal_in_segment_not_wildcard",
        policies: &[r#"path "secret/+x/y" {
  capabilities = ["read"]
}
"#],
        path: "secret/ax/y",
        want: &["deny"],
    },
];

#[test]
fn documented_examples_match_openbao() {
    assert!(CASES.len() >= 30);
    let mut failures = Vec::new();
    for case in CASES {
        let got = acl(case.policies).capabilities(case.path);
        if got != case.want {
            failures.push(format!(
                "{}: {:?} gave {got:?}, want {:?}",
                case.name, case.path, case.want
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `check` must agree with `capabilities` for every case and operation (list-style fallbacks
/// only apply to list and scan).
#[test]
fn check_agrees_with_capabilities_on_the_table() {
    for case in CASES {
        let acl = acl(case.policies);
        for op in [
            "read", "create", "update", "patch", "delete", "list", "scan",
        ] {
            if case.path.ends_with('/') && !matches!(op, "list" | "scan") {
                continue;
            }
            let decision = acl.check(&AclRequest {
                path: case.path,
                capability: op,
                params: None,
            });
            assert_eq!(
                decision.allowed,
                case.want.contains(&op),
                "{} {op}",
                case.name
            );
        }
    }
}

#[test]
fn root_policy_allows_everything() {
    let acl = acl(&[""]);
    assert!(!acl.is_root());
    let root = Arc::new(Policy::parse("root", "").unwrap());
    let acl = Acl::new(&[root]);
    assert!(acl.is_root());
    assert_eq!(acl.capabilities("sys/anything"), ["root"]);
    let decision = acl.check(&AclRequest {
        path: "sys/audit/file",
        capability: "delete",
        params: None,
    });
    assert!(decision.allowed && decision.is_root && decision.sudo);
}

#[test]
fn root_wins_alongside_other_policies() {
    let deny = Arc::new(
        Policy::parse("deny-all", "path \"*\" {\n  capabilities = [\"deny\"]\n}").unwrap(),
    );
    let root = Arc::new(Policy::parse("root", "").unwrap());
    assert!(Acl::new(&[deny, root]).is_root());
}

#[test]
fn sudo_is_reported_by_the_deciding_rule() {
    let acl = acl(&[r#"path "sys/audit*" {
  capabilities = ["sudo", "read"]
}
path "sys/audit/locked" {
  capabilities = ["read"]
}
"#]);
    let ask = |path, capability| {
        acl.check(&AclRequest {
            path,
            capability,
            params: None,
        })
    };
    let d = ask("sys/audit/file", "read");
    assert!(d.allowed && d.sudo && !d.is_root);
    // Vault reports root privileges even when the operation itself is refused.
    let d = ask("sys/audit/file", "update");
    assert!(!d.allowed && d.sudo);
    assert_eq!(d.reason, Some(DenyReason::MissingCapability));
    let d = ask("sys/audit/locked", "read");
    assert!(d.allowed && !d.sudo);
}

#[test]
fn deny_reasons() {
    let acl = acl(&[r#"path "secret/*" {
  capabilities = ["read"]
}
path "secret/no" {
  capabilities = ["deny"]
}
"#]);
    let reason = |path, capability| {
        acl.check(&AclRequest {
            path,
            capability,
            params: None,
        })
        .reason
    };
    assert_eq!(reason("secret/x", "read"), None);
    assert_eq!(reason("other", "read"), Some(DenyReason::NoMatchingRule));
    assert_eq!(reason("secret/no", "read"), Some(DenyReason::ExplicitDeny));
    assert_eq!(
        reason("secret/x", "delete"),
        Some(DenyReason::MissingCapability)
    );
}

#[test]
fn expired_rules_do_not_apply() {
    let policy = Arc::new(
        Policy::parse(
            "p",
            r#"path "secret/old" {
  capabilities = ["read"]
  expiration = "2006-01-02T15:04:05Z"
}
path "secret/new" {
  capabilities = ["read"]
  expiration = "2999-01-02T15:04:05Z"
}
"#,
        )
        .unwrap(),
    );
    let acl = Acl::new(&[policy]);
    assert_eq!(acl.capabilities("secret/old"), ["deny"]);
    assert_eq!(acl.capabilities("secret/new"), ["read"]);
    assert!(acl.valid_until().is_some());
}

/// OpenBao's own `default` policy parses, and grants what it says (templated entity paths are
/// skipped: Tresor tokens have no identity entity).
#[test]
fn openbao_default_policy() {
    let acl = acl(&[OPENBAO_DEFAULT]);
    assert_eq!(acl.capabilities("auth/token/lookup-self"), ["read"]);
    assert_eq!(
        acl.capabilities("cubbyhole/x"),
        ["create", "delete", "list", "read", "update"]
    );
    assert_eq!(
        acl.capabilities("identity/oidc/provider/p/authorize"),
        ["read", "update"]
    );
    assert_eq!(acl.capabilities("identity/entity/id/x"), ["deny"]);
    assert_eq!(acl.capabilities("secret/x"), ["deny"]);
}

const OPENBAO_DEFAULT: &str = r#"
# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own entity by id or name
path "identity/entity/id/{{identity.entity.id}}" {
  capabilities = ["read"]
}
path "identity/entity/name/{{identity.entity.name}}" {
  capabilities = ["read"]
}

path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}

path "sys/leases/renew" {
    capabilities = ["update"]
}

path "sys/leases/lookup" {
    capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

path "sys/wrapping/lookup" {
    capabilities = ["update"]
}

path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

path "sys/tools/hash" {
    capabilities = ["update"]
}
path "sys/tools/hash/*" {
    capabilities = ["update"]
}

path "identity/oidc/provider/+/authorize" {
    capabilities = ["read", "update"]
}
"#;
