//! Secret ids: issue (random or custom), list by accessor, look up and destroy by value or by
//! accessor.
//!
//! A secret id is kept only as the HMAC of its value (see `store`); its accessor, an identifier
//! that is not a credential, finds it through `accessor/<hmac(accessor)>`. An expired secret id
//! is treated as absent by lookups and logins, as in OpenBao 2.7, but stays listed (and can be
//! destroyed) until tidy removes it.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tresor_sdk::engine::{EngineError, EngineResult, Request, Response};
use tresor_sdk::secret::SecretString;
use tresor_sdk::storage::{Storage, ViewOp};

use super::store::{self, Hashed, Hasher, MAX_HMAC_INPUT, Role};
use super::{AppRole, cidr, go_error, role, schema, status_error};
use crate::clock::{UnixNanos, rfc3339_nano};

/// A secret id's properties, stored at `secret-id/<role uid>/<hmac(secret id)>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Entry {
    pub accessor: String,
    /// Logins left; zero is unlimited.
    pub num_uses: i64,
    /// The TTL as requested (what lookups report as `secret_id_ttl`), in seconds.
    pub ttl: u64,
    pub creation_ns: UnixNanos,
    /// Zero: never expires.
    pub expiration_ns: UnixNanos,
    pub last_updated_ns: UnixNanos,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub cidr_list: Vec<String>,
    #[serde(default)]
    pub token_bound_cidrs: Vec<String>,
}

impl Entry {
    pub(super) fn expired(&self, now: UnixNanos) -> bool {
        self.expiration_ns != 0 && now > self.expiration_ns
    }
}

/// `accessor/<hmac(accessor)>`: which secret id an accessor names.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct AccessorEntry {
    pub role_uid: String,
    pub secret_id_hmac: String,
}

/// Why a secret id is gone, kept a day at `spent/<role uid>/<hmac>` so that a login with it
/// can be told (in verbose mode) what happened instead of only "invalid".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum SpentReason {
    /// Its last use was spent by a login.
    UsedUp,
    /// Tidy removed it after it expired.
    Expired,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Spent {
    pub reason: SpentReason,
    pub at_ns: UnixNanos,
}

/// How long a spent marker is kept.
pub(super) const SPENT_KEEP_NS: i64 = 24 * 3600 * 1_000_000_000;

pub(super) fn entry_key(uid: &str, secret_hmac: &str) -> String {
    format!("{}{uid}/{secret_hmac}", store::SECRET_PREFIX)
}

pub(super) fn spent_key(uid: &str, secret_hmac: &str) -> String {
    format!("{}{uid}/{secret_hmac}", store::SPENT_PREFIX)
}

pub(super) fn accessor_key(hasher: &Hasher, accessor: &str) -> String {
    format!(
        "{}{}",
        store::ACCESSOR_PREFIX,
        hasher.hash(Hashed::Accessor, accessor)
    )
}

/// The HMAC of a secret id, refusing values OpenBao will not hash.
pub(super) fn secret_hmac(hasher: &Hasher, secret: &SecretString) -> Result<String, String> {
    if secret.expose().len() > MAX_HMAC_INPUT {
        return Err(format!(
            "value is longer than maximum of {MAX_HMAC_INPUT} bytes"
        ));
    }
    Ok(hasher.hash(Hashed::SecretId, secret.expose()))
}

/// Deletes a secret id and its accessor index in one transaction, leaving `spent` behind when
/// given. The caller holds the secret id's lock.
pub(super) async fn remove(
    storage: &dyn Storage,
    hasher: &Hasher,
    uid: &str,
    secret_hmac: &str,
    entry: &Entry,
    spent: Option<Spent>,
) -> EngineResult<()> {
    let mut ops = vec![
        ViewOp::Delete {
            key: entry_key(uid, secret_hmac),
        },
        ViewOp::Delete {
            key: accessor_key(hasher, &entry.accessor),
        },
    ];
    if let Some(spent) = spent {
        ops.push(ViewOp::Put {
            key: spent_key(uid, secret_hmac),
            value: store::encode(&spent)?,
        });
    }
    storage.transaction(ops).await?;
    Ok(())
}

