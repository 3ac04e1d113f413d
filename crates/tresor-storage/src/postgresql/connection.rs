//! Reading `connection_url`, and wording connection failures without the password.

use std::fmt::Write as _;
use std::time::Duration;

use tokio_postgres::config::Host;

use super::tls::{self, Tls};

/// How long opening one connection may take: a black-holed host must not hang a request.
/// A `connect_timeout` in the URL wins.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A parsed `connection_url`, with what may be said about it.
pub(super) struct Connection {
    pub config: tokio_postgres::Config,
    /// `user=… database=… at host:port`: where, never how.
    pub target: String,
    pub redactor: Redactor,
    /// `sslmode` and the certificates, read at open.
    pub tls: Tls,
}

/// Parses a URL (`postgres://user:pass@host:port/db?…`) or a `key=value` string, as libpq
/// does. Errors never hold the password.
/// `application_name` is used unless the URL sets its own.
pub(super) fn parse(url: &str, application_name: &str) -> Result<Connection, String> {
    let mut redactor = Redactor::from_text(url);
    // tokio-postgres knows neither the certificate settings nor most `sslmode`s: they are
    // taken out first.
    let (rest, tls_settings) = tls::extract(url);
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e| redactor.redact(&format!("cannot parse connection_url: {}", describe(&e))))?;
    if let Some(password) = config.get_password() {
        redactor.add(String::from_utf8_lossy(password).into_owned());
    }
    let tls = Tls::new(tls_settings).map_err(|e| redactor.redact(&e))?;
    config.ssl_mode(tls.mode.first_attempt());
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        // Lets a DBA (and `tresor operator migrate`) tell Tresor's sessions apart in
        // pg_stat_activity.
        config.application_name(application_name);
    }
    let user = config.get_user().unwrap_or("").to_owned();
    let database = config.get_dbname().unwrap_or(&user).to_owned();
    let ports = config.get_ports();
    let mut hosts = String::new();
    for (i, host) in config.get_hosts().iter().enumerate() {
        let port = ports
            .get(i)
            .or_else(|| ports.first())
            .copied()
            .unwrap_or(5432);
        if !hosts.is_empty() {
            hosts.push(',');
        }
        let _ = match host {
            Host::Tcp(name) => write!(hosts, "{name}:{port}"),
            Host::Unix(path) => write!(hosts, "{}:{port}", path.display()),
        };
    }
    if hosts.is_empty() {
        return Err("connection_url names no host".to_owned());
    }
    let target = redactor.redact(&format!("`user={user} database={database}` at {hosts}"));
    Ok(Connection {
        config,
        target,
        redactor,
        tls,
    })
}

/// Removes every form of the password a message could quote: as the URL or string spells it
/// (percent-encoded, quoted) and as PostgreSQL received it.
#[derive(Clone, Default)]
pub(super) struct Redactor {
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor([redacted])")
    }
}

impl Redactor {
    /// The password as written in `url`, before any parsing (which may be what fails).
    fn from_text(url: &str) -> Self {
        let mut redactor = Self::default();
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"));
        match rest {
            Some(rest) => {
                // userinfo ends at the last '@' before the path.
                let authority = rest.split(['/', '?']).next().unwrap_or(rest);
                if let Some((userinfo, _)) = authority.rsplit_once('@')
                    && let Some((_, password)) = userinfo.split_once(':')
                {
                    redactor.add(password.to_owned());
                    redactor.add(percent_decode(password));
                }
            }
            None => {
                for (i, _) in url.match_indices("password") {
                    let after = url.get(i + "password".len()..).unwrap_or("");
                    let Some(value) = after.trim_start().strip_prefix('=') else {
                        continue;
                    };
                    let value = value.trim_start();
                    let (written, meant) = match value.strip_prefix('\'') {
                        Some(quoted) => unquote(quoted),
                        None => {
                            let word = value.split_whitespace().next().unwrap_or("");
                            (word.to_owned(), word.to_owned())
                        }
                    };
                    redactor.add(written);
                    redactor.add(meant);
                }
            }
        }
        redactor
    }

    fn add(&mut self, secret: String) {
        if !secret.is_empty() && !self.secrets.contains(&secret) {
            self.secrets.push(secret);
            // Longest first, so a secret that contains another is replaced whole.
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    pub(super) fn redact(&self, message: &str) -> String {
        let mut out = message.to_owned();
        for secret in &self.secrets {
            out = out.replace(secret.as_str(), "[redacted]");
        }
        out
    }
}

/// A libpq single-quoted value (after its opening quote): as written, and as meant (`\\'` is a
/// quote, `\\\\` a backslash).
fn unquote(quoted: &str) -> (String, String) {
    let mut meant = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    meant.push(escaped);
                }
            }
            '\'' => return (quoted.get(..i).unwrap_or(quoted).to_owned(), meant),
            c => meant.push(c),
        }
    }
    (quoted.to_owned(), meant)
}

pub(super) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A failure in words: PostgreSQL's own message and code when it answered, the whole chain of
/// causes otherwise (for "connection refused" the cause is the useful part).
pub(super) fn describe(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        return format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn the_target_names_where_but_never_the_password() {
        let c = parse(
            "postgres://tresor:s3cr%40t@db.example:6543/vault?sslmode=disable",
            "tresor",
        )
        .unwrap();
        assert_eq!(c.target, "`user=tresor database=vault` at db.example:6543");
        assert_eq!(c.config.get_password(), Some(&b"s3cr@t"[..]));
        let message = c.redactor.redact("could not log in with s3cr@t (s3cr%40t)");
        assert_eq!(message, "could not log in with [redacted] ([redacted])");

        let c = parse(
            "host=127.0.0.1 user=u dbname=d password='a b\\'c'",
            "tresor",
        )
        .unwrap();
        assert_eq!(c.config.get_password(), Some(&b"a b'c"[..]));
        assert_eq!(c.target, "`user=u database=d` at 127.0.0.1:5432");
    }

    #[test]
    fn parse_errors_do_not_quote_the_password() {
        for url in [
            "postgres://u:hunter2@h:notaport/x",
            "postgres://u:hunter2@/x",
            "host=h port=notaport user=u password=hunter2",
            "host=h user=u password='hunter2' bogus_option=1",
        ] {
            if let Err(err) = parse(url, "tresor") {
                assert!(!err.contains("hunter2"), "{url}: {err}");
            }
        }
        let redactor = Redactor::from_text("host=h password = 'p w\\'d' user=u");
        assert_eq!(redactor.redact("x p w'd y"), "x [redacted] y");
    }
}
