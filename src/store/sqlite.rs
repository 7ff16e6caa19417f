//! The embedded SQLite store: the zero-setup default.
//!
//! SQLite allows one writer at a time. Instead of letting concurrent writers collide
//! ("database is locked"), every write goes through one connection behind a mutex, so
//! writes queue in the process; a busy timeout covers a second process (e.g. `agensium
//! migrate` while the server runs). Reads use a few more connections: in WAL mode they run
//! beside the writer. rusqlite is blocking, so every call runs in `spawn_blocking`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, Row, TransactionBehavior};
use sea_query::{SqliteQueryBuilder, Value, Values};
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

const READERS: usize = 4;

/// A SQLite file with one writer connection and a few readers.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

fn open_connection(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening SQLite database {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// Creates a new database file readable by its owner only (it holds password hashes): SQLite
/// gives its `-wal` and `-shm` files the database file's permissions. An existing file keeps
/// its permissions (a deployment may share it with a backup group on purpose), with a warning
/// when others than its owner may read it.
fn create_private(path: &Path) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if let Some(mode) = shared_mode(path) {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{mode:o}"),
                    "the metadata database, which holds password hashes, may be read by others than its owner; `chmod 600` it"
                );
            }
            Ok(())
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("creating {}", path.display()))),
    }
}

/// The file's permission bits when its group or others may read or write it.
pub(super) fn shared_mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o066 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

impl SqliteStore {
    /// Opens (or creates) the database file and its folder.
    pub async fn open(path: &Path) -> anyhow::Result<SqliteStore> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            }
            create_private(&path)?;
            let writer = open_connection(&path)?;
            let readers = (0..READERS)
                .map(|_| {
                    let conn = open_connection(&path)?;
                    conn.pragma_update(None, "query_only", "ON")?;
                    Ok(Mutex::new(conn))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok(SqliteStore {
                inner: Arc::new(Inner {
                    writer: Mutex::new(writer),
                    readers,
                    next_reader: AtomicUsize::new(0),
                }),
            })
        })
        .await?
    }

    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Internal(e.into()))?
    }

    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let i = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            let conn = inner.readers[i].lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Internal(e.into()))?
    }
}

/// Converts sea-query values into SQLite values: the one place values are bound.
fn bind(values: Values) -> Vec<SqlValue> {
    values.into_iter().map(to_sqlite).collect()
}

fn to_sqlite(value: Value) -> SqlValue {
    match value {
        Value::Bool(v) => v.map_or(SqlValue::Null, |b| SqlValue::Integer(b.into())),
        Value::TinyInt(v) => v.map_or(SqlValue::Null, |n| SqlValue::Integer(n.into())),
        Value::SmallInt(v) => v.map_or(SqlValue::Null, |n| SqlValue::Integer(n.into())),
        Value::Int(v) => v.map_or(SqlValue::Null, |n| SqlValue::Integer(n.into())),
        Value::BigInt(v) => v.map_or(SqlValue::Null, SqlValue::Integer),
        Value::TinyUnsigned(v) => v.map_or(SqlValue::Null, |n| SqlValue::Integer(n.into())),
        Value::SmallUnsigned(v) => v.map_or(SqlValue::Null, |n| SqlValue::Integer(n.into())),
        Value::Unsigned(v) => v.map_or(SqlValue::Null, |n| SqlValue::Integer(n.into())),
        Value::BigUnsigned(v) => {
            v.map_or(SqlValue::Null, |n| SqlValue::Integer(i64::try_from(n).unwrap_or(i64::MAX)))
        }
        Value::Float(v) => v.map_or(SqlValue::Null, |n| SqlValue::Real(n.into())),
        Value::Double(v) => v.map_or(SqlValue::Null, SqlValue::Real),
        Value::String(v) => v.map_or(SqlValue::Null, SqlValue::Text),
        Value::Char(v) => v.map_or(SqlValue::Null, |c| SqlValue::Text(c.to_string())),
        Value::Bytes(v) => v.map_or(SqlValue::Null, SqlValue::Blob),
        Value::Json(v) => v.map_or(SqlValue::Null, |j| SqlValue::Text(j.to_string())),
        Value::ChronoDateTimeUtc(v) => v.map_or(SqlValue::Null, |t| SqlValue::Text(timestamp(t))),
        // The store never binds other kinds; refuse loudly in tests rather than guess.
        other => unreachable!("value kind not used by the metadata store: {other:?}"),
    }
}

