//! Scenario files: what a scenario is, how it is loaded and validated, and how `{{var}}`
//! references in a step are filled in from earlier captures.
//!
//! A scenario file (`scenarios/NAME.json`):
//! ```json
//! {
//!   "name": "unseal",                      // must equal the file name
//!   "description": "why this scenario exists",
//!   "server": "fresh",                     // "dev": dev server, root token `root`;
//!                                          // "fresh": uninitialised server, inmem storage
//!   "client": "bao",                       // CLI steps: "bao" (default) runs `bao` against
//!                                          // both servers; "own" runs `bao` against OpenBao
//!                                          // and the `tresor` CLI against Tresor
//!   "kube_apiserver": SEED,                // optional: start the fake Kubernetes API server
//!                                          // (`fakes.rs`) for both servers, seeded with SEED
//!   "postgres": true,                      // optional: a database, admin role and static
//!                                          // user per server in the real PostgreSQL, and the
//!                                          // `pg_*` variables (`postgres.rs`); "dev" only
//!   "listener": {"key": "value"},          // optional: extra `listener "tcp"` settings for
//!                                          // both servers (e.g. `disable_unauthed_rekey_endpoints`);
//!                                          // "fresh" only
//!   "seal": "static",                      // optional: both fresh servers auto-unseal with the
//!                                          // same `seal "static"` key (recovery keys instead
//!                                          // of unseal keys); "fresh" only
//!   "steps": [ STEP, … ]
//! }
//! ```
//! An HTTP step: `method` (any, incl. `LIST`, `HEAD`), `path` (from the first `/`, query
//! included), `headers` (object), and at most one body: `body` (any JSON value, sent as JSON),
//! `raw_body` (a string sent byte for byte, for malformed bodies) or
//! `body_repeat` (`{"text":"a","times":33554433}`, for oversized bodies).
//! A CLI step: `cli` (arguments of `bao`), `env` (extra environment; `BAO_ADDR` is set to the
//! server under test, nothing else is inherited).
//! Both kinds: `note` (what the step checks), `capture` (`{"var":"json.path"}` from the JSON
//! body / JSON stdout), `capture_label` (`{"var":"Table Label"}` from CLI table output),
//! `compare` (default true; false compares only the status / exit code), `expect_status` /
//! `expect_exit` (both servers must answer that, so a typo cannot make both fail alike).
//! Each server has its own variables: `addr`, `root_token` (dev servers) and the captures.
//! `{{!text}}` is written as `{{text}}` (templates the server fills in, e.g. `{{!.RoleName}}`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::postgres::TEMPLATES;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerKind {
    Dev,
    Fresh,
}

/// Which CLI a scenario's CLI steps run on the Tresor side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientKind {
    /// `bao` against both servers: tests Tresor's server with OpenBao's client.
    #[default]
    Bao,
    /// Each server with its own CLI: tests the `tresor` CLI against `bao`.
    Own,
}

#[derive(Debug)]
pub struct Scenario {
    pub name: String,
    pub server: ServerKind,
    pub client: ClientKind,
    /// The fake Kubernetes API server's seed, when the scenario needs one.
    pub kube_apiserver: Option<Value>,
    /// Whether the scenario gets PostgreSQL fixtures (`postgres.rs`).
    pub postgres: bool,
    /// Extra HCL lines for the `listener "tcp"` block of both fresh servers.
    pub listener: String,
    /// Extra top-level HCL for both fresh servers (a `seal` block).
    pub config: String,
    pub steps: Vec<Step>,
}

#[derive(Debug)]
pub struct Step {
    /// 1-based, as printed and as referenced from DIFFERENCES.md.
    pub number: usize,
    pub note: String,
    pub action: Action,
    pub capture: BTreeMap<String, String>,
    pub capture_label: BTreeMap<String, String>,
    pub compare: bool,
    pub expect: Option<i64>,
}

#[derive(Debug)]
pub enum Action {
    Http(HttpStep),
    Cli(CliStep),
}

#[derive(Debug)]
pub struct HttpStep {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: BodySpec,
}

