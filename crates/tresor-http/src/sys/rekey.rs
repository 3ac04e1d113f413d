//! Rekeying the unseal key shares, in OpenBao's two API families:
//!
//! - `sys/rotate/root/{init,update,verify,backup}` (and `sys/rekey/backup`): authenticated
//!   logical endpoints with the `{"data": …}` envelope; no `sudo` needed, as in OpenBao.
//! - `sys/rekey/{init,update,verify}`: the legacy unauthenticated raw endpoints (the key
//!   quorum is the authorisation). OpenBao ≥ 2.5 serves them only on listeners with
//!   `disable_unauthed_rekey_endpoints = false`; elsewhere they answer 405
//!   `unsupported operation`, as OpenBao's logical sys backend does.
//!
//! Both families drive the same core state machine (`tresor_core::rekey`) in separate
//! attempts; only the wording of their errors and the shape of their answers differ.

use axum::response::Response;
use base64::Engine;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tresor_core::CoreError;
use tresor_core::rekey::{
    AutoSealOption, RekeyApi, RekeyError, RekeyRequest, RekeyResult, RekeyStatus, RekeyTarget,
    RekeyUpdate, VerifyStatus, VerifyUpdate,
};
use tresor_sdk::secret::{SecretBytes, SecretString};

use crate::AppState;
use crate::error::ApiError;
use crate::request::{ApiRequest, Operation};
use crate::response::{envelope, json_response, no_content};
use crate::sys::allow_logical;

/// Key shares are 16 to 33 bytes; a hex string decoding to another length is read as base64.
const MIN_KEY_LEN: usize = 16;
const MAX_KEY_LEN: usize = 33;

/// Which endpoint an error came from: the legacy family words "not in progress" per endpoint.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Init,
    Update,
    Verify,
}

/// Decodes a share as OpenBao's rekey handlers do: hex when it decodes to a plausible share
/// length, base64 otherwise.
fn decode_share(key: &str) -> Result<SecretBytes, ApiError> {
    if let Ok(bytes) = hex::decode(key)
        && (MIN_KEY_LEN..=MAX_KEY_LEN).contains(&bytes.len())
    {
        return Ok(SecretBytes::new(bytes));
    }
    base64::engine::general_purpose::STANDARD
        .decode(key)
        .map(SecretBytes::new)
        .map_err(|_| ApiError::bad_request("'key' must be a valid hex or base64 string"))
}

