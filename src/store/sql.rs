//! Every SQL statement of the metadata store, built once with sea-query.
//!
//! Backends call `.build(SqliteQueryBuilder)` or `.build(MysqlQueryBuilder)` and bind the
//! resulting values; no SQL text is ever built from user input.

use chrono::{DateTime, Utc};
use sea_query::{
    Alias, Asterisk, Cond, DeleteStatement, Expr, ExprTrait, Func, Iden, InsertStatement, LockBehavior,
    LockType, Order, Query, SelectStatement, UpdateStatement,
};
use uuid::Uuid;

use crate::domain::{
    Conversation, ConversationId, Dataset, DatasetId, DatasetKind, Email, Job, JobId, JobStatus, NewMessage,
    NewUser, UserId,
};

use super::{NewRefreshToken, PageRequest, Replacement};

#[derive(Iden, Clone, Copy)]
pub enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
    Role,
    CreatedAt,
    UpdatedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum RefreshTokens {
    Table,
    Id,
    FamilyId,
    UserId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    RevokedAt,
}

/// The columns a `User` is decoded from, in this order.
pub const USER_COLUMNS: [Users; 4] = [Users::Id, Users::Email, Users::Role, Users::CreatedAt];

/// The columns a `RefreshTokenRecord` is decoded from, in this order.
pub const TOKEN_COLUMNS: [RefreshTokens; 6] = [
    RefreshTokens::Id,
    RefreshTokens::FamilyId,
    RefreshTokens::UserId,
    RefreshTokens::ExpiresAt,
    RefreshTokens::UsedAt,
    RefreshTokens::RevokedAt,
];

fn uuid(id: Uuid) -> String {
    id.hyphenated().to_string()
}

pub fn insert_user(user: &NewUser) -> InsertStatement {
    Query::insert()
        .into_table(Users::Table)
        .columns([
            Users::Id,
            Users::Email,
            Users::PasswordHash,
            Users::Role,
            Users::CreatedAt,
            Users::UpdatedAt,
        ])
        .values_panic([
            uuid(user.id.0).into(),
            user.email.as_str().into(),
            user.password_hash.clone().into(),
            user.role.as_str().into(),
            user.created_at.into(),
            user.created_at.into(),
        ])
        .to_owned()
}

pub fn user_by_id(id: UserId) -> SelectStatement {
    Query::select()
        .columns(USER_COLUMNS)
        .from(Users::Table)
        .and_where(Expr::col(Users::Id).eq(uuid(id.0)))
        .to_owned()
}

pub fn users_by_ids(ids: &[UserId]) -> SelectStatement {
    Query::select()
        .columns(USER_COLUMNS)
        .from(Users::Table)
        .and_where(Expr::col(Users::Id).is_in(ids.iter().map(|id| uuid(id.0))))
        .to_owned()
}

/// User columns followed by the password hash.
pub fn credentials_by_email(email: &Email) -> SelectStatement {
    Query::select()
        .columns(USER_COLUMNS)
        .column(Users::PasswordHash)
        .from(Users::Table)
        .and_where(Expr::col(Users::Email).eq(email.as_str()))
        .to_owned()
}

/// One more row than asked for, so the caller knows whether a next page exists.
pub fn list_users(page: &PageRequest) -> SelectStatement {
    let mut query = Query::select()
        .columns(USER_COLUMNS)
        .from(Users::Table)
        .order_by(Users::Id, Order::Desc)
        .limit(page.first as u64 + 1)
        .to_owned();
    if let Some(after) = page.after {
        query.and_where(Expr::col(Users::Id).lt(uuid(after)));
    }
    query
}

pub fn count_users() -> SelectStatement {
    Query::select().expr(Func::count(Expr::col(Asterisk))).from(Users::Table).to_owned()
}

pub fn insert_refresh_token(token: &NewRefreshToken) -> InsertStatement {
    Query::insert()
        .into_table(RefreshTokens::Table)
        .columns([
            RefreshTokens::Id,
            RefreshTokens::FamilyId,
            RefreshTokens::UserId,
            RefreshTokens::TokenHash,
            RefreshTokens::CreatedAt,
            RefreshTokens::ExpiresAt,
        ])
        .values_panic([
            uuid(token.id).into(),
            uuid(token.family_id).into(),
            uuid(token.user_id.0).into(),
            token.token_hash.clone().into(),
            token.created_at.into(),
            token.expires_at.into(),
        ])
        .to_owned()
}

/// The replacement token, in the family and for the user of the rotated one.
pub fn insert_replacement(
    replacement: &Replacement,
    family_id: Uuid,
    user_id: UserId,
    now: DateTime<Utc>,
) -> InsertStatement {
    insert_refresh_token(&NewRefreshToken {
        id: replacement.id,
        family_id,
        user_id,
        token_hash: replacement.token_hash.clone(),
        created_at: now,
        expires_at: replacement.expires_at,
    })
}

/// The token's record; `for_update` locks the row for the rest of the transaction (MySQL).
pub fn refresh_token_by_hash(token_hash: &str, for_update: bool) -> SelectStatement {
    let mut query = Query::select()
        .columns(TOKEN_COLUMNS)
        .from(RefreshTokens::Table)
        .and_where(Expr::col(RefreshTokens::TokenHash).eq(token_hash))
        .to_owned();
    if for_update {
        query.lock(LockType::Update);
    }
    query
}

pub fn mark_refresh_token_used(id: Uuid, now: DateTime<Utc>) -> UpdateStatement {
    Query::update()
        .table(RefreshTokens::Table)
        .value(RefreshTokens::UsedAt, now)
        .and_where(Expr::col(RefreshTokens::Id).eq(uuid(id)))
        .and_where(Expr::col(RefreshTokens::UsedAt).is_null())
        .to_owned()
}

