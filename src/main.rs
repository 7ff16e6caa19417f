//! The `agensium` binary: a thin wrapper over [`agensium::cli`].

use std::process::ExitCode;

use clap::Parser;

// jemalloc for the whole process, including DuckDB's C++ allocations (unprefixed `malloc`):
// DuckDB's own builds use jemalloc, and its parallel CSV reader and Parquet writer spend
// much of their time allocating (perf/RESULTS.md has the comparison).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

// jemalloc's options, read before `main` (the `malloc_conf` symbol of an unprefixed jemalloc;
// `MALLOC_CONF` in the environment still overrides them). By default jemalloc keeps freed pages
// for ten seconds and returns them only while the process allocates; DuckDB frees and
// reallocates its buffers all the time, so the process held up to ~170 MB of freed pages above
// DuckDB's memory limit during a cleanse (perf/RESULTS.md). DuckDB's own builds purge their
// arenas themselves; here jemalloc's background threads return freed pages after about a
// second.
#[cfg(all(target_os = "linux", not(target_env = "msvc")))]
#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static malloc_conf: &[u8; 60] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// Stack of every runtime thread, the blocking pool's included. DuckDB plans on the calling
/// thread, and its optimizer recurses once per join of a query (about 3 KB a join): a Clean
/// My Data plan over a file of 750 columns (a step and a join per column) overflowed the
/// default 2 MiB, which aborts the whole process; 16 MiB holds over 5,000. A stack is
/// reserved, not committed: the untouched part costs address space only (the blocking pool's
/// 512 threads at most reserve 8 GiB).
const THREAD_STACK_BYTES: usize = 16 * 1024 * 1024;

fn main() -> ExitCode {
    let cli = agensium::cli::Cli::parse();
    // A co-pilot query's own process needs no runtime: it reads, queries, answers and exits.
    if cli.is_sandbox_query() {
        return agensium::engine::sandbox::process::child_main();
    }
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK_BYTES)
        .build()
    {
        Ok(runtime) => {
            let code = runtime.block_on(agensium::cli::run(cli));
            // Blocking work left running when the command ends — an ingest a stopping server
            // abandoned after SHUTDOWN_TIMEOUT, converting a workbook, which nothing can
            // interrupt — is not waited for: the runtime would wait for it to finish.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            code
        }
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}
