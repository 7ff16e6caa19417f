//! Every SQL statement of the metadata store, built once with sea-query.
//!
//! Backends call `.build(SqliteQueryBuilder)` or `.build(MysqlQueryBuilder)` and bind the
//! resulting values; no SQL text is ever built from user input.

use chrono::{DateTime, Utc};
use sea_query::{
    Asterisk, Expr, ExprTrait, Func, Iden, InsertStatement, LockType, Order, Query, SelectStatement,
    UpdateStatement,
};
use uuid::Uuid;

use crate::domain::{Email, NewUser, UserId};

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
