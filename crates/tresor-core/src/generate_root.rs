//! `sys/generate-root`: a quorum of unseal-key holders mints a new root token, so operators
//! can revoke the initial root token after setup and still recover later.
//!
//! The token is handed back XORed with a one-time pad the server generated when the attempt
//! started and showed only to whoever started it, so key holders submitting shares never see
//! it. Decoding: `token = base64decode(encoded) XOR otp`.

use base64::Engine;
use tokio::sync::Mutex;
use tresor_sdk::secret::{SecretBytes, SecretString};

use crate::core::{Core, create_root_token};
use crate::error::{CoreError, CoreResult};
use crate::random;
use crate::seal::{self, UnsealProgress};

/// The length of every token this server mints (`s.` + 33), and so of the pad.
pub const OTP_LENGTH: usize = 2 + 33;

/// The state of a generate-root attempt.
#[derive(Debug, Default)]
pub struct GenerateRoot {
    attempt: Mutex<Option<Attempt>>,
}

#[derive(Debug)]
struct Attempt {
    nonce: String,
    otp: SecretString,
    shares: UnsealProgress,
    encoded: Option<String>,
}

/// What `sys/generate-root/attempt` and `/update` report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateRootStatus {
    pub started: bool,
    pub nonce: String,
    pub progress: usize,
    pub required: u8,
    pub complete: bool,
    pub encoded_token: String,
    /// Only in the answer that started the attempt.
    pub otp: Option<String>,
    pub otp_length: usize,
}

/// Decodes an encoded root token with its one-time pad (what `operator generate-root -decode`
/// does on the client).
pub fn decode_token(encoded: &str, otp: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    if bytes.len() != otp.len() {
        return None;
    }
    let plain: Vec<u8> = bytes
        .iter()
        .zip(otp.as_bytes())
        .map(|(a, b)| a ^ b)
        .collect();
    String::from_utf8(plain).ok()
}

impl Core {
    fn generate_root_status(
        &self,
        attempt: Option<&Attempt>,
        otp: Option<String>,
    ) -> GenerateRootStatus {
        let required = self.quorum_config().map_or(0, |c| c.secret_threshold);
        match attempt {
            None => GenerateRootStatus {
                started: false,
                nonce: String::new(),
                progress: 0,
                required,
                complete: false,
                encoded_token: String::new(),
                otp,
                otp_length: OTP_LENGTH,
            },
            Some(a) => GenerateRootStatus {
                started: true,
                nonce: a.nonce.clone(),
                progress: a.shares.progress(),
                required,
                complete: a.encoded.is_some(),
                encoded_token: a.encoded.clone().unwrap_or_default(),
                otp,
                otp_length: OTP_LENGTH,
            },
        }
    }

    pub async fn generate_root_read(&self) -> CoreResult<GenerateRootStatus> {
        self.require_unsealed_and_initialized()?;
        let attempt = self.generate_root.attempt.lock().await;
        Ok(self.generate_root_status(attempt.as_ref(), None))
    }

    /// Starts an attempt; the answer carries the one-time pad, once.
    pub async fn generate_root_start(&self) -> CoreResult<GenerateRootStatus> {
        self.require_unsealed_and_initialized()?;
        let mut attempt = self.generate_root.attempt.lock().await;
        if attempt.is_some() {
            return Err(CoreError::InvalidRequest(
                "root generation already in progress for this namespace".to_owned(),
            ));
        }
        let otp = random::base62(OTP_LENGTH);
        let fresh = Attempt {
            nonce: random::uuid(),
            otp: SecretString::new(otp.clone()),
            shares: UnsealProgress::default(),
            encoded: None,
        };
        let status = self.generate_root_status(Some(&fresh), Some(otp));
        *attempt = Some(fresh);
        Ok(status)
    }

    pub async fn generate_root_cancel(&self) -> CoreResult<()> {
        self.require_unsealed_and_initialized()?;
        *self.generate_root.attempt.lock().await = None;
        Ok(())
    }

    /// Adds one unseal key share; at the threshold, verifies the key and mints the token.
    pub async fn generate_root_update(
        &self,
        key: SecretBytes,
        nonce: &str,
    ) -> CoreResult<GenerateRootStatus> {
        self.require_unsealed_and_initialized()?;
        // With an auto-unseal seal, recovery shares authorise a new root token.
        let config = self.quorum_config().ok_or(CoreError::NotInitialized)?;
        let mut guard = self.generate_root.attempt.lock().await;
        let Some(attempt) = guard.as_mut() else {
            return Err(CoreError::InvalidRequest(
                "no root generation in progress".to_owned(),
            ));
        };
        if attempt.nonce != nonce {
            return Err(CoreError::InvalidRequest(format!(
                "incorrect nonce supplied; nonce for this root generation operation is {:?}",
                attempt.nonce
            )));
        }
        if attempt.encoded.is_some() {
            return Ok(self.generate_root_status(Some(attempt), None));
        }
        attempt.shares.add(key);
        if attempt.shares.progress() < usize::from(config.secret_threshold) {
            return Ok(self.generate_root_status(Some(attempt), None));
        }
        let verified = self
            .verify_quorum_shares(attempt.shares.shares(), &config)
            .await;
        attempt.shares.reset();
        verified?;
        let active = self.active()?;
        let token = create_root_token(&active.tokens, None, "auth/token/root", "root").await?;
        let encoded: Vec<u8> = token
            .expose()
            .as_bytes()
            .iter()
            .zip(attempt.otp.expose().as_bytes())
            .map(|(a, b)| a ^ b)
            .collect();
        attempt.encoded = Some(base64::engine::general_purpose::STANDARD.encode(encoded));
        tracing::warn!("a new root token was generated through sys/generate-root");
        Ok(self.generate_root_status(Some(attempt), None))
    }

    /// Checks that shares combine into the unseal key by unwrapping the stored root key.
    pub(crate) async fn verify_unseal_shares(
        &self,
        shares: &[SecretBytes],
        config: &seal::SealConfig,
    ) -> CoreResult<()> {
        let unseal_key = seal::combine_shares(shares, config)?;
        let wrapped = self
            .barrier()
            .backend()
            .get(seal::ROOT_KEY_PATH)
            .await?
            .ok_or_else(|| CoreError::Internal("root key missing from storage".to_owned()))?;
        seal::unwrap_root_key(&unseal_key, &wrapped).map(|_| ())
    }

    /// OpenBao 2.7 answers `Vault is sealed` (503) before anything else, an uninitialised
    /// server included.
    fn require_unsealed_and_initialized(&self) -> CoreResult<()> {
        self.active().map(|_| ())
    }
}