/// Words a core error for `api`'s family, with OpenBao's statuses (the legacy handlers answer
/// some failures with 500, the logical ones with 400).
fn word(err: CoreError, api: RekeyApi, endpoint: Endpoint) -> ApiError {
    let CoreError::Rekey(err) = err else {
        return err.into();
    };
    let legacy = api == RekeyApi::Legacy;
    let (status, message) = match err {
        RekeyError::InvalidConfig(m) if legacy => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("invalid rekey seal configuration: {m}"),
        ),
        RekeyError::InvalidConfig(m) => (
            StatusCode::BAD_REQUEST,
            format!("invalid rotate seal configuration: {m}"),
        ),
        RekeyError::PgpUnsupported => (
            StatusCode::BAD_REQUEST,
            "pgp_keys are not supported by Tresor yet: rekey without them and distribute the \
             shares over a secure channel"
                .to_owned(),
        ),
        RekeyError::RecoveryUnsupported => (
            StatusCode::BAD_REQUEST,
            "recovery rekeying not supported".to_owned(),
        ),
        RekeyError::AutoSealOption(option) => {
            (StatusCode::BAD_REQUEST, auto_seal_option(option, legacy))
        }
        RekeyError::RecoveryKeyMismatch => (
            StatusCode::BAD_REQUEST,
            "recovery key verification failed: recovery key does not match submitted values"
                .to_owned(),
        ),
        RekeyError::AlreadyInProgress => (
            StatusCode::BAD_REQUEST,
            if legacy {
                "rekey already in progress"
            } else {
                "rotation already in progress"
            }
            .to_owned(),
        ),
        RekeyError::NotInProgress => (
            StatusCode::BAD_REQUEST,
            match (legacy, endpoint) {
                (true, Endpoint::Verify) => "no rekey in progress",
                (true, _) => "no barrier rekey in progress",
                (false, _) => "no rotation in progress",
            }
            .to_owned(),
        ),
        RekeyError::NoConfiguration => (
            StatusCode::BAD_REQUEST,
            if legacy {
                "no rekey configuration found"
            } else {
                "no rotation configuration found"
            }
            .to_owned(),
        ),
        RekeyError::VerificationPending { nonce } => (
            StatusCode::BAD_REQUEST,
            format!(
                "{} already finished; verification must be performed; nonce for the \
                 verification operation is {nonce:?}",
                if legacy {
                    "rekey operation"
                } else {
                    "rotation"
                }
            ),
        ),
        RekeyError::WrongNonce { expected } => (
            StatusCode::BAD_REQUEST,
            if legacy {
                format!("incorrect nonce supplied; nonce for this rekey operation is {expected:?}")
            } else {
                format!("incorrect nonce supplied; nonce for rotation is {expected:?}")
            },
        ),
        RekeyError::DuplicateKey => (
            StatusCode::BAD_REQUEST,
            if legacy {
                "given key has already been provided during this generation operation"
            } else {
                "given key has already been provided during this rotation"
            }
            .to_owned(),
        ),
        RekeyError::KeyTooShort | RekeyError::KeyTooLong => {
            (StatusCode::BAD_REQUEST, err.to_string())
        }
        RekeyError::Combine(detail) if legacy => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to compute root key: {detail}"),
        ),
        RekeyError::Combine(detail) => (
            StatusCode::BAD_REQUEST,
            format!("failed to compute key: {detail}"),
        ),
        RekeyError::InvalidKey => (
            if legacy {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::BAD_REQUEST
            },
            "failed to read root key: invalid key: failed to decrypt keys from storage: cipher: \
             message authentication failed"
                .to_owned(),
        ),
        RekeyError::NoVerification => (
            StatusCode::BAD_REQUEST,
            if legacy {
                "no rekey verification in progress"
            } else {
                "no rotation verification in progress"
            }
            .to_owned(),
        ),
        RekeyError::WrongVerificationNonce { expected } => (
            StatusCode::BAD_REQUEST,
            format!("incorrect nonce supplied; nonce for this verify operation is {expected:?}"),
        ),
        RekeyError::DuplicateVerificationKey => (
            StatusCode::BAD_REQUEST,
            "given key has already been provided during this verify operation".to_owned(),
        ),
        RekeyError::VerificationCombine(detail) => (
            if legacy {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::BAD_REQUEST
            },
            format!("failed to compute key for verification: {detail}"),
        ),
        RekeyError::VerificationMismatch => (
            StatusCode::BAD_REQUEST,
            if legacy {
                "rekey verification failed; incorrect key shares supplied"
            } else {
                "rotation verification failed; incorrect key shares supplied"
            }
            .to_owned(),
        ),
    };
    ApiError::new(status, message)
}

/// OpenBao's refusals of options a root rotation with recovery keys has no use for; the two
/// families word them differently.
fn auto_seal_option(option: AutoSealOption, legacy: bool) -> String {
    let what = match option {
        AutoSealOption::PgpKeys => "PGP key encryption",
        AutoSealOption::Backup => "key backup",
        AutoSealOption::RequireVerification => "requiring verification",
    };
    match (legacy, option) {
        (true, _) => {
            format!("{what} not supported when rekeying the barrier key with recovery keys")
        }
        (false, AutoSealOption::RequireVerification) => {
            format!("{what} not supported when rotating the barrier key with recovery keys")
        }
        (false, _) => format!("{what} not supported when using stored keys"),
    }
}

