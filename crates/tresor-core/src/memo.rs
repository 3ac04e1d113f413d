//! A memo of strings HMAC-SHA256'd lately: the HMAC's hex digits, found by a keyed 128-bit
//! SipHash-2-4 of the string. Two users, each with its own memo and key:
//!
//! - **each audit device**: an audited read hashes every string of its answer (a KV v2 read of
//!   eight fields: ten HMAC-SHA256s, four SHA-256 blocks each), and the commonest requests
//!   answer the same strings again and again (the same secret read by every replica of a
//!   service, polled by a sync agent). A SipHash of a 120-byte field costs about a fifth of its
//!   HMAC;
//! - **the token store**: every authenticated request names its token by the salted HMAC of
//!   the token (two SHA-256 blocks, about 5,000 instructions, 6 % of a KV v2 read); a SipHash
//!   of a token costs about a tenth of that. Only tokens that were found are remembered, so a
//!   flood of made-up tokens cannot push out the real ones.
//!
//! Only the SipHash of a string is kept, never the string: its key is drawn from the OS RNG
//! when the memo is made and never leaves memory, so the memo says nothing about the strings
//! to anyone who reads it, and nobody without the key can make two strings share an entry
//! (SipHash is a PRF; with 128 bits two different strings meet by chance with probability
//! about 2^-128 per pair). The values are HMACs, which the audit log and the token store's
//! keys hold anyway. An HMAC of a given string never changes while its salt lives, and each
//! memo lives and dies with its salt, so nothing in it ever needs invalidating.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

use ring::hmac;
use siphasher::sip128::{Hasher128, SipHasher24};

/// Hex digits of an HMAC-SHA256.
pub(crate) type Digits = [u8; 64];

/// Strings remembered before the memo starts over (about 100 bytes each).
const MAX_ENTRIES: usize = 32_768;

/// A fresh SipHash key from the OS RNG, for one memo (never stored, never shared).
pub(crate) fn sip_key() -> [u8; 16] {
    let mut key = [0u8; 16];
    key.copy_from_slice(&crate::random::bytes(16));
    key
}

pub(crate) struct Memo {
    key: [u8; 16],
    seen: Mutex<HashMap<u128, Digits, BuildHasherDefault<Identity>>>,
}

impl Memo {
    pub(crate) fn new() -> Self {
        Self {
            key: sip_key(),
            seen: Mutex::new(HashMap::default()),
        }
    }

    /// The name `input` has in the memo.
    pub(crate) fn id(&self, input: &str) -> u128 {
        let mut sip = SipHasher24::new_with_key(&self.key);
        sip.write(input.as_bytes());
        sip.finish128().as_u128()
    }

    /// The hex HMAC-SHA256 of `input` under `key` in `digits`, from the memo when it holds it.
    /// When it was computed instead, returns the input's id, for the caller to [`Memo::put`]
    /// if it should be remembered.
    pub(crate) fn hmac(&self, key: &hmac::Key, input: &str, digits: &mut Digits) -> Option<u128> {
        let id = self.id(input);
        if self.get(id, digits) {
            return None;
        }
        hmac_hex(key, input, digits);
        Some(id)
    }

    /// Copies the remembered digits of `id` into `out`; `false` if there are none.
    pub(crate) fn get(&self, id: u128, out: &mut Digits) -> bool {
        let Ok(seen) = self.seen.lock() else {
            return false;
        };
        match seen.get(&id) {
            Some(digits) => {
                *out = *digits;
                true
            }
            None => false,
        }
    }

    pub(crate) fn put(&self, id: u128, digits: &Digits) {
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= MAX_ENTRIES {
                seen.clear();
            }
            seen.insert(id, *digits);
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.seen.lock().map_or(0, |s| s.len())
    }
}

/// The hex digits of HMAC-SHA256(`key`, `input`), encoded into a buffer rather than with
/// `hex::encode` (which collects `char`s one by one).
pub(crate) fn hmac_hex(key: &hmac::Key, input: &str, digits: &mut Digits) {
    let tag = hmac::sign(key, input.as_bytes());
    if hex::encode_to_slice(tag.as_ref(), digits).is_err() {
        // Unreachable (a SHA-256 tag is 32 bytes, 64 digits), and still the right digits.
        for (slot, digit) in digits.iter_mut().zip(hex::encode(tag.as_ref()).bytes()) {
            *slot = digit;
        }
    }
}

/// Only the size: the key must never be printed.
impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = self.seen.lock().map_or(0, |s| s.len());
        f.debug_struct("Memo")
            .field("entries", &entries)
            .finish_non_exhaustive()
    }
}

/// The map's own hash of a key that is already a uniformly random 128-bit value: its low
/// 64 bits, with no second pass of hashing.
#[derive(Default)]
pub(crate) struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u128` is used by the memo's keys; fold anything else in anyway.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u128(&mut self, n: u128) {
        // Truncation intended: the low half of a uniform value is uniform.
        #[allow(
            clippy::cast_possible_truncation,
            reason = "the low 64 bits are the hash"
        )]
        {
            self.0 = n as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_is_found_again_and_others_are_not() {
        let memo = Memo::new();
        let digits = [b'a'; 64];
        memo.put(memo.id("x"), &digits);
        let mut out = [0u8; 64];
        assert!(memo.get(memo.id("x"), &mut out));
        assert_eq!(out, digits);
        assert!(!memo.get(memo.id("y"), &mut out));
        assert!(!memo.get(memo.id("x "), &mut out));
    }

    #[test]
    fn two_memos_name_the_same_string_differently() {
        // Each device draws its own key, so ids say nothing across devices or restarts.
        assert_ne!(Memo::new().id("secret"), Memo::new().id("secret"));
    }

    #[test]
    fn the_memo_stays_bounded() {
        let memo = Memo::new();
        for i in 0..MAX_ENTRIES + 10 {
            memo.put(memo.id(&i.to_string()), &[b'0'; 64]);
        }
        assert!(memo.len() <= MAX_ENTRIES, "{} entries", memo.len());
    }
}
