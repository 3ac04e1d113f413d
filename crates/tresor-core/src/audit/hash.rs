//! The per-device salt and what it hashes: `hmac-sha256:<hex>` of a string, and every string
//! leaf of a JSON value (keys and non-string values stay readable, as in Vault).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use ring::hmac;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};
use tresor_sdk::secret::SecretBytes;

use super::rendered::Rendered;
use crate::memo::{Digits, Memo};

/// Length of a freshly drawn salt. Vault's is a UUID string; any secret bytes will do.
pub(crate) const SALT_LEN: usize = 32;

/// A device's HMAC key, precomputed once when the device is loaded.
pub struct Salt {
    key: hmac::Key,
    /// Callers' hashed tokens and accessors, by accessor (see [`Salt::caller`]).
    callers: Mutex<HashMap<String, Arc<CallerHashes>>>,
    /// Strings hashed lately (see [`super::memo`]).
    memo: Memo,
    /// Data objects rendered lately (see [`super::rendered`]).
    rendered: Rendered,
}

/// A caller's token and accessor, hashed, and the caller's `auth` block as this device renders
/// it, once per ACL verdict (absent, denied, allowed): see [`CallerHashes::auth_block`].
pub(crate) struct CallerHashes {
    pub token: Arc<str>,
    pub accessor: Arc<str>,
    auth: [OnceLock<Arc<[u8]>>; 3],
}

impl CallerHashes {
    /// The caller's rendered `auth` block for the verdict `allowed`, rendered by `render` the
    /// first time. Sound because everything the block holds besides the verdict comes from the
    /// token's entry, which never changes those fields (display name, policies, metadata,
    /// entity, type, creation TTL and time) and belongs to this accessor alone.
    pub(crate) fn auth_block(
        &self,
        allowed: Option<bool>,
        render: impl FnOnce() -> Vec<u8>,
    ) -> Arc<[u8]> {
        let slot = match allowed {
            None => &self.auth[0],
            Some(false) => &self.auth[1],
            Some(true) => &self.auth[2],
        };
        Arc::clone(slot.get_or_init(|| Arc::from(render())))
    }
}

/// Callers remembered per device before the memo starts over.
const MAX_CALLERS: usize = 4096;

impl std::fmt::Debug for Salt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Salt([redacted])")
    }
}

/// `hmac-sha256:` and 64 hex digits.
const HASHED_LEN: usize = 12 + 64;

