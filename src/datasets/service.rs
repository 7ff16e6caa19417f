//! The dataset use cases: upload (stage, detect, ingest, commit), read, preview, delete.
//!
//! A dataset's files are `original`, `data.parquet` and `rejects.parquet`, kept by
//! [`Storage`] (the local `DATA_DIR/datasets/<owner>/<dataset>/` or an object store), plus
//! `export.csv` / `export.xlsx` in the local directory once downloaded. A dataset is built in
//! `DATA_DIR/datasets/.staging/<id>/`, published to storage only when complete, then recorded
//! in the store; a failure at any step removes what was written, so nothing half-written is
//! ever visible.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::detect::{HEAD_BYTES, detect};
use super::xlsx;
use crate::domain::{Dataset, DatasetFormat, DatasetId, DatasetKind, JobId, UserId};
use crate::engine::Engine;
use crate::engine::ingest::{self, IngestError, Reject};
use crate::error::{AppError, ErrorCode};
use crate::storage::{FilesKey, Storage};
use crate::store::{MetadataStore, Page, PageRequest};

/// An uploaded file already streamed to disk, with its size and hash.
#[derive(Debug, Clone)]
pub struct StagedFile {
    pub path: PathBuf,
    /// The name the client gave; for display only, never used as a path.
    pub filename: String,
    pub size: u64,
    pub sha256: String,
}

/// What the client said about an upload.
struct Described {
    name: String,
    /// The display form of the client's file name.
    filename: String,
    read: ReadOptions,
}

/// How to read an uploaded file, where its content leaves a choice.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// For workbooks: which sheet (default: the first).
    pub sheet: Option<String>,
    /// For delimited text and workbooks: whether the first row holds the column names
    /// (default: DuckDB decides, and a first row of numbers, such as years, reads as data).
    pub header: Option<bool>,
}

/// Datasets over the metadata store, the engine and the data directory.
#[derive(Clone)]
pub struct Datasets {
    store: Arc<dyn MetadataStore>,
    engine: Engine,
    storage: Arc<dyn Storage>,
    /// `DATA_DIR/datasets`: uploads, staging and exports in progress.
    root: PathBuf,
}

/// The canonical Parquet copy's file name in a dataset's folder.
pub const DATA_FILE: &str = "data.parquet";
const REJECTS_FILE: &str = "rejects.parquet";
const ORIGINAL_FILE: &str = "original";

/// Most rows one preview or rejects page may return.
pub const MAX_ROWS: u64 = 1000;