pub fn revoke_family(family_id: Uuid, now: DateTime<Utc>) -> UpdateStatement {
    Query::update()
        .table(RefreshTokens::Table)
        .value(RefreshTokens::RevokedAt, now)
        .and_where(Expr::col(RefreshTokens::FamilyId).eq(uuid(family_id)))
        .and_where(Expr::col(RefreshTokens::RevokedAt).is_null())
        .to_owned()
}

#[derive(Iden, Clone, Copy)]
pub enum Datasets {
    Table,
    Id,
    OwnerId,
    RootId,
    ParentId,
    Name,
    Format,
    OriginalFilename,
    SizeBytes,
    Sha256,
    RowCount,
    ColumnCount,
    Columns,
    RejectedRowCount,
    Notices,
    CreatedAt,
    Kind,
}

/// The columns a `Dataset` is decoded from, in this order.
pub const DATASET_COLUMNS: [Datasets; 15] = [
    Datasets::Id,
    Datasets::OwnerId,
    Datasets::RootId,
    Datasets::ParentId,
    Datasets::Name,
    Datasets::Format,
    Datasets::OriginalFilename,
    Datasets::SizeBytes,
    Datasets::Sha256,
    Datasets::RowCount,
    Datasets::Columns,
    Datasets::RejectedRowCount,
    Datasets::Notices,
    Datasets::CreatedAt,
    Datasets::Kind,
];

fn count_as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub fn insert_dataset(dataset: &Dataset) -> InsertStatement {
    // The values follow DATASET_COLUMNS, then the column count (stored for queries, not read).
    Query::insert()
        .into_table(Datasets::Table)
        .columns(DATASET_COLUMNS.into_iter().chain([Datasets::ColumnCount]))
        .values_panic([
            uuid(dataset.id.0).into(),
            uuid(dataset.owner_id.0).into(),
            uuid(dataset.root_id.0).into(),
            dataset.parent_id.map(|p| uuid(p.0)).into(),
            dataset.name.clone().into(),
            dataset.format.as_str().into(),
            dataset.original_filename.clone().into(),
            count_as_i64(dataset.size_bytes).into(),
            dataset.sha256.clone().into(),
            count_as_i64(dataset.row_count).into(),
            json_text(&dataset.columns).into(),
            count_as_i64(dataset.rejected_row_count).into(),
            json_text(&dataset.notices).into(),
            dataset.created_at.into(),
            dataset.kind.as_str().into(),
            i64::try_from(dataset.columns.len()).unwrap_or(i64::MAX).into(),
        ])
        .to_owned()
}

/// A list stored as JSON text (lists of plain structs and strings always serialise).
fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".into())
}

/// A dataset, only if `owner` owns it: tenancy is enforced in the query itself.
pub fn dataset_for_owner(id: DatasetId, owner: UserId) -> SelectStatement {
    Query::select()
        .columns(DATASET_COLUMNS)
        .from(Datasets::Table)
        .and_where(Expr::col(Datasets::Id).eq(uuid(id.0)))
        .and_where(Expr::col(Datasets::OwnerId).eq(uuid(owner.0)))
        .to_owned()
}

/// Several of one owner's datasets at once (for the DataLoader).
pub fn datasets_by_ids(owner: UserId, ids: &[DatasetId]) -> SelectStatement {
    Query::select()
        .columns(DATASET_COLUMNS)
        .from(Datasets::Table)
        .and_where(Expr::col(Datasets::OwnerId).eq(uuid(owner.0)))
        .and_where(Expr::col(Datasets::Id).is_in(ids.iter().map(|id| uuid(id.0))))
        .to_owned()
}

/// The owner's datasets of the given kinds (every kind when empty), newest first; one more
/// row than asked for.
pub fn list_datasets(owner: UserId, kinds: &[DatasetKind], page: &PageRequest) -> SelectStatement {
    let mut query = Query::select()
        .columns(DATASET_COLUMNS)
        .from(Datasets::Table)
        .and_where(Expr::col(Datasets::OwnerId).eq(uuid(owner.0)))
        .order_by(Datasets::Id, Order::Desc)
        .limit(page.first as u64 + 1)
        .to_owned();
    of_kinds(&mut query, kinds);
    if let Some(after) = page.after {
        query.and_where(Expr::col(Datasets::Id).lt(uuid(after)));
    }
    query
}

fn of_kinds(query: &mut SelectStatement, kinds: &[DatasetKind]) {
    if !kinds.is_empty() {
        query.and_where(Expr::col(Datasets::Kind).is_in(kinds.iter().map(|k| k.as_str())));
    }
}

pub fn count_datasets(owner: UserId, kinds: &[DatasetKind]) -> SelectStatement {
    let mut query = Query::select()
        .expr(Func::count(Expr::col(Asterisk)))
        .from(Datasets::Table)
        .and_where(Expr::col(Datasets::OwnerId).eq(uuid(owner.0)))
        .to_owned();
    of_kinds(&mut query, kinds);
    query
}

/// Every dataset sharing a root, oldest first: its versions and the quarantined rows
/// derived from them.
pub fn dataset_versions(root: DatasetId, owner: UserId) -> SelectStatement {
    Query::select()
        .columns(DATASET_COLUMNS)
        .from(Datasets::Table)
        .and_where(Expr::col(Datasets::RootId).eq(uuid(root.0)))
        .and_where(Expr::col(Datasets::OwnerId).eq(uuid(owner.0)))
        .order_by(Datasets::Id, Order::Asc)
        .to_owned()
}

