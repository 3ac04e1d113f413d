//! `tresor sync once` against the real server binary (dev mode, KV v1 and v2): an ESO
//! ExternalSecret with a dockerconfigjson template, a VaultStaticSecret and a TresorSecret
//! rendered as a YAML stream of v1 Secrets; a missing key and a denied path make it exit 1,
//! list both on stderr, and print nothing; no value reaches stderr.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;
use crate::support_sync;

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use common::{BIN, Server, raw, scratch_home};
use serde_json::{Value, json};
use support_sync::{
    GHCR_TOKEN, GHCR_USER, LEGACY_KEY, MANIFESTS, ROOT, TestDatabase, WEB_PASSWORD_V1,
    WEB_PASSWORD_V2, assert_no_values, decode, ok, role_exists, seed, sync_once,
};

#[tokio::test]
async fn once_output_yaml_renders_every_secret() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    seed(&server).await;
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(manifests.join("all.yaml"), MANIFESTS).unwrap();

    let out = sync_once(&server, &manifests, ROOT, &["--output", "yaml"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        out.status.success(),
        "exit {:?}\nstderr:\n{stderr}",
        out.status
    );
    assert_no_values(&stderr);
    assert!(stderr.contains("5 Secret(s) rendered"), "{stderr}");

    let docs = tresor_sync::yaml::documents(&stdout).unwrap();
    let by_name = |name: &str| -> Value {
        docs.iter()
            .map(|(_, d)| d)
            .find(|d| d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no Secret {name} in:\n{stdout}"))
            .clone()
    };
    assert_eq!(docs.len(), 5, "{stdout}");
    for (_, d) in &docs {
        assert_eq!(d["apiVersion"], "v1");
        assert_eq!(d["kind"], "Secret");
        assert_eq!(
            d["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "tresor-sync"
        );
        assert!(
            d["metadata"]["annotations"]["tresor.dev/content-hash"]
                .as_str()
                .unwrap()
                .starts_with("sha256:")
        );
        assert!(d["metadata"].get("ownerReferences").is_none());
    }

    // Every object is a valid v1 Secret for the official Kubernetes schemas (kubectl's
    // `apply --dry-run=client` needs an API server for discovery, so here the schema check is
    // done with `kubernetes-validate`, installed by scripts/install-peers.sh;
    // sync_once_cluster.rs runs kubectl's dry runs against the FAKE API server).
    let validate =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.build/venv/bin/kubernetes-validate");
    assert!(
        validate.exists(),
        "{} is missing: run scripts/install-peers.sh",
        validate.display()
    );
    let stream = dir.path().join("secrets.yaml");
    std::fs::write(&stream, &stdout).unwrap();
    let checked = Command::new(&validate)
        .args(["--strict", "-k", "1.33.0"])
        .arg(&stream)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&checked.stdout).to_string()
        + &String::from_utf8_lossy(&checked.stderr);
    assert!(checked.status.success(), "{report}");
    assert_eq!(
        report.matches("passed for resource secret/").count(),
        5,
        "{report}"
    );

    // ExternalSecret with the dockerconfigjson template.
    let ghcr = by_name("ghcr-pull");
    assert_eq!(ghcr["metadata"]["namespace"], "apps");
    assert_eq!(ghcr["type"], "kubernetes.io/dockerconfigjson");
    assert_eq!(ghcr["metadata"]["labels"]["team"], GHCR_USER.to_uppercase());
    let keys: Vec<&String> = ghcr["data"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [".dockerconfigjson"],
        "the template replaces the fetched keys"
    );
    let config: Value = serde_json::from_str(&decode(&ghcr, ".dockerconfigjson")).unwrap();
    let entry = &config["auths"]["ghcr.io"];
    assert_eq!(entry["username"], GHCR_USER);
    assert_eq!(entry["password"], GHCR_TOKEN);
    let auth = base64::engine::general_purpose::STANDARD
        .decode(entry["auth"].as_str().unwrap())
        .unwrap();
    assert_eq!(auth, format!("{GHCR_USER}:{GHCR_TOKEN}").as_bytes());

    // The seeds' shape: a template with only a type passes the fetched key through.
    let seed = by_name("ghcr-pull-seed");
    assert_eq!(seed["type"], "kubernetes.io/dockerconfigjson");
    assert!(decode(&seed, ".dockerconfigjson").contains(GHCR_TOKEN));

    // dataFrom.extract of version 1: every key, that version's values; default target name.
    let all = by_name("webapp-all");
    assert_eq!(all["type"], "Opaque");
    assert_eq!(decode(&all, "password"), WEB_PASSWORD_V1);
    assert_eq!(decode(&all, "username"), "web");
    assert!(all["data"].get("internal_note").is_none());

    // VaultStaticSecret: latest version, excludes, a template, `_raw`.
    let web = by_name("webapp-config");
    assert_eq!(web["metadata"]["labels"]["app"], "web");
    assert_eq!(decode(&web, "password"), WEB_PASSWORD_V2);
    assert_eq!(decode(&web, "limits"), r#"{"rps":5}"#);
    assert_eq!(decode(&web, "url"), format!("web:{WEB_PASSWORD_V2}@db"));
    assert!(web["data"].get("internal_note").is_none(), "excluded");
    let raw: Value = serde_json::from_str(&decode(&web, "_raw")).unwrap();
    assert_eq!(raw["data"]["password"], WEB_PASSWORD_V2);
    assert_eq!(raw["metadata"]["version"], 2);

    // TresorSecret: KV v2 keys (a nested one) with a prefix, KV v1, a template.
    let shop = by_name("shop-env");
    assert_eq!(shop["metadata"]["namespace"], "shop");
    assert_eq!(shop["metadata"]["labels"]["app"], "shop");
    let keys: Vec<&String> = shop["data"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["API_KEY", "SUMMARY"]);
    assert_eq!(decode(&shop, "API_KEY"), LEGACY_KEY);
    let b64_password = base64::engine::general_purpose::STANDARD.encode(WEB_PASSWORD_V2);
    assert_eq!(decode(&shop, "SUMMARY"), format!("EU/5/{b64_password}"));

    // The same inputs give the same content hashes (what makes idle runs write nothing).
    let again = sync_once(&server, &manifests, ROOT, &["--output", "yaml"]);
    assert!(again.status.success());
    assert_eq!(String::from_utf8(again.stdout).unwrap(), stdout);
}

#[tokio::test]
async fn once_fails_listing_every_missing_and_denied_source_and_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    seed(&server).await;
    ok(
        &server,
        "POST",
        "secret/data/denied",
        json!({"data": {"value": "never-shown"}}),
    )
    .await;
    // A CI token that may read ghcr and webapp, not `denied`.
    ok(
        &server,
        "PUT",
        "sys/policies/acl/sync-ci",
        json!({"policy": "path \"secret/data/ghcr\" { capabilities = [\"read\"] }\npath \"secret/data/webapp/*\" { capabilities = [\"read\"] }\npath \"secret/data/nope\" { capabilities = [\"read\"] }"}),
    )
    .await;
    let reply = ok(
        &server,
        "POST",
        "auth/token/create",
        json!({"policies": ["sync-ci"], "no_default_policy": true}),
    )
    .await;
    let ci_token = reply["auth"]["client_token"].as_str().unwrap().to_owned();

    let manifests = dir.path().join("m");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(
        manifests.join("a.yaml"),
        r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: tresor, namespace: apps}
spec:
  provider:
    vault: {server: "http://tresor.invalid:8200", path: secret, version: v2, auth: {tokenSecretRef: {name: t}}}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: good, namespace: apps}
spec:
  secretStoreRef: {name: tresor}
  data:
    - secretKey: token
      remoteRef: {key: ghcr, property: token}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: broken, namespace: apps}
