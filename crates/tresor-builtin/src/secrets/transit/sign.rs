//! `sign/:name[/:hash_algorithm]` and `verify/:name[/:hash_algorithm]`.
//!
//! Formats are Vault's, so standard libraries verify them given the published key:
//! Ed25519 signs the input itself; ECDSA and RSA sign a digest of it (`hash_algorithm`,
//! default `sha2-256`; `prehashed` means the input already is that digest). ECDSA
//! signatures are ASN.1 DER or, with `marshaling_algorithm=jws`, `r ‖ s` in base64url.
//! RSA signs with PSS (salt length `auto` = the maximum, `hash`, or a number) or PKCS#1 v1.5.
//! As OpenBao, a batch answers 200 and reports failures per item.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use ring::signature::{ED25519, UnparsedPublicKey};
use rsa::traits::PublicKeyParts;
use serde_json::{Map, Value, json};
use tresor_sdk::engine::{EngineResult, Request, Response};
use tresor_sdk::storage::Storage;

use super::Transit;
use super::batch::{self, Item};
use super::ciphertext;
use super::crypt::{ItemError, TOO_OLD};
use super::digest::HashAlg;
use super::keytype::KeyType;
use super::material::{Material, base64_decode, base64_std};
use super::policy::KeyRing;
use super::req::{self, bad, object};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marshaling {
    Asn1,
    Jws,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Salt {
    Auto,
    Hash,
    Len(usize),
}

/// `hash_algorithm`; `None` is Vault's `none` (PKCS#1 v1.5 over a prehashed input).
type Hash = Option<HashAlg>;

#[derive(Debug, Clone, Copy)]
struct Options {
    hash: Hash,
    marshaling: Marshaling,
    prehashed: bool,
    pss: bool,
    salt: Salt,
}

fn options(request: &Request, url: Option<&str>) -> EngineResult<Options> {
    let mut hash_name = url.filter(|a| !a.is_empty()).map(str::to_owned);
    for field in ["hash_algorithm", "algorithm"] {
        if hash_name.is_none() {
            hash_name = req::string(request, field)?.filter(|a| !a.is_empty());
        }
    }
    let hash_name = hash_name.unwrap_or_else(|| "sha2-256".into());
    let hash = match hash_name.as_str() {
        "none" => None,
        other => Some(
            HashAlg::parse(other)
                .ok_or_else(|| bad(format!("invalid hash algorithm \"{hash_name}\"")))?,
        ),
    };
    let marshaling_name =
        req::string(request, "marshaling_algorithm")?.unwrap_or_else(|| "asn1".into());
    let marshaling = match marshaling_name.as_str() {
        "asn1" => Marshaling::Asn1,
        "jws" => Marshaling::Jws,
        _ => {
            return Err(bad(format!(
                "invalid marshaling type \"{marshaling_name}\""
            )));
        }
    };
    let prehashed = req::bool(request, "prehashed")?.unwrap_or(false);
    let signature_algorithm = req::string(request, "signature_algorithm")?.unwrap_or_default();
    let pss = match signature_algorithm.as_str() {
        "" | "pss" => true,
        "pkcs1v15" => false,
        other => return Err(bad(format!("unsupported rsa signature algorithm {other}"))),
    };
    let salt_text = req::string(request, "salt_length")?.unwrap_or_else(|| "auto".into());
    let salt = match salt_text.to_lowercase().as_str() {
        "auto" => Salt::Auto,
        "hash" => Salt::Hash,
        other => match other.parse::<i64>() {
            Ok(0) => Salt::Auto,
            Ok(-1) => Salt::Hash,
            Ok(n) if n > 0 => Salt::Len(usize::try_from(n).unwrap_or(usize::MAX)),
            Ok(n) => return Err(bad(format!("salt length is invalid: {n}"))),
            Err(_) => {
                return Err(bad(format!(
                    "salt length neither 'auto', 'hash', nor an int: {salt_text}"
                )));
            }
        },
    };
    Ok(Options {
        hash,
        marshaling,
        prehashed,
        pss,
        salt,
    })
}

/// Runs `$body` with `$d` bound to the digest type of a [`HashAlg`].
macro_rules! with_digest {
    ($alg:expr, $d:ident => $body:expr) => {
        match $alg {
            HashAlg::Sha2_224 => {
                type $d = sha2::Sha224;
                $body
            }
            HashAlg::Sha2_256 => {
                type $d = sha2::Sha256;
                $body
            }
            HashAlg::Sha2_384 => {
                type $d = sha2::Sha384;
                $body
            }
            HashAlg::Sha2_512 => {
                type $d = sha2::Sha512;
                $body
            }
            HashAlg::Sha3_224 => {
                type $d = sha3::Sha3_224;
                $body
            }
            HashAlg::Sha3_256 => {
                type $d = sha3::Sha3_256;
                $body
            }
            HashAlg::Sha3_384 => {
                type $d = sha3::Sha3_384;
                $body
            }
            HashAlg::Sha3_512 => {
                type $d = sha3::Sha3_512;
                $body
            }
        }
    };
}

/// The digest as Go's ECDSA reads it: shorter than the curve's field it is a smaller
/// number (left-padded with zeros); longer, its leftmost bytes are used (RustCrypto does that
/// part itself). RustCrypto refuses digests under half the field size, Go does not.
fn field_digest(digest: &[u8], field_len: usize) -> Vec<u8> {
    if digest.len() >= field_len {
        return digest.to_vec();
    }
    let mut padded = vec![0u8; field_len - digest.len()];
    padded.extend_from_slice(digest);
    padded
}

fn max_salt(key: &rsa::RsaPublicKey, hash_len: usize) -> usize {
    let em_len = (key.n().bits() + 6) / 8;
    em_len.saturating_sub(hash_len + 2)
}

fn rsa_padding_sign(options: &Options, key: &rsa::RsaPrivateKey) -> Result<RsaScheme, ItemError> {
    let Some(alg) = options.hash else {
        if options.pss {
            return Err(ItemError::user(
                "hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15",
            ));
        }
        return Ok(RsaScheme::Pkcs1(rsa::Pkcs1v15Sign::new_unprefixed()));
    };
    if !options.pss {
        return Ok(RsaScheme::Pkcs1(
            with_digest!(alg, D => rsa::Pkcs1v15Sign::new::<D>()),
        ));
    }
    let hash_len = alg.output_len();
    let max = max_salt(&key.to_public_key(), hash_len);
    let salt = match options.salt {
        Salt::Auto => max,
        Salt::Hash => hash_len,
        Salt::Len(n) if n <= max => n,
        Salt::Len(n) => {
            return Err(ItemError::User(format!(
                "requested salt length {n} is invalid"
            )));
        }
    };
    Ok(RsaScheme::Pss(
        with_digest!(alg, D => rsa::Pss::new_with_salt::<D>(salt)),
    ))
}

enum RsaScheme {
    Pss(rsa::Pss),
    Pkcs1(rsa::Pkcs1v15Sign),
}

fn signing_version(ring: &KeyRing, requested: i64) -> Result<u32, ItemError> {
    let latest = i64::from(ring.meta.latest_version);
    let min = i64::from(ring.meta.min_encryption_version);
    let v = match requested {
        0 => latest,
        v if v < 0 => return Err(ItemError::user("requested version for signing is negative")),
        v if v > latest => {
            return Err(ItemError::user(
                "requested version for signing is higher than the latest key version",
            ));
        }
        v if min > 0 && v < min => {
            return Err(ItemError::user(
                "requested version for signing is less than the minimum encryption key version",
            ));
        }
        v => v,
    };
    u32::try_from(v).map_err(|_| ItemError::user("no such key version"))
}

/// The bytes the key signs: the input, or its digest for ECDSA and RSA.
fn message(ring: &KeyRing, options: &Options, input: &[u8]) -> Vec<u8> {
    let hashes = !matches!(ring.meta.key_type, KeyType::Ed25519);
    match options.hash {
        Some(alg) if hashes && !options.prehashed => alg.digest(input),
        _ => input.to_vec(),
    }
}

/// A signature, and for derived Ed25519 keys the derived public key (Vault returns it).
struct Signed {
    signature: String,
    public_key: Option<Vec<u8>>,
}

impl Signed {
    /// The response fields; `public_key_field` names the public key (Ed25519 with a derived
    /// key only), which Go marshals as base64.
    fn data(self, version: u32, public_key_field: &str) -> Map<String, Value> {
        let mut data = object(json!({ "signature": self.signature, "key_version": version }));
        if let Some(public) = self.public_key {
            data.insert(public_key_field.into(), json!(base64_std(&public)));
        }
        data
    }
}

fn sign_one(
    ring: &KeyRing,
    options: &Options,
    version: u32,
    input: &[u8],
    context: &[u8],
) -> Result<Signed, ItemError> {
    use ring::signature::KeyPair;
    let entry = ring.version(version)?;
    let message = message(ring, options, input);
    let internal = |e: String| ItemError::Internal(e);
    let mut public_key = None;
    let signature: Vec<u8> = match &entry.material {
        Material::Ed25519 { seed, .. } if ring.meta.derived => {
            let pair = super::crypt::derived_ed25519(seed, context)?;
            public_key = Some(pair.public_key().as_ref().to_vec());
            pair.sign(&message).as_ref().to_vec()
        }
        Material::Ed25519 { pair, .. } => pair.sign(&message).as_ref().to_vec(),
        Material::P256(key) => {
            let sig: p256::ecdsa::Signature = key
                .sign_prehash(&field_digest(&message, 32))
                .map_err(|e| internal(e.to_string()))?;
            match options.marshaling {
                Marshaling::Asn1 => sig.to_der().as_bytes().to_vec(),
                Marshaling::Jws => sig.to_bytes().to_vec(),
            }
        }
        Material::P384(key) => {
            let sig: p384::ecdsa::Signature = key
                .sign_prehash(&field_digest(&message, 48))
                .map_err(|e| internal(e.to_string()))?;
            match options.marshaling {
                Marshaling::Asn1 => sig.to_der().as_bytes().to_vec(),
                Marshaling::Jws => sig.to_bytes().to_vec(),
            }
        }
        Material::Rsa(key) => match rsa_padding_sign(options, key)? {
            RsaScheme::Pss(scheme) => key
                .sign_with_rng(&mut rand_core::OsRng, scheme, &message)
                .map_err(|e| ItemError::User(e.to_string()))?,
            RsaScheme::Pkcs1(scheme) => key
                .sign_with_rng(&mut rand_core::OsRng, scheme, &message)
                .map_err(|e| ItemError::User(e.to_string()))?,
        },
        Material::Aead { .. } | Material::Hmac { .. } => {
            return Err(ItemError::User(format!(
                "message signing not supported for key type {}",
                ring.meta.key_type.name()
            )));
        }
    };
    let encoded = match options.marshaling {
        Marshaling::Jws => URL_SAFE_NO_PAD.encode(&signature),
        Marshaling::Asn1 => base64_std(&signature),
    };
    Ok(Signed {
        signature: ciphertext::format(version, &encoded),
        public_key,
    })
}

fn verify_one(
    ring: &KeyRing,
    options: &Options,
    input: &[u8],
    signature: &str,
    context: &[u8],
) -> Result<bool, ItemError> {
    let Some(rest) = signature.strip_prefix("vault:v") else {
        return Err(ItemError::user("invalid signature: no prefix"));
    };
    let Some((version, body)) = rest.split_once(':') else {
        return Err(ItemError::user("invalid signature: wrong number of fields"));
    };
    let version: u32 = version
        .parse()
        .map_err(|_| ItemError::user("invalid signature: version number could not be decoded"))?;
    let version = version.max(1);
    if version > ring.meta.latest_version {
        return Err(ItemError::user("invalid signature: version is too new"));
    }
    if ring.meta.min_decryption_version > 0 && version < ring.meta.min_decryption_version {
        return Err(ItemError::user(TOO_OLD));
    }
    let sig = match options.marshaling {
        Marshaling::Jws => URL_SAFE_NO_PAD.decode(body).ok(),
        Marshaling::Asn1 => base64_decode(body),
    };
    let Some(sig) = sig else {
        return Err(ItemError::user("invalid base64 signature value"));
    };
    let entry = ring.version(version)?;
    let message = message(ring, options, input);
    Ok(match &entry.material {
        Material::Ed25519 { seed, pair } => {
            use ring::signature::KeyPair;
            let public = if ring.meta.derived {
                super::crypt::derived_ed25519(seed, context)?
                    .public_key()
                    .as_ref()
                    .to_vec()
            } else {
                pair.public_key().as_ref().to_vec()
            };
            UnparsedPublicKey::new(&ED25519, &public)
                .verify(&message, &sig)
                .is_ok()
        }
        Material::P256(key) => {
            let parsed = match options.marshaling {
                Marshaling::Asn1 => p256::ecdsa::Signature::from_der(&sig),
                Marshaling::Jws => p256::ecdsa::Signature::from_slice(&sig),
            };
            parsed.is_ok_and(|s| {
                key.verifying_key()
                    .verify_prehash(&field_digest(&message, 32), &s)
                    .is_ok()
            })
        }
        Material::P384(key) => {
            let parsed = match options.marshaling {
                Marshaling::Asn1 => p384::ecdsa::Signature::from_der(&sig),
                Marshaling::Jws => p384::ecdsa::Signature::from_slice(&sig),
            };
            parsed.is_ok_and(|s| {
                key.verifying_key()
                    .verify_prehash(&field_digest(&message, 48), &s)
                    .is_ok()
            })
        }
        Material::Rsa(key) => {
            let public = key.to_public_key();
            match (options.pss, options.hash) {
                (true, Some(alg)) => {
                    // Go's `auto` accepts any salt length: try the ones signers use.
                    let hash_len = alg.output_len();
                    let candidates = match options.salt {
                        Salt::Auto => vec![max_salt(&public, hash_len), hash_len],
                        Salt::Hash => vec![hash_len],
                        Salt::Len(n) => vec![n],
                    };
                    candidates.into_iter().any(|salt| {
                        let scheme = with_digest!(alg, D => rsa::Pss::new_with_salt::<D>(salt));
                        public.verify(scheme, &message, &sig).is_ok()
                    })
                }
                (false, Some(alg)) => {
                    let scheme = with_digest!(alg, D => rsa::Pkcs1v15Sign::new::<D>());
                    public.verify(scheme, &message, &sig).is_ok()
                }
                (false, None) => public
                    .verify(rsa::Pkcs1v15Sign::new_unprefixed(), &message, &sig)
                    .is_ok(),
                (true, None) => {
                    return Err(ItemError::user(
                        "hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15",
                    ));
                }
            }
        }
        Material::Aead { .. } | Material::Hmac { .. } => {
            return Err(ItemError::User(format!(
                "message verification not supported for key type {}",
                ring.meta.key_type.name()
            )));
        }
    })
}

fn items(request: &Request) -> EngineResult<(Vec<Item<'_>>, bool)> {
    match batch::input(request)? {
        Some(items) => Ok((items, true)),
        None => {
            // A single request without `input` signs (or verifies) the empty input, as
            // OpenBao does; only batch items report "missing input".
            let mut map = serde_json::Map::new();
            map.insert("input".into(), json!(""));
            for field in ["input", "signature", "context"] {
                if let Some(v) = req::string(request, field)? {
                    map.insert(field.into(), json!(v));
                }
            }
            Ok((vec![Item(std::borrow::Cow::Owned(map))], false))
        }
    }
}

fn decode_context(item: &Item) -> EngineResult<Result<Vec<u8>, ItemError>> {
    let context = item.str("context")?;
    if context.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    Ok(base64_decode(&context).ok_or_else(|| ItemError::user("failed to base64-decode context")))
}

fn check_options(ring: &KeyRing, options: &Options, verb: &str) -> EngineResult<()> {
    if !ring.meta.key_type.supports_signing() {
        return Err(bad(format!(
            "key type {} does not support {verb}",
            ring.meta.key_type.name()
        )));
    }
    if options.hash.is_none() && (!options.prehashed || options.pss) {
        return Err(bad(
            "hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15",
        ));
    }
    Ok(())
}

pub(crate) async fn sign(
    transit: &Transit,
    request: &Request,
    storage: &dyn Storage,
    name: &str,
    url_algorithm: Option<&str>,
) -> EngineResult<Option<Response>> {
    let requested = req::int(request, "key_version")?.unwrap_or(0);
    let options = options(request, url_algorithm)?;
    let Some(ring) = transit.keys.get(storage, name).await? else {
        return Err(bad("signing key not found"));
    };
    check_options(&ring, &options, "signing")?;
    let (items, is_batch) = items(request)?;
    let mut results = Vec::with_capacity(items.len());
    for item in &items {
        let context = decode_context(item)?;
        let result = item.input()?.and_then(|input| {
            let context = context?;
            let version = signing_version(&ring, requested)?;
            let signed = sign_one(&ring, &options, version, &input, &context)?;
            Ok((signed, version))
        });
        results.push(result);
    }
    batch::answer(
        &items,
        results,
        is_batch,
        "missing input",
        |(signed, version)| signed.data(version, "public_key"),
        |result| match result {
            // OpenBao spells the field without the underscore in batch results.
            Ok((signed, version)) => signed.data(version, "publickey"),
            Err(e) => object(json!({ "error": e.message(), "key_version": 0 })),
        },
    )
}

pub(crate) async fn verify(
    transit: &Transit,
    request: &Request,
    storage: &dyn Storage,
    name: &str,
    url_algorithm: Option<&str>,
) -> EngineResult<Option<Response>> {
    // Signature or HMAC: decided by which field the request (or every batch item) carries.
    let batch_items = batch::input(request)?;
    let (sig_found, hmac_found, missing) = match &batch_items {
        Some(items) => {
            let sigs = items
                .iter()
                .filter(|i| i.0.contains_key("signature"))
                .count();
            let macs = items.iter().filter(|i| i.0.contains_key("hmac")).count();
            (sigs > 0, macs > 0, sigs.max(macs) < items.len())
        }
        None => (
            req::string(request, "signature")?.is_some(),
            req::string(request, "hmac")?.is_some(),
            false,
        ),
    };
    let is_batch = batch_items.is_some();
    match (sig_found, hmac_found) {
        // OpenBao 2.7 verifies the signature when a single request carries both.
        (true, true) if !is_batch => {}
        (false, false) if !is_batch => {
            return Err(bad(
                "neither a 'signature' nor an 'hmac' were given to verify",
            ));
        }
        (true, true) => {
            return Err(bad(
                "elements of batch_input must all provide 'signature' or all provide 'hmac'",
            ));
        }
        (true, false) if missing => {
            return Err(bad("some elements of batch_input are missing 'signature'"));
        }
        (false, true) if missing => {
            return Err(bad("some elements of batch_input are missing 'hmac'"));
        }
        (false, false) => {
            return Err(bad("no batch_input elements have 'signature' or 'hmac'"));
        }
        (false, true) => {
            return super::hmac::verify(transit, request, storage, name, url_algorithm).await;
        }
        (true, false) => {}
    }
    let options = options(request, url_algorithm)?;
    let Some(ring) = transit.keys.get(storage, name).await? else {
        return Err(bad("signature verification key not found"));
    };
    check_options(&ring, &options, "verification")?;
    let (items, is_batch) = items(request)?;
    let mut results = Vec::with_capacity(items.len());
    for item in &items {
        let result = match item.input()? {
            Err(e) => Err(e),
            Ok(input) => {
                let signature = item.str("signature")?;
                if signature.is_empty() {
                    Err(ItemError::user("missing signature"))
                } else {
                    decode_context(item)?.and_then(|context| {
                        verify_one(&ring, &options, &input, &signature, &context)
                    })
                }
            }
        };
        results.push(result);
    }
    batch::answer(
        &items,
        results,
        is_batch,
        "missing input",
        |valid| object(json!({ "valid": valid })),
        |result| match result {
            Ok(valid) => object(json!({ "valid": valid })),
            Err(e) => object(json!({ "valid": false, "error": e.message() })),
        },
    )
}
