//! What the `tresor sync once` tests share: the server's seed (KV v2 and v1 values), the
//! resources rendered from it, running the binary, and reading the Secrets it produces.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::Path;
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::common::{BIN, Server, raw, scratch_home};

pub const ROOT: &str = "sync-root";

/// Values written to the server: none may appear on stderr.
pub const GHCR_USER: &str = "octo-user";
pub const GHCR_TOKEN: &str = "ghp_SyncTestToken0123456789";
pub const WEB_PASSWORD_V1: &str = "web-pass-version-one";
pub const WEB_PASSWORD_V2: &str = "web-pass-version-two";
pub const LEGACY_KEY: &str = "legacy-api-key-42";

pub async fn ok(server: &Server, method: &str, path: &str, body: Value) -> Value {
    let (status, reply) = raw(server, method, path, Some(ROOT), Some(body)).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {reply}"
    );
    reply
}

pub async fn seed(server: &Server) {
    ok(
        server,
        "POST",
        "secret/data/ghcr",
        json!({"data": {"username": GHCR_USER, "token": GHCR_TOKEN}}),
    )
    .await;
    // The seeds' own shape: the whole dockerconfigjson under `value`.
    ok(
        server,
        "POST",
        "secret/data/ghcr-token",
        json!({"data": {"value": format!("{{\"auths\":{{\"ghcr.io\":{{\"auth\":\"{GHCR_TOKEN}\"}}}}}}")}}),
    )
    .await;
    ok(
        server,
        "POST",
        "secret/data/webapp/config",
        json!({"data": {"username": "web", "password": WEB_PASSWORD_V1}}),
    )
    .await;
    ok(
        server,
        "POST",
        "secret/data/webapp/config",
        json!({"data": {"username": "web", "password": WEB_PASSWORD_V2, "internal_note": "x", "limits": {"rps": 5}}}),
    )
    .await;
    ok(
        server,
        "POST",
        "sys/mounts/legacy",
        json!({"type": "kv", "options": {"version": "1"}}),
    )
    .await;
    ok(
        server,
        "POST",
        "legacy/shop",
        json!({"api_key": LEGACY_KEY, "region": "eu"}),
    )
    .await;
}

pub const MANIFESTS: &str = r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: tresor, namespace: apps}
spec:
  provider:
    vault:
      server: "http://tresor.invalid:8200"
      path: secret
      version: v2
      auth:
        tokenSecretRef: {name: vault-token, key: token}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: ghcr-pull-sync, namespace: apps}
spec:
  refreshInterval: 1h
  secretStoreRef: {kind: SecretStore, name: tresor}
  target:
    name: ghcr-pull
    template:
      type: kubernetes.io/dockerconfigjson
      engineVersion: v2
      metadata:
        labels: {team: "{{ .username | upper }}"}
      data:
        .dockerconfigjson: '{"auths":{"ghcr.io":{"username":"{{ .username }}","password":"{{ .token }}","auth":"{{ printf "%s:%s" .username .token | b64enc }}"}}}'
  data:
    - secretKey: username
      remoteRef: {key: ghcr, property: username}
    - secretKey: token
      remoteRef: {key: secret/ghcr, property: token}
---
apiVersion: external-secrets.io/v1beta1
kind: ExternalSecret
metadata: {name: ghcr-pull-seed, namespace: apps}
spec:
  secretStoreRef: {kind: SecretStore, name: tresor}
  target:
    name: ghcr-pull-seed
    template: {type: kubernetes.io/dockerconfigjson}
  data:
    - secretKey: .dockerconfigjson
      remoteRef: {key: ghcr-token, property: value}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: webapp-all, namespace: apps}
spec:
  secretStoreRef: {kind: SecretStore, name: tresor}
  dataFrom:
    - extract: {key: webapp/config, version: "1"}
---
apiVersion: secrets.hashicorp.com/v1beta1
kind: VaultStaticSecret
metadata: {name: webapp, namespace: apps}
spec:
  type: kv-v2
  mount: secret
  path: webapp/config
  refreshAfter: 30s
  destination:
    name: webapp-config
    create: true
    labels: {app: web}
    transformation:
      excludes: ["^internal_"]
      templates:
        url: {text: '{{- get .Secrets "username" -}}:{{- get .Secrets "password" -}}@db'}
  rolloutRestartTargets: [{kind: Deployment, name: web}]
---
apiVersion: tresor.dev/v1alpha1
kind: TresorSecret
metadata: {name: shop, namespace: shop}
spec:
  connection: {address: "http://tresor.invalid:8200"}
  sources:
    - kv: {mount: secret, path: webapp/config, keys: [password, limits.rps]}
      prefix: WEB_
    - kv: {mount: legacy, path: shop, kvVersion: 1}
  target: {name: shop-env, labels: {app: shop}}
  template:
    data:
      API_KEY: "{{ .api_key }}"
      SUMMARY: "{{ .region | upper }}/{{ index . \"WEB_limits.rps\" }}/{{ .WEB_password | b64enc }}"
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: apps}
spec: {}
"#;

