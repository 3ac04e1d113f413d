//! A small connection pool per connection config, over `tokio-postgres`.
//!
//! Why not a pool crate: the engine needs little (a cap on open connections, a cap on idle
//! ones, a maximum lifetime, a bounded wait) and must word every failure itself so that no
//! message ever holds the password. Connections are opened on demand, so a PostgreSQL that
//! is down costs nothing until someone asks, and a server that comes back is used again
//! without any reset: a closed connection is never handed out twice.
//!
//! Each pool has its own semaphore: issuing on one config never waits for another config or
//! another mount, and requests on one config run concurrently up to `max_open_connections`.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, NoTls};
use tresor_sdk::engine::{EngineError, EngineResult};
use tresor_sdk::secret::SecretString;

/// How long opening a connection may take (a black-holed host must not hang a request).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a free connection when all are busy.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one batch of statements may run (a lock held elsewhere must not hang a request
/// past what the rollback sweep considers in flight).
pub(crate) const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Pool sizing, as the config's `max_*` fields set it (Vault's defaults: 4 open, idle = open,
/// no lifetime limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolSettings {
    pub max_open: usize,
    pub max_idle: usize,
    pub max_lifetime: Option<Duration>,
}

impl PoolSettings {
    /// Vault's rules: 0 open means 4; 0 idle means "as many as open", negative means none,
    /// and idle never exceeds open.
    pub(crate) fn from_config(max_open: i64, max_idle: i64, lifetime_secs: i64) -> Self {
        let max_open = if max_open <= 0 {
            4
        } else {
            usize::try_from(max_open).unwrap_or(4)
        };
        let max_idle = match max_idle {
            0 => max_open,
            n if n < 0 => 0,
            n => usize::try_from(n).unwrap_or(max_open).min(max_open),
        };
        let max_lifetime = u64::try_from(lifetime_secs)
            .ok()
            .filter(|s| *s > 0)
            .map(Duration::from_secs);
        Self {
            max_open,
            max_idle,
            max_lifetime,
        }
    }
}

/// Where a pool connects, in words safe to show: `user=… database=…` and `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub user: String,
    pub database: String,
    pub hosts: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`user={} database={}` at {}",
            self.user, self.database, self.hosts
        )
    }
}

/// Renders `connection_url` with the credentials (percent-encoded in a URL, quoted in a
/// `key=value` string) and parses it. Errors never hold the password.
pub(crate) fn parse_connection(
    url: &str,
    username: &str,
    password: &SecretString,
) -> Result<(tokio_postgres::Config, Target), String> {
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let (user, pass) = if is_url {
        (
            userinfo_escape(username),
            userinfo_escape(password.expose()),
        )
    } else {
        (kv_quote(username), kv_quote(password.expose()))
    };
    let rendered = SecretString::new(
        url.replace("{{username}}", &user)
            .replace("{{password}}", &pass),
    );
    let escaped = SecretString::new(pass);
    let mut config: tokio_postgres::Config = rendered.expose().parse().map_err(|e| {
        let msg = redact(&format!("cannot parse connection url: {e}"), &rendered);
        redact(&redact(&msg, &escaped), password)
    })?;
    config.connect_timeout(CONNECT_TIMEOUT);
    config.application_name("tresor");
    let user = config.get_user().unwrap_or("").to_owned();
    let database = config
        .get_dbname()
        .map_or_else(|| user.clone(), str::to_owned);
    let ports = config.get_ports();
    let hosts = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let port = ports
                .get(i)
                .or_else(|| ports.first())
                .copied()
                .unwrap_or(5432);
            match h {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    if hosts.is_empty() {
        return Err("cannot parse connection url: no host".to_owned());
    }
    Ok((
        config,
        Target {
            user,
            database,
            hosts,
        },
    ))
}

/// Replaces every occurrence of a secret in a message (PostgreSQL can quote a statement's
/// token back in a syntax error, and that token may be a password).
pub(crate) fn redact(message: &str, secret: &SecretString) -> String {
    if secret.expose().is_empty() {
        return message.to_owned();
    }
    message.replace(secret.expose(), "[redacted]")
}

fn userinfo_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn kv_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

struct Idle {
    client: Client,
    born: Instant,
}

/// The pool of one connection config.
pub(crate) struct Pool {
    config: tokio_postgres::Config,
    target: Target,
    settings: PoolSettings,
    open: Arc<Semaphore>,
    idle: Mutex<Vec<Idle>>,
    /// PostgreSQL refused to let this admin end a role's sessions or reassign what it owns
    /// once: the default revocation makes the admin a member of the role first (see
    /// `creds::drop_user`).
    needs_membership: AtomicBool,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The config holds the password: show where, never how.
        f.debug_struct("Pool")
            .field("target", &self.target.to_string())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A connection on loan; it goes back to the pool when dropped, unless it broke.
pub(crate) struct Pooled {
    client: Option<Client>,
    born: Instant,
    pool: Arc<Pool>,
    _permit: OwnedSemaphorePermit,
}

impl fmt::Debug for Pooled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pooled")
            .field("target", &self.pool.target.to_string())
            .finish_non_exhaustive()
    }
}

