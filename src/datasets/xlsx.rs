//! Excel workbooks: one sheet is converted to CSV (cached formula values, dates as ISO dates)
//! for DuckDB to ingest. A workbook is a zip: its declared uncompressed size is checked first,
//! so a zip bomb is refused before anything is inflated, then each part is inflated once,
//! to nowhere, to check that it holds no more than it declares.

use std::io::Write;
use std::path::Path;

use calamine::{DataRef, Reader, Xlsx, open_workbook};
use chrono::Timelike;

use crate::engine::ingest::Cell;
use crate::error::AppError;

/// Largest total uncompressed size of a workbook's parts.
pub const MAX_UNCOMPRESSED_BYTES: u64 = 1 << 30;

fn bad(message: impl Into<String>) -> AppError {
    AppError::bad_input("file", message)
}

/// Whether a zip file is an Excel workbook (has `xl/workbook.xml`), refusing zip bombs.
pub fn check_workbook(path: &Path, max_uncompressed: u64) -> Result<(), AppError> {
    let file = std::fs::File::open(path).map_err(AppError::internal)?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|_| bad("the zip file is damaged or truncated"))?;
    let mut total: u64 = 0;
    let mut is_workbook = false;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|_| bad("the zip file is damaged or truncated"))?;
        total = total.saturating_add(entry.size());
        is_workbook |= entry.name() == "xl/workbook.xml";
    }
    if !is_workbook {
        return Err(bad("the zip file is not an Excel .xlsx workbook"));
    }
    if total > max_uncompressed {
        return Err(bad(format!(
            "the workbook expands to {total} bytes, more than the {max_uncompressed} bytes allowed"
        )));
    }
    // The sizes are the archive's own word, which neither zip nor calamine holds it to: each
    // part is inflated once, to nowhere, and one that holds more than it declares is refused
    // (a part declaring a kilobyte could inflate to gigabytes in calamine's memory).
    for i in 0..archive.len() {
        let mut entry =
            archive.by_index(i).map_err(|_| bad("the zip file is damaged, truncated or encrypted"))?;
        let (name, declared) = (entry.name().to_string(), entry.size());
        let inflated = std::io::copy(
            &mut std::io::Read::take(&mut entry, declared.saturating_add(1)),
            &mut std::io::sink(),
        )
        .map_err(|_| bad(format!("the workbook's part {name:?} is damaged")))?;
        if inflated > declared {
            return Err(bad(format!(
                "the workbook's part {name:?} expands to more than the {declared} bytes it declares"
            )));
        }
    }
    Ok(())
}

/// Most cells (rows × columns, empty ones included) a sheet may span: a sparse sheet with
/// one cell in A1 and one in XFD1048576 would otherwise become billions of empty fields.
pub const MAX_CELLS: u64 = 100_000_000;

/// A sheet spanning more than this many cells must hold a value in at least one in
/// [`MAX_EMPTY_PER_VALUE`] of them: two stray cells far apart (1.5 KB of workbook) made a
/// 100 MB CSV of empty fields, which held the ingest slot for 40 s before being refused.
const SPARSE_FLOOR: u64 = 10_000_000;
const MAX_EMPTY_PER_VALUE: u64 = 100;

/// A sheet written as CSV by [`sheet_to_csv`].
#[derive(Debug)]
pub struct SheetCsv {
    /// Cells holding Excel errors, read as empty.
    pub notices: Vec<String>,
    /// The CSV's columns (by position) whose cells below the first row are all text cells:
    /// to be read as text, as the workbook holds them (`1.10`, `1E3`, `00123` typed as text).
    pub text_columns: Vec<usize>,
}

