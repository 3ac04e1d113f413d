//! Requests to auth methods (`auth/<mount>/…` other than `auth/token/`): configuration and
//! roles go through the ACL like any request; login paths are unauthenticated. A successful
//! login is a [`Login`] from the method, and the core, never the method, turns it into a token
//! with its lease (the lease id is `auth/<mount>/<login path>/<token hash>`, so disabling the
//! mount revokes every token it issued).
//!
//! Refusals the method explains ([`EngineError::Denied`]) are logged in full and shown to the
//! caller in full unless the mount's `verbose_denials` option is `false`.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tresor_sdk::auth::{AuthMethod, Login, LoginRenewal, RenewDecision, path_matches};
use tresor_sdk::engine::{EngineError, MountInfo, Operation};
use tresor_sdk::secret::SecretString;

use crate::core::{Active, Core};
use crate::error::{CoreError, CoreResult};
use crate::logical::{LogicalRequest, LogicalResponse};
use crate::mount::{MountKind, Mounted};
use crate::token::entry::{LoginRecord, TokenEntry, now_ns};
use crate::token::roles::normalise_policies;
use crate::token::{Resolved, TokenStore};

/// The mount option that turns detailed denial reasons off for callers (they still go to the
/// server log): `sys/auth/<path>/tune` with `options: {verbose_denials: "false"}`.
pub const VERBOSE_DENIALS_OPTION: &str = "verbose_denials";

/// Whether callers of this mount see the detail of a denial (on unless set to a false value).
pub(crate) fn verbose_denials(info: &MountInfo) -> bool {
    !matches!(
        info.options.get(VERBOSE_DENIALS_OPTION).map(String::as_str),
        Some("false" | "0" | "f" | "F" | "FALSE" | "False")
    )
}

/// Maps an engine's or method's error for the caller, honouring the mount's verbosity and
/// logging a denial's full reason (which never holds a credential).
pub(crate) fn mount_error(info: &MountInfo, path: &str, err: EngineError) -> CoreError {
    match err {
        EngineError::Denied(denial) => {
            tracing::info!(
                mount = %info.path,
                path = %path,
                status = denial.status,
                reason = %denial.message(true),
                "request refused"
            );
            CoreError::Denied {
                status: denial.status,
                message: denial.message(verbose_denials(info)),
            }
        }
        other => other.into(),
    }
}

/// A method's refusal to renew one of its tokens, worded as OpenBao's expiration manager
/// words it for every method (a 500 that names the reason), so clients see one shape whichever
/// method issued the token. Failures inside the method stay internal errors.
fn renewal_refused(info: &MountInfo, err: EngineError) -> CoreError {
    let reason = match err {
        EngineError::Denied(denial) => {
            tracing::info!(
                mount = %info.path,
                reason = %denial.message(true),
                "token renewal refused"
            );
            denial.message(verbose_denials(info))
        }
        EngineError::Storage(_) | EngineError::Internal(_) => return err.into(),
        other => other.to_string(),
    };
    CoreError::Denied {
        status: 500,
        message: format!("1 error occurred:\n\t* failed to renew entry: {reason}\n\n"),
    }
}

/// The effective TTL of a new login token and the warnings its capping produced: Vault's
/// `CalculateTTL` with the role's settings and the mount's (or the system's) limits.
fn login_ttl(login: &Login, mount: &MountInfo) -> (u64, Vec<String>) {
    let settings = &login.token;
    let mut max = mount.max_lease_ttl.as_secs();
    if settings.max_ttl > 0 && settings.max_ttl < max {
        max = settings.max_ttl;
    }
    if settings.explicit_max_ttl > 0 && settings.explicit_max_ttl < max {
        max = settings.explicit_max_ttl;
    }
    let mut warnings = Vec::new();
    if settings.period > 0 {
        let ttl = if settings.explicit_max_ttl > 0 {
            settings.period.min(settings.explicit_max_ttl)
        } else {
            settings.period
        };
        return (ttl, warnings);
    }
    let wanted = if settings.ttl > 0 {
        settings.ttl
    } else {
        mount.default_lease_ttl.as_secs()
    };
    if wanted > max {
        warnings.push(crate::token::capped_warning(
            "TTL",
            &crate::token::human_duration(wanted),
            &crate::token::human_duration(max),
        ));
        return (max, warnings);
    }
    (wanted, warnings)
}

