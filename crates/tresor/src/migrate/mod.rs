//! `tresor operator migrate -config=FILE`: copies every entry of one store to another, as
//! Vault's and OpenBao's `operator migrate` do, with the server stopped.
//!
//! # Layout
//! - this file: the flags, the order of the steps (open, lock, list, copy, unlock) and every
//!   refusal's wording.
//! - `lock`: the migration lock (`core/migration`, OpenBao's key) in the source store, and the
//!   server's start-up check for it.
//! - `copy`: listing the source's keys (in parallel, skipping what `-start` excludes) and
//!   copying them in chunks, each chunk one destination transaction.
//! - `progress`: the progress line and the summary on stderr (counts, never keys).
//!
//! The copy is of raw entries below the barrier: ciphertext, written back under the same key,
//! which is also the ciphertext's associated data, so the destination decrypts with the same
//! unseal key. Nothing is decrypted and no key is needed.

mod copy;
pub mod lock;
mod progress;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, anyhow, bail};
use tresor_config::{MigrationConfig, StorageConfig};
use tresor_storage::{
    Backend, DEFAULT_APPLICATION_NAME, EmbeddedBackend, EmbeddedOptions, PostgresqlBackend,
    PostgresqlOptions, StorageError,
};

use self::progress::Progress;

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The migration file: a storage_source and a storage_destination block, each with the
    /// settings of a storage block of its type (also TRESOR_MIGRATE_CONFIG_PATH,
    /// BAO_MIGRATE_CONFIG_PATH or VAULT_MIGRATE_CONFIG_PATH).
    #[arg(long = "config", env = "TRESOR_MIGRATE_CONFIG_PATH")]
    config: Option<PathBuf>,
    /// Only copy keys that sort at or after this value (to resume a migration that stopped).
    #[arg(long = "start", default_value = "")]
    start: String,
    /// Remove a stale migration lock from the source, and copy nothing.
    #[arg(long = "reset")]
    reset: bool,
    /// How many keys are read and written at once.
    #[arg(long = "max-parallel", default_value_t = 10)]
    max_parallel: usize,
}

