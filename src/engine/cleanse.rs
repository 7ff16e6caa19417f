//! Cleansing ("Clean My Data"): a plan of steps compiled into one DuckDB pipeline that reads
//! the dataset's Parquet copy and writes a cleaned copy, the quarantined rows with their
//! reasons, and exact accounting of what each step did.
//!
//! The plan compiles to a chain of CTEs over `read_parquet(…, file_row_number = true)`: each
//! step a `SELECT` over the previous one, every row keeping its original position
//! (`__ag_row`) so that "first", "last", forward and backward fills follow the file's order.
//! Names are quoted with [`quote_identifier`]; every user value is a bound parameter (`$n`);
//! numbers a statistic needs as a constant (a percentile) go through [`quote_literal`]. Every
//! step is deterministic (ties are broken by row position or value).
//!
//! Rows are not filtered out as they go: a step that removes or quarantines a row sets its
//! fate (`__ag_fate`, the step's number, and `__ag_reason` when quarantined), and every value a
//! step changes, or fails to handle, sets a flag column of that step. Row-by-row steps (type
//! fixes, standardisation, unit conversions, quarantine, constant fills) therefore fuse into
//! one pipeline. A step that reads its input twice (duplicates, statistics-based fills,
//! outliers) first closes the segment: the chain so far becomes one temporary table, counted
//! in one scan — rows per fate, flags per step and column — and the next segment reads back
//! its live rows. A segment of light steps only ([`is_light`]: fills from statistics, capping
//! or removing outliers, unit conversions) is not stored in a run: it stays a query over the
//! stored tables, computed again by each statement that reads it (its counts, the next step,
//! the output), which costs less than writing every row and reading it back; the statistics
//! themselves (fill values, outlier bounds) are stored as one-row tables. A run thus holds at
//! most two segments' tables (the one being read, the one being written) and the small tables
//! of quarantined `(row, reason)`s and statistics; the output is the last segment's live
//! rows.
//!
//! Nothing grows with the square of the columns: a step's statistics are one row from one
//! aggregation and one grouping of unpivoted values per kind and type ([`grouped_values`]),
//! not a subquery (a join) per column; consecutive outlier steps on distinct columns are one
//! segment ([`outlier_run`]) rather than a segment each; consecutive standardisations (and unit
//! conversions) of distinct columns one projection per level of operations
//! ([`standardize_run`], [`conversion_run`]) rather than a projection of every column each;
//! and no more than [`MAX_UNSTORED_SEGMENTS`] segments in a row stay queries, so that steps
//! that cannot be fused (outliers removed column by column) are not computed again by every
//! step after them.
//!
//! Accounting: `rows_in` is the source's count; each step's removed and quarantined rows are
//! counted by fate; `rows_out` = `rows_in − Σ removed − Σ quarantined` is checked against the
//! last table's live rows. A changed value is `before IS DISTINCT FROM after` (compared as
//! text when a step changes the type) in a row the step kept; a failure is counted in a row
//! the step received.
//!
//! Step semantics, in the plan's order (the product's chain order is quarantine, fix types,
//! standardize, deduplicate, nulls, outliers, but any order compiles):
//! - **Quarantine**: a row with a null or blank required value, a number outside a range, or
//!   a value not matching a pattern (RE2, whole value) leaves for the quarantine file with the
//!   reasons (`missing email; age out of range`).
//! - **FixTypes**: conversion of text (trimmed) to integer (whole numbers only), float,
//!   boolean (`true/false/t/f/yes/no/y/n/1/0`, any case), date or timestamp (ISO, then the
//!   strptime formats of the plan's `Standardize` step for that column, else
//!   [`DEFAULT_DATE_FORMATS`]), read whole ([`text_timestamp`]: an offset as UTC, `AM`/`PM`,
//!   nothing dropped after the time); a time of day other than midnight does not convert to a
//!   date (the time is not dropped); a float is [`FLOAT_RE`] (not `1_000`, `inf`, `NaN`). A blank value becomes null without failing; a value that does
//!   not convert fails: counted, and nulled or quarantined.
//! - **Standardize** (text columns; date formats also on date/timestamp columns): email
//!   normalisation (trim, lowercase), trim, whitespace collapse, case, value map (exact match
//!   on the value so far), then date reformatting (a value no format parses is kept and
//!   counted as failed, as is an email that does not look like one), or phone numbers to
//!   E.164 (libphonenumber's rules through the `phonenumber` crate, in the vectorised DuckDB
//!   scalar function [`PHONE_FN`], numbers without a country code read as the step's region's,
//!   an extension kept after the number as `;ext=89`; a value that is not a valid number is
//!   kept and counted as failed). The column becomes
//!   text.
//! - **Deduplicate**: rows equal on every column, on every column with text compared
//!   trimmed, whitespace-collapsed and lowercased, or on key columns; the first or last by
//!   position is kept. Fuzzy mode: a row is removed when some earlier row of its block
//!   (equal values of a blocking column, else equal first characters of the key: the first
//!   one, or as many as keep a block within [`FUZZY_BLOCK_ROWS`] rows) has a
//!   normalised key (key columns as text, trimmed, whitespace-collapsed, lowercased, joined
//!   with `" | "`) with a Jaro–Winkler similarity by characters ([`JaroWinkler`]) at least
//!   the threshold; a self-join within
//!   blocks, so it scales with block sizes, not the table's. Rows whose key columns are all
//!   null or blank are never duplicates. Similarity is not closed transitively: a row similar
//!   only to a removed row is removed too, but two rows similar to a common earlier one are
//!   not compared through it. The first row is kept (keeping the last is refused). With
//!   `merge`, the kept row of a group fills each of its nulls with the group's first non-null
//!   value (by position), counted as changes of that column; a group is the rows of equal key,
//!   or, fuzzy, a kept row and the removed rows whose chain of earliest similar earlier rows
//!   leads to it.
//! - **Nulls**: null tokens (compared trimmed and lowercased) become NULL in every text
//!   column; then rows with a null in a `Drop` column are removed; then the other columns are
//!   filled, statistics being computed over the rows left at that point. A null nothing can
//!   fill (a forward fill before the column's first value, a back fill after its last, a
//!   statistic of no values) stays null and is counted as failed.
//! - **Outliers**: bounds from z-score (sample standard deviation), IQR (quartiles) or
//!   percentiles (fractions), quantiles as `quantile_cont` gives them for DOUBLE values (every
//!   numeric column's values read as DOUBLE), from the ranks of the grouped values,
//!   [`ranked_quantiles`], which spill where `quantile_cont` holds every value; outside values are removed,
//!   capped to the bounds (integers to the whole numbers inside, or the nearest on their side when
//!   none is) or replaced by the median (an integer one rounded half away from zero).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use duckdb::{
    Connection,
    core::{DataChunkHandle, LogicalTypeId},
    ffi::duckdb_string_t,
    params_from_iter,
    types::{DuckString, Value as Duck},
    vscalar::{ScalarFunctionSignature, VScalar},
    vtab::arrow::WritableVector,
};

use super::{PARQUET_OPTIONS, quote_identifier, quote_literal};
use crate::domain::ColumnInfo;

/// Null tokens used when a plan asks for none in particular.
pub const DEFAULT_NULL_TOKENS: [&str; 6] = ["", "N/A", "NA", "null", "?", "-"];

/// Date formats (strptime) tried in order when converting text to dates without a
/// `Standardize` step's list. Each two-digit-year form comes before its four-digit one:
/// DuckDB's `%Y` also reads `24` (as the year 24), where `%y` reads it as 2024 (and 69–99 as
/// 1969–1999); `%y` takes exactly two digits, so a four-digit year passes on to `%Y`.
pub const DEFAULT_DATE_FORMATS: [&str; 11] = [
    "%Y-%m-%d", "%d/%m/%y", "%d/%m/%Y", "%m/%d/%y", "%m/%d/%Y", "%Y/%m/%d", "%d.%m.%y", "%d.%m.%Y",
    "%b %d %Y", "%d %b %Y", "%B %d %Y",
];

/// Rows a default fuzzy-duplicate block may hold before it is split by a longer prefix of
/// the key (see the `Deduplicate` step).
const FUZZY_BLOCK_ROWS: u64 = 1000;
/// The longest key prefix a default fuzzy-duplicate block is split by.
const FUZZY_PREFIX: usize = 8;

/// The steps to run, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct CleansePlan {
    pub steps: Vec<Step>,
}

/// The type a column is converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetType {
    Integer,
    Float,
    Boolean,
    Date,
    Timestamp,
}

/// What becomes of a value that does not convert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    Null,
    Quarantine,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    Upper,
    Lower,
    Title,
}

/// How one text column is standardised.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Standardize {
    pub column: String,
    pub trim: bool,
    pub collapse_spaces: bool,
    pub case: Option<Case>,
    /// Exact value → replacement, applied after trimming, collapsing and case.
    pub value_map: Vec<(String, String)>,
    /// strptime formats tried in order, and the strftime format written.
    pub date_formats: Option<(Vec<String>, String)>,
    /// Trim and lowercase; values that do not look like an email are counted as failed.
    pub email: bool,
    /// Phone numbers to E.164 with libphonenumber's rules, numbers without a country code
    /// read as this region's (ISO 3166 alpha-2, e.g. `"US"`); values that are not a valid
    /// number are kept and counted as failed.
    pub phone_region: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DedupMode {
    Exact,
    CaseInsensitive,
    Keys(Vec<String>),
    /// Key columns compared as text, trimmed, whitespace-collapsed and lowercased (emails that
    /// differ only in case or spaces); a row with a null or blank key is never a duplicate.
    KeysIgnoreCase(Vec<String>),
    /// Near duplicates: the normalised key (each of `columns` as text, trimmed,
    /// whitespace-collapsed and lowercased, joined with `" | "`) has a Jaro–Winkler similarity
    /// of at least `threshold` (0..=1) with an earlier row's key in the same block: equal
    /// values of the `block` column (nulls one block), else equal first characters of the key.
    /// Only [`Keep::First`] is supported.
    Fuzzy {
        columns: Vec<String>,
        threshold: f64,
        block: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    First,
    Last,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NullStrategy {
    Drop,
    Mean,
    Median,
    Mode,
    ForwardFill,
    BackFill,
    Constant(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OutlierMethod {
    /// |x − mean| > k · sample standard deviation.
    ZScore(f64),
    /// Outside [Q1 − k·IQR, Q3 + k·IQR].
    Iqr(f64),
    /// Outside the [low, high] quantiles (fractions in 0..=1).
    Percentile(f64, f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutlierAction {
    Remove,
    Cap,
    /// Replace with the column's median.
    Impute,
}

/// One step of a plan. Column names are the dataset's (the caller validates them).
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Quarantine {
        required: Vec<String>,
        ranges: Vec<(String, Option<f64>, Option<f64>)>,
        /// (column, RE2 pattern the whole value must match).
        patterns: Vec<(String, String)>,
    },
    FixTypes {
        columns: Vec<(String, TargetType)>,
        on_failure: OnFailure,
        /// Columns whose slash dates are read month first (`03/04/2024` is March 4): see
        /// [`month_first`].
        month_first: Vec<String>,
    },
    Standardize(Standardize),
    Deduplicate {
        mode: DedupMode,
        keep: Keep,
        /// The kept row of each duplicate group takes, in each of its null columns, the first
        /// non-null value of the group (by position).
        merge: bool,
    },
    Nulls {
        tokens: Vec<String>,
        columns: Vec<(String, NullStrategy)>,
    },
    Outliers {
        column: String,
        method: OutlierMethod,
        action: OutlierAction,
    },
    /// A numeric column converted between units, as DOUBLE (see [`Conversion`]).
    ConvertUnits {
        column: String,
        conversion: Conversion,
    },
}

/// A linear conversion between units: `(value − subtract) · multiply / divide + add`, with
/// `multiply / divide` a ratio of whole numbers, so that exact answers come out exact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conversion {
    pub subtract: f64,
    pub multiply: f64,
    pub divide: f64,
    pub add: f64,
}

impl Conversion {
    /// `value · multiply + add`.
    pub fn linear(multiply: f64, add: f64) -> Conversion {
        Conversion { subtract: 0.0, multiply, divide: 1.0, add }
    }
}

impl Step {
    pub fn name(&self) -> &'static str {
        match self {
            Step::Quarantine { .. } => "quarantine",
            Step::FixTypes { .. } => "fix_types",
            Step::Standardize(_) => "standardize",
            Step::Deduplicate { .. } => "deduplicate",
            // Null tokens alone (the chain's first step), not the fills: each counts its own
            // changes, so a token nulled and then filled is one change of each.
            Step::Nulls { columns, .. } if columns.is_empty() => "null_tokens",
            Step::Nulls { .. } => "nulls",
            Step::Outliers { .. } => "outliers",
            Step::ConvertUnits { .. } => "convert_units",
        }
    }
}

/// Values one step changed in one column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepChange {
    /// The step's name ([`Step::name`]).
    pub step: String,
    pub column: String,
    /// Values that differ after the step (rows the step kept).
    pub changed: u64,
    /// Values the step could not handle: conversions that failed (nulled or quarantined),
    /// dates no format parsed, invalid emails (kept, flagged), nulls left with no value to
    /// fill them.
    pub failed: u64,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CleanseOutcome {
    pub rows_in: u64,
    pub rows_out: u64,
    /// Every step in plan order with the rows it removed (not counting quarantined ones).
    pub rows_removed_by_step: Vec<(String, u64)>,
    /// Every step in plan order with the rows it quarantined.
    pub rows_quarantined_by_step: Vec<(String, u64)>,
    pub rows_quarantined: u64,
    /// Per step and column, the values changed or failed (columns with neither are left out).
    pub changes: Vec<StepChange>,
}

/// A sampled row before and after the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewRow {
    /// 1-based position in the dataset.
    pub row: u64,
    /// The values as text (null stays null), in column order.
    pub before: Vec<Option<String>>,
    /// `None` when the row was removed or quarantined.
    pub after: Option<Vec<Option<String>>>,
    /// The step that removed the row, or `quarantine: <reasons>`.
    pub fate: Option<String>,
}

/// A plan run over a sample, nothing written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleansePreview {
    pub outcome: CleanseOutcome,
    pub columns: Vec<String>,
    pub rows: Vec<PreviewRow>,
}

/// The prefix of the compiled steps' own columns, which no dataset column may have.
pub const RESERVED_PREFIX: &str = "__ag_";

/// Whether a dataset column's name clashes with the compiled steps' own names
/// ([`RESERVED_PREFIX`], and the Parquet reader's `file_row_number`): such a dataset cannot be
/// cleansed until the column is renamed.
pub fn is_reserved_column(name: &str) -> bool {
    let lower = name.to_lowercase();
    lower == "file_row_number" || lower.starts_with(RESERVED_PREFIX)
}

/// The original position, carried through every step.
const ROW: &str = "__ag_row";
/// A quarantined row's reasons.
const REASON: &str = "__ag_reason";
/// The step (1-based) that removed or quarantined a row; null while the row is kept.
const FATE: &str = "__ag_fate";
/// Whitespace only (Unicode's White_Space), or nothing.
const BLANK_RE: &str = r"[\s\p{Z}\x{0B}\x{85}]*";
/// Text shaped like a date of [`DEFAULT_DATE_FORMATS`] (digits and separators, or a month's
/// name with a day and a year).
const DATE_LIKE_RE: &str =
    r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|[A-Za-z]{3,9}\.? \d{1,2},? \d{4}|\d{1,2} [A-Za-z]{3,9}\.? \d{4}";
/// An e-mail address: dot-separated parts around one `@`, no part empty (`a@b..com`,
/// `a@b.com.` and `a..b@c.com` are not addresses), a dot in the domain.
const EMAIL_RE: &str = r"[^@\s.]+(\.[^@\s.]+)*@[^@\s.]+(\.[^@\s.]+)+";
/// A number as text the type-fixer converts to a float: digits with an optional sign,
/// decimal point and exponent. (DuckDB's cast also reads `1_000`, `inf` and `NaN`, which are
/// not numbers here, as for the quarantine's ranges.)
const FLOAT_RE: &str = r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?";
/// ISO dates, date-times and date-times with a UTC offset, whole: DuckDB's casts to DATE and
/// TIMESTAMP drop what follows the time (` PM`, ` EST`, `-03:00`, junk).
const ISO_DATE_RE: &str = r"\d{4,}-\d{1,2}-\d{1,2}";
const ISO_DATE_TIME_RE: &str = r"\d{4}-\d{1,2}-\d{1,2}[T ]\d{1,2}:\d{2}(:\d{2}(\.\d{1,6}0{0,3})?)?";
const ISO_OFFSET_RE: &str =
    r"\d{4}-\d{1,2}-\d{1,2}[T ]\d{1,2}:\d{2}(:\d{2}(\.\d{1,6}0{0,3})?)?(Z|[+-]\d{2}(:?\d{2})?)";
/// 12-hour ISO date-times (`2024-01-05 10:00:00 PM`), read with strptime.
const TWELVE_HOUR_FORMATS: [&str; 2] = ["%Y-%m-%d %I:%M:%S %p", "%Y-%m-%d %I:%M %p"];

/// `try_strptime` of the (stripped) text `v` with `formats` (each as SQL text, with whether
/// its Rust text has a four-digit year `%Y`), the first that reads the whole value winning; a
/// format with `%Y` reads only a value holding four digits in a row: DuckDB's `%Y` also reads
/// `24` and `3`, as the years 24 and 3, where a user who wrote `%Y` meant four digits (and
/// `%y`, which takes two, is there for the others).
fn strptime_sql(v: &str, formats: &[(String, bool)]) -> String {
    let list = |full: bool| {
        formats
            .iter()
            .filter(|(_, f)| full || !*f)
            .map(|(sql, _)| sql.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !formats.iter().any(|(_, full)| *full) {
        return format!("try_strptime({v}, [{}])", list(true));
    }
    let short = list(false);
    let otherwise =
        if short.is_empty() { "NULL".to_string() } else { format!("try_strptime({v}, [{short}])") };
    format!(
        r"CASE WHEN regexp_matches({v}, '\d{{4}}') THEN try_strptime({v}, [{}]) ELSE {otherwise} END",
        list(true)
    )
}

/// The formats of [`strptime_sql`], each written as a SQL literal.
fn literal_formats<S: AsRef<str>>(formats: &[S]) -> Vec<(String, bool)> {
    formats.iter().map(|f| (quote_literal(f.as_ref()), f.as_ref().contains("%Y"))).collect()
}

/// The timestamp a (stripped) text `v` holds, read strictly: an ISO date or date-time (one
/// with a UTC offset as UTC), a 12-hour ISO date-time, or one of `formats` (as
/// [`strptime_sql`] reads them, whole value); else null. A TIMESTAMP (a format with `%z` gives
/// UTC). (strptime is slow on values it cannot parse: the 12-hour formats are tried only on
/// values ending in AM or PM.)
fn text_timestamp(v: &str, formats: &[(String, bool)]) -> String {
    let twelve = TWELVE_HOUR_FORMATS.map(quote_literal).join(", ");
    format!(
        "coalesce(CASE WHEN regexp_full_match({v}, '{ISO_DATE_RE}') OR regexp_full_match({v}, '{ISO_DATE_TIME_RE}') \
         THEN TRY_CAST({v} AS TIMESTAMP) WHEN regexp_full_match({v}, '{ISO_OFFSET_RE}') \
         THEN CAST(TRY_CAST({v} AS TIMESTAMPTZ) AS TIMESTAMP) END, \
         CASE WHEN regexp_matches({v}, '[AaPp][Mm]$') THEN CAST(try_strptime({v}, [{twelve}]) AS TIMESTAMP) END, \
         CAST({} AS TIMESTAMP))",
        strptime_sql(v, formats)
    )
}
/// The scalar function `(value VARCHAR, region VARCHAR) -> VARCHAR` formatting a phone number
/// in E.164, null when the value is not a valid number (see [`PhoneE164`]).
const PHONE_FN: &str = "agensium_phone_e164";

/// [`PHONE_FN`]: each row's value parsed with libphonenumber's rules, numbers without a country
/// code read as the region's; a valid number in E.164, else (and for a null value or an
/// unknown region) null.
struct PhoneE164;

impl VScalar for PhoneE164 {
    type State = ();

    fn invoke(
        _: &Self::State,
        input: &mut DataChunkHandle,
        output: &mut dyn WritableVector,
    ) -> Result<(), Box<dyn std::error::Error>> {
        // The region of the previous row, parsed once per run of equal regions.
        let mut last: Option<(String, Option<phonenumber::country::Id>)> = None;
        super::map_two_texts(input, output, |value, region| {
            let id = match &last {
                Some((r, id)) if r == region => *id,
                _ => {
                    let id = parse_region(region);
                    last = Some((region.to_string(), id));
                    id
                }
            };
            id.and_then(|id| phone_e164(id, value))
        });
        Ok(())
    }

    fn signatures() -> Vec<ScalarFunctionSignature> {
        super::of_two_texts(LogicalTypeId::Varchar)
    }
}

/// Whether a fuzzy key `__ag_k` is ASCII (as many bytes as characters), as `__ag_a`.
const ASCII_KEY: &str = "strlen(__ag_k) = length(__ag_k) AS __ag_a";
/// The scalar function `(a VARCHAR, b VARCHAR) -> DOUBLE`: the Jaro–Winkler similarity of two
/// texts by characters (see [`JaroWinkler`]).
const JARO_WINKLER_FN: &str = "agensium_jaro_winkler";

/// [`JARO_WINKLER_FN`]: [`jaro_winkler`] of each row's two texts (null when either is).
/// DuckDB's `jaro_winkler_similarity` compares bytes, so a letter of two or more bytes (`é`,
/// every Cyrillic or CJK letter) counts as several, and letters sharing a lead byte partly
/// match. The fuzzy step calls this only when a key is not ASCII; for ASCII the two agree, and
/// DuckDB's is faster.
struct JaroWinkler;

/// The Jaro–Winkler similarity of `a` and `b` by Unicode characters, as DuckDB (rapidfuzz)
/// defines it on bytes: the Jaro similarity, plus 0.1 × the common prefix (at most four
/// characters) × what it lacks of 1 when it is above 0.7; 0 when either is empty.
fn jaro_winkler(a: &str, b: &str) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let jaro = short_jaro(a, b).unwrap_or_else(|| strsim::jaro(a, b));
    if jaro <= 0.7 {
        return jaro;
    }
    let prefix = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).take(4).count();
    jaro + 0.1 * prefix as f64 * (1.0 - jaro)
}

/// The Jaro similarity of two texts of at most 64 characters each (`None` for longer ones),
/// with the characters on the stack and the matched ones as bits: the fuzzy self-join calls
/// this for every candidate pair, and strsim's allocating version made a million rows of
/// accented names take 19 s instead of 5 s.
fn short_jaro(a: &str, b: &str) -> Option<f64> {
    fn chars(text: &str) -> Option<([char; 64], usize)> {
        let mut out = ['\0'; 64];
        let mut n = 0;
        for c in text.chars() {
            *out.get_mut(n)? = c;
            n += 1;
        }
        Some((out, n))
    }
    let ((a, la), (b, lb)) = (chars(a)?, chars(b)?);
    let (a, b) = (&a[..la], &b[..lb]);
    let window = (la.max(lb) / 2).saturating_sub(1);
    let (mut a_matched, mut b_matched, mut matches) = (0u64, 0u64, 0usize);
    for (i, ca) in a.iter().enumerate() {
        let lo = i.saturating_sub(window);
        for (j, cb) in b.iter().enumerate().take((i + window + 1).min(lb)).skip(lo) {
            if b_matched & (1 << j) == 0 && cb == ca {
                a_matched |= 1 << i;
                b_matched |= 1 << j;
                matches += 1;
                break;
            }
        }
    }
    if matches == 0 {
        return Some(0.0);
    }
    // Matched characters out of order, in pairs.
    let (mut k, mut transposed) = (0, 0usize);
    for (i, ca) in a.iter().enumerate() {
        if a_matched & (1 << i) != 0 {
            while b_matched & (1 << k) == 0 {
                k += 1;
            }
            transposed += usize::from(*ca != b[k]);
            k += 1;
        }
    }
    let m = matches as f64;
    Some((m / la as f64 + m / lb as f64 + (m - (transposed / 2) as f64) / m) / 3.0)
}

impl VScalar for JaroWinkler {
    type State = ();

    fn invoke(
        _: &Self::State,
        input: &mut DataChunkHandle,
        output: &mut dyn WritableVector,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let len = input.len();
        let (a, b) = (input.flat_vector(0), input.flat_vector(1));
        // SAFETY: both arguments are VARCHAR vectors of `len` rows (the signature).
        let a_strs = unsafe { a.as_slice_with_len::<duckdb_string_t>(len) };
        let b_strs = unsafe { b.as_slice_with_len::<duckdb_string_t>(len) };
        let mut out = output.flat_vector();
        for row in 0..len {
            if a.row_is_null(row as u64) || b.row_is_null(row as u64) {
                out.set_null(row);
                continue;
            }
            let (mut x, mut y) = (a_strs[row], b_strs[row]);
            let similarity =
                jaro_winkler(&DuckString::new(&mut x).as_str(), &DuckString::new(&mut y).as_str());
            // SAFETY: the result is a DOUBLE vector of at least `len` rows (the signature).
            unsafe { out.as_mut_slice_with_len::<f64>(len)[row] = similarity };
        }
        Ok(())
    }

    fn signatures() -> Vec<ScalarFunctionSignature> {
        super::of_two_texts(LogicalTypeId::Double)
    }
}

/// A region code (ISO 3166 alpha-2, any case) libphonenumber knows.
pub fn parse_region(region: &str) -> Option<phonenumber::country::Id> {
    region.trim().to_ascii_uppercase().parse().ok()
}

/// `value` in E.164 when it is a valid number (read as `region`'s without a country code),
/// followed by its extension as RFC 3966 writes one (`+14155552671;ext=89`), which E.164
/// has no place for. A value written with `+` carries its country code and is parsed without
/// a region: with one, the phonenumber crate also strips the region's national prefix after
/// the country code (`+49 1512…` read in the US lost its `1`), and refuses some valid numbers.
fn phone_e164(region: phonenumber::country::Id, value: &str) -> Option<String> {
    let value = ascii_digits(value);
    // RFC 3966's `;ext=` (this function's own output), which the phonenumber crate refuses,
    // as the extension marker it reads.
    let value = match value.to_ascii_lowercase().find(";ext=") {
        Some(at) => std::borrow::Cow::Owned(format!("{} ext. {}", &value[..at], &value[at + 5..])),
        None => value,
    };
    let value = value.trim();
    let region = (!value.starts_with('+')).then_some(region);
    let number = phonenumber::parse(region, value).ok()?;
    if !phonenumber::is_valid(&number) {
        return None;
    }
    let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
    Some(match number.extension().map(|ext| ext.as_ref() as &str).filter(|ext| !ext.is_empty()) {
        Some(ext) => format!("{e164};ext={ext}"),
        None => e164,
    })
}

/// `value` with full-width forms (`＋１ ４１５…`, as East Asian input methods type them) and
/// Arabic-Indic digits in ASCII, as libphonenumber reads them; the phonenumber crate does not.
fn ascii_digits(value: &str) -> std::borrow::Cow<'_, str> {
    if value.is_ascii() {
        return value.into();
    }
    value
        .chars()
        .map(|c| match c {
            // U+FF01–U+FF5E are ASCII's `!`–`~` at full width; U+3000 the ideographic space.
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            '\u{0660}'..='\u{0669}' => char::from_u32(c as u32 - 0x0660 + '0' as u32).unwrap_or(c),
            '\u{06F0}'..='\u{06F9}' => char::from_u32(c as u32 - 0x06F0 + '0' as u32).unwrap_or(c),
            _ => c,
        })
        .collect::<String>()
        .into()
}

/// Registers [`PHONE_FN`] and [`JARO_WINKLER_FN`] on `conn`, each unless it already is.
fn register_functions(conn: &Connection) -> anyhow::Result<()> {
    let known = |name: &str| -> anyhow::Result<bool> {
        conn.query_row("SELECT count(*) > 0 FROM duckdb_functions() WHERE function_name = ?", [name], |row| {
            row.get(0)
        })
        .context("looking up the cleansing functions")
    };
    if !known(PHONE_FN)? {
        conn.register_scalar_function::<PhoneE164>(PHONE_FN)
            .with_context(|| format!("registering {PHONE_FN}"))?;
    }
    if !known(JARO_WINKLER_FN)? {
        conn.register_scalar_function::<JaroWinkler>(JARO_WINKLER_FN)
            .with_context(|| format!("registering {JARO_WINKLER_FN}"))?;
    }
    Ok(())
}

/// Runs `plan` over the Parquet file `data` (whose columns are `columns`), writing
/// `out_dir/data.parquet` (the kept rows, in their original order) and
/// `out_dir/quarantine.parquet` (the quarantined rows as they were in `data`, with `_reason`
/// and their 1-based `_row`; underscores are added in front of either name that a column
/// already has). Each file is written beside its final name and renamed into place.
/// `progress(fraction 0..=1, stage)` is called after each stored segment and before each
/// output is written, never going backwards.
pub fn run(
    conn: &Connection,
    data: &Path,
    columns: &[ColumnInfo],
    plan: &CleansePlan,
    out_dir: &Path,
    progress: &mut dyn FnMut(f64, &str),
) -> anyhow::Result<CleanseOutcome> {
    let path = quote_literal(&data.display().to_string());
    let source = format!(
        "SELECT {}, file_row_number AS {ROW} FROM read_parquet({path}, file_row_number = true)",
        column_list(columns.iter().map(|c| c.name.as_str()))
    );
    let compiled = compile(columns, plan, &source, false)?;
    register_functions(conn)?;
    // Nothing depends on the order rows are stored in (outputs and fills order by position):
    // DuckDB may then build the tables in parallel pieces and with less memory.
    let _order = InsertionOrder::relaxed(conn)?;
    let started = std::time::Instant::now();
    // Each segment of the chain becomes a temporary table, one statement at a time, counted
    // as soon as it exists and dropped as soon as nothing left reads it.
    // Segments take three quarters of the time, roughly; the two outputs the rest.
    let (tables, outcome) =
        Tables::compute(conn, &compiled, started, &mut |done, stage| progress(done * 0.75, stage))?;
    progress(0.75, "writing the cleaned data");

    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let data_tmp = TempFile::new(out_dir, "data.parquet");
    let quarantine_tmp = TempFile::new(out_dir, "quarantine.parquet");
    // The last segment may be a query over stored tables, with parameters.
    let (output, params) = Graph::of(&compiled).statement(
        &format!(
            "SELECT {} FROM {} WHERE {FATE} IS NULL ORDER BY {ROW}",
            compiled.final_columns(""),
            compiled.last
        ),
        &compiled.params,
    );
    conn.execute(
        &format!("COPY ({output}) TO {} ({PARQUET_OPTIONS})", data_tmp.literal()),
        params_from_iter(&params),
    )
    .context("writing the cleaned data")?;
    tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "cleanse output written");
    progress(0.95, "writing the quarantined rows");
    conn.execute_batch(&format!(
        "COPY ({}) TO {} ({PARQUET_OPTIONS})",
        compiled.quarantine_select(),
        quarantine_tmp.literal()
    ))
    .context("writing the quarantined rows")?;
    drop(tables);
    tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "cleanse quarantine written");
    data_tmp.persist(&out_dir.join("data.parquet"))?;
    quarantine_tmp.persist(&out_dir.join("quarantine.parquet"))?;
    Ok(outcome)
}

/// `preserve_insertion_order` off until dropped.
struct InsertionOrder<'a>(&'a Connection);

impl<'a> InsertionOrder<'a> {
    fn relaxed(conn: &'a Connection) -> anyhow::Result<InsertionOrder<'a>> {
        conn.execute_batch("SET preserve_insertion_order = false")?;
        Ok(InsertionOrder(conn))
    }
}

impl Drop for InsertionOrder<'_> {
    fn drop(&mut self) {
        let _ = self.0.execute_batch("RESET preserve_insertion_order");
    }
}

/// Runs `plan` over a reservoir sample of `sample_rows` rows of `data` (row positions drawn with
/// seed 42), writing nothing: the accounting of the sample and each sampled row before and
/// after.
pub fn preview(
    conn: &Connection,
    data: &Path,
    columns: &[ColumnInfo],
    plan: &CleansePlan,
    sample_rows: u64,
) -> anyhow::Result<CleansePreview> {
    const SAMPLE: &str = "agensium_cleanse_sample";
    register_functions(conn)?;
    let path = quote_literal(&data.display().to_string());
    // The sample is drawn once, into a temporary table, so every statement sees the same rows.
    // The reservoir draws row positions (which reads no column: 0.04 s over 10M rows), then
    // one parallel scan fetches those rows; a repeatable reservoir over whole rows runs on one
    // thread and decodes every value it passes over (2.1 s against 0.8 s).
    conn.execute_batch(&format!(
        "CREATE OR REPLACE TEMPORARY TABLE {SAMPLE} AS SELECT {}, file_row_number AS {ROW} \
         FROM read_parquet({path}, file_row_number = true) \
         WHERE file_row_number IN (SELECT file_row_number FROM read_parquet({path}, file_row_number = true) \
           USING SAMPLE reservoir({sample_rows} ROWS) REPEATABLE (42))",
        column_list(columns.iter().map(|c| c.name.as_str()))
    ))
    .context("sampling the data")?;
    let result = (|| {
        let compiled = compile(columns, plan, &format!("SELECT * FROM {SAMPLE}"), true)?;
        // Computed as a run is, every segment kept for the rows' fates.
        let (tables, outcome) = Tables::compute(conn, &compiled, std::time::Instant::now(), &mut |_, _| {})?;
        let rows = compiled.sample_rows(conn)?;
        drop(tables);
        Ok(CleansePreview { outcome, columns: columns.iter().map(|c| c.name.clone()).collect(), rows })
    })();
    conn.execute_batch(&format!("DROP TABLE IF EXISTS {SAMPLE}"))?;
    result
}

/// Checks that `plan` compiles over `columns` (every column exists, every conversion is one
/// the column's type allows) and returns the output's columns with the types the plan
/// promises. Nothing is read.
pub fn output_columns(columns: &[ColumnInfo], plan: &CleansePlan) -> anyhow::Result<Vec<ColumnInfo>> {
    Ok(compile(columns, plan, "SELECT 1", false)?.types)
}

/// What a sample says about one column, for choosing conversions and fills: of its
/// non-blank values, how many read as each type, and how many are distinct.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ColumnEvidence {
    pub name: String,
    pub data_type: String,
    /// Non-null (and, for text, non-blank) values in the sample.
    pub values: u64,
    pub distinct: u64,
    /// Text only: values that read as a whole number (without a leading zero), a number, a
    /// boolean word (`true/false/t/f/yes/no/y/n`), a date (ISO or [`DEFAULT_DATE_FORMATS`]),
    /// a timestamp.
    pub integers: u64,
    pub numbers: u64,
    pub booleans: u64,
    pub dates: u64,
    pub timestamps: u64,
    /// Text only: values holding a time of day (`hh:mm`).
    pub times: u64,
    /// Text only: slash dates that only a day-first format reads (`25/03/2024`), and those
    /// that only a month-first one reads (`03/25/2024`).
    pub day_first: u64,
    pub month_first: u64,
    /// Text only: values written as codes rather than numbers: digits with a leading zero
    /// (`07412`, `007`), or a whole number beyond BIGINT (a 20-digit reference). A column
    /// holding any is not converted to a number: the zeros, or the digits past a double's
    /// precision, would be lost.
    pub codes: u64,
}