/// Deletes a dataset (its derived versions go with it, by foreign key) if `owner` owns it.
pub fn delete_dataset(id: DatasetId, owner: UserId) -> DeleteStatement {
    Query::delete()
        .from_table(Datasets::Table)
        .and_where(Expr::col(Datasets::Id).eq(uuid(id.0)))
        .and_where(Expr::col(Datasets::OwnerId).eq(uuid(owner.0)))
        .to_owned()
}

#[derive(Iden, Clone, Copy)]
pub enum Jobs {
    Table,
    Id,
    OwnerId,
    ToolId,
    Agents,
    Parameters,
    DatasetId,
    BaselineDatasetId,
    Status,
    Progress,
    Stage,
    ErrorCode,
    ErrorMessage,
    Attempts,
    CancelRequested,
    WorkerId,
    LeaseExpiresAt,
    OutputDatasetId,
    Report,
    CreatedAt,
    StartedAt,
    FinishedAt,
    UpdatedAt,
}

/// The columns a `Job` is decoded from, in this order (the report is read on its own).
pub const JOB_COLUMNS: [Jobs; 20] = [
    Jobs::Id,
    Jobs::OwnerId,
    Jobs::ToolId,
    Jobs::Agents,
    Jobs::Parameters,
    Jobs::DatasetId,
    Jobs::BaselineDatasetId,
    Jobs::Status,
    Jobs::Progress,
    Jobs::Stage,
    Jobs::ErrorCode,
    Jobs::ErrorMessage,
    Jobs::Attempts,
    Jobs::CancelRequested,
    Jobs::OutputDatasetId,
    Jobs::CreatedAt,
    Jobs::StartedAt,
    Jobs::FinishedAt,
    Jobs::UpdatedAt,
    Jobs::WorkerId,
];

pub fn insert_job(job: &Job) -> InsertStatement {
    Query::insert()
        .into_table(Jobs::Table)
        .columns(JOB_COLUMNS)
        .values_panic([
            uuid(job.id.0).into(),
            uuid(job.owner_id.0).into(),
            job.tool_id.clone().into(),
            json_text(&job.agents).into(),
            job.parameters.to_string().into(),
            uuid(job.dataset_id.0).into(),
            job.baseline_dataset_id.map(|d| uuid(d.0)).into(),
            job.status.as_str().into(),
            job.progress.into(),
            job.stage.clone().into(),
            job.error.as_ref().map(|e| e.code.clone()).into(),
            job.error.as_ref().map(|e| e.message.clone()).into(),
            i64::from(job.attempts).into(),
            job.cancel_requested.into(),
            job.output_dataset_id.map(|d| uuid(d.0)).into(),
            job.created_at.into(),
            job.started_at.into(),
            job.finished_at.into(),
            job.updated_at.into(),
            Option::<String>::None.into(),
        ])
        .to_owned()
}

/// A job, only if `owner` owns it.
pub fn job_for_owner(id: JobId, owner: UserId) -> SelectStatement {
    Query::select()
        .columns(JOB_COLUMNS)
        .from(Jobs::Table)
        .and_where(Expr::col(Jobs::Id).eq(uuid(id.0)))
        .and_where(Expr::col(Jobs::OwnerId).eq(uuid(owner.0)))
        .to_owned()
}

/// A job by id alone (workers; never reached from a client's request).
pub fn job_by_id(id: JobId, for_update: bool) -> SelectStatement {
    let mut query = Query::select()
        .columns(JOB_COLUMNS)
        .from(Jobs::Table)
        .and_where(Expr::col(Jobs::Id).eq(uuid(id.0)))
        .to_owned();
    if for_update {
        query.lock(LockType::Update);
    }
    query
}

/// Which jobs a list shows.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Jobs in one of these states (none: in any).
    pub statuses: Vec<crate::domain::JobStatus>,
    pub tool_id: Option<String>,
    /// Jobs over this dataset (as the profiled one, not as a baseline).
    pub dataset_id: Option<crate::domain::DatasetId>,
}

fn filter_jobs(query: &mut SelectStatement, owner: UserId, filter: &JobFilter) {
    query.and_where(Expr::col(Jobs::OwnerId).eq(uuid(owner.0)));
    if !filter.statuses.is_empty() {
        query.and_where(Expr::col(Jobs::Status).is_in(filter.statuses.iter().map(|s| s.as_str())));
    }
    if let Some(tool) = &filter.tool_id {
        query.and_where(Expr::col(Jobs::ToolId).eq(tool.clone()));
    }
    if let Some(dataset) = filter.dataset_id {
        query.and_where(Expr::col(Jobs::DatasetId).eq(uuid(dataset.0)));
    }
}

/// The owner's jobs, newest first; one more row than asked for.
pub fn list_jobs(owner: UserId, filter: &JobFilter, page: &PageRequest) -> SelectStatement {
    let mut query = Query::select()
        .columns(JOB_COLUMNS)
        .from(Jobs::Table)
        .order_by(Jobs::Id, Order::Desc)
        .limit(page.first as u64 + 1)
        .to_owned();
    filter_jobs(&mut query, owner, filter);
    if let Some(after) = page.after {
        query.and_where(Expr::col(Jobs::Id).lt(uuid(after)));
    }
    query
}

pub fn count_jobs(owner: UserId, filter: &JobFilter) -> SelectStatement {
    let mut query = Query::select().expr(Func::count(Expr::col(Asterisk))).from(Jobs::Table).to_owned();
    filter_jobs(&mut query, owner, filter);
    query
}

