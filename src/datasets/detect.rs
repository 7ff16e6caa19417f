//! Recognising an upload's format from its bytes, not its name.

use crate::domain::DatasetFormat;
use crate::engine::ingest::SourceKind;
use crate::error::AppError;

/// What a file is, and how DuckDB should read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub format: DatasetFormat,
    pub kind: SourceKind,
    /// The text's encoding when it is not UTF-8 (Windows-1252, UTF-16): it is read through a
    /// UTF-8 copy.
    pub transcode: Option<&'static encoding_rs::Encoding>,
}

/// How many leading bytes `detect` wants to see.
pub const HEAD_BYTES: usize = 64 * 1024;

fn bad(message: impl Into<String>) -> AppError {
    AppError::bad_input("file", message)
}

/// Decides the format from the first bytes of the file (up to [`HEAD_BYTES`]) and its
/// last four bytes.
pub fn detect(head: &[u8], tail: &[u8], size: u64) -> Result<Detected, AppError> {
    if size == 0 {
        return Err(bad("the file is empty"));
    }
    if head.starts_with(b"PAR1") {
        if size < 12 || !tail.ends_with(b"PAR1") {
            return Err(bad("the Parquet file is truncated (no footer)"));
        }
        return Ok(Detected { format: DatasetFormat::Parquet, kind: SourceKind::Parquet, transcode: None });
    }
    if head.starts_with(b"PK\x03\x04") {
        // A zip: an Excel workbook if it has xl/workbook.xml (checked before conversion).
        let kind = SourceKind::Delimited { delimiter: Some(','), header: None, text_columns: vec![] };
        return Ok(Detected { format: DatasetFormat::Xlsx, kind, transcode: None });
    }
    // UTF-32 (either order): its little-endian mark starts as UTF-16's does, and read as
    // UTF-16 it makes names such as `\0a\0`.
    if head.starts_with(&[0xFF, 0xFE, 0x00, 0x00]) || head.starts_with(&[0x00, 0x00, 0xFE, 0xFF]) {
        return Err(bad(
            "the file is UTF-32 text, which cannot be read; save it as UTF-8 (or UTF-16 little-endian)",
        ));
    }
    if head.starts_with(&[0xFE, 0xFF]) {
        // encoding_rs reads both, but a big-endian file is rare enough to be a mistake.
        return Err(bad(
            "the file is UTF-16 big-endian text, which cannot be read; save it as UTF-8 (or UTF-16 little-endian)",
        ));
    }
    // The engine reads UTF-8: other text goes through a UTF-8 copy (`transcode`). UTF-16
    // because DuckDB's own UTF-16 reader refuses characters beyond the BMP (surrogate pairs,
    // such as emoji) and its JSON reader takes UTF-8 only; Windows-1252 (what is not UTF-8)
    // because DuckDB's latin-1 refuses its € and curly quotes.
    let (text, transcode) = if let Some(body) = head.strip_prefix(&[0xFF, 0xFE]) {
        // (A code unit cut by the end of the sample is left out.)
        let body = &body[..body.len() & !1];
        (encoding_rs::UTF_16LE.decode_without_bom_handling(body).0.into_owned(), Some(encoding_rs::UTF_16LE))
    } else {
        let body = head.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(head);
        if body.contains(&0) {
            return Err(bad("the file is binary, not a table (CSV, TSV, JSON, Parquet or Excel .xlsx)"));
        }
        match std::str::from_utf8(body) {
            Ok(text) => (text.to_string(), None),
            // A character cut by the end of the sample is still UTF-8.
            Err(e) if e.error_len().is_none() => {
                (String::from_utf8_lossy(&body[..e.valid_up_to()]).into_owned(), None)
            }
            // Windows-1252 keeps ASCII as it is: enough to tell JSON from delimited text.
            Err(_) => (String::from_utf8_lossy(body).into_owned(), Some(encoding_rs::WINDOWS_1252)),
        }
    };
    let start = text.trim_start();
    if start.is_empty() {
        return Err(bad("the file holds only white space"));
    }
    if let Some(kind) = json_kind(start) {
        let format = if kind == SourceKind::JsonArray { DatasetFormat::Json } else { DatasetFormat::Ndjson };
        return Ok(Detected { format, kind, transcode });
    }
    // Delimited text: a first line with more tabs than commas is TSV; otherwise DuckDB
    // sniffs the delimiter (comma, semicolon, pipe…).
    let first_line = text.split('\n').next().unwrap_or_default();
    let tabs = first_line.matches('\t').count();
    let commas = first_line.matches(',').count();
    let (format, delimiter) =
        if tabs > commas { (DatasetFormat::Tsv, Some('\t')) } else { (DatasetFormat::Csv, None) };
    Ok(Detected {
        format,
        kind: SourceKind::Delimited { delimiter, header: None, text_columns: vec![] },
        transcode,
    })
}

