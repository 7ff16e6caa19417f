//! Who is calling, and what they may do.
//!
//! Resolvers never compare roles themselves: they ask the caller for a capability
//! (`caller.admin()`) and get `None` when it is not granted.

use crate::domain::{Role, UserId};
use crate::error::AppError;

/// An authenticated caller, from a verified access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: UserId,
    pub role: Role,
    /// When the access token expires (Unix seconds). A WebSocket authenticates once, at
    /// `connection_init`, so the expiry is checked again on every use.
    pub expires_at: i64,
}

/// Proof that the caller is an administrator; only [`Caller::admin`] makes one.
#[derive(Debug, Clone)]
pub struct AdminHandle {
    pub caller: Caller,
}

impl Caller {
    /// The administrator capability, if this caller has it.
    pub fn admin(&self) -> Option<AdminHandle> {
        (self.role == Role::Admin).then(|| AdminHandle { caller: self.clone() })
    }

    /// The administrator capability, or `FORBIDDEN`.
    pub fn require_admin(&self) -> Result<AdminHandle, AppError> {
        self.admin().ok_or_else(|| AppError::forbidden("this operation needs the ADMIN role"))
    }
}

/// What the request presented: nothing, a valid token, or a token that failed.
///
/// A bad token does not fail the whole request (a client refreshing its session may still
/// send its expired token); it fails every resolver that needs a caller.
#[derive(Debug, Clone)]
pub enum Credentials {
    Anonymous,
    Authenticated(Caller),
    Invalid(String),
}

impl Credentials {
    /// The caller, or `UNAUTHENTICATED` saying why not.
    pub fn require(&self) -> Result<&Caller, AppError> {
        match self {
            Credentials::Authenticated(caller) if caller.expires_at <= chrono::Utc::now().timestamp() => {
                Err(AppError::unauthenticated(super::TokenError::Expired.to_string()))
            }
            Credentials::Authenticated(caller) => Ok(caller),
            Credentials::Anonymous => Err(AppError::unauthenticated(
                "sign in first: send the header Authorization: Bearer <access token>",
            )),
            Credentials::Invalid(reason) => Err(AppError::unauthenticated(reason.clone())),
        }
    }

    /// The caller if there is a valid token, `None` when anonymous, an error for a bad token.
    pub fn optional(&self) -> Result<Option<&Caller>, AppError> {
        match self {
            Credentials::Anonymous => Ok(None),
            other => other.require().map(Some),
        }
    }
}
