//! Turning an HTTP request into what the handlers need: operation, path, token, JSON body.

use axum::body::Body;
use http::{HeaderMap, Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tresor_sdk::secret::SecretString;

use crate::error::ApiError;

/// The operation a request asks for, as Vault maps HTTP methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Read,
    /// `HEAD`; only `sys/health` answers it.
    Head,
    /// `PUT` or `POST`: synonyms in Vault's API.
    Update,
    /// OpenBao's `SCAN` method, or `GET ?scan=true`: a recursive listing.
    Scan,
    Delete,
    /// The `LIST` method, or `GET ?list=true`.
    List,
    Patch,
}

/// A parsed request, body included (read up front, bounded by the size limit).
#[derive(Debug)]
pub struct ApiRequest {
    pub operation: Operation,
    /// The path after `/v1/`, without a leading slash.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub token: Option<SecretString>,
    /// The operation became `List` through `?list=true`, not the `LIST` method: OpenBao's raw
    /// sys handlers ignore the query parameter.
    pub list_from_query: bool,
    pub content_type: Option<String>,
    pub body: bytes::Bytes,
    /// The client's address (from the listener's connection info), for CIDR bindings.
    pub remote_addr: Option<std::net::IpAddr>,
    /// The client's address and port, for audit lines.
    pub remote_socket: Option<std::net::SocketAddr>,
    /// `X-Vault-Wrap-TTL` in whole seconds: wrap the response in a single-use token.
    pub wrap_ttl: Option<u64>,
    /// Every `Accept` header value, in order (`sys/metrics` picks its format from them).
    pub accept: Vec<String>,
}

/// The API path (after `/v1/`, percent-decoded) and the client address a quota check needs,
/// taken from the URI alone; `None` for anything that is not a well-formed `/v1/` path (its
/// parse will refuse it anyway).
pub fn quota_path(request: &http::Request<Body>) -> Option<(String, Option<std::net::IpAddr>)> {
    let path = request.uri().path().strip_prefix("/v1/")?;
    let path = percent_decode(path).ok()?;
    let client = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    Some((path, client))
}

impl ApiRequest {
    pub async fn parse(request: http::Request<Body>, limit: usize) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let Some(path) = parts.uri.path().strip_prefix("/v1/") else {
            return Err(ApiError::bare(StatusCode::NOT_FOUND));
        };
        let path = percent_decode(path)?;
        check_segments(&path)?;
        let query = parse_query(parts.uri.query().unwrap_or(""))?;
        let mut operation = match parts.method {
            Method::GET => Operation::Read,
            Method::HEAD => Operation::Head,
            Method::PUT | Method::POST => Operation::Update,
            Method::DELETE => Operation::Delete,
            Method::PATCH => Operation::Patch,
            ref m if m.as_str() == "LIST" => Operation::List,
            ref m if m.as_str() == "SCAN" => Operation::Scan,
            _ => return Err(ApiError::method_not_allowed()),
        };
        let mut list_from_query = false;
        let query_flag = |name: &str| -> Result<bool, ApiError> {
            match query.iter().find(|(k, _)| k == name) {
                Some((_, v)) if !v.is_empty() => {
                    parse_bool(v).ok_or_else(|| ApiError::bare(StatusCode::BAD_REQUEST))
                }
                _ => Ok(false),
            }
        };
        if operation == Operation::Read && query_flag("list")? && query_flag("scan")? {
            // A read cannot be a LIST and a SCAN at once.
            return Err(ApiError::bare(StatusCode::BAD_REQUEST));
        }
        if operation == Operation::Read
            && let Some((_, v)) = query.iter().find(|(k, _)| k == "scan")
            && !v.is_empty()
            && parse_bool(v).ok_or_else(|| ApiError::bare(StatusCode::BAD_REQUEST))?
        {
            operation = Operation::Scan;
        }
        if operation == Operation::Read
            && let Some((_, v)) = query.iter().find(|(k, _)| k == "list")
        {
            // Go's strconv.ParseBool rules; a bad value is a bare 400 as in OpenBao, and an
            // empty value means "not a list".
            if !v.is_empty()
                && parse_bool(v).ok_or_else(|| ApiError::bare(StatusCode::BAD_REQUEST))?
            {
                operation = Operation::List;
                list_from_query = true;
            }
        }
        // Vault lists "folders": a LIST of `secret/foo` is a LIST of `secret/foo/`, for the
        // engine and for the ACL alike.
        let path = if operation == Operation::List && !path.is_empty() && !path.ends_with('/') {
            format!("{path}/")
        } else {
            path
        };
        let body = read_bounded(body, limit).await?;
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let remote_socket = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0);
        let remote_addr = remote_socket.map(|s| s.ip());
        let wrap_ttl = wrap_ttl_from(&parts.headers)?;
        let accept = parts
            .headers
            .get_all(http::header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        Ok(Self {
            operation,
            path,
            query,
            token: token_from(&parts.headers),
            list_from_query,
            content_type,
            body,
            remote_addr,
            remote_socket,
            wrap_ttl,
            accept,
        })
    }

    /// The operation as the core and engines name it; `HEAD` only exists for `sys/health`.
    pub fn sdk_operation(&self) -> Result<tresor_sdk::engine::Operation, ApiError> {
        use tresor_sdk::engine::Operation as O;
        Ok(match self.operation {
            Operation::Read => O::Read,
            Operation::Update => O::Update,
            Operation::Delete => O::Delete,
            Operation::List => O::List,
            Operation::Patch => O::Patch,
            Operation::Scan => O::Scan,
            Operation::Head => return Err(ApiError::method_not_allowed()),
        })
    }

    /// The request's parameters as Vault sees them: the JSON body for writes, the query string
    /// for reads and lists.
    pub fn data(&self) -> Result<serde_json::Map<String, Value>, ApiError> {
        match self.operation {
            Operation::Read | Operation::List | Operation::Head | Operation::Scan => Ok(self
                .query
                .iter()
                .filter(|(k, _)| k != "list" && k != "scan")
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect()),
            _ => self.json(),
        }
    }

    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Decodes the body into `T`. An empty body or JSON `null` reads as `{}`, and `null`
    /// fields as absent, as Go's decoder does.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        decode_json(&self.body)
    }

    /// As [`ApiRequest::json`] for the handlers OpenBao decodes with Go's `encoding/json` into
    /// a struct (init, unseal, generate-root): field names match case-insensitively there, so
    /// `{"Key": …}` is `{"key": …}`.
    pub fn json_go<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let value: Value = decode_json(&self.body)?;
        let lowered = match value {
            Value::Object(map) => {
                let mut out = serde_json::Map::new();
                for (k, v) in map {
                    let lower = k.to_lowercase();
                    // An exact lower-case key wins over a differently cased duplicate.
                    if k == lower || !out.contains_key(&lower) {
                        out.insert(lower, v);
                    }
                }
                Value::Object(out)
            }
            other => other,
        };
        serde_json::from_value(lowered)
            .map_err(|e| ApiError::bad_request(format!("failed to decode JSON input: {e}")))
    }
}

pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bad = |msg: String| ApiError::bad_request(format!("failed to decode JSON input: {msg}"));
    let value: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?
    };
    let value = match value {
        Value::Null => Value::Object(Default::default()),
        Value::Object(map) => Value::Object(map),
        other => {
            return Err(bad(format!(
                "expected a JSON object, got {}",
                json_type(&other)
            )));
        }
    };
    serde_json::from_value(value).map_err(|e| bad(e.to_string()))
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// How much of an oversized body is read and thrown away before answering 413, so the client
/// finishes sending and sees the answer instead of a reset connection.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// Reads at most `limit` bytes of body; beyond it, drains (up to [`DRAIN_LIMIT`]) and answers 413.
pub(crate) async fn read_bounded(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    use http_body_util::BodyExt;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "http: request body too large",
        )
    };
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    let mut seen: usize = 0;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(ApiError::bad_request("failed to read the request body"));
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > limit {
            if seen > limit.saturating_add(DRAIN_LIMIT) {
                return Err(too_large());
            }
            buf.clear();
            continue;
        }
        buf.extend_from_slice(&data);
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(buf.freeze())
}

/// Paths with empty, `.` or `..` segments are refused (a trailing slash is fine). OpenBao's Go
/// mux would redirect them to a cleaned path instead; a secrets server should not quietly act on
/// a path other than the one the client named.
fn check_segments(path: &str) -> Result<(), ApiError> {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    if trimmed.is_empty() {
        return Ok(());
    }
    if trimmed
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(ApiError::bad_request(
            "invalid request path: empty, '.' or '..' segments are not allowed",
        ));
    }
    Ok(())
}

