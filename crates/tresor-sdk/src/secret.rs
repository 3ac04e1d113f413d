//! Containers for secret material.
//!
//! Everything that is a key, a token or a secret value lives in one of these types so that it
//! is wiped from memory when dropped and never printed by accident.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Bytes that are wiped when dropped and never printed.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Copies `bytes` into a new secret; the caller stays responsible for its own copy.
    pub fn copy_from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl From<Zeroizing<Vec<u8>>> for SecretBytes {
    fn from(bytes: Zeroizing<Vec<u8>>) -> Self {
        // The Zeroizing wrapper wipes its own buffer; we take a copy so both are wiped.
        Self(bytes.to_vec())
    }
}

impl PartialEq for SecretBytes {
    /// Constant-time: comparing secrets must not leak where they first differ.
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SecretBytes {}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A UTF-8 secret (a token, a password) that is wiped when dropped and never printed.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl PartialEq for SecretString {
    /// Constant-time, for the same reason as [`SecretBytes`].
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for SecretString {}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> serde::Deserialize<'de> for SecretString {
    /// Request bodies carry keys and tokens; they go straight into a zeroizing container.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let b = SecretBytes::copy_from(b"hunter2-bytes");
        let s = SecretString::from("hunter2-string");
        assert_eq!(format!("{b:?}"), "[redacted]");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&s)), "Some([redacted])");
    }

    #[test]
    fn equality_compares_contents() {
        assert_eq!(
            SecretBytes::copy_from(b"abc"),
            SecretBytes::copy_from(b"abc")
        );
        assert_ne!(
            SecretBytes::copy_from(b"abc"),
            SecretBytes::copy_from(b"abd")
        );
        assert_ne!(
            SecretBytes::copy_from(b"abc"),
            SecretBytes::copy_from(b"ab")
        );
        assert_eq!(SecretString::from("t"), SecretString::from("t"));
        assert_ne!(SecretString::from("t"), SecretString::from("u"));
    }
}
