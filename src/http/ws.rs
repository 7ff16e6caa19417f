//! GraphQL over WebSocket on `/graphql`: `graphql-transport-ws` and the legacy
//! `graphql-ws` subprotocol. A client authenticates with the `connection_init` payload
//! `{ "Authorization": "Bearer <access token>" }`, checked by the same code as the HTTP
//! header; a bad token closes the connection, no token means anonymous.
//!
//! This file is the bridge between poem and async-graphql. It forwards messages between the
//! socket and async-graphql's protocol code, and enforces two rules of `graphql-transport-ws`
//! that code does not: a `subscribe` whose id is already in use closes the socket with 4409,
//! and a socket not acknowledged within `WS_CONNECTION_INIT_TIMEOUT` of opening (no
//! `connection_init`, either protocol) is closed with 4408, and one that subscribes before its
//! `connection_init` (graphql-transport-ws) with 4401.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_graphql::Data;
use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols, WsMessage};
use async_graphql_poem::GraphQLProtocol;
use futures_util::{SinkExt, StreamExt, future};
use poem::http::StatusCode;
use poem::web::websocket::{Message, WebSocket, WebSocketConfig, WebSocketStream};
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
        .on_upgrade(move |stream| serve(stream, schema, protocol.0, data, state))
        .into_response()
}

/// Forwards messages between the socket and async-graphql until either side ends.
async fn serve(
    stream: WebSocketStream,
    schema: crate::gql::AppSchema,
    protocol: WebSocketProtocols,
    data: Data,
    state: AppState,
) {
    let init_timeout = state.config.ws_init_timeout;
    let sockets = state.sockets.clone();
    let _open = OpenSocket::count(&sockets);
    let mut closing = sockets.closing.subscribe();
    let (mut sink, source) = stream.split();
    // Only graphql-transport-ws has the rule (the legacy protocol's ids are the client's).
    let ids = (protocol == WebSocketProtocols::GraphQLWS).then(|| Arc::new(Mutex::new(Ids::default())));
    let watch = ids.clone();
    let input = source
        .take_while(|message| future::ready(message.is_ok()))
        .filter_map(|message| future::ready(message.ok().filter(|m| m.is_text() || m.is_binary())))
        .map(Message::into_bytes)
        // A duplicate subscription ends the input, so async-graphql ends its streams; the close
        // follows.
        .take_while(move |bytes| future::ready(watch.as_ref().is_none_or(|ids| lock(ids).received(bytes))));
    let output = async_graphql::http::WebSocket::new(schema, input, protocol)
        .connection_data(data)
        .on_connection_init(move |payload| async move {
            let credentials = connection_credentials(&payload, &state);
            if let Credentials::Invalid(reason) = &credentials {
                return Err(async_graphql::Error::new(format!("{}: {reason}", ErrorCode::Unauthenticated)));
            }
            let mut data = Data::default();
            data.insert(credentials);
            Ok(data)
        });
    futures_util::pin_mut!(output);
    let deadline = tokio::time::sleep(init_timeout);
    futures_util::pin_mut!(deadline);
    let mut acknowledged = false;
    loop {
        let message = tokio::select! {
            message = output.next() => message,
            () = &mut deadline, if !acknowledged => {
                let _ = sink.send(close(4408, "Connection initialisation timeout")).await;
                return;
            }
            // (Only `true` is ever sent; a dropped sender disables the branch.)
            Ok(()) = closing.changed() => {
                let _ = sink.send(close(1001, "the server is shutting down")).await;
                return;
            }
        };
        let Some(message) = message else { break };
        let message = match message {
            WsMessage::Text(text) => {
                let text = match &ids {
                    Some(ids) => match lock(ids).sent(text) {
                        Some(text) => text,
                        None => continue,
                    },
                    None => text,
                };
                acknowledged = acknowledged || is_ack(&text);
                Message::text(text)
            }
            // A `subscribe` before `connection_init`: graphql-transport-ws says 4401
            // Unauthorized, where async-graphql closes with 1011 (a server error to clients).
            WsMessage::Close(1011, _) if !acknowledged && protocol == WebSocketProtocols::GraphQLWS => {
                close(4401, "Unauthorized")
            }
            WsMessage::Close(code, reason) => close(code, &reason),
        };
        if sink.send(message).await.is_err() {
            return;
        }
    }
    if let Some(id) = ids.and_then(|ids| lock(&ids).duplicate.take()) {
        let _ = sink.send(close(4409, &format!("Subscriber for {id} already exists"))).await;
    } else {
        // async-graphql's side ended the connection (`connection_terminate`, a refused
        // `connection_init` of graphql-ws): it is closed, not dropped.
        let _ = sink.send(close(1000, "")).await;
    }
}

