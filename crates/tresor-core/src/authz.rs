//! Authentication and authorisation of every request, `sys/` included.
//!
//! Order (Vault's): resolve the token (403 when missing, unknown or expired), compile or fetch
//! the ACL for its policies, check the path and capability (and parameters for writes), require
//! `sudo` on root-protected paths, then count one use of a limited-use token.

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{Map, Value};
use tresor_sdk::auth::cidrs_allow;
use tresor_sdk::engine::Operation;

use crate::core::{Active, Core};
use crate::error::{CoreError, CoreResult};
use crate::mount::MountKind;
use crate::policy::{Acl, AclRequest};
use crate::token::{Resolved, TokenEntry};

/// An authenticated, authorised caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub resolved: Resolved,
    pub acl: Arc<Acl>,
    /// The caller holds `sudo` on the path it called (or is root).
    pub sudo: bool,
}

impl Caller {
    pub fn is_root(&self) -> bool {
        self.resolved.entry.is_root()
    }
}

/// Paths that need `sudo` (Vault's root-protected paths), as glob prefixes or exact paths.
const SUDO_PATHS: &[&str] = &[
    "sys/auth/*",
    "sys/remount",
    "sys/audit",
    "sys/audit/*",
    "sys/raw",
    "sys/raw/*",
    "sys/rotate",
    "sys/seal",
    "sys/step-down",
    "sys/config/cors",
    "sys/config/auditing/*",
    "sys/plugins/catalog/*",
    "sys/revoke-prefix/*",
    "sys/revoke-force/*",
    "sys/leases/revoke-prefix/*",
    "sys/leases/revoke-force/*",
    "sys/leases/lookup/*",
    "auth/token/revoke-orphan",
    "auth/token/revoke-orphan/*",
    "auth/token/accessors",
    "auth/token/accessors/*",
];

pub(crate) fn needs_sudo(path: &str) -> bool {
    SUDO_PATHS.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => path == *p || path.strip_suffix('/') == Some(p),
    })
}

impl Core {
    /// Resolves a token, without any ACL check. A token bound to CIDR blocks (a role's
    /// `token_bound_cidrs`) only resolves for a client inside them.
    pub async fn resolve_token(
        &self,
        active: &Active,
        token: Option<&str>,
        remote: Option<IpAddr>,
    ) -> CoreResult<Resolved> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(CoreError::PermissionDenied);
        };
        let resolved = self
            .live_token(active, token)
            .await?
            .ok_or(CoreError::PermissionDenied)?;
        if !cidrs_allow(&resolved.entry.bound_cidrs, remote) {
            let from = remote.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
            tracing::info!(accessor = %resolved.entry.accessor, client = %from, "token used outside its bound CIDRs");
            return Err(CoreError::Denied {
                status: 403,
                message: format!(
                    "permission denied: the token is bound to CIDR blocks [{}] and this request came from {from}",
                    resolved.entry.bound_cidrs.join(", ")
                ),
            });
        }
        Ok(resolved)
    }

    /// A token that exists and may still act, whether it is presented or named in a request
    /// body. A stored login token is revoked when its auth mount is disabled; a batch token
    /// cannot be, so it counts as gone once that mount is.
    pub(crate) async fn live_token(
        &self,
        active: &Active,
        token: &str,
    ) -> CoreResult<Option<Resolved>> {
        let Some(resolved) = active.tokens.lookup(token).await? else {
            return Ok(None);
        };
        if resolved.entry.batch
            && let Some(login) = &resolved.entry.login
            && active
                .mounts
                .table(MountKind::Auth)
                .by_accessor(&login.mount_accessor)
                .is_none()
        {
            return Ok(None);
        }
        Ok(Some(resolved))
    }

    /// Checks that `resolved` may perform `operation` on `path` (with `params` for writes).
    /// `wrap_ttl` is the response-wrapping TTL the request asked for (seconds), which rules
    /// with `min_wrapping_ttl`/`max_wrapping_ttl` check.
    pub async fn authorize_resolved(
        &self,
        active: &Active,
        resolved: Resolved,
        path: &str,
        operation: Operation,
        params: Option<&Map<String, Value>>,
        wrap_ttl: Option<u64>,
    ) -> CoreResult<Caller> {
        let acl = self.token_acl(active, &resolved.entry).await?;
        let decision = acl.check_wrapped(
            &AclRequest {
                path,
                capability: operation.capability(),
                params,
            },
            wrap_ttl.map(std::time::Duration::from_secs),
        );
        if !decision.allowed || (needs_sudo(path) && !decision.sudo && !decision.is_root) {
            // A refused request is audited too, with its error; if that fails the refusal
            // becomes the audit failure.
            self.audit_request(
                active,
                Some(&resolved.entry),
                Some(false),
                path,
                operation,
                params,
                Some("permission denied"),
            )
            .await?;
            // A refused request still spends a use of a limited-use token, as in OpenBao.
            self.spend_use(active, &resolved).await?;
            let reason = denial_reason(&acl, &decision, path, operation, &resolved.entry);
            tracing::info!(accessor = %resolved.entry.accessor, path = %path, reason = %reason, "request denied by policy");
            if !self.verbose_denials_for(active, path) {
                return Err(CoreError::Forbidden);
            }
            return Err(CoreError::ForbiddenBecause(reason));
        }
        let sudo = decision.sudo || decision.is_root;
        // The audit hook: the request line is written before any handler runs (fail closed).
        self.audit_request(
            active,
            Some(&resolved.entry),
            Some(true),
            path,
            operation,
            params,
            None,
        )
        .await?;
        let entry = self.spend_use(active, &resolved).await?;
        let resolved = Resolved {
            id_hash: resolved.id_hash,
            entry,
        };
        Ok(Caller {
            resolved,
            acl,
            sudo,
        })
    }

    /// The ACL a token acts under: its own policies, plus (for a token with an identity
    /// entity) the entity's and its groups' policies, with templated rules rendered for the
    /// entity. A disabled entity's tokens are refused.
    pub async fn token_acl(&self, active: &Active, entry: &TokenEntry) -> CoreResult<Arc<Acl>> {
        let Some(entity_id) = &entry.entity_id else {
            return active.policies.acl(&entry.policies).await;
        };
        let Some(ctx) = active.identity.context(entity_id)? else {
            return active.policies.acl(&entry.policies).await;
        };
        if ctx.entity.disabled {
            return Err(CoreError::Denied {
                status: 403,
                message: format!(
                    "permission denied: the token's identity entity {:?} is disabled",
                    ctx.entity.name
                ),
            });
        }
        let mut names = entry.policies.clone();
        names.extend(ctx.policies.iter().cloned());
        names.sort();
        names.dedup();
        active
            .policies
            .acl_for_identity(&names, &ctx, active.identity.generation())
            .await
    }

    /// Whether a policy denial on `path` may be explained to the caller: yes unless the mount
    /// the path belongs to has `verbose_denials` set to false.
    fn verbose_denials_for(&self, active: &Active, path: &str) -> bool {
        let (kind, rest) = match path.strip_prefix("auth/") {
            Some(rest) => (crate::mount::MountKind::Auth, rest),
            None => (crate::mount::MountKind::Secret, path),
        };
        active
            .mounts
            .table(kind)
            .route(rest)
            .is_none_or(|(mounted, _)| crate::login::verbose_denials(&mounted.info))
    }

    /// Spends one use of a limited-use token; the last use revokes it (with its leases) at once:
    /// this request goes through, the next is refused.
    async fn spend_use(&self, active: &Active, resolved: &Resolved) -> CoreResult<Arc<TokenEntry>> {
        let (entry, exhausted) = active.tokens.consume_use(resolved).await?;
        if exhausted {
            self.revoke(active, &resolved.id_hash).await?;
        }
        Ok(entry)
    }

    /// Authenticates and authorises in one step (for `sys/*` handlers).
    pub async fn authorize(
        &self,
        token: Option<&str>,
        remote: Option<IpAddr>,
        path: &str,
        operation: Operation,
        params: Option<&Map<String, Value>>,
    ) -> CoreResult<Caller> {
        let active = self.active()?;
        let resolved = self.resolve_token(&active, token, remote).await?;
        self.authorize_resolved(&active, resolved, path, operation, params, None)
            .await
    }
}

