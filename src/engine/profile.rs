//! The unified profiler: per-column statistics, semantic types, histograms, top values,
//! duplicate rows, correlations, a quality score and alerts for one canonical Parquet file.
//!
//! Every computation over values runs inside DuckDB; Rust only builds statements (names through
//! [`quote_identifier`], everything else from constants and numbers it formats itself) and turns
//! small results into a [`Profile`]. `profile` works in four steps, whatever the file's size:
//!
//! 1. **column statistics** — numeric columns only: one `SELECT` of streaming aggregates per
//!    chunk of [`STATS_CHUNK`] columns (counts, min/max, moments, zeros, negatives,
//!    correlations; for an integer column whose range the Parquet statistics give, its exact
//!    distinct count as a bitmap and its smallest values);
//! 2. **unique columns** — one `SELECT` per chunk over a few windows of rows: which columns
//!    look unique (a guess that only decides how step 3 proceeds, never what it finds);
//! 3. **values** — per column (two at a time when a second connection is given), its
//!    distinct values with their counts `(v, n)`: a
//!    `GROUP BY value` kept in a temporary table or, for a column that a cheap probe proves
//!    unique, the column itself, each value counting once (it is never grouped). From them:
//!    the distinct count, top values, semantic-type sample, exact quartiles, histogram, IQR
//!    outliers, lengths, whitespace and pattern validity — a regular expression runs once per
//!    distinct value, not once per row;
//! 4. **duplicates** — `SELECT DISTINCT *`, skipped when a column is unique: then no row can
//!    repeat another.
//!
//! Hashing and sorting values, not reading the file, set the cost: each column is hashed once
//! (grouped, or probed when it looks unique), and only the small relation of distinct values is
//! sorted. Holistic aggregates such as `quantile_cont` hold every value in memory, where they
//! cannot spill, so they run only where that is known to be small or the values are as many as
//! the distinct ones; hash aggregation, sorting and temporary tables spill under the memory
//! limit. Parquet is columnar: a statement reads only the columns it names, so per-column
//! statements cost statements, not extra reads. The definitions of every number are in
//! docs/statistics.md.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt::Display;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use anyhow::Context;
use duckdb::Connection;

use super::{header_tokens, quote_identifier, quote_literal};
use crate::domain::{
    ColumnInfo, ColumnProfile, Correlation, Finding, HistogramBin, Profile, ProfileParams, Quality,
    ValueCount,
};

/// Columns per statement, so that a 1000-column table never becomes one enormous statement.
const STATS_CHUNK: usize = 200;
/// Correlations are computed between the first this many numeric columns (n·(n−1)/2 pairs).
const MAX_CORRELATED: usize = 30;
/// Rows the semantic-type sample aims at: every ⌈rows / SAMPLE_ROWS⌉-th row is sampled.
const SAMPLE_ROWS: u64 = 10_000;
/// A text column whose strided sample holds fewer non-null values than this (and than the
/// column has) is sampled again from its first non-null values: sparse columns would
/// otherwise be typed from a handful of values.
const MIN_SAMPLE: u64 = 1_000;
/// Share of sampled values a pattern must match to give its semantic type.
const PATTERN_SHARE: f64 = 0.9;
/// Share of distinct values among non-null ones from which a column is (nearly) all unique.
const UNIQUE_SHARE: f64 = 0.99;
/// Unique percent from which free text gets a `HIGH_CARDINALITY` alert.
const HIGH_CARDINALITY_PERCENT: f64 = 95.0;
/// Null percent above which `HIGH_NULLS` is critical rather than a warning.
const CRITICAL_NULL_PERCENT: f64 = 50.0;
/// The widest integer range (max − min + 1) whose distinct values are counted with a bitmap
/// (`bitstring_agg`, one bit per possible value: 16 MiB per thread at most) instead of a hash.
const MAX_BITMAP_RANGE: i128 = 1 << 27;
/// The bitmaps of one step-1 statement hold at most this many bits in all (per thread).
const BITMAP_BUDGET: i128 = 1 << 28;
/// Step 1 computes the quartiles of a chunk's numeric columns itself (`quantile_cont`, which
/// holds every value in memory) when they hold at most this many values in all: small files
/// then need no statement per column for them.
const EARLY_QUARTILE_VALUES: u64 = 1 << 22;

/// Profiles the Parquet file `data` whose columns are `columns`.
///
/// `helper`, a second connection to the same database, profiles columns' values (step 3)
/// alongside `conn`: each column's statements have phases that keep one thread busy
/// (planning, merging a hash table's partitions, small follow-up queries), which the other
/// connection's work fills. Whoever can stop `conn` must be able to stop `helper` too (a
/// job's [`super::Session`] interrupts both).
///
/// `progress(percent 0..=100, stage)` is called after each step (each chunk of columns, each
/// column's values), never going backwards, on the calling thread. Blocking: call through
/// `Engine::run_heavy` or a job's own session.
pub fn profile(
    conn: &Connection,
    helper: Option<&mut Connection>,
    data: &Path,
    columns: &[ColumnInfo],
    params: &ProfileParams,
    progress: &mut dyn FnMut(f64, &str),
) -> anyhow::Result<Profile> {
    let source = reader(data);
    let cols: Vec<Col> = columns.iter().enumerate().map(|(index, info)| Col::new(index, info)).collect();
    // Parquet keeps row counts in its footer: this reads no data.
    let rows: i64 = conn
        .query_row(&format!("SELECT count(*) FROM {source}"), [], |r| r.get(0))
        .context("counting rows")?;
    let rows = u64::try_from(rows).unwrap_or(0);

    // Step 1: column statistics.
    let correlated: Vec<usize> =
        cols.iter().filter(|c| c.kind.is_numeric()).map(|c| c.index).take(MAX_CORRELATED).collect();
    let pairs: Vec<(usize, usize)> = correlated
        .iter()
        .enumerate()
        .flat_map(|(n, &a)| correlated[n + 1..].iter().map(move |&b| (a, b)))
        .collect();
    // Only numeric columns need a streaming pass (moments, correlations); every other
    // column's counts and range come from its values in step 3.
    let numeric: Vec<&Col> = cols.iter().filter(|c| c.kind.is_numeric()).collect();
    let numeric_chunks: Vec<&[&Col]> = numeric.chunks(STATS_CHUNK).collect();
    progress(0.0, "column statistics");
    let mut stats: Vec<Stats> = cols.iter().map(|_| Stats::default()).collect();
    let mut correlation_values = Vec::new();
    for (n, chunk) in numeric_chunks.iter().enumerate() {
        // The correlations ride along with the first chunk (which projects their columns).
        let chunk_pairs = if n == 0 { &pairs[..] } else { &[] };
        let extras = Extras {
            plans: integer_plans(conn, &source, chunk, params, rows).context("reading integer ranges")?,
            quartiles: rows.saturating_mul(chunk.len() as u64) <= EARLY_QUARTILE_VALUES,
        };
        let (chunk_stats, values) = column_statistics(conn, &source, &cols, chunk, chunk_pairs, &extras)
            .with_context(|| format!("computing column statistics (chunk {})", n + 1))?;
        for (col, found) in chunk.iter().zip(chunk_stats) {
            stats[col.index] = found;
        }
        if n == 0 {
            correlation_values = values;
        }
        progress(10.0 * (n + 1) as f64 / numeric_chunks.len() as f64, "column statistics");
    }
    refine_moments(conn, &source, &cols, &mut stats).context("computing column statistics again, scaled")?;
    refine_correlations(conn, &source, &cols, &stats, &pairs, &mut correlation_values)
        .context("computing correlations again, centred")?;

    // Step 2: which columns look unique, from a few windows of rows. The semantic-type sample
    // is every `stride`-th row by `file_row_number`, a virtual column of read_parquet, hidden
    // when the file has a real column of that name: then text columns are typed from their
    // first values, and no column is expected to be unique.
    let stride = (!columns.iter().any(|c| c.name.eq_ignore_ascii_case("file_row_number")))
        .then(|| rows.div_ceil(SAMPLE_ROWS).max(1));
    if stride.is_some() && rows > 0 {
        // (Its distinct counts take memory per column, not per row: as many per statement as
        // the memory limit allows.)
        let per_statement = super::distinct_per_statement(conn)?.min(STATS_CHUNK);
        let chunks: Vec<&[Col]> = cols.chunks(per_statement).collect();
        for (n, chunk) in chunks.iter().enumerate() {
            guess_unique(conn, &source, chunk, rows, &mut stats)
                .with_context(|| format!("looking for unique columns (chunk {})", n + 1))?;
            progress(10.0 + 5.0 * (n + 1) as f64 / chunks.len() as f64, "unique columns");
        }
    }
    progress(15.0, "unique columns");

    // Step 3: each column's values — distinct counts, top values, semantic-type sample,
    // quartiles, histograms, outliers, lengths and validity — one column at a time on each
    // connection, so that at most one temporary table per connection exists at once.
    let step = Step3 { source: &source, cols: &cols, params, rows, stride };
    let (details, _) = step.run(conn, helper, &mut stats, &mut |done| {
        progress(15.0 + 80.0 * done as f64 / cols.len() as f64, "column values");
    })?;
    let semantics: Vec<&str> = cols
        .iter()
        .zip(&stats)
        .zip(&details)
        .map(|((col, stats), details)| semantic_type(col, stats, details.pattern, params))
        .collect();
    let mixed: Vec<Option<(&str, f64)>> = cols
        .iter()
        .zip(&stats)
        .zip(&semantics)
        .map(|((col, stats), semantic)| mixed_kind(col, stats, semantic))
        .collect();

    // Step 4: duplicate rows. Rows differ where any column differs: there are at least as many
    // distinct rows as the most varied column has distinct values (its null counting as one).
    // (Not counting columns profiled through their text: two values equal in SQL, such as
    // INTERVAL '1 day' and '24 hours', can print differently.) When that is every row, no row
    // can be a copy of another, and nothing is read.
    let widest = cols
        .iter()
        .zip(&stats)
        .filter(|(col, _)| col.kind != Kind::Other)
        .map(|(_, s)| s.distinct + u64::from(s.non_null < rows))
        .max()
        .unwrap_or(0);
    let duplicate_row_count = if rows > 0 && !cols.is_empty() && widest < rows {
        let mut scratch = Scratch::new(conn);
        rows - distinct_rows(&mut scratch, &source, &cols, rows, widest)?.min(rows)
    } else {
        0
    };
    progress(99.0, "duplicates");

    let mut profiles = Vec::with_capacity(cols.len());
    for (((col, stats), semantic), mut details) in cols.iter().zip(stats).zip(&semantics).zip(details) {
        if let Some(single @ Binning::Single { .. }) = details.binning {
            // A constant column's one bin needs no query: it holds every finite value (NaN,
            // ±Infinity and infinite dates are in no bin).
            details.histogram = single.bins(&HashMap::new(), stats.finite);
        }
        profiles.push(column_profile(col, stats, semantic, details, rows));
    }
    personal_by_shown_values(conn, &cols, &mut profiles).context("looking at the values a profile shows")?;
    let correlations = pairs
        .iter()
        .zip(correlation_values)
        .filter_map(|(&(a, b), value)| {
            Some(Correlation {
                a: cols[a].info.name.clone(),
                b: cols[b].info.name.clone(),
                method: "pearson".into(),
                // DuckDB's `corr` of columns whose mean dwarfs their spread can come out a
                // rounding error beyond ±1 (1.00001 for x = 10¹² + y/2): never beyond.
                value: value?.clamp(-1.0, 1.0),
            })
        })
        .collect();
    let quality = quality(&cols, &profiles, rows, duplicate_row_count);
    let mut alerts = Vec::new();
    if duplicate_row_count > 0 {
        alerts.push(Finding {
            code: "DUPLICATE_ROWS".into(),
            severity: "warning".into(),
            column: None,
            message: format!(
                "{duplicate_row_count} of {rows} rows ({:.1}%) are exact copies of an earlier row",
                percent(duplicate_row_count, rows)
            ),
        });
    }
    for (column, mixed) in profiles.iter().zip(mixed) {
        column_alerts(column, mixed, rows, params, &mut alerts);
    }
    progress(100.0, "scoring");
    Ok(Profile {
        row_count: rows,
        column_count: cols.len() as u64,
        duplicate_row_count,
        quality,
        columns: profiles,
        correlations,
        alerts,
    })
}

/// Equal-width histogram of one numeric, date or timestamp column with `bins` bins over
/// [min, max] (dates and timestamps in Unix epoch seconds). Empty for other types, for
/// all-null columns and for `bins == 0`; one bin holding every value when min == max.
pub fn histogram(
    conn: &Connection,
    data: &Path,
    column: &ColumnInfo,
    bins: u64,
) -> anyhow::Result<Vec<HistogramBin>> {
    let col = Col::new(0, column);
    let Some(binned) = col.binned() else { return Ok(Vec::new()) };
    let source = reader(data);
    let mut range = Select::default();
    let count = range.int("count(h)");
    let lo = range.float("min(h)");
    let hi = range.float("max(h)");
    let cells = range
        .run(conn, &format!("(SELECT {binned} AS h FROM {source}) AS src"))
        .context("finding the histogram's range")?;
    let (Some(lo), Some(hi)) = (cells.float(lo), cells.float(hi)) else { return Ok(Vec::new()) };
    let non_null = cells.count(count);
    let Some(binning) = Binning::new(lo, hi, bins) else { return Ok(Vec::new()) };
    let counts = match binning {
        Binning::Single { .. } => HashMap::new(),
        Binning::Equal { .. } => {
            let mut select = Select::default();
            let slot = select.text(binning.aggregate("h"));
            let cells = select
                .run(conn, &format!("(SELECT {binned} AS h FROM {source}) AS src"))
                .context("counting the histogram's bins")?;
            parse_bin_counts(cells.text(slot).as_deref())?
        }
    };
    Ok(binning.bins(&counts, non_null))
}

/// The `limit` most frequent values of one column, most frequent first, ties by value
/// ascending (in the column's own type's order; nulls, reported as `value: None`, last).
pub fn top_values(
    conn: &Connection,
    data: &Path,
    column: &ColumnInfo,
    limit: u64,
) -> anyhow::Result<Vec<ValueCount>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let col = Col::new(0, column);
    let grouped = format!(
        "(SELECT v, count(*) AS n FROM (SELECT {} AS v FROM {}) GROUP BY v)",
        col.value(),
        reader(data)
    );
    top_of(conn, &grouped, limit)
}

// ---------------------------------------------------------------------------------------------
// Column kinds

/// What the profiler can compute for a column, from its DuckDB type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Integer,
    Float,
    Decimal,
    Boolean,
    Date,
    Timestamp,
    Time,
    Uuid,
    Text,
    /// LIST, STRUCT, MAP, BLOB, INTERVAL, ENUM, NULL…: handled as text (CAST to VARCHAR) for
    /// nulls, distinct counts and top values only.
    Other,
}

impl Kind {
    fn of(data_type: &str) -> Kind {
        let t = data_type.trim().to_ascii_uppercase();
        match t.as_str() {
            // Lists and arrays (`VARCHAR[]`, `TIMESTAMP[]`, `DOUBLE[3]`) are none of the scalars
            // their names start with.
            _ if t.ends_with(']') => Kind::Other,
            "TINYINT" | "SMALLINT" | "INTEGER" | "BIGINT" | "HUGEINT" | "UTINYINT" | "USMALLINT"
            | "UINTEGER" | "UBIGINT" | "UHUGEINT" | "INT" | "INT1" | "INT2" | "INT4" | "INT8" | "SHORT"
            | "LONG" => Kind::Integer,
            "FLOAT" | "DOUBLE" | "REAL" | "FLOAT4" | "FLOAT8" => Kind::Float,
            "BOOLEAN" | "BOOL" => Kind::Boolean,
            "DATE" => Kind::Date,
            "UUID" => Kind::Uuid,
            "VARCHAR" | "TEXT" | "STRING" => Kind::Text,
            _ if t.starts_with("DECIMAL") || t.starts_with("NUMERIC") => Kind::Decimal,
            _ if t.starts_with("TIMESTAMP") => Kind::Timestamp,
            _ if t.starts_with("TIME") => Kind::Time,
            _ if t.starts_with("VARCHAR") => Kind::Text,
            _ => Kind::Other,
        }
    }

    fn is_numeric(self) -> bool {
        matches!(self, Kind::Integer | Kind::Float | Kind::Decimal)
    }

    /// Has min/max, reported as text.
    fn is_orderable(self) -> bool {
        self != Kind::Other
    }
}

/// One column of the file, with the SQL that reads it.
struct Col<'a> {
    index: usize,
    info: &'a ColumnInfo,
    kind: Kind,
    /// The quoted identifier: the only form in which a name enters SQL.
    quoted: String,
}

impl<'a> Col<'a> {
    fn new(index: usize, info: &'a ColumnInfo) -> Col<'a> {
        Col { index, info, kind: Kind::of(&info.data_type), quoted: quote_identifier(&info.name) }
    }

    /// The values that are counted, grouped and ordered. Other types become text: their
    /// DuckDB types may not be comparable, and reading a NULL-typed column would fail.
    fn value(&self) -> String {
        match self.kind {
            Kind::Other => format!("CAST({} AS VARCHAR)", self.quoted),
            _ => self.quoted.clone(),
        }
    }

    /// The value as DOUBLE for moments, quantiles and correlations. NaN and ±Infinity are
    /// left out (NULL): they have no mean, and DuckDB's skewness and kurtosis fail on them.
    fn number(&self) -> Option<String> {
        self.number_of(&self.quoted)
    }

    /// [`Col::number`] of `value`, an expression of the column's type (the column itself, or
    /// `v` in a relation of its distinct values).
    fn number_of(&self, value: &str) -> Option<String> {
        match self.kind {
            Kind::Integer | Kind::Decimal => Some(format!("CAST({value} AS DOUBLE)")),
            Kind::Float => Some(format!("CASE WHEN isfinite({value}) THEN CAST({value} AS DOUBLE) END")),
            _ => None,
        }
    }

    /// The value histograms bin: the number, or Unix epoch seconds for dates and timestamps.
    /// Infinite dates and timestamps are left out (NULL), as NaN and ±Infinity are; a date
    /// counts its days, so that one beyond TIMESTAMP's range (year 294247) is binned too.
    fn binned(&self) -> Option<String> {
        self.binned_of(&self.quoted)
    }

    /// [`Col::binned`] of `value`, an expression of the column's type.
    fn binned_of(&self, value: &str) -> Option<String> {
        match self.kind {
            Kind::Date => Some(format!(
                "CASE WHEN isfinite({value}) THEN CAST({value} - DATE '1970-01-01' AS DOUBLE) * 86400 END"
            )),
            Kind::Timestamp => Some(format!(
                "CASE WHEN isfinite({value}) THEN CAST(epoch(CAST({value} AS TIMESTAMP)) AS DOUBLE) END"
            )),
            _ => self.number_of(value),
        }
    }
}

fn reader(data: &Path) -> String {
    format!("read_parquet({})", quote_literal(&data.display().to_string()))
}

// ---------------------------------------------------------------------------------------------
// One-row SELECTs with typed outputs

#[derive(Debug, Clone, Copy)]
enum Out {
    Int,
    Float,
    Text,
}

/// The output list of a one-row SELECT. Every output is CAST to BIGINT, DOUBLE or VARCHAR so
/// that it is read with a known Rust type (never DuckDB's NULL type, which duckdb-rs cannot read).
#[derive(Default)]
struct Select {
    exprs: Vec<String>,
    outs: Vec<Out>,
}

impl Select {
    fn int(&mut self, expr: impl Display) -> usize {
        self.push(format!("CAST({expr} AS BIGINT)"), Out::Int)
    }

    fn float(&mut self, expr: impl Display) -> usize {
        self.push(format!("CAST({expr} AS DOUBLE)"), Out::Float)
    }

    fn text(&mut self, expr: impl Display) -> usize {
        self.push(format!("CAST({expr} AS VARCHAR)"), Out::Text)
    }

    fn push(&mut self, expr: String, out: Out) -> usize {
        self.exprs.push(expr);
        self.outs.push(out);
        self.exprs.len() - 1
    }

    fn is_empty(&self) -> bool {
        self.exprs.is_empty()
    }

    fn sql(&self, from: &str) -> String {
        format!("SELECT {} FROM {from}", self.exprs.join(", "))
    }

    fn run(&self, conn: &Connection, from: &str) -> duckdb::Result<Cells> {
        conn.query_row(&self.sql(from), [], |row| {
            self.outs
                .iter()
                .enumerate()
                .map(|(i, out)| {
                    Ok(match out {
                        Out::Int => Cell::Int(row.get(i)?),
                        Out::Float => Cell::Float(row.get(i)?),
                        Out::Text => Cell::Text(row.get(i)?),
                    })
                })
                .collect::<duckdb::Result<Vec<_>>>()
                .map(Cells)
        })
    }
}

#[derive(Debug)]
enum Cell {
    Int(Option<i64>),
    Float(Option<f64>),
    Text(Option<String>),
}

struct Cells(Vec<Cell>);

impl Cells {
    /// A count; 0 for NULL.
    fn count(&self, slot: usize) -> u64 {
        match self.0[slot] {
            Cell::Int(Some(v)) => u64::try_from(v).unwrap_or(0),
            _ => 0,
        }
    }

    /// A number; NaN and ±Infinity become `None` (JSON cannot carry them).
    fn float(&self, slot: usize) -> Option<f64> {
        match self.0[slot] {
            Cell::Float(Some(v)) if v.is_finite() => Some(v),
            _ => None,
        }
    }

    fn text(&self, slot: usize) -> Option<String> {
        match &self.0[slot] {
            Cell::Text(v) => v.clone(),
            _ => None,
        }
    }
}

/// A subquery's projection, each expression once.
#[derive(Default)]
struct Projection {
    items: Vec<String>,
    seen: HashSet<String>,
}

impl Projection {
    /// Projects `expr AS alias` (once) and returns the alias.
    fn add(&mut self, alias: String, expr: impl FnOnce() -> String) -> String {
        if self.seen.insert(alias.clone()) {
            self.items.push(format!("{} AS {alias}", expr()));
        }
        alias
    }

