//! `POST /graphql` and `GET /graphql`, following the GraphQL-over-HTTP specification:
//! `application/json` requests; `application/graphql-response+json` (with 4xx for request
//! errors) or `application/json` (200) responses; mutations refused over GET; every
//! failure a GraphQL-shaped body with a code. A WebSocket upgrade on `GET` goes to `ws`.

use poem::http::{StatusCode, header};
use poem::web::{Data, websocket::WebSocket};
use poem::{Body, IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::{client_addr, request_id, ws};
use crate::app::AppState;
use crate::auth::{Credentials, TokenError};
use crate::error::ErrorCode;
use crate::gql::{self, GraphqlRequest, OperationKind, RequestContext};

/// How the response body is labelled, from the request's `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    GraphqlResponseJson,
    Json,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::GraphqlResponseJson => "application/graphql-response+json; charset=utf-8",
            Format::Json => "application/json; charset=utf-8",
        }
    }
}

/// Picks the response format; `None` when the client accepts neither.
fn negotiate(accept: Option<&str>) -> Option<Format> {
    let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
        return Some(Format::Json);
    };
    let mut best = None;
    for part in accept.split(',') {
        let mut pieces = part.split(';');
        let media = pieces.next().unwrap_or_default().trim().to_ascii_lowercase();
        let refused = pieces.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()) == Some(0.0)
        });
        if refused {
            continue;
        }
        match media.as_str() {
            "application/graphql-response+json" => return Some(Format::GraphqlResponseJson),
            "application/json" | "application/*" | "*/*" => best = Some(Format::Json),
            _ => {}
        }
    }
    best
}

/// A JSON response with a GraphQL-shaped error.
pub(super) fn error_response(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    error_response_as(Format::Json, status, code, message)
}

fn error_response_as(format: Format, status: StatusCode, code: ErrorCode, message: &str) -> Response {
    Response::builder()
        .status(status)
        .content_type(format.content_type())
        .body(gql::error_body(code, message).to_string())
}

fn refuse(code: ErrorCode, message: &str) -> Response {
    refuse_as(Format::Json, code, message)
}

/// A refusal in the media type the client accepted (GraphQL over HTTP: a request error is
/// answered in the negotiated type, with its HTTP status either way).
fn refuse_as(format: Format, code: ErrorCode, message: &str) -> Response {
    let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    error_response_as(format, status, code, message)
}

/// What the `Authorization` header says about the caller.
fn credentials(req: &Request, state: &AppState) -> Credentials {
    let Some(value) = req.header(header::AUTHORIZATION) else { return Credentials::Anonymous };
    credentials_from_bearer(value, state)
}

/// Verifies `Bearer <token>`: shared by HTTP headers and the WebSocket `connection_init`.
pub(super) fn credentials_from_bearer(value: &str, state: &AppState) -> Credentials {
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Credentials::Invalid("the Authorization header must be 'Bearer <access token>'".into());
    };
    match state.accounts.tokens().verify_access(token) {
        Ok(caller) => Credentials::Authenticated(caller),
        Err(e @ (TokenError::Expired | TokenError::Invalid)) => Credentials::Invalid(e.to_string()),
    }
}

async fn run(req: &Request, state: &AppState, format: Format, request: GraphqlRequest) -> Response {
    if gql::operation_kind(&request.query, request.operation_name.as_deref())
        == Some(OperationKind::Subscription)
    {
        // A request error, in the media type the client accepts.
        let message = "subscriptions run over a WebSocket (graphql-transport-ws or graphql-ws) at this path, not over HTTP";
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .content_type(format.content_type())
            .body(gql::error_body(ErrorCode::BadRequest, message).to_string());
    }
    let context = RequestContext {
        credentials: credentials(req, state),
        client: client_addr(req, state.config.trust_proxy_headers),
        request_id: request_id(req),
    };
    let executed = gql::execute(&state.schema, request, context).await;
    let status = if executed.request_error && format == Format::GraphqlResponseJson {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Response::builder().status(status).content_type(format.content_type()).body(executed.body.to_string())
}

/// The fields of a GraphQL request (JSON body or URL parameters).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Params<V> {
    pub(super) query: Option<String>,
    pub(super) operation_name: Option<String>,
    pub(super) variables: Option<V>,
}

/// Checks the fields of a request; the error is the message of a `BAD_REQUEST`.
pub(super) fn into_request(
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<serde_json::Value>,
) -> Result<GraphqlRequest, &'static str> {
    let query = query.filter(|q| !q.trim().is_empty()).ok_or("the request has no query")?;
    let variables = match variables {
        None | Some(serde_json::Value::Null) => None,
        Some(v @ serde_json::Value::Object(_)) => Some(v),
        Some(_) => return Err("variables must be a JSON object"),
    };
    Ok(GraphqlRequest {
        query,
        operation_name: operation_name.filter(|n| !n.is_empty()),
        variables,
        uploads: Vec::new(),
    })
}

/// How much of an oversized body is still read (and dropped) before answering 413: a client
/// that is still sending when the connection closes sees a reset, not the answer.
const DRAIN_BYTES: u64 = 1 << 20;

