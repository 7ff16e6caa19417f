//! The GraphQL multipart request specification (`operations`, `map`, then files), with
//! each file streamed straight to the data directory — never held in memory — hashed
//! (SHA-256) on the way, and cut off at `MAX_UPLOAD_SIZE`.

use std::collections::HashMap;
use std::path::PathBuf;

use poem::http::header;
use poem::{Body, Request};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::graphql::{Params, into_request};
use crate::app::AppState;
use crate::datasets::StagedFile;
use crate::error::ErrorCode;
use crate::gql::GraphqlRequest;

type Refusal = (ErrorCode, String);

/// Files written for one request; whatever the request did not take is removed on drop,
/// so an interrupted or refused upload leaves nothing behind.
#[derive(Default)]
pub(super) struct StagedFiles(Vec<PathBuf>);

impl Drop for StagedFiles {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn bad(message: impl Into<String>) -> Refusal {
    (ErrorCode::BadRequest, message.into())
}

fn multipart_error(err: multer::Error, max_upload: u64) -> Refusal {
    match err {
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => (
            ErrorCode::PayloadTooLarge,
            format!("the upload is larger than {max_upload} bytes (MAX_UPLOAD_SIZE)"),
        ),
        other => bad(format!("the multipart body is incomplete or malformed: {other}")),
    }
}

/// Reads a multipart GraphQL request; files are on disk when it returns.
pub(super) async fn receive(
    req: &Request,
    body: Body,
    state: &AppState,
) -> Result<(GraphqlRequest, StagedFiles), Refusal> {
    let max_upload = state.config.max_upload_bytes;
    let max_body = state.config.max_body_bytes as u64;
    let whole = max_upload.saturating_add(max_body);
    if req.header(header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok()).is_some_and(|n| n > whole) {
        return Err(multipart_error(multer::Error::StreamSizeExceeded { limit: whole }, max_upload));
    }
    let boundary = multer::parse_boundary(req.content_type().unwrap_or_default())
        .map_err(|_| bad("multipart/form-data needs a boundary"))?;
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(whole).per_field(max_upload));
    let mut multipart = multer::Multipart::with_constraints(
        super::body_stream(body, state.config.idle_timeout),
        boundary,
        constraints,
    );

    let dir = state.datasets.uploads_dir();
    tokio::fs::create_dir_all(&dir).await.map_err(|e| internal(e.into()))?;
    let mut staged = StagedFiles::default();
    let mut operations: Option<Params<serde_json::Value>> = None;
    let mut map: Option<HashMap<String, Vec<String>>> = None;
    let mut uploads = Vec::new();

    while let Some(mut field) = multipart.next_field().await.map_err(|e| multipart_error(e, max_upload))? {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "operations" | "map" => {
                let mut bytes = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, max_upload))? {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() as u64 > max_body {
                        return Err((
                            ErrorCode::PayloadTooLarge,
                            format!("the {name} field is larger than {max_body} bytes"),
                        ));
                    }
                }
                if name == "operations" {
                    operations = Some(serde_json::from_slice(&bytes).map_err(|e| {
                        bad(format!(
                            "operations is not one GraphQL request in JSON (batches are not supported): {e}"
                        ))
                    })?);
                } else {
                    map = Some(
                        serde_json::from_slice(&bytes).map_err(|e| bad(format!("map is not valid: {e}")))?,
                    );
                }
            }
            _ => {
                let (Some(_), Some(map)) = (&operations, &map) else {
                    return Err(bad("send the operations and map fields before the files"));
                };
                let Some(paths) = map.get(&name) else { continue };
                if paths.len() != 1 {
                    return Err(bad(format!("file {name:?} must be mapped to exactly one variable")));
                }
                let filename = field.file_name().unwrap_or("upload").to_string();
                let path = dir.join(format!("{}.part", uuid::Uuid::new_v4().simple()));
                staged.0.push(path.clone());
                let mut file = tokio::fs::File::create(&path).await.map_err(|e| internal(e.into()))?;
                // Hashing runs on a blocking thread beside the writes: it costs as much CPU as
                // the rest of the upload, and the chunks are shared, not copied.
                let (chunks, mut hashed) = tokio::sync::mpsc::channel::<bytes::Bytes>(64);
                let hasher = tokio::task::spawn_blocking(move || {
                    let mut hasher = Sha256::new();
                    while let Some(chunk) = hashed.blocking_recv() {
                        hasher.update(&chunk);
                    }
                    crate::store::hex_digest(&hasher.finalize())
                });
                let mut size: u64 = 0;
                while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, max_upload))? {
                    size += chunk.len() as u64;
                    file.write_all(&chunk).await.map_err(|e| internal(e.into()))?;
                    // The hasher only stops when this sender is dropped.
                    let _ = chunks.send(chunk).await;
                }
                drop(chunks);
                file.flush().await.map_err(|e| internal(e.into()))?;
                let sha256 = hasher.await.map_err(|e| internal(e.into()))?;
                for var_path in paths {
                    let staged = StagedFile {
                        path: path.clone(),
                        filename: filename.clone(),
                        size,
                        sha256: sha256.clone(),
                    };
                    uploads.push((var_path.clone(), staged));
                }
            }
        }
    }
    let operations = operations.ok_or_else(|| bad("the multipart request has no operations field"))?;
    if map.is_none() {
        return Err(bad("the multipart request has no map field"));
    }
    let mut request = into_request(operations.query, operations.operation_name, operations.variables)
        .map_err(|m| bad(m.to_string()))?;
    request.uploads = uploads;
    Ok((request, staged))
}

fn internal(err: anyhow::Error) -> Refusal {
    tracing::error!(error = format!("{err:#}"), "storing an upload failed");
    (ErrorCode::Internal, "internal error while storing the upload".to_string())
}
