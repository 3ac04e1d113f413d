//! Per-rule cases, positive and negative, including tricky YAML. Each test names the behaviour.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test helpers outside #[test] functions"
)]

use crate::support;

use support::{f, findings, report, report_with, rules_of, summarise};
use tresor_lint::Config;

// ---------------------------------------------------------------- no-sealed-secret

#[test]
fn a_sealed_secret_is_an_error_at_its_kind() {
    let y = "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: db\nspec:\n  encryptedData:\n    password: AgBy8hCi==\n";
    assert_eq!(
        findings(&[("s.yaml", y)]),
        [f("no-sealed-secret", 2, 7, "error")]
    );
}

#[test]
fn a_sealed_secret_inside_a_list_is_found() {
    let y = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: bitnami.com/v1alpha1\n  kind: SealedSecret\n  metadata: {name: x}\n";
    assert_eq!(
        findings(&[("s.yaml", y)]),
        [f("no-sealed-secret", 5, 9, "error")]
    );
}

#[test]
fn a_sealed_secret_in_json_is_found() {
    let j = "{\n  \"apiVersion\": \"bitnami.com/v1alpha1\",\n  \"kind\": \"SealedSecret\",\n  \"metadata\": {\"name\": \"x\"}\n}\n";
    assert_eq!(
        findings(&[("s.json", j)]),
        [f("no-sealed-secret", 3, 11, "error")]
    );
}

#[test]
fn a_resource_merely_named_sealed_secret_is_fine() {
    let y = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: SealedSecret\ndata:\n  kind: SealedSecret\n";
    assert!(rules_of(y).is_empty());
}

// ---------------------------------------------------------------- no-inline-secret: Secrets

const SECRET_HEAD: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n";

fn secret(body: &str) -> String {
    format!("{SECRET_HEAD}{body}")
}

#[test]
fn string_data_password_is_an_inline_secret() {
    let y = secret("stringData:\n  password: hunter2hunter2\n");
    assert_eq!(
        findings(&[("s.yaml", &y)]),
        [f("no-inline-secret", 6, 13, "error")]
    );
}

#[test]
fn base64_data_password_is_an_inline_secret() {
    let y = secret("data:\n  password: aHVudGVyMg==\n");
    assert_eq!(
        findings(&[("s.yaml", &y)]),
        [f("no-inline-secret", 6, 13, "error")]
    );
}

#[test]
fn credential_keys_match_whatever_their_case_and_separators() {
    for key in [
        "DB_PASSWORD",
        "client-secret",
        "clientSecret",
        "api_key",
        "apiKey",
        "privateKey",
        "private_key",
        "accessKey",
        "AUTH_TOKEN",
        "passwd",
    ] {
        let y = secret(&format!("stringData:\n  {key}: literal-value-1\n"));
        assert_eq!(rules_of(&y), ["no-inline-secret"], "{key}");
    }
}

#[test]
fn quoted_keys_are_matched_too() {
    let y = secret("stringData:\n  \"password\": 'x1y2z3w4'\n  'api-key': \"k\"\n");
    assert_eq!(
        findings(&[("s.yaml", &y)]),
        [
            f("no-inline-secret", 6, 15, "error"),
            f("no-inline-secret", 7, 14, "error")
        ]
    );
}

#[test]
fn non_credential_keys_of_a_secret_are_fine() {
    let y = secret("stringData:\n  username: admin\n  host: db.svc\n  port: \"5432\"\n");
    assert!(rules_of(&y).is_empty());
}

#[test]
fn helm_templated_values_are_allowed() {
    let y = secret(
        "stringData:\n  password: {{ .Values.db.password | quote }}\n  token: \"{{ required \\\"x\\\" .Values.t }}\"\n",
    );
    // The unquoted template is a YAML flow mapping; either way it is not a literal.
    let r = report(&[("s.yaml", &y)]);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
}

#[test]
fn env_placeholders_are_allowed() {
    let y = secret("stringData:\n  password: ${DB_PASSWORD}\n  token: $(TOKEN)\n");
    assert!(rules_of(&y).is_empty());
}

#[test]
fn empty_and_null_values_are_allowed() {
    let y = secret("stringData:\n  password: \"\"\n  token:\n  apiKey: ~\ndata:\n  secret: \"\"\n");
    assert!(rules_of(&y).is_empty());
}

#[test]
fn base64_of_a_placeholder_is_allowed() {
    // base64("${DB_PASSWORD}")
    let y = secret("data:\n  password: JHtEQl9QQVNTV09SRH0=\n");
    assert!(rules_of(&y).is_empty());
}

#[test]
fn a_connection_url_with_a_password_is_an_inline_secret() {
    let y = secret("stringData:\n  DATABASE_URL: postgres://app:s3cr3t@db:5432/app\n");
    assert_eq!(
        findings(&[("s.yaml", &y)]),
        [f("no-inline-secret", 6, 17, "error")]
    );
}

#[test]
fn a_connection_url_without_a_password_is_fine() {
    let y = secret("stringData:\n  DATABASE_URL: postgres://app@db:5432/app\n");
    assert!(rules_of(&y).is_empty());
}

#[test]
fn a_dockerconfigjson_with_auth_is_an_inline_secret() {
    let y = secret(
        "type: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{\"auths\":{\"ghcr.io\":{\"auth\":\"dXNlcjpwYXNz\"}}}'\n",
    );
    assert_eq!(rules_of(&y), ["no-inline-secret"]);
}