pub fn job_report(id: JobId, owner: UserId) -> SelectStatement {
    Query::select()
        .column(Jobs::Report)
        .from(Jobs::Table)
        .and_where(Expr::col(Jobs::Id).eq(uuid(id.0)))
        .and_where(Expr::col(Jobs::OwnerId).eq(uuid(owner.0)))
        .to_owned()
}

/// Every queued or running job, oldest first: what the queue's order ([`super::queue_order`])
/// is computed from (few rows: the work waiting or in progress).
pub fn active_jobs() -> SelectStatement {
    Query::select()
        .columns(JOB_COLUMNS)
        .from(Jobs::Table)
        .and_where(Expr::col(Jobs::Status).is_in([JobStatus::Queued.as_str(), JobStatus::Running.as_str()]))
        .order_by(Jobs::Id, Order::Asc)
        .to_owned()
}

/// When each of `owners` last had a job started: (owner id, latest `started_at`), for the
/// owners that ever had one. The queue's tie-break ([`super::queue_order`]).
pub fn owners_last_started(owners: &[UserId]) -> SelectStatement {
    let ids: Vec<String> = owners.iter().map(|id| uuid(id.0)).collect();
    Query::select()
        .column(Jobs::OwnerId)
        .expr(Func::max(Expr::col(Jobs::StartedAt)))
        .from(Jobs::Table)
        .and_where(Expr::col(Jobs::OwnerId).is_in(ids))
        .and_where(Expr::col(Jobs::StartedAt).is_not_null())
        .group_by_col(Jobs::OwnerId)
        .to_owned()
}

/// The oldest running job whose worker stopped renewing its lease (died) and that has attempts
/// left: taken again before any queued job. MySQL skips rows another worker is claiming
/// (`SKIP LOCKED`); SQLite has one writer, so no lock clause is needed.
pub fn expired_job(now: DateTime<Utc>, max_attempts: u32, lock: bool) -> SelectStatement {
    let mut query = Query::select()
        .columns(JOB_COLUMNS)
        .from(Jobs::Table)
        .and_where(Expr::col(Jobs::Status).eq(JobStatus::Running.as_str()))
        .and_where(Expr::col(Jobs::LeaseExpiresAt).lt(now))
        .and_where(Expr::col(Jobs::Attempts).lt(i64::from(max_attempts)))
        // One asked to cancel is not run again: the lost-job sweep cancels it.
        .and_where(Expr::col(Jobs::CancelRequested).eq(false))
        .order_by(Jobs::Id, Order::Asc)
        .limit(1)
        .to_owned();
    if lock {
        query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    query
}

/// Job `id` while it is still queued (MySQL: unless another worker is claiming it).
pub fn queued_job(id: JobId, lock: bool) -> SelectStatement {
    let mut query = Query::select()
        .columns(JOB_COLUMNS)
        .from(Jobs::Table)
        .and_where(Expr::col(Jobs::Id).eq(uuid(id.0)))
        .and_where(Expr::col(Jobs::Status).eq(JobStatus::Queued.as_str()))
        .to_owned();
    if lock {
        query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    query
}

/// Marks a job claimed by `worker` until `lease_until`.
pub fn claim_job(id: JobId, worker: &str, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> UpdateStatement {
    Query::update()
        .table(Jobs::Table)
        .value(Jobs::Status, JobStatus::Running.as_str())
        .value(Jobs::WorkerId, worker)
        .value(Jobs::LeaseExpiresAt, lease_until)
        .value(Jobs::Attempts, Expr::col(Jobs::Attempts).add(1))
        .value(Jobs::StartedAt, Func::coalesce([Expr::col(Jobs::StartedAt), Expr::val(now)]))
        .value(Jobs::UpdatedAt, now)
        .and_where(Expr::col(Jobs::Id).eq(uuid(id.0)))
        .to_owned()
}

/// Only the worker holding a running job may change it.
fn held_by(query: &mut UpdateStatement, id: JobId, worker: &str) {
    query
        .and_where(Expr::col(Jobs::Id).eq(uuid(id.0)))
        .and_where(Expr::col(Jobs::WorkerId).eq(worker))
        .and_where(Expr::col(Jobs::Status).eq(JobStatus::Running.as_str()));
}

/// Whether cancellation was requested for a job `worker` holds (no row: it does not hold it).
pub fn held_job_cancel_requested(id: JobId, worker: &str) -> SelectStatement {
    Query::select()
        .column(Jobs::CancelRequested)
        .from(Jobs::Table)
        .and_where(Expr::col(Jobs::Id).eq(uuid(id.0)))
        .and_where(Expr::col(Jobs::WorkerId).eq(worker))
        .and_where(Expr::col(Jobs::Status).eq(JobStatus::Running.as_str()))
        .to_owned()
}

pub fn renew_lease(id: JobId, worker: &str, lease_until: DateTime<Utc>) -> UpdateStatement {
    let mut query = Query::update().table(Jobs::Table).value(Jobs::LeaseExpiresAt, lease_until).to_owned();
    held_by(&mut query, id, worker);
    query
}

/// Records progress; a lower value than the stored one keeps the stored one (a job
/// re-run after its worker died restarts from zero without moving the bar backwards).
pub fn record_progress(
    id: JobId,
    worker: &str,
    progress: f64,
    stage: &str,
    now: DateTime<Utc>,
) -> UpdateStatement {
    let mut query = Query::update()
        .table(Jobs::Table)
        .value(
            Jobs::Progress,
            Expr::case(Expr::col(Jobs::Progress).lt(progress), Expr::val(progress))
                .finally(Expr::col(Jobs::Progress)),
        )
        .value(Jobs::Stage, clip(stage, MAX_STAGE))
        .value(Jobs::UpdatedAt, now)
        .to_owned();
    held_by(&mut query, id, worker);
    query
}

/// The most characters of a job's stage kept (MySQL's column holds 255).
const MAX_STAGE: usize = 255;

/// The most characters of a job's error message kept: an integrity check's message lists
/// every column that failed, and MySQL's `TEXT` holds 64 KiB.
const MAX_ERROR_MESSAGE: usize = 8_000;

/// `text` cut to at most `max` characters, the cut marked with an ellipsis.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some(_) => {
            let end = text.char_indices().nth(max - 1).map_or(text.len(), |(i, _)| i);
            format!("{}…", &text[..end])
        }
    }
}