    fn from(&self, source: &str) -> String {
        format!("(SELECT {} FROM {source}) AS src", self.items.join(", "))
    }
}

/// A DOUBLE literal that round-trips exactly (Rust prints the shortest representation that
/// parses back to the same double; a bare `1.5` would be a DECIMAL in DuckDB).
fn double(x: f64) -> String {
    format!("CAST('{x:?}' AS DOUBLE)")
}

// ---------------------------------------------------------------------------------------------
// Step 1: column statistics

/// What the profile found about one column's values (steps 1–3).
#[derive(Debug, Default)]
struct Stats {
    non_null: u64,
    /// Non-null values that are finite numbers (`count` of [`Col::number`]): what the
    /// quartiles are taken over; for dates and timestamps, the values that are not infinite
    /// (step 3; what histograms bin).
    finite: u64,
    /// From step 3.
    distinct: u64,
    /// Step 1 for numeric columns, step 3 for the others (and the counts above too).
    min: Option<String>,
    max: Option<String>,
    /// min and max as numbers (epoch seconds for dates), for histograms.
    range: Option<(f64, f64)>,
    mean: Option<f64>,
    stddev: Option<f64>,
    /// From step 1 for small files (see [`EARLY_QUARTILE_VALUES`]), else from step 3.
    quartiles: Option<[Option<f64>; 3]>,
    q25: Option<f64>,
    median: Option<f64>,
    q75: Option<f64>,
    skewness: Option<f64>,
    kurtosis: Option<f64>,
    zeros: Option<u64>,
    negatives: Option<u64>,
    /// From step 3.
    min_length: Option<u64>,
    max_length: Option<u64>,
    mean_length: Option<f64>,
    untrimmed: u64,
    /// Pattern matches of the semantic-type sample (text columns; step 3).
    sample: Option<Sample>,
    /// Non-null values in step 2's windows, and how many of them are distinct: when they are
    /// all distinct, step 3 tries to prove the whole column unique before grouping it.
    sampled: Option<(u64, u64)>,
    /// What step 1 found besides, for an integer column whose range the Parquet statistics
    /// gave beforehand (see [`IntegerPlan`]).
    early: Option<Early>,
}

/// Step-1 extras of an integer column: its exact distinct count (a bitmap) and its smallest
/// values (its top values, should it be unique).
#[derive(Debug, Default)]
struct Early {
    distinct: Option<u64>,
    smallest: Option<String>,
}

/// What step 1 computes for an integer column besides its moments, planned from its range.
#[derive(Debug, Clone, Copy)]
struct IntegerPlan {
    /// The bitmap's bounds (min and max), when its range fits the budget.
    bitmap: Option<(i64, i64)>,
    /// Top values wanted (`top_n_values`, at most the rows).
    smallest: u64,
}

impl Stats {
    /// Whether the column looks unique: every non-null value in step 2's windows distinct. A
    /// guess, only used to decide whether proving it is worth a probe.
    fn looks_unique(&self) -> bool {
        self.sampled.is_some_and(|(values, distinct)| values > 0 && distinct == values)
    }
}

struct NumericSlots {
    finite: usize,
    mean: usize,
    stddev: usize,
    quartiles: Option<[usize; 3]>,
    moments: Option<(usize, usize)>,
    zeros: usize,
    negatives: usize,
}

struct StatSlots {
    non_null: usize,
    min_max: Option<(usize, usize)>,
    range: Option<(usize, usize)>,
    numeric: Option<NumericSlots>,
    /// Distinct (bitmap), smallest values.
    early: Option<(Option<usize>, Option<usize>)>,
}

/// Step 1 over one chunk of numeric columns: one SELECT of aggregates over one scan, all
/// streaming (fixed-size states; a bitmap of bounded size) but, for small chunks, the
/// quartiles. Returns each column's statistics and the correlation of each of `pairs`.
fn column_statistics(
    conn: &Connection,
    source: &str,
    all: &[Col],
    chunk: &[&Col],
    pairs: &[(usize, usize)],
    extras: &Extras,
) -> anyhow::Result<(Vec<Stats>, Vec<Option<f64>>)> {
    match column_statistics_with(conn, source, all, chunk, pairs, extras, true) {
        // DuckDB's skewness and kurtosis throw when their result overflows (values near
        // f64::MAX): rather than failing the profile, that chunk goes without them.
        Err(e) if format!("{e:#}").contains("out of range") => {
            column_statistics_with(conn, source, all, chunk, pairs, extras, false)
        }
        result => result,
    }
}

/// What step 1 computes for a chunk besides the streaming aggregates.
struct Extras {
    /// Per integer column (by index).
    plans: HashMap<usize, IntegerPlan>,
    /// The quartiles, for a chunk small enough ([`EARLY_QUARTILE_VALUES`]).
    quartiles: bool,
}

/// Plans step 1's extras for the integer columns of a chunk ([`IntegerPlan`]) from their
/// min and max, asked alone so that DuckDB answers from the Parquet statistics without reading
/// data (or reads only these integer columns). The bitmaps share [`BITMAP_BUDGET`].
fn integer_plans(
    conn: &Connection,
    source: &str,
    chunk: &[&Col],
    params: &ProfileParams,
    rows: u64,
) -> anyhow::Result<HashMap<usize, IntegerPlan>> {
    let integers: Vec<&Col> = chunk.iter().copied().filter(|c| c.kind == Kind::Integer).collect();
    if integers.is_empty() || rows == 0 {
        return Ok(HashMap::new());
    }
    let mut select = Select::default();
    let slots: Vec<_> = integers
        .iter()
        .map(|c| (select.text(format!("min({})", c.quoted)), select.text(format!("max({})", c.quoted))))
        .collect();
    let cells = select.run(conn, source)?;
    let mut budget = BITMAP_BUDGET;
    let mut plans = HashMap::new();
    for (col, (min, max)) in integers.iter().zip(slots) {
        let bounds = cells
            .text(min)
            .and_then(|m| m.parse::<i64>().ok())
            .zip(cells.text(max).and_then(|m| m.parse::<i64>().ok()));
        let bitmap = bounds.filter(|&(lo, hi)| {
            let bits = i128::from(hi) - i128::from(lo) + 1;
            let fits = bits <= MAX_BITMAP_RANGE && bits <= budget;
            if fits {
                budget -= bits;
            }
            fits
        });
        plans.insert(col.index, IntegerPlan { bitmap, smallest: params.top_n_values.min(rows) });
    }
    Ok(plans)
}

fn column_statistics_with(
    conn: &Connection,
    source: &str,
    all: &[Col],
    chunk: &[&Col],
    pairs: &[(usize, usize)],
    extras: &Extras,
    moments: bool,
) -> anyhow::Result<(Vec<Stats>, Vec<Option<f64>>)> {
    let mut proj = Projection::default();
    let mut select = Select::default();
    let mut slots = Vec::with_capacity(chunk.len());
    for col in chunk {
        let i = col.index;
        let v = proj.add(format!("v{i}"), || col.value());
        let mut column = StatSlots {
            non_null: select.int(format!("count({v})")),
            min_max: col
                .kind
                .is_orderable()
                .then(|| (select.text(format!("min({v})")), select.text(format!("max({v})")))),
            range: None,
            numeric: None,
            early: None,
        };
        if let Some(number) = col.number() {
            let d = proj.add(format!("d{i}"), || number);
            column.range = Some((select.float(format!("min({d})")), select.float(format!("max({d})"))));
            column.numeric = Some(NumericSlots {
                finite: select.int(format!("count({d})")),
                mean: select.float(format!("avg({d})")),
                stddev: select.float(format!("stddev_samp({d})")),
                // One aggregate for the three: DuckDB binds identical aggregates once.
                quartiles: extras.quartiles.then(|| {
                    [1, 2, 3].map(|n| select.float(format!("quantile_cont({d}, [0.25, 0.5, 0.75])[{n}]")))
                }),
                moments: moments.then(|| {
                    (select.float(format!("skewness({d})")), select.float(format!("kurtosis({d})")))
                }),
                // Over the finite values, as the other statistics (−Infinity is left out).
                zeros: select.int(format!("count_if({d} = 0)")),
                negatives: select.int(format!("count_if({d} < 0)")),
            });
            if let Some(plan) = extras.plans.get(&i) {
                column.early = Some((
                    plan.bitmap
                        .map(|(lo, hi)| select.int(format!("bit_count(bitstring_agg({v}, {lo}, {hi}))"))),
                    (plan.smallest > 0).then(|| {
                        select.text(format!("to_json(CAST(min({v}, {}) AS VARCHAR[]))", plan.smallest))
                    }),
                ));
            }
        }
        slots.push(column);
    }
    let correlations: Vec<usize> = pairs
        .iter()
        .map(|&(a, b)| {
            let da = proj.add(format!("d{a}"), || all[a].number().unwrap_or_else(|| "NULL".into()));
            let db = proj.add(format!("d{b}"), || all[b].number().unwrap_or_else(|| "NULL".into()));
            select.float(format!("corr({da}, {db})"))
        })
        .collect();

    let cells = select.run(conn, &proj.from(source))?;
    let stats = slots
        .iter()
        .map(|s| {
            let mut stats = Stats { non_null: cells.count(s.non_null), ..Stats::default() };
            if let Some((min, max)) = s.min_max {
                stats.min = cells.text(min);
                stats.max = cells.text(max);
            }
            if let Some((lo, hi)) = s.range {
                stats.range = cells.float(lo).zip(cells.float(hi));
            }
            if let Some(n) = &s.numeric {
                stats.finite = cells.count(n.finite);
                stats.mean = cells.float(n.mean);
                stats.stddev = cells.float(n.stddev);
                if let Some([q25, median, q75]) = n.quartiles {
                    stats.quartiles = Some([cells.float(q25), cells.float(median), cells.float(q75)]);
                }
                if let Some((skewness, kurtosis)) = n.moments {
                    stats.skewness = cells.float(skewness);
                    stats.kurtosis = cells.float(kurtosis);
                }
                stats.zeros = Some(cells.count(n.zeros));
                stats.negatives = Some(cells.count(n.negatives));
            }
            if let Some((distinct, smallest)) = s.early {
                stats.early = Some(Early {
                    distinct: distinct.map(|slot| cells.count(slot)),
                    smallest: smallest.and_then(|slot| cells.text(slot)),
                });
            }
            stats
        })
        .collect();
    Ok((stats, correlations.iter().map(|&slot| cells.float(slot)).collect()))
}

/// A column whose largest absolute value lies beyond 2^±this has its moments computed again
/// on values scaled by a power of two ([`refine_moments`]).
const MOMENT_EXPONENT: i32 = 200;
/// A correlation is computed again on centred values ([`refine_correlations`]) when a
/// column's mean is more than this many standard deviations from zero.
const CORRELATION_OFFSET: f64 = 1e4;

/// The power of two that brings `m`, a column's largest absolute value, near 1, when `m` is
/// beyond 2^±[`MOMENT_EXPONENT`]; else 1. Multiplying by it is exact.
fn moment_scale(m: f64) -> f64 {
    if !(m.is_finite() && m > 0.0) {
        return 1.0;
    }
    let e = m.log2().floor() as i32;
    if e.abs() <= MOMENT_EXPONENT {
        return 1.0;
    }
    let k = (-e).clamp(-1000, 1000);
    f64::from_bits(((1023 + k) as u64) << 52)
}

/// 2^53: from there on, not every integer is a DOUBLE.
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

impl Stats {
    /// [`moment_scale`] of the column's finite values.
    fn scale(&self) -> f64 {
        self.range.map_or(1.0, |(lo, hi)| moment_scale(lo.abs().max(hi.abs())))
    }

    /// The column's finite values are not all equal.
    fn varies(&self) -> bool {
        self.range.is_some_and(|(lo, hi)| lo < hi)
    }
}

/// Step 1 again for the columns whose magnitude DuckDB's arithmetic loses: a sum of squares
/// overflows beyond about 1e154 (the standard deviation is lost) and of values near f64::MAX
/// (the mean), fourth powers beyond 1e77 (skewness and kurtosis fail, which drops them for
/// the whole chunk: [`column_statistics`]), and squares of a spread of 1e-300 underflow to a
/// standard deviation of 0. Their mean, standard deviation, skewness and kurtosis are computed
/// over the values multiplied by a power of two (exact; skewness and kurtosis do not change
/// with scale), for the columns of such a chunk too. So are those of a column whose mean lies
/// more than [`CORRELATION_OFFSET`] standard deviations from zero, centred on that mean (the
/// deviations of values near 2^62 or 1e13 lose digits to their magnitude: a standard deviation
/// 0.2% off, a skewness of the wrong sign). Nothing is read when no column needs it.
fn refine_moments(conn: &Connection, source: &str, cols: &[Col], stats: &mut [Stats]) -> anyhow::Result<()> {
    let lost: Vec<(&Col, String)> = cols
        .iter()
        .filter_map(|col| Some((col, col.number()?)))
        .filter(|(col, _)| {
            let s = &stats[col.index];
            // Integers beyond 2^53 may differ though their DOUBLEs are all equal (which
            // `varies` cannot tell): 1500000000000000001 and …100 are one DOUBLE.
            let beyond_doubles =
                col.kind == Kind::Integer && s.mean.is_some_and(|m| m.abs() >= MAX_EXACT_INTEGER);
            s.finite > 0
                && (s.scale() != 1.0
                    || s.mean.is_none()
                    || beyond_doubles
                    || (s.varies()
                        && (s.stddev.is_none_or(|d| d == 0.0)
                            || (s.finite >= 3 && s.skewness.is_none())
                            || s.mean.zip(s.stddev).is_some_and(|(m, d)| m.abs() > CORRELATION_OFFSET * d))))
        })
        .collect();
    for chunk in lost.chunks(STATS_CHUNK) {
        let mut proj = Projection::default();
        let mut select = Select::default();
        let slots: Vec<_> = chunk
            .iter()
            .map(|(col, number)| {
                let scale = stats[col.index].scale();
                // (Centring changes none of the statistics but the mean, which gets it back.)
                let centre =
                    stats[col.index].mean.map(|m| m * scale).filter(|c| c.is_finite()).unwrap_or(0.0);
                // An integer column is centred on an integer, in integer arithmetic, before it
                // becomes a DOUBLE: near 2^62 the DOUBLEs themselves are 1,024 apart.
                let integral =
                    (col.kind == Kind::Integer && scale == 1.0 && col.info.data_type != "UHUGEINT")
                        .then(|| centre.round())
                        .filter(|c| c.abs() < 1e38);
                let centre = integral.unwrap_or(centre);
                let z = proj.add(format!("z{}", col.index), || match integral {
                    Some(c) => format!("CAST(CAST({} AS HUGEINT) - {} AS DOUBLE)", col.quoted, c as i128),
                    None => format!("{number} * {} - {}", double(scale), double(centre)),
                });
                let moments = [
                    select.float(format!("avg({z})")),
                    select.float(format!("stddev_samp({z})")),
                    select.float(format!("skewness({z})")),
                    select.float(format!("kurtosis({z})")),
                ];
                (col.index, scale, centre, moments)
            })
            .collect();
        let cells = select.run(conn, &proj.from(source))?;
        for (index, scale, centre, [mean, stddev, skewness, kurtosis]) in slots {
            let s = &mut stats[index];
            let unscaled = |slot: usize| cells.float(slot).map(|v| v / scale).filter(|v| v.is_finite());
            s.mean = cells.float(mean).map(|v| (v + centre) / scale).filter(|v| v.is_finite());
            s.stddev = unscaled(stddev);
            s.skewness = cells.float(skewness);
            s.kurtosis = cells.float(kurtosis);
        }
    }
    Ok(())
}

/// The correlations DuckDB's streaming `corr` loses, computed again over values scaled
/// ([`moment_scale`]) and centred on their mean: those of a column beyond the range of
/// [`refine_moments`] (0 or nothing near 1e300), or whose mean lies more than
/// [`CORRELATION_OFFSET`] standard deviations from zero (`corr` of two columns of independent
/// noise around 10^10 came out 0.003 off). One scan of those pairs' columns, when any.
fn refine_correlations(
    conn: &Connection,
    source: &str,
    cols: &[Col],
    stats: &[Stats],
    pairs: &[(usize, usize)],
    values: &mut [Option<f64>],
) -> anyhow::Result<()> {
    let shaky = |s: &Stats| {
        s.scale() != 1.0
            || s.mean.is_none()
            || s.stddev.is_none_or(|d| d == 0.0 || s.mean.is_some_and(|m| m.abs() > CORRELATION_OFFSET * d))
    };
    let redo: Vec<usize> = (0..pairs.len().min(values.len()))
        .filter(|&k| {
            let (a, b) = (&stats[pairs[k].0], &stats[pairs[k].1]);
            a.varies() && b.varies() && (shaky(a) || shaky(b))
        })
        .collect();
    if redo.is_empty() {
        return Ok(());
    }
    let mut proj = Projection::default();
    let mut select = Select::default();
    let mut centred = |index: usize| -> Option<String> {
        let number = cols[index].number()?;
        let s = &stats[index];
        let scale = s.scale();
        let centre = s.mean.map_or(0.0, |m| m * scale);
        Some(proj.add(format!("c{index}"), || format!("{number} * {} - {}", double(scale), double(centre))))
    };
    let slots: Vec<(usize, usize)> = redo
        .iter()
        .filter_map(|&k| {
            let (a, b) = (centred(pairs[k].0)?, centred(pairs[k].1)?);
            Some((k, select.float(format!("corr({a}, {b})"))))
        })
        .collect();
    let cells = select.run(conn, &proj.from(source))?;
    for (k, slot) in slots {
        values[k] = cells.float(slot);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Step 2: unique-looking columns

/// Rows read by [`guess_unique`]: four windows of a quarter of this each, spread over the file.
const GUESS_ROWS: u64 = 40_000;

/// Step 2 over one chunk of columns: whether each column (but booleans) looks unique — its
/// non-null values all distinct — in [`GUESS_ROWS`] rows taken as four windows at 0, ¼, ½ and
/// ¾ of the file (the whole file when it is that small). A range of `file_row_number` lets the
/// reader skip the rest of the file, so this costs a few row groups, not a scan. It is a
/// guess: it only decides whether step 3 probes a column for uniqueness (exactly) before
/// grouping it, which changes what the profile costs, never what it says.
fn guess_unique(
    conn: &Connection,
    source: &str,
    chunk: &[Col],
    rows: u64,
    stats: &mut [Stats],
) -> anyhow::Result<()> {
    let mut proj = Projection::default();
    let mut select = Select::default();
    let mut slots = Vec::new();
    // Booleans are never worth a probe; step 1 counted some integer columns exactly already.
    let known = |c: &Col| stats[c.index].early.as_ref().is_some_and(|e| e.distinct.is_some());
    for col in chunk.iter().filter(|c| c.kind != Kind::Boolean && !known(c)) {
        let s = proj.add(format!("s{}", col.index), || col.value());
        slots.push((
            col.index,
            select.int(format!("count({s})")),
            select.int(format!("count(DISTINCT {s})")),
        ));
    }
    if slots.is_empty() {
        return Ok(());
    }
    let windows =
        if rows <= GUESS_ROWS { "true".to_string() } else { super::sample_windows(rows, GUESS_ROWS) };
    let cells = select.run(conn, &proj.from(&format!("(SELECT * FROM {source} WHERE {windows})")))?;
    for (index, values, distinct) in slots {
        stats[index].sampled = Some((cells.count(values), cells.count(distinct)));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The semantic-type sample

/// Pattern matches among sampled non-null text values.
#[derive(Debug, Default, Clone)]
struct Sample {
    size: u64,
    /// Matches per entry of [`PATTERNS`].
    hits: Vec<u64>,
    code_like: u64,
    digits_only: u64,
    /// Values that are numbers ([`NUMBER`]).
    numbers: u64,
}

impl Sample {
    fn share(&self, hits: u64) -> bool {
        self.size > 0 && hits as f64 >= PATTERN_SHARE * self.size as f64
    }
}

struct SampleSlots {
    size: usize,
    hits: Vec<usize>,
    code_like: usize,
    digits_only: usize,
    numbers: usize,
}

impl SampleSlots {
    /// Pattern-match counts over the non-null `values`, each counting once or, with `weight`,
    /// that many times.
    fn add(select: &mut Select, values: &str, weight: Option<&str>) -> SampleSlots {
        let mut count = |condition: String| match weight {
            None => select.int(format!("count_if({condition})")),
            Some(w) => select.int(format!("sum({w}) FILTER (WHERE {condition})")),
        };
        SampleSlots {
            size: count(format!("{values} IS NOT NULL")),
            hits: PATTERNS.iter().map(|p| count(p.matches(values))).collect(),
            code_like: count(code_like(values)),
            digits_only: count(full_match(values, DIGITS)),
            numbers: count(full_match(values, NUMBER)),
        }
    }

    fn read(&self, cells: &Cells) -> Sample {
        Sample {
            size: cells.count(self.size),
            hits: self.hits.iter().map(|&s| cells.count(s)).collect(),
            code_like: cells.count(self.code_like),
            digits_only: cells.count(self.digits_only),
            numbers: cells.count(self.numbers),
        }
    }
}

/// The semantic-type sample of a grouped text column — the non-null values of the rows whose
/// `file_row_number` is a multiple of the stride — from the count of each value's sampled
/// rows (`s`, see [`Scratch::group`]): each pattern runs once per sampled distinct value.
/// Returns the sample and the column's non-null count. (A column that looked unique took its
/// sample from its rows before its probe, [`distinct_probe`].)
fn grouped_sample(conn: &Connection, table: &str) -> anyhow::Result<(Sample, u64)> {
    let mut select = Select::default();
    let non_null = select.int("sum(n)");
    // Patterns run on the sampled values only (`sv` is NULL for the others).
    let slots = SampleSlots::add(&mut select, "sv", Some("s"));
    let groups = format!("(SELECT CASE WHEN s > 0 THEN v END AS sv, s, n FROM {table} WHERE v IS NOT NULL)");
    let cells = select.run(conn, &groups)?;
    Ok((slots.read(&cells), cells.count(non_null)))
}

/// A text column whose strided sample is too small (a sparse column), or a file without
/// `file_row_number`, is typed from its first [`SAMPLE_ROWS`] non-null values instead: one
/// small statement that stops reading at its LIMIT.
fn first_values_sample(conn: &Connection, source: &str, col: &Col) -> anyhow::Result<Sample> {
    let mut select = Select::default();
    let slots = SampleSlots::add(&mut select, "s", None);
    let rows = format!(
        "(SELECT {q} AS s FROM {source} WHERE {q} IS NOT NULL LIMIT {SAMPLE_ROWS}) AS src",
        q = col.quoted
    );
    Ok(slots.read(&select.run(conn, &rows)?))
}

// ---------------------------------------------------------------------------------------------
// Semantic types

/// A text pattern for a semantic type, matched in full by `regexp_full_match` (RE2 syntax).
struct Pattern {
    semantic: &'static str,
    regex: &'static str,
}

impl Pattern {
    /// SQL that is true when `value` matches, ignoring surrounding whitespace (stray whitespace
    /// is a consistency problem, counted once, by `untrimmed`).
    fn matches(&self, value: &str) -> String {
        full_match(value, self.regex)
    }
}

/// Whitespace as Unicode's White_Space property: RE2's `\s` is ASCII [\t\n\f\r ] only.
const WHITESPACE: &str = r"[\s\p{Z}\x{0B}\x{85}]";

fn full_match(value: &str, regex: &str) -> String {
    format!("regexp_full_match({value}, {})", quote_literal(&padded(regex)))
}

/// A pattern that also accepts surrounding whitespace.
fn padded(regex: &str) -> String {
    format!("{WHITESPACE}*(?:{regex}){WHITESPACE}*")
}

/// The whole-value RE2 pattern with which the profiler recognises a semantic type (email, url,
/// uuid, ip, phone, postcode…), surrounding whitespace allowed: a format test suggested for a
/// column of that type holds exactly the values the profiler counted as valid.
pub fn semantic_pattern(semantic: &str) -> Option<String> {
    PATTERNS.iter().find(|p| p.semantic == semantic).map(|p| padded(p.regex))
}

/// Leading or trailing whitespace: the first or last character is one of Unicode's White_Space
/// code points. Checking two code points is three times cheaper than `v <> trim(v)` (which
/// copies every value, and misses tabs and newlines) and than a regular expression.
fn untrimmed(value: &str) -> String {
    const WHITE_SPACE: &str = "9, 10, 11, 12, 13, 32, 133, 160, 5760, 8192, 8193, 8194, 8195, 8196, 8197, 8198, \
                               8199, 8200, 8201, 8202, 8232, 8233, 8239, 8287, 12288";
    format!("(unicode({value}) IN ({WHITE_SPACE}) OR unicode({value}[-1]) IN ({WHITE_SPACE}))")
}

/// Codes such as `INV-00042` or `A1B2`: one token of letters, digits and `_-./:#` with a digit.
fn code_like(value: &str) -> String {
    format!(
        "({} AND regexp_matches({value}, '[0-9]'))",
        full_match(value, r"[A-Za-z0-9][A-Za-z0-9_\-./:#]{0,63}")
    )
}

const DIGITS: &str = "[0-9]+";
/// A number as text: digits with an optional sign, decimal part and exponent, or thousands
/// grouped with commas.
const NUMBER: &str =
    r"[-+]?(?:[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?";
/// Share of a text column's sampled values from which one kind of value among others
/// (numbers among words, dates among other text…) makes a `MIXED_TYPES` alert.
const MIXED_SHARE: f64 = 0.1;

/// The patterns, in the order they are tried: the first one that ≥ 90% of sampled values match
/// gives the column its semantic type.
const PATTERNS: &[Pattern] = &[
    Pattern {
        semantic: "email",
        regex: r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}",
    },
    Pattern { semantic: "url", regex: r"(?i)(?:https?|ftp)://[^\s/?#]+[^\s]*" },
    Pattern {
        semantic: "uuid",
        regex: r"\{?[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}?",
    },
    Pattern {
        semantic: "ip",
        regex: r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])|(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|(?:[0-9A-Fa-f]{1,4}:){0,6}[0-9A-Fa-f]{0,4}::(?:[0-9A-Fa-f]{1,4}:){0,6}[0-9A-Fa-f]{0,4}",
    },
    Pattern {
        semantic: "date",
        // D/M/YYYY or M/D/YYYY: one of the two is a month (`31/31/2020` is no date).
        regex: r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])|(?:(?:0?[1-9]|[12][0-9]|3[01])[/.](?:0?[1-9]|1[0-2])|(?:0?[1-9]|1[0-2])[/.](?:0?[1-9]|[12][0-9]|3[01]))[/.][0-9]{4}",
    },
    Pattern {
        semantic: "datetime",
        regex: r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,9})?)?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?",
    },
    Pattern {
        semantic: "phone",
        regex: r"\+[0-9]{1,3}(?:[ .-]?\(?[0-9]{1,4}\)?){1,5}|\(?[0-9]{3}\)?[ .-]?[0-9]{3}[ .-][0-9]{4}|0[0-9]{2,4}[ -]?[0-9]{3,4}[ -]?[0-9]{3,4}",
    },
    Pattern {
        semantic: "postcode",
        regex: r"(?i)[0-9]{5}(?:-[0-9]{4})?|GIR ?0AA|[A-Z]{1,2}[0-9][0-9A-Z]? ?[0-9][A-Z]{2}",
    },
    Pattern {
        semantic: "currency",
        regex: r"[-+]?[$€£¥₹] ?[-+]?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?|[-+]?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)? ?(?:[$€£¥₹]|(?:USD|EUR|GBP|JPY|CHF|CAD|AUD|NZD|CNY|INR|SEK|NOK|DKK|ZAR))|(?:USD|EUR|GBP|JPY|CHF|CAD|AUD|NZD|CNY|INR|SEK|NOK|DKK|ZAR) ?[-+]?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?",
    },
];

