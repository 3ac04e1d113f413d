//! The keyring: every data-encryption key the barrier has ever used, by term.
//!
//! Rotation adds a term instead of re-encrypting: values written under old terms stay
//! readable, new writes use the active term. The keyring itself is stored encrypted under the
//! root key, so its serialised form is built and parsed in buffers that are wiped afterwards.

use std::collections::BTreeMap;
use std::io;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize, Serializer};
use time::OffsetDateTime;
use tresor_sdk::secret::SecretBytes;
use zeroize::Zeroizing;

use super::BarrierError;
use super::aead;

/// Format version of the serialised keyring.
const FORMAT_VERSION: u32 = 1;

/// One data-encryption key and when it became active.
#[derive(Debug, Clone)]
pub struct TermKey {
    key: SecretBytes,
    install_time: OffsetDateTime,
}

impl TermKey {
    pub fn key(&self) -> &SecretBytes {
        &self.key
    }

    pub fn install_time(&self) -> OffsetDateTime {
        self.install_time
    }

    fn generate() -> Result<Self, BarrierError> {
        // Whole nanoseconds, so the in-memory value equals what a round trip through storage
        // gives back.
        let now = OffsetDateTime::now_utc();
        let install_time =
            OffsetDateTime::from_unix_timestamp_nanos(now.unix_timestamp_nanos()).unwrap_or(now);
        Ok(Self {
            key: aead::generate_key()?,
            install_time,
        })
    }
}

/// The root key and all term keys. `Debug` shows terms only: [`SecretBytes`] redacts keys.
#[derive(Debug, Clone)]
pub struct Keyring {
    root_key: SecretBytes,
    terms: BTreeMap<u32, TermKey>,
    active_term: u32,
}

impl Keyring {
    /// A keyring with a fresh random key as term 1.
    ///
    /// Term 0 is never a keyring term: it labels values encrypted directly under the root key
    /// (the keyring itself), so the two can never be confused.
    pub fn new(root_key: SecretBytes) -> Result<Self, BarrierError> {
        check_key_len(&root_key)?;
        let terms = BTreeMap::from([(1, TermKey::generate()?)]);
        Ok(Self {
            root_key,
            terms,
            active_term: 1,
        })
    }

    /// Adds a fresh key as term `max + 1`, makes it active and returns the new term.
    pub fn rotate(&mut self) -> Result<u32, BarrierError> {
        let newest = self.terms.keys().next_back().copied().unwrap_or(0);
        let term = newest.checked_add(1).ok_or(BarrierError::TermOverflow)?;
        self.terms.insert(term, TermKey::generate()?);
        self.active_term = term;
        Ok(term)
    }

    pub fn root_key(&self) -> &SecretBytes {
        &self.root_key
    }

    /// The same terms under another root key (a seal migration replaces the root key).
    pub fn with_root_key(&self, root_key: SecretBytes) -> Result<Self, BarrierError> {
        check_key_len(&root_key)?;
        Ok(Self {
            root_key,
            terms: self.terms.clone(),
            active_term: self.active_term,
        })
    }

    pub fn active_term(&self) -> u32 {
        self.active_term
    }

    /// The term and key new writes use.
    pub fn active(&self) -> Result<(u32, &TermKey), BarrierError> {
        // Construction and parsing guarantee the active term exists; this only avoids a panic.
        self.terms
            .get(&self.active_term)
            .map(|key| (self.active_term, key))
            .ok_or(BarrierError::KeyringCorrupt("active term has no key"))
    }

    pub fn term(&self, term: u32) -> Option<&TermKey> {
        self.terms.get(&term)
    }

