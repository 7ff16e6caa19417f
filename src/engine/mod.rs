//! The embedded DuckDB engine: the one module that talks to DuckDB.
//!
//! DuckDB calls block, so every call runs in `spawn_blocking` on its own connection,
//! cloned from a root connection (a `duckdb::Connection` is `Send` but not `Sync`). No
//! connection is ever held across an `.await`. The database is configured once, at open:
//! memory limit, threads, a temp directory to spill to, and no extension downloads.

pub mod checks;
pub mod cleanse;
pub(crate) mod csv_types;
pub mod drift;
pub mod ingest;
pub mod pii;
pub mod profile;
pub mod sandbox;
pub mod session;

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use duckdb::{Config as DuckConfig, Connection};

use crate::config::EngineConfig;

/// The options of every Parquet file the engine keeps (a dataset's canonical copy and its
/// rejects, a cleanse's outputs). zstd at level 1 rather than DuckDB's default level 3: on the benchmark's
/// 10-million-row file (DuckDB 2.0.1, two threads) level 1 wrote the whole table about 17%
/// faster, a near-unique text column about 40% faster, and the file came out no larger
/// (201 MB against 214 MB); snappy writes as fast but is 2.5 times larger. Reading costs the
/// same at either level.
pub(crate) const PARQUET_OPTIONS: &str = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1";

/// The settings DuckDB reports it is running with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSettings {
    pub memory_limit: String,
    pub threads: i64,
    pub temp_directory: String,
}

/// Interrupts a connection's query when dropped while armed, and marks the work abandoned:
/// DuckDB forgets an interrupt given before a query starts (a task still queued in the
/// blocking pool), so the task checks the mark before it begins.
struct InterruptOnDrop {
    handle: Option<std::sync::Arc<duckdb::InterruptHandle>>,
    abandoned: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.abandoned.store(true, std::sync::atomic::Ordering::SeqCst);
            handle.interrupt();
        }
    }
}

/// A handle to the embedded analytic engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    root: Arc<Mutex<Connection>>,
    /// Whole-file operations share DuckDB's memory limit: they queue here instead of
    /// running out of memory together.
    heavy: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// Opens an in-memory DuckDB database with the configured limits. Blocking.
    pub fn open(config: &EngineConfig, temp_dir: &Path) -> anyhow::Result<Engine> {
        let conn = open_database(config, temp_dir)?;
        let heavy = Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_ingests.max(1)));
        Ok(Engine { root: Arc::new(Mutex::new(conn)), heavy })
    }

    /// Runs `f` on a fresh connection in the blocking pool. When the returned future is
    /// dropped before `f` ends (the client went away, a time limit passed), the connection's
    /// query is interrupted, so the work stops instead of running on unseen (and, through
    /// [`Engine::run_heavy`], holding its slot).
    pub async fn run<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> anyhow::Result<T> + Send + 'static,
    {
        let conn = self.root.lock().unwrap_or_else(|p| p.into_inner()).try_clone()?;
        let abandoned = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut interrupt =
            InterruptOnDrop { handle: Some(conn.interrupt_handle()), abandoned: abandoned.clone() };
        let result = tokio::task::spawn_blocking(move || {
            anyhow::ensure!(
                !abandoned.load(std::sync::atomic::Ordering::SeqCst),
                "abandoned before it started"
            );
            f(&conn)
        })
        .await;
        interrupt.handle = None;
        result.context("DuckDB task panicked or was cancelled")?
    }

    /// Like [`Engine::run`], for work that reads or writes a whole file (ingest, export): at
    /// most `MAX_CONCURRENT_INGESTS` run at once, the rest wait their turn.
    pub async fn run_heavy<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> anyhow::Result<T> + Send + 'static,
    {
        // The permit moves into the blocking task: if the caller goes away, the work still
        // holds its place until it really ends.
        let permit = self.heavy.clone().acquire_owned().await.context("engine is shutting down")?;
        self.run(move |conn| {
            let _permit = permit;
            f(conn)
        })
        .await
    }

    /// A turn among the whole-file work [`Engine::run_heavy`] admits, for such work done
    /// outside DuckDB (converting a workbook, whose shared strings calamine holds in memory):
    /// held until dropped.
    pub async fn heavy_turn(&self) -> anyhow::Result<tokio::sync::OwnedSemaphorePermit> {
        self.heavy.clone().acquire_owned().await.context("engine is shutting down")
    }

    /// Checks the engine answers a query (for `/readyz`).
    pub async fn ping(&self) -> anyhow::Result<()> {
        self.run(|conn| {
            let answer: i32 = conn.query_row("SELECT 42", [], |r| r.get(0))?;
            anyhow::ensure!(answer == 42, "DuckDB answered {answer} to SELECT 42");
            Ok(())
        })
        .await
    }

    /// The limits DuckDB is actually running with.
    pub async fn settings(&self) -> anyhow::Result<EngineSettings> {
        self.run(|conn| {
            Ok(conn.query_row(
                "SELECT current_setting('memory_limit')::VARCHAR, current_setting('threads')::BIGINT, \
                 current_setting('temp_directory')::VARCHAR",
                [],
                |r| {
                    Ok(EngineSettings {
                        memory_limit: r.get(0)?,
                        threads: r.get(1)?,
                        temp_directory: r.get(2)?,
                    })
                },
            )?)
        })
        .await
    }
}

