//! Unsealing with an auto-unseal seal: the stored keys at start (retried in the background
//! while the seal fails), recovery shares, and the recovery records written by `sys/init`.

use std::sync::Arc;
use std::time::Duration;

use subtle::ConstantTimeEq;
use tresor_sdk::secret::SecretBytes;
use tresor_storage::{Backend, TxnOp};

use super::auto::{AutoSeal, SealKind};
use super::{
    RECOVERY_CONFIG_PATH, RECOVERY_KEY_PATH, SEALED_ROOT_KEY_PATH, SealConfig, combine_shares,
    split_unseal_key,
};
use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::random;

/// First retry after a failed auto-unseal; doubled after each failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Refuses a configuration that does not match what the store was initialised with, before
/// anything starts: unsealing with the wrong seal can only fail, and silently ignoring the
/// stanza would leave an operator believing the server auto-unseals.
pub(crate) fn check_configured_seal(
    stored: Option<&SealConfig>,
    configured: Option<&dyn AutoSeal>,
) -> CoreResult<()> {
    let Some(stored) = stored else {
        return Ok(());
    };
    let configured_kind = configured.map_or(SealKind::Shamir, AutoSeal::kind);
    if stored.kind == configured_kind {
        return Ok(());
    }
    // As in OpenBao, migrating away from Shamir needs no disabled stanza: the store is
    // migrated by `sys/unseal` with `migrate` and the unseal key shares.
    if stored.kind == SealKind::Shamir {
        tracing::warn!(
            to = configured_kind.as_str(),
            "entering seal migration mode: unseal with the unseal keys and migrate=true"
        );
        return Ok(());
    }
    Err(CoreError::SealMismatch(
        if configured_kind == SealKind::Shamir {
            format!(
                "the store is sealed by a {} seal but the configuration has no seal stanza: add the \
             seal \"{}\" stanza back (seal migration to Shamir is not supported yet)",
                stored.kind, stored.kind
            )
        } else {
            format!(
                "the store is sealed by a {} seal but the configuration has a seal \"{}\" stanza \
             (seal migration is not supported yet)",
                stored.kind, configured_kind
            )
        },
    ))
}

