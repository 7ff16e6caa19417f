//! Ingest: read an uploaded file with DuckDB and write the canonical Parquet copy, keeping
//! malformed rows as rejects instead of failing or dropping them.

use std::collections::HashSet;
use std::path::Path;

use anyhow::Context;
use duckdb::Connection;

use super::{PARQUET_OPTIONS, csv_types, quote_literal};
use crate::domain::ColumnInfo;

/// How DuckDB should read the source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// Delimited text; `delimiter: None` lets DuckDB sniff it.
    Delimited {
        delimiter: Option<char>,
        /// Whether the first line holds the column names; `None` lets DuckDB decide (a first
        /// line of numbers, such as years, reads as data).
        header: Option<bool>,
        /// Columns (by position) read as text whatever their values look like: an Excel
        /// sheet's columns of text cells (`1.10`, `1E3` typed as text stay so).
        text_columns: Vec<usize>,
    },
    JsonArray,
    JsonLines,
    Parquet,
}

/// What an ingest produced.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub columns: Vec<ColumnInfo>,
    pub row_count: u64,
    pub rejected_row_count: u64,
    pub notices: Vec<String>,
}

/// Takes an engine-written Parquet file as a dataset's canonical copy: hard-linked (or, across
/// file systems, copied) to `data`, then read back for its columns and rows (from the footer).
/// The source is left in place. A file that is not Parquet is refused like an upload.
pub fn adopt(conn: &Connection, source: &Path, data: &Path) -> Result<Ingested, IngestError> {
    if std::fs::hard_link(source, data).is_err() {
        std::fs::copy(source, data).with_context(|| format!("copying {}", source.display()))?;
    }
    let data_literal = quote_literal(&data.display().to_string());
    let mut columns = Vec::new();
    let mut describe = conn
        .prepare(&format!("DESCRIBE SELECT * FROM read_parquet({data_literal})"))
        .map_err(|e| classify(e, data))?;
    let mut rows = describe.query([]).map_err(|e| classify(e, data))?;
    while let Some(row) = rows.next().map_err(|e| classify(e, data))? {
        columns.push(ColumnInfo {
            name: row.get(0).context("column name")?,
            data_type: row.get(1).context("column type")?,
        });
    }
    let row_count: i64 = conn
        .query_row(&format!("SELECT count(*) FROM read_parquet({data_literal})"), [], |r| r.get(0))
        .map_err(|e| classify(e, data))?;
    Ok(Ingested {
        columns,
        row_count: u64::try_from(row_count).unwrap_or(0),
        rejected_row_count: 0,
        notices: Vec::new(),
    })
}

/// A malformed input row, kept and reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub line: u64,
    pub column: Option<String>,
    pub reason: String,
}

/// Why DuckDB could not read a file: the input's fault, or ours.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    BadInput(String),
    /// The file needs more memory than the engine may use (`DUCKDB_MEMORY_LIMIT`).
    #[error("{0}")]
    TooLarge(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// DuckDB's error classes that mean "this file is not what it claims to be".
fn classify(err: duckdb::Error, source: &Path) -> IngestError {
    let message = err.to_string();
    if message.starts_with("Out of Memory Error") {
        return IngestError::TooLarge(
            "reading this file needs more memory than the engine may use (DUCKDB_MEMORY_LIMIT); \
             very wide tables need the most, and so do several large files read at once \
             (MAX_CONCURRENT_INGESTS)"
                .into(),
        );
    }
    // A Parquet footer whose bytes are not Thrift (a file that only looks like Parquet):
    // DuckDB reports Thrift's exception without an error class.
    if message.contains("TProtocolException") {
        return IngestError::BadInput("the Parquet file's metadata is corrupt and cannot be decoded".into());
    }
    let bad_input =
        ["Invalid Input Error", "Conversion Error", "Parser Error", "Binder Error", "Not implemented Error"]
            .iter()
            .any(|class| message.starts_with(class));
    if bad_input {
        // DuckDB quotes the path; the client must not learn where files live.
        let clean = message.replace(&source.display().to_string(), "the file");
        let first_line = clean.lines().next().unwrap_or_default().to_string();
        // The reason of a CSV error is on a later line; the one that needs saying is this.
        if clean.contains("Maximum line size") {
            // DuckDB numbers the line within what it was reading: the file's own number is
            // counted here (this path is rare: a refusal).
            let which = match first_long_line(source, MAX_LINE_BYTES) {
                Ok(Some(line)) => format!("line {line} of the file"),
                _ => first_line,
            };
            return IngestError::BadInput(format!(
                "{which}: the line is longer than {} MB, the longest a delimited file may have",
                MAX_LINE_BYTES >> 20
            ));
        }
        // DuckDB's JSON messages name its own options, which a user cannot set.
        if clean.contains("expected records, but got non-record JSON") {
            return IngestError::BadInput(
                "the JSON cannot be read as a table: its records must be objects whose every key has a \
                 name (an empty array, an object without keys, or a key that is the empty string \"\" is \
                 not read: give every key a name)"
                    .into(),
            );
        }
        // DuckDB counts the records of JSON (blank lines left out) from 2 and calls that a
        // line or a record/value: `bad` on the fourth line of a file is "line 5".
        if let Some((before, after)) =
            clean.split_once(" in line ").or_else(|| clean.split_once(" in record/value "))
            && before.contains("Malformed JSON")
            && let Some((n, rest)) = after.split_once(':')
            && let Ok(n) = n.trim().parse::<u64>()
        {
            let before = before.lines().next().unwrap_or_default();
            let rest = rest.lines().next().unwrap_or_default();
            return IngestError::BadInput(format!(
                "{before} in record {}:{rest}",
                n.saturating_sub(1).max(1)
            ));
        }
        if let Some(name) =
            clean.split("Duplicate name ").nth(1).and_then(|rest| rest.split(" in struct").next())
        {
            return IngestError::BadInput(format!(
                "a nested object holds two keys that differ only in case ({name}): rename one of them"
            ));
        }
        IngestError::BadInput(first_line)
    } else {
        IngestError::Internal(anyhow::Error::from(err).context("DuckDB ingest"))
    }
}

/// Longest line a delimited file may have (DuckDB's default is 2 MB; larger values make
/// DuckDB reserve larger buffers, which small memory limits cannot hold).
pub const MAX_LINE_BYTES: u64 = 8 * 1024 * 1024;

/// How a delimited file's double quotes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quotes {
    /// As DuckDB's sniffer decides from the first rows.
    Sniffed,
    /// As RFC 4180 says (`"` encloses a field, `""` in one is a quote), for a file whose first
    /// rows hold no quote to sniff: the sniffer then sets none, and a later `"Smith, John"`
    /// would be two fields and its line rejected.
    Rfc4180,
}

/// `read_csv`'s options after the path for a delimited file (encoding, delimiter, line size,
/// quotes). The engine reads UTF-8 only: the service turns other text into UTF-8 first.
fn csv_options(delimiter: Option<char>, header: Option<bool>, long_lines: bool, quotes: Quotes) -> String {
    let header = match header {
        Some(header) => format!(", header = {header}"),
        None => String::new(),
    };
    let delimiter = match delimiter {
        Some(d) => format!(", delim = {}", quote_literal(&d.to_string())),
        None => String::new(),
    };
    // A larger max_line_size makes DuckDB's reader half again slower, so it is used
    // only for the files that need it (see `ingest`).
    let long_lines = if long_lines { format!(", max_line_size = {MAX_LINE_BYTES}") } else { String::new() };
    let quotes = match quotes {
        Quotes::Sniffed => "",
        Quotes::Rfc4180 => ", quote = '\"', escape = '\"'",
    };
    format!(", encoding = 'utf-8'{delimiter}{header}{long_lines}{quotes}")
}

/// The table function reading `source`, with `extra` options: a delimited file's column
/// types ([`csv_types::Plan::reader_options`]), a JSON file's columns ([`json_columns`]).
fn reader(kind: &SourceKind, source: &Path, long_lines: bool, quotes: Quotes, extra: &str) -> String {
    let path = quote_literal(&source.display().to_string());
    match kind {
        SourceKind::Delimited { delimiter, header, .. } => {
            format!(
                "read_csv({path}, store_rejects = true{}{extra})",
                csv_options(*delimiter, *header, long_lines, quotes)
            )
        }
        // `records = true`: every element must be an object (a row), not a bare value.
        // DuckDB reads an object of 200 keys or more as a MAP, not a record, unless told not to.
        SourceKind::JsonArray => {
            format!(
                "read_json({path}, format = 'array', records = true, map_inference_threshold = -1{extra})"
            )
        }
        SourceKind::JsonLines => {
            format!("read_json({path}, format = 'auto', records = true, map_inference_threshold = -1{extra})")
        }
        SourceKind::Parquet => format!("read_parquet({path})"),
    }
}

/// How to read a JSON file: `read_json`'s options and the projection over them, with its
/// columns inferred from every record. From its first records only (20,480, DuckDB's
/// default) a later value that does not fit would be refused ("JSON transform error"),
/// rounded (7.5 in a BIGINT column) or lost (a column null in the sample is typed NULL, and
/// its later values read as null). A column of mixed kinds, which DuckDB types JSON, and one
/// null throughout are read as text (strings without their quotes). The columns are named
/// for `read_json` (`columns`), so the file is inferred once; but not when DuckDB renamed a
/// key that differs from another only in case (`ID` beside `id` becomes `ID_1`, which no
/// record holds): the read then infers again. Blocking; reads the whole file once.
fn json_columns(
    conn: &Connection,
    kind: &SourceKind,
    source: &Path,
) -> Result<(String, String, Vec<String>), IngestError> {
    let every_record = ", sample_size = -1";
    let from = reader(kind, source, false, Quotes::Sniffed, every_record);
    let columns = describe(conn, &from, source)?;
    if columns.is_empty() {
        return Ok((String::new(), "SELECT *".into(), Vec::new()));
    }
    let renamed: Vec<&String> = columns
        .iter()
        .map(|(name, _)| name)
        .filter(|name| {
            name.rsplit_once('_').is_some_and(|(base, n)| {
                !n.is_empty()
                    && n.bytes().all(|b| b.is_ascii_digit())
                    && columns.iter().any(|(other, _)| other != *name && other.eq_ignore_ascii_case(base))
            })
        })
        .collect();
    // Integer columns DuckDB types HUGEINT (one of positive and negative values, which it
    // merges as UBIGINT and BIGINT) whose values all fit BIGINT.
    let bigint = fits_bigint(conn, &from, &columns, source)?;
    if !renamed.is_empty() {
        let mut notices: Vec<String> = renamed
            .iter()
            .map(|name| {
                format!(
                    "column {name:?} is a key that differs from another only in case: DuckDB names columns \
                     ignoring case, so it was renamed"
                )
            })
            .collect();
        let select: Vec<String> = columns
            .iter()
            .map(|(name, ty)| {
                let v = super::quote_identifier(name);
                match ty.as_str() {
                    "JSON" => format!("json_extract_string({v}, '$') AS {v}"),
                    _ if holds_hugeint(ty) && bigint.contains(name) => {
                        format!("CAST({v} AS {}) AS {v}", with_bigints(ty))
                    }
                    _ if holds_hugeint(ty) => format!("CAST({v} AS VARCHAR) AS {v}"),
                    _ if is_null_type(ty) => format!("CAST({v} AS VARCHAR) AS {v}"),
                    _ => v,
                }
            })
            .collect();
        // Named columns cannot be asked for here (two would have one name), so a DOUBLE
        // column's integers beyond 64 bits cannot be read as their text: said so.
        let twinned = |name: &String| {
            renamed.iter().any(|r| {
                *r == name || r.rsplit_once('_').is_some_and(|(base, _)| base.eq_ignore_ascii_case(name))
            })
        };
        let doubles: Vec<(String, String)> =
            columns.iter().filter(|(name, _)| !twinned(name)).cloned().collect();
        // (Best effort: the notice is not worth failing the upload for.)
        for name in long_integers(conn, kind, source, &doubles).unwrap_or_default() {
            notices.push(format!(
                "column {name:?} holds integers beyond 64 bits, read as the nearest doubles: they cannot be \
                 kept as text in a file whose keys differ only in case (rename one of them to keep them exact)"
            ));
        }
        return Ok((every_record.to_string(), format!("SELECT {}", select.join(", ")), notices));
    }
    let beyond_64_bits = long_integers(conn, kind, source, &columns)?;
    let finer = finer_than_microseconds(conn, kind, source, &columns)?;
    let named: Vec<String> = columns
        .into_iter()
        .map(|(name, ty)| {
            // JSON values and nulls alone are text; so are integers beyond BIGINT: DuckDB types
            // a column holding one HUGEINT, which Parquet stores as DOUBLE, rounding every
            // integer of more than 15 digits in it (a delimited file's are text too), and a
            // column holding one beyond even HUGEINT's reading (more than 64 bits) DOUBLE.
            // (Inside lists and structs too: Parquet stores those HUGEINTs as DOUBLE as well.)
            // UUIDs too: DuckDB's UUID writes them in lower case, and the
            // file's own text is kept (the profile still knows them for UUIDs). Only
            // top-level columns and lists of them: UUIDs inside structs stay UUIDs. And times
            // and instants with digits past microseconds, which those types would drop.
            let huge = holds_hugeint(&ty);
            let ty = if huge && bigint.contains(&name) {
                with_bigints(&ty)
            } else if ty == "JSON"
                || is_null_type(&ty)
                || huge
                || beyond_64_bits.contains(&name)
                || finer.contains(&name)
                || ty == "UUID"
            {
                "VARCHAR".to_string()
            } else if let Some(lists) =
                ty.strip_prefix("UUID").filter(|l| !l.is_empty() && l.chars().all(|c| c == '[' || c == ']'))
            {
                format!("VARCHAR{lists}")
            } else {
                ty
            };
            format!("{}: {}", quote_literal(&name), quote_literal(&ty))
        })
        .collect();
    Ok((format!(", columns = {{{}}}", named.join(", ")), "SELECT *".into(), Vec::new()))
}

/// The HUGEINT and UHUGEINT columns of `columns` (as `from` reads them) whose every value fits
/// BIGINT: one read of those columns, only when there are some.
fn fits_bigint(
    conn: &Connection,
    from: &str,
    columns: &[(String, String)],
    source: &Path,
) -> Result<Vec<String>, IngestError> {
    let huge: Vec<(&String, &String)> =
        columns.iter().filter(|(_, ty)| holds_hugeint(ty)).map(|(name, ty)| (name, ty)).collect();
    if huge.is_empty() {
        return Ok(Vec::new());
    }
    let checks: Vec<String> = huge
        .iter()
        .map(|(name, ty)| {
            let v = super::quote_identifier(name);
            if matches!(ty.as_str(), "HUGEINT" | "UHUGEINT") {
                format!("coalesce(bool_and({v} BETWEEN {} AND {}), true)", i64::MIN, i64::MAX)
            } else {
                // Inside lists and structs: the value reads the same with BIGINT integers (a
                // field that does not fit is NULL after `TRY_CAST`).
                format!(
                    "coalesce(bool_and(TRY_CAST({v} AS {})::VARCHAR IS NOT DISTINCT FROM {v}::VARCHAR), true)",
                    with_bigints(ty)
                )
            }
        })
        .collect();
    let sql = format!("SELECT {} FROM {from}", checks.join(", "));
    let fits: Vec<bool> = conn
        .query_row(&sql, [], |row| (0..huge.len()).map(|i| row.get::<_, bool>(i)).collect())
        .map_err(|e| classify(e, source))?;
    Ok(huge.into_iter().zip(fits).filter(|(_, fits)| *fits).map(|((name, _), _)| name.clone()).collect())
}

/// A DuckDB type with its HUGEINT and UHUGEINT types BIGINT (`STRUCT(x HUGEINT, l HUGEINT[])`
/// → `STRUCT(x BIGINT, l BIGINT[])`); a field named `HUGEINT` (followed by its type, not by
/// `,`, `)` or `[`) keeps its name.
fn with_bigints(ty: &str) -> String {
    use std::sync::LazyLock;
    static HUGE: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"(^|[ (])U?HUGEINT([,)\[]|$)").expect("a valid pattern"));
    // Outside double-quoted names only (`"size (HUGEINT)"` is a name); twice, since a match
    // takes the separator after it, which may start the next one (`(HUGEINT,HUGEINT)`).
    ty.split('"')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                return part.to_string();
            }
            let once = HUGE.replace_all(part, "${1}BIGINT${2}");
            HUGE.replace_all(&once, "${1}BIGINT${2}").into_owned()
        })
        .collect::<Vec<_>>()
        .join("\"")
}

/// Whether a DuckDB type holds HUGEINT or UHUGEINT (anywhere, not in a quoted field name).
fn holds_hugeint(ty: &str) -> bool {
    ty.split('"').step_by(2).any(|part| part.contains("HUGEINT"))
}

/// The DOUBLE columns of a JSON file that hold an integer of 20 digits or more, or a negative
/// one of 19 below BIGINT's range, which DuckDB reads as a DOUBLE when it is beyond 64 bits,
/// rounding it (and every long integer beside it): only when the file holds such a run of
/// digits at all (a fast scan of its bytes), by a read of those columns' raw JSON text.
fn long_integers(
    conn: &Connection,
    kind: &SourceKind,
    source: &Path,
    columns: &[(String, String)],
) -> Result<Vec<String>, IngestError> {
    const DIGITS: usize = 20;
    // (Inside lists and structs too: `DOUBLE[]`, `STRUCT(l DOUBLE[])`.)
    let doubles: Vec<&String> =
        columns.iter().filter(|(_, ty)| ty.contains("DOUBLE")).map(|(name, _)| name).collect();
    if doubles.is_empty()
        || !has_digit_run(source, DIGITS - 1).map_err(|e| IngestError::Internal(e.into()))?
    {
        return Ok(Vec::new());
    }
    raw_json_holds(conn, kind, source, &doubles, |v| {
        // A JSON number of that many digits (not inside a string, which a quote would start).
        // (Every number's text: `-9999999999999999999.5` is a decimal, not such an integer.)
        let below = format!(
            "len(list_filter(regexp_extract_all({v}, '-?[0-9]+([.][0-9]+)?([eE][+-]?[0-9]+)?'), \
             lambda x: regexp_full_match(x, '-[0-9]{{{}}}') AND TRY_CAST(x AS BIGINT) IS NULL)) > 0",
            DIGITS - 1
        );
        format!("regexp_matches({v}, '(^|[\\[,:\\s])-?[0-9]{{{DIGITS},}}([\\],}}\\s]|$)') OR {below}")
    })
}

