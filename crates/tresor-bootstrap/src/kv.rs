//! A small KV v2 client over the Vault HTTP API (Tresor, Vault, OpenBao): what the importer
//! needs of a target and of a `vault` source, and nothing more.
//!
//! Values travel as [`SecretString`]: response bodies are parsed straight into them and the
//! body buffer is wiped after parsing (reqwest's own buffers are beyond reach). Errors carry
//! the operation, the path and the server's error messages, never a value or the token.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use tresor_sdk::secret::SecretString;
use zeroize::Zeroize;

#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("{address} is not a valid address")]
    Address { address: String },
    #[error("reading CA certificate {path}: {message}")]
    CaCert { path: String, message: String },
    #[error("{op} {path}: {source}")]
    Http {
        op: &'static str,
        path: String,
        source: reqwest::Error,
    },
    #[error("{op} {path}: HTTP {status}{}", errors_suffix(.errors))]
    Status {
        op: &'static str,
        path: String,
        status: u16,
        errors: Vec<String>,
    },
    #[error("{op} {path}: the answer is not what a KV v2 mount sends")]
    Decode { op: &'static str, path: String },
}

fn errors_suffix(errors: &[String]) -> String {
    if errors.is_empty() {
        String::new()
    } else {
        format!(": {}", errors.join("; "))
    }
}

impl KvError {
    pub fn status(&self) -> Option<u16> {
        match self {
            KvError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A server and a token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: SecretString,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("token", &self.token)
            .finish()
    }
}

/// A key's metadata, as much as the importer reads.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    pub current_version: u64,
    pub custom_metadata: BTreeMap<String, String>,
    /// The current version is soft-deleted or destroyed.
    pub current_gone: bool,
}

/// The outcome of a check-and-set write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The new version.
    Version(u64),
    /// `cas` did not match: someone wrote in between.
    CasMismatch,
}

/// A secret's fields: strings kept as secrets, the names of the other fields.
#[derive(Debug, Default)]
pub struct Fields {
    pub strings: BTreeMap<String, SecretString>,
    pub others: Vec<String>,
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of fields")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut fields = Fields::default();
                while let Some(key) = map.next_key::<String>()? {
                    match map.next_value::<Field>()? {
                        Field::Str(s) => {
                            fields.strings.insert(key, s);
                        }
                        Field::Other => fields.others.push(key),
                    }
                }
                Ok(fields)
            }
        }
        d.deserialize_map(V)
    }
}

