//! A device's memo of whole data objects it has rendered lately: the hashed JSON of a
//! response's `data`, found by a keyed 128-bit SipHash-2-4 of the object's contents.
//!
//! The commonest audited request is a read of data that does not change between reads: the
//! same secret read by every replica of a service, polled by a sync agent. Its hashed
//! rendering is the same every time, so instead of hashing and escaping each string again
//! (ten memo look-ups, one lock each, and serde's escape scan over about a kilobyte of hex), a
//! read that was answered before costs one SipHash pass over the object and one copy.
//!
//! The fingerprint covers everything the rendering depends on — every key, every value with its
//! type, the lengths that delimit them, and the top-level key left readable — so two objects
//! that would render differently never share an entry unless SipHash collides (a keyed PRF:
//! about 2^-128 per pair, and nobody without the key, which is drawn from the OS RNG when the
//! device is loaded and never leaves memory, can aim for a collision). The memo keeps only the
//! rendered form, which holds HMACs, keys and non-string values: what the log holds anyway.
//!
//! Only reads use it (`pure` requests: see `Scope::log_request`); an answer that is new every
//! time (a transit ciphertext, a new token) would pay the fingerprint and the insert for
//! nothing.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use siphasher::sip128::{Hasher128, SipHasher24};

use super::memo::{Identity, sip_key};

/// Bytes of rendered objects kept per device before the memo starts over.
const MAX_BYTES: usize = 8 << 20;
/// Largest object kept: a big listing is rarely asked for twice in a row.
const MAX_OBJECT: usize = 64 << 10;

pub(crate) struct Rendered {
    key: [u8; 16],
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    objects: HashMap<u128, Arc<[u8]>, BuildHasherDefault<Identity>>,
    bytes: usize,
}

impl Rendered {
    pub(crate) fn new() -> Self {
        Self {
            key: sip_key(),
            seen: Mutex::new(Seen::default()),
        }
    }

    /// The name the rendering of `map` (with `keep` left readable) has in the memo.
    pub(crate) fn id(&self, map: &Map<String, Value>, keep: Option<&str>) -> u128 {
        let mut sip = SipHasher24::new_with_key(&self.key);
        match keep {
            Some(k) => {
                sip.write_u8(1);
                text(&mut sip, k);
            }
            None => sip.write_u8(0),
        }
        object(&mut sip, map);
        sip.finish128().as_u128()
    }

    pub(crate) fn get(&self, id: u128) -> Option<Arc<[u8]>> {
        self.seen.lock().ok()?.objects.get(&id).map(Arc::clone)
    }

    pub(crate) fn put(&self, id: u128, rendered: &[u8]) {
        if rendered.len() > MAX_OBJECT {
            return;
        }
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        if seen.bytes + rendered.len() > MAX_BYTES {
            seen.objects.clear();
            seen.bytes = 0;
        }
        if seen.objects.insert(id, Arc::from(rendered)).is_none() {
            seen.bytes += rendered.len();
        }
    }

    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.seen.lock().map_or(0, |s| s.bytes)
    }
}

// Every part is tagged with its type and every variable-length part with its length, so the
// byte stream fed to SipHash names exactly one object.

fn text(sip: &mut SipHasher24, s: &str) {
    sip.write_u64(s.len() as u64);
    sip.write(s.as_bytes());
}

fn object(sip: &mut SipHasher24, map: &Map<String, Value>) {
    sip.write_u8(b'{');
    sip.write_u64(map.len() as u64);
    for (key, v) in map {
        text(sip, key);
        value(sip, v);
    }
}

fn value(sip: &mut SipHasher24, v: &Value) {
    match v {
        Value::Null => sip.write_u8(b'n'),
        Value::Bool(b) => sip.write_u8(if *b { b't' } else { b'f' }),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                sip.write_u8(b'u');
                sip.write_u64(u);
            } else if let Some(i) = n.as_i64() {
                sip.write_u8(b'i');
                sip.write_i64(i);
            } else {
                sip.write_u8(b'd');
                sip.write_u64(n.as_f64().unwrap_or(f64::NAN).to_bits());
            }
        }
        Value::String(s) => {
            sip.write_u8(b's');
            text(sip, s);
        }
        Value::Array(items) => {
            sip.write_u8(b'[');
            sip.write_u64(items.len() as u64);
            for item in items {
                value(sip, item);
            }
        }
        Value::Object(map) => object(sip, map),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn objects_that_render_differently_have_different_ids() {
        let r = Rendered::new();
        let variants = [
            json!({"a": "x"}),
            json!({"a": "y"}),
            json!({"b": "x"}),
            json!({"a": ["x"]}),
            json!({"a": {"x": null}}),
            json!({"a": 1}),
            json!({"a": -1}),
            json!({"a": 1.0}),
            json!({"a": "1"}),
            json!({"a": true}),
            json!({"a": null}),
            json!({"a": "", "b": ""}),
            json!({"ab": ""}),
            json!({"a": ["x", "y"]}),
            json!({"a": ["xy"]}),
            json!({"a": [["x"], "y"]}),
        ];
        let mut ids = std::collections::HashSet::new();
        for v in &variants {
            assert!(ids.insert(r.id(&map(v.clone()), None)), "{v}");
        }
        let m = map(json!({"accessor": "x"}));
        assert_ne!(r.id(&m, None), r.id(&m, Some("accessor")));
        assert_eq!(r.id(&m, None), r.id(&map(json!({"accessor": "x"})), None));
    }

    #[test]
    fn the_memo_stays_bounded_and_skips_huge_objects() {
        let r = Rendered::new();
        let block = vec![b'x'; 60 << 10];
        for i in 0..1000u128 {
            r.put(i, &block);
            assert!(r.bytes() <= MAX_BYTES);
        }
        assert!(r.get(999).is_some());
        r.put(5000, &vec![b'x'; MAX_OBJECT + 1]);
        assert!(r.get(5000).is_none());
    }

    #[test]
    fn two_devices_name_the_same_object_differently() {
        let m = map(json!({"password": "hunter2"}));
        assert_ne!(Rendered::new().id(&m, None), Rendered::new().id(&m, None));
    }
}
