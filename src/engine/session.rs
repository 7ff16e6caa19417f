//! A job's own DuckDB database: its own memory limit, threads and spill directory, so one
//! job cannot starve the API's engine or another job, and an interrupt handle so a job can
//! be stopped mid-query.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use duckdb::{Connection, InterruptHandle};

use super::checks::{DataTest, TestOutcome};
use super::cleanse::{CleanseOutcome, CleansePlan, CleansePreview, ColumnEvidence};
use crate::config::EngineConfig;
use crate::domain::{
    ColumnInfo, DriftParams, DriftReport, HistogramBin, PiiColumn, Profile, ProfileParams, RiskParams,
    ValueCount,
};

/// One job's database. Blocking: use it inside `spawn_blocking`. Its spill directory is
/// removed when it is dropped.
pub struct Session {
    conn: Connection,
    /// A second connection to the same database, for work that runs two statements at once
    /// (a profile's columns). A mutex only because `Connection` is not `Sync`: one call at a
    /// time uses the session.
    helper: Mutex<Connection>,
    /// Both connections' interrupt handles.
    interrupts: Arc<[Arc<InterruptHandle>; 2]>,
    temp_dir: PathBuf,
}

/// Stops whatever queries the session is running, on either connection; callable from any
/// thread.
#[derive(Clone)]
pub struct Interrupter(Arc<[Arc<InterruptHandle>; 2]>);

impl Interrupter {
    pub fn interrupt(&self) {
        self.0.iter().for_each(|handle| handle.interrupt());
    }
}

/// Why a session's work stopped.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The work needed more memory than the limit allows, even spilling.
    #[error("{0}")]
    OutOfMemory(String),
    /// The query was interrupted.
    #[error("interrupted")]
    Interrupted,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl SessionError {
    fn classify(err: anyhow::Error) -> SessionError {
        let text = format!("{err:#}");
        if text.contains("INTERRUPT Error") || text.contains("Interrupted") {
            SessionError::Interrupted
        } else if text.contains("Out of Memory Error") {
            SessionError::OutOfMemory(
                "the work needs more memory than DUCKDB_MEMORY_LIMIT allows, even spilling to disk".into(),
            )
        } else {
            SessionError::Internal(err)
        }
    }
}

impl Session {
    /// Opens a database limited by `config`, spilling under `temp_dir` (created here).
    pub fn open(config: &EngineConfig, temp_dir: &Path) -> anyhow::Result<Session> {
        // A job re-run after its worker died finds that worker's spill files here: they are
        // stale (only the lease holder runs the job), so start empty.
        let _ = std::fs::remove_dir_all(temp_dir);
        let conn = super::open_database(config, temp_dir)?;
        let helper = conn.try_clone().context("opening a second connection")?;
        let interrupts = Arc::new([conn.interrupt_handle(), helper.interrupt_handle()]);
        Ok(Session { conn, helper: Mutex::new(helper), interrupts, temp_dir: temp_dir.to_path_buf() })
    }

    pub fn interrupter(&self) -> Interrupter {
        Interrupter(self.interrupts.clone())
    }

    /// Profiles a dataset's canonical Parquet copy (see `engine::profile`).
    pub fn profile(
        &self,
        data: &Path,
        columns: &[ColumnInfo],
        params: &ProfileParams,
        progress: &mut dyn FnMut(f64, &str),
    ) -> Result<Profile, SessionError> {
        let mut helper = self.helper.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        super::profile::profile(&self.conn, Some(&mut helper), data, columns, params, progress)
            .map_err(SessionError::classify)
    }

    /// Compares a dataset version with its baseline (see `engine::drift`).
    pub fn drift(
        &self,
        current: &Path,
        current_columns: &[ColumnInfo],
        baseline: &Path,
        baseline_columns: &[ColumnInfo],
        params: &DriftParams,
        progress: &mut dyn FnMut(f64, &str),
    ) -> Result<DriftReport, SessionError> {
        super::drift::drift(
            &self.conn,
            current,
            current_columns,
            baseline,
            baseline_columns,
            params,
            progress,
        )
        .map_err(SessionError::classify)
    }

    /// Finds the columns that hold personal data (see `engine::pii`).
    pub fn pii_scan(
        &self,
        data: &Path,
        columns: &[ColumnInfo],
        params: &RiskParams,
        progress: &mut dyn FnMut(f64, &str),
    ) -> Result<Vec<PiiColumn>, SessionError> {
        super::pii::scan(&self.conn, data, columns, params, progress).map_err(SessionError::classify)
    }

    /// Runs data tests (see `engine::checks`).
    pub fn run_tests(
        &self,
        data: &Path,
        tests: &[DataTest],
        max_rows: u64,
        progress: &mut dyn FnMut(f64, &str),
    ) -> Result<Vec<TestOutcome>, SessionError> {
        super::checks::run_tests(&self.conn, data, tests, max_rows, progress).map_err(SessionError::classify)
    }