#[test]
fn a_base64_dockerconfigjson_with_auth_is_an_inline_secret() {
    // base64 of {"auths":{"r.io":{"username":"u","password":"p4ss"}}}
    let y = secret(
        "type: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: eyJhdXRocyI6eyJyLmlvIjp7InVzZXJuYW1lIjoidSIsInBhc3N3b3JkIjoicDRzcyJ9fX0=\n",
    );
    assert_eq!(rules_of(&y), ["no-inline-secret"]);
}

#[test]
fn a_dockerconfigjson_without_auth_is_fine() {
    let y = secret("stringData:\n  .dockerconfigjson: '{\"auths\":{}}'\n");
    assert!(rules_of(&y).is_empty());
}

#[test]
fn a_block_scalar_private_key_is_reported_at_its_first_line() {
    let y = secret("stringData:\n  privateKey: |\n    line-one-of-the-key\n    line-two\n");
    assert_eq!(
        findings(&[("s.yaml", &y)]),
        [f("no-inline-secret", 7, 5, "error")]
    );
}

#[test]
fn a_folded_scalar_password_is_reported() {
    let y = secret("stringData:\n  password: >-\n    folded-literal\n");
    assert_eq!(
        findings(&[("s.yaml", &y)]),
        [f("no-inline-secret", 7, 5, "error")]
    );
}

#[test]
fn a_config_file_in_string_data_is_scanned_line_by_line() {
    let y =
        secret("stringData:\n  app.ini: |\n    [db]\n    host = db\n    password = \"pa55word\"\n");
    assert_eq!(
        findings(&[("s.yaml", &y)]),
        [f("no-inline-secret", 9, 5, "error")]
    );
}

#[test]
fn every_credential_line_of_a_config_file_is_reported_at_its_own_line() {
    // Lines 7-11; the first credential line is written twice.
    let y = secret(
        "stringData:\n  app.ini: |\n    [db]\n    password = \"pa55word\"\n    host = db\n    token = t0k3n-literal\n    password = \"pa55word\"\n",
    );
    assert_eq!(
        findings(&[("s.yaml", &y)]),
        [
            f("no-inline-secret", 8, 5, "error"),
            f("no-inline-secret", 10, 5, "error"),
            f("no-inline-secret", 11, 5, "error"),
        ]
    );
}

#[test]
fn a_config_file_reached_through_an_alias_is_reported_once_per_line() {
    let y = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  a.conf: &conf |\n    user = app\n    password = pa55word\n    api_key: k3y-literal\n  b.conf: *conf\n";
    assert_eq!(
        findings(&[("c.yaml", y)]),
        [
            f("no-inline-secret", 7, 5, "error"),
            f("no-inline-secret", 8, 5, "error"),
        ]
    );
}

#[test]
fn a_block_scalar_whose_first_line_repeats_is_reported_at_its_first_line() {
    let y = secret("stringData:\n  password: |\n    same-text\n    other\n    same-text\n");
    assert_eq!(
        findings(&[("s.yaml", &y)]),
        [f("no-inline-secret", 7, 5, "error")]
    );
}

#[test]
fn a_credential_on_the_repeated_first_line_of_a_config_file_is_reported_where_written() {
    // The first content line (line 6) is a credential and is written again on line 8, after
    // a line more indented than the rest and a blank one.
    let y = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  app.conf: |\n    password = pa55word\n      nested = 1\n\n    password = pa55word\n";
    assert_eq!(
        findings(&[("c.yaml", y)]),
        [
            f("no-inline-secret", 6, 5, "error"),
            f("no-inline-secret", 9, 5, "error"),
        ]
    );
}

#[test]
fn a_token_inside_a_block_scalar_is_located_where_it_stands_not_where_its_text_first_occurs() {
    // Line 2 holds the same characters inside a URL, which is not judged; line 3 is the hit.
    let v = "config: |\n  url: https://example.com/q8X2vLp9RtZ3mN7bK4wY1cH6dF0s\n  signing: q8X2vLp9RtZ3mN7bK4wY1cH6dF0s\n";
    assert_eq!(
        findings(&[("values.yaml", v)]),
        [f("high-entropy-string", 3, 12, "warning")]
    );
}

#[test]
fn anchors_and_aliases_report_where_the_literal_is_written() {
    let y = "defaults: &pw hunter2hunter2\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: a}\nstringData:\n  password: &p2 literal-one\n  backup_password: *p2\n";
    // The alias shares the anchored node: one finding, at the anchor's literal.
    assert_eq!(
        findings(&[("s.yaml", y)]),
        [f("no-inline-secret", 7, 13, "error")]
    );
}

#[test]
fn merge_keys_bring_credentials_along() {
    let y = "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\nstringData:\n  <<: {password: merged-literal}\n  user: x\n";
    assert_eq!(
        findings(&[("s.yaml", y)]),
        [f("no-inline-secret", 5, 18, "error")]
    );
}

#[test]
fn extra_key_patterns_from_the_config_apply() {
    let config = Config {
        credential_keys: vec!["otpseed".to_owned()],
        ..Config::default()
    };
    let y = secret("stringData:\n  OTP_SEED: abcdef\n");
    let r = report_with(&[("s.yaml", &y)], &config);
    assert_eq!(summarise(&r), [f("no-inline-secret", 6, 13, "error")]);
    assert!(rules_of(&y).is_empty());
}

