//! `pem_keys`: public keys (or certificates, whose key is used) that must have signed a login
//! JWT. Not every cluster publishes its service account signing keys, so this is optional; the
//! TokenReview is made either way.
//!
//! A PEM block holds a SubjectPublicKeyInfo (`PUBLIC KEY`) or an X.509 certificate, whatever its
//! label says, as OpenBao's `certutil.ParsePublicKeyPEM` reads it. Only the few DER structures
//! on the way to the key are walked here; signatures are checked by ring.

use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};

const OID_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x23];
const OID_ED25519: &[u8] = &[0x2B, 0x65, 0x70];

const NO_KEYS: &str = "data does not contain any valid public keys";

/// A public key that may verify a JWT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublicKey {
    /// The PKCS#1 `RSAPublicKey` DER.
    Rsa(Vec<u8>),
    /// An uncompressed EC point on P-256, P-384 or P-521.
    Ec(Curve, Vec<u8>),
    Ed25519(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
    /// Accepted in `pem_keys` as OpenBao accepts it; ring cannot verify ES512, so a JWT signed
    /// with such a key never verifies (DIFFERENCES.md).
    P521,
}

impl PublicKey {
    /// Parses one `pem_keys` entry; the error is OpenBao's wording where it has one.
    pub(crate) fn parse_pem(pem: &str) -> Result<Self, String> {
        let mut reader = pem.as_bytes();
        let item = match rustls_pemfile::read_one(&mut reader) {
            Ok(Some(rustls_pemfile::Item::X509Certificate(der))) => {
                Block::Certificate(der.as_ref().to_vec())
            }
            Ok(Some(rustls_pemfile::Item::SubjectPublicKeyInfo(der))) => {
                Block::Spki(der.as_ref().to_vec())
            }
            // Other PEM blocks (private keys, CRLs) and no PEM at all: nothing to verify with.
            _ => return Err(NO_KEYS.to_owned()),
        };
        if !reader.iter().all(u8::is_ascii_whitespace) {
            return Err("unexpected trailing data after parsed PEM block".to_owned());
        }
        let spki = match item {
            Block::Spki(der) => der,
            Block::Certificate(der) => certificate_spki(&der)
                .ok_or_else(|| "x509: malformed certificate".to_owned())?
                .to_vec(),
        };
        Self::from_spki(&spki)
    }

    fn from_spki(der: &[u8]) -> Result<Self, String> {
        let malformed = || "x509: failed to parse public key".to_owned();
        let (spki, _) = expect(der, SEQUENCE).ok_or_else(malformed)?;
        let (alg, rest) = expect(spki, SEQUENCE).ok_or_else(malformed)?;
        let (bits, _) = expect(rest, BIT_STRING).ok_or_else(malformed)?;
        // A BIT STRING's first byte counts unused bits; keys always use whole bytes.
        let key = match bits.split_first() {
            Some((0, key)) => key.to_vec(),
            _ => return Err(malformed()),
        };
        let (oid, params) = expect(alg, OID).ok_or_else(malformed)?;
        if oid == OID_RSA {
            return Ok(PublicKey::Rsa(key));
        }
        if oid == OID_ED25519 {
            return if key.len() == 32 {
                Ok(PublicKey::Ed25519(key))
            } else {
                Err(malformed())
            };
        }
        if oid == OID_EC {
            let (curve, _) = expect(params, OID).ok_or_else(malformed)?;
            let curve = match curve {
                c if c == OID_P256 => Curve::P256,
                c if c == OID_P384 => Curve::P384,
                c if c == OID_P521 => Curve::P521,
                _ => return Err("x509: unsupported elliptic curve".to_owned()),
            };
            return Ok(PublicKey::Ec(curve, key));
        }
        Err("x509: unknown public key algorithm".to_owned())
    }

    /// Whether `signature` over `message` verifies with this key under the JWS `alg`.
    pub(crate) fn verifies(&self, alg: &str, message: &[u8], signature: &[u8]) -> bool {
        let (algorithm, key): (&'static dyn VerificationAlgorithm, &[u8]) = match (alg, self) {
            ("RS256", PublicKey::Rsa(k)) => (&signature::RSA_PKCS1_2048_8192_SHA256, k),
            ("RS384", PublicKey::Rsa(k)) => (&signature::RSA_PKCS1_2048_8192_SHA384, k),
            ("RS512", PublicKey::Rsa(k)) => (&signature::RSA_PKCS1_2048_8192_SHA512, k),
            ("PS256", PublicKey::Rsa(k)) => (&signature::RSA_PSS_2048_8192_SHA256, k),
            ("PS384", PublicKey::Rsa(k)) => (&signature::RSA_PSS_2048_8192_SHA384, k),
            ("PS512", PublicKey::Rsa(k)) => (&signature::RSA_PSS_2048_8192_SHA512, k),
            ("ES256", PublicKey::Ec(Curve::P256, k)) => (&signature::ECDSA_P256_SHA256_FIXED, k),
            ("ES384", PublicKey::Ec(Curve::P384, k)) => (&signature::ECDSA_P384_SHA384_FIXED, k),
            ("EdDSA", PublicKey::Ed25519(k)) => (&signature::ED25519, k),
            _ => return false,
        };
        UnparsedPublicKey::new(algorithm, key)
            .verify(message, signature)
            .is_ok()
    }
}

