//! Co-pilot conversations (per user) and the language-model usage they and summaries cost.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{DatasetId, JobId, UserId};

/// A conversation's id (UUIDv7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConversationId(pub Uuid);

impl ConversationId {
    pub fn generate() -> ConversationId {
        ConversationId(Uuid::now_v7())
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for ConversationId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(ConversationId)
    }
}

/// A conversation with the co-pilot about one dataset (and, optionally, one job's report).
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub id: ConversationId,
    pub owner: UserId,
    pub dataset: Option<DatasetId>,
    pub job: Option<JobId>,
    /// The first question, cut to 200 characters.
    pub title: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageRole {
    User,
    Assistant,
}

impl MessageRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageRole::User => "user",
            MessageRole::Assistant => "assistant",
        }
    }

    pub fn parse(text: &str) -> Option<MessageRole> {
        match text {
            "user" => Some(MessageRole::User),
            "assistant" => Some(MessageRole::Assistant),
            _ => None,
        }
    }
}

/// A message to append to a conversation; the store numbers it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub role: MessageRole,
    pub content: String,
    /// What the answer rests on: statistics read, queries run with their results.
    pub sources: Vec<String>,
    /// The model that wrote an assistant message (`rule-based` without one).
    pub model: Option<String>,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationMessage {
    pub conversation: ConversationId,
    /// 1, 2, 3… in the order the messages were appended.
    pub seq: u32,
    pub role: MessageRole,
    pub content: String,
    pub sources: Vec<String>,
    pub model: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// One call to a language model, recorded for accounting.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmUsage {
    pub owner: UserId,
    pub job: Option<JobId>,
    pub conversation: Option<ConversationId>,
    /// `summary`, `routing` or `copilot`.
    pub purpose: String,
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub created_at: DateTime<Utc>,
}

/// Usage summed over calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageTotals {
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}
