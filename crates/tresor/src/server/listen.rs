//! Listeners: plain or TLS (rustls), all sharing one router, all drained on shutdown.
//!
//! Each listener runs its own accept loop. With `max_connections`, the loop takes a permit
//! before it accepts, so connections beyond the limit wait in the kernel's backlog instead of
//! holding a file descriptor and a task. Each connection is served by [`connection`]: the TLS
//! handshake under the header timeout, then HTTP/1.1 or h2 under the phase limits that
//! [`super::watch`] enforces.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tresor_config::{ListenerConfig, ListenerLimits};

use super::service;
use super::watch::{ConnState, Watched};

/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause after a failed accept (e.g. out of file descriptors) before trying again, so the
/// loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

#[derive(Debug)]
pub struct Bound {
    pub addr: SocketAddr,
    pub tls: bool,
}

impl Bound {
    pub fn url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.addr
        )
    }

    pub fn describe(&self) -> String {
        format!(
            "tcp (addr: \"{}\", tls: \"{}\")",
            self.addr,
            if self.tls { "enabled" } else { "disabled" }
        )
    }
}

#[derive(Debug)]
pub struct Servers {
    pub bound: Vec<Bound>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

/// Binds every listener; returns once all accept connections (or the first fails).
pub async fn start(listeners: &[ListenerConfig], app: Router) -> Result<Servers> {
    let (shutdown, _) = watch::channel(false);
    let mut servers = Servers {
        bound: Vec::new(),
        shutdown,
        tasks: JoinSet::new(),
    };
    for listener in listeners {
        // Per-listener options reach the dispatcher as a request extension.
        let options = tresor_http::ListenerOptions {
            unauthed_rekey: !listener.disable_unauthed_rekey_endpoints,
            unauthed_generate_root: !listener.disable_unauthed_generate_root_endpoints,
            unauthenticated_metrics: listener.telemetry.unauthenticated_metrics_access,
            unauthenticated_in_flight: listener.telemetry.unauthenticated_in_flight_requests_access,
        };
        let tls = match &listener.tls {
            None => None,
            Some(files) => Some(TlsAcceptor::from(tresor_config::load_tls(files)?)),
        };
        let socket = TcpListener::bind(listener.address)
            .await
            .with_context(|| format!("could not listen on {}", listener.address))?;
        let addr = socket
            .local_addr()
            .with_context(|| format!("could not listen on {}", listener.address))?;
        servers.bound.push(Bound {
            addr,
            tls: tls.is_some(),
        });
        let accept = AcceptLoop {
            socket,
            tls,
            app: app.clone().layer(axum::Extension(options)),
            limits: listener.limits,
            shutdown: servers.shutdown.subscribe(),
        };
        servers.tasks.spawn(accept.run());
    }
    Ok(servers)
}

impl Servers {
    /// Serves until SIGINT/SIGTERM, then stops accepting and lets in-flight requests finish.
    pub async fn run_until_shutdown(mut self) -> Result<()> {
        let outcome = tokio::select! {
            signal = shutdown_signal() => {
                tracing::info!(signal, "shutting down: draining in-flight requests");
                Ok(())
            }
            Some(joined) = self.tasks.join_next() => Err(match joined {
                Ok(()) => anyhow!("a listener stopped"),
                Err(e) => anyhow!(e).context("listener task failed"),
            }),
        };
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
        outcome
    }
}

struct AcceptLoop {
    socket: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: ListenerLimits,
    shutdown: watch::Receiver<bool>,
}

impl AcceptLoop {
    async fn run(mut self) {
        let permits = self
            .limits
            .max_connections
            .map(|n| Arc::new(Semaphore::new(n)));
        let mut connections = JoinSet::new();
        loop {
            // Finished connections are reaped as we go, so the set holds only live ones.
            while connections.try_join_next().is_some() {}
            let permit = match &permits {
                None => None,
                Some(permits) => tokio::select! {
                    permit = Arc::clone(permits).acquire_owned() => permit.ok(),
                    _ = self.shutdown.changed() => break,
                },
            };
            let accepted = tokio::select! {
                accepted = self.socket.accept() => accepted,
                _ = self.shutdown.changed() => break,
            };
            let (stream, remote) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let conn = Connection {
                app: self.app.clone(),
                limits: self.limits,
                remote,
                shutdown: self.shutdown.clone(),
            };
            let tls = self.tls.clone();
            connections.spawn(async move {
                conn.serve(stream, tls).await;
                drop(permit);
            });
        }
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = connections.len(),
                "connections still busy after the drain timeout; closing them"
            );
            connections.shutdown().await;
        }
    }
}

struct Connection {
    app: Router,
    limits: ListenerLimits,
    remote: SocketAddr,
    shutdown: watch::Receiver<bool>,
}

impl Connection {
    async fn serve(self, stream: TcpStream, tls: Option<TlsAcceptor>) {
        match tls {
            None => self.http(stream).await,
            Some(acceptor) => {
                // As in Go's server, a handshake gets the header timeout: a client that opens a
                // TLS connection and stalls holds nothing for longer than one that stalls in
                // plain HTTP.
                let handshake =
                    tokio::time::timeout(self.limits.read_header_timeout, acceptor.accept(stream))
                        .await;
                match handshake {
                    Ok(Ok(stream)) => self.http(stream).await,
                    Ok(Err(e)) => {
                        tracing::debug!(remote = %self.remote, error = %e, "TLS handshake failed");
                    }
                    Err(_) => tracing::debug!(
                        remote = %self.remote,
                        "TLS handshake not completed within http_read_header_timeout"
                    ),
                }
            }
        }
    }

    async fn http<S>(mut self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let state = ConnState::new(self.limits);
        let io = TokioIo::new(Watched::new(stream, Arc::clone(&state)));
        let (app, limits, remote) = (self.app.clone(), self.limits, self.remote);
        let conn_state = Arc::clone(&state);
        let handler = hyper::service::service_fn(move |request| {
            service::serve(
                app.clone(),
                Arc::clone(&conn_state),
                limits,
                remote,
                request,
            )
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // Header and idle time are enforced by the watchdog below; hyper's own header timer
        // would also cut idle keep-alive connections at the header timeout.
        builder.http1().header_read_timeout(None);
        let conn = builder.serve_connection(io, handler);
        tokio::pin!(conn);
        let mut draining = *self.shutdown.borrow();
        if draining {
            conn.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(remote = %self.remote, error = %e, "connection ended with an error");
                    }
                    return;
                }
                why = state.expired() => {
                    tracing::debug!(remote = %self.remote, reason = why.describe(), "closing connection");
                    return;
                }
                changed = self.shutdown.changed(), if !draining => {
                    draining = true;
                    if changed.is_ok() {
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}
