//! Data tests (uniqueness, range, regex format) over a dataset's canonical Parquet copy:
//! how many values fail each test and which rows, computed in DuckDB.
//!
//! Row numbers are 1-based positions in the dataset (`file_row_number + 1`). Nulls pass every
//! test (completeness is the profile's business). User values — bounds and patterns — are
//! bound as parameters; column names are quoted.

use std::path::Path;

use anyhow::Context;
use duckdb::{Connection, params_from_iter, types::Value as Duck};

use super::{quote_identifier, quote_literal};

/// What a test asks of a column.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// No non-null value appears twice.
    Unique,
    /// min ≤ value ≤ max (either bound may be open).
    Range { min: Option<Bound>, max: Option<Bound> },
    /// The whole value (as text) matches the RE2 pattern.
    Regex(String),
}

/// A range test's bound: a whole number as given (exactly, however large), or another number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Whole(i128),
    Real(f64),
}

impl Bound {
    /// A JSON number as a bound: integers keep every digit (a double would round those
    /// beyond 2⁵³).
    pub fn of(number: &serde_json::Number) -> Option<Bound> {
        match (number.as_i64(), number.as_u64()) {
            (Some(i), _) => Some(Bound::Whole(i.into())),
            (_, Some(u)) => Some(Bound::Whole(u.into())),
            _ => number.as_f64().map(Bound::Real),
        }
    }

    /// The bound as a parameter compared with a column of type `ty`: an integer column is
    /// compared with a whole number exactly (a fractional bound becomes the nearest whole
    /// number inside the range, the same test for integers), any other column with a double,
    /// as DuckDB would compare them anyway. `lower`: whether this is the minimum.
    fn parameter(self, ty: &str, lower: bool) -> Duck {
        let integer = super::is_integer_type(ty);
        match self {
            Bound::Whole(i) if integer => Duck::HugeInt(i),
            Bound::Whole(i) => Duck::Double(i as f64),
            Bound::Real(x) if integer => {
                let edge = if lower { x.ceil() } else { x.floor() };
                // Beyond ±1e38 no integer column's value comes near the bound.
                if edge.abs() < 1e38 { Duck::HugeInt(edge as i128) } else { Duck::Double(x) }
            }
            Bound::Real(x) => Duck::Double(x),
        }
    }
}

/// One test of one column.
#[derive(Debug, Clone, PartialEq)]
pub struct DataTest {
    pub column: String,
    pub rule: Rule,
}

/// A test's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct TestOutcome {
    /// Non-null values tested.
    pub checked: u64,
    /// Values that fail (for `Unique`: occurrences after a value's first).
    pub failing: u64,
    /// The first failing rows, ascending, at most the cap asked for.
    pub rows: Vec<u64>,
}

/// The dataset with its row positions as `file_row_number` (a virtual column of
/// read_parquet), unless the file has a real column of that name, which hides it: then tests
/// count their failures but list no rows.
fn source(conn: &Connection, data: &Path) -> anyhow::Result<(String, bool)> {
    let path = quote_literal(&data.display().to_string());
    let clash: i64 = conn.query_row(
        &format!(
            "SELECT count(*) FROM (DESCRIBE SELECT * FROM read_parquet({path})) \
             WHERE lower(column_name) = 'file_row_number'"
        ),
        [],
        |r| r.get(0),
    )?;
    Ok(if clash == 0 {
        (format!("read_parquet({path}, file_row_number = true)"), true)
    } else {
        (format!("read_parquet({path})"), false)
    })
}

