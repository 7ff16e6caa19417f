//! `GET /downloads/{token}`: streams a dataset version as CSV, Parquet or XLSX. The token is a
//! signed, short-lived link bound to its owner and dataset (see `Dataset.download`), or a job's
//! report as JSON, XLSX or HTML (see `Job.downloads`).

use poem::http::{StatusCode, header};
use poem::web::{Data, Path};
use poem::{Body, Response, handler};

use super::graphql::error_response;
use crate::app::AppState;
use crate::datasets::ExportFormat;
use crate::domain::UserId;
use crate::error::{AppError, ErrorCode};
use crate::reports::ReportFormat;

/// ASCII-only, quote-free file name for `Content-Disposition`.
fn attachment_name(name: &str) -> String {
    let clean: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._- ".contains(c) { c } else { '_' }).collect();
    if clean.trim().is_empty() { "dataset".into() } else { clean }
}

#[handler]
pub(super) async fn download(Path(token): Path<String>, Data(state): Data<&AppState>) -> Response {
    let refused = || {
        error_response(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            "the download link is invalid or expired",
        )
    };
    let Some((owner, claims)) = state.accounts.tokens().verify_download(&token) else { return refused() };
    if let Some(job) = &claims.job {
        let Some(format) = ReportFormat::parse(&claims.format) else { return refused() };
        return report(state, owner, job, format).await;
    }
    let Some(format) = ExportFormat::parse(&claims.format) else { return refused() };
    let dataset = match state.datasets.get(owner, &claims.dataset).await {
        Ok(d) => d,
        Err(e) => {
            let status = StatusCode::from_u16(e.code().http_status()).unwrap_or(StatusCode::NOT_FOUND);
            return error_response(status, e.code(), e.message());
        }
    };
    let export = match state.datasets.export(&dataset, format).await {
        Ok(export) => export,
        Err(e) if e.code() == ErrorCode::Internal => {
            tracing::error!(error = e.report(), "preparing a download failed");
            return error_response(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "internal error");
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.code().http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            return error_response(status, e.code(), e.message());
        }
    };
    // As `Dataset.download.name` says: `contacts v1.2 final` keeps its dots.
    let (stem, _) = crate::domain::split_extension(&dataset.name);
    let filename = attachment_name(&format!("{stem}.{}", format.as_str()));
    Response::builder()
        .content_type(format.content_type())
        .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\""))
        .header(header::CONTENT_LENGTH, export.size)
        .header(header::CACHE_CONTROL, "private, no-store")
        .body(Body::from_async_read(export.file))
}

fn refusal(e: AppError) -> Response {
    if e.code() == ErrorCode::Internal {
        tracing::error!(error = e.report(), "preparing a download failed");
        return error_response(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "internal error");
    }
    let status = StatusCode::from_u16(e.code().http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    error_response(status, e.code(), e.message())
}

/// A job's report as a file; the job must still exist and belong to the link's owner.
async fn report(state: &AppState, owner: UserId, job: &str, format: ReportFormat) -> Response {
    let job = match state.jobs.get(owner, job).await {
        Ok(job) => job,
        Err(e) => return refusal(e),
    };
    let file = match state.jobs.report_file(&job, format).await {
        Ok(Some(file)) => file,
        Ok(None) => {
            return error_response(StatusCode::NOT_FOUND, ErrorCode::NotFound, "the job has no report");
        }
        Err(e) => return refusal(e),
    };
    let disposition = if format == ReportFormat::Html { "inline" } else { "attachment" };
    Response::builder()
        .content_type(format.content_type())
        .header(
            header::CONTENT_DISPOSITION,
            format!("{disposition}; filename=\"{}\"", attachment_name(&file.name)),
        )
        .header(header::CACHE_CONTROL, "private, no-store")
        // The HTML report is self-contained: it may load nothing, run nothing.
        .header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
        .header("X-Content-Type-Options", "nosniff")
        .body(file.bytes.clone())
}