/// `formats` with the month-first slash formats (`%m/%d/…`) moved before the first day-first
/// one (`%d/%m/…`), for a column whose dates are written month first: each value is read by
/// the first format that parses it, and `03/04/2024` would otherwise be April 3 in a column
/// where `03/25/2024` is March 25.
pub fn month_first(formats: &[String]) -> Vec<String> {
    let Some(at) = formats.iter().position(|f| f.starts_with("%d/%m")) else { return formats.to_vec() };
    let mut out: Vec<String> = formats[..at].to_vec();
    out.extend(formats[at..].iter().filter(|f| f.starts_with("%m/%d")).cloned());
    out.extend(formats[at..].iter().filter(|f| !f.starts_with("%m/%d")).cloned());
    out
}

/// Reads [`ColumnEvidence`] for every column from a sample of `sample_rows` rows, in a query
/// per [`EVIDENCE_CHUNK`] columns: every row of a smaller file, else four windows of a quarter of that each, at the
/// start, a quarter, half and three quarters of the file (Parquet row groups outside them
/// are skipped, so the cost does not grow with the file). Text values equal to one of
/// `null_tokens` (trimmed, ignoring case) count as missing.
pub fn sample_evidence(
    conn: &Connection,
    data: &Path,
    columns: &[ColumnInfo],
    null_tokens: &[String],
    sample_rows: u64,
) -> anyhow::Result<Vec<ColumnEvidence>> {
    for column in columns {
        ensure!(!is_reserved_column(&column.name), "the column name {:?} is reserved", column.name);
    }
    let path = quote_literal(&data.display().to_string());
    let rows: i64 = conn
        .query_row(
            &format!("SELECT CAST(sum(num_rows) AS BIGINT) FROM parquet_file_metadata({path})"),
            [],
            |r| r.get(0),
        )
        .context("reading the footer")?;
    let rows = u64::try_from(rows).unwrap_or(0);
    let windows = if rows > sample_rows {
        format!(" WHERE {}", super::sample_windows(rows, sample_rows))
    } else {
        String::new()
    };
    // A query per EVIDENCE_CHUNK columns: DuckDB plans each distinct count as a join of its
    // own, and its optimizer recurses once per join — 750 columns in one query overflowed the
    // thread's stack, which aborts the process.
    // Each holds a distinct count per column, which takes memory per column, not per row: no
    // more than the memory limit allows ([`super::distinct_per_statement`]).
    let per_statement = super::distinct_per_statement(conn)?.min(EVIDENCE_CHUNK);
    let mut evidence = Vec::with_capacity(columns.len());
    for chunk in columns.chunks(per_statement) {
        evidence.extend(evidence_of(conn, &path, &windows, chunk, null_tokens)?);
    }
    Ok(evidence)
}

/// Columns whose evidence one query reads (see [`sample_evidence`]).
const EVIDENCE_CHUNK: usize = 64;

/// The counts [`evidence_of`] reads per column.
const EVIDENCE_ITEMS: usize = 11;

/// [`sample_evidence`] of some columns: `path` (quoted) read through `windows`.
fn evidence_of(
    conn: &Connection,
    path: &str,
    windows: &str,
    columns: &[ColumnInfo],
    null_tokens: &[String],
) -> anyhow::Result<Vec<ColumnEvidence>> {
    // Only text columns compare with the tokens: without one, none is bound.
    let any_text = columns.iter().any(|c| is_text(&c.data_type.to_uppercase()));
    let tokens: Vec<Duck> =
        null_tokens.iter().filter(|_| any_text).map(|t| Duck::Text(t.trim().to_lowercase())).collect();
    let token_list: Vec<String> = (1..=tokens.len()).map(|i| format!("${i}")).collect();
    let formats = literal_formats(&DEFAULT_DATE_FORMATS);
    let date_like = quote_literal(DATE_LIKE_RE);
    let mut items = Vec::new();
    // Each text value is stripped once (in `v`), then read every way.
    let mut stripped = Vec::new();
    for (i, column) in columns.iter().enumerate() {
        let q = quote_identifier(&column.name);
        let ty = column.data_type.to_uppercase();
        if is_text(&ty) {
            let v = format!("__ag_ev{i}");
            stripped.push(format!("{} AS {v}", strip(&q)));
            let mut present = format!("{v} IS NOT NULL AND {v} <> ''");
            if !tokens.is_empty() {
                present.push_str(&format!(" AND NOT {}", one_of(&format!("lower({v})"), &token_list)));
            }
            items.push(format!("count(*) FILTER (WHERE {present})"));
            items.push(format!("count(DISTINCT {q})"));
            let fits = format!("TRY_CAST(split_part({v}, '.', 1) AS BIGINT)");
            items.push(format!(
                r"count(*) FILTER (WHERE regexp_full_match({v}, '[+-]?(0|[1-9]\d*)(\.0*)?') AND {fits} IS NOT NULL)"
            ));
            // (As the conversion reads them: not `1_000`, `inf` or `NaN`.)
            items.push(format!("count(*) FILTER (WHERE {present} AND regexp_full_match({v}, '{FLOAT_RE}'))"));
            items.push(format!(
                "count(*) FILTER (WHERE {})",
                one_of(
                    &format!("lower({v})"),
                    &["true", "false", "t", "f", "yes", "no", "y", "n"].map(quote_literal)
                )
            ));
            // strptime is slow on values it cannot parse: only values shaped like a date try it.
            // Read as the conversion reads them: ISO forms whole (DuckDB's casts drop what
            // follows a time), strptime's formats for the rest.
            items.push(format!(
                "count(coalesce(CASE WHEN regexp_full_match({v}, '{ISO_DATE_RE}') THEN TRY_CAST({v} AS DATE) END, \
                 CASE WHEN regexp_full_match({v}, {date_like}) \
                 THEN CAST({} AS DATE) END)) FILTER (WHERE {present})",
                strptime_sql(&v, &formats)
            ));
            let twelve = TWELVE_HOUR_FORMATS.map(quote_literal).join(", ");
            items.push(format!(
                "(count(CASE WHEN regexp_full_match({v}, '{ISO_DATE_RE}') OR regexp_full_match({v}, '{ISO_DATE_TIME_RE}') \
                 THEN TRY_CAST({v} AS TIMESTAMP) END) FILTER (WHERE {present}) \
                 + count(CASE WHEN regexp_full_match({v}, '{ISO_OFFSET_RE}') THEN TRY_CAST({v} AS TIMESTAMPTZ) END) \
                 FILTER (WHERE {present}) \
                 + count(CASE WHEN regexp_matches({v}, '[AaPp][Mm]$') THEN try_strptime({v}, [{twelve}]) END) \
                 FILTER (WHERE {present}))"
            ));
            items.push(format!(r"count(*) FILTER (WHERE regexp_matches({v}, '\d:\d\d'))"));
            // Which way round its slash dates are written: values only one order reads.
            let slashed = format!(r"regexp_full_match({v}, '\d{{1,2}}/\d{{1,2}}/\d{{2,4}}')");
            let (day, month) = (
                format!("try_strptime({v}, ['%d/%m/%Y', '%d/%m/%y'])"),
                format!("try_strptime({v}, ['%m/%d/%Y', '%m/%d/%y'])"),
            );
            items
                .push(format!("count(*) FILTER (WHERE {slashed} AND {day} IS NOT NULL AND {month} IS NULL)"));
            items
                .push(format!("count(*) FILTER (WHERE {slashed} AND {month} IS NOT NULL AND {day} IS NULL)"));
            items.push(format!(
                r"count(*) FILTER (WHERE {present} AND (regexp_full_match({v}, '[+-]?0\d+(\.\d*)?') OR (regexp_full_match({v}, '[+-]?\d+(\.0*)?') AND {fits} IS NULL)))"
            ));
        } else {
            items.push(format!("count({q})"));
            items.push(format!("count(DISTINCT {q})"));
            items.extend(std::iter::repeat_n("0".to_string(), EVIDENCE_ITEMS - 2));
        }
    }
    let sql = format!(
        "WITH s AS (SELECT {} FROM read_parquet({path}, file_row_number = true){windows}), \
         v AS (SELECT *{} FROM s) SELECT {} FROM v",
        column_list(columns.iter().map(|c| c.name.as_str())),
        stripped.iter().map(|e| format!(", {e}")).collect::<String>(),
        items.iter().map(|i| format!("CAST({i} AS BIGINT)")).collect::<Vec<_>>().join(", ")
    );
    let counts: Vec<i64> = conn
        .query_row(&sql, params_from_iter(&tokens), |row| {
            (0..items.len()).map(|i| row.get::<_, i64>(i)).collect()
        })
        .context("sampling the columns")?;
    Ok(columns
        .iter()
        .zip(counts.chunks(EVIDENCE_ITEMS))
        .map(|(column, n)| {
            let n: Vec<u64> = n.iter().map(|&x| x.max(0) as u64).collect();
            ColumnEvidence {
                name: column.name.clone(),
                data_type: column.data_type.to_uppercase(),
                values: n[0],
                distinct: n[1],
                integers: n[2],
                numbers: n[3],
                booleans: n[4],
                dates: n[5],
                timestamps: n[6],
                times: n[7],
                day_first: n[8],
                month_first: n[9],
                codes: n[10],
            }
        })
        .collect())
}

/// A Parquet file's rows, and its columns (as DuckDB reads them) with their null counts: from
/// the footer's statistics when every column chunk has them (files DuckDB wrote), else in one
/// pass over the data.
pub fn column_nulls(conn: &Connection, data: &Path) -> anyhow::Result<(u64, Vec<(ColumnInfo, u64)>)> {
    let path = quote_literal(&data.display().to_string());
    let columns: Vec<ColumnInfo> = {
        let mut statement = conn.prepare(&format!("DESCRIBE SELECT * FROM read_parquet({path})"))?;
        let rows = statement.query_map([], |row| {
            Ok(ColumnInfo { name: row.get(0)?, data_type: row.get::<_, String>(1)?.to_uppercase() })
        })?;
        rows.collect::<Result<_, _>>()
            .with_context(|| format!("reading the columns of {}", data.display()))?
    };
    let rows: i64 = conn
        .query_row(
            &format!("SELECT CAST(sum(num_rows) AS BIGINT) FROM parquet_file_metadata({path})"),
            [],
            |r| r.get(0),
        )
        .with_context(|| format!("reading the footer of {}", data.display()))?;
    if rows == 0 {
        return Ok((0, columns.into_iter().map(|c| (c, 0)).collect()));
    }
    // Per leaf column: null count summed over row groups, and whether every chunk has one.
    let mut statement = conn.prepare(&format!(
        "SELECT CAST(coalesce(sum(stats_null_count), 0) AS BIGINT), count(*) = count(stats_null_count) \
         FROM parquet_metadata({path}) GROUP BY column_id ORDER BY column_id"
    ))?;
    let stats: Vec<(i64, bool)> = statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading the statistics of {}", data.display()))?;
    if stats.len() == columns.len() && stats.iter().all(|(_, complete)| *complete) {
        let nulls = stats.into_iter().map(|(n, _)| n.max(0) as u64);
        return Ok((rows.max(0) as u64, columns.into_iter().zip(nulls).collect()));
    }
    let items = std::iter::once("count(*)".to_string())
        .chain(columns.iter().map(|c| format!("count(*) - count({})", quote_identifier(&c.name))))
        .map(|i| format!("CAST({i} AS BIGINT)"))
        .collect::<Vec<_>>()
        .join(", ");
    let counts: Vec<i64> = conn
        .query_row(&format!("SELECT {items} FROM read_parquet({path})"), [], |row| {
            (0..=columns.len()).map(|i| row.get::<_, i64>(i)).collect()
        })
        .with_context(|| format!("counting the nulls of {}", data.display()))?;
    let rows = counts[0].max(0) as u64;
    Ok((rows, columns.into_iter().zip(counts[1..].iter().map(|&n| n.max(0) as u64)).collect()))
}

/// The segments of a compiled plan as temporary tables (the source as a view): each created
/// by one statement, counted as soon as it exists, and dropped as soon as nothing left to
/// compute, count or write reads it; the rest are dropped when this is dropped.
struct Tables<'a> {
    conn: &'a Connection,
    /// `(name, is_view)` of what exists, in creation order.
    created: Vec<(String, bool)>,
}

impl<'a> Tables<'a> {
    /// A plan compiled for a preview also keeps each segment's departed rows (until this is
    /// dropped).
    fn compute(
        conn: &'a Connection,
        compiled: &Compiled,
        started: std::time::Instant,
        progress: &mut dyn FnMut(f64, &str),
    ) -> anyhow::Result<(Tables<'a>, CleanseOutcome)> {
        let mut tables = Tables { conn, created: Vec::new() };
        let ctes = &compiled.ctes;
        ensure!(ctes.first().is_some_and(|c| c.name == "s0"), "a plan starts with its source");
        // The source: read where it is referenced, never copied.
        conn.execute_batch(&format!("CREATE OR REPLACE TEMP VIEW s0 AS {}", ctes[0].sql))
            .context("reading the source")?;
        tables.created.push(("s0".into(), true));

        let graph = Graph::of(compiled);
        let names = &graph.names;
        // The stored relations each figure's statement reads (through the segments that are
        // not stored).
        let metric_inputs: Vec<Vec<usize>> =
            compiled.metrics.iter().map(|(sql, _)| graph.inputs(&references(sql, names))).collect();
        // A preview's rows read which rows left in each segment.
        let kept = compiled.segments.iter().filter_map(|s| s.departed.as_ref());
        let mut outputs: Vec<usize> = compiled
            .quarantines
            .iter()
            .chain([&compiled.last])
            .chain(kept)
            .filter_map(|n| names.iter().position(|x| x == n))
            .collect();
        outputs.push(0);
        let outputs = graph.inputs(&outputs);

        let mut done = vec![false; ctes.len()];
        done[0] = true;
        let mut figures: Vec<Option<Vec<u64>>> = vec![None; compiled.metrics.len()];
        let count = |m: usize| -> anyhow::Result<Vec<u64>> {
            let (sql, params) = graph.statement(&compiled.metrics[m].0, &compiled.params);
            let text: Option<String> = conn
                .query_row(&sql, params_from_iter(&params), |r| r.get(0))
                .context("counting what the cleanse plan does")?;
            parse_counts(text.as_deref().unwrap_or("[]"))
        };
        let stored = (1..ctes.len()).filter(|&i| ctes[i].table).count().max(1);
        for (n, i) in (1..ctes.len()).filter(|&i| ctes[i].table).enumerate() {
            let name = &ctes[i].name;
            let defs = graph.closure(&[i]).iter().map(|&j| ctes[j].define()).collect::<Vec<_>>().join(",\n");
            let (sql, params) = renumber(
                &format!("CREATE OR REPLACE TEMP TABLE {name} AS WITH RECURSIVE {defs} SELECT * FROM {name}"),
                &compiled.params,
            );
            // The statement, not the values: they are the user's (tokens, maps, constants).
            tracing::trace!(statement = %sql, params = params.len(), "cleanse segment");
            conn.execute(&sql, params_from_iter(&params))
                .with_context(|| format!("computing step {} ({name})", ctes[i].step))?;
            tables.created.push((name.clone(), false));
            done[i] = true;
            progress((n + 1) as f64 / stored as f64, &format!("cleansing (step {})", ctes[i].step));
            tracing::debug!(
                table = %name,
                step = ctes[i].step,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "cleanse segment computed"
            );
            for m in 0..figures.len() {
                if figures[m].is_none() && metric_inputs[m].iter().all(|&d| done[d]) {
                    figures[m] = Some(count(m)?);
                }
            }
            // What is still to be read: by a table still to compute, a figure still to count,
            // or an output.
            let mut needed = vec![false; ctes.len()];
            for j in (1..ctes.len()).filter(|&j| ctes[j].table && !done[j]) {
                for d in graph.inputs(&graph.reads[j]).into_iter().filter(|&d| d != j) {
                    needed[d] = true;
                }
            }
            for (m, inputs) in metric_inputs.iter().enumerate() {
                if figures[m].is_none() {
                    for &d in inputs {
                        needed[d] = true;
                    }
                }
            }
            for &d in &outputs {
                needed[d] = true;
            }
            let unneeded: Vec<String> = tables
                .created
                .iter()
                .filter(|(n, view)| !view && names.iter().position(|x| x == n).is_some_and(|d| !needed[d]))
                .map(|(n, _)| n.clone())
                .collect();
            for n in unneeded {
                conn.execute_batch(&format!("DROP TABLE IF EXISTS {n}"))
                    .with_context(|| format!("dropping {n}"))?;
                tables.created.retain(|(c, _)| *c != n);
            }
        }
        for (m, figure) in figures.iter_mut().enumerate() {
            if figure.is_none() {
                *figure = Some(count(m)?);
            }
        }
        tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "cleanse accounting");
        let figures: Vec<Vec<u64>> = figures.into_iter().flatten().collect();
        let outcome = compiled.outcome(&figures)?;
        Ok((tables, outcome))
    }
}

/// Which CTEs of a compiled plan read which, and which are stored.
struct Graph<'c> {
    compiled: &'c Compiled,
    names: Vec<&'c str>,
    /// Per CTE, the CTEs its query reads.
    reads: Vec<Vec<usize>>,
}

impl<'c> Graph<'c> {
    fn of(compiled: &'c Compiled) -> Graph<'c> {
        let names: Vec<&str> = compiled.ctes.iter().map(|c| c.name.as_str()).collect();
        let reads = compiled.ctes.iter().map(|c| references(&c.sql, &names)).collect();
        Graph { compiled, names, reads }
    }

    /// The source (a view) and the tables.
    fn stored(&self, i: usize) -> bool {
        i == 0 || self.compiled.ctes[i].table
    }

    /// `start` and the queries they read that are not stored, transitively, in order: what a
    /// statement reading `start` defines (a stored one in `start` is the table being created).
    fn closure(&self, start: &[usize]) -> Vec<usize> {
        let mut inside = vec![false; self.names.len()];
        let mut stack = start.to_vec();
        while let Some(j) = stack.pop() {
            if !inside[j] {
                inside[j] = true;
                stack.extend(self.reads[j].iter().copied().filter(|&d| !self.stored(d)));
            }
        }
        (0..self.names.len()).filter(|&j| inside[j]).collect()
    }

    /// The stored relations a statement reading `reads` reads.
    fn inputs(&self, reads: &[usize]) -> Vec<usize> {
        let unstored: Vec<usize> = reads.iter().copied().filter(|&d| !self.stored(d)).collect();
        let mut found: Vec<usize> = reads.iter().copied().filter(|&d| self.stored(d)).collect();
        for j in self.closure(&unstored) {
            found.extend(self.reads[j].iter().copied().filter(|&d| self.stored(d)));
        }
        found.sort_unstable();
        found.dedup();
        found
    }

    /// `sql` (which reads CTEs by name) as a statement: the queries it reads that are not
    /// stored defined in front, the parameters numbered from 1.
    fn statement(&self, sql: &str, params: &[Duck]) -> (String, Vec<Duck>) {
        let unstored: Vec<usize> =
            references(sql, &self.names).into_iter().filter(|&d| !self.stored(d)).collect();
        if unstored.is_empty() {
            return renumber(sql, params);
        }
        let defs = self
            .closure(&unstored)
            .iter()
            .map(|&j| self.compiled.ctes[j].define())
            .collect::<Vec<_>>()
            .join(",\n");
        renumber(&format!("WITH RECURSIVE {defs} {sql}"), params)
    }
}

impl Drop for Tables<'_> {
    fn drop(&mut self) {
        for (name, view) in self.created.iter().rev() {
            let kind = if *view { "VIEW" } else { "TABLE" };
            let _ = self.conn.execute_batch(&format!("DROP {kind} IF EXISTS {name}"));
        }
    }
}

/// The positions in `names` of the names `sql` mentions as words outside quotes (the CTEs a
/// statement reads; their names are generated, never a user's).
fn references(sql: &str, names: &[&str]) -> Vec<usize> {
    let mut found = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let flush = |word: &mut String, found: &mut Vec<usize>| {
        if let Some(i) = names.iter().position(|n| *n == word.as_str())
            && !found.contains(&i)
        {
            found.push(i);
        }
        word.clear();
    };
    for c in sql.chars() {
        match quote {
            // A doubled quote closes and reopens: the same result.
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => {
                flush(&mut word, &mut found);
                quote = Some(c);
            }
            None if c.is_ascii_alphanumeric() || c == '_' || c == '$' => word.push(c),
            None => flush(&mut word, &mut found),
        }
    }
    flush(&mut word, &mut found);
    found.sort_unstable();
    found
}

/// `sql` with its `$n` parameters renumbered from `$1` in order of first use, and their values
/// from `params`. Quoted identifiers and string literals are left as they are.
fn renumber(sql: &str, params: &[Duck]) -> (String, Vec<Duck>) {
    let mut out = String::with_capacity(sql.len());
    let mut used: Vec<usize> = Vec::new();
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    // A doubled quote stays inside.
                    if chars.peek() == Some(&q) {
                        out.push(chars.next().unwrap_or(q));
                    } else {
                        quote = None;
                    }
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    digits.push(d);
                    chars.next();
                }
                let index: usize = digits.parse().unwrap_or(0);
                let position = match used.iter().position(|&u| u == index) {
                    Some(p) => p,
                    None => {
                        used.push(index);
                        used.len() - 1
                    }
                };
                out.push_str(&format!("${}", position + 1));
            }
            None => out.push(c),
        }
    }
    let values = used.iter().map(|&i| params.get(i.wrapping_sub(1)).cloned().unwrap_or(Duck::Null)).collect();
    (out, values)
}

/// A file written beside its final name, removed unless persisted.
struct TempFile {
    path: PathBuf,
    persisted: bool,
}

impl TempFile {
    fn new(dir: &Path, name: &str) -> TempFile {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = dir.join(format!(".{name}.{}-{nanos}.tmp", std::process::id()));
        TempFile { path, persisted: false }
    }

    fn literal(&self) -> String {
        quote_literal(&self.path.display().to_string())
    }

    fn persist(mut self, to: &Path) -> anyhow::Result<()> {
        std::fs::rename(&self.path, to)
            .with_context(|| format!("renaming {} to {}", self.path.display(), to.display()))?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn column_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.map(quote_identifier).collect::<Vec<_>>().join(", ")
}

/// What one accounting figure counts.
#[derive(Debug, Clone)]
enum Metric {
    /// Rows of the source.
    Rows,
    /// Rows no step removed or quarantined (the output's).
    Out,
    /// Rows step k removed (summed over the tables it spans).
    Removed(usize),
    /// Rows step k quarantined.
    Quarantined(usize),
    /// Values of a column step k changed, in rows it kept.
    Changed(usize, String),
    /// Values of a column step k could not handle, in rows it received.
    Failed(usize, String),
}

/// How a CTE is to be computed where it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hint {
    /// DuckDB decides.
    Default,
    /// Computed once per statement (it is read more than once and is costly or small).
    Materialized,
    /// Inlined wherever it is read (a filter over a table: re-reading is cheaper than a copy).
    Inline,
}

/// One named query of a compiled plan.
#[derive(Debug, Clone)]
struct Cte {
    name: String,
    /// Column names of a recursive CTE (`(a, b)`), else empty.
    columns: String,
    sql: String,
    /// Stored: a temporary table, created by its own statement.
    table: bool,
    hint: Hint,
    /// The plan step it belongs to (1-based; 0 the source).
    step: usize,
}

impl Cte {
    /// `name AS (…)`.
    fn define(&self) -> String {
        let hint = match self.hint {
            Hint::Materialized => " MATERIALIZED",
            Hint::Inline => " NOT MATERIALIZED",
            Hint::Default => "",
        };
        format!("{}{} AS{hint} ({})", self.name, self.columns, self.sql)
    }
}

/// Part of the chain stored as one table.
#[derive(Debug, Clone)]
struct Segment {
    /// Its table, or its query when a light segment is not stored (see the CTE's `table`).
    table: String,
    /// In a preview, the table of the rows that left in this segment — `(row, fate, reason,
    /// step that left it out by grouping)` — kept once the segment's own table is dropped.
    departed: Option<String>,
}

/// A compiled plan.
struct Compiled {
    ctes: Vec<Cte>,
    params: Vec<Duck>,
    /// The source's columns (the quarantine file has them).
    source_columns: Vec<String>,
    /// The output's columns.
    columns: Vec<String>,
    /// The output's columns with their DuckDB types.
    types: Vec<ColumnInfo>,
    step_names: Vec<&'static str>,
    /// The segments, in order.
    segments: Vec<Segment>,
    /// The last segment's table (or `s0`): its rows without a fate are the output.
    last: String,
    /// Tables of `(row, reason)`.
    quarantines: Vec<String>,
    /// Statements returning a list of BIGINT as text, and what each item counts.
    metrics: Vec<(String, Vec<Metric>)>,
}

impl Compiled {
    fn final_columns(&self, alias: &str) -> String {
        self.columns.iter().map(|c| format!("{alias}{}", quote_identifier(c))).collect::<Vec<_>>().join(", ")
    }

    /// All quarantined `(row, reason)`s.
    fn quarantined(&self) -> String {
        if self.quarantines.is_empty() {
            format!(
                "SELECT {ROW}, {REASON} FROM (SELECT NULL::BIGINT AS {ROW}, NULL::VARCHAR AS {REASON}) WHERE false"
            )
        } else {
            self.quarantines
                .iter()
                .map(|q| format!("SELECT {ROW}, {REASON} FROM {q}"))
                .collect::<Vec<_>>()
                .join(" UNION ALL ")
        }
    }

    /// The quarantined rows as they were in the source, with their reasons and positions.
    fn quarantine_select(&self) -> String {
        let taken: Vec<String> = self.source_columns.iter().map(|c| c.to_lowercase()).collect();
        let fresh = |base: &str| {
            let mut name = base.to_string();
            while taken.contains(&name.to_lowercase()) {
                name.insert(0, '_');
            }
            name
        };
        let columns = self
            .source_columns
            .iter()
            .map(|c| format!("s0.{}", quote_identifier(c)))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "SELECT {columns}, q.{REASON} AS {}, CAST(s0.{ROW} + 1 AS BIGINT) AS {} \
             FROM s0 JOIN ({}) q ON q.{ROW} = s0.{ROW} ORDER BY s0.{ROW}",
            quote_identifier(&fresh("_reason")),
            quote_identifier(&fresh("_row")),
            self.quarantined()
        )
    }

    /// The outcome from the figures of [`Compiled::metrics`], in order; checks the rows add up.
    fn outcome(&self, figures: &[Vec<u64>]) -> anyhow::Result<CleanseOutcome> {
        let steps = self.step_names.len();
        let (mut rows_in, mut out) = (None, None);
        let mut removed = vec![0u64; steps + 1];
        let mut quarantined = vec![0u64; steps + 1];
        let mut changes: Vec<StepChange> = Vec::new();
        for ((_, metrics), values) in self.metrics.iter().zip(figures) {
            ensure!(values.len() == metrics.len(), "accounting returned {values:?} for {metrics:?}");
            for (metric, &n) in metrics.iter().zip(values) {
                let (k, column, failed) = match metric {
                    Metric::Rows => {
                        rows_in = Some(n);
                        continue;
                    }
                    Metric::Out => {
                        out = Some(n);
                        continue;
                    }
                    Metric::Removed(k) => {
                        removed[*k] += n;
                        continue;
                    }
                    Metric::Quarantined(k) => {
                        quarantined[*k] += n;
                        continue;
                    }
                    Metric::Changed(k, column) => (*k, column, false),
                    Metric::Failed(k, column) => (*k, column, true),
                };
                let step = self.step_names[k - 1];
                let index = match changes.iter().position(|c| c.step == step && &c.column == column) {
                    Some(i) => i,
                    None => {
                        changes.push(StepChange {
                            step: step.into(),
                            column: column.clone(),
                            changed: 0,
                            failed: 0,
                        });
                        changes.len() - 1
                    }
                };
                if failed {
                    changes[index].failed += n;
                } else {
                    changes[index].changed += n;
                }
            }
        }
        changes.retain(|c| c.changed > 0 || c.failed > 0);
        let rows_in = rows_in.context("the source was not counted")?;
        let gone: u64 = removed.iter().chain(&quarantined).sum();
        let rows_out = rows_in.checked_sub(gone).context("the steps removed more rows than there are")?;
        ensure!(
            Some(rows_out) == out,
            "rows do not add up: {rows_in} in, {gone} removed or quarantined, {out:?} out"
        );
        Ok(CleanseOutcome {
            rows_in,
            rows_out,
            rows_removed_by_step: (1..=steps)
                .map(|k| (self.step_names[k - 1].to_string(), removed[k]))
                .collect(),
            rows_quarantined_by_step: (1..=steps)
                .map(|k| (self.step_names[k - 1].to_string(), quarantined[k]))
                .collect(),
            rows_quarantined: quarantined.iter().sum(),
            changes,
        })
    }

    /// Every row of the (sampled) source, before and after, from the segments' tables.
    fn sample_rows(&self, conn: &Connection) -> anyhow::Result<Vec<PreviewRow>> {
        let as_json = |alias: &str, columns: &[String]| {
            let items = columns
                .iter()
                .map(|c| format!("CAST({alias}.{} AS VARCHAR)", quote_identifier(c)))
                .collect::<Vec<_>>()
                .join(", ");
            format!("CAST(to_json([{items}]::VARCHAR[]) AS VARCHAR)")
        };
        // A row leaves in one segment: its fate is in that segment's table of departed rows
        // (one union of small scans, read through one join: a join per segment — a wide
        // file's outliers removed column by column make hundreds — ran out of memory).
        let left: Vec<String> = self
            .segments
            .iter()
            .filter_map(|s| s.departed.as_ref())
            .map(|d| format!("SELECT * FROM {d}"))
            .collect();
        ensure!(left.len() == self.segments.len(), "a plan's rows are read only from a preview");
        let (joins, after, fate) = match self.segments.last() {
            None => (String::new(), as_json("s0", &self.columns), "CAST(NULL AS VARCHAR)".to_string()),
            Some(last) => {
                let names = self.step_names.iter().map(|n| quote_literal(n)).collect::<Vec<_>>().join(", ");
                (
                    format!(
                        " LEFT JOIN ({}) g ON g.{ROW} = s0.{ROW} LEFT JOIN {} j ON j.{ROW} = s0.{ROW}",
                        left.join(" UNION ALL "),
                        last.table
                    ),
                    format!(
                        "CASE WHEN j.{ROW} IS NOT NULL AND j.{FATE} IS NULL THEN {} END",
                        as_json("j", &self.columns)
                    ),
                    format!(
                        "CASE WHEN g.why IS NOT NULL THEN 'quarantine: ' || g.why \
                         ELSE [{names}][coalesce(g.f, g.gone)] END"
                    ),
                )
            }
        };
        let sql = format!(
            "SELECT CAST(s0.{ROW} + 1 AS BIGINT), {}, {after}, {fate} FROM s0{joins} ORDER BY s0.{ROW}",
            as_json("s0", &self.source_columns),
        );
        let (sql, params) = renumber(&sql, &self.params);
        let mut statement = conn.prepare(&sql).context("previewing the cleanse plan")?;
        let rows = statement.query_map(params_from_iter(&params), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?;
        rows.map(|row| {
            let (row, before, after, fate) = row?;
            Ok(PreviewRow {
                row: row.max(0) as u64,
                before: serde_json::from_str(&before)?,
                after: after.map(|a| serde_json::from_str(&a)).transpose()?,
                fate,
            })
        })
        .collect()
    }
}

/// `[1, 2, 3]` (a BIGINT list as DuckDB prints it) as numbers.
fn parse_counts(text: &str) -> anyhow::Result<Vec<u64>> {
    let inner = text.trim().trim_start_matches('[').trim_end_matches(']').trim();
    if inner.is_empty() {
        return Ok(Vec::new());
    }
    inner
        .split(',')
        .map(|n| {
            let n = n.trim();
            if n == "NULL" {
                Ok(0)
            } else {
                n.parse::<u64>().with_context(|| format!("count {n:?} in {text}"))
            }
        })
        .collect()
}

/// DuckDB's refusal of an argument (an `Invalid Input`, `Conversion` or `Not implemented`
/// error) as `Err(why)`; any other failure is the server's.
fn refusal<T>(result: duckdb::Result<T>) -> anyhow::Result<Result<T, String>> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(duckdb::Error::DuckDBFailure(_, Some(message)))
            if ["Invalid Input Error", "Conversion Error", "Not implemented Error"]
                .iter()
                .any(|class| message.starts_with(class)) =>
        {
            let why = message.split_once(": ").map_or(message.as_str(), |(_, why)| why);
            Ok(Err(why.lines().next().unwrap_or_default().trim().to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether DuckDB's strftime/strptime accept `format` (the date standardisation's formats):
/// `Err(why)` when they do not.
pub fn check_date_format(conn: &Connection, format: &str) -> anyhow::Result<Result<(), String>> {
    // A 12-hour clock without its AM/PM writes 10:00 and 22:00 alike, and reads both as 10:00.
    let specs: Vec<char> = format
        .replace("%%", "")
        .split('%')
        .skip(1)
        .filter_map(|s| s.trim_start_matches('-').chars().next())
        .collect();
    if specs.contains(&'I') && !specs.contains(&'p') {
        return Ok(Err("%I (the 12-hour clock's hour) needs %p (AM or PM): without it 10:00 and 22:00 are \
                       written alike"
            .into()));
    }
    // Formats are written with strftime and read with strptime, which refuses a few more.
    let checked = conn.query_row(
        "SELECT strftime(DATE '2000-01-01', $1), try_strptime('2000-01-01', $1)",
        [format],
        |r| r.get::<_, Option<String>>(0),
    );
    Ok(refusal(checked)?.map(|_| ()))
}

/// Whether a null fill's constant converts to the column's type `ty` as the fill will convert
/// it (a floating-point column also needs a finite number): `Err(why)` when it does not.
pub fn check_constant(conn: &Connection, value: &str, ty: &str) -> anyhow::Result<Result<(), String>> {
    let ty = ty.to_uppercase();
    if is_text(&ty) {
        return Ok(Ok(()));
    }
    // DuckDB's casts are lenient: `2.5` rounds into an integer, `0x1F` and `1_000` read as
    // numbers, a date drops a time. A constant must be written as the column's values are.
    let strict =
        |pattern: &str| regex::Regex::new(&format!("^(?:{pattern})$")).is_ok_and(|re| re.is_match(value));
    let written = if is_integer(&ty) {
        strict(r"[+-]?\d+").then_some(()).ok_or("not a whole number written in digits")
    } else if is_numeric(&ty) {
        strict(FLOAT_RE).then_some(()).ok_or("not a number written in digits (such as 2.5 or 1e3)")
    } else if ty == "DATE" {
        strict(ISO_DATE_RE).then_some(()).ok_or("not a date written as YYYY-MM-DD")
    } else if ty.starts_with("TIMESTAMP") {
        strict(&format!("{ISO_DATE_RE}|{ISO_DATE_TIME_RE}"))
            .then_some(())
            .ok_or("not a date and time written as YYYY-MM-DD HH:MM:SS")
    } else {
        Ok(())
    };
    if let Err(why) = written {
        return Ok(Err(why.to_string()));
    }
    // A DECIMAL column's cast rounds what has more decimal places than its scale.
    if let Some(scale) = ty
        .strip_prefix("DECIMAL(")
        .and_then(|rest| rest.split_once(','))
        .and_then(|(_, s)| s.trim_end_matches(')').trim().parse::<i64>().ok())
        && decimal_places(value) > scale
    {
        return Ok(Err(format!("has more decimal places than the column's {scale}: it would be rounded")));
    }
    let sql = format!("SELECT isfinite(TRY_CAST(CAST(? AS {}) AS DOUBLE)) IS NOT false", sql_type(&ty)?);
    Ok(match refusal(conn.query_row(&sql, [value], |r| r.get::<_, bool>(0)))? {
        Ok(true) => Ok(()),
        Ok(false) => Err("not a finite number".into()),
        Err(why) => Err(why),
    })
}

/// The decimal places a number written in digits needs (`1.005` 3, `1.50` 1, `1.5e-2` 3,
/// `15e1` 0).
fn decimal_places(value: &str) -> i64 {
    let (mantissa, exponent) = value.split_once(['e', 'E']).unwrap_or((value, "0"));
    let fraction = mantissa.split_once('.').map_or("", |(_, f)| f).trim_end_matches('0');
    let exponent: i64 = exponent.trim_start_matches('+').parse().unwrap_or(0);
    (fraction.len() as i64 - exponent).max(0)
}

/// A type name to write into SQL (`CAST(… AS BIGINT)`): only a plain name, with a precision.
fn sql_type(ty: &str) -> anyhow::Result<&str> {
    ensure!(
        !ty.is_empty()
            && ty.chars().all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '(' | ')' | ',' | ' ' | '_')),
        "unsupported column type {ty:?}"
    );
    Ok(ty)
}

