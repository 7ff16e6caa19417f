//! The MySQL 8 / MariaDB store, over a mysql_async connection pool.

use std::collections::HashMap;

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};
use mysql_async::prelude::{FromValue, Queryable};
use mysql_async::{Conn, Opts, Params, Pool, Row, TxOpts, Value as MyValue};
use sea_query::{MysqlQueryBuilder, Value, Values};
use uuid::Uuid;

use super::migrate::{Migration, MigrationReport, pending, statements};
use super::{
    Backend, JobFilter, JobOutcome, MetadataStore, NewRefreshToken, Page, PageRequest, RawConversation,
    RawDataset, RawJob, RawMessage, RefreshTokenRecord, Replacement, RotateDecision, RotateOutcome,
    StoreError, StoreResult, decide_rotation, sql, usage_totals,
};
use crate::domain::{
    Conversation, ConversationId, ConversationMessage, Dataset, DatasetId, DatasetKind, Email, Job, JobId,
    LlmUsage, NewMessage, NewUser, Role, UsageTotals, User, UserCredentials, UserId,
};

/// How long getting a connection may take (connecting, or waiting for a free one).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A pool of connections to one MySQL database.
#[derive(Clone)]
pub struct MysqlStore {
    pool: Pool,
}

impl MysqlStore {
    /// Connects and checks the server answers.
    pub async fn connect(url: &str) -> anyhow::Result<MysqlStore> {
        let opts = Opts::from_url(url).context("parsing DATABASE_URL")?;
        let pool = Pool::new(opts);
        let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, pool.get_conn())
            .await
            .map_err(|_| anyhow!("MySQL did not answer within {CONNECT_TIMEOUT:?}"))
            .context("connecting to MySQL")?
            .context("connecting to MySQL")?;
        conn.query_drop("SELECT 1").await.context("checking the MySQL connection")?;
        drop(conn);
        Ok(MysqlStore { pool })
    }

    /// Closes every pooled connection.
    pub async fn close(self) -> anyhow::Result<()> {
        self.pool.disconnect().await?;
        Ok(())
    }

    /// A connection from the pool, or an error once [`CONNECT_TIMEOUT`] has passed (a server
    /// that accepts connections and never answers, or whose packets a firewall drops, would
    /// otherwise hold the request, or `migrate`, for good).
    async fn conn(&self) -> StoreResult<Conn> {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.pool.get_conn()).await {
            Ok(conn) => conn.map_err(internal),
            Err(_) => Err(StoreError::Internal(anyhow!("MySQL did not answer within {CONNECT_TIMEOUT:?}"))),
        }
    }
}

/// Converts sea-query values into MySQL parameters: the one place values are bound.
fn bind(values: Values) -> Params {
    let values: Vec<MyValue> = values.into_iter().map(to_mysql).collect();
    if values.is_empty() { Params::Empty } else { Params::Positional(values) }
}

fn to_mysql(value: Value) -> MyValue {
    match value {
        Value::Bool(v) => v.map_or(MyValue::NULL, |b| MyValue::Int(b.into())),
        Value::TinyInt(v) => v.map_or(MyValue::NULL, |n| MyValue::Int(n.into())),
        Value::SmallInt(v) => v.map_or(MyValue::NULL, |n| MyValue::Int(n.into())),
        Value::Int(v) => v.map_or(MyValue::NULL, |n| MyValue::Int(n.into())),
        Value::BigInt(v) => v.map_or(MyValue::NULL, MyValue::Int),
        Value::TinyUnsigned(v) => v.map_or(MyValue::NULL, |n| MyValue::UInt(n.into())),
        Value::SmallUnsigned(v) => v.map_or(MyValue::NULL, |n| MyValue::UInt(n.into())),
        Value::Unsigned(v) => v.map_or(MyValue::NULL, |n| MyValue::UInt(n.into())),
        Value::BigUnsigned(v) => v.map_or(MyValue::NULL, MyValue::UInt),
        Value::Float(v) => v.map_or(MyValue::NULL, MyValue::Float),
        Value::Double(v) => v.map_or(MyValue::NULL, MyValue::Double),
        Value::String(v) => v.map_or(MyValue::NULL, |s| MyValue::Bytes(s.into_bytes())),
        Value::Char(v) => v.map_or(MyValue::NULL, |c| MyValue::Bytes(c.to_string().into_bytes())),
        Value::Bytes(v) => v.map_or(MyValue::NULL, MyValue::Bytes),
        Value::Json(v) => v.map_or(MyValue::NULL, |j| MyValue::Bytes(j.to_string().into_bytes())),
        Value::ChronoDateTimeUtc(v) => v.map_or(MyValue::NULL, |t| datetime(t.naive_utc())),
        // The store never binds other kinds; refuse loudly in tests rather than guess.
        other => unreachable!("value kind not used by the metadata store: {other:?}"),
    }
}

