//! The one-field role endpoints (`role/:name/policies`, `…/token-ttl`, …): read, set or reset
//! one property of a role, so ACL policies can delegate each one. These are the sub-endpoints
//! OpenBao 2.7 serves; it has no `bind-secret-id` endpoint (404), and neither has Tresor.

use serde_json::{Map, Value, json};
use tresor_sdk::duration::format_go;
use tresor_sdk::engine::{EngineError, EngineResult, Operation, Request, Response};
use tresor_sdk::storage::Storage;

use super::role::save;
use super::schema::{self, Schema};
use super::store::{self, Role};
use super::{AppRole, cidr};
use crate::auth::token_fields::normalise_policies;

use Operation::{Delete, Read, Update};

const READ_WRITE_RESET: &[Operation] = &[Read, Update, Delete];

/// The schema and operations of the sub-endpoint `field`, or `None` when there is none.
pub(super) fn declared(field: &str) -> Option<(Schema, &'static [Operation])> {
    Some(match field {
        "local-secret-ids" => (schema::NONE, &[Read]),
        "policies" => (schema::POLICIES, READ_WRITE_RESET),
        "period" => (schema::PERIOD, READ_WRITE_RESET),
        other => (schema::single(field_name(other)?)?, READ_WRITE_RESET),
    })
}

/// The role field a single-field endpoint names.
fn field_name(endpoint: &str) -> Option<&'static str> {
    Some(match endpoint {
        "secret-id-num-uses" => "secret_id_num_uses",
        "secret-id-ttl" => "secret_id_ttl",
        "token-ttl" => "token_ttl",
        "token-max-ttl" => "token_max_ttl",
        "token-num-uses" => "token_num_uses",
        "bound-cidr-list" => "bound_cidr_list",
        "secret-id-bound-cidrs" => "secret_id_bound_cidrs",
        "token-bound-cidrs" => "token_bound_cidrs",
        _ => return None,
    })
}

pub(super) async fn handle(
    m: &AppRole,
    req: &Request,
    storage: &dyn Storage,
    name: &str,
    endpoint: &str,
) -> EngineResult<Option<Response>> {
    if req.operation == Read {
        let Some(role) = store::load_role(storage, name).await? else {
            return Err(EngineError::NotFound);
        };
        return Ok(Some(read(&role, endpoint)));
    }
    let name = name.to_lowercase();
    let _guard = m.role_locks.lock(&name).await;
    let Some(mut role) = store::load_role(storage, &name).await? else {
        return if req.operation == Delete {
            Ok(None)
        } else {
            Err(EngineError::UnsupportedPath)
        };
    };
    if req.operation == Delete {
        reset(&mut role, endpoint);
    } else {
        update(&mut role, req, endpoint)?;
    }
    let role_id = role.role_id.clone();
    save(m, storage, &role, &role_id).await?;
    Ok(None)
}

fn read(role: &Role, endpoint: &str) -> Response {
    let mut data = Map::new();
    let mut warnings = Vec::new();
    let mut put = |k: &str, v: Value| {
        data.insert(k.to_owned(), v);
    };
    match endpoint {
        "local-secret-ids" => put("local_secret_ids", json!(role.local_secret_ids)),
        "policies" => {
            put("token_policies", json!(role.token.policies));
            if !role.policies.is_empty() {
                put("policies", json!(role.policies));
            }
        }
        "period" => {
            put("token_period", json!(role.token.period));
            if role.period > 0 {
                put("period", json!(role.period));
            }
        }
        "secret-id-num-uses" => put("secret_id_num_uses", json!(role.secret_id_num_uses)),
        "secret-id-ttl" => put("secret_id_ttl", json!(role.secret_id_ttl)),
        "token-ttl" => put("token_ttl", json!(role.token.ttl)),
        "token-max-ttl" => put("token_max_ttl", json!(role.token.max_ttl)),
        "token-num-uses" => put("token_num_uses", json!(role.token.num_uses)),
        "bound-cidr-list" => {
            // The deprecated field was folded into secret_id_bound_cidrs long ago; OpenBao
            // still serves it, always empty, with this warning.
            put("bound_cidr_list", Value::Null);
            warnings.push("The \"bound_cidr_list\" field is deprecated and will be removed. Please use \"secret_id_bound_cidrs\" instead.".to_owned());
        }
        "secret-id-bound-cidrs" => put("secret_id_bound_cidrs", json!(role.secret_id_bound_cidrs)),
        "token-bound-cidrs" => {
            let cidrs = &role.token.bound_cidrs;
            put(
                "token_bound_cidrs",
                if cidrs.is_empty() {
                    Value::Null
                } else {
                    json!(cidrs)
                },
            );
        }
        _ => {}
    }
    Response {
        warnings,
        ..Response::with_data(data)
    }
}

