//! Verification keys and signature algorithms: PEM public keys (`jwt_validation_pubkeys`), JSON
//! Web Keys (a JWKS), and the JWS `alg` values OpenBao accepts. `ring` does every signature
//! check; this module only decides which key may check which algorithm.
//!
//! Key confusion is impossible by construction: there is no symmetric key type at all (`oct`
//! JWKs are skipped, `HS*` is never an algorithm), and an algorithm is only ever tried with a
//! key of its own family and curve (an RSA key never checks an `ES256` signature).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::Value;
use spki::der::DecodePem as _;
use spki::der::asn1::ObjectIdentifier;

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// The JWS algorithms OpenBao allows (`consts.AllowedJWTSignatureAlgorithmsBao`), in its order.
pub(crate) const ALLOWED_ALGS: [&str; 10] = [
    "ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
];

/// A JWS signature algorithm this method can be configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    Es512,
    EdDsa,
}

impl Alg {
    pub(crate) fn parse(name: &str) -> Option<Alg> {
        Some(match name {
            "RS256" => Alg::Rs256,
            "RS384" => Alg::Rs384,
            "RS512" => Alg::Rs512,
            "PS256" => Alg::Ps256,
            "PS384" => Alg::Ps384,
            "PS512" => Alg::Ps512,
            "ES256" => Alg::Es256,
            "ES384" => Alg::Es384,
            "ES512" => Alg::Es512,
            "EdDSA" => Alg::EdDsa,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::Es512 => "ES512",
            Alg::EdDsa => "EdDSA",
        }
    }

    fn rsa_params(self) -> Option<&'static signature::RsaParameters> {
        Some(match self {
            Alg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Alg::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Alg::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Alg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
            Alg::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
            Alg::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
            _ => return None,
        })
    }
}

/// The public half of a verification key, in the form `ring` takes it.
#[derive(Clone, PartialEq, Eq)]
enum Material {
    /// PKCS#1 `RSAPublicKey` DER (the bit string of an SPKI).
    RsaDer(Vec<u8>),
    /// Big-endian modulus and exponent (a JWK's `n` and `e`).
    RsaComponents {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed SEC1 point on P-256 or P-384.
    EcP256(Vec<u8>),
    EcP384(Vec<u8>),
    /// P-521 keys parse (OpenBao accepts them) but `ring` cannot verify ES512.
    EcP521,
    Ed25519(Vec<u8>),
}

/// A verification key: from a PEM (no kid) or from a JWKS entry.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PublicKey {
    pub(crate) kid: Option<String>,
    /// The JWK's `alg`, when it pins one.
    alg: Option<String>,
    material: Material,
}

/// Public keys are not secret, but a Debug of one says only what it is.
impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.kid)
            .field("type", &self.type_name())
            .finish()
    }
}

/// Why a signature was not accepted by one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mismatch {
    /// The key cannot check this algorithm (another family, curve, or a JWK `alg` pin).
    WrongKeyType,
    /// `ES512`: no P-521 support in the crypto library.
    Unsupported,
    /// The signature does not verify.
    BadSignature,
}