fn encode_keys(result: &RekeyResult) -> (Vec<String>, Vec<String>) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let hex_keys = result
        .keys
        .iter()
        .map(|k| hex::encode(k.expose()))
        .collect();
    let b64_keys = result.keys.iter().map(|k| b64.encode(k.expose())).collect();
    (hex_keys, b64_keys)
}

// ---------------------------------------------------------------------------------------------
// The authenticated family: sys/rotate/root/*, sys/rekey/backup.

/// The target named by an authenticated rotate path, and the endpoint under it.
pub fn rotate_endpoint(path: &str) -> Option<(RekeyTarget, &str)> {
    let (target, rest) = if let Some(rest) = path.strip_prefix("sys/rotate/root/") {
        (RekeyTarget::Barrier, rest)
    } else {
        (
            RekeyTarget::Recovery,
            path.strip_prefix("sys/rotate/recovery/")?,
        )
    };
    matches!(rest, "init" | "update" | "verify" | "backup").then_some((target, rest))
}

/// The target of a legacy path: `sys/rekey/*` (the barrier) or `sys/rekey-recovery-key/*`.
pub fn legacy_target(path: &str) -> RekeyTarget {
    if path.starts_with("sys/rekey-recovery-key/") {
        RekeyTarget::Recovery
    } else {
        RekeyTarget::Barrier
    }
}

/// [`word`], with OpenBao's wording for a recovery quorum that does not match.
fn word_for(err: CoreError, api: RekeyApi, endpoint: Endpoint, target: RekeyTarget) -> ApiError {
    let legacy = api == RekeyApi::Legacy;
    match (target, &err) {
        (RekeyTarget::Recovery, CoreError::Rekey(RekeyError::InvalidConfig(m))) => ApiError::new(
            if legacy {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::BAD_REQUEST
            },
            format!("invalid recovery configuration: {m}"),
        ),
        (RekeyTarget::Recovery, CoreError::Rekey(RekeyError::NotInProgress))
            if legacy && endpoint != Endpoint::Verify =>
        {
            ApiError::bad_request("no recovery rekey in progress")
        }
        (RekeyTarget::Recovery, CoreError::Rekey(RekeyError::InvalidKey)) => ApiError::new(
            if legacy {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::BAD_REQUEST
            },
            "recovery key verification failed: recovery key does not match submitted values",
        ),
        _ => word(err, api, endpoint),
    }
}

fn data_response(data: Map<String, Value>) -> Response {
    json_response(StatusCode::OK, &envelope(data, false))
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn rotate_status(status: &RekeyStatus) -> Map<String, Value> {
    if !status.started {
        return object(json!({
            "started": false, "t": 0, "n": 0, "required": status.required,
        }));
    }
    object(json!({
        "started": true,
        "nonce": status.nonce,
        "t": status.threshold,
        "n": status.shares,
        "progress": status.progress,
        "required": status.required,
        "verification_required": status.verification_required,
        "verification_nonce": status.verification_nonce,
    }))
}

fn verify_status(status: &VerifyStatus) -> Map<String, Value> {
    object(json!({
        "nonce": status.nonce,
        "started": status.started,
        "t": status.threshold,
        "n": status.shares,
        "progress": status.progress,
    }))
}

/// A framework `TypeInt` field: a JSON number or a numeric string.
fn int_field(data: &Map<String, Value>, key: &str) -> Result<i64, ApiError> {
    let invalid = || {
        ApiError::bad_request(format!(
            "Field validation failed: error converting input for field {key:?}: '' cannot parse \
             value as 'int': strconv.ParseInt: invalid syntax"
        ))
    };
    match data.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .ok_or_else(invalid),
        Some(Value::String(s)) => s.trim().parse().map_err(|_| invalid()),
        Some(_) => Err(invalid()),
    }
}

/// A framework `TypeBool` field.
fn bool_field(data: &Map<String, Value>, key: &str) -> Result<bool, ApiError> {
    tresor_core::params::boolean(data, key)
        .map(Option::unwrap_or_default)
        .map_err(|_| {
            ApiError::bad_request(format!(
                "Field validation failed: error converting input for field {key:?}: cannot \
                 parse value as 'bool'"
            ))
        })
}

