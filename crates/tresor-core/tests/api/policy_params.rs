//! Parameter constraints: `required_parameters`, `allowed_parameters`, `denied_parameters`,
//! value globs and `*`, and how they merge across policies. Expected answers were taken from
//! OpenBao 2.7.2 by writing to a KV v1 mount with a token holding these policies (403 vs 2xx),
//! except where a test says it documents a deliberate difference.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tresor_core::policy::{Acl, AclRequest, DenyReason, Policy};

fn acl(policies: &[&str]) -> Acl {
    let parsed: Vec<Arc<Policy>> = policies
        .iter()
        .enumerate()
        .map(|(i, text)| Arc::new(Policy::parse(&format!("p{i}"), text).unwrap()))
        .collect();
    Acl::new(&parsed)
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// Asks `op` on `path` with `params`; `None` params means "no body at all".
fn allowed(acl: &Acl, op: &str, path: &str, params: Option<Value>) -> bool {
    let params = params.map(object);
    acl.check(&AclRequest {
        path,
        capability: op,
        params: params.as_ref(),
    })
    .allowed
}

fn update(acl: &Acl, path: &str, params: Value) -> bool {
    allowed(acl, "update", path, Some(params))
}

#[test]
fn documented_allowed_parameters_example() {
    let acl = acl(&[r#"path "secret/restricted" {
  capabilities = ["create", "update"]
  allowed_parameters = {
    "foo" = []
    "bar" = ["zip", "zap"]
  }
}
"#]);
    let p = "secret/restricted";
    assert!(update(&acl, p, json!({"foo": "anything", "bar": "zip"})));
    assert!(update(&acl, p, json!({"bar": "zap"})));
    assert!(!update(&acl, p, json!({"bar": "zop"})));
    assert!(!update(&acl, p, json!({"baz": "1"})));
    assert!(update(&acl, p, json!({})), "no parameters pass");
    assert!(allowed(&acl, "create", p, None));
}

#[test]
fn allowed_values_are_typed_and_globbed() {
    let acl = acl(&[r#"path "kv/*" {
  capabilities = ["create", "update", "read"]
  allowed_parameters = { "n" = [5, "x*"], "f" = [1.5], "b" = [true] }
}
"#]);
    assert!(update(&acl, "kv/a", json!({"n": "xyz"})));
    assert!(
        !update(&acl, "kv/a", json!({"n": "5"})),
        "string is not number"
    );
    assert!(update(&acl, "kv/a", json!({"b": true})));
    assert!(!update(&acl, "kv/a", json!({"b": "true"})));
    assert!(!update(&acl, "kv/a", json!({"n": null})));
    assert!(!update(&acl, "kv/a", json!({"z": 1})), "unlisted key");
    assert!(
        update(&acl, "kv/a", json!({"N": "xa"})),
        "request keys are lowercased"
    );
}

/// Deliberate difference: OpenBao never matches numbers (Go `json.Number` vs `int`), so there
/// `{"n": 5}` and `{"f": 1.5}` are refused and `denied_parameters = { n = [5] }` lets 5 through.
#[test]
fn numbers_compare_by_value() {
    let acl_allow = acl(&[r#"path "kv/*" {
  capabilities = ["update"]
  allowed_parameters = { "n" = [5], "f" = [1.5] }
}
"#]);
    assert!(update(&acl_allow, "kv/a", json!({"n": 5})));
    assert!(update(&acl_allow, "kv/a", json!({"n": 5.0})));
    assert!(update(&acl_allow, "kv/a", json!({"f": 1.5})));
    assert!(!update(&acl_allow, "kv/a", json!({"n": 6})));
    let acl_deny = acl(&[r#"path "kv/*" {
  capabilities = ["update"]
  denied_parameters = { "n" = [5] }
}
"#]);
    assert!(!update(&acl_deny, "kv/a", json!({"n": 5})));
}

#[test]
fn value_globs() {
    let acl = acl(&[r#"path "kv/*" {
  capabilities = ["update"]
  allowed_parameters = { "k" = ["*mid*", "pre-*", "*-suf", "*"] }
}
"#]);
    for ok in ["xmidy", "pre-1", "1-suf", "*"] {
        assert!(update(&acl, "kv/a", json!({ "k": ok })), "{ok}");
    }
    assert!(
        !update(&acl, "kv/a", json!({"k": "other"})),
        "a lone * is literal"
    );
}

#[test]
fn denied_parameters() {
    let acl = acl(&[r#"path "kv/*" {
  capabilities = ["create", "update"]
  denied_parameters = { "no_store" = [false, "false"] }
}
"#]);
    assert!(!update(&acl, "kv/a", json!({"no_store": false})));
    assert!(!update(&acl, "kv/a", json!({"no_store": "false"})));
    assert!(update(&acl, "kv/a", json!({"no_store": true, "x": 1})));
    let decision = acl.check(&AclRequest {
        path: "kv/a",
        capability: "update",
        params: Some(&object(json!({"no_store": false}))),
    });
    assert_eq!(
        decision.reason,
        Some(DenyReason::DeniedParameter("no_store".to_owned()))
    );
}

#[test]
fn denied_empty_list_denies_any_value() {
    let acl = acl(&[r#"path "auth/userpass/users/*" {
  capabilities = ["update"]
  denied_parameters = {
    "token_policies" = []
    "policies" = []
  }
}
"#]);
    let p = "auth/userpass/users/bob";
    assert!(update(&acl, p, json!({"password": "x"})));
    assert!(!update(
        &acl,
        p,
        json!({"password": "x", "policies": "admin"})
    ));
    assert!(!update(&acl, p, json!({"Token_Policies": ["a"]})));
}

#[test]
fn denied_star_denies_every_parameter_but_only_for_writes_and_reads() {
    let acl = acl(&[r#"path "transit/keys/*" {
  capabilities = ["create", "update", "delete", "list"]
  denied_parameters = { "*" = [] }
}
"#]);
    assert!(!update(&acl, "transit/keys/k", json!({"a": "1"})));
    assert!(allowed(&acl, "create", "transit/keys/k", None));
    assert!(allowed(
        &acl,
        "delete",
        "transit/keys/k",
        Some(json!({"a": "1"}))
    ));
    assert!(allowed(
        &acl,
        "list",
        "transit/keys/",
        Some(json!({"a": "1"}))
    ));
}

#[test]
fn allowed_star() {
    // `*` alone allows everything, whatever its value list.
    let acl1 = acl(&[r#"path "kv/*" {
  capabilities = ["update"]
  allowed_parameters = { "*" = ["zzz"] }
}
"#]);
    assert!(update(&acl1, "kv/a", json!({"q": 1})));
    // `*` with other keys: others free, listed keys restricted.
    let acl2 = acl(&[r#"path "secret/foo" {
  capabilities = ["update"]
  allowed_parameters = {
    "bar" = ["zip", "zap"]
    "*"   = []
  }
}
"#]);
    assert!(update(&acl2, "secret/foo", json!({"q": 1})));
    assert!(!update(&acl2, "secret/foo", json!({"bar": "w"})));
    assert!(update(&acl2, "secret/foo", json!({"bar": "zip", "q": 2})));
}

#[test]
fn denied_wins_over_allowed() {
    let acl = acl(&[r#"path "kv/*" {
  capabilities = ["update"]
  allowed_parameters = { "a" = [] }
  denied_parameters = { "a" = ["bad"] }
}
"#]);
    assert!(update(&acl, "kv/a", json!({"a": "good"})));
    assert!(!update(&acl, "kv/a", json!({"a": "bad"})));
}

#[test]
fn required_parameters() {
    let acl = acl(&[r#"path "kv/*" {
  capabilities = ["create", "update", "read"]
  required_parameters = ["Name"]
}
"#]);
    // The required name is lowercased; the request key is looked up as sent.
    assert!(update(&acl, "kv/a", json!({"name": 1})));
    assert!(!update(&acl, "kv/a", json!({"Name": 1})));
    // Reads are parameter-checked too (query parameters).
    assert!(!allowed(&acl, "read", "kv/a", None));
    assert!(allowed(&acl, "read", "kv/a", Some(json!({"name": "1"}))));
    let decision = acl.check(&AclRequest {
        path: "kv/a",
        capability: "update",
        params: None,
    });
    assert_eq!(
        decision.reason,
        Some(DenyReason::MissingRequiredParameter("Name".to_owned()))
    );
}

#[test]
fn merged_allowed_values_union() {
    let acl = acl(&[
        r#"path "kv/*" {
  capabilities = ["create", "update"]
  allowed_parameters = { "a" = ["x"] }
}
"#,
        r#"path "kv/*" {
  capabilities = ["update"]
  allowed_parameters = { "a" = ["y"] }
}
"#,
    ]);
    assert!(update(&acl, "kv/a", json!({"a": "x"})));
    assert!(update(&acl, "kv/a", json!({"a": "y"})));
    assert!(!update(&acl, "kv/a", json!({"a": "z"})));
}

/// Vault's merge keeps constraints from either policy: a policy without `allowed_parameters`
/// does not lift another's on the same pattern.
#[test]
fn merged_constraints_accumulate() {
    let acl1 = acl(&[
        "path \"kv/*\" {\n  capabilities = [\"create\", \"update\"]\n}\n",
        "path \"kv/*\" {\n  capabilities = [\"read\"]\n  allowed_parameters = { \"a\" = [\"y\"] }\n}\n",
    ]);
    assert!(!update(&acl1, "kv/a", json!({"a": "x"})));
    assert!(!update(&acl1, "kv/a", json!({"b": "y"})));
    assert!(update(&acl1, "kv/a", json!({"a": "y"})));

    // An empty list (any value) absorbs a non-empty one.
    let acl2 = acl(&[
        "path \"kv/*\" {\n  capabilities = [\"update\"]\n  allowed_parameters = { \"a\" = [] }\n}\n",
        "path \"kv/*\" {\n  capabilities = [\"read\"]\n  allowed_parameters = { \"a\" = [\"y\"] }\n}\n",
    ]);
    assert!(update(&acl2, "kv/a", json!({"a": "x"})));

    // Required parameters are unioned.
    let acl3 = acl(&[
        "path \"kv/*\" {\n  capabilities = [\"update\"]\n  required_parameters = [\"a\"]\n}\n",
        "path \"kv/*\" {\n  capabilities = [\"read\"]\n  required_parameters = [\"b\"]\n}\n",
    ]);
    assert!(!update(&acl3, "kv/a", json!({"a": "x"})));
    assert!(update(&acl3, "kv/a", json!({"a": "x", "b": "y"})));

    // Denied: an empty list absorbs a value list.
    let acl4 = acl(&[
        "path \"kv/*\" {\n  capabilities = [\"update\"]\n  denied_parameters = { \"a\" = [\"x\"] }\n}\n",
        "path \"kv/*\" {\n  capabilities = [\"read\"]\n  denied_parameters = { \"a\" = [] }\n}\n",
    ]);
    assert!(!update(&acl4, "kv/a", json!({"a": "y"})));
    assert!(update(&acl4, "kv/a", json!({"b": "y"})));
}

#[test]
fn constraints_of_a_lower_priority_rule_do_not_apply() {
    let acl = acl(&[r#"path "secret/*" {
  capabilities = ["update"]
  denied_parameters = { "*" = [] }
}
path "secret/open/*" {
  capabilities = ["update"]
}
"#]);
    assert!(update(&acl, "secret/open/x", json!({"a": 1})));
    assert!(!update(&acl, "secret/closed", json!({"a": 1})));
}
