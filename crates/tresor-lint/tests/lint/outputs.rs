//! Output formats: SARIF validated against the vendored OASIS schema, JSON shape, and that no
//! format ever contains a secret value from the input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test helpers outside #[test] functions"
)]

use crate::support;

use base64::Engine as _;
use support::report;
use tresor_lint::output;

/// Inputs whose secret values every rule reports one way or another.
fn secret_inputs() -> (Vec<(&'static str, String)>, Vec<String>) {
    let values = vec![
        "hunter2-literal-pw".to_owned(),
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789".to_owned(),
        "s3cr3t-in-url".to_owned(),
        "q8X2vLp9RtZ3mN7bK4wY1cH6dF0s".to_owned(),
        "anno-tok-v4lue-1234".to_owned(),
        "envpw-v4lue-98765".to_owned(),
        "cm-pw-v4lue-5555".to_owned(),
        "base64-encoded-pw".to_owned(),
    ];
    let b64 = base64::engine::general_purpose::STANDARD.encode(&values[7]);
    let files = vec![
        (
            "secret.yaml",
            format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  annotations:\n    example.com/token: {}\nstringData:\n  password: {}\n  url: postgres://u:{}@db/x\ndata:\n  apiKey: {b64}\n",
                values[4], values[0], values[2]
            ),
        ),
        (
            "deploy.yaml",
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d}}\nspec:\n  template:\n    spec:\n      containers:\n      - name: a\n        args: [\"--token={}\"]\n        env:\n        - {{name: DB_PASSWORD, value: {}}}\n",
                values[1], values[5]
            ),
        ),
        (
            "cm.json",
            format!(
                "{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"c\"}},\"data\":{{\"password\":\"{}\",\"signing\":\"{}\"}}}}",
                values[6], values[3]
            ),
        ),
    ];
    (files, values)
}

fn all_outputs(files: &[(&str, String)]) -> Vec<(&'static str, String)> {
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let r = report(&refs);
    assert!(r.findings.len() >= 8, "{:#?}", r.findings);
    vec![
        ("human", output::human(&r, false)),
        ("human-color", output::human(&r, true)),
        ("json", output::json(&r)),
        ("sarif", output::sarif(&r)),
    ]
}

#[test]
fn no_output_format_contains_a_secret_value() {
    let (files, values) = secret_inputs();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&values[7]);
    for (format, out) in all_outputs(&files) {
        for v in values.iter().chain(std::iter::once(&b64)) {
            assert!(
                !out.contains(v.as_str()),
                "{format} output contains {v:?}:\n{out}"
            );
            // Nor a long piece of it.
            let chars: Vec<char> = v.chars().collect();
            for w in chars.windows(8) {
                let piece: String = w.iter().collect();
                assert!(
                    !out.contains(&piece),
                    "{format} output contains {piece:?} of a value"
                );
            }
        }
    }
}

#[test]
fn sarif_output_validates_against_the_sarif_2_1_0_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/sarif/sarif-schema-2.1.0.json")).unwrap();
    let validator = jsonschema::draft4::new(&schema).unwrap();
    let (files, _) = secret_inputs();
    let mut inputs = files.clone();
    // An input error too, so toolExecutionNotifications are exercised.
    inputs.push(("broken.yaml", "a: [\n".to_owned()));
    let refs: Vec<(&str, &str)> = inputs.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let r = report_allowing_problems(&refs);
    assert!(!r.problems.is_empty());
    for sarif in [output::sarif(&r), output::sarif(&report(&[]))] {
        let v: serde_json::Value = serde_json::from_str(&sarif).unwrap();
        let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:#?}\n{sarif}");
        assert_eq!(v["version"], "2.1.0");
    }
}

fn report_allowing_problems(files: &[(&str, &str)]) -> tresor_lint::Report {
    tresor_lint::lint_sources(
        files
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect(),
        &tresor_lint::Config::default(),
        tresor_lint::yaml::Limits::default(),
    )
}