    /// All terms, ascending.
    pub fn terms(&self) -> impl Iterator<Item = u32> + '_ {
        self.terms.keys().copied()
    }

    /// The JSON form stored (encrypted) at `core/keyring`. Keys are base64 strings.
    pub fn to_bytes(&self) -> Result<SecretBytes, BarrierError> {
        let stored = StoredKeyring {
            version: FORMAT_VERSION,
            root_key: Base64Key(&self.root_key),
            active_term: self.active_term,
            terms: self
                .terms
                .iter()
                .map(|(&term, key)| StoredTerm {
                    term,
                    key: Base64Key(&key.key),
                    install_time: key.install_time.unix_timestamp_nanos(),
                })
                .collect(),
        };
        // Sized for the usual case (≈ 130 bytes per term); growing is safe, just slower.
        let mut out = WipingBuffer(Zeroizing::new(Vec::with_capacity(
            192 + 144 * self.terms.len(),
        )));
        serde_json::to_writer(&mut out, &stored)
            .map_err(|_| BarrierError::KeyringCorrupt("could not serialise the keyring"))?;
        Ok(SecretBytes::new(std::mem::take(&mut *out.0)))
    }

    /// Parses [`Keyring::to_bytes`] output and checks its invariants.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BarrierError> {
        // serde's messages can quote input, and this input is key material: drop them.
        let parsed: ParsedKeyring<'_> = serde_json::from_slice(bytes)
            .map_err(|_| BarrierError::KeyringCorrupt("keyring is not valid JSON"))?;
        if parsed.version != FORMAT_VERSION {
            return Err(BarrierError::KeyringCorrupt("unsupported keyring version"));
        }
        let mut terms = BTreeMap::new();
        for entry in parsed.terms {
            if entry.term == 0 {
                return Err(BarrierError::KeyringCorrupt("term 0 is reserved"));
            }
            let install_time = OffsetDateTime::from_unix_timestamp_nanos(entry.install_time)
                .map_err(|_| BarrierError::KeyringCorrupt("install time out of range"))?;
            let key = TermKey {
                key: decode_key(entry.key)?,
                install_time,
            };
            if terms.insert(entry.term, key).is_some() {
                return Err(BarrierError::KeyringCorrupt("duplicate term"));
            }
        }
        if !terms.contains_key(&parsed.active_term) {
            return Err(BarrierError::KeyringCorrupt("active term has no key"));
        }
        Ok(Self {
            root_key: decode_key(parsed.root_key)?,
            terms,
            active_term: parsed.active_term,
        })
    }
}

fn check_key_len(key: &SecretBytes) -> Result<(), BarrierError> {
    if key.len() == aead::KEY_LEN {
        Ok(())
    } else {
        Err(BarrierError::InvalidKeyLength {
            expected: aead::KEY_LEN,
            actual: key.len(),
        })
    }
}

fn decode_key(encoded: &str) -> Result<SecretBytes, BarrierError> {
    // Decoded into a fixed zeroizing buffer larger than any valid key, so an oversized value
    // is an error rather than a reallocation that leaves a copy behind.
    let mut buf = Zeroizing::new([0u8; 2 * aead::KEY_LEN]);
    let len = STANDARD
        .decode_slice(encoded, buf.as_mut_slice())
        .map_err(|_| BarrierError::KeyringCorrupt("key is not valid base64"))?;
    let key = buf
        .get(..len)
        .map(SecretBytes::copy_from)
        .ok_or(BarrierError::KeyringCorrupt("key is not valid base64"))?;
    check_key_len(&key).map_err(|_| BarrierError::KeyringCorrupt("key has the wrong length"))?;
    Ok(key)
}

#[derive(Serialize)]
struct StoredKeyring<'a> {
    version: u32,
    root_key: Base64Key<'a>,
    active_term: u32,
    terms: Vec<StoredTerm<'a>>,
}

#[derive(Serialize)]
struct StoredTerm<'a> {
    term: u32,
    key: Base64Key<'a>,
    /// Unix nanoseconds: `time` is built without its serde and parsing features here.
    install_time: i128,
}

#[derive(Deserialize)]
struct ParsedKeyring<'a> {
    version: u32,
    /// Borrowed from the decrypted buffer so no unwiped copy of the encoded key is made.
    #[serde(borrow)]
    root_key: &'a str,
    active_term: u32,
    #[serde(borrow)]
    terms: Vec<ParsedTerm<'a>>,
}

#[derive(Deserialize)]
struct ParsedTerm<'a> {
    term: u32,
    #[serde(borrow)]
    key: &'a str,
    install_time: i128,
}

/// Serialises a key as base64 through a wiped temporary instead of an ordinary `String`.
struct Base64Key<'a>(&'a SecretBytes);

impl Serialize for Base64Key<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = base64::encoded_len(self.0.len(), true).unwrap_or(0);
        let mut encoded = Zeroizing::new(String::with_capacity(len));
        STANDARD.encode_string(self.0.expose(), &mut encoded);
        serializer.serialize_str(&encoded)
    }
}