/// Those of `names` (columns of a JSON file) one of whose raw JSON texts meets `test` (an
/// expression over the text `v`): one read of those columns.
fn raw_json_holds(
    conn: &Connection,
    kind: &SourceKind,
    source: &Path,
    names: &[&String],
    test: impl Fn(&str) -> String,
) -> Result<Vec<String>, IngestError> {
    let raw: Vec<String> = names.iter().map(|name| format!("{}: 'JSON'", quote_literal(name))).collect();
    let from = reader(kind, source, false, Quotes::Sniffed, &format!(", columns = {{{}}}", raw.join(", ")));
    let found: Vec<String> = names
        .iter()
        .map(|name| {
            let v = format!("CAST({} AS VARCHAR)", super::quote_identifier(name));
            format!("coalesce(bool_or({}), false)", test(&v))
        })
        .collect();
    let sql = format!("SELECT {} FROM {from}", found.join(", "));
    let flags: Vec<bool> = conn
        .query_row(&sql, [], |row| (0..names.len()).map(|i| row.get::<_, bool>(i)).collect())
        .map_err(|e| classify(e, source))?;
    Ok(names.iter().zip(flags).filter(|(_, holds)| *holds).map(|(name, _)| name.to_string()).collect())
}

/// The TIME and TIMESTAMP WITH TIME ZONE columns of a JSON file (top level) one of whose raw
/// values has digits past microseconds, which those types would drop (`03:04:05.1234567`):
/// read as text instead, as a delimited file's are. One read of those columns' raw JSON text,
/// only when there are some.
fn finer_than_microseconds(
    conn: &Connection,
    kind: &SourceKind,
    source: &Path,
    columns: &[(String, String)],
) -> Result<Vec<String>, IngestError> {
    let times: Vec<&String> = columns
        .iter()
        .filter(|(_, ty)| matches!(ty.as_str(), "TIME" | "TIMESTAMP WITH TIME ZONE"))
        .map(|(name, _)| name)
        .collect();
    // (Seven digits in a row somewhere first: a fraction finer than microseconds has them.)
    if times.is_empty() || !has_digit_run(source, 7).map_err(|e| IngestError::Internal(e.into()))? {
        return Ok(Vec::new());
    }
    raw_json_holds(conn, kind, source, &times, |v| {
        format!("regexp_matches({v}, '[0-9]:[0-9]{{2}}[.][0-9]{{7,}}')")
    })
}

/// The number (from 1) of the first line of `path` longer than `max` bytes, if any. Blocking;
/// reads the file up to it.
fn first_long_line(path: &Path, max: u64) -> std::io::Result<Option<u64>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buffer = vec![0u8; 1 << 20];
    let (mut line, mut length) = (1u64, 0u64);
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(None);
        }
        let mut start = 0;
        for at in memchr::memchr_iter(b'\n', &buffer[..n]) {
            if length + (at - start) as u64 > max {
                return Ok(Some(line));
            }
            line += 1;
            length = 0;
            start = at + 1;
        }
        length += (n - start) as u64;
        if length > max {
            return Ok(Some(line));
        }
    }
}

/// Whether `path` holds the byte `b`. Blocking; reads the file up to it.
fn holds_byte(path: &Path, b: u8) -> std::io::Result<bool> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(false);
        }
        if memchr::memchr(b, &buffer[..n]).is_some() {
            return Ok(true);
        }
    }
}

/// How many blank lines end the file at `path`: the line ends after the end of its last
/// non-blank line (`a\n\n\n` ends in two; `a\n`, `a` and an empty file in none). Reads at most
/// its last 64 KiB.
fn trailing_blank_lines(path: &Path) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let length = file.metadata()?.len();
    let start = length.saturating_sub(64 * 1024);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let content = tail.iter().rposition(|b| !matches!(b, b'\n' | b'\r'));
    if content.is_none() && start == 0 {
        return Ok(0);
    }
    let ends = &tail[content.map_or(0, |i| i + 1)..];
    // Old Mac files end their lines in CR alone.
    let newline = if ends.contains(&b'\n') { b'\n' } else { b'\r' };
    let count = ends.iter().filter(|b| **b == newline).count() as u64;
    Ok(count.saturating_sub(1))
}

/// Whether `path` holds `n` ASCII digits in a row. Blocking; reads the file once.
fn has_digit_run(path: &Path, n: usize) -> std::io::Result<bool> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buffer = vec![0u8; 1 << 20];
    let mut run = 0;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok(false);
        }
        for &b in &buffer[..read] {
            run = if b.is_ascii_digit() { run + 1 } else { 0 };
            if run >= n {
                return Ok(true);
            }
        }
    }
}

/// The columns (name, type) DuckDB reads from `from`, a reader of `source`.
fn describe(conn: &Connection, from: &str, source: &Path) -> Result<Vec<(String, String)>, IngestError> {
    let mut statement =
        conn.prepare(&format!("DESCRIBE SELECT * FROM {from}")).map_err(|e| classify(e, source))?;
    statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .map_err(|e| classify(e, source))
}

/// Whether DuckDB's name of a type is its NULL type (a column with no value to type it by),
/// which `DESCRIBE` quotes: `"NULL"`.
fn is_null_type(ty: &str) -> bool {
    ty.trim_matches('"') == "NULL"
}

/// How to read a Parquet file: as it is, but a column of the NULL type (every value null, as
/// pandas and pyarrow write one) is read as text, as a JSON column of nulls is; and a column
/// of timestamps with a time zone in nanoseconds (as pandas 2 writes them), for which the
/// engine has neither functions nor casts the profile and the Excel download need, is read
/// as microseconds when no value is finer, else as its text (as a JSON file's are). Blocking;
/// reads the footer only, and those columns when there are any.
fn parquet_select(conn: &Connection, kind: &SourceKind, source: &Path) -> Result<String, IngestError> {
    let from = reader(kind, source, false, Quotes::Sniffed, "");
    let columns = describe(conn, &from, source)?;
    let nanoseconds: Vec<&String> =
        columns.iter().filter(|(_, ty)| ty == "TIMESTAMPTZ_NS").map(|(name, _)| name).collect();
    if !columns.iter().any(|(_, ty)| is_null_type(ty)) && nanoseconds.is_empty() {
        return Ok("SELECT *".into());
    }
    // Which of them hold a value finer than microseconds (one scan of those columns).
    let finer: Vec<bool> = if nanoseconds.is_empty() {
        Vec::new()
    } else {
        let tests: Vec<String> = nanoseconds
            .iter()
            .map(|name| {
                format!("coalesce(bool_or(epoch_ns({}) % 1000 <> 0), false)", super::quote_identifier(name))
            })
            .collect();
        let sql = format!("SELECT [{}] FROM {from}", tests.join(", "));
        let found: duckdb::types::Value =
            conn.query_row(&sql, [], |r| r.get(0)).map_err(|e| IngestError::Internal(e.into()))?;
        match found {
            duckdb::types::Value::List(items) => {
                items.into_iter().map(|v| matches!(v, duckdb::types::Value::Boolean(true))).collect()
            }
            _ => vec![true; nanoseconds.len()],
        }
    };
    let select: Vec<String> = columns
        .iter()
        .map(|(name, ty)| {
            let v = super::quote_identifier(name);
            if is_null_type(ty) {
                format!("CAST({v} AS VARCHAR) AS {v}")
            } else if let Some(i) = nanoseconds.iter().position(|n| *n == name) {
                let to = if finer[i] { "VARCHAR" } else { "TIMESTAMPTZ" };
                format!("CAST({v} AS {to}) AS {v}")
            } else {
                v
            }
        })
        .collect();
    Ok(format!("SELECT {}", select.join(", ")))
}

/// Notices for the Parquet file's decimals of more than 38 digits (Arrow's `decimal256`), which
/// DuckDB reads as doubles: their digits past the 16th are not kept. (Best effort: no notice
/// when the schema cannot be read.)
fn wide_decimals(conn: &Connection, source: &Path) -> Vec<String> {
    let sql = format!(
        "SELECT name, precision FROM parquet_schema({}) WHERE precision > 38 ORDER BY name",
        quote_literal(&source.display().to_string())
    );
    let found = conn.prepare(&sql).and_then(|mut statement| {
        statement
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<Result<Vec<_>, _>>()
    });
    found
        .unwrap_or_default()
        .into_iter()
        .map(|(name, digits)| {
            format!(
                "column {name:?} holds decimals of {digits} digits, more than the 38 the engine keeps: they are \
                 read as doubles, exact to about 16 significant digits"
            )
        })
        .collect()
}

/// The notice of a delimited file whose values could not be checked against their types.
const UNCHECKED: &str = "the column types could not be checked on every row: the types come from the first \
     rows, and a later value that does not fit is rounded or truncated to its column's type, or its \
     row rejected";
/// The notice of a file of too many typed columns to check: [`UNCHECKED`]'s reason, after its own.
fn too_many_to_check(typed: usize) -> String {
    let reason = UNCHECKED.split_once(": ").map_or(UNCHECKED, |(_, reason)| reason);
    format!(
        "the file has {typed} typed columns, more than the {} whose every value is checked: {reason}",
        csv_types::MAX_CHECKED_COLUMNS
    )
}

/// What one read of a file left: the connection whose `reject_errors` hold its rejects, and
/// what to tell the user.
struct Read {
    conn: Connection,
    widened: Vec<String>,
    unchecked: Option<String>,
}

impl Read {
    /// Lines rejected (a line may have several errors).
    fn rejected_lines(&self) -> Result<u64, IngestError> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(DISTINCT line) FROM reject_errors", [], |r| r.get(0))
            .context("counting rejected rows")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Whether a line may have been rejected for its quotes: it holds one, or its value is
    /// unterminated (a value running past DuckDB's 32 MB read buffer is reported on the line
    /// before, which need not hold the quote).
    fn quote_trouble(&self) -> bool {
        self.conn
            .query_row(
                "SELECT count(*) > 0 FROM reject_errors \
                 WHERE contains(csv_line, '\"') OR error_type::VARCHAR IN ('UNQUOTED VALUE', 'INVALID STATE')",
                [],
                |r| r.get(0),
            )
            .unwrap_or(true)
    }

    /// How many columns a read into `data` has.
    fn width(&self, data: &Path) -> Result<i64, IngestError> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT count(*) FROM (DESCRIBE SELECT * FROM read_parquet({}))",
                    quote_literal(&data.display().to_string())
                ),
                [],
                |r| r.get(0),
            )
            .context("counting the columns read")?)
    }

    /// How good a read into `data` is: more rows kept, then fewer lines rejected.
    fn outcome(&self, data: &Path) -> Result<(u64, std::cmp::Reverse<u64>), IngestError> {
        let rows: i64 = self
            .conn
            .query_row(
                &format!("SELECT count(*) FROM read_parquet({})", quote_literal(&data.display().to_string())),
                [],
                |r| r.get(0),
            )
            .context("counting the rows read")?;
        Ok((u64::try_from(rows).unwrap_or(0), std::cmp::Reverse(self.rejected_lines()?)))
    }
}

/// The notice of a file whose double quotes are read as text.
const QUOTES_AS_TEXT: &str = "double quotes are read as part of the values: read as quotes (RFC 4180), \
     they do not pair up, and fewer rows were kept";

/// The notice of a file whose double quotes the sniffer read as text from the start.
const QUOTES_KEPT: &str = "double quotes are read as part of the values: the file does not quote its values \
     as RFC 4180 does (`\"Best\" ever`), so a quote is kept as written";