/// Runs the command; exit 1 for a usage or configuration mistake, 2 when the migration
/// itself failed (as `bao operator migrate`).
pub fn run(args: MigrateArgs) -> ExitCode {
    if args.max_parallel == 0 {
        eprintln!("Error: -max-parallel must be at least 1");
        return ExitCode::from(1);
    }
    let Some(path) = args.config.clone().or_else(|| {
        ["BAO_MIGRATE_CONFIG_PATH", "VAULT_MIGRATE_CONFIG_PATH"]
            .iter()
            .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
            .map(PathBuf::from)
    }) else {
        eprintln!("Error: a migration file is required: tresor operator migrate -config=FILE");
        return ExitCode::from(1);
    };
    let config = match tresor_config::load_migration(&path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("Error loading the migration file {}: {e}", path.display());
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("Error: starting the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(migrate(&config, &args)) {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Which end of the migration a store is, for messages.
#[derive(Clone, Copy)]
enum Side {
    Source,
    Destination,
}

impl Side {
    fn stanza(self) -> &'static str {
        match self {
            Self::Source => "storage_source",
            Self::Destination => "storage_destination",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Destination => "destination",
        }
    }
}

async fn migrate(config: &MigrationConfig, args: &MigrateArgs) -> Result<&'static str> {
    refuse_the_same_file(&config.source, &config.destination)?;
    let source = open(&config.source, Side::Source).await?;
    if args.reset {
        lock::clear(&*source)
            .await
            .context("removing the migration lock from the source")?;
        close(&*source, Side::Source).await?;
        return Ok("Success! Migration lock reset (if it was set).");
    }
    if let Some(status) = lock::read(&*source)
        .await
        .context("reading the source's migration lock")?
    {
        bail!(
            "a storage migration from this source is in progress (started: {}); if none is running, \
             clear the lock with -reset",
            status.start
        );
    }
    let destination = open(&config.destination, Side::Destination).await?;
    // The embedded file is locked by redb for as long as this process holds it open, which
    // already keeps a server off it (as OpenBao relies on raft's file lock). Other stores get
    // OpenBao's lock key, which a starting server refuses.
    let locked = !matches!(config.source, StorageConfig::Embedded { .. });
    if locked {
        let status = lock::set(&*source)
            .await
            .context("setting the migration lock in the source")?;
        // The lock was just written with a timestamp to the nanosecond: seeing it in the
        // destination means both name one table (whatever the URLs look like).
        let same = destination.get(lock::KEY).await;
        let same = match same {
            Ok(Some(value)) => status.is(&value),
            Ok(None) => false,
            Err(e) => {
                let _ = lock::clear(&*source).await;
                return Err(anyhow!(e).context("reading the destination"));
            }
        };
        if same {
            lock::clear(&*source)
                .await
                .context("removing the migration lock from the source")?;
            bail!("storage_source and storage_destination are the same store; nothing was copied");
        }
    }
    let outcome = copy_all(Arc::clone(&source), Arc::clone(&destination), args).await;
    let unlocked = if locked {
        lock::clear(&*source)
            .await
            .context("removing the migration lock from the source (clear it with -reset)")
    } else {
        Ok(())
    };
    let closed = close(&*destination, Side::Destination)
        .await
        .and(close(&*source, Side::Source).await);
    outcome?;
    unlocked?;
    closed?;
    Ok("Success! All of the keys have been migrated.")
}

/// Lists, then copies, with progress on stderr. Ctrl-C stops after the chunks in flight.
async fn copy_all(
    source: Arc<dyn Backend>,
    destination: Arc<dyn Backend>,
    args: &MigrateArgs,
) -> Result<()> {
    let progress = Arc::new(Progress::stderr());
    let stop = Arc::new(AtomicBool::new(false));
    let interrupted = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, interrupted) = (Arc::clone(&stop), Arc::clone(&interrupted));
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.store(true, Ordering::SeqCst);
                stop.store(true, Ordering::SeqCst);
            }
        })
    };
    let result = copy_with(source, destination, args, &progress, &stop).await;
    watcher.abort();
    let snapshot = progress.snapshot();
    let total = snapshot.total.unwrap_or(0);
    match result {
        Ok(()) if interrupted.load(Ordering::SeqCst) && snapshot.copied == 0 => {
            bail!("interrupted before anything was copied")
        }
        Ok(()) if interrupted.load(Ordering::SeqCst) => {
            eprintln!("{}", progress::summary(&snapshot));
            bail!(
                "interrupted after copying {} of {total} keys: the destination is partial; run the migration again to finish it",
                snapshot.copied
            )
        }
        Ok(()) => {
            eprintln!("{}", progress::summary(&snapshot));
            Ok(())
        }
        Err(e) if snapshot.total.is_none() => Err(e),
        Err(e) => {
            eprintln!("{}", progress::summary(&snapshot));
            Err(e.context(format!(
                "copied {} of {total} keys before the failure: the destination is partial; run the migration again to finish it",
                snapshot.copied
            )))
        }
    }
}

async fn copy_with(
    source: Arc<dyn Backend>,
    destination: Arc<dyn Backend>,
    args: &MigrateArgs,
    progress: &Arc<Progress>,
    stop: &Arc<AtomicBool>,
) -> Result<()> {
    let keys = progress
        .report_until(copy::list_keys(
            Arc::clone(&source),
            &args.start,
            args.max_parallel,
            progress,
            stop,
        ))
        .await;
    let keys = keys.context("listing the source")?;
    if stop.load(Ordering::SeqCst) {
        // Interrupted while listing: nothing is copied.
        return Ok(());
    }
    if keys.is_empty() && args.start.is_empty() {
        bail!("the source holds no data; check storage_source");
    }
    if args.start.is_empty()
        && !destination
            .list("")
            .await
            .context("listing the destination")?
            .is_empty()
    {
        // OpenBao overwrites without asking; say it, since keys only the destination holds
        // stay and would mix two stores.
        eprintln!(
            "Warning: the destination already holds data: its keys are overwritten, and keys only it holds are kept. \
             A migration's destination should be empty."
        );
    }
    progress.set_total(keys.len() as u64);
    let copied = progress
        .report_until(copy::copy(
            source,
            destination,
            Arc::new(keys),
            args.max_parallel,
            Arc::clone(progress),
            Arc::clone(stop),
        ))
        .await;
    Ok(copied?)
}