#[test]
fn sarif_help_uris_are_absolute_when_docs_url_is_configured_and_absent_otherwise() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/sarif/sarif-schema-2.1.0.json")).unwrap();
    let validator = jsonschema::draft4::new(&schema).unwrap();
    let (files, _) = secret_inputs();
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();

    // Default: no helpUri (SARIF requires it absolute, and the project has no public URL);
    // the help text names the section in the source tree.
    let v: serde_json::Value = serde_json::from_str(&output::sarif(&report(&refs))).unwrap();
    assert!(validator.is_valid(&v));
    let driver = &v["runs"][0]["tool"]["driver"];
    assert!(driver.get("informationUri").is_none());
    for rule in driver["rules"].as_array().unwrap() {
        assert!(rule.get("helpUri").is_none(), "{rule}");
        let id = rule["id"].as_str().unwrap();
        let help = rule["help"]["text"].as_str().unwrap();
        assert!(
            help.ends_with(&format!("Docs: docs/lint.md#{id}")),
            "{help}"
        );
    }
    let j: serde_json::Value = serde_json::from_str(&output::json(&report(&refs))).unwrap();
    let first = &j["findings"][0];
    assert_eq!(
        first["doc"].as_str().unwrap(),
        format!("docs/lint.md#{}", first["rule"].as_str().unwrap())
    );

    // Configured: every rule links to its section there, and the log still validates.
    let config = tresor_lint::Config::parse(
        "docs_url: https://git.corp.test/platform/tresor/blob/main/docs/lint.md\n",
        std::path::Path::new("."),
        "c",
    )
    .unwrap();
    let r = support::report_with(&refs, &config);
    let v: serde_json::Value = serde_json::from_str(&output::sarif(&r)).unwrap();
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let driver = &v["runs"][0]["tool"]["driver"];
    assert_eq!(
        driver["informationUri"],
        "https://git.corp.test/platform/tresor/blob/main/docs/lint.md"
    );
    for rule in driver["rules"].as_array().unwrap() {
        assert_eq!(
            rule["helpUri"].as_str().unwrap(),
            format!(
                "https://git.corp.test/platform/tresor/blob/main/docs/lint.md#{}",
                rule["id"].as_str().unwrap()
            )
        );
    }
    // The schema would refuse the relative form: this is why it is not the default.
    let mut relative = v.clone();
    relative["runs"][0]["tool"]["driver"]["rules"][0]["helpUri"] =
        serde_json::json!("docs/lint.md#no-sealed-secret");
    assert!(!validator.is_valid(&relative));
}

#[test]
fn every_rule_has_its_section_in_docs_lint_md() {
    // The links are `docs/lint.md#RULE`: each rule needs a `### RULE` heading there.
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/lint.md"),
    )
    .unwrap();
    for r in tresor_lint::rules::RULES {
        assert!(
            doc.lines().any(|l| l == format!("### {}", r.id)),
            "docs/lint.md has no section for {}",
            r.id
        );
    }
}

#[test]
fn the_schema_rejects_a_broken_sarif_log() {
    // The validator is real: a log without `runs` and with a bad level fails it.
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/sarif/sarif-schema-2.1.0.json")).unwrap();
    let validator = jsonschema::draft4::new(&schema).unwrap();
    let bad = serde_json::json!({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [{"message": {"text": "m"}, "level": "fatal"}]}]});
    assert!(!validator.is_valid(&bad));
}

#[test]
fn json_output_has_locations_resources_and_hints() {
    let (files, _) = secret_inputs();
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let r = report(&refs);
    let v: serde_json::Value = serde_json::from_str(&output::json(&r)).unwrap();
    let first = &v["findings"][0];
    assert_eq!(first["file"], "secret.yaml");
    assert!(first["line"].as_u64().unwrap() >= 1);
    assert!(first["column"].as_u64().unwrap() >= 1);
    assert_eq!(first["resource"]["kind"], "Secret");
    assert!(first["hint"].as_str().unwrap().contains("chars"));
    assert_eq!(v["summary"]["files"], 3);
}
