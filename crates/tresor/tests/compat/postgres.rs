//! The real PostgreSQL a scenario's database engine steps talk to (`"postgres": true`).
//!
//! Per scenario the runner creates, through `psql` as the superuser:
//! - for each server, its own database and admin role (`LOGIN CREATEROLE`, a random password,
//!   owner of the database) and an existing user for static roles;
//! - one group role shared by both servers. Creation statements add every user they create to
//!   it (`IN ROLE "{{pg_group}}"`), which is how the runner finds, at the end, the users the
//!   servers created and did not drop.
//!
//! Every name carries a random run id, so scenarios running in parallel (and other tests on the
//! same PostgreSQL) never touch each other's roles; everything is dropped when the fixture is.
//!
//! Variables, per server: `pg_url` (a `connection_url` with the `{{username}}` and
//! `{{password}}` templates left in), `pg_host` (`HOST:PORT`), `pg_db`, `pg_admin`,
//! `pg_password`, `pg_static`; shared: `pg_group`. The database templates `{{name}}`,
//! `{{username}}`, `{{password}}` and `{{expiration}}` stay as they are in postgres scenarios
//! (they are variables that stand for themselves), and `{{!text}}` writes `{{text}}` in any
//! scenario (for other templates, e.g. `{{!.RoleName}}` in a `username_template`).
//!
//! Environment: `TRESOR_COMPAT_PG` (`HOST:PORT`, default `127.0.0.1:5432`),
//! `TRESOR_COMPAT_PG_USER` (the superuser, default `postgres`; trust auth or `PGPASSWORD`).

use std::process::Command;

use super::model::Vars;
use super::process::Flavor;

/// The names the database engine fills in itself; captures may not use them.
pub const TEMPLATES: [&str; 4] = ["name", "username", "password", "expiration"];

/// One server's share of the fixture.
#[derive(Debug, Clone)]
struct Side {
    database: String,
    admin: String,
    password: String,
    static_user: String,
}

/// The PostgreSQL objects of one scenario; dropped (best effort) when this is dropped.
#[derive(Debug)]
pub struct Postgres {
    host: String,
    port: String,
    superuser: String,
    group: String,
    sides: [Side; 2],
    created: Vec<String>,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.drop_all();
    }
}

/// Random hex from the kernel (no extra crate for the tests).
fn random_hex(bytes: usize) -> Result<String, String> {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

impl Postgres {
    /// Creates both servers' databases, admin roles and static users, and the shared group.
    pub fn create() -> Result<Self, String> {
        let target =
            std::env::var("TRESOR_COMPAT_PG").unwrap_or_else(|_| "127.0.0.1:5432".to_owned());
        let (host, port) = target
            .rsplit_once(':')
            .ok_or_else(|| format!("TRESOR_COMPAT_PG={target:?} is not HOST:PORT"))?;
        let run = random_hex(4)?;
        let side = |letter: &str| -> Result<Side, String> {
            Ok(Side {
                database: format!("tc_{run}_{letter}_db"),
                admin: format!("tc_{run}_{letter}_adm"),
                password: random_hex(12)?,
                static_user: format!("tc_{run}_{letter}_st"),
            })
        };
        let mut pg = Self {
            host: host.to_owned(),
            port: port.to_owned(),
            superuser: std::env::var("TRESOR_COMPAT_PG_USER")
                .unwrap_or_else(|_| "postgres".to_owned()),
            group: format!("tc_{run}_group"),
            sides: [side("o")?, side("t")?],
            created: Vec::new(),
        };
        pg.sql(&format!("CREATE ROLE {} NOLOGIN", pg.group))?;
        pg.created.push(pg.group.clone());
        for s in pg.sides.clone() {
            pg.sql(&format!(
                "CREATE ROLE {} WITH LOGIN CREATEROLE PASSWORD '{}'",
                s.admin, s.password
            ))?;
            pg.created.push(s.admin.clone());
            // The admin adds the users it creates to the group.
            pg.sql(&format!(
                "GRANT {} TO {} WITH ADMIN OPTION",
                pg.group, s.admin
            ))?;
            pg.sql(&format!("CREATE DATABASE {} OWNER {}", s.database, s.admin))?;
            pg.sql(&format!(
                "CREATE ROLE {} WITH LOGIN PASSWORD '{}'",
                s.static_user,
                random_hex(12)?
            ))?;
            pg.created.push(s.static_user.clone());
        }
        Ok(pg)
    }

    /// The variables of `flavor`'s side (see the module comment).
    pub fn vars(&self, flavor: Flavor) -> Vars {
        let s = &self.sides[match flavor {
            Flavor::OpenBao => 0,
            Flavor::Tresor => 1,
        }];
        let mut vars = Vars::new();
        let host = format!("{}:{}", self.host, self.port);
        vars.insert(
            "pg_url".into(),
            format!(
                "postgresql://{{{{username}}}}:{{{{password}}}}@{host}/{}?sslmode=disable",
                s.database
            ),
        );
        vars.insert("pg_host".into(), host);
        vars.insert("pg_db".into(), s.database.clone());
        vars.insert("pg_admin".into(), s.admin.clone());
        vars.insert("pg_password".into(), s.password.clone());
        vars.insert("pg_static".into(), s.static_user.clone());
        vars.insert("pg_group".into(), self.group.clone());
        for name in TEMPLATES {
            vars.insert(name.into(), format!("{{{{{name}}}}}"));
        }
        vars
    }

    /// Users the servers created (members of the group) that still exist.
    pub fn leftover_users(&self) -> Result<Vec<String>, String> {
        let out = self.sql(&format!(
            "SELECT m.rolname FROM pg_auth_members a \
             JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member \
             WHERE g.rolname = '{}' AND m.rolname NOT IN ('{}', '{}') ORDER BY 1",
            self.group, self.sides[0].admin, self.sides[1].admin
        ))?;
        Ok(out.lines().map(str::to_owned).collect())
    }

    /// Drops every user the servers left, the databases and the roles the fixture created.
    fn drop_all(&mut self) -> Result<(), String> {
        let mut errors = Vec::new();
        for user in self.leftover_users().unwrap_or_default() {
            if let Err(e) = self.sql(&format!(
                "DROP ROLE IF EXISTS \"{}\"",
                user.replace('"', "\"\"")
            )) {
                errors.push(e);
            }
        }
        for s in self.sides.clone() {
            // FORCE closes the servers' pooled connections first.
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", s.database);
            if let Err(e) = self.sql(&sql) {
                errors.push(e);
            }
        }
        for role in std::mem::take(&mut self.created).into_iter().rev() {
            if let Err(e) = self.sql(&format!("DROP ROLE IF EXISTS {role}")) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }

    /// Runs one statement as the superuser; returns psql's unaligned, tuples-only output.
    fn sql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", &self.host, "-p", &self.port, "-U", &self.superuser])
            .args(["-d", "postgres", "-c", sql])
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .map_err(|e| {
                format!("running psql (PostgreSQL's client, needed by postgres scenarios): {e}")
            })?;
        if !out.status.success() {
            return Err(format!(
                "psql -h {} -p {} -U {}: {}",
                self.host,
                self.port,
                self.superuser,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}
