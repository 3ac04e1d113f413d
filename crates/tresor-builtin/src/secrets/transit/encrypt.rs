//! `encrypt/:name` (upserting the key), `decrypt/:name`, `rewrap/:name`.
//!
//! The hot path: one cache lookup for the key, base64 decoding, and one AEAD call per
//! item. Nothing reads storage unless the key is not cached yet.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tresor_sdk::engine::{EngineResult, Operation, Request, Response};
use tresor_sdk::storage::Storage;

use super::Transit;
use super::batch::{self, Item, Outcome};
use super::crypt::{ItemError, decode_b64};
use super::keys::{NewKey, create_key};
use super::keytype::KeyType;
use super::material::{NONCE_LEN, Secret, base64_std, random_bytes};
use super::policy::KeyRing;
use super::req::{self, bad, object};
use super::store::material_error;

/// Random nonces for a whole batch, drawn with one call to the OS generator instead of one
/// system call per item.
struct Nonces(Vec<u8>);

impl Nonces {
    fn draw(count: usize) -> EngineResult<Self> {
        random_bytes(count.saturating_mul(NONCE_LEN))
            .map(|b| Self(b.to_vec()))
            .map_err(material_error)
    }

    fn get(&self, index: usize) -> Option<[u8; NONCE_LEN]> {
        let start = index.checked_mul(NONCE_LEN)?;
        let slice = self.0.get(start..start.checked_add(NONCE_LEN)?)?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(slice);
        Some(nonce)
    }
}

/// One unit of work, decoded from the request or a batch item.
struct Work<'a> {
    text: Cow<'a, str>,
    context: Cow<'a, str>,
    associated_data: Cow<'a, str>,
    key_version: i64,
    reference: Cow<'a, str>,
}

fn single(request: &Request, field: &str) -> EngineResult<Option<Work<'static>>> {
    let Some(text) = req::string(request, field)? else {
        return Ok(None);
    };
    Ok(Some(Work {
        text: Cow::Owned(text),
        context: Cow::Owned(req::string_or_default(request, "context")?),
        associated_data: Cow::Owned(req::string_or_default(request, "associated_data")?),
        key_version: req::int(request, "key_version")?.unwrap_or(0),
        reference: Cow::Borrowed(""),
    }))
}

fn from_items<'r>(items: Vec<Item<'r>>, field: &str) -> EngineResult<Vec<Work<'r>>> {
    items
        .into_iter()
        .map(|item| {
            let key_version = item.int("key_version")?;
            let owned = |name: &str| item.str(name).map(Cow::Owned);
            Ok(match item.0 {
                Cow::Borrowed(map) => Work {
                    text: batch::str_field(map, field)?,
                    context: batch::str_field(map, "context")?,
                    associated_data: batch::str_field(map, "associated_data")?,
                    key_version,
                    reference: batch::str_field(map, "reference")?,
                },
                Cow::Owned(_) => Work {
                    text: owned(field)?,
                    context: owned("context")?,
                    associated_data: owned("associated_data")?,
                    key_version,
                    reference: owned("reference")?,
                },
            })
        })
        .collect()
}

/// The work list, whether the request is a batch, and the missing-input error.
fn work<'r>(
    request: &'r Request,
    field: &str,
    missing: &str,
) -> EngineResult<(Vec<Work<'r>>, bool)> {
    match batch::input(request)? {
        Some(items) => Ok((from_items(items, field)?, true)),
        None => match single(request, field)? {
            Some(w) => Ok((vec![w], false)),
            None => Err(bad(missing)),
        },
    }
}

/// Vault requires `context` in all items or in none.
fn context_set(work: &[Work]) -> EngineResult<bool> {
    let set = work.first().is_some_and(|w| !w.context.is_empty());
    if work.iter().any(|w| w.context.is_empty() == set) {
        return Err(bad(
            "context should be set either in all the request blocks or in none",
        ));
    }
    Ok(set)
}

fn decoded_context(w: &Work) -> Result<Secret, ItemError> {
    if w.context.is_empty() {
        Ok(Secret::default())
    } else {
        decode_b64(&w.context)
    }
}

fn decoded_aad(ring: &KeyRing, w: &Work, index: usize) -> Result<Secret, ItemError> {
    if w.associated_data.is_empty() {
        return Ok(Secret::default());
    }
    if ring.meta.key_type.aead_key_len().is_none() {
        let name = ring.meta.key_type.name();
        // OpenBao names the item even for a single request (`[0]`).
        return Err(ItemError::User(format!(
            "'[{index}].associated_data' provided for non-AEAD cipher suite {name}"
        )));
    }
    decode_b64(&w.associated_data)
}

/// A key that must exist already: decrypt and rewrap never create one, nor does an encrypt
/// that may not.
async fn existing_key(
    transit: &Transit,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Arc<KeyRing>> {
    transit
        .keys
        .get(storage, name)
        .await?
        .ok_or_else(|| bad("encryption key not found"))
}

/// The work of a decrypt or rewrap (ciphertexts, with `context` in all items or none),
/// whether it is a batch, and the key.
async fn ciphertexts<'r>(
    transit: &Transit,
    request: &'r Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<(Vec<Work<'r>>, bool, Arc<KeyRing>)> {
    let (work, is_batch) = work(request, "ciphertext", "missing ciphertext to decrypt")?;
    context_set(&work)?;
    let ring = existing_key(transit, storage, name).await?;
    Ok((work, is_batch, ring))
}

