//! `tresor lint` through the real binary: exit codes, stdin, formats, excludes, config, and
//! bounded input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test helpers outside #[test] functions"
)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const INLINE: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: hunter2-literal\n";
const CLEAN: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  mode: fast\n";
/// Ends a stream with a Secret holding a literal password on its last line.
const INLINE_LAST: &str = "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: last\nstringData:\n  password: hunter2-literal\n";
const OPTIONAL_REF: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    envFrom:\n    - secretRef: {name: extra, optional: true}\n";

fn tresor(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tresor"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        // A large input may be refused before it is all written: a broken pipe is expected.
        let _ = pipe.write_all(input);
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_clean_tree_exits_0_and_findings_exit_1_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "k8s/cm.yaml", CLEAN);
    let ok = tresor(dir.path(), &["lint", "k8s"], None);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    write(dir.path(), "k8s/nested/secret.yml", INLINE);
    let bad = tresor(dir.path(), &["lint", "k8s"], None);
    assert_eq!(bad.status.code(), Some(1));
    let out = stdout(&bad);
    assert!(
        out.contains("k8s/nested/secret.yml:6:13: error[no-inline-secret]"),
        "{out}"
    );
    assert!(!out.contains("hunter2-literal"), "{out}");
    assert!(out.contains("hu… (15 chars)"), "{out}");
}

#[test]
fn stdin_is_read_for_a_dash_as_helm_template_pipes_it() {
    let dir = tempfile::tempdir().unwrap();
    let helm = format!("---\n# Source: app/templates/secret.yaml\n{INLINE}");
    let o = tresor(dir.path(), &["lint", "-"], Some(helm.as_bytes()));
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("<stdin>:8:13: error[no-inline-secret]"),
        "{out}"
    );
    assert!(out.contains("helm: app/templates/secret.yaml"), "{out}");
}

#[test]
fn fail_on_sets_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "p.yaml", OPTIONAL_REF);
    assert_eq!(
        tresor(dir.path(), &["lint", "p.yaml"], None).status.code(),
        Some(0)
    );
    let o = tresor(
        dir.path(),
        &["lint", "--fail-on", "warning", "p.yaml"],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    write(dir.path(), "s.yaml", INLINE);
    let o = tresor(dir.path(), &["lint", "--fail-on=never", "."], None);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn invalid_yaml_exits_2_with_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "bad.yaml", "a: 1\nb: [1, 2\nc: 3\n");
    write(dir.path(), "s.yaml", INLINE);
    let o = tresor(dir.path(), &["lint", "."], None);
    assert_eq!(o.status.code(), Some(2));
    let out = stdout(&o);
    assert!(out.contains("bad.yaml:"), "{out}");
    assert!(out.contains("invalid YAML"), "{out}");
    // The other file is still linted.
    assert!(out.contains("error[no-inline-secret]"), "{out}");
}

#[test]
fn usage_errors_and_unknown_rules_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        tresor(dir.path(), &["lint", "--format", "xml"], None)
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        tresor(dir.path(), &["lint", "--explain", "nope"], None)
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        tresor(dir.path(), &["lint", "missing.yaml"], None)
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn explain_prints_the_rule_and_its_doc_link() {
    let dir = tempfile::tempdir().unwrap();
    let o = tresor(
        dir.path(),
        &["lint", "--explain", "secret-ref-resolves"],
        None,
    );
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    // Without a configured docs_url: the section in the source tree, never a made-up host.
    assert!(
        out.contains("secret-ref-resolves")
            && out.contains("Docs: docs/lint.md#secret-ref-resolves\n"),
        "{out}"
    );
    assert!(!out.contains("example.invalid"), "{out}");
}