#[derive(Debug)]
pub enum BodySpec {
    None,
    Json(Value),
    Raw(String),
    Repeat { text: String, times: usize },
}

#[derive(Debug)]
pub struct CliStep {
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
}

impl Scenario {
    pub fn cli_steps(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s.action, Action::Cli(_)))
            .count()
    }
}

impl Step {
    /// What normalisation rules and differences scope on: `sys/init` for HTTP steps (the path
    /// without `/v1/` and query), `bao operator init -format=json` for CLI steps.
    pub fn request_key(&self) -> String {
        match &self.action {
            Action::Http(h) => {
                let path = h.path.split('?').next().unwrap_or("");
                path.strip_prefix("/v1/").unwrap_or(path).to_owned()
            }
            Action::Cli(c) => format!("bao {}", c.args.join(" ")),
        }
    }

    /// One line describing the request, for reports.
    pub fn describe(&self) -> String {
        match &self.action {
            Action::Http(h) => {
                let body = match &h.body {
                    BodySpec::None => String::new(),
                    BodySpec::Json(v) => format!(" {v}"),
                    BodySpec::Raw(s) => format!(" raw {s:?}"),
                    BodySpec::Repeat { text, times } => format!(" {text:?} x {times}"),
                };
                let headers: Vec<String> = h
                    .headers
                    .iter()
                    .map(|(k, v)| format!(" [{k}: {v}]"))
                    .collect();
                format!("{} {}{}{}", h.method, h.path, headers.concat(), body)
            }
            Action::Cli(c) => {
                let env: Vec<String> = c.env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
                format!("{}bao {}", env.concat(), c.args.join(" "))
            }
        }
    }
}

/// The on-disk form; unknown keys are errors so a misspelt field cannot be silently ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    name: String,
    #[allow(dead_code, reason = "documentation for readers of the file")]
    description: String,
    server: ServerKind,
    #[serde(default)]
    client: ClientKind,
    #[serde(default)]
    kube_apiserver: Option<Value>,
    #[serde(default)]
    postgres: bool,
    #[serde(default)]
    listener: BTreeMap<String, String>,
    #[serde(default)]
    seal: Option<String>,
    steps: Vec<StepFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    #[serde(default)]
    note: String,
    method: Option<String>,
    path: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: Option<Value>,
    raw_body: Option<String>,
    body_repeat: Option<Repeat>,
    cli: Option<Vec<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    capture: BTreeMap<String, String>,
    #[serde(default)]
    capture_label: BTreeMap<String, String>,
    #[serde(default = "yes")]
    compare: bool,
    expect_status: Option<u16>,
    expect_exit: Option<i32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Repeat {
    text: String,
    times: usize,
}

fn yes() -> bool {
    true
}

/// Loads every `*.json` in `dir`, sorted by name.
pub fn load_all(dir: &Path) -> Result<Vec<Scenario>, String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files.iter().map(|f| load(f)).collect()
}