/// A close frame. Its reason is cut to the 123 bytes a frame holds (at a character's end):
/// a longer one fails to send, and the client sees the connection dropped (1006) instead of
/// the code (a duplicate subscription id of 120 characters, a long parse error).
fn close(code: u16, reason: &str) -> Message {
    const MAX_REASON: usize = 123;
    let mut end = reason.len().min(MAX_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::close_with(code, reason[..end].to_string())
}

/// Counts a WebSocket as open while alive (see `app::Sockets`).
struct OpenSocket(Arc<std::sync::atomic::AtomicUsize>);

impl OpenSocket {
    fn count(sockets: &crate::app::Sockets) -> OpenSocket {
        sockets.open.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        OpenSocket(sockets.open.clone())
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The subscription ids in use on a graphql-transport-ws socket: from the client's `subscribe`
/// until either side's `complete` (or the server's `error`).
#[derive(Default)]
struct Ids {
    active: HashSet<String>,
    /// The id a `subscribe` reused, which closes the socket.
    duplicate: Option<String>,
    /// Operations refused before they ran, answered with `error`: async-graphql's `complete`
    /// after it is not sent (an `error` ends the operation).
    refused: HashSet<String>,
}

/// The fields of a protocol message the ids depend on (the rest is async-graphql's to read).
#[derive(serde::Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
}

impl Ids {
    /// Notes a client message; false for a `subscribe` whose id is in use.
    fn received(&mut self, bytes: &[u8]) -> bool {
        let Ok(Frame { kind, id: Some(id) }) = serde_json::from_slice(bytes) else { return true };
        match kind.as_str() {
            "subscribe" if self.active.contains(&id) => {
                self.duplicate = Some(id);
                false
            }
            "subscribe" => {
                self.refused.remove(&id);
                self.active.insert(id);
                true
            }
            "complete" => {
                self.active.remove(&id);
                true
            }
            _ => true,
        }
    }

    /// Notes a server message and gives what to send instead (`None`: nothing): a `complete`
    /// or an `error` frees its id. An operation refused before it ran (a parse, validation or
    /// limit error: no data, request errors only) is answered with `error` and its errors, as
    /// graphql-transport-ws says, where async-graphql sends them as `next`, then `complete`.
    fn sent(&mut self, text: String) -> Option<String> {
        let Ok(Frame { kind, id: Some(id) }) = serde_json::from_str(&text) else { return Some(text) };
        match kind.as_str() {
            "next" if text.contains("\"data\":null") => match refused_errors(&text) {
                Some(errors) => {
                    self.active.remove(&id);
                    self.refused.insert(id.clone());
                    Some(serde_json::json!({ "id": id, "type": "error", "payload": errors }).to_string())
                }
                None => Some(text),
            },
            "complete" if self.refused.remove(&id) => None,
            "complete" | "error" => {
                self.active.remove(&id);
                Some(text)
            }
            _ => Some(text),
        }
    }
}

/// The errors of a `next` message whose operation was refused before it ran: no data, and
/// every error's code one of a request error.
fn refused_errors(text: &str) -> Option<serde_json::Value> {
    let message: serde_json::Value = serde_json::from_str(text).ok()?;
    let payload = &message["payload"];
    let errors = payload["errors"].as_array()?;
    let refused = payload["data"].is_null()
        && !errors.is_empty()
        && errors.iter().all(|e| {
            e["extensions"]["code"]
                .as_str()
                .and_then(ErrorCode::parse)
                .is_some_and(ErrorCode::is_request_error)
        });
    refused.then(|| payload["errors"].clone())
}

/// Whether a server message is `connection_ack` (both protocols name it so).
fn is_ack(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text).is_ok_and(|message| message["type"] == "connection_ack")
}

fn lock(ids: &Mutex<Ids>) -> std::sync::MutexGuard<'_, Ids> {
    ids.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