/// `role/:name/secret-id` (POST; `custom` is `None`) and `role/:name/custom-secret-id`.
pub(super) async fn issue(
    m: &AppRole,
    req: &Request,
    storage: &dyn Storage,
    name: &str,
    custom: Option<String>,
) -> EngineResult<Option<Response>> {
    let secret = match custom {
        Some(s) if s.is_empty() => {
            return Err(EngineError::InvalidRequest("missing secret_id".into()));
        }
        Some(s) => SecretString::new(s),
        None => SecretString::new(store::uuid()?),
    };
    // The role's lock keeps a deletion of the role from interleaving: a secret id written
    // after the deletion swept the role's directory would outlive it.
    let _guard = m.role_locks.lock(&name.to_lowercase()).await;
    let Some(role) = store::load_role(storage, name).await? else {
        return Err(status_error(404, format!("role {name:?} does not exist")));
    };
    if !role.bind_secret_id {
        return Err(EngineError::InvalidRequest(
            "bind_secret_id is not set on the role".into(),
        ));
    }
    let cidr_list = schema::list(req, "cidr_list")?.unwrap_or_default();
    cidr::validate_blocks(&cidr_list)
        .map_err(|e| go_error(format!("failed to validate CIDR blocks: {e}")))?;
    if !cidr::subset(role.bound_cidrs(), &cidr_list) {
        return Err(go_error(cidr::subset_error(role.bound_cidrs(), &cidr_list)));
    }
    let token_cidrs = schema::list(req, "token_bound_cidrs")?.unwrap_or_default();
    cidr::validate_blocks(&token_cidrs)
        .map_err(|e| go_error(format!("failed to validate token CIDR blocks: {e}")))?;
    if !cidr::subset(&role.token.bound_cidrs, &token_cidrs) {
        return Err(go_error(cidr::subset_error(
            &role.token.bound_cidrs,
            &token_cidrs,
        )));
    }
    let num_uses = match schema::int(req, "num_uses")? {
        Some(n) if n < 0 => {
            return Err(EngineError::InvalidRequest(
                "num_uses cannot be negative".into(),
            ));
        }
        Some(n) => {
            let limit = role.secret_id_num_uses;
            if limit > 0 && (n == 0 || n > limit) {
                return Err(EngineError::InvalidRequest(
                    "num_uses cannot be higher than the role's secret_id_num_uses".into(),
                ));
            }
            n
        }
        None => role.secret_id_num_uses,
    };
    let ttl = match schema::secs(req, "ttl")? {
        Some(t) => {
            let limit = role.secret_id_ttl;
            if limit > 0 && (t == 0 || t > limit) {
                return Err(EngineError::InvalidRequest(
                    "ttl cannot be longer than the role's secret_id_ttl".into(),
                ));
            }
            t
        }
        None => role.secret_id_ttl,
    };
    let metadata = parse_metadata(&schema::string(req, "metadata")?.unwrap_or_default())
        .map_err(|e| EngineError::InvalidRequest(format!("failed to parse metadata: {e}")))?;

    let hasher = m.hasher(storage).await?;
    let hmac = secret_hmac(hasher, &secret).map_err(|e| {
        go_error(format!(
            "failed to store secret_id: failed to create HMAC of secret ID: {e}"
        ))
    })?;
    let key = entry_key(&role.uid, &hmac);
    let _secret_guard = m.secret_locks.lock(&key).await;
    if storage.get(&key).await?.is_some() {
        return Err(go_error(
            "failed to store secret_id: SecretID is already registered",
        ));
    }
    // A TTL beyond the mount's maximum is capped by it, as OpenBao's deriveSecretIDTTL does.
    let effective_ttl = ttl.min(req.mount.max_lease_ttl.as_secs());
    let now = m.now();
    let entry = Entry {
        accessor: store::uuid()?,
        num_uses,
        ttl,
        creation_ns: now,
        expiration_ns: if effective_ttl == 0 {
            0
        } else {
            now.saturating_add(
                i64::try_from(effective_ttl)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1_000_000_000),
            )
        },
        last_updated_ns: now,
        metadata,
        cidr_list,
        token_bound_cidrs: token_cidrs,
    };
    storage
        .transaction(vec![
            ViewOp::Put {
                key: key.clone(),
                value: store::encode(&entry)?,
            },
            ViewOp::Put {
                key: accessor_key(hasher, &entry.accessor),
                value: store::encode(&AccessorEntry {
                    role_uid: role.uid.clone(),
                    secret_id_hmac: hmac.clone(),
                })?,
            },
            // A custom secret id issued again is no longer spent.
            ViewOp::Delete {
                key: spent_key(&role.uid, &hmac),
            },
        ])
        .await?;
    let mut data = Map::new();
    data.insert("secret_id".into(), json!(secret.expose()));
    data.insert("secret_id_accessor".into(), json!(entry.accessor));
    data.insert("secret_id_ttl".into(), json!(effective_ttl));
    data.insert("secret_id_num_uses".into(), json!(entry.num_uses));
    Ok(Some(Response::with_data(data)))
}

