//! A scripted OpenAI-compatible server: `POST /v1/chat/completions` answers with the next
//! scripted reply (plain text, tool calls, an HTTP error, malformed JSON, or a slow answer) and
//! records every request body, so tests can drive the model path and see what was sent.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Data;
use poem::{EndpointExt, Response, Route, Server, handler, http::StatusCode, post};
use serde_json::{Value, json};

/// The model name the mock reports; answers are labelled with the configured name.
pub const MODEL: &str = "mock-model";
pub const PROMPT_TOKENS: u64 = 120;
pub const COMPLETION_TOKENS: u64 = 30;

#[derive(Debug, Clone)]
pub enum Reply {
    Text(String),
    /// (name, arguments JSON) pairs.
    ToolCalls(Vec<(&'static str, Value)>),
    Status(u16),
    Malformed,
    Slow(Duration),
}

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    requests: Vec<Value>,
}

/// A running mock; stopped when dropped.
pub struct MockOpenAi {
    pub base_url: String,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for MockOpenAi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl MockOpenAi {
    pub async fn start() -> MockOpenAi {
        let state = Arc::new(Mutex::new(State::default()));
        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.expect("bind mock");
        let port = acceptor.local_addr()[0].as_socket_addr().expect("tcp address").port();
        let app = Route::new().at("/v1/chat/completions", post(completions)).data(state.clone());
        let server = tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor).run(app).await;
        });
        MockOpenAi { base_url: format!("http://127.0.0.1:{port}/v1"), state, server }
    }

    /// Variables that point a test server at this mock.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OPENAI_API_KEY", "sk-test-mock-key".to_string()),
            ("OPENAI_BASE_URL", self.base_url.clone()),
            ("OPENAI_MODEL", MODEL.to_string()),
            ("OPENAI_TIMEOUT", "2s".to_string()),
            ("OPENAI_MAX_RETRIES", "2".to_string()),
            ("OPENAI_RETRY_BACKOFF", "50ms".to_string()),
        ]
    }

    pub fn push(&self, reply: Reply) {
        self.state.lock().unwrap().script.push_back(reply);
    }

    /// Every request body received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Drops the replies not used yet.
    pub fn clear(&self) {
        self.state.lock().unwrap().script.clear();
    }

    /// Replies not used yet.
    pub fn left(&self) -> usize {
        self.state.lock().unwrap().script.len()
    }
}

#[handler]
async fn completions(
    state: Data<&Arc<Mutex<State>>>,
    headers: &poem::http::HeaderMap,
    body: String,
) -> Response {
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let authorized =
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer sk-test-mock-key");
    let reply = {
        let mut state = state.lock().unwrap();
        state.requests.push(request);
        state.script.pop_front()
    };
    if !authorized {
        return error(401, "missing or wrong API key");
    }
    match reply {
        None => error(500, "the mock's script is exhausted"),
        Some(Reply::Status(status)) => error(status, "scripted failure"),
        Some(Reply::Malformed) => Response::builder()
            .status(StatusCode::OK)
            .content_type("application/json")
            .body("{\"id\": \"x\", \"choices\": [ {\"message\": "),
        Some(Reply::Slow(wait)) => {
            tokio::time::sleep(wait).await;
            ok(json!({ "role": "assistant", "content": "too late" }))
        }
        Some(Reply::Text(text)) => ok(json!({ "role": "assistant", "content": text })),
        Some(Reply::ToolCalls(calls)) => ok(json!({
            "role": "assistant",
            "content": null,
            "tool_calls": calls.iter().enumerate().map(|(i, (name, args))| json!({
                "id": format!("call_{i}"),
                "type": "function",
                "function": { "name": name, "arguments": args.to_string() },
            })).collect::<Vec<_>>(),
        })),
    }
}

fn ok(message: Value) -> Response {
    let body = json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": 1_700_000_000u32,
        "model": MODEL,
        "choices": [{ "index": 0, "message": message, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                   "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS },
    });
    Response::builder().status(StatusCode::OK).content_type("application/json").body(body.to_string())
}

fn error(status: u16, message: &str) -> Response {
    let body = json!({ "error": { "message": message, "type": "mock_error", "param": null, "code": null } });
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type("application/json")
        .body(body.to_string())
}
