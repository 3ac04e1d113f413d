//! JSON written straight into a buffer for the hot paths (answers, audit lines), byte for byte
//! what `serde_json` writes for the same value.
//!
//! Why not `serde_json::to_writer`: it escapes a string by looking each byte up in a table and
//! branching on it, which made escaping the largest single cost of a KV v2 read's answer
//! (about a tenth of all the instructions of the request). Almost no secret needs escaping, so
//! a string is first scanned for the bytes JSON escapes (`"`, `\` and control characters: the
//! same set `serde_json` escapes) with a loop the compiler turns into vector instructions, and
//! copied whole when there are none; `serde_json` still writes every string that has one, and
//! every number.

use serde_json::{Map, Value};

/// Appends `value` as `serde_json` would serialise it.
pub fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_serialized(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => write_map(out, map),
    }
}

/// Appends `map` as a JSON object, in its own (sorted) key order.
pub fn write_map(out: &mut Vec<u8>, map: &Map<String, Value>) {
    out.push(b'{');
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, key);
        out.push(b':');
        write_value(out, value);
    }
    out.push(b'}');
}

/// Appends `s` as a JSON string.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        write_serialized(out, s);
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// Whether any byte is one JSON escapes. Checked 32 bytes at a time with no early exit inside
/// a block, so the compiler turns each block into a few vector instructions. The tail (all of
/// a short string: most keys and values are) is copied into a block padded with spaces, which
/// JSON does not escape, rather than checked byte by byte: a scalar pass over twenty bytes
/// cost more than the copy and one block.
fn needs_escape(bytes: &[u8]) -> bool {
    let (blocks, tail) = bytes.as_chunks::<BLOCK>();
    for block in blocks {
        if block_needs_escape(block) {
            return true;
        }
    }
    if tail.is_empty() {
        return false;
    }
    let mut padded = [b' '; BLOCK];
    // `as_chunks` leaves fewer than BLOCK bytes, so the slot always exists; were it not to,
    // "needs escaping" sends the string through serde_json, which is always right.
    match padded.get_mut(..tail.len()) {
        Some(slot) => slot.copy_from_slice(tail),
        None => return true,
    }
    block_needs_escape(&padded)
}

const BLOCK: usize = 32;

#[inline(always)]
fn block_needs_escape(block: &[u8; BLOCK]) -> bool {
    let escaped = |b: u8| u8::from(b < 0x20) | u8::from(b == b'"') | u8::from(b == b'\\');
    block.iter().fold(0u8, |found, &b| found | escaped(b)) != 0
}

/// Appends `serde_json`'s own output for `value` (used here for numbers and strings that need
/// escaping, and by callers for anything else). Serialising into a `Vec` fails only for values
/// serde_json cannot represent; `null` then keeps the document well-formed.
pub fn write_serialized<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let start = out.len();
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.truncate(start);
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn written(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        write_value(&mut out, value);
        out
    }

    #[test]
    fn every_kind_of_value_is_written_as_serde_json_writes_it() {
        let value = json!({
            "plain": "abc",
            "quote": "a\"b",
            "backslash": "a\\b",
            "controls": "\u{0}\u{1}\u{8}\u{9}\u{a}\u{c}\u{d}\u{1f}",
            "del and unicode": "\u{7f}é漢字🔑/<>",
            "empty": "",
            "numbers": [0, -1, 1.5, 1e300, u64::MAX, i64::MIN, 0.1],
            "nested": {"a": [null, true, false, {"b": []}], "z": {}},
        });
        assert_eq!(written(&value), serde_json::to_vec(&value).unwrap());
    }

    /// An escaped byte is found wherever it sits: in a 32-byte block or in the tail after them.
    #[test]
    fn an_escape_is_found_at_every_position() {
        for escape in ['"', '\\', '\n', '\u{0}', '\u{1f}'] {
            for at in 0..70 {
                let mut s: String = "x".repeat(70);
                s.replace_range(at..=at, &escape.to_string());
                let value = Value::String(s);
                assert_eq!(written(&value), serde_json::to_vec(&value).unwrap(), "{at}");
            }
        }
    }

    fn any_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[\\x00-\\x7f]{0,40}".prop_map(Value::String),
            "[ -~]{0,80}[\\x00-\\x7f]?[ -~]{0,40}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_value_is_written_byte_for_byte_as_serde_json_writes_it(value in any_value()) {
            prop_assert_eq!(written(&value), serde_json::to_vec(&value).unwrap());
        }
    }
}