/// Writes one sheet (the first visible worksheet, or `sheet`) as CSV with a header row. Cells
/// are streamed twice (extent, then values): no grid is ever held in memory.
pub fn sheet_to_csv(path: &Path, sheet: Option<&str>, out: &Path) -> Result<SheetCsv, AppError> {
    let unreadable = |e: calamine::XlsxError| bad(format!("the workbook could not be read: {e}"));
    let mut workbook: Xlsx<_> = open_workbook(path).map_err(unreadable)?;
    let names = workbook.sheet_names();
    let name = match sheet {
        // As Excel names sheets: exactly, else whatever the case (Excel allows no two sheets
        // whose names differ only in case).
        Some(wanted) => names
            .iter()
            .find(|n| n.as_str() == wanted)
            .or_else(|| names.iter().find(|n| n.to_lowercase() == wanted.to_lowercase()))
            .cloned()
            .ok_or_else(|| {
                AppError::bad_input("sheet", format!("no sheet named {wanted:?}; the sheets are {names:?}"))
            })?,
        // The first worksheet a user sees: not a hidden one (old data left in the workbook), not
        // a chart; the first sheet when every one is hidden.
        None => workbook
            .sheets_metadata()
            .iter()
            .find(|s| s.typ == calamine::SheetType::WorkSheet && s.visible == calamine::SheetVisible::Visible)
            .map(|s| s.name.clone())
            .or_else(|| names.first().cloned())
            .ok_or_else(|| bad("the workbook has no sheet"))?,
    };

    // The table is the cells' bounding box: a sheet whose data starts below or right of A1
    // (a blank margin) starts at its first row and column, which hold the header.
    let mut extent: Option<[u32; 4]> = None;
    let mut filled: u64 = 0;
    let mut shapes: std::collections::BTreeMap<u32, DateShape> = std::collections::BTreeMap::new();
    let mut empty_cells = false;
    {
        let mut cells = workbook.worksheet_cells_reader(&name).map_err(unreadable)?;
        while let Some(cell) = cells.next_cell().map_err(unreadable)? {
            if matches!(cell.get_value(), DataRef::Empty) {
                empty_cells = true;
                continue;
            }
            empty_cells = empty_cells || blank(cell.get_value());
            filled += 1;
            let (r, c) = cell.get_position();
            if let DataRef::DateTime(dt) = cell.get_value() {
                shapes.entry(c).or_default().add(dt);
            }
            extent = Some(
                extent.map_or([r, c, r, c], |[fr, fc, lr, lc]| [fr.min(r), fc.min(c), lr.max(r), lc.max(c)]),
            );
        }
    }
    let Some([first_row, first_col, last_row, last_col]) = extent else {
        let others: Vec<&String> = names.iter().filter(|n| **n != name).collect();
        return Err(if sheet.is_none() && !others.is_empty() {
            bad(format!("sheet {name:?} is empty; name another with sheet (the sheets are {names:?})"))
        } else {
            bad(format!("sheet {name:?} is empty"))
        });
    };
    let (rows, cols) = (u64::from(last_row - first_row) + 1, u64::from(last_col - first_col) + 1);
    if rows > 1_048_576 || cols > 16_384 || rows.saturating_mul(cols) > MAX_CELLS {
        return Err(bad(format!(
            "sheet {name:?} spans {rows} rows by {cols} columns, more than the {MAX_CELLS} cells allowed"
        )));
    }
    let spanned = rows * cols;
    if spanned > SPARSE_FLOOR && spanned > filled.saturating_mul(MAX_EMPTY_PER_VALUE) {
        return Err(bad(format!(
            "sheet {name:?} spans {rows} rows by {cols} columns but holds only {filled} values: \
             delete the stray cells far from the table (or save the table alone as CSV)"
        )));
    }

    let file = std::fs::File::create(out).map_err(AppError::internal)?;
    let mut writer = std::io::BufWriter::new(file);
    let mut line = vec![String::new(); cols as usize];
    let mut current: u32 = first_row;
    let flush =
        |line: &mut Vec<String>, writer: &mut std::io::BufWriter<std::fs::File>| -> Result<(), AppError> {
            let fields: Vec<String> = line.iter_mut().map(|f| csv_field(&std::mem::take(f))).collect();
            writeln!(writer, "{}", fields.join(",")).map_err(AppError::internal)
        };
    // Per column: the header, and the data cells holding an Excel error with the first one;
    // whether its data cells hold text, and anything else.
    let mut headers: Vec<String> = vec![String::new(); cols as usize];
    let mut kinds: Vec<(bool, bool)> = vec![(false, false); cols as usize];
    let mut errors: std::collections::BTreeMap<u32, (u64, String)> = std::collections::BTreeMap::new();
    let mut cells = workbook.worksheet_cells_reader(&name).map_err(unreadable)?;
    while let Some(cell) = cells.next_cell().map_err(unreadable)? {
        let (r, c) = cell.get_position();
        if matches!(cell.get_value(), DataRef::Empty) || c > last_col || c < first_col || r < first_row {
            continue;
        }
        match cell.get_value() {
            DataRef::Error(e) if r > first_row => {
                errors.entry(c).or_insert_with(|| (0, e.to_string())).0 += 1
            }
            value if r == first_row => {
                headers[(c - first_col) as usize] = cell_text(value, DateShape::default())
            }
            DataRef::String(_) | DataRef::SharedString(_) => kinds[(c - first_col) as usize].0 = true,
            _ => kinds[(c - first_col) as usize].1 = true,
        }
        while current < r {
            flush(&mut line, &mut writer)?;
            current += 1;
        }
        line[(c - first_col) as usize] =
            cell_text(cell.get_value(), shapes.get(&c).copied().unwrap_or_default());
    }
    flush(&mut line, &mut writer)?;
    writer.flush().map_err(AppError::internal)?;
    let mut notices: Vec<String> = errors
        .into_iter()
        .map(|(c, (n, first))| {
            let header = &headers[(c - first_col) as usize];
            let cells = if n == 1 { "cell" } else { "cells" };
            format!(
                "{n} {cells} of column {} ({header:?}) hold an Excel error ({first}…): read as empty",
                column_letters(c)
            )
        })
        .collect();
    // A cell written without a value (styled, or a formula never calculated) may be a formula
    // whose result the workbook does not hold: openpyxl and other writers that do not
    // calculate save formulas so. Only then are the cells read a third time, with their
    // formulas.
    if empty_cells {
        // (The workbook's shared strings are held once at a time; the notice is best effort:
        // a formula the reader cannot parse does not refuse a sheet whose values it read.)
        drop(cells);
        drop(workbook);
        let uncalculated = uncalculated_formulas(path, &name, [first_row, first_col, last_row, last_col])
            .unwrap_or_default();
        notices.extend(uncalculated.into_iter().map(|(c, n)| {
            let header = &headers[(c - first_col) as usize];
            let cells = if n == 1 { "cell" } else { "cells" };
            format!(
                "{n} {cells} of column {} ({header:?}) hold a formula with no saved result (the \
                 workbook was written by a program that does not calculate formulas): read as empty; \
                 open and save the workbook in Excel or LibreOffice to keep the results",
                column_letters(c)
            )
        }));
    }
    let text_columns =
        kinds.iter().enumerate().filter(|(_, (text, other))| *text && !*other).map(|(i, _)| i).collect();
    Ok(SheetCsv { notices, text_columns })
}

