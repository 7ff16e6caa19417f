//! A sandbox for read-only SQL over one dataset, for SQL that nobody on the server wrote (an
//! AI co-pilot's model proposes it, possibly steered by text inside the data).
//!
//! Two walls:
//!
//! 1. **Validation with DuckDB's own parser.** `json_serialize_sql` turns the text into DuckDB's
//!    syntax tree (it refuses anything but SELECT statements); the tree must hold exactly one
//!    statement, and every table it reads must be the dataset's view `data` or a CTE in scope.
//!    Table functions are refused except three generators that touch no file (`range`,
//!    `generate_series`, `unnest`), and so are functions that reach outside the query
//!    (settings, sleeping, logging, serialised SQL), qualified names, and functions that build
//!    values far larger than their input (`repeat`, padding and `printf`-style widths, list
//!    generators, and aggregates that pack every row into one value, such as `list` or
//!    `string_agg`: group with GROUP BY instead). So that planning stays cheap — DuckDB does
//!    not check its interrupt while it plans — `NOT MATERIALIZED` CTEs (each use re-plans the
//!    CTE's body, doubling the work per level of a chain) are refused, and a query may hold at
//!    most [`MAX_TABLE_REFS`] table references and [`MAX_CTES`] CTEs. The tree is rendered
//!    back (`json_deserialize_sql`) into canonical SQL — comments and spelling tricks are gone —
//!    which is wrapped for the row limit, validated again, and only then executed.
//! 2. **A locked-down database.** Each query runs in a fresh in-memory DuckDB: one thread, its
//!    own memory limit, a bounded spill folder of its own, no extension loading; the view
//!    `data` is created, then `allowed_paths` is set to the dataset file alone, external
//!    access is disabled and the configuration locked. Every other path is unreachable from
//!    SQL: no other file can be read, written or attached. The dataset file itself is
//!    reachable at that level, though — DuckDB's `allowed_paths` grants reading *and writing*,
//!    and has no read-only form — so this wall alone would let `read_parquet` read the file
//!    unmasked and `COPY … TO` overwrite it. The validation (which refuses every file-reading
//!    function and every statement but SELECT) is what keeps those out.
//!
//! A timer interrupts the query when it runs past its time limit. [`run_masked`] also replaces
//! personal-data columns in the view by their masked text (the masks of
//! [`crate::domain::mask`], written in SQL), so no query can read them in clear. Errors raised
//! while the query runs have the values quoted in them removed and are cut short, so they do
//! not carry the data out past the row and cell limits.
//!
//! DuckDB's `memory_limit` does not cover every allocation (some string functions, the
//! planner), and an interrupt lands only between pieces of work. The amplifiers refused above
//! are the known ways past them, not a proof that none is left: so the server runs each query
//! in a process of its own under limits the kernel enforces (memory, CPU time, file size;
//! [`process`]), and what escapes DuckDB's limits ends that process, not the server.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use anyhow::Context;
use duckdb::core::{DataChunkHandle, LogicalTypeId};
use duckdb::vscalar::{ScalarFunctionSignature, VScalar};
use duckdb::vtab::arrow::WritableVector;
use duckdb::{Config as DuckConfig, Connection};
use serde_json::Value;

use super::quote_literal;
use crate::error::ErrorCode;

pub mod process;

/// Longest SQL text accepted, in characters.
pub const MAX_SQL_CHARS: usize = 10_000;
/// Longest text of one string value returned, in characters (longer ones are cut, with `…`).
pub const MAX_CELL_CHARS: usize = 200;
/// How much a sandboxed query may spill to disk.
const MAX_SPILL: &str = "1GB";
/// A cell whose JSON text is longer than this is returned as (cut) text, not parsed.
const MAX_CELL_JSON: usize = 20_000;
/// Deepest syntax tree accepted (DuckDB's JSON for one SQL expression level is ~3 levels).
const MAX_TREE_DEPTH: usize = 3_000;
/// Most table references (tables, CTE uses, subqueries, table functions…) in one query.
pub const MAX_TABLE_REFS: usize = 64;
/// Most CTEs defined in one query.
pub const MAX_CTES: usize = 32;
/// Longest message of an error raised while the query runs, in characters.
const MAX_RUNTIME_ERROR_CHARS: usize = 200;
/// The name of the dataset's view.
const DATA: &str = "data";
/// Table functions that generate values and touch no file.
const ALLOWED_TABLE_FUNCTIONS: [&str; 3] = ["range", "generate_series", "unnest"];
/// Functions refused wherever they appear: they read files or settings, run SQL text, sleep,
/// write logs, or show the server's paths.
const FORBIDDEN_FUNCTIONS: &[&str] = &[
    "query",
    "query_table",
    "glob",
    "sniff_csv",
    "current_setting",
    "getenv",
    "sleep_ms",
    "pg_sleep",
    "write_log",
    "pg_get_viewdef",
    "pg_get_constraintdef",
    "format_type",
    "get_block_size",
    "json_serialize_sql",
    "json_deserialize_sql",
    "json_serialize_plan",
    "json_execute_serialized_sql",
    "checkpoint",
    "force_checkpoint",
    "enable_logging",
    "disable_logging",
    "enable_profiling",
    "disable_profiling",
    "truncate_duckdb_logs",
    "which_secret",
    "create_external_resource",
    "register_external_resource",
    "register_external_resource_type",
    "deregister_external_resource",
    "destroy_external_resource",
];
/// Functions refused because they build a value far larger than their input, which DuckDB's
/// memory limit does not always catch (`repeat('abcdefgh', 400000000)` takes GBs before the
/// interrupt can land), or pack every row into one value. The table-function forms of `range`
/// and `generate_series` stay allowed: they stream rows.
const AMPLIFYING_FUNCTIONS: &[&str] = &[
    "repeat",
    // Each multiplies a value by its replacement's length over the pattern's: nested eight
    // deep, 10 bytes became a GB.
    "replace",
    "regexp_replace",
    "lpad",
    "rpad",
    "printf",
    "format",
    "bar",
    "range",
    "generate_series",
    "list_resize",
    "array_resize",
    "bitstring",
    "string_agg",
    "group_concat",
    "listagg",
    "list",
    "array_agg",
    "histogram",
    "histogram_exact",
    "bitstring_agg",
    "json_group_array",
    "json_group_object",
    "json_group_structure",
    "variant_group_array",
    "variant_group_object",
];
/// Name prefixes refused for the same reasons (`read_csv`, `parquet_metadata`,
/// `duckdb_settings`, `pragma_version`, `__internal_…`).
const FORBIDDEN_PREFIXES: &[&str] = &["read_", "parquet_", "duckdb_", "pragma_", "__", "json_execute"];
/// Table references the checker knows; any other is refused.
const TABLE_REF_KINDS: &[&str] = &[
    "BASE_TABLE",
    "TABLE_FUNCTION",
    "JOIN",
    "SUBQUERY",
    "EXPRESSION_LIST",
    "EMPTY",
    "PIVOT",
    "SHOW_REF",
    "COLUMN_DATA",
    "DELIM_GET",
    "BOUND_REF",
    "INVALID",
];
/// Query nodes of a read-only SELECT.
const QUERY_NODE_KINDS: &[&str] = &["SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"];

/// How much one sandboxed query may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxLimits {
    /// Rows returned at most; more are cut off and reported as `truncated`.
    pub max_rows: usize,
    /// Wall-clock time for validation and execution together.
    pub timeout: Duration,
    /// DuckDB's `memory_limit` for the query's database, in bytes.
    pub memory_bytes: u64,
    /// Memory of the process the query runs in ([`process`]: its `RLIMIT_DATA`), DuckDB's limit
    /// plus [`process::HEADROOM`] from [`SandboxLimits::new`]. Not used in process.
    pub process_memory_bytes: u64,
}

impl SandboxLimits {
    pub fn new(max_rows: usize, timeout: Duration, memory_bytes: u64) -> SandboxLimits {
        SandboxLimits {
            max_rows,
            timeout,
            memory_bytes,
            process_memory_bytes: memory_bytes.saturating_add(process::HEADROOM),
        }
    }
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits::new(1_000, Duration::from_secs(5), 256 * 1024 * 1024)
    }
}

/// What a sandboxed query returned.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QueryOutput {
    /// The canonical SQL that ran (DuckDB's rendering of the validated syntax tree).
    pub sql: String,
    pub columns: Vec<String>,
    /// Values as JSON: numbers, strings, booleans, null; dates, times, decimals beyond
    /// JSON and other types as their text; lists and structs as arrays and objects. Strings
    /// are cut at [`MAX_CELL_CHARS`] characters.
    pub rows: Vec<Vec<Value>>,
    /// Whether more rows than `max_rows` matched (only `max_rows` are returned).
    pub truncated: bool,
    /// Whether the query reads the dataset (`data`) at all: one that does not computes only
    /// from what its text wrote (`SELECT 4216 + 1`).
    pub reads_data: bool,
    /// For a plain `SELECT … FROM data` (no CTE, no subquery, no `*`): per result column,
    /// whether it is computed from the dataset's values (names a column, or counts rows) —
    /// `4216 + 1 AS n` is not, whatever it reads. `None` when the query is not that simple.
    pub derived: Option<Vec<bool>>,
    /// The numbers the select list writes (`4217` in `4217 AS a, a + 0 AS b`, and in
    /// `'4217 rows'`), which no result column is evidence of; those in `WHERE` and `HAVING`
    /// are not among them. Empty when `derived` is `None`.
    pub select_numbers: Vec<f64>,
}