impl Pool {
    pub(crate) fn new(
        config: tokio_postgres::Config,
        target: Target,
        settings: PoolSettings,
    ) -> Self {
        Self {
            config,
            target,
            settings,
            open: Arc::new(Semaphore::new(settings.max_open)),
            idle: Mutex::new(Vec::new()),
            needs_membership: AtomicBool::new(false),
        }
    }

    pub(crate) fn needs_membership(&self) -> bool {
        self.needs_membership.load(Ordering::Relaxed)
    }

    pub(crate) fn set_needs_membership(&self) {
        self.needs_membership.store(true, Ordering::Relaxed);
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    /// A connection: an idle one that is still open and young enough, or a new one.
    pub(crate) async fn get(self: &Arc<Self>) -> EngineResult<Pooled> {
        let permit = tokio::time::timeout(ACQUIRE_TIMEOUT, self.open.clone().acquire_owned())
            .await
            .map_err(|_| {
                EngineError::Failed(format!(
                    "timed out waiting for a free connection to {}",
                    self.target
                ))
            })?
            .map_err(|_| EngineError::Internal("connection pool closed".to_owned()))?;
        loop {
            let candidate = self.idle.lock().ok().and_then(|mut idle| idle.pop());
            let Some(idle) = candidate else { break };
            if idle.client.is_closed() || self.expired(idle.born) {
                continue;
            }
            return Ok(Pooled {
                client: Some(idle.client),
                born: idle.born,
                pool: self.clone(),
                _permit: permit,
            });
        }
        let client = self.connect().await?;
        Ok(Pooled {
            client: Some(client),
            born: Instant::now(),
            pool: self.clone(),
            _permit: permit,
        })
    }

    /// Opens one connection (also used to verify a config before it is stored).
    pub(crate) async fn connect(&self) -> EngineResult<Client> {
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|e| EngineError::Failed(self.connect_error(&e)))?;
        tokio::spawn(async move {
            // Ends when the client is dropped or the server goes away; either way the client
            // reports itself closed and is discarded.
            let _ = connection.await;
        });
        Ok(client)
    }

    fn connect_error(&self, err: &tokio_postgres::Error) -> String {
        let reason = match err.as_db_error() {
            Some(db) => format!(
                "{}: {} (SQLSTATE {})",
                db.severity(),
                db.message(),
                db.code().code()
            ),
            None => {
                let mut text = err.to_string();
                let mut source = std::error::Error::source(err);
                while let Some(s) = source {
                    let more = s.to_string();
                    if !text.contains(&more) {
                        text.push_str(": ");
                        text.push_str(&more);
                    }
                    source = s.source();
                }
                text
            }
        };
        format!("failed to connect to {}: {reason}", self.target)
    }

    fn expired(&self, born: Instant) -> bool {
        self.settings
            .max_lifetime
            .is_some_and(|max| born.elapsed() >= max)
    }

    /// Drops every idle connection (config reset, rotate-root).
    pub(crate) fn close_idle(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}

impl Pooled {
    pub(crate) fn client(&self) -> EngineResult<&Client> {
        self.client
            .as_ref()
            .ok_or_else(|| EngineError::Internal("connection already released".to_owned()))
    }

    /// Runs `sql` (one or more statements) as one simple-query message, so in one implicit
    /// transaction, bounded by [`STATEMENT_TIMEOUT`].
    pub(crate) async fn batch(&mut self, sql: &str) -> Result<(), QueryError> {
        let client = self.client.as_ref().ok_or(QueryError::Closed)?;
        match tokio::time::timeout(STATEMENT_TIMEOUT, client.batch_execute(sql)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                if e.as_db_error().is_none() {
                    // A broken connection: never hand it out again.
                    self.client = None;
                }
                Err(QueryError::Postgres(e))
            }
            Err(_) => {
                self.client = None;
                Err(QueryError::Timeout)
            }
        }
    }

