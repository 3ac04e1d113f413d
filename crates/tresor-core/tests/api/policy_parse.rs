//! Parsing policy documents: what is accepted (HCL and JSON, legacy `policy`, OpenBao's extra
//! keys) and how bad input is refused (with the line, where the format allows). Accept/refuse
//! outcomes were compared with OpenBao 2.7.2's `sys/policies/acl` where noted.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::time::Duration;

use tresor_core::policy::{Capabilities, Capability, Policy, PolicyError, PolicyErrorKind};

fn parse(text: &str) -> Result<Policy, PolicyError> {
    Policy::parse("test", text)
}

fn error(text: &str) -> PolicyError {
    match parse(text) {
        Ok(policy) => panic!("accepted: {policy:?}"),
        Err(e) => e,
    }
}

fn caps(names: &[Capability]) -> Capabilities {
    names.iter().copied().collect()
}

#[test]
fn full_hcl_rule() {
    let text = r#"
# comment
// another
/* and a block comment */
name = "ignored"
path "/secret/foo" {
  capabilities        = ["create", "read", "update", "patch", "delete", "list", "sudo", "scan", "subscribe"]
  required_parameters = ["a", "B"]
  allowed_parameters  = {
    "k"  = ["v1", "v2"]
    "*"  = []
    Mixed = [1, true, null]
  }
  denied_parameters   = { "x" = [] }
  min_wrapping_ttl    = "1s"
  max_wrapping_ttl    = "90m"
  comment             = "why"
}
"#;
    let policy = parse(text).unwrap();
    assert_eq!(policy.name(), "test");
    assert_eq!(policy.raw(), text, "original text kept for reads");
    let [rule] = policy.rules() else {
        panic!("{:?}", policy.rules())
    };
    assert_eq!(rule.pattern, "secret/foo", "leading / stripped");
    assert_eq!(rule.line, Some(6));
    let p = &rule.permissions;
    assert_eq!(
        p.capabilities,
        Capability::ALL
            .into_iter()
            .filter(|c| *c != Capability::Deny)
            .collect()
    );
    assert_eq!(p.required_parameters, ["a", "B"]);
    assert_eq!(p.allowed_parameters.len(), 3);
    assert!(
        p.allowed_parameters.contains_key("mixed"),
        "keys lowercased"
    );
    assert_eq!(p.allowed_parameters["k"], ["v1", "v2"]);
    assert!(p.denied_parameters["x"].is_empty());
    assert_eq!(p.min_wrapping_ttl, Some(Duration::from_secs(1)));
    assert_eq!(p.max_wrapping_ttl, Some(Duration::from_secs(5400)));
}

