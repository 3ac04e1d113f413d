#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::collections::BTreeMap;

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
    let m = e("{{ .username | shasum }}");
    assert!(m.contains("function \"shasum\" not defined"), "{m}");
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
    assert!(e("{{ define \"x\" }}{{ end }}").contains("not supported"));
    assert!(e("{{ template \"x\" }}").contains("not supported"));
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
    assert!(m.contains("produced more than"), "{m}");
}

#[test]
fn values_do_not_show_in_debug() {
    let shown = format!("{:?}", data());
    assert!(!shown.contains("ghp_"), "{shown}");
}

/// Data with lists and maps, as `fromJson` and VSO's `.Secrets` give them.
fn nested() -> Value {
    let mut d = BTreeMap::new();
    d.insert("name".to_owned(), Value::str("octo"));
    d.insert(
        "hosts".to_owned(),
        Value::List(vec![Value::str("a.example"), Value::str("b.example")]),
    );
    d.insert("empty".to_owned(), Value::List(Vec::new()));
    d.insert(
        "users".to_owned(),
        Value::string_map([("zed", "pw-z"), ("alice", "pw-a"), ("Bob", "pw-b")]),
    );
    d.insert("port".to_owned(), Value::Int(5432));
    d.insert("ratio".to_owned(), Value::Float(0.5));
    d.insert("on".to_owned(), Value::Bool(true));
    d.insert("nothing".to_owned(), Value::Null);
    Value::Map(d)
}

fn rn(text: &str) -> String {
    render("t", text, &nested()).unwrap().to_string()
}

fn en(text: &str) -> String {
    render("t", text, &nested()).unwrap_err().to_string()
}

#[test]
fn variables_declare_assign_and_root() {
    assert_eq!(rn("{{ $x := .name }}[{{ $x }}]"), "[octo]");
    // A declaration prints nothing; an assignment changes the nearest variable.
    assert_eq!(rn("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}"), "2");
    assert_eq!(rn("{{ $u := .users }}{{ $u.alice }}"), "pw-a");
    assert_eq!(rn("{{ $.name }}|{{ $ | len }}"), "octo|8");
    assert_eq!(rn("{{ $x := .name | upper }}{{ $x | lower }}"), "octo");
    assert_eq!(
        rn("{{ $j := `{\"a\":{\"b\":7}}` | fromJson }}{{ $j.a.b }}"),
        "7"
    );
    // `$` stays the root inside range and with, where dot moves.
    assert_eq!(
        rn("{{ range .hosts }}{{ . }}={{ $.name }};{{ end }}"),
        "a.example=octo;b.example=octo;"
    );
    assert_eq!(
        rn("{{ with .users }}{{ .Bob }}/{{ $.name }}{{ end }}"),
        "pw-b/octo"
    );
    // Assignment inside a range is seen after it (Go's semantics since 1.11).
    assert_eq!(
        rn("{{ $n := 0 }}{{ range .hosts }}{{ $n = add1 $n }}{{ end }}{{ $n }}"),
        "2"
    );
}

#[test]
fn variables_are_scoped_as_go_scopes_them() {
    // Declared in a block: gone after its end (a parse error, as in Go).
    let m = en("{{ if .on }}{{ $x := 1 }}{{ end }}{{ $x }}");
    assert!(m.contains("undefined variable \"$x\""), "{m}");
    let m = en("{{ range .hosts }}{{ $h := . }}{{ end }}{{ $h }}");
    assert!(m.contains("undefined variable \"$h\""), "{m}");
    let m = en("{{ range $i, $h := .hosts }}{{ end }}{{ $i }}");
    assert!(m.contains("undefined variable \"$i\""), "{m}");
    // The condition's variable is visible in the else branch too.
    assert_eq!(
        rn("{{ if $x := .nothing }}y{{ else }}[{{ $x }}]{{ end }}"),
        "[<nil>]"
    );
    // A body's variable is not visible in the else branch.
    let m = en("{{ if .on }}{{ $y := 1 }}{{ else }}{{ $y }}{{ end }}");
    assert!(m.contains("undefined variable \"$y\""), "{m}");
    assert!(en("{{ $nope }}").contains("undefined variable \"$nope\""));
    assert!(en("{{ $nope = 1 }}").contains("undefined variable \"$nope\""));
    // Shadowing: the inner declaration ends with its block.
    assert_eq!(
        rn("{{ $x := \"outer\" }}{{ if .on }}{{ $x := \"inner\" }}{{ $x }}{{ end }},{{ $x }}"),
        "inner,outer"
    );
    // Two variables only in range.
    assert!(en("{{ $a, $b := .hosts }}").contains("too many declarations"));
    assert!(en("{{ $ := 1 }}").contains("can't declare"));
    assert!(en("{{ .name := 1 }}").contains("unexpected :="));
}