/// Reads `source` and writes `data` (Parquet) and, for delimited text, `rejects` (Parquet:
/// line, column, reason). Blocking: call through `Engine::run`.
pub fn ingest(
    conn: &Connection,
    kind: &SourceKind,
    source: &Path,
    data: &Path,
    rejects: &Path,
) -> Result<Ingested, IngestError> {
    let too_long = |e: &duckdb::Error| e.to_string().contains("Maximum line size");
    // Delimited text: the column types DuckDB sniffs from the first rows, cast strictly
    // (csv_types). When the file cannot be sniffed, the plain read below says why.
    let mut long_lines = false;
    let mut quotes = Quotes::Sniffed;
    let mut sniffed = None;
    let mut unchecked = None;
    let mut decimal_commas = Vec::new();
    let mut decimal_points = Vec::new();
    // RFC 4180's reading of a file the sniffer read without quotes, when it types it otherwise.
    let mut quoted_reading: Option<csv_types::Plan> = None;
    // Excel's `sep=;` first line names the delimiter: it is skipped, and its delimiter used.
    // (DuckDB's sniffer skips it alone, but not its reader that keeps rejects.)
    let excel = match kind {
        SourceKind::Delimited { delimiter, header, text_columns } => {
            excel_separator(source).map(|(sep, lines)| {
                let kind = SourceKind::Delimited {
                    delimiter: delimiter.or(Some(sep)),
                    header: *header,
                    text_columns: text_columns.clone(),
                };
                (lines, kind)
            })
        }
        _ => None,
    };
    // A title above the header ("Sales report 2024", an export's "Generated by …" lines): the
    // sniffer, which skips lines it cannot read, reads past it, but the reader took the title
    // for the header and kept every row aside. Those lines are skipped as Excel's are.
    let titles = match (&excel, kind) {
        (None, SourceKind::Delimited { delimiter, header, .. }) if *header != Some(false) => {
            title_lines(conn, source, *delimiter, *header)
        }
        _ => 0,
    };
    let skip = match &excel {
        Some((lines, _)) => format!(", skip = {lines}"),
        None if titles > 0 => format!(", skip = {titles}"),
        None => String::new(),
    };
    let skip = skip.as_str();
    let kind = excel.as_ref().map_or(kind, |(_, kind)| kind);
    if let SourceKind::Delimited { delimiter, header, text_columns } = kind {
        // DuckDB's reader handles a line of very many values in time quadratic in their number
        // (each extra value re-reads the line), and cannot be interrupted while it sniffs: a
        // 2 MB line of commas held the engine for hours. Such a file is refused first.
        if let Some((line, fields, separator)) =
            widest_line(source, *delimiter).map_err(|e| IngestError::Internal(e.into()))?
        {
            return Err(IngestError::BadInput(format!(
                "line {line} holds {fields} values separated by {:?}; at most {MAX_FIELDS} are read: check the \
                 file's delimiter, or split the table",
                char::from(separator)
            )));
        }
        let path = source.display().to_string();
        let sniff_with = |long_lines, quotes, extra: &str| {
            let options = format!("{}{skip}{extra}", csv_options(*delimiter, *header, long_lines, quotes));
            csv_types::Plan::sniff(conn, &path, &options).map(|plan| plan.with_text(text_columns))
        };
        let sniff = |long_lines, quotes| sniff_with(long_lines, quotes, "");
        let mut plan = match sniff(false, Quotes::Sniffed) {
            Err(e) if too_long(&e) => {
                long_lines = true;
                sniff(true, Quotes::Sniffed)
            }
            plan => plan,
        };
        // DuckDB cannot sniff a file whose lines end in CRLF and LF both (a line appended by
        // another tool): read a copy whose line ends are all LF, once.
        if let Err(e) = &plan
            && e.to_string().contains("Error when sniffing file")
            && source.extension().is_none_or(|x| x != "lf")
            && mixed_line_ends(source).map_err(|e| IngestError::Internal(e.into()))?
        {
            let normalised = data.with_extension("lf");
            let _guard = RemoveOnDrop(normalised.clone());
            crlf_to_lf(source, &normalised).map_err(|e| IngestError::Internal(e.into()))?;
            let mut ingested = ingest(conn, kind, &normalised, data, rejects)?;
            ingested.notices.insert(
                0,
                "the file's lines end in both CRLF and LF: they are read as lines alike (a CRLF inside a \
                 quoted value is read as LF)"
                    .into(),
            );
            return Ok(ingested);
        }
        // No quote in the first rows: RFC 4180's, unless it reads them otherwise (a value
        // like `"Best" ever` there is why the sniffer set none).
        // Otherwise RFC 4180's reading is kept aside: when the sniffer's reading rejects lines
        // for their quotes (a quoted value of many lines longer than DuckDB's 2 MB line, which
        // its sample could not take whole), the file is read again with it (see below).
        if let Ok(unquoted) = &plan
            && !unquoted.quoted
        {
            match sniff(long_lines, Quotes::Rfc4180) {
                Ok(quoted) if quoted.reads_like(unquoted) => {
                    quotes = Quotes::Rfc4180;
                    plan = Ok(quoted);
                }
                // (Sniffed with long lines: a sample cut inside such a value types nothing.)
                _ => quoted_reading = sniff(true, Quotes::Rfc4180).ok(),
            }
        }
        match plan {
            Ok(mut plan) => {
                // Numbers written `2,5` in a semicolon-delimited file (where the comma is the
                // decimal separator: Excel's exports in such locales), as a sniff that reads the
                // comma as the decimal separator types them. Not in other files, where `12,500`
                // more likely separates thousands.
                if plan.delimiter == Some(';')
                    && plan.has_text_columns()
                    && let Ok(comma) = sniff_with(long_lines, quotes, ", decimal_separator = ','")
                {
                    decimal_commas = plan.with_decimal_commas(&comma);
                    decimal_points = plan.with_points_as_text(&comma, &decimal_commas);
                }
                sniffed = Some(plan)
            }
            Err(e) => {
                // The read below fails the same way, or reads what it can: said so.
                tracing::warn!(error = %e, "the file could not be sniffed; reading it unchecked");
                unchecked = Some(UNCHECKED.to_string());
            }
        }
    }
    let mut plan = sniffed.clone().filter(csv_types::Plan::needed);
    if let Some(typed) = plan.as_ref().map(csv_types::Plan::typed)
        && typed > csv_types::MAX_CHECKED_COLUMNS
    {
        plan = None;
        unchecked = Some(too_many_to_check(typed));
    }
    // JSON: how every record says to read it (see `json_columns`).
    let (json_options, json_select, mut json_notices) = match kind {
        SourceKind::JsonArray | SourceKind::JsonLines => json_columns(conn, kind, source)?,
        SourceKind::Parquet => {
            (String::new(), parquet_select(conn, kind, source)?, wide_decimals(conn, source))
        }
        _ => (String::new(), "SELECT *".to_string(), Vec::new()),
    };
    // One read of the file into `target`. Each retry reads on a fresh connection, so that an
    // earlier attempt's rejects do not count twice: once for lines over DuckDB's default
    // 2 MB (allowing MAX_LINE_BYTES), once to widen the columns a value past the sniffed rows
    // did not fit.
    let read = |target: &Path, mut plan: Option<csv_types::Plan>, mut long_lines: bool, quotes: Quotes| {
        let target = quote_literal(&target.display().to_string());
        let copy = |conn: &Connection, long_lines: bool, plan: Option<&csv_types::Plan>| {
            let (select, extra) = match plan {
                Some(plan) => (plan.select(), format!("{skip}{}", plan.reader_options())),
                None => (json_select.clone(), format!("{skip}{json_options}")),
            };
            conn.execute_batch(&format!(
                "COPY ({select} FROM {}) TO {target} ({PARQUET_OPTIONS})",
                reader(kind, source, long_lines, quotes, &extra)
            ))
        };
        let mut widened = Vec::new();
        let mut unchecked = None;
        let mut attempt = conn.try_clone().context("opening a connection")?;
        loop {
            match copy(&attempt, long_lines, plan.as_ref()) {
                // A line over 2 MB after the lines the sniffer read becomes a reject, not an
                // error: read again allowing MAX_LINE_BYTES.
                Ok(())
                    if matches!(kind, SourceKind::Delimited { .. })
                        && !long_lines
                        && attempt
                            .query_row(
                                "SELECT count(*) > 0 FROM reject_errors WHERE error_type = 'LINE SIZE OVER MAXIMUM'",
                                [],
                                |r| r.get::<_, bool>(0),
                            )
                            .unwrap_or(false) =>
                {
                    long_lines = true;
                }
                Ok(()) => break,
                Err(e) if matches!(kind, SourceKind::Delimited { .. }) && !long_lines && too_long(&e) => {
                    long_lines = true;
                }
                // The sniff and the reader disagree on the columns (they should not): read as
                // DuckDB reads, unchecked, rather than fail.
                Err(e) if plan.is_some() && e.to_string().contains("types were provided") => {
                    tracing::warn!(error = %e, "the sniffed columns do not fit the file; reading it unchecked");
                    plan = None;
                    unchecked = Some(UNCHECKED.to_string());
                }
                // Widened again when a retry reads lines the check did not (a long line): each
                // time some column widens (Typed → DOUBLE → text), so this ends.
                Err(e) if e.to_string().contains(csv_types::STRICT_CAST_FAILED) => {
                    let Some(plan) = plan.as_mut() else { return Err(classify(e, source)) };
                    let check = conn.try_clone().context("opening a connection")?;
                    let from = reader(kind, source, long_lines, quotes, &format!("{skip}{}", plan.reader_options()));
                    let more = plan.widen(&check, &from).map_err(|e| classify(e, source))?;
                    if more.is_empty() {
                        // Every value held its type after all: nothing to widen, so the error
                        // was not a value's; say so rather than loop.
                        return Err(IngestError::Internal(anyhow::anyhow!(
                            "a strict cast failed, but every value holds its column's type"
                        )));
                    }
                    widened.extend(more);
                }
                Err(e) => return Err(classify(e, source)),
            }
            attempt = conn.try_clone().context("opening a connection")?;
        }
        Ok::<_, IngestError>((Read { conn: attempt, widened, unchecked }, long_lines))
    };
    // Quotes read as RFC 4180 says, which the first rows did not show, may pair up wrongly
    // later (`"Best" ever`, a lone `"open`): an unterminated value swallows the lines after
    // it, up to the end of DuckDB's buffer, into one reject. When the quoted read failed or
    // may have rejected a line for its quotes, the file is read again with the sniffer's
    // reading (none), and the read that keeps more rows (then rejects fewer lines) is kept;
    // the quoted one on a tie.
    // The other way round too: when the sniffer's reading (no quotes) rejected lines that
    // hold one, and RFC 4180's reading types the file otherwise, that reading is tried, and the
    // one that keeps more rows kept (a quoted value of many lines read as a value, not as
    // thousands of rejected lines).
    let first = read(data, plan.clone(), long_lines, quotes);
    let first = match (first, quoted_reading) {
        (Ok(first), Some(quoted_plan)) if quotes == Quotes::Sniffed && first.0.quote_trouble() => {
            let quoted = data.with_extension("quoted.parquet");
            let _guard = RemoveOnDrop(quoted.clone());
            // (With long lines: such a value is likely what the sniffer's sample could not take.)
            match read(&quoted, Some(quoted_plan), true, Quotes::Rfc4180) {
                // (As many columns: a reading that found one column, `a,b`, keeps every line.)
                Ok(other)
                    if other.0.width(&quoted)? == first.0.width(data)?
                        && other.0.outcome(&quoted)? > first.0.outcome(data)? =>
                {
                    std::fs::rename(&quoted, data).context("keeping the read with quotes")?;
                    quotes = Quotes::Rfc4180;
                    Ok(other)
                }
                _ => Ok(first),
            }
        }
        (first, _) => first,
    };
    let (mut done, _) = match first {
        Ok(first) if quotes != Quotes::Rfc4180 || !first.0.quote_trouble() => first,
        first => {
            let unquoted = data.with_extension("unquoted.parquet");
            let long_lines = first.as_ref().map_or(long_lines, |(_, long_lines)| *long_lines);
            let other = read(&unquoted, plan, long_lines, Quotes::Sniffed);
            let better = match (&first, &other) {
                (Err(_), Ok(_)) => true,
                (Ok((quoted, _)), Ok((unquoted_read, _))) => {
                    unquoted_read.outcome(&unquoted)? > quoted.outcome(data)?
                }
                _ => false,
            };
            if better && let Ok((mut other, long_lines)) = other {
                std::fs::rename(&unquoted, data).context("keeping the read without quotes")?;
                other.widened.push(QUOTES_AS_TEXT.into());
                (other, long_lines)
            } else {
                if let Err(e) = &other {
                    tracing::warn!(error = ?e, "reading the file without quotes failed; keeping its quoted read");
                }
                let _ = std::fs::remove_file(&unquoted);
                first?
            }
        }
    };
    // Read without quotes as the sniffer found, from a file that holds some: said so.
    if matches!(kind, SourceKind::Delimited { .. })
        && quotes == Quotes::Sniffed
        && sniffed.as_ref().is_some_and(|p| !p.quoted)
        && holds_byte(source, b'"').context("looking for quotes")?
    {
        done.widened.push(QUOTES_KEPT.into());
    }
    let conn = &done.conn;
    let data_literal = quote_literal(&data.display().to_string());

    let mut columns = Vec::new();
    let mut describe = conn
        .prepare(&format!("DESCRIBE SELECT * FROM read_parquet({data_literal})"))
        .context("describing the ingested data")?;
    let mut rows = describe.query([]).context("describing the ingested data")?;
    while let Some(row) = rows.next().context("describing the ingested data")? {
        columns.push(ColumnInfo {
            name: row.get(0).context("column name")?,
            data_type: row.get(1).context("column type")?,
        });
    }
    let mut row_count: i64 = conn
        .query_row(&format!("SELECT count(*) FROM read_parquet({data_literal})"), [], |r| r.get(0))
        .context("counting ingested rows")?;
    // DuckDB skips a blank line of a file of several columns, but reads one of a file of one
    // column as a missing value. Inside the file it may be one (a sheet's empty cell); the
    // blank lines after the last value are not rows.
    if let ([column], SourceKind::Delimited { .. }) = (columns.as_slice(), kind) {
        let blank = trailing_blank_lines(source).context("reading the file's end")?;
        let keep = row_count - i64::try_from(blank).unwrap_or(i64::MAX).min(row_count);
        if blank > 0
            && conn
                .query_row(
                    &format!(
                        "SELECT count(*) = 0 FROM (SELECT * FROM read_parquet({data_literal}) OFFSET {keep}) \
                         WHERE {} IS NOT NULL",
                        super::quote_identifier(&column.name)
                    ),
                    [],
                    |r| r.get::<_, bool>(0),
                )
                .context("reading the last rows")?
        {
            let trimmed = data.with_extension("trimmed.parquet");
            let _guard = RemoveOnDrop(trimmed.clone());
            conn.execute_batch(&format!(
                "COPY (SELECT * FROM read_parquet({data_literal}) LIMIT {keep}) TO {} ({PARQUET_OPTIONS})",
                quote_literal(&trimmed.display().to_string())
            ))
            .context("leaving out the blank lines at the end")?;
            std::fs::rename(&trimmed, data).context("leaving out the blank lines at the end")?;
            row_count = keep;
        }
    }

    let mut notices = match kind {
        SourceKind::Delimited { delimiter, .. } => {
            header_notices(source, delimiter.or(sniffed.as_ref().and_then(|s| s.delimiter)), titles, &columns)
        }
        SourceKind::Parquet => {
            parquet_names(conn, source).map(|names| renamed_notices(&names, &columns)).unwrap_or_default()
        }
        _ => Vec::new(),
    };
    // Dates not written as ISO's: which way round they were read.
    if let Some(plan) = &sniffed {
        notices.extend(columns.iter().filter_map(|c| {
            plan.date_reading(&c.data_type)
                .map(|reading| format!("column {:?} holds dates {reading}", c.name))
        }));
    }
    notices.extend(decimal_points.iter().map(|name| {
        format!(
            "column {name:?} holds numbers with a point in a file whose decimals are written with a comma: \
             read as text, since the point may separate thousands (1.234)"
        )
    }));
    // (Those of them a later value did not widen to text.)
    notices.extend(
        decimal_commas
            .iter()
            .filter(|name| columns.iter().any(|c| &c.name == *name && c.data_type == "DOUBLE"))
            .map(|name| format!("column {name:?} holds numbers written with a decimal comma (2,5): they are read as numbers")),
    );
    notices.append(&mut json_notices);
    notices.append(&mut done.widened);
    notices.extend(unchecked.or(done.unchecked.take()));
    let rejected_row_count = if let SourceKind::Delimited { .. } = kind {
        // DuckDB numbers a reject by records; a user looks for it by line, which differs
        // after a quoted value spanning lines.
        // A file of old Mac line ends (CR alone) has no LF to count.
        let newline = match sniffed.as_ref().and_then(|s| s.newline.as_deref()) {
            Some("\\r") => b'\r',
            _ => b'\n',
        };
        let lines = reject_lines(conn, source, newline)?;
        let rejects_literal = quote_literal(&rejects.display().to_string());
        // One reject per error, except that DuckDB reports a line with too many values once per
        // extra value ("Found: 4", "Found: 5"): only the last, which counts them all, is kept;
        // and a line with too few once per missing value ("Found: 2", "Found: 3" of a line of
        // two): only the first, which counts the line's values, is kept.
        conn.execute_batch(&format!(
            "COPY (SELECT p.physical::UBIGINT AS line, e.column_name::VARCHAR AS column_name, \
                    coalesce(e.error_message, e.error_type::VARCHAR) AS reason \
             FROM reject_errors e JOIN (SELECT DISTINCT line, physical FROM ({lines})) p ON p.line = e.line \
             QUALIFY e.error_type::VARCHAR NOT IN ('TOO MANY COLUMNS', 'MISSING COLUMNS') \
                  OR row_number() OVER (PARTITION BY e.line, e.error_type ORDER BY \
                         CASE WHEN e.error_type::VARCHAR = 'TOO MANY COLUMNS' THEN e.column_idx END DESC, \
                         e.column_idx) = 1 \
             ORDER BY p.physical, e.column_idx) TO {rejects_literal} ({PARQUET_OPTIONS})"
        ))
        .context("saving rejected rows")?;
        done.rejected_lines()?
    } else {
        0
    };
    // Most lines set aside: the reading is likely wrong (a title or footer taken for the header,
    // the wrong delimiter) rather than the data.
    let row_count = u64::try_from(row_count).unwrap_or(0);
    if rejected_row_count > row_count {
        notices.push(format!(
            "{rejected_row_count} of the file's {} rows were set aside (see rejects): check the delimiter, \
             and that the header is the file's first line or give header: false",
            rejected_row_count + row_count
        ));
    }
    Ok(Ingested { columns, row_count, rejected_row_count, notices })
}

/// A query of each rejected record's `line` (DuckDB's record number) and `physical` line in
/// `source` (1 + the `newline` bytes before the record's first byte, and never less than the
/// record number: DuckDB reports a value running past its read buffer on the line before),
/// when some differ: a temporary table `agensium_reject_lines` is made then. Reads `source` up
/// to the last reject.
fn reject_lines(conn: &Connection, source: &Path, newline: u8) -> Result<String, IngestError> {
    let same = "SELECT line, line AS physical FROM reject_errors".to_string();
    let mut records: Vec<(i64, i64)> = conn
        .prepare(
            "SELECT line::BIGINT, min(line_byte_position)::BIGINT FROM reject_errors \
             WHERE line_byte_position IS NOT NULL GROUP BY line ORDER BY 2",
        )
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .context("reading the rejects' positions")?;
    if records.is_empty() {
        return Ok(same);
    }
    let positions: Vec<u64> = records.iter().map(|(_, at)| u64::try_from(*at).unwrap_or(0)).collect();
    let physical: Vec<u64> = physical_lines(source, &positions, newline)
        .context("counting the lines before the rejects")?
        .into_iter()
        .zip(&records)
        .map(|(p, (line, _))| p.max(u64::try_from(*line).unwrap_or(0)))
        .collect();
    if records.iter().zip(&physical).all(|((line, _), p)| u64::try_from(*line).ok() == Some(*p)) {
        return Ok(same);
    }
    for (record, p) in records.iter_mut().zip(physical) {
        record.1 = i64::try_from(p).unwrap_or(i64::MAX);
    }
    conn.execute_batch("CREATE OR REPLACE TEMP TABLE agensium_reject_lines (line BIGINT, physical BIGINT)")
        .context("recording the rejects' lines")?;
    let mut appender = conn.appender("agensium_reject_lines").context("recording the rejects' lines")?;
    for (line, p) in &records {
        appender.append_row(duckdb::params![line, p]).context("recording the rejects' lines")?;
    }
    appender.flush().context("recording the rejects' lines")?;
    // A reject DuckDB gave no position keeps its record number.
    Ok("SELECT e.line, coalesce(p.physical, e.line) AS physical FROM reject_errors e \
        LEFT JOIN agensium_reject_lines p ON p.line = e.line"
        .to_string())
}

/// For each byte offset of `positions` (ascending), 1 + the `newline` bytes of `source` before
/// it.
fn physical_lines(source: &Path, positions: &[u64], newline: u8) -> std::io::Result<Vec<u64>> {
    use std::io::Read;
    let mut file = std::fs::File::open(source)?;
    let mut buffer = vec![0u8; 1 << 20];
    let mut out = Vec::with_capacity(positions.len());
    let (mut offset, mut newlines) = (0u64, 0u64);
    let mut next = positions.iter().copied().peekable();
    while next.peek().is_some() {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            // Past the end: after every newline.
            out.extend(next.by_ref().map(|_| newlines + 1));
            break;
        }
        let chunk = &buffer[..n];
        let mut counted = 0;
        while let Some(at) = next.next_if(|at| *at < offset + n as u64) {
            let upto = usize::try_from(at.saturating_sub(offset)).unwrap_or(n).max(counted);
            newlines += memchr::memchr_iter(newline, &chunk[counted..upto]).count() as u64;
            counted = upto;
            out.push(newlines + 1);
        }
        newlines += memchr::memchr_iter(newline, &chunk[counted..]).count() as u64;
        offset += n as u64;
    }
    Ok(out)
}

/// Compares the file's header line with the names DuckDB gave the columns (it makes
/// duplicates unique and names empty ones), and says what changed. Best effort: when the
/// file cannot be sniffed or read here, there is nothing to say.
fn header_notices(
    source: &Path,
    delimiter: Option<char>,
    titles: usize,
    columns: &[ColumnInfo],
) -> Vec<String> {
    // DuckDB names the columns of a file without a header row column0, column1, …
    if columns.iter().enumerate().all(|(i, c)| c.name == format!("column{i}")) {
        return vec![
            "the file has no header row: its columns are named column0, column1, … (when its first row \
             holds the names, read it with header: true)"
                .into(),
        ];
    }
    let Some(delimiter) = delimiter else { return Vec::new() };
    let Some(header) = first_line(source, titles) else { return Vec::new() };
    let mut notices = renamed_notices(&split_header(&header, delimiter), columns);
    if titles > 0 {
        let what = if titles == 1 {
            "line above the header row was".to_string()
        } else {
            format!("{titles} lines above the header row were")
        };
        notices.insert(0, format!("the {what} skipped as a title"));
    }
    notices
}

/// What DuckDB changed of the names a file gives its columns (`originals`), one notice per
/// column renamed; nothing when the two do not line up.
fn renamed_notices(originals: &[String], columns: &[ColumnInfo]) -> Vec<String> {
    if originals.len() != columns.len() {
        return Vec::new();
    }
    originals
        .iter()
        .zip(columns)
        .enumerate()
        .filter(|(_, (original, column))| original.as_str() != column.name)
        .map(|(i, (original, column))| {
            if original.trim().is_empty() {
                format!("column {} had no name; it is called {}", i + 1, column.name)
            } else if original.trim() == column.name {
                format!("column {} is named {original:?}; the spaces around it are dropped", i + 1)
            } else {
                format!(
                    "column {} is named {original:?} like another column; it is called {}",
                    i + 1,
                    column.name
                )
            }
        })
        .collect()
}

/// The names a Parquet file gives its top-level columns, from its schema (depth first: the
/// root, then each column followed by its nested fields). Best effort, as `header_notices`.
fn parquet_names(conn: &Connection, source: &Path) -> Option<Vec<String>> {
    let sql = format!(
        "SELECT name, coalesce(num_children, 0) FROM parquet_schema({})",
        super::quote_literal(&source.display().to_string())
    );
    let mut statement = conn.prepare(&sql).ok()?;
    let elements: Vec<(String, i64)> =
        statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).ok()?.collect::<duckdb::Result<_>>().ok()?;
    // The index after element `at` and its descendants.
    fn skip(elements: &[(String, i64)], at: usize) -> Option<usize> {
        let (_, children) = elements.get(at)?;
        (0..*children).try_fold(at + 1, |next, _| skip(elements, next))
    }
    let (_, top) = elements.first()?;
    let mut names = Vec::new();
    let mut at = 1;
    for _ in 0..*top {
        names.push(elements.get(at)?.0.clone());
        at = skip(&elements, at)?;
    }
    Some(names)
}

/// Deletes a file when dropped (a scratch copy).
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Whether `path` has lines ending in CRLF and lines ending in a bare LF. Reads it once.
fn mixed_line_ends(path: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buffer = vec![0u8; 1 << 20];
    let (mut crlf, mut lf, mut last) = (false, false, 0u8);
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(false);
        }
        for at in memchr::memchr_iter(b'\n', &buffer[..n]) {
            let before = if at == 0 { last } else { buffer[at - 1] };
            if before == b'\r' {
                crlf = true
            } else {
                lf = true
            }
            if crlf && lf {
                return Ok(true);
            }
        }
        last = buffer[n - 1];
    }
}

