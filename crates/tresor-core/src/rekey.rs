//! Rekeying: replacing the unseal key shares (their number and threshold) without touching the
//! root key or the keyring.
//!
//! A quorum of holders of the *current* shares proves itself first (the combined key must
//! unwrap the stored root key); the server then makes a fresh unseal key, splits it as asked,
//! re-wraps the root key under it, and stores the wrapped root key and the new seal
//! configuration in **one** storage transaction: a crash leaves either the old pair or the new
//! one, never a root key wrapped under a key the stored configuration does not describe.
//!
//! With `require_verification`, the new shares are handed out first and installed only once a
//! threshold of them has been submitted back; cancelling at any point keeps the old shares.
//!
//! Attempts live in memory only (sealing forgets them). There is one slot per
//! [`RekeyApi`] × [`RekeyTarget`]: OpenBao keeps the legacy unauthenticated `sys/rekey/*`
//! attempt apart from the authenticated `sys/rotate/root/*` one, so an unauthenticated caller
//! can never cancel or disturb the authenticated attempt. [`RekeyTarget::Recovery`] replaces
//! the recovery key shares of an auto-unseal seal (`sys/rotate/recovery/*`,
//! `sys/rekey-recovery-key/*`): the quorum is checked against the recovery key, and the new
//! recovery key (wrapped by the seal) and recovery configuration are written in one
//! transaction.

use std::collections::HashMap;

use tokio::sync::Mutex;
use tresor_sdk::secret::SecretBytes;

use crate::barrier::aead;
use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::random;
use crate::seal::{self, SealConfig};

/// Shares shorter than this cannot be a share of a 32-byte key (the legacy API checks it).
const MIN_KEY_LEN: usize = 16;
/// A share of a 32-byte key is 33 bytes.
const MAX_KEY_LEN: usize = seal::KEY_LEN + 1;

/// Which API family an attempt belongs to: their attempts are independent, and their error
/// wording differs (the HTTP layer words [`RekeyError`] per family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RekeyApi {
    /// `sys/rekey/*`: unauthenticated, off unless the listener enables it.
    Legacy,
    /// `sys/rotate/root/*`: authenticated.
    Rotate,
}

/// Which key set is being replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RekeyTarget {
    /// The unseal key shares of the Shamir seal.
    Barrier,
    /// Recovery key shares (auto-unseal seals only; the Shamir seal refuses it with
    /// [`RekeyError::RecoveryUnsupported`]).
    Recovery,
}

/// The parameters of a rekey start, as the caller sent them.
#[derive(Debug, Clone, Default)]
pub struct RekeyRequest {
    pub secret_shares: i64,
    pub secret_threshold: i64,
    pub pgp_keys: Vec<String>,
    pub backup: bool,
    pub require_verification: bool,
}

/// Why a rekey operation was refused. The HTTP layer chooses the status and the wording of the
/// API family; nothing here holds key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RekeyError {
    #[error("invalid seal configuration: {0}")]
    InvalidConfig(String),
    #[error("PGP-encrypted key shares are not supported")]
    PgpUnsupported,
    #[error("recovery keys are not supported by the Shamir seal")]
    RecoveryUnsupported,
    /// Rotating the root key of an auto-unseal seal makes no shares: this option has nothing
    /// to act on (OpenBao refuses it too, with per-family wording).
    #[error("{0:?} is not supported when rotating the root key of an auto-unseal seal")]
    AutoSealOption(AutoSealOption),
    /// The recovery shares of an auto-unseal root rotation do not combine into the recovery
    /// key.
    #[error("recovery key verification failed")]
    RecoveryKeyMismatch,
    #[error("rekey already in progress")]
    AlreadyInProgress,
    /// `update` or `verify` without an attempt.
    #[error("no rekey in progress")]
    NotInProgress,
    /// Reading or resetting the verification without an attempt.
    #[error("no rekey configuration found")]
    NoConfiguration,
    #[error("rekey finished; verification pending (nonce {nonce})")]
    VerificationPending { nonce: String },
    #[error("incorrect nonce (expected {expected})")]
    WrongNonce { expected: String },
    #[error("key already provided")]
    DuplicateKey,
    #[error("key is shorter than minimum {MIN_KEY_LEN} bytes")]
    KeyTooShort,
    #[error("key is longer than maximum {MAX_KEY_LEN} bytes")]
    KeyTooLong,
    /// The submitted shares do not combine (the detail is Go's Shamir wording).
    #[error("failed to compute key: {0}")]
    Combine(String),
    /// The combined key does not unwrap the stored root key.
    #[error("invalid key")]
    InvalidKey,
    #[error("no rekey verification in progress")]
    NoVerification,
    #[error("incorrect verification nonce (expected {expected})")]
    WrongVerificationNonce { expected: String },
    #[error("key already provided during verification")]
    DuplicateVerificationKey,
    #[error("failed to compute key for verification: {0}")]
    VerificationCombine(String),
    /// The new shares submitted to `verify` do not combine into the new key.
    #[error("rekey verification failed; incorrect key shares supplied")]
    VerificationMismatch,
}