fn datetime(t: NaiveDateTime) -> MyValue {
    MyValue::Date(
        u16::try_from(t.year()).unwrap_or(0),
        t.month() as u8,
        t.day() as u8,
        t.hour() as u8,
        t.minute() as u8,
        t.second() as u8,
        t.nanosecond() / 1000,
    )
}

fn decode_dataset(row: &Row) -> anyhow::Result<Dataset> {
    RawDataset {
        id: column(row, 0)?,
        owner_id: column(row, 1)?,
        root_id: column(row, 2)?,
        parent_id: column(row, 3)?,
        name: column(row, 4)?,
        format: column(row, 5)?,
        original_filename: column(row, 6)?,
        size_bytes: column(row, 7)?,
        sha256: column(row, 8)?,
        row_count: column(row, 9)?,
        columns: column(row, 10)?,
        rejected_row_count: column(row, 11)?,
        notices: column(row, 12)?,
        created_at: utc(column(row, 13)?),
        kind: column(row, 14)?,
    }
    .parse()
}

fn decode_job(row: &Row) -> anyhow::Result<Job> {
    RawJob {
        id: column(row, 0)?,
        owner_id: column(row, 1)?,
        tool_id: column(row, 2)?,
        agents: column(row, 3)?,
        parameters: column(row, 4)?,
        dataset_id: column(row, 5)?,
        baseline_dataset_id: column(row, 6)?,
        status: column(row, 7)?,
        progress: column(row, 8)?,
        stage: column(row, 9)?,
        error_code: column(row, 10)?,
        error_message: column(row, 11)?,
        attempts: column(row, 12)?,
        cancel_requested: column::<i64>(row, 13)? != 0,
        output_dataset_id: column(row, 14)?,
        created_at: utc(column(row, 15)?),
        started_at: column::<Option<NaiveDateTime>>(row, 16)?.map(utc),
        finished_at: column::<Option<NaiveDateTime>>(row, 17)?.map(utc),
        updated_at: utc(column(row, 18)?),
    }
    .parse()
}

fn decode_conversation(row: &Row) -> anyhow::Result<Conversation> {
    RawConversation {
        id: column(row, 0)?,
        owner_id: column(row, 1)?,
        dataset_id: column(row, 2)?,
        job_id: column(row, 3)?,
        title: column(row, 4)?,
        created_at: utc(column(row, 5)?),
        updated_at: utc(column(row, 6)?),
    }
    .parse()
}

fn decode_message(row: &Row) -> anyhow::Result<ConversationMessage> {
    RawMessage {
        conversation_id: column(row, 0)?,
        seq: column(row, 1)?,
        role: column(row, 2)?,
        content: column(row, 3)?,
        sources: column(row, 4)?,
        model: column(row, 5)?,
        created_at: utc(column(row, 6)?),
    }
    .parse()
}

async fn count<Q: Queryable>(conn: &mut Q, select: (String, Values)) -> StoreResult<u64> {
    let totals = query_rows(conn, select, |r| column::<i64>(r, 0)).await?;
    Ok(totals.first().copied().unwrap_or(0).max(0) as u64)
}

async fn affected(conn: &mut Conn, (sql, values): (String, Values)) -> StoreResult<u64> {
    conn.exec_drop(sql, bind(values)).await.map_err(internal)?;
    Ok(conn.affected_rows())
}

fn internal(err: impl Into<anyhow::Error>) -> StoreError {
    StoreError::Internal(err.into())
}

fn is_duplicate(err: &mysql_async::Error) -> bool {
    matches!(err, mysql_async::Error::Server(e) if e.code == 1062)
}

