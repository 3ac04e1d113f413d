//! The seal configuration and the validation of `sys/init` requests.

use serde::{Deserialize, Serialize};

use super::auto::SealKind;
use crate::error::{CoreError, CoreResult};

/// Persisted (in plaintext, it holds no secret) at `core/seal-config` (the barrier seal) and,
/// with an auto-unseal seal, at `core/recovery-config` (the recovery key shares, whose type is
/// always `shamir`). Records written before auto-unseal existed have no `type`: Shamir.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct SealConfig {
    #[serde(rename = "type", default)]
    pub kind: SealKind,
    pub secret_shares: u8,
    pub secret_threshold: u8,
}

impl SealConfig {
    pub fn shamir(secret_shares: u8, secret_threshold: u8) -> Self {
        Self {
            kind: SealKind::Shamir,
            secret_shares,
            secret_threshold,
        }
    }
}

/// What `sys/init` sets up: the barrier seal's configuration and, with an auto-unseal seal,
/// the recovery key configuration (possibly 0 shares: no recovery keys at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitConfig {
    pub barrier: SealConfig,
    pub recovery: Option<SealConfig>,
}

/// The parameters of `sys/init`, as the caller sent them.
#[derive(Debug, Clone, Default)]
pub struct InitRequest {
    pub secret_shares: i64,
    pub secret_threshold: i64,
    pub pgp_keys: Vec<String>,
    pub root_token_pgp_key: String,
    pub recovery_shares: i64,
    pub recovery_threshold: i64,
    pub recovery_pgp_keys: Vec<String>,
    /// Accepted and ignored, as OpenBao does for the Shamir seal.
    pub stored_shares: i64,
}

impl InitRequest {
    /// Checks the request the way OpenBao does for the seal in use, with its messages.
    pub fn validate_for(&self, seal: SealKind) -> CoreResult<InitConfig> {
        if seal.is_auto() {
            return self.validate_auto(seal);
        }
        Ok(InitConfig {
            barrier: self.validate()?,
            recovery: None,
        })
    }

    /// With an auto-unseal seal the barrier takes no share parameters (OpenBao's
    /// `validateInitParameters`), and the recovery configuration follows `ValidateRecovery`:
    /// zero shares are allowed (no recovery keys).
    fn validate_auto(&self, seal: SealKind) -> CoreResult<InitConfig> {
        let mut barrier = Vec::new();
        if self.secret_shares != 0 {
            barrier.push("secret_shares");
        }
        if self.secret_threshold != 0 {
            barrier.push("secret_threshold");
        }
        if !self.pgp_keys.is_empty() {
            barrier.push("pgp_keys");
        }
        if !barrier.is_empty() {
            return Err(CoreError::InvalidRequest(format!(
                "parameters {} not applicable to seal type {seal}",
                barrier.join(",")
            )));
        }
        let invalid =
            |msg: &str| CoreError::InvalidRequest(format!("invalid recovery configuration: {msg}"));
        let (n, t) = (self.recovery_shares, self.recovery_threshold);
        split_limits(n, t).map_err(invalid)?;
        // OpenBao accepts negative counts here (and makes no recovery key); Tresor refuses
        // them, after OpenBao's own checks so their messages come first.
        if n < 0 || t < 0 {
            return Err(invalid("shares and threshold must not be negative"));
        }
        if !self.recovery_pgp_keys.is_empty() {
            if self.recovery_pgp_keys.len() as i64 != n {
                return Err(invalid(
                    "count mismatch between number of provided PGP keys and number of shares",
                ));
            }
            return Err(CoreError::InvalidRequest(
                "recovery_pgp_keys are not supported by Tresor yet: initialize without them and \
                 distribute the recovery shares over a secure channel"
                    .to_owned(),
            ));
        }
        if !self.root_token_pgp_key.is_empty() {
            return Err(CoreError::InvalidRequest(
                "root_token_pgp_key is not supported by Tresor yet".to_owned(),
            ));
        }
        let shares = u8::try_from(n).map_err(|_| invalid("shares must be less than 256"))?;
        let threshold = u8::try_from(t).map_err(|_| invalid("threshold must be less than 256"))?;
        Ok(InitConfig {
            barrier: SealConfig {
                kind: seal,
                secret_shares: 1,
                secret_threshold: 1,
            },
            recovery: Some(SealConfig::shamir(shares, threshold)),
        })
    }

    /// Checks a Shamir request the way OpenBao does, with its messages.
    pub fn validate(&self) -> CoreResult<SealConfig> {
        let invalid =
            |msg: &str| CoreError::InvalidRequest(format!("invalid seal configuration: {msg}"));
        if self.secret_shares < 1 {
            return Err(invalid("shares must be at least one"));
        }
        if self.secret_threshold < 1 {
            return Err(invalid("threshold must be at least one"));
        }
        if self.secret_shares > 255 {
            return Err(invalid("shares must be less than 256"));
        }
        if self.secret_threshold > 255 {
            return Err(invalid("threshold must be less than 256"));
        }
        if self.secret_threshold > self.secret_shares {
            return Err(invalid("threshold cannot be larger than shares"));
        }
        if self.secret_shares > 1 && self.secret_threshold == 1 {
            return Err(invalid(
                "threshold must be greater than one for multiple shares",
            ));
        }
        if !self.pgp_keys.is_empty() {
            if self.pgp_keys.len() as i64 != self.secret_shares {
                return Err(invalid(
                    "count mismatch between number of provided PGP keys and number of shares",
                ));
            }
            return Err(CoreError::InvalidRequest(
                "pgp_keys are not supported by Tresor yet: initialize without them and distribute \
                 the shares over a secure channel"
                    .to_owned(),
            ));
        }
        if !self.root_token_pgp_key.is_empty() {
            return Err(CoreError::InvalidRequest(
                "root_token_pgp_key is not supported by Tresor yet".to_owned(),
            ));
        }
        let mut recovery = Vec::new();
        if self.recovery_shares != 0 {
            recovery.push("recovery_shares");
        }
        if self.recovery_threshold != 0 {
            recovery.push("recovery_threshold");
        }
        if !self.recovery_pgp_keys.is_empty() {
            recovery.push("recovery_pgp_keys");
        }
        if !recovery.is_empty() {
            return Err(CoreError::InvalidRequest(format!(
                "parameters {} not applicable to seal type shamir",
                recovery.join(",")
            )));
        }
        let shares = u8::try_from(self.secret_shares)
            .map_err(|_| invalid("shares must be less than 256"))?;
        let threshold = u8::try_from(self.secret_threshold)
            .map_err(|_| invalid("threshold cannot be larger than shares"))?;
        Ok(SealConfig::shamir(shares, threshold))
    }
}