impl PublicKey {
    fn type_name(&self) -> &'static str {
        match self.material {
            Material::RsaDer(_) | Material::RsaComponents { .. } => "RSA",
            Material::EcP256(_) => "EC P-256",
            Material::EcP384(_) => "EC P-384",
            Material::EcP521 => "EC P-521",
            Material::Ed25519(_) => "Ed25519",
        }
    }

    /// Checks `signature` over `message` with this key for `alg`.
    pub(crate) fn verify(&self, alg: Alg, message: &[u8], sig: &[u8]) -> Result<(), Mismatch> {
        if self.alg.as_deref().is_some_and(|a| a != alg.name()) {
            return Err(Mismatch::WrongKeyType);
        }
        let result = match (&self.material, alg) {
            (Material::RsaDer(der), _) => {
                let params = alg.rsa_params().ok_or(Mismatch::WrongKeyType)?;
                UnparsedPublicKey::new(params, der).verify(message, sig)
            }
            (Material::RsaComponents { n, e }, _) => {
                let params = alg.rsa_params().ok_or(Mismatch::WrongKeyType)?;
                RsaPublicKeyComponents { n, e }.verify(params, message, sig)
            }
            (Material::EcP256(point), Alg::Es256) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
            }
            (Material::EcP384(point), Alg::Es384) => {
                UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                    .verify(message, sig)
            }
            (Material::EcP521, Alg::Es512) => return Err(Mismatch::Unsupported),
            (Material::Ed25519(raw), Alg::EdDsa) => {
                UnparsedPublicKey::new(&signature::ED25519, raw).verify(message, sig)
            }
            _ => return Err(Mismatch::WrongKeyType),
        };
        result.map_err(|_| Mismatch::BadSignature)
    }

    /// Parses one PEM block holding a `PUBLIC KEY` (SubjectPublicKeyInfo): RSA, EC P-256/384/521
    /// or Ed25519. The error is OpenBao's wording; it never repeats the input.
    pub(crate) fn from_pem(pem: &str) -> Result<PublicKey, String> {
        let trimmed = pem.trim();
        if !trimmed.starts_with("-----BEGIN") {
            return Err("data does not contain any valid public keys".to_owned());
        }
        if trimmed.starts_with("-----BEGIN CERTIFICATE") {
            return Err(
                "certificates are not accepted here: give the certificate's public key (openssl x509 -pubkey -noout)"
                    .to_owned(),
            );
        }
        let info = spki::SubjectPublicKeyInfoOwned::from_pem(trimmed.as_bytes())
            .map_err(|_| "data does not contain any valid public keys".to_owned())?;
        let bits = info
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| "data does not contain any valid public keys".to_owned())?
            .to_vec();
        let material = match info.algorithm.oid {
            OID_RSA => Material::RsaDer(bits),
            OID_ED25519 if bits.len() == 32 => Material::Ed25519(bits),
            OID_EC => {
                let curve = info
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
                match curve {
                    Some(OID_P256) => Material::EcP256(bits),
                    Some(OID_P384) => Material::EcP384(bits),
                    Some(OID_P521) => Material::EcP521,
                    _ => return Err("x509: unsupported elliptic curve".to_owned()),
                }
            }
            _ => return Err("x509: unknown public key algorithm".to_owned()),
        };
        Ok(PublicKey {
            kid: None,
            alg: None,
            material,
        })
    }

    /// One JWK of a JWKS. `None` for keys that cannot verify signatures here: symmetric (`oct`)
    /// keys, encryption keys (`use` other than `sig`), and unknown types or curves.
    pub(crate) fn from_jwk(jwk: &Value) -> Option<PublicKey> {
        let field = |name: &str| jwk.get(name).and_then(Value::as_str);
        let bytes = |name: &str| field(name).and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
        if field("use").is_some_and(|u| u != "sig") {
            return None;
        }
        let material = match (field("kty")?, field("crv")) {
            ("RSA", _) => Material::RsaComponents {
                n: strip_leading_zeros(bytes("n")?),
                e: strip_leading_zeros(bytes("e")?),
            },
            ("EC", Some(crv)) => {
                let (x, y) = (bytes("x")?, bytes("y")?);
                let size = match crv {
                    "P-256" => 32,
                    "P-384" => 48,
                    "P-521" => 66,
                    _ => return None,
                };
                if x.len() != size || y.len() != size {
                    return None;
                }
                let mut point = Vec::with_capacity(1 + 2 * size);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                match crv {
                    "P-256" => Material::EcP256(point),
                    "P-384" => Material::EcP384(point),
                    _ => Material::EcP521,
                }
            }
            ("OKP", Some("Ed25519")) => {
                let x = bytes("x")?;
                if x.len() != 32 {
                    return None;
                }
                Material::Ed25519(x)
            }
            _ => return None,
        };
        Some(PublicKey {
            kid: field("kid").map(str::to_owned),
            alg: field("alg").map(str::to_owned),
            material,
        })
    }
}

