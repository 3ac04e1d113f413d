//! Successful answers in Vault's wire format.
//!
//! Real clients are strict: hvac compares `Content-Type` to `application/json` exactly, and
//! vaultrs fails when an envelope key is missing, so every key is always present.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use rand::Rng;
use serde::Serialize;
use serde_json::{Map, Value};
use tresor_core::logical::LogicalResponse;

/// Serialises `value` with the headers every Vault answer carries.
pub fn json_response(status: StatusCode, value: &Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    with_headers(status, Body::from(body))
}

/// 204 No Content; OpenBao still sends the JSON content type, so do we.
pub fn no_content() -> Response {
    with_headers(StatusCode::NO_CONTENT, Body::empty())
}

/// Status and headers only (HEAD answers).
pub fn head_only(status: StatusCode) -> Response {
    with_headers(status, Body::empty())
}

fn with_headers(status: StatusCode, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A request id in UUID form. Drawn from the thread-local RNG: it must be unique, not secret,
/// and a syscall per request would cost more than the rest of a cached read.
pub fn request_id() -> String {
    // Inside an audited request the envelope carries the id its audit lines carry.
    if let Some(scope) = tresor_core::audit::current_scope() {
        return scope.id().to_owned();
    }
    new_request_id()
}

/// A fresh request id.
pub fn new_request_id() -> String {
    let id = uuid::Builder::from_random_bytes(rand::rng().random()).into_uuid();
    // Encoded into a buffer rather than through `Display`: every request makes one.
    let mut buf = uuid::Uuid::encode_buffer();
    id.hyphenated().encode_lower(&mut buf).to_owned()
}

/// The logical response envelope; for `sys/*` paths the data keys are also copied to the top
/// level, as Vault's `HTTPSysInjector` does.
pub fn envelope(data: Map<String, Value>, mirror_at_top_level: bool) -> Value {
    logical_envelope(LogicalResponse::data(data), mirror_at_top_level)
}

/// The envelope of a logical response: every key always present, in the sorted order
/// clients have always seen (serde_json's map order). Serialised from a borrow, so the hot read
/// path neither copies the data nor builds a map for it.
#[derive(Serialize)]
struct Envelope<'a> {
    auth: &'a Option<Value>,
    data: &'a Option<Map<String, Value>>,
    lease_duration: u64,
    lease_id: &'a str,
    renewable: bool,
    request_id: String,
    /// `null` when there are none, as OpenBao sends.
    warnings: Option<&'a [String]>,
    wrap_info: (),
}

impl<'a> Envelope<'a> {
    fn of(response: &'a LogicalResponse) -> Self {
        Self {
            auth: &response.auth,
            data: &response.data,
            lease_duration: response.lease_duration,
            lease_id: &response.lease_id,
            renewable: response.renewable,
            request_id: request_id(),
            warnings: Some(response.warnings.as_slice()).filter(|w| !w.is_empty()),
            wrap_info: (),
        }
    }
}

/// The full envelope of a logical response as a JSON value, with the data keys also at the
/// top level when `mirror_at_top_level` (see [`mirrors_data`]).
pub fn logical_envelope(response: LogicalResponse, mirror_at_top_level: bool) -> Value {
    let mut out = match serde_json::to_value(Envelope::of(&response)) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    if mirror_at_top_level && let Some(data) = response.data {
        for (k, v) in data {
            // The envelope's own keys win, as in Vault.
            out.entry(k).or_insert(v);
        }
    }
    Value::Object(out)
}

/// Serialises a logical response (200, or its status override), mirroring data keys at the
/// top level on the sys paths where Vault does.
pub fn logical_response(response: LogicalResponse, path: &str) -> Response {
    if mirrors_data(path) {
        let status = status_of(&response);
        return json_response(status, &logical_envelope(response, true));
    }
    logical_response_ref(&response, path)
}

/// [`logical_response`] from a borrow: the caller keeps the response (for the audit line).
pub fn logical_response_ref(response: &LogicalResponse, path: &str) -> Response {
    let status = status_of(response);
    if mirrors_data(path) {
        return json_response(status, &logical_envelope(response.clone(), true));
    }
    with_headers(status, Body::from(envelope_bytes(&Envelope::of(response))))
}

