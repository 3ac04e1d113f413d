//! Real-world manifests (vendored under tests/fixtures/corpus with their licences): what
//! `tresor lint` reports on them, exactly.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test helpers outside #[test] functions"
)]

use std::path::PathBuf;

use tresor_lint::input::Ignore;
use tresor_lint::{Config, Options, lint_paths};

fn corpus(dir: &str) -> Vec<(String, String, u32, u32, String)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/corpus")
        .join(dir);
    let r = lint_paths(
        std::slice::from_ref(&path),
        &Ignore::new(&[]).unwrap(),
        &Config::default(),
        Options::default(),
    );
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert!(r.resource_count() > 0);
    r.findings
        .iter()
        .map(|f| {
            let file = r.file_name(f);
            let file = file.rsplit('/').next().unwrap_or(file).to_owned();
            (
                file,
                f.rule.to_owned(),
                f.pos.line,
                f.pos.col,
                f.severity.as_str().to_owned(),
            )
        })
        .collect()
}

fn e(file: &str, rule: &str, line: u32, col: u32, sev: &str) -> (String, String, u32, u32, String) {
    (file.to_owned(), rule.to_owned(), line, col, sev.to_owned())
}

#[test]
fn ingress_nginx_static_manifest_reports_only_the_job_created_admission_secret() {
    // 19 resources incl. Jobs with image digests, a webhook configuration and RBAC for
    // secrets: the one finding is the controller's volume of the Secret its admission Job
    // creates at install time, which no manifest defines.
    assert_eq!(
        corpus("ingress-nginx"),
        [e("deploy.yaml", "secret-ref-resolves", 513, 23, "error")]
    );
}

#[test]
fn kubernetes_wordpress_tutorial_reports_the_kustomize_generated_secret() {
    // Three references to `mysql-pass`, a Secret the tutorial generates with kustomize's
    // secretGenerator outside these files; no inline credentials (MYSQL_USER/DATABASE are
    // plain names).
    assert_eq!(
        corpus("k8s-wordpress"),
        [
            e(
                "mysql-deployment.yaml",
                "secret-ref-resolves",
                54,
                21,
                "error"
            ),
            e(
                "mysql-deployment.yaml",
                "secret-ref-resolves",
                63,
                21,
                "error"
            ),
            e(
                "wordpress-deployment.yaml",
                "secret-ref-resolves",
                56,
                21,
                "error"
            ),
        ]
    );
}

#[test]
fn the_corpus_is_clean_once_the_generated_secrets_are_declared() {
    let config = Config {
        known_secrets: vec![
            (None, "mysql-pass".to_owned()),
            (
                Some("ingress-nginx".to_owned()),
                "ingress-nginx-admission".to_owned(),
            ),
        ],
        ..Config::default()
    };
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus");
    let r = lint_paths(
        &[path],
        &Ignore::new(&[]).unwrap(),
        &config,
        Options::default(),
    );
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.files.len(), 3);
}
