//! The `static` seal (OpenBao's `seal "static"`): a 32-byte AES-256-GCM key given to the
//! process, named by an operator-chosen key id that is stored next to every ciphertext, so a
//! rotated-out key (`previous_key`) can still open what it wrapped.

use base64::Engine;
use serde::{Deserialize, Serialize};
use tresor_sdk::secret::SecretBytes;

use super::auto::{AutoSeal, SealError, SealKind};
use crate::barrier::aead;

/// One named key.
#[derive(Debug, Clone)]
pub struct StaticKey {
    pub id: String,
    pub key: SecretBytes,
}

/// The seal: the current key wraps, the current or previous key unwraps.
#[derive(Debug)]
pub struct StaticSeal {
    current: StaticKey,
    previous: Option<StaticKey>,
}

/// What is stored: the id of the key that wrapped, and the barrier's AEAD format (term 0,
/// the storage path as associated data).
#[derive(Serialize, Deserialize)]
struct Envelope {
    key_id: String,
    ciphertext: String,
}

impl StaticSeal {
    /// Keys must be 32 bytes and ids non-empty and distinct; the binary resolves `file://`,
    /// `env://` and literal keys before calling this.
    pub fn new(current: StaticKey, previous: Option<StaticKey>) -> Result<Self, String> {
        for key in std::iter::once(&current).chain(previous.as_ref()) {
            if key.id.is_empty() {
                return Err("a static seal key needs a non-empty key id".to_owned());
            }
            if key.key.len() != super::KEY_LEN {
                return Err(format!(
                    "key {:?} is {} bytes; the static seal needs a 32-byte AES-256 key",
                    key.id,
                    key.key.len()
                ));
            }
        }
        if previous.as_ref().is_some_and(|p| p.id == current.id) {
            return Err("previous_key_id must differ from current_key_id".to_owned());
        }
        Ok(Self { current, previous })
    }

    fn error(&self, reason: impl Into<String>) -> SealError {
        SealError {
            seal: self.describe(),
            reason: reason.into(),
        }
    }
}

#[async_trait::async_trait]
impl AutoSeal for StaticSeal {
    fn kind(&self) -> SealKind {
        SealKind::Static
    }

    fn describe(&self) -> String {
        format!("static seal (current_key_id {:?})", self.current.id)
    }

    async fn encrypt(&self, plaintext: &SecretBytes, purpose: &str) -> Result<Vec<u8>, SealError> {
        let sealed = aead::encrypt(&self.current.key, 0, purpose, plaintext.expose())
            .map_err(|e| self.error(format!("encryption failed: {e}")))?;
        serde_json::to_vec(&Envelope {
            key_id: self.current.id.clone(),
            ciphertext: base64::engine::general_purpose::STANDARD.encode(sealed),
        })
        .map_err(|e| self.error(format!("encoding the envelope failed: {e}")))
    }

    async fn decrypt(&self, blob: &[u8], purpose: &str) -> Result<SecretBytes, SealError> {
        let envelope: Envelope = serde_json::from_slice(blob)
            .map_err(|_| self.error("the stored value is not a static seal envelope"))?;
        let key = std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|k| k.id == envelope.key_id)
            .ok_or_else(|| {
                self.error(format!(
                    "the stored key was wrapped by key id {:?}, which is neither current_key_id \
                     nor previous_key_id",
                    envelope.key_id
                ))
            })?;
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(envelope.ciphertext)
            .map_err(|_| self.error("the stored ciphertext is not base64"))?;
        aead::decrypt(&key.key, purpose, &sealed).map_err(|_| {
            self.error(format!(
                "decryption with key id {:?} failed (message authentication failed): the key \
                 given for that id is not the one that wrapped the stored key",
                key.id
            ))
        })
    }
}

/// A static seal with the 32-byte key `[byte; 32]` (id `k1`), for the seal's unit tests.
#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
pub(crate) fn test_seal(byte: u8) -> std::sync::Arc<dyn super::AutoSeal> {
    std::sync::Arc::new(
        StaticSeal::new(
            StaticKey {
                id: "k1".to_owned(),
                key: SecretBytes::new(vec![byte; 32]),
            },
            None,
        )
        .unwrap(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, byte: u8) -> StaticKey {
        StaticKey {
            id: id.to_owned(),
            key: SecretBytes::new(vec![byte; 32]),
        }
    }

    #[tokio::test]
    async fn wraps_with_the_current_key_and_unwraps_with_current_or_previous() {
        let old = StaticSeal::new(key("k1", 1), None).unwrap();
        let secret = SecretBytes::new(vec![9; 32]);
        let blob = old.encrypt(&secret, "core/x").await.unwrap();
        assert_eq!(old.decrypt(&blob, "core/x").await.unwrap(), secret);
        assert!(
            old.decrypt(&blob, "core/y").await.is_err(),
            "bound to its path"
        );

        let rotated = StaticSeal::new(key("k2", 2), Some(key("k1", 1))).unwrap();
        assert_eq!(rotated.decrypt(&blob, "core/x").await.unwrap(), secret);
        let fresh = rotated.encrypt(&secret, "core/x").await.unwrap();
        assert!(String::from_utf8_lossy(&fresh).contains("\"k2\""));

        let unknown = StaticSeal::new(key("k3", 3), None).unwrap();
        let err = unknown.decrypt(&blob, "core/x").await.unwrap_err();
        assert!(err.to_string().contains("\"k1\""), "{err}");
        assert!(err.to_string().starts_with("static seal"), "{err}");

        let liar = StaticSeal::new(key("k1", 7), None).unwrap();
        let err = liar.decrypt(&blob, "core/x").await.unwrap_err().to_string();
        assert!(err.contains("message authentication failed"), "{err}");
        assert!(!err.contains("0707"), "no key material in errors");
    }

    #[test]
    fn keys_must_be_32_bytes_with_distinct_ids() {
        let short = StaticKey {
            id: "a".into(),
            key: SecretBytes::new(vec![1; 16]),
        };
        assert!(
            StaticSeal::new(short, None)
                .unwrap_err()
                .contains("32-byte")
        );
        assert!(StaticSeal::new(key("", 1), None).is_err());
        assert!(StaticSeal::new(key("a", 1), Some(key("a", 2))).is_err());
    }
}
