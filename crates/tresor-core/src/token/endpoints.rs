//! `auth/token/*`: the token store's HTTP-facing operations, served by the core itself.

use serde_json::{Map, Value, json};
use tresor_sdk::engine::Operation;

use super::create::{CreateContext, create_token, renew_token};
use super::roles::{self, TokenRole};
use super::store::Resolved;
use crate::authz::Caller;
use crate::core::{Active, Core};
use crate::error::{CoreError, CoreResult};
use crate::logical::{LogicalRequest, LogicalResponse};
use crate::mount::{MountKind, delete_prefix};
use crate::params;

/// Batch tokens are not stored, so there is nothing to revoke: they end by expiring (or with
/// their parent, or their auth mount).
fn refuse_batch_revoke(target: &Resolved) -> CoreResult<()> {
    if target.entry.batch {
        return Err(CoreError::InvalidRequest(
            "batch tokens cannot be revoked".to_owned(),
        ));
    }
    Ok(())
}

fn invalid_accessor() -> CoreError {
    CoreError::InvalidRequest("1 error occurred:\n\t* invalid accessor\n\n".to_owned())
}

/// Where the cubbyhole mount keeps its data in the barrier (`logical/<uuid>/`), if there is
/// one: a token's cubbyhole is `<prefix><token hash>/`.
pub(crate) fn cubbyhole_prefix(active: &Active) -> Option<String> {
    active
        .mounts
        .table(MountKind::Secret)
        .all()
        .find(|m| m.entry.engine_type == "cubbyhole")
        .map(|m| m.entry.storage_prefix(MountKind::Secret))
}

impl Core {
    /// Serves `auth/token/*`, then warns about body fields the endpoint does not know, as
    /// OpenBao's framework does ("Endpoint ignored these unrecognized parameters").
    pub(crate) async fn token_endpoint(
        &self,
        active: &Active,
        caller: &Caller,
        request: &LogicalRequest,
        relative: &str,
    ) -> CoreResult<Option<LogicalResponse>> {
        let response = self
            .token_endpoint_inner(active, caller, request, relative)
            .await?;
        let known = known_fields(relative.trim_end_matches('/'));
        let mut ignored: Vec<&str> = match known {
            Some(known) => request
                .data
                .keys()
                .map(String::as_str)
                .filter(|k| !known.contains(k))
                .collect(),
            None => Vec::new(),
        };
        if ignored.is_empty() || !matches!(request.operation, Operation::Update | Operation::Create)
        {
            return Ok(response);
        }
        ignored.sort_unstable();
        let mut response = response.unwrap_or_default();
        response.warnings.push(format!(
            "Endpoint ignored these unrecognized parameters: [{}]",
            ignored.join(" ")
        ));
        Ok(Some(response))
    }