/// A start option an auto-unseal root rotation refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoSealOption {
    PgpKeys,
    Backup,
    RequireVerification,
}

/// What `init` (read, start) and an unfinished `update` report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RekeyStatus {
    pub started: bool,
    pub nonce: String,
    /// The new threshold and share count (0 when no attempt runs).
    pub threshold: u8,
    pub shares: u8,
    /// Distinct shares of the current key submitted so far.
    pub progress: usize,
    /// The current threshold: how many current shares complete the attempt.
    pub required: u8,
    pub backup: bool,
    pub verification_required: bool,
    /// Set once the new shares were handed out and wait for verification.
    pub verification_nonce: String,
}

/// The new shares, handed out once.
#[derive(Debug)]
pub struct RekeyResult {
    pub nonce: String,
    pub keys: Vec<SecretBytes>,
    pub backup: bool,
    pub verification_required: bool,
    pub verification_nonce: String,
}

/// The answer of `update`.
#[derive(Debug)]
pub enum RekeyUpdate {
    Progress(RekeyStatus),
    Complete(RekeyResult),
}

/// What `verify` (read, restart) and an unfinished verification `update` report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyStatus {
    pub started: bool,
    pub nonce: String,
    pub threshold: u8,
    pub shares: u8,
    pub progress: usize,
}

/// The answer of a verification `update`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyUpdate {
    Progress(VerifyStatus),
    /// The new shares are installed; `nonce` is the verification nonce that completed.
    Complete {
        nonce: String,
    },
}

/// The in-memory attempts, one per API family and target.
#[derive(Debug, Default)]
pub struct Rekeys {
    attempts: Mutex<HashMap<(RekeyApi, RekeyTarget), Attempt>>,
}

impl Rekeys {
    /// Every attempt, locked; sealing clears them (and so every share and key they hold).
    pub(crate) async fn lock_all(
        &self,
    ) -> tokio::sync::MutexGuard<'_, HashMap<(RekeyApi, RekeyTarget), Attempt>> {
        self.attempts.lock().await
    }
}

/// One attempt. Shares are `SecretBytes`: zeroized when the attempt ends.
#[derive(Debug)]
pub(crate) struct Attempt {
    nonce: String,
    config: SealConfig,
    backup: bool,
    verification_required: bool,
    /// Distinct shares of the current key.
    progress: Vec<SecretBytes>,
    /// Set once the new shares were handed out under `require_verification`.
    pending: Option<Pending>,
}

/// A new key handed out but not installed yet.
#[derive(Debug)]
struct Pending {
    nonce: String,
    unseal_key: SecretBytes,
    /// The root key, unwrapped with the current shares, to re-wrap under `unseal_key`
    /// (barrier rekeys only: a recovery rekey touches no root key).
    root_key: Option<SecretBytes>,
    /// Distinct new shares submitted so far.
    progress: Vec<SecretBytes>,
}

impl Attempt {
    fn status(&self, required: u8) -> RekeyStatus {
        RekeyStatus {
            started: true,
            nonce: self.nonce.clone(),
            threshold: self.config.secret_threshold,
            shares: self.config.secret_shares,
            progress: self.progress.len(),
            required,
            backup: self.backup,
            verification_required: self.verification_required,
            verification_nonce: self
                .pending
                .as_ref()
                .map(|p| p.nonce.clone())
                .unwrap_or_default(),
        }
    }

    fn verify_status(&self) -> VerifyStatus {
        VerifyStatus {
            started: self.pending.is_some(),
            nonce: self
                .pending
                .as_ref()
                .map(|p| p.nonce.clone())
                .unwrap_or_default(),
            threshold: self.config.secret_threshold,
            shares: self.config.secret_shares,
            progress: self.pending.as_ref().map_or(0, |p| p.progress.len()),
        }
    }
}

