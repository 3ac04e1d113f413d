//! JWT/OIDC auth against a real OpenID provider (npm `oidc-provider`, test-support/oidc) with
//! the vaultrs client: CI logins with client_credentials JWTs (the seeds' `gitea_cicd_<app>`
//! roles with policies `<app>` and `<app>-ops`), each binding's refusal, key rotation without
//! restart, the auth-code + PKCE browser flow, and the CLI's `login -method=jwt|oidc`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;
use crate::support_jwt;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{BIN, Server, raw, vault_client};
use serde_json::{Value, json};
use support_jwt::{OidcProvider, browser_login, free_port};
use vaultrs::error::ClientError;

const ROOT: &str = "root-jwt-test";

struct Setup {
    _dir: tempfile::TempDir,
    server: Server,
    provider: OidcProvider,
}

fn dir_path(s: &Setup) -> &Path {
    s._dir.path()
}

/// A dev server with `jwt/` (keys from the provider's JWKS) and the role
/// `gitea_cicd_app`, and a provider whose signing key has kid `k1`.
async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let provider = OidcProvider::start(
        dir.path(),
        free_port(),
        &dir.path().join("k1.json"),
        "k1",
        "http://127.0.0.1/oidc/callback,http://localhost/oidc/callback",
    );
    let ok = |(status, body): (u16, Value)| {
        assert!(status < 300, "{status}: {body}");
        body
    };
    ok(raw(
        &server,
        "POST",
        "sys/auth/jwt",
        Some(ROOT),
        Some(json!({"type": "jwt"})),
    )
    .await);
    for p in ["app", "app-ops"] {
        ok(raw(
            &server,
            "PUT",
            &format!("sys/policies/acl/{p}"),
            Some(ROOT),
            Some(
                json!({"policy": format!("path \"secret/{p}/*\" {{ capabilities = [\"read\"] }}")}),
            ),
        )
        .await);
    }
    ok(raw(
        &server,
        "POST",
        "auth/jwt/config",
        Some(ROOT),
        Some(json!({"jwks_url": provider.jwks_url(), "bound_issuer": provider.issuer})),
    )
    .await);
    ok(raw(
        &server,
        "POST",
        "auth/jwt/role/gitea_cicd_app",
        Some(ROOT),
        Some(json!({
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": ["tresor"],
            "bound_claims": {"repository": "org/app", "ref": "refs/heads/main"},
            "claim_mappings": {"repository": "repository", "ref": "ref", "workflow": "workflow"},
            "token_policies": ["app", "app-ops"],
            "token_ttl": "10m",
        })),
    )
    .await);
    Setup {
        _dir: dir,
        server,
        provider,
    }
}

async fn login(s: &Setup, role: &str, jwt: &str) -> Result<vaultrs::api::AuthInfo, ClientError> {
    let client = vault_client(&s.server.addr, "");
    vaultrs::auth::oidc::login(&client, "jwt", jwt, Some(role.to_owned())).await
}

/// The refusal's status and message.
fn refusal(r: Result<vaultrs::api::AuthInfo, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::APIError { code, errors }) => (code, errors.join("; ")),
        Err(other) => panic!("expected an API error, got {other:?}"),
        Ok(auth) => panic!("expected a refusal, got a login with {:?}", auth.policies),
    }
}

