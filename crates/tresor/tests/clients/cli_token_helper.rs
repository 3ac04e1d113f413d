//! The token helper (`~/.vault-token`) with the real binary: `server -dev` and `login` store
//! the token (mode 0600), client commands use it when no token variable is set, a variable
//! wins, `token revoke -self` leaves the file, and `-no-store`/`-dev-no-store-token` write
//! nothing. Every run has its own HOME, never the developer's.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use crate::common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{BIN, Server};

const ROOT: &str = "helper-root";

/// `tresor ARGS` with `HOME=home`, the server's address, and only the token variables given.
fn tresor(home: &Path, addr: &str, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("HOME", home)
        .env("VAULT_ADDR", addr)
        .env_remove("TRESOR_ADDR")
        .env_remove("BAO_ADDR")
        .env_remove("TRESOR_TOKEN")
        .env_remove("VAULT_TOKEN")
        .env_remove("BAO_TOKEN")
        .env_remove("VAULT_FORMAT")
        .env_remove("BAO_FORMAT")
        .stdin(Stdio::null());
    if let Some(t) = token {
        cmd.env("VAULT_TOKEN", t);
    }
    cmd.output().unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn helper_file(home: &Path) -> std::path::PathBuf {
    home.join(".vault-token")
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_dev_server_authenticates_the_cli_through_the_helper_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    // The server's HOME is the test's directory (tests/common): the file appears there.
    let file = helper_file(dir.path());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), ROOT);
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);

    let lookup = tresor(
        dir.path(),
        &server.addr,
        None,
        &["token", "lookup", "-field=id"],
    );
    assert_eq!(lookup.status.code(), Some(0), "{}", err(&lookup));
    assert_eq!(out(&lookup), ROOT);

    // A token variable wins over the helper: a bad one fails with 403 → exit 2.
    let bad = tresor(
        dir.path(),
        &server.addr,
        Some("not-a-token"),
        &["token", "lookup"],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(err(&bad).contains("Code: 403"), "{}", err(&bad));
}

#[test]
fn dev_no_store_token_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let _server = Server::start(
        &[
            "server",
            "-dev",
            "-dev-no-store-token",
            "-dev-listen-address=127.0.0.1:0",
            &format!("-dev-root-token-id={ROOT}"),
        ],
        dir.path(),
    );
    assert!(!helper_file(dir.path()).exists());
}

#[test]
fn login_stores_the_token_and_revoke_self_keeps_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let home = tempfile::tempdir().unwrap();
    let file = helper_file(home.path());

    // No token anywhere: 403 → exit 2.
    let none = tresor(home.path(), &server.addr, None, &["token", "lookup"]);
    assert_eq!(none.status.code(), Some(2));

    let created = tresor(
        home.path(),
        &server.addr,
        Some(ROOT),
        &["token", "create", "-policy=default", "-field=token"],
    );
    assert_eq!(created.status.code(), Some(0), "{}", err(&created));
    let child = out(&created);

    // -no-store: printed, not stored.
    let no_store = tresor(
        home.path(),
        &server.addr,
        None,
        &["login", "-no-store", &child],
    );
    assert_eq!(no_store.status.code(), Some(0), "{}", err(&no_store));
    assert!(!file.exists());

    let login = tresor(home.path(), &server.addr, None, &["login", &child]);
    assert_eq!(login.status.code(), Some(0), "{}", err(&login));
    assert!(out(&login).starts_with("Success! You are now authenticated."));
    assert!(
        out(&login).contains("token_policies       [\"default\"]"),
        "{}",
        out(&login)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), child);
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);

    let who = tresor(
        home.path(),
        &server.addr,
        None,
        &["token", "lookup", "-field=id"],
    );
    assert_eq!(out(&who), child);

    // Vault leaves the helper file alone on revoke -self; later commands then get a 403.
    let revoke = tresor(
        home.path(),
        &server.addr,
        None,
        &["token", "revoke", "-self"],
    );
    assert_eq!(revoke.status.code(), Some(0), "{}", err(&revoke));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), child);
    let after = tresor(home.path(), &server.addr, None, &["token", "lookup"]);
    assert_eq!(after.status.code(), Some(2));

    // A bad token is not stored.
    let bad = tresor(home.path(), &server.addr, None, &["login", "no-such-token"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(err(&bad).starts_with("Error authenticating: error looking up token"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), child);
}

#[test]
fn login_reads_the_token_from_stdin_with_a_dash() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["login", "-method=token", "-format=json", "token=-"])
        .env("HOME", home.path())
        .env("VAULT_ADDR", &server.addr)
        .env_remove("VAULT_TOKEN")
        .env_remove("TRESOR_TOKEN")
        .env_remove("BAO_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{ROOT}\n").as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", err(&output));
    let json: serde_json::Value = serde_json::from_str(&out(&output)).unwrap();
    assert_eq!(json["auth"]["client_token"], ROOT);
    assert_eq!(json["auth"]["policies"], serde_json::json!(["root"]));
    assert_eq!(
        std::fs::read_to_string(helper_file(home.path())).unwrap(),
        ROOT
    );
}

