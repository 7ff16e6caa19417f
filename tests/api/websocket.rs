//! GraphQL over WebSocket on /graphql, with both subprotocols and `connection_init` auth.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::both_stores;
use crate::helpers::TestApp;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp, protocol: &str) -> Socket {
    let mut request = format!("ws://127.0.0.1:{}/graphql", app.port).into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", protocol.parse().unwrap());
    let (socket, response) = tokio_tungstenite::connect_async(request).await.expect("WebSocket upgrade");
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    socket
}

/// A graphql-transport-ws socket signed in with `token` and acknowledged.
async fn signed_in(app: &TestApp, token: &str) -> Socket {
    let mut socket = connect(app, "graphql-transport-ws").await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }),
    )
    .await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    socket
}

/// A `jobProgress` subscription's payload for job `id`, selecting `fields`.
fn progress_of(id: &Value, fields: &str) -> Value {
    json!({ "query": format!("subscription($id: ID!) {{ jobProgress(jobId: $id) {{ {fields} }} }}"), "variables": { "id": id } })
}

async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::text(message.to_string())).await.unwrap();
}

/// The next JSON text message, skipping keep-alives; `None` when the server closed.
async fn next(socket: &mut Socket) -> Option<Value> {
    next_within(socket, std::time::Duration::from_secs(10)).await
}

/// Like [`next`], waiting up to `wait` (jobs may take a while between snapshots).
pub async fn next_within(socket: &mut Socket, wait: std::time::Duration) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(wait, socket.next()).await.expect("server answered")?;
        match message.ok()? {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] == "ka" || value["type"] == "ping" {
                    continue;
                }
                return Some(value);
            }
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

/// The close frame the server sends next (within 10 s), no other message before it.
async fn close_frame(socket: &mut Socket) -> tokio_tungstenite::tungstenite::protocol::CloseFrame {
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(frame))) => return frame.expect("a close frame with a code"),
            Some(Ok(Message::Text(text))) => panic!("no message expected before the close, got {text}"),
            Some(Ok(_)) => continue,
            other => panic!("the socket ended without a close frame: {other:?}"),
        }
    }
}