/// DELETE: back to the field's default.
fn reset(role: &mut Role, endpoint: &str) {
    match endpoint {
        "policies" => {
            role.token.policies.clear();
            role.policies.clear();
        }
        "period" => {
            role.token.period = 0;
            role.period = 0;
        }
        "secret-id-num-uses" => role.secret_id_num_uses = 0,
        "secret-id-ttl" => role.secret_id_ttl = 0,
        "token-ttl" => role.token.ttl = 0,
        "token-max-ttl" => role.token.max_ttl = 0,
        "token-num-uses" => role.token.num_uses = 0,
        "secret-id-bound-cidrs" => role.secret_id_bound_cidrs = None,
        "token-bound-cidrs" => role.token.bound_cidrs.clear(),
        // `bound-cidr-list` resets the deprecated field, which is always empty.
        _ => {}
    }
}

fn missing(field: &str) -> EngineError {
    EngineError::InvalidRequest(format!("missing {field}"))
}

fn invalid(message: &str) -> EngineError {
    EngineError::InvalidRequest(message.to_owned())
}

fn update(role: &mut Role, req: &Request, endpoint: &str) -> EngineResult<()> {
    match endpoint {
        "policies" => {
            if let Some(p) = schema::list(req, "token_policies")? {
                role.token.policies = normalise_policies(p);
                role.policies = if schema::present(req, "policies") {
                    role.token.policies.clone()
                } else {
                    Vec::new()
                };
            } else if let Some(p) = schema::list(req, "policies")? {
                role.token.policies = normalise_policies(p);
                role.policies = role.token.policies.clone();
            } else {
                return Err(missing("token_policies"));
            }
        }
        "period" => {
            if let Some(p) = schema::secs(req, "token_period")? {
                role.token.period = p;
                role.period = if schema::present(req, "period") { p } else { 0 };
            } else if let Some(p) = schema::secs(req, "period")? {
                role.token.period = p;
                role.period = p;
            } else {
                return Err(missing("period"));
            }
            let max = req.mount.max_lease_ttl.as_secs();
            if role.token.period > max {
                return Err(EngineError::InvalidRequest(format!(
                    "period of {:?} is greater than the backend's maximum lease TTL of {:?}",
                    format_go(role.token.period),
                    format_go(max)
                )));
            }
        }
        "secret-id-num-uses" => {
            let n = schema::int(req, "secret_id_num_uses")?
                .ok_or_else(|| missing("secret_id_num_uses"))?;
            if n < 0 {
                return Err(invalid("secret_id_num_uses cannot be negative"));
            }
            role.secret_id_num_uses = n;
        }
        "secret-id-ttl" => {
            role.secret_id_ttl =
                schema::secs(req, "secret_id_ttl")?.ok_or_else(|| missing("secret_id_ttl"))?;
        }
        "token-ttl" => {
            role.token.ttl = schema::secs(req, "token_ttl")?.ok_or_else(|| missing("token_ttl"))?;
            if role.token.max_ttl > 0 && role.token.ttl > role.token.max_ttl {
                return Err(invalid(
                    "token_ttl should not be greater than token_max_ttl",
                ));
            }
        }
        "token-max-ttl" => {
            role.token.max_ttl =
                schema::secs(req, "token_max_ttl")?.ok_or_else(|| missing("token_max_ttl"))?;
            if role.token.max_ttl > 0 && role.token.ttl > role.token.max_ttl {
                return Err(invalid(
                    "token_max_ttl should be greater than or equal to token_ttl",
                ));
            }
        }
        "token-num-uses" => {
            let n = schema::int(req, "token_num_uses")?.ok_or_else(|| missing("token_num_uses"))?;
            // OpenBao stores a negative count here (and issues tokens with it); the role
            // endpoint and tokenutil refuse one, and so does Tresor (DIFFERENCES.md).
            role.token.num_uses =
                u64::try_from(n).map_err(|_| invalid("'token_num_uses' cannot be negative"))?;
        }
        "bound-cidr-list" | "secret-id-bound-cidrs" => {
            let field = field_name(endpoint).unwrap_or_default();
            if let Some(list) = schema::list(req, field)? {
                if list.is_empty() {
                    return Err(missing("bound_cidr_list"));
                }
                cidr::validate_blocks(&list).map_err(|e| {
                    EngineError::InvalidRequest(format!("failed to validate CIDR blocks: {e}"))
                })?;
                role.secret_id_bound_cidrs = Some(list);
            }
        }
        "token-bound-cidrs" => {
            if let Some(list) = schema::list(req, "token_bound_cidrs")? {
                cidr::parse_addrs(&list).map_err(|e| {
                    EngineError::InvalidRequest(format!("failed to parse token_bound_cidrs: {e}"))
                })?;
                role.token.bound_cidrs = cidr::sockaddr_form(&list);
            }
        }
        _ => return Err(EngineError::UnsupportedPath),
    }
    Ok(())
}