/// Reads at most `limit` bytes; `Err(None)` when the body is larger (after draining a
/// bounded amount of the rest), `Err(Some(_))` when it could not be read.
async fn read_limited(
    body: Body,
    limit: usize,
    declared: Option<u64>,
    idle: std::time::Duration,
) -> Result<Vec<u8>, Option<std::io::Error>> {
    use futures_util::StreamExt;
    let mut stream = std::pin::pin!(super::body_stream(body, idle));
    let mut bytes = Vec::new();
    let mut over = declared.is_some_and(|n| n > limit as u64);
    let mut drained: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(_) if over => break,
            Err(e) => return Err(Some(e)),
        };
        if over {
            drained += chunk.len() as u64;
            if drained > DRAIN_BYTES {
                break;
            }
        } else if bytes.len() + chunk.len() > limit {
            over = true;
            bytes = Vec::new();
        } else {
            bytes.extend_from_slice(&chunk);
        }
    }
    if over { Err(None) } else { Ok(bytes) }
}

#[handler]
pub(super) async fn post(req: &Request, body: Body, Data(state): Data<&AppState>) -> Response {
    let Some(format) = negotiate(req.header(header::ACCEPT)) else {
        return refuse(
            ErrorCode::NotAcceptable,
            "accept application/graphql-response+json or application/json",
        );
    };
    let refuse = |code, message: &str| refuse_as(format, code, message);
    let media = req
        .content_type()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if media == "multipart/form-data" {
        // Nothing is written to disk for a caller who could not upload anyway.
        if let Err(e) = credentials(req, state).require() {
            return refuse(ErrorCode::Unauthenticated, e.message());
        }
        return match super::upload::receive(req, body, state).await {
            Ok((request, staged)) => {
                let response = run(req, state, format, request).await;
                drop(staged);
                response
            }
            Err((code, message)) => refuse(code, &message),
        };
    }
    if media != "application/json" {
        return refuse(
            ErrorCode::UnsupportedMediaType,
            "send the request as Content-Type: application/json (or multipart/form-data for uploads)",
        );
    }
    let limit = state.config.max_body_bytes;
    let too_large =
        || refuse(ErrorCode::PayloadTooLarge, &format!("the request body is larger than {limit} bytes"));
    let declared = req.header(header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    let bytes = match read_limited(body, limit, declared, state.config.idle_timeout).await {
        Ok(bytes) => bytes,
        Err(None) => return too_large(),
        Err(Some(e)) => {
            return refuse(ErrorCode::BadRequest, &format!("could not read the request body: {e}"));
        }
    };
    let params: Params<serde_json::Value> = match serde_json::from_slice(&bytes) {
        Ok(p) => p,
        // (A JSON array is a batch, as some clients send: say so rather than what serde read.)
        Err(_) if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') => {
            return refuse(
                ErrorCode::BadRequest,
                "batched requests (a JSON array) are not supported: send one request per POST",
            );
        }
        Err(e) => {
            return refuse(
                ErrorCode::BadRequest,
                &format!("the request body is not a GraphQL request in JSON: {e}"),
            );
        }
    };
    let request = match into_request(params.query, params.operation_name, params.variables) {
        Ok(r) => r,
        Err(message) => return refuse(ErrorCode::BadRequest, message),
    };
    run(req, state, format, request).await
}

#[handler]
pub(super) async fn get(
    req: &Request,
    websocket: Option<WebSocket>,
    Data(state): Data<&AppState>,
) -> Response {
    if let Some(websocket) = websocket {
        return ws::upgrade(req, websocket, state);
    }
    let Some(format) = negotiate(req.header(header::ACCEPT)) else {
        return refuse(
            ErrorCode::NotAcceptable,
            "accept application/graphql-response+json or application/json",
        );
    };
    let refuse = |code, message: &str| refuse_as(format, code, message);
    let params: Params<String> = match req.params() {
        Ok(p) => p,
        Err(e) => return refuse(ErrorCode::BadRequest, &format!("bad query string: {e}")),
    };
    let variables =
        match params.variables.as_deref().map(serde_json::from_str::<serde_json::Value>).transpose() {
            Ok(v) => v,
            Err(e) => return refuse(ErrorCode::BadRequest, &format!("variables is not JSON: {e}")),
        };
    let request = match into_request(params.query, params.operation_name, variables) {
        Ok(r) => r,
        Err(message) => return refuse(ErrorCode::BadRequest, message),
    };
    match gql::operation_kind(&request.query, request.operation_name.as_deref()) {
        Some(OperationKind::Mutation | OperationKind::Subscription) => {
            let mut response = refuse(
                ErrorCode::MethodNotAllowed,
                "mutations and subscriptions cannot be sent with GET; use POST (or a WebSocket for subscriptions)",
            );
            response.headers_mut().insert(header::ALLOW, poem::http::HeaderValue::from_static("POST"));
            response
        }
        _ => run(req, state, format, request).await.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_like_the_spec() {
        assert_eq!(negotiate(None), Some(Format::Json));
        assert_eq!(negotiate(Some("application/graphql-response+json")), Some(Format::GraphqlResponseJson));
        assert_eq!(
            negotiate(Some("application/json;q=0.9, application/graphql-response+json")),
            Some(Format::GraphqlResponseJson)
        );
        assert_eq!(negotiate(Some("*/*")), Some(Format::Json));
        assert_eq!(negotiate(Some("text/html")), None);
        assert_eq!(negotiate(Some("application/json;q=0")), None);
    }
}
