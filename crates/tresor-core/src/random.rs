//! Random identifiers: tokens, accessors, nonces.
//!
//! Token IDs are the only bearer credentials the server hands out, so they come from the OS
//! CSPRNG and carry well over 128 bits of entropy.

use rand::Rng;
use rand::TryRngCore;
use rand::rngs::OsRng;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `len` characters drawn uniformly from base62 with the OS RNG (rejection sampling keeps the
/// distribution flat: 62 does not divide 256).
pub fn base62(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut rng = OsRng.unwrap_err();
    while out.len() < len {
        let b: u8 = rng.random();
        // 248 = 4 * 62: values at or above it would bias the first characters.
        if b < 248
            && let Some(c) = BASE62.get(usize::from(b % 62))
        {
            out.push(char::from(*c));
        }
    }
    out
}

/// Fresh random bytes from the OS RNG.
pub fn bytes(len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    OsRng.unwrap_err().fill(buf.as_mut_slice());
    buf
}

/// A random UUID-shaped string, as Vault formats request ids and nonces.
pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base62_has_the_requested_length_and_alphabet() {
        let s = base62(33);
        assert_eq!(s.len(), 33);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(base62(33), base62(33));
    }
}
