//! Connections: at most `max_parallel` in use at once, up to `max_idle_connections` kept open
//! between uses, each with every statement prepared once.
//!
//! Why not a pool crate: this needs little (a bound, an idle list, discarding broken
//! connections) and must word every failure itself so that no message holds the password.
//! Connections open on demand, so a PostgreSQL that is down costs nothing until a request
//! comes, and one that comes back is used again without any reset.
//!
//! A dead connection is never reused: one PostgreSQL closed (restart, `pg_terminate_backend`,
//! network loss) reports itself closed and is skipped; one that fails mid-operation is dropped,
//! the idle list is emptied (its neighbours most likely died of the same cause), and the
//! operation is tried once more on a new connection. That retry is safe because every
//! operation is idempotent: a read, or writes that set or remove whole keys.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_postgres::{Client, Statement};

use super::connection::{Connection, describe};
use super::pipeline::{Request, in_order};
use super::schema::Sql;
use super::tls::SslMode;
use crate::StorageError;

/// How long an operation waits for a free slot when `max_parallel` are busy.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one operation may run on its connection. Past it the connection is dropped
/// (which rolls back an uncommitted transaction) and the caller gets an error.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// One open connection and its prepared statements.
pub(super) struct Conn {
    pub client: Client,
    pub get: Statement,
    pub put: Statement,
    pub delete: Statement,
    pub leaves_all: Statement,
    pub leaves_range: Statement,
    pub leaves_from: Statement,
    pub folders_range: Statement,
    pub folders_from: Statement,
    /// With HA: the check that this node still holds the lock, first in every write block.
    pub fence: Option<Statement>,
}

pub(super) struct Pool {
    connection: Connection,
    sql: Sql,
    slots: Semaphore,
    idle: Mutex<Vec<Arc<Conn>>>,
    max_idle: usize,
    closed: AtomicBool,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The config holds the password: show where, never how.
        f.debug_struct("Pool")
            .field("target", &self.connection.target)
            .field("max_idle", &self.max_idle)
            .finish_non_exhaustive()
    }
}

/// Why an operation failed, before it is worded for the caller.
pub(super) enum Failure {
    Postgres(tokio_postgres::Error),
    /// Something PostgreSQL answered that the backend cannot use (a `NULL` value, …).
    Unexpected(String),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(err: tokio_postgres::Error) -> Self {
        Failure::Postgres(err)
    }
}

impl Pool {
    pub(super) fn new(
        connection: Connection,
        sql: Sql,
        max_parallel: usize,
        max_idle: usize,
    ) -> Self {
        Self {
            connection,
            sql,
            // `Semaphore::new` panics above its maximum; no PostgreSQL takes that many anyway.
            slots: Semaphore::new(max_parallel.min(Semaphore::MAX_PERMITS)),
            idle: Mutex::new(Vec::new()),
            max_idle,
            closed: AtomicBool::new(false),
        }
    }

    pub(super) fn target(&self) -> &str {
        &self.connection.target
    }

    /// A raw connection without prepared statements (schema creation at open).
    pub(super) async fn connect_raw(&self) -> Result<Client, String> {
        self.connect_watched().await.map(|(client, _)| client)
    }

    /// As [`Pool::connect_raw`], with a receiver that completes the moment the connection
    /// ends (the HA lock's session must notice at once, not at its next statement).
    pub(super) async fn connect_watched(
        &self,
    ) -> Result<(Client, tokio::sync::watch::Receiver<bool>), String> {
        let (ended_tx, ended) = tokio::sync::watch::channel(false);
        let (client, connection) = self.open_session().await?;
        let redactor = self.connection.redactor.clone();
        tokio::spawn(async move {
            // Ends when the client is dropped or the server goes away; either way the client
            // then reports itself closed.
            if let Err(err) = connection.await {
                let reason = redactor.redact(&describe(&err));
                tracing::debug!(%reason, "a PostgreSQL storage connection ended");
            }
            ended_tx.send_replace(true);
        });
        Ok((client, ended))
    }

    /// Opens one session with the TLS `sslmode` asks for. `allow` is tried plain first and,
    /// when that fails, once more with TLS (as libpq).
    async fn open_session(
        &self,
    ) -> Result<
        (
            Client,
            tokio_postgres::Connection<
                tokio_postgres::Socket,
                super::tls::RustlsStream<tokio_postgres::Socket>,
            >,
        ),
        String,
    > {
        let tls = &self.connection.tls;
        let first = self.connection.config.connect(tls.connector.clone()).await;
        let result = match first {
            Err(_) if tls.mode == SslMode::Allow => {
                let mut config = self.connection.config.clone();
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                config.connect(tls.connector.clone()).await
            }
            other => other,
        };
        result.map_err(|e| self.redact(&self.word_failure(&e)))
    }

