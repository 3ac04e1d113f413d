//! One `tresor bootstrap run`: load the sources, check `required`, read the target and decide
//! every name (the plan), then — unless it is a dry run — write, and report.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::Config;
use crate::kv::{Client, Written};
use crate::plan::{self, Action, Desired, ORIGIN_KEY, VERSION_KEY};
use crate::progress::Progress;
use crate::source;

/// One name's line in the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Item {
    pub name: String,
    /// `<mount>/<path_prefix><name>`.
    pub path: String,
    #[serde(serialize_with = "action_str")]
    pub action: Action,
    pub origin: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn action_str<S: serde::Serializer>(a: &Action, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(a.as_str())
}

/// The outcome of a run that got as far as a plan.
#[derive(Debug, Clone)]
pub struct Report {
    pub dry_run: bool,
    pub address: String,
    pub mount: String,
    pub path_prefix: String,
    pub items: Vec<Item>,
    pub warnings: Vec<String>,
}

impl Report {
    pub fn count(&self, action: Action) -> usize {
        self.items.iter().filter(|i| i.action == action).count()
    }
}

/// Why a run stopped before or while planning.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Exit 2.
    #[error("{0}")]
    Config(String),
    /// Exit 1: a source could not be read.
    #[error("source {source_name}: {error}")]
    Source {
        source_name: String,
        error: source::SourceError,
    },
    /// Exit 1, nothing written.
    #[error(
        "required secrets missing or still equal to their fixture: {}; nothing was written",
        .0.join(", ")
    )]
    Required(Vec<String>),
}

/// The target's address and token: the config's, else the environment's.
pub fn target_client(config: &Config, base: &Path) -> Result<Client, RunError> {
    let env_first = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
    };
    let address = config
        .target
        .address
        .clone()
        .or_else(|| env_first(&["VAULT_ADDR", "TRESOR_ADDR", "BAO_ADDR"]))
        .ok_or_else(|| {
            RunError::Config("no target address: set target.address or VAULT_ADDR".into())
        })?;
    let token = match &config.target.token {
        Some(t) => t.clone(),
        None => env_first(&["VAULT_TOKEN", "TRESOR_TOKEN", "BAO_TOKEN"])
            .map(tresor_sdk::secret::SecretString::new)
            .ok_or_else(|| {
                RunError::Config("no target token: set VAULT_TOKEN (or target.token)".into())
            })?,
    };
    let ca = config
        .target
        .ca_cert
        .as_ref()
        .map(|c| base.join(c))
        .or_else(|| env_first(&["VAULT_CACERT", "TRESOR_CACERT"]).map(Into::into));
    Client::new(&address, token, ca.as_deref()).map_err(|e| RunError::Config(e.to_string()))
}

/// Runs everything up to the report. `progress` draws on a terminal only.
pub async fn run(
    config: &Config,
    base: &Path,
    dry_run: bool,
    progress: &mut Progress,
) -> Result<Report, RunError> {
    let sources =
        source::build(&config.sources, base).map_err(|e| RunError::Config(e.to_string()))?;
    let target = target_client(config, base)?;
    let mut warnings = Vec::new();
    let mut loaded = Vec::new();
    for s in &sources {
        progress.message(&format!("reading {}", s.describe()));
        let l = s.load().await.map_err(|error| RunError::Source {
            source_name: s.describe(),
            error,
        })?;
        warnings.extend(l.warnings);
        loaded.push(l.entries);
    }
    let merged = plan::merge(loaded, &config.fixtures);
    let unmet = plan::unmet_required(&config.required, &merged, &config.fixtures);
    if !unmet.is_empty() {
        return Err(RunError::Required(unmet));
    }

    let mount = config.target.mount().trim_matches('/').to_owned();
    let prefix = config.target.path_prefix().to_owned();
    let total = merged.len();
    let mut planned = Vec::with_capacity(total);
    for (i, (name, desired)) in merged.iter().enumerate() {
        progress.step("planning", i, total);
        let key = format!("{prefix}{name}");
        let decision = match plan::decide(&target, &mount, &key, desired).await {
            Ok(d) => d,
            Err(e) => plan::Decision {
                action: Action::Failed,
                cas: 0,
                note: Some(e.to_string()),
            },
        };
        planned.push((name, desired, key, decision));
    }

    let mut items = Vec::with_capacity(total);
    let writes = planned.iter().filter(|p| p.3.action.writes()).count();
    let mut written = 0;
    for (name, desired, key, decision) in planned {
        let mut action = decision.action;
        let mut note = decision.note;
        if action.writes() && !dry_run {
            progress.step("writing", written, writes);
            written += 1;
            match write(&target, &mount, &key, desired, decision.cas).await {
                Ok(Some(())) => {}
                Ok(None) => {
                    action = Action::SkippedForeign;
                    note = Some("written by someone else during this run (check-and-set)".into());
                }
                Err(e) => {
                    action = Action::Failed;
                    note = Some(e);
                }
            }
        }
        items.push(Item {
            name: name.clone(),
            path: format!("{mount}/{key}"),
            action,
            origin: desired.origin().to_owned(),
            note,
        });
    }
    progress.finish();
    Ok(Report {
        dry_run,
        address: target.address(),
        mount,
        path_prefix: prefix,
        items,
        warnings,
    })
}

/// Tests only (debug builds): the command in `TRESOR_FAILPOINT_BOOTSTRAP_BEFORE_WRITE` runs
/// (`sh -c`, with `TRESOR_BOOTSTRAP_KEY` set to the key) between the read and the CAS write,
/// so a test can be the concurrent writer. Release builds contain none of this.
async fn failpoint_before_write(key: &str) {
    #[cfg(debug_assertions)]
    if let Some(cmd) = std::env::var_os("TRESOR_FAILPOINT_BOOTSTRAP_BEFORE_WRITE") {
        let _ = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .env("TRESOR_BOOTSTRAP_KEY", key)
            .status()
            .await;
    }
    #[cfg(not(debug_assertions))]
    let _ = key;
}

/// The CAS write and the ownership record. `Ok(None)`: the CAS lost.
async fn write(
    target: &Client,
    mount: &str,
    key: &str,
    desired: &Desired,
    cas: u64,
) -> Result<Option<()>, String> {
    failpoint_before_write(key).await;
    let version = match target
        .write_value(mount, key, desired.value(), cas)
        .await
        .map_err(|e| e.to_string())?
    {
        Written::Version(v) => v,
        Written::CasMismatch => return Ok(None),
    };
    let origin = match desired {
        Desired::Real(_) => "source",
        Desired::Fixture(_) => "fixture",
    };
    let record = BTreeMap::from([
        (VERSION_KEY, version.to_string()),
        (ORIGIN_KEY, origin.to_owned()),
    ]);
    target
        .patch_custom_metadata(mount, key, &record)
        .await
        .map_err(|e| format!("version {version} written, but {e}"))?;
    Ok(Some(()))
}
