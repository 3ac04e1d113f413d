//! One audit line in Vault's JSON format:
//! `{"time","type","auth":{…},"request":{…},"response":{…},"error"}`.
//!
//! The `auth` and `request` blocks of a request are rendered once per device when the request
//! line is written and reused verbatim in the response line, so a request costs one pass of
//! hashing and formatting for each, not two.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
use tresor_sdk::secret::SecretString;

use super::hash::{CallerHashes, Hashed, Salt};
use super::options::Format;

/// Who made the request, as known when it was authorised.
#[derive(Debug, Clone, Default)]
pub struct AuthInfo {
    pub client_token: Option<SecretString>,
    pub accessor: Option<String>,
    pub display_name: String,
    pub policies: Vec<String>,
    pub token_policies: Vec<String>,
    pub identity_policies: Vec<String>,
    /// The ACL's verdict; `None` for requests that were never checked (logins).
    pub allowed: Option<bool>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub entity_id: String,
    pub entity_created: bool,
    /// `service` or `batch`; `default` when there is no token.
    pub token_type: &'static str,
    pub token_ttl: u64,
    pub token_issue_time: Option<String>,
}

/// The mount a path belongs to.
#[derive(Debug, Clone, Default)]
pub struct MountFields {
    pub point: String,
    pub mount_type: String,
    pub accessor: String,
    pub class: &'static str,
}

/// What the request said.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub id: String,
    pub operation: &'static str,
    pub mount: MountFields,
    pub path: String,
    pub data: Option<Map<String, Value>>,
    pub remote_address: Option<String>,
    pub remote_port: Option<u16>,
}

/// What the response said. `auth` is the envelope's `auth` block (a newly issued token).
#[derive(Debug, Clone, Default)]
pub struct ResponseInfo {
    pub data: Option<Map<String, Value>>,
    pub auth: Option<Value>,
    pub lease_id: Option<String>,
    pub wrap_info: Option<Value>,
    pub warnings: Vec<String>,
}

/// Hashes strings unless the device logs raw.
pub(crate) struct Hasher<'a> {
    pub salt: &'a Salt,
    pub format: &'a Format,
}

impl Hasher<'_> {
    fn text(&self, s: &str) -> String {
        if self.format.log_raw {
            s.to_owned()
        } else {
            self.salt.hash(s)
        }
    }

    fn accessor(&self, s: &str) -> String {
        if self.format.log_raw || !self.format.hmac_accessor {
            s.to_owned()
        } else {
            self.salt.hash(s)
        }
    }

    /// `map` as this device logs it, borrowed: hashed while it is serialised, or raw.
    fn map<'m>(&'m self, map: &'m Map<String, Value>, keep: Option<&'m str>) -> Logged<'m> {
        if self.format.log_raw {
            Logged::Raw(map)
        } else {
            Logged::Hashed(self.salt.hashed_map(map, keep))
        }
    }

    fn accessor_kept(&self) -> Option<&'static str> {
        (!self.format.hmac_accessor).then_some("accessor")
    }
}

/// A data object in a line: see [`Hasher::map`].
enum Logged<'a> {
    Raw(&'a Map<String, Value>),
    Hashed(Hashed<'a>),
}

impl Serialize for Logged<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Logged::Raw(map) => map.serialize(serializer),
            Logged::Hashed(hashed) => hashed.serialize(serializer),
        }
    }
}

/// The caller's token and accessor as a device logs them. Both the `auth` and the `request`
/// block carry them; they are hashed once per device and token ([`Salt::caller`]).
pub(crate) struct CallerIds {
    token: Option<Arc<str>>,
    accessor: Option<Arc<str>>,
    /// The device's memo entry for a caller with a token and an accessor.
    known: Option<Arc<CallerHashes>>,
}

pub(crate) fn caller_ids(h: &Hasher<'_>, auth: &AuthInfo) -> CallerIds {
    let token = auth.client_token.as_ref().map(SecretString::expose);
    let accessor = auth.accessor.as_deref();
    if let (Some(token), Some(accessor), false) = (token, accessor, h.format.log_raw) {
        let hashed = h.salt.caller(token, accessor);
        return CallerIds {
            token: Some(Arc::clone(&hashed.token)),
            accessor: Some(if h.format.hmac_accessor {
                Arc::clone(&hashed.accessor)
            } else {
                Arc::from(accessor)
            }),
            known: Some(hashed),
        };
    }
    CallerIds {
        token: token.map(|t| Arc::from(h.text(t))),
        accessor: accessor.map(|a| Arc::from(h.accessor(a))),
        known: None,
    }
}

