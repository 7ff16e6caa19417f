//! Datasets in GraphQL: `uploadDataset`, `dataset`, `datasets`, `deleteDataset`, and the
//! `Dataset` type with its preview, rejects and versions.

use async_graphql::{Context, ID, Json, Object, SimpleObject, Upload};
use chrono::{DateTime, Utc};

use async_graphql::dataloader::DataLoader;

use super::context::ContextExt;
use super::loaders::DatasetLoader;
use super::pagination::{PageInfo, encode_cursor, page_request};
use crate::datasets::{Datasets, ExportFormat, StagedFile, check_export};
use crate::domain;
use crate::error::AppError;

/// Uploads of the current request, already streamed to disk by the HTTP layer, in the
/// order of their `Upload` indexes. Each is taken once: an upload moves its file.
#[derive(Debug, Default)]
pub struct StagedUploads {
    files: Vec<StagedFile>,
    taken: std::sync::Mutex<Vec<usize>>,
}

impl StagedUploads {
    pub fn push(&mut self, file: StagedFile) {
        self.files.push(file);
    }

    /// The file of upload `index`, once.
    fn take(&self, index: usize) -> Result<&StagedFile, AppError> {
        let file = self
            .files
            .get(index)
            .ok_or_else(|| AppError::bad_input("file", "send the file as a multipart upload"))?;
        let mut taken = self.taken.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if taken.contains(&index) {
            return Err(AppError::bad_input(
                "file",
                "this upload is already used by another field of the request: send the file once for each field",
            ));
        }
        taken.push(index);
        Ok(file)
    }
}

fn datasets<'a>(ctx: &'a Context<'_>) -> Result<&'a Datasets, AppError> {
    ctx.data::<Datasets>().map_err(|e| AppError::internal(anyhow::anyhow!("schema data: {}", e.message)))
}

/// A column's name and type.
#[derive(SimpleObject)]
pub struct Column {
    name: String,
    /// DuckDB type, e.g. BIGINT, DOUBLE, VARCHAR, DATE, TIMESTAMP.
    r#type: String,
}

/// Why an input row could not be read as the detected schema (the row is kept out of the
/// data and reported): one entry per problem, so a row with two bad values has two, each
/// naming its column; `rejectedRowCount` counts rows.
#[derive(SimpleObject)]
pub struct RejectedRow {
    /// 1-based line in the uploaded file.
    line: f64,
    column: Option<String>,
    reason: String,
}

/// A version of an uploaded table.
pub struct Dataset(pub domain::Dataset, Reached);

/// How a `Dataset` object was reached: from a `versions` list (directly or through `parent`)
/// or not. A version's `versions` are the same family again: each nesting multiplied the
/// response by their number, whatever the fields were aliased as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reached {
    Directly,
    FromVersions,
}

impl Dataset {
    pub fn new(dataset: domain::Dataset) -> Dataset {
        Dataset(dataset, Reached::Directly)
    }
}

/// A version of an uploaded table, stored as the original file and a canonical Parquet copy.
#[Object]
impl Dataset {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Recognised from the content: csv, tsv, json, ndjson, parquet or xlsx.
    async fn format(&self) -> &str {
        self.0.format.as_str()
    }

    /// The uploaded file's name (display only).
    async fn original_filename(&self) -> &str {
        &self.0.original_filename
    }

    async fn size_bytes(&self) -> f64 {
        self.0.size_bytes as f64
    }

    /// Hex SHA-256 of the uploaded bytes.
    async fn sha256(&self) -> &str {
        &self.0.sha256
    }

    async fn row_count(&self) -> f64 {
        self.0.row_count as f64
    }

    async fn column_count(&self) -> i32 {
        i32::try_from(self.0.columns.len()).unwrap_or(i32::MAX)
    }