/// How a job ended.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub status: JobStatus,
    pub error: Option<crate::domain::JobError>,
    /// The report as JSON text.
    pub report: Option<String>,
    pub output_dataset_id: Option<DatasetId>,
}

pub fn finish_job(id: JobId, worker: &str, outcome: &JobOutcome, now: DateTime<Utc>) -> UpdateStatement {
    let mut query = Query::update()
        .table(Jobs::Table)
        .value(Jobs::Status, outcome.status.as_str())
        .value(Jobs::ErrorCode, outcome.error.as_ref().map(|e| e.code.clone()))
        .value(Jobs::ErrorMessage, outcome.error.as_ref().map(|e| clip(&e.message, MAX_ERROR_MESSAGE)))
        .value(Jobs::Report, outcome.report.clone())
        .value(Jobs::OutputDatasetId, outcome.output_dataset_id.map(|d| uuid(d.0)))
        .value(Jobs::LeaseExpiresAt, Option::<DateTime<Utc>>::None)
        .value(Jobs::FinishedAt, now)
        .value(Jobs::UpdatedAt, now)
        .to_owned();
    if outcome.status == JobStatus::Completed {
        // A cancellation asked for after the worker last looked wins: the job does not
        // complete (the worker then ends it cancelled).
        query
            .value(Jobs::Progress, 100.0)
            .value(Jobs::Stage, "done")
            .and_where(Expr::col(Jobs::CancelRequested).eq(false));
    }
    held_by(&mut query, id, worker);
    query
}

/// Cancels a queued job outright.
pub fn cancel_queued_job(id: JobId, owner: UserId, now: DateTime<Utc>) -> UpdateStatement {
    Query::update()
        .table(Jobs::Table)
        .value(Jobs::Status, JobStatus::Cancelled.as_str())
        .value(Jobs::CancelRequested, true)
        .value(Jobs::FinishedAt, now)
        .value(Jobs::UpdatedAt, now)
        .and_where(Expr::col(Jobs::Id).eq(uuid(id.0)))
        .and_where(Expr::col(Jobs::OwnerId).eq(uuid(owner.0)))
        .and_where(Expr::col(Jobs::Status).eq(JobStatus::Queued.as_str()))
        .to_owned()
}

/// Asks the worker running a job to stop it.
pub fn request_cancel(id: JobId, owner: UserId, now: DateTime<Utc>) -> UpdateStatement {
    Query::update()
        .table(Jobs::Table)
        .value(Jobs::CancelRequested, true)
        .value(Jobs::UpdatedAt, now)
        .and_where(Expr::col(Jobs::Id).eq(uuid(id.0)))
        .and_where(Expr::col(Jobs::OwnerId).eq(uuid(owner.0)))
        .and_where(Expr::col(Jobs::Status).eq(JobStatus::Running.as_str()))
        .to_owned()
}

/// Running jobs (the owner's `id`, or every one) whose cancellation was asked for and whose worker died
/// (their lease expired): no worker is left to stop them, so they are cancelled here, rather
/// than run again or failed as lost.
pub fn cancel_orphaned_jobs(only: Option<(JobId, UserId)>, now: DateTime<Utc>) -> UpdateStatement {
    let mut update = Query::update()
        .table(Jobs::Table)
        .value(Jobs::Status, JobStatus::Cancelled.as_str())
        .value(Jobs::LeaseExpiresAt, Option::<DateTime<Utc>>::None)
        .value(Jobs::FinishedAt, now)
        .value(Jobs::UpdatedAt, now)
        .and_where(Expr::col(Jobs::Status).eq(JobStatus::Running.as_str()))
        .and_where(Expr::col(Jobs::CancelRequested).eq(true))
        .and_where(Expr::col(Jobs::LeaseExpiresAt).lt(now))
        .to_owned();
    if let Some((id, owner)) = only {
        update.and_where(Expr::col(Jobs::Id).eq(uuid(id.0)));
        update.and_where(Expr::col(Jobs::OwnerId).eq(uuid(owner.0)));
    }
    update
}

/// Running jobs whose worker died and that have no attempts left: they fail.
pub fn fail_lost_jobs(now: DateTime<Utc>, max_attempts: u32) -> UpdateStatement {
    Query::update()
        .table(Jobs::Table)
        .value(Jobs::Status, JobStatus::Failed.as_str())
        .value(Jobs::ErrorCode, "WORKER_LOST")
        .value(
            Jobs::ErrorMessage,
            format!(
                "the worker running this job stopped responding {max_attempts} times; the job was given up"
            ),
        )
        .value(Jobs::LeaseExpiresAt, Option::<DateTime<Utc>>::None)
        .value(Jobs::FinishedAt, now)
        .value(Jobs::UpdatedAt, now)
        .and_where(Expr::col(Jobs::Status).eq(JobStatus::Running.as_str()))
        .and_where(Expr::col(Jobs::LeaseExpiresAt).lt(now))
        .and_where(Expr::col(Jobs::Attempts).gte(i64::from(max_attempts)))
        .to_owned()
}

