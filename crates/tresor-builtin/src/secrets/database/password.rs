//! Passwords for the accounts the engine creates or rotates.
//!
//! Without a `password_policy`: Vault's default policy, 20 characters from `[a-zA-Z0-9-]`,
//! with at least one lowercase letter, one uppercase letter, one digit and one `-`, drawn from
//! the system CSPRNG by rejection sampling (no modulo bias). With one (on the config, or on a
//! role's `credential_config`): a password from that named policy
//! (`sys/policies/password/:name`), asked of the core through
//! [`tresor_sdk::password::PasswordPolicies`]; its errors read as OpenBao's
//! (`failed to generate password: no password policy found`).

use ring::rand::SecureRandom as _;
use tresor_sdk::engine::{EngineError, EngineResult};
use tresor_sdk::password::{NO_SUCH_POLICY, PasswordPolicies};
use tresor_sdk::secret::SecretString;

const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &[u8] = b"0123456789";
const CHARSET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-";
const LENGTH: usize = 20;

/// A password from the named policy, or of Vault's default policy when `policy` is empty.
pub(crate) async fn generate(
    policies: Option<&dyn PasswordPolicies>,
    policy: &str,
) -> EngineResult<SecretString> {
    if policy.is_empty() {
        return default_password();
    }
    let generated = match policies {
        Some(p) => p.generate(policy).await.map_err(|e| e.0),
        None => Err(NO_SUCH_POLICY.to_owned()),
    };
    generated.map_err(|e| EngineError::Failed(format!("failed to generate password: {e}")))
}

fn default_password() -> EngineResult<SecretString> {
    loop {
        let candidate = random_from(CHARSET, LENGTH).map_err(EngineError::Internal)?;
        let has = |set: &[u8]| candidate.bytes().any(|b| set.contains(&b));
        if has(LOWER) && has(UPPER) && has(DIGITS) && has(b"-") {
            return Ok(SecretString::new(candidate));
        }
    }
}

/// `n` characters drawn uniformly from `alphabet` (at most 256 symbols).
pub(crate) fn random_from(alphabet: &[u8], n: usize) -> Result<String, String> {
    let rng = ring::rand::SystemRandom::new();
    let len = alphabet.len();
    if len == 0 || len > 256 {
        return Err("bad alphabet".to_owned());
    }
    // Accept bytes below the largest multiple of the alphabet's size: no modulo bias.
    let limit = 256 - (256 % len);
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        rng.fill(&mut buf)
            .map_err(|_| "the system random source failed".to_owned())?;
        for b in buf {
            if usize::from(b) < limit
                && out.len() < n
                && let Some(&c) = alphabet.get(usize::from(b) % len)
            {
                out.push(char::from(c));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[derive(Debug)]
    struct Fixed;

    #[async_trait::async_trait]
    impl PasswordPolicies for Fixed {
        async fn generate(
            &self,
            name: &str,
        ) -> Result<SecretString, tresor_sdk::password::PasswordPolicyError> {
            if name == "known" {
                Ok(SecretString::new("from-policy".to_owned()))
            } else {
                Err(tresor_sdk::password::PasswordPolicyError(
                    NO_SUCH_POLICY.to_owned(),
                ))
            }
        }
    }

    #[tokio::test]
    async fn default_policy_shape() {
        for _ in 0..200 {
            let p = generate(None, "").await.unwrap();
            let p = p.expose();
            assert_eq!(p.len(), 20);
            assert!(p.bytes().all(|b| CHARSET.contains(&b)));
            assert!(p.bytes().any(|b| b.is_ascii_lowercase()));
            assert!(p.bytes().any(|b| b.is_ascii_uppercase()));
            assert!(p.bytes().any(|b| b.is_ascii_digit()));
            assert!(p.contains('-'));
        }
        assert_ne!(
            generate(None, "").await.unwrap(),
            generate(None, "").await.unwrap()
        );
    }

    #[tokio::test]
    async fn a_named_policy_comes_from_the_core() {
        let p = generate(Some(&Fixed), "known").await.unwrap();
        assert_eq!(p.expose(), "from-policy");
        let err = generate(Some(&Fixed), "strict")
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(err, "failed to generate password: no password policy found");
        let err = generate(None, "strict").await.unwrap_err().to_string();
        assert_eq!(err, "failed to generate password: no password policy found");
    }
}