/// The pattern that types a text column (in step 3, from its sample): the first of
/// [`PATTERNS`] that ≥ 90% of sampled non-null values match.
fn pattern_of(col: &Col, stats: &Stats) -> Option<&'static Pattern> {
    // (A sample holds only non-null values: a pattern needs some, see `Sample::share`.)
    let sample = stats.sample.as_ref().filter(|_| col.kind == Kind::Text)?;
    let header = header_tokens(&col.info.name);
    PATTERNS.iter().zip(&sample.hits).find_map(|(pattern, &hits)| {
        // Five-digit strings are ZIP codes only when the header says so: otherwise they are
        // as likely codes or numbers kept as text.
        let digits_without_header = pattern.semantic == "postcode"
            && sample.share(sample.digits_only)
            && !is_postcode_header(&header);
        (sample.share(hits) && !digits_without_header).then_some(pattern)
    })
}

/// The semantic type, once distinct counts are known (after step 3).
fn semantic_type(
    col: &Col,
    stats: &Stats,
    pattern: Option<&'static Pattern>,
    params: &ProfileParams,
) -> &'static str {
    if stats.non_null == 0 {
        return "empty";
    }
    let header = header_tokens(&col.info.name);
    match col.kind {
        Kind::Integer => return "integer",
        Kind::Float => return "float",
        Kind::Decimal if header.iter().any(|t| CURRENCY_HEADERS.contains(&t.as_str())) => {
            return "currency";
        }
        Kind::Decimal => return "float",
        Kind::Boolean => return "boolean",
        Kind::Date => return "date",
        Kind::Timestamp | Kind::Time => return "datetime",
        Kind::Uuid => return "uuid",
        Kind::Text | Kind::Other => {}
    }
    if let Some(pattern) = pattern {
        return pattern.semantic;
    }
    let sample = stats.sample.clone().unwrap_or_default();
    let non_null = stats.non_null as f64;
    let distinct = stats.distinct as f64;
    if col.kind == Kind::Text
        && distinct >= UNIQUE_SHARE * non_null
        && (is_id_header(&header) || sample.share(sample.code_like))
    {
        return "identifier";
    }
    if stats.distinct <= params.categorical_threshold
        || distinct / non_null <= params.categorical_ratio_threshold
    {
        return "category";
    }
    "text"
}

/// What a text column that no pattern typed mixes with other values, and its share of the
/// sample: the most common of numbers and the patterns' kinds, when it is at least
/// [`MIXED_SHARE`] of the sampled values but not all of them (`age`: 34, 45, "unknown";
/// `size`: S, M, 42). A column typed by a pattern counts what does not fit instead
/// (`invalid_count`).
fn mixed_kind(col: &Col, stats: &Stats, semantic: &str) -> Option<(&'static str, f64)> {
    if col.kind != Kind::Text || !["text", "category", "identifier"].contains(&semantic) {
        return None;
    }
    let sample = stats.sample.as_ref().filter(|s| s.size > 0)?;
    let kinds = std::iter::once(("numbers", sample.numbers)).chain(PATTERNS.iter().zip(&sample.hits).map(
        |(pattern, &hits)| {
            let kind = match pattern.semantic {
                "email" => "email addresses",
                "url" => "URLs",
                "uuid" => "UUIDs",
                "ip" => "IP addresses",
                "date" => "dates",
                "datetime" => "date-times",
                "phone" => "phone numbers",
                "postcode" => "postcodes",
                _ => "amounts of money",
            };
            (kind, hits)
        },
    ));
    // The first of the most common (numbers before the patterns that also match digits).
    let (kind, hits) = kinds.fold(("", 0), |best, kind| if kind.1 > best.1 { kind } else { best });
    let share = hits as f64 / sample.size as f64;
    (hits < sample.size && share >= MIXED_SHARE).then_some((kind, share))
}

const CURRENCY_HEADERS: &[&str] = &[
    "price", "prices", "amount", "amt", "cost", "costs", "salary", "revenue", "total", "subtotal", "fee",
    "fees", "balance", "payment", "paid", "wage", "wages", "income", "spend", "spent", "charge", "usd",
    "eur", "gbp", "currency", "tax", "discount",
];

fn is_id_header(tokens: &[String]) -> bool {
    const ID_WORDS: &[&str] =
        &["id", "ids", "uuid", "guid", "key", "code", "sku", "ref", "reference", "number", "no", "num", "nr"];
    tokens.last().is_some_and(|t| ID_WORDS.contains(&t.as_str()))
}

fn is_postcode_header(tokens: &[String]) -> bool {
    let compact = tokens.concat();
    ["zip", "zipcode", "postcode", "postal", "postalcode"].iter().any(|w| tokens.iter().any(|t| t == w))
        || compact.contains("postcode")
        || compact.contains("postalcode")
        || compact.contains("zipcode")
}

/// The kind of personal data a column likely holds: from its semantic type, else its header.
fn pii(col: &Col, semantic: &str) -> Option<String> {
    if let kind @ ("email" | "phone" | "ip" | "postcode") = semantic {
        return Some(kind.into());
    }
    if col.kind == Kind::Boolean {
        // `email_verified`, `has_phone`: flags about personal data, not personal data.
        return None;
    }
    let tokens = header_tokens(&col.info.name);
    let compact = tokens.concat();
    let has = |words: &[&str]| tokens.iter().any(|t| words.contains(&t.as_str()));
    let contains = |parts: &[&str]| parts.iter().any(|p| compact.contains(p));
    let kind = if has(&["email", "mail"]) || contains(&["email"]) {
        "email"
    } else if has(&["phone", "telephone", "tel", "mobile", "cell", "cellphone", "fax"])
        || contains(&["phone"])
    {
        "phone"
    } else if has(&["ip"]) || compact == "ipaddress" || compact == "ipaddr" {
        "ip"
    } else if has(&["dob", "birthday", "birthdate"]) || contains(&["birth"]) {
        "date_of_birth"
    } else if has(&["ssn", "nino", "passport"])
        || contains(&["socialsecurity", "nationalinsurance", "nationalid", "taxid", "taxpayerid"])
    {
        "national_id"
    } else if has(&["iban", "ccn"]) || contains(&["creditcard", "cardnumber"]) {
        "payment_card"
    } else if NAME_HEADERS.contains(&compact.as_str()) || has(&["surname", "forename", "forenames"]) {
        "name"
    } else if has(&["address", "addr", "street"]) || contains(&["streetaddress", "homeaddress"]) {
        "address"
    } else if is_postcode_header(&tokens) {
        "postcode"
    } else {
        return None;
    };
    Some(kind.into())
}

/// Headers (as their words run together) that name a person.
const NAME_HEADERS: &[&str] = &[
    "name",
    "fname",
    "lname",
    "firstname",
    "lastname",
    "fullname",
    "givenname",
    "familyname",
    "middlename",
    "maidenname",
    "customername",
    "personname",
    "contactname",
    "employeename",
    "username",
    "patientname",
    "studentname",
    "clientname",
    "ownername",
];

// ---------------------------------------------------------------------------------------------
// Histograms

/// How a column's values fall into bins.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Binning {
    /// min == max: one bin holding every value.
    Single { value: f64 },
    /// `bins` bins of `width` over [lo, hi]: bin i = [lo + i·width, lo + (i+1)·width), the last
    /// closed at hi.
    Equal { lo: f64, hi: f64, bins: u64, width: f64 },
}

impl Binning {
    fn new(lo: f64, hi: f64, bins: u64) -> Option<Binning> {
        if bins == 0 || !lo.is_finite() || !hi.is_finite() || lo > hi {
            return None;
        }
        if lo == hi {
            return Some(Binning::Single { value: lo });
        }
        let width = (hi - lo) / bins as f64;
        // hi − lo can overflow (±1e308) or a width underflow to 0: such a range has no bins.
        (width.is_finite() && width > 0.0).then_some(Binning::Equal { lo, hi, bins, width })
    }

    /// The bin index of the non-null `value`: `min(⌊(value − lo) / width⌋, bins − 1)`.
    fn index(&self, value: &str) -> String {
        match *self {
            Binning::Single { .. } => "0".into(),
            Binning::Equal { lo, bins, width, .. } => format!(
                "CAST(least(floor(({value} - {}) / {}), {}) AS BIGINT)",
                double(lo),
                double(width),
                bins - 1
            ),
        }
    }

    /// The aggregate that counts rows by the bin index of `value`, as JSON `{"index": count, …}`
    /// (for a relation of rows; [`bin_counts`] weighs distinct values by their counts).
    fn aggregate(&self, value: &str) -> String {
        // The FILTER matters: DuckDB's `least` ignores NULLs (`least(NULL, 2)` is 2).
        format!("to_json(histogram({}) FILTER (WHERE {value} IS NOT NULL))", self.index(value))
    }

    /// The bin index of the number `value`, as [`Binning::index`] computes it in SQL: the same
    /// double-precision operations, so the same result.
    fn index_of(&self, value: f64) -> i64 {
        match *self {
            Binning::Single { .. } => 0,
            Binning::Equal { lo, bins, width, .. } => {
                ((value - lo) / width).floor().min((bins - 1) as f64) as i64
            }
        }
    }

    /// The number of values per bin of the integers `lo..=hi`, each once (their DOUBLEs exact:
    /// within ±2⁵³). A bin index never decreases as the value grows (each operation of
    /// [`Binning::index_of`] is monotone), so each bin holds a run of integers, found by
    /// bisection: no value is read.
    fn dense_counts(&self, lo: i64, hi: i64) -> HashMap<i64, u64> {
        // The first integer in lo..=hi+1 whose bin index is at least `bin`.
        let first = |bin: i64| {
            let (mut a, mut b) = (lo, hi + 1);
            while a < b {
                let mid = a + (b - a) / 2;
                if self.index_of(mid as f64) >= bin { b = mid } else { a = mid + 1 }
            }
            a
        };
        let bins = match *self {
            Binning::Single { .. } => 1,
            Binning::Equal { bins, .. } => bins as i64,
        };
        (0..bins)
            .map(|bin| (bin, u64::try_from(first(bin + 1) - first(bin)).unwrap_or(0)))
            .filter(|&(_, count)| count > 0)
            .collect()
    }

    /// The bins, with `counts` by bin index (or all `non_null` values in a single bin).
    fn bins(&self, counts: &HashMap<i64, u64>, non_null: u64) -> Vec<HistogramBin> {
        match *self {
            Binning::Single { value } => vec![HistogramBin { lower: value, upper: value, count: non_null }],
            Binning::Equal { lo, hi, bins, width } => (0..bins)
                .map(|i| HistogramBin {
                    lower: lo + i as f64 * width,
                    upper: if i + 1 == bins { hi } else { lo + (i + 1) as f64 * width },
                    count: i64::try_from(i).ok().and_then(|i| counts.get(&i)).copied().unwrap_or(0),
                })
                .collect(),
        }
    }
}

/// Reads `to_json(histogram(…))`: an object `{"0": 4, "2": 1}` (or, defensively, a list of
/// `{"key": …, "value": …}`); NULL when there were no values.
fn parse_bin_counts(json: Option<&str>) -> anyhow::Result<HashMap<i64, u64>> {
    let Some(json) = json else { return Ok(HashMap::new()) };
    let parsed: serde_json::Value = serde_json::from_str(json).context("reading histogram counts")?;
    let number = |v: &serde_json::Value| v.as_u64().context("histogram count is not a number");
    let mut counts = HashMap::new();
    match parsed {
        serde_json::Value::Object(map) => {
            for (key, value) in &map {
                counts.insert(key.parse::<i64>().context("histogram bin index")?, number(value)?);
            }
        }
        serde_json::Value::Array(entries) => {
            for entry in &entries {
                let key = entry.get("key").and_then(|k| k.as_i64()).context("histogram bin index")?;
                counts.insert(key, number(entry.get("value").unwrap_or(&serde_json::Value::Null))?);
            }
        }
        serde_json::Value::Null => {}
        other => anyhow::bail!("unexpected histogram {other}"),
    }
    Ok(counts)
}

/// The number of values per bin index over `counted` (a relation of values `v` and counts
/// `n`, see [`Values::counted`]): one small GROUP BY, at most `bins` groups.
fn bin_counts(
    conn: &Connection,
    col: &Col,
    counted: &str,
    binning: Binning,
) -> anyhow::Result<HashMap<i64, u64>> {
    let Some(h) = col.binned_of("v") else { return Ok(HashMap::new()) };
    let sql = format!(
        "SELECT b, CAST(sum(n) AS BIGINT) FROM \
         (SELECT {index} AS b, n FROM (SELECT {h} AS h, n FROM {counted}) WHERE h IS NOT NULL) GROUP BY b",
        index = binning.index("h")
    );
    let mut statement = conn.prepare(&sql)?;
    let mut result = statement.query([])?;
    let mut counts = HashMap::new();
    while let Some(row) = result.next()? {
        let count: i64 = row.get(1)?;
        counts.insert(row.get(0)?, u64::try_from(count).unwrap_or(0));
    }
    Ok(counts)
}

// ---------------------------------------------------------------------------------------------
// Step 3: each column's values

/// A relation of one column's non-null values `v` with counts `n`, from which everything in
/// step 3 is computed: sums weighted by `n` count every row.
enum Values {
    /// The column itself, each row counting 1: right for every per-row statistic (lengths,
    /// outliers, histograms…) whatever the values, and a cheap stand-in for the grouping when
    /// the column is unique.
    Rows,
    /// `GROUP BY value` (the null group included) in this temporary table of `v` and `n`.
    Grouped(String),
}

impl Values {
    /// The relation of `v` and `n` (BIGINT), non-null values only.
    fn counted(&self, col: &Col, source: &str) -> String {
        match self {
            Values::Rows => format!(
                "(SELECT v, CAST(1 AS BIGINT) AS n FROM (SELECT {} AS v FROM {source}) WHERE v IS NOT NULL)",
                col.value()
            ),
            Values::Grouped(table) => format!("(SELECT v, n FROM {table} WHERE v IS NOT NULL)"),
        }
    }
}

/// The connection's temporary tables of one profile, one column's `GROUP BY` at a time. Named
/// from the column's position, never from its name; temporary objects are private to the
/// connection, and a table is dropped as soon as its column is done, or when this is dropped
/// (an error, an interrupt).
struct Scratch<'c> {
    conn: &'c Connection,
    table: Option<String>,
    /// Held while `quantile_cont` runs, when another connection profiles at the same time:
    /// it keeps every value in memory outside DuckDB's limit, so one such copy at a time.
    holistic: Option<&'c Mutex<()>>,
}

impl<'c> Scratch<'c> {
    fn new(conn: &'c Connection) -> Scratch<'c> {
        Scratch { conn, table: None, holistic: None }
    }

    /// A scratch whose `quantile_cont` waits for `holistic` (shared with other connections).
    fn sharing(conn: &'c Connection, holistic: &'c Mutex<()>) -> Scratch<'c> {
        Scratch { conn, table: None, holistic: Some(holistic) }
    }

    /// Groups the column's values (nulls included, as one group) into a temporary table of
    /// `v` and `n`. For a text column, with `stride`, also `s`: how many of each value's rows
    /// are in the semantic-type sample (see [`grouped_sample`]). Hash aggregation spills to
    /// disk under the memory limit, and so does the table.
    fn group(&mut self, source: &str, col: &Col, stride: Option<u64>) -> anyhow::Result<Values> {
        let value = col.value();
        let select = match stride.filter(|_| col.kind == Kind::Text) {
            Some(stride) => format!(
                "SELECT v, count(*) AS n, count(*) FILTER (WHERE sampled) AS s \
                 FROM (SELECT {value} AS v, file_row_number % {stride} = 0 AS sampled FROM {source}) GROUP BY v"
            ),
            None => format!("SELECT v, count(*) AS n FROM (SELECT {value} AS v FROM {source}) GROUP BY v"),
        };
        let table = self.create(&format!("values_{}", col.index), &select).context("grouping values")?;
        Ok(Values::Grouped(table))
    }

    /// Creates the temporary table `agensium_profile_{name}` from `select`, dropping the
    /// previous one. Returns its qualified name.
    fn create(&mut self, name: &str, select: &str) -> anyhow::Result<String> {
        self.release()?;
        let table = format!("temp.main.agensium_profile_{name}");
        self.table = Some(table.clone());
        self.conn.execute_batch(&format!("CREATE OR REPLACE TEMPORARY TABLE {table} AS {select}"))?;
        Ok(table)
    }

    fn release(&mut self) -> anyhow::Result<()> {
        if let Some(table) = self.table.take() {
            self.conn.execute_batch(&format!("DROP TABLE IF EXISTS {table}"))?;
        }
        Ok(())
    }
}

impl Drop for Scratch<'_> {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

/// What step 3 finds about one column besides [`Stats`].
#[derive(Default)]
struct Details {
    pattern: Option<&'static Pattern>,
    binning: Option<Binning>,
    histogram: Vec<HistogramBin>,
    outliers: Option<u64>,
    invalid: u64,
    top_values: Vec<ValueCount>,
}

/// Step 3 over every column: what each column's values need, shared by the connections that
/// profile them.
struct Step3<'a> {
    source: &'a str,
    cols: &'a [Col<'a>],
    params: &'a ProfileParams,
    rows: u64,
    stride: Option<u64>,
}

/// A column's step-3 work, taken from the queue by whichever connection is free: its index and
/// its statistics so far (given back completed with its [`Details`]).
type Job = (usize, Stats);
/// A column done: its index, the connection that profiled it (0 or 1), its statistics, details.
type Done = (usize, usize, Stats, Details);

impl Step3<'_> {
    /// Profiles every column's values, on `conn` and, if given, `helper` at the same time,
    /// costliest columns first so that neither connection is left with a long column at the end
    /// while the other waits. `done(n)` is called on this thread whenever `n` columns are done.
    /// Returns each column's details, and how many columns each connection profiled.
    /// After an error neither connection takes another column; the first error is the one
    /// returned, and it interrupts the other connection's statement (its own error, an
    /// interrupt, is then not the first). An interrupt that finds that connection between two
    /// statements is lost — DuckDB clears it when the next one starts — and the connection
    /// then only finishes its column. `quantile_cont` runs on one connection at a time: it keeps
    /// a copy of every value outside the memory limit.
    fn run(
        &self,
        conn: &Connection,
        helper: Option<&mut Connection>,
        stats: &mut [Stats],
        done: &mut dyn FnMut(usize),
    ) -> anyhow::Result<(Vec<Details>, [usize; 2])> {
        let mut order: Vec<usize> = (0..self.cols.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(Self::cost(&self.cols[i], &stats[i])));
        let queue: Mutex<VecDeque<Job>> =
            Mutex::new(order.into_iter().map(|i| (i, std::mem::take(&mut stats[i]))).collect());
        let failed: Mutex<Option<anyhow::Error>> = Mutex::new(None);
        let stopped = || failed.lock().map_or(true, |first| first.is_some());
        let next = || if stopped() { None } else { queue.lock().ok()?.pop_front() };
        let holistic = Mutex::new(());
        // Each connection's interrupt handle: the first error stops the other's statement.
        let handles = [Some(conn.interrupt_handle()), helper.as_ref().map(|h| h.interrupt_handle())];
        // One column on connection `me`; an error is kept if it is the first.
        let work = |scratch: &mut Scratch, me: usize, (index, mut column_stats): Job| -> Option<Done> {
            let col = &self.cols[index];
            let started = std::time::Instant::now();
            let result = column_values(
                scratch,
                self.source,
                col,
                &mut column_stats,
                self.params,
                self.rows,
                self.stride,
            );
            tracing::debug!(
                column = index + 1,
                connection = me,
                elapsed_ms = started.elapsed().as_millis() as u64,
                ok = result.is_ok(),
                "column values profiled"
            );
            match result {
                Ok(details) => Some((index, me, column_stats, details)),
                Err(err) => {
                    let err = err.context(format!("profiling the values of column {}", index + 1));
                    let mut first = failed.lock().unwrap_or_else(PoisonError::into_inner);
                    if first.is_none() {
                        *first = Some(err);
                        if let Some(other) = &handles[1 - me] {
                            other.interrupt();
                        }
                    }
                    None
                }
            }
        };
        let mut found: Vec<Option<Details>> = (0..self.cols.len()).map(|_| None).collect();
        let mut finished = 0;
        let mut by = [0; 2];
        let mut record = |(index, me, column_stats, details): Done, stats: &mut [Stats]| {
            stats[index] = column_stats;
            found[index] = Some(details);
            by[me] += 1;
            finished += 1;
            finished
        };
        std::thread::scope(|scope| {
            let (sender, receiver) = std::sync::mpsc::channel::<Done>();
            if let Some(helper) = helper {
                let (next, work) = (&next, &work);
                let holistic = &holistic;
                scope.spawn(move || {
                    let mut scratch = Scratch::sharing(helper, holistic);
                    while let Some(job) = next() {
                        let Some(result) = work(&mut scratch, 1, job) else { break };
                        if sender.send(result).is_err() {
                            break;
                        }
                    }
                });
            } else {
                drop(sender);
            }
            let mut scratch = Scratch::sharing(conn, &holistic);
            while let Some(job) = next() {
                let Some(result) = work(&mut scratch, 0, job) else { break };
                let mut count = record(result, stats);
                for other in receiver.try_iter() {
                    count = record(other, stats);
                }
                done(count);
            }
            drop(scratch);
            for other in receiver.iter() {
                let count = record(other, stats);
                done(count);
            }
        });
        if let Some(err) = failed.into_inner().unwrap_or_else(PoisonError::into_inner) {
            return Err(err);
        }
        tracing::debug!(first = by[0], second = by[1], "columns profiled by each connection");
        let details = found
            .into_iter()
            .enumerate()
            .map(|(index, details)| details.with_context(|| format!("column {} was not profiled", index + 1)))
            .collect::<anyhow::Result<_>>()?;
        Ok((details, by))
    }

    /// How long a column's values take to profile, relative to the others (every column has
    /// as many rows), to order the work: hashing every value is the cost, and a probe of a
    /// column that looks unique is the largest hash table; text hashes and compares more bytes
    /// than numbers; booleans and integer columns counted by step 1's bitmap are cheap.
    fn cost(col: &Col, stats: &Stats) -> u8 {
        if col.kind == Kind::Boolean || stats.early.as_ref().is_some_and(|e| e.distinct.is_some()) {
            1
        } else if stats.looks_unique() {
            if col.kind == Kind::Text { 40 } else { 20 }
        } else if col.kind == Kind::Text || col.kind == Kind::Other {
            10
        } else {
            5
        }
    }
}