impl RekeyRequest {
    /// Checks the new configuration as OpenBao's `SealConfig.Validate` does, in its order.
    /// PGP keys are refused after the count check: Tresor does not encrypt shares with OpenPGP.
    pub fn validate(&self) -> Result<SealConfig, RekeyError> {
        let invalid = |m: &str| RekeyError::InvalidConfig(m.to_owned());
        let (n, t) = (self.secret_shares, self.secret_threshold);
        if n < 1 {
            return Err(invalid("shares must be at least one"));
        }
        if t < 1 {
            return Err(invalid("threshold must be at least one"));
        }
        crate::seal::split_limits(n, t).map_err(invalid)?;
        if !self.pgp_keys.is_empty() {
            if self.pgp_keys.len() as i64 != n {
                return Err(invalid(
                    "count mismatch between number of provided PGP keys and number of shares",
                ));
            }
            return Err(RekeyError::PgpUnsupported);
        }
        let shares = u8::try_from(n).map_err(|_| invalid("shares must be less than 256"))?;
        let threshold =
            u8::try_from(t).map_err(|_| invalid("threshold cannot be larger than shares"))?;
        Ok(SealConfig::shamir(shares, threshold))
    }
}

/// Combines shares with Go's wording for failures; one share is the key itself.
fn combine(shares: &[SecretBytes], threshold: u8) -> Result<SecretBytes, String> {
    if threshold == 1 {
        return shares
            .first()
            .cloned()
            .ok_or_else(|| seal::combine_failure(&crate::shamir::ShamirError::TooFewShares));
    }
    let parts: Vec<&[u8]> = shares.iter().map(SecretBytes::expose).collect();
    crate::shamir::combine(&parts).map_err(|e| seal::combine_failure(&e))
}

fn rekey_error(err: RekeyError) -> CoreError {
    CoreError::Rekey(err)
}

impl Core {
    /// Unsealed, initialised, and a target this seal supports; the configuration of the
    /// shares being replaced.
    fn rekey_ready(&self, target: RekeyTarget) -> CoreResult<SealConfig> {
        // Sealed first: an uninitialised server is sealed too, and OpenBao says so.
        self.active()?;
        let config = self.seal_config_value().ok_or(CoreError::NotInitialized)?;
        match target {
            RekeyTarget::Recovery if !config.kind.is_auto() => {
                Err(rekey_error(RekeyError::RecoveryUnsupported))
            }
            RekeyTarget::Recovery => self
                .recovery_config_value()
                .ok_or(CoreError::NotInitialized),
            // The root key of an auto seal rotates with a quorum of recovery shares.
            RekeyTarget::Barrier if config.kind.is_auto() => self
                .recovery_config_value()
                .ok_or(CoreError::NotInitialized),
            RekeyTarget::Barrier => Ok(config),
        }
    }

    /// A root key rotation on an auto-unseal seal: recovery shares in, no shares out.
    fn auto_barrier(&self, target: RekeyTarget) -> bool {
        target == RekeyTarget::Barrier && self.seal_config_value().is_some_and(|c| c.kind.is_auto())
    }

    /// `PUT …/init` of a root rotation on an auto-unseal seal, in OpenBao's order: the rotate
    /// family checks for a running attempt before the options, the legacy one after. The new
    /// configuration is forced (1/1 on `sys/rotate/root`, 0/0 on the legacy `sys/rekey`) and
    /// the requested shares are ignored, as there.
    async fn rekey_start_auto(
        &self,
        api: RekeyApi,
        request: &RekeyRequest,
    ) -> CoreResult<RekeyStatus> {
        let refuse =
            |option| -> CoreResult<()> { Err(rekey_error(RekeyError::AutoSealOption(option))) };
        let check_options = || {
            if !request.pgp_keys.is_empty() {
                return refuse(AutoSealOption::PgpKeys);
            }
            if request.backup {
                return refuse(AutoSealOption::Backup);
            }
            if request.require_verification {
                return refuse(AutoSealOption::RequireVerification);
            }
            Ok(())
        };
        if api == RekeyApi::Legacy {
            check_options()?;
        }
        let current = self.rekey_ready(RekeyTarget::Barrier)?;
        let mut attempts = self.rekeys.attempts.lock().await;
        if attempts.contains_key(&(api, RekeyTarget::Barrier)) {
            return Err(rekey_error(RekeyError::AlreadyInProgress));
        }
        check_options()?;
        let forced = u8::from(api == RekeyApi::Rotate);
        let attempt = Attempt {
            nonce: random::uuid(),
            config: SealConfig::shamir(forced, forced),
            backup: false,
            verification_required: false,
            progress: Vec::new(),
            pending: None,
        };
        let status = attempt.status(current.secret_threshold);
        tracing::info!(nonce = %attempt.nonce, "root key rotation with recovery keys initialized");
        attempts.insert((api, RekeyTarget::Barrier), attempt);
        Ok(status)
    }

