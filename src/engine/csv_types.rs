//! The column types of a delimited file, held by every row and not only the sampled ones.
//!
//! DuckDB's CSV reader chooses a column's type from a sample of the first rows (20,480), then
//! casts every later value leniently: `7.5` becomes 8 in a BIGINT column, `0x1F` 31, `1e2`
//! 100, a date with a time of day loses the time in a DATE column, and a value that does not
//! cast at all (`abc`) is rejected with its whole row. Here the typed columns are read as text
//! and cast in the same pass, strictly: a value the sniffer would not have taken for that type
//! raises an error. Only then is the file read again, to find every column whose values do
//! not all hold its type, and each is widened ([`Plan::wider`]: an integer column to DOUBLE
//! when every value is a plain decimal number DOUBLE holds exactly, a column of timestamps
//! some with a UTC offset and some without to TIMESTAMP WITH TIME ZONE, those without read as
//! UTC; otherwise to text) before a
//! final read (`engine::ingest` widens again should that read meet lines the check could not).
//! No value is rounded, truncated or dropped to fit an integer, date or time type, and each
//! widening is reported; DOUBLE columns are checked by the cast alone (see `strict_cast`).

use duckdb::Connection;

use super::{is_integer_type, quote_identifier, quote_literal};

/// Text of the error a strict cast raises: how `ingest` tells it from the input's own errors.
pub(crate) const STRICT_CAST_FAILED: &str =
    "agensium: a value after the sampled rows does not hold its column's type";

/// The most typed columns a file may have for every value to be checked: each costs its
/// expression's working vectors (about 0.2 MB), so wider files keep DuckDB's own reading.
pub(crate) const MAX_CHECKED_COLUMNS: usize = 1000;

/// An integer as the sniffer takes one: optional minus, no leading zeros, no `+`, `_`, hex,
/// fraction or exponent; blanks around it are allowed (DuckDB trims them).
const INTEGER: &str = r"\s*-?(0|[1-9][0-9]*)\s*";
/// A plain decimal number (an integer, a fraction, an exponent).
const DECIMAL: &str = r"\s*-?((0|[1-9][0-9]*)(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*";
/// The most significant digits a decimal number may have for DOUBLE to give it back exactly.
const DOUBLE_DIGITS: usize = 15;
/// The smallest positive normal DOUBLE: below it, digits are lost.
const DOUBLE_MIN_NORMAL: &str = "2.2250738585072014e-308";

/// A time of day as a TIME column holds it: no date, AM/PM, offset or digits past
/// microseconds (the cast would drop them).
/// (Digits past microseconds only when they are zeros, as .NET and SQL Server's `datetime2`
/// write seven: `10:00:00.1230000`.)
const TIME: &str = r"\s*[0-9]{1,2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{0,6}0*)?)?\s*";
/// An ISO date with an optional time of day (the body of [`TIMESTAMP`] and [`TIMESTAMP_TZ`]).
macro_rules! iso_timestamp {
    () => {
        r"\s*-?[0-9]{4,}-[0-9]{1,2}-[0-9]{1,2}([ T][0-9]{1,2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{0,6}0*)?)?)?\s*"
    };
}
/// A timestamp as a TIMESTAMP column holds it (the cast drops an offset, a zone name, AM/PM
/// and digits past microseconds, and reads `epoch`).
const TIMESTAMP: &str = iso_timestamp!();
/// A timestamp with an optional UTC offset (`Z`, `+02`, `+02:00`, `-0530`).
const TIMESTAMP_TZ: &str = concat!(iso_timestamp!(), r"([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)?\s*");
/// A timestamp with its UTC offset, as a TIMESTAMP WITH TIME ZONE column holds it.
const TIMESTAMP_OFFSET: &str = concat!(iso_timestamp!(), r"([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)\s*");
/// How a column of timestamps some of which carry a UTC offset and some not is read: as
/// TIMESTAMP WITH TIME ZONE, those without an offset as UTC (the engine's only time zone).
/// Not a DuckDB type: [`Plan::strict_cast`] knows it, and [`Plan::widen`] says so.
const NAIVE_AS_UTC: &str = "TIMESTAMP WITH TIME ZONE (naive as UTC)";
/// An ISO date (any year, BC) or an infinity, as a DATE column holds it.
const ISO_DATE: &str = r"\s*(-?[0-9]{4,}-[0-9]{1,2}-[0-9]{1,2}( \((?i:bc)\))?|[+-]?(?i:infinity))\s*";