#[test]
fn range_over_lists_maps_and_integers() {
    assert_eq!(
        rn("{{ range .hosts }}<{{ . }}>{{ end }}"),
        "<a.example><b.example>"
    );
    assert_eq!(
        rn("{{ range $i, $h := .hosts }}{{ $i }}:{{ $h }} {{ end }}"),
        "0:a.example 1:b.example "
    );
    assert_eq!(
        rn("{{ range $h := .hosts }}{{ $h }},{{ end }}"),
        "a.example,b.example,"
    );
    // Maps in sorted key order (byte order: upper case first), as Go ranges over them.
    assert_eq!(
        rn("{{ range $k, $v := .users }}{{ $k }}={{ $v }};{{ end }}"),
        "Bob=pw-b;alice=pw-a;zed=pw-z;"
    );
    assert_eq!(rn("{{ range .users }}{{ . }} {{ end }}"), "pw-b pw-a pw-z ");
    // else when empty or nil.
    assert_eq!(rn("{{ range .empty }}x{{ else }}none{{ end }}"), "none");
    assert_eq!(rn("{{ range .nothing }}x{{ else }}nil{{ end }}"), "nil");
    assert_eq!(rn("{{ range .hosts }}x{{ else }}none{{ end }}"), "xx");
    // Integers (Go 1.22).
    assert_eq!(rn("{{ range 3 }}{{ . }}{{ end }}"), "012");
    assert_eq!(rn("{{ range $i := 2 }}{{ $i }}{{ end }}"), "01");
    assert!(en("{{ range $a, $b := 2 }}{{ end }}").contains("two variables"));
    // break and continue.
    assert_eq!(
        rn(
            "{{ range $i := 10 }}{{ if eq $i 2 }}{{ continue }}{{ end }}{{ if gt $i 3 }}{{ break }}{{ end }}{{ $i }}{{ end }}"
        ),
        "013"
    );
    assert!(en("{{ break }}").contains("outside {{range}}"));
    assert!(en("{{ range .hosts }}{{ else }}{{ continue }}{{ end }}").contains("outside"));
    // Nested ranges, and a range over what a function returns.
    assert_eq!(
        rn(
            "{{ range $h := .hosts }}{{ range $k, $_ := $.users }}{{ $k }}@{{ $h }} {{ end }}{{ end }}"
        ),
        "Bob@a.example alice@a.example zed@a.example Bob@b.example alice@b.example zed@b.example "
    );
    assert_eq!(
        rn("{{ range splitList \",\" \"x,y\" }}[{{ . }}]{{ end }}"),
        "[x][y]"
    );
    assert!(en("{{ range .name }}{{ end }}").contains("range can't iterate over a string"));
    assert!(en("{{ range .hosts }}").contains("range without end"));
    assert!(
        en("{{ range .hosts }}{{ else if .on }}{{ end }}").contains("unexpected tokens after else")
    );
}

#[test]
fn with_and_else_with() {
    assert_eq!(rn("{{ with .name }}<{{ . }}>{{ end }}"), "<octo>");
    assert_eq!(rn("{{ with .empty }}x{{ else }}empty{{ end }}"), "empty");
    assert_eq!(
        rn("{{ with .nothing }}a{{ else with .users }}{{ .zed }}{{ else }}c{{ end }}"),
        "pw-z"
    );
    assert_eq!(rn("{{ with $u := .users }}{{ $u.alice }}{{ end }}"), "pw-a");
    assert_eq!(rn("{{ with .nothing }}x{{ end }}"), "");
    assert!(
        en("{{ with .name }}{{ else if .on }}{{ end }}").contains("unexpected tokens after else")
    );
    assert!(en("{{ with .name }}").contains("with without end"));
    assert!(en("{{ if .on }}{{ else }}{{ else }}{{ end }}").contains("expected end; found else"));
}