fn column<T: FromValue>(row: &Row, index: usize) -> anyhow::Result<T> {
    row.get_opt::<T, _>(index)
        .ok_or_else(|| anyhow!("missing column {index}"))?
        .map_err(|e| anyhow!("column {index}: {e}"))
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

fn parse_uuid(text: &str) -> anyhow::Result<Uuid> {
    Uuid::parse_str(text).with_context(|| format!("bad id {text:?} in store"))
}

fn decode_user(row: &Row) -> anyhow::Result<User> {
    Ok(User {
        id: UserId(parse_uuid(&column::<String>(row, 0)?)?),
        email: Email::from_trusted(column(row, 1)?),
        role: column::<String>(row, 2)?.parse::<Role>().map_err(|e| anyhow!(e))?,
        created_at: utc(column(row, 3)?),
    })
}

fn decode_token(row: &Row) -> anyhow::Result<RefreshTokenRecord> {
    Ok(RefreshTokenRecord {
        id: parse_uuid(&column::<String>(row, 0)?)?,
        family_id: parse_uuid(&column::<String>(row, 1)?)?,
        user_id: UserId(parse_uuid(&column::<String>(row, 2)?)?),
        expires_at: utc(column(row, 3)?),
        used_at: column::<Option<NaiveDateTime>>(row, 4)?.map(utc),
        revoked_at: column::<Option<NaiveDateTime>>(row, 5)?.map(utc),
    })
}

/// When the owners of `active`'s queued jobs last had a job started.
async fn last_started<Q: Queryable>(
    conn: &mut Q,
    active: &[Job],
) -> StoreResult<HashMap<UserId, DateTime<Utc>>> {
    let owners = super::queued_owners(active);
    if owners.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = query_rows(conn, sql::owners_last_started(&owners).build(MysqlQueryBuilder), |row| {
        Ok((UserId(parse_uuid(&column::<String>(row, 0)?)?), utc(column::<NaiveDateTime>(row, 1)?)))
    })
    .await?;
    Ok(rows.into_iter().collect())
}

/// Runs a statement that returns rows and decodes each.
async fn query_rows<T, Q: Queryable>(
    conn: &mut Q,
    (sql, values): (String, Values),
    decode: impl Fn(&Row) -> anyhow::Result<T>,
) -> StoreResult<Vec<T>> {
    let rows: Vec<Row> = conn.exec(sql, bind(values)).await.map_err(internal)?;
    rows.iter().map(|r| decode(r).map_err(StoreError::Internal)).collect()
}

async fn execute<Q: Queryable>(conn: &mut Q, (sql, values): (String, Values)) -> StoreResult<()> {
    conn.exec_drop(sql, bind(values)).await.map_err(internal)
}

async fn migrate_locked(conn: &mut Conn) -> anyhow::Result<MigrationReport> {
    conn.query_drop(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INT UNSIGNED NOT NULL PRIMARY KEY,
            name VARCHAR(255) NOT NULL,
            checksum CHAR(64) NOT NULL,
            applied_at DATETIME(6) NOT NULL
        ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4",
    )
    .await?;
    let applied: Vec<(u32, String)> =
        conn.query("SELECT version, checksum FROM schema_migrations ORDER BY version").await?;
    let (pending, already_applied) = pending(&applied, |m| m.mysql)?;
    let mut report = MigrationReport { applied: Vec::new(), already_applied };
    for migration in pending {
        let checksum = Migration::checksum(migration.mysql);
        // MySQL commits DDL implicitly, so scripts use IF NOT EXISTS: a run interrupted
        // half-way is finished by the next one.
        for statement in statements(migration.mysql) {
            conn.query_drop(statement)
                .await
                .with_context(|| format!("migration {} ({})", migration.version, migration.name))?;
        }
        conn.exec_drop(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
            (migration.version, migration.name, checksum, datetime(super::now().naive_utc())),
        )
        .await?;
        report.applied.push(migration.version);
    }
    Ok(report)
}

#[async_trait]
impl MetadataStore for MysqlStore {
    fn backend(&self) -> Backend {
        Backend::Mysql
    }

    async fn ping(&self) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        conn.ping().await.map_err(internal)
    }

    async fn migrate(&self) -> StoreResult<MigrationReport> {
        let mut conn = self.conn().await?;
        // A named lock (per database) serialises instances migrating at once; it is released when this
        // connection ends even if the process dies.
        let locked: Option<Option<i64>> = conn
            .query_first("SELECT GET_LOCK(CONCAT('agensium_migrations:', DATABASE()), 120)")
            .await
            .map_err(internal)?;
        if locked.flatten() != Some(1) {
            return Err(internal(anyhow!("timed out waiting for another instance's migrations")));
        }
        let result = migrate_locked(&mut conn).await;
        let released =
            conn.query_drop("SELECT RELEASE_LOCK(CONCAT('agensium_migrations:', DATABASE()))").await;
        let report = result.map_err(StoreError::Internal)?;
        released.map_err(internal)?;
        Ok(report)
    }

    async fn create_user(&self, user: &NewUser) -> StoreResult<User> {
        let (sql, values) = sql::insert_user(user).build(MysqlQueryBuilder);
        let mut conn = self.conn().await?;
        match conn.exec_drop(sql, bind(values)).await {
            Ok(()) => Ok(User {
                id: user.id,
                email: user.email.clone(),
                role: user.role,
                created_at: user.created_at,
            }),
            Err(e) if is_duplicate(&e) => {
                Err(StoreError::Conflict("an account with this email already exists"))
            }
            Err(e) => Err(internal(e)),
        }
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        let mut conn = self.conn().await?;
        let rows = query_rows(&mut conn, sql::user_by_id(id).build(MysqlQueryBuilder), decode_user).await?;
        Ok(rows.into_iter().next())
    }

    async fn users_by_ids(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        query_rows(&mut conn, sql::users_by_ids(ids).build(MysqlQueryBuilder), decode_user).await
    }

    async fn credentials_by_email(&self, email: &Email) -> StoreResult<Option<UserCredentials>> {
        let mut conn = self.conn().await?;
        let rows = query_rows(&mut conn, sql::credentials_by_email(email).build(MysqlQueryBuilder), |row| {
            Ok(UserCredentials { user: decode_user(row)?, password_hash: column(row, 4)? })
        })
        .await?;
        Ok(rows.into_iter().next())
    }

    async fn list_users(&self, page: &PageRequest) -> StoreResult<Page<User>> {
        let mut conn = self.conn().await?;
        let mut items =
            query_rows(&mut conn, sql::list_users(page).build(MysqlQueryBuilder), decode_user).await?;
        let totals =
            query_rows(&mut conn, sql::count_users().build(MysqlQueryBuilder), |r| column::<i64>(r, 0))
                .await?;
        let has_next_page = items.len() > page.first;
        items.truncate(page.first);
        let total_count = totals.first().copied().unwrap_or(0).max(0) as u64;
        Ok(Page { items, has_next_page, total_count })
    }

    async fn insert_refresh_token(&self, token: &NewRefreshToken) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        execute(&mut conn, sql::insert_refresh_token(token).build(MysqlQueryBuilder)).await
    }

    async fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        replacement: &Replacement,
        now: DateTime<Utc>,
    ) -> StoreResult<RotateOutcome> {
        retry_on_deadlock(|| self.rotate_once(presented_hash, replacement, now)).await
    }

    async fn revoke_refresh_family(&self, presented_hash: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        retry_on_deadlock(|| self.revoke_once(presented_hash, now)).await
    }

    async fn refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshTokenRecord>> {
        let mut conn = self.conn().await?;
        let select = sql::refresh_token_by_hash(token_hash, false).build(MysqlQueryBuilder);
        Ok(query_rows(&mut conn, select, decode_token).await?.into_iter().next())
    }

    async fn insert_dataset(&self, dataset: &Dataset) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        execute(&mut conn, sql::insert_dataset(dataset).build(MysqlQueryBuilder)).await
    }

    async fn insert_job_output(&self, dataset: &Dataset, job: JobId, attempt: u32) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        let mut tx = conn.start_transaction(TxOpts::default()).await.map_err(internal)?;
        // (The job's row locked: a claim of it waits for this version to be recorded.)
        let current = query_rows(&mut tx, sql::job_by_id(job, true).build(MysqlQueryBuilder), decode_job)
            .await?
            .into_iter()
            .next();
        if !current.is_some_and(|j| j.status == crate::domain::JobStatus::Running && j.attempts == attempt) {
            tx.rollback().await.map_err(internal)?;
            return Err(StoreError::Conflict(super::NOT_THE_RUNNING_ATTEMPT));
        }
        execute(&mut tx, sql::insert_dataset(dataset).build(MysqlQueryBuilder)).await?;
        execute(&mut tx, sql::insert_job_output(job, attempt, dataset.id).build(MysqlQueryBuilder)).await?;
        tx.commit().await.map_err(internal)
    }

    async fn orphaned_outputs(&self) -> StoreResult<Vec<(UserId, DatasetId)>> {
        let mut conn = self.conn().await?;
        query_rows(&mut conn, sql::orphaned_outputs().build(MysqlQueryBuilder), |row| {
            Ok((
                UserId(parse_uuid(&column::<String>(row, 0)?)?),
                DatasetId(parse_uuid(&column::<String>(row, 1)?)?),
            ))
        })
        .await
    }

    async fn dataset(&self, id: DatasetId, owner: UserId) -> StoreResult<Option<Dataset>> {
        let mut conn = self.conn().await?;
        let select = sql::dataset_for_owner(id, owner).build(MysqlQueryBuilder);
        Ok(query_rows(&mut conn, select, decode_dataset).await?.into_iter().next())
    }

    async fn datasets_by_ids(&self, owner: UserId, ids: &[DatasetId]) -> StoreResult<Vec<Dataset>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        query_rows(&mut conn, sql::datasets_by_ids(owner, ids).build(MysqlQueryBuilder), decode_dataset).await
    }

    async fn list_datasets(
        &self,
        owner: UserId,
        kinds: &[DatasetKind],
        page: &PageRequest,
    ) -> StoreResult<Page<Dataset>> {
        let mut conn = self.conn().await?;
        let list = sql::list_datasets(owner, kinds, page).build(MysqlQueryBuilder);
        let mut items = query_rows(&mut conn, list, decode_dataset).await?;
        let totals = query_rows(&mut conn, sql::count_datasets(owner, kinds).build(MysqlQueryBuilder), |r| {
            column::<i64>(r, 0)
        })
        .await?;
        let has_next_page = items.len() > page.first;
        items.truncate(page.first);
        Ok(Page { items, has_next_page, total_count: totals.first().copied().unwrap_or(0).max(0) as u64 })
    }

    async fn dataset_versions(&self, root: DatasetId, owner: UserId) -> StoreResult<Vec<Dataset>> {
        let mut conn = self.conn().await?;
        query_rows(&mut conn, sql::dataset_versions(root, owner).build(MysqlQueryBuilder), decode_dataset)
            .await
    }

    async fn delete_dataset(&self, id: DatasetId, owner: UserId, doomed: &[DatasetId]) -> StoreResult<bool> {
        let mut conn = self.conn().await?;
        let mut tx = conn.start_transaction(TxOpts::default()).await.map_err(internal)?;
        if !doomed.is_empty() {
            execute(&mut tx, sql::detach_baselines(owner, doomed).build(MysqlQueryBuilder)).await?;
        }
        let (sql, values) = sql::delete_dataset(id, owner).build(MysqlQueryBuilder);
        tx.exec_drop(sql, bind(values)).await.map_err(internal)?;
        // Nothing deleted (not the owner's, or gone already): nothing detached either.
        if tx.affected_rows() == 0 {
            tx.rollback().await.map_err(internal)?;
            return Ok(false);
        }
        tx.commit().await.map_err(internal)?;
        Ok(true)
    }

    async fn datasets_in_use(&self, ids: &[DatasetId]) -> StoreResult<bool> {
        if ids.is_empty() {
            return Ok(false);
        }
        let mut conn = self.conn().await?;
        Ok(count(&mut conn, sql::active_jobs_on_dataset(ids).build(MysqlQueryBuilder)).await? > 0)
    }

    async fn insert_job(&self, job: &Job) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        execute(&mut conn, sql::insert_job(job).build(MysqlQueryBuilder)).await
    }

    async fn job(&self, id: JobId, owner: UserId) -> StoreResult<Option<Job>> {
        let mut conn = self.conn().await?;
        let select = sql::job_for_owner(id, owner).build(MysqlQueryBuilder);
        Ok(query_rows(&mut conn, select, decode_job).await?.into_iter().next())
    }

    async fn job_by_id(&self, id: JobId) -> StoreResult<Option<Job>> {
        let mut conn = self.conn().await?;
        let select = sql::job_by_id(id, false).build(MysqlQueryBuilder);
        Ok(query_rows(&mut conn, select, decode_job).await?.into_iter().next())
    }

    async fn list_jobs(
        &self,
        owner: UserId,
        filter: &JobFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Job>> {
        let mut conn = self.conn().await?;
        let mut items =
            query_rows(&mut conn, sql::list_jobs(owner, filter, page).build(MysqlQueryBuilder), decode_job)
                .await?;
        let total_count = count(&mut conn, sql::count_jobs(owner, filter).build(MysqlQueryBuilder)).await?;
        let has_next_page = items.len() > page.first;
        items.truncate(page.first);
        Ok(Page { items, has_next_page, total_count })
    }

    async fn job_report(&self, id: JobId, owner: UserId) -> StoreResult<Option<String>> {
        let mut conn = self.conn().await?;
        let select = sql::job_report(id, owner).build(MysqlQueryBuilder);
        Ok(query_rows(&mut conn, select, |r| column::<Option<String>>(r, 0))
            .await?
            .into_iter()
            .next()
            .flatten())
    }

    async fn queue(&self) -> StoreResult<Vec<JobId>> {
        let mut conn = self.conn().await?;
        let active = query_rows(&mut conn, sql::active_jobs().build(MysqlQueryBuilder), decode_job).await?;
        let served = last_started(&mut conn, &active).await?;
        Ok(super::queue_order(&active, &served))
    }

    async fn claim_job(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        max_attempts: u32,
    ) -> StoreResult<Option<Job>> {
        // A claim tried again after a lock wait starts its lease then, not when first asked.
        let asked = std::time::Instant::now();
        retry_on_deadlock(|| {
            let waited = chrono::Duration::from_std(asked.elapsed()).unwrap_or_default();
            self.claim_once(worker, now + waited, lease_until + waited, max_attempts)
        })
        .await
    }

    async fn renew_lease(
        &self,
        id: JobId,
        worker: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<bool>> {
        retry_on_deadlock(|| async move {
            let mut conn = self.conn().await?;
            // MySQL reports changed rows, not matched ones: whether the job is still held is
            // read back rather than inferred from the update.
            execute(&mut conn, sql::renew_lease(id, worker, lease_until).build(MysqlQueryBuilder)).await?;
            let select = sql::held_job_cancel_requested(id, worker).build(MysqlQueryBuilder);
            Ok(query_rows(&mut conn, select, |r| column::<i64>(r, 0))
                .await?
                .into_iter()
                .next()
                .map(|c| c != 0))
        })
        .await
    }

    async fn record_progress(
        &self,
        id: JobId,
        worker: &str,
        progress: f64,
        stage: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        retry_on_deadlock(|| async move {
            let mut conn = self.conn().await?;
            let statement = sql::record_progress(id, worker, progress, stage, now).build(MysqlQueryBuilder);
            Ok(affected(&mut conn, statement).await? > 0)
        })
        .await
    }

    async fn finish_job(
        &self,
        id: JobId,
        worker: &str,
        outcome: &JobOutcome,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        retry_on_deadlock(|| async move {
            let mut conn = self.conn().await?;
            Ok(affected(&mut conn, sql::finish_job(id, worker, outcome, now).build(MysqlQueryBuilder))
                .await?
                > 0)
        })
        .await
    }

    async fn release_job(&self, id: JobId, worker: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        retry_on_deadlock(|| async move {
            let mut conn = self.conn().await?;
            Ok(affected(&mut conn, sql::release_job(id, worker, now).build(MysqlQueryBuilder)).await? > 0)
        })
        .await
    }

    async fn cancel_job(&self, id: JobId, owner: UserId, now: DateTime<Utc>) -> StoreResult<Option<Job>> {
        retry_on_deadlock(|| self.cancel_once(id, owner, now)).await
    }

    async fn cancel_orphaned_job(&self, id: JobId, owner: UserId, now: DateTime<Utc>) -> StoreResult<bool> {
        let mut conn = self.conn().await?;
        Ok(affected(&mut conn, sql::cancel_orphaned_jobs(Some((id, owner)), now).build(MysqlQueryBuilder))
            .await?
            > 0)
    }

    async fn fail_lost_jobs(&self, now: DateTime<Utc>, max_attempts: u32) -> StoreResult<u64> {
        retry_on_deadlock(|| async move {
            let mut conn = self.conn().await?;
            execute(&mut conn, sql::cancel_orphaned_jobs(None, now).build(MysqlQueryBuilder)).await?;
            affected(&mut conn, sql::fail_lost_jobs(now, max_attempts).build(MysqlQueryBuilder)).await
        })
        .await
    }

    async fn insert_conversation(&self, conversation: &Conversation) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        execute(&mut conn, sql::insert_conversation(conversation).build(MysqlQueryBuilder)).await
    }

    async fn conversation(&self, id: ConversationId, owner: UserId) -> StoreResult<Option<Conversation>> {
        let mut conn = self.conn().await?;
        let select = sql::conversation_for_owner(id, owner, false).build(MysqlQueryBuilder);
        Ok(query_rows(&mut conn, select, decode_conversation).await?.into_iter().next())
    }

    async fn list_conversations(&self, owner: UserId, page: &PageRequest) -> StoreResult<Page<Conversation>> {
        let mut conn = self.conn().await?;
        let list = sql::list_conversations(owner, page).build(MysqlQueryBuilder);
        let mut items = query_rows(&mut conn, list, decode_conversation).await?;
        let total_count = count(&mut conn, sql::count_conversations(owner).build(MysqlQueryBuilder)).await?;
        let has_next_page = items.len() > page.first;
        items.truncate(page.first);
        Ok(Page { items, has_next_page, total_count })
    }

    async fn append_messages(
        &self,
        id: ConversationId,
        owner: UserId,
        messages: &[NewMessage],
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        retry_on_deadlock(|| self.append_once(id, owner, messages, now)).await
    }

    async fn conversation_messages(
        &self,
        id: ConversationId,
        owner: UserId,
        limit: usize,
    ) -> StoreResult<Vec<ConversationMessage>> {
        let mut conn = self.conn().await?;
        let select = sql::last_messages(id, owner, limit).build(MysqlQueryBuilder);
        let mut messages = query_rows(&mut conn, select, decode_message).await?;
        messages.reverse();
        Ok(messages)
    }

    async fn record_llm_usage(&self, usage: &LlmUsage) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        execute(&mut conn, sql::insert_llm_usage(Uuid::now_v7(), usage).build(MysqlQueryBuilder)).await
    }

    async fn llm_usage_totals(&self, owner: UserId, job: Option<JobId>) -> StoreResult<UsageTotals> {
        let mut conn = self.conn().await?;
        // SUM is DECIMAL in MySQL; the driver reads its digits into an integer.
        let totals = query_rows(&mut conn, sql::llm_usage_totals(owner, job).build(MysqlQueryBuilder), |r| {
            Ok(usage_totals(column(r, 0)?, column(r, 1)?, column(r, 2)?))
        })
        .await?;
        Ok(totals.into_iter().next().unwrap_or_default())
    }
}

