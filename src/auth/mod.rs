//! Accounts and sessions: password hashing, access and refresh tokens, sign-in rate limits,
//! and the caller's identity with the capabilities it grants.

mod caller;
mod keys;
mod password;
mod rate_limit;
mod service;
mod tokens;

pub use caller::{AdminHandle, Caller, Credentials};
pub use keys::load_or_generate_secret_key;
pub use password::PasswordHasher;
pub use rate_limit::{SignInLimiter, WindowLimiter};
pub use service::{Accounts, Session, create_user};
pub use tokens::{AccessClaims, DownloadClaims, TokenError, TokenIssuer, hash_refresh_token};
