//! The `agensium` binary: a thin wrapper over [`agensium::cli`].

use std::process::ExitCode;

use clap::Parser;

// jemalloc for the whole process, including DuckDB's C++ allocations (unprefixed `malloc`):
// DuckDB's own builds use jemalloc, and its parallel CSV reader and Parquet writer spend
// much of their time allocating (perf/RESULTS.md has the comparison).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    agensium::cli::run(agensium::cli::Cli::parse()).await
}
