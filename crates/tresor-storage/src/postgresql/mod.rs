//! The `postgresql` backend: one table in a PostgreSQL database, for operators who already run
//! PostgreSQL (and, in a later step, for several Tresor nodes sharing it).
//!
//! # Layout
//! - [`PostgresqlBackend`]: the [`Backend`] over a connection pool; every write is one
//!   statement (autocommit) or one `BEGIN … COMMIT` block, acknowledged once PostgreSQL has
//!   committed it. [`PostgresqlBackend::sessions_named`] counts other sessions in the
//!   database by `application_name` (how `tresor operator migrate` sees a running server).
//! - `schema`: the table name (validated and quoted), the `CREATE TABLE`, the statements each
//!   connection prepares, creating the table at open under an advisory lock.
//! - `keys`: a key's `(path, key)` columns and the string ranges a listing reads.
//! - `list`: `list(prefix)` through the primary key's index only.
//! - `pool`: bounded connections (`max_parallel`), idle ones kept (`max_idle_connections`),
//!   broken ones discarded and the operation retried once.
//! - `connection`: parsing `connection_url`; error wording without the password.
//!
//! The table (see `docs/storage-postgresql.md`):
//! ```sql
//! CREATE TABLE IF NOT EXISTS "tresor_kv_store" (
//!   path  TEXT COLLATE "C" NOT NULL,  -- the key up to its last '/', "" at the top
//!   key   TEXT COLLATE "C" NOT NULL,  -- the rest
//!   value BYTEA NOT NULL,             -- barrier ciphertext
//!   PRIMARY KEY (path, key)
//! )
//! ```

mod connection;
mod ha;
mod keys;
mod list;
mod pipeline;
mod pool;
mod schema;
mod tls;

use std::sync::Arc;

use async_trait::async_trait;

pub use self::ha::{DEFAULT_HA_TABLE, LOCK_TTL, PostgresqlHa, RENEW_INTERVAL, RETRY_INTERVAL};
use self::ha::{Fence, Mode};
use self::pipeline::{Request, in_order};
use self::pool::{Failure, Pool};
pub use self::schema::{DEFAULT_TABLE, TableName};
use crate::ha::NodeAdvert;
use crate::{Backend, StorageError, TxnOp, validate_key};

/// How the backend is opened: Vault's `storage "postgresql"` settings.
#[derive(Clone)]
pub struct PostgresqlOptions {
    /// A libpq URL or `key=value` string; holds the password, so never logged.
    pub connection_url: String,
    /// `table`: validated by [`TableName::parse`].
    pub table: String,
    /// `max_parallel`: the most operations (so connections) in flight at once.
    pub max_parallel: usize,
    /// `max_idle_connections`: the most connections kept open between operations.
    pub max_idle_connections: usize,
    /// The sessions' `application_name` unless `connection_url` sets one:
    /// [`DEFAULT_APPLICATION_NAME`] for a server; `tresor operator migrate` uses its own, so
    /// that it can count a server's sessions ([`PostgresqlBackend::sessions_named`]).
    pub application_name: String,
}

/// The `application_name` a server's storage sessions carry.
pub const DEFAULT_APPLICATION_NAME: &str = "tresor";

impl PostgresqlOptions {
    /// Vault's default `max_parallel`.
    pub const DEFAULT_MAX_PARALLEL: usize = 128;

    /// The defaults: table [`DEFAULT_TABLE`], `max_parallel` 128, and as many idle
    /// connections as `max_parallel` (Go's default of 2 idle makes Vault and OpenBao open a
    /// new connection for most operations under load).
    pub fn new(connection_url: impl Into<String>) -> Self {
        Self {
            connection_url: connection_url.into(),
            table: DEFAULT_TABLE.to_owned(),
            max_parallel: Self::DEFAULT_MAX_PARALLEL,
            max_idle_connections: Self::DEFAULT_MAX_PARALLEL,
            application_name: DEFAULT_APPLICATION_NAME.to_owned(),
        }
    }
}