impl Datasets {
    /// `root` is `DATA_DIR/datasets`.
    pub fn new(
        store: Arc<dyn MetadataStore>,
        engine: Engine,
        storage: Arc<dyn Storage>,
        root: PathBuf,
    ) -> Self {
        Datasets { store, engine, storage, root }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Where uploads are streamed before they become datasets (same file system as the
    /// datasets, so they move by rename).
    pub fn uploads_dir(&self) -> PathBuf {
        self.root.join(".uploads")
    }

    /// The local directory holding the dataset's files (fetched from storage if needed).
    pub async fn files(&self, dataset: &Dataset) -> Result<PathBuf, AppError> {
        self.storage.local(key(dataset)).await.map_err(AppError::internal)
    }

    /// The local path of the dataset's canonical Parquet copy.
    pub async fn data_path(&self, dataset: &Dataset) -> Result<PathBuf, AppError> {
        Ok(self.files(dataset).await?.join(DATA_FILE))
    }

    /// Turns a staged upload into a dataset owned by `owner`.
    pub async fn upload(
        &self,
        owner: UserId,
        file: &StagedFile,
        name: Option<String>,
        read: ReadOptions,
    ) -> Result<Dataset, AppError> {
        let filename = display_name(&file.filename);
        let name = match name {
            Some(n) => check_name(&n)?,
            None => filename.clone(),
        };
        let id = DatasetId::generate();
        let staging = self.staging_dir(id);
        let dataset = self
            .stage_publish_record(
                &staging,
                self.build(owner, id, file, &staging, Described { name, filename, read }),
                None,
            )
            .await?;
        tracing::info!(dataset_id = %dataset.id, format = dataset.format.as_str(), rows = dataset.row_count,
            rejected = dataset.rejected_row_count, "dataset ingested");
        Ok(dataset)
    }

    /// Publishes `data` (a Parquet file written by the engine, e.g. a cleanse output) as a
    /// dataset derived from `parent` — a new version, or (`kind` quarantine) rows kept apart
    /// from the versions —: same owner and root, `parent_id = parent.id`, its own id,
    /// name `name`, format parquet; row count and columns read from the file by DuckDB;
    /// `rejects` empty. Staged, published to storage and recorded like an upload (nothing
    /// visible until complete; staging removed on failure). The parent is never modified.
    ///
    /// `data` must be written by the engine with the canonical copy's settings
    /// (`engine::PARQUET_OPTIONS`): it is taken as it is — hard-linked into the staged
    /// `data.parquet` where the file system allows, else copied — and only its footer is read;
    /// the caller's file stays in place.
    /// The staged `original` is that same file. `size_bytes` and `sha256` describe it.
    /// `job`, the job publishing it and its attempt, is recorded with it (in one
    /// transaction), so that a version its job does not complete can be found and deleted
    /// (`orphaned_outputs`).
    pub async fn publish_version(
        &self,
        parent: &Dataset,
        kind: DatasetKind,
        data: &Path,
        name: &str,
        job: Option<(JobId, u32)>,
    ) -> Result<Dataset, AppError> {
        let name = check_name(name)?;
        let id = DatasetId::generate();
        let staging = self.staging_dir(id);
        let build = async {
            tokio::fs::create_dir_all(&staging).await.map_err(AppError::internal)?;
            let (source, target) = (data.to_path_buf(), staging.join(DATA_FILE));
            let ingested = {
                let target = target.clone();
                // Written by the engine with the canonical copy's settings: taken as it is
                // (hard-linked), only its footer read.
                self.engine
                    .run(move |conn| Ok(ingest::adopt(conn, &source, &target)))
                    .await
                    .map_err(AppError::internal)?
                    .map_err(|e| ingest_error(e, DatasetFormat::Parquet))?
            };
            // The layout's original-file slot holds the published Parquet itself.
            let original = staging.join(ORIGINAL_FILE);
            if tokio::fs::hard_link(&target, &original).await.is_err() {
                tokio::fs::copy(&target, &original).await.map_err(AppError::internal)?;
            }
            let (size, sha256) = {
                let target = target.clone();
                tokio::task::spawn_blocking(move || hash_file(&target))
                    .await
                    .map_err(AppError::internal)?
                    .map_err(AppError::internal)?
            };
            Ok(Dataset {
                id,
                owner_id: parent.owner_id,
                root_id: parent.root_id,
                parent_id: Some(parent.id),
                kind,
                original_filename: name.clone(),
                name,
                format: DatasetFormat::Parquet,
                size_bytes: size,
                sha256,
                row_count: ingested.row_count,
                columns: ingested.columns,
                rejected_row_count: 0,
                notices: Vec::new(),
                created_at: crate::store::now(),
            })
        };
        let dataset = self.stage_publish_record(&staging, build, job).await?;
        tracing::info!(dataset_id = %dataset.id, parent_id = %parent.id, rows = dataset.row_count,
            "dataset version published");
        Ok(dataset)
    }

    fn staging_dir(&self, id: DatasetId) -> PathBuf {
        self.root.join(".staging").join(id.to_string())
    }

    /// Runs `build` (which writes the dataset's files into `staging`), publishes `staging`
    /// to storage and records the dataset. The guards remove what was written if anything
    /// fails or the request is cancelled (the future dropped) before the dataset is
    /// recorded.
    async fn stage_publish_record(
        &self,
        staging: &Path,
        build: impl std::future::Future<Output = Result<Dataset, AppError>>,
        job: Option<(JobId, u32)>,
    ) -> Result<Dataset, AppError> {
        let staging_guard = Cleanup::dir(staging.to_path_buf());
        let dataset = build.await?;
        // Published files are removed again unless the metadata is recorded.
        let published = Unpublish { storage: Some(self.storage.clone()), key: key(&dataset) };
        self.storage.publish(key(&dataset), staging).await.map_err(AppError::internal)?;
        match job {
            Some((job, attempt)) => self.store.insert_job_output(&dataset, job, attempt).await?,
            None => self.store.insert_dataset(&dataset).await?,
        }
        published.disarm();
        staging_guard.disarm();
        Ok(dataset)
    }

    async fn build(
        &self,
        owner: UserId,
        id: DatasetId,
        file: &StagedFile,
        staging: &Path,
        described: Described,
    ) -> Result<Dataset, AppError> {
        let Described { name, filename, read } = described;
        tokio::fs::create_dir_all(staging).await.map_err(AppError::internal)?;
        let original = staging.join(ORIGINAL_FILE);
        tokio::fs::rename(&file.path, &original).await.map_err(AppError::internal)?;
        let (format, ingested) = ingest_file(&self.engine, &original, file.size, &read, staging).await?;
        Ok(Dataset {
            id,
            owner_id: owner,
            root_id: id,
            parent_id: None,
            kind: DatasetKind::Upload,
            name,
            format,
            original_filename: filename,
            size_bytes: file.size,
            sha256: file.sha256.clone(),
            row_count: ingested.row_count,
            columns: ingested.columns,
            rejected_row_count: ingested.rejected_row_count,
            notices: ingested.notices,
            created_at: crate::store::now(),
        })
    }

    /// The owner's dataset, or `NOT_FOUND` (also for someone else's).
    pub async fn get(&self, owner: UserId, id: &str) -> Result<Dataset, AppError> {
        let not_found = || AppError::not_found("no such dataset");
        let id: DatasetId = id.parse().map_err(|_| not_found())?;
        self.store.dataset(id, owner).await?.ok_or_else(not_found)
    }

    /// The owner's datasets of the given kinds (every kind when empty), newest first.
    pub async fn list(
        &self,
        owner: UserId,
        kinds: &[DatasetKind],
        page: &PageRequest,
    ) -> Result<Page<Dataset>, AppError> {
        Ok(self.store.list_datasets(owner, kinds, page).await?)
    }

    /// The dataset's versions, oldest first: the upload and its cleaned versions, not the
    /// quarantined rows, which are a line of their own (a quarantine and the versions cleaned
    /// from it).
    pub async fn versions(&self, dataset: &Dataset) -> Result<Vec<Dataset>, AppError> {
        let family = self.family(dataset).await?;
        let line = quarantine_line(&family, dataset);
        Ok(family.iter().filter(|d| quarantine_line(&family, d) == line).cloned().collect())
    }

    /// Every dataset sharing the dataset's root: its versions and their quarantined rows.
    async fn family(&self, dataset: &Dataset) -> Result<Vec<Dataset>, AppError> {
        Ok(self.store.dataset_versions(dataset.root_id, dataset.owner_id).await?)
    }

    /// Rows of the canonical copy, as JSON objects.
    pub async fn preview(
        &self,
        dataset: &Dataset,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<serde_json::Value>, AppError> {
        check_rows("limit", limit)?;
        let data = self.data_path(dataset).await?;
        self.engine
            .run(move |conn| ingest::preview(conn, &data, limit, offset))
            .await
            .map_err(AppError::internal)
    }

    /// The malformed rows recorded at ingest.
    pub async fn rejects(&self, dataset: &Dataset, first: u64) -> Result<Vec<Reject>, AppError> {
        check_rows("first", first)?;
        if dataset.rejected_row_count == 0 {
            return Ok(Vec::new());
        }
        let rejects = self.files(dataset).await?.join(REJECTS_FILE);
        self.engine.run(move |conn| ingest::rejects(conn, &rejects, first)).await.map_err(AppError::internal)
    }

    /// Deletes a dataset, the versions derived from it, and their files.
    pub async fn delete(&self, owner: UserId, id: &str) -> Result<(), AppError> {
        let dataset = self.get(owner, id).await?;
        let versions = self.family(&dataset).await?;
        let doomed = descendants(&versions, dataset.id);
        if self.store.datasets_in_use(&doomed).await? {
            return Err(AppError::conflict(
                "a queued or running job uses this dataset (or a version derived from it); cancel the job or wait for it to finish",
            ));
        }
        if !self.store.delete_dataset(dataset.id, owner, &doomed).await? {
            return Err(AppError::not_found("no such dataset"));
        }
        for version in versions.iter().filter(|v| doomed.contains(&v.id)) {
            if let Err(e) = self.storage.remove(key(version)).await {
                tracing::warn!(dataset_id = %version.id, error = format!("{e:#}"), "could not remove dataset files");
            }
        }
        Ok(())
    }
}

/// The nearest quarantine `dataset` descends from (itself included), or `None` for the
/// upload's own line: the line of versions it belongs to.
fn quarantine_line(family: &[Dataset], dataset: &Dataset) -> Option<DatasetId> {
    let mut current = Some(dataset);
    for _ in 0..=family.len() {
        let d = current?;
        if d.kind == DatasetKind::Quarantine {
            return Some(d.id);
        }
        current = d.parent_id.and_then(|p| family.iter().find(|f| f.id == p));
    }
    None
}

/// A file format a dataset can be downloaded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Parquet,
    Xlsx,
}

impl ExportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Parquet => "parquet",
            ExportFormat::Xlsx => "xlsx",
        }
    }

    pub fn parse(s: &str) -> Option<ExportFormat> {
        match s {
            "csv" => Some(ExportFormat::Csv),
            "parquet" => Some(ExportFormat::Parquet),
            "xlsx" => Some(ExportFormat::Xlsx),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Parquet => "application/vnd.apache.parquet",
            ExportFormat::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }
}