both_stores! {
    async fn graphql_transport_ws_authenticates_with_connection_init(app) {
        let session = app.sign_up("ada@example.com", "correct horse battery").await;
        let mut socket = connect(&app, "graphql-transport-ws").await;
        send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", session["accessToken"].as_str().unwrap()) } })).await;
        assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
        send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ me { email } }" } })).await;
        let result = next(&mut socket).await.unwrap();
        assert_eq!(result["type"], "next");
        assert_eq!(result["id"], "1");
        assert_eq!(result["payload"]["data"]["me"]["email"], "ada@example.com", "{result}");
        assert_eq!(next(&mut socket).await.unwrap(), json!({ "id": "1", "type": "complete" }));
    }

    async fn legacy_graphql_ws_works_too(app) {
        let session = app.sign_up("ada@example.com", "correct horse battery").await;
        let mut socket = connect(&app, "graphql-ws").await;
        send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", session["accessToken"].as_str().unwrap()) } })).await;
        assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
        send(&mut socket, json!({ "id": "7", "type": "start", "payload": { "query": "{ me { email role } }" } })).await;
        let result = next(&mut socket).await.unwrap();
        assert_eq!(result["type"], "data");
        assert_eq!(result["payload"]["data"]["me"]["role"], "USER", "{result}");
        assert_eq!(next(&mut socket).await.unwrap()["type"], "complete");
    }

    async fn a_socket_stops_acting_for_its_user_when_the_token_expires(app) {
        let session = app.sign_up("ada@example.com", "correct horse battery").await;
        let token = crate::helpers::forge_token(session["user"]["id"].as_str().unwrap(), jsonwebtoken::Algorithm::HS256, crate::helpers::SECRET_KEY, 2);
        let mut socket = signed_in(&app, &token).await;
        send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ me { email } }" } })).await;
        assert_eq!(next(&mut socket).await.unwrap()["payload"]["data"]["me"]["email"], "ada@example.com");
        assert_eq!(next(&mut socket).await.unwrap()["type"], "complete");
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        send(&mut socket, json!({ "id": "2", "type": "subscribe", "payload": { "query": "{ me { email } }" } })).await;
        let result = next(&mut socket).await.unwrap();
        assert_eq!(result["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{result}");
        assert!(result["payload"]["errors"][0]["message"].as_str().unwrap().contains("expired"), "{result}");
    }

    async fn a_stopping_server_closes_subscriptions_with_going_away(app, &[("SERVER_ROLE", "api")]) {
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "a.csv", b"a\n1\n").await;
        let job = crate::jobs::run_profile(&app, &token, &dataset, Value::Null).await;
        let mut socket = signed_in(&app, &token).await;
        let progress = progress_of(&job["id"], "status");
        send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": progress })).await;
        assert_eq!(next(&mut socket).await.unwrap()["payload"]["data"]["jobProgress"]["status"], "QUEUED");
        // A planned stop: the client can tell it from a crash (1006) and reconnect.
        app.stop().await.unwrap();
        let close = close_frame(&mut socket).await;
        assert_eq!(u16::from(close.code), 1001, "{close:?}");
    }

    async fn a_queued_jobs_subscriber_sees_its_place_change(app, &[("SERVER_ROLE", "api")]) {
        // No worker: the jobs stay queued; cancelling the first moves the second up.
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "a.csv", b"a\n1\n").await;
        let first = crate::jobs::run_profile(&app, &token, &dataset, Value::Null).await;
        let second = crate::jobs::run_profile(&app, &token, &dataset, Value::Null).await;
        let mut socket = signed_in(&app, &token).await;
        let progress = progress_of(&second["id"], "status queuePosition");
        send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": progress })).await;
        assert_eq!(next(&mut socket).await.unwrap()["payload"]["data"]["jobProgress"], json!({ "status": "QUEUED", "queuePosition": 1 }));
        let body = app.graphql(Some(&token), "mutation($id: ID!) { cancelJob(id: $id) { status } }", json!({ "id": first["id"] })).await;
        assert_eq!(body["data"]["cancelJob"]["status"], "CANCELLED", "{body}");
        let moved = next(&mut socket).await.unwrap();
        assert_eq!(moved["payload"]["data"]["jobProgress"], json!({ "status": "QUEUED", "queuePosition": 0 }), "{moved}");
    }

    async fn a_subscription_id_in_use_closes_the_socket_with_4409(app, &[("SERVER_ROLE", "api")]) {
        // No worker: the job stays queued, so its progress subscription stays open.
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "a.csv", b"a\n1\n").await;
        let job = crate::jobs::run_profile(&app, &token, &dataset, Value::Null).await;
        let mut socket = signed_in(&app, &token).await;
        // An id whose query completed may be used again.
        for _ in 0..2 {
            send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ me { email } }" } })).await;
            assert_eq!(next(&mut socket).await.unwrap()["type"], "next");
            assert_eq!(next(&mut socket).await.unwrap(), json!({ "id": "1", "type": "complete" }));
        }
        let progress = progress_of(&job["id"], "status");
        send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": progress })).await;
        assert_eq!(next(&mut socket).await.unwrap()["payload"]["data"]["jobProgress"]["status"], "QUEUED");
        send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": progress })).await;
        let close = close_frame(&mut socket).await;
        assert_eq!(u16::from(close.code), 4409, "{close:?}");
        assert!(close.reason.contains("Subscriber for 1 already exists"), "{close:?}");
        // An id longer than a close frame's reason holds: the reason is cut, the code kept.
        let mut socket = signed_in(&app, &token).await;
        let id = "é".repeat(100);
        for _ in 0..2 {
            send(&mut socket, json!({ "id": id, "type": "subscribe", "payload": progress })).await;
        }
        assert_eq!(next(&mut socket).await.unwrap()["payload"]["data"]["jobProgress"]["status"], "QUEUED");
        let close = close_frame(&mut socket).await;
        assert_eq!(u16::from(close.code), 4409, "{close:?}");
        assert!(close.reason.len() <= 123 && close.reason.starts_with("Subscriber for éé"), "{close:?}");
    }

    async fn a_user_may_follow_only_so_many_jobs_at_once(
        app,
        &[("SERVER_ROLE", "api"), ("MAX_SUBSCRIPTIONS_PER_USER", "3")]
    ) {
        // No worker: the job stays queued, so its progress subscriptions stay open.
        let token = app.token_for("ada@example.com").await;
        let dataset = app.upload_ok(&token, "a.csv", b"a\n1\n").await;
        let job = crate::jobs::run_profile(&app, &token, &dataset, Value::Null).await;
        let progress = progress_of(&job["id"], "status");
        let mut sockets = Vec::new();
        for _ in 0..2 {
            let socket = signed_in(&app, &token).await;
            sockets.push(socket);
        }
        // Three open streams, counted across the user's sockets.
        for (socket, id) in [(0, "1"), (0, "2"), (1, "3")] {
            send(&mut sockets[socket], json!({ "id": id, "type": "subscribe", "payload": progress })).await;
            assert_eq!(next(&mut sockets[socket]).await.unwrap()["payload"]["data"]["jobProgress"]["status"], "QUEUED");
        }
        send(&mut sockets[1], json!({ "id": "4", "type": "subscribe", "payload": progress })).await;
        let refused = next(&mut sockets[1]).await.unwrap();
        assert_eq!(refused["payload"]["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{refused}");
        assert_eq!(refused["payload"]["errors"][0]["extensions"]["maximum"], 3, "{refused}");
        assert_eq!(next(&mut sockets[1]).await.unwrap(), json!({ "id": "4", "type": "complete" }));
        // Another user has their own allowance.
        let other = app.token_for("bob@example.com").await;
        let theirs = app.upload_ok(&other, "b.csv", b"b\n2\n").await;
        let their_job = crate::jobs::run_profile(&app, &other, &theirs, Value::Null).await;
        let mut bobs = signed_in(&app, &other).await;
        let their_progress = progress_of(&their_job["id"], "status");
        send(&mut bobs, json!({ "id": "1", "type": "subscribe", "payload": their_progress })).await;
        assert_eq!(next(&mut bobs).await.unwrap()["payload"]["data"]["jobProgress"]["status"], "QUEUED");
        // Completing one, or closing a socket, makes room.
        send(&mut sockets[0], json!({ "id": "1", "type": "complete" })).await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        send(&mut sockets[1], json!({ "id": "5", "type": "subscribe", "payload": progress })).await;
        assert_eq!(next(&mut sockets[1]).await.unwrap()["payload"]["data"]["jobProgress"]["status"], "QUEUED");
        drop(sockets.remove(0));
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        send(&mut sockets[0], json!({ "id": "6", "type": "subscribe", "payload": progress })).await;
        let snapshot = next(&mut sockets[0]).await.unwrap();
        assert_eq!(snapshot["payload"]["data"]["jobProgress"]["status"], "QUEUED", "{snapshot}");
        send(&mut sockets[0], json!({ "id": "7", "type": "subscribe", "payload": progress })).await;
        let refused = next(&mut sockets[0]).await.unwrap();
        assert_eq!(refused["payload"]["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{refused}");
    }

    async fn a_socket_that_never_initialises_is_closed_with_4408(app, &[("WS_CONNECTION_INIT_TIMEOUT", "1s")]) {
        for protocol in ["graphql-transport-ws", "graphql-ws"] {
            let mut silent = connect(&app, protocol).await;
            let close = close_frame(&mut silent).await;
            assert_eq!(u16::from(close.code), 4408, "{protocol}: {close:?}");
        }
        // A socket that initialised in time stays open past it.
        let mut socket = connect(&app, "graphql-transport-ws").await;
        send(&mut socket, json!({ "type": "connection_init" })).await;
        assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ __typename }" } })).await;
        assert_eq!(next(&mut socket).await.unwrap()["payload"]["data"]["__typename"], "Query");
    }

    async fn a_subscribe_before_connection_init_closes_with_4401(app) {
        // graphql-transport-ws: "Unauthorized", not async-graphql's 1011 (a server error, which
        // clients retry).
        let mut early = connect(&app, "graphql-transport-ws").await;
        send(&mut early, json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ __typename }" } })).await;
        let close = close_frame(&mut early).await;
        assert_eq!(u16::from(close.code), 4401, "{close:?}");
    }

    async fn an_operation_refused_before_it_runs_gets_an_error_message(app) {
        let session = app.sign_up("ada@example.com", "correct horse battery").await;
        let mut socket = signed_in(&app, session["accessToken"].as_str().unwrap()).await;
        // graphql-transport-ws: a validation or parse error is `error` with the errors, and
        // no `complete` follows (the operation is over).
        for (id, query, code) in [
            ("1", "subscription { jobProgress(jobId: 1, nope: 2) { status } }", "GRAPHQL_VALIDATION_FAILED"),
            ("2", "subscription { jobProgress(", "GRAPHQL_PARSE_FAILED"),
        ] {
            send(&mut socket, json!({ "id": id, "type": "subscribe", "payload": { "query": query } })).await;
            let refused = next(&mut socket).await.unwrap();
            assert_eq!(refused["type"], "error", "{refused}");
            assert_eq!(refused["id"], id, "{refused}");
            assert_eq!(refused["payload"][0]["extensions"]["code"], code, "{refused}");
        }
        // The id is free again, and an operation that runs still answers `next`, then
        // `complete`: nothing in between was left over from the refused ones.
        send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ me { email } }" } })).await;
        let result = next(&mut socket).await.unwrap();
        assert_eq!(result["type"], "next", "{result}");
        assert_eq!(result["payload"]["data"]["me"]["email"], "ada@example.com", "{result}");
        assert_eq!(next(&mut socket).await.unwrap(), json!({ "id": "1", "type": "complete" }));
        // A field's error is the operation's result, not a refusal.
        send(&mut socket, json!({ "id": "3", "type": "subscribe", "payload": { "query": "subscription { jobProgress(jobId: \"nope\") { status } }" } })).await;
        let result = next(&mut socket).await.unwrap();
        assert_eq!(result["type"], "next", "{result}");
        assert_eq!(result["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND", "{result}");
    }

    async fn anonymous_sockets_are_anonymous(app) {
        let mut socket = connect(&app, "graphql-transport-ws").await;
        send(&mut socket, json!({ "type": "connection_init" })).await;
        assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
        send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ me { email } users { totalCount } }" } })).await;
        let result = next(&mut socket).await.unwrap();
        assert_eq!(result["payload"]["data"]["me"], Value::Null);
        assert_eq!(result["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{result}");
    }

    async fn a_bad_token_closes_the_connection(app) {
        // A token that expired a second ago is refused too (it was acknowledged, then every
        // operation failed).
        let session = app.sign_up("ada@example.com", "correct horse battery").await;
        let just_expired = crate::helpers::forge_token(session["user"]["id"].as_str().unwrap(), jsonwebtoken::Algorithm::HS256, crate::helpers::SECRET_KEY, -1);
        for token in ["forged.token.here", just_expired.as_str()] {
        let mut socket = connect(&app, "graphql-transport-ws").await;
        send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })).await;
        let mut closed = false;
        while let Ok(Some(message)) = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next()).await {
            match message {
                Ok(Message::Close(frame)) => {
                    let frame = frame.expect("close frame with a reason");
                    assert!(frame.reason.contains("UNAUTHENTICATED"), "{frame:?}");
                    closed = true;
                    break;
                }
                Ok(Message::Text(text)) => panic!("no message expected before the close, got {text}"),
                Ok(_) => continue,
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        assert!(closed, "the server must close a connection with a bad token");
        }

        let mut legacy = connect(&app, "graphql-ws").await;
        send(&mut legacy, json!({ "type": "connection_init", "payload": { "authorization": "Bearer forged" } })).await;
        let error = next(&mut legacy).await.unwrap();
        assert_eq!(error["type"], "connection_error", "{error}");
    }

    async fn an_upgrade_without_a_graphql_subprotocol_is_refused(app) {
        let request = format!("ws://127.0.0.1:{}/graphql", app.port).into_client_request().unwrap();
        let error = tokio_tungstenite::connect_async(request).await.expect_err("refused");
        match error {
            tokio_tungstenite::tungstenite::Error::Http(response) => assert_eq!(response.status().as_u16(), 400),
            other => panic!("unexpected {other:?}"),
        }
    }
}
