//! The co-pilot's SQL sandbox run as the server runs it: each query in a child process (the
//! compiled binary's `sandbox-query`) under the kernel's limits.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agensium::engine::Engine;
use agensium::engine::sandbox::{Refusal, SandboxLimits};
use agensium::error::ErrorCode;
use serde_json::Value;

struct Fixture {
    dir: tempfile::TempDir,
    data: PathBuf,
    spill: PathBuf,
    engine: Engine,
}

const PROGRAM: &str = env!("CARGO_BIN_EXE_agensium");

/// A Parquet file of 100 rows: id 1..=100, email = user<id>@example.com.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.parquet");
    let spill = dir.path().join("spill");
    let conn = duckdb::Connection::open_in_memory().unwrap();
    conn.execute_batch(&format!(
        "COPY (SELECT i::INTEGER AS id, 'user' || i || '@example.com' AS email FROM range(1, 101) t(i))
         TO '{}' (FORMAT parquet)",
        data.display()
    ))
    .unwrap();
    let config = agensium::config::EngineConfig {
        memory_limit: Some("256MB".into()),
        threads: Some(1),
        temp_dir: None,
        max_concurrent_ingests: 1,
    };
    let engine = Engine::open(&config, &dir.path().join("engine-spill")).unwrap();
    Fixture { dir, data, spill, engine }
}

impl Fixture {
    async fn query(
        &self,
        sql: &str,
        limits: SandboxLimits,
    ) -> Result<agensium::engine::sandbox::QueryOutput, Refusal> {
        self.engine
            .sandboxed_query(
                Path::new(PROGRAM),
                self.data.clone(),
                self.spill.clone(),
                sql.into(),
                vec![("EMAIL".into(), "email".into())],
                limits,
            )
            .await
            .expect("the sandbox process answers")
    }

    fn spill_entries(&self) -> usize {
        std::fs::read_dir(&self.spill).map(|d| d.count()).unwrap_or(0)
    }
}

fn limits() -> SandboxLimits {
    SandboxLimits::new(50, Duration::from_secs(10), 256 * 1024 * 1024)
}

#[tokio::test]
async fn a_query_runs_in_a_process_of_its_own_with_personal_columns_masked() {
    let f = fixture();
    let out = f.query("SELECT count(*) AS n, max(email) AS top FROM data", limits()).await.unwrap();
    assert_eq!(out.columns, ["n", "top"]);
    assert_eq!(out.rows, vec![vec![Value::from(100), Value::from("u***@e***.com")]]);
    assert!(out.reads_data);
    assert_eq!(out.derived, Some(vec![true, true]));
    let refusal = f.query("ATTACH 'x.db'", limits()).await.unwrap_err();
    assert_eq!(refusal.code(), ErrorCode::BadUserInput);
    let refusal = f.query("SELECT * FROM read_csv('/etc/passwd')", limits()).await.unwrap_err();
    assert_eq!(refusal.code(), ErrorCode::Forbidden);
    // Each query's spill folder is gone once it ends.
    assert_eq!(f.spill_entries(), 0);
    assert!(f.dir.path().exists());
}

#[tokio::test]
async fn memory_beyond_the_processes_limit_stops_the_query_not_the_server() {
    let f = fixture();
    // DuckDB may use 8 GB here, so only the kernel's limit on the child (400 MiB) stops this
    // query: the distinct values of a hundred million rows need gigabytes of hash table.
    let tight = SandboxLimits {
        process_memory_bytes: 400 * 1024 * 1024,
        ..SandboxLimits::new(50, Duration::from_secs(60), 8_000_000_000)
    };
    let sql = "SELECT count(*) AS n FROM (SELECT DISTINCT i FROM range(100000000) t(i)) AS d";
    let started = Instant::now();
    let refusal = f.query(sql, tight).await.unwrap_err();
    assert_eq!(refusal, Refusal::TooMuchMemory, "after {:?}", started.elapsed());
    assert_eq!(refusal.code(), ErrorCode::BadUserInput);
    // The next query gets a fresh process.
    let out = f.query("SELECT count(*) AS n FROM data", limits()).await.unwrap();
    assert_eq!(out.rows, vec![vec![Value::from(100)]]);
    assert_eq!(f.spill_entries(), 0);
}

#[tokio::test]
async fn a_query_past_its_time_is_stopped() {
    let f = fixture();
    let limits = SandboxLimits::new(50, Duration::from_millis(500), 256 * 1024 * 1024);
    let started = Instant::now();
    let refusal =
        f.query("SELECT count(*) FROM range(100000000000) a(i) WHERE i % 7 = 3", limits).await.unwrap_err();
    assert_eq!(refusal, Refusal::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn an_abandoned_query_ends_its_process_and_leaves_no_spill() {
    let f = fixture();
    let limits = SandboxLimits::new(50, Duration::from_secs(60), 256 * 1024 * 1024);
    // A file this process holds open, as DuckDB holds the files it reads: without
    // close-on-exec, which a child would inherit.
    let secret = f.dir.path().join("another-users-data.parquet");
    std::fs::write(&secret, b"PAR1").unwrap();
    let path = std::ffi::CString::new(secret.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; the descriptor is closed below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
    assert!(fd > 2);
    let mut query =
        Box::pin(f.query("SELECT count(*) FROM range(100000000000) a(i) WHERE i % 7 = 3", limits));
    // The query runs in a child process (working in its spill folder)…
    assert!(tokio::time::timeout(Duration::from_millis(3000), &mut query).await.is_err());
    let children = children_in(&f.spill);
    assert_eq!(children.len(), 1, "{children:?}");
    // …which holds none of this process's files.
    let held: Vec<PathBuf> = std::fs::read_dir(format!("/proc/{}/fd", children[0]))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .collect();
    assert!(!held.contains(&secret), "{held:?}");
    assert!(held.len() >= 3, "{held:?}");
    // SAFETY: the descriptor opened above.
    unsafe { libc::close(fd) };
    // …which ends when the question is abandoned (its request went away).
    drop(query);
    let deadline = Instant::now() + Duration::from_secs(5);
    // (Its folder is removed once it is reaped, in a task of its own.)
    while (children.iter().any(|pid| running(*pid)) || f.spill_entries() > 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!children.iter().any(|pid| running(*pid)));
    assert_eq!(f.spill_entries(), 0);
}

/// Processes working in a folder under `folder` (their current directory).
fn children_in(folder: &Path) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(folder)))
        .collect()
}

/// Whether a process is alive (a zombie, ended but not yet reaped, is not).
fn running(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // "pid (name) state …"
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state != "Z")
}