/// A file ready to stream: opened, so a temporary one can already be unlinked.
pub struct ExportFile {
    pub file: tokio::fs::File,
    pub size: u64,
}

impl Datasets {
    /// Opens the dataset in `format` for streaming. CSV and XLSX are written once, through
    /// a temporary file renamed into the dataset's folder, and reused afterwards.
    pub async fn export(&self, dataset: &Dataset, format: ExportFormat) -> Result<ExportFile, AppError> {
        check_export(dataset, format)?;
        let dir = self.files(dataset).await?;
        let data = dir.join(DATA_FILE);
        // A dataset version never changes, so each format is written once and kept beside
        // it (removed with it): downloading again costs no engine time.
        let kept = match format {
            ExportFormat::Parquet => data.clone(),
            _ => dir.join(format!("export.{}", format.as_str())),
        };
        if let Ok(file) = tokio::fs::File::open(&kept).await {
            let size = file.metadata().await.map_err(AppError::internal)?.len();
            return Ok(ExportFile { file, size });
        }
        let exports = self.root.join(".exports");
        tokio::fs::create_dir_all(&exports).await.map_err(AppError::internal)?;
        let out = exports.join(format!("{}.{}", uuid::Uuid::new_v4().simple(), format.as_str()));
        // Removed if anything below fails or the request is cancelled; renamed into place
        // (same file system) when complete.
        let _guard = Cleanup::file(out.clone());
        let target = out.clone();
        let columns = dataset.columns.clone();
        let done = kept.clone();
        // (Asked for again while this request waited for its turn: the other request's file.
        // Put in place within the turn, so that the next request's turn finds it.)
        let written = self
            .engine
            .run_heavy(move |conn| {
                if done.exists() {
                    return Ok(());
                }
                match format {
                    ExportFormat::Xlsx => xlsx::write_workbook(&target, &columns, |sink| {
                        ingest::for_each_row(conn, &data, &columns, |cells| sink(cells))
                    }),
                    _ => ingest::export_csv(conn, &data, &target),
                }?;
                std::fs::rename(&target, &done).map_err(|e| anyhow::anyhow!("keeping the export: {e}"))
            })
            .await;
        let written = match written {
            Err(e) => match e.downcast_ref::<xlsx::CellTooLong>() {
                Some(too_long) => Err(AppError::bad_input(
                    "format",
                    format!(
                        "{too_long} ({} characters at most); download CSV or Parquet",
                        xlsx::MAX_CELL_TEXT
                    ),
                )),
                None => Err(AppError::internal(e)),
            },
            Ok(()) => Ok(()),
        };
        if let Err(e) = written {
            // Deleted while it was being written: its files went with it.
            if e.code() == ErrorCode::Internal
                && self.store.dataset(dataset.id, dataset.owner_id).await?.is_none()
            {
                return Err(AppError::not_found("no such dataset"));
            }
            return Err(e);
        }
        let file = tokio::fs::File::open(&kept).await.map_err(AppError::internal)?;
        let size = file.metadata().await.map_err(AppError::internal)?.len();
        Ok(ExportFile { file, size })
    }
}