/// LIST `role/:name/secret-id`: the accessors of the role's secret ids, paged by OpenBao's
/// `after` / `limit` over the stored keys.
pub(super) async fn list(
    req: &Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    let Some(role) = store::load_role(storage, name).await? else {
        return Err(EngineError::InvalidRequest(format!(
            "role {name:?} does not exist"
        )));
    };
    let hmacs = storage.list(&role.secret_dir()).await?;
    let mut accessors = Vec::new();
    for hmac in role::page(req, hmacs)? {
        // An entry deleted between the listing and this read is simply not listed.
        if let Some(entry) = store::read::<Entry>(storage, &entry_key(&role.uid, &hmac)).await? {
            accessors.push(entry.accessor);
        }
    }
    if accessors.is_empty() {
        return Err(EngineError::NotFound);
    }
    Ok(Some(Response::list(accessors)))
}

/// The role a lookup or destroy names: OpenBao answers a missing one with a 500.
async fn existing_role(storage: &dyn Storage, name: &str) -> EngineResult<Role> {
    store::load_role(storage, name)
        .await?
        .ok_or_else(|| go_error(format!("role {name:?} does not exist")))
}

fn required_secret(req: &Request) -> EngineResult<SecretString> {
    let secret = SecretString::new(schema::string(req, "secret_id")?.unwrap_or_default());
    if secret.is_empty() {
        return Err(EngineError::InvalidRequest("missing secret_id".into()));
    }
    Ok(secret)
}

fn required_accessor(req: &Request) -> EngineResult<String> {
    let accessor = schema::string(req, "secret_id_accessor")?.unwrap_or_default();
    if accessor.is_empty() {
        return Err(EngineError::InvalidRequest(
            "missing secret_id_accessor".into(),
        ));
    }
    Ok(accessor)
}

/// A lookup's answer. Times are Go's `time.Time` JSON (RFC 3339 with nanoseconds, the zero time
/// for "never").
fn lookup_data(entry: &Entry) -> Map<String, Value> {
    let time = |ns: UnixNanos| {
        if ns == 0 {
            "0001-01-01T00:00:00Z".to_owned()
        } else {
            rfc3339_nano(ns)
        }
    };
    let mut data = Map::new();
    data.insert("secret_id_accessor".into(), json!(entry.accessor));
    data.insert("secret_id_num_uses".into(), json!(entry.num_uses));
    data.insert("secret_id_ttl".into(), json!(entry.ttl));
    data.insert("creation_time".into(), json!(time(entry.creation_ns)));
    data.insert("expiration_time".into(), json!(time(entry.expiration_ns)));
    data.insert(
        "last_updated_time".into(),
        json!(time(entry.last_updated_ns)),
    );
    data.insert("metadata".into(), json!(entry.metadata));
    data.insert("cidr_list".into(), json!(entry.cidr_list));
    data.insert("token_bound_cidrs".into(), json!(entry.token_bound_cidrs));
    data
}

/// `role/:name/secret-id/lookup`.
pub(super) async fn lookup(
    m: &AppRole,
    req: &Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    let (role, _, hmac) = named_secret(m, req, storage, name).await?;
    live_entry_data(m, storage, &role.uid, &hmac).await
}

/// The role, the mount's hasher and the secret id's HMAC named by a request's `secret_id`.
async fn named_secret<'m>(
    m: &'m AppRole,
    req: &Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<(Role, &'m Hasher, String)> {
    let secret = required_secret(req)?;
    let role = existing_role(storage, name).await?;
    let hasher = m.hasher(storage).await?;
    let hmac = secret_hmac(hasher, &secret)
        .map_err(|e| go_error(format!("failed to create HMAC of secret_id: {e}")))?;
    Ok((role, hasher, hmac))
}