/// What a value read with a sniffed date or timestamp format must hold: a digit, and four in a
/// row when the format has a four-digit year (`%Y`), which strptime also takes from one or two
/// digits: `01/02/03` among `%m/%d/%Y` dates would be the year 3. Such a column is read as text
/// instead, as with any value its sniffed type does not hold.
fn year_guard(format: &Option<String>) -> String {
    let full_year = format.as_deref().is_some_and(|f| f.contains("%Y"));
    quote_literal(if full_year { "[0-9]{4}" } else { "[0-9]" })
}

/// How a column of numbers written with a decimal comma (`2,5`, `-0,75`) is read, in a file
/// delimited by semicolons (Excel's exports where the comma is the decimal separator):
/// as DOUBLE, the comma read as a point. Not a DuckDB type: [`Plan::strict_cast`] knows it.
const DECIMAL_COMMA: &str = "DOUBLE (decimal comma)";
/// A number as [`DECIMAL_COMMA`] takes it: digits with at most one comma, no point (a
/// thousands separator, `1.234,5`, keeps the column text) and no exponent.
const DECIMAL_COMMA_NUMBER: &str = r"\s*[+-]?([0-9]+(,[0-9]*)?|,[0-9]+)\s*";

/// Whether DuckDB reads a column of this sniffed type as text anyway (a column empty in the
/// sample is VARCHAR too).
fn is_text(sniffed: &str) -> bool {
    matches!(sniffed, "VARCHAR" | "SQLNULL" | "NULL")
}

/// How one column is read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Read {
    /// As text (DuckDB sniffed VARCHAR, or the column was widened to text).
    Text,
    /// As text, then cast strictly to this DuckDB type.
    Typed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    name: String,
    /// The type DuckDB's sniffer chose from its sample.
    sniffed: String,
    read: Read,
}

/// How to read a delimited file's columns: DuckDB's sniffed types, cast strictly.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    columns: Vec<Column>,
    date_format: Option<String>,
    timestamp_format: Option<String>,
    /// The delimiter the sniffer found (or was given).
    pub(crate) delimiter: Option<char>,
    /// Whether the sniffer found (or was given) a quote character.
    pub(crate) quoted: bool,
    /// The line end the sniffer found, as sniff_csv writes it (`\n`, `\r\n`, `\r`).
    pub(crate) newline: Option<String>,
}

