//! `sys/leases/*` (and the older `sys/renew`, `sys/revoke`, `sys/revoke-prefix`,
//! `sys/revoke-force` forms): lookup, list, renew, revoke, revoke by prefix, tidy.
//!
//! The core's expiration manager does the work; this module reads the parameters (the body's
//! `lease_id` wins over one in the URL, as in Vault) and shapes the answers: 204 for a
//! revocation, 202 when `sync: false` hands it to the background.

use axum::response::Response;
use http::StatusCode;
use serde_json::{Map, Value, json};
use tresor_core::expiration::RevokeOutcome;
use tresor_core::logical::LogicalResponse;
use tresor_core::params;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{ApiRequest, Operation};
use crate::response::{head_only, logical_response, no_content};
use crate::sys::allow_logical;

/// Which lease endpoint a `sys/` path names, with the lease id or prefix from the URL.
#[derive(Debug, PartialEq, Eq)]
pub enum Endpoint<'p> {
    /// `sys/leases` itself: a bare 404 on read, as OpenBao answers.
    Root,
    Lookup,
    List(&'p str),
    Renew(&'p str),
    Revoke(&'p str),
    RevokePrefix {
        prefix: &'p str,
        force: bool,
    },
    Tidy,
}

/// Recognises the lease endpoints; `None` for any other path.
pub fn endpoint(path: &str) -> Option<Endpoint<'_>> {
    let rest = path.strip_prefix("sys/")?;
    let (leases, rest) = match rest.strip_prefix("leases/") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let tail = |name: &str| -> Option<&str> {
        if rest == name {
            Some("")
        } else {
            rest.strip_prefix(name)?.strip_prefix('/')
        }
    };
    if rest == "leases" {
        return Some(Endpoint::Root);
    }
    if leases && rest == "lookup" {
        return Some(Endpoint::Lookup);
    }
    if leases && let Some(prefix) = rest.strip_prefix("lookup/") {
        return Some(Endpoint::List(prefix));
    }
    if leases && rest == "tidy" {
        return Some(Endpoint::Tidy);
    }
    if let Some(id) = tail("renew") {
        return Some(Endpoint::Renew(id));
    }
    if let Some(id) = tail("revoke") {
        return Some(Endpoint::Revoke(id));
    }
    if let Some(prefix) = rest.strip_prefix("revoke-prefix/") {
        return Some(Endpoint::RevokePrefix {
            prefix,
            force: false,
        });
    }
    if let Some(prefix) = rest.strip_prefix("revoke-force/") {
        return Some(Endpoint::RevokePrefix {
            prefix,
            force: true,
        });
    }
    None
}

/// The lease id from the body, else from the URL.
fn lease_id(data: &Map<String, Value>, from_url: &str) -> Result<String, ApiError> {
    let body = params::string(data, "lease_id")?.unwrap_or_default();
    Ok(if body.is_empty() {
        from_url.to_owned()
    } else {
        body
    })
}

fn sync(data: &Map<String, Value>) -> Result<bool, ApiError> {
    Ok(params::boolean(data, "sync")?.unwrap_or(true))
}

pub async fn handle(
    state: &AppState,
    request: &ApiRequest,
    endpoint: Endpoint<'_>,
    data: &Map<String, Value>,
) -> Result<Response, ApiError> {
    match endpoint {
        Endpoint::Root if request.operation == Operation::Read => {
            Err(ApiError::bare(StatusCode::NOT_FOUND))
        }
        Endpoint::Root => Err(ApiError::unsupported_path()),
        Endpoint::Lookup => {
            allow_logical(request, &[Operation::Update])?;
            let id = lease_id(data, "")?;
            let found = state.core.lease_lookup(&id).await?;
            Ok(logical_response(
                LogicalResponse::data(found),
                &request.path,
            ))
        }
        Endpoint::List(prefix) => {
            allow_logical(request, &[Operation::List])?;
            let keys = state.core.lease_list(prefix).await?;
            let mut out = Map::new();
            out.insert("keys".into(), json!(keys));
            Ok(logical_response(LogicalResponse::data(out), &request.path))
        }
        Endpoint::Renew(from_url) => {
            allow_logical(request, &[Operation::Update])?;
            let id = lease_id(data, from_url)?;
            let increment = params::duration_secs(data, "increment")?;
            let renewed = state.core.lease_renew(&id, increment).await?;
            Ok(logical_response(renewed, &request.path))
        }
        Endpoint::Revoke(from_url) => {
            allow_logical(request, &[Operation::Update])?;
            let id = lease_id(data, from_url)?;
            let sync = sync(data)?;
            match state.core.lease_revoke(&id, sync).await? {
                RevokeOutcome::Revoked => Ok(no_content()),
                RevokeOutcome::Queued => Ok(head_only(StatusCode::ACCEPTED)),
            }
        }
        Endpoint::RevokePrefix { prefix, force } => {
            allow_logical(request, &[Operation::Update])?;
            if sync(data)? {
                state.core.lease_revoke_prefix(prefix, force).await?;
                Ok(no_content())
            } else {
                state.core.lease_revoke_prefix_background(prefix, force)?;
                Ok(head_only(StatusCode::ACCEPTED))
            }
        }
        Endpoint::Tidy => {
            allow_logical(request, &[Operation::Update])?;
            state.core.lease_tidy()?;
            let response = LogicalResponse {
                warnings: vec![
                    "Tidy operation successfully started. Any information from the operation \
                     will be printed to Tresor's server logs."
                        .to_owned(),
                ],
                status: Some(202),
                ..LogicalResponse::default()
            };
            Ok(logical_response(response, &request.path))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_every_lease_path_and_the_older_forms() {
        let cases = [
            ("sys/leases/lookup", Some(Endpoint::Lookup)),
            ("sys/leases/lookup/", Some(Endpoint::List(""))),
            (
                "sys/leases/lookup/auth/token/",
                Some(Endpoint::List("auth/token/")),
            ),
            ("sys/leases/renew", Some(Endpoint::Renew(""))),
            ("sys/leases/renew/a/b", Some(Endpoint::Renew("a/b"))),
            ("sys/renew", Some(Endpoint::Renew(""))),
            ("sys/renew/a/b", Some(Endpoint::Renew("a/b"))),
            ("sys/leases/revoke", Some(Endpoint::Revoke(""))),
            ("sys/revoke/x", Some(Endpoint::Revoke("x"))),
            (
                "sys/leases/revoke-prefix/auth/token",
                Some(Endpoint::RevokePrefix {
                    prefix: "auth/token",
                    force: false,
                }),
            ),
            (
                "sys/revoke-force/a",
                Some(Endpoint::RevokePrefix {
                    prefix: "a",
                    force: true,
                }),
            ),
            ("sys/leases/tidy", Some(Endpoint::Tidy)),
            ("sys/tidy", None),
            ("sys/renewal", None),
            ("sys/revoked", None),
            ("sys/leases", Some(Endpoint::Root)),
            ("sys/leasesx", None),
            ("sys/mounts", None),
        ];
        for (path, expected) in cases {
            assert_eq!(endpoint(path), expected, "{path}");
        }
    }
}