/// A lookup's answer for the secret id stored under `hmac`; nothing when it is gone or expired.
async fn live_entry_data(
    m: &AppRole,
    storage: &dyn Storage,
    role_uid: &str,
    hmac: &str,
) -> EngineResult<Option<Response>> {
    match store::read::<Entry>(storage, &entry_key(role_uid, hmac)).await? {
        Some(entry) if !entry.expired(m.now()) => {
            Ok(Some(Response::with_data(lookup_data(&entry))))
        }
        _ => Ok(None),
    }
}

/// `role/:name/secret-id/destroy` (POST or DELETE).
pub(super) async fn destroy(
    m: &AppRole,
    req: &Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    let (role, hasher, hmac) = named_secret(m, req, storage, name).await?;
    let key = entry_key(&role.uid, &hmac);
    let _guard = m.secret_locks.lock(&key).await;
    if let Some(entry) = store::read::<Entry>(storage, &key).await? {
        remove(storage, hasher, &role.uid, &hmac, &entry, None).await?;
    }
    Ok(None)
}

/// `role/:name/secret-id-accessor/lookup`. An unknown accessor is OpenBao's 404 with the
/// message in `data.error` (a full envelope, not an `errors` list).
pub(super) async fn lookup_accessor(
    m: &AppRole,
    req: &Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    let accessor = required_accessor(req)?;
    let role = existing_role(storage, name).await?;
    let hasher = m.hasher(storage).await?;
    let Some(index) =
        store::read::<AccessorEntry>(storage, &accessor_key(hasher, &accessor)).await?
    else {
        let mut data = Map::new();
        data.insert(
            "error".into(),
            json!(format!(
                "failed to find accessor entry for secret_id_accessor: {accessor:?}"
            )),
        );
        return Ok(Some(Response {
            status_override: Some(404),
            ..Response::with_data(data)
        }));
    };
    if index.role_uid != role.uid {
        return Ok(None);
    }
    live_entry_data(m, storage, &role.uid, &index.secret_id_hmac).await
}

/// `role/:name/secret-id-accessor/destroy` (POST or DELETE).
pub(super) async fn destroy_accessor(
    m: &AppRole,
    req: &Request,
    storage: &dyn Storage,
    name: &str,
) -> EngineResult<Option<Response>> {
    let accessor = required_accessor(req)?;
    let role = existing_role(storage, name).await?;
    let hasher = m.hasher(storage).await?;
    let Some(index) =
        store::read::<AccessorEntry>(storage, &accessor_key(hasher, &accessor)).await?
    else {
        return Err(go_error(format!(
            "failed to find accessor entry for secret_id_accessor: {accessor:?}"
        )));
    };
    let key = entry_key(&role.uid, &index.secret_id_hmac);
    let _guard = m.secret_locks.lock(&key).await;
    let entry = if index.role_uid == role.uid {
        store::read::<Entry>(storage, &key).await?
    } else {
        None
    };
    let Some(entry) = entry else {
        return Err(status_error(403, "invalid secret id accessor"));
    };
    remove(
        storage,
        hasher,
        &role.uid,
        &index.secret_id_hmac,
        &entry,
        None,
    )
    .await?;
    Ok(None)
}

/// Removes every secret id of a deleted role (and its spent markers).
pub(super) async fn flush(m: &AppRole, storage: &dyn Storage, role: &Role) -> EngineResult<()> {
    let hasher = m.hasher(storage).await?;
    for hmac in storage.list(&role.secret_dir()).await? {
        let key = entry_key(&role.uid, &hmac);
        let _guard = m.secret_locks.lock(&key).await;
        if let Some(entry) = store::read::<Entry>(storage, &key).await? {
            remove(storage, hasher, &role.uid, &hmac, &entry, None).await?;
        }
    }
    for hmac in storage
        .list(&format!("{}{}/", store::SPENT_PREFIX, role.uid))
        .await?
    {
        storage.delete(&spent_key(&role.uid, &hmac)).await?;
    }
    Ok(())
}

