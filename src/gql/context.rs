//! What a resolver can ask of its context: the caller, the services, the request.

use std::net::IpAddr;

use async_graphql::Context;

use crate::auth::{Accounts, Caller, Credentials};
use crate::error::AppError;

/// The id of the request being served, also sent back in `X-Request-Id` and in internal
/// errors.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The client's address, for per-address limits.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

/// Typed access to request data, so resolvers never unwrap `ctx.data`.
pub(crate) trait ContextExt {
    fn credentials(&self) -> &Credentials;
    /// The authenticated caller, or `UNAUTHENTICATED`.
    fn caller(&self) -> Result<&Caller, AppError>;
    fn accounts(&self) -> Result<&Accounts, AppError>;
    fn client_addr(&self) -> Option<IpAddr>;
}

static ANONYMOUS: Credentials = Credentials::Anonymous;

impl ContextExt for Context<'_> {
    fn credentials(&self) -> &Credentials {
        self.data_opt::<Credentials>().unwrap_or(&ANONYMOUS)
    }

    fn caller(&self) -> Result<&Caller, AppError> {
        self.credentials().require()
    }

    fn accounts(&self) -> Result<&Accounts, AppError> {
        self.data::<Accounts>().map_err(|e| AppError::internal(anyhow::anyhow!("schema data: {}", e.message)))
    }

    fn client_addr(&self) -> Option<IpAddr> {
        self.data_opt::<ClientAddr>().and_then(|a| a.0)
    }
}