    async fn token_endpoint_inner(
        &self,
        active: &Active,
        caller: &Caller,
        request: &LogicalRequest,
        relative: &str,
    ) -> CoreResult<Option<LogicalResponse>> {
        use Operation::*;
        let op = request.operation;
        let data = &request.data;
        let writes = matches!(op, Update | Create);
        let bare = relative.trim_end_matches('/');
        if op == List && !matches!(bare, "accessors" | "roles") {
            return Err(CoreError::UnsupportedPath);
        }
        match bare {
            "create" | "create-orphan" if writes => {
                self.create_endpoint(active, caller, data, relative == "create-orphan", None)
                    .await
            }
            r if writes && r.starts_with("create/") => {
                let name = r
                    .trim_start_matches("create/")
                    .split('/')
                    .next()
                    .unwrap_or_default();
                let role = roles::read(self.barrier(), name)
                    .await?
                    .ok_or_else(|| CoreError::InvalidRequest(format!("unknown role {name}")))?;
                self.create_endpoint(active, caller, data, false, Some(&role))
                    .await
            }
            "lookup-self" if matches!(op, Read | Update) => {
                let token = request
                    .token
                    .as_ref()
                    .map(|t| t.expose())
                    .unwrap_or_default();
                Ok(Some(LogicalResponse::data(
                    caller.resolved.entry.lookup_data(token),
                )))
            }
            "lookup" if matches!(op, Read | Update) => {
                let token = params::string(data, "token")?.unwrap_or_default();
                if token.is_empty() {
                    // No token named: OpenBao looks up the caller.
                    let own = request
                        .token
                        .as_ref()
                        .map(|t| t.expose())
                        .unwrap_or_default();
                    return Ok(Some(LogicalResponse::data(
                        caller.resolved.entry.lookup_data(own),
                    )));
                }
                let found = self
                    .live_token(active, &token)
                    .await?
                    .ok_or_else(bad_token)?;
                Ok(Some(LogicalResponse::data(found.entry.lookup_data(&token))))
            }
            "lookup-accessor" if writes => {
                let found = self.by_accessor(active, data).await?;
                Ok(Some(LogicalResponse::data(found.entry.lookup_data(""))))
            }
            "renew-self" if writes => {
                let token = request
                    .token
                    .as_ref()
                    .map(|t| t.expose().to_owned())
                    .unwrap_or_default();
                self.renew_endpoint(active, &caller.resolved, &token, data)
                    .await
            }
            "renew" if writes => {
                let token = params::string(data, "token")?.unwrap_or_default();
                if token.is_empty() {
                    return Err(missing_token_id());
                }
                let found = self
                    .live_token(active, &token)
                    .await?
                    .ok_or_else(|| CoreError::InvalidRequest("token not found".to_owned()))?;
                self.renew_endpoint(active, &found, &token, data).await
            }
            "renew-accessor" if writes => {
                let found = self.by_accessor(active, data).await?;
                if !found.entry.renewable {
                    // OpenBao's wording through the accessor path.
                    return Err(CoreError::InvalidRequest(
                        "1 error occurred:\n\t* invalid request\n\n".to_owned(),
                    ));
                }
                self.renew_endpoint(active, &found, "", data).await
            }
            "revoke-self" if writes => {
                refuse_batch_revoke(&caller.resolved)?;
                self.revoke(active, &caller.resolved.id_hash).await?;
                Ok(None)
            }
            "revoke" if writes => {
                let token = params::string(data, "token")?.unwrap_or_default();
                if token.is_empty() {
                    return Err(missing_token_id());
                }
                if let Some(found) = self.live_token(active, &token).await? {
                    refuse_batch_revoke(&found)?;
                    self.revoke(active, &found.id_hash).await?;
                }
                Ok(None)
            }
            "revoke-accessor" if writes => {
                let accessor = params::string(data, "accessor")?.unwrap_or_default();
                if accessor.is_empty() {
                    return Err(missing_accessor());
                }
                match active.tokens.lookup_accessor(&accessor).await? {
                    Some(found) => {
                        self.revoke(active, &found.id_hash).await?;
                        Ok(None)
                    }
                    None => Ok(Some(LogicalResponse {
                        warnings: vec!["No token found with this accessor".to_owned()],
                        ..LogicalResponse::default()
                    })),
                }
            }
            "revoke-orphan" if writes => {
                let token = params::string(data, "token")?.unwrap_or_default();
                if token.is_empty() {
                    return Err(missing_token_id());
                }
                if let Some(found) = self.live_token(active, &token).await? {
                    refuse_batch_revoke(&found)?;
                    active.tokens.revoke_orphan(&found.id_hash).await?;
                    self.revoke_token_leases(active, &found.id_hash).await?;
                    self.drop_token_data(active, &[found.id_hash]).await?;
                }
                Ok(None)
            }
            "accessors" if op == List => {
                let keys = active.tokens.accessors().await?;
                Ok(Some(LogicalResponse::data(keys_map(keys))))
            }
            "roles" if op == List => {
                let keys = roles::list(self.barrier()).await?;
                if keys.is_empty() {
                    return Err(CoreError::NotFound);
                }
                Ok(Some(LogicalResponse::data(keys_map(keys))))
            }
            r if r.starts_with("roles/") => {
                self.role_endpoint(op, r.trim_start_matches("roles/"), data)
                    .await
            }
            "create" | "create-orphan" | "lookup-self" | "lookup" | "lookup-accessor"
            | "renew-self" | "renew" | "renew-accessor" | "revoke-self" | "revoke"
            | "revoke-accessor" | "revoke-orphan" | "accessors" | "roles" => {
                Err(CoreError::UnsupportedOperation)
            }
            _ => Err(CoreError::UnsupportedPath),
        }
    }

    async fn create_endpoint(
        &self,
        active: &Active,
        caller: &Caller,
        data: &Map<String, Value>,
        orphan_path: bool,
        role: Option<&TokenRole>,
    ) -> CoreResult<Option<LogicalResponse>> {
        if caller.resolved.entry.batch {
            return Err(CoreError::InvalidRequest(
                "batch tokens cannot create more tokens".to_owned(),
            ));
        }
        let (mount_default_ttl, mount_max_ttl) = active
            .mounts
            .table(MountKind::Auth)
            .get("token/")
            .map_or((0, 0), |m| {
                (
                    m.entry.config.default_lease_ttl,
                    m.entry.config.max_lease_ttl,
                )
            });
        let ctx = CreateContext {
            parent: &caller.resolved,
            privileged: caller.sudo,
            orphan_path,
            role,
            mount_default_ttl,
            mount_max_ttl,
        };
        let created = create_token(&active.tokens, ctx, data).await?;
        let mut warnings = created.warnings.clone();
        for p in &created.resolved.entry.policies {
            if !active.policies.exists(p).await? {
                warnings.push(format!("Policy {p:?} does not exist"));
            }
        }
        Ok(Some(LogicalResponse {
            auth: Some(
                created
                    .resolved
                    .entry
                    .auth_block(created.token.expose(), created.lease_duration),
            ),
            warnings,
            ..LogicalResponse::default()
        }))
    }