#[test]
fn if_else_if_chains_and_logic() {
    let t = "{{ if lt .port 1024 }}low{{ else if le .port 5432 }}mid{{ else }}high{{ end }}";
    assert_eq!(rn(t), "mid");
    assert_eq!(rn("{{ if and .on (gt .port 5000) }}y{{ end }}"), "y");
    assert_eq!(rn("{{ if or .nothing .empty }}y{{ else }}n{{ end }}"), "n");
    assert_eq!(rn("{{ or .nothing .name }}"), "octo");
    assert_eq!(rn("{{ and .on .name }}"), "octo");
    assert_eq!(rn("{{ and .nothing .name }}"), "<nil>");
    assert_eq!(rn("{{ .name | or .nothing }}"), "octo");
    // and/or stop at the deciding argument: the missing key is never read.
    assert_eq!(
        rn("{{ if and .nothing .missing }}y{{ else }}n{{ end }}"),
        "n"
    );
    assert_eq!(rn("{{ if or .on .missing }}y{{ end }}"), "y");
    assert!(en("{{ if and .on .missing }}{{ end }}").contains("no entry for key \"missing\""));
    assert_eq!(rn("{{ not .on }}"), "false");
}

#[test]
fn comparisons() {
    for (t, want) in [
        ("{{ eq .port 5432 }}", "true"),
        ("{{ eq .name \"x\" \"octo\" }}", "true"),
        ("{{ ne .name \"octo\" }}", "false"),
        ("{{ lt 1 2 }}", "true"),
        ("{{ le 2 2 }}", "true"),
        ("{{ gt \"b\" \"a\" }}", "true"),
        ("{{ ge \"a\" \"b\" }}", "false"),
        ("{{ lt .ratio 1 }}", "true"),
        ("{{ gt .port 1.5 }}", "true"),
        ("{{ eq .nothing nil }}", "true"),
        ("{{ eq .name nil }}", "false"),
        ("{{ eq .on true }}", "true"),
    ] {
        assert_eq!(rn(t), want, "{t}");
    }
    let m = en("{{ eq .name 1 }}");
    assert!(
        m.contains("incompatible types for comparison: string and int"),
        "{m}"
    );
    assert!(en("{{ lt .on true }}").contains("invalid type for comparison: bool"));
    assert!(en("{{ eq .hosts .hosts }}").contains("non-comparable"));
    assert!(en("{{ lt 1 }}").contains("wrong number of args for lt"));
}