#[tokio::test]
async fn a_ci_pipeline_logs_in_with_exactly_the_roles_policies_and_metadata() {
    let s = setup().await;
    let jwt = s.provider.ci_token(&[]).await;
    let auth = login(&s, "gitea_cicd_app", &jwt).await.unwrap();
    assert_eq!(auth.token_policies, ["app", "app-ops", "default"]);
    assert_eq!(auth.policies, ["app", "app-ops", "default"]);
    assert_eq!(auth.lease_duration, 600);
    assert!(auth.renewable);
    let metadata = auth.metadata.clone().unwrap();
    assert_eq!(
        metadata,
        HashMap::from([
            ("repository".to_owned(), "org/app".to_owned()),
            ("ref".to_owned(), "refs/heads/main".to_owned()),
            ("workflow".to_owned(), "deploy.yml".to_owned()),
            ("role".to_owned(), "gitea_cicd_app".to_owned()),
        ])
    );
    // The token works and says who it is.
    let (status, body) = raw(
        &s.server,
        "GET",
        "auth/token/lookup-self",
        Some(&auth.client_token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["display_name"],
        "jwt-repo:org/app:ref:refs/heads/main"
    );
    assert_eq!(body["data"]["meta"]["repository"], "org/app");
    assert_eq!(body["data"]["path"], "auth/jwt/login");
    // Renewal asks the role again.
    let (status, body) = raw(
        &s.server,
        "POST",
        "auth/token/renew-self",
        Some(&auth.client_token),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The same role through OIDC discovery instead of a JWKS URL.
    let (status, body) = raw(
        &s.server,
        "POST",
        "auth/jwt/config",
        Some(ROOT),
        Some(json!({"oidc_discovery_url": s.provider.issuer, "bound_issuer": s.provider.issuer})),
    )
    .await;
    assert!(status < 300, "{body}");
    let again = login(&s, "gitea_cicd_app", &s.provider.ci_token(&[]).await)
        .await
        .unwrap();
    assert_eq!(again.token_policies, ["app", "app-ops", "default"]);
    // The config read shows no secret and says the keys are usable.
    let (_, body) = raw(&s.server, "GET", "auth/jwt/config", Some(ROOT), None).await;
    assert_eq!(body["data"]["status"], "valid");
}

#[tokio::test]
async fn each_mismatch_is_refused_with_a_reason_naming_the_binding() {
    let s = setup().await;
    let p = &s.provider;
    let mut used = Vec::new();
    let mut check = async |jwt: String, role: &str, status: u16, needles: &[&str]| {
        let (code, message) = refusal(login(&s, role, &jwt).await);
        assert_eq!(code, status, "{message}");
        for n in needles {
            assert!(message.contains(n), "{message:?} lacks {n:?}");
        }
        assert!(!message.contains(&jwt), "the refusal repeats the JWT");
        used.push(jwt);
    };
    check(
        p.ci_token(&[("exp_offset", "-600")]).await,
        "gitea_cicd_app",
        400,
        &[
            "invalid expiration time (exp) claim: token is expired",
            "token expired at ",
            "(leeway 60s)",
        ],
    )
    .await;
    check(
        p.ci_token(&[("nbf_offset", "600")]).await,
        "gitea_cicd_app",
        400,
        &["token not yet valid", "token not valid before"],
    )
    .await;
    check(
        p.ci_token(&[("ref", "refs/heads/dev")]).await,
        "gitea_cicd_app",
        400,
        &[
            "claim \"ref\" does not match any associated bound claim values",
            "claim 'ref' value 'refs/heads/dev' does not match bound_claims [refs/heads/main]",
        ],
    )
    .await;
    // A tampered payload: the provider's signature no longer covers it.
    let good = p.ci_token(&[]).await;
    let mut parts: Vec<&str> = good.split('.').collect();
    let forged = {
        use base64::Engine as _;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut claims: Value = serde_json::from_slice(&e.decode(parts[1]).unwrap()).unwrap();
        claims["repository"] = json!("org/app");
        claims["ref"] = json!("refs/heads/main");
        claims["sub"] = json!("repo:org/admin");
        e.encode(claims.to_string())
    };
    parts[1] = &forged;
    check(
        parts.join("."),
        "gitea_cicd_app",
        400,
        &[
            "failed to verify id token signature",
            "does not verify with key 'k1'",
        ],
    )
    .await;
    // Audience: a role bound to another audience.
    let (status, _) = raw(&s.server, "POST", "auth/jwt/role/other_aud", Some(ROOT), Some(json!({
        "role_type": "jwt", "user_claim": "sub", "bound_audiences": "vault", "token_policies": "app",
    }))).await;
    assert_eq!(status, 204);
    check(
        p.ci_token(&[]).await,
        "other_aud",
        400,
        &[
            "invalid audience (aud) claim",
            "audience mismatch: token has [tresor], role bound_audiences [vault]",
        ],
    )
    .await;
    // Glob bound claims.
    let (status, _) = raw(&s.server, "POST", "auth/jwt/role/org_glob", Some(ROOT), Some(json!({
        "role_type": "jwt", "user_claim": "sub", "bound_audiences": "tresor",
        "bound_claims_type": "glob", "bound_claims": {"repository": "org/*", "ref": "refs/heads/*"},
        "token_policies": "app",
    }))).await;
    assert_eq!(status, 204);
    let ok = login(
        &s,
        "org_glob",
        &p.ci_token(&[("repository", "org/other"), ("ref", "refs/heads/x")])
            .await,
    )
    .await;
    assert_eq!(ok.unwrap().token_policies, ["app", "default"]);
    check(
        p.ci_token(&[("repository", "evil/app")]).await,
        "org_glob",
        400,
        &["claim 'repository' value 'evil/app' does not match bound_claims (glob) [org/*]"],
    )
    .await;
    // Issuer: the mount bound to another issuer.
    let (status, _) = raw(
        &s.server,
        "POST",
        "auth/jwt/config",
        Some(ROOT),
        Some(json!({
            "jwks_url": p.jwks_url(), "bound_issuer": "https://gitea.example",
        })),
    )
    .await;
    assert_eq!(status, 204);
    check(
        p.ci_token(&[]).await,
        "gitea_cicd_app",
        400,
        &[
            "invalid issuer (iss) claim",
            &format!(
                "issuer '{}' does not match bound_issuer 'https://gitea.example'",
                p.issuer
            ),
        ],
    )
    .await;

    // Neither the tokens nor their signatures reach the server's log.
    let log = s.server.log_text();
    assert!(log.contains("request refused"), "denials are logged: {log}");
    for jwt in &used {
        let signature = jwt.rsplit('.').next().unwrap();
        assert!(
            !log.contains(signature),
            "a JWT signature is in the server log"
        );
        assert!(!log.contains(jwt.as_str()));
    }
}

#[tokio::test]
async fn key_rotation_at_the_provider_needs_no_restart() {
    let mut s = setup().await;
    let old = s.provider.ci_token(&[]).await;
    login(&s, "gitea_cicd_app", &old).await.unwrap();
    // A kid the JWKS does not have (yet): one refetch, then a refusal naming the kid.
    let unknown = s.provider.ci_token(&[("header_kid", "k2")]).await;
    let (code, message) = refusal(login(&s, "gitea_cicd_app", &unknown).await);
    assert_eq!(code, 400);
    assert!(
        message.contains("no key with kid 'k2' in the JWKS even after a refetch"),
        "{message}"
    );

    // The provider restarts with a new signing key (kid k2) on the same issuer.
    let dir = dir_path(&s).to_owned();
    s.provider
        .restart_with_key(&dir, &dir.join("k2.json"), "k2", "");
    let new = s.provider.ci_token(&[]).await;
    assert!(new.len() > 10);
    let auth = login(&s, "gitea_cicd_app", &new).await.unwrap();
    assert_eq!(auth.token_policies, ["app", "app-ops", "default"]);
    // Tokens signed with the retired key stop working.
    let (code, message) = refusal(login(&s, "gitea_cicd_app", &old).await);
    assert_eq!(code, 400);
    assert!(message.contains("no key with kid 'k1'"), "{message}");
}

/// The OIDC mount and a browser role; returns the redirect URI the role allows.
async fn oidc_setup(s: &Setup, redirect: &str) {
    let (status, body) = raw(
        &s.server,
        "POST",
        "sys/auth/oidc",
        Some(ROOT),
        Some(json!({"type": "oidc"})),
    )
    .await;
    assert!(status < 300, "{body}");
    let (status, body) = raw(
        &s.server,
        "POST",
        "auth/oidc/config",
        Some(ROOT),
        Some(json!({
            "oidc_discovery_url": s.provider.issuer,
            "oidc_client_id": "web-client",
            "oidc_client_secret": "web-secret",
            "default_role": "web",
        })),
    )
    .await;
    assert!(status < 300, "{body}");
    let (status, body) = raw(
        &s.server,
        "POST",
        "auth/oidc/role/web",
        Some(ROOT),
        Some(json!({
            "user_claim": "sub",
            "groups_claim": "groups",
            "oidc_scopes": "email,groups",
            "claim_mappings": {"email": "email"},
            "allowed_redirect_uris": [redirect],
            "token_policies": "app",
        })),
    )
    .await;
    assert!(status < 300, "{body}");
}

#[tokio::test]
async fn the_auth_code_flow_with_pkce_logs_in_once_per_state() {
    let s = setup().await;
    let redirect = "http://127.0.0.1:8250/oidc/callback";
    oidc_setup(&s, redirect).await;
    let client = vault_client(&s.server.addr, "");
    let started = vaultrs::auth::oidc::auth(&client, "oidc", redirect, Some("web".to_owned()))
        .await
        .unwrap();
    let url = started.auth_url;
    for needle in [
        "code_challenge_method=S256",
        "code_challenge=",
        "nonce=n_",
        "state=st_",
        "client_id=web-client",
        "scope=openid+email+groups",
    ] {
        assert!(url.contains(needle), "{url} lacks {needle}");
    }
    let back = browser_login(&url, "alice", redirect).await;
    let (state, code) = (&back["state"], &back["code"]);
    let auth = vaultrs::auth::oidc::callback(&client, "oidc", state, "", code)
        .await
        .unwrap();
    assert_eq!(auth.token_policies, ["app", "default"]);
    let metadata = auth.metadata.unwrap();
    assert_eq!(metadata["email"], "alice@example.test");
    assert_eq!(metadata["role"], "web");
    let (_, body) = raw(
        &s.server,
        "GET",
        "auth/token/lookup-self",
        Some(&auth.client_token),
        None,
    )
    .await;
    assert_eq!(body["data"]["display_name"], "oidc-alice");
    // The login's identity: an entity whose alias on this mount is the user claim.
    let entity = body["data"]["entity_id"].as_str().unwrap().to_owned();
    assert!(!entity.is_empty());
    let (status, body) = raw(
        &s.server,
        "GET",
        &format!("identity/entity/id/{entity}"),
        Some(ROOT),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["aliases"][0]["name"], "alice");
    assert_eq!(
        body["data"]["aliases"][0]["metadata"]["email"],
        "alice@example.test"
    );
    // The state is single-use.
    let (code2, message) =
        match vaultrs::auth::oidc::callback(&client, "oidc", state, "", code).await {
            Err(ClientError::APIError { code, errors }) => (code, errors.join("; ")),
            other => panic!("replayed callback: {other:?}"),
        };
    assert_eq!(code2, 400);
    assert!(
        message.contains("Expired or missing OAuth state"),
        "{message}"
    );
    // A redirect URI the role does not allow gets no URL, as in OpenBao.
    let refused = vaultrs::auth::oidc::auth(&client, "oidc", "http://evil.example/cb", None)
        .await
        .unwrap();
    assert_eq!(refused.auth_url, "");
    // A code stolen from another login cannot be redeemed under a fresh state (PKCE and the
    // nonce bind it to its own login).
    let first = vaultrs::auth::oidc::auth(&client, "oidc", redirect, None)
        .await
        .unwrap()
        .auth_url;
    let second = vaultrs::auth::oidc::auth(&client, "oidc", redirect, None)
        .await
        .unwrap()
        .auth_url;
    let stolen = browser_login(&first, "mallory", redirect).await;
    let victim_state = second
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let r =
        vaultrs::auth::oidc::callback(&client, "oidc", &victim_state, "", &stolen["code"]).await;
    assert!(
        matches!(r, Err(ClientError::APIError { code: 400, .. })),
        "{r:?}"
    );
}

fn cli(s: &Setup, home: &Path, args: &[&str]) -> std::process::Child {
    Command::new(BIN)
        .args(args)
        .env("VAULT_ADDR", &s.server.addr)
        .env_remove("VAULT_TOKEN")
        .env("HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn the_cli_logs_in_with_method_jwt_and_method_oidc() {
    let s = setup().await;
    let home = tempfile::tempdir().unwrap();
    // -method=jwt with the token from a file.
    let jwt_file = home.path().join("ci.jwt");
    std::fs::write(&jwt_file, s.provider.ci_token(&[]).await).unwrap();
    let out = cli(
        &s,
        home.path(),
        &[
            "login",
            "-method=jwt",
            "-format=json",
            "role=gitea_cicd_app",
            &format!("jwt=@{}", jwt_file.display()),
        ],
    )
    .wait_with_output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        body["auth"]["token_policies"],
        json!(["app", "app-ops", "default"])
    );
    let stored = std::fs::read_to_string(home.path().join(".vault-token")).unwrap();
    assert_eq!(stored.trim(), body["auth"]["client_token"]);

    // -method=oidc: the CLI listens on the callback port and prints the URL (no browser here).
    let port = free_port();
    let redirect = format!("http://localhost:{port}/oidc/callback");
    oidc_setup(&s, "http://localhost:8250/oidc/callback").await;
    let mut child = cli(
        &s,
        home.path(),
        &[
            "login",
            "-method=oidc",
            "-format=json",
            &format!("port={port}"),
            "skip_browser=true",
            "role=web",
        ],
    );
    // Read stderr until the URL shows up (polling its lines, 30 s deadline).
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let url = loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the CLI prints the authorization URL");
        if let Some(start) = line.find("http://127.0.0.1:") {
            break line[start..].trim().to_owned();
        }
    };
    // The browser: log in at the provider, then follow the redirect to the CLI's listener.
    let back = browser_login(&url, "bob", &redirect).await;
    let query: String = back
        .iter()
        .map(|(k, v)| format!("{k}={}", support_jwt::encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let page = common::http()
        .get(format!("{redirect}?{query}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Signed in"), "{page}");
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let body: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(body["auth"]["metadata"]["email"], "bob@example.test");
    assert_eq!(body["auth"]["token_policies"], json!(["app", "default"]));
}