/// Runs every test; `progress` gets the share done (0–100).
pub fn run_tests(
    conn: &Connection,
    data: &Path,
    tests: &[DataTest],
    max_rows: u64,
    progress: &mut dyn FnMut(f64, &str),
) -> anyhow::Result<Vec<TestOutcome>> {
    let (src, numbered) = source(conn, data)?;
    let max_rows = if numbered { max_rows } else { 0 };
    let mut outcomes = Vec::with_capacity(tests.len());
    for (i, test) in tests.iter().enumerate() {
        progress(100.0 * i as f64 / tests.len().max(1) as f64, &format!("testing {}", test.column));
        let outcome = run_test(conn, &src, numbered, test, max_rows)
            .with_context(|| format!("running a {:?} test on {}", test.rule, test.column))?;
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

fn run_test(
    conn: &Connection,
    src: &str,
    numbered: bool,
    test: &DataTest,
    max_rows: u64,
) -> anyhow::Result<TestOutcome> {
    let c = quote_identifier(&test.column);
    let (checked, failing, rows) = match &test.rule {
        Rule::Unique => {
            // Values seen more than once, with the row of their first occurrence: every later
            // occurrence fails.
            let repeated = format!(
                "SELECT {c} AS v, min(file_row_number) AS first, count(*) AS n FROM {src} \
                 WHERE {c} IS NOT NULL GROUP BY {c} HAVING count(*) > 1"
            );
            if !numbered {
                let (checked, failing): (i64, i64) = conn.query_row(
                    &format!("SELECT count({c}), count({c}) - count(DISTINCT {c}) FROM {src}"),
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                return Ok(TestOutcome {
                    checked: checked.max(0) as u64,
                    failing: failing.max(0) as u64,
                    rows: Vec::new(),
                });
            }
            let checked: i64 = conn.query_row(&format!("SELECT count({c}) FROM {src}"), [], |r| r.get(0))?;
            let mut failing = 0i64;
            let mut rows = Vec::new();
            if checked > 0 {
                conn.execute_batch(&format!(
                    "CREATE OR REPLACE TEMPORARY TABLE agensium_repeated AS {repeated}"
                ))?;
                failing = conn.query_row(
                    "SELECT CAST(coalesce(sum(n - 1), 0) AS BIGINT) FROM agensium_repeated",
                    [],
                    |r| r.get(0),
                )?;
                if failing > 0 && max_rows > 0 {
                    rows = row_numbers(
                        conn,
                        &format!(
                            "SELECT s.file_row_number FROM {src} s JOIN agensium_repeated d ON s.{c} = d.v \
                             WHERE s.file_row_number > d.first"
                        ),
                        &[],
                        max_rows,
                    )?;
                }
                conn.execute_batch("DROP TABLE IF EXISTS agensium_repeated")?;
            }
            (checked, failing, rows)
        }
        Rule::Range { min, max } => {
            let ty: String = conn.query_row(
                &format!("SELECT column_type FROM (DESCRIBE SELECT {c} FROM {src})"),
                [],
                |r| r.get(0),
            )?;
            let mut bounds = Vec::new();
            let mut conditions = Vec::new();
            if let Some(min) = min {
                conditions.push(format!("{c} < ?"));
                bounds.push(min.parameter(&ty, true));
            }
            if let Some(max) = max {
                conditions.push(format!("{c} > ?"));
                bounds.push(max.parameter(&ty, false));
            }
            anyhow::ensure!(!conditions.is_empty(), "a range test needs a bound");
            // NaN is neither below nor above a bound (DuckDB orders it above every number,
            // which failed it against a maximum only).
            let fails = format!(
                "NOT coalesce(isnan(TRY_CAST({c} AS DOUBLE)), false) AND ({})",
                conditions.join(" OR ")
            );
            filtered(conn, src, &c, &fails, &bounds, max_rows)?
        }
        Rule::Regex(pattern) => {
            let fails = format!("{c} IS NOT NULL AND NOT regexp_full_match(CAST({c} AS VARCHAR), ?)");
            filtered(conn, src, &c, &fails, &[Duck::Text(pattern.clone())], max_rows)?
        }
    };
    Ok(TestOutcome { checked: checked.max(0) as u64, failing: failing.max(0) as u64, rows })
}

/// A test whose failing rows a condition picks: the values checked, the failing count, and the
/// first failing rows. `c` is the quoted column; `params` bind the condition's `?`s.
fn filtered(
    conn: &Connection,
    src: &str,
    c: &str,
    fails: &str,
    params: &[Duck],
    max_rows: u64,
) -> anyhow::Result<(i64, i64, Vec<u64>)> {
    let (checked, failing): (i64, i64) = conn.query_row(
        &format!("SELECT count({c}), count(*) FILTER (WHERE {fails}) FROM {src}"),
        params_from_iter(params.iter()),
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let rows = if failing > 0 && max_rows > 0 {
        row_numbers(conn, &format!("SELECT file_row_number FROM {src} WHERE {fails}"), params, max_rows)?
    } else {
        Vec::new()
    };
    Ok((checked, failing, rows))
}

/// Whether DuckDB accepts `pattern` as a regular expression: `Err` with its message if not.
/// (The regex crate's syntax is close to RE2's but not the same: DuckDB has the last word.)
pub fn check_pattern(conn: &Connection, pattern: &str) -> anyhow::Result<Result<(), String>> {
    match conn.query_row("SELECT regexp_full_match('', ?)", [pattern], |r| r.get::<_, Option<bool>>(0)) {
        Ok(_) => Ok(Ok(())),
        Err(duckdb::Error::DuckDBFailure(_, Some(message))) if message.contains("Invalid Input Error") => {
            Ok(Err(message.replace("Invalid Input Error: ", "")))
        }
        Err(e) => Err(e.into()),
    }
}

/// The first `limit` row numbers (1-based) that `query` (selecting `file_row_number`) yields.
fn row_numbers(conn: &Connection, query: &str, params: &[Duck], limit: u64) -> anyhow::Result<Vec<u64>> {
    let sql = format!("SELECT CAST(file_row_number + 1 AS BIGINT) FROM ({query}) ORDER BY 1 LIMIT {limit}");
    let mut statement = conn.prepare(&sql)?;
    let rows = statement.query_map(params_from_iter(params.iter()), |r| r.get::<_, i64>(0))?;
    rows.map(|r| Ok(r?.max(0) as u64)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(sql: &str) -> (tempfile::TempDir, std::path::PathBuf, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.parquet");
        let conn = Connection::open_in_memory().unwrap();
        super::super::parquet_fixture(&conn, &path, sql);
        (dir, path, conn)
    }

    fn run(conn: &Connection, path: &Path, column: &str, rule: Rule, cap: u64) -> TestOutcome {
        let test = DataTest { column: column.into(), rule };
        run_tests(conn, path, &[test], cap, &mut |_, _| {}).unwrap().remove(0)
    }

    #[test]
    fn unique_fails_every_repeat_after_the_first() {
        // rows: 1:a 2:b 3:a 4:NULL 5:NULL 6:a 7:c 8:b
        let (_d, path, conn) = fixture(
            "SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (3, 'a'), (4, NULL), (5, NULL), (6, 'a'), (7, 'c'), (8, 'b')) \
             t(i, \"we\"\"ird name\") ORDER BY i",
        );
        let outcome = run(&conn, &path, "we\"ird name", Rule::Unique, 10);
        assert_eq!(outcome, TestOutcome { checked: 6, failing: 3, rows: vec![3, 6, 8] });
        let capped = run(&conn, &path, "we\"ird name", Rule::Unique, 2);
        assert_eq!((capped.failing, capped.rows), (3, vec![3, 6]));
        let ids = run(&conn, &path, "i", Rule::Unique, 10);
        assert_eq!(ids, TestOutcome { checked: 8, failing: 0, rows: vec![] });
    }

    #[test]
    fn range_counts_values_outside_the_bounds() {
        let (_d, path, conn) =
            fixture("SELECT CASE WHEN i = 5 THEN NULL ELSE i * 10 END AS x FROM range(1, 11) t(i)");
        // values 10,20,30,40,NULL,60,70,80,90,100 at rows 1..10
        let both = run(
            &conn,
            &path,
            "x",
            Rule::Range { min: Some(Bound::Real(15.0)), max: Some(Bound::Real(85.0)) },
            100,
        );
        assert_eq!(both, TestOutcome { checked: 9, failing: 3, rows: vec![1, 9, 10] });
        let low = run(&conn, &path, "x", Rule::Range { min: Some(Bound::Real(30.0)), max: None }, 100);
        assert_eq!((low.failing, low.rows), (2, vec![1, 2]));
        let high = run(&conn, &path, "x", Rule::Range { min: None, max: Some(Bound::Real(100.0)) }, 100);
        assert_eq!(high.failing, 0);
    }

    #[test]
    fn regex_matches_whole_values_and_binds_the_pattern() {
        let (_d, path, conn) = fixture(
            "SELECT * FROM (VALUES (1, 'AB-12'), (2, 'ab-12'), (3, NULL), (4, 'AB-12x'), (5, 'CD-7')) t(i, code) \
             ORDER BY i",
        );
        let outcome = run(&conn, &path, "code", Rule::Regex("[A-Z]{2}-\\d+".into()), 100);
        assert_eq!(outcome, TestOutcome { checked: 4, failing: 2, rows: vec![2, 4] });
        // A pattern is data, never SQL.
        let hostile = run(&conn, &path, "code", Rule::Regex("x'; DROP TABLE t; --".into()), 100);
        assert_eq!(hostile.failing, 4);
        // Numbers are tested as their text.
        let numbers = run(&conn, &path, "i", Rule::Regex("[1-3]".into()), 100);
        assert_eq!((numbers.failing, numbers.rows), (2, vec![4, 5]));
    }

    #[test]
    fn duckdb_has_the_last_word_on_patterns() {
        let conn = Connection::open_in_memory().unwrap();
        assert_eq!(check_pattern(&conn, "[A-Z]{2}-\\d+").unwrap(), Ok(()));
        for bad in ["(", "[0-9]{1001}", "(?x)a b"] {
            assert!(check_pattern(&conn, bad).unwrap().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_real_file_row_number_column_gives_counts_without_rows() {
        let (_d, path, conn) = fixture(
            "SELECT * FROM (VALUES (10, 'a', 5), (20, 'a', 50), (30, 'b', 500)) t(file_row_number, s, x)",
        );
        let unique = run(&conn, &path, "s", Rule::Unique, 10);
        assert_eq!(unique, TestOutcome { checked: 3, failing: 1, rows: vec![] });
        let range = run(&conn, &path, "x", Rule::Range { min: None, max: Some(Bound::Real(60.0)) }, 10);
        assert_eq!(range, TestOutcome { checked: 3, failing: 1, rows: vec![] });
        let own =
            run(&conn, &path, "file_row_number", Rule::Range { min: Some(Bound::Real(15.0)), max: None }, 10);
        assert_eq!((own.checked, own.failing), (3, 1), "the user's column is tested like any other");
    }

    #[test]
    fn integers_beyond_a_double_are_compared_exactly() {
        // Three neighbours a double cannot tell apart (1.5e18 ± 1), and BIGINT's ends.
        let (_d, path, conn) = fixture(
            "SELECT * FROM (VALUES (1, 1500000000000000001), (2, 1500000000000000000), (3, 1499999999999999999), \
             (4, 9223372036854775807), (5, -9223372036854775808)) t(i, id) ORDER BY i",
        );
        let exact = Bound::Whole(1_500_000_000_000_000_000);
        let only = run(&conn, &path, "id", Rule::Range { min: Some(exact), max: Some(exact) }, 10);
        assert_eq!(only, TestOutcome { checked: 5, failing: 4, rows: vec![1, 3, 4, 5] });
        let at_most =
            run(&conn, &path, "id", Rule::Range { min: None, max: Some(Bound::Whole(i64::MAX.into())) }, 10);
        assert_eq!(at_most.failing, 0);
        let below = run(
            &conn,
            &path,
            "id",
            Rule::Range { min: None, max: Some(Bound::Whole(i64::MAX as i128 - 1)) },
            10,
        );
        assert_eq!(below.rows, vec![4]);
        // A fractional bound is the same test for integers as the nearest whole number inside.
        let fraction =
            run(&conn, &path, "id", Rule::Range { min: Some(Bound::Real(1.5e18 - 0.5e3)), max: None }, 10);
        assert_eq!(fraction.rows, vec![5]);
        let huge = run(
            &conn,
            &path,
            "id",
            Rule::Range { min: Some(Bound::Real(-1e300)), max: Some(Bound::Real(1e300)) },
            10,
        );
        assert_eq!(huge.failing, 0);
        // A JSON number keeps its digits.
        let number: serde_json::Number = serde_json::from_str("1500000000000000001").unwrap();
        assert_eq!(Bound::of(&number), Some(Bound::Whole(1_500_000_000_000_000_001)));
        let number: serde_json::Number = serde_json::from_str("18446744073709551615").unwrap();
        assert_eq!(Bound::of(&number), Some(Bound::Whole(u64::MAX.into())));
        let number: serde_json::Number = serde_json::from_str("2.5").unwrap();
        assert_eq!(Bound::of(&number), Some(Bound::Real(2.5)));
    }

    #[test]
    fn nan_is_neither_below_nor_above_a_bound() {
        let (_d, path, conn) = fixture(
            "SELECT x::DOUBLE AS x FROM (VALUES ('1'), ('2'), ('nan'), ('3'), ('NaN'), ('inf')) t(x)",
        );
        let failing = |min: Option<Bound>, max: Option<Bound>| {
            run(&conn, &path, "x", Rule::Range { min, max }, 10).failing
        };
        assert_eq!(failing(Some(Bound::Real(0.0)), Some(Bound::Real(10.0))), 1, "inf only");
        assert_eq!(failing(Some(Bound::Real(0.0)), None), 0);
        assert_eq!(failing(None, Some(Bound::Real(10.0))), 1);
        assert_eq!(failing(Some(Bound::Real(2.0)), None), 1, "1 only");
    }

    #[test]
    fn an_empty_dataset_passes_with_nothing_checked() {
        let (_d, path, conn) = fixture("SELECT 1 AS x, 'a' AS s WHERE false");
        assert_eq!(run(&conn, &path, "s", Rule::Unique, 10).checked, 0);
        assert_eq!(
            run(&conn, &path, "x", Rule::Range { min: Some(Bound::Real(0.0)), max: None }, 10).failing,
            0
        );
    }
}