impl std::fmt::Debug for PostgresqlOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresqlOptions")
            .field("connection_url", &"<redacted>")
            .field("table", &self.table)
            .field("max_parallel", &self.max_parallel)
            .field("max_idle_connections", &self.max_idle_connections)
            .field("application_name", &self.application_name)
            .finish()
    }
}

#[derive(Debug)]
pub struct PostgresqlBackend {
    table: TableName,
    pool: Arc<Pool>,
    /// With HA: whether and how writes are fenced by the lock (see `ha`); `None`: a single
    /// node, writes go as they are.
    fence: Option<Arc<Fence>>,
}

/// `ha_enabled`: the lock table and what this node tells the others.
#[derive(Debug, Clone)]
pub struct HaOptions {
    /// `ha_table`: validated by [`TableName::parse`].
    pub table: String,
    pub advert: NodeAdvert,
}

impl PostgresqlBackend {
    /// Connects, checks the database, creates the table unless it exists and prepares the
    /// statements once, so a wrong URL, a missing privilege or a table of another shape is
    /// an error now rather than on the first request.
    pub async fn open(options: PostgresqlOptions) -> Result<Self, StorageError> {
        Ok(Self::open_with(options, None).await?.0)
    }

    /// As [`PostgresqlBackend::open`], with the HA lock (its table is created too). From
    /// then on the backend's writes follow the lock: unfenced while sealed, refused on a
    /// standby, fenced by the lock on the active node.
    pub async fn open_ha(
        options: PostgresqlOptions,
        ha: HaOptions,
    ) -> Result<(Self, Arc<PostgresqlHa>), StorageError> {
        let (backend, lock) = Self::open_with(options, Some(ha)).await?;
        let lock = lock.ok_or_else(|| StorageError::Open {
            path: "postgresql".to_owned(),
            reason: "the HA lock was not created".to_owned(),
        })?;
        Ok((backend, lock))
    }

    async fn open_with(
        options: PostgresqlOptions,
        ha: Option<HaOptions>,
    ) -> Result<(Self, Option<Arc<PostgresqlHa>>), StorageError> {
        let open_error = |target: &str, reason: String| StorageError::Open {
            path: if target.is_empty() {
                "postgresql".to_owned()
            } else {
                format!("postgresql {target}")
            },
            reason,
        };
        let table = TableName::parse(&options.table).map_err(|r| open_error("", r))?;
        if options.max_parallel == 0 {
            return Err(open_error("", "max_parallel must be at least 1".to_owned()));
        }
        let ha_table = match &ha {
            Some(ha) => Some(
                TableName::parse(&ha.table)
                    .map_err(|r| open_error("", r.replacen("table", "ha_table", 1)))?,
            ),
            None => None,
        };
        if ha_table.as_ref() == Some(&table) {
            return Err(open_error(
                "",
                "ha_table must name another table than table".to_owned(),
            ));
        }
        let connection = connection::parse(&options.connection_url, &options.application_name)
            .map_err(|r| open_error("(connection_url)", r))?;
        let mut sql = schema::Sql::new(&table);
        sql.fence = ha_table.as_ref().map(ha::fence_sql);
        let pool = Arc::new(Pool::new(
            connection,
            sql,
            options.max_parallel,
            options.max_idle_connections.min(options.max_parallel),
        ));
        let target = pool.target().to_owned();
        let client = pool
            .connect_raw()
            .await
            .map_err(|r| open_error(&target, r))?;
        check_server(&client)
            .await
            .map_err(|r| open_error(&target, r))?;
        schema::ensure(&client, &table).await.map_err(|e| {
            open_error(
                &target,
                format!("creating table {table}: {}", connection::describe(&e)),
            )
        })?;
        schema::check_shape(&client, &table)
            .await
            .map_err(|r| open_error(&target, r))?;
        let (fence, lock) = match (ha, ha_table) {
            (Some(ha), Some(ha_table)) => {
                let fence = ha::new_fence();
                let lock =
                    PostgresqlHa::open(pool.clone(), ha_table, ha.advert, fence.clone(), &client)
                        .await
                        .map_err(|r| open_error(&target, r))?;
                (Some(fence), Some(lock))
            }
            _ => (None, None),
        };
        drop(client);
        let backend = Self { table, pool, fence };
        // Prepares every statement against the table as it is.
        backend
            .pool
            .run("checking the table", |_| async { Ok(()) })
            .await
            .map_err(|e| open_error(&target, e.to_string()))?;
        tracing::info!(connection = %backend.pool.target(), table = %backend.table, ha = lock.is_some(), "opened the postgresql storage");
        Ok((backend, lock))
    }

