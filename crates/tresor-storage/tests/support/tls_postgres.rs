//! A private PostgreSQL cluster with TLS on, for the TLS tests of `tresor-storage` and
//! `tresor` (included by both with `#[path]`).
//!
//! The cluster listens on 127.0.0.1:`port` with `ssl = on`, a CA and a server certificate
//! made with the `openssl` CLI (the certificate names `localhost` only, so `127.0.0.1` is a
//! wrong host name), another CA nobody uses, a client certificate for the role `certuser`,
//! and a pg_hba.conf with only `hostssl` lines for TCP (as a managed PostgreSQL that forces
//! TLS). Needs `initdb`/`pg_ctl` (`TRESOR_PG_BINDIR`, else the newest
//! `/usr/lib/postgresql/*/bin`) and `openssl`. As root (CI) PostgreSQL runs as the
//! `postgres` OS user through `runuser`.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A password the URLs carry (trust authentication ignores it) that no error may show.
pub const PASSWORD: &str = "hunter2-pgtls";

fn pg_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TRESOR_PG_BINDIR") {
        return Some(dir.into());
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn have_openssl() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The private cluster, or `None` (after printing SKIPPED) when the tools are missing.
pub fn cluster(test: &str, port: u16) -> Option<TlsPostgres> {
    match pg_bin_dir() {
        Some(bin) if have_openssl() => Some(TlsPostgres::start(bin, port)),
        _ => {
            println!(
                "pgtls: SKIPPED {test}: needs initdb and pg_ctl (TRESOR_PG_BINDIR or \
                 /usr/lib/postgresql/*/bin) and openssl"
            );
            None
        }
    }
}

/// A PostgreSQL cluster in `/tmp/pgtls-pg-*` on 127.0.0.1:`port`, TLS on; stopped and
/// removed when dropped.
pub struct TlsPostgres {
    bin: PathBuf,
    pub dir: tempfile::TempDir,
    pub port: u16,
    as_postgres: bool,
}

impl TlsPostgres {
    fn start(bin: PathBuf, port: u16) -> TlsPostgres {
        let dir = tempfile::Builder::new()
            .prefix("pgtls-pg-")
            .tempdir_in("/tmp")
            .unwrap();
        let uid = Command::new("id").arg("-u").output().unwrap();
        let as_postgres = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        let pg = TlsPostgres {
            bin,
            dir,
            port,
            as_postgres,
        };
        pg.make_certificates();
        if as_postgres {
            let chown = Command::new("chown")
                .arg("-R")
                .arg("postgres:")
                .arg(pg.dir.path())
                .status()
                .unwrap();
            assert!(
                chown.success(),
                "chown postgres {}",
                pg.dir.path().display()
            );
        }
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        // TCP only over TLS: a client with a certificate of the test CA logs in as
        // `certuser` by that certificate, everyone else by trust.
        std::fs::write(
            Path::new(&pg.data()).join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all certuser 127.0.0.1/32 cert\n\
             hostssl all all 127.0.0.1/32 trust\n",
        )
        .unwrap();
        let (data, log, options) = (pg.data(), pg.log(), pg.options());
        pg.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-w", "-t", "60", "start", "-o", &options,
            ],
        );
        pg
    }

    /// A CA, the server's certificate (for `localhost` only), another CA nobody uses, and
    /// a client certificate for `certuser`.
    fn make_certificates(&self) {
        let d = self.dir.path();
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        std::fs::write(
            d.join("client.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for ca in ["ca", "other-ca"] {
            let mut args = vec!["req", "-x509"];
            args.extend_from_slice(&ec);
            let (key, pem, subj) = (
                format!("{ca}.key"),
                format!("{ca}.pem"),
                format!("/CN=pgtls {ca}"),
            );
            args.extend_from_slice(&["-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subj]);
            openssl(d, &args);
        }
        for (name, cn) in [("server", "localhost"), ("client", "certuser")] {
            let (key, csr, pem, ext, subj) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
                format!("{name}.ext"),
                format!("/CN={cn}"),
            );
            let mut args = vec!["req"];
            args.extend_from_slice(&ec);
            args.extend_from_slice(&["-keyout", &key, "-out", &csr, "-subj", &subj]);
            openssl(d, &args);
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &pem,
                    "-days",
                    "2",
                    "-extfile",
                    &ext,
                ],
            );
        }
        // PostgreSQL (and libpq) refuse private keys others can read.
        for key in ["server.key", "client.key"] {
            let status = Command::new("chmod")
                .arg("600")
                .arg(d.join(key))
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    pub fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn options(&self) -> String {
        format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file={} \
             -c ssl_key_file={} -c ssl_ca_file={}",
            self.port,
            self.dir.path().display(),
            self.file("server.pem"),
            self.file("server.key"),
            self.file("ca.pem"),
        )
    }

    fn data(&self) -> String {
        self.file("data")
    }

    fn log(&self) -> String {
        self.file("postgresql.log")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e} (runuser needed when run as root)"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}\n{}\n{}\nlog:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.log()).unwrap_or_default()
        );
    }

    /// `postgres://postgres:…@host:port/postgres?<query>`.
    pub fn url(&self, host: &str, query: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@{host}:{}/postgres?{query}",
            self.port
        )
    }

    /// A superuser session over the Unix socket (TLS plays no part there).
    pub async fn admin(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(
            &format!(
                "host={} port={} user=postgres dbname=postgres",
                self.dir.path().display(),
                self.port
            ),
            tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