/// Per column of the table (`[first_row, first_col, last_row, last_col]`), how many data cells
/// hold a formula but no value. The sheet's cells are read with their values and with their
/// formulas side by side (two readers: each gives every cell element, in the same order).
fn uncalculated_formulas(
    path: &Path,
    sheet: &str,
    [first_row, first_col, last_row, last_col]: [u32; 4],
) -> Result<std::collections::BTreeMap<u32, u64>, AppError> {
    let unreadable = |e: calamine::XlsxError| bad(format!("the workbook could not be read: {e}"));
    let mut for_values: Xlsx<_> = open_workbook(path).map_err(unreadable)?;
    let mut for_formulas: Xlsx<_> = open_workbook(path).map_err(unreadable)?;
    let mut values = for_values.worksheet_cells_reader(sheet).map_err(unreadable)?;
    let mut formulas = for_formulas.worksheet_cells_reader(sheet).map_err(unreadable)?;
    let mut counts = std::collections::BTreeMap::new();
    while let (Some(value), Some(formula)) =
        (values.next_cell().map_err(unreadable)?, formulas.next_formula().map_err(unreadable)?)
    {
        let (r, c) = value.get_position();
        if formula.get_position() != (r, c) {
            // Not the same cells after all: no notice rather than a wrong one.
            return Ok(std::collections::BTreeMap::new());
        }
        if blank(value.get_value())
            && !formula.get_value().is_empty()
            && r > first_row
            && r <= last_row
            && (first_col..=last_col).contains(&c)
        {
            *counts.entry(c).or_insert(0u64) += 1;
        }
    }
    Ok(counts)
}

