//! Datasets: uploads streamed to disk, recognised by content, ingested by DuckDB into a
//! canonical Parquet copy kept beside the original, with metadata in the store.

mod detect;
mod service;
mod xlsx;

pub use detect::{Detected, detect};
pub use service::{
    DATA_FILE, Datasets, ExportFile, ExportFormat, ReadOptions, StagedFile, check_export, ingest_file,
};
