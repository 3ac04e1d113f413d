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

impl Core {
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
        if self.migration_pending() {
            return Err(CoreError::InvalidRequest(
                "cannot auto-unseal during seal migration".to_owned(),
            ));
        }
        self.unseal_with_stored_keys_locked().await
    }

    /// As [`Core::unseal_with_stored_keys`], with `transition` held by the caller.
    async fn unseal_with_stored_keys_locked(&self) -> CoreResult<()> {
        let root_key = self.stored_key(SEALED_ROOT_KEY_PATH).await?;
        self.unseal_with_root_key(&root_key).await
    }

    /// Reads a record the seal wrapped and unwraps it: with the old (disabled) seal while a
    /// migration away from it is pending, with the configured one otherwise.
    pub(crate) async fn stored_key(&self, path: &str) -> CoreResult<SecretBytes> {
        let seal = match self.migration_from() {
            Some(from) if from.is_auto() => self.migration_seal()?,
            _ => self.auto_seal()?,
        };
        self.unwrap_with(seal.as_ref(), path).await
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
        // As in OpenBao, a server in seal migration mode waits for the operators.
        if self.in_migration_mode() {
            return;
        }
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
    use crate::seal::InitRequest;
    use crate::seal::static_key::test_seal as static_seal;

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

        // Recovery rekey 3/2 → 2/2; a root rotation makes no shares and refuses verification.
        let api = RekeyApi::Rotate;
        let request = RekeyRequest {
            secret_shares: 2,
            secret_threshold: 2,
            ..Default::default()
        };
        let verified = RekeyRequest {
            require_verification: true,
            ..request.clone()
        };
        assert!(matches!(
            core.rekey_start(api, RekeyTarget::Barrier, &verified).await,
            Err(CoreError::Rekey(RekeyError::AutoSealOption(_)))
        ));
        let rotation = core
            .rekey_start(api, RekeyTarget::Barrier, &request)
            .await
            .unwrap();
        assert_eq!((rotation.shares, rotation.required), (1, 2));
        core.rekey_cancel(api, RekeyTarget::Barrier).await.unwrap();
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

        // A root rotation with the new recovery shares: a new root key the seal wraps, the
        // keyring re-encrypted under it; wrong shares are refused first.
        let sealed_before = backend.get(SEALED_ROOT_KEY_PATH).await.unwrap();
        let keyring_before = backend.get("core/keyring").await.unwrap();
        let nonce = core
            .rekey_start(api, RekeyTarget::Barrier, &request)
            .await
            .unwrap()
            .nonce;
        let mut forged = result.keys[0].expose().to_vec();
        forged[0] ^= 1;
        core.rekey_update(api, RekeyTarget::Barrier, SecretBytes::new(forged), &nonce)
            .await
            .unwrap();
        assert!(matches!(
            core.rekey_update(api, RekeyTarget::Barrier, result.keys[1].clone(), &nonce)
                .await,
            Err(CoreError::Rekey(RekeyError::RecoveryKeyMismatch))
        ));
        core.rekey_update(api, RekeyTarget::Barrier, result.keys[0].clone(), &nonce)
            .await
            .unwrap();
        let RekeyUpdate::Complete(rotated) = core
            .rekey_update(api, RekeyTarget::Barrier, result.keys[1].clone(), &nonce)
            .await
            .unwrap()
        else {
            panic!("the second recovery share completes the rotation");
        };
        assert!(rotated.keys.is_empty());
        assert_ne!(
            backend.get(SEALED_ROOT_KEY_PATH).await.unwrap(),
            sealed_before
        );
        assert_ne!(backend.get("core/keyring").await.unwrap(), keyring_before);
        assert_eq!(
            core.barrier().get("kept").await.unwrap().unwrap().expose(),
            b"value"
        );

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
        assert!(err.to_string().contains("no disabled seal"), "{err}");
    }
}