pub fn sync_once(server: &Server, dir: &Path, token: &str, extra: &[&str]) -> Output {
    sync_once_env(server, dir, token, extra, &[])
}

/// `tresor sync once -f DIR EXTRA…` with extra environment variables (e.g. `KUBECONFIG`).
pub fn sync_once_env(
    server: &Server,
    dir: &Path,
    token: &str,
    extra: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
) -> Output {
    let mut args = vec!["sync", "once", "-f", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    Command::new(BIN)
        .args(&args)
        .envs(env.iter().copied())
        .env("HOME", scratch_home())
        .env("VAULT_ADDR", &server.addr)
        .env("VAULT_TOKEN", token)
        .env_remove("TRESOR_ADDR")
        .env_remove("TRESOR_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub fn decode(secret: &Value, key: &str) -> String {
    let b64 = secret["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("no data key {key} in {secret}"));
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}

pub fn assert_no_values(stderr: &str) {
    for value in [
        GHCR_TOKEN,
        GHCR_USER,
        WEB_PASSWORD_V1,
        WEB_PASSWORD_V2,
        LEGACY_KEY,
        ROOT,
    ] {
        assert!(!stderr.contains(value), "stderr shows a value: {stderr}");
    }
}

/// A superuser session on the machine's PostgreSQL (127.0.0.1:5432, user postgres, trust), for
/// the dynamic-credential tests to create their own role and database and check the roles
/// the database engine creates and drops.
pub async fn pg_superuser() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres",
        tokio_postgres::NoTls,
    )
    .await
    .expect("PostgreSQL on 127.0.0.1:5432 (user postgres, trust)");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Whether PostgreSQL has a role of that name.
pub async fn role_exists(sup: &tokio_postgres::Client, name: &str) -> bool {
    !sup.query("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&name])
        .await
        .unwrap()
        .is_empty()
}

/// An RFC 3339 time (a lease's expiry, a restart annotation) in Unix milliseconds.
pub fn millis(rfc3339: &str) -> i64 {
    tresor_sync::rollout::parse_time_millis(rfc3339).unwrap()
}

/// A PostgreSQL database and admin role of one test's own (named from `prefix`, the process
/// and the clock, so tests run side by side), for the database engine to manage roles in.
pub struct TestDatabase {
    /// A superuser session, for checking the roles the engine creates and drops.
    pub sup: tokio_postgres::Client,
    /// The prefix of every username the engine makes: `<tag>-<role>-<random>`.
    pub tag: String,
    admin: String,
    db: String,
}

const TEST_DATABASE_ADMIN_PASSWORD: &str = "Sync-Adm1n-Pw";

impl TestDatabase {
    pub async fn create(prefix: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let tag = format!(
            "{prefix}_{}_{}",
            std::process::id() % 100_000,
            nanos % 10_000
        );
        let admin = format!("{tag}_admin");
        let db = format!("{tag}_db");
        let sup = pg_superuser().await;
        // Two statements: CREATE DATABASE cannot run in the implicit transaction of a batch.
        sup.batch_execute(&format!(
            "CREATE ROLE \"{admin}\" LOGIN CREATEROLE PASSWORD '{TEST_DATABASE_ADMIN_PASSWORD}'"
        ))
        .await
        .unwrap();
        sup.batch_execute(&format!("CREATE DATABASE \"{db}\" OWNER \"{admin}\""))
            .await
            .unwrap();
        Self {
            sup,
            tag,
            admin,
            db,
        }
    }

    /// Mounts the database engine at `database/` on `server`, connected to this database as
    /// `db`, with the role `app` of `ttls` (e.g. `{"default_ttl": "3s", "max_ttl": "8s"}`).
    pub async fn mount_engine(&self, server: &Server, ttls: Value) {
        let (admin, db, tag) = (&self.admin, &self.db, &self.tag);
        ok(
            server,
            "POST",
            "sys/mounts/database",
            json!({"type": "database"}),
        )
        .await;
        ok(
            server,
            "POST",
            "database/config/db",
            json!({
                "plugin_name": "postgresql-database-plugin",
                "connection_url": format!("postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:5432/{db}"),
                "username": admin,
                "password": TEST_DATABASE_ADMIN_PASSWORD,
                "allowed_roles": "*",
                "username_template": format!("{tag}-{{{{.RoleName}}}}-{{{{random 10}}}}"),
            }),
        )
        .await;
        let mut role = json!({"db_name": "db",
            "creation_statements": ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"]});
        if let (Some(role), Some(ttls)) = (role.as_object_mut(), ttls.as_object()) {
            role.extend(ttls.clone());
        }
        ok(server, "POST", "database/roles/app", role).await;
    }

    /// Drops the database (closing its sessions) and the admin role; the engine's server must
    /// be stopped first.
    pub async fn drop_all(self) {
        self.sup
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.db
            ))
            .await
            .unwrap();
        self.sup
            .batch_execute(&format!("DROP ROLE IF EXISTS \"{}\"", self.admin))
            .await
            .unwrap();
    }
}