/// A framework string field that must be present and non-empty.
fn required_string(data: &Map<String, Value>, key: &str) -> Result<String, ApiError> {
    match tresor_core::params::string(data, key) {
        Ok(Some(s)) if !s.is_empty() => Ok(s),
        _ => Err(ApiError::bad_request(format!(
            "missing required field '{key}'"
        ))),
    }
}

/// `sys/rotate/root/<endpoint>` (authorised already by the dispatcher).
pub async fn rotate(
    state: &AppState,
    request: &ApiRequest,
    target: RekeyTarget,
    endpoint: &str,
    data: &Map<String, Value>,
) -> Result<Response, ApiError> {
    let api = RekeyApi::Rotate;
    let core = &state.core;
    match endpoint {
        "init" => {
            allow_logical(
                request,
                &[Operation::Read, Operation::Update, Operation::Delete],
            )?;
            let wording = |e| word_for(e, api, Endpoint::Init, target);
            let status = match request.operation {
                Operation::Read => core.rekey_status(api, target).await.map_err(wording)?,
                Operation::Delete => {
                    core.rekey_cancel(api, target).await.map_err(wording)?;
                    return Ok(no_content());
                }
                _ => {
                    let start = RekeyRequest {
                        secret_shares: int_field(data, "secret_shares")?,
                        secret_threshold: int_field(data, "secret_threshold")?,
                        pgp_keys: tresor_core::params::string_list(data, "pgp_keys")?
                            .unwrap_or_default(),
                        backup: bool_field(data, "backup")?,
                        require_verification: bool_field(data, "require_verification")?,
                    };
                    core.rekey_start(api, target, &start)
                        .await
                        .map_err(wording)?
                }
            };
            Ok(data_response(rotate_status(&status)))
        }
        "update" => {
            allow_logical(request, &[Operation::Update])?;
            let key = SecretString::new(required_string(data, "key")?);
            let nonce = required_string(data, "nonce")?;
            let key = decode_share(key.expose())?;
            match core
                .rekey_update(api, target, key, &nonce)
                .await
                .map_err(|e| word_for(e, api, Endpoint::Update, target))?
            {
                RekeyUpdate::Progress(status) => Ok(data_response(rotate_status(&status))),
                RekeyUpdate::Complete(result) => {
                    let (keys, keys_base64) = encode_keys(&result);
                    Ok(data_response(object(json!({
                        "complete": true,
                        "nonce": nonce,
                        "backup": result.backup,
                        "pgp_fingerprints": null,
                        "verification_required": result.verification_required,
                        "verification_nonce": result.verification_nonce,
                        "keys": keys,
                        "keys_base64": keys_base64,
                    }))))
                }
            }
        }
        "verify" => {
            allow_logical(
                request,
                &[Operation::Read, Operation::Update, Operation::Delete],
            )?;
            let wording = |e| word_for(e, api, Endpoint::Verify, target);
            let status = match request.operation {
                Operation::Read => core
                    .rekey_verify_status(api, target)
                    .await
                    .map_err(wording)?,
                Operation::Delete => core
                    .rekey_verify_restart(api, target)
                    .await
                    .map_err(wording)?,
                _ => {
                    let key = SecretString::new(required_string(data, "key")?);
                    let nonce = required_string(data, "nonce")?;
                    let key = decode_share(key.expose())?;
                    match core
                        .rekey_verify(api, target, key, &nonce)
                        .await
                        .map_err(wording)?
                    {
                        VerifyUpdate::Progress(status) => status,
                        VerifyUpdate::Complete { nonce } => {
                            return Ok(data_response(object(json!({
                                "complete": true,
                                "nonce": nonce,
                            }))));
                        }
                    }
                }
            };
            Ok(data_response(verify_status(&status)))
        }
        _ => backup(state, request).await,
    }
}