#[test]
fn sprig_functions_teams_use() {
    for (t, want) in [
        ("{{ \"hello world\" | title }}", "Hello World"),
        ("{{ \"a b\\tc\" | nospace }}", "abc"),
        ("{{ trimAll \"$\" \"$5.00$\" }}", "5.00"),
        ("{{ cat \"a\" 1 nil \"b\" }}", "a 1 b"),
        ("{{ repeat 3 \"ab\" }}", "ababab"),
        ("{{ substr 1 3 \"hello\" }}", "el"),
        ("{{ substr 2 -1 \"hello\" }}", "llo"),
        ("{{ trunc 3 \"hello\" }}", "hel"),
        ("{{ trunc -2 \"hello\" }}", "lo"),
        ("{{ splitList \":\" \"u:p\" | last }}", "p"),
        ("{{ (split \":\" \"u:p\")._1 }}", "p"),
        ("{{ join \",\" .hosts }}", "a.example,b.example"),
        (
            "{{ keys .users | sortAlpha | join \",\" }}",
            "Bob,alice,zed",
        ),
        ("{{ list \"b\" \"a\" | sortAlpha | first }}", "a"),
        ("{{ (dict \"k\" \"v\" \"n\" 1).n }}", "1"),
        ("{{ dict \"k\" \"v\" | toJson }}", r#"{"k":"v"}"#),
        ("{{ hasKey .users \"alice\" }}", "true"),
        ("{{ hasKey .users \"carol\" }}", "false"),
        ("{{ coalesce .nothing \"\" .name }}", "octo"),
        ("{{ ternary \"yes\" \"no\" .on }}", "yes"),
        ("{{ add 1 2 3 }}", "6"),
        ("{{ sub .port 32 }}", "5400"),
        ("{{ mul 2 \"21\" }}", "42"),
        ("{{ div 7 2 }}", "3"),
        ("{{ mod 7 2 }}", "1"),
        ("{{ max 1 9 3 }}", "9"),
        ("{{ min 4 2 }}", "2"),
        ("{{ atoi \"42\" | add1 }}", "43"),
        ("{{ int \"3.9\" }}", "3"),
        ("{{ float64 \"1.5\" }}", "1.5"),
        ("{{ regexMatch \"^a.*e$\" \"a.example\" }}", "true"),
        (
            "{{ regexReplaceAll \"(\\\\w+)@(\\\\w+)\" \"u@h\" \"$2/$1\" }}",
            "h/u",
        ),
        (
            "{{ sha256sum \"abc\" }}",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        ("{{ print \"a\" 1 2 \"b\" }}", "a1 2b"),
        ("{{ println \"a\" 1 }}", "a 1\n"),
        (
            "{{ .users | toPrettyJson }}",
            "{\n  \"Bob\": \"pw-b\",\n  \"alice\": \"pw-a\",\n  \"zed\": \"pw-z\"\n}",
        ),
        ("{{ list | toPrettyJson }}", "[]"),
        ("{{ \"<&>\" | toRawJson }}", "\"<&>\""),
        ("{{ \"<&>\" | mustToJson }}", r#""\u003c\u0026\u003e""#),
        ("{{ (`{\"a\":1}` | mustFromJson).a }}", "1"),
    ] {
        assert_eq!(rn(t), want, "{t}");
    }
    let m = en("{{ div 1 0 }}");
    assert!(m.contains("division by zero"), "{m}");
    assert!(en("{{ atoi .name }}").contains("not an integer"));
    assert!(en("{{ add .name 1 }}").contains("not a number"));
    assert!(en("{{ add 9223372036854775807 1 }}").contains("overflow"));
    assert!(en("{{ regexMatch \"(\" \"x\" }}").contains("invalid regular expression"));
    assert!(en("{{ substr 0 1 \"é\" }}").contains("character boundaries"));
    assert!(en("{{ splitList \"\" .name }}").contains("empty separator"));
}

#[test]
fn the_eso_range_patterns() {
    // A config file from every key of a JSON secret, as ESO users write it.
    let data = Value::string_map([(
        "config",
        r#"{"db_user":"app","db_pass":"s3cr3t","port":5432}"#,
    )]);
    let t = "{{- range $k, $v := (.config | fromJson) }}\n{{ $k | upper }}={{ $v | quote }}\n{{- end }}";
    assert_eq!(
        render("env", t, &data).unwrap().as_str(),
        "\nDB_PASS=\"s3cr3t\"\nDB_USER=\"app\"\nPORT=\"5432\""
    );
    // A dockerconfigjson for several registries, built from a list.
    let data = Value::string_map([("user", "u"), ("token", "t")]);
    let t = r#"{"auths":{ {{- range $i, $r := list "ghcr.io" "quay.io" }}{{ if $i }},{{ end }}"{{ $r }}":{"auth":"{{ printf "%s:%s" $.user $.token | b64enc }}"}{{ end -}} }}"#;
    let out = render("d", t, &data).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(parsed["auths"]["quay.io"]["auth"], "dTp0");
    assert_eq!(parsed["auths"]["ghcr.io"]["auth"], "dTp0");
}

#[test]
fn refused_functions_say_why_by_name() {
    for (f, why) in [
        ("pkcs12key", "PKCS#12"),
        ("pemToPkcs12", "PKCS#12"),
        ("filterPEM", "PEM"),
        ("jwkPublicKeyPem", "JWK"),
        ("rsaDecrypt", "rsaDecrypt"),
        ("toYaml", "YAML"),
        ("randAlphaNum", "random"),
        ("uuidv4", "random"),
        ("now", "time"),
        ("genPrivateKey", "key generation"),
        ("env", "environment"),
        ("sha1sum", "sha256sum"),
    ] {
        let m = e(&format!("{{{{ .token | {f} }}}}"));
        assert!(
            m.contains(&format!("function \"{f}\" is not supported by tresor sync"))
                && m.contains(why),
            "{m}"
        );
        // At parse time: nothing is rendered or fetched for it, and no value is in the text.
        assert!(parse("t", &format!("{{{{ {f} }}}}")).is_err());
        assert!(!m.contains("ghp_"), "{m}");
    }
    assert!(e("{{ .token | nosuchfunc }}").contains("function \"nosuchfunc\" not defined"));
}

#[test]
fn errors_name_key_and_line_and_no_value() {
    // The template's name is the Secret key; the line is the action's line.
    let data = Value::string_map([("password", "hunter2-secret")]);
    for (t, line, what) in [
        ("a\nb\n{{ .password | atoi }}", 3, "not an integer"),
        (
            "{{ range $k, $v := . }}\n{{ $v | fromJson }}{{ end }}",
            2,
            "invalid JSON",
        ),
        (
            "\n\n\n\n{{ if eq .password 1 }}{{ end }}",
            5,
            "incompatible types",
        ),
        (
            "{{ with .password }}\n\n{{ . | b64dec }}{{ end }}",
            3,
            "not valid base64",
        ),
        (
            "{{ $p := .password }}\n{{ $p.inner }}",
            2,
            "can't evaluate field inner",
        ),
        ("x\n{{ .password | fail }}", 2, "fail was called"),
        ("{{ substr 0 4 .password | int }}", 1, "not a number"),
    ] {
        let m = render("db.password", t, &data).unwrap_err().to_string();
        assert!(
            m.starts_with(&format!("template db.password:{line}: ")),
            "{t}: {m}"
        );
        assert!(m.contains(what), "{t}: {m}");
        assert!(!m.contains("hunter2"), "{t}: {m}");
    }
}

#[test]
fn hostile_control_flow_is_bounded() {
    // Nested ranges multiply: the iteration budget stops them.
    let t = "{{ range 1000 }}{{ range 1000 }}{{ end }}{{ end }}";
    let m = e(t);
    assert!(m.contains("range iterations"), "{m}");
    let t = "{{ range $i := 9223372036854775807 }}{{ end }}";
    assert!(e(t).contains("range iterations"));
    // Deep nesting of every block kind.
    for open in ["{{ range .x }}", "{{ with .x }}", "{{ if .x }}"] {
        let deep = format!("{}{}", open.repeat(200), "{{ end }}".repeat(200));
        assert!(e(&deep).contains("nested deeper"), "{open}");
    }
    // A loop copying a large value every pass runs out of the work budget, not memory.
    let big = Value::string_map([("v", &*"x".repeat(1_000_000))]);
    let t = "{{ range 10000 }}{{ $c := $.v }}{{ end }}";
    let m = render("t", t, &big).unwrap_err().to_string();
    assert!(m.contains("more than"), "{m}");
    let t = "{{ range 10000 }}{{ if $.v }}{{ end }}{{ end }}";
    assert!(render("t", t, &big).is_err());
    // Output growth in a loop.
    let t = "{{ range 100000 }}{{ $.token }}{{ $.token }}{{ end }}";
    assert!(e(t).contains("output larger than"));
    // Doubling a variable: bounded by the function result cap and the work budget.
    let t = "{{ $s := .token }}{{ range 40 }}{{ $s = printf \"%s%s\" $s $s }}{{ end }}";
    let m = e(t);
    assert!(m.contains("larger than") || m.contains("more than"), "{m}");
    let t = "{{ $l := list 1 }}{{ range 40 }}{{ $l = list $l $l }}{{ end }}{{ len $l }}";
    assert!(e(t).contains("more than"));
    // repeat with a huge count is refused before it allocates.
    assert!(e("{{ repeat 1000000000000 .token }}").contains("larger than"));
}