#[derive(Serialize)]
struct PolicyResults {
    allowed: bool,
}

#[derive(Serialize)]
struct AuthOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    client_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accessor: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    display_name: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    policies: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    token_policies: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    identity_policies: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    policy_results: Option<PolicyResults>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "str::is_empty")]
    entity_id: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    entity_created: bool,
    token_type: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    token_ttl: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_issue_time: Option<&'a str>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
#[derive(Serialize)]
struct Namespace {
    id: &'static str,
}

/// The `request` block as serde would write it: the reference [`render_request`] is tested
/// against.
#[cfg(test)]
#[derive(Serialize)]
struct RequestOut<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    client_id: &'a str,
    operation: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    mount_point: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    mount_type: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    mount_accessor: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    mount_class: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_token_accessor: Option<&'a str>,
    namespace: Namespace,
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Logged<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_address: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_port: Option<u16>,
}

/// The `auth` block of the caller: a caller with a token renders it once per device and verdict
/// (it comes from the token's entry, which does not change: [`CallerHashes::auth_block`]), any
/// other caller every time.
pub(crate) fn auth_block(auth: &AuthInfo, ids: &CallerIds) -> Arc<[u8]> {
    match &ids.known {
        Some(known) => known.auth_block(auth.allowed, || render_auth(auth, ids)),
        None => Arc::from(render_auth(auth, ids)),
    }
}

/// The `auth` block of the caller, rendered.
pub(crate) fn render_auth(auth: &AuthInfo, ids: &CallerIds) -> Vec<u8> {
    let out = AuthOut {
        client_token: ids.token.as_deref(),
        accessor: ids.accessor.as_deref(),
        display_name: &auth.display_name,
        policies: &auth.policies,
        token_policies: &auth.token_policies,
        identity_policies: &auth.identity_policies,
        policy_results: auth.allowed.map(|allowed| PolicyResults { allowed }),
        metadata: auth.metadata.as_ref(),
        entity_id: &auth.entity_id,
        entity_created: auth.entity_created,
        token_type: if auth.token_type.is_empty() {
            "default"
        } else {
            auth.token_type
        },
        token_ttl: auth.token_ttl,
        token_issue_time: auth.token_issue_time.as_deref(),
    };
    block(&out, 512)
}

/// The `request` block; `caller` and `ids` supply the token fields repeated there. Written by
/// hand (the fields and order of [`RequestOut`]): every audited request renders one, and most
/// of its strings (ids, hashed tokens, paths) need no escaping.
pub(crate) fn render_request(
    h: &Hasher<'_>,
    req: &RequestInfo,
    caller: &AuthInfo,
    ids: &CallerIds,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    let mut obj = JsonObject::open(&mut out);
    obj.str("id", &req.id);
    obj.str_unless_empty("client_id", &caller.entity_id);
    obj.str("operation", req.operation);
    obj.str_unless_empty("mount_point", &req.mount.point);
    obj.str_unless_empty("mount_type", &req.mount.mount_type);
    obj.str_unless_empty("mount_accessor", &req.mount.accessor);
    obj.str_unless_empty("mount_class", req.mount.class);
    if let Some(token) = ids.token.as_deref() {
        obj.str("client_token", token);
    }
    if let Some(accessor) = ids.accessor.as_deref() {
        obj.str("client_token_accessor", accessor);
    }
    obj.key("namespace").extend_from_slice(b"{\"id\":\"root\"}");
    obj.str("path", &req.path);
    if let Some(data) = req.data.as_ref().filter(|d| !d.is_empty()) {
        obj.value("data", &h.map(data, None));
    }
    if let Some(address) = req.remote_address.as_deref() {
        obj.str("remote_address", address);
    }
    if let Some(port) = req.remote_port {
        obj.value("remote_port", &port);
    }
    obj.close();
    out
}