/// Opens a separate in-memory DuckDB database with its own memory limit, threads and spill
/// directory, and no extension downloads. Blocking.
pub(crate) fn open_database(config: &EngineConfig, temp_dir: &Path) -> anyhow::Result<Connection> {
    std::fs::create_dir_all(temp_dir)
        .with_context(|| format!("creating DuckDB temp directory {}", temp_dir.display()))?;
    let temp = temp_dir.to_str().context("DUCKDB_TEMP_DIR must be valid UTF-8")?;
    let mut duck = DuckConfig::default()
        .enable_autoload_extension(false)?
        .with("autoinstall_known_extensions", "false")?
        .with("temp_directory", temp)?;
    if let Some(limit) = &config.memory_limit {
        duck = duck.max_memory(limit).with_context(|| format!("DUCKDB_MEMORY_LIMIT={limit}"))?;
    }
    if let Some(threads) = config.threads {
        duck = duck.threads(threads as i64)?;
    }
    Connection::open_in_memory_with_flags(duck).context("opening DuckDB")
}

/// The body of a scalar function of two texts returning text (`agensium_phone_e164`,
/// `agensium_mask`): each row's two values (a null in either gives null) through `f`, whose
/// `None` is null too. `f` may keep state from row to row (a parse of a repeated argument).
pub(crate) fn map_two_texts(
    input: &mut duckdb::core::DataChunkHandle,
    output: &mut dyn duckdb::vtab::arrow::WritableVector,
    mut f: impl FnMut(&str, &str) -> Option<String>,
) {
    use duckdb::core::Inserter;
    use duckdb::types::DuckString;
    let len = input.len();
    let firsts = input.flat_vector(0);
    let seconds = input.flat_vector(1);
    // SAFETY: both arguments are VARCHAR vectors of `len` rows (the functions' signatures).
    let first_strs = unsafe { firsts.as_slice_with_len::<duckdb::ffi::duckdb_string_t>(len) };
    let second_strs = unsafe { seconds.as_slice_with_len::<duckdb::ffi::duckdb_string_t>(len) };
    let mut out = output.flat_vector();
    for row in 0..len {
        if firsts.row_is_null(row as u64) || seconds.row_is_null(row as u64) {
            out.set_null(row);
            continue;
        }
        let first = DuckString::new(&mut { first_strs[row] }).as_str().into_owned();
        let second = DuckString::new(&mut { second_strs[row] }).as_str().into_owned();
        match f(&first, &second) {
            Some(value) => out.insert(row, value.as_str()),
            None => out.set_null(row),
        }
    }
}