impl Salt {
    pub(crate) fn new(bytes: &SecretBytes) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes.expose()),
            callers: Mutex::new(HashMap::new()),
            memo: Memo::new(),
            rendered: Rendered::new(),
        }
    }

    /// The hashes of a caller's `token` and `accessor`. Every line carries them, and a client
    /// sends the same token request after request, so they are hashed once per device and
    /// token, then remembered by accessor: a token has one accessor and an accessor one token,
    /// for ever, and their hashes under this salt never change, so nothing can go stale. Only
    /// hashes are kept (they are in the log anyway), never a token.
    pub(crate) fn caller(&self, token: &str, accessor: &str) -> Arc<CallerHashes> {
        if let Ok(callers) = self.callers.lock()
            && let Some(known) = callers.get(accessor)
        {
            return Arc::clone(known);
        }
        let hashes = Arc::new(CallerHashes {
            token: Arc::from(self.hash(token)),
            accessor: Arc::from(self.hash(accessor)),
            auth: Default::default(),
        });
        if let Ok(mut callers) = self.callers.lock() {
            if callers.len() >= MAX_CALLERS {
                callers.clear();
            }
            callers.insert(accessor.to_owned(), Arc::clone(&hashes));
        }
        hashes
    }

    /// `hmac-sha256:<hex of HMAC-SHA256(salt, input)>`, Vault's identified HMAC.
    pub fn hash(&self, input: &str) -> String {
        let mut out = [0u8; HASHED_LEN];
        self.hash_into(input, &mut out).to_owned()
    }

    /// [`Salt::hash`] into a buffer on the stack: audit lines hash a dozen strings per request,
    /// and serialise them straight from here. A string hashed lately is taken from the memo.
    fn hash_into<'b>(&self, input: &str, out: &'b mut [u8; HASHED_LEN]) -> &'b str {
        let (prefix, digits) = out.split_at_mut(12);
        prefix.copy_from_slice(b"hmac-sha256:");
        let Ok(digits) = <&mut Digits>::try_from(digits) else {
            return "hmac-sha256:";
        };
        if let Some(id) = self.memo.hmac(&self.key, input, digits) {
            self.memo.put(id, digits);
        }
        // Hex digits are ASCII.
        std::str::from_utf8(out).unwrap_or("hmac-sha256:")
    }

    /// `value` serialised with every string replaced by its hash (keys and non-string values
    /// stay readable, as in Vault), without copying it. At the top level of an object, the key
    /// `keep` (if any) is written as is: `hmac_accessor = false` leaves `accessor` readable.
    pub(crate) fn hashed<'a>(&'a self, value: &'a Value, keep: Option<&'a str>) -> Hashed<'a> {
        Hashed {
            salt: self,
            node: Node::Value(value),
            keep,
        }
    }

    /// `map` hashed ([`Salt::hashed_map`]) and written as JSON to the end of `out`. With
    /// `remember`, an object rendered lately is copied from the memo of whole objects, and a
    /// new one is kept there (see [`super::rendered`]).
    pub(crate) fn render_map(
        &self,
        map: &Map<String, Value>,
        keep: Option<&str>,
        remember: bool,
        out: &mut Vec<u8>,
    ) {
        let id = remember.then(|| self.rendered.id(map, keep));
        if let Some(known) = id.and_then(|id| self.rendered.get(id)) {
            out.extend_from_slice(&known);
            return;
        }
        let start = out.len();
        if serde_json::to_writer(&mut *out, &self.hashed_map(map, keep)).is_err() {
            // Cannot happen (string keys, in-memory writer); an empty object keeps the line
            // well-formed.
            out.truncate(start);
            out.extend_from_slice(b"{}");
            return;
        }
        if let (Some(id), Some(rendered)) = (id, out.get(start..)) {
            self.rendered.put(id, rendered);
        }
    }

    /// [`Salt::hashed`] for an object held as a map.
    pub(crate) fn hashed_map<'a>(
        &'a self,
        map: &'a Map<String, Value>,
        keep: Option<&'a str>,
    ) -> Hashed<'a> {
        Hashed {
            salt: self,
            node: Node::Map(map),
            keep,
        }
    }
}

/// See [`Salt::hashed`].
pub(crate) struct Hashed<'a> {
    salt: &'a Salt,
    node: Node<'a>,
    keep: Option<&'a str>,
}

enum Node<'a> {
    Value(&'a Value),
    Map(&'a Map<String, Value>),
}

impl Hashed<'_> {
    fn serialize_map<S: Serializer>(
        &self,
        map: &Map<String, Value>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_map(Some(map.len()))?;
        for (key, v) in map {
            if Some(key.as_str()) == self.keep {
                out.serialize_entry(key, v)?;
            } else {
                out.serialize_entry(key, &self.salt.hashed(v, None))?;
            }
        }
        out.end()
    }
}

