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
use super::crypt::{ItemError, base64_error};
use super::digest::HashAlg;
use super::keytype::KeyType;
use super::material::{Material, base64_decode, base64_std};
use super::policy::KeyRing;
use super::req::{self, bad, object, respond};

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
            Some(_) => {
                let input = item.str("input")?;
                match base64_decode(&input) {
                    Some(data) => Ok(ciphertext::format(
                        version,
                        &base64_std(&alg.hmac(key, &data)),
                    )),
                    None => Err(ItemError::User(format!(
                        "unable to decode input as base64: {}",
                        base64_error(&input)
                    ))),
                }
            }
        };
        results.push(result);
    }
    if !is_batch {
        return match results.into_iter().next() {
            Some(Ok(hmac)) => respond(object(json!({ "hmac": hmac }))),
            Some(Err(e)) => Err(batch::single_error(e)),
            None => Err(bad("missing input for HMAC")),
        };
    }
    let out: Vec<Value> = results
        .into_iter()
        .zip(&items)
        .map(|(r, item)| {
            let reference = item.str("reference").unwrap_or_default();
            match r {
                Ok(hmac) => json!({ "hmac": hmac, "reference": reference }),
                Err(e) => json!({ "error": e.message(), "reference": reference }),
            }
        })
        .collect();
    respond(object(json!({ "batch_results": out })))
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
    if !is_batch {
        return match results.into_iter().next() {
            Some(Ok(valid)) => respond(object(json!({ "valid": valid }))),
            Some(Err(e)) => Err(batch::single_error(e)),
            None => Err(bad("missing input")),
        };
    }
    let out: Vec<Value> = results
        .into_iter()
        .zip(&items)
        .map(|(r, item)| {
            let reference = item.str("reference").unwrap_or_default();
            match r {
                Ok(true) => json!({ "valid": true, "reference": reference }),
                Ok(false) => json!({ "reference": reference }),
                Err(e) => json!({ "error": e.message(), "reference": reference }),
            }
        })
        .collect();
    respond(object(json!({ "batch_results": out })))
}

fn verify_one(ring: &KeyRing, alg: HashAlg, item: &Item) -> EngineResult<Result<bool, ItemError>> {
    if !item.0.contains_key("input") {
        return Ok(Err(ItemError::user("missing input")));
    }
    let input = item.str("input")?;
    let Some(data) = base64_decode(&input) else {
        return Ok(Err(ItemError::User(format!(
            "unable to decode input as base64: {}",
            base64_error(&input)
        ))));
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
