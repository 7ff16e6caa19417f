//! The metadata store: users, sessions, datasets, jobs, co-pilot conversations and
//! language-model usage.
//!
//! One trait, [`MetadataStore`], with two implementations: [`SqliteStore`] (the embedded,
//! zero-setup default) and [`MysqlStore`] (MySQL 8 / MariaDB, for production and for
//! several instances). SQL is built once with sea-query in [`sql`]; each backend only binds
//! values and decodes rows. The same contract tests (`tests/store_contract.rs`) run against
//! both.

mod migrate;
mod mysql;
pub mod sql;
mod sqlite;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

use crate::config::DatabaseConfig;
use crate::domain::{
    Conversation, ConversationId, ConversationMessage, Dataset, DatasetId, DatasetKind, Email, Job, JobError,
    JobId, JobStatus, LlmUsage, MessageRole, NewMessage, NewUser, UsageTotals, User, UserCredentials, UserId,
};

pub use migrate::{MIGRATIONS, Migration, MigrationReport};
pub use sql::{JobFilter, JobOutcome};

/// Lower-case hex of a digest.
pub fn hex_digest(bytes: &[u8]) -> String {
    migrate::hex(bytes)
}
pub use mysql::MysqlStore;
pub use sqlite::SqliteStore;

/// A store failure. `Conflict` and `NotFound` are expected outcomes; `Internal` is not.
/// Why a version was not recorded for a job's attempt ([`MetadataStore::insert_job_output`]).
pub const NOT_THE_RUNNING_ATTEMPT: &str = "the job is no longer running this attempt";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for crate::error::AppError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(what) => crate::error::AppError::conflict(what),
            StoreError::Internal(cause) => crate::error::AppError::internal(cause),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The current time, truncated to microseconds: both stores keep microseconds, so a value
/// read back equals the value written.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Queued jobs a worker tries to claim in one go, in [`queue_order`].
pub const CLAIM_CANDIDATES: usize = 16;

/// The order workers take queued jobs in, from every queued and running job (`active`) and
/// when their owners last had a job started (`last_started`): round robin over the owners.
/// Each next job is the oldest queued job of the owner with the fewest jobs running, served
/// longest ago (or never) among those; that owner then counts one more running and was served
/// last. One user's long queue thus does not hold back another user's next job — when one of
/// the user's jobs ends, the next waits for the others' turns — and a user's own jobs still
/// start in the order they were asked for. The order is what the workers' claims give if no job
/// ends meanwhile, so `queuePosition` predicts it.
pub fn queue_order(active: &[Job], last_started: &HashMap<UserId, DateTime<Utc>>) -> Vec<JobId> {
    /// When an owner was last served: never, at a real start, or by an earlier pick of this
    /// very ordering (later than any real start).
    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Served {
        Never,
        At(DateTime<Utc>),
        Picked(usize),
    }
    struct Owner {
        running: usize,
        served: Served,
        queued: std::collections::VecDeque<JobId>,
    }
    let mut owners: HashMap<UserId, Owner> = HashMap::new();
    let mut queued: Vec<&Job> = active.iter().filter(|j| j.status == JobStatus::Queued).collect();
    queued.sort_by_key(|j| j.id);
    for job in &queued {
        let served = last_started.get(&job.owner_id).map_or(Served::Never, |at| Served::At(*at));
        owners
            .entry(job.owner_id)
            .or_insert_with(|| Owner { running: 0, served, queued: Default::default() })
            .queued
            .push_back(job.id);
    }
    for job in active.iter().filter(|j| j.status == JobStatus::Running) {
        if let Some(owner) = owners.get_mut(&job.owner_id) {
            owner.running += 1;
        }
    }
    // The claims to come, if no job ended meanwhile: each takes the owner with the fewest
    // jobs running, served longest ago, then the oldest job; that owner then has one more
    // running and was served last. (Ended jobs can only move an owner's jobs forward.)
    let mut order = Vec::with_capacity(queued.len());
    while let Some(owner) = owners
        .values_mut()
        .filter(|o| !o.queued.is_empty())
        .min_by_key(|o| (o.running, o.served, o.queued.front().copied()))
    {
        let Some(id) = owner.queued.pop_front() else { break };
        owner.running += 1;
        owner.served = Served::Picked(order.len());
        order.push(id);
    }
    order
}