/// Refuses a migration from an embedded file to itself before opening it (a second open of
/// the file in this process would otherwise read as "in use by a running server").
fn refuse_the_same_file(source: &StorageConfig, destination: &StorageConfig) -> Result<()> {
    if let (StorageConfig::Embedded { path: a, .. }, StorageConfig::Embedded { path: b, .. }) =
        (source, destination)
        && canonical(a) == canonical(b)
    {
        bail!(
            "storage_source and storage_destination are the same file ({}); nothing was copied",
            a.display()
        );
    }
    Ok(())
}

/// `path` with its directory resolved (the file itself may not exist yet).
fn canonical(path: &Path) -> PathBuf {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (parent.canonicalize(), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// The `application_name` of the command's own PostgreSQL sessions, so that a server's
/// (`tresor`) can be counted apart from them.
const APPLICATION_NAME: &str = "tresor-migrate";

async fn open(storage: &StorageConfig, side: Side) -> Result<Arc<dyn Backend>> {
    match storage {
        StorageConfig::Embedded { path, cache_size } => {
            // Opening creates a missing file: a mistyped source path must not read as an
            // empty store.
            if matches!(side, Side::Source) && !path.is_file() {
                bail!(
                    "storage_source \"embedded\": {} does not exist",
                    path.display()
                );
            }
            let options = EmbeddedOptions {
                // The config refuses sizes this machine cannot address.
                cache_size: usize::try_from(*cache_size).unwrap_or(usize::MAX),
            };
            match EmbeddedBackend::open_with(path, options) {
                Ok(backend) => Ok(Arc::new(backend)),
                // redb's file lock: held by the server that has the file open.
                Err(StorageError::InUse { path }) => bail!(
                    "the {} store is in use by a running server; stop it first ({path} is locked by another process)",
                    side.noun()
                ),
                Err(e) => Err(anyhow!(e).context(format!("opening {}", side.stanza()))),
            }
        }
        // A Vault migration file often keeps `ha_enabled` and `ha_table`: they say how a
        // server would run on the store, and mean nothing to a copy.
        StorageConfig::Postgresql {
            connection_url,
            table,
            max_parallel,
            max_idle_connections,
            ..
        } => {
            let url = crate::server::postgresql_url(connection_url.as_deref(), |name| {
                std::env::var(name).ok()
            })
            .with_context(|| format!("opening {}", side.stanza()))?;
            let mut options = PostgresqlOptions::new(url);
            options.application_name = APPLICATION_NAME.to_owned();
            if let Some(table) = table {
                options.table.clone_from(table);
            }
            if let Some(n) = max_parallel {
                options.max_parallel = usize::try_from(*n).unwrap_or(usize::MAX);
                options.max_idle_connections = options.max_parallel;
            }
            if let Some(n) = max_idle_connections {
                options.max_idle_connections = usize::try_from(*n).unwrap_or(usize::MAX);
            }
            let backend = PostgresqlBackend::open(options)
                .await
                .with_context(|| format!("opening {}", side.stanza()))?;
            // A server's storage sessions carry application_name "tresor" (unless its
            // connection_url names another); the database, not the table, is what can be
            // seen, so a server on another table of the same database counts too.
            let sessions = backend
                .sessions_named(DEFAULT_APPLICATION_NAME)
                .await
                .with_context(|| format!("checking for servers on {}", side.stanza()))?;
            if sessions > 0 {
                let _ = backend.close().await;
                bail!(
                    "the {} store is in use by a running server; stop it first ({sessions} sessions with application_name '{DEFAULT_APPLICATION_NAME}' are connected to its database)",
                    side.noun()
                );
            }
            Ok(Arc::new(backend))
        }
        StorageConfig::Inmem => bail!("{} \"inmem\" cannot be migrated", side.stanza()),
    }
}

async fn close(backend: &dyn Backend, side: Side) -> Result<()> {
    backend
        .close()
        .await
        .with_context(|| format!("closing the {} store", side.noun()))
}