/// `sys/rotate/root/backup` and `sys/rekey/backup`: Tresor never stores PGP-encrypted backups
/// (it does not encrypt shares with PGP), so there is never anything to read; deleting is a
/// no-op, as in OpenBao when nothing is stored.
pub async fn backup(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    allow_logical(request, &[Operation::Read, Operation::Delete])?;
    state.core.active()?;
    match request.operation {
        Operation::Read => Err(ApiError::bad_request("no backed-up keys found")),
        _ => Ok(no_content()),
    }
}

// ---------------------------------------------------------------------------------------------
// The legacy unauthenticated family: sys/rekey/{init,update,verify}.

#[derive(Deserialize)]
struct InitBody {
    #[serde(default)]
    secret_shares: i64,
    #[serde(default)]
    secret_threshold: i64,
    #[serde(default)]
    pgp_keys: Option<Vec<String>>,
    #[serde(default)]
    backup: bool,
    #[serde(default)]
    require_verification: bool,
}

#[derive(Deserialize)]
struct KeyBody {
    key: Option<SecretString>,
    nonce: Option<String>,
}

fn legacy_status(status: &RekeyStatus) -> Value {
    let mut body = json!({
        "nonce": status.nonce,
        "started": status.started,
        "t": status.threshold,
        "n": status.shares,
        "progress": status.progress,
        "required": status.required,
        "pgp_fingerprints": null,
        "backup": false,
        "verification_required": status.verification_required,
    });
    if !status.verification_nonce.is_empty()
        && let Some(obj) = body.as_object_mut()
    {
        obj.insert(
            "verification_nonce".into(),
            status.verification_nonce.clone().into(),
        );
    }
    body
}

fn legacy_verify_status(status: &VerifyStatus) -> Value {
    json!({
        "nonce": status.nonce,
        "started": status.started,
        "t": status.threshold,
        "n": status.shares,
        "progress": status.progress,
    })
}

/// What both legacy status reads check first: an active server (503 while sealed, which an
/// uninitialised server is), then an initialised one, as OpenBao answers.
fn legacy_ready(state: &AppState) -> Result<(), ApiError> {
    state.core.active()?;
    if !state.core.is_initialized() {
        return Err(ApiError::bad_request("server is not yet initialized"));
    }
    Ok(())
}

/// The legacy status read (an uninitialised server is sealed: 503 first, as OpenBao answers).
async fn legacy_read(
    state: &AppState,
    api: RekeyApi,
    target: RekeyTarget,
) -> Result<Response, ApiError> {
    legacy_ready(state)?;
    let status = state
        .core
        .rekey_status(api, target)
        .await
        .map_err(|e| word_for(e, api, Endpoint::Init, target))?;
    Ok(json_response(StatusCode::OK, &legacy_status(&status)))
}

async fn legacy_verify_read(
    state: &AppState,
    api: RekeyApi,
    target: RekeyTarget,
) -> Result<Response, ApiError> {
    legacy_ready(state)?;
    let status = state
        .core
        .rekey_verify_status(api, target)
        .await
        .map_err(|e| word_for(e, api, Endpoint::Verify, target))?;
    Ok(json_response(
        StatusCode::OK,
        &legacy_verify_status(&status),
    ))
}

fn legacy_key(body: KeyBody) -> Result<(SecretBytes, String), ApiError> {
    let key = body
        .key
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::bad_request("'key' must be specified in request body as JSON"))?;
    Ok((decode_share(key.expose())?, body.nonce.unwrap_or_default()))
}

/// OpenBao audits these endpoints through its logical request builder, which checks a PATCH's
/// content type before the handler sees it.
pub fn legacy_patch_check(request: &ApiRequest) -> Result<(), ApiError> {
    if request.operation != Operation::Patch {
        return Ok(());
    }
    let ct = request.content_type.as_deref().unwrap_or_default();
    let media = ct.split(';').next().unwrap_or_default().trim();
    if media.is_empty() {
        return Err(ApiError::bad_request("mime: no media type"));
    }
    if !media.eq_ignore_ascii_case("application/merge-patch+json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("PATCH requires Content-Type of application/merge-patch+json, provided {ct}"),
        ));
    }
    Ok(())
}

