//! The audit state of the request being served: set by the HTTP layer around the whole
//! request (a task-local), filled by the core when the request reaches authorisation, and
//! closed by the HTTP layer with the response.
//!
//! A task-local keeps the hook in one place on each side: the core's authorisation (and the
//! login path) writes the request line before any handler runs, whichever of the many routes
//! led there, and the HTTP layer writes the response line for whatever answer it sends.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tresor_sdk::secret::SecretString;

use super::Device;
use super::entry::{self, AuthInfo, Hasher, MountFields, RequestInfo, ResponseInfo};

tokio::task_local! {
    static CURRENT: Arc<Scope>;
}

/// One request's audit record in progress.
#[derive(Debug)]
pub struct Scope {
    id: String,
    token: Option<SecretString>,
    remote: Option<SocketAddr>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The devices the request line went to; the response goes to the same ones.
    devices: Option<Arc<[Arc<Device>]>>,
    logged: bool,
    auth: AuthInfo,
    request: RequestInfo,
    /// Per device: the rendered `auth` and `request` blocks, reused for the response line.
    rendered: Vec<(Arc<[u8]>, Vec<u8>)>,
    /// The answer as the core gave it, so the response line needs no re-parsing of the body.
    stashed: Option<ResponseInfo>,
    /// Per device, the request line of a request that changes nothing, held back to be written
    /// with the response line.
    held: Vec<Vec<u8>>,
}

/// Why nothing could be recorded: every enabled device failed.
#[derive(Debug, thiserror::Error)]
#[error("no audit device could record the {0}")]
pub struct AuditFailed(pub &'static str);

impl Scope {
    pub fn new(id: String, token: Option<SecretString>, remote: Option<SocketAddr>) -> Arc<Self> {
        Arc::new(Self {
            id,
            token,
            remote,
            state: Mutex::new(State::default()),
        })
    }

    /// Runs `f` with this scope as the current one.
    pub async fn run<F: Future>(self: Arc<Self>, f: F) -> F::Output {
        CURRENT.scope(self, f).await
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the request line was written (or there was nothing to write it to).
    pub fn request_logged(&self) -> bool {
        self.state.lock().map(|s| s.logged).unwrap_or(true)
    }

    /// Whether this request's lines go anywhere (the request line went to at least one
    /// device).
    pub fn auditing(&self) -> bool {
        self.state
            .lock()
            .is_ok_and(|s| s.devices.as_ref().is_some_and(|d| !d.is_empty()))
    }

    /// Keeps the core's answer for the response line.
    pub fn stash_response(&self, response: ResponseInfo) {
        if let Ok(mut state) = self.state.lock() {
            state.stashed = Some(response);
        }
    }

    /// Takes back what [`Scope::stash_response`] kept.
    pub fn take_stashed(&self) -> Option<ResponseInfo> {
        self.state.lock().ok().and_then(|mut s| s.stashed.take())
    }

    /// Writes the request line to every device in `devices`, once per request. `caller` is
    /// `None` before a token is known (logins, unknown tokens).
    ///
    /// With `pure` (a read of an engine whose reads change nothing, by a caller with no use to
    /// spend), the lines are rendered now but written with the response line, in the same
    /// write: half the writes and waits for the commonest request. Nothing is lost by waiting:
    /// such a request has no effect to record before it happens, and its answer still leaves
    /// only once both lines are written (fail closed). Any other request's line is written
    /// before it goes on.
    pub(crate) async fn log_request(
        &self,
        devices: Arc<[Arc<Device>]>,
        mut auth: AuthInfo,
        mut request: RequestInfo,
        error: Option<&str>,
        pure: bool,
    ) -> Result<(), AuditFailed> {
        // Rendered under the lock, written after it: a socket device's write is awaited.
        let lines = {
            let Ok(mut state) = self.state.lock() else {
                return Err(AuditFailed("request"));
            };
            if state.logged {
                return Ok(());
            }
            state.logged = true;
            if devices.is_empty() {
                return Ok(());
            }
            auth.client_token = self.token.clone().filter(|t| !t.expose().is_empty());
            request.id.clone_from(&self.id);
            if let Some(addr) = self.remote {
                request.remote_address = Some(ip_text(addr.ip()));
                request.remote_port = Some(addr.port());
            }
            let mut lines = Vec::with_capacity(devices.len());
            for device in devices.iter() {
                let h = Hasher {
                    salt: &device.salt,
                    format: &device.options.format,
                };
                let ids = entry::caller_ids(&h, &auth);
                let a = entry::auth_block(&auth, &ids);
                let r = entry::render_request(&h, &request, &auth, &ids);
                lines.push(entry::line(
                    &device.options.format,
                    "request",
                    &a,
                    &r,
                    None,
                    error,
                ));
                state.rendered.push((a, r));
            }
            state.auth = auth;
            state.request = request;
            state.devices = Some(Arc::clone(&devices));
            if pure {
                state.held = lines;
                return Ok(());
            }
            lines
        };
        if write_all(&devices, lines).await == 0 {
            crate::metrics::incr(&crate::metrics::global().audit_request_failure);
            return Err(AuditFailed("request"));
        }
        Ok(())
    }

    /// Writes the response line. `list` says the request was a LIST (for
    /// `elide_list_responses`).
    pub async fn log_response(
        &self,
        response: &ResponseInfo,
        list: bool,
        error: Option<&str>,
    ) -> Result<(), AuditFailed> {
        let (devices, lines, held) = {
            let Ok(mut state) = self.state.lock() else {
                return Err(AuditFailed("response"));
            };
            let held = std::mem::take(&mut state.held);
            let Some(devices) = state.devices.as_ref().filter(|d| !d.is_empty()) else {
                return Ok(());
            };
            let mut error_data = None;
            let response = match error {
                // OpenBao's answer to a failed request carries the error as its data.
                Some(e) if response.data.is_none() => {
                    let mut data = Map::new();
                    data.insert("error".into(), Value::String(e.to_owned()));
                    error_data.insert(ResponseInfo {
                        data: Some(data),
                        ..response.clone()
                    })
                }
                _ => response,
            };
            let issued = state.auth.client_token.is_none() && response.auth.is_some();
            // A read's answer is likely to be asked for again (see `rendered`).
            let remember = !held.is_empty() && error.is_none();
            let mut lines = Vec::with_capacity(devices.len());
            for (device, (auth, request)) in devices.iter().zip(state.rendered.iter()) {
                let h = Hasher {
                    salt: &device.salt,
                    format: &device.options.format,
                };
                let body =
                    entry::render_response(&h, &state.request.mount, response, list, remember);
                // A login's caller is the token it was just issued, as in Vault.
                let issued_auth = issued
                    .then_some(response.auth.as_ref())
                    .flatten()
                    .and_then(|a| serde_json::to_vec(&entry::issued_auth(&h, a)).ok());
                let auth = issued_auth.as_deref().unwrap_or(&**auth);
                lines.push(entry::line(
                    &device.options.format,
                    "response",
                    auth,
                    request,
                    Some(&body),
                    error,
                ));
            }
            (Arc::clone(devices), lines, held)
        };
        let held_any = !held.is_empty();
        let written = if held_any {
            write_pairs(&devices, held, lines).await
        } else {
            write_all(&devices, lines).await
        };
        if written == 0 {
            let metrics = crate::metrics::global();
            crate::metrics::incr(&metrics.audit_response_failure);
            if held_any {
                crate::metrics::incr(&metrics.audit_request_failure);
            }
            return Err(AuditFailed("response"));
        }
        Ok(())
    }
}

impl Drop for Scope {
    /// A request whose response line was never written (its handler panicked) still gets its
    /// held request line written, in the background.
    fn drop(&mut self) {
        let Ok(state) = self.state.get_mut() else {
            return;
        };
        let held = std::mem::take(&mut state.held);
        let Some(devices) = state.devices.take().filter(|_| !held.is_empty()) else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                write_all(&devices, held).await;
            });
        }
    }
}