#[test]
fn json_forms() {
    let object =
        parse(r#"{"path": {"secret/*": {"capabilities": ["read"], "min_wrapping_ttl": 60}}}"#)
            .unwrap();
    let [rule] = object.rules() else { panic!() };
    assert_eq!(rule.pattern, "secret/*");
    assert_eq!(rule.permissions.capabilities, caps(&[Capability::Read]));
    assert_eq!(
        rule.permissions.min_wrapping_ttl,
        Some(Duration::from_secs(60))
    );
    let list = parse(
        r#" {"name": "x", "path": [{"a": {"policy": "read"}}, {"b": {"capabilities": []}}]}"#,
    )
    .unwrap();
    assert_eq!(list.rules().len(), 2);
    assert_eq!(
        list.rules()[0].permissions.capabilities,
        caps(&[Capability::Read, Capability::List])
    );
}

#[test]
fn empty_policies_are_valid() {
    for text in ["", "   \n", "# nothing here\n", "{}"] {
        assert!(parse(text).unwrap().rules().is_empty(), "{text:?}");
    }
}

#[test]
fn legacy_policy_values() {
    let rule = |text: &str| parse(text).unwrap().rules()[0].permissions.capabilities;
    use Capability::*;
    assert_eq!(
        rule("path \"a\" {\n  policy = \"read\"\n}"),
        caps(&[Read, List])
    );
    assert_eq!(
        rule("path \"a\" {\n  policy = \"write\"\n}"),
        caps(&[Create, Read, Update, Delete, List])
    );
    assert_eq!(
        rule("path \"a\" {\n  policy = \"sudo\"\n}"),
        caps(&[Create, Read, Update, Delete, List, Sudo])
    );
    assert_eq!(
        rule("path \"a\" {\n  policy = \"deny\"\n  capabilities = [\"read\"]\n}"),
        Capabilities::DENY
    );
    // OpenBao: `invalid policy "list"`.
    let e = error("path \"a\" {\n  policy = \"list\"\n}");
    assert!(
        matches!(e.kind, PolicyErrorKind::InvalidLegacyPolicy { ref value, .. } if value == "list")
    );
    assert_eq!(e.line, Some(2));
}

#[test]
fn deny_stops_reading_the_rule() {
    // As in OpenBao, nothing after `deny` is validated: a later bogus capability and a bad
    // TTL pass, while a bogus capability before `deny` does not.
    let policy = parse("path \"a\" {\n  capabilities = [\"read\", \"deny\", \"bogus\"]\n  min_wrapping_ttl = \"zz\"\n}").unwrap();
    assert_eq!(
        policy.rules()[0].permissions.capabilities,
        Capabilities::DENY
    );
    let e = error("path \"a\" {\n  capabilities = [\"bogus\", \"deny\"]\n}");
    assert!(matches!(e.kind, PolicyErrorKind::UnknownCapability { .. }));
}

#[test]
fn malformed_hcl_names_the_line() {
    let e = error("path \"a\" {\n  capabilities = [\"read\"\n}\n");
    assert!(matches!(e.kind, PolicyErrorKind::Syntax { .. }), "{e}");
    assert_eq!(e.line, Some(3));
    assert!(e.to_string().starts_with("line 3: syntax error"), "{e}");

    let e = error("path \"a\" {\n  capabilities = [\"read\"]\n");
    assert!(matches!(e.kind, PolicyErrorKind::Syntax { .. }));
    assert!(e.line.is_some());

    let e = error("\n\npath \"a\" {\n  capabilities = [read]\n}\n");
    assert!(
        matches!(
            e.kind,
            PolicyErrorKind::WrongType {
                found: "an unquoted word",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.line, Some(4));
}

#[test]
fn unknown_capability_is_named() {
    let e = error("path \"secret/*\" {\n  capabilities = [\"reed\"]\n}");
    assert_eq!(
        e.kind,
        PolicyErrorKind::UnknownCapability {
            pattern: "secret/*".to_owned(),
            capability: "reed".to_owned(),
        }
    );
    assert_eq!(e.line, Some(2));
    assert_eq!(
        e.to_string(),
        "line 2: path \"secret/*\": invalid capability \"reed\""
    );
    // Case-sensitive, as in OpenBao.
    assert!(matches!(
        error("path \"a\" {\n  capabilities = [\"READ\"]\n}").kind,
        PolicyErrorKind::UnknownCapability { .. }
    ));
    // JSON: no line, still named.
    let e = error(r#"{"path": {"a": {"capabilities": ["nope"]}}}"#);
    assert!(
        matches!(e.kind, PolicyErrorKind::UnknownCapability { ref capability, .. } if capability == "nope")
    );
}

#[test]
fn unknown_keys_name_the_line() {
    let e = error("path \"a\" {\n  capabilities = [\"read\"]\n  foo = 1\n}");
    assert_eq!(
        e.kind,
        PolicyErrorKind::UnknownKey {
            key: "foo".to_owned(),
            place: "in path \"a\"".to_owned(),
        }
    );
    assert_eq!(e.line, Some(3));

    let e = error("foo = 1\npath \"a\" {\n  capabilities = [\"read\"]\n}");
    assert!(matches!(e.kind, PolicyErrorKind::UnknownKey { ref key, .. } if key == "foo"));
    assert_eq!(e.line, Some(1));

    let e = error("path \"a\" {\n}\nrules \"b\" {\n}");
    assert!(matches!(e.kind, PolicyErrorKind::UnknownKey { ref key, .. } if key == "rules"));
    assert_eq!(e.line, Some(3));

    let e = error(r#"{"path": {"a": {"capabilities": ["read"], "zzz": 1}}}"#);
    assert!(matches!(e.kind, PolicyErrorKind::UnknownKey { ref key, .. } if key == "zzz"));
    let e = error(r#"{"paths": {}}"#);
    assert!(matches!(e.kind, PolicyErrorKind::UnknownKey { ref key, .. } if key == "paths"));
}

#[test]
fn openbao_keys_without_tresor_support_are_refused() {
    for key in [
        "pagination_limit = 10",
        "mfa_methods = [\"m\"]",
        "list_scan_response_keys_filter_path = \"{{ .path }}\"",
    ] {
        let e = error(&format!(
            "path \"a\" {{\n  capabilities = [\"list\"]\n  {key}\n}}"
        ));
        assert!(
            matches!(e.kind, PolicyErrorKind::Unsupported { .. }),
            "{key}: {e}"
        );
        assert_eq!(e.line, Some(3));
    }
    let e = error(
        "path \"a\" {\n  capabilities = [\"read\"]\n  control_group {\n    ttl = \"1h\"\n  }\n}",
    );
    assert!(
        matches!(e.kind, PolicyErrorKind::Unsupported { ref key, .. } if key == "control_group")
    );
    assert_eq!(e.line, Some(3));
}

#[test]
fn json_with_wrong_types() {
    let wrong = |text: &str, key: &str| {
        let e = error(text);
        match &e.kind {
            PolicyErrorKind::WrongType { key: k, .. } => assert_eq!(k, key, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
        assert_eq!(e.line, None);
    };
    wrong(
        r#"{"path": {"a": {"capabilities": "read"}}}"#,
        "capabilities",
    );
    wrong(r#"{"path": {"a": {"capabilities": [1]}}}"#, "capabilities");
    wrong(
        r#"{"path": {"a": {"required_parameters": "x"}}}"#,
        "required_parameters",
    );
    wrong(
        r#"{"path": {"a": {"allowed_parameters": {"k": "v"}}}}"#,
        "allowed_parameters",
    );
    wrong(
        r#"{"path": {"a": {"denied_parameters": ["k"]}}}"#,
        "denied_parameters",
    );
    wrong(r#"{"path": {"a": {"policy": ["read"]}}}"#, "policy");
    wrong(r#"{"path": {"a": ["read"]}}"#, "path");
    wrong(r#"{"path": "a"}"#, "path");
    wrong(r#"{"path": ["a"]}"#, "path");
    wrong(r#"{"name": 1}"#, "name");
}

#[test]
fn malformed_json_names_the_line() {
    let e = error("{\n  \"path\": {\n    \"a\": {\"capabilities\": [\"read\"]}\n  }\n");
    assert!(matches!(e.kind, PolicyErrorKind::Syntax { .. }));
    assert_eq!(e.line, Some(5));
    let e = error("{\"path\": {\"a\": {\"capabilities\": [\"read\",]}}}");
    assert!(matches!(e.kind, PolicyErrorKind::Syntax { .. }));
    assert_eq!(e.line, Some(1));
}

#[test]
fn hcl_wrong_types() {
    let e = error("path \"a\" {\n  capabilities = \"read\"\n}");
    assert!(matches!(
        e.kind,
        PolicyErrorKind::WrongType {
            expected: "a list of strings",
            found: "a string",
            ..
        }
    ));
    assert_eq!(e.line, Some(2));
    let e = error(
        "path \"a\" {\n  capabilities = [\"read\"]\n  allowed_parameters = { \"k\" = \"v\" }\n}",
    );
    assert!(matches!(e.kind, PolicyErrorKind::WrongType { .. }));
    assert_eq!(e.line, Some(3));
    let e = error(
        "path \"a\" {\n  capabilities = [\"read\"]\n  allowed_parameters = { \"k\" = [\"${x}\"] }\n}",
    );
    assert!(matches!(e.kind, PolicyErrorKind::WrongType { .. }));
    let e = error("path \"a\" {\n  allowed_parameters {\n    k = []\n  }\n}");
    assert!(matches!(
        e.kind,
        PolicyErrorKind::WrongType {
            found: "a block",
            ..
        }
    ));
    assert_eq!(e.line, Some(2));
}

#[test]
fn path_block_shape() {
    let e = error("path \"a\" \"b\" {\n}");
    assert!(matches!(e.kind, PolicyErrorKind::PathShape { .. }));
    let e = error("path {\n}");
    assert!(matches!(e.kind, PolicyErrorKind::PathShape { .. }));
    let e = error("\npath = { \"a\" = { capabilities = [\"read\"] } }");
    assert!(matches!(e.kind, PolicyErrorKind::PathShape { .. }));
    assert_eq!(e.line, Some(2));
    // A bare-word label is fine (HCL1 allowed it too).
    assert_eq!(parse("path a {\n}").unwrap().rules()[0].pattern, "a");
}

#[test]
fn pattern_checks() {
    let e = error("path \"a/+*\" {\n  capabilities = [\"read\"]\n}");
    assert_eq!(
        e.kind,
        PolicyErrorKind::PlusStar {
            pattern: "a/+*".to_owned()
        }
    );
    assert_eq!(e.line, Some(1));
    let e = error("path \"secret/{{identity.entity.id\" {\n}");
    assert!(matches!(e.kind, PolicyErrorKind::UnbalancedTemplate { .. }));
    let templated =
        parse("path \"secret/{{identity.entity.id}}/*\" {\n  capabilities = [\"read\"]\n}")
            .unwrap();
    assert!(templated.rules()[0].templated);
}

#[test]
fn wrapping_ttls() {
    let e = error("path \"a\" {\n  capabilities = [\"read\"]\n  min_wrapping_ttl = \"zz\"\n}");
    assert!(matches!(
        e.kind,
        PolicyErrorKind::InvalidValue {
            key: "min_wrapping_ttl",
            ..
        }
    ));
    assert_eq!(e.line, Some(3));
    let e = error(
        "path \"a\" {\n  capabilities = [\"read\"]\n  min_wrapping_ttl = \"2h\"\n  max_wrapping_ttl = \"1h\"\n}",
    );
    assert!(matches!(e.kind, PolicyErrorKind::WrappingTtlOrder { .. }));
    let e = error("path \"a\" {\n  capabilities = [\"read\"]\n  max_wrapping_ttl = true\n}");
    assert!(matches!(
        e.kind,
        PolicyErrorKind::InvalidValue {
            key: "max_wrapping_ttl",
            ..
        }
    ));
    let ok = parse("path \"a\" {\n  capabilities = [\"read\"]\n  min_wrapping_ttl = 60\n  max_wrapping_ttl = \"2d\"\n}").unwrap();
    let p = &ok.rules()[0].permissions;
    assert_eq!(p.min_wrapping_ttl, Some(Duration::from_secs(60)));
    assert_eq!(p.max_wrapping_ttl, Some(Duration::from_secs(172_800)));
}

#[test]
fn expiration() {
    let e = error("path \"a\" {\n  capabilities = [\"read\"]\n  expiration = \"tomorrow\"\n}");
    assert!(matches!(
        e.kind,
        PolicyErrorKind::InvalidValue {
            key: "expiration",
            ..
        }
    ));
    assert_eq!(e.line, Some(3));
    let ok = parse(
        "path \"a\" {\n  capabilities = [\"read\"]\n  expiration = \"2030-01-02T15:04:05Z\"\n}",
    )
    .unwrap();
    assert!(ok.rules()[0].expiration.is_some());
}

#[test]
fn duplicate_paths_are_kept_for_merging() {
    let policy = parse("path \"a\" {\n  capabilities = [\"read\"]\n}\npath \"a\" {\n  capabilities = [\"update\"]\n}").unwrap();
    assert_eq!(policy.rules().len(), 2);
    assert_eq!(policy.rules()[1].line, Some(4));
}
