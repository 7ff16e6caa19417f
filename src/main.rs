//! The `agensium` binary: a thin wrapper over [`agensium::cli`].

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    agensium::cli::run(agensium::cli::Cli::parse()).await
}
