//! A password that meets the rules: at least 8 characters, at most 128 bytes.

use crate::error::AppError;
use crate::secret::Secret;

/// A candidate password that passed the rules. Never printed.
#[derive(Debug, Clone)]
pub struct Password(Secret<String>);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_BYTES: usize = 128;

    /// Checks the rules for a new password; the error names the rule that failed.
    pub fn parse_new(raw: String) -> Result<Password, AppError> {
        if raw.chars().count() < Self::MIN_CHARS {
            return Err(AppError::bad_input(
                "password",
                format!("password must be at least {} characters long", Self::MIN_CHARS),
            )
            .with("rule", "MIN_LENGTH"));
        }
        Password::presented(raw)
    }

    /// A password presented at sign-in: only the length cap applies, so that hashing
    /// cost stays bounded; a wrong password is simply wrong.
    pub fn presented(raw: String) -> Result<Password, AppError> {
        if raw.len() > Self::MAX_BYTES {
            return Err(AppError::bad_input(
                "password",
                format!("password must be at most {} bytes long", Self::MAX_BYTES),
            )
            .with("rule", "MAX_LENGTH"));
        }
        Ok(Password(Secret::new(raw)))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_named() {
        let short = Password::parse_new("1234567".into()).unwrap_err();
        assert!(short.message().contains("at least 8 characters"));
        let long = Password::parse_new("x".repeat(129)).unwrap_err();
        assert!(long.message().contains("at most 128 bytes"));
        // 8 characters of 4 bytes each: long enough, under the byte cap.
        assert!(Password::parse_new("🦀🦀🦀🦀🦀🦀🦀🦀".into()).is_ok());
        // 33 four-byte characters = 132 bytes: over the cap although only 33 characters.
        assert!(Password::parse_new("🦀".repeat(33)).is_err());
    }
}
