//! Seal migration: Shamir → auto, auto → Shamir and auto → auto, as OpenBao does it.
//!
//! The configuration says what to migrate to (the active `seal` stanza, or none for Shamir)
//! and, when leaving an auto seal, what from (the old stanza with `disabled = "true"`: it is
//! needed to unwrap the old root and recovery keys). The server then starts sealed in
//! migration mode and does not unseal by itself; `sys/unseal` with `migrate: true` and a
//! quorum of the *old* seal's shares (unseal key shares leaving Shamir, recovery shares
//! leaving an auto seal) rewrites the key records in one storage transaction and unseals.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use subtle::ConstantTimeEq;
use tresor_sdk::secret::SecretBytes;
use tresor_storage::{Backend, TxnOp};

use super::auto::{AutoSeal, SealKind};
use super::{
    RECOVERY_CONFIG_PATH, RECOVERY_KEY_PATH, ROOT_KEY_PATH, SEAL_CONFIG_PATH, SEALED_ROOT_KEY_PATH,
    SealConfig, combine_shares,
};
use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::random;

/// Whether the server is in seal migration mode, from which seal, and whether the store
/// still has to be rewritten.
#[derive(Debug, Default)]
pub(crate) struct SealMigration {
    /// The seal migrated from; `None`: no migration mode. A configuration with a disabled
    /// stanza stays in migration mode after the migration is done (until the stanza is
    /// removed), as in OpenBao: the server then does not unseal by itself.
    from: Option<SealKind>,
    /// The store is still sealed the old way: `sys/unseal` must say `migrate`.
    pending: AtomicBool,
}

impl SealMigration {
    pub(crate) fn source(&self) -> Option<SealKind> {
        self.from
    }

    pub(crate) fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    fn finish(&self) {
        self.pending.store(false, Ordering::Release);
    }
}

/// Compares the stored seal type with the configuration before anything starts, and decides
/// the migration mode. Refuses what cannot work: unsealing with the wrong seal can only fail,
/// and ignoring a stanza would leave an operator believing the server auto-unseals. The
/// `cannot seal migrate …` wording is OpenBao's.
pub(crate) async fn plan(
    backend: &dyn Backend,
    stored: Option<&SealConfig>,
    configured: Option<&dyn AutoSeal>,
    disabled: Option<&dyn AutoSeal>,
) -> CoreResult<SealMigration> {
    let Some(stored) = stored else {
        // Not initialised: `sys/init` uses the active seal; a disabled one has no role.
        return Ok(SealMigration::default());
    };
    let to = configured.map_or(SealKind::Shamir, AutoSeal::kind);
    let Some(old) = disabled else {
        if stored.kind == to {
            return Ok(SealMigration::default());
        }
        // As in OpenBao, migrating away from Shamir needs no disabled stanza.
        if stored.kind == SealKind::Shamir {
            tracing::warn!(
                to = to.as_str(),
                "entering seal migration mode: unseal with the unseal keys and migrate=true"
            );
            return Ok(pending(SealKind::Shamir));
        }
        let target = if to == SealKind::Shamir {
            "Shamir".to_owned()
        } else {
            format!("{:?}", to.as_str())
        };
        return Err(CoreError::SealMismatch(format!(
            "cannot seal migrate from {:?} to {target}, no disabled seal in configuration: keep \
             the seal \"{}\" stanza with disabled = \"true\" to migrate away from it, or \
             configure it as the active seal",
            stored.kind.as_str(),
            stored.kind
        )));
    };
    let from = old.kind();
    if stored.kind == from {
        if to == from {
            // Same type, another key (transit → transit): only the new seal can tell whether
            // it already wraps the stored root key.
            let migrated = match configured {
                Some(new) => new_seal_opens_store(backend, new).await,
                None => false,
            };
            return Ok(if migrated {
                done(from)
            } else {
                warn_entering(from, to);
                pending(from)
            });
        }
        warn_entering(from, to);
        return Ok(pending(from));
    }
    if stored.kind == to {
        // Migrated earlier; the disabled stanza is left over.
        tracing::warn!(
            from = from.as_str(),
            "the seal migration is done: remove the disabled seal stanza so the server unseals \
             by itself again"
        );
        return Ok(done(from));
    }
    Err(CoreError::SealMismatch(format!(
        "the store is sealed by a {} seal, but the disabled seal stanza is \"{from}\" and the \
         active seal is {}: a seal migration starts from the seal the store uses",
        stored.kind,
        if to == SealKind::Shamir {
            "Shamir (no seal stanza)".to_owned()
        } else {
            format!("\"{to}\"")
        }
    )))
}

