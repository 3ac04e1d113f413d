//! `random[/:source][/:bytes]` and `hash[/:algorithm]`: stateless utilities.

use serde_json::json;
use tresor_sdk::engine::{EngineResult, Request, Response};

use super::batch;
use super::crypt::decode_input;
use super::digest::HashAlg;
use super::material::{base64_std, random_bytes};
use super::req::{self, bad, object, respond};
use super::store::material_error;

/// OpenBao's cap on one `random` call.
const MAX_RANDOM_BYTES: i64 = 128 * 1024;

fn encode(bytes: &[u8], format: &str) -> EngineResult<String> {
    match format {
        "base64" => Ok(base64_std(bytes)),
        "hex" => Ok(hex::encode(bytes)),
        other => Err(bad(format!(
            "unsupported encoding format {other}; must be \"hex\" or \"base64\""
        ))),
    }
}

/// `random`, `random/<bytes>`, `random/<source>`, `random/<source>/<bytes>`.
pub(crate) fn random(
    request: &Request,
    first: Option<&str>,
    second: Option<&str>,
) -> EngineResult<Option<Response>> {
    let (source, url_bytes) = match (first, second) {
        (Some(s), Some(b)) => (Some(s), Some(b)),
        (Some(x), None) if x.chars().all(|c| c.is_ascii_digit()) && !x.is_empty() => {
            (None, Some(x))
        }
        (Some(s), None) => (Some(s), None),
        _ => (None, None),
    };
    let source = source
        .map(str::to_owned)
        .or(req::string(request, "source")?)
        .unwrap_or_else(|| "platform".into());
    match source.as_str() {
        // There is no seal-provided entropy source; every source reads the OS generator.
        "" | "platform" | "seal" | "all" => {}
        other => {
            return Err(bad(format!(
                "unsupported entropy source {other:?}; must be \"platform\" or \"seal\", or \"all\""
            )));
        }
    }
    let bytes = match url_bytes {
        Some(b) => b.parse::<i64>().map_err(|_| {
            bad(format!(
                "error parsing url-set byte count: strconv.Atoi: parsing \"{b}\": invalid syntax"
            ))
        })?,
        None => req::int(request, "bytes")?.unwrap_or(32),
    };
    let format = req::string(request, "format")?.unwrap_or_else(|| "base64".into());
    if bytes < 1 {
        return Err(bad("missing bytes"));
    }
    if bytes > MAX_RANDOM_BYTES {
        return Err(bad(format!(
            "'bytes' should be less than {MAX_RANDOM_BYTES}"
        )));
    }
    if format != "hex" && format != "base64" {
        return Err(bad(format!(
            "unsupported encoding format \"{format}\"; must be \"hex\" or \"base64\""
        )));
    }
    let random = random_bytes(usize::try_from(bytes).unwrap_or(32)).map_err(material_error)?;
    respond(object(json!({ "random_bytes": encode(&random, &format)? })))
}

pub(crate) fn hash(
    request: &Request,
    url_algorithm: Option<&str>,
) -> EngineResult<Option<Response>> {
    let input = req::string(request, "input")?.unwrap_or_default();
    let algorithm = url_algorithm
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .or(req::string(request, "algorithm")?)
        .unwrap_or_else(|| "sha2-256".into());
    let format = req::string(request, "format")?.unwrap_or_else(|| "hex".into());
    if input.is_empty() {
        return Err(bad("input missing"));
    }
    let data = decode_input(&input).map_err(batch::single_error)?;
    if format != "hex" && format != "base64" {
        return Err(bad(format!(
            "unsupported encoding format {format}; must be \"hex\" or \"base64\""
        )));
    }
    let alg = HashAlg::parse(&algorithm)
        .ok_or_else(|| bad(format!("unsupported algorithm {algorithm}")))?;
    respond(object(
        json!({ "sum": encode(&alg.digest(&data), &format)? }),
    ))
}