/// The `auth` block of a newly issued token, from the response envelope's `auth`: only the
/// token and its accessor are secrets; the rest is logged as is (as Vault does).
pub(crate) fn issued_auth(h: &Hasher<'_>, auth: &Value) -> Value {
    let Value::Object(src) = auth else {
        return Value::Null;
    };
    let mut out = Map::new();
    let string = |k: &str| src.get(k).and_then(Value::as_str);
    if let Some(t) = string("client_token") {
        out.insert("client_token".into(), Value::String(h.text(t)));
    }
    if let Some(a) = string("accessor") {
        out.insert("accessor".into(), Value::String(h.accessor(a)));
    }
    for key in [
        "display_name",
        "policies",
        "token_policies",
        "identity_policies",
        "metadata",
    ] {
        if let Some(v) = src.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(e) = string("entity_id").filter(|e| !e.is_empty()) {
        out.insert("entity_id".into(), Value::String(e.to_owned()));
    }
    out.insert(
        "token_type".into(),
        src.get("token_type")
            .cloned()
            .unwrap_or(Value::from("service")),
    );
    if let Some(ttl) = src.get("lease_duration").filter(|v| v.as_u64() != Some(0)) {
        out.insert("token_ttl".into(), ttl.clone());
    }
    Value::Object(out)
}

/// The `response` block. With `remember` (a read, whose answer is likely to be asked for
/// again), the hashed `data` object comes from the device's memo of rendered objects.
///
/// Written by hand rather than derived: `data` is either rendered by the salt or copied from
/// that memo, and serde has no way to splice bytes that are already JSON.
pub(crate) fn render_response(
    h: &Hasher<'_>,
    mount: &MountFields,
    resp: &ResponseInfo,
    list: bool,
    remember: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(2048);
    let mut obj = JsonObject::open(&mut out);
    obj.str_unless_empty("mount_point", &mount.point);
    obj.str_unless_empty("mount_type", &mount.mount_type);
    obj.str_unless_empty("mount_accessor", &mount.accessor);
    obj.str_unless_empty("mount_class", mount.class);
    if let Some(auth) = resp.auth.as_ref().filter(|a| !a.is_null()) {
        obj.value("auth", &issued_auth(h, auth));
    }
    if let Some(lease_id) = resp.lease_id.as_deref().filter(|l| !l.is_empty()) {
        let key = obj.key("secret");
        key.extend_from_slice(b"{\"lease_id\":");
        tresor_sdk::json::write_str(key, lease_id);
        key.push(b'}');
    }
    if let Some(data) = resp.data.as_ref() {
        if list && h.format.elide_list_responses {
            // Only an elided list answer needs a changed copy; every other answer is logged
            // borrowed.
            let mut elided = data.clone();
            elide(&mut elided);
            h.render_map(&elided, h.accessor_kept(), false, obj.key("data"));
        } else {
            h.render_map(data, h.accessor_kept(), remember, obj.key("data"));
        }
    }
    if !resp.warnings.is_empty() {
        obj.value("warnings", &resp.warnings);
    }
    if let Some(w) = &resp.wrap_info {
        let mut w = w.clone();
        if let Value::Object(map) = &mut w {
            for key in ["token", "accessor", "wrapped_accessor"] {
                if let Some(Value::String(s)) = map.get_mut(key) {
                    *s = if key == "token" {
                        h.text(s)
                    } else {
                        h.accessor(s)
                    };
                }
            }
        }
        obj.value("wrap_info", &w);
    }
    obj.close();
    out
}

/// A JSON object written field by field into a buffer.
struct JsonObject<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> JsonObject<'a> {
    fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, empty: true }
    }

    /// Writes `"name":` and returns the buffer for the value.
    fn key(&mut self, name: &str) -> &mut Vec<u8> {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        tresor_sdk::json::write_str(self.out, name);
        self.out.push(b':');
        self.out
    }

    fn str(&mut self, name: &str, value: &str) {
        let out = self.key(name);
        tresor_sdk::json::write_str(out, value);
    }

    fn str_unless_empty(&mut self, name: &str, value: &str) {
        if !value.is_empty() {
            self.str(name, value);
        }
    }

    fn value<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) {
        let out = self.key(name);
        tresor_sdk::json::write_serialized(out, value);
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

impl Hasher<'_> {
    /// `map` as this device logs it (hashed or raw), appended to `out`.
    fn render_map(
        &self,
        map: &Map<String, Value>,
        keep: Option<&str>,
        remember: bool,
        out: &mut Vec<u8>,
    ) {
        if self.format.log_raw {
            tresor_sdk::json::write_serialized(out, map);
        } else {
            self.salt.render_map(map, keep, remember, out);
        }
    }
}

