//! `tresor lint` without the rest of the `tresor` binary: the same arguments and exit codes,
//! built from this crate alone, so its memory and output can be measured and compared
//! between versions without building the server.
//!
//! ```text
//! cargo run --release -p tresor-lint --example lint -- --format json DIR
//! ```

use std::process::ExitCode;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "tresor-lint")]
struct Cli {
    #[command(flatten)]
    args: tresor_lint::cli::LintArgs,
}

fn main() -> ExitCode {
    tresor_lint::cli::run(Cli::parse().args)
}