/// The most values a line of delimited text may hold.
pub(crate) const MAX_FIELDS: u64 = 10_000;
/// The delimiters DuckDB's sniffer tries.
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// The first line of `path` (1-based) holding more than [`MAX_FIELDS`] values of one delimiter
/// (`delimiter`, or any DuckDB tries), with that number and delimiter. Only lines longer than
/// `MAX_FIELDS` bytes can; they are found with one fast pass for line ends, then counted.
fn widest_line(path: &Path, delimiter: Option<char>) -> std::io::Result<Option<(u64, u64, u8)>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buffer = vec![0u8; 1 << 20];
    // (line number, first byte, end byte) of each long line.
    let mut long = Vec::new();
    let (mut offset, mut start, mut line, mut last) = (0u64, 0u64, 1u64, 0u8);
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        for at in memchr::memchr2_iter(b'\n', b'\r', &buffer[..n]) {
            let end = offset + at as u64;
            if end - start > MAX_FIELDS {
                long.push((line, start, end));
            }
            // (A CRLF ends one line.)
            let before = if at == 0 { last } else { buffer[at - 1] };
            if !(buffer[at] == b'\n' && before == b'\r') {
                line += 1;
            }
            start = end + 1;
        }
        last = buffer[n - 1];
        offset += n as u64;
    }
    if offset - start > MAX_FIELDS {
        long.push((line, start, offset));
    }
    for (line, start, end) in long {
        let (separator, fields) = most_fields(path, start, end, delimiter)?;
        if fields > MAX_FIELDS {
            return Ok(Some((line, fields, separator)));
        }
    }
    Ok(None)
}

/// The delimiter that splits the bytes `start..end` of `path` into the most values, and that
/// number of values.
fn most_fields(path: &Path, start: u64, end: u64, delimiter: Option<char>) -> std::io::Result<(u8, u64)> {
    use std::io::{Read, Seek};
    let candidates: Vec<u8> = match delimiter.and_then(|d| u8::try_from(d).ok()) {
        Some(d) => vec![d],
        None => DELIMITERS.to_vec(),
    };
    let mut counts = vec![0u64; candidates.len()];
    let mut file = std::fs::File::open(path)?;
    file.seek(std::io::SeekFrom::Start(start))?;
    let mut rest = file.take(end - start);
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = rest.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        for (count, d) in counts.iter_mut().zip(&candidates) {
            *count += memchr::memchr_iter(*d, &buffer[..n]).count() as u64;
        }
    }
    let (i, most) = counts.iter().enumerate().max_by_key(|(_, c)| **c).unwrap_or((0, &0));
    Ok((candidates.get(i).copied().unwrap_or(b','), most + 1))
}

/// Copies `from` to `to` with every CRLF written as LF. Streams.
fn crlf_to_lf(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let mut input = std::fs::File::open(from)?;
    let mut output = std::io::BufWriter::new(std::fs::File::create(to)?);
    let mut buffer = vec![0u8; 1 << 20];
    // A CR at the end of one buffer, held back until the next byte shows what it ends.
    let mut pending_cr = false;
    loop {
        let n = input.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        let mut chunk = &buffer[..n];
        if pending_cr {
            if chunk[0] != b'\n' {
                output.write_all(b"\r")?;
            }
            pending_cr = false;
        }
        if chunk.last() == Some(&b'\r') {
            pending_cr = true;
            chunk = &chunk[..chunk.len() - 1];
        }
        let mut start = 0;
        for at in memchr::memmem::find_iter(chunk, b"\r\n") {
            output.write_all(&chunk[start..at])?;
            start = at + 1;
        }
        output.write_all(&chunk[start..])?;
    }
    if pending_cr {
        output.write_all(b"\r")?;
    }
    output.flush()
}

/// The lines of the start of a delimited file: ended by LF or CRLF, or by CR alone in a file
/// without LF (Excel for Mac's "CSV (Macintosh)").
fn lines_of(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let end = if bytes.contains(&b'\n') { b'\n' } else { b'\r' };
    bytes.split(move |b| *b == end).map(|line| line.strip_suffix(b"\r").unwrap_or(line))
}

/// The delimiter Excel's first line `sep=;` names, if the file starts with one.
fn excel_separator(source: &Path) -> Option<(char, usize)> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(source).ok()?.take(64 * 1024).read_to_end(&mut bytes).ok()?;
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(&bytes);
    let mut lines = lines_of(bytes);
    let first = lines.next()?;
    let sep = match first {
        [s, e, p, b'=', sep] if [s, e, p].map(u8::to_ascii_lowercase) == *b"sep" => *sep,
        _ => return None,
    };
    if !sep.is_ascii() || sep.is_ascii_alphanumeric() || sep.is_ascii_whitespace() && sep != b'\t' {
        return None;
    }
    // Blank lines after it are skipped too: the header follows them.
    let blank = lines.take_while(|line| line.iter().all(u8::is_ascii_whitespace)).count();
    Some((sep as char, 1 + blank))
}

/// The file's header line: its first, or its second after Excel's `sep=;` line (which names
/// the delimiter, and which DuckDB's sniffer skips), after `titles` lines of title.
fn first_line(source: &Path, titles: usize) -> Option<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(source).ok()?.take(1 << 20).read_to_end(&mut bytes).ok()?;
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(&bytes);
    let mut lines = lines_of(bytes);
    let mut line = lines.next()?;
    if line.len() == 5 && line[..4].eq_ignore_ascii_case(b"sep=") {
        line = lines.next()?;
        while line.iter().all(u8::is_ascii_whitespace) {
            line = lines.next()?;
        }
    }
    for _ in 0..titles {
        line = lines.next()?;
    }
    Some(String::from_utf8_lossy(line).into_owned())
}

/// Splits a header line on `delimiter`, honouring double quotes.
fn split_header(line: &str, delimiter: char) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    // A quote opens a quoted value only where a value starts: `say "hi"` is read as written.
    let mut at_start = true;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                if let Some(f) = fields.last_mut() {
                    f.push('"');
                }
            }
            '"' if quoted => quoted = false,
            '"' if at_start => {
                quoted = true;
                at_start = false;
            }
            c if c == delimiter && !quoted => {
                fields.push(String::new());
                at_start = true;
            }
            c => {
                at_start = false;
                if let Some(f) = fields.last_mut() {
                    f.push(c);
                }
            }
        }
    }
    fields
}

/// How many lines of title come before a delimited file's header ("Sales report 2024", an
/// export's "Generated by …" lines): lines (blank ones too) each holding fewer values than the
/// header, above the first line that holds
/// more values than the file's first, when most rows below hold as many as it, and DuckDB's
/// sniffer, told to skip the title, finds that line's values as the column names above rows
/// of which some column is not text (a header among text rows cannot be told from a row: a
/// header one value short, as R writes row names, would be lost). 0 for most files, told
/// apart on their first lines before anything is sniffed: their first line holds as many
/// values as the lines below it. The delimiter is the one given, else the one of the
/// candidates that makes the most columns.
fn title_lines(conn: &Connection, source: &Path, delimiter: Option<char>, header: Option<bool>) -> usize {
    use std::io::Read;
    const LOOK: usize = 20;
    let mut bytes = Vec::new();
    if std::fs::File::open(source).and_then(|f| f.take(64 * 1024).read_to_end(&mut bytes)).is_err() {
        return 0;
    }
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(&bytes);
    // The file's lines as the reader counts them (a line cut at 64 KB is not looked at).
    let texts: Vec<std::borrow::Cow<'_, str>> =
        lines_of(bytes).take(LOOK).map(String::from_utf8_lossy).collect();
    let mut lines: Vec<&str> = texts.iter().map(|l| l.as_ref()).collect();
    if bytes.len() == 64 * 1024 {
        lines.pop();
    }
    let Some(first) = lines.first() else { return 0 };
    let count = |line: &str, d: char| split_header(line, d).len();
    let candidates: Vec<char> = delimiter.map_or_else(|| vec![',', ';', '\t', '|'], |d| vec![d]);
    // (Cheap first: some line holds more values than the first, by some delimiter.)
    let mut found: Vec<(usize, char, Vec<String>)> = candidates
        .into_iter()
        .filter_map(|d| {
            let at = lines.iter().position(|l| count(l, d) > count(first, d))?;
            let names = split_header(lines[at], d);
            let rows: Vec<&&str> = lines[at + 1..].iter().filter(|l| !l.trim().is_empty()).collect();
            let alike = rows.iter().filter(|l| count(l, d) == names.len()).count();
            // (Compared without trailing empty values: `a,b,c,` is as wide as `a,b,c` above it,
            // which is then the header, not a title.)
            let width = |line: &str| {
                let values = split_header(line, d);
                values.len() - values.iter().rev().take_while(|v| v.trim().is_empty()).count()
            };
            let titled = names.len() >= 2
                && lines[..at].iter().all(|l| width(l) < width(lines[at]))
                && alike * 2 > rows.len();
            titled.then_some((at, d, names))
        })
        .collect();
    found.sort_by_key(|(_, _, names)| std::cmp::Reverse(names.len()));
    let path = source.display().to_string();
    for (at, d, names) in found {
        let options = format!("{}, skip = {at}", csv_options(Some(d), header, false, Quotes::Sniffed));
        if let Ok(plan) = csv_types::Plan::sniff(conn, &path, &options)
            && plan.has_typed_columns()
            && plan.names().len() == names.len()
            // (An empty name, as a trailing delimiter leaves, is one DuckDB names `column3`.)
            && plan.names().iter().zip(&names).all(|(n, v)| v.trim().is_empty() || n.trim() == v.trim())
        {
            return at;
        }
    }
    0
}