/// One field's value: a string straight into a secret, anything else skipped unread.
enum Field {
    Str(SecretString),
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                Ok(Field::Str(SecretString::from(v)))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Field, E> {
                Ok(Field::Str(SecretString::new(v)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Field, E> {
                Ok(Field::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Field, E> {
                Ok(Field::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Field, E> {
                Ok(Field::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Field, E> {
                Ok(Field::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Field, E> {
                Ok(Field::Other)
            }
            fn visit_none<E: de::Error>(self) -> Result<Field, E> {
                Ok(Field::Other)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Field, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Field::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Field::Other)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: Option<T>,
}

#[derive(Deserialize)]
struct DataBody {
    data: Option<Fields>,
}

#[derive(Deserialize)]
struct MetadataBody {
    current_version: u64,
    #[serde(default)]
    custom_metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    versions: BTreeMap<String, VersionBody>,
}

#[derive(Deserialize)]
struct VersionBody {
    #[serde(default)]
    deletion_time: String,
    #[serde(default)]
    destroyed: bool,
}

#[derive(Deserialize)]
struct Keys {
    keys: Vec<String>,
}

#[derive(Deserialize)]
struct WriteBody {
    version: u64,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<String>,
}

/// What a CAS mismatch says, in Vault, OpenBao and Tresor.
const CAS_MISMATCH: &str = "check-and-set parameter did not match the current version";

impl Client {
    pub fn new(
        address: &str,
        token: SecretString,
        ca_cert: Option<&Path>,
    ) -> Result<Client, KvError> {
        let mut base = Url::parse(address).map_err(|_| KvError::Address {
            address: address.to_owned(),
        })?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(KvError::Address {
                address: address.to_owned(),
            });
        }
        if let Ok(mut segments) = base.path_segments_mut() {
            segments.pop_if_empty().push("v1");
        }
        let mut builder = reqwest::Client::builder();
        if let Some(path) = ca_cert {
            let shown = path.display().to_string();
            let pem = std::fs::read(path).map_err(|e| KvError::CaCert {
                path: shown.clone(),
                message: e.to_string(),
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| KvError::CaCert {
                path: shown.clone(),
                message: e.to_string(),
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|source| KvError::Http {
            op: "building the HTTP client for",
            path: address.to_owned(),
            source,
        })?;
        Ok(Client { http, base, token })
    }

    pub fn address(&self) -> String {
        let mut base = self.base.clone();
        if let Ok(mut s) = base.path_segments_mut() {
            s.pop();
        }
        base.as_str().trim_end_matches('/').to_owned()
    }

    /// `v1/<segments…>`, each `/`-separated part of `path` a segment (percent-encoded).
    fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.extend(path.split('/'));
        }
        url
    }

    /// Sends a request; returns the status and the body bytes (the caller wipes them).
    pub async fn send(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<(StatusCode, Vec<u8>), KvError> {
        self.send_url(op, method, self.url(path), path, body).await
    }

    /// Status errors with the server's `errors`.
    fn status_error(op: &'static str, path: &str, status: StatusCode, body: &[u8]) -> KvError {
        let errors = serde_json::from_slice::<ErrorBody>(body)
            .map(|b| b.errors)
            .unwrap_or_default();
        KvError::Status {
            op,
            path: path.to_owned(),
            status: status.as_u16(),
            errors,
        }
    }

    /// A JSON GET/LIST: `None` on 404.
    async fn json<T: for<'de> Deserialize<'de>>(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
    ) -> Result<Option<T>, KvError> {
        let (status, mut body) = self.send(op, method, path, None).await?;
        let result = if status == StatusCode::NOT_FOUND {
            Ok(None)
        } else if !status.is_success() {
            Err(Self::status_error(op, path, status, &body))
        } else {
            serde_json::from_slice::<Envelope<T>>(&body)
                .ok()
                .and_then(|e| e.data)
                .map(Some)
                .ok_or(KvError::Decode {
                    op,
                    path: path.to_owned(),
                })
        };
        body.zeroize();
        result
    }

    /// `<mount>/metadata/<key>`: `None` when the key has no metadata.
    pub async fn metadata(&self, mount: &str, key: &str) -> Result<Option<Metadata>, KvError> {
        let body: Option<MetadataBody> = self
            .json(
                "reading metadata of",
                Method::GET,
                &format!("{mount}/metadata/{key}"),
            )
            .await?;
        Ok(body.map(|b| {
            let current = b.versions.get(&b.current_version.to_string());
            Metadata {
                current_version: b.current_version,
                custom_metadata: b.custom_metadata.unwrap_or_default(),
                current_gone: current.is_some_and(|v| !v.deletion_time.is_empty() || v.destroyed),
            }
        }))
    }

    /// The fields of `<mount>/data/<key>` at `version` (0: the current one); `None` when
    /// absent, deleted or destroyed.
    pub async fn read(
        &self,
        mount: &str,
        key: &str,
        version: u64,
    ) -> Result<Option<Fields>, KvError> {
        let path = if version == 0 {
            format!("{mount}/data/{key}")
        } else {
            format!("{mount}/data/{key}?version={version}")
        };
        // `?` must not be percent-encoded as part of a segment: split it off.
        let (plain, query) = path.split_once('?').unwrap_or((path.as_str(), ""));
        let mut url = self.url(plain);
        if !query.is_empty() {
            url.set_query(Some(query));
        }
        let (status, mut body) = self
            .send_url("reading", Method::GET, url, plain, None)
            .await?;
        let result = if status == StatusCode::NOT_FOUND {
            Ok(None)
        } else if !status.is_success() {
            Err(Self::status_error("reading", plain, status, &body))
        } else {
            serde_json::from_slice::<Envelope<DataBody>>(&body)
                .map(|e| e.data.and_then(|d| d.data))
                .map_err(|_| KvError::Decode {
                    op: "reading",
                    path: plain.to_owned(),
                })
        };
        body.zeroize();
        result
    }

    async fn send_url(
        &self,
        op: &'static str,
        method: Method,
        url: Url,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<(StatusCode, Vec<u8>), KvError> {
        let mut req = self
            .http
            .request(method, url)
            .header("X-Vault-Token", self.token.expose())
            .header("X-Vault-Request", "true");
        if let Some((content_type, bytes)) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes);
        }
        let err = |source| KvError::Http {
            op,
            path: path.to_owned(),
            source,
        };
        let resp = req.send().await.map_err(err)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(err)?.to_vec();
        Ok((status, bytes))
    }

    /// `LIST <mount>/metadata/<folder>`: the keys (folders end in `/`); empty on 404.
    pub async fn list(&self, mount: &str, folder: &str) -> Result<Vec<String>, KvError> {
        let path = format!("{mount}/metadata/{folder}");
        let list = Method::from_bytes(b"LIST").map_err(|_| KvError::Decode {
            op: "listing",
            path: path.clone(),
        })?;
        let keys: Option<Keys> = self
            .json("listing", list, path.trim_end_matches('/'))
            .await?;
        Ok(keys.map(|k| k.keys).unwrap_or_default())
    }

    /// Writes `{"value": …}` as a new version of `<mount>/data/<key>` with `cas`.
    pub async fn write_value(
        &self,
        mount: &str,
        key: &str,
        value: &SecretString,
        cas: u64,
    ) -> Result<Written, KvError> {
        #[derive(serde::Serialize)]
        struct Options {
            cas: u64,
        }
        #[derive(serde::Serialize)]
        struct Data<'a> {
            value: &'a str,
        }
        #[derive(serde::Serialize)]
        struct Body<'a> {
            options: Options,
            data: Data<'a>,
        }
        let path = format!("{mount}/data/{key}");
        let bytes = serde_json::to_vec(&Body {
            options: Options { cas },
            data: Data {
                value: value.expose(),
            },
        })
        .map_err(|_| KvError::Decode {
            op: "writing",
            path: path.clone(),
        })?;
        let (status, mut body) = self
            .send(
                "writing",
                Method::POST,
                &path,
                Some(("application/json", bytes)),
            )
            .await?;
        let result = if status.is_success() {
            serde_json::from_slice::<Envelope<WriteBody>>(&body)
                .ok()
                .and_then(|e| e.data)
                .map(|w| Written::Version(w.version))
                .ok_or(KvError::Decode {
                    op: "writing",
                    path: path.clone(),
                })
        } else {
            let err = Self::status_error("writing", &path, status, &body);
            match &err {
                KvError::Status {
                    status: 400,
                    errors,
                    ..
                } if errors.iter().any(|e| e.contains(CAS_MISMATCH)) => Ok(Written::CasMismatch),
                _ => Err(err),
            }
        };
        body.zeroize();
        result
    }

    /// Merges `entries` into the key's `custom_metadata` (PATCH, JSON merge patch), leaving
    /// the other entries as they are.
    pub async fn patch_custom_metadata(
        &self,
        mount: &str,
        key: &str,
        entries: &BTreeMap<&str, String>,
    ) -> Result<(), KvError> {
        let path = format!("{mount}/metadata/{key}");
        let body = serde_json::to_vec(&serde_json::json!({ "custom_metadata": entries })).map_err(
            |_| KvError::Decode {
                op: "recording metadata of",
                path: path.clone(),
            },
        )?;
        let (status, body) = self
            .send(
                "recording metadata of",
                Method::PATCH,
                &path,
                Some(("application/merge-patch+json", body)),
            )
            .await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(Self::status_error(
                "recording metadata of",
                &path,
                status,
                &body,
            ))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_strings_as_secrets_and_name_the_rest() {
        let f: Fields =
            serde_json::from_str(r#"{"value":"v","n":1,"o":{"a":[1,"x"]},"s":"t","z":null}"#)
                .unwrap();
        assert_eq!(f.strings["value"].expose(), "v");
        assert_eq!(f.strings["s"].expose(), "t");
        assert_eq!(f.others, ["n", "o", "z"]);
    }

    #[test]
    fn urls_encode_each_segment_below_v1() {
        // The binary installs ring as rustls' provider; reqwest is built without one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let c = Client::new("http://127.0.0.1:8200/", SecretString::from("t"), None).unwrap();
        assert_eq!(
            c.url("secret/data/a b/c").as_str(),
            "http://127.0.0.1:8200/v1/secret/data/a%20b/c"
        );
        assert_eq!(c.address(), "http://127.0.0.1:8200");
        assert!(Client::new("not a url", SecretString::from("t"), None).is_err());
        assert!(format!("{c:?}").contains("[redacted]"));
    }
}