    /// The table, quoted as it appears in SQL.
    pub fn table(&self) -> &TableName {
        &self.table
    }

    /// How many sessions other than this backend's own are connected to this database with
    /// `application_name` (as `pg_stat_activity` shows them; PostgreSQL shows every role the
    /// database and application name of other roles' sessions too). Says nothing about which
    /// table they use.
    pub async fn sessions_named(&self, application_name: &str) -> Result<u64, StorageError> {
        self.pool
            .run("counting sessions", |c| async move {
                let row = c
                    .client
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity \
                         WHERE datname = current_database() AND application_name = $1 \
                         AND pid <> pg_backend_pid()",
                        &[&application_name],
                    )
                    .await?;
                let n: i64 = row.try_get(0).map_err(list::unexpected)?;
                Ok(u64::try_from(n).unwrap_or(0))
            })
            .await
    }
}

const NOT_HOLDER: &str =
    "write refused: this node no longer holds the HA lock (another node may be active)";

fn not_active() -> StorageError {
    StorageError::Io(
        "write refused: this node is a standby (it does not hold the HA lock)".to_owned(),
    )
}

impl PostgresqlBackend {
    /// Writes go through the fenced block (HA, unsealed).
    fn fenced(&self) -> bool {
        self.fence.as_ref().is_some_and(|f| f.mode() != Mode::Open)
    }
}

/// Refuses a database whose encoding cannot hold every key (keys are any UTF-8), and warns
/// when PostgreSQL would acknowledge commits it has not flushed.
async fn check_server(client: &tokio_postgres::Client) -> Result<(), String> {
    let setting = async |name: &str| -> Result<String, String> {
        let row = client
            .query_one("SELECT current_setting($1)", &[&name])
            .await
            .map_err(|e| format!("reading {name}: {}", connection::describe(&e)))?;
        row.try_get::<_, String>(0)
            .map_err(|e| format!("reading {name}: {e}"))
    };
    let encoding = setting("server_encoding").await?;
    if encoding != "UTF8" {
        return Err(format!(
            "the database's encoding is {encoding}; Tresor needs a UTF8 database (CREATE DATABASE … ENCODING 'UTF8')"
        ));
    }
    if setting("synchronous_commit").await? == "off" {
        tracing::warn!(
            "PostgreSQL has synchronous_commit = off: a write Tresor acknowledged can be lost if PostgreSQL crashes"
        );
    }
    Ok(())
}