#[test]
fn a_kustomize_secret_generator_literal_is_an_inline_secret() {
    let y = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nsecretGenerator:\n- name: mysql-pass\n  literals:\n  - password=YOUR_PASSWORD\n  - user=app\n";
    assert_eq!(
        findings(&[("k.yaml", y)]),
        [f("no-inline-secret", 6, 5, "error")]
    );
}

// ---------------------------------------------------------------- no-inline-secret: env

fn workload(kind: &str, env: &str) -> String {
    let pod = format!(
        "containers:\n- name: app\n  image: app:1\n  env:\n{}",
        env.lines().map(|l| format!("  {l}\n")).collect::<String>()
    );
    let indent = |s: &str, n: usize| {
        s.lines()
            .map(|l| format!("{}{l}\n", " ".repeat(n)))
            .collect::<String>()
    };
    match kind {
        "Pod" => format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n{}",
            indent(&pod, 2)
        ),
        "CronJob" => format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: c\nspec:\n  schedule: '* * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n{}",
            indent(&pod, 10)
        ),
        _ => format!(
            "apiVersion: apps/v1\nkind: {kind}\nmetadata:\n  name: w\nspec:\n  template:\n    spec:\n{}",
            indent(&pod, 6)
        ),
    }
}

#[test]
fn env_literals_with_credential_names_are_found_in_every_workload_kind() {
    for kind in [
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "Job",
        "CronJob",
        "Pod",
    ] {
        let y = workload(kind, "- name: DB_PASSWORD\n  value: hunter2hunter2\n");
        assert_eq!(rules_of(&y), ["no-inline-secret"], "{kind}");
    }
}

#[test]
fn env_in_init_containers_is_checked() {
    let y = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  initContainers:\n  - name: i\n    env:\n    - {name: API_TOKEN, value: tok-12345}\n  containers: []\n";
    assert_eq!(
        findings(&[("p.yaml", y)]),
        [f("no-inline-secret", 8, 32, "error")]
    );
}

#[test]
fn env_value_from_secret_is_fine() {
    let y = workload(
        "Deployment",
        "- name: DB_PASSWORD\n  valueFrom:\n    secretKeyRef: {name: db, key: password}\n",
    );
    let y = format!(
        "{y}---\n{}",
        secret("stringData:\n  password: \"{{ .Values.pw }}\"\n")
    );
    assert!(rules_of(&y).is_empty());
}

#[test]
fn env_with_plain_names_is_fine() {
    let y = workload(
        "Deployment",
        "- name: LOG_LEVEL\n  value: debug\n- name: PASSWORD_FILE\n  value: /run/secrets/pw\n",
    );
    assert!(rules_of(&y).is_empty());
}

#[test]
fn env_connection_url_with_password_is_found() {
    let y = workload(
        "Deployment",
        "- name: DATABASE_URL\n  value: mysql://root:toor@db/app\n",
    );
    assert_eq!(rules_of(&y), ["no-inline-secret"]);
}

#[test]
fn env_placeholder_is_fine() {
    let y = workload(
        "StatefulSet",
        "- name: DB_PASSWORD\n  value: $(FROM_SECRET)\n",
    );
    assert!(rules_of(&y).is_empty());
}

// ---------------------------------------------------------------- no-inline-secret: ConfigMaps

#[test]
fn config_map_credential_keys_are_found() {
    let y = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  redis_password: abc123\n  mode: fast\n";
    assert_eq!(
        findings(&[("c.yaml", y)]),
        [f("no-inline-secret", 5, 19, "error")]
    );
}

#[test]
fn config_map_embedded_config_files_are_scanned() {
    let y = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  application.yaml: |\n    spring:\n      datasource:\n        url: jdbc:postgresql://db/app\n        password: s3cr3tpw\n";
    assert_eq!(
        findings(&[("c.yaml", y)]),
        [f("no-inline-secret", 9, 9, "error")]
    );
}

#[test]
fn config_map_without_credentials_is_fine() {
    let y = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  nginx.conf: |\n    server { listen 80; }\n  secretName: app-secret\n";
    assert!(rules_of(y).is_empty());
}

// ---------------------------------------------------------------- no-secret-in-annotation

#[test]
fn a_credential_annotation_is_found() {
    let y = "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  annotations:\n    example.com/api-token: tok-abcdef\n";
    assert_eq!(
        findings(&[("a.yaml", y)]),
        [f("no-secret-in-annotation", 6, 28, "error")]
    );
}

#[test]
fn a_url_with_password_in_an_annotation_is_found() {
    let y = "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  annotations:\n    backup: \"s3://key:supersecret@bucket/x\"\n";
    assert_eq!(rules_of(y), ["no-secret-in-annotation"]);
}

#[test]
fn a_credential_label_on_a_pod_template_is_found() {
    let y = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    metadata:\n      labels:\n        password: plain\n    spec:\n      containers: []\n";
    assert_eq!(
        findings(&[("d.yaml", y)]),
        [f("no-secret-in-annotation", 8, 19, "error")]
    );
}

#[test]
fn annotations_naming_secrets_are_references_not_credentials() {
    let y = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: i\n  annotations:\n    nginx.ingress.kubernetes.io/auth-secret: basic-auth\n    vault.hashicorp.com/agent-inject-secret-db: database/creds/app\n    secret.reloader.stakater.com/reload: app-secret\n    cert-manager.io/cluster-issuer: letsencrypt\n";
    assert!(rules_of(y).is_empty());
}

// ---------------------------------------------------------------- secret-ref-resolves