/// Whether a cell holds no value: empty, or an empty text (openpyxl saves a formula without
/// its result as `<f>…</f><v />`, which calamine reads as an empty string).
fn blank(value: &DataRef<'_>) -> bool {
    match value {
        DataRef::Empty => true,
        DataRef::String(s) => s.is_empty(),
        DataRef::SharedString(s) => s.is_empty(),
        _ => false,
    }
}

/// A column's letters as Excel names it (0 → A, 26 → AA).
fn column_letters(index: u32) -> String {
    let mut n = index + 1;
    let mut letters = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(char::from(b'A' + rem as u8));
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect()
}

/// What a column's date cells hold, from all of them: a cell says only that it is a date, not
/// its number format, so a column's cells are written alike — midnight in a column of
/// date-times as `00:00:00`, not as a bare date, and milliseconds on every value when some
/// value has them.
#[derive(Debug, Clone, Copy, Default)]
struct DateShape {
    /// Some serial of 1 or more: a day.
    days: bool,
    /// Some day with a time of day other than midnight.
    clock: bool,
    /// Some value with milliseconds.
    millis: bool,
}

impl DateShape {
    fn add(&mut self, dt: &calamine::ExcelDateTime) {
        if dt.is_duration() {
            return;
        }
        let Some(t) = dt.as_datetime() else { return };
        self.millis |= t.nanosecond() != 0;
        if dt.as_f64() >= 1.0 {
            self.days = true;
            self.clock |= t.time() != chrono::NaiveTime::MIN;
        }
    }

    /// The strftime format of a cell of this column: a time of day (a serial below 1 — or 0,
    /// midnight, in a column of times alone: Excel's 0 is also its empty date, 1900-01-00, as
    /// often a formula's 0 in a date column), a date and time, or a date.
    fn format(self, serial: f64) -> &'static str {
        let millis = self.millis;
        if (serial > 0.0 && serial < 1.0) || (serial == 0.0 && !self.days) {
            if millis { "%H:%M:%S%.3f" } else { "%H:%M:%S" }
        } else if self.clock || millis {
            if millis { "%Y-%m-%d %H:%M:%S%.3f" } else { "%Y-%m-%d %H:%M:%S" }
        } else {
            "%Y-%m-%d"
        }
    }
}

/// Integral doubles from 2^63 on are written with an exponent (`1e20`): as digits they read
/// as integers wider than BIGINT, hence as text. Below, they are written as the integers they
/// are (an ID column of 17 digits stays BIGINT).
const BEYOND_BIGINT: f64 = 9_223_372_036_854_775_808.0;

fn cell_text(cell: &DataRef<'_>, shape: DateShape) -> String {
    match cell {
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() >= BEYOND_BIGINT => {
            format!("{f:e}")
        }
        DataRef::Float(f) => f.to_string(),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_string(),
        DataRef::Bool(b) => b.to_string(),
        // A duration (`[h]:mm:ss`) as hours, minutes and seconds.
        DataRef::DateTime(dt) if dt.is_duration() => {
            let seconds = (dt.as_f64() * 86_400.0).round() as i64;
            let sign = if seconds < 0 { "-" } else { "" };
            let s = seconds.unsigned_abs();
            format!("{sign}{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
        }
        DataRef::DateTime(dt) => match dt.as_datetime() {
            Some(t) => t.format(shape.format(dt.as_f64())).to_string(),
            None => dt.to_string(),
        },
        DataRef::Error(_) | DataRef::Empty => String::new(),
    }
}

/// RFC 4180 quoting.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) || text.starts_with(' ') || text.ends_with(' ') {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Excel's row limit, header included.
pub const MAX_ROWS: u64 = 1_048_576;

/// A text longer than an Excel cell holds (32,767 UTF-16 code units): the workbook cannot
/// hold the dataset as it is. `row` counts data rows from 1.
#[derive(Debug)]
pub struct CellTooLong {
    pub row: u64,
    pub column: String,
}

impl std::fmt::Display for CellTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // (The column's name itself may be the long text: its start is enough.)
        let column: String = self.column.chars().take(60).collect();
        let more = if column.len() < self.column.len() { "…" } else { "" };
        match self.row {
            0 => write!(f, "the name of column {column:?}{more} is longer than an Excel cell holds"),
            row => write!(f, "row {row}, column {column:?}{more}: longer than an Excel cell holds"),
        }
    }
}

