//! The boundary the HTTP layer calls: run one GraphQL request and get back the JSON body
//! and whether it failed before execution (a "request error" in GraphQL-over-HTTP terms).

use std::net::IpAddr;

use async_graphql::parser::types::OperationType;
use async_graphql::{Request, UploadValue, Variables};
use serde_json::json;

use super::errors::code_of;
use super::{AppSchema, ClientAddr, RequestId, StagedUploads};
use crate::auth::Credentials;
use crate::datasets::StagedFile;
use crate::error::ErrorCode;

/// One GraphQL request as received over HTTP.
#[derive(Debug, Clone, Default)]
pub struct GraphqlRequest {
    pub query: String,
    pub operation_name: Option<String>,
    /// A JSON object, or `None`.
    pub variables: Option<serde_json::Value>,
    /// Files of a multipart request, already on disk: (`variables.…` path, file).
    pub uploads: Vec<(String, StagedFile)>,
}

/// Who sent a request, and its id.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub credentials: Credentials,
    pub client: Option<IpAddr>,
    pub request_id: String,
}

/// The outcome of a request, ready to send.
#[derive(Debug)]
pub struct Executed {
    pub body: serde_json::Value,
    /// True when nothing was executed (parse, validation or limit errors): the response
    /// then has no `data` entry.
    pub request_error: bool,
}

/// The kind of an operation, for refusing mutations over GET.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    Query,
    Mutation,
    Subscription,
}

/// The kind of the operation a request would run, if the document parses and names it.
pub fn operation_kind(query: &str, operation_name: Option<&str>) -> Option<OperationKind> {
    // (A query nested too deep would overflow the parser's stack: execution refuses it.)
    if super::errors::nests_deeper_than(query, super::errors::MAX_NESTING) {
        return None;
    }
    let document = async_graphql::parser::parse_query(query).ok()?;
    let ty = match operation_name {
        Some(name) => {
            document.operations.iter().find(|(n, _)| n.map(|n| n.as_str()) == Some(name))?.1.node.ty
        }
        None => document.operations.iter().next()?.1.node.ty,
    };
    Some(match ty {
        OperationType::Query => OperationKind::Query,
        OperationType::Mutation => OperationKind::Mutation,
        OperationType::Subscription => OperationKind::Subscription,
    })
}

/// Runs a request against the schema.
pub async fn execute(schema: &AppSchema, request: GraphqlRequest, context: RequestContext) -> Executed {
    let variables = Variables::from_json(request.variables.unwrap_or(serde_json::Value::Null));
    let mut gql = Request::new(request.query).variables(variables);
    if let Some(name) = request.operation_name {
        gql = gql.operation_name(name);
    }
    let mut staged = StagedUploads::default();
    for (path, file) in request.uploads {
        let content = match std::fs::File::open(&file.path) {
            Ok(content) => content,
            Err(e) => {
                tracing::error!(error = %e, "a staged upload disappeared");
                return Executed {
                    body: error_body(ErrorCode::Internal, "internal error"),
                    request_error: true,
                };
            }
        };
        let before = gql.uploads.len();
        gql.set_upload(&path, UploadValue { filename: file.filename.clone(), content_type: None, content });
        // Only uploads whose path names a variable are kept; their index is their order.
        if gql.uploads.len() > before {
            staged.push(file);
        }
    }
    let gql = gql
        .data(staged)
        .data(context.credentials)
        .data(ClientAddr(context.client))
        .data(RequestId(context.request_id));
    let response = schema.execute(gql).await;

    let request_error = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| code_of(e).is_some_and(ErrorCode::is_request_error));
    let body = if request_error {
        json!({ "errors": response.errors })
    } else {
        serde_json::to_value(&response).unwrap_or_else(|e| error_body(ErrorCode::Internal, &e.to_string()))
    };
    Executed { body, request_error }
}

/// A GraphQL-shaped error body for failures outside execution (bad JSON, wrong method…).
pub fn error_body(code: ErrorCode, message: &str) -> serde_json::Value {
    json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] })
}
