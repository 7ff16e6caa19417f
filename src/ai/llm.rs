//! The language-model interface the AI agents use, and its implementation over any
//! OpenAI-compatible chat-completions server (async-openai).
//!
//! Callers see one small vocabulary (messages, tool definitions, a completion with its token
//! usage) and one error type; retries with backoff on 429 and 5xx, and the per-attempt time
//! limit, live here.

use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{ChatCompletionMessageToolCalls, CreateChatCompletionRequest};
use async_trait::async_trait;
use serde_json::{Value, json};

use crate::config::AiConfig;

/// Who wrote a message of a chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
    /// The result of a tool call, answering `tool_call_id`.
    Tool,
}

/// A tool the model asked to call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON text as the model wrote it (it may not parse).
    pub arguments: String,
}

/// One message of a chat.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: String,
    /// The calls an assistant message made.
    pub tool_calls: Vec<ToolCall>,
    /// For a tool message: the call it answers.
    pub tool_call_id: Option<String>,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Message {
        Message { role: Role::System, content: content.into(), tool_calls: Vec::new(), tool_call_id: None }
    }
    pub fn user(content: impl Into<String>) -> Message {
        Message { role: Role::User, content: content.into(), tool_calls: Vec::new(), tool_call_id: None }
    }
    pub fn assistant(content: impl Into<String>, tool_calls: Vec<ToolCall>) -> Message {
        Message { role: Role::Assistant, content: content.into(), tool_calls, tool_call_id: None }
    }
    pub fn tool(call_id: impl Into<String>, content: impl Into<String>) -> Message {
        Message {
            role: Role::Tool,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(call_id.into()),
        }
    }
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    pub name: &'static str,
    pub description: &'static str,
    /// JSON Schema of the arguments.
    pub parameters: Value,
}

/// Tokens one call cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// What the model answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// Text, when it answered in words.
    pub content: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    /// Of the attempt that answered (failed attempts report none).
    pub usage: Usage,
}

/// Why a model call gave no usable answer. Every case falls back to the rule-based path.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    #[error("the model did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the model server refused the request ({status}): {message}")]
    Status { status: u16, message: String },
    #[error("the model server's answer could not be read: {0}")]
    BadResponse(String),
    #[error("the model server could not be reached: {0}")]
    Transport(String),
}

impl LlmError {
    /// Worth trying again after a pause: rate limits and server errors.
    fn retryable(&self) -> bool {
        match self {
            LlmError::Status { status, .. } => *status == 429 || *status >= 500,
            LlmError::Transport(_) => true,
            LlmError::Timeout(_) | LlmError::BadResponse(_) => false,
        }
    }
}

/// The longest reply kept of a model (characters); the rest is dropped.
pub const MAX_REPLY_CHARS: usize = 16_000;

/// A chat model.
#[async_trait]
pub trait LanguageModel: Send + Sync + 'static {
    /// The model's name, as answers are labelled with it.
    fn name(&self) -> &str;

    async fn complete(&self, messages: &[Message], tools: &[ToolDef]) -> Result<Completion, LlmError>;
}

/// Any OpenAI-compatible chat-completions server.
pub struct OpenAiModel {
    client: Client<OpenAIConfig>,
    /// Texts never to repeat in an error (logged): the key and the server's URL.
    secrets: Vec<String>,
    model: String,
    timeout: Duration,
    max_retries: u32,
    backoff: Duration,
}

impl OpenAiModel {
    /// The configured model, or `None` without an API key.
    pub fn from_config(config: &AiConfig) -> Option<OpenAiModel> {
        let key = config.openai_api_key.as_ref()?;
        let mut openai = OpenAIConfig::new().with_api_key(key.expose().clone());
        if let Some(base) = &config.base_url {
            openai = openai.with_api_base(base.expose().clone());
        }
        let mut secrets = vec![key.expose().clone()];
        secrets.extend(config.base_url.as_ref().map(|b| b.expose().clone()));
        Some(OpenAiModel {
            // async-openai's default transport retries 429s and 5xx on its own, inside each of
            // our attempts (four requests each): the plain one, so `OPENAI_MAX_RETRIES` is what
            // a provider sees.
            client: Client::with_config(openai)
                .with_http_service(async_openai::middleware::ReqwestService::default()),
            secrets,
            model: config.model.clone(),
            timeout: config.timeout,
            max_retries: config.max_retries,
            backoff: config.retry_backoff,
        })
    }

    /// The request in OpenAI's wire format.
    fn request(
        &self,
        messages: &[Message],
        tools: &[ToolDef],
    ) -> Result<CreateChatCompletionRequest, LlmError> {
        let messages: Vec<Value> = messages.iter().map(wire_message).collect();
        let mut body = json!({ "model": self.model, "messages": messages, "temperature": 0.0 });
        if !tools.is_empty() {
            body["tools"] = tools
                .iter()
                .map(|t| {
                    json!({ "type": "function", "function": {
                        "name": t.name, "description": t.description, "parameters": t.parameters } })
                })
                .collect();
        }
        serde_json::from_value(body).map_err(|e| LlmError::BadResponse(format!("building the request: {e}")))
    }

    /// `err` without the key or the server's URL (a server may echo them; errors are logged).
    fn redacted(&self, err: LlmError) -> LlmError {
        // Redacted whole, then cut: cut first, a key straddling the cut would be left in part.
        let clean = |text: String| {
            let text = self
                .secrets
                .iter()
                .filter(|s| !s.is_empty())
                .fold(text, |t, s| t.replace(s.as_str(), "[redacted]"));
            truncate(&text, 300)
        };
        match err {
            LlmError::Status { status, message } => LlmError::Status { status, message: clean(message) },
            LlmError::BadResponse(m) => LlmError::BadResponse(clean(m)),
            LlmError::Transport(m) => LlmError::Transport(clean(m)),
            timeout => timeout,
        }
    }

