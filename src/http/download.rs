//! `GET /downloads/{token}`: streams a dataset version as CSV, Parquet or XLSX. The token is a
//! signed, short-lived link bound to its owner and dataset (see `Dataset.download`).

use poem::http::{StatusCode, header};
use poem::web::{Data, Path};
use poem::{Body, Response, handler};

use super::graphql::error_response;
use crate::app::AppState;
use crate::datasets::ExportFormat;
use crate::error::ErrorCode;

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
    let stem = dataset.name.rsplit_once('.').map_or(dataset.name.as_str(), |(stem, _)| stem);
    let filename = attachment_name(&format!("{stem}.{}", format.as_str()));
    Response::builder()
        .content_type(format.content_type())
        .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\""))
        .header(header::CONTENT_LENGTH, export.size)
        .header(header::CACHE_CONTROL, "private, no-store")
        .body(Body::from_async_read(export.file))
}
