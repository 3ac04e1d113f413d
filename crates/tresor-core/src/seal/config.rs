//! The seal configuration and the validation of `sys/init` requests.

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, CoreResult};

/// Persisted (in plaintext, it holds no secret) at `core/seal-config`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct SealConfig {
    pub secret_shares: u8,
    pub secret_threshold: u8,
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
    /// Checks the request the way OpenBao does, with its messages.
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
        Ok(SealConfig {
            secret_shares: shares,
            secret_threshold: threshold,
        })
    }
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
