//! The AppRole auth method (`sys/auth` type `approle`): machines log in with a role id and a
//! secret id. Follows OpenBao 2.7's API (`api-docs/auth/approle`); deliberate differences are
//! in `docs/auth-approle.md` and the compat suite's DIFFERENCES.md.
//!
//! # Layout
//! - `store`: the storage layout, the mount's HMAC key and the role record.
//! - `schema`: the fields each endpoint declares, converted before it runs.
//! - `cidr`: CIDR parsing, subset and membership checks, with OpenBao's messages.
//! - `role`: `role/` (LIST), `role/:name` CRUD and `role/:name/role-id`.
//! - `role_fields`: the one-field sub-endpoints (`role/:name/token-ttl`, `…/policies`, …).
//! - `secret_id`: secret ids: issue (random or custom), list, look up and destroy by value or
//!   accessor.
//! - `login`: `login` and the renewal check of the tokens it issued.
//! - `tidy`: `tidy/secret-id` and the periodic removal of expired secret ids.

mod cidr;
mod login;
mod role;
mod role_fields;
mod schema;
mod secret_id;
mod store;
mod tidy;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use async_trait::async_trait;
use tokio::sync::OnceCell;
use tresor_sdk::auth::{AuthMethod, AuthMethodFactory, LoginRenewal, RenewDecision};
use tresor_sdk::engine::{
    Denial, EngineError, EngineResult, MountInfo, Operation, Request, Response,
};
use tresor_sdk::locks::KeyLocks;
use tresor_sdk::storage::Storage;

use crate::clock::{Clock, SystemClock};
use crate::common::fields::Wording;
use crate::secrets::transit::valid_name;
use schema::Schema;
use store::Hasher;

/// Builds AppRole mounts. The clock is injectable so tests can let secret ids expire.
#[derive(Debug, Clone)]
pub struct AppRoleFactory {
    clock: Arc<dyn Clock>,
}

impl Default for AppRoleFactory {
    fn default() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }
}

impl AppRoleFactory {
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self { clock }
    }
}

impl AuthMethodFactory for AppRoleFactory {
    fn types(&self) -> &[&'static str] {
        &["approle"]
    }

    fn build(&self, _mount: &MountInfo) -> EngineResult<Arc<dyn AuthMethod>> {
        Ok(Arc::new(AppRole {
            clock: self.clock.clone(),
            hasher: OnceCell::new(),
            role_locks: KeyLocks::default(),
            role_id_locks: KeyLocks::default(),
            secret_locks: KeyLocks::default(),
            tidying: AtomicBool::new(false),
        }))
    }
}

/// One mounted AppRole method. The core drops the instance when the server seals, and its
/// HMAC key with it.
#[derive(Debug)]
pub struct AppRole {
    clock: Arc<dyn Clock>,
    hasher: OnceCell<Hasher>,
    /// Role writes (and secret-id issue, which must not race a role's deletion), by role name.
    role_locks: KeyLocks,
    /// Claiming a role id, so two roles cannot take the same one at once.
    role_id_locks: KeyLocks,
    /// Read-modify-write of one secret id (a login spending a use, destroy, tidy), by its
    /// storage key.
    secret_locks: KeyLocks,
    /// Set while a tidy runs: OpenBao runs one at a time.
    tidying: AtomicBool,
}

impl AppRole {
    async fn hasher(&self, storage: &dyn Storage) -> EngineResult<&Hasher> {
        self.hasher
            .get_or_try_init(|| Hasher::load_or_create(storage))
            .await
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }
}

/// OpenBao answers these caller mistakes with a 500 wrapping a Go error (`1 error occurred:`);
/// nothing failed on the server, so Tresor answers 400 with the same text (DIFFERENCES.md).
pub(super) fn go_error(message: impl std::fmt::Display) -> EngineError {
    EngineError::InvalidRequest(format!("1 error occurred:\n\t* {message}\n\n"))
}

/// An error with a status other than 400 and a message (OpenBao's `role "x" does not exist`
/// 404, `invalid secret id accessor` 403). [`EngineError::Denied`] is the one variant that
/// carries both; the detail is empty, so every caller sees the same text.
pub(super) fn status_error(status: u16, message: impl Into<String>) -> EngineError {
    EngineError::Denied(Denial {
        status,
        summary: message.into(),
        detail: String::new(),
    })
}

fn is_write(op: Operation) -> bool {
    matches!(op, Operation::Create | Operation::Update)
}

/// Checks the operation, then the fields (OpenBao answers an unsupported operation first).
fn accept(
    req: &Request,
    allowed: &[Operation],
    schema: Schema,
    wording: Wording,
) -> EngineResult<()> {
    let op = match req.operation {
        Operation::Create => Operation::Update,
        other => other,
    };
    if !allowed.contains(&op) {
        return Err(EngineError::UnsupportedOperation);
    }
    schema::validate(req, schema, wording)
}

use Operation::{Delete, List, Read, Update};

const SECRET_ID_ACTIONS: [&str; 2] = ["lookup", "destroy"];