/// Rows `offset..offset+limit` of a Parquet file, each as a JSON object in column order.
pub fn preview(
    conn: &Connection,
    data: &Path,
    limit: u64,
    offset: u64,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let source = format!("read_parquet({})", quote_literal(&data.display().to_string()));
    // Each value on its own, keyed by its column's name: a row alias (`to_json(t)`) would
    // be shadowed by a column named like it.
    let mut described = conn.prepare(&format!("DESCRIBE SELECT * FROM {source}"))?;
    let described: Vec<(String, String)> =
        described.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    if described.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = described.iter().map(|(n, _)| n.clone()).collect();
    // Numbers a JSON number (read as a double) would round are given as their text.
    let as_text: Vec<&str> =
        described.iter().filter(|(_, ty)| beyond_double(ty)).map(|(n, _)| n.as_str()).collect();
    // Nested ones keep their shape, with such numbers quoted (`non_finite_as_text`); so do
    // 64-bit integers, whose values beyond 2^53 a JavaScript client would round.
    let nested_wide: HashSet<&String> = described
        .iter()
        .filter(|(_, ty)| {
            (!beyond_double(ty) && nested_beyond_double(ty))
                || ["BIGINT", "UBIGINT"].iter().any(|t| ty.contains(t))
        })
        .map(|(n, _)| n)
        .collect();
    // A row of DuckDB's is at most one block (256 KB) wide: a very wide table is read
    // PREVIEW_COLUMNS columns at a time, each batch over the same rows (the scan keeps
    // the file's order).
    let mut out: Vec<serde_json::Map<String, serde_json::Value>> = Vec::new();
    for batch in names.chunks(PREVIEW_COLUMNS) {
        let columns = batch
            .iter()
            .map(|n| {
                let q = super::quote_identifier(n);
                if as_text.contains(&n.as_str()) { format!("CAST({q} AS VARCHAR) AS {q}") } else { q }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT to_json(COLUMNS(*))::VARCHAR FROM (SELECT {columns} FROM {source} LIMIT {limit} OFFSET {offset})"
        );
        let mut statement = conn.prepare(&sql)?;
        let mut rows = statement.query([])?;
        let mut r = 0;
        while let Some(row) = rows.next()? {
            if out.len() <= r {
                out.push(serde_json::Map::with_capacity(names.len()));
            }
            for (i, name) in batch.iter().enumerate() {
                let value = match row.get::<_, Option<String>>(i)? {
                    Some(json) => {
                        serde_json::from_str(&non_finite_as_text(&json, nested_wide.contains(name)))?
                    }
                    None => serde_json::Value::Null,
                };
                out[r].insert(name.clone(), value);
            }
            r += 1;
        }
    }
    Ok(out.into_iter().map(serde_json::Value::Object).collect())
}

/// Whether values of a DuckDB type can have more significant digits than a double holds:
/// decimals of more than 15 digits (`DECIMAL(38,0)`, `DECIMAL(18,2)`). (A Parquet copy holds
/// no 128-bit integers: DuckDB writes them as doubles.)
fn beyond_double(ty: &str) -> bool {
    let ty = ty.to_ascii_uppercase();
    // A DECIMAL itself, not a list of them (`DECIMAL(20,2)[]`: see `nested_beyond_double`).
    ty.ends_with(')') && decimal_width(&ty).is_some_and(|width| width > 15)
}

/// The width of the DECIMAL type `ty` starts with (upper case).
fn decimal_width(ty: &str) -> Option<u32> {
    ty.strip_prefix("DECIMAL(")?.split(',').next()?.trim().parse::<u32>().ok()
}

/// How many columns a preview reads in one query (see [`preview`]).
const PREVIEW_COLUMNS: usize = 1000;

/// DuckDB's `to_json` writes a floating-point NaN or infinity as the bare token `NaN`,
/// `Infinity` or `-Infinity`, which JSON does not have: this quotes each such token outside
/// strings (at any depth), so the value reaches the client as that text. With `wide` (a nested
/// column holding wide decimals or 128-bit integers, which serde_json would read as doubles),
/// it also quotes each number a double would not keep exactly: more than 15 significant
/// digits with a fraction or exponent, or an integer beyond 64 bits.
fn non_finite_as_text(json: &str, wide: bool) -> std::borrow::Cow<'_, str> {
    const TOKENS: [&str; 3] = ["-Infinity", "Infinity", "NaN"];
    if !wide && !TOKENS.iter().any(|t| json.contains(t)) {
        return json.into();
    }
    let mut out = String::with_capacity(json.len() + 8);
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = json;
    while let Some(c) = rest.chars().next() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if let Some(token) = TOKENS.iter().find(|t| rest.starts_with(*t)) {
            out.push('"');
            out.push_str(token);
            out.push('"');
            rest = &rest[token.len()..];
            continue;
        } else if wide && (c == '-' || c.is_ascii_digit()) {
            let end = rest
                .find(|c: char| !matches!(c, '0'..='9' | '-' | '+' | '.' | 'e' | 'E'))
                .unwrap_or(rest.len());
            let number = &rest[..end];
            if exact_as_double(number) {
                out.push_str(number);
            } else {
                out.push('"');
                out.push_str(number);
                out.push('"');
            }
            rest = &rest[end..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out.into()
}

/// Whether a client reads the JSON number `number` without changing it: an integer a double
/// holds exactly (at most 2^53 in magnitude: JavaScript reads every JSON number as a double),
/// or a number of at most 15 significant digits.
fn exact_as_double(number: &str) -> bool {
    if !number.contains(['.', 'e', 'E']) {
        return number.parse::<i64>().is_ok_and(|n| n.unsigned_abs() <= 1 << 53);
    }
    let mantissa = number.split(['e', 'E']).next().unwrap_or(number);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_start_matches('0');
    let digits = if mantissa.contains('.') { digits.trim_end_matches('0') } else { digits };
    digits.len() <= 15
}

/// Whether a nested column of type `ty` (DuckDB's name) holds numbers serde_json would round:
/// a DECIMAL wider than 15 digits, or a 128-bit integer, anywhere in it.
fn nested_beyond_double(ty: &str) -> bool {
    let ty = ty.to_ascii_uppercase();
    holds_hugeint(&ty)
        || ty.match_indices("DECIMAL(").any(|(at, _)| decimal_width(&ty[at..]).is_some_and(|w| w > 15))
}

/// Writes a Parquet file out as CSV with a header row.
pub fn export_csv(conn: &Connection, data: &Path, out: &Path) -> anyhow::Result<()> {
    conn.execute_batch(&format!(
        "COPY (SELECT * FROM read_parquet({})) TO {} (FORMAT csv, HEADER true)",
        quote_literal(&data.display().to_string()),
        quote_literal(&out.display().to_string())
    ))?;
    Ok(())
}

/// One cell of an exported row, typed for spreadsheet writers.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Number(f64),
    Bool(bool),
    /// `YYYY-MM-DD`
    Date(String),
    /// `YYYY-MM-DDTHH:MM:SS[.fff]`
    Timestamp(String),
    Text(String),
}

#[derive(Clone, Copy)]
enum CellKind {
    Number,
    /// A 64- or 128-bit integer: a number when a DOUBLE holds it exactly (|x| ≤ 2⁵³), else
    /// its digits as text, which a spreadsheet would otherwise round.
    WideInteger,
    /// A DECIMAL wider than 15 digits: a number when a DOUBLE holds it to its scale
    /// (`1.50`), else its digits as text (`12345678901234567.89` would be rounded).
    WideDecimal,
    Bool,
    Date,
    Timestamp,
    Text,
}

fn cell_kind(duckdb_type: &str) -> CellKind {
    let t = duckdb_type.to_ascii_uppercase();
    if t.ends_with(']') {
        // A list or array (`DECIMAL(9,2)[]`) is written as its text.
        CellKind::Text
    } else if ["BIGINT", "HUGEINT", "UBIGINT", "UHUGEINT"].contains(&t.as_str()) {
        CellKind::WideInteger
    } else if beyond_double(&t) {
        CellKind::WideDecimal
    } else if ["TINYINT", "SMALLINT", "INTEGER", "UTINYINT", "USMALLINT", "UINTEGER", "FLOAT", "DOUBLE"]
        .contains(&t.as_str())
        || t.starts_with("DECIMAL")
    {
        CellKind::Number
    } else if t == "BOOLEAN" {
        CellKind::Bool
    } else if t == "DATE" {
        CellKind::Date
    } else if t.starts_with("TIMESTAMP") {
        CellKind::Timestamp
    } else {
        CellKind::Text
    }
}

/// Streams the rows of a Parquet file as typed cells, in column order, to `sink`.
/// Column names go through [`super::quote_identifier`]: they come from users' files.
pub fn for_each_row(
    conn: &Connection,
    data: &Path,
    columns: &[ColumnInfo],
    mut sink: impl FnMut(&[Cell]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let kinds: Vec<CellKind> = columns.iter().map(|c| cell_kind(&c.data_type)).collect();
    let select: Vec<String> = columns
        .iter()
        .zip(&kinds)
        .map(|(c, kind)| {
            let name = super::quote_identifier(&c.name);
            match kind {
                CellKind::Number => format!("CAST({name} AS DOUBLE)"),
                CellKind::Bool => name,
                CellKind::WideInteger | CellKind::WideDecimal => format!("CAST({name} AS VARCHAR)"),
                CellKind::Date => format!("strftime({name}, '%Y-%m-%d')"),
                CellKind::Timestamp => format!("strftime(CAST({name} AS TIMESTAMP), '%Y-%m-%dT%H:%M:%S.%g')"),
                CellKind::Text => format!("CAST({name} AS VARCHAR)"),
            }
        })
        .collect();
    let sql = format!(
        "SELECT {} FROM read_parquet({})",
        select.join(", "),
        quote_literal(&data.display().to_string())
    );
    let mut statement = conn.prepare(&sql)?;
    let mut rows = statement.query([])?;
    let mut cells = Vec::with_capacity(columns.len());
    while let Some(row) = rows.next()? {
        cells.clear();
        for (i, kind) in kinds.iter().enumerate() {
            let cell = match kind {
                CellKind::Number => row.get::<_, Option<f64>>(i)?.map(Cell::Number),
                CellKind::Bool => row.get::<_, Option<bool>>(i)?.map(Cell::Bool),
                CellKind::WideInteger => row.get::<_, Option<String>>(i)?.map(|digits| {
                    const EXACT: i128 = 1 << 53;
                    match digits.parse::<i128>() {
                        Ok(x) if (-EXACT..=EXACT).contains(&x) => Cell::Number(x as f64),
                        _ => Cell::Text(digits),
                    }
                }),
                CellKind::WideDecimal => row.get::<_, Option<String>>(i)?.map(|digits| {
                    let scale = digits.split_once('.').map_or(0, |(_, fraction)| fraction.len());
                    match digits.parse::<f64>() {
                        Ok(x) if format!("{x:.scale$}") == digits => Cell::Number(x),
                        _ => Cell::Text(digits),
                    }
                }),
                CellKind::Date => row.get::<_, Option<String>>(i)?.map(Cell::Date),
                CellKind::Timestamp => row.get::<_, Option<String>>(i)?.map(Cell::Timestamp),
                CellKind::Text => row.get::<_, Option<String>>(i)?.map(Cell::Text),
            };
            cells.push(cell.unwrap_or(Cell::Null));
        }
        sink(&cells)?;
    }
    Ok(())
}

/// The first `limit` rejected rows recorded at ingest.
pub fn rejects(conn: &Connection, rejects: &Path, limit: u64) -> anyhow::Result<Vec<Reject>> {
    if !rejects.exists() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT line, column_name, reason FROM read_parquet({}) ORDER BY line LIMIT {limit}",
        quote_literal(&rejects.display().to_string())
    );
    let mut statement = conn.prepare(&sql)?;
    let rows = statement
        .query_map([], |r| Ok(Reject { line: r.get::<_, u64>(0)?, column: r.get(1)?, reason: r.get(2)? }))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: SourceKind, bytes: &[u8]) -> (Result<Ingested, IngestError>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("original");
        std::fs::write(&source, bytes).unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let result = ingest(
            &conn,
            &kind,
            &source,
            &dir.path().join("data.parquet"),
            &dir.path().join("rejects.parquet"),
        );
        (result, dir)
    }

    fn csv() -> SourceKind {
        SourceKind::Delimited { delimiter: None, header: None, text_columns: vec![] }
    }

    #[test]
    fn reads_typed_columns() {
        let (result, dir) = run(csv(), b"id,name,score,day\n1,Ada,9.5,2024-01-02\n2,Bob,7,2024-02-03\n");
        let ingested = result.unwrap();
        assert_eq!(ingested.row_count, 2);
        assert_eq!(ingested.rejected_row_count, 0);
        let types: Vec<_> =
            ingested.columns.iter().map(|c| (c.name.as_str(), c.data_type.as_str())).collect();
        assert_eq!(types, vec![("id", "BIGINT"), ("name", "VARCHAR"), ("score", "DOUBLE"), ("day", "DATE")]);
        let conn = Connection::open_in_memory().unwrap();
        let rows = preview(&conn, &dir.path().join("data.parquet"), 10, 1).unwrap();
        assert_eq!(
            rows,
            vec![serde_json::json!({"id": 2, "name": "Bob", "score": 7.0, "day": "2024-02-03"})]
        );
    }

    /// The Parquet file of `select`'s rows, in a fresh folder, with a connection.
    fn parquet_of(select: &str) -> (tempfile::TempDir, std::path::PathBuf, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.parquet");
        let conn = Connection::open_in_memory().unwrap();
        super::super::parquet_fixture(&conn, &path, select);
        (dir, path, conn)
    }

    #[test]
    fn wide_decimals_a_double_would_round_are_exported_as_text() {
        let (_dir, path, conn) = parquet_of(
            "SELECT * FROM (VALUES (12345678901234567.89::DECIMAL(38,2)), (1.50), (-0.25), (NULL)) t(amount)",
        );
        let columns = vec![ColumnInfo { name: "amount".into(), data_type: "DECIMAL(38,2)".into() }];
        let mut cells = Vec::new();
        for_each_row(&conn, &path, &columns, |row| {
            cells.push(row[0].clone());
            Ok(())
        })
        .unwrap();
        assert_eq!(
            cells,
            [Cell::Text("12345678901234567.89".into()), Cell::Number(1.5), Cell::Number(-0.25), Cell::Null]
        );
    }

    #[test]
    fn lists_are_exported_as_their_text() {
        let (_dir, path, conn) = parquet_of(
            "SELECT 1.5 AS n, [1.25::DECIMAL(9,2)] AS amounts, [TIMESTAMP '2024-01-01 10:00'] AS stamps, \
             ['a', 'b'] AS tags",
        );
        let columns: Vec<ColumnInfo> = [
            ("n", "DOUBLE"),
            ("amounts", "DECIMAL(9,2)[]"),
            ("stamps", "TIMESTAMP[]"),
            ("tags", "VARCHAR[]"),
        ]
        .iter()
        .map(|(n, t)| ColumnInfo { name: n.to_string(), data_type: t.to_string() })
        .collect();
        let mut rows = Vec::new();
        for_each_row(&conn, &path, &columns, |cells| {
            rows.push(cells.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(
            rows,
            vec![vec![
                Cell::Number(1.5),
                Cell::Text("[1.25]".into()),
                Cell::Text("['2024-01-01 10:00:00']".into()),
                Cell::Text("[a, b]".into()),
            ]]
        );
    }

    /// A CSV whose typed columns hold, after more rows than DuckDB samples, `late` values.
    fn late(late: &[(&str, &str)]) -> String {
        let mut csv = String::from("id,n,d\n");
        for i in 0..30_000 {
            csv.push_str(&format!("{i},{},2024-01-{:02}\n", i % 100, i % 28 + 1));
        }
        for (i, (n, d)) in late.iter().enumerate() {
            csv.push_str(&format!("{},{n},{d}\n", 30_000 + i));
        }
        csv
    }

    fn column(dir: &tempfile::TempDir, name: &str, from_id: i64) -> Vec<String> {
        let conn = Connection::open_in_memory().unwrap();
        let path = quote_literal(&dir.path().join("data.parquet").display().to_string());
        conn.prepare(&format!(
            "SELECT CAST({} AS VARCHAR) FROM read_parquet({path}) WHERE id >= {from_id} ORDER BY id",
            super::super::quote_identifier(name)
        ))
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    /// A CSV of an `id`, a `name` and a `city`, with no quote in the rows DuckDB samples, then
    /// `tail`.
    fn unquoted_then(tail: &str) -> String {
        let mut csv = String::from("id,name,city\n");
        for i in 0..30_000 {
            csv.push_str(&format!("{i},Name{i},City{i}\n"));
        }
        csv + tail
    }

    #[test]
    fn quotes_after_the_sampled_rows_enclose_fields() {
        let body = unquoted_then(
            "30000,\"Smith, John\",Paris\n30001,\"He said \"\"hi\"\"\",Rome\n30002,\"two\nlines\",Oslo\n\
             30003,\"7\",Kyiv\n30004,12\" pipe,Lima\n",
        );
        let (got, dir) = run(csv(), body.as_bytes());
        let got = got.unwrap();
        assert_eq!((got.row_count, got.rejected_row_count), (30_005, 0));
        assert!(got.notices.is_empty(), "{:?}", got.notices);
        assert_eq!(
            column(&dir, "name", 30_000),
            ["Smith, John", "He said \"hi\"", "two\nlines", "7", "12\" pipe"]
        );
        assert_eq!(column(&dir, "city", 30_000), ["Paris", "Rome", "Oslo", "Kyiv", "Lima"]);
    }

    #[test]
    fn quotes_the_sniffer_reads_as_text_are_said_to_be() {
        let (got, _dir) = run(csv(), b"a,b\n\"say \"\"hi\"\"\",1\n\"Best\" ever,2\n");
        let got = got.unwrap();
        assert_eq!(got.row_count, 2);
        assert_eq!(got.notices, [QUOTES_KEPT]);
        // A file without quotes has nothing to say.
        let (got, _dir) = run(csv(), b"a,b\nx,1\ny,2\n");
        assert!(got.unwrap().notices.is_empty());
    }

    #[test]
    fn quotes_that_do_not_pair_up_are_read_as_text() {
        // Read as quotes, both lines would be rejected (the second swallowing the rest).
        let body = unquoted_then("30000,\"Best\" product,Paris\n30001,\"open,Rome\n30002,x,y\n");
        let (got, dir) = run(csv(), body.as_bytes());
        let got = got.unwrap();
        assert_eq!((got.row_count, got.rejected_row_count), (30_003, 0));
        assert_eq!(got.notices, [QUOTES_AS_TEXT]);
        assert_eq!(column(&dir, "name", 30_000), ["\"Best\" product", "\"open", "x"]);
        assert!(!dir.path().join("data.unquoted.parquet").exists());

        // When both readings reject lines, the one that rejects fewer is kept: here the quoted
        // one (a quoted comma; the unquoted reading would reject both lines).
        let body = unquoted_then("30000,\"Smith, John\",Paris\n30001,\"Doe, Jane\" Jr,Rome\n");
        let (got, dir) = run(csv(), body.as_bytes());
        let got = got.unwrap();
        assert_eq!((got.row_count, got.rejected_row_count), (30_001, 1));
        assert!(got.notices.is_empty(), "{:?}", got.notices);
        assert_eq!(column(&dir, "name", 30_000), ["Smith, John"]);

        // A tie in rejected lines: the read keeping more rows wins (here the unquoted one; the
        // quoted one loses every line after the lone quote).
        let mut tail = String::from("30000,\"Smith, John\",Paris\n30001,\"open,Rome\n");
        for i in 30_002..31_002 {
            tail.push_str(&format!("{i},n,c\n"));
        }
        let (got, dir) = run(csv(), unquoted_then(&tail).as_bytes());
        let got = got.unwrap();
        assert_eq!((got.row_count, got.rejected_row_count), (31_001, 1));
        assert_eq!(got.notices, [QUOTES_AS_TEXT]);
        assert_eq!(column(&dir, "name", 30_001)[0], "\"open");

        // A lone quote whose value runs past DuckDB's 32 MB read buffer is reported on the
        // line before, without its quote: still read again, and no row is lost.
        let mut tail = String::new();
        for i in 30_000..1_200_000 {
            tail.push_str(&format!("{i},Name{i},City{i}\n"));
            if i == 1_000_000 {
                tail.push_str("1000000,\"open,X\n");
            }
        }
        let (got, _dir) = run(csv(), unquoted_then(&tail).as_bytes());
        let got = got.unwrap();
        assert_eq!((got.row_count, got.rejected_row_count), (1_200_001, 0));
        assert_eq!(got.notices, [QUOTES_AS_TEXT]);

        // A stray quote in the sampled rows: the sniffer's reading (none) is kept throughout,
        // and said so.
        let (got, dir) = run(csv(), b"id,name\n1,\"Best\" ever\n2,x\n");
        let got = got.unwrap();
        assert_eq!((got.row_count, got.rejected_row_count), (2, 0));
        assert_eq!(got.notices, [QUOTES_KEPT]);
        assert_eq!(column(&dir, "name", 0), ["\"Best\" ever", "x"]);
    }

    #[test]
    fn values_after_the_sampled_rows_are_never_rounded_truncated_or_dropped() {
        // Cast by DuckDB's reader, these became 8, 31 and 100, the date lost its time, and
        // the row with `abc` was rejected.
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str, &'a [&'a str]);
        let cases: [Case; 5] = [
            (&[("7.5", "2024-02-01")], "n", "DOUBLE", &["7.5"]),
            (&[("0x1F", "2024-02-01")], "n", "VARCHAR", &["0x1F"]),
            (&[("1e2", "2024-02-01"), ("abc", "2024-02-02")], "n", "VARCHAR", &["1e2", "abc"]),
            (&[("99999999999999999999", "2024-02-01")], "n", "VARCHAR", &["99999999999999999999"]),
            (&[("1", "2024-02-01 13:45:00")], "d", "VARCHAR", &["2024-02-01 13:45:00"]),
        ];
        for (values, name, widened_to, expected) in cases {
            let (result, dir) = run(csv(), late(values).as_bytes());
            let ingested = result.unwrap();
            assert_eq!((ingested.row_count, ingested.rejected_row_count), (30_000 + values.len() as u64, 0));
            let types: Vec<_> =
                ingested.columns.iter().map(|c| (c.name.as_str(), c.data_type.as_str())).collect();
            let other = if name == "n" { ("d", "DATE") } else { ("n", "BIGINT") };
            assert!(types.contains(&(name, widened_to)) && types.contains(&other), "{values:?}: {types:?}");
            assert_eq!(
                column(&dir, name, 30_000),
                expected.iter().map(|e| e.to_string()).collect::<Vec<_>>()
            );
            let before = if widened_to == "DOUBLE" {
                "99.0".to_string()
            } else if name == "n" {
                "99".to_string()
            } else {
                format!("2024-01-{:02}", 29_999 % 28 + 1)
            };
            assert_eq!(column(&dir, name, 29_999)[0], before, "{values:?}");
            assert_eq!(ingested.notices.len(), 1, "{:?}", ingested.notices);
            assert!(ingested.notices[0].contains(&format!("column {name:?}")), "{:?}", ingested.notices);
        }
        // Instants with a UTC offset after timestamps without: the column keeps them all.
        let mut file = String::from("id,t\n");
        for i in 0..25_000 {
            file.push_str(&format!("{i},2024-01-05 10:00:{:02}\n", i % 60));
        }
        file.push_str("25000,2024-01-05T12:00:00+02:00\n25001,2024-01-05 10:00:00Z\n");
        let (result, dir) = run(csv(), file.as_bytes());
        let ingested = result.unwrap();
        assert_eq!(ingested.columns[1].data_type, "TIMESTAMP WITH TIME ZONE", "{ingested:?}");
        let conn = Connection::open_in_memory().unwrap();
        let path = quote_literal(&dir.path().join("data.parquet").display().to_string());
        // Minutes after midnight, UTC (time zone functions need ICU, which is not built in).
        let utc: Vec<i64> = conn
            .prepare(&format!(
                "SELECT CAST(epoch(CAST(t AS TIMESTAMP)) AS BIGINT) % 86400 // 60 FROM read_parquet({path}) WHERE id >= 25000 ORDER BY id"
            ))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(utc, vec![600, 600]);
        assert_eq!(ingested.notices.len(), 1, "{:?}", ingested.notices);
        assert!(ingested.notices[0].contains("those without an offset as UTC"), "{:?}", ingested.notices);
        // And the other way round: a timestamp without an offset after instants with one is
        // read as UTC, and said so.
        let mut file = String::from("id,t\n");
        for i in 0..25_000 {
            file.push_str(&format!("{i},2024-01-05T10:00:{:02}+01:00\n", i % 60));
        }
        file.push_str("25000,2024-01-05 10:00:00\n");
        let ingested = run(csv(), file.as_bytes()).0.unwrap();
        assert_eq!(ingested.columns[1].data_type, "TIMESTAMP WITH TIME ZONE", "{ingested:?}");
        assert_eq!(ingested.row_count, 25_001);
        assert_eq!(ingested.notices.len(), 1, "{:?}", ingested.notices);
        assert!(
            ingested.notices[0].contains("column \"t\" holds timestamps with a UTC offset"),
            "{:?}",
            ingested.notices
        );
        // Instants with digits past microseconds keep the column text (the cast cuts them),
        // first or after the sniffed rows.
        let mut precise = String::from("id,t\n");
        for i in 0..25_000 {
            precise.push_str(&format!("{i},2024-01-05T10:00:{:02}Z\n", i % 60));
        }
        precise.push_str("25000,2024-01-31T10:00:00.123456789Z\n");
        for file in
            ["id,t\n25000,2024-01-31T10:00:00.123456789Z\n25001,2024-01-31T10:00:00Z\n", precise.as_str()]
        {
            let (result, dir) = run(csv(), file.as_bytes());
            let ingested = result.unwrap();
            assert_eq!(ingested.columns[1].data_type, "VARCHAR", "{ingested:?}");
            assert_eq!(column(&dir, "t", 25_000)[0], "2024-01-31T10:00:00.123456789Z");
        }
        // `5.` is a decimal number, as the sniffer takes it among its rows.
        let (result, dir) = run(csv(), late(&[("5.", "2024-02-01")]).as_bytes());
        let types: Vec<_> = result.unwrap().columns.into_iter().map(|c| c.data_type).collect();
        assert_eq!(types, vec!["BIGINT", "DOUBLE", "DATE"]);
        assert_eq!(column(&dir, "n", 30_000), vec!["5.0".to_string()]);
        // Widened to DOUBLE only where DOUBLE gives every number back exactly.
        for inexact in ["9007199254740993.0", "0.30000000000000001", "1e400", "1e-400"] {
            let (result, dir) =
                run(csv(), late(&[("7.5", "2024-02-01"), (inexact, "2024-02-01")]).as_bytes());
            let types: Vec<_> = result.unwrap().columns.into_iter().map(|c| c.data_type).collect();
            assert_eq!(types, vec!["BIGINT", "VARCHAR", "DATE"], "{inexact}");
            assert_eq!(column(&dir, "n", 30_001), vec![inexact.to_string()]);
        }
        // More than 15 digits, but a DOUBLE's own (shortest) digits, as a workbook's cells are
        // written: DOUBLE gives them back exactly.
        for exact in ["0.3333333333333333", "1.4285714285714286e-06"] {
            let (result, dir) = run(csv(), late(&[(exact, "2024-02-01")]).as_bytes());
            let types: Vec<_> = result.unwrap().columns.into_iter().map(|c| c.data_type).collect();
            assert_eq!(types, vec!["BIGINT", "DOUBLE", "DATE"], "{exact}");
            let back: f64 = column(&dir, "n", 30_000)[0].parse().unwrap();
            assert_eq!(back, exact.parse::<f64>().unwrap(), "{exact}");
        }
        // An integer beyond 64 bits stays text, as in the sampled rows, even when a DOUBLE
        // holds it.
        let (result, _dir) = run(csv(), late(&[("100000000000000000000", "2024-02-01")]).as_bytes());
        let types: Vec<_> = result.unwrap().columns.into_iter().map(|c| c.data_type).collect();
        assert_eq!(types, vec!["BIGINT", "VARCHAR", "DATE"]);
        // Integers beyond 64 bits, even in the sampled rows, stay text (not DOUBLE).
        let (result, dir) = run(csv(), b"name,n\nx,99999999999999999999\ny,1\n");
        let types: Vec<_> = result.unwrap().columns.into_iter().map(|c| c.data_type).collect();
        assert_eq!(types, vec!["VARCHAR", "VARCHAR"]);
        let rows =
            preview(&Connection::open_in_memory().unwrap(), &dir.path().join("data.parquet"), 1, 0).unwrap();
        assert_eq!(rows[0]["n"], "99999999999999999999");
        // Values that hold their type keep it, with nothing to say.
        let (result, dir) = run(csv(), late(&[(" 12 ", "2024-2-1")]).as_bytes());
        let ingested = result.unwrap();
        let types: Vec<_> = ingested.columns.iter().map(|c| c.data_type.as_str()).collect();
        assert_eq!(types, vec!["BIGINT", "BIGINT", "DATE"]);
        assert!(ingested.notices.is_empty(), "{:?}", ingested.notices);
        assert_eq!(column(&dir, "d", 30_000), vec!["2024-02-01"]);
    }

    #[test]
    fn widening_keeps_the_rejects_of_malformed_lines_once() {
        let mut csv_text = late(&[("7.5", "2024-02-01")]);
        csv_text.push_str("30001,only two\n");
        let (result, dir) = run(csv(), csv_text.as_bytes());
        let ingested = result.unwrap();
        assert_eq!((ingested.row_count, ingested.rejected_row_count), (30_001, 1), "{ingested:?}");
        // One entry, not one per read of the file.
        let conn = Connection::open_in_memory().unwrap();
        assert_eq!(rejects(&conn, &dir.path().join("rejects.parquet"), 10).unwrap().len(), 1);
    }

    #[test]
    fn the_canonical_copy_and_the_rejects_are_zstd_compressed() {
        let csv_bytes: String = std::iter::once("id,text\n".to_string())
            .chain((0..5000).map(|i| format!("{i},row {}\n", i % 7)))
            .chain(std::iter::once("5000,too,many\n".to_string()))
            .collect();
        let (result, dir) = run(csv(), csv_bytes.as_bytes());
        let ingested = result.unwrap();
        assert_eq!((ingested.row_count, ingested.rejected_row_count), (5000, 1));
        let conn = Connection::open_in_memory().unwrap();
        for file in ["data.parquet", "rejects.parquet"] {
            let path = quote_literal(&dir.path().join(file).display().to_string());
            let codecs: Vec<String> = conn
                .prepare(&format!("SELECT DISTINCT compression FROM parquet_metadata({path}) ORDER BY 1"))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(codecs, vec!["ZSTD".to_string()], "{file}");
        }
    }

    #[test]
    fn renamed_columns_are_reported() {
        let ingested = run(csv(), b"a,a,,\"b,c\"\n1,2,3,4\n").0.unwrap();
        let names: Vec<_> = ingested.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["a", "a_1", "column2", "b,c"]);
        assert_eq!(ingested.notices.len(), 2, "{:?}", ingested.notices);
        assert!(
            ingested.notices[0].contains("a_1") && ingested.notices[1].contains("no name"),
            "{:?}",
            ingested.notices
        );
        let spaced = run(csv(), b"id,  spaced col  \n1,2\n").0.unwrap();
        assert_eq!(spaced.columns[1].name, "spaced col");
        assert_eq!(
            spaced.notices,
            ["column 2 is named \"  spaced col  \"; the spaces around it are dropped"]
        );
        let headerless = run(csv(), b"1,2\n3,4\n").0.unwrap();
        assert!(headerless.notices[0].contains("no header"), "{:?}", headerless.notices);
        assert!(run(csv(), b"x,y\n1,2\n").0.unwrap().notices.is_empty());
    }

    #[test]
    fn a_header_alone_is_an_empty_dataset() {
        let ingested = run(csv(), b"id,name,score\n").0.unwrap();
        assert_eq!(ingested.row_count, 0);
        assert_eq!(ingested.columns.len(), 3, "{:?}", ingested.columns);
    }

    #[test]
    fn malformed_rows_are_kept_as_rejects() {
        let (result, dir) = run(csv(), b"a,b,c\n1,2,3\n4,5\n6,7,8\n9,10,11,12\n");
        let ingested = result.unwrap();
        assert_eq!(ingested.row_count, 2, "{ingested:?}");
        assert_eq!(ingested.rejected_row_count, 2, "{ingested:?}");
        assert!(ingested.notices.is_empty(), "{:?}", ingested.notices);
        // Most rows set aside: the reading is likely what is wrong, and a notice says what to check.
        let most = run(csv(), b"name,city\nalice,paris,fr\nbob,rome,it\ncarol,oslo\n").0.unwrap();
        assert_eq!((most.row_count, most.rejected_row_count), (1, 2), "{most:?}");
        assert!(
            most.notices.iter().any(|n| n.starts_with("2 of the file's 3 rows were set aside")),
            "{:?}",
            most.notices
        );
        let conn = Connection::open_in_memory().unwrap();
        let rejects = rejects(&conn, &dir.path().join("rejects.parquet"), 10).unwrap();
        assert!(rejects.iter().any(|r| r.line == 3), "{rejects:?}");
        assert!(rejects.iter().all(|r| !r.reason.is_empty()));
    }

    #[test]
    fn a_line_of_too_many_values_is_refused_at_once() {
        // Quoted or not, after short lines or first: DuckDB would take minutes to hours.
        let many = "y,".repeat(300_000);
        for body in [
            format!("id,txt,n\n1,\"{many}\",5\n2,short,6\n"),
            format!("id,txt,n\r\n1,short,2\r\n3,{many}5\r\n"),
        ] {
            let started = std::time::Instant::now();
            let (result, _dir) = run(csv(), body.as_bytes());
            let Err(IngestError::BadInput(message)) = result else { panic!("{result:?}") };
            assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
            let expected = ["line 2 holds 300003 values separated by ','", "line 3 holds 300002 values"];
            assert!(expected.iter().any(|e| message.contains(e)), "{message}");
        }
        // As many values as may be read, on a long line, are read.
        let wide: Vec<String> = (0..2_000).map(|i| format!("column_{i}")).collect();
        let body = format!("{}\n{}\n", wide.join(";"), vec!["1"; 2_000].join(";"));
        assert_eq!(widest_line_of(&body), None);
        let body = format!("a\n{}\n", "x|".repeat(10_000));
        assert_eq!(widest_line_of(&body), Some((2, 10_001, b'|')));
        assert_eq!(widest_line_of(&format!("a\r{}\r", "x\t".repeat(10_000))), Some((2, 10_001, b'\t')));
    }

    fn widest_line_of(body: &str) -> Option<(u64, u64, u8)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, body).unwrap();
        widest_line(&path, None).unwrap()
    }

    #[test]
    fn a_quoted_value_of_many_lines_longer_than_two_megabytes_is_one_value() {
        let value = format!("{}\n", "y".repeat(1000)).repeat(2200);
        let body = format!("id,txt,n\n1,\"{value}\",5\n2,short,6\n");
        let (result, dir) = run(csv(), body.as_bytes());
        let ingested = result.unwrap();
        assert_eq!((ingested.row_count, ingested.rejected_row_count), (2, 0), "{:?}", ingested.notices);
        assert_eq!(column(&dir, "txt", 1), vec![value, "short".to_string()]);
    }

    #[test]
    fn a_line_with_several_extra_values_is_one_reject() {
        let (result, dir) = run(csv(), b"a,b,c\n1,2,3\n4,5,6,7,8\n9,10,11\n12,13\n14,15,16,17\n");
        let ingested = result.unwrap();
        assert_eq!(ingested.rejected_row_count, 3, "{ingested:?}");
        let conn = Connection::open_in_memory().unwrap();
        let rejects = rejects(&conn, &dir.path().join("rejects.parquet"), 10).unwrap();
        let lines: Vec<u64> = rejects.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 5, 6], "{rejects:?}");
        assert!(rejects[0].reason.contains("Found: 5"), "{rejects:?}");
        // Too few values: one reject too, counting the values the line has.
        let (result, dir) = run(csv(), b"a,b,c,d,e\n1,2,3,4,5\n6,7\n8,9,10,11,12\n");
        assert_eq!(result.unwrap().rejected_row_count, 1);
        let short = super::rejects(&conn, &dir.path().join("rejects.parquet"), 10).unwrap();
        assert_eq!(short.len(), 1, "{short:?}");
        assert!(short[0].reason.contains("Found: 2"), "{short:?}");
    }

    #[test]
    fn rejects_are_numbered_by_the_files_lines() {
        let lines = [
            "id,name,city",
            "1,\"a",
            "b\",x",
            "2,too,many,cols",
            "3,missing",
            "4,\"c",
            "d",
            "e\",y",
            "5,ok,z",
            "6,x",
        ];
        for (newline, bom) in [("\n", ""), ("\r\n", ""), ("\n", "\u{feff}")] {
            let body = format!("{bom}{}{newline}", lines.join(newline));
            let (result, dir) = run(csv(), body.as_bytes());
            assert_eq!(result.unwrap().rejected_row_count, 3);
            let conn = Connection::open_in_memory().unwrap();
            let got: Vec<u64> = rejects(&conn, &dir.path().join("rejects.parquet"), 10)
                .unwrap()
                .iter()
                .map(|r| r.line)
                .collect();
            assert_eq!(got, [4, 5, 10], "{newline:?} {bom:?}");
        }
        // A value running past DuckDB's read buffer is reported on the line before: the
        // record number (here right) is the least the line can be. (With quotes in the first
        // rows the file is read with them, and the rest of the buffer is lost to the reject,
        // as DuckDB reads it.)
        let mut body = String::from("id,name,city\n0,\"Doe, Jane\",X\n");
        for i in 1..1_200_000 {
            body.push_str(&format!("{i},Name{i},City{i}\n"));
            if i == 1_000_000 {
                body.push_str("1000000,\"open,X\n");
            }
        }
        let (result, dir) = run(csv(), body.as_bytes());
        assert_eq!(result.unwrap().rejected_row_count, 1);
        let conn = Connection::open_in_memory().unwrap();
        let got = rejects(&conn, &dir.path().join("rejects.parquet"), 10).unwrap();
        assert_eq!(got.iter().map(|r| r.line).collect::<Vec<_>>(), [1_000_003]);

        // Without values spanning lines, records and lines agree; a line whose values fail
        // in two columns is one reject line.
        let (result, dir) = run(csv(), b"a,b\n1,2\n3\n4,5\n");
        assert_eq!(result.unwrap().rejected_row_count, 1);
        let conn = Connection::open_in_memory().unwrap();
        let got = rejects(&conn, &dir.path().join("rejects.parquet"), 10).unwrap();
        assert_eq!(got.iter().map(|r| r.line).collect::<Vec<_>>(), [3]);
    }

    #[test]
    fn rejects_of_a_file_of_carriage_returns_are_numbered_by_its_lines() {
        let body = b"id,name,city\r1,\"a\rb\",x\r2,too,many,cols\r3,ok,y\r4,short\r5,ok,z\r";
        let (result, dir) = run(csv(), body);
        assert_eq!(result.unwrap().rejected_row_count, 2);
        let conn = Connection::open_in_memory().unwrap();
        let got: Vec<u64> =
            rejects(&conn, &dir.path().join("rejects.parquet"), 10).unwrap().iter().map(|r| r.line).collect();
        assert_eq!(got, [4, 6]);
    }

    #[test]
    fn physical_lines_count_newlines_across_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lines");
        // Three megabytes of 10-byte lines: positions fall in several reads of the buffer.
        let body = "123456789\n".repeat(300_000);
        std::fs::write(&path, &body).unwrap();
        let positions = [0, 9, 10, 11, 1_048_575, 1_048_576, 1_048_580, 2_999_999, 3_000_000, 4_000_000];
        let want: Vec<u64> = positions.iter().map(|p| 1 + (*p).min(3_000_000) / 10).collect();
        assert_eq!(physical_lines(&path, &positions, b'\n').unwrap(), want);
        assert_eq!(physical_lines(&path, &[], b'\n').unwrap(), Vec::<u64>::new());
    }

    #[test]
    fn a_preview_shows_nan_and_infinities_as_text() {
        let kind = SourceKind::Delimited { delimiter: None, header: None, text_columns: vec![] };
        let (result, dir) =
            run(kind, b"id,price,note\n1,NaN,NaN\n2,inf,\"say \"\"NaN\"\"\"\n3,-inf,x\n4,1.5,y\n");
        assert_eq!(result.unwrap().row_count, 4);
        let conn = Connection::open_in_memory().unwrap();
        let rows = preview(&conn, &dir.path().join("data.parquet"), 10, 0).unwrap();
        let prices: Vec<serde_json::Value> = rows.iter().map(|r| r["price"].clone()).collect();
        assert_eq!(
            prices,
            serde_json::json!(["NaN", "Infinity", "-Infinity", 1.5]).as_array().unwrap().clone()
        );
        // Text that spells the tokens is left alone.
        assert_eq!(rows[0]["note"], "NaN");
        assert_eq!(rows[1]["note"], "say \"NaN\"");
    }

    #[test]
    fn a_preview_keys_every_value_by_its_column_whatever_the_names() {
        let kind = SourceKind::Delimited { delimiter: None, header: None, text_columns: vec![] };
        let (result, dir) = run(kind, b"t,x,\"a \"\"b\"\"\"\n1,a,\n2,b,z\n");
        assert_eq!(result.unwrap().row_count, 2);
        let conn = Connection::open_in_memory().unwrap();
        let rows = preview(&conn, &dir.path().join("data.parquet"), 10, 1).unwrap();
        assert_eq!(rows, vec![serde_json::json!({ "t": 2, "x": "b", "a \"b\"": "z" })]);
    }

    #[test]
    fn numbers_beyond_a_double_are_previewed_as_their_text() {
        let (_dir, data, conn) = parquet_of(
            "SELECT 12345678901234567890123456789012345678::DECIMAL(38,0) AS wide, \
             99999999999999999999999999999999.99::DECIMAL(34,2) AS money, 1234.5::DECIMAL(9,2) AS price, \
             9007199254740993::BIGINT AS big, 0.5::DOUBLE AS x",
        );
        let rows = preview(&conn, &data, 1, 0).unwrap();
        assert_eq!(
            rows[0],
            serde_json::json!({
                "wide": "12345678901234567890123456789012345678",
                "money": "99999999999999999999999999999999.99",
                "price": 1234.5,
                // JavaScript would read 9007199254740992.
                "big": "9007199254740993",
                "x": 0.5,
            })
        );
    }

    #[test]
    fn a_table_wider_than_a_block_is_previewed() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data.parquet");
        let conn = Connection::open_in_memory().unwrap();
        let columns = (0..16_384).map(|i| format!("'v{i}' AS c{i}")).collect::<Vec<_>>().join(", ");
        conn.execute_batch(&format!(
            "COPY (SELECT {columns} FROM range(3)) TO {} (FORMAT parquet)",
            quote_literal(&data.display().to_string())
        ))
        .unwrap();
        let rows = preview(&conn, &data, 2, 1).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].as_object().unwrap().len(), 16_384);
        assert_eq!(
            (&rows[0]["c0"], &rows[1]["c16383"]),
            (&serde_json::json!("v0"), &serde_json::json!("v16383"))
        );
    }

    #[test]
    fn non_finite_tokens_are_quoted_only_outside_strings() {
        let quoted = non_finite_as_text(
            r#"{"a":NaN,"b":[Infinity,-Infinity],"c":"NaN \\\" Infinity","d":{"e":-Infinity}}"#,
            false,
        );
        let value: serde_json::Value = serde_json::from_str(&quoted).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"a": "NaN", "b": ["Infinity", "-Infinity"], "c": "NaN \\\" Infinity", "d": {"e": "-Infinity"}})
        );
        assert!(matches!(non_finite_as_text(r#"{"a":1}"#, false), std::borrow::Cow::Borrowed(_)));
        let wide = non_finite_as_text(
            r#"{"a":12345678901234567.89,"b":[0.100000000000000000000000000000,-1.5e3,NaN],"c":"1.23456789012345678","d":170141183460469231731687303715884105727,"e":-9223372036854775808}"#,
            true,
        );
        let value: serde_json::Value = serde_json::from_str(&wide).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"a": "12345678901234567.89", "b": [0.1, -1500.0, "NaN"], "c": "1.23456789012345678",
                "d": "170141183460469231731687303715884105727", "e": "-9223372036854775808"})
        );
    }

    #[test]
    fn nested_wide_decimals_are_previewed_exactly() {
        let (_dir, path, conn) = parquet_of(
            "SELECT {'amount': 12345678901234567.89::DECIMAL(38,2), 'n': 2} AS s, \
             [0.25::DECIMAL(20,2), 1.5] AS l, {'x': 1.5} AS plain",
        );
        let rows = preview(&conn, &path, 10, 0).unwrap();
        assert_eq!(
            rows[0],
            serde_json::json!({"s": {"amount": "12345678901234567.89", "n": 2}, "l": [0.25, 1.5], "plain": {"x": 1.5}})
        );
        assert!(nested_beyond_double("STRUCT(amount DECIMAL(38,2), n INTEGER)"));
        assert!(nested_beyond_double("HUGEINT[]"));
        assert!(!nested_beyond_double("STRUCT(x DECIMAL(2,1))"));
        // 64-bit integers beyond 2^53, which JavaScript would round, are text too.
        let (_dir, path, conn) = parquet_of(
            "SELECT * FROM (VALUES (9007199254740993::BIGINT, [9007199254740993::BIGINT]), (42, [1])) t(n, l)",
        );
        let rows = preview(&conn, &path, 10, 0).unwrap();
        assert_eq!(rows[0], serde_json::json!({"n": "9007199254740993", "l": ["9007199254740993"]}));
        assert_eq!(rows[1], serde_json::json!({"n": 42, "l": [1]}));
    }

    #[test]
    fn a_line_too_long_is_refused_saying_so() {
        let kind = SourceKind::Delimited { delimiter: None, header: None, text_columns: vec![] };
        for (short_lines, long_line) in [(0, 2), (8, 10)] {
            let mut file = String::from("id,big\n");
            for i in 0..short_lines {
                file.push_str(&format!("{i},x\n"));
            }
            file.push_str(&format!("1,{}\n", "y".repeat(9_000_000)));
            let result = run(kind.clone(), file.as_bytes()).0;
            match result {
                Err(IngestError::BadInput(message)) => assert!(
                    message.contains("longer than 8 MB")
                        && message.starts_with(&format!("line {long_line} of the file")),
                    "{message}"
                ),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_long_line_after_the_sniffed_lines_is_read_not_rejected() {
        let mut file = String::from("id,text\n");
        for i in 0..25_000 {
            file.push_str(&format!("{i},x\n"));
        }
        file.push_str(&format!("25000,{}\n25001,z\n", "y".repeat(3_000_000)));
        let ingested = run(csv(), file.as_bytes()).0.unwrap();
        assert_eq!((ingested.row_count, ingested.rejected_row_count), (25_002, 0), "{ingested:?}");
    }

    #[test]
    fn json_lines_may_start_with_a_bom_or_be_pretty_printed() {
        let ingested = run(SourceKind::JsonLines, b"\xef\xbb\xbf{\"a\": 1}\n{\"a\": 2}\n").0.unwrap();
        assert_eq!(ingested.row_count, 2);
        let pretty = b"{\n  \"a\": 1,\n  \"b\": \"x\"\n}\n{\n  \"a\": 2,\n  \"b\": \"y\"\n}\n";
        let ingested = run(SourceKind::JsonLines, pretty).0.unwrap();
        assert_eq!((ingested.row_count, ingested.columns.len()), (2, 2));
    }

    #[test]
    fn json_objects_of_many_keys_are_records() {
        let object = (0..250).map(|i| format!("\"k{i}\": {i}")).collect::<Vec<_>>().join(", ");
        let array = format!("[{{{object}}}, {{{object}}}]");
        let ingested = run(SourceKind::JsonArray, array.as_bytes()).0.unwrap();
        assert_eq!((ingested.row_count, ingested.columns.len()), (2, 250));
        let lines = format!("{{{object}}}\n{{{object}}}\n");
        let ingested = run(SourceKind::JsonLines, lines.as_bytes()).0.unwrap();
        assert_eq!((ingested.row_count, ingested.columns.len()), (2, 250));
    }

    #[test]
    fn json_columns_are_typed_from_every_record() {
        let mut lines = String::new();
        for i in 0..30_000 {
            lines.push_str(&format!("{{\"id\": {i}, \"n\": {}, \"tags\": [1]}}\n", i % 100));
        }
        lines.push_str(
            "{\"id\": 30000, \"n\": 7.5, \"tags\": [2]}\n{\"id\": 30001, \"n\": \"abc\", \"tags\": null}\n",
        );
        let (result, dir) = run(SourceKind::JsonLines, lines.as_bytes());
        let ingested = result.unwrap();
        assert_eq!(ingested.row_count, 30_002);
        let types: Vec<_> =
            ingested.columns.iter().map(|c| (c.name.as_str(), c.data_type.as_str())).collect();
        assert_eq!(types, vec![("id", "BIGINT"), ("n", "VARCHAR"), ("tags", "BIGINT[]")]);
        assert_eq!(column(&dir, "n", 29_999), vec!["99", "7.5", "abc"]);
        // A decimal after integers is not rounded; values after nulls are not lost.
        let mut records: Vec<String> =
            (0..30_000).map(|i| format!("{{\"id\": {i}, \"n\": {i}, \"a\": null}}")).collect();
        records.push("{\"id\": 30000, \"n\": 7.5, \"a\": 42}".into());
        records.push("{\"id\": 30001, \"n\": 1, \"a\": \"text\"}".into());
        let (result, dir) = run(SourceKind::JsonArray, format!("[{}]", records.join(",\n")).as_bytes());
        let types: Vec<_> = result.unwrap().columns.into_iter().map(|c| c.data_type).collect();
        assert_eq!(types, vec!["BIGINT", "DOUBLE", "VARCHAR"]);
        assert_eq!(column(&dir, "n", 30_000), vec!["7.5", "1.0"]);
        assert_eq!(column(&dir, "a", 30_000), vec!["42", "text"]);
        // UUIDs keep their case.
        let (result, dir) = run(
            SourceKind::JsonArray,
            br#"[{"id": 0, "u": "550E8400-E29B-41D4-A716-446655440000", "us": ["550E8400-E29B-41D4-A716-446655440001"]}]"#,
        );
        let types: Vec<_> = result.unwrap().columns.into_iter().map(|c| c.data_type).collect();
        assert_eq!(types, vec!["BIGINT", "VARCHAR", "VARCHAR[]"]);
        assert_eq!(column(&dir, "u", 0), vec!["550E8400-E29B-41D4-A716-446655440000"]);
        assert_eq!(column(&dir, "us", 0), vec!["[550E8400-E29B-41D4-A716-446655440001]"]);
        // Lists of lists of them too; times and instants finer than microseconds, and
        // integers below BIGINT of 19 digits, are kept as written.
        let (result, dir) = run(
            SourceKind::JsonLines,
            b"{\"id\": 0, \"uu\": [[\"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11\"]], \"t\": \"03:04:05.1234567\", \
              \"z\": \"2020-01-02T03:04:05.123456789Z\", \"n\": -9223372036854775809, \"d\": -9999999999999999999.5}\n\
              {\"id\": 1, \"uu\": [[\"B0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12\"]], \"t\": \"03:04:05\", \"z\": \"2020-01-02T03:04:05Z\", \"n\": 1}\n",
        );
        let types: Vec<_> = result.unwrap().columns.into_iter().map(|c| c.data_type).collect();
        // (A decimal of 19 digits before its point stays DOUBLE.)
        assert_eq!(types, vec!["BIGINT", "VARCHAR[][]", "VARCHAR", "VARCHAR", "VARCHAR", "DOUBLE"]);
        assert_eq!(column(&dir, "uu", 0)[0], "[[A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11]]");
        assert_eq!(column(&dir, "t", 0), vec!["03:04:05.1234567", "03:04:05"], "no digit dropped");
        assert_eq!(column(&dir, "z", 0)[0], "2020-01-02T03:04:05.123456789Z");
        assert_eq!(column(&dir, "n", 0), vec!["-9223372036854775809", "1"], "not rounded");
        // A column of integers, one beyond BIGINT: DuckDB's HUGEINT would be stored as DOUBLE,
        // rounding them all, so it is text, exact (as a delimited file's); decimals stay DOUBLE.
        let (result, dir) = run(
            SourceKind::JsonArray,
            br#"[{"id": 0, "v": null, "w": null}, {"id": 1, "v": 9007199254740993, "w": 1.5},
                 {"id": 2, "v": 18446744073709551615, "w": 2}]"#,
        );
        let types: Vec<_> = result.unwrap().columns.into_iter().map(|c| c.data_type).collect();
        assert_eq!(types, vec!["BIGINT", "VARCHAR", "DOUBLE"]);
        assert_eq!(column(&dir, "v", 1), vec!["9007199254740993", "18446744073709551615"]);
        // Beyond 64 bits DuckDB reads a DOUBLE, rounding: text too, exact; a column of decimals
        // beside a string of 20 digits stays DOUBLE.
        let (result, dir) = run(
            SourceKind::JsonLines,
            b"{\"id\": 1, \"v\": 99999999999999999999, \"w\": 1.5, \"s\": \"12345678901234567890123\"}\n\
              {\"id\": 2, \"v\": 1, \"w\": 2.5, \"s\": \"x\"}\n{\"id\": 3, \"v\": -9223372036854775809, \"w\": 3}\n",
        );
        let types: Vec<_> = result.unwrap().columns.into_iter().map(|c| (c.name, c.data_type)).collect();
        let v = types.iter().find(|(name, _)| name == "v").unwrap();
        let w = types.iter().find(|(name, _)| name == "w").unwrap();
        assert_eq!((v.1.as_str(), w.1.as_str()), ("VARCHAR", "DOUBLE"), "{types:?}");
        assert_eq!(column(&dir, "v", 0), vec!["99999999999999999999", "1", "-9223372036854775809"]);
        // Inside lists and structs too; a long string of digits there leaves the column DOUBLE.
        let (result, dir) = run(
            SourceKind::JsonLines,
            b"{\"id\": 0, \"l\": [1, 123456789012345678901234], \"o\": {\"x\": [-123456789012345678901234]}, \"d\": [1.5], \"s\": {\"t\": \"123456789012345678901234\", \"u\": 2.5}}\n",
        );
        let types: Vec<_> = result.unwrap().columns.into_iter().map(|c| (c.name, c.data_type)).collect();
        let ty = |n: &str| types.iter().find(|(name, _)| name == n).unwrap().1.clone();
        assert_eq!(
            (ty("l"), ty("o"), ty("d")),
            ("VARCHAR".into(), "VARCHAR".into(), "DOUBLE[]".into()),
            "{types:?}"
        );
        assert!(ty("s").starts_with("STRUCT"), "{types:?}");
        assert_eq!(column(&dir, "l", 0), vec!["[1,123456789012345678901234]"]);
        assert_eq!(column(&dir, "o", 0), vec![r#"{"x":[-123456789012345678901234]}"#]);
        // The same when keys differing in case make the read go through a projection.
        let (result, dir) = run(
            SourceKind::JsonLines,
            b"{\"id\": 1, \"v\": 18446744073709551615}\n{\"ID\": 2, \"id\": 2, \"v\": 9007199254740993}\n",
        );
        let types: Vec<_> = result.unwrap().columns.into_iter().map(|c| (c.name, c.data_type)).collect();
        assert!(types.contains(&("v".to_string(), "VARCHAR".to_string())), "{types:?}");
        assert_eq!(column(&dir, "v", 1), vec!["18446744073709551615", "9007199254740993"]);
        // Keys that differ only in case keep their values (DuckDB names the second `ID_1`).
        let (result, dir) = run(SourceKind::JsonLines, b"{\"id\": 1, \"m\": 1}\n{\"ID\": 2, \"m\": \"s\"}\n");
        let names: Vec<_> = result.unwrap().columns.into_iter().map(|c| (c.name, c.data_type)).collect();
        assert_eq!(names[2], ("ID_1".to_string(), "BIGINT".to_string()), "{names:?}");
        let rows =
            preview(&Connection::open_in_memory().unwrap(), &dir.path().join("data.parquet"), 2, 0).unwrap();
        assert_eq!(
            (rows[1]["ID_1"].clone(), rows[1]["m"].clone()),
            (serde_json::json!(2), serde_json::json!("s"))
        );
    }

    #[test]
    fn parquet_decimals_beyond_38_digits_are_named_in_a_notice() {
        // A decimal256 (Arrow), as pyarrow writes one: 60 digits in 26 bytes of big-endian
        // two's complement, with its DECIMAL logical type.
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("wide.parquet");
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!(
            "COPY (SELECT 1.5::DECIMAL(10,2) AS narrow) TO {} (FORMAT parquet)",
            quote_literal(&source.display().to_string())
        ))
        .unwrap();
        assert!(wide_decimals(&conn, &source).is_empty());
        let fixture =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/decimal256.parquet");
        let ingested = run(SourceKind::Parquet, &std::fs::read(fixture).unwrap()).0.unwrap();
        assert_eq!(ingested.notices.len(), 1, "{:?}", ingested.notices);
        assert!(
            ingested.notices[0].starts_with("column \"d\" holds decimals of 60 digits"),
            "{:?}",
            ingested.notices
        );
    }

    #[test]
    fn a_long_line_read_again_is_checked_too() {
        // The widening check skips a line over 2 MB (a reject there); the read with the
        // larger limit then finds a misfit in it and widens again.
        let mut file = String::from("id,n,text\n");
        for i in 0..25_000 {
            file.push_str(&format!("{i},{},x\n", i % 100));
        }
        file.push_str(&format!("25000,7.5,x\nA-1,1,{}\n", "y".repeat(3_000_000)));
        let ingested = run(csv(), file.as_bytes()).0.unwrap();
        assert_eq!((ingested.row_count, ingested.rejected_row_count), (25_002, 0), "{ingested:?}");
        let types: Vec<_> = ingested.columns.iter().map(|c| c.data_type.as_str()).collect();
        assert_eq!(types, vec!["VARCHAR", "DOUBLE", "VARCHAR"]);
        assert_eq!(ingested.notices.len(), 2, "{:?}", ingested.notices);
    }

    #[test]
    fn columns_of_nulls_alone_are_text() {
        let types = |result: Result<Ingested, IngestError>| -> Vec<(String, String)> {
            result.unwrap().columns.into_iter().map(|c| (c.name, c.data_type)).collect()
        };
        let text = |n: &str| (n.to_string(), "VARCHAR".to_string());
        let number = |n: &str| (n.to_string(), "BIGINT".to_string());
        let (result, _dir) = run(SourceKind::JsonArray, br#"[{"a": null, "b": 1}, {"a": null, "b": 2}]"#);
        assert_eq!(types(result), vec![text("a"), number("b")]);
        // Keys differing in case take the other path through `json_columns`.
        let (result, _dir) = run(SourceKind::JsonLines, b"{\"a\": null, \"b\": 1}\n{\"B\": 2}\n");
        assert_eq!(types(result), vec![text("a"), number("b"), number("B_1")]);
        // A Parquet column of the NULL type, as pyarrow writes an all-null column.
        let (_source_dir, source, _) = parquet_of("SELECT NULL AS a, 1::BIGINT AS b");
        let bytes = std::fs::read(&source).unwrap();
        let (result, _dir) = run(SourceKind::Parquet, &bytes);
        assert_eq!(types(result), vec![text("a"), number("b")]);
    }

    #[test]
    fn json_integers_of_both_signs_are_integers() {
        let typed = |kind, body: &[u8]| {
            let (result, dir) = run(kind, body);
            let ingested = result.unwrap();
            let conn = Connection::open_in_memory().unwrap();
            let rows = preview(&conn, &dir.path().join("data.parquet"), 10, 0).unwrap();
            let types: Vec<(String, String)> =
                ingested.columns.iter().map(|c| (c.name.clone(), c.data_type.clone())).collect();
            (types, rows, ingested.notices)
        };
        // DuckDB merges positive (UBIGINT) and negative (BIGINT) integers as HUGEINT.
        let (types, rows, _) =
            typed(SourceKind::JsonLines, b"{\"id\": 1, \"delta\": 5}\n{\"id\": 2, \"delta\": -3}\n");
        assert_eq!(types[1], ("delta".to_string(), "BIGINT".to_string()));
        assert_eq!(rows[1]["delta"], -3);
        let (types, _, _) =
            typed(SourceKind::JsonArray, br#"[{"v": -9223372036854775808}, {"v": 9223372036854775807}]"#);
        assert_eq!(types[0].1, "BIGINT");
        // Beyond BIGINT: text, exact.
        let (types, rows, _) = typed(SourceKind::JsonLines, b"{\"v\": 18446744073709551615}\n{\"v\": -1}\n");
        assert_eq!(types[0].1, "VARCHAR");
        assert_eq!(rows[0]["v"], "18446744073709551615");
        // Keys that differ only in case: the same, and each renamed one said.
        let (types, rows, notices) = typed(
            SourceKind::JsonLines,
            b"{\"id\": 1, \"d\": -1, \"v\": 99999999999999999999}\n{\"ID\": 2, \"id\": 3, \"d\": 2, \"v\": 1}\n",
        );
        let d = types.iter().find(|(name, _)| name == "d").unwrap();
        assert_eq!(d.1, "BIGINT");
        assert_eq!(rows[0]["d"], -1);
        assert!(notices.iter().any(|n| n.contains("differs from another only in case")), "{notices:?}");
        assert!(notices.iter().any(|n| n.contains("\"v\"") && n.contains("beyond 64 bits")), "{notices:?}");
        // Inside structs and lists (Parquet would store DuckDB's HUGEINT as DOUBLE, rounding
        // 9007199254740993), and beside a field named like the type.
        let (types, rows, _) = typed(
            SourceKind::JsonLines,
            b"{\"a\": {\"x\": -5, \"HUGEINT\": 1, \"l\": [1, -2]}}\n\
              {\"a\": {\"x\": 9007199254740993, \"HUGEINT\": -1, \"l\": [9007199254740993]}}\n",
        );
        assert_eq!(types[0].1, "STRUCT(x BIGINT, HUGEINT BIGINT, l BIGINT[])");
        assert_eq!(rows[1]["a"]["x"], "9007199254740993");
        assert_eq!(rows[1]["a"]["l"][0], "9007199254740993");
        assert_eq!(rows[0]["a"]["l"][1], -2);
        // A nested integer beyond BIGINT: the value is kept as its JSON text.
        let (types, rows, _) =
            typed(SourceKind::JsonLines, b"{\"a\": {\"x\": -5}}\n{\"a\": {\"x\": 18446744073709551615}}\n");
        assert_eq!(types[0].1, "VARCHAR");
        assert!(rows[1]["a"].as_str().unwrap().contains("18446744073709551615"), "{rows:?}");
    }

    #[test]
    fn hugeint_types_become_bigint_types() {
        assert_eq!(with_bigints("HUGEINT"), "BIGINT");
        assert_eq!(with_bigints("UHUGEINT[]"), "BIGINT[]");
        assert_eq!(
            with_bigints("STRUCT(x HUGEINT, HUGEINT HUGEINT, l HUGEINT[])"),
            "STRUCT(x BIGINT, HUGEINT BIGINT, l BIGINT[])"
        );
        assert_eq!(with_bigints("MAP(VARCHAR, HUGEINT)"), "MAP(VARCHAR, BIGINT)");
        assert_eq!(with_bigints("STRUCT(a HUGEINT,b HUGEINT)"), "STRUCT(a BIGINT,b BIGINT)");
        // A quoted name is a name, whatever it says.
        assert_eq!(with_bigints("STRUCT(\"size (HUGEINT)\" HUGEINT)"), "STRUCT(\"size (HUGEINT)\" BIGINT)");
        assert!(!holds_hugeint("STRUCT(\"size (HUGEINT)\" VARCHAR)"));
        assert!(holds_hugeint("STRUCT(\"a\" HUGEINT[])"));
    }

    #[test]
    fn a_file_of_crlf_and_lf_lines_is_read() {
        let mut body = String::from("id,v\r\n");
        for i in 0..1000 {
            body.push_str(&format!("{i},a{i}\r\n"));
        }
        body.push_str("1000,last\n1001,\"two\r\nlines\"\r\n");
        let (result, dir) = run(csv(), body.as_bytes());
        let ingested = result.unwrap();
        assert_eq!((ingested.row_count, ingested.rejected_row_count), (1002, 0), "{ingested:?}");
        assert!(ingested.notices[0].contains("CRLF and LF"), "{:?}", ingested.notices);
        let conn = Connection::open_in_memory().unwrap();
        let rows = preview(&conn, &dir.path().join("data.parquet"), 2, 1000).unwrap();
        assert_eq!(rows[0]["v"], "last");
        assert_eq!(rows[1]["v"], "two\nlines");
        // No scratch copy is left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(!left.iter().any(|name| name.to_string_lossy().ends_with(".lf")), "{left:?}");
    }

    #[test]
    fn crlf_becomes_lf_across_buffer_edges() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("a"), dir.path().join("b"));
        let mut body = vec![b'x'; (1 << 20) - 1];
        body.extend_from_slice(b"\r\ny\rz\r\n\r");
        std::fs::write(&from, &body).unwrap();
        crlf_to_lf(&from, &to).unwrap();
        let mut expected = vec![b'x'; (1 << 20) - 1];
        expected.extend_from_slice(b"\ny\rz\n\r");
        assert_eq!(std::fs::read(&to).unwrap(), expected);
        assert!(!mixed_line_ends(&to).unwrap());
        std::fs::write(&from, b"a\r\nb\n").unwrap();
        assert!(mixed_line_ends(&from).unwrap());
    }

    #[test]
    fn dates_not_written_as_iso_say_how_they_were_read() {
        let ingested =
            run(csv(), b"month,revenue\n01/01/2024,100\n02/01/2024,120\n13/01/2024,90\n").0.unwrap();
        assert_eq!(ingested.columns[0].data_type, "DATE");
        assert_eq!(ingested.notices, ["column \"month\" holds dates read as %d/%m/%Y (day first)"]);
        let us = run(csv(), b"d\n01/13/24\n02/01/99\n").0.unwrap();
        assert_eq!(us.columns[0].data_type, "DATE");
        assert!(
            us.notices[0].contains("month first") && us.notices[0].contains("1969–1999"),
            "{:?}",
            us.notices
        );
        assert!(run(csv(), b"d\n2024-01-02\n").0.unwrap().notices.is_empty());
        let year_first = run(csv(), b"d\n25/06/07\n01/02/03\n").0.unwrap();
        assert_eq!(year_first.columns[0].data_type, "DATE");
        assert!(year_first.notices[0].contains("year first"), "{:?}", year_first.notices);
    }

    #[test]
    fn a_decimal_comma_after_the_sampled_rows_keeps_a_column_of_numbers() {
        // Whole numbers in the rows the sniffer reads, then `2,5` in a semicolon file: the
        // column widens to numbers read with the comma, not to text.
        let mut file = String::from("id;amount\n");
        for i in 0..25_000 {
            file.push_str(&format!("{i};{}\n", i % 100));
        }
        file.push_str("25000;2,5\n25001;-0,25\n");
        let (ingested, dir) = run(csv(), file.as_bytes());
        let ingested = ingested.unwrap();
        assert_eq!(ingested.columns[1].data_type, "DOUBLE", "{ingested:?}");
        assert_eq!(ingested.row_count, 25_002);
        assert_eq!(ingested.notices.len(), 1, "{:?}", ingested.notices);
        assert!(ingested.notices[0].contains("\"amount\"") && ingested.notices[0].contains("decimal comma"));
        let conn = Connection::open_in_memory().unwrap();
        let path = quote_literal(&dir.path().join("data.parquet").display().to_string());
        let late: Vec<f64> = conn
            .prepare(&format!("SELECT amount FROM read_parquet({path}) WHERE id >= 24999 ORDER BY id"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(late, [99.0, 2.5, -0.25]);
        // Not in a comma-delimited file (there `2,5` would be two values), nor with a point
        // and a comma both: text.
        let mut mixed = String::from("id;amount\n");
        for i in 0..25_000 {
            mixed.push_str(&format!("{i};{}\n", i % 100));
        }
        mixed.push_str("25000;2,5\n25001;1.5\n");
        let ingested = run(csv(), mixed.as_bytes()).0.unwrap();
        assert_eq!(ingested.columns[1].data_type, "VARCHAR", "{ingested:?}");
        // Nor when DOUBLE would round its whole numbers (18-digit identifiers): text, in the
        // sampled rows or after them.
        let mut big = String::from("id;v\n");
        for i in 0..21_000u64 {
            big.push_str(&format!("{i};{}\n", 123_456_789_012_345_678 + i));
        }
        big.push_str("21000;2,5\n");
        let ingested = run(csv(), big.as_bytes()).0.unwrap();
        assert_eq!(ingested.columns[1].data_type, "VARCHAR", "{ingested:?}");
        let early =
            run(csv(), b"id;v;w\n1;123456789012345678;2,5\n2;123456789012345679;3,5\n3;2,5;1\n").0.unwrap();
        assert_eq!(early.columns[1].data_type, "VARCHAR", "{early:?}");
        assert_eq!(early.columns[2].data_type, "DOUBLE", "{early:?}");
        // In a file with numbers written `2,5`, a point after the sampled rows may separate
        // thousands (`1.234` is 1234): text, not 1.234.
        let mut german = String::from("id;menge;preis\n");
        for i in 0..25_000 {
            german.push_str(&format!("{i};{};{},5\n", i % 100, i % 10));
        }
        german.push_str("25000;1.234;3,5\n");
        let ingested = run(csv(), german.as_bytes()).0.unwrap();
        assert_eq!(ingested.columns[1].data_type, "VARCHAR", "{ingested:?}");
        assert_eq!(ingested.columns[2].data_type, "DOUBLE", "{ingested:?}");
        // Also when the decimal commas first show in the same later rows.
        let mut same = String::from("id;menge;preis\n");
        for i in 0..25_000 {
            same.push_str(&format!("{i};{};{}\n", i % 100, i % 10));
        }
        same.push_str("25000;1.234;3,5\n");
        let ingested = run(csv(), same.as_bytes()).0.unwrap();
        assert_eq!(ingested.columns[1].data_type, "VARCHAR", "{ingested:?}");
        assert_eq!(ingested.columns[2].data_type, "DOUBLE", "{ingested:?}");
        // A fraction of more than 15 digits that is the DOUBLE's own (pandas writes them) is a number.
        let pandas = run(csv(), b"id;amount\n1;2,5\n2;0,30000000000000004\n3;3,141592653589793\n").0.unwrap();
        assert_eq!(pandas.columns[1].data_type, "DOUBLE", "{pandas:?}");
    }

    #[test]
    fn timestamps_with_seven_digits_of_zeros_past_microseconds_are_timestamps() {
        // .NET's and SQL Server's `datetime2(7)`.
        let ingested = run(
            csv(),
            b"id,t,u,clock\n1,2024-01-01T10:00:00.0000000+02:00,2024-01-01T10:00:00.1230000,10:00:00.1234560\n\
              2,2024-01-02T11:30:00.5000000Z,2024-01-02T11:30:00.0000000,11:30:00.0000000\n",
        )
        .0
        .unwrap();
        let types: Vec<_> = ingested.columns.iter().map(|c| c.data_type.as_str()).collect();
        assert_eq!(types, ["BIGINT", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP", "TIME"], "{ingested:?}");
        // A seventh digit that is not zero would be lost: text.
        let fine =
            run(csv(), b"id,u\n1,2024-01-01T10:00:00.1234567\n2,2024-01-01T10:00:00.1234560\n").0.unwrap();
        assert_eq!(fine.columns[1].data_type, "VARCHAR", "{fine:?}");
    }

    #[test]
    fn semicolon_files_with_decimal_commas_have_numbers() {
        let ingested = run(csv(), b"id;amount;code\n1;2,5;A\n2;-0,75;B\n3;10;C\n").0.unwrap();
        let types: Vec<_> =
            ingested.columns.iter().map(|c| (c.name.as_str(), c.data_type.as_str())).collect();
        assert_eq!(types, vec![("id", "BIGINT"), ("amount", "DOUBLE"), ("code", "VARCHAR")]);
        assert_eq!(ingested.notices.len(), 1, "{:?}", ingested.notices);
        assert!(ingested.notices[0].contains("\"amount\"") && ingested.notices[0].contains("decimal comma"));
        let points = run(csv(), b"id;amount;qty\n1;2,5;1.234\n2;3,5;12.500\n").0.unwrap();
        let types: Vec<_> = points.columns.iter().map(|c| (c.name.as_str(), c.data_type.as_str())).collect();
        assert_eq!(types, vec![("id", "BIGINT"), ("amount", "DOUBLE"), ("qty", "VARCHAR")]);
        assert!(
            points.notices.iter().any(|n| n.contains("\"qty\"") && n.contains("thousands")),
            "{:?}",
            points.notices
        );
        // Excel's `sep=` line, which DuckDB's sniffer skips.
        let excel = run(csv(), b"sep=;\nid;amount\n1;2,5\n2;3,25\n").0.unwrap();
        let types: Vec<_> = excel.columns.iter().map(|c| (c.name.as_str(), c.data_type.as_str())).collect();
        assert_eq!(types, vec![("id", "BIGINT"), ("amount", "DOUBLE")]);
        assert_eq!(excel.row_count, 2);
        assert_eq!(excel.notices.len(), 1, "only the decimal comma's: {:?}", excel.notices);
        let (wide, dir) = run(csv(), b"sep=;\r\nid;amount;code\r\n1;2,5;x\r\n2;3;y;z\r\n3;4;w\r\n");
        let wide = wide.unwrap();
        assert_eq!((wide.columns.len(), wide.row_count, wide.rejected_row_count), (3, 2, 1));
        let conn = Connection::open_in_memory().unwrap();
        let rejected = rejects(&conn, &dir.path().join("rejects.parquet"), 10).unwrap();
        assert_eq!(rejected.iter().map(|r| r.line).collect::<Vec<_>>(), [4], "the file's own line");
        // Blank lines after it, and an upper-case `SEP=`.
        let blank = run(csv(), b"SEP=;\n\na;b\nx;y\n").0.unwrap();
        assert_eq!((blank.columns.len(), blank.row_count), (2, 1), "{blank:?}");
        assert_eq!(blank.columns[0].name, "a");
        let renamed = run(csv(), b"sep=;\nid;id\n1;2\n").0.unwrap();
        assert_eq!(renamed.notices, ["column 2 is named \"id\" like another column; it is called id_1"]);
    }

    #[test]
    fn blank_lines_end_a_file_of_one_column_without_becoming_rows() {
        let values = |dir: &tempfile::TempDir| -> Vec<Option<String>> {
            let conn = Connection::open_in_memory().unwrap();
            let data = quote_literal(&dir.path().join("data.parquet").display().to_string());
            let mut statement = conn.prepare(&format!("SELECT * FROM read_parquet({data})")).unwrap();
            statement.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
        };
        let some = |v: &[&str]| v.iter().map(|v| (!v.is_empty()).then(|| v.to_string())).collect::<Vec<_>>();
        for (file, expected) in [
            // A blank line between values is a missing value (a sheet's empty cell); those
            // after the last value are not rows, whatever the line ends.
            (&b"name\nalice\n\nbob\n\n\n"[..], &["alice", "", "bob"][..]),
            (b"name\r\nalice\r\n\r\nbob\r\n\r\n", &["alice", "", "bob"]),
            (b"name\ralice\rbob\r\r\r", &["alice", "bob"]),
            (b"name\nalice\nbob", &["alice", "bob"]),
            (b"name\n\n\n", &[]),
        ] {
            let (ingested, dir) = run(csv(), file);
            let ingested = ingested.unwrap();
            let text = String::from_utf8_lossy(file);
            assert_eq!(ingested.row_count, expected.len() as u64, "{text:?}");
            assert_eq!(values(&dir), some(expected), "{text:?}");
        }
        // A file of CR line ends is read by its lines for its notices too: no notice that
        // its one name (the whole file, read as one line) is a duplicate.
        let cr = run(csv(), b"v\r1\r2\r\r3\r\r\r").0.unwrap();
        assert!(cr.notices.is_empty(), "{:?}", cr.notices);
        // Files of several columns: DuckDB leaves blank lines out wherever they are.
        let two = run(csv(), b"a,b\n1,2\n\n3,4\n\n\n").0.unwrap();
        assert_eq!(two.row_count, 2);
    }

    #[test]
    fn a_title_above_the_header_is_skipped() {
        let names = |i: &Ingested| i.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        for file in [
            &b"Sales report 2024\nid,amount\n1,10\n2,20\n3,30\n"[..],
            b"Report, 2024\nid,amount,name\n1,10,a\n2,20,b\n3,30,c\n",
            b"Exported from CRM\nGenerated by admin\n\nid,amount\n1,10\n2,20\n3,30\n",
            // A delimiter after every line's last value (bank and SAP exports).
            b"Report\nid,amount,name,\n1,10,a,\n2,20,b,\n3,30,c,\n",
            // Lines ended by CR alone (Excel for Mac).
            b"Sales report 2024\rid,amount\r1,10\r2,20\r3,30\r",
        ] {
            let ingested = run(csv(), file).0.unwrap();
            assert_eq!(names(&ingested)[..2], ["id", "amount"], "{}", String::from_utf8_lossy(file));
            assert_eq!((ingested.row_count, ingested.rejected_row_count), (3, 0));
            assert_eq!(ingested.columns[1].data_type, "BIGINT");
            assert!(ingested.notices[0].contains("skipped as a title"), "{:?}", ingested.notices);
        }
        // Other delimiters: the one that makes the most columns.
        for file in [
            &b"Report 2024\nid;amount;name\n1;10;a\n2;20;b\n"[..],
            b"Report 2024\nid\tamount\n1\t10\n2\t20\n",
        ] {
            let ingested = run(csv(), file).0.unwrap();
            assert_eq!(names(&ingested)[..2], ["id", "amount"], "{}", String::from_utf8_lossy(file));
            assert_eq!(ingested.row_count, 2);
        }
        // A malformed row is still kept aside, numbered by the file's own lines.
        let (ingested, dir) = run(csv(), b"Sales report\nid,amount\n1,10\n2,20,5\n3,30\n");
        let ingested = ingested.unwrap();
        assert_eq!((ingested.row_count, ingested.rejected_row_count), (2, 1));
        let conn = Connection::open_in_memory().unwrap();
        let rejected = rejects(&conn, &dir.path().join("rejects.parquet"), 10).unwrap();
        assert_eq!(rejected.iter().map(|r| r.line).collect::<Vec<_>>(), [4]);
        // Not a title: a header with fewer values than rows with a trailing delimiter, or
        // than a ragged first row.
        let trailing = run(csv(), b"a,b\n1,2,\n3,4,\n").0.unwrap();
        assert_eq!(names(&trailing)[..2], ["a", "b"]);
        assert_eq!(trailing.row_count, 2);
        // A header over rows that end in a delimiter: the header, told so or not.
        for header in [None, Some(true)] {
            let kind = SourceKind::Delimited { delimiter: None, header, text_columns: vec![] };
            let rows = run(kind, b"id,amount,name\n1,10,a,\n2,20,b,\n3,30,c,\n4,40,d,\n").0.unwrap();
            assert_eq!(names(&rows)[..3], ["id", "amount", "name"], "{header:?}: {rows:?}");
            assert_eq!(rows.row_count, 4, "{header:?}");
        }
        let ragged = run(csv(), b"name,city\nAda,London,extra\nBob,Paris\nCy,Rome\n").0.unwrap();
        assert_eq!(names(&ragged), ["name", "city"]);
        assert_eq!((ragged.row_count, ragged.rejected_row_count), (2, 1));
        // A header one value short (R's row names), or over rows of text alone: a header, not
        // a title (its rows are kept aside rather than the header lost).
        for file in [
            &b"name,city\nalice,paris,fr\nbob,rome,it\ncarol,oslo,no\n"[..],
            b"comment\nhello, world\nfine, thanks\nok, sure\n",
            b"first,last\nAda,Lovelace,1815\nAlan,Turing,1912\n",
        ] {
            let ingested = run(csv(), file).0.unwrap();
            let header = String::from_utf8_lossy(file).lines().next().unwrap().to_string();
            assert_eq!(names(&ingested).join(","), header, "{header}");
            assert!(!ingested.notices.iter().any(|n| n.contains("title")), "{:?}", ingested.notices);
        }
    }

    #[test]
    fn parquet_timestamps_with_a_time_zone_in_nanoseconds_are_read_as_the_engine_can_use_them() {
        let (_dir, source, _) = parquet_of(
            "SELECT '2024-01-01 10:00:00.123456+00'::TIMESTAMPTZ_NS AS micro, \
                    '2024-01-01 10:00:00.123456789+00'::TIMESTAMPTZ_NS AS nano, 1 AS n",
        );
        let ingested = run(SourceKind::Parquet, &std::fs::read(&source).unwrap()).0.unwrap();
        let types: Vec<_> =
            ingested.columns.iter().map(|c| (c.name.as_str(), c.data_type.as_str())).collect();
        assert_eq!(types, [("micro", "TIMESTAMP WITH TIME ZONE"), ("nano", "VARCHAR"), ("n", "INTEGER")]);
    }

    #[test]
    fn a_quote_inside_a_header_name_is_read_as_written() {
        let ingested = run(csv(), b"x,say \"hi\"\n1,2\n").0.unwrap();
        assert_eq!(ingested.columns[1].name, "say \"hi\"");
        assert!(ingested.notices.is_empty(), "{:?}", ingested.notices);
    }

    #[test]
    fn parquet_columns_renamed_are_reported() {
        let bytes =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/renamed_columns.parquet"))
                .unwrap();
        let ingested = run(SourceKind::Parquet, &bytes).0.unwrap();
        let names: Vec<_> = ingested.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["a", "s", "a_1", "C3", " b "]);
        assert_eq!(
            ingested.notices,
            [
                "column 3 is named \"a\" like another column; it is called a_1",
                "column 4 had no name; it is called C3"
            ]
        );
        let (_source_dir, source, _) = parquet_of("SELECT 1 AS a, {'x': 1} AS s, 2 AS b");
        let plain = run(SourceKind::Parquet, &std::fs::read(&source).unwrap()).0.unwrap();
        assert!(plain.notices.is_empty(), "{:?}", plain.notices);
    }

    #[test]
    fn json_must_hold_objects() {
        let ingested = run(SourceKind::JsonArray, br#"[{"a": 1, "b": "x"}, {"a": 2, "b": null}]"#).0.unwrap();
        assert_eq!(ingested.row_count, 2);
        let lines = run(SourceKind::JsonLines, b"{\"a\": 1}\n{\"a\": 2}\n").0.unwrap();
        assert_eq!(lines.row_count, 2);
        for (bad, says) in [
            (&br#"[]"#[..], "cannot be read as a table"),
            (br#"[{}, {}]"#, "cannot be read as a table"),
            (br#"[{"": 1, "b": 2}]"#, "cannot be read as a table"),
            (br#"[{"o": {"a": 1, "A": 2}}]"#, "differ only in case"),
        ] {
            match run(SourceKind::JsonArray, bad).0 {
                Err(IngestError::BadInput(message)) => {
                    assert!(message.contains(says) && !message.contains("ignore_errors"), "{message}")
                }
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bad)),
            }
        }
        // A bad line of JSON lines is named by its record (DuckDB said one more).
        for (bad, record) in [
            (&b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\nbad\n"[..], 4),
            (b"bad\n{\"a\":1}\n", 1),
            (b"{\"a\":1}\n\nbad\n", 2),
        ] {
            match run(SourceKind::JsonLines, bad).0 {
                Err(IngestError::BadInput(message)) => {
                    assert!(message.contains(&format!("in record {record}:")), "{message}")
                }
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bad)),
            }
        }
        for bad in [&b"[1, 2, 3]"[..], b"{\"a\": 1}", b"[{\"a\": 1}"] {
            let result = run(SourceKind::JsonArray, bad).0;
            assert!(
                matches!(result, Err(IngestError::BadInput(_))),
                "{:?}: {result:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