fn deployment_with(env_and_vols: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  namespace: prod\nspec:\n  template:\n    spec:\n{env_and_vols}"
    )
}

const SECRET_PROD: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\nstringData:\n  username: app\n  password: \"{{ .Values.pw }}\"\n";

#[test]
fn a_secret_key_ref_to_a_missing_secret_is_an_error_at_the_name() {
    let y = deployment_with(
        "      containers:\n      - name: a\n        env:\n        - name: PW\n          valueFrom:\n            secretKeyRef:\n              name: nope\n              key: password\n",
    );
    assert_eq!(
        findings(&[("d.yaml", &y)]),
        [f("secret-ref-resolves", 15, 21, "error")]
    );
}

#[test]
fn a_secret_key_ref_to_a_defined_secret_and_key_is_fine() {
    let y = deployment_with(
        "      containers:\n      - name: a\n        env:\n        - name: PW\n          valueFrom:\n            secretKeyRef: {name: db, key: password}\n",
    );
    assert!(findings(&[("d.yaml", &y), ("s.yaml", SECRET_PROD)]).is_empty());
}

#[test]
fn a_missing_key_is_an_error_at_the_key() {
    let y = deployment_with(
        "      containers:\n      - name: a\n        env:\n        - name: PW\n          valueFrom:\n            secretKeyRef:\n              name: db\n              key: passwd\n",
    );
    assert_eq!(
        findings(&[("d.yaml", &y), ("s.yaml", SECRET_PROD)]),
        [f("secret-ref-resolves", 16, 20, "error")]
    );
}

#[test]
fn an_optional_missing_ref_is_a_warning() {
    let y = deployment_with(
        "      containers:\n      - name: a\n        envFrom:\n        - secretRef: {name: extra, optional: true}\n",
    );
    assert_eq!(
        findings(&[("d.yaml", &y)]),
        [f("secret-ref-resolves", 12, 29, "warning")]
    );
}

#[test]
fn a_secret_in_another_namespace_does_not_resolve() {
    let y = deployment_with(
        "      containers:\n      - name: a\n        envFrom:\n        - secretRef: {name: db}\n",
    );
    let other = SECRET_PROD.replace("namespace: prod", "namespace: staging");
    let r = report(&[("d.yaml", &y), ("s.yaml", &other)]);
    assert_eq!(summarise(&r), [f("secret-ref-resolves", 12, 29, "error")]);
    assert!(
        r.findings[0].message.contains("staging"),
        "{}",
        r.findings[0].message
    );
}

#[test]
fn volume_secrets_and_their_items_are_checked() {
    let y = deployment_with(
        "      containers: []\n      volumes:\n      - name: certs\n        secret:\n          secretName: db\n          items:\n          - key: tls.crt\n            path: tls.crt\n",
    );
    assert_eq!(
        findings(&[("d.yaml", &y), ("s.yaml", SECRET_PROD)]),
        [f("secret-ref-resolves", 15, 18, "error")]
    );
}

#[test]
fn projected_volume_secrets_are_checked() {
    let y = deployment_with(
        "      containers: []\n      volumes:\n      - name: all\n        projected:\n          sources:\n          - secret:\n              name: gone\n",
    );
    assert_eq!(
        findings(&[("d.yaml", &y)]),
        [f("secret-ref-resolves", 15, 21, "error")]
    );
}

#[test]
fn image_pull_secrets_are_checked() {
    let y =
        deployment_with("      imagePullSecrets:\n      - name: regcred\n      containers: []\n");
    assert_eq!(
        findings(&[("d.yaml", &y)]),
        [f("secret-ref-resolves", 10, 15, "error")]
    );
}

#[test]
fn cron_job_refs_are_checked() {
    let y = "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n          - name: x\n            envFrom:\n            - secretRef: {name: missing}\n";
    assert_eq!(
        findings(&[("c.yaml", y)]),
        [f("secret-ref-resolves", 12, 33, "error")]
    );
}

const ES: &str = "apiVersion: external-secrets.io/v1beta1\nkind: ExternalSecret\nmetadata:\n  name: db-es\n  namespace: prod\nspec:\n  secretStoreRef: {name: vault, kind: ClusterSecretStore}\n  target:\n    name: db\n  data:\n  - secretKey: password\n    remoteRef: {key: db, property: password}\n";
const CSS: &str = "apiVersion: external-secrets.io/v1beta1\nkind: ClusterSecretStore\nmetadata:\n  name: vault\nspec:\n  provider: {vault: {server: 'https://vault'}}\n";

#[test]
fn an_external_secret_target_resolves_refs_and_keys() {
    let y = deployment_with(
        "      containers:\n      - name: a\n        env:\n        - name: PW\n          valueFrom:\n            secretKeyRef: {name: db, key: password}\n",
    );
    assert!(findings(&[("d.yaml", &y), ("es.yaml", ES), ("css.yaml", CSS)]).is_empty());
}

#[test]
fn a_key_the_external_secret_does_not_produce_is_an_error() {
    let y = deployment_with(
        "      containers:\n      - name: a\n        env:\n        - name: PW\n          valueFrom:\n            secretKeyRef: {name: db, key: username}\n",
    );
    let r = report(&[("d.yaml", &y), ("es.yaml", ES), ("css.yaml", CSS)]);
    assert_eq!(summarise(&r), [f("secret-ref-resolves", 14, 43, "error")]);
    assert!(r.findings[0].message.contains("password"));
}

