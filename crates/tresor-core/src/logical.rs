//! Requests outside `sys/`: routed through the mount tables to an engine, to the token store
//! for `auth/token/…`, to an auth method for `auth/<mount>/…`, or to the identity store for
//! `identity/…`.

use std::sync::Arc;

use serde_json::{Map, Value};
use tresor_sdk::engine::{MountInfo, Operation, Request};
use tresor_sdk::secret::SecretString;

use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::mount::MountKind;

/// A request for a logical path, as the HTTP layer parsed it. Writes arrive as `Update`; the
/// router makes them `Create` when the engine says the target does not exist yet.
#[derive(Debug, Clone)]
pub struct LogicalRequest {
    pub operation: Operation,
    pub path: String,
    pub data: Map<String, Value>,
    pub query: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub token: Option<SecretString>,
    /// The client's address, for CIDR bindings (token_bound_cidrs, secret_id_bound_cidrs).
    pub remote_addr: Option<std::net::IpAddr>,
    /// `X-Vault-Wrap-TTL` in seconds, for policies that require (or cap) wrapping.
    pub wrap_ttl: Option<u64>,
}

/// What goes into the response envelope.
#[derive(Debug, Clone, Default)]
pub struct LogicalResponse {
    pub data: Option<Map<String, Value>>,
    /// The `auth` block (token creation, renewal, login).
    pub auth: Option<Value>,
    pub warnings: Vec<String>,
    pub lease_id: String,
    pub lease_duration: u64,
    pub renewable: bool,
    /// Answer with this status and the full envelope (KV v2's 404 for deleted versions).
    pub status: Option<u16>,
    /// The mount type, for the envelope's `mount_type`.
    pub mount_type: Option<String>,
}

impl LogicalRequest {
    /// The request as an engine or auth method sees it: the path relative to its `mount`,
    /// the caller named by `client_token_key` (empty on unauthenticated paths). Also hands back
    /// what the ACL check still needs: the full path and the wrap TTL.
    pub(crate) fn into_routed(
        self,
        relative: &str,
        mount: &Arc<MountInfo>,
        client_token_key: String,
        display_name: String,
    ) -> (Request, String, Option<u64>) {
        let routed = Request {
            operation: self.operation,
            path: relative.to_owned(),
            data: self.data,
            query: self.query,
            content_type: self.content_type,
            mount: Arc::clone(mount),
            client_token_key,
            display_name,
            remote_addr: self.remote_addr,
        };
        (routed, self.path, self.wrap_ttl)
    }
}

impl LogicalResponse {
    pub fn data(data: Map<String, Value>) -> Self {
        Self {
            data: Some(data),
            ..Self::default()
        }
    }
}

impl Core {
    /// Authorises the request exactly as it arrived (path, operation, parameters).
    async fn authorize_as_sent(
        &self,
        active: &crate::core::Active,
        resolved: crate::token::Resolved,
        request: &LogicalRequest,
    ) -> CoreResult<crate::authz::Caller> {
        self.authorize_resolved(
            active,
            resolved,
            &request.path,
            request.operation,
            Some(&request.data),
            request.wrap_ttl,
        )
        .await
    }

    /// Serves a logical request. `Ok(None)` is a 204.
    pub async fn handle_logical(
        &self,
        request: LogicalRequest,
    ) -> CoreResult<Option<LogicalResponse>> {
        let active = self.active()?;
        if let Some(rest) = request.path.strip_prefix("auth/") {
            let table = active.mounts.table(MountKind::Auth);
            if let Some((mounted, relative)) = table.route(rest)
                && let Some(method) = mounted.method.clone()
            {
                // Login paths need no token: the method decides who gets one.
                let relative = relative.to_owned();
                return self
                    .auth_method_request(&active, &mounted, &method, &relative, request)
                    .await;
            }
        }
        let resolved = self
            .resolve_token(
                &active,
                request.token.as_ref().map(|t| t.expose()),
                request.remote_addr,
            )
            .await?;

        if let Some(rest) = request.path.strip_prefix("auth/") {
            let table = active.mounts.table(MountKind::Auth);
            let Some((mounted, relative)) = table.route(rest) else {
                self.authorize_as_sent(&active, resolved, &request).await?;
                return Err(CoreError::NoHandler(request.path.clone()));
            };
            if mounted.entry.engine_type == "token" {
                let relative = relative.to_owned();
                let caller = self.authorize_as_sent(&active, resolved, &request).await?;
                return self
                    .token_endpoint(&active, &caller, &request, &relative)
                    .await;
            }
            return Err(CoreError::NoHandler(request.path.clone()));
        }

        let table = active.mounts.table(MountKind::Secret);
        let Some((mounted, relative)) = table.route(&request.path) else {
            self.authorize_as_sent(&active, resolved, &request).await?;
            return Err(CoreError::NoHandler(request.path.clone()));
        };
        if mounted.entry.engine_type == "identity" {
            let relative = relative.to_owned();
            self.authorize_as_sent(&active, resolved, &request).await?;
            return self.identity_endpoint(&active, &request, &relative).await;
        }
        let Some(engine) = mounted.engine.clone() else {
            return Err(CoreError::NoHandler(request.path.clone()));
        };
        if resolved.entry.batch && mounted.entry.engine_type == "cubbyhole" {
            // A cubbyhole is keyed by its token and dies with it; a batch token is never
            // revoked, so it gets none.
            return Err(CoreError::InvalidRequest(
                "cubbyhole operations are only supported by 'service' type tokens".to_owned(),
            ));
        }
        let lease_owner = crate::expiration::LeaseOwner::of(&resolved);
        // `relative` borrows the request's path, which the request is about to hand over.
        let relative = relative.to_owned();
        let (mut sdk_request, full_path, wrap_ttl) = request.into_routed(
            &relative,
            &mounted.info,
            resolved.id_hash.clone(),
            resolved.entry.display_name.clone(),
        );
        if sdk_request.operation == Operation::Update
            && engine.exists(&sdk_request, mounted.view.as_ref()).await? == Some(false)
        {
            sdk_request.operation = Operation::Create;
        }
        self.authorize_resolved(
            &active,
            resolved,
            &full_path,
            sdk_request.operation,
            Some(&sdk_request.data),
            wrap_ttl,
        )
        .await?;
        let Some(r) = engine
            .handle(&sdk_request, mounted.view.as_ref())
            .await
            .map_err(|e| crate::login::mount_error(&mounted.info, &sdk_request.path, e))?
        else {
            return Ok(None);
        };
        let mut response = LogicalResponse {
            data: r.data,
            auth: None,
            warnings: r.warnings,
            lease_id: String::new(),
            lease_duration: r.lease.as_ref().map_or(0, |l| l.ttl.as_secs()),
            renewable: r.lease.as_ref().is_some_and(|l| l.renewable),
            status: r.status_override,
            mount_type: Some(mounted.entry.engine_type.clone()),
        };
        // A managed lease is registered before the secret is handed out: a secret the
        // expiration manager does not know of could never be revoked.
        if let Some(spec) = r.lease.as_ref().filter(|l| l.managed) {
            let registered = match self
                .register_secret_lease(&active, &mounted, &sdk_request.path, &lease_owner, spec)
                .await
            {
                Ok(registered) => registered,
                Err(err) => {
                    // The secret exists but nothing will ever revoke it: undo it now.
                    self.revoke_unregistered(&engine, &mounted, &sdk_request.path, spec)
                        .await;
                    return Err(err);
                }
            };
            response.lease_id = registered.lease_id;
            response.lease_duration = registered.ttl;
            response.warnings.extend(registered.warnings);
        }
        Ok(Some(response))
    }
}