/// Detects a file's format and ingests it into `staging/data.parquet` (and
/// `staging/rejects.parquet`): what an upload does before it is published, and what the
/// command-line profiler does with a local file. An Excel sheet goes through a CSV in
/// `staging` that is removed afterwards.
pub async fn ingest_file(
    engine: &Engine,
    original: &Path,
    size: u64,
    read: &ReadOptions,
    staging: &Path,
) -> Result<(DatasetFormat, ingest::Ingested), AppError> {
    let sheet = read.sheet.clone();
    let original = original.to_path_buf();
    let (head, tail) = {
        let original = original.clone();
        tokio::task::spawn_blocking(move || read_ends(&original)).await.map_err(AppError::internal)?
    }
    .map_err(AppError::internal)?;
    let detected = detect(&head, &tail, size)?;
    let (source, sheet_notices, text_columns) = if detected.format == DatasetFormat::Xlsx {
        let (workbook, csv) = (original.clone(), staging.join("sheet.csv"));
        // Whole-file work, admitted as an ingest is (released before the ingest waits for its
        // own turn).
        let turn = engine.heavy_turn().await.map_err(AppError::internal)?;
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            xlsx::check_workbook(&workbook, xlsx::MAX_UNCOMPRESSED_BYTES)?;
            xlsx::sheet_to_csv(&workbook, sheet.as_deref(), &csv).map(|s| (csv, s.notices, s.text_columns))
        })
        .await
        .map_err(workbook_panic)??
    } else {
        // The format is known from the bytes only: a client cannot tell beforehand whether its
        // options apply, so one that does not is ignored, and said so.
        let ignored = sheet.as_ref().map(|sheet| {
            format!(
                "sheet {sheet:?} was ignored: the file is {}, not an Excel workbook",
                detected.format.as_str()
            )
        });
        (original, ignored.into_iter().collect(), Vec::new())
    };

    let (data, rejects) = (staging.join(DATA_FILE), staging.join(REJECTS_FILE));
    let mut kind = detected.kind.clone();
    if let ingest::SourceKind::Delimited { text_columns: text, .. } = &mut kind {
        *text = text_columns;
    }
    let mut sheet_notices = sheet_notices;
    match (&mut kind, read.header) {
        (_, None) => {}
        (ingest::SourceKind::Delimited { header, .. }, given) => *header = given,
        (_, Some(_)) => sheet_notices.push(format!(
            "header was ignored: the file is {}, which names its columns itself",
            detected.format.as_str()
        )),
    }
    let mut scratch = (detected.format == DatasetFormat::Xlsx).then(|| source.clone());
    // Text that is not UTF-8 is read through a UTF-8 copy in `staging`: Windows-1252 (Excel's
    // CSVs on Windows), whose € and curly quotes (bytes 0x80–0x9F) DuckDB's latin-1 refuses,
    // and UTF-16 (Excel's "Unicode text", PowerShell's JSON), whose characters beyond the BMP
    // DuckDB's UTF-16 reader refuses and whose JSON its JSON reader does not take.
    let source = if let Some(encoding) = detected.transcode {
        let text = staging.join(if matches!(kind, ingest::SourceKind::Delimited { .. }) {
            "text.csv"
        } else {
            "text.json"
        });
        let (from, to) = (source, text.clone());
        tokio::task::spawn_blocking(move || to_utf8(encoding, &from, &to))
            .await
            .map_err(AppError::internal)?
            .map_err(AppError::internal)?;
        scratch = Some(text.clone());
        text
    } else {
        source
    };
    let started = std::time::Instant::now();
    let mut ingested = engine
        .run_heavy(move |conn| Ok(ingest::ingest(conn, &kind, &source, &data, &rejects)))
        .await
        .map_err(AppError::internal)?
        .map_err(|e| ingest_error(e, detected.format))?;
    ingested.notices.extend(sheet_notices);
    if detected.transcode == Some(encoding_rs::WINDOWS_1252) {
        // A guess (the bytes are not UTF-8): said so, as a file mixing encodings reads wrongly.
        ingested.notices.push(
            "the file is not UTF-8: it was read as Windows-1252 (Western European, as Excel writes CSV on \
             Windows); text in another encoding reads wrongly"
                .into(),
        );
    }
    if let Some(sheet_csv) = scratch {
        // The sheet's CSV (or the UTF-8 copy) served the ingest only; it is not published.
        tokio::fs::remove_file(&sheet_csv).await.map_err(AppError::internal)?;
    }
    tracing::info!(
        format = detected.format.as_str(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "DuckDB ingest finished"
    );
    Ok((detected.format, ingested))
}

