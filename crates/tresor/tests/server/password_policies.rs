//! Password policies (`sys/policies/password/*`) through the real binary over HTTP: write
//! (HCL, JSON, base64), read, list, delete, generate, OpenBao's refusals, ACL on the sys
//! paths, and persistence across a restart. (Neither vaultrs nor hvac has an API for these
//! endpoints: plain HTTP, as the Vault docs show.) The database engine's use of a policy is
//! tested against PostgreSQL in `database.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use base64::Engine as _;
use common::{Server, embedded_config, raw};
use serde_json::{Value, json};

const ROOT: &str = "pw-root";

const POLICY: &str = r#"length = 24
rule "charset" {
  charset = "abcdefghijklmnopqrstuvwxyz"
  min-chars = 2
}
rule "charset" {
  charset = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
  min-chars = 2
}
rule "charset" {
  charset = "0123456789"
  min-chars = 3
}
rule "charset" {
  charset = "!@#$%^&*"
  min-chars = 1
}
"#;

async fn ok(server: &Server, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, reply) = raw(server, method, path, Some(ROOT), body).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {reply}\n{}",
        server.log_text()
    );
    reply
}

async fn refused(server: &Server, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    let (status, reply) = raw(server, method, path, Some(ROOT), body).await;
    assert!(status >= 400, "{method} {path}: {status} {reply}");
    let message = reply["errors"]
        .get(0)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    (status, message)
}

fn coded(message: &str) -> String {
    format!("1 error occurred:\n\t* {message}\n\n")
}

fn satisfies(password: &str) -> bool {
    let count = |set: &str| password.chars().filter(|c| set.contains(*c)).count();
    password.chars().count() == 24
        && count("abcdefghijklmnopqrstuvwxyz") >= 2
        && count("ABCDEFGHIJKLMNOPQRSTUVWXYZ") >= 2
        && count("0123456789") >= 3
        && count("!@#$%^&*") >= 1
        && password
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!@#$%^&*".contains(c))
}

