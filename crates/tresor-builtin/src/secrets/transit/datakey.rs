//! `datakey/plaintext/:name` and `datakey/wrapped/:name`: a fresh random key, returned
//! encrypted under the named key (and in the clear for `plaintext`).

use serde_json::json;
use tresor_sdk::engine::{EngineResult, Request, Response};
use tresor_sdk::storage::Storage;

use super::Transit;
use super::batch::single_error;
use super::crypt::decode_b64;
use super::material::{Secret, base64_std, random_bytes};
use super::req::{self, bad, object, respond};
use super::store::material_error;

pub(crate) async fn datakey(
    transit: &Transit,
    request: &Request,
    storage: &dyn Storage,
    kind: &str,
    name: &str,
) -> EngineResult<Option<Response>> {
    let plaintext_wanted = match kind {
        "plaintext" => true,
        "wrapped" => false,
        _ => return Err(bad("Invalid path, must be 'plaintext' or 'wrapped'")),
    };
    let context = match req::string(request, "context")?.filter(|c| !c.is_empty()) {
        Some(c) => decode_b64(&c).map_err(|_| bad("failed to base64-decode context"))?,
        None => Secret::default(),
    };
    let bits = req::int(request, "bits")?.unwrap_or(256);
    let key_version = req::int(request, "key_version")?.unwrap_or(0);
    let aad_text = req::string_or_default(request, "associated_data")?;
    let Some(ring) = transit.keys.get(storage, name).await? else {
        return Err(bad("encryption key not found"));
    };
    let len = match bits {
        128 => 16,
        256 => 32,
        512 => 64,
        _ => return Err(bad("invalid bit length")),
    };
    let aad = if aad_text.is_empty() {
        Secret::default()
    } else {
        if ring.meta.key_type.aead_key_len().is_none() {
            return Err(bad(format!(
                "'associated_data' provided for non-AEAD cipher suite {}",
                ring.meta.key_type.name()
            )));
        }
        decode_b64(&aad_text).map_err(single_error)?
    };
    let new_key = random_bytes(len).map_err(material_error)?;
    let (ciphertext, version) = ring
        .encrypt(key_version, &context, &aad, &new_key)
        .map_err(single_error)?;
    let mut data = object(json!({ "ciphertext": ciphertext, "key_version": version }));
    if plaintext_wanted {
        data.insert("plaintext".into(), json!(base64_std(&new_key)));
    }
    respond(data)
}