impl Serialize for Hashed<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = match self.node {
            Node::Map(map) => return self.serialize_map(map, serializer),
            Node::Value(value) => value,
        };
        match value {
            Value::String(s) => {
                let mut out = [0u8; HASHED_LEN];
                serializer.serialize_str(self.salt.hash_into(s, &mut out))
            }
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&self.salt.hashed(item, None))?;
                }
                seq.end()
            }
            Value::Object(map) => self.serialize_map(map, serializer),
            Value::Null | Value::Bool(_) | Value::Number(_) => value.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_hashed_and_other_values_stay_readable() {
        let salt = Salt::new(&SecretBytes::from(b"salt".to_vec()));
        let v = serde_json::json!({"a": "x", "n": 5, "b": true, "l": ["y", 1], "o": {"z": "w"}});
        let v = serde_json::to_value(salt.hashed(&v, None)).unwrap();
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
    fn the_hash_is_hex_hmac_sha256_of_the_input() {
        let salt = Salt::new(&SecretBytes::from(b"key".to_vec()));
        // RFC 4231-style check with a key and message of our own, computed independently.
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, b"key"), b"message");
        assert_eq!(
            salt.hash("message"),
            format!("hmac-sha256:{}", hex::encode(tag.as_ref()))
        );
    }

    #[test]
    fn a_kept_top_level_key_stays_readable_but_nested_ones_do_not() {
        let salt = Salt::new(&SecretBytes::from(b"salt".to_vec()));
        let v = serde_json::json!({"accessor": "a", "o": {"accessor": "b"}});
        let out = serde_json::to_value(salt.hashed(&v, Some("accessor"))).unwrap();
        assert_eq!(out["accessor"], "a");
        assert_eq!(out["o"]["accessor"], salt.hash("b"));
    }

    #[test]
    fn a_remembered_caller_hashes_as_its_token_and_accessor_and_the_memo_stays_bounded() {
        let salt = Salt::new(&SecretBytes::from(b"salt".to_vec()));
        for round in 0..2 {
            let c = salt.caller("s.token-1", "accessor-1");
            assert_eq!(&*c.token, salt.hash("s.token-1"), "round {round}");
            assert_eq!(&*c.accessor, salt.hash("accessor-1"), "round {round}");
        }
        let other = salt.caller("s.token-2", "accessor-2");
        assert_eq!(&*other.token, salt.hash("s.token-2"));
        for i in 0..MAX_CALLERS + 10 {
            salt.caller("t", &format!("a{i}"));
        }
        let held = salt.callers.lock().unwrap().len();
        assert!(held <= MAX_CALLERS, "{held} callers remembered");
        // Still right after the memo started over.
        assert_eq!(
            &*salt.caller("s.token-1", "accessor-1").token,
            salt.hash("s.token-1")
        );
    }

    #[test]
    fn a_string_hashed_again_from_the_memo_hashes_the_same() {
        let salt = Salt::new(&SecretBytes::from(b"key".to_vec()));
        let expected = |m: &str| {
            let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, b"key"), m.as_bytes());
            format!("hmac-sha256:{}", hex::encode(tag.as_ref()))
        };
        for round in 0..3 {
            for m in ["", "a", "message", &"x".repeat(1000)] {
                assert_eq!(
                    salt.hash(m),
                    expected(m),
                    "round {round}, {} bytes",
                    m.len()
                );
            }
        }
        let v = serde_json::json!({"f": "message", "g": ["message", "a"]});
        let first = serde_json::to_string(&salt.hashed(&v, None)).unwrap();
        assert_eq!(
            first,
            serde_json::to_string(&salt.hashed(&v, None)).unwrap()
        );
        assert!(first.contains(&expected("message")) && first.contains(&expected("a")));
    }

    #[test]
    fn a_remembered_rendering_is_the_fresh_one_and_follows_every_change() {
        let salt = Salt::new(&SecretBytes::from(b"key".to_vec()));
        let render = |v: &Value, keep: Option<&str>, remember: bool| {
            let Value::Object(map) = v else {
                unreachable!()
            };
            let mut out = b"prefix:".to_vec();
            salt.render_map(map, keep, remember, &mut out);
            String::from_utf8(out).unwrap()
        };
        let v1 = serde_json::json!({"data": {"password": "one", "n": 1}, "accessor": "acc"});
        let fresh = render(&v1, None, false);
        assert_eq!(
            fresh,
            format!(
                "prefix:{}",
                serde_json::to_string(&salt.hashed(&v1, None)).unwrap()
            )
        );
        for _ in 0..3 {
            assert_eq!(render(&v1, None, true), fresh);
        }
        // Each change renders anew, never the remembered object.
        for changed in [
            serde_json::json!({"data": {"password": "two", "n": 1}, "accessor": "acc"}),
            serde_json::json!({"data": {"password": "one", "n": 2}, "accessor": "acc"}),
            serde_json::json!({"data": {"password": "one", "n": 1}}),
        ] {
            assert_eq!(
                render(&changed, None, true),
                format!(
                    "prefix:{}",
                    serde_json::to_string(&salt.hashed(&changed, None)).unwrap()
                )
            );
        }
        // The key left readable is part of what is remembered.
        let kept = render(&v1, Some("accessor"), true);
        assert!(kept.contains("\"accessor\":\"acc\""), "{kept}");
        assert_eq!(render(&v1, None, true), fresh);
    }

    #[test]
    fn different_salts_hash_differently() {
        let a = Salt::new(&SecretBytes::from(b"a".to_vec()));
        let b = Salt::new(&SecretBytes::from(b"b".to_vec()));
        assert_ne!(a.hash("x"), b.hash("x"));
    }
}
