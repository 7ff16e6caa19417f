//! Datasets: an uploaded table, ingested into a canonical Parquet copy, and its versions.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::UserId;

/// A dataset's id (UUIDv7: sorts by creation time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DatasetId(pub Uuid);

impl DatasetId {
    pub fn generate() -> DatasetId {
        DatasetId(Uuid::now_v7())
    }
}

impl fmt::Display for DatasetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for DatasetId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(DatasetId)
    }
}

/// The format an upload was recognised as, from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetFormat {
    Csv,
    Tsv,
    Json,
    Ndjson,
    Parquet,
    Xlsx,
}

impl DatasetFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetFormat::Csv => "csv",
            DatasetFormat::Tsv => "tsv",
            DatasetFormat::Json => "json",
            DatasetFormat::Ndjson => "ndjson",
            DatasetFormat::Parquet => "parquet",
            DatasetFormat::Xlsx => "xlsx",
        }
    }
}

impl FromStr for DatasetFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "csv" => DatasetFormat::Csv,
            "tsv" => DatasetFormat::Tsv,
            "json" => DatasetFormat::Json,
            "ndjson" => DatasetFormat::Ndjson,
            "parquet" => DatasetFormat::Parquet,
            "xlsx" => DatasetFormat::Xlsx,
            other => return Err(format!("unknown dataset format {other:?}")),
        })
    }
}

/// What a dataset is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    /// A file a user uploaded.
    Upload,
    /// A cleanse's cleaned rows: a new version of its input.
    Cleaned,
    /// The rows a cleanse quarantined, with the reason per row: kept apart, not a version.
    Quarantine,
}

impl DatasetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetKind::Upload => "upload",
            DatasetKind::Cleaned => "cleaned",
            DatasetKind::Quarantine => "quarantine",
        }
    }
}

impl FromStr for DatasetKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "upload" => DatasetKind::Upload,
            "cleaned" => DatasetKind::Cleaned,
            "quarantine" => DatasetKind::Quarantine,
            other => return Err(format!("unknown dataset kind {other:?}")),
        })
    }
}

/// One column of a dataset: its name and DuckDB type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
}

/// A stored dataset version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    pub id: DatasetId,
    pub owner_id: UserId,
    /// The first version of this dataset (itself for an upload).
    pub root_id: DatasetId,
    /// The version this one was derived from.
    pub parent_id: Option<DatasetId>,
    pub kind: DatasetKind,
    pub name: String,
    pub format: DatasetFormat,
    /// The uploaded file's name, for display only: never used as a path.
    pub original_filename: String,
    pub size_bytes: u64,
    /// Hex SHA-256 of the uploaded bytes.
    pub sha256: String,
    pub row_count: u64,
    pub columns: Vec<ColumnInfo>,
    pub rejected_row_count: u64,
    /// What ingest changed and the user should know (renamed columns, no header row…).
    pub notices: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// A dataset's name as a client gives it (an upload's `name`, a cleanse's `output_name`):
/// trimmed, 1 to 255 characters, no control characters (a name is shown in lists, file names
/// and report headers). `Err` says what is wrong.
pub fn check_dataset_name(raw: &str) -> Result<&str, &'static str> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 255 {
        Err("must have 1 to 255 characters")
    } else if name.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        Err("must not contain control characters (bidirectional overrides included)")
    } else {
        Ok(name)
    }
}

/// Unicode's bidirectional formatting characters: in a file name, U+202E turns
/// `report\u{202E}vsc.exe` into what reads as `reportexe.csv`.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The extensions of the table files a dataset's name may end with.
const TABLE_EXTENSIONS: &[&str] =
    &[".csv", ".tsv", ".txt", ".json", ".ndjson", ".jsonl", ".parquet", ".xlsx", ".xls"];