/// `elide_list_responses`: a list answer's `keys` and `key_info` become their lengths.
fn elide(data: &mut Map<String, Value>) {
    for key in ["keys", "key_info"] {
        let len = match data.get(key) {
            Some(Value::Array(a)) => a.len(),
            Some(Value::Object(o)) => o.len(),
            _ => continue,
        };
        data.insert(key.to_owned(), Value::from(len));
    }
}

/// Joins the pre-rendered blocks into one line (with the device's prefix and a newline).
pub(crate) fn line(
    format: &Format,
    kind: &str,
    auth: &[u8],
    request: &[u8],
    response: Option<&[u8]>,
    error: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        format.prefix.len() + 64 + auth.len() + request.len() + response.map_or(0, <[u8]>::len),
    );
    out.extend_from_slice(format.prefix.as_bytes());
    out.extend_from_slice(b"{\"time\":\"");
    tresor_sdk::timestamp::write_rfc3339_nano(tresor_sdk::timestamp::now_nanos(), &mut out);
    out.extend_from_slice(b"\",\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"auth\":");
    out.extend_from_slice(auth);
    out.extend_from_slice(b",\"request\":");
    out.extend_from_slice(request);
    if let Some(response) = response {
        out.extend_from_slice(b",\"response\":");
        out.extend_from_slice(response);
    }
    if let Some(error) = error {
        out.extend_from_slice(b",\"error\":");
        tresor_sdk::json::write_str(&mut out, error);
    }
    out.extend_from_slice(b"}\n");
    out
}

/// A block serialised into a buffer sized for it up front (serde_json's own starts at 128
/// bytes and grows by copying, four times over for a 1 KiB answer).
fn block<T: Serialize>(value: &T, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    match serde_json::to_writer(&mut out, value) {
        Ok(()) => out,
        Err(_) => b"{}".to_vec(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::collections::BTreeMap;

    use serde_json::json;
    use tresor_sdk::secret::SecretBytes;

    use super::*;

    /// The hand-written request block is the serde-derived one, byte for byte: with and
    /// without the optional fields, with strings that need escaping, hashed and raw.
    #[test]
    fn the_written_request_block_is_the_serialised_one() {
        let salt = Salt::new(&SecretBytes::from(b"salt".to_vec()));
        for raw in [false, true] {
            let mut opts = BTreeMap::new();
            opts.insert("file_path".to_owned(), "discard".to_owned());
            if raw {
                opts.insert("log_raw".to_owned(), "true".to_owned());
            }
            let format = super::super::options::parse("file", &opts).unwrap().format;
            let h = Hasher {
                salt: &salt,
                format: &format,
            };
            let full = RequestInfo {
                id: "id-1".to_owned(),
                operation: "update",
                mount: MountFields {
                    point: "secret/".to_owned(),
                    mount_type: "kv".to_owned(),
                    accessor: "kv_1".to_owned(),
                    class: "secret",
                },
                path: "secret/data/a \"quoted\"\n path".to_owned(),
                data: match json!({"password": "p\\w", "n": 3, "list": ["x"]}) {
                    Value::Object(m) => Some(m),
                    _ => None,
                },
                remote_address: Some("127.0.0.1".to_owned()),
                remote_port: Some(4242),
            };
            let caller = AuthInfo {
                client_token: Some(SecretString::from("s.tok".to_owned())),
                accessor: Some("acc".to_owned()),
                entity_id: "ent-1".to_owned(),
                ..AuthInfo::default()
            };
            for (req, auth) in [
                (full, caller),
                (RequestInfo::default(), AuthInfo::default()),
            ] {
                let ids = caller_ids(&h, &auth);
                let reference = RequestOut {
                    id: &req.id,
                    client_id: &auth.entity_id,
                    operation: req.operation,
                    mount_point: &req.mount.point,
                    mount_type: &req.mount.mount_type,
                    mount_accessor: &req.mount.accessor,
                    mount_class: req.mount.class,
                    client_token: ids.token.as_deref(),
                    client_token_accessor: ids.accessor.as_deref(),
                    namespace: Namespace { id: "root" },
                    path: &req.path,
                    data: req
                        .data
                        .as_ref()
                        .filter(|d| !d.is_empty())
                        .map(|d| h.map(d, None)),
                    remote_address: req.remote_address.as_deref(),
                    remote_port: req.remote_port,
                };
                assert_eq!(
                    String::from_utf8(render_request(&h, &req, &auth, &ids)).unwrap(),
                    serde_json::to_string(&reference).unwrap()
                );
            }
        }
    }
}