    /// Runs a cleanse plan into `out_dir` (see `engine::cleanse::run`).
    pub fn cleanse(
        &self,
        data: &Path,
        columns: &[ColumnInfo],
        plan: &CleansePlan,
        out_dir: &Path,
        progress: &mut dyn FnMut(f64, &str),
    ) -> Result<CleanseOutcome, SessionError> {
        super::cleanse::run(&self.conn, data, columns, plan, out_dir, progress)
            .map_err(SessionError::classify)
    }

    /// Runs a cleanse plan over a sample (see `engine::cleanse::preview`).
    pub fn cleanse_preview(
        &self,
        data: &Path,
        columns: &[ColumnInfo],
        plan: &CleansePlan,
        sample_rows: u64,
    ) -> Result<CleansePreview, SessionError> {
        super::cleanse::preview(&self.conn, data, columns, plan, sample_rows).map_err(SessionError::classify)
    }

    /// What a sample says about each column (see `engine::cleanse::sample_evidence`).
    pub fn column_evidence(
        &self,
        data: &Path,
        columns: &[ColumnInfo],
        null_tokens: &[String],
        sample_rows: u64,
    ) -> Result<Vec<ColumnEvidence>, SessionError> {
        super::cleanse::sample_evidence(&self.conn, data, columns, null_tokens, sample_rows)
            .map_err(SessionError::classify)
    }

    /// A Parquet file's rows and per-column nulls (see `engine::cleanse::column_nulls`).
    pub fn column_nulls(&self, data: &Path) -> Result<(u64, Vec<(ColumnInfo, u64)>), SessionError> {
        super::cleanse::column_nulls(&self.conn, data).map_err(SessionError::classify)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.temp_dir);
    }
}

impl super::Engine {
    /// One column's histogram with `bins` bins, on the shared engine (small, one column).
    pub async fn histogram(
        &self,
        data: PathBuf,
        column: ColumnInfo,
        bins: u64,
    ) -> anyhow::Result<Vec<HistogramBin>> {
        self.run(move |conn| super::profile::histogram(conn, &data, &column, bins)).await
    }

    /// Whether DuckDB accepts a regular expression (see `checks::check_pattern`).
    pub async fn check_pattern(&self, pattern: String) -> anyhow::Result<Result<(), String>> {
        self.run(move |conn| super::checks::check_pattern(conn, &pattern)).await
    }

    /// Whether DuckDB accepts a date format (see `cleanse::check_date_format`).
    pub async fn check_date_format(&self, format: String) -> anyhow::Result<Result<(), String>> {
        self.run(move |conn| super::cleanse::check_date_format(conn, &format)).await
    }

    /// Whether a null fill's constant converts to a column type (see `cleanse::check_constant`).
    pub async fn check_constant(&self, value: String, ty: String) -> anyhow::Result<Result<(), String>> {
        self.run(move |conn| super::cleanse::check_constant(conn, &value, &ty)).await
    }

    /// One column's `limit` most frequent values, on the shared engine.
    pub async fn top_values(
        &self,
        data: PathBuf,
        column: ColumnInfo,
        limit: u64,
    ) -> anyhow::Result<Vec<ValueCount>> {
        self.run(move |conn| super::profile::top_values(conn, &data, &column, limit)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(dir: &Path) -> Session {
        let config = EngineConfig {
            memory_limit: Some("256MB".into()),
            threads: Some(1),
            temp_dir: None,
            max_concurrent_ingests: 1,
        };
        Session::open(&config, &dir.join("spill")).unwrap()
    }

    /// Cancelling a job must stop a profile's second connection too: a long query on either
    /// connection ends, interrupted, soon after the session's interrupter is called from
    /// another thread.
    #[test]
    fn the_interrupter_stops_both_connections() {
        let dir = tempfile::tempdir().unwrap();
        let session = session(dir.path());
        let helper = session.helper.lock().unwrap();
        for conn in [&session.conn, &*helper] {
            let interrupter = session.interrupter();
            let stopper = std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(300));
                interrupter.interrupt();
            });
            let started = std::time::Instant::now();
            // About ten seconds of work on one thread, if nothing stops it.
            let err = conn
                .execute_batch("SELECT sum(hash(i)) FROM range(3000000000) t(i)")
                .expect_err("the query was interrupted");
            assert!(matches!(SessionError::classify(err.into()), SessionError::Interrupted));
            assert!(started.elapsed() < std::time::Duration::from_secs(3), "{:?}", started.elapsed());
            stopper.join().unwrap();
            // The connection works again afterwards.
            conn.execute_batch("SELECT 1").unwrap();
        }
    }

    /// The second connection is the same database: the job's limits, and what the first
    /// connection stores outside its temporary schema.
    #[test]
    fn the_helper_shares_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let session = session(dir.path());
        let helper = session.helper.lock().unwrap();
        session.conn.execute_batch("CREATE TABLE shared AS SELECT 42 AS x").unwrap();
        let x: i32 = helper.query_row("SELECT x FROM shared", [], |r| r.get(0)).unwrap();
        assert_eq!(x, 42);
        let threads: i64 = helper.query_row("SELECT current_setting('threads')", [], |r| r.get(0)).unwrap();
        assert_eq!(threads, 1);
    }
}