/// What the client is told when DuckDB cannot read a file as `format`.
fn ingest_error(e: IngestError, format: DatasetFormat) -> AppError {
    match e {
        IngestError::BadInput(message) => AppError::bad_input(
            "file",
            format!("the file could not be read as {}: {message}", format.as_str().to_uppercase()),
        ),
        IngestError::TooLarge(message) => AppError::new(ErrorCode::PayloadTooLarge, message),
        IngestError::Internal(cause) => AppError::internal(cause),
    }
}

/// A dataset name (`domain::check_dataset_name`), or `BAD_USER_INPUT` on `name`.
fn check_name(raw: &str) -> Result<String, AppError> {
    crate::domain::check_dataset_name(raw)
        .map(str::to_string)
        .map_err(|why| AppError::bad_input("name", format!("name {why}")))
}

/// A file's size and hex SHA-256. Blocking.
fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let size = std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok((size, crate::store::hex_digest(&hasher.finalize())))
}

/// Refuses a format that cannot hold the dataset (Excel's row and column limits).
pub fn check_export(dataset: &Dataset, format: ExportFormat) -> Result<(), AppError> {
    if format == ExportFormat::Xlsx && (dataset.row_count >= xlsx::MAX_ROWS || dataset.columns.len() > 16_384)
    {
        return Err(AppError::bad_input(
            "format",
            format!(
                "Excel holds at most {} rows and 16384 columns; download CSV or Parquet",
                xlsx::MAX_ROWS - 1
            ),
        ));
    }
    Ok(())
}

/// Removes a file or folder when dropped, unless disarmed.
struct Cleanup {
    path: Option<PathBuf>,
    dir: bool,
}

impl Cleanup {
    fn dir(path: PathBuf) -> Cleanup {
        Cleanup { path: Some(path), dir: true }
    }

    fn file(path: PathBuf) -> Cleanup {
        Cleanup { path: Some(path), dir: false }
    }

    fn disarm(mut self) {
        self.path = None;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // Failure paths only (or a file already unlinked): small, rare blocking work.
        if let Some(path) = self.path.take() {
            let _ = if self.dir { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        }
    }
}

/// The working folders under the datasets root: uploads streamed in, datasets being built,
/// exports being written, files being fetched from an object store.
const WORKING_FOLDERS: [&str; 4] = [".uploads", ".staging", ".exports", ".fetch"];

impl Datasets {
    /// Creates the datasets root and its working folders and checks that this process can
    /// write in each, so that a data directory it cannot write stops start-up naming the
    /// folder rather than failing a user's first upload or export.
    pub fn prepare_folders(&self) -> anyhow::Result<()> {
        crate::storage::ensure_writable(&self.root)?;
        for folder in WORKING_FOLDERS {
            crate::storage::ensure_writable(&self.root.join(folder))?;
        }
        Ok(())
    }