    /// As [`batch`](Self::batch), but a refusal that only says another session was changing
    /// the same catalog row (see [`QueryError::is_transient`]) is tried again, a few times
    /// with a short pause. Such a refusal rolled the statements back, so sending them again
    /// cannot apply them twice.
    pub(crate) async fn batch_retrying(&mut self, sql: &str) -> Result<(), QueryError> {
        let mut pause = TRANSIENT_FIRST_PAUSE;
        for _ in 1..TRANSIENT_ATTEMPTS {
            match self.batch(sql).await {
                Err(err) if err.is_transient() => {
                    tracing::debug!(code = ?err.code(), "transient PostgreSQL refusal; trying again");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                other => return other,
            }
        }
        self.batch(sql).await
    }
}

/// How often [`Pooled::batch_retrying`] sends its statements at most.
const TRANSIENT_ATTEMPTS: u32 = 5;
/// The first pause between two attempts; it doubles each time (25, 50, 100, 200 ms).
const TRANSIENT_FIRST_PAUSE: Duration = Duration::from_millis(25);

impl Pooled {
    /// Runs `open` (statements that begin with `BEGIN`), then `COMMIT` once `gate` has
    /// succeeded, or `ROLLBACK` if it failed. `COMMIT` is sent as soon as the gate passes,
    /// without waiting for `open`'s answer: PostgreSQL runs the two messages in order, and if
    /// `open` failed its transaction is aborted, so the `COMMIT` behind it rolls back. This
    /// saves a round trip per issue when the gate (a durable storage write) finishes first.
    ///
    /// Ordering relies on `tokio-postgres` queueing a query's message on the connection the
    /// first time its future is polled (`batch_execute` sends before it awaits an answer);
    /// `open` is polled once before the gate starts, so it is always ahead of `COMMIT`.
    pub(crate) async fn commit_after<T, G>(&mut self, open: &str, gate: G) -> Committed<T>
    where
        G: Future<Output = EngineResult<T>>,
    {
        let (outcome, broken) = {
            let Some(client) = self.client.as_ref() else {
                return Committed::NotStarted(QueryError::Closed);
            };
            pipeline(client, open, gate).await
        };
        if broken {
            // A lost connection or a timeout: never hand it out again.
            self.client = None;
        }
        outcome
    }
}

/// What [`Pooled::commit_after`] did.
pub(crate) enum Committed<T> {
    /// The gate passed and PostgreSQL committed.
    Done(T),
    /// Nothing was sent: the connection was already unusable. The gate did not run.
    NotStarted(QueryError),
    /// The gate failed; the transaction was rolled back (or the connection dropped, which
    /// rolls it back too).
    GateFailed(EngineError),
    /// The gate passed and `COMMIT` was sent, but the statements or the commit failed. When
    /// the error [`is_definite`](QueryError::is_definite), nothing was committed; otherwise
    /// the outcome is unknown.
    Failed(T, QueryError),
}

type Answer = Result<Result<(), tokio_postgres::Error>, tokio::time::error::Elapsed>;

fn answer(result: Answer) -> Result<(), QueryError> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(QueryError::Postgres(e)),
        Err(_) => Err(QueryError::Timeout),
    }
}

/// Whether a failed answer leaves the connection unusable.
fn breaks(result: &Result<(), QueryError>) -> bool {
    matches!(result, Err(e) if !e.is_definite())
}

async fn pipeline<T, G>(client: &Client, open: &str, gate: G) -> (Committed<T>, bool)
where
    G: Future<Output = EngineResult<T>>,
{
    let deadline = tokio::time::Instant::now() + STATEMENT_TIMEOUT;
    let mut statements = std::pin::pin!(tokio::time::timeout_at(
        deadline,
        client.batch_execute(open)
    ));
    // The first poll puts `open` on the wire.
    let mut early = match std::future::poll_fn(|cx| Poll::Ready(statements.as_mut().poll(cx))).await
    {
        Poll::Ready(result) => Some(answer(result)),
        Poll::Pending => None,
    };
    if let Some(Err(err)) = early {
        let broken = !err.is_definite();
        return (Committed::NotStarted(err), broken);
    }
    let mut gate = std::pin::pin!(gate);
    let passed = loop {
        tokio::select! {
            biased;
            result = &mut gate => break result,
            result = &mut statements, if early.is_none() => early = Some(answer(result)),
        }
    };
    match passed {
        Err(err) => {
            // `open` may still be running: wait for its answer, then undo it.
            let ran = match early {
                Some(result) => result,
                None => answer(statements.await),
            };
            let undo =
                answer(tokio::time::timeout_at(deadline, client.batch_execute("ROLLBACK")).await);
            (Committed::GateFailed(err), breaks(&ran) || breaks(&undo))
        }
        Ok(value) => {
            let commit = tokio::time::timeout_at(deadline, client.batch_execute("COMMIT"));
            let (ran, committed) = match early {
                Some(result) => (result, answer(commit.await)),
                None => {
                    let (ran, committed) = tokio::join!(statements, commit);
                    (answer(ran), answer(committed))
                }
            };
            let broken = breaks(&ran) || breaks(&committed);
            match (ran, committed) {
                (Ok(()), Ok(())) => (Committed::Done(value), broken),
                // A definite failure of the statements aborted the transaction: the COMMIT
                // behind them rolled back whatever its own answer says.
                (Err(err), _) | (Ok(()), Err(err)) => (Committed::Failed(value, err), broken),
            }
        }
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if client.is_closed() || self.pool.expired(self.born) {
            return;
        }
        if let Ok(mut idle) = self.pool.idle.lock()
            && idle.len() < self.pool.settings.max_idle
        {
            idle.push(Idle {
                client,
                born: self.born,
            });
        }
    }
}