/// An output buffer that, when it must grow, moves into a new allocation and wipes the old
/// one: a plain `Vec` would leave partial keyring copies in freed memory.
struct WipingBuffer(Zeroizing<Vec<u8>>);

impl io::Write for WipingBuffer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let needed = self.0.len().saturating_add(data.len());
        if needed > self.0.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(needed.max(2 * self.0.capacity())));
            bigger.extend_from_slice(&self.0);
            self.0 = bigger;
        }
        self.0.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> SecretBytes {
        SecretBytes::copy_from(&[7u8; 32])
    }

    #[test]
    fn new_keyring_starts_at_term_one() {
        let keyring = Keyring::new(root()).unwrap();
        assert_eq!(keyring.active_term(), 1);
        assert_eq!(keyring.terms().collect::<Vec<_>>(), vec![1]);
        assert_eq!(keyring.active().unwrap().1.key().len(), 32);
        assert!(matches!(
            Keyring::new(SecretBytes::copy_from(b"short")),
            Err(BarrierError::InvalidKeyLength {
                expected: 32,
                actual: 5
            })
        ));
    }

    #[test]
    fn rotate_adds_a_distinct_key_and_activates_it() {
        let mut keyring = Keyring::new(root()).unwrap();
        assert_eq!(keyring.rotate().unwrap(), 2);
        assert_eq!(keyring.rotate().unwrap(), 3);
        assert_eq!(keyring.active_term(), 3);
        assert_eq!(keyring.terms().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_ne!(
            keyring.term(1).unwrap().key(),
            keyring.term(3).unwrap().key()
        );
    }

    #[test]
    fn round_trips_through_bytes() {
        let mut keyring = Keyring::new(root()).unwrap();
        keyring.rotate().unwrap();
        let bytes = keyring.to_bytes().unwrap();
        let back = Keyring::from_bytes(bytes.expose()).unwrap();
        assert_eq!(back.root_key(), keyring.root_key());
        assert_eq!(back.active_term(), 2);
        for term in [1, 2] {
            let (a, b) = (keyring.term(term).unwrap(), back.term(term).unwrap());
            assert_eq!(a.key(), b.key());
            assert_eq!(a.install_time(), b.install_time());
        }
    }

    #[test]
    fn serialised_form_grows_safely_past_its_first_allocation() {
        let mut keyring = Keyring::new(root()).unwrap();
        for _ in 0..50 {
            keyring.rotate().unwrap();
        }
        let back = Keyring::from_bytes(keyring.to_bytes().unwrap().expose()).unwrap();
        assert_eq!(back.terms().count(), 51);
        assert_eq!(
            back.term(37).unwrap().key(),
            keyring.term(37).unwrap().key()
        );
    }

    #[test]
    fn invalid_keyrings_are_rejected_without_echoing_input() {
        let key = STANDARD.encode([1u8; 32]);
        let cases = [
            "not json".to_owned(),
            format!(r#"{{"version":2,"root_key":"{key}","active_term":1,"terms":[]}}"#),
            format!(r#"{{"version":1,"root_key":"{key}","active_term":1,"terms":[]}}"#),
            format!(
                r#"{{"version":1,"root_key":"{key}","active_term":0,"terms":[{{"term":0,"key":"{key}","install_time":0}}]}}"#
            ),
            format!(
                r#"{{"version":1,"root_key":"AAAA","active_term":1,"terms":[{{"term":1,"key":"{key}","install_time":0}}]}}"#
            ),
            format!(
                r#"{{"version":1,"root_key":"{key}","active_term":1,"terms":[{{"term":1,"key":"{key}{key}","install_time":0}}]}}"#
            ),
        ];
        for case in cases {
            let err = Keyring::from_bytes(case.as_bytes()).unwrap_err();
            assert!(
                matches!(err, BarrierError::KeyringCorrupt(_)),
                "{case}: {err}"
            );
            assert!(!err.to_string().contains(&key));
        }
    }

    #[test]
    fn debug_never_shows_keys() {
        let keyring = Keyring::new(root()).unwrap();
        let shown = format!("{keyring:?}");
        assert!(shown.contains("[redacted]"));
        assert!(!shown.contains("7, 7"));
        let encoded = STANDARD.encode(keyring.active().unwrap().1.key().expose());
        assert!(!shown.contains(&encoded));
    }
}