fn load(file: &Path) -> Result<Scenario, String> {
    let at = |e: String| format!("{}: {e}", file.display());
    let text = std::fs::read_to_string(file).map_err(|e| at(e.to_string()))?;
    let raw: ScenarioFile = serde_json::from_str(&text).map_err(|e| at(e.to_string()))?;
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if raw.name != stem {
        return Err(at(format!(
            "scenario name {:?} must equal the file name {stem:?}",
            raw.name
        )));
    }
    let steps = raw
        .steps
        .into_iter()
        .enumerate()
        .map(|(i, s)| step(i + 1, s).map_err(|e| at(format!("step {}: {e}", i + 1))))
        .collect::<Result<Vec<_>, _>>()?;
    if raw.postgres {
        if raw.server != ServerKind::Dev {
            return Err(at(
                "postgres scenarios run on dev servers (the runner revokes every \
                           database lease with the root token at the end)"
                    .into(),
            ));
        }
        for s in &steps {
            if let Some(var) = s.capture.keys().find(|v| TEMPLATES.contains(&v.as_str())) {
                return Err(at(format!(
                    "step {}: {{{{{var}}}}} is a database template in postgres scenarios; \
                     capture into another name",
                    s.number
                )));
            }
        }
    }
    if !raw.listener.is_empty() && raw.server != ServerKind::Fresh {
        return Err(at(
            "listener settings apply to \"fresh\" servers only".into()
        ));
    }
    let listener = raw
        .listener
        .iter()
        .map(|(k, v)| format!("  {k} = {v}\n"))
        .collect();
    let config = match raw.seal.as_deref() {
        None => String::new(),
        Some(_) if raw.server != ServerKind::Fresh => {
            return Err(at("a seal applies to \"fresh\" servers only".into()));
        }
        // A fixed test key: both servers wrap their root keys with it.
        Some("static") => "seal \"static\" {\n  current_key_id = \"compat-1\"\n  current_key    = \"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"\n}\n".to_owned(),
        Some(other) => return Err(at(format!("unknown seal {other:?}; only \"static\""))),
    };
    Ok(Scenario {
        name: raw.name,
        listener,
        config,
        server: raw.server,
        client: raw.client,
        kube_apiserver: raw.kube_apiserver,
        postgres: raw.postgres,
        steps,
    })
}

fn step(number: usize, s: StepFile) -> Result<Step, String> {
    let action = match (s.cli, s.method, s.path) {
        (Some(args), None, None) => {
            if s.body.is_some() || s.raw_body.is_some() || s.body_repeat.is_some() {
                return Err("a CLI step has no body".into());
            }
            if !s.headers.is_empty() || s.expect_status.is_some() {
                return Err("a CLI step has no headers or status; use env / expect_exit".into());
            }
            Action::Cli(CliStep { args, env: s.env })
        }
        (None, Some(method), Some(path)) => {
            if !path.starts_with('/') {
                return Err(format!("path {path:?} must start with `/`"));
            }
            if !s.env.is_empty() || s.expect_exit.is_some() || !s.capture_label.is_empty() {
                return Err("env, expect_exit and capture_label are for CLI steps".into());
            }
            let body = match (s.body, s.raw_body, s.body_repeat) {
                (None, None, None) => BodySpec::None,
                (Some(v), None, None) => BodySpec::Json(v),
                (None, Some(r), None) => BodySpec::Raw(r),
                (None, None, Some(r)) => BodySpec::Repeat {
                    text: r.text,
                    times: r.times,
                },
                _ => return Err("use only one of body, raw_body, body_repeat".into()),
            };
            Action::Http(HttpStep {
                method,
                path,
                headers: s.headers,
                body,
            })
        }
        _ => return Err("a step has either `cli`, or `method` and `path`".into()),
    };
    Ok(Step {
        number,
        note: s.note,
        action,
        capture: s.capture,
        capture_label: s.capture_label,
        compare: s.compare,
        expect: s
            .expect_status
            .map(i64::from)
            .or(s.expect_exit.map(i64::from)),
    })
}

/// One server's variables: `addr`, `root_token` and whatever earlier steps captured.
pub type Vars = BTreeMap<String, String>;

/// Replaces every `{{name}}`; an unknown name is an error (a capture that failed earlier
/// must not turn into an empty string that both servers reject alike). `{{!text}}` becomes
/// `{{text}}`.
pub fn fill(text: &str, vars: &Vars) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("unclosed `{{{{` in {text:?}"))?;
        if let Some(literal) = after[..end].strip_prefix('!') {
            out.push_str("{{");
            out.push_str(literal);
            out.push_str("}}");
            rest = &after[end + 2..];
            continue;
        }
        let name = after[..end].trim();
        let value = vars
            .get(name)
            .ok_or_else(|| format!("unknown variable {{{{{name}}}}} in {text:?}"))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `fill` applied to every string (keys and values) inside a JSON value.
pub fn fill_json(value: &Value, vars: &Vars) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => Value::String(fill(s, vars)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| fill_json(v, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((fill(k, vars)?, fill_json(v, vars)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}
