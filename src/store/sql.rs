//! Every SQL statement of the metadata store, built once with sea-query.
//!
//! Backends call `.build(SqliteQueryBuilder)` or `.build(MysqlQueryBuilder)` and bind the
//! resulting values; no SQL text is ever built from user input.

use chrono::{DateTime, Utc};
use sea_query::{
    Asterisk, DeleteStatement, Expr, ExprTrait, Func, Iden, InsertStatement, LockType, Order, Query,
    SelectStatement, UpdateStatement,
};
use uuid::Uuid;

use crate::domain::{Dataset, DatasetId, Email, NewUser, UserId};

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
}

/// The columns a `Dataset` is decoded from, in this order.
pub const DATASET_COLUMNS: [Datasets; 14] = [
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

/// The owner's datasets, newest first; one more row than asked for.
pub fn list_datasets(owner: UserId, page: &PageRequest) -> SelectStatement {
    let mut query = Query::select()
        .columns(DATASET_COLUMNS)
        .from(Datasets::Table)
        .and_where(Expr::col(Datasets::OwnerId).eq(uuid(owner.0)))
        .order_by(Datasets::Id, Order::Desc)
        .limit(page.first as u64 + 1)
        .to_owned();
    if let Some(after) = page.after {
        query.and_where(Expr::col(Datasets::Id).lt(uuid(after)));
    }
    query
}

pub fn count_datasets(owner: UserId) -> SelectStatement {
    Query::select()
        .expr(Func::count(Expr::col(Asterisk)))
        .from(Datasets::Table)
        .and_where(Expr::col(Datasets::OwnerId).eq(uuid(owner.0)))
        .to_owned()
}

/// Every version sharing a root, oldest first.
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
