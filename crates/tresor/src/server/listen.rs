//! Listeners: plain or TLS (rustls), all sharing one router, all drained on shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use axum::Router;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use tokio::task::JoinSet;
use tresor_config::ListenerConfig;

/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

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
    handles: Vec<Handle<SocketAddr>>,
    tasks: JoinSet<std::io::Result<()>>,
}

/// Binds every listener; returns once all accept connections (or the first fails).
pub async fn start(listeners: &[ListenerConfig], app: Router) -> Result<Servers> {
    let mut servers = Servers {
        bound: Vec::new(),
        handles: Vec::new(),
        tasks: JoinSet::new(),
    };
    for listener in listeners {
        let handle = Handle::new();
        // Connection info gives handlers the client address (CIDR-bound tokens and secret ids).
        let options = tresor_http::ListenerOptions {
            unauthed_rekey: !listener.disable_unauthed_rekey_endpoints,
        };
        let service = app
            .clone()
            .layer(axum::Extension(options))
            .into_make_service_with_connect_info::<SocketAddr>();
        match &listener.tls {
            None => {
                let server = axum_server::bind(listener.address).handle(handle.clone());
                servers
                    .tasks
                    .spawn(async move { server.serve(service).await });
            }
            Some(files) => {
                let tls = tresor_config::load_tls(files)?;
                let server =
                    axum_server::bind_rustls(listener.address, RustlsConfig::from_config(tls))
                        .handle(handle.clone());
                servers
                    .tasks
                    .spawn(async move { server.serve(service).await });
            }
        }
        let Some(addr) = handle.listening().await else {
            // The task has finished with the bind error; report it.
            let err = match servers.tasks.join_next().await {
                Some(Ok(Err(e))) => anyhow!(e),
                _ => anyhow!("listener stopped before accepting connections"),
            };
            return Err(err).with_context(|| format!("could not listen on {}", listener.address));
        };
        servers.bound.push(Bound {
            addr,
            tls: listener.tls.is_some(),
        });
        servers.handles.push(handle);
    }
    Ok(servers)
}

impl Servers {
    /// Serves until SIGINT/SIGTERM (or a listener fails), then stops accepting and lets
    /// in-flight requests finish.
    pub async fn run_until_shutdown(mut self) -> Result<()> {
        let outcome = tokio::select! {
            signal = shutdown_signal() => {
                tracing::info!(signal, "shutting down: draining in-flight requests");
                Ok(())
            }
            Some(joined) = self.tasks.join_next() => match joined {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(anyhow!(e).context("listener failed")),
                Err(e) => Err(anyhow!(e).context("listener task failed")),
            },
        };
        for handle in &self.handles {
            handle.graceful_shutdown(Some(DRAIN_TIMEOUT));
        }
        while let Some(joined) = self.tasks.join_next().await {
            if let Ok(Err(e)) = joined {
                tracing::warn!(error = %e, "listener ended with an error during shutdown");
            }
        }
        outcome
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