#[test]
fn explain_and_sarif_link_to_the_configured_docs_url() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        ".tresor-lint.yaml",
        "docs_url: https://git.corp.test/platform/tresor/blob/main/docs/lint.md\n",
    );
    let o = tresor(dir.path(), &["lint", "--explain", "no-inline-secret"], None);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(
        out.contains(
            "Docs: https://git.corp.test/platform/tresor/blob/main/docs/lint.md#no-inline-secret\n"
        ),
        "{out}"
    );
    write(dir.path(), "s.yaml", INLINE);
    let o = tresor(dir.path(), &["lint", "--format", "sarif", "s.yaml"], None);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rules = v["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap();
    let inline = rules
        .iter()
        .find(|r| r["id"] == "no-inline-secret")
        .unwrap();
    assert_eq!(
        inline["helpUri"],
        "https://git.corp.test/platform/tresor/blob/main/docs/lint.md#no-inline-secret"
    );
    // A relative docs_url is refused with its line, for --explain too.
    write(dir.path(), ".tresor-lint.yaml", "docs_url: docs/lint.md\n");
    let o = tresor(dir.path(), &["lint", "--explain", "no-inline-secret"], None);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(".tresor-lint.yaml:1:") && err.contains("absolute URL"),
        "{err}"
    );
}

#[test]
fn json_and_sarif_outputs_are_json_with_the_findings() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "s.yaml", INLINE);
    let o = tresor(dir.path(), &["lint", "--format", "json", "s.yaml"], None);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["findings"][0]["rule"], "no-inline-secret");
    assert_eq!(v["findings"][0]["line"], 6);
    let o = tresor(dir.path(), &["lint", "-format=sarif", "s.yaml"], None);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["version"], "2.1.0");
    assert_eq!(v["runs"][0]["results"][0]["ruleId"], "no-inline-secret");
}

#[test]
fn tresorignore_exclude_and_config_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "m/vendor/s.yaml", INLINE);
    write(dir.path(), "m/gen/s.yaml", INLINE);
    write(dir.path(), "m/.tresorignore", "vendor/\n");
    let o = tresor(dir.path(), &["lint", "--exclude", "gen/**", "m"], None);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    write(dir.path(), "m/app/s.yaml", INLINE);
    write(
        dir.path(),
        ".tresor-lint.yaml",
        "rules:\n  no-inline-secret: warning\nexclude: [gen]\n",
    );
    let o = tresor(dir.path(), &["lint", "m"], None);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("warning[no-inline-secret]"));
}

#[test]
fn an_oversized_input_is_refused_without_reading_it_all() {
    let dir = tempfile::tempdir().unwrap();
    let f = std::fs::File::create(dir.path().join("big.yaml")).unwrap();
    f.set_len(100 * 1024 * 1024).unwrap();
    let o = tresor(dir.path(), &["lint", "big.yaml"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).contains("larger than"), "{}", stdout(&o));
    let big = vec![b'#'; 2 * 1024 * 1024];
    let o = tresor(
        dir.path(),
        &["lint", "--max-file-size", "1048576", "-"],
        Some(&big),
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn an_alias_bomb_on_stdin_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = String::from("a0: &a0 [x,x,x,x,x,x,x,x,x,x]\n");
    for i in 1..15 {
        let p = i - 1;
        s.push_str(&format!(
            "a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"
        ));
    }
    let started = std::time::Instant::now();
    let o = tresor(dir.path(), &["lint", "-"], Some(s.as_bytes()));
    assert_eq!(o.status.code(), Some(2));
    let out = stdout(&o);
    assert!(out.contains("alias bomb"), "{out}");
    // The message names the limit that was hit, and where.
    assert!(
        out.contains("would expand to more than 5000000 nodes on top of the nodes written")
            && out.contains("alias-expansion limit"),
        "{out}"
    );
    assert!(out.starts_with("<stdin>:7:22: fatal: "), "{out}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// A plain multi-document manifest just under the default 32 MiB cap, with no alias: far more
/// nodes than the alias-expansion limit allows aliases to add, none of them through one.
#[test]
fn a_30_mib_manifest_without_aliases_is_linted() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::with_capacity(31 << 20);
    let mut i = 0;
    while text.len() < 30 << 20 {
        let ns = format!("team-{}", i % 7);
        text.push_str(&format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  namespace: {ns}\n  labels:\n    app.kubernetes.io/name: app-{i}\nspec:\n  replicas: 2\n  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: app-{i}\n    spec:\n      containers:\n      - name: app\n        image: registry.example.com/team/app-{i}:1.0.0\n        ports:\n        - {{containerPort: 8080, name: http}}\n        env:\n        - name: LOG_LEVEL\n          value: info\n        - name: DB_PASSWORD\n          valueFrom:\n            secretKeyRef: {{name: app-{i}-db, key: password}}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: app-{i}-db\n  namespace: {ns}\nstringData:\n  password: \"{{{{ .Values.password }}}}\"\n"
        ));
        i += 1;
    }
    // The last resource holds the one finding, so the whole stream was read and checked.
    text.push_str(INLINE_LAST);
    write(dir.path(), "big.yaml", &text);
    let o = tresor(dir.path(), &["lint", "--format", "json", "big.yaml"], None);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{}", &out[..out.len().min(2000)]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let findings = json["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0]["rule"], "no-inline-secret");
    let lines = u64::try_from(text.lines().count()).unwrap();
    assert_eq!(findings[0]["line"], lines);
}