/// Why a query was not run (or was stopped).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Refusal {
    /// Not a single SELECT statement (DDL, DML, ATTACH, COPY, PRAGMA, SET, DESCRIBE, several
    /// statements…).
    NotReadOnly(String),
    /// A SELECT that reaches beyond the dataset: files, table functions, other tables,
    /// settings.
    Forbidden(String),
    /// A SELECT DuckDB cannot parse or bind (syntax error, unknown column, empty, too long).
    Invalid(String),
    /// The query ran past its time limit and was interrupted.
    TimedOut,
    /// The query needed more memory than its limit, even spilling to disk.
    TooMuchMemory,
}

impl Refusal {
    pub fn code(&self) -> ErrorCode {
        match self {
            Refusal::Forbidden(_) => ErrorCode::Forbidden,
            Refusal::NotReadOnly(_) | Refusal::Invalid(_) | Refusal::TimedOut | Refusal::TooMuchMemory => {
                ErrorCode::BadUserInput
            }
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::NotReadOnly(m) | Refusal::Forbidden(m) | Refusal::Invalid(m) => m.clone(),
            Refusal::TimedOut => "the query ran longer than its time limit and was stopped; filter, \
                                  aggregate or limit it and try again"
                .into(),
            Refusal::TooMuchMemory => "the query needs more memory than its limit allows, even spilling to \
                                       disk; filter or aggregate more and try again"
                .into(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

/// Validates `sql` and runs it over the Parquet file `data` (visible as the view `data`),
/// spilling under a folder of its own inside `spill_dir` (removed afterwards). Blocking.
///
/// The outer error is for the server's own failures (the dataset file cannot be opened, DuckDB
/// cannot start); everything the SQL is responsible for is a [`Refusal`].
pub fn run(
    data: &Path,
    spill_dir: &Path,
    sql: &str,
    limits: &SandboxLimits,
) -> anyhow::Result<Result<QueryOutput, Refusal>> {
    run_masked(data, spill_dir, sql, &[], limits)
}

/// [`run`], with the columns named in `masked` — `(column, kind)`, the kind one of
/// [`crate::domain::PII_KINDS`] — replaced in the view `data` by their masked text (the same
/// masks as [`crate::domain::mask`]): no query, however written, reads them in clear. Names
/// match the file's columns regardless of case; names the file lacks are ignored.
pub fn run_masked(
    data: &Path,
    spill_dir: &Path,
    sql: &str,
    masked: &[(String, String)],
    limits: &SandboxLimits,
) -> anyhow::Result<Result<QueryOutput, Refusal>> {
    // Syntax trees are parsed and walked recursively, up to `MAX_TREE_DEPTH` levels: on a
    // thread with room for that, whatever thread calls.
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("sql-sandbox".into())
            .stack_size(STACK_BYTES)
            .spawn_scoped(scope, || run_on_this_thread(data, spill_dir, sql, masked, limits))
            .context("starting the sandbox thread")?
            .join()
            .map_err(|_| anyhow::anyhow!("the sandbox thread panicked"))?
    })
}

/// Stack of the thread a sandboxed query is checked and run on.
const STACK_BYTES: usize = 64 * 1024 * 1024;

fn run_on_this_thread(
    data: &Path,
    spill_dir: &Path,
    sql: &str,
    masked: &[(String, String)],
    limits: &SandboxLimits,
) -> anyhow::Result<Result<QueryOutput, Refusal>> {
    if sql.trim().is_empty() {
        return Ok(Err(Refusal::Invalid("the query is empty".into())));
    }
    if sql.chars().count() > MAX_SQL_CHARS {
        return Ok(Err(Refusal::Invalid(format!("the query is longer than {MAX_SQL_CHARS} characters"))));
    }
    if sql.contains('\0') {
        return Ok(Err(Refusal::Invalid("the query contains a NUL character".into())));
    }
    let spill = SpillDir::create(spill_dir)?;
    let sandbox = Sandbox::open(data, &spill.0, masked, limits.memory_bytes)?;
    let timer = Timer::start(&sandbox.conn, limits.timeout);
    let outcome = sandbox.query(sql, limits.max_rows);
    let fired = timer.stop();
    match outcome {
        Ok(output) => Ok(Ok(output)),
        Err(Failure::Refused(refusal)) => Ok(Err(refusal)),
        Err(Failure::DuckDb(err)) => sandbox.classify(err, fired, false),
        Err(Failure::Running(err)) => sandbox.classify(err, fired, true),
    }
}

impl super::Engine {
    /// Runs an untrusted SELECT over one dataset in its own locked-down database, with the
    /// `masked` columns (`(column, kind)`) masked in the view `data` (see [`run_masked`]), in
    /// a child process started from `program` (the running binary, [`process::default_program`],
    /// outside tests) under the kernel's limits ([`process`]). One entry point, so no caller
    /// can forget the masking or the process: pass no columns explicitly. Does not use the
    /// shared connection; dropping the future kills the child.
    pub async fn sandboxed_query(
        &self,
        program: &Path,
        data: PathBuf,
        spill_dir: PathBuf,
        sql: String,
        masked: Vec<(String, String)>,
        limits: SandboxLimits,
    ) -> anyhow::Result<Result<QueryOutput, Refusal>> {
        process::run(program, data, spill_dir, sql, masked, &limits).await
    }
}

/// A query's own spill folder, removed when dropped (after its database is closed).
struct SpillDir(PathBuf);

impl SpillDir {
    fn create(parent: &Path) -> anyhow::Result<SpillDir> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path =
            parent.join(format!("sandbox-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("creating sandbox spill directory {}", path.display()))?;
        Ok(SpillDir(path))
    }
}

impl Drop for SpillDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Interrupts a connection once its deadline passes, and again every few milliseconds
/// until stopped (an interrupt that lands between two statements is otherwise lost).
struct Timer {
    done: mpsc::Sender<()>,
    fired: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Timer {
    fn start(conn: &Connection, timeout: Duration) -> Timer {
        let handle = conn.interrupt_handle();
        let (done, wait) = mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = fired.clone();
        let thread = std::thread::spawn(move || {
            let mut wait_for = timeout;
            while let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(wait_for) {
                flag.store(true, Ordering::SeqCst);
                handle.interrupt();
                wait_for = Duration::from_millis(20);
            }
        });
        Timer { done, fired, thread }
    }

    /// Stops the timer; whether it interrupted the query.
    fn stop(self) -> bool {
        drop(self.done);
        let _ = self.thread.join();
        self.fired.load(Ordering::SeqCst)
    }
}

enum Failure {
    Refused(Refusal),
    /// An error while checking or preparing the query (parsing, binding).
    DuckDb(duckdb::Error),
    /// An error while the query ran: its message may quote the data.
    Running(duckdb::Error),
}

impl From<duckdb::Error> for Failure {
    fn from(err: duckdb::Error) -> Self {
        Failure::DuckDb(err)
    }
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Self {
        Failure::Refused(refusal)
    }
}

struct Sandbox {
    conn: Connection,
    /// Server paths that must not appear in messages, with what replaces them.
    redactions: Vec<(String, &'static str)>,
}

impl Sandbox {
    /// A fresh in-memory database that can read the dataset file and nothing else.
    fn open(
        data: &Path,
        spill: &Path,
        masked: &[(String, String)],
        memory_bytes: u64,
    ) -> anyhow::Result<Sandbox> {
        let memory_limit = format!("{memory_bytes}B");
        let file =
            std::fs::canonicalize(data).with_context(|| format!("opening dataset {}", data.display()))?;
        let file_text = file.to_str().context("the dataset path must be valid UTF-8")?.to_string();
        let spill_text = spill.to_str().context("the spill directory must be valid UTF-8")?.to_string();
        let config = DuckConfig::default()
            .enable_autoload_extension(false)?
            .with("autoinstall_known_extensions", "false")?
            .with("temp_directory", &spill_text)?
            .with("max_temp_directory_size", MAX_SPILL)?
            .max_memory(&memory_limit)
            .with_context(|| format!("sandbox memory limit {memory_limit}"))?
            .threads(1)?;
        let conn = Connection::open_in_memory_with_flags(config).context("opening the sandbox database")?;
        let path = quote_literal(&file_text);
        conn.register_scalar_function::<MaskFn>(MASK_FN).context("registering the sandbox's masks")?;
        let replace = masking_clause(&conn, &path, masked)?;
        conn.execute_batch(&format!(
            "CREATE VIEW {DATA} AS SELECT *{replace} FROM read_parquet({path});
             SET allowed_paths = [{path}];
             SET enable_external_access = false;
             SET lock_configuration = true;"
        ))
        .context("locking down the sandbox database")?;
        let mut redactions = vec![(file_text, DATA), (spill_text, "<spill>")];
        if let Some(given) = data.to_str() {
            redactions.push((given.to_string(), DATA));
        }
        redactions.retain(|(path, _)| !path.is_empty());
        Ok(Sandbox { conn, redactions })
    }

    fn query(&self, sql: &str, max_rows: usize) -> Result<QueryOutput, Failure> {
        let Checked { canonical, reads_data, derived, select_numbers } = self.validate(sql)?;
        // The row limit wraps the canonical text, and each column becomes its JSON text
        // (to_json keeps numbers, booleans and nesting, and spells every other type).
        let wrapped = format!(
            "SELECT to_json(COLUMNS(*))::VARCHAR FROM ({canonical}) AS sandboxed LIMIT {}",
            max_rows.saturating_add(1)
        );
        // What runs is what is checked: a rendering that parsed differently is caught here.
        self.validate(&wrapped)?;
        let mut statement = self.conn.prepare(&wrapped)?;
        let mut rows = statement.query([]).map_err(Failure::Running)?;
        let columns = rows.as_ref().map(|s| s.column_names()).unwrap_or_default();
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(Failure::Running)? {
            let mut cells = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                cells.push(cell(row.get::<_, Option<String>>(i).map_err(Failure::Running)?));
            }
            out.push(cells);
        }
        let truncated = out.len() > max_rows;
        out.truncate(max_rows);
        let derived = derived.filter(|d| d.len() == columns.len());
        let select_numbers = if derived.is_some() { select_numbers } else { Vec::new() };
        Ok(QueryOutput { sql: canonical, columns, rows: out, truncated, reads_data, derived, select_numbers })
    }

    /// Parses `sql` with DuckDB, checks its syntax tree, and returns its canonical text,
    /// whether it reads `data`, and which of its result columns come from the data.
    fn validate(&self, sql: &str) -> Result<Checked, Failure> {
        let tree: String =
            self.conn.query_row("SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", [sql], |r| r.get(0))?;
        let parsed = json::parse(&tree, MAX_TREE_DEPTH)
            .map_err(|_| Refusal::Invalid("the query is nested too deeply".into()))?;
        if parsed.get("error").and_then(Value::as_bool) != Some(false) {
            let message =
                parsed.get("error_message").and_then(Value::as_str).unwrap_or("the query is invalid");
            // "Only SELECT statements can be serialized": any other statement, stacked or not.
            return Err(if message.contains("Only SELECT") {
                not_read_only()
            } else {
                Refusal::Invalid(self.clean(message))
            }
            .into());
        }
        let statements = parsed.get("statements").and_then(Value::as_array).ok_or_else(|| {
            Refusal::Forbidden("the query's structure is not recognised by the sandbox".into())
        })?;
        match statements.len() {
            0 => return Err(Refusal::Invalid("the query is empty".into()).into()),
            1 => {}
            _ => return Err(not_read_only().into()),
        }
        let mut checker = Checker::default();
        checker.check(&parsed)?;
        let canonical: String =
            self.conn.query_row("SELECT json_deserialize_sql(?::JSON)", [&tree], |r| r.get(0))?;
        let node = statements[0].get("node");
        let derived = node.and_then(derived_columns);
        let mut select_numbers = Vec::new();
        if let Some(list) = node.and_then(|n| n.get("select_list")) {
            written_numbers(list, &mut select_numbers);
        }
        Ok(Checked { canonical, reads_data: checker.reads_data, derived, select_numbers })
    }

    /// Sorts a DuckDB failure into a refusal; `fired` says the timer interrupted the query,
    /// `running` that the error came while it ran (not while it was parsed and bound).
    fn classify(
        &self,
        err: duckdb::Error,
        fired: bool,
        running: bool,
    ) -> anyhow::Result<Result<QueryOutput, Refusal>> {
        let text = err.to_string();
        // Errors about the query's text (syntax, unknown names) keep their quoted names; any
        // other may quote values of the data.
        let head: String = text.chars().take(40).collect();
        let about_names = !running
            && ["Parser Error", "Binder Error", "Catalog Error"].iter().any(|kind| head.contains(kind));
        let refusal = if fired && (text.contains("INTERRUPT") || text.contains("Interrupted")) {
            Refusal::TimedOut
        } else if text.contains("Out of Memory Error") {
            Refusal::TooMuchMemory
        } else if text.contains("Permission Error") {
            Refusal::Forbidden(self.clean(&text))
        } else if text.contains("INTERNAL Error") || text.contains("FATAL Error") || text.contains("IO Error")
        {
            return Err(anyhow::Error::new(err).context("sandboxed query failed"));
        } else if about_names {
            Refusal::Invalid(self.clean(&text))
        } else {
            Refusal::Invalid(cut(&without_quoted_values(&self.clean(&text)), MAX_RUNTIME_ERROR_CHARS))
        };
        Ok(Err(refusal))
    }

    /// A DuckDB message for the client: without server paths or the position context (which
    /// points into the wrapped text), and not too long.
    fn clean(&self, message: &str) -> String {
        let mut text = message.to_string();
        for (path, replacement) in &self.redactions {
            text = text.replace(path.as_str(), replacement);
        }
        if let Some(at) = text.find("\nLINE ") {
            text.truncate(at);
        }
        cut(text.trim(), 500)
    }
}

/// The `REPLACE (…)` clause of the view `data`, which masks every column that may hold
/// personal data in text: the columns named in `masked` as their kind's mask
/// ([`crate::domain::mask`]), and every other text column's e-mails, IBANs and long digit
/// runs written inside its values ([`crate::domain::mask_embedded`]) — in the view, not on the
/// query's result, where SQL could have re-encoded a value past any mask (`translate`, slices).
/// Lists of text are masked item by item; other values holding text (structs, maps, blobs)
/// become their masked text. Both masks are [`MASK_FN`], Rust's own functions. Only the
/// column's name, quoted, comes from outside.
fn masking_clause(conn: &Connection, path: &str, masked: &[(String, String)]) -> anyhow::Result<String> {
    let mut statement = conn.prepare(&format!("DESCRIBE SELECT * FROM read_parquet({path})"))?;
    let columns: Vec<(String, String)> = statement
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<Result<_, _>>()?;
    let replacements: Vec<String> = columns
        .iter()
        .filter_map(|(name, ty)| {
            let column = super::quote_identifier(name);
            let kind = masked.iter().find(|(c, _)| c.to_lowercase() == name.to_lowercase()).map(|(_, k)| k);
            let expression = match kind {
                Some(kind) => format!("{MASK_FN}({}, CAST({column} AS VARCHAR))", quote_literal(kind)),
                None if ty == "VARCHAR" => format!("{MASK_FN}('', {column})"),
                None if ty == "VARCHAR[]" => format!("list_transform({column}, lambda x: {MASK_FN}('', x))"),
                // Types that hold no text stay as they are; any other (structs, maps, blobs,
                // JSON, VARIANT, unions, types yet to come) becomes its masked text.
                None if holds_no_text(ty) => return None,
                None => format!("{MASK_FN}('', CAST({column} AS VARCHAR))"),
            };
            Some(format!("{expression} AS {column}"))
        })
        .collect();
    Ok(if replacements.is_empty() {
        String::new()
    } else {
        format!(" REPLACE ({})", replacements.join(", "))
    })
}

/// Whether a column of DuckDB type `ty` (as `DESCRIBE` spells it) cannot hold text: numbers,
/// booleans, dates and times, intervals, UUIDs, and lists and arrays of those.
fn holds_no_text(ty: &str) -> bool {
    let base = ty.trim_end_matches(|c: char| c == ']' || c == '[' || c.is_ascii_digit());
    let base = base.split('(').next().unwrap_or(base).trim();
    super::is_integer_type(base)
        || matches!(
            base,
            "BOOLEAN"
                | "FLOAT"
                | "DOUBLE"
                | "DECIMAL"
                | "DATE"
                | "TIME"
                | "TIME WITH TIME ZONE"
                | "TIMESTAMP"
                | "TIMESTAMP WITH TIME ZONE"
                | "TIMESTAMP_S"
                | "TIMESTAMP_MS"
                | "TIMESTAMP_NS"
                | "INTERVAL"
                | "UUID"
        )
}

/// The scalar function `(kind VARCHAR, value VARCHAR) -> VARCHAR` of the view's masks: a
/// value of personal data of `kind` as [`crate::domain::mask`] shows it, or, for the kind
/// `''`, the value with the personal data written inside it masked
/// ([`crate::domain::mask_embedded`]); null for null.
const MASK_FN: &str = "agensium_mask";

/// [`MASK_FN`].
struct MaskFn;

impl VScalar for MaskFn {
    type State = ();

    fn invoke(
        _: &Self::State,
        input: &mut DataChunkHandle,
        output: &mut dyn WritableVector,
    ) -> Result<(), Box<dyn std::error::Error>> {
        super::map_two_texts(input, output, |kind, value| {
            Some(if kind.is_empty() {
                crate::domain::mask_embedded(value).into_owned()
            } else {
                crate::domain::mask(kind, value)
            })
        });
        Ok(())
    }

    fn signatures() -> Vec<ScalarFunctionSignature> {
        super::of_two_texts(LogicalTypeId::Varchar)
    }
}

/// What [`Sandbox::validate`] found.
struct Checked {
    canonical: String,
    reads_data: bool,
    derived: Option<Vec<bool>>,
    select_numbers: Vec<f64>,
}

/// The numbers the constants under `value` write: numeric literals, and numbers inside text
/// literals (`'4217 rows'`).
fn written_numbers(value: &Value, out: &mut Vec<f64>) {
    match value {
        Value::Object(map) => {
            if map.get("class").and_then(Value::as_str) == Some("CONSTANT")
                && let Some(text) = map.get("literal").and_then(|l| l.get("text")).and_then(Value::as_str)
            {
                out.extend(crate::explain::numbers_in(text).iter().filter_map(|t| t.parse::<f64>().ok()));
            }
            map.values().for_each(|v| written_numbers(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| written_numbers(v, out)),
        _ => {}
    }
}

/// For a `SELECT` over the dataset's table alone (no CTE, no subquery, no `*`), whether each
/// result column is computed from the data: its expression names a column or counts rows.
/// `None` for any other query (the caller then cannot tell).
fn derived_columns(node: &Value) -> Option<Vec<bool>> {
    let ctes = node.get("cte_map")?.get("map")?.as_array()?;
    let from = node.get("from_table")?;
    if node.get("type")?.as_str()? != "SELECT_NODE"
        || !ctes.is_empty()
        || from.get("type")?.as_str()? != "BASE_TABLE"
        || text(from.as_object()?, "table_name").to_lowercase() != DATA
    {
        return None;
    }
    node.get("select_list")?
        .as_array()?
        .iter()
        .map(|e| {
            if holds(e, "class", "STAR") || holds(e, "class", "SUBQUERY") {
                return None;
            }
            Some(holds(e, "class", "COLUMN_REF") || holds(e, "function_name", "count_star"))
        })
        .collect()
}

fn not_read_only() -> Refusal {
    Refusal::NotReadOnly(format!("only a single SELECT statement over `{DATA}` is allowed"))
}

/// Walks DuckDB's JSON syntax tree, keeping the CTE names in scope.
#[derive(Default)]
struct Checker {
    scopes: Vec<Vec<String>>,
    /// Table references and CTEs seen so far, against [`MAX_TABLE_REFS`] and [`MAX_CTES`].
    table_refs: usize,
    ctes: usize,
    /// Whether the dataset's table itself (not a CTE of that name) is read.
    reads_data: bool,
}

impl Checker {
    fn check(&mut self, value: &Value) -> Result<(), Refusal> {
        match value {
            Value::Array(items) => items.iter().try_for_each(|item| self.check(item)),
            Value::Object(map) => {
                // A node's CTEs are in scope for the whole node, their own bodies included
                // (recursive CTEs).
                let scoped = match map.get("cte_map") {
                    Some(ctes) => {
                        let names = cte_names(ctes)?;
                        self.ctes += names.len();
                        if self.ctes > MAX_CTES {
                            return Err(Refusal::Invalid(format!(
                                "the query defines more than {MAX_CTES} CTEs; simplify it"
                            )));
                        }
                        self.scopes.push(names);
                        true
                    }
                    None => false,
                };
                let result = self.check_object(map);
                if scoped {
                    self.scopes.pop();
                }
                result
            }
            _ => Ok(()),
        }
    }

    fn check_object(&mut self, map: &serde_json::Map<String, Value>) -> Result<(), Refusal> {
        if let Some(name) = map.get("function_name") {
            check_function(name.as_str().unwrap_or(""), map, false)?;
        }
        if !map.contains_key("class")
            && let Some(kind) = map.get("type").and_then(Value::as_str)
        {
            let table_ref = TABLE_REF_KINDS.contains(&kind)
                || (map.contains_key("alias")
                    && map.contains_key("sample")
                    && map.contains_key("query_location"));
            if table_ref {
                self.check_table_ref(kind, map)?;
                if kind == "TABLE_FUNCTION" {
                    // The call itself is a table function (checked above, and streaming rows);
                    // its arguments are expressions like any other.
                    return map.iter().try_for_each(|(key, value)| match value {
                        Value::Object(call) if key == "function" => {
                            check_function(text(call, "function_name"), call, true)?;
                            call.values().try_for_each(|v| self.check(v))
                        }
                        _ => self.check(value),
                    });
                }
            } else if kind.ends_with("_NODE") && !QUERY_NODE_KINDS.contains(&kind) {
                return Err(not_read_only());
            }
        }
        map.values().try_for_each(|value| self.check(value))
    }

    fn check_table_ref(&mut self, kind: &str, map: &serde_json::Map<String, Value>) -> Result<(), Refusal> {
        if !matches!(kind, "JOIN" | "EMPTY") {
            self.table_refs += 1;
            if self.table_refs > MAX_TABLE_REFS {
                return Err(Refusal::Invalid(format!(
                    "the query reads more than {MAX_TABLE_REFS} tables, CTEs, subqueries or table \
                     functions; simplify it"
                )));
            }
        }
        match kind {
            "BASE_TABLE" => {
                let name = text(map, "table_name");
                let qualified = !text(map, "schema_name").is_empty()
                    || !text(map, "catalog_name").is_empty()
                    || map
                        .get("qualified_name")
                        .and_then(|q| q.get("path"))
                        .and_then(Value::as_array)
                        .is_some_and(|path| path.len() > 1);
                let lower = name.to_lowercase();
                let cte = self.scopes.iter().flatten().any(|cte| *cte == lower);
                if !qualified && (lower == DATA || cte) {
                    self.reads_data |= lower == DATA && !cte;
                    Ok(())
                } else {
                    Err(Refusal::Forbidden(format!(
                        "only the dataset's table `{DATA}` (and CTEs defined in the query) can be read, not `{}`",
                        cut(&qualified_name(map, name), 100)
                    )))
                }
            }
            "TABLE_FUNCTION" => {
                let function = map.get("function");
                let name =
                    function.and_then(|f| f.get("function_name")).and_then(Value::as_str).unwrap_or("");
                let qualified = ["schema", "catalog"].iter().any(|key| {
                    function.and_then(|f| f.get(*key)).and_then(Value::as_str).is_some_and(|s| !s.is_empty())
                });
                if !qualified && ALLOWED_TABLE_FUNCTIONS.contains(&name.to_lowercase().as_str()) {
                    Ok(())
                } else {
                    Err(Refusal::Forbidden(format!(
                        "table function `{}` is not allowed: read `{DATA}`, or generate rows with range, \
                         generate_series or unnest",
                        cut(name, 100)
                    )))
                }
            }
            "JOIN" | "SUBQUERY" | "EXPRESSION_LIST" | "EMPTY" | "PIVOT" => Ok(()),
            "SHOW_REF" => Err(Refusal::NotReadOnly(format!(
                "DESCRIBE, SHOW and SUMMARIZE are not allowed: only a single SELECT statement over `{DATA}`"
            ))),
            other => Err(Refusal::Forbidden(format!("`{}` is not allowed in the sandbox", cut(other, 100)))),
        }
    }
}

/// Checks a call of `name`; `table_function` when it is the call of a table function in FROM
/// (whose name the table-reference check has already restricted).
fn check_function(
    name: &str,
    map: &serde_json::Map<String, Value>,
    table_function: bool,
) -> Result<(), Refusal> {
    let lower = name.to_lowercase();
    if !text(map, "schema").is_empty() || !text(map, "catalog").is_empty() {
        return Err(Refusal::Forbidden(format!(
            "functions must not be qualified with a schema or catalog (`{}`)",
            cut(name, 100)
        )));
    }
    if FORBIDDEN_FUNCTIONS.contains(&lower.as_str())
        || FORBIDDEN_PREFIXES.iter().any(|p| lower.starts_with(p))
    {
        return Err(Refusal::Forbidden(format!(
            "function `{}` is not allowed in the sandbox",
            cut(name, 100)
        )));
    }
    // `a || b || c`: each `||` below another allocates a whole intermediate result, which
    // DuckDB's memory limit does not count: eight operands over nine CTE levels took the
    // server to 4 GB under a 256 MiB limit, and so did three, or a chain broken by
    // `coalesce(…)`, over more levels. One `||` allocates its result once, as `concat` does.
    if lower == "||" && map.get("arguments").is_some_and(|arguments| holds(arguments, "function_name", "||"))
    {
        return Err(Refusal::Forbidden(
            "`||` inside another `||` is not allowed in the sandbox: write concat(a, b, c, …) instead \
             (it skips NULLs, where || gives NULL)"
                .into(),
        ));
    }
    if !table_function && AMPLIFYING_FUNCTIONS.contains(&lower.as_str()) {
        return Err(Refusal::Forbidden(format!(
            "function `{}` is not allowed in the sandbox: it can build a value far larger than its \
             input (to combine rows, aggregate with GROUP BY; to generate rows, use FROM range(…))",
            cut(name, 100)
        )));
    }
    Ok(())
}

/// Whether `value` holds, at any depth, an object whose `key` is the text `wanted`.
fn holds(value: &Value, key: &str, wanted: &str) -> bool {
    match value {
        Value::Object(map) => {
            map.get(key).and_then(Value::as_str) == Some(wanted)
                || map.values().any(|v| holds(v, key, wanted))
        }
        Value::Array(items) => items.iter().any(|v| holds(v, key, wanted)),
        _ => false,
    }
}

/// The names a `cte_map` defines. They must be plain identifiers, so that no CTE name can
/// stand for a file.
fn cte_names(ctes: &Value) -> Result<Vec<String>, Refusal> {
    let entries = ctes
        .get("map")
        .and_then(Value::as_array)
        .ok_or_else(|| Refusal::Forbidden("the query's structure is not recognised by the sandbox".into()))?;
    entries
        .iter()
        .map(|entry| {
            let name = entry.get("key").and_then(Value::as_str).unwrap_or("");
            // Inlined CTEs are planned again at every use: a chain of them doubles the
            // planner's work per level, and the planner does not check the interrupt.
            if entry.get("value").and_then(|v| v.get("materialized")).and_then(Value::as_str)
                == Some("CTE_MATERIALIZE_NEVER")
            {
                return Err(Refusal::Forbidden(format!(
                    "NOT MATERIALIZED CTEs are not allowed in the sandbox (`{}`); drop the NOT \
                     MATERIALIZED",
                    cut(name, 100)
                )));
            }
            let plain = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && name.len() <= 64;
            if plain {
                Ok(name.to_lowercase())
            } else {
                Err(Refusal::Forbidden(format!(
                    "CTE names must be plain identifiers (letters, digits, underscores), not `{}`",
                    cut(name, 100)
                )))
            }
        })
        .collect()
}

fn text<'a>(map: &'a serde_json::Map<String, Value>, key: &str) -> &'a str {
    map.get(key).and_then(Value::as_str).unwrap_or("")
}

fn qualified_name(map: &serde_json::Map<String, Value>, name: &str) -> String {
    [text(map, "catalog_name"), text(map, "schema_name"), name]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(".")
}

/// `text` with everything between quotes (`'…'`, `"…"`) replaced by `…`: from the first quote
/// to the last of the same kind, so that quotes inside a value cannot end it early.
fn without_quoted_values(text: &str) -> String {
    let Some(start) = text.find(['\'', '"']) else {
        return text.to_string();
    };
    let quote = if text[start..].starts_with('\'') { '\'' } else { '"' };
    let end = text.rfind(quote).unwrap_or(start);
    if end == start {
        // Never closed: drop the rest.
        return format!("{}…", &text[..=start]);
    }
    format!("{}…{quote}{}", &text[..=start], without_quoted_values(&text[end + 1..]))
}

/// `text` cut to `max` characters, with `…` when cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// One result cell from its `to_json` text.
fn cell(json_text: Option<String>) -> Value {
    let Some(json_text) = json_text else { return Value::Null };
    if json_text.len() > MAX_CELL_JSON {
        return Value::String(cut(&json_text, MAX_CELL_CHARS));
    }
    match json::parse(&json_text, 64) {
        Ok(mut value) => {
            cap_strings(&mut value);
            value
        }
        // NaN and Infinity are not JSON: keep their text.
        Err(_) => Value::String(cut(&json_text, MAX_CELL_CHARS)),
    }
}

fn cap_strings(value: &mut Value) {
    match value {
        Value::String(s) if s.chars().count() > MAX_CELL_CHARS => *s = cut(s, MAX_CELL_CHARS),
        Value::Array(items) => items.iter_mut().for_each(cap_strings),
        Value::Object(map) => map.values_mut().for_each(cap_strings),
        _ => {}
    }
}

/// JSON with a caller-chosen depth limit: DuckDB's syntax trees nest deeper than serde_json's
/// default limit of 128 for ordinary queries (about 40 chained `+`). The nesting is measured
/// first, then serde_json parses without its limit — on the large stack [`run_masked`] gives
/// the work.
mod json {
    use serde::Deserialize;
    use serde_json::Value;

    pub fn parse(text: &str, max_depth: usize) -> Result<Value, String> {
        if nesting(text) > max_depth {
            return Err(format!("nested deeper than {max_depth}"));
        }
        let mut reader = serde_json::Deserializer::from_str(text);
        reader.disable_recursion_limit();
        let value = Value::deserialize(&mut reader).map_err(|e| e.to_string())?;
        reader.end().map_err(|e| e.to_string())?;
        Ok(value)
    }

    /// The deepest nesting of arrays and objects, outside strings.
    fn nesting(text: &str) -> usize {
        let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
        for byte in text.bytes() {
            if in_string {
                match byte {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            match byte {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        deepest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        dir: tempfile::TempDir,
        data: PathBuf,
        spill: PathBuf,
    }

    /// A Parquet file of 100 rows: id 1..=100, g = 'a'/'b'/'c' for id % 3 = 0/1/2,
    /// amount = 1.5 * id, day = 2024-01-01 + id days, note NULL for even ids,
    /// email = user<id>@example.com.
    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data.parquet");
        let spill = dir.path().join("spill");
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!(
            "COPY (SELECT i::INTEGER AS id, ['a', 'b', 'c'][i % 3 + 1] AS g, i * 1.5 AS amount,
                          DATE '2024-01-01' + i::INTEGER AS day,
                          CASE WHEN i % 2 = 1 THEN repeat('x', i * 3) END AS note,
                          'user' || i || '@example.com' AS email
                   FROM range(1, 101) t(i))
             TO {} (FORMAT parquet)",
            quote_literal(data.to_str().unwrap())
        ))
        .unwrap();
        Fixture { dir, data, spill }
    }

    fn limits() -> SandboxLimits {
        SandboxLimits::new(50, Duration::from_secs(10), 256_000_000)
    }

    impl Fixture {
        fn run_with(&self, sql: &str, limits: &SandboxLimits) -> Result<QueryOutput, Refusal> {
            run(&self.data, &self.spill, sql, limits).unwrap()
        }

        fn run(&self, sql: &str) -> Result<QueryOutput, Refusal> {
            self.run_with(sql, &limits())
        }

        fn ok(&self, sql: &str) -> QueryOutput {
            self.run(sql).unwrap_or_else(|r| panic!("{sql}: refused: {r:?}"))
        }

        fn refused(&self, sql: &str) -> Refusal {
            match self.run(sql) {
                Ok(out) => panic!("{sql}: ran: {out:?}"),
                Err(refusal) => refusal,
            }
        }

        fn assert_not_read_only(&self, sql: &str) {
            let refusal = self.refused(sql);
            assert!(matches!(refusal, Refusal::NotReadOnly(_)), "{sql}: {refusal:?}");
            assert_eq!(refusal.code(), ErrorCode::BadUserInput);
        }

        fn assert_forbidden(&self, sql: &str) {
            let refusal = self.refused(sql);
            assert!(matches!(refusal, Refusal::Forbidden(_)), "{sql}: {refusal:?}");
            assert_eq!(refusal.code(), ErrorCode::Forbidden);
        }

        fn assert_invalid(&self, sql: &str) -> String {
            let refusal = self.refused(sql);
            assert!(matches!(refusal, Refusal::Invalid(_)), "{sql}: {refusal:?}");
            assert_eq!(refusal.code(), ErrorCode::BadUserInput);
            refusal.message()
        }

        /// The dataset file's bytes, to show nothing wrote to it.
        fn data_bytes(&self) -> Vec<u8> {
            std::fs::read(&self.data).unwrap()
        }

        /// Every file and folder under the fixture's directory, but the spill folder (which
        /// each query creates and removes).
        fn listing(&self) -> Vec<PathBuf> {
            fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
                for entry in std::fs::read_dir(dir).unwrap() {
                    let path = entry.unwrap().path();
                    out.push(path.clone());
                    if path.is_dir() {
                        walk(&path, out);
                    }
                }
            }
            let mut out = Vec::new();
            walk(self.dir.path(), &mut out);
            out.retain(|p| !p.starts_with(&self.spill));
            out.sort();
            out
        }
    }

    #[test]
    fn aggregates_over_the_dataset() {
        let f = fixture();
        let out = f.ok("SELECT g, count(*) AS n, sum(amount) AS total FROM data GROUP BY g ORDER BY g");
        assert_eq!(out.columns, ["g", "n", "total"]);
        assert!(out.reads_data);
        // A query of constants alone, or of a CTE that hides the dataset's name, reads nothing.
        for constant in [
            "SELECT 4216 + 1 AS n",
            "SELECT count(*) FROM range(4217)",
            "WITH data AS (SELECT 4217 AS n) SELECT n FROM data",
        ] {
            assert!(!f.ok(constant).reads_data, "{constant}");
        }
        assert!(f.ok("WITH t AS (SELECT * FROM data) SELECT count(*) FROM t").reads_data);
        // Which result columns come from the data: not a constant beside data, whatever its FROM.
        assert_eq!(out.derived, Some(vec![true, true, true]));
        let mixed = f
            .ok("SELECT 4216 + 1 AS n, count(*) AS c, max(amount) AS m, 'x' AS s FROM data WHERE amount > 3");
        assert_eq!(mixed.derived, Some(vec![false, true, true, false]));
        assert_eq!(mixed.select_numbers, [4216.0, 1.0], "not the WHERE's 3");
        let aliased = f.ok("SELECT 4217 AS a, a + 0 AS b, '12 rows' AS s FROM data");
        assert_eq!(aliased.select_numbers, [4217.0, 0.0, 12.0]);
        for unknown in [
            "SELECT * FROM data",
            "WITH t AS (SELECT 4217 AS n FROM data) SELECT n FROM t",
            "SELECT (SELECT count(*) FROM data) AS n FROM data",
            "SELECT 4217 AS n",
        ] {
            assert_eq!(f.ok(unknown).derived, None, "{unknown}");
        }
        assert_eq!(
            out.rows,
            vec![
                vec![Value::from("a"), Value::from(33), Value::from(2524.5)],
                vec![Value::from("b"), Value::from(34), Value::from(2575.5)],
                vec![Value::from("c"), Value::from(33), Value::from(2475.0)],
            ]
        );
        assert!(!out.truncated);
        assert!(out.sql.starts_with("SELECT g, "), "{}", out.sql);
    }

    #[test]
    fn ctes_joins_and_spellings_of_data_work() {
        let f = fixture();
        let out = f
            .ok("WITH big AS (SELECT id FROM DaTa WHERE amount > 120), odd AS (SELECT id FROM \"data\" \
                        WHERE id % 2 = 1) SELECT count(*) FROM big JOIN odd USING (id)");
        // ids 81..=100 have amount > 120; 10 of them are odd.
        assert_eq!(out.rows, vec![vec![Value::from(10)]]);
        let out = f.ok("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) \
                        SELECT sum(n) FROM r");
        assert_eq!(out.rows, vec![vec![Value::from(15)]]);
        let out =
            f.ok("SELECT count(*) FROM range(10) t(x), unnest([1, 2]) u(y), generate_series(1, 2) s(z)");
        assert_eq!(out.rows, vec![vec![Value::from(40)]]);
        let out = f.ok("FROM data SELECT max(id)");
        assert_eq!(out.rows, vec![vec![Value::from(100)]]);
    }

    #[test]
    fn the_row_limit_truncates() {
        let f = fixture();
        let small = SandboxLimits { max_rows: 10, ..limits() };
        let out = f.run_with("SELECT id FROM data ORDER BY id DESC", &small).unwrap();
        assert_eq!(out.rows.len(), 10);
        assert!(out.truncated);
        assert_eq!(out.rows[0], vec![Value::from(100)]);
        assert_eq!(out.rows[9], vec![Value::from(91)]);
        let out = f.run_with("SELECT id FROM data WHERE id <= 10", &small).unwrap();
        assert_eq!(out.rows.len(), 10);
        assert!(!out.truncated);
    }

    #[test]
    fn values_become_json() {
        let f = fixture();
        let out = f.ok("SELECT day, note, id::DECIMAL(10, 2) / 4 AS quarter, [id, id + 1] AS pair, \
                        {'k': g} AS s, 'NaN'::DOUBLE AS nan, id > 1 AS more, 'x' AS \"x\" FROM data \
                        WHERE id IN (1, 2, 99) ORDER BY id");
        assert_eq!(out.columns, ["day", "note", "quarter", "pair", "s", "nan", "more", "x"]);
        assert_eq!(out.rows[0][0], Value::from("2024-01-02"));
        assert_eq!(out.rows[0][1], Value::from("xxx"));
        assert_eq!(out.rows[0][2], Value::from(0.25));
        assert_eq!(out.rows[0][3], serde_json::json!([1, 2]));
        assert_eq!(out.rows[0][4], serde_json::json!({"k": "b"}));
        assert_eq!(out.rows[0][5], Value::from("NaN"));
        assert_eq!(out.rows[0][6], Value::from(false));
        assert_eq!(out.rows[1][1], Value::Null);
        // id 99: a note of 297 characters, cut at 200.
        let long = out.rows[2][1].as_str().unwrap();
        assert_eq!(long.chars().count(), MAX_CELL_CHARS + 1);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn comments_and_case_tricks_disappear_from_the_canonical_sql() {
        let f = fixture();
        let out = f.ok("sElEcT /* hi */ count(*) FrOm DaTa -- ; ATTACH 'x.db'");
        assert_eq!(out.rows, vec![vec![Value::from(100)]]);
        assert!(
            !out.sql.contains("hi") && !out.sql.contains("ATTACH") && !out.sql.contains("--"),
            "{}",
            out.sql
        );
        let out = f.ok("/*; ATTACH 'x.db' */ SELECT /* */ * FROM data WHERE id = 1");
        assert_eq!(out.rows.len(), 1);
        assert!(!out.sql.contains("ATTACH"), "{}", out.sql);
        let out = f.ok("SELECT 1;");
        assert_eq!(out.rows, vec![vec![Value::from(1)]]);
    }

    #[test]
    fn statements_other_than_select_are_refused_without_side_effects() {
        let f = fixture();
        let before = (f.data_bytes(), f.listing());
        let d = f.dir.path().display();
        let statements = [
            format!("ATTACH '{d}/attached.db' AS other"),
            format!("ATTACH '{d}/attached.db'"),
            "DETACH other".into(),
            format!("COPY data TO '{d}/copied.csv'"),
            format!("COPY (SELECT * FROM data) TO '{d}/copied.parquet' (FORMAT parquet)"),
            format!("COPY data FROM '{d}/data.parquet'"),
            "INSTALL httpfs".into(),
            "LOAD httpfs".into(),
            "FORCE INSTALL httpfs".into(),
            "PRAGMA version".into(),
            "PRAGMA enable_profiling".into(),
            "SET enable_external_access = true".into(),
            "SET memory_limit = '100GB'".into(),
            "SET VARIABLE x = 1".into(),
            "RESET allowed_paths".into(),
            "CALL pragma_version()".into(),
            "CREATE TABLE t AS SELECT * FROM data".into(),
            "CREATE VIEW v AS SELECT 1".into(),
            "CREATE OR REPLACE VIEW data AS SELECT * FROM read_csv('/etc/passwd')".into(),
            "CREATE MACRO m(x) AS x + 1".into(),
            "CREATE SECRET s (TYPE s3, KEY_ID 'k', SECRET 's')".into(),
            "CREATE SEQUENCE seq".into(),
            "CREATE TYPE mood AS ENUM ('a')".into(),
            "INSERT INTO data VALUES (1)".into(),
            "UPDATE data SET id = 1".into(),
            "DELETE FROM data".into(),
            "DROP VIEW data".into(),
            "ALTER VIEW data RENAME TO gone".into(),
            format!("EXPORT DATABASE '{d}/exported'"),
            format!("IMPORT DATABASE '{d}'"),
            "USE memory".into(),
            "CHECKPOINT".into(),
            "BEGIN TRANSACTION".into(),
            "COMMIT".into(),
            "VACUUM".into(),
            "ANALYZE".into(),
            "EXPLAIN SELECT * FROM data".into(),
            "EXPLAIN ANALYZE SELECT * FROM data".into(),
            "DESCRIBE data".into(),
            "SUMMARIZE data".into(),
            "SUMMARIZE SELECT * FROM data".into(),
            "SHOW TABLES".into(),
            "SHOW data".into(),
            "PIVOT data ON g USING sum(id)".into(),
            // Stacking: a SELECT first does not make the rest read-only.
            "SELECT 1; DROP VIEW data".into(),
            format!("SELECT 1; ATTACH '{d}/attached.db'"),
            format!("SELECT * FROM data; COPY data TO '{d}/copied.csv'"),
            "SELECT 1; SELECT 2".into(),
            format!("SELECT 1 /* */; ATTACH '{d}/attached.db'"),
            format!("SELECT 1 -- comment\n; ATTACH '{d}/attached.db'"),
            format!("sElEcT 1; aTtAcH '{d}/attached.db'"),
        ];
        for sql in &statements {
            f.assert_not_read_only(sql);
        }
        assert_eq!((f.data_bytes(), f.listing()), before, "a refused statement left a trace");
        assert!(!f.dir.path().join("copied.csv").exists());
        assert!(!f.dir.path().join("attached.db").exists());
    }

    #[test]
    fn file_reading_functions_are_forbidden() {
        let f = fixture();
        let before = (f.data_bytes(), f.listing());
        let file = f.data.display();
        let calls = [
            "read_csv('/etc/passwd')".to_string(),
            "read_csv_auto('/etc/passwd')".into(),
            "read_parquet('x.parquet')".into(),
            format!("read_parquet('{file}')"),
            format!("parquet_scan('{file}')"),
            format!("parquet_metadata('{file}')"),
            format!("parquet_schema('{file}')"),
            format!("parquet_file_metadata('{file}')"),
            "read_json('/etc/passwd')".into(),
            "read_json_auto('/etc/passwd')".into(),
            "read_ndjson('/etc/passwd')".into(),
            "read_json_objects('/etc/passwd')".into(),
            "read_text('/etc/passwd')".into(),
            "read_blob('/etc/passwd')".into(),
            "read_duckdb('/tmp/x.db')".into(),
            "glob('/*')".into(),
            "sniff_csv('/etc/passwd')".into(),
            "query('SELECT 1')".into(),
            "query_table('data')".into(),
            "json_execute_serialized_sql('{}')".into(),
            "duckdb_settings()".into(),
            "duckdb_tables()".into(),
            "duckdb_views()".into(),
            "duckdb_functions()".into(),
            "pragma_version()".into(),
            "test_all_types()".into(),
            "checkpoint()".into(),
            "json_each('[1]')".into(),
            "repeat_row(1, num_rows := 3)".into(),
            // Case, quotes and qualification tricks.
            "ReAd_CsV('/etc/passwd')".into(),
            "\"read_csv\"('/etc/passwd')".into(),
            "\"READ_CSV\"('/etc/passwd')".into(),
            "read_csv/**/('/etc/passwd')".into(),
            "main.read_csv('/etc/passwd')".into(),
            "system.main.read_csv('/etc/passwd')".into(),
            "main.range(3)".into(),
        ];
        for call in &calls {
            f.assert_forbidden(&format!("SELECT * FROM {call}"));
        }
        // Nested anywhere: WHERE, scalar subqueries, joins, CTEs, lateral, unnest arguments.
        let nested = [
            "SELECT * FROM data WHERE g IN (SELECT column0 FROM read_csv('/etc/passwd'))",
            "SELECT (SELECT count(*) FROM glob('/*')) AS n",
            "SELECT * FROM data, read_text('/etc/passwd')",
            "SELECT * FROM data JOIN read_csv('/etc/passwd') ON true",
            "WITH p AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM p",
            "SELECT * FROM data, LATERAL (SELECT * FROM read_text('/etc/hostname'))",
            "SELECT * FROM unnest((SELECT list(content) FROM read_text('/etc/passwd')))",
            "SELECT * FROM range((SELECT count(*) FROM glob('/*')))",
            "SELECT 1 UNION ALL SELECT count(*) FROM read_blob('/etc/passwd')",
            "SELECT exists(SELECT 1 FROM query('SELECT 1'))",
            "SELECT * FROM data WHERE id = (SELECT count(*) FROM parquet_metadata('x.parquet'))",
        ];
        for sql in nested {
            f.assert_forbidden(sql);
        }
        assert_eq!((f.data_bytes(), f.listing()), before);
    }

    #[test]
    fn other_tables_and_replacement_scans_are_forbidden() {
        let f = fixture();
        for sql in [
            "SELECT * FROM '/etc/passwd'",
            "SELECT * FROM 'x.csv'",
            "FROM '/etc/passwd'",
            "SELECT * FROM \"/etc/passwd\"",
            "SELECT * FROM data JOIN 'x.csv' ON true",
            "SELECT * FROM data WHERE id IN (FROM 'x.parquet')",
            "SELECT * FROM main.data",
            "SELECT * FROM memory.main.data",
            "SELECT * FROM information_schema.tables",
            "SELECT * FROM pg_catalog.pg_class",
            "SELECT * FROM sqlite_master",
            "SELECT * FROM duckdb_settings",
            // A CTE is in scope only inside the query that defines it.
            "SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) s, x",
            // A CTE may not be named like a file.
            "WITH \"x.csv\" AS (SELECT 1) SELECT * FROM \"x.csv\"",
        ] {
            f.assert_forbidden(sql);
        }
    }

    #[test]
    fn functions_reaching_outside_are_forbidden() {
        let f = fixture();
        for sql in [
            "SELECT current_setting('temp_directory')",
            "SELECT CURRENT_SETTING('allowed_paths')",
            "SELECT getenv('HOME')",
            "SELECT sleep_ms(10000)",
            "SELECT pg_sleep(10)",
            "SELECT write_log('x')",
            "SELECT pg_get_viewdef(1)",
            "SELECT json_serialize_sql('SELECT 1')",
            "SELECT json_deserialize_sql('{}'::JSON)",
            "SELECT main.lower('A')",
            "SELECT system.main.current_setting('memory_limit')",
            "SELECT __internal_json_copy_to_json(1)",
            "SELECT count(*) FILTER (WHERE current_setting('threads') = 1) FROM data",
            "SELECT list_transform([1], lambda x: current_setting('memory_limit'))",
        ] {
            f.assert_forbidden(sql);
        }
    }

    #[test]
    fn invalid_queries_are_bad_user_input() {
        let f = fixture();
        let message = f.assert_invalid("SELECT no_such_column FROM data");
        assert!(message.contains("no_such_column"), "{message}");
        assert!(!message.contains(&f.data.display().to_string()), "{message}");
        f.assert_invalid("SELEC 1");
        f.assert_invalid("SELECT 1 +");
        f.assert_invalid("");
        f.assert_invalid("   \n ");
        f.assert_invalid("-- only a comment");
        f.assert_invalid("SELECT 'a'::INTEGER");
        f.assert_invalid("SELECT ?");
        f.assert_invalid(&format!("SELECT {}", "1 + ".repeat(MAX_SQL_CHARS / 4) + "1"));
        // Deep but legitimate: 60 chained additions (deeper than serde_json's limit).
        let sum = (1..=60).map(|i| format!("id * {i}")).collect::<Vec<_>>().join(" + ");
        let out = f.ok(&format!("SELECT {sum} AS s FROM data WHERE id = 1"));
        assert_eq!(out.rows, vec![vec![Value::from(1830)]]);
    }

    #[test]
    fn a_slow_query_is_stopped() {
        let f = fixture();
        let quick = SandboxLimits { timeout: Duration::from_millis(200), ..limits() };
        let started = std::time::Instant::now();
        let refusal = f
            .run_with("SELECT sum(a.range * b.range) FROM range(1000000) a, range(1000000) b", &quick)
            .unwrap_err();
        assert_eq!(refusal, Refusal::TimedOut);
        assert_eq!(refusal.code(), ErrorCode::BadUserInput);
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }

    #[test]
    fn a_query_over_its_memory_limit_is_refused() {
        let f = fixture();
        let tight = SandboxLimits { memory_bytes: 32_000_000, ..limits() };
        // A value doubled 25 times: 8 bytes become 256 MB.
        let mut sql = "SELECT 'abcdefgh' AS s".to_string();
        for _ in 0..25 {
            sql = format!("SELECT s || s AS s FROM ({sql}) t");
        }
        let refusal = f.run_with(&format!("SELECT length(s) FROM ({sql}) t"), &tight).unwrap_err();
        assert_eq!(refusal, Refusal::TooMuchMemory);
        assert_eq!(refusal.code(), ErrorCode::BadUserInput);
    }

    #[test]
    fn the_database_itself_reads_only_the_dataset() {
        // The second wall, without the validation in front of it.
        let f = fixture();
        std::fs::create_dir_all(&f.spill).unwrap();
        let sandbox = Sandbox::open(&f.data, &f.spill, &[], 256_000_000).unwrap();
        let conn = &sandbox.conn;
        let count: i64 = conn.query_row("SELECT count(*) FROM data", [], |r| r.get(0)).unwrap();
        assert_eq!(count, 100);
        let out = f.dir.path().join("out.csv");
        let out_text = out.display();
        let attach = f.dir.path().join("x.db");
        for sql in [
            "SELECT * FROM read_csv('/etc/passwd')".to_string(),
            "SELECT * FROM read_text('/etc/hostname')".into(),
            format!("SELECT * FROM glob('{}/*')", f.dir.path().display()),
            format!("COPY (SELECT 1) TO '{out_text}'"),
            format!("COPY data TO '{}'", f.data.display()),
            format!("ATTACH '{}'", attach.display()),
            "SET enable_external_access = true".into(),
            "SET allowed_paths = ['/etc/passwd']".into(),
            "RESET lock_configuration".into(),
            "SET memory_limit = '100GB'".into(),
            "LOAD httpfs".into(),
            "INSTALL httpfs".into(),
        ] {
            assert!(conn.execute_batch(&sql).is_err(), "{sql} succeeded");
        }
        assert!(!out.exists());
        assert!(!attach.exists());
        let count: i64 = conn.query_row("SELECT count(*) FROM data", [], |r| r.get(0)).unwrap();
        assert_eq!(count, 100);
    }

    #[test]
    fn the_dataset_file_is_kept_from_writes_and_unmasked_reads_by_the_validation() {
        // At the second wall the dataset file itself is reachable (allowed_paths grants reading
        // and writing); the validation is what refuses these.
        let f = fixture();
        let before = (f.data_bytes(), f.listing());
        let file = f.data.display();
        f.assert_not_read_only(&format!(
            "COPY (SELECT 42 AS x) TO '{file}' (FORMAT parquet, USE_TMP_FILE false)"
        ));
        f.assert_not_read_only(&format!("COPY data TO '{file}' (FORMAT parquet)"));
        f.assert_forbidden(&format!("SELECT * FROM read_parquet('{file}')"));
        f.assert_forbidden(&format!("SELECT * FROM '{file}'"));
        f.assert_forbidden(&format!("SELECT email FROM parquet_scan(['{file}'])"));
        assert_eq!((f.data_bytes(), f.listing()), before, "the dataset file changed");
    }

    /// `WITH a0 AS … (SELECT 1 AS x), aN AS … (SELECT t1.x FROM a{N-1} t1 UNION ALL SELECT x
    /// FROM a{N-1}) … SELECT count(*) FROM a{levels-1}`.
    fn cte_chain(levels: usize, materialized: &str) -> String {
        let mut ctes = vec![format!("a0 AS {materialized} (SELECT 1 AS x)")];
        for i in 1..levels {
            ctes.push(format!(
                "a{i} AS {materialized} (SELECT t1.x FROM a{p} t1 UNION ALL SELECT x FROM a{p})",
                p = i - 1
            ));
        }
        format!("WITH {} SELECT count(*) FROM a{}", ctes.join(", "), levels - 1)
    }

    #[test]
    fn queries_whose_planning_explodes_are_refused_quickly() {
        let f = fixture();
        let quick = SandboxLimits { timeout: Duration::from_secs(2), ..limits() };
        // Inlined CTEs double the planner's work per level, and planning ignores the interrupt.
        let started = std::time::Instant::now();
        let refusal = f.run_with(&cte_chain(30, "NOT MATERIALIZED"), &quick).unwrap_err();
        assert!(matches!(refusal, Refusal::Forbidden(_)), "{refusal:?}");
        assert!(refusal.message().contains("NOT MATERIALIZED"), "{refusal:?}");
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        f.assert_forbidden("WITH a AS NOT MATERIALIZED (SELECT 1 AS x) SELECT * FROM a");
        // Materialized chains: beyond the caps they are refused, below them interruptible.
        let started = std::time::Instant::now();
        let refusal = f.run_with(&cte_chain(40, ""), &quick).unwrap_err();
        assert!(
            matches!(refusal, Refusal::Invalid(_) | Refusal::TimedOut | Refusal::TooMuchMemory),
            "{refusal:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        let started = std::time::Instant::now();
        let refusal = f.run_with(&cte_chain(31, "MATERIALIZED"), &quick).unwrap_err();
        assert!(matches!(refusal, Refusal::TimedOut | Refusal::TooMuchMemory), "{refusal:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        // The caps themselves.
        let message = f.assert_invalid(&cte_chain(MAX_CTES + 1, ""));
        assert!(message.contains("CTEs"), "{message}");
        let unions = vec!["SELECT id FROM data"; MAX_TABLE_REFS + 1].join(" UNION ALL ");
        let message = f.assert_invalid(&unions);
        assert!(message.contains("more than"), "{message}");
        // Ordinary CTEs still work, MATERIALIZED included.
        let out = f.ok("WITH a AS MATERIALIZED (SELECT id FROM data), b AS (SELECT id FROM a WHERE id < 4) \
                        SELECT sum(id) FROM b");
        assert_eq!(out.rows, vec![vec![Value::from(6)]]);
    }

    #[test]
    fn functions_that_amplify_values_are_forbidden() {
        let f = fixture();
        for sql in [
            "SELECT length(repeat('abcdefgh', 400000000))",
            "SELECT len(repeat([1], 400000000))",
            "SELECT length(lpad('x', 1000000000, 'ab'))",
            "SELECT length(replace(replace(replace('aaaaaaaaaa', 'a', 'aaaaaaaaaa'), 'a', 'aaaaaaaaaa'), 'a', 'aaaaaaaaaa'))",
            "SELECT length(regexp_replace('aaaaaaaaaa', 'a', 'aaaaaaaaaa', 'g'))",
            "SELECT length(rpad('x', 1000000000, 'ab'))",
            "SELECT length(printf('%1000000000d', 1))",
            "SELECT length(format('{:>1000000000}', 'x'))",
            "SELECT bar(1, 0, 1, 1000)",
            "SELECT len(range(300000000))",
            "SELECT len(generate_series(1, 300000000))",
            "SELECT len(list_resize([1], 300000000))",
            "SELECT len(array_resize([1], 300000000))",
            "SELECT bit_length(bitstring('1', 2000000000))",
            "SELECT string_agg(g, ',') FROM data",
            "SELECT group_concat(g) FROM data",
            "SELECT listagg(g) FROM data",
            "SELECT list(g) FROM data",
            "SELECT array_agg(g) FROM data",
            "SELECT histogram(g) FROM data",
            "SELECT histogram_exact(id, [1, 2]) FROM data",
            "SELECT bitstring_agg(id) FROM data",
            "SELECT json_group_array(g) FROM data",
            "SELECT json_group_object(g, id) FROM data",
            "SELECT json_group_structure(g) FROM data",
            // Anywhere, in any spelling.
            "SELECT RePeAt('x', 3)",
            "SELECT \"repeat\"('x', 3)",
            "SELECT * FROM data WHERE note = repeat('x', 3)",
            "SELECT list(g) OVER (ORDER BY id) FROM data",
            "SELECT * FROM range(10) t(x) WHERE x IN (SELECT unnest(range(3)))",
            "SELECT * FROM unnest(range(3))",
            "SELECT * FROM range(len(repeat('x', 3)))",
            // `||` inside `||`, whose every step allocates (a tester's 4 GB under 256 MiB).
            "SELECT g || g || g FROM data",
            "WITH a0 AS (SELECT g AS s FROM data LIMIT 1), a1 AS (SELECT s||s||s||s||s||s||s||s AS s FROM a0) \
             SELECT length(s) FROM a1",
            "SELECT coalesce(coalesce(g || g) || g) || g FROM data",
        ] {
            f.assert_forbidden(sql);
        }
        // One `||`, and concat of many values, stay allowed.
        let out = f
            .ok("SELECT g || '!' AS label, concat(g, ' ', g, g, g, g, g) AS c FROM data ORDER BY id LIMIT 1");
        assert_eq!(out.rows, vec![vec![Value::from("b!"), Value::from("b bbbbb")]]);
        // The table-function forms stream rows and stay allowed; so do GROUP BY aggregates.
        let out = f.ok("SELECT count(*) FROM range(3) a, generate_series(1, 2) b");
        assert_eq!(out.rows, vec![vec![Value::from(6)]]);
        let out = f.ok("SELECT g, count(*) FROM data GROUP BY g ORDER BY g LIMIT 1");
        assert_eq!(out.rows, vec![vec![Value::from("a"), Value::from(33)]]);
    }

    #[test]
    fn errors_while_running_do_not_carry_the_data() {
        let f = fixture();
        // id 99's note is 297 'x's; doubled, it is 594 characters of data in the message.
        let message = f.assert_invalid("SELECT CAST(note || note AS INTEGER) FROM data WHERE id = 99");
        assert!(message.contains("Conversion Error"), "{message}");
        assert!(!message.contains("xx"), "{message}");
        assert!(message.chars().count() <= MAX_RUNTIME_ERROR_CHARS + 1, "{message}");
        let message = f.assert_invalid("SELECT CAST(g || id AS INTEGER) FROM data");
        assert!(!message.contains("a3") && !message.contains("b1"), "{message}");
        // Errors about names keep them.
        let message = f.assert_invalid("SELECT no_such_column FROM data");
        assert!(message.contains("no_such_column"), "{message}");
        // Quotes inside a value do not end it early.
        assert_eq!(
            without_quoted_values(r#"string 'it's "secret"' to INT32 "x""#),
            r#"string '…' to INT32 "…""#
        );
        assert_eq!(without_quoted_values("open 'secret"), "open '…");
        assert_eq!(without_quoted_values("no quotes"), "no quotes");
    }

    #[test]
    fn masked_columns_are_never_read_in_clear() {
        let f = fixture();
        let masked =
            [("Email".to_string(), "email".to_string()), ("absent".to_string(), "phone".to_string())];
        let run = |sql: &str| run_masked(&f.data, &f.spill, sql, &masked, &limits()).unwrap().unwrap();
        let out = run("SELECT id, email FROM data WHERE id = 7");
        assert_eq!(out.rows, vec![vec![Value::from(7), Value::from("u***@e***.com")]]);
        let out = run("SELECT count(*) FROM data WHERE email LIKE 'user7%' OR contains(email, 'example')");
        assert_eq!(out.rows, vec![vec![Value::from(0)]]);
        let out = run("SELECT count(DISTINCT email) FROM data");
        assert_eq!(out.rows, vec![vec![Value::from(1)]]);
        // Other columns are untouched, and the view keeps the file's column order.
        let out = run("SELECT * FROM data WHERE id = 1");
        assert_eq!(out.columns, ["id", "g", "amount", "day", "note", "email"]);
        assert_eq!(out.rows[0][4], Value::from("xxx"));
    }

    #[test]
    fn the_views_masks_are_the_domain_masks() {
        let values = [
            "jane.doe@example.com",
            "a@b@c.org",
            "no-at-sign",
            "  padded@example.co.uk \t",
            "4242 4242 4242 4242",
            "123-45-6789",
            "+44 20 7946 0958",
            "GB82 WEST 1234 5698 7654 32",
            "192.168.1.20",
            "SW1A 1AA",
            "1984-03-07",
            "Jane  Doe\u{a0}Smith",
            "Ünïcödé 名前 42",
            "call Maria on 0207 946 0958 or maria@example.org",
            "+４４ ２０ ７９４６ ０９５８",
            "٠١٢-٣٤-٥٦٧٨",
            " ",
            "",
        ];
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("values.parquet");
        let conn = Connection::open_in_memory().unwrap();
        let rows: Vec<String> =
            values.iter().enumerate().map(|(i, v)| format!("({i}, {})", quote_literal(v))).collect();
        conn.execute_batch(&format!(
            "COPY (SELECT i, v, v AS free FROM (VALUES {}, ({}, NULL)) t(i, v)) TO {} (FORMAT parquet)",
            rows.join(", "),
            values.len(),
            quote_literal(data.to_str().unwrap())
        ))
        .unwrap();
        let spill = dir.path().join("spill");
        for kind in crate::domain::PII_KINDS.iter().copied().chain(["other"]) {
            let masked = [("v".to_string(), kind.to_string())];
            let out =
                run_masked(&data, &spill, "SELECT v, free FROM data ORDER BY i", &masked, &limits()).unwrap();
            let out = out.unwrap();
            for (row, value) in out.rows.iter().zip(values) {
                assert_eq!(row[0], Value::from(crate::domain::mask(kind, value)), "{kind}: {value:?}");
                assert_eq!(
                    row[1],
                    Value::from(crate::domain::mask_embedded(value).into_owned()),
                    "{value:?}"
                );
            }
            assert_eq!(out.rows[values.len()], vec![Value::Null, Value::Null]);
        }
    }

    #[test]
    fn personal_data_inside_other_columns_cannot_be_re_encoded_past_the_mask() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("notes.parquet");
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!(
            "COPY (SELECT 'Reached Aiko at aiko.sharma0@mailhost.com / +44 20 7946 0000' AS notes,
                          'wire to GB84WEST68587840057566 ok' AS memo, '957551637' AS code,
                          ['x aiko@mailhost.com', NULL] AS tags, {{'contact': 'aiko@mailhost.com'}} AS info,
                          'aiko@mailhost.com'::VARIANT AS v, 7 AS n)
             TO {} (FORMAT parquet)",
            quote_literal(data.to_str().unwrap())
        ))
        .unwrap();
        let spill = dir.path().join("spill");
        let run = |sql: &str| run(&data, &spill, sql, &limits()).unwrap().unwrap();
        let out = run(
            "SELECT translate(notes, '@.0123456789', '#,abcdefghij') AS t, split_part(notes, '@', 1) AS l, \
             substr(memo, 9, 12) AS a, substr(memo, 21, 10) AS b, left(code, 5) AS c, right(code, 4) AS d, \
             tags[1] AS tag, CAST(info AS VARCHAR) AS info, n, translate(CAST(v AS VARCHAR), '@.', '#,') AS v \
             FROM data",
        );
        let text = serde_json::to_string(&out.rows).unwrap();
        for secret in
            ["aiko.sharma0", "sharmaa", "7946", "hjeg", "GB84WEST6858", "68587840057566", "95755", "1637"]
        {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        for secret in ["aiko@", "mailhost"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        // What is not personal data is as written; numbers stay numbers.
        assert_eq!(out.rows[0][8], Value::from(7));
        assert!(out.rows[0][0].as_str().unwrap().starts_with("Reached Aiko at "));
    }

    #[test]
    fn only_types_that_hold_no_text_are_left_unmasked() {
        for ty in
            ["BIGINT", "DECIMAL(18,3)", "DOUBLE[]", "TIMESTAMP WITH TIME ZONE", "INTEGER[3]", "UUID", "DATE"]
        {
            assert!(holds_no_text(ty), "{ty}");
        }
        for ty in [
            "VARCHAR",
            "VARIANT",
            "JSON",
            "BLOB",
            "STRUCT(a INTEGER)",
            "MAP(VARCHAR, INTEGER)",
            "BIT",
            "ENUM('a')",
        ] {
            assert!(!holds_no_text(ty), "{ty}");
        }
    }

    #[test]
    fn refusals_have_codes_and_messages() {
        assert_eq!(Refusal::NotReadOnly("x".into()).code(), ErrorCode::BadUserInput);
        assert_eq!(Refusal::Forbidden("x".into()).code(), ErrorCode::Forbidden);
        assert_eq!(Refusal::Invalid("x".into()).code(), ErrorCode::BadUserInput);
        assert!(Refusal::TimedOut.message().contains("time limit"));
        assert!(Refusal::TooMuchMemory.message().contains("memory"));
    }

    #[test]
    fn json_parser_reads_duckdb_output() {
        let value = json::parse(
            r#" {"a": [1, -2, 3.5, 18446744073709551615, true, null, "q\"\u00e9\ud83d\ude00"]} "#,
            8,
        )
        .unwrap();
        assert_eq!(
            value,
            serde_json::json!({"a": [1, -2, 3.5, 18446744073709551615u64, true, null, "q\"é😀"]})
        );
        assert!(json::parse("[[[1]]]", 2).is_err());
        assert!(json::parse("NaN", 2).is_err());
        assert!(json::parse("[1,]", 2).is_err());
        assert!(json::parse("{} x", 2).is_err());
    }
}