spec:
  secretStoreRef: {name: tresor}
  data:
    - secretKey: ok
      remoteRef: {key: ghcr, property: username}
    - secretKey: missing-key
      remoteRef: {key: nope, property: value}
    - secretKey: missing-property
      remoteRef: {key: ghcr, property: no_such_property}
    - secretKey: denied-key
      remoteRef: {key: denied, property: value}
---
apiVersion: secrets.hashicorp.com/v1beta1
kind: VaultStaticSecret
metadata: {name: web, namespace: apps}
spec: {type: kv-v2, mount: secret, path: webapp/gone, destination: {name: web, create: true}}
"#,
    )
    .unwrap();

    let out = sync_once(&server, &manifests, &ci_token, &["--output", "yaml"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stdout.is_empty(), "printed despite failures:\n{stdout}");
    assert_no_values(&stderr);
    assert!(
        !stderr.contains("never-shown") && !stderr.contains(&ci_token),
        "{stderr}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    let has = |needle: &str| {
        assert!(
            lines.iter().any(|l| l.contains(needle)),
            "stderr lacks {needle:?}:\n{stderr}"
        );
    };
    has("ExternalSecret apps/broken: missing-key: no secret at secret/data/nope");
    has(
        "ExternalSecret apps/broken: missing-property: secret/data/ghcr: property \"no_such_property\" not found",
    );
    has("ExternalSecret apps/broken: denied-key: permission denied on secret/data/denied");
    has("VaultStaticSecret apps/web: secret/webapp/gone: no secret at secret/data/webapp/gone");
    assert!(
        stderr.contains("4 of the resources' sources failed; nothing was printed"),
        "{stderr}"
    );
    // The good resource and the good key of the broken one are not failures.
    assert!(!stderr.contains("apps/good"), "{stderr}");
    assert!(!stderr.contains("broken: ok:"), "{stderr}");

    // A sealed server: every resource fails with the same plain reason.
    let (status, _) = raw(&server, "PUT", "sys/seal", Some(ROOT), None).await;
    assert_eq!(status, 204);
    let out = sync_once(&server, &manifests, &ci_token, &["--output", "yaml"]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains("ExternalSecret apps/good: token: Tresor is sealed"),
        "{stderr}"
    );
}