/// Step 3 for one column. An integer column may know its distinct count from step 1's bitmap;
/// another that looks unique (step 2) is probed ([`distinct_probe`]). If its non-null values
/// are all distinct it is never grouped: its distinct count is its non-null count, and its top
/// values, all counting 1, are its smallest values (`min(v, N)`). Otherwise it is grouped into
/// a temporary table. Then, from the column's values with their counts ([`Values`]): the
/// semantic-type sample of a text column and its pattern; quartiles; one row of aggregates
/// (counts, min/max and range for non-numeric columns, outliers, lengths, whitespace,
/// validity — a probed text column has all but validity from its probe's scan); the
/// histogram's bins; the top values.
fn column_values(
    scratch: &mut Scratch,
    source: &str,
    col: &Col,
    stats: &mut Stats,
    params: &ProfileParams,
    rows: u64,
    stride: Option<u64>,
) -> anyhow::Result<Details> {
    let conn = scratch.conn;
    let limit = params.top_n_values;
    // Numeric columns have their counts and range from step 1; other columns get them here.
    let numeric = col.number().is_some();
    if rows == 0 || (numeric && stats.non_null == 0) {
        // No values: no distinct ones, and the null group (if any row) is the only "value".
        let top_values =
            if rows > 0 && limit > 0 { vec![ValueCount { value: None, count: rows }] } else { Vec::new() };
        return Ok(Details { top_values, ..Details::default() });
    }
    // An integer column may have its exact distinct count from step 1 already.
    let early = stats.early.take().unwrap_or_default();
    let (mut probe_sample, mut text_rows) = (None, None);
    let mut unique = early.distinct.map(|distinct| distinct == stats.non_null);
    if unique.is_none() && stats.looks_unique() {
        let probe = distinct_probe(conn, source, col, stats, stride, limit.min(rows))?;
        stats.non_null = probe.non_null.unwrap_or(stats.non_null);
        unique = Some(probe.distinct == stats.non_null);
        (probe_sample, text_rows) = (probe.sample, probe.text);
    }
    let values = if unique == Some(true) { Values::Rows } else { scratch.group(source, col, stride)? };
    let counted = values.counted(col, source);
    let mut details = Details::default();

    if col.kind == Kind::Text {
        // The semantic-type sample, then the pattern it gives (validity is counted below).
        let mut sample = None;
        if stride.is_some() {
            sample = Some(match (&values, probe_sample) {
                // A column that looked unique took its sample with its probe, from its rows.
                (_, Some(found)) => found,
                (Values::Grouped(table), None) => {
                    let (found, non_null) = grouped_sample(conn, table).context("sampling")?;
                    stats.non_null = non_null;
                    found
                }
                (Values::Rows, None) => Sample::default(),
            });
        }
        let sampled = sample.as_ref().map_or(0, |s| s.size);
        // Too small a sample: a sparse column, or a file without `file_row_number`. When every
        // row is sampled the sample holds every value; otherwise count them to decide.
        if sampled < MIN_SAMPLE && stride != Some(1) {
            let count = match &values {
                Values::Rows => format!("SELECT count({}) FROM {source}", col.quoted),
                Values::Grouped(table) => format!("SELECT sum(n) FROM {table} WHERE v IS NOT NULL"),
            };
            let n: Option<i64> = conn.query_row(&count, [], |r| r.get(0))?;
            stats.non_null = n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
            if sampled < stats.non_null.min(MIN_SAMPLE) {
                sample = Some(first_values_sample(conn, source, col).context("sampling first values")?);
            }
        }
        stats.sample = sample;
        details.pattern = pattern_of(col, stats);
    }

    if numeric && stats.finite > 0 {
        let [q25, median, q75] = match stats.quartiles {
            Some(known) => known,
            None => quartiles(conn, source, col, stats, &values, &counted, scratch.holistic)?,
        };
        (stats.q25, stats.median, stats.q75) = (q25, median, q75);
    }
    let fences = match (stats.q25, stats.q75) {
        (Some(q25), Some(q75)) => {
            let k = params.outlier_iqr_multiplier;
            Some((q25 - k * (q75 - q25), q75 + k * (q75 - q25)))
        }
        _ => None,
    };
    let rows_relation = matches!(values, Values::Rows);
    let dense = dense_range(col, stats).filter(|_| rows_relation);
    if numeric {
        details.binning = stats.range.and_then(|(lo, hi)| Binning::new(lo, hi, params.histogram_bins));
    }
    // The bins of a unique integer column that fills its range are known by arithmetic.
    let mut known_bins = match (dense, details.binning) {
        (Some((lo, hi)), Some(binning @ Binning::Equal { .. })) => Some(binning.dense_counts(lo, hi)),
        _ => None,
    };

    // One row of aggregates over the values, each counting `n` times (skipped when nothing is
    // left to compute, as for an id column, which step 1 and arithmetic describe entirely).
    let mut select = Select::default();
    let groups = (!rows_relation && early.distinct.is_none()).then(|| select.int("count(*)"));
    // A text column that was probed has its count, min/max and text aggregates already.
    let non_null = (!numeric && text_rows.is_none()).then(|| select.int("sum(n)"));
    let min_max = (!numeric && col.kind.is_orderable() && col.kind != Kind::Text)
        .then(|| (select.text("min(v)"), select.text("max(v)")));
    // Dates and timestamps: the range binned, and how many values are (not infinite ones).
    let range = (!numeric).then(|| col.binned_of("v")).flatten().map(|h| {
        (
            select.float(format!("min({h})")),
            select.float(format!("max({h})")),
            select.int(format!("sum(n) FILTER (WHERE {h} IS NOT NULL)")),
        )
    });
    if let (Some((low, high)), Some((lo, hi))) = (fences, dense) {
        details.outliers = Some(dense_outliers(lo, hi, low, high));
    }
    let outliers = fences.filter(|_| dense.is_none()).and_then(|(low, high)| {
        let d = col.number_of("v")?;
        let below = if low.is_finite() { format!("{d} < {}", double(low)) } else { "false".into() };
        let above = if high.is_finite() { format!("{d} > {}", double(high)) } else { "false".into() };
        Some(select.int(format!("sum(n) FILTER (WHERE {below} OR {above})")))
    });
    // Speculative top values of a column that looks unique: its smallest values, ascending in
    // the type's order (the order of ORDER BY). Cheap, and used only if it proves unique.
    // (A text column can be proved unique only by its probe, which took them already.)
    let mut smallest = early.smallest;
    let wants_smallest = rows_relation && limit > 0 && smallest.is_none() && text_rows.is_none();
    let text = (col.kind == Kind::Text && text_rows.is_none()).then(|| TextSlots::add(&mut select, None));
    let invalid =
        details.pattern.map(|p| select.int(format!("sum(n) FILTER (WHERE NOT {})", p.matches("v"))));
    // Over the rows, a numeric column's bins are one more aggregate (a grouped column's are a
    // GROUP BY of its distinct values, below).
    let bins = match (rows_relation, details.binning, col.binned_of("v")) {
        (true, Some(binning @ Binning::Equal { .. }), Some(h)) if known_bins.is_none() => {
            Some(select.text(binning.aggregate(&h)))
        }
        _ => None,
    };
    let smallest_slot = wants_smallest
        .then(|| select.text(format!("to_json(CAST(min(v, {}) AS VARCHAR[]))", limit.min(rows))));
    let cells = if select.is_empty() {
        Cells(Vec::new())
    } else {
        select.run(conn, &counted).context("aggregating values")?
    };
    if let Some(slot) = smallest_slot {
        smallest = cells.text(slot);
    }
    if let Some(slot) = bins {
        known_bins = Some(parse_bin_counts(cells.text(slot).as_deref())?);
    }

    if let Some(non_null) = non_null {
        stats.non_null = cells.count(non_null);
        if let Some((min, max)) = min_max {
            stats.min = cells.text(min);
            stats.max = cells.text(max);
        }
        if let Some((lo, hi, binned)) = range {
            stats.range = cells.float(lo).zip(cells.float(hi));
            stats.finite = cells.count(binned);
        }
        details.binning = stats.range.and_then(|(lo, hi)| Binning::new(lo, hi, params.histogram_bins));
    }
    if let Some(slot) = outliers {
        details.outliers = Some(cells.count(slot));
    }
    details.invalid = invalid.map_or(0, |slot| cells.count(slot));
    if let Some(found) = text_rows.or_else(|| text.map(|slots| slots.read(&cells))) {
        if stats.non_null > 0 {
            stats.min_length = Some(found.min_length);
            stats.max_length = Some(found.max_length);
            stats.mean_length = found.total_length.as_deref().and_then(|s| mean(s, stats.non_null));
        }
        stats.untrimmed = found.untrimmed;
        (stats.min, stats.max) = (found.min, found.max);
        if rows_relation && smallest.is_none() {
            smallest = found.smallest;
        }
    }
    if let Some(binning @ Binning::Equal { .. }) = details.binning {
        // Equal bins only: `non_null` is not used.
        let counts = match known_bins {
            Some(counts) => counts,
            None => bin_counts(conn, col, &counted, binning)?,
        };
        details.histogram = binning.bins(&counts, 0);
    }

    let nulls = rows - stats.non_null;
    match &values {
        Values::Rows => {
            stats.distinct = stats.non_null;
            if limit > 0 {
                details.top_values = unique_top_values(smallest.as_deref(), nulls, limit)?;
            }
        }
        Values::Grouped(table) => {
            // Step 1's bitmap, or the groups the aggregates counted.
            stats.distinct = match (early.distinct, groups) {
                (Some(distinct), _) => distinct,
                (None, groups) => groups.map_or(0, |slot| cells.count(slot)),
            };
            if limit > 0 {
                details.top_values = top_of(conn, table, limit).context("finding top values")?;
            }
        }
    }
    scratch.release()?;
    Ok(details)
}

/// The top values of a unique column: every non-null value counts 1, so they are ranked by
/// value alone — `smallest` (a JSON array of the `limit` smallest values, as text) — and the
/// null group, ranked by its count like any value: first when it counts more than 1, after
/// the values (which come first on ties) when it counts 1.
fn unique_top_values(smallest: Option<&str>, nulls: u64, limit: u64) -> anyhow::Result<Vec<ValueCount>> {
    let values: Vec<Option<String>> = match smallest {
        Some(json) => serde_json::from_str(json).context("reading the smallest values")?,
        None => Vec::new(),
    };
    let mut top: Vec<ValueCount> = values.into_iter().map(|value| ValueCount { value, count: 1 }).collect();
    match nulls {
        0 => {}
        1 => top.push(ValueCount { value: None, count: 1 }),
        _ => top.insert(0, ValueCount { value: None, count: nulls }),
    }
    top.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(top)
}

/// `sum / count` as DuckDB computes `avg` of an integer expression in an ungrouped aggregate:
/// its optimizer rewrites it to `sum(x) / count(x)`, both converted to DOUBLE (the HUGEINT sum
/// as `lower + upper · 2⁶⁴`). The same two roundings here give the same double.
fn mean(sum: &str, count: u64) -> Option<f64> {
    let sum: u128 = sum.parse().ok()?;
    let (upper, lower) = ((sum >> 64) as u64, sum as u64);
    let sum = lower as f64 + upper as f64 * 18446744073709551616.0;
    (count > 0).then(|| sum / count as f64).filter(|m| m.is_finite())
}

/// The `limit` most frequent values of `counted` (a relation of `v` and `n`, the null group
/// included): most frequent first, ties by value ascending in the column type's order, the
/// null group after values with the same count. A top-N, not a sort.
fn top_of(conn: &Connection, counted: &str, limit: u64) -> anyhow::Result<Vec<ValueCount>> {
    let sql = format!(
        "SELECT CAST(v AS VARCHAR), CAST(n AS BIGINT) FROM {counted} \
         ORDER BY n DESC, v ASC NULLS LAST LIMIT {limit}"
    );
    let mut statement = conn.prepare(&sql)?;
    let mut result = statement.query([])?;
    let mut values = Vec::new();
    while let Some(row) = result.next()? {
        let count: i64 = row.get(1)?;
        values.push(ValueCount { value: row.get(0)?, count: u64::try_from(count).unwrap_or(0) });
    }
    Ok(values)
}

/// What [`distinct_probe`] found.
struct Probe {
    /// A lower bound of the distinct count, exact when it equals the non-null count.
    distinct: u64,
    /// The non-null count (hash probes; step 1 knows it for numeric columns).
    non_null: Option<u64>,
    /// The semantic-type sample of a text column.
    sample: Option<Sample>,
    /// A text column's aggregates over its rows, taken in the same scan as its sample.
    text: Option<TextRows>,
}

/// What step 3 reads from a text column's values besides their counts (over its rows or,
/// each weighted by its count, over its distinct values: the same numbers).
#[derive(Debug, Default)]
struct TextRows {
    min: Option<String>,
    max: Option<String>,
    /// 0 when there is no value (see [`Stats::min_length`], which is then `None`).
    min_length: u64,
    max_length: u64,
    /// The exact sum of the lengths (HUGEINT, as text).
    total_length: Option<String>,
    untrimmed: u64,
    /// The `limit` smallest values (a JSON array, as text): the top values, if it is unique.
    smallest: Option<String>,
}

/// Proves cheaply whether a column that looks unique is: equal values hash alike, so distinct
/// hashes ≤ distinct values ≤ non-null values, and the column is unique exactly when the first
/// count reaches the last. Hashes are 8 bytes, whatever the values, and nothing else is kept
/// per hash: counting a 40-character text column's distinct hashes is twice as fast as
/// grouping its values, and faster still than grouping hashes with any aggregate beside. An
/// integer range that fits [`MAX_BITMAP_RANGE`] is cheaper still with a bitmap of one bit per
/// possible value (`bitstring_agg`), which counts exactly.
///
/// A column that is not numeric (numeric ones have it from step 1) takes its non-null count
/// from a scan of its rows before the probe: one more scan for a date, timestamp or UUID
/// column. For a text column that scan also takes its semantic-type sample (with `stride`) and
/// every aggregate step 3 would otherwise take over its values — counts, min/max, lengths,
/// whitespace and, for `limit > 0`, its smallest values — all exact whether or not the column
/// proves unique.
fn distinct_probe(
    conn: &Connection,
    source: &str,
    col: &Col,
    stats: &Stats,
    stride: Option<u64>,
    limit: u64,
) -> anyhow::Result<Probe> {
    let q = &col.quoted;
    let bounds =
        integer_bounds(col, stats).filter(|&(lo, hi)| i128::from(hi) - i128::from(lo) < MAX_BITMAP_RANGE);
    if let Some((lo, hi)) = bounds {
        let mut select = Select::default();
        let distinct = select.int(format!("bit_count(bitstring_agg({q}, {lo}, {hi}))"));
        let cells = select.run(conn, source).context("probing for unique values")?;
        return Ok(Probe { distinct: cells.count(distinct), non_null: None, sample: None, text: None });
    }
    let (mut non_null, mut sample, mut text) = (None, None, None);
    // Numeric columns have their non-null count from step 1.
    if col.number().is_none() {
        let mut select = Select::default();
        let count = select.int("count(*)");
        let rows = if col.kind == Kind::Text {
            let slots = stride.map(|_| SampleSlots::add(&mut select, "sv", None));
            let aggregates = TextSlots::add(&mut select, Some(limit));
            let sampled = stride
                .map(|stride| format!(", CASE WHEN file_row_number % {stride} = 0 THEN {q} END AS sv"))
                .unwrap_or_default();
            let rows = format!(
                "(SELECT {q} AS v, CAST(1 AS BIGINT) AS n{sampled} FROM {source} WHERE {q} IS NOT NULL)"
            );
            let cells = select.run(conn, &rows).context("reading the values")?;
            sample = slots.map(|slots| slots.read(&cells));
            text = Some(aggregates.read(&cells));
            cells
        } else {
            select
                .run(conn, &format!("(SELECT 1 FROM {source} WHERE {q} IS NOT NULL)"))
                .context("counting values")?
        };
        non_null = Some(rows.count(count));
    }
    let distinct: i64 = conn
        .query_row(
            &format!(
                "SELECT count(*) FROM (SELECT DISTINCT hash({}) FROM {source} WHERE {q} IS NOT NULL)",
                col.value()
            ),
            [],
            |r| r.get(0),
        )
        .context("probing for unique values")?;
    Ok(Probe { distinct: u64::try_from(distinct).unwrap_or(0), non_null, sample, text })
}

/// The slots of [`TextRows`] in one statement over a relation of `v` and its count `n`.
struct TextSlots {
    min: usize,
    max: usize,
    min_length: usize,
    max_length: usize,
    total_length: usize,
    untrimmed: usize,
    smallest: Option<usize>,
}

impl TextSlots {
    /// Aggregates of the non-null values `v`, each counting `n` times; with `smallest`, also
    /// that many smallest values (meaningful over rows, where every `n` is 1).
    fn add(select: &mut Select, smallest: Option<u64>) -> TextSlots {
        TextSlots {
            min: select.text("min(v)"),
            max: select.text("max(v)"),
            min_length: select.int("min(length(v))"),
            max_length: select.int("max(length(v))"),
            // Exact (HUGEINT), read as text: the mean is computed from it as DuckDB's avg would.
            total_length: select.text("sum(length(v) * n)"),
            untrimmed: select.int(format!("sum(n) FILTER (WHERE {})", untrimmed("v"))),
            smallest: smallest
                .filter(|&limit| limit > 0)
                .map(|limit| select.text(format!("to_json(CAST(min(v, {limit}) AS VARCHAR[]))"))),
        }
    }

    fn read(&self, cells: &Cells) -> TextRows {
        TextRows {
            min: cells.text(self.min),
            max: cells.text(self.max),
            min_length: cells.count(self.min_length),
            max_length: cells.count(self.max_length),
            total_length: cells.text(self.total_length),
            untrimmed: cells.count(self.untrimmed),
            smallest: self.smallest.and_then(|slot| cells.text(slot)),
        }
    }
}

/// The range of an integer column whose values, if they are distinct, are exactly
/// `min, min + 1, …, max` (as many as the range holds), within ±2⁵³ so that every value's DOUBLE
/// is exact. (Only once the column is proved unique does this say the values fill the range.)
fn dense_range(col: &Col, stats: &Stats) -> Option<(i64, i64)> {
    const EXACT: i64 = 1 << 53;
    let (lo, hi) = integer_bounds(col, stats)?;
    // (In i128: i64::MIN..=i64::MAX spans more than an i64 holds.)
    let span = u64::try_from(i128::from(hi) - i128::from(lo)).ok().and_then(|span| span.checked_add(1));
    let filled = span == Some(stats.finite);
    (filled && -EXACT <= lo && hi <= EXACT).then_some((lo, hi))
}

/// IQR outliers of the integers `lo..=hi`, each once: those `< low` or `> high` (a fence that
/// is not finite catches nothing, as in SQL). Exact: the integers are exact DOUBLEs. Counted as
/// all but those inside, `⌈low⌉..=⌊high⌋`, so that a value beyond both fences (crossed fences,
/// from a negative multiplier) counts once.
fn dense_outliers(lo: i64, hi: i64, low: f64, high: f64) -> u64 {
    let (lo, hi) = (i128::from(lo), i128::from(hi));
    // `as` saturates: a fence beyond any i128 still compares right with these integers.
    let first = if low.is_finite() { lo.max(low.ceil() as i128) } else { lo };
    let last = if high.is_finite() { hi.min(high.floor() as i128) } else { hi };
    let inside = (last - first + 1).max(0);
    u64::try_from(hi - lo + 1 - inside).unwrap_or(0)
}

/// An integer column's min and max (from step 1), when they fit in an i64.
fn integer_bounds(col: &Col, stats: &Stats) -> Option<(i64, i64)> {
    (col.kind == Kind::Integer).then_some(())?;
    Some((stats.min.as_deref()?.parse().ok()?, stats.max.as_deref()?.parse().ok()?))
}

// ---------------------------------------------------------------------------------------------
// Quartiles

/// The quartiles, as DuckDB's `quantile_cont` computes them.
const QUARTILES: [f64; 3] = [0.25, 0.5, 0.75];

/// The exact quartiles of a numeric column's finite values, with `quantile_cont`'s arithmetic
/// (see [`Ranks`]), by the cheapest exact route:
///
/// - a unique integer column whose values fill its range (an id column: `max − min + 1`
///   values) holds exactly `min, min + 1, …, max`, so the value of rank `r` is `min + r`;
/// - `quantile_cont` itself buffers every value in memory, where it cannot spill: it runs when
///   the values are about as many as the distinct ones (a unique column, or a grouped column
///   with few repeats), and gives way on running out of memory to
/// - [`quartiles_by_rank`], which sorts the distinct values (and spills).
fn quartiles(
    conn: &Connection,
    source: &str,
    col: &Col,
    stats: &Stats,
    values: &Values,
    counted: &str,
    holistic: Option<&Mutex<()>>,
) -> anyhow::Result<[Option<f64>; 3]> {
    let finite = stats.finite;
    if let (Values::Rows, Some((lo, _))) = (values, dense_range(col, stats)) {
        return Ok(QUARTILES.map(|q| {
            let ranks = Ranks::new(finite, q);
            let at = |rank: u64| (lo + rank as i64) as f64;
            Some(ranks.interpolate(at(ranks.lo), at(ranks.hi)))
        }));
    }
    // Sorting with a window costs about four times as much per row as `quantile_cont`'s
    // selection: below a quarter of the values, the distinct values are the cheaper input.
    let direct = match values {
        Values::Rows => true,
        Values::Grouped(_) => {
            let groups: i64 = conn.query_row(&format!("SELECT count(*) FROM {counted}"), [], |r| r.get(0))?;
            u64::try_from(groups).unwrap_or(0).saturating_mul(4) > finite
        }
    };
    if direct {
        let _one_at_a_time = holistic.map(|lock| lock.lock().unwrap_or_else(PoisonError::into_inner));
        match quartiles_direct(conn, source, col) {
            Ok(quartiles) => return Ok(quartiles),
            Err(e) if format!("{e:#}").contains("Out of Memory") => {}
            Err(e) => return Err(e).context("computing quartiles"),
        }
    }
    quartiles_by_rank(conn, col, counted, finite).context("computing quartiles by rank")
}

