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

/// A `Content-Disposition` value (`attachment` or `inline`) naming the file `name`: an ASCII
/// `filename` every client reads, and, when that had to change the name, the name itself as
/// RFC 6266 `filename*` (UTF-8, percent-encoded as RFC 8187 says), which browsers prefer.
fn disposition(kind: &str, name: &str) -> String {
    let ascii = attachment_name(name);
    if ascii == name {
        return format!("{kind}; filename=\"{ascii}\"");
    }
    let mut encoded = String::with_capacity(name.len() * 3);
    for byte in name.bytes() {
        // RFC 8187's attr-char.
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[handler]
pub(super) async fn download(
    req: &poem::Request,
    Path(token): Path<String>,
    Data(state): Data<&AppState>,
) -> Response {
    let response = serve(token, state).await;
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    // As a GraphQL internal error says: the request id to quote (the cause is in the log).
    let id = super::request_id(req);
    let mut body = crate::gql::error_body(
        ErrorCode::Internal,
        &format!("internal error; quote request id {id} when reporting it"),
    );
    body["errors"][0]["extensions"]["requestId"] = serde_json::Value::from(id);
    Response::builder()
        .status(StatusCode::INTERNAL_SERVER_ERROR)
        .content_type("application/json")
        .body(body.to_string())
}

async fn serve(token: String, state: &AppState) -> Response {
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
    Response::builder()
        .content_type(format.content_type())
        .header(
            header::CONTENT_DISPOSITION,
            disposition("attachment", &crate::domain::download_name(&dataset.name, format.as_str())),
        )
        .header(header::CONTENT_LENGTH, export.size)
        .header(header::CACHE_CONTROL, "private, no-store")
        .header("X-Content-Type-Options", "nosniff")
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
    let kind = if format == ReportFormat::Html { "inline" } else { "attachment" };
    Response::builder()
        .content_type(format.content_type())
        .header(header::CONTENT_DISPOSITION, disposition(kind, &file.name))
        .header(header::CACHE_CONTROL, "private, no-store")
        // The HTML report is self-contained: it may load nothing, run nothing.
        .header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
        .header("X-Content-Type-Options", "nosniff")
        .body(file.bytes.clone())
}

#[cfg(test)]
mod tests {
    use super::disposition;

    #[test]
    fn names_outside_ascii_are_given_as_rfc_8187_too() {
        assert_eq!(disposition("attachment", "sales v1.2.csv"), "attachment; filename=\"sales v1.2.csv\"");
        assert_eq!(
            disposition("attachment", "données 😀.csv"),
            "attachment; filename=\"donn_es _.csv\"; filename*=UTF-8''donn%C3%A9es%20%F0%9F%98%80.csv"
        );
        // Quotes and separators never reach the header unencoded.
        assert_eq!(
            disposition("inline", "a\"b;c.html"),
            "inline; filename=\"a_b_c.html\"; filename*=UTF-8''a%22b%3Bc.html"
        );
    }
}