#[tokio::test(flavor = "multi_thread")]
async fn policies_are_written_read_listed_generated_from_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);

    // Nothing yet: LIST is a bare 404, as for any empty list.
    let (status, reply) = raw(&server, "LIST", "sys/policies/password", Some(ROOT), None).await;
    assert_eq!((status, reply), (404, json!({"errors": []})));

    let (status, _) = raw(
        &server,
        "PUT",
        "sys/policies/password/strong",
        Some(ROOT),
        Some(json!({"policy": POLICY})),
    )
    .await;
    assert_eq!(status, 204);
    let read = ok(&server, "GET", "sys/policies/password/strong", None).await;
    assert_eq!(read["data"], json!({"policy": POLICY}));

    let mut seen = std::collections::HashSet::new();
    for _ in 0..50 {
        let reply = ok(
            &server,
            "GET",
            "sys/policies/password/strong/generate",
            None,
        )
        .await;
        let password = reply["data"]["password"].as_str().unwrap().to_owned();
        assert!(satisfies(&password), "{password:?}");
        seen.insert(password);
    }
    assert_eq!(seen.len(), 50, "passwords repeat");
    assert!(
        !server.log_text().contains(seen.iter().next().unwrap()),
        "a generated password reached the log"
    );

    // JSON policies and base64-encoded text (stored decoded, as OpenBao does).
    let json_policy = r#"{"length": 8, "rule": [{"charset": {"charset": "xyz", "min-chars": 1}}]}"#;
    ok(
        &server,
        "POST",
        "sys/policies/password/json",
        Some(json!({"policy": json_policy})),
    )
    .await;
    let b64 = base64::engine::general_purpose::STANDARD
        .encode("length = 6\nrule \"charset\" {\n  charset = \"01\"\n}\n");
    ok(
        &server,
        "PUT",
        "sys/policies/password/team/binary",
        Some(json!({"policy": b64})),
    )
    .await;
    let read = ok(&server, "GET", "sys/policies/password/team/binary", None).await;
    assert_eq!(
        read["data"]["policy"],
        "length = 6\nrule \"charset\" {\n  charset = \"01\"\n}\n"
    );
    let reply = ok(
        &server,
        "GET",
        "sys/policies/password/team/binary/generate",
        None,
    )
    .await;
    let bits = reply["data"]["password"].as_str().unwrap();
    assert!(
        bits.len() == 6 && bits.chars().all(|c| c == '0' || c == '1'),
        "{bits}"
    );
    let reply = ok(&server, "GET", "sys/policies/password/json/generate", None).await;
    let xyz = reply["data"]["password"].as_str().unwrap();
    assert!(
        xyz.len() == 8 && xyz.chars().all(|c| "xyz".contains(c)),
        "{xyz}"
    );

    // LIST (both spellings): each level sorted, nested names after.
    let listed = ok(&server, "LIST", "sys/policies/password/", None).await;
    assert_eq!(
        listed["data"]["keys"],
        json!(["json", "strong", "team/binary"])
    );
    let listed = ok(&server, "GET", "sys/policies/password?list=true", None).await;
    assert_eq!(
        listed["data"]["keys"],
        json!(["json", "strong", "team/binary"])
    );

    // Unknown names; DELETE of a missing policy is a 204.
    for path in [
        "sys/policies/password/nope",
        "sys/policies/password/nope/generate",
    ] {
        assert_eq!(
            refused(&server, "GET", path, None).await,
            (404, coded("policy does not exist"))
        );
    }
    let (status, _) = raw(
        &server,
        "DELETE",
        "sys/policies/password/nope",
        Some(ROOT),
        None,
    )
    .await;
    assert_eq!(status, 204);
    ok(&server, "DELETE", "sys/policies/password/json", None).await;
    assert_eq!(
        refused(&server, "GET", "sys/policies/password/json", None)
            .await
            .0,
        404
    );
    // Unsupported operations.
    for (method, path) in [
        ("GET", "sys/policies/password/"),
        ("POST", "sys/policies/password/strong/generate"),
        ("DELETE", "sys/policies/password/strong/generate"),
    ] {
        assert_eq!(
            refused(&server, method, path, None).await,
            (405, coded("unsupported operation")),
            "{method} {path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_policies_are_refused_with_openbaos_messages() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let put = |text: &str| json!({ "policy": text });
    let cases: Vec<(Value, String)> = vec![
        (json!({}), coded("missing policy")),
        (put(""), coded("missing policy")),
        (
            put("length = 3\nrule \"charset\" {\n charset = \"abc\"\n}"),
            coded("passwords must be between 4 and 100 characters"),
        ),
        (
            put("length = 101\nrule \"charset\" {\n charset = \"abc\"\n}"),
            coded("passwords must be between 4 and 100 characters"),
        ),
        (
            put("length = 4\nrule \"charset\" {\n charset = \"abc\"\n min-chars = 5\n}"),
            coded(
                "invalid password policy: 1 error occurred:\n\t* specified rules require at least 5 characters but 4 is specified\n\n",
            ),
        ),
        (
            put(" "),
            coded(
                "invalid password policy: 2 errors occurred:\n\t* length must be > 0\n\t* no charset specified\n\n",
            ),
        ),
        (
            put("length = 10\nrule \"foo\" {\n charset = \"abc\"\n}"),
            coded(
                "invalid password policy: unable to parse rules: unable to parse rule foo: unrecognized rule type foo",
            ),
        ),
        (
            put("length = 10\nrule \"charset\" {\n charset = \"a\\tb\"\n}"),
            coded(
                "invalid password policy: 1 error occurred:\n\t* non-printable character in charset\n\n",
            ),
        ),
        (
            put("length = \"10\"\nrule \"charset\" {\n charset = \"abc\"\n}"),
            coded(
                "invalid password policy: failed to decode configuration: decoding failed due to the following error(s):\n\n'length' expected type 'int', got unconvertible type 'string'",
            ),
        ),
    ];
    for (body, expected) in cases {
        let got = refused(
            &server,
            "PUT",
            "sys/policies/password/bad",
            Some(body.clone()),
        )
        .await;
        assert_eq!(got, (400, expected), "{body}");
    }
    // Syntax errors keep OpenBao's prefix (the parser's own words follow).
    let (status, message) = refused(
        &server,
        "PUT",
        "sys/policies/password/bad",
        Some(put("length = {")),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        message.starts_with("1 error occurred:\n\t* invalid password policy: unable to decode: "),
        "{message}"
    );
    // Hostile input: a huge charset is stored (OpenBao checks its size only when generating),
    // an empty charset with min-chars is refused (OpenBao's request panics there).
    let huge: String = (0x100u32..0x400).filter_map(char::from_u32).collect();
    ok(
        &server,
        "PUT",
        "sys/policies/password/huge",
        Some(put(&format!(
            "length = 8\nrule \"charset\" {{\n charset = \"{huge}\"\n}}"
        ))),
    )
    .await;
    assert_eq!(
        refused(&server, "GET", "sys/policies/password/huge/generate", None).await,
        (
            500,
            coded(
                "failed to generate password from policy: unable to generate random characters: charset is too long: limited to 255 characters"
            )
        )
    );
    let (status, _) = refused(
        &server,
        "PUT",
        "sys/policies/password/empty",
        Some(put("length = 8\nrule \"charset\" {\n charset = \"\"\n min-chars = 1\n}\nrule \"charset\" {\n charset = \"ab\"\n}")),
    )
    .await;
    assert_eq!(status, 400);
    // Rules that can never hold time out as in OpenBao.
    ok(
        &server,
        "PUT",
        "sys/policies/password/never",
        Some(put("length = 4\nrule \"charset\" {\n charset = \"a\"\n min-chars = 6\n}\nrule \"charset\" {\n charset = \"b\"\n min-chars = -5\n}")),
    )
    .await;
    assert_eq!(
        refused(&server, "GET", "sys/policies/password/never/generate", None).await,
        (
            500,
            coded("failed to generate password from policy: timed out generating string")
        )
    );
    // Names that are not storage keys.
    assert_eq!(
        refused(
            &server,
            "PUT",
            "sys/policies/password/a//b",
            Some(put(POLICY))
        )
        .await
        .0,
        400
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sys_paths_follow_the_acl_and_policies_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = embedded_config(dir.path());
    let server = Server::start(&["server", "-config", config.to_str().unwrap()], dir.path());
    let init = raw(
        &server,
        "PUT",
        "sys/init",
        None,
        Some(json!({"secret_shares": 1, "secret_threshold": 1})),
    )
    .await
    .1;
    let key = init["keys"][0].as_str().unwrap().to_owned();
    let root = init["root_token"].as_str().unwrap().to_owned();
    raw(
        &server,
        "PUT",
        "sys/unseal",
        None,
        Some(json!({"key": key})),
    )
    .await;

    let as_root = |method: &'static str, path: &'static str, body: Option<Value>| {
        let root = root.clone();
        let server = &server;
        async move { raw(server, method, path, Some(&root), body).await }
    };
    assert_eq!(
        as_root(
            "PUT",
            "sys/policies/password/app",
            Some(json!({"policy": POLICY}))
        )
        .await
        .0,
        204
    );
    // A token that may only generate from `app`.
    let acl = r#"path "sys/policies/password/app/generate" { capabilities = ["read"] }"#;
    assert_eq!(
        as_root("PUT", "sys/policies/acl/gen", Some(json!({"policy": acl})))
            .await
            .0,
        204
    );
    let token = as_root(
        "POST",
        "auth/token/create",
        Some(json!({"policies": ["gen"]})),
    )
    .await
    .1;
    let token = token["auth"]["client_token"].as_str().unwrap().to_owned();
    let (status, reply) = raw(
        &server,
        "GET",
        "sys/policies/password/app/generate",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert!(satisfies(reply["data"]["password"].as_str().unwrap()));
    for (method, path) in [
        ("GET", "sys/policies/password/app"),
        ("PUT", "sys/policies/password/app"),
        ("DELETE", "sys/policies/password/app"),
        ("LIST", "sys/policies/password/"),
    ] {
        let body = (method == "PUT").then(|| json!({"policy": POLICY}));
        let (status, _) = raw(&server, method, path, Some(&token), body).await;
        assert_eq!(status, 403, "{method} {path}");
    }
    let (status, _) = raw(
        &server,
        "GET",
        "sys/policies/password/app/generate",
        None,
        None,
    )
    .await;
    assert_eq!(status, 403);

    // Stored under the barrier: back after a restart and unseal.
    let status = server.terminate();
    assert!(status.success());
    let server = Server::start(&["server", "-config", config.to_str().unwrap()], dir.path());
    let (status, _) = raw(
        &server,
        "GET",
        "sys/policies/password/app",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(status, 503);
    raw(
        &server,
        "PUT",
        "sys/unseal",
        None,
        Some(json!({"key": key})),
    )
    .await;
    let (status, reply) = raw(
        &server,
        "GET",
        "sys/policies/password/app",
        Some(&root),
        None,
    )
    .await;
    assert_eq!((status, &reply["data"]["policy"]), (200, &json!(POLICY)));
}
