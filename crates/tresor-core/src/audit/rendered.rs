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
use zeroize::Zeroizing;

use crate::memo::{Identity, sip_key};

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
    ///
    /// The object's tagged byte stream is gathered into one buffer and hashed in one call:
    /// feeding SipHash each tag, length and string on its own cost more than the hashing. The
    /// buffer holds the object's strings, so it is sized exactly up front (no reallocation
    /// leaves a copy behind) and zeroed when dropped.
    pub(crate) fn id(&self, map: &Map<String, Value>, keep: Option<&str>) -> u128 {
        let len = 1 + keep.map_or(0, text_len) + object_len(map);
        let mut stream = Zeroizing::new(Vec::with_capacity(len));
        match keep {
            Some(k) => {
                stream.push(1);
                text(&mut stream, k);
            }
            None => stream.push(0),
        }
        object(&mut stream, map);
        let mut sip = SipHasher24::new_with_key(&self.key);
        sip.write(&stream);
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
// byte stream fed to SipHash names exactly one object. The `_len` functions give the stream's
// exact length.

fn text_len(s: &str) -> usize {
    8 + s.len()
}

fn text(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn object_len(map: &Map<String, Value>) -> usize {
    1 + 8
        + map
            .iter()
            .map(|(key, v)| text_len(key) + value_len(v))
            .sum::<usize>()
}

fn object(out: &mut Vec<u8>, map: &Map<String, Value>) {
    out.push(b'{');
    out.extend_from_slice(&(map.len() as u64).to_le_bytes());
    for (key, v) in map {
        text(out, key);
        value(out, v);
    }
}

fn value_len(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) => 1,
        Value::Number(_) => 1 + 8,
        Value::String(s) => 1 + text_len(s),
        Value::Array(items) => 1 + 8 + items.iter().map(value_len).sum::<usize>(),
        Value::Object(map) => object_len(map),
    }
}

fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(b'n'),
        Value::Bool(b) => out.push(if *b { b't' } else { b'f' }),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.push(b'u');
                out.extend_from_slice(&u.to_le_bytes());
            } else if let Some(i) = n.as_i64() {
                out.push(b'i');
                out.extend_from_slice(&i.to_le_bytes());
            } else {
                out.push(b'd');
                out.extend_from_slice(&n.as_f64().unwrap_or(f64::NAN).to_bits().to_le_bytes());
            }
        }
        Value::String(s) => {
            out.push(b's');
            text(out, s);
        }
        Value::Array(items) => {
            out.push(b'[');
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                value(out, item);
            }
        }
        Value::Object(map) => object(out, map),
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

    /// The stream is sized exactly, so it is never reallocated (which would leave a copy of the
    /// object's strings behind, unzeroed).
    #[test]
    fn the_fingerprint_stream_is_sized_exactly() {
        for v in [
            json!({}),
            json!({"a": "x", "b": [1, -2, 2.5, null, true, {"c": ["d"]}], "e": {"f": ""}}),
            json!({"data": {"password": "hunter2"}, "metadata": {"version": 3}}),
        ] {
            let m = map(v);
            let mut stream = Vec::new();
            object(&mut stream, &m);
            assert_eq!(stream.len(), object_len(&m));
        }
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