/// `approle/` → `approle`, then the method's display name: Vault's `<mount>-<name>`.
fn display_name(mount_path: &str, name: &str) -> String {
    let source = mount_path.replace('/', "-");
    format!("{source}{name}").trim_end_matches('-').to_owned()
}

impl Core {
    /// Serves a request for an auth method's mount.
    pub(crate) async fn auth_method_request(
        &self,
        active: &Arc<Active>,
        mounted: &Arc<Mounted>,
        method: &Arc<dyn AuthMethod>,
        relative: &str,
        request: LogicalRequest,
    ) -> CoreResult<Option<LogicalResponse>> {
        let unauthenticated = path_matches(method.unauthenticated_paths(), relative);
        let resolved = if unauthenticated {
            None
        } else {
            Some(
                self.resolve_token(
                    active,
                    request.token.as_ref().map(|t| t.expose()),
                    request.remote_addr,
                )
                .await?,
            )
        };
        let client_token_key = resolved
            .as_ref()
            .map(|r| r.id_hash.clone())
            .unwrap_or_default();
        let display_name = resolved
            .as_ref()
            .map(|r| r.entry.display_name.clone())
            .unwrap_or_default();
        let (mut sdk_request, full_path, wrap_ttl) =
            request.into_routed(relative, &mounted.info, client_token_key, display_name);
        let info = &mounted.info;
        if let Some(resolved) = resolved {
            if sdk_request.operation == Operation::Update
                && method
                    .exists(&sdk_request, mounted.view.as_ref())
                    .await
                    .map_err(|e| mount_error(info, relative, e))?
                    == Some(false)
            {
                sdk_request.operation = Operation::Create;
            }
            self.authorize_resolved(
                active,
                resolved,
                &full_path,
                sdk_request.operation,
                Some(&sdk_request.data),
                wrap_ttl,
            )
            .await?;
        } else {
            // A login reaches no ACL check; it is audited here, before the method runs.
            self.audit_request(
                active,
                None,
                None,
                &full_path,
                sdk_request.operation,
                Some(&sdk_request.data),
                None,
            )
            .await?;
        }
        let Some(r) = method
            .handle(&sdk_request, mounted.view.as_ref())
            .await
            .map_err(|e| mount_error(info, relative, e))?
        else {
            return Ok(None);
        };
        let mut response = LogicalResponse {
            data: r.data,
            warnings: r.warnings,
            status: r.status_override,
            mount_type: Some(mounted.entry.engine_type.clone()),
            ..LogicalResponse::default()
        };
        if let Some(login) = r.auth {
            if !unauthenticated {
                // A login answer from an authenticated path would mint tokens for whoever may
                // write there; only declared login paths may log in.
                return Err(CoreError::Internal(format!(
                    "auth method at {} answered a login on a non-login path",
                    info.path
                )));
            }
            let (auth, warnings) = self
                .issue_login_token(active, mounted, relative, login)
                .await?;
            response.data = None;
            response.auth = Some(auth);
            response.warnings.extend(warnings);
        }
        Ok(Some(response))
    }