/// Why a batch failed.
#[derive(Debug)]
pub(crate) enum QueryError {
    Postgres(tokio_postgres::Error),
    Timeout,
    Closed,
}

impl QueryError {
    /// PostgreSQL's SQLSTATE, when PostgreSQL answered.
    pub(crate) fn code(&self) -> Option<&str> {
        match self {
            QueryError::Postgres(e) => e.as_db_error().map(|d| d.code().code()),
            _ => None,
        }
    }

    /// Whether PostgreSQL refused the statements only because of another session, so the
    /// same statements may well succeed a moment later: a serialization failure (`40001`), a
    /// deadlock (`40P01`), or `tuple concurrently updated` (`XX000`), which two `ALTER ROLE`s
    /// of one role at the same moment produce (PostgreSQL takes no lock on the role's row).
    pub(crate) fn is_transient(&self) -> bool {
        let QueryError::Postgres(e) = self else {
            return false;
        };
        let Some(db) = e.as_db_error() else {
            return false;
        };
        match db.code().code() {
            "40001" | "40P01" => true,
            "XX000" => db.message() == "tuple concurrently updated",
            _ => false,
        }
    }

    /// Whether PostgreSQL refused the statements (so nothing was applied), as opposed to a
    /// lost connection or a timeout, after which the outcome is unknown.
    pub(crate) fn is_definite(&self) -> bool {
        matches!(self, QueryError::Postgres(e) if e.as_db_error().is_some())
    }

    /// OpenBao's wording (`failed to execute query: ERROR: … (SQLSTATE …)`), with `secret`
    /// redacted wherever PostgreSQL quoted it back.
    pub(crate) fn message(&self, target: &Target, secret: Option<&SecretString>) -> String {
        let text = match self {
            QueryError::Postgres(e) => match e.as_db_error() {
                Some(db) => format!(
                    "failed to execute query: {}: {} (SQLSTATE {})",
                    db.severity(),
                    db.message(),
                    db.code().code()
                ),
                None => format!("lost the connection to {target}: {e}"),
            },
            QueryError::Timeout => format!(
                "statements on {target} did not finish within {}s",
                STATEMENT_TIMEOUT.as_secs()
            ),
            QueryError::Closed => format!("the connection to {target} is closed"),
        };
        match secret {
            Some(s) => redact(&text, s),
            None => text,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn settings_follow_vaults_defaults() {
        let d = PoolSettings::from_config(0, 0, 0);
        assert_eq!((d.max_open, d.max_idle, d.max_lifetime), (4, 4, None));
        let s = PoolSettings::from_config(10, 20, 60);
        assert_eq!((s.max_open, s.max_idle), (10, 10));
        assert_eq!(s.max_lifetime, Some(Duration::from_secs(60)));
        assert_eq!(PoolSettings::from_config(3, -1, 0).max_idle, 0);
    }

    #[test]
    fn credentials_are_escaped_and_never_in_the_target_or_errors() {
        let pw = SecretString::from("p@ss/w:rd'\\");
        let (config, target) = parse_connection(
            "postgresql://{{username}}:{{password}}@db.example:6543/app",
            "ad min",
            &pw,
        )
        .unwrap();
        assert_eq!(config.get_user(), Some("ad min"));
        assert_eq!(config.get_password(), Some(pw.expose().as_bytes()));
        assert_eq!(
            target.to_string(),
            "`user=ad min database=app` at db.example:6543"
        );
        let (config, target) = parse_connection(
            "host=127.0.0.1 port=5432 dbname=x user={{username}} password={{password}}",
            "u",
            &pw,
        )
        .unwrap();
        assert_eq!(config.get_password(), Some(pw.expose().as_bytes()));
        assert_eq!(target.hosts, "127.0.0.1:5432");
        let err =
            parse_connection("postgresql://u:{{password}}@h:notaport/x", "u", &pw).unwrap_err();
        assert!(!err.contains("p@ss"), "{err}");
        assert!(
            format!(
                "{:?}",
                Pool::new(config, target, PoolSettings::from_config(0, 0, 0))
            )
            .contains("127.0.0.1")
        );
    }
}