/// A JWK's big-endian integers may carry leading zero bytes; ring wants them minimal.
fn strip_leading_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let zeros = v.iter().take_while(|b| **b == 0).count();
    if zeros > 0 && zeros < v.len() {
        v.drain(..zeros);
    }
    v
}

/// Parses a JWKS document (`{"keys": [...]}`), keeping the keys that can verify signatures.
pub(crate) fn parse_jwks(doc: &Value) -> Result<Vec<PublicKey>, String> {
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| "the JWKS document has no \"keys\" array".to_owned())?;
    Ok(keys.iter().filter_map(PublicKey::from_jwk).collect())
}

#[cfg(test)]
pub(crate) mod test_keys {
    //! Keys and signers for tests: RSA from the `rsa` crate, EC and Ed25519 from ring.

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ring::rand::SystemRandom;
    use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    use rsa::signature::{SignatureEncoding, Signer};
    use rsa::traits::PublicKeyParts;
    use serde_json::{Value, json};

    pub(crate) enum TestKey {
        Rsa(Box<rsa::RsaPrivateKey>),
        Es256(EcdsaKeyPair),
        Ed(Ed25519KeyPair),
    }

    impl TestKey {
        pub(crate) fn rsa() -> TestKey {
            let mut rng = rand_core::OsRng;
            TestKey::Rsa(Box::new(rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap()))
        }

        pub(crate) fn es256() -> TestKey {
            let rng = SystemRandom::new();
            let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
            TestKey::Es256(EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap())
        }

        pub(crate) fn ed25519() -> TestKey {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
            TestKey::Ed(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap())
        }

        pub(crate) fn alg(&self) -> &'static str {
            match self {
                TestKey::Rsa(_) => "RS256",
                TestKey::Es256(_) => "ES256",
                TestKey::Ed(_) => "EdDSA",
            }
        }

        pub(crate) fn public_pem(&self) -> String {
            match self {
                TestKey::Rsa(k) => k.to_public_key().to_public_key_pem(LineEnding::LF).unwrap(),
                TestKey::Es256(k) => spki_pem(
                    "1.2.840.10045.2.1",
                    Some("1.2.840.10045.3.1.7"),
                    k.public_key().as_ref(),
                ),
                TestKey::Ed(k) => spki_pem("1.3.101.112", None, k.public_key().as_ref()),
            }
        }