    /// Creates the token for a successful login and returns Vault's `auth` block.
    async fn issue_login_token(
        &self,
        active: &Active,
        mounted: &Mounted,
        relative: &str,
        login: Login,
    ) -> CoreResult<(Value, Vec<String>)> {
        let info = &mounted.info;
        let granted = normalise_policies(login.token.policies.clone());
        if granted.iter().any(|p| p == "root") {
            return Err(CoreError::InvalidRequest(
                "auth methods cannot create root tokens".to_owned(),
            ));
        }
        let mut policies = granted.clone();
        if !login.token.no_default_policy {
            policies.push("default".to_owned());
        }
        let policies = normalise_policies(policies);
        let (ttl, warnings) = login_ttl(&login, info);
        let entity = if login.alias.name.is_empty() {
            None
        } else {
            Some(
                active
                    .identity
                    .login(&info.accessor, &login.alias, &login.group_aliases)
                    .await?,
            )
        };
        if let Some(e) = entity.as_ref().filter(|e| e.disabled) {
            return Err(CoreError::Denied {
                status: 403,
                message: format!(
                    "permission denied: the identity entity {:?} of this login is disabled",
                    e.name
                ),
            });
        }
        let identity_policies = match &entity {
            Some(e) => active
                .identity
                .context(&e.id)?
                .map(|c| c.policies.clone())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let now = now_ns();
        // `login`, `login/<name>`: the path the token was created at, as Vault records it.
        let path = format!("auth/{}{}", info.path, relative.trim_end_matches('/'));
        let entry = TokenEntry {
            accessor: TokenStore::new_accessor(),
            policies,
            parent: None,
            path,
            meta: (!login.metadata.is_empty()).then(|| login.metadata.clone()),
            display_name: display_name(&info.path, &login.display_name),
            num_uses: i64::try_from(login.token.num_uses).unwrap_or(i64::MAX),
            created_ns: now,
            creation_ttl: ttl,
            explicit_max_ttl: login.token.explicit_max_ttl,
            period: login.token.period,
            renewable: login.renewable && ttl > 0,
            expire_ns: (ttl > 0)
                .then(|| now.saturating_add((ttl as i64).saturating_mul(1_000_000_000))),
            last_renewal_ns: None,
            last_ttl: 0,
            role: None,
            entity_id: entity.as_ref().map(|e| e.id.clone()),
            bound_cidrs: login.token.bound_cidrs.clone(),
            login: Some(LoginRecord {
                mount_accessor: info.accessor.clone(),
                policies: granted,
                internal: login.internal.clone(),
            }),
            batch: false,
        };
        let (token, resolved) =
            if issues_batch(&mounted.entry.config.token_type, &login.token.token_type) {
                // No lease: a batch token is not stored, so there is nothing to revoke.
                active.tokens.issue_batch(entry)?
            } else {
                let token = TokenStore::new_token_id();
                let resolved = active.tokens.insert(token.expose(), entry).await?;
                (token, resolved)
            };
        Ok((
            login_auth_block(&resolved, &token, ttl, &identity_policies),
            warnings,
        ))
    }

    /// The method's verdict on renewing a login token, with the mount's limits filled in:
    /// `(default ttl, max ttl, period)` in seconds. `None` for tokens no method issued.
    pub(crate) async fn login_renewal_limits(
        &self,
        active: &Active,
        entry: &TokenEntry,
    ) -> CoreResult<Option<(u64, u64, u64)>> {
        let Some(record) = &entry.login else {
            return Ok(None);
        };
        let table = active.mounts.table(MountKind::Auth);
        let Some(mounted) = table.by_accessor(&record.mount_accessor).cloned() else {
            return Err(CoreError::InvalidRequest(
                "the auth method that issued this token is no longer mounted".to_owned(),
            ));
        };
        let Some(method) = mounted.method.clone() else {
            return Ok(None);
        };
        let renewal = LoginRenewal {
            policies: record.policies.clone(),
            metadata: entry.meta.clone().unwrap_or_default(),
            internal: record.internal.clone(),
            mount: Arc::clone(&mounted.info),
        };
        let decision: RenewDecision = method
            .renew(&renewal, mounted.view.as_ref())
            .await
            .map_err(|e| renewal_refused(&mounted.info, e))?;
        let mount_default = mounted.info.default_lease_ttl.as_secs();
        let mount_max = mounted.info.max_lease_ttl.as_secs();
        let ttl = if decision.ttl > 0 {
            decision.ttl
        } else {
            mount_default
        };
        let max = if decision.max_ttl > 0 {
            decision.max_ttl.min(mount_max)
        } else {
            mount_max
        };
        Ok(Some((ttl, max, decision.period)))
    }
}

/// Whether a login gets a batch token: the mount's `token_type` decides when it names a type;
/// a `default-*` mount takes the role's choice and falls back to its own default (Vault's
/// router rules).
fn issues_batch(mount_type: &str, role_type: &str) -> bool {
    match mount_type {
        "batch" => true,
        "service" => false,
        "default-batch" => matches!(role_type, "" | "default" | "default-batch" | "batch"),
        _ => !matches!(role_type, "" | "default" | "default-service" | "service"),
    }
}

/// Vault's `auth` block for a login: the token, its policies (`policies` adds the identity's
/// to the token's own), the login's metadata.
fn login_auth_block(
    resolved: &Resolved,
    token: &SecretString,
    ttl: u64,
    identity_policies: &[String],
) -> Value {
    let entry = &resolved.entry;
    let token_policies = &entry.policies;
    let mut block = entry.auth_block(token.expose(), ttl);
    if let Some(obj) = block.as_object_mut() {
        obj.insert("token_policies".into(), json!(token_policies));
        if !identity_policies.is_empty() {
            let mut all = token_policies.clone();
            all.extend(identity_policies.iter().cloned());
            obj.insert("policies".into(), json!(normalise_policies(all)));
            obj.insert("identity_policies".into(), json!(identity_policies));
        }
        obj.insert(
            "metadata".into(),
            entry
                .meta
                .as_ref()
                .map_or(Value::Object(Map::new()), |m| json!(m)),
        );
    }
    block
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn mount(default: u64, max: u64) -> MountInfo {
        MountInfo {
            path: "approle/".into(),
            default_lease_ttl: Duration::from_secs(default),
            max_lease_ttl: Duration::from_secs(max),
            ..MountInfo::default()
        }
    }

    fn login(ttl: u64, max_ttl: u64, period: u64, explicit: u64) -> Login {
        let mut l = Login::default();
        l.token.ttl = ttl;
        l.token.max_ttl = max_ttl;
        l.token.period = period;
        l.token.explicit_max_ttl = explicit;
        l
    }

    #[test]
    fn login_ttls_follow_vaults_rules() {
        let m = mount(3600, 7200);
        assert_eq!(login_ttl(&login(0, 0, 0, 0), &m).0, 3600, "mount default");
        assert_eq!(login_ttl(&login(60, 0, 0, 0), &m).0, 60, "role ttl");
        let (ttl, warnings) = login_ttl(&login(9000, 0, 0, 0), &m);
        assert_eq!(ttl, 7200, "capped by the mount max");
        assert_eq!(warnings.len(), 1);
        assert_eq!(login_ttl(&login(600, 300, 0, 0), &m).0, 300, "role max");
        assert_eq!(login_ttl(&login(600, 0, 0, 120), &m).0, 120, "explicit max");
        assert_eq!(
            login_ttl(&login(0, 0, 9000, 0), &m).0,
            9000,
            "period is not capped"
        );
        assert_eq!(
            login_ttl(&login(0, 0, 900, 100), &m).0,
            100,
            "except by explicit max"
        );
    }

    #[test]
    fn the_mount_token_type_overrides_or_defaults_the_roles() {
        for (mount, role, batch) in [
            ("", "default", false),
            ("", "batch", true),
            ("default-service", "service", false),
            ("default-service", "batch", true),
            ("default-batch", "default", true),
            ("default-batch", "service", false),
            ("batch", "service", true),
            ("service", "batch", false),
        ] {
            assert_eq!(issues_batch(mount, role), batch, "{mount} / {role}");
        }
    }

    #[test]
    fn display_names_join_mount_and_method_name() {
        assert_eq!(display_name("approle/", ""), "approle");
        assert_eq!(
            display_name("kubernetes/", "default-app"),
            "kubernetes-default-app"
        );
        assert_eq!(display_name("ci/jwt/", "repo"), "ci-jwt-repo");
    }

    #[test]
    fn verbose_denials_is_on_unless_turned_off() {
        let mut m = mount(1, 1);
        assert!(verbose_denials(&m));
        m.options
            .insert(VERBOSE_DENIALS_OPTION.into(), "false".into());
        assert!(!verbose_denials(&m));
        m.options
            .insert(VERBOSE_DENIALS_OPTION.into(), "true".into());
        assert!(verbose_denials(&m));
    }
}