    /// `GET …/init`.
    pub async fn rekey_status(
        &self,
        api: RekeyApi,
        target: RekeyTarget,
    ) -> CoreResult<RekeyStatus> {
        let current = self.rekey_ready(target)?;
        let attempts = self.rekeys.attempts.lock().await;
        Ok(match attempts.get(&(api, target)) {
            Some(a) => a.status(current.secret_threshold),
            None => RekeyStatus {
                required: current.secret_threshold,
                ..Default::default()
            },
        })
    }

    /// `PUT …/init`: starts an attempt with a fresh nonce.
    pub async fn rekey_start(
        &self,
        api: RekeyApi,
        target: RekeyTarget,
        request: &RekeyRequest,
    ) -> CoreResult<RekeyStatus> {
        if self.auto_barrier(target) {
            return self.rekey_start_auto(api, request).await;
        }
        // OpenBao validates before it looks at the state.
        let config = request.validate().map_err(rekey_error)?;
        let current = self.rekey_ready(target)?;
        let mut attempts = self.rekeys.attempts.lock().await;
        if attempts.contains_key(&(api, target)) {
            return Err(rekey_error(RekeyError::AlreadyInProgress));
        }
        let attempt = Attempt {
            nonce: random::uuid(),
            config,
            backup: request.backup,
            verification_required: request.require_verification,
            progress: Vec::new(),
            pending: None,
        };
        let status = attempt.status(current.secret_threshold);
        tracing::info!(
            nonce = %attempt.nonce,
            shares = config.secret_shares,
            threshold = config.secret_threshold,
            verification_required = attempt.verification_required,
            "rekey initialized"
        );
        attempts.insert((api, target), attempt);
        Ok(status)
    }

    /// `DELETE …/init`: forgets the attempt, whatever its stage; the current shares stay.
    pub async fn rekey_cancel(&self, api: RekeyApi, target: RekeyTarget) -> CoreResult<()> {
        self.rekey_ready(target)?;
        if self
            .rekeys
            .attempts
            .lock()
            .await
            .remove(&(api, target))
            .is_some()
        {
            tracing::info!("rekey cancelled");
        }
        Ok(())
    }

    /// `PUT …/update`: one share of the current key. At the threshold the shares are checked
    /// against the stored root key and the new shares are made (and installed, unless
    /// verification is required).
    pub async fn rekey_update(
        &self,
        api: RekeyApi,
        target: RekeyTarget,
        key: SecretBytes,
        nonce: &str,
    ) -> CoreResult<RekeyUpdate> {
        let current = self.rekey_ready(target)?;
        check_legacy_key_len(api, &key)?;
        let mut attempts = self.rekeys.attempts.lock().await;
        let Some(attempt) = attempts.get_mut(&(api, target)) else {
            return Err(rekey_error(RekeyError::NotInProgress));
        };
        if let Some(pending) = &attempt.pending {
            return Err(rekey_error(RekeyError::VerificationPending {
                nonce: pending.nonce.clone(),
            }));
        }
        if attempt.nonce != nonce {
            return Err(rekey_error(RekeyError::WrongNonce {
                expected: attempt.nonce.clone(),
            }));
        }
        if attempt.progress.contains(&key) {
            return Err(rekey_error(RekeyError::DuplicateKey));
        }
        attempt.progress.push(key);
        if attempt.progress.len() < usize::from(current.secret_threshold) {
            return Ok(RekeyUpdate::Progress(
                attempt.status(current.secret_threshold),
            ));
        }
        // Whatever happens next, these shares are spent.
        let shares = std::mem::take(&mut attempt.progress);
        let unseal_key = combine(&shares, current.secret_threshold)
            .map_err(|detail| rekey_error(RekeyError::Combine(detail)))?;
        drop(shares);
        if self.auto_barrier(target) {
            self.check_recovery_key(&unseal_key)
                .await
                .map_err(|e| match e {
                    CoreError::Rekey(RekeyError::InvalidKey) => {
                        rekey_error(RekeyError::RecoveryKeyMismatch)
                    }
                    other => other,
                })?;
            self.rotate_auto_root_key().await?;
            let result = RekeyResult {
                nonce: attempt.nonce.clone(),
                keys: Vec::new(),
                backup: false,
                verification_required: false,
                verification_nonce: String::new(),
            };
            attempts.remove(&(api, target));
            return Ok(RekeyUpdate::Complete(result));
        }
        let root_key = match target {
            RekeyTarget::Barrier => Some(self.unwrap_stored_root_key(&unseal_key).await?),
            RekeyTarget::Recovery => {
                self.check_recovery_key(&unseal_key).await?;
                None
            }
        };

        let new_key = SecretBytes::new(random::bytes(seal::KEY_LEN));
        let keys = seal::split_unseal_key(&new_key, &attempt.config)?;
        let mut result = RekeyResult {
            nonce: attempt.nonce.clone(),
            keys,
            backup: attempt.backup,
            verification_required: attempt.verification_required,
            verification_nonce: String::new(),
        };
        if attempt.verification_required {
            let verification_nonce = random::uuid();
            result.verification_nonce = verification_nonce.clone();
            attempt.pending = Some(Pending {
                nonce: verification_nonce,
                unseal_key: new_key,
                root_key,
                progress: Vec::new(),
            });
            tracing::info!("rekey: new shares handed out, awaiting verification");
            return Ok(RekeyUpdate::Complete(result));
        }
        let config = attempt.config;
        self.install_rekeyed(target, &new_key, root_key.as_ref(), config)
            .await?;
        attempts.remove(&(api, target));
        Ok(RekeyUpdate::Complete(result))
    }