/// Why the ACL refused: the operation, the path, what the policies do grant there and the
/// token's policy names (names only: never a rule's parameters or any value).
fn denial_reason(
    acl: &Acl,
    decision: &crate::policy::Decision,
    path: &str,
    operation: Operation,
    entry: &TokenEntry,
) -> String {
    use crate::policy::DenyReason as R;
    let capability = operation.capability();
    let policies = entry.policies.join(", ");
    let what = match &decision.reason {
        None => format!("'{path}' requires 'sudo', which no policy of the token grants"),
        Some(R::ExplicitDeny) => format!("a policy of the token denies '{path}'"),
        Some(R::MissingCapability) => {
            let granted = acl.capabilities(path).join(", ");
            format!("no policy grants '{capability}' on '{path}' (granted there: [{granted}])")
        }
        Some(R::NoMatchingRule) => format!("no policy grants '{capability}' on '{path}'"),
        Some(R::MissingRequiredParameter(p)) => {
            format!("parameter '{p}' is required on '{path}' by a policy of the token")
        }
        Some(R::DeniedParameter(p)) => {
            format!("parameter '{p}' or its value is denied on '{path}' by a policy of the token")
        }
        Some(R::ParameterNotAllowed(p)) => {
            format!(
                "parameter '{p}' or its value is not allowed on '{path}' by the token's policies"
            )
        }
        Some(R::WrappingTtl) => format!(
            "a policy of the token requires '{path}' to be response-wrapped within its min_wrapping_ttl/max_wrapping_ttl (X-Vault-Wrap-TTL)"
        ),
        Some(other) => format!("{other} ('{capability}' on '{path}')"),
    };
    format!("{what}; token policies: [{policies}]")
}

/// Whether `acl` grants anything at `path` (what `sys/internal/ui/mounts` filters by).
pub fn reaches(acl: &Acl, path: &str) -> bool {
    acl.is_root() || acl.capabilities(path).iter().any(|c| c != "deny")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_protected_paths_are_recognised() {
        for p in [
            "sys/auth/approle",
            "sys/rotate",
            "sys/seal",
            "auth/token/accessors",
            "auth/token/accessors/",
            "sys/remount",
        ] {
            assert!(needs_sudo(p), "{p}");
        }
        for p in [
            "sys/auth",
            "sys/mounts",
            "sys/mounts/x",
            "auth/token/create",
            "sys/rotatex",
        ] {
            assert!(!needs_sudo(p), "{p}");
        }
    }
}