/// `quantile_cont` over the column: the definition itself.
fn quartiles_direct(conn: &Connection, source: &str, col: &Col) -> anyhow::Result<[Option<f64>; 3]> {
    let Some(number) = col.number() else { return Ok([None; 3]) };
    let mut select = Select::default();
    // The three quantiles are one aggregate: DuckDB binds identical aggregates once.
    let slots = [1, 2, 3].map(|n| select.float(format!("quantile_cont(d, [0.25, 0.5, 0.75])[{n}]")));
    let cells = select.run(conn, &format!("(SELECT {number} AS d FROM {source}) AS src"))?;
    Ok(slots.map(|slot| cells.float(slot)))
}

/// Where `quantile_cont` reads quantile `q` of `count` sorted values `s₀ ≤ … ≤ s_(count−1)`:
/// at position `RN = (count − 1)·q` (in double precision), between the 0-based ranks
/// `⌊RN⌋` and `⌈RN⌉`.
struct Ranks {
    position: f64,
    lo: u64,
    hi: u64,
}

impl Ranks {
    fn new(count: u64, q: f64) -> Ranks {
        let position = (count - 1) as f64 * q;
        Ranks { position, lo: position.floor() as u64, hi: position.ceil() as u64 }
    }

    /// DuckDB's interpolation for DOUBLE: `s_lo` when the position is a rank, else
    /// `s_lo·(1 − d) + s_hi·d` with `d = RN − ⌊RN⌋` (written exactly so, for the same rounding).
    fn interpolate(&self, lo: f64, hi: f64) -> f64 {
        if self.lo == self.hi {
            lo
        } else {
            let d = self.position - self.lo as f64;
            lo * (1.0 - d) + hi * d
        }
    }
}

/// The quartiles from the distinct values: a running sum of the counts in value order gives
/// each distinct value's range of ranks `[c − n, c)`; only the rows holding the (at most six)
/// ranks the quartiles need are returned, and interpolated as `quantile_cont` does.
fn quartiles_by_rank(
    conn: &Connection,
    col: &Col,
    counted: &str,
    finite: u64,
) -> anyhow::Result<[Option<f64>; 3]> {
    let Some(d) = col.number_of("v") else { return Ok([None; 3]) };
    let ranks = QUARTILES.map(|q| Ranks::new(finite, q));
    let wanted: BTreeSet<u64> = ranks.iter().flat_map(|r| [r.lo, r.hi]).collect();
    let condition =
        wanted.iter().map(|r| format!("(c - n <= {r} AND {r} < c)")).collect::<Vec<_>>().join(" OR ");
    let sql = format!(
        "SELECT CAST(c - n AS BIGINT), CAST(c AS BIGINT), d FROM \
         (SELECT d, n, sum(n) OVER (ORDER BY d ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS c \
          FROM (SELECT {d} AS d, n FROM {counted}) WHERE d IS NOT NULL) \
         WHERE {condition}"
    );
    let mut statement = conn.prepare(&sql)?;
    let mut result = statement.query([])?;
    let mut spans: Vec<(u64, u64, f64)> = Vec::new();
    while let Some(row) = result.next()? {
        let (start, end): (i64, i64) = (row.get(0)?, row.get(1)?);
        spans.push((u64::try_from(start)?, u64::try_from(end)?, row.get(2)?));
    }
    let at = |rank: u64| spans.iter().find(|(start, end, _)| *start <= rank && rank < *end).map(|s| s.2);
    Ok(ranks.map(|r| Some(r.interpolate(at(r.lo)?, at(r.hi)?)).filter(|q| q.is_finite())))
}

// ---------------------------------------------------------------------------------------------
// Step 4: duplicates

/// The number of distinct rows: `SELECT DISTINCT *`, which hashes and compares whole rows —
/// unless the most varied column (`widest` distinct values) leaves at most a quarter of the
/// rows to repeat others. Then few rows can be involved (every copy and its original: at most
/// twice the `rows − widest` copies), and only they are compared: the rows whose hash of the
/// whole row occurs more than once. A row whose hash is unique is unlike every other row.
fn distinct_rows(
    scratch: &mut Scratch,
    source: &str,
    cols: &[Col],
    rows: u64,
    widest: u64,
) -> anyhow::Result<u64> {
    let conn = scratch.conn;
    let count = |sql: &str| -> anyhow::Result<u64> {
        let n: i64 = conn.query_row(sql, [], |r| r.get(0)).context("counting distinct rows")?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    if u128::from(widest) * 4 < u128::from(rows) * 3 {
        return count(&format!("SELECT CAST(count(*) AS BIGINT) FROM (SELECT DISTINCT * FROM {source})"));
    }
    let row_hash = format!("hash({})", cols.iter().map(|c| c.quoted.as_str()).collect::<Vec<_>>().join(", "));
    let repeated = scratch
        .create(
            "repeated_rows",
            &format!(
                "SELECT h, count(*) AS c FROM (SELECT {row_hash} AS h FROM {source}) GROUP BY h HAVING count(*) > 1"
            ),
        )
        .context("hashing rows")?;
    let candidates = count(&format!("SELECT CAST(coalesce(sum(c), 0) AS BIGINT) FROM {repeated}"))?;
    let distinct = if candidates == 0 {
        rows
    } else {
        rows - candidates
            + count(&format!(
                "SELECT CAST(count(*) AS BIGINT) FROM \
                 (SELECT DISTINCT * FROM {source} WHERE {row_hash} IN (SELECT h FROM {repeated}))"
            ))?
    };
    scratch.release()?;
    Ok(distinct)
}

// ---------------------------------------------------------------------------------------------
// Assembly: column profiles, quality, alerts

fn column_profile(col: &Col, stats: Stats, semantic: &str, details: Details, rows: u64) -> ColumnProfile {
    let null_count = rows.saturating_sub(stats.non_null);
    ColumnProfile {
        name: col.info.name.clone(),
        data_type: col.info.data_type.clone(),
        semantic_type: semantic.into(),
        null_count,
        null_percent: percent(null_count, rows),
        distinct_count: stats.distinct,
        unique_percent: percent(stats.distinct, stats.non_null),
        min: stats.min,
        max: stats.max,
        mean: stats.mean,
        stddev: stats.stddev,
        median: stats.median,
        q25: stats.q25,
        q75: stats.q75,
        skewness: stats.skewness,
        kurtosis: stats.kurtosis,
        zeros: stats.zeros,
        negatives: stats.negatives,
        min_length: stats.min_length,
        max_length: stats.max_length,
        mean_length: stats.mean_length,
        outlier_count: details.outliers,
        invalid_count: details.invalid,
        untrimmed_count: stats.untrimmed,
        top_values: details.top_values,
        histogram: details.histogram,
        pii: pii(col, semantic),
    }
}

/// Shown values classified per statement of [`personal_by_shown_values`].
const SHOWN_PER_STATEMENT: usize = 500;

/// Marks (`pii`) the columns whose header and semantic type say nothing, but at least half of
/// whose values the profile shows (top values, min, max) are personal data recognisable on the
/// value alone ([`super::pii::classify_sql`]: a card number passing the Luhn check, an IBAN
/// passing mod-97, an SSN written with its dashes…): an `acct` column of IBANs. The report
/// would otherwise show them unmasked when no risk scorer ran. A few values, one statement: a
/// sixteen-digit identifier passes the Luhn check one time in ten, hence the half.
fn personal_by_shown_values(
    conn: &Connection,
    cols: &[Col],
    profiles: &mut [ColumnProfile],
) -> anyhow::Result<()> {
    let mut shown: Vec<(i32, String)> = Vec::new();
    for (col, profile) in cols.iter().zip(profiles.iter()) {
        if profile.pii.is_some() || !matches!(col.kind, Kind::Text | Kind::Integer) {
            continue;
        }
        let values: BTreeSet<&str> =
            profile.shown_values().filter(|v| !v.is_empty() && v.len() <= 256).collect();
        shown.extend(values.into_iter().map(|v| (col.index as i32, v.to_string())));
    }
    let mut found: HashMap<usize, HashMap<String, usize>> = HashMap::new();
    let classify = super::pii::classify_sql("t");
    for chunk in shown.chunks(SHOWN_PER_STATEMENT) {
        let rows = vec!["(CAST(? AS INTEGER), CAST(? AS VARCHAR))"; chunk.len()].join(", ");
        let sql = format!("SELECT i, {classify} AS k FROM (VALUES {rows}) v(i, t)");
        let params: Vec<duckdb::types::Value> = chunk
            .iter()
            .flat_map(|(i, t)| [duckdb::types::Value::Int(*i), duckdb::types::Value::Text(t.clone())])
            .collect();
        let mut statement = conn.prepare(&sql)?;
        let mut result = statement.query(duckdb::params_from_iter(params))?;
        while let Some(row) = result.next()? {
            let index: i32 = row.get(0)?;
            let kind: Option<String> = row.get(1)?;
            *found.entry(index as usize).or_default().entry(kind.unwrap_or_default()).or_default() += 1;
        }
    }
    for (index, kinds) in found {
        let total: usize = kinds.values().sum();
        let best =
            kinds.iter().filter(|(k, _)| !k.is_empty()).max_by_key(|(k, n)| (**n, std::cmp::Reverse(*k)));
        if let Some((kind, &n)) = best
            && n * 2 >= total
        {
            let hint = match kind.as_str() {
                "credit_card" => "payment_card",
                "ssn" => "national_id",
                "person_name" => "name",
                other => other,
            };
            profiles[index].pii = Some(hint.to_string());
        }
    }
    Ok(())
}

/// `part / whole × 100`, 0 when `whole` is 0.
fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 / whole as f64 * 100.0 }
}

/// `100 · (1 − bad / total)`, 100 when there is nothing to judge.
fn share_good(bad: u64, total: u64) -> f64 {
    if total == 0 { 100.0 } else { 100.0 * (1.0 - bad as f64 / total as f64) }
}

fn quality(cols: &[Col], profiles: &[ColumnProfile], rows: u64, duplicates: u64) -> Quality {
    let cells = rows * cols.len() as u64;
    let null_cells: u64 = profiles.iter().map(|p| p.null_count).sum();
    let invalid: u64 = profiles.iter().map(|p| p.invalid_count).sum();
    let (text_values, untrimmed) = cols
        .iter()
        .zip(profiles)
        .filter(|(c, _)| c.kind == Kind::Text)
        .fold((0, 0), |(values, untrimmed), (_, p)| {
            (values + (rows - p.null_count), untrimmed + p.untrimmed_count)
        });
    let completeness = share_good(null_cells, cells);
    let validity = share_good(invalid, cells - null_cells);
    let uniqueness = share_good(duplicates, rows);
    let consistency = share_good(untrimmed, text_values);
    let score =
        ((0.4 * completeness + 0.3 * validity + 0.2 * uniqueness + 0.1 * consistency) * 10.0).round() / 10.0;
    let grade = match score {
        s if s >= 90.0 => "A",
        s if s >= 80.0 => "B",
        s if s >= 70.0 => "C",
        s if s >= 60.0 => "D",
        _ => "F",
    };
    Quality { score, grade: grade.into(), completeness, validity, uniqueness, consistency }
}