/// Jobs of datasets outside `doomed` whose baseline is one of `doomed` (deleted together)
/// keep their reports, without the baseline: the link is cleared before the delete, whose
/// cascade would otherwise take those jobs too.
pub fn detach_baselines(owner: UserId, doomed: &[DatasetId]) -> UpdateStatement {
    let ids: Vec<String> = doomed.iter().map(|id| uuid(id.0)).collect();
    Query::update()
        .table(Jobs::Table)
        .value(Jobs::BaselineDatasetId, Option::<String>::None)
        .and_where(Expr::col(Jobs::OwnerId).eq(uuid(owner.0)))
        .and_where(Expr::col(Jobs::BaselineDatasetId).is_in(ids.clone()))
        .and_where(Expr::col(Jobs::DatasetId).is_not_in(ids))
        .to_owned()
}

/// Unfinished jobs that read a dataset (as input or baseline).
pub fn active_jobs_on_dataset(ids: &[DatasetId]) -> SelectStatement {
    let ids: Vec<String> = ids.iter().map(|id| uuid(id.0)).collect();
    Query::select()
        .expr(Func::count(Expr::col(Asterisk)))
        .from(Jobs::Table)
        .and_where(Expr::col(Jobs::Status).is_in([JobStatus::Queued.as_str(), JobStatus::Running.as_str()]))
        .cond_where(
            Cond::any()
                .add(Expr::col(Jobs::DatasetId).is_in(ids.clone()))
                .add(Expr::col(Jobs::BaselineDatasetId).is_in(ids)),
        )
        .to_owned()
}

/// Gives a running job back to the queue (its worker is shutting down); the attempt does
/// not count. Not one whose cancellation was asked for: its worker records it cancelled.
pub fn release_job(id: JobId, worker: &str, now: DateTime<Utc>) -> UpdateStatement {
    let mut query = Query::update()
        .table(Jobs::Table)
        .value(Jobs::Status, JobStatus::Queued.as_str())
        .value(Jobs::WorkerId, Option::<String>::None)
        .value(Jobs::LeaseExpiresAt, Option::<DateTime<Utc>>::None)
        .value(Jobs::Attempts, Expr::col(Jobs::Attempts).sub(1))
        .value(Jobs::UpdatedAt, now)
        .and_where(Expr::col(Jobs::CancelRequested).eq(false))
        .to_owned();
    held_by(&mut query, id, worker);
    query
}

#[derive(Iden, Clone, Copy)]
pub enum JobOutputs {
    Table,
    JobId,
    DatasetId,
    Attempt,
}

/// Records that attempt `attempt` of `job` published `dataset`.
pub fn insert_job_output(job: JobId, attempt: u32, dataset: DatasetId) -> InsertStatement {
    Query::insert()
        .into_table(JobOutputs::Table)
        .columns([JobOutputs::JobId, JobOutputs::DatasetId, JobOutputs::Attempt])
        .values_panic([uuid(job.0).into(), uuid(dataset.0).into(), i64::from(attempt).into()])
        .to_owned()
}

/// Versions published by a job that did not complete them: the job failed or was cancelled,
/// or an earlier attempt than the job's last published them (its worker died). (owner id,
/// dataset id) pairs. Only versions nothing else builds on: one the user already derived a
/// version from, ran a job on or talked about is theirs now, and is kept (a delete would take
/// that work with it).
pub fn orphaned_outputs() -> SelectStatement {
    let (child, other, talk, mine) =
        (Alias::new("child"), Alias::new("other"), Alias::new("talk"), Alias::new("mine"));
    let children = Query::select()
        .expr(Expr::val(1))
        .from_as(Datasets::Table, child.clone())
        .and_where(Expr::col((child, Datasets::ParentId)).equals((Datasets::Table, Datasets::Id)))
        .to_owned();
    let jobs = Query::select()
        .expr(Expr::val(1))
        .from_as(Jobs::Table, other.clone())
        .cond_where(
            Cond::any()
                .add(Expr::col((other.clone(), Jobs::DatasetId)).equals((Datasets::Table, Datasets::Id)))
                .add(Expr::col((other, Jobs::BaselineDatasetId)).equals((Datasets::Table, Datasets::Id))),
        )
        .to_owned();
    let conversations = Query::select()
        .expr(Expr::val(1))
        .from_as(Conversations::Table, talk.clone())
        .and_where(Expr::col((talk, Conversations::DatasetId)).equals((Datasets::Table, Datasets::Id)))
        .to_owned();
    // The attempt that completed the job (it published the job's output): its versions are
    // the job's result, whatever attempts came after.
    let completing = Query::select()
        .expr(Expr::val(1))
        .from_as(JobOutputs::Table, mine.clone())
        .and_where(
            Expr::col((mine.clone(), JobOutputs::JobId)).equals((JobOutputs::Table, JobOutputs::JobId)),
        )
        .and_where(
            Expr::col((mine.clone(), JobOutputs::Attempt)).equals((JobOutputs::Table, JobOutputs::Attempt)),
        )
        .and_where(Expr::col((mine, JobOutputs::DatasetId)).equals((Jobs::Table, Jobs::OutputDatasetId)))
        .to_owned();
    Query::select()
        .column((Datasets::Table, Datasets::OwnerId))
        .column((Datasets::Table, Datasets::Id))
        .from(JobOutputs::Table)
        .inner_join(
            Jobs::Table,
            Expr::col((Jobs::Table, Jobs::Id)).equals((JobOutputs::Table, JobOutputs::JobId)),
        )
        .inner_join(
            Datasets::Table,
            Expr::col((Datasets::Table, Datasets::Id)).equals((JobOutputs::Table, JobOutputs::DatasetId)),
        )
        .cond_where(
            Cond::any()
                .add(
                    Expr::col((Jobs::Table, Jobs::Status))
                        .is_in([JobStatus::Failed.as_str(), JobStatus::Cancelled.as_str()]),
                )
                .add(
                    Cond::all()
                        .add(
                            Expr::col((JobOutputs::Table, JobOutputs::Attempt))
                                .lt(Expr::col((Jobs::Table, Jobs::Attempts))),
                        )
                        .add(Expr::exists(completing).not()),
                ),
        )
        .and_where(Expr::exists(children).not())
        .and_where(Expr::exists(jobs).not())
        .and_where(Expr::exists(conversations).not())
        .to_owned()
}