fn pending(from: SealKind) -> SealMigration {
    SealMigration {
        from: Some(from),
        pending: AtomicBool::new(true),
    }
}

fn done(from: SealKind) -> SealMigration {
    SealMigration {
        from: Some(from),
        pending: AtomicBool::new(false),
    }
}

fn warn_entering(from: SealKind, to: SealKind) {
    tracing::warn!(
        from = from.as_str(),
        to = to.as_str(),
        "entering seal migration mode: the server will not unseal by itself; unseal with the \
         recovery keys and migrate=true"
    );
}

async fn new_seal_opens_store(backend: &dyn Backend, seal: &dyn AutoSeal) -> bool {
    match backend.get(SEALED_ROOT_KEY_PATH).await {
        Ok(Some(blob)) => seal.decrypt(&blob, SEALED_ROOT_KEY_PATH).await.is_ok(),
        _ => false,
    }
}

impl Core {
    /// The store is still sealed the old way: `sys/unseal` must say `migrate`.
    pub(crate) fn migration_pending(&self) -> bool {
        self.migration.is_pending()
    }

    /// A migration is configured (pending or done): the server does not unseal by itself.
    pub(crate) fn in_migration_mode(&self) -> bool {
        self.migration.source().is_some()
    }

    /// The seal of the shares `sys/unseal` expects while a migration is pending: the old one.
    pub(crate) fn migration_from(&self) -> Option<SealKind> {
        self.migration
            .source()
            .filter(|_| self.migration.is_pending())
    }

    /// The disabled (old) seal of an auto → Shamir or auto → auto migration.
    pub(crate) fn migration_seal(&self) -> CoreResult<&Arc<dyn AutoSeal>> {
        self.options.migration_seal.as_ref().ok_or_else(|| {
            CoreError::Internal("no disabled seal is configured for the migration".to_owned())
        })
    }

    /// Seal migration Shamir → auto, with a quorum of unseal key shares (`transition` held):
    /// the barrier is unsealed with the old root key, a **new** root key is made (so the old
    /// unseal key, which becomes the recovery key, cannot decrypt the data any more), and the
    /// keyring under it, the new root key and the recovery key wrapped by the seal, the
    /// recovery and seal configurations, and the removal of the Shamir-wrapped root key are
    /// written in one transaction. Then the server is unsealed.
    pub(crate) async fn migrate_to_auto(
        &self,
        shares: &[SecretBytes],
        config: &SealConfig,
    ) -> CoreResult<()> {
        let unseal_key = combine_shares(shares, config)?;
        let wrapped = self
            .barrier()
            .backend()
            .get(ROOT_KEY_PATH)
            .await?
            .ok_or_else(|| CoreError::Internal("root key missing from storage".to_owned()))?;
        let old_root = super::unwrap_root_key(&unseal_key, &wrapped)?;
        let kind = self.configured_seal_kind();
        self.barrier().unseal(&old_root).await?;
        let new_root = SecretBytes::new(random::bytes(super::KEY_LEN));
        let recovery = SealConfig::shamir(config.secret_shares, config.secret_threshold);
        let barrier = SealConfig {
            kind,
            secret_shares: 1,
            secret_threshold: 1,
        };
        let written = async {
            let ops = vec![
                TxnOp::Put {
                    key: SEALED_ROOT_KEY_PATH.to_owned(),
                    value: self.seal_encrypt(&new_root, SEALED_ROOT_KEY_PATH).await?,
                },
                TxnOp::Put {
                    key: RECOVERY_KEY_PATH.to_owned(),
                    value: self.seal_encrypt(&unseal_key, RECOVERY_KEY_PATH).await?,
                },
                TxnOp::Put {
                    key: RECOVERY_CONFIG_PATH.to_owned(),
                    value: serde_json::to_vec(&recovery)?,
                },
                TxnOp::Put {
                    key: SEAL_CONFIG_PATH.to_owned(),
                    value: serde_json::to_vec(&barrier)?,
                },
                TxnOp::Delete {
                    key: ROOT_KEY_PATH.to_owned(),
                },
            ];
            crash_failpoint("BEFORE_COMMIT");
            self.barrier().replace_root_key(&new_root, ops).await?;
            crash_failpoint("AFTER_COMMIT");
            CoreResult::Ok(())
        }
        .await;
        if let Err(err) = written {
            // Nothing was written: the store is still the Shamir one.
            self.barrier().seal();
            return Err(err);
        }
        self.migrated(barrier, Some(recovery));
        self.unseal_with_root_key(&new_root).await
    }