fn is_text(ty: &str) -> bool {
    ty == "VARCHAR" || ty.starts_with("VARCHAR(")
}

fn is_integer(ty: &str) -> bool {
    super::is_integer_type(ty)
}

fn is_floating(ty: &str) -> bool {
    matches!(ty, "FLOAT" | "DOUBLE" | "REAL")
}

/// `expr` where it is a finite number, else NULL, for a floating-point `ty` (`expr` itself for
/// any other type): statistics leave NaN and ±Infinity out, so a fill, a bound or a median is
/// always a finite number.
fn finite(expr: &str, ty: &str) -> String {
    if is_floating(ty) { format!("(CASE WHEN isfinite({expr}) THEN {expr} END)") } else { expr.to_string() }
}

fn is_numeric(ty: &str) -> bool {
    is_integer(ty) || is_floating(ty) || (ty.starts_with("DECIMAL") && !ty.ends_with(']'))
}

/// DATE or a TIMESTAMP type (not a list of them, `TIMESTAMP[]`).
fn is_temporal(ty: &str) -> bool {
    ty == "DATE" || (ty.starts_with("TIMESTAMP") && !ty.ends_with(']'))
}

/// Characters that are invisible and carry no text: zero-width space, joiners, word joiner,
/// byte-order mark.
const INVISIBLE_RE: &str = r"[\x{200B}-\x{200D}\x{2060}\x{FEFF}]";

/// `expr` (text) as compared ignoring case: invisible characters removed, composed (NFC: an
/// `é` typed as `e` + U+0301 is the `é` of another keyboard), lower-cased, `ß` as `ss`
/// (`Straße` = `STRASSE`).
fn folded(expr: &str) -> String {
    format!(
        "replace({}, 'ß', 'ss')",
        lower_sigma(&format!(
            "nfc_normalize(regexp_replace({expr}, {}, '', 'g'))",
            quote_literal(INVISIBLE_RE)
        ))
    )
}

/// `expr` lower-cased for a comparison that ignores case: the final sigma `ς` as `σ`, so that
/// `ΟΔΟΣ` (whose lower case is `οδοσ`) and `οδος` compare equal.
fn lower_sigma(expr: &str) -> String {
    format!("replace(lower({expr}), 'ς', 'σ')")
}

/// The finest unit of time a strftime format writes, in nanoseconds: a day when it writes no
/// time of day (a zone or AM/PM alone is none), else an hour, a minute, a second, a
/// millisecond (`%g`), a microsecond (`%f`) or a nanosecond (`%n`).
fn format_unit(format: &str) -> i64 {
    let mut unit: i64 = 86_400_000_000_000;
    let mut chars = format.chars();
    while let Some(ch) = chars.next() {
        if ch == '%' {
            let mut spec = chars.next();
            if spec == Some('-') {
                spec = chars.next();
            }
            let writes = match spec {
                Some('H' | 'I') => 3_600_000_000_000,
                Some('M' | 'R') => 60_000_000_000,
                Some('S' | 'X' | 'T' | 'c') => 1_000_000_000,
                Some('g') => 1_000_000,
                Some('f') => 1_000,
                Some('n') => 1,
                _ => continue,
            };
            unit = unit.min(writes);
        }
    }
    unit
}

/// Unicode's White_Space as an RE2 class.
const WHITE_SPACE_RE: &str = r"[\s\p{Z}\x{0B}\x{85}]";
/// White_Space other than the plain space.
const OTHER_SPACE_RE: &str =
    r"[\t\n\x{0B}\f\r\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]";

/// `expr` with leading and trailing whitespace (Unicode's) removed. The regular expression
/// runs only where the first or last character is not printable ASCII (twice as fast over
/// typical data; a list of code points would be planned as a join); `expr` is repeated, so it
/// should be a column, not a computation.
fn strip(expr: &str) -> String {
    format!(
        "CASE WHEN {} THEN {expr} ELSE regexp_replace({expr}, '^{WHITE_SPACE_RE}+|{WHITE_SPACE_RE}+$', '', 'g') END",
        printable_ends(expr)
    )
}

/// True when the first and last characters of `expr` are printable ASCII (no whitespace).
fn printable_ends(expr: &str) -> String {
    format!("(unicode({expr}) BETWEEN 33 AND 126 AND unicode({expr}[-1]) BETWEEN 33 AND 126)")
}

/// An RE2 pattern matching, case-insensitively, any of `tokens` (themselves trimmed) with
/// whitespace around; a blank token also matches whitespace only.
fn token_pattern(tokens: &[String]) -> String {
    let alternatives = tokens
        .iter()
        .map(|t| {
            let mut escaped = String::new();
            for ch in t.trim_matches(char::is_whitespace).chars() {
                if r"\.+*?()|[]{}^$#-&~".contains(ch) {
                    escaped.push('\\');
                }
                escaped.push(ch);
            }
            escaped
        })
        .collect::<Vec<_>>()
        .join("|");
    format!("(?i){WHITE_SPACE_RE}*(?:{alternatives}){WHITE_SPACE_RE}*")
}

/// Whether `expr` (a column) matches `pattern`, the bound [`token_pattern`] of `tokens`. A
/// value whose ends are not whitespace matches only when it is a token itself, character for
/// character (case folding maps a character to one character): one longer than every token
/// cannot match, and the regular expression runs only on the others (most values of a column
/// are longer than `N/A`; three times as fast over typical data).
fn token_match(expr: &str, pattern: &str, tokens: &[String]) -> String {
    let longest =
        tokens.iter().map(|t| t.trim_matches(char::is_whitespace).chars().count()).max().unwrap_or(0);
    format!(
        "CASE WHEN {} AND length({expr}) > {longest} THEN false ELSE regexp_full_match({expr}, {pattern}) END",
        printable_ends(expr)
    )
}

/// Whether `expr` holds whitespace other than the plain space ([`OTHER_SPACE_RE`]): in ASCII
/// text, one of the five control characters `\t\n\v\f\r` (five byte searches, faster than the
/// regular expression, which runs only on text with other characters). `expr` is repeated.
fn other_space(expr: &str) -> String {
    let controls = (9..=13).map(|c| format!("contains({expr}, chr({c}))")).collect::<Vec<_>>().join(" OR ");
    format!(
        "CASE WHEN strlen({expr}) = length({expr}) THEN {controls} ELSE regexp_matches({expr}, '{OTHER_SPACE_RE}') END"
    )
}

/// `expr` with every run of whitespace made one space; the regular expression runs only
/// where there is a double space or other whitespace. `expr` is repeated, as in [`strip`].
fn collapse(expr: &str) -> String {
    format!(
        "CASE WHEN contains({expr}, '  ') OR {} \
         THEN regexp_replace({expr}, '{WHITE_SPACE_RE}+', ' ', 'g') ELSE {expr} END",
        other_space(expr)
    )
}

/// `collapse(strip(expr))` with one test: `expr` is evaluated a few times, never nested.
fn tidy(expr: &str) -> String {
    format!(
        "CASE WHEN {} AND NOT contains({expr}, '  ') AND NOT {} \
         THEN {expr} ELSE regexp_replace(regexp_replace({expr}, '^{WHITE_SPACE_RE}+|{WHITE_SPACE_RE}+$', '', 'g'), \
         '{WHITE_SPACE_RE}+', ' ', 'g') END",
        printable_ends(expr),
        other_space(expr)
    )
}

/// Whether `expr` is empty or whitespace only; a value starting with printable ASCII is not,
/// and the regular expression runs only on the others.
fn blank(expr: &str) -> String {
    let text = format!("CAST({expr} AS VARCHAR)");
    format!(
        "CASE WHEN unicode({text}) BETWEEN 33 AND 126 THEN false ELSE regexp_full_match({text}, {}) END",
        quote_literal(BLANK_RE)
    )
}

/// `(k, v, n)`: the non-null values `v` of each expression of `values` (all of one type) over
/// `from`, with their counts `n`, `k` the expression's position: every expression in one scan
/// and one grouping (which spills), instead of a subquery (a join) per expression.
fn grouped_values(values: &[String], from: &str) -> String {
    let keys = (0..values.len()).map(|k| k.to_string()).collect::<Vec<_>>().join(", ");
    format!(
        "SELECT k, v, count(*) AS n FROM (SELECT unnest([{keys}]) AS k, unnest([{}]) AS v FROM {from}) \
         WHERE v IS NOT NULL GROUP BY k, v",
        values.join(", ")
    )
}

/// Whether `expr` is one of `values` (SQL literals or parameters; false for a null `expr`),
/// as a `CASE` on it: DuckDB plans `x IN (…)` and `list_contains` over constants as a join per
/// use, and two hundred of them in one statement (a boolean conversion per column of a wide
/// file) ran out of 512 MB over a table of one row.
fn one_of(expr: &str, values: &[String]) -> String {
    let arms: String = values.iter().map(|v| format!(" WHEN {v} THEN true")).collect();
    format!("CASE {expr}{arms} ELSE false END")
}

/// One-row subqueries as the `FROM` of a statement reading them all (a cross join).
fn aliased(sources: &[String]) -> String {
    sources.iter().enumerate().map(|(i, s)| format!("{s} AS __ag_src{i}")).collect::<Vec<_>>().join(", ")
}

