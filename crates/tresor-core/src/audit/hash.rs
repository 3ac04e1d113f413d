//! The per-device salt and what it hashes: `hmac-sha256:<hex>` of a string, and every string
//! leaf of a JSON value (keys and non-string values stay readable, as in Vault).

use ring::hmac;
use serde_json::{Map, Value};
use tresor_sdk::secret::SecretBytes;

/// Length of a freshly drawn salt. Vault's is a UUID string; any secret bytes will do.
pub(crate) const SALT_LEN: usize = 32;

/// A device's HMAC key, precomputed once when the device is loaded.
pub struct Salt {
    key: hmac::Key,
}

impl std::fmt::Debug for Salt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Salt([redacted])")
    }
}

impl Salt {
    pub(crate) fn new(bytes: &SecretBytes) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes.expose()),
        }
    }

    /// `hmac-sha256:<hex of HMAC-SHA256(salt, input)>`, Vault's identified HMAC.
    pub fn hash(&self, input: &str) -> String {
        let tag = hmac::sign(&self.key, input.as_bytes());
        let mut out = String::with_capacity(12 + 64);
        out.push_str("hmac-sha256:");
        out.push_str(&hex::encode(tag.as_ref()));
        out
    }

    /// Every string inside `value` replaced by its hash, in place.
    pub fn hash_value(&self, value: &mut Value) {
        match value {
            Value::String(s) => *s = self.hash(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.hash_value(v)),
            Value::Object(map) => self.hash_map(map, None),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// Every string in `map` hashed, except top-level keys listed in `keep` (used for
    /// `hmac_accessor = false`, which leaves `accessor` readable).
    pub fn hash_map(&self, map: &mut Map<String, Value>, keep: Option<&str>) {
        for (key, v) in map.iter_mut() {
            if Some(key.as_str()) == keep {
                continue;
            }
            self.hash_value(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_hashed_and_other_values_stay_readable() {
        let salt = Salt::new(&SecretBytes::from(b"salt".to_vec()));
        let mut v =
            serde_json::json!({"a": "x", "n": 5, "b": true, "l": ["y", 1], "o": {"z": "w"}});
        salt.hash_value(&mut v);
        assert_eq!(v["n"], 5);
        assert_eq!(v["b"], true);
        assert_eq!(v["l"][1], 1);
        assert_eq!(v["a"], salt.hash("x"));
        assert_eq!(v["l"][0], salt.hash("y"));
        assert_eq!(v["o"]["z"], salt.hash("w"));
        assert!(salt.hash("x").starts_with("hmac-sha256:"));
        assert_eq!(salt.hash("x").len(), 12 + 64);
    }

    #[test]
    fn different_salts_hash_differently() {
        let a = Salt::new(&SecretBytes::from(b"a".to_vec()));
        let b = Salt::new(&SecretBytes::from(b"b".to_vec()));
        assert_ne!(a.hash("x"), b.hash("x"));
    }
}