#[test]
fn external_secret_target_defaults_to_its_name() {
    let es = ES
        .replace("  target:\n    name: db\n", "")
        .replace("name: db-es", "name: db");
    let y = deployment_with(
        "      containers:\n      - name: a\n        envFrom:\n        - secretRef: {name: db}\n",
    );
    assert!(findings(&[("d.yaml", &y), ("es.yaml", &es), ("css.yaml", CSS)]).is_empty());
}

#[test]
fn data_from_makes_a_key_unverifiable_which_is_a_warning() {
    let es = ES.replace(
        "  data:\n  - secretKey: password\n    remoteRef: {key: db, property: password}\n",
        "  dataFrom:\n  - extract: {key: db}\n",
    );
    let y = deployment_with(
        "      containers:\n      - name: a\n        env:\n        - name: PW\n          valueFrom:\n            secretKeyRef: {name: db, key: anything}\n",
    );
    assert_eq!(
        findings(&[("d.yaml", &y), ("es.yaml", &es), ("css.yaml", CSS)]),
        [f("secret-ref-resolves", 14, 43, "warning")]
    );
}

#[test]
fn template_keys_of_an_external_secret_count() {
    let es = ES.replace(
        "    name: db\n",
        "    name: db\n    template:\n      data:\n        url: \"postgres://app:{{ .password }}@db/app\"\n",
    );
    let y = deployment_with(
        "      containers:\n      - name: a\n        env:\n        - name: URL\n          valueFrom:\n            secretKeyRef: {name: db, key: url}\n",
    );
    assert!(findings(&[("d.yaml", &y), ("es.yaml", &es), ("css.yaml", CSS)]).is_empty());
}

#[test]
fn vault_static_and_dynamic_secret_destinations_resolve() {
    let vss = "apiVersion: secrets.hashicorp.com/v1beta1\nkind: VaultStaticSecret\nmetadata: {name: v, namespace: prod}\nspec:\n  destination: {name: db, create: true}\n";
    let vds = "apiVersion: secrets.hashicorp.com/v1beta1\nkind: VaultDynamicSecret\nmetadata: {name: v2, namespace: prod}\nspec:\n  destination: {name: dyn, create: true}\n";
    let y = deployment_with(
        "      containers:\n      - name: a\n        env:\n        - name: PW\n          valueFrom:\n            secretKeyRef: {name: db, key: password}\n        envFrom:\n        - secretRef: {name: dyn}\n",
    );
    assert!(findings(&[("d.yaml", &y), ("v.yaml", vss), ("v2.yaml", vds)]).is_empty());
}

#[test]
fn helm_existing_secret_values_must_resolve() {
    let values = "auth:\n  existingSecret: pg-auth\n  existingSecretPasswordKey: password\nprimary:\n  existingSecret: \"\"\n";
    assert_eq!(
        findings(&[("values.yaml", values)]),
        [f("secret-ref-resolves", 2, 19, "error")]
    );
    let s = "apiVersion: v1\nkind: Secret\nmetadata: {name: pg-auth}\nstringData: {password: \"{{ .Values.x }}\"}\n";
    assert!(findings(&[("values.yaml", values), ("s.yaml", s)]).is_empty());
    let wrong_key = s.replace("password:", "postgres-password:");
    assert_eq!(
        findings(&[("values.yaml", values), ("s.yaml", &wrong_key)]),
        [f("secret-ref-resolves", 3, 30, "error")]
    );
}

#[test]
fn known_secrets_from_the_config_resolve() {
    let config = Config {
        known_secrets: vec![(Some("prod".to_owned()), "regcred".to_owned())],
        ..Config::default()
    };
    let y =
        deployment_with("      imagePullSecrets:\n      - name: regcred\n      containers: []\n");
    assert!(summarise(&report_with(&[("d.yaml", &y)], &config)).is_empty());
}

#[test]
fn refs_without_namespaces_match_any_namespace() {
    let y = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    envFrom:\n    - secretRef: {name: db}\n";
    assert!(findings(&[("p.yaml", y), ("s.yaml", SECRET_PROD)]).is_empty());
}

#[test]
fn a_secret_without_data_makes_keys_unverifiable() {
    let s = "apiVersion: v1\nkind: Secret\nmetadata: {name: filled}\ntype: Opaque\n";
    let y = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    env:\n    - name: X\n      valueFrom: {secretKeyRef: {name: filled, key: k}}\n";
    assert_eq!(
        findings(&[("p.yaml", y), ("s.yaml", s)]),
        [f("secret-ref-resolves", 9, 53, "warning")]
    );
}

#[test]
fn cert_manager_certificates_produce_tls_secrets() {
    let c = "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: c}\nspec:\n  secretName: web-tls\n";
    let y = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: []\n  volumes:\n  - name: t\n    secret:\n      secretName: web-tls\n      items: [{key: tls.key, path: k}]\n";
    assert!(findings(&[("p.yaml", y), ("c.yaml", c)]).is_empty());
}

// ---------------------------------------------------------------- externalsecret-store-exists

#[test]
fn a_missing_cluster_secret_store_is_an_error() {
    assert_eq!(
        findings(&[("es.yaml", ES)]),
        [f("externalsecret-store-exists", 7, 26, "error")]
    );
}

#[test]
fn a_secret_store_in_the_same_namespace_is_fine() {
    let es = ES.replace("kind: ClusterSecretStore", "kind: SecretStore");
    let ss = "apiVersion: external-secrets.io/v1beta1\nkind: SecretStore\nmetadata: {name: vault, namespace: prod}\nspec: {}\n";
    assert!(findings(&[("es.yaml", &es), ("ss.yaml", ss)]).is_empty());
}