/// The limits OpenBao's seal configuration check puts on a Shamir split after its own
/// minimums, in its order (shared by the recovery configuration and rekeys): the message of the
/// first one broken.
pub(crate) fn split_limits(shares: i64, threshold: i64) -> Result<(), &'static str> {
    if shares > 1 && threshold < 2 {
        return Err("threshold must be greater than one for multiple shares");
    }
    if shares > 255 {
        return Err("shares must be less than 256");
    }
    if threshold > 255 {
        return Err("threshold must be less than 256");
    }
    if threshold > shares {
        return Err("threshold cannot be larger than shares");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(shares: i64, threshold: i64) -> InitRequest {
        InitRequest {
            secret_shares: shares,
            secret_threshold: threshold,
            ..Default::default()
        }
    }

    #[test]
    fn accepts_the_shapes_vault_accepts() {
        for (n, t) in [(1, 1), (5, 3), (2, 2), (255, 255), (255, 2)] {
            let c = req(n, t).validate().unwrap();
            assert_eq!(
                (i64::from(c.secret_shares), i64::from(c.secret_threshold)),
                (n, t)
            );
        }
    }

    #[test]
    fn rejects_what_openbao_rejects_with_its_messages() {
        let cases = [
            (0, 0, "shares must be at least one"),
            (256, 2, "shares must be less than 256"),
            (1, 2, "threshold cannot be larger than shares"),
            (
                3,
                1,
                "threshold must be greater than one for multiple shares",
            ),
            (3, 0, "threshold must be at least one"),
            (-1, 1, "shares must be at least one"),
        ];
        for (n, t, msg) in cases {
            let err = req(n, t).validate().unwrap_err().to_string();
            assert_eq!(
                err,
                format!("invalid seal configuration: {msg}"),
                "for {n}/{t}"
            );
        }
    }

    #[test]
    fn auto_seals_take_recovery_parameters_and_refuse_share_parameters() {
        let auto = |n: i64, t: i64| InitRequest {
            recovery_shares: n,
            recovery_threshold: t,
            ..Default::default()
        };
        let c = auto(5, 3).validate_for(SealKind::Transit).unwrap();
        assert_eq!(
            c.barrier,
            SealConfig {
                kind: SealKind::Transit,
                secret_shares: 1,
                secret_threshold: 1
            }
        );
        assert_eq!(c.recovery, Some(SealConfig::shamir(5, 3)));
        assert_eq!(
            auto(0, 0).validate_for(SealKind::Static).unwrap().recovery,
            Some(SealConfig::shamir(0, 0))
        );
        let mut both = auto(1, 1);
        both.secret_shares = 5;
        both.secret_threshold = 3;
        assert_eq!(
            both.validate_for(SealKind::Transit)
                .unwrap_err()
                .to_string(),
            "parameters secret_shares,secret_threshold not applicable to seal type transit"
        );
        for (n, t, msg) in [
            (
                3,
                1,
                "threshold must be greater than one for multiple shares",
            ),
            (2, 3, "threshold cannot be larger than shares"),
            (300, 2, "shares must be less than 256"),
            (0, 1, "threshold cannot be larger than shares"),
            (-1, 0, "threshold cannot be larger than shares"),
            (-1, -1, "shares and threshold must not be negative"),
        ] {
            assert_eq!(
                auto(n, t)
                    .validate_for(SealKind::Transit)
                    .unwrap_err()
                    .to_string(),
                format!("invalid recovery configuration: {msg}"),
                "{n}/{t}"
            );
        }
        let mut shamir = auto(3, 2);
        shamir.secret_shares = 1;
        shamir.secret_threshold = 1;
        assert_eq!(
            shamir
                .validate_for(SealKind::Shamir)
                .unwrap_err()
                .to_string(),
            "parameters recovery_shares,recovery_threshold not applicable to seal type shamir"
        );
    }

    #[test]
    fn records_without_a_type_are_shamir() {
        let c: SealConfig =
            serde_json::from_str(r#"{"secret_shares":3,"secret_threshold":2}"#).unwrap();
        assert_eq!(c, SealConfig::shamir(3, 2));
        let t: SealConfig =
            serde_json::from_str(r#"{"type":"transit","secret_shares":1,"secret_threshold":1}"#)
                .unwrap();
        assert_eq!(t.kind, SealKind::Transit);
    }

    #[test]
    fn pgp_keys_are_rejected_with_a_clear_error() {
        let mut r = req(2, 2);
        r.pgp_keys = vec!["a".into(), "b".into()];
        assert!(
            r.validate()
                .unwrap_err()
                .to_string()
                .contains("not supported")
        );
        r.pgp_keys = vec!["a".into()];
        assert!(
            r.validate()
                .unwrap_err()
                .to_string()
                .contains("count mismatch")
        );
    }
}
