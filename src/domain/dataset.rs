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