    /// Removes what interrupted uploads, ingests, exports and fetches left behind (after a
    /// crash). Several processes may share `DATA_DIR`, so only entries untouched for
    /// [`LEFTOVER_AGE`] are removed: another process's work in progress is recent.
    pub async fn sweep_leftovers(&self) {
        for folder in WORKING_FOLDERS {
            let path = self.root.join(folder);
            let Ok(mut entries) = tokio::fs::read_dir(&path).await else { continue };
            while let Ok(Some(entry)) = entries.next_entry().await {
                let stale = entry
                    .metadata()
                    .await
                    .and_then(|m| m.modified())
                    .map(|modified| modified.elapsed().unwrap_or_default() > LEFTOVER_AGE)
                    .unwrap_or(false);
                if !stale {
                    continue;
                }
                let entry_path = entry.path();
                let removed = if entry.file_type().await.is_ok_and(|t| t.is_dir()) {
                    tokio::fs::remove_dir_all(&entry_path).await
                } else {
                    tokio::fs::remove_file(&entry_path).await
                };
                match removed {
                    Ok(()) => {
                        tracing::info!(path = %entry_path.display(), "removed leftovers of interrupted work")
                    }
                    Err(e) => {
                        tracing::warn!(path = %entry_path.display(), error = %e, "could not remove leftovers")
                    }
                }
            }
        }
    }
}

/// How long an upload, staging, export or fetch entry must sit untouched before start-up
/// treats it as left by a crash.
pub const LEFTOVER_AGE: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

fn key(dataset: &Dataset) -> FilesKey {
    FilesKey { owner: dataset.owner_id, dataset: dataset.id }
}

/// Removes a published dataset's files when dropped, unless disarmed: a dataset whose
/// metadata could not be recorded (or whose request was cancelled) leaves nothing behind.
struct Unpublish {
    storage: Option<Arc<dyn Storage>>,
    key: FilesKey,
}

impl Unpublish {
    fn disarm(mut self) {
        self.storage = None;
    }
}

impl Drop for Unpublish {
    fn drop(&mut self) {
        if let Some(storage) = self.storage.take() {
            let key = self.key;
            // Drop cannot await: removal runs as its own task.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    if let Err(e) = storage.remove(key).await {
                        tracing::warn!(dataset_id = %key.dataset, error = format!("{e:#}"), "could not remove unrecorded files");
                    }
                });
            }
        }
    }
}

/// `id` and every version derived from it, directly or not.
fn descendants(versions: &[Dataset], id: DatasetId) -> Vec<DatasetId> {
    let mut out = vec![id];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(versions.iter().filter(|v| v.parent_id == Some(parent)).map(|v| v.id));
        i += 1;
    }
    out
}

fn check_rows(argument: &str, n: u64) -> Result<(), AppError> {
    if n == 0 || n > MAX_ROWS {
        return Err(AppError::bad_input(argument, format!("{argument} must be between 1 and {MAX_ROWS}")));
    }
    Ok(())
}

/// The last path component of a client's file name, without control characters (nor
/// bidirectional overrides, which disguise an extension), at most 255 characters: what is
/// shown, never what is opened.
fn display_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String =
        last.chars().filter(|&c| !c.is_control() && !crate::domain::is_bidi_control(c)).collect();
    let clean = clean.trim();
    if clean.is_empty() || clean == "." || clean == ".." {
        return "upload".to_string();
    }
    // A long name keeps its extension (downloads and cleansed versions are named after it).
    let (stem, extension) = crate::domain::split_extension(clean);
    crate::domain::fit_name(stem, extension).trim().to_string()
}

/// Rewrites a text file in `encoding` (Windows-1252, UTF-16) as UTF-8, streamed, without its
/// byte-order mark. Blocking.
fn to_utf8(encoding: &'static encoding_rs::Encoding, from: &Path, to: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let mut input = std::fs::File::open(from)?;
    let mut output = std::io::BufWriter::new(std::fs::File::create(to)?);
    // Windows-1252 has no byte-order mark of its own, but a file may start with UTF-8's (an
    // editor's) before Windows-1252 text: it is dropped, not read as `ï»¿` in the first name.
    let mut decoder = encoding.new_decoder_with_bom_removal();
    let mut bytes = vec![0u8; 1 << 16];
    let mut text = String::new();
    let mut first = true;
    loop {
        let mut n = input.read(&mut bytes)?;
        if std::mem::take(&mut first)
            && encoding == encoding_rs::WINDOWS_1252
            && bytes[..n].starts_with(&[0xEF, 0xBB, 0xBF])
        {
            bytes.copy_within(3..n, 0);
            n -= 3;
            if n == 0 {
                continue;
            }
        }
        text.clear();
        text.reserve(decoder.max_utf8_buffer_length(n).unwrap_or(4 * n + 16));
        // With that much room the decoder always takes the whole input.
        let _ = decoder.decode_to_string(&bytes[..n], &mut text, n == 0);
        output.write_all(text.as_bytes())?;
        if n == 0 {
            break;
        }
    }
    output.flush()
}