impl MysqlStore {
    /// One attempt of `cancel_job`, in one transaction (retried whole on a deadlock).
    async fn cancel_once(&self, id: JobId, owner: UserId, now: DateTime<Utc>) -> StoreResult<Option<Job>> {
        let mut conn = self.conn().await?;
        let mut tx = conn.start_transaction(TxOpts::default()).await.map_err(internal)?;
        let (cancel_sql, values) = sql::cancel_queued_job(id, owner, now).build(MysqlQueryBuilder);
        tx.exec_drop(cancel_sql, bind(values)).await.map_err(internal)?;
        if tx.affected_rows() == 0 {
            execute(&mut tx, sql::request_cancel(id, owner, now).build(MysqlQueryBuilder)).await?;
            execute(&mut tx, sql::cancel_orphaned_jobs(Some((id, owner)), now).build(MysqlQueryBuilder))
                .await?;
        }
        let job =
            query_rows(&mut tx, sql::job_for_owner(id, owner).build(MysqlQueryBuilder), decode_job).await?;
        tx.commit().await.map_err(internal)?;
        Ok(job.into_iter().next())
    }

    async fn claim_once(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        max_attempts: u32,
    ) -> StoreResult<Option<Job>> {
        let mut conn = self.conn().await?;
        let mut tx = conn.start_transaction(TxOpts::default()).await.map_err(internal)?;
        // SKIP LOCKED: workers claiming at the same moment each get a different job instead
        // of queueing behind one row lock. A job whose worker died comes first; then the
        // queued jobs in their fair order, each locked by its id alone (locking while sorting
        // them all would hold every queued row until this transaction ends).
        let expired = sql::expired_job(now, max_attempts, true).build(MysqlQueryBuilder);
        let mut next = query_rows(&mut tx, expired, decode_job).await?.into_iter().next();
        if next.is_none() {
            let active = query_rows(&mut tx, sql::active_jobs().build(MysqlQueryBuilder), decode_job).await?;
            let served = last_started(&mut tx, &active).await?;
            for id in super::queue_order(&active, &served).into_iter().take(super::CLAIM_CANDIDATES) {
                let select = sql::queued_job(id, true).build(MysqlQueryBuilder);
                next = query_rows(&mut tx, select, decode_job).await?.into_iter().next();
                if next.is_some() {
                    break;
                }
            }
        }
        let Some(job) = next else {
            tx.rollback().await.map_err(internal)?;
            return Ok(None);
        };
        execute(&mut tx, sql::claim_job(job.id, worker, now, lease_until).build(MysqlQueryBuilder)).await?;
        let claimed =
            query_rows(&mut tx, sql::job_by_id(job.id, false).build(MysqlQueryBuilder), decode_job).await?;
        tx.commit().await.map_err(internal)?;
        Ok(claimed.into_iter().next())
    }