/// One row of per-key results: column `names[k]` holds the `x` of the row of key `k` of `from`
/// (NULL when there is none). Through one map of the keys (one aggregate, then a lookup per
/// name): an aggregate per name filtered on its key took DuckDB time growing with the square
/// of the names to plan (0.5 s for 500, 6.8 s for 2,000).
fn pivot(from: &str, x: &str, names: &[String]) -> String {
    let items = names
        .iter()
        .enumerate()
        .map(|(k, name)| format!("__ag_map[{k}] AS {name}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("SELECT {items} FROM (SELECT map(list(k), list({x})) AS __ag_map FROM {from})")
}

/// `quantile_cont(value, [fractions…])` of each `(value, fractions)` of `values` over `from`, as
/// a one-row subquery whose column `names[i]` (DOUBLE[]) holds the `i`th, computed from the
/// ranks of the distinct values (in SQL, as the profile's quartiles by rank are in
/// `engine::profile`) instead of from a copy of every value: `quantile_cont` and `median` hold
/// every value in memory that DuckDB's memory limit does not count (160 MB above it for 10 M
/// doubles), where a `GROUP BY` spills. Every value is read as DOUBLE and grouped with its count
/// ([`grouped_values`]: all the expressions in one grouping); a running sum of the counts in
/// value order gives each distinct value its ranks `[c − n, c)`; each fraction `f` takes the
/// values at ranks ⌊p⌋ and ⌈p⌉ of `p = (rows − 1) · f` and interpolates them as DuckDB does for
/// DOUBLE: `lo · (1 − d) + hi · d`, `d = p − ⌊p⌋`. NULL when there is no value, as
/// `quantile_cont` is. For DOUBLE and integer values, the same result as `quantile_cont` to the
/// bit (NaN sorts last in both), but for the sign of a zero: 0 and −0 group together, so a
/// quantile may be 0 where `quantile_cont` gives −0. FLOAT and DECIMAL values are read as
/// DOUBLE too (exactly, but for decimals of more than 15 significant digits), where
/// `quantile_cont` interpolates in their own type (a DECIMAL's truncated to its scale): their
/// quantiles are those of their numbers. Slower than `quantile_cont` when nearly every value is
/// distinct (a sort instead of a selection: 0.5 s against 0.17 s for 5 M doubles), the price of
/// not holding them all in memory.
fn ranked_quantiles(values: &[(String, Vec<String>)], from: &str, names: &[String]) -> String {
    let doubles: Vec<String> = values.iter().map(|(v, _)| format!("CAST({v} AS DOUBLE)")).collect();
    let wanted = values
        .iter()
        .enumerate()
        .flat_map(|(k, (_, fractions))| {
            fractions.iter().enumerate().map(move |(i, f)| format!("({k}, {i}, {f})"))
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "(WITH __ag_rank_g AS ({}), \
               __ag_rank_c AS (SELECT k, v, n, sum(n) OVER (PARTITION BY k ORDER BY v ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS c \
                               FROM __ag_rank_g), \
               __ag_rank_p AS (SELECT w.k, w.i, CAST(t.total - 1 AS DOUBLE) * CAST(w.f AS DOUBLE) AS p \
                               FROM (SELECT k, sum(n) AS total FROM __ag_rank_g GROUP BY k) t \
                               JOIN (VALUES {wanted}) AS w(k, i, f) ON w.k = t.k WHERE t.total > 0), \
               __ag_rank_r AS (SELECT k, i, p, floor(p) AS fl, CAST(floor(p) AS BIGINT) AS lo_rank, \
                                      CAST(ceil(p) AS BIGINT) AS hi_rank FROM __ag_rank_p), \
               __ag_rank_q AS (SELECT r.k, list(CASE WHEN r.lo_rank = r.hi_rank THEN lo.v \
                                      ELSE lo.v * (1.0 - (r.p - r.fl)) + hi.v * (r.p - r.fl) END ORDER BY r.i) AS qs \
                               FROM __ag_rank_r r \
                               JOIN __ag_rank_c lo ON lo.k = r.k AND lo.c - lo.n <= r.lo_rank AND r.lo_rank < lo.c \
                               JOIN __ag_rank_c hi ON hi.k = r.k AND hi.c - hi.n <= r.hi_rank AND r.hi_rank < hi.c \
                               GROUP BY r.k) \
          {})",
        grouped_values(&doubles, from),
        pivot("__ag_rank_q", "qs", names)
    )
}

/// The median of each integer expression of `values` (all of one type, of at most 64 bits, so
/// that the sum of two values fits a HUGEINT) over `from`, exactly, as a one-row subquery whose
/// column `names[i]` (HUGEINT; NULL when there is no value) holds the `i`th: the mean of the
/// values at ranks ⌊(rows − 1)/2⌋ and ⌈(rows − 1)/2⌉ (from the ranks of the grouped values, as
/// [`ranked_quantiles`]), rounded half away from zero (as `round` does; a cast rounds half to
/// even).
/// The same number [`ranked_quantiles`] gives a small column, but never through a DOUBLE,
/// which rounds integers beyond 2⁵³ (and one near the type's limit out of its range).
fn ranked_integer_medians(values: &[String], from: &str, names: &[String]) -> String {
    format!(
        "(WITH __ag_med_g AS ({}), \
               __ag_med_c AS (SELECT k, v, n, sum(n) OVER (PARTITION BY k ORDER BY v ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS c \
                              FROM __ag_med_g), \
               __ag_med_r AS (SELECT k, (total - 1) // 2 AS lo_rank, total // 2 AS hi_rank \
                              FROM (SELECT k, sum(n) AS total FROM __ag_med_g GROUP BY k) WHERE total > 0), \
               __ag_med_m AS (SELECT k, CASE WHEN s >= 0 THEN (s + 1) // 2 ELSE -((1 - s) // 2) END AS m \
                              FROM (SELECT r.k, CAST(lo.v AS HUGEINT) + CAST(hi.v AS HUGEINT) AS s FROM __ag_med_r r \
                                    JOIN __ag_med_c lo ON lo.k = r.k AND lo.c - lo.n <= r.lo_rank AND r.lo_rank < lo.c \
                                    JOIN __ag_med_c hi ON hi.k = r.k AND hi.c - hi.n <= r.hi_rank AND r.hi_rank < hi.c)) \
          {})",
        grouped_values(values, from),
        pivot("__ag_med_m", "m", names)
    )
}

/// The most frequent value of each expression of `values` (all of one type) over `from`, the
/// least of those equally frequent, as a one-row subquery whose column `names[i]` holds the
/// `i`th (NULL when there is no value).
fn modes(values: &[String], from: &str, names: &[String]) -> String {
    format!(
        "(WITH __ag_mode_g AS ({}), \
               __ag_mode_m AS (SELECT k, first(v ORDER BY n DESC, v) AS m FROM __ag_mode_g GROUP BY k) \
          {})",
        grouped_values(values, from),
        pivot("__ag_mode_m", "m", names)
    )
}

/// A number as a constant expression (statistics such as `quantile_cont` need constants).
fn number(x: f64) -> anyhow::Result<String> {
    ensure!(x.is_finite(), "{x} is not a finite number");
    Ok(format!("CAST({} AS DOUBLE)", quote_literal(&format!("{x:?}"))))
}

/// Light segments ([`is_light`]) in a row that stay queries; the next one is stored. Each
/// reader of a query segment computes every unstored segment before it again (a statistic of
/// the next step included): a plan of a segment per column (outliers removed column by column,
/// each step's rows depending on the one before) would otherwise do work growing with the
/// square of the columns.
const MAX_UNSTORED_SEGMENTS: usize = 3;

struct Compiler {
    ctes: Vec<Cte>,
    params: Vec<Duck>,
    /// Current columns and their types.
    columns: Vec<(String, String)>,
    /// The relation the next step reads: every row of the segment, those removed or
    /// quarantined by an earlier step of it marked with their fate.
    prev: String,
    /// `prev` has only live rows and may be read more than once (the source, or a table's
    /// live rows read back): what a step that reads its input twice needs.
    fresh: bool,
    /// The step being compiled (1-based).
    step: usize,
    /// The first step of the current segment.
    segment_first: usize,
    /// The current segment's flag columns, carried to its table, and what counting them gives.
    carry: Vec<String>,
    counts: Vec<(String, Metric)>,
    /// The current segment quarantines rows.
    quarantining: bool,
    /// The relation whose live rows the current segment reads (`s0` or the last table).
    segment_input: String,
    /// The step that starts the current segment by leaving rows out (a grouping), if any.
    segment_filter: Option<usize>,
    /// Every step of the current segment is cheap to compute again (see [`is_light`]).
    segment_light: bool,
    /// Every segment is stored, light or not (a preview reads each one's rows).
    store_all: bool,
    /// Segments closed in a row without being stored (see [`MAX_UNSTORED_SEGMENTS`]).
    unstored: usize,
    segments: Vec<Segment>,
    quarantines: Vec<String>,
    metrics: Vec<(String, Vec<Metric>)>,
}

/// A step that computes new values row by row (see [`Compiler::map`]).
#[derive(Default)]
struct Map {
    /// Columns given a new value: `(column, expression over the input)`.
    values: Vec<(String, String)>,
    /// The plan step each new value belongs to, in the order of `values`, when a run of steps
    /// is compiled as one ([`outlier_run`], [`standardize_run`], [`conversion_run`]); empty:
    /// the step being compiled.
    steps: Vec<usize>,
    /// Old and new values are compared as text (the step changes the column's type).
    as_text: bool,
    /// Per column, when a value could not be handled: a condition over the input and the new
    /// values (`__ag_n{i}`, in the order of `values`).
    fails: Vec<(String, String)>,
    /// The plan step each failure belongs to, as `steps` for `values`.
    fail_steps: Vec<usize>,
    /// Live rows the step removes: a condition over the input, the new values and the
    /// failures (`__ag_x{j}`) ...
    remove: Option<String>,
    /// ... sending them to quarantine with this reason (an expression over the same).
    reason: Option<String>,
}

impl Compiler {
    fn bind(&mut self, value: Duck) -> String {
        self.params.push(value);
        format!("${}", self.params.len())
    }

    fn text(&mut self, value: &str) -> String {
        self.bind(Duck::Text(value.to_string()))
    }

    /// Adds a CTE, returning its name.
    fn cte(&mut self, sql: String) -> String {
        self.cte_with(sql, Hint::Default, "")
    }

    fn cte_with(&mut self, sql: String, hint: Hint, columns: &str) -> String {
        let name = format!("t{}", self.ctes.len());
        self.ctes.push(Cte {
            name: name.clone(),
            columns: columns.into(),
            sql,
            table: false,
            hint,
            step: self.step,
        });
        name
    }

    fn type_of(&self, column: &str) -> anyhow::Result<String> {
        self.columns
            .iter()
            .find(|(name, _)| name == column)
            .map(|(_, ty)| ty.clone())
            .with_context(|| format!("no column {column:?}"))
    }

    /// The current columns, the row's position, fate and reason, and the segment's flags,
    /// `replace` giving some an expression instead.
    fn project(&self, replace: &[(String, String)]) -> String {
        self.columns
            .iter()
            .map(|(name, _)| name.as_str())
            .chain([ROW, FATE, REASON])
            .chain(self.carry.iter().map(String::as_str))
            .map(|name| match replace.iter().find(|(c, _)| c == name) {
                Some((_, expr)) => format!("{expr} AS {}", quote_identifier(name)),
                None => quote_identifier(name),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Makes `prev` readable twice with only live rows: the segment so far becomes a table,
    /// counted, and the next segment starts from its live rows.
    fn barrier(&mut self) {
        if self.fresh {
            return;
        }
        let table = self.close(self.step - 1, false);
        self.segment_input = table.clone();
        let list = self.project(&[]);
        self.prev =
            self.cte_with(format!("SELECT {list} FROM {table} WHERE {FATE} IS NULL"), Hint::Inline, "");
        self.fresh = true;
    }

    /// Closes the segment (`prev`, steps `segment_first..=through`): a table, or a query when
    /// it is light, with its counts (and, when `out`, the rows left: the last segment) and
    /// quarantined rows; returns its name.
    fn close(&mut self, through: usize, out: bool) -> String {
        let table = self.prev.clone();
        let filter = self.segment_filter.take();
        // A segment of cheap steps stays a query over what is stored: each reader (its
        // counts, the next step, the output) computes it again, which costs less than writing
        // and reading back every row (a segment that groups or quarantines is stored).
        let stored = self.store_all
            || !self.segment_light
            || filter.is_some()
            || self.quarantining
            || self.unstored >= MAX_UNSTORED_SEGMENTS;
        self.unstored = if stored { 0 } else { self.unstored + 1 };
        if let Some(cte) = self.ctes.iter_mut().find(|c| c.name == table) {
            cte.table = stored;
        }
        self.segments.push(Segment { table: table.clone(), departed: None });
        if let Some(k) = filter {
            // Rows the grouping left out: the live rows read, less the rows stored.
            self.metrics.push((
                format!(
                    "SELECT CAST([(SELECT count_if({FATE} IS NULL) FROM {}) - (SELECT count(*) FROM {table})] AS VARCHAR)",
                    self.segment_input
                ),
                vec![Metric::Removed(k)],
            ));
        }
        let mut counts: Vec<(String, Metric)> = Vec::new();
        for k in self.segment_first..=through {
            counts.push((format!("count_if({FATE} = {k} AND {REASON} IS NULL)"), Metric::Removed(k)));
            counts.push((format!("count_if({FATE} = {k} AND {REASON} IS NOT NULL)"), Metric::Quarantined(k)));
        }
        counts.append(&mut self.counts);
        if out {
            counts.push((format!("count_if({FATE} IS NULL)"), Metric::Out));
        }
        if !counts.is_empty() {
            let (items, metrics): (Vec<String>, Vec<Metric>) = counts.into_iter().unzip();
            self.metrics
                .push((format!("SELECT CAST([{}] AS VARCHAR) FROM {table}", items.join(", ")), metrics));
        }
        if self.quarantining {
            let q = self.cte(format!(
                "SELECT {ROW}, {REASON} FROM {table} WHERE {FATE} IS NOT NULL AND {REASON} IS NOT NULL"
            ));
            if let Some(cte) = self.ctes.last_mut() {
                cte.table = true;
            }
            self.quarantines.push(q);
            self.quarantining = false;
        }
        if self.store_all {
            // A preview reads which rows left where once every segment is computed: those
            // few rows are kept, and each segment's table is dropped when the next has read
            // it, as in a run (keeping every table of a segment per column of a wide sample
            // ran out of memory).
            let mut sql = format!(
                "SELECT {ROW}, {FATE} AS f, {REASON} AS why, CAST(NULL AS INTEGER) AS gone \
                 FROM {table} WHERE {FATE} IS NOT NULL"
            );
            if let Some(k) = filter {
                // Rows the grouping left out: live before it, absent from its table.
                sql.push_str(&format!(
                    " UNION ALL SELECT p.{ROW}, NULL, NULL, {k} FROM {} p \
                     WHERE p.{FATE} IS NULL AND NOT EXISTS (SELECT 1 FROM {table} x WHERE x.{ROW} = p.{ROW})",
                    self.segment_input
                ));
            }
            let departed = self.cte(sql);
            if let Some(cte) = self.ctes.last_mut() {
                cte.table = true;
            }
            if let Some(segment) = self.segments.last_mut() {
                segment.departed = Some(departed);
            }
        }
        self.carry.clear();
        self.segment_first = through + 1;
        self.segment_light = true;
        table
    }

    /// The last segment stored (the source when no step computed anything); returns the
    /// relation whose live rows are the output.
    fn finish(&mut self, steps: usize) -> String {
        let last = if self.prev == "s0" {
            self.prev.clone()
        } else {
            if self.fresh {
                // The live rows of a table, read back by a step that then did nothing.
                let list = self.project(&[]);
                let from = self.prev.clone();
                self.prev = self.cte(format!("SELECT {list} FROM {from}"));
            }
            return self.close(steps, true);
        };
        self.metrics.push((
            format!("SELECT CAST([count_if({FATE} IS NULL)] AS VARCHAR) FROM {last}"),
            vec![Metric::Out],
        ));
        last
    }

    /// A row-by-row step over `from` (which has `prev`'s columns and maybe helpers): new
    /// values, failures and removals, each new value flagged where it differs from the old
    /// one and each failure flagged, for the segment's table to count.
    fn map(&mut self, from: &str, m: Map) {
        let k = self.step;
        let mut from = from.to_string();
        if !m.values.is_empty() {
            let items = m
                .values
                .iter()
                .enumerate()
                .map(|(i, (_, e))| format!("{e} AS __ag_n{i}"))
                .collect::<Vec<_>>();
            from = self.cte(format!("SELECT *, {} FROM {from}", items.join(", ")));
        }
        if !m.fails.is_empty() {
            let items =
                m.fails.iter().enumerate().map(|(j, (_, e))| format!("{e} AS __ag_x{j}")).collect::<Vec<_>>();
            from = self.cte(format!("SELECT *, {} FROM {from}", items.join(", ")));
        }
        let mut replace: Vec<(String, String)> = m
            .values
            .iter()
            .enumerate()
            .map(|(i, (column, _))| (column.clone(), format!("__ag_n{i}")))
            .collect();
        if let Some(remove) = &m.remove {
            let when = format!("{FATE} IS NULL AND coalesce({remove}, false)");
            replace.push((FATE.into(), format!("CASE WHEN {when} THEN {k} ELSE {FATE} END")));
            if let Some(reason) = &m.reason {
                replace.push((REASON.into(), format!("CASE WHEN {when} THEN {reason} ELSE {REASON} END")));
                self.quarantining = true;
            }
        }
        let list = self.project(&replace);
        let mut flags = String::new();
        // Rows the step kept (their fate, if any, came later), or rows it received.
        for (i, (column, _)) in m.values.iter().enumerate() {
            let k = m.steps.get(i).copied().unwrap_or(k);
            let kept = format!("({FATE} IS NULL OR {FATE} > {k})");
            let flag = format!("__ag_c{k}_{i}");
            let q = quote_identifier(column);
            let differs = if m.as_text {
                format!("CAST(__ag_n{i} AS VARCHAR) IS DISTINCT FROM CAST({q} AS VARCHAR)")
            } else {
                format!("__ag_n{i} IS DISTINCT FROM {q}")
            };
            flags.push_str(&format!(", ({differs}) AS {flag}"));
            self.counts.push((format!("count_if({flag} AND {kept})"), Metric::Changed(k, column.clone())));
            self.carry.push(flag);
        }
        for (j, (column, _)) in m.fails.iter().enumerate() {
            let k = m.fail_steps.get(j).copied().unwrap_or(k);
            let received = format!("({FATE} IS NULL OR {FATE} >= {k})");
            let flag = format!("__ag_f{k}_{j}");
            flags.push_str(&format!(", coalesce(__ag_x{j}, false) AS {flag}"));
            self.counts.push((format!("count_if({flag} AND {received})"), Metric::Failed(k, column.clone())));
            self.carry.push(flag);
        }
        self.prev = self.cte(format!("SELECT {list}{flags} FROM {from}"));
        self.fresh = false;
    }
}

/// Compiles `plan` over `source`, a query of the columns and `__ag_row`; `store_all`: every
/// segment is stored (else light ones stay queries).
fn compile(
    columns: &[ColumnInfo],
    plan: &CleansePlan,
    source: &str,
    store_all: bool,
) -> anyhow::Result<Compiled> {
    for c in columns {
        ensure!(!is_reserved_column(&c.name), "the column name {:?} is reserved", c.name);
    }
    ensure!(!columns.is_empty(), "the dataset has no columns");
    let mut c = Compiler {
        ctes: vec![Cte {
            name: "s0".into(),
            columns: String::new(),
            sql: format!(
                "SELECT *, CAST(NULL AS INTEGER) AS {FATE}, CAST(NULL AS VARCHAR) AS {REASON} FROM ({source})"
            ),
            table: false,
            hint: Hint::Default,
            step: 0,
        }],
        params: Vec::new(),
        columns: columns.iter().map(|c| (c.name.clone(), c.data_type.to_uppercase())).collect(),
        prev: "s0".into(),
        fresh: true,
        step: 0,
        segment_first: 1,
        carry: Vec::new(),
        counts: Vec::new(),
        quarantining: false,
        segment_input: "s0".into(),
        segment_filter: None,
        segment_light: true,
        store_all,
        unstored: 0,
        segments: Vec::new(),
        quarantines: Vec::new(),
        metrics: vec![("SELECT CAST([count(*)] AS VARCHAR) FROM s0".into(), vec![Metric::Rows])],
    };
    let mut i = 0;
    while i < plan.steps.len() {
        c.step = i + 1;
        let run = outlier_run(&plan.steps[i..]);
        if run > 0 {
            // (Errors name their step.)
            compile_outliers(&mut c, &plan.steps[i..i + run])?;
            i += run;
        } else if let run @ 1.. = standardize_run(&plan.steps[i..]) {
            let specs: Vec<&Standardize> = plan.steps[i..i + run]
                .iter()
                .filter_map(|s| match s {
                    Step::Standardize(s) => Some(s),
                    _ => None,
                })
                .collect();
            compile_standardize(&mut c, &specs)?;
            i += run;
        } else if let run @ 1.. = conversion_run(&plan.steps[i..]) {
            compile_conversions(&mut c, &plan.steps[i..i + run])?;
            i += run;
        } else {
            let step = &plan.steps[i];
            compile_step(&mut c, step, plan).with_context(|| format!("step {} ({})", i + 1, step.name()))?;
            i += 1;
        }
    }
    let last = c.finish(plan.steps.len());
    Ok(Compiled {
        ctes: c.ctes,
        params: c.params,
        source_columns: columns.iter().map(|c| c.name.clone()).collect(),
        columns: c.columns.iter().map(|(n, _)| n.clone()).collect(),
        types: c.columns.iter().map(|(n, t)| ColumnInfo { name: n.clone(), data_type: t.clone() }).collect(),
        step_names: plan.steps.iter().map(Step::name).collect(),
        segments: c.segments,
        last,
        quarantines: c.quarantines,
        metrics: c.metrics,
    })
}

/// A step whose row-by-row part is cheap arithmetic or a choice between stored values
/// (statistics are stored apart): computing it again where it is read costs less than storing
/// its rows. Parsing, patterns, groupings and windows are not light.
fn is_light(step: &Step) -> bool {
    match step {
        Step::Outliers { .. } | Step::ConvertUnits { .. } => true,
        Step::Nulls { tokens, columns } => {
            tokens.is_empty()
                && columns
                    .iter()
                    .all(|(_, s)| !matches!(s, NullStrategy::ForwardFill | NullStrategy::BackFill))
        }
        _ => false,
    }
}

/// How many steps from the start of `steps` are unit conversions of distinct columns, compiled
/// as one projection (see [`compile_conversions`]).
fn conversion_run(steps: &[Step]) -> usize {
    let mut columns: Vec<&str> = Vec::new();
    for step in steps {
        let Step::ConvertUnits { column, .. } = step else { break };
        if columns.contains(&column.as_str()) {
            break;
        }
        columns.push(column);
    }
    columns.len()
}

/// A run of unit conversions ([`conversion_run`]) starting at step `c.step`: one projection,
/// each change counted for its own step (a projection of every column per step grew with the
/// square of the columns).
fn compile_conversions(c: &mut Compiler, run: &[Step]) -> anyhow::Result<()> {
    let first = c.step;
    let (mut values, mut steps, mut fails) = (Vec::new(), Vec::new(), Vec::new());
    for (j, step) in run.iter().enumerate() {
        (|| -> anyhow::Result<()> {
            let Step::ConvertUnits { column, conversion } = step else { bail!("not a unit conversion") };
            let ty = c.type_of(column)?;
            ensure!(is_numeric(&ty), "{column} ({ty}) is not numeric");
            let Conversion { subtract, multiply, divide, add } = *conversion;
            ensure!(
                [subtract, multiply, divide, add].iter().all(|x| x.is_finite()) && divide != 0.0,
                "a unit conversion needs finite numbers"
            );
            let [s, m, d, a] = [subtract, multiply, divide, add].map(|x| c.bind(Duck::Double(x)));
            // Multiplied first (exact factors such as 45359237 / 10^8 stay exact), unless the
            // product overflows where the result does not (1e308 lb in kg): then divided first.
            let input = format!("CAST({} AS DOUBLE)", quote_identifier(column));
            let x = format!("({input} - {s})");
            let converted =
                format!("(CASE WHEN isinf({x} * {m}) THEN {x} / {d} * {m} ELSE {x} * {m} / {d} END + {a})");
            // A finite value whose conversion is beyond DOUBLE (1e308 in to cm) fails and
            // keeps its value rather than become infinity.
            let beyond = format!("(isfinite({input}) AND NOT isfinite({converted}))");
            values.push((column.clone(), format!("CASE WHEN {beyond} THEN {input} ELSE {converted} END")));
            fails.push((column.clone(), beyond));
            steps.push(first + j);
            Ok(())
        })()
        .with_context(|| format!("step {} (convert_units)", first + j))?;
    }
    c.step = first + run.len() - 1;
    let prev = c.prev.clone();
    let converted: Vec<String> = values.iter().map(|(column, _)| column.clone()).collect();
    let fail_steps = steps.clone();
    c.map(&prev, Map { values, steps, fails, fail_steps, ..Map::default() });
    for column in converted {
        if let Some(entry) = c.columns.iter_mut().find(|(n, _)| *n == column) {
            entry.1 = "DOUBLE".into();
        }
    }
    Ok(())
}

/// How many steps from the start of `steps` form a run of standardisation steps compiled as
/// one (see [`compile_standardize`]): steps on distinct columns, each reading and writing only
/// its own. 0 when the first step is not one.
fn standardize_run(steps: &[Step]) -> usize {
    let mut columns: Vec<&str> = Vec::new();
    for step in steps {
        let Step::Standardize(s) = step else { break };
        if columns.contains(&s.column.as_str()) {
            break;
        }
        columns.push(&s.column);
    }
    columns.len()
}

/// The SQL of a case conversion of `__ag_v`.
///
/// DuckDB's `upper` maps `ß` to `ẞ`; Unicode's full mapping (and what people write) is `SS`.
/// DuckDB's `lower` maps `Σ` to `σ` everywhere; Greek writes `ς` at the end of a word
/// (`ΟΔΟΣ` is `οδος`), as Unicode's full mapping does: a `σ` after a letter and not before
/// one becomes `ς` (a lower-case `οδοσ` too, so that a value map's key written so still
/// matches the converted value).
/// Title case lowers the value, then capitalises the first letter of every word, a word
/// starting after a space, a hyphen, a slash or an opening parenthesis (`Jean-Luc`,
/// `Input/Output`); not after an apostrophe, which would make `Don'T`.
fn case_sql(case: Case) -> String {
    let lower = r"CASE WHEN contains(__ag_v, 'Σ') OR contains(__ag_v, 'σ') THEN regexp_replace(lower(__ag_v), '(\pL\pM*)σ(\PL|$)', '\1ς\2', 'g') ELSE lower(__ag_v) END";
    match case {
        Case::Upper => "upper(replace(__ag_v, 'ß', 'ss'))".to_string(),
        Case::Lower => lower.to_string(),
        Case::Title => TITLE_BOUNDARIES.iter().fold(lower.to_string(), |value, sep| {
            format!("array_to_string(list_transform(string_split({value}, '{sep}'), lambda w: upper(w[1]) || w[2:]), '{sep}')")
        }),
    }
}

/// What starts a word in title case (each is a SQL literal's text as it stands).
const TITLE_BOUNDARIES: [&str; 4] = ["(", "/", "-", " "];

/// A run of standardisation steps ([`standardize_run`]) starting at step `c.step`: every
/// column's operations level by level (the `i`th operation of every column in one projection),
/// then one projection of the new values, each change and failure counted for its own step.
/// Compiled one step at a time, a wide file's default plan (a step per text column) nested a
/// projection of every column per step: planning grew with the square of the columns.
fn compile_standardize(c: &mut Compiler, run: &[&Standardize]) -> anyhow::Result<()> {
    let first = c.step;
    c.segment_light = false;
    // Per column: its operations, each over the previous one's result (`__ag_v`).
    let mut chains: Vec<Vec<String>> = Vec::new();
    let mut temporal = Vec::new();
    for (j, s) in run.iter().enumerate() {
        (|| -> anyhow::Result<()> {
            let ty = c.type_of(&s.column)?;
            let is_temporal = is_temporal(&ty);
            ensure!(
                is_text(&ty) || (is_temporal && s.date_formats.is_some()),
                "{} ({ty}) is not a text column",
                s.column
            );
            // One operation per level, each over the previous level's column: nothing is
            // computed twice, whatever the operations.
            let mut ops: Vec<String> = Vec::new();
            if let (Some((_, target)), true) = (&s.date_formats, is_temporal) {
                let target = c.text(target);
                ops.push(format!("strftime(__ag_v, {target})"));
            }
            if s.email {
                ops.push(strip("__ag_v"));
                ops.push("lower(__ag_v)".into());
            }
            if s.trim {
                ops.push(strip("__ag_v"));
            }
            if s.collapse_spaces {
                ops.push(collapse("__ag_v"));
            }
            let case = s.case.map(case_sql);
            if let Some(case) = &case {
                ops.push(case.clone());
            }
            if !s.value_map.is_empty() {
                let mut cases = String::new();
                for (from, to) in &s.value_map {
                    // A key is compared after the column's case conversion, as the values are:
                    // `NY` still matches when the column is lower-cased.
                    let from = c.text(from);
                    let from = match &case {
                        Some(case) => case.replace("__ag_v", &from),
                        None => from,
                    };
                    let to = c.text(to);
                    cases.push_str(&format!(" WHEN {from} THEN {to}"));
                }
                ops.push(format!("CASE __ag_v{cases} ELSE __ag_v END"));
            }
            chains.push(ops);
            temporal.push(is_temporal);
            Ok(())
        })()
        .with_context(|| format!("step {} (standardize)", first + j))?;
    }
    // Level by level: `__ag_s{j}_{i}` is column j's value after its i-th operation.
    let mut levels: Vec<String> = run.iter().map(|s| quote_identifier(&s.column)).collect();
    let mut from = c.prev.clone();
    for i in 0..chains.iter().map(Vec::len).max().unwrap_or(0) {
        let items: Vec<String> = chains
            .iter()
            .enumerate()
            .filter_map(|(j, ops)| {
                let op = ops.get(i)?;
                let name = format!("__ag_s{j}_{i}");
                let item = format!("{} AS {name}", op.replace("__ag_v", &levels[j]));
                levels[j] = name;
                Some(item)
            })
            .collect();
        from = c.cte(format!("SELECT *, {} FROM {from}", items.join(", ")));
    }
    let ends =
        levels.iter().enumerate().map(|(j, level)| format!("{level} AS __ag_e{j}")).collect::<Vec<_>>();
    from = c.cte(format!("SELECT *, {} FROM {from}", ends.join(", ")));
    // Parsed dates and phone numbers (`__ag_p{j}`), the new values and the failures.
    let (mut stripped, mut parsed) = (Vec::new(), Vec::new());
    let (mut values, mut steps, mut fails, mut fail_steps) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (j, s) in run.iter().enumerate() {
        (|| -> anyhow::Result<()> {
            let e = format!("__ag_e{j}");
            let mut value = e.clone();
            let mut failed = Vec::new();
            if let (Some((formats, target)), false) = (&s.date_formats, temporal[j]) {
                ensure!(!formats.is_empty(), "date standardisation needs at least one format");
                let list: Vec<(String, bool)> =
                    formats.iter().map(|f| (c.text(f), f.contains("%Y"))).collect();
                let unit = format_unit(target);
                let target = c.text(target);
                // Read as the type fixer reads text: ISO dates and date-times (`2024-03-01
                // 00:00:00`, with a UTC offset as UTC), 12-hour ones, then the formats.
                // (Stripped once, in a projection of its own: the reading names it many times.)
                stripped.push(format!("{} AS __ag_s{j}", strip(&e)));
                parsed.push(format!("{} AS __ag_p{j}", text_timestamp(&format!("__ag_s{j}"), &list)));
                // A value holding more of its time than the output writes fails and keeps its
                // text (`2024-03-01 10:30` with a date-only output), as a timestamp column's.
                // (Parsed text is a TIMESTAMP: microseconds.)
                let kept = if unit > 1_000 {
                    format!("(__ag_p{j} IS NULL OR epoch_us(__ag_p{j}) % {} <> 0)", unit / 1_000)
                } else {
                    format!("(__ag_p{j} IS NULL)")
                };
                value = format!("CASE WHEN {kept} THEN {e} ELSE strftime(__ag_p{j}, {target}) END");
                failed.push(format!("({e} IS NOT NULL AND NOT {} AND {kept})", blank(&e)));
            } else if let (Some((_, target)), true) = (&s.date_formats, temporal[j])
                && let ty = c.type_of(&s.column)?
                && ty.starts_with("TIMESTAMP")
                && let nanoseconds = ty == "TIMESTAMP_NS"
                && format_unit(target) > if nanoseconds { 1 } else { 1_000 }
            {
                // A format that does not write the value's whole time would drop some of it (a
                // date-only format the time of day, `%H:%M` the seconds, `%f` a TIMESTAMP_NS's
                // nanoseconds): such a value fails and keeps its text, as a text value with a
                // time fails a conversion to a date.
                let column = quote_identifier(&s.column);
                let unit = format_unit(target);
                let remainder = if nanoseconds {
                    format!("epoch_ns({column}) % {unit}")
                } else {
                    format!("epoch_us(CAST({column} AS TIMESTAMP)) % {}", unit / 1_000)
                };
                let timed = format!("({column} IS NOT NULL AND isfinite({column}) AND {remainder} <> 0)");
                value = format!("CASE WHEN {timed} THEN CAST({column} AS VARCHAR) ELSE {e} END");
                failed.push(timed);
            }
            if s.email {
                failed.push(format!(
                    "({e} IS NOT NULL AND NOT {} AND NOT regexp_full_match({e}, {}))",
                    blank(&e),
                    quote_literal(EMAIL_RE)
                ));
            }
            if let Some(region) = &s.phone_region {
                ensure!(
                    parse_region(region).is_some(),
                    "{region:?} is not a known phone region (an ISO 3166 alpha-2 code such as \"US\")"
                );
                ensure!(
                    s.date_formats.is_none() && !s.email,
                    "phone numbers cannot be standardised together with dates or emails"
                );
                let region = c.text(region);
                parsed.push(format!("{PHONE_FN}({e}, {region}) AS __ag_p{j}"));
                value = format!("coalesce(__ag_p{j}, {e})");
                failed.push(format!("({e} IS NOT NULL AND NOT {} AND __ag_p{j} IS NULL)", blank(&e)));
            }
            values.push((s.column.clone(), value));
            steps.push(first + j);
            if !failed.is_empty() {
                fails.push((s.column.clone(), failed.join(" OR ")));
                fail_steps.push(first + j);
            }
            Ok(())
        })()
        .with_context(|| format!("step {} (standardize)", first + j))?;
    }
    if !stripped.is_empty() {
        from = c.cte(format!("SELECT *, {} FROM {from}", stripped.join(", ")));
    }
    if !parsed.is_empty() {
        from = c.cte(format!("SELECT *, {} FROM {from}", parsed.join(", ")));
    }
    c.step = first + run.len() - 1;
    // A date or time column becomes text: old and new values are compared as text (which
    // changes nothing for a text column).
    let as_text = temporal.iter().any(|t| *t);
    c.map(&from, Map { values, steps, as_text, fails, fail_steps, ..Map::default() });
    for s in run {
        if let Some(entry) = c.columns.iter_mut().find(|(n, _)| n == &s.column) {
            entry.1 = "VARCHAR".into();
        }
    }
    Ok(())
}

/// How many steps from the start of `steps` form a run of outlier steps compiled as one (see
/// [`compile_outliers`]): outlier steps on distinct columns, of which only the last may remove
/// rows. None of them changes the rows or the values another one reads, so each one's
/// statistics are those of the run's input. 0 when the first step is not an outlier step.
fn outlier_run(steps: &[Step]) -> usize {
    let mut columns: Vec<&str> = Vec::new();
    for step in steps {
        let Step::Outliers { column, action, .. } = step else { break };
        if columns.contains(&column.as_str()) {
            break;
        }
        columns.push(column);
        if *action == OutlierAction::Remove {
            break;
        }
    }
    columns.len()
}

/// A run of outlier steps ([`outlier_run`]) starting at step `c.step`: one segment whose
/// statistics are one stored row (the quantiles of every DOUBLE and integer column from one
/// grouping of their ranks, the other statistics from one aggregation), read by one projection
/// that caps or imputes every column, each change counted for its own step. Compiled one step
/// at a time, a wide file's default plan (a step per numeric column) made a segment and a
/// statistics query per column, each carrying every column: time and memory grew with the
/// square of the columns.
fn compile_outliers(c: &mut Compiler, run: &[Step]) -> anyhow::Result<()> {
    c.barrier();
    let prev = c.prev.clone();
    let first = c.step;
    let (mut ranked, mut ranked_names, mut aggregates) = (Vec::new(), Vec::new(), Vec::new());
    let (mut bounds, mut values, mut steps, mut remove) = (Vec::new(), Vec::new(), Vec::new(), None);
    for (j, step) in run.iter().enumerate() {
        let k = first + j;
        // (Errors name the step, not the run.)
        (|| -> anyhow::Result<()> {
            let Step::Outliers { column, method, action } = step else {
                bail!("not an outlier step");
            };
            let ty = c.type_of(column)?;
            ensure!(is_numeric(&ty), "{column} ({ty}) is not numeric");
            let ty = sql_type(&ty)?.to_string();
            let q = quote_identifier(column);
            // NaN and ±Infinity are not part of the distribution: the statistics leave them
            // out, a NaN (not a number, like a null) is never an outlier, and ±Infinity lies
            // beyond any finite bound.
            let floating = is_floating(&ty);
            let fv = finite(&q, &ty);
            let qs = format!("__ag_q{j}");
            let (fractions, low, high, median) = match method {
                OutlierMethod::ZScore(z) => {
                    let z = number(*z)?;
                    aggregates.push(format!("avg({fv}) AS __ag_a{j}, stddev_samp({fv}) AS __ag_s{j}"));
                    (
                        vec!["0.5".to_string()],
                        format!("__ag_a{j} - {z} * __ag_s{j}"),
                        format!("__ag_a{j} + {z} * __ag_s{j}"),
                        format!("{qs}[1]"),
                    )
                }
                OutlierMethod::Iqr(f) => {
                    let f = number(*f)?;
                    // No fences when q25 = q75 (a flag that is mostly 0, a quantity nearly
                    // always 1): every other value would be an outlier, and its signal erased.
                    (
                        vec!["0.25".into(), "0.75".into(), "0.5".into()],
                        format!("CASE WHEN {qs}[2] > {qs}[1] THEN {qs}[1] - {f} * ({qs}[2] - {qs}[1]) END"),
                        format!("CASE WHEN {qs}[2] > {qs}[1] THEN {qs}[2] + {f} * ({qs}[2] - {qs}[1]) END"),
                        format!("{qs}[3]"),
                    )
                }
                OutlierMethod::Percentile(a, b) => {
                    ensure!(
                        (0.0..=1.0).contains(a) && (0.0..=1.0).contains(b) && a <= b,
                        "percentiles are fractions, low ≤ high"
                    );
                    (
                        vec![number(*a)?, number(*b)?, "0.5".into()],
                        format!("{qs}[1]"),
                        format!("{qs}[2]"),
                        format!("{qs}[3]"),
                    )
                }
            };
            // The quantiles are one list over the fractions, read from the ranks of the grouped
            // values (`quantile_cont` would keep a copy of every value in memory that cannot
            // spill).
            ranked.push((fv.clone(), fractions));
            ranked_names.push(qs);
            bounds.push(format!(
                "CAST({low} AS DOUBLE) AS __ag_lo{j}, CAST({high} AS DOUBLE) AS __ag_hi{j}, \
                 CAST({median} AS DOUBLE) AS __ag_med{j}"
            ));
            let (lo, hi, med) = (format!("__ag_lo{j}"), format!("__ag_hi{j}"), format!("__ag_med{j}"));
            // (DuckDB orders NaN above every number.)
            let outside = if floating {
                format!("(NOT isnan({q}) AND ({q} < {lo} OR {q} > {hi}))")
            } else {
                format!("({q} < {lo} OR {q} > {hi})")
            };
            match action {
                OutlierAction::Remove => remove = Some(outside),
                OutlierAction::Cap => {
                    // Integers are capped to the whole numbers inside the bounds; when none lies
                    // inside (0 and 1 with bounds [0.23, 0.77]), to the nearest on each side, so
                    // that a low value never ends above a high one.
                    let (lo_value, hi_value) = if is_integer(&ty) {
                        (
                            format!("least(ceil({lo}), floor({hi}))"),
                            format!("greatest(floor({hi}), ceil({lo}))"),
                        )
                    } else {
                        (lo.clone(), hi.clone())
                    };
                    let keep_nan =
                        if floating { format!("WHEN isnan({q}) THEN {q} ") } else { String::new() };
                    values.push((
                        column.clone(),
                        format!(
                            "CASE {keep_nan}WHEN {q} < {lo} THEN CAST({lo_value} AS {ty}) \
                             WHEN {q} > {hi} THEN CAST({hi_value} AS {ty}) ELSE {q} END"
                        ),
                    ));
                    steps.push(k);
                }
                OutlierAction::Impute => {
                    values.push((
                        column.clone(),
                        // (An integer median rounded half away from zero, as the null
                        // handler's; a cast alone rounds half to even.)
                        if is_integer(&ty) {
                            format!("CASE WHEN {outside} THEN CAST(round({med}) AS {ty}) ELSE {q} END")
                        } else {
                            format!("CASE WHEN {outside} THEN CAST({med} AS {ty}) ELSE {q} END")
                        },
                    ));
                    steps.push(k);
                }
            }
            Ok(())
        })()
        .with_context(|| format!("step {k} (outliers)"))?;
    }
    // The statistics: one row from one aggregation and one grouping of ranks.
    let mut sources = Vec::new();
    if !aggregates.is_empty() {
        sources.push(format!("(SELECT {} FROM {prev})", aggregates.join(", ")));
    }
    if !ranked.is_empty() {
        sources.push(ranked_quantiles(&ranked, &prev, &ranked_names));
    }
    let statistics = c.cte(format!("SELECT {} FROM {}", bounds.join(", "), aliased(&sources)));
    // One stored row: read by every statement that computes this segment.
    if let Some(cte) = c.ctes.last_mut() {
        cte.table = true;
    }
    let from = c.cte(format!("SELECT p.*, b.* FROM {prev} p CROSS JOIN {statistics} b"));
    c.step = first + run.len() - 1;
    c.map(&from, Map { values, steps, remove, ..Map::default() });
    Ok(())
}

fn compile_step(c: &mut Compiler, step: &Step, plan: &CleansePlan) -> anyhow::Result<()> {
    // Steps that read their input more than once start a segment.
    let barrier = match step {
        Step::Deduplicate { .. } | Step::Outliers { .. } => true,
        Step::Nulls { columns, .. } => columns.iter().any(|(_, s)| {
            matches!(
                s,
                NullStrategy::Mean
                    | NullStrategy::Median
                    | NullStrategy::Mode
                    | NullStrategy::ForwardFill
                    | NullStrategy::BackFill
            )
        }),
        _ => false,
    };
    if barrier {
        c.barrier();
    }
    if !is_light(step) {
        c.segment_light = false;
    }
    let prev = c.prev.clone();
    match step {
        Step::Quarantine { required, ranges, patterns } => {
            let mut reasons = Vec::new();
            for column in required {
                c.type_of(column)?;
                let q = quote_identifier(column);
                let reason = c.text(&format!("missing {column}"));
                reasons.push(format!("CASE WHEN {q} IS NULL OR {} THEN {reason} END", blank(&q)));
            }
            for (column, low, high) in ranges {
                let ty = c.type_of(column)?;
                let q = quote_identifier(column);
                // The value as a number; NULL for text that is not a finite number (a word,
                // `NaN`, `inf`, or digits with `_`, which DuckDB's cast would read: `1_0` is 10).
                let number = if is_text(&ty) {
                    format!(
                        "CASE WHEN NOT contains({q}, '_') AND isfinite(TRY_CAST({q} AS DOUBLE)) \
                         THEN TRY_CAST({q} AS DOUBLE) END"
                    )
                } else {
                    format!("CAST({q} AS DOUBLE)")
                };
                // A value that is not a number cannot be within the range (a blank is missing,
                // not a violation): text that does not read as one, or a float's NaN (which
                // DuckDB orders above every number: it was "out of range").
                let not_a_number = if is_text(&ty) {
                    Some(format!("{q} IS NOT NULL AND NOT {} AND {number} IS NULL", blank(&q)))
                } else if is_floating(&ty) {
                    Some(format!("isnan({q})"))
                } else {
                    None
                };
                if let Some(condition) = &not_a_number {
                    let reason = c.text(&format!("{column} is not a number"));
                    reasons.push(format!("CASE WHEN {condition} THEN {reason} END"));
                }
                let mut outside = Vec::new();
                if let Some(low) = low {
                    ensure!(low.is_finite(), "a bound must be a finite number");
                    let p = c.bind(Duck::Double(*low));
                    outside.push(format!("{number} < {p}"));
                }
                if let Some(high) = high {
                    ensure!(high.is_finite(), "a bound must be a finite number");
                    let p = c.bind(Duck::Double(*high));
                    outside.push(format!("{number} > {p}"));
                }
                if outside.is_empty() {
                    continue;
                }
                let reason = c.text(&format!("{column} out of range"));
                let nan = if is_floating(&ty) { format!("NOT isnan({q}) AND ") } else { String::new() };
                reasons.push(format!("CASE WHEN {nan}({}) THEN {reason} END", outside.join(" OR ")));
            }
            for (column, pattern) in patterns {
                c.type_of(column)?;
                let q = quote_identifier(column);
                let p = c.text(pattern);
                let reason = c.text(&format!("{column} does not match the format"));
                reasons.push(format!(
                    "CASE WHEN {q} IS NOT NULL AND NOT regexp_full_match(CAST({q} AS VARCHAR), {p}) THEN {reason} END"
                ));
            }
            if reasons.is_empty() {
                return Ok(());
            }
            // Only live rows are tested: a row leaves once, with the reasons of its step.
            let t = c.cte(format!(
                "SELECT *, CASE WHEN {FATE} IS NULL THEN NULLIF(concat_ws('; ', {}), '') END AS __ag_why FROM {prev}",
                reasons.join(", ")
            ));
            c.map(
                &t,
                Map {
                    remove: Some("__ag_why IS NOT NULL".into()),
                    reason: Some("__ag_why".into()),
                    ..Map::default()
                },
            );
        }
        Step::FixTypes { columns, on_failure, month_first: months_first } => {
            if columns.is_empty() {
                return Ok(());
            }
            let mut values = Vec::new();
            let mut fails = Vec::new();
            let mut reasons = Vec::new();
            let mut new_types = Vec::new();
            for (j, (column, target)) in columns.iter().enumerate() {
                let ty = c.type_of(column)?;
                let q = quote_identifier(column);
                let v = strip(&format!("CAST({q} AS VARCHAR)"));
                let formats = || -> Vec<String> {
                    plan.steps
                        .iter()
                        .find_map(|s| match s {
                            Step::Standardize(s) if &s.column == column => {
                                s.date_formats.as_ref().map(|(f, _)| f.clone()).filter(|f| !f.is_empty())
                            }
                            _ => None,
                        })
                        .unwrap_or_else(|| {
                            let formats: Vec<String> =
                                DEFAULT_DATE_FORMATS.iter().map(|f| f.to_string()).collect();
                            if months_first.contains(column) { month_first(&formats) } else { formats }
                        })
                };
                let text = is_text(&ty);
                let (expr, new_type) = match target {
                    TargetType::Integer => (
                        if text {
                            format!(
                                r"CASE WHEN regexp_full_match({v}, '[+-]?(0|[1-9]\d*)(\.0*)?') THEN TRY_CAST({v} AS BIGINT) END"
                            )
                        } else if is_integer(&ty) || ty == "BOOLEAN" {
                            format!("TRY_CAST({q} AS BIGINT)")
                        } else if is_numeric(&ty) {
                            format!("CASE WHEN {q} = trunc({q}) THEN TRY_CAST({q} AS BIGINT) END")
                        } else {
                            bail!("{column} ({ty}) cannot become an integer")
                        },
                        "BIGINT",
                    ),
                    TargetType::Float => (
                        if text {
                            // A number beyond DOUBLE (`1e400`) fails rather than become infinity.
                            format!(
                                "CASE WHEN regexp_full_match({v}, '{FLOAT_RE}') AND isfinite(TRY_CAST({v} AS DOUBLE)) \
                                 THEN TRY_CAST({v} AS DOUBLE) END"
                            )
                        } else if is_numeric(&ty) || ty == "BOOLEAN" {
                            format!("TRY_CAST({q} AS DOUBLE)")
                        } else {
                            bail!("{column} ({ty}) cannot become a number")
                        },
                        "DOUBLE",
                    ),
                    TargetType::Boolean => (
                        if text {
                            // (A CASE on the value: see [`one_of`].)
                            let words = |words: [&str; 5], value: bool| {
                                words.map(|w| format!(" WHEN {} THEN {value}", quote_literal(w))).concat()
                            };
                            format!(
                                "CASE lower({v}){}{} END",
                                words(["true", "t", "yes", "y", "1"], true),
                                words(["false", "f", "no", "n", "0"], false)
                            )
                        } else if ty == "BOOLEAN" {
                            q.clone()
                        } else if is_numeric(&ty) {
                            format!("CASE WHEN {q} = 1 THEN true WHEN {q} = 0 THEN false END")
                        } else {
                            bail!("{column} ({ty}) cannot become a boolean")
                        },
                        "BOOLEAN",
                    ),
                    TargetType::Date | TargetType::Timestamp => {
                        let name = if *target == TargetType::Date { "DATE" } else { "TIMESTAMP" };
                        // A date is a whole day: a value with a time of day other than
                        // midnight fails its conversion to one rather than losing the time.
                        let whole_day = |ts: &str| {
                            if *target == TargetType::Date {
                                format!(
                                    "CASE WHEN {ts} = date_trunc('day', {ts}) THEN CAST({ts} AS DATE) END"
                                )
                            } else {
                                ts.to_string()
                            }
                        };
                        let expr = if text {
                            let list: Vec<(String, bool)> =
                                formats().iter().map(|f| (c.text(f), f.contains("%Y"))).collect();
                            let ts = text_timestamp(&v, &list);
                            if *target == TargetType::Date {
                                // A date beyond TIMESTAMP's range has no time to lose.
                                format!(
                                    "coalesce(CASE WHEN regexp_full_match({v}, '{ISO_DATE_RE}') THEN TRY_CAST({v} AS DATE) END, {})",
                                    whole_day(&ts)
                                )
                            } else {
                                ts
                            }
                        } else if is_temporal(&ty) && ty != "DATE" {
                            // As a TIMESTAMP (microseconds) first: date_trunc of a TIMESTAMP WITH
                            // TIME ZONE needs the ICU extension, which is not compiled in. A
                            // TIMESTAMP_NS value with nanoseconds fails rather than lose them.
                            let ts = if ty == "TIMESTAMP_NS" {
                                format!("CASE WHEN epoch_ns({q}) % 1000 = 0 THEN CAST({q} AS TIMESTAMP) END")
                            } else {
                                format!("CAST({q} AS TIMESTAMP)")
                            };
                            whole_day(&ts)
                        } else if ty == "DATE" {
                            format!("CAST({q} AS {name})")
                        } else {
                            bail!(
                                "{column} ({ty}) cannot become {}",
                                if *target == TargetType::Date { "a date" } else { "a timestamp" }
                            )
                        };
                        (expr, name)
                    }
                };
                let failed = if text {
                    format!("({q} IS NOT NULL AND NOT {} AND __ag_n{j} IS NULL)", blank(&q))
                } else {
                    format!("({q} IS NOT NULL AND __ag_n{j} IS NULL)")
                };
                let what = match target {
                    TargetType::Integer => "an integer",
                    TargetType::Float => "a number",
                    TargetType::Boolean => "a boolean",
                    TargetType::Date => "a date",
                    TargetType::Timestamp => "a timestamp",
                };
                reasons.push((j, format!("{column} is not {what}")));
                values.push((column.clone(), expr));
                fails.push((column.clone(), failed));
                new_types.push((column.clone(), new_type));
            }
            let (remove, reason) = match on_failure {
                OnFailure::Null => (None, None),
                OnFailure::Quarantine => {
                    let any = (0..fails.len()).map(|j| format!("__ag_x{j}")).collect::<Vec<_>>().join(" OR ");
                    let reasons: Vec<String> = reasons
                        .iter()
                        .map(|(j, reason)| format!("CASE WHEN __ag_x{j} THEN {} END", c.text(reason)))
                        .collect();
                    (Some(any), Some(format!("NULLIF(concat_ws('; ', {}), '')", reasons.join(", "))))
                }
            };
            c.map(&prev, Map { values, as_text: true, fails, remove, reason, ..Map::default() });
            for (column, ty) in &new_types {
                if let Some(entry) = c.columns.iter_mut().find(|(n, _)| n == column) {
                    entry.1 = ty.to_string();
                }
            }
        }
        Step::Standardize(s) => compile_standardize(c, &[s])?,
        Step::Deduplicate { mode, keep, merge } => {
            let names: Vec<String> = c.columns.iter().map(|(n, _)| n.clone()).collect();
            // Per column, the group's first non-null value over a window `partition`.
            let merged = |partition: &str| {
                names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| {
                        format!(
                            ", first_value({} IGNORE NULLS) OVER (PARTITION BY {partition} ORDER BY {ROW} \
                             ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS __ag_m{i}",
                            quote_identifier(n)
                        )
                    })
                    .collect::<String>()
            };
            let fills: Vec<(String, String)> = names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), format!("coalesce({}, __ag_m{i})", quote_identifier(n))))
                .collect();
            if let DedupMode::Fuzzy { columns, threshold, block } = mode {
                ensure!(
                    *keep == Keep::First,
                    "fuzzy deduplication keeps the first row of a group; keeping the last is not supported"
                );
                ensure!(!columns.is_empty(), "fuzzy deduplication needs a column to compare");
                ensure!(
                    threshold.is_finite() && (0.0..=1.0).contains(threshold),
                    "the similarity threshold must be between 0 and 1, not {threshold}"
                );
                let parts = columns
                    .iter()
                    .map(|col| {
                        c.type_of(col)?;
                        // Composed (NFC): `ü` typed as u + combining diaeresis is one character,
                        // as Jaro–Winkler by characters needs.
                        let text = format!("nfc_normalize(CAST({} AS VARCHAR))", quote_identifier(col));
                        Ok(format!("coalesce({}, '')", lower_sigma(&tidy(&text))))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let key = format!("concat_ws(' | ', {})", parts.join(", "));
                let filled = format!("concat({}) <> ''", parts.join(", "));
                let threshold = c.bind(Duck::Double(*threshold));
                let keyed = match block {
                    Some(b) => {
                        c.type_of(b)?;
                        c.cte_with(
                            format!(
                                "SELECT {ROW}, {key} AS __ag_k, {} AS __ag_b, {ASCII_KEY} FROM {prev} WHERE {filled}",
                                quote_identifier(b)
                            ),
                            Hint::Materialized,
                            "",
                        )
                    }
                    None => {
                        // Blocks of the key's first character; a block of more than
                        // FUZZY_BLOCK_ROWS rows is split by its first two characters, and so on
                        // (at most FUZZY_PREFIX): the self-join's cost grows with the square of
                        // the blocks, and first letters of a million names make blocks of
                        // 100,000 rows.
                        let keys = c.cte(format!("SELECT {ROW}, {key} AS __ag_k FROM {prev} WHERE {filled}"));
                        let arms: String = (1..FUZZY_PREFIX)
                            .map(|n| {
                                format!(
                                    " WHEN count(*) OVER (PARTITION BY left(__ag_k, {n})) <= {FUZZY_BLOCK_ROWS} \
                                     THEN left(__ag_k, {n})"
                                )
                            })
                            .collect();
                        c.cte_with(
                            format!(
                                "SELECT {ROW}, __ag_k, CASE{arms} ELSE left(__ag_k, {FUZZY_PREFIX}) END AS __ag_b, \
                                 {ASCII_KEY} FROM {keys}"
                            ),
                            Hint::Materialized,
                            "",
                        )
                    }
                };
                // Each removed row with its earliest similar earlier row.
                let pairs = c.cte_with(
                    format!(
                        "SELECT y.{ROW} AS __ag_dup, min(x.{ROW}) AS __ag_parent FROM {keyed} x JOIN {keyed} y \
                         ON x.__ag_b IS NOT DISTINCT FROM y.__ag_b AND x.{ROW} < y.{ROW} \
                         AND CASE WHEN x.__ag_a AND y.__ag_a THEN jaro_winkler_similarity(x.__ag_k, y.__ag_k) \
                         ELSE {JARO_WINKLER_FN}(x.__ag_k, y.__ag_k) END >= {threshold} GROUP BY y.{ROW}"
                    ),
                    if *merge { Hint::Materialized } else { Hint::Default },
                    "",
                );
                if *merge {
                    // Every row with the kept row its chain of parents leads to.
                    let roots = format!("t{}", c.ctes.len());
                    c.cte_with(
                        format!(
                            "SELECT {ROW}, {ROW} FROM {prev} WHERE {ROW} NOT IN (SELECT __ag_dup FROM {pairs}) \
                             UNION ALL SELECT p.__ag_dup, r.__ag_root FROM {roots} r JOIN {pairs} p ON p.__ag_parent = r.__ag_r"
                        ),
                        Hint::Default,
                        "(__ag_r, __ag_root)",
                    );
                    let t = c.cte(format!(
                        "SELECT p.*, g.__ag_root{} FROM {prev} p JOIN {roots} g ON g.__ag_r = p.{ROW}",
                        merged("g.__ag_root")
                    ));
                    c.map(
                        &t,
                        Map { values: fills, remove: Some(format!("{ROW} <> __ag_root")), ..Map::default() },
                    );
                } else {
                    let t = c.cte(format!(
                        "SELECT p.*, d.__ag_dup FROM {prev} p LEFT JOIN {pairs} d ON d.__ag_dup = p.{ROW}"
                    ));
                    c.map(&t, Map { remove: Some("__ag_dup IS NOT NULL".into()), ..Map::default() });
                }
                return Ok(());
            }
            let keys: Vec<String> = match mode {
                DedupMode::Exact => c.columns.iter().map(|(n, _)| quote_identifier(n)).collect(),
                DedupMode::CaseInsensitive => c
                    .columns
                    .iter()
                    .map(|(n, ty)| {
                        let q = quote_identifier(n);
                        if is_text(ty) { folded(&tidy(&q)) } else { q }
                    })
                    .collect(),
                DedupMode::Keys(keys) => {
                    ensure!(!keys.is_empty(), "deduplication by keys needs a key");
                    for key in keys {
                        c.type_of(key)?;
                    }
                    // A row whose keys are all null or blank stands for itself only, as in
                    // the other modes: rows without an id are not copies of each other.
                    let missing = keys
                        .iter()
                        .map(|k| {
                            let q = quote_identifier(k);
                            format!("({q} IS NULL OR coalesce({}, false))", blank(&q))
                        })
                        .collect::<Vec<_>>()
                        .join(" AND ");
                    keys.iter()
                        .map(|k| quote_identifier(k))
                        .chain([format!("CASE WHEN {missing} THEN {ROW} END")])
                        .collect()
                }
                DedupMode::KeysIgnoreCase(keys) => {
                    ensure!(!keys.is_empty(), "deduplication by keys needs a key");
                    for key in keys {
                        c.type_of(key)?;
                    }
                    // A blank key stands for its own row only: never equal to another.
                    keys.iter()
                        .map(|k| {
                            let q = quote_identifier(k);
                            format!(
                                "coalesce(nullif({}, ''), chr(1) || CAST({ROW} AS VARCHAR))",
                                lower_sigma(&tidy(&format!("CAST({q} AS VARCHAR)")))
                            )
                        })
                        .collect()
                }
                DedupMode::Fuzzy { .. } => unreachable!("handled above"),
            };
            let order = match keep {
                Keep::First => "ASC",
                Keep::Last => "DESC",
            };
            let partition = keys.join(", ");
            if *merge {
                let extra = merged(&partition);
                let t = c.cte(format!(
                    "SELECT *, row_number() OVER (PARTITION BY {partition} ORDER BY {ROW} {order}) AS __ag_rn{extra} \
                     FROM {prev}"
                ));
                c.map(&t, Map { values: fills, remove: Some("__ag_rn <> 1".into()), ..Map::default() });
            } else {
                // One row per group, by a grouping (DuckDB's hash aggregate spills to disk; a
                // window over as many partitions as rows, or a join back to the kept
                // positions, needs memory in proportion to the rows): the group's values when
                // every column is a key, else each column's value at the first (or last)
                // position. The rows left out are counted as the segment's input less its rows
                // (this step starts the segment: a barrier).
                let (pick, arg) = match keep {
                    Keep::First => ("min", "arg_min_null"),
                    Keep::Last => ("max", "arg_max_null"),
                };
                let exact = matches!(mode, DedupMode::Exact);
                let values = c
                    .columns
                    .iter()
                    .map(|(n, _)| {
                        let q = quote_identifier(n);
                        if exact { q } else { format!("{arg}({q}, {ROW}) AS {q}") }
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                c.prev = c.cte(format!(
                    "SELECT {values}, {pick}({ROW}) AS {ROW}, CAST(NULL AS INTEGER) AS {FATE}, \
                     CAST(NULL AS VARCHAR) AS {REASON} FROM {prev} GROUP BY {partition}"
                ));
                c.fresh = false;
                c.segment_filter = Some(c.step);
            }
        }
        Step::Nulls { tokens, columns } => {
            // 1. Tokens become NULL in every text column.
            let mut touched: Vec<String> = Vec::new();
            let mut current: Vec<(String, String)> =
                c.columns.iter().map(|(n, _)| (n.clone(), quote_identifier(n))).collect();
            let mut from = prev.clone();
            let text_columns: Vec<String> =
                c.columns.iter().filter(|(_, ty)| is_text(ty)).map(|(n, _)| n.clone()).collect();
            if !tokens.is_empty() && !text_columns.is_empty() {
                // One case-insensitive pattern of the tokens with whitespace around (a list or
                // `IN (…)` of parameters is planned as a join per column), bound as a value.
                let pattern = c.text(&token_pattern(tokens));
                let mut items = Vec::new();
                for (i, n) in text_columns.iter().enumerate() {
                    let q = quote_identifier(n);
                    items.push(format!(
                        "CASE WHEN {} THEN NULL ELSE {q} END AS __ag_t{i}",
                        token_match(&q, &pattern, tokens)
                    ));
                    if let Some(entry) = current.iter_mut().find(|(c, _)| c == n) {
                        entry.1 = format!("__ag_t{i}");
                    }
                }
                // Read again by the statistics below: computed where read, not copied.
                from = c.cte_with(format!("SELECT *, {} FROM {from}", items.join(", ")), Hint::Inline, "");
                touched.extend(text_columns);
            }
            let value = |column: &str| {
                current.iter().find(|(c, _)| c == column).map(|(_, v)| v.clone()).unwrap_or_default()
            };
            // 2. Rows with a null in a Drop column go.
            let drops: Vec<String> = columns
                .iter()
                .filter(|(_, s)| *s == NullStrategy::Drop)
                .map(|(n, _)| format!("{} IS NULL", value(n)))
                .collect();
            for (n, _) in columns {
                c.type_of(n)?;
            }
            let remove = (!drops.is_empty()).then(|| drops.join(" OR "));
            // The rows left for the statistics (the input is all live rows: a barrier).
            let left = match &remove {
                Some(r) => format!("NOT ({r})"),
                None => "true".to_string(),
            };
            // Fills along the rows: the removed rows apart.
            let partition = match &remove {
                Some(r) => format!("PARTITION BY {r} "),
                None => String::new(),
            };
            // 3. The other columns are filled from the rows left. The statistics are one
            // stored row, so that a segment computed again where it is read does not compute
            // them again.
            let rows_left = format!("{from} WHERE {left}");
            // Per statistic `__ag_s{j}`: its value over the raw `__ag_r{j}` its source gives.
            let mut statistics: Vec<String> = Vec::new();
            let mut aggregates: Vec<String> = Vec::new();
            let mut ranked: Vec<(String, Vec<String>)> = Vec::new();
            let mut ranked_names: Vec<String> = Vec::new();
            // Integer medians and modes, by type (one grouping per type): `(j, value)`.
            let mut integer_medians: Vec<(String, Vec<(usize, String)>)> = Vec::new();
            let mut modes_by_type: Vec<(String, Vec<(usize, String)>)> = Vec::new();
            let by_type = |groups: &mut Vec<(String, Vec<(usize, String)>)>,
                           ty: &str,
                           j: usize,
                           v: String| {
                match groups.iter_mut().find(|(t, _)| t == ty) {
                    Some((_, items)) => items.push((j, v)),
                    None => groups.push((ty.to_string(), vec![(j, v)])),
                }
            };
            let mut fills: Vec<(String, Result<String, usize>)> = Vec::new();
            for (column, strategy) in columns {
                let ty = c.type_of(column)?;
                let v = value(column);
                // The statistics' values: NaN and ±Infinity are left out (as the outlier
                // remover's are), so that a mean, median or mode is a finite number. (A
                // forward or back fill copies its neighbour as it is.)
                let sv = finite(&v, &ty);
                let j = statistics.len();
                let raw = format!("__ag_r{j}");
                let fill = match strategy {
                    NullStrategy::Drop => continue,
                    NullStrategy::Mean => {
                        ensure!(is_numeric(&ty), "the mean of {column} ({ty}) is not defined");
                        if is_integer(&ty) && !ty.ends_with("HUGEINT") {
                            // Exactly, from the HUGEINT sum, rounded half away from zero as the
                            // median is: `avg` is a DOUBLE, which rounds integers beyond 2^53.
                            let (s, n) = (format!("sum(CAST({sv} AS HUGEINT))"), format!("count({sv})"));
                            aggregates.push(format!(
                                "CASE WHEN {n} > 0 THEN CASE WHEN {s} >= 0 THEN (2 * {s} + {n}) // (2 * {n}) \
                                 ELSE -((2 * -{s} + {n}) // (2 * {n})) END END AS {raw}"
                            ));
                        } else {
                            aggregates.push(format!("avg({sv}) AS {raw}"));
                        }
                        statistics.push(format!("CAST({raw} AS {})", sql_type(&ty)?));
                        Err(j)
                    }
                    NullStrategy::Median => {
                        if is_integer(&ty) && !ty.ends_with("HUGEINT") {
                            by_type(&mut integer_medians, &ty, j, sv.clone());
                            statistics.push(format!("CAST({raw} AS {})", sql_type(&ty)?));
                        } else if is_numeric(&ty) {
                            ranked.push((sv.clone(), vec!["0.5".to_string()]));
                            ranked_names.push(raw.clone());
                            statistics.push(format!("CAST({raw}[1] AS {})", sql_type(&ty)?));
                        } else {
                            aggregates.push(format!("quantile_disc({sv}, 0.5) AS {raw}"));
                            statistics.push(raw);
                        }
                        Err(j)
                    }
                    NullStrategy::Mode => {
                        by_type(&mut modes_by_type, &ty, j, sv.clone());
                        statistics.push(raw);
                        Err(j)
                    }
                    NullStrategy::ForwardFill => Ok(format!(
                        "last_value({v} IGNORE NULLS) OVER ({partition}ORDER BY {ROW} \
                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
                    )),
                    NullStrategy::BackFill => Ok(format!(
                        "first_value({v} IGNORE NULLS) OVER ({partition}ORDER BY {ROW} \
                         ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)"
                    )),
                    NullStrategy::Constant(value) => {
                        let p = c.text(value);
                        Ok(if is_text(&ty) { p } else { format!("CAST({p} AS {})", sql_type(&ty)?) })
                    }
                };
                fills.push((column.clone(), fill));
                if !touched.contains(column) {
                    touched.push(column.clone());
                }
            }
            // The statistics are one row from one aggregation and a grouping per kind and
            // type (not a subquery, a join, per column: a wide file has hundreds), read by
            // every row through one cross join.
            if !statistics.is_empty() {
                let mut sources = Vec::new();
                if !aggregates.is_empty() {
                    sources.push(format!("(SELECT {} FROM {rows_left})", aggregates.join(", ")));
                }
                if !ranked.is_empty() {
                    sources.push(ranked_quantiles(&ranked, &rows_left, &ranked_names));
                }
                let raw_names = |items: &[(usize, String)]| -> (Vec<String>, Vec<String>) {
                    items.iter().map(|(j, v)| (v.clone(), format!("__ag_r{j}"))).unzip()
                };
                for (_, items) in &integer_medians {
                    let (values, names) = raw_names(items);
                    sources.push(ranked_integer_medians(&values, &rows_left, &names));
                }
                for (_, items) in &modes_by_type {
                    let (values, names) = raw_names(items);
                    sources.push(modes(&values, &rows_left, &names));
                }
                let items = statistics
                    .iter()
                    .enumerate()
                    .map(|(j, e)| format!("{e} AS __ag_s{j}"))
                    .collect::<Vec<_>>();
                let table = c.cte(format!("SELECT {} FROM {}", items.join(", "), aliased(&sources)));
                if let Some(cte) = c.ctes.last_mut() {
                    cte.table = true;
                }
                from = c.cte(format!("SELECT p.*, s.* FROM {from} p CROSS JOIN {table} s"));
            }
            let fills: Vec<(String, String)> = fills
                .into_iter()
                .map(|(column, fill)| {
                    let fill = match fill {
                        Ok(expr) => expr,
                        Err(j) => format!("__ag_s{j}"),
                    };
                    let v = value(&column);
                    (column, format!("coalesce({v}, {fill})"))
                })
                .collect();
            // Each touched column's final value, compared with its value before the step.
            let values: Vec<(String, String)> = c
                .columns
                .iter()
                .map(|(n, _)| n.clone())
                .filter(|n| touched.contains(n))
                .map(|n| {
                    let v = fills
                        .iter()
                        .find(|(c, _)| *c == n)
                        .map(|(_, f)| f.clone())
                        .unwrap_or_else(|| value(&n));
                    (n, v)
                })
                .collect();
            if values.is_empty() && remove.is_none() {
                return Ok(());
            }
            // A kept row's null that nothing could fill (a forward fill before the first
            // value, a mean of no values) stays null and is counted as failed.
            let kept = match &remove {
                Some(r) => format!(" AND NOT coalesce({r}, false)"),
                None => String::new(),
            };
            let fails = values
                .iter()
                .enumerate()
                .filter(|(_, (n, _))| fills.iter().any(|(c, _)| c == n))
                .map(|(i, (n, _))| (n.clone(), format!("__ag_n{i} IS NULL{kept}")))
                .collect();
            c.map(&from, Map { values, fails, remove, ..Map::default() });
        }
        Step::Outliers { .. } => compile_outliers(c, std::slice::from_ref(step))?,
        Step::ConvertUnits { .. } => compile_conversions(c, std::slice::from_ref(step))?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NULL in expected rows.
    const N: &str = "∅";

    /// The segment is stored as a table (else it stays a query).
    fn is_stored(compiled: &Compiled, segment: &Segment) -> bool {
        compiled.ctes.iter().any(|c| c.name == segment.table && c.table)
    }

    fn fixture(sql: &str) -> (tempfile::TempDir, PathBuf, Connection, Vec<ColumnInfo>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.parquet");
        let conn = Connection::open_in_memory().unwrap();
        let columns = super::super::parquet_fixture(&conn, &path, sql);
        (dir, path, conn, columns)
    }

    fn describe(conn: &Connection, path: &Path) -> Vec<ColumnInfo> {
        let mut statement = conn
            .prepare(&format!(
                "DESCRIBE SELECT * FROM read_parquet({})",
                quote_literal(&path.display().to_string())
            ))
            .unwrap();
        statement
            .query_map([], |r| Ok(ColumnInfo { name: r.get(0)?, data_type: r.get(1)? }))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// Every row of a Parquet file, values as text, in file order.
    fn rows(conn: &Connection, path: &Path) -> Vec<Vec<Option<String>>> {
        let columns = describe(conn, path);
        let items = columns
            .iter()
            .map(|c| format!("CAST({} AS VARCHAR)", quote_identifier(&c.name)))
            .collect::<Vec<_>>()
            .join(", ");
        let mut statement = conn
            .prepare(&format!(
                "SELECT CAST(to_json([{items}]::VARCHAR[]) AS VARCHAR) FROM read_parquet({})",
                quote_literal(&path.display().to_string())
            ))
            .unwrap();
        statement
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|r| serde_json::from_str(&r.unwrap()).unwrap())
            .collect()
    }

    fn r(values: &[&str]) -> Vec<Option<String>> {
        values.iter().map(|v| if *v == N { None } else { Some(v.to_string()) }).collect()
    }

    struct Cleaned {
        outcome: CleanseOutcome,
        data: Vec<Vec<Option<String>>>,
        quarantine: Vec<Vec<Option<String>>>,
        out: PathBuf,
    }

    /// Runs `steps`, checks the accounting adds up and matches the files written.
    fn clean(conn: &Connection, path: &Path, columns: &[ColumnInfo], steps: Vec<Step>) -> Cleaned {
        let out = path.parent().unwrap().join("out");
        let mut reported: Vec<f64> = Vec::new();
        let outcome =
            run(conn, path, columns, &CleansePlan { steps }, &out, &mut |done, _| reported.push(done))
                .unwrap();
        // Progress moves forward only, within 0..=1, to the outputs' writing.
        assert!(
            reported.windows(2).all(|w| w[0] <= w[1]) && reported.iter().all(|d| (0.0..=1.0).contains(d))
        );
        assert_eq!(reported.last(), Some(&0.95), "{reported:?}");
        let removed: u64 = outcome.rows_removed_by_step.iter().map(|(_, n)| n).sum();
        assert_eq!(outcome.rows_in, outcome.rows_out + removed + outcome.rows_quarantined, "{outcome:?}");
        let data = rows(conn, &out.join("data.parquet"));
        let quarantine = rows(conn, &out.join("quarantine.parquet"));
        assert_eq!(data.len() as u64, outcome.rows_out);
        assert_eq!(quarantine.len() as u64, outcome.rows_quarantined);
        // Both are kept as dataset versions: written like a canonical copy.
        for file in ["data.parquet", "quarantine.parquet"] {
            let path = quote_literal(&out.join(file).display().to_string());
            let other: i64 = conn
                .query_row(
                    &format!("SELECT count(*) FROM parquet_metadata({path}) WHERE compression <> 'ZSTD'"),
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(other, 0, "{file} has column chunks not compressed with zstd");
        }
        let leftovers: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        // Nothing is left on the connection: every step's table and the source's view are gone.
        let left: i64 = conn
            .query_row(
                "SELECT (SELECT count(*) FROM duckdb_tables() WHERE temporary) \
                 + (SELECT count(*) FROM duckdb_views() WHERE temporary AND NOT internal)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0);
        Cleaned { outcome, data, quarantine, out }
    }

    /// A file's rows, every value as text.
    type Rows = Vec<Vec<Option<String>>>;

    /// Each of `steps` alone, applied to the output of the one before, from `path`: the last
    /// output's rows, and every step's changes `(column, changed, failed)` in order.
    fn one_by_one(conn: &Connection, path: &Path, steps: Vec<Step>) -> (Rows, Vec<(String, u64, u64)>) {
        let mut input = path.to_path_buf();
        let mut changes = Vec::new();
        for (k, step) in steps.into_iter().enumerate() {
            let dir = path.parent().unwrap().join(format!("alone{k}"));
            std::fs::create_dir_all(&dir).unwrap();
            let source = dir.join("in.parquet");
            std::fs::copy(&input, &source).unwrap();
            let alone = clean(conn, &source, &describe(conn, &source), vec![step]);
            changes.extend(alone.outcome.changes.iter().map(|c| (c.column.clone(), c.changed, c.failed)));
            input = alone.out.join("data.parquet");
        }
        (rows(conn, &input), changes)
    }

    fn change(outcome: &CleanseOutcome, step: &str, column: &str) -> (u64, u64) {
        outcome
            .changes
            .iter()
            .find(|c| c.step == step && c.column == column)
            .map(|c| (c.changed, c.failed))
            .unwrap_or((0, 0))
    }

    fn removed(outcome: &CleanseOutcome) -> Vec<(&str, u64)> {
        outcome.rows_removed_by_step.iter().map(|(s, n)| (s.as_str(), *n)).collect()
    }

    #[test]
    fn renumbering_keeps_quoted_text_and_the_values_in_order() {
        let params: Vec<Duck> = (1..=12).map(Duck::Int).collect();
        let (sql, values) =
            renumber(r#"SELECT "a$1", 'b$2''$3', $12 + $3, $12, "x""$4" FROM t WHERE y = $10"#, &params);
        assert_eq!(sql, r#"SELECT "a$1", 'b$2''$3', $1 + $2, $1, "x""$4" FROM t WHERE y = $3"#);
        assert_eq!(values, vec![Duck::Int(12), Duck::Int(3), Duck::Int(10)]);
    }

    #[test]
    fn evidence_counts_what_each_text_column_reads_as() {
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES \
             (1, ' 12 ', '1.5', 'yes', '2024-01-05', '2024-01-05 10:00', '00123', 'N/A'), \
             (2, '7', 'x', 'No', '05/02/2024', '2024-01-06 11:30:00', '00456', 'a'), \
             (3, 'N/A', '3', 'true', 'Mar 10 2024', 'nope', '789', 'a'), \
             (4, '  ', NULL, 'f', 'someday', NULL, '1000', 'b')) \
             t(i, ints, nums, bools, dates, stamps, zips, cats) ORDER BY i",
        );
        let tokens = vec!["N/A".to_string()];
        let got = sample_evidence(&conn, &path, &columns, &tokens, 1000).unwrap();
        let e = |name: &str| got.iter().find(|e| e.name == name).unwrap().clone();
        // ints: ' 12 ', '7' (N/A is a token, '  ' blank).
        let ints = e("ints");
        assert_eq!((ints.values, ints.integers, ints.numbers), (2, 2, 2));
        let nums = e("nums");
        assert_eq!((nums.values, nums.integers, nums.numbers), (3, 1, 2));
        assert_eq!(e("bools").booleans, 4);
        let dates = e("dates");
        assert_eq!((dates.values, dates.dates, dates.times), (4, 3, 0));
        let stamps = e("stamps");
        assert_eq!((stamps.values, stamps.timestamps, stamps.times), (3, 2, 2));
        // Leading zeros are not whole numbers (postcodes, codes): they are codes.
        let zips = e("zips");
        assert_eq!((zips.values, zips.integers, zips.codes), (4, 2, 2));
        assert_eq!((ints.codes, nums.codes, e("dates").codes), (0, 0, 0));
        let cats = e("cats");
        assert_eq!((cats.values, cats.distinct), (3, 3), "N/A is missing but still a distinct value");
        let id = e("i");
        assert_eq!((id.values, id.distinct, id.integers), (4, 4, 0), "non-text columns: counts only");
    }

    #[test]
    fn whole_numbers_beyond_bigint_are_codes() {
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES ('12345678901234567890', '9223372036854775807'), \
             ('-98765432109876543210', '-9223372036854775808'), ('17.00', '0')) t(refs, edges)",
        );
        let got = sample_evidence(&conn, &path, &columns, &[], 1000).unwrap();
        let e = |name: &str| got.iter().find(|e| e.name == name).unwrap().clone();
        let refs = e("refs");
        assert_eq!((refs.values, refs.integers, refs.numbers, refs.codes), (3, 1, 3, 2));
        let edges = e("edges");
        assert_eq!((edges.values, edges.integers, edges.codes), (3, 3, 0));
    }

    #[test]
    fn constants_and_date_formats_are_judged_by_duckdb() {
        let conn = Connection::open_in_memory().unwrap();
        for (value, ty) in [
            ("12", "BIGINT"),
            ("2.5", "DOUBLE"),
            ("2024-01-05", "DATE"),
            ("anything", "VARCHAR"),
            ("true", "BOOLEAN"),
            ("-7", "INTEGER"),
            ("1e3", "DOUBLE"),
            ("12.50", "DECIMAL(10,2)"),
            ("12.500", "DECIMAL(10,2)"),
            ("1.5e1", "DECIMAL(4,0)"),
            ("2024-01-05 10:00:00", "TIMESTAMP"),
        ] {
            assert_eq!(check_constant(&conn, value, ty).unwrap(), Ok(()), "{value} {ty}");
        }
        for (value, ty, why) in [
            ("abc", "BIGINT", "whole number"),
            ("notadate", "DATE", "date"),
            ("1e400", "DOUBLE", "not a finite number"),
            ("NaN", "DOUBLE", "number written in digits"),
            ("1e30", "DECIMAL(4,1)", "convert"),
            ("1.005", "DECIMAL(6,2)", "more decimal places than the column's 2"),
            ("1.5e-2", "DECIMAL(6,2)", "rounded"),
            // What DuckDB's casts would take and change: rounded, hexadecimal, underscored,
            // a time dropped.
            ("2.5", "BIGINT", "whole number"),
            ("0x1F", "INTEGER", "whole number"),
            ("1_000", "BIGINT", "whole number"),
            ("1_0.5", "DOUBLE", "number written in digits"),
            ("2024-01-05 10:00", "DATE", "YYYY-MM-DD"),
            ("2024-01-05 10:00 PM", "TIMESTAMP", "YYYY-MM-DD HH:MM:SS"),
        ] {
            let refused = check_constant(&conn, value, ty).unwrap().unwrap_err();
            assert!(refused.contains(why), "{value} {ty}: {refused}");
        }
        assert_eq!(check_date_format(&conn, "%d/%m/%Y").unwrap(), Ok(()));
        assert_eq!(check_date_format(&conn, "%Y-%m-%d %-I:%M %p").unwrap(), Ok(()));
        assert_eq!(check_date_format(&conn, "%Y-%m-%d %%I").unwrap(), Ok(()));
        let refused = check_date_format(&conn, "%d/%m/%Y %I:%M").unwrap().unwrap_err();
        assert!(refused.contains("needs %p"), "{refused}");
        for bad in ["%Q", ""] {
            let refused = check_date_format(&conn, bad).unwrap().unwrap_err();
            assert!(refused.contains("format"), "{bad}: {refused}");
        }
    }

    #[test]
    fn evidence_reads_dates_as_the_conversion_does() {
        // DuckDB's casts would read these year first (the year 5); the conversion does not,
        // so neither does the evidence: one timestamp, and no date (a time of day other than
        // midnight does not convert to one).
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES ('05/01/24 10:00'), ('24/01/05 10:30'), ('2024-01-05 10:30')) t(s)",
        );
        let got = sample_evidence(&conn, &path, &columns, &[], 1000).unwrap();
        assert_eq!((got[0].values, got[0].timestamps, got[0].dates), (3, 1, 0));
    }

    #[test]
    fn evidence_of_a_file_without_text_columns_binds_no_tokens() {
        let (_d, path, conn, columns) = fixture("SELECT * FROM (VALUES (1, 2.5), (2, NULL)) t(a, b)");
        let tokens: Vec<String> = DEFAULT_NULL_TOKENS.iter().map(|t| t.to_string()).collect();
        let got = sample_evidence(&conn, &path, &columns, &tokens, 1000).unwrap();
        let counts: Vec<(&str, u64, u64)> =
            got.iter().map(|e| (e.name.as_str(), e.values, e.distinct)).collect();
        assert_eq!(counts, [("a", 2, 2), ("b", 1, 1)]);
    }

    #[test]
    fn evidence_of_a_wide_file_fits_a_small_stack() {
        // One query of 750 distinct counts made DuckDB's optimizer recurse 750 joins deep,
        // past a 2 MiB stack (an abort of the whole process); in chunks it stays shallow.
        let columns = (0..750).map(|i| format!("{i} AS c{i}")).collect::<Vec<_>>().join(", ");
        let columns = format!("{columns}, 'x' AS t");
        let (_d, path, conn, columns) = fixture(&format!("SELECT {columns}"));
        let got = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || sample_evidence(&conn, &path, &columns, &["-".to_string()], 1000).unwrap())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(got.len(), 751);
        assert!(got.iter().all(|e| (e.values, e.distinct) == (1, 1)));
        assert_eq!((got[750].name.as_str(), got[750].data_type.as_str()), ("t", "VARCHAR"));
    }

    #[test]
    fn column_nulls_reads_types_and_nulls_in_one_pass() {
        let (_d, path, conn, _) = fixture(
            "SELECT * FROM (VALUES (1, NULL, 'a'), (2, 2.5, NULL), (NULL, NULL, 'c')) t(\"a b\", x, y)",
        );
        let (rows, columns) = column_nulls(&conn, &path).unwrap();
        assert_eq!(rows, 3);
        let got: Vec<(&str, &str, u64)> =
            columns.iter().map(|(c, n)| (c.name.as_str(), c.data_type.as_str(), *n)).collect();
        assert_eq!(got, [("a b", "INTEGER", 1), ("x", "DECIMAL(2,1)", 2), ("y", "VARCHAR", 1)]);
    }

    #[test]
    fn keys_ignoring_case_match_emails_and_never_blank_ones() {
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES (1, 'Ann@X.com '), (2, 'ann@x.com'), (3, NULL), (4, NULL), (5, '  '), \
             (6, ' '), (7, 'bob@x.com'), (8, 'BOB@X.COM')) t(i, email) ORDER BY i",
        );
        let step = |keep| Step::Deduplicate {
            mode: DedupMode::KeysIgnoreCase(vec!["email".into()]),
            keep,
            merge: false,
        };
        let first = clean(&conn, &path, &columns, vec![step(Keep::First)]);
        let ids: Vec<_> = first.data.iter().map(|r| r[0].clone().unwrap()).collect();
        assert_eq!(ids, ["1", "3", "4", "5", "6", "7"]);
        let last = clean(&conn, &path, &columns, vec![step(Keep::Last)]);
        let ids: Vec<_> = last.data.iter().map(|r| r[0].clone().unwrap()).collect();
        assert_eq!(ids, ["2", "3", "4", "5", "6", "8"]);
        assert_eq!(removed(&last.outcome), [("deduplicate", 2)]);
    }

    #[test]
    fn units_convert_numbers_into_doubles() {
        let (_d, path, conn, columns) =
            fixture("SELECT * FROM (VALUES (1, 100), (2, NULL), (3, -40)) t(i, temp) ORDER BY i");
        let step = Step::ConvertUnits { column: "temp".into(), conversion: Conversion::linear(1.8, 32.0) };
        let promised = output_columns(&columns, &CleansePlan { steps: vec![step.clone()] }).unwrap();
        assert_eq!(promised[1].data_type, "DOUBLE");
        let got = clean(&conn, &path, &columns, vec![step]);
        assert_eq!(got.data, [r(&["1", "212.0"]), r(&["2", N]), r(&["3", "-40.0"])]);
        assert_eq!(change(&got.outcome, "convert_units", "temp"), (1, 0), "-40 °C is -40 °F");
        let text = Step::ConvertUnits { column: "i".into(), conversion: Conversion::linear(f64::NAN, 0.0) };
        assert!(output_columns(&columns, &CleansePlan { steps: vec![text] }).is_err());
        // A product beyond the doubles, of a result within them: 1e308 lb is 4.5e307 kg.
        let (_d, path, conn, columns) =
            fixture("SELECT * FROM (VALUES (1, 1e308), (2, 10.0)) t(i, lb) ORDER BY i");
        let kg = Conversion { subtract: 0.0, multiply: 45_359_237.0, divide: 100_000_000.0, add: 0.0 };
        let got =
            clean(&conn, &path, &columns, vec![Step::ConvertUnits { column: "lb".into(), conversion: kg }]);
        assert_eq!(got.data, [r(&["1", "4.5359237e+307"]), r(&["2", "4.5359237"])]);
        // A result beyond the doubles fails and keeps its value: 1e308 in is 2.54e308 cm.
        let (_d, path, conn, columns) =
            fixture("SELECT * FROM (VALUES (1, 1e308), (2, 10.0)) t(i, inches) ORDER BY i");
        let cm = Conversion { subtract: 0.0, multiply: 254.0, divide: 100.0, add: 0.0 };
        let got = clean(
            &conn,
            &path,
            &columns,
            vec![Step::ConvertUnits { column: "inches".into(), conversion: cm }],
        );
        assert_eq!(got.data, [r(&["1", "1e+308"]), r(&["2", "25.4"])]);
        assert_eq!(change(&got.outcome, "convert_units", "inches"), (1, 1));
    }

    #[test]
    fn quarantine_sends_rows_away_with_their_reasons() {
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES (1, 'a@x.com', 30, '12345'), (2, NULL, 40, '12345'), \
             (3, '   ', 200, '1234'), (4, 'b@x.com', -1, '54321'), (5, 'c@x.com', NULL, 'ABCDE'), \
             (6, 'd@x.com', 18, NULL)) t(i, email, age, zip) ORDER BY i",
        );
        let step = Step::Quarantine {
            required: vec!["email".into()],
            ranges: vec![("age".into(), Some(0.0), Some(120.0))],
            patterns: vec![("zip".into(), r"\d{5}".into())],
        };
        let got = clean(&conn, &path, &columns, vec![step]);
        assert_eq!(got.data, vec![r(&["1", "a@x.com", "30", "12345"]), r(&["6", "d@x.com", "18", N])]);
        assert_eq!(
            got.quarantine,
            vec![
                r(&["2", N, "40", "12345", "missing email", "2"]),
                r(&[
                    "3",
                    "   ",
                    "200",
                    "1234",
                    "missing email; age out of range; zip does not match the format",
                    "3"
                ]),
                r(&["4", "b@x.com", "-1", "54321", "age out of range", "4"]),
                r(&["5", "c@x.com", N, "ABCDE", "zip does not match the format", "5"]),
            ]
        );
        let names: Vec<String> =
            describe(&conn, &got.out.join("quarantine.parquet")).into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["i", "email", "age", "zip", "_reason", "_row"]);
        assert_eq!(got.outcome.rows_in, 6);
        assert_eq!(got.outcome.rows_quarantined, 4);
        assert_eq!(removed(&got.outcome), [("quarantine", 0)]);
        assert!(got.outcome.changes.is_empty());
    }

    #[test]
    fn a_range_on_text_quarantines_what_is_not_a_number() {
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES (1, '30'), (2, ' 45.5 '), (3, 'abc'), (4, '200'), (5, '  '), (6, NULL), \
             (7, 'NaN'), (8, '1_0'), (9, '-inf')) t(i, age) ORDER BY i",
        );
        let step = Step::Quarantine {
            required: vec![],
            ranges: vec![("age".into(), Some(0.0), Some(120.0))],
            patterns: vec![],
        };
        let got = clean(&conn, &path, &columns, vec![step]);
        assert_eq!(
            column(&got.data, 0),
            r(&["1", "2", "5", "6"]),
            "numbers in range, a blank and a null stay"
        );
        let reasons: Vec<Option<String>> = got.quarantine.iter().map(|row| row[2].clone()).collect();
        let nan = "age is not a number";
        assert_eq!(reasons, r(&[nan, "age out of range", nan, nan, nan]));

        // A float column's NaN is not a number either, not out of range; -inf is.
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES (1, 30.0), (2, 'nan'::DOUBLE), (3, 200.0), (4, '-inf'::DOUBLE)) t(i, age) ORDER BY i",
        );
        let step = Step::Quarantine {
            required: vec![],
            ranges: vec![("age".into(), None, Some(120.0))],
            patterns: vec![],
        };
        let got = clean(&conn, &path, &columns, vec![step.clone()]);
        let reasons: Vec<Option<String>> = got.quarantine.iter().map(|row| row[2].clone()).collect();
        assert_eq!(reasons, r(&[nan, "age out of range"]));
        let step = Step::Quarantine {
            required: vec![],
            ranges: vec![("age".into(), Some(0.0), None)],
            patterns: vec![],
        };
        let got = clean(&conn, &path, &columns, vec![step]);
        let reasons: Vec<Option<String>> = got.quarantine.iter().map(|row| row[2].clone()).collect();
        assert_eq!(reasons, r(&[nan, "age out of range"]));
    }

    fn messy_types() -> (tempfile::TempDir, PathBuf, Connection, Vec<ColumnInfo>) {
        fixture(
            "SELECT * FROM (VALUES (1, ' 42 ', 'Yes', '2024-01-05'), (2, '3.0', 'n', '05/01/2024'), \
             (3, '3.5', 'maybe', 'Jan 5 2024'), (4, '', 'TRUE', 'soon'), (5, 'abc', '0', NULL)) t(i, n, flag, d) \
             ORDER BY i",
        )
    }

    fn fix_types(on_failure: OnFailure) -> Step {
        Step::FixTypes {
            columns: vec![
                ("n".into(), TargetType::Integer),
                ("flag".into(), TargetType::Boolean),
                ("d".into(), TargetType::Date),
            ],
            on_failure,
            month_first: vec![],
        }
    }

    #[test]
    fn fix_types_converts_and_nulls_what_does_not_convert() {
        let (_d, path, conn, columns) = messy_types();
        let got = clean(&conn, &path, &columns, vec![fix_types(OnFailure::Null)]);
        assert_eq!(
            got.data,
            vec![
                r(&["1", "42", "true", "2024-01-05"]),
                r(&["2", "3", "false", "2024-01-05"]),
                r(&["3", N, N, "2024-01-05"]),
                r(&["4", N, "true", N]),
                r(&["5", N, "false", N]),
            ]
        );
        let types: Vec<String> =
            describe(&conn, &got.out.join("data.parquet")).into_iter().map(|c| c.data_type).collect();
        assert_eq!(types, ["INTEGER", "BIGINT", "BOOLEAN", "DATE"]);
        // A blank value becomes null without failing; text that did not change is unchanged.
        assert_eq!(change(&got.outcome, "fix_types", "n"), (5, 2));
        assert_eq!(change(&got.outcome, "fix_types", "flag"), (5, 1));
        assert_eq!(change(&got.outcome, "fix_types", "d"), (3, 1));
        assert_eq!((got.outcome.rows_out, got.outcome.rows_quarantined), (5, 0));
    }

    #[test]
    fn whole_numbers_with_leading_zeros_do_not_lose_them() {
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES (1, '007'), (2, '0'), (3, '10'), (4, '+5'), (5, '-012'), (6, '0.0'), (7, '00')) \
             t(i, code) ORDER BY i",
        );
        let step = Step::FixTypes {
            columns: vec![("code".into(), TargetType::Integer)],
            on_failure: OnFailure::Null,
            month_first: vec![],
        };
        let got = clean(&conn, &path, &columns, vec![step]);
        assert_eq!(column(&got.data, 1), r(&[N, "0", "10", "5", N, "0", N]));
        assert_eq!(change(&got.outcome, "fix_types", "code"), (5, 3), "+5 and 0.0 change, three fail");
    }

    #[test]
    fn two_digit_years_are_this_century_or_the_last() {
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES (1, '05/01/24'), (2, '1/5/99'), (3, '05/01/2024'), (4, '13/05/24'), \
             (5, '5.1.24'), (6, '2024-01-05')) t(i, d) ORDER BY i",
        );
        let step = Step::FixTypes {
            columns: vec![("d".into(), TargetType::Date)],
            on_failure: OnFailure::Null,
            month_first: vec![],
        };
        let got = clean(&conn, &path, &columns, vec![step]);
        assert_eq!(
            column(&got.data, 1),
            r(&["2024-01-05", "1999-05-01", "2024-01-05", "2024-05-13", "2024-01-05", "2024-01-05"])
        );
    }

    #[test]
    fn a_time_of_day_fails_a_conversion_to_date_instead_of_being_dropped() {
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES (1, '2024-01-05 23:59:59', TIMESTAMP '2024-01-05 23:59:59'), \
             (2, '2024-01-06 00:00:00', TIMESTAMP '2024-01-06 00:00:00'), (3, '2024-01-07', NULL), \
             (4, '08/01/2024', NULL)) t(i, d, ts) ORDER BY i",
        );
        let step = |on_failure| Step::FixTypes {
            columns: vec![("d".into(), TargetType::Date), ("ts".into(), TargetType::Date)],
            on_failure,
            month_first: vec![],
        };
        let got = clean(&conn, &path, &columns, vec![step(OnFailure::Null)]);
        assert_eq!(column(&got.data, 1), r(&[N, "2024-01-06", "2024-01-07", "2024-01-08"]));
        assert_eq!(column(&got.data, 2), r(&[N, "2024-01-06", N, N]));
        assert_eq!(change(&got.outcome, "fix_types", "d"), (3, 1), "the time of day is a failure");
        assert_eq!(
            change(&got.outcome, "fix_types", "ts"),
            (2, 1),
            "a timestamp becomes a date (changed), one fails"
        );
        let got = clean(&conn, &path, &columns, vec![step(OnFailure::Quarantine)]);
        assert_eq!((got.outcome.rows_out, got.outcome.rows_quarantined), (3, 1));
        assert_eq!(got.quarantine[0][3].as_deref(), Some("d is not a date; ts is not a date"));
    }

    #[test]
    fn nanoseconds_and_numbers_beyond_double_fail_and_impossible_conversions_are_refused() {
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES (1, TIMESTAMP_NS '2024-01-05 00:00:00.000000001', 7, DATE '2024-01-05', '1e400'), \
             (2, TIMESTAMP_NS '2024-01-06 00:00:00', 8, DATE '2024-01-06', '-1e400'), (3, NULL, 9, NULL, '2.5')) \
             t(i, ns, n, d, big) ORDER BY i",
        );
        let step = |target| Step::FixTypes {
            columns: vec![("ns".into(), target), ("big".into(), TargetType::Float)],
            on_failure: OnFailure::Null,
            month_first: vec![],
        };
        let got = clean(&conn, &path, &columns, vec![step(TargetType::Date)]);
        assert_eq!(column(&got.data, 1), r(&[N, "2024-01-06", N]), "a nanosecond is not dropped");
        assert_eq!(change(&got.outcome, "fix_types", "ns").1, 1);
        assert_eq!(column(&got.data, 4), r(&[N, N, "2.5"]), "1e400 is not infinity");
        assert_eq!(change(&got.outcome, "fix_types", "big").1, 2);
        let got = clean(&conn, &path, &columns, vec![step(TargetType::Timestamp)]);
        assert_eq!(column(&got.data, 1), r(&[N, "2024-01-06 00:00:00", N]));
        // Numbers and dates that cannot become the type are refused, not emptied.
        for (column, target) in [
            ("n", TargetType::Date),
            ("n", TargetType::Timestamp),
            ("d", TargetType::Float),
            ("d", TargetType::Integer),
        ] {
            let plan = CleansePlan {
                steps: vec![Step::FixTypes {
                    columns: vec![(column.into(), target)],
                    on_failure: OnFailure::Null,
                    month_first: vec![],
                }],
            };
            let err = output_columns(&columns, &plan).expect_err(column);
            assert!(format!("{err:#}").contains("cannot become"), "{column}: {err:#}");
        }
    }

    #[test]
    fn timestamps_are_read_whole_and_nothing_after_the_time_is_dropped() {
        // DuckDB's cast read all of these as 10:00 (or 00:30): AM/PM, offsets, zone names and
        // junk after the time were dropped.
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES (1, '2024-01-05 10:00:00 PM'), (2, '2024-01-05 12:30:00 AM'), \
             (3, '2024-01-05 10:00:00 garbage'), (4, '2024-01-05 10:00:00-03:00'), (5, '2024-01-05T10:00:00Z'), \
             (6, '2024-01-05 10:00:00 EST'), (7, '2024-01-05 10:00'), (8, '2024-01-05'), (9, '294300-01-05 10:00:00')) \
             t(i, seen) ORDER BY i",
        );
        let convert = |target| {
            let step = Step::FixTypes {
                columns: vec![("seen".into(), target)],
                on_failure: OnFailure::Null,
                month_first: vec![],
            };
            let got = clean(&conn, &path, &columns, vec![step]);
            (column(&got.data, 1), change(&got.outcome, "fix_types", "seen").1)
        };
        assert_eq!(
            convert(TargetType::Timestamp),
            (
                r(&[
                    "2024-01-05 22:00:00",
                    "2024-01-05 00:30:00",
                    N,
                    "2024-01-05 13:00:00",
                    "2024-01-05 10:00:00",
                    N,
                    "2024-01-05 10:00:00",
                    "2024-01-05 00:00:00",
                    N
                ]),
                3
            )
        );
        // To a date: only midnight and dates; a date beyond TIMESTAMP's range with a time fails too.
        assert_eq!(convert(TargetType::Date), (r(&[N, N, N, N, N, N, N, "2024-01-05", N]), 8));
    }

    #[test]
    fn a_timestamp_with_time_zone_becomes_a_date_in_utc() {
        // date_trunc of a TIMESTAMP WITH TIME ZONE needs ICU, which is not compiled in: it was
        // an internal error.
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES (1, '2024-01-05T00:00:00Z'::TIMESTAMPTZ), (2, '2024-01-06T13:30:00Z'::TIMESTAMPTZ)) \
             t(i, created) ORDER BY i",
        );
        let step = Step::FixTypes {
            columns: vec![("created".into(), TargetType::Date)],
            on_failure: OnFailure::Quarantine,
            month_first: vec![],
        };
        let got = clean(&conn, &path, &columns, vec![step]);
        assert_eq!((column(&got.data, 1), got.outcome.rows_quarantined), (r(&["2024-01-05"]), 1));
    }

    #[test]
    fn text_with_underscores_or_infinities_is_not_a_float() {
        // DuckDB's cast reads `1_11` as 111 and `inf` as infinity.
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES (1, '1_11'), (2, '2.5'), (3, '-.5e3'), (4, 'inf'), (5, 'NaN'), (6, '1,000')) \
             t(i, v) ORDER BY i",
        );
        let step = Step::FixTypes {
            columns: vec![("v".into(), TargetType::Float)],
            on_failure: OnFailure::Null,
            month_first: vec![],
        };
        let got = clean(&conn, &path, &columns, vec![step]);
        assert_eq!(column(&got.data, 1), r(&[N, "2.5", "-500.0", N, N, N]));
        let sampled = sample_evidence(&conn, &path, &columns, &[], 1000).unwrap();
        let v = sampled.iter().find(|e| e.name == "v").unwrap();
        assert_eq!((v.values, v.numbers), (6, 2), "{v:?}");
    }

    #[test]
    fn a_column_of_month_first_dates_is_read_month_first() {
        // US dates: 03/04/2024 is March 4 here, as 03/25/2024 shows; read day first by default
        // it was April 3.
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES (1, '03/04/2024'), (2, '03/25/2024'), (3, '12/31/23'), (4, '01/02/2024')) \
             t(i, d) ORDER BY i",
        );
        let sampled = sample_evidence(&conn, &path, &columns, &[], 1000).unwrap();
        let d = sampled.iter().find(|e| e.name == "d").unwrap();
        assert_eq!((d.month_first, d.day_first), (2, 0), "{d:?}");
        let convert = |month_first: Vec<String>| {
            let step = Step::FixTypes {
                columns: vec![("d".into(), TargetType::Date)],
                on_failure: OnFailure::Null,
                month_first,
            };
            column(&clean(&conn, &path, &columns, vec![step]).data, 1)
        };
        assert_eq!(convert(vec!["d".into()]), r(&["2024-03-04", "2024-03-25", "2023-12-31", "2024-01-02"]));
        assert_eq!(
            convert(vec![]),
            r(&["2024-04-03", "2024-03-25", "2023-12-31", "2024-02-01"]),
            "day first"
        );
        assert_eq!(
            month_first(
                &["%Y-%m-%d", "%d/%m/%y", "%d/%m/%Y", "%m/%d/%y", "%m/%d/%Y", "%d.%m.%Y"].map(String::from)
            ),
            ["%Y-%m-%d", "%m/%d/%y", "%m/%d/%Y", "%d/%m/%y", "%d/%m/%Y", "%d.%m.%Y"]
        );
    }

    #[test]
    fn evidence_of_many_columns_fits_a_small_memory_limit() {
        // A distinct count per column, a few MiB each whatever the rows: 64 in one statement
        // ran out of 128 MB.
        let select = (0..200).map(|j| format!("'v' || i || '_{j}' AS t{j}")).collect::<Vec<_>>();
        let (_d, path, conn, columns) = fixture(&format!("SELECT {} FROM range(10) t(i)", select.join(", ")));
        conn.execute_batch("SET memory_limit = '128MB'; SET threads = 2").unwrap();
        let evidence = sample_evidence(&conn, &path, &columns, &[], 1000).unwrap();
        assert_eq!(evidence.len(), 200);
        assert!(evidence.iter().all(|e| (e.values, e.distinct) == (10, 10)), "{:?}", evidence[199]);
    }

    #[test]
    fn three_hundred_boolean_conversions_fit_in_512_mb() {
        // A list of words per column (`IN (…)`) was planned as a join each: 200 of them ran out
        // of 512 MB over a table of one row.
        let select = (0..300)
            .map(|i| format!("CASE WHEN i % 2 = 0 THEN ' Yes' ELSE 'n' END AS b{i}"))
            .collect::<Vec<_>>();
        let (_d, path, conn, columns) =
            fixture(&format!("SELECT i, {} FROM range(3) t(i)", select.join(", ")));
        conn.execute_batch("SET memory_limit = '512MB'; SET threads = 2").unwrap();
        let step = Step::FixTypes {
            columns: (0..300).map(|i| (format!("b{i}"), TargetType::Boolean)).collect(),
            on_failure: OnFailure::Null,
            month_first: vec![],
        };
        let got = clean(&conn, &path, &columns, vec![step]);
        assert!(got.data[0][1..].iter().all(|v| v.as_deref() == Some("true")), "{:?}", got.data[0]);
        assert!(got.data[1][1..].iter().all(|v| v.as_deref() == Some("false")), "{:?}", got.data[1]);
        assert_eq!(change(&got.outcome, "fix_types", "b299"), (3, 0));
    }

    #[test]
    fn fix_types_can_quarantine_failures() {
        let (_d, path, conn, columns) = messy_types();
        let got = clean(&conn, &path, &columns, vec![fix_types(OnFailure::Quarantine)]);
        assert_eq!(
            got.data,
            vec![r(&["1", "42", "true", "2024-01-05"]), r(&["2", "3", "false", "2024-01-05"])]
        );
        let reasons: Vec<_> =
            got.quarantine.iter().map(|row| (row[5].clone().unwrap(), row[4].clone().unwrap())).collect();
        assert_eq!(
            reasons,
            [
                ("3".to_string(), "n is not an integer; flag is not a boolean".to_string()),
                ("4".to_string(), "d is not a date".to_string()),
                ("5".to_string(), "n is not an integer".to_string()),
            ]
        );
        // The quarantined rows are kept as they were.
        assert_eq!(got.quarantine[1][..4], r(&["4", "", "TRUE", "soon"])[..]);
        assert_eq!(got.outcome.rows_quarantined, 3);
        assert_eq!(change(&got.outcome, "fix_types", "n"), (2, 2));
    }

    #[test]
    fn standardize_cleans_names_emails_categories_and_dates() {
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES \
             (1, '  john   SMITH ', ' John.Doe@Example.COM ', 'ny', '2024-01-05'), \
             (2, 'mary-ann o''neil', 'jane@x.org', 'NYC', '05/01/2024'), \
             (3, NULL, 'not an email', ' la ', 'Jan 5 2024'), \
             (4, 'ÉLODIE', NULL, 'sf', 'someday')) t(i, name, email, city, joined) ORDER BY i",
        );
        let steps = vec![
            Step::Standardize(Standardize {
                column: "name".into(),
                trim: true,
                collapse_spaces: true,
                case: Some(Case::Title),
                ..Default::default()
            }),
            Step::Standardize(Standardize { column: "email".into(), email: true, ..Default::default() }),
            Step::Standardize(Standardize {
                column: "city".into(),
                trim: true,
                case: Some(Case::Upper),
                value_map: vec![
                    ("NY".into(), "New York".into()),
                    ("NYC".into(), "New York".into()),
                    ("LA".into(), "Los Angeles".into()),
                ],
                ..Default::default()
            }),
            Step::Standardize(Standardize {
                column: "joined".into(),
                date_formats: Some((
                    vec!["%Y-%m-%d".into(), "%d/%m/%Y".into(), "%b %d %Y".into()],
                    "%Y-%m-%d".into(),
                )),
                ..Default::default()
            }),
        ];
        let got = clean(&conn, &path, &columns, steps);
        assert_eq!(
            got.data,
            vec![
                r(&["1", "John Smith", "john.doe@example.com", "New York", "2024-01-05"]),
                r(&["2", "Mary-Ann O'neil", "jane@x.org", "New York", "2024-01-05"]),
                r(&["3", N, "not an email", "Los Angeles", "2024-01-05"]),
                r(&["4", "Élodie", N, "SF", "someday"]),
            ]
        );
        let o = &got.outcome;
        assert_eq!(change(o, "standardize", "name"), (3, 0));
        assert_eq!(change(o, "standardize", "email"), (1, 1), "the invalid email is kept and flagged");
        assert_eq!(change(o, "standardize", "city"), (4, 0));
        assert_eq!(change(o, "standardize", "joined"), (2, 1), "an unparsed date is kept and flagged");
        assert_eq!(o.rows_out, 4);
        assert_eq!(removed(o), [("standardize", 0); 4]);
    }

    #[test]
    fn a_four_digit_year_format_does_not_read_two_digits() {
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES (1, '05/01/24', '05/01/24'), (2, '05/01/2024', '05/01/2024'), \
             (3, '5/1/3', '5/1/3')) t(i, strict, either) ORDER BY i",
        );
        let standardize = |column: &str, formats: &[&str]| {
            Step::Standardize(Standardize {
                column: column.into(),
                date_formats: Some((formats.iter().map(|f| f.to_string()).collect(), "%Y-%m-%d".into())),
                ..Default::default()
            })
        };
        let steps =
            vec![standardize("strict", &["%d/%m/%Y"]), standardize("either", &["%d/%m/%Y", "%d/%m/%y"])];
        let got = clean(&conn, &path, &columns, steps);
        assert_eq!(
            got.data,
            vec![
                r(&["1", "05/01/24", "2024-01-05"]),
                r(&["2", "2024-01-05", "2024-01-05"]),
                // (DuckDB's `%y` takes one digit too.)
                r(&["3", "5/1/3", "2003-01-05"]),
            ]
        );
        // (changed, failed): a two-digit year under `%Y` fails and keeps its text.
        assert_eq!(change(&got.outcome, "standardize", "strict"), (1, 2));
        assert_eq!(change(&got.outcome, "standardize", "either"), (3, 0));
    }

    #[test]
    fn case_conversions_follow_how_people_write() {
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES (1, 'straße', 'jean-luc PICARD', 'ΟΔΟΣ ΣΤΑΔΙΟΥ'), \
             (2, 'Maß', 'input/output (uk)', 'ΟΔΥΣΣΕΥΣ, ΚΟΣΜΟΣ'), (3, 'ok', 'don''t  stop', 'Σ'), \
             (4, 'ß', '-x', 'οδοσ')) t(i, up, title, greek) ORDER BY i",
        );
        let steps = vec![
            Step::Standardize(Standardize {
                column: "up".into(),
                case: Some(Case::Upper),
                ..Default::default()
            }),
            Step::Standardize(Standardize {
                column: "title".into(),
                case: Some(Case::Title),
                ..Default::default()
            }),
            Step::Standardize(Standardize {
                column: "greek".into(),
                case: Some(Case::Lower),
                ..Default::default()
            }),
        ];
        let got = clean(&conn, &path, &columns, steps);
        // A sigma ending a word lowers to `ς`, whatever its case; one alone stays `σ`.
        assert_eq!(
            got.data,
            vec![
                r(&["1", "STRASSE", "Jean-Luc Picard", "οδος σταδιου"]),
                r(&["2", "MASS", "Input/Output (Uk)", "οδυσσευς, κοσμος"]),
                r(&["3", "OK", "Don't  Stop", "σ"]),
                r(&["4", "SS", "-X", "οδος"]),
            ]
        );
        assert_eq!(change(&got.outcome, "standardize", "up"), (4, 0));
        assert_eq!(change(&got.outcome, "standardize", "title"), (4, 0));
        assert_eq!(change(&got.outcome, "standardize", "greek"), (4, 0));
    }

    #[test]
    fn standardize_reformats_real_dates() {
        let (_d, path, conn, columns) =
            fixture("SELECT * FROM (VALUES (DATE '2024-01-05'), (NULL), (DATE '2023-12-31')) t(d)");
        let step = Step::Standardize(Standardize {
            column: "d".into(),
            date_formats: Some((vec![], "%d/%m/%Y".into())),
            ..Default::default()
        });
        let got = clean(&conn, &path, &columns, vec![step]);
        assert_eq!(got.data, vec![r(&["05/01/2024"]), r(&[N]), r(&["31/12/2023"])]);
        assert_eq!(change(&got.outcome, "standardize", "d"), (2, 0));
    }

    #[test]
    fn text_dates_and_date_times_are_read_as_the_type_fixer_reads_them() {
        // ISO date-times were not read at all (every one a failure), and a format with a time
        // read into a date-only output dropped the time.
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES (1, ' 2024-03-01 00:00:00 '), (2, '2024-3-2'), (3, '2024-03-03T10:30:00'), \
             (4, '04/03/2024 09:15'), (5, '05/03/2024 00:00'), (6, '2024-03-06 00:00:00.000000000'), \
             (7, '2024-03-07 00:00:00.123456789')) t(i, d) ORDER BY i",
        );
        let step = |target: &str| {
            Step::Standardize(Standardize {
                column: "d".into(),
                date_formats: Some((vec!["%d/%m/%Y %H:%M".into()], target.into())),
                ..Default::default()
            })
        };
        let got = clean(&conn, &path, &columns, vec![step("%Y-%m-%d")]);
        let dates: Vec<Option<String>> = got.data.iter().map(|row| row[1].clone()).collect();
        let text = |s: &str| Some(s.to_string());
        assert_eq!(
            dates,
            vec![
                text("2024-03-01"),
                text("2024-03-02"),
                text("2024-03-03T10:30:00"),
                text("04/03/2024 09:15"),
                text("2024-03-05"),
                text("2024-03-06"),
                text("2024-03-07 00:00:00.123456789"),
            ]
        );
        assert_eq!(change(&got.outcome, "standardize", "d"), (4, 3));
        let got = clean(&conn, &path, &columns, vec![step("%Y-%m-%d %H:%M")]);
        assert_eq!(got.data[2][1].as_deref(), Some("2024-03-03 10:30"));
        assert_eq!(got.data[3][1].as_deref(), Some("2024-03-04 09:15"));
    }

    #[test]
    fn value_map_keys_are_compared_after_the_case_conversion() {
        // With `case: lower`, the keys `NY` and `N.Y.` could never match the lower-cased values.
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES (1, 'NY'), (2, 'nyc'), (3, 'N.Y.'), (4, 'Boston')) t(i, city) ORDER BY i",
        );
        let step = Step::Standardize(Standardize {
            column: "city".into(),
            case: Some(Case::Lower),
            value_map: vec![
                ("NY".into(), "New York".into()),
                ("nyc".into(), "New York".into()),
                ("N.Y.".into(), "New York".into()),
            ],
            ..Default::default()
        });
        let got = clean(&conn, &path, &columns, vec![step]);
        let cities: Vec<Option<String>> = got.data.iter().map(|row| row[1].clone()).collect();
        let text = |s: &str| Some(s.to_string());
        assert_eq!(cities, vec![text("New York"), text("New York"), text("New York"), text("boston")]);
    }

    #[test]
    fn emails_with_empty_parts_are_invalid() {
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES (1, 'a.b+tag@mail.example.org'), (2, 'a@b..com'), (3, 'a@b.com.'), \
             (4, 'a..b@c.com'), (5, '.a@c.com'), (6, 'a@localhost'), (7, 'x@y.co')) t(i, email) ORDER BY i",
        );
        let step =
            Step::Standardize(Standardize { column: "email".into(), email: true, ..Default::default() });
        let got = clean(&conn, &path, &columns, vec![step]);
        assert_eq!(change(&got.outcome, "standardize", "email"), (0, 5));
    }

    #[test]
    fn standardizing_timestamps_to_a_date_format_keeps_what_has_a_time_of_day() {
        // 13:45 and 23:59:59 were dropped silently (counted as changed, the checks passing).
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES (1, TIMESTAMP '2024-01-05 13:45:00'), (2, TIMESTAMP '2024-01-06 00:00:00'), \
             (3, NULL), (4, TIMESTAMP '2024-01-07 23:59:59')) t(i, ts) ORDER BY i",
        );
        let step = |target: &str| {
            Step::Standardize(Standardize {
                column: "ts".into(),
                date_formats: Some((vec![], target.into())),
                ..Default::default()
            })
        };
        let got = clean(&conn, &path, &columns, vec![step("%Y-%m-%d")]);
        let ts: Vec<Option<String>> = got.data.iter().map(|row| row[1].clone()).collect();
        let text = |s: &str| Some(s.to_string());
        assert_eq!(
            ts,
            vec![text("2024-01-05 13:45:00"), text("2024-01-06"), None, text("2024-01-07 23:59:59")]
        );
        assert_eq!(change(&got.outcome, "standardize", "ts"), (1, 2));
        // A format with the time keeps it; one without its seconds fails 23:59:59.
        let got = clean(&conn, &path, &columns, vec![step("%d/%m/%Y %H:%M")]);
        assert_eq!(got.data[0][1].as_deref(), Some("05/01/2024 13:45"));
        assert_eq!(got.data[3][1].as_deref(), Some("2024-01-07 23:59:59"));
        assert_eq!(change(&got.outcome, "standardize", "ts"), (2, 1));
        let got = clean(&conn, &path, &columns, vec![step("%d/%m/%Y %H:%M:%S")]);
        assert_eq!(change(&got.outcome, "standardize", "ts"), (3, 0));
        assert_eq!(format_unit("%Y-%m-%d %%H"), 86_400_000_000_000);
        assert_eq!(format_unit("%Y-%m-%d %Z"), 86_400_000_000_000);
        assert_eq!(format_unit("%-I %p"), 3_600_000_000_000);
        assert_eq!(format_unit("%d/%m/%Y %H:%M"), 60_000_000_000);
        assert_eq!(format_unit("%c"), 1_000_000_000);
        assert_eq!(format_unit("%Y-%m-%dT%H:%M:%S.%g"), 1_000_000);
        assert_eq!(format_unit("%Y-%m-%dT%H:%M:%S.%n"), 1);
        assert_eq!(format_unit("%H:%M:%S.%f"), 1_000);
    }

    #[test]
    fn a_nanosecond_timestamp_keeps_what_a_microsecond_format_would_drop() {
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES (1, TIMESTAMP_NS '2024-01-01 23:30:15.123456789'), \
             (2, TIMESTAMP_NS '2024-01-02 10:00:00.123456')) t(i, ts) ORDER BY i",
        );
        assert_eq!(columns[1].data_type, "TIMESTAMP_NS");
        let step = |target: &str| {
            Step::Standardize(Standardize {
                column: "ts".into(),
                date_formats: Some((vec![], target.into())),
                ..Default::default()
            })
        };
        let got = clean(&conn, &path, &columns, vec![step("%d/%m/%Y %H:%M:%S.%f")]);
        assert_eq!(got.data[0][1].as_deref(), Some("2024-01-01 23:30:15.123456789"));
        assert_eq!(got.data[1][1].as_deref(), Some("02/01/2024 10:00:00.123456"));
        assert_eq!(change(&got.outcome, "standardize", "ts"), (1, 1));
        let got = clean(&conn, &path, &columns, vec![step("%d/%m/%Y %H:%M:%S.%n")]);
        assert_eq!(got.data[0][1].as_deref(), Some("01/01/2024 23:30:15.123456789"));
        assert_eq!(change(&got.outcome, "standardize", "ts"), (2, 0));
    }

    #[test]
    fn a_number_with_its_country_code_ignores_the_default_region() {
        let id = |r: &str| parse_region(r).unwrap();
        for region in ["US", "CA", "GB", "FR"] {
            for (value, e164) in [
                ("+49 1512 3456789", "+4915123456789"),
                ("+33 1 23 45 67 89", "+33123456789"),
                ("+33 (0)1 23 45 67 89", "+33123456789"),
                ("+44 20 7946 0958", "+442079460958"),
                ("+1 415 555 2671", "+14155552671"),
            ] {
                assert_eq!(phone_e164(id(region), value).as_deref(), Some(e164), "{value} in {region}");
            }
        }
        assert_eq!(phone_e164(id("US"), "(415) 555-2671").as_deref(), Some("+14155552671"));
        assert_eq!(phone_e164(id("FR"), "01 42 68 53 00").as_deref(), Some("+33142685300"));
    }

    #[test]
    fn a_phone_extension_is_kept_after_the_number() {
        let us = parse_region("US").unwrap();
        // The step's own output reads back as itself: cleaning a cleaned file changes nothing.
        for value in [
            "(415) 555-2671 ext. 89",
            "415-555-2671 x89",
            "+1 415 555 2671 extension 89",
            "415.555.2671 #89",
            "+14155552671;ext=89",
            "+14155552671;EXT=89",
        ] {
            assert_eq!(phone_e164(us, value).as_deref(), Some("+14155552671;ext=89"), "{value}");
        }
        assert_eq!(phone_e164(us, "415 555 2671").as_deref(), Some("+14155552671"));
    }

    #[test]
    fn full_width_and_arabic_indic_digits_are_read() {
        let us = parse_region("US").unwrap();
        for value in [
            "（４１５）\u{3000}５５５－２６７１",
            "＋１ ４１５ ５５５ ２６７１",
            "٤١٥ ٥٥٥ ٢٦٧١",
            "۴۱۵-۵۵۵-۲۶۷۱",
        ] {
            assert_eq!(phone_e164(us, value).as_deref(), Some("+14155552671"), "{value}");
        }
        assert_eq!(
            phone_e164(parse_region("JP").unwrap(), "０３－１２３４－５６７８").as_deref(),
            Some("+81312345678")
        );
    }

    #[test]
    fn standardize_formats_phone_numbers_in_e164() {
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES (1, '(415) 555-2671', '01 42 68 53 00'), \
             (2, '415.555.2671', '+33 1 42 68 53 00'), (3, '+44 20 7946 0958', '555'), \
             (4, '555', NULL), (5, NULL, '  '), (6, ' 1-415-555-2671 ', '0142685300')) t(i, us, fr) ORDER BY i",
        );
        let phone = |column: &str, region: &str| {
            Step::Standardize(Standardize {
                column: column.into(),
                phone_region: Some(region.into()),
                ..Default::default()
            })
        };
        let steps = vec![phone("us", "US"), phone("fr", "fr")];
        let got = clean(&conn, &path, &columns, steps.clone());
        assert_eq!(
            got.data,
            vec![
                r(&["1", "+14155552671", "+33142685300"]),
                r(&["2", "+14155552671", "+33142685300"]),
                r(&["3", "+442079460958", "555"]),
                r(&["4", "555", N]),
                r(&["5", N, "  "]),
                r(&["6", "+14155552671", "+33142685300"]),
            ]
        );
        let o = &got.outcome;
        assert_eq!(change(o, "standardize", "us"), (4, 1), "555 is kept and flagged");
        assert_eq!(change(o, "standardize", "fr"), (3, 1), "555 is kept and flagged; a blank is not");
        assert_eq!((o.rows_in, o.rows_out, o.rows_quarantined), (6, 6, 0));
        assert_eq!(removed(o), [("standardize", 0); 2]);
        assert!(got.quarantine.is_empty());

        // Running again on the same connection (the function is registered once), and previewing.
        let again = clean(&conn, &path, &columns, steps.clone());
        assert_eq!(again.data, got.data);
        let sample = preview(&conn, &path, &columns, &CleansePlan { steps }, 100).unwrap();
        assert_eq!(sample.outcome.changes, got.outcome.changes);

        let unknown = CleansePlan { steps: vec![phone("us", "XX")] };
        let err = run(&conn, &path, &columns, &unknown, &got.out, &mut |_, _| {}).unwrap_err();
        assert!(format!("{err:#}").contains("\"XX\" is not a known phone region"), "{err:#}");
    }

    fn near_duplicates() -> (tempfile::TempDir, PathBuf, Connection, Vec<ColumnInfo>) {
        fixture(
            "SELECT name, city FROM (VALUES (1, 'John Smith', 'Paris'), (2, 'john  smith ', 'paris'), \
             (3, 'John Smith', 'Paris'), (4, 'Jane Doe', 'Paris'), (5, 'JANE DOE', 'London'), (6, NULL, NULL), \
             (7, NULL, NULL)) t(i, name, city) ORDER BY i",
        )
    }

    #[test]
    fn deduplicate_exactly_keeping_the_first() {
        let (_d, path, conn, columns) = near_duplicates();
        let got = clean(
            &conn,
            &path,
            &columns,
            vec![Step::Deduplicate { mode: DedupMode::Exact, keep: Keep::First, merge: false }],
        );
        assert_eq!(
            got.data,
            vec![
                r(&["John Smith", "Paris"]),
                r(&["john  smith ", "paris"]),
                r(&["Jane Doe", "Paris"]),
                r(&["JANE DOE", "London"]),
                r(&[N, N]),
            ]
        );
        assert_eq!(removed(&got.outcome), [("deduplicate", 2)]);
    }

    #[test]
    fn ignoring_case_also_ignores_how_a_character_was_typed() {
        // Composed and decomposed é, ß and SS, a zero-width space, a capital and a final sigma:
        // each pair is one value.
        let (_d, path, conn, columns) = fixture(
            "SELECT name, city FROM (VALUES (1, ' Café', 'Nice'), (2, 'Cafe' || chr(769), 'nice'), \
             (3, 'Straße', 'x'), (4, 'STRASSE', 'X'), (5, 'Ann', 'y'), (6, 'Ann' || chr(8203), 'y'), \
             (7, 'Anne', 'y'), (8, 'ΟΔΟΣ', 'g'), (9, 'οδος', 'G')) t(i, name, city) ORDER BY i",
        );
        let step = Step::Deduplicate { mode: DedupMode::CaseInsensitive, keep: Keep::First, merge: false };
        let got = clean(&conn, &path, &columns, vec![step]);
        assert_eq!(removed(&got.outcome), [("deduplicate", 4)], "{:?}", got.data);
    }

    #[test]
    fn deduplicate_ignoring_case_and_spaces_keeping_the_last() {
        let (_d, path, conn, columns) = near_duplicates();
        let step = Step::Deduplicate { mode: DedupMode::CaseInsensitive, keep: Keep::Last, merge: false };
        let got = clean(&conn, &path, &columns, vec![step]);
        assert_eq!(
            got.data,
            vec![
                r(&["John Smith", "Paris"]),
                r(&["Jane Doe", "Paris"]),
                r(&["JANE DOE", "London"]),
                r(&[N, N])
            ]
        );
        assert_eq!(removed(&got.outcome), [("deduplicate", 3)]);
    }

    #[test]
    fn deduplicate_on_keys() {
        let (_d, path, conn, columns) = near_duplicates();
        let step =
            Step::Deduplicate { mode: DedupMode::Keys(vec!["city".into()]), keep: Keep::First, merge: false };
        let got = clean(&conn, &path, &columns, vec![step]);
        assert_eq!(
            got.data,
            vec![
                r(&["John Smith", "Paris"]),
                r(&["john  smith ", "paris"]),
                r(&["JANE DOE", "London"]),
                // Two rows without a city are not copies of each other.
                r(&[N, N]),
                r(&[N, N]),
            ]
        );
        assert_eq!(removed(&got.outcome), [("deduplicate", 2)]);
        let merged = clean(
            &conn,
            &path,
            &columns,
            vec![Step::Deduplicate {
                mode: DedupMode::Keys(vec!["city".into()]),
                keep: Keep::Last,
                merge: true,
            }],
        );
        assert_eq!(merged.data.len(), 5, "{:?}", merged.data);
    }

    fn fuzzy_names() -> (tempfile::TempDir, PathBuf, Connection, Vec<ColumnInfo>) {
        fixture(
            "SELECT name, city, email FROM (VALUES (1, 'Jon Smith', 'Paris', NULL), \
             (2, 'John Smith', 'Paris', 'j@x'), (3, 'jon  smith', 'Paris', NULL), (4, 'John Smith', 'Lyon', NULL), \
             (5, 'Jane Doe', 'Paris', NULL), (6, NULL, 'Paris', NULL), (7, ' ', 'Paris', NULL)) \
             t(i, name, city, email) ORDER BY i",
        )
    }

    fn fuzzy(threshold: f64, block: Option<&str>, merge: bool) -> Step {
        Step::Deduplicate {
            mode: DedupMode::Fuzzy { columns: vec!["name".into()], threshold, block: block.map(Into::into) },
            keep: Keep::First,
            merge,
        }
    }

    #[test]
    fn deduplicate_fuzzy_removes_near_duplicates() {
        // Keys: "jon smith", "john smith" (0.973 to row 1), "jon smith", "john smith",
        // "jane doe" (0.57), and two blank keys, never duplicates.
        let (_d, path, conn, columns) = fuzzy_names();
        let got = clean(&conn, &path, &columns, vec![fuzzy(0.9, None, false)]);
        assert_eq!(
            got.data,
            vec![
                r(&["Jon Smith", "Paris", N]),
                r(&["Jane Doe", "Paris", N]),
                r(&[N, "Paris", N]),
                r(&[" ", "Paris", N]),
            ]
        );
        assert_eq!(removed(&got.outcome), [("deduplicate", 3)]);
        assert!(got.outcome.changes.is_empty(), "{:?}", got.outcome.changes);
    }

    #[test]
    fn deduplicate_fuzzy_compares_characters_not_bytes() {
        // By characters "müller"/"muller" is 0.900 and "владимир"/"владислав" 0.836; by bytes
        // (DuckDB's function) 0.864 and 0.892: at 0.88 the byte comparison kept the first pair
        // and removed a different name.
        let (_d, path, conn, columns) = fixture(
            "SELECT name FROM (VALUES (1, 'Müller'), (2, 'Muller'), (3, 'Владимир'), (4, 'Владислав'), \
             (5, 'Mu\u{308}ller')) t(i, name) ORDER BY i",
        );
        let step = Step::Deduplicate {
            mode: DedupMode::Fuzzy { columns: vec!["name".into()], threshold: 0.88, block: None },
            keep: Keep::First,
            merge: false,
        };
        let got = clean(&conn, &path, &columns, vec![step]);
        // `Mu\u{308}ller` is `Müller` decomposed: the same key once composed.
        assert_eq!(got.data, vec![r(&["Müller"]), r(&["Владимир"]), r(&["Владислав"])]);
    }

    #[test]
    fn jaro_winkler_by_characters_is_duckdbs_on_ascii() {
        let conn = Connection::open_in_memory().unwrap();
        let words = [
            "",
            "a",
            "ab",
            "martha",
            "marhta",
            "dixon",
            "dicksonx",
            "jon smith",
            "john smith",
            "jane doe",
            "crate",
            "trace",
            "dwayne",
            "duane",
            "abcdefghij",
            "abcdefghix",
            "xabcdefghi",
            "aaaa",
            "aaab",
        ];
        for a in words {
            for b in words {
                let duck: f64 =
                    conn.query_row("SELECT jaro_winkler_similarity(?, ?)", [a, b], |row| row.get(0)).unwrap();
                assert!(
                    (jaro_winkler(a, b) - duck).abs() < 1e-12,
                    "{a:?} {b:?}: {} {duck}",
                    jaro_winkler(a, b)
                );
            }
        }
        // Past 64 characters strsim's Jaro is used: the same numbers.
        let long = |w: &str| w.repeat(8);
        for a in words {
            for b in words {
                let (x, y) = (long(a), long(b));
                let duck: f64 = conn
                    .query_row("SELECT jaro_winkler_similarity(?, ?)", [&x, &y], |row| row.get(0))
                    .unwrap();
                assert!(
                    (jaro_winkler(&x, &y) - duck).abs() < 1e-12,
                    "{x:?} {y:?}: {} {duck}",
                    jaro_winkler(&x, &y)
                );
            }
        }
        assert!((jaro_winkler("émile", "emile") - 13.0 / 15.0).abs() < 1e-12);
        assert!((jaro_winkler("müller", "muller") - 0.9).abs() < 1e-12);
    }

    #[test]
    fn deduplicate_fuzzy_within_blocks() {
        // Blocking by city keeps Lyon's John Smith apart from Paris's.
        let (_d, path, conn, columns) = fuzzy_names();
        let got = clean(&conn, &path, &columns, vec![fuzzy(0.9, Some("city"), false)]);
        assert_eq!(
            got.data,
            vec![
                r(&["Jon Smith", "Paris", N]),
                r(&["John Smith", "Lyon", N]),
                r(&["Jane Doe", "Paris", N]),
                r(&[N, "Paris", N]),
                r(&[" ", "Paris", N]),
            ]
        );
        assert_eq!(removed(&got.outcome), [("deduplicate", 2)]);
    }

    #[test]
    fn deduplicate_fuzzy_with_a_high_threshold_keeps_near_duplicates() {
        // At 0.99 "John Smith" (0.973) stays; equal normalised keys (1.0) still go.
        let (_d, path, conn, columns) = fuzzy_names();
        let got = clean(&conn, &path, &columns, vec![fuzzy(0.99, None, false)]);
        assert_eq!(
            got.data,
            vec![
                r(&["Jon Smith", "Paris", N]),
                r(&["John Smith", "Paris", "j@x"]),
                r(&["Jane Doe", "Paris", N]),
                r(&[N, "Paris", N]),
                r(&[" ", "Paris", N]),
            ]
        );
        assert_eq!(removed(&got.outcome), [("deduplicate", 2)]);
    }

    #[test]
    fn deduplicate_fuzzy_refuses_keeping_the_last_and_bad_thresholds() {
        let (_d, path, conn, columns) = fuzzy_names();
        let out = path.parent().unwrap().join("out");
        let last = Step::Deduplicate {
            mode: DedupMode::Fuzzy { columns: vec!["name".into()], threshold: 0.9, block: None },
            keep: Keep::Last,
            merge: false,
        };
        let err = run(&conn, &path, &columns, &CleansePlan { steps: vec![last] }, &out, &mut |_, _| {})
            .unwrap_err();
        for step in [fuzzy(1.5, None, false), fuzzy(0.9, Some("nope"), false)] {
            assert!(
                run(&conn, &path, &columns, &CleansePlan { steps: vec![step] }, &out, &mut |_, _| {})
                    .is_err()
            );
        }
        assert!(format!("{err:#}").contains("keeping the last is not supported"), "{err:#}");
    }

    #[test]
    fn deduplicate_fuzzy_merges_the_group_into_the_kept_row() {
        // Row 1 keeps its name and takes row 2's email; rows 2-4 go.
        let (_d, path, conn, columns) = fuzzy_names();
        let got = clean(&conn, &path, &columns, vec![fuzzy(0.9, None, true)]);
        assert_eq!(
            got.data,
            vec![
                r(&["Jon Smith", "Paris", "j@x"]),
                r(&["Jane Doe", "Paris", N]),
                r(&[N, "Paris", N]),
                r(&[" ", "Paris", N]),
            ]
        );
        assert_eq!(removed(&got.outcome), [("deduplicate", 3)]);
        assert_eq!(change(&got.outcome, "deduplicate", "email"), (1, 0));
        assert_eq!(change(&got.outcome, "deduplicate", "name"), (0, 0));

        // A chain: "ab" is similar to "a" (0.85), "abb" to "ab" (0.91) but not to "a" (0.80);
        // "abb" is removed and, through "ab", merged into "a".
        let (_d, path, conn, columns) = fixture(
            "SELECT name, email, phone FROM (VALUES (1, 'A', NULL, NULL), (2, 'AB', NULL, '1'), \
             (3, 'ABB', 'z@x', '2'), (4, 'Q', NULL, NULL)) t(i, name, email, phone) ORDER BY i",
        );
        let got = clean(&conn, &path, &columns, vec![fuzzy(0.84, None, true)]);
        assert_eq!(got.data, vec![r(&["A", "z@x", "1"]), r(&["Q", N, N])]);
        assert_eq!(removed(&got.outcome), [("deduplicate", 2)]);
        assert_eq!(change(&got.outcome, "deduplicate", "email"), (1, 0));
        assert_eq!(change(&got.outcome, "deduplicate", "phone"), (1, 0));
    }

    #[test]
    fn deduplicate_on_keys_merging_the_group() {
        let (_d, path, conn, columns) = fixture(
            "SELECT k, name, email, phone FROM (VALUES (1, 'a', 'Ann', NULL, NULL), (2, 'b', 'Bob', 'b@x', NULL), \
             (3, 'a', NULL, 'a@x', NULL), (4, 'a', 'Anne', 'a2@x', '555'), (5, 'b', NULL, NULL, '777')) \
             t(i, k, name, email, phone) ORDER BY i",
        );
        let step = |keep| Step::Deduplicate { mode: DedupMode::Keys(vec!["k".into()]), keep, merge: true };
        let got = clean(&conn, &path, &columns, vec![step(Keep::First)]);
        assert_eq!(got.data, vec![r(&["a", "Ann", "a@x", "555"]), r(&["b", "Bob", "b@x", "777"])]);
        assert_eq!(removed(&got.outcome), [("deduplicate", 3)]);
        for (column, n) in [("k", 0), ("name", 0), ("email", 1), ("phone", 2)] {
            assert_eq!(change(&got.outcome, "deduplicate", column), (n, 0), "{column}");
        }

        // Keeping the last: row 4 is complete, row 5 takes Bob's name and email.
        let got = clean(&conn, &path, &columns, vec![step(Keep::Last)]);
        assert_eq!(got.data, vec![r(&["a", "Anne", "a2@x", "555"]), r(&["b", "Bob", "b@x", "777"])]);
        assert_eq!(removed(&got.outcome), [("deduplicate", 3)]);
        for (column, n) in [("k", 0), ("name", 1), ("email", 1), ("phone", 0)] {
            assert_eq!(change(&got.outcome, "deduplicate", column), (n, 0), "{column}");
        }
    }

    #[test]
    fn deduplicate_fuzzy_scales_with_blocking() {
        // 20,000 rows, 100 cities of 200 rows each; a name fixes its city, so 2,000 distinct
        // rows at most remain, and near-equal names ("person 12" / "person 1212") may go too.
        let (_d, path, conn, columns) = fixture(
            "SELECT 'person ' || (i % 2000) AS name, 'c' || (i % 100) AS city, \
             CASE WHEN i % 3 = 0 THEN 'e' || i END AS email FROM range(20000) t(i) ORDER BY i",
        );
        for merge in [false, true] {
            let got = clean(&conn, &path, &columns, vec![fuzzy(0.9, Some("city"), merge)]);
            assert_eq!(got.outcome.rows_in, 20_000);
            assert!(got.outcome.rows_out > 0 && got.outcome.rows_out <= 2_000, "{:?}", got.outcome);
            assert_eq!(removed(&got.outcome), [("deduplicate", 20_000 - got.outcome.rows_out)]);
            if merge {
                // Every kept row has an email after merging (each group has one).
                assert!(got.data.iter().all(|row| row[2].is_some()));
            }
        }
    }

    /// A default block larger than FUZZY_BLOCK_ROWS is split by longer prefixes of the key:
    /// here 3,000 keys start with `a`, so blocks of two letters (about 115 rows) are compared,
    /// and the result is that of comparing every row with every other.
    #[test]
    fn deduplicate_fuzzy_splits_large_default_blocks() {
        // 1,500 names `a` + four letters, then each again with an `x` after it (Jaro–Winkler
        // 0.967 to its own name; two names differing in one letter score at most 0.92).
        let letters = "'a' || chr(CAST(97 + i // 676 % 26 AS INTEGER)) || chr(CAST(97 + i // 26 % 26 AS INTEGER)) \
                       || chr(CAST(97 + i % 26 AS INTEGER)) || 'q'";
        let (_d, path, conn, columns) = fixture(&format!(
            "SELECT name, 'all' AS city FROM (SELECT i, {letters} AS name FROM range(1500) t(i) \
             UNION ALL SELECT 1500 + i, {letters} || 'x' FROM range(1500) t(i)) ORDER BY i"
        ));
        let split = clean(&conn, &path, &columns, vec![fuzzy(0.95, None, false)]);
        assert_eq!((split.outcome.rows_in, split.outcome.rows_out), (3_000, 1_500));
        assert!(split.data.iter().all(|row| !row[0].as_deref().unwrap_or_default().ends_with('x')));
        let whole = clean(&conn, &path, &columns, vec![fuzzy(0.95, Some("city"), false)]);
        assert_eq!(split.data, whole.data);
    }

    /// The cost of splitting: in a split block, keys that differ in a character of the prefix
    /// that splits it are no longer compared.
    #[test]
    fn deduplicate_fuzzy_compares_within_the_split_blocks_only() {
        // Two near-identical keys (Jaro–Winkler 0.977) differing in their second letter, among
        // `fillers` other keys starting with `a` (random hex: never similar).
        let pair = |fillers: u32| {
            let (_d, path, conn, columns) = fixture(&format!(
                "SELECT name, 'all' AS city FROM (SELECT 0 AS i, 'abcdefghijklmnopqrstuvwxyz' AS name \
                 UNION ALL SELECT 1, 'axcdefghijklmnopqrstuvwxyz' \
                 UNION ALL SELECT 2 + i, 'a' || md5(i::VARCHAR) FROM range({fillers}) t(i)) ORDER BY i"
            ));
            clean(&conn, &path, &columns, vec![fuzzy(0.95, None, false)]).outcome.rows_out
        };
        assert_eq!(pair(10), 11, "a block of 12 rows: the pair is compared, one removed");
        assert_eq!(pair(1_200), 1_202, "a block of 1,202 rows is split into ab… and ax…: both kept");
    }

    /// Tokens are text, not patterns: their punctuation matches only itself.
    #[test]
    fn null_tokens_with_punctuation_match_only_themselves() {
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES (1, 'n.a.'), (2, 'nXaX'), (3, ' (NONE) '), (4, 'a|b'), (5, 'a'), (6, '?'), \
             (7, 'x?'), (8, '\\N'), (9, '\u{3000}N/A\t')) t(i, v) ORDER BY i",
        );
        let tokens = ["n.a.", "(none)", "a|b", "?", "\\N", "N/A"].iter().map(|t| t.to_string()).collect();
        let got = clean(&conn, &path, &columns, vec![Step::Nulls { tokens, columns: vec![] }]);
        let values: Vec<Option<String>> = got.data.iter().map(|row| row[1].clone()).collect();
        assert_eq!(values, r(&[N, "nXaX", N, N, "a", N, "x?", N, N]));
        assert_eq!(change(&got.outcome, "null_tokens", "v"), (6, 0));
    }

    #[test]
    fn nulls_tokens_drops_and_fills() {
        let (_d, path, conn, columns) = fixture(
            "SELECT i, name, score::INTEGER AS score, temp::DOUBLE AS temp, city, code, level::INTEGER AS level, note \
             FROM (VALUES \
             (1, 'Ann', 10, 1.5, 'Paris', 'A', 1, 'x'), \
             (2, 'N/A', 20, NULL, 'Rome', 'B', 2, NULL), \
             (3, 'Bob', NULL, NULL, ' na ', '?', NULL, 'null'), \
             (4, 'Cy', 40, 4.0, 'Rome', '-', 9, NULL), \
             (5, ' ', 50, 5.0, 'Oslo', 'C', 3, 'y'), \
             (6, 'Di', NULL, NULL, NULL, NULL, NULL, 'z')) t(i, name, score, temp, city, code, level, note) ORDER BY i",
        );
        let step = Step::Nulls {
            tokens: DEFAULT_NULL_TOKENS.iter().map(|t| t.to_string()).collect(),
            columns: vec![
                ("name".into(), NullStrategy::Drop),
                ("score".into(), NullStrategy::Mean),
                ("temp".into(), NullStrategy::ForwardFill),
                ("city".into(), NullStrategy::Mode),
                ("code".into(), NullStrategy::Constant("unknown".into())),
                ("level".into(), NullStrategy::Median),
                ("note".into(), NullStrategy::BackFill),
            ],
        };
        let got = clean(&conn, &path, &columns, vec![step]);
        // Rows 2 and 5 lose their names to tokens ("N/A", blank) and are dropped; the statistics
        // are those of rows 1, 3, 4, 6: mean score 25, median level 5, mode city Paris (a tie
        // with Rome, broken by value).
        assert_eq!(
            got.data,
            vec![
                r(&["1", "Ann", "10", "1.5", "Paris", "A", "1", "x"]),
                r(&["3", "Bob", "25", "1.5", "Paris", "unknown", "5", "z"]),
                r(&["4", "Cy", "40", "4.0", "Rome", "unknown", "9", "z"]),
                r(&["6", "Di", "25", "4.0", "Paris", "unknown", "5", "z"]),
            ]
        );
        let o = &got.outcome;
        assert_eq!(removed(o), [("nulls", 2)]);
        for (column, changed) in
            [("score", 2), ("temp", 2), ("city", 2), ("code", 3), ("level", 2), ("note", 2)]
        {
            assert_eq!(change(o, "nulls", column), (changed, 0), "{column}");
        }
        assert_eq!(change(o, "nulls", "name"), (0, 0));
    }

    #[test]
    fn nulls_nothing_can_fill_stay_null_and_are_counted_as_failed() {
        let (_d, path, conn, columns) = fixture(
            "SELECT i, name, temp::DOUBLE AS temp, note, empty::DOUBLE AS empty FROM (VALUES \
             (1, 'Ann', NULL, 'a', NULL), \
             (2, NULL, 2.0, NULL, NULL), \
             (3, 'Bob', NULL, 'b', NULL), \
             (4, 'Cy', 4.0, NULL, NULL)) t(i, name, temp, note, empty) ORDER BY i",
        );
        let step = Step::Nulls {
            tokens: vec![],
            columns: vec![
                ("name".into(), NullStrategy::Drop),
                ("temp".into(), NullStrategy::ForwardFill),
                ("note".into(), NullStrategy::BackFill),
                ("empty".into(), NullStrategy::Mean),
            ],
        };
        let got = clean(&conn, &path, &columns, vec![step]);
        // Row 2 is dropped, so row 3 has no earlier temperature either; row 4 has no later
        // note; `empty` has no mean. The dropped row's own nulls are not counted.
        assert_eq!(
            got.data,
            vec![r(&["1", "Ann", N, "a", N]), r(&["3", "Bob", N, "b", N]), r(&["4", "Cy", "4.0", N, N])]
        );
        let o = &got.outcome;
        assert_eq!(removed(o), [("nulls", 1)]);
        assert_eq!(change(o, "nulls", "temp"), (0, 2));
        assert_eq!(change(o, "nulls", "note"), (0, 1));
        assert_eq!(change(o, "nulls", "empty"), (0, 3));
        assert_eq!(change(o, "nulls", "name"), (0, 0));
    }

    #[test]
    fn null_fills_leave_nan_and_infinities_out_of_their_statistics() {
        // Finite values 1, 2, 6 beside NaN, inf and -inf: with them, the mean was NaN, the
        // median 4 and the mode -inf; a forward fill still copies its neighbour as it is.
        let values = "(1, '1'), (2, '2'), (3, 'nan'), (4, '6'), (5, 'inf'), (6, '-inf'), (7, NULL)";
        let (_d, path, conn, columns) = fixture(&format!(
            "SELECT i, x::DOUBLE AS mean, x::DOUBLE AS median, x::FLOAT AS mode, x::DOUBLE AS ffill \
             FROM (VALUES {values}) t(i, x) ORDER BY i"
        ));
        let step = Step::Nulls {
            tokens: vec![],
            columns: vec![
                ("mean".into(), NullStrategy::Mean),
                ("median".into(), NullStrategy::Median),
                ("mode".into(), NullStrategy::Mode),
                ("ffill".into(), NullStrategy::ForwardFill),
            ],
        };
        let got = clean(&conn, &path, &columns, vec![step]);
        assert_eq!(got.data[6], r(&["7", "3.0", "2.0", "1.0", "-inf"]));
        // The other rows are as they were.
        assert_eq!(got.data[2], r(&["3", "nan", "nan", "nan", "nan"]));
        for column in ["mean", "median", "mode", "ffill"] {
            assert_eq!(change(&got.outcome, "nulls", column), (1, 0), "{column}");
        }
    }

    #[test]
    fn integer_medians_are_exact_whatever_their_size() {
        // Medians of: the three largest BIGINTs; 10^17 + 1, 3, 5 (beyond 2^53); -3 and -2 (the
        // mean -2.5 rounds half away from zero); a UBIGINT near its limit.
        let (_d, path, conn, columns) = fixture(
            "SELECT i, big, wide, neg, ub FROM (VALUES \
             (1, 9223372036854775807, 100000000000000001, -3, 18446744073709551614::UBIGINT), \
             (2, 9223372036854775806, 100000000000000003, -2, 18446744073709551615::UBIGINT), \
             (3, 9223372036854775805, 100000000000000005, NULL, 18446744073709551613::UBIGINT), \
             (4, NULL, NULL, NULL, NULL)) t(i, big, wide, neg, ub) ORDER BY i",
        );
        let step = Step::Nulls {
            tokens: vec![],
            columns: ["big", "wide", "neg", "ub"]
                .iter()
                .map(|c| (c.to_string(), NullStrategy::Median))
                .collect(),
        };
        let got = clean(&conn, &path, &columns, vec![step]);
        assert_eq!(
            got.data[3],
            r(&["4", "9223372036854775806", "100000000000000003", "-3", "18446744073709551614"])
        );
        assert_eq!(got.data[2][3].as_deref(), Some("-3"));
    }

    #[test]
    fn integer_means_are_exact_whatever_their_size() {
        // Means of 2^60 + 1, 3, 5 (beyond 2^53: a DOUBLE mean gave 2^60); of -3 and -2 (-2.5,
        // half away from zero); of 1 and 2 and 2 (1.67 → 2).
        let (_d, path, conn, columns) = fixture(
            "SELECT i, big, neg, small FROM (VALUES (1, 1152921504606846977, -3, 1), (2, 1152921504606846979, -2, 2), \
             (3, 1152921504606846981, NULL, 2), (4, NULL, NULL, NULL)) t(i, big, neg, small) ORDER BY i",
        );
        let step = Step::Nulls {
            tokens: vec![],
            columns: ["big", "neg", "small"].iter().map(|c| (c.to_string(), NullStrategy::Mean)).collect(),
        };
        let got = clean(&conn, &path, &columns, vec![step]);
        assert_eq!(got.data[3], r(&["4", "1152921504606846979", "-3", "2"]));
    }

    fn spiky() -> (tempfile::TempDir, PathBuf, Connection, Vec<ColumnInfo>) {
        fixture(
            "SELECT i, x::BIGINT AS x, x::DOUBLE AS y FROM (VALUES (1, 10), (2, 12), (3, 11), (4, 13), (5, 12), \
             (6, 100), (7, NULL), (8, 11), (9, -50)) t(i, x) ORDER BY i",
        )
    }

    fn column(data: &[Vec<Option<String>>], i: usize) -> Vec<Option<String>> {
        data.iter().map(|row| row[i].clone()).collect()
    }

    #[test]
    fn outliers_by_iqr_removed_capped_or_imputed() {
        // Sorted: -50 10 11 11 12 12 13 100: Q1 10.75, Q3 12.25, bounds [8.5, 14.5]; median 11.5.
        let (_d, path, conn, columns) = spiky();
        let step = |action| Step::Outliers { column: "x".into(), method: OutlierMethod::Iqr(1.5), action };
        let removed_rows = clean(&conn, &path, &columns, vec![step(OutlierAction::Remove)]);
        assert_eq!(column(&removed_rows.data, 1), r(&["10", "12", "11", "13", "12", N, "11"]));
        assert_eq!(removed(&removed_rows.outcome), [("outliers", 2)]);

        let capped = clean(&conn, &path, &columns, vec![step(OutlierAction::Cap)]);
        assert_eq!(column(&capped.data, 1), r(&["10", "12", "11", "13", "12", "14", N, "11", "9"]));
        assert_eq!(change(&capped.outcome, "outliers", "x"), (2, 0));

        let imputed = clean(&conn, &path, &columns, vec![step(OutlierAction::Impute)]);
        assert_eq!(column(&imputed.data, 1), r(&["10", "12", "11", "13", "12", "12", N, "11", "12"]));
        assert_eq!(change(&imputed.outcome, "outliers", "x"), (2, 0));
        assert_eq!(imputed.outcome.rows_out, 9);
    }

    #[test]
    fn a_column_whose_quartiles_are_equal_has_no_outliers() {
        // A fraud flag with 3 % ones, and a quantity that is nearly always 1: q25 = q75, so
        // Tukey's fences would call every 1 (or every 2–5) an outlier and erase it.
        let (_d, path, conn, columns) = fixture(
            "SELECT i, CASE WHEN i % 33 = 0 THEN 1 ELSE 0 END AS is_fraud,              CASE WHEN i % 20 = 0 THEN 2 + i % 4 ELSE 1 END AS quantity FROM range(1000) t(i) ORDER BY i",
        );
        for action in [OutlierAction::Cap, OutlierAction::Remove, OutlierAction::Impute] {
            let steps = ["is_fraud", "quantity"]
                .map(|c| Step::Outliers { column: c.into(), method: OutlierMethod::Iqr(1.5), action })
                .to_vec();
            let got = clean(&conn, &path, &columns, steps);
            assert_eq!(got.outcome.rows_out, 1000, "{action:?}");
            assert!(got.outcome.changes.is_empty(), "{action:?}: {:?}", got.outcome.changes);
            assert_eq!(column(&got.data, 1).iter().filter(|v| v.as_deref() == Some("1")).count(), 31);
        }
    }

    #[test]
    fn a_run_of_outlier_steps_gives_what_the_steps_one_by_one_give() {
        // A plan of outlier steps (cap, impute, remove; a column twice; a DECIMAL column between
        // the others) gives what each step alone, applied to the output of the one before,
        // gives: statistics over the rows and values each step receives, changes counted per
        // column.
        let (_d, path, conn, columns) = fixture(
            "SELECT i, (hash(i) % 1000)::BIGINT - 500 AS a, ((hash(i * 3) % 100000) / 7.0)::DOUBLE AS b, \
             CASE WHEN i % 17 = 0 THEN NULL ELSE (hash(i * 5) % 50)::INTEGER END AS c, \
             CASE WHEN i % 29 = 0 THEN 1e9 ELSE (hash(i * 7) % 1000)::DOUBLE END AS d, \
             (hash(i * 11) % 300)::BIGINT AS e, ((hash(i * 13) % 10000) / 7)::DECIMAL(10,2) AS f \
             FROM range(400) t(i) ORDER BY i",
        );
        let step = |column: &str, method, action| Step::Outliers { column: column.into(), method, action };
        let steps = vec![
            step("a", OutlierMethod::Iqr(0.5), OutlierAction::Cap),
            step("b", OutlierMethod::ZScore(1.0), OutlierAction::Impute),
            step("f", OutlierMethod::Iqr(0.5), OutlierAction::Cap),
            step("c", OutlierMethod::Percentile(0.1, 0.8), OutlierAction::Cap),
            step("d", OutlierMethod::Iqr(1.5), OutlierAction::Remove),
            step("e", OutlierMethod::ZScore(1.2), OutlierAction::Cap),
            step("a", OutlierMethod::Percentile(0.2, 0.7), OutlierAction::Impute),
            step("d", OutlierMethod::ZScore(0.8), OutlierAction::Cap),
        ];
        let fused = clean(&conn, &path, &columns, steps.clone());
        let (data, alone) = one_by_one(&conn, &path, steps);
        // (A plan's changes are per step name and column: both `a` steps are one entry.)
        let mut changes: Vec<(String, u64)> = Vec::new();
        for (column, changed, _) in alone {
            match changes.iter_mut().find(|(c, _)| *c == column) {
                Some((_, n)) => *n += changed,
                None => changes.push((column, changed)),
            }
        }
        assert_eq!(fused.data, data);
        let fused_changes: Vec<_> =
            fused.outcome.changes.iter().map(|c| (c.column.clone(), c.changed)).collect();
        assert_eq!(fused_changes, changes);
        assert!(fused.outcome.rows_out < 400, "the remove step removed rows");
    }

    #[test]
    fn a_run_of_standardisations_gives_what_the_steps_one_by_one_give() {
        // Six columns standardised in one run (trim, spaces, case, value maps, dates from text
        // and of a DATE column, emails, phones; values that fail) give what each step alone,
        // applied to the output of the one before, gives: values, changes and failures.
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES \
               (1, '  ann   lee ', ' A@X.COM ', '(201) 555-0123', '03/02/2024', DATE '2024-01-05', 'alpha'), \
               (2, 'BOB', 'not-an-email', '12', '2024-02-30', NULL, ' Beta '), \
               (3, NULL, 'c@y.org', '+44 20 7946 0958', 'soon', DATE '2023-12-31', 'gamma'), \
               (4, ' cy ', NULL, '', '31/12/2023', DATE '2020-02-29', 'ALPHA')) \
             t(i, name, email, phone, day, joined, cat) ORDER BY i",
        );
        let spec = |column: &str| Standardize { column: column.into(), ..Default::default() };
        let steps = vec![
            Step::Standardize(Standardize {
                trim: true,
                collapse_spaces: true,
                case: Some(Case::Title),
                ..spec("name")
            }),
            Step::Standardize(Standardize { email: true, ..spec("email") }),
            Step::Standardize(Standardize { phone_region: Some("US".into()), ..spec("phone") }),
            Step::Standardize(Standardize {
                trim: true,
                date_formats: Some((vec!["%d/%m/%Y".into(), "%Y-%m-%d".into()], "%Y-%m-%d".into())),
                ..spec("day")
            }),
            Step::Standardize(Standardize {
                date_formats: Some((vec!["%Y-%m-%d".into()], "%d.%m.%Y".into())),
                ..spec("joined")
            }),
            Step::Standardize(Standardize {
                trim: true,
                case: Some(Case::Upper),
                value_map: vec![("ALPHA".into(), "A".into()), ("BETA".into(), "B".into())],
                ..spec("cat")
            }),
        ];
        let compiled = compile(&columns, &CleansePlan { steps: steps.clone() }, "SELECT 1", false).unwrap();
        assert_eq!(compiled.segments.len(), 1);
        let fused = clean(&conn, &path, &columns, steps.clone());
        let (data, changes) = one_by_one(&conn, &path, steps);
        assert_eq!(fused.data, data);
        let fused_changes: Vec<_> =
            fused.outcome.changes.iter().map(|c| (c.column.clone(), c.changed, c.failed)).collect();
        assert_eq!(fused_changes, changes);
        for column in ["email", "phone", "day"] {
            assert!(change(&fused.outcome, "standardize", column).1 > 0, "{column} has a failure");
        }
    }

    #[test]
    fn fills_of_many_columns_in_one_step_equal_each_column_filled_alone() {
        // One null step filling nine columns of seven types, after tokens and a drop, gives
        // what a step per column gives (the statistics of every kind and type are computed
        // together, each over the rows left).
        let (_d, path, conn, columns) = fixture(
            "SELECT i, \
               CASE WHEN i % 5 = 0 THEN NULL ELSE (hash(i) % 1000)::BIGINT - 400 END AS a, \
               CASE WHEN i % 7 = 0 THEN NULL ELSE (hash(i * 3) % 90)::BIGINT END AS b, \
               CASE WHEN i % 4 = 0 THEN NULL ELSE (hash(i * 5) % 6)::INTEGER END AS c, \
               CASE WHEN i % 6 = 0 THEN NULL ELSE (hash(i * 7) % 10000)::DOUBLE / 3 END AS d, \
               CASE WHEN i % 8 = 0 THEN NULL ELSE ((hash(i * 11) % 10000) / 100)::DECIMAL(10,2) END AS e, \
               CASE WHEN i % 9 = 0 THEN 'n/a' ELSE ['x', 'y', 'z', 'y'][(hash(i) % 4)::INTEGER + 1] END AS s1, \
               CASE WHEN i % 3 = 0 THEN NULL ELSE 'v' || (hash(i * 13) % 5) END AS s2, \
               CASE WHEN i % 10 = 0 THEN NULL ELSE hash(i * 17) % 3 = 0 END AS f, \
               CASE WHEN i % 11 = 0 THEN NULL ELSE DATE '2024-01-01' + (hash(i * 19) % 300)::INTEGER END AS g, \
               CASE WHEN i % 13 = 0 THEN NULL ELSE i END AS h \
             FROM range(300) t(i) ORDER BY i",
        );
        let strategies = vec![
            ("a", NullStrategy::Median),
            ("b", NullStrategy::Median),
            ("c", NullStrategy::Mode),
            ("d", NullStrategy::Median),
            ("e", NullStrategy::Mean),
            ("s1", NullStrategy::Mode),
            ("s2", NullStrategy::Mode),
            ("f", NullStrategy::Mode),
            ("g", NullStrategy::Median),
        ];
        let tokens = vec!["N/A".to_string()];
        let drop = ("h".to_string(), NullStrategy::Drop);
        let together = Step::Nulls {
            tokens: tokens.clone(),
            columns: [drop.clone()]
                .into_iter()
                .chain(strategies.iter().map(|(c, s)| (c.to_string(), s.clone())))
                .collect(),
        };
        let fused = clean(&conn, &path, &columns, vec![together]);
        // A step per column: the first takes the tokens and the drop.
        let mut alone = vec![Step::Nulls { tokens, columns: vec![drop] }];
        alone.extend(
            strategies
                .iter()
                .map(|(c, s)| Step::Nulls { tokens: vec![], columns: vec![(c.to_string(), s.clone())] }),
        );
        let apart = clean(&conn, &path, &columns, alone);
        assert_eq!(fused.data, apart.data);
        assert_eq!(fused.outcome.rows_out, apart.outcome.rows_out);
        assert!(fused.outcome.rows_out < 300, "the drop removed rows");
        for (column, _) in &strategies {
            let (changed, failed) = change(&fused.outcome, "nulls", column);
            assert!(changed > 0 && failed == 0, "{column}");
            // (A plan's changes are per step name and column: the steps apart are one entry.
            // Apart, each token in s1 is changed twice: to null, then filled.)
            let twice = if *column == "s1" { 2 } else { 1 };
            assert_eq!(change(&apart.outcome, "nulls", column), (changed * twice, failed), "{column}");
        }
    }

    #[test]
    fn a_wide_plan_compiles_to_as_many_queries_whatever_its_columns() {
        // A standardisation per text column, a unit conversion per DOUBLE column, fills of
        // every column and an outlier step per numeric column of four types (what the default
        // plan makes of a wide file, with conversions): the queries, segments and statistics do not grow
        // with the columns.
        let compiled = |n: usize| {
            let columns: Vec<ColumnInfo> = (0..n)
                .flat_map(|i| {
                    [
                        ("DOUBLE", "x"),
                        ("BIGINT", "k"),
                        ("VARCHAR", "s"),
                        ("FLOAT", "f"),
                        ("DECIMAL(10,2)", "m"),
                    ]
                    .map(|(ty, prefix)| ColumnInfo { name: format!("{prefix}{i}"), data_type: ty.into() })
                })
                .collect();
            let mut steps: Vec<Step> = columns
                .iter()
                .filter(|c| c.data_type == "VARCHAR")
                .map(|c| {
                    Step::Standardize(Standardize {
                        column: c.name.clone(),
                        trim: true,
                        collapse_spaces: true,
                        ..Default::default()
                    })
                })
                .collect();
            steps.extend(columns.iter().filter(|c| c.data_type == "DOUBLE").map(|c| Step::ConvertUnits {
                column: c.name.clone(),
                conversion: Conversion::linear(1000.0, 0.0),
            }));
            steps.push(Step::Nulls {
                tokens: vec!["?".into()],
                columns: columns
                    .iter()
                    .map(|c| {
                        let strategy = match c.data_type.as_str() {
                            "VARCHAR" => NullStrategy::Mode,
                            _ => NullStrategy::Median,
                        };
                        (c.name.clone(), strategy)
                    })
                    .collect(),
            });
            steps.extend(columns.iter().filter(|c| c.data_type != "VARCHAR").map(|c| Step::Outliers {
                column: c.name.clone(),
                method: OutlierMethod::Iqr(1.5),
                action: OutlierAction::Cap,
            }));
            let plan = CleansePlan { steps };
            let compiled = compile(&columns, &plan, "SELECT 1", false).unwrap();
            (compiled.ctes.len(), compiled.segments.len(), compiled.metrics.len())
        };
        assert_eq!(compiled(2), compiled(200));

        // Outliers removed column by column cannot be one segment (each step's rows are what
        // the one before left), but no more than three segments in a row stay queries: a
        // statement never computes more than three segments again.
        let columns: Vec<ColumnInfo> =
            (0..50).map(|i| ColumnInfo { name: format!("x{i}"), data_type: "DOUBLE".into() }).collect();
        let steps = columns
            .iter()
            .map(|c| Step::Outliers {
                column: c.name.clone(),
                method: OutlierMethod::ZScore(3.0),
                action: OutlierAction::Remove,
            })
            .collect();
        let compiled = compile(&columns, &CleansePlan { steps }, "SELECT 1", false).unwrap();
        assert_eq!(compiled.segments.len(), 50);
        let longest = compiled.segments.split(|s| is_stored(&compiled, s)).map(<[Segment]>::len).max();
        assert_eq!(longest, Some(MAX_UNSTORED_SEGMENTS));
    }

    #[test]
    fn integer_caps_never_cross_and_imputed_medians_round_as_fills_do() {
        // 0,1,0,1,0,1: z 0.5 gives bounds [0.23, 0.77], no whole number inside. Capping to
        // ceil/floor swapped every value (0 → 1, 1 → 0); now each stays on its side.
        let (_d, path, conn, columns) = fixture(
            "SELECT i, (i % 2)::INTEGER AS x, [2, 3, 2, 3, 100, -100][i + 1]::BIGINT AS y FROM range(6) t(i)",
        );
        let cap = Step::Outliers {
            column: "x".into(),
            method: OutlierMethod::ZScore(0.5),
            action: OutlierAction::Cap,
        };
        let got = clean(&conn, &path, &columns, vec![cap]);
        assert_eq!(column(&got.data, 1), r(&["0", "1", "0", "1", "0", "1"]));
        assert_eq!(change(&got.outcome, "outliers", "x"), (0, 0));
        // y's median is 2.5: the outliers 100 and -100 become 3, as the null handler's median
        // fill of 2.5 (half away from zero), not 2 (a cast's half to even).
        let impute = Step::Outliers {
            column: "y".into(),
            method: OutlierMethod::Iqr(1.5),
            action: OutlierAction::Impute,
        };
        let got = clean(&conn, &path, &columns, vec![impute]);
        assert_eq!(column(&got.data, 2), r(&["2", "3", "2", "3", "3", "3"]));
    }

    #[test]
    fn outliers_by_zscore_and_percentile() {
        // Mean 14.875, sample sd ≈ 40.58: 2 sd is [-66.3, 96.0], so only 100 is out.
        let (_d, path, conn, columns) = spiky();
        let z = Step::Outliers {
            column: "x".into(),
            method: OutlierMethod::ZScore(2.0),
            action: OutlierAction::Remove,
        };
        let got = clean(&conn, &path, &columns, vec![z]);
        assert_eq!(column(&got.data, 0), r(&["1", "2", "3", "4", "5", "7", "8", "9"]));
        // The 10th and 90th percentiles of the doubles: -8 and 39.1.
        let p = Step::Outliers {
            column: "y".into(),
            method: OutlierMethod::Percentile(0.1, 0.9),
            action: OutlierAction::Cap,
        };
        let got = clean(&conn, &path, &columns, vec![p]);
        let y: Vec<Option<f64>> =
            column(&got.data, 2).into_iter().map(|v| v.map(|v| v.parse().unwrap())).collect();
        assert!((y[5].unwrap() - 39.1).abs() < 1e-9 && (y[8].unwrap() + 8.0).abs() < 1e-9, "{y:?}");
        assert_eq!(y[0], Some(10.0));
        assert_eq!(change(&got.outcome, "outliers", "y"), (2, 0));
    }

    #[test]
    fn non_finite_values_neither_skew_the_bounds_nor_get_made_up() {
        // 20 prices 10..=29, then inf, NaN, -inf and a null: the bounds come from the finite
        // values; NaN stays NaN; ±inf lie beyond the bounds.
        let (_d, path, conn, columns) = fixture(
            "SELECT i, CASE i WHEN 21 THEN 'inf'::DOUBLE WHEN 22 THEN 'nan'::DOUBLE WHEN 23 THEN '-inf'::DOUBLE \
             WHEN 24 THEN NULL ELSE (i + 9)::DOUBLE END AS price FROM range(1, 25) t(i) ORDER BY i",
        );
        let price = |method, action| {
            let got = clean(
                &conn,
                &path,
                &columns,
                vec![Step::Outliers { column: "price".into(), method, action }],
            );
            let values: Vec<Option<String>> = column(&got.data, 1);
            (values, got)
        };
        let finite: Vec<Option<String>> = (10..=29).map(|x| Some(format!("{x}.0"))).collect();
        for method in [OutlierMethod::ZScore(3.0), OutlierMethod::Iqr(1.5)] {
            // Capped: every finite value is within the bounds; inf and -inf go to the bounds.
            let (values, got) = price(method, OutlierAction::Cap);
            assert_eq!(values[..20], finite[..], "{method:?}");
            assert_eq!(values[21].as_deref(), Some("nan"), "{method:?}");
            assert_eq!(values[23], None);
            let (hi, lo): (f64, f64) = (
                values[20].as_ref().unwrap().parse().unwrap(),
                values[22].as_ref().unwrap().parse().unwrap(),
            );
            assert!(hi.is_finite() && hi >= 29.0 && lo.is_finite() && lo <= 10.0, "{method:?}: {lo} {hi}");
            assert_eq!(change(&got.outcome, "outliers", "price"), (2, 0), "{method:?}");
            // Removed: only the two infinities.
            let (values, _) = price(method, OutlierAction::Remove);
            assert_eq!(values.len(), 22, "{method:?}: {values:?}");
            assert!(values.contains(&Some("nan".into())));
            // Imputed: the two infinities take the median of the finite values (19.5).
            let (values, _) = price(method, OutlierAction::Impute);
            assert_eq!(
                (values[20].as_deref(), values[22].as_deref()),
                (Some("19.5"), Some("19.5")),
                "{method:?}"
            );
            assert_eq!(values[21].as_deref(), Some("nan"));
        }
    }

    #[test]
    fn a_full_chain_over_messy_data() {
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES \
             (1, 'Ann Lee', ' Ann@Mail.com ', '34', '2024-01-05', 'yes'), \
             (2, 'ann  lee', 'ann@mail.com', '34', '05/01/2024', 'Y'), \
             (3, 'Bob', NULL, '40', 'Jan 5 2024', 'no'), \
             (4, 'Cy', 'cy@mail.com', 'N/A', 'Feb 1 2024', 'n'), \
             (5, 'Di', 'di@mail.com', '999', '2024-02-03', 'true'), \
             (6, 'Ed', 'ed@mail.com', 'forty', '2024-02-04', '?'), \
             (7, 'Fi', 'fi@mail.com', '30', '2024-02-05', 'false'), \
             (8, 'Gus', 'gus@mail.com', '32', '2024-02-06', 'no'), \
             (9, 'Hal', 'hal@mail.com', '36', '2024-02-07', 'yes')) t(id, name, email, age, joined, active) \
             ORDER BY id",
        );
        let steps = vec![
            Step::Quarantine { required: vec!["email".into()], ranges: vec![], patterns: vec![] },
            Step::FixTypes {
                columns: vec![("age".into(), TargetType::Integer), ("active".into(), TargetType::Boolean)],
                on_failure: OnFailure::Null,
                month_first: vec![],
            },
            Step::Standardize(Standardize { column: "email".into(), email: true, ..Default::default() }),
            Step::Standardize(Standardize {
                column: "joined".into(),
                date_formats: Some((
                    vec!["%Y-%m-%d".into(), "%d/%m/%Y".into(), "%b %d %Y".into()],
                    "%Y-%m-%d".into(),
                )),
                ..Default::default()
            }),
            Step::Standardize(Standardize {
                column: "name".into(),
                trim: true,
                collapse_spaces: true,
                case: Some(Case::Title),
                ..Default::default()
            }),
            Step::Deduplicate {
                mode: DedupMode::Keys(vec!["email".into()]),
                keep: Keep::First,
                merge: false,
            },
            Step::Nulls {
                tokens: DEFAULT_NULL_TOKENS.iter().map(|t| t.to_string()).collect(),
                columns: vec![("age".into(), NullStrategy::Median)],
            },
            Step::Outliers {
                column: "age".into(),
                method: OutlierMethod::Iqr(1.5),
                action: OutlierAction::Remove,
            },
        ];
        let got = clean(&conn, &path, &columns, steps);
        // Row 3 is quarantined (no email); row 2 duplicates row 1 once its email is normalised;
        // "N/A" and "forty" fail the integer conversion (nulled) and get the median of
        // 34 34 999 30 32 36 (34, computed after deduplication: 34 999 30 32 36 → 34); 999 is
        // then an outlier (Q1 32, Q3 34, bounds [29, 37]).
        assert_eq!(
            got.data,
            vec![
                r(&["1", "Ann Lee", "ann@mail.com", "34", "2024-01-05", "true"]),
                r(&["4", "Cy", "cy@mail.com", "34", "2024-02-01", "false"]),
                r(&["6", "Ed", "ed@mail.com", "34", "2024-02-04", N]),
                r(&["7", "Fi", "fi@mail.com", "30", "2024-02-05", "false"]),
                r(&["8", "Gus", "gus@mail.com", "32", "2024-02-06", "false"]),
                r(&["9", "Hal", "hal@mail.com", "36", "2024-02-07", "true"]),
            ]
        );
        let o = &got.outcome;
        assert_eq!((o.rows_in, o.rows_out, o.rows_quarantined), (9, 6, 1));
        assert_eq!(
            removed(o),
            [
                ("quarantine", 0),
                ("fix_types", 0),
                ("standardize", 0),
                ("standardize", 0),
                ("standardize", 0),
                ("deduplicate", 1),
                ("nulls", 0),
                ("outliers", 1)
            ]
        );
        assert_eq!(change(o, "fix_types", "age"), (2, 2));
        // "true" and "false" stay as they were; "?" fails.
        assert_eq!(change(o, "fix_types", "active"), (6, 1));
        assert_eq!(change(o, "standardize", "email"), (1, 0));
        assert_eq!(change(o, "standardize", "joined"), (2, 0));
        assert_eq!(change(o, "nulls", "age"), (2, 0));
        assert_eq!(got.quarantine.len(), 1);
        assert_eq!(got.quarantine[0][6..], r(&["missing email", "3"])[..]);
    }

    #[test]
    fn hostile_names_and_values_stay_data() {
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES \
             ('x''); DROP TABLE t; --', 'it''s', 'Naïve  Value', 1, 'r1'), \
             ('\"', 'SELECT', 'naïve value', 2, 'r2'), \
             (NULL, 'ok', 'other', 3, 'r3'), \
             ('b', '''; DROP TABLE t; --', 'third', 1000, 'r4'), \
             ('c', 'ok', 'fourth', 4, 'r5')) \
             t(\"a\"\"b\", \"select\", \"naïve col\", \"x); DROP TABLE t; --\", \"_reason\")",
        );
        conn.execute_batch("CREATE TABLE t AS SELECT 1 AS still_here").unwrap();
        let hostile = "x); DROP TABLE t; --";
        let steps = vec![
            Step::Quarantine {
                required: vec!["a\"b".into()],
                ranges: vec![(hostile.into(), Some(0.0), None)],
                patterns: vec![("select".into(), r"[^']*|it's|'.*".into())],
            },
            Step::Standardize(Standardize {
                column: "naïve col".into(),
                collapse_spaces: true,
                case: Some(Case::Lower),
                value_map: vec![("naïve value".into(), "it's \"fine\"'); --".into())],
                ..Default::default()
            }),
            Step::Deduplicate {
                mode: DedupMode::Keys(vec!["naïve col".into()]),
                keep: Keep::First,
                merge: false,
            },
            Step::Nulls {
                tokens: vec!["'; DROP TABLE t; --".into()],
                columns: vec![("select".into(), NullStrategy::Constant("'); DROP TABLE t; --".into()))],
            },
            Step::Outliers {
                column: hostile.into(),
                method: OutlierMethod::Percentile(0.0, 0.5),
                action: OutlierAction::Cap,
            },
        ];
        let got = clean(&conn, &path, &columns, steps);
        assert_eq!(
            got.data,
            vec![
                r(&["x'); DROP TABLE t; --", "it's", "it's \"fine\"'); --", "1", "r1"]),
                r(&["b", "'); DROP TABLE t; --", "third", "4", "r4"]),
                r(&["c", "ok", "fourth", "4", "r5"]),
            ]
        );
        let names: Vec<String> =
            describe(&conn, &got.out.join("data.parquet")).into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["a\"b", "select", "naïve col", hostile, "_reason"]);
        // The source has a `_reason` column: the quarantine's gets another underscore.
        let names: Vec<String> =
            describe(&conn, &got.out.join("quarantine.parquet")).into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["a\"b", "select", "naïve col", hostile, "_reason", "__reason", "_row"]);
        assert_eq!(got.quarantine, vec![r(&[N, "ok", "other", "3", "r3", "missing a\"b", "3"])]);
        let o = &got.outcome;
        assert_eq!(
            removed(o),
            [("quarantine", 0), ("standardize", 0), ("deduplicate", 1), ("nulls", 0), ("outliers", 0)]
        );
        assert_eq!(change(o, "nulls", "select"), (1, 0));
        // Row 2 went as a duplicate of row 1 ("naïve value" both): the median of 1, 1000, 4 is 4.
        assert_eq!(change(o, "outliers", hostile), (1, 0));
        let still: i32 = conn.query_row("SELECT still_here FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(still, 1);
    }

    #[test]
    fn an_empty_plan_copies_and_an_empty_file_works() {
        let (_d, path, conn, columns) = fixture("SELECT * FROM (VALUES (1, 'a'), (2, 'b')) t(i, s)");
        let got = clean(&conn, &path, &columns, vec![]);
        assert_eq!(got.data, vec![r(&["1", "a"]), r(&["2", "b"])]);
        assert!(got.quarantine.is_empty());

        let (_d, path, conn, columns) = fixture("SELECT 1 AS x, 'a' AS s WHERE false");
        let steps = vec![
            Step::Quarantine { required: vec!["s".into()], ranges: vec![], patterns: vec![] },
            Step::Deduplicate { mode: DedupMode::CaseInsensitive, keep: Keep::First, merge: false },
            Step::Nulls { tokens: vec!["".into()], columns: vec![("x".into(), NullStrategy::Mean)] },
            Step::Outliers {
                column: "x".into(),
                method: OutlierMethod::ZScore(3.0),
                action: OutlierAction::Remove,
            },
        ];
        let got = clean(&conn, &path, &columns, steps);
        assert_eq!((got.outcome.rows_in, got.outcome.rows_out), (0, 0));
    }

    #[test]
    fn preview_shows_rows_before_and_after() {
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES (1, ' A@X.COM '), (2, NULL), (3, 'a@x.com'), (4, 'b@x.com')) t(i, email) ORDER BY i",
        );
        let plan = CleansePlan {
            steps: vec![
                Step::Quarantine { required: vec!["email".into()], ranges: vec![], patterns: vec![] },
                Step::Standardize(Standardize { column: "email".into(), email: true, ..Default::default() }),
                Step::Deduplicate {
                    mode: DedupMode::Keys(vec!["email".into()]),
                    keep: Keep::First,
                    merge: false,
                },
            ],
        };
        // A sample as large as the file holds every row.
        let preview = preview(&conn, &path, &columns, &plan, 100).unwrap();
        assert_eq!(preview.columns, ["i", "email"]);
        let o = &preview.outcome;
        assert_eq!((o.rows_in, o.rows_out, o.rows_quarantined), (4, 2, 1));
        assert_eq!(
            preview.rows,
            vec![
                PreviewRow {
                    row: 1,
                    before: r(&["1", " A@X.COM "]),
                    after: Some(r(&["1", "a@x.com"])),
                    fate: None
                },
                PreviewRow {
                    row: 2,
                    before: r(&["2", N]),
                    after: None,
                    fate: Some("quarantine: missing email".into())
                },
                PreviewRow {
                    row: 3,
                    before: r(&["3", "a@x.com"]),
                    after: None,
                    fate: Some("deduplicate".into())
                },
                PreviewRow {
                    row: 4,
                    before: r(&["4", "b@x.com"]),
                    after: Some(r(&["4", "b@x.com"])),
                    fate: None
                },
            ]
        );
        let small = super::preview(&conn, &path, &columns, &plan, 2).unwrap();
        assert_eq!((small.outcome.rows_in, small.rows.len()), (2, 2));
        // Nothing is left behind on the connection.
        let left: i64 = conn
            .query_row(
                "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'agensium_cleanse_sample'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn a_preview_of_two_hundred_segments_reads_every_rows_fate() {
        // Outliers removed column by column over 200 DECIMAL and FLOAT columns: 200 segments,
        // each row's fate in one of them. Read through a join per segment, this ran out of
        // 512 MB; so did keeping every segment's table until the end (on a server, for a
        // 2,000-row sample of such a file: perf/wide_typed.py).
        let select = (0..200)
            .map(|c| {
                let ty = ["DECIMAL(10,2)", "FLOAT"][c % 2];
                format!(
                    "CASE WHEN (i + {c}) % 97 = 0 THEN 1e6 WHEN (i * 7 + {c}) % 20 = 0 THEN NULL \
                     ELSE 50 + (hash(i * 200 + {c}) % 100000)::DOUBLE / 10000 END::{ty} AS x{c}"
                )
            })
            .collect::<Vec<_>>();
        let (_d, path, conn, columns) =
            fixture(&format!("SELECT i, {} FROM range(400) t(i)", select.join(", ")));
        conn.execute_batch("SET memory_limit = '512MB'; SET threads = 2").unwrap();
        // Nulls filled by each column's median first, as the default plan does.
        let fills = Step::Nulls {
            tokens: vec![],
            columns: (0..200).map(|c| (format!("x{c}"), NullStrategy::Median)).collect(),
        };
        let steps: Vec<Step> = std::iter::once(fills)
            .chain((0..200).map(|c| Step::Outliers {
                column: format!("x{c}"),
                method: OutlierMethod::Iqr(1.5),
                action: OutlierAction::Remove,
            }))
            .collect();
        let plan = CleansePlan { steps };
        let preview = preview(&conn, &path, &columns, &plan, 400).unwrap();
        let kept = preview.rows.iter().filter(|r| r.after.is_some()).count() as u64;
        assert_eq!(kept, preview.outcome.rows_out);
        assert!(preview.outcome.rows_out < 400, "rows were removed");
        for row in &preview.rows {
            assert_eq!(row.fate.is_some(), row.after.is_none(), "{row:?}");
            assert!(row.fate.as_deref().is_none_or(|f| f == "outliers"), "{row:?}");
        }
        // The preview of the whole file is the run.
        let run = clean(&conn, &path, &columns, plan.steps.clone());
        assert_eq!(run.outcome.rows_out, preview.outcome.rows_out);

        // Computed for a preview, the chain keeps its rows that left, not every segment's table.
        let source = format!(
            "SELECT {}, file_row_number AS {ROW} FROM read_parquet({}, file_row_number = true)",
            column_list(columns.iter().map(|c| c.name.as_str())),
            quote_literal(&path.display().to_string())
        );
        let compiled = compile(&columns, &plan, &source, true).unwrap();
        let (tables, _) =
            Tables::compute(&conn, &compiled, std::time::Instant::now(), &mut |_, _| {}).unwrap();
        let held = compiled
            .segments
            .iter()
            .filter(|s| tables.created.iter().any(|(name, _)| *name == s.table))
            .count();
        assert!(held <= 2, "{held} of {} segments' tables held", compiled.segments.len());
        assert_eq!(compiled.sample_rows(&conn).unwrap().len(), 400);
    }

    /// A preview's sample is a repeatable reservoir over the whole file: the rows asked for,
    /// each once, with the values of their own position, the same rows on every call.
    #[test]
    fn preview_samples_rows_from_the_whole_file_repeatably() {
        let (_dir, path, conn, columns) =
            fixture("SELECT i, 'v' || i AS v FROM range(200000) t(i) ORDER BY i");
        let plan = CleansePlan {
            steps: vec![Step::Standardize(Standardize {
                column: "v".into(),
                case: Some(Case::Upper),
                ..Default::default()
            })],
        };
        let first = preview(&conn, &path, &columns, &plan, 1000).unwrap();
        assert_eq!(first.outcome.rows_in, 1000);
        let rows: Vec<u64> = first.rows.iter().map(|r| r.row).collect();
        assert_eq!(
            rows.iter().collect::<std::collections::BTreeSet<_>>().len(),
            1000,
            "each sampled row once"
        );
        for row in &first.rows {
            let i = row.row - 1;
            assert_eq!(row.before, r(&[&i.to_string(), &format!("v{i}")]));
            assert_eq!(row.after, Some(r(&[&i.to_string(), &format!("V{i}")])));
        }
        // Spread over the file, not its first rows: about 250 in each quarter.
        for quarter in 0..4u64 {
            let inside = rows.iter().filter(|&&n| (n - 1) / 50_000 == quarter).count();
            assert!((150..=350).contains(&inside), "quarter {quarter}: {inside} rows");
        }
        let again = preview(&conn, &path, &columns, &plan, 1000).unwrap();
        assert_eq!(again.rows.iter().map(|r| r.row).collect::<Vec<_>>(), rows);
    }

    /// Rows a step removes or quarantines are not counted by later steps, across segments,
    /// in a run and in a preview alike.
    #[test]
    fn rows_that_left_are_not_counted_by_later_steps() {
        let (_d, path, conn, columns) = fixture(
            "SELECT * FROM (VALUES (1, ' A@X.COM ', '10'), (2, ' B@X.COM ', 'ten'), (3, 'not-an-email ', '20'), \
             (4, ' A@X.COM ', '10'), (5, ' c@x.com', '30')) t(i, email, amount) ORDER BY i",
        );
        let plan = CleansePlan {
            steps: vec![
                Step::FixTypes {
                    columns: vec![("amount".into(), TargetType::Integer)],
                    on_failure: OnFailure::Quarantine,
                    month_first: vec![],
                },
                Step::Standardize(Standardize { column: "email".into(), email: true, ..Default::default() }),
                Step::Deduplicate {
                    mode: DedupMode::Keys(vec!["email".into()]),
                    keep: Keep::First,
                    merge: false,
                },
                Step::ConvertUnits { column: "amount".into(), conversion: Conversion::linear(2.0, 0.0) },
            ],
        };
        let got = clean(&conn, &path, &columns, plan.steps.clone());
        assert_eq!(
            got.data,
            vec![
                r(&["1", "a@x.com", "20.0"]),
                r(&["3", "not-an-email", "40.0"]),
                r(&["5", "c@x.com", "60.0"])
            ]
        );
        let o = &got.outcome;
        assert_eq!((o.rows_in, o.rows_out, o.rows_quarantined), (5, 3, 1));
        assert_eq!(
            removed(o),
            [("fix_types", 0), ("standardize", 0), ("deduplicate", 1), ("convert_units", 0)]
        );
        // "ten" fails; "10" reads as the same text, so nothing changed.
        assert_eq!(change(o, "fix_types", "amount"), (0, 1));
        // Row 2's email would change too, but it was quarantined the step before.
        assert_eq!(change(o, "standardize", "email"), (4, 1));
        // Row 4 was removed as a duplicate the step before.
        assert_eq!(change(o, "convert_units", "amount"), (3, 0));
        assert_eq!(got.quarantine.len(), 1);
        assert_eq!(got.quarantine[0][3..], r(&["amount is not an integer", "2"])[..]);
        let sample = preview(&conn, &path, &columns, &plan, 100).unwrap();
        assert_eq!(sample.outcome, got.outcome);
        let fates: Vec<Option<&str>> = sample.rows.iter().map(|r| r.fate.as_deref()).collect();
        assert_eq!(
            fates,
            [None, Some("quarantine: amount is not an integer"), None, Some("deduplicate"), None]
        );
    }

    /// Row-by-row steps run as one pipeline; only a step that reads its input twice closes
    /// the chain so far into a segment, stored unless its steps are cheap to compute again.
    #[test]
    fn row_by_row_steps_fuse_and_only_rereading_steps_store_a_segment() {
        let columns: Vec<ColumnInfo> = ["name", "email", "amount"]
            .iter()
            .map(|n| ColumnInfo { name: n.to_string(), data_type: "VARCHAR".into() })
            .collect();
        let row_by_row = vec![
            Step::Nulls { tokens: vec!["N/A".into()], columns: vec![] },
            Step::Quarantine { required: vec!["name".into()], ranges: vec![], patterns: vec![] },
            Step::FixTypes {
                columns: vec![("amount".into(), TargetType::Float)],
                on_failure: OnFailure::Quarantine,
                month_first: vec![],
            },
            Step::Standardize(Standardize { column: "email".into(), email: true, ..Default::default() }),
            Step::Standardize(Standardize { column: "name".into(), trim: true, ..Default::default() }),
            Step::Nulls {
                tokens: vec![],
                columns: vec![("email".into(), NullStrategy::Constant("none".into()))],
            },
        ];
        let compiled =
            compile(&columns, &CleansePlan { steps: row_by_row.clone() }, "SELECT 1", false).unwrap();
        assert_eq!(compiled.segments.len(), 1);
        assert!(is_stored(&compiled, &compiled.segments[0]));
        let mut steps = row_by_row;
        steps.push(Step::Deduplicate { mode: DedupMode::Exact, keep: Keep::First, merge: false });
        steps.push(Step::Nulls { tokens: vec![], columns: vec![("amount".into(), NullStrategy::Median)] });
        steps.push(Step::Outliers {
            column: "amount".into(),
            method: OutlierMethod::Iqr(1.5),
            action: OutlierAction::Cap,
        });
        let compiled = compile(&columns, &CleansePlan { steps: steps.clone() }, "SELECT 1", false).unwrap();
        // The row-by-row steps, the grouping, the fill and the capping: the last two are
        // computed where they are read, over the grouping's table and their stored statistics.
        let stored: Vec<bool> = compiled.segments.iter().map(|s| is_stored(&compiled, s)).collect();
        assert_eq!(stored, [true, true, false, false]);
        let tables = compiled.ctes.iter().filter(|c| c.table).count();
        assert_eq!(tables, 2 + 1 + 2, "two segments, the quarantined rows, the median and the bounds");
        // A preview stores every segment (its rows' fates are read from each).
        let compiled = compile(&columns, &CleansePlan { steps }, "SELECT 1", true).unwrap();
        assert!(compiled.segments.iter().all(|s| is_stored(&compiled, s)));
    }

    /// The quantiles that fills and outlier bounds read from grouped ranks are DuckDB's
    /// `quantile_cont`, bit for bit: doubles with repeats, negatives, NaN and infinities,
    /// integers, one value, no value, and fractions on and between ranks; FLOAT and DECIMAL
    /// values' are those of their numbers as DOUBLE.
    #[test]
    fn quantiles_from_ranks_are_quantile_cont() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t AS SELECT \
                 CASE WHEN i % 13 = 0 THEN NULL ELSE (hash(i) % 20001)::DOUBLE / 7 - 1000 END AS d, \
                 CASE WHEN i % 11 = 0 THEN NULL ELSE (hash(i * 3) % 1000)::BIGINT - 300 END AS b, \
                 CASE WHEN i = 5 THEN 'NaN'::DOUBLE WHEN i = 6 THEN 'inf'::DOUBLE \
                      WHEN i = 7 THEN '-inf'::DOUBLE ELSE i * 0.1 END AS special, \
                 CASE WHEN i = 42 THEN 3.5 END AS one, \
                 CAST(NULL AS DOUBLE) AS none, \
                 ((hash(i * 5) % 3001)::DOUBLE / 7 - 200)::FLOAT AS f, \
                 ((hash(i * 7) % 100001) / 100 - 300)::DECIMAL(10,2) AS m \
             FROM range(20000) r(i)",
        )
        .unwrap();
        let fractions: Vec<String> =
            ["0", "0.25", "0.5", "0.75", "1", "0.1", "0.9", "0.333", "0.99999"].map(String::from).to_vec();
        // Every column in one statement, each with its own fractions (a column twice).
        let columns = ["d", "b", "special", "one", "none", "d", "f", "m"];
        let wanted: Vec<Vec<String>> =
            (0..columns.len()).map(|i| fractions[i % 2..].iter().rev().cloned().collect()).collect();
        let values: Vec<(String, Vec<String>)> =
            columns.iter().zip(&wanted).map(|(c, f)| (c.to_string(), f.clone())).collect();
        let names: Vec<String> = (0..columns.len()).map(|i| format!("q{i}")).collect();
        let all = ranked_quantiles(&values, "t", &names);
        for (i, column) in columns.into_iter().enumerate() {
            let list = wanted[i].join(", ");
            let source =
                if matches!(column, "f" | "m") { format!("CAST({column} AS DOUBLE)") } else { column.into() };
            let (ours, theirs): (Option<String>, Option<String>) = conn
                .query_row(
                    &format!(
                        "SELECT CAST((SELECT q{i} FROM {all}) AS VARCHAR), \
                                CAST((SELECT quantile_cont({source}, [{list}])::DOUBLE[] FROM t) AS VARCHAR)"
                    ),
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            // DuckDB prints a DOUBLE in the shortest form that reads back to the same bits
            // (−0.0 with its sign): equal text is equal doubles.
            assert_eq!(ours, theirs, "{column}");
            if column != "none" {
                assert!(ours.is_some(), "{column}");
            }
        }
    }

    /// Segments of light steps (fills, outliers, unit conversions) after a grouping are not
    /// stored: the cleaned file, the counts and the next step compute them where they read
    /// them, from the stored statistics, with their bound values; the result and the
    /// accounting are those of a preview, which stores every segment.
    #[test]
    fn light_segments_are_computed_where_read_with_the_same_result() {
        let (_d, path, conn, columns) = fixture(
            "SELECT i, name, x::BIGINT AS x, y::DOUBLE AS y, note FROM (VALUES (1, ' Ann ', 10, 1.0, NULL), (2, 'Bob', 12, NULL, 'n'), \
             (3, 'Ann', 10, 1.0, NULL), (4, 'Cy', NULL, 3.0, NULL), (5, 'Di', 100, 4.0, 'm'), \
             (6, 'Ed', 12, 2.0, NULL), (7, 'Fa', 13, 5.0, NULL), (8, 'Gi', -50, NULL, NULL)) \
             t(i, name, x, y, note)",
        );
        let steps = vec![
            Step::Standardize(Standardize { column: "name".into(), trim: true, ..Default::default() }),
            Step::Deduplicate { mode: DedupMode::Keys(vec!["name".into()]), keep: Keep::First, merge: false },
            Step::Nulls {
                tokens: vec![],
                columns: vec![
                    ("x".into(), NullStrategy::Median),
                    ("y".into(), NullStrategy::Mean),
                    ("note".into(), NullStrategy::Constant("it's $1 ?".into())),
                ],
            },
            // Sorted x: -50 10 12 12 12 13 100: Q1 11, Q3 12.5, bounds [8.75, 14.75]: 9 and 14.
            Step::Outliers {
                column: "x".into(),
                method: OutlierMethod::Iqr(1.5),
                action: OutlierAction::Cap,
            },
            Step::ConvertUnits { column: "y".into(), conversion: Conversion::linear(10.0, 0.0) },
        ];
        let compiled = compile(&columns, &CleansePlan { steps: steps.clone() }, "SELECT 1", false).unwrap();
        let stored: Vec<bool> = compiled.segments.iter().map(|s| is_stored(&compiled, s)).collect();
        assert_eq!(stored, [true, true, false, false]);

        let got = clean(&conn, &path, &columns, steps.clone());
        let c = "it's $1 ?";
        assert_eq!(
            got.data,
            vec![
                r(&["1", "Ann", "10", "10.0", c]),
                r(&["2", "Bob", "12", "30.0", "n"]),
                r(&["4", "Cy", "12", "30.0", c]),
                r(&["5", "Di", "14", "40.0", "m"]),
                r(&["6", "Ed", "12", "20.0", c]),
                r(&["7", "Fa", "13", "50.0", c]),
                r(&["8", "Gi", "9", "30.0", c]),
            ]
        );
        let o = &got.outcome;
        assert_eq!((o.rows_in, o.rows_out), (8, 7));
        assert_eq!(
            removed(o),
            [("standardize", 0), ("deduplicate", 1), ("nulls", 0), ("outliers", 0), ("convert_units", 0)]
        );
        assert_eq!(change(o, "standardize", "name"), (1, 0));
        assert_eq!(change(o, "nulls", "x"), (1, 0));
        assert_eq!(change(o, "nulls", "y"), (2, 0));
        assert_eq!(change(o, "nulls", "note"), (5, 0));
        assert_eq!(change(o, "outliers", "x"), (2, 0));
        assert_eq!(change(o, "convert_units", "y"), (7, 0));

        let previewed = preview(&conn, &path, &columns, &CleansePlan { steps }, 100).unwrap();
        assert_eq!(&previewed.outcome, o);
        let after: Vec<Vec<Option<String>>> =
            previewed.rows.iter().filter_map(|row| row.after.clone()).collect();
        assert_eq!(after, got.data);
    }

    /// The cheap tests in front of the regular expressions (token, other whitespace, blank)
    /// give what the regular expressions alone give, on the values that take each path.
    #[test]
    fn fast_paths_agree_with_the_regular_expressions() {
        let conn = Connection::open_in_memory().unwrap();
        let tokens: Vec<String> = ["N/A", "null", " k ", "-", ""].iter().map(|t| t.to_string()).collect();
        let values: [Option<&str>; 24] = [
            None,
            Some(""),
            Some(" "),
            Some("\t"),
            Some("\u{a0}"),
            Some("N/A"),
            Some(" n/a "),
            Some("N/A x"),
            Some("NULL\u{a0}"),
            Some("nul"),
            Some("nulls"),
            Some("k"),
            Some("\u{212a}"),
            Some(" \u{212a}\u{3000}"),
            Some("-"),
            Some("--"),
            Some("x"),
            Some("é"),
            Some("a\tb"),
            Some("a  b"),
            Some("a\u{a0}b"),
            Some("plain text"),
            Some("tab\t"),
            Some("line\r\nbreak"),
        ];
        let token = token_match("v", "$1", &tokens);
        let (other, empty) = (other_space("v"), blank("v"));
        let sql = format!(
            "SELECT {token}, regexp_full_match(v, $1), {other}, regexp_matches(v, '{OTHER_SPACE_RE}'), \
             {empty}, regexp_full_match(v, {}) FROM (SELECT CAST($2 AS VARCHAR) AS v)",
            quote_literal(BLANK_RE)
        );
        let pattern = token_pattern(&tokens);
        let mut matched = Vec::new();
        for value in values {
            let got: [Option<bool>; 6] = conn
                .query_row(&sql, duckdb::params![pattern, value], |r| {
                    Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?])
                })
                .unwrap();
            assert_eq!(got[0], got[1], "token {value:?}");
            assert_eq!(got[2], got[3], "other whitespace {value:?}");
            assert_eq!(got[4], got[5], "blank {value:?}");
            if got[0] == Some(true) {
                matched.push(value.unwrap_or_default());
            }
        }
        assert_eq!(
            matched,
            [
                "",
                " ",
                "\t",
                "\u{a0}",
                "N/A",
                " n/a ",
                "NULL\u{a0}",
                "k",
                "\u{212a}",
                " \u{212a}\u{3000}",
                "-"
            ]
        );
    }

    #[test]
    fn references_are_whole_names_outside_quotes() {
        let names = ["s0", "t1", "t12"];
        assert_eq!(references(r#"SELECT "t1", 't12', __ag_t1, $12 FROM t12 JOIN s0 ON x"#, &names), [0, 2]);
    }

    #[test]
    fn parse_counts_reads_duckdb_lists() {
        assert_eq!(parse_counts("[1, 2, 30]").unwrap(), [1, 2, 30]);
        assert_eq!(parse_counts("[]").unwrap(), Vec::<u64>::new());
    }
}
