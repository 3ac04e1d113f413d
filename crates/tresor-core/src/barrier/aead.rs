//! The barrier's ciphertext format: AES-256-GCM bound to a key term and a storage path.
//!
//! ```text
//! [version: u8 = 1][term: u32 BE][nonce: 12 bytes][ciphertext || 16-byte tag]
//! ```
//!
//! The associated data is the 5-byte header followed by the storage path, so a ciphertext
//! only decrypts where it was written and under the term it claims: copying a value to
//! another path, or relabelling its term, is detected rather than silently accepted.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use tresor_sdk::secret::SecretBytes;
use zeroize::{Zeroize, Zeroizing};

use super::BarrierError;

/// AES-256 key size.
pub const KEY_LEN: usize = 32;
/// The only format version this code writes or reads.
pub const VERSION: u8 = 1;
const HEADER_LEN: usize = 5;
const TAG_LEN: usize = 16;
const PREFIX_LEN: usize = HEADER_LEN + NONCE_LEN;
/// Size added to a plaintext by [`encrypt`].
pub const OVERHEAD: usize = PREFIX_LEN + TAG_LEN;

/// Generates a fresh random AES-256 key.
pub fn generate_key() -> Result<SecretBytes, BarrierError> {
    let mut key = Zeroizing::new(vec![0u8; KEY_LEN]);
    SystemRandom::new()
        .fill(key.as_mut_slice())
        .map_err(|_| BarrierError::Random)?;
    // Moves the allocation into the secret without copying the key bytes.
    Ok(SecretBytes::new(std::mem::take(&mut *key)))
}

/// Encrypts `plaintext` for storage at `path` under `key`, labelled with `term`.
pub fn encrypt(
    key: &SecretBytes,
    term: u32,
    path: &str,
    plaintext: &[u8],
) -> Result<Vec<u8>, BarrierError> {
    let key = sealing_key(key)?;
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| BarrierError::Random)?;

    // Exact capacity: the plaintext is copied in and encrypted in place, and a reallocation
    // would leave a plaintext copy behind in freed memory.
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    out.push(VERSION);
    out.extend_from_slice(&term.to_be_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);

    let (prefix, body) = out.split_at_mut(PREFIX_LEN);
    let header = prefix
        .get(..HEADER_LEN)
        .ok_or(BarrierError::EncryptionFailed)?;
    let aad = Aad::from(associated_data(header, path));
    match key.seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), aad, body) {
        Ok(tag) => {
            out.extend_from_slice(tag.as_ref());
            Ok(out)
        }
        Err(_) => {
            // Sealing failed before or while overwriting the plaintext copy: wipe it.
            out.zeroize();
            Err(BarrierError::EncryptionFailed)
        }
    }
}

/// Decrypts a value read from `path`. Any mismatch — wrong key, wrong path, wrong term,
/// a flipped bit anywhere — is reported as [`BarrierError::Integrity`].
pub fn decrypt(
    key: &SecretBytes,
    path: &str,
    ciphertext: &[u8],
) -> Result<SecretBytes, BarrierError> {
    let key = sealing_key(key)?;
    let integrity = || BarrierError::Integrity {
        path: path.to_owned(),
    };
    if ciphertext.len() < OVERHEAD {
        return Err(integrity());
    }
    let (prefix, body) = ciphertext.split_at(PREFIX_LEN);
    let (header, nonce) = prefix.split_at(HEADER_LEN);
    // An unknown version is treated like corruption: this code cannot vouch for it either way.
    if header.first() != Some(&VERSION) {
        return Err(integrity());
    }
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| integrity())?;

    // Zeroizing: after a successful open this buffer holds plaintext, and after a failed one
    // it may hold unauthenticated plaintext, which must not linger either.
    let mut buf = Zeroizing::new(body.to_vec());
    let plaintext_len = key
        .open_in_place(
            nonce,
            Aad::from(associated_data(header, path)),
            buf.as_mut_slice(),
        )
        .map_err(|_| integrity())?
        .len();
    buf.truncate(plaintext_len);
    // Moves the allocation out (no copy); the emptied Zeroizing wrapper has nothing left to wipe.
    Ok(SecretBytes::new(std::mem::take(&mut *buf)))
}