/// The signature of a scalar function of two VARCHARs.
pub(crate) fn of_two_texts(
    result: duckdb::core::LogicalTypeId,
) -> Vec<duckdb::vscalar::ScalarFunctionSignature> {
    vec![duckdb::vscalar::ScalarFunctionSignature::exact(
        vec![
            duckdb::core::LogicalTypeHandle::from(duckdb::core::LogicalTypeId::Varchar),
            duckdb::core::LogicalTypeHandle::from(duckdb::core::LogicalTypeId::Varchar),
        ],
        duckdb::core::LogicalTypeHandle::from(result),
    )]
}

/// Whether a DuckDB type name (upper case) is an integer type, aliases included.
pub(crate) fn is_integer_type(t: &str) -> bool {
    matches!(
        t,
        "TINYINT"
            | "SMALLINT"
            | "INTEGER"
            | "BIGINT"
            | "HUGEINT"
            | "UTINYINT"
            | "USMALLINT"
            | "UINTEGER"
            | "UBIGINT"
            | "UHUGEINT"
            | "INT"
            | "INT1"
            | "INT2"
            | "INT4"
            | "INT8"
            | "SHORT"
            | "LONG"
    )
}

/// A column header split into lowercase words at non-alphanumerics and camelCase boundaries
/// (`firstName`, `first_name` and `First Name` all give `first`, `name`): how the profiler,
/// the risk scorer and the test suggestions read what a header names.
pub fn header_tokens(name: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for ch in name.chars() {
        if ch.is_alphanumeric() {
            if ch.is_uppercase() && previous_lower && !current.is_empty() {
                tokens.push(std::mem::take(&mut current));
            }
            previous_lower = ch.is_lowercase() || ch.is_numeric();
            current.extend(ch.to_lowercase());
        } else {
            if !current.is_empty() {
                tokens.push(std::mem::take(&mut current));
            }
            previous_lower = false;
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// Quotes text as a SQL string literal: the one place text enters DuckDB SQL. Used for
/// server-made paths (DuckDB's `COPY … TO` takes no parameters); user values are bound.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A filter on `file_row_number` keeping four windows of `sample_rows / 4` rows each, at
/// the start, a quarter, half and three quarters of a file of `rows` rows: a sample whose
/// cost does not grow with the file (Parquet row groups outside the windows are skipped).
pub(crate) fn sample_windows(rows: u64, sample_rows: u64) -> String {
    let width = (sample_rows / 4).max(1);
    (0..4u64)
        .map(|i| {
            let start = rows / 4 * i;
            format!("(file_row_number >= {start} AND file_row_number < {})", start + width)
        })
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// How many `count(DISTINCT …)` aggregates one statement on `conn` may hold. DuckDB gives
/// each its own hash table of a few MiB per thread however few the rows (measured in DuckDB
/// 2.0: 32 of them over 10 rows do not fit in 128 MB on 2 threads, 130 not in 512 MB), so a
/// statement holds as many as half the memory limit allows at 4 MiB each per thread, from 4
/// to 200.
pub(crate) fn distinct_per_statement(conn: &Connection) -> anyhow::Result<usize> {
    let (limit, threads): (String, i64) = conn.query_row(
        "SELECT current_setting('memory_limit')::VARCHAR, current_setting('threads')::BIGINT",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    // `488.2 MiB`; an unreadable limit counts as DuckDB's smallest sensible one.
    let bytes = crate::config::parse_bytes(&limit.replace(' ', "")).unwrap_or(64 << 20);
    let per_aggregate = u64::try_from(threads.max(1)).unwrap_or(1) * (4 << 20);
    Ok(usize::try_from(bytes / 2 / per_aggregate).unwrap_or(usize::MAX).clamp(4, 200))
}

/// Quotes a name as a SQL identifier (column names come from users' files).
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Test support for the engine's modules: `select`'s rows written to `path` as Parquet, and
/// their columns as `DESCRIBE` gives them.
#[cfg(test)]
pub(crate) fn parquet_fixture(
    conn: &Connection,
    path: &Path,
    select: &str,
) -> Vec<crate::domain::ColumnInfo> {
    let path = quote_literal(&path.display().to_string());
    conn.execute_batch(&format!("COPY ({select}) TO {path} (FORMAT parquet)")).expect("fixture written");
    let mut statement =
        conn.prepare(&format!("DESCRIBE SELECT * FROM read_parquet({path})")).expect("fixture described");
    statement
        .query_map([], |r| Ok(crate::domain::ColumnInfo { name: r.get(0)?, data_type: r.get(1)? }))
        .and_then(|rows| rows.collect())
        .expect("fixture described")
}

#[cfg(test)]
mod tests {
    #[test]
    fn distinct_counts_per_statement_follow_the_memory_limit() {
        let conn = Connection::open_in_memory().unwrap();
        let at = |settings: &str| {
            conn.execute_batch(settings).unwrap();
            distinct_per_statement(&conn).unwrap()
        };
        assert_eq!(at("SET memory_limit = '512MB'; SET threads = 2"), 30);
        assert_eq!(at("SET memory_limit = '128MB'; SET threads = 2"), 7);
        assert_eq!(at("SET memory_limit = '32MB'; SET threads = 4"), 4);
        assert_eq!(at("SET memory_limit = '64GB'; SET threads = 1"), 200);
    }

    #[test]
    fn quoting_escapes_quotes() {
        assert_eq!(super::quote_literal("it's"), "'it''s'");
        assert_eq!(super::quote_identifier("a\"b"), "\"a\"\"b\"");
    }

    use super::*;

    #[tokio::test]
    async fn applies_configured_limits() {
        let dir = tempfile::tempdir().unwrap();
        let config = EngineConfig {
            memory_limit: Some("256MB".into()),
            threads: Some(1),
            temp_dir: None,
            max_concurrent_ingests: 1,
        };
        let engine = Engine::open(&config, &dir.path().join("spill")).unwrap();
        engine.ping().await.unwrap();
        let settings = engine.settings().await.unwrap();
        assert_eq!(settings.threads, 1);
        assert!(
            settings.memory_limit.contains("MiB") || settings.memory_limit.contains("MB"),
            "{settings:?}"
        );
        assert!(settings.temp_directory.ends_with("spill"), "{settings:?}");
    }

    /// Work whose caller went away while it still waited for a blocking thread never runs,
    /// and gives its whole-file turn back.
    #[test]
    fn work_abandoned_before_it_starts_never_runs() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let config =
            EngineConfig { memory_limit: None, threads: Some(1), temp_dir: None, max_concurrent_ingests: 1 };
        let engine = Engine::open(&config, &dir.path().join("spill")).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            // The one blocking thread is busy until told otherwise.
            let (release, wait) = std::sync::mpsc::channel::<()>();
            let busy = tokio::task::spawn_blocking(move || wait.recv());
            let ran = Arc::new(AtomicBool::new(false));
            let flag = ran.clone();
            let work = engine.run_heavy(move |_| {
                flag.store(true, Ordering::SeqCst);
                Ok(())
            });
            let gone = tokio::time::timeout(std::time::Duration::from_millis(100), work).await;
            assert!(gone.is_err(), "the work waited for the busy thread");
            release.send(()).unwrap();
            busy.await.unwrap().unwrap();
            // Queued after the abandoned task, on the one thread: that task has ended by now,
            // and the turn it held is free.
            let next = tokio::time::timeout(std::time::Duration::from_secs(30), engine.run_heavy(|_| Ok(42)));
            assert_eq!(next.await.expect("the turn was given back").unwrap(), 42);
            assert!(!ran.load(Ordering::SeqCst), "abandoned work ran");
        });
    }
}