/// Writes each device's line and counts the devices that recorded theirs. One after the
/// other: each socket wait is bounded, and files do not wait at all.
async fn write_all(devices: &[Arc<Device>], lines: Vec<Vec<u8>>) -> usize {
    let mut written = 0;
    for (device, line) in devices.iter().zip(lines) {
        if device.write(line).await {
            written += 1;
        }
    }
    written
}

/// [`write_all`] for held request lines, each written with its device's response line.
async fn write_pairs(devices: &[Arc<Device>], held: Vec<Vec<u8>>, lines: Vec<Vec<u8>>) -> usize {
    let mut written = 0;
    for ((device, request), response) in devices.iter().zip(held).zip(lines) {
        if device.write_pair(request, response).await {
            written += 1;
        }
    }
    written
}

/// The scope of the request being served on this task, if the HTTP layer set one.
pub fn current() -> Option<Arc<Scope>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Mount fields for requests whose mount the core does not route (`sys/`).
/// An address as `Display` writes it. IPv4 (the common case) is written by hand: through
/// `core::fmt` it cost about 1,300 instructions, a twentieth of an audited read's device work.
fn ip_text(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut out = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if octet >= 100 {
            out.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            out.push(char::from(b'0' + octet / 10 % 10));
        }
        out.push(char::from(b'0' + octet % 10));
    }
    out
}