fn column_alerts(
    p: &ColumnProfile,
    mixed: Option<(&str, f64)>,
    rows: u64,
    params: &ProfileParams,
    alerts: &mut Vec<Finding>,
) {
    let mut alert = |code: &str, severity: &str, message: String| {
        alerts.push(Finding {
            code: code.into(),
            severity: severity.into(),
            column: Some(p.name.clone()),
            message,
        })
    };
    let non_null = rows - p.null_count;
    if rows > 0 && non_null == 0 {
        alert("ALL_NULL", "critical", format!("all {rows} values are null"));
    } else if p.null_percent > params.null_alert_threshold {
        let severity = if p.null_percent > CRITICAL_NULL_PERCENT { "critical" } else { "warning" };
        alert(
            "HIGH_NULLS",
            severity,
            format!(
                "{:.1}% of values are null ({} of {rows} rows; threshold {}%)",
                p.null_percent, p.null_count, params.null_alert_threshold
            ),
        );
    }
    if p.distinct_count == 1 && rows > 1 {
        let value =
            p.top_values.iter().find_map(|v| v.value.clone()).or_else(|| p.min.clone()).unwrap_or_default();
        // The value of a column of personal data is not repeated in a message.
        let message = match &p.pii {
            None => format!("every non-null value ({non_null} of {rows}) is {value:?}"),
            Some(_) => format!("every non-null value ({non_null} of {rows}) is the same"),
        };
        alert("CONSTANT_COLUMN", "warning", message);
    }
    if p.semantic_type == "text"
        && p.unique_percent >= HIGH_CARDINALITY_PERCENT
        && p.distinct_count > params.categorical_threshold
    {
        alert(
            "HIGH_CARDINALITY",
            "info",
            format!(
                "{} distinct values in {non_null} non-null values ({:.1}% unique): free text or an unrecognised identifier",
                p.distinct_count, p.unique_percent
            ),
        );
    }
    if let Some(skewness) = p.skewness.filter(|s| s.abs() > params.skewness_alert_threshold) {
        alert(
            "SKEWED",
            "info",
            format!("skewness is {skewness:.2} (|skewness| above {})", params.skewness_alert_threshold),
        );
    }
    if let (Some(outliers), Some(q25), Some(q75)) = (p.outlier_count, p.q25, p.q75) {
        let share = percent(outliers, non_null);
        if share > params.outlier_alert_threshold {
            let k = params.outlier_iqr_multiplier;
            let iqr = q75 - q25;
            // Six decimals at most: 207.395, not 207.39499999999998.
            let short = |x: f64| format!("{}", (x * 1e6).round() / 1e6);
            alert(
                "OUTLIERS",
                "warning",
                format!(
                    "{outliers} of {non_null} values ({share:.1}%) lie outside the IQR fences [{}, {}] (k = {k}; threshold {}%)",
                    short(q25 - k * iqr),
                    short(q75 + k * iqr),
                    params.outlier_alert_threshold
                ),
            );
        }
    }
    if let Some((kind, share)) = mixed {
        alert(
            "MIXED_TYPES",
            "warning",
            format!(
                "{:.1}% of the sampled values are {kind} and the others are not: the column mixes types",
                share * 100.0
            ),
        );
    }
    if let Some(kind) = &p.pii {
        alert("LIKELY_PII", "warning", format!("the column likely holds personal data ({kind})"));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::path::{Path, PathBuf};

    use duckdb::{Connection, params};

    use super::*;

    /// Writes `select` to `<dir>/<name>` as Parquet and describes it like ingest does.
    fn fixture(conn: &Connection, dir: &Path, name: &str, select: &str) -> (PathBuf, Vec<ColumnInfo>) {
        let path = dir.join(name);
        let columns = super::super::parquet_fixture(conn, &path, select);
        (path, columns)
    }

    fn describe(conn: &Connection, path: &Path) -> Vec<ColumnInfo> {
        let mut statement = conn.prepare(&format!("DESCRIBE SELECT * FROM {}", reader(path))).unwrap();
        statement
            .query_map([], |r| Ok(ColumnInfo { name: r.get(0)?, data_type: r.get(1)? }))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// Profiles with a helper connection, as a job does, checking that progress only goes
    /// forward and ends at 100, and that the profile serialises (no NaN or infinity anywhere).
    fn run(conn: &Connection, path: &Path, columns: &[ColumnInfo], params: &ProfileParams) -> Profile {
        let mut seen: Vec<(f64, String)> = Vec::new();
        let mut helper = conn.try_clone().unwrap();
        let profile = profile(conn, Some(&mut helper), path, columns, params, &mut |percent, stage| {
            seen.push((percent, stage.to_string()));
        })
        .unwrap();
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "progress went backwards: {seen:?}");
        assert!(seen.iter().all(|(p, _)| (0.0..=100.0).contains(p)), "{seen:?}");
        assert_eq!(seen.last().map(|(p, s)| (*p, s.as_str())), Some((100.0, "scoring")));
        serde_json::to_string(&profile).expect("the profile serialises");
        profile
    }

    fn column<'a>(profile: &'a Profile, name: &str) -> &'a ColumnProfile {
        profile.columns.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no column {name}"))
    }

    #[track_caller]
    fn close(actual: Option<f64>, expected: f64, what: &str) {
        let actual = actual.unwrap_or_else(|| panic!("{what}: None, expected {expected}"));
        let tolerance = 1e-9 * expected.abs().max(actual.abs()).max(1e-300);
        assert!((actual - expected).abs() <= tolerance, "{what}: {actual} != {expected}");
    }

    fn alert<'a>(profile: &'a Profile, code: &str, column: Option<&str>) -> Option<&'a Finding> {
        profile.alerts.iter().find(|a| a.code == code && a.column.as_deref() == column)
    }

    fn values(top: &[ValueCount]) -> Vec<(Option<&str>, u64)> {
        top.iter().map(|v| (v.value.as_deref(), v.count)).collect()
    }

    fn bins(histogram: &[HistogramBin]) -> Vec<(f64, f64, u64)> {
        histogram.iter().map(|b| (b.lower, b.upper, b.count)).collect()
    }

    /// 11 rows; row 11 is an exact copy of row 10.
    const HAND: &str = "
        SELECT id::BIGINT AS id, amount::DOUBLE AS amount, email::VARCHAR AS email, joined::DATE AS joined,
               delta::INTEGER AS delta, status::VARCHAR AS status, notes::VARCHAR AS notes
        FROM (VALUES
            (1, 1.0, 'a@x.com', '2024-01-01', 0, 'active', NULL),
            (2, 2.0, 'b@x.com', '2024-01-02', -1, 'active', NULL),
            (3, 3.0, 'c@x.com', '2024-01-03', 0, 'active', NULL),
            (4, 4.0, 'd@x.com', '2024-01-04', 5, 'active', NULL),
            (5, 100.0, 'e@x.com', '2024-01-05', -3, 'active', NULL),
            (6, NULL, 'f@x.com', '2024-01-06', 0, 'active', NULL),
            (7, NULL, 'g@x.com', '2024-01-07', 2, 'active', NULL),
            (8, NULL, 'h@x.com ', '2024-01-08', 0, 'active', NULL),
            (9, NULL, 'not-an-email', '2024-01-09', 7, 'active', NULL),
            (10, NULL, 'j@x.com', '2024-01-10', 1, 'active', NULL),
            (10, NULL, 'j@x.com', '2024-01-10', 1, 'active', NULL)
        ) AS t(id, amount, email, joined, delta, status, notes)";

    #[test]
    fn personal_values_the_profile_shows_mark_their_column() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "shown.parquet",
            "SELECT acct, CAST(4000000000000001 + i AS BIGINT) AS order_id, ref FROM (VALUES \
             (0, 'GB82WEST12345698765432', 'A-1'), (1, 'DE89370400440532013000', 'A-2'), \
             (2, 'NL91ABNA0417164300', '4111111111111111'), (3, 'BE68539007547034', 'A-4'), \
             (4, 'CH9300762011623852957', 'A-5'), (5, 'ES9121000418450200051332', 'A-6'), \
             (6, 'GB82WEST12345698765432', 'A-7'), (7, 'DE89370400440532013000', 'A-8'), \
             (8, 'NL91ABNA0417164300', 'A-9'), (9, 'BE68539007547034', 'A-10')) t(i, acct, ref)",
        );
        let p = run(&conn, &path, &columns, &ProfileParams::default());
        // Every value shown of `acct` is an IBAN passing mod-97: the header says nothing.
        assert_eq!(column(&p, "acct").pii.as_deref(), Some("iban"));
        assert!(alert(&p, "LIKELY_PII", Some("acct")).is_some());
        // Two of the ten sixteen-digit ids pass the Luhn check, one value of `ref` is a card
        // number: neither is a column of personal data.
        assert_eq!(column(&p, "order_id").pii, None);
        assert_eq!(column(&p, "ref").pii, None);
    }

    #[test]
    fn hand_computed_fixture() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let (path, columns) = fixture(&conn, dir.path(), "hand.parquet", HAND);
        let params = ProfileParams { top_n_values: 3, histogram_bins: 3, ..ProfileParams::default() };
        let p = run(&conn, &path, &columns, &params);

        assert_eq!(p.row_count, 11);
        assert_eq!(p.column_count, 7);
        assert_eq!(p.duplicate_row_count, 1);

        // amount = 1, 2, 3, 4, 100 and 6 nulls.
        let amount = column(&p, "amount");
        assert_eq!(amount.data_type, "DOUBLE");
        assert_eq!(amount.semantic_type, "float");
        assert_eq!(amount.null_count, 6);
        close(Some(amount.null_percent), 600.0 / 11.0, "null %"); // 6 / 11 · 100 = 54.54…
        assert_eq!(amount.distinct_count, 5);
        close(Some(amount.unique_percent), 100.0, "unique %"); // 5 distinct / 5 non-null
        assert_eq!((amount.min.as_deref(), amount.max.as_deref()), (Some("1.0"), Some("100.0")));
        // mean = 110 / 5 = 22
        close(amount.mean, 22.0, "mean");
        // deviations −21, −20, −19, −18, 78; squares 441 + 400 + 361 + 324 + 6084 = 7610;
        // sample variance 7610 / 4 = 1902.5
        close(amount.stddev, 1902.5f64.sqrt(), "stddev");
        // sorted 1 2 3 4 100: position (n − 1)·q = 1, 2, 3 — exact ranks, no interpolation
        close(amount.q25, 2.0, "q25");
        close(amount.median, 3.0, "median");
        close(amount.q75, 4.0, "q75");
        // population moments: m2 = 7610 / 5 = 1522;
        // m3 = (−9261 − 8000 − 6859 − 5832 + 474552) / 5 = 444600 / 5 = 88920;
        // g1 = m3 / m2^1.5; G1 = g1 · √(n(n−1)) / (n−2) = g1 · √20 / 3 ≈ 2.2324
        close(amount.skewness, 88920.0 / 1522f64.powf(1.5) * 20f64.sqrt() / 3.0, "skewness");
        // m4 = (194481 + 160000 + 130321 + 104976 + 37015056) / 5 = 37604834 / 5 = 7520966.8;
        // G2 = (n−1)·((n+1)·m4/m2² − 3(n−1)) / ((n−2)(n−3)) = 4·(6·m4/m2² − 12) / 6 ≈ 4.9869
        let ratio = 7520966.8 / (1522.0 * 1522.0);
        close(amount.kurtosis, 4.0 * (6.0 * ratio - 12.0) / 6.0, "kurtosis");
        assert_eq!((amount.zeros, amount.negatives), (Some(0), Some(0)));
        assert_eq!((amount.min_length, amount.max_length, amount.mean_length), (None, None, None));
        // IQR = 4 − 2 = 2; fences 2 − 1.5·2 = −1 and 4 + 1.5·2 = 7: only 100 is outside
        assert_eq!(amount.outlier_count, Some(1));
        // width (100 − 1) / 3 = 33: [1, 34) holds 1 2 3 4, [34, 67) nothing, [67, 100] holds 100
        assert_eq!(bins(&amount.histogram), vec![(1.0, 34.0, 4), (34.0, 67.0, 0), (67.0, 100.0, 1)]);
        // null is the most frequent value (6), then ties by value: 1.0, 2.0
        assert_eq!(values(&amount.top_values), vec![(None, 6), (Some("1.0"), 1), (Some("2.0"), 1)]);
        assert_eq!((amount.invalid_count, amount.untrimmed_count, amount.pii.as_deref()), (0, 0, None));

        // id = 1..10 and 10 again: sorted positions (11 − 1)·q = 2.5, 5, 7.5
        let id = column(&p, "id");
        assert_eq!(id.semantic_type, "integer");
        assert_eq!((id.null_count, id.distinct_count), (0, 10));
        close(id.mean, 65.0 / 11.0, "id mean"); // (55 + 10) / 11
        close(id.q25, 3.5, "id q25"); // 3 + 0.5·(4 − 3)
        close(id.median, 6.0, "id median");
        close(id.q75, 8.5, "id q75"); // 8 + 0.5·(9 − 8)
        assert_eq!(id.outlier_count, Some(0));
        assert_eq!(values(&id.top_values), vec![(Some("10"), 2), (Some("1"), 1), (Some("2"), 1)]);

        // email: 10 of 11 values are e-mail addresses (the padded one counts: whitespace is a
        // consistency problem, not a validity one), 10/11 ≥ 90%.
        let email = column(&p, "email");
        assert_eq!(email.semantic_type, "email");
        assert_eq!((email.null_count, email.distinct_count), (0, 10));
        close(Some(email.unique_percent), 1000.0 / 11.0, "email unique %");
        assert_eq!(email.invalid_count, 1); // not-an-email
        assert_eq!(email.untrimmed_count, 1); // "h@x.com "
        // lengths: 9 × 7 (a…g, j, j) + 8 ("h@x.com ") + 12 ("not-an-email") = 83
        assert_eq!((email.min_length, email.max_length), (Some(7), Some(12)));
        close(email.mean_length, 83.0 / 11.0, "mean length");
        assert_eq!((email.min.as_deref(), email.max.as_deref()), (Some("a@x.com"), Some("not-an-email")));
        assert_eq!(
            values(&email.top_values),
            vec![(Some("j@x.com"), 2), (Some("a@x.com"), 1), (Some("b@x.com"), 1)]
        );
        assert_eq!(email.pii.as_deref(), Some("email"));
        assert_eq!((email.mean, email.zeros, email.outlier_count), (None, None, None));
        assert!(email.histogram.is_empty());

        // joined: 2024-01-01 … 2024-01-10 (+ 01-10 again); epoch 1704067200 … 1704844800;
        // width 9 days / 3 = 259200 s: days 0–2, 3–5, 6–9 (+ the copy) → 3, 3, 5
        let joined = column(&p, "joined");
        assert_eq!(joined.semantic_type, "date");
        assert_eq!((joined.min.as_deref(), joined.max.as_deref()), (Some("2024-01-01"), Some("2024-01-10")));
        assert_eq!(
            bins(&joined.histogram),
            vec![
                (1704067200.0, 1704326400.0, 3),
                (1704326400.0, 1704585600.0, 3),
                (1704585600.0, 1704844800.0, 5)
            ]
        );
        assert_eq!((joined.mean, joined.invalid_count), (None, 0));

        // delta = 0 −1 0 5 −3 0 2 0 7 1 1
        let delta = column(&p, "delta");
        assert_eq!((delta.zeros, delta.negatives), (Some(4), Some(2)));

        let status = column(&p, "status");
        assert_eq!((status.semantic_type.as_str(), status.distinct_count), ("category", 1));
        assert_eq!(values(&status.top_values), vec![(Some("active"), 11)]);

        let notes = column(&p, "notes");
        assert_eq!((notes.semantic_type.as_str(), notes.null_count, notes.distinct_count), ("empty", 11, 0));
        assert_eq!((notes.min.as_deref(), notes.min_length, notes.mean_length), (None, None, None));
        assert_eq!(values(&notes.top_values), vec![(None, 11)]);

        // Quality: 77 cells, 17 null (amount 6, notes 11) → 60/77; 1 invalid of 60 non-null;
        // 1 duplicate of 11 rows; 1 untrimmed of 22 non-null text values (email 11, status 11).
        let q = &p.quality;
        close(Some(q.completeness), 6000.0 / 77.0, "completeness"); // 77.92
        close(Some(q.validity), 5900.0 / 60.0, "validity"); // 98.33
        close(Some(q.uniqueness), 1000.0 / 11.0, "uniqueness"); // 90.91
        close(Some(q.consistency), 2100.0 / 22.0, "consistency"); // 95.45
        // 0.4·77.922 + 0.3·98.333 + 0.2·90.909 + 0.1·95.455 = 88.396 → 88.4 → B
        assert_eq!((q.score, q.grade.as_str()), (88.4, "B"));

        // id and amount are both non-null in rows 1–5: x − 3 = −2 −1 0 1 2, y − 22 = −21 −20 −19
        // −18 78; Σ dx·dy = 42 + 20 + 0 − 18 + 156 = 200; Σ dx² = 10; Σ dy² = 7610
        let r = p.correlations.iter().find(|c| c.a == "id" && c.b == "amount").unwrap();
        assert_eq!(r.method, "pearson");
        close(Some(r.value), 200.0 / (10.0f64 * 7610.0).sqrt(), "pearson");
        assert_eq!(p.correlations.len(), 3); // id–amount, id–delta, amount–delta

        let duplicate = alert(&p, "DUPLICATE_ROWS", None).expect("DUPLICATE_ROWS");
        assert!(duplicate.message.contains("1 of 11"), "{duplicate:?}");
        let nulls = alert(&p, "HIGH_NULLS", Some("amount")).expect("HIGH_NULLS");
        assert_eq!(nulls.severity, "critical"); // 54.5% > 50%
        assert!(nulls.message.contains("54.5%"), "{nulls:?}");
        assert!(alert(&p, "SKEWED", Some("amount")).is_some());
        let outliers = alert(&p, "OUTLIERS", Some("amount")).expect("OUTLIERS"); // 1/5 = 20% > 5%
        assert!(outliers.message.contains("20.0%"), "{outliers:?}");
        assert!(alert(&p, "LIKELY_PII", Some("email")).is_some());
        assert!(alert(&p, "CONSTANT_COLUMN", Some("status")).is_some());
        assert_eq!(alert(&p, "ALL_NULL", Some("notes")).map(|a| a.severity.as_str()), Some("critical"));
        assert!(alert(&p, "HIGH_NULLS", Some("notes")).is_none(), "ALL_NULL replaces HIGH_NULLS");
        assert!(p.alerts.iter().all(|a| a.column.as_deref() != Some("id")), "{:?}", p.alerts);
        assert!(alert(&p, "HIGH_CARDINALITY", Some("email")).is_none());
    }

    /// A deterministic generator (Knuth's MMIX LCG), uniform in [0, 1).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Independent definitions, in plain Rust.
    mod reference {
        pub fn mean(x: &[f64]) -> f64 {
            x.iter().sum::<f64>() / x.len() as f64
        }

        /// Central moment Σ(x − mean)^k / n.
        pub fn moment(x: &[f64], k: i32) -> f64 {
            let m = mean(x);
            x.iter().map(|v| (v - m).powi(k)).sum::<f64>() / x.len() as f64
        }

        pub fn stddev(x: &[f64]) -> f64 {
            let n = x.len() as f64;
            (moment(x, 2) * n / (n - 1.0)).sqrt()
        }

        /// Linear interpolation between closest ranks, position (n − 1)·q.
        pub fn quantile(x: &[f64], q: f64) -> f64 {
            let mut s = x.to_vec();
            s.sort_by(f64::total_cmp);
            let position = (s.len() - 1) as f64 * q;
            let (lo, hi) = (position.floor() as usize, position.ceil() as usize);
            s[lo] + (position - lo as f64) * (s[hi] - s[lo])
        }

        /// Adjusted Fisher–Pearson G1 = √(n(n−1))/(n−2) · m3/m2^1.5.
        pub fn skewness(x: &[f64]) -> f64 {
            let n = x.len() as f64;
            (n * (n - 1.0)).sqrt() / (n - 2.0) * moment(x, 3) / moment(x, 2).powf(1.5)
        }

        /// Excess kurtosis G2 (pandas, Excel KURT) = ((n+1)·g2 + 6)·(n−1)/((n−2)(n−3)), g2 = m4/m2² − 3.
        pub fn kurtosis(x: &[f64]) -> f64 {
            let n = x.len() as f64;
            let g2 = moment(x, 4) / moment(x, 2).powi(2) - 3.0;
            ((n + 1.0) * g2 + 6.0) * (n - 1.0) / ((n - 2.0) * (n - 3.0))
        }

        pub fn pearson(pairs: &[(f64, f64)]) -> f64 {
            let xs: Vec<f64> = pairs.iter().map(|p| p.0).collect();
            let ys: Vec<f64> = pairs.iter().map(|p| p.1).collect();
            let (mx, my) = (mean(&xs), mean(&ys));
            let sxy: f64 = pairs.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
            let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
            let syy: f64 = ys.iter().map(|y| (y - my).powi(2)).sum();
            sxy / (sxx * syy).sqrt()
        }
    }

    #[test]
    fn generated_fixture_matches_an_independent_implementation() {
        const ROWS: usize = 20_000;
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x DOUBLE, y DOUBLE, z BIGINT)").unwrap();
        let mut rng = Lcg(42);
        let mut rows = Vec::with_capacity(ROWS);
        for i in 0..ROWS {
            let (u1, u2, u3) = (rng.next(), rng.next(), rng.next());
            // x: exponential (skewed), mean ≈ 15, with a null every 97th row
            let x = (i % 97 != 0).then(|| 5.0 - 10.0 * (1.0 - u1).ln());
            // y: correlated with x where x exists
            let y = 0.5 * x.unwrap_or(10.0) + 3.0 * u2;
            // z: integers −200 … 799, many repeats
            let z = (u3 * 1000.0) as i64 - 200;
            rows.push((x, y, z));
        }
        {
            let mut appender = conn.appender("t").unwrap();
            for (x, y, z) in &rows {
                appender.append_row(params![x, y, z]).unwrap();
            }
        }
        let (path, columns) = fixture(&conn, dir.path(), "generated.parquet", "SELECT * FROM t");
        let params = ProfileParams { histogram_bins: 16, top_n_values: 7, ..ProfileParams::default() };
        let p = run(&conn, &path, &columns, &params);
        assert_eq!(p.row_count, ROWS as u64);

        let xs: Vec<f64> = rows.iter().filter_map(|r| r.0).collect();
        let ys: Vec<f64> = rows.iter().map(|r| r.1).collect();
        let zs: Vec<f64> = rows.iter().map(|r| r.2 as f64).collect();
        for (name, values) in [("x", &xs), ("y", &ys), ("z", &zs)] {
            let c = column(&p, name);
            assert_eq!(c.null_count, (ROWS - values.len()) as u64, "{name}");
            let distinct: HashSet<u64> = values.iter().map(|v| v.to_bits()).collect();
            assert_eq!(c.distinct_count, distinct.len() as u64, "{name} distinct");
            close(c.mean, reference::mean(values), &format!("{name} mean"));
            close(c.stddev, reference::stddev(values), &format!("{name} stddev"));
            close(c.q25, reference::quantile(values, 0.25), &format!("{name} q25"));
            close(c.median, reference::quantile(values, 0.5), &format!("{name} median"));
            close(c.q75, reference::quantile(values, 0.75), &format!("{name} q75"));
            close(c.skewness, reference::skewness(values), &format!("{name} skewness"));
            close(c.kurtosis, reference::kurtosis(values), &format!("{name} kurtosis"));

            // Histogram: the same arithmetic as documented, bin by bin.
            let (lo, hi) = values.iter().fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
            let width = (hi - lo) / 16.0;
            let mut counts = [0u64; 16];
            for v in values.iter() {
                counts[(((v - lo) / width).floor() as usize).min(15)] += 1;
            }
            assert_eq!(c.histogram.iter().map(|b| b.count).collect::<Vec<_>>(), counts, "{name} histogram");
            assert_eq!((c.histogram[0].lower, c.histogram[15].upper), (lo, hi));

            // Outliers with k = 1.5.
            let (q25, q75) = (reference::quantile(values, 0.25), reference::quantile(values, 0.75));
            let (low, high) = (q25 - 1.5 * (q75 - q25), q75 + 1.5 * (q75 - q25));
            let outliers = values.iter().filter(|v| **v < low || **v > high).count() as u64;
            assert_eq!(c.outlier_count, Some(outliers), "{name} outliers");
        }
        let x = column(&p, "x");
        assert!(x.skewness.unwrap() > 1.5, "an exponential is skewed: {:?}", x.skewness);
        assert!(alert(&p, "SKEWED", Some("x")).is_some());

        let z = column(&p, "z");
        assert_eq!(z.zeros, Some(zs.iter().filter(|v| **v == 0.0).count() as u64));
        assert_eq!(z.negatives, Some(zs.iter().filter(|v| **v < 0.0).count() as u64));
        let mut frequency: HashMap<i64, u64> = HashMap::new();
        for (_, _, v) in &rows {
            *frequency.entry(*v).or_default() += 1;
        }
        let mut expected: Vec<(i64, u64)> = frequency.into_iter().collect();
        expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let expected: Vec<(Option<String>, u64)> =
            expected.iter().take(7).map(|(v, n)| (Some(v.to_string()), *n)).collect();
        let actual: Vec<(Option<String>, u64)> =
            z.top_values.iter().map(|v| (v.value.clone(), v.count)).collect();
        assert_eq!(actual, expected);

        let pairs = |a: usize, b: usize| -> Vec<(f64, f64)> {
            rows.iter()
                .filter_map(|r| {
                    let v = [r.0, Some(r.1), Some(r.2 as f64)];
                    Some((v[a]?, v[b]?))
                })
                .collect()
        };
        for (a, b, ia, ib) in [("x", "y", 0, 1), ("x", "z", 0, 2), ("y", "z", 1, 2)] {
            let r = p.correlations.iter().find(|c| c.a == a && c.b == b).unwrap();
            close(Some(r.value), reference::pearson(&pairs(ia, ib)), &format!("corr({a}, {b})"));
        }
        let xy = p.correlations.iter().find(|c| c.a == "x" && c.b == "y").unwrap();
        assert!(xy.value > 0.9, "{xy:?}");
    }

    #[test]
    fn dates_beyond_timestamps_and_infinite_ones_are_profiled() {
        // Year 300000 is a DATE but beyond TIMESTAMP's range; infinite dates have no place on
        // a histogram. Each value's bin comes from its days since 1970.
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "dates.parquet",
            "SELECT * FROM (VALUES (DATE '2024-01-01'), (DATE '300000-01-01'), ('infinity'::DATE), \
             ('-infinity'::DATE), (DATE '2024-01-02'), (NULL)) t(d)",
        );
        let params = ProfileParams { histogram_bins: 2, ..ProfileParams::default() };
        let p = run(&conn, &path, &columns, &params);
        let d = column(&p, "d");
        assert_eq!((d.null_count, d.distinct_count), (1, 5));
        let day = |iso: &str| {
            let date = chrono::NaiveDate::parse_from_str(iso, "%Y-%m-%d").unwrap();
            (date - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as f64 * 86400.0
        };
        // 300000-01-01: 298,030 years after 1970, of 365.2425 days on average.
        let far = 298_030.0 * 365.2425 * 86400.0;
        let counts: Vec<u64> = d.histogram.iter().map(|b| b.count).collect();
        assert_eq!(counts, [2, 1], "{:?}", d.histogram);
        assert_eq!(d.histogram[0].lower, day("2024-01-01"));
        assert!((d.histogram[1].upper - far).abs() < 2.0 * 86400.0, "{:?}", d.histogram);

        // One date beside infinite ones: its one bin holds the two finite dates only.
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "one-date.parquet",
            "SELECT * FROM (VALUES (DATE '2024-01-01'), ('infinity'::DATE), (DATE '2024-01-01'),              ('-infinity'::DATE), (NULL)) t(d)",
        );
        let p = run(&conn, &path, &columns, &params);
        let d = column(&p, "d");
        let bins: Vec<(f64, f64, u64)> = d.histogram.iter().map(|b| (b.lower, b.upper, b.count)).collect();
        assert_eq!(bins, [(day("2024-01-01"), day("2024-01-01"), 2)]);
    }

    #[test]
    fn magnitudes_beyond_duckdbs_arithmetic_are_scaled_and_centred() {
        // x near 1e300 (sums of squares overflow), t near 1e-300 (squares underflow), and two
        // columns of independent noise around 10^10 (`corr` drifts), with one ordinary column
        // in the same statement: every statistic as computed on values of ordinary size.
        const ROWS: usize = 5_000;
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let mut rng = Lcg(11);
        let rows: Vec<[f64; 5]> = (0..ROWS)
            .map(|_| {
                let (a, b, c) = (rng.next(), rng.next(), rng.next());
                [(1.0 + a * a) * 1e300, (1.0 + b) * 1e-300, 1e10 + b, 1e10 + c, a]
            })
            .collect();
        let column_values = |k: usize| rows.iter().map(|r| r[k]).collect::<Vec<f64>>();
        let list = |k: usize| column_values(k).iter().map(|v| format!("{v:e}")).collect::<Vec<_>>().join(",");
        let select = format!(
            "SELECT CAST(x[i] AS DOUBLE) AS x, CAST(t[i] AS DOUBLE) AS t, CAST(u[i] AS DOUBLE) AS u, \
                    CAST(w[i] AS DOUBLE) AS w, CAST(o[i] AS DOUBLE) AS o \
             FROM (SELECT [{}] AS x, [{}] AS t, [{}] AS u, [{}] AS w, [{}] AS o), range(1, {}) r(i)",
            list(0),
            list(1),
            list(2),
            list(3),
            list(4),
            ROWS + 1
        );
        let (path, columns) = fixture(&conn, dir.path(), "magnitudes.parquet", &select);
        let p = run(&conn, &path, &columns, &ProfileParams::default());
        // Each column checked at an ordinary scale: statistics scale exactly with a power of
        // two, skewness and kurtosis not at all.
        for (k, name, scale) in [(0, "x", 2f64.powi(-1000)), (1, "t", 2f64.powi(1000)), (4, "o", 1.0)] {
            let scaled: Vec<f64> = column_values(k).iter().map(|v| v * scale).collect();
            let c = column(&p, name);
            // Relative for mean and stddev; skewness and kurtosis near 0 to within 1e-9.
            let relative = |actual: Option<f64>, expected: f64, what: &str| {
                let actual = actual.unwrap_or_else(|| panic!("{name}: no {what}"));
                let floor = if what.ends_with("osis") || what.starts_with("skew") { 1.0 } else { 0.0 };
                let tolerance = 1e-9 * expected.abs().max(floor);
                assert!((actual - expected).abs() < tolerance, "{name} {what}: {actual} vs {expected}");
            };
            relative(c.mean, reference::mean(&scaled) / scale, "mean");
            relative(c.stddev, reference::stddev(&scaled) / scale, "stddev");
            relative(c.skewness, reference::skewness(&scaled), "skewness");
            relative(c.kurtosis, reference::kurtosis(&scaled), "kurtosis");
        }
        let r = |a: &str, b: &str| {
            p.correlations
                .iter()
                .find(|c| c.a == a && c.b == b)
                .map(|c| c.value)
                .unwrap_or_else(|| panic!("corr({a}, {b})"))
        };
        let centred = |k: usize, by: f64| column_values(k).iter().map(|v| v - by).collect::<Vec<f64>>();
        let pairs = |a: &[f64], b: &[f64]| a.iter().copied().zip(b.iter().copied()).collect::<Vec<_>>();
        let expected_uw = reference::pearson(&pairs(&centred(2, 1e10), &centred(3, 1e10)));
        assert!((r("u", "w") - expected_uw).abs() < 1e-6, "corr(u, w) {} vs {expected_uw}", r("u", "w"));
        // x is a function of o (x = (1 + o²)·1e300): their correlation as of values near 1.
        let expected_xo = reference::pearson(&pairs(
            &centred(0, 0.0).iter().map(|v| v * 1e-300).collect::<Vec<_>>(),
            &column_values(4),
        ));
        assert!((r("x", "o") - expected_xo).abs() < 1e-9, "corr(x, o) {} vs {expected_xo}", r("x", "o"));
        // t = (1 + b)·1e-300 and u = 1e10 + b: the same noise.
        assert!((r("t", "u") - 1.0).abs() < 1e-6, "corr(t, u) {}", r("t", "u"));
    }

    #[test]
    fn nan_and_infinities_are_left_out_of_the_numeric_statistics() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "floats.parquet",
            "SELECT x::DOUBLE AS x FROM (VALUES ('1.5'), ('nan'), ('inf'), ('2.5'), ('-inf'), ('3'), ('-1'), ('0')) t(x)",
        );
        let p = run(&conn, &path, &columns, &ProfileParams::default());
        let x = column(&p, "x");
        assert_eq!((x.null_count, x.distinct_count), (0, 8), "they are values");
        assert_eq!((x.zeros, x.negatives), (Some(1), Some(1)), "-inf is not counted with the negatives");
        close(x.mean, 1.2, "mean of the finite values");
    }

    #[test]
    fn empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "empty.parquet",
            "SELECT 1::BIGINT AS n, 1.5::DOUBLE AS x, 'a@b.com' AS t, DATE '2024-01-01' AS d, true AS b WHERE false",
        );
        let p = run(&conn, &path, &columns, &ProfileParams::default());
        assert_eq!((p.row_count, p.column_count, p.duplicate_row_count), (0, 5, 0));
        for c in &p.columns {
            assert_eq!((c.null_count, c.null_percent, c.distinct_count, c.unique_percent), (0, 0.0, 0, 0.0));
            assert_eq!(c.semantic_type, "empty");
            assert_eq!((&c.min, c.mean, c.stddev, c.median, c.skewness), (&None, None, None, None, None));
            assert!(c.top_values.is_empty() && c.histogram.is_empty(), "{c:?}");
        }
        assert!(p.correlations.is_empty(), "{:?}", p.correlations);
        assert!(p.alerts.is_empty(), "{:?}", p.alerts);
        let q = &p.quality;
        assert_eq!((q.completeness, q.validity, q.uniqueness, q.consistency), (100.0, 100.0, 100.0, 100.0));
        assert_eq!((q.score, q.grade.as_str()), (100.0, "A"));
    }

    #[test]
    fn one_row_and_constant_columns() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "one.parquet",
            "SELECT 7::INTEGER AS n, 'x' AS t, TIMESTAMP '2024-05-01 12:00:00' AS ts",
        );
        let p = run(&conn, &path, &columns, &ProfileParams::default());
        assert_eq!((p.row_count, p.duplicate_row_count), (1, 0));
        let n = column(&p, "n");
        assert_eq!((n.mean, n.median, n.q25, n.q75), (Some(7.0), Some(7.0), Some(7.0), Some(7.0)));
        // n − 1 = 0: no sample standard deviation; skewness needs n > 2, kurtosis n > 3
        assert_eq!((n.stddev, n.skewness, n.kurtosis), (None, None, None));
        assert_eq!(bins(&n.histogram), vec![(7.0, 7.0, 1)]);
        assert_eq!(n.outlier_count, Some(0));
        assert_eq!(bins(&column(&p, "ts").histogram), vec![(1714564800.0, 1714564800.0, 1)]);
        assert!(
            p.alerts.iter().all(|a| a.code != "CONSTANT_COLUMN"),
            "one row is not constant: {:?}",
            p.alerts
        );

        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "constant.parquet",
            "SELECT 7::INTEGER AS n, 'same' AS t, i::BIGINT AS i FROM range(5) r(i)",
        );
        let p = run(&conn, &path, &columns, &ProfileParams::default());
        let n = column(&p, "n");
        assert_eq!((n.distinct_count, n.mean, n.stddev), (1, Some(7.0), Some(0.0)));
        // zero variance: skewness and kurtosis are undefined
        assert_eq!((n.skewness, n.kurtosis), (None, None));
        assert_eq!(bins(&n.histogram), vec![(7.0, 7.0, 5)]);
        assert_eq!(n.outlier_count, Some(0));
        assert!(alert(&p, "CONSTANT_COLUMN", Some("n")).is_some());
        assert!(alert(&p, "CONSTANT_COLUMN", Some("t")).unwrap().message.contains("\"same\""));
        assert!(alert(&p, "CONSTANT_COLUMN", Some("i")).is_none());
        // i and n: n is constant, so their correlation is undefined and left out
        assert!(p.correlations.iter().all(|c| c.a != "n" && c.b != "n"), "{:?}", p.correlations);

        // A correlation is never beyond ±1, even where `corr` rounds it there.
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "corr.parquet",
            "SELECT [1000000000002.5, 1000000000003.0, 1000000000000.0][i + 1]::DOUBLE AS x, \
                    [5, 6, 0][i + 1]::DOUBLE AS y FROM range(3) r(i)",
        );
        let p = run(&conn, &path, &columns, &ProfileParams::default());
        let r = p.correlations.iter().find(|c| c.a == "x" && c.b == "y").map(|c| c.value);
        assert!(r.is_some_and(|r| (0.99..=1.0).contains(&r)), "{r:?}");

        // A constant column's one bin holds its finite values only (it counted NaN and inf).
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "constant-nan.parquet",
            "SELECT ['1.5', '1.5', 'nan', 'inf', NULL][i + 1]::DOUBLE AS x FROM range(5) r(i)",
        );
        let p = run(&conn, &path, &columns, &ProfileParams::default());
        assert_eq!(bins(&column(&p, "x").histogram), vec![(1.5, 1.5, 2)]);
    }

    #[test]
    fn hostile_and_unicode_names() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let weird = "we\"ird\" col; DROP TABLE x";
        let unicode = "名前 ünïcode";
        // `file_row_number` is also the name of read_parquet's virtual column: a real column of
        // that name hides it, and the semantic sample then falls back to the first values.
        let select = format!(
            "SELECT 'user' || i || '@example.com' AS {}, i * 1.5 AS {}, i::INTEGER AS \"select\", \
                    i AS file_row_number, NULL::VARCHAR AS \"all null\" FROM range(20) r(i)",
            quote_identifier(weird),
            quote_identifier(unicode)
        );
        let (path, columns) = fixture(&conn, dir.path(), "names.parquet", &select);
        assert_eq!(columns[0].name, weird);
        let p = run(&conn, &path, &columns, &ProfileParams::default());
        let w = column(&p, weird);
        assert_eq!((w.semantic_type.as_str(), w.distinct_count, w.invalid_count), ("email", 20, 0));
        let u = column(&p, unicode);
        close(u.mean, 14.25, "mean of 1.5·(0…19)"); // 1.5 · 9.5
        assert_eq!(u.max.as_deref(), Some("28.5"));
        close(column(&p, "select").median, 9.5, "median of 0…19");
        let all_null = column(&p, "all null");
        assert_eq!((all_null.null_count, all_null.semantic_type.as_str()), (20, "empty"));
        assert!(alert(&p, "ALL_NULL", Some("all null")).is_some());
        assert!(p.correlations.iter().any(|c| c.a == unicode && c.b == "select"));
        // The table the name tries to drop was never involved; the connection still works.
        assert_eq!(conn.query_row("SELECT 1", [], |r| r.get::<_, i32>(0)).unwrap(), 1);
    }

    #[test]
    fn other_types_are_profiled_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let (path, mut columns) = fixture(
            &conn,
            dir.path(),
            "types.parquet",
            "SELECT [i, i % 2] AS list, {'a': i % 2} AS struct, 'blob'::BLOB AS blob, \
                    MAP {'k': i % 3} AS map, to_days(i::INTEGER) AS iv, \
                    '00000000-0000-0000-0000-00000000000' || (i % 2) AS uuid_text, \
                    ('00000000-0000-0000-0000-00000000000' || (i % 2))::UUID AS uuid, \
                    i % 2 = 0 AS flag, TIME '10:00:00' + to_seconds(i::BIGINT) AS t, \
                    (TIMESTAMP '2024-01-01' + to_days(i::INTEGER))::TIMESTAMPTZ AS tz, \
                    (i * 1.25)::DECIMAL(10, 2) AS price, i::HUGEINT AS huge, NULL::INTEGER AS nothing, \
                    CASE WHEN i > 0 THEN ['a', 'b'][1:i::INTEGER] ELSE [] END AS tags, \
                    [TIMESTAMP '2024-01-01' + to_days(i::INTEGER)] AS stamps, \
                    [(i * 1.5)::DECIMAL(9, 2)] AS amounts, [[i::VARCHAR]] AS nested \
             FROM range(4) r(i)",
        );
        // A column DuckDB types as NULL (its Parquet copy is an INTEGER column of nulls).
        columns.iter_mut().find(|c| c.name == "nothing").unwrap().data_type = "\"NULL\"".into();
        let p = run(&conn, &path, &columns, &ProfileParams::default());
        let list = column(&p, "list");
        assert_eq!(
            (list.semantic_type.as_str(), list.distinct_count, list.min.as_deref()),
            ("category", 4, None)
        );
        assert_eq!(list.top_values[0], ValueCount { value: Some("[0, 0]".into()), count: 1 });
        assert_eq!(column(&p, "struct").distinct_count, 2);
        assert_eq!(values(&column(&p, "blob").top_values), vec![(Some("blob"), 4)]);
        assert_eq!(column(&p, "map").distinct_count, 3);
        assert_eq!(column(&p, "iv").distinct_count, 4);
        assert_eq!(column(&p, "uuid_text").semantic_type, "uuid");
        assert_eq!(column(&p, "uuid").semantic_type, "uuid");
        let flag = column(&p, "flag");
        assert_eq!(
            (flag.semantic_type.as_str(), flag.min.as_deref(), flag.max.as_deref()),
            ("boolean", Some("false"), Some("true"))
        );
        assert_eq!(column(&p, "t").max.as_deref(), Some("10:00:03"));
        let tz = column(&p, "tz");
        assert_eq!((tz.semantic_type.as_str(), tz.histogram.len()), ("datetime", 20));
        assert_eq!(tz.histogram[0].lower, 1704067200.0);
        let price = column(&p, "price");
        assert_eq!(price.semantic_type, "currency"); // DECIMAL with a money header
        close(price.mean, 1.875, "decimal mean"); // (0 + 1.25 + 2.5 + 3.75) / 4
        close(column(&p, "huge").mean, 1.5, "hugeint mean");
        let nothing = column(&p, "nothing");
        assert_eq!((nothing.null_count, nothing.semantic_type.as_str()), (4, "empty"));
        // Lists of text, timestamps and decimals are lists, not text, timestamps or decimals.
        let tags = column(&p, "tags");
        assert_eq!((tags.distinct_count, tags.min.as_deref(), tags.mean), (3, None, None));
        assert_eq!(tags.top_values[0], ValueCount { value: Some("[a, b]".into()), count: 2 });
        for name in ["stamps", "amounts", "nested"] {
            let c = column(&p, name);
            assert_eq!((c.distinct_count, c.histogram.len(), c.mean), (4, 0, None), "{name}");
        }
    }

    #[test]
    fn text_details() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "text.parquet",
            "SELECT * FROM (VALUES ('a' || chr(9)), (chr(160) || 'b'), ('c'), (' d'), ('e' || chr(10)), ('é')) AS t(s)",
        );
        let p = run(&conn, &path, &columns, &ProfileParams::default());
        let s = column(&p, "s");
        // tab, no-break space, space and newline count; 'é' is one character
        assert_eq!(s.untrimmed_count, 4);
        assert_eq!((s.min_length, s.max_length), (Some(1), Some(2)));
        close(s.mean_length, 10.0 / 6.0, "mean length"); // 2 + 2 + 1 + 2 + 2 + 1
    }

    /// Ten values of each shape, one of which breaks the pattern (≥ 90% still match).
    #[test]
    fn semantic_types_of_text() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let cases: &[(&str, &str, [&str; 10])] = &[
            (
                "website",
                "url",
                [
                    "https://a.com",
                    "http://b.org/x?y=1",
                    "https://c.io/p",
                    "ftp://files.d.net/f",
                    "https://e.com",
                    "https://f.com/#top",
                    "http://g.co",
                    "https://h.com/a/b",
                    "https://i.com",
                    "not a url",
                ],
            ),
            (
                "guid",
                "uuid",
                [
                    "123e4567-e89b-12d3-a456-426614174000",
                    "123e4567-e89b-12d3-a456-426614174001",
                    "123e4567-e89b-12d3-a456-426614174002",
                    "123e4567-e89b-12d3-a456-426614174003",
                    "123e4567-e89b-12d3-a456-426614174004",
                    "123e4567-e89b-12d3-a456-426614174005",
                    "123e4567-e89b-12d3-a456-426614174006",
                    "123e4567-e89b-12d3-a456-426614174007",
                    "123E4567-E89B-12D3-A456-426614174008",
                    "nope",
                ],
            ),
            (
                "host",
                "ip",
                [
                    "10.0.0.1",
                    "192.168.1.20",
                    "8.8.8.8",
                    "255.255.255.255",
                    "127.0.0.1",
                    "::1",
                    "2001:db8::8a2e:370:7334",
                    "172.16.0.5",
                    "1.2.3.4",
                    "300.1.1.1",
                ],
            ),
            (
                "contact",
                "phone",
                [
                    "+44 20 7946 0958",
                    "(555) 123-4567",
                    "555-123-4567",
                    "+1-555-123-4567",
                    "020 7946 0958",
                    "07700 900123",
                    "+33 1 23 45 67 89",
                    "555.123.4567",
                    "+49 30 1234567",
                    "12",
                ],
            ),
            (
                "zip",
                "postcode",
                ["12345", "90210", "10001-1234", "02139", "60601", "73301", "94105", "33101", "98101", "ABC"],
            ),
            (
                "area",
                "postcode",
                [
                    "SW1A 1AA", "EC1A 1BB", "W1A 0AX", "M1 1AE", "B33 8TH", "CR2 6XH", "DN55 1PT", "GIR 0AA",
                    "ec2a 4ny", "nowhere",
                ],
            ),
            (
                "price_text",
                "currency",
                [
                    "$1,234.56",
                    "€12",
                    "12.50 USD",
                    "£3.99",
                    "$0.99",
                    "USD 100",
                    "¥500",
                    "1,000.00 EUR",
                    "-$5.00",
                    "free",
                ],
            ),
            (
                "when",
                "date",
                [
                    "2024-01-31",
                    "2024-02-29",
                    "1999-12-31",
                    "2024-13-01",
                    "2023-06-15",
                    "31/12/2024",
                    "2020-01-01",
                    "2021-07-04",
                    "2022-10-10",
                    "2019-03-03",
                ],
            ),
            (
                "at",
                "datetime",
                [
                    "2024-01-31T10:00:00Z",
                    "2024-02-29 23:59:59",
                    "2024-03-01T00:00",
                    "2024-03-01T00:00:00.123+02:00",
                    "2024-04-01 12:30:00",
                    "2024-05-01T01:02:03",
                    "2024-06-01 00:00:00",
                    "2024-07-01T07:07:07Z",
                    "2024-08-01 08:08",
                    "yesterday",
                ],
            ),
            (
                "invoice",
                "identifier",
                [
                    "INV-001", "INV-002", "INV-003", "INV-004", "INV-005", "INV-006", "INV-007", "INV-008",
                    "INV-009", "INV-010",
                ],
            ),
            (
                "customer_id",
                "identifier",
                ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"],
            ),
            (
                "colour",
                "category",
                ["red", "green", "blue", "red", "green", "blue", "red", "green", "blue", "red"],
            ),
        ];
        for (name, expected, items) in cases {
            let rows: Vec<String> = items.iter().map(|v| format!("({})", quote_literal(v))).collect();
            let select =
                format!("SELECT * FROM (VALUES {}) AS t({})", rows.join(", "), quote_identifier(name));
            let (path, columns) = fixture(&conn, dir.path(), &format!("{name}.parquet"), &select);
            let p = run(&conn, &path, &columns, &ProfileParams::default());
            let c = column(&p, name);
            assert_eq!(&c.semantic_type, expected, "{name}: {items:?}");
            let invalid = if ["identifier", "category"].contains(expected) { 0 } else { 1 };
            assert_eq!(c.invalid_count, invalid, "{name}: {items:?}");
        }
        // Of a slash date's first two parts, one is a month.
        let date = regex::Regex::new(&format!("^(?:{})$", semantic_pattern("date").unwrap())).unwrap();
        for valid in ["31/12/2024", "12/31/2024", "1.2.2024", "07/04/1999"] {
            assert!(date.is_match(valid), "{valid}");
        }
        for invalid in ["31/31/2020", "13/13/2024", "2024-13-01", "00/12/2024"] {
            assert!(!date.is_match(invalid), "{invalid}");
        }

        // Unique free text above the categorical threshold: text, with HIGH_CARDINALITY.
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "comments.parquet",
            "SELECT 'comment number ' || i || ' says hello' AS comment FROM range(100) r(i)",
        );
        let p = run(&conn, &path, &columns, &ProfileParams::default());
        assert_eq!(column(&p, "comment").semantic_type, "text");
        assert!(alert(&p, "HIGH_CARDINALITY", Some("comment")).is_some());
        // Unique five-digit codes without a postcode header are codes, not postcodes.
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "codes.parquet",
            "SELECT lpad((10000 + i * 7)::VARCHAR, 5, '0') AS batch FROM range(100) r(i)",
        );
        let p = run(&conn, &path, &columns, &ProfileParams::default());
        assert_eq!(column(&p, "batch").semantic_type, "identifier");
    }

    #[test]
    fn moments_of_values_far_from_zero_are_centred() {
        // Values around 1e13 with a spread of about 0.3: the online moments lost digits (the
        // kurtosis was 12% off in such a column, a skewness changed sign near 2^62).
        let conn = Connection::open_in_memory().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "far.parquet",
            "SELECT 1e13 + ((i * 7919) % 1000) * ((i * 7919) % 1000) * 1e-6 AS y FROM range(20000) r(i)",
        );
        let p = run(&conn, &path, &columns, &ProfileParams::default());
        let y = column(&p, "y");
        // The reference: two passes over differences from the first value (exact: they are
        // within a factor of two of each other), in f64.
        let literal = quote_literal(&path.display().to_string());
        let xs: Vec<f64> = conn
            .prepare(&format!("SELECT y FROM read_parquet({literal})"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let n = xs.len() as f64;
        let d: Vec<f64> = xs.iter().map(|x| x - xs[0]).collect();
        let mean = d.iter().sum::<f64>() / n;
        let m = |k: i32| d.iter().map(|v| (v - mean).powi(k)).sum::<f64>() / n;
        let (m2, m3, m4) = (m(2), m(3), m(4));
        let g1 = m3 / m2.powf(1.5) * (n * (n - 1.0)).sqrt() / (n - 2.0);
        let g2 = (n - 1.0) * ((n + 1.0) * m4 / (m2 * m2) - 3.0 * (n - 1.0)) / ((n - 2.0) * (n - 3.0));
        close(y.mean, xs[0] + mean, "mean");
        close(y.stddev, (m2 * n / (n - 1.0)).sqrt(), "stddev");
        assert!((y.skewness.unwrap() - g1).abs() < 1e-6, "skewness {:?} != {g1}", y.skewness);
        assert!((y.kurtosis.unwrap() - g2).abs() < 1e-6, "kurtosis {:?} != {g2}", y.kurtosis);
    }

    #[test]
    fn integers_near_two_to_the_62_are_centred_before_they_are_doubles() {
        // 2^62 plus a spread of 10,000: DOUBLEs there are 1,024 apart, so the moments of the
        // DOUBLE values were 1% off (the skewness of the wrong sign).
        let conn = Connection::open_in_memory().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "near62.parquet",
            "SELECT (4611686018427387904 + (i * 7919) % 10007 + (i * i) % 37)::BIGINT AS big FROM range(200) r(i)",
        );
        let p = run(&conn, &path, &columns, &ProfileParams::default());
        let big = column(&p, "big");
        // The reference: exact integer differences from 2^62, in f64.
        let literal = quote_literal(&path.display().to_string());
        let d: Vec<f64> = conn
            .prepare(&format!("SELECT (big - 4611686018427387904)::DOUBLE FROM read_parquet({literal})"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        close(big.stddev, reference::stddev(&d), "stddev");
        let (g1, g2) = (reference::skewness(&d), reference::kurtosis(&d));
        assert!((big.skewness.unwrap() - g1).abs() < 1e-9, "skewness {:?} != {g1}", big.skewness);
        assert!((big.kurtosis.unwrap() - g2).abs() < 1e-9, "kurtosis {:?} != {g2}", big.kurtosis);
        close(big.mean, 4611686018427387904.0 + reference::mean(&d), "mean");
    }

    #[test]
    fn integers_that_are_one_double_still_have_their_spread() {
        // 1500000000000000001 to …100 are all one DOUBLE: the first pass sees no spread.
        let conn = Connection::open_in_memory().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "one_double.parquet",
            "SELECT (1500000000000000001 + i)::BIGINT AS id, (9223372036854775807 - i % 2)::BIGINT AS top \
             FROM range(100) r(i)",
        );
        let p = run(&conn, &path, &columns, &ProfileParams::default());
        let id = column(&p, "id");
        let d: Vec<f64> = (0..100).map(f64::from).collect();
        close(id.stddev, reference::stddev(&d), "stddev");
        assert!(id.skewness.unwrap().abs() < 1e-9, "skewness {:?}", id.skewness);
        assert!((id.kurtosis.unwrap() - reference::kurtosis(&d)).abs() < 1e-9, "kurtosis {:?}", id.kurtosis);
        let top = column(&p, "top");
        let d: Vec<f64> = (0..100).map(|i| f64::from(i % 2)).collect();
        close(top.stddev, reference::stddev(&d), "stddev of the largest BIGINTs");
    }

    #[test]
    fn integers_spanning_the_whole_bigint_range_are_profiled() {
        // max − min overflowed an i64 (a panic in debug builds) when a column held both ends.
        let conn = Connection::open_in_memory().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "extremes.parquet",
            "SELECT * FROM (VALUES ((-9223372036854775807 - 1)::BIGINT), (0), (9223372036854775807), (5), (5)) t(big)",
        );
        let p = run(&conn, &path, &columns, &ProfileParams::default());
        let big = column(&p, "big");
        assert_eq!(
            (big.min.as_deref(), big.max.as_deref()),
            (Some("-9223372036854775808"), Some("9223372036854775807"))
        );
        assert_eq!((big.distinct_count, big.zeros, big.negatives), (4, Some(1), Some(1)));
    }

    #[test]
    fn a_wide_table_of_few_rows_profiles_within_a_small_memory_limit() {
        // Each distinct count holds a hash table of a few MiB whatever the rows: 130 text
        // columns of 10 rows ran out of 512 MB when one statement counted them all.
        let conn = Connection::open_in_memory().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let columns: Vec<String> =
            (0..150).map(|j| format!("'v' || i || '_{j}' AS t{j}, random() AS d{j}")).collect();
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "wide.parquet",
            &format!("SELECT {} FROM range(10) r(i)", columns.join(", ")),
        );
        conn.execute_batch("SET memory_limit = '256MB'; SET threads = 2").unwrap();
        let p = run(&conn, &path, &columns, &ProfileParams::default());
        assert_eq!((p.row_count, p.columns.len()), (10, 300));
        assert_eq!((column(&p, "t149").distinct_count, column(&p, "d149").distinct_count), (10, 10));
    }

    #[test]
    fn text_that_mixes_numbers_or_dates_with_other_values_is_flagged() {
        let conn = Connection::open_in_memory().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "mixed.parquet",
            "SELECT CASE WHEN i % 5 = 0 THEN 'unknown' ELSE (20 + i % 50)::VARCHAR END AS age, \
             CASE WHEN i % 2 = 0 THEN '2024-01-' || lpad((1 + i % 28)::VARCHAR, 2, '0') ELSE 'soon' END AS due, \
             CASE WHEN i % 20 = 0 THEN '42' ELSE 'note ' || i END AS note, \
             CASE i % 3 WHEN 0 THEN 'S' WHEN 1 THEN 'M' ELSE 'L' END AS size, \
             lpad((i % 97)::VARCHAR, 5, '0') AS code \
             FROM range(200) r(i)",
        );
        let p = run(&conn, &path, &columns, &ProfileParams::default());
        let mixed = |name: &str| alert(&p, "MIXED_TYPES", Some(name)).map(|a| a.message.clone());
        assert_eq!(
            mixed("age").as_deref(),
            Some("80.0% of the sampled values are numbers and the others are not: the column mixes types")
        );
        assert!(
            mixed("due").is_some_and(|m| m.starts_with("50.0% of the sampled values are dates")),
            "{p:?}"
        );
        // 5% numbers among notes, and columns of one kind, are not mixed.
        assert_eq!((mixed("note"), mixed("size"), mixed("code")), (None, None, None));
    }

    #[test]
    fn pii_from_headers() {
        let conn_free = |name: &str, data_type: &str, semantic: &str| {
            let info = ColumnInfo { name: name.into(), data_type: data_type.into() };
            pii(&Col::new(0, &info), semantic)
        };
        assert_eq!(header_tokens("firstName"), ["first", "name"]);
        assert_eq!(header_tokens("Date of Birth"), ["date", "of", "birth"]);
        assert_eq!(header_tokens("DOB"), ["dob"]);
        for (header, kind) in [
            ("name", "name"),
            ("first_name", "name"),
            ("lastName", "name"),
            ("Surname", "name"),
            ("dob", "date_of_birth"),
            ("birth_date", "date_of_birth"),
            ("SSN", "national_id"),
            ("home address", "address"),
            ("ip_address", "ip"),
            ("email_address", "email"),
            ("mobile", "phone"),
            ("zip", "postcode"),
            ("credit_card_number", "payment_card"),
        ] {
            assert_eq!(conn_free(header, "VARCHAR", "text").as_deref(), Some(kind), "{header}");
        }
        for header in ["product_name_id", "amount", "city", "status"] {
            assert_eq!(conn_free(header, "VARCHAR", "text"), None, "{header}");
        }
        assert_eq!(conn_free("email_verified", "BOOLEAN", "boolean"), None);
        assert_eq!(conn_free("contact", "VARCHAR", "phone").as_deref(), Some("phone"));
    }

    #[test]
    fn histogram_and_top_values_honour_their_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "args.parquet",
            "SELECT i::BIGINT AS n, DATE '2024-01-01' + i::INTEGER AS d, \
                    CASE WHEN i <= 3 THEN 'a' WHEN i <= 5 THEN 'b' WHEN i <= 7 THEN 'c' WHEN i = 8 THEN 'd' END AS s, \
                    CASE WHEN i IN (9, 10) THEN i END AS tie \
             FROM range(1, 101) r(i)",
        );
        let [n, d, s, tie] = &columns[..] else { panic!("{columns:?}") };
        // 1…100 in 4 bins of width 24.75: 1–25, 26–50, 51–75, 76–100
        assert_eq!(
            bins(&histogram(&conn, &path, n, 4).unwrap()),
            vec![(1.0, 25.75, 25), (25.75, 50.5, 25), (50.5, 75.25, 25), (75.25, 100.0, 25)]
        );
        assert_eq!(bins(&histogram(&conn, &path, n, 1).unwrap()), vec![(1.0, 100.0, 100)]);
        assert_eq!(histogram(&conn, &path, n, 7).unwrap().len(), 7);
        assert_eq!(histogram(&conn, &path, n, 7).unwrap().iter().map(|b| b.count).sum::<u64>(), 100);
        assert!(histogram(&conn, &path, n, 0).unwrap().is_empty());
        assert!(histogram(&conn, &path, s, 5).unwrap().is_empty(), "text has no histogram");
        let days = histogram(&conn, &path, d, 2).unwrap();
        assert_eq!(days.iter().map(|b| b.count).collect::<Vec<_>>(), [50, 50]);
        assert_eq!(days[0].lower, 1704153600.0); // 2024-01-02

        // s: a ×3, b ×2, c ×2, d ×1, null ×92
        assert_eq!(values(&top_values(&conn, &path, s, 1).unwrap()), vec![(None, 92)]);
        assert_eq!(
            values(&top_values(&conn, &path, s, 3).unwrap()),
            vec![(None, 92), (Some("a"), 3), (Some("b"), 2)]
        );
        assert_eq!(top_values(&conn, &path, s, 100).unwrap().len(), 5);
        assert!(top_values(&conn, &path, s, 0).unwrap().is_empty());
        // Nulls are in no bin.
        assert_eq!(bins(&histogram(&conn, &path, tie, 2).unwrap()), vec![(9.0, 9.5, 1), (9.5, 10.0, 1)]);
        // Ties order by the column's own type: 9 before 10.
        assert_eq!(
            values(&top_values(&conn, &path, tie, 3).unwrap()),
            vec![(None, 98), (Some("9"), 1), (Some("10"), 1)]
        );

        // Inside profile, the same definitions.
        let params = ProfileParams { histogram_bins: 4, top_n_values: 3, ..ProfileParams::default() };
        let p = run(&conn, &path, &columns, &params);
        assert_eq!(column(&p, "n").histogram, histogram(&conn, &path, n, 4).unwrap());
        assert_eq!(column(&p, "d").histogram, histogram(&conn, &path, d, 4).unwrap());
        assert_eq!(column(&p, "s").top_values, top_values(&conn, &path, s, 3).unwrap());
        assert_eq!(column(&p, "tie").top_values, top_values(&conn, &path, tie, 3).unwrap());
    }

    /// More columns than one statement takes: every pass runs in chunks of 200 columns, and
    /// correlations stop at the first 30 numeric columns.
    #[test]
    fn wide_tables_are_chunked() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let select: Vec<String> = (0..450).map(|c| format!("i * {} + {c} AS c{c}", c + 1)).collect();
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "wide.parquet",
            &format!("SELECT {}, 'x' || (i % 2) AS label FROM range(4) r(i)", select.join(", ")),
        );
        let p = run(&conn, &path, &columns, &ProfileParams::default());
        assert_eq!(p.column_count, 451);
        // c449 = 450·i + 449 for i = 0…3: mean 450·1.5 + 449
        close(column(&p, "c449").mean, 1124.0, "c449 mean");
        assert_eq!(column(&p, "c449").top_values.len(), 4);
        assert_eq!(values(&column(&p, "label").top_values), vec![(Some("x0"), 2), (Some("x1"), 2)]);
        assert_eq!(column(&p, "c300").histogram.len(), 20);
        assert_eq!(p.correlations.len(), 30 * 29 / 2);
        assert!(p.correlations.iter().all(|c| (c.value - 1.0).abs() < 1e-12));
    }

    /// Columns that look unique in step 2's windows but repeat a value elsewhere: the probes
    /// (a bitmap for integers, hashes otherwise) must catch it, and everything must still be
    /// what plain SQL says. Row 49,999 copies row 0, outside every window.
    #[test]
    fn columns_that_only_look_unique() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "almost.parquet",
            "SELECT 'v' || j AS t, j * 0.5 AS d, j::BIGINT AS n, (j * 3 + 1)::BIGINT AS sparse \
             FROM (SELECT CASE WHEN i = 49999 THEN 0 ELSE i END AS j FROM range(50000) r(i))",
        );
        let params = ProfileParams { top_n_values: 3, ..ProfileParams::default() };
        let p = run(&conn, &path, &columns, &params);
        assert_eq!(p.duplicate_row_count, 1);
        let source = reader(&path);
        for info in &columns {
            let c = column(&p, &info.name);
            assert_eq!(c.distinct_count, 49_999, "{}", info.name);
            assert_eq!(c.top_values, top_values(&conn, &path, info, 3).unwrap(), "{}", info.name);
            assert_eq!(c.top_values[0].count, 2, "{}", info.name);
            if c.mean.is_some() {
                let q = quote_identifier(&info.name);
                let expected: (f64, f64, f64) = conn
                    .query_row(
                        &format!(
                            "SELECT quantile_cont({q}::DOUBLE, 0.25), quantile_cont({q}::DOUBLE, 0.5), \
                             quantile_cont({q}::DOUBLE, 0.75) FROM {source}"
                        ),
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .unwrap();
                assert_eq!((c.q25, c.median, c.q75), (Some(expected.0), Some(expected.1), Some(expected.2)));
                assert_eq!(c.histogram, histogram(&conn, &path, info, 20).unwrap(), "{}", info.name);
            }
        }

        // Few distinct values: duplicates by `SELECT DISTINCT *` over every row.
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "repeats.parquet",
            "SELECT i % 3 AS a, (i % 2)::VARCHAR AS b, CASE WHEN i < 90 THEN 'x' END AS c FROM range(100) r(i)",
        );
        assert_eq!(run(&conn, &path, &columns, &ProfileParams::default()).duplicate_row_count, 100 - 12);

        // A column unique but for one null tells every row apart: no duplicate pass needed.
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "one_null.parquet",
            "SELECT CASE WHEN i = 3 THEN NULL ELSE i END AS k, i % 2 AS parity FROM range(50) r(i)",
        );
        let params = ProfileParams { top_n_values: 100, ..ProfileParams::default() };
        let p = run(&conn, &path, &columns, &params);
        assert_eq!((p.duplicate_row_count, column(&p, "k").distinct_count), (0, 49));
        // Every count is 1: the null group comes after the values.
        assert_eq!(column(&p, "k").top_values, top_values(&conn, &path, &columns[0], 100).unwrap());
        assert_eq!(column(&p, "k").top_values.last().map(|v| (v.value.clone(), v.count)), Some((None, 1)));
    }

    /// A job profiles columns on two connections at once, costliest first; the profile must be
    /// the one a single connection computes, field for field (the fixture fits one row group,
    /// so even the floating-point sums are added in one order).
    #[test]
    fn two_connections_give_the_profile_one_gives() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "mixed.parquet",
            "SELECT i AS id, 'note ' || md5(i::VARCHAR) AS note, 'name_' || (i % 300) AS name, \
                    CASE WHEN i % 7 = 0 THEN NULL ELSE (i % 1000) / 10.0 END AS amount, \
                    DATE '2024-01-01' + (i % 90)::INTEGER AS day, i % 2 = 0 AS flag, \
                    CASE WHEN i % 11 = 0 THEN ' padded ' ELSE 'u' || (i % 37) || '@x.com' END AS email, \
                    (i * 7919) % 5000 AS code \
             FROM range(5000) r(i)",
        );
        let params = ProfileParams { top_n_values: 5, ..ProfileParams::default() };
        let alone = profile(&conn, None, &path, &columns, &params, &mut |_, _| {}).unwrap();
        let together = run(&conn, &path, &columns, &params);
        assert_eq!(serde_json::to_value(&together).unwrap(), serde_json::to_value(&alone).unwrap());
        assert_eq!(together.columns.len(), columns.len());
        assert_eq!(column(&together, "note").distinct_count, 5000);
        assert_eq!(column(&together, "name").distinct_count, 300);
        assert_eq!(column(&together, "email").untrimmed_count, 455);

        // Both connections take columns: of eight text columns of 200,000 rows, whichever
        // connection is free takes the next, so each takes at least one.
        let (texts, text_columns) = fixture(
            &conn,
            dir.path(),
            "texts.parquet",
            "SELECT 'a' || (i % 5000) AS a, 'b' || (i % 7000) AS b, 'c' || (i % 9000) AS c, \
                    'd' || (i % 11000) AS d, 'e' || (i % 13000) AS e, 'f' || (i % 15000) AS f, \
                    'g' || (i % 17000) AS g, 'h' || (i % 19000) AS h FROM range(200000) r(i)",
        );
        let cols: Vec<Col> =
            text_columns.iter().enumerate().map(|(index, info)| Col::new(index, info)).collect();
        let source = reader(&texts);
        let step = Step3 { source: &source, cols: &cols, params: &params, rows: 200_000, stride: None };
        let mut stats: Vec<Stats> = cols.iter().map(|_| Stats::default()).collect();
        let mut helper = conn.try_clone().unwrap();
        let (details, by) = step.run(&conn, Some(&mut helper), &mut stats, &mut |_| {}).unwrap();
        assert_eq!((details.len(), by[0] + by[1]), (8, 8));
        assert!(by[0] > 0 && by[1] > 0, "{by:?}");
        let distinct: Vec<u64> = stats.iter().map(|s| s.distinct).collect();
        assert_eq!(distinct, [5000, 7000, 9000, 11000, 13000, 15000, 17000, 19000]);

        // A column that fails in step 3 (text said to be dates: its range cannot be bound) stops
        // the profile with its own error, whichever connection ran it, and leaves no temporary
        // table on either connection.
        let bad = vec![
            columns[2].clone(),
            ColumnInfo { name: "note".into(), data_type: "DATE".into() },
            columns[0].clone(),
            columns[4].clone(),
        ];
        let mut helper = conn.try_clone().unwrap();
        let err = profile(&conn, Some(&mut helper), &path, &bad, &params, &mut |_, _| {}).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("values of column 2") && text.contains("Binder Error"), "{text}");
        assert!(!text.contains("INTERRUPT"), "{text}");
        for c in [&conn, &helper] {
            let left: i64 = c
                .query_row("SELECT count(*) FROM duckdb_tables() WHERE temporary", [], |r| r.get(0))
                .unwrap();
            assert_eq!(left, 0);
        }
    }

    /// A text column that looks unique takes its count, sample, min/max, lengths, whitespace and
    /// smallest values in one scan of its rows before the probe: the same numbers as DuckDB's
    /// own aggregates, whether the probe then proves it unique or it is grouped after all.
    #[test]
    fn text_columns_that_look_unique_are_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let (path, columns) = fixture(
            &conn,
            dir.path(),
            "looks_unique.parquet",
            "SELECT CASE WHEN i % 97 = 0 THEN NULL \
                         WHEN i % 1000 = 7 THEN ' u' || i || '@x.com' \
                         WHEN i % 5000 = 3 THEN 'not-an-email-' || i \
                         ELSE 'u' || i || '@x.com' END AS mail, \
                    'v' || CASE WHEN i = 49999 THEN 0 ELSE i END AS dup \
             FROM range(50000) r(i)",
        );
        let params = ProfileParams { top_n_values: 4, ..ProfileParams::default() };
        let p = run(&conn, &path, &columns, &params);
        let source = reader(&path);
        for info in &columns {
            let c = column(&p, &info.name);
            let q = quote_identifier(&info.name);
            let expected: (i64, i64, Option<String>, Option<String>, i64, i64, f64, i64) = conn
                .query_row(
                    &format!(
                        "SELECT count({q}), count(DISTINCT {q}), min({q}), max({q}), min(length({q})), \
                         max(length({q})), avg(length({q})), count_if({q} <> trim({q})) FROM {source}"
                    ),
                    [],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                            r.get(7)?,
                        ))
                    },
                )
                .unwrap();
            let (non_null, distinct, min, max, min_length, max_length, mean_length, untrimmed) = expected;
            assert_eq!(c.null_count, 50_000 - non_null as u64, "{}", info.name);
            assert_eq!(c.distinct_count, distinct as u64, "{}", info.name);
            assert_eq!((c.min.clone(), c.max.clone()), (min, max), "{}", info.name);
            assert_eq!((c.min_length, c.max_length), (Some(min_length as u64), Some(max_length as u64)));
            close(c.mean_length, mean_length, "mean length");
            assert_eq!(c.untrimmed_count, untrimmed as u64, "{}", info.name);
            assert_eq!(c.top_values, top_values(&conn, &path, info, 4).unwrap(), "{}", info.name);
        }
        // 516 nulls (every 97th row); 49 values with a leading space (i % 1000 = 7, but for
        // 3,007 = 97 × 31, a null); 10 that are not addresses (i % 5000 = 3). The duplicate
        // of `dup` is outside the windows of step 2: it looks unique, and is grouped after
        // its probe.
        let mail = column(&p, "mail");
        assert_eq!((mail.null_count, mail.distinct_count), (516, 49_484));
        assert_eq!(mail.semantic_type, "email");
        assert_eq!((mail.untrimmed_count, mail.invalid_count), (49, 10));
        assert_eq!(mail.top_values[0], ValueCount { value: None, count: 516 });
        let dup = column(&p, "dup");
        assert_eq!(
            (dup.distinct_count, dup.top_values[0].clone()),
            (49_999, ValueCount { value: Some("v0".into()), count: 2 })
        );
    }

    /// Step 3's shortcuts — quartiles from ranks of distinct values or from a filled integer
    /// range, bins and outliers of a filled integer range by arithmetic, a unique column's top
    /// values, the mean length from a sum — against DuckDB's own definitions, bit for bit.
    #[test]
    fn shortcuts_match_duckdb_exactly() {
        let conn = Connection::open_in_memory().unwrap();
        let double = ColumnInfo { name: "x".into(), data_type: "DOUBLE".into() };
        let x = Col::new(0, &double);
        let sql_quartiles = |table: &str| -> [Option<f64>; 3] {
            let q: (f64, f64, f64) = conn
                .query_row(
                    &format!(
                        "SELECT quantile_cont(x, [0.25, 0.5, 0.75])[1], quantile_cont(x, [0.25, 0.5, 0.75])[2], \
                         quantile_cont(x, [0.25, 0.5, 0.75])[3] FROM {table}"
                    ),
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .unwrap();
            [Some(q.0), Some(q.1), Some(q.2)]
        };
        // Quartiles by rank over (value, count) pairs, with repeats, for counts whose positions
        // fall on and between ranks.
        for n in [1u64, 2, 3, 4, 5, 6, 7, 100, 1001, 20_011] {
            conn.execute_batch(&format!(
                "CREATE OR REPLACE TABLE t AS SELECT ((hash(i) % 997) / 7.0 - 50)::DOUBLE AS x FROM range({n}) r(i); \
                 CREATE OR REPLACE TABLE g AS SELECT x AS v, count(*) AS n FROM t GROUP BY x"
            ))
            .unwrap();
            let by_rank = quartiles_by_rank(&conn, &x, "(SELECT v, n FROM g)", n).unwrap();
            assert_eq!(by_rank, sql_quartiles("t"), "{n} values");
        }

        // A unique integer column filling its range: quartiles, bins and outliers by arithmetic.
        let bigint = ColumnInfo { name: "x".into(), data_type: "BIGINT".into() };
        let id = Col::new(0, &bigint);
        for (lo, count) in [(5i64, 1u64), (0, 2), (-7, 10), (-150_000, 300_001), (1_000_000_007, 65_537)] {
            let hi = lo + count as i64 - 1;
            conn.execute_batch(&format!(
                "CREATE OR REPLACE TABLE t AS SELECT range::BIGINT AS x FROM range({lo}, {hi} + 1)"
            ))
            .unwrap();
            let stats = Stats {
                min: Some(lo.to_string()),
                max: Some(hi.to_string()),
                finite: count,
                ..Stats::default()
            };
            assert_eq!(dense_range(&id, &stats), Some((lo, hi)));
            let quartiles = quartiles(&conn, "t", &id, &stats, &Values::Rows, "t", None).unwrap();
            conn.execute_batch("CREATE OR REPLACE VIEW d AS SELECT x::DOUBLE AS x FROM t").unwrap();
            assert_eq!(quartiles, sql_quartiles("d"), "{lo}..={hi}");
            for bins in [2, 3, 7, 20, 1000] {
                let Some(binning @ Binning::Equal { .. }) = Binning::new(lo as f64, hi as f64, bins) else {
                    continue;
                };
                let json: Option<String> = conn
                    .query_row(
                        &format!("SELECT CAST({} AS VARCHAR) FROM d", binning.aggregate("x")),
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert_eq!(
                    binning.dense_counts(lo, hi),
                    parse_bin_counts(json.as_deref()).unwrap(),
                    "{lo}..={hi} in {bins} bins"
                );
            }
            let span = (hi - lo) as f64;
            for (low, high) in [
                (lo as f64 + 0.25 * span, hi as f64 - 0.25 * span),
                ((lo + 3) as f64, (hi - 3) as f64),
                (lo as f64 - 0.5, hi as f64 + 0.5),
                (f64::NEG_INFINITY, f64::INFINITY),
                (-1.0e300, 1.0e300),
                // Crossed fences (a negative multiplier): a value beyond both counts once.
                (hi as f64 + 3.0, lo as f64 - 3.0),
                (f64::INFINITY, f64::NEG_INFINITY),
            ] {
                // As step 3 writes it: a fence that is not finite catches nothing.
                let below =
                    if low.is_finite() { format!("x < {}", super::double(low)) } else { "false".into() };
                let above =
                    if high.is_finite() { format!("x > {}", super::double(high)) } else { "false".into() };
                let sql: i64 = conn
                    .query_row(&format!("SELECT count_if({below} OR {above}) FROM d"), [], |r| r.get(0))
                    .unwrap();
                assert_eq!(
                    dense_outliers(lo, hi, low, high),
                    sql as u64,
                    "{lo}..={hi} outside ({low}, {high})"
                );
            }
        }

        // A unique column's top values: its smallest values and the null group, ranked as ORDER BY.
        for nulls in [0u64, 1, 2, 7] {
            for (values, limit) in [(3u64, 10u64), (20, 5), (20, 1)] {
                conn.execute_batch(&format!(
                    "CREATE OR REPLACE TABLE t AS SELECT 'v' || (i * 7 % {values}) AS v FROM range({values}) r(i) \
                     UNION ALL SELECT NULL FROM range({nulls})"
                ))
                .unwrap();
                let smallest: String = conn
                    .query_row(
                        &format!("SELECT to_json(CAST(min(v, {limit}) AS VARCHAR[])) FROM t"),
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert_eq!(
                    unique_top_values(Some(&smallest), nulls, limit).unwrap(),
                    top_of(&conn, "(SELECT v, count(*) AS n FROM t GROUP BY v)", limit).unwrap(),
                    "{values} values, {nulls} nulls, top {limit}"
                );
            }
        }

        // The mean length from the exact sum is DuckDB's ungrouped avg (sum / count in double);
        // 4946 / 2051 is a quotient that `long double` arithmetic would round differently.
        for (long, short, rows) in [(846, 2, 2051), (37, 5, 999_999), (1, 1, 1)] {
            let (avg, sum): (f64, String) = conn
                .query_row(
                    &format!(
                        "SELECT avg(length(s)), CAST(sum(length(s)) AS VARCHAR) FROM \
                         (SELECT CASE WHEN i = 0 THEN repeat('a', {long}) ELSE repeat('b', {short}) END AS s FROM range({rows}) r(i))"
                    ),
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!(mean(&sum, rows), Some(avg), "{sum} / {rows}");
        }
        assert_eq!(mean("4946", 2051), Some(4946.0 / 2051.0));
    }

    /// Profiles a generated file of `PROFILE_PERF_ROWS` rows (default 10 million), or the
    /// Parquet file `PROFILE_PERF_FILE`, with the server's defaults (`DUCKDB_THREADS`, default 2;
    /// `DUCKDB_MEMORY_LIMIT`, default 512MB), and compares with plain scans. With
    /// `PROFILE_PERF_OUT`, the profile is also written there as JSON (to compare two versions);
    /// with `PROFILE_PERF_LOG`, DuckDB logs every statement there (to time them one by one).
    /// Slow: run with `--ignored --nocapture`.
    #[test]
    #[ignore]
    fn performance_against_a_plain_scan() {
        let rows: u64 =
            std::env::var("PROFILE_PERF_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let threads: u32 = std::env::var("DUCKDB_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
        let memory = std::env::var("DUCKDB_MEMORY_LIMIT").unwrap_or_else(|_| "512MB".into());
        conn.execute_batch(&format!(
            "SET threads = {threads}; SET memory_limit = {}; SET temp_directory = {}",
            quote_literal(&memory),
            quote_literal(&dir.path().join("spill").display().to_string())
        ))
        .unwrap();
        if let Ok(log) = std::env::var("PROFILE_PERF_LOG") {
            conn.execute_batch(&format!("SET log_query_path = {}", quote_literal(&log))).unwrap();
        }
        let started = std::time::Instant::now();
        let (path, columns) = match std::env::var("PROFILE_PERF_FILE") {
            Ok(file) => {
                let path = PathBuf::from(file);
                let columns = describe(&conn, &path);
                (path, columns)
            }
            Err(_) => fixture(
                &conn,
                dir.path(),
                "perf.parquet",
                &format!(
                    "SELECT i AS id, \
                            (hash(i) % 100000) / 100.0 AS amount, \
                            (hash(i * 3) % 50)::INTEGER AS qty, \
                            'category_' || (hash(i * 5) % 20) AS category, \
                            'user' || (hash(i * 7) % 5000000) || '@example.com' AS email, \
                            md5(i::VARCHAR) AS token, \
                            'some free text ' || (hash(i * 11) % 1000000) || ' words' AS note, \
                            TIMESTAMP '2020-01-01' + to_seconds((hash(i * 13) % 100000000)::BIGINT) AS created, \
                            DATE '2020-01-01' + (hash(i * 17) % 1500)::INTEGER AS day, \
                            hash(i * 19) % 2 = 0 AS flag, \
                            'INV-' || lpad(i::VARCHAR, 8, '0') AS invoice, \
                            CASE WHEN hash(i * 23) % 10 = 0 THEN NULL ELSE ln(1 + hash(i * 29) % 1000) END AS score \
                     FROM range({rows}) r(i)"
                ),
            ),
        };
        let size = std::fs::metadata(&path).unwrap().len();
        println!("{}: {} MB, ready in {:?}", path.display(), size / 1_000_000, started.elapsed());
        let source = reader(&path);
        for scan in [
            format!("SELECT count(COLUMNS(*)) FROM {source}"),
            format!("SELECT max(COLUMNS(*)) FROM {source}"),
            format!("SELECT count(DISTINCT COLUMNS(*)) FROM {source}"),
        ] {
            let started = std::time::Instant::now();
            conn.execute_batch(&scan).unwrap();
            println!("{:?}  {scan}", started.elapsed());
        }
        let started = std::time::Instant::now();
        let mut last = std::time::Instant::now();
        let mut helper = conn.try_clone().unwrap();
        let p = profile(
            &conn,
            Some(&mut helper),
            &path,
            &columns,
            &ProfileParams::default(),
            &mut |percent, stage| {
                println!("  {percent:5.1}% {stage:<18} +{:?}", last.elapsed());
                last = std::time::Instant::now();
            },
        )
        .unwrap();
        println!("profile: {:?}", started.elapsed());
        if let Ok(out) = std::env::var("PROFILE_PERF_OUT") {
            std::fs::write(out, serde_json::to_string_pretty(&p).unwrap()).unwrap();
        }
        println!("{}", serde_json::to_string_pretty(&p.quality).unwrap());
        for c in &p.columns {
            println!(
                "{:<10} {:<10} {:<10} distinct {}",
                c.name, c.data_type, c.semantic_type, c.distinct_count
            );
        }
    }
}