/// The first [`HEAD_BYTES`] and the last four bytes of a file.
/// calamine panics on some inconsistent workbooks (a shared-string index past the table's
/// end): the file is at fault, not the server.
fn workbook_panic(error: tokio::task::JoinError) -> AppError {
    if !error.is_panic() {
        return AppError::internal(error);
    }
    tracing::warn!(error = %error, "reading a workbook panicked");
    AppError::bad_input(
        "file",
        "the workbook could not be read: its parts contradict each other (is it damaged?)",
    )
}

fn read_ends(path: &Path) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut file = std::fs::File::open(path)?;
    let mut head = Vec::with_capacity(HEAD_BYTES);
    (&mut file).take(HEAD_BYTES as u64).read_to_end(&mut head)?;
    let len = file.metadata()?.len();
    let mut tail = Vec::new();
    if len >= 4 {
        file.seek(SeekFrom::Start(len - 4))?;
        file.read_to_end(&mut tail)?;
    }
    Ok((head, tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_never_paths() {
        assert_eq!(display_name("../../etc/passwd"), "passwd");
        assert_eq!(display_name("C:\\Users\\x\\data.csv"), "data.csv");
        assert_eq!(display_name(".."), "upload");
        assert_eq!(display_name("a\u{0}b\n.csv"), "ab.csv");
        assert_eq!(
            display_name("invoice\u{202E}vsc.exe"),
            "invoicevsc.exe",
            "no override to disguise the extension"
        );
        assert_eq!(display_name(""), "upload");
        let long = display_name(&format!("{}.xlsx", "a".repeat(400)));
        assert_eq!(long.chars().count(), 255);
        assert!(long.ends_with("a.xlsx"));
    }

    use crate::domain::{Email, NewUser, Role};
    use crate::store::SqliteStore;

    /// A service over a fresh SQLite store, an engine and local storage in `dir`, and a user.
    async fn harness(dir: &Path) -> (Datasets, UserId) {
        let store = SqliteStore::open(&dir.join("meta.db")).await.unwrap();
        store.migrate().await.unwrap();
        let user = store
            .create_user(&NewUser {
                id: UserId::generate(),
                email: Email::parse("versions@example.com").unwrap(),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
                role: Role::User,
                created_at: crate::store::now(),
            })
            .await
            .unwrap();
        let config = crate::config::EngineConfig {
            memory_limit: Some("256MB".into()),
            threads: Some(1),
            temp_dir: None,
            max_concurrent_ingests: 1,
        };
        let engine = Engine::open(&config, &dir.join("spill")).unwrap();
        let root = dir.join("datasets");
        let storage = Arc::new(crate::storage::LocalStorage::new(root.clone()));
        (Datasets::new(Arc::new(store), engine, storage, root), user.id)
    }

    async fn upload_csv(datasets: &Datasets, owner: UserId, csv: &[u8]) -> Dataset {
        let uploads = datasets.uploads_dir();
        std::fs::create_dir_all(&uploads).unwrap();
        let path = uploads.join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::write(&path, csv).unwrap();
        let file = StagedFile {
            path,
            filename: "people.csv".into(),
            size: csv.len() as u64,
            sha256: crate::store::hex_digest(&<sha2::Sha256 as sha2::Digest>::digest(csv)),
        };
        datasets.upload(owner, &file, None, ReadOptions::default()).await.unwrap()
    }

    /// Every file of a folder with its bytes, sorted by name.
    fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap()))
            .collect();
        files.sort();
        files
    }

    fn staging_is_empty(datasets: &Datasets) -> bool {
        match std::fs::read_dir(datasets.root.join(".staging")) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        }
    }

    #[tokio::test]
    async fn a_parquet_file_becomes_a_version_of_its_parent() {
        let dir = tempfile::tempdir().unwrap();
        let (datasets, owner) = harness(dir.path()).await;
        let parent = upload_csv(&datasets, owner, b"id,name\n1,Ada\n2,Bob\n3,Cy\n4,Di\n").await;
        assert_eq!(parent.row_count, 4);
        let parent_files = datasets.files(&parent).await.unwrap();
        let before = snapshot(&parent_files);

        // A cleanse output: written by the engine outside the datasets folder.
        let out = dir.path().join("cleaned.parquet");
        let (source, target) = (parent_files.join(DATA_FILE), out.clone());
        datasets
            .engine()
            .run(move |conn| {
                Ok(conn.execute_batch(&format!(
                    "COPY (SELECT * FROM read_parquet({}) WHERE id > 2 ORDER BY id) TO {} (FORMAT parquet)",
                    crate::engine::quote_literal(&source.display().to_string()),
                    crate::engine::quote_literal(&target.display().to_string())
                ))?)
            })
            .await
            .unwrap();

        let version = datasets
            .publish_version(&parent, DatasetKind::Cleaned, &out, "people (cleaned)", None)
            .await
            .unwrap();
        assert_ne!(version.id, parent.id);
        assert_eq!(version.owner_id, owner);
        assert_eq!(version.root_id, parent.id);
        assert_eq!(version.parent_id, Some(parent.id));
        assert_eq!(version.name, "people (cleaned)");
        assert_eq!(version.original_filename, "people (cleaned)");
        assert_eq!(version.format, DatasetFormat::Parquet);
        assert_eq!(version.row_count, 2);
        assert_eq!(version.columns, parent.columns);
        assert_eq!((version.rejected_row_count, version.notices.is_empty()), (0, true));
        assert!(out.exists(), "the engine's file is read, not moved");

        // Recorded, with the published data file's size and hash.
        assert_eq!(datasets.get(owner, &version.id.to_string()).await.unwrap(), version);
        let published = std::fs::read(datasets.data_path(&version).await.unwrap()).unwrap();
        assert_eq!(version.size_bytes, published.len() as u64);
        assert_eq!(
            version.sha256,
            crate::store::hex_digest(&<sha2::Sha256 as sha2::Digest>::digest(&published))
        );
        let version_files = datasets.files(&version).await.unwrap();
        assert_eq!(std::fs::read(version_files.join(ORIGINAL_FILE)).unwrap(), published);

        let ids: Vec<_> = datasets.versions(&parent).await.unwrap().iter().map(|d| d.id).collect();
        assert_eq!(ids, vec![parent.id, version.id]);
        let ids: Vec<_> = datasets.versions(&version).await.unwrap().iter().map(|d| d.id).collect();
        assert_eq!(ids, vec![parent.id, version.id]);
        // Quarantined rows, and a version cleaned from them, are a line of their own.
        let quarantine = datasets
            .publish_version(&parent, DatasetKind::Quarantine, &out, "people (quarantined rows)", None)
            .await
            .unwrap();
        let requeued =
            datasets.publish_version(&quarantine, DatasetKind::Cleaned, &out, "again", None).await.unwrap();
        let ids = |list: Vec<Dataset>| list.iter().map(|d| d.id).collect::<Vec<_>>();
        assert_eq!(ids(datasets.versions(&parent).await.unwrap()), vec![parent.id, version.id]);
        assert_eq!(ids(datasets.versions(&quarantine).await.unwrap()), vec![quarantine.id, requeued.id]);
        assert_eq!(ids(datasets.versions(&requeued).await.unwrap()), vec![quarantine.id, requeued.id]);
        datasets.delete(owner, &quarantine.id.to_string()).await.unwrap();
        assert_eq!(ids(datasets.versions(&parent).await.unwrap()), vec![parent.id, version.id]);

        assert_eq!(snapshot(&parent_files), before, "the parent's files are unchanged");
        assert_eq!(datasets.get(owner, &parent.id.to_string()).await.unwrap(), parent);
        assert_eq!(
            datasets.preview(&version, 10, 0).await.unwrap(),
            vec![serde_json::json!({"id": 3, "name": "Cy"}), serde_json::json!({"id": 4, "name": "Di"})]
        );
        assert_eq!(datasets.preview(&parent, 10, 0).await.unwrap().len(), 4);
        assert!(datasets.rejects(&version, 10).await.unwrap().is_empty());
        assert!(staging_is_empty(&datasets));
    }

    #[tokio::test]
    async fn a_file_that_is_not_parquet_records_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (datasets, owner) = harness(dir.path()).await;
        let parent = upload_csv(&datasets, owner, b"id,name\n1,Ada\n").await;
        let not_parquet = dir.path().join("cleaned.parquet");
        std::fs::write(&not_parquet, b"id,name\n1,Ada\n").unwrap();

        let err = datasets
            .publish_version(&parent, DatasetKind::Cleaned, &not_parquet, "cleaned", None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadUserInput, "{}", err.report());
        assert!(!err.message().contains(&dir.path().display().to_string()), "{}", err.message());
        let err = datasets
            .publish_version(&parent, DatasetKind::Cleaned, &not_parquet, "  ", None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadUserInput);

        assert_eq!(datasets.versions(&parent).await.unwrap(), vec![parent.clone()]);
        assert!(staging_is_empty(&datasets));
        // Only the parent's folder under the owner's.
        let owner_dir = datasets.root.join(owner.to_string());
        let folders: Vec<_> = std::fs::read_dir(&owner_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(folders, vec![parent.id.to_string()]);
    }
}