    async fn rotate_once(
        &self,
        presented_hash: &str,
        replacement: &Replacement,
        now: DateTime<Utc>,
    ) -> StoreResult<RotateOutcome> {
        let mut conn = self.conn().await?;
        let mut tx = conn.start_transaction(TxOpts::default()).await.map_err(internal)?;
        // FOR UPDATE: a concurrent presentation of the same token waits here and then
        // sees it used, so exactly one caller rotates it.
        let select = sql::refresh_token_by_hash(presented_hash, true).build(MysqlQueryBuilder);
        let Some(record) = query_rows(&mut tx, select, decode_token).await?.into_iter().next() else {
            tx.rollback().await.map_err(internal)?;
            return Ok(RotateOutcome::Unknown);
        };
        let outcome = match decide_rotation(&record, now) {
            RotateDecision::Revoked => RotateOutcome::Revoked,
            RotateDecision::Expired => RotateOutcome::Expired,
            RotateDecision::RevokeFamily => {
                execute(&mut tx, sql::revoke_family(record.family_id, now).build(MysqlQueryBuilder)).await?;
                RotateOutcome::Reused { user_id: record.user_id }
            }
            RotateDecision::Rotate => {
                execute(&mut tx, sql::mark_refresh_token_used(record.id, now).build(MysqlQueryBuilder))
                    .await?;
                let insert = sql::insert_replacement(replacement, record.family_id, record.user_id, now);
                execute(&mut tx, insert.build(MysqlQueryBuilder)).await?;
                RotateOutcome::Rotated { user_id: record.user_id }
            }
        };
        tx.commit().await.map_err(internal)?;
        Ok(outcome)
    }

