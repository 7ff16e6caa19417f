//! GraphQL over WebSocket on `/graphql`: `graphql-transport-ws` and the legacy
//! `graphql-ws` subprotocol. A client authenticates with the `connection_init` payload
//! `{ "Authorization": "Bearer <access token>" }`, checked by the same code as the HTTP
//! header; a bad token closes the connection, no token means anonymous.
//!
//! This file is the bridge between poem and async-graphql (through async-graphql-poem).

use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_poem::{GraphQLProtocol, GraphQLWebSocket};
use poem::http::StatusCode;
use poem::web::websocket::{WebSocket, WebSocketConfig};
use poem::{IntoResponse, Request, Response};

use super::graphql::{credentials_from_bearer, error_response};
use super::{client_addr, request_id};
use crate::app::AppState;
use crate::auth::Credentials;
use crate::error::ErrorCode;
use crate::gql::{ClientAddr, RequestId};

/// Answers a WebSocket upgrade on `/graphql`.
pub(super) fn upgrade(req: &Request, websocket: WebSocket, state: &AppState) -> Response {
    let protocol = req
        .header("sec-websocket-protocol")
        .and_then(|value| value.split(',').find_map(|p| p.trim().parse().ok()))
        .map(GraphQLProtocol);
    let Some(protocol) = protocol else {
        return error_response(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "ask for the WebSocket subprotocol graphql-transport-ws (or the legacy graphql-ws)",
        );
    };
    let schema = state.schema.clone();
    let state = state.clone();
    let mut data = Data::default();
    data.insert(RequestId(request_id(req)));
    data.insert(ClientAddr(client_addr(req, state.config.trust_proxy_headers)));
    let limit = state.config.max_body_bytes;
    websocket
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .config(WebSocketConfig::default().max_message_size(Some(limit)).max_frame_size(Some(limit)))
        .on_upgrade(move |stream| {
            GraphQLWebSocket::new(stream, schema, protocol)
                .with_data(data)
                .on_connection_init(move |payload| async move {
                    let credentials = connection_credentials(&payload, &state);
                    if let Credentials::Invalid(reason) = &credentials {
                        return Err(async_graphql::Error::new(format!(
                            "{}: {reason}",
                            ErrorCode::Unauthenticated
                        )));
                    }
                    let mut data = Data::default();
                    data.insert(credentials);
                    Ok(data)
                })
                .serve()
        })
        .into_response()
}

/// Reads `Authorization` (any case) from the `connection_init` payload.
fn connection_credentials(payload: &serde_json::Value, state: &AppState) -> Credentials {
    let value = payload.as_object().and_then(|object| {
        object.iter().find(|(key, _)| key.eq_ignore_ascii_case("authorization")).map(|(_, v)| v)
    });
    match value {
        None | Some(serde_json::Value::Null) => Credentials::Anonymous,
        Some(serde_json::Value::String(bearer)) => credentials_from_bearer(bearer, state),
        Some(_) => Credentials::Invalid("Authorization must be a string 'Bearer <access token>'".into()),
    }
}