#[async_trait]
impl AuthMethod for AppRole {
    fn unauthenticated_paths(&self) -> &'static [&'static str] {
        &["login"]
    }

    async fn resolve_role(
        &self,
        data: &serde_json::Map<String, serde_json::Value>,
        storage: &dyn Storage,
    ) -> EngineResult<Option<String>> {
        login::resolve_role(self, data, storage).await
    }

    async fn handle(&self, req: &Request, storage: &dyn Storage) -> EngineResult<Option<Response>> {
        // Vault reads a DELETE's parameters from the query string only; a body is ignored
        // (`secret-id/destroy` by DELETE needs `?secret_id=`).
        let without_body;
        let req = if req.operation == Delete && !req.data.is_empty() {
            without_body = Request {
                data: serde_json::Map::new(),
                ..req.clone()
            };
            &without_body
        } else {
            req
        };
        let segments: Vec<&str> = req.path.split('/').collect();
        let v = Wording::Validated;
        let (schema, result): (Schema, EngineResult<Option<Response>>) = match segments.as_slice() {
            ["login"] => {
                accept(req, &[Update], schema::LOGIN, v)?;
                (schema::LOGIN, login::login(self, req, storage).await)
            }
            ["tidy", "secret-id"] => {
                accept(req, &[Update], schema::NONE, v)?;
                (schema::NONE, tidy::endpoint(self, storage).await)
            }
            ["role"] | ["role", ""] => {
                accept(req, &[List], schema::PAGE, v)?;
                (schema::PAGE, role::list(req, storage).await)
            }
            ["role", name] if valid_name(name) => {
                let wording = if is_write(req.operation) {
                    Wording::Body
                } else {
                    v
                };
                accept(req, &[Read, Update, Delete], schema::ROLE, wording)?;
                (schema::ROLE, role::handle(self, req, storage, name).await)
            }
            ["role", name, "secret-id"] | ["role", name, "secret-id", ""] if valid_name(name) => {
                accept(req, &[Update, List], schema::SECRET_ID, v)?;
                let result = if req.operation == List {
                    secret_id::list(req, storage, name).await
                } else {
                    secret_id::issue(self, req, storage, name, None).await
                };
                (schema::SECRET_ID, result)
            }
            ["role", name, "custom-secret-id"] if valid_name(name) => {
                accept(req, &[Update], schema::CUSTOM_SECRET_ID, v)?;
                let custom = schema::string(req, "secret_id")?.unwrap_or_default();
                let result = secret_id::issue(self, req, storage, name, Some(custom)).await;
                (schema::CUSTOM_SECRET_ID, result)
            }
            [
                "role",
                name,
                family @ ("secret-id" | "secret-id-accessor"),
                action,
                rest @ ..,
            ] if valid_name(name)
                && SECRET_ID_ACTIONS.contains(action)
                && matches!(rest, [] | [""]) =>
            {
                let by_accessor = *family == "secret-id-accessor";
                let schema = if by_accessor {
                    schema::BY_ACCESSOR
                } else {
                    schema::BY_SECRET_ID
                };
                let lookup = *action == "lookup";
                let ops: &[Operation] = if lookup { &[Update] } else { &[Update, Delete] };
                accept(req, ops, schema, v)?;
                let result = match (by_accessor, lookup) {
                    (false, true) => secret_id::lookup(self, req, storage, name).await,
                    (false, false) => secret_id::destroy(self, req, storage, name).await,
                    (true, true) => secret_id::lookup_accessor(self, req, storage, name).await,
                    (true, false) => secret_id::destroy_accessor(self, req, storage, name).await,
                };
                (schema, result)
            }
            ["role", name, "role-id"] if valid_name(name) => {
                accept(req, &[Read, Update], schema::ROLE_ID, v)?;
                (
                    schema::ROLE_ID,
                    role::role_id(self, req, storage, name).await,
                )
            }
            ["role", name, field] if valid_name(name) => {
                let Some((schema, ops)) = role_fields::declared(field) else {
                    return Err(EngineError::UnsupportedPath);
                };
                accept(req, ops, schema, v)?;
                (
                    schema,
                    role_fields::handle(self, req, storage, name, field).await,
                )
            }
            _ => return Err(EngineError::UnsupportedPath),
        };
        let mut response = result?;
        if let Some(r) = response.as_mut()
            && let Some(warning) = schema::ignored_warning(req, schema)
        {
            r.warnings.push(warning);
        }
        Ok(response)
    }

    async fn exists(&self, req: &Request, storage: &dyn Storage) -> EngineResult<Option<bool>> {
        let segments: Vec<&str> = req.path.split('/').collect();
        match segments.as_slice() {
            ["role", name] if valid_name(name) && is_write(req.operation) => {
                Ok(Some(store::load_role(storage, name).await?.is_some()))
            }
            _ => Ok(None),
        }
    }

    async fn initialize(&self, storage: &dyn Storage) -> EngineResult<()> {
        self.hasher(storage).await.map(drop)
    }

    async fn renew(
        &self,
        login: &LoginRenewal,
        storage: &dyn Storage,
    ) -> EngineResult<RenewDecision> {
        login::renew(login, storage).await
    }

    async fn periodic(&self, storage: &dyn Storage) -> EngineResult<()> {
        tidy::run(self, storage).await.map(drop)
    }
}