    /// `GET …/verify`.
    pub async fn rekey_verify_status(
        &self,
        api: RekeyApi,
        target: RekeyTarget,
    ) -> CoreResult<VerifyStatus> {
        self.rekey_ready(target)?;
        let attempts = self.rekeys.attempts.lock().await;
        attempts
            .get(&(api, target))
            .map(Attempt::verify_status)
            .ok_or(rekey_error(RekeyError::NoConfiguration))
    }

    /// `DELETE …/verify`: forgets the new shares submitted so far and changes the verification
    /// nonce; the attempt and its new key stay.
    pub async fn rekey_verify_restart(
        &self,
        api: RekeyApi,
        target: RekeyTarget,
    ) -> CoreResult<VerifyStatus> {
        self.rekey_ready(target)?;
        let mut attempts = self.rekeys.attempts.lock().await;
        let attempt = attempts
            .get_mut(&(api, target))
            .ok_or(rekey_error(RekeyError::NoConfiguration))?;
        if let Some(pending) = attempt.pending.as_mut() {
            pending.progress.clear();
            pending.nonce = random::uuid();
        }
        Ok(attempt.verify_status())
    }

    /// `PUT …/verify`: one of the new shares. At the new threshold, the combined key must be
    /// the new key; then it is installed. A mismatch keeps the attempt with a new nonce.
    pub async fn rekey_verify(
        &self,
        api: RekeyApi,
        target: RekeyTarget,
        key: SecretBytes,
        nonce: &str,
    ) -> CoreResult<VerifyUpdate> {
        self.rekey_ready(target)?;
        check_legacy_key_len(api, &key)?;
        let mut attempts = self.rekeys.attempts.lock().await;
        let Some(attempt) = attempts.get_mut(&(api, target)) else {
            return Err(rekey_error(RekeyError::NotInProgress));
        };
        let config = attempt.config;
        let Some(pending) = attempt.pending.as_mut() else {
            return Err(rekey_error(RekeyError::NoVerification));
        };
        if pending.nonce != nonce {
            return Err(rekey_error(RekeyError::WrongVerificationNonce {
                expected: pending.nonce.clone(),
            }));
        }
        if pending.progress.contains(&key) {
            return Err(rekey_error(RekeyError::DuplicateVerificationKey));
        }
        pending.progress.push(key);
        if pending.progress.len() < usize::from(config.secret_threshold) {
            return Ok(VerifyUpdate::Progress(attempt.verify_status()));
        }
        let shares = std::mem::take(&mut pending.progress);
        let combined = combine(&shares, config.secret_threshold);
        drop(shares);
        let outcome = match combined {
            Err(detail) => Err(RekeyError::VerificationCombine(detail)),
            Ok(k) if k == pending.unseal_key => Ok(()),
            Ok(_) => Err(RekeyError::VerificationMismatch),
        };
        if let Err(err) = outcome {
            // As OpenBao: a failed verification round starts over under a new nonce.
            pending.nonce = random::uuid();
            tracing::warn!("rekey verification failed");
            return Err(rekey_error(err));
        }
        let completed = pending.nonce.clone();
        self.install_rekeyed(
            target,
            &pending.unseal_key,
            pending.root_key.as_ref(),
            config,
        )
        .await?;
        attempts.remove(&(api, target));
        Ok(VerifyUpdate::Complete { nonce: completed })
    }