    /// Seal migration away from an auto seal, with a quorum of recovery shares (`transition`
    /// held). The disabled seal unwraps the recovery key (the shares must combine into it)
    /// and the root key, which must open the keyring. Then, in one transaction:
    ///
    /// - to Shamir: the recovery key becomes the unseal key (same shares, same threshold,
    ///   as in OpenBao): the root key wrapped under it, the Shamir seal configuration, and
    ///   the removal of the auto seal's records;
    /// - to another auto seal: the root and recovery keys wrapped by the new seal, and its
    ///   seal configuration; the recovery configuration stays.
    ///
    /// The root key and the keyring are unchanged (OpenBao does not rotate them either).
    pub(crate) async fn migrate_from_auto(
        &self,
        shares: &[SecretBytes],
        recovery: &SealConfig,
    ) -> CoreResult<()> {
        let old = self.migration_seal()?.clone();
        let candidate = combine_shares(shares, recovery)?;
        let recovery_key = self.unwrap_with(old.as_ref(), RECOVERY_KEY_PATH).await?;
        if !bool::from(candidate.expose().ct_eq(recovery_key.expose())) {
            return Err(CoreError::InvalidRequest(
                "recovery key verification failed: recovery key does not match submitted values"
                    .to_owned(),
            ));
        }
        let root = self.unwrap_with(old.as_ref(), SEALED_ROOT_KEY_PATH).await?;
        self.barrier().unseal(&root).await.map_err(|e| match e {
            crate::barrier::BarrierError::InvalidRootKey => {
                CoreError::InvalidRequest("unable to retrieve stored keys: invalid key".to_owned())
            }
            other => other.into(),
        })?;
        let written = async {
            let (ops, barrier, recovery_after) = match self.options.seal.as_ref() {
                None => {
                    let barrier =
                        SealConfig::shamir(recovery.secret_shares, recovery.secret_threshold);
                    let ops = vec![
                        TxnOp::Put {
                            key: ROOT_KEY_PATH.to_owned(),
                            value: super::wrap_root_key(&recovery_key, &root)?,
                        },
                        TxnOp::Put {
                            key: SEAL_CONFIG_PATH.to_owned(),
                            value: serde_json::to_vec(&barrier)?,
                        },
                        TxnOp::Delete {
                            key: SEALED_ROOT_KEY_PATH.to_owned(),
                        },
                        TxnOp::Delete {
                            key: RECOVERY_KEY_PATH.to_owned(),
                        },
                        TxnOp::Delete {
                            key: RECOVERY_CONFIG_PATH.to_owned(),
                        },
                    ];
                    (ops, barrier, None)
                }
                Some(new) => {
                    let barrier = SealConfig {
                        kind: new.kind(),
                        secret_shares: 1,
                        secret_threshold: 1,
                    };
                    let ops = vec![
                        TxnOp::Put {
                            key: SEALED_ROOT_KEY_PATH.to_owned(),
                            value: self.seal_encrypt(&root, SEALED_ROOT_KEY_PATH).await?,
                        },
                        TxnOp::Put {
                            key: RECOVERY_KEY_PATH.to_owned(),
                            value: self.seal_encrypt(&recovery_key, RECOVERY_KEY_PATH).await?,
                        },
                        TxnOp::Put {
                            key: SEAL_CONFIG_PATH.to_owned(),
                            value: serde_json::to_vec(&barrier)?,
                        },
                    ];
                    (ops, barrier, Some(*recovery))
                }
            };
            crash_failpoint("BEFORE_COMMIT");
            self.barrier().backend().transaction(ops).await?;
            crash_failpoint("AFTER_COMMIT");
            CoreResult::Ok((barrier, recovery_after))
        }
        .await;
        let (barrier, recovery_after) = match written {
            Ok(configs) => configs,
            Err(err) => {
                // Nothing was written: the store is still sealed by the old seal.
                self.barrier().seal();
                return Err(err);
            }
        };
        self.migrated(barrier, recovery_after);
        self.unseal_with_root_key(&root).await
    }