enum Block {
    Spki(Vec<u8>),
    Certificate(Vec<u8>),
}

const SEQUENCE: u8 = 0x30;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;
const INTEGER: u8 = 0x02;
const EXPLICIT_0: u8 = 0xA0;

/// One DER TLV: `(tag, contents, rest)`; lengths up to four bytes.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    match tlv(input)? {
        (t, contents, rest) if t == tag => Some((contents, rest)),
        _ => None,
    }
}

/// The SubjectPublicKeyInfo (as a whole TLV) inside a certificate's TBSCertificate.
fn certificate_spki(der: &[u8]) -> Option<&[u8]> {
    let (cert, _) = expect(der, SEQUENCE)?;
    let (mut tbs, _) = expect(cert, SEQUENCE)?;
    if tbs.first() == Some(&EXPLICIT_0) {
        tbs = tlv(tbs)?.2;
    }
    let (_, rest) = expect(tbs, INTEGER)?; // serialNumber
    let (_, rest) = expect(rest, SEQUENCE)?; // signature
    let (_, rest) = expect(rest, SEQUENCE)?; // issuer
    let (_, rest) = expect(rest, SEQUENCE)?; // validity
    let (_, rest) = expect(rest, SEQUENCE)?; // subject
    let (_, after) = expect(rest, SEQUENCE)?; // subjectPublicKeyInfo
    rest.get(..rest.len().saturating_sub(after.len()))
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};

    use super::*;

    fn pem(label: &str, der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    /// Wraps a raw EC point or Ed25519 key in a SubjectPublicKeyInfo.
    fn spki(alg: &[u8], key: &[u8]) -> Vec<u8> {
        fn wrap(tag: u8, body: &[u8]) -> Vec<u8> {
            let mut out = vec![tag];
            if body.len() < 0x80 {
                out.push(body.len() as u8);
            } else {
                out.push(0x81);
                out.push(body.len() as u8);
            }
            out.extend_from_slice(body);
            out
        }
        let mut bits = vec![0u8];
        bits.extend_from_slice(key);
        let mut body = wrap(SEQUENCE, alg);
        body.extend(wrap(BIT_STRING, &bits));
        wrap(SEQUENCE, &body)
    }

    fn ec_alg() -> Vec<u8> {
        let mut alg = vec![OID, OID_EC.len() as u8];
        alg.extend_from_slice(OID_EC);
        alg.extend_from_slice(&[OID, OID_P256.len() as u8]);
        alg.extend_from_slice(OID_P256);
        alg
    }

    #[test]
    fn an_es256_key_verifies_its_own_signatures_only() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
            &rng,
        )
        .unwrap();
        let key = PublicKey::parse_pem(&pem(
            "PUBLIC KEY",
            &spki(&ec_alg(), pair.public_key().as_ref()),
        ))
        .unwrap();
        let sig = pair.sign(&rng, b"header.payload").unwrap();
        assert!(key.verifies("ES256", b"header.payload", sig.as_ref()));
        assert!(!key.verifies("ES256", b"header.payloaX", sig.as_ref()));
        assert!(!key.verifies("RS256", b"header.payload", sig.as_ref()));
    }

    #[test]
    fn an_ed25519_key_parses_and_verifies() {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let mut alg = vec![OID, OID_ED25519.len() as u8];
        alg.extend_from_slice(OID_ED25519);
        let key = PublicKey::parse_pem(&pem("PUBLIC KEY", &spki(&alg, pair.public_key().as_ref())))
            .unwrap();
        let sig = pair.sign(b"m");
        assert!(key.verifies("EdDSA", b"m", sig.as_ref()));
    }

    #[test]
    fn garbage_and_trailing_data_are_refused_with_openbaos_words() {
        assert_eq!(PublicKey::parse_pem("nope").unwrap_err(), NO_KEYS);
        let good = pem("PUBLIC KEY", &spki(&ec_alg(), &[4u8; 65]));
        assert_eq!(
            PublicKey::parse_pem(&format!("{good}trailing")).unwrap_err(),
            "unexpected trailing data after parsed PEM block"
        );
        assert!(PublicKey::parse_pem(&format!("{good}\n\n")).is_ok());
        assert!(PublicKey::parse_pem(&pem("PUBLIC KEY", &[0x30, 0x01])).is_err());
    }

    #[test]
    fn an_rs256_key_from_a_public_key_pem_verifies() {
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        use rsa::signature::{SignatureEncoding, Signer};
        let private = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
        let pem = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let key = PublicKey::parse_pem(&pem).unwrap();
        let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(private);
        let sig = signer.sign(b"h.p").to_vec();
        assert!(key.verifies("RS256", b"h.p", &sig));
        assert!(!key.verifies("RS384", b"h.p", &sig));
        assert!(!key.verifies("ES256", b"h.p", &sig));
    }

    #[test]
    fn der_lengths_are_bounded() {
        assert!(tlv(&[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]).is_none());
        assert!(tlv(&[0x30, 0x85, 0, 0, 0, 0, 1]).is_none());
        assert_eq!(tlv(&[0x30, 0x81, 0x01, 0xAA]).unwrap().1, &[0xAA]);
    }
}