impl Core {
    /// A Shamir store under a configured auto-unseal seal: `sys/unseal` must say `migrate`.
    pub(crate) fn migration_pending(&self) -> bool {
        self.seal_config_value()
            .is_some_and(|c| c.kind == SealKind::Shamir)
            && self.configured_seal_kind().is_auto()
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
            .get(super::ROOT_KEY_PATH)
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
                    key: super::SEAL_CONFIG_PATH.to_owned(),
                    value: serde_json::to_vec(&barrier)?,
                },
                TxnOp::Delete {
                    key: super::ROOT_KEY_PATH.to_owned(),
                },
            ];
            self.barrier().replace_root_key(&new_root, ops).await?;
            CoreResult::Ok(())
        }
        .await;
        if let Err(err) = written {
            // Nothing was written: the store is still the Shamir one.
            self.barrier().seal();
            return Err(err);
        }
        if let Ok(mut c) = self.recovery_config.write() {
            *c = Some(recovery);
        }
        if let Ok(mut c) = self.seal_config.write() {
            *c = Some(barrier);
        }
        tracing::info!(
            to = kind.as_str(),
            "seal migration complete: the unseal key shares are now recovery key shares"
        );
        self.unseal_with_root_key(&new_root).await
    }

    /// The seal type `sys/init` would set up: the configured auto-unseal seal's, or Shamir.
    pub(crate) fn configured_seal_kind(&self) -> SealKind {
        self.options
            .seal
            .as_ref()
            .map_or(SealKind::Shamir, |s| s.kind())
    }

    pub(crate) fn recovery_config_value(&self) -> Option<SealConfig> {
        self.recovery_config.read().ok().and_then(|c| *c)
    }

    /// The configuration of the shares operators hold: recovery shares with an auto-unseal
    /// seal, unseal key shares otherwise.
    pub(crate) fn quorum_config(&self) -> Option<SealConfig> {
        let barrier = self.seal_config_value()?;
        if barrier.kind.is_auto() {
            self.recovery_config_value()
        } else {
            Some(barrier)
        }
    }

    fn auto_seal(&self) -> CoreResult<&Arc<dyn AutoSeal>> {
        self.options
            .seal
            .as_ref()
            .ok_or_else(|| CoreError::Internal("no auto-unseal seal is configured".to_owned()))
    }

    /// `sys/init` with an auto-unseal seal: the recovery configuration and, with shares, a
    /// fresh recovery key wrapped by the seal, as storage operations for the final
    /// transaction; and the shares to hand out.
    pub(crate) async fn recovery_records(
        &self,
        recovery: &SealConfig,
    ) -> CoreResult<(Vec<TxnOp>, Vec<SecretBytes>)> {
        let mut ops = vec![TxnOp::Put {
            key: RECOVERY_CONFIG_PATH.to_owned(),
            value: serde_json::to_vec(recovery)?,
        }];
        if recovery.secret_shares == 0 {
            return Ok((ops, Vec::new()));
        }
        let key = SecretBytes::new(random::bytes(super::KEY_LEN));
        let shares = split_unseal_key(&key, recovery)?;
        ops.push(TxnOp::Put {
            key: RECOVERY_KEY_PATH.to_owned(),
            value: self.seal_encrypt(&key, RECOVERY_KEY_PATH).await?,
        });
        Ok((ops, shares))
    }

    pub(crate) async fn seal_encrypt(&self, key: &SecretBytes, path: &str) -> CoreResult<Vec<u8>> {
        self.auto_seal()?
            .encrypt(key, path)
            .await
            .map_err(|e| CoreError::Seal(e.to_string()))
    }

    /// Unseals with the root key the seal wraps. A no-op when unsealed or when the store is
    /// sealed by Shamir.
    pub async fn unseal_with_stored_keys(&self) -> CoreResult<()> {
        let _progress = self.transition.lock().await;
        let Some(config) = self.seal_config_value() else {
            return Err(CoreError::NotInitialized);
        };
        if !config.kind.is_auto() || !self.is_sealed() {
            return Ok(());
        }
        self.unseal_with_stored_keys_locked().await
    }

    /// As [`Core::unseal_with_stored_keys`], with `transition` held by the caller.
    async fn unseal_with_stored_keys_locked(&self) -> CoreResult<()> {
        let root_key = self.stored_key(SEALED_ROOT_KEY_PATH).await?;
        self.unseal_with_root_key(&root_key).await
    }

    /// Reads a record the seal wrapped and unwraps it.
    async fn stored_key(&self, path: &str) -> CoreResult<SecretBytes> {
        let blob = self
            .barrier()
            .backend()
            .get(path)
            .await?
            .ok_or_else(|| CoreError::Internal(format!("{path} is missing from storage")))?;
        self.auto_seal()?
            .decrypt(&blob, path)
            .await
            .map_err(|e| CoreError::Seal(e.to_string()))
    }

    /// Checks recovery shares: they must combine into the recovery key the seal wraps.
    pub(crate) async fn verify_recovery_shares(
        &self,
        shares: &[SecretBytes],
        config: &SealConfig,
    ) -> CoreResult<()> {
        let candidate = combine_shares(shares, config)?;
        let stored = self.stored_key(RECOVERY_KEY_PATH).await?;
        if bool::from(candidate.expose().ct_eq(stored.expose())) {
            Ok(())
        } else {
            Err(CoreError::InvalidRequest(
                "recovery key verification failed: recovery key does not match submitted values"
                    .to_owned(),
            ))
        }
    }

    /// A recovery rekey's quorum: the combined shares must be the recovery key.
    pub(crate) async fn check_recovery_key(&self, candidate: &SecretBytes) -> CoreResult<()> {
        let stored = self.stored_key(RECOVERY_KEY_PATH).await?;
        if bool::from(candidate.expose().ct_eq(stored.expose())) {
            Ok(())
        } else {
            Err(CoreError::Rekey(crate::rekey::RekeyError::InvalidKey))
        }
    }

    /// Installs a rekeyed recovery key: wrapped by the seal, written with the new recovery
    /// configuration in one transaction (a crash leaves the old pair or the new one).
    pub(crate) async fn install_recovery_key(
        &self,
        key: &SecretBytes,
        config: SealConfig,
    ) -> CoreResult<()> {
        let _transition = self.transition.lock().await;
        self.active()?;
        let wrapped = self.seal_encrypt(key, RECOVERY_KEY_PATH).await?;
        self.barrier()
            .backend()
            .transaction(vec![
                TxnOp::Put {
                    key: RECOVERY_KEY_PATH.to_owned(),
                    value: wrapped,
                },
                TxnOp::Put {
                    key: RECOVERY_CONFIG_PATH.to_owned(),
                    value: serde_json::to_vec(&config)?,
                },
            ])
            .await?;
        if let Ok(mut c) = self.recovery_config.write() {
            *c = Some(config);
        }
        tracing::info!(
            shares = config.secret_shares,
            threshold = config.secret_threshold,
            "recovery key rekeyed"
        );
        Ok(())
    }

    /// `sys/unseal` on an auto-unseal server: a quorum of recovery shares, then the stored
    /// keys. Called with `transition` held.
    pub(crate) async fn unseal_with_recovery_shares(
        &self,
        shares: &[SecretBytes],
        config: &SealConfig,
    ) -> CoreResult<()> {
        self.verify_recovery_shares(shares, config).await?;
        self.unseal_with_stored_keys_locked().await
    }

    /// The quorum check of generate-root: unseal key shares unwrap the stored root key;
    /// recovery shares must match the recovery key.
    pub(crate) async fn verify_quorum_shares(
        &self,
        shares: &[SecretBytes],
        config: &SealConfig,
    ) -> CoreResult<()> {
        if self.seal_config_value().is_some_and(|c| c.kind.is_auto()) {
            self.verify_recovery_shares(shares, config).await
        } else {
            self.verify_unseal_shares(shares, config).await
        }
    }

    /// Tries the stored keys now and, while the seal fails, again in the background with a
    /// growing delay, logging each failure with the seal's name and the reason. The failure
    /// is also reported by `sys/seal-status` (`warnings`). Returns after the first attempt.
    pub async fn start_auto_unseal(&self) {
        let Some(seal) = self.options.seal.clone() else {
            return;
        };
        if self.attempt_auto_unseal(seal.as_ref()).await {
            return;
        }
        let weak = self.weak();
        tokio::spawn(async move {
            let mut delay = FIRST_BACKOFF;
            loop {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_BACKOFF);
                let Some(core) = weak.upgrade() else { return };
                if core.attempt_auto_unseal(seal.as_ref()).await {
                    return;
                }
            }
        });
    }

    /// One attempt; `true` when nothing is left to retry (unsealed, or nothing to do).
    async fn attempt_auto_unseal(&self, seal: &dyn AutoSeal) -> bool {
        if !self.seal_config_value().is_some_and(|c| c.kind.is_auto()) {
            return true;
        }
        if !self.is_sealed() {
            return true;
        }
        match self.unseal_with_stored_keys().await {
            Ok(()) => {
                if let Ok(mut e) = self.seal_error.write() {
                    *e = None;
                }
                tracing::info!(seal = %seal.describe(), "unsealed with the auto-unseal seal");
                true
            }
            Err(err) => {
                let message = format!("auto-unseal failed, retrying: {err}");
                tracing::error!(
                    seal = %seal.describe(),
                    error = %err,
                    "auto-unseal failed: the server stays sealed and retries"
                );
                if let Ok(mut e) = self.seal_error.write() {
                    *e = Some(message);
                }
                false
            }
        }
    }
}

