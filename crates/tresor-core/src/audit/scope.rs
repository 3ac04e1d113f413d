//! The audit state of the request being served: set by the HTTP layer around the whole
//! request (a task-local), filled by the core when the request reaches authorisation, and
//! closed by the HTTP layer with the response.
//!
//! A task-local keeps the hook in one place on each side: the core's authorisation (and the
//! login path) writes the request line before any handler runs, whichever of the many routes
//! led there, and the HTTP layer writes the response line for whatever answer it sends.

use std::future::Future;
use std::net::SocketAddr;
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
    rendered: Vec<(Vec<u8>, Vec<u8>)>,
    /// The answer as the core gave it, so the response line needs no re-parsing of the body.
    stashed: Option<ResponseInfo>,
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
    pub(crate) async fn log_request(
        &self,
        devices: Arc<[Arc<Device>]>,
        mut auth: AuthInfo,
        mut request: RequestInfo,
        error: Option<&str>,
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
                request.remote_address = Some(addr.ip().to_string());
                request.remote_port = Some(addr.port());
            }
            let mut lines = Vec::with_capacity(devices.len());
            for device in devices.iter() {
                let h = Hasher {
                    salt: &device.salt,
                    format: &device.options.format,
                };
                let ids = entry::caller_ids(&h, &auth);
                let a = entry::render_auth(&auth, &ids);
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
        let (devices, lines) = {
            let Ok(state) = self.state.lock() else {
                return Err(AuditFailed("response"));
            };
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
            let mut lines = Vec::with_capacity(devices.len());
            for (device, (auth, request)) in devices.iter().zip(state.rendered.iter()) {
                let h = Hasher {
                    salt: &device.salt,
                    format: &device.options.format,
                };
                let body = entry::render_response(&h, &state.request.mount, response, list);
                // A login's caller is the token it was just issued, as in Vault.
                let issued_auth = issued
                    .then_some(response.auth.as_ref())
                    .flatten()
                    .and_then(|a| serde_json::to_vec(&entry::issued_auth(&h, a)).ok());
                let auth = issued_auth.as_deref().unwrap_or(auth);
                lines.push(entry::line(
                    &device.options.format,
                    "response",
                    auth,
                    request,
                    Some(&body),
                    error,
                ));
            }
            (Arc::clone(devices), lines)
        };
        if write_all(&devices, lines).await == 0 {
            crate::metrics::incr(&crate::metrics::global().audit_response_failure);
            return Err(AuditFailed("response"));
        }
        Ok(())
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

/// The scope of the request being served on this task, if the HTTP layer set one.
pub fn current() -> Option<Arc<Scope>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Mount fields for requests whose mount the core does not route (`sys/`).
pub(crate) fn system_mount(accessor: String) -> MountFields {
    MountFields {
        point: "sys/".to_owned(),
        mount_type: "system".to_owned(),
        accessor,
        class: "secret",
    }
}
