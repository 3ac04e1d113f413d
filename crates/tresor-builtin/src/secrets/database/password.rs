//! Passwords for the accounts the engine creates or rotates.
//!
//! Vault's default password policy: 20 characters from `[a-zA-Z0-9-]`, with at least one
//! lowercase letter, one uppercase letter, one digit and one `-`. Drawn from the system CSPRNG
//! by rejection sampling (no modulo bias). Tresor has no `sys/policies/password` yet, so a
//! config or role that names a `password_policy` cannot get a password: issuing answers as
//! OpenBao does for a policy that does not exist.

use ring::rand::SecureRandom as _;
use tresor_sdk::engine::{EngineError, EngineResult};
use tresor_sdk::secret::SecretString;

const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &[u8] = b"0123456789";
const CHARSET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-";
const LENGTH: usize = 20;

/// A password of Vault's default policy, or the OpenBao error for a named policy.
pub(crate) fn generate(policy: &str) -> EngineResult<SecretString> {
    if !policy.is_empty() {
        return Err(EngineError::Failed(
            "failed to generate password: no password policy found".to_owned(),
        ));
    }
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

    #[test]
    fn default_policy_shape() {
        for _ in 0..200 {
            let p = generate("").unwrap();
            let p = p.expose();
            assert_eq!(p.len(), 20);
            assert!(p.bytes().all(|b| CHARSET.contains(&b)));
            assert!(p.bytes().any(|b| b.is_ascii_lowercase()));
            assert!(p.bytes().any(|b| b.is_ascii_uppercase()));
            assert!(p.bytes().any(|b| b.is_ascii_digit()));
            assert!(p.contains('-'));
        }
        assert_ne!(generate("").unwrap(), generate("").unwrap());
    }

    #[test]
    fn a_named_policy_is_refused_as_openbao_refuses_a_missing_one() {
        let err = generate("strict").unwrap_err().to_string();
        assert_eq!(err, "failed to generate password: no password policy found");
    }
}