/// The key for an encrypt: upserted when the router says the caller may create it.
async fn encryption_key(
    transit: &Transit,
    request: &Request,
    storage: &dyn Storage,
    name: &str,
    context_set: bool,
) -> EngineResult<(Arc<KeyRing>, Vec<String>)> {
    if request.operation != Operation::Create {
        return Ok((existing_key(transit, storage, name).await?, Vec::new()));
    }
    let convergent = req::bool(request, "convergent_encryption")?.unwrap_or(false);
    if convergent && !context_set {
        return Err(bad(
            "convergent encryption requires derivation to be enabled, so context is required",
        ));
    }
    let type_name = req::string(request, "type")?.unwrap_or_else(|| "aes256-gcm96".into());
    let key_type = match KeyType::parse(&type_name) {
        Some(t) if t.aead_key_len().is_some() => t,
        Some(KeyType::EcdsaP256 | KeyType::EcdsaP384) => {
            return Err(bad(format!(
                "key type {type_name} not supported for this operation"
            )));
        }
        _ => return Err(bad(format!("unknown key type {type_name}"))),
    };
    // `config/keys` `disable_upsert`: a missing key is not created.
    if !super::settings::upsert_allowed(storage).await? {
        return Ok((existing_key(transit, storage, name).await?, Vec::new()));
    }
    let new = NewKey {
        key_type,
        derived: context_set,
        convergent,
        exportable: false,
        allow_plaintext_backup: false,
        auto_rotate_period: 0,
        key_size: 0,
    };
    let (ring, created) = create_key(transit, storage, name, &new).await?;
    let warnings = if created {
        Vec::new()
    } else {
        vec!["Attempted creation of the key during the encrypt operation, but it was created beforehand".to_owned()]
    };
    Ok((ring, warnings))
}

fn finish(
    request: &Request,
    is_batch: bool,
    work: &[Work],
    results: Vec<Result<Map<String, Value>, ItemError>>,
    warnings: Vec<String>,
    status_from_errors: bool,
    error_item: impl Fn(&ItemError) -> Map<String, Value>,
) -> EngineResult<Option<Response>> {
    let mut outcome = Outcome::default();
    for r in &results {
        outcome.record(r);
    }
    if !is_batch {
        let mut response = match results.into_iter().next() {
            Some(Ok(data)) => Response::with_data(data),
            Some(Err(e)) => return Err(batch::single_error(e)),
            None => return Err(bad("missing input")),
        };
        response.warnings = warnings;
        return Ok(Some(response));
    }
    let items: Vec<Value> = results
        .into_iter()
        .zip(work)
        .map(|(r, w)| {
            let mut item = match r {
                Ok(data) => data,
                Err(e) => error_item(&e),
            };
            item.insert("reference".into(), json!(w.reference));
            Value::Object(item)
        })
        .collect();
    let data = object(json!({ "batch_results": items }));
    if !status_from_errors {
        // OpenBao's rewrap answers 200 whatever the items' fate.
        outcome = Outcome::default();
    }
    batch::respond(request, data, outcome, warnings)
}

pub(crate) async fn encrypt(
    transit: &Transit,
    request: &Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    let (work, is_batch) = work(request, "plaintext", "missing plaintext to encrypt")?;
    let context_set = context_set(&work)?;
    let (ring, warnings) = encryption_key(transit, request, storage, name, context_set).await?;
    let nonces = Nonces::draw(work.len())?;
    let results = work
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let plaintext = decode_b64(&w.text)?;
            let context = decoded_context(w)?;
            let aad = decoded_aad(&ring, w, i)?;
            let nonce = nonces.get(i);
            let (ciphertext, version) =
                ring.encrypt_with_nonce(w.key_version, &context, &aad, &plaintext, nonce)?;
            Ok(object(
                json!({ "ciphertext": ciphertext, "key_version": version }),
            ))
        })
        .collect();
    finish(request, is_batch, &work, results, warnings, true, |e| {
        object(json!({ "error": e.message() }))
    })
}

pub(crate) async fn decrypt(
    transit: &Transit,
    request: &Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    let (work, is_batch, ring) = ciphertexts(transit, request, storage, name).await?;
    let results = work
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let context = decoded_context(w)?;
            let aad = decoded_aad(&ring, w, i)?;
            let (plain, _) = ring.decrypt(&context, &aad, &w.text)?;
            Ok(object(json!({ "plaintext": base64_std(&plain) })))
        })
        .collect();
    finish(request, is_batch, &work, results, Vec::new(), true, |e| {
        object(json!({ "plaintext": "", "error": e.message() }))
    })
}

pub(crate) async fn rewrap(
    transit: &Transit,
    request: &Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    let (work, is_batch, ring) = ciphertexts(transit, request, storage, name).await?;
    let results = work
        .iter()
        .map(|w| {
            let context = decoded_context(w)?;
            let (plain, _) = ring.decrypt(&context, &[], &w.text)?;
            let (ciphertext, version) = ring.encrypt(w.key_version, &context, &[], &plain)?;
            Ok(object(
                json!({ "ciphertext": ciphertext, "key_version": version }),
            ))
        })
        .collect();
    finish(request, is_batch, &work, results, Vec::new(), false, |e| {
        object(json!({ "error": e.message() }))
    })
}