    async fn append_once(
        &self,
        id: ConversationId,
        owner: UserId,
        messages: &[NewMessage],
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut conn = self.conn().await?;
        let mut tx = conn.start_transaction(TxOpts::default()).await.map_err(internal)?;
        // FOR UPDATE on the conversation: a concurrent append to it waits here and then reads
        // the numbers this one wrote, so no two messages share a number.
        let select = sql::conversation_for_owner(id, owner, true).build(MysqlQueryBuilder);
        if query_rows(&mut tx, select, decode_conversation).await?.is_empty() {
            tx.rollback().await.map_err(internal)?;
            return Ok(false);
        }
        if !messages.is_empty() {
            let last = query_rows(&mut tx, sql::last_message_seq(id).build(MysqlQueryBuilder), |r| {
                column::<i64>(r, 0)
            })
            .await?
            .first()
            .copied()
            .unwrap_or(0);
            let first_seq = u32::try_from(last + 1).map_err(internal)?;
            let insert = sql::insert_messages(id, first_seq, messages, now).build(MysqlQueryBuilder);
            execute(&mut tx, insert).await?;
        }
        execute(&mut tx, sql::touch_conversation(id, now).build(MysqlQueryBuilder)).await?;
        tx.commit().await.map_err(internal)?;
        Ok(true)
    }

