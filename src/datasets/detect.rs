//! Recognising an upload's format from its bytes, not its name.

use crate::domain::DatasetFormat;
use crate::engine::ingest::{SourceKind, TextEncoding};
use crate::error::AppError;

/// What a file is, and how DuckDB should read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub format: DatasetFormat,
    pub kind: SourceKind,
    /// The text's encoding when DuckDB cannot read it as it is (Windows-1252; UTF-16 JSON,
    /// which DuckDB's JSON reader refuses): it is read through a UTF-8 copy.
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
        let kind = SourceKind::Delimited { delimiter: Some(','), encoding: TextEncoding::Utf8, header: None };
        return Ok(Detected { format: DatasetFormat::Xlsx, kind, transcode: None });
    }
    if head.starts_with(&[0xFE, 0xFF]) {
        // DuckDB reads UTF-16 little-endian only: big-endian text would come in as garbage.
        return Err(bad(
            "the file is UTF-16 big-endian text, which cannot be read; save it as UTF-8 (or UTF-16 little-endian)",
        ));
    }
    let (encoding, text, windows_1252) = if let Some(body) = head.strip_prefix(&[0xFF, 0xFE]) {
        // (A code unit cut by the end of the sample is left out.)
        let body = &body[..body.len() & !1];
        let (text, _) = encoding_rs::UTF_16LE.decode_without_bom_handling(body);
        if matches!(text.trim_start().chars().next(), Some('[' | '{')) {
            let (format, kind) = if text.trim_start().starts_with('[') {
                (DatasetFormat::Json, SourceKind::JsonArray)
            } else {
                (DatasetFormat::Ndjson, SourceKind::JsonLines)
            };
            return Ok(Detected { format, kind, transcode: Some(encoding_rs::UTF_16LE) });
        }
        (TextEncoding::Utf16, None, false)
    } else {
        let body = head.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(head);
        if body.contains(&0) {
            return Err(bad("the file is binary, not a table (CSV, TSV, JSON or Parquet)"));
        }
        match std::str::from_utf8(body) {
            Ok(text) => (TextEncoding::Utf8, Some(text.to_string()), false),
            // A character cut by the end of the sample is still UTF-8.
            Err(e) if e.error_len().is_none() => (
                TextEncoding::Utf8,
                std::str::from_utf8(&body[..e.valid_up_to()]).ok().map(String::from),
                false,
            ),
            // Windows-1252 keeps ASCII as it is: enough to tell JSON from delimited text.
            Err(_) => (TextEncoding::Utf8, Some(String::from_utf8_lossy(body).into_owned()), true),
        }
    };
    if let Some(text) = text {
        let transcode = windows_1252.then_some(encoding_rs::WINDOWS_1252);
        let json = |format, kind| Ok(Detected { format, kind, transcode });
        match text.trim_start().chars().next() {
            Some('[') => return json(DatasetFormat::Json, SourceKind::JsonArray),
            Some('{') => return json(DatasetFormat::Ndjson, SourceKind::JsonLines),
            None => return Err(bad("the file holds only white space")),
            _ => {}
        }
    }
    // Delimited text: a first line with more tabs than commas is TSV; otherwise DuckDB
    // sniffs the delimiter (comma, semicolon, pipe…).
    let first_line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let tabs = first_line.iter().filter(|b| **b == b'\t').count();
    let commas = first_line.iter().filter(|b| **b == b',').count();
    let (format, delimiter) =
        if tabs > commas { (DatasetFormat::Tsv, Some('\t')) } else { (DatasetFormat::Csv, None) };
    let transcode = windows_1252.then_some(encoding_rs::WINDOWS_1252);
    Ok(Detected { format, kind: SourceKind::Delimited { delimiter, encoding, header: None }, transcode })
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
            SourceKind::Delimited { delimiter: None, encoding: TextEncoding::Utf8, header: None }
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
        assert!(matches!(detected.kind, SourceKind::Delimited { encoding: TextEncoding::Utf16, .. }));
        assert_eq!(detected.transcode, None, "DuckDB reads UTF-16 CSV itself");
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
        // A multi-byte character cut at the end of the sample is not a reason for Latin-1.
        let cut = "a,b\né".as_bytes();
        let detected = detect(&cut[..cut.len() - 1], b"", 100).unwrap();
        assert!(matches!(detected.kind, SourceKind::Delimited { encoding: TextEncoding::Utf8, .. }));
        assert_eq!(detected.transcode, None);
    }
}