/// [`Envelope`] as JSON, written by hand ([`tresor_sdk::json`]): the same bytes `serde_json` writes
/// for it, in a buffer sized for the answer up front.
fn envelope_bytes(envelope: &Envelope<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + envelope.data.as_ref().map_or(0, |_| 1536));
    out.extend_from_slice(b"{\"auth\":");
    match envelope.auth {
        Some(auth) => tresor_sdk::json::write_value(&mut out, auth),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"data\":");
    match envelope.data {
        Some(data) => tresor_sdk::json::write_map(&mut out, data),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"lease_duration\":");
    tresor_sdk::json::write_serialized(&mut out, &envelope.lease_duration);
    out.extend_from_slice(b",\"lease_id\":");
    tresor_sdk::json::write_str(&mut out, envelope.lease_id);
    out.extend_from_slice(if envelope.renewable {
        b",\"renewable\":true,\"request_id\":"
    } else {
        b",\"renewable\":false,\"request_id\":"
    });
    tresor_sdk::json::write_str(&mut out, &envelope.request_id);
    out.extend_from_slice(b",\"warnings\":");
    match envelope.warnings {
        Some(warnings) => {
            out.push(b'[');
            for (i, w) in warnings.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                tresor_sdk::json::write_str(&mut out, w);
            }
            out.push(b']');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"wrap_info\":null}");
    out
}

fn status_of(response: &LogicalResponse) -> StatusCode {
    response
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK)
}

/// The `sys/` paths whose data Vault also copies to the top level (its `injectDataIntoTopRoutes`;
/// entries ending in `/` cover the whole subtree).
const MIRRORED: &[&str] = &[
    "sys/audit",
    "sys/audit/",
    "sys/audit-hash/",
    "sys/auth",
    "sys/auth/",
    "sys/config/cors",
    "sys/config/auditing/request-headers/",
    "sys/config/auditing/request-headers",
    "sys/capabilities",
    "sys/capabilities-accessor",
    "sys/capabilities-self",
    "sys/ha-status",
    "sys/key-status",
    "sys/mounts",
    "sys/mounts/",
    "sys/policy",
    "sys/policy/",
    "sys/rekey/backup",
    "sys/rekey/recovery-key-backup",
    "sys/remount",
    "sys/rotate",
    "sys/wrapping/wrap",
];

pub fn mirrors_data(path: &str) -> bool {
    MIRRORED.iter().any(|m| {
        if m.ends_with('/') {
            path.starts_with(m)
        } else {
            path == *m
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use serde_json::json;
    use tresor_core::logical::LogicalResponse;

    /// The hand-written envelope is the derived one, byte for byte, whatever is present.
    #[test]
    fn the_written_envelope_is_the_serialised_one() {
        let data = |v: serde_json::Value| match v {
            serde_json::Value::Object(m) => Some(m),
            _ => None,
        };
        let mut full = LogicalResponse::data(
            data(json!({"data": {"password": "p\"w", "n": 1.5}, "metadata": {"version": 3}}))
                .unwrap(),
        );
        full.auth = Some(json!({"client_token": "s.x", "policies": ["a", "b"]}));
        full.lease_id = "database/creds/ro/abc".to_owned();
        full.lease_duration = 3600;
        full.renewable = true;
        full.warnings = vec!["one\nwarning".to_owned(), "two".to_owned()];
        for response in [full, LogicalResponse::default()] {
            let envelope = super::Envelope::of(&response);
            assert_eq!(
                String::from_utf8(super::envelope_bytes(&envelope)).unwrap(),
                serde_json::to_string(&envelope).unwrap()
            );
        }
    }

    #[test]
    fn request_ids_are_distinct_lowercase_version_4_uuids() {
        let a = super::new_request_id();
        let b = super::new_request_id();
        assert_ne!(a, b);
        for id in [a, b] {
            let parsed = uuid::Uuid::parse_str(&id).unwrap();
            assert_eq!(parsed.get_version_num(), 4, "{id}");
            assert_eq!(
                id,
                parsed.hyphenated().to_string(),
                "canonical lowercase form"
            );
        }
    }
}