/// How many jobs are ahead of `id` in `queue` ([`MetadataStore::queue`]): all of them when
/// it is not queued.
pub fn jobs_ahead_in(queue: &[JobId], id: JobId) -> u64 {
    queue.iter().position(|j| *j == id).unwrap_or(queue.len()) as u64
}

/// The owners of the queued jobs of `active`, for [`sql::owners_last_started`].
pub fn queued_owners(active: &[Job]) -> Vec<UserId> {
    let mut owners: Vec<UserId> =
        active.iter().filter(|j| j.status == JobStatus::Queued).map(|j| j.owner_id).collect();
    owners.sort_by_key(|o| o.0);
    owners.dedup();
    owners
}

/// A refresh token about to be stored (only its hash is ever stored).
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    pub id: Uuid,
    /// Every token of one sign-in shares a family; replay revokes the whole family.
    pub family_id: Uuid,
    pub user_id: UserId,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A stored refresh token's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub id: Uuid,
    pub family_id: Uuid,
    pub user_id: UserId,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The replacement issued when a refresh token is rotated.
#[derive(Debug, Clone)]
pub struct Replacement {
    pub id: Uuid,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The token was valid; it is now used and `Replacement` is live in the same family.
    Rotated {
        user_id: UserId,
    },
    /// No such token.
    Unknown,
    /// The token was already rotated: a replay. The whole family is now revoked.
    Reused {
        user_id: UserId,
    },
    /// The token's family was revoked (signed out, or an earlier replay).
    Revoked,
    Expired,
}

/// What the store should do with a presented token, decided from its record alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RotateDecision {
    Rotate,
    RevokeFamily,
    Revoked,
    Expired,
}

/// The one place the rotation rules live; both backends call it inside their transaction.
pub(crate) fn decide_rotation(record: &RefreshTokenRecord, now: DateTime<Utc>) -> RotateDecision {
    if record.revoked_at.is_some() {
        RotateDecision::Revoked
    } else if record.used_at.is_some() {
        RotateDecision::RevokeFamily
    } else if record.expires_at <= now {
        RotateDecision::Expired
    } else {
        RotateDecision::Rotate
    }
}

/// A page request: newest first, after an optional cursor.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub first: usize,
    /// Only items strictly older than this id (ids are UUIDv7, so they sort by time).
    pub after: Option<Uuid>,
}

/// A page of items and whether more follow.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next_page: bool,
    pub total_count: u64,
}

/// Which backend a store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Mysql,
}