pub(crate) fn system_mount(accessor: String) -> MountFields {
    MountFields {
        point: "sys/".to_owned(),
        mount_type: "system".to_owned(),
        accessor,
        class: "secret",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

    use std::collections::BTreeMap;
    use std::path::Path;

    use tresor_sdk::secret::SecretBytes;

    use super::super::{Device, TableEntry, hash::Salt, options, sink::Sink};
    use super::*;

    #[test]
    fn an_address_is_written_as_display_writes_it() {
        let mut addresses: Vec<IpAddr> = (0..=255u8)
            .map(|o| IpAddr::from([o, o / 10, o % 100, 255 - o]))
            .collect();
        addresses
            .extend(["::1", "fe80::1", "::ffff:10.0.0.1"].map(|a| a.parse::<IpAddr>().unwrap()));
        for ip in addresses {
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }

    fn file_device(path: &Path) -> Arc<[Arc<Device>]> {
        let mut opts = BTreeMap::new();
        opts.insert("file_path".to_owned(), path.to_str().unwrap().to_owned());
        let options = options::parse("file", &opts).unwrap();
        let sink = Sink::new(options.target.clone()).unwrap();
        let device = Device {
            entry: TableEntry {
                path: "file/".to_owned(),
                device_type: "file".to_owned(),
                description: String::new(),
                options: opts,
                local: false,
                uuid: "u".to_owned(),
                accessor: "audit_file_0".to_owned(),
                from_config: false,
            },
            options,
            salt: Salt::new(&SecretBytes::new(vec![7; 32])),
            sink,
        };
        Arc::from(vec![Arc::new(device)])
    }

    fn read_request() -> RequestInfo {
        RequestInfo {
            operation: "read",
            path: "secret/data/x".to_owned(),
            ..RequestInfo::default()
        }
    }

    fn entries(path: &Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn a_pure_request_line_is_written_with_its_response_and_any_other_before() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.log");
        let devices = file_device(&log);

        let held = Scope::new("held-1".to_owned(), None, None);
        held.log_request(
            Arc::clone(&devices),
            AuthInfo::default(),
            read_request(),
            None,
            true,
        )
        .await
        .unwrap();
        assert!(held.request_logged());
        assert!(entries(&log).is_empty(), "the pure request line was held");
        held.log_response(&ResponseInfo::default(), false, None)
            .await
            .unwrap();
        let lines = entries(&log);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["type"], "request");
        assert_eq!(lines[1]["type"], "response");
        assert_eq!(lines[0]["request"]["id"], "held-1");
        assert_eq!(lines[1]["request"]["id"], "held-1");

        let written = Scope::new("now-2".to_owned(), None, None);
        written
            .log_request(
                Arc::clone(&devices),
                AuthInfo::default(),
                read_request(),
                None,
                false,
            )
            .await
            .unwrap();
        let lines = entries(&log);
        assert_eq!(lines.len(), 3, "any other request line is written at once");
        assert_eq!(lines[2]["request"]["id"], "now-2");
    }

    /// Not a test: the CPU cost of an audited KV v2 read's lines on a device that discards them
    /// (rendering and hashing only, no file). `cargo test --release -p tresor-core --lib
    /// audit_render_cost -- --ignored --nocapture`.
    #[tokio::test]
    #[ignore = "a measurement, not a test"]
    async fn audit_render_cost() {
        let mut opts = BTreeMap::new();
        opts.insert("file_path".to_owned(), "discard".to_owned());
        let options = options::parse("file", &opts).unwrap();
        let device = Device {
            entry: TableEntry {
                path: "file/".to_owned(),
                device_type: "file".to_owned(),
                description: String::new(),
                options: opts,
                local: false,
                uuid: "u".to_owned(),
                accessor: "audit_file_0".to_owned(),
                from_config: false,
            },
            sink: Sink::new(options.target.clone()).unwrap(),
            options,
            salt: Salt::new(&SecretBytes::new(vec![7; 32])),
        };
        let devices: Arc<[Arc<Device>]> = Arc::from(vec![Arc::new(device)]);
        let field = "x".repeat(120);
        let data: Map<String, Value> = (0..8)
            .map(|i| (format!("f{i}"), Value::String(field.clone())))
            .collect();
        let mut answer = Map::new();
        answer.insert("data".into(), Value::Object(data));
        answer.insert(
            "metadata".into(),
            serde_json::json!({"created_time": "2026-12-07T14:24:55.123456789Z",
                "custom_metadata": null, "deletion_time": "", "destroyed": false, "version": 1}),
        );
        let auth = AuthInfo {
            accessor: Some("accessor-abcdefghijklmnopqrstuvwx".to_owned()),
            display_name: "token".to_owned(),
            policies: vec!["default".to_owned(), "ro".to_owned()],
            token_policies: vec!["default".to_owned(), "ro".to_owned()],
            allowed: Some(true),
            token_type: "service",
            token_ttl: 86400,
            token_issue_time: Some("2026-12-07T14:24:55Z".to_owned()),
            ..AuthInfo::default()
        };
        let token = SecretString::from("s.abcdefghijklmnopqrstuvwx".to_owned());
        let response = ResponseInfo {
            data: Some(answer),
            ..ResponseInfo::default()
        };
        let mut best = f64::MAX;
        for _ in 0..5 {
            let n = 20_000;
            let start = std::time::Instant::now();
            for i in 0..n {
                let scope = Scope::new(
                    format!("id-{i}"),
                    Some(token.clone()),
                    Some("127.0.0.1:5000".parse().unwrap()),
                );
                let mut request = read_request();
                request.mount.point = "bench-kv/".to_owned();
                request.mount.mount_type = "kv".to_owned();
                scope
                    .log_request(Arc::clone(&devices), auth.clone(), request, None, true)
                    .await
                    .unwrap();
                scope.log_response(&response, false, None).await.unwrap();
            }
            best = best.min(start.elapsed().as_secs_f64() * 1e9 / f64::from(n));
        }
        println!("audit lines of one KV v2 read: {best:.0} ns (best of 5)");
    }

    /// The caller's `auth` block is rendered once per device and verdict and reused: the
    /// allowed and the denied request of the same token each carry their own verdict, and the
    /// reused block is the one a fresh rendering gives.
    #[tokio::test]
    async fn a_callers_remembered_auth_block_keeps_each_verdict() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.log");
        let devices = file_device(&log);
        let token = SecretString::from("s.remembered-caller".to_owned());
        let caller = |allowed| AuthInfo {
            accessor: Some("accessor-remembered".to_owned()),
            display_name: "token-app".to_owned(),
            policies: vec!["ro".to_owned()],
            token_policies: vec!["ro".to_owned()],
            allowed,
            token_type: "service",
            token_ttl: 3600,
            ..AuthInfo::default()
        };
        for (i, allowed) in [true, false, true, false].into_iter().enumerate() {
            let scope = Scope::new(format!("v-{i}"), Some(token.clone()), None);
            scope
                .log_request(
                    Arc::clone(&devices),
                    caller(Some(allowed)),
                    read_request(),
                    None,
                    false,
                )
                .await
                .unwrap();
        }
        let lines = entries(&log);
        assert_eq!(lines.len(), 4);
        for (line, allowed) in lines.iter().zip([true, false, true, false]) {
            assert_eq!(line["auth"]["policy_results"]["allowed"], allowed, "{line}");
            assert_eq!(line["auth"]["display_name"], "token-app");
            assert_eq!(line["auth"]["policies"], serde_json::json!(["ro"]));
        }
        // What a device with an empty memo renders for the same caller.
        let h = Hasher {
            salt: &devices[0].salt,
            format: &devices[0].options.format,
        };
        let auth = caller(Some(false));
        let mut with_token = auth.clone();
        with_token.client_token = Some(token.clone());
        let fresh = entry::render_auth(&with_token, &entry::caller_ids(&h, &with_token));
        let fresh: Value = serde_json::from_slice(&fresh).unwrap();
        assert_eq!(lines[3]["auth"], fresh);
        assert!(
            !lines[3].to_string().contains("s.remembered-caller"),
            "the token is hashed"
        );
    }

    #[tokio::test]
    async fn a_held_request_line_that_cannot_be_written_fails_the_response() {
        let dir = tempfile::tempdir().unwrap();
        // The parent is a regular file: the device cannot write.
        let blocker = dir.path().join("logs");
        std::fs::write(&blocker, b"not a directory").unwrap();
        let devices = file_device(&blocker.join("audit.log"));
        let scope = Scope::new("held-3".to_owned(), None, None);
        // Held: nothing was tried yet, so the request goes on ...
        scope
            .log_request(devices, AuthInfo::default(), read_request(), None, true)
            .await
            .unwrap();
        // ... and its answer is refused, since neither line could be written.
        assert!(
            scope
                .log_response(&ResponseInfo::default(), false, None)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_scope_dropped_before_its_response_still_writes_its_held_request_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.log");
        let devices = file_device(&log);
        let scope = Scope::new("dropped-4".to_owned(), None, None);
        scope
            .log_request(devices, AuthInfo::default(), read_request(), None, true)
            .await
            .unwrap();
        drop(scope);
        for _ in 0..200 {
            if !entries(&log).is_empty() {
                break;
            }
            tokio::task::yield_now().await;
        }
        let lines = entries(&log);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["type"], "request");
        assert_eq!(lines[0]["request"]["id"], "dropped-4");
    }
}