/// RFC 3339 with microseconds and `Z`: sorts correctly as text.
fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_timestamp(text: &str) -> anyhow::Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("bad timestamp {text:?} in store"))?
        .with_timezone(&Utc))
}

fn parse_uuid(text: &str) -> anyhow::Result<Uuid> {
    Uuid::parse_str(text).with_context(|| format!("bad id {text:?} in store"))
}

fn decode_user(row: &Row<'_>) -> anyhow::Result<User> {
    Ok(User {
        id: UserId(parse_uuid(&row.get::<_, String>(0)?)?),
        email: Email::from_trusted(row.get(1)?),
        role: row.get::<_, String>(2)?.parse::<Role>().map_err(|e| anyhow!(e))?,
        created_at: parse_timestamp(&row.get::<_, String>(3)?)?,
    })
}

fn decode_token(row: &Row<'_>) -> anyhow::Result<RefreshTokenRecord> {
    let optional_time = |i: usize| -> anyhow::Result<Option<DateTime<Utc>>> {
        row.get::<_, Option<String>>(i)?.map(|t| parse_timestamp(&t)).transpose()
    };
    Ok(RefreshTokenRecord {
        id: parse_uuid(&row.get::<_, String>(0)?)?,
        family_id: parse_uuid(&row.get::<_, String>(1)?)?,
        user_id: UserId(parse_uuid(&row.get::<_, String>(2)?)?),
        expires_at: parse_timestamp(&row.get::<_, String>(3)?)?,
        used_at: optional_time(4)?,
        revoked_at: optional_time(5)?,
    })
}

fn decode_dataset(row: &Row<'_>) -> anyhow::Result<Dataset> {
    RawDataset {
        id: row.get(0)?,
        owner_id: row.get(1)?,
        root_id: row.get(2)?,
        parent_id: row.get(3)?,
        name: row.get(4)?,
        format: row.get(5)?,
        original_filename: row.get(6)?,
        size_bytes: row.get(7)?,
        sha256: row.get(8)?,
        row_count: row.get(9)?,
        columns: row.get(10)?,
        rejected_row_count: row.get(11)?,
        notices: row.get(12)?,
        created_at: parse_timestamp(&row.get::<_, String>(13)?)?,
        kind: row.get(14)?,
    }
    .parse()
}

fn decode_job(row: &Row<'_>) -> anyhow::Result<Job> {
    let optional_time = |i: usize| -> anyhow::Result<Option<DateTime<Utc>>> {
        row.get::<_, Option<String>>(i)?.map(|t| parse_timestamp(&t)).transpose()
    };
    RawJob {
        id: row.get(0)?,
        owner_id: row.get(1)?,
        tool_id: row.get(2)?,
        agents: row.get(3)?,
        parameters: row.get(4)?,
        dataset_id: row.get(5)?,
        baseline_dataset_id: row.get(6)?,
        status: row.get(7)?,
        progress: row.get(8)?,
        stage: row.get(9)?,
        error_code: row.get(10)?,
        error_message: row.get(11)?,
        attempts: row.get(12)?,
        cancel_requested: row.get(13)?,
        output_dataset_id: row.get(14)?,
        created_at: parse_timestamp(&row.get::<_, String>(15)?)?,
        started_at: optional_time(16)?,
        finished_at: optional_time(17)?,
        updated_at: parse_timestamp(&row.get::<_, String>(18)?)?,
    }
    .parse()
}

