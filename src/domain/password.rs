//! A password that meets the rules: at least 8 characters, not white space alone, no control
//! characters, at most 128 bytes.

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
        if raw.chars().all(char::is_whitespace) {
            return Err(AppError::bad_input("password", "password must not be white space alone")
                .with("rule", "BLANK"));
        }
        // (A NUL or an escape cannot be typed at a sign-in form; some clients drop them.)
        if raw.chars().any(char::is_control) {
            return Err(AppError::bad_input("password", "password must not contain control characters")
                .with("rule", "CONTROL_CHARACTER"));
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
        let rule = |raw: &str| {
            let e = Password::parse_new(raw.into()).unwrap_err();
            e.extensions().iter().find(|(k, _)| *k == "rule").map(|(_, v)| v.clone()).unwrap()
        };
        assert_eq!(rule("        "), "BLANK");
        assert_eq!(rule("\t \u{3000}     \n"), "BLANK");
        assert_eq!(rule("\0\0\0\0\0\0\0\0"), "CONTROL_CHARACTER");
        assert_eq!(rule("correct\u{1b}horse"), "CONTROL_CHARACTER");
        // Spaces inside a pass phrase are fine.
        assert!(Password::parse_new("correct horse battery".into()).is_ok());
    }
}