#[derive(Iden, Clone, Copy)]
pub enum Conversations {
    Table,
    Id,
    OwnerId,
    DatasetId,
    JobId,
    Title,
    CreatedAt,
    UpdatedAt,
}

/// The columns a `Conversation` is decoded from, in this order.
pub const CONVERSATION_COLUMNS: [Conversations; 7] = [
    Conversations::Id,
    Conversations::OwnerId,
    Conversations::DatasetId,
    Conversations::JobId,
    Conversations::Title,
    Conversations::CreatedAt,
    Conversations::UpdatedAt,
];

#[derive(Iden, Clone, Copy)]
pub enum ConversationMessages {
    Table,
    ConversationId,
    Seq,
    Role,
    Content,
    Sources,
    Model,
    CreatedAt,
}

/// The columns a `ConversationMessage` is decoded from, in this order.
pub const MESSAGE_COLUMNS: [ConversationMessages; 7] = [
    ConversationMessages::ConversationId,
    ConversationMessages::Seq,
    ConversationMessages::Role,
    ConversationMessages::Content,
    ConversationMessages::Sources,
    ConversationMessages::Model,
    ConversationMessages::CreatedAt,
];

#[derive(Iden, Clone, Copy)]
pub enum LlmUsage {
    Table,
    Id,
    OwnerId,
    JobId,
    ConversationId,
    Purpose,
    Model,
    PromptTokens,
    CompletionTokens,
    CreatedAt,
}

pub fn insert_conversation(conversation: &Conversation) -> InsertStatement {
    Query::insert()
        .into_table(Conversations::Table)
        .columns(CONVERSATION_COLUMNS)
        .values_panic([
            uuid(conversation.id.0).into(),
            uuid(conversation.owner.0).into(),
            conversation.dataset.map(|d| uuid(d.0)).into(),
            conversation.job.map(|j| uuid(j.0)).into(),
            conversation.title.clone().into(),
            conversation.created_at.into(),
            conversation.updated_at.into(),
        ])
        .to_owned()
}

/// A conversation, only if `owner` owns it; `for_update` locks the row for the rest of the
/// transaction (MySQL), so appends to one conversation number their messages one at a time.
pub fn conversation_for_owner(id: ConversationId, owner: UserId, for_update: bool) -> SelectStatement {
    let mut query = Query::select()
        .columns(CONVERSATION_COLUMNS)
        .from(Conversations::Table)
        .and_where(Expr::col(Conversations::Id).eq(uuid(id.0)))
        .and_where(Expr::col(Conversations::OwnerId).eq(uuid(owner.0)))
        .to_owned();
    if for_update {
        query.lock(LockType::Update);
    }
    query
}

/// The owner's conversations, newest first; one more row than asked for.
pub fn list_conversations(owner: UserId, page: &PageRequest) -> SelectStatement {
    let mut query = Query::select()
        .columns(CONVERSATION_COLUMNS)
        .from(Conversations::Table)
        .and_where(Expr::col(Conversations::OwnerId).eq(uuid(owner.0)))
        .order_by(Conversations::Id, Order::Desc)
        .limit(page.first as u64 + 1)
        .to_owned();
    if let Some(after) = page.after {
        query.and_where(Expr::col(Conversations::Id).lt(uuid(after)));
    }
    query
}

pub fn count_conversations(owner: UserId) -> SelectStatement {
    Query::select()
        .expr(Func::count(Expr::col(Asterisk)))
        .from(Conversations::Table)
        .and_where(Expr::col(Conversations::OwnerId).eq(uuid(owner.0)))
        .to_owned()
}

/// The conversation's last message number (0 when it has none).
pub fn last_message_seq(id: ConversationId) -> SelectStatement {
    Query::select()
        .expr(Func::coalesce([Expr::from(Func::max(Expr::col(ConversationMessages::Seq))), Expr::val(0)]))
        .from(ConversationMessages::Table)
        .and_where(Expr::col(ConversationMessages::ConversationId).eq(uuid(id.0)))
        .to_owned()
}

/// The messages, numbered from `first_seq` on, in one statement. `messages` is not empty.
pub fn insert_messages(
    id: ConversationId,
    first_seq: u32,
    messages: &[NewMessage],
    now: DateTime<Utc>,
) -> InsertStatement {
    let mut query =
        Query::insert().into_table(ConversationMessages::Table).columns(MESSAGE_COLUMNS).to_owned();
    for (message, seq) in messages.iter().zip(first_seq..) {
        query.values_panic([
            uuid(id.0).into(),
            i64::from(seq).into(),
            message.role.as_str().into(),
            message.content.clone().into(),
            json_text(&message.sources).into(),
            message.model.clone().into(),
            now.into(),
        ]);
    }
    query
}

