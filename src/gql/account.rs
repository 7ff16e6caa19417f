//! Accounts in GraphQL: `me`, `users`, `signUp`, `signIn`, `refreshSession`, `signOut`.

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use async_graphql::dataloader::DataLoader;

use super::context::ContextExt;
use super::loaders::UserLoader;
use super::pagination::{PageInfo, encode_cursor, page_request};
use crate::auth::Session;
use crate::domain;
use crate::error::AppError;

/// What a user may do.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "Role")]
pub enum RoleGql {
    /// Works with their own datasets and jobs.
    User,
    /// Can also manage users.
    Admin,
}

impl From<domain::Role> for RoleGql {
    fn from(role: domain::Role) -> Self {
        match role {
            domain::Role::User => RoleGql::User,
            domain::Role::Admin => RoleGql::Admin,
        }
    }
}

/// A user as the API shows it (never the password hash).
pub struct User(pub domain::User);

/// A person with an account.
#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Normalised: trimmed and lower-case.
    async fn email(&self) -> &str {
        self.0.email.as_str()
    }

    async fn role(&self) -> RoleGql {
        self.0.role.into()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A signed-in session.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// A JWT to send as `Authorization: Bearer <accessToken>`.
    access_token: String,
    /// Exchange it with `refreshSession` before the access token expires; each use
    /// returns a new one and the old one stops working.
    refresh_token: String,
    /// Seconds until the access token expires.
    expires_in: i32,
    user: User,
}

impl From<Session> for AuthPayload {
    fn from(s: Session) -> Self {
        AuthPayload {
            access_token: s.access_token,
            refresh_token: s.refresh_token,
            expires_in: i32::try_from(s.expires_in).unwrap_or(i32::MAX),
            user: User(s.user),
        }
    }
}

/// A page of users.
#[derive(SimpleObject)]
pub struct UserConnection {
    nodes: Vec<User>,
    page_info: PageInfo,
    total_count: i32,
}

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    /// The signed-in user; `null` without an access token.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(caller) = ctx.credentials().optional()? else { return Ok(None) };
        let user = ctx.data::<DataLoader<UserLoader>>()?.load_one(caller.user_id).await?;
        // A token for a deleted account names nobody.
        Ok(user.map(User))
    }

    /// Every user, newest first. Needs the ADMIN role.
    #[graphql(complexity = "crate::gql::paged(first.unwrap_or(crate::gql::FIRST_PAGE), child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            default_with = "Some(crate::gql::FIRST_PAGE)",
            desc = "How many to return, from 1 to 100."
        )]
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<UserConnection> {
        let first = first.unwrap_or(crate::gql::FIRST_PAGE);
        let _admin = ctx.caller()?.require_admin()?;
        let page = page_request("user", first, after.as_deref())?;
        let result = ctx.accounts()?.store().list_users(&page).await.map_err(AppError::from)?;
        let end_cursor = result.items.last().map(|u| encode_cursor("user", u.id.0));
        Ok(UserConnection {
            total_count: i32::try_from(result.total_count).unwrap_or(i32::MAX),
            page_info: PageInfo { has_next_page: result.has_next_page, end_cursor },
            nodes: result.items.into_iter().map(User).collect(),
        })
    }
}

#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    /// Creates an account and signs it in. Passwords need 8 characters or more and at most
    /// 128 bytes; emails are case-insensitive.
    async fn sign_up(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> async_graphql::Result<AuthPayload> {
        Ok(ctx.accounts()?.sign_up(&email, password, ctx.client_addr()).await?.into())
    }

    /// Signs in with email and password. Attempts are rate-limited per account and per
    /// client address (`RATE_LIMITED`, with `retryAfter` seconds).
    async fn sign_in(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> async_graphql::Result<AuthPayload> {
        Ok(ctx.accounts()?.sign_in(&email, password, ctx.client_addr()).await?.into())
    }

    /// Exchanges a refresh token for a new access and refresh token. Presenting a refresh
    /// token a second time revokes the whole session.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
    ) -> async_graphql::Result<AuthPayload> {
        Ok(ctx.accounts()?.refresh(&refresh_token).await?.into())
    }

    /// Ends the session the refresh token belongs to. `false` if there was no such session.
    async fn sign_out(&self, ctx: &Context<'_>, refresh_token: String) -> async_graphql::Result<bool> {
        Ok(ctx.accounts()?.sign_out(&refresh_token).await?)
    }
}