/// The parser holds a flow collection whole before handing it over (some 700 bytes per
/// item): a 2 MiB `[x,x,…]` is refused by the pre-scan, before it is parsed.
#[test]
fn a_huge_flow_collection_is_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("items: [{}x]\n", "x,".repeat(1 << 20));
    write(dir.path(), "flow.yaml", &text);
    let started = std::time::Instant::now();
    let o = tresor(dir.path(), &["lint", "flow.yaml"], None);
    assert_eq!(o.status.code(), Some(2));
    let out = stdout(&o);
    assert!(
        out.starts_with(
            "flow.yaml:1:8: fatal: a flow collection ([…] or {…}) starting here holds more \
             than 500000 items (--max-flow-items;"
        ),
        "{out}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // The limit is a flag.
    let o = tresor(
        dir.path(),
        &["lint", "--max-flow-items", "3", "-"],
        Some(b"a: [1, 2]\nb: {c: 1, d: 2}\n"),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stdout(&o).starts_with("<stdin>:2:4: fatal: a flow collection"),
        "{}",
        stdout(&o)
    );
}

/// 30 MiB of `- x` lines is 7.8 million nodes, twice what a 30 MiB file of real manifests
/// holds: it is refused at the node limit instead of costing 630 MB.
#[test]
fn a_file_of_too_many_nodes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "nodes.yaml", &"- x\n".repeat((30 << 20) / 4));
    let o = tresor(dir.path(), &["lint", "nodes.yaml"], None);
    assert_eq!(o.status.code(), Some(2));
    let out = stdout(&o);
    assert!(
        out.starts_with(
            "nodes.yaml:4000000:3: fatal: more than 4000000 nodes in one file (--max-nodes)"
        ),
        "{out}"
    );
    let o = tresor(
        dir.path(),
        &["lint", "--max-nodes", "3", "-"],
        Some(b"- a\n- b\n- c\n"),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).starts_with("<stdin>:3:3: fatal: more than 3 nodes"));
}

/// A JSON `List` is one flow collection: one of 2,000 resources with ordinary arrays (about
/// 60,000 items) is linted whole, the finding in its last item located exactly.
#[test]
fn a_json_list_with_ordinary_arrays_is_linted() {
    let dir = tempfile::tempdir().unwrap();
    let mut items = Vec::new();
    for i in 0..2_000 {
        items.push(format!(
            "    {{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", \"metadata\": {{\"name\": \"app-{i}\", \"labels\": {{\"app\": \"a\"}}}},\n     \"spec\": {{\"template\": {{\"spec\": {{\"containers\": [{{\"name\": \"a\", \"image\": \"a:1\", \"args\": [\"--port\", \"8080\", \"--[x, y]\"], \"ports\": [{{\"containerPort\": 8080}}, {{\"containerPort\": 9090}}]}}]}}}}}}}}"
        ));
    }
    items.push(
        "    {\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"metadata\": {\"name\": \"db\"},\n     \"stringData\": {\"password\": \"hunter2-literal\"}}"
            .to_owned(),
    );
    let text = format!(
        "{{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"List\",\n  \"items\": [\n{}\n  ]\n}}\n",
        items.join(",\n")
    );
    write(dir.path(), "list.json", &text);
    let o = tresor(dir.path(), &["lint", "--format", "json", "list.json"], None);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{}", &out[..out.len().min(2000)]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["summary"]["resources"], 2_001);
    let findings = json["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0]["rule"], "no-inline-secret");
    assert_eq!(findings[0]["line"], 4 + 2 * 2_000 + 2);
}