    /// A failed connect in words, with the TLS settings when they may be the cause.
    fn word_failure(&self, err: &tokio_postgres::Error) -> String {
        let tls = &self.connection.tls;
        let text = describe(err);
        match err.as_db_error() {
            // pg_hba.conf has only `hostssl` lines for this client.
            Some(db) if db.message().contains("no encryption") => format!(
                "{text} (the server wants TLS, and {} did not use it: set sslmode=verify-full \
                 and sslrootcert in connection_url)",
                tls.describe
            ),
            Some(_) => text,
            None if tls.mode == SslMode::Disable => text,
            // rustls says `UnknownIssuer`; say what it means here.
            None if text.contains("UnknownIssuer") => format!(
                "{text}: the server's certificate is not signed by a CA in sslrootcert (with {})",
                tls.describe
            ),
            None => format!("{text} (with {})", tls.describe),
        }
    }

    async fn connect(&self) -> Result<Conn, String> {
        let client = self.connect_raw().await?;
        let s = &self.sql;
        // Sent together: one round trip for all of them.
        let requests: Vec<Request<'_, Statement>> = [
            Some(&s.get),
            Some(&s.put),
            Some(&s.delete),
            Some(&s.leaves_all),
            Some(&s.leaves_range),
            Some(&s.leaves_from),
            Some(&s.folders_range),
            Some(&s.folders_from),
            s.fence.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(|sql| -> Request<'_, Statement> { Box::pin(client.prepare(sql)) })
        .collect();
        let prepared = in_order(requests)
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.redact(&format!("preparing statements: {}", describe(&e))))?;
        let mut p = prepared.into_iter();
        let mut next = || {
            p.next()
                .ok_or_else(|| "a prepared statement is missing".to_owned())
        };
        Ok(Conn {
            get: next()?,
            put: next()?,
            delete: next()?,
            leaves_all: next()?,
            leaves_range: next()?,
            leaves_from: next()?,
            folders_range: next()?,
            folders_from: next()?,
            fence: if s.fence.is_some() {
                Some(next()?)
            } else {
                None
            },
            client,
        })
    }

    /// Runs `op` on a connection, within [`OPERATION_TIMEOUT`]; once more on a new
    /// connection if the first one broke (see the module docs). `what` names the operation
    /// in errors.
    pub(super) async fn run<T, F, Fut>(&self, what: &str, op: F) -> Result<T, StorageError>
    where
        F: Fn(Arc<Conn>) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed);
        }
        let _slot = tokio::time::timeout(ACQUIRE_TIMEOUT, self.slots.acquire())
            .await
            .map_err(|_| {
                StorageError::Io(format!(
                    "{what}: no free PostgreSQL connection to {} within {}s (max_parallel busy)",
                    self.target(),
                    ACQUIRE_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|_| StorageError::Closed)?;
        let mut retried = false;
        loop {
            let conn = match if retried { None } else { self.take_idle() } {
                Some(conn) => conn,
                None => Arc::new(self.connect().await.map_err(|reason| {
                    StorageError::Io(format!(
                        "{what}: cannot connect to PostgreSQL {}: {reason}",
                        self.target()
                    ))
                })?),
            };
            let outcome = tokio::time::timeout(OPERATION_TIMEOUT, op(conn.clone())).await;
            let err = match outcome {
                Ok(Ok(value)) => {
                    self.give_back(conn);
                    return Ok(value);
                }
                Ok(Err(err)) => err,
                Err(_) => {
                    drop(conn);
                    return Err(StorageError::Io(format!(
                        "{what}: PostgreSQL {} did not answer within {}s",
                        self.target(),
                        OPERATION_TIMEOUT.as_secs()
                    )));
                }
            };
            let broken = match &err {
                Failure::Postgres(e) => conn.client.is_closed() || connection_lost(e),
                Failure::Unexpected(_) => false,
            };
            if !broken {
                self.give_back(conn);
                return Err(StorageError::Io(self.worded(what, &err)));
            }
            drop(conn);
            self.drop_idle();
            if retried {
                return Err(StorageError::Io(self.worded(what, &err)));
            }
            tracing::debug!(
                operation = what,
                "PostgreSQL connection lost; retrying once"
            );
            retried = true;
        }
    }

    fn worded(&self, what: &str, err: &Failure) -> String {
        let reason = match err {
            Failure::Postgres(e) => describe(e),
            Failure::Unexpected(text) => text.clone(),
        };
        self.redact(&format!("{what} on PostgreSQL {}: {reason}", self.target()))
    }

    fn redact(&self, message: &str) -> String {
        self.connection.redactor.redact(message)
    }

    fn take_idle(&self) -> Option<Arc<Conn>> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(conn) = idle.pop() {
            if !conn.client.is_closed() {
                return Some(conn);
            }
        }
        None
    }

    fn give_back(&self, conn: Arc<Conn>) {
        if conn.client.is_closed() || self.closed.load(Ordering::Acquire) {
            return;
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.max_idle
        {
            idle.push(conn);
        }
    }

    fn drop_idle(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    /// Later operations fail with `Closed`; idle connections are closed now, busy ones when
    /// their operation ends.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.slots.close();
        self.drop_idle();
    }
}

/// Whether `err` means the connection is gone (rather than PostgreSQL refusing one
/// statement): no answer at all, a connection-class SQLSTATE (`08…`), or the server ending the
/// session (`57P01` admin shutdown / `pg_terminate_backend`, `57P02` crash shutdown, `57P03`
/// cannot connect now).
fn connection_lost(err: &tokio_postgres::Error) -> bool {
    match err.as_db_error() {
        None => true,
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
        }
    }
}