#[test]
fn a_secret_store_in_another_namespace_is_a_cross_namespace_error() {
    let es = ES.replace("kind: ClusterSecretStore", "kind: SecretStore");
    let ss = "apiVersion: external-secrets.io/v1beta1\nkind: SecretStore\nmetadata: {name: vault, namespace: vault}\nspec: {}\n";
    let r = report(&[("es.yaml", &es), ("ss.yaml", ss)]);
    assert_eq!(
        summarise(&r),
        [f("externalsecret-store-exists", 7, 26, "error")]
    );
    assert!(r.findings[0].message.contains("cross-namespace"));
}

#[test]
fn store_kind_defaults_to_secret_store() {
    let es = ES.replace(", kind: ClusterSecretStore", "");
    let r = report(&[("es.yaml", &es), ("css.yaml", CSS)]);
    assert_eq!(
        summarise(&r),
        [f("externalsecret-store-exists", 7, 26, "error")]
    );
    assert!(
        r.findings[0].message.contains("ClusterSecretStore"),
        "{}",
        r.findings[0].message
    );
}

#[test]
fn a_cluster_store_whose_conditions_exclude_the_namespace_is_an_error() {
    let css = format!("{CSS}  conditions:\n  - namespaces: [dev, staging]\n");
    let r = report(&[("es.yaml", ES), ("css.yaml", &css)]);
    assert_eq!(
        summarise(&r),
        [f("externalsecret-store-exists", 7, 26, "error")]
    );
    let ok = format!("{CSS}  conditions:\n  - namespaces: [prod]\n");
    assert!(findings(&[("es.yaml", ES), ("css.yaml", &ok)]).is_empty());
}

#[test]
fn per_entry_source_refs_are_checked() {
    let es = ES.replace(
        "    remoteRef: {key: db, property: password}\n",
        "    remoteRef: {key: db, property: password}\n    sourceRef:\n      storeRef: {name: other, kind: ClusterSecretStore}\n",
    );
    assert_eq!(
        findings(&[("es.yaml", &es), ("css.yaml", CSS)]),
        [f("externalsecret-store-exists", 14, 24, "error")]
    );
}

// ---------------------------------------------------------------- known-token-prefix / entropy