impl std::error::Error for CellTooLong {}

/// Excel's longest text in a cell, in UTF-16 code units (rust_xlsxwriter's check).
pub const MAX_CELL_TEXT: usize = 32_767;

/// Writes a dataset as a one-sheet workbook, streaming rows through a constant-memory
/// worksheet. Numbers, booleans, dates and timestamps keep their types. A text (or a column
/// name, row 0) longer than a cell holds fails with [`CellTooLong`].
pub fn write_workbook(
    path: &Path,
    columns: &[crate::domain::ColumnInfo],
    rows: impl FnOnce(&mut dyn FnMut(&[Cell]) -> anyhow::Result<()>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut workbook = Workbook::new();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let timestamp = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    let sheet = workbook.add_worksheet_with_constant_memory()?;
    sheet.set_name("data")?;
    let too_long = |text: &str| text.len() > MAX_CELL_TEXT && text.encode_utf16().count() > MAX_CELL_TEXT;
    for (col, column) in columns.iter().enumerate() {
        if too_long(&column.name) {
            return Err(CellTooLong { row: 0, column: column.name.clone() }.into());
        }
        sheet.write_string(0, u16::try_from(col)?, &column.name)?;
    }
    let mut row: u32 = 0;
    rows(&mut |cells: &[Cell]| {
        row += 1;
        for (col, cell) in cells.iter().enumerate() {
            let col = u16::try_from(col)?;
            match cell {
                Cell::Null => {}
                Cell::Number(n) if n.is_finite() => {
                    sheet.write_number(row, col, *n)?;
                }
                Cell::Number(n) => {
                    sheet.write_string(row, col, n.to_string())?;
                }
                Cell::Bool(b) => {
                    sheet.write_boolean(row, col, *b)?;
                }
                Cell::Date(text) | Cell::Timestamp(text) => {
                    let format = if matches!(cell, Cell::Date(_)) { &date } else { &timestamp };
                    // Excel's dates start on 1900-01-01 (serial 1): rust_xlsxwriter takes
                    // 1899-12-31 as its epoch of times alone (serial 0, shown 1900-01-00).
                    match ExcelDateTime::parse_from_str(text) {
                        Ok(value) if text.as_str() >= "1900-01-01" => {
                            sheet.write_datetime_with_format(row, col, value, format)?
                        }
                        _ => sheet.write_string(row, col, text)?,
                    };
                }
                Cell::Text(text) => {
                    // (A text's UTF-8 length is never below its UTF-16 length.)
                    if too_long(text) {
                        let column =
                            columns.get(usize::from(col)).map(|c| c.name.clone()).unwrap_or_default();
                        return Err(CellTooLong { row: u64::from(row), column }.into());
                    }
                    sheet.write_string(row, col, text)?;
                }
            }
        }
        Ok(())
    })?;
    workbook.save(path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-sheet workbook written by `fill`, converted: the CSV and the notices.
    fn converted(fill: impl FnOnce(&mut rust_xlsxwriter::Worksheet)) -> (String, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let (path, out) = (dir.path().join("book.xlsx"), dir.path().join("sheet.csv"));
        let mut workbook = rust_xlsxwriter::Workbook::new();
        fill(workbook.add_worksheet());
        workbook.save(&path).unwrap();
        let sheet = sheet_to_csv(&path, None, &out).unwrap();
        (std::fs::read_to_string(&out).unwrap(), sheet.notices)
    }

    #[test]
    fn a_hidden_first_sheet_is_not_read_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let (path, out) = (dir.path().join("book.xlsx"), dir.path().join("sheet.csv"));
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let old = workbook.add_worksheet();
        old.set_name("old").unwrap().write_string(0, 0, "stale").unwrap();
        old.set_hidden(true);
        let data = workbook.add_worksheet();
        data.set_name("Data").unwrap().write_string(0, 0, "fresh").unwrap();
        data.set_active(true);
        workbook.save(&path).unwrap();
        sheet_to_csv(&path, None, &out).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "fresh\n");
        // Asked for by name, it is read, whatever the case (as Excel finds sheets).
        sheet_to_csv(&path, Some("old"), &out).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "stale\n");
        sheet_to_csv(&path, Some("DATA"), &out).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "fresh\n");
    }

    #[test]
    fn an_empty_first_sheet_names_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let (path, out) = (dir.path().join("book.xlsx"), dir.path().join("sheet.csv"));
        let mut workbook = rust_xlsxwriter::Workbook::new();
        workbook.add_worksheet().set_name("Empty").unwrap();
        workbook.add_worksheet().set_name("Data").unwrap().write_string(0, 0, "x").unwrap();
        workbook.save(&path).unwrap();
        let err = sheet_to_csv(&path, None, &out).unwrap_err();
        assert!(err.message().contains("\"Data\"") && err.message().contains("sheet"), "{}", err.message());
    }

    #[test]
    fn a_sheet_of_stray_cells_far_apart_is_refused_before_writing_empty_fields() {
        let dir = tempfile::tempdir().unwrap();
        let (path, out) = (dir.path().join("book.xlsx"), dir.path().join("sheet.csv"));
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        sheet.write_string(0, 0, "a").unwrap();
        sheet.write_string(9_998, 9_998, "b").unwrap();
        workbook.save(&path).unwrap();
        let err = sheet_to_csv(&path, None, &out).unwrap_err();
        assert!(err.message().contains("holds only 2 values"), "{}", err.message());
        assert!(std::fs::metadata(&out).is_err(), "nothing was written");
        // Past ten million cells, a value in fewer than 1 in 100 is refused, 1 in 100 or more
        // is read: 100,000 rows of one column and a note in column 101 (1 value in 101), then
        // of two columns (2 in 101).
        for (filled_columns, read) in [(1u16, false), (2, true)] {
            let mut workbook = rust_xlsxwriter::Workbook::new();
            let sheet = workbook.add_worksheet();
            for row in 0..100_000 {
                for col in 0..filled_columns {
                    sheet.write_number(row, col, f64::from(row)).unwrap();
                }
            }
            sheet.write_string(0, 100, "note").unwrap();
            workbook.save(&path).unwrap();
            let result = sheet_to_csv(&path, None, &out);
            assert_eq!(
                result.is_ok(),
                read,
                "{filled_columns} column(s): {:?}",
                result.err().map(|e| e.message().to_string())
            );
        }
    }

    #[test]
    fn zip_bombs_and_plain_zips_are_refused() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bomb.xlsx");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let options =
            zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("xl/workbook.xml", options).unwrap();
        zip.write_all(b"<workbook/>").unwrap();
        zip.start_file("xl/worksheets/sheet1.xml", options).unwrap();
        zip.write_all(&vec![b' '; 200_000]).unwrap();
        zip.finish().unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() < 10_000, "compresses well");
        let err = check_workbook(&path, 100_000).unwrap_err();
        assert!(err.message().contains("expands to"), "{}", err.message());
        assert!(check_workbook(&path, 1_000_000).is_ok());

        // The same part declaring 1,000 bytes (local header and central directory): the total
        // passes, the part inflates beyond it.
        let liar = dir.path().join("liar.xlsx");
        let mut bytes = std::fs::read(&path).unwrap();
        let mut patched = 0;
        for (signature, at) in [(0x04034b50u32, 22), (0x02014b50u32, 24)] {
            let mut i = 0;
            while i + at + 4 <= bytes.len() {
                let size = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
                if size(&bytes, i) == signature && size(&bytes, i + at) == 200_000 {
                    bytes[i + at..i + at + 4].copy_from_slice(&1_000u32.to_le_bytes());
                    patched += 1;
                }
                i += 1;
            }
        }
        assert_eq!(patched, 2);
        std::fs::write(&liar, bytes).unwrap();
        let err = check_workbook(&liar, 100_000).unwrap_err();
        assert!(err.message().contains("more than the 1000 bytes it declares"), "{}", err.message());

        let plain = dir.path().join("plain.zip");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&plain).unwrap());
        zip.start_file("readme.txt", options).unwrap();
        zip.write_all(b"hello").unwrap();
        zip.finish().unwrap();
        assert!(check_workbook(&plain, 1_000_000).unwrap_err().message().contains("not an Excel"));
    }

    #[test]
    fn a_table_away_from_a1_keeps_its_header_and_times_stay_times() {
        use rust_xlsxwriter::{ExcelDateTime, Format};
        let (csv, _) = converted(|sheet| {
            // The table starts at B3: two blank rows above, a blank column to the left.
            for (col, header) in ["name", "starts", "lasts", "day"].iter().enumerate() {
                sheet.write_string(2, col as u16 + 1, *header).unwrap();
            }
            let time = Format::new().set_num_format("h:mm:ss");
            let duration = Format::new().set_num_format("[hh]:mm:ss");
            let date = Format::new().set_num_format("yyyy-mm-dd");
            sheet.write_string(3, 1, "a").unwrap();
            sheet
                .write_datetime_with_format(3, 2, ExcelDateTime::from_hms(9, 30, 0).unwrap(), &time)
                .unwrap();
            sheet.write_number_with_format(3, 3, 65.0 / 1440.0, &duration).unwrap();
            sheet
                .write_datetime_with_format(3, 4, ExcelDateTime::from_ymd(2024, 1, 2).unwrap(), &date)
                .unwrap();
            sheet.write_string(4, 1, "b").unwrap();
            sheet.write_number_with_format(4, 3, 26.5 / 24.0, &duration).unwrap();
        });
        assert_eq!(csv, "name,starts,lasts,day\na,09:30:00,1:05:00,2024-01-02\nb,,26:30:00,\n");
    }

    #[test]
    fn a_columns_dates_are_written_alike_with_their_milliseconds() {
        use rust_xlsxwriter::{ExcelDateTime, Format};
        let (csv, _) = converted(|sheet| {
            for (col, header) in ["t", "ts", "ms", "d", "big", "id"].iter().enumerate() {
                sheet.write_string(0, col as u16, *header).unwrap();
            }
            let time = Format::new().set_num_format("hh:mm");
            let stamp = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
            let date = Format::new().set_num_format("yyyy-mm-dd");
            let day = |d: u8| ExcelDateTime::from_ymd(2024, 1, d).unwrap();
            let rows = [
                (
                    ExcelDateTime::from_hms(0, 0, 0).unwrap(),
                    day(1),
                    day(1).and_hms_milli(10, 30, 15, 500).unwrap(),
                    1e20,
                ),
                (
                    ExcelDateTime::from_hms(8, 15, 0).unwrap(),
                    day(1).and_hms(8, 30, 0).unwrap(),
                    day(1).and_hms_milli(23, 59, 59, 999).unwrap(),
                    -2.5e25,
                ),
                (ExcelDateTime::from_hms(12, 0, 0).unwrap(), day(2).and_hms(17, 45, 0).unwrap(), day(2), 5.0),
            ];
            for (i, (t, ts, ms, big)) in rows.iter().enumerate() {
                let row = i as u32 + 1;
                sheet.write_datetime_with_format(row, 0, t, &time).unwrap();
                sheet.write_datetime_with_format(row, 1, ts, &stamp).unwrap();
                sheet.write_datetime_with_format(row, 2, ms, &stamp).unwrap();
                sheet.write_datetime_with_format(row, 3, day(5 + i as u8), &date).unwrap();
                sheet.write_number(row, 4, *big).unwrap();
                sheet.write_number(row, 5, 12_345_678_901_234_568.0 + i as f64 * 2.0).unwrap();
            }
        });
        assert_eq!(
            csv,
            "t,ts,ms,d,big,id\n\
             00:00:00,2024-01-01 00:00:00,2024-01-01 10:30:15.500,2024-01-05,1e20,12345678901234568\n\
             08:15:00,2024-01-01 08:30:00,2024-01-01 23:59:59.999,2024-01-06,-2.5e25,12345678901234570\n\
             12:00:00,2024-01-02 17:45:00,2024-01-02 00:00:00.000,2024-01-07,5,12345678901234572\n"
        );
    }

    #[test]
    fn excel_errors_are_read_as_empty_with_a_notice() {
        use rust_xlsxwriter::Formula;
        let (csv, notices) = converted(|sheet| {
            sheet.write_string(0, 0, "n").unwrap();
            sheet.write_string(0, 1, "ratio").unwrap();
            for row in 1..=3u32 {
                sheet.write_number(row, 0, f64::from(row)).unwrap();
            }
            // Cached results as Excel stores them: #DIV/0! twice, a number once.
            sheet.write_formula(1, 1, Formula::new("=A2/0").set_result("#DIV/0!")).unwrap();
            sheet.write_formula(2, 1, Formula::new("=A3/0").set_result("#DIV/0!")).unwrap();
            sheet.write_formula(3, 1, Formula::new("=A4/2").set_result("1.5")).unwrap();
        });
        assert_eq!(csv, "n,ratio\n1,\n2,\n3,1.5\n");
        assert_eq!(
            notices,
            ["2 cells of column B (\"ratio\") hold an Excel error (#DIV/0!…): read as empty"]
        );
        assert_eq!(
            (column_letters(0), column_letters(25), column_letters(26), column_letters(16_383)),
            ("A".into(), "Z".into(), "AA".into(), "XFD".into())
        );
    }

    #[test]
    fn formulas_saved_without_a_result_are_named_in_a_notice() {
        use rust_xlsxwriter::Formula;
        use std::io::{Read, Write};
        let dir = tempfile::tempdir().unwrap();
        let (path, out) = (dir.path().join("book.xlsx"), dir.path().join("sheet.csv"));
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        sheet.write_string(0, 0, "n").unwrap();
        sheet.write_string(0, 1, "double").unwrap();
        sheet.write_string(0, 2, "kept").unwrap();
        for row in 1..=3u32 {
            sheet.write_number(row, 0, f64::from(row)).unwrap();
            sheet.write_formula(row, 1, Formula::new(format!("=A{}*2", row + 1))).unwrap();
            sheet.write_formula(row, 2, Formula::new(format!("=A{}+1", row + 1)).set_result("9")).unwrap();
        }
        workbook.save(&path).unwrap();
        // As openpyxl saves formulas: column B's without their cached result (`<v />`).
        let mut book = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
        let rewritten = dir.path().join("uncalculated.xlsx");
        let mut writer = zip::ZipWriter::new(std::fs::File::create(&rewritten).unwrap());
        let result = regex::Regex::new(r"(\*2</f>)<v>[^<]*</v>").unwrap();
        for i in 0..book.len() {
            let mut entry = book.by_index(i).unwrap();
            let mut text = Vec::new();
            entry.read_to_end(&mut text).unwrap();
            if entry.name().starts_with("xl/worksheets/") {
                let xml = String::from_utf8(text).unwrap();
                let xml = result.replace_all(&xml, "$1<v />");
                text = xml.into_owned().into_bytes();
            }
            writer.start_file(entry.name(), zip::write::SimpleFileOptions::default()).unwrap();
            writer.write_all(&text).unwrap();
        }
        writer.finish().unwrap();
        let sheet = sheet_to_csv(&rewritten, None, &out).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "n,double,kept\n1,,9\n2,,9\n3,,9\n");
        assert_eq!(sheet.notices.len(), 1, "{:?}", sheet.notices);
        assert!(
            sheet.notices[0]
                .starts_with("3 cells of column B (\"double\") hold a formula with no saved result"),
            "{:?}",
            sheet.notices
        );
        // Calculated formulas give no notice.
        let sheet = sheet_to_csv(&path, None, &out).unwrap();
        assert!(sheet.notices.is_empty(), "{:?}", sheet.notices);
    }

    #[test]
    fn dates_before_excels_first_day_are_written_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dates.xlsx");
        let columns = [crate::domain::ColumnInfo { name: "d".into(), data_type: "DATE".into() }];
        write_workbook(&path, &columns, |sink| {
            for d in ["1899-12-31", "1900-01-01", "2024-01-05"] {
                sink(&[Cell::Date(d.into())])?;
            }
            sink(&[Cell::Timestamp("1899-12-31 10:00:00".into())])
        })
        .unwrap();
        let mut book: calamine::Xlsx<_> = calamine::open_workbook(&path).unwrap();
        let range = book.worksheet_range_at(0).unwrap().unwrap();
        let cells: Vec<String> = range.rows().skip(1).map(|r| r[0].to_string()).collect();
        assert_eq!(cells[0], "1899-12-31");
        assert_eq!(cells[3], "1899-12-31 10:00:00");
        assert!(matches!(range.rows().nth(2).unwrap()[0], calamine::Data::DateTime(_)), "{cells:?}");
    }

    #[test]
    fn quotes_like_rfc_4180() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }
}