impl Plan {
    /// Sniffs the file with `options` (`read_csv`'s, after the path: encoding, delimiter,
    /// line size) as the reader does, skipping malformed lines (which `store_rejects` keeps
    /// aside). Blocking.
    pub(crate) fn sniff(conn: &Connection, path: &str, options: &str) -> duckdb::Result<Plan> {
        let (names, types, date_format, timestamp_format, delimiter, quote, newline) = conn.query_row(
            &format!(
                "SELECT list_transform(Columns, lambda c: c.name), list_transform(Columns, lambda c: c.type), \
                        DateFormat, TimestampFormat, Delimiter, Quote, NewLineDelimiter \
                 FROM sniff_csv({}, ignore_errors = true{options})",
                quote_literal(path)
            ),
            [],
            |r| {
                Ok((
                    r.get::<_, duckdb::types::Value>(0)?,
                    r.get::<_, duckdb::types::Value>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            },
        )?;
        // sniff_csv says `(empty)` when it found none.
        let found = |text: Option<String>| text.filter(|t| t != "(empty)" && !t.is_empty());
        let texts = |value: duckdb::types::Value| -> Vec<String> {
            match value {
                duckdb::types::Value::List(items) => items
                    .into_iter()
                    .map(|item| match item {
                        duckdb::types::Value::Text(text) => text,
                        _ => String::new(),
                    })
                    .collect(),
                _ => Vec::new(),
            }
        };
        let columns = texts(names)
            .into_iter()
            .zip(texts(types))
            .map(|(name, sniffed)| {
                // Parquet has no 128-bit integer: DuckDB would write HUGEINT as DOUBLE,
                // rounding it, so such integers stay text.
                let read = if is_text(&sniffed) || matches!(sniffed.as_str(), "HUGEINT" | "UHUGEINT") {
                    Read::Text
                } else {
                    Read::Typed(sniffed.clone())
                };
                Column { name, sniffed, read }
            })
            .collect();
        Ok(Plan {
            columns,
            date_format,
            timestamp_format,
            delimiter: found(delimiter).and_then(|d| d.chars().next()),
            quoted: found(quote).is_some(),
            newline: found(newline),
        })
    }

    /// Whether some column is read as another type than text.
    pub(crate) fn has_typed_columns(&self) -> bool {
        self.columns.iter().any(|c| c.read != Read::Text)
    }

    /// The columns' names, as the sniffer found them.
    pub(crate) fn names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }

    /// The plan with the columns at `positions` read as text.
    pub(crate) fn with_text(mut self, positions: &[usize]) -> Plan {
        for &i in positions {
            if let Some(column) = self.columns.get_mut(i) {
                column.read = Read::Text;
            }
        }
        self
    }

    /// Whether some column is read as text.
    pub(crate) fn has_text_columns(&self) -> bool {
        self.columns.iter().any(|c| c.read == Read::Text)
    }

    /// Reads as numbers the text columns that `comma` (the same file sniffed with
    /// `decimal_separator = ','`) types DOUBLE, and names them: a file delimited by semicolons
    /// whose numbers are written `2,5`. Nothing changes in other files, nor when the two sniffs
    /// do not see the same columns.
    pub(crate) fn with_decimal_commas(&mut self, comma: &Plan) -> Vec<String> {
        let same = self.columns.len() == comma.columns.len()
            && self.columns.iter().zip(&comma.columns).all(|(a, b)| a.name == b.name);
        if !same || self.delimiter != Some(';') {
            return Vec::new();
        }
        let mut names = Vec::new();
        for (column, other) in self.columns.iter_mut().zip(&comma.columns) {
            if column.read == Read::Text && is_text(&column.sniffed) && other.sniffed == "DOUBLE" {
                column.sniffed = "DOUBLE".into();
                column.read = Read::Typed(DECIMAL_COMMA.into());
                names.push(column.name.clone());
            }
        }
        names
    }

    /// In a file whose numbers are written with a decimal comma (`names`, from
    /// [`Plan::with_decimal_commas`], not empty), the columns of numbers with a point that a
    /// point cannot be told apart from a thousands separator in (`1.234`, `12.500`): the
    /// plain sniff types them DOUBLE, the comma sniff not. Read as text rather than a thousand
    /// times too small; returns their names.
    pub(crate) fn with_points_as_text(&mut self, comma: &Plan, names: &[String]) -> Vec<String> {
        if names.is_empty() || self.columns.len() != comma.columns.len() {
            return Vec::new();
        }
        let mut texts = Vec::new();
        for (column, other) in self.columns.iter_mut().zip(&comma.columns) {
            if column.read == Read::Typed("DOUBLE".into())
                && other.sniffed != "DOUBLE"
                && other.name == column.name
            {
                column.read = Read::Text;
                texts.push(column.name.clone());
            }
        }
        texts
    }

    /// What a notice says of how a column of `ty` (DATE or TIMESTAMP, as ingested) was read
    /// with the sniffed formats, when they are not ISO's: which of day and month comes first
    /// (`01/02/2024` is the 1st of February one way, the 2nd of January the other), and how
    /// two-digit years are read. `None` for other types and dates written year first.
    pub(crate) fn date_reading(&self, ty: &str) -> Option<String> {
        let format = match ty {
            "DATE" => self.date_format.as_deref()?,
            "TIMESTAMP" => self.timestamp_format.as_deref()?,
            _ => return None,
        };
        // A format that starts with the year (ISO's `%Y-%m-%d`, `%Y/%m/%d`) is not ambiguous.
        if format.starts_with("%Y") {
            return None;
        }
        let (day, month) = (format.find("%d")?, format.find("%m")?);
        let year = format.find("%y").or_else(|| format.find("%Y")).unwrap_or(usize::MAX);
        let order = if year < day.min(month) {
            "year first"
        } else if day < month {
            "day first"
        } else {
            "month first"
        };
        let century = if format.contains("%y") {
            "; two-digit years 69–99 as 1969–1999, 00–68 as 2000–2068"
        } else {
            ""
        };
        Some(format!("read as {format} ({order}{century})"))
    }

    /// Whether `other` reads the sampled rows as this does: the same columns, types and
    /// formats.
    pub(crate) fn reads_like(&self, other: &Plan) -> bool {
        self.columns == other.columns
            && self.date_format == other.date_format
            && self.timestamp_format == other.timestamp_format
            && self.delimiter == other.delimiter
    }

    /// How many columns are cast.
    pub(crate) fn typed(&self) -> usize {
        self.columns.iter().filter(|c| c.read != Read::Text).count()
    }

    /// Whether the file needs reading this way: a file of text columns, as DuckDB sniffs
    /// them, does not.
    pub(crate) fn needed(&self) -> bool {
        // A typed column, or one DuckDB would type but this reads as text (HUGEINT).
        self.columns.iter().any(|c| !is_text(&c.sniffed))
    }

    /// `read_csv`'s option reading every column as text.
    pub(crate) fn reader_options(&self) -> String {
        format!(", types = [{}]", vec!["'VARCHAR'"; self.columns.len()].join(", "))
    }

    /// The projection over the text columns that casts the typed ones, raising
    /// [`STRICT_CAST_FAILED`] on a value that does not hold its type. Every column is listed
    /// (`SELECT * REPLACE` binds in time quadratic in the columns replaced).
    pub(crate) fn select(&self) -> String {
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let v = quote_identifier(&c.name);
                match &c.read {
                    Read::Text => v,
                    Read::Typed(ty) => format!(
                        "CASE WHEN {v} IS NULL THEN NULL ELSE coalesce({}, error({})) END AS {v}",
                        self.strict_cast(ty, &v),
                        quote_literal(STRICT_CAST_FAILED)
                    ),
                }
            })
            .collect();
        format!("SELECT {}", columns.join(", "))
    }

    /// `v` (text) as `ty`, or NULL where the text is not a value of that type.
    fn strict_cast(&self, ty: &str, v: &str) -> String {
        let format = |f: &Option<String>, default: &str| quote_literal(f.as_deref().unwrap_or(default));
        if ty == DECIMAL_COMMA {
            // Of at most DOUBLE_DIGITS significant digits, or a fraction whose digits are the
            // DOUBLE's own shortest ones (`0,30000000000000004`, as pandas writes them): what
            // DOUBLE gives back exactly (an 18-digit identifier beside `2,5` would be rounded,
            // and merge with its neighbours), as the widening to DOUBLE requires.
            let double = format!("TRY_CAST(replace({v}, ',', '.') AS DOUBLE)");
            let digits = |x: &str, sep: &str| {
                format!("ltrim(replace(regexp_extract({x}, '([0-9{sep}]+)', 1), '{sep}', ''), '0')")
            };
            format!(
                "CASE WHEN regexp_full_match({v}, {}) \
                      AND (length({d}) <= {DOUBLE_DIGITS} \
                           OR (contains({v}, ',') AND rtrim({d}, '0') = rtrim({shortest}, '0'))) \
                 THEN {double} END",
                quote_literal(DECIMAL_COMMA_NUMBER),
                d = digits(v, ","),
                shortest = digits(&format!("CAST({double} AS VARCHAR)"), "."),
            )
        } else if is_integer_type(ty) {
            format!(
                "CASE WHEN regexp_full_match({v}, {}) THEN TRY_CAST({v} AS {ty}) END",
                quote_literal(INTEGER)
            )
        } else if ty == "DATE" && matches!(self.date_format.as_deref(), None | Some("%Y-%m-%d")) {
            // The cast takes a time of day after the date (and drops it), and `epoch`.
            format!(
                "CASE WHEN regexp_full_match({v}, {}) THEN TRY_CAST({v} AS DATE) END",
                quote_literal(ISO_DATE)
            )
        } else if ty == "DATE" {
            // strptime takes the whole text: a time of day after the date fails. It also
            // reads `infinity` and `epoch` as 1900-01-01 (DuckDB 2.0), hence the digit.
            format!(
                "CASE WHEN regexp_matches({v}, {}) THEN CAST(TRY_STRPTIME({v}, {}) AS DATE) END",
                year_guard(&self.date_format),
                format(&self.date_format, "")
            )
        } else if ty == "TIMESTAMP" && self.timestamp_format.is_some() {
            format!(
                "CASE WHEN regexp_matches({v}, {}) THEN TRY_STRPTIME({v}, {}) END",
                year_guard(&self.timestamp_format),
                format(&self.timestamp_format, "")
            )
        } else if let Some((shape, ty)) = match ty {
            "TIMESTAMP" => Some((TIMESTAMP, ty)),
            // (The cast would drop digits past microseconds: such a value keeps the column text.)
            // A value without an offset, beside ones with, widens the column to NAIVE_AS_UTC:
            // read as UTC, and said so.
            "TIMESTAMP WITH TIME ZONE" => Some((TIMESTAMP_OFFSET, ty)),
            NAIVE_AS_UTC => Some((TIMESTAMP_TZ, "TIMESTAMP WITH TIME ZONE")),
            "TIME" => Some((TIME, ty)),
            _ => None,
        } {
            format!(
                "CASE WHEN regexp_full_match({v}, {}) THEN TRY_CAST({v} AS {ty}) END",
                quote_literal(shape)
            )
        } else if ty == "BOOLEAN" {
            // The cast also takes 1 and 0, which the sniffer types as integers (a test of two
            // substrings costs less than a regular expression on every value).
            format!(
                "CASE WHEN NOT (contains({v}, '0') OR contains({v}, '1')) THEN TRY_CAST({v} AS BOOLEAN) END"
            )
        } else {
            // DOUBLE: the cast alone. Checking its shape too (`1_000`, `1e400` read as
            // infinity) made a file of 100 DOUBLE and 100 BIGINT columns 1.35 times slower
            // to read, for values real files do not hold.
            format!("TRY_CAST({v} AS {ty})")
        }
    }

    /// The query that reads the whole file (`from`: the reader with [`Plan::reader_options`])
    /// and answers, per typed column, whether every value holds its type, and, for a column
    /// that has a wider type ([`Plan::wider`]), whether every value holds that.
    fn check_query(&self, from: &str) -> Option<(String, usize)> {
        let mut checks = Vec::new();
        for c in &self.columns {
            let Read::Typed(ty) = &c.read else { continue };
            let v = quote_identifier(&c.name);
            let all =
                |holds: String| format!("coalesce(bool_and({v} IS NULL OR coalesce({holds}, false)), true)");
            checks.push(all(format!("{} IS NOT NULL", self.strict_cast(ty, &v))));
            for (_, holds) in self.wider(ty, &v) {
                checks.push(all(holds));
            }
        }
        (!checks.is_empty()).then(|| (format!("SELECT {} FROM {from}", checks.join(", ")), checks.len()))
    }

    /// The types a column of `ty` may widen to before text, in order of preference, each with
    /// the test every value (`v`, text) must pass for it.
    fn wider(&self, ty: &str, v: &str) -> Vec<(&'static str, String)> {
        let mut wider: Vec<(&'static str, String)> = self.first_wider(ty, v).into_iter().collect();
        // In a file delimited by semicolons, integers in the sampled rows and numbers written
        // with a decimal comma after them (`2,5`): numbers too.
        if is_integer_type(ty) && self.delimiter == Some(';') {
            wider.push((
                DECIMAL_COMMA,
                format!(
                    "regexp_full_match({v}, {}) AND {} IS NOT NULL",
                    quote_literal(DECIMAL_COMMA_NUMBER),
                    self.strict_cast(DECIMAL_COMMA, v)
                ),
            ));
        }
        wider
    }

    /// The type a column of `ty` widens to first (see [`Plan::wider`]), with its test.
    fn first_wider(&self, ty: &str, v: &str) -> Option<(&'static str, String)> {
        // In a file whose numbers are written with a decimal comma, a point may separate
        // thousands (`1.234`): a column of whole numbers with such a value after the sampled
        // rows is text, as one with it in the sampled rows is.
        let commas = self.columns.iter().any(|c| c.read == Read::Typed(DECIMAL_COMMA.into()));
        if is_integer_type(ty) && !(self.delimiter == Some(';') && commas) {
            // A plain decimal number DOUBLE gives back exactly: of at most DOUBLE_DIGITS
            // significant digits, or with a fraction or exponent whose digits are the DOUBLE's
            // own shortest ones (`0.3333333333333333`, as a workbook's cells are written; an
            // integer beyond 64 bits stays text, as in the sampled rows); finite and normal as
            // a DOUBLE (not 1e400, nor 1e-400 turned to 0).
            let digits =
                |x: &str| format!("ltrim(replace(regexp_extract({x}, '([0-9.]+)', 1), '.', ''), '0')");
            let double = format!("TRY_CAST({v} AS DOUBLE)");
            Some((
                "DOUBLE",
                format!(
                    "regexp_full_match({v}, {decimal}) AND (length({d}) <= {DOUBLE_DIGITS} \
                     OR (regexp_matches({v}, '[.eE]') AND rtrim({d}, '0') = rtrim({shortest}, '0'))) \
                     AND isfinite({double}) AND ({d} = '' OR abs({double}) >= {DOUBLE_MIN_NORMAL})",
                    decimal = quote_literal(DECIMAL),
                    d = digits(v),
                    shortest = digits(&format!("CAST({double} AS VARCHAR)")),
                ),
            ))
        } else if (ty == "TIMESTAMP" && self.timestamp_format.is_none()) || ty == "TIMESTAMP WITH TIME ZONE" {
            // Instants, some with a UTC offset (`Z`, `+02:00`) and some without.
            Some((
                NAIVE_AS_UTC,
                format!(
                    "regexp_full_match({v}, {}) AND TRY_CAST({v} AS TIMESTAMP WITH TIME ZONE) IS NOT NULL",
                    quote_literal(TIMESTAMP_TZ)
                ),
            ))
        } else {
            None
        }
    }

    /// Reads the whole file once (`from` as in [`Plan::check_query`]) and widens every typed
    /// column some value of which does not hold its type. Returns a notice per widened
    /// column. Blocking; use a connection that keeps no rejects the caller needs.
    pub(crate) fn widen(&mut self, conn: &Connection, from: &str) -> duckdb::Result<Vec<String>> {
        let Some((query, count)) = self.check_query(from) else { return Ok(Vec::new()) };
        let answers: Vec<bool> =
            conn.query_row(&query, [], |r| (0..count).map(|i| r.get::<_, bool>(i)).collect())?;
        let mut answers = answers.into_iter();
        let mut notices = Vec::new();
        let wider: Vec<Vec<&'static str>> = self
            .columns
            .iter()
            .map(|c| match &c.read {
                Read::Typed(ty) => self.wider(ty, "v").into_iter().map(|(to, _)| to).collect(),
                Read::Text => Vec::new(),
            })
            .collect();
        // What each column widens to (`None`: it holds its type), decided for all first.
        let mut decided: Vec<Option<&'static str>> = Vec::with_capacity(self.columns.len());
        for (c, wider) in self.columns.iter().zip(&wider) {
            if c.read == Read::Text {
                decided.push(None);
                continue;
            }
            let holds = answers.next().unwrap_or(false);
            let fits: Vec<bool> = wider.iter().map(|_| answers.next().unwrap_or(false)).collect();
            decided.push(if holds {
                None
            } else {
                Some(wider.iter().zip(fits).find(|(_, fits)| *fits).map_or("text", |(to, _)| *to))
            });
        }
        // In a file whose numbers are written with a decimal comma — found now or before — a
        // point may separate thousands: a column of whole numbers with `1.234` is text.
        let commas = self.columns.iter().any(|c| c.read == Read::Typed(DECIMAL_COMMA.into()))
            || decided.contains(&Some(DECIMAL_COMMA));
        if self.delimiter == Some(';') && commas {
            for (c, decision) in self.columns.iter().zip(decided.iter_mut()) {
                if *decision == Some("DOUBLE") && matches!(&c.read, Read::Typed(ty) if is_integer_type(ty)) {
                    *decision = Some("text");
                }
            }
        }
        for (c, decision) in self.columns.iter_mut().zip(decided) {
            let Some(called) = decision else { continue };
            c.read = if called == "text" { Read::Text } else { Read::Typed(called.into()) };
            if called == NAIVE_AS_UTC {
                notices.push(format!(
                    "column {:?} holds timestamps with a UTC offset and timestamps without one: it is read as \
                     timestamps with a time zone, those without an offset as UTC",
                    c.name
                ));
                continue;
            }
            if called == DECIMAL_COMMA {
                notices.push(format!(
                    "column {:?} holds numbers written with a decimal comma (2,5) after whole numbers: they are \
                     read as numbers",
                    c.name
                ));
                continue;
            }
            notices.push(format!(
                "column {:?} is read as {called}: DuckDB took it for {} from the first rows, but \
                 some values are not {} values, and reading them as such would have changed or \
                 dropped them",
                c.name, c.sniffed, c.sniffed
            ));
        }
        Ok(notices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(body: &str) -> (Plan, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        std::fs::write(&path, body).unwrap();
        let conn = Connection::open_in_memory().unwrap();
        (Plan::sniff(&conn, &path.display().to_string(), "").unwrap(), dir)
    }

    #[test]
    fn sniffs_names_types_and_formats() {
        let (p, _dir) =
            plan("id,d,t,s\n1,31/01/2024,31/01/2024 10:00:00,x\n2,01/02/2024,01/02/2024 11:00:00,y\n");
        let read: Vec<_> = p.columns.iter().map(|c| (c.name.as_str(), c.read.clone())).collect();
        assert_eq!(
            read,
            vec![
                ("id", Read::Typed("BIGINT".into())),
                ("d", Read::Typed("DATE".into())),
                ("t", Read::Typed("TIMESTAMP".into())),
                ("s", Read::Text)
            ]
        );
        assert_eq!(p.date_format.as_deref(), Some("%d/%m/%Y"));
        assert_eq!(p.timestamp_format.as_deref(), Some("%d/%m/%Y %H:%M:%S"));
        assert_eq!(p.typed(), 3);
        assert_eq!((p.delimiter, p.quoted, p.newline.as_deref()), (Some(','), false, Some("\\n")));
        let (quoted, _dir) = plan("a;b\n\"x;1\";y\n\"z\";w\n");
        assert_eq!((quoted.delimiter, quoted.quoted), (Some(';'), true));
        assert_eq!(plan("a,b\nx,y\n").0.typed(), 0);
        // Integers beyond 64 bits would be written to Parquet as DOUBLE, rounded: text.
        let (huge, _dir) = plan("n\n99999999999999999999\n1\n");
        assert_eq!((huge.columns[0].sniffed.as_str(), huge.typed()), ("HUGEINT", 0));
    }

    /// `text` cast by `plan`'s strict cast to `ty`, as text.
    fn cast_with(conn: &Connection, plan: &Plan, ty: &str, text: &str) -> Option<String> {
        conn.query_row(
            &format!("SELECT CAST({} AS VARCHAR) FROM (SELECT ?::VARCHAR AS v)", plan.strict_cast(ty, "v")),
            [text],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[test]
    fn strict_casts_take_what_the_sniffer_takes_and_nothing_it_would_not() {
        let conn = Connection::open_in_memory().unwrap();
        let p = Plan {
            columns: Vec::new(),
            date_format: None,
            timestamp_format: None,
            delimiter: None,
            quoted: false,
            newline: None,
        };
        let cast = |ty: &str, text: &str| cast_with(&conn, &p, ty, text);
        assert_eq!(cast("BIGINT", " 12 ").as_deref(), Some("12"));
        assert_eq!(cast("BIGINT", "-0").as_deref(), Some("0"));
        for lenient in ["7.5", "0x1F", "1e2", "+12", "1_000", "007", "abc", "99999999999999999999", ""] {
            assert_eq!(cast("BIGINT", lenient), None, "{lenient}");
        }
        assert_eq!(cast("DATE", "2024-1-5").as_deref(), Some("2024-01-05"));
        assert_eq!(cast("DATE", "2024-02-01 13:45:00"), None);
        for kept in ["infinity", "-infinity", "10000-01-01", "0044-03-15 (BC)"] {
            assert!(cast("DATE", kept).is_some(), "{kept}");
        }
        assert_eq!(cast("TIMESTAMP", "2024-01-05 10:00:00.").as_deref(), Some("2024-01-05 10:00:00"));
        assert_eq!(cast("DATE", "epoch"), None);
        assert_eq!(cast("TIMESTAMP", "2024-02-01 13:45:00.5").as_deref(), Some("2024-02-01 13:45:00.5"));
        assert_eq!(cast("TIMESTAMP", "2024-02-01T13:45").as_deref(), Some("2024-02-01 13:45:00"));
        assert_eq!(cast("TIMESTAMP", "2024-02-01").as_deref(), Some("2024-02-01 00:00:00"));
        for lossy in ["2024-02-29 23:59:59+02:00", "2024-02-29 23:59:59Z", "2024-02-29 23:59:59.123456789"] {
            assert_eq!(cast("TIMESTAMP", lossy), None, "{lossy}");
        }
        for lossy in ["10:00:00+02", "10:30:00 PM", "2024-03-01 10:00:00", "2024-03-01", "10:00:00 junk"] {
            assert_eq!(cast("TIME", lossy), None, "{lossy}");
        }
        assert_eq!(cast("TIME", "10:00:00.25").as_deref(), Some("10:00:00.25"));
        assert_eq!(cast("TIMESTAMP", "epoch"), None);
        assert_eq!(cast("DOUBLE", "abc"), None);
        for kept in ["-1.5e3", ".5", "inf", "NaN", "0", "0.0e-5"] {
            assert!(cast("DOUBLE", kept).is_some(), "{kept}");
        }
        assert_eq!(cast("BOOLEAN", "1"), None);
        assert_eq!(cast("BOOLEAN", " 0 "), None);
        assert_eq!(cast("BOOLEAN", "False").as_deref(), Some("false"));
        assert_eq!(cast("DOUBLE", "abc"), None);
        assert_eq!(cast("BOOLEAN", "yes").as_deref(), Some("true"));

        let us = Plan {
            date_format: Some("%m/%d/%Y".into()),
            timestamp_format: Some("%m/%d/%Y %H:%M:%S".into()),
            ..p
        };
        let cast = |ty: &str, text: &str| cast_with(&conn, &us, ty, text);
        assert_eq!(cast("DATE", "01/02/2003").as_deref(), Some("2003-01-02"));
        assert_eq!(cast("DATE", "01/02/03"), None, "a two-digit year is not the year 3");
        assert_eq!(cast("TIMESTAMP", "01/02/2003 10:00:00").as_deref(), Some("2003-01-02 10:00:00"));
        assert_eq!(cast("TIMESTAMP", "01/02/03 10:00:00"), None);

        assert_eq!(cast(DECIMAL_COMMA, " -0,75 ").as_deref(), Some("-0.75"));
        assert_eq!(cast(DECIMAL_COMMA, "3").as_deref(), Some("3.0"));
        assert_eq!(cast(DECIMAL_COMMA, ",5").as_deref(), Some("0.5"));
        for not in ["2.5", "1.234,5", "1,2,3", "1e3", "abc", ","] {
            assert_eq!(cast(DECIMAL_COMMA, not), None, "{not}");
        }
    }

    #[test]
    fn numbers_with_a_decimal_comma_are_read_as_numbers_where_commas_do_not_delimit() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let sniff = |body: &str| {
            let path = dir.path().join("f.csv");
            std::fs::write(&path, body).unwrap();
            let path = path.display().to_string();
            let mut plan = Plan::sniff(&conn, &path, "").unwrap();
            let comma = Plan::sniff(&conn, &path, ", decimal_separator = ','").unwrap();
            let named = plan.with_decimal_commas(&comma);
            let from = format!("read_csv({}{})", quote_literal(&path), plan.reader_options());
            let widened = plan.widen(&conn, &from).unwrap();
            let values: Vec<Option<f64>> = if plan.columns[1].read == Read::Text {
                Vec::new()
            } else {
                let mut statement =
                    conn.prepare(&format!("SELECT amount FROM ({} FROM {from})", plan.select())).unwrap();
                statement.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
            };
            (plan.columns[1].read.clone(), named, widened, values)
        };
        let (read, named, widened, values) = sniff("name;amount\na;2,5\nb;3\nc;-0,75\nd;\n");
        assert_eq!(read, Read::Typed(DECIMAL_COMMA.into()));
        assert_eq!(named, ["amount"]);
        assert!(widened.is_empty());
        assert_eq!(values, vec![Some(2.5), Some(3.0), Some(-0.75), None]);
        // A value past the sampled rows with a thousands separator: the column is text.
        let mut body = String::from("name;amount\n");
        for i in 0..30_000 {
            body.push_str(&format!("n{i};{i},5\n"));
        }
        body.push_str("z;1.234,5\n");
        let (read, _, widened, _) = sniff(&body);
        assert_eq!(read, Read::Text, "{widened:?}");
        // A column of numbers with points beside one with commas: the point may be a thousands
        // separator, so it is text.
        let path = dir.path().join("g.csv");
        std::fs::write(&path, "id;amount;qty\n1;2,5;1.234\n2;3,5;12.500\n3;4,25;7.000\n").unwrap();
        let path = path.display().to_string();
        let mut plan = Plan::sniff(&conn, &path, "").unwrap();
        let comma = Plan::sniff(&conn, &path, ", decimal_separator = ','").unwrap();
        let named = plan.with_decimal_commas(&comma);
        assert_eq!(named, ["amount"]);
        assert_eq!(plan.with_points_as_text(&comma, &named), ["qty"]);
        assert_eq!(plan.columns[2].read, Read::Text);
        assert_eq!(plan.columns[0].read, Read::Typed("BIGINT".into()));
        // Other files are left alone: a TSV's `12,500` more likely separates thousands.
        let (read, named, _, _) = sniff("name\tpopulation\na\t12,500\nb\t3,400\nc\t999\n");
        assert_eq!((read, named.len()), (Read::Text, 0));
        // Comma-delimited files are left alone (a quoted "2,5" there is text).
        let (read, named, _, _) = sniff("name,amount\na,\"2,5\"\nb,\"3,5\"\n");
        assert_eq!((read, named.len()), (Read::Text, 0));
    }

    #[test]
    fn a_two_digit_year_among_four_digit_ones_makes_the_column_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        let mut body = String::from("d\n");
        for day in 1..=28 {
            body.push_str(&format!("01/{day:02}/2003\n"));
        }
        body.push_str("01/02/03\n");
        std::fs::write(&path, body).unwrap();
        let conn = Connection::open_in_memory().unwrap();
        let path = path.display().to_string();
        let mut plan = Plan::sniff(&conn, &path, "").unwrap();
        assert_eq!(plan.columns[0].read, Read::Typed("DATE".into()));
        let from = format!("read_csv({}{})", quote_literal(&path), plan.reader_options());
        let notices = plan.widen(&conn, &from).unwrap();
        assert_eq!(plan.columns[0].read, Read::Text, "{notices:?}");
    }
}