#[async_trait]
impl Backend for PostgresqlBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        validate_key(key)?;
        let (path, name) = keys::split(key);
        self.pool
            .run("get", |c| async move {
                let row = c.client.query_opt(&c.get, &[&path, &name]).await?;
                row.map(|r| r.try_get::<_, Vec<u8>>(0).map_err(list::unexpected))
                    .transpose()
            })
            .await
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        validate_key(key)?;
        if self.fenced() {
            return self
                .transaction(vec![TxnOp::Put {
                    key: key.to_owned(),
                    value,
                }])
                .await;
        }
        let (path, name) = keys::split(key);
        let value = value.as_slice();
        self.pool
            .run("put", |c| async move {
                c.client.execute(&c.put, &[&path, &name, &value]).await?;
                Ok(())
            })
            .await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        validate_key(key)?;
        if self.fenced() {
            return self
                .transaction(vec![TxnOp::Delete {
                    key: key.to_owned(),
                }])
                .await;
        }
        let (path, name) = keys::split(key);
        self.pool
            .run("delete", |c| async move {
                c.client.execute(&c.delete, &[&path, &name]).await?;
                Ok(())
            })
            .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        if prefix.contains('\0') {
            // No key holds a NUL (and PostgreSQL text cannot): nothing starts with it.
            return Ok(Vec::new());
        }
        self.pool
            .run("list", |c| async move { list::children(&c, prefix).await })
            .await
    }

    async fn transaction(&self, ops: Vec<TxnOp>) -> Result<(), StorageError> {
        for op in &ops {
            match op {
                TxnOp::Put { key, .. } | TxnOp::Delete { key } => validate_key(key)?,
            }
        }
        if ops.is_empty() {
            return Ok(());
        }
        let holder = match self.fence.as_ref().map(|f| f.mode()) {
            None | Some(Mode::Open) => None,
            Some(Mode::Standby) => return Err(not_active()),
            Some(Mode::Held(identity)) => Some(identity),
        };
        let holder = holder.as_deref();
        let fence = self.fence.as_deref();
        let rows: Vec<(&str, &str, Option<&[u8]>)> = ops
            .iter()
            .map(|op| match op {
                TxnOp::Put { key, value } => {
                    let (path, name) = keys::split(key);
                    (path, name, Some(value.as_slice()))
                }
                TxnOp::Delete { key } => {
                    let (path, name) = keys::split(key);
                    (path, name, None)
                }
            })
            .collect();
        let rows = rows.as_slice();
        self.pool
            .run("transaction", |c| async move {
                let c = &*c;
                let client = &c.client;
                // BEGIN, every op and COMMIT leave on the first poll, in this order: one
                // round trip. If an op fails, PostgreSQL ignores the rest of the block and
                // turns the COMMIT into a ROLLBACK; the op's error is what is reported.
                // BEGIN itself cannot be refused on a pooled connection: the pool never holds
                // one inside a transaction (every block ends in COMMIT, and a connection whose
                // block did not finish is dropped), so BEGIN fails only with the connection,
                // and then every op behind it fails too.
                // With HA, the fence goes first: if this node no longer holds the lock,
                // it fails and takes the whole block with it.
                let mut requests: Vec<Request<'_, ()>> = Vec::with_capacity(rows.len() + 3);
                requests.push(Box::pin(client.batch_execute("BEGIN")));
                let fenced = match (holder, &c.fence) {
                    (Some(identity), Some(statement)) => {
                        requests.push(Box::pin(async move {
                            client
                                .query_one(statement, &[&ha::LOCK_KEY, &identity])
                                .await
                                .map(drop)
                        }));
                        true
                    }
                    (Some(_), None) => {
                        return Err(Failure::Unexpected(
                            "the fence statement is not prepared".to_owned(),
                        ));
                    }
                    _ => false,
                };
                for (path, name, value) in rows {
                    requests.push(match value {
                        Some(value) => Box::pin(async move {
                            client.execute(&c.put, &[path, name, value]).await.map(drop)
                        }),
                        None => Box::pin(async move {
                            client.execute(&c.delete, &[path, name]).await.map(drop)
                        }),
                    });
                }
                requests.push(Box::pin(client.batch_execute("COMMIT")));
                let answers = in_order(requests).await;
                if fenced
                    && let Some(Err(err)) = answers.get(1)
                    && ha::is_fence_refusal(err)
                {
                    if let (Some(fence), Some(identity)) = (fence, holder) {
                        fence.lose(identity, "a write found the lock taken or lapsed");
                    }
                    return Err(Failure::Unexpected(NOT_HOLDER.to_owned()));
                }
                for answer in answers {
                    answer?;
                }
                Ok::<(), Failure>(())
            })
            .await
    }

    fn storage_type(&self) -> &'static str {
        "postgresql"
    }

    async fn close(&self) -> Result<(), StorageError> {
        self.pool.close();
        Ok(())
    }
}