pub fn touch_conversation(id: ConversationId, now: DateTime<Utc>) -> UpdateStatement {
    Query::update()
        .table(Conversations::Table)
        .value(Conversations::UpdatedAt, now)
        .and_where(Expr::col(Conversations::Id).eq(uuid(id.0)))
        .to_owned()
}

/// The last `limit` messages of the owner's conversation, newest first (the caller
/// reverses them); none when another user owns it.
pub fn last_messages(id: ConversationId, owner: UserId, limit: usize) -> SelectStatement {
    Query::select()
        .columns(MESSAGE_COLUMNS.map(|c| (ConversationMessages::Table, c)))
        .from(ConversationMessages::Table)
        .inner_join(
            Conversations::Table,
            Expr::col((Conversations::Table, Conversations::Id))
                .equals((ConversationMessages::Table, ConversationMessages::ConversationId)),
        )
        .and_where(
            Expr::col((ConversationMessages::Table, ConversationMessages::ConversationId)).eq(uuid(id.0)),
        )
        .and_where(Expr::col((Conversations::Table, Conversations::OwnerId)).eq(uuid(owner.0)))
        .order_by((ConversationMessages::Table, ConversationMessages::Seq), Order::Desc)
        .limit(u64::try_from(limit).unwrap_or(u64::MAX))
        .to_owned()
}

/// One call to a language model, under a server-made id.
pub fn insert_llm_usage(id: Uuid, usage: &crate::domain::LlmUsage) -> InsertStatement {
    Query::insert()
        .into_table(LlmUsage::Table)
        .columns([
            LlmUsage::Id,
            LlmUsage::OwnerId,
            LlmUsage::JobId,
            LlmUsage::ConversationId,
            LlmUsage::Purpose,
            LlmUsage::Model,
            LlmUsage::PromptTokens,
            LlmUsage::CompletionTokens,
            LlmUsage::CreatedAt,
        ])
        .values_panic([
            uuid(id).into(),
            uuid(usage.owner.0).into(),
            usage.job.map(|j| uuid(j.0)).into(),
            usage.conversation.map(|c| uuid(c.0)).into(),
            usage.purpose.clone().into(),
            usage.model.clone().into(),
            count_as_i64(usage.prompt_tokens).into(),
            count_as_i64(usage.completion_tokens).into(),
            usage.created_at.into(),
        ])
        .to_owned()
}

/// Calls, prompt tokens and completion tokens of the owner's usage (only the job's when
/// given); the sums are 0 when there is none.
pub fn llm_usage_totals(owner: UserId, job: Option<JobId>) -> SelectStatement {
    let sum = |col: LlmUsage| Func::coalesce([Expr::from(Func::sum(Expr::col(col))), Expr::val(0)]);
    let mut query = Query::select()
        .expr(Func::count(Expr::col(Asterisk)))
        .expr(sum(LlmUsage::PromptTokens))
        .expr(sum(LlmUsage::CompletionTokens))
        .from(LlmUsage::Table)
        .and_where(Expr::col(LlmUsage::OwnerId).eq(uuid(owner.0)))
        .to_owned();
    if let Some(job) = job {
        query.and_where(Expr::col(LlmUsage::JobId).eq(uuid(job.0)));
    }
    query
}

#[cfg(test)]
mod tests {
    use sea_query::{MysqlQueryBuilder, SqliteQueryBuilder};

    use super::*;

    #[test]
    fn appends_lock_the_conversation_on_mysql_only() {
        let id = ConversationId::generate();
        let owner = UserId::generate();
        let (locked, _) = conversation_for_owner(id, owner, true).build(MysqlQueryBuilder);
        assert!(locked.ends_with("FOR UPDATE"), "{locked}");
        let (plain, values) = conversation_for_owner(id, owner, false).build(SqliteQueryBuilder);
        assert!(!plain.contains("FOR UPDATE") && plain.contains("\"owner_id\" = ?"), "{plain}");
        assert_eq!(values.0.len(), 2);
    }

    #[test]
    fn messages_are_read_through_the_owners_conversation() {
        let (sql, values) =
            last_messages(ConversationId::generate(), UserId::generate(), 3).build(SqliteQueryBuilder);
        assert!(sql.contains("INNER JOIN \"conversations\""), "{sql}");
        assert!(sql.contains("\"conversations\".\"owner_id\" = ?"), "{sql}");
        assert!(sql.contains("ORDER BY \"conversation_messages\".\"seq\" DESC LIMIT ?"), "{sql}");
        assert_eq!(values.0.len(), 3);
    }

    #[test]
    fn messages_are_numbered_from_the_first_free_seq() {
        let message = |content: &str| NewMessage {
            role: crate::domain::MessageRole::User,
            content: content.into(),
            sources: vec!["a \"source\"".into()],
            model: None,
        };
        let (sql, values) = insert_messages(
            ConversationId::generate(),
            7,
            &[message("a"), message("b")],
            super::super::now(),
        )
        .build(SqliteQueryBuilder);
        assert_eq!(sql.matches('(').count(), 3, "one statement, two rows: {sql}");
        let seqs: Vec<_> = values.0.iter().skip(1).step_by(7).cloned().collect();
        assert_eq!(seqs, vec![sea_query::Value::BigInt(Some(7)), sea_query::Value::BigInt(Some(8))]);
        assert_eq!(values.0[4], sea_query::Value::String(Some(r#"["a \"source\""]"#.into())));
    }
}