    /// Installs the new key of a completed attempt.
    async fn install_rekeyed(
        &self,
        target: RekeyTarget,
        new_key: &SecretBytes,
        root_key: Option<&SecretBytes>,
        config: SealConfig,
    ) -> CoreResult<()> {
        match (target, root_key) {
            (RekeyTarget::Barrier, Some(root_key)) => {
                self.install_unseal_key(new_key, root_key, config).await
            }
            (RekeyTarget::Recovery, _) => self.install_recovery_key(new_key, config).await,
            (RekeyTarget::Barrier, None) => Err(CoreError::Internal(
                "a barrier rekey lost its root key".to_owned(),
            )),
        }
    }

    /// Decrypts `core/root-key` with a candidate unseal key.
    async fn unwrap_stored_root_key(&self, unseal_key: &SecretBytes) -> CoreResult<SecretBytes> {
        let wrapped = self
            .barrier()
            .backend()
            .get(seal::ROOT_KEY_PATH)
            .await?
            .ok_or_else(|| CoreError::Internal("root key missing from storage".to_owned()))?;
        aead::decrypt(unseal_key, seal::ROOT_KEY_PATH, &wrapped)
            .map_err(|_| rekey_error(RekeyError::InvalidKey))
    }
}

/// The legacy endpoints refuse a share of the wrong length up front, with their own errors
/// (OpenBao's wording); `rekey_update` and `rekey_verify` share this check.
fn check_legacy_key_len(api: RekeyApi, key: &SecretBytes) -> CoreResult<()> {
    if api == RekeyApi::Legacy {
        if key.len() < MIN_KEY_LEN {
            return Err(rekey_error(RekeyError::KeyTooShort));
        }
        if key.len() > MAX_KEY_LEN {
            return Err(rekey_error(RekeyError::KeyTooLong));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(n: i64, t: i64) -> RekeyRequest {
        RekeyRequest {
            secret_shares: n,
            secret_threshold: t,
            ..Default::default()
        }
    }

    #[test]
    fn validation_follows_openbao_order_and_wording() {
        let cases = [
            (0, 0, "shares must be at least one"),
            (3, 0, "threshold must be at least one"),
            (
                3,
                1,
                "threshold must be greater than one for multiple shares",
            ),
            (300, 2, "shares must be less than 256"),
            (3, 5, "threshold cannot be larger than shares"),
            (255, 256, "threshold must be less than 256"),
        ];
        for (n, t, msg) in cases {
            assert_eq!(
                req(n, t).validate(),
                Err(RekeyError::InvalidConfig(msg.to_owned())),
                "{n}/{t}"
            );
        }
        for (n, t) in [(1, 1), (3, 2), (255, 255)] {
            let c = req(n, t).validate().unwrap();
            assert_eq!(
                (i64::from(c.secret_shares), i64::from(c.secret_threshold)),
                (n, t)
            );
        }
    }

    #[test]
    fn pgp_keys_are_counted_then_refused() {
        let mut r = req(2, 2);
        r.pgp_keys = vec!["a".into()];
        assert!(
            matches!(r.validate(), Err(RekeyError::InvalidConfig(m)) if m.contains("count mismatch"))
        );
        r.pgp_keys = vec!["a".into(), "b".into()];
        assert_eq!(r.validate(), Err(RekeyError::PgpUnsupported));
    }

    use crate::core::{Core, CoreOptions};
    use crate::seal::InitRequest;
    use std::sync::Arc;

    const B: RekeyTarget = RekeyTarget::Barrier;

    async fn unsealed(n: i64, t: i64) -> (Arc<Core>, Vec<SecretBytes>) {
        let core = Core::new(
            Arc::new(tresor_storage::MemoryBackend::new()),
            CoreOptions::default(),
        )
        .await
        .unwrap();
        let init = core
            .initialize(&InitRequest {
                secret_shares: n,
                secret_threshold: t,
                ..Default::default()
            })
            .await
            .unwrap();
        for k in init.keys.iter().take(t as usize) {
            core.unseal(k.clone()).await.unwrap();
        }
        assert!(!core.is_sealed());
        (core, init.keys)
    }

    fn rekey_err(r: CoreResult<impl std::fmt::Debug>) -> RekeyError {
        match r {
            Err(CoreError::Rekey(e)) => e,
            other => panic!("expected a rekey error, got {other:?}"),
        }
    }

    async fn reunseal(core: &Core, keys: &[SecretBytes]) -> CoreResult<()> {
        core.seal_now().await;
        for k in keys {
            core.unseal(k.clone()).await?;
        }
        if core.is_sealed() {
            return Err(CoreError::Sealed);
        }
        Ok(())
    }

    #[tokio::test]
    async fn rekey_3_of_5_to_2_of_3_replaces_the_shares_and_keeps_the_data() {
        let (core, old) = unsealed(5, 3).await;
        let api = RekeyApi::Rotate;
        core.barrier().put("kept", b"value").await.unwrap();
        let status = core.rekey_start(api, B, &req(3, 2)).await.unwrap();
        assert_eq!(
            (status.shares, status.threshold, status.required),
            (3, 2, 3)
        );
        let nonce = status.nonce;
        for (i, k) in old[..2].iter().enumerate() {
            match core.rekey_update(api, B, k.clone(), &nonce).await.unwrap() {
                RekeyUpdate::Progress(s) => assert_eq!(s.progress, i + 1),
                RekeyUpdate::Complete(_) => panic!("too early"),
            }
        }
        let RekeyUpdate::Complete(result) = core
            .rekey_update(api, B, old[4].clone(), &nonce)
            .await
            .unwrap()
        else {
            panic!("the third share completes");
        };
        assert_eq!(result.keys.len(), 3);
        assert!(!result.verification_required);
        assert_eq!(core.seal_status().await.shares, 3);
        assert_eq!(core.seal_status().await.threshold, 2);
        assert!(!core.rekey_status(api, B).await.unwrap().started);

        assert!(reunseal(&core, &old[..3]).await.is_err(), "old shares");
        reunseal(&core, &result.keys[1..]).await.unwrap();
        assert_eq!(
            core.barrier().get("kept").await.unwrap().unwrap().expose(),
            b"value"
        );
    }

    #[tokio::test]
    async fn nonce_duplicates_and_wrong_shares_are_refused_and_the_attempt_survives() {
        let (core, old) = unsealed(3, 2).await;
        let api = RekeyApi::Rotate;
        assert_eq!(
            rekey_err(core.rekey_update(api, B, old[0].clone(), "x").await),
            RekeyError::NotInProgress
        );
        let nonce = core.rekey_start(api, B, &req(2, 2)).await.unwrap().nonce;
        assert_eq!(
            rekey_err(core.rekey_start(api, B, &req(2, 2)).await),
            RekeyError::AlreadyInProgress
        );
        assert_eq!(
            rekey_err(core.rekey_update(api, B, old[0].clone(), "x").await),
            RekeyError::WrongNonce {
                expected: nonce.clone()
            }
        );
        core.rekey_update(api, B, old[0].clone(), &nonce)
            .await
            .unwrap();
        assert_eq!(
            rekey_err(core.rekey_update(api, B, old[0].clone(), &nonce).await),
            RekeyError::DuplicateKey
        );
        // A share of the right shape (its own x coordinate) that does not belong to the key.
        let mut bytes = old[1].expose().to_vec();
        bytes[0] ^= 1;
        let stranger = SecretBytes::new(bytes);
        assert_eq!(
            rekey_err(core.rekey_update(api, B, stranger, &nonce).await),
            RekeyError::InvalidKey
        );
        let short = SecretBytes::new(vec![9; 20]);
        core.rekey_update(api, B, old[1].clone(), &nonce)
            .await
            .unwrap();
        assert!(matches!(
            rekey_err(core.rekey_update(api, B, short, &nonce).await),
            RekeyError::Combine(d) if d == "all parts must be the same length"
        ));
        let status = core.rekey_status(api, B).await.unwrap();
        assert!(status.started && status.progress == 0);
        // The legacy family checks share lengths up front.
        let legacy = RekeyApi::Legacy;
        let n = core.rekey_start(legacy, B, &req(1, 1)).await.unwrap().nonce;
        assert_eq!(
            rekey_err(
                core.rekey_update(legacy, B, SecretBytes::new(vec![1; 4]), &n)
                    .await
            ),
            RekeyError::KeyTooShort
        );
        assert_eq!(
            rekey_err(
                core.rekey_update(legacy, B, SecretBytes::new(vec![1; 40]), &n)
                    .await
            ),
            RekeyError::KeyTooLong
        );
        // The two families' attempts are independent.
        assert_eq!(core.rekey_status(api, B).await.unwrap().nonce, nonce);
        assert_eq!(
            rekey_err(core.rekey_status(api, RekeyTarget::Recovery).await),
            RekeyError::RecoveryUnsupported
        );
    }

    #[tokio::test]
    async fn verification_installs_the_key_only_after_the_new_shares_come_back() {
        let (core, old) = unsealed(3, 2).await;
        let api = RekeyApi::Rotate;
        let mut request = req(3, 2);
        request.require_verification = true;
        let nonce = core.rekey_start(api, B, &request).await.unwrap().nonce;
        core.rekey_update(api, B, old[0].clone(), &nonce)
            .await
            .unwrap();
        let RekeyUpdate::Complete(result) = core
            .rekey_update(api, B, old[2].clone(), &nonce)
            .await
            .unwrap()
        else {
            panic!("complete");
        };
        assert!(result.verification_required);
        let vnonce = result.verification_nonce.clone();
        assert_eq!(core.seal_status().await.shares, 3, "not installed yet");
        assert!(matches!(
            rekey_err(core.rekey_update(api, B, old[1].clone(), &nonce).await),
            RekeyError::VerificationPending { .. }
        ));
        let new = result.keys;
        let s = core
            .rekey_verify(api, B, new[0].clone(), &vnonce)
            .await
            .unwrap();
        assert!(matches!(s, VerifyUpdate::Progress(ref v) if v.progress == 1));
        assert_eq!(
            rekey_err(core.rekey_verify(api, B, new[0].clone(), &vnonce).await),
            RekeyError::DuplicateVerificationKey
        );
        // Shares that do not combine into the new key: the round restarts with a new nonce.
        let mut wrong = new[1].expose().to_vec();
        wrong[0] ^= 1;
        assert_eq!(
            rekey_err(
                core.rekey_verify(api, B, SecretBytes::new(wrong), &vnonce)
                    .await
            ),
            RekeyError::VerificationMismatch
        );
        let v = core.rekey_verify_status(api, B).await.unwrap();
        assert!(v.started && v.progress == 0 && v.nonce != vnonce);
        let restarted = core.rekey_verify_restart(api, B).await.unwrap();
        assert_ne!(restarted.nonce, v.nonce);
        core.rekey_verify(api, B, new[2].clone(), &restarted.nonce)
            .await
            .unwrap();
        let done = core
            .rekey_verify(api, B, new[1].clone(), &restarted.nonce)
            .await
            .unwrap();
        assert_eq!(
            done,
            VerifyUpdate::Complete {
                nonce: restarted.nonce
            }
        );
        assert!(reunseal(&core, &old[..2]).await.is_err());
        reunseal(&core, &new[..2]).await.unwrap();
    }

    #[tokio::test]
    async fn cancelling_or_sealing_keeps_the_old_shares() {
        let (core, old) = unsealed(3, 2).await;
        let api = RekeyApi::Rotate;
        let mut request = req(2, 2);
        request.require_verification = true;
        let nonce = core.rekey_start(api, B, &request).await.unwrap().nonce;
        core.rekey_update(api, B, old[0].clone(), &nonce)
            .await
            .unwrap();
        core.rekey_update(api, B, old[1].clone(), &nonce)
            .await
            .unwrap();
        core.rekey_cancel(api, B).await.unwrap();
        assert_eq!(
            rekey_err(core.rekey_verify_status(api, B).await),
            RekeyError::NoConfiguration
        );
        core.rekey_start(api, B, &req(2, 2)).await.unwrap();
        core.seal_now().await;
        assert!(matches!(
            core.rekey_status(api, B).await,
            Err(CoreError::Sealed)
        ));
        reunseal(&core, &old[1..]).await.unwrap();
        assert!(
            !core.rekey_status(api, B).await.unwrap().started,
            "sealing forgot it"
        );
    }

    #[test]
    fn combine_with_one_share_is_the_share() {
        let k = SecretBytes::new(vec![7; 32]);
        assert_eq!(combine(std::slice::from_ref(&k), 1).unwrap(), k);
    }
}