    /// After the migration's commit: the cached configurations follow the store.
    fn migrated(&self, barrier: SealConfig, recovery: Option<SealConfig>) {
        if let Ok(mut c) = self.recovery_config.write() {
            *c = recovery;
        }
        if let Ok(mut c) = self.seal_config.write() {
            *c = Some(barrier);
        }
        self.migration.finish();
        tracing::info!(
            to = barrier.kind.as_str(),
            "seal migration complete{}",
            match (self.migration.source(), barrier.kind) {
                (Some(SealKind::Shamir), _) =>
                    ": the unseal key shares are now recovery key shares",
                (_, SealKind::Shamir) => ": the recovery key shares are now unseal key shares",
                _ => ": the recovery key shares are unchanged",
            }
        );
    }

    /// Reads a record a seal wrapped and unwraps it with `seal`.
    pub(crate) async fn unwrap_with(
        &self,
        seal: &dyn AutoSeal,
        path: &str,
    ) -> CoreResult<SecretBytes> {
        let blob = self
            .barrier()
            .backend()
            .get(path)
            .await?
            .ok_or_else(|| CoreError::Internal(format!("{path} is missing from storage")))?;
        seal.decrypt(&blob, path)
            .await
            .map_err(|e| CoreError::Seal(e.to_string()))
    }
}