/// The key term a ciphertext claims, read without decrypting (it is authenticated later).
pub fn term_of(ciphertext: &[u8]) -> Result<u32, BarrierError> {
    match ciphertext {
        [VERSION, a, b, c, d, ..] if ciphertext.len() >= OVERHEAD => {
            Ok(u32::from_be_bytes([*a, *b, *c, *d]))
        }
        _ => Err(BarrierError::Malformed),
    }
}

fn sealing_key(key: &SecretBytes) -> Result<LessSafeKey, BarrierError> {
    // Built per operation rather than cached: ring's expanded key schedule is not wiped on
    // drop, so keeping one alive for the life of the keyring would outlast `seal()`.
    if key.len() != KEY_LEN {
        return Err(BarrierError::InvalidKeyLength {
            expected: KEY_LEN,
            actual: key.len(),
        });
    }
    let unbound = UnboundKey::new(&AES_256_GCM, key.expose()).map_err(|_| {
        BarrierError::InvalidKeyLength {
            expected: KEY_LEN,
            actual: key.len(),
        }
    })?;
    Ok(LessSafeKey::new(unbound))
}

fn associated_data(header: &[u8], path: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + path.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(path.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretBytes {
        SecretBytes::copy_from(&[byte; KEY_LEN])
    }

    #[test]
    fn layout_is_version_term_nonce_ciphertext_tag() {
        let ct = encrypt(&key(1), 0x0102_0304, "a/b", b"plaintext").unwrap();
        assert_eq!(ct.len(), 1 + 4 + 12 + 9 + 16);
        assert_eq!(&ct[..5], &[VERSION, 1, 2, 3, 4]);
        assert_eq!(term_of(&ct).unwrap(), 0x0102_0304);
        assert_eq!(decrypt(&key(1), "a/b", &ct).unwrap().expose(), b"plaintext");
    }

    #[test]
    fn nonces_are_fresh_per_encryption() {
        let a = encrypt(&key(1), 1, "p", b"same").unwrap();
        let b = encrypt(&key(1), 1, "p", b"same").unwrap();
        assert_ne!(a[5..17], b[5..17]);
        assert_ne!(a, b);
    }

    #[test]
    fn key_path_term_and_version_are_all_bound() {
        let ct = encrypt(&key(1), 7, "a", b"v").unwrap();
        let integrity =
            |r: Result<SecretBytes, BarrierError>| matches!(r, Err(BarrierError::Integrity { .. }));
        assert!(integrity(decrypt(&key(2), "a", &ct)));
        assert!(integrity(decrypt(&key(1), "b", &ct)));
        assert!(integrity(decrypt(&key(1), "a/", &ct)));
        let mut relabelled = ct.clone();
        relabelled[4] = 8;
        assert!(integrity(decrypt(&key(1), "a", &relabelled)));
        let mut versioned = ct.clone();
        versioned[0] = 2;
        assert!(integrity(decrypt(&key(1), "a", &versioned)));
        assert!(matches!(term_of(&versioned), Err(BarrierError::Malformed)));
        assert!(integrity(decrypt(&key(1), "a", &ct[..OVERHEAD - 1])));
        assert!(matches!(
            term_of(&ct[..OVERHEAD - 1]),
            Err(BarrierError::Malformed)
        ));
    }

    #[test]
    fn keys_must_be_32_bytes() {
        let short = SecretBytes::copy_from(&[1; 16]);
        assert!(matches!(
            encrypt(&short, 1, "p", b"v"),
            Err(BarrierError::InvalidKeyLength {
                expected: 32,
                actual: 16
            })
        ));
        let generated = generate_key().unwrap();
        assert_eq!(generated.len(), KEY_LEN);
        assert_ne!(generated, generate_key().unwrap());
    }
}