fn decode_conversation(row: &Row<'_>) -> anyhow::Result<Conversation> {
    RawConversation {
        id: row.get(0)?,
        owner_id: row.get(1)?,
        dataset_id: row.get(2)?,
        job_id: row.get(3)?,
        title: row.get(4)?,
        created_at: parse_timestamp(&row.get::<_, String>(5)?)?,
        updated_at: parse_timestamp(&row.get::<_, String>(6)?)?,
    }
    .parse()
}

fn decode_message(row: &Row<'_>) -> anyhow::Result<ConversationMessage> {
    RawMessage {
        conversation_id: row.get(0)?,
        seq: row.get(1)?,
        role: row.get(2)?,
        content: row.get(3)?,
        sources: row.get(4)?,
        model: row.get(5)?,
        created_at: parse_timestamp(&row.get::<_, String>(6)?)?,
    }
    .parse()
}

fn count(conn: &Connection, select: (String, Values)) -> StoreResult<u64> {
    Ok(query_rows(conn, select, |r| Ok(r.get::<_, i64>(0)?))?.first().copied().unwrap_or(0).max(0) as u64)
}

fn internal(err: impl Into<anyhow::Error>) -> StoreError {
    StoreError::Internal(err.into())
}

fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// When the owners of `active`'s queued jobs last had a job started.
fn last_started(conn: &Connection, active: &[Job]) -> StoreResult<HashMap<UserId, DateTime<Utc>>> {
    let owners = super::queued_owners(active);
    if owners.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = query_rows(conn, sql::owners_last_started(&owners).build(SqliteQueryBuilder), |row| {
        Ok((UserId(parse_uuid(&row.get::<_, String>(0)?)?), parse_timestamp(&row.get::<_, String>(1)?)?))
    })?;
    Ok(rows.into_iter().collect())
}

/// Runs a statement that returns rows and decodes each.
fn query_rows<T>(
    conn: &Connection,
    (sql, values): (String, Values),
    decode: impl Fn(&Row<'_>) -> anyhow::Result<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(&sql).map_err(internal)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(bind(values))).map_err(internal)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(internal)? {
        out.push(decode(row).map_err(StoreError::Internal)?);
    }
    Ok(out)
}

fn execute(conn: &Connection, (sql, values): (String, Values)) -> Result<usize, rusqlite::Error> {
    conn.prepare_cached(&sql)?.execute(rusqlite::params_from_iter(bind(values)))
}

fn migrate_blocking(conn: &mut Connection) -> anyhow::Result<MigrationReport> {
    // IMMEDIATE takes the write lock first, so a second instance waits (busy timeout)
    // and then sees the versions this one recorded.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY NOT NULL,
            name TEXT NOT NULL,
            checksum TEXT NOT NULL,
            applied_at TEXT NOT NULL
        )",
    )?;
    let applied: Vec<(u32, String)> = tx
        .prepare("SELECT version, checksum FROM schema_migrations ORDER BY version")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let (pending, already_applied) = pending(&applied, |m| m.sqlite)?;
    let mut report = MigrationReport { applied: Vec::new(), already_applied };
    for migration in pending {
        let checksum = Migration::checksum(migration.sqlite);
        for statement in statements(migration.sqlite) {
            tx.execute_batch(&statement)
                .with_context(|| format!("migration {} ({})", migration.version, migration.name))?;
        }
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![migration.version, migration.name, checksum, timestamp(super::now())],
        )?;
        report.applied.push(migration.version);
    }
    tx.commit()?;
    Ok(report)
}