        pub(crate) fn jwk(&self, kid: &str) -> Value {
            let b = |v: &[u8]| URL_SAFE_NO_PAD.encode(v);
            match self {
                TestKey::Rsa(k) => json!({"kty": "RSA", "kid": kid, "use": "sig",
                    "n": b(&k.n().to_bytes_be()), "e": b(&k.e().to_bytes_be())}),
                TestKey::Es256(k) => {
                    let p = k.public_key().as_ref();
                    json!({"kty": "EC", "crv": "P-256", "kid": kid,
                        "x": b(&p[1..33]), "y": b(&p[33..65])})
                }
                TestKey::Ed(k) => {
                    json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b(k.public_key().as_ref())})
                }
            }
        }

        pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
            match self {
                TestKey::Rsa(k) => {
                    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new((**k).clone());
                    signer.sign(message).to_vec()
                }
                TestKey::Es256(k) => k
                    .sign(&SystemRandom::new(), message)
                    .unwrap()
                    .as_ref()
                    .to_vec(),
                TestKey::Ed(k) => k.sign(message).as_ref().to_vec(),
            }
        }

        /// A compact JWS over `claims` with this key's algorithm and `kid`.
        pub(crate) fn token(&self, kid: Option<&str>, claims: &Value) -> String {
            let mut header = json!({"alg": self.alg(), "typ": "JWT"});
            if let Some(kid) = kid {
                header["kid"] = json!(kid);
            }
            sign_with(&header, claims, |m| self.sign(m))
        }
    }

    /// `header.payload.signature` with any signing function (tests forge headers with it).
    pub(crate) fn sign_with(
        header: &Value,
        claims: &Value,
        sign: impl FnOnce(&[u8]) -> Vec<u8>,
    ) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// A `PUBLIC KEY` PEM for a raw key (DER written by hand: tests only).
    fn spki_pem(alg_oid: &str, curve_oid: Option<&str>, key: &[u8]) -> String {
        use spki::der::asn1::{AnyRef, BitStringRef, ObjectIdentifier};
        use spki::der::{Encode, EncodePem};
        let curve = curve_oid.map(ObjectIdentifier::new_unwrap);
        let info = spki::SubjectPublicKeyInfo {
            algorithm: spki::AlgorithmIdentifier {
                oid: ObjectIdentifier::new_unwrap(alg_oid),
                parameters: curve.as_ref().map(AnyRef::from),
            },
            subject_public_key: BitStringRef::from_bytes(key).unwrap(),
        };
        let _ = info.to_der().unwrap();
        info.to_pem(spki::der::pem::LineEnding::LF).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_keys::TestKey;
    use super::*;

    #[test]
    fn pem_and_jwk_keys_verify_their_own_algorithm_only() {
        for key in [TestKey::rsa(), TestKey::es256(), TestKey::ed25519()] {
            let alg = Alg::parse(key.alg()).unwrap();
            let sig = key.sign(b"message");
            let pem = PublicKey::from_pem(&key.public_pem()).unwrap();
            let jwk = PublicKey::from_jwk(&key.jwk("k1")).unwrap();
            for k in [&pem, &jwk] {
                assert_eq!(k.verify(alg, b"message", &sig), Ok(()), "{}", key.alg());
                assert_eq!(
                    k.verify(alg, b"tampered", &sig),
                    Err(Mismatch::BadSignature)
                );
            }
            let other = if alg == Alg::EdDsa {
                Alg::Rs256
            } else {
                Alg::EdDsa
            };
            assert_eq!(
                pem.verify(other, b"message", &sig),
                Err(Mismatch::WrongKeyType)
            );
            assert_eq!(jwk.kid.as_deref(), Some("k1"));
        }
    }

    #[test]
    fn symmetric_and_encryption_jwks_are_never_keys() {
        let oct = serde_json::json!({"kty": "oct", "k": "c2VjcmV0", "kid": "h"});
        assert!(PublicKey::from_jwk(&oct).is_none());
        let mut enc = TestKey::es256().jwk("e");
        enc["use"] = "enc".into();
        assert!(PublicKey::from_jwk(&enc).is_none());
        let doc = serde_json::json!({"keys": [oct, enc, TestKey::ed25519().jwk("ok")]});
        let keys = parse_jwks(&doc).unwrap();
        assert_eq!(keys.len(), 1);
        assert!(parse_jwks(&serde_json::json!({"nokeys": 1})).is_err());
    }

    #[test]
    fn malformed_pems_are_refused_without_echoing_them() {
        for bad in [
            "not a pem",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
        ] {
            let err = PublicKey::from_pem(bad).unwrap_err();
            assert!(!err.contains("AAAA"), "{err}");
        }
    }

    #[test]
    fn a_jwk_alg_pin_restricts_the_key() {
        let key = TestKey::rsa();
        let mut jwk = key.jwk("k");
        jwk["alg"] = "PS256".into();
        let k = PublicKey::from_jwk(&jwk).unwrap();
        let sig = key.sign(b"m");
        assert_eq!(
            k.verify(Alg::Rs256, b"m", &sig),
            Err(Mismatch::WrongKeyType)
        );
    }
}