#[test]
fn once_refuses_bad_input_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.yaml"), "kind: [unclosed\n").unwrap();
    let out = Command::new(BIN)
        .args(["sync", "once", "-f"])
        .arg(dir.path().join("bad.yaml"))
        .args([
            "--output",
            "yaml",
            "--address",
            "http://127.0.0.1:9",
            "--token",
            "t",
        ])
        .env("HOME", scratch_home())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("bad.yaml"), "{stderr}");
    // Usage errors exit 2 as well (1 means failed sources).
    let out = Command::new(BIN)
        .args(["sync", "once"])
        .env("HOME", scratch_home())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A VaultDynamicSecret and a TresorSecret's database source, read once against the real
/// PostgreSQL through the database engine: each Secret holds working credentials of a role
/// the engine created, and nothing of them reaches stderr.
#[tokio::test]
async fn once_reads_dynamic_database_credentials() {
    let database = TestDatabase::create("sync").await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    database
        .mount_engine(&server, json!({"default_ttl": "1h"}))
        .await;
    let (sup, tag) = (&database.sup, &database.tag);

    let manifests = dir.path().join("m");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(
        manifests.join("db.yaml"),
        r#"
apiVersion: secrets.hashicorp.com/v1beta1
kind: VaultDynamicSecret
metadata: {name: app-db, namespace: apps}
spec:
  mount: database
  path: creds/app
  renewalPercent: 67
  destination: {name: app-db, create: true}
  rolloutRestartTargets: [{kind: Deployment, name: app}]
---
apiVersion: tresor.dev/v1alpha1
kind: TresorSecret
metadata: {name: shop-db, namespace: shop}
spec:
  sources:
    - database: {mount: database, role: app}
      prefix: DB_
  template:
    data:
      DSN: "postgresql://{{ .DB_username }}:{{ .DB_password }}@127.0.0.1:5432/shop"
"#,
    )
    .unwrap();
    let out = sync_once(&server, &manifests, ROOT, &["--output", "yaml"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        out.status.success(),
        "stderr:\n{stderr}\nserver log:\n{}",
        server.log_text()
    );
    let docs = tresor_sync::yaml::documents(&stdout).unwrap();
    assert_eq!(docs.len(), 2, "{stdout}");

    let app = &docs
        .iter()
        .find(|(_, d)| d["metadata"]["name"] == "app-db")
        .unwrap()
        .1;
    let user = decode(app, "username");
    let password = decode(app, "password");
    assert!(user.starts_with(&format!("{tag}-app-")), "{user}");
    assert!(password.len() >= 16);
    let raw_data: Value = serde_json::from_str(&decode(app, "_raw")).unwrap();
    assert_eq!(raw_data["username"], user.as_str());
    assert!(role_exists(sup, &user).await, "the engine created {user}");

    let shop = &docs
        .iter()
        .find(|(_, d)| d["metadata"]["name"] == "shop-db")
        .unwrap()
        .1;
    let dsn = decode(shop, "DSN");
    let (creds, _) = dsn
        .strip_prefix("postgresql://")
        .unwrap()
        .split_once('@')
        .unwrap();
    let (shop_user, shop_password) = creds.split_once(':').unwrap();
    assert_ne!(shop_user, user, "each resource has its own lease");
    assert!(role_exists(sup, shop_user).await);
    for value in [password.as_str(), shop_password] {
        assert!(!stderr.contains(value), "{stderr}");
    }

    // Clean up: revoking the leases drops the roles.
    let (status, reply) = raw(
        &server,
        "PUT",
        "sys/leases/revoke-prefix/database/creds/app",
        Some(ROOT),
        None,
    )
    .await;
    assert!((200..300).contains(&status), "{status} {reply}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while role_exists(sup, &user).await || role_exists(sup, shop_user).await {
        assert!(std::time::Instant::now() < deadline, "roles not revoked");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(server);
    database.drop_all().await;
}