/// JSON's kind when `text` (from its first non-space character) starts as a JSON array or
/// object does: `[` then what starts a JSON value or `]`, or `{` then `"` or `}` (an array
/// of numbers is JSON, refused later for not holding records). A delimited file's header may
/// start with a bracket too (`[id],[name]`, as SQL Server exports it).
fn json_kind(text: &str) -> Option<SourceKind> {
    let mut chars = text.chars();
    let first = chars.next()?;
    let next = chars.find(|c| !c.is_whitespace());
    match (first, next) {
        ('[', Some('{' | '[' | ']' | '"' | '-' | '0'..='9' | 't' | 'f' | 'n') | None) => {
            Some(SourceKind::JsonArray)
        }
        ('{', Some('"' | '}') | None) => Some(SourceKind::JsonLines),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(bytes: &[u8]) -> Result<DatasetFormat, String> {
        let tail = &bytes[bytes.len().saturating_sub(4)..];
        detect(bytes, tail, bytes.len() as u64).map(|d| d.format).map_err(|e| e.message().to_string())
    }

    #[test]
    fn recognises_formats_by_content() {
        assert_eq!(format(b"a,b\n1,2\n"), Ok(DatasetFormat::Csv));
        assert_eq!(format(b"a\tb\n1\t2\n"), Ok(DatasetFormat::Tsv));
        assert_eq!(format(b"  [{\"a\": 1}]"), Ok(DatasetFormat::Json));
        assert_eq!(format(b"{\"a\": 1}\n{\"a\": 2}\n"), Ok(DatasetFormat::Ndjson));
        assert_eq!(format(b"PAR1....PAR1"), Ok(DatasetFormat::Parquet));
        assert_eq!(format(b"PK\x03\x04rest"), Ok(DatasetFormat::Xlsx));
        assert_eq!(format(b"\xEF\xBB\xBFa,b\n1,2\n"), Ok(DatasetFormat::Csv));
        // A header in brackets (SQL Server's exports) is delimited text, not JSON.
        assert_eq!(format(b"[id],[name]\n1,a\n"), Ok(DatasetFormat::Csv));
        assert_eq!(format(b"{id},name\n1,a\n"), Ok(DatasetFormat::Csv));
        assert_eq!(format(b"[\n  {\"a\": 1}\n]"), Ok(DatasetFormat::Json));
        assert_eq!(format(b"[[1, 2]]"), Ok(DatasetFormat::Json));
        assert_eq!(format(b"{ }\n"), Ok(DatasetFormat::Ndjson));
    }

    #[test]
    fn refuses_what_is_not_a_table() {
        assert!(format(b"").unwrap_err().contains("empty"));
        assert!(format(b"\x7fELF\x02\x01\x01\x00\x00").unwrap_err().contains("binary"));
        assert!(format(b"PAR1 truncated").unwrap_err().contains("truncated"));
        assert!(format(b" \n\t ").unwrap_err().contains("white space"));
    }

    #[test]
    fn picks_an_encoding() {
        let latin1 = b"name,city\nJos\xe9,M\xfcnchen\n";
        let detected = detect(latin1, b"", latin1.len() as u64).unwrap();
        assert_eq!(
            detected.kind,
            SourceKind::Delimited { delimiter: None, header: None, text_columns: vec![] }
        );
        assert_eq!(detected.transcode, Some(encoding_rs::WINDOWS_1252));
        // JSON that is not UTF-8 is still JSON.
        for (json, kind) in [
            (&b" [{\"name\": \"Jos\xe9\"}]"[..], SourceKind::JsonArray),
            (b"{\"n\": \"\x80\"}\n", SourceKind::JsonLines),
        ] {
            let detected = detect(json, b"", json.len() as u64).unwrap();
            assert_eq!((detected.kind, detected.transcode), (kind, Some(encoding_rs::WINDOWS_1252)));
        }
        let utf16 = b"\xFF\xFEa\x00,\x00b\x00";
        let detected = detect(utf16, b"", utf16.len() as u64).unwrap();
        assert!(matches!(detected.kind, SourceKind::Delimited { .. }));
        assert_eq!(detected.transcode, Some(encoding_rs::UTF_16LE), "read through a UTF-8 copy");
        // UTF-16 that holds only white space is refused as UTF-8 is.
        let blank: Vec<u8> =
            [0xFF, 0xFE].into_iter().chain(" \r\n".encode_utf16().flat_map(u16::to_le_bytes)).collect();
        assert!(format(&blank).unwrap_err().contains("white space"));
        // UTF-16 JSON is JSON (read through a UTF-8 copy), even cut mid-character.
        for (json, kind) in
            [("  [{\"name\": \"José\"}]", SourceKind::JsonArray), ("{\"n\": 1}\n", SourceKind::JsonLines)]
        {
            let mut bytes = vec![0xFF, 0xFE];
            bytes.extend(json.encode_utf16().flat_map(u16::to_le_bytes));
            let detected = detect(&bytes[..bytes.len() - 1], b"", 100).unwrap();
            assert_eq!((detected.kind, detected.transcode), (kind, Some(encoding_rs::UTF_16LE)));
        }
        // Big-endian UTF-16 is refused with a reason, not read as little-endian garbage.
        let big_endian = b"\xFE\xFF\x00a\x00,\x00b";
        assert!(format(big_endian).unwrap_err().contains("UTF-16 big-endian"));
        // UTF-32 is refused too, in either byte order.
        for utf32 in
            [&b"\xFF\xFE\x00\x00a\x00\x00\x00,\x00\x00\x00"[..], &b"\x00\x00\xFE\xFF\x00\x00\x00a"[..]]
        {
            assert!(format(utf32).unwrap_err().contains("UTF-32"));
        }
        // A multi-byte character cut at the end of the sample is not a reason for Latin-1.
        let cut = "a,b\né".as_bytes();
        let detected = detect(&cut[..cut.len() - 1], b"", 100).unwrap();
        assert!(matches!(detected.kind, SourceKind::Delimited { .. }));
        assert_eq!(detected.transcode, None);
    }
}
