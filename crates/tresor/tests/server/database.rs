//! The database secrets engine through the real binary against the real PostgreSQL on
//! 127.0.0.1:5432: configs, dynamic credentials (issue, log in, renew, revoke, expiry,
//! revoke-prefix, token revocation, unmount), allowed_roles, rotate-root, static roles,
//! an unreachable server, a crash between CREATE ROLE and the lease write, hostile input,
//! password policies (`password_policy` on configs and roles), the CLI and vaultrs.
//!
//! Every test makes its own admin role and database with unique names and checks `pg_roles`
//! for what it created. The local PostgreSQL trusts every TCP login, so "the password works"
//! is checked against the SCRAM verifier PostgreSQL stores (`pg_authid`), not by logging in.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{BIN, Server, raw, scratch_home};
use serde_json::{Value, json};

const ROOT: &str = "db-root";

fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "tt{tag}{}x{}x{}",
        std::process::id() % 100_000,
        N.fetch_add(1, Ordering::SeqCst),
        nanos % 10_000
    )
}

async fn connect(conninfo: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

async fn superuser() -> tokio_postgres::Client {
    connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres")
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (user postgres, trust)")
}

/// A test's own admin role and database. Names of everything the engine creates start with
/// `tag`, so `pg_roles` can be checked for leftovers.
struct Pg {
    tag: String,
    admin: String,
    password: String,
    db: String,
    sup: tokio_postgres::Client,
}

impl Pg {
    /// A `CREATEROLE` admin (not a superuser) that owns its database and may end other
    /// roles' sessions (`pg_signal_backend`), or a superuser.
    async fn new(superuser_admin: bool) -> Pg {
        Pg::with(superuser_admin, true).await
    }

    /// As [`Pg::new`]; `signal_backend` false leaves a `CREATEROLE` admin without
    /// `pg_signal_backend`, so it may end a role's sessions only as a member of the role.
    async fn with(superuser_admin: bool, signal_backend: bool) -> Pg {
        let tag = unique("");
        let admin = format!("{tag}_admin");
        let db = format!("{tag}_db");
        let password = "Initial-Adm1n-Pw".to_owned();
        let sup = superuser().await;
        let kind = if superuser_admin {
            "SUPERUSER"
        } else {
            "CREATEROLE"
        };
        sup.batch_execute(&format!(
            "CREATE ROLE \"{admin}\" LOGIN {kind} PASSWORD '{password}'"
        ))
        .await
        .unwrap();
        if signal_backend {
            sup.batch_execute(&format!("GRANT pg_signal_backend TO \"{admin}\""))
                .await
                .unwrap();
        }
        sup.batch_execute(&format!("CREATE DATABASE \"{db}\" OWNER \"{admin}\""))
            .await
            .unwrap();
        // A table owned by the admin, for roles that are granted SELECT.
        let in_db = connect(&format!("host=127.0.0.1 user={admin} dbname={db}"))
            .await
            .unwrap();
        in_db
            .batch_execute("CREATE TABLE items (id int); INSERT INTO items VALUES (1), (2);")
            .await
            .unwrap();
        Pg {
            tag,
            admin,
            password,
            db,
            sup,
        }
    }

    fn url(&self) -> String {
        format!(
            "postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:5432/{}",
            self.db
        )
    }

    /// Roles whose names start with the tag (the admin excluded).
    async fn leftover_roles(&self) -> Vec<String> {
        self.sup
            .query(
                "SELECT rolname FROM pg_roles WHERE rolname LIKE $1 AND rolname <> $2 ORDER BY 1",
                &[&format!("{}%", self.tag), &self.admin],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    async fn role_exists(&self, name: &str) -> bool {
        !self
            .sup
            .query("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&name])
            .await
            .unwrap()
            .is_empty()
    }

    async fn valid_until(&self, name: &str) -> i64 {
        self.sup
            .query_one(
                "SELECT extract(epoch FROM rolvaliduntil)::bigint FROM pg_roles WHERE rolname = $1",
                &[&name],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// Whether `password` is the one PostgreSQL holds for `role` (SCRAM-SHA-256 verifier).
    async fn password_is(&self, role: &str, password: &str) -> bool {
        let verifier: String = self
            .sup
            .query_one(
                "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
                &[&role],
            )
            .await
            .unwrap()
            .get(0);
        scram_matches(&verifier, password)
    }

    async fn wait_gone(&self, names: &[String], what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut left = Vec::new();
            for n in names {
                if self.role_exists(n).await {
                    left.push(n.clone());
                }
            }
            if left.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: roles still exist: {left:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn cleanup(self) {
        let left = self.leftover_roles().await;
        self.sup
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.db
            ))
            .await
            .unwrap();
        for r in left.iter().chain([&self.admin]) {
            let _ = self
                .sup
                .batch_execute(&format!("DROP ROLE IF EXISTS \"{r}\""))
                .await;
        }
    }
}

fn scram_matches(verifier: &str, password: &str) -> bool {
    // SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
    let rest = verifier
        .strip_prefix("SCRAM-SHA-256$")
        .expect("a SCRAM verifier");
    let (params, keys) = rest.split_once('$').unwrap();
    let (iterations, salt) = params.split_once(':').unwrap();
    let (stored_key, _) = keys.split_once(':').unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let salt = b64.decode(salt).unwrap();
    let mut salted = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(iterations.parse().unwrap()).unwrap(),
        &salt,
        password.as_bytes(),
        &mut salted,
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &salted);
    let client_key = ring::hmac::sign(&key, b"Client Key");
    let computed = ring::digest::digest(&ring::digest::SHA256, client_key.as_ref());
    b64.encode(computed.as_ref()) == stored_key
}

fn start() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    (dir, server)
}

async fn ok(server: &Server, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, reply) = raw(server, method, path, Some(ROOT), body).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {reply}\n{}",
        server.log_text()
    );
    reply
}

async fn mount(server: &Server, path: &str) {
    ok(
        server,
        "POST",
        &format!("sys/mounts/{path}"),
        Some(json!({"type": "database"})),
    )
    .await;
}

/// Mounts `mount`, configures `db` for `pg` with a username template that starts with the tag.
async fn setup(server: &Server, pg: &Pg, mount_path: &str, extra: Value) {
    mount(server, mount_path).await;
    let mut body = json!({
        "plugin_name": "postgresql-database-plugin",
        "connection_url": pg.url(),
        "username": pg.admin,
        "password": pg.password,
        "allowed_roles": "*",
        "username_template": format!("{}-{{{{.RoleName}}}}-{{{{random 10}}}}", pg.tag),
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    ok(
        server,
        "POST",
        &format!("{mount_path}/config/db"),
        Some(body),
    )
    .await;
}

fn creation(grant: bool) -> Value {
    let mut statements = vec![
        "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
            .to_owned(),
    ];
    if grant {
        statements.push("GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\";".to_owned());
    }
    json!(statements)
}

async fn issue(server: &Server, path: &str, token: &str) -> (String, String, String, u64) {
    let (status, reply) = raw(server, "GET", path, Some(token), None).await;
    assert_eq!(status, 200, "{reply}\n{}", server.log_text());
    (
        reply["data"]["username"].as_str().unwrap().to_owned(),
        reply["data"]["password"].as_str().unwrap().to_owned(),
        reply["lease_id"].as_str().unwrap().to_owned(),
        reply["lease_duration"].as_u64().unwrap(),
    )
}

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamic_credentials_issue_log_in_renew_and_revoke() {
    let pg = Pg::new(false).await;
    // The most verbose log level: not even a library's debug output may show a password.
    let dir = tempfile::tempdir().unwrap();
    let root = format!("-dev-root-token-id={ROOT}");
    let server = Server::start_with_env(
        &[
            "server",
            "-dev",
            "-dev-listen-address=127.0.0.1:0",
            root.as_str(),
        ],
        &[("TRESOR_LOG_LEVEL", "trace")],
        dir.path(),
    );
    setup(&server, &pg, "database", json!({})).await;

    // The config reads back without its password.
    let config = ok(&server, "GET", "database/config/db", None).await;
    assert_eq!(config["data"]["plugin_name"], "postgresql-database-plugin");
    assert_eq!(
        config["data"]["connection_details"]["username"],
        pg.admin.as_str()
    );
    assert_eq!(config["data"]["allowed_roles"], json!(["*"]));
    assert!(!config.to_string().contains(&pg.password), "{config}");
    let list = ok(&server, "LIST", "database/config", None).await;
    assert_eq!(list["data"]["keys"], json!(["db"]));

    ok(
        &server,
        "POST",
        "database/roles/app",
        Some(
            json!({"db_name": "db", "creation_statements": creation(true),
                    "default_ttl": "1h", "max_ttl": "2h"}),
        ),
    )
    .await;
    let role = ok(&server, "GET", "database/roles/app", None).await;
    assert_eq!(role["data"]["default_ttl"], 3600);
    assert_eq!(role["data"]["max_ttl"], 7200);
    assert_eq!(role["data"]["revocation_statements"], json!([]));

    let issued_at = now();
    let (user1, pw1, lease1, ttl) = issue(&server, "database/creds/app", ROOT).await;
    assert_eq!(ttl, 3600);
    assert!(lease1.starts_with("database/creds/app/"), "{lease1}");
    let (user2, pw2, lease2, _) = issue(&server, "database/creds/app", ROOT).await;
    assert_ne!(user1, user2, "two issues give distinct users");
    assert_ne!(pw1, pw2);
    assert!(user1.starts_with(&format!("{}-app-", pg.tag)), "{user1}");
    assert_eq!(pw1.len(), 20);

    // A real client logs in with the issued credentials and runs a query; PostgreSQL holds
    // exactly that password.
    assert!(pg.password_is(&user1, &pw1).await);
    let client = connect(&format!(
        "host=127.0.0.1 user={user1} password={pw1} dbname={}",
        pg.db
    ))
    .await
    .unwrap();
    let row = client
        .query_one("SELECT current_user::text, count(*) FROM items", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), user1);
    assert_eq!(row.get::<_, i64>(1), 2);
    drop(client);

    // VALID UNTIL follows the lease (+5 s, as Vault), and renewal moves it, capped by max_ttl.
    let until = pg.valid_until(&user1).await;
    assert!(
        (issued_at + 3600 + 5 - 2..=now() + 3600 + 5 + 2).contains(&until),
        "{until}"
    );
    let renewed = ok(
        &server,
        "PUT",
        "sys/leases/renew",
        Some(json!({"lease_id": lease1, "increment": 5400})),
    )
    .await;
    assert_eq!(renewed["lease_duration"], 5400);
    let moved = pg.valid_until(&user1).await;
    assert!(moved >= until + 1800 - 2, "{until} → {moved}");
    let capped = ok(
        &server,
        "PUT",
        "sys/leases/renew",
        Some(json!({"lease_id": lease1, "increment": 36000})),
    )
    .await;
    let capped_ttl = capped["lease_duration"].as_i64().unwrap();
    assert!(capped_ttl <= 7200 && capped_ttl > 7100, "{capped}");
    assert!(!capped["warnings"].is_null(), "{capped}");
    let at_cap = pg.valid_until(&user1).await;
    assert!(
        at_cap <= issued_at + 7200 + 5 + 2,
        "VALID UNTIL past max_ttl: {at_cap}"
    );

    // Revocation drops the role: it can no longer log in.
    ok(
        &server,
        "PUT",
        "sys/leases/revoke",
        Some(json!({"lease_id": lease1})),
    )
    .await;
    assert!(!pg.role_exists(&user1).await);
    let refused = connect(&format!(
        "host=127.0.0.1 user={user1} password={pw1} dbname={}",
        pg.db
    ))
    .await;
    assert!(refused.is_err(), "a revoked role must not log in");
    ok(
        &server,
        "PUT",
        "sys/leases/revoke",
        Some(json!({"lease_id": lease2})),
    )
    .await;
    assert!(pg.leftover_roles().await.is_empty());
    // Nothing in the server log holds a password.
    let log = server.log_text();
    for secret in [&pg.password, &pw1, &pw2] {
        assert!(!log.contains(secret.as_str()), "a password reached the log");
    }
    pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_revocation_drops_a_role_with_grants_objects_and_an_open_session() {
    // (superuser admin, admin in pg_signal_backend): a plain CREATEROLE admin must join the
    // role to end its sessions and to reassign what it owns.
    for (superuser_admin, signal_backend) in [(false, true), (true, false), (false, false)] {
        let case =
            format!("superuser admin: {superuser_admin}, pg_signal_backend: {signal_backend}");
        let pg = Pg::with(superuser_admin, signal_backend).await;
        let (_dir, server) = start();
        setup(&server, &pg, "database", json!({})).await;
        // The issued role may create objects of its own in the admin's database.
        ok(
            &server,
            "POST",
            "database/roles/owner",
            Some(json!({"db_name": "db", "creation_statements": [
                "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
                "GRANT SELECT, INSERT ON items TO \"{{name}}\"; GRANT CREATE ON SCHEMA public TO \"{{name}}\";"
            ]})),
        )
        .await;
        ok(
            &server,
            "POST",
            "database/roles/plain",
            Some(json!({"db_name": "db", "creation_statements": creation(false)})),
        )
        .await;
        // One role that holds nothing but a session (dropped in one statement batch), one
        // that owns a table and holds privileges (dropped the long way).
        for (role, work) in [
            ("plain", "SELECT 1"),
            (
                "owner",
                "CREATE TABLE mine (x int); INSERT INTO items VALUES (3);",
            ),
        ] {
            let (user, pw, lease, _) =
                issue(&server, &format!("database/creds/{role}"), ROOT).await;
            let session = connect(&format!(
                "host=127.0.0.1 user={user} password={pw} dbname={}",
                pg.db
            ))
            .await
            .unwrap();
            session.batch_execute(work).await.unwrap();
            ok(
                &server,
                "PUT",
                "sys/leases/revoke",
                Some(json!({"lease_id": lease})),
            )
            .await;
            assert!(!pg.role_exists(&user).await, "{case}, role {role}");
            // Its open session was ended.
            let deadline = Instant::now() + Duration::from_secs(10);
            while session.query_one("SELECT 1", &[]).await.is_ok() {
                assert!(
                    Instant::now() < deadline,
                    "{case}, role {role}: the revoked role's session is still open"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        assert!(pg.leftover_roles().await.is_empty(), "{case}");
        pg.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn expiry_revoke_prefix_token_revocation_and_unmount_drop_roles() {
    let pg = Pg::new(false).await;
    let (_dir, server) = start();
    setup(&server, &pg, "pgx", json!({})).await;
    ok(
        &server,
        "POST",
        "pgx/roles/short",
        Some(json!({"db_name": "db", "creation_statements": creation(false), "default_ttl": "2s"})),
    )
    .await;
    ok(
        &server,
        "POST",
        "pgx/roles/long",
        Some(json!({"db_name": "db", "creation_statements": creation(false)})),
    )
    .await;

    // Expiry.
    let (short, ..) = issue(&server, "pgx/creds/short", ROOT).await;
    assert!(pg.role_exists(&short).await);
    pg.wait_gone(&[short], "after expiry").await;

    // revoke-prefix.
    let (a, ..) = issue(&server, "pgx/creds/long", ROOT).await;
    let (b, ..) = issue(&server, "pgx/creds/long", ROOT).await;
    ok(
        &server,
        "PUT",
        "sys/leases/revoke-prefix/pgx/creds/long",
        None,
    )
    .await;
    pg.wait_gone(&[a, b], "after revoke-prefix").await;

    // Revoking the token that asked revokes its leases.
    let token = ok(
        &server,
        "POST",
        "auth/token/create",
        Some(json!({"policies": ["root"]})),
    )
    .await;
    let token = token["auth"]["client_token"].as_str().unwrap().to_owned();
    let (c, ..) = issue(&server, "pgx/creds/long", &token).await;
    let (d, ..) = issue(&server, "pgx/creds/long", ROOT).await;
    ok(
        &server,
        "POST",
        "auth/token/revoke",
        Some(json!({"token": token})),
    )
    .await;
    pg.wait_gone(&[c], "after token revocation").await;
    assert!(
        pg.role_exists(&d).await,
        "another token's lease is untouched"
    );

    // Unmounting revokes what is left.
    ok(&server, "DELETE", "sys/mounts/pgx", None).await;
    pg.wait_gone(&[d], "after unmount").await;
    assert!(pg.leftover_roles().await.is_empty());
    pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_roles_are_enforced() {
    let pg = Pg::new(false).await;
    let (_dir, server) = start();
    setup(
        &server,
        &pg,
        "database",
        // With scram-sha-256, PostgreSQL receives only a verifier Tresor computed.
        json!({"allowed_roles": ["app-*", "exact"], "password_authentication": "scram-sha-256"}),
    )
    .await;
    for role in ["app-one", "exact", "other"] {
        ok(
            &server,
            "POST",
            &format!("database/roles/{role}"),
            Some(json!({"db_name": "db", "creation_statements": creation(false)})),
        )
        .await;
    }
    let (u1, pw1, ..) = issue(&server, "database/creds/app-one", ROOT).await;
    assert!(
        pg.password_is(&u1, &pw1).await,
        "the verifier matches the password"
    );
    let (u2, ..) = issue(&server, "database/creds/exact", ROOT).await;
    let (status, reply) = raw(&server, "GET", "database/creds/other", Some(ROOT), None).await;
    assert_eq!(status, 500, "{reply}");
    assert!(
        reply["errors"][0]
            .as_str()
            .unwrap()
            .contains("\"other\" is not an allowed role"),
        "{reply}"
    );
    ok(&server, "PUT", "sys/leases/revoke-prefix/database", None).await;
    pg.wait_gone(&[u1, u2], "revoke-prefix").await;
    assert!(pg.leftover_roles().await.is_empty());
    pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_root_replaces_the_admin_password_and_keeps_working() {
    let pg = Pg::new(false).await;
    let (_dir, server) = start();
    setup(&server, &pg, "database", json!({})).await;
    ok(
        &server,
        "POST",
        "database/roles/app",
        Some(json!({"db_name": "db", "creation_statements": creation(false)})),
    )
    .await;
    assert!(pg.password_is(&pg.admin, &pg.password).await);
    ok(&server, "POST", "database/rotate-root/db", None).await;
    assert!(
        !pg.password_is(&pg.admin, &pg.password).await,
        "the old admin password must no longer work"
    );
    // The engine goes on with the new password, which it never shows.
    let (user, ..) = issue(&server, "database/creds/app", ROOT).await;
    assert!(pg.role_exists(&user).await);
    let config = ok(&server, "GET", "database/config/db", None).await;
    assert!(
        config["data"]["connection_details"]
            .get("password")
            .is_none()
    );
    // A second rotation works from the stored (rotated) password.
    ok(&server, "POST", "database/rotate-root/db", None).await;
    let (user2, ..) = issue(&server, "database/creds/app", ROOT).await;
    let (status, reply) = raw(
        &server,
        "POST",
        "database/rotate-root/nope",
        Some(ROOT),
        None,
    )
    .await;
    assert_eq!(status, 500, "{reply}");
    assert!(
        reply["errors"][0]
            .as_str()
            .unwrap()
            .contains("failed to find entry for connection with name: \"nope\"")
    );
    ok(&server, "PUT", "sys/leases/revoke-prefix/database", None).await;
    pg.wait_gone(&[user, user2], "revoke-prefix").await;
    pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn static_roles_rotate_on_schedule_and_on_demand() {
    let pg = Pg::new(false).await;
    let (_dir, server) = start();
    setup(&server, &pg, "database", json!({})).await;
    let account = format!("{}_static", pg.tag);
    pg.sup
        .batch_execute(&format!(
            "CREATE ROLE \"{account}\" LOGIN PASSWORD 'not-from-tresor'"
        ))
        .await
        .unwrap();

    ok(
        &server,
        "POST",
        "database/static-roles/svc",
        Some(json!({"db_name": "db", "username": account, "rotation_period": "5s"})),
    )
    .await;
    let role = ok(&server, "GET", "database/static-roles/svc", None).await;
    assert_eq!(role["data"]["rotation_period"], 5);
    assert_eq!(role["data"]["username"], account.as_str());
    assert!(role["data"].get("password").is_none());
    let first = ok(&server, "GET", "database/static-creds/svc", None).await;
    let p1 = first["data"]["password"].as_str().unwrap().to_owned();
    assert!(first["data"]["ttl"].as_u64().unwrap() <= 5);
    assert!(
        pg.password_is(&account, &p1).await,
        "creation rotates the password at once"
    );
    assert!(!pg.password_is(&account, "not-from-tresor").await);

    // On schedule: a new password within a few seconds, without any request.
    let deadline = Instant::now() + Duration::from_secs(30);
    let p2 = loop {
        let now = ok(&server, "GET", "database/static-creds/svc", None).await;
        let p = now["data"]["password"].as_str().unwrap().to_owned();
        if p != p1 {
            assert_ne!(
                now["data"]["last_vault_rotation"],
                first["data"]["last_vault_rotation"]
            );
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "no scheduled rotation\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(pg.password_is(&account, &p2).await);

    // On demand, with a long period so the schedule cannot interfere.
    ok(
        &server,
        "POST",
        "database/static-roles/svc",
        Some(json!({"username": account, "rotation_period": "1h"})),
    )
    .await;
    let before = ok(&server, "GET", "database/static-creds/svc", None).await;
    let p_before = before["data"]["password"].as_str().unwrap().to_owned();
    ok(&server, "POST", "database/rotate-role/svc", None).await;
    let after = ok(&server, "GET", "database/static-creds/svc", None).await;
    let p3 = after["data"]["password"].as_str().unwrap().to_owned();
    assert_ne!(p3, p_before);
    assert!(pg.password_is(&account, &p3).await);
    let ttl = after["data"]["ttl"].as_u64().unwrap();
    assert!((3590..=3600).contains(&ttl), "{after}");

    // A cron schedule is accepted and shown; a period and a schedule together are not.
    ok(
        &server,
        "POST",
        "database/static-roles/svc",
        Some(json!({"username": account, "rotation_schedule": "0 * * * *"})),
    )
    .await;
    let role = ok(&server, "GET", "database/static-roles/svc", None).await;
    assert_eq!(role["data"]["rotation_schedule"], "0 * * * *");
    let (status, reply) = raw(
        &server,
        "POST",
        "database/static-roles/svc",
        Some(ROOT),
        Some(
            json!({"username": account, "rotation_schedule": "0 * * * *", "rotation_period": "1h"}),
        ),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    let (status, reply) = raw(
        &server,
        "POST",
        "database/static-roles/other",
        Some(ROOT),
        Some(json!({"db_name": "db", "username": account, "rotation_period": "3s"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        reply["errors"][0],
        "rotation_period must be 5 seconds or more"
    );
    let (status, reply) = raw(
        &server,
        "POST",
        "database/static-roles/ghost",
        Some(ROOT),
        Some(json!({"db_name": "db", "username": format!("{}_ghost", pg.tag), "rotation_period": "1h"})),
    )
    .await;
    assert_eq!(status, 500, "{reply}");
    assert!(
        reply["errors"][0]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{reply}"
    );
    let (status, _) = raw(
        &server,
        "GET",
        "database/static-roles/ghost",
        Some(ROOT),
        None,
    )
    .await;
    assert_eq!(status, 404, "a refused creation leaves no role behind");
    let log = server.log_text();
    for secret in [&p1, &p2, &p3] {
        assert!(!log.contains(secret.as_str()));
    }
    ok(&server, "DELETE", "database/static-roles/svc", None).await;
    pg.cleanup().await;
}

/// Another client altering the same PostgreSQL role at the same moment makes PostgreSQL refuse
/// one of the two `ALTER ROLE`s with `tuple concurrently updated`; the rotation tries again
/// instead of failing the request (seen once in CI, as a 500 from `static-roles` creation).
///
/// The race is made deterministic: another session alters the role in an open transaction,
/// Tresor's `ALTER ROLE` waits behind it, and the other session commits; PostgreSQL then
/// refuses Tresor's statement.
#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_that_meets_a_concurrent_alter_role_is_tried_again() {
    let pg = Pg::new(false).await;
    let (_dir, server) = start();
    setup(&server, &pg, "database", json!({})).await;
    let account = format!("{}_busy", pg.tag);
    pg.sup
        .batch_execute(&format!(
            "CREATE ROLE \"{account}\" LOGIN PASSWORD 'before'"
        ))
        .await
        .unwrap();
    ok(
        &server,
        "POST",
        "database/static-roles/busy",
        Some(json!({"db_name": "db", "username": account, "rotation_period": "1h"})),
    )
    .await;
    let before = ok(&server, "GET", "database/static-creds/busy", None).await;

    let other = superuser().await;
    other
        .batch_execute(&format!(
            "BEGIN; ALTER ROLE \"{account}\" PASSWORD 'from-another-client'"
        ))
        .await
        .unwrap();
    let rotation = {
        let addr = server.addr.clone();
        tokio::spawn(async move {
            common::http()
                .post(format!("{addr}/v1/database/rotate-role/busy"))
                .header("X-Vault-Token", ROOT)
                .send()
                .await
                .unwrap()
        })
    };
    // Tresor's ALTER ROLE is waiting for the open transaction.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = pg
            .sup
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                 AND query LIKE $1",
                &[&format!("ALTER ROLE \"{account}\"%")],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Tresor's ALTER ROLE never waited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    other.batch_execute("COMMIT").await.unwrap();

    let answer = rotation.await.unwrap();
    let status = answer.status();
    assert_eq!(status, 204, "{}", answer.text().await.unwrap());
    let after = ok(&server, "GET", "database/static-creds/busy", None).await;
    let password = after["data"]["password"].as_str().unwrap().to_owned();
    assert_ne!(password, before["data"]["password"].as_str().unwrap());
    assert!(
        pg.password_is(&account, &password).await,
        "the retried rotation's password is the one PostgreSQL holds"
    );
    ok(&server, "DELETE", "database/static-roles/busy", None).await;
    pg.cleanup().await;
}

/// A password policy's shape: `length` characters, all from `charset`, at least `min` of
/// them from `required`.
fn follows(password: &str, length: usize, charset: &str, required: &str, min: usize) -> bool {
    password.chars().count() == length
        && password.chars().all(|c| charset.contains(c))
        && password.chars().filter(|c| required.contains(*c)).count() >= min
}

#[tokio::test(flavor = "multi_thread")]
async fn password_policies_shape_dynamic_static_and_root_passwords() {
    const LOWER_DIGITS: &str = "abcdefghijklmnopqrstuvwxyz0123456789";
    let pg = Pg::new(false).await;
    let (_dir, server) = start();
    ok(
        &server,
        "PUT",
        "sys/policies/password/pg",
        Some(json!({"policy": "length = 30\nrule \"charset\" {\n  charset = \"abcdefghijklmnopqrstuvwxyz\"\n  min-chars = 5\n}\nrule \"charset\" {\n  charset = \"0123456789\"\n  min-chars = 5\n}\n"})),
    )
    .await;
    ok(
        &server,
        "PUT",
        "sys/policies/password/digits",
        Some(json!({"policy": "length = 12\nrule \"charset\" {\n  charset = \"0123456789\"\n}\n"})),
    )
    .await;
    setup(&server, &pg, "database", json!({"password_policy": "pg"})).await;
    let config = ok(&server, "GET", "database/config/db", None).await;
    assert_eq!(config["data"]["password_policy"], "pg");
    ok(
        &server,
        "POST",
        "database/roles/app",
        Some(json!({"db_name": "db", "creation_statements": creation(true)})),
    )
    .await;
    ok(
        &server,
        "POST",
        "database/roles/pin",
        Some(
            json!({"db_name": "db", "creation_statements": creation(false),
                    "credential_config": {"password_policy": "digits"}}),
        ),
    )
    .await;

    // Dynamic credentials: the config's policy, or the role's own; PostgreSQL holds it and the
    // user logs in with it.
    let mut secrets = Vec::new();
    for _ in 0..3 {
        let (user, password, ..) = issue(&server, "database/creds/app", ROOT).await;
        assert!(
            follows(&password, 30, LOWER_DIGITS, "0123456789", 5),
            "{password}"
        );
        assert!(follows(
            &password,
            30,
            LOWER_DIGITS,
            "abcdefghijklmnopqrstuvwxyz",
            5
        ));
        assert!(pg.password_is(&user, &password).await);
        let login = connect(&format!(
            "host=127.0.0.1 user={user} password={password} dbname={}",
            pg.db
        ))
        .await
        .unwrap();
        let rows = login.query("SELECT id FROM items", &[]).await.unwrap();
        assert_eq!(rows.len(), 2);
        secrets.push(password);
    }
    let (user, password, ..) = issue(&server, "database/creds/pin", ROOT).await;
    assert!(
        follows(&password, 12, "0123456789", "0123456789", 12),
        "{password}"
    );
    assert!(pg.password_is(&user, &password).await);
    secrets.push(password);

    // Static roles: creation and on-demand rotation follow the role's policy.
    let account = format!("{}_static", pg.tag);
    pg.sup
        .batch_execute(&format!("CREATE ROLE \"{account}\" LOGIN PASSWORD 'x'"))
        .await
        .unwrap();
    ok(
        &server,
        "POST",
        "database/static-roles/svc",
        Some(
            json!({"db_name": "db", "username": account, "rotation_period": "1h",
                    "credential_config": {"password_policy": "digits"}}),
        ),
    )
    .await;
    for rotate in [false, true] {
        if rotate {
            ok(&server, "POST", "database/rotate-role/svc", None).await;
        }
        let creds = ok(&server, "GET", "database/static-creds/svc", None).await;
        let password = creds["data"]["password"].as_str().unwrap().to_owned();
        assert!(
            follows(&password, 12, "0123456789", "0123456789", 12),
            "{password}"
        );
        assert!(pg.password_is(&account, &password).await);
        secrets.push(password);
    }

    // rotate-root uses the config's policy: the engine keeps working with the new password.
    ok(&server, "POST", "database/rotate-root/db", None).await;
    assert!(!pg.password_is(&pg.admin, &pg.password).await);
    let (user, password, ..) = issue(&server, "database/creds/app", ROOT).await;
    assert!(pg.password_is(&user, &password).await);

    // A policy that does not exist: OpenBao's error, and nothing created.
    ok(
        &server,
        "POST",
        "database/roles/ghost",
        Some(
            json!({"db_name": "db", "creation_statements": creation(false),
                    "credential_config": {"password_policy": "missing"}}),
        ),
    )
    .await;
    let (status, reply) = raw(&server, "GET", "database/creds/ghost", Some(ROOT), None).await;
    assert_eq!(status, 500, "{reply}");
    assert!(
        reply["errors"][0]
            .as_str()
            .unwrap()
            .contains("failed to generate password: no password policy found"),
        "{reply}"
    );
    let log = server.log_text();
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "a password reached the log");
    }
    ok(&server, "DELETE", "database/static-roles/svc", None).await;
    ok(&server, "PUT", "sys/leases/revoke-prefix/database", None).await;
    let left: Vec<String> = pg
        .leftover_roles()
        .await
        .into_iter()
        .filter(|r| *r != account)
        .collect();
    pg.wait_gone(&left, "revoke-prefix").await;
    pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_postgresql_gives_a_clear_error_and_recovery_needs_nothing() {
    let pg = Pg::new(false).await;
    let (_dir, server) = start();
    // A closed port: bound once to find it free, then released.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let down_url = format!(
        "postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{port}/{}",
        pg.db
    );
    mount(&server, "database").await;
    let body = json!({
        "plugin_name": "postgresql-database-plugin",
        "connection_url": down_url,
        "username": pg.admin,
        "password": pg.password,
        "allowed_roles": "*",
        "username_template": format!("{}-{{{{.RoleName}}}}-{{{{random 10}}}}", pg.tag),
    });
    let (status, reply) = raw(
        &server,
        "POST",
        "database/config/down",
        Some(ROOT),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    let message = reply["errors"][0].as_str().unwrap();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(message.contains("error verifying connection"), "{message}");
    assert!(!message.contains(&pg.password), "{message}");

    let mut unverified = body;
    unverified["verify_connection"] = json!(false);
    ok(&server, "POST", "database/config/down", Some(unverified)).await;
    ok(
        &server,
        "POST",
        "database/roles/app",
        Some(json!({"db_name": "down", "creation_statements": creation(false)})),
    )
    .await;
    // A second mount on the real server keeps working meanwhile.
    setup(&server, &pg, "healthy", json!({})).await;
    ok(
        &server,
        "POST",
        "healthy/roles/app",
        Some(json!({"db_name": "db", "creation_statements": creation(false)})),
    )
    .await;
    let (status, reply) = raw(&server, "GET", "database/creds/app", Some(ROOT), None).await;
    assert_eq!(status, 500, "{reply}");
    let message = reply["errors"][0].as_str().unwrap();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(message.contains(&pg.db), "{message}");
    assert!(!message.contains(&pg.password), "{message}");
    let (healthy_user, ..) = issue(&server, "healthy/creds/app", ROOT).await;

    // The server "comes back" (a forwarder to the real one on that port): no reset needed.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let forwarder = tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                break;
            };
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect("127.0.0.1:5432").await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    let (user, ..) = issue(&server, "database/creds/app", ROOT).await;
    assert!(pg.role_exists(&user).await);
    ok(&server, "PUT", "sys/leases/revoke-prefix/database", None).await;
    ok(&server, "PUT", "sys/leases/revoke-prefix/healthy", None).await;
    pg.wait_gone(&[user, healthy_user], "revoke-prefix").await;
    forwarder.abort();
    let log = server.log_text();
    assert!(!log.contains(&pg.password));
    pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_create_role_and_the_lease_leaves_no_orphan_after_restart() {
    let pg = Pg::new(false).await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!(
        "-dev-store=embedded:{}",
        dir.path().join("dev.redb").display()
    );
    let root = format!("-dev-root-token-id={ROOT}");
    let args = [
        "server",
        "-dev",
        "-dev-listen-address=127.0.0.1:0",
        root.as_str(),
        store.as_str(),
    ];

    // Leases persisted, then kill -9: the roles stay, owned by their leases.
    let server = Server::start(&args, dir.path());
    setup(&server, &pg, "database", json!({})).await;
    ok(
        &server,
        "POST",
        "database/roles/app",
        Some(json!({"db_name": "db", "creation_statements": creation(true)})),
    )
    .await;
    let (kept1, _, lease1, _) = issue(&server, "database/creds/app", ROOT).await;
    let (kept2, ..) = issue(&server, "database/creds/app", ROOT).await;
    server.kill9();

    // The process dies after PostgreSQL committed CREATE ROLE and before the lease exists.
    let crashing = Server::start_with_env(
        &args,
        &[("TRESOR_FAILPOINT_DATABASE_CRASH_AFTER_CREATE", "1")],
        dir.path(),
    );
    let answer = common::http()
        .get(crashing.url("database/creds/app"))
        .header("X-Vault-Token", ROOT)
        .send()
        .await;
    assert!(
        answer.is_err(),
        "the failpoint ends the process before it answers"
    );
    let mut crashing = crashing;
    let exit = crashing.child.wait().unwrap();
    assert!(!exit.success());
    let orphans: Vec<String> = pg
        .leftover_roles()
        .await
        .into_iter()
        .filter(|r| r != &kept1 && r != &kept2)
        .collect();
    assert_eq!(
        orphans.len(),
        1,
        "the crash left exactly one role without a lease"
    );

    // Restart (the persistent dev store unseals itself): the rollback drops the orphan, and
    // leaves the roles whose leases were persisted.
    let server = Server::start(&args, dir.path());
    pg.wait_gone(&orphans, "rollback after restart").await;
    assert!(pg.role_exists(&kept1).await && pg.role_exists(&kept2).await);
    let lookup = ok(
        &server,
        "PUT",
        "sys/leases/lookup",
        Some(json!({"lease_id": lease1})),
    )
    .await;
    assert_eq!(lookup["data"]["id"], lease1.as_str());
    ok(
        &server,
        "PUT",
        "sys/leases/revoke-prefix/database/creds/app",
        None,
    )
    .await;
    pg.wait_gone(&[kept1, kept2], "revoke-prefix after restart")
        .await;
    assert!(pg.leftover_roles().await.is_empty());
    assert!(
        server
            .log_text()
            .contains("dropped a role whose lease was never persisted")
    );
    pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_after_alter_role_never_loses_the_password_postgresql_holds() {
    let pg = Pg::new(false).await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!(
        "-dev-store=embedded:{}",
        dir.path().join("dev.redb").display()
    );
    let root = format!("-dev-root-token-id={ROOT}");
    let args = [
        "server",
        "-dev",
        "-dev-listen-address=127.0.0.1:0",
        root.as_str(),
        store.as_str(),
    ];
    let account = format!("{}_static", pg.tag);
    pg.sup
        .batch_execute(&format!("CREATE ROLE \"{account}\" LOGIN"))
        .await
        .unwrap();

    let server = Server::start(&args, dir.path());
    setup(&server, &pg, "database", json!({})).await;
    ok(
        &server,
        "POST",
        "database/static-roles/svc",
        Some(json!({"db_name": "db", "username": account, "rotation_period": "1h"})),
    )
    .await;
    let before = ok(&server, "GET", "database/static-creds/svc", None).await;
    let p1 = before["data"]["password"].as_str().unwrap().to_owned();
    assert!(pg.password_is(&account, &p1).await);
    server.kill9();

    // PostgreSQL accepts the new password; the process dies before Tresor makes it current.
    let mut crashing = Server::start_with_env(
        &args,
        &[("TRESOR_FAILPOINT_DATABASE_CRASH_AFTER_ROTATE", "1")],
        dir.path(),
    );
    let answer = common::http()
        .post(crashing.url("database/rotate-role/svc"))
        .header("X-Vault-Token", ROOT)
        .send()
        .await;
    assert!(
        answer.is_err(),
        "the failpoint ends the process before it answers"
    );
    assert!(!crashing.child.wait().unwrap().success());
    assert!(
        !pg.password_is(&account, &p1).await,
        "PostgreSQL holds a password Tresor has only as pending"
    );

    // After the restart Tresor hands out exactly the password PostgreSQL holds.
    let server = Server::start(&args, dir.path());
    let after = ok(&server, "GET", "database/static-creds/svc", None).await;
    let p2 = after["data"]["password"].as_str().unwrap().to_owned();
    assert_ne!(p2, p1);
    assert!(pg.password_is(&account, &p2).await, "{}", server.log_text());
    // And later rotations go on from there.
    ok(&server, "POST", "database/rotate-role/svc", None).await;
    let p3 = ok(&server, "GET", "database/static-creds/svc", None).await["data"]["password"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(pg.password_is(&account, &p3).await);
    pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_and_malformed_input_is_refused_with_vault_errors() {
    let pg = Pg::new(false).await;
    let (_dir, server) = start();
    setup(&server, &pg, "database", json!({})).await;
    let expect = |status: u16, reply: &Value, code: u16, needle: &str| {
        assert_eq!(status, code, "{reply}");
        let errors = reply["errors"].as_array().expect("Vault's errors envelope");
        if !needle.is_empty() {
            assert!(
                errors
                    .iter()
                    .any(|e| e.as_str().unwrap_or("").contains(needle)),
                "{needle:?} not in {reply}"
            );
        }
    };
    // SQL in path segments never reaches a handler.
    for path in [
        "database/roles/x%27%3B%20DROP%20ROLE%20postgres%3B%20--",
        "database/creds/a%22b",
        "database/static-roles/a%20b",
    ] {
        let (status, reply) = raw(
            &server,
            "POST",
            path,
            Some(ROOT),
            Some(json!({"db_name": "db"})),
        )
        .await;
        assert!(status == 404 || status == 400, "{path}: {status} {reply}");
        assert!(reply["errors"].is_array(), "{reply}");
    }
    let (s, r) = raw(
        &server,
        "POST",
        "database/config/my",
        Some(ROOT),
        Some(json!({"plugin_name": "mysql-database-plugin", "connection_url": "x"})),
    )
    .await;
    expect(s, &r, 400, "mysql-database-plugin");
    let (s, r) = raw(
        &server,
        "POST",
        "database/config/nourl",
        Some(ROOT),
        Some(json!({"plugin_name": "postgresql-database-plugin"})),
    )
    .await;
    expect(s, &r, 400, "connection_url cannot be empty");
    let (s, r) = raw(&server, "POST", "database/config/tpl", Some(ROOT),
        Some(json!({"plugin_name": "postgresql-database-plugin", "connection_url": pg.url(),
                    "username": pg.admin, "password": pg.password, "username_template": "{{.Nope}}"}))).await;
    expect(s, &r, 400, "username template");
    let (s, r) = raw(&server, "POST", "database/config/auth", Some(ROOT),
        Some(json!({"plugin_name": "postgresql-database-plugin", "connection_url": pg.url(),
                    "username": pg.admin, "password": pg.password, "password_authentication": "md5"}))).await;
    expect(
        s,
        &r,
        400,
        "'md5' is not a valid password authentication type",
    );
    let (s, r) = raw(
        &server,
        "POST",
        "database/roles/r",
        Some(ROOT),
        Some(json!({"creation_statements": "x"})),
    )
    .await;
    expect(s, &r, 400, "database name is required");
    let (s, r) = raw(
        &server,
        "POST",
        "database/roles/r",
        Some(ROOT),
        Some(json!({"db_name": "db", "default_ttl": "soon"})),
    )
    .await;
    expect(s, &r, 400, "default_ttl");
    let (s, r) = raw(
        &server,
        "POST",
        "database/roles/r",
        Some(ROOT),
        Some(json!({"db_name": "db", "credential_type": "bogus"})),
    )
    .await;
    expect(s, &r, 400, "invalid credential_type \"bogus\"");
    let (s, r) = raw(&server, "GET", "database/creds/missing", Some(ROOT), None).await;
    expect(s, &r, 400, "unknown role: missing");
    let (s, r) = raw(&server, "POST", "database/creds/missing", Some(ROOT), None).await;
    expect(s, &r, 405, "");
    let (s, r) = raw(&server, "POST", "database/static-roles/evil", Some(ROOT),
        Some(json!({"db_name": "db", "username": "bob\"; DROP ROLE postgres; --", "rotation_period": "1h"}))).await;
    expect(s, &r, 400, "invalid username");
    let (s, r) = common::send(
        &server,
        "POST",
        "database/roles/r",
        Some(ROOT),
        "application/json",
        Some(b"{\"db_name\": ".to_vec()),
    )
    .await;
    assert_eq!(s, 400, "{r}");
    let huge = vec![b'a'; 33 * 1024 * 1024];
    let (s, _) = common::send(
        &server,
        "POST",
        "database/roles/r",
        Some(ROOT),
        "application/json",
        Some(huge),
    )
    .await;
    assert_eq!(s, 413);
    // A creation statement PostgreSQL refuses: a 500 naming the error, the password redacted
    // where PostgreSQL quoted it back, and no role left behind.
    ok(&server, "POST", "database/roles/broken", Some(json!({"db_name": "db",
        "creation_statements": ["CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}'", "SELECT \"{{password}}\""]}))).await;
    let (s, r) = raw(&server, "GET", "database/creds/broken", Some(ROOT), None).await;
    expect(s, &r, 500, "does not exist (SQLSTATE 42703)");
    assert!(
        r["errors"][0].as_str().unwrap().contains("[redacted]"),
        "{r}"
    );
    assert!(pg.leftover_roles().await.is_empty());
    // COMMIT goes out behind the statements without waiting for their answer: after a refused
    // creation, the one pooled connection is back outside any transaction, and the next issue
    // on it commits a role that can log in.
    ok(
        &server,
        "POST",
        "database/config/db",
        Some(json!({
        "plugin_name": "postgresql-database-plugin", "connection_url": pg.url(),
        "username": pg.admin, "password": pg.password, "allowed_roles": "*",
        "max_open_connections": 1,
        "username_template": format!("{}-{{{{.RoleName}}}}-{{{{random 10}}}}", pg.tag)})),
    )
    .await;
    ok(
        &server,
        "POST",
        "database/roles/good",
        Some(json!({"db_name": "db",
        "creation_statements": creation(false)})),
    )
    .await;
    for _ in 0..2 {
        let (s, _) = raw(&server, "GET", "database/creds/broken", Some(ROOT), None).await;
        assert_eq!(s, 500);
        let (user, password, _, _) = issue(&server, "database/creds/good", ROOT).await;
        assert!(pg.role_exists(&user).await, "{user} was not committed");
        connect(&format!(
            "host=127.0.0.1 user={user} password={password} dbname={}",
            pg.db
        ))
        .await
        .expect("the issued user logs in");
    }
    pg.cleanup().await;
}

fn cli(server: &Server, args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(args)
        .env("HOME", scratch_home())
        .env("VAULT_ADDR", &server.addr)
        .env("VAULT_TOKEN", ROOT)
        .env_remove("TRESOR_ADDR")
        .env_remove("TRESOR_TOKEN")
        .env_remove("VAULT_FORMAT")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_reads_credentials_and_revokes_their_lease() {
    let pg = Pg::new(false).await;
    let (_dir, server) = start();
    setup(&server, &pg, "database", json!({})).await;
    ok(
        &server,
        "POST",
        "database/roles/app",
        Some(
            json!({"db_name": "db", "creation_statements": creation(false), "default_ttl": "10m"}),
        ),
    )
    .await;
    let out = cli(&server, &["read", "database/creds/app"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    for field in [
        "lease_id",
        "lease_duration",
        "10m",
        "lease_renewable",
        "password",
        "username",
    ] {
        assert!(table.contains(field), "{field} missing:\n{table}");
    }
    let out = cli(&server, &["read", "-format=json", "database/creds/app"]);
    assert!(out.status.success());
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    let lease = reply["lease_id"].as_str().unwrap();
    let user = reply["data"]["username"].as_str().unwrap().to_owned();
    assert!(pg.role_exists(&user).await);
    let out = cli(&server, &["lease", "revoke", lease]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("All revocation operations queued successfully!")
    );
    pg.wait_gone(&[user], "tresor lease revoke").await;
    ok(&server, "PUT", "sys/leases/revoke-prefix/database", None).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pg.leftover_roles().await.is_empty() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pg.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn vaultrs_database_module_configures_and_issues() {
    use vaultrs::api::database::requests::{
        PostgreSQLConnectionRequest, SetRoleRequest, SetStaticRoleRequest,
    };
    let pg = Pg::new(false).await;
    let (_dir, server) = start();
    mount(&server, "vdb").await;
    let client = common::vault_client(&server.addr, ROOT);
    vaultrs::database::connection::postgres(
        &client,
        "vdb",
        "db",
        Some(
            PostgreSQLConnectionRequest::builder()
                .plugin_name("postgresql-database-plugin")
                .connection_url(pg.url())
                .username(pg.admin.clone())
                .password(pg.password.clone())
                .allowed_roles(vec!["*".to_owned()])
                .username_template(format!("{}-{{{{.RoleName}}}}-{{{{random 10}}}}", pg.tag)),
        ),
    )
    .await
    .unwrap();
    let config = vaultrs::database::connection::read(&client, "vdb", "db")
        .await
        .unwrap();
    assert_eq!(config.connection_details.username, pg.admin);
    assert_eq!(config.plugin_name, "postgresql-database-plugin");
    vaultrs::database::role::set(
        &client,
        "vdb",
        "app",
        Some(
            SetRoleRequest::builder()
                .db_name("db")
                .creation_statements(vec![creation(false)[0].as_str().unwrap().to_owned()])
                .default_ttl("5m"),
        ),
    )
    .await
    .unwrap();
    let role = vaultrs::database::role::read(&client, "vdb", "app")
        .await
        .unwrap();
    assert_eq!(role.default_ttl, 300);
    assert_eq!(
        vaultrs::database::role::list(&client, "vdb")
            .await
            .unwrap()
            .keys,
        vec!["app"]
    );
    let creds = vaultrs::database::role::creds(&client, "vdb", "app")
        .await
        .unwrap();
    assert!(pg.password_is(&creds.username, &creds.password).await);

    let account = format!("{}_static", pg.tag);
    pg.sup
        .batch_execute(&format!("CREATE ROLE \"{account}\" LOGIN"))
        .await
        .unwrap();
    vaultrs::database::static_role::set(
        &client,
        "vdb",
        "svc",
        Some(
            SetStaticRoleRequest::builder()
                .db_name("db")
                .username(account.clone())
                .rotation_period("1h"),
        ),
    )
    .await
    .unwrap();
    let st = vaultrs::database::static_role::creds(&client, "vdb", "svc")
        .await
        .unwrap();
    assert_eq!(st.username, account);
    assert_eq!(st.rotation_period, 3600);
    assert!(pg.password_is(&account, &st.password).await);
    vaultrs::database::static_role::rotate(&client, "vdb", "svc")
        .await
        .unwrap();
    let rotated = vaultrs::database::static_role::creds(&client, "vdb", "svc")
        .await
        .unwrap();
    assert_ne!(rotated.password, st.password);
    vaultrs::database::connection::rotate(&client, "vdb", "db")
        .await
        .unwrap();
    assert!(!pg.password_is(&pg.admin, &pg.password).await);
    vaultrs::database::connection::reset(&client, "vdb", "db")
        .await
        .unwrap();

    ok(&server, "PUT", "sys/leases/revoke-prefix/vdb", None).await;
    pg.wait_gone(&[creds.username], "revoke-prefix").await;
    pg.cleanup().await;
}