/// Tests of crash safety (debug builds only): with
/// `TRESOR_FAILPOINT_SEAL_MIGRATION_CRASH_<point>` set, the process aborts right before
/// (`BEFORE_COMMIT`) or after (`AFTER_COMMIT`) a seal migration's storage transaction.
/// Release builds contain none of this.
fn crash_failpoint(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os(format!("TRESOR_FAILPOINT_SEAL_MIGRATION_CRASH_{point}")).is_some() {
        tracing::error!(point, "failpoint: aborting during a seal migration");
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tresor_storage::MemoryBackend;

    use super::*;
    use crate::core::CoreOptions;
    use crate::seal::InitRequest;
    use crate::seal::static_key::test_seal as static_seal;

    async fn core_with(
        backend: &Arc<dyn Backend>,
        seal: Option<Arc<dyn AutoSeal>>,
        disabled: Option<Arc<dyn AutoSeal>>,
    ) -> CoreResult<Arc<Core>> {
        Core::new(
            backend.clone(),
            CoreOptions {
                seal,
                migration_seal: disabled,
                ..Default::default()
            },
        )
        .await
    }

    /// An auto-sealed store (static key `byte`) with recovery shares 3/2 and one value.
    async fn auto_store(byte: u8) -> (Arc<dyn Backend>, Vec<SecretBytes>) {
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let core = core_with(&backend, Some(static_seal(byte)), None)
            .await
            .unwrap();
        let init = core
            .initialize(&InitRequest {
                recovery_shares: 3,
                recovery_threshold: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        core.barrier().put("kept", b"value").await.unwrap();
        (backend, init.recovery_keys)
    }

    #[tokio::test]
    async fn auto_to_shamir_turns_recovery_shares_into_unseal_shares() {
        let (backend, recovery) = auto_store(1).await;
        let err = core_with(&backend, None, None).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot seal migrate from \"static\" to Shamir, no disabled seal in configuration: \
             keep the seal \"static\" stanza with disabled = \"true\" to migrate away from it, \
             or configure it as the active seal"
        );

        let core = core_with(&backend, None, Some(static_seal(1)))
            .await
            .unwrap();
        core.start_auto_unseal().await;
        let status = core.seal_status().await;
        assert!(status.sealed && status.migration);
        assert_eq!(status.seal_type, SealKind::Shamir);
        assert!(!status.recovery_seal);
        assert_eq!((status.threshold, status.shares), (2, 3));
        let err = core.unseal(recovery[0].clone()).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "migrate option not provided and seal migration is pending"
        );
        // Shares that combine into something else: refused, nothing written.
        let mut forged = recovery[1].expose().to_vec();
        forged[3] ^= 1;
        core.unseal_with(recovery[0].clone(), true).await.unwrap();
        let err = core
            .unseal_with(SecretBytes::new(forged), true)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("recovery key"), "{err}");
        assert!(core.seal_status().await.migration);
        core.unseal_with(recovery[2].clone(), true).await.unwrap();
        let status = core.unseal_with(recovery[1].clone(), true).await.unwrap();
        assert!(!status.sealed && !status.migration, "{status:?}");
        assert_eq!(status.seal_type, SealKind::Shamir);
        assert_eq!(
            core.barrier().get("kept").await.unwrap().unwrap().expose(),
            b"value"
        );
        for gone in [
            SEALED_ROOT_KEY_PATH,
            RECOVERY_KEY_PATH,
            RECOVERY_CONFIG_PATH,
        ] {
            assert!(backend.get(gone).await.unwrap().is_none(), "{gone}");
        }
        drop(core);

        // A Shamir store now: the recovery shares unseal it, with or without the old stanza.
        for disabled in [None, Some(static_seal(1))] {
            let left_over = disabled.is_some();
            let core = core_with(&backend, None, disabled).await.unwrap();
            let status = core.seal_status().await;
            assert!(status.sealed && !status.migration);
            assert_eq!((status.threshold, status.shares), (2, 3));
            let err = core.unseal_with(recovery[0].clone(), true).await;
            assert_eq!(
                err.is_ok(),
                left_over,
                "migrate accepted only in migration mode"
            );
            core.unseal(recovery[2].clone()).await.unwrap();
            if !left_over {
                core.unseal(recovery[0].clone()).await.unwrap();
            }
            assert!(!core.is_sealed());
        }
    }

    #[tokio::test]
    async fn auto_to_auto_rewraps_the_keys_and_keeps_the_recovery_shares() {
        let (backend, recovery) = auto_store(1).await;
        // Same type, another key: the new seal cannot open the store yet.
        let err = core_with(&backend, Some(static_seal(2)), None).await;
        assert!(
            err.is_ok(),
            "a wrong key is an unseal failure, not a start refusal"
        );
        let core = core_with(&backend, Some(static_seal(2)), Some(static_seal(1)))
            .await
            .unwrap();
        core.start_auto_unseal().await;
        let status = core.seal_status().await;
        assert!(status.sealed && status.migration && status.recovery_seal);
        assert_eq!((status.threshold, status.shares), (2, 3));
        core.unseal_with(recovery[0].clone(), true).await.unwrap();
        core.unseal_with(recovery[1].clone(), true).await.unwrap();
        assert!(!core.is_sealed());
        drop(core);

        // The new seal alone unseals it; the recovery shares still work.
        let core = core_with(&backend, Some(static_seal(2)), None)
            .await
            .unwrap();
        core.start_auto_unseal().await;
        assert!(!core.is_sealed());
        assert_eq!(
            core.barrier().get("kept").await.unwrap().unwrap().expose(),
            b"value"
        );
        core.seal_now().await;
        core.unseal(recovery[2].clone()).await.unwrap();
        core.unseal(recovery[0].clone()).await.unwrap();
        assert!(!core.is_sealed());
        drop(core);

        // The old stanza left in place: migrated, but no unsealing by itself (as OpenBao).
        let core = core_with(&backend, Some(static_seal(2)), Some(static_seal(1)))
            .await
            .unwrap();
        core.start_auto_unseal().await;
        let status = core.seal_status().await;
        assert!(status.sealed && !status.migration);
        core.unseal(recovery[1].clone()).await.unwrap();
        core.unseal(recovery[2].clone()).await.unwrap();
        assert!(!core.is_sealed());
    }

    #[tokio::test]
    async fn a_disabled_stanza_that_is_not_the_stored_seal_is_refused() {
        let (backend, _) = auto_store(1).await;
        let shamir: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let core = core_with(&shamir, None, None).await.unwrap();
        core.initialize(&InitRequest {
            secret_shares: 1,
            secret_threshold: 1,
            ..Default::default()
        })
        .await
        .unwrap();
        drop(core);
        let err = core_with(&shamir, Some(static_seal(1)), Some(static_seal(2)))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("the store is sealed by a shamir seal, but the disabled seal"),
            "{err}"
        );
        assert!(
            core_with(&backend, None, Some(static_seal(1)))
                .await
                .is_ok()
        );
    }
}