#[async_trait]
impl MetadataStore for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(internal)).await
    }

    async fn migrate(&self) -> StoreResult<MigrationReport> {
        self.write(|conn| migrate_blocking(conn).map_err(StoreError::Internal)).await
    }

    async fn create_user(&self, user: &NewUser) -> StoreResult<User> {
        let statement = sql::insert_user(user).build(SqliteQueryBuilder);
        let created =
            User { id: user.id, email: user.email.clone(), role: user.role, created_at: user.created_at };
        self.write(move |conn| match execute(conn, statement) {
            Ok(_) => Ok(created),
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::Conflict("an account with this email already exists"))
            }
            Err(e) => Err(internal(e)),
        })
        .await
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        let statement = sql::user_by_id(id).build(SqliteQueryBuilder);
        self.read(move |conn| Ok(query_rows(conn, statement, decode_user)?.into_iter().next())).await
    }

    async fn users_by_ids(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let statement = sql::users_by_ids(ids).build(SqliteQueryBuilder);
        self.read(move |conn| query_rows(conn, statement, decode_user)).await
    }

    async fn credentials_by_email(&self, email: &Email) -> StoreResult<Option<UserCredentials>> {
        let statement = sql::credentials_by_email(email).build(SqliteQueryBuilder);
        self.read(move |conn| {
            let rows = query_rows(conn, statement, |row| {
                Ok(UserCredentials { user: decode_user(row)?, password_hash: row.get(4)? })
            })?;
            Ok(rows.into_iter().next())
        })
        .await
    }

    async fn list_users(&self, page: &PageRequest) -> StoreResult<Page<User>> {
        let list = sql::list_users(page).build(SqliteQueryBuilder);
        let (count_sql, _) = sql::count_users().build(SqliteQueryBuilder);
        let first = page.first;
        self.read(move |conn| {
            let mut items = query_rows(conn, list, decode_user)?;
            let total: i64 = conn.query_row(&count_sql, [], |r| r.get(0)).map_err(internal)?;
            let has_next_page = items.len() > first;
            items.truncate(first);
            Ok(Page { items, has_next_page, total_count: total.max(0) as u64 })
        })
        .await
    }

    async fn insert_refresh_token(&self, token: &NewRefreshToken) -> StoreResult<()> {
        let statement = sql::insert_refresh_token(token).build(SqliteQueryBuilder);
        self.write(move |conn| execute(conn, statement).map(|_| ()).map_err(internal)).await
    }

    async fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        replacement: &Replacement,
        now: DateTime<Utc>,
    ) -> StoreResult<RotateOutcome> {
        let select = sql::refresh_token_by_hash(presented_hash, false).build(SqliteQueryBuilder);
        let replacement = replacement.clone();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
            let Some(record) = query_rows(&tx, select, decode_token)?.into_iter().next() else {
                return Ok(RotateOutcome::Unknown);
            };
            let outcome = match decide_rotation(&record, now) {
                RotateDecision::Revoked => RotateOutcome::Revoked,
                RotateDecision::Expired => RotateOutcome::Expired,
                RotateDecision::RevokeFamily => {
                    execute(&tx, sql::revoke_family(record.family_id, now).build(SqliteQueryBuilder))
                        .map_err(internal)?;
                    RotateOutcome::Reused { user_id: record.user_id }
                }
                RotateDecision::Rotate => {
                    execute(&tx, sql::mark_refresh_token_used(record.id, now).build(SqliteQueryBuilder))
                        .map_err(internal)?;
                    let insert = sql::insert_replacement(&replacement, record.family_id, record.user_id, now);
                    execute(&tx, insert.build(SqliteQueryBuilder)).map_err(internal)?;
                    RotateOutcome::Rotated { user_id: record.user_id }
                }
            };
            tx.commit().map_err(internal)?;
            Ok(outcome)
        })
        .await
    }

    async fn revoke_refresh_family(&self, presented_hash: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let select = sql::refresh_token_by_hash(presented_hash, false).build(SqliteQueryBuilder);
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
            let Some(record) = query_rows(&tx, select, decode_token)?.into_iter().next() else {
                return Ok(false);
            };
            // A family already revoked (signed out before) is no session any more.
            let revoked = execute(&tx, sql::revoke_family(record.family_id, now).build(SqliteQueryBuilder))
                .map_err(internal)?;
            tx.commit().map_err(internal)?;
            Ok(revoked > 0)
        })
        .await
    }

    async fn refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshTokenRecord>> {
        let select = sql::refresh_token_by_hash(token_hash, false).build(SqliteQueryBuilder);
        self.read(move |conn| Ok(query_rows(conn, select, decode_token)?.into_iter().next())).await
    }

    async fn insert_dataset(&self, dataset: &Dataset) -> StoreResult<()> {
        let statement = sql::insert_dataset(dataset).build(SqliteQueryBuilder);
        self.write(move |conn| execute(conn, statement).map(|_| ()).map_err(internal)).await
    }

    async fn insert_job_output(&self, dataset: &Dataset, job: JobId, attempt: u32) -> StoreResult<()> {
        let insert = sql::insert_dataset(dataset).build(SqliteQueryBuilder);
        let link = sql::insert_job_output(job, attempt, dataset.id).build(SqliteQueryBuilder);
        let held = sql::job_by_id(job, false).build(SqliteQueryBuilder);
        self.write(move |conn| {
            let tx = conn.transaction().map_err(internal)?;
            let current = query_rows(&tx, held, decode_job)?.into_iter().next();
            if !current
                .is_some_and(|j| j.status == crate::domain::JobStatus::Running && j.attempts == attempt)
            {
                return Err(StoreError::Conflict(super::NOT_THE_RUNNING_ATTEMPT));
            }
            execute(&tx, insert).map_err(internal)?;
            execute(&tx, link).map_err(internal)?;
            tx.commit().map_err(internal)
        })
        .await
    }

    async fn orphaned_outputs(&self) -> StoreResult<Vec<(UserId, DatasetId)>> {
        let select = sql::orphaned_outputs().build(SqliteQueryBuilder);
        self.read(move |conn| {
            query_rows(conn, select, |row| {
                Ok((
                    UserId(parse_uuid(&row.get::<_, String>(0)?)?),
                    DatasetId(parse_uuid(&row.get::<_, String>(1)?)?),
                ))
            })
        })
        .await
    }

    async fn dataset(&self, id: DatasetId, owner: UserId) -> StoreResult<Option<Dataset>> {
        let select = sql::dataset_for_owner(id, owner).build(SqliteQueryBuilder);
        self.read(move |conn| Ok(query_rows(conn, select, decode_dataset)?.into_iter().next())).await
    }

    async fn datasets_by_ids(&self, owner: UserId, ids: &[DatasetId]) -> StoreResult<Vec<Dataset>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let select = sql::datasets_by_ids(owner, ids).build(SqliteQueryBuilder);
        self.read(move |conn| query_rows(conn, select, decode_dataset)).await
    }

    async fn list_datasets(
        &self,
        owner: UserId,
        kinds: &[DatasetKind],
        page: &PageRequest,
    ) -> StoreResult<Page<Dataset>> {
        let list = sql::list_datasets(owner, kinds, page).build(SqliteQueryBuilder);
        let count = sql::count_datasets(owner, kinds).build(SqliteQueryBuilder);
        let first = page.first;
        self.read(move |conn| {
            let mut items = query_rows(conn, list, decode_dataset)?;
            let total = query_rows(conn, count, |r| Ok(r.get::<_, i64>(0)?))?.first().copied().unwrap_or(0);
            let has_next_page = items.len() > first;
            items.truncate(first);
            Ok(Page { items, has_next_page, total_count: total.max(0) as u64 })
        })
        .await
    }

    async fn dataset_versions(&self, root: DatasetId, owner: UserId) -> StoreResult<Vec<Dataset>> {
        let select = sql::dataset_versions(root, owner).build(SqliteQueryBuilder);
        self.read(move |conn| query_rows(conn, select, decode_dataset)).await
    }

    async fn delete_dataset(&self, id: DatasetId, owner: UserId, doomed: &[DatasetId]) -> StoreResult<bool> {
        let detach =
            (!doomed.is_empty()).then(|| sql::detach_baselines(owner, doomed).build(SqliteQueryBuilder));
        let statement = sql::delete_dataset(id, owner).build(SqliteQueryBuilder);
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
            if let Some(detach) = detach {
                execute(&tx, detach).map_err(internal)?;
            }
            // Nothing deleted (not the owner's, or gone already): nothing detached either.
            if execute(&tx, statement).map_err(internal)? == 0 {
                return Ok(false);
            }
            tx.commit().map_err(internal)?;
            Ok(true)
        })
        .await
    }

    async fn datasets_in_use(&self, ids: &[DatasetId]) -> StoreResult<bool> {
        if ids.is_empty() {
            return Ok(false);
        }
        let select = sql::active_jobs_on_dataset(ids).build(SqliteQueryBuilder);
        self.read(move |conn| Ok(count(conn, select)? > 0)).await
    }

    async fn insert_job(&self, job: &Job) -> StoreResult<()> {
        let statement = sql::insert_job(job).build(SqliteQueryBuilder);
        self.write(move |conn| execute(conn, statement).map(|_| ()).map_err(internal)).await
    }

    async fn job(&self, id: JobId, owner: UserId) -> StoreResult<Option<Job>> {
        let select = sql::job_for_owner(id, owner).build(SqliteQueryBuilder);
        self.read(move |conn| Ok(query_rows(conn, select, decode_job)?.into_iter().next())).await
    }

    async fn job_by_id(&self, id: JobId) -> StoreResult<Option<Job>> {
        let select = sql::job_by_id(id, false).build(SqliteQueryBuilder);
        self.read(move |conn| Ok(query_rows(conn, select, decode_job)?.into_iter().next())).await
    }

    async fn list_jobs(
        &self,
        owner: UserId,
        filter: &JobFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Job>> {
        let list = sql::list_jobs(owner, filter, page).build(SqliteQueryBuilder);
        let total = sql::count_jobs(owner, filter).build(SqliteQueryBuilder);
        let first = page.first;
        self.read(move |conn| {
            let mut items = query_rows(conn, list, decode_job)?;
            let total_count = count(conn, total)?;
            let has_next_page = items.len() > first;
            items.truncate(first);
            Ok(Page { items, has_next_page, total_count })
        })
        .await
    }

    async fn job_report(&self, id: JobId, owner: UserId) -> StoreResult<Option<String>> {
        let select = sql::job_report(id, owner).build(SqliteQueryBuilder);
        self.read(move |conn| {
            Ok(query_rows(conn, select, |r| Ok(r.get::<_, Option<String>>(0)?))?.into_iter().next().flatten())
        })
        .await
    }

    async fn queue(&self) -> StoreResult<Vec<JobId>> {
        self.read(|conn| {
            let active = query_rows(conn, sql::active_jobs().build(SqliteQueryBuilder), decode_job)?;
            Ok(super::queue_order(&active, &last_started(conn, &active)?))
        })
        .await
    }

    async fn claim_job(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        max_attempts: u32,
    ) -> StoreResult<Option<Job>> {
        let worker = worker.to_string();
        let asked = std::time::Instant::now();
        self.write(move |conn| {
            // One writer connection and BEGIN IMMEDIATE: no other process can claim the same
            // job between the SELECT and the UPDATE.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
            // (The lease starts now, once the writer is ours, not when the claim was asked for.)
            let waited = chrono::Duration::from_std(asked.elapsed()).unwrap_or_default();
            let (now, lease_until) = (now + waited, lease_until + waited);
            let expired = sql::expired_job(now, max_attempts, false).build(SqliteQueryBuilder);
            let job = match query_rows(&tx, expired, decode_job)?.into_iter().next() {
                Some(job) => job,
                None => {
                    // Queued jobs in their fair order (the writer holds them all: the first is free).
                    let active = query_rows(&tx, sql::active_jobs().build(SqliteQueryBuilder), decode_job)?;
                    let served = last_started(&tx, &active)?;
                    let Some(&id) = super::queue_order(&active, &served).first() else { return Ok(None) };
                    match query_rows(&tx, sql::queued_job(id, false).build(SqliteQueryBuilder), decode_job)?
                        .into_iter()
                        .next()
                    {
                        Some(job) => job,
                        None => return Ok(None),
                    }
                }
            };
            execute(&tx, sql::claim_job(job.id, &worker, now, lease_until).build(SqliteQueryBuilder))
                .map_err(internal)?;
            let claimed =
                query_rows(&tx, sql::job_by_id(job.id, false).build(SqliteQueryBuilder), decode_job)?;
            tx.commit().map_err(internal)?;
            Ok(claimed.into_iter().next())
        })
        .await
    }

    async fn renew_lease(
        &self,
        id: JobId,
        worker: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<bool>> {
        let renew = sql::renew_lease(id, worker, lease_until).build(SqliteQueryBuilder);
        let select = sql::held_job_cancel_requested(id, worker).build(SqliteQueryBuilder);
        self.write(move |conn| {
            execute(conn, renew).map_err(internal)?;
            Ok(query_rows(conn, select, |r| Ok(r.get::<_, bool>(0)?))?.into_iter().next())
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
        let statement = sql::record_progress(id, worker, progress, stage, now).build(SqliteQueryBuilder);
        self.write(move |conn| Ok(execute(conn, statement).map_err(internal)? > 0)).await
    }

    async fn finish_job(
        &self,
        id: JobId,
        worker: &str,
        outcome: &JobOutcome,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let statement = sql::finish_job(id, worker, outcome, now).build(SqliteQueryBuilder);
        self.write(move |conn| Ok(execute(conn, statement).map_err(internal)? > 0)).await
    }

    async fn release_job(&self, id: JobId, worker: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let statement = sql::release_job(id, worker, now).build(SqliteQueryBuilder);
        self.write(move |conn| Ok(execute(conn, statement).map_err(internal)? > 0)).await
    }

    async fn cancel_job(&self, id: JobId, owner: UserId, now: DateTime<Utc>) -> StoreResult<Option<Job>> {
        let queued = sql::cancel_queued_job(id, owner, now).build(SqliteQueryBuilder);
        let running = sql::request_cancel(id, owner, now).build(SqliteQueryBuilder);
        let orphaned = sql::cancel_orphaned_jobs(Some((id, owner)), now).build(SqliteQueryBuilder);
        let select = sql::job_for_owner(id, owner).build(SqliteQueryBuilder);
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
            if execute(&tx, queued).map_err(internal)? == 0 {
                execute(&tx, running).map_err(internal)?;
                execute(&tx, orphaned).map_err(internal)?;
            }
            let job = query_rows(&tx, select, decode_job)?.into_iter().next();
            tx.commit().map_err(internal)?;
            Ok(job)
        })
        .await
    }

    async fn cancel_orphaned_job(&self, id: JobId, owner: UserId, now: DateTime<Utc>) -> StoreResult<bool> {
        let orphaned = sql::cancel_orphaned_jobs(Some((id, owner)), now).build(SqliteQueryBuilder);
        self.write(move |conn| Ok(execute(conn, orphaned).map_err(internal)? > 0)).await
    }

    async fn fail_lost_jobs(&self, now: DateTime<Utc>, max_attempts: u32) -> StoreResult<u64> {
        let orphaned = sql::cancel_orphaned_jobs(None, now).build(SqliteQueryBuilder);
        let statement = sql::fail_lost_jobs(now, max_attempts).build(SqliteQueryBuilder);
        self.write(move |conn| {
            execute(conn, orphaned).map_err(internal)?;
            Ok(execute(conn, statement).map_err(internal)? as u64)
        })
        .await
    }

    async fn insert_conversation(&self, conversation: &Conversation) -> StoreResult<()> {
        let statement = sql::insert_conversation(conversation).build(SqliteQueryBuilder);
        self.write(move |conn| execute(conn, statement).map(|_| ()).map_err(internal)).await
    }

    async fn conversation(&self, id: ConversationId, owner: UserId) -> StoreResult<Option<Conversation>> {
        let select = sql::conversation_for_owner(id, owner, false).build(SqliteQueryBuilder);
        self.read(move |conn| Ok(query_rows(conn, select, decode_conversation)?.into_iter().next())).await
    }

    async fn list_conversations(&self, owner: UserId, page: &PageRequest) -> StoreResult<Page<Conversation>> {
        let list = sql::list_conversations(owner, page).build(SqliteQueryBuilder);
        let total = sql::count_conversations(owner).build(SqliteQueryBuilder);
        let first = page.first;
        self.read(move |conn| {
            let mut items = query_rows(conn, list, decode_conversation)?;
            let total_count = count(conn, total)?;
            let has_next_page = items.len() > first;
            items.truncate(first);
            Ok(Page { items, has_next_page, total_count })
        })
        .await
    }

    async fn append_messages(
        &self,
        id: ConversationId,
        owner: UserId,
        messages: &[NewMessage],
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let select = sql::conversation_for_owner(id, owner, false).build(SqliteQueryBuilder);
        let last = sql::last_message_seq(id).build(SqliteQueryBuilder);
        let touch = sql::touch_conversation(id, now).build(SqliteQueryBuilder);
        let messages = messages.to_vec();
        self.write(move |conn| {
            // One writer connection and BEGIN IMMEDIATE: no other process can append between
            // reading the last number and inserting after it.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(internal)?;
            if query_rows(&tx, select, decode_conversation)?.is_empty() {
                return Ok(false);
            }
            if !messages.is_empty() {
                let last = query_rows(&tx, last, |r| Ok(r.get::<_, i64>(0)?))?.first().copied().unwrap_or(0);
                let first_seq = u32::try_from(last + 1).map_err(internal)?;
                let insert = sql::insert_messages(id, first_seq, &messages, now).build(SqliteQueryBuilder);
                execute(&tx, insert).map_err(internal)?;
            }
            execute(&tx, touch).map_err(internal)?;
            tx.commit().map_err(internal)?;
            Ok(true)
        })
        .await
    }

    async fn conversation_messages(
        &self,
        id: ConversationId,
        owner: UserId,
        limit: usize,
    ) -> StoreResult<Vec<ConversationMessage>> {
        let select = sql::last_messages(id, owner, limit).build(SqliteQueryBuilder);
        self.read(move |conn| {
            let mut messages = query_rows(conn, select, decode_message)?;
            messages.reverse();
            Ok(messages)
        })
        .await
    }

    async fn record_llm_usage(&self, usage: &LlmUsage) -> StoreResult<()> {
        let statement = sql::insert_llm_usage(Uuid::now_v7(), usage).build(SqliteQueryBuilder);
        self.write(move |conn| execute(conn, statement).map(|_| ()).map_err(internal)).await
    }

    async fn llm_usage_totals(&self, owner: UserId, job: Option<JobId>) -> StoreResult<UsageTotals> {
        let select = sql::llm_usage_totals(owner, job).build(SqliteQueryBuilder);
        self.read(move |conn| {
            let totals = query_rows(conn, select, |r| {
                Ok(usage_totals(r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            })?;
            Ok(totals.into_iter().next().unwrap_or_default())
        })
        .await
    }
}