#[test]
fn policy_fmt_rewrites_the_file_in_vaults_layout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.hcl");
    std::fs::write(
        &path,
        "# comment\npath \"secret/*\"   {\ncapabilities=[\"read\",\"list\"]\n}\npath \"sys/x\" { capabilities = [\"deny\"] }\n",
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let fmt = tresor(
        dir.path(),
        "http://127.0.0.1:1",
        None,
        &["policy", "fmt", p],
    );
    assert_eq!(fmt.status.code(), Some(0), "{}", err(&fmt));
    assert_eq!(out(&fmt), format!("Success! Formatted policy: {p}\n"));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "# comment\npath \"secret/*\" {\n  capabilities = [\"read\", \"list\"]\n}\n\npath \"sys/x\" {\n  capabilities = [\"deny\"]\n}\n"
    );

    // An invalid policy: exit 1, the file untouched.
    let bad = "path \"x\" {\n  capabilities = [\"bogus\"]\n}\n";
    std::fs::write(&path, bad).unwrap();
    let fmt = tresor(
        dir.path(),
        "http://127.0.0.1:1",
        None,
        &["policy", "fmt", p],
    );
    assert_eq!(fmt.status.code(), Some(1));
    assert!(
        err(&fmt).starts_with("failed to parse policy: "),
        "{}",
        err(&fmt)
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), bad);
}

#[test]
fn usage_errors_exit_1_and_server_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let a = server.addr.as_str();
    let h = dir.path();
    for args in [
        &["token", "create", "-bogus"][..],
        &["token", "create", "-ttl=soon"],
        &["policy", "read"],
        &["secrets", "enable"],
        &["auth", "tune"],
        &["lease", "lookup"],
        &["lease", "revoke", "-force", "x"],
        &["token", "revoke", "-self", "-accessor"],
    ] {
        let o = tresor(h, a, Some(ROOT), args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", err(&o));
    }
    // Flag errors in the words of Go's flag package, one line, as vault prints them.
    for (args, message) in [
        (
            &["token", "create", "-bogus"][..],
            "flag provided but not defined: -bogus\n",
        ),
        (
            &["token", "create", "-ttl=soon"],
            "invalid value \"soon\" for flag -ttl: time: invalid duration \"soon\"\n",
        ),
        (
            &["token", "create", "-orphan=maybe"],
            "invalid boolean value \"maybe\" for -orphan: strconv.ParseBool: parsing \"maybe\": invalid syntax\n",
        ),
        (
            &["token", "create", "-policy"],
            "flag needs an argument: -policy\n",
        ),
    ] {
        assert_eq!(err(&tresor(h, a, Some(ROOT), args)), message);
    }
    let missing = tresor(h, a, Some(ROOT), &["policy", "read"]);
    assert_eq!(err(&missing), "Not enough arguments (expected 1, got 0)\n");

    let refused = tresor(h, a, Some(ROOT), &["policy", "delete", "root"]);
    assert_eq!(refused.status.code(), Some(2));
    assert_eq!(
        err(&refused),
        format!(
            "Error deleting root: Error making API request.\n\nURL: DELETE {a}/v1/sys/policies/acl/root\nCode: 400. Errors:\n\n* cannot delete \"root\" policy\n"
        )
    );
}

/// With a terminal and no argument, `login` prompts for the token without echo (run under
/// `script`, which gives the command a pseudo-terminal).
#[test]
fn login_prompts_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::dev(dir.path(), ROOT);
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new("script")
        .args(["-qec", &format!("{BIN} login"), "/dev/null"])
        .env("HOME", home.path())
        .env("VAULT_ADDR", &server.addr)
        .env_remove("VAULT_TOKEN")
        .env_remove("TRESOR_TOKEN")
        .env_remove("BAO_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("`script` (util-linux/bsdutils) runs the CLI on a pseudo-terminal");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{ROOT}\n").as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let text = out(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", err(&output));
    assert!(text.contains("Token (will be hidden): "), "{text}");
    assert!(
        text.contains("Success! You are now authenticated."),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(helper_file(home.path())).unwrap(),
        ROOT
    );
}
