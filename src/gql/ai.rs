//! The co-pilot in GraphQL: `askCopilot`, the caller's conversations, and language-model
//! token usage.

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::ContextExt;
use super::pagination::{PageInfo, encode_cursor, page_request};
use crate::ai::{Ai, AskRequest};
use crate::domain::{self, MessageRole};
use crate::error::AppError;

fn ai<'a>(ctx: &'a Context<'_>) -> Result<&'a Ai, AppError> {
    ctx.data::<Ai>().map_err(|e| AppError::internal(anyhow::anyhow!("schema data: {}", e.message)))
}

/// A question for the co-pilot. Start a conversation with `datasetId` (its latest completed
/// run is used) or `jobId` (that run's report); continue one with `conversationId`.
#[derive(InputObject)]
pub struct AskCopilotInput {
    question: String,
    dataset_id: Option<ID>,
    job_id: Option<ID>,
    conversation_id: Option<ID>,
}

/// The co-pilot's answer.
#[derive(SimpleObject)]
pub struct CopilotAnswer {
    conversation_id: ID,
    answer: String,
    /// What the answer rests on: the statistics read and the queries run, with their results.
    sources: Vec<String>,
    /// The model that answered, or `rule-based`.
    model: String,
    /// A run the co-pilot proposed, already checked against the registry: pass it to
    /// `runTool` as is.
    plan: Option<Json<serde_json::Value>>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "MessageRole")]
pub enum MessageRoleGql {
    User,
    Assistant,
}

/// One message of a conversation.
#[derive(SimpleObject)]
pub struct CopilotMessage {
    /// 1, 2, 3… in order.
    seq: i32,
    role: MessageRoleGql,
    content: String,
    sources: Vec<String>,
    model: Option<String>,
    created_at: DateTime<Utc>,
}

/// A conversation with the co-pilot about one dataset.
pub struct Conversation(domain::Conversation);

#[Object]
impl Conversation {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The first question.
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn dataset_id(&self) -> Option<ID> {
        self.0.dataset.map(|d| ID(d.to_string()))
    }
    async fn job_id(&self) -> Option<ID> {
        self.0.job.map(|j| ID(j.to_string()))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// The last `last` messages (at most 200), oldest first.
    #[graphql(
        complexity = "crate::gql::messages(last.unwrap_or(crate::gql::LAST_MESSAGES), child_complexity)"
    )]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(crate::gql::LAST_MESSAGES)")] last: Option<i32>,
    ) -> async_graphql::Result<Vec<CopilotMessage>> {
        let last = last.unwrap_or(crate::gql::LAST_MESSAGES);
        if !(1..=200).contains(&last) {
            return Err(AppError::bad_input("last", "last must be between 1 and 200").into());
        }
        let messages = ai(ctx)?.messages(self.0.owner, self.0.id, last as usize).await?;
        Ok(messages
            .into_iter()
            .map(|m| CopilotMessage {
                seq: i32::try_from(m.seq).unwrap_or(i32::MAX),
                role: match m.role {
                    MessageRole::User => MessageRoleGql::User,
                    MessageRole::Assistant => MessageRoleGql::Assistant,
                },
                content: m.content,
                sources: m.sources,
                model: m.model,
                created_at: m.created_at,
            })
            .collect())
    }
}

#[derive(SimpleObject)]
pub struct ConversationConnection {
    nodes: Vec<Conversation>,
    page_info: PageInfo,
    total_count: i32,
}

/// Tokens the caller's language-model calls used.
#[derive(SimpleObject)]
pub struct AiUsage {
    /// Model calls.
    requests: f64,
    prompt_tokens: f64,
    completion_tokens: f64,
}

#[derive(Default)]
pub struct AiQuery;

#[Object]
impl AiQuery {
    /// The caller's co-pilot conversations, newest first (by when they were started).
    #[graphql(complexity = "crate::gql::paged(first.unwrap_or(crate::gql::FIRST_PAGE), child_complexity)")]
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default_with = "Some(crate::gql::FIRST_PAGE)",
            desc = "How many to return, from 1 to 100."
        )]
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ConversationConnection> {
        let first = first.unwrap_or(crate::gql::FIRST_PAGE);
        let caller = ctx.caller()?;
        let page = page_request("conversation", first, after.as_deref())?;
        let result = ai(ctx)?.conversations(caller.user_id, &page).await?;
        let end_cursor = result.items.last().map(|c| encode_cursor("conversation", c.id.0));
        Ok(ConversationConnection {
            total_count: i32::try_from(result.total_count).unwrap_or(i32::MAX),
            page_info: PageInfo { has_next_page: result.has_next_page, end_cursor },
            nodes: result.items.into_iter().map(Conversation).collect(),
        })
    }

    /// One of the caller's conversations; null with `NOT_FOUND` for an unknown id or someone
    /// else's (as `dataset` and `job`: the other fields of the request keep their data).
    async fn conversation(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Conversation>> {
        let caller = ctx.caller()?;
        Ok(Some(Conversation(ai(ctx)?.conversation(caller.user_id, &id).await?)))
    }

    /// Language-model tokens the caller used (summaries, routing, co-pilot), or one job's.
    async fn ai_usage(&self, ctx: &Context<'_>, job_id: Option<ID>) -> async_graphql::Result<AiUsage> {
        let caller = ctx.caller()?;
        let totals = ai(ctx)?.usage(caller.user_id, job_id.as_ref().map(|i| i.0.as_str())).await?;
        Ok(AiUsage {
            requests: totals.requests as f64,
            prompt_tokens: totals.prompt_tokens as f64,
            completion_tokens: totals.completion_tokens as f64,
        })
    }
}

#[derive(Default)]
pub struct AiMutation;

#[Object]
impl AiMutation {
    /// Asks the co-pilot about a dataset. With a language model it reads statistics, runs
    /// sandboxed read-only SQL and may propose a run; without one it answers rule-based from
    /// the stored profile (`model: "rule-based"`) and says when it cannot. The question and
    /// the answer are stored in the conversation.
    async fn ask_copilot(
        &self,
        ctx: &Context<'_>,
        input: AskCopilotInput,
    ) -> async_graphql::Result<CopilotAnswer> {
        let caller = ctx.caller()?;
        let answer = ai(ctx)?
            .ask(
                caller.user_id,
                AskRequest {
                    question: input.question,
                    dataset_id: input.dataset_id.map(|i| i.0),
                    job_id: input.job_id.map(|i| i.0),
                    conversation_id: input.conversation_id.map(|i| i.0),
                },
            )
            .await?;
        Ok(CopilotAnswer {
            conversation_id: ID(answer.conversation_id.to_string()),
            answer: answer.answer,
            sources: answer.sources,
            model: answer.model,
            plan: answer.plan.map(Json),
        })
    }
}
