//! `tresor bootstrap doctor`: checks the target a run would write to — reachable, unsealed,
//! the token valid, the mount a KV v2 one, and the token's policy allowing the writes
//! (`sys/capabilities-self`) — each with a fix when it fails — and, for each `azure_keyvault`
//! source, `tresor-azure`'s doctor: every credential's verdict in the chain's order, the
//! workload identity prerequisites a pod can check and whether the identity may list the
//! vault's secrets (the role assignment), each with its fix.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::config::{Config, SourceConfig};
use crate::kv::Client;
use crate::source::azure;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Ok,
    Failed,
    /// Not run: an earlier check failed.
    Skipped,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn check(name: &'static str, verdict: Verdict, detail: String, fix: Option<&str>) -> Check {
    Check {
        name,
        verdict,
        detail,
        fix: fix.map(str::to_owned),
    }
}

async fn get_json(
    client: &Client,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<(StatusCode, Value), String> {
    let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
    let (status, bytes) = client
        .send("checking", method, path, body)
        .await
        .map_err(|e| e.to_string())?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

fn errors(body: &Value) -> String {
    body.get("errors")
        .and_then(Value::as_array)
        .map(|e| {
            e.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// The capabilities a run needs: on `<mount>/data/<prefix>…` create/update (writes) and read
/// (comparing values), on `<mount>/metadata/<prefix>…` read (ownership records) and patch
/// (recording them).
const NEEDED: [(&str, &[&str]); 2] = [
    ("data", &["create", "update", "read"]),
    ("metadata", &["read", "patch"]),
];

/// Runs the checks in order; a failed check skips those that depend on it.
pub async fn checks(config: &Config, target: &Client) -> Vec<Check> {
    let mut out = Vec::new();
    let address = target.address();
    let skip = |name| {
        check(
            name,
            Verdict::Skipped,
            "an earlier check failed".into(),
            None,
        )
    };

    // 1. reachable, 2. unsealed
    match get_json(target, Method::GET, "sys/seal-status", None).await {
        Err(e) => {
            out.push(check(
                "reachable",
                Verdict::Failed,
                e,
                Some("check target.address (or VAULT_ADDR), the network path and, for HTTPS, target.ca_cert"),
            ));
            for n in ["unsealed", "token", "kv-v2-mount", "capabilities"] {
                out.push(skip(n));
            }
            return out;
        }
        Ok((status, body)) => {
            out.push(check(
                "reachable",
                Verdict::Ok,
                format!("{address} answered (HTTP {status})"),
                None,
            ));
            match body.get("sealed").and_then(Value::as_bool) {
                Some(false) => out.push(check(
                    "unsealed",
                    Verdict::Ok,
                    "the server is unsealed".into(),
                    None,
                )),
                Some(true) => {
                    out.push(check(
                        "unsealed",
                        Verdict::Failed,
                        "the server is sealed".into(),
                        Some("unseal it: tresor operator unseal (or the auto-unseal seal's logs)"),
                    ));
                    for n in ["token", "kv-v2-mount", "capabilities"] {
                        out.push(skip(n));
                    }
                    return out;
                }
                None => out.push(check(
                    "unsealed",
                    Verdict::Failed,
                    format!("sys/seal-status did not answer as Vault does (HTTP {status})"),
                    Some("is target.address a Vault/OpenBao/Tresor server?"),
                )),
            }
        }
    }

    // 3. token
    match get_json(target, Method::GET, "auth/token/lookup-self", None).await {
        Ok((s, _)) if s.is_success() => out.push(check(
            "token",
            Verdict::Ok,
            "the token is valid".into(),
            None,
        )),
        Ok((s, body)) => {
            out.push(check(
                "token",
                Verdict::Failed,
                format!("auth/token/lookup-self: HTTP {s} {}", errors(&body)),
                Some("set VAULT_TOKEN (or target.token) to a valid, unexpired token"),
            ));
            for n in ["kv-v2-mount", "capabilities"] {
                out.push(skip(n));
            }
            return out;
        }
        Err(e) => out.push(check("token", Verdict::Failed, e, None)),
    }

    // 4. the mount
    let mount = config.target.mount().trim_matches('/');
    match get_json(
        target,
        Method::GET,
        &format!("sys/internal/ui/mounts/{mount}"),
        None,
    )
    .await
    {
        Ok((s, body)) if s.is_success() => {
            let data = body.get("data").unwrap_or(&Value::Null);
            let kind = data.get("type").and_then(Value::as_str).unwrap_or_default();
            let version = data
                .get("options")
                .and_then(|o| o.get("version"))
                .and_then(Value::as_str)
                .unwrap_or("1");
            if kind == "kv" && version == "2" {
                out.push(check(
                    "kv-v2-mount",
                    Verdict::Ok,
                    format!("{mount}/ is a KV v2 mount"),
                    None,
                ));
            } else {
                out.push(check(
                    "kv-v2-mount",
                    Verdict::Failed,
                    format!("{mount}/ is a {kind} mount (version {version}), not KV v2"),
                    Some("point target.mount at a KV v2 mount, or: tresor secrets enable -path=<mount> kv-v2"),
                ));
            }
        }
        Ok((s, body)) => out.push(check(
            "kv-v2-mount",
            Verdict::Failed,
            format!(
                "no mount {mount}/ visible to this token (HTTP {s} {})",
                errors(&body)
            ),
            Some("create it (tresor secrets enable -path=<mount> kv-v2) or fix target.mount"),
        )),
        Err(e) => out.push(check("kv-v2-mount", Verdict::Failed, e, None)),
    }

    // 5. capabilities
    let prefix = config.target.path_prefix();
    let probe = "tresor-bootstrap-doctor-probe";
    let paths: Vec<String> = NEEDED
        .iter()
        .map(|(part, _)| format!("{mount}/{part}/{prefix}{probe}"))
        .collect();
    match get_json(
        target,
        Method::POST,
        "sys/capabilities-self",
        Some(serde_json::json!({ "paths": paths })),
    )
    .await
    {
        Ok((s, body)) if s.is_success() => {
            let data = body.get("data").unwrap_or(&body);
            let mut missing = Vec::new();
            for (path, (_, needed)) in paths.iter().zip(NEEDED) {
                let caps: Vec<&str> = data
                    .get(path)
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if caps.contains(&"root") {
                    continue;
                }
                for n in needed {
                    if !caps.contains(n) {
                        missing.push(format!("{n} on {path}"));
                    }
                }
            }
            if missing.is_empty() {
                out.push(check(
                    "capabilities",
                    Verdict::Ok,
                    format!("the token may write and record {mount}/data/{prefix}*"),
                    None,
                ));
            } else {
                let fix = format!(
                    "grant: path \"{mount}/data/{prefix}*\" {{ capabilities = [\"create\", \"update\", \"read\"] }} and path \"{mount}/metadata/{prefix}*\" {{ capabilities = [\"read\", \"patch\"] }}"
                );
                out.push(check(
                    "capabilities",
                    Verdict::Failed,
                    format!("the token's policy lacks: {}", missing.join(", ")),
                    Some(&fix),
                ));
            }
        }
        Ok((s, body)) => out.push(check(
            "capabilities",
            Verdict::Failed,
            format!("sys/capabilities-self: HTTP {s} {}", errors(&body)),
            None,
        )),
        Err(e) => out.push(check("capabilities", Verdict::Failed, e, None)),
    }

    out
}

/// One `azure_keyvault` source's report.
#[derive(Debug)]
pub struct AzureReport {
    pub index: usize,
    pub vault_url: String,
    /// `Err`: its options could not be built (an unreadable `ca_file`).
    pub report: Result<tresor_azure::doctor::Report, String>,
}

impl AzureReport {
    pub fn healthy(&self) -> bool {
        self.report.as_ref().is_ok_and(|r| r.healthy())
    }
}

/// `tresor-azure`'s doctor for each `azure_keyvault` source, with the credential chain
/// configured from `env` as a run would configure it.
pub async fn azure_reports(
    config: &Config,
    base: &std::path::Path,
    env: &tresor_azure::Env,
) -> Vec<AzureReport> {
    let mut out = Vec::new();
    for (index, source) in config.sources.iter().enumerate() {
        let SourceConfig::AzureKeyvault(a) = source else {
            continue;
        };
        let report = match azure::options(a, base) {
            Err(e) => Err(e.to_string()),
            Ok((credential, vault)) => Ok(tresor_azure::doctor::doctor(
                env,
                &credential,
                Some((a.vault_url.as_str(), vault)),
            )
            .await),
        };
        out.push(AzureReport {
            index,
            vault_url: a.vault_url.clone(),
            report,
        });
    }
    out
}