    async fn revoke_once(&self, presented_hash: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let mut conn = self.conn().await?;
        let mut tx = conn.start_transaction(TxOpts::default()).await.map_err(internal)?;
        let select = sql::refresh_token_by_hash(presented_hash, true).build(MysqlQueryBuilder);
        let Some(record) = query_rows(&mut tx, select, decode_token).await?.into_iter().next() else {
            tx.rollback().await.map_err(internal)?;
            return Ok(false);
        };
        execute(&mut tx, sql::revoke_family(record.family_id, now).build(MysqlQueryBuilder)).await?;
        // A family already revoked (signed out before) is no session any more.
        let revoked = tx.affected_rows() > 0;
        tx.commit().await.map_err(internal)?;
        Ok(revoked)
    }
}

/// InnoDB may pick a transaction as a deadlock victim when two requests lock the same rows
/// at once (two rotations of one token; a worker's claim and another's progress, which lock
/// the jobs' queue index in opposite orders); the victim, rolled back whole, is retried (it
/// then sees the other's result).
async fn retry_on_deadlock<T, F, Fut>(mut attempt: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    const ATTEMPTS: u32 = 5;
    for n in 1.. {
        match attempt().await {
            Err(e) if n < ATTEMPTS && is_deadlock(&e) => {
                tokio::time::sleep(std::time::Duration::from_millis(5 * u64::from(n))).await;
            }
            other => return other,
        }
    }
    unreachable!("the loop returns")
}

fn is_deadlock(err: &StoreError) -> bool {
    matches!(err, StoreError::Internal(e)
        if matches!(e.downcast_ref::<mysql_async::Error>(),
            Some(mysql_async::Error::Server(s)) if s.code == 1213 || s.code == 1205))
}