/// `sys/rekey/init` and `sys/rekey-recovery-key/init`.
pub async fn legacy_init(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let api = RekeyApi::Legacy;
    let target = legacy_target(&request.path);
    match request.operation {
        Operation::Read => legacy_read(state, api, target).await,
        Operation::Update => {
            let body: InitBody = request.json_go()?;
            let pgp_keys = body.pgp_keys.unwrap_or_default();
            if body.backup && pgp_keys.is_empty() {
                return Err(ApiError::bad_request(
                    "cannot request a backup of the new keys without providing PGP keys for \
                     encryption",
                ));
            }
            if !pgp_keys.is_empty() && pgp_keys.len() as i64 != body.secret_shares {
                return Err(ApiError::bad_request(
                    "incorrect number of PGP keys for rekey",
                ));
            }
            let start = RekeyRequest {
                secret_shares: body.secret_shares,
                secret_threshold: body.secret_threshold,
                pgp_keys,
                backup: body.backup,
                require_verification: body.require_verification,
            };
            state
                .core
                .rekey_start(api, target, &start)
                .await
                .map_err(|e| word_for(e, api, Endpoint::Init, target))?;
            legacy_read(state, api, target).await
        }
        Operation::Delete => {
            state
                .core
                .rekey_cancel(api, target)
                .await
                .map_err(|e| word_for(e, api, Endpoint::Init, target))?;
            Ok(no_content())
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// `sys/rekey/update` and `sys/rekey-recovery-key/update`: OpenBao's handler serves every
/// method.
pub async fn legacy_update(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let api = RekeyApi::Legacy;
    let target = legacy_target(&request.path);
    let (key, nonce) = legacy_key(request.json_go()?)?;
    match state
        .core
        .rekey_update(api, target, key, &nonce)
        .await
        .map_err(|e| word_for(e, api, Endpoint::Update, target))?
    {
        RekeyUpdate::Progress(_) => legacy_read(state, api, target).await,
        RekeyUpdate::Complete(result) => {
            let (keys, keys_base64) = encode_keys(&result);
            let mut body = json!({
                "nonce": nonce,
                "complete": true,
                "keys": keys,
                "keys_base64": keys_base64,
                "pgp_fingerprints": null,
                "backup": result.backup,
                "verification_required": result.verification_required,
            });
            if !result.verification_nonce.is_empty()
                && let Some(obj) = body.as_object_mut()
            {
                obj.insert(
                    "verification_nonce".into(),
                    result.verification_nonce.clone().into(),
                );
            }
            Ok(json_response(StatusCode::OK, &body))
        }
    }
}

/// `sys/rekey/verify` and `sys/rekey-recovery-key/verify`.
pub async fn legacy_verify(state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    let api = RekeyApi::Legacy;
    let target = legacy_target(&request.path);
    match request.operation {
        Operation::Read => legacy_verify_read(state, api, target).await,
        Operation::Delete => {
            state
                .core
                .rekey_verify_restart(api, target)
                .await
                .map_err(|e| word_for(e, api, Endpoint::Verify, target))?;
            legacy_verify_read(state, api, target).await
        }
        Operation::Update => {
            let (key, nonce) = legacy_key(request.json_go()?)?;
            match state
                .core
                .rekey_verify(api, target, key, &nonce)
                .await
                .map_err(|e| word_for(e, api, Endpoint::Verify, target))?
            {
                VerifyUpdate::Progress(_) => legacy_verify_read(state, api, target).await,
                VerifyUpdate::Complete { nonce } => Ok(json_response(
                    StatusCode::OK,
                    &json!({"nonce": nonce, "complete": true}),
                )),
            }
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}
