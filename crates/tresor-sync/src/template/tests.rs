#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use super::*;

fn data() -> Value {
    Value::string_map([
        ("username", "octo"),
        ("token", "ghp_abc123"),
        ("json", r#"{"user":"u","port":5432,"nested":{"k":"v"}}"#),
        ("spaced", "  padded \n"),
        ("b64", "aGVsbG8="),
        ("html", "a<b>&c"),
    ])
}

fn r(text: &str) -> String {
    render("t", text, &data()).unwrap().to_string()
}

fn e(text: &str) -> String {
    render("t", text, &data()).unwrap_err().to_string()
}

#[test]
fn fields_and_text() {
    assert_eq!(r("user={{ .username }}!"), "user=octo!");
    assert_eq!(r("{{.username}}{{.token}}"), "octoghp_abc123");
    assert_eq!(r("no actions"), "no actions");
    assert_eq!(r(""), "");
}

#[test]
fn the_eso_dockerconfigjson_pattern() {
    // As in ESO's docs and the seeds: the auth field is base64("user:token").
    let text = r#"{"auths":{"ghcr.io":{"username":"{{ .username }}","password":"{{ .token }}","auth":"{{ printf "%s:%s" .username .token | b64enc }}"}}}"#;
    let out = r(text);
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(parsed["auths"]["ghcr.io"]["username"], "octo");
    assert_eq!(parsed["auths"]["ghcr.io"]["password"], "ghp_abc123");
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD
        .decode(parsed["auths"]["ghcr.io"]["auth"].as_str().unwrap())
        .unwrap();
    assert_eq!(auth, b"octo:ghp_abc123");
}

#[test]
fn pipelines_and_functions() {
    assert_eq!(r("{{ .username | upper }}"), "OCTO");
    assert_eq!(r("{{ .username | upper | lower }}"), "octo");
    assert_eq!(r("{{ .b64 | b64dec }}"), "hello");
    assert_eq!(r("{{ .username | b64enc }}"), "b2N0bw==");
    assert_eq!(r("{{ .username | b64enc | b64dec }}"), "octo");
    assert_eq!(r("[{{ .spaced | trim }}]"), "[padded]");
    assert_eq!(r("{{ .username | quote }}"), "\"octo\"");
    assert_eq!(r("{{ quote \"a\\\"b\" }}"), r#""a\"b""#);
    assert_eq!(r("{{ .username | squote }}"), "'octo'");
    assert_eq!(r("{{ .username | toJson }}"), "\"octo\"");
    assert_eq!(r("{{ .html | toJson }}"), r#""a\u003cb\u003e\u0026c""#);
    assert_eq!(r("{{ (.json | fromJson).user }}"), "u");
    assert_eq!(r("{{ (.json | fromJson).port }}"), "5432");
    assert_eq!(
        r("{{ (.json | fromJson).nested | toJson }}"),
        r#"{"k":"v"}"#
    );
    assert_eq!(r("{{ index (.json | fromJson) \"user\" }}"), "u");
    assert_eq!(r("{{ get (.json | fromJson) \"missing\" }}"), "");
    assert_eq!(r("{{ printf \"%s:%d\" .username 5 }}"), "octo:5");
    assert_eq!(
        r("{{ printf \"%q %v %%\" .username true }}"),
        "\"octo\" true %"
    );
}

#[test]
fn more_sprig_functions() {
    assert_eq!(r("{{ \"\" | default .username }}"), "octo");
    assert_eq!(r("{{ .token | default \"fallback\" }}"), "ghp_abc123");
    assert_eq!(r("{{ default \"fallback\" \"\" }}"), "fallback");
    assert_eq!(r("{{ replace \"_\" \"-\" \"a_b_c\" }}"), "a-b-c");
    assert_eq!(r("{{ trimPrefix \"ghp_\" .token }}"), "abc123");
    assert_eq!(r("{{ trimSuffix \"123\" .token }}"), "ghp_abc");
    assert_eq!(r("{{ \"a\\nb\" | indent 2 }}"), "  a\n  b");
    assert_eq!(r("x:{{ \"a\" | nindent 2 }}"), "x:\n  a");
    assert_eq!(r("{{ .token | toString }}"), "ghp_abc123");
    assert_eq!(r("{{ len .username }}"), "4");
    assert_eq!(r("{{ `raw \\n` }}"), "raw \\n");
}

#[test]
fn whitespace_trimming() {
    assert_eq!(r("a  {{- .username -}}  b"), "aoctob");
    assert_eq!(r("a\n  {{- .username }}\n"), "aocto\n");
    assert_eq!(r("{{ .username -}}\n\n  x"), "octox");
    // `{{-3}}` is the number -3, not a trim marker.
    assert_eq!(r("a {{-3}}"), "a -3");
    assert_eq!(r("a {{/* a comment */}}b"), "a b");
    assert_eq!(r("a {{- /* trimmed comment */ -}} b"), "ab");
}

#[test]
fn conditionals() {
    assert_eq!(r("{{ if .username }}yes{{ else }}no{{ end }}"), "yes");
    assert_eq!(
        r("{{ if eq .username \"x\" }}x{{ else if eq .username \"octo\" }}o{{ else }}n{{ end }}"),
        "o"
    );
    assert_eq!(
        r("{{ if not (eq .username \"octo\") }}a{{ else }}b{{ end }}"),
        "b"
    );
    assert_eq!(r("{{ if and .username .token }}both{{ end }}"), "both");
    assert_eq!(r("{{ if or \"\" .token }}one{{ end }}"), "one");
    assert_eq!(r("{{- if ne .username \"octo\" }}no{{- end }}"), "");
}

#[test]
fn errors_name_the_problem_never_a_value() {
    assert!(e("{{ .missing | default \"x\" }}").contains("no entry for key \"missing\""));
    let m = e("{{ .nope }}");
    assert!(m.contains("map has no entry for key \"nope\""), "{m}");
    let m = e("{{ .username | sha256sum }}");
    assert!(m.contains("function \"sha256sum\" not defined"), "{m}");
    let m = e("{{ .token | b64dec }}");
    assert!(m.contains("not valid base64") && !m.contains("ghp_"), "{m}");
    let m = e("{{ .token | fromJson }}");
    assert!(m.contains("invalid JSON") && !m.contains("ghp_"), "{m}");
    let m = e("{{ printf \"%s %s\" .token }}");
    assert!(m.contains("missing argument") && !m.contains("ghp_"), "{m}");
    let m = e("{{ .username.deeper }}");
    assert!(
        m.contains("can't evaluate field deeper in type string"),
        "{m}"
    );
    assert!(e("{{ .username ").contains("unclosed action"));
    assert!(e("{{ if .username }}x").contains("if without end"));
    assert!(e("{{ end }}").contains("unexpected"));
    assert!(e("{{ range .x }}{{ end }}").contains("not supported"));
    assert!(e("{{ $x := 1 }}").contains("not supported"));
    assert!(
        e("{{ \"unterminated }}").contains("unclosed action")
            || e("{{ \"unterminated }}").contains("unterminated")
    );
    assert!(e("{{ .username | }}").contains("missing command"));
    assert!(e("{{ ( .username }}").contains("unclosed ("));
    // Errors carry the template name and line.
    assert!(
        e("line1\n{{ .nope }}").starts_with("template t:2:"),
        "{}",
        e("line1\n{{ .nope }}")
    );
}

#[test]
fn hostile_templates_are_bounded() {
    // Nesting.
    let deep = format!(
        "{}{}",
        "{{ if .username }}".repeat(100),
        "{{ end }}".repeat(100)
    );
    assert!(e(&deep).contains("nested deeper"));
    let parens = format!("{{{{ {}.username{} }}}}", "(".repeat(100), ")".repeat(100));
    assert!(e(&parens).contains("nested deeper"));
    // Output growth through indent, replace and repetition.
    assert!(e("{{ .username | indent 100000000 }}").contains("larger than"));
    let grow = "{{ replace \"o\" \"oooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooo\" (replace \"o\" \"oooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooo\" (replace \"o\" \"oooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooo\" .username)) }}";
    assert!(e(grow).contains("larger than"));
    let many = "{{ .token | indent 1000 }}".repeat(1100);
    let m = e(&many);
    assert!(m.contains("larger than"), "{m}");
    // Source size.
    let huge = "x".repeat(MAX_TEMPLATE_BYTES + 1);
    assert!(e(&huge).contains("larger than"));
    // Work: many big intermediate values that are never written.
    let big = Value::string_map([("v", &*"x".repeat(500_000))]);
    let busy = "{{ if .v | b64enc | b64dec }}{{ end }}".repeat(100);
    let m = render("t", &busy, &big).unwrap_err().to_string();
    assert!(m.contains("functions produced more than"), "{m}");
}

#[test]
fn values_do_not_show_in_debug() {
    let shown = format!("{:?}", data());
    assert!(!shown.contains("ghp_"), "{shown}");
}