    async fn attempt(&self, request: CreateChatCompletionRequest) -> Result<Completion, LlmError> {
        let chat = self.client.chat();
        let call = chat.create(request);
        let response = match tokio::time::timeout(self.timeout, call).await {
            Err(_) => return Err(LlmError::Timeout(self.timeout)),
            Ok(Err(err)) => return Err(self.redacted(classify(err))),
            Ok(Ok(response)) => response,
        };
        let usage = response
            .usage
            .as_ref()
            .map(|u| Usage {
                prompt_tokens: u64::from(u.prompt_tokens),
                completion_tokens: u64::from(u.completion_tokens),
            })
            .unwrap_or_default();
        let Some(choice) = response.choices.into_iter().next() else {
            return Err(LlmError::BadResponse("the answer has no choices".into()));
        };
        let tool_calls = choice
            .message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .filter_map(|call| match call {
                ChatCompletionMessageToolCalls::Function(call) => Some(ToolCall {
                    id: call.id,
                    name: call.function.name,
                    arguments: call.function.arguments,
                }),
                _ => None,
            })
            .collect();
        // A reply is stored, shown and sent back as history: no longer than any answer needs.
        let content = choice.message.content.map(|text| match text.char_indices().nth(MAX_REPLY_CHARS) {
            Some((at, _)) => text[..at].to_string(),
            None => text,
        });
        Ok(Completion { content, tool_calls, usage })
    }
}

#[async_trait]
impl LanguageModel for OpenAiModel {
    fn name(&self) -> &str {
        &self.model
    }

    async fn complete(&self, messages: &[Message], tools: &[ToolDef]) -> Result<Completion, LlmError> {
        let request = self.request(messages, tools)?;
        let mut wait = self.backoff;
        let mut attempt = 0;
        loop {
            match self.attempt(request.clone()).await {
                Err(err) if err.retryable() && attempt < self.max_retries => {
                    tracing::warn!(error = %err, attempt, "model call failed; retrying in {wait:?}");
                    tokio::time::sleep(wait).await;
                    wait = wait.saturating_mul(2);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

fn wire_message(message: &Message) -> Value {
    match message.role {
        Role::System => json!({ "role": "system", "content": message.content }),
        Role::User => json!({ "role": "user", "content": message.content }),
        Role::Assistant if message.tool_calls.is_empty() => {
            json!({ "role": "assistant", "content": message.content })
        }
        Role::Assistant => json!({
            "role": "assistant",
            "content": if message.content.is_empty() { Value::Null } else { Value::from(message.content.clone()) },
            "tool_calls": message.tool_calls.iter().map(|c| json!({
                "id": c.id, "type": "function", "function": { "name": c.name, "arguments": c.arguments }
            })).collect::<Vec<_>>(),
        }),
        Role::Tool => json!({
            "role": "tool",
            "content": message.content,
            "tool_call_id": message.tool_call_id.clone().unwrap_or_default(),
        }),
    }
}

fn classify(err: OpenAIError) -> LlmError {
    match err {
        // (Messages are cut after the key is redacted from them: see `redacted`.)
        OpenAIError::ApiError(api) => {
            LlmError::Status { status: api.status_code.as_u16(), message: api.api_error.message }
        }
        OpenAIError::JSONDeserialize(e, _) => LlmError::BadResponse(e.to_string()),
        OpenAIError::Reqwest(e) if e.is_timeout() => LlmError::Transport("timed out".into()),
        OpenAIError::Reqwest(e) => match e.status() {
            Some(status) => LlmError::Status { status: status.as_u16(), message: e.to_string() },
            // The error's text may hold the request URL, never the key (it is a header).
            None => LlmError::Transport(e.to_string()),
        },
        other => LlmError::BadResponse(other.to_string()),
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_use_the_wire_format() {
        let call = ToolCall { id: "c1".into(), name: "list_alerts".into(), arguments: "{}".into() };
        let assistant = wire_message(&Message::assistant("", vec![call]));
        assert_eq!(assistant["content"], Value::Null);
        assert_eq!(assistant["tool_calls"][0]["function"]["name"], "list_alerts");
        let tool = wire_message(&Message::tool("c1", "[]"));
        assert_eq!(tool["tool_call_id"], "c1");
    }

    #[test]
    fn a_key_in_an_error_is_redacted_wherever_it_falls() {
        let model = OpenAiModel {
            client: Client::with_config(OpenAIConfig::new()),
            secrets: vec!["sk-test-VERIFYSECRET-98765".to_string()],
            model: "m".into(),
            timeout: Duration::from_secs(1),
            max_retries: 0,
            backoff: Duration::from_secs(1),
        };
        for padding in [0, 270, 280, 290, 299, 310] {
            let message = format!("{}Bearer sk-test-VERIFYSECRET-98765 rest", "p".repeat(padding));
            let LlmError::Status { message, .. } = model.redacted(LlmError::Status { status: 401, message })
            else {
                panic!()
            };
            assert!(
                !message.contains("sk-test-VERIF") && !message.contains("VERIFYSECRET"),
                "{padding}: {message}"
            );
            assert!(message.chars().count() <= 301, "{padding}");
        }
    }

    #[test]
    fn only_rate_limits_server_errors_and_transport_are_retried() {
        let status = |status| LlmError::Status { status, message: String::new() };
        assert!(status(429).retryable());
        assert!(status(503).retryable());
        assert!(!status(400).retryable());
        assert!(!status(401).retryable());
        assert!(!LlmError::Timeout(Duration::from_secs(1)).retryable());
        assert!(!LlmError::BadResponse(String::new()).retryable());
    }
}