/// A dataset name split before its table-file extension (`people.csv` → `people`, `.csv`), when
/// it has one: a name like `contacts v1.2 final` keeps its dot.
pub fn split_extension(name: &str) -> (&str, &str) {
    let lower = name.to_ascii_lowercase();
    TABLE_EXTENSIONS
        .iter()
        .find(|ext| lower.ends_with(*ext) && lower.len() > ext.len())
        .map_or((name, ""), |ext| name.split_at(name.len() - ext.len()))
}

/// The file name a download of dataset `name` in format `extension` suggests: the name without
/// its table extension, then `extension`; a path separator (`/`, `\\`) in the name is `_`, so a
/// client that saves the file under this name writes no subfolder.
pub fn download_name(name: &str, extension: &str) -> String {
    let (stem, _) = split_extension(name);
    let stem: String = stem.chars().map(|c| if matches!(c, '/' | '\\') { '_' } else { c }).collect();
    format!("{stem}.{extension}")
}

/// `stem` followed by `tail` (an extension, ` (cleaned).csv`), in at most 255 characters (a
/// dataset name's limit): a long stem is cut, so that the tail — the part that says what the
/// file is — is kept.
pub fn fit_name(stem: &str, tail: &str) -> String {
    let room = 255usize.saturating_sub(tail.chars().count());
    let stem: String = stem.chars().take(room).collect();
    let name = format!("{}{tail}", stem.trim_end());
    name.chars().take(255).collect()
}

#[cfg(test)]
mod extension_tests {
    use super::{check_dataset_name, fit_name, split_extension};

    #[test]
    fn a_long_name_is_cut_before_its_extension() {
        let long = format!("{}.csv", "r".repeat(300));
        let (stem, ext) = split_extension(&long);
        let fitted = fit_name(stem, ext);
        assert_eq!(fitted.chars().count(), 255);
        assert!(fitted.ends_with("rrr.csv"));
        assert_eq!(fit_name("people", ".csv"), "people.csv");
        let cleaned = fit_name(&"é".repeat(260), " (cleaned).xlsx");
        assert_eq!(cleaned.chars().count(), 255);
        assert!(cleaned.ends_with("é (cleaned).xlsx"));
        assert!(check_dataset_name(&cleaned).is_ok());
    }

    #[test]
    fn a_name_is_trimmed_text_without_control_characters() {
        assert_eq!(check_dataset_name("  sales 2024.csv "), Ok("sales 2024.csv"));
        assert_eq!(check_dataset_name(&"é".repeat(255)).map(|n| n.len()), Ok(510));
        assert!(check_dataset_name(&"a".repeat(256)).is_err());
        assert!(check_dataset_name("   ").is_err());
        let refused = Err("must not contain control characters (bidirectional overrides included)");
        assert_eq!(check_dataset_name("a\u{1b}[31mred"), refused);
        assert_eq!(check_dataset_name("a\nb"), refused);
        assert_eq!(check_dataset_name("invoice\u{202E}vsc.exe"), refused);
        assert_eq!(check_dataset_name("שלום.csv"), Ok("שלום.csv"), "right-to-left text itself is fine");
    }

    #[test]
    fn only_a_table_extension_is_split_off() {
        assert_eq!(split_extension("people.csv"), ("people", ".csv"));
        assert_eq!(super::download_name("a/b\\c.csv", "xlsx"), "a_b_c.xlsx");
        assert_eq!(super::download_name("contacts v1.2 final", "csv"), "contacts v1.2 final.csv");
        assert_eq!(split_extension("People.XLSX"), ("People", ".XLSX"));
        assert_eq!(split_extension("contacts v1.2 final"), ("contacts v1.2 final", ""));
        assert_eq!(split_extension("v1.2.parquet"), ("v1.2", ".parquet"));
        assert_eq!(split_extension(".csv"), (".csv", ""));
        assert_eq!(split_extension("../../etc/passwd"), ("../../etc/passwd", ""));
        assert_eq!(split_extension("naïve.csv"), ("naïve", ".csv"));
    }
}