/// A secret id's `metadata`: OpenBao's `ParseArbitraryKeyValues`. The input may be base64; it
/// is a JSON object of strings, or else `key=value` pairs separated by commas (lowercased,
/// de-duplicated). Keys with empty values are refused.
pub(super) fn parse_metadata(input: &str) -> Result<BTreeMap<String, String>, String> {
    let input = input.trim();
    if input.is_empty() {
        return Ok(BTreeMap::new());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(input)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let input = decoded.as_deref().unwrap_or(input);
    let out = match serde_json::from_str::<BTreeMap<String, String>>(input) {
        Ok(map) => map,
        Err(_) => parse_key_values(input).map_err(|e| format!("failed to parse the input: {e}"))?,
    };
    if let Some((key, _)) = out.iter().find(|(k, v)| !k.is_empty() && v.is_empty()) {
        return Err(format!("invalid value for key {key:?}"));
    }
    Ok(out)
}

/// Go's `strutil.ParseKeyValues` after `ParseDedupLowercaseAndSortStrings`.
fn parse_key_values(input: &str) -> Result<BTreeMap<String, String>, String> {
    let mut pairs: Vec<String> = input
        .split(',')
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    pairs.sort();
    pairs.dedup();
    let mut out = BTreeMap::new();
    for pair in pairs {
        let shards: Vec<&str> = pair.split('=').collect();
        let [key, value] = shards.as_slice() else {
            return Err("invalid <key,value> format".into());
        };
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() || value.is_empty() {
            return Err(format!(
                "invalid <key,value> pair: key: {key:?} value: {value:?}"
            ));
        }
        out.insert(key.to_owned(), value.to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn metadata_is_json_base64_or_key_value_pairs_as_in_openbao() {
        assert_eq!(parse_metadata(""), Ok(BTreeMap::new()));
        assert_eq!(parse_metadata("  "), Ok(BTreeMap::new()));
        assert_eq!(
            parse_metadata(r#"{"team":"a","n":"1"}"#),
            Ok(map(&[("team", "a"), ("n", "1")]))
        );
        assert_eq!(parse_metadata(r#"{"A":"B"}"#), Ok(map(&[("A", "B")])));
        assert_eq!(
            parse_metadata("Team=Prod, b=2,,b=2"),
            Ok(map(&[("team", "prod"), ("b", "2")]))
        );
        assert_eq!(
            parse_metadata("YT1i"),
            Ok(map(&[("a", "b")])),
            "base64 of a=b"
        );
        assert_eq!(
            parse_metadata("eyJ4IjoieSJ9"),
            Ok(map(&[("x", "y")])),
            "base64 of JSON"
        );
        assert_eq!(parse_metadata(r#"{"":"v"}"#), Ok(map(&[("", "v")])));
        for (input, error) in [
            (
                "notjson",
                "failed to parse the input: invalid <key,value> format",
            ),
            (
                r#"{"a":1}"#,
                "failed to parse the input: invalid <key,value> format",
            ),
            (
                "abcd",
                "failed to parse the input: invalid <key,value> format",
            ),
            (
                "null",
                "failed to parse the input: invalid <key,value> format",
            ),
            (
                "a=b=c",
                "failed to parse the input: invalid <key,value> format",
            ),
            (
                "a=",
                "failed to parse the input: invalid <key,value> pair: key: \"a\" value: \"\"",
            ),
            (
                "=b",
                "failed to parse the input: invalid <key,value> pair: key: \"\" value: \"b\"",
            ),
            (r#"{"x":""}"#, "invalid value for key \"x\""),
        ] {
            assert_eq!(parse_metadata(input), Err(error.to_owned()), "{input}");
        }
    }

    #[test]
    fn expiry_is_strictly_after_the_expiration_time_and_zero_never_expires() {
        let mut e = Entry {
            accessor: "a".into(),
            num_uses: 0,
            ttl: 0,
            creation_ns: 0,
            expiration_ns: 0,
            last_updated_ns: 0,
            metadata: BTreeMap::new(),
            cidr_list: Vec::new(),
            token_bound_cidrs: Vec::new(),
        };
        assert!(!e.expired(i64::MAX));
        e.expiration_ns = 100;
        assert!(!e.expired(100));
        assert!(e.expired(101));
    }
}