    #[graphql(complexity = "crate::gql::per_column(child_complexity)")]
    async fn columns(&self) -> Vec<Column> {
        self.0.columns.iter().map(|c| Column { name: c.name.clone(), r#type: c.data_type.clone() }).collect()
    }

    /// Malformed input rows: kept and reported, never silently dropped.
    async fn rejected_row_count(&self) -> f64 {
        self.0.rejected_row_count as f64
    }

    /// What ingest changed that you should know: columns renamed to make names unique or
    /// non-empty, a file without a header row.
    async fn notices(&self) -> &[String] {
        &self.0.notices
    }

    /// The first `first` problems of rejected rows (1 to 1000 at a time), by line (see
    /// `RejectedRow`).
    #[graphql(complexity = "crate::gql::rows(first.unwrap_or(crate::gql::FIRST_ROWS))")]
    async fn rejects(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(crate::gql::FIRST_ROWS)")] first: Option<i32>,
    ) -> async_graphql::Result<Vec<RejectedRow>> {
        let first = first.unwrap_or(crate::gql::FIRST_ROWS);
        let first = u64::try_from(first).unwrap_or(0);
        let rows = datasets(ctx)?.rejects(&self.0, first).await?;
        Ok(rows
            .into_iter()
            .map(|r| RejectedRow { line: r.line as f64, column: r.column, reason: r.reason })
            .collect())
    }

    /// Rows of the canonical copy as JSON objects (at most 1000 at a time). Decimals of more
    /// than 15 digits and integers beyond 2^53, also inside lists and structs, are strings,
    /// which a JSON number (a double) would round.
    #[graphql(complexity = "crate::gql::rows(limit.unwrap_or(crate::gql::PREVIEW_ROWS))")]
    async fn preview(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(crate::gql::PREVIEW_ROWS)")] limit: Option<i32>,
        #[graphql(default_with = "Some(crate::gql::FIRST_OFFSET)")] offset: Option<i32>,
    ) -> async_graphql::Result<Vec<Json<serde_json::Value>>> {
        let offset = offset.unwrap_or(crate::gql::FIRST_OFFSET);
        let limit = limit.unwrap_or(crate::gql::PREVIEW_ROWS);
        let limit = u64::try_from(limit).unwrap_or(0);
        let offset =
            u64::try_from(offset).map_err(|_| AppError::bad_input("offset", "offset must be 0 or more"))?;
        let rows = datasets(ctx)?.preview(&self.0, limit, offset).await?;
        Ok(rows.into_iter().map(Json).collect())
    }

    /// Every version of this dataset, oldest first: the upload and its cleaned versions (a
    /// cleanse creates a new version; the rows it quarantined are a dataset of their own,
    /// `Job.quarantine`, not a version: a quarantine's versions are itself and the versions
    /// cleaned from it). Once per
    /// path: a version's `versions` are the same family again, and each nesting multiplied
    /// the response by their number (`BAD_USER_INPUT`).
    #[graphql(complexity = "crate::gql::per_version(child_complexity)")]
    async fn versions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Dataset>> {
        if self.1 == Reached::FromVersions {
            return Err(AppError::bad_input(
                "versions",
                "versions may be selected once in a path: a version's versions are the same family",
            )
            .into());
        }
        Ok(datasets(ctx)?
            .versions(&self.0)
            .await?
            .into_iter()
            .map(|d| Dataset(d, Reached::FromVersions))
            .collect())
    }

    /// What the dataset is: an upload, a cleanse's cleaned rows (a new version) or the rows
    /// a cleanse quarantined (kept apart: not among `versions`).
    async fn kind(&self) -> DatasetKind {
        match self.0.kind {
            domain::DatasetKind::Upload => DatasetKind::Upload,
            domain::DatasetKind::Cleaned => DatasetKind::Cleaned,
            domain::DatasetKind::Quarantine => DatasetKind::Quarantine,
        }
    }

    /// The dataset this one was derived from: the cleanse's input, for cleaned and
    /// quarantined rows.
    async fn parent(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Dataset>> {
        let Some(parent) = self.0.parent_id else { return Ok(None) };
        let loader = ctx.data::<DataLoader<DatasetLoader>>()?;
        Ok(loader.load_one((self.0.owner_id, parent)).await?.map(|d| Dataset(d, self.1)))
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// A link that downloads this version (GET, no header needed), valid for five minutes
    /// and only for this dataset.
    async fn download(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(DownloadFormat::Csv)")] format: Option<DownloadFormat>,
    ) -> async_graphql::Result<DatasetDownload> {
        let format = match format.unwrap_or(DownloadFormat::Csv) {
            DownloadFormat::Csv => ExportFormat::Csv,
            DownloadFormat::Parquet => ExportFormat::Parquet,
            DownloadFormat::Xlsx => ExportFormat::Xlsx,
        };
        check_export(&self.0, format)?;
        let (token, expires) = ctx
            .accounts()?
            .tokens()
            .issue_download(self.0.owner_id, &self.0.id.to_string(), format.as_str(), DOWNLOAD_TTL)
            .map_err(AppError::internal)?;
        Ok(DatasetDownload {
            name: crate::domain::download_name(&self.0.name, format.as_str()),
            format: format.as_str().to_string(),
            url: format!("/downloads/{token}"),
            expires_at: DateTime::from_timestamp(expires, 0).unwrap_or_default(),
        })
    }
}

const DOWNLOAD_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// What a dataset is.
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DatasetKind {
    /// A file a user uploaded.
    Upload,
    /// A cleanse's cleaned rows: a new version of its input.
    Cleaned,
    /// The rows a cleanse quarantined, each with its reason (`_reason`, `_row`).
    Quarantine,
}

impl From<DatasetKind> for domain::DatasetKind {
    fn from(kind: DatasetKind) -> Self {
        match kind {
            DatasetKind::Upload => domain::DatasetKind::Upload,
            DatasetKind::Cleaned => domain::DatasetKind::Cleaned,
            DatasetKind::Quarantine => domain::DatasetKind::Quarantine,
        }
    }
}

/// File formats a dataset can be downloaded in.
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DownloadFormat {
    Csv,
    Parquet,
    /// Excel; at most 1,048,575 rows, and no text longer than an Excel cell holds (32,767
    /// UTF-16 code units: the download is then refused with BAD_USER_INPUT naming the cell).
    /// Integer columns' values beyond ±2^53, which an Excel number would round, are written as
    /// text.
    Xlsx,
}

/// A short-lived download link.
#[derive(SimpleObject)]
pub struct DatasetDownload {
    /// Suggested file name.
    name: String,
    format: String,
    /// Path on this server; GET it (relative to the API's origin).
    url: String,
    expires_at: DateTime<Utc>,
}

/// A page of datasets.
#[derive(SimpleObject)]
pub struct DatasetConnection {
    nodes: Vec<Dataset>,
    page_info: PageInfo,
    total_count: i32,
}

#[derive(Default)]
pub struct DatasetQuery;

#[Object]
impl DatasetQuery {
    /// One of the caller's datasets; `NOT_FOUND` for an unknown id or someone else's.
    async fn dataset(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Dataset>> {
        let caller = ctx.caller()?;
        Ok(Some(Dataset::new(datasets(ctx)?.get(caller.user_id, &id).await?)))
    }

    /// The caller's datasets, newest first: with `kind`, only those of these kinds (uploads
    /// and cleaned versions, say, without the quarantined rows; null or empty: every kind).
    #[graphql(complexity = "crate::gql::paged(first.unwrap_or(crate::gql::FIRST_PAGE), child_complexity)")]
    async fn datasets(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default_with = "Some(crate::gql::FIRST_PAGE)",
            desc = "How many to return, from 1 to 100."
        )]
        first: Option<i32>,
        after: Option<String>,
        kind: Option<Vec<DatasetKind>>,
    ) -> async_graphql::Result<DatasetConnection> {
        let first = first.unwrap_or(crate::gql::FIRST_PAGE);
        let caller = ctx.caller()?;
        let page = page_request("dataset", first, after.as_deref())?;
        let kinds: Vec<domain::DatasetKind> = kind.unwrap_or_default().into_iter().map(Into::into).collect();
        let result = datasets(ctx)?.list(caller.user_id, &kinds, &page).await?;
        let end_cursor = result.items.last().map(|d| encode_cursor("dataset", d.id.0));
        Ok(DatasetConnection {
            total_count: i32::try_from(result.total_count).unwrap_or(i32::MAX),
            page_info: PageInfo { has_next_page: result.has_next_page, end_cursor },
            nodes: result.items.into_iter().map(Dataset::new).collect(),
        })
    }
}

#[derive(Default)]
pub struct DatasetMutation;

#[Object]
impl DatasetMutation {
    /// Uploads a CSV, TSV, JSON (array of objects), NDJSON, Parquet or Excel (.xlsx) file, following the
    /// GraphQL multipart request specification. The format is recognised from the content.
    async fn upload_dataset(
        &self,
        ctx: &Context<'_>,
        file: Upload,
        name: Option<String>,
        #[graphql(
            desc = "For Excel workbooks: the sheet to read, its name in any case (default: the first \
                          visible worksheet). Ignored, with a notice, for other files."
        )]
        sheet: Option<String>,
        #[graphql(desc = "For CSV, TSV and Excel: whether the first row holds the column names \
                          (default: detected; a first row of numbers, such as years, reads as data). \
                          Ignored, with a notice, for JSON and Parquet, which name their columns.")]
        header: Option<bool>,
    ) -> async_graphql::Result<Dataset> {
        let caller = ctx.caller()?;
        let staged = ctx
            .data_opt::<StagedUploads>()
            .ok_or_else(|| AppError::bad_input("file", "send the file as a multipart upload"))?
            .take(file.0)?;
        let read = crate::datasets::ReadOptions { sheet, header };
        Ok(Dataset::new(datasets(ctx)?.upload(caller.user_id, staged, name, read).await?))
    }

    /// Deletes one of the caller's datasets with its derived versions, files and jobs. Jobs
    /// of other datasets that used it as their baseline keep their reports, without it.
    async fn delete_dataset(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let caller = ctx.caller()?;
        datasets(ctx)?.delete(caller.user_id, &id).await?;
        Ok(true)
    }
}
