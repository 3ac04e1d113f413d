//! `tresor`: the secrets server and its command-line client in one binary.
//!
//! # Layout
//! - `cli`: argument parsing (clap), Vault-style single-dash flag support, and the client
//!   commands (`operator …`, `status`, `version`).
//! - `server`: `tresor server`: config or dev-mode setup, storage, listeners, signals.
//! - `migrate`: `tresor operator migrate`: copying a stopped server's entries to another
//!   store (embedded ↔ postgresql), the migration lock, progress on stderr.
//! - `client`: the HTTP client the CLI commands share (address, token, TLS from env/flags).
//! - `token_helper`: Vault's token helper, the CLI's token in `~/.vault-token`.

mod cli;
mod client;
mod migrate;
mod server;
mod token_helper;

use std::process::ExitCode;

// Reads after write churn stay fast with mimalloc; glibc malloc lost a third of KV read
// throughput in the probe (shared/reference/performance.md §2.2).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Both rustls users (the server's listeners, the client's reqwest) use ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::from(1)
        }
    }
}
