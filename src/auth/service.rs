//! The account use cases: sign up, sign in, refresh, sign out, and creating users from
//! the command line.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::domain::{Email, NewUser, Password, Role, User, UserId};
use crate::error::AppError;
use crate::store::{MetadataStore, NewRefreshToken, Replacement, RotateOutcome};

use super::tokens::new_refresh_token;
use super::{PasswordHasher, SignInLimiter, TokenIssuer, hash_refresh_token};

/// A signed-in session: what `signUp`, `signIn` and `refreshSession` return.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub user: User,
}

/// Accounts and sessions over a metadata store.
#[derive(Clone)]
pub struct Accounts {
    store: Arc<dyn MetadataStore>,
    tokens: TokenIssuer,
    hasher: PasswordHasher,
    limiter: SignInLimiter,
    refresh_ttl: Duration,
}

const BAD_CREDENTIALS: &str = "email or password is incorrect";

impl Accounts {
    pub fn new(
        store: Arc<dyn MetadataStore>,
        tokens: TokenIssuer,
        limiter: SignInLimiter,
        refresh_ttl: Duration,
    ) -> Self {
        Accounts { store, tokens, hasher: PasswordHasher::default(), limiter, refresh_ttl }
    }

    pub fn tokens(&self) -> &TokenIssuer {
        &self.tokens
    }

    pub fn store(&self) -> &dyn MetadataStore {
        self.store.as_ref()
    }

    /// Registers a new user and signs them in. Sign-ups count against the client
    /// address's attempt limit: each costs a password hash.
    pub async fn sign_up(
        &self,
        email: &str,
        password: String,
        client: Option<IpAddr>,
    ) -> Result<Session, AppError> {
        self.limiter.check_address(client).map_err(retry)?;
        let user = create_user(self.store.as_ref(), &self.hasher, email, password, Role::User).await?;
        tracing::info!(user_id = %user.id, "account created");
        self.start_session(user).await
    }

    /// Signs in with email and password. A wrong password and an unknown email give the
    /// same error after the same work.
    pub async fn sign_in(
        &self,
        email: &str,
        password: String,
        client: Option<IpAddr>,
    ) -> Result<Session, AppError> {
        self.limiter.check_address(client).map_err(retry)?;
        let email = Email::parse(email).map_err(|_| AppError::unauthenticated(BAD_CREDENTIALS))?;
        self.limiter.check_account(&email, client).map_err(retry)?;
        let password = Password::presented(password)?;
        let credentials = self.store.credentials_by_email(&email).await?;
        let ok =
            self.hasher.verify(&password, credentials.as_ref().map(|c| c.password_hash.as_str())).await?;
        match credentials {
            Some(c) if ok => {
                self.limiter.record_success(&email, client);
                self.start_session(c.user).await
            }
            _ => Err(AppError::unauthenticated(BAD_CREDENTIALS)),
        }
    }

    /// Exchanges a refresh token for a new session; the presented token stops working.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Session, AppError> {
        let (token, hash) = new_refresh_token();
        let now = crate::store::now();
        let replacement =
            Replacement { id: Uuid::now_v7(), token_hash: hash, expires_at: now + self.refresh_ttl };
        let outcome =
            self.store.rotate_refresh_token(&hash_refresh_token(refresh_token), &replacement, now).await?;
        let user_id = match outcome {
            RotateOutcome::Rotated { user_id } => user_id,
            RotateOutcome::Reused { user_id } => {
                tracing::warn!(%user_id, "refresh token replayed; session family revoked");
                return Err(AppError::unauthenticated(
                    "refresh token was already used; the session has been revoked, sign in again",
                ));
            }
            RotateOutcome::Revoked => {
                return Err(AppError::unauthenticated(
                    "the session has ended (signed out, or revoked when one of its refresh tokens was used twice); sign in again",
                ));
            }
            RotateOutcome::Expired => {
                return Err(AppError::unauthenticated("refresh token expired; sign in again"));
            }
            RotateOutcome::Unknown => return Err(AppError::unauthenticated("refresh token is invalid")),
        };
        let user = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or_else(|| AppError::unauthenticated("the account no longer exists"))?;
        self.session(user, token)
    }

    /// Revokes the session the refresh token belongs to. Returns whether there was one.
    pub async fn sign_out(&self, refresh_token: &str) -> Result<bool, AppError> {
        Ok(self.store.revoke_refresh_family(&hash_refresh_token(refresh_token), crate::store::now()).await?)
    }

    async fn start_session(&self, user: User) -> Result<Session, AppError> {
        let (token, hash) = new_refresh_token();
        let now = crate::store::now();
        self.store
            .insert_refresh_token(&NewRefreshToken {
                id: Uuid::now_v7(),
                family_id: Uuid::now_v7(),
                user_id: user.id,
                token_hash: hash,
                created_at: now,
                expires_at: now + self.refresh_ttl,
            })
            .await?;
        self.session(user, token)
    }

    fn session(&self, user: User, refresh_token: String) -> Result<Session, AppError> {
        let access_token = self.tokens.issue_access(&user).map_err(AppError::internal)?;
        Ok(Session { access_token, refresh_token, expires_in: self.tokens.access_ttl_secs(), user })
    }
}

/// Creates a user with the given role (sign-up creates `USER`s; the CLI can make admins).
pub async fn create_user(
    store: &dyn MetadataStore,
    hasher: &PasswordHasher,
    email: &str,
    password: String,
    role: Role,
) -> Result<User, AppError> {
    let email = Email::parse(email)?;
    let password = Password::parse_new(password)?;
    let password_hash = hasher.hash(&password).await?;
    let user =
        NewUser { id: UserId::generate(), email, password_hash, role, created_at: crate::store::now() };
    Ok(store.create_user(&user).await?)
}

fn retry(after: Duration) -> AppError {
    AppError::rate_limited(after.as_secs().max(1))
}