    async fn renew_endpoint(
        &self,
        active: &Active,
        target: &Resolved,
        token: &str,
        data: &Map<String, Value>,
    ) -> CoreResult<Option<LogicalResponse>> {
        if target.entry.batch {
            return Err(CoreError::InvalidRequest(
                "batch tokens cannot be renewed".to_owned(),
            ));
        }
        let increment = params::duration_secs(data, "increment")?;
        let limits = self.login_renewal_limits(active, &target.entry).await?;
        let (entry, ttl, warning) = renew_token(&active.tokens, target, increment, limits).await?;
        Ok(Some(LogicalResponse {
            auth: Some(entry.auth_block(token, ttl)),
            warnings: warning.into_iter().collect(),
            ..LogicalResponse::default()
        }))
    }

    async fn by_accessor(
        &self,
        active: &Active,
        data: &Map<String, Value>,
    ) -> CoreResult<Resolved> {
        let accessor = params::string(data, "accessor")?.unwrap_or_default();
        if accessor.is_empty() {
            return Err(missing_accessor());
        }
        active
            .tokens
            .lookup_accessor(&accessor)
            .await?
            .ok_or_else(invalid_accessor)
    }

    /// Revokes a token and its non-orphan descendants, their secret leases (a lease never
    /// outlives its token: one whose engine fails stays pending and is retried), and drops
    /// their per-token data.
    pub(crate) async fn revoke(&self, active: &Active, id_hash: &str) -> CoreResult<()> {
        let revoked = active.tokens.revoke_tree(id_hash).await?;
        for hash in &revoked {
            self.revoke_token_leases(active, hash).await?;
        }
        self.drop_token_data(active, &revoked).await
    }

    /// Deletes the cubbyholes of revoked tokens: they are private to the token and die with it.
    pub(crate) async fn drop_token_data(
        &self,
        active: &Active,
        id_hashes: &[String],
    ) -> CoreResult<()> {
        let Some(prefix) = cubbyhole_prefix(active) else {
            return Ok(());
        };
        for hash in id_hashes {
            delete_prefix(self.barrier(), &format!("{prefix}{hash}/")).await?;
        }
        Ok(())
    }

    async fn role_endpoint(
        &self,
        op: Operation,
        name: &str,
        data: &Map<String, Value>,
    ) -> CoreResult<Option<LogicalResponse>> {
        if name.is_empty() || name.contains('/') {
            return Err(CoreError::InvalidRequest("invalid role name".to_owned()));
        }
        match op {
            Operation::Read => {
                let role = roles::read(self.barrier(), name)
                    .await?
                    .ok_or(CoreError::NotFound)?;
                Ok(Some(LogicalResponse::data(role.to_data())))
            }
            Operation::Create | Operation::Update => {
                let mut role =
                    roles::read(self.barrier(), name)
                        .await?
                        .unwrap_or_else(|| TokenRole {
                            name: name.to_owned(),
                            renewable: true,
                            ..TokenRole::default()
                        });
                role.apply(data)?;
                roles::write(self.barrier(), &role).await?;
                Ok(None)
            }
            Operation::Delete => {
                roles::delete(self.barrier(), name).await?;
                Ok(None)
            }
            _ => Err(CoreError::UnsupportedOperation),
        }
    }
}

/// The body fields each `auth/token/*` endpoint reads; `None`: not checked.
fn known_fields(endpoint: &str) -> Option<&'static [&'static str]> {
    const CREATE: &[&str] = &[
        "id",
        "role_name",
        "policies",
        "meta",
        "no_parent",
        "no_default_policy",
        "renewable",
        "ttl",
        "type",
        "explicit_max_ttl",
        "display_name",
        "num_uses",
        "period",
        "entity_alias",
        "lease",
    ];
    Some(match endpoint {
        "create" | "create-orphan" => CREATE,
        e if e.starts_with("create/") => CREATE,
        "lookup" | "revoke" | "revoke-orphan" => &["token"],
        "lookup-self" | "revoke-self" => &[],
        "lookup-accessor" | "revoke-accessor" => &["accessor"],
        "renew" => &["token", "increment"],
        "renew-self" => &["increment"],
        "renew-accessor" => &["accessor", "increment"],
        _ => return None,
    })
}

fn missing_token_id() -> CoreError {
    CoreError::InvalidRequest("missing token ID".to_owned())
}

fn missing_accessor() -> CoreError {
    CoreError::InvalidRequest("1 error occurred:\n\t* missing accessor\n\n".to_owned())
}

fn bad_token() -> CoreError {
    CoreError::BadToken
}

fn keys_map(keys: Vec<String>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("keys".into(), json!(keys));
    m
}
