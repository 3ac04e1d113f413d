//! The key types transit offers, with Vault's names and what each can do.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum KeyType {
    #[serde(rename = "aes128-gcm96")]
    Aes128Gcm96,
    #[serde(rename = "aes256-gcm96")]
    Aes256Gcm96,
    #[serde(rename = "chacha20-poly1305")]
    ChaCha20Poly1305,
    #[serde(rename = "ed25519")]
    Ed25519,
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    #[serde(rename = "ecdsa-p384")]
    EcdsaP384,
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    #[serde(rename = "rsa-4096")]
    Rsa4096,
    #[serde(rename = "hmac")]
    Hmac,
}

impl KeyType {
    pub(crate) fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "aes128-gcm96" => Self::Aes128Gcm96,
            "aes256-gcm96" => Self::Aes256Gcm96,
            "chacha20-poly1305" => Self::ChaCha20Poly1305,
            "ed25519" => Self::Ed25519,
            "ecdsa-p256" => Self::EcdsaP256,
            "ecdsa-p384" => Self::EcdsaP384,
            "rsa-2048" => Self::Rsa2048,
            "rsa-3072" => Self::Rsa3072,
            "rsa-4096" => Self::Rsa4096,
            "hmac" => Self::Hmac,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Aes128Gcm96 => "aes128-gcm96",
            Self::Aes256Gcm96 => "aes256-gcm96",
            Self::ChaCha20Poly1305 => "chacha20-poly1305",
            Self::Ed25519 => "ed25519",
            Self::EcdsaP256 => "ecdsa-p256",
            Self::EcdsaP384 => "ecdsa-p384",
            Self::Rsa2048 => "rsa-2048",
            Self::Rsa3072 => "rsa-3072",
            Self::Rsa4096 => "rsa-4096",
            Self::Hmac => "hmac",
        }
    }

    /// The symmetric AEAD types (key length in bytes), which derive keys and take AAD.
    pub(crate) fn aead_key_len(self) -> Option<usize> {
        match self {
            Self::Aes128Gcm96 => Some(16),
            Self::Aes256Gcm96 | Self::ChaCha20Poly1305 => Some(32),
            _ => None,
        }
    }

    pub(crate) fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096)
    }

    pub(crate) fn rsa_bits(self) -> Option<usize> {
        match self {
            Self::Rsa2048 => Some(2048),
            Self::Rsa3072 => Some(3072),
            Self::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    pub(crate) fn supports_encryption(self) -> bool {
        self.aead_key_len().is_some() || self.is_rsa()
    }

    pub(crate) fn supports_signing(self) -> bool {
        matches!(self, Self::Ed25519 | Self::EcdsaP256 | Self::EcdsaP384) || self.is_rsa()
    }

    pub(crate) fn supports_derivation(self) -> bool {
        self.aead_key_len().is_some() || self == Self::Ed25519
    }

    pub(crate) fn is_asymmetric(self) -> bool {
        self.supports_signing()
    }
}
