//! The one catalogue of error codes a client can see, and the error type that carries them.
//!
//! Every failure that reaches a client has a stable [`ErrorCode`] (sent as `extensions.code`)
//! and a human message. Internal failures keep their cause for the log and reach the client
//! only as a generic message with the request id (see `gql::errors`).

use std::fmt;

/// A stable, documented error code. `docs/errors.md` lists every one (a test checks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    BadUserInput,
    NotFound,
    Conflict,
    RateLimited,
    PayloadTooLarge,
    Internal,
    BadRequest,
    UnsupportedMediaType,
    NotAcceptable,
    MethodNotAllowed,
    GraphqlParseFailed,
    GraphqlValidationFailed,
    QueryTooComplex,
}

impl ErrorCode {
    /// Every code, in the order `docs/errors.md` lists them.
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::BadUserInput,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::RateLimited,
        ErrorCode::PayloadTooLarge,
        ErrorCode::Internal,
        ErrorCode::BadRequest,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::NotAcceptable,
        ErrorCode::MethodNotAllowed,
        ErrorCode::GraphqlParseFailed,
        ErrorCode::GraphqlValidationFailed,
        ErrorCode::QueryTooComplex,
    ];

    /// The wire form, as sent in `extensions.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ErrorCode::NotAcceptable => "NOT_ACCEPTABLE",
            ErrorCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ErrorCode::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            ErrorCode::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            ErrorCode::QueryTooComplex => "QUERY_TOO_COMPLEX",
        }
    }

    /// Parses the wire form back (used for metrics and response classification).
    pub fn parse(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == code)
    }

    /// The HTTP status used when this error decides the status of a whole response.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Unauthenticated => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::BadUserInput
            | ErrorCode::BadRequest
            | ErrorCode::GraphqlParseFailed
            | ErrorCode::GraphqlValidationFailed
            | ErrorCode::QueryTooComplex => 400,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::RateLimited => 429,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::Internal => 500,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::NotAcceptable => 406,
            ErrorCode::MethodNotAllowed => 405,
        }
    }

    /// Whether this code means the request itself was not a valid GraphQL request,
    /// so that nothing was executed (GraphQL-over-HTTP: status 400 for
    /// `application/graphql-response+json`).
    pub fn is_request_error(self) -> bool {
        matches!(
            self,
            ErrorCode::BadRequest
                | ErrorCode::GraphqlParseFailed
                | ErrorCode::GraphqlValidationFailed
                | ErrorCode::QueryTooComplex
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure a client can be told about: a code, a message, optional extra fields for
/// `extensions`, and (for internal errors) the cause, which is logged and never sent.
#[derive(Debug)]
pub struct AppError {
    code: ErrorCode,
    message: String,
    extensions: Vec<(&'static str, serde_json::Value)>,
    cause: Option<anyhow::Error>,
}

impl AppError {
    /// An error with a code and a message that is safe to show the client.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        AppError { code, message: message.into(), extensions: Vec::new(), cause: None }
    }

    /// An unexpected failure: the cause is logged, the client sees a generic message.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        AppError {
            code: ErrorCode::Internal,
            message: "internal error".into(),
            extensions: Vec::new(),
            cause: Some(cause.into()),
        }
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        AppError::new(ErrorCode::Unauthenticated, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        AppError::new(ErrorCode::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        AppError::new(ErrorCode::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        AppError::new(ErrorCode::Conflict, message)
    }

    /// Bad input in one named field of the request.
    pub fn bad_input(field: &str, message: impl Into<String>) -> Self {
        AppError::new(ErrorCode::BadUserInput, message).with("field", field)
    }

    /// Too many attempts; the client may retry after `retry_after_secs`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        AppError::new(
            ErrorCode::RateLimited,
            format!("too many attempts; retry after {retry_after_secs} seconds"),
        )
        .with("retryAfter", retry_after_secs)
    }

    /// Adds a field to the error's `extensions`.
    pub fn with(mut self, key: &'static str, value: impl Into<serde_json::Value>) -> Self {
        self.extensions.push((key, value.into()));
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn extensions(&self) -> &[(&'static str, serde_json::Value)] {
        &self.extensions
    }

    pub fn cause(&self) -> Option<&anyhow::Error> {
        self.cause.as_ref()
    }
}

impl AppError {
    /// Code, message and cause chain, for logs and the command line; never for clients.
    pub fn report(&self) -> String {
        match &self.cause {
            Some(cause) => format!("{}: {}: {cause:#}", self.code, self.message),
            None => format!("{}: {}", self.code, self.message),
        }
    }
}

// `AppError` deliberately implements neither `Display` nor `std::error::Error`: async-graphql
// converts any `Display` type into an error with its text, which would send an internal
// cause to the client. Without `Display`, the only conversion is `gql::errors`' one, which
// adds the code and hides the cause.

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate code {code}");
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
    }

    #[test]
    fn internal_errors_hide_their_cause_from_the_message() {
        let err = AppError::internal(anyhow::anyhow!("connection refused to 10.0.0.1"));
        assert_eq!(err.message(), "internal error");
        assert!(err.report().contains("connection refused"));
    }
}