#[test]
fn a_github_token_anywhere_is_found_at_the_token() {
    let y = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers:\n      - name: a\n        args: [\"--gh-token=ghp_abcdefghijklmnopqrstuvwxyz0123456789\"]\n";
    assert_eq!(
        findings(&[("d.yaml", y)]),
        [f("known-token-prefix", 9, 28, "error")]
    );
}

#[test]
fn a_private_key_inside_a_config_map_block_is_located_precisely() {
    let y = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  key.pem: |\n    # generated\n    -----BEGIN RSA PRIVATE KEY-----\n    MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n    -----END RSA PRIVATE KEY-----\n";
    assert_eq!(
        findings(&[("c.yaml", y)]),
        [f("known-token-prefix", 7, 5, "error")]
    );
}

#[test]
fn a_private_key_in_base64_secret_data_is_found() {
    use base64::Engine as _;
    let pem = "-----BEGIN PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n-----END PRIVATE KEY-----\n";
    let b64 = base64::engine::general_purpose::STANDARD.encode(pem);
    let y = format!("{SECRET_HEAD}type: kubernetes.io/tls\ndata:\n  tls.key: {b64}\n");
    assert_eq!(
        findings(&[("s.yaml", &y)]),
        [f("known-token-prefix", 7, 12, "error")]
    );
}

#[test]
fn slack_aws_and_vault_tokens_are_found_in_values_files() {
    let v = "slack:\n  hook: xoxb-123456789012-abcdefghijklmnopqrstu\naws:\n  id: AKIAZ3QRSTUVWX2Y4ABC\nvault:\n  token: hvs.CAESIJ3kUzqu9TwYbdjyv6G0nWt8wSPvZ\n";
    assert_eq!(
        findings(&[("values.yaml", v)]),
        [
            f("known-token-prefix", 2, 9, "error"),
            f("known-token-prefix", 4, 7, "error"),
            f("known-token-prefix", 6, 10, "error")
        ]
    );
}

#[test]
fn documentation_placeholders_are_not_tokens() {
    let v = "aws:\n  id: AKIAIOSFODNN7EXAMPLE\ngh: ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n";
    assert!(rules_of(v).is_empty());
}

#[test]
fn a_token_already_reported_as_inline_secret_is_not_repeated() {
    let y = secret("stringData:\n  token: ghp_abcdefghijklmnopqrstuvwxyz0123456789\n");
    assert_eq!(rules_of(&y), ["no-inline-secret"]);
}

#[test]
fn a_high_entropy_string_is_a_warning() {
    let v = "config:\n  signing: q8X2vLp9RtZ3mN7bK4wY1cH6dF0s\n";
    assert_eq!(
        findings(&[("values.yaml", v)]),
        [f("high-entropy-string", 2, 12, "warning")]
    );
}

#[test]
fn digests_images_and_checksums_are_not_high_entropy() {
    let y = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  uid: 0b3c7f0a-1d5e-4b8e-9a52-3f1f2f9a7c11\nspec:\n  template:\n    metadata:\n      annotations:\n        checksum/config: 3f786850e387550fdab836ed7e6dc881de23001b3f786850e387550fdab836ed\n    spec:\n      containers:\n      - name: a\n        image: registry.k8s.io/ingress-nginx/controller:v1.9.4@sha256:5b161f051d017e55d358435f295f5e9a297e66158f136321d9b04520ec6c48a3\n";
    assert!(rules_of(y).is_empty());
}

#[test]
fn a_certificate_is_not_high_entropy() {
    let y = "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {name: w}\nwebhooks:\n- name: a\n  clientConfig:\n    caBundle: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJrVENCK3dJSkFLSGtD\n";
    assert!(rules_of(y).is_empty());
}

// ---------------------------------------------------------------- YAML shapes

#[test]
fn multi_document_streams_are_linted_document_by_document() {
    let y = format!(
        "---\n{}---\n# empty\n---\n{}",
        secret("stringData:\n  password: one-literal\n"),
        secret("stringData:\n  token: two-literal\n")
    );
    assert_eq!(
        findings(&[("m.yaml", &y)]),
        [
            f("no-inline-secret", 7, 13, "error"),
            f("no-inline-secret", 16, 10, "error")
        ]
    );
}

#[test]
fn json_manifests_with_tabs_are_linted() {
    let j = "{\n\t\"apiVersion\": \"v1\",\n\t\"kind\": \"Secret\",\n\t\"metadata\": {\"name\": \"x\"},\n\t\"stringData\": {\n\t\t\"password\": \"hunter2hunter2\"\n\t}\n}\n";
    assert_eq!(
        findings(&[("s.json", j)]),
        [f("no-inline-secret", 6, 15, "error")]
    );
}

#[test]
fn a_json_list_is_linted_item_by_item() {
    let j = r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Secret","metadata":{"name":"a"},"stringData":{"token":"abc"}},{"apiVersion":"bitnami.com/v1alpha1","kind":"SealedSecret","metadata":{"name":"b"}}]}"#;
    assert_eq!(
        findings(&[("l.json", j)]),
        [
            f("no-inline-secret", 1, 124, "error"),
            f("no-sealed-secret", 1, 176, "error")
        ]
    );
}

#[test]
fn helm_output_with_source_comments_is_linted_and_attributed() {
    let y = "---\n# Source: app/templates/secret.yaml\napiVersion: v1\nkind: Secret\nmetadata:\n  name: app\nstringData:\n  password: \"hunter2hunter2\" # set by values\n---\n# Source: app/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n";
    let r = report(&[("-", y)]);
    assert_eq!(summarise(&r), [f("no-inline-secret", 8, 13, "error")]);
    let res = &r.files[0].resources[r.findings[0].resource.unwrap()];
    assert_eq!(
        res.helm_source.as_deref(),
        Some("app/templates/secret.yaml")
    );
}

#[test]
fn non_kubernetes_yaml_is_only_scanned_for_tokens() {
    let v = "password: hunter2\nimage: nginx\n";
    assert!(rules_of(v).is_empty());
}

// ---------------------------------------------------------------- suppressions

#[test]
fn a_trailing_allow_comment_with_reason_suppresses_the_line() {
    let y = secret(
        "stringData:\n  password: fixture-pw # tresor-lint: allow no-inline-secret reason=\"test fixture\"\n",
    );
    let r = report(&[("s.yaml", &y)]);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert_eq!(r.suppressed, 1);
}

#[test]
fn an_allow_comment_above_the_line_suppresses_it() {
    let y = secret(
        "stringData:\n  # tresor-lint: allow no-inline-secret reason=\"dev only\"\n  password: fixture-pw\n  token: other-literal\n",
    );
    assert_eq!(
        findings(&[("s.yaml", &y)]),
        [f("no-inline-secret", 8, 10, "error")]
    );
}

#[test]
fn an_allow_comment_above_the_resource_suppresses_the_resource() {
    let y = format!(
        "# tresor-lint: allow no-inline-secret reason=\"kind e2e fixture\"\n{}",
        secret("stringData:\n  password: a-literal\n  token: b-literal\n")
    );
    let r = report(&[("s.yaml", &y)]);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert_eq!(r.suppressed, 2);
}

#[test]
fn an_allow_comment_on_the_kind_line_suppresses_the_resource() {
    let y = "apiVersion: v1\nkind: Secret # tresor-lint: allow no-inline-secret reason=\"fixture\"\nmetadata: {name: a}\nstringData:\n  password: a-literal\n";
    assert!(rules_of(y).is_empty());
}

const CM_HEAD: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n";

#[test]
fn an_allow_comment_above_a_literal_block_key_covers_findings_in_its_content() {
    // Reported on a content line (8, below a leading blank line); the comment can only sit
    // above `app.ini: |`.
    let body = "  app.ini: |\n\n    [db]\n    password = hunter2-literal\n  other.ini: |\n    password = not-covered-1\n";
    let bare = format!("{CM_HEAD}{body}");
    assert_eq!(
        findings(&[("c.yaml", &bare)]),
        [
            f("no-inline-secret", 9, 5, "error"),
            f("no-inline-secret", 11, 5, "error")
        ]
    );
    let y =
        format!("{CM_HEAD}  # tresor-lint: allow no-inline-secret reason=\"test fixture\"\n{body}");
    let r = report(&[("c.yaml", &y)]);
    assert_eq!(summarise(&r), [f("no-inline-secret", 12, 5, "error")]);
    assert_eq!(r.suppressed, 1);
}

#[test]
fn an_allow_comment_trailing_a_block_indicator_covers_its_content() {
    let y = format!(
        "{CM_HEAD}  app.env: | # tresor-lint: allow no-inline-secret reason=\"test fixture\"\n    export API_TOKEN=hunter2-literal\n"
    );
    let r = report(&[("c.yaml", &y)]);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert_eq!(r.suppressed, 1);
}

#[test]
fn an_allow_comment_above_a_folded_block_key_covers_the_value_on_its_first_content_line() {
    let body = "stringData:\n  password: >-\n    hunter2-literal\n";
    // The finding is at the first content line, not at `>-`.
    assert_eq!(
        findings(&[("s.yaml", &secret(body))]),
        [f("no-inline-secret", 7, 5, "error")]
    );
    let y = secret(
        "stringData:\n  # tresor-lint: allow no-inline-secret reason=\"test fixture\"\n  password: >-\n    hunter2-literal\n  token: |\n    other-literal\n",
    );
    let r = report(&[("s.yaml", &y)]);
    // `token: |` is not covered by the comment above `password`.
    assert_eq!(summarise(&r), [f("no-inline-secret", 10, 5, "error")]);
    assert_eq!(r.suppressed, 1);
}

#[test]
fn an_allow_comment_on_the_resource_covers_findings_inside_block_scalars() {
    let y = format!(
        "# tresor-lint: allow no-inline-secret,known-token-prefix reason=\"test fixture\"\n{CM_HEAD}  app.ini: |\n    password = hunter2-literal\n  gh: |\n    clone with ghp_abcdefghijklmnopqrstuvwxyz0123456789\n"
    );
    let r = report(&[("c.yaml", &y)]);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert_eq!(r.suppressed, 2);
}

#[test]
fn an_allow_comment_above_a_block_key_covers_only_the_rules_it_names() {
    let y = format!(
        "{CM_HEAD}  # tresor-lint: allow high-entropy-string reason=\"test fixture\"\n  app.ini: |\n    password = hunter2-literal\n"
    );
    assert_eq!(
        findings(&[("c.yaml", &y)]),
        [f("no-inline-secret", 8, 5, "error")]
    );
}

#[test]
fn an_allow_comment_without_reason_suppresses_nothing_and_is_reported() {
    let y = secret("stringData:\n  password: fixture-pw # tresor-lint: allow no-inline-secret\n");
    assert_eq!(
        findings(&[("s.yaml", &y)]),
        [
            f("no-inline-secret", 6, 13, "error"),
            f("invalid-suppression", 6, 24, "warning")
        ]
    );
}

#[test]
fn an_allow_comment_for_another_rule_does_not_suppress() {
    let y = secret(
        "stringData:\n  password: fixture-pw # tresor-lint: allow no-sealed-secret reason=\"x\"\n",
    );
    assert_eq!(rules_of(&y), ["no-inline-secret"]);
}

#[test]
fn an_allow_comment_with_an_unknown_rule_is_reported() {
    let y = "a: 1 # tresor-lint: allow no-such-rule reason=\"x\"\n";
    assert_eq!(rules_of(y), ["invalid-suppression"]);
}

// ---------------------------------------------------------------- severities

#[test]
fn config_severities_override_and_turn_rules_off() {
    let mut config = Config::default();
    config.severities.insert(
        "no-inline-secret".to_owned(),
        Some(tresor_lint::Severity::Note),
    );
    config
        .severities
        .insert("no-sealed-secret".to_owned(), None);
    let y = format!(
        "{}---\napiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {{name: s}}\n",
        secret("stringData:\n  password: lit-eral\n")
    );
    let r = report_with(&[("s.yaml", &y)], &config);
    assert_eq!(summarise(&r), [f("no-inline-secret", 6, 13, "note")]);
}

// ---------------------------------------------------------------- errors

#[test]
fn invalid_yaml_is_a_problem_with_file_and_line() {
    let r = report(&[(
        "bad.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: [unclosed\n",
    )]);
    assert_eq!(r.problems.len(), 1);
    assert_eq!(r.problems[0].file, "bad.yaml");
    assert!(r.problems[0].pos.unwrap().line >= 4, "{:?}", r.problems[0]);
}

#[test]
fn invalid_json_is_a_problem_with_file_and_line() {
    let r = report(&[(
        "bad.json",
        "{\n  \"kind\": \"Secret\",\n  \"metadata\": {\"name\": \"x\"\n  ]\n}\n",
    )]);
    assert_eq!(r.problems.len(), 1);
    assert!(r.problems[0].pos.unwrap().line >= 3, "{:?}", r.problems[0]);
}

#[test]
fn an_alias_bomb_is_refused_with_a_clear_message() {
    let mut s = String::from("a0: &a0 [x,x,x,x,x,x,x,x,x,x]\n");
    for i in 1..12 {
        let p = i - 1;
        s.push_str(&format!(
            "a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"
        ));
    }
    let r = report(&[("bomb.yaml", &s)]);
    assert_eq!(r.problems.len(), 1);
    assert!(
        r.problems[0].message.contains("alias bomb"),
        "{}",
        r.problems[0].message
    );
}

#[test]
fn a_good_file_is_still_linted_next_to_a_bad_one() {
    let good = secret("stringData:\n  password: lit-eral\n");
    let r = report(&[("bad.yaml", "a: [\n"), ("good.yaml", &good)]);
    assert_eq!(r.problems.len(), 1);
    assert_eq!(r.findings.len(), 1);
}