/// `X-Vault-Wrap-TTL`: `"60s"`, `"5m"` or plain seconds (`"300"`). A value that does not parse
/// or is negative is a 400, as in Vault; zero or an empty header means no wrapping.
fn wrap_ttl_from(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(raw) = headers.get("x-vault-wrap-ttl") else {
        return Ok(None);
    };
    let text = raw
        .to_str()
        .map_err(|_| ApiError::bad_request("error parsing X-Vault-Wrap-TTL header"))?
        .trim();
    if text.is_empty() {
        return Ok(None);
    }
    let secs = tresor_sdk::duration::parse_str(text)
        .and_then(tresor_sdk::duration::whole_seconds)
        .map_err(|_| {
            ApiError::bad_request(format!(
                "error parsing X-Vault-Wrap-TTL header: time: invalid duration {text:?}"
            ))
        })?;
    if secs < 0 {
        return Err(ApiError::bad_request(
            "error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative",
        ));
    }
    Ok((secs > 0).then(|| u64::try_from(secs).unwrap_or(0)))
}

fn token_from(headers: &HeaderMap) -> Option<SecretString> {
    if let Some(v) = headers.get("x-vault-token").and_then(|v| v.to_str().ok())
        && !v.is_empty()
    {
        return Some(SecretString::from(v));
    }
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = auth.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") && !rest.trim().is_empty() {
        return Some(SecretString::from(rest.trim()));
    }
    None
}

/// Go's `strconv.ParseBool`; a bare key (`?standbyok`) counts as true.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "" | "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn parse_query(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.push((
            percent_decode(&k.replace('+', " "))?,
            percent_decode(&v.replace('+', " "))?,
        ));
    }
    Ok(out)
}

/// Decodes `%XX` escapes; invalid escapes or non-UTF-8 results are a 400.
fn percent_decode(s: &str) -> Result<String, ApiError> {
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    let bad = || ApiError::bad_request("invalid percent-encoding in request URL");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, uri: &str) -> Result<ApiRequest, ApiError> {
        let r = http::Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        futures_block_on(ApiRequest::parse(r, 1024))
    }

    /// The body of an empty request is ready at once; no runtime needed.
    fn futures_block_on<F: std::future::Future>(f: F) -> F::Output {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(f)
    }

    #[test]
    fn list_comes_from_the_method_or_the_query() {
        assert_eq!(
            req("LIST", "/v1/secret/").unwrap().operation,
            Operation::List
        );
        assert_eq!(
            req("GET", "/v1/secret/?list=true").unwrap().operation,
            Operation::List
        );
        assert_eq!(
            req("GET", "/v1/secret/?list=false").unwrap().operation,
            Operation::Read
        );
        let err = req("GET", "/v1/secret/?list=maybe").unwrap_err();
        assert_eq!(err, ApiError::bare(StatusCode::BAD_REQUEST));
    }

    #[test]
    fn paths_outside_v1_are_bare_404s() {
        assert_eq!(
            req("GET", "/v2/sys/health").unwrap_err(),
            ApiError::bare(StatusCode::NOT_FOUND)
        );
        assert_eq!(
            req("GET", "/").unwrap_err(),
            ApiError::bare(StatusCode::NOT_FOUND)
        );
    }

    #[test]
    fn unknown_methods_are_405() {
        assert_eq!(
            req("TRACE", "/v1/sys/health").unwrap_err().status,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    #[test]
    fn percent_escapes_are_decoded_and_bad_ones_rejected() {
        assert_eq!(req("GET", "/v1/a%20b").unwrap().path, "a b");
        assert_eq!(
            req("GET", "/v1/a%zz").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            req("GET", "/v1/a%ff").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn tokens_come_from_x_vault_token_or_bearer() {
        let with = |name: &str, value: &str| {
            let r = http::Request::builder()
                .uri("/v1/x")
                .header(name, value)
                .body(Body::empty())
                .unwrap();
            futures_block_on(ApiRequest::parse(r, 1024))
                .unwrap()
                .token
                .map(|t| t.expose().to_owned())
        };
        assert_eq!(with("X-Vault-Token", "abc").as_deref(), Some("abc"));
        assert_eq!(with("Authorization", "Bearer xyz").as_deref(), Some("xyz"));
        assert_eq!(with("Authorization", "Basic xyz"), None);
    }

    #[derive(serde::Deserialize, Debug)]
    struct Body1 {
        key: Option<String>,
    }

    #[test]
    fn json_null_and_empty_bodies_read_as_empty_objects() {
        assert!(decode_json::<Body1>(b"").unwrap().key.is_none());
        assert!(decode_json::<Body1>(b"null").unwrap().key.is_none());
        assert!(
            decode_json::<Body1>(br#"{"key":null}"#)
                .unwrap()
                .key
                .is_none()
        );
        assert_eq!(
            decode_json::<Body1>(br#"{"key":"v"}"#)
                .unwrap()
                .key
                .as_deref(),
            Some("v")
        );
        assert_eq!(
            decode_json::<Body1>(b"[1]").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            decode_json::<Body1>(b"{bad").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            decode_json::<Body1>(br#"{"key":5}"#).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }
}
