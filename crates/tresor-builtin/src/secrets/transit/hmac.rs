//! `hmac/:name[/:algorithm]`, and the HMAC half of `verify/:name`.
//!
//! Every key version has an HMAC key (for type `hmac`, the key itself). As OpenBao, a batch
//! with failed items is still answered with 200: only encrypt/decrypt/rewrap/sign/verify
//! switch to 400.

use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tresor_sdk::engine::{EngineResult, Request, Response};
use tresor_sdk::storage::Storage;

use super::Transit;
use super::batch::{self, Item};
use super::ciphertext;
use super::crypt::{ItemError, base64_error, decode_input};
use super::digest::HashAlg;
use super::keytype::KeyType;
use super::material::{Material, base64_decode, base64_std};
use super::policy::KeyRing;
use super::req::{self, bad, object};

fn hmac_key(ring: &KeyRing, version: u32) -> Result<&[u8], ItemError> {
    let entry = ring.version(version)?;
    Ok(match (&entry.material, ring.meta.key_type) {
        (Material::Hmac { raw }, KeyType::Hmac) => raw,
        _ => &entry.hmac_key,
    })
}

fn algorithm(request: &Request, url: Option<&str>, fields: &[&str]) -> EngineResult<String> {
    if let Some(a) = url.filter(|a| !a.is_empty()) {
        return Ok(a.to_owned());
    }
    for f in fields {
        if let Some(a) = req::string(request, f)?.filter(|a| !a.is_empty()) {
            return Ok(a);
        }
    }
    Ok("sha2-256".into())
}

fn inputs(request: &Request) -> EngineResult<(Vec<Item<'_>>, bool)> {
    match batch::input(request)? {
        Some(items) => Ok((items, true)),
        None => {
            let mut map = serde_json::Map::new();
            if let Some(input) = req::string(request, "input")? {
                map.insert("input".into(), json!(input));
            }
            if let Some(hmac) = req::string(request, "hmac")? {
                map.insert("hmac".into(), json!(hmac));
            }
            Ok((vec![Item(std::borrow::Cow::Owned(map))], false))
        }
    }
}

pub(crate) async fn hmac(
    transit: &Transit,
    request: &Request,
    storage: &dyn Storage,
    name: &str,
    url_algorithm: Option<&str>,
) -> EngineResult<Option<Response>> {
    let requested = req::int(request, "key_version")?.unwrap_or(0);
    let algorithm_name = algorithm(request, url_algorithm, &["algorithm"])?;
    let Some(ring) = transit.keys.get(storage, name).await? else {
        return Err(bad("encryption key not found"));
    };
    let latest = i64::from(ring.meta.latest_version);
    let min_enc = i64::from(ring.meta.min_encryption_version);
    let version = match requested {
        0 => latest,
        v if v == latest => v,
        v if min_enc > 0 && v < min_enc => {
            return Err(bad(
                "cannot generate HMAC: version is too old (disallowed by policy)",
            ));
        }
        v if v < 0 => return Err(bad("key version does not exist (cannot be negative)")),
        v if v > latest => {
            return Err(bad(format!(
                "key version does not exist; latest key version is {latest}"
            )));
        }
        v => v,
    };
    let version = u32::try_from(version).map_err(|_| bad("no such key version"))?;
    let key = hmac_key(&ring, version).map_err(batch::single_error)?;
    let alg = HashAlg::parse(&algorithm_name)
        .ok_or_else(|| bad(format!("unsupported algorithm \"{algorithm_name}\"")))?;
    let (items, is_batch) = inputs(request)?;
    if !is_batch && items.first().is_none_or(|i| !i.0.contains_key("input")) {
        return Err(bad("missing input for HMAC"));
    }
    let mut results = Vec::with_capacity(items.len());
    for item in &items {
        let result = match item.0.get("input") {
            None | Some(Value::Null) => Err(ItemError::user("missing input for HMAC")),
            Some(_) => decode_input(&item.str_ref("input")?)
                .map(|data| ciphertext::format(version, &base64_std(&alg.hmac(key, &data)))),
        };
        results.push(result);
    }
    batch::answer(
        &items,
        results,
        is_batch,
        "missing input for HMAC",
        |hmac| object(json!({ "hmac": hmac })),
        |result| match result {
            Ok(hmac) => object(json!({ "hmac": hmac })),
            Err(e) => object(json!({ "error": e.message() })),
        },
    )
}

/// `verify/:name` with `hmac`: checks HMACs in constant time.
pub(crate) async fn verify(
    transit: &Transit,
    request: &Request,
    storage: &dyn Storage,
    name: &str,
    url_algorithm: Option<&str>,
) -> EngineResult<Option<Response>> {
    let algorithm_name = algorithm(request, url_algorithm, &["hash_algorithm", "algorithm"])?;
    let Some(ring) = transit.keys.get(storage, name).await? else {
        return Err(bad("encryption key not found"));
    };
    let alg = HashAlg::parse(&algorithm_name)
        .ok_or_else(|| bad(format!("invalid hash algorithm \"{algorithm_name}\"")))?;
    let (items, is_batch) = inputs(request)?;
    let mut results = Vec::with_capacity(items.len());
    for item in &items {
        results.push(verify_one(&ring, alg, item)?);
    }
    batch::answer(
        &items,
        results,
        is_batch,
        "missing input",
        |valid| object(json!({ "valid": valid })),
        |result| match result {
            Ok(true) => object(json!({ "valid": true })),
            // Go omits a false `valid` from a batch result.
            Ok(false) => serde_json::Map::new(),
            Err(e) => object(json!({ "error": e.message() })),
        },
    )
}

fn verify_one(ring: &KeyRing, alg: HashAlg, item: &Item) -> EngineResult<Result<bool, ItemError>> {
    let data = match item.input()? {
        Ok(data) => data,
        Err(e) => return Ok(Err(e)),
    };
    let mac = item.str("hmac")?;
    if mac.is_empty() {
        return Ok(Err(ItemError::user("missing hmac")));
    }
    let Some(rest) = mac.strip_prefix("vault:v") else {
        return Ok(Err(ItemError::user("invalid HMAC to verify: no prefix")));
    };
    let Some((version, body)) = rest.split_once(':') else {
        return Ok(Err(ItemError::user("invalid HMAC: wrong number of fields")));
    };
    let Ok(version) = version.parse::<u32>() else {
        return Ok(Err(ItemError::user(
            "invalid HMAC: version number could not be decoded",
        )));
    };
    let Some(expected) = base64_decode(body) else {
        return Ok(Err(ItemError::User(format!(
            "unable to decode verification HMAC as base64: {}",
            base64_error(body)
        ))));
    };
    if version > ring.meta.latest_version {
        return Ok(Err(ItemError::user("invalid HMAC: version is too new")));
    }
    if ring.meta.min_decryption_version > 0 && version < ring.meta.min_decryption_version {
        return Ok(Err(ItemError::user(
            "cannot verify HMAC: version is too old (disallowed by policy)",
        )));
    }
    let key = match hmac_key(ring, version) {
        Ok(k) => k,
        Err(e) => return Ok(Err(e)),
    };
    let actual = alg.hmac(key, &data);
    Ok(Ok(bool::from(actual.ct_eq(&expected))))
}