/// Everything the application keeps in its relational store.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Checks the store answers (for `/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    /// Applies pending migrations; safe to run twice and from two instances at once.
    async fn migrate(&self) -> StoreResult<MigrationReport>;

    /// Stores a new user; `Conflict` if the email is taken.
    async fn create_user(&self, user: &NewUser) -> StoreResult<User>;

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>>;

    /// Several users at once, for the DataLoader; missing ids are left out.
    async fn users_by_ids(&self, ids: &[UserId]) -> StoreResult<Vec<User>>;

    async fn credentials_by_email(&self, email: &Email) -> StoreResult<Option<UserCredentials>>;

    /// Users, newest first.
    async fn list_users(&self, page: &PageRequest) -> StoreResult<Page<User>>;

    async fn insert_refresh_token(&self, token: &NewRefreshToken) -> StoreResult<()>;

    /// Atomically checks the presented token and, when valid, marks it used and stores the
    /// replacement in the same family. A replay revokes the family.
    async fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        replacement: &Replacement,
        now: DateTime<Utc>,
    ) -> StoreResult<RotateOutcome>;

    /// Revokes the family of the presented token; `false` if no such token, or its family
    /// was revoked already.
    async fn revoke_refresh_family(&self, presented_hash: &str, now: DateTime<Utc>) -> StoreResult<bool>;

    /// The record of a token, by hash (for tests and audits).
    async fn refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshTokenRecord>>;

    async fn insert_dataset(&self, dataset: &Dataset) -> StoreResult<()>;

    /// Records a version attempt `attempt` of `job` published, and that it published it, in
    /// one transaction; `Conflict` ([`NOT_THE_RUNNING_ATTEMPT`]) when the job is no longer
    /// running that attempt (it was claimed again, or ended), and nothing is recorded.
    async fn insert_job_output(&self, dataset: &Dataset, job: JobId, attempt: u32) -> StoreResult<()>;

    /// Versions published by jobs that did not complete them (see `sql::orphaned_outputs`):
    /// (owner, dataset) pairs, for deletion.
    async fn orphaned_outputs(&self) -> StoreResult<Vec<(UserId, DatasetId)>>;

    /// A dataset, if it exists **and** `owner` owns it: another user's dataset and a missing
    /// one are indistinguishable.
    async fn dataset(&self, id: DatasetId, owner: UserId) -> StoreResult<Option<Dataset>>;

    /// Several of one owner's datasets at once, for the DataLoader; others are left out.
    async fn datasets_by_ids(&self, owner: UserId, ids: &[DatasetId]) -> StoreResult<Vec<Dataset>>;

    /// The owner's datasets of the given kinds (every kind when empty), newest first.
    async fn list_datasets(
        &self,
        owner: UserId,
        kinds: &[DatasetKind],
        page: &PageRequest,
    ) -> StoreResult<Page<Dataset>>;

    /// Every dataset sharing `root` (its versions and the quarantined rows derived from
    /// them), oldest first.
    async fn dataset_versions(&self, root: DatasetId, owner: UserId) -> StoreResult<Vec<Dataset>>;

    /// Deletes a dataset and the versions derived from it (`doomed`: their ids, its own
    /// included), in one transaction; `false` if the owner has none. Jobs of other datasets
    /// that used one of them as their baseline are kept, without the baseline.
    async fn delete_dataset(&self, id: DatasetId, owner: UserId, doomed: &[DatasetId]) -> StoreResult<bool>;

    /// Whether a queued or running job reads any of these datasets.
    async fn datasets_in_use(&self, ids: &[DatasetId]) -> StoreResult<bool>;

    async fn insert_job(&self, job: &Job) -> StoreResult<()>;

    /// A job, if it exists and `owner` owns it.
    async fn job(&self, id: JobId, owner: UserId) -> StoreResult<Option<Job>>;

    /// A job by id alone, for workers and progress streams that already checked the owner.
    async fn job_by_id(&self, id: JobId) -> StoreResult<Option<Job>>;

    /// The owner's jobs, newest first, filtered.
    async fn list_jobs(
        &self,
        owner: UserId,
        filter: &JobFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Job>>;

    /// A completed job's report (JSON text), if the owner's job has one.
    async fn job_report(&self, id: JobId, owner: UserId) -> StoreResult<Option<String>>;

    /// The queued jobs in the order workers take them ([`queue_order`]).
    async fn queue(&self) -> StoreResult<Vec<JobId>>;

    /// How many queued jobs are ahead of this one in [`MetadataStore::queue`] (all of them
    /// when it is not queued).
    async fn jobs_ahead(&self, id: JobId) -> StoreResult<u64> {
        Ok(jobs_ahead_in(&self.queue().await?, id))
    }

    /// Atomically takes the next job for `worker`: a running one whose lease expired (its
    /// worker died) with fewer than `max_attempts` attempts, else the first queued job in
    /// [`queue_order`]. The job becomes RUNNING, held by `worker` until `lease_until`, with one
    /// more attempt.
    async fn claim_job(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        max_attempts: u32,
    ) -> StoreResult<Option<Job>>;

    /// Extends the lease of a job `worker` holds. `None` if it no longer holds it (the job
    /// ended or another worker took it over); otherwise whether cancellation was requested.
    async fn renew_lease(
        &self,
        id: JobId,
        worker: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<bool>>;

    /// Records progress (never lower than the stored value) and the stage (its first 255
    /// characters); `false` if `worker` no longer holds the job.
    async fn record_progress(
        &self,
        id: JobId,
        worker: &str,
        progress: f64,
        stage: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Ends a job `worker` holds (an error message is kept to its first 8,000 characters);
    /// `false` if it no longer holds it.
    async fn finish_job(
        &self,
        id: JobId,
        worker: &str,
        outcome: &JobOutcome,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Puts a job `worker` holds back in the queue without counting the attempt (graceful
    /// shutdown); `false` if it no longer holds it, or its cancellation was asked for (its
    /// worker then records it cancelled).
    async fn release_job(&self, id: JobId, worker: &str, now: DateTime<Utc>) -> StoreResult<bool>;

    /// Cancels the owner's job: a queued one at once, a running one by asking its worker.
    /// Returns the job as it now is; `None` if the owner has no such job.
    async fn cancel_job(&self, id: JobId, owner: UserId, now: DateTime<Utc>) -> StoreResult<Option<Job>>;

    /// Cancels the owner's running job whose cancellation was asked for and whose worker died
    /// (its lease expired): no worker is left to stop it. Whether it did.
    async fn cancel_orphaned_job(&self, id: JobId, owner: UserId, now: DateTime<Utc>) -> StoreResult<bool>;

    /// Fails running jobs whose lease expired with no attempts left (`WORKER_LOST`);
    /// returns how many.
    async fn fail_lost_jobs(&self, now: DateTime<Utc>, max_attempts: u32) -> StoreResult<u64>;

    async fn insert_conversation(&self, conversation: &Conversation) -> StoreResult<()>;

    /// A conversation, if it exists and `owner` owns it: another user's is `None`.
    async fn conversation(&self, id: ConversationId, owner: UserId) -> StoreResult<Option<Conversation>>;

    /// The owner's conversations, newest first.
    async fn list_conversations(&self, owner: UserId, page: &PageRequest) -> StoreResult<Page<Conversation>>;

    /// Appends messages in one transaction, numbered after the conversation's last one (1, 2,
    /// …), and sets its `updated_at` to `now`. Concurrent appends to one conversation never
    /// share a number (MySQL: the conversation row is locked `FOR UPDATE`; SQLite: the
    /// single writer with `BEGIN IMMEDIATE`). `false`, writing nothing, when the conversation
    /// does not exist or is not the owner's.
    async fn append_messages(
        &self,
        id: ConversationId,
        owner: UserId,
        messages: &[NewMessage],
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// The last `limit` messages of the owner's conversation, oldest first; empty for another
    /// user's conversation.
    async fn conversation_messages(
        &self,
        id: ConversationId,
        owner: UserId,
        limit: usize,
    ) -> StoreResult<Vec<ConversationMessage>>;

    /// Records one call to a language model.
    async fn record_llm_usage(&self, usage: &LlmUsage) -> StoreResult<()>;

    /// The owner's usage summed; only the job's when `job` is given.
    async fn llm_usage_totals(&self, owner: UserId, job: Option<JobId>) -> StoreResult<UsageTotals>;
}

/// A job row as both backends read it, before parsing.
pub(crate) struct RawJob {
    pub id: String,
    pub owner_id: String,
    pub tool_id: String,
    pub agents: String,
    pub parameters: String,
    pub dataset_id: String,
    pub baseline_dataset_id: Option<String>,
    pub status: String,
    pub progress: f64,
    pub stage: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub attempts: i64,
    pub cancel_requested: bool,
    pub output_dataset_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl RawJob {
    pub(crate) fn parse(self) -> anyhow::Result<Job> {
        let id = |s: &str| Uuid::parse_str(s).map_err(|e| anyhow::anyhow!("bad id {s:?} in store: {e}"));
        Ok(Job {
            id: JobId(id(&self.id)?),
            owner_id: UserId(id(&self.owner_id)?),
            tool_id: self.tool_id,
            agents: serde_json::from_str(&self.agents)?,
            parameters: serde_json::from_str(&self.parameters)?,
            dataset_id: DatasetId(id(&self.dataset_id)?),
            baseline_dataset_id: self.baseline_dataset_id.as_deref().map(id).transpose()?.map(DatasetId),
            status: self.status.parse::<JobStatus>().map_err(|e| anyhow::anyhow!(e))?,
            progress: self.progress,
            stage: self.stage,
            error: match (self.error_code, self.error_message) {
                (Some(code), message) => Some(JobError { code, message: message.unwrap_or_default() }),
                _ => None,
            },
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            cancel_requested: self.cancel_requested,
            output_dataset_id: self.output_dataset_id.as_deref().map(id).transpose()?.map(DatasetId),
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            updated_at: self.updated_at,
        })
    }
}

/// A dataset row as both backends read it, before parsing.
pub(crate) struct RawDataset {
    pub id: String,
    pub owner_id: String,
    pub root_id: String,
    pub parent_id: Option<String>,
    pub name: String,
    pub format: String,
    pub original_filename: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub row_count: i64,
    pub columns: String,
    pub rejected_row_count: i64,
    pub notices: String,
    pub created_at: DateTime<Utc>,
    pub kind: String,
}

impl RawDataset {
    pub(crate) fn parse(self) -> anyhow::Result<Dataset> {
        let id = |s: &str| Uuid::parse_str(s).map_err(|e| anyhow::anyhow!("bad id {s:?} in store: {e}"));
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(Dataset {
            id: DatasetId(id(&self.id)?),
            owner_id: UserId(id(&self.owner_id)?),
            root_id: DatasetId(id(&self.root_id)?),
            parent_id: self.parent_id.as_deref().map(id).transpose()?.map(DatasetId),
            kind: self.kind.parse().map_err(|e: String| anyhow::anyhow!(e))?,
            name: self.name,
            format: self.format.parse().map_err(|e: String| anyhow::anyhow!(e))?,
            original_filename: self.original_filename,
            size_bytes: count(self.size_bytes),
            sha256: self.sha256,
            row_count: count(self.row_count),
            columns: serde_json::from_str(&self.columns)?,
            rejected_row_count: count(self.rejected_row_count),
            notices: serde_json::from_str(&self.notices)?,
            created_at: self.created_at,
        })
    }
}

/// A conversation row as both backends read it, before parsing.
pub(crate) struct RawConversation {
    pub id: String,
    pub owner_id: String,
    pub dataset_id: Option<String>,
    pub job_id: Option<String>,
    pub title: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn parse_id(s: &str) -> anyhow::Result<Uuid> {
    Uuid::parse_str(s).map_err(|e| anyhow::anyhow!("bad id {s:?} in store: {e}"))
}

impl RawConversation {
    pub(crate) fn parse(self) -> anyhow::Result<Conversation> {
        Ok(Conversation {
            id: ConversationId(parse_id(&self.id)?),
            owner: UserId(parse_id(&self.owner_id)?),
            dataset: self.dataset_id.as_deref().map(parse_id).transpose()?.map(DatasetId),
            job: self.job_id.as_deref().map(parse_id).transpose()?.map(JobId),
            title: self.title,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A message row as both backends read it, before parsing.
pub(crate) struct RawMessage {
    pub conversation_id: String,
    pub seq: i64,
    pub role: String,
    pub content: String,
    pub sources: String,
    pub model: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl RawMessage {
    pub(crate) fn parse(self) -> anyhow::Result<ConversationMessage> {
        Ok(ConversationMessage {
            conversation: ConversationId(parse_id(&self.conversation_id)?),
            seq: u32::try_from(self.seq).map_err(|_| anyhow::anyhow!("bad seq {} in store", self.seq))?,
            role: MessageRole::parse(&self.role)
                .ok_or_else(|| anyhow::anyhow!("bad role {:?} in store", self.role))?,
            content: self.content,
            sources: serde_json::from_str(&self.sources)?,
            model: self.model,
            created_at: self.created_at,
        })
    }
}

/// Usage sums as both backends read them (count, prompt tokens, completion tokens).
pub(crate) fn usage_totals(requests: i64, prompt_tokens: i64, completion_tokens: i64) -> UsageTotals {
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    UsageTotals {
        requests: count(requests),
        prompt_tokens: count(prompt_tokens),
        completion_tokens: count(completion_tokens),
    }
}

/// Opens the configured store (creating a SQLite file and its folder if needed).
pub async fn open(config: &DatabaseConfig) -> anyhow::Result<Arc<dyn MetadataStore>> {
    Ok(match config {
        DatabaseConfig::Sqlite { path } => Arc::new(SqliteStore::open(path).await?),
        DatabaseConfig::Mysql { url } => Arc::new(MysqlStore::connect(url.expose()).await?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(owner: UserId, status: JobStatus) -> Job {
        let mut job = Job::queued(
            owner,
            "t".into(),
            vec![],
            serde_json::Value::Null,
            DatasetId::generate(),
            None,
            now(),
        );
        job.status = status;
        job
    }

    #[test]
    fn the_queue_takes_owners_in_turn_each_in_the_order_asked() {
        let (ada, bob, cy) = (UserId::generate(), UserId::generate(), UserId::generate());
        // Ada has two running and three queued; Bob one running and two queued; Cy, who asked
        // last, one queued. Finished jobs do not count.
        let running =
            [job(ada, JobStatus::Running), job(ada, JobStatus::Running), job(bob, JobStatus::Running)];
        let a: Vec<Job> = (0..3).map(|_| job(ada, JobStatus::Queued)).collect();
        let b: Vec<Job> = (0..2).map(|_| job(bob, JobStatus::Queued)).collect();
        let c = job(cy, JobStatus::Queued);
        let done = job(cy, JobStatus::Completed);
        let mut active: Vec<Job> = running.into_iter().chain(a.clone()).chain(b.clone()).collect();
        active.extend([c.clone(), done]);
        active.reverse();
        // Turns: Cy's job 0; Bob's 1, 2; Ada's 2, 3, 4 (ties: oldest first).
        let never = HashMap::new();
        assert_eq!(queue_order(&active, &never), vec![c.id, b[0].id, a[0].id, b[1].id, a[1].id, a[2].id]);
        assert!(queue_order(&[], &never).is_empty());
        // Within a turn, the owner served longest ago goes first: Ada's job just ended, so
        // her next one waits for Bob's, however old it is.
        let queued: Vec<Job> = a.iter().chain(&b).cloned().collect();
        let served = HashMap::from([(ada, now()), (bob, now() - chrono::Duration::minutes(5))]);
        assert_eq!(queue_order(&queued, &served), vec![b[0].id, a[0].id, b[1].id, a[1].id, a[2].id]);
        let served = HashMap::from([(ada, now())]);
        assert_eq!(queue_order(&queued, &served)[0], b[0].id, "never served: first");
        assert_eq!(queued_owners(&active).len(), 3);
        // The order predicts the claims to come: Ada has one running (just started) and four
        // queued, Bob three queued, and they alternate, Bob first.
        let ada_running = job(ada, JobStatus::Running);
        let adas: Vec<Job> = (0..4).map(|_| job(ada, JobStatus::Queued)).collect();
        let bobs: Vec<Job> = (0..3).map(|_| job(bob, JobStatus::Queued)).collect();
        let active: Vec<Job> = [ada_running].into_iter().chain(adas.clone()).chain(bobs.clone()).collect();
        let served = HashMap::from([(ada, now())]);
        let ids = |jobs: &[&Job]| jobs.iter().map(|j| j.id).collect::<Vec<_>>();
        assert_eq!(
            queue_order(&active, &served),
            ids(&[&bobs[0], &adas[0], &bobs[1], &adas[1], &bobs[2], &adas[2], &adas[3]])
        );
    }
}

/// (Here rather than in `sqlite.rs`: CI counts the tests under `sqlite::` as the SQLite half of
/// the store suites.)
#[cfg(all(test, unix))]
mod private_files {
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn a_new_sqlite_database_and_its_journal_are_readable_by_their_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta").join("agensium.db");
        let _store = super::SqliteStore::open(&path).await.unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
        let wal = path.with_extension("db-wal");
        assert!(wal.exists());
        assert_eq!(mode(&wal), 0o600);
        assert_eq!(super::sqlite::shared_mode(&path), None);
    }

    #[tokio::test]
    async fn an_existing_database_keeps_its_permissions_and_loose_ones_are_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agensium.db");
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _store = super::SqliteStore::open(&path).await.unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
        assert_eq!(super::sqlite::shared_mode(&path), Some(0o644));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(super::sqlite::shared_mode(&path), None);
    }
}
