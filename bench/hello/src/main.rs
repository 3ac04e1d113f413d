//! `tresor-bench-hello`: the yardstick `bench/run` measures beside OpenBao and Tresor in every
//! round. It answers `GET /v1/sys/health` with a fixed 41-byte JSON body and does nothing
//! else, built with the workspace's release profile (fat LTO, one codegen unit, abort on
//! panic) and the allocator Tresor uses (mimalloc), on tokio's multi-threaded runtime like
//! Tresor. A workload's rate divided by this server's rate, measured at the same concurrency
//! in the same round, tells how close a server comes to what the machine can serve at all.
//!
//! Usage: `tresor-bench-hello ADDRESS [CERT_PEM KEY_PEM]`. With a certificate and key it
//! serves TLS (rustls with ring, as Tresor's listeners), for the TLS workloads.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use axum::serve::ListenerExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// 41 bytes, about the size of a small Vault answer's envelope.
const BODY: &str = r#"{"initialized":true,"sealed":false,"n":1}"#;

fn app() -> Router {
    Router::new().route(
        "/v1/sys/health",
        get(|| async { ([(header::CONTENT_TYPE, "application/json")], BODY) }),
    )
}

fn tls_config(cert: &str, key: &str) -> Result<rustls::ServerConfig, String> {
    let read = |path: &str| std::fs::read(path).map_err(|e| format!("{path}: {e}"));
    let certs = rustls_pemfile::certs(&mut read(cert)?.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{cert}: {e}"))?;
    let key = rustls_pemfile::private_key(&mut read(key)?.as_slice())
        .map_err(|e| format!("{key}: {e}"))?
        .ok_or_else(|| format!("{key}: no private key"))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

async fn serve_tls(listener: tokio::net::TcpListener, config: rustls::ServerConfig) {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let service = TowerToHyperService::new(app());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (acceptor, service) = (acceptor.clone(), service.clone());
        tokio::spawn(async move {
            if let Ok(tls) = acceptor.accept(stream).await {
                let _ = Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            }
        });
    }
}

async fn run(address: SocketAddr, tls: Option<rustls::ServerConfig>) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("bind {address}: {e}"))?;
    match tls {
        Some(config) => serve_tls(listener, config).await,
        None => {
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, app())
                .await
                .map_err(|e| e.to_string())?
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match args.as_slice() {
        [address] => address
            .parse()
            .map(|a| (a, None))
            .map_err(|e| format!("{e}")),
        [address, cert, key] => address
            .parse()
            .map_err(|e| format!("{e}"))
            .and_then(|a| tls_config(cert, key).map(|t| (a, Some(t)))),
        _ => Err("usage: tresor-bench-hello ADDRESS [CERT_PEM KEY_PEM]".to_owned()),
    };
    let result = parsed.and_then(|(address, tls)| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(run(address, tls))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tresor-bench-hello: {err}");
            ExitCode::from(1)
        }
    }
}