/// Whether the store holds keys an auto-unseal seal wrapped (for tests and diagnostics).
pub async fn has_sealed_root_key(backend: &dyn Backend) -> CoreResult<bool> {
    Ok(backend.get(SEALED_ROOT_KEY_PATH).await?.is_some())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::CoreOptions;
    use crate::rekey::{RekeyApi, RekeyError, RekeyRequest, RekeyTarget, RekeyUpdate};
    use crate::seal::{InitRequest, StaticKey, StaticSeal};

    fn static_seal(byte: u8) -> Arc<dyn AutoSeal> {
        Arc::new(
            StaticSeal::new(
                StaticKey {
                    id: "k1".to_owned(),
                    key: SecretBytes::new(vec![byte; 32]),
                },
                None,
            )
            .unwrap(),
        )
    }

    async fn auto_core(
        backend: Arc<dyn tresor_storage::Backend>,
        seal: Arc<dyn AutoSeal>,
    ) -> CoreResult<Arc<Core>> {
        Core::new(
            backend,
            CoreOptions {
                seal: Some(seal),
                ..Default::default()
            },
        )
        .await
    }

    #[tokio::test]
    async fn an_auto_sealed_core_unseals_itself_and_recovery_shares_do_the_rest() {
        let backend: Arc<dyn tresor_storage::Backend> =
            Arc::new(tresor_storage::MemoryBackend::new());
        let core = auto_core(backend.clone(), static_seal(1)).await.unwrap();
        let init = core
            .initialize(&InitRequest {
                recovery_shares: 3,
                recovery_threshold: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(init.keys.is_empty());
        assert_eq!(init.recovery_keys.len(), 3);
        assert!(!core.is_sealed(), "unsealed by the seal right after init");
        let status = core.seal_status().await;
        assert_eq!(status.seal_type, SealKind::Static);
        assert!(status.recovery_seal);
        assert_eq!((status.shares, status.threshold), (3, 2));
        assert!(has_sealed_root_key(backend.as_ref()).await.unwrap());
        assert!(
            backend
                .get(super::super::ROOT_KEY_PATH)
                .await
                .unwrap()
                .is_none()
        );
        core.barrier().put("kept", b"value").await.unwrap();

        // A manual seal: recovery shares unseal; a share that does not belong is refused.
        core.seal_now().await;
        let mut forged = init.recovery_keys[1].expose().to_vec();
        forged[0] ^= 1;
        core.unseal(init.recovery_keys[0].clone()).await.unwrap();
        let err = core.unseal(SecretBytes::new(forged)).await.unwrap_err();
        assert!(err.to_string().contains("recovery key"), "{err}");
        assert!(core.is_sealed());
        core.unseal(init.recovery_keys[2].clone()).await.unwrap();
        core.unseal(init.recovery_keys[0].clone()).await.unwrap();
        assert!(!core.is_sealed());

        // Recovery rekey 3/2 → 2/2; the barrier target has no shares with an auto seal.
        let api = RekeyApi::Rotate;
        let request = RekeyRequest {
            secret_shares: 2,
            secret_threshold: 2,
            ..Default::default()
        };
        assert!(matches!(
            core.rekey_start(api, RekeyTarget::Barrier, &request).await,
            Err(CoreError::Rekey(RekeyError::AutoSealBarrier))
        ));
        let nonce = core
            .rekey_start(api, RekeyTarget::Recovery, &request)
            .await
            .unwrap()
            .nonce;
        core.rekey_update(
            api,
            RekeyTarget::Recovery,
            init.recovery_keys[1].clone(),
            &nonce,
        )
        .await
        .unwrap();
        let RekeyUpdate::Complete(result) = core
            .rekey_update(
                api,
                RekeyTarget::Recovery,
                init.recovery_keys[2].clone(),
                &nonce,
            )
            .await
            .unwrap()
        else {
            panic!("the second share completes");
        };
        assert_eq!(result.keys.len(), 2);
        assert_eq!(core.seal_status().await.shares, 2);

        // A restart with the same seal: unsealed with no shares; old recovery shares are spent.
        drop(core);
        let core = auto_core(backend.clone(), static_seal(1)).await.unwrap();
        assert!(core.is_sealed());
        core.start_auto_unseal().await;
        assert!(!core.is_sealed());
        assert_eq!(
            core.barrier().get("kept").await.unwrap().unwrap().expose(),
            b"value"
        );
        core.seal_now().await;
        core.unseal(init.recovery_keys[0].clone()).await.unwrap();
        assert!(core.unseal(init.recovery_keys[1].clone()).await.is_err());
        for k in &result.keys {
            core.unseal(k.clone()).await.unwrap();
        }
        assert!(!core.is_sealed());
    }

    #[tokio::test]
    async fn a_failing_seal_leaves_the_core_sealed_with_the_reason_and_a_mismatch_is_refused() {
        let backend: Arc<dyn tresor_storage::Backend> =
            Arc::new(tresor_storage::MemoryBackend::new());
        let core = auto_core(backend.clone(), static_seal(1)).await.unwrap();
        core.initialize(&InitRequest::default()).await.unwrap();
        assert!(!core.is_sealed(), "0 recovery shares is allowed");
        drop(core);

        let core = auto_core(backend.clone(), static_seal(2)).await.unwrap();
        core.start_auto_unseal().await;
        assert!(core.is_sealed());
        let status = core.seal_status().await;
        let reason = status.seal_error.unwrap();
        assert!(reason.contains("static seal"), "{reason}");
        assert!(reason.contains("message authentication failed"), "{reason}");
        drop(core);

        let err = Core::new(backend, CoreOptions::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no seal stanza"), "{err}");
    }
}
